/* SPDX-License-Identifier: MIT */
/*
 * A meter's source (live.h), whatever it is: a device, the simulator or a replayed file. It
 * is opened, read when it is due (a device on POLLIN, the others when next_wakeup() says),
 * and what it gives goes through the detector (samples) or the edge filter (edges) into the
 * meter (meter.c). Devices stamp in wall-clock time, converted here to the line time, which
 * is monotonic; a device that fails is closed and opened again with backoff while the other
 * meters carry on. A paced source's time is its own: the meter closes intervals as it reads;
 * a device's intervals are closed on a timer, just after each one's end.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "daemon/run.h"
#include "log.h"
#include "sources/src_sim.h"
#include "sources/src_trace.h"

static int is_device(const struct meter_run *m)
{
	return m->src->timeline == PL_LIVE_WALL;
}

/* The devices' line time now: monotonic, in the wall clock's terms at the start. */
int64_t line_now(const struct run *r)
{
	return pl_clock_mono_us() + r->clock_off0;
}

/* The next time to look for closed intervals: just after the open interval's end. */
static void schedule_close(const struct run *r, struct meter_run *m)
{
	int64_t iv = (int64_t)m->ch.meter.cfg.interval_s * PL_US_PER_S;
	int64_t t = line_now(r) + m->ch.offset_us; /* the meter's time: the wall clock's */
	int64_t end = (t / iv + 1) * iv;

	m->next_close_us = pl_clock_mono_us() + (end - t) + LIVE_SLACK_US +
			   (int64_t)m->cfg->debounce_us + 10000;
}

/* A device's intervals: closes what no late sample or edge can still reach, and commits it. */
static int close_intervals(struct run *r, struct meter_run *m)
{
	int64_t upto = line_now(r) - LIVE_SLACK_US;

	if (!m->ck.started)
		return 0;
	if (m->self == NULL)
		return 0; /* gone: no records while nothing is seen, the gap shows as a gap */
	if (meter_advance(r, m, upto) != 0)
		return -1;
	m->last_t = upto;
	return m->nrecs > 0 && meter_commit(r, m) < 0 ? -1 : 0;
}

static void device_failed(struct meter_run *m, const char *why)
{
	uint32_t ms = pl_backoff_next(&m->backoff, (uint32_t)pl_clock_wall_us(), 0);

	if (ms > LIVE_RETRY_CAP_MS)
		ms = LIVE_RETRY_CAP_MS;
	if (!m->failing || strcmp(why, m->error) != 0)
		pl_log(PL_LOG_ERROR, "meter %s: %s; trying again with backoff (first in %.1f s), the "
		       "other meters carry on", m->cfg->name, why, ms / 1000.0);
	snprintf(m->error, sizeof(m->error), "%s", why);
	m->failing = 1;
	m->retry_us = pl_clock_mono_us() + (int64_t)ms * 1000;
	if (m->ck.started)
		meter_flag_gap(m);
}

/* Opens a device: 1 when open, 0 when it failed (a retry is scheduled), -1 on a failure of
 * the daemon. */
static int device_open(struct run *r, struct meter_run *m)
{
	char err[256];
	/* a device of the build: its own configuration from the meter's keys; one given by
	 * device_for (a test's): the meter's configuration itself */
	int rc = r->o->device_for ? m->src->open(&m->self, m->cfg, err, sizeof(err)) :
		 pl_live_open_meter(m->src, &m->self, m->cfg, err, sizeof(err));
	/* the line is watched from here: edges after this instant are new, even if committing
	 * the resumed meter below takes a while */
	int64_t opened = line_now(r);

	if (rc != 0) {
		m->self = NULL;
		device_failed(m, err);
		return 0;
	}
	/* "back" only once data flows again (feed_read): a device that opens and fails at once
	 * (an unplugged ADC's buffer) must not reset the backoff or log twice per attempt */
	if (meter_resume(r, m, line_now(r)) != 0)
		return -1;
	if (m->src->kind == PL_LIVE_EDGES) {
		int level = m->src->level ? m->src->level(m->self) : -1;

		/* the level the line has now is the state it was already in */
		if (level >= 0 && meter_edge(r, m, opened, level) != 0)
			return -1;
	}
	schedule_close(r, m);
	return 1;
}

/* Opens the simulator or a file at the checkpoint's position; -1 when it cannot be. */
static int paced_open(struct run *r, struct meter_run *m)
{
	const struct pl_config_meter *c = m->cfg;
	double speed = r->o->have_speed ? r->o->speed : c->speed;
	char err[256];
	int rc;

	if (m->src->timeline == PL_LIVE_REPLAY) {
		struct pl_src_trace_config tc = {
			.path = c->file,
			.trace = { .format = (enum pl_trace_format)c->format, .rate_hz = c->rate_hz },
			.speed = speed,
			.start = m->ck.consumed,
		};

		rc = pl_src_trace_open(&m->self, &tc, err, sizeof(err));
	} else {
		/* A simulated meter lives in wall-clock time from now on. */
		struct pl_src_sim_config sc = {
			.imp_per_kwh = c->imp_per_kwh,
			.profile = c->profile,
			.speed = speed,
			.epoch_us = pl_clock_wall_us(),
		};

		rc = pl_src_sim_open(&m->self, &sc, err, sizeof(err));
		if (rc == 0)
			m->ck.epoch_us = sc.epoch_us;
	}
	if (rc != 0) {
		pl_log(PL_LOG_ERROR, "meter %s: %s", c->name, err);
		m->self = NULL;
		return -1;
	}
	return 0;
}

