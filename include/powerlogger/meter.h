/* SPDX-License-Identifier: MIT */
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
	uint32_t length_s;     /* the configured length, also for a PL_Q_PARTIAL record */
	uint32_t pulses;       /* accepted pulses */
	uint32_t rejected;     /* rejected (implausible) pulses, not in the energy */
	uint32_t flags;        /* enum pl_quality */
	int64_t energy_uwh;    /* energy of the accepted pulses: the register's increase over the
	                        * interval, so consecutive records add up exactly to the register */
	int64_t avg_mw;        /* energy over length_s, rounded: energy_uwh * 3.6 / length_s */
	int64_t peak_mw;       /* highest power from the gap between two pulses ending in it; 0 if none */
	int64_t register_uwh;  /* energy register at the end of the interval */
};

/*
 * Times given to the meter must lie within +-PL_METER_T_LIMIT us (about +-146,000 years, so
 * any epoch works); aligning them to intervals then cannot overflow.
 */
#define PL_METER_T_LIMIT (INT64_C(1) << 62)

/* State. Plain data without padding: it may be copied, saved and restored bit-exactly. */
struct pl_meter {
	struct pl_meter_config cfg;
	int64_t base_uwh;        /* register value when the count was last reset */
	int64_t count;           /* accepted pulses since then */
	int64_t cur_start;       /* start of the open interval; INT64_MIN when none is open */
	int64_t cur_count0;      /* count at the start of the open interval (< 0 after a
	                          * pl_meter_set_register() inside it) */
	int64_t cur_peak_mw;
	int64_t last_pulse_t;    /* INT64_MIN before the first accepted pulse */
	int64_t last_gap_us;     /* 0 before two accepted pulses; else at least 1 */
	int64_t t_last;          /* latest time seen; INT64_MIN before any */
	uint32_t cur_pulses, cur_rejected, cur_flags;
	uint32_t reserved;       /* 0 */
};

/* Fills cfg with the defaults: 1000 imp/kWh, 20 s intervals. */
void pl_meter_config_default(struct pl_meter_config *cfg);

/*
 * Initialises a meter with register 0 and no open interval. cfg NULL for the defaults.
 * Returns 0 or -PL_EINVAL (m NULL, or imp_per_kwh or interval_s out of range).
 */
int pl_meter_init(struct pl_meter *m, const struct pl_meter_config *cfg);

/*
 * Sets the energy register to the meter's own reading (uWh) and resets the pulse count, so
 * the register is again exactly base + round(count * 1e9 / imp). Pulses already counted in the
 * open interval stay in its energy. It takes effect at the latest time seen, and intervals that
 * are over but not yet closed would carry the new value: call pl_meter_advance() to the
 * current time first. Returns 0 or -PL_EINVAL (register_uwh < 0).
 */
int pl_meter_set_register(struct pl_meter *m, int64_t register_uwh);

/* Current register (uWh): base + round(count * 1e9 / imp_per_kwh). */
int64_t pl_meter_register(const struct pl_meter *m);

/*
 * Energy of n pulses in uWh, round(n * 1e9 / imp_per_kwh) with one rounding (half away from
 * zero). Exact for every n; saturates at INT64_MAX/INT64_MIN (beyond 9e12 kWh).
 */
int64_t pl_meter_pulses_uwh(const struct pl_meter *m, int64_t n);

/*
 * Starts observation at time t_us (the first interval is flagged PL_Q_PARTIAL unless t_us is
 * exactly on an interval boundary). Optional: the first pulse or advance starts it otherwise.
 * Flags given to pl_meter_flag() before the start go to the first interval.
 * Returns 0, -PL_EINVAL (already observing), -PL_ERANGE (t_us beyond PL_METER_T_LIMIT) or
 * -PL_EORDER (t_us before a time already seen).
 */
int pl_meter_start(struct pl_meter *m, int64_t t_us);

