/* SPDX-License-Identifier: MIT */
/*
 * Meter arithmetic: pulses in; energy register, power and interval records out.
 *
 * Everything is integer. The two conversions that matter are done so that they can neither
 * overflow nor drift:
 *
 *   energy of n pulses = round(n * 1e9 / imp) uWh, computed as q * 1e9 + round(r * 1e9 / imp)
 *   with n = q * imp + r, so the product never leaves 64 bits (|r| < imp <= 1e6);
 *
 *   power of a gap = round(3.6e15 / (imp * gap_us)) mW (one pulse is 1e9 / imp uWh, and
 *   uWh per us is 3.6e6 mW), where a product imp * gap_us too large for 64 bits means a power
 *   that rounds to 0 anyway.
 *
 * Interval energies are differences of the rounded register, so the energies of consecutive
 * records add up exactly to the register's change; no rounding error accumulates anywhere.
 */
#include "powerlogger/meter.h"

#include "sat.h"

#define UWH_PER_KWH INT64_C(1000000000)
#define MW_US_PER_UWH INT64_C(3600000)           /* 1 uWh per us = 3.6e6 mW */
#define PULSE_MW_US (UWH_PER_KWH * MW_US_PER_UWH) /* 3.6e15: mW * us of one pulse, times imp */
#define NOT_STARTED INT64_MIN

/* a * b for b > 0, saturated. */
static int64_t sat_mul_pos(int64_t a, int64_t b)
{
	if (a > INT64_MAX / b)
		return INT64_MAX;
	if (a < INT64_MIN / b)
		return INT64_MIN;
	return a * b;
}

static int time_in_range(int64_t t)
{
	return t >= -PL_METER_T_LIMIT && t <= PL_METER_T_LIMIT;
}

static int64_t interval_us(const struct pl_meter *m)
{
	return (int64_t)m->cfg.interval_s * PL_US_PER_S;
}

/* Start of the interval holding t: floor(t / L) * L, also for negative t. */
static int64_t align_down(const struct pl_meter *m, int64_t t)
{
	int64_t len = interval_us(m);
	int64_t q = t / len;

	if (t % len != 0 && t < 0)
		q--;
	return q * len;
}

/* round(3.6e15 / (imp * gap_us)) mW; gap_us is clamped to at least 1 us. */
static int64_t power_of_gap(const struct pl_meter *m, uint64_t gap_us)
{
	uint64_t imp = m->cfg.imp_per_kwh;
	uint64_t d;

	if (gap_us == 0)
		gap_us = 1;
	/* Beyond this the power is below 0.001 mW and rounds to 0; it also keeps 2 * d in range. */
	if (gap_us > ((uint64_t)INT64_MAX / 2) / imp)
		return 0;
	d = imp * gap_us;
	return (int64_t)((2 * (uint64_t)PULSE_MW_US + d) / (2 * d));
}

/* round(energy_uwh * 3.6 / length_s) mW, for energy_uwh >= 0. */
static int64_t avg_power(int64_t energy_uwh, uint32_t length_s)
{
	int64_t d = (int64_t)length_s * 5; /* mW = uWh * 18 / (5 * s) */
	int64_t q = energy_uwh / d;
	int64_t r = energy_uwh % d;

	return sat_add(sat_mul_pos(q, 18), (r * 36 + d) / (2 * d));
}

static void start_at(struct pl_meter *m, int64_t t)
{
	m->cur_start = align_down(m, t);
	if (m->cur_start != t)
		m->cur_flags |= PL_Q_PARTIAL;
	m->cur_count0 = m->count;
	if (t > m->t_last)
		m->t_last = t;
}

static void fill_record(const struct pl_meter *m, struct pl_interval_record *r)
{
	r->start_us = m->cur_start;
	r->length_s = m->cfg.interval_s;
	r->pulses = m->cur_pulses;
	r->rejected = m->cur_rejected;
	r->flags = m->cur_flags;
	r->energy_uwh = pl_meter_pulses_uwh(m, m->count) - pl_meter_pulses_uwh(m, m->cur_count0);
	r->avg_mw = avg_power(r->energy_uwh, m->cfg.interval_s);
	r->peak_mw = m->cur_peak_mw;
	r->register_uwh = pl_meter_register(m);
}

static void reset_open(struct pl_meter *m)
{
	m->cur_pulses = 0;
	m->cur_rejected = 0;
	m->cur_flags = 0;
	m->cur_peak_mw = 0;
	m->cur_count0 = m->count;
}

