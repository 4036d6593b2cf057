/*
 * Meter arithmetic: pulses in, energy register, power and interval records out.
 *
 * One pulse is 1/imp_per_kwh kWh. The energy register is kept as a base (the meter's own
 * reading, settable) plus a pulse count, and converted with one rounding, so it never drifts.
 * Interval records are aligned to wall-clock multiples of the interval (default 20 s) and
 * stamped with the interval's start, so a record's key is deterministic: writing it twice is
 * harmless. Every interval from the first one on produces a record, with zero pulses if need
 * be, so a gap in the data means a gap in sampling, never a silent zero.
 *
 * Power comes from the time between pulses. While no pulse comes, the power cannot be more
 * than one pulse's energy over the time since the last pulse; pl_meter_power() returns that
 * falling bound, so the power shown decays honestly towards zero instead of freezing.
 *
 * Units: energy in microwatt-hours (uWh), power in milliwatts (mW), integers throughout.
 * Plain-data state; not thread-safe.
 */
#ifndef POWERLOGGER_METER_H
#define POWERLOGGER_METER_H

#include "powerlogger/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Quality flags of an interval record. */
enum pl_quality {
	PL_Q_PARTIAL = 1u << 0,  /* the interval was not observed from start to end */
	PL_Q_GAP = 1u << 1,      /* the source reported a gap or overrun in sampling */
	PL_Q_REJECTED = 1u << 2, /* implausible pulses were rejected in this interval */
	PL_Q_STEADY = 1u << 3,   /* the LED was steadily lit (or dark) during the interval */
	PL_Q_NO_SIGNAL = 1u << 4,/* the detector saw no usable signal */
};

struct pl_meter_config {
	uint32_t imp_per_kwh; /* impulses per kWh, 1..1000000; default 1000 */
	uint32_t interval_s;  /* interval length, 1..86400; default 20 */
};

struct pl_interval_record {
	int64_t start_us;      /* interval start, a multiple of the interval length */
	uint32_t length_s;
	uint32_t pulses;       /* accepted pulses */
	uint32_t rejected;     /* rejected (implausible) pulses, not in the energy */
	uint32_t flags;        /* enum pl_quality */
	int64_t energy_uwh;    /* energy of the accepted pulses */
	int64_t avg_mw;        /* energy over the interval length */
	int64_t peak_mw;       /* highest power from the gap between two pulses ending in it; 0 if none */
	int64_t register_uwh;  /* energy register at the end of the interval */
};

struct pl_meter {
	struct pl_meter_config cfg;
	int64_t base_uwh;        /* register value when the count was last reset */
	int64_t count;           /* accepted pulses since then */
	int64_t cur_start;       /* start of the open interval; INT64_MIN before the first event */
	uint32_t cur_pulses, cur_rejected, cur_flags;
	int64_t cur_peak_mw;
	int64_t cur_count0;      /* count at the start of the open interval */
	int64_t last_pulse_t;    /* INT64_MIN before the first accepted pulse */
	int64_t last_gap_us;     /* 0 before two pulses */
	int64_t t_last;
};

void pl_meter_config_default(struct pl_meter_config *cfg);

/* Initialises a meter with register 0. cfg NULL for the defaults. Returns 0 or -PL_EINVAL. */
int pl_meter_init(struct pl_meter *m, const struct pl_meter_config *cfg);

/* Sets the energy register to the meter's own reading (uWh). Returns 0 or -PL_EINVAL (< 0). */
int pl_meter_set_register(struct pl_meter *m, int64_t register_uwh);

/* Current register (uWh). */
int64_t pl_meter_register(const struct pl_meter *m);

/* Energy of n pulses in uWh, with one rounding. */
int64_t pl_meter_pulses_uwh(const struct pl_meter *m, int64_t n);

/*
 * Starts observation at time t_us (the first interval is flagged PL_Q_PARTIAL unless t_us is
 * exactly on an interval boundary). Optional: the first pulse or advance starts it otherwise.
 */
void pl_meter_start(struct pl_meter *m, int64_t t_us);

/*
 * Feeds a pulse. Intervals that end at or before the pulse's time are closed first and written
 * to out (at most out_cap; *n_out gets how many). If the pulse lies beyond out_cap intervals,
 * returns -PL_ENOSPC having written none and consumed nothing: call pl_meter_advance first.
 * *power_mw (may be NULL) gets the power from the gap to the previous accepted pulse (0 for
 * the first or a rejected pulse). Returns 0, -PL_ENOSPC, or -PL_EORDER (time went backwards:
 * the pulse is ignored).
 */
int pl_meter_pulse(struct pl_meter *m, const struct pl_pulse *p, int64_t *power_mw,
		   struct pl_interval_record *out, size_t out_cap, size_t *n_out);

/*
 * Closes every interval that ends at or before now_us, writing at most out_cap records;
 * returns the number of records written (call again while it returns out_cap).
 */
size_t pl_meter_advance(struct pl_meter *m, int64_t now_us,
			struct pl_interval_record *out, size_t out_cap);

/* Closes the open interval early at t_us (end of input), flagged PL_Q_PARTIAL if it ends before
 * its full length. Returns 1 if a record was written, else 0. */
int pl_meter_flush(struct pl_meter *m, int64_t t_us, struct pl_interval_record *out);

/* Adds quality flags (enum pl_quality) to the open interval. */
void pl_meter_flag(struct pl_meter *m, uint32_t flags);

/*
 * Power estimate at time now_us, mW: from the last gap between pulses, but never more than the
 * bound from the time since the last pulse. 0 before two pulses. *bound_mw (may be NULL) gets
 * the upper bound alone.
 */
int64_t pl_meter_power(const struct pl_meter *m, int64_t now_us, int64_t *bound_mw);

#ifdef __cplusplus
}
#endif
#endif
