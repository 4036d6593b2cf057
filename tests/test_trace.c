/* SPDX-License-Identifier: MIT */
/*
 * Tests of the trace reader (src/linux/trace.c): every input format, every error with its
 * exact FILE:LINE message, exact microsecond times for large epochs, and batches that cross
 * the reader's buffer boundaries.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sources/trace.h"

#define MAX_GOT 64

struct got {
	struct pl_sample s[MAX_GOT];
	size_t n;      /* samples read (all of them counted, the first MAX_GOT kept) */
	int rc;        /* 0, or the error that ended the reading */
	char msg[1100];
};

static const struct pl_trace_config csv = { .format = PL_TRACE_CSV };

/* Reads everything from a reader in batches of `batch`, then checks the error is sticky. */
static void drain(struct pl_trace *t, size_t batch, struct got *g)
{
	struct pl_sample buf[16];
	size_t n;
	int rc;

	assert_true(batch <= 16);
	memset(g, 0, sizeof(*g));
	for (;;) {
		rc = pl_trace_read(t, buf, batch, &n);
		if (rc < 0) {
			assert_int_equal(n, 0);
			break;
		}
		if (n == 0)
			break;
		assert_true(n <= batch);
		for (size_t i = 0; i < n; i++, g->n++)
			if (g->n < MAX_GOT)
				g->s[g->n] = buf[i];
	}
	g->rc = rc;
	snprintf(g->msg, sizeof(g->msg), "%s", pl_trace_error(t));
	if (rc < 0) {
		/* Sticky: the same error again. */
		assert_int_equal(pl_trace_read(t, buf, batch, &n), rc);
		assert_int_equal(n, 0);
		assert_string_equal(pl_trace_error(t), g->msg);
	}
	assert_int_equal(pl_trace_count(t), g->n);
}

/* Reads len bytes of text as a stream named name. */
static void read_mem(const char *name, const void *text, size_t len,
		     const struct pl_trace_config *cfg, size_t batch, struct got *g)
{
	FILE *f = fmemopen((void *)text, len, "r");
	struct pl_trace *t = NULL;
	char err[256];

	assert_non_null(f);
	assert_int_equal(pl_trace_open_file(&t, f, name, cfg, err, sizeof(err)), 0);
	drain(t, batch, g);
	pl_trace_free(t);
	fclose(f);
}

static void read_csv(const char *text, struct got *g)
{
	/* Batches of 1, 3 and 16 must agree. */
	struct got g1, g3;

	read_mem("t.csv", text, strlen(text), &csv, 1, &g1);
	read_mem("t.csv", text, strlen(text), &csv, 3, &g3);
	read_mem("t.csv", text, strlen(text), &csv, 16, g);
	assert_int_equal(g1.n, g->n);
	assert_int_equal(g3.n, g->n);
	assert_int_equal(g1.rc, g->rc);
	assert_int_equal(g3.rc, g->rc);
	assert_string_equal(g1.msg, g->msg);
	for (size_t i = 0; i < g->n && i < MAX_GOT; i++) {
		assert_int_equal(g1.s[i].t_us, g->s[i].t_us);
		assert_int_equal(g1.s[i].v, g->s[i].v);
		assert_int_equal(g3.s[i].t_us, g->s[i].t_us);
		assert_int_equal(g3.s[i].v, g->s[i].v);
	}
}

/* Expects the text to fail with rc and exactly msg, after `good` samples. */
static void expect_error(const char *text, size_t good, int rc, const char *msg)
{
	struct got g;

	read_csv(text, &g);
	assert_int_equal(g.n, good);
	assert_int_equal(g.rc, rc);
	assert_string_equal(g.msg, msg);
}

static char tmpdir[] = "/tmp/test_trace.XXXXXX";

static char *write_tmp(const char *name, const void *data, size_t len)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return path;
}

/* ---- CSV ---------------------------------------------------------------------------------- */

static void test_csv_basic(void **state)
{
	struct got g;

	(void)state;
	read_csv("0,1\n0.001,2\n0.002,-3\n", &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.n, 3);
	assert_int_equal(g.s[0].t_us, 0);
	assert_int_equal(g.s[0].v, 1);
	assert_int_equal(g.s[1].t_us, 1000);
	assert_int_equal(g.s[1].v, 2);
	assert_int_equal(g.s[2].t_us, 2000);
	assert_int_equal(g.s[2].v, -3);
	assert_string_equal(g.msg, "");
}

