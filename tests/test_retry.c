/* SPDX-License-Identifier: MIT */
/*
 * Tests of the sink's response policy and backoff: every response class in
 * reference/influxdb.md (1.x, 2.x, 3.x statuses and bodies, transport errors) maps to the
 * documented action and flags, and the backoff stays within [Retry-After, cap], grows its
 * ceiling, honours the slow cap for auth failures, is deterministic and resets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "powerlogger/retry.h"
#include "testutil.h"

static enum pl_sink_action classify(int status, const char *body, uint32_t lines,
				    unsigned *flags)
{
	struct pl_sink_response r = {
		.transport = PL_XPORT_NONE,
		.status = status,
		.body = body ? pl_sink_body_flags(body, strlen(body)) : 0,
		.batch_lines = lines,
	};
	return pl_sink_classify(&r, flags);
}

static void expect(int status, const char *body, uint32_t lines, enum pl_sink_action want,
		   unsigned want_flags)
{
	unsigned flags = 0xdead;
	enum pl_sink_action a = classify(status, body, lines, &flags);

	if (a != want || flags != want_flags)
		fail_msg("status %d body \"%s\" lines %u: got %s flags %#x, want %s flags %#x",
			 status, body ? body : "", lines, pl_sink_action_name(a), flags,
			 pl_sink_action_name(want), want_flags);
}

static void test_success(void **state)
{
	(void)state;
	expect(204, NULL, 10, PL_SINK_OK, 0); /* 1.x, 2.x, 3.x */
	expect(200, NULL, 1, PL_SINK_OK, 0);
	expect(299, NULL, 1, PL_SINK_OK, 0);
}

static void test_body_flags(void **state)
{
	const char *m;

	(void)state;
	m = "{\"error\":\"database not found: \\\"nope\\\"\"}";
	assert_int_equal(pl_sink_body_flags(m, strlen(m)), PL_BODY_DB_NOT_FOUND | PL_BODY_ERROR);
	m = "{\"code\":\"not found\",\"message\":\"bucket \\\"b\\\" not found\"}";
	assert_int_equal(pl_sink_body_flags(m, strlen(m)), PL_BODY_DB_NOT_FOUND | PL_BODY_ERROR);
	m = "partial write: field type conflict: input field \"v\" on measurement \"m\" is type "
	    "integer, already exists as type float dropped=1";
	assert_int_equal(pl_sink_body_flags(m, strlen(m)),
			 PL_BODY_PARTIAL_WRITE | PL_BODY_TYPE_CONFLICT);
	m = "{\"error\":\"partial write: points beyond retention policy dropped=1\"}";
	assert_int_equal(pl_sink_body_flags(m, strlen(m)),
			 PL_BODY_PARTIAL_WRITE | PL_BODY_RETENTION | PL_BODY_ERROR);
	m = "  <HTML><body>502</body></HTML>";
	assert_int_equal(pl_sink_body_flags(m, strlen(m)), PL_BODY_HTML);
	m = "400 unsupported path requested";
	assert_int_equal(pl_sink_body_flags(m, strlen(m)), 0);
	m = "Unable To Parse 'm v=': missing field value";
	assert_int_equal(pl_sink_body_flags(m, strlen(m)), PL_BODY_UNABLE_TO_PARSE);
	m = "partial write: unable to parse 'x': bad timestamp dropped=1";
	assert_int_equal(pl_sink_body_flags(m, strlen(m)),
			 PL_BODY_PARTIAL_WRITE | PL_BODY_UNABLE_TO_PARSE);
	assert_int_equal(pl_sink_body_flags(NULL, 5), 0);
	assert_int_equal(pl_sink_body_flags("database not found", 8), 0); /* len respected */
	assert_int_equal(pl_sink_body_flags("", 0), 0);
}

