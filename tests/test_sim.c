/* SPDX-License-Identifier: MIT */
/*
 * Tests of the trace simulator (src/linux/sim.c): determinism, pulses from the energy
 * integral, the noise, outliers and jitter it claims, the LDR's partial swing and anti-creep.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "powerlogger/common.h"
#include "sources/sim.h"

/* Everything one run produced, in memory. */
struct run {
	struct pl_sample *s;
	size_t n;
	struct pl_sim_pulse *p;
	size_t np;
	struct pl_sim_stats st;
};

static void run_sim(const struct pl_sim_config *cfg, struct run *r)
{
	struct pl_sim *sim;
	char err[200];
	memset(r, 0, sizeof(*r));
	int rc = pl_sim_new(&sim, cfg, err, sizeof(err));
	if (rc)
		fail_msg("pl_sim_new: %s", err);
	size_t cap_s = 1024, cap_p = 64;
	r->s = malloc(cap_s * sizeof(*r->s));
	r->p = malloc(cap_p * sizeof(*r->p));
	assert_non_null(r->s);
	assert_non_null(r->p);
	for (;;) {
		if (r->n + 512 > cap_s) {
			cap_s *= 2;
			r->s = realloc(r->s, cap_s * sizeof(*r->s));
			assert_non_null(r->s);
		}
		size_t k = pl_sim_read(sim, r->s + r->n, 512);
		r->n += k;
		size_t m;
		do {
			if (r->np + 16 > cap_p) {
				cap_p *= 2;
				r->p = realloc(r->p, cap_p * sizeof(*r->p));
				assert_non_null(r->p);
			}
			m = pl_sim_truth(sim, r->p + r->np, 16);
			/* Streaming contract: no pulse is handed out before its time has come. */
			for (size_t i = 0; k > 0 && i < m; i++)
				assert_true(r->p[r->np + i].t_us <= r->s[r->n - 1].t_us);
			r->np += m;
		} while (m > 0);
		if (k == 0)
			break;
	}
	pl_sim_stats(sim, &r->st);
	pl_sim_free(sim);
}

static void run_free(struct run *r)
{
	free(r->s);
	free(r->p);
}

/* Field by field: the structs have padding. */
static int same_samples(const struct run *a, const struct run *b)
{
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++)
		if (a->s[i].t_us != b->s[i].t_us || a->s[i].v != b->s[i].v)
			return 0;
	return 1;
}

static int same_pulses(const struct run *a, const struct run *b)
{
	if (a->np != b->np)
		return 0;
	for (size_t i = 0; i < a->np; i++)
		if (a->p[i].t_us != b->p[i].t_us || a->p[i].width_us != b->p[i].width_us ||
		    a->p[i].power_w != b->p[i].power_w)
			return 0;
	return 1;
}

/* A clean photodiode, no noise: the base of most tests. */
static void base_config(struct pl_sim_config *c)
{
	pl_sim_config_default(c);
	c->duration_s = 10;
	c->rate_hz = 1000;
	c->power_w = 3600;
}

static void test_defaults_valid(void **state)
{
	(void)state;
	struct pl_sim_config c;
	pl_sim_config_default(&c);
	assert_int_equal(pl_sim_config_check(&c, NULL, 0), 0);
}

static void test_bad_config(void **state)
{
	(void)state;
	struct pl_sim_config c;
	char err[200];
	struct pl_sim *sim = (struct pl_sim *)1;

	base_config(&c);
	c.rate_hz = 99;
	assert_int_equal(pl_sim_config_check(&c, err, sizeof(err)), -PL_EINVAL);
	assert_non_null(strstr(err, "--rate"));
	base_config(&c);
	c.width_ms = 1;
	assert_int_equal(pl_sim_new(&sim, &c, err, sizeof(err)), -PL_EINVAL);
	assert_null(sim);
	assert_non_null(strstr(err, "--width-ms"));
	base_config(&c);
	c.jitter = NAN;
	assert_int_equal(pl_sim_config_check(&c, err, sizeof(err)), -PL_EINVAL);
	base_config(&c);
	c.n_zero = 1;
	c.zero[0].start_s = 5;
	c.zero[0].end_s = 4;
	assert_int_equal(pl_sim_config_check(&c, err, sizeof(err)), -PL_EINVAL);
	base_config(&c);
	c.adc_bits = 17;
	assert_int_equal(pl_sim_config_check(&c, err, sizeof(err)), -PL_EINVAL);
}

