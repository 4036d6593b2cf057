/* SPDX-License-Identifier: MIT */
/*
 * Energy per bucket and power series from the store (query.h).
 *
 * Every query runs in one read transaction after the intake was brought up to date, so the
 * records of the database and of the intake (TEMP p_records, store.c "The intake") are one
 * consistent snapshot even while the writer merges.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "powerlogger/common.h"
#include "powerlogger/meter.h"
#include "store/query.h"
#include "store/store_priv.h"

#define GRAIN_US ((int64_t)PL_ROLLUP_GRAIN_S * 1000000)
#define DAY_US (INT64_C(86400) * 1000000)
#define GAP_FLAGS ((uint32_t)(PL_Q_GAP | PL_Q_PARTIAL))

/* The columns every raw read returns, in this order. */
#define REC_COLS "start_us, length_s, pulses, rejected, flags, energy_uwh, peak_mw"
/* The sums of a range of rollups, in the columns of PL_ROLLUP_SUMS_SQL. */
#define PL_ROLLUP_SUMS_SQL_OF_ROLLUPS                                                         \
	"SUM(records), SUM(pulses), SUM(rejected), SUM(energy_uwh), SUM(covered_s), "        \
	"MAX(peak_mw), SUM(flagged), SUM(gaps), pl_bit_or(flags)"

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static void bucket_clear(struct pl_store_bucket *b, int64_t start_us, int64_t end_us)
{
	memset(b, 0, sizeof(*b));
	b->start_us = start_us;
	b->end_us = end_us;
}

/* Adds the record in the current row of st (REC_COLS) to b. */
static void bucket_add_row(struct pl_store_bucket *b, sqlite3_stmt *st)
{
	uint32_t flags = (uint32_t)sqlite3_column_int64(st, 4);
	int64_t peak = sqlite3_column_int64(st, 6);

	b->records++;
	b->covered_s += sqlite3_column_int64(st, 1);
	b->pulses += (uint64_t)sqlite3_column_int64(st, 2);
	b->rejected += (uint64_t)sqlite3_column_int64(st, 3);
	b->energy_uwh += sqlite3_column_int64(st, 5);
	if (peak > b->peak_mw)
		b->peak_mw = peak;
	if (flags != 0)
		b->flagged++;
	if (flags & GAP_FLAGS)
		b->gaps++;
	b->flags |= flags;
}

static int prepare(struct pl_store *s, const char *sql, sqlite3_stmt **st, const char *what)
{
	int rc = sqlite3_prepare_v2(pl_store_sqlite(s), sql, -1, st, NULL);

	return rc == SQLITE_OK ? 0 : pl_store_fail_db_(s, rc, what);
}

/* Starts the read transaction (nothing when the caller's connection is in one already). */
static int read_begin(struct pl_store *s, int *began, const char *what)
{
	sqlite3 *db = pl_store_sqlite(s);
	int rc = pl_store_sync_(s);

	*began = 0;
	if (rc < 0)
		return rc;
	if (!sqlite3_get_autocommit(db))
		return 0;
	rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return pl_store_fail_db_(s, rc, what);
	*began = 1;
	return 0;
}

static void read_end(struct pl_store *s, int began)
{
	if (began)
		sqlite3_exec(pl_store_sqlite(s), "COMMIT", NULL, NULL, NULL);
}

static int meter_known(struct pl_store *s, int64_t meter_id, const char *what)
{
	sqlite3_stmt *st;
	int rc = prepare(s, "SELECT 1 FROM meters WHERE id = ?", &st, what);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, meter_id);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return pl_store_fail_(s, -PL_ENOENT, "%s: no meter with id %" PRId64, what,
				      meter_id);
	return pl_store_fail_db_(s, rc, what);
}

