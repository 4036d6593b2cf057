/* SPDX-License-Identifier: MIT */
/*
 * The firmware's delivery state machine (ports/esp32/main/logic/fw_delivery.c) against a fake
 * HTTP transport: 500 and timeouts keep the records and back off, 204 removes them, a 400 in a
 * batch is bisected down to the one bad line, which is quarantined with the server's message
 * while every good record is written; records wait for the clock; 401 backs off slowly;
 * Retry-After is honoured; records of a boot that never knew the time are quarantined unsent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "fw_delivery.h"
#include "powerlogger/common.h"

#define S INT64_C(1000000)
#define WALL0 (INT64_C(1735689600) * S)

/* A fake transport: scripted answers first, then a "server" that refuses any line with the
 * value 666 (400 unable to parse) and accepts the rest (204). */
struct fake {
	struct fw_http_result script[16];
	size_t nscript, next;
	unsigned requests;
	unsigned lines_seen;       /* lines that reached the server in all requests */
	unsigned lines_written;    /* lines in requests answered 2xx */
	char last_body[4096];
};

static size_t count_lines(const char *body, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += body[i] == '\n';
	return n;
}

static int fake_post(void *ctx, const char *body, size_t len, struct fw_http_result *res)
{
	struct fake *f = ctx;
	size_t lines = count_lines(body, len);

	f->requests++;
	f->lines_seen += (unsigned)lines;
	snprintf(f->last_body, sizeof(f->last_body), "%.*s", (int)len, body);
	if (f->next < f->nscript) {
		*res = f->script[f->next++];
	} else if (strstr(f->last_body, " value=666,") != NULL) {
		res->transport = PL_XPORT_NONE;
		res->status = 400;
		snprintf(res->msg, sizeof(res->msg),
			 "{\"error\":\"unable to parse 'energy_meter_reading': bad field\"}");
	} else {
		res->transport = PL_XPORT_NONE;
		res->status = 204;
	}
	if (res->transport == PL_XPORT_NONE && res->status / 100 == 2)
		f->lines_written += (unsigned)lines;
	return 0;
}

static void script(struct fake *f, enum pl_sink_transport x, int status, uint32_t retry_after,
		   const char *msg)
{
	struct fw_http_result *r = &f->script[f->nscript++];

	memset(r, 0, sizeof(*r));
	r->transport = x;
	r->status = status;
	r->retry_after_s = retry_after;
	snprintf(r->msg, sizeof(r->msg), "%s", msg);
}

struct rig {
	struct fake fake;
	struct fw_record storage[64];
	struct fw_store_ram ram;
	struct fw_store store;
	struct fw_time time;
	struct fw_delivery d;
};

static struct rig *rig_new(uint32_t max_batch)
{
	static struct rig r;
	struct fw_delivery_config cfg = {
		.device = "esp32 meter", .precision = PL_PREC_S, .max_batch = max_batch, .seed = 42,
	};

	memset(&r, 0, sizeof(r));
	fw_store_ram_init(&r.ram, r.storage, 64, &r.store);
	fw_time_init(&r.time, 1);
	assert_int_equal(fw_time_sync(&r.time, 0, WALL0), 1);
	assert_int_equal(fw_delivery_init(&r.d, &cfg, &r.store, &r.time, fake_post, &r.fake), 0);
	return &r;
}

static void add(struct rig *r, int64_t start, uint32_t pulses, uint8_t stamped, uint32_t boot)
{
	struct fw_record rec = {0};

	rec.rec.start_us = start;
	rec.rec.length_s = 20;
	rec.rec.pulses = pulses;
	rec.rec.energy_uwh = (int64_t)pulses * 1000000;
	rec.rec.register_uwh = 5000000000;
	rec.boot = boot;
	rec.stamped = stamped;
	assert_int_equal(fw_store_append(&r->store, &rec), 0);
}

/* The Kconfig device name is free text: one InfluxDB would store differently (issue 9) is
 * refused at init, and a name with unicode, quotes and inner backslashes is accepted. */
static void test_device_name_checked(void **state)
{
	static const char *const refused[] = { "", "dev\\", "foo\\,bar", "east\\ ", "\\ \\=\"",
					       "a\\\\b", "a\tb", "a\nb", "caf\xe9" };
	struct rig *r = rig_new(0);
	struct fw_delivery d;
	struct fw_delivery_config cfg = { .precision = PL_PREC_S };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		cfg.device = refused[i];
		if (fw_delivery_init(&d, &cfg, &r->store, &r->time, fake_post, &r->fake) !=
		    -PL_EINVAL)
			fail_msg("device name \"%s\" was not refused", refused[i]);
	}
	cfg.device = "Z\xc3\xa4hler \"Keller\" a\\b \xf0\x9f\x92\xa1";
	assert_int_equal(fw_delivery_init(&d, &cfg, &r->store, &r->time, fake_post, &r->fake), 0);
}