/* Same seed, same samples and pulses; another seed, another trace. */
static void test_determinism(void **state)
{
	(void)state;
	struct pl_sim_config c;
	struct run a, b, d;
	base_config(&c);
	c.seed = 42;
	c.sensor = PL_SIM_LDR;
	c.noise = 30;
	c.spikes_per_s = 1;
	c.jitter = 0.3;
	c.steps_per_hour = 2000;
	c.flicker = 0.2;
	c.drift = 0.1;
	c.drift_period_s = 5;
	c.duration_s = 5;
	run_sim(&c, &a);
	run_sim(&c, &b);
	assert_true(a.n > 4000);
	assert_true(same_samples(&a, &b));
	assert_true(same_pulses(&a, &b));
	assert_true(a.np > 0);
	c.seed = 43;
	run_sim(&c, &d);
	assert_false(same_samples(&a, &d));
	run_free(&a);
	run_free(&b);
	run_free(&d);
}

/* Noise draws from its own stream: adding noise does not move the pulses. */
static void test_streams_independent(void **state)
{
	(void)state;
	struct pl_sim_config c;
	struct run a, b;
	base_config(&c);
	run_sim(&c, &a);
	c.noise = 30;
	c.spikes_per_s = 3;
	run_sim(&c, &b);
	assert_true(same_pulses(&a, &b));
	assert_false(same_samples(&a, &b));
	run_free(&a);
	run_free(&b);
}

/* 3600 W at 1000 imp/kWh is one pulse per second: 60 s give 60 pulses, +-1 for the phase. */
static void test_pulse_count_constant(void **state)
{
	(void)state;
	struct pl_sim_config c;
	base_config(&c);
	c.duration_s = 60;
	for (uint64_t seed = 1; seed <= 5; seed++) {
		struct run r;
		c.seed = seed;
		run_sim(&c, &r);
		assert_in_range(r.np, 59, 61);
		assert_int_equal(r.st.pulses, r.np);
		for (size_t i = 1; i < r.np; i++)
			assert_in_range(r.p[i].t_us - r.p[i - 1].t_us, 999999, 1000001);
		assert_int_equal(r.p[0].width_us, 10000);
		assert_true(fabs(r.p[0].power_w - 3600) < 1e-6);
		assert_true(fabs(r.st.energy_wh - 60.0) < 1e-6);
		run_free(&r);
	}
	/* 10000 imp/kWh at 36 kW: 100 pulses per second. */
	struct run r;
	c.duration_s = 3;
	c.imp_per_kwh = 10000;
	c.power_w = 36000;
	c.rate_hz = 20000;
	run_sim(&c, &r);
	assert_in_range(r.np, 299, 301);
	/* The gap is 10 ms: a 10 ms pulse is cut to half of it. */
	assert_int_equal(r.p[0].width_us, 5000);
	run_free(&r);
}

/* A linear ramp 0..7200 W over 100 s holds 100 Wh: 100 pulses, +-1. */
static void test_pulse_count_profile(void **state)
{
	(void)state;
	double t[] = { 1000, 1100, 1200 };
	double w[] = { 0, 7200, 0 };
	struct pl_sim_load load;
	char err[200];
	assert_int_equal(pl_sim_load_from(&load, t, w, 3, 0, err, sizeof(err)), 0);
	struct pl_sim_config c;
	base_config(&c);
	c.load = &load;
	c.duration_s = 100;
	c.rate_hz = 200;
	c.creep_w = 0;
	for (uint64_t seed = 1; seed <= 3; seed++) {
		struct run r;
		c.seed = seed;
		run_sim(&c, &r);
		assert_true(fabs(r.st.energy_wh - 100.0) < 1e-6);
		assert_in_range(r.np, 99, 101);
		/* The load rises: the gaps shrink, and each pulse carries the ramp's power. */
		for (size_t i = 2; i < r.np; i++)
			assert_true(r.p[i].t_us - r.p[i - 1].t_us < r.p[i - 1].t_us - r.p[i - 2].t_us);
		for (size_t i = 0; i < r.np; i++)
			assert_true(fabs(r.p[i].power_w - 72.0 * (double)r.p[i].t_us * 1e-6) < 0.01);
		run_free(&r);
	}
	/* Speed 2 plays the whole 200 s profile in 100 s: up to 7200 W at 50 s and down again.
	 * Power is kept and time compressed, so the energy is the triangle's 100 Wh. */
	struct run r;
	c.load_speed = 2;
	run_sim(&c, &r);
	assert_in_range(r.np, 99, 101);
	for (size_t i = 0; i < r.np; i++) {
		double ts = (double)r.p[i].t_us * 1e-6;
		assert_true(fabs(r.p[i].power_w - 144.0 * (ts < 50 ? ts : 100 - ts)) < 0.01);
	}
	c.interp = PL_SIM_STEP;
	c.load_speed = 1;
	c.load_start_s = 100;
	run_free(&r);
	run_sim(&c, &r);
	/* Step interpolation from 100 s into the profile: 7200 W held for 100 s. */
	assert_in_range(r.np, 199, 201);
	run_free(&r);
	pl_sim_load_free(&load);
}

