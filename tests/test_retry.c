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
	assert_int_equal(pl_sink_body_flags(m, strlen(m)), PL_BODY_DB_NOT_FOUND);
	m = "{\"code\":\"not found\",\"message\":\"bucket \\\"b\\\" not found\"}";
	assert_int_equal(pl_sink_body_flags(m, strlen(m)), PL_BODY_DB_NOT_FOUND);
	m = "partial write: field type conflict: input field \"v\" on measurement \"m\" is type "
	    "integer, already exists as type float dropped=1";
	assert_int_equal(pl_sink_body_flags(m, strlen(m)), PL_BODY_PARTIAL_WRITE);
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
	expect(422, "{\"code\":\"unprocessable entity\"}", 3, PL_SINK_SPLIT, PL_SINK_F_PARTIAL);
	expect(422, NULL, 1, PL_SINK_QUARANTINE, PL_SINK_F_PARTIAL | PL_SINK_F_LOUD);
	/* batch_lines 0 counts as one line. */
	expect(400, NULL, 0, PL_SINK_QUARANTINE, PL_SINK_F_LOUD);
}

static void test_too_large(void **state)
{
	(void)state;
	expect(413, "{\"error\":\"Request Entity Too Large\"}", 1000, PL_SINK_SPLIT, 0);
	expect(413, NULL, 2, PL_SINK_SPLIT, 0);
	expect(413, NULL, 1, PL_SINK_QUARANTINE, PL_SINK_F_LOUD);
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
	       PL_SINK_F_LOUD);
	expect(404, "{\"code\":\"not found\",\"message\":\"bucket \\\"b\\\" not found\"}", 1,
	       PL_SINK_NOTFOUND, PL_SINK_F_LOUD);
	/* A 404 for the endpoint itself (/api/v2/write on 1.6): data kept, reported. */
	expect(404, "404 page not found", 1, PL_SINK_NOTFOUND, PL_SINK_F_LOUD);
}

static void test_retry_statuses(void **state)
{
	(void)state;
	expect(429, NULL, 10, PL_SINK_RETRY, 0);
	expect(408, NULL, 10, PL_SINK_RETRY, 0);
	expect(500, "{\"error\":\"timeout\"}", 10, PL_SINK_RETRY, 0);
	expect(500, "{\"error\":\"retention policy not found: x\"}", 10, PL_SINK_RETRY, 0);
	expect(502, NULL, 10, PL_SINK_RETRY, 0);
	expect(503, "{\"error\":\"request throttled\"}", 10, PL_SINK_RETRY, 0);
	expect(504, NULL, 1, PL_SINK_RETRY, 0);
	/* Unknown statuses keep the data and call for a human. */
	expect(301, NULL, 1, PL_SINK_RETRY, PL_SINK_F_LOUD);
	expect(405, NULL, 1, PL_SINK_RETRY, PL_SINK_F_LOUD);
	expect(100, NULL, 1, PL_SINK_RETRY, PL_SINK_F_LOUD);
	expect(0, NULL, 1, PL_SINK_RETRY, PL_SINK_F_LOUD);
	expect(999, NULL, 1, PL_SINK_RETRY, PL_SINK_F_LOUD);
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
	/* The maximal random value hits the ceiling exactly: 1, 2, 4, ... 256 s, then 300 s. */
	uint32_t want[] = {1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000,
			   300000, 300000};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		assert_int_equal(pl_backoff_next(&b, UINT32_MAX, 0), want[i]);
	/* The minimal random value gives no delay; halfway gives half the ceiling. */
	assert_int_equal(pl_backoff_next(&b, 0, 0), 0);
	assert_int_equal(pl_backoff_next(&b, UINT32_C(1) << 31, 0), 150000);
	/* Retry-After is honoured even beyond the cap, clamped at one day. */
	assert_int_equal(pl_backoff_next(&b, 0, 7), 7000);
	assert_int_equal(pl_backoff_next(&b, 0, 1000), 1000000);
	assert_int_equal(pl_backoff_next(&b, UINT32_MAX, UINT32_MAX), 86400000);
	/* Reset: back to the first ceiling. */
	pl_backoff_reset(&b);
	assert_int_equal(b.attempt, 0);
	assert_int_equal(pl_backoff_ceiling(&b), 1000);
	assert_int_equal(pl_backoff_next(&b, UINT32_MAX, 0), 1000);
	assert_int_equal(pl_backoff_next(NULL, 1, 1), 0);
	assert_int_equal(pl_backoff_ceiling(NULL), 0);
	pl_backoff_reset(NULL);
}

static void test_backoff_slow(void **state)
{
	struct pl_backoff b = PL_BACKOFF_INIT;

	(void)state;
	b.slow = 1;
	for (int i = 0; i < 40; i++)
		(void)pl_backoff_next(&b, 1, 0);
	assert_int_equal(pl_backoff_ceiling(&b), PL_BACKOFF_SLOW_CAP_MS);
	assert_int_equal(pl_backoff_next(&b, UINT32_MAX, 0), 600000);
	b.slow = 0; /* the failures stopped being auth failures */
	assert_int_equal(pl_backoff_next(&b, UINT32_MAX, 0), 300000);
	pl_backoff_reset(&b);
	assert_int_equal(b.slow, 0);
}

/* Property: for random inputs the delay lies in [Retry-After, max(cap, Retry-After)] and within
 * the ceiling unless Retry-After raised it; ceilings never shrink until a reset; the same
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
			uint32_t cap = b.slow ? PL_BACKOFF_SLOW_CAP_MS : PL_BACKOFF_CAP_MS;
			uint32_t ceiling = pl_backoff_ceiling(&b);
			uint32_t d = pl_backoff_next(&b, r, ra);
			uint32_t d2 = pl_backoff_next(&copy, r, ra);

			assert_int_equal(d, d2);
			assert_true(ceiling >= prev_ceiling);
			assert_true(ceiling <= cap);
			assert_true(ceiling >= PL_BACKOFF_BASE_MS);
			assert_true(d >= ra * 1000u);
			assert_true(d <= (ra * 1000u > cap ? ra * 1000u : cap));
			if (ra == 0)
				assert_true(d <= ceiling);
			prev_ceiling = ceiling;
		}
		pl_backoff_reset(&b);
		assert_int_equal(pl_backoff_ceiling(&b), PL_BACKOFF_BASE_MS);
	}
}

/* The mean of the jittered delays grows with the attempt (full jitter: half the ceiling). */
static void test_backoff_grows(void **state)
{
	uint64_t prev_mean = 0;

	(void)state;
	rng_state = 12345;
	for (uint32_t attempt = 0; attempt < 9; attempt++) {
		uint64_t sum = 0;

		for (int i = 0; i < 1000; i++) {
			struct pl_backoff b = {.attempt = attempt, .slow = 0};

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
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_not_found),
		cmocka_unit_test(test_retry_statuses),
		cmocka_unit_test(test_transport),
		cmocka_unit_test(test_backoff_exact),
		cmocka_unit_test(test_backoff_slow),
		cmocka_unit_test(test_backoff_property),
		cmocka_unit_test(test_backoff_grows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
