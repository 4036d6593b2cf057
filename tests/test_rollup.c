/* SPDX-License-Identifier: MIT */
/*
 * Tests of the rollups and the queries over them (src/linux/store/query.c, query.h): every
 * answer is compared with a model, the records kept in memory and summed by brute force.
 *  - random commits with repeats (INSERT OR IGNORE keeps the first copy), records in the intake
 *    and merged, seen by the writer and by a read-only handle; after a prune the sums stay;
 *  - bucket edges on and off slot boundaries (rollups and raw records mixed), empty ranges,
 *    an unknown meter, bad edges; the power series;
 *  - local calendars with daylight saving (TZ=Europe/Berlin: days of 23 and 25 hours, months);
 *  - times before 1970 (floor division, not truncation);
 *  - a store of schema version 3 upgraded: rollups equal to its records.
 * pl_store_rollup_verify() checks the stored rollups against the records throughout, and is
 * shown to notice a difference.
 *
 * Every test works in its own directory made by mkdtemp() under /tmp and removes it.
 */
#include <dirent.h>
#include <inttypes.h>
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
#include <sqlite3.h>

#include "store/query.h"
#include "store/store.h"
#include "testutil.h"

/* An epoch-based start on a 20 s boundary but not on a slot (900 s) boundary. */
#define T0 (INT64_C(1700000000) * PL_US_PER_S)
#define GRAIN_US ((int64_t)PL_ROLLUP_GRAIN_S * PL_US_PER_S)
#define MAXK 3000 /* intervals of 20 s per meter in the random test: about 17 h */

struct tmp {
	char dir[64];
	char path[128];
};

static void tmp_make(struct tmp *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/pl_rollup_XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->path, sizeof(t->path), "%s/store.db", t->dir);
}

static void tmp_remove(struct tmp *t)
{
	DIR *d = opendir(t->dir);
	struct dirent *e;
	char p[400];

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", t->dir, e->d_name);
		unlink(p);
	}
	closedir(d);
	assert_int_equal(rmdir(t->dir), 0);
}

static struct pl_store *open_ok(const char *path, unsigned flags)
{
	struct pl_store *s = NULL;
	char err[512];
	int rc = pl_store_open(path, flags, &s, err, sizeof(err));

	if (rc != 0)
		fail_msg("open %s: %d %s", path, rc, err);
	return s;
}

