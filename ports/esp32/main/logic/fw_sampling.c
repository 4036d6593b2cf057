/* SPDX-License-Identifier: MIT */
/*
 * The sampling task's logic (see fw_sampling.h): the ADC's sample clock and averaging, the
 * edge ring, and moving records on into the ring; the meter's rules are the core channel's.
 */
#include "fw_sampling.h"

#include <string.h>

#include "powerlogger/common.h"
#include "powerlogger/meter_type.h"

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

void fw_sampling_config_adc(struct fw_sampling_config *cfg, const struct fw_sampling_meter *m,
			    uint32_t rate_hz, uint32_t block)
{
	fw_sampling_config_default(cfg);
	cfg->meter.imp_per_kwh = m->imp_per_kwh;
	cfg->meter.interval_s = m->interval_s;
	cfg->adc_rate_hz = rate_hz;
	cfg->block = block;
	cfg->pool_us = rate_hz == 0 ? 0 :
		       (uint32_t)((uint64_t)FW_SAMPLING_POOL_FRAMES * FW_SAMPLING_FRAME_SAMPLES *
				  1000000u / rate_hz);
	cfg->det.imp_per_kwh = m->imp_per_kwh;
	cfg->det.max_power_w = m->max_power_w;
	/* A disc's dip lasts up to seconds: the type's longest pulse (powerlogger/meter_type.h),
	 * as the Linux program's meter_type = disc. An unknown type keeps the LED's. */
	pl_meter_type_detector(&cfg->det, (int)m->meter_type);
}

int fw_sampling_init(struct fw_sampling *s, const struct fw_sampling_config *cfg,
		     struct fw_ring *out, uint32_t boot)
{
	struct pl_channel_config cc;

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
	pl_channel_config_default(&cc);
	cc.kind = cfg->digital ? PL_CHANNEL_EDGES : PL_CHANNEL_SAMPLES;
	cc.state_flags = 1;
	cc.det = cfg->det;
	cc.edges = cfg->edges;
	cc.meter = cfg->meter;
	return pl_channel_init(&s->ch, &cc);
}

int fw_sampling_set_register(struct fw_sampling *s, int64_t register_uwh)
{
	return pl_meter_set_register(&s->ch.meter, register_uwh);
}

/* Moves pending records into the ring, oldest first, while it has room. */
static void push_pending(struct fw_sampling *s)
{
	uint32_t i = 0;

	while (i < s->npend && fw_ring_push(s->out, &s->pend[i]) == 0)
		i++;
	if (i > 0) {
		memmove(s->pend, s->pend + i, (s->npend - i) * sizeof(s->pend[0]));
		s->npend -= i;
		s->stats.records += i;
	}
}

/* Moves the channel's records on: into the pending list as firmware records, into the ring. */
static void drain(struct fw_sampling *s)
{
	struct pl_interval_record recs[FW_SAMPLING_PENDING];

	for (;;) {
		size_t n;

		push_pending(s);
		n = pl_channel_take(&s->ch, recs, FW_SAMPLING_PENDING - s->npend);
		if (n == 0)
			return;
		for (size_t i = 0; i < n; i++) {
			struct fw_record *r = &s->pend[s->npend++];

			memset(r, 0, sizeof(*r));
			r->rec = recs[i];
			r->boot = s->boot;
			r->stamped = s->stamped;
		}
	}
}

/* Room for what a frame or an edge can close; else it is dropped as a gap. */
static int have_room(struct fw_sampling *s)
{
	drain(s);
	return pl_channel_pending(&s->ch) + 4 <= PL_CHANNEL_RECORDS;
}

/* The pulses the channel's last call gave the meter: counted; returns the accepted ones. */
static int count_pulses(struct fw_sampling *s)
{
	size_t n;
	const struct pl_channel_pulse *p = pl_channel_pulses(&s->ch, &n);
	int accepted = 0;

	for (size_t i = 0; i < n; i++) {
		s->stats.pulses++;
		if (p[i].pulse.flags & PL_PULSE_REJECTED) {
			s->stats.rejected++;
			continue;
		}
		accepted++;
		if (p[i].power_mw > 0)
			s->stats.power_mw = p[i].power_mw;
	}
	return accepted;
}

/* Lets time t pass in the channel: intervals no pulse can reach any more go into the ring. */
static int advance(struct fw_sampling *s, int64_t t)
{
	int accepted = 0, rc;

	do {
		rc = pl_channel_advance(&s->ch, t);
		accepted += count_pulses(s);
		drain(s);
	} while (rc == -PL_ENOSPC && pl_channel_pending(&s->ch) < PL_CHANNEL_RECORDS);
	/* a full ring: the rest when it has room again, nothing is lost */
	return accepted;
}

static void start(struct fw_sampling *s, int64_t t_mono)
{
	if (s->started)
		return;
	pl_channel_start(&s->ch, t_mono);
	s->started = 1;
}

