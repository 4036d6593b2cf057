/* SPDX-License-Identifier: MIT */
/*
 * Tests of the digital edge filter (src/core/edges.c): exact numbers for every rule and edge
 * case, a randomised property test (pulse trains with chatter shorter than the minimum widths,
 * steady episodes, implausible pulses) against an independent run-by-run reference, with the
 * pulses fed on into a pl_meter advanced only to the filter's horizon, and a checkpoint test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "powerlogger/edges.h"
#include "powerlogger/meter.h"
#include "testutil.h"

/* ------------------------------------------------------------------------------------------ */
/* Helpers */

static struct pl_edges filter(uint32_t min_high, uint32_t min_low, uint32_t max_width)
{
	struct pl_edges e;
	struct pl_edges_config c;

	pl_edges_config_default(&c);
	c.min_high_us = min_high;
	c.min_low_us = min_low;
	c.max_width_us = max_width;
	assert_int_equal(pl_edges_init(&e, &c), 0);
	return e;
}

/* Feeds an edge that must not complete a pulse. */
static void edge(struct pl_edges *e, int64_t t, int level)
{
	struct pl_pulse p;

	assert_int_equal(pl_edges_feed(e, t, level, &p), 0);
}

static void quiet(struct pl_edges *e, int64_t t)
{
	struct pl_pulse p;

	assert_int_equal(pl_edges_advance(e, t, &p), 0);
}

/* Advances to t, which must complete exactly one pulse; returns it. */
static struct pl_pulse advance_pulse(struct pl_edges *e, int64_t t)
{
	struct pl_pulse p;

	memset(&p, 0xAA, sizeof p);
	assert_int_equal(pl_edges_advance(e, t, &p), 1);
	return p;
}

/* ------------------------------------------------------------------------------------------ */
/* Configuration */

static void test_config_default_and_init(void **state)
{
	struct pl_edges_config c;
	struct pl_edges e;

	(void)state;
	pl_edges_config_default(&c);
	assert_int_equal(c.min_high_us, 2000);
	assert_int_equal(c.min_low_us, 2000);
	assert_int_equal(c.max_width_us, 1000000);
	assert_int_equal(c.active_low, 0);
	assert_int_equal(c.imp_per_kwh, 0);
	assert_int_equal(c.max_power_w, 0);
	assert_int_equal(pl_edges_init(&e, NULL), 0);
	assert_int_equal(e.level, -1);
	assert_int_equal(e.raw, -1);
	assert_int_equal(e.min_gap_us, 0);
	assert_int_equal(e.t_last, INT64_MIN);
	assert_int_equal(pl_edges_horizon(&e), INT64_MIN);

	assert_int_equal(pl_edges_init(NULL, NULL), -PL_EINVAL);
	c.active_low = 2;
	assert_int_equal(pl_edges_init(&e, &c), -PL_EINVAL);
	c.active_low = 1;
	assert_int_equal(pl_edges_init(&e, &c), 0);
	c.max_width_us = 1999; /* below min_high_us: every pulse would be steady */
	assert_int_equal(pl_edges_init(&e, &c), -PL_EINVAL);
	c.max_width_us = 2000;
	assert_int_equal(pl_edges_init(&e, &c), 0);
	c.max_width_us = 0;
	assert_int_equal(pl_edges_init(&e, &c), 0);

	/* The plausibility limit: 1000 imp/kWh at 72 kW is one pulse per 50 ms. */
	c.imp_per_kwh = 1000;
	c.max_power_w = 72000;
	assert_int_equal(pl_edges_init(&e, &c), 0);
	assert_int_equal(e.min_gap_us, 50000);
	c.imp_per_kwh = 10000;
	assert_int_equal(pl_edges_init(&e, &c), 0);
	assert_int_equal(e.min_gap_us, 5000);
}

static void test_arguments(void **state)
{
	struct pl_edges e = filter(2000, 2000, 0);
	struct pl_edges before;
	struct pl_pulse p;

	(void)state;
	edge(&e, 100, 0);
	before = e;
	assert_int_equal(pl_edges_feed(&e, 200, 2, &p), -PL_EINVAL);
	assert_int_equal(pl_edges_feed(&e, 200, -1, &p), -PL_EINVAL);
	assert_int_equal(pl_edges_feed(&e, 200, 1, NULL), -PL_EINVAL);
	assert_int_equal(pl_edges_feed(NULL, 200, 1, &p), -PL_EINVAL);
	assert_int_equal(pl_edges_advance(&e, 200, NULL), -PL_EINVAL);
	assert_int_equal(pl_edges_advance(NULL, 200, &p), -PL_EINVAL);
	assert_memory_equal(&e, &before, sizeof e);

	/* Time going backwards: refused, nothing changes. */
	assert_int_equal(pl_edges_feed(&e, 99, 1, &p), -PL_EORDER);
	assert_int_equal(pl_edges_advance(&e, 99, &p), -PL_EORDER);
	assert_memory_equal(&e, &before, sizeof e);
	/* The same time again is fine; so is a repeated level (no edge). */
	edge(&e, 100, 0);
	edge(&e, 150, 0);
	assert_int_equal(e.raw_t, 100);
	quiet(&e, 5000);
	assert_int_equal(pl_edges_feed(&e, 4999, 0, &p), -PL_EORDER);
}