/*
 * Feeds a pulse. Intervals that end at or before the pulse's time are closed first and written
 * to out (at most out_cap; *n_out gets how many; n_out may be NULL only if out_cap is 0). If
 * the pulse lies beyond out_cap intervals, returns -PL_ENOSPC having written none and consumed
 * nothing: call pl_meter_advance first, then feed the pulse again. A pulse flagged
 * PL_PULSE_REJECTED is counted in the interval's `rejected` and flags it PL_Q_REJECTED; it
 * carries no energy, no power, and does not count as the previous pulse of the next gap.
 * *power_mw (may be NULL) gets the power from the gap to the previous accepted pulse, mW
 * (0 for the first or a rejected pulse; two pulses at the same time count as 1 us apart).
 * Returns 0, -PL_ENOSPC, -PL_EINVAL (NULL arguments), -PL_ERANGE (time beyond
 * PL_METER_T_LIMIT) or -PL_EORDER (time before a time already seen by any call: the pulse is
 * ignored). On error *n_out and *power_mw are 0.
 */
int pl_meter_pulse(struct pl_meter *m, const struct pl_pulse *p, int64_t *power_mw,
		   struct pl_interval_record *out, size_t out_cap, size_t *n_out);

/*
 * Time now_us has passed: closes every interval that ends at or before now_us, writing at most
 * out_cap records; returns the number of records written (call again while it returns
 * out_cap). Starts observation at now_us if it has not started. Pulses before now_us are
 * refused afterwards (-PL_EORDER), so with a filter that emits pulses late (pl_edges) advance
 * only to that filter's horizon. A now_us before a time already seen does nothing; one beyond
 * PL_METER_T_LIMIT is taken as the limit.
 */
size_t pl_meter_advance(struct pl_meter *m, int64_t now_us,
			struct pl_interval_record *out, size_t out_cap);

/*
 * Ends observation at t_us (end of input). Writes the open interval to *out, flagged
 * PL_Q_PARTIAL because it ends before its full length, and leaves no interval open (the next
 * pulse, start or advance begins a new observation). If the open interval ends at or before
 * t_us it is written complete, without PL_Q_PARTIAL, and observation goes on: call
 * pl_meter_advance(t_us) first, or call this until it returns 0. An interval that t_us ends at
 * its very start with no pulse in it gives no record. Note that a new observation starting
 * inside the flushed interval produces a second record with the same start_us; to resume
 * without that, restore a saved state instead of flushing.
 * Returns 1 if a record was written, 0 if none, -PL_EINVAL (NULL arguments), -PL_ERANGE or
 * -PL_EORDER (t_us before a time already seen).
 */
int pl_meter_flush(struct pl_meter *m, int64_t t_us, struct pl_interval_record *out);

/*
 * The clock that stamps the meter's times was stepped by delta_us at the latest time seen (an
 * NTP step, a clock set by hand, a suspend): from now on the times given are delta_us later
 * (earlier, for delta_us < 0) than they would have been. Call pl_meter_advance() to the
 * instant of the step first. What lies between the old and the new reading is unknowable, so:
 *
 *   forward into a later interval: the open interval is written to *out, flagged PL_Q_GAP and
 *   PL_Q_PARTIAL, and the next one opens at the new time, flagged PL_Q_GAP (and PL_Q_PARTIAL
 *   unless it is on a boundary); the skipped span gives no records, not records of zero
 *   pulses, and the work is the same for a second and for fifty years;
 *
 *   forward within the open interval, or backward: the open interval stays open, flagged
 *   PL_Q_GAP, until the new clock reaches its end. After a backward step it so holds the
 *   energy of the step's length more than usual: an interval start already written is never
 *   written again with other data (records are keyed by their start), and no pulse is lost.
 *
 * Either way the register runs on and the power of the next gap between pulses is right: the
 * last pulse's time moves with the clock. Before observation has started only the times move.
 * Returns 1 if a record was written, 0 if none, -PL_EINVAL (NULL arguments) or -PL_ERANGE (the
 * new time beyond PL_METER_T_LIMIT; nothing changed).
 */
int pl_meter_step(struct pl_meter *m, int64_t delta_us, struct pl_interval_record *out);

/* Adds quality flags (enum pl_quality) to the open interval (or the first one, before start). */
void pl_meter_flag(struct pl_meter *m, uint32_t flags);

/*
 * Power estimate at time now_us, mW: from the last gap between accepted pulses, but never more
 * than the bound from the time since the last pulse, round(one pulse's energy / (now_us -
 * last pulse)), which falls towards 0 while no pulse comes. 0 before two pulses. *bound_mw
 * (may be NULL) gets the upper bound alone (INT64_MAX before the first pulse: no bound known).
 */
int64_t pl_meter_power(const struct pl_meter *m, int64_t now_us, int64_t *bound_mw);

#ifdef __cplusplus
}
#endif
#endif
