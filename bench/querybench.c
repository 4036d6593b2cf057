/* SPDX-License-Identifier: MIT */
/*
 * querybench: the queries of the dashboard and of `powerlogger report` (query.h) on a store of
 * five years of 20 s records for two meters (15.8 million rows), against the same answers
 * computed from the raw records.
 *
 *   querybench gen STORE [DAYS] makes STORE (refuses an existing file; DAYS for a quick
 *                             try, default five years); prints progress
 *   querybench schema           prints the schema version it writes
 *   querybench time STORE [N]   times every query N times (default 20): best and median, ms
 *
 * gen writes the records through SQLite directly, in transactions of 200,000 rows with
 * synchronous=OFF (a benchmark fixture, not a logger), into a store made by pl_store_open(),
 * so its schema, page size and rollup trigger are the real ones: the rollups are kept by the
 * trigger exactly as in the daemon. The records follow a daily load curve with noise, a few
 * flagged; five years up to 2026-12-01 00:00 UTC.
 *
 * time opens the store as the HTTP server does (read-only) and measures, per meter: the 30
 * daily buckets of the last 30 days, the 12 monthly buckets of the last 12 months (local time,
 * TZ), and the power series of the last 24 h at steps of 20 s and 60 s; then the same 30-day
 * and 12-month answers as SUMs over the records (the baseline), checks they are equal, and
 * prints the ratio of the medians.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "powerlogger/meter.h"
#include "store/query.h"
#include "store/store.h"

#define US_PER_S INT64_C(1000000)
#define END_S INT64_C(1796083200) /* 2026-12-01 00:00 UTC */
#define YEARS 5
#define STEP_S 20
#define TXN_ROWS 200000
#define MAX_RUNS 200

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static uint64_t rng = 0x9E3779B97F4A7C15u;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * UINT64_C(2685821657736338717);
}

static int sql_ok(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "querybench: %s: %s\n", sql, err != NULL ? err : "?");
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

static int gen(const char *path, int64_t days)
{
	const int64_t start_s = END_S - (int64_t)(days * 86400) / STEP_S * STEP_S;
	const int64_t total = (END_S - start_s) / STEP_S * 2;
	struct pl_store *s;
	struct stat sb;
	sqlite3_stmt *ins;
	sqlite3 *db;
	int64_t meter[2], reg[2] = { 0, 0 }, done = 0;
	double t0 = now_ms();
	char err[512];

	if (stat(path, &sb) == 0) {
		fprintf(stderr, "querybench: %s exists\n", path);
		return 1;
	}
	if (pl_store_open(path, PL_STORE_CREATE, &s, err, sizeof(err)) != 0) {
		fprintf(stderr, "querybench: %s\n", err);
		return 1;
	}
	if (pl_store_meter(s, "house", 1000, STEP_S, &meter[0]) != 0 ||
	    pl_store_meter(s, "heatpump", 1000, STEP_S, &meter[1]) != 0) {
		fprintf(stderr, "querybench: %s\n", pl_store_error(s));
		return 1;
	}
	pl_store_close(s);
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sql_ok(db, "PRAGMA synchronous = OFF; PRAGMA cache_size = -262144") < 0 ||
	    sqlite3_prepare_v2(db, "INSERT INTO records(meter_id, start_us, length_s, pulses, "
			       "rejected, flags, energy_uwh, avg_mw, peak_mw, register_uwh, "
			       "stored_us) VALUES(?,?,?,?,?,?,?,?,?,?,?)", -1, &ins, NULL) !=
		    SQLITE_OK) {
		fprintf(stderr, "querybench: %s: %s\n", path, sqlite3_errmsg(db));
		return 1;
	}
	fprintf(stderr, "querybench: generating %" PRId64 " records (%" PRId64 " days of %d s, "
		"2 meters) into %s\n", total, days, STEP_S, path);
	for (int64_t t = start_s; t < END_S; t += STEP_S) {
		if (done % TXN_ROWS == 0 && sql_ok(db, "BEGIN") < 0)
			return 1;
		for (int m = 0; m < 2; m++) {
			/* a daily curve: low at night, peaks morning and evening; the heat pump
			 * in winter */
			int64_t sod = t % 86400, doy = (t / 86400) % 365;
			double base = m == 0 ? 300.0 : (doy < 90 || doy > 300 ? 1500.0 : 100.0);
			double curve = sod > 6 * 3600 && sod < 9 * 3600 ? 2.5 :
				       sod > 17 * 3600 && sod < 22 * 3600 ? 3.0 : 1.0;
			double watts = base * curve * (0.5 + (double)(rnd() % 1000) / 1000.0);
			uint32_t pulses = (uint32_t)(watts * STEP_S / 3600.0 + 0.5);
			uint64_t r = rnd() % 1000;
			uint32_t flags = r < 2 ? PL_Q_GAP : r < 4 ? PL_Q_REJECTED : 0;
			int64_t e = (int64_t)pulses * 1000000; /* 1000 imp/kWh: 1 Wh each */

			reg[m] += e;
			sqlite3_bind_int64(ins, 1, meter[m]);
			sqlite3_bind_int64(ins, 2, t * US_PER_S);
			sqlite3_bind_int64(ins, 3, STEP_S);
			sqlite3_bind_int64(ins, 4, pulses);
			sqlite3_bind_int64(ins, 5, flags & PL_Q_REJECTED ? 1 : 0);
			sqlite3_bind_int64(ins, 6, flags);
			sqlite3_bind_int64(ins, 7, e);
			sqlite3_bind_int64(ins, 8, e * 3600 / STEP_S / 1000);
			sqlite3_bind_int64(ins, 9, (int64_t)(watts * 1300.0));
			sqlite3_bind_int64(ins, 10, reg[m]);
			sqlite3_bind_int64(ins, 11, (t + STEP_S) * US_PER_S);
			if (sqlite3_step(ins) != SQLITE_DONE) {
				fprintf(stderr, "querybench: insert: %s\n", sqlite3_errmsg(db));
				return 1;
			}
			sqlite3_reset(ins);
			done++;
		}
		if (done % TXN_ROWS == 0) {
			if (sql_ok(db, "COMMIT") < 0)
				return 1;
			if (done % (TXN_ROWS * 8) == 0)
				fprintf(stderr, "querybench: %5.1f %%, %.0f s\n",
					100.0 * (double)done / (double)total,
					(now_ms() - t0) / 1000.0);
		}
	}
	if (done % TXN_ROWS != 0 && sql_ok(db, "COMMIT") < 0)
		return 1;
	sqlite3_finalize(ins);
	if (sql_ok(db, "PRAGMA wal_checkpoint(TRUNCATE)") < 0)
		return 1;
	sqlite3_close(db);
	printf("generated %" PRId64 " records in %.1f s\n", done, (now_ms() - t0) / 1000.0);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct timing {
	double best, median;
};

