/* SPDX-License-Identifier: MIT */
/*
 * A meter: its channel (powerlogger/channel.h: the detector or the edge filter with the meter,
 * and the rules between them) fed by its source (feed.c), and the commit of the closed
 * records with the checkpoint into the store (one transaction), which kicks the sinks.
 *
 * The channel holds a few records at a time and says -PL_ENOSPC when it is full; every call
 * here takes its records into the pending ones (up to PENDING_MAX per meter) and calls again.
 * The pending ones are committed RECS / 2 at a time, so that no span, however long, needs more
 * memory than that. A store that refuses only delays: the records wait in memory. At a stop,
 * a long span still to close is left for the next run, and a pulse after one is counted with
 * the span between flagged as a gap.
 *
 * The checkpoint keeps the detector's and the meter's state (store/checkpoint.h), copied from
 * the channel at each commit and restored into it at the start.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "daemon/run.h"
#include "log.h"
#include "powerlogger/detector.h"
#include "powerlogger/meter_type.h"
#include "sources/src_sim.h"
#include "sources/src_trace.h"

int meter_commit(struct run *r, struct meter_run *m)
{
	int64_t now = pl_clock_mono_us();
	int rc;

	if (r->store_failing && now < r->store_retry_us)
		return 1;
	if (r->store_failing)
		daemon_prune(r); /* the sinks may have caught up: room again within the size bound */
	if (m->ch.cfg.kind == PL_CHANNEL_SAMPLES)
		m->ck.det = m->ch.det;
	m->ck.meter = m->ch.meter;
	rc = pl_store_commit_interval(r->store, m->id, m->recs, m->nrecs, &m->ck, sizeof(m->ck));
	if (rc == -PL_ECORRUPT || rc == -PL_EINVAL) {
		pl_log(PL_LOG_ERROR, "store: %s", pl_store_error(r->store));
		return -1;
	}
	if (rc != 0) {
		if (!r->store_failing)
			pl_log(PL_LOG_ERROR, "store: %s; new records wait in memory (at most %d per meter),"
			       " retrying every %d s", pl_store_error(r->store), PENDING_MAX,
			       (int)(STORE_RETRY_US / PL_US_PER_S));
		r->store_failing = 1;
		r->store_retry_us = now + STORE_RETRY_US;
		return 1;
	}
	if (r->store_failing)
		pl_log(PL_LOG_INFO, "store: writing again (%zu records of meter %s were waiting)",
		       m->nrecs, m->cfg->name);
	r->store_failing = 0;
	if (!r->moved)
		store_check_place(r);
	for (size_t i = 0; i < m->nrecs; i++) {
		m->c_pulses += m->recs[i].pulses;
		m->c_rejected += m->recs[i].rejected;
		m->c_gaps += (m->recs[i].flags & (PL_Q_GAP | PL_Q_PARTIAL)) != 0;
	}
	if (m->nrecs > 0) {
		m->last = m->recs[m->nrecs - 1];
		m->have_last = 1;
		r->gen++;
		for (size_t i = 0; i < r->nsinks; i++)
			pl_deliver_kick(r->sinks[i].d, r->gen, r->flushing);
	}
	m->nrecs = 0;
	return 0;
}

/* Room for at least `room` more records; -1 when out of memory or at PENDING_MAX. */
static int reserve(struct meter_run *m, size_t room)
{
	size_t want = m->nrecs + room, cap = m->rcap ? m->rcap : RECS;
	struct pl_interval_record *p;

	if (want <= m->rcap)
		return 0;
	while (cap < want)
		cap *= 2;
	if (cap > PENDING_MAX)
		return -1;
	p = realloc(m->recs, cap * sizeof(*p));
	if (p == NULL)
		return -1;
	m->recs = p;
	m->rcap = cap;
	return 0;
}

/* Commits when enough records are pending; a refusing store only delays it. */
static int take(struct run *r, struct meter_run *m, size_t n)
{
	m->nrecs += n;
	if (m->nrecs >= RECS / 2)
		return meter_commit(r, m) < 0 ? -1 : 0;
	return 0;
}

