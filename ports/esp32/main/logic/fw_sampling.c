/*
 * The sampling task's logic (see fw_sampling.h).
 */
#include "fw_sampling.h"

#include <string.h>

#include "powerlogger/common.h"

void fw_sampling_config_default(struct fw_sampling_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->adc_rate_hz = 20000;
	cfg->block = 4;
	cfg->pool_us = (uint32_t)((uint64_t)FW_SAMPLING_POOL_FRAMES * FW_SAMPLING_FRAME_SAMPLES *
				  1000000u / cfg->adc_rate_hz);
	pl_detector_config_default(&cfg->det);
	pl_edges_config_default(&cfg->edges);
	pl_meter_config_default(&cfg->meter);
}

int fw_sampling_init(struct fw_sampling *s, const struct fw_sampling_config *cfg,
		     struct fw_ring *out, uint32_t boot)
{
	int rc;

	if (s == NULL || cfg == NULL || out == NULL || cfg->digital > 1)
		return -PL_EINVAL;
	if (!cfg->digital && (cfg->adc_rate_hz == 0 || cfg->adc_rate_hz > 2000000 ||
			      cfg->pool_us > 10000000 ||
			      cfg->block == 0 || cfg->block > 64))
		return -PL_EINVAL;
	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	s->out = out;
	s->boot = boot;
	s->last_sample_t = INT64_MIN;
	rc = cfg->digital ? pl_edges_init(&s->edges, &cfg->edges)
			  : pl_detector_init(&s->det, &cfg->det);
	if (rc < 0)
		return rc;
	return pl_meter_init(&s->meter, &cfg->meter);
}

/* Moves pending records into the ring, oldest first, while it has room. */
static int push_pending(struct fw_sampling *s)
{
	uint32_t i = 0;

	while (i < s->npend && fw_ring_push(s->out, &s->pend[i]) == 0)
		i++;
	if (i > 0) {
		memmove(s->pend, s->pend + i, (s->npend - i) * sizeof(s->pend[0]));
		s->npend -= i;
		s->stats.records += i;
	}
	return (int)i;
}

static uint32_t room(const struct fw_sampling *s)
{
	return FW_SAMPLING_PENDING - s->npend;
}

/* Turns the meter's records just written at pend[from..npend) into firmware records. */
static void wrap_records(struct fw_sampling *s, uint32_t from)
{
	for (uint32_t i = from; i < s->npend; i++) {
		struct pl_interval_record rec = s->pend[i].rec;

		/* the detector says no-signal until its first pulse; an interval with pulses had one */
		if (rec.pulses || rec.rejected)
			rec.flags &= ~(uint32_t)PL_Q_NO_SIGNAL;
		memset(&s->pend[i], 0, sizeof(s->pend[i]));
		s->pend[i].rec = rec;
		s->pend[i].boot = s->boot;
		s->pend[i].stamped = s->stamped;
	}
}

/* Room in the pending list for what a pulse or an advance can close; else a gap. */
static int make_room(struct fw_sampling *s, uint32_t need)
{
	push_pending(s);
	return room(s) >= need ? 0 : -PL_ENOSPC;
}

static void start(struct fw_sampling *s, int64_t t_mono)
{
	if (s->started)
		return;
	pl_meter_start(&s->meter, t_mono + s->offset_us);
	s->started = 1;
}

/* A pulse from the detector or the edge filter (monotonic time) into the meter. */
static int meter_pulse(struct fw_sampling *s, const struct pl_pulse *p)
{
	struct pl_interval_record recs[FW_SAMPLING_PENDING];
	struct pl_pulse q = *p;
	int64_t power = 0;
	size_t n = 0;
	int rc;

	s->stats.pulses++;
	if (p->flags & PL_PULSE_REJECTED)
		s->stats.rejected++;
	q.t_us += s->offset_us;
	for (int tries = 0; tries < 2; tries++) {
		push_pending(s);
		rc = pl_meter_pulse(&s->meter, &q, &power, recs, room(s), &n);
		for (size_t i = 0; i < n; i++)
			s->pend[s->npend + i].rec = recs[i];
		s->npend += (uint32_t)n;
		wrap_records(s, s->npend - (uint32_t)n);
		if (rc != -PL_ENOSPC)
			break;
	}
	if (rc == -PL_ENOSPC) {
		pl_meter_flag(&s->meter, PL_Q_GAP); /* cannot happen unless the ring is stuck */
		s->stats.gaps++;
	}
	if (rc == 0 && !(p->flags & PL_PULSE_REJECTED)) {
		if (power > 0)
			s->stats.power_mw = power;
		return 1;
	}
	return 0;
}