static void test_csv_header_comments_blank_crlf(void **state)
{
	struct got g;

	(void)state;
	read_csv("# recorded 2024-01-01\r\n"
		 "\r\n"
		 "time_s,value\r\n"
		 "0.5,10\r\n"
		 "# a comment in the middle\n"
		 "   \t\n"
		 "  1.25 ,\t20 \r\n"
		 "  # indented comment\n"
		 "2,30", /* no final line end */
		 &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.n, 3);
	assert_int_equal(g.s[0].t_us, 500000);
	assert_int_equal(g.s[0].v, 10);
	assert_int_equal(g.s[1].t_us, 1250000);
	assert_int_equal(g.s[1].v, 20);
	assert_int_equal(g.s[2].t_us, 2000000);
	assert_int_equal(g.s[2].v, 30);
}

static void test_csv_header_variants(void **state)
{
	struct got g;

	(void)state;
	/* A header of any width, quoted, or a single word. */
	read_csv("\"t\",\"v\",\"extra\"\n1,2\n", &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.n, 1);
	read_csv("unix_s\n1,2\n", &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.n, 1);
	/* Only the first content line may be a header. */
	expect_error("time_s,value\ntime_s,value\n1,2\n", 0, -PL_EPARSE,
		     "t.csv:2: time is not a number: 'time_s'");
	expect_error("1,2\ntime_s,value\n", 1, -PL_EPARSE,
		     "t.csv:2: time is not a number: 'time_s'");
}

static void test_csv_exact_epoch(void **state)
{
	struct got g;

	(void)state;
	read_csv("1420675206.123456,5\n"
		 "1420675206.999999,6\n"
		 "1420675207,7\n"
		 "1420675207.000001,8\n"
		 "1287538555.34,9\n",
		 &g);
	assert_int_equal(g.rc, -PL_EORDER); /* the last one goes back: checked below */
	assert_int_equal(g.n, 4);
	assert_int_equal(g.s[0].t_us, INT64_C(1420675206123456));
	assert_int_equal(g.s[1].t_us, INT64_C(1420675206999999));
	assert_int_equal(g.s[2].t_us, INT64_C(1420675207000000));
	assert_int_equal(g.s[3].t_us, INT64_C(1420675207000001));
	assert_string_equal(g.msg, "t.csv:5: time goes backwards: 1287538555.340000 after "
				   "1420675207.000001");

	/* Values a double cannot hold exactly: 2^53 + 1 microseconds and the limit, 2^62 - 1. */
	read_csv("9007199254.740993,1\n4611686018427.387903,2\n", &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.s[0].t_us, INT64_C(9007199254740993));
	assert_int_equal(g.s[1].t_us, PL_TRACE_TIME_LIMIT - 1);
	read_csv("-4611686018427.387903,1\n", &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.s[0].t_us, -PL_TRACE_TIME_LIMIT + 1);
	expect_error("4611686018427.387904,2\n", 0, -PL_ERANGE,
		     "t.csv:1: time out of range (+-146,000 years): '4611686018427.387904'");
	expect_error("0,1\n-4611686018427.387904,2\n", 1, -PL_ERANGE,
		     "t.csv:2: time out of range (+-146,000 years): '-4611686018427.387904'");
	expect_error("9223372036854.775808,2\n", 0, -PL_ERANGE,
		     "t.csv:1: time out of range (+-146,000 years): '9223372036854.775808'");
	/* Negative times are a time base like any other. */
	read_csv("-1.5,1\n-0.000001,2\n0,3\n", &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.s[0].t_us, -1500000);
	assert_int_equal(g.s[1].t_us, -1);
}

