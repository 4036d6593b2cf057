/* SPDX-License-Identifier: MIT */
/*
 * The core's delivery policy (powerlogger/delivery.h) against a simulated server that refuses
 * chosen records (400 "unable to parse", optionally naming the line), bodies over a size
 * (413) or everything for a while (5xx, 429 with Retry-After): one bad line among many is
 * isolated in O(log n) requests and everything else is delivered once, in order; 413 shrinks
 * the batch and it grows back; a single record the server finds too large is kept and retried
 * slowly, never quarantined; Retry-After is honoured and capped; the backoff grows and resets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "powerlogger/delivery.h"

#define NREC 6000u

/* The queue and the server. Records are numbered 0.. in the order they were made. */
struct sim {
	struct pl_delivery dv;
	uint32_t n;                   /* records made */
	uint32_t head;                /* the oldest pending record */
	uint8_t bad[NREC];            /* the server never takes this record */
	uint32_t too_large;           /* 413 for requests of more records than this; 0: none */
	int name_line;                /* the server names the first bad line of a request */
	uint32_t written[NREC];       /* records acknowledged, in order */
	uint32_t nwritten;
	uint32_t quarantined[16];
	uint32_t nquarantined;
	uint32_t requests;
	uint32_t sizes[64];           /* the sizes of the first requests */
	struct pl_delivery_verdict v; /* the last */
};

static struct sim *sim_new(uint32_t n, uint32_t max_batch)
{
	static struct sim s;

	memset(&s, 0, sizeof s);
	s.n = n;
	pl_delivery_init(&s.dv, max_batch);
	return &s;
}

static void apply(struct sim *s, uint32_t sent)
{
	assert_true(s->v.ack <= sent);
	for (uint32_t i = 0; i < s->v.ack; i++)
		s->written[s->nwritten++] = s->head++;
	if (s->v.quarantine) {
		assert_int_equal(sent, 1);
		assert_true(s->nquarantined < 16);
		s->quarantined[s->nquarantined++] = s->head++;
	}
}

/* One request as the machine asks for it, answered by the simulated server. */
static uint32_t step(struct sim *s)
{
	struct pl_sink_response r = {.transport = PL_XPORT_NONE};
	uint32_t n = pl_delivery_next(&s->dv, s->n - s->head), first_bad = 0;
	const char *body = NULL;

	assert_true(n >= 1 && n <= s->n - s->head);
	if (s->requests < 64)
		s->sizes[s->requests] = n;
	s->requests++;
	r.batch_lines = n;
	for (uint32_t i = 0; i < n && first_bad == 0; i++)
		if (s->bad[s->head + i])
			first_bad = i + 1;
	if (s->too_large != 0 && n > s->too_large) {
		r.status = 413;
		body = "{\"error\":\"Request Entity Too Large\"}";
	} else if (first_bad != 0) {
		r.status = 400;
		body = "{\"error\":\"unable to parse 'energy_meter_reading value=': bad field\"}";
	} else {
		r.status = 204;
	}
	r.body = body ? pl_sink_body_flags(body, strlen(body)) : 0;
	pl_delivery_result(&s->dv, &r, s->name_line ? first_bad : 0, 0x12345678u, &s->v);
	assert_int_equal(s->v.delay_ms, 0); /* these answers never ask to wait */
	apply(s, n);
	return n;
}

static void drain(struct sim *s, uint32_t max_requests)
{
	while (s->head < s->n) {
		step(s);
		if (s->requests > max_requests)
			fail_msg("%u requests and %u of %u records still pending", s->requests,
				 s->n - s->head, s->n);
	}
}

/* Every record written exactly once and in order, except the quarantined ones. */
static void assert_all_in_order(const struct sim *s)
{
	uint32_t w = 0, q = 0;

	for (uint32_t id = 0; id < s->n; id++) {
		if (s->bad[id]) {
			assert_true(q < s->nquarantined);
			assert_int_equal(s->quarantined[q++], id);
		} else {
			assert_true(w < s->nwritten);
			assert_int_equal(s->written[w++], id);
		}
	}
	assert_int_equal(w, s->nwritten);
	assert_int_equal(q, s->nquarantined);
}

static uint32_t log2_ceil(uint32_t n)
{
	uint32_t k = 0;

	while ((1u << k) < n)
		k++;
	return k;
}

/* One bad line at every position of a batch: exactly it is quarantined, everything else is
 * written in order, and finding it takes at most 2 log2(n) + 2 requests. */