static void test_bad_lines(void **state)
{
	(void)state;
	/* 1.x 400 "unable to parse" (whole batch rejected): bisect, then quarantine. */
	expect(400, "unable to parse 'm v=': missing field value", 8, PL_SINK_SPLIT, 0);
	expect(400, "unable to parse 'm v=': missing field value", 2, PL_SINK_SPLIT, 0);
	expect(400, "unable to parse 'm v=': missing field value", 1, PL_SINK_QUARANTINE,
	       PL_SINK_F_LOUD);
	/* 1.x 400 "partial write" (type conflict): the valid points were written. */
	expect(400, "partial write: field type conflict: dropped=1", 5, PL_SINK_SPLIT,
	       PL_SINK_F_PARTIAL);
	expect(400, "partial write: field type conflict: dropped=1", 1, PL_SINK_QUARANTINE,
	       PL_SINK_F_PARTIAL | PL_SINK_F_LOUD);
	/* 2.x 400 (whole batch) and 422 (partial). */
	expect(400, "{\"code\":\"invalid\",\"message\":\"unable to parse\"}", 3, PL_SINK_SPLIT, 0);
	expect(422, "{\"code\":\"unprocessable entity\",\"message\":\"failure writing points to "
	       "database: partial write: points beyond retention policy dropped=1\"}", 3,
	       PL_SINK_SPLIT, PL_SINK_F_PARTIAL);
	expect(422, "{\"code\":\"unprocessable entity\",\"message\":\"failure writing points to "
	       "database: partial write: field type conflict: input field \\\"v\\\" ...\"}", 1,
	       PL_SINK_QUARANTINE, PL_SINK_F_PARTIAL | PL_SINK_F_LOUD);
	/* batch_lines 0 counts as one line. */
	expect(400, "unable to parse 'm v=': missing field value", 0, PL_SINK_QUARANTINE,
	       PL_SINK_F_LOUD);
}

/* The bodies of InfluxDB 1.x, 2.x and 3.x that say the lines are bad: each is split, then
 * quarantined. */
static void test_bad_line_bodies(void **state)
{
	static const struct {
		int status;
		const char *body;
		unsigned partial; /* PL_SINK_F_PARTIAL expected */
	} cases[] = {
		/* 1.x: whole batch, partial write with a parse error, type conflict (1.6 and the
		 * older form without "partial write"), retention */
		{400, "{\"error\":\"unable to parse 'm v= 4': missing field value\"}", 0},
		{400, "{\"error\":\"partial write: unable to parse 'm v=1i,': missing field "
		      "value dropped=1\"}", PL_SINK_F_PARTIAL},
		{400, "{\"error\":\"partial write: field type conflict: input field \\\"v\\\" on "
		      "measurement \\\"tc\\\" is type integer, already exists as type float "
		      "dropped=1\"}", PL_SINK_F_PARTIAL},
		{400, "{\"error\":\"field type conflict: input field \\\"v\\\" on measurement "
		      "\\\"tc\\\" is type integer, already exists as type float\"}", 0},
		{400, "{\"error\":\"partial write: points beyond retention policy dropped=3\"}",
		 PL_SINK_F_PARTIAL},
		/* 2.x */
		{400, "{\"code\":\"invalid\",\"message\":\"unable to parse 'm v=': missing field "
		      "value\"}", 0},
		/* the 3.x engine behind /api/v2/write (Cloud Serverless, Dedicated) */
		{400, "{\"code\":\"invalid\",\"line\":2,\"message\":\"error parsing line 2 "
		      "(1-based): Invalid measurement at 0\"}", 0},
		/* 3.x: partial write (accept_partial, the default) and all-or-nothing */
		{400, "{\"error\":\"partial write of line protocol occurred\",\"data\":[{"
		      "\"original_line\":\"cpu,host=a val= 123\",\"line_number\":2,"
		      "\"error_message\":\"No fields were provided\"}]}", PL_SINK_F_PARTIAL},
		{400, "{\"error\":\"partial write of line protocol occurred\",\"data\":[{"
		      "\"original_line\":\"home,room=Sunroom temp=hi 1735549200\",\"line_number\":2,"
		      "\"error_message\":\"invalid column type for column 'temp', expected "
		      "iox::column_type::field::float, got iox::column_type::field::string\"}]}",
		 PL_SINK_F_PARTIAL},
		{400, "{\"error\":\"parsing failed for write_lp endpoint\",\"data\":{"
		      "\"original_line\":\"m v=\",\"line_number\":1,\"error_message\":\"x\"}}", 0},
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		expect(cases[i].status, cases[i].body, 6, PL_SINK_SPLIT, cases[i].partial);
		expect(cases[i].status, cases[i].body, 1, PL_SINK_QUARANTINE,
		       cases[i].partial | PL_SINK_F_LOUD);
	}
}

/* A 400 or 422 that does not say the lines are bad is about the server or the way to it: the
 * data is kept (retry, slowly, loudly), never split, never quarantined. */