/* Noise: sigma measured on a steady mid-scale level is within 10 % of the setting. */
static void test_noise_sigma(void **state)
{
	(void)state;
	struct pl_sim_config c;
	base_config(&c);
	c.power_w = 0; /* no pulses; the LED rests dark */
	c.ambient = 2; /* 2000 LSB */
	c.noise = 30;
	c.duration_s = 20;
	struct run r;
	run_sim(&c, &r);
	double sum = 0, sum2 = 0;
	for (size_t i = 0; i < r.n; i++) {
		sum += r.s[i].v;
		sum2 += (double)r.s[i].v * r.s[i].v;
	}
	double mean = sum / (double)r.n;
	double sd = sqrt(sum2 / (double)r.n - mean * mean);
	assert_true(fabs(mean - 2000) < 2);
	assert_true(fabs(sd - 30) < 3);
	assert_int_equal(r.np, 0);
	run_free(&r);
}

/* Outliers: the rate asked for (Poisson, within 4 sigma), each over 1000 LSB, one sample. */
static void test_spikes(void **state)
{
	(void)state;
	struct pl_sim_config c;
	base_config(&c);
	c.power_w = 0;
	c.ambient = 1; /* steady 1000 LSB */
	c.spikes_per_s = 2;
	c.duration_s = 100;
	struct run r;
	run_sim(&c, &r);
	size_t n = 0;
	for (size_t i = 0; i < r.n; i++) {
		int32_t dv = r.s[i].v - 1000;
		if (dv == 0)
			continue;
		assert_true(abs(dv) > 1000);
		/* single-sample: a neighbour is at the level, unless it is an outlier itself */
		if (i > 0)
			assert_true(r.s[i - 1].v == 1000 || abs(r.s[i - 1].v - 1000) > 1000);
		if (i + 1 < r.n)
			assert_true(r.s[i + 1].v == 1000 || abs(r.s[i + 1].v - 1000) > 1000);
		n++;
	}
	assert_int_equal(n, r.st.spikes);
	assert_in_range(n, 200 - 57, 200 + 57);
	run_free(&r);
}

/* Bursts: an outlier held for burst_ms (a WiFi transmission), then the level again. */
static void test_bursts(void **state)
{
	(void)state;
	struct pl_sim_config c;
	base_config(&c);
	c.power_w = 0;
	c.ambient = 1;
	c.rate_hz = 10000;
	c.spikes_per_s = 1;
	c.burst_ms = 3;
	c.duration_s = 20;
	struct run r;
	run_sim(&c, &r);
	size_t off = 0, runs = 0, run_len = 0, longest = 0;
	for (size_t i = 0; i < r.n; i++) {
		if (r.s[i].v != 1000) {
			assert_true(abs(r.s[i].v - 1000) > 1000);
			off++;
			if (run_len++ == 0)
				runs++;
			if (run_len > longest)
				longest = run_len;
		} else {
			run_len = 0;
		}
	}
	assert_true(r.st.spikes >= 5);
	assert_true(runs <= r.st.spikes && runs >= r.st.spikes - 2); /* bursts may touch */
	assert_true(longest >= 30);
	assert_true(off >= 30 * r.st.spikes && off <= 31 * r.st.spikes);
	run_free(&r);
}

