/* SPDX-License-Identifier: MIT */
/*
 * The daemon's store: interval records, per-meter checkpoints and per-sink delivery cursors in
 * one SQLite database in WAL mode.
 *
 * Exactly once. Records are keyed by (meter, interval start), so committing an interval twice
 * is harmless: the insert is INSERT OR IGNORE, the first copy stays with its sequence number
 * and is delivered once. (INSERT OR REPLACE was rejected: it would give the copy a new sequence
 * number behind every cursor, and deliver it a second time.) Every record also gets a sequence
 * number (seq) from an AUTOINCREMENT key: strictly increasing and never reused, even after the
 * newest records were pruned, so a sink's delivery cursor is just the highest seq it delivered.
 *
 * Durable before acknowledged. pl_store_commit_interval() writes the records and replaces the
 * meter's checkpoint (opaque bytes: the caller's core state and source position) in one
 * transaction, with synchronous=FULL: when it returns 0 the data survive a power cut, and a
 * crash at any moment leaves either the whole interval with its checkpoint or none of it. The
 * daemon's writer (pl_store_intake()) writes that transaction as one synced 4 KiB block of
 * STORE.intake instead, merged into the database every few minutes; every handle reads it as
 * if merged, so nothing below changes for a caller (store.c, "The intake").
 *
 * Retention (pl_store_prune()), an explicit policy:
 *  1. Records delivered to every sink (seq at or below the lowest cursor) and stored more than
 *     keep_delivered_s ago are deleted. "Every sink" is those registered through this handle
 *     with pl_store_sink() (the configured ones: a sink removed from the configuration keeps
 *     its row but holds nothing back), or every sink in the store when none was registered.
 *     With no sink at all nothing counts as delivered.
 *  2. If the store is still larger than max_bytes, delivered records are deleted oldest first,
 *     regardless of age, until it fits.
 *  3. If it is still too large, only undelivered records are left: they are never dropped.
 *     Instead the store refuses new commits with -PL_ENOSPC (and a message saying why) until a
 *     later prune finds it within the bound again, e.g. after the sinks caught up. The caller
 *     keeps its source where it was and reports the condition.
 * Retention deletes records only: the rollups (query.h, schema version 4; about 1.1 MiB per
 * meter and year) count toward the size and are never deleted.
 * The bound is checked when pl_store_prune() runs: the daemon calls it periodically and at
 * start (the refusal is not persistent across a reopen until the next prune).
 * "Size" is the space the database uses, (pages - free pages) x page size; the WAL file comes
 * on top of it, up to about 1000 pages between checkpoints (0.5 MB with the 512-byte pages of
 * a store made since issue 11, 4 MB with 4096). Free pages are returned to the file
 * system by incremental vacuum after a prune.
 *
 * Errors. Every call returns 0 or a negative PL_E* code and leaves a message in
 * pl_store_error(): -PL_ENOSPC for a full disk (SQLITE_FULL) or a store over its size bound,
 * -PL_EIO for an unwritable file or directory and other I/O errors, -PL_ECORRUPT for a damaged
 * database, -PL_ENOMEM, -PL_ENOENT for an unknown meter or sink or a missing checkpoint,
 * -PL_EINVAL for bad arguments. A failed commit is rolled back: the database stays as it was.
 * A file that is not a PowerLogger store (wrong header or application id, failed quick_check,
 * tables of another program) is refused on open: every check runs before the store writes
 * anything, and a file without SQLite's magic is not even handed to SQLite. quick_check reads
 * the whole file, a fraction of a second for a year of 20 s records.
 *
 * A store is not thread-safe: use one per thread. Several processes may open the same file
 * (SQLite locking, busy timeout 5 s); only one of them should write (pl_store_lock()), readers
 * open it with PL_STORE_READONLY. Nothing here opens the database file except through SQLite:
 * closing any descriptor of it would drop this process's POSIX locks, SQLite's included.
 * Linux-side code: it allocates.
 */
#ifndef PL_STORE_H
#define PL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "powerlogger/meter.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Schema version written to PRAGMA user_version. A store with a higher one is refused. */
#define PL_STORE_SCHEMA_VERSION 4
/* PRAGMA application_id of a PowerLogger store: "PLOG". */
#define PL_STORE_APPLICATION_ID 0x504C4F47
/* Longest checkpoint accepted, bytes. */
#define PL_STORE_MAX_STATE (1024 * 1024)
/* Quarantine messages are cut to this many bytes. */
#define PL_STORE_MAX_MESSAGE 4096