static void test_other_400_keeps_data(void **state)
{
	static const char *const bodies[] = {
		NULL,
		"",
		"400 unsupported path requested", /* a server without /api/v3/write_lp */
		"<html><head><title>400 Bad Request</title></head><body><center><h1>400 Bad "
		"Request</h1></center><hr><center>nginx</center></body></html>",
		"{\"error\":\"gzip: invalid header\"}",
		"{\"code\":\"invalid\",\"message\":\"invalid precision; valid precision units are "
		"ns, us, ms, and s\"}",
		"{\"error\":\"missing required parameter \\\"db\\\"\"}",
		"Bad Request",
		/* a server limit is a partial write too, but the lines are fine */
		"{\"error\":\"partial write: max-series-per-database limit exceeded: (1000) "
		"dropped=1\"}",
		"{\"error\":\"partial write: max-values-per-tag limit exceeded (100000/100000): "
		"measurement=\\\"m\\\" tag=\\\"device\\\" value=\\\"x\\\" dropped=1\"}",
	};
	(void)state;
	for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		for (uint32_t lines = 1; lines <= 16; lines *= 4) {
			expect(400, bodies[i], lines, PL_SINK_RETRY,
			       PL_SINK_F_CONFIG | PL_SINK_F_LOUD);
			expect(422, bodies[i], lines, PL_SINK_RETRY,
			       PL_SINK_F_CONFIG | PL_SINK_F_LOUD);
		}
	}
}

/* A 2xx with an error or an HTML page for a body is not InfluxDB's acknowledgement (it answers
 * 204): a captive portal or a misrouted proxy. Not acknowledged; a plain 200 is. */
static void test_2xx_with_error_body(void **state)
{
	(void)state;
	expect(200, "{\"error\":\"database is read-only\"}", 3, PL_SINK_RETRY,
	       PL_SINK_F_CONFIG | PL_SINK_F_LOUD);
	expect(200, "<!DOCTYPE html><html><title>Hotel WiFi login</title></html>", 3,
	       PL_SINK_RETRY, PL_SINK_F_CONFIG | PL_SINK_F_LOUD);
	expect(200, "", 3, PL_SINK_OK, 0);
	expect(200, "OK", 3, PL_SINK_OK, 0);
	expect(200, "{\"results\":[]}", 3, PL_SINK_OK, 0);
	/* 204 has no body by definition: whatever a buggy server appends is ignored */
	expect(204, "{\"error\":\"x\"}", 3, PL_SINK_OK, 0);
}

static void test_too_large(void **state)
{
	(void)state;
	expect(413, "{\"error\":\"Request Entity Too Large\"}", 1000, PL_SINK_SPLIT, 0);
	expect(413, NULL, 2, PL_SINK_SPLIT, 0);
	/* One record refused as too large: the server's (or a proxy's) limit is wrong, not the
	 * record; kept and retried slowly. */
	expect(413, NULL, 1, PL_SINK_RETRY, PL_SINK_F_CONFIG | PL_SINK_F_LOUD);
}

static void test_auth(void **state)
{
	(void)state;
	expect(401, "{\"error\":\"authorization failed\"}", 10, PL_SINK_RETRY,
	       PL_SINK_F_AUTH | PL_SINK_F_LOUD);
	expect(403, "{\"error\":\"\\\"ro\\\" user is not authorized to write to database \\\"d\\\"\"}",
	       1, PL_SINK_RETRY, PL_SINK_F_AUTH | PL_SINK_F_LOUD);
}

static void test_not_found(void **state)
{
	(void)state;
	expect(404, "{\"error\":\"database not found: \\\"x\\\"\"}", 10, PL_SINK_NOTFOUND,
	       PL_SINK_F_CONFIG | PL_SINK_F_LOUD);
	expect(404, "{\"code\":\"not found\",\"message\":\"bucket \\\"b\\\" not found\"}", 1,
	       PL_SINK_NOTFOUND, PL_SINK_F_CONFIG | PL_SINK_F_LOUD);
	/* A 404 for the endpoint itself (/api/v2/write on 1.6): data kept, reported. */
	expect(404, "404 page not found", 1, PL_SINK_NOTFOUND, PL_SINK_F_CONFIG | PL_SINK_F_LOUD);
}