/* Writes the open interval as a complete record and opens the next one. */
static void close_interval(struct pl_meter *m, struct pl_interval_record *r)
{
	fill_record(m, r);
	m->cur_start += interval_us(m);
	reset_open(m);
}

static uint32_t inc_sat(uint32_t v)
{
	return v == UINT32_MAX ? v : v + 1;
}

void pl_meter_config_default(struct pl_meter_config *cfg)
{
	if (cfg == NULL)
		return;
	cfg->imp_per_kwh = 1000;
	cfg->interval_s = 20;
}

int pl_meter_init(struct pl_meter *m, const struct pl_meter_config *cfg)
{
	struct pl_meter_config c;

	if (m == NULL)
		return -PL_EINVAL;
	pl_meter_config_default(&c);
	if (cfg != NULL)
		c = *cfg;
	if (c.imp_per_kwh < 1 || c.imp_per_kwh > 1000000 || c.interval_s < 1 ||
	    c.interval_s > 86400)
		return -PL_EINVAL;
	*m = (struct pl_meter){
		.cfg = c,
		.cur_start = NOT_STARTED,
		.last_pulse_t = INT64_MIN,
		.t_last = INT64_MIN,
	};
	return 0;
}

int pl_meter_set_register(struct pl_meter *m, int64_t register_uwh)
{
	if (m == NULL || register_uwh < 0)
		return -PL_EINVAL;
	/* Pulses already in the open interval stay in its energy: shift its start count along. */
	m->cur_count0 -= m->count;
	m->count = 0;
	m->base_uwh = register_uwh;
	return 0;
}

int64_t pl_meter_register(const struct pl_meter *m)
{
	return sat_add(m->base_uwh, pl_meter_pulses_uwh(m, m->count));
}

int64_t pl_meter_pulses_uwh(const struct pl_meter *m, int64_t n)
{
	int64_t imp = (int64_t)m->cfg.imp_per_kwh;
	int64_t q = n / imp;
	int64_t r = n % imp; /* same sign as n, |r| < imp <= 1e6 */
	int64_t frac;

	/* Round half away from zero, so that pulses_uwh(-n) == -pulses_uwh(n). */
	if (r >= 0)
		frac = (2 * r * UWH_PER_KWH + imp) / (2 * imp);
	else
		frac = -((-2 * r * UWH_PER_KWH + imp) / (2 * imp));
	return sat_add(sat_mul_pos(q, UWH_PER_KWH), frac);
}

int pl_meter_start(struct pl_meter *m, int64_t t_us)
{
	if (m == NULL || m->cur_start != NOT_STARTED)
		return -PL_EINVAL;
	if (!time_in_range(t_us))
		return -PL_ERANGE;
	if (t_us < m->t_last)
		return -PL_EORDER;
	start_at(m, t_us);
	return 0;
}

int pl_meter_pulse(struct pl_meter *m, const struct pl_pulse *p, int64_t *power_mw,
		   struct pl_interval_record *out, size_t out_cap, size_t *n_out)
{
	int64_t pending, power = 0;
	size_t n = 0;

	if (power_mw != NULL)
		*power_mw = 0;
	if (n_out != NULL)
		*n_out = 0;
	if (m == NULL || p == NULL || (out == NULL && out_cap > 0) ||
	    (n_out == NULL && out_cap > 0))
		return -PL_EINVAL;
	if (!time_in_range(p->t_us))
		return -PL_ERANGE;
	if (p->t_us < m->t_last)
		return -PL_EORDER;

	if (m->cur_start == NOT_STARTED) {
		start_at(m, p->t_us);
	} else {
		/* Negative after a backward clock step (pl_meter_step): the pulse belongs to the
		 * open interval, which lasts until the clock reaches its end. */
		pending = (align_down(m, p->t_us) - m->cur_start) / interval_us(m);
		if (pending > 0 && (uint64_t)pending > (uint64_t)out_cap)
			return -PL_ENOSPC;
		while (m->cur_start + interval_us(m) <= p->t_us)
			close_interval(m, &out[n++]);
	}

	if (p->flags & PL_PULSE_REJECTED) {
		m->cur_rejected = inc_sat(m->cur_rejected);
		m->cur_flags |= PL_Q_REJECTED;
	} else {
		if (m->last_pulse_t != INT64_MIN) {
			m->last_gap_us = p->t_us - m->last_pulse_t;
			if (m->last_gap_us == 0)
				m->last_gap_us = 1;
			power = power_of_gap(m, (uint64_t)m->last_gap_us);
			if (power > m->cur_peak_mw)
				m->cur_peak_mw = power;
		}
		m->last_pulse_t = p->t_us;
		m->count++;
		m->cur_pulses = inc_sat(m->cur_pulses);
	}
	m->t_last = p->t_us;
	if (power_mw != NULL)
		*power_mw = power;
	if (n_out != NULL)
		*n_out = n;
	return 0;
}

