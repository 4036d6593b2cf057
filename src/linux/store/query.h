/* SPDX-License-Identifier: MIT */
/*
 * Reading the store for people: energy per hour, day or month, and a power series, fast on
 * years of records (the dashboard, /api/v1, `powerlogger report`).
 *
 * Rollups. Beside the records the store keeps per-meter sums over fixed slots of
 * PL_ROLLUP_GRAIN_S seconds of UTC time (a record belongs to the slot its start falls in),
 * written by the same transaction as the records (an INSERT trigger: a record ignored as a
 * repeat adds nothing) and never touched by retention, so the sums outlive the raw rows they
 * were made from. A query sums whole slots from the rollups and the parts of a bucket that
 * are not whole slots from the records; records still in the intake (store.h) are counted as
 * if merged. The rollups of a store made before them are computed once, on the upgrade.
 *
 * Buckets in local time (the process's TZ): pl_calendar_edges() gives the starts of hours,
 * days or months, honouring daylight-saving changes (a day may be 23 or 25 hours). Every
 * zone's offset is a multiple of 15 minutes, so with a grain of 900 s every local hour and
 * midnight is a slot boundary.
 *
 * Linux-side code; a store is not thread-safe (store.h): one handle per thread.
 */
#ifndef PL_STORE_QUERY_H
#define PL_STORE_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PL_ROLLUP_GRAIN_S 900

enum pl_step {
	PL_STEP_HOUR = 0,
	PL_STEP_DAY = 1,
	PL_STEP_MONTH = 2,
};

/* Sums over the records whose start lies in [start_us, end_us). */
struct pl_store_bucket {
	int64_t start_us, end_us;
	uint64_t records;    /* how many records */
	uint64_t pulses;     /* accepted pulses */
	uint64_t rejected;   /* rejected pulses */
	int64_t energy_uwh;  /* energy of the accepted pulses */
	int64_t covered_s;   /* sum of the records' length_s: the time the logger was there */
	int64_t peak_mw;     /* the highest record peak, 0 if none */
	uint64_t flagged;    /* records with any quality flag (enum pl_quality) */
	uint64_t gaps;       /* records with PL_Q_GAP or PL_Q_PARTIAL: sampling was interrupted */
	uint32_t flags;      /* the OR of the records' flags */
};

/*
 * Fills out[i] for the n buckets [edges[i], edges[i+1]) of meter_id (n + 1 strictly
 * increasing edges, any values; edges on slot boundaries are the fast case). Returns 0,
 * -PL_EINVAL (edges not increasing, n == 0), -PL_ENOENT (unknown meter) or a store error.
 */
int pl_store_buckets(struct pl_store *s, int64_t meter_id, const int64_t *edges, size_t n,
		     struct pl_store_bucket *out);

/*
 * The power series of meter_id over [from_us, to_us): the records summed in buckets of step_us
 * (a multiple of 1 s; buckets aligned to multiples of step_us since the epoch), only the
 * buckets that hold at least one record, oldest first, at most cap of them into out; *n gets
 * how many. A bucket's average power is energy_uwh * 3.6 / covered_s mW. Records, not
 * rollups: meant for a day or a few of them (step_us >= 1 s). Returns 0, -PL_EINVAL,
 * -PL_ENOSPC (more than cap buckets: out holds the first cap), -PL_ENOENT or a store error.
 */
int pl_store_series(struct pl_store *s, int64_t meter_id, int64_t from_us, int64_t to_us,
		    int64_t step_us, struct pl_store_bucket *out, size_t cap, size_t *n);

/*
 * The starts of the local-time (TZ) hours, days or months (enum pl_step) from the one holding
 * from_us up to the first start at or after to_us, into edges (cap entries): edges[0] <=
 * from_us, edges[k-1] >= to_us, so the k - 1 buckets cover [from_us, to_us). Returns k, 0 when
 * cap is too small or from_us >= to_us.
 */
size_t pl_calendar_edges(int step, int64_t from_us, int64_t to_us, int64_t *edges, size_t cap);

/*
 * Recomputes every rollup from the records and compares it with the stored one: for tests and
 * `powerlogger status --check`-like diagnostics. Only meaningful while no record was pruned.
 * Returns 0 when equal, 1 when they differ (the first difference in msg), or a store error.
 */
int pl_store_rollup_verify(struct pl_store *s, char *msg, size_t msglen);

#ifdef __cplusplus
}
#endif
#endif