static void test_retry_statuses(void **state)
{
	(void)state;
	expect(429, NULL, 10, PL_SINK_RETRY, 0);
	expect(408, NULL, 10, PL_SINK_RETRY, 0);
	expect(500, "{\"error\":\"timeout\"}", 10, PL_SINK_RETRY, 0);
	/* a retention policy that does not exist will not appear by itself */
	expect(500, "{\"error\":\"retention policy not found: x\"}", 10, PL_SINK_RETRY,
	       PL_SINK_F_CONFIG | PL_SINK_F_LOUD);
	expect(502, NULL, 10, PL_SINK_RETRY, 0);
	expect(503, "{\"error\":\"request throttled\"}", 10, PL_SINK_RETRY, 0);
	expect(504, NULL, 1, PL_SINK_RETRY, 0);
	/* Redirects (never followed) and unknown statuses keep the data and call for a human. */
	expect(301, NULL, 1, PL_SINK_RETRY, PL_SINK_F_CONFIG | PL_SINK_F_LOUD);
	expect(302, NULL, 8, PL_SINK_RETRY, PL_SINK_F_CONFIG | PL_SINK_F_LOUD);
	expect(307, NULL, 8, PL_SINK_RETRY, PL_SINK_F_CONFIG | PL_SINK_F_LOUD);
	expect(308, NULL, 8, PL_SINK_RETRY, PL_SINK_F_CONFIG | PL_SINK_F_LOUD);
	expect(405, NULL, 1, PL_SINK_RETRY, PL_SINK_F_CONFIG | PL_SINK_F_LOUD);
	expect(100, NULL, 1, PL_SINK_RETRY, PL_SINK_F_CONFIG | PL_SINK_F_LOUD);
	expect(0, NULL, 1, PL_SINK_RETRY, PL_SINK_F_CONFIG | PL_SINK_F_LOUD);
	expect(999, NULL, 1, PL_SINK_RETRY, PL_SINK_F_CONFIG | PL_SINK_F_LOUD);
}

static void test_transport(void **state)
{
	static const struct {
		enum pl_sink_transport t;
		unsigned flags;
	} cases[] = {
		{PL_XPORT_REFUSED, 0},
		{PL_XPORT_TIMEOUT, 0},
		{PL_XPORT_OTHER, 0},
		{PL_XPORT_DNS, PL_SINK_F_LOUD},
		{PL_XPORT_TLS, PL_SINK_F_LOUD},
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		/* The status is ignored when the transport failed, even a stale 204. */
		struct pl_sink_response r = {.transport = cases[i].t, .status = 204,
					     .batch_lines = 7};
		unsigned flags = 0xdead;

		assert_int_equal(pl_sink_classify(&r, &flags), PL_SINK_RETRY);
		assert_int_equal(flags, cases[i].flags);
		assert_string_not_equal(pl_sink_transport_name(cases[i].t), "unknown");
	}
	assert_int_equal(pl_sink_classify(NULL, NULL), PL_SINK_RETRY);
	assert_string_equal(pl_sink_transport_name(PL_XPORT_NONE), "none");
	assert_string_equal(pl_sink_action_name(PL_SINK_NOTFOUND), "not-found");
	assert_string_equal(pl_sink_action_name((enum pl_sink_action)42), "unknown");
}

/* ------------------------------------------------------------------ backoff */

static void test_backoff_exact(void **state)
{
	struct pl_backoff b = PL_BACKOFF_INIT;

	(void)state;
	/* The maximal random value hits the ceiling exactly: 1, 2, 4, 8 s, then the 15 s cap. */
	uint32_t want[] = {1000, 2000, 4000, 8000, 15000, 15000, 15000};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		assert_int_equal(pl_backoff_next(&b, UINT32_MAX, 0), want[i]);
	/* The minimal random value gives half the ceiling; halfway three quarters. */
	assert_int_equal(pl_backoff_next(&b, 0, 0), 7500);
	assert_int_equal(pl_backoff_next(&b, UINT32_C(1) << 31, 0), 11250);
	/* Retry-After is honoured beyond the cap, up to PL_BACKOFF_MAX_RETRY_AFTER_S. */
	assert_int_equal(pl_backoff_next(&b, 0, 7), 7500);
	assert_int_equal(pl_backoff_next(&b, 0, 60), 60000);
	assert_int_equal(pl_backoff_next(&b, 0, 300), 300000);
	/* Reset: back to the first ceiling. */
	pl_backoff_reset(&b);
	assert_int_equal(b.attempt, 0);
	assert_int_equal(pl_backoff_ceiling(&b), 1000);
	assert_int_equal(pl_backoff_next(&b, UINT32_MAX, 0), 1000);
	assert_int_equal(pl_backoff_next(NULL, 1, 1), 0);
	assert_int_equal(pl_backoff_ceiling(NULL), 0);
	pl_backoff_reset(NULL);
}

