/* SPDX-License-Identifier: MIT */
/*
 * Unit and property tests of the analog detector, on signals made here: a small, independent
 * signal model (square LED pulses through a first-order sensor, plus ambient, flicker, noise
 * and spikes) so that the detector is not only tested against the project's own simulator.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include "powerlogger/detector.h"

struct sig {
	double rate_hz;
	double jitter;        /* fraction of the sample period */
	double width_ms;
	double amp;           /* LSB */
	double base;          /* LSB */
	int dir;              /* +1 pulse raises value, -1 lowers */
	double tau_rise_ms, tau_fall_ms; /* 0 = instant (photodiode) */
	double noise;         /* sigma, LSB */
	double flicker;       /* amplitude, LSB */
	double flicker_hz;
	double drift;         /* LSB per second */
	double step_at_s, step;      /* one room-light step */
	double spikes_per_s, spike;  /* single-sample outliers */
	double steady_from_s, steady_to_s; /* LED held lit */
	const double *ghosts; /* extra flashes of ghost_width_ms (not pulses: WiFi bursts) */
	size_t nghosts;
	double ghost_width_ms;
	const double *pulses; /* leading edges, seconds */
	size_t npulses;
	double duration_s;
	uint64_t seed;
};

static uint64_t rng;
static double urand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}
static double grand(void)
{
	double u = urand(), v = urand();
	if (u < 1e-300)
		u = 1e-300;
	return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

/* Runs the detector over the signal, returns pulses (accepted and rejected) in *out. */
static size_t run(const struct sig *g, const struct pl_detector_config *cfg,
		  struct pl_pulse *res, size_t cap, struct pl_detector *dout)
{
	struct pl_detector d;
	struct pl_sample buf[512];
	struct pl_pulse out[PL_DETECTOR_MIN_OUT];
	size_t nres = 0, nb = 0, no;
	double t = 0, x = 0, dt = 1.0 / g->rate_hz;
	size_t pi = 0;

	rng = g->seed * 2654435761u + 1;
	assert_int_equal(pl_detector_init(&d, cfg), 0);
	while (t < g->duration_s) {
		/* LED light at time t (square pulses) */
		double led = 0;
		while (pi < g->npulses && g->pulses[pi] + g->width_ms / 1000 < t)
			pi++;
		if (pi < g->npulses && t >= g->pulses[pi])
			led = 1;
		if (t >= g->steady_from_s && t < g->steady_to_s)
			led = 1;
		for (size_t k = 0; k < g->nghosts; k++)
			if (t >= g->ghosts[k] && t < g->ghosts[k] + g->ghost_width_ms / 1000)
				led = 1;
		/* first-order sensor */
		double tau = led > x ? g->tau_rise_ms : g->tau_fall_ms;
		if (tau <= 0)
			x = led;
		else
			x += (led - x) * (1 - exp(-dt * 1000 / tau));
		double v = g->base + g->dir * g->amp * x + g->drift * t + g->noise * grand();
		if (g->flicker > 0)
			v += g->flicker * sin(2 * M_PI * g->flicker_hz * t);
		if (g->step != 0 && t >= g->step_at_s)
			v += g->step;
		if (g->spikes_per_s > 0 && urand() < g->spikes_per_s * dt)
			v += (urand() < 0.5 ? -1 : 1) * g->spike;
		buf[nb].t_us = (int64_t)llround(t * 1e6);
		buf[nb].v = (int32_t)lround(v);
		nb++;
		if (nb == 512) {
			size_t off = 0;
			while (off < nb) {
				int64_t h = pl_detector_horizon(&d);
				off += pl_detector_feed(&d, buf + off, nb - off, out, PL_DETECTOR_MIN_OUT, &no);
				for (size_t i = 0; i < no && nres < cap; i++) {
					/* every test also checks the horizon's promise */
					assert_true(out[i].t_us >= h);
					res[nres++] = out[i];
				}
			}
			nb = 0;
		}
		double step = dt;
		if (g->jitter > 0)
			step *= 1 + g->jitter * (2 * urand() - 1);
		t += step;
	}
	size_t off = 0;
	while (off < nb) {
		off += pl_detector_feed(&d, buf + off, nb - off, out, PL_DETECTOR_MIN_OUT, &no);
		for (size_t i = 0; i < no && nres < cap; i++)
			res[nres++] = out[i];
	}
	pl_detector_finish(&d, out, PL_DETECTOR_MIN_OUT, &no);
	for (size_t i = 0; i < no && nres < cap; i++)
		res[nres++] = out[i];
	if (dout)
		*dout = d;
	return nres;
}

static double pulses[4096];

static size_t make_train(double start, double gap, double jitter, double end, uint64_t seed)
{
	size_t n = 0;
	rng = seed + 99;
	for (double t = start; t < end && n < 4096; n++) {
		pulses[n] = t;
		t += gap * (1 + jitter * (2 * urand() - 1));
	}
	return n;
}

/* Every true pulse matched by exactly one detected accepted pulse within tolerance. */
static double early_ms = 5; /* how early a detected edge may be: up to a sample period */

static void expect_exact(const struct pl_pulse *res, size_t nres, size_t ntrue, double tol_ms)
{
	size_t acc = 0;
	for (size_t i = 0; i < nres; i++)
		if (!(res[i].flags & PL_PULSE_REJECTED))
			acc++;
	if (acc != ntrue) {
		print_error("detected %zu, true %zu\n", acc, ntrue);
		for (size_t i = 0, j = 0; i < nres || j < ntrue;) {
			double t = i < nres ? (double)res[i].t_us / 1e6 : 1e18;
			double u = j < ntrue ? pulses[j] : 1e18;
			if (fabs(t - u) < 0.05) { if (getenv("PL_DEBUG")) print_message("  ok %.4f %.4f w=%u a=%d\n", t, u, res[i].width_us, res[i].amplitude); i++; j++; continue; }
			if (t < u) { print_error("  extra at %.4f w=%u a=%d flags=%u\n", t, res[i].width_us, res[i].amplitude, res[i].flags); i++; }
			else { print_error("  missed %.4f\n", u); j++; }
		}
	}
	assert_int_equal(acc, ntrue);
	size_t j = 0;
	for (size_t i = 0; i < nres; i++) {
		if (res[i].flags & PL_PULSE_REJECTED)
			continue;
		double t = (double)res[i].t_us / 1e6;
		double err = (t - pulses[j]) * 1000;
		if (err < -early_ms || err > tol_ms) {
			print_error("pulse %zu at %.4f, true %.4f\n", j, t, pulses[j]);
			for (size_t k = 0; k < nres && k < 8; k++)
				print_error("  detected %.4f w=%u a=%d\n", (double)res[k].t_us / 1e6,
					    res[k].width_us, res[k].amplitude);
		}
		assert_true(err >= -early_ms && err <= tol_ms);
		j++;
	}
}

static struct pl_pulse res[8192];

static struct sig base_sig(void)
{
	struct sig g;
	memset(&g, 0, sizeof(g));
	g.rate_hz = 1000;
	g.width_ms = 10;
	g.amp = 800;
	g.base = 1000;
	g.dir = 1;
	g.noise = 30;
	g.duration_s = 60;
	g.seed = 1;
	g.pulses = pulses;
	return g;
}

static void test_square_1khz(void **st)
{
	(void)st;
	struct sig g = base_sig();
	g.npulses = make_train(2.3, 1.1, 0.3, 59, 1);
	size_t n = run(&g, NULL, res, 8192, NULL);
	expect_exact(res, n, g.npulses, 4);
}

static void test_inverted_20khz(void **st)
{
	(void)st;
	struct sig g = base_sig();
	g.rate_hz = 20000;
	g.dir = -1;
	g.width_ms = 2;
	g.duration_s = 20;
	g.npulses = make_train(1.0, 0.4, 0.5, 19.5, 2);
	size_t n = run(&g, NULL, res, 8192, NULL);
	expect_exact(res, n, g.npulses, 3);
	struct pl_detector d;
	run(&g, NULL, res, 8192, &d);
	struct pl_detector_status s;
	pl_detector_status(&d, &s);
	assert_int_equal(s.polarity, -1);
}

static void test_uneven_100hz_ldr(void **st)
{
	(void)st;
	struct sig g = base_sig();
	g.rate_hz = 100;
	g.jitter = 0.4;
	g.width_ms = 40;
	g.tau_rise_ms = 10;
	g.tau_fall_ms = 80;
	g.duration_s = 120;
	g.npulses = make_train(3, 2.0, 0.5, 118, 3);
	size_t n = run(&g, NULL, res, 8192, NULL);
	early_ms = 15; /* a sample period and its jitter */
	expect_exact(res, n, g.npulses, 60);
	early_ms = 5;
}

static void test_ldr_merged_high_load(void **st)
{
	(void)st;
	struct sig g = base_sig();
	g.rate_hz = 2000;
	g.width_ms = 10;
	g.tau_rise_ms = 15;
	g.tau_fall_ms = 120;
	g.noise = 10;
	g.duration_s = 30;
	/* slow pulses, then 60 ms apart (60 kW at 1000 imp/kWh), then slow again */
	size_t n = make_train(1, 1.5, 0.2, 8, 4);
	for (double t = pulses[n - 1] + 1.0; t < 18; t += 0.060)
		pulses[n++] = t;
	for (double t = pulses[n - 1] + 1.5; t < 29; t += 1.3)
		pulses[n++] = t;
	g.npulses = n;
	size_t nr = run(&g, NULL, res, 8192, NULL);
	expect_exact(res, nr, g.npulses, 40);
}

static void test_anticreep_then_pulses(void **st)
{
	(void)st;
	struct sig g = base_sig();
	g.steady_from_s = 0;
	g.steady_to_s = 20;
	g.duration_s = 60;
	g.npulses = make_train(21, 0.9, 0.3, 59, 5);
	size_t n = run(&g, NULL, res, 8192, NULL);
	expect_exact(res, n, g.npulses, 4);
}

static void test_pulses_then_anticreep(void **st)
{
	(void)st;
	struct sig g = base_sig();
	g.duration_s = 90;
	g.npulses = make_train(1, 0.9, 0.3, 30, 6);
	g.steady_from_s = 40;
	g.steady_to_s = 60;
	size_t n = make_train(62, 1.3, 0.3, 89, 7);
	/* rebuild: first train then second */
	double tmp[4096];
	memcpy(tmp, pulses, n * sizeof(double));
	size_t n1 = make_train(1, 0.9, 0.3, 30, 6);
	memcpy(pulses + n1, tmp, n * sizeof(double));
	g.npulses = n1 + n;
	struct pl_detector d;
	size_t nr = run(&g, NULL, res, 8192, &d);
	expect_exact(res, nr, g.npulses, 4);
	struct pl_detector_status s;
	pl_detector_status(&d, &s);
	assert_true(s.steady_events >= 1);
}

static void test_room_light_drift_flicker(void **st)
{
	(void)st;
	struct sig g = base_sig();
	g.rate_hz = 5000;
	g.drift = 3;          /* 180 LSB over the minute */
	g.flicker = 120;
	g.flicker_hz = 100;
	g.step_at_s = 31.7;
	g.step = 900;         /* more than a pulse */
	g.npulses = make_train(1.5, 0.8, 0.4, 59, 8);
	size_t n = run(&g, NULL, res, 8192, NULL);
	/* The pulse that the step may swallow is the only allowed loss: check all others. */
	size_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc += !(res[i].flags & PL_PULSE_REJECTED);
	assert_in_range(acc, g.npulses - 1, g.npulses);
}

/* Mains flicker as strong as the pulses themselves, 100 and 120 Hz, short and long pulses. */
static void test_strong_flicker(void **st)
{
	(void)st;
	static const double hz[] = { 100, 120 };
	static const double width[] = { 2, 10, 40 };
	for (int h = 0; h < 2; h++) {
		for (int w = 0; w < 3; w++) {
			struct sig g = base_sig();
			g.rate_hz = 10000;
			g.width_ms = width[w];
			g.flicker = g.amp;
			g.flicker_hz = hz[h];
			g.duration_s = 30;
			g.npulses = make_train(1.5, 0.8, 0.4, 29, (uint64_t)(8 + w));
			size_t n = run(&g, NULL, res, 8192, NULL);
			early_ms = 8; /* the flicker filter spreads an edge over a mains period */
			expect_exact(res, n, g.npulses, 12);
			early_ms = 5;
		}
	}
}

/*
 * Starts at a load so high that the LED's pulses last longer than the gaps between them, so
 * the first polarity guess is wrong (the count is still right: one run of each side per
 * pulse); when the load falls, the detector must notice and lose no pulse.
 */
static void test_polarity_recovers(void **st)
{
	(void)st;
	struct sig g = base_sig();
	/* 40 ms pulses 55 ms apart (65 kW at 1000 imp/kWh): the dark gaps are the shorter runs */
	g.rate_hz = 2000;
	g.width_ms = 40;
	g.noise = 10;
	g.duration_s = 40;
	size_t n = 0;
	for (double t = 0.5; t < 3; t += 0.055)
		pulses[n++] = t;
	for (double t = pulses[n - 1] + 1.2; t < 39; t += 1.1)
		pulses[n++] = t;
	g.npulses = n;
	struct pl_detector d;
	size_t nr = run(&g, NULL, res, 8192, &d);
	size_t acc = 0;
	for (size_t i = 0; i < nr; i++)
		acc += !(res[i].flags & PL_PULSE_REJECTED);
	struct pl_detector_status s;
	pl_detector_status(&d, &s);
	print_message("polarity %d, flips %llu\n", s.polarity, (unsigned long long)s.polarity_flips);
	assert_int_equal(acc, n);
	assert_int_equal(s.polarity, 1);
	assert_int_equal(s.polarity_flips, 1);
}

static void test_spikes_esp32(void **st)
{
	(void)st;
	struct sig g = base_sig();
	g.rate_hz = 4000;
	g.spikes_per_s = 5;
	g.spike = 1500;
	g.npulses = make_train(1.2, 0.7, 0.4, 59, 9);
	size_t n = run(&g, NULL, res, 8192, NULL);
	expect_exact(res, n, g.npulses, 4);
}

static void test_weak_6_sigma(void **st)
{
	(void)st;
	struct sig g = base_sig();
	g.rate_hz = 10000;
	g.amp = 180;   /* 6 sigma */
	g.width_ms = 10;
	g.npulses = make_train(1.0, 0.6, 0.4, 59, 10);
	size_t n = run(&g, NULL, res, 8192, NULL);
	expect_exact(res, n, g.npulses, 4);
}

static void test_no_signal_no_pulses(void **st)
{
	(void)st;
	struct sig g = base_sig();
	g.rate_hz = 1000;
	g.duration_s = 300;
	g.flicker = 60;
	g.flicker_hz = 120;
	g.npulses = 0;
	struct pl_detector d;
	size_t n = run(&g, NULL, res, 8192, &d);
	assert_int_equal(n, 0);
	struct pl_detector_status s;
	pl_detector_status(&d, &s);
	assert_int_equal(s.state, PL_DET_NO_SIGNAL);
}

static void test_plausibility_rejects(void **st)
{
	(void)st;
	struct sig g = base_sig();
	/* 1000 imp/kWh, 3600 W max: pulses at least 1 s apart; a ghost 300 ms after a real one */
	size_t n = 0;
	for (double t = 1; t < 50; t += 2)
		pulses[n++] = t;
	double ghosts[] = { 11.3, 27.3 };
	double all[64];
	size_t na = 0, gi = 0;
	for (size_t i = 0; i < n; i++) {
		all[na++] = pulses[i];
		if (gi < 2 && pulses[i] < ghosts[gi] && (i + 1 == n || pulses[i + 1] > ghosts[gi]))
			all[na++] = ghosts[gi++];
	}
	memcpy(pulses, all, na * sizeof(double));
	g.npulses = na;
	struct pl_detector_config cfg;
	pl_detector_config_default(&cfg);
	cfg.imp_per_kwh = 1000;
	cfg.max_power_w = 3600;
	struct pl_detector d;
	size_t nr = run(&g, &cfg, res, 8192, &d);
	size_t rej = 0;
	for (size_t i = 0; i < nr; i++)
		rej += (res[i].flags & PL_PULSE_REJECTED) != 0;
	assert_int_equal(nr, na);
	assert_int_equal(rej, 2);
	struct pl_detector_status s;
	pl_detector_status(&d, &s);
	assert_int_equal(s.rejected, 2);
}

/*
 * A burst that looks like a narrow flash comes 60 ms BEFORE a real pulse, closer than the
 * supply allows: the real pulse (like the meter's others in width and height) is kept and
 * the burst rejected, whichever came first.
 */
static void test_plausibility_keeps_the_real_one(void **st)
{
	(void)st;
	struct sig g = base_sig();
	size_t n = 0;
	for (double t = 1; t < 58; t += 1.5)
		pulses[n++] = t;
	static double gh[7];
	for (int k = 0; k < 7; k++)
		gh[k] = pulses[8 + 4 * k] - 0.060;
	g.npulses = n;
	g.ghosts = gh;
	g.nghosts = 7;
	g.ghost_width_ms = 3;
	struct pl_detector_config cfg;
	pl_detector_config_default(&cfg);
	cfg.imp_per_kwh = 1000;
	cfg.max_power_w = 15000; /* 240 ms */
	size_t nr = run(&g, &cfg, res, 8192, NULL);
	size_t rej = 0;
	for (size_t i = 0; i < nr; i++)
		rej += (res[i].flags & PL_PULSE_REJECTED) != 0;
	/* a 3 ms flash smoothed at 1 kHz may stay under the step: seen or not, never counted */
	assert_in_range(rej, 5, 7);
	expect_exact(res, nr, n, 4);
	for (size_t i = 1; i < nr; i++)
		assert_true(res[i].t_us >= res[i - 1].t_us); /* output in time order */
}

/* A copy of the state taken mid-stream continues exactly like the original. */
static void test_checkpoint_bit_exact(void **st)
{
	(void)st;
	struct sig g = base_sig();
	g.npulses = make_train(0.7, 0.5, 0.5, 59, 11);
	static struct pl_sample smp[60000];
	rng = 77;
	size_t ns = 0, pi = 0;
	for (int i = 0; i < 60000; i++) {
		double t = i / 1000.0;
		while (pi < g.npulses && pulses[pi] + 0.01 < t)
			pi++;
		int on = pi < g.npulses && t >= pulses[pi];
		smp[ns].t_us = i * 1000;
		smp[ns].v = (int32_t)lround(1000 + 700 * on + 30 * grand());
		ns++;
	}
	struct pl_detector a, b;
	struct pl_pulse oa[PL_DETECTOR_MIN_OUT], ob[PL_DETECTOR_MIN_OUT];
	size_t na, nb, off = 0;
	pl_detector_init(&a, NULL);
	while (off < 31337)
		off += pl_detector_feed(&a, smp + off, 31337 - off, oa, PL_DETECTOR_MIN_OUT, &na);
	unsigned char saved[sizeof(a)];
	memcpy(saved, &a, sizeof(a));
	memcpy(&b, saved, sizeof(b));
	size_t oa_n = 0, ob_n = 0;
	uint64_t ha = 0, hb = 0;
	size_t offa = off, offb = off;
	while (offa < ns) {
		offa += pl_detector_feed(&a, smp + offa, ns - offa, oa, PL_DETECTOR_MIN_OUT, &na);
		for (size_t i = 0; i < na; i++, oa_n++)
			ha = ha * 31 + (uint64_t)oa[i].t_us + oa[i].width_us;
	}
	while (offb < ns) {
		offb += pl_detector_feed(&b, smp + offb, ns - offb, ob, PL_DETECTOR_MIN_OUT, &nb);
		for (size_t i = 0; i < nb; i++, ob_n++)
			hb = hb * 31 + (uint64_t)ob[i].t_us + ob[i].width_us;
	}
	assert_true(oa_n > 10);
	assert_int_equal(oa_n, ob_n);
	assert_true(ha == hb);
	assert_memory_equal(&a, &b, sizeof(a));
}

/* The raw u16 fast path finds the same pulses as the general path. */
static void test_u16_path_matches(void **st)
{
	(void)st;
	static uint16_t raw[200000];
	static struct pl_sample smp[200000];
	size_t n = make_train(0.5, 0.3, 0.5, 9.8, 12);
	size_t pi = 0;
	rng = 5;
	for (int i = 0; i < 200000; i++) {
		double t = i / 20000.0;
		while (pi < n && pulses[pi] + 0.005 < t)
			pi++;
		int on = pi < n && t >= pulses[pi];
		raw[i] = (uint16_t)lround(2000 - 600 * on + 30 * grand());
		smp[i].t_us = (int64_t)i * 50;
		smp[i].v = raw[i];
	}
	struct pl_detector a, b;
	struct pl_pulse o[PL_DETECTOR_MIN_OUT];
	size_t no, cnt_a = 0, cnt_b = 0, off = 0;
	pl_detector_init(&a, NULL);
	pl_detector_init(&b, NULL);
	/* odd chunk sizes exercise bins split across calls */
	while (off < 200000) {
		size_t len = 200000 - off < 777 ? 200000 - off : 777;
		size_t used = pl_detector_feed_u16(&a, (int64_t)off * 50, 20000, raw + off, len, o, PL_DETECTOR_MIN_OUT, &no);
		cnt_a += no;
		off += used;
	}
	pl_detector_finish(&a, o, PL_DETECTOR_MIN_OUT, &no);
	cnt_a += no;
	off = 0;
	while (off < 200000) {
		off += pl_detector_feed(&b, smp + off, 200000 - off, o, PL_DETECTOR_MIN_OUT, &no);
		cnt_b += no;
	}
	pl_detector_finish(&b, o, PL_DETECTOR_MIN_OUT, &no);
	cnt_b += no;
	assert_int_equal(cnt_a, n);
	assert_int_equal(cnt_b, n);
}

/* Property: random trains, widths, rates, amplitudes, polarity -> exact counts. */
static void test_property_random_trains(void **st)
{
	(void)st;
	int trials = getenv("PL_VALGRIND") ? 6 : 40;
	for (int k = 0; k < trials; k++) {
		struct sig g = base_sig();
		rng = (uint64_t)k * 7919 + 3;
		static const double rates[] = { 1000, 2000, 5000, 10000, 20000, 50000 };
		g.rate_hz = rates[(int)(urand() * 6)];
		g.width_ms = 2 + urand() * 98;
		g.amp = 300 + urand() * 1500;
		g.noise = 5 + urand() * 35;
		g.dir = urand() < 0.5 ? -1 : 1;
		g.base = 800 + urand() * 2000;
		g.duration_s = getenv("PL_VALGRIND") ? 8 : 20;
		g.seed = (uint64_t)k;
		double gap = g.width_ms / 1000 * 3 + 0.05 + urand() * 2;
		g.npulses = make_train(0.5 + urand(), gap, 0.4, g.duration_s - 0.5, (uint64_t)k);
		size_t n = run(&g, NULL, res, 8192, NULL);
		size_t acc = 0;
		for (size_t i = 0; i < n; i++)
			acc += !(res[i].flags & PL_PULSE_REJECTED);
		if (acc != g.npulses)
			print_error("trial %d: rate %.0f width %.1f amp %.0f noise %.0f dir %d gap %.3f: %zu vs %zu\n",
				    k, g.rate_hz, g.width_ms, g.amp, g.noise, g.dir, gap, acc, g.npulses);
		assert_int_equal(acc, g.npulses);
	}
}

static void test_bad_config(void **st)
{
	(void)st;
	struct pl_detector d;
	struct pl_detector_config c;
	pl_detector_config_default(&c);
	c.polarity = 3;
	assert_int_equal(pl_detector_init(&d, &c), -PL_EINVAL);
	pl_detector_config_default(&c);
	c.max_width_us = 20000000;
	assert_int_equal(pl_detector_init(&d, &c), -PL_EINVAL);
	assert_string_equal(pl_detector_state_name(PL_DET_STEADY), "steady");
}

static void test_time_backwards_skipped(void **st)
{
	(void)st;
	struct pl_detector d;
	struct pl_sample s[3] = { { 1000, 5 }, { 500, 5 }, { 2000, 5 } };
	struct pl_pulse o[PL_DETECTOR_MIN_OUT];
	size_t no;
	pl_detector_init(&d, NULL);
	assert_int_equal(pl_detector_feed(&d, s, 3, o, PL_DETECTOR_MIN_OUT, &no), 3);
	struct pl_detector_status stt;
	pl_detector_status(&d, &stt);
	assert_int_equal(stt.backwards, 1);
	/* too small an output buffer consumes nothing */
	assert_int_equal(pl_detector_feed(&d, s, 3, o, 4, &no), 0);
}

/*
 * The plausibility limits changed on a running detector (a setting changed between two runs
 * of the logger): what it learned stays, and pulses from then on are judged by the new limits.
 * Pulses every 0.4 s are 9 kW at 1000 imp/kWh: plausible under 17 kW, implausible under 5 kW.
 */
static void test_set_limits_keeps_learning(void **st)
{
	(void)st;
	static struct pl_sample smp[40000];
	struct pl_detector d, ref, same;
	struct pl_detector_config cfg;
	struct pl_pulse out[PL_DETECTOR_MIN_OUT];
	size_t n, off = 0, ns = 40000, accepted[2] = { 0, 0 }, rejected[2] = { 0, 0 };

	rng = 5;
	for (size_t i = 0; i < ns; i++) {
		double t = (double)i / 1000.0;
		int on = fmod(t, 0.4) < 0.01;
		smp[i].t_us = (int64_t)i * 1000;
		smp[i].v = (int32_t)lround(1000 + 700 * on + 20 * grand());
	}
	pl_detector_config_default(&cfg);
	cfg.imp_per_kwh = 1000;
	cfg.max_power_w = 17000;
	assert_int_equal(pl_detector_init(&d, &cfg), 0);
	assert_int_equal(pl_detector_set_limits(NULL, 1000, 5000), -PL_EINVAL);
	while (off < ns) {
		int half = off >= ns / 2;
		size_t stop = half ? ns : ns / 2;
		off += pl_detector_feed(&d, smp + off, stop - off, out, PL_DETECTOR_MIN_OUT, &n);
		for (size_t i = 0; i < n; i++) {
			if (out[i].flags & PL_PULSE_REJECTED)
				rejected[half]++;
			else
				accepted[half]++;
		}
		if (off == ns / 2) {
			memcpy(&ref, &d, sizeof(d));
			memcpy(&same, &d, sizeof(d));
			assert_int_equal(pl_detector_set_limits(&d, 1000, 5000), 0);
			assert_int_equal(d.cfg.max_power_w, 5000);
			assert_int_equal(d.min_gap_us, pl_min_gap_us(1000, 5000));
			/* the same limits again change nothing: what it learned stays */
			assert_int_equal(pl_detector_set_limits(&same, 1000, 17000), 0);
		}
	}
	/* set_limits with the same limits: the second half gives exactly the same pulses */
	{
		struct pl_pulse oa[PL_DETECTOR_MIN_OUT], ob[PL_DETECTOR_MIN_OUT];
		size_t na, nb, offa = ns / 2, offb = ns / 2, ka = 0, kb = 0;
		uint64_t ha = 0, hb = 0;

		while (offa < ns) {
			offa += pl_detector_feed(&ref, smp + offa, ns - offa, oa, PL_DETECTOR_MIN_OUT, &na);
			for (size_t i = 0; i < na; i++, ka++)
				ha = ha * 31 + (uint64_t)oa[i].t_us;
		}
		while (offb < ns) {
			offb += pl_detector_feed(&same, smp + offb, ns - offb, ob, PL_DETECTOR_MIN_OUT, &nb);
			for (size_t i = 0; i < nb; i++, kb++)
				hb = hb * 31 + (uint64_t)ob[i].t_us;
		}
		assert_true(ka >= 48);
		assert_int_equal(ka, kb);
		assert_true(ha == hb);
	}
	/* 50 pulses in each half; the first half's all accepted, the second's mostly refused */
	assert_true(accepted[0] >= 48 && rejected[0] == 0);
	assert_true(rejected[1] >= 20);
	assert_true(accepted[1] + rejected[1] >= 48);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_square_1khz),
		cmocka_unit_test(test_inverted_20khz),
		cmocka_unit_test(test_uneven_100hz_ldr),
		cmocka_unit_test(test_ldr_merged_high_load),
		cmocka_unit_test(test_anticreep_then_pulses),
		cmocka_unit_test(test_pulses_then_anticreep),
		cmocka_unit_test(test_room_light_drift_flicker),
		cmocka_unit_test(test_spikes_esp32),
		cmocka_unit_test(test_strong_flicker),
		cmocka_unit_test(test_polarity_recovers),
		cmocka_unit_test(test_weak_6_sigma),
		cmocka_unit_test(test_no_signal_no_pulses),
		cmocka_unit_test(test_plausibility_rejects),
		cmocka_unit_test(test_plausibility_keeps_the_real_one),
		cmocka_unit_test(test_checkpoint_bit_exact),
		cmocka_unit_test(test_u16_path_matches),
		cmocka_unit_test(test_property_random_trains),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_set_limits_keeps_learning),
		cmocka_unit_test(test_time_backwards_skipped),
	};
	return cmocka_run_group_tests_name("detector", tests, NULL, NULL);
}
