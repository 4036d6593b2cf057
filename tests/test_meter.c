/* SPDX-License-Identifier: MIT */
/*
 * Tests of the meter arithmetic (src/core/meter.c): exact numbers for every function and edge
 * case, a randomised property test against an independent reference model, and a checkpoint
 * test (copy the state mid-stream, both copies go on identically).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "powerlogger/meter.h"
#include "testutil.h"

#define S(x) ((int64_t)(x) * PL_US_PER_S)
#define REC_MAX 4096

/* ------------------------------------------------------------------------------------------ */
/* Helpers */

static struct pl_meter meter(uint32_t imp, uint32_t interval_s)
{
	struct pl_meter m;
	struct pl_meter_config c = { .imp_per_kwh = imp, .interval_s = interval_s };

	assert_int_equal(pl_meter_init(&m, &c), 0);
	return m;
}

static struct pl_pulse pulse_at(int64_t t)
{
	return (struct pl_pulse){ .t_us = t, .width_us = 10000, .amplitude = 1, .confidence = 100 };
}

/* Feeds an accepted pulse that must close exactly `expect` records; returns its power. */
static int64_t feed(struct pl_meter *m, int64_t t, struct pl_interval_record *out, size_t cap,
		    size_t expect)
{
	struct pl_pulse p = pulse_at(t);
	int64_t power = -1;
	size_t n = 99;

	assert_int_equal(pl_meter_pulse(m, &p, &power, out, cap, &n), 0);
	assert_int_equal(n, expect);
	return power;
}