/* The bucket of edges[0..n] that holds t (edges[0] <= t < edges[n]). */
static size_t bucket_of(const int64_t *edges, size_t n, int64_t t)
{
	size_t lo = 0, hi = n; /* edges[lo] <= t < edges[hi] */

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (edges[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Adds the records of st (bound to a range within [edges[0], edges[n])) to their buckets. */
static int scan_into(struct pl_store *s, sqlite3_stmt *st, const int64_t *edges, size_t n,
		     struct pl_store_bucket *out, const char *what)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t t = sqlite3_column_int64(st, 0);

		if (t >= edges[0] && t < edges[n])
			bucket_add_row(&out[bucket_of(edges, n, t)], st);
	}
	return rc == SQLITE_DONE ? 0 : pl_store_fail_db_(s, rc, what);
}

/* Adds the sums of a rollup query's row (PL_ROLLUP_SUMS_SQL's columns) to b. */
static void bucket_add_sums(struct pl_store_bucket *b, sqlite3_stmt *st)
{
	int64_t peak = sqlite3_column_int64(st, 5);

	if (sqlite3_column_type(st, 0) == SQLITE_NULL || sqlite3_column_int64(st, 0) == 0)
		return;
	b->records += (uint64_t)sqlite3_column_int64(st, 0);
	b->pulses += (uint64_t)sqlite3_column_int64(st, 1);
	b->rejected += (uint64_t)sqlite3_column_int64(st, 2);
	b->energy_uwh += sqlite3_column_int64(st, 3);
	b->covered_s += sqlite3_column_int64(st, 4);
	if (peak > b->peak_mw)
		b->peak_mw = peak;
	b->flagged += (uint64_t)sqlite3_column_int64(st, 6);
	b->gaps += (uint64_t)sqlite3_column_int64(st, 7);
	b->flags |= (uint32_t)sqlite3_column_int64(st, 8);
}

/* Runs st bound to (meter, lo, hi) and adds its rows to b: sums (rollups) or records. */
static int run_range(struct pl_store *s, sqlite3_stmt *st, int64_t meter_id, int64_t lo,
		     int64_t hi, int sums, struct pl_store_bucket *b, const char *what)
{
	int rc;

	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, meter_id);
	sqlite3_bind_int64(st, 2, lo);
	sqlite3_bind_int64(st, 3, hi);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (sums)
			bucket_add_sums(b, st);
		else
			bucket_add_row(b, st);
	}
	return rc == SQLITE_DONE ? 0 : pl_store_fail_db_(s, rc, what);
}

/*
 * A piece [a, e) of a bucket is the whole slots [s0, s1) inside it, from the rollups, and the
 * records of the pieces before s0 and after s1 (all of it when it holds no whole slot). The
 * database's records alone: the intake's are added for all buckets at once afterwards.
 */
static int piece_fill(struct pl_store *s, sqlite3_stmt *sums, sqlite3_stmt *raw,
		      int64_t meter_id, int64_t a, int64_t e, struct pl_store_bucket *b,
		      const char *what)
{
	int64_t s0 = -floor_div(-a, GRAIN_US), s1 = floor_div(e, GRAIN_US);
	int rc;

	if (a >= e)
		return 0;
	if (s0 >= s1)
		return run_range(s, raw, meter_id, a, e, 0, b, what);
	rc = run_range(s, sums, meter_id, s0, s1, 1, b, what);
	if (rc == 0 && a < s0 * GRAIN_US)
		rc = run_range(s, raw, meter_id, a, s0 * GRAIN_US, 0, b, what);
	if (rc == 0 && s1 * GRAIN_US < e)
		rc = run_range(s, raw, meter_id, s1 * GRAIN_US, e, 0, b, what);
	return rc;
}

/* A bucket: its whole UTC days from the second level, the rest as pieces (piece_fill). */
static int bucket_fill(struct pl_store *s, sqlite3_stmt *days, sqlite3_stmt *sums,
		       sqlite3_stmt *raw, int64_t meter_id, struct pl_store_bucket *b,
		       const char *what)
{
	int64_t a = b->start_us, e = b->end_us;
	int64_t d0 = -floor_div(-a, DAY_US), d1 = floor_div(e, DAY_US);
	int rc;

	if (d0 >= d1)
		return piece_fill(s, sums, raw, meter_id, a, e, b, what);
	rc = run_range(s, days, meter_id, d0, d1, 1, b, what);
	if (rc == 0)
		rc = piece_fill(s, sums, raw, meter_id, a, d0 * DAY_US, b, what);
	if (rc == 0)
		rc = piece_fill(s, sums, raw, meter_id, d1 * DAY_US, e, b, what);
	return rc;
}