enum pl_store_flags {
	PL_STORE_CREATE = 1u << 0, /* create the file if it does not exist (or is empty) */
	/* skip the integrity check (quick_check) of an existing file: for a further connection
	 * of a process that checks the store through another one (the caller must not write
	 * through this one before that check passed) */
	PL_STORE_NOCHECK = 1u << 1,
	/* check an existing file later: by pl_store_check(), or before this connection's first
	 * write, whichever comes first; reads may start at once */
	PL_STORE_DEFER_CHECK = 1u << 2,
	/* a reader (`status`): opens read-only and writes nothing, not even a schema upgrade
	 * (an older schema and an empty file are refused with a message); not with CREATE */
	PL_STORE_READONLY = 1u << 3,
};

/* What pl_store_moved() finds at the store's path. */
enum pl_store_place {
	PL_STORE_IN_PLACE = 0, /* the file this store has open */
	PL_STORE_DELETED = 1,  /* nothing: the open file was deleted (or renamed away) */
	PL_STORE_REPLACED = 2, /* another file */
};

/* A stored record as delivered to a sink. */
struct pl_store_record {
	int64_t seq;      /* sequence number: the cursor value that acknowledges it */
	int64_t meter_id; /* see pl_store_meter() */
	struct pl_interval_record rec;
};

/* What pl_store_prune() did. */
struct pl_store_prune_result {
	uint64_t deleted_by_age;  /* delivered records older than keep_delivered_s */
	uint64_t deleted_by_size; /* delivered records deleted to fit max_bytes */
	uint64_t bytes;           /* space used afterwards */
	int over_limit;           /* 1: still over max_bytes; commits are refused */
};

struct pl_store;

/*
 * Opens (and with PL_STORE_CREATE creates) the store at path. On success *out receives a store
 * that must be closed with pl_store_close(). Returns 0, or with *out NULL and a message
 * "PATH: what is wrong" in err (errlen bytes, may be NULL): -PL_ENOENT (no such file and no
 * PL_STORE_CREATE), -PL_ECORRUPT ("not a PowerLogger store (or damaged): PATH"; the file is
 * left untouched), -PL_EINVAL (a newer schema version, or bad arguments), -PL_EIO (cannot
 * open, read-only file or directory), -PL_ENOSPC (disk full while creating), -PL_ENOMEM.
 */
int pl_store_open(const char *path, unsigned flags, struct pl_store **out, char *err,
		  size_t errlen);

/*
 * Runs the integrity check (SQLite's quick_check, which reads the whole file) now. Returns 0, or
 * -PL_ECORRUPT with the same message as pl_store_open() for a damaged store.
 */
int pl_store_check(struct pl_store *s);

/*
 * Makes this handle the store's writer with an intake (STORE.intake): from now on
 * pl_store_commit_interval() makes an interval durable by appending one 4 KiB block there
 * (one fdatasync, no database commit), and the blocks are merged into the database every
 * merge_s seconds, when the file is full, at pl_store_merge(), pl_store_save_copy() and
 * pl_store_close(). Whatever a crash or power cut left there is merged first, here. Every
 * handle (in any process) reads the intake as if merged; within this process the sinks'
 * acknowledgements (pl_store_ack() on any handle of the store) wait in memory until the next
 * append or merge writes them. What a stopped logger leaves is one database again, but a copy
 * taken of the database file alone while it runs (sqlite3 .backup) lacks what the intake
 * holds. One writer per process. Returns 0; 1 when the file could not be made for want of
 * room (a full disk, a file size limit: pl_store_error() says which), and the handle goes on
 * committing each interval to the database (nothing was in an intake to replay); or a negative
 * PL_E* code.
 */
int pl_store_intake(struct pl_store *s, unsigned merge_s);

/* Merges the intake into the database now (0 without an intake). */
int pl_store_merge(struct pl_store *s);

/* Closes the store (NULL is fine). Everything committed is already durable. */
void pl_store_close(struct pl_store *s);

/*
 * Whether the file at the store's path is still the one it opened (one stat(): cheap enough
 * for every commit). Returns enum pl_store_place.
 */
int pl_store_moved(struct pl_store *s);

/*
 * Writes everything the store holds (as this connection sees it: its file may have been
 * deleted) into a new file dest, created 0600, with SQLite's backup API; dest must not exist.
 * Returns 0, or -PL_EIO/-PL_ENOSPC/... with a message; a partial copy is removed.
 */
int pl_store_save_copy(struct pl_store *s, const char *dest);

