/* SPDX-License-Identifier: MIT */
/*
 * The firmware's HTTP request under the task watchdog (ports/esp32/main/logic/fw_http.c),
 * against a fake transport with a fake clock and a fake watchdog: hardware and a server's
 * timing that a real server cannot be made to produce on demand (a head that arrives after
 * 12 s, a server that never answers, a TLS connect that uses two read timeouts, a DNS server
 * that does not answer). The
 * watchdog period is the one the firmware is built with (CONFIG_ESP_TASK_WDT_TIMEOUT_S in
 * ports/esp32/sdkconfig.defaults) and the step the one net.c uses (FW_HTTP_STEP_MS of it).
 * The fake watchdog "bites" whenever the time between two feeds reaches the period, as the
 * ESP-IDF task watchdog would (it panics and reboots with CONFIG_ESP_TASK_WDT_PANIC).
 *
 * Also: fw_http_map_esp(), what ESP-IDF's blocking esp_http_client calls return, as step
 * results, and delivery through fw_delivery keeping the records over a timeout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fw_delivery.h"
#include "fw_http.h"
#include "fw_store.h"
#include "powerlogger/common.h"

struct fake {
	int64_t now;            /* ms */
	int64_t last_feed;
	int64_t max_gap;        /* longest time between two feeds */
	int32_t wdt_ms;
	unsigned bites;         /* times the gap reached the watchdog period */
	int64_t connect_ms;     /* how long open blocks (the fake caps it at 2 x its timeout) */
	int open_rc;
	int64_t answer_at;      /* when the response head arrives (fake time); < 0: never */
	int status;
	const char *resp_body;
	size_t body_pos;
	size_t write_max;       /* bytes one write call takes */
	int write_stalls;       /* writes time out */
	size_t written;
	unsigned opens, closes, header_calls;
	int64_t dns_at;         /* when the name's address arrives (fake time); < 0: never */
	unsigned resolves;
};

static struct fake F;

static int32_t wdt_s_from_sdkconfig(void)
{
	char path[1024], line[256];
	FILE *f;
	int32_t s = -1;

	snprintf(path, sizeof(path), "%s/ports/esp32/sdkconfig.defaults", PL_SOURCE_DIR);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "CONFIG_ESP_TASK_WDT_TIMEOUT_S=", 30) == 0)
			s = (int32_t)strtol(line + 30, NULL, 10);
	fclose(f);
	assert_true(s > 0);
	return s;
}

static void check_gap(struct fake *f)
{
	int64_t gap = f->now - f->last_feed;

	if (gap > f->max_gap)
		f->max_gap = gap;
	if (gap >= f->wdt_ms)
		f->bites++;
}

static int64_t blocked(struct fake *f, int64_t ms)
{
	f->now += ms;
	check_gap(f);
	return ms;
}

static int f_resolve(void *ctx, int32_t timeout_ms)
{
	struct fake *f = ctx;

	f->resolves++;
	if (f->dns_at >= 0 && f->now + timeout_ms >= f->dns_at) {
		blocked(f, f->dns_at > f->now ? f->dns_at - f->now : 0);
		return 0;
	}
	blocked(f, timeout_ms);
	return FW_HTTP_AGAIN;
}

static int f_open(void *ctx, size_t body_len, int32_t timeout_ms)
{
	struct fake *f = ctx;
	int64_t t = f->connect_ms;

	(void)body_len;
	f->opens++;
	/* esp-tls: the connect timeout is checked between handshake reads */
	if (t > 2 * (int64_t)timeout_ms)
		t = 2 * (int64_t)timeout_ms;
	blocked(f, t);
	if (f->connect_ms > 2 * (int64_t)timeout_ms)
		return FW_HTTP_FAIL(PL_XPORT_REFUSED); /* the connect timed out */
	return f->open_rc;
}

static int f_write(void *ctx, const char *buf, size_t len, int32_t timeout_ms)
{
	struct fake *f = ctx;
	size_t n = len < f->write_max ? len : f->write_max;

	(void)buf;
	if (f->write_stalls) {
		blocked(f, timeout_ms);
		return FW_HTTP_FAIL(PL_XPORT_TIMEOUT);
	}
	blocked(f, 1);
	f->written += n;
	return (int)n;
}

