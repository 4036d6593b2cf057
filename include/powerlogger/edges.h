/* SPDX-License-Identifier: MIT */
/*
 * Digital edge filter: edges of a comparator module, an S0 output or a GPIO in, pulses out.
 *
 * Comparator modules (LM393 and a potentiometer) have no hysteresis and chatter near their
 * threshold; S0 outputs bounce in a relay-like way. The filter only accepts a level after it
 * has been held for a minimum time (min_high_us for the pulse level, min_low_us for the rest
 * level), so chatter shorter than that is ignored (and counted in n_chatter). A pulse is the
 * accepted pulse level from the raw edge that began its accepted run to the raw edge that began
 * the accepted rest run after it; short dropouts inside it do not split it. A pulse level held
 * longer than max_width_us is a steadily lit LED (anti-creep), a state, never a pulse. The
 * plausibility limit from the meter constant and the maximum power flags (never drops) pulses
 * that come too soon.
 *
 * When a pulse is emitted: at the end of the pulse, once the rest level has been accepted,
 * because only then is its width known and a steadily lit LED told apart from a pulse. So a
 * pulse is never counted twice and a steady LED never counted at all, at the price of latency:
 * a pulse stamped t_us is emitted at t_us + width + min_low_us (12 ms for a 10 ms flash with the
 * defaults), and while the pulse level lasts the filter cannot yet say whether a pulse will
 * come; pl_edges_horizon() tells the caller how far downstream consumers (pl_meter) may be
 * advanced. With max_width_us set that wait is bounded by max_width_us + min_low_us.
 *
 * The first level seen is taken as the state the input was already in: if it is the pulse
 * level, that pulse's leading edge was not seen and it is not counted.
 *
 * Plain-data state; not thread-safe; integer arithmetic only.
 */
#ifndef POWERLOGGER_EDGES_H
#define POWERLOGGER_EDGES_H

#include "powerlogger/common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct pl_edges_config {
	uint32_t min_high_us;  /* shortest accepted pulse level; default 2000 (2 ms) */
	uint32_t min_low_us;   /* shortest accepted rest level; default 2000 (2 ms) */
	uint32_t max_width_us; /* a longer pulse level is steady, not a pulse; 0 = no limit;
	                        * default 1000000 (1 s: five times the widest known LED pulse) */
	uint8_t active_low;    /* 1: the pulse is the low level */
	uint32_t imp_per_kwh;  /* for the plausibility limit; 0 = none */
	uint32_t max_power_w;  /* for the plausibility limit; 0 = none */
};

/*
 * State. Plain data: it may be copied, saved and restored; the counters may be read.
 * "Logical" levels have active_low applied: 1 = pulse level, 0 = rest level.
 */
struct pl_edges {
	struct pl_edges_config cfg;
	int64_t min_gap_us;    /* pl_min_gap_us() of the configuration */
	int64_t raw_t;         /* time of the raw edge that began the current raw run */
	int64_t pulse_t0;      /* while level == 1: the raw edge that began the accepted pulse */
	int64_t last_pulse_t;  /* leading edge of the last accepted, not rejected, pulse */
	int64_t t_last;        /* latest time seen; INT64_MIN before any */
	uint64_t n_pulses;     /* pulses emitted, rejected ones included */
	uint64_t n_rejected;   /* of those, flagged PL_PULSE_REJECTED */
	uint64_t n_chatter;    /* raw runs that ended before they were held long enough */
	uint64_t n_steady;     /* pulse levels held longer than max_width_us */
	int8_t level;          /* accepted logical level: 1 = pulse, 0 = rest, -1 = unknown */
	int8_t raw;            /* last raw logical level seen; -1 before the first edge */
	uint8_t steady;        /* 1 while the accepted pulse level has outlasted max_width_us */
	uint8_t pulse_unseen;  /* 1: the accepted pulse level was there from the start; not counted */
	uint8_t have_last_pulse; /* last_pulse_t is valid */
	uint8_t reserved[3];   /* 0 */
};

/* Fills cfg with the defaults (see struct pl_edges_config). */
void pl_edges_config_default(struct pl_edges_config *cfg);

/*
 * Initialises the filter; cfg NULL for the defaults. Returns 0 or -PL_EINVAL (e NULL,
 * active_low not 0 or 1, or max_width_us nonzero and below min_high_us).
 */
int pl_edges_init(struct pl_edges *e, const struct pl_edges_config *cfg);

/*
 * Feeds one edge: the raw input level (0 or 1, before active_low is applied) at time t_us,
 * meaning the input has had its previous level until t_us and has `level` from t_us on.
 * Writes at most one pulse to *out and returns 1 if it did, 0 if not, -PL_EINVAL (NULL
 * arguments or level not 0/1) or -PL_EORDER if time went backwards (the edge is ignored).
 * Repeated levels are allowed (they are no edge). Times may be any int64_t.
 * A pulse's width_us is the time from its leading edge to the edge that began the accepted rest
 * run (dropouts shorter than min_low_us included), saturated at UINT32_MAX; amplitude 1,
 * confidence 100; flags PL_PULSE_REJECTED if it came sooner than pl_min_gap_us() after the
 * previous accepted pulse.
 */
int pl_edges_feed(struct pl_edges *e, int64_t t_us, int level, struct pl_pulse *out);

/*
 * Tells the filter that time t_us has passed with no edge, so that a level held long enough
 * is accepted (and a pulse that ended emitted) without waiting for the next edge. Same return
 * contract as pl_edges_feed.
 */
int pl_edges_advance(struct pl_edges *e, int64_t t_us, struct pl_pulse *out);

/*
 * The horizon: every pulse the filter emits from now on has t_us >= this time (INT64_MIN
 * before any input). It trails the latest time seen only while a pulse may be in progress.
 * Never decreases. Advance a pl_meter no further than this.
 */
int64_t pl_edges_horizon(const struct pl_edges *e);

#ifdef __cplusplus
}
#endif
#endif
