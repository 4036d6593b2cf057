/* SPDX-License-Identifier: MIT */
/*
 * What query.c needs of a store's inside: the connection, the intake brought up to date before
 * a read, and the store's message. Not for other callers: store.h is the interface.
 */
#ifndef PL_STORE_PRIV_H
#define PL_STORE_PRIV_H

#include <sqlite3.h>

#include "store/store.h"

/* Brings the intake's TEMP tables up to date (store.c, "The intake"): call before a read. */
int pl_store_sync_(struct pl_store *s);

/* Sets the message "PATH: FMT" and returns err. */
int pl_store_fail_(struct pl_store *s, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Sets the message "PATH: what: SQLite's message" and returns the PL code of rc. */
int pl_store_fail_db_(struct pl_store *s, int rc, const char *what);

/*
 * The rollups (schema version 4, query.h): the slot of a time in µs as SQL (floor division by
 * PL_ROLLUP_GRAIN_S in µs, also for times before 1970), the UTC day of the second level, and
 * the sums of a slot over the records' columns, in the order of main.rollups' (and
 * main.rollups_day's) columns after (meter_id, slot). pl_bit_or() is an aggregate (the OR of
 * its integers) that store.c defines on every connection.
 */
#define PL_ROLLUP_GRAIN_US_SQL "900000000"
#define PL_ROLLUP_DAY_US_SQL "86400000000"
#define PL_FLOOR_DIV_SQL(x, g)                                                                \
	"(CASE WHEN " x " >= 0 THEN " x " / " g " ELSE (" x " - " g " + 1) / " g " END)"
#define PL_ROLLUP_SLOT_SQL(x) PL_FLOOR_DIV_SQL(x, PL_ROLLUP_GRAIN_US_SQL)
#define PL_ROLLUP_DAY_SQL(x) PL_FLOOR_DIV_SQL(x, PL_ROLLUP_DAY_US_SQL)
/* PL_Q_PARTIAL | PL_Q_GAP: "sampling was interrupted" */
#define PL_ROLLUP_GAP_FLAGS_SQL "3"
#define PL_ROLLUP_SUMS_SQL                                                                    \
	"COUNT(*), SUM(pulses), SUM(rejected), SUM(energy_uwh), SUM(length_s), MAX(peak_mw), " \
	"SUM(flags != 0), SUM((flags & " PL_ROLLUP_GAP_FLAGS_SQL ") != 0), pl_bit_or(flags)"

#endif
