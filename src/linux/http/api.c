/* SPDX-License-Identifier: MIT */
/*
 * /api/v1 (docs/http.md): the live view from the live box, energy per hour, day or month and
 * the power series from the store's rollups (store/query.h), JSON or CSV. Parameters are
 * checked before the store is read: a bad one is a 400 that names it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "http/http_priv.h"
#include "powerlogger/common.h"

#ifndef PL_VERSION
#define PL_VERSION "0.1.0-dev"
#endif

#define ENERGY_MAX 10000
#define POWER_MAX 20000

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, int n, unsigned *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*v = *v * 10 + (unsigned)(s[i] - '0');
	}
	return 0;
}

int pl_http_parse_time(const char *s, int64_t *us)
{
	unsigned y, mo, d, h, mi, sec, oh, om;
	int64_t t, frac = 0, scale = 100000;
	const char *p;
	char *end;

	if (s == NULL || *s == '\0')
		return -1;
	if (strspn(s, "0123456789") == strlen(s) || (s[0] == '-' && s[1] &&
						      strspn(s + 1, "0123456789") == strlen(s + 1))) {
		long long v = strtoll(s, &end, 10);

		if (*end != '\0' || strlen(s) > 12)
			return -1;
		*us = (int64_t)v * PL_US_PER_S;
		return 0;
	}
	if (strlen(s) < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
	    s[7] != '-' || digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
	    digits(s + 17, 2, &sec))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	p = s + 19;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -1;
		for (; *p >= '0' && *p <= '9'; p++) {
			frac += (*p - '0') * scale;
			scale /= 10;
		}
	}
	t = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 + sec;
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
		/* UTC */
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && !digits(p + 1, 2, &oh) &&
		   p[3] == ':' && !digits(p + 4, 2, &om) && oh <= 23 && om <= 59) {
		int64_t off = (int64_t)(oh * 3600 + om * 60);

		t -= *p == '+' ? off : -off;
	} else {
		return -1;
	}
	*us = t * PL_US_PER_S + frac;
	return 0;
}

void pl_http_time(struct pl_buf *b, int64_t us, int local)
{
	time_t t = (time_t)(us >= 0 ? us / PL_US_PER_S : -((-us + PL_US_PER_S - 1) / PL_US_PER_S));
	struct tm tm;
	char s[40];

	if ((local ? localtime_r(&t, &tm) : gmtime_r(&t, &tm)) == NULL) {
		pl_buf_puts(b, "");
		return;
	}
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
	pl_buf_puts(b, s);
	if (!local || tm.tm_gmtoff == 0) {
		pl_buf_puts(b, local ? "+00:00" : "Z");
	} else {
		long off = tm.tm_gmtoff < 0 ? -tm.tm_gmtoff : tm.tm_gmtoff;

		pl_buf_printf(b, "%c%02ld:%02ld", tm.tm_gmtoff < 0 ? '-' : '+', off / 3600,
			      off / 60 % 60);
	}
}

/* "KEY": "TIME", "KEY_ms": MS */
static void json_time(struct pl_buf *b, const char *key, int64_t us, int local)
{
	pl_buf_printf(b, "\"%s\": \"", key);
	pl_http_time(b, us, local);
	pl_buf_printf(b, "\", \"%s_ms\": %" PRId64, key, us / 1000);
}

static int has_price(const struct pl_http *h)
{
	return h->cfg->http.price_micro >= 0;
}

/* The cost of uwh, rounded to 1/10000 of the currency. */
static void put_cost(struct pl_http *h, struct pl_buf *b, int64_t uwh)
{
	/* uwh * micro / 1e15 = cost; in 1e-4: uwh * micro / 1e11, rounded */
	long double c = (long double)uwh * (long double)h->cfg->http.price_micro / 1e11L;
	int64_t q = (int64_t)(c < 0 ? c - 0.5L : c + 0.5L);

	pl_buf_fixed(b, q, 4);
}

static void price_fields(struct pl_http *h, struct pl_buf *b)
{
	if (has_price(h)) {
		pl_buf_puts(b, "\"price_per_kwh\": ");
		pl_buf_fixed(b, h->cfg->http.price_micro, 6);
		pl_buf_puts(b, ", \"currency\": ");
		if (h->cfg->http.currency)
			pl_buf_json_str(b, h->cfg->http.currency);
		else
			pl_buf_puts(b, "null");
	} else {
		pl_buf_puts(b, "\"price_per_kwh\": null, \"currency\": null");
	}
}