/* ------------------------------------------------------------------------------------------ */
/* Clean pulses */

static void test_clean_pulse(void **state)
{
	struct pl_edges e = filter(2000, 2000, 0);
	struct pl_pulse p;

	(void)state;
	edge(&e, 0, 0);
	edge(&e, 10000, 1);
	edge(&e, 20000, 0);
	/* Emitted once the rest level has been held min_low_us: latency width + min_low. */
	quiet(&e, 21999);
	p = advance_pulse(&e, 22000);
	assert_int_equal(p.t_us, 10000);
	assert_int_equal(p.width_us, 10000);
	assert_int_equal(p.amplitude, 1);
	assert_int_equal(p.confidence, 100);
	assert_int_equal(p.flags, 0);
	assert_int_equal(e.n_pulses, 1);
	assert_int_equal(e.n_chatter, 0);
	assert_int_equal(e.n_rejected, 0);
	assert_int_equal(e.n_steady, 0);
	quiet(&e, 1000000);
	assert_int_equal(e.n_pulses, 1);
}

static void test_pulse_emitted_by_next_edge(void **state)
{
	struct pl_edges e = filter(2000, 2000, 0);
	struct pl_pulse p;

	(void)state;
	edge(&e, 0, 0);
	edge(&e, 10000, 1);
	edge(&e, 20000, 0);
	/* No advance: the next rising edge reveals that the rest level was held. */
	assert_int_equal(pl_edges_feed(&e, 30000, 1, &p), 1);
	assert_int_equal(p.t_us, 10000);
	assert_int_equal(p.width_us, 10000);
	assert_int_equal(pl_edges_feed(&e, 40000, 0, &p), 0);
	p = advance_pulse(&e, 42000);
	assert_int_equal(p.t_us, 30000);
	assert_int_equal(p.width_us, 10000);
	assert_int_equal(e.n_pulses, 2);
}

static void test_exact_minimum_widths(void **state)
{
	struct pl_edges e = filter(2000, 3000, 0);
	struct pl_pulse p;

	(void)state;
	edge(&e, 0, 0);
	/* Held exactly min_high_us: accepted (>=). */
	edge(&e, 10000, 1);
	edge(&e, 12000, 0);
	quiet(&e, 14999);
	p = advance_pulse(&e, 15000);
	assert_int_equal(p.t_us, 10000);
	assert_int_equal(p.width_us, 2000);
	/* One microsecond less: chatter. */
	edge(&e, 20000, 1);
	edge(&e, 21999, 0);
	quiet(&e, 100000);
	assert_int_equal(e.n_pulses, 1);
	assert_int_equal(e.n_chatter, 1);
	/* A rest of exactly min_low_us ends a pulse; one microsecond less does not. */
	edge(&e, 200000, 1);
	edge(&e, 210000, 0);
	edge(&e, 212999, 1); /* rest 2999 us: a dropout inside the pulse */
	edge(&e, 220000, 0);
	assert_int_equal(pl_edges_feed(&e, 223000, 1, &p), 1); /* rest 3000 us: ends it */
	assert_int_equal(p.t_us, 200000);
	assert_int_equal(p.width_us, 20000);
	assert_int_equal(e.n_chatter, 2);
}

static void test_zero_minimum_widths(void **state)
{
	struct pl_edges e = filter(0, 0, 0);
	struct pl_pulse p;

	(void)state;
	/* Every run counts, accepted at the next event. */
	edge(&e, 0, 0);
	edge(&e, 10, 1);
	edge(&e, 20, 0);
	assert_int_equal(pl_edges_feed(&e, 30, 1, &p), 1);
	assert_int_equal(p.t_us, 10);
	assert_int_equal(p.width_us, 10);
	edge(&e, 40, 0);
	p = advance_pulse(&e, 40); /* a rest held 0 us ends the pulse that began at 30 */
	assert_int_equal(p.t_us, 30);
	assert_int_equal(p.width_us, 10);
	assert_int_equal(e.n_chatter, 0);
}

