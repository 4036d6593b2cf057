/*
 * The firmware's outbox: where interval records wait, durably, until InfluxDB acknowledged
 * them. A small interface so the delivery logic does not care what keeps the records.
 *
 * Two implementations: fw_store_ram.c (a RAM queue: the host tests and the simulator, and the
 * device's stand-in until the flash log is wired) and, on the device, the core's pl_flashlog on
 * the "pllog" data partition (ports/esp32/main/store_flash.c). Records leave only through
 * drop() (after a 2xx) or quarantine() (a line the server will never take); the order is
 * first in, first out. Each call may block on flash I/O: call from the network task only.
 */
#ifndef FW_STORE_H
#define FW_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "fw_record.h"

struct fw_store_ops {
	/* Appends one record durably. 0, -PL_ENOSPC (full: nothing written), -PL_EIO. */
	int (*append)(void *ctx, const struct fw_record *r);
	/* Copies up to cap of the oldest records into out; *n receives how many. 0 or -PL_EIO. */
	int (*peek)(void *ctx, struct fw_record *out, size_t cap, size_t *n);
	/* Removes the n oldest records (acknowledged). 0, -PL_EINVAL (n > count), -PL_EIO. */
	int (*drop)(void *ctx, size_t n);
	/* Moves the oldest record to the quarantine, with the reason (the server's message). */
	int (*quarantine)(void *ctx, const char *why);
	/* Saves the wall-minus-monotonic offset of a boot (see fw_time.h). */
	int (*anchor)(void *ctx, uint32_t boot, int64_t offset_us);
	/* Records waiting. */
	size_t (*count)(void *ctx);
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
static inline size_t fw_store_count(struct fw_store *s)
{
	return s->ops->count(s->ctx);
}

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
};

/* Sets up a RAM store over storage (cap records, caller-owned) and fills *s to reach it. */
void fw_store_ram_init(struct fw_store_ram *ram, struct fw_record *storage, size_t cap,
		       struct fw_store *s);

#endif
