/* SPDX-License-Identifier: MIT */
/*
 * Response classification and backoff for the sinks. The policy and its reasons are in
 * include/powerlogger/retry.h; the server facts behind it are in the project's InfluxDB notes
 * (reference/influxdb.md): 1.x answers 204, 400 "unable to parse"/"partial write", 401, 403,
 * 404 "database not found", 413, 500, 503; 2.x adds 422 and 429/503 with Retry-After; 3.x
 * answers a partial write with 400 and a list of the failed lines.
 */
#include "powerlogger/retry.h"

#include <stdbool.h>

static char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Whether the lowercase NUL-terminated needle occurs in msg[0..len), ignoring case. */
static bool contains(const char *msg, size_t len, const char *needle)
{
	size_t n = 0;

	while (needle[n] != '\0')
		n++;
	if (n == 0 || n > len)
		return n == 0;
	for (size_t i = 0; i + n <= len; i++) {
		size_t k = 0;

		while (k < n && lower(msg[i + k]) == needle[k])
			k++;
		if (k == n)
			return true;
	}
	return false;
}

/* The first character of msg that is not white space, or '\0' for none. */
static char first_text(const char *msg, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (msg[i] != ' ' && msg[i] != '\t' && msg[i] != '\r' && msg[i] != '\n')
			return msg[i];
	}
	return '\0';
}

unsigned pl_sink_body_flags(const char *msg, size_t len)
{
	unsigned f = 0;
	char first;

	if (msg == NULL)
		return 0;
	first = first_text(msg, len);
	if (contains(msg, len, "database not found") ||
	    (contains(msg, len, "bucket") && contains(msg, len, "not found")))
		f |= PL_BODY_DB_NOT_FOUND;
	if (contains(msg, len, "partial write"))
		f |= PL_BODY_PARTIAL_WRITE;
	if (contains(msg, len, "unable to parse"))
		f |= PL_BODY_UNABLE_TO_PARSE;
	if (contains(msg, len, "field type conflict") || contains(msg, len, "invalid column type"))
		f |= PL_BODY_TYPE_CONFLICT;
	if (contains(msg, len, "beyond retention policy"))
		f |= PL_BODY_RETENTION;
	if (contains(msg, len, "retention policy not found"))
		f |= PL_BODY_RP_NOT_FOUND;
	if (contains(msg, len, "limit exceeded"))
		f |= PL_BODY_LIMIT;
	/* 3.x names the failed lines ("original_line", "line_number") under a fixed error text;
	 * the 3.x engine behind 2.x's endpoint (Cloud Serverless, Dedicated) answers
	 * {"code":"invalid","line":N,"message":...}. */
	if (contains(msg, len, "of line protocol occurred") ||
	    contains(msg, len, "parsing failed for write_lp") ||
	    contains(msg, len, "line protocol parsing error") ||
	    contains(msg, len, "parsing for line protocol failed") ||
	    (first == '{' && contains(msg, len, "\"code\":\"invalid\"") &&
	     contains(msg, len, "\"line\":")))
		f |= PL_BODY_LINE_REPORT;
	if (first == '{' && (contains(msg, len, "\"error\"") ||
			     (contains(msg, len, "\"code\"") && contains(msg, len, "\"message\""))))
		f |= PL_BODY_ERROR;
	if (first == '<' && (contains(msg, len, "<html") || contains(msg, len, "<!doctype html") ||
			     contains(msg, len, "<body")))
		f |= PL_BODY_HTML;
	return f;
}

/* Bad lines: bisect a batch, quarantine a single line. */
static enum pl_sink_action bad_lines(uint32_t lines)
{
	return lines > 1 ? PL_SINK_SPLIT : PL_SINK_QUARANTINE;
}

/* Whether a 400/422 says the lines themselves are bad. A server limit ("max-series-per-
 * database limit exceeded") comes as a partial write too, but the lines are fine and become
 * writable once an administrator raises the limit: those are kept, not quarantined. */
static bool says_bad_lines(unsigned body)
{
	if ((body & PL_BODY_LIMIT) != 0 &&
	    (body & (PL_BODY_UNABLE_TO_PARSE | PL_BODY_TYPE_CONFLICT | PL_BODY_RETENTION)) == 0)
		return false;
	return (body & PL_BODY_BAD_LINES) != 0;
}

enum pl_sink_action pl_sink_classify(const struct pl_sink_response *r, unsigned *flags)
{
	unsigned f = 0;
	enum pl_sink_action a;
	uint32_t lines;

