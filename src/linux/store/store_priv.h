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

#endif