static void test_csv_rounding(void **state)
{
	struct got g;

	(void)state;
	read_csv("0.0000005,1.5\n"          /* times: 0.5 us rounds up */
		 "0.0000014999,-1.5\n"      /* 1.4999 us rounds down */
		 "1.5e-6,2.4999\n"
		 "1.5E-6,-2.5\n"
		 "2e0,1e3\n"
		 "2.0000000000000000001,-0.4\n"
		 "3,2147483647.4\n"
		 "3,-2147483648\n"
		 "3,-2147483648.4\n"
		 "3,+7\n"
		 "3,.5\n"
		 "3,5.\n",
		 &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.n, 12);
	assert_int_equal(g.s[0].t_us, 1);
	assert_int_equal(g.s[0].v, 2);
	assert_int_equal(g.s[1].t_us, 1);
	assert_int_equal(g.s[1].v, -2);
	assert_int_equal(g.s[2].t_us, 2);
	assert_int_equal(g.s[2].v, 2);
	assert_int_equal(g.s[3].t_us, 2);
	assert_int_equal(g.s[3].v, -3);
	assert_int_equal(g.s[4].t_us, 2000000);
	assert_int_equal(g.s[4].v, 1000);
	assert_int_equal(g.s[5].t_us, 2000000);
	assert_int_equal(g.s[5].v, 0);
	assert_int_equal(g.s[6].v, INT32_MAX);
	assert_int_equal(g.s[7].v, INT32_MIN);
	assert_int_equal(g.s[8].v, INT32_MIN);
	assert_int_equal(g.s[9].v, 7);
	assert_int_equal(g.s[10].v, 1);
	assert_int_equal(g.s[11].v, 5);
}

static void test_csv_equal_times_allowed(void **state)
{
	struct got g;

	(void)state;
	read_csv("1,1\n1,2\n1,3\n", &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.n, 3);
}

static void test_csv_errors(void **state)
{
	(void)state;
	expect_error("0,1\n1,abc\n", 1, -PL_EPARSE, "t.csv:2: value is not a number: 'abc'");
	expect_error("0,1\nx,2\n", 1, -PL_EPARSE, "t.csv:2: time is not a number: 'x'");
	expect_error("0,1\n5\n", 1, -PL_EPARSE,
		     "t.csv:2: missing value column (expected time_s,value)");
	expect_error("0,\n", 0, -PL_EPARSE, "t.csv:1: missing value (expected time_s,value)");
	expect_error("0,1\n ,5\n", 1, -PL_EPARSE,
		     "t.csv:2: missing time (expected time_s,value)");
	expect_error("0,1,2\n", 0, -PL_EPARSE,
		     "t.csv:1: extra columns: found 3, expected 2 (time_s,value)");
	expect_error("# c\n0,1\n1,2,\n", 1, -PL_EPARSE,
		     "t.csv:3: extra columns: found 3, expected 2 (time_s,value)");
	expect_error("0,1\n0;1\n", 1, -PL_EPARSE,
		     "t.csv:2: missing value column (expected time_s,value)");
	expect_error("1,1\n\n0.5,2\n", 1, -PL_EORDER,
		     "t.csv:3: time goes backwards: 0.500000 after 1.000000");
	expect_error("0,nan\n", 0, -PL_ERANGE, "t.csv:1: value is NaN or infinite: 'nan'");
	expect_error("0,-Infinity\n", 0, -PL_ERANGE,
		     "t.csv:1: value is NaN or infinite: '-Infinity'");
	expect_error("inf,1\n", 0, -PL_ERANGE, "t.csv:1: time is NaN or infinite: 'inf'");
	expect_error("t,v\n0,1\nNaN,1\n", 1, -PL_ERANGE,
		     "t.csv:3: time is NaN or infinite: 'NaN'");
	expect_error("0,2147483648\n", 0, -PL_ERANGE,
		     "t.csv:1: value out of int32 range: '2147483648'");
	expect_error("0,2147483647.5\n", 0, -PL_ERANGE,
		     "t.csv:1: value out of int32 range: '2147483647.5'");
	expect_error("0,-2147483648.5\n", 0, -PL_ERANGE,
		     "t.csv:1: value out of int32 range: '-2147483648.5'");
	expect_error("0,1e100\n", 0, -PL_ERANGE, "t.csv:1: value out of int32 range: '1e100'");
	expect_error("0,0x10\n", 0, -PL_EPARSE, "t.csv:1: value is not a number: '0x10'");
	expect_error("0,1 2\n", 0, -PL_EPARSE, "t.csv:1: value is not a number: '1 2'");
	expect_error("0,1\r\r\n", 0, -PL_EPARSE, "t.csv:1: value is not a number: '1?'");
	expect_error("0,1\n1,\"2\"\n", 1, -PL_EPARSE, "t.csv:2: value is not a number: '\"2\"'");
	expect_error("0,1\n1.2.3,4\n", 1, -PL_EPARSE, "t.csv:2: time is not a number: '1.2.3'");
	expect_error("0,1\n1,"
		     "123456789012345678901234567890123456789012345678901234567890x\n",
		     1, -PL_EPARSE,
		     "t.csv:2: value is not a number: "
		     "'1234567890123456789012345678901234567890...'");
}