static void flags_json(struct pl_buf *b, uint32_t f)
{
	static const char *const names[] = { "partial", "gap", "rejected", "steady", "no_signal" };
	int first = 1;

	pl_buf_puts(b, "[");
	for (unsigned i = 0; i < 5; i++) {
		if (f & (1u << i)) {
			pl_buf_printf(b, "%s\"%s\"", first ? "" : ", ", names[i]);
			first = 0;
		}
	}
	pl_buf_puts(b, "]");
}

void pl_api_status(struct pl_http *h, struct pl_http_answer *a)
{
	const struct pl_config *cfg = h->cfg;
	const struct pl_live *l = h->snap;
	struct pl_buf *b = &a->b;
	int64_t now = pl_clock_wall_us();
	time_t tn = (time_t)(now / PL_US_PER_S);
	struct tm tm;

	localtime_r(&tn, &tm);
	pl_buf_puts(b, "{\n\"version\": ");
	pl_buf_json_str(b, PL_VERSION);
	pl_buf_puts(b, ",\n");
	json_time(b, "now", now, 0);
	pl_buf_printf(b, ",\n\"utc_offset_s\": %ld,\n", (long)tm.tm_gmtoff);
	price_fields(h, b);
	pl_buf_puts(b, ",\n\"meters\": [");
	for (size_t i = 0; i < cfg->nmeters && i < l->nmeters; i++) {
		const struct pl_config_meter *mc = &cfg->meters[i];
		const struct pl_live_meter *m = &l->m[i];
		int64_t today = m->register_uwh - m->today_base_uwh;

		pl_buf_puts(b, i ? ",\n  {" : "\n  {");
		pl_buf_puts(b, "\"name\": ");
		pl_buf_json_str(b, mc->name);
		pl_buf_printf(b, ", \"imp_per_kwh\": %" PRIu32 ", \"interval_s\": %" PRIu32 ",\n",
			      mc->imp_per_kwh, mc->interval_s);
		pl_buf_puts(b, "   \"power_w\": ");
		pl_buf_fixed(b, m->power_mw, 3);
		pl_buf_puts(b, ", \"register_kwh\": ");
		pl_buf_fixed(b, m->register_uwh, 9);
		pl_buf_puts(b, ", \"today_kwh\": ");
		pl_buf_fixed(b, today, 9);
		pl_buf_puts(b, ", \"today_cost\": ");
		if (has_price(h))
			put_cost(h, b, today);
		else
			pl_buf_puts(b, "null");
		pl_buf_puts(b, ",\n   \"today_start\": \"");
		pl_http_time(b, m->day_start_us, 1);
		pl_buf_printf(b, "\", \"today_start_ms\": %" PRId64, m->day_start_us / 1000);
		pl_buf_printf(b, ", \"pulses\": %" PRIu64 ", \"rejected\": %" PRIu64
			      ", \"gaps\": %" PRIu64 ",\n   \"last_interval\": ", m->pulses,
			      m->rejected, m->gaps);
		if (m->have_last) {
			const struct pl_interval_record *r = &m->last;

			pl_buf_puts(b, "{");
			json_time(b, "start", r->start_us, 0);
			pl_buf_printf(b, ", \"length_s\": %" PRIu32 ", \"pulses\": %" PRIu32
				      ", \"rejected\": %" PRIu32 ", \"energy_kwh\": ", r->length_s,
				      r->pulses, r->rejected);
			pl_buf_fixed(b, r->energy_uwh, 9);
			pl_buf_puts(b, ", \"avg_w\": ");
			pl_buf_fixed(b, r->avg_mw, 3);
			pl_buf_puts(b, ", \"peak_w\": ");
			pl_buf_fixed(b, r->peak_mw, 3);
			pl_buf_puts(b, ", \"register_kwh\": ");
			pl_buf_fixed(b, r->register_uwh, 9);
			pl_buf_puts(b, ", \"flags\": ");
			flags_json(b, r->flags);
			pl_buf_puts(b, "}");
		} else {
			pl_buf_puts(b, "null");
		}
		pl_buf_puts(b, ",\n   \"detector\": {\"state\": ");
		pl_buf_json_str(b, m->edges ? "edges" : m->det_state);
		if (m->edges)
			pl_buf_puts(b, ", \"amplitude\": null, \"noise\": null");
		else
			pl_buf_printf(b, ", \"amplitude\": %" PRId64 ", \"noise\": %" PRId64,
				      m->amplitude, m->noise);
		pl_buf_printf(b, ", \"rejected_total\": %" PRIu64 "},\n   \"source\": {\"failing\": %s"
			      ", \"error\": ", m->rejected_total, m->failing ? "true" : "false");
		pl_buf_json_str(b, m->error);
		pl_buf_printf(b, ", \"lost\": %" PRIu64 "}}", m->lost);
	}
	pl_buf_puts(b, "\n],\n\"sinks\": [");
	for (size_t i = 0; i < l->nsinks; i++) {
		const struct pl_live_sink *k = &l->s[i];
		int mqtt = i >= cfg->ninflux;

		pl_buf_puts(b, i ? ",\n  {" : "\n  {");
		pl_buf_puts(b, "\"name\": ");
		pl_buf_json_str(b, mqtt ? cfg->mqtt[i - cfg->ninflux].name : cfg->influx[i].name);
		pl_buf_printf(b, ", \"kind\": \"%s\", \"failing\": %s, \"last_error\": ",
			      mqtt ? "mqtt" : "influxdb", k->failing ? "true" : "false");
		pl_buf_json_str(b, k->last_error);
		pl_buf_printf(b, ",\n   \"backlog\": %" PRIu64 ", \"delivered\": %" PRIu64
			      ", \"quarantined\": %" PRIu64 ", ", k->backlog, k->delivered,
			      k->quarantined);
		if (k->last_ok_us)
			json_time(b, "last_ok", k->last_ok_us, 0);
		else
			pl_buf_puts(b, "\"last_ok\": null, \"last_ok_ms\": null");
		pl_buf_puts(b, "}");
	}
	pl_buf_puts(b, "\n]\n}\n");
}