/* issue 9, fault 15: "Retry-After: 999999" on a 500 parked delivery for a day. What a server
 * can impose is capped at PL_BACKOFF_MAX_RETRY_AFTER_S (5 min), whatever the value and the
 * state. */
static void test_retry_after_capped(void **state)
{
	static const uint32_t asks[] = {301, 999, 3600, 86400, 999999, UINT32_MAX / 1000u,
					UINT32_MAX / 1000u + 1u, UINT32_MAX};
	(void)state;
	assert_int_equal(PL_BACKOFF_MAX_RETRY_AFTER_S, 300);
	for (size_t i = 0; i < sizeof asks / sizeof asks[0]; i++) {
		for (int slow = 0; slow < 2; slow++) {
			struct pl_backoff b = {.attempt = 40, .slow = (uint8_t)slow};

			assert_int_equal(pl_backoff_next(&b, UINT32_MAX, asks[i]),
					 PL_BACKOFF_MAX_RETRY_AFTER_S * 1000u);
			assert_int_equal(pl_backoff_next(&b, 0, asks[i]),
					 PL_BACKOFF_MAX_RETRY_AFTER_S * 1000u);
		}
	}
}

static void test_backoff_slow(void **state)
{
	struct pl_backoff b = PL_BACKOFF_INIT;

	(void)state;
	b.slow = 1;
	for (int i = 0; i < 40; i++)
		(void)pl_backoff_next(&b, 1, 0);
	assert_int_equal(pl_backoff_ceiling(&b), PL_BACKOFF_SLOW_CAP_MS);
	assert_int_equal(pl_backoff_next(&b, UINT32_MAX, 0), 300000);
	assert_int_equal(pl_backoff_next(&b, 0, 0), 150000);
	b.slow = 0; /* the failures stopped being auth failures */
	assert_int_equal(pl_backoff_next(&b, UINT32_MAX, 0), 15000);
	pl_backoff_reset(&b);
	assert_int_equal(b.slow, 0);
}

/* Property: for random inputs the delay lies in [max(ceiling / 2, Retry-After), max(ceiling,
 * Retry-After)] with Retry-After clamped; ceilings never shrink until a reset; the same
 * inputs give the same delays (a copied state replays them). */
static void test_backoff_property(void **state)
{
	(void)state;
	rng_state = UINT64_C(0x9e3779b97f4a7c15);
	for (int run = 0; run < 2000; run++) {
		struct pl_backoff b = PL_BACKOFF_INIT, copy;
		uint32_t prev_ceiling = 0;
		int n = 1 + (int)(rnd() % 40);

		b.slow = (uint8_t)(rnd() & 1);
		copy = b;
		for (int i = 0; i < n; i++) {
			uint32_t r = (uint32_t)rnd();
			uint32_t ra = (rnd() % 4 == 0) ? (uint32_t)(rnd() % 1000) : 0;
			uint32_t ra_ms = (ra < PL_BACKOFF_MAX_RETRY_AFTER_S ? ra
						: PL_BACKOFF_MAX_RETRY_AFTER_S) * 1000u;
			uint32_t cap = b.slow ? PL_BACKOFF_SLOW_CAP_MS : PL_BACKOFF_CAP_MS;
			uint32_t ceiling = pl_backoff_ceiling(&b);
			uint32_t d = pl_backoff_next(&b, r, ra);
			uint32_t d2 = pl_backoff_next(&copy, r, ra);

			assert_int_equal(d, d2);
			assert_true(ceiling >= prev_ceiling);
			assert_true(ceiling <= cap);
			assert_true(ceiling >= PL_BACKOFF_BASE_MS);
			assert_true(d >= ra_ms);
			assert_true(d >= ceiling / 2);
			assert_true(d <= (ra_ms > ceiling ? ra_ms : ceiling));
			prev_ceiling = ceiling;
		}
		pl_backoff_reset(&b);
		assert_int_equal(pl_backoff_ceiling(&b), PL_BACKOFF_BASE_MS);
	}
}