static int f_headers(void *ctx, int32_t timeout_ms)
{
	struct fake *f = ctx;

	f->header_calls++;
	if (f->answer_at >= 0 && f->now + timeout_ms >= f->answer_at) {
		blocked(f, f->answer_at > f->now ? f->answer_at - f->now : 0);
		return 0;
	}
	blocked(f, timeout_ms); /* the whole timeout, nothing came */
	return FW_HTTP_AGAIN;
}

static int f_read(void *ctx, char *buf, size_t cap, int32_t timeout_ms)
{
	struct fake *f = ctx;
	size_t left = f->resp_body ? strlen(f->resp_body) - f->body_pos : 0;
	size_t n = left < cap ? left : cap;

	(void)timeout_ms;
	blocked(f, 1);
	memcpy(buf, f->resp_body ? f->resp_body + f->body_pos : "", n);
	f->body_pos += n;
	return (int)n;
}

static int f_status(void *ctx)
{
	return ((struct fake *)ctx)->status;
}

static void f_close(void *ctx)
{
	((struct fake *)ctx)->closes++;
}

static int64_t f_now(void *ctx)
{
	return ((struct fake *)ctx)->now;
}

static void f_feed(void *ctx)
{
	struct fake *f = ctx;

	check_gap(f);
	f->last_feed = f->now;
}

static const struct fw_http_ops OPS = {
	.resolve = f_resolve, .open = f_open, .write = f_write, .fetch_headers = f_headers, .read = f_read,
	.status = f_status, .close = f_close, .now_ms = f_now, .feed = f_feed,
};

/* The limits net.c builds with. */
static struct fw_http_limits firmware_limits(void)
{
	struct fw_http_limits l = {
		.step_ms = FW_HTTP_STEP_MS(wdt_s_from_sdkconfig()),
		.deadline_ms = FW_HTTP_DEADLINE_MS,
	};

	return l;
}

static void fake_reset(void)
{
	memset(&F, 0, sizeof(F));
	F.now = 1000000;
	F.last_feed = F.now;
	F.wdt_ms = wdt_s_from_sdkconfig() * 1000;
	F.connect_ms = 30;
	F.answer_at = -1;
	F.write_max = 700;
	F.dns_at = F.now; /* the name is known at once */
}

static const char BODY[] = "energy_meter_reading,device=esp32 value=3i 1735689600\n";

/* A slow server: the head comes 12 s after the request, longer than the watchdog period
 * (10 s) and within the deadline. Before the fix one esp_http_client_perform() waited for it
 * without feeding the watchdog and the device rebooted; now it is written and nothing bites. */
static void test_slow_server_answers_without_a_bite(void **state)
{
	struct fw_http_limits lim = firmware_limits();
	struct fw_http_result res;

	(void)state;
	fake_reset();
	F.answer_at = F.now + 12000;
	F.status = 204;
	assert_true(12000 > F.wdt_ms);
	assert_int_equal(fw_http_post(&OPS, &F, &lim, BODY, strlen(BODY), &res), 0);
	assert_int_equal(res.transport, PL_XPORT_NONE);
	assert_int_equal(res.status, 204);
	assert_int_equal(F.written, strlen(BODY));
	assert_int_equal(F.bites, 0);
	assert_true(F.max_gap < F.wdt_ms);
	assert_true(F.header_calls > 1); /* it did wait in several steps */
	assert_int_equal(F.closes, 1);
}

/* A server that accepts the connection and never answers: a timeout at the deadline (the
 * records are kept by fw_delivery), the watchdog fed all along. */
static void test_silent_server_times_out_at_deadline(void **state)
{
	struct fw_http_limits lim = firmware_limits();
	struct fw_http_result res;
	int64_t t0;

	(void)state;
	fake_reset();
	t0 = F.now;
	assert_int_equal(fw_http_post(&OPS, &F, &lim, BODY, strlen(BODY), &res), 0);
	assert_int_equal(res.transport, PL_XPORT_TIMEOUT);
	assert_true(F.now - t0 >= lim.deadline_ms);
	assert_true(F.now - t0 <= lim.deadline_ms + 100);
	assert_int_equal(F.bites, 0);
	assert_true(F.max_gap <= FW_HTTP_WORST_BLOCK_MS(lim.step_ms));
	assert_int_equal(F.closes, 1);
}

/* A TLS connect that uses up two read timeouts (esp-tls checks its timeout only between
 * handshake reads), then a 400 with a message: the longest call stays below the period. */