static void test_one_bad_line_isolated(void **state)
{
	static const uint32_t sizes[] = {2, 3, 7, 8, 11, 32, 100, 5000};

	(void)state;
	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		uint32_t n = sizes[k], step_by = n > 200 ? 97 : 1;

		for (uint32_t bad = 0; bad < n; bad += step_by) {
			struct sim *s = sim_new(n, n);

			s->bad[bad] = 1;
			drain(s, 2 * log2_ceil(n) + 2);
			assert_int_equal(s->nquarantined, 1);
			assert_int_equal(s->quarantined[0], bad);
			assert_int_equal(s->nwritten, n - 1);
			assert_all_in_order(s);
			assert_int_equal(pl_delivery_state(&s->dv), PL_DELIVERY_STEADY);
		}
	}
}

/* The sequence the firmware has always made (its test counts it): 8 refused, 4 ok, 4 refused,
 * 2 refused, 1 ok, 1 quarantined, the last 5 ok. */
static void test_bisection_sequence(void **state)
{
	static const uint32_t want[] = {8, 4, 4, 2, 1, 1, 5};
	struct sim *s = sim_new(11, 8);

	(void)state;
	s->bad[5] = 1;
	drain(s, 7);
	assert_int_equal(s->requests, 7);
	for (size_t i = 0; i < 7; i++)
		assert_int_equal(s->sizes[i], want[i]);
	assert_all_in_order(s);
}

/* A server that names the bad line: the lines before it, then it alone, then the rest. */
static void test_named_line(void **state)
{
	struct sim *s = sim_new(1000, 1000);

	(void)state;
	s->name_line = 1;
	s->bad[700] = 1;
	step(s);
	assert_int_equal(s->v.action, PL_SINK_SPLIT);
	assert_int_equal(pl_delivery_state(&s->dv), PL_DELIVERY_BISECTING);
	assert_int_equal(step(s), 700);
	assert_int_equal(s->v.ack, 700);
	assert_int_equal(step(s), 1);
	assert_int_equal(s->v.action, PL_SINK_QUARANTINE);
	assert_int_equal(s->quarantined[0], 700);
	assert_int_equal(step(s), 299);
	assert_int_equal(s->requests, 4);
	assert_all_in_order(s);

	/* the first line named */
	s = sim_new(50, 50);
	s->name_line = 1;
	s->bad[0] = 1;
	drain(s, 3);
	assert_int_equal(s->requests, 3);
	assert_all_in_order(s);

	/* a line number beyond the request is ignored: plain bisection */
	s = sim_new(8, 8);
	s->bad[3] = 1;
	{
		struct pl_sink_response r = {.transport = PL_XPORT_NONE, .status = 400,
					     .body = PL_BODY_UNABLE_TO_PARSE, .batch_lines = 8};

		pl_delivery_result(&s->dv, &r, 9, 1, &s->v);
		assert_int_equal(pl_delivery_next(&s->dv, 8), 4);
		s->requests = 1;
	}
	drain(s, 8);
	assert_all_in_order(s);
}

/* Several bad lines, some next to each other: each is quarantined, the rest written. */
static void test_several_bad_lines(void **state)
{
	static const uint32_t bad[] = {0, 1, 2, 64, 65, 500, 999};
	struct sim *s = sim_new(1000, 256);

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		s->bad[bad[i]] = 1;
	drain(s, 7 * (2 * 8 + 2) + 4);
	assert_int_equal(s->nquarantined, 7);
	assert_all_in_order(s);
}

/* 413: the batch halves until the server takes it, nothing is quarantined; the limit grows
 * back (and is cut again while the server's limit stays); once the server takes large bodies
 * again it is back at the maximum. */
static void test_413_shrinks_and_grows_back(void **state)
{
	struct sim *s = sim_new(6000, 1000);
	(void)state;
	s->too_large = 300;
	assert_int_equal(step(s), 1000);
	assert_int_equal(s->v.action, PL_SINK_SPLIT);
	assert_int_equal(s->v.ack, 0);
	assert_int_equal(pl_delivery_state(&s->dv), PL_DELIVERY_SHRUNK);
	assert_int_equal(step(s), 500);
	assert_int_equal(step(s), 250);
	assert_int_equal(s->v.ack, 250);
	for (uint32_t i = 1; i < PL_DELIVERY_GROW_AFTER; i++)
		assert_int_equal(step(s), 250);
	/* grown to 500, which the server still refuses */
	assert_int_equal(step(s), 500);
	assert_int_equal(s->v.action, PL_SINK_SPLIT);
	assert_int_equal(step(s), 250);
	/* the server's limit is raised: 500, 1000 after PL_DELIVERY_GROW_AFTER each */
	s->too_large = 0;
	for (uint32_t i = 1; i < PL_DELIVERY_GROW_AFTER; i++)
		assert_int_equal(step(s), 250);
	for (uint32_t i = 0; i < PL_DELIVERY_GROW_AFTER; i++)
		assert_int_equal(step(s), 500);
	assert_int_equal(pl_delivery_state(&s->dv), PL_DELIVERY_STEADY);
	assert_int_equal(step(s), 1000);
	drain(s, 100);
	assert_int_equal(s->nquarantined, 0);
	assert_all_in_order(s);
}