static void feed_ok(struct pl_meter *m, int64_t t)
{
	struct pl_interval_record r[8];

	(void)feed(m, t, r, 8, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Configuration */

static void test_config_default_and_init(void **state)
{
	struct pl_meter_config c;
	struct pl_meter m;

	(void)state;
	pl_meter_config_default(&c);
	assert_int_equal(c.imp_per_kwh, 1000);
	assert_int_equal(c.interval_s, 20);
	assert_int_equal(pl_meter_init(&m, NULL), 0);
	assert_int_equal(m.cfg.imp_per_kwh, 1000);
	assert_int_equal(m.cfg.interval_s, 20);
	assert_int_equal(pl_meter_register(&m), 0);
	assert_int_equal(m.cur_start, INT64_MIN);
	assert_int_equal(m.reserved, 0);

	assert_int_equal(pl_meter_init(NULL, NULL), -PL_EINVAL);
	c = (struct pl_meter_config){ .imp_per_kwh = 0, .interval_s = 20 };
	assert_int_equal(pl_meter_init(&m, &c), -PL_EINVAL);
	c.imp_per_kwh = 1000001;
	assert_int_equal(pl_meter_init(&m, &c), -PL_EINVAL);
	c.imp_per_kwh = 1000000;
	assert_int_equal(pl_meter_init(&m, &c), 0);
	c.imp_per_kwh = 1;
	assert_int_equal(pl_meter_init(&m, &c), 0);
	c.interval_s = 0;
	assert_int_equal(pl_meter_init(&m, &c), -PL_EINVAL);
	c.interval_s = 86401;
	assert_int_equal(pl_meter_init(&m, &c), -PL_EINVAL);
	c.interval_s = 86400;
	assert_int_equal(pl_meter_init(&m, &c), 0);
	c.interval_s = 1;
	assert_int_equal(pl_meter_init(&m, &c), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Energy */

static void test_pulses_uwh_exact(void **state)
{
	struct pl_meter m;

	(void)state;
	m = meter(1000, 20);
	assert_int_equal(pl_meter_pulses_uwh(&m, 0), 0);
	assert_int_equal(pl_meter_pulses_uwh(&m, 1), 1000000);
	assert_int_equal(pl_meter_pulses_uwh(&m, 12345), INT64_C(12345000000));
	m = meter(800, 20);
	assert_int_equal(pl_meter_pulses_uwh(&m, 1), 1250000);
	m = meter(3200, 20);
	assert_int_equal(pl_meter_pulses_uwh(&m, 1), 312500);
	m = meter(10000, 20);
	assert_int_equal(pl_meter_pulses_uwh(&m, 1), 100000);
	m = meter(1000000, 20);
	assert_int_equal(pl_meter_pulses_uwh(&m, 1), 1000);

	/* One rounding of the total, not a sum of rounded pulses: 1e9/3 = 333333333.33... */
	m = meter(3, 20);
	assert_int_equal(pl_meter_pulses_uwh(&m, 1), 333333333);
	assert_int_equal(pl_meter_pulses_uwh(&m, 2), 666666667);
	assert_int_equal(pl_meter_pulses_uwh(&m, 3), 1000000000);
	assert_int_equal(pl_meter_pulses_uwh(&m, 3000000001), INT64_C(1000000000333333333));
	assert_int_equal(pl_meter_pulses_uwh(&m, -1), -333333333);
	assert_int_equal(pl_meter_pulses_uwh(&m, -2), -666666667);
	m = meter(7, 20);
	assert_int_equal(pl_meter_pulses_uwh(&m, 1), 142857143); /* 142857142.857 */
	assert_int_equal(pl_meter_pulses_uwh(&m, 3), 428571429); /* 428571428.571 */

	/* Exact halves round away from zero: 1e9 / 640000 = 1562.5. */
	m = meter(640000, 20);
	assert_int_equal(pl_meter_pulses_uwh(&m, 1), 1563);
	assert_int_equal(pl_meter_pulses_uwh(&m, 2), 3125);
	assert_int_equal(pl_meter_pulses_uwh(&m, -1), -1563);
}

static void test_pulses_uwh_no_overflow(void **state)
{
	struct pl_meter m;

	(void)state;
	/* n * 1e9 would overflow 64 bits for n > 9.2e9; the split keeps it exact. */
	m = meter(1000000, 20);
	assert_int_equal(pl_meter_pulses_uwh(&m, INT64_C(9000000000000000)),
			 INT64_C(9000000000000000000));
	m = meter(10000, 20);
	assert_int_equal(pl_meter_pulses_uwh(&m, INT64_C(50000000000)), INT64_C(5000000000000000));
	assert_int_equal(pl_meter_pulses_uwh(&m, INT64_C(50000000001)), INT64_C(5000000000100000));
	/* Beyond the representable: saturates, no undefined behaviour. */
	assert_int_equal(pl_meter_pulses_uwh(&m, INT64_MAX), INT64_MAX);
	assert_int_equal(pl_meter_pulses_uwh(&m, INT64_MIN), INT64_MIN);
	m = meter(1, 20);
	assert_int_equal(pl_meter_pulses_uwh(&m, INT64_C(9223372036)), INT64_C(9223372036000000000));
	assert_int_equal(pl_meter_pulses_uwh(&m, INT64_C(9223372037)), INT64_MAX);
	m = meter(3, 20);
	assert_int_equal(pl_meter_pulses_uwh(&m, INT64_MAX), INT64_MAX);
}

static void test_register_and_set(void **state)
{
	struct pl_meter m = meter(1000, 20);
	struct pl_meter before;

	(void)state;
	assert_int_equal(pl_meter_register(&m), 0);
	feed_ok(&m, S(1));
	feed_ok(&m, S(2));
	assert_int_equal(pl_meter_register(&m), 2000000);
	assert_int_equal(pl_meter_set_register(NULL, 5), -PL_EINVAL);
	before = m;
	assert_int_equal(pl_meter_set_register(&m, -1), -PL_EINVAL);
	assert_memory_equal(&m, &before, sizeof m);
	assert_int_equal(pl_meter_set_register(&m, INT64_C(123456789012)), 0);
	assert_int_equal(pl_meter_register(&m), INT64_C(123456789012));
	assert_int_equal(m.count, 0);
	feed_ok(&m, S(3));
	feed_ok(&m, S(4));
	feed_ok(&m, S(5));
	assert_int_equal(pl_meter_register(&m), INT64_C(123456789012) + 3000000);
	assert_int_equal(pl_meter_set_register(&m, 0), 0);
	assert_int_equal(pl_meter_register(&m), 0);

	/* Near the top the register saturates instead of wrapping. */
	assert_int_equal(pl_meter_set_register(&m, INT64_MAX - 500000), 0);
	feed_ok(&m, S(6));
	assert_int_equal(pl_meter_register(&m), INT64_MAX);
}

static void test_register_set_mid_interval(void **state)
{
	struct pl_meter m = meter(1000, 20);
	struct pl_interval_record r[4];

	(void)state;
	assert_int_equal(pl_meter_start(&m, 0), 0);
	feed_ok(&m, S(1));
	feed_ok(&m, S(2));
	feed_ok(&m, S(3));
	assert_int_equal(pl_meter_set_register(&m, INT64_C(5000000000)), 0); /* 5 kWh */
	feed_ok(&m, S(4));
	(void)feed(&m, S(21), r, 4, 1);
	/* The interval keeps all four pulses; the register is the new base plus one pulse. */
	assert_int_equal(r[0].start_us, 0);
	assert_int_equal(r[0].pulses, 4);
	assert_int_equal(r[0].energy_uwh, 4000000);
	assert_int_equal(r[0].avg_mw, 720000);
	assert_int_equal(r[0].register_uwh, INT64_C(5001000000));
	assert_int_equal(r[0].flags, 0);
	assert_int_equal(pl_meter_advance(&m, S(40), r, 4), 1);
	assert_int_equal(r[0].start_us, S(20));
	assert_int_equal(r[0].pulses, 1);
	assert_int_equal(r[0].energy_uwh, 1000000);
	assert_int_equal(r[0].register_uwh, INT64_C(5002000000));
}

/* ------------------------------------------------------------------------------------------ */
/* Intervals */

static void test_exact_3600_watts(void **state)
{
	struct pl_meter m = meter(1000, 20);
	struct pl_interval_record r[2];
	int64_t power;
	int i;

	(void)state;
	assert_int_equal(pl_meter_start(&m, 0), 0);
	/* 20 pulses of 1 Wh, one per second, in one 20 s interval: 20 Wh in 20 s = 3600 W. */
	for (i = 0; i < 20; i++) {
		power = feed(&m, S(i), r, 2, 0);
		assert_int_equal(power, i == 0 ? 0 : 3600000);
	}
	assert_int_equal(pl_meter_advance(&m, S(20), r, 2), 1);
	assert_int_equal(r[0].start_us, 0);
	assert_int_equal(r[0].length_s, 20);
	assert_int_equal(r[0].pulses, 20);
	assert_int_equal(r[0].rejected, 0);
	assert_int_equal(r[0].flags, 0);
	assert_int_equal(r[0].energy_uwh, 20000000);
	assert_int_equal(r[0].avg_mw, 3600000);
	assert_int_equal(r[0].peak_mw, 3600000);
	assert_int_equal(r[0].register_uwh, 20000000);
	assert_int_equal(pl_meter_advance(&m, S(20), r, 2), 0);
}

static void test_avg_rounding(void **state)
{
	struct pl_meter m = meter(1000, 7);
	struct pl_interval_record r[2];

	(void)state;
	assert_int_equal(pl_meter_start(&m, 0), 0);
	feed_ok(&m, S(1));
	assert_int_equal(pl_meter_advance(&m, S(7), r, 2), 1);
	assert_int_equal(r[0].energy_uwh, 1000000);
	assert_int_equal(r[0].avg_mw, 514286); /* 1 Wh in 7 s = 514.2857 W */

	m = meter(1000000, 1); /* 1 mWh per pulse */
	assert_int_equal(pl_meter_start(&m, 0), 0);
	feed_ok(&m, 0);
	assert_int_equal(pl_meter_advance(&m, S(1), r, 2), 1);
	assert_int_equal(r[0].energy_uwh, 1000);
	assert_int_equal(r[0].avg_mw, 3600);

	m = meter(1000, 86400); /* 1 Wh in a day = 41.666 mW */
	assert_int_equal(pl_meter_start(&m, 0), 0);
	feed_ok(&m, S(5));
	assert_int_equal(pl_meter_advance(&m, S(86400), r, 2), 1);
	assert_int_equal(r[0].avg_mw, 42);
}

static void test_boundary_belongs_to_next_interval(void **state)
{
	struct pl_meter m = meter(1000, 20);
	struct pl_interval_record r[4];

	(void)state;
	assert_int_equal(pl_meter_start(&m, 0), 0);
	feed_ok(&m, S(20) - 1);
	/* A pulse exactly at the end of an interval closes it and counts in the next. */
	(void)feed(&m, S(20), r, 4, 1);
	assert_int_equal(r[0].start_us, 0);
	assert_int_equal(r[0].pulses, 1);
	assert_int_equal(r[0].register_uwh, 1000000);
	assert_int_equal(pl_meter_advance(&m, S(40) - 1, r, 4), 0);
	assert_int_equal(pl_meter_advance(&m, S(40), r, 4), 1);
	assert_int_equal(r[0].start_us, S(20));
	assert_int_equal(r[0].pulses, 1);
	assert_int_equal(r[0].register_uwh, 2000000);
	assert_int_equal(r[0].peak_mw, 3600000000000); /* 1 Wh in 1 us */
}

static void test_first_interval_partial(void **state)
{
	struct pl_meter m;
	struct pl_interval_record r[4];

	(void)state;
	/* Started exactly on a boundary: complete. */
	m = meter(1000, 20);
	assert_int_equal(pl_meter_start(&m, S(40)), 0);
	assert_int_equal(pl_meter_advance(&m, S(80), r, 4), 2);
	assert_int_equal(r[0].start_us, S(40));
	assert_int_equal(r[0].flags, 0);
	assert_int_equal(r[1].flags, 0);

	/* One microsecond late: partial, and only the first. */
	m = meter(1000, 20);
	assert_int_equal(pl_meter_start(&m, S(40) + 1), 0);
	assert_int_equal(pl_meter_advance(&m, S(80), r, 4), 2);
	assert_int_equal(r[0].start_us, S(40));
	assert_int_equal(r[0].flags, PL_Q_PARTIAL);
	assert_int_equal(r[1].start_us, S(60));
	assert_int_equal(r[1].flags, 0);

	/* The first pulse starts observation at its own time. */
	m = meter(1000, 20);
	feed_ok(&m, S(60));
	assert_int_equal(pl_meter_advance(&m, S(80), r, 4), 1);
	assert_int_equal(r[0].flags, 0);
	assert_int_equal(r[0].pulses, 1);
	m = meter(1000, 20);
	feed_ok(&m, S(61));
	assert_int_equal(pl_meter_advance(&m, S(80), r, 4), 1);
	assert_int_equal(r[0].start_us, S(60));
	assert_int_equal(r[0].flags, PL_Q_PARTIAL);

	/* So does the first advance. */
	m = meter(1000, 20);
	assert_int_equal(pl_meter_advance(&m, S(65), r, 4), 0);
	assert_int_equal(m.cur_start, S(60));
	assert_int_equal(pl_meter_advance(&m, S(80), r, 4), 1);
	assert_int_equal(r[0].flags, PL_Q_PARTIAL);
	assert_int_equal(r[0].pulses, 0);

	/* Start twice: refused. */
	assert_int_equal(pl_meter_start(&m, S(90)), -PL_EINVAL);
	assert_int_equal(pl_meter_start(NULL, 0), -PL_EINVAL);
}

static void test_negative_times(void **state)
{
	struct pl_meter m = meter(1000, 20);
	struct pl_interval_record r[8];

	(void)state;
	/* Floor alignment: -1 us lies in [-20 s, 0). */
	feed_ok(&m, -1);
	assert_int_equal(m.cur_start, -S(20));
	(void)feed(&m, 0, r, 8, 1);
	assert_int_equal(r[0].start_us, -S(20));
	assert_int_equal(r[0].pulses, 1);
	assert_int_equal(r[0].flags, PL_Q_PARTIAL);
	assert_int_equal(pl_meter_advance(&m, S(20), r, 8), 1);
	assert_int_equal(r[0].start_us, 0);
	assert_int_equal(r[0].pulses, 1);
	assert_int_equal(r[0].peak_mw, 3600000000000);

	m = meter(1000, 20);
	assert_int_equal(pl_meter_start(&m, -S(40)), 0); /* on a boundary */
	feed_ok(&m, -S(40) - 0);
	feed_ok(&m, -S(20) - 1);
	(void)feed(&m, -S(20), r, 8, 1);
	assert_int_equal(r[0].start_us, -S(40));
	assert_int_equal(r[0].flags, 0);
	assert_int_equal(r[0].pulses, 2);
	(void)feed(&m, S(25), r, 8, 2); /* closes [-20 s, 0) and [0, 20 s) */
	assert_int_equal(r[0].start_us, -S(20));
	assert_int_equal(r[0].pulses, 1);
	assert_int_equal(r[1].start_us, 0);
	assert_int_equal(r[1].pulses, 0);

	m = meter(1000, 20);
	assert_int_equal(pl_meter_start(&m, -S(40) - 1), 0);
	assert_int_equal(m.cur_start, -S(60));
	assert_int_equal(m.cur_flags, PL_Q_PARTIAL);
}

static void test_big_gap_empty_intervals(void **state)
{
	struct pl_meter m = meter(1000, 20);
	struct pl_interval_record r[8];
	int64_t power;
	int i;

	(void)state;
	assert_int_equal(pl_meter_start(&m, 0), 0);
	feed_ok(&m, S(1));
	power = feed(&m, S(101), r, 8, 5);
	assert_int_equal(power, 36000); /* 1 Wh in 100 s = 36 W */
	for (i = 0; i < 5; i++) {
		assert_int_equal(r[i].start_us, S(20) * i);
		assert_int_equal(r[i].pulses, i == 0 ? 1 : 0);
		assert_int_equal(r[i].energy_uwh, i == 0 ? 1000000 : 0);
		assert_int_equal(r[i].avg_mw, i == 0 ? 180000 : 0);
		assert_int_equal(r[i].peak_mw, 0);
		assert_int_equal(r[i].register_uwh, 1000000);
		assert_int_equal(r[i].flags, 0);
	}
	assert_int_equal(pl_meter_advance(&m, S(120), r, 8), 1);
	assert_int_equal(r[0].start_us, S(100));
	assert_int_equal(r[0].peak_mw, 36000);
	assert_int_equal(r[0].register_uwh, 2000000);
}

static void test_enospc_consumes_nothing(void **state)
{
	struct pl_meter m = meter(1000, 20);
	struct pl_meter before;
	struct pl_interval_record r[8];
	struct pl_pulse p = pulse_at(S(100));
	int64_t power = -1;
	size_t n = 99;

	(void)state;
	assert_int_equal(pl_meter_start(&m, 0), 0);
	feed_ok(&m, S(1));
	before = m;
	/* Needs 5 records, room for 3. */
	assert_int_equal(pl_meter_pulse(&m, &p, &power, r, 3, &n), -PL_ENOSPC);
	assert_int_equal(n, 0);
	assert_int_equal(power, 0);
	assert_memory_equal(&m, &before, sizeof m);
	assert_int_equal(pl_meter_pulse(&m, &p, &power, NULL, 0, NULL), -PL_ENOSPC);
	assert_memory_equal(&m, &before, sizeof m);
	/* Exactly enough room works. */
	assert_int_equal(pl_meter_pulse(&m, &p, &power, r, 5, &n), 0);
	assert_int_equal(n, 5);
	assert_int_equal(r[4].start_us, S(80));
	assert_int_equal(power, 36364); /* 1 Wh in 99 s = 36.3636 W */

	/* Or advance first, in pieces, and then feed the pulse again. */
	m = before;
	assert_int_equal(pl_meter_advance(&m, S(100), r, 3), 3);
	assert_int_equal(r[0].start_us, 0);
	assert_int_equal(r[2].start_us, S(40));
	assert_int_equal(pl_meter_advance(&m, S(100), r, 3), 2);
	assert_int_equal(r[1].start_us, S(80));
	assert_int_equal(pl_meter_advance(&m, S(100), r, 3), 0);
	assert_int_equal(pl_meter_pulse(&m, &p, &power, NULL, 0, NULL), 0);
	assert_int_equal(pl_meter_register(&m), 2000000);

	/* Argument errors. */
	assert_int_equal(pl_meter_pulse(&m, &p, &power, NULL, 1, &n), -PL_EINVAL);
	assert_int_equal(pl_meter_pulse(&m, &p, &power, r, 1, NULL), -PL_EINVAL);
	assert_int_equal(pl_meter_pulse(&m, NULL, &power, r, 1, &n), -PL_EINVAL);
	assert_int_equal(pl_meter_pulse(NULL, &p, &power, r, 1, &n), -PL_EINVAL);
	assert_int_equal(pl_meter_advance(NULL, S(200), r, 1), 0);
	assert_int_equal(pl_meter_advance(&m, S(200), NULL, 1), 0);
}

static void test_eorder(void **state)
{
	struct pl_meter m = meter(1000, 20);
	struct pl_meter before;
	struct pl_interval_record r[4];
	struct pl_pulse p = pulse_at(S(4));
	int64_t power = -1;
	size_t n = 99;

	(void)state;
	feed_ok(&m, S(5));
	before = m;
	assert_int_equal(pl_meter_pulse(&m, &p, &power, r, 4, &n), -PL_EORDER);
	assert_int_equal(power, 0);
	assert_int_equal(n, 0);
	assert_memory_equal(&m, &before, sizeof m);
	/* The same time again is not backwards. */
	assert_int_equal(feed(&m, S(5), r, 4, 0), 3600000000000);

	/* Time passed by advance is final too. */
	assert_int_equal(pl_meter_advance(&m, S(10), r, 4), 0);
	p.t_us = S(10) - 1;
	assert_int_equal(pl_meter_pulse(&m, &p, &power, r, 4, &n), -PL_EORDER);
	assert_int_equal(pl_meter_advance(&m, S(9), r, 4), 0); /* ignored */
	assert_int_equal(m.t_last, S(10));
	assert_int_equal(pl_meter_flush(&m, S(9), r), -PL_EORDER);
	assert_int_equal(pl_meter_flush(&m, S(10), r), 1);
	assert_int_equal(pl_meter_start(&m, S(9)), -PL_EORDER);
	assert_int_equal(pl_meter_start(&m, S(10)), 0);
}

static void test_rejected_pulses(void **state)
{
	struct pl_meter m = meter(1000, 20);
	struct pl_interval_record r[4];
	struct pl_pulse p = pulse_at(S(1) + 500);
	int64_t power = -1;
	size_t n;

	(void)state;
	assert_int_equal(pl_meter_start(&m, 0), 0);
	feed_ok(&m, S(1));
	p.flags = PL_PULSE_REJECTED;
	assert_int_equal(pl_meter_pulse(&m, &p, &power, r, 4, &n), 0);
	assert_int_equal(power, 0);
	assert_int_equal(pl_meter_register(&m), 1000000);
	/* The next gap is measured from the last accepted pulse, not the rejected one. */
	assert_int_equal(feed(&m, S(3), r, 4, 0), 1800000);
	assert_int_equal(pl_meter_advance(&m, S(20), r, 4), 1);
	assert_int_equal(r[0].pulses, 2);
	assert_int_equal(r[0].rejected, 1);
	assert_int_equal(r[0].flags, PL_Q_REJECTED);
	assert_int_equal(r[0].energy_uwh, 2000000);
	assert_int_equal(r[0].peak_mw, 1800000);

	/* The flag does not leak into the next interval; a rejected pulse alone opens one. */
	p.t_us = S(25);
	assert_int_equal(pl_meter_pulse(&m, &p, &power, r, 4, &n), 0);
	assert_int_equal(pl_meter_advance(&m, S(60), r, 4), 2);
	assert_int_equal(r[0].rejected, 1);
	assert_int_equal(r[0].pulses, 0);
	assert_int_equal(r[0].flags, PL_Q_REJECTED);
	assert_int_equal(r[1].flags, 0);
	assert_int_equal(r[1].rejected, 0);

	/* A rejected first pulse starts observation but is no "previous pulse". */
	m = meter(1000, 20);
	p.t_us = S(1);
	assert_int_equal(pl_meter_pulse(&m, &p, &power, r, 4, &n), 0);
	assert_int_equal(m.last_pulse_t, INT64_MIN);
	assert_int_equal(feed(&m, S(2), r, 4, 0), 0);
}

static void test_peak(void **state)
{
	struct pl_meter m = meter(1000, 20);
	struct pl_interval_record r[4];

	(void)state;
	assert_int_equal(pl_meter_start(&m, 0), 0);
	assert_int_equal(feed(&m, 0, r, 4, 0), 0);
	assert_int_equal(feed(&m, S(10), r, 4, 0), 360000);
	assert_int_equal(feed(&m, S(11), r, 4, 0), 3600000);
	assert_int_equal(feed(&m, S(15), r, 4, 0), 900000);
	/* The first pulse of the next interval: its gap began in the previous one. */
	assert_int_equal(feed(&m, S(23), r, 4, 1), 450000);
	assert_int_equal(r[0].peak_mw, 3600000);
	assert_int_equal(pl_meter_advance(&m, S(40), r, 4), 1);
	assert_int_equal(r[0].peak_mw, 450000);
	assert_int_equal(pl_meter_advance(&m, S(60), r, 4), 1);
	assert_int_equal(r[0].peak_mw, 0);
}

static void test_flush(void **state)
{
	struct pl_meter m = meter(1000, 20);
	struct pl_interval_record r[4], f;

	(void)state;
	assert_int_equal(pl_meter_flush(&m, S(1), &f), 0); /* nothing observed */
	assert_int_equal(pl_meter_flush(NULL, S(1), &f), -PL_EINVAL);
	assert_int_equal(pl_meter_flush(&m, S(1), NULL), -PL_EINVAL);

	/* Early end: partial record, then nothing open. */
	assert_int_equal(pl_meter_start(&m, 0), 0);
	feed_ok(&m, S(1));
	feed_ok(&m, S(2));
	assert_int_equal(pl_meter_flush(&m, S(10), &f), 1);
	assert_int_equal(f.start_us, 0);
	assert_int_equal(f.length_s, 20);
	assert_int_equal(f.pulses, 2);
	assert_int_equal(f.flags, PL_Q_PARTIAL);
	assert_int_equal(f.energy_uwh, 2000000);
	assert_int_equal(f.avg_mw, 360000);
	assert_int_equal(f.peak_mw, 3600000);
	assert_int_equal(f.register_uwh, 2000000);
	assert_int_equal(m.cur_start, INT64_MIN);
	assert_int_equal(pl_meter_flush(&m, S(11), &f), 0);
	/* A new observation afterwards; the power goes on from the last pulse. */
	assert_int_equal(feed(&m, S(12), r, 4, 0), 360000);
	assert_int_equal(m.cur_start, 0);
	assert_int_equal(m.cur_flags, PL_Q_PARTIAL);

	/* Flushing past the end of the open interval: complete records first, then the tail. */
	m = meter(1000, 20);
	assert_int_equal(pl_meter_start(&m, 0), 0);
	feed_ok(&m, S(1));
	assert_int_equal(pl_meter_flush(&m, S(45), &f), 1);
	assert_int_equal(f.start_us, 0);
	assert_int_equal(f.flags, 0);
	assert_int_equal(f.pulses, 1);
	assert_int_equal(pl_meter_flush(&m, S(45), &f), 1);
	assert_int_equal(f.start_us, S(20));
	assert_int_equal(f.flags, 0);
	assert_int_equal(pl_meter_flush(&m, S(45), &f), 1);
	assert_int_equal(f.start_us, S(40));
	assert_int_equal(f.flags, PL_Q_PARTIAL);
	assert_int_equal(pl_meter_flush(&m, S(45), &f), 0);

	/* Flushing exactly at a boundary after advancing: nothing left to write. */
	m = meter(1000, 20);
	assert_int_equal(pl_meter_start(&m, 0), 0);
	assert_int_equal(pl_meter_advance(&m, S(40), r, 4), 2);
	assert_int_equal(pl_meter_flush(&m, S(40), &f), 0);
	assert_int_equal(m.cur_start, INT64_MIN);

	/* ... unless a pulse came exactly at that instant. */
	m = meter(1000, 20);
	assert_int_equal(pl_meter_start(&m, 0), 0);
	(void)feed(&m, S(40), r, 4, 2);
	assert_int_equal(pl_meter_flush(&m, S(40), &f), 1);
	assert_int_equal(f.start_us, S(40));
	assert_int_equal(f.pulses, 1);
	assert_int_equal(f.flags, PL_Q_PARTIAL);
}

static void test_flag(void **state)
{
	struct pl_meter m = meter(1000, 20);
	struct pl_interval_record r[4];

	(void)state;
	pl_meter_flag(&m, PL_Q_GAP); /* before start: goes to the first interval */
	pl_meter_flag(NULL, PL_Q_GAP);
	assert_int_equal(pl_meter_start(&m, 0), 0);
	assert_int_equal(pl_meter_advance(&m, S(10), r, 4), 0);
	pl_meter_flag(&m, PL_Q_STEADY);
	assert_int_equal(pl_meter_advance(&m, S(30), r, 4), 1);
	assert_int_equal(r[0].flags, PL_Q_GAP | PL_Q_STEADY);
	pl_meter_flag(&m, PL_Q_NO_SIGNAL);
	assert_int_equal(pl_meter_advance(&m, S(60), r, 4), 2);
	assert_int_equal(r[0].flags, PL_Q_NO_SIGNAL);
	assert_int_equal(r[1].flags, 0);
}

static void test_time_range(void **state)
{
	struct pl_meter m = meter(1000, 86400);
	struct pl_interval_record r[4];
	struct pl_pulse p = pulse_at(PL_METER_T_LIMIT + 1);
	int64_t power;
	size_t n;

	(void)state;
	assert_int_equal(pl_meter_pulse(&m, &p, &power, r, 4, &n), -PL_ERANGE);
	p.t_us = -PL_METER_T_LIMIT - 1;
	assert_int_equal(pl_meter_pulse(&m, &p, &power, r, 4, &n), -PL_ERANGE);
	p.t_us = INT64_MIN;
	assert_int_equal(pl_meter_pulse(&m, &p, &power, r, 4, &n), -PL_ERANGE);
	assert_int_equal(pl_meter_start(&m, INT64_MAX), -PL_ERANGE);
	assert_int_equal(pl_meter_flush(&m, INT64_MAX, r), 0); /* not observing */

	/* The extremes themselves work. */
	assert_int_equal(pl_meter_start(&m, -PL_METER_T_LIMIT), 0);
	assert_int_equal(m.cur_start % (INT64_C(86400) * PL_US_PER_S), 0);
	assert_true(m.cur_start <= -PL_METER_T_LIMIT);
	feed_ok(&m, -PL_METER_T_LIMIT);
	assert_int_equal(pl_meter_flush(&m, -PL_METER_T_LIMIT + 1, r), 1);
	assert_int_equal(r[0].pulses, 1);

	m = meter(1000, 86400);
	feed_ok(&m, PL_METER_T_LIMIT);
	assert_int_equal(pl_meter_flush(&m, PL_METER_T_LIMIT, r), 1);
	assert_int_equal(r[0].pulses, 1);
	assert_int_equal(pl_meter_flush(&m, INT64_MAX, r), 0);

	/* advance beyond the limit is taken as the limit. */
	m = meter(1000, 86400);
	feed_ok(&m, PL_METER_T_LIMIT - 5);
	assert_int_equal(pl_meter_advance(&m, INT64_MAX, r, 4), 0);
	assert_int_equal(m.t_last, PL_METER_T_LIMIT);
}

/* ------------------------------------------------------------------------------------------ */
/* Power */

static void test_power_from_gap(void **state)
{
	struct pl_meter m;

	(void)state;
	m = meter(1000, 20);
	assert_int_equal(feed(&m, 0, NULL, 0, 0), 0);
	assert_int_equal(feed(&m, S(1), NULL, 0, 0), 3600000);      /* 1 Wh in 1 s */
	assert_int_equal(feed(&m, S(3), NULL, 0, 0), 1800000);
	assert_int_equal(feed(&m, S(6), NULL, 0, 0), 1200000);
	assert_int_equal(feed(&m, S(13), NULL, 0, 0), 514286);      /* 514285.71 */
	assert_int_equal(feed(&m, S(13) + 50000, NULL, 0, 0), 72000000); /* 72 kW */
	assert_int_equal(feed(&m, S(13) + 50000, NULL, 0, 0), 3600000000000); /* same time: 1 us */

	m = meter(10000, 20);
	assert_int_equal(feed(&m, 0, NULL, 0, 0), 0);
	assert_int_equal(feed(&m, S(1), NULL, 0, 0), 360000);
	assert_int_equal(feed(&m, S(1) + 1, NULL, 0, 0), 360000000000);
	m = meter(800, 20);
	assert_int_equal(feed(&m, 0, NULL, 0, 0), 0);
	assert_int_equal(feed(&m, S(1), NULL, 0, 0), 4500000);
	m = meter(1000000, 20);
	assert_int_equal(feed(&m, 0, NULL, 0, 0), 0);
	assert_int_equal(feed(&m, 1, NULL, 0, 0), 3600000000);
}

static void test_power_overflow_safety(void **state)
{
	struct pl_meter m = meter(10000, 86400);
	struct pl_interval_record *r = calloc(2048, sizeof *r);
	struct pl_pulse p;
	int64_t bound, power;
	size_t n;
	uint64_t total = 0;

	(void)state;
	assert_non_null(r);
	/* Huge gaps at 10000 imp/kWh: the product imp * gap leaves 64 bits; the power is 0. */
	assert_int_equal(feed(&m, -PL_METER_T_LIMIT, r, 0, 0), 0);
	assert_int_equal(pl_meter_power(&m, INT64_MAX, &bound), 0);
	assert_int_equal(bound, 0);
	assert_int_equal(pl_meter_power(&m, INT64_MIN, &bound), 0);
	assert_int_equal(bound, 360000000000); /* earlier than the pulse: taken as 1 us */

	m = meter(10000, 86400);
	feed_ok(&m, 0);
	/* 1e11 us gap: 3.6e15 / 1e15 = 3.6 mW -> 4; 1e12 us: 0.36 -> 0. */
	assert_int_equal(feed(&m, INT64_C(100000000000), r, 2048, 1), 4);
	/* 1000 days later: 1000 daily records at once; one fewer slot is refused. */
	p = pulse_at(INT64_C(100000000000) + INT64_C(1000) * S(86400));
	assert_int_equal(pl_meter_pulse(&m, &p, &power, r, 999, &n), -PL_ENOSPC);
	assert_int_equal(pl_meter_pulse(&m, &p, &power, r, 1000, &n), 0);
	assert_int_equal(n, 1000);
	assert_int_equal(power, 0);
	for (size_t i = 0; i < n; i++)
		total += r[i].pulses;
	assert_int_equal(total, 1);
	assert_int_equal(r[0].start_us, S(86400));
	assert_int_equal(r[999].start_us, INT64_C(1000) * S(86400));
	assert_int_equal(r[999].register_uwh, 200000);

	/* Gap of 2^62 us at the largest constant. */
	m = meter(1000000, 86400);
	feed_ok(&m, -PL_METER_T_LIMIT);
	p = pulse_at(0);
	assert_int_equal(pl_meter_pulse(&m, &p, &power, NULL, 0, NULL), -PL_ENOSPC);
	assert_int_equal(pl_meter_power(&m, PL_METER_T_LIMIT, &bound), 0);
	assert_int_equal(bound, 0);
	free(r);
}

static void test_power_bound_decays(void **state)
{
	struct pl_meter m = meter(1000, 20);
	int64_t bound = 0;

	(void)state;
	/* Nothing known yet. */
	assert_int_equal(pl_meter_power(&m, S(5), &bound), 0);
	assert_int_equal(bound, INT64_MAX);
	assert_int_equal(pl_meter_power(&m, S(5), NULL), 0);

	/* One pulse: a bound, but no power yet. */
	feed_ok(&m, 0);
	assert_int_equal(pl_meter_power(&m, S(2), &bound), 0);
	assert_int_equal(bound, 1800000);

	feed_ok(&m, S(1)); /* gap 1 s: 3600 W */
	assert_int_equal(pl_meter_power(&m, S(1), &bound), 3600000);
	assert_int_equal(bound, 3600000000000); /* at the pulse itself: 1 us */
	assert_int_equal(pl_meter_power(&m, S(1) + 500000, &bound), 3600000);
	assert_int_equal(bound, 7200000);
	assert_int_equal(pl_meter_power(&m, S(2), &bound), 3600000);
	assert_int_equal(bound, 3600000);
	/* After the last gap has passed without a pulse, the bound takes over and falls. */
	assert_int_equal(pl_meter_power(&m, S(2) + 500000, &bound), 2400000);
	assert_int_equal(bound, 2400000);
	assert_int_equal(pl_meter_power(&m, S(11), &bound), 360000);
	assert_int_equal(pl_meter_power(&m, S(3601), &bound), 1000);
	assert_int_equal(pl_meter_power(&m, S(1) + S(86400) * 365, &bound), 0);
	assert_int_equal(bound, 0);
	/* A time before the last pulse is taken as the pulse's own time. */
	assert_int_equal(pl_meter_power(&m, 0, &bound), 3600000);
	assert_int_equal(bound, 3600000000000);

	/* A rejected pulse does not reset the bound. */
	{
		struct pl_pulse p = pulse_at(S(10));
		size_t n;

		p.flags = PL_PULSE_REJECTED;
		assert_int_equal(pl_meter_pulse(&m, &p, NULL, NULL, 0, &n), 0);
		assert_int_equal(pl_meter_power(&m, S(10), &bound), 400000);
	}
}

/* ------------------------------------------------------------------------------------------ */
/* Property test: random pulse trains against an independent reference model. */


static int64_t rnd_range(int64_t lo, int64_t hi) /* inclusive */
{
	return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* Reference conversions, straight from the definitions, in 128 bits (testutil.h). */
static int64_t ref_uwh(int64_t n, uint32_t imp)
{
	struct i128 num = i128_mul(i128_of(n), i128_of(1000000000));

	/* (2 * num + imp) / (2 * imp), n >= 0 */
	return i128_to_i64(i128_div(i128_add(i128_add(num, num), i128_of(imp)),
				    i128_of(2 * (int64_t)imp)));
}

static int64_t ref_power(int64_t gap, uint32_t imp)
{
	struct i128 d = i128_mul(i128_of(imp), i128_of(gap < 1 ? 1 : gap));

	/* (2 * 3600000000000000 + d) / (2 * d) */
	return i128_to_i64(i128_div(i128_add(i128_of(2 * INT64_C(3600000000000000)), d),
				    i128_add(d, d)));
}

static int64_t ref_avg(int64_t uwh, uint32_t len_s)
{
	struct i128 d = i128_of(10 * (int64_t)len_s);

	/* (uwh * 36 * 2 + d) / (2 * d) */
	return i128_to_i64(i128_div(i128_add(i128_mul(i128_of(uwh), i128_of(72)), d),
				    i128_add(d, d)));
}

/* The 128-bit reference arithmetic itself: known values, the division's defining properties
 * on random operands and, where the compiler has __int128 (64-bit targets), agreement with it. */
static void test_reference_i128(void **state)
{
	struct i128 m = i128_mul(i128_of(INT64_MAX), i128_of(INT64_MAX));
	struct i128 n = i128_mul(i128_of(INT64_MIN), i128_of(3));
	int i;

	(void)state;
	assert_true(m.hi == UINT64_C(0x3fffffffffffffff) && m.lo == 1);
	assert_true(n.hi == UINT64_MAX - 1 && n.lo == UINT64_C(0x8000000000000000));
	assert_int_equal(i128_to_i64(i128_div(i128_of(-7), i128_of(2))), -3);
	assert_int_equal(i128_to_i64(i128_div(i128_of(7), i128_of(-2))), -3);
	assert_int_equal(i128_to_i64(i128_div(m, i128_of(INT64_MAX))), INT64_MAX);
	assert_int_equal(i128_cmp(i128_of(-1), i128_of(0)), -1);
	assert_int_equal(i128_cmp(m, i128_of(INT64_MAX)), 1);
	rng_state = 0x1280;
	for (i = 0; i < 20000; i++) {
		int64_t x = (int64_t)rnd() >> (rnd() % 64), y = (int64_t)rnd() >> (rnd() % 64);
		int64_t z = (int64_t)rnd() >> (rnd() % 64), b = (int64_t)rnd() >> (rnd() % 64);
		struct i128 a = i128_add(i128_mul(i128_of(x), i128_of(y)), i128_of(z)), q, r, ab;

		if (b == 0)
			b = 1;
		q = i128_div(a, i128_of(b));
		r = i128_sub(a, i128_mul(q, i128_of(b)));
		ab = i128_is_neg(r) ? i128_neg(r) : r;
		/* |r| < |b|, and r has the sign of a (truncation toward zero) */
		assert_true(i128_cmp(ab, i128_of(b < 0 ? -(b + 1) : b - 1)) <= 0);
		assert_true(r.hi == 0 && r.lo == 0 ? 1 : i128_is_neg(r) == i128_is_neg(a));
#ifdef __SIZEOF_INT128__
		{
			__int128 wa = (__int128)x * y + z, wq = wa / b;

			assert_true(a.hi == (uint64_t)((unsigned __int128)wa >> 64) &&
				    a.lo == (uint64_t)wa);
			assert_true(q.hi == (uint64_t)((unsigned __int128)wq >> 64) &&
				    q.lo == (uint64_t)wq);
			assert_int_equal(i128_cmp(a, i128_of(z)), (wa > z) - (wa < z));
		}
#endif
	}
}

struct ev {
	int64_t t;
	int rejected;
	int64_t set_reg; /* >= 0: set the register to this right after this pulse */
};

struct collector {
	struct pl_interval_record *r;
	size_t n;
};

static void collect_advance(struct pl_meter *m, int64_t t, struct collector *c, size_t cap)
{
	size_t got;

	if (cap == 0)
		cap = 1;
	do {
		assert_true(c->n + cap <= REC_MAX);
		got = pl_meter_advance(m, t, c->r + c->n, cap);
		c->n += got;
	} while (got == cap);
}

static void check_records(const struct pl_interval_record *r, size_t nr, const struct ev *ev,
			  size_t ne, uint32_t imp, uint32_t len_s, int64_t obs_start, int64_t t_end,
			  int64_t reg0)
{
	int64_t len = (int64_t)len_s * PL_US_PER_S;
	int64_t first = floor_div(obs_start, len) * len;
	int64_t base = reg0, since_set = 0, prev_reg = reg0, last_acc = INT64_MIN;
	uint64_t sum_acc = 0, sum_rej = 0, tot_acc = 0, tot_rej = 0;
	size_t i, k = 0;

	for (i = 0; i < nr; i++) {
		int64_t s = first + (int64_t)i * len, e = s + len;
		uint32_t acc = 0, rej = 0;
		int64_t peak = 0, n_before = since_set;
		int set_inside = 0;
		uint32_t flags = 0;

		assert_int_equal(r[i].start_us, s);
		assert_int_equal(r[i].length_s, len_s);
		while (k < ne && ev[k].t < e) {
			assert_true(ev[k].t >= s);
			if (ev[k].rejected) {
				rej++;
			} else {
				acc++;
				since_set++;
				if (last_acc != INT64_MIN && ref_power(ev[k].t - last_acc, imp) > peak)
					peak = ref_power(ev[k].t - last_acc, imp);
				last_acc = ev[k].t;
			}
			if (ev[k].set_reg >= 0) {
				base = ev[k].set_reg;
				since_set = 0;
				set_inside = 1;
			}
			k++;
		}
		assert_int_equal(r[i].pulses, acc);
		assert_int_equal(r[i].rejected, rej);
		assert_int_equal(r[i].peak_mw, peak);
		assert_int_equal(r[i].register_uwh, base + ref_uwh(since_set, imp));
		if (!set_inside) {
			/* Energies are register differences: exact, no drift. */
			assert_int_equal(r[i].energy_uwh,
					 ref_uwh(since_set, imp) - ref_uwh(n_before, imp));
			assert_int_equal(r[i].energy_uwh, r[i].register_uwh - prev_reg);
		}
		/* Within 1 uWh of the one-rounded energy of its pulses in any case. */
		assert_true(llabs(r[i].energy_uwh - ref_uwh(acc, imp)) <= 1);
		assert_int_equal(r[i].avg_mw, ref_avg(r[i].energy_uwh, len_s));
		if (rej)
			flags |= PL_Q_REJECTED;
		if ((i == 0 && obs_start != s) || (i == nr - 1 && t_end < e))
			flags |= PL_Q_PARTIAL;
		assert_int_equal(r[i].flags, flags);
		prev_reg = r[i].register_uwh;
		sum_acc += acc;
		sum_rej += rej;
	}
	assert_int_equal(k, ne);
	for (i = 0; i < ne; i++) {
		tot_acc += !ev[i].rejected;
		tot_rej += (uint64_t)ev[i].rejected;
	}
	assert_int_equal(sum_acc, tot_acc);
	assert_int_equal(sum_rej, tot_rej);
	/* The last record ends at or after the end of input; every interval up to it is there. */
	assert_true(nr == 0 || first + (int64_t)nr * len >= t_end);
	assert_true(nr == 0 || first + (int64_t)(nr - 1) * len <= t_end);
}

static void test_property_random_trains(void **state)
{
	static const uint32_t imps[] = { 1, 3, 7, 800, 1000, 1500, 3200, 10000, 640000, 1000000 };
	static const uint32_t lens[] = { 1, 2, 7, 20, 60, 3600 };
	struct pl_interval_record *rec = calloc(REC_MAX, sizeof *rec);
	struct ev *ev = calloc(128, sizeof *ev);
	unsigned enospc = 0, sets = 0, rejected = 0, partial_last = 0;
	int trial;

	(void)state;
	assert_non_null(rec);
	assert_non_null(ev);
	rng_state = UINT64_C(0x9E3779B97F4A7C15);
	for (trial = 0; trial < 4000; trial++) {
		uint32_t imp = imps[rnd() % (sizeof imps / sizeof imps[0])];
		uint32_t len_s = lens[rnd() % (sizeof lens / sizeof lens[0])];
		int64_t len = (int64_t)len_s * PL_US_PER_S;
		struct pl_meter_config cfg = { .imp_per_kwh = imp, .interval_s = len_s };
		struct pl_meter m;
		struct collector c = { rec, 0 };
		int64_t t, obs_start, t_end, reg0 = 0, last_acc = INT64_MIN;
		size_t ne = (size_t)rnd_range(0, 100), i;
		int explicit_start = (int)(rnd() % 2), ret;
		struct pl_interval_record f;

		assert_int_equal(pl_meter_init(&m, &cfg), 0);
		t = rnd_range(-INT64_C(1000000000000000), INT64_C(1000000000000000));
		if (rnd() % 3 == 0)
			t = floor_div(t, len) * len; /* on a boundary */
		obs_start = t;
		if (rnd() % 2) {
			reg0 = rnd_range(0, INT64_C(100000000000000000));
			assert_int_equal(pl_meter_set_register(&m, reg0), 0);
		}
		if (explicit_start)
			assert_int_equal(pl_meter_start(&m, t), 0);
		for (i = 0; i < ne; i++) {
			int64_t gap;
			struct pl_pulse p;
			int64_t power;
			size_t n, cap = (size_t)rnd_range(0, 4);

			switch (rnd() % 6) {
			case 0: gap = 0; break;
			case 1: gap = rnd_range(1, 1000); break;
			case 2: gap = rnd_range(0, len / 4 + 1); break;
			case 3: gap = rnd_range(0, 5 * len); break;
			case 4: gap = floor_div(t, len) * len + len * rnd_range(1, 3) - t; break;
			default: gap = rnd_range(0, len); break;
			}
			if (i == 0 && !explicit_start && rnd() % 2)
				gap = 0;
			if (i == 0 && !explicit_start)
				obs_start = t + gap;
			t += gap;
			ev[i] = (struct ev){ .t = t, .rejected = rnd() % 8 == 0, .set_reg = -1 };
			p = pulse_at(t);
			if (ev[i].rejected)
				p.flags = PL_PULSE_REJECTED;
			ret = pl_meter_pulse(&m, &p, &power, c.r + c.n, cap, &n);
			if (ret == -PL_ENOSPC) {
				enospc++;
				assert_int_equal(n, 0);
				collect_advance(&m, t, &c, cap);
				ret = pl_meter_pulse(&m, &p, &power, c.r + c.n, cap, &n);
				assert_int_equal(n, 0);
			}
			assert_int_equal(ret, 0);
			c.n += n;
			assert_true(c.n <= REC_MAX - 8);
			if (ev[i].rejected || last_acc == INT64_MIN) {
				assert_int_equal(power, 0);
			} else {
				assert_int_equal(power, ref_power(t - last_acc, imp));
			}
			if (!ev[i].rejected)
				last_acc = t;
			else
				rejected++;
			if (rnd() % 40 == 0) {
				/* Set the register mid-run, as documented: advance to now first. */
				collect_advance(&m, t, &c, 4);
				ev[i].set_reg = rnd_range(0, INT64_C(1000000000000));
				sets++;
				assert_int_equal(pl_meter_set_register(&m, ev[i].set_reg), 0);
			}
		}
		t_end = t + rnd_range(0, 3 * len);
		if (rnd() % 4 == 0 && floor_div(t_end, len) * len >= t)
			t_end = floor_div(t_end, len) * len;
		if (ne == 0 && !explicit_start) {
			obs_start = t_end; /* the advance below starts it */
		}
		collect_advance(&m, t_end, &c, (size_t)rnd_range(1, 5));
		while ((ret = pl_meter_flush(&m, t_end, &f)) == 1) {
			c.r[c.n++] = f;
			partial_last += (f.flags & PL_Q_PARTIAL) != 0;
		}
		assert_int_equal(ret, 0);
		check_records(c.r, c.n, ev, ne, imp, len_s, obs_start, t_end, reg0);
	}
	/* The generator really exercised every path. */
	assert_true(enospc > 1000);
	assert_true(sets > 500);
	assert_true(rejected > 10000);
	assert_true(partial_last > 1000);
	free(rec);
	free(ev);
}

/* Copy the state mid-stream: both copies go on identically, bit for bit. */
static void test_checkpoint_copy(void **state)
{
	struct pl_meter a, b;
	struct pl_interval_record ra[64], rb[64];
	struct pl_meter_config cfg = { .imp_per_kwh = 1500, .interval_s = 7 };
	int64_t t = -S(100) + 123;
	int i;

	(void)state;
	rng_state = 42;
	assert_int_equal(pl_meter_init(&a, &cfg), 0);
	assert_int_equal(pl_meter_set_register(&a, INT64_C(987654321)), 0);
	for (i = 0; i < 2000; i++) {
		struct pl_pulse p;
		int64_t pa, pb, ba, bb;
		size_t na, nb;
		int ea, eb;

		if (i == 700)
			memcpy(&b, &a, sizeof a);
		t += rnd_range(0, S(20));
		p = pulse_at(t);
		p.flags = rnd() % 10 == 0 ? PL_PULSE_REJECTED : 0;
		ea = pl_meter_pulse(&a, &p, &pa, ra, 64, &na);
		assert_int_equal(ea, 0);
		if (i < 700)
			continue;
		eb = pl_meter_pulse(&b, &p, &pb, rb, 64, &nb);
		assert_int_equal(ea, eb);
		assert_int_equal(pa, pb);
		assert_int_equal(na, nb);
		assert_memory_equal(ra, rb, na * sizeof ra[0]);
		assert_int_equal(pl_meter_power(&a, t + 5, &ba), pl_meter_power(&b, t + 5, &bb));
		assert_int_equal(ba, bb);
		if (i % 97 == 0) {
			assert_int_equal(pl_meter_advance(&a, t, ra, 64),
					 pl_meter_advance(&b, t, rb, 64));
			pl_meter_flag(&a, PL_Q_GAP);
			pl_meter_flag(&b, PL_Q_GAP);
		}
		assert_memory_equal(&a, &b, sizeof a);
	}
	assert_int_equal(pl_meter_flush(&a, t + 1, ra), pl_meter_flush(&b, t + 1, rb));
	assert_memory_equal(ra, rb, sizeof ra[0]);
	assert_memory_equal(&a, &b, sizeof a);
}

/* ------------------------------------------------------------------------------------------ */
/* Clock steps (issue 9: a stepped wall clock hung the daemon or dropped every pulse) */

/* Forward by three days at 1 s intervals: one record for the interval of the step, no
 * records for the skipped span, the register and the power of the next gap right. */
static void test_step_forward_days(void **state)
{
	struct pl_meter m = meter(1000, 1);
	struct pl_interval_record r[8];
	int64_t t0 = S(1700000000), d = S(3 * 86400);
	int64_t power;
	size_t n;

	(void)state;
	assert_int_equal(pl_meter_start(&m, t0), 0);
	feed_ok(&m, t0 + 200000);
	feed_ok(&m, t0 + 700000);
	/* the step is seen 0.2 s after the last pulse */
	assert_int_equal(pl_meter_advance(&m, t0 + 900000, r, 8), 0);
	assert_int_equal(pl_meter_step(&m, d, r), 1);
	assert_int_equal(r[0].start_us, t0);
	assert_int_equal(r[0].pulses, 2);
	assert_int_equal(r[0].flags, PL_Q_GAP | PL_Q_PARTIAL);
	assert_int_equal(r[0].register_uwh, 2000000);
	/* 0.5 s of real time after the last pulse: 7200 W, whatever the step */
	power = feed(&m, t0 + d + 1200000, r, 8, 1);
	assert_int_equal(power, 7200000);
	assert_int_equal(r[0].start_us, t0 + d);
	assert_int_equal(r[0].pulses, 0);
	assert_int_equal(r[0].flags, PL_Q_GAP | PL_Q_PARTIAL);
	n = pl_meter_advance(&m, t0 + d + S(2), r, 8);
	assert_int_equal(n, 1);
	assert_int_equal(r[0].start_us, t0 + d + S(1));
	assert_int_equal(r[0].pulses, 1);
	assert_int_equal(r[0].flags, 0);
	assert_int_equal(r[0].register_uwh, 3000000);
	/* fifty years forward costs the same as a second */
	assert_int_equal(pl_meter_step(&m, S(50) * 365 * 86400, r), 0); /* nothing observed */
	assert_int_equal(pl_meter_step(&m, PL_METER_T_LIMIT, r), -PL_ERANGE);
	assert_int_equal(pl_meter_step(NULL, 1, r), -PL_EINVAL);
}

/* A forward step that stays inside the open interval: flagged, nothing written. */
static void test_step_forward_small(void **state)
{
	struct pl_meter m = meter(1000, 20);
	struct pl_interval_record r[8];
	int64_t t0 = S(1000);

	(void)state;
	assert_int_equal(pl_meter_start(&m, t0), 0);
	feed_ok(&m, t0 + S(1));
	assert_int_equal(pl_meter_step(&m, 300000, r), 0);
	assert_int_equal(feed(&m, t0 + S(3) + 300000, r, 8, 0), 1800000); /* 2 s of real time */
	assert_int_equal(pl_meter_advance(&m, t0 + S(20), r, 8), 1);
	assert_int_equal(r[0].pulses, 2);
	assert_int_equal(r[0].flags, PL_Q_GAP);
}

/* Backward by an hour: no pulse lost (none refused), no interval start written twice, the
 * open interval holds everything until the clock is back at its end. */
static void test_step_backward(void **state)
{
	struct pl_meter m = meter(1000, 10);
	struct pl_interval_record r[8], all[64];
	int64_t t0 = S(36000), t, last_start = INT64_MIN, energy = 0;
	size_t n, nall = 0;
	int64_t power;

	(void)state;
	assert_int_equal(pl_meter_start(&m, t0), 0);
	for (t = t0 + S(1); t < t0 + S(25); t += S(2)) {
		struct pl_pulse p = pulse_at(t);
		assert_int_equal(pl_meter_pulse(&m, &p, NULL, r, 8, &n), 0);
		memcpy(all + nall, r, n * sizeof(r[0]));
		nall += n;
	}
	/* last pulse at t0+23 s, the open interval [t0+20, t0+30); the clock goes back 1 h */
	assert_int_equal(pl_meter_advance(&m, t0 + S(24), r, 8), 0);
	assert_int_equal(pl_meter_step(&m, -S(3600), r), 0);
	t = t0 + S(24) - S(3600);
	power = 0;
	{
		struct pl_pulse p = pulse_at(t + S(1)); /* 2 s of real time after the last */
		assert_int_equal(pl_meter_pulse(&m, &p, &power, r, 8, &n), 0);
		assert_int_equal(n, 0);
		assert_int_equal(power, 1800000);
	}
	/* pulses every 100 s while the clock catches up: all into the open interval */
	for (t += S(101); t < t0 + S(30); t += S(100)) {
		struct pl_pulse p = pulse_at(t);
		assert_int_equal(pl_meter_pulse(&m, &p, NULL, r, 8, &n), 0);
		memcpy(all + nall, r, n * sizeof(r[0]));
		nall += n;
	}
	n = pl_meter_advance(&m, t0 + S(40), r, 8);
	memcpy(all + nall, r, n * sizeof(r[0]));
	nall += n;
	for (size_t i = 0; i < nall; i++) {
		assert_true(all[i].start_us > last_start);
		last_start = all[i].start_us;
		energy += all[i].energy_uwh;
	}
	assert_int_equal(energy, pl_meter_register(&m));
	assert_int_equal(pl_meter_register(&m), pl_meter_pulses_uwh(&m, 12 + 1 + 36));
	/* the interval of the step: everything from t0+20 s to the clock's return */
	assert_int_equal(all[2].start_us, t0 + S(20));
	assert_int_equal(all[2].pulses, 2 + 1 + 36);
	assert_int_equal(all[2].flags, PL_Q_GAP);
	assert_int_equal(all[3].start_us, t0 + S(30));
	assert_int_equal(all[3].flags, 0);
}

/* No input makes pl_meter_pulse() spin or refuse for ever: beyond out_cap it says so and an
 * advance in steps of out_cap makes progress, or a step jumps. */
static void test_step_before_start_and_far_pulse(void **state)
{
	struct pl_meter m = meter(1000, 1);
	struct pl_interval_record r[4];
	struct pl_pulse p = pulse_at(S(5000000));
	size_t n;

	(void)state;
	assert_int_equal(pl_meter_step(&m, S(10), r), 0); /* nothing seen: nothing to do */
	feed_ok(&m, S(10));
	assert_int_equal(pl_meter_pulse(&m, &p, NULL, r, 4, &n), -PL_ENOSPC);
	assert_int_equal(pl_meter_step(&m, p.t_us - S(10), r), 1);
	assert_int_equal(pl_meter_pulse(&m, &p, NULL, r, 4, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(pl_meter_register(&m), 2000000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reference_i128),
		cmocka_unit_test(test_config_default_and_init),
		cmocka_unit_test(test_pulses_uwh_exact),
		cmocka_unit_test(test_pulses_uwh_no_overflow),
		cmocka_unit_test(test_register_and_set),
		cmocka_unit_test(test_register_set_mid_interval),
		cmocka_unit_test(test_exact_3600_watts),
		cmocka_unit_test(test_avg_rounding),
		cmocka_unit_test(test_boundary_belongs_to_next_interval),
		cmocka_unit_test(test_first_interval_partial),
		cmocka_unit_test(test_negative_times),
		cmocka_unit_test(test_big_gap_empty_intervals),
		cmocka_unit_test(test_enospc_consumes_nothing),
		cmocka_unit_test(test_eorder),
		cmocka_unit_test(test_rejected_pulses),
		cmocka_unit_test(test_peak),
		cmocka_unit_test(test_flush),
		cmocka_unit_test(test_flag),
		cmocka_unit_test(test_time_range),
		cmocka_unit_test(test_power_from_gap),
		cmocka_unit_test(test_power_overflow_safety),
		cmocka_unit_test(test_power_bound_decays),
		cmocka_unit_test(test_property_random_trains),
		cmocka_unit_test(test_checkpoint_copy),
		cmocka_unit_test(test_step_forward_days),
		cmocka_unit_test(test_step_forward_small),
		cmocka_unit_test(test_step_backward),
		cmocka_unit_test(test_step_before_start_and_far_pulse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