/* What a pending settings change did, once the channel put it into effect. */
static void switched(const struct run *r, struct meter_run *m)
{
	const struct pl_meter *mt = &m->ch.meter;

	if (!m->switch_pending || m->ch.switch_pending)
		return;
	m->switch_pending = 0;
	if (!r->o->quiet)
		pl_log(PL_LOG_INFO, "meter %s: now %" PRIu32 " s intervals at %" PRIu32 " imp/kWh",
		       m->cfg->name, mt->cfg.interval_s, mt->cfg.imp_per_kwh);
}

/* The records the channel queued into the pending ones. -1 when they cannot be held. */
static int drain(struct run *r, struct meter_run *m)
{
	size_t n;

	if (reserve(m, PL_CHANNEL_RECORDS) != 0)
		return -1;
	n = pl_channel_take(&m->ch, m->recs + m->nrecs, PL_CHANNEL_RECORDS);
	switched(r, m);
	return take(r, m, n);
}

/* After a channel call that returned rc: 1 to call again (its queue was full), 0 when done,
 * -1 on a failure. */
static int again(struct run *r, struct meter_run *m, int rc)
{
	if (drain(r, m) != 0) {
		pl_log(PL_LOG_ERROR, "meter %s: out of memory for pending records", m->cfg->name);
		return -1;
	}
	if (m->ch.n_late != m->late_logged) {
		/* Cannot happen while line times only grow; should it, the pulse counts in the
		 * open interval rather than being lost. */
		if (m->late_logged == 0)
			pl_log(PL_LOG_WARNING, "meter %s: a pulse stamped before the meter's time: "
			       "counted in the open interval", m->cfg->name);
		m->late_logged = m->ch.n_late;
	}
	if (rc == -PL_ENOSPC)
		return 1;
	if (rc == 0 || rc == -PL_ERANGE) /* a pulse beyond the meter's range: dropped */
		return 0;
	pl_log(PL_LOG_ERROR, "meter %s: %s", m->cfg->name, pl_strerror(rc));
	return -1;
}

/* At a stop, a pulse after a long silent stretch: the rest of the stretch is flagged as a
 * gap instead of closed interval by interval. */
static int skip_at_stop(struct run *r, struct meter_run *m)
{
	if (!daemon_stopping())
		return 0;
	pl_channel_skip(&m->ch);
	return again(r, m, 0);
}

int meter_feed(struct run *r, struct meter_run *m, const struct pl_sample *s, size_t n)
{
	size_t off = 0;

	/* until every sample is taken and every pulse of theirs given to the meter */
	while (off < n || m->ch.pulse_next < m->ch.npulses) {
		size_t used = 0;
		int rc = pl_channel_feed(&m->ch, s + off, n - off, &used), a;

		off += used;
		a = again(r, m, rc);
		if (a < 0 || (a > 0 && skip_at_stop(r, m) != 0))
			return -1;
	}
	return 0;
}

int meter_edge(struct run *r, struct meter_run *m, int64_t t, int level)
{
	int rc, a;

	do {
		rc = pl_channel_edge(&m->ch, t, level);
		a = again(r, m, rc);
		if (a < 0 || (a > 0 && skip_at_stop(r, m) != 0))
			return -1;
	} while (a > 0);
	/* the edge's pulse may still wait for room: given on now, at the edge's time */
	while (m->ch.pulse_next < m->ch.npulses) {
		a = again(r, m, pl_channel_settle(&m->ch, t));
		if (a < 0 || (a > 0 && skip_at_stop(r, m) != 0))
			return -1;
	}
	return 0;
}

int meter_advance(struct run *r, struct meter_run *m, int64_t t)
{
	int a;

	/* a stop ends it early: the rest is closed on the next call (or the next run) */
	do {
		int rc = pl_channel_advance(&m->ch, t);

		if (reserve(m, PL_CHANNEL_RECORDS) != 0)
			return 0; /* at PENDING_MAX: the rest when the store takes them */
		a = again(r, m, rc);
	} while (a > 0 && !daemon_stopping());
	return a < 0 ? -1 : 0;
}