/* The meter named by ?meter= (default: the first); -1 with a 404 or 400 answer. */
static int find_meter(struct pl_http *h, const char *name, struct pl_http_answer *a)
{
	if (h->cfg->nmeters == 0 || h->snap->nmeters == 0) {
		pl_http_error(a, 404, "meter: this logger has no meter");
		return -1;
	}
	if (name == NULL)
		return 0;
	for (size_t i = 0; i < h->cfg->nmeters; i++)
		if (strcmp(h->cfg->meters[i].name, name) == 0)
			return (int)i;
	pl_http_error(a, 404, "meter: no meter '%.128s'", name);
	return -1;
}

/* from and to: given or defaults; -1 with a 400. */
static int time_range(pl_http_arg_fn arg, void *req, int64_t back_us, int64_t *from,
		      int64_t *to, struct pl_http_answer *a)
{
	const char *f = arg(req, "from"), *t = arg(req, "to");

	*to = pl_clock_wall_us();
	if (t && pl_http_parse_time(t, to) != 0) {
		pl_http_error(a, 400, "to: '%.64s' is not a time (Unix seconds or RFC 3339, e.g. "
			      "2026-12-01T00:00:00Z)", t);
		return -1;
	}
	*from = *to - back_us;
	if (f && pl_http_parse_time(f, from) != 0) {
		pl_http_error(a, 400, "from: '%.64s' is not a time (Unix seconds or RFC 3339, e.g. "
			      "2026-12-01T00:00:00Z)", f);
		return -1;
	}
	if (*from >= *to) {
		pl_http_error(a, 400, "from: must be before to");
		return -1;
	}
	return 0;
}

/* ?format=: 0 JSON, 1 CSV, -1 with a 400. */
static int want_csv(pl_http_arg_fn arg, void *req, struct pl_http_answer *a)
{
	const char *f = arg(req, "format");

	if (f == NULL || strcmp(f, "json") == 0)
		return 0;
	if (strcmp(f, "csv") == 0)
		return 1;
	pl_http_error(a, 400, "format: '%.32s' is not json or csv", f);
	return -1;
}

static int scratch(struct pl_http *h, struct pl_http_answer *a)
{
	if (h->tmp == NULL)
		h->tmp = calloc(POWER_MAX + 1, sizeof(*h->tmp));
	if (h->edges == NULL)
		h->edges = calloc(ENERGY_MAX + 2, sizeof(*h->edges));
	if (h->tmp == NULL || h->edges == NULL) {
		pl_http_error(a, 500, "out of memory");
		return -1;
	}
	return 0;
}