static void test_csv_nul_byte(void **state)
{
	static const char text[] = "0,1\n1,2\0\n";
	struct got g;

	(void)state;
	read_mem("t.csv", text, sizeof(text) - 1, &csv, 4, &g);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.rc, -PL_EPARSE);
	assert_string_equal(g.msg, "t.csv:2: value is not a number: '2?'");
}

static void test_csv_no_samples(void **state)
{
	(void)state;
	expect_error("", 0, -PL_EPARSE, "t.csv: no samples (0 lines, none with data)");
	expect_error("time_s,value\n# nothing\n\n", 0, -PL_EPARSE,
		     "t.csv: no samples (3 lines, none with data)");
	expect_error("\n", 0, -PL_EPARSE, "t.csv: no samples (1 lines, none with data)");
}

static void test_csv_long_lines(void **state)
{
	size_t max = PL_TRACE_MAX_LINE;
	char *text = malloc(3 * max + 100);
	struct got g;
	size_t k;

	(void)state;
	assert_non_null(text);
	/* Exactly the longest line, plus CRLF: fine. "0," then zeros, then "1". */
	k = (size_t)sprintf(text, "0,1\n0,");
	memset(text + k, '0', max - 3);
	k += max - 3;
	memcpy(text + k, "1\r\n", 4);
	read_csv(text, &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.s[1].v, 1);

	/* One byte more: an error naming the line, whether its end is buffered or not. */
	k = (size_t)sprintf(text, "0,1\n0,");
	memset(text + k, '0', max - 2);
	k += max - 2;
	memcpy(text + k, "1\n", 3);
	expect_error(text, 1, -PL_EPARSE, "t.csv:2: line longer than 4096 bytes");

	k = (size_t)sprintf(text, "0,1\n# comment\n");
	memset(text + k, '#', 3 * max);
	text[k + 3 * max] = '\0';
	expect_error(text, 1, -PL_EPARSE, "t.csv:3: line longer than 4096 bytes");
	free(text);
}

/* A file far larger than the reader's buffer, through a file descriptor, lines straddling
 * every buffer boundary. */
static void test_csv_large_fd(void **state)
{
	const size_t n = 250000;
	FILE *f = tmpfile();
	struct pl_trace *t;
	struct pl_sample buf[1000];
	size_t got = 0, k;
	char err[256];

	(void)state;
	assert_non_null(f);
	fputs("time_s,value\n", f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%zu.%06zu,%d\r\n", 1700000000 + i / 1000, (i % 1000) * 1000,
			(int)(i % 2001) - 1000);
	fflush(f);
	rewind(f);
	assert_int_equal(pl_trace_open_fd(&t, fileno(f), "big.csv", &csv, err, sizeof(err)), 0);
	for (;;) {
		assert_int_equal(pl_trace_read(t, buf, 1000, &k), 0);
		if (k == 0)
			break;
		for (size_t i = 0; i < k; i++, got++) {
			if (buf[i].t_us != INT64_C(1700000000000000) + (int64_t)got * 1000 ||
			    buf[i].v != (int32_t)(got % 2001) - 1000)
				fail_msg("sample %zu wrong", got);
		}
	}
	assert_int_equal(got, n);
	pl_trace_free(t);
	/* The caller's descriptor is still open. */
	assert_int_equal(fseek(f, 0, SEEK_SET), 0);
	assert_int_equal(fgetc(f), 't');
	fclose(f);
}