static void test_active_low(void **state)
{
	struct pl_edges_config c;
	struct pl_edges e;
	struct pl_pulse p;

	(void)state;
	pl_edges_config_default(&c);
	c.active_low = 1;
	assert_int_equal(pl_edges_init(&e, &c), 0);
	edge(&e, 0, 1);      /* rest is high */
	edge(&e, 10000, 0);  /* the pulse is low */
	edge(&e, 48000, 1);
	p = advance_pulse(&e, 50000);
	assert_int_equal(p.t_us, 10000);
	assert_int_equal(p.width_us, 38000);
	assert_int_equal(e.level, 0); /* logical rest */
	assert_int_equal(e.raw, 0);
}

static void test_first_level_is_a_state(void **state)
{
	struct pl_edges e = filter(2000, 2000, 0);
	struct pl_pulse p;

	(void)state;
	/* Observation begins while the LED is lit: its leading edge was not seen; not counted. */
	edge(&e, 0, 1);
	assert_int_equal(pl_edges_horizon(&e), 0);
	edge(&e, 5000, 0);
	quiet(&e, 100000);
	assert_int_equal(e.n_pulses, 0);
	assert_int_equal(e.level, 0);
	/* The next one counts. */
	edge(&e, 200000, 1);
	edge(&e, 210000, 0);
	p = advance_pulse(&e, 212000);
	assert_int_equal(p.t_us, 200000);

	/* Starting with a short blip before the first accepted level: still not a counted pulse. */
	e = filter(2000, 2000, 0);
	edge(&e, 0, 0);
	edge(&e, 500, 1);
	edge(&e, 10000, 0);
	quiet(&e, 100000);
	assert_int_equal(e.n_pulses, 0);
	assert_int_equal(e.n_chatter, 1);

	/* Advancing before any edge does nothing but pass time. */
	e = filter(2000, 2000, 0);
	quiet(&e, 50);
	assert_int_equal(e.level, -1);
	assert_int_equal(pl_edges_horizon(&e), 50);
	assert_int_equal(pl_edges_feed(&e, 49, 0, &p), -PL_EORDER);
}

/* ------------------------------------------------------------------------------------------ */
/* Chatter */

static void test_chatter_at_leading_edge(void **state)
{
	struct pl_edges e = filter(2000, 2000, 0);
	struct pl_pulse p;

	(void)state;
	edge(&e, 0, 0);
	edge(&e, 10000, 1);
	edge(&e, 10500, 0);
	edge(&e, 11000, 1);
	edge(&e, 11300, 0);
	edge(&e, 12000, 1); /* the run that is held: the stamp */
	edge(&e, 22000, 0);
	p = advance_pulse(&e, 24000);
	assert_int_equal(p.t_us, 12000);
	assert_int_equal(p.width_us, 10000);
	assert_int_equal(e.n_pulses, 1);
	assert_int_equal(e.n_chatter, 2);
}

static void test_dropout_inside_pulse(void **state)
{
	struct pl_edges e = filter(2000, 2000, 0);
	struct pl_pulse p;

	(void)state;
	edge(&e, 0, 0);
	edge(&e, 10000, 1);
	edge(&e, 15000, 0);
	edge(&e, 16000, 1); /* 1 ms dropout */
	edge(&e, 16100, 0);
	edge(&e, 16200, 1); /* and another */
	edge(&e, 20000, 0);
	p = advance_pulse(&e, 22000);
	assert_int_equal(p.t_us, 10000);
	assert_int_equal(p.width_us, 10000);
	assert_int_equal(e.n_pulses, 1);
	assert_int_equal(e.n_chatter, 2);
}

static void test_chatter_at_trailing_edge(void **state)
{
	struct pl_edges e = filter(2000, 2000, 0);
	struct pl_pulse p;

	(void)state;
	edge(&e, 0, 0);
	edge(&e, 10000, 1);
	edge(&e, 20000, 0);
	edge(&e, 20500, 1); /* the falling edge bounces: the pulse goes on */
	edge(&e, 21000, 0);
	quiet(&e, 22999);
	p = advance_pulse(&e, 23000);
	assert_int_equal(p.t_us, 10000);
	assert_int_equal(p.width_us, 11000);
	assert_int_equal(e.n_chatter, 1);
}