static void store_failed(struct pl_http *h, struct pl_http_answer *a, int rc)
{
	if (rc == -PL_ENOENT) /* a meter without a record yet: the store has no id for it */
		pl_http_error(a, 404, "meter: no records yet");
	else
		pl_http_error(a, 503, "store: %s", pl_store_error(h->store));
}

void pl_api_energy(struct pl_http *h, pl_http_arg_fn arg, void *req, struct pl_http_answer *a)
{
	static const char *const steps[] = { "hour", "day", "month" };
	static const int64_t backs[] = { 48 * 3600, 30 * 86400, 366 * 86400 };
	const char *sp = arg(req, "step");
	int mi = find_meter(h, arg(req, "meter"), a), step = PL_STEP_DAY, csv, rc;
	int64_t from, to;
	size_t k, n;
	struct pl_buf *b = &a->b;
	struct pl_store *s;

	if (mi < 0)
		return;
	if (sp != NULL) {
		for (step = 0; step < 3 && strcmp(sp, steps[step]) != 0; step++)
			;
		if (step == 3) {
			pl_http_error(a, 400, "step: '%.32s' is not hour, day or month", sp);
			return;
		}
	}
	csv = want_csv(arg, req, a);
	if (csv < 0 || time_range(arg, req, backs[step] * PL_US_PER_S, &from, &to, a) != 0)
		return;
	if (step == PL_STEP_MONTH && arg(req, "from") == NULL) {
		/* 12 months back from to's month: the 11 before it and itself */
		time_t t = (time_t)(to / PL_US_PER_S);
		struct tm tm;

		localtime_r(&t, &tm);
		tm.tm_mday = 1;
		tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
		tm.tm_mon -= 11;
		tm.tm_isdst = -1;
		from = (int64_t)mktime(&tm) * PL_US_PER_S;
	}
	if (scratch(h, a) != 0)
		return;
	k = pl_calendar_edges(step, from, to, h->edges, ENERGY_MAX + 1);
	if (k < 2) {
		pl_http_error(a, 400, "from: the range has more than %d %ss", ENERGY_MAX, steps[step]);
		return;
	}
	n = k - 1;
	s = pl_http_store(h, a);
	if (s == NULL)
		return;
	rc = pl_store_buckets(s, h->snap->m[mi].id, h->edges, n, h->tmp);
	if (rc != 0) {
		store_failed(h, a, rc);
		return;
	}
	if (csv) {
		a->type = "text/csv; charset=utf-8";
		pl_buf_puts(b, "start,end,kwh,cost,pulses,rejected,records,covered_s,gap_records,"
			    "peak_w\n");
	} else {
		pl_buf_puts(b, "{\n\"meter\": ");
		pl_buf_json_str(b, h->cfg->meters[mi].name);
		pl_buf_printf(b, ", \"step\": \"%s\", ", steps[step]);
		json_time(b, "from", h->edges[0], 1);
		pl_buf_puts(b, ", ");
		json_time(b, "to", h->edges[n], 1);
		pl_buf_puts(b, ",\n");
		price_fields(h, b);
		pl_buf_puts(b, ",\n\"rows\": [");
	}
	for (size_t i = 0; i < n; i++) {
		const struct pl_store_bucket *q = &h->tmp[i];

		if (csv) {
			pl_http_time(b, q->start_us, 1);
			pl_buf_puts(b, ",");
			pl_http_time(b, q->end_us, 1);
			pl_buf_puts(b, ",");
			pl_buf_fixed(b, q->energy_uwh, 9);
			pl_buf_puts(b, ",");
			if (has_price(h))
				put_cost(h, b, q->energy_uwh);
			pl_buf_printf(b, ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRId64 ",%" PRIu64
				      ",", q->pulses, q->rejected, q->records, q->covered_s, q->gaps);
			pl_buf_fixed(b, q->peak_mw, 3);
			pl_buf_puts(b, "\n");
			continue;
		}
		pl_buf_puts(b, i ? ",\n  {" : "\n  {");
		json_time(b, "start", q->start_us, 1);
		pl_buf_printf(b, ", \"end_ms\": %" PRId64 ", \"kwh\": ", q->end_us / 1000);
		pl_buf_fixed(b, q->energy_uwh, 9);
		pl_buf_puts(b, ", \"cost\": ");
		if (has_price(h))
			put_cost(h, b, q->energy_uwh);
		else
			pl_buf_puts(b, "null");
		pl_buf_printf(b, ", \"pulses\": %" PRIu64 ", \"rejected\": %" PRIu64 ", \"records\": %"
			      PRIu64 ", \"covered_s\": %" PRId64 ", \"gap_records\": %" PRIu64
			      ", \"peak_w\": ", q->pulses, q->rejected, q->records, q->covered_s,
			      q->gaps);
		pl_buf_fixed(b, q->peak_mw, 3);
		pl_buf_puts(b, "}");
	}
	if (!csv)
		pl_buf_puts(b, "\n]\n}\n");
}

