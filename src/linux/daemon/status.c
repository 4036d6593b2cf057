/* SPDX-License-Identifier: MIT */
/*
 * The status line: each meter's power, today's energy and register, each sink's state and
 * backlog. Live on a terminal (rewritten in place every second), a log line a minute
 * otherwise (the journal).
 */
#include <inttypes.h>
#include <stdio.h>
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