static void test_open_path_and_stdin(void **state)
{
	const char text[] = "t,v\n1,2\n3,4\n";
	struct pl_trace *t = NULL;
	char err[256], *path;
	struct got g;
	int saved;

	(void)state;
	path = write_tmp("a.csv", text, sizeof(text) - 1);
	assert_int_equal(pl_trace_open(&t, path, &csv, err, sizeof(err)), 0);
	assert_string_equal(pl_trace_name(t), path);
	drain(t, 5, &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.s[1].t_us, 3000000);
	assert_int_equal(pl_trace_rate(t), 0);
	pl_trace_free(t);

	/* "-" is standard input, named "stdin", and not closed. */
	saved = dup(STDIN_FILENO);
	assert_true(saved >= 0);
	path = write_tmp("bad.csv", "1,2\n0,1\n", 8);
	assert_non_null(freopen(path, "r", stdin));
	assert_int_equal(pl_trace_open(&t, "-", &csv, err, sizeof(err)), 0);
	assert_string_equal(pl_trace_name(t), "stdin");
	drain(t, 5, &g);
	assert_int_equal(g.rc, -PL_EORDER);
	assert_string_equal(g.msg, "stdin:2: time goes backwards: 0.000000 after 1.000000");
	pl_trace_free(t);
	assert_int_equal(lseek(STDIN_FILENO, 0, SEEK_SET), 0);
	assert_int_equal(dup2(saved, STDIN_FILENO), STDIN_FILENO);
	close(saved);
}

static void test_open_errors(void **state)
{
	struct pl_trace *t = (struct pl_trace *)&t;
	char err[256];
	struct pl_trace_config raw = { .format = PL_TRACE_S16LE, .rate_hz = 0 };

	(void)state;
	assert_int_equal(pl_trace_open(&t, "/nonexistent/x.csv", &csv, err, sizeof(err)),
			 -PL_ENOENT);
	assert_null(t);
	assert_string_equal(err, "/nonexistent/x.csv: No such file or directory");
	assert_int_equal(pl_trace_open(&t, "/tmp", &csv, err, sizeof(err)), -PL_EIO);
	assert_string_equal(err, "/tmp: is a directory");

	assert_int_equal(pl_trace_open(&t, "-", &raw, err, sizeof(err)), -PL_EINVAL);
	assert_string_equal(err, "stdin: sample rate 0 Hz out of range (1..10000000)");
	raw.rate_hz = PL_TRACE_MAX_RATE + 1;
	assert_int_equal(pl_trace_open_file(&t, stdin, "x.raw", &raw, err, sizeof(err)),
			 -PL_EINVAL);
	assert_string_equal(err, "x.raw: sample rate 10000001 Hz out of range (1..10000000)");
	raw.rate_hz = PL_TRACE_MAX_RATE;
	assert_int_equal(pl_trace_open_file(&t, stdin, "x.raw", &raw, NULL, 0), 0);
	pl_trace_free(t);
	pl_trace_free(NULL);
}

/* ---- raw ---------------------------------------------------------------------------------- */

static const unsigned char raw4[] = { 0x00, 0x80, 0xff, 0x7f, 0xff, 0xff, 0x01, 0x00 };

static void test_raw_s16_u16(void **state)
{
	struct pl_trace_config s16 = { .format = PL_TRACE_S16LE, .rate_hz = 1000 };
	struct pl_trace_config u16 = { .format = PL_TRACE_U16LE, .rate_hz = 3 };
	struct got g;

	(void)state;
	read_mem("t.raw", raw4, sizeof(raw4), &s16, 3, &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.n, 4);
	assert_int_equal(g.s[0].v, -32768);
	assert_int_equal(g.s[1].v, 32767);
	assert_int_equal(g.s[2].v, -1);
	assert_int_equal(g.s[3].v, 1);
	assert_int_equal(g.s[3].t_us, 3000);

	read_mem("t.raw", raw4, sizeof(raw4), &u16, 16, &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.n, 4);
	assert_int_equal(g.s[0].v, 32768);
	assert_int_equal(g.s[1].v, 32767);
	assert_int_equal(g.s[2].v, 65535);
	assert_int_equal(g.s[3].v, 1);
	/* 3 Hz: floor(i * 1e6 / 3) */
	assert_int_equal(g.s[1].t_us, 333333);
	assert_int_equal(g.s[2].t_us, 666666);
	assert_int_equal(g.s[3].t_us, 1000000);
}

