/*
 * Response classification and backoff for the sinks. The policy and its reasons are in
 * include/powerlogger/retry.h; the server facts behind it are in the project's InfluxDB notes
 * (reference/influxdb.md): 1.x answers 204, 400 "unable to parse"/"partial write", 401, 403,
 * 404 "database not found", 413, 500, 503; 2.x adds 422 and 429/503 with Retry-After.
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

unsigned pl_sink_body_flags(const char *msg, size_t len)
{
	unsigned f = 0;

	if (msg == NULL)
		return 0;
	if (contains(msg, len, "database not found") ||
	    (contains(msg, len, "bucket") && contains(msg, len, "not found")))
		f |= PL_BODY_DB_NOT_FOUND;
	if (contains(msg, len, "partial write"))
		f |= PL_BODY_PARTIAL_WRITE;
	if (contains(msg, len, "unable to parse"))
		f |= PL_BODY_UNABLE_TO_PARSE;
	return f;
}

/* Bad lines: bisect a batch, quarantine a single line. */
static enum pl_sink_action bad_lines(uint32_t lines)
{
	return lines > 1 ? PL_SINK_SPLIT : PL_SINK_QUARANTINE;
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
		/* A DNS or TLS failure rarely heals by itself: someone should look. */
		a = PL_SINK_RETRY;
		if (r->transport == PL_XPORT_TLS || r->transport == PL_XPORT_DNS)
			f |= PL_SINK_F_LOUD;
		goto out;
	}
	if (r->status >= 200 && r->status <= 299) {
		a = PL_SINK_OK;
		goto out;
	}
	switch (r->status) {
	case 400:
	case 422:
		/* 1.x "partial write" and 2.x 422 wrote the valid points; a 400 without it rejected
		 * the whole batch. Either way the bad lines are found by bisection. */
		if (r->status == 422 || (r->body & PL_BODY_PARTIAL_WRITE) != 0)
			f |= PL_SINK_F_PARTIAL;
		a = bad_lines(lines);
		if (a == PL_SINK_QUARANTINE)
			f |= PL_SINK_F_LOUD;
		break;
	case 413:
		a = bad_lines(lines);
		if (a == PL_SINK_QUARANTINE)
			f |= PL_SINK_F_LOUD;
		break;
	case 401:
	case 403:
		a = PL_SINK_RETRY;
		f |= PL_SINK_F_AUTH | PL_SINK_F_LOUD;
		break;
	case 404:
		a = PL_SINK_NOTFOUND;
		f |= PL_SINK_F_LOUD;
		break;
	case 408:
	case 429:
		a = PL_SINK_RETRY;
		break;
	default:
		a = PL_SINK_RETRY;
		/* 5xx is the server's own trouble (overload, restart, "timeout"); anything else
		 * (1xx, 3xx, an unexpected 4xx, a nonsense status) means a misconfiguration. */
		if (r->status < 500 || r->status > 599)
			f |= PL_SINK_F_LOUD;
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
	uint32_t ceiling, delay, floor_ms;

	if (b == NULL)
		return 0;
	ceiling = pl_backoff_ceiling(b);
	/* rand32 / 2^32 * (ceiling + 1), in [0, ceiling] exactly, without floating point. */
	delay = (uint32_t)(((uint64_t)rand32 * ((uint64_t)ceiling + 1u)) >> 32);
	if (retry_after_s > PL_BACKOFF_MAX_RETRY_AFTER_S)
		retry_after_s = PL_BACKOFF_MAX_RETRY_AFTER_S;
	floor_ms = retry_after_s * 1000u; /* at most 8.64e7, fits */
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