/* Jitter: every interval within 1/rate * (1 +- FRAC), and really uneven. */
static void test_jitter(void **state)
{
	(void)state;
	struct pl_sim_config c;
	base_config(&c);
	c.rate_hz = 2000;
	c.jitter = 0.4;
	struct run r;
	run_sim(&c, &r);
	int64_t lo = INT64_MAX, hi = 0;
	for (size_t i = 1; i < r.n; i++) {
		int64_t d = r.s[i].t_us - r.s[i - 1].t_us;
		if (d < lo)
			lo = d;
		if (d > hi)
			hi = d;
	}
	assert_true(lo >= 300 - 1 && hi <= 700 + 1);
	assert_true(lo < 320 && hi > 680); /* the whole range is used */
	assert_in_range(r.n, 19600, 20400);
	/* No jitter: exact spacing, also at rates that do not divide a second (3 kHz). */
	c.jitter = 0;
	c.rate_hz = 3000;
	run_free(&r);
	run_sim(&c, &r);
	assert_int_equal(r.n, 30000);
	for (size_t i = 0; i < r.n; i++)
		assert_int_equal(r.s[i].t_us, (int64_t)llround((double)i * 1e6 / 3000.0));
	run_free(&r);
}

/* The sample in the middle of each true pulse sees the LED; polarity dark inverts it. */
static void test_pulse_visible(void **state)
{
	(void)state;
	struct pl_sim_config c;
	base_config(&c);
	c.rate_hz = 10000;
	c.ambient = 0.2;
	for (int dark = 0; dark <= 1; dark++) {
		c.led_dark = dark;
		struct run r;
		run_sim(&c, &r);
		assert_in_range(r.np, 9, 11);
		int32_t rest = dark ? 1200 : 200, lit = dark ? 200 : 1200;
		assert_int_equal(r.s[0].v, rest);
		for (size_t i = 0; i < r.np; i++) {
			size_t k = (size_t)((r.p[i].t_us + r.p[i].width_us / 2) / 100);
			assert_int_equal(r.s[k].v, lit);
			assert_int_equal(r.s[k - 60].v, rest);
			assert_int_equal(r.s[k + 60].v, rest);
		}
		run_free(&r);
	}
	/* Inverted ADC: more light reads lower. */
	c.led_dark = 0;
	c.invert = 1;
	struct run r;
	run_sim(&c, &r);
	assert_int_equal(r.s[0].v, 4095 - 200);
	size_t k = (size_t)((r.p[0].t_us + r.p[0].width_us / 2) / 100);
	assert_int_equal(r.s[k].v, 4095 - 1200);
	run_free(&r);
}

/* A 2 ms flash between two 10 ms samples is never seen: the physics is not sampled. */
static void test_short_flash_between_samples(void **state)
{
	(void)state;
	struct pl_sim_config c;
	base_config(&c);
	c.rate_hz = 100;
	c.width_ms = 2;
	c.duration_s = 60;
	c.power_w = 3456.7; /* a period that is no multiple of 10 ms: the phase wanders */
	struct run r;
	run_sim(&c, &r);
	size_t seen = 0;
	for (size_t i = 0; i < r.n; i++)
		seen += r.s[i].v > 700;
	/* 60 flashes of 2 ms, samples every 10 ms: about 1 in 5 is caught (never all). */
	assert_true(seen > 2 && seen < 30);
	run_free(&r);
}

/* Swing of the LDR for one flash of the given width: peak minus the level before it. */
static int32_t ldr_swing(double width_ms)
{
	struct pl_sim_config c;
	base_config(&c);
	c.sensor = PL_SIM_LDR;
	c.width_ms = width_ms;
	c.power_w = 1000; /* a flash every 3.6 s */
	c.duration_s = 8;
	c.ambient = 0.1;
	struct run r;
	run_sim(&c, &r);
	assert_true(r.np >= 1);
	size_t k0 = (size_t)(r.p[0].t_us / 1000);
	int32_t base = r.s[k0 > 0 ? k0 - 1 : 0].v, peak = base;
	for (size_t i = k0; i < k0 + 300 && i < r.n; i++)
		if (r.s[i].v > peak)
			peak = r.s[i].v;
	run_free(&r);
	return peak - base;
}

/* A 10 ms flash gives an LDR only part of the swing a 100 ms flash gives (which is ~full). */
static void test_ldr_partial_swing(void **state)
{
	(void)state;
	int32_t s10 = ldr_swing(10), s100 = ldr_swing(100);
	assert_true(s100 > 900 && s100 <= 1001);
	assert_true(s10 > 100);
	assert_true(s10 < s100 * 3 / 4);
}

/* The LDR falls much more slowly than it rises: after a 10 ms flash at 2 pulses per second the
 * level has not returned to rest before the next flash (tails merge at high load). */