size_t pl_meter_advance(struct pl_meter *m, int64_t now_us, struct pl_interval_record *out,
			size_t out_cap)
{
	size_t n = 0;

	if (m == NULL || (out == NULL && out_cap > 0))
		return 0;
	if (now_us > PL_METER_T_LIMIT)
		now_us = PL_METER_T_LIMIT;
	if (now_us < m->t_last || now_us < -PL_METER_T_LIMIT)
		return 0;
	if (m->cur_start == NOT_STARTED) {
		start_at(m, now_us);
		return 0;
	}
	m->t_last = now_us;
	while (n < out_cap && m->cur_start + interval_us(m) <= now_us)
		close_interval(m, &out[n++]);
	return n;
}

int pl_meter_flush(struct pl_meter *m, int64_t t_us, struct pl_interval_record *out)
{
	if (m == NULL || out == NULL)
		return -PL_EINVAL;
	if (m->cur_start == NOT_STARTED)
		return 0;
	if (!time_in_range(t_us))
		return -PL_ERANGE;
	if (t_us < m->t_last)
		return -PL_EORDER;
	m->t_last = t_us;
	if (m->cur_start + interval_us(m) <= t_us) {
		/* A complete interval is still open: write it as it is and keep observing. */
		close_interval(m, out);
		return 1;
	}
	if (t_us == m->cur_start && m->cur_pulses == 0 && m->cur_rejected == 0) {
		/* Not observed for any time and nothing in it: no record. */
		m->cur_start = NOT_STARTED;
		reset_open(m);
		return 0;
	}
	m->cur_flags |= PL_Q_PARTIAL;
	fill_record(m, out);
	m->cur_start = NOT_STARTED;
	reset_open(m);
	return 1;
}

/* t + d for a time t the meter has seen, kept inside the limit (a step never moves a time
 * past it; the caller's new time was checked). */
static int64_t shift_time(int64_t t, int64_t d)
{
	int64_t v = sat_add(t, d);

	if (v > PL_METER_T_LIMIT)
		return PL_METER_T_LIMIT;
	if (v < -PL_METER_T_LIMIT)
		return -PL_METER_T_LIMIT;
	return v;
}

int pl_meter_step(struct pl_meter *m, int64_t delta_us, struct pl_interval_record *out)
{
	int64_t t_new;
	int wrote = 0;

	if (m == NULL || out == NULL)
		return -PL_EINVAL;
	if (m->t_last == INT64_MIN)
		return 0; /* no time seen yet: nothing to move */
	t_new = sat_add(m->t_last, delta_us);
	if (!time_in_range(t_new))
		return -PL_ERANGE;
	if (m->cur_start != NOT_STARTED && align_down(m, t_new) > m->cur_start) {
		/* Written unless it was never observed for any time and holds nothing. */
		if (!(m->t_last == m->cur_start && m->cur_pulses == 0 && m->cur_rejected == 0)) {
			m->cur_flags |= PL_Q_GAP | PL_Q_PARTIAL;
			fill_record(m, out);
			wrote = 1;
		}
		reset_open(m);
		m->cur_start = align_down(m, t_new);
		m->cur_flags = PL_Q_GAP | (m->cur_start != t_new ? PL_Q_PARTIAL : 0u);
	} else if (m->cur_start != NOT_STARTED) {
		m->cur_flags |= PL_Q_GAP;
	}
	if (m->last_pulse_t != INT64_MIN)
		m->last_pulse_t = shift_time(m->last_pulse_t, delta_us);
	m->t_last = t_new;
	return wrote;
}

void pl_meter_flag(struct pl_meter *m, uint32_t flags)
{
	if (m != NULL)
		m->cur_flags |= flags;
}

int64_t pl_meter_power(const struct pl_meter *m, int64_t now_us, int64_t *bound_mw)
{
	uint64_t since;
	int64_t bound, power;

	if (m->last_pulse_t == INT64_MIN) {
		if (bound_mw != NULL)
			*bound_mw = INT64_MAX;
		return 0;
	}
	since = now_us > m->last_pulse_t ? (uint64_t)now_us - (uint64_t)m->last_pulse_t : 1;
	bound = power_of_gap(m, since);
	if (bound_mw != NULL)
		*bound_mw = bound;
	if (m->last_gap_us == 0)
		return 0;
	power = power_of_gap(m, (uint64_t)m->last_gap_us);
	return power < bound ? power : bound;
}
