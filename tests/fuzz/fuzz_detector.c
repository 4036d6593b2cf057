/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the analog detector with arbitrary sample streams: times that jump, stall and go
 * backwards, extreme values, odd chunk sizes and output capacities. Checks the contract:
 * no undefined behaviour, consumed counts within bounds, never more pulses than the output
 * capacity, pulses in time order with sane fields and never before the horizon the detector
 * gave before the call, and that a state copied mid-stream
 * continues exactly like the original.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "powerlogger/detector.h"

#define MAXS 2048

static void check_pulses(const struct pl_pulse *p, size_t n, int64_t *last)
{
	for (size_t i = 0; i < n; i++) {
		/* pulses come out in time order (also across calls) */
		if (p[i].t_us < *last)
			abort();
		*last = p[i].t_us;
		if (p[i].confidence > 100)
			abort();
		if (p[i].flags & ~(PL_PULSE_REJECTED | PL_PULSE_NARROW))
			abort();
		if ((p[i].flags & PL_PULSE_NARROW) && !(p[i].flags & PL_PULSE_REJECTED))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct pl_sample s[MAXS];
	struct pl_detector a, b;
	struct pl_detector_config cfg;
	struct pl_pulse oa[PL_DETECTOR_MIN_OUT + 16], ob[PL_DETECTOR_MIN_OUT + 16];
	size_t n = 0, na, nb;
	int64_t t = 0, last = INT64_MIN;

	if (size < 4)
		return 0;
	pl_detector_config_default(&cfg);
	cfg.polarity = (int8_t)((data[0] % 3) - 1);
	cfg.imp_per_kwh = data[1] & 1 ? 1000 : 0;
	cfg.max_power_w = data[1] & 2 ? 20000 : 0;
	size_t cap = PL_DETECTOR_MIN_OUT + (data[2] % 16);
	int wide = data[3] & 1;
	data += 4;
	size -= 4;
	/* each sample: 1 byte of time step (with a few special codes), 2 or 4 bytes of value */
	size_t rec = wide ? 5 : 3;
	while (size >= rec && n < MAXS) {
		uint8_t dt = data[0];
		if (dt == 255)
			t -= 5000;            /* backwards */
		else if (dt == 254)
			t += 10000000;        /* a 10 s gap */
		else
			t += dt * 10;         /* 0..2.5 ms */
		int32_t v;
		if (wide) {
			uint32_t u = (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16 |
				     (uint32_t)data[4] << 24;
			memcpy(&v, &u, sizeof(v));
		} else {
			v = (int32_t)(data[1] | data[2] << 8);
		}
		s[n].t_us = t;
		s[n].v = v;
		n++;
		data += rec;
		size -= rec;
	}
	if (pl_detector_init(&a, &cfg) != 0)
		abort();
	size_t off = 0, half = n / 2;
	while (off < half) {
		int64_t h = pl_detector_horizon(&a);
		size_t used = pl_detector_feed(&a, s + off, half - off, oa, cap, &na);
		if (used > half - off || na > cap)
			abort();
		check_pulses(oa, na, &last);
		for (size_t i = 0; i < na; i++)
			if (oa[i].t_us < h)
				abort(); /* the horizon promised no pulse before h */
		off += used;
	}
	memcpy(&b, &a, sizeof(a));
	size_t offb = off;
	uint64_t ha = 0, hb = 0;
	while (off < n) {
		size_t used = pl_detector_feed(&a, s + off, n - off, oa, cap, &na);
		if (used > n - off || na > cap)
			abort();
		for (size_t i = 0; i < na; i++)
			ha = ha * 1099511628211u + (uint64_t)oa[i].t_us;
		off += used;
	}
	while (offb < n) {
		size_t used = pl_detector_feed(&b, s + offb, n - offb, ob, cap, &nb);
		for (size_t i = 0; i < nb; i++)
			hb = hb * 1099511628211u + (uint64_t)ob[i].t_us;
		offb += used;
	}
	if (ha != hb)
		abort();
	pl_detector_finish(&a, oa, cap, &na);
	if (na > cap)
		abort();
	struct pl_detector_status st;
	pl_detector_status(&a, &st);
	if (st.rejected > st.pulses)
		abort();
	return 0;
}