static void test_ldr_tails(void **state)
{
	(void)state;
	struct pl_sim_config c;
	base_config(&c);
	c.sensor = PL_SIM_LDR;
	c.power_w = 36000; /* 10 pulses per second */
	c.ambient = 0.05;
	c.duration_s = 3;
	struct run r;
	run_sim(&c, &r);
	int32_t rest = r.s[0].v;
	assert_true(r.np >= 29);
	/* just before the 20th flash, the tail of the 19th still lifts the level */
	size_t k = (size_t)(r.p[19].t_us / 1000) - 1;
	assert_true(r.s[k].v > rest + 20);
	run_free(&r);
}

/* Anti-creep: no pulses during no load, the LED steadily lit, and back to pulses after. */
static void test_anticreep(void **state)
{
	(void)state;
	struct pl_sim_config c;
	base_config(&c);
	c.duration_s = 60;
	c.n_zero = 1;
	c.zero[0].start_s = 10;
	c.zero[0].end_s = 50;
	c.anticreep = 1;
	c.noise = 5;
	struct run r;
	run_sim(&c, &r);
	size_t before = 0, after = 0;
	for (size_t i = 0; i < r.np; i++) {
		double t = (double)r.p[i].t_us * 1e-6;
		assert_true(t < 10.0 || t >= 51.0); /* first pulse at least 1 s after the light */
		before += t < 10.0;
		after += t >= 51.0;
	}
	assert_in_range(before, 9, 11);
	assert_in_range(after, 8, 10);
	/* steadily lit from 1 s after the last pulse to the end of no load */
	for (size_t i = 0; i < r.n; i++) {
		double t = (double)r.s[i].t_us * 1e-6;
		if (t >= 12 && t < 49.9)
			assert_true(r.s[i].v > 1200 - 30);
	}
	assert_true(fabs(r.st.no_load_s - 40) < 1e-6);
	run_free(&r);

	/* Without anti-creep the LED rests dark. */
	c.anticreep = 0;
	run_sim(&c, &r);
	for (size_t i = 0; i < r.n; i++) {
		double t = (double)r.s[i].t_us * 1e-6;
		if (t >= 12 && t < 49.9)
			assert_true(r.s[i].v < 200 + 30);
	}
	run_free(&r);

	/* A load below the no-load threshold is no load too. */
	c.anticreep = 1;
	c.n_zero = 0;
	c.power_w = 3;
	run_sim(&c, &r);
	assert_int_equal(r.np, 0);
	assert_true(r.s[r.n - 1].v > 1200 - 30);
	run_free(&r);
}

/* Dead zone, compression and clipping stay within the ADC's range. */
static void test_adc_nonlinear(void **state)
{
	(void)state;
	struct pl_sim_config c;
	base_config(&c);
	c.power_w = 0;
	c.ambient = 0.05;           /* 50 LSB: inside a 120 mV dead zone (149 LSB) */
	c.deadzone_mv = 120;
	struct run r;
	run_sim(&c, &r);
	assert_int_equal(r.s[0].v, 0);
	run_free(&r);
	c.ambient = 4;              /* 4000 LSB: over the knee, compressed below full scale */
	c.deadzone_mv = 0;
	c.compress = 0.8;
	run_sim(&c, &r);
	assert_true(r.s[0].v < 3900 && r.s[0].v > 3276);
	run_free(&r);
	c.ambient = 10;             /* far over: compression saturates at full scale */
	run_sim(&c, &r);
	assert_true(r.s[0].v <= 4095 && r.s[0].v > 4000);
	run_free(&r);
}

