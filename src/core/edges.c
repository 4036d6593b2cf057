/* SPDX-License-Identifier: MIT */
/*
 * Digital edge filter: raw edges in, debounced and plausibility-checked pulses out.
 *
 * The input is a sequence of raw runs (a level held from one edge to the next). A run that
 * differs from the accepted level becomes the accepted level once it has lasted min_high_us
 * (pulse level) or min_low_us (rest level); a run that ends sooner is chatter. Each call first
 * "settles" the run in progress up to the call's time (it has certainly lasted that long),
 * then applies the new edge. A pulse is emitted when the rest level after it is accepted: only
 * then are its width and its steadiness known (see edges.h for the latency this costs).
 *
 * Times are compared as unsigned differences, which are exact for any two int64_t times in
 * order, so no time value can overflow anything.
 */
#include "powerlogger/edges.h"

#define DEFAULT_MIN_US 2000u
#define DEFAULT_MAX_WIDTH_US 1000000u

/* later - earlier, exact, for later >= earlier. */
static uint64_t span(int64_t later, int64_t earlier)
{
	return (uint64_t)later - (uint64_t)earlier;
}

static uint64_t min_hold(const struct pl_edges *e, int level)
{
	return level == 1 ? e->cfg.min_high_us : e->cfg.min_low_us;
}

static int too_wide(const struct pl_edges *e, uint64_t width)
{
	return e->cfg.max_width_us != 0 && width > e->cfg.max_width_us;
}

/* The accepted pulse level ended at raw_t (the rest run that began there is accepted). */
static int end_pulse(struct pl_edges *e, struct pl_pulse *out)
{
	uint64_t width = span(e->raw_t, e->pulse_t0);
	int was_steady = e->steady, unseen = e->pulse_unseen;

	e->steady = 0;
	e->pulse_unseen = 0;
	if (was_steady)
		return 0; /* counted in n_steady when it became certain */
	if (too_wide(e, width)) {
		e->n_steady++;
		return 0;
	}
	if (unseen)
		return 0;
	*out = (struct pl_pulse){
		.t_us = e->pulse_t0,
		.width_us = width > UINT32_MAX ? UINT32_MAX : (uint32_t)width,
		.amplitude = 1,
		.confidence = 100,
		.flags = 0,
	};
	e->n_pulses++;
	if (e->have_last_pulse && span(e->pulse_t0, e->last_pulse_t) < (uint64_t)e->min_gap_us) {
		out->flags |= PL_PULSE_REJECTED;
		e->n_rejected++;
	} else {
		e->last_pulse_t = e->pulse_t0;
		e->have_last_pulse = 1;
	}
	return 1;
}

/* The raw run in progress has lasted until t with no edge: accept it if it is long enough. */
static int settle(struct pl_edges *e, int64_t t, struct pl_pulse *out)
{
	int emitted = 0;

	if (e->raw < 0)
		return 0;
	if (e->raw != e->level && span(t, e->raw_t) >= min_hold(e, e->raw)) {
		if (e->raw == 1) {
			e->pulse_unseen = e->level < 0;
			e->steady = 0;
			e->pulse_t0 = e->raw_t;
		} else if (e->level == 1) {
			emitted = end_pulse(e, out);
		}
		e->level = e->raw;
	}
	/* Decide steadiness as soon as it is certain, not only when the level ends: the width
	 * is at least t - pulse_t0 while the pulse level is raw, and at least raw_t - pulse_t0
	 * while a rest run waits to be accepted. */
	if (e->level == 1 && !e->steady &&
	    too_wide(e, span(e->raw == 1 ? t : e->raw_t, e->pulse_t0))) {
		e->steady = 1;
		e->n_steady++;
	}
	return emitted;
}

void pl_edges_config_default(struct pl_edges_config *cfg)
{
	if (cfg == NULL)
		return;
	*cfg = (struct pl_edges_config){
		.min_high_us = DEFAULT_MIN_US,
		.min_low_us = DEFAULT_MIN_US,
		.max_width_us = DEFAULT_MAX_WIDTH_US,
		.active_low = 0,
		.imp_per_kwh = 0,
		.max_power_w = 0,
	};
}

int pl_edges_init(struct pl_edges *e, const struct pl_edges_config *cfg)
{
	struct pl_edges_config c;

	if (e == NULL)
		return -PL_EINVAL;
	pl_edges_config_default(&c);
	if (cfg != NULL)
		c = *cfg;
	if (c.active_low > 1 || (c.max_width_us != 0 && c.max_width_us < c.min_high_us))
		return -PL_EINVAL;
	*e = (struct pl_edges){
		.cfg = c,
		.min_gap_us = pl_min_gap_us(c.imp_per_kwh, c.max_power_w),
		.t_last = INT64_MIN,
		.level = -1,
		.raw = -1,
	};
	return 0;
}

int pl_edges_feed(struct pl_edges *e, int64_t t_us, int level, struct pl_pulse *out)
{
	int8_t logical;
	int emitted;

	if (e == NULL || out == NULL || (level != 0 && level != 1))
		return -PL_EINVAL;
	if (t_us < e->t_last)
		return -PL_EORDER;
	logical = (int8_t)(level ^ e->cfg.active_low);
	emitted = settle(e, t_us, out);
	if (logical != e->raw) {
		if (e->raw >= 0 && e->raw != e->level)
			e->n_chatter++;
		e->raw = logical;
		e->raw_t = t_us;
	}
	e->t_last = t_us;
	return emitted;
}

int pl_edges_advance(struct pl_edges *e, int64_t t_us, struct pl_pulse *out)
{
	int emitted;

	if (e == NULL || out == NULL)
		return -PL_EINVAL;
	if (t_us < e->t_last)
		return -PL_EORDER;
	emitted = settle(e, t_us, out);
	e->t_last = t_us;
	return emitted;
}

int64_t pl_edges_horizon(const struct pl_edges *e)
{
	if (e->level == 1 && !e->steady && !e->pulse_unseen)
		return e->pulse_t0;
	if (e->raw == 1 && e->level == 0)
		return e->raw_t;
	return e->t_last;
}