int pl_store_buckets(struct pl_store *s, int64_t meter_id, const int64_t *edges, size_t n,
		     struct pl_store_bucket *out)
{
	const char *what = "cannot read the records";
	sqlite3_stmt *days = NULL, *sums = NULL, *raw = NULL, *intake = NULL;
	int began, rc;

	if (s == NULL)
		return -PL_EINVAL;
	if (edges == NULL || out == NULL || n == 0)
		return pl_store_fail_(s, -PL_EINVAL, "buckets: no buckets");
	for (size_t i = 0; i < n; i++)
		if (edges[i + 1] <= edges[i])
			return pl_store_fail_(s, -PL_EINVAL, "buckets: the edges do not increase");
	for (size_t i = 0; i < n; i++)
		bucket_clear(&out[i], edges[i], edges[i + 1]);
	rc = read_begin(s, &began, what);
	if (rc < 0)
		return rc;
	rc = meter_known(s, meter_id, what);
	if (rc == 0)
		rc = prepare(s, "SELECT " PL_ROLLUP_SUMS_SQL_OF_ROLLUPS " FROM main.rollups_day "
			     "WHERE meter_id = ?1 AND slot >= ?2 AND slot < ?3", &days, what);
	if (rc == 0)
		rc = prepare(s, "SELECT " PL_ROLLUP_SUMS_SQL_OF_ROLLUPS " FROM main.rollups WHERE "
			     "meter_id = ?1 AND slot >= ?2 AND slot < ?3", &sums, what);
	if (rc == 0)
		rc = prepare(s, "SELECT " REC_COLS " FROM main.records WHERE meter_id = ?1 AND "
			     "start_us >= ?2 AND start_us < ?3", &raw, what);
	if (rc == 0)
		rc = prepare(s, "SELECT " REC_COLS " FROM temp.p_records WHERE meter_id = ?1 AND "
			     "start_us >= ?2 AND start_us < ?3 AND "
			     "gen > (SELECT gen FROM main.intake)", &intake, what);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = bucket_fill(s, days, sums, raw, meter_id, &out[i], what);
	if (rc == 0) {
		sqlite3_bind_int64(intake, 1, meter_id);
		sqlite3_bind_int64(intake, 2, edges[0]);
		sqlite3_bind_int64(intake, 3, edges[n]);
		rc = scan_into(s, intake, edges, n, out, what);
	}
	sqlite3_finalize(days);
	sqlite3_finalize(sums);
	sqlite3_finalize(raw);
	sqlite3_finalize(intake);
	read_end(s, began);
	return rc;
}

int pl_store_series(struct pl_store *s, int64_t meter_id, int64_t from_us, int64_t to_us,
		    int64_t step_us, struct pl_store_bucket *out, size_t cap, size_t *n)
{
	const char *what = "cannot read the records";
	sqlite3_stmt *st = NULL;
	size_t k = 0;
	int began, rc;

	if (s == NULL)
		return -PL_EINVAL;
	if (n == NULL || (out == NULL && cap > 0) || from_us >= to_us || step_us < 1000000 ||
	    step_us % 1000000 != 0)
		return pl_store_fail_(s, -PL_EINVAL, "series: invalid range or step");
	*n = 0;
	rc = read_begin(s, &began, what);
	if (rc < 0)
		return rc;
	rc = meter_known(s, meter_id, what);
	if (rc == 0)
		rc = prepare(s, "SELECT " REC_COLS " FROM records WHERE meter_id = ?1 AND "
			     "start_us >= ?2 AND start_us < ?3 ORDER BY start_us", &st, what);
	if (rc == 0) {
		int64_t cur = INT64_MIN;
		int more = 0;

		sqlite3_bind_int64(st, 1, meter_id);
		sqlite3_bind_int64(st, 2, from_us);
		sqlite3_bind_int64(st, 3, to_us);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			int64_t b = floor_div(sqlite3_column_int64(st, 0), step_us) * step_us;

			if (b != cur) {
				if (k == cap) {
					more = 1;
					break;
				}
				bucket_clear(&out[k++], b, b + step_us);
				cur = b;
			}
			bucket_add_row(&out[k - 1], st);
		}
		if (more)
			rc = pl_store_fail_(s, -PL_ENOSPC, "series: more than %zu buckets", cap);
		else
			rc = rc == SQLITE_DONE ? 0 : pl_store_fail_db_(s, rc, what);
	}
	sqlite3_finalize(st);
	read_end(s, began);
	*n = k;
	return rc;
}