int feed_open(struct run *r, struct meter_run *m)
{
	/* A simulated or device meter goes on in wall-clock time after a restart: a new
	 * detector (what it learned may no longer hold) with the meter's settings (its limits
	 * and polarity, as meter_load() brought them up to date), the register kept. */
	if (m->src->timeline != PL_LIVE_REPLAY && m->ck.consumed > 0) {
		struct pl_detector_config dc = m->ck.det.cfg;

		if (pl_detector_init(&m->ck.det, &dc) != 0 || pl_detector_init(&m->ch.det, &dc) != 0) {
			pl_log(PL_LOG_ERROR, "meter %s: bad detector settings", m->cfg->name);
			return -1;
		}
	}
	if (is_device(m))
		return device_open(r, m) < 0 ? -1 : 0;
	if (paced_open(r, m) != 0)
		return -1;
	if (m->src->timeline == PL_LIVE_PACED && m->ck.consumed > 0 &&
	    meter_resume(r, m, m->ck.epoch_us) != 0)
		return -1;
	return 0;
}

/* An edge source about to close: the pulse whose end the filter has seen but not yet
 * accepted (the rest level is accepted only as time passes) would be lost with the filter; the
 * line was watched until now, so let that time pass first. */
int feed_settle(struct run *r, struct meter_run *m)
{
	int64_t upto = line_now(r) - LIVE_SLACK_US;

	if (!m->src || m->src->kind != PL_LIVE_EDGES || !m->self || !m->ck.started)
		return 0;
	if (upto > m->last_t)
		return meter_settle(r, m, upto);
	return 0;
}

void feed_close(struct meter_run *m)
{
	if (m->src && m->self && m->src->close)
		m->src->close(m->self);
	m->self = NULL;
}

static int feed_edges(struct run *r, struct meter_run *m, const struct pl_live_edge *e, int n,
		      int64_t to_line)
{
	for (int i = 0; i < n; i++) {
		int64_t t = e[i].t_us + to_line;

		/* an edge stamped across a step by a source's own thread (serial) */
		if (t < m->last_in_t)
			t = m->last_in_t;
		/* An edge read later than LIVE_SLACK_US after its time (the loop was busy: an
		 * fsync, a loaded machine) is older than what the filter has already let pass: it
		 * would be refused (-PL_EORDER) and its pulse lost. It counts at the filter's time
		 * instead, a few ms late. */
		if (m->ch.t_in != INT64_MIN && t < m->ch.t_in)
			t = m->ch.t_in;
		m->last_in_t = t;
		if (meter_edge(r, m, t, e[i].level) != 0)
			return -1;
		m->last_t = t;
	}
	return 0;
}

/* A paced source's input so far reaches --duration. */
static int duration_reached(const struct run *r, const struct meter_run *m)
{
	return r->o->duration_s > 0 && m->last_t - m->input0_us >= (int64_t)(r->o->duration_s * 1e6);
}

/* Feeds samples to the detector and its pulses to the meter. 1 when --duration is reached. */
static int feed_samples(struct run *r, struct meter_run *m, struct pl_sample *s, int n,
			int64_t to_line)
{
	if (is_device(m)) {
		for (int i = 0; i < n; i++) {
			s[i].t_us += to_line;
			if (s[i].t_us < m->last_in_t)
				s[i].t_us = m->last_in_t;
			m->last_in_t = s[i].t_us;
		}
	} else if (!m->ck.started) {
		pl_channel_start(&m->ch, s[0].t_us);
		m->ck.started = 1;
		m->ck.first_t = s[0].t_us;
	}
	if (!m->have_input) {
		m->have_input = 1;
		m->input0_us = s[0].t_us;
	}
	if (meter_feed(r, m, s, (size_t)n) != 0)
		return -1;
	m->last_t = s[n - 1].t_us;
	if (m->src->timeline == PL_LIVE_REPLAY && m->src->position)
		m->ck.consumed = m->src->position(m->self);
	else
		m->ck.consumed += (uint64_t)n;
	if (is_device(m))
		return 0;
	/* close the intervals no pulse can reach any more (the detector's horizon) */
	if (meter_advance(r, m, m->last_t) != 0)
		return -1;
	if (m->nrecs > 0 && meter_commit(r, m) < 0)
		return -1;
	return duration_reached(r, m);
}