static void test_slow_tls_connect_and_message(void **state)
{
	struct fw_http_limits lim = firmware_limits();
	struct fw_http_result res;

	(void)state;
	fake_reset();
	F.connect_ms = 2 * (int64_t)lim.step_ms;
	F.answer_at = F.now + 2 * (int64_t)lim.step_ms + 300;
	F.status = 400;
	F.resp_body = "{\"error\":\"unable to parse 'x': missing fields\"}";
	assert_int_equal(fw_http_post(&OPS, &F, &lim, BODY, strlen(BODY), &res), 0);
	assert_int_equal(res.transport, PL_XPORT_NONE);
	assert_int_equal(res.status, 400);
	assert_string_equal(res.msg, F.resp_body);
	assert_int_equal(F.bites, 0);
	assert_true(FW_HTTP_WORST_BLOCK_MS(lim.step_ms) < F.wdt_ms);
}

/* A long body goes out in chunks (each call fed); a write that times out is a timeout, and
 * never repeated: how much of the body went out is unknown. */
static void test_body_in_chunks_and_write_stall(void **state)
{
	static char big[FW_DELIVERY_MAX_BATCH * FW_DELIVERY_LINE_BYTES];
	struct fw_http_limits lim = firmware_limits();
	struct fw_http_result res;

	(void)state;
	memset(big, 'x', sizeof(big));
	fake_reset();
	F.answer_at = F.now;
	F.status = 204;
	assert_int_equal(fw_http_post(&OPS, &F, &lim, big, sizeof(big), &res), 0);
	assert_int_equal(res.status, 204);
	assert_int_equal(F.written, sizeof(big));

	fake_reset();
	F.write_stalls = 1;
	assert_int_equal(fw_http_post(&OPS, &F, &lim, big, sizeof(big), &res), 0);
	assert_int_equal(res.transport, PL_XPORT_TIMEOUT);
	assert_int_equal(F.header_calls, 0);
	assert_int_equal(F.closes, 1);
	assert_int_equal(F.bites, 0);

	fake_reset();
	F.connect_ms = 10 * (int64_t)lim.step_ms; /* never connects */
	assert_int_equal(fw_http_post(&OPS, &F, &lim, BODY, strlen(BODY), &res), 0);
	assert_int_equal(res.transport, PL_XPORT_REFUSED);
	assert_int_equal(F.bites, 0);
}

/*
 * The fake watchdog does bite a transport that blocks as the firmware did before: one
 * esp_http_client_perform() with .timeout_ms = 15000 is one step of 15 s. This shows the
 * checks above can fail, and that limits like those are refused only by this test, so the
 * firmware's step must be derived from the period (net.c checks it at compile time).
 */
static void test_old_blocking_request_bites(void **state)
{
	struct fw_http_limits old = {.step_ms = 15000, .deadline_ms = 15000};
	struct fw_http_result res;

	(void)state;
	fake_reset();
	assert_int_equal(fw_http_post(&OPS, &F, &old, BODY, strlen(BODY), &res), 0);
	assert_int_equal(res.transport, PL_XPORT_TIMEOUT);
	assert_true(F.bites > 0);
}

static void test_bad_arguments(void **state)
{
	struct fw_http_limits bad = {.step_ms = 0, .deadline_ms = 1000};
	struct fw_http_limits lim = firmware_limits();
	struct fw_http_result res;
	struct fw_http_ops missing = OPS;

	(void)state;
	fake_reset();
	assert_int_equal(fw_http_post(&OPS, &F, &bad, BODY, 3, &res), -PL_EINVAL);
	missing.feed = NULL;
	assert_int_equal(fw_http_post(&missing, &F, &lim, BODY, 3, &res), -PL_EINVAL);
	assert_int_equal(fw_http_post(&OPS, &F, &lim, NULL, 3, &res), -PL_EINVAL);
	assert_int_equal(F.opens, 0);
}

/* The DNS server does not answer: lwIP's resolver would have waited 7 s per server inside
 * the connect (14 s with two), unfed. The lookup is its own step: a DNS failure at the
 * deadline, no bite, no connect attempted. A slow one (9 s) is fine. */