/* The start of the local hour, day or month that holds t (seconds). */
static time_t local_floor(int step, time_t t)
{
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL)
		return t;
	if (step == PL_STEP_HOUR)
		return t - (tm.tm_min * 60 + tm.tm_sec);
	tm.tm_sec = 0;
	tm.tm_min = 0;
	tm.tm_hour = 0;
	if (step == PL_STEP_MONTH)
		tm.tm_mday = 1;
	tm.tm_isdst = -1;
	return mktime(&tm);
}

/* The start of the local hour, day or month after the one starting at t. */
static time_t local_next(int step, time_t t)
{
	struct tm tm;
	time_t next;

	if (step == PL_STEP_HOUR) {
		/* not by mktime: a repeated hour (the end of summer time) is ambiguous there */
		next = local_floor(step, t + 3600);
		return next > t ? next : t + 3600;
	}
	if (localtime_r(&t, &tm) == NULL)
		return t + 86400;
	tm.tm_sec = 0;
	tm.tm_min = 0;
	tm.tm_hour = 0;
	if (step == PL_STEP_MONTH) {
		tm.tm_mday = 1;
		tm.tm_mon++;
	} else {
		tm.tm_mday++;
	}
	tm.tm_isdst = -1;
	next = mktime(&tm);
	return next > t ? next : t + 3600;
}

size_t pl_calendar_edges(int step, int64_t from_us, int64_t to_us, int64_t *edges, size_t cap)
{
	time_t t;
	size_t k = 0;

	if (from_us >= to_us || edges == NULL || cap < 2 ||
	    (step != PL_STEP_HOUR && step != PL_STEP_DAY && step != PL_STEP_MONTH))
		return 0;
	t = local_floor(step, (time_t)floor_div(from_us, 1000000));
	for (;;) {
		if (k == cap)
			return 0;
		edges[k++] = (int64_t)t * 1000000;
		if ((int64_t)t * 1000000 >= to_us)
			return k;
		t = local_next(step, t);
	}
}

/* "records=3 pulses=..." of the current row of st from column c (PL_ROLLUP_SUMS_SQL's). */
static void sums_text(sqlite3_stmt *st, int c, char *buf, size_t cap)
{
	static const char *const names[] = { "records", "pulses", "rejected", "energy_uwh",
					     "covered_s", "peak_mw", "flagged", "gaps", "flags" };
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; i < 9 && used < cap; i++) {
		int k = snprintf(buf + used, cap - used, "%s%s=%" PRId64, i ? " " : "", names[i],
				 (int64_t)sqlite3_column_int64(st, c + i));

		if (k < 0)
			break;
		used += (size_t)k;
	}
}

/* The SQL of one level's check: the slots where the records' sums and the stored ones differ,
 * either way, the first of them and how many. */
