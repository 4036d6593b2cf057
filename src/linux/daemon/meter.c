/*
 * A meter's records: the meter (powerlogger/meter.h) fed with pulses, advanced to a time,
 * switched to changed settings at a boundary, stepped with the wall clock, resumed after a
 * pause, finished at the end of its input; and the commit of its closed records with its
 * checkpoint into the store (one transaction), which kicks the sinks. A store that refuses
 * only delays: the records wait in memory, up to PENDING_MAX per meter.
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
#include "sources/src_sim.h"
#include "sources/src_trace.h"

/*
 * Commits the meter's pending records with its checkpoint. Returns 0, 1 when the store refuses
 * (full disk, size bound, I/O error: the records stay pending in memory and are retried every
 * STORE_RETRY_US, reported once), or -1 on a failure that ends the daemon (a damaged store).
 */
int meter_commit(struct run *r, struct meter_run *m)
{
	int64_t now = pl_clock_mono_us();
	int rc;

	if (r->store_failing && now < r->store_retry_us)
		return 1;
	if (r->store_failing)
		daemon_prune(r); /* the sinks may have caught up: room again within the size bound */
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
int meter_reserve(struct meter_run *m, size_t room)
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
int meter_take(struct run *r, struct meter_run *m, size_t n)
{
	m->nrecs += n;
	if (m->nrecs >= RECS / 2)
		return meter_commit(r, m) < 0 ? -1 : 0;
	return 0;
}

/* The first multiple of iv at or after t (t may be negative: replayed traces start at 0). */
static int64_t align_up(int64_t t, int64_t iv)
{
	int64_t q = t / iv * iv;

	return q < t ? q + iv : q;
}

/*
 * Puts the settings changed since the checkpoint into effect once the meter reaches
 * switch_us: every interval of the old length up to there is closed (the last one cut short
 * when switch_us is not one of its boundaries), the meter starts again with the new settings
 * at switch_us, a boundary of the new length, and the register goes on. So no record of the
 * new length overlaps one of the old (records are keyed by their start) and the energies
 * still add up to the register. Called before the meter is given any time t.
 */
static int meter_switch(struct run *r, struct meter_run *m, int64_t t)
{
	struct pl_meter *mt = &m->ck.meter;
	struct pl_interval_record rec;
	int64_t reg;
	size_t n;

	if (!m->switch_pending || t < m->switch_us)
		return 0;
	do {
		if (meter_reserve(m, RECS) != 0)
			return -1;
		n = pl_meter_advance(mt, m->switch_us, m->recs + m->nrecs, RECS);
		if (meter_take(r, m, n) != 0)
			return -1;
	} while (n == RECS);
	while (pl_meter_flush(mt, m->switch_us, &rec) == 1) {
		if (meter_reserve(m, 1) != 0)
			return -1;
		m->recs[m->nrecs++] = rec;
	}
	reg = pl_meter_register(mt);
	if (pl_meter_init(mt, &m->switch_cfg) != 0)
		return -1;
	pl_meter_set_register(mt, reg);
	pl_meter_start(mt, m->switch_us);
	m->switch_pending = 0;
	if (!r->o->quiet)
		pl_log(PL_LOG_INFO, "meter %s: now %" PRIu32 " s intervals at %" PRIu32 " imp/kWh",
		       m->cfg->name, mt->cfg.interval_s, mt->cfg.imp_per_kwh);
	return meter_take(r, m, 0);
}

/*
 * Closes every interval that ends at or before t (meter time), RECS at a time with a commit
 * between, so that no span, however long, needs more memory than that. A stop request ends it
 * early: the rest is closed on the next call.
 */
int meter_advance(struct run *r, struct meter_run *m, int64_t t)
{
	if (meter_switch(r, m, t) != 0)
		return -1;
	for (;;) {
		size_t n;

		if (meter_reserve(m, RECS) != 0)
			return 0; /* at PENDING_MAX: the rest when the store takes them */
		n = pl_meter_advance(&m->ck.meter, t, m->recs + m->nrecs, RECS);
		if (meter_take(r, m, n) != 0)
			return -1;
		if (n < RECS || daemon_stopping())
			return 0;
	}
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

/* Applies the meter's pending clock step: intervals up to the step instant close as usual,
 * then pl_meter_step() (meter.h) flags the gap; from here on the stamps follow the new clock. */
static int apply_step(struct run *r, struct meter_run *m)
{
	struct pl_interval_record rec;
	int64_t t = m->step_at == INT64_MIN ? INT64_MIN : m->step_at + m->shift_us;
	int rc;

	m->step_pending = 0;
	if (m->ck.started && m->ck.meter.cur_start != INT64_MIN && t > m->ck.meter.t_last &&
	    meter_advance(r, m, t) != 0)
		return -1;
	rc = pl_meter_step(&m->ck.meter, m->step_delta, &rec);
	if (rc < 0)
		pl_log(PL_LOG_ERROR, "meter %s: cannot follow the clock step: %s", m->cfg->name,
		       pl_strerror(rc));
	if (rc == 1) {
		if (meter_reserve(m, 1) != 0) {
			pl_log(PL_LOG_ERROR, "meter %s: out of memory for pending records", m->cfg->name);
			return -1;
		}
		m->recs[m->nrecs++] = rec;
	}
	if (rc >= 0)
		m->shift_us += m->step_delta;
	return meter_take(r, m, 0);
}

/* A pending clock step takes effect once the line time t_line reaches it. */
int meter_reach(struct run *r, struct meter_run *m, int64_t t_line)
{
	if (m->step_pending && t_line >= m->step_at)
		return apply_step(r, m);
	return 0;
}

/* Feeds a pulse (line time) to the meter. Never refuses it: the energy is real. */
int meter_pulse(struct run *r, struct meter_run *m, const struct pl_pulse *p)
{
	struct pl_pulse q = *p;

	if (meter_reach(r, m, p->t_us) != 0)
		return -1;
	q.t_us = p->t_us + m->shift_us;
	if (meter_switch(r, m, q.t_us) != 0) {
		pl_log(PL_LOG_ERROR, "meter %s: out of memory for pending records", m->cfg->name);
		return -1;
	}
	for (;;) {
		size_t n = 0;
		int rc;

		if (meter_reserve(m, 8) != 0) {
			pl_log(PL_LOG_ERROR, "meter %s: out of memory for pending records", m->cfg->name);
			return -1;
		}
		rc = pl_meter_pulse(&m->ck.meter, &q, &m->power_mw, m->recs + m->nrecs,
				    m->rcap - m->nrecs, &n);
		if (meter_take(r, m, n) != 0)
			return -1;
		if (rc == -PL_ENOSPC) {
			/* Intervals without pulses before it (a stall, a trace's silent stretch):
			 * closed in bounded steps; at a stop the rest is flagged as a gap instead. */
			struct pl_interval_record rec;

			if (meter_advance(r, m, q.t_us) != 0)
				return -1;
			if (daemon_stopping() && pl_meter_step(&m->ck.meter, 0, &rec) == 1) {
				if (meter_reserve(m, 1) != 0)
					return -1;
				m->recs[m->nrecs++] = rec;
			}
			continue;
		}
		if (rc == -PL_EORDER) {
			/* Cannot happen while line times only grow; should it, the pulse counts in
			 * the open interval rather than being lost. */
			if (!m->eorder_logged)
				pl_log(PL_LOG_WARNING, "meter %s: a pulse stamped %" PRId64 " us before the "
				       "meter's time: counted in the open interval", m->cfg->name,
				       m->ck.meter.t_last - q.t_us);
			m->eorder_logged = 1;
			q.t_us = m->ck.meter.t_last;
			continue;
		}
		return 0;
	}
}

/*
 * A meter that goes on in wall-clock time after a pause (a restart of the daemon, a source
 * that was gone): if the open interval is over, it is closed where observation stopped
 * (PL_Q_PARTIAL, PL_Q_GAP) and a new observation starts now, so the pause gives no records
 * rather than records of zero pulses; within the same interval it just goes on, flagged.
 */
int meter_resume(struct run *r, struct meter_run *m, int64_t now)
{
	struct pl_meter *mt = &m->ck.meter;
	int64_t iv = (int64_t)mt->cfg.interval_s * PL_US_PER_S;
	struct pl_interval_record rec;

	if (!m->ck.started || mt->cur_start == INT64_MIN) {
		if (pl_meter_start(mt, now) == 0) {
			m->ck.started = 1;
			m->ck.first_t = now;
		}
		return 0;
	}
	if (now < mt->t_last) {
		/* The clock is behind the checkpoint (stepped back while stopped, or not yet set
		 * at boot): a step back, so that no pulse is refused and no start written twice. */
		char span[32];

		format_span(span, sizeof(span), mt->t_last - now);
		pl_log(PL_LOG_WARNING, "meter %s: the wall clock is %s behind the meter's last time; the "
		       "open interval stays open until the clock is back at its end (flagged as a gap)",
		       m->cfg->name, span);
		if (pl_meter_step(mt, now - mt->t_last, &rec) == 1) {
			if (meter_reserve(m, 1) != 0)
				return -1;
			m->recs[m->nrecs++] = rec;
		}
		if (mt->cur_start == INT64_MIN) {
			if (pl_meter_start(mt, now) == 0)
				m->ck.first_t = now;
			return meter_take(r, m, 0);
		}
	}
	pl_meter_flag(mt, PL_Q_GAP);
	if (mt->cur_start + iv > now)
		return meter_take(r, m, 0);
	while (pl_meter_flush(mt, mt->t_last, &rec) == 1) {
		if (meter_reserve(m, 1) != 0)
			return -1;
		m->recs[m->nrecs++] = rec;
	}
	pl_meter_start(mt, now);
	if (m->switch_pending)
		m->switch_us = align_up(mt->cur_start + iv, (int64_t)m->switch_cfg.interval_s *
					PL_US_PER_S);
	return meter_take(r, m, 0);
}

/* The end of a file: the detector's last pulses, every interval closed up to where the input
 * ends (the source says where: one sample period after its last sample). */
int meter_finish(struct run *r, struct meter_run *m)
{
	struct pl_pulse pulses[PL_DETECTOR_MIN_OUT * 2];
	size_t np = 0;
	struct pl_interval_record rec;
	int64_t end = m->end_us ? m->end_us : m->last_t + 1;

	pl_detector_finish(&m->ck.det, pulses, sizeof(pulses) / sizeof(pulses[0]), &np);
	for (size_t i = 0; i < np; i++)
		if (meter_pulse(r, m, &pulses[i]) != 0)
			return -1;
	for (;;) {
		int rc = pl_meter_flush(&m->ck.meter, end, &rec);
		if (rc <= 0)
			break;
		if (meter_reserve(m, 1) != 0) {
			pl_log(PL_LOG_ERROR, "meter %s: out of memory for pending records", m->cfg->name);
			return -1;
		}
		m->recs[m->nrecs++] = rec;
		if (meter_take(r, m, 0) != 0)
			return -1;
	}
	return meter_commit(r, m) < 0 ? -1 : 0;
}

/*
 * The checkpoint holds the detector's and the meter's settings as they were when it was
 * written; the configuration may have changed since. The detector's limits (meter constant,
 * maximum power) change at once and it keeps what it learned; a changed polarity makes it
 * learn again. The meter's constant and interval length change at the next boundary of both
 * lengths after the open interval (meter_switch()). Each change is logged.
 */
int meter_settings_changed(struct run *r, struct meter_run *m)
{
	const struct pl_config_meter *c = m->cfg;
	struct pl_detector *d = &m->ck.det;
	struct pl_meter *mt = &m->ck.meter;
	struct pl_meter_config mc = { .imp_per_kwh = c->imp_per_kwh, .interval_s = c->interval_s };
	char what[160] = "";
	size_t w = 0;

	if (d->cfg.imp_per_kwh != c->imp_per_kwh || d->cfg.max_power_w != c->max_power_w) {
		pl_log(PL_LOG_INFO, "meter %s: max_power_w %" PRIu32 " -> %" PRIu32 ", imp_per_kwh %"
		       PRIu32 " -> %" PRIu32 " since the last run: the detector's limits follow",
		       c->name, d->cfg.max_power_w, c->max_power_w, d->cfg.imp_per_kwh,
		       c->imp_per_kwh);
		pl_detector_set_limits(d, c->imp_per_kwh, c->max_power_w);
	}
	if (d->cfg.polarity != c->polarity) {
		struct pl_detector_config dc = d->cfg;

		pl_log(PL_LOG_INFO, "meter %s: polarity changed since the last run: the detector learns "
		       "the signal again", c->name);
		dc.polarity = (int8_t)c->polarity;
		if (pl_detector_init(d, &dc) != 0)
			return -1;
	}
	if (mt->cfg.imp_per_kwh == mc.imp_per_kwh && mt->cfg.interval_s == mc.interval_s)
		return 0;
	if (mt->cfg.interval_s != mc.interval_s)
		w += (size_t)snprintf(what + w, sizeof(what) - w, "interval_s %" PRIu32 " -> %"
				      PRIu32 ", ", mt->cfg.interval_s, mc.interval_s);
	if (mt->cfg.imp_per_kwh != mc.imp_per_kwh)
		snprintf(what + w, sizeof(what) - w, "imp_per_kwh %" PRIu32 " -> %" PRIu32 ", ",
			 mt->cfg.imp_per_kwh, mc.imp_per_kwh);
	if (mt->cur_start == INT64_MIN) {
		/* no interval open: nothing to finish first */
		int64_t reg = pl_meter_register(mt), t_last = mt->t_last;

		if (pl_meter_init(mt, &mc) != 0)
			return -1;
		pl_meter_set_register(mt, reg);
		if (t_last != INT64_MIN)
			pl_meter_start(mt, align_up(t_last, (int64_t)mc.interval_s * PL_US_PER_S));
		pl_log(PL_LOG_INFO, "meter %s: %ssince the last run: in effect now, the register goes on",
		       c->name, what);
		return 0;
	}
	m->switch_pending = 1;
	m->switch_cfg = mc;
	m->switch_us = align_up(mt->cur_start + (int64_t)mt->cfg.interval_s * PL_US_PER_S,
				(int64_t)mc.interval_s * PL_US_PER_S);
	{
		time_t ts = (time_t)(m->switch_us / PL_US_PER_S);
		struct tm tm;
		char stamp[32];

		gmtime_r(&ts, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
		pl_log(PL_LOG_INFO, "meter %s: %ssince the last run: in effect from %s (the next "
		       "boundary of both interval lengths), the register goes on", c->name, what,
		       stamp);
	}
	(void)r;
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
	pl_detector_config_default(&dc);
	dc.imp_per_kwh = c->imp_per_kwh;
	dc.max_power_w = c->max_power_w;
	dc.polarity = (int8_t)c->polarity;
	if (pl_detector_init(&m->ck.det, &dc) != 0 || pl_meter_init(&m->ck.meter, &mc) != 0) {
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

int meter_load(struct run *r, struct meter_run *m)
{
	const struct pl_config_meter *c = m->cfg;
	size_t len = 0;
	int rc;

	if (pl_store_meter(r->store, c->name, c->imp_per_kwh, c->interval_s, &m->id) != 0) {
		pl_log(PL_LOG_ERROR, "store: %s", pl_store_error(r->store));
		return -1;
	}
	rc = pl_store_load_checkpoint(r->store, m->id, &m->ck, sizeof(m->ck), &len);
	if (rc == 0 && pl_checkpoint_valid(&m->ck, len)) {
		if (!r->o->quiet)
			pl_log(PL_LOG_INFO, "meter %s: resuming from its checkpoint (%" PRIu64
			       " samples in, register %.3f kWh)", c->name, m->ck.consumed,
			       (double)pl_meter_register(&m->ck.meter) / 1e9);
		if (meter_settings_changed(r, m) != 0) {
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
	return 0;
}