static void test_dns_outside_the_connect(void **state)
{
	struct fw_http_limits lim = firmware_limits();
	struct fw_http_result res;

	(void)state;
	fake_reset();
	F.dns_at = -1;
	assert_int_equal(fw_http_post(&OPS, &F, &lim, BODY, strlen(BODY), &res), 0);
	assert_int_equal(res.transport, PL_XPORT_DNS);
	assert_int_equal(F.opens, 0);
	assert_int_equal(F.bites, 0);
	assert_true(F.resolves > 1);

	fake_reset();
	F.dns_at = F.now + 9000;
	F.answer_at = F.now + 9500;
	F.status = 204;
	assert_int_equal(fw_http_post(&OPS, &F, &lim, BODY, strlen(BODY), &res), 0);
	assert_int_equal(res.transport, PL_XPORT_NONE);
	assert_int_equal(res.status, 204);
	assert_int_equal(F.bites, 0);
}

static void test_url_host(void **state)
{
	char h[32];

	(void)state;
	assert_int_equal(fw_http_url_host("http://192.168.1.10:8086", h, sizeof(h)), 0);
	assert_string_equal(h, "192.168.1.10");
	assert_int_equal(fw_http_url_host("https://eu.influxdata.com/x?y", h, sizeof(h)), 0);
	assert_string_equal(h, "eu.influxdata.com");
	assert_int_equal(fw_http_url_host("http://[fd00::1]:8086", h, sizeof(h)), 0);
	assert_string_equal(h, "fd00::1");
	assert_int_equal(fw_http_url_host("http://influx", h, sizeof(h)), 0);
	assert_string_equal(h, "influx");
	assert_int_equal(fw_http_url_host("ftp://x", h, sizeof(h)), -PL_EINVAL);
	assert_int_equal(fw_http_url_host("http://:8086", h, sizeof(h)), -PL_EINVAL);
	assert_int_equal(fw_http_url_host("http://u:p@host", h, sizeof(h)), -PL_EINVAL);
	assert_int_equal(fw_http_url_host("http://[fd00::1", h, sizeof(h)), -PL_EINVAL);
	assert_int_equal(fw_http_url_host("http://abcdefghijklmnopqrstuvwxyz0123456789", h,
					  sizeof(h)), -PL_ENOSPC);
}

/* What ESP-IDF's blocking calls return (read in esp_http_client.c, v5.1 to v6.x). */
static void test_map_esp_errors(void **state)
{
	(void)state;
	/* open = connect + request head */
	assert_int_equal(fw_http_map_esp(FW_HTTP_OPEN, FW_ESP_OK), 0);
	assert_int_equal(fw_http_map_esp(FW_HTTP_OPEN, FW_ESP_ERR_HTTP_CONNECT),
			 FW_HTTP_FAIL(PL_XPORT_REFUSED));
	assert_int_equal(fw_http_map_esp(FW_HTTP_OPEN, FW_ESP_ERR_HTTP_WRITE_DATA),
			 FW_HTTP_FAIL(PL_XPORT_OTHER));
	assert_int_equal(fw_http_map_esp(FW_HTTP_OPEN, FW_ESP_ERR_HTTP_INVALID_TRANSPORT),
			 FW_HTTP_FAIL(PL_XPORT_OTHER));
	/* async mode's "in progress" is never a reason to call again in blocking mode */
	assert_int_equal(fw_http_map_esp(FW_HTTP_OPEN, FW_ESP_ERR_HTTP_EAGAIN),
			 FW_HTTP_FAIL(PL_XPORT_OTHER));
	assert_int_equal(fw_http_map_esp(FW_HTTP_OPEN, FW_ESP_ERR_HTTP_CONNECTING),
			 FW_HTTP_FAIL(PL_XPORT_OTHER));
	assert_int_equal(fw_http_map_esp(FW_HTTP_OPEN, FW_ESP_ERR_NO_MEM),
			 FW_HTTP_FAIL(PL_XPORT_OTHER));
	/* write: bytes, or 0 = timed out with an unknown part sent: a timeout, not "again" */
	assert_int_equal(fw_http_map_esp(FW_HTTP_WRITE, 512), 512);
	assert_int_equal(fw_http_map_esp(FW_HTTP_WRITE, 0), FW_HTTP_FAIL(PL_XPORT_TIMEOUT));
	assert_int_equal(fw_http_map_esp(FW_HTTP_WRITE, -1), FW_HTTP_FAIL(PL_XPORT_OTHER));
	/* fetch_headers: content length (0: chunked or none), the read timeout, or a failure */
	assert_int_equal(fw_http_map_esp(FW_HTTP_HEADERS, 0), 0);
	assert_int_equal(fw_http_map_esp(FW_HTTP_HEADERS, 1234), 0);
	assert_int_equal(fw_http_map_esp(FW_HTTP_HEADERS, -FW_ESP_ERR_HTTP_EAGAIN), FW_HTTP_AGAIN);
	assert_int_equal(fw_http_map_esp(FW_HTTP_HEADERS, FW_ESP_FAIL),
			 FW_HTTP_FAIL(PL_XPORT_OTHER));
	/* read */
	assert_int_equal(fw_http_map_esp(FW_HTTP_READ, 17), 17);
	assert_int_equal(fw_http_map_esp(FW_HTTP_READ, 0), 0);
	assert_int_equal(fw_http_map_esp(FW_HTTP_READ, -FW_ESP_ERR_HTTP_EAGAIN), FW_HTTP_AGAIN);
	assert_int_equal(fw_http_map_esp(FW_HTTP_READ, FW_ESP_FAIL), FW_HTTP_FAIL(PL_XPORT_OTHER));
	/* the step results cannot be mistaken for byte counts or each other */
	assert_true(FW_HTTP_IS_FAIL(FW_HTTP_FAIL(PL_XPORT_NONE)));
	assert_false(FW_HTTP_IS_FAIL(FW_HTTP_AGAIN));
	assert_int_equal(FW_HTTP_FAIL_CLASS(FW_HTTP_FAIL(PL_XPORT_TLS)), PL_XPORT_TLS);
}