#define VERIFY_SQL(table, slot)                                                               \
	"WITH calc(meter_id, slot, records, pulses, rejected, energy_uwh, covered_s, "        \
	"peak_mw, flagged, gaps, flags) AS (SELECT meter_id, " slot " AS slot, "               \
	PL_ROLLUP_SUMS_SQL " FROM main.records GROUP BY meter_id, slot),"                     \
	" diff AS (SELECT meter_id, slot FROM (SELECT * FROM calc EXCEPT"                     \
	" SELECT * FROM main." table ") UNION SELECT meter_id, slot FROM"                     \
	" (SELECT * FROM main." table " EXCEPT SELECT * FROM calc))"                          \
	" SELECT meter_id, slot, (SELECT COUNT(*) FROM diff) FROM diff"                       \
	" ORDER BY meter_id, slot LIMIT 1"

/* Checks one level (0: slots, 1: days); 1 and msg when it differs. */
static int verify_level(struct pl_store *s, int level, char *msg, size_t msglen)
{
	static const char *const diff_sql[2] = {
		VERIFY_SQL("rollups", PL_ROLLUP_SLOT_SQL("start_us")),
		VERIFY_SQL("rollups_day", PL_ROLLUP_DAY_SQL("start_us")),
	};
	static const char *const one_sql[2] = {
		"SELECT records, pulses, rejected, energy_uwh, covered_s, peak_mw, flagged, gaps, "
		"flags FROM main.rollups WHERE meter_id = ?1 AND slot = ?2",
		"SELECT records, pulses, rejected, energy_uwh, covered_s, peak_mw, flagged, gaps, "
		"flags FROM main.rollups_day WHERE meter_id = ?1 AND slot = ?2",
	};
	const char *what = "cannot verify the rollups";
	const int64_t grain = level ? DAY_US : GRAIN_US;
	char stored[256] = "none", calc[256] = "none";
	int64_t meter = 0, slot = 0, count = 0;
	sqlite3_stmt *st = NULL, *one = NULL;
	int rc, differ = 0;

	rc = prepare(s, diff_sql[level], &st, what);
	if (rc == 0) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			differ = 1;
			meter = sqlite3_column_int64(st, 0);
			slot = sqlite3_column_int64(st, 1);
			count = sqlite3_column_int64(st, 2);
		}
		rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : pl_store_fail_db_(s, rc, what);
	}
	if (rc == 0 && differ)
		rc = prepare(s, one_sql[level], &one, what);
	if (rc == 0 && differ) {
		sqlite3_bind_int64(one, 1, meter);
		sqlite3_bind_int64(one, 2, slot);
		if (sqlite3_step(one) == SQLITE_ROW)
			sums_text(one, 0, stored, sizeof(stored));
		sqlite3_finalize(one);
		one = NULL;
		rc = prepare(s, "SELECT " PL_ROLLUP_SUMS_SQL " FROM main.records WHERE "
			     "meter_id = ?1 AND start_us >= ?2 AND start_us < ?3", &one, what);
	}
	if (rc == 0 && differ) {
		sqlite3_bind_int64(one, 1, meter);
		sqlite3_bind_int64(one, 2, slot * grain);
		sqlite3_bind_int64(one, 3, (slot + 1) * grain);
		if (sqlite3_step(one) == SQLITE_ROW && sqlite3_column_int64(one, 0) > 0)
			sums_text(one, 0, calc, sizeof(calc));
		if (msg != NULL && msglen > 0)
			snprintf(msg, msglen, "%" PRId64 " %s differ, the first: meter %" PRId64
				 ", %s starting at %" PRId64 " us: rollup {%s}, records {%s}",
				 count, level ? "day(s)" : "slot(s)", meter,
				 level ? "UTC day" : "slot", slot * grain, stored, calc);
	}
	sqlite3_finalize(st);
	sqlite3_finalize(one);
	return rc < 0 ? rc : differ;
}

int pl_store_rollup_verify(struct pl_store *s, char *msg, size_t msglen)
{
	int began, rc;

	if (s == NULL)
		return -PL_EINVAL;
	if (msg != NULL && msglen > 0)
		msg[0] = '\0';
	rc = read_begin(s, &began, "cannot verify the rollups");
	if (rc < 0)
		return rc;
	rc = verify_level(s, 0, msg, msglen);
	if (rc == 0)
		rc = verify_level(s, 1, msg, msglen);
	read_end(s, began);
	return rc;
}