static void test_spikes_in_rest(void **state)
{
	struct pl_edges e = filter(2000, 2000, 0);
	int i;

	(void)state;
	edge(&e, 0, 0);
	for (i = 0; i < 100; i++) {
		edge(&e, 10000 + i * 5000, 1);
		edge(&e, 10000 + i * 5000 + 1999, 0);
	}
	quiet(&e, 2000000);
	assert_int_equal(e.n_pulses, 0);
	assert_int_equal(e.n_chatter, 100);
	assert_int_equal(e.level, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Steady LED */

static void test_steady(void **state)
{
	struct pl_edges e = filter(2000, 2000, 1000000);
	struct pl_pulse p;

	(void)state;
	edge(&e, 0, 0);
	edge(&e, 10000, 1);
	/* Held exactly max_width_us: still possibly a pulse. */
	quiet(&e, 1010000);
	assert_int_equal(e.steady, 0);
	assert_int_equal(pl_edges_horizon(&e), 10000);
	/* One microsecond longer: steady, decided now, counted once, never a pulse. */
	quiet(&e, 1010001);
	assert_int_equal(e.steady, 1);
	assert_int_equal(e.n_steady, 1);
	assert_int_equal(pl_edges_horizon(&e), 1010001);
	quiet(&e, 50000000);
	assert_int_equal(e.n_steady, 1);
	edge(&e, 60000000, 0);
	quiet(&e, 70000000);
	assert_int_equal(e.steady, 0);
	assert_int_equal(e.level, 0);
	assert_int_equal(e.n_steady, 1);
	assert_int_equal(e.n_pulses, 0);
	/* Ordinary pulses afterwards. */
	edge(&e, 80000000, 1);
	edge(&e, 80010000, 0);
	p = advance_pulse(&e, 80012000);
	assert_int_equal(p.t_us, 80000000);
	assert_int_equal(p.width_us, 10000);

	/* A pulse of exactly max_width_us is a pulse. */
	e = filter(2000, 2000, 1000000);
	edge(&e, 0, 0);
	edge(&e, 10000, 1);
	edge(&e, 1010000, 0);
	p = advance_pulse(&e, 1012000);
	assert_int_equal(p.width_us, 1000000);
	assert_int_equal(e.n_steady, 0);

	/* While a rest run waits to be accepted, the width is where that run began. */
	e = filter(2000, 2000, 1000000);
	edge(&e, 0, 0);
	edge(&e, 10000, 1);
	edge(&e, 1010000, 0);
	quiet(&e, 1011000); /* 1001000 us since the leading edge, but the LED went dark before */
	assert_int_equal(e.steady, 0);
	assert_int_equal(e.n_steady, 0);
	p = advance_pulse(&e, 1012000);
	assert_int_equal(p.width_us, 1000000);

	/* Steady found at the call that reveals it, before the rest is accepted. */
	e = filter(2000, 2000, 1000000);
	edge(&e, 0, 0);
	edge(&e, 10000, 1);
	edge(&e, 1010001, 0);
	assert_int_equal(e.n_steady, 1); /* the rest run began too late: certain already */
	quiet(&e, 1012001);
	assert_int_equal(e.n_steady, 1);
	assert_int_equal(e.n_pulses, 0);
	assert_int_equal(e.level, 0);

	/* A steady level with a dropout shorter than min_low_us stays one steady episode. */
	e = filter(2000, 2000, 1000000);
	edge(&e, 0, 0);
	edge(&e, 10000, 1);
	edge(&e, 3000000, 0);
	edge(&e, 3001000, 1);
	quiet(&e, 9000000);
	edge(&e, 9000000, 0);
	quiet(&e, 9002000);
	assert_int_equal(e.n_steady, 1);
	assert_int_equal(e.n_pulses, 0);

	/* Lit at the start and held: steady too (it is a state, counted, never a pulse). */
	e = filter(2000, 2000, 1000000);
	edge(&e, 0, 1);
	quiet(&e, 2000000);
	assert_int_equal(e.n_steady, 1);
	edge(&e, 3000000, 0);
	quiet(&e, 3002000);
	assert_int_equal(e.n_pulses, 0);
}

static void test_no_width_limit(void **state)
{
	struct pl_edges e = filter(2000, 2000, 0);
	struct pl_pulse p;

	(void)state;
	/* max_width_us 0: any length is a pulse; the width saturates. */
	edge(&e, 0, 0);
	edge(&e, 10000, 1);
	edge(&e, 10000 + INT64_C(7200000000), 0); /* two hours */
	p = advance_pulse(&e, 10000 + INT64_C(7200000000) + 2000);
	assert_int_equal(p.t_us, 10000);
	assert_int_equal(p.width_us, UINT32_MAX);
	assert_int_equal(e.n_steady, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Plausibility */

static void test_plausibility(void **state)
{
	struct pl_edges_config c;
	struct pl_edges e;
	struct pl_pulse p;

	(void)state;
	pl_edges_config_default(&c);
	c.imp_per_kwh = 1000;
	c.max_power_w = 72000; /* min gap 50 ms */
	assert_int_equal(pl_edges_init(&e, &c), 0);
	edge(&e, 0, 0);
	edge(&e, 100000, 1);
	edge(&e, 110000, 0);
	p = advance_pulse(&e, 112000);
	assert_int_equal(p.flags, 0);
	/* 40 ms later: too soon, flagged, still emitted. */
	edge(&e, 140000, 1);
	edge(&e, 145000, 0);
	p = advance_pulse(&e, 147000);
	assert_int_equal(p.t_us, 140000);
	assert_int_equal(p.flags, PL_PULSE_REJECTED);
	/* 50 ms after the last accepted one (not the rejected one): accepted. */
	edge(&e, 150000, 1);
	edge(&e, 155000, 0);
	p = advance_pulse(&e, 157000);
	assert_int_equal(p.t_us, 150000);
	assert_int_equal(p.flags, 0);
	/* 49.999 ms: rejected. */
	edge(&e, 199999, 1);
	edge(&e, 205000, 0);
	p = advance_pulse(&e, 207000);
	assert_int_equal(p.flags, PL_PULSE_REJECTED);
	assert_int_equal(e.n_pulses, 4);
	assert_int_equal(e.n_rejected, 2);
	assert_int_equal(e.last_pulse_t, 150000);
}

/* ------------------------------------------------------------------------------------------ */
/* Horizon and extreme times */

static void test_horizon(void **state)
{
	struct pl_edges e = filter(2000, 2000, 0);
	struct pl_pulse p;

	(void)state;
	assert_int_equal(pl_edges_horizon(&e), INT64_MIN);
	edge(&e, 0, 0);
	assert_int_equal(pl_edges_horizon(&e), 0);
	quiet(&e, 5000);
	assert_int_equal(pl_edges_horizon(&e), 5000);
	edge(&e, 10000, 1); /* may become a pulse stamped 10000 */
	quiet(&e, 11000);
	assert_int_equal(pl_edges_horizon(&e), 10000);
	edge(&e, 11500, 0); /* chatter after all */
	assert_int_equal(pl_edges_horizon(&e), 11500);
	edge(&e, 20000, 1);
	quiet(&e, 25000);   /* accepted pulse level */
	assert_int_equal(pl_edges_horizon(&e), 20000);
	edge(&e, 30000, 0);
	quiet(&e, 31000);
	assert_int_equal(pl_edges_horizon(&e), 20000);
	p = advance_pulse(&e, 32000);
	assert_int_equal(p.t_us, 20000);
	assert_int_equal(pl_edges_horizon(&e), 32000);
}

static void test_extreme_times(void **state)
{
	struct pl_edges_config c;
	struct pl_edges e;
	struct pl_pulse p;

	(void)state;
	pl_edges_config_default(&c);
	c.imp_per_kwh = 1000;
	c.max_power_w = 72000;
	c.max_width_us = 0;
	assert_int_equal(pl_edges_init(&e, &c), 0);
	edge(&e, INT64_MIN, 0);
	edge(&e, INT64_MIN + 10000, 1);
	edge(&e, INT64_MIN + 20000, 0);
	p = advance_pulse(&e, INT64_MIN + 22000);
	assert_int_equal(p.t_us, INT64_MIN + 10000);
	assert_int_equal(p.width_us, 10000);
	/* A gap spanning the whole range: no overflow, accepted. */
	edge(&e, INT64_MAX - 20000, 1);
	edge(&e, INT64_MAX - 10000, 0);
	p = advance_pulse(&e, INT64_MAX);
	assert_int_equal(p.t_us, INT64_MAX - 20000);
	assert_int_equal(p.width_us, 10000);
	assert_int_equal(p.flags, 0);
	/* A rest run longer than 2^63 us, then a steady check across the whole range. */
	e = filter(2000, 2000, 1000000);
	edge(&e, INT64_MIN, 0);
	edge(&e, -1, 1);
	quiet(&e, INT64_MAX);
	assert_int_equal(e.n_steady, 1);
	e = filter(2000, 2000, 1000000);
	edge(&e, INT64_MIN, 0);
	edge(&e, INT64_MIN + 5000, 1);
	edge(&e, INT64_MAX, 0);
	assert_int_equal(e.n_steady, 1);
	assert_int_equal(pl_edges_advance(&e, INT64_MAX, &p), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Property test: random pulse trains with chatter, against a run-by-run reference. */


static int64_t rnd_range(int64_t lo, int64_t hi) /* inclusive */
{
	return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

#define MAX_RUNS 4096
#define MAX_PULSES 256

struct run {
	int64_t t;   /* start */
	int64_t len; /* the last run has no end */
	int level;   /* logical */
};

struct train {
	struct run runs[MAX_RUNS];
	size_t n_runs;
	int64_t true_t[MAX_PULSES]; /* true leading edges of the real pulses */
	size_t n_true;
	size_t n_steady_made;
};

static void add_run(struct train *tr, int level, int64_t len)
{
	struct run *last = tr->n_runs ? &tr->runs[tr->n_runs - 1] : NULL;

	assert_true(tr->n_runs < MAX_RUNS);
	assert_true(len >= 1);
	assert_true(last == NULL || last->level != level);
	tr->runs[tr->n_runs] = (struct run){
		.t = last ? last->t + last->len : 0,
		.len = len,
		.level = level,
	};
	tr->n_runs++;
}

/*
 * A train: a long rest, then pulses (and steady episodes) with chatter: spikes shorter than
 * min_high in the rest before a leading edge, dropouts shorter than min_low inside a pulse, and
 * bounces right after a falling edge.
 */
static void make_train(struct train *tr, int64_t t0, uint32_t min_high, uint32_t min_low,
		       uint32_t max_width, size_t n_pulses)
{
	size_t i, k;

	memset(tr, 0, sizeof *tr);
	add_run(tr, 0, min_low + rnd_range(0, 50000));
	for (i = 0; i < n_pulses; i++) {
		int steady = max_width != 0 && rnd() % 10 == 0;
		int64_t first = min_high + rnd_range(0, 20000);

		/* Spikes before the leading edge, each shorter than min_high. */
		for (k = (size_t)(rnd() % 2 ? rnd_range(1, 4) : 0); k > 0; k--) {
			add_run(tr, 1, rnd_range(1, min_high - 1));
			add_run(tr, 0, rnd_range(1, 3 * (int64_t)min_low));
		}
		/* The pulse: a first run held at least min_high, then dropouts. */
		tr->true_t[tr->n_true] = tr->runs[tr->n_runs - 1].t + tr->runs[tr->n_runs - 1].len;
		if (steady)
			first = (int64_t)max_width + rnd_range(1, 3000000);
		add_run(tr, 1, first);
		for (k = (size_t)(rnd() % 2 ? rnd_range(1, 3) : 0); k > 0; k--) {
			add_run(tr, 0, rnd_range(1, min_low - 1));
			add_run(tr, 1, rnd_range(1, 15000));
		}
		/* Bounces after the falling edge: the rest run may be too short, then a blip. */
		for (k = (size_t)(rnd() % 3 == 0 ? rnd_range(1, 3) : 0); k > 0; k--) {
			add_run(tr, 0, rnd_range(1, 2 * (int64_t)min_low));
			add_run(tr, 1, rnd_range(1, min_high - 1));
		}
		/* The rest, held at least min_low. */
		add_run(tr, 0, min_low + rnd_range(0, rnd() % 4 ? 100000 : 3000000));
		if (steady)
			tr->n_steady_made++;
		else
			tr->n_true++;
	}
	for (k = 0; k < tr->n_runs; k++)
		tr->runs[k].t += t0;
	for (k = 0; k < tr->n_true; k++)
		tr->true_t[k] += t0;
}

struct expect {
	struct pl_pulse p[MAX_PULSES];
	size_t n;
	uint64_t chatter, steady, rejected;
};

/* The reference: a run changes the accepted level iff it is held long enough. */
static void reference(const struct train *tr, uint32_t min_high, uint32_t min_low,
		      uint32_t max_width, int64_t min_gap, struct expect *ex)
{
	int level = -1;
	int64_t t0 = 0, last = 0;
	int have_last = 0;
	size_t i;

	memset(ex, 0, sizeof *ex);
	for (i = 0; i < tr->n_runs; i++) {
		const struct run *r = &tr->runs[i];
		int64_t need = r->level ? min_high : min_low;

		if (r->level == level)
			continue;
		if (r->len < need) {
			ex->chatter++;
			continue;
		}
		if (r->level == 1) {
			t0 = r->t;
		} else if (level == 1) {
			int64_t w = r->t - t0;

			if (max_width && w > max_width) {
				ex->steady++;
			} else {
				struct pl_pulse *p = &ex->p[ex->n++];

				*p = (struct pl_pulse){ .t_us = t0, .width_us = (uint32_t)w,
							.amplitude = 1, .confidence = 100 };
				if (have_last && t0 - last < min_gap) {
					p->flags = PL_PULSE_REJECTED;
					ex->rejected++;
				} else {
					last = t0;
					have_last = 1;
				}
			}
		}
		level = r->level;
	}
}

struct sink {
	struct pl_pulse got[MAX_PULSES];
	size_t n;
	int64_t horizon;
	struct pl_meter m;
	uint64_t meter_pulses, meter_rejected;
};

static void sink_horizon(struct sink *s, const struct pl_edges *e)
{
	struct pl_interval_record rec[64];
	int64_t h = pl_edges_horizon(e);
	size_t n;

	assert_true(h >= s->horizon);
	s->horizon = h;
	/* Only as far as the filter allows: no pulse will ever come before this. */
	if (h != INT64_MIN) {
		do {
			n = pl_meter_advance(&s->m, h, rec, 64);
			for (size_t i = 0; i < n; i++) {
				s->meter_pulses += rec[i].pulses;
				s->meter_rejected += rec[i].rejected;
			}
		} while (n == 64);
	}
}

static void sink_take(struct sink *s, const struct pl_pulse *p)
{
	struct pl_interval_record rec[8];
	size_t n;
	int ret;

	assert_true(s->n < MAX_PULSES);
	assert_true(p->t_us >= s->horizon);
	s->got[s->n++] = *p;
	ret = pl_meter_pulse(&s->m, p, NULL, rec, 8, &n);
	assert_int_equal(ret, 0);
	for (size_t i = 0; i < n; i++) {
		s->meter_pulses += rec[i].pulses;
		s->meter_rejected += rec[i].rejected;
	}
}

/* Feeds a train with random advances and repeated levels between the edges. */
static void drive(struct pl_edges *e, const struct train *tr, uint8_t active_low, struct sink *s)
{
	struct pl_pulse p;
	int64_t t_prev = tr->runs[0].t;
	int ret;
	size_t i;

	for (i = 0; i < tr->n_runs; i++) {
		const struct run *r = &tr->runs[i];

		while (rnd() % 3 == 0 && r->t > t_prev) {
			int64_t t = rnd_range(t_prev, r->t);

			if (rnd() % 2)
				ret = pl_edges_advance(e, t, &p);
			else /* a repeated level: no edge */
				ret = pl_edges_feed(e, t, i ? tr->runs[i - 1].level ^ active_low : 0, &p);
			assert_true(ret == 0 || ret == 1);
			if (ret == 1)
				sink_take(s, &p);
			sink_horizon(s, e);
			t_prev = t;
		}
		ret = pl_edges_feed(e, r->t, r->level ^ active_low, &p);
		assert_true(ret == 0 || ret == 1);
		if (ret == 1)
			sink_take(s, &p);
		sink_horizon(s, e);
		t_prev = r->t;
	}
}

static void test_property_chatter(void **state)
{
	struct train *tr = malloc(sizeof *tr);
	struct expect *ex = malloc(sizeof *ex);
	struct sink *s = malloc(sizeof *s);
	uint64_t total_chatter = 0, total_steady = 0, total_rejected = 0, total_pulses = 0;
	int trial;

	(void)state;
	assert_non_null(tr);
	assert_non_null(ex);
	assert_non_null(s);
	rng_state = UINT64_C(0x5DEECE66D2545F49);
	for (trial = 0; trial < 3000; trial++) {
		struct pl_edges_config c;
		struct pl_edges e;
		struct pl_pulse p;
		int64_t t0 = rnd_range(-INT64_C(1000000000000000), INT64_C(1000000000000000));
		int64_t end;
		size_t i, j;

		pl_edges_config_default(&c);
		c.min_high_us = (uint32_t)rnd_range(2, 5000);
		c.min_low_us = (uint32_t)rnd_range(2, 5000);
		c.max_width_us = rnd() % 3 ? (uint32_t)rnd_range(200000, 400000) : 0;
		c.active_low = (uint8_t)(rnd() % 2);
		if (rnd() % 2) {
			c.imp_per_kwh = 1000;
			c.max_power_w = (uint32_t)rnd_range(10000, 100000);
		}
		assert_int_equal(pl_edges_init(&e, &c), 0);
		make_train(tr, t0, c.min_high_us, c.min_low_us, c.max_width_us,
			   (size_t)rnd_range(0, 40));
		reference(tr, c.min_high_us, c.min_low_us, c.max_width_us, e.min_gap_us, ex);

		memset(s, 0, sizeof *s);
		s->horizon = INT64_MIN;
		assert_int_equal(pl_meter_init(&s->m, NULL), 0);
		drive(&e, tr, c.active_low, s);
		/* The last run is a rest held long enough: let it be accepted. */
		end = tr->runs[tr->n_runs - 1].t + tr->runs[tr->n_runs - 1].len;
		if (pl_edges_advance(&e, end, &p) == 1)
			sink_take(s, &p);
		sink_horizon(s, &e);
		assert_int_equal(pl_edges_horizon(&e), end);

		/* Exactly the true pulses, stamped with their true leading edges. */
		assert_int_equal(s->n, ex->n);
		assert_int_equal(ex->n, tr->n_true);
		assert_int_equal(ex->steady, tr->n_steady_made);
		for (i = 0; i < s->n; i++) {
			assert_int_equal(s->got[i].t_us, tr->true_t[i]);
			assert_int_equal(s->got[i].t_us, ex->p[i].t_us);
			assert_int_equal(s->got[i].width_us, ex->p[i].width_us);
			assert_int_equal(s->got[i].flags, ex->p[i].flags);
			assert_int_equal(s->got[i].amplitude, 1);
			assert_int_equal(s->got[i].confidence, 100);
			assert_true(s->got[i].width_us >= c.min_high_us);
		}
		assert_int_equal(e.n_pulses, ex->n);
		assert_int_equal(e.n_chatter, ex->chatter);
		assert_int_equal(e.n_steady, ex->steady);
		assert_int_equal(e.n_rejected, ex->rejected);
		/* And the meter, advanced only to the horizon, got every one of them in order. */
		for (j = 0; pl_meter_flush(&s->m, end, &(struct pl_interval_record){ 0 }) == 1; j++)
			assert_true(j < 1000000);
		assert_int_equal(s->m.count, (int64_t)(ex->n - ex->rejected));

		total_chatter += ex->chatter;
		total_steady += ex->steady;
		total_rejected += ex->rejected;
		total_pulses += ex->n;
	}
	/* The generator really exercised every case. */
	assert_true(total_pulses > 30000);
	assert_true(total_chatter > 30000);
	assert_true(total_steady > 1000);
	assert_true(total_rejected > 1000);
	free(tr);
	free(ex);
	free(s);
}

/* Copy the state mid-stream: both copies go on identically, bit for bit. */
static void test_checkpoint_copy(void **state)
{
	struct train *tr = malloc(sizeof *tr);
	struct pl_edges_config c;
	struct pl_edges a, b;
	size_t i, half;
	uint64_t emitted = 0;

	(void)state;
	assert_non_null(tr);
	rng_state = 7;
	pl_edges_config_default(&c);
	c.max_width_us = 200000;
	c.imp_per_kwh = 1000;
	c.max_power_w = 30000;
	assert_int_equal(pl_edges_init(&a, &c), 0);
	make_train(tr, -INT64_C(5000000), c.min_high_us, c.min_low_us, c.max_width_us, 200);
	half = tr->n_runs / 2;
	for (i = 0; i < tr->n_runs; i++) {
		struct pl_pulse pa, pb;
		int ra, rb;

		if (i == half)
			memcpy(&b, &a, sizeof a);
		memset(&pa, 0, sizeof pa);
		memset(&pb, 0, sizeof pb);
		ra = pl_edges_feed(&a, tr->runs[i].t, tr->runs[i].level, &pa);
		if (i < half)
			continue;
		rb = pl_edges_feed(&b, tr->runs[i].t, tr->runs[i].level, &pb);
		assert_int_equal(ra, rb);
		assert_memory_equal(&pa, &pb, sizeof pa);
		emitted += (uint64_t)ra;
		if (i % 5 == 0) {
			int64_t t = tr->runs[i].t + tr->runs[i].len / 2;

			ra = pl_edges_advance(&a, t, &pa);
			rb = pl_edges_advance(&b, t, &pb);
			assert_int_equal(ra, rb);
			assert_memory_equal(&pa, &pb, sizeof pa);
			emitted += (uint64_t)ra;
		}
		assert_int_equal(pl_edges_horizon(&a), pl_edges_horizon(&b));
		assert_memory_equal(&a, &b, sizeof a);
	}
	assert_true(emitted > 50);
	free(tr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_default_and_init),
		cmocka_unit_test(test_arguments),
		cmocka_unit_test(test_clean_pulse),
		cmocka_unit_test(test_pulse_emitted_by_next_edge),
		cmocka_unit_test(test_exact_minimum_widths),
		cmocka_unit_test(test_zero_minimum_widths),
		cmocka_unit_test(test_active_low),
		cmocka_unit_test(test_first_level_is_a_state),
		cmocka_unit_test(test_chatter_at_leading_edge),
		cmocka_unit_test(test_dropout_inside_pulse),
		cmocka_unit_test(test_chatter_at_trailing_edge),
		cmocka_unit_test(test_spikes_in_rest),
		cmocka_unit_test(test_steady),
		cmocka_unit_test(test_no_width_limit),
		cmocka_unit_test(test_plausibility),
		cmocka_unit_test(test_horizon),
		cmocka_unit_test(test_extreme_times),
		cmocka_unit_test(test_property_chatter),
		cmocka_unit_test(test_checkpoint_copy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
