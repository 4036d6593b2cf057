/* SPDX-License-Identifier: MIT */
/*
 * Tests of the web server's text (src/linux/http/buf.c, api.c): exact decimals (energies in
 * kWh from µWh, joules from µWh, negative values), the JSON, Prometheus label and CSV escapes
 * with hostile names, the buffer's cap, and the times of requests (Unix seconds, RFC 3339 with
 * Z, offsets and fractions; malformed ones refused) and of answers (UTC and local, with the
 * zone's offset across a daylight-saving change).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "http/http_priv.h"

static char *text(struct pl_buf *b)
{
	static char out[4096];

	snprintf(out, sizeof(out), "%s", b->p ? b->p : "");
	pl_buf_free(b);
	return out;
}

static void test_fixed(void **state)
{
	struct pl_buf b = { 0 };

	(void)state;
	pl_buf_fixed(&b, 12345678000, 9);
	assert_string_equal(text(&b), "12.345678");
	pl_buf_fixed(&b, 0, 9);
	assert_string_equal(text(&b), "0");
	pl_buf_fixed(&b, -1500, 3);
	assert_string_equal(text(&b), "-1.5");
	pl_buf_fixed(&b, 7, 9);
	assert_string_equal(text(&b), "0.000000007");
	pl_buf_fixed(&b, 22000000 * 36, 4); /* 0.022 kWh = 79200 J */
	assert_string_equal(text(&b), "79200");
	pl_buf_fixed(&b, INT64_MIN, 9);
	assert_string_equal(text(&b), "-9223372036.854775808");
	pl_buf_fixed(&b, 42, 0);
	assert_string_equal(text(&b), "42");
}

static void test_escapes(void **state)
{
	struct pl_buf b = { 0 };

	(void)state;
	pl_buf_json_str(&b, "a\"b\\c\n\x01\x7f\xc3\xa9");
	assert_string_equal(text(&b), "\"a\\\"b\\\\c\\u000a\\u0001\\u007f\xc3\xa9\"");
	pl_buf_json_str(&b, "\xff\xc3(\xed\xa0\x80\xf0\x9f\x94\x8c"); /* bad, bad, surrogate, ok */
	assert_string_equal(text(&b), "\"\\ufffd\\ufffd(\\ufffd\\ufffd\\ufffd\xf0\x9f\x94\x8c\"");
	pl_buf_label(&b, "house \"1\"\\\nx");
	assert_string_equal(text(&b), "house \\\"1\\\"\\\\\\nx");
	pl_buf_csv(&b, "plain");
	assert_string_equal(text(&b), "plain");
	pl_buf_csv(&b, "a,\"b\"");
	assert_string_equal(text(&b), "\"a,\"\"b\"\"\"");
}

static void test_cap(void **state)
{
	struct pl_buf b = { 0 };
	static char chunk[1 << 20];

	(void)state;
	memset(chunk, 'x', sizeof(chunk));
	for (int i = 0; i < 20 && !b.oom; i++)
		pl_buf_put(&b, chunk, sizeof(chunk));
	assert_true(b.oom);
	assert_true(b.len <= PL_BUF_MAX);
	pl_buf_free(&b);
}

static void test_parse_time(void **state)
{
	int64_t t = 0;

	(void)state;
	assert_int_equal(pl_http_parse_time("1796664600", &t), 0);
	assert_int_equal(t, INT64_C(1796664600000000));
	assert_int_equal(pl_http_parse_time("0", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(pl_http_parse_time("2026-12-01T00:00:00Z", &t), 0);
	assert_int_equal(t, INT64_C(1796083200) * 1000000);
	assert_int_equal(pl_http_parse_time("2026-12-01T00:00:00+01:00", &t), 0);
	assert_int_equal(t, INT64_C(1796079600) * 1000000);
	assert_int_equal(pl_http_parse_time("2026-12-01T00:00:00-05:30", &t), 0);
	assert_int_equal(t, INT64_C(1796103000) * 1000000);
	assert_int_equal(pl_http_parse_time("2024-02-29T12:00:00.25Z", &t), 0);
	assert_int_equal(t, INT64_C(1709208000250000));
	assert_int_equal(pl_http_parse_time("1969-12-31T23:59:59Z", &t), 0);
	assert_int_equal(t, -1000000);
	static const char *const bad[] = { "", "yesterday", "2026-12-01", "2026-13-01T00:00:00Z",
		"2026-12-01T24:00:00Z", "2026-12-01T00:00:00", "2026-12-01T00:00:00+1:00",
		"2026-12-01T00:00:00Zjunk", "12a", "99999999999999", "2026-12-01T00:00:00.Z",
		"--1", NULL };
	for (int i = 0; bad[i]; i++)
		assert_int_equal(pl_http_parse_time(bad[i], &t), -1);
	assert_int_equal(pl_http_parse_time(NULL, &t), -1);
}

static void test_format_time(void **state)
{
	struct pl_buf b = { 0 };

	(void)state;
	pl_http_time(&b, INT64_C(1796664602000000), 0);
	assert_string_equal(text(&b), "2026-12-07T17:30:02Z");
	setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1); /* POSIX: no tzdata needed */
	tzset();
	pl_http_time(&b, INT64_C(1796083200) * 1000000, 1); /* winter: +01:00 */
	assert_string_equal(text(&b), "2026-12-01T01:00:00+01:00");
	pl_http_time(&b, INT64_C(1782864000) * 1000000, 1); /* 2026-07-01T00:00Z, summer */
	assert_string_equal(text(&b), "2026-07-01T02:00:00+02:00");
	setenv("TZ", "UTC0", 1);
	tzset();
	pl_http_time(&b, 0, 1);
	assert_string_equal(text(&b), "1970-01-01T00:00:00+00:00");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_format_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