/* Reading load files: comments, header, meter constant from a comment, errors. */
static void test_load_read(void **state)
{
	(void)state;
	char path[] = "/tmp/test_sim_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	fputs("# a log, 2000 imp/kWh\nepoch_ms\n1000\n1500\n\n3000\n", f);
	fclose(f);
	struct pl_sim_load load;
	char err[200];
	assert_int_equal(pl_sim_load_read(path, &load, err, sizeof(err)), 0);
	assert_int_equal(load.kind, PL_SIM_LOAD_PULSES);
	assert_int_equal(load.n, 3);
	assert_int_equal(load.imp_per_kwh, 2000);
	assert_true(load.t[1] == 0.5 && load.t[2] == 2.0);
	assert_true(load.t0_unix == 1.0);

	/* As is: the log's pulses, 0.5 s then 1.5 s apart, looped every 2 s. */
	struct pl_sim_config c;
	base_config(&c);
	c.load = &load;
	c.pulse_mode = PL_SIM_PULSES_ASIS;
	c.duration_s = 4.5;
	struct run r;
	run_sim(&c, &r);
	assert_int_equal(r.np, 5);
	assert_int_equal(r.p[0].t_us, 0);
	assert_int_equal(r.p[1].t_us, 500000);
	assert_int_equal(r.p[2].t_us, 2000000);
	assert_int_equal(r.p[3].t_us, 2500000);
	assert_true(fabs(r.p[1].power_w - 3600.0) < 1e-6); /* 1.8 kJ in 0.5 s */
	run_free(&r);
	pl_sim_load_free(&load);

	f = fopen(path, "w");
	fputs("unix_s,watts\n100,5\n90,6\n", f);
	fclose(f);
	assert_int_equal(pl_sim_load_read(path, &load, err, sizeof(err)), -PL_EPARSE);
	assert_non_null(strstr(err, ":3:"));
	f = fopen(path, "w");
	fputs("unix_s,watts\n100,abc\n", f);
	fclose(f);
	assert_int_equal(pl_sim_load_read(path, &load, err, sizeof(err)), -PL_EPARSE);
	unlink(path);
	assert_int_equal(pl_sim_load_read(path, &load, err, sizeof(err)), -PL_EIO);
}

/* The real data in data/: a REFIT day at 60x and the volkszaehler log. */
static void test_real_loads(void **state)
{
	(void)state;
	char path[512];
	struct pl_sim_load load;
	char err[200];
	snprintf(path, sizeof(path), "%s/data/refit-house1-2015-01-08.csv", PL_SOURCE_DIR);
	assert_int_equal(access(path, R_OK), 0);
	assert_int_equal(pl_sim_load_read(path, &load, err, sizeof(err)), 0);
	assert_int_equal(load.kind, PL_SIM_LOAD_PROFILE);
	struct pl_sim_config c;
	base_config(&c);
	c.load = &load;
	c.load_speed = 60;
	c.load_start_s = 18 * 3600;
	c.duration_s = 30;
	c.rate_hz = 200;
	struct run r;
	run_sim(&c, &r);
	double expect = r.st.energy_wh * c.imp_per_kwh / 1000.0;
	assert_true(fabs((double)r.np - expect) <= 1.0);
	assert_true(r.st.load_max_w > r.st.load_min_w);
	run_free(&r);
	pl_sim_load_free(&load);

	snprintf(path, sizeof(path), "%s/data/vz-s0-2000imp-pulses.csv", PL_SOURCE_DIR);
	assert_int_equal(access(path, R_OK), 0);
	assert_int_equal(pl_sim_load_read(path, &load, err, sizeof(err)), 0);
	assert_int_equal(load.imp_per_kwh, 2000);
	c.load = &load;
	c.load_speed = 1;
	c.load_start_s = 0;
	c.duration_s = 600;
	c.imp_per_kwh = 2000;
	run_sim(&c, &r);
	size_t n_power = r.np;
	run_free(&r);
	c.pulse_mode = PL_SIM_PULSES_ASIS;
	run_sim(&c, &r);
	/* The log's pulses in the first 600 s, and the energy re-made from them, agree. */
	size_t n_log = 0;
	for (size_t i = 0; i < load.n && load.t[i] < 600; i++)
		n_log++;
	assert_int_equal(r.np, n_log);
	assert_true(labs((long)n_power - (long)n_log) <= 1);
	run_free(&r);
	pl_sim_load_free(&load);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_valid),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_determinism),
		cmocka_unit_test(test_streams_independent),
		cmocka_unit_test(test_pulse_count_constant),
		cmocka_unit_test(test_pulse_count_profile),
		cmocka_unit_test(test_noise_sigma),
		cmocka_unit_test(test_spikes),
		cmocka_unit_test(test_bursts),
		cmocka_unit_test(test_jitter),
		cmocka_unit_test(test_pulse_visible),
		cmocka_unit_test(test_short_flash_between_samples),
		cmocka_unit_test(test_ldr_partial_swing),
		cmocka_unit_test(test_ldr_tails),
		cmocka_unit_test(test_anticreep),
		cmocka_unit_test(test_adc_nonlinear),
		cmocka_unit_test(test_load_read),
		cmocka_unit_test(test_real_loads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