/* issue 9, fault 3: after an outage the backlog waited for minutes (a 5 min ceiling with full
 * jitter). For what heals by itself (refused, unreachable, timeouts, 5xx) no wait exceeds the
 * 15 s cap, however long the outage: over a million draws at every attempt count. */
static void test_backoff_network_cap(void **state)
{
	uint32_t worst = 0;

	(void)state;
	assert_true(PL_BACKOFF_CAP_MS <= 15000);
	rng_state = 777;
	for (uint32_t attempt = 0; attempt < 64; attempt++) {
		for (int i = 0; i < 20000; i++) {
			struct pl_backoff b = {.attempt = attempt, .slow = 0};
			uint32_t d = pl_backoff_next(&b, (uint32_t)rnd(), 0);

			if (d > worst)
				worst = d;
		}
	}
	assert_true(worst <= 15000);
	assert_true(worst >= 14900); /* the cap is reached, not some smaller bound */
}

/* ... and without hammering: an outage of an hour of refused connections, each attempt taking
 * a negligible time, sees one attempt per 7.5 to 15 s once the ceiling is reached. Simulated
 * over many random outages. */
static void test_backoff_outage_attempts(void **state)
{
	(void)state;
	rng_state = 4242;
	for (int run = 0; run < 500; run++) {
		struct pl_backoff b = PL_BACKOFF_INIT;
		uint64_t t = 0, hour = 3600000;
		uint32_t attempts = 0, longest = 0;

		while (t < hour) {
			uint32_t d;
			struct pl_sink_response r = {.transport = PL_XPORT_REFUSED, .batch_lines = 10};
			unsigned flags = 0;

			assert_int_equal(pl_sink_classify(&r, &flags), PL_SINK_RETRY);
			b.slow = (flags & (PL_SINK_F_AUTH | PL_SINK_F_CONFIG)) != 0;
			d = pl_backoff_next(&b, (uint32_t)rnd(), 0);
			attempts++;
			if (d > longest)
				longest = d;
			t += d;
		}
		/* 3600 s / 7.5 s = 480 at most after the ramp; 3600 / 15 = 240 at least */
		assert_true(attempts <= 490);
		assert_true(attempts >= 240);
		assert_true(longest <= 15000);
	}
	/* 5xx and 429 without Retry-After are on the same fast cap; auth and configuration
	 * errors on the slow one. */
	{
		struct pl_sink_response r = {.status = 503, .batch_lines = 1};
		unsigned flags = 0;

		assert_int_equal(pl_sink_classify(&r, &flags), PL_SINK_RETRY);
		assert_int_equal(flags & (PL_SINK_F_AUTH | PL_SINK_F_CONFIG), 0);
		r.status = 429;
		assert_int_equal(pl_sink_classify(&r, &flags), PL_SINK_RETRY);
		assert_int_equal(flags & (PL_SINK_F_AUTH | PL_SINK_F_CONFIG), 0);
		r.transport = PL_XPORT_TIMEOUT;
		assert_int_equal(pl_sink_classify(&r, &flags), PL_SINK_RETRY);
		assert_int_equal(flags & (PL_SINK_F_AUTH | PL_SINK_F_CONFIG), 0);
	}
}

/* The mean of the jittered delays grows with the attempt until the cap. */
static void test_backoff_grows(void **state)
{
	uint64_t prev_mean = 0;

	(void)state;
	rng_state = 12345;
	for (uint32_t attempt = 0; attempt < 9; attempt++) {
		uint64_t sum = 0;

		for (int i = 0; i < 1000; i++) {
			struct pl_backoff b = {.attempt = attempt, .slow = 1};

			sum += pl_backoff_next(&b, (uint32_t)rnd(), 0);
		}
		assert_true(sum / 1000 > prev_mean);
		prev_mean = sum / 1000;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_success),
		cmocka_unit_test(test_body_flags),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_bad_line_bodies),
		cmocka_unit_test(test_other_400_keeps_data),
		cmocka_unit_test(test_2xx_with_error_body),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_not_found),
		cmocka_unit_test(test_retry_statuses),
		cmocka_unit_test(test_transport),
		cmocka_unit_test(test_backoff_exact),
		cmocka_unit_test(test_retry_after_capped),
		cmocka_unit_test(test_backoff_slow),
		cmocka_unit_test(test_backoff_network_cap),
		cmocka_unit_test(test_backoff_outage_attempts),
		cmocka_unit_test(test_backoff_property),
		cmocka_unit_test(test_backoff_grows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
