/* SPDX-License-Identifier: MIT */
/*
 * The delivery thread (src/linux/sinks/deliver.c) through the sink seam (sinks/sink.h), with a
 * capture sink in place of InfluxDB and a real store: every record reaches the sink once and
 * in order; a record the server refuses is found by bisection and quarantined, the others all
 * written; a 413 shrinks the requests and nothing is lost; a 503 is retried; a record that
 * cannot be encoded is quarantined unsent. The same policy as the firmware's
 * (powerlogger/delivery.h); this checks that the daemon's thread follows it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sinks/deliver.h"
#include "store/store.h"

#define NMAX 256

/* The capture sink: a "server" that refuses the line of a record with 666 pulses (400
 * "unable to parse"), requests of more than too_large lines (413), and answers the first
 * fail_first requests 503; encode refuses a record with 777 pulses. Lines are "PULSES\n". */
struct capture {
	uint32_t too_large, fail_first;
	int open;
	unsigned requests, refused;
	uint32_t written[NMAX];      /* the pulses of every line answered 2xx, in order */
	size_t nwritten;
	uint32_t largest_ok;         /* the largest request answered 2xx */
	char body[1 << 16];
	size_t len;
};

static struct capture cap;

static int cap_open(const void *cfg, void **out)
{
	assert_ptr_equal(cfg, &cap);
	cap.open = 1;
	*out = &cap;
	return 0;
}

static void cap_close(void *s)
{
	assert_ptr_equal(s, &cap);
	cap.open = 0;
}

static int cap_encode(void *s, char *buf, size_t size, size_t *len, const char *device,
		      int64_t seq, const struct pl_interval_record *rec)
{
	char line[32];
	int n;

	(void)s;
	assert_true(seq > 0);
	assert_string_equal(device, "house");
	if (rec->pulses == 777)
		return -PL_EINVAL;
	n = snprintf(line, sizeof line, "%u\n", rec->pulses);
	if (*len + (size_t)n > size)
		return -PL_ENOSPC;
	memcpy(buf + *len, line, (size_t)n);
	*len += (size_t)n;
	return 0;
}

static int cap_start(void *s, const char *buf, size_t len)
{
	struct capture *c = s;

	assert_true(len <= sizeof c->body);
	memcpy(c->body, buf, len);
	c->len = len;
	return 0;
}

static int cap_poll(void *s, int timeout_ms, struct pl_sink_result *res)
{
	struct capture *c = s;
	uint32_t lines = 0, vals[NMAX];
	const char *p = c->body, *end = c->body + c->len;
	int bad = 0;

	(void)timeout_ms;
	while (p < end) {
		uint32_t v = (uint32_t)strtoul(p, NULL, 10);

		bad |= v == 666;
		vals[lines++] = v;
		p = memchr(p, '\n', (size_t)(end - p)) + 1;
	}
	memset(res, 0, sizeof *res);
	res->resp.transport = PL_XPORT_NONE;
	c->requests++;
	if (c->fail_first > 0) {
		c->fail_first--;
		res->resp.status = 503;
		snprintf(res->message, sizeof res->message, "overloaded");
	} else if (c->too_large && lines > c->too_large) {
		res->resp.status = 413;
	} else if (bad) {
		res->resp.status = 400;
		snprintf(res->message, sizeof res->message, "unable to parse '666': bad");
		res->resp.body = pl_sink_body_flags(res->message, strlen(res->message));
	} else {
		res->resp.status = 204;
		for (uint32_t i = 0; i < lines; i++)
			c->written[c->nwritten++] = vals[i];
		if (lines > c->largest_ok)
			c->largest_ok = lines;
		return 1;
	}
	c->refused++;
	return 1;
}

static int cap_sending(void *s)
{
	(void)s;
	return 0;
}

static void cap_abort(void *s)
{
	(void)s;
}

static const struct pl_sink_ops cap_ops = {
	.kind = "capture", .open = cap_open, .close = cap_close, .encode = cap_encode,
	.start = cap_start, .poll = cap_poll, .sending = cap_sending, .abort = cap_abort,
};

struct rig {
	char dir[64], path[96];
	int64_t sink_id;
	struct pl_deliver_status st;
	uint64_t backlog, quarantined;
};