static struct timing summarize(double *ms, int n)
{
	struct timing t;

	qsort(ms, (size_t)n, sizeof(*ms), cmp_double);
	t.best = ms[0];
	t.median = n % 2 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
	return t;
}

/* The baseline: each bucket as a SUM over the records (the records view, intake included). */
static int raw_buckets(sqlite3 *db, int64_t meter, const int64_t *edges, size_t n,
		       struct pl_store_bucket *out)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(db, "SELECT COUNT(*), SUM(pulses), SUM(energy_uwh), "
			       "SUM(length_s), MAX(peak_mw) FROM records WHERE meter_id = ?1 AND "
			       "start_us >= ?2 AND start_us < ?3", -1, &st, NULL) != SQLITE_OK)
		return -1;
	for (size_t i = 0; i < n; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		sqlite3_bind_int64(st, 1, meter);
		sqlite3_bind_int64(st, 2, edges[i]);
		sqlite3_bind_int64(st, 3, edges[i + 1]);
		if (sqlite3_step(st) != SQLITE_ROW) {
			sqlite3_finalize(st);
			return -1;
		}
		out[i].records = (uint64_t)sqlite3_column_int64(st, 0);
		out[i].pulses = (uint64_t)sqlite3_column_int64(st, 1);
		out[i].energy_uwh = sqlite3_column_int64(st, 2);
		out[i].covered_s = sqlite3_column_int64(st, 3);
		out[i].peak_mw = sqlite3_column_int64(st, 4);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	return 0;
}

static struct pl_store_bucket series[86400 / STEP_S + 16];

