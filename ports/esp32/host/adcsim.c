/* SPDX-License-Identifier: MIT */
/*
 * The simulated ESP32 ADC (see adcsim.h).
 */
#include "adcsim.h"

#include <math.h>
#include <string.h>

static uint64_t next(struct fw_adcsim *a)
{
	a->rng ^= a->rng >> 12;
	a->rng ^= a->rng << 25;
	a->rng ^= a->rng >> 27;
	return a->rng * UINT64_C(2685821657736338717);
}

static double uniform(struct fw_adcsim *a)
{
	return ((double)(next(a) >> 11) + 0.5) / 9007199254740992.0;
}

static double gauss(struct fw_adcsim *a)
{
	return sqrt(-2.0 * log(uniform(a))) * cos(6.283185307179586 * uniform(a));
}

void fw_adcsim_init(struct fw_adcsim *a, uint64_t seed, const int64_t *pulses, size_t n)
{
	memset(a, 0, sizeof(*a));
	a->rng = seed ? seed : 1;
	a->dark = 130;
	a->lit = 900;
	a->dead_zone = 110;
	a->sigma = 30.0;
	a->width_us = 10000;
	a->burst_mean_ms = 1000;
	a->spike_p = 1e-4; /* 2 single-sample spikes a second at 20 kHz */
	a->pulses = pulses;
	a->npulses = n;
	a->next_burst = INT64_MIN;
}

uint16_t fw_adcsim_read(struct fw_adcsim *a, int64_t t_us)
{
	int lit = 0;
	double v;

	while (a->next < a->npulses && a->pulses[a->next] + (int64_t)a->width_us <= t_us)
		a->next++;
	if (a->next < a->npulses && a->pulses[a->next] <= t_us)
		lit = 1;
	v = (double)((lit ? a->lit : a->dark) - a->dead_zone) + a->sigma * gauss(a);
	if (a->next_burst == INT64_MIN)
		a->next_burst = t_us + (int64_t)(uniform(a) * a->burst_mean_ms * 2000.0);
	if (t_us >= a->next_burst) {
		/* a WiFi transmission: one offset held for 50-250 us */
		a->burst_end = t_us + 50 + (int64_t)(uniform(a) * 200.0);
		a->burst_mag = (uniform(a) < 0.5 ? -1.0 : 1.0) * (1000.0 + 1000.0 * uniform(a));
		a->next_burst = t_us + (int64_t)(uniform(a) * a->burst_mean_ms * 2000.0);
	}
	if (t_us < a->burst_end) {
		v += a->burst_mag;
		a->outliers++;
	} else if (uniform(a) < a->spike_p) {
		v += (uniform(a) < 0.5 ? -1.0 : 1.0) * (1000.0 + 1000.0 * uniform(a));
		a->outliers++;
	}
	if (v < 0.0)
		v = 0.0;
	if (v > 4095.0)
		v = 4095.0;
	return (uint16_t)v;
}

size_t fw_adcsim_pulse_train(int64_t *out, size_t cap, int64_t t0, int64_t t1,
			     uint32_t imp_per_kwh, const uint32_t *watts, size_t nwatts,
			     uint32_t step_s, uint32_t interval_s)
{
	double joules_per_pulse = 3.6e6 / imp_per_kwh, acc = 0.0;
	int64_t iv = (int64_t)interval_s * 1000000, last = INT64_MIN;
	size_t n = 0;

	for (int64_t t = t0; t < t1 && n < cap; t += 1000) {
		size_t step = (size_t)((t - t0) / ((int64_t)step_s * 1000000)) % nwatts;

		acc += watts[step] * 1e-3; /* J in this millisecond */
		if (acc >= joules_per_pulse) {
			int64_t e = t, r;

			acc -= joules_per_pulse;
			r = ((e % iv) + iv) % iv;
			if (r < 30000 || r > iv - 30000)
				e += 60000 - (r < 30000 ? r : r - iv);
			if (last != INT64_MIN && e < last + 40000)
				e = last + 40000;
			if (e < t1)
				out[n++] = e;
			last = e;
		}
	}
	return n;
}