/* Closes the intervals that end at or before h (monotonic). */
static void close_upto(struct fw_sampling *s, int64_t h_mono)
{
	struct pl_interval_record recs[FW_SAMPLING_PENDING];
	uint32_t cap;
	size_t n;

	if (!s->started || h_mono == INT64_MIN)
		return;
	do {
		cap = room(s);
		if (cap == 0)
			break; /* the rest when the ring has room again: nothing is lost */
		n = pl_meter_advance(&s->meter, h_mono + s->offset_us, recs, cap);
		for (size_t i = 0; i < n; i++)
			s->pend[s->npend + i].rec = recs[i];
		s->npend += (uint32_t)n;
		wrap_records(s, s->npend - (uint32_t)n);
		push_pending(s);
	} while (n == cap);
}

static void detector_flags(struct fw_sampling *s)
{
	struct pl_detector_status st;
	uint32_t flags = 0;

	pl_detector_status(&s->det, &st);
	if (st.steady_events > s->steady_seen || st.state == PL_DET_STEADY)
		flags |= PL_Q_STEADY;
	s->steady_seen = st.steady_events;
	if (st.state == PL_DET_NO_SIGNAL)
		flags |= PL_Q_NO_SIGNAL;
	if (flags)
		pl_meter_flag(&s->meter, flags);
}

static int feed_chunk(struct fw_sampling *s, size_t nc)
{
	struct pl_pulse pulses[PL_DETECTOR_MIN_OUT];
	size_t off = 0;
	int accepted = 0;

	while (off < nc) {
		size_t np = 0;
		size_t used = pl_detector_feed(&s->det, s->chunk + off, nc - off, pulses,
					       PL_DETECTOR_MIN_OUT, &np);

		for (size_t i = 0; i < np; i++)
			accepted += meter_pulse(s, &pulses[i]);
		off += used;
	}
	s->stats.samples += nc;
	return accepted;
}

static int64_t raw_span_us(const struct fw_sampling *s, uint64_t k)
{
	return (int64_t)(k * UINT64_C(1000000) / s->cfg.adc_rate_hz);
}

int fw_sampling_adc(struct fw_sampling *s, const uint16_t *raw, size_t n, int64_t t_end_us)
{
	int64_t base, last_t;
	size_t nc = 0;
	int accepted = 0;

	if (n == 0)
		return 0;
	s->stats.raw_samples += n;
	if (!s->have_clock) {
		s->raw_t = t_end_us - raw_span_us(s, n);
		s->have_clock = 1;
	} else {
		int64_t err = t_end_us - (s->raw_t + raw_span_us(s, n));

		/* late by up to the pool's depth: frames held while the task could not run */
		if (err > FW_SAMPLING_SNAP_US + (int64_t)s->cfg.pool_us ||
		    err < -FW_SAMPLING_SNAP_US) {
			/* samples were lost (or the clock is far off): start the sample clock
			 * again from the frame's time and say so in the record */
			fw_sampling_gap(s);
			if (t_end_us - raw_span_us(s, n) > s->raw_t)
				s->raw_t = t_end_us - raw_span_us(s, n);
			s->acc_n = 0;
			s->acc_sum = 0;
		} else {
			s->raw_t += err / 16;
		}
	}
	if (make_room(s, 4) != 0) {
		fw_sampling_gap(s);
		s->stats.dropped_frames++;
		s->raw_t += raw_span_us(s, n);
		return -PL_ENOSPC;
	}
	base = s->raw_t;
	last_t = s->last_sample_t;
	start(s, base);
	for (size_t k = 0; k < n; k++) {
		s->acc_sum += raw[k];
		if (++s->acc_n < s->cfg.block)
			continue;
		int64_t t = base + raw_span_us(s, (uint64_t)k + 1);

		if (t < last_t)
			t = last_t; /* the sample clock was pulled back: never backwards */
		last_t = t;
		s->chunk[nc].t_us = t;
		s->chunk[nc].v = (int32_t)((s->acc_sum + s->cfg.block / 2) / s->cfg.block);
		s->acc_n = 0;
		s->acc_sum = 0;
		if (++nc == FW_SAMPLING_CHUNK) {
			accepted += feed_chunk(s, nc);
			nc = 0;
		}
	}
	if (nc > 0)
		accepted += feed_chunk(s, nc);
	s->last_sample_t = last_t;
	s->raw_t = base + raw_span_us(s, n);
	detector_flags(s);
	close_upto(s, pl_detector_horizon(&s->det));
	return accepted;
}