int meter_settle(struct run *r, struct meter_run *m, int64_t t)
{
	int a;

	do {
		a = again(r, m, pl_channel_settle(&m->ch, t));
		if (a > 0 && skip_at_stop(r, m) != 0)
			return -1;
	} while (a > 0);
	return a;
}

void format_span(char *buf, size_t len, int64_t us)
{
	double s = (double)(us < 0 ? -us : us) / 1e6;

	if (s < 120)
		snprintf(buf, len, "%.3f s", s);
	else if (s < 7200)
		snprintf(buf, len, "%.1f min", s / 60);
	else if (s < 2 * 86400)
		snprintf(buf, len, "%.2f h", s / 3600);
	else
		snprintf(buf, len, "%.2f days", s / 86400);
}

/*
 * A meter that goes on in wall-clock time after a pause (a restart of the daemon, a source
 * that was gone), at line time now: if the open interval is over, the channel closes it where
 * observation stopped (PL_Q_PARTIAL, PL_Q_GAP) and a new observation starts now, so the pause
 * gives no records rather than records of zero pulses; within the same interval it just goes
 * on, flagged.
 */
int meter_resume(struct run *r, struct meter_run *m, int64_t now)
{
	const struct pl_channel *ch = &m->ch;
	int64_t off = ch->offset_us + (ch->step_pending && now >= ch->step_at ? ch->step_delta : 0);
	int was_open = ch->meter.cur_start != INT64_MIN, a;

	if (m->ck.started && ch->meter.cur_start != INT64_MIN && now + off < ch->meter.t_last) {
		/* The clock is behind the checkpoint (stepped back while stopped, or not yet set
		 * at boot): the channel steps back, so that no pulse is refused and no start is
		 * written twice. */
		char span[32];

		format_span(span, sizeof(span), ch->meter.t_last - (now + off));
		pl_log(PL_LOG_WARNING, "meter %s: the wall clock is %s behind the meter's last time; "
		       "the open interval stays open until the clock is back at its end (flagged as "
		       "a gap)", m->cfg->name, span);
	}
	do {
		a = again(r, m, pl_channel_resume(&m->ch, now));
	} while (a > 0);
	if (a < 0)
		return -1;
	if ((!m->ck.started || !was_open) && ch->meter.cur_start != INT64_MIN) {
		/* a new observation from now */
		m->ck.started = 1;
		m->ck.first_t = now + ch->offset_us;
	}
	return 0;
}

/* The end of a file: the detector's last pulses, every interval closed up to where the input
 * ends (the source says where: one sample period after its last sample). */
int meter_finish(struct run *r, struct meter_run *m)
{
	int64_t end = m->end_us ? m->end_us : m->last_t + 1;
	int a;

	do {
		int rc = pl_channel_finish(&m->ch, end);

		/* an end before the meter's time (a file resumed after its end): nothing to close */
		a = again(r, m, rc == -PL_EORDER ? 0 : rc);
	} while (a > 0);
	if (a < 0)
		return -1;
	return meter_commit(r, m) < 0 ? -1 : 0;
}

/* The wall clock was stepped by d: the channel follows it once the input reaches `at`. */
void meter_clock_step(struct meter_run *m, int64_t at, int64_t d)
{
	pl_channel_step(&m->ch, at, d);
}

void meter_flag_gap(struct meter_run *m)
{
	pl_channel_flag(&m->ch, PL_Q_GAP);
}

/* The detector's settings for a configured meter: its limits, polarity and the meter type's
 * defaults (a disc's slow dip, powerlogger/meter_type.h). 0, or -1 for a bad type. */
static int meter_detector_config(const struct pl_config_meter *c, struct pl_detector_config *dc)
{
	pl_detector_config_default(dc);
	dc->imp_per_kwh = c->imp_per_kwh;
	dc->max_power_w = c->max_power_w;
	dc->polarity = (int8_t)c->polarity;
	if (pl_meter_type_detector(dc, c->meter_type) != 0) {
		pl_log(PL_LOG_ERROR, "meter %s: unknown meter type %d", c->name, c->meter_type);
		return -1;
	}
	return 0;
}

