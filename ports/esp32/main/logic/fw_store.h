/* SPDX-License-Identifier: MIT */
/*
 * The firmware's outbox: where interval records wait, durably, until every sink (InfluxDB,
 * MQTT) is done with them. A small interface so the delivery logic does not care what keeps
 * the records; with two sinks each reads it through its own cursor (fw_sinks.h, which uses
 * peek_after, drop_upto and the saved cursors below).
 *
 * Two implementations: fw_store_ram.c (a RAM queue for tests: nothing survives a reboot) and
 * fw_store_flashlog.c (the core's pl_flashlog over a flash given by the caller: the "pllog"
 * data partition on the device, see ports/esp32/main/store_flash.c; a RAM-backed fake flash in
 * fwsim and the tests). Records leave only through drop() (after a 2xx) or quarantine() (a
 * line the server will never take); the order is first in, first out. Next to the records the
 * store keeps what the next boot needs: the energy register (the newest meter state saved) and
 * the time anchors of the boots (fw_time.h). Each call may block on flash I/O: call from the
 * network task only.
 */
#ifndef FW_STORE_H
#define FW_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "fw_record.h"
#include "fw_time.h"

/*
 * What the meter must find again after a reboot: the energy register. Saved each time an
 * interval closes (fw_store_put_record), restored into the meter at boot (fw_store_restore).
 * Plain data without padding (16 bytes).
 */
struct fw_meter_state {
	int64_t register_uwh;  /* energy register, uWh */
	uint32_t boot;         /* the boot that saved it */
	uint32_t reserved;     /* 0 */
};

/*
 * The sinks' delivery cursors (fw_sinks.h), kept next to the records they point into. Plain
 * data without padding (32 bytes). id names the store for MQTT's marks: made at random when
 * the store has none (a new or formatted log, whose sequence numbers start again).
 */
#define FW_CURSORS_MAX 2
struct fw_cursors {
	uint8_t id[8];             /* the store's id (random) */
	uint32_t n;                /* cursors in c[] */
	uint32_t reserved;         /* 0 */
	struct {
		uint32_t sink;     /* enum fw_sink_kind (fw_sinks.h) */
		uint32_t seq;      /* the newest record that sink is done with */
	} c[FW_CURSORS_MAX];
};

struct fw_store_ops {
	/* Appends one record durably. 0, -PL_ENOSPC (full: nothing written), -PL_EIO. */
	int (*append)(void *ctx, const struct fw_record *r);
	/* Copies up to cap of the oldest records into out; *n receives how many. 0 or -PL_EIO. */
	int (*peek)(void *ctx, struct fw_record *out, size_t cap, size_t *n);
	/* Removes the n oldest records (acknowledged). 0, -PL_EINVAL (n > count), -PL_EIO. */
	int (*drop)(void *ctx, size_t n);
	/* Moves the oldest record to the quarantine, with the reason (the server's message). */
	int (*quarantine)(void *ctx, const char *why);
	/* Saves the wall-minus-monotonic offset of a boot (see fw_time.h). 0, -PL_ENOSPC, -PL_EIO. */
	int (*anchor)(void *ctx, uint32_t boot, int64_t offset_us);
	/*
	 * Copies up to cap of the saved anchors of earlier and this boot into out, oldest first
	 * (at most FW_TIME_ANCHORS + 1 are kept); *n receives how many. 0 or -PL_EIO.
	 */
	int (*anchors)(void *ctx, struct fw_time_anchor *out, size_t cap, size_t *n);
	/* Saves the meter state; only the newest one counts. 0, -PL_ENOSPC, -PL_EIO. */
	int (*save_meter)(void *ctx, const struct fw_meter_state *m);
	/* The newest meter state saved. 0, -PL_ENOENT (none ever), -PL_EIO. */
	int (*load_meter)(void *ctx, struct fw_meter_state *m);
	/* Records waiting. */
	size_t (*count)(void *ctx);
	/*
	 * For readers with cursors of their own (fw_sinks.h): like peek, but from the first
	 * waiting record whose sequence number is above after, with the sequence numbers into
	 * seqs (unique, increasing, kept across reboots; never 0). 0 or -PL_EIO.
	 */
	int (*peek_after)(void *ctx, uint32_t after, struct fw_record *out, uint32_t *seqs,
			  size_t cap, size_t *n);
	/* Removes every waiting record whose sequence number is at most seq. 0 or -PL_EIO. */
	int (*drop_upto)(void *ctx, uint32_t seq);
	/* Saves the cursors durably; only the newest counts. 0, -PL_ENOSPC, -PL_EIO. */
	int (*save_cursors)(void *ctx, const struct fw_cursors *c);
	/* The newest cursors saved. 0, -PL_ENOENT (none ever), -PL_EIO. */
	int (*load_cursors)(void *ctx, struct fw_cursors *c);
};