/* A single record the server finds too large is kept and retried slowly, not quarantined;
 * other records behind it wait; when the server relents it is written. */
static void test_413_single_record_kept(void **state)
{
	struct sim *s = sim_new(3, 1);
	struct pl_sink_response r = {.transport = PL_XPORT_NONE, .status = 413, .batch_lines = 1};
	uint32_t last = 0;

	(void)state;
	for (int i = 0; i < 12; i++) {
		assert_int_equal(pl_delivery_next(&s->dv, 3), 1);
		pl_delivery_result(&s->dv, &r, 0, 0xffffffffu, &s->v);
		assert_int_equal(s->v.action, PL_SINK_RETRY);
		assert_true(s->v.flags & PL_SINK_F_CONFIG);
		assert_int_equal(s->v.ack, 0);
		assert_int_equal(s->v.quarantine, 0);
		assert_true(s->v.delay_ms >= last);
		assert_true(s->v.delay_ms <= PL_BACKOFF_SLOW_CAP_MS);
		last = s->v.delay_ms;
	}
	assert_true(last > PL_BACKOFF_CAP_MS); /* the slow cap, not the fast one */
	assert_int_equal(s->dv.backoff.slow, 1);
	assert_int_equal(pl_delivery_state(&s->dv), PL_DELIVERY_FAILING);
	drain(s, 3);
	assert_int_equal(s->nquarantined, 0);
	assert_int_equal(s->dv.backoff.attempt, 0);
	assert_all_in_order(s);
}

static uint32_t refused(struct pl_delivery *dv, int status, uint32_t retry_after_s, uint32_t rnd)
{
	struct pl_sink_response r = {.transport = PL_XPORT_NONE, .status = status,
				     .retry_after_s = retry_after_s, .batch_lines = 10};
	struct pl_delivery_verdict v;

	pl_delivery_result(dv, &r, 0, rnd, &v);
	assert_int_equal(v.action, PL_SINK_RETRY);
	assert_int_equal(v.ack, 0);
	assert_int_equal(v.quarantine, 0);
	assert_true(v.delay_ms > 0);
	return v.delay_ms;
}

/* Retry-After is never undercut, and capped at PL_BACKOFF_MAX_RETRY_AFTER_S. */
static void test_retry_after_honoured_and_capped(void **state)
{
	struct pl_delivery dv;

	(void)state;
	pl_delivery_init(&dv, 100);
	assert_int_equal(refused(&dv, 429, 30, 0), 30000);
	assert_int_equal(refused(&dv, 503, 7, 0xffffffffu) >= 7000, 1);
	assert_int_equal(refused(&dv, 503, 100000, 0xffffffffu),
			 PL_BACKOFF_MAX_RETRY_AFTER_S * 1000u);
	assert_int_equal(refused(&dv, 429, UINT32_MAX, 0), PL_BACKOFF_MAX_RETRY_AFTER_S * 1000u);
	/* the request stays the same while it fails */
	assert_int_equal(pl_delivery_next(&dv, 1000), 100);
}

/* The backoff's ceiling doubles up to the fast cap for 5xx and network errors, the slow cap
 * for 401; a success resets it, and the next failure starts from the bottom again. */
static void test_backoff_grows_and_resets(void **state)
{
	struct pl_delivery dv;
	struct pl_sink_response ok = {.transport = PL_XPORT_NONE, .status = 204, .batch_lines = 5};
	struct pl_sink_response down = {.transport = PL_XPORT_REFUSED, .batch_lines = 5};
	struct pl_delivery_verdict v;
	uint32_t ceiling = PL_BACKOFF_BASE_MS;

	(void)state;
	pl_delivery_init(&dv, 100);
	for (int i = 0; i < 8; i++) {
		uint32_t d = refused(&dv, 500, 0, 0xffffffffu);

		assert_int_equal(d, ceiling);
		ceiling = ceiling * 2 < PL_BACKOFF_CAP_MS ? ceiling * 2 : PL_BACKOFF_CAP_MS;
	}
	pl_delivery_result(&dv, &down, 0, 0, &v);
	assert_int_equal(v.delay_ms, PL_BACKOFF_CAP_MS / 2); /* lowest jitter at the cap */
	pl_delivery_result(&dv, &ok, 0, 0, &v);
	assert_int_equal(v.action, PL_SINK_OK);
	assert_int_equal(v.ack, 5);
	assert_int_equal(v.delay_ms, 0);
	assert_int_equal(dv.backoff.attempt, 0);
	assert_int_equal(pl_delivery_state(&dv), PL_DELIVERY_STEADY);
	assert_int_equal(refused(&dv, 500, 0, 0xffffffffu), PL_BACKOFF_BASE_MS);
	for (int i = 0; i < 12; i++)
		refused(&dv, 401, 0, 0xffffffffu);
	assert_int_equal(dv.backoff.slow, 1);
	assert_int_equal(refused(&dv, 401, 0, 0xffffffffu), PL_BACKOFF_SLOW_CAP_MS);
	/* a 5xx after that is the fast kind again */
	assert_true(refused(&dv, 503, 0, 0xffffffffu) <= PL_BACKOFF_CAP_MS);
}

