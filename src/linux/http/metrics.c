/* SPDX-License-Identifier: MIT */
/*
 * /metrics: the live box in the Prometheus text format 0.0.4, every family with HELP and
 * TYPE, names as Prometheus's naming guide asks (base units: joules, watts; counters end in
 * _total). The energy counter is the register as of the last commit, in joules (1 µWh =
 * 0.0036 J, printed exactly), so it equals the store's register. The counts of pulses, rejected
 * pulses and gaps are those of this run (a restart is a counter reset, which rate() handles).
 */
#include <inttypes.h>
#include <string.h>

#include "http/http_priv.h"

#ifndef PL_VERSION
#define PL_VERSION "0.1.0-dev"
#endif

static void family(struct pl_buf *b, const char *name, const char *type, const char *help)
{
	pl_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void meter_label(struct pl_buf *b, const char *metric, const char *meter)
{
	pl_buf_printf(b, "%s{meter=\"", metric);
	pl_buf_label(b, meter);
	pl_buf_puts(b, "\"} ");
}

static void sink_label(struct pl_buf *b, const char *metric, const char *sink, const char *kind)
{
	pl_buf_printf(b, "%s{sink=\"", metric);
	pl_buf_label(b, sink);
	pl_buf_printf(b, "\",kind=\"%s\"} ", kind);
}

enum mfield { M_ENERGY, M_POWER, M_PULSES, M_REJECTED, M_GAPS, M_NOISE, M_AMPLITUDE };

static void meters(struct pl_http *h, struct pl_buf *b, const char *name, enum mfield f)
{
	for (size_t i = 0; i < h->cfg->nmeters && i < h->snap->nmeters; i++) {
		const struct pl_live_meter *m = &h->snap->m[i];

		if ((f == M_NOISE || f == M_AMPLITUDE) && m->edges)
			continue; /* a digital input has no signal to measure */
		meter_label(b, name, h->cfg->meters[i].name);
		switch (f) {
		case M_ENERGY:
			/* µWh * 0.0036 = J: exact with 4 decimals */
			pl_buf_fixed(b, m->register_uwh * 36, 4);
			break;
		case M_POWER:
			pl_buf_fixed(b, m->power_mw, 3);
			break;
		case M_PULSES:
			pl_buf_printf(b, "%" PRIu64, m->pulses);
			break;
		case M_REJECTED:
			pl_buf_printf(b, "%" PRIu64, m->rejected_total);
			break;
		case M_GAPS:
			pl_buf_printf(b, "%" PRIu64, m->gaps);
			break;
		case M_NOISE:
			pl_buf_printf(b, "%" PRId64, m->noise);
			break;
		case M_AMPLITUDE:
			pl_buf_printf(b, "%" PRId64, m->amplitude);
			break;
		}
		pl_buf_puts(b, "\n");
	}
}

enum sfield { S_BACKLOG, S_FAILING, S_DELIVERED, S_QUARANTINED };

static void sinks(struct pl_http *h, struct pl_buf *b, const char *name, enum sfield f)
{
	const struct pl_config *cfg = h->cfg;

	for (size_t i = 0; i < h->snap->nsinks; i++) {
		const struct pl_live_sink *k = &h->snap->s[i];
		int mqtt = i >= cfg->ninflux;
		uint64_t v = f == S_BACKLOG ? k->backlog : f == S_FAILING ? (uint64_t)!!k->failing :
			f == S_DELIVERED ? k->delivered : k->quarantined;

		sink_label(b, name, mqtt ? cfg->mqtt[i - cfg->ninflux].name : cfg->influx[i].name,
			   mqtt ? "mqtt" : "influxdb");
		pl_buf_printf(b, "%" PRIu64 "\n", v);
	}
}

void pl_http_metrics(struct pl_http *h, struct pl_http_answer *a)
{
	struct pl_buf *b = &a->b;
	int any_analog = 0;

	a->type = "text/plain; version=0.0.4; charset=utf-8";
	for (size_t i = 0; i < h->snap->nmeters; i++)
		any_analog |= !h->snap->m[i].edges;
	family(b, "powerlogger_energy_joules_total", "counter",
	       "Energy register of the meter as of the last stored interval, in joules.");
	meters(h, b, "powerlogger_energy_joules_total", M_ENERGY);
	family(b, "powerlogger_power_watts", "gauge", "Power now, from the time between pulses.");
	meters(h, b, "powerlogger_power_watts", M_POWER);
	family(b, "powerlogger_pulses_total", "counter",
	       "Accepted pulses in the intervals stored since the logger started.");
	meters(h, b, "powerlogger_pulses_total", M_PULSES);
	family(b, "powerlogger_rejected_pulses_total", "counter",
	       "Pulses rejected as implausible since the logger started.");
	meters(h, b, "powerlogger_rejected_pulses_total", M_REJECTED);
	family(b, "powerlogger_sampling_gaps_total", "counter",
	       "Intervals stored since the logger started whose sampling was interrupted "
	       "(flag gap or partial).");
	meters(h, b, "powerlogger_sampling_gaps_total", M_GAPS);
	if (any_analog) {
		family(b, "powerlogger_detector_noise", "gauge",
		       "Noise of the analog signal as the pulse detector measures it (ADC units).");
		meters(h, b, "powerlogger_detector_noise", M_NOISE);
		family(b, "powerlogger_detector_amplitude", "gauge",
		       "Amplitude of the pulses of the analog signal (ADC units).");
		meters(h, b, "powerlogger_detector_amplitude", M_AMPLITUDE);
	}
	if (h->snap->nsinks > 0) {
		family(b, "powerlogger_sink_backlog_records", "gauge",
		       "Records stored but not yet delivered to the sink.");
		sinks(h, b, "powerlogger_sink_backlog_records", S_BACKLOG);
		family(b, "powerlogger_sink_failing", "gauge",
		       "1 when the sink's last delivery attempt failed.");
		sinks(h, b, "powerlogger_sink_failing", S_FAILING);
		family(b, "powerlogger_sink_delivered_records_total", "counter",
		       "Records delivered to the sink since the logger started.");
		sinks(h, b, "powerlogger_sink_delivered_records_total", S_DELIVERED);
		family(b, "powerlogger_sink_quarantined_records_total", "counter",
		       "Records the sink refused for good and set aside since the logger started.");
		sinks(h, b, "powerlogger_sink_quarantined_records_total", S_QUARANTINED);
	}
	family(b, "powerlogger_build_info", "gauge", "The logger's version; always 1.");
	pl_buf_puts(b, "powerlogger_build_info{version=\"");
	pl_buf_label(b, PL_VERSION);
	pl_buf_puts(b, "\"} 1\n");
}