static int time_store(const char *path, int runs)
{
	static const char *const names[2] = { "house", "heatpump" };
	const int64_t now = (END_S - 7 * 3600 - 13 * 60) * US_PER_S; /* mid-day, off the slots */
	const int64_t day = 86400 * US_PER_S;
	struct pl_store_bucket b[64], raw[64];
	double ms[6][MAX_RUNS];
	struct pl_store *s;
	sqlite3 *db;
	char err[512];
	int bad = 0;

	if (pl_store_open(path, PL_STORE_READONLY | PL_STORE_NOCHECK, &s, err, sizeof(err)) !=
	    0) {
		fprintf(stderr, "querybench: %s\n", err);
		return 1;
	}
	db = pl_store_sqlite(s);
	printf("%-9s %-26s %10s %10s\n", "meter", "query", "best_ms", "median_ms");
	for (int64_t m = 1; m <= 2; m++) {
		struct timing t[6];
		int64_t e30[64], e12[64];
		size_t k30 = 0, k12 = 0;

		for (int r = 0; r < runs; r++) {
			size_t n;
			double t0 = now_ms();

			k30 = pl_calendar_edges(PL_STEP_DAY, now - 30 * day, now, e30, 64);
			if (k30 < 2 || pl_store_buckets(s, m, e30, k30 - 1, b) != 0)
				goto failed;
			ms[0][r] = now_ms() - t0;
			t0 = now_ms();
			k12 = pl_calendar_edges(PL_STEP_MONTH, now - 365 * day, now, e12, 64);
			if (k12 < 2 || pl_store_buckets(s, m, e12, k12 - 1, b) != 0)
				goto failed;
			ms[1][r] = now_ms() - t0;
			t0 = now_ms();
			if (pl_store_series(s, m, now - day, now, 20 * US_PER_S, series,
					    sizeof(series) / sizeof(series[0]), &n) != 0 ||
			    n < 4000)
				goto failed;
			ms[2][r] = now_ms() - t0;
			t0 = now_ms();
			if (pl_store_series(s, m, now - day, now, 60 * US_PER_S, series,
					    sizeof(series) / sizeof(series[0]), &n) != 0 ||
			    n < 1400)
				goto failed;
			ms[3][r] = now_ms() - t0;
			t0 = now_ms();
			if (raw_buckets(db, m, e30, k30 - 1, raw) != 0)
				goto failed;
			ms[4][r] = now_ms() - t0;
			t0 = now_ms();
			if (raw_buckets(db, m, e12, k12 - 1, raw) != 0)
				goto failed;
			ms[5][r] = now_ms() - t0;
		}
		/* the fast answers equal the raw ones */
		for (int q = 0; q < 2; q++) {
			const int64_t *e = q == 0 ? e30 : e12;
			size_t k = q == 0 ? k30 : k12;

			if (pl_store_buckets(s, m, e, k - 1, b) != 0 ||
			    raw_buckets(db, m, e, k - 1, raw) != 0)
				goto failed;
			for (size_t i = 0; i + 1 < k; i++)
				if (b[i].records != raw[i].records || b[i].pulses != raw[i].pulses ||
				    b[i].energy_uwh != raw[i].energy_uwh ||
				    b[i].covered_s != raw[i].covered_s ||
				    b[i].peak_mw != raw[i].peak_mw) {
					fprintf(stderr, "querybench: meter %" PRId64 " bucket %zu: "
						"rollup and records differ\n", m, i);
					bad = 1;
				}
		}
		for (int q = 0; q < 6; q++)
			t[q] = summarize(ms[q], runs);
		printf("%-9s %-26s %10.2f %10.2f   target < 50\n", names[m - 1],
		       "30 days, daily", t[0].best, t[0].median);
		printf("%-9s %-26s %10.2f %10.2f   target < 50\n", names[m - 1],
		       "12 months, monthly", t[1].best, t[1].median);
		printf("%-9s %-26s %10.2f %10.2f   target < 20\n", names[m - 1],
		       "24 h series, step 20 s", t[2].best, t[2].median);
		printf("%-9s %-26s %10.2f %10.2f   target < 20\n", names[m - 1],
		       "24 h series, step 60 s", t[3].best, t[3].median);
		printf("%-9s %-26s %10.2f %10.2f   %.0fx the rollups' median\n", names[m - 1],
		       "30 days from the records", t[4].best, t[4].median,
		       t[4].median / t[0].median);
		printf("%-9s %-26s %10.2f %10.2f   %.0fx the rollups' median\n", names[m - 1],
		       "12 months from the records", t[5].best, t[5].median,
		       t[5].median / t[1].median);
	}
	pl_store_close(s);
	printf("rollup answers equal to the records': %s\n", bad ? "NO" : "yes");
	return bad;
failed:
	fprintf(stderr, "querybench: query failed: %s\n", pl_store_error(s));
	pl_store_close(s);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "schema") == 0) {
		printf("%d\n", PL_STORE_SCHEMA_VERSION); /* a cached store of another is made anew */
		return 0;
	}
	if (argc >= 3 && strcmp(argv[1], "gen") == 0)
		return gen(argv[2], argc >= 4 ? atoll(argv[3]) : (int64_t)(YEARS * 365.25));
	if (argc >= 3 && strcmp(argv[1], "time") == 0) {
		int runs = argc >= 4 ? atoi(argv[3]) : 20;

		if (runs < 1 || runs > MAX_RUNS)
			runs = 20;
		return time_store(argv[2], runs);
	}
	fprintf(stderr, "usage: querybench gen STORE [DAYS] | querybench time STORE [N]\n"
			"  gen: a store of 5 years of 20 s records of 2 meters (15.8 M rows)\n"
			"  time: the 30-day, 12-month and 24 h queries, N runs (default 20)\n");
	return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
}
