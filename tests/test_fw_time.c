/* SPDX-License-Identifier: MIT */
/*
 * Time-stamping before the clock is set (ports/esp32/main/logic/fw_time.c): records made
 * before SNTP keep monotonic time and are stamped with the boot's anchor, deterministically;
 * records of earlier boots through their saved anchors, or never; the live offset moves only
 * for steps beyond FW_TIME_STEP_US.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fw_time.h"
#include "powerlogger/common.h"

#define S INT64_C(1000000)
#define WALL0 (INT64_C(1735689600) * S) /* 2025-01-01T00:00:00Z */

static struct fw_record rec(uint32_t boot, int64_t start, uint8_t stamped)
{
	struct fw_record r = {0};

	r.rec.start_us = start;
	r.rec.length_s = 20;
	r.boot = boot;
	r.stamped = stamped;
	return r;
}

static void test_before_and_after_sync(void **state)
{
	struct fw_time t;
	struct fw_record r = rec(7, 40 * S, 0), again;
	int64_t w;

	(void)state;
	fw_time_init(&t, 7);
	assert_int_equal(fw_time_now(&t, 5 * S, &w), -PL_ENOENT);
	assert_int_equal(fw_time_stamp(&t, &r), FW_STAMP_WAIT);
	assert_int_equal(r.stamped, 0);
	assert_true(r.rec.start_us == 40 * S);

	/* at monotonic 100.25 s the clock says WALL0 + 0.6 s: offset WALL0 - 99.65 s */
	assert_int_equal(fw_time_sync(&t, 100250000, WALL0 + 600000), 1);
	assert_int_equal(t.epoch, 1);
	assert_int_equal(fw_time_now(&t, 100250000, &w), 0);
	assert_true(w == WALL0 + 600000);

	again = r;
	assert_int_equal(fw_time_stamp(&t, &r), FW_STAMP_OK);
	assert_int_equal(r.stamped, 1);
	/* 40 s monotonic = WALL0 - 59.65 s, rounded to the second: WALL0 - 60 s */
	assert_true(r.rec.start_us == WALL0 - 60 * S);
	/* stamping is idempotent and deterministic */
	assert_int_equal(fw_time_stamp(&t, &r), FW_STAMP_OK);
	assert_true(r.rec.start_us == WALL0 - 60 * S);
	assert_int_equal(fw_time_stamp(&t, &again), FW_STAMP_OK);
	assert_true(again.rec.start_us == r.rec.start_us);

	/* a record already stamped is left alone */
	r = rec(7, WALL0 + 20 * S, 1);
	assert_int_equal(fw_time_stamp(&t, &r), FW_STAMP_OK);
	assert_true(r.rec.start_us == WALL0 + 20 * S);
}

static void test_small_drift_kept_step_moves(void **state)
{
	struct fw_time t;
	struct fw_record r = rec(3, 10 * S, 0);

	(void)state;
	fw_time_init(&t, 3);
	assert_int_equal(fw_time_sync(&t, 10 * S, INT64_C(86400) * S), -PL_ERANGE); /* 1970 */
	assert_int_equal(t.synced, 0);
	assert_int_equal(fw_time_sync(&t, 10 * S, WALL0), 1);
	/* an hour later the crystal is 100 ms off: not worth cutting an interval */
	assert_int_equal(fw_time_sync(&t, 3610 * S, WALL0 + 3600 * S + 100000), 0);
	assert_int_equal(t.epoch, 1);
	/* the server's clock was stepped by 5 s: the live offset follows */
	assert_int_equal(fw_time_sync(&t, 7210 * S, WALL0 + 7205 * S), 1);
	assert_int_equal(t.epoch, 2);
	assert_true(t.offset_us == WALL0 - 5 * S);
	/* the anchor for records made before the first sync does not move */
	assert_true(t.anchor_us == WALL0 - 10 * S);
	assert_int_equal(fw_time_stamp(&t, &r), FW_STAMP_OK);
	assert_true(r.rec.start_us == WALL0);
}

static void test_earlier_boots(void **state)
{
	struct fw_time t;
	struct fw_record a = rec(4, 30 * S, 0), b = rec(5, 30 * S, 0);

	(void)state;
	fw_time_init(&t, 6);
	assert_int_equal(fw_time_add_anchor(&t, 6, 0), -PL_EINVAL);
	assert_int_equal(fw_time_add_anchor(&t, 4, WALL0), 0);
	/* boot 4 synced before it rebooted: its records can be stamped now, before our sync */
	assert_int_equal(fw_time_stamp(&t, &a), FW_STAMP_OK);
	assert_true(a.rec.start_us == WALL0 + 30 * S);
	/* boot 5 never learned the time: those records will never have a wall-clock time */
	assert_int_equal(fw_time_stamp(&t, &b), FW_STAMP_NEVER);
	assert_int_equal(fw_time_sync(&t, 1 * S, WALL0 + 900 * S), 1);
	assert_int_equal(fw_time_stamp(&t, &b), FW_STAMP_NEVER);

	/* only the newest FW_TIME_ANCHORS boots are remembered */
	for (uint32_t k = 100; k < 100 + FW_TIME_ANCHORS + 3; k++)
		assert_int_equal(fw_time_add_anchor(&t, k, (int64_t)k * S), 0);
	assert_int_equal(t.nold, FW_TIME_ANCHORS);
	a = rec(4, 0, 0);
	assert_int_equal(fw_time_stamp(&t, &a), FW_STAMP_NEVER);
	a = rec(100 + FW_TIME_ANCHORS + 2, 0, 0);
	assert_int_equal(fw_time_stamp(&t, &a), FW_STAMP_OK);
	assert_true(a.rec.start_us == (int64_t)(100 + FW_TIME_ANCHORS + 2) * S);
	/* an anchor older than all kept is not taken */
	assert_int_equal(fw_time_add_anchor(&t, 1, 0), 0);
	a = rec(1, 0, 0);
	assert_int_equal(fw_time_stamp(&t, &a), FW_STAMP_NEVER);
}

static void test_rounding_negative(void **state)
{
	struct fw_time t;
	struct fw_record r = rec(1, 1500000, 0);

	(void)state;
	fw_time_init(&t, 1);
	/* offsets are whole here, so monotonic 1.5 s rounds up to the next second */
	assert_int_equal(fw_time_sync(&t, 0, WALL0), 1);
	assert_int_equal(fw_time_stamp(&t, &r), FW_STAMP_OK);
	assert_true(r.rec.start_us == WALL0 + 2 * S);
	r = rec(1, -1400000, 0); /* before boot (a partial first interval's start) */
	assert_int_equal(fw_time_stamp(&t, &r), FW_STAMP_OK);
	assert_true(r.rec.start_us == WALL0 - 1 * S);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_before_and_after_sync),
		cmocka_unit_test(test_small_drift_kept_step_moves),
		cmocka_unit_test(test_earlier_boots),
		cmocka_unit_test(test_rounding_negative),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