static void test_500_timeout_then_204(void **state)
{
	struct rig *r = rig_new(0);
	struct fw_delivery_event ev;
	int64_t now = 1000;

	(void)state;
	for (int i = 0; i < 5; i++)
		add(r, WALL0 + i * 20 * S, (uint32_t)i + 1, 1, 1);
	script(&r->fake, PL_XPORT_NONE, 500, 0, "{\"error\":\"timeout\"}");
	script(&r->fake, PL_XPORT_TIMEOUT, 0, 0, "");
	script(&r->fake, PL_XPORT_NONE, 204, 0, "");

	/* network down: nothing happens */
	assert_int_equal(fw_delivery_step(&r->d, now, 0, &ev), 0);
	assert_int_equal(r->fake.requests, 0);

	assert_int_equal(fw_delivery_step(&r->d, now, 1, &ev), 1);
	assert_int_equal(ev.action, PL_SINK_RETRY);
	assert_int_equal(ev.status, 500);
	assert_int_equal(ev.lines, 5);
	assert_true(ev.delay_ms <= PL_BACKOFF_BASE_MS);
	assert_int_equal(r->d.state, FW_DELIVERY_BACKOFF);
	assert_int_equal(fw_store_count(&r->store), 5); /* kept */
	assert_non_null(strstr(r->fake.last_body, "device=esp32\\ meter value=1,"));

	/* not before the backoff is over */
	if (ev.delay_ms > 0)
		assert_int_equal(fw_delivery_step(&r->d, now + ev.delay_ms - 1, 1, &ev), 0);
	now += PL_BACKOFF_BASE_MS;
	assert_true(fw_delivery_wait_ms(&r->d, now) == 0);
	assert_int_equal(fw_delivery_step(&r->d, now, 1, &ev), 1);
	assert_int_equal(ev.action, PL_SINK_RETRY);
	assert_int_equal(ev.transport, PL_XPORT_TIMEOUT);
	assert_true(ev.delay_ms <= 2 * PL_BACKOFF_BASE_MS);
	assert_int_equal(fw_store_count(&r->store), 5);

	now += 2 * PL_BACKOFF_BASE_MS;
	assert_int_equal(fw_delivery_step(&r->d, now, 1, &ev), 1);
	assert_int_equal(ev.action, PL_SINK_OK);
	assert_int_equal(fw_store_count(&r->store), 0); /* removed only now */
	assert_int_equal(r->d.delivered, 5);
	assert_int_equal(r->d.policy.backoff.attempt, 0);
	assert_int_equal(r->d.state, FW_DELIVERY_IDLE);
	assert_int_equal(fw_delivery_step(&r->d, now, 1, &ev), 0); /* nothing left */
	assert_int_equal(r->fake.requests, 3);
}

static void test_400_bisects_to_quarantine(void **state)
{
	struct rig *r = rig_new(8);
	struct fw_delivery_event ev;
	int steps = 0, rc;

	(void)state;
	for (int i = 0; i < 11; i++)
		add(r, WALL0 + i * 20 * S, i == 5 ? 666 : (uint32_t)i + 1, 1, 1);
	while ((rc = fw_delivery_step(&r->d, 0, 1, &ev)) == 1) {
		assert_true(ev.action == PL_SINK_OK || ev.action == PL_SINK_SPLIT ||
			    ev.action == PL_SINK_QUARANTINE);
		assert_true(++steps < 20);
	}
	assert_int_equal(rc, 0);
	assert_int_equal(fw_store_count(&r->store), 0);
	assert_int_equal(r->ram.quarantined, 1);
	assert_int_equal(r->ram.q[0].rec.pulses, 666);
	assert_non_null(strstr(r->ram.q_why[0], "unable to parse"));
	assert_int_equal(r->d.delivered, 10);
	assert_int_equal(r->d.quarantined, 1);
	/* 8 refused, 4 ok, 4 refused, 2 refused, 1 ok, 1 quarantined, the last 5 ok */
	assert_int_equal(r->fake.requests, 7);
	assert_int_equal(r->fake.lines_written, 10);
}

static void test_single_400_quarantines_and_goes_on(void **state)
{
	struct rig *r = rig_new(1);
	struct fw_delivery_event ev;

	(void)state;
	add(r, WALL0, 666, 1, 1);
	add(r, WALL0 + 20 * S, 3, 1, 1);
	assert_int_equal(fw_delivery_step(&r->d, 0, 1, &ev), 1);
	assert_int_equal(ev.action, PL_SINK_QUARANTINE);
	assert_int_equal(ev.status, 400);
	assert_int_equal(fw_store_count(&r->store), 1);
	assert_int_equal(fw_delivery_step(&r->d, 0, 1, &ev), 1);
	assert_int_equal(ev.action, PL_SINK_OK);
	assert_int_equal(fw_store_count(&r->store), 0);
}