static void test_raw_read_u16(void **state)
{
	struct pl_trace_config s16 = { .format = PL_TRACE_S16LE, .rate_hz = 1000 };
	FILE *f = fmemopen((void *)raw4, sizeof(raw4), "r");
	struct pl_trace *t;
	uint16_t v[8];
	int64_t t0 = -1;
	size_t n;

	(void)state;
	assert_int_equal(pl_trace_open_file(&t, f, "t.raw", &s16, NULL, 0), 0);
	assert_int_equal(pl_trace_read_u16(t, v, 8, &n, &t0), 0);
	assert_int_equal(n, 4);
	assert_int_equal(t0, 0);
	/* s16 + 32768 */
	assert_int_equal(v[0], 0);
	assert_int_equal(v[1], 65535);
	assert_int_equal(v[2], 32767);
	assert_int_equal(v[3], 32769);
	assert_int_equal(pl_trace_read_u16(t, v, 8, &n, &t0), 0);
	assert_int_equal(n, 0);
	pl_trace_free(t);
	fclose(f);

	/* Not for CSV. */
	f = fmemopen((void *)"0,1\n", 4, "r");
	assert_int_equal(pl_trace_open_file(&t, f, "t.csv", &csv, NULL, 0), 0);
	assert_int_equal(pl_trace_read_u16(t, v, 8, &n, &t0), -PL_EINVAL);
	pl_trace_free(t);
	fclose(f);
}

/* Blocks start on indexes whose time is exact, so t0 + i * 1e6 / rate is every sample's time,
 * also after reads of the other kind put the index off the grid. */
static void test_raw_u16_alignment(void **state)
{
	static const uint32_t rates[] = { 44100, 48000, 22050, 3, 1000, 999983 };
	const size_t total = 100003;
	unsigned char *bytes = calloc(total, 2);
	uint16_t v[5000];

	(void)state;
	assert_non_null(bytes);
	for (size_t i = 0; i < total; i++) {
		bytes[2 * i] = (unsigned char)i;
		bytes[2 * i + 1] = (unsigned char)(i >> 8);
	}
	for (size_t r = 0; r < sizeof(rates) / sizeof(rates[0]); r++) {
		struct pl_trace_config cfg = { .format = PL_TRACE_U16LE, .rate_hz = rates[r] };
		FILE *f = fmemopen(bytes, total * 2, "r");
		struct pl_trace *t;
		struct pl_sample s[7];
		uint64_t index = 0;
		size_t n;
		int64_t t0;

		assert_int_equal(pl_trace_open_file(&t, f, "t.raw", &cfg, NULL, 0), 0);
		int first = 1;

		assert_int_equal(pl_trace_read(t, s, 7, &n), 0); /* off the grid */
		assert_int_equal(n, 7);
		index = 7;
		for (;; first = 0) {
			assert_int_equal(pl_trace_read_u16(t, v, 5000, &n, &t0), 0);
			if (n == 0)
				break;
			assert_int_equal(t0, pl_trace_index_us(index, rates[r]));
			for (size_t i = 0; i < n; i++) {
				if (v[i] != (uint16_t)(index + i))
					fail_msg("rate %u: value %zu wrong", rates[r], index + i);
				/* Exact where an aligned block fits, else within 1 us: in the block
				 * that starts off the grid, or at a rate whose step is too long. */
				int64_t want = pl_trace_index_us(index + i, rates[r]);
				int64_t have = t0 + (int64_t)((uint64_t)i * 1000000u / rates[r]);
				int exact = !first && rates[r] != 999983;

				if (exact ? have != want : have > want || have < want - 1)
					fail_msg("rate %u: time of %zu is %lld, not %lld",
						 rates[r], (size_t)(index + i), (long long)have,
						 (long long)want);
			}
			index += n;
		}
		assert_int_equal(index, total);
		pl_trace_free(t);
		fclose(f);
	}
	free(bytes);
}

