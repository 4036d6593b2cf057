/* SPDX-License-Identifier: MIT */
/*
 * The status line: each meter's power, today's energy and register, each sink's state and
 * backlog. Live on a terminal (rewritten in place every second), a log line a minute
 * otherwise (the journal). And the same state for others: the MQTT sinks' diagnostics and the
 * web server's live box (http/live.h), both filled here, in the loop's thread.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "daemon/run.h"
#include "log.h"
#include "powerlogger/detector.h"

/* Counts a sink's backlog now and then: a long one is counted less often (it is a scan). */
static void count_backlog(struct run *r, struct sink_run *k)
{
	int64_t now = pl_clock_mono_us(), oldest;
	uint64_t count = 0;

	if (k->backlog_at_us != 0 && now - k->backlog_at_us < 100 * k->backlog_cost_us)
		return;
	if (pl_store_backlog(r->store, k->id, &count, &oldest) == 0)
		k->backlog = count;
	k->backlog_at_us = pl_clock_mono_us();
	k->backlog_cost_us = k->backlog_at_us - now;
}

/*
 * What the MQTT sinks publish on P/M/diag: each meter's detector (the loop's, so it is read
 * here, in the loop's thread) and the sink's backlog, put into each sink's box.
 */
void status_mqtt_diag(struct run *r)
{
	for (size_t j = 0; j < r->nsinks; j++) {
		struct sink_run *k = &r->sinks[j];

		if (k->box == NULL)
			continue;
		count_backlog(r, k);
		pl_mqtt_box_backlog(k->box, k->backlog);
		for (size_t i = 0; i < r->nmeters; i++) {
			const struct meter_run *m = &r->meters[i];
			struct pl_mqtt_diag d = { .detector_state = "edges", .amplitude = -1,
						  .noise = -1, .rejected_total = m->ch.n_rejected,
						  .updated_us = pl_clock_wall_us() };
			struct pl_detector_status ds;

			if (m->ch.cfg.kind != PL_CHANNEL_EDGES) {
				pl_detector_status(&m->ch.det, &ds);
				d.detector_state = pl_detector_state_name(ds.state);
				d.amplitude = ds.amplitude;
				d.noise = ds.noise;
			}
			pl_mqtt_box_put(k->box, i, &d);
		}
	}
}

/* Local midnight before t_us (the day "today" counts from). */
static int64_t local_midnight_us(int64_t t_us)
{
	time_t t = (time_t)(t_us / PL_US_PER_S);
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL)
		return t_us;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_isdst = -1;
	return (int64_t)mktime(&tm) * PL_US_PER_S;
}

void status_line(struct run *r)
{
	char line[512];
	size_t o = 0;

	for (size_t i = 0; i < r->nmeters && o < sizeof(line) - 100; i++) {
		struct meter_run *m = &r->meters[i];
		int64_t bound, reg = pl_meter_register(&m->ch.meter);
		int64_t t = m->last_t + m->ch.offset_us; /* the meter's time: the wall clock's */
		int64_t p = pl_meter_power(&m->ch.meter, t, &bound);
		int64_t midnight = local_midnight_us(t);

		if (midnight != m->day_start_us) { /* a new day, or the first line */
			m->day_start_us = midnight;
			if (pl_store_register_at(r->store, m->id, midnight, &m->day_base_uwh) != 0)
				m->day_base_uwh = reg;
		}
		o += (size_t)snprintf(line + o, sizeof(line) - o,
				      "%s%s %.0f W, today %.3f kWh, register %.3f kWh", i ? " | " : "",
				      m->cfg->name, (double)p / 1000.0,
				      (double)(reg - m->day_base_uwh) / 1e9, (double)reg / 1e9);
	}
	for (size_t i = 0; i < r->nsinks && o < sizeof(line) - 100; i++) {
		struct sink_run *k = &r->sinks[i];
		struct pl_deliver_status st;

		count_backlog(r, k);
		pl_deliver_status(k->d, &st);
		o += (size_t)snprintf(line + o, sizeof(line) - o, " | %s: %s, backlog %" PRIu64,
				      k->name, st.failing ? "failing" : "ok", k->backlog);
	}
	if (r->o->tty)
		fprintf(pl_log_stream(), "\r%s\033[K", line);
	else
		fprintf(pl_log_stream(), "%s: %s\n", PROG, line);
}


/*
 * The web server's view (http/live.h), every PL_LIVE_EVERY_US: filled into the loop's own copy,
 * then put into the box under its mutex, so the server never reads the loop's state and the
 * loop never waits for the server longer than a copy.
 */
void status_live(struct run *r)
{
	struct pl_live *l = r->live_tmp;
	int64_t wall = pl_clock_wall_us(), mono = pl_clock_mono_us();

	for (size_t i = 0; i < r->nmeters && i < l->nmeters; i++) {
		struct meter_run *m = &r->meters[i];
		struct pl_live_meter *v = &l->m[i];
		int64_t bound, t = m->last_t + m->ch.offset_us, midnight;

		if (!m->have_last && !m->last_looked) { /* before this run's first commit */
			m->last_looked = 1;
			if (pl_store_last_record(r->store, m->id, &m->last) == 0)
				m->have_last = 1;
		}
		memset(v, 0, sizeof(*v));
		v->id = m->id;
		v->power_mw = pl_meter_power(&m->ch.meter, t, &bound);
		v->register_uwh = m->have_last ? m->last.register_uwh : m->cfg->start_register_uwh;
		midnight = local_midnight_us(wall);
		if (midnight != m->live_day_us) { /* a new day, or the first look */
			m->live_day_us = midnight;
			if (pl_store_register_at(r->store, m->id, midnight, &m->live_day_base_uwh) != 0)
				m->live_day_base_uwh = v->register_uwh; /* no record yet */
		} else if (!m->have_last) {
			m->live_day_base_uwh = v->register_uwh;
		}
		v->day_start_us = midnight;
		v->today_base_uwh = m->live_day_base_uwh;
		v->pulses = m->c_pulses;
		v->rejected = m->c_rejected;
		v->gaps = m->c_gaps;
		v->rejected_total = m->ch.n_rejected;
		v->have_last = m->have_last;
		v->last = m->last;
		v->edges = m->ch.cfg.kind == PL_CHANNEL_EDGES;
		if (!v->edges) {
			struct pl_detector_status ds;

			pl_detector_status(&m->ch.det, &ds);
			snprintf(v->det_state, sizeof(v->det_state), "%s",
				 pl_detector_state_name(ds.state));
			v->amplitude = ds.amplitude;
			v->noise = ds.noise;
		}
		v->failing = m->failing;
		snprintf(v->error, sizeof(v->error), "%s", m->failing ? m->error : "");
		v->lost = m->lost;
	}
	for (size_t i = 0; i < r->nsinks && i < l->nsinks; i++) {
		struct sink_run *k = &r->sinks[i];
		struct pl_live_sink *v = &l->s[i];
		struct pl_deliver_status st;

		count_backlog(r, k);
		pl_deliver_status(k->d, &st);
		v->failing = st.failing;
		snprintf(v->last_error, sizeof(v->last_error), "%s", st.last_error);
		v->backlog = k->backlog;
		v->delivered = st.delivered;
		v->quarantined = st.quarantined;
		v->last_ok_us = st.last_ack_us ? wall - (mono - st.last_ack_us) : 0;
	}
	l->updated_us = wall;
	pl_live_put(r->live, l);
}