void fw_sampling_gap(struct fw_sampling *s)
{
	pl_meter_flag(&s->meter, PL_Q_GAP);
	s->stats.gaps++;
}

int fw_sampling_edge(struct fw_sampling *s, int level, int64_t t_us)
{
	struct pl_pulse p;
	int rc;

	if (make_room(s, 4) != 0) {
		fw_sampling_gap(s);
		s->stats.dropped_frames++;
		return -PL_ENOSPC;
	}
	start(s, t_us);
	rc = pl_edges_feed(&s->edges, t_us, level, &p);
	if (rc == 1)
		return meter_pulse(s, &p);
	return rc;
}

int fw_sampling_edges(struct fw_sampling *s, struct fw_ring *edges)
{
	uint32_t dropped = (uint32_t)atomic_load_explicit(&edges->dropped, memory_order_relaxed);
	int lost = dropped != s->edges_dropped_seen;
	struct fw_edge e;
	int pulses = 0;

	if (lost) {
		s->edges_dropped_seen = dropped;
		fw_sampling_gap(s);
	}
	while (fw_ring_pop(edges, &e) == 0)
		pulses += fw_sampling_edge(s, e.level, e.t_us) == 1;
	if (lost) {
		pl_meter_flag(&s->meter, PL_Q_GAP);
		s->gap_pending = 1;
	}
	return pulses;
}

int fw_sampling_tick(struct fw_sampling *s, int64_t now_us)
{
	uint64_t before = s->stats.records;
	int64_t h;

	push_pending(s);
	if (s->cfg.digital) {
		struct pl_pulse p;
		int64_t upto = now_us - FW_SAMPLING_EDGE_SLACK_US;

		start(s, upto);
		if (make_room(s, 4) == 0 && pl_edges_advance(&s->edges, upto, &p) == 1)
			meter_pulse(s, &p);
		h = pl_edges_horizon(&s->edges);
		if (h == INT64_MIN || h > upto)
			h = upto;
	} else {
		detector_flags(s);
		h = pl_detector_horizon(&s->det);
	}
	close_upto(s, h);
	if (s->gap_pending) {
		pl_meter_flag(&s->meter, PL_Q_GAP);
		s->gap_pending = 0;
	}
	return (int)(s->stats.records - before);
}

int fw_sampling_timebase(struct fw_sampling *s, int64_t offset_us, int64_t now_us)
{
	struct pl_interval_record rec;
	int64_t reg, h;

	if (s->started) {
		/* close the open interval in the old time base, unstamped if it was */
		while (push_pending(s), room(s) > 0 &&
		       pl_meter_flush(&s->meter, s->meter.t_last, &rec) == 1) {
			s->pend[s->npend++].rec = rec;
			wrap_records(s, s->npend - 1);
		}
		reg = pl_meter_register(&s->meter);
		pl_meter_init(&s->meter, &s->cfg.meter);
		pl_meter_set_register(&s->meter, reg);
		/* pulses still inside the detector or edge filter lie at or after the horizon */
		h = s->cfg.digital ? pl_edges_horizon(&s->edges) : pl_detector_horizon(&s->det);
		if (h == INT64_MIN || h > now_us)
			h = now_us;
		s->offset_us = offset_us;
		s->stamped = 1;
		pl_meter_start(&s->meter, h + offset_us);
	} else {
		s->offset_us = offset_us;
		s->stamped = 1;
	}
	push_pending(s);
	return s->npend > 0 ? -PL_ENOSPC : 0;
}
