/* SPDX-License-Identifier: MIT */
/*
 * Two sinks on one outbox: InfluxDB (fw_delivery) and MQTT (fw_mqtt) each keep their own
 * delivery cursor over the flash log, and the log is acknowledged up to the older of the two.
 *
 * The flash log (powerlogger/flashlog.h) has a single acknowledgement point. With one sink it
 * is that sink's cursor; with two, each sink's cursor is the flash sequence number of the
 * newest record it is done with, saved durably as a kept record of the log itself
 * (FW_FLASH_T_CURSORS, fw_store_flashlog.h) - not in NVS: the cursors point into the log, so
 * they must live and die with it. A log formatted after corruption starts its sequence numbers
 * again and has no cursor record; NVS would still hold cursors that now point at the wrong
 * records. The same record holds the store's id (random, made when there is none) that MQTT's
 * marks carry, so a mark from before a format never matches the new records.
 *
 * Power-fail order: when a sink moves, the log is acknowledged up to the minimum of the two
 * cursors first, then the cursors are saved. Acknowledging loses nothing - both sinks are past
 * that point in RAM - and it may free the sector the save needs when the log is full. A save
 * that fails (a full log: -PL_ENOSPC) is tried again at the next move; a save lost to a power
 * cut or a failure only makes that sink deliver again what lies between its saved cursor and
 * the acknowledgement point: harmless for InfluxDB (a point written twice is one point) and
 * skipped by MQTT through its retained marks (fw_mqtt.h). The saved cursors are never ahead
 * of the real ones, so nothing is ever skipped by mistake. Each move costs one 32-byte cursor
 * record on flash (about 56 bytes with the log's framing) when two sinks are on; with one sink
 * the log's acknowledgement is its cursor and nothing more is written.
 *
 * The log filling up while MQTT is down: InfluxDB must never lose data because of MQTT. When
 * an append finds the log full (-PL_ENOSPC), fw_sinks_make_room() moves every secondary sink
 * (MQTT) that holds the log back forward by up to FW_SINKS_SKIP records - never past the
 * primary sink (InfluxDB) - and counts them in the sink's `skipped`: MQTT falls behind, loses
 * the oldest intervals, and says so (fw_mqtt logs it and publishes the count in P/M/diag).
 * When InfluxDB itself holds the log back nothing is skipped: the outbox is full as it always
 * was, and new records wait in the RAM ring.
 *
 * Each sink sees the store through its own struct fw_store (fw_sink_store()): count, peek and
 * drop are its own, quarantine moves only its cursor, the rest is the shared store. So
 * fw_delivery is unchanged. Not thread-safe: the network task owns it.
 */
#ifndef FW_SINKS_H
#define FW_SINKS_H

#include <stddef.h>
#include <stdint.h>

#include "fw_store.h"

enum fw_sink_kind {
	FW_SINK_INFLUX = 1, /* primary: never skipped */
	FW_SINK_MQTT = 2,   /* secondary: skipped when the log is full and it is behind */
};

#define FW_SINKS_SKIP 64   /* records skipped per full log: more than a 4 KB sector holds */
#define FW_SINKS_CHUNK 16  /* records read at a time when moving a cursor */

struct fw_sinks;

struct fw_sink {
	struct fw_sinks *owner;
	uint32_t kind;          /* enum fw_sink_kind */
	uint32_t cursor;        /* the newest flash seq this sink is done with (0: none) */
	size_t ahead;           /* waiting records with seq <= cursor (done, not yet acked) */
	uint64_t skipped;       /* records given up to make room (secondary sinks) */
	uint32_t quarantined;   /* records this sink gave up on (fw_delivery's quarantine) */
	char why[96];           /* the last quarantine's reason */
	struct fw_store store;  /* this sink's view (fw_sink_store) */
};

struct fw_sinks {
	struct fw_store *base;
	struct fw_sink sink[FW_CURSORS_MAX];
	uint32_t n;
	struct fw_cursors saved;  /* as last saved (id and cursors) */
	uint32_t unsaved_moves;   /* cursor saves refused by a full log (retried) */
	uint8_t dirty;            /* the cursors in RAM are not all saved */
	char id_hex[17];          /* the store id as 16 hex digits (MQTT's mark "store") */
	struct fw_record scratch[FW_SINKS_CHUNK];
	uint32_t seqs[FW_SINKS_CHUNK];
};

/*
 * Opens the sinks of kinds[0..n-1] (n 1..FW_CURSORS_MAX, each kind once; the first is the
 * primary) over base: loads the saved cursors and store id, makes and saves a new id (from
 * seed) if there is none, and counts each sink's waiting records. A sink without a saved
 * cursor starts at the log's acknowledgement point: it delivers everything waiting. Returns
 * 0, -PL_EINVAL or a store error.
 */
int fw_sinks_open(struct fw_sinks *s, struct fw_store *base, const uint32_t *kinds, uint32_t n,
		  uint64_t seed);

/* The sink of a kind; NULL if not opened. */
struct fw_sink *fw_sinks_get(struct fw_sinks *s, uint32_t kind);

/* The sink's view as a store (for fw_delivery). */
static inline struct fw_store *fw_sink_store(struct fw_sink *k)
{
	return &k->store;
}

/* Records this sink has still to deliver. */
size_t fw_sink_count(const struct fw_sink *k);

/* Up to cap of the oldest records this sink has still to deliver, with their seqs. */
int fw_sink_peek(struct fw_sink *k, struct fw_record *out, uint32_t *seqs, size_t cap,
		 size_t *n);

/*
 * The sink is done with every record up to seq (seq at or before its cursor: nothing to do).
 * Acknowledges the log up to the minimum, then saves the cursors (see above). 0 or a store
 * error (not -PL_ENOSPC from the save: that is retried later, unsaved_moves counts it).
 */
int fw_sink_done_upto(struct fw_sink *k, uint32_t seq);

/*
 * The log is full: moves secondary sinks that hold it back forward (see above). Returns the
 * number of records skipped (0: nothing could be, the primary sink holds the log) or a store
 * error.
 */
long fw_sinks_make_room(struct fw_sinks *s);

/* An interval record into the store (fw_store_put_record); when the log is full, room is made
 * once as above and the append tried again. Returns as fw_store_put_record. */
int fw_sinks_put_record(struct fw_sinks *s, const struct fw_record *r, long *skipped);

#endif
