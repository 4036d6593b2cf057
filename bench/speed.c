/* SPDX-License-Identifier: MIT */
/*
 * Detector speed: instructions and time per sample.
 *
 *   speed [--rate HZ] [--seconds S] [--path samples|u16]
 *
 * Makes a deterministic signal in memory first (square pulses, noise, 1000 LSB swing), then
 * runs the detector over it inside detect_all(), which is what callgrind counts
 * (valgrind --tool=callgrind --toggle-collect=detect_all). Wall-clock samples per second are
 * printed beside those of a plain summing loop over the same array, measured in the same run,
 * so the ratio is meaningful on a noisy machine.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "powerlogger/detector.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng = 88172645463325252ull;
static double urand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

/* Kept out of line so that callgrind can count it alone. */
__attribute__((noinline)) uint64_t detect_all(const struct pl_sample *s, const uint16_t *u,
					       size_t n, uint32_t rate, int use_u16);
__attribute__((noinline)) uint64_t detect_all(const struct pl_sample *s, const uint16_t *u,
					       size_t n, uint32_t rate, int use_u16)
{
	struct pl_detector d;
	struct pl_pulse out[PL_DETECTOR_MIN_OUT];
	size_t off = 0, no;
	uint64_t pulses = 0;

	pl_detector_init(&d, NULL);
	while (off < n) {
		if (use_u16)
			off += pl_detector_feed_u16(&d, (int64_t)((uint64_t)off * 1000000u / rate), rate,
						    u + off, n - off, out, PL_DETECTOR_MIN_OUT, &no);
		else
			off += pl_detector_feed(&d, s + off, n - off, out, PL_DETECTOR_MIN_OUT, &no);
		pulses += no;
	}
	pl_detector_finish(&d, out, PL_DETECTOR_MIN_OUT, &no);
	return pulses + no;
}

__attribute__((noinline)) uint64_t sum_all(const struct pl_sample *s, size_t n);
__attribute__((noinline)) uint64_t sum_all(const struct pl_sample *s, size_t n)
{
	uint64_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc += (uint64_t)s[i].v ^ (uint64_t)s[i].t_us;
	return acc;
}

int main(int argc, char **argv)
{
	uint32_t rate = 20000;
	double seconds = 300;
	int use_u16 = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--rate") && i + 1 < argc)
			rate = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = strtod(argv[++i], NULL);
		else if (!strcmp(argv[i], "--path") && i + 1 < argc)
			use_u16 = !strcmp(argv[++i], "u16");
		else {
			fprintf(stderr, "usage: speed [--rate HZ] [--seconds S] [--path samples|u16]\n");
			return 2;
		}
	}
	if (rate == 0 || seconds <= 0) {
		fprintf(stderr, "speed: rate and seconds must be positive\n");
		return 2;
	}
	size_t n = (size_t)(seconds * rate);
	struct pl_sample *s = malloc(n * sizeof(*s));
	uint16_t *u = malloc(n * sizeof(*u));
	if (!s || !u) {
		fprintf(stderr, "speed: out of memory for %zu samples\n", n);
		return 1;
	}
	/* 10 ms pulses every ~0.9 s (4 kW at 1000 imp/kWh), sigma 30 LSB. */
	double next = 0.5, t;
	uint64_t truth = 0;
	for (size_t i = 0; i < n; i++) {
		t = (double)i / rate;
		if (t > next + 0.010) {
			next += 0.6 + 0.6 * urand();
			truth++;
		}
		int on = t >= next && t < next + 0.010;
		double g = sqrt(-2 * log(urand() + 1e-12)) * cos(6.283185307 * urand());
		int v = (int)lround(1500 + 1000 * on + 30 * g);
		s[i].t_us = (int64_t)((uint64_t)i * 1000000u / rate);
		s[i].v = v;
		u[i] = (uint16_t)v;
	}
	double t0 = now_s();
	uint64_t base = sum_all(s, n);
	double t1 = now_s();
	uint64_t found = detect_all(s, u, n, rate, use_u16);
	double t2 = now_s();
	printf("rate=%u Hz samples=%zu path=%s pulses=%" PRIu64 " (true %" PRIu64 ")\n", rate, n,
	       use_u16 ? "u16" : "samples", found, truth);
	printf("detector: %.1f Msamples/s; plain summing loop: %.1f Msamples/s; ratio %.3f (chk %" PRIu64 ")\n",
	       (double)n / (t2 - t1) / 1e6, (double)n / (t1 - t0) / 1e6, (t1 - t0) / (t2 - t1),
	       base & 1);
	free(s);
	free(u);
	return found == truth ? 0 : 1;
}