/*
 * The checkpoint holds the detector's and the meter's settings as they were when it was
 * written; the configuration may have changed since. The detector's limits (meter constant,
 * maximum power) change at once and it keeps what it learned; a changed polarity or meter type
 * (its longest pulse) makes it learn again. Called before the channel takes the checkpoint
 * over.
 */
static int detector_settings_changed(struct meter_run *m)
{
	const struct pl_config_meter *c = m->cfg;
	struct pl_detector *d = &m->ck.det;
	struct pl_detector_config want;

	if (meter_detector_config(c, &want) != 0)
		return -1;
	if (d->cfg.imp_per_kwh != c->imp_per_kwh || d->cfg.max_power_w != c->max_power_w) {
		pl_log(PL_LOG_INFO, "meter %s: max_power_w %" PRIu32 " -> %" PRIu32 ", imp_per_kwh %"
		       PRIu32 " -> %" PRIu32 " since the last run: the detector's limits follow",
		       c->name, d->cfg.max_power_w, c->max_power_w, d->cfg.imp_per_kwh,
		       c->imp_per_kwh);
		pl_detector_set_limits(d, c->imp_per_kwh, c->max_power_w);
	}
	if (d->cfg.polarity != c->polarity || d->cfg.max_width_us != want.max_width_us) {
		pl_log(PL_LOG_INFO, "meter %s: %s changed since the last run: the detector learns "
		       "the signal again", c->name,
		       d->cfg.polarity != c->polarity ? "polarity" : "meter_type");
		if (pl_detector_init(d, &want) != 0)
			return -1;
	}
	return 0;
}

/*
 * The meter's constant and interval length, changed since the checkpoint, change at the next
 * boundary of both lengths after the open interval (pl_channel_reconfigure()). Logged.
 */
