/* SPDX-License-Identifier: MIT */
/*
 * Monotonic time to wall-clock time, for records made before the clock was set.
 *
 * At each SNTP synchronisation the network task learns offset = wall - monotonic. The first
 * one of a boot becomes that boot's anchor: it is saved in the store (fw_store.h) next to the
 * records, so that records of this boot that were closed before the sync - even ones still
 * unsent after a reboot - can be stamped with wall time = monotonic start + anchor, rounded to
 * the second. The anchor never changes afterwards, so a record's stamped time (its key in
 * InfluxDB) is the same on every retry.
 *
 * Later synchronisations move the live offset (the time base the meter runs in) only when the
 * clocks have drifted apart by more than FW_TIME_STEP_US; each such step bumps `epoch`, which
 * tells the sampling task to close its interval and start again in the new time base. Smaller
 * drifts (the crystal's tens of ppm) are left alone, so intervals are not cut every hour.
 *
 * Plain data; not thread-safe: the network task owns it and passes (epoch, offset) to the
 * sampling task through a ring.
 */
#ifndef FW_TIME_H
#define FW_TIME_H

#include <stdint.h>

#include "fw_record.h"

#define FW_TIME_ANCHORS 8                       /* previous boots remembered */
#define FW_TIME_STEP_US (INT64_C(1000000))      /* drift that moves the live offset */
#define FW_TIME_MIN_WALL_US (INT64_C(1577836800) * 1000000) /* 2020-01-01: an unset clock is
                                                 * earlier than this */

struct fw_time_anchor {
	uint32_t boot;
	uint32_t reserved;
	int64_t offset_us;                      /* wall - monotonic, us */
};

struct fw_time {
	uint32_t boot;                          /* this boot's counter */
	uint8_t synced;                         /* the clock has been set this boot */
	uint8_t reserved[3];
	uint32_t epoch;                         /* changes of the live offset (first sync: 1) */
	int64_t anchor_us;                      /* this boot's first offset (valid if synced) */
	int64_t offset_us;                      /* live offset (valid if synced) */
	struct fw_time_anchor old[FW_TIME_ANCHORS]; /* earlier boots, from the store */
	uint32_t nold;
};

enum fw_stamp {
	FW_STAMP_OK = 0,   /* stamped (or already was) */
	FW_STAMP_WAIT,     /* made this boot before the clock was set: try again after sync */
	FW_STAMP_NEVER,    /* made in an earlier boot whose clock was never set: no wall time */
};

/* Starts with no time known for boot `boot`. */
void fw_time_init(struct fw_time *t, uint32_t boot);

/*
 * Remembers an earlier boot's anchor (read back from the store at start). The newest
 * FW_TIME_ANCHORS are kept. Returns 0, or -PL_EINVAL for this boot's own counter.
 */
int fw_time_add_anchor(struct fw_time *t, uint32_t boot, int64_t offset_us);

/*
 * The clock was set: at monotonic time mono_us the wall-clock time was wall_us (UTC us).
 * Returns 1 when the live offset changed (first sync, or a step over FW_TIME_STEP_US; epoch
 * was bumped and the caller should pass the new offset to the sampling task, and on the first
 * sync save the anchor), 0 when it did not, -PL_ERANGE for a wall time before 2020 (the clock
 * is not really set; nothing changes).
 */
int fw_time_sync(struct fw_time *t, int64_t mono_us, int64_t wall_us);

/* Wall-clock time at monotonic time mono_us through the live offset; -PL_ENOENT before sync. */
int fw_time_now(const struct fw_time *t, int64_t mono_us, int64_t *wall_us);

/* Stamps a record in place if it is not yet stamped (see enum fw_stamp). */
enum fw_stamp fw_time_stamp(const struct fw_time *t, struct fw_record *r);

#endif