static void test_waits_for_clock_then_stamps(void **state)
{
	struct rig *r = rig_new(0);
	struct fw_delivery_event ev;
	char want[64];

	(void)state;
	fw_time_init(&r->time, 1); /* not synced */
	add(r, 40 * S, 2, 0, 1);    /* made 40 s after boot */
	add(r, 60 * S, 3, 0, 1);
	assert_int_equal(fw_delivery_step(&r->d, 0, 1, &ev), 0);
	assert_int_equal(r->fake.requests, 0);
	assert_int_equal(fw_store_count(&r->store), 2);
	/* at monotonic 100 s the clock is set to WALL0 */
	assert_int_equal(fw_time_sync(&r->time, 100 * S, WALL0), 1);
	assert_int_equal(fw_delivery_step(&r->d, 0, 1, &ev), 1);
	assert_int_equal(ev.action, PL_SINK_OK);
	assert_int_equal(ev.lines, 2);
	snprintf(want, sizeof(want), " %lld\n", (long long)(WALL0 / S - 60));
	assert_non_null(strstr(r->fake.last_body, want));
	snprintf(want, sizeof(want), " %lld\n", (long long)(WALL0 / S - 40));
	assert_non_null(strstr(r->fake.last_body, want));
}

static void test_unknowable_time_quarantined_unsent(void **state)
{
	struct rig *r = rig_new(0);
	struct fw_delivery_event ev;

	(void)state;
	add(r, 30 * S, 2, 0, 0);      /* boot 0 rebooted before it ever knew the time */
	add(r, WALL0, 4, 1, 1);
	assert_int_equal(fw_delivery_step(&r->d, 0, 1, &ev), 1);
	assert_int_equal(ev.action, PL_SINK_QUARANTINE);
	assert_non_null(strstr(ev.msg, "boot 0"));
	assert_int_equal(r->fake.requests, 0);
	assert_int_equal(r->ram.q[0].rec.pulses, 2);
	assert_int_equal(fw_delivery_step(&r->d, 0, 1, &ev), 1);
	assert_int_equal(ev.action, PL_SINK_OK);
	assert_int_equal(fw_store_count(&r->store), 0);
}

/* A 400 that is not about the lines (a server without the v3 endpoint): nothing is
 * quarantined, the record waits, and the retries are slow like an auth failure's. */
static void test_other_400_kept_and_slow(void **state)
{
	struct rig *r = rig_new(0);
	struct fw_delivery_event ev;
	int64_t now = 0;

	(void)state;
	add(r, WALL0, 1, 1, 1);
	for (int i = 0; i < 12; i++)
		script(&r->fake, PL_XPORT_NONE, 400, 0, "unsupported path requested");
	for (int i = 0; i < 12; i++) {
		assert_int_equal(fw_delivery_step(&r->d, now, 1, &ev), 1);
		assert_int_equal(ev.action, PL_SINK_RETRY);
		assert_true(ev.flags & PL_SINK_F_CONFIG);
		now += ev.delay_ms;
	}
	assert_int_equal(r->d.policy.backoff.slow, 1);
	assert_true(ev.delay_ms > PL_BACKOFF_CAP_MS);
	assert_int_equal(r->d.quarantined, 0);
	assert_int_equal(fw_store_count(&r->store), 1);
}

static void test_auth_slow_and_retry_after(void **state)
{
	struct rig *r = rig_new(0);
	struct fw_delivery_event ev;
	int64_t now = 0;

	(void)state;
	add(r, WALL0, 1, 1, 1);
	for (int i = 0; i < 12; i++)
		script(&r->fake, PL_XPORT_NONE, 401, 0, "{\"error\":\"authorization failed\"}");
	for (int i = 0; i < 12; i++) {
		assert_int_equal(fw_delivery_step(&r->d, now, 1, &ev), 1);
		assert_int_equal(ev.action, PL_SINK_RETRY);
		assert_true(ev.flags & PL_SINK_F_AUTH);
		assert_true(ev.delay_ms <= PL_BACKOFF_SLOW_CAP_MS);
		now += ev.delay_ms;
	}
	assert_int_equal(r->d.policy.backoff.slow, 1);
	assert_int_equal(fw_store_count(&r->store), 1);
	r->fake.nscript = r->fake.next = 0;
	script(&r->fake, PL_XPORT_NONE, 429, 30, "");
	assert_int_equal(fw_delivery_step(&r->d, now, 1, &ev), 1);
	assert_true(ev.delay_ms >= 30000);
	assert_int_equal(r->d.policy.backoff.slow, 0);
	assert_int_equal(fw_delivery_step(&r->d, now + 29999, 1, &ev), 0);
	assert_int_equal(fw_delivery_step(&r->d, now + ev.delay_ms, 1, &ev), 1);
	assert_int_equal(ev.action, PL_SINK_OK);
	assert_int_equal(fw_store_count(&r->store), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_device_name_checked),
		cmocka_unit_test(test_500_timeout_then_204),
		cmocka_unit_test(test_400_bisects_to_quarantine),
		cmocka_unit_test(test_single_400_quarantines_and_goes_on),
		cmocka_unit_test(test_waits_for_clock_then_stamps),
		cmocka_unit_test(test_unknowable_time_quarantined_unsent),
		cmocka_unit_test(test_auth_slow_and_retry_after),
		cmocka_unit_test(test_other_400_kept_and_slow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