/* The source returned an error: a file's is its end; a device is opened again later. */
static int read_failed(struct run *r, struct meter_run *m, const char *err, int ended)
{
	if (ended) {
		pl_log(PL_LOG_ERROR, "meter %s: %s", m->cfg->name, err);
		return 0;
	}
	if (feed_settle(r, m) != 0)
		return -1;
	feed_close(m);
	device_failed(m, err);
	return 0;
}

/* A paced meter whose store has refused for long: it stops taking samples rather than drop
 * records. */
static int held_back(const struct meter_run *m)
{
	return !is_device(m) && m->nrecs + 2 * RECS > PENDING_MAX;
}

/* Reads everything the source has due now and feeds it on. -1 on a failure of the daemon. */
static int feed_read(struct run *r, struct meter_run *m)
{
	static union {
		struct pl_sample s[LIVE_BUF];
		struct pl_live_edge e[LIVE_BUF];
	} buf;
	char err[256];

	for (;;) {
		struct pl_live_info info = { 0 };
		/* Devices stamp in wall-clock time (live.h); the pipeline runs on line time,
		 * monotonic: undone with the offset the source converted with, read just before. */
		int64_t to_line = is_device(m) ? r->clock_off0 - pl_clock_wall_minus_mono_us() : 0;
		int n, rc;

		if (held_back(m))
			return m->nrecs > 0 && meter_commit(r, m) < 0 ? -1 : 0;
		n = m->src->read(m->self, &buf, LIVE_BUF, &info, err, sizeof(err));
		if (info.lost > 0) {
			m->lost += info.lost;
			meter_flag_gap(m);
		}
		if (info.ended) {
			m->ended = 1;
			m->end_us = info.end_us;
		}
		if (n < 0)
			return read_failed(r, m, err, info.ended);
		if (n == 0)
			return 0;
		if (m->failing) {
			pl_log(PL_LOG_INFO, "meter %s: source is back", m->cfg->name);
			m->failing = 0;
			pl_backoff_reset(&m->backoff);
		}
		if (m->src->kind == PL_LIVE_EDGES)
			rc = feed_edges(r, m, buf.e, n, to_line);
		else
			rc = feed_samples(r, m, buf.s, n, to_line);
		if (rc != 0)
			return rc < 0 ? -1 : 0;
		if (is_device(m) && n < LIVE_BUF)
			return 0;
	}
}

int feed_poll_device(struct run *r, struct meter_run *m, int readable)
{
	/* An IIO buffer gives no poll event once its device is gone: a sample source that
	 * falls silent is read anyway, once a second, for the read to notice. */
	int silent = m->src->kind == PL_LIVE_SAMPLES &&
		     pl_clock_mono_us() - m->last_read_us >= PL_US_PER_S;

	if (!readable && !silent)
		return 0;
	m->last_read_us = pl_clock_mono_us();
	return m->self ? feed_read(r, m) : 0;
}

int feed_tick(struct run *r, struct meter_run *m, int64_t now)
{
	if (is_device(m)) {
		if (m->self && now >= m->next_close_us) {
			if (close_intervals(r, m) != 0)
				return -1;
			schedule_close(r, m);
		} else if (!m->self && now >= m->retry_us && device_open(r, m) < 0) {
			return -1;
		}
		return 0;
	}
	if (feed_read(r, m) != 0)
		return -1;
	if (m->ended && m->ck.consumed > 0 && m->src->timeline == PL_LIVE_REPLAY && !m->finished) {
		if (meter_finish(r, m) != 0)
			return -1;
		m->finished = 1;
	}
	/* the end of a file, not yet in the store */
	return m->finished && m->nrecs > 0 && meter_commit(r, m) < 0 ? -1 : 0;
}

int64_t feed_wake(const struct run *r, const struct meter_run *m, int64_t now, int *fd)
{
	int64_t wake;

	(void)r;
	*fd = -1;
	if (!is_device(m)) {
		if (m->finished)
			return INT64_MAX;
		if (held_back(m))
			return now + 10000;
		return m->src->next_wakeup(m->self, now);
	}
	if (!m->self)
		return m->retry_us;
	*fd = m->src->fd(m->self);
	wake = m->next_close_us;
	if (m->src->kind == PL_LIVE_SAMPLES)
		wake = MIN64(wake, m->last_read_us + PL_US_PER_S);
	return wake;
}

void feed_done(const struct run *r, const struct meter_run *m, int64_t now, int *all_eof,
	       int *all_duration)
{
	if (is_device(m)) {
		*all_eof = 0;
		/* --duration: of wall time, for a source that lives in it */
		if (!(r->o->duration_s > 0 && now - r->started_us >= (int64_t)(r->o->duration_s * 1e6)))
			*all_duration = 0;
		return;
	}
	if (!(m->src->timeline == PL_LIVE_REPLAY && m->finished && m->nrecs == 0))
		*all_eof = 0;
	if (!duration_reached(r, m))
		*all_duration = 0;
}

int64_t feed_step_at(const struct run *r, const struct meter_run *m)
{
	/* a device: what the sources stamped before now; sim: the samples read so far */
	if (is_device(m))
		return line_now(r);
	return m->have_input ? m->last_t + 1 : INT64_MIN;
}