/* A caller that sends fewer than asked (a full body), and one that removes an unsendable
 * record itself: still one quarantine, everything else in order. */
static void test_short_requests_and_removed(void **state)
{
	struct sim *s = sim_new(64, 64);
	struct pl_sink_response r = {.transport = PL_XPORT_NONE};

	(void)state;
	s->bad[40] = 1;
	while (s->head < s->n) {
		uint32_t n = pl_delivery_next(&s->dv, s->n - s->head), first_bad = 0;

		assert_true(n >= 1);
		if (n > 3)
			n -= 3; /* the body was full */
		for (uint32_t i = 0; i < n; i++)
			if (s->bad[s->head + i] && first_bad == 0)
				first_bad = i + 1;
		r.status = first_bad ? 400 : 204;
		r.body = first_bad ? PL_BODY_UNABLE_TO_PARSE : 0;
		r.batch_lines = n;
		pl_delivery_result(&s->dv, &r, 0, 0, &s->v);
		apply(s, n);
		assert_true(++s->requests < 64);
	}
	assert_int_equal(s->nquarantined, 1);
	assert_int_equal(s->quarantined[0], 40);
	assert_all_in_order(s);

	/* bisecting 8 with the bad line at 5, the caller removes record 0 (unencodable) */
	s = sim_new(8, 8);
	s->bad[5] = 1;
	step(s);
	assert_int_equal(pl_delivery_next(&s->dv, 8), 4);
	pl_delivery_removed(&s->dv, 1);
	s->bad[0] = 1; /* counts as not written */
	s->quarantined[s->nquarantined++] = s->head++;
	assert_int_equal(pl_delivery_next(&s->dv, 7), 3);
	drain(s, 20);
	assert_int_equal(s->quarantined[1], 5);
	assert_all_in_order(s);
}

/* What the machine is told about nothing: no answer, an empty request, nothing pending. */
static void test_edges(void **state)
{
	struct pl_delivery dv;
	struct pl_delivery_verdict v;
	struct pl_sink_response r = {.transport = PL_XPORT_NONE, .status = 400,
				     .body = PL_BODY_UNABLE_TO_PARSE, .batch_lines = 0};

	(void)state;
	pl_delivery_init(&dv, 0);
	assert_int_equal(dv.max, 1);
	assert_int_equal(pl_delivery_next(&dv, 0), 0);
	assert_int_equal(pl_delivery_next(&dv, UINT32_MAX), 1);
	pl_delivery_init(&dv, 5000);
	assert_int_equal(pl_delivery_next(&dv, UINT32_MAX), 5000);
	assert_int_equal(pl_delivery_next(&dv, 17), 17);
	pl_delivery_result(&dv, &r, 0, 0, &v); /* a request of nothing: nothing quarantined */
	assert_int_equal(v.quarantine, 0);
	assert_int_equal(v.ack, 0);
	r.status = 204;
	pl_delivery_result(&dv, &r, 0, 0, &v);
	assert_int_equal(v.ack, 0);
	pl_delivery_result(&dv, NULL, 0, 0, &v);
	assert_int_equal(v.action, PL_SINK_RETRY);
	assert_true(v.delay_ms > 0);
	assert_string_equal(pl_delivery_state_name(pl_delivery_state(&dv)), "failing");
	assert_string_equal(pl_delivery_state_name(PL_DELIVERY_BISECTING), "bisecting");
	assert_int_equal(pl_delivery_next(NULL, 5), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_bad_line_isolated),
		cmocka_unit_test(test_bisection_sequence),
		cmocka_unit_test(test_named_line),
		cmocka_unit_test(test_several_bad_lines),
		cmocka_unit_test(test_413_shrinks_and_grows_back),
		cmocka_unit_test(test_413_single_record_kept),
		cmocka_unit_test(test_retry_after_honoured_and_capped),
		cmocka_unit_test(test_backoff_grows_and_resets),
		cmocka_unit_test(test_short_requests_and_removed),
		cmocka_unit_test(test_edges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