/*
 * Closes the store like pl_store_close(), for a store whose file was deleted or replaced
 * (pl_store_moved()): SQLite then leaves the -wal and -shm at the path; those that are this
 * store's own (this process has them open) are deleted after the close, since beside another
 * file at the path they would be taken for its log; those of another file are left alone.
 * Save the content first (pl_store_save_copy()): the close does not checkpoint a moved file.
 */
void pl_store_close_moved(struct pl_store *s);

/*
 * Makes this process the only logger of the store at path: an exclusive flock() on
 * "PATH.lock" (created 0600; it holds the owner's PID), which the caller keeps open until it
 * has closed the store; it is not inherited by exec (close-on-exec). Returns 0 with *fd set,
 * -PL_EBUSY when another process holds it (err says which PID), -PL_EIO. Readers need no lock.
 */
int pl_store_lock(const char *path, int *fd, char *err, size_t errlen);

/* The message of the last failed call, "PATH: what is wrong"; "" if none. Owned by s. */
const char *pl_store_error(const struct pl_store *s);

/*
 * Gets the id of the meter called name, creating it if need be; its constant and interval are
 * updated to the values given. Returns 0, -PL_EINVAL (empty name), or a store error.
 */
int pl_store_meter(struct pl_store *s, const char *name, uint32_t imp_per_kwh,
		   uint32_t interval_s, int64_t *id);

/* Copies the name of meter id to buf (cap bytes, NUL-terminated). -PL_ENOENT, -PL_ENOSPC. */
int pl_store_meter_name(struct pl_store *s, int64_t id, char *buf, size_t cap);

/*
 * Gets the id of the sink called name, creating it if need be. A new sink's cursor is 0: it
 * will be offered every record still stored.
 */
int pl_store_sink(struct pl_store *s, const char *name, int64_t *id);

/*
 * In one durable transaction: inserts the n records (INSERT OR IGNORE on (meter, start): a
 * record already stored is kept as it is) and replaces the meter's checkpoint with the
 * state_len bytes at state (1..PL_STORE_MAX_STATE; state must not be NULL). Callers should
 * begin their state with their own version tag; the store keeps a CRC-32 of it and checks it on
 * load. Returns 0 once durable, -PL_ENOENT (unknown meter), -PL_EINVAL, -PL_ENOSPC (disk full,
 * or the store over its size bound, see pl_store_prune()), -PL_EIO; on error nothing changed.
 */
int pl_store_commit_interval(struct pl_store *s, int64_t meter_id,
			     const struct pl_interval_record *recs, size_t n, const void *state,
			     size_t state_len);

/*
 * Copies the meter's checkpoint to buf (cap bytes); *len gets its length. Returns 0,
 * -PL_ENOENT (no checkpoint yet), -PL_ENOSPC (cap too small: *len still gets the length,
 * nothing is copied), -PL_ECORRUPT (CRC mismatch).
 */
int pl_store_load_checkpoint(struct pl_store *s, int64_t meter_id, void *buf, size_t cap,
			     size_t *len);

/*
 * Writes up to max records not yet delivered to the sink, oldest (lowest seq) first, to out;
 * *n gets how many (0 when the sink is up to date). Does not move the cursor.
 */
int pl_store_next_batch(struct pl_store *s, int64_t sink_id, size_t max,
			struct pl_store_record *out, size_t *n);

/*
 * Same as pl_store_next_batch(), but starting after max(cursor, after_seq): a sink with a
 * batch in flight prepares the next one from there.
 */
int pl_store_next_batch_after(struct pl_store *s, int64_t sink_id, int64_t after_seq,
			      size_t max, struct pl_store_record *out, size_t *n);

/*
 * Marks every record up to and including upto_seq as delivered to the sink. The cursor only
 * moves forward (an older seq is accepted and changes nothing). -PL_EINVAL if upto_seq was
 * never assigned (acknowledging the future would skip records), -PL_ENOENT unknown sink.
 *
 * Unlike a commit, an acknowledgement is not forced to the disk when it returns: it becomes
 * durable with the next record commit (any connection), a checkpoint or the close. A power cut
 * before that moves the cursor back to an earlier acknowledgement, never past this one and
 * never ahead of what was acknowledged, so the sink is offered those records again: sinks
 * must take a repeat as the same data (docs/daemon-design.md, "Disk writes and the SD card").
 * A crash of the process alone loses nothing (the WAL is in the page cache).
 */
int pl_store_ack(struct pl_store *s, int64_t sink_id, int64_t upto_seq);