void pl_api_power(struct pl_http *h, pl_http_arg_fn arg, void *req, struct pl_http_answer *a)
{
	const char *sp = arg(req, "step");
	int mi = find_meter(h, arg(req, "meter"), a), csv, rc;
	int64_t from, to, step_s;
	size_t n = 0;
	struct pl_buf *b = &a->b;
	struct pl_store *s;

	if (mi < 0)
		return;
	step_s = h->cfg->meters[mi].interval_s ? h->cfg->meters[mi].interval_s : 1;
	if (sp != NULL) {
		char *end;
		long long v = strtoll(sp, &end, 10);

		if (*sp < '0' || *sp > '9' || *end != '\0' || v < 1 || v > 31 * 86400) {
			pl_http_error(a, 400, "step: '%.32s' is not a whole number of seconds "
				      "(1..2678400)", sp);
			return;
		}
		step_s = v;
	}
	csv = want_csv(arg, req, a);
	if (csv < 0 || time_range(arg, req, 86400 * PL_US_PER_S, &from, &to, a) != 0)
		return;
	if (sp == NULL) { /* the default: the meter's interval, or a multiple of it that fits */
		int64_t per = step_s * PL_US_PER_S * POWER_MAX;

		step_s *= (to - from + per - 1) / per;
	}
	if ((to - from) / (step_s * PL_US_PER_S) > POWER_MAX) {
		pl_http_error(a, 400, "step: more than %d points from from to to (a larger step)",
			      POWER_MAX);
		return;
	}
	if (scratch(h, a) != 0)
		return;
	s = pl_http_store(h, a);
	if (s == NULL)
		return;
	rc = pl_store_series(s, h->snap->m[mi].id, from, to, step_s * PL_US_PER_S, h->tmp,
			     POWER_MAX + 1, &n);
	if (rc != 0 && rc != -PL_ENOSPC) {
		store_failed(h, a, rc);
		return;
	}
	if (n > POWER_MAX)
		n = POWER_MAX;
	if (csv) {
		a->type = "text/csv; charset=utf-8";
		pl_buf_puts(b, "start,avg_w,peak_w,gap\n");
	} else {
		pl_buf_puts(b, "{\n\"meter\": ");
		pl_buf_json_str(b, h->cfg->meters[mi].name);
		pl_buf_printf(b, ", \"step_s\": %" PRId64 ", \"from_ms\": %" PRId64 ", \"to_ms\": %"
			      PRId64 ",\n\"points\": [", step_s, from / 1000, to / 1000);
	}
	for (size_t i = 0; i < n; i++) {
		const struct pl_store_bucket *q = &h->tmp[i];
		/* energy_uwh * 3.6 / covered_s mW, in W with 3 decimals */
		int64_t mw = q->covered_s > 0 ? (q->energy_uwh * 36 + q->covered_s * 5) /
			(q->covered_s * 10) : 0;

		if (csv) {
			pl_http_time(b, q->start_us, 1);
			pl_buf_puts(b, ",");
		} else {
			pl_buf_printf(b, "%s[%" PRId64 ", ", i ? ",\n  " : "\n  ", q->start_us / 1000);
		}
		pl_buf_fixed(b, mw, 3);
		pl_buf_puts(b, csv ? "," : ", ");
		pl_buf_fixed(b, q->peak_mw, 3);
		pl_buf_printf(b, csv ? ",%d\n" : ", %d]", q->gaps > 0);
	}
	if (!csv)
		pl_buf_puts(b, "\n]\n}\n");
}