static void test_raw_errors(void **state)
{
	struct pl_trace_config s16 = { .format = PL_TRACE_S16LE, .rate_hz = 8000 };
	struct pl_trace *t = NULL;
	char err[256], *path;
	struct got g;

	(void)state;
	/* Odd byte count in a stream: found at the end, after the whole samples. */
	read_mem("t.raw", raw4, 5, &s16, 16, &g);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.rc, -PL_EPARSE);
	assert_string_equal(g.msg,
			    "t.raw: odd byte count (5 bytes): raw 16-bit input needs an even "
			    "number");
	/* In a regular file: refused up front. */
	path = write_tmp("odd.raw", raw4, 7);
	assert_int_equal(pl_trace_open(&t, path, &s16, err, sizeof(err)), -PL_EPARSE);
	assert_null(t);
	assert_non_null(strstr(err, "odd.raw: odd byte count (7 bytes)"));
	/* Empty. */
	read_mem("t.raw", raw4, 0, &s16, 16, &g);
	assert_int_equal(g.n, 0);
	assert_int_equal(g.rc, -PL_EPARSE);
	assert_string_equal(g.msg, "t.raw: no samples (empty input)");
	/* A regular file read through the path. */
	path = write_tmp("ok.raw", raw4, 8);
	assert_int_equal(pl_trace_open(&t, path, &s16, err, sizeof(err)), 0);
	drain(t, 16, &g);
	assert_int_equal(g.n, 4);
	assert_int_equal(g.rc, 0);
	assert_int_equal(pl_trace_rate(t), 8000);
	assert_int_equal(g.s[1].t_us, 125);
	pl_trace_free(t);
}

/* ---- helpers ------------------------------------------------------------------------------ */

static int dec(const char *s, unsigned scale, int64_t *v)
{
	return pl_trace_parse_decimal(s, strlen(s), scale, v);
}