/*
 * Records that the sink's server permanently rejected record seq, with its message (cut to
 * PL_STORE_MAX_MESSAGE bytes at a UTF-8 character boundary; may be NULL), and moves the cursor
 * to at least seq, so delivery continues past it, in one transaction. This treats the records
 * before it as delivered too: call it for the rejected lines of a batch whose other lines were
 * accepted, then ack the batch. -PL_ENOENT if the record or sink is unknown.
 */
int pl_store_quarantine(struct pl_store *s, int64_t sink_id, int64_t seq, const char *message);

/*
 * How many records wait for the sink, and the earliest interval start among them
 * (INT64_MIN when none wait).
 */
int pl_store_backlog(struct pl_store *s, int64_t sink_id, uint64_t *count,
		     int64_t *oldest_start_us);

/* *any = 1 when at least one record waits for the sink. Cheap (one index probe), unlike
 * pl_store_backlog() which counts. */
int pl_store_pending(struct pl_store *s, int64_t sink_id, int *any);

/* A sink's state as the daemon last recorded it (schema version 2). */
struct pl_store_sink_info {
	int failing;          /* 1: the last attempt failed */
	char last_error[320]; /* the last failure, "" if none yet */
	int64_t error_us;     /* wall clock of the last failure, 0: none */
	int64_t ok_us;        /* wall clock of the last successful delivery, 0: none */
};

/*
 * Records the outcome of a delivery attempt: failing with its error text (never a secret), or
 * working again. Call on a change of state, not on every attempt.
 */
int pl_store_sink_report(struct pl_store *s, int64_t sink_id, int failing, const char *error);

/* Reads what pl_store_sink_report() recorded. -PL_ENOENT for an unknown sink. */
int pl_store_sink_info(struct pl_store *s, int64_t sink_id, struct pl_store_sink_info *info);

/* How many records of the sink are in quarantine. */
int pl_store_quarantined(struct pl_store *s, int64_t sink_id, uint64_t *count);

/*
 * Applies the retention policy described at the top of this file. res may be NULL. Returns 0,
 * -PL_ENOSPC when the store is still over max_bytes (0 means no bound) with only undelivered
 * records left (commits are refused until a later prune fits), or a store error.
 */
int pl_store_prune(struct pl_store *s, int64_t keep_delivered_s, uint64_t max_bytes,
		   struct pl_store_prune_result *res);

/*
 * The underlying SQLite connection (a `sqlite3 *`), for tests and diagnostics only, e.g. to set
 * PRAGMA max_page_count and simulate a full disk. Owned by s.
 */
void *pl_store_sqlite(struct pl_store *s);

/* A meter or a sink as the store knows it. */
struct pl_store_entry {
	int64_t id;
	char name[128];
};

/*
 * Lists the meters (sinks = 0) or the sinks (sinks = 1), in the order they were first seen:
 * at most cap entries into out, *n gets how many. Returns 0 or -PL_E*.
 */
int pl_store_list(struct pl_store *s, int sinks, struct pl_store_entry *out, size_t cap,
		  size_t *n);

/*
 * The meter's register at time t_us as the records say: at the end of the newest record that
 * starts before t_us, or at the start of the oldest record when all are later (for "energy
 * today": the register now minus the register at midnight). -PL_ENOENT without records.
 */
int pl_store_register_at(struct pl_store *s, int64_t meter_id, int64_t t_us, int64_t *reg_uwh);

/*
 * How many of the meter's records since since_us (interval start) carry any of flags (enum
 * pl_quality), and the newest one's start (INT64_MIN if none). A scan of the meter's records
 * since since_us: for `status`, not for a loop.
 */
int pl_store_flagged(struct pl_store *s, int64_t meter_id, uint32_t flags, int64_t since_us,
		     uint64_t *count, int64_t *newest_start_us);

/*
 * The store's id as text: the random mark the database got when it was made (schema version
 * 3, the intake's), as 16 hex digits, stable for the life of the file. A sink that marks what
 * it delivered with (store id, seq) tells its own records from another store's with it (MQTT,
 * sinks/mqtt.h). A copy of the file (`powerlogger backup`) has the same id. cap >= 17.
 * Returns 0, -PL_EINVAL or a store error.
 */
int pl_store_id(struct pl_store *s, char *buf, size_t cap);

/* The newest record of a meter. Returns 0, -PL_ENOENT (none yet) or -PL_E*. */
int pl_store_last_record(struct pl_store *s, int64_t meter_id, struct pl_interval_record *r);

#ifdef __cplusplus
}
#endif
#endif