static int64_t sql_int(struct pl_store *s, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v;

	assert_int_equal(sqlite3_prepare_v2(pl_store_sqlite(s), sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* The model: what the store should hold, per meter, the first copy of each interval. */
struct model {
	int present[2][MAXK];
	struct pl_interval_record rec[2][MAXK];
};

static struct pl_interval_record random_rec(int64_t k)
{
	uint32_t pulses = (uint32_t)(rnd() % 20);
	static const uint32_t flag_choice[] = { 0, 0, 0, 0, PL_Q_GAP, PL_Q_PARTIAL,
						PL_Q_REJECTED, PL_Q_STEADY | PL_Q_NO_SIGNAL };
	struct pl_interval_record r = {
		.start_us = T0 + k * 20 * PL_US_PER_S,
		.length_s = 20,
		.pulses = pulses,
		.rejected = (uint32_t)(rnd() % 3),
		.flags = flag_choice[rnd() % 8],
		.energy_uwh = (int64_t)pulses * 1000,
		.avg_mw = (int64_t)pulses * 180000,
		.peak_mw = (int64_t)(rnd() % 10000000),
		.register_uwh = k * 1000,
	};
	return r;
}

static void commit(struct pl_store *s, int64_t meter, const struct pl_interval_record *r,
		   size_t n)
{
	unsigned char state[16] = "TEST-STATE";
	int rc = pl_store_commit_interval(s, meter, r, n, state, sizeof(state));

	if (rc != 0)
		fail_msg("commit: %d %s", rc, pl_store_error(s));
}

/* Commits n records from interval k on (some of them repeats) and notes them in m. */
static void commit_model(struct pl_store *s, struct model *m, int mi, int64_t meter, int64_t k,
			 size_t n)
{
	struct pl_interval_record r[4];

	for (size_t i = 0; i < n; i++) {
		r[i] = random_rec(k + (int64_t)i);
		if (!m->present[mi][k + (int64_t)i]) {
			m->present[mi][k + (int64_t)i] = 1;
			m->rec[mi][k + (int64_t)i] = r[i];
		}
	}
	commit(s, meter, r, n);
}

static void model_bucket(const struct model *m, int mi, int64_t a, int64_t b,
			 struct pl_store_bucket *out)
{
	memset(out, 0, sizeof(*out));
	out->start_us = a;
	out->end_us = b;
	for (int k = 0; k < MAXK; k++) {
		const struct pl_interval_record *r = &m->rec[mi][k];

		if (!m->present[mi][k] || r->start_us < a || r->start_us >= b)
			continue;
		out->records++;
		out->pulses += r->pulses;
		out->rejected += r->rejected;
		out->energy_uwh += r->energy_uwh;
		out->covered_s += r->length_s;
		if (r->peak_mw > out->peak_mw)
			out->peak_mw = r->peak_mw;
		out->flagged += r->flags != 0;
		out->gaps += (r->flags & (PL_Q_GAP | PL_Q_PARTIAL)) != 0;
		out->flags |= r->flags;
	}
}

static void assert_bucket_equal(const struct pl_store_bucket *want,
				const struct pl_store_bucket *got)
{
	if (want->start_us != got->start_us || want->end_us != got->end_us ||
	    want->records != got->records || want->pulses != got->pulses ||
	    want->rejected != got->rejected || want->energy_uwh != got->energy_uwh ||
	    want->covered_s != got->covered_s || want->peak_mw != got->peak_mw ||
	    want->flagged != got->flagged || want->gaps != got->gaps || want->flags != got->flags)
		fail_msg("bucket [%" PRId64 ", %" PRId64 "): want records=%" PRIu64 " pulses=%" PRIu64
			 " rejected=%" PRIu64 " energy=%" PRId64 " covered=%" PRId64 " peak=%" PRId64
			 " flagged=%" PRIu64 " gaps=%" PRIu64 " flags=%u, got [%" PRId64 ", %" PRId64
			 ") records=%" PRIu64 " pulses=%" PRIu64 " rejected=%" PRIu64
			 " energy=%" PRId64 " covered=%" PRId64 " peak=%" PRId64 " flagged=%" PRIu64
			 " gaps=%" PRIu64 " flags=%u",
			 want->start_us, want->end_us, want->records, want->pulses, want->rejected,
			 want->energy_uwh, want->covered_s, want->peak_mw, want->flagged, want->gaps,
			 want->flags, got->start_us, got->end_us, got->records, got->pulses,
			 got->rejected, got->energy_uwh, got->covered_s, got->peak_mw, got->flagged,
			 got->gaps, got->flags);
}

/* n buckets with the edges given, from the store and from the model: equal. */
static void check_edges(struct pl_store *s, const struct model *m, int mi, int64_t meter,
			const int64_t *edges, size_t n)
{
	struct pl_store_bucket got[64], want;

	assert_true(n <= 64);
	if (pl_store_buckets(s, meter, edges, n, got) != 0)
		fail_msg("buckets: %s", pl_store_error(s));
	for (size_t i = 0; i < n; i++) {
		model_bucket(m, mi, edges[i], edges[i + 1], &want);
		assert_bucket_equal(&want, &got[i]);
	}
}

/* Random edges over the records' span and beyond: on slot boundaries, on 20 s, anywhere. */
static void check_random_edges(struct pl_store *s, const struct model *m, int mi, int64_t meter)
{
	int64_t edges[17];
	size_t n = 1 + rnd() % 16;
	int64_t t = T0 - 3600 * PL_US_PER_S + (int64_t)(rnd() % 7200) * PL_US_PER_S;

	for (size_t i = 0; i <= n; i++) {
		edges[i] = t;
		switch (rnd() % 4) {
		case 3: /* the next UTC midnights: buckets with whole days */
			t = (t / (86400 * PL_US_PER_S) + 1 + (int64_t)(rnd() % 2)) * 86400 *
			    PL_US_PER_S;
			break;
		case 0: /* the next slot boundaries */
			t = (t / GRAIN_US + 1 + (int64_t)(rnd() % 8)) * GRAIN_US;
			break;
		case 1: /* any microsecond */
			t += 1 + (int64_t)(rnd() % (3 * GRAIN_US));
			break;
		default: /* a record's start */
			t = (t / (20 * PL_US_PER_S) + 1 + (int64_t)(rnd() % 200)) * 20 * PL_US_PER_S;
		}
	}
	check_edges(s, m, mi, meter, edges, n);
}

static void verify_ok(struct pl_store *s)
{
	char msg[512];
	int rc = pl_store_rollup_verify(s, msg, sizeof(msg));

	if (rc != 0)
		fail_msg("rollup verify: %d %s %s", rc, msg, pl_store_error(s));
}

/* The series of meter mi at step_us from the model, compared with the store's. */
static void check_series(struct pl_store *s, const struct model *m, int mi, int64_t meter,
			 int64_t from, int64_t to, int64_t step)
{
	static struct pl_store_bucket got[MAXK];
	struct pl_store_bucket want;
	size_t n = 0, k = 0;

	if (pl_store_series(s, meter, from, to, step, got, MAXK, &n) != 0)
		fail_msg("series: %s", pl_store_error(s));
	for (int64_t b = (from / step) * step; b < to; b += step) {
		model_bucket(m, mi, b < from ? from : b, b + step < to ? b + step : to, &want);
		if (want.records == 0)
			continue;
		want.start_us = b;
		want.end_us = b + step;
		assert_true(k < n);
		assert_bucket_equal(&want, &got[k]);
		k++;
	}
	assert_int_equal(k, n);
}

/*
 * Random commits of two meters, repeats among them, through an intake merged now and then;
 * the writer and a reader agree with the model, before and after merges; verify agrees. Then
 * everything is delivered and pruned: the records are gone, the sums over whole slots stay.
 */
static void test_random_commits(void **state)
{
	static struct model m;
	struct pl_store *s, *r;
	struct pl_store_bucket got[8], want;
	int64_t meter[2], sink, edges[9];
	struct tmp t;
	char msg[512];

	(void)state;
	memset(&m, 0, sizeof(m));
	rng_state = 0x5EED5EEDu;
	tmp_make(&t);
	s = open_ok(t.path, PL_STORE_CREATE);
	assert_int_equal(pl_store_meter(s, "house", 1000, 20, &meter[0]), 0);
	assert_int_equal(pl_store_meter(s, "heatpump", 1000, 20, &meter[1]), 0);
	assert_int_equal(pl_store_sink(s, "influx", &sink), 0);
	assert_int_equal(pl_store_intake(s, 3600), 0); /* merged below, when the test says */
	r = open_ok(t.path, PL_STORE_READONLY);
	for (int round = 0; round < 6; round++) {
		for (int i = 0; i < 150; i++) {
			int mi = (int)(rnd() % 2);
			size_t n = 1 + rnd() % 4;
			int64_t k = (int64_t)(rnd() % (MAXK - 4));

			commit_model(s, &m, mi, meter[mi], k, n);
		}
		/* half of the rounds end with the records in the intake, half merged */
		if (round % 2 == 1)
			assert_int_equal(pl_store_merge(s), 0);
		else
			assert_true(sql_int(s, "SELECT COUNT(*) FROM temp.p_records") > 0);
		for (int i = 0; i < 20; i++) {
			int mi = (int)(rnd() % 2);

			check_random_edges(s, &m, mi, meter[mi]);
			check_random_edges(r, &m, mi, meter[mi]);
		}
		verify_ok(s);
		verify_ok(r);
	}
	check_series(r, &m, 0, meter[0], T0 + 7 * PL_US_PER_S, T0 + MAXK * 20 * PL_US_PER_S,
		     60 * PL_US_PER_S);
	check_series(s, &m, 1, meter[1], T0, T0 + 86400 * PL_US_PER_S, 20 * PL_US_PER_S);

	/* slot-aligned buckets over everything, before the prune */
	edges[0] = (T0 / GRAIN_US) * GRAIN_US;
	for (int i = 1; i < 9; i++)
		edges[i] = edges[i - 1] + 8 * GRAIN_US;
	assert_int_equal(pl_store_merge(s), 0);
	check_edges(s, &m, 0, meter[0], edges, 8);
	check_edges(s, &m, 1, meter[1], edges, 8);
	/* delivered and pruned (keep 0 s): the records are gone, the rollups are not */
	assert_int_equal(pl_store_ack(s, sink, sql_int(s, "SELECT MAX(seq) FROM records")), 0);
	assert_int_equal(pl_store_merge(s), 0);
	sleep(1); /* "stored more than 0 s ago" */
	assert_int_equal(pl_store_prune(s, 0, 0, NULL), 0);
	assert_int_equal(sql_int(s, "SELECT COUNT(*) FROM records"), 0);
	assert_true(sql_int(s, "SELECT COUNT(*) FROM main.rollups") > 0);
	check_edges(s, &m, 0, meter[0], edges, 8);
	check_edges(r, &m, 1, meter[1], edges, 8);
	/* verify notices that the records no longer give the sums */
	assert_int_equal(pl_store_rollup_verify(s, msg, sizeof(msg)), 1);
	assert_non_null(strstr(msg, "records {none}"));
	/* a bucket edge off the slots now lacks the pruned records of its piece */
	edges[0] += GRAIN_US;
	edges[1] = edges[0] + GRAIN_US / 2;
	assert_int_equal(pl_store_buckets(s, meter[0], edges, 1, got), 0);
	assert_int_equal(got[0].records, 0);
	model_bucket(&m, 0, edges[0], edges[1], &want);
	assert_true(want.records > 0);
	pl_store_close(r);
	pl_store_close(s);
	tmp_remove(&t);
}

/* A store with records every 20 s of [from, to) for one meter, committed directly. */
static struct pl_store *steady_store(struct tmp *t, int64_t from, int64_t to, int64_t *meter)
{
	struct pl_store *s;
	struct pl_interval_record r[90];
	size_t n = 0;

	tmp_make(t);
	s = open_ok(t->path, PL_STORE_CREATE);
	assert_int_equal(pl_store_meter(s, "house", 1000, 20, meter), 0);
	for (int64_t u = from; u < to; u += 20 * PL_US_PER_S) {
		struct pl_interval_record x = {
			.start_us = u, .length_s = 20, .pulses = 2, .energy_uwh = 2000,
			.avg_mw = 360000, .peak_mw = 400000, .register_uwh = u / 1000,
		};
		r[n++] = x;
		if (n == 90) {
			commit(s, *meter, r, n);
			n = 0;
		}
	}
	if (n > 0)
		commit(s, *meter, r, n);
	return s;
}

/* Days of 23 and 25 hours and months in Europe/Berlin, from the calendar and the store. */
static void test_dst(void **state)
{
	/* 2026-03-28 00:00 CET .. 2026-03-31 00:00 CEST; 2026-10-24 .. 2026-10-27 */
	const int64_t mar = INT64_C(1774652400) * PL_US_PER_S;
	const int64_t oct = INT64_C(1792792800) * PL_US_PER_S;
	const int64_t h = INT64_C(3600) * PL_US_PER_S;
	int64_t edges[400], meter;
	struct pl_store_bucket b[400];
	struct pl_store *s;
	struct tmp t;
	size_t k;

	(void)state;
	setenv("TZ", "Europe/Berlin", 1);
	tzset();
	/* days around the spring change: 24, 23, 24 hours */
	k = pl_calendar_edges(PL_STEP_DAY, mar + 5 * h, mar + 3 * 24 * h - 2 * h, edges, 400);
	assert_int_equal(k, 4);
	assert_true(edges[0] == mar);
	assert_true(edges[1] - edges[0] == 24 * h);
	assert_true(edges[2] - edges[1] == 23 * h);
	assert_true(edges[3] - edges[2] == 24 * h);
	/* and the autumn change: 24, 25, 24 */
	k = pl_calendar_edges(PL_STEP_DAY, oct, oct + 73 * h, edges, 400);
	assert_int_equal(k, 4);
	assert_true(edges[0] == oct);
	assert_true(edges[2] - edges[1] == 25 * h);
	assert_true(edges[3] == oct + 73 * h);
	/* the hours of the 25-hour day: 25 of one hour each */
	k = pl_calendar_edges(PL_STEP_HOUR, edges[1], edges[2], edges, 400);
	assert_int_equal(k, 26);
	for (size_t i = 1; i < k; i++)
		assert_true(edges[i] - edges[i - 1] == h);
	/* months of 2026 from mid-January to mid-December: starts at local midnight */
	k = pl_calendar_edges(PL_STEP_MONTH, INT64_C(1768478400) * PL_US_PER_S,
			      INT64_C(1797292800) * PL_US_PER_S, edges, 400);
	assert_int_equal(k, 13);
	assert_true(edges[0] == INT64_C(1767222000) * PL_US_PER_S); /* 2026-01-01 00:00 CET */
	assert_true(edges[3] - edges[2] == 31 * 24 * h - h);        /* March: summer time */
	assert_true(edges[10] - edges[9] == 31 * 24 * h + h);       /* October */
	assert_true(edges[11] == INT64_C(1796079600) * PL_US_PER_S); /* 2026-12-01 00:00 CET */
	assert_true(edges[12] == INT64_C(1798758000) * PL_US_PER_S); /* 2027-01-01 00:00 CET */
	/* bad arguments and a short array */
	assert_int_equal(pl_calendar_edges(PL_STEP_DAY, mar, mar, edges, 400), 0);
	assert_int_equal(pl_calendar_edges(PL_STEP_DAY, mar, mar + 3 * 24 * h, edges, 3), 0);
	assert_int_equal(pl_calendar_edges(7, mar, mar + h, edges, 400), 0);

	/* the store's days over the spring change: 24, 23, 24 hours of 20 s records */
	s = steady_store(&t, mar - 2 * h, mar + 80 * h, &meter);
	k = pl_calendar_edges(PL_STEP_DAY, mar, mar + 71 * h, edges, 400);
	assert_int_equal(k, 4);
	assert_int_equal(pl_store_buckets(s, meter, edges, k - 1, b), 0);
	assert_int_equal(b[0].records, 24 * 180);
	assert_int_equal(b[1].records, 23 * 180);
	assert_int_equal(b[1].covered_s, 23 * 3600);
	assert_true(b[1].energy_uwh == 23 * 180 * 2000);
	assert_int_equal(b[2].records, 24 * 180);
	/* hours in a zone with a half-hour offset are not slot-aligned to the hour, but are
	 * to the 15 minutes: every hour holds 180 records */
	setenv("TZ", "Asia/Kolkata", 1);
	tzset();
	k = pl_calendar_edges(PL_STEP_HOUR, mar, mar + 48 * h, edges, 400);
	assert_int_equal(k, 50); /* from 30 minutes before mar to 30 minutes after mar + 48 h */
	assert_true(edges[0] % h == 30 * 60 * PL_US_PER_S);
	assert_int_equal(pl_store_buckets(s, meter, edges, k - 1, b), 0);
	for (size_t i = 0; i + 1 < k; i++)
		assert_int_equal(b[i].records, 180);
	verify_ok(s);
	setenv("TZ", "UTC", 1);
	tzset();
	pl_store_close(s);
	tmp_remove(&t);
}

/* Empty ranges, an unknown meter, bad edges; the series' limits. */
static void test_empty_and_errors(void **state)
{
	const int64_t from = T0, to = T0 + 6 * 3600 * PL_US_PER_S;
	struct pl_store_bucket b[4];
	int64_t edges[4], meter, other;
	struct pl_store *s;
	struct tmp t;
	size_t n;

	(void)state;
	s = steady_store(&t, from, to, &meter);
	assert_int_equal(pl_store_meter(s, "unused", 1000, 20, &other), 0);
	/* before, after the records, and a meter without any: zero buckets with their edges */
	edges[0] = from - 10 * GRAIN_US;
	edges[1] = from - 3 * GRAIN_US + 7;
	edges[2] = from - 1;
	edges[3] = from;
	assert_int_equal(pl_store_buckets(s, meter, edges, 3, b), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(b[i].records, 0);
		assert_true(b[i].start_us == edges[i] && b[i].end_us == edges[i + 1]);
		assert_true(b[i].peak_mw == 0 && b[i].energy_uwh == 0 && b[i].flags == 0);
	}
	edges[0] = to;
	edges[1] = to + 100 * GRAIN_US;
	assert_int_equal(pl_store_buckets(s, meter, edges, 1, b), 0);
	assert_int_equal(b[0].records, 0);
	edges[0] = from;
	edges[1] = to;
	assert_int_equal(pl_store_buckets(s, other, edges, 1, b), 0);
	assert_int_equal(b[0].records, 0);
	/* the whole span, slot-aligned or not */
	assert_int_equal(pl_store_buckets(s, meter, edges, 1, b), 0);
	assert_int_equal(b[0].records, 6 * 180);
	edges[0] = from + 1;
	assert_int_equal(pl_store_buckets(s, meter, edges, 1, b), 0);
	assert_int_equal(b[0].records, 6 * 180 - 1);
	/* an unknown meter, edges that do not increase, no buckets */
	assert_int_equal(pl_store_buckets(s, 999, edges, 1, b), -PL_ENOENT);
	assert_non_null(strstr(pl_store_error(s), "no meter"));
	edges[1] = edges[0];
	assert_int_equal(pl_store_buckets(s, meter, edges, 1, b), -PL_EINVAL);
	assert_int_equal(pl_store_buckets(s, meter, edges, 0, b), -PL_EINVAL);
	/* the series: empty, unknown meter, bad step, more than cap */
	assert_int_equal(pl_store_series(s, meter, to, to + 3600 * PL_US_PER_S, 60 * PL_US_PER_S,
					 b, 4, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(pl_store_series(s, 999, from, to, 60 * PL_US_PER_S, b, 4, &n),
			 -PL_ENOENT);
	assert_int_equal(pl_store_series(s, meter, from, to, 1500000, b, 4, &n), -PL_EINVAL);
	assert_int_equal(pl_store_series(s, meter, to, from, 60 * PL_US_PER_S, b, 4, &n),
			 -PL_EINVAL);
	assert_int_equal(pl_store_series(s, meter, from, to, 60 * PL_US_PER_S, b, 4, &n),
			 -PL_ENOSPC);
	assert_int_equal(n, 4);
	/* buckets aligned to the epoch, and from lies 20 s into one */
	assert_true(from % (60 * PL_US_PER_S) == 20 * PL_US_PER_S);
	assert_true(b[0].start_us == from - 20 * PL_US_PER_S);
	assert_true(b[3].start_us == from + 160 * PL_US_PER_S);
	assert_int_equal(b[0].records, 2);
	assert_int_equal(b[3].records, 3);
	assert_int_equal(b[3].covered_s, 60);
	verify_ok(s);
	pl_store_close(s);
	tmp_remove(&t);
}

/* Times before 1970 fall in the slot and day they lie in (floor division, not truncation). */
static void test_before_1970(void **state)
{
	const int64_t day = INT64_C(86400) * PL_US_PER_S;
	int64_t meter, edges[5] = { -2 * day, -GRAIN_US, 0, GRAIN_US, day };
	struct pl_store_bucket b[4];
	struct pl_store *s;
	struct tmp t;

	(void)state;
	s = steady_store(&t, -day - 3600 * PL_US_PER_S, 3600 * PL_US_PER_S, &meter);
	verify_ok(s);
	assert_int_equal(pl_store_buckets(s, meter, edges, 4, b), 0);
	assert_int_equal(b[0].records, (day + 3600 * PL_US_PER_S - GRAIN_US) / (20 * PL_US_PER_S));
	assert_int_equal(b[1].records, 45); /* the last slot before 1970 */
	assert_int_equal(b[2].records, 45);
	assert_int_equal(b[3].records, 180 - 45);
	/* a whole day before 1970, from the second level */
	edges[0] = -day;
	edges[1] = 0;
	assert_int_equal(pl_store_buckets(s, meter, edges, 1, b), 0);
	assert_int_equal(b[0].records, 4320);
	assert_int_equal(sql_int(s, "SELECT MIN(slot) FROM rollups_day"), -2);
	pl_store_close(s);
	tmp_remove(&t);
}

/* A store of schema version 3 is refused by a reader, and upgraded by a writer with rollups
 * equal to its records. */
static void test_upgrade_from_v3(void **state)
{
	static const char v3[] =
		"PRAGMA journal_mode = WAL;"
		"CREATE TABLE meters(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
		" imp_per_kwh INTEGER NOT NULL, interval_s INTEGER NOT NULL);"
		"CREATE TABLE records(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
		" meter_id INTEGER NOT NULL REFERENCES meters(id), start_us INTEGER NOT NULL,"
		" length_s INTEGER NOT NULL, pulses INTEGER NOT NULL, rejected INTEGER NOT NULL,"
		" flags INTEGER NOT NULL, energy_uwh INTEGER NOT NULL, avg_mw INTEGER NOT NULL,"
		" peak_mw INTEGER NOT NULL, register_uwh INTEGER NOT NULL,"
		" stored_us INTEGER NOT NULL, UNIQUE(meter_id, start_us));"
		"CREATE TABLE sinks(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
		" cursor INTEGER NOT NULL DEFAULT 0, failing INTEGER NOT NULL DEFAULT 0,"
		" last_error TEXT NOT NULL DEFAULT '', error_us INTEGER NOT NULL DEFAULT 0,"
		" ok_us INTEGER NOT NULL DEFAULT 0);"
		"CREATE TABLE quarantine(id INTEGER PRIMARY KEY,"
		" sink_id INTEGER NOT NULL REFERENCES sinks(id), seq INTEGER NOT NULL,"
		" meter_id INTEGER NOT NULL, start_us INTEGER NOT NULL, message TEXT NOT NULL,"
		" at_us INTEGER NOT NULL);"
		"CREATE INDEX quarantine_sink ON quarantine(sink_id);"
		"CREATE TABLE checkpoints(meter_id INTEGER PRIMARY KEY REFERENCES meters(id),"
		" state BLOB NOT NULL, crc INTEGER NOT NULL, stored_us INTEGER NOT NULL);"
		"CREATE TABLE intake(gen INTEGER NOT NULL, id INTEGER NOT NULL);"
		"INSERT INTO intake VALUES(0, random());"
		"INSERT INTO meters VALUES(1, 'house', 1000, 20), (2, 'garage', 1000, 20);"
		"PRAGMA application_id = 1347178311;" /* "PLOG" */
		"PRAGMA user_version = 3;";
	static struct model m;
	struct pl_store *s = NULL;
	sqlite3_stmt *ins;
	sqlite3 *db;
	struct tmp t;
	char err[512];

	(void)state;
	memset(&m, 0, sizeof(m));
	rng_state = 0xC0FFEEu;
	tmp_make(&t);
	assert_int_equal(sqlite3_open(t.path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, v3, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO records(meter_id, start_us, "
					    "length_s, pulses, rejected, flags, energy_uwh, avg_mw, "
					    "peak_mw, register_uwh, stored_us) "
					    "VALUES(?,?,?,?,?,?,?,?,?,?,1)", -1, &ins, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
	for (int mi = 0; mi < 2; mi++) {
		for (int k = 0; k < MAXK; k++) {
			struct pl_interval_record r = random_rec(k);

			if (rnd() % 4 == 0)
				continue; /* holes */
			m.present[mi][k] = 1;
			m.rec[mi][k] = r;
			sqlite3_bind_int64(ins, 1, mi + 1);
			sqlite3_bind_int64(ins, 2, r.start_us);
			sqlite3_bind_int64(ins, 3, r.length_s);
			sqlite3_bind_int64(ins, 4, r.pulses);
			sqlite3_bind_int64(ins, 5, r.rejected);
			sqlite3_bind_int64(ins, 6, r.flags);
			sqlite3_bind_int64(ins, 7, r.energy_uwh);
			sqlite3_bind_int64(ins, 8, r.avg_mw);
			sqlite3_bind_int64(ins, 9, r.peak_mw);
			sqlite3_bind_int64(ins, 10, r.register_uwh);
			assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
			sqlite3_reset(ins);
		}
	}
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_finalize(ins);
	sqlite3_close(db);

	/* a reader refuses it, as before */
	assert_int_equal(pl_store_open(t.path, PL_STORE_READONLY, &s, err, sizeof(err)),
			 -PL_EINVAL);
	assert_non_null(strstr(err, "older"));
	/* the writer upgrades it */
	s = open_ok(t.path, 0);
	assert_int_equal(sql_int(s, "PRAGMA user_version"), PL_STORE_SCHEMA_VERSION);
	assert_true(sql_int(s, "SELECT COUNT(*) FROM main.rollups") > 0);
	verify_ok(s);
	for (int i = 0; i < 30; i++)
		check_random_edges(s, &m, i % 2, i % 2 + 1);
	/* and keeps them from then on; a reader of version 4 reads them */
	commit_model(s, &m, 0, 1, MAXK - 4, 4);
	verify_ok(s);
	pl_store_close(s);
	s = open_ok(t.path, PL_STORE_READONLY);
	for (int i = 0; i < 10; i++)
		check_random_edges(s, &m, i % 2, i % 2 + 1);
	verify_ok(s);
	/* verify notices a stored sum that is wrong (written behind the store's back) */
	pl_store_close(s);
	assert_int_equal(sqlite3_open(t.path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE rollups SET pulses = pulses + 1 WHERE "
				      "meter_id = 2 AND slot = (SELECT MAX(slot) FROM rollups)",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	s = open_ok(t.path, 0);
	assert_int_equal(pl_store_rollup_verify(s, err, sizeof(err)), 1);
	assert_non_null(strstr(err, "meter 2"));
	pl_store_close(s);
	tmp_remove(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_commits),
		cmocka_unit_test(test_dst),
		cmocka_unit_test(test_empty_and_errors),
		cmocka_unit_test(test_before_1970),
		cmocka_unit_test(test_upgrade_from_v3),
	};

	setenv("TZ", "UTC", 1);
	tzset();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