/* ---- through fw_delivery, as net.c wires it ---- */

static int post_via_http(void *ctx, const char *body, size_t len, struct fw_http_result *res)
{
	struct fw_http_limits lim = firmware_limits();

	return fw_http_post(&OPS, ctx, &lim, body, len, res);
}

static void test_delivery_keeps_records_over_a_timeout(void **state)
{
	static struct fw_record storage[16];
	static struct fw_store_ram ram;
	static struct fw_store store;
	static struct fw_time tm;
	static struct fw_delivery d;
	struct fw_delivery_config cfg = {.device = "esp32", .precision = PL_PREC_S, .seed = 7};
	struct fw_delivery_event ev;

	(void)state;
	fake_reset();
	fw_store_ram_init(&ram, storage, 16, &store);
	fw_time_init(&tm, 1);
	assert_int_equal(fw_time_sync(&tm, 0, INT64_C(1735689600) * 1000000), 1);
	assert_int_equal(fw_delivery_init(&d, &cfg, &store, &tm, post_via_http, &F), 0);
	for (int i = 0; i < 3; i++) {
		struct fw_record r = {0};

		r.rec.start_us = INT64_C(1735689600) * 1000000 + i * INT64_C(20000000);
		r.rec.length_s = 20;
		r.rec.pulses = 5;
		r.rec.energy_uwh = 5000000;
		r.rec.register_uwh = 1000000000;
		r.boot = 1;
		r.stamped = 1;
		assert_int_equal(fw_store_append(&store, &r), 0);
	}
	/* silent server: a timeout, the records stay */
	assert_int_equal(fw_delivery_step(&d, F.now, 1, &ev), 1);
	assert_int_equal(ev.action, PL_SINK_RETRY);
	assert_int_equal(ev.transport, PL_XPORT_TIMEOUT);
	assert_int_equal(fw_store_count(&store), 3);
	/* then a slow one: written after 12 s, no bite */
	F.now += 60000;
	F.last_feed = F.now; /* the task loop fed it meanwhile */
	F.answer_at = F.now + 12000;
	F.status = 204;
	assert_int_equal(fw_delivery_step(&d, F.now, 1, &ev), 1);
	assert_int_equal(ev.action, PL_SINK_OK);
	assert_int_equal(fw_store_count(&store), 0);
	assert_int_equal(F.bites, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slow_server_answers_without_a_bite),
		cmocka_unit_test(test_silent_server_times_out_at_deadline),
		cmocka_unit_test(test_slow_tls_connect_and_message),
		cmocka_unit_test(test_body_in_chunks_and_write_stall),
		cmocka_unit_test(test_old_blocking_request_bites),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_map_esp_errors),
		cmocka_unit_test(test_dns_outside_the_connect),
		cmocka_unit_test(test_url_host),
		cmocka_unit_test(test_delivery_keeps_records_over_a_timeout),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