static int meter_settings_changed(struct meter_run *m)
{
	const struct pl_config_meter *c = m->cfg;
	const struct pl_meter *mt = &m->ch.meter;
	struct pl_meter_config mc = { .imp_per_kwh = c->imp_per_kwh, .interval_s = c->interval_s };
	char what[160] = "", stamp[32];
	size_t w = 0;
	time_t ts;
	struct tm tm;
	int rc;

	if (mt->cfg.imp_per_kwh == mc.imp_per_kwh && mt->cfg.interval_s == mc.interval_s)
		return 0;
	if (mt->cfg.interval_s != mc.interval_s)
		w += (size_t)snprintf(what + w, sizeof(what) - w, "interval_s %" PRIu32 " -> %"
				      PRIu32 ", ", mt->cfg.interval_s, mc.interval_s);
	if (mt->cfg.imp_per_kwh != mc.imp_per_kwh)
		snprintf(what + w, sizeof(what) - w, "imp_per_kwh %" PRIu32 " -> %" PRIu32 ", ",
			 mt->cfg.imp_per_kwh, mc.imp_per_kwh);
	rc = pl_channel_reconfigure(&m->ch, &mc);
	if (rc < 0)
		return -1;
	if (rc == 0) {
		/* no interval open: nothing to finish first */
		pl_log(PL_LOG_INFO, "meter %s: %ssince the last run: in effect now, the register goes on",
		       c->name, what);
		return 0;
	}
	m->switch_pending = 1;
	ts = (time_t)(m->ch.switch_at / PL_US_PER_S);
	gmtime_r(&ts, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	pl_log(PL_LOG_INFO, "meter %s: %ssince the last run: in effect from %s (the next boundary "
	       "of both interval lengths), the register goes on", c->name, what, stamp);
	return 0;
}

/* A new meter, or one whose checkpoint cannot be used: a fresh detector and meter. */
static int meter_fresh(struct meter_run *m)
{
	const struct pl_config_meter *c = m->cfg;
	struct pl_detector_config dc;
	struct pl_meter_config mc = { .imp_per_kwh = c->imp_per_kwh, .interval_s = c->interval_s };

	memset(&m->ck, 0, sizeof(m->ck));
	m->ck.magic = PL_CKPT_MAGIC;
	m->ck.version = PL_CKPT_VERSION;
	m->ck.det_size = sizeof(m->ck.det);
	m->ck.meter_size = sizeof(m->ck.meter);
	if (meter_detector_config(c, &dc) != 0 || pl_detector_init(&m->ck.det, &dc) != 0 ||
	    pl_meter_init(&m->ck.meter, &mc) != 0) {
		pl_log(PL_LOG_ERROR, "meter %s: bad detector or meter settings", c->name);
		return -1;
	}
	pl_meter_set_register(&m->ck.meter, c->start_register_uwh);
	return 0;
}

/* The source ops of a meter's configured kind; NULL when it is not built in. */
static const struct pl_live_ops *source_for(const struct run *r, const struct pl_config_meter *c)
{
	if (c->source == PL_CONFIG_SOURCE_SIM)
		return &pl_src_sim;
	if (c->source == PL_CONFIG_SOURCE_FILE)
		return &pl_src_trace;
	return r->o->device_for ? r->o->device_for(c) : pl_live_ops_for(c->source);
}

/* The channel for the source's kind, taking the checkpoint's detector and meter over. */
static int channel_setup(struct meter_run *m)
{
	const struct pl_config_meter *c = m->cfg;
	struct pl_channel_config cc;

	pl_channel_config_default(&cc);
	cc.kind = m->src->kind == PL_LIVE_EDGES ? PL_CHANNEL_EDGES : PL_CHANNEL_SAMPLES;
	cc.det = m->ck.det.cfg;
	cc.edges.min_high_us = cc.edges.min_low_us = c->debounce_us;
	cc.edges.active_low = (uint8_t)(c->active_low != 0);
	cc.edges.imp_per_kwh = c->imp_per_kwh;
	cc.edges.max_power_w = c->max_power_w;
	cc.meter = m->ck.meter.cfg;
	if (pl_channel_init(&m->ch, &cc) != 0 || pl_channel_restore(&m->ch, &m->ck.det, &m->ck.meter) != 0)
		return -1;
	return 0;
}

int meter_load(struct run *r, struct meter_run *m)
{
	const struct pl_config_meter *c = m->cfg;
	size_t len = 0;
	int rc, resumed;

	if (pl_store_meter(r->store, c->name, c->imp_per_kwh, c->interval_s, &m->id) != 0) {
		pl_log(PL_LOG_ERROR, "store: %s", pl_store_error(r->store));
		return -1;
	}
	rc = pl_store_load_checkpoint(r->store, m->id, &m->ck, sizeof(m->ck), &len);
	resumed = rc == 0 && pl_checkpoint_valid(&m->ck, len);
	if (resumed) {
		if (!r->o->quiet)
			pl_log(PL_LOG_INFO, "meter %s: resuming from its checkpoint (%" PRIu64
			       " samples in, register %.3f kWh)", c->name, m->ck.consumed,
			       (double)pl_meter_register(&m->ck.meter) / 1e9);
		if (detector_settings_changed(m) != 0) {
			pl_log(PL_LOG_ERROR, "meter %s: bad detector or meter settings", c->name);
			return -1;
		}
	} else {
		if (rc == 0 || rc == -PL_ENOSPC)
			pl_log(PL_LOG_WARNING, "meter %s: checkpoint of another version ignored",
			       c->name);
		else if (rc != -PL_ENOENT) {
			pl_log(PL_LOG_ERROR, "store: %s", pl_store_error(r->store));
			return -1;
		}
		if (meter_fresh(m) != 0)
			return -1;
	}
	m->src = source_for(r, c);
	if (m->src == NULL) {
		pl_log(PL_LOG_ERROR, "meter %s: source %s is not built into this program",
		       c->name, pl_config_source_name(c->source));
		return -1;
	}
	if (channel_setup(m) != 0 || (resumed && meter_settings_changed(m) != 0)) {
		pl_log(PL_LOG_ERROR, "meter %s: bad detector or meter settings", c->name);
		return -1;
	}
	return 0;
}
