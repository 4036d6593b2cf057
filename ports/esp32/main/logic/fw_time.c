/* SPDX-License-Identifier: MIT */
/*
 * Monotonic to wall-clock time (see fw_time.h).
 */
#include "fw_time.h"

#include <string.h>

#include "powerlogger/common.h"

void fw_time_init(struct fw_time *t, uint32_t boot)
{
	memset(t, 0, sizeof(*t));
	t->boot = boot;
}

int fw_time_add_anchor(struct fw_time *t, uint32_t boot, int64_t offset_us)
{
	uint32_t i;

	if (boot == t->boot)
		return -PL_EINVAL;
	for (i = 0; i < t->nold; i++) {
		if (t->old[i].boot == boot) {
			t->old[i].offset_us = offset_us;
			return 0;
		}
	}
	if (t->nold == FW_TIME_ANCHORS) {
		/* forget the oldest boot (smallest counter) */
		uint32_t oldest = 0;

		for (i = 1; i < t->nold; i++)
			if (t->old[i].boot < t->old[oldest].boot)
				oldest = i;
		if (t->old[oldest].boot > boot)
			return 0; /* older than all we keep */
		t->old[oldest] = t->old[--t->nold];
	}
	t->old[t->nold].boot = boot;
	t->old[t->nold].reserved = 0;
	t->old[t->nold].offset_us = offset_us;
	t->nold++;
	return 0;
}

int fw_time_sync(struct fw_time *t, int64_t mono_us, int64_t wall_us)
{
	int64_t off, drift;

	if (wall_us < FW_TIME_MIN_WALL_US)
		return -PL_ERANGE;
	off = wall_us - mono_us;
	if (!t->synced) {
		t->synced = 1;
		t->anchor_us = off;
		t->offset_us = off;
		t->epoch++;
		return 1;
	}
	drift = off - t->offset_us;
	if (drift > FW_TIME_STEP_US || drift < -FW_TIME_STEP_US) {
		t->offset_us = off;
		t->epoch++;
		return 1;
	}
	return 0;
}

int fw_time_now(const struct fw_time *t, int64_t mono_us, int64_t *wall_us)
{
	if (!t->synced)
		return -PL_ENOENT;
	*wall_us = mono_us + t->offset_us;
	return 0;
}

/* Rounds to the nearest whole second (half up), for times of either sign. */
static int64_t round_s(int64_t us)
{
	int64_t q = us / PL_US_PER_S, rem = us % PL_US_PER_S;

	if (rem < 0) {
		rem += PL_US_PER_S;
		q--;
	}
	if (rem >= PL_US_PER_S / 2)
		q++;
	return q * PL_US_PER_S;
}

enum fw_stamp fw_time_stamp(const struct fw_time *t, struct fw_record *r)
{
	uint32_t i;

	if (r->stamped)
		return FW_STAMP_OK;
	if (r->boot == t->boot) {
		if (!t->synced)
			return FW_STAMP_WAIT;
		r->rec.start_us = round_s(r->rec.start_us + t->anchor_us);
		r->stamped = 1;
		return FW_STAMP_OK;
	}
	for (i = 0; i < t->nold; i++) {
		if (t->old[i].boot == r->boot) {
			r->rec.start_us = round_s(r->rec.start_us + t->old[i].offset_us);
			r->stamped = 1;
			return FW_STAMP_OK;
		}
	}
	return FW_STAMP_NEVER;
}