struct fw_store {
	const struct fw_store_ops *ops;
	void *ctx;
};

static inline int fw_store_append(struct fw_store *s, const struct fw_record *r)
{
	return s->ops->append(s->ctx, r);
}
static inline int fw_store_peek(struct fw_store *s, struct fw_record *out, size_t cap, size_t *n)
{
	return s->ops->peek(s->ctx, out, cap, n);
}
static inline int fw_store_drop(struct fw_store *s, size_t n)
{
	return s->ops->drop(s->ctx, n);
}
static inline int fw_store_quarantine(struct fw_store *s, const char *why)
{
	return s->ops->quarantine(s->ctx, why);
}
static inline int fw_store_anchor(struct fw_store *s, uint32_t boot, int64_t offset_us)
{
	return s->ops->anchor(s->ctx, boot, offset_us);
}
static inline int fw_store_anchors(struct fw_store *s, struct fw_time_anchor *out, size_t cap,
				   size_t *n)
{
	return s->ops->anchors(s->ctx, out, cap, n);
}
static inline int fw_store_save_meter(struct fw_store *s, const struct fw_meter_state *m)
{
	return s->ops->save_meter(s->ctx, m);
}
static inline int fw_store_load_meter(struct fw_store *s, struct fw_meter_state *m)
{
	return s->ops->load_meter(s->ctx, m);
}
static inline size_t fw_store_count(struct fw_store *s)
{
	return s->ops->count(s->ctx);
}

static inline int fw_store_peek_after(struct fw_store *s, uint32_t after, struct fw_record *out,
				      uint32_t *seqs, size_t cap, size_t *n)
{
	return s->ops->peek_after(s->ctx, after, out, seqs, cap, n);
}
static inline int fw_store_drop_upto(struct fw_store *s, uint32_t seq)
{
	return s->ops->drop_upto(s->ctx, seq);
}
static inline int fw_store_save_cursors(struct fw_store *s, const struct fw_cursors *c)
{
	return s->ops->save_cursors(s->ctx, c);
}
static inline int fw_store_load_cursors(struct fw_store *s, struct fw_cursors *c)
{
	return s->ops->load_cursors(s->ctx, c);
}

/*
 * An interval record closed: saves the register it ends with (r->rec.register_uwh), then the
 * record. The register goes first so that a power cut between the two writes leaves the
 * register ahead of the records, never behind: the record in flight is lost (it was only in
 * RAM) but its energy is not counted twice or taken back - the next record's register simply
 * includes it. Returns 0 (both durable), or the first error (-PL_ENOSPC: keep the record and
 * try again later; saving the same register again costs nothing).
 */
int fw_store_put_record(struct fw_store *s, const struct fw_record *r);

/*
 * At boot: loads the saved anchors of earlier boots into t (fw_time_add_anchor; t must be
 * initialised for this boot) and the newest meter state into *m (m->boot = 0 and register 0 if
 * none was ever saved). Returns 0 or -PL_EIO.
 */
int fw_store_restore(struct fw_store *s, struct fw_time *t, struct fw_meter_state *m);

/* ---- the RAM store ---------------------------------------------------------------------- */

#define FW_QUARANTINE_KEEP 4 /* quarantined records kept for inspection (the rest counted) */

struct fw_store_ram {
	struct fw_record *buf;     /* caller's storage, cap records */
	size_t cap, head, n;
	uint32_t quarantined;      /* records quarantined, ever */
	struct fw_record q[FW_QUARANTINE_KEEP];
	char q_why[FW_QUARANTINE_KEEP][96];
	uint32_t anchor_boot;      /* the last anchor saved */
	int64_t anchor_offset_us;
	uint8_t has_anchor;
	uint8_t has_meter;
	struct fw_meter_state meter; /* the last meter state saved */
	uint32_t first_seq;        /* the sequence number of buf[head] (numbers start at 1) */
	uint8_t has_cursors;
	struct fw_cursors cursors; /* the last cursors saved */
};

/*
 * Sets up a RAM store over storage (cap records, caller-owned) and fills *s to reach it. It
 * keeps only the last anchor and the last meter state, and nothing survives a reboot.
 */
void fw_store_ram_init(struct fw_store_ram *ram, struct fw_record *storage, size_t cap,
		       struct fw_store *s);

#endif
