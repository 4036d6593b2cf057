/* SPDX-License-Identifier: MIT */
/*
 * A simulated ESP32 ADC1 watching a meter's LED through a photodiode, for the host tests and
 * fwsim: the figures of reference/signals.md - noise sigma ~30 LSB, a dead zone near 0 V that
 * reads 0, bursts of outliers over 1000 LSB while WiFi transmits - around a pulse train of
 * known leading edges. Host only (uses libm); repeatable from its seed.
 */
#ifndef FW_ADCSIM_H
#define FW_ADCSIM_H

#include <stddef.h>
#include <stdint.h>

struct fw_adcsim {
	uint64_t rng;
	int32_t dark, lit;        /* input level, LSB, before the dead zone */
	int32_t dead_zone;        /* inputs below this read 0 */
	double sigma;             /* noise, LSB */
	uint32_t width_us;        /* LED flash */
	uint32_t burst_mean_ms;   /* mean time between WiFi bursts */
	int64_t burst_end;        /* current burst lasts until */
	double burst_mag;         /* its offset, LSB */
	double spike_p;           /* chance of a single-sample outlier */
	int64_t next_burst;
	const int64_t *pulses;    /* leading edges, ascending, borrowed */
	size_t npulses, next;
	uint64_t outliers;        /* samples hit by a burst */
};

/* Defaults: dark 130 (in the dead zone of 110), lit 900, sigma 30, 10 ms flashes, a WiFi
 * burst (one offset of 1000-2000 LSB held 50-250 us) about once a second and two
 * single-sample outliers a second. */
void fw_adcsim_init(struct fw_adcsim *a, uint64_t seed, const int64_t *pulses, size_t n);

/* The reading at time t_us (non-decreasing from call to call). */
uint16_t fw_adcsim_read(struct fw_adcsim *a, int64_t t_us);

/*
 * Leading edges of the pulses a meter of imp_per_kwh gives from t0 to t1 (us) under a load
 * that steps through watts[] every step_s seconds (cycling); an edge that would fall within
 * 30 ms of a multiple of interval_s seconds is moved 60 ms later, so tests can count exactly
 * per interval. Returns the number written (at most cap).
 */
size_t fw_adcsim_pulse_train(int64_t *out, size_t cap, int64_t t0, int64_t t1,
			     uint32_t imp_per_kwh, const uint32_t *watts, size_t nwatts,
			     uint32_t step_s, uint32_t interval_s);

#endif
