/*
 * Digital edge filter: edges of a comparator module, an S0 output or a GPIO in, pulses out.
 *
 * Comparator modules (LM393 and a potentiometer) have no hysteresis and chatter near their
 * threshold; S0 outputs bounce in a relay-like way. The filter only accepts a level after it
 * has been held for a minimum time (min_high_us for the pulse level, min_low_us for the rest
 * level), so chatter shorter than that is ignored, and it counts a pulse at the accepted
 * transition into the pulse level, stamped with the edge that began it. A pulse level held
 * longer than max_width_us is a steadily lit LED, not a pulse. The plausibility limit from the
 * meter constant and the maximum power flags (never drops) pulses that come too soon.
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
	uint32_t max_width_us; /* longer pulse level = steady; default 0 = no limit */
	uint8_t active_low;    /* 1: the pulse is the low level */
	uint32_t imp_per_kwh;  /* for the plausibility limit; 0 = none */
	uint32_t max_power_w;  /* for the plausibility limit; 0 = none */
};

struct pl_edges {
	struct pl_edges_config cfg;
	int64_t min_gap_us;
	int8_t level;          /* accepted logical level: 1 = pulse, 0 = rest, -1 = unknown */
	int8_t raw;            /* last raw logical level seen */
	int64_t raw_t;         /* time of the last raw edge */
	int64_t pulse_t0;      /* first edge of the accepted pulse in progress */
	uint8_t in_pulse_emitted;
	int64_t last_pulse_t;  /* leading edge of the last accepted, not rejected, pulse */
	uint64_t n_pulses, n_rejected, n_chatter, n_steady;
	int64_t t_last;
};

void pl_edges_config_default(struct pl_edges_config *cfg);

/* Initialises the filter; cfg NULL for the defaults. Returns 0 or -PL_EINVAL. */
int pl_edges_init(struct pl_edges *e, const struct pl_edges_config *cfg);

/*
 * Feeds one edge: the raw input level (0 or 1, before active_low is applied) at time t_us.
 * Writes at most one pulse to *out and returns 1 if it did, 0 if not, or -PL_EORDER if time
 * went backwards (the edge is ignored). Repeated levels are allowed (they are no edge).
 */
int pl_edges_feed(struct pl_edges *e, int64_t t_us, int level, struct pl_pulse *out);

/*
 * Tells the filter that time t_us has passed with no edge, so that a level held long enough
 * is accepted without waiting for the next edge. Same return contract as pl_edges_feed.
 */
int pl_edges_advance(struct pl_edges *e, int64_t t_us, struct pl_pulse *out);

#ifdef __cplusplus
}
#endif
#endif
