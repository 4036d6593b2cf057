/* SPDX-License-Identifier: MIT */
/*
 * Types and error codes shared by every module of the PowerLogger core.
 *
 * The core is portable C11: it uses only freestanding ISO C headers, never allocates, never
 * prints and never calls the OS. Time is an int64_t count of microseconds in whatever time base
 * the caller uses (seconds since the start of a trace, or since the Unix epoch); the core only
 * ever subtracts times and aligns them to multiples of an interval. Sample values are int32_t
 * in the ADC's own units (LSB).
 */
#ifndef POWERLOGGER_COMMON_H
#define POWERLOGGER_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes. Functions return 0 on success or one of these, negated. */
enum pl_error {
	PL_OK = 0,
	PL_EINVAL = 1,   /* an argument or configuration value is out of range */
	PL_ENOSPC = 2,   /* no space: the caller's buffer (nothing was written), the disk, a size limit */
	PL_ERANGE = 3,   /* a value cannot be represented (overflow, NaN, Inf) */
	PL_EPARSE = 4,   /* malformed input text */
	PL_EORDER = 5,   /* time went backwards */
	PL_EIO = 6,      /* I/O failed (platform seams only) */
	PL_ENOENT = 7,   /* not found */
	PL_ECORRUPT = 8, /* stored data failed its integrity check */
	PL_ENOMEM = 9,   /* out of memory (platform seams only; the core never allocates) */
	PL_ETIMEDOUT = 10,
	PL_EBUSY = 11,   /* one operation at a time: the previous one is still in progress */
	PL_E_COUNT
};

/* Returns a static English description of an error code (given negated or not). Never NULL. */
const char *pl_strerror(int err);

#define PL_US_PER_S INT64_C(1000000)

/* Flags carried by a pulse. */
enum pl_pulse_flags {
	/* The pulse came sooner after the previous accepted pulse than the supply's maximum power
	 * allows (see pl_min_gap_us()). It is reported, counted as rejected, and carries no energy. */
	PL_PULSE_REJECTED = 1u << 0,
	/* Set with PL_PULSE_REJECTED: rejected as ADC outliers, not the LED: far narrower than
	 * this meter's pulses at low sample rates (a burst of two outliers looks like a short
	 * pulse), or at any rate both much lower and narrower than its learned flash (a WiFi
	 * transmission's burst, smeared over a few bins). */
	PL_PULSE_NARROW = 1u << 1,
};

/* One detected meter pulse (one LED flash, one S0 pulse). */
struct pl_pulse {
	int64_t t_us;       /* leading edge, in the caller's time base */
	uint32_t width_us;  /* time the input spent in the pulse state */
	int32_t amplitude;  /* analog: swing in input units (LSB); digital: 1 */
	uint8_t confidence; /* 0..100; analog: from swing over noise; digital: 100 */
	uint8_t flags;      /* enum pl_pulse_flags */
};

/*
 * The shortest plausible time between two pulses, from the meter constant (impulses per kWh)
 * and the supply's maximum power (W): one pulse is 3.6e6 / imp_per_kwh joules, so at max_power_w
 * it takes 3.6e12 / (imp_per_kwh * max_power_w) microseconds. Returns 0 (no limit) when either
 * input is 0.
 */
int64_t pl_min_gap_us(uint32_t imp_per_kwh, uint32_t max_power_w);

#ifdef __cplusplus
}
#endif
#endif