static void test_parse_decimal(void **state)
{
	int64_t v = 0;

	(void)state;
	assert_int_equal(dec("1", 0, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(dec("-0", 0, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(dec("-0.4", 0, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(dec("+5", 3, &v), 0);
	assert_int_equal(v, 5000);
	assert_int_equal(dec("000000000000000000000000000000042", 0, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(dec("9223372036854775807", 0, &v), 0);
	assert_int_equal(v, INT64_MAX);
	assert_int_equal(dec("-9223372036854775808", 0, &v), 0);
	assert_int_equal(v, INT64_MIN);
	assert_int_equal(dec("9223372036854775807.5", 0, &v), -PL_ERANGE);
	assert_int_equal(dec("9223372036854775808", 0, &v), -PL_ERANGE);
	assert_int_equal(dec("-9223372036854775809", 0, &v), -PL_ERANGE);
	assert_int_equal(dec("1e18", 0, &v), 0);
	assert_int_equal(v, INT64_C(1000000000000000000));
	assert_int_equal(dec("1e19", 0, &v), -PL_ERANGE);
	assert_int_equal(dec("1e999999999999", 0, &v), -PL_ERANGE);
	assert_int_equal(dec("0e999999999999", 0, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(dec("1e-999999999999", 6, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(dec("12345e-2", 1, &v), 0);
	assert_int_equal(v, 1235);
	assert_int_equal(dec("-12345e-2", 1, &v), 0);
	assert_int_equal(v, -1235);
	assert_int_equal(dec("0.5", 0, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(dec("0.05", 0, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(dec("1.000000000000000000000000000000000000000005", 6, &v), 0);
	assert_int_equal(v, 1000000);
	for (size_t i = 0; i < 10; i++) {
		static const char *const bad[] = { "", "-", "+", ".", "e1", "1e", "1e+", "1.2.3",
						   "--1", "0x10" };
		assert_int_equal(dec(bad[i], 0, &v), -PL_EPARSE);
	}
	assert_int_equal(dec(" 1", 0, &v), -PL_EPARSE);
	assert_int_equal(dec("1 ", 0, &v), -PL_EPARSE);
	assert_int_equal(dec("nan", 0, &v), -PL_ERANGE);
	assert_int_equal(dec("-INF", 0, &v), -PL_ERANGE);
	assert_int_equal(dec("infinity", 0, &v), -PL_ERANGE);
	assert_int_equal(dec("infinit", 0, &v), -PL_EPARSE);
	assert_int_equal(dec("1", 19, &v), -PL_EINVAL);
	/* Length, not NUL, ends the text. */
	assert_int_equal(pl_trace_parse_decimal("12,3", 2, 0, &v), 0);
	assert_int_equal(v, 12);
}

/* The one-pass parser handles the common case; an exponent forces the general one. Both must
 * give the same result everywhere. */
static void test_parse_decimal_paths_agree(void **state)
{
	static const char *const texts[] = {
		"0", "-0", "1", "+1", "-1", ".5", "-.5", "5.", "0.4999999", "0.5", "-0.5", "2.5",
		"1420675206.123456", "1420675206.1234565", "1420675206.12345649",
		"999999999999999999", "-999999999999999999", "9223372036854775807",
		"9223372036854775808", "-9223372036854775808", "9223372036854.775807",
		"9223372036854.7758075", "-9223372036854.775808", "-9223372036854.7758085",
		"0.000000000000000001", "0.0000000000000000005", "123456789012345678.9",
		"1234567890123456789.0", "00000000000000000001.5", "92233720368.54775807",
		"", ".", "-", "1.2.3", "abc", "1,5", /* (NaN and Inf have no exponent form) */
	};

	(void)state;
	for (size_t k = 0; k < sizeof(texts) / sizeof(texts[0]); k++) {
		char e0[64];
		size_t len = strlen(texts[k]);

		snprintf(e0, sizeof(e0), "%se0", texts[k]);
		for (unsigned scale = 0; scale <= 18; scale++) {
			int64_t a = 11, b = 22;
			int ra = pl_trace_parse_decimal(texts[k], len, scale, &a);
			int rb = pl_trace_parse_decimal(e0, len + 2, scale, &b);

			if (ra != rb || (ra == 0 && a != b))
				fail_msg("'%s' at scale %u: %d/%lld vs %d/%lld", texts[k], scale,
					 ra, (long long)a, rb, (long long)b);
		}
	}
}

static void test_format_time(void **state)
{
	char b[32];

	(void)state;
	assert_int_equal(pl_trace_format_time(b, sizeof(b), 0), 8);
	assert_string_equal(b, "0.000000");
	pl_trace_format_time(b, sizeof(b), -1);
	assert_string_equal(b, "-0.000001");
	pl_trace_format_time(b, sizeof(b), INT64_C(1420675206123456));
	assert_string_equal(b, "1420675206.123456");
	assert_int_equal(pl_trace_format_time(b, 22, INT64_MIN), 21);
	assert_string_equal(b, "-9223372036854.775808");
	pl_trace_format_time(b, sizeof(b), INT64_MAX);
	assert_string_equal(b, "9223372036854.775807");
	assert_int_equal(pl_trace_format_time(b, 5, 0), -PL_ENOSPC);
}

static void test_index_us_and_formats(void **state)
{
	enum pl_trace_format f;

	(void)state;
	assert_int_equal(pl_trace_index_us(0, 48000), 0);
	assert_int_equal(pl_trace_index_us(1, 48000), 20);
	assert_int_equal(pl_trace_index_us(48000, 48000), 1000000);
	/* A century at 10 MHz: no overflow, no drift. */
	assert_int_equal(pl_trace_index_us(UINT64_C(10000000) * 86400 * 36525, 10000000),
			 INT64_C(1000000) * 86400 * 36525);
	assert_int_equal(pl_trace_index_us(UINT64_C(44100) * 3600 * 1000 + 1, 44100),
			 INT64_C(3600000000000) + 22);
	assert_int_equal(pl_trace_format_parse("csv", &f), 0);
	assert_int_equal(f, PL_TRACE_CSV);
	assert_int_equal(pl_trace_format_parse("s16le", &f), 0);
	assert_int_equal(f, PL_TRACE_S16LE);
	assert_int_equal(pl_trace_format_parse("u16le", &f), 0);
	assert_int_equal(f, PL_TRACE_U16LE);
	assert_int_equal(pl_trace_format_parse("S16LE", &f), -PL_EINVAL);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csv_basic),
		cmocka_unit_test(test_csv_header_comments_blank_crlf),
		cmocka_unit_test(test_csv_header_variants),
		cmocka_unit_test(test_csv_exact_epoch),
		cmocka_unit_test(test_csv_rounding),
		cmocka_unit_test(test_csv_equal_times_allowed),
		cmocka_unit_test(test_csv_errors),
		cmocka_unit_test(test_csv_nul_byte),
		cmocka_unit_test(test_csv_no_samples),
		cmocka_unit_test(test_csv_long_lines),
		cmocka_unit_test(test_csv_large_fd),
		cmocka_unit_test(test_open_path_and_stdin),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_raw_s16_u16),
		cmocka_unit_test(test_raw_read_u16),
		cmocka_unit_test(test_raw_u16_alignment),
		cmocka_unit_test(test_raw_errors),
		cmocka_unit_test(test_parse_decimal),
		cmocka_unit_test(test_parse_decimal_paths_agree),
		cmocka_unit_test(test_format_time),
		cmocka_unit_test(test_index_us_and_formats),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