static int feed_chunk(struct fw_sampling *s, size_t nc)
{
	size_t off = 0;
	int accepted = 0;

	while (off < nc) {
		size_t used = 0;
		int rc = pl_channel_feed(&s->ch, s->chunk + off, nc - off, &used);

		accepted += count_pulses(s);
		drain(s);
		off += used;
		if (rc == -PL_ENOSPC && used == 0 &&
		    pl_channel_pending(&s->ch) == PL_CHANNEL_RECORDS) {
			/* cannot happen unless the ring is stuck: the rest is a gap */
			fw_sampling_gap(s);
			break;
		}
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
	if (!have_room(s)) {
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
	return accepted + advance(s, last_t);
}

void fw_sampling_gap(struct fw_sampling *s)
{
	/* lost after the last sample or edge given, before the next */
	pl_channel_gap(&s->ch, PL_CHANNEL_LAST, PL_CHANNEL_NEXT);
	s->stats.gaps++;
}

int fw_sampling_edge(struct fw_sampling *s, int level, int64_t t_us)
{
	int rc, accepted;

	if (!have_room(s)) {
		fw_sampling_gap(s);
		s->stats.dropped_frames++;
		return -PL_ENOSPC;
	}
	start(s, t_us);
	rc = pl_channel_edge(&s->ch, t_us, level);
	if (rc == -PL_ENOSPC) {
		fw_sampling_gap(s); /* not taken: older pulses wait for a stuck ring */
		s->stats.dropped_frames++;
	}
	accepted = count_pulses(s);
	drain(s);
	if (accepted > 0)
		return 1;
	return rc == -PL_ERANGE ? 0 : rc;
}

int fw_sampling_edges(struct fw_sampling *s, struct fw_ring *edges)
{
	uint32_t dropped = (uint32_t)atomic_load_explicit(&edges->dropped, memory_order_relaxed);
	int lost = dropped != s->edges_dropped_seen;
	int64_t before = s->ch.t_in;
	struct fw_edge e;
	int pulses = 0;

	while (fw_ring_pop(edges, &e) == 0) {
		if (before == INT64_MIN)
			before = e.t_us; /* nothing seen before these */
		pulses += fw_sampling_edge(s, e.level, e.t_us) == 1;
	}
	if (lost) {
		/* lost at some time after the edges taken last time, up to now: every interval
		 * from the one open before these edges to the one of the next tick */
		s->edges_dropped_seen = dropped;
		pl_channel_gap(&s->ch, before, PL_CHANNEL_NEXT);
		s->stats.gaps++;
	}
	return pulses;
}

/* The change of time base, once the records of the old base can all be stamped as such. */
static int rebase(struct fw_sampling *s, int64_t now_us)
{
	drain(s);
	if (pl_channel_pending(&s->ch) > 0 || s->npend == FW_SAMPLING_PENDING)
		return -PL_ENOSPC;
	if (pl_channel_rebase(&s->ch, s->rebase_offset_us, now_us) != 0)
		return -PL_ENOSPC;
	drain(s); /* the interval closed in the old base, unstamped if it was */
	s->stamped = 1;
	s->rebase_pending = 0;
	return 0;
}

int fw_sampling_tick(struct fw_sampling *s, int64_t now_us)
{
	uint64_t before = s->stats.records;

	drain(s);
	if (s->rebase_pending)
		rebase(s, now_us);
	if (s->cfg.digital) {
		int64_t upto = now_us - FW_SAMPLING_EDGE_SLACK_US;

		start(s, upto);
		advance(s, upto);
	} else {
		advance(s, now_us);
	}
	return (int)(s->stats.records - before);
}

int fw_sampling_timebase(struct fw_sampling *s, int64_t offset_us, int64_t now_us)
{
	s->rebase_pending = 1;
	s->rebase_offset_us = offset_us;
	if (rebase(s, now_us) != 0)
		return -PL_ENOSPC;
	push_pending(s);
	return s->npend > 0 ? -PL_ENOSPC : 0;
}

/* ---- the view shared with the network task ---- */

#define VIEW_REJECTED_MASK ((UINT64_C(1) << 56) - 1)

void fw_sampling_get_view(const struct fw_sampling *s, struct fw_sampling_view *v)
{
	struct pl_detector_status ds;

	memset(v, 0, sizeof(*v));
	v->rejected = s->ch.n_rejected & VIEW_REJECTED_MASK;
	if (s->cfg.digital) {
		v->state = FW_SAMPLING_VIEW_EDGES;
		v->amplitude = -1;
		v->noise = -1;
		return;
	}
	pl_detector_status(&s->ch.det, &ds);
	v->state = (int32_t)ds.state;
	v->amplitude = ds.amplitude;
	v->noise = ds.noise;
}

int fw_sampling_share(struct fw_sampling *s, struct fw_seqpair *p)
{
	struct fw_sampling_view v;
	uint64_t a, b;

	fw_sampling_get_view(s, &v);
	if (s->shared_valid && v.state == s->shared.state && v.amplitude == s->shared.amplitude &&
	    v.noise == s->shared.noise && v.rejected == s->shared.rejected)
		return 0;
	/* a: the state + 2 (never 0: "nothing shared" reads as 0) over the rejected count */
	a = ((uint64_t)(uint8_t)(v.state + 2) << 56) | v.rejected;
	b = ((uint64_t)(uint32_t)v.amplitude << 32) | (uint32_t)v.noise;
	fw_seqpair_write(p, (int64_t)a, (int64_t)b);
	s->shared = v;
	s->shared_valid = 1;
	return 1;
}

int fw_sampling_view_read(const struct fw_seqpair *p, struct fw_sampling_view *v,
			  uint32_t *version)
{
	int64_t a, b;
	uint32_t ver;
	int rc = fw_seqpair_read(p, &a, &b, &ver);

	if (rc < 0)
		return rc;
	if (version != NULL)
		*version = ver;
	if (ver == 0 || ((uint64_t)a >> 56) == 0)
		return -PL_ENOENT;
	v->state = (int32_t)((uint64_t)a >> 56) - 2;
	v->rejected = (uint64_t)a & VIEW_REJECTED_MASK;
	v->amplitude = (int32_t)(uint32_t)((uint64_t)b >> 32);
	v->noise = (int32_t)(uint32_t)(uint64_t)b;
	return 0;
}

const char *fw_sampling_view_state_name(const struct fw_sampling_view *v)
{
	if (v->state == FW_SAMPLING_VIEW_EDGES)
		return "edges";
	return pl_detector_state_name((enum pl_detector_state)v->state);
}