/* A store with the records' pulses as given, delivered with batch_max_records = batch. */
static void run(struct rig *r, const uint32_t *pulses, size_t n, uint32_t batch)
{
	struct pl_interval_record recs[NMAX];
	struct pl_deliver_config dc = {.name = "cap", .batch_max_records = batch};
	struct pl_deliver *d = NULL;
	struct pl_store *s = NULL;
	int64_t meter, oldest;
	char err[256];

	snprintf(r->dir, sizeof r->dir, "/tmp/pl-deliver-XXXXXX");
	assert_non_null(mkdtemp(r->dir));
	snprintf(r->path, sizeof r->path, "%s/store.db", r->dir);
	assert_int_equal(pl_store_open(r->path, PL_STORE_CREATE, &s, err, sizeof err), 0);
	assert_int_equal(pl_store_meter(s, "house", 1000, 60, &meter), 0);
	assert_int_equal(pl_store_sink(s, "cap", &r->sink_id), 0);
	memset(recs, 0, sizeof recs);
	for (size_t i = 0; i < n; i++) {
		recs[i].start_us = (INT64_C(1735689600) + (int64_t)i * 60) * PL_US_PER_S;
		recs[i].length_s = 60;
		recs[i].pulses = pulses[i];
	}
	assert_int_equal(pl_store_commit_interval(s, meter, recs, n, "t", 1), 0);

	assert_int_equal(pl_deliver_start(r->path, &cap_ops, &cap, &dc, r->sink_id, &d), 0);
	assert_int_equal(cap.open, 1);
	pl_deliver_allow_writes(d);
	pl_deliver_kick(d, 1, 1);
	for (int i = 0; i < 1000; i++) {
		pl_deliver_status(d, &r->st);
		if (r->st.idle_gen == 1 || r->st.broken)
			break;
		usleep(20 * 1000);
	}
	pl_deliver_stop(d, 1000, &r->st);
	assert_int_equal(cap.open, 0);
	assert_int_equal(r->st.broken, 0);
	assert_int_equal(r->st.idle_gen, 1);
	assert_int_equal(pl_store_backlog(s, r->sink_id, &r->backlog, &oldest), 0);
	assert_int_equal(pl_store_quarantined(s, r->sink_id, &r->quarantined), 0);
	pl_store_close(s);
	{
		char cmd[160];

		snprintf(cmd, sizeof cmd, "rm -rf '%s'", r->dir);
		assert_int_equal(system(cmd), 0);
	}
}

/* The written lines are the records' pulses in order, without the ones in skip. */
static void assert_written(const uint32_t *pulses, size_t n)
{
	size_t w = 0;

	for (size_t i = 0; i < n; i++) {
		if (pulses[i] == 666 || pulses[i] == 777)
			continue;
		assert_true(w < cap.nwritten);
		assert_int_equal(cap.written[w], pulses[i]);
		w++;
	}
	assert_int_equal(w, cap.nwritten);
}

static void fill(uint32_t *pulses, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pulses[i] = (uint32_t)i + 1;
}

static void test_all_in_order(void **state)
{
	uint32_t pulses[100];
	struct rig r;

	(void)state;
	memset(&cap, 0, sizeof cap);
	fill(pulses, 100);
	run(&r, pulses, 100, 16);
	assert_written(pulses, 100);
	assert_int_equal(cap.requests, 7); /* 6 of 16, one of 4 */
	assert_int_equal(r.st.delivered, 100);
	assert_int_equal(r.backlog, 0);
}

/* One bad record among 100: quarantined after a bisection of O(log n) requests, everything
 * else written once, in order. */
static void test_bad_line_bisected(void **state)
{
	uint32_t pulses[100];
	struct rig r;

	(void)state;
	memset(&cap, 0, sizeof cap);
	fill(pulses, 100);
	pulses[37] = 666;
	run(&r, pulses, 100, 64);
	assert_written(pulses, 100);
	assert_int_equal(r.st.quarantined, 1);
	assert_int_equal(r.quarantined, 1);
	assert_int_equal(r.st.delivered, 99);
	assert_int_equal(r.backlog, 0);
	assert_true(cap.refused <= 2 * 6 + 1);
	assert_true(cap.requests <= 2 * 6 + 4);
}

/* 413 above 5 lines: the requests shrink until the server takes them; nothing quarantined. */
static void test_413_shrinks(void **state)
{
	uint32_t pulses[60];
	struct rig r;

	(void)state;
	memset(&cap, 0, sizeof cap);
	cap.too_large = 5;
	fill(pulses, 60);
	run(&r, pulses, 60, 16);
	assert_written(pulses, 60);
	assert_true(cap.refused >= 2);
	assert_true(cap.largest_ok <= 5);
	assert_int_equal(r.quarantined, 0);
	assert_int_equal(r.backlog, 0);
}

/* A 503 keeps the records and is retried after the backoff; then all are written once. */
static void test_503_retried(void **state)
{
	uint32_t pulses[10];
	struct rig r;

	(void)state;
	memset(&cap, 0, sizeof cap);
	cap.fail_first = 1;
	fill(pulses, 10);
	run(&r, pulses, 10, 16);
	assert_written(pulses, 10);
	assert_int_equal(cap.requests, 2);
	assert_int_equal(r.st.failing, 0);
	assert_non_null(strstr(r.st.last_error, "HTTP 503 overloaded"));
}

/* A record the sink cannot encode is quarantined unsent, inside a bisection too. */
static void test_unencodable_quarantined(void **state)
{
	uint32_t pulses[40];
	struct rig r;

	(void)state;
	memset(&cap, 0, sizeof cap);
	fill(pulses, 40);
	pulses[0] = 777;
	pulses[9] = 666;
	pulses[20] = 777;
	run(&r, pulses, 40, 8);
	assert_written(pulses, 40);
	assert_int_equal(r.quarantined, 3);
	assert_int_equal(r.backlog, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_in_order),
		cmocka_unit_test(test_bad_line_bisected),
		cmocka_unit_test(test_413_shrinks),
		cmocka_unit_test(test_503_retried),
		cmocka_unit_test(test_unencodable_quarantined),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