	if (r == NULL) {
		a = PL_SINK_RETRY;
		f = PL_SINK_F_LOUD;
		goto out;
	}
	lines = r->batch_lines == 0 ? 1 : r->batch_lines;
	if (r->transport != PL_XPORT_NONE) {
		/* A DNS or TLS failure rarely heals by itself: someone should look. Still on the
		 * fast cap: a DNS server back, or a renewed certificate, should be used at once,
		 * and an attempt is as cheap as for a refused connection. */
		a = PL_SINK_RETRY;
		if (r->transport == PL_XPORT_TLS || r->transport == PL_XPORT_DNS)
			f |= PL_SINK_F_LOUD;
		goto out;
	}
	if (r->status >= 200 && r->status <= 299) {
		a = PL_SINK_OK;
		if (r->status != 204 && (r->body & (PL_BODY_ERROR | PL_BODY_HTML)) != 0) {
			a = PL_SINK_RETRY;
			f |= PL_SINK_F_CONFIG | PL_SINK_F_LOUD;
		}
		goto out;
	}
	switch (r->status) {
	case 400:
	case 422:
		if (!says_bad_lines(r->body)) {
			/* "unsupported path requested", a proxy's HTML page, a gzip the server could
			 * not read, a bad precision: the lines are not at fault. */
			a = PL_SINK_RETRY;
			f |= PL_SINK_F_CONFIG | PL_SINK_F_LOUD;
			break;
		}
		/* 1.x "partial write", 2.x 422 and 3.x's partial write wrote the valid points; a
		 * 400 without it rejected the whole batch. Either way the bad lines are found by
		 * bisection. */
		if (r->status == 422 || (r->body & PL_BODY_PARTIAL_WRITE) != 0)
			f |= PL_SINK_F_PARTIAL;
		a = bad_lines(lines);
		if (a == PL_SINK_QUARANTINE)
			f |= PL_SINK_F_LOUD;
		break;
	case 413:
		/* One record is a few hundred bytes: a server that refuses it as too large has a
		 * misconfigured limit (or a proxy in front does), which does not make the record
		 * bad. */
		a = lines > 1 ? PL_SINK_SPLIT : PL_SINK_RETRY;
		if (a == PL_SINK_RETRY)
			f |= PL_SINK_F_CONFIG | PL_SINK_F_LOUD;
		break;
	case 401:
	case 403:
		a = PL_SINK_RETRY;
		f |= PL_SINK_F_AUTH | PL_SINK_F_LOUD;
		break;
	case 404:
		a = PL_SINK_NOTFOUND;
		f |= PL_SINK_F_CONFIG | PL_SINK_F_LOUD;
		break;
	case 408:
	case 429:
		a = PL_SINK_RETRY;
		break;
	default:
		a = PL_SINK_RETRY;
		/* 5xx is the server's own trouble (overload, restart, "timeout"), except 1.x's
		 * 500 for a retention policy that does not exist; anything else (1xx, 3xx, an
		 * unexpected 4xx, a nonsense status) means a misconfiguration. */
		if (r->status < 500 || r->status > 599 || (r->body & PL_BODY_RP_NOT_FOUND) != 0)
			f |= PL_SINK_F_CONFIG | PL_SINK_F_LOUD;
		break;
	}
out:
	if (flags != NULL)
		*flags = f;
	return a;
}

const char *pl_sink_action_name(enum pl_sink_action a)
{
	switch (a) {
	case PL_SINK_OK: return "ok";
	case PL_SINK_RETRY: return "retry";
	case PL_SINK_SPLIT: return "split";
	case PL_SINK_QUARANTINE: return "quarantine";
	case PL_SINK_NOTFOUND: return "not-found";
	}
	return "unknown";
}

const char *pl_sink_transport_name(enum pl_sink_transport t)
{
	switch (t) {
	case PL_XPORT_NONE: return "none";
	case PL_XPORT_REFUSED: return "refused";
	case PL_XPORT_TIMEOUT: return "timeout";
	case PL_XPORT_DNS: return "dns";
	case PL_XPORT_TLS: return "tls";
	case PL_XPORT_OTHER: return "other";
	}
	return "unknown";
}

/* The attempt count stops growing once the ceiling has reached every cap. */
#define ATTEMPT_SATURATION 31u

uint32_t pl_backoff_ceiling(const struct pl_backoff *b)
{
	uint32_t cap, ceiling = PL_BACKOFF_BASE_MS;

	if (b == NULL)
		return 0;
	cap = b->slow ? PL_BACKOFF_SLOW_CAP_MS : PL_BACKOFF_CAP_MS;
	for (uint32_t i = 0; i < b->attempt && ceiling < cap; i++)
		ceiling *= 2u; /* cannot overflow: ceiling < cap < 2^31 before doubling */
	return ceiling < cap ? ceiling : cap;
}

uint32_t pl_backoff_next(struct pl_backoff *b, uint32_t rand32, uint32_t retry_after_s)
{
	uint32_t ceiling, half, delay, floor_ms;

	if (b == NULL)
		return 0;
	ceiling = pl_backoff_ceiling(b);
	half = ceiling / 2u;
	/* half + rand32 / 2^32 * (ceiling - half + 1): in [half, ceiling] exactly, without
	 * floating point. */
	delay = half + (uint32_t)(((uint64_t)rand32 * ((uint64_t)(ceiling - half) + 1u)) >> 32);
	if (retry_after_s > PL_BACKOFF_MAX_RETRY_AFTER_S)
		retry_after_s = PL_BACKOFF_MAX_RETRY_AFTER_S;
	floor_ms = retry_after_s * 1000u; /* at most 3e5, fits */
	if (delay < floor_ms)
		delay = floor_ms;
	if (b->attempt < ATTEMPT_SATURATION)
		b->attempt++;
	return delay;
}

void pl_backoff_reset(struct pl_backoff *b)
{
	if (b == NULL)
		return;
	b->attempt = 0;
	b->slow = 0;
}
