/* SPDX-License-Identifier: MIT */
/*
 * The daemon's store on SQLite (see store.h for the guarantees and the retention policy).
 *
 * Why it is built this way:
 *  - WAL with synchronous=FULL: every commit syncs the WAL, so "returned 0" means "survives a
 *    power cut". NORMAL would only guarantee consistency, and could lose the last intervals.
 *    The one exception is a sink's acknowledgement (pl_store_ack): losing it costs a resend of
 *    points the sink takes as the same data, so it is committed under NORMAL and reaches the
 *    disk with the next interval's sync, one fdatasync per interval instead of two.
 *  - records.seq is INTEGER PRIMARY KEY AUTOINCREMENT, not a plain rowid: a plain rowid may be
 *    reused after the newest rows were deleted (prune can delete every delivered row), and a
 *    reused seq at or below a cursor would never be delivered.
 *  - The natural key UNIQUE(meter_id, start_us) with INSERT OR IGNORE makes a re-commit after a
 *    crash or a replay harmless and invisible to the sinks.
 *  - Nothing is written to a file before it has been recognised as ours: the SQLite magic is
 *    checked by hand before SQLite opens the file, then application_id, user_version and
 *    quick_check are read, and only then is the journal mode switched or the schema created.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>
#include <sqlite3.h>

#include "clock.h"
#include "store/query.h"
#include "store/store.h"
#include "store/store_priv.h"

#define BUSY_TIMEOUT_MS 5000
/*
 * The page size of a new store (an existing one keeps its own). A commit writes one WAL frame,
 * a page and 24 bytes, per page it changes; an interval changes about six (the records row,
 * its index entry, sqlite_sequence, the checkpoint) whatever their size, so small pages write
 * less: with 4096 an interval costs about 17 KB of log, with 512 about 3 KB (docs/daemon-design.md,
 * "Disk writes and the SD card").
 */
#define PAGE_SIZE 512
#define STR_(x) #x
#define STR(x) STR_(x)
#define PAGE_SIZE_STR STR(PAGE_SIZE)

enum stmt_id {
	ST_INS_REC,
	ST_PUT_CP,
	ST_ADD_CP,
	ST_GET_CP,
	ST_METER_EXISTS,
	ST_SINK_CURSOR,
	ST_BATCH,
	ST_ACK,
	ST_MAXSEQ,
	ST_REC_BY_SEQ,
	ST_QUAR_INS,
	ST_BACKLOG,
	ST_QCOUNT,
	ST_PENDING,
	ST_SINK_STATE,
	ST_SINK_INFO,
	ST_INS_SEQ,
	ST_FOLDED,
	ST_DUP,
	ST_P_REC,
	ST_P_CP,
	ST_P_CUR,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_INS_REC] = "INSERT OR IGNORE INTO main.records(meter_id, start_us, length_s, pulses, "
		       "rejected, flags, energy_uwh, avg_mw, peak_mw, register_uwh, stored_us) "
		       "VALUES(?,?,?,?,?,?,?,?,?,?,?)",
	/* an UPDATE first: a state of the same size is overwritten in place, and only the pages
	 * whose bytes changed are written (a REPLACE would free and reallocate its overflow
	 * pages, and touch the header page with the free list); the INSERT for the first one */
	[ST_PUT_CP] = "UPDATE main.checkpoints SET state = ?2, crc = ?3, stored_us = ?4 "
		      "WHERE meter_id = ?1",
	[ST_ADD_CP] = "INSERT INTO main.checkpoints(meter_id, state, crc, stored_us) VALUES(?,?,?,?)",
	[ST_GET_CP] = "SELECT state, crc FROM checkpoints WHERE meter_id = ?",
	[ST_METER_EXISTS] = "SELECT 1 FROM meters WHERE id = ?",
	[ST_SINK_CURSOR] = "SELECT cursor FROM sinks WHERE id = ?",
	[ST_BATCH] = "SELECT seq, meter_id, start_us, length_s, pulses, rejected, flags, "
		     "energy_uwh, avg_mw, peak_mw, register_uwh FROM records WHERE seq > ? "
		     "ORDER BY seq LIMIT ?",
	/* ?3: the wall clock of a delivery (which ends a failure), NULL for a quarantine */
	[ST_ACK] = "UPDATE main.sinks SET cursor = MAX(cursor, ?2), "
		   "ok_us = MAX(ok_us, COALESCE(?3, ok_us)), "
		   "failing = CASE WHEN ?3 IS NULL OR ?3 < error_us THEN failing ELSE 0 END "
		   "WHERE id = ?1",
	/* the highest seq ever assigned: in the database, or in the intake */
	[ST_MAXSEQ] = "SELECT MAX(COALESCE((SELECT seq FROM main.sqlite_sequence WHERE "
		      "name = 'records'), 0), COALESCE((SELECT MAX(seq) FROM temp.p_records "
		      "WHERE gen > (SELECT gen FROM main.intake)), 0))",
	[ST_REC_BY_SEQ] = "SELECT meter_id, start_us FROM records WHERE seq = ?",
	[ST_QUAR_INS] = "INSERT INTO quarantine(sink_id, seq, meter_id, start_us, message, at_us) "
			"VALUES(?,?,?,?,?,?)",
	[ST_BACKLOG] = "SELECT COUNT(*), MIN(start_us) FROM records WHERE seq > ?",
	[ST_QCOUNT] = "SELECT COUNT(*) FROM quarantine WHERE sink_id = ?",
	[ST_PENDING] = "SELECT seq FROM records WHERE seq > ? ORDER BY seq LIMIT 1",
	[ST_SINK_STATE] = "UPDATE main.sinks SET failing = ?2, "
			  "last_error = CASE WHEN ?2 THEN ?3 ELSE last_error END, "
			  "error_us = CASE WHEN ?2 THEN ?4 ELSE error_us END, "
			  "ok_us = CASE WHEN ?2 THEN ok_us ELSE ?4 END WHERE id = ?1",
	[ST_SINK_INFO] = "SELECT failing, last_error, error_us, ok_us FROM sinks WHERE id = ?",
	/* a record from the intake, with the seq it was given there */
	[ST_INS_SEQ] = "INSERT OR IGNORE INTO main.records(seq, meter_id, start_us, length_s, "
		       "pulses, rejected, flags, energy_uwh, avg_mw, peak_mw, register_uwh, "
		       "stored_us) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
	[ST_FOLDED] = "SELECT gen, id FROM main.intake",
	[ST_DUP] = "SELECT 1 FROM records WHERE meter_id = ? AND start_us = ?",
	[ST_P_REC] = "INSERT OR REPLACE INTO temp.p_records VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
	[ST_P_CP] = "INSERT OR REPLACE INTO temp.p_checkpoints VALUES(?,?,?,?)",
	[ST_P_CUR] = "INSERT INTO temp.p_cursors VALUES(?1,?2,?3) ON CONFLICT(sink_id) DO UPDATE "
		     "SET cursor = MAX(cursor, ?2), ok_us = MAX(ok_us, ?3)",
};

/* The intake as every connection sees it (see "The intake" below). */
static const char temp_sql[] =
	"PRAGMA temp_store = MEMORY;"
	"CREATE TEMP TABLE p_records(seq INTEGER PRIMARY KEY, meter_id INTEGER, start_us INTEGER,"
	" length_s INTEGER, pulses INTEGER, rejected INTEGER, flags INTEGER, energy_uwh INTEGER,"
	" avg_mw INTEGER, peak_mw INTEGER, register_uwh INTEGER, stored_us INTEGER, gen INTEGER);"
	"CREATE TEMP TABLE p_checkpoints(meter_id INTEGER PRIMARY KEY, state BLOB, crc INTEGER,"
	" gen INTEGER);"
	"CREATE TEMP TABLE p_cursors(sink_id INTEGER PRIMARY KEY, cursor INTEGER, ok_us INTEGER);"
	"CREATE TEMP VIEW records AS"
	" SELECT seq, meter_id, start_us, length_s, pulses, rejected, flags, energy_uwh, avg_mw,"
	" peak_mw, register_uwh, stored_us FROM main.records UNION ALL"
	" SELECT seq, meter_id, start_us, length_s, pulses, rejected, flags, energy_uwh, avg_mw,"
	" peak_mw, register_uwh, stored_us FROM temp.p_records"
	" WHERE gen > (SELECT gen FROM main.intake);"
	"CREATE TEMP VIEW checkpoints AS"
	" SELECT meter_id, state, crc, 0 AS stored_us FROM temp.p_checkpoints"
	" WHERE gen > (SELECT gen FROM main.intake) UNION ALL"
	" SELECT meter_id, state, crc, stored_us FROM main.checkpoints WHERE meter_id NOT IN"
	" (SELECT meter_id FROM temp.p_checkpoints WHERE gen > (SELECT gen FROM main.intake));"
	"CREATE TEMP VIEW sinks AS"
	" SELECT s.id AS id, s.name AS name, MAX(s.cursor, COALESCE(c.cursor, 0)) AS cursor,"
	" CASE WHEN c.ok_us > s.error_us THEN 0 ELSE s.failing END AS failing,"
	" s.last_error AS last_error, s.error_us AS error_us,"
	" MAX(s.ok_us, COALESCE(c.ok_us, 0)) AS ok_us"
	" FROM main.sinks AS s LEFT JOIN temp.p_cursors AS c ON c.sink_id = s.id;";

/* Added in schema version 2: what `powerlogger status` shows of a sink, running or not. The
 * migration from version 1 adds the same columns (ALTER TABLE takes one at a time). */
#define SINK_FAILING " failing INTEGER NOT NULL DEFAULT 0" /* 1: the last attempt failed */
#define SINK_LAST_ERROR " last_error TEXT NOT NULL DEFAULT ''" /* never holds a secret */
#define SINK_ERROR_US " error_us INTEGER NOT NULL DEFAULT 0" /* wall clock of the last failure */
#define SINK_OK_US " ok_us INTEGER NOT NULL DEFAULT 0" /* wall clock of the last delivery */
#define SINK_STATE_COLUMNS SINK_FAILING "," SINK_LAST_ERROR "," SINK_ERROR_US "," SINK_OK_US

static const char migrate_v2_sql[] =
	"ALTER TABLE sinks ADD COLUMN" SINK_FAILING ";"
	"ALTER TABLE sinks ADD COLUMN" SINK_LAST_ERROR ";"
	"ALTER TABLE sinks ADD COLUMN" SINK_ERROR_US ";"
	"ALTER TABLE sinks ADD COLUMN" SINK_OK_US ";";

/* Added in schema version 3: the generation of the intake (STORE.intake) merged last, and the
 * database's mark that its blocks carry (an intake left beside another database is not its). */
#define INTAKE_SQL                                                                          \
	"CREATE TABLE intake(gen INTEGER NOT NULL, id INTEGER NOT NULL);"                   \
	"INSERT INTO intake VALUES(0, random());"

/*
 * Added in schema version 4: the rollups (query.h), per-meter sums of the records per slot of
 * PL_ROLLUP_GRAIN_S of UTC time, and a second level per UTC day (rollups_day, its slot the
 * day number) for long ranges: a year is 365 rows there instead of 35040. Both are kept by a
 * trigger in the records' own transaction. An INSERT OR IGNORE that ignores a repeat fires no
 * AFTER INSERT trigger, so nothing is counted twice; retention deletes records and leaves the
 * sums. The trigger uses nothing but SQLite's own functions, so the sqlite3 shell can write a
 * store too. Columns as PL_ROLLUP_SUMS_SQL. In the daemon the records arrive by the intake's
 * merges, one transaction for minutes of them: the rollups add a few pages (the slots and days
 * it touches) per merge, not per interval.
 */
#define ROLLUP_COLUMNS_SQL                                                                  \
	" meter_id INTEGER NOT NULL,"                                                       \
	" slot INTEGER NOT NULL,"                                                           \
	" records INTEGER NOT NULL,"                                                        \
	" pulses INTEGER NOT NULL,"                                                         \
	" rejected INTEGER NOT NULL,"                                                       \
	" energy_uwh INTEGER NOT NULL,"                                                     \
	" covered_s INTEGER NOT NULL,"                                                      \
	" peak_mw INTEGER NOT NULL,"                                                        \
	" flagged INTEGER NOT NULL,"                                                        \
	" gaps INTEGER NOT NULL,"                                                           \
	" flags INTEGER NOT NULL,"                                                          \
	" PRIMARY KEY(meter_id, slot)) WITHOUT ROWID;"
#define ROLLUP_ADD_SQL(table, slot)                                                         \
	" INSERT INTO " table " VALUES(NEW.meter_id, " slot ","                             \
	" 1, NEW.pulses, NEW.rejected, NEW.energy_uwh, NEW.length_s, NEW.peak_mw,"          \
	" NEW.flags != 0, (NEW.flags & " PL_ROLLUP_GAP_FLAGS_SQL ") != 0, NEW.flags)"       \
	ROLLUP_UPSERT_SQL
#define ROLLUP_UPSERT_SQL                                                                   \
	" ON CONFLICT(meter_id, slot) DO UPDATE SET records = records + excluded.records,"  \
	" pulses = pulses + excluded.pulses, rejected = rejected + excluded.rejected,"      \
	" energy_uwh = energy_uwh + excluded.energy_uwh,"                                   \
	" covered_s = covered_s + excluded.covered_s,"                                      \
	" peak_mw = MAX(peak_mw, excluded.peak_mw), flagged = flagged + excluded.flagged,"  \
	" gaps = gaps + excluded.gaps, flags = flags | excluded.flags;"
#define ROLLUP_TABLE_SQL                                                                    \
	"CREATE TABLE rollups(" ROLLUP_COLUMNS_SQL                                          \
	"CREATE TABLE rollups_day(" ROLLUP_COLUMNS_SQL                                      \
	"CREATE TRIGGER rollup_add AFTER INSERT ON records BEGIN"                           \
	ROLLUP_ADD_SQL("rollups", PL_ROLLUP_SLOT_SQL("NEW.start_us"))                       \
	ROLLUP_ADD_SQL("rollups_day", PL_ROLLUP_DAY_SQL("NEW.start_us"))                    \
	" END;"
/*
 * The upgrade from version 3 computes them from the records, one statement each. The slots by
 * an upsert per record, as the trigger does, rather than a GROUP BY: that would sort all the
 * records in a temporary file first (a GB for five years of two meters, on an SD card), for
 * no gain in time (about 40 s for those 15.8 M records on a PC). The days from the slots.
 */
#define ROLLUP_FILL_SQL                                                                     \
	"INSERT INTO rollups SELECT meter_id, " PL_ROLLUP_SLOT_SQL("start_us") ", 1, pulses,"\
	" rejected, energy_uwh, length_s, peak_mw, flags != 0,"                             \
	" (flags & " PL_ROLLUP_GAP_FLAGS_SQL ") != 0, flags FROM main.records WHERE 1"      \
	ROLLUP_UPSERT_SQL                                                                   \
	"INSERT INTO rollups_day SELECT meter_id, " PL_FLOOR_DIV_SQL("slot", "96") " AS day," \
	" SUM(records), SUM(pulses), SUM(rejected), SUM(energy_uwh),"                       \
	" SUM(covered_s), MAX(peak_mw), SUM(flagged), SUM(gaps), pl_bit_or(flags)"          \
	" FROM rollups GROUP BY meter_id, day;"

_Static_assert(PL_ROLLUP_GRAIN_S == 900, "PL_ROLLUP_GRAIN_US_SQL is 900 s, 96 slots a day");
_Static_assert((PL_Q_PARTIAL | PL_Q_GAP) == 3, "PL_ROLLUP_GAP_FLAGS_SQL is PARTIAL | GAP");

static const char schema_sql[] =
	"CREATE TABLE meters("
	" id INTEGER PRIMARY KEY,"
	" name TEXT NOT NULL UNIQUE,"
	" imp_per_kwh INTEGER NOT NULL,"
	" interval_s INTEGER NOT NULL);"
	"CREATE TABLE records("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" meter_id INTEGER NOT NULL REFERENCES meters(id),"
	" start_us INTEGER NOT NULL,"
	" length_s INTEGER NOT NULL,"
	" pulses INTEGER NOT NULL,"
	" rejected INTEGER NOT NULL,"
	" flags INTEGER NOT NULL,"
	" energy_uwh INTEGER NOT NULL,"
	" avg_mw INTEGER NOT NULL,"
	" peak_mw INTEGER NOT NULL,"
	" register_uwh INTEGER NOT NULL,"
	" stored_us INTEGER NOT NULL," /* wall clock at commit, for retention */
	" UNIQUE(meter_id, start_us));"
	"CREATE TABLE sinks("
	" id INTEGER PRIMARY KEY,"
	" name TEXT NOT NULL UNIQUE,"
	" cursor INTEGER NOT NULL DEFAULT 0," /* highest seq delivered */
	SINK_STATE_COLUMNS ");"
	"CREATE TABLE quarantine("
	" id INTEGER PRIMARY KEY,"
	" sink_id INTEGER NOT NULL REFERENCES sinks(id),"
	" seq INTEGER NOT NULL,"      /* the record may be pruned later: */
	" meter_id INTEGER NOT NULL," /* its key is copied here */
	" start_us INTEGER NOT NULL,"
	" message TEXT NOT NULL,"
	" at_us INTEGER NOT NULL);"
	"CREATE INDEX quarantine_sink ON quarantine(sink_id);"
	"CREATE TABLE checkpoints("
	" meter_id INTEGER PRIMARY KEY REFERENCES meters(id),"
	" state BLOB NOT NULL,"
	" crc INTEGER NOT NULL," /* CRC-32 of state */
	" stored_us INTEGER NOT NULL);"
	INTAKE_SQL ROLLUP_TABLE_SQL;

struct pl_store {
	sqlite3 *db;
	char *path;
	int over_limit; /* set by pl_store_prune(): refuse commits */
	int unchecked;  /* PL_STORE_DEFER_CHECK: quick_check before the first write */
	int readonly;   /* PL_STORE_READONLY */
	dev_t dev;      /* the file opened, to notice it deleted or replaced */
	ino_t ino;
	uint64_t over_bytes, over_max;
	int64_t *sinks; /* registered through this handle (pl_store_sink): retention waits for */
	size_t nsinks;  /* these alone, so a sink removed from the configuration holds no one back */
	sqlite3_stmt *st[ST_COUNT];
	/* The intake (see "The intake" below). Every handle reads it (rfd, lazily); the writer,
	 * opened with PL_STORE_INTAKE, also appends to it (wfd). */
	int wfd, rfd;
	uint64_t wgen;        /* writer: the generation being written (the merged one + 1) */
	uint32_t wslot;       /* writer: the next block */
	int64_t next_seq;     /* writer: the seq of the next record */
	int64_t merge_us;     /* writer: merge into the database this often (monotonic) */
	int64_t merged_at_us; /* writer: when it last merged */
	uint64_t iid;         /* the database's mark, in each of its blocks */
	uint64_t sgen;        /* reader: the temp tables hold blocks [0, sslots) of sgen */
	uint32_t sslots;
	char msg[1024];
};

static uint32_t crc32_of(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint32_t crc = 0xFFFFFFFFu;

	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
	}
	return ~crc;
}

static int map_sqlite(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_FULL:
		return -PL_ENOSPC;
	case SQLITE_NOMEM:
		return -PL_ENOMEM;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -PL_ECORRUPT;
	case SQLITE_MISUSE:
	case SQLITE_RANGE:
		return -PL_EINVAL;
	default: /* IOERR, READONLY, CANTOPEN, PERM, BUSY, LOCKED, ... */
		return -PL_EIO;
	}
}

/* Records "PATH: what: SQLite's message" and returns the PL code for rc. */
static int fail_db(struct pl_store *s, int rc, const char *what)
{
	int sys = s->db != NULL ? sqlite3_system_errno(s->db) : 0;
	const char *detail = s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
	int err = map_sqlite(rc);

	struct rlimit fsize;

	if ((rc & 0xff) == SQLITE_FULL)
		detail = "disk full (nothing of this operation was stored)";
	else if ((rc & 0xff) == SQLITE_IOERR && getrlimit(RLIMIT_FSIZE, &fsize) == 0 &&
		 fsize.rlim_cur != RLIM_INFINITY)
		/* a write past the limit fails with EFBIG, which SQLite does not always keep */
		detail = "I/O error (the process has a file size limit, ulimit -f: is it reached?)";
	else if ((rc & 0xff) == SQLITE_READONLY)
		detail = "read-only (the file or its directory is not writable)";
	if (sys != 0 && (rc & 0xff) != SQLITE_FULL)
		snprintf(s->msg, sizeof(s->msg), "%s: %s: %s (%s)", s->path, what, detail,
			 strerror(sys));
	else
		snprintf(s->msg, sizeof(s->msg), "%s: %s: %s", s->path, what, detail);
	return err != 0 ? err : -PL_EIO;
}

/* The message of a failure: "PATH: " and the text (the store's own and query.c's). */
int pl_store_fail_(struct pl_store *s, int err, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(s->msg, sizeof(s->msg), "%s: ", s->path);

	if (n < 0 || (size_t)n >= sizeof(s->msg))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(s->msg + n, sizeof(s->msg) - (size_t)n, fmt, ap);
	va_end(ap);
	return err;
}
#define fail pl_store_fail_

static int exec(struct pl_store *s, const char *sql, const char *what)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : fail_db(s, rc, what);
}

/* Rolls back a transaction that is still open after a failure; keeps the first message. */
static void rollback(struct pl_store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static sqlite3_stmt *stmt(struct pl_store *s, enum stmt_id id)
{
	sqlite3_stmt *st = s->st[id];

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

/*
 * Runs a query that returns at most one row of integers. *found gets whether a row came (may
 * be NULL); out gets the first ncol columns (a NULL column reads as `dflt`).
 */
static int query_ints(struct pl_store *s, sqlite3_stmt *st, int64_t *out, int ncol, int64_t dflt,
		      int *found, const char *what)
{
	int rc = sqlite3_step(st);

	if (found != NULL)
		*found = rc == SQLITE_ROW;
	if (rc == SQLITE_ROW) {
		for (int i = 0; i < ncol; i++)
			out[i] = sqlite3_column_type(st, i) == SQLITE_NULL ?
					 dflt :
					 sqlite3_column_int64(st, i);
		rc = SQLITE_DONE;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : fail_db(s, rc, what);
}

/* Same with SQL text, for the statements that run rarely. */
static int query_sql(struct pl_store *s, const char *sql, int64_t *out, int ncol, int64_t dflt,
		     int *found, const char *what)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK)
		return fail_db(s, rc, what);
	rc = query_ints(s, st, out, ncol, dflt, found, what);
	sqlite3_finalize(st);
	return rc;
}

static int refuse_foreign(struct pl_store *s)
{
	snprintf(s->msg, sizeof(s->msg), "not a PowerLogger store (or damaged): %s", s->path);
	return -PL_ECORRUPT;
}

static int file_identity(const char *path, dev_t *dev, ino_t *ino)
{
	struct stat sb;

	if (stat(path, &sb) != 0)
		return -1;
	*dev = sb.st_dev;
	*ino = sb.st_ino;
	return 0;
}

/* A new store: say plainly when its directory is missing or not writable. */
static int check_dir(struct pl_store *s)
{
	char *dir = strdup(s->path), *slash;
	int rc = 0;

	if (dir == NULL)
		return fail(s, -PL_ENOMEM, "out of memory");
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	else
		strcpy(dir, ".");
	if (access(dir, W_OK | X_OK) != 0)
		rc = fail(s, -PL_EIO, "cannot create the store in %s: %s", dir, strerror(errno));
	free(dir);
	return rc;
}

/*
 * Reads the first bytes of the file through SQLite's own file layer. A plain open() and
 * close() would be wrong: closing any descriptor of a file drops every POSIX lock this process
 * holds on it, SQLite's included (locks are per process, not per descriptor), so a second
 * connection of a process that already has the store open (a sink's thread) would silently
 * unlock the first one; the next connection of another process to close would then believe it
 * is the last one and delete the write-ahead log under the daemon. SQLite's unix layer knows
 * its open files: while a lock is held, a closed handle's descriptor is kept open until the
 * locks go.
 */
static int read_head(const char *path, char *head, int len)
{
	sqlite3_vfs *vfs = sqlite3_vfs_find(NULL);
	sqlite3_file *f;
	int rc, out = 0;

	if (vfs == NULL)
		return SQLITE_ERROR;
	f = calloc(1, (size_t)vfs->szOsFile);
	if (f == NULL)
		return SQLITE_NOMEM;
	rc = vfs->xOpen(vfs, path, f, SQLITE_OPEN_READONLY | SQLITE_OPEN_MAIN_DB, &out);
	if (rc == SQLITE_OK)
		rc = f->pMethods->xRead(f, head, len, 0);
	if (f->pMethods != NULL)
		f->pMethods->xClose(f);
	free(f);
	return rc;
}

/*
 * Checks the file at path before SQLite opens it as a database: *exists gets whether it has
 * content, and a file with content must begin with SQLite's magic (a foreign file is not even
 * handed to SQLite, which could roll a stray journal into it).
 */
static int check_file(struct pl_store *s, unsigned flags, int *exists)
{
	static const char magic[16] = "SQLite format 3";
	char head[100];
	struct stat sb;
	int rc;

	*exists = 0;
	if (stat(s->path, &sb) != 0) {
		if (errno == ENOENT && (flags & PL_STORE_CREATE))
			return check_dir(s);
		if (errno == ENOENT)
			return fail(s, -PL_ENOENT, "no such store (not created: %s)", strerror(errno));
		return fail(s, -PL_EIO, "cannot open: %s", strerror(errno));
	}
	if (S_ISDIR(sb.st_mode))
		return fail(s, -PL_EIO, "cannot open: is a directory");
	if (sb.st_size == 0) {
		/* What a crash during creation leaves behind; nothing to lose. */
		if (!(flags & PL_STORE_CREATE))
			return fail(s, -PL_ENOENT, "empty file (not created yet, or being created)");
		return 0;
	}
	rc = read_head(s->path, head, (int)sizeof(head));
	if (rc == SQLITE_IOERR_SHORT_READ)
		return refuse_foreign(s);
	if (rc != SQLITE_OK)
		return fail(s, -PL_EIO, "cannot open: %s", strerror(errno ? errno : EIO));
	if (memcmp(head, magic, sizeof(magic)) != 0)
		return refuse_foreign(s);
	*exists = 1;
	return 0;
}

/*
 * A new store is created 0600 whatever the umask: energy data tell when someone is at home.
 * SQLite gives its -wal and -shm the database file's mode. The file is created empty here,
 * before any connection of this process has it open, so closing this descriptor drops no
 * lock; an existing file keeps the mode its owner gave it.
 */
static int create_private(struct pl_store *s)
{
	int fd = open(s->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0)
		return errno == EEXIST ? 0 : fail(s, -PL_EIO, "cannot create: %s", strerror(errno));
	close(fd);
	return 0;
}

static int create_schema(struct pl_store *s)
{
	char sql[sizeof(schema_sql) + 128];
	int rc;

	snprintf(sql, sizeof(sql), "BEGIN IMMEDIATE;%sPRAGMA application_id = %d;"
		 "PRAGMA user_version = %d;COMMIT;", schema_sql, PL_STORE_APPLICATION_ID,
		 PL_STORE_SCHEMA_VERSION);
	rc = exec(s, sql, "cannot create the store");
	if (rc < 0)
		rollback(s);
	return rc;
}

/* SQLite's structural check of the whole file: a damaged store is refused, never written. */
static int quick_check(struct pl_store *s)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check", -1, &st, NULL);

	if (rc != SQLITE_OK)
		return fail_db(s, rc, "cannot check");
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
		sqlite3_finalize(st);
		return refuse_foreign(s);
	}
	sqlite3_finalize(st);
	s->unchecked = 0;
	return 0;
}

/* Every write goes through here first: a deferred check runs before the first one. */
static int ensure_checked(struct pl_store *s)
{
	return s->unchecked ? quick_check(s) : 0;
}

int pl_store_check(struct pl_store *s)
{
	if (s == NULL)
		return -PL_EINVAL;
	return quick_check(s);
}

/* Brings a store of an older schema version up to this program's, in one transaction. */
static int migrate(struct pl_store *s, int64_t version)
{
	char sql[sizeof(migrate_v2_sql) + sizeof(INTAKE_SQL) + sizeof(ROLLUP_TABLE_SQL) +
		 sizeof(ROLLUP_FILL_SQL) + 128];
	int rc;

	if (version >= PL_STORE_SCHEMA_VERSION)
		return 0;
	/* version 1 -> 2: the sinks' state; 2 -> 3: the intake's generation; 3 -> 4: the
	 * rollups, computed from the records (seconds for years of them: the caller says so) */
	snprintf(sql, sizeof(sql), "BEGIN IMMEDIATE;%s%s%s%sPRAGMA user_version = %d;COMMIT;",
		 version < 2 ? migrate_v2_sql : "", version < 3 ? INTAKE_SQL : "",
		 ROLLUP_TABLE_SQL, ROLLUP_FILL_SQL, PL_STORE_SCHEMA_VERSION);
	rc = exec(s, sql, "cannot upgrade the store's schema");
	if (rc < 0)
		rollback(s);
	return rc;
}

static int prepare_all(struct pl_store *s)
{
	int trc = exec(s, temp_sql, "cannot prepare");

	if (trc < 0)
		return trc;
	for (int i = 0; i < ST_COUNT; i++) {
		int rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					    &s->st[i], NULL);

		if (rc != SQLITE_OK)
			return fail_db(s, rc, "cannot prepare");
	}
	return 0;
}

static int max_seq(struct pl_store *s, int64_t *seq);

/*
 * The intake: STORE.intake, where the writer makes each interval durable between merges into
 * the database (docs/daemon-design.md, "Disk writes and the SD card"). A SQLite commit costs
 * several pages of WAL, its WAL index (the -shm, a shared mapping the kernel writes back every
 * half minute) and later a checkpoint; an interval appended here costs one 4 KiB block.
 *
 * The file is INTAKE_SLOTS blocks, written with zeros (and synced) when it is made, so that an
 * append overwrites allocated space and its fdatasync has no metadata to write. Block k of
 * generation g holds one commit: a meter's records (with their seqs), its checkpoint and the
 * sinks' cursors as this process knew them, sealed with a CRC-32. The generation merged into
 * the database last is in main.intake, updated in the merging transaction: the blocks that
 * count are those of the next generation, from block 0 up to the first that is not (torn by a
 * power cut, zeros, or of an older generation). A merge moves them into the database in one
 * transaction; the next append starts again at block 0 with the generation after. A block is
 * written once per generation (a failed append is retried into the same block with the same
 * records), so a reader never sees one change.
 *
 * Every handle shows the intake as if merged: TEMP tables p_records, p_checkpoints and
 * p_cursors, filled from the file before each read (intake_sync()), and TEMP views records,
 * checkpoints and sinks that shadow the tables of main (an unqualified name finds TEMP first)
 * and take from the TEMP tables only what is newer than main.intake, in the same snapshot:
 * no record twice, none missing, while a merge runs in another connection. Writes name main.
 *
 * Acknowledgements of the writer's sinks are not written at all until the next append (which
 * carries them) or merge: within the process they go to a table shared by the handles of one
 * store (acks below). A power cut loses at most the acknowledgements since the last interval,
 * and those records are sent again (safe for each sink: docs/daemon-design.md).
 */
#define INTAKE_BLOCK 4096
#define INTAKE_SLOTS 256
#define INTAKE_MAGIC 0x4E494C50u /* "PLIN" */
#define INTAKE_VERSION 1
#define INTAKE_HEAD 56
#define INTAKE_REC 72  /* 9 x 8 bytes */
#define INTAKE_CUR 24  /* sink, cursor, ok_us */
#define INTAKE_ROOM (INTAKE_BLOCK - 4 - INTAKE_HEAD)
#define ACKS_MAX 64

struct intake_block {
	uint64_t gen;
	uint32_t slot, nrec, ncur, state_len;
	int64_t meter_id, first_seq;
	const unsigned char *rec, *cur, *state; /* inside the block's bytes */
};

/* The acknowledgements not yet written, of the stores this process writes with an intake. */
static pthread_mutex_t acks_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ack {
	dev_t dev;
	ino_t ino;
	int64_t sink_id; /* 0: the writer's own entry (that it is open), no sink */
	int64_t cursor, ok_us;
} acks[ACKS_MAX];
static size_t nacks;

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static char *intake_path(const struct pl_store *s, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s.intake", s->path);
	return buf;
}

/* Parses block `slot` of generation gen from raw; 0 when it is one. */
static int intake_parse(const unsigned char *raw, uint64_t gen, uint64_t id, uint32_t slot,
			struct intake_block *b)
{
	if (get32(raw) != INTAKE_MAGIC || get32(raw + 4) != INTAKE_VERSION ||
	    get32(raw + INTAKE_BLOCK - 4) != crc32_of(raw, INTAKE_BLOCK - 4))
		return -1;
	b->gen = get64(raw + 8);
	b->slot = get32(raw + 16);
	b->nrec = get32(raw + 20);
	b->ncur = get32(raw + 24);
	b->state_len = get32(raw + 28);
	b->meter_id = (int64_t)get64(raw + 32);
	b->first_seq = (int64_t)get64(raw + 40);
	if (b->gen != gen || get64(raw + 48) != id || b->slot != slot ||
	    (uint64_t)b->nrec * INTAKE_REC + (uint64_t)b->ncur * INTAKE_CUR + b->state_len >
		    INTAKE_ROOM)
		return -1;
	b->rec = raw + INTAKE_HEAD;
	b->cur = b->rec + (size_t)b->nrec * INTAKE_REC;
	b->state = b->cur + (size_t)b->ncur * INTAKE_CUR;
	return 0;
}

static void intake_rec(const struct intake_block *b, uint32_t i, struct pl_interval_record *r,
		       int64_t *stored_us)
{
	const unsigned char *p = b->rec + (size_t)i * INTAKE_REC;

	r->start_us = (int64_t)get64(p);
	r->length_s = (uint32_t)get64(p + 8);
	r->pulses = get32(p + 16);
	r->rejected = get32(p + 20);
	r->flags = (uint32_t)get64(p + 24);
	r->energy_uwh = (int64_t)get64(p + 32);
	r->avg_mw = (int64_t)get64(p + 40);
	r->peak_mw = (int64_t)get64(p + 48);
	r->register_uwh = (int64_t)get64(p + 56);
	*stored_us = (int64_t)get64(p + 64);
}

/* Reads block slot into raw: 1 read, 0 end of file, <0 error (errno). */
static int intake_read(int fd, uint32_t slot, unsigned char *raw)
{
	ssize_t got = pread(fd, raw, INTAKE_BLOCK, (off_t)slot * INTAKE_BLOCK);

	if (got < 0)
		return -1;
	return got == INTAKE_BLOCK;
}

/* The acknowledgements of this store in this process; *writer: whether its writer is open. */
static size_t acks_of(const struct pl_store *s, struct ack *out, size_t cap, int *writer)
{
	size_t n = 0;

	*writer = 0;
	pthread_mutex_lock(&acks_lock);
	for (size_t i = 0; i < nacks; i++) {
		if (acks[i].dev != s->dev || acks[i].ino != s->ino)
			continue;
		if (acks[i].sink_id == 0)
			*writer = 1;
		else if (n < cap)
			out[n++] = acks[i];
	}
	pthread_mutex_unlock(&acks_lock);
	return n;
}

/* Records an acknowledgement (sink_id 0: the writer itself); 0, or -1 when the table is full. */
static int acks_put(const struct pl_store *s, int64_t sink_id, int64_t cursor, int64_t ok_us)
{
	int rc = -1;

	pthread_mutex_lock(&acks_lock);
	for (size_t i = 0; i < nacks; i++) {
		struct ack *a = &acks[i];

		if (a->dev == s->dev && a->ino == s->ino && a->sink_id == sink_id) {
			if (cursor > a->cursor)
				a->cursor = cursor;
			if (ok_us > a->ok_us)
				a->ok_us = ok_us;
			rc = 0;
			break;
		}
	}
	if (rc != 0 && nacks < ACKS_MAX) {
		acks[nacks++] = (struct ack){ s->dev, s->ino, sink_id, cursor, ok_us };
		rc = 0;
	}
	pthread_mutex_unlock(&acks_lock);
	return rc;
}

static void acks_drop(const struct pl_store *s)
{
	size_t k = 0;

	pthread_mutex_lock(&acks_lock);
	for (size_t i = 0; i < nacks; i++)
		if (acks[i].dev != s->dev || acks[i].ino != s->ino)
			acks[k++] = acks[i];
	nacks = k;
	pthread_mutex_unlock(&acks_lock);
}

/* The generation merged last, and the database's mark (into s->iid). */
static int folded_gen(struct pl_store *s, uint64_t *gen)
{
	int64_t g[2] = { 0, 0 };
	int rc = query_ints(s, stmt(s, ST_FOLDED), g, 2, 0, NULL, "cannot read the intake's state");

	*gen = (uint64_t)g[0];
	s->iid = (uint64_t)g[1];
	return rc;
}

/* Binds and runs one of the statements that write the TEMP tables or main. */
static int step_done(struct pl_store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : fail_db(s, rc, what);
}

static void bind_rec(sqlite3_stmt *st, int64_t seq, int64_t meter_id,
		     const struct pl_interval_record *r, int64_t stored_us)
{
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int64(st, 2, meter_id);
	sqlite3_bind_int64(st, 3, r->start_us);
	sqlite3_bind_int64(st, 4, r->length_s);
	sqlite3_bind_int64(st, 5, r->pulses);
	sqlite3_bind_int64(st, 6, r->rejected);
	sqlite3_bind_int64(st, 7, r->flags);
	sqlite3_bind_int64(st, 8, r->energy_uwh);
	sqlite3_bind_int64(st, 9, r->avg_mw);
	sqlite3_bind_int64(st, 10, r->peak_mw);
	sqlite3_bind_int64(st, 11, r->register_uwh);
	sqlite3_bind_int64(st, 12, stored_us);
}

static int put_cursor(struct pl_store *s, int64_t sink_id, int64_t cursor, int64_t ok_us)
{
	sqlite3_stmt *st = stmt(s, ST_P_CUR);

	sqlite3_bind_int64(st, 1, sink_id);
	sqlite3_bind_int64(st, 2, cursor);
	sqlite3_bind_int64(st, 3, ok_us);
	return step_done(s, st, "cannot read the intake");
}

/*
 * Brings the TEMP tables up to the intake file and this process's acknowledgements: before
 * every read. Cheap when nothing changed (one query and one pread of the next block).
 */
static int intake_sync(struct pl_store *s)
{
	unsigned char raw[INTAKE_BLOCK];
	struct ack a[ACKS_MAX];
	uint64_t gen, id = s->iid;
	size_t na;
	int writer, rc;

	rc = folded_gen(s, &gen);
	if (rc < 0)
		return rc;
	if (gen + 1 != s->sgen || s->iid != id) {
		/* merged since: what the TEMP tables hold is in main now (the views hide it); or
		 * another database at the path */
		rc = exec(s, "DELETE FROM temp.p_records; DELETE FROM temp.p_checkpoints",
			  "cannot read the intake");
		if (rc < 0)
			return rc;
		s->sgen = gen + 1;
		s->sslots = 0;
	}
	if (s->rfd < 0) {
		char name[4200];

		s->rfd = open(intake_path(s, name, sizeof(name)), O_RDONLY | O_CLOEXEC);
		if (s->rfd < 0 && errno != ENOENT)
			return fail(s, -PL_EIO, "cannot read %s: %s", name, strerror(errno));
	}
	while (s->rfd >= 0 && s->sslots < INTAKE_SLOTS) {
		struct intake_block b;

		rc = intake_read(s->rfd, s->sslots, raw);
		if (rc < 0)
			return fail(s, -PL_EIO, "cannot read the intake: %s", strerror(errno));
		if (rc == 0 || intake_parse(raw, s->sgen, s->iid, s->sslots, &b) != 0)
			break;
		rc = exec(s, "SAVEPOINT sync", "cannot read the intake");
		for (uint32_t i = 0; rc == 0 && i < b.nrec; i++) {
			struct pl_interval_record r;
			int64_t stored;
			sqlite3_stmt *st = stmt(s, ST_P_REC);

			intake_rec(&b, i, &r, &stored);
			bind_rec(st, b.first_seq + i, b.meter_id, &r, stored);
			sqlite3_bind_int64(st, 13, (int64_t)b.gen);
			rc = step_done(s, st, "cannot read the intake");
		}
		for (uint32_t i = 0; rc == 0 && i < b.ncur; i++) {
			const unsigned char *p = b.cur + (size_t)i * INTAKE_CUR;

			rc = put_cursor(s, (int64_t)get64(p), (int64_t)get64(p + 8),
					(int64_t)get64(p + 16));
		}
		if (rc == 0) {
			sqlite3_stmt *st = stmt(s, ST_P_CP);

			sqlite3_bind_int64(st, 1, b.meter_id);
			sqlite3_bind_blob(st, 2, b.state, (int)b.state_len, SQLITE_TRANSIENT);
			sqlite3_bind_int64(st, 3, crc32_of(b.state, b.state_len));
			sqlite3_bind_int64(st, 4, (int64_t)b.gen);
			rc = step_done(s, st, "cannot read the intake");
		}
		if (rc < 0) {
			sqlite3_exec(s->db, "ROLLBACK TO sync; RELEASE sync", NULL, NULL, NULL);
			return rc;
		}
		rc = exec(s, "RELEASE sync", "cannot read the intake");
		if (rc < 0)
			return rc;
		s->sslots++;
	}
	na = acks_of(s, a, ACKS_MAX, &writer);
	for (size_t i = 0; i < na; i++) {
		rc = put_cursor(s, a[i].sink_id, a[i].cursor, a[i].ok_us);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/*
 * Moves the blocks of generation s->wgen (and this process's acknowledgements) into the
 * database in one transaction that also moves main.intake on: the writer's merge, and the
 * replay after a crash. Then appends start again at block 0.
 */
static int intake_merge(struct pl_store *s)
{
	const char *what = "cannot merge the intake into the database";
	unsigned char raw[INTAKE_BLOCK];
	struct ack a[ACKS_MAX];
	uint64_t gen;
	size_t na;
	int writer, rc;

	rc = ensure_checked(s);
	if (rc == 0)
		rc = exec(s, "BEGIN IMMEDIATE", what);
	if (rc < 0)
		return rc;
	rc = folded_gen(s, &gen);
	if (rc == 0 && gen + 1 != s->wgen)
		rc = fail(s, -PL_EIO, "the intake was merged by someone else (generation %" PRIu64
			  ", expected %" PRIu64 "): is another logger writing this store?", gen,
			  s->wgen - 1);
	for (uint32_t slot = 0; rc == 0 && slot < INTAKE_SLOTS; slot++) {
		struct intake_block b;
		int got = intake_read(s->wfd, slot, raw);

		if (got < 0)
			rc = fail(s, -PL_EIO, "cannot read the intake: %s", strerror(errno));
		if (got <= 0 || intake_parse(raw, s->wgen, s->iid, slot, &b) != 0)
			break;
		for (uint32_t i = 0; rc == 0 && i < b.nrec; i++) {
			struct pl_interval_record r;
			int64_t stored;
			sqlite3_stmt *st = stmt(s, ST_INS_SEQ);

			intake_rec(&b, i, &r, &stored);
			bind_rec(st, b.first_seq + i, b.meter_id, &r, stored);
			rc = step_done(s, st, what);
		}
		for (uint32_t i = 0; rc == 0 && i < b.ncur; i++) {
			const unsigned char *p = b.cur + (size_t)i * INTAKE_CUR;
			sqlite3_stmt *st = stmt(s, ST_ACK);

			sqlite3_bind_int64(st, 1, (int64_t)get64(p));
			sqlite3_bind_int64(st, 2, (int64_t)get64(p + 8));
			sqlite3_bind_int64(st, 3, (int64_t)get64(p + 16));
			rc = step_done(s, st, what);
		}
		for (int put = ST_PUT_CP; rc == 0 && put <= ST_ADD_CP; put++) {
			sqlite3_stmt *st = stmt(s, (enum stmt_id)put);

			sqlite3_bind_int64(st, 1, b.meter_id);
			sqlite3_bind_blob(st, 2, b.state, (int)b.state_len, SQLITE_STATIC);
			sqlite3_bind_int64(st, 3, crc32_of(b.state, b.state_len));
			sqlite3_bind_int64(st, 4, pl_clock_wall_us());
			rc = step_done(s, st, what);
			if (rc == 0 && sqlite3_changes(s->db) > 0)
				break;
		}
	}
	na = acks_of(s, a, ACKS_MAX, &writer);
	for (size_t i = 0; rc == 0 && i < na; i++) {
		sqlite3_stmt *st = stmt(s, ST_ACK);

		sqlite3_bind_int64(st, 1, a[i].sink_id);
		sqlite3_bind_int64(st, 2, a[i].cursor);
		if (a[i].ok_us > 0)
			sqlite3_bind_int64(st, 3, a[i].ok_us);
		rc = step_done(s, st, what);
	}
	if (rc == 0)
		rc = exec(s, "UPDATE main.intake SET gen = gen + 1", what);
	if (rc == 0)
		rc = exec(s, "COMMIT", what);
	if (rc < 0) {
		rollback(s);
		return rc;
	}
	s->wgen++;
	s->wslot = 0;
	s->merged_at_us = pl_clock_mono_us();
	return 0;
}

/* pwrite() of all of buf: a short write goes on, so that a failure leaves its own errno. */
static int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	const unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* "what: why" for a failed write of the intake, and its code (a full disk or a size limit:
 * -PL_ENOSPC). */
static int fail_write(struct pl_store *s, const char *what, const char *name, int e)
{
	if (e == EFBIG)
		return fail(s, -PL_ENOSPC, "%s %s: the process's file size limit (ulimit -f) is "
			    "reached", what, name);
	return fail(s, e == ENOSPC ? -PL_ENOSPC : -PL_EIO, "%s %s: %s", what, name,
		    strerror(e));
}

/*
 * Makes the file (zeros, synced, and its directory entry) if it does not exist, or completes
 * one whose making a crash cut short: 1 when it was made, 0 when it was there.
 */
static int intake_create(struct pl_store *s, const char *name)
{
	static const unsigned char zero[INTAKE_BLOCK];
	const off_t full = (off_t)INTAKE_SLOTS * INTAKE_BLOCK;
	char dir[4200], *slash;
	int fd, dfd, rc = 0, made = 1;
	struct stat sb;

	fd = open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST) {
		made = 0;
		fd = open(name, O_RDWR | O_CLOEXEC);
	}
	if (fd < 0)
		return fail_write(s, made ? "cannot create" : "cannot open", name, errno);
	if (fstat(fd, &sb) != 0) {
		rc = fail_write(s, "cannot open", name, errno);
		close(fd);
		return rc;
	}
	if (!made && sb.st_size >= full) {
		close(fd);
		return 0;
	}
	/* what is there stays (a block cut short is not one anyway); zeros up to the full size */
	for (off_t off = sb.st_size; rc == 0 && off < full;) {
		size_t n = (size_t)(INTAKE_BLOCK - off % INTAKE_BLOCK);

		rc = pwrite_all(fd, zero, n, off);
		off += (off_t)n;
	}
	if (rc == 0)
		rc = fsync(fd);
	if (rc != 0 && !made) {
		/* it works as it is (appends extend it), and may hold blocks to replay */
		close(fd);
		return 0;
	}
	if (rc != 0) {
		rc = fail_write(s, "cannot create", name, errno);
		close(fd);
		unlink(name);
		return rc;
	}
	close(fd);
	snprintf(dir, sizeof(dir), "%s", name);
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return made;
}

/* The writer's side, at open: the file, a replay of what a crash left, the seq to go on from. */
static int intake_open_writer(struct pl_store *s, unsigned merge_s)
{
	char name[4200];
	uint64_t gen;
	int rc, writer;
	struct ack none[1];
	struct stat sb;

	acks_of(s, none, 0, &writer);
	if (writer)
		return fail(s, -PL_EINVAL, "this process writes the store already");
	intake_path(s, name, sizeof(name));
	rc = intake_create(s, name);
	if (rc == -PL_ENOSPC)
		return 1; /* no room for it: nothing in it to replay, the store goes on without */
	if (rc < 0)
		return rc;
	s->wfd = open(name, O_RDWR | O_CLOEXEC);
	if (s->wfd < 0)
		return fail(s, -PL_EIO, "cannot open %s: %s", name, strerror(errno));
	/* readable by whoever may read the database (its owner may have opened it to a group) */
	if (stat(s->path, &sb) == 0 && fchmod(s->wfd, sb.st_mode & 0666) != 0)
		return fail(s, -PL_EIO, "cannot give %s the mode of the store: %s", name,
			    strerror(errno));
	rc = folded_gen(s, &gen);
	if (rc < 0)
		return rc;
	s->wgen = gen + 1;
	s->merge_us = (int64_t)merge_s * PL_US_PER_S;
	/* what the last run left (a crash, a power cut): into the database at once */
	rc = intake_merge(s);
	if (rc == 0)
		rc = max_seq(s, &s->next_seq);
	if (rc < 0)
		return rc;
	s->next_seq++;
	return acks_put(s, 0, 0, 0) == 0 ? 0 : fail(s, -PL_ENOMEM, "too many stores open");
}

/*
 * One interval into the intake: 1 when it does not fit in a block (the caller commits it to
 * the database directly), 0 when it is durable, <0 on error (nothing changed: the caller tries
 * again with the same records).
 */
static int intake_append(struct pl_store *s, int64_t meter_id,
			 const struct pl_interval_record *recs, size_t n, const void *state,
			 size_t state_len, int64_t t)
{
	unsigned char raw[INTAKE_BLOCK];
	struct ack a[ACKS_MAX];
	size_t na, k = 0, room;
	int writer, rc;

	na = acks_of(s, a, ACKS_MAX, &writer);
	room = (size_t)n * INTAKE_REC + na * INTAKE_CUR + state_len;
	if (room > INTAKE_ROOM)
		return 1;
	if (s->wslot >= INTAKE_SLOTS) {
		rc = intake_merge(s);
		if (rc < 0)
			return rc;
	}
	memset(raw, 0, sizeof(raw));
	put32(raw, INTAKE_MAGIC);
	put32(raw + 4, INTAKE_VERSION);
	put64(raw + 8, s->wgen);
	put32(raw + 16, s->wslot);
	put32(raw + 24, (uint32_t)na);
	put32(raw + 28, (uint32_t)state_len);
	put64(raw + 32, (uint64_t)meter_id);
	put64(raw + 40, (uint64_t)s->next_seq);
	put64(raw + 48, s->iid);
	for (size_t i = 0; i < n; i++) {
		const struct pl_interval_record *r = &recs[i];
		unsigned char *p = raw + INTAKE_HEAD + k * INTAKE_REC;
		sqlite3_stmt *st = stmt(s, ST_DUP);
		int dup;
		int64_t one;

		/* committing an interval twice is harmless (store.h): the first copy stays */
		sqlite3_bind_int64(st, 1, meter_id);
		sqlite3_bind_int64(st, 2, r->start_us);
		rc = query_ints(s, st, &one, 1, 0, &dup, "cannot commit the interval");
		if (rc < 0)
			return rc;
		if (dup)
			continue;
		put64(p, (uint64_t)r->start_us);
		put64(p + 8, r->length_s);
		put32(p + 16, r->pulses);
		put32(p + 20, r->rejected);
		put64(p + 24, r->flags);
		put64(p + 32, (uint64_t)r->energy_uwh);
		put64(p + 40, (uint64_t)r->avg_mw);
		put64(p + 48, (uint64_t)r->peak_mw);
		put64(p + 56, (uint64_t)r->register_uwh);
		put64(p + 64, (uint64_t)t);
		k++;
	}
	put32(raw + 20, (uint32_t)k);
	for (size_t i = 0; i < na; i++) {
		unsigned char *p = raw + INTAKE_HEAD + k * INTAKE_REC + i * INTAKE_CUR;

		put64(p, (uint64_t)a[i].sink_id);
		put64(p + 8, (uint64_t)a[i].cursor);
		put64(p + 16, (uint64_t)a[i].ok_us);
	}
	memcpy(raw + INTAKE_HEAD + k * INTAKE_REC + na * INTAKE_CUR, state, state_len);
	put32(raw + INTAKE_BLOCK - 4, crc32_of(raw, INTAKE_BLOCK - 4));
	if (pwrite_all(s->wfd, raw, sizeof(raw), (off_t)s->wslot * INTAKE_BLOCK) != 0 ||
	    fdatasync(s->wfd) != 0)
		return fail_write(s, "cannot write", "the intake", errno);
	s->wslot++;
	s->next_seq += (int64_t)k;
	if (pl_clock_mono_us() - s->merged_at_us >= s->merge_us && intake_merge(s) < 0)
		s->merged_at_us = pl_clock_mono_us(); /* the records are safe: try again later */
	return 0;
}

/* pl_bit_or(x): the OR of the integers of a group (SQLite has no such aggregate). */
static void bit_or_step(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	int64_t *acc = sqlite3_aggregate_context(ctx, sizeof(*acc));

	(void)argc;
	if (acc != NULL && sqlite3_value_type(argv[0]) != SQLITE_NULL)
		*acc |= sqlite3_value_int64(argv[0]);
}

static void bit_or_final(sqlite3_context *ctx)
{
	int64_t *acc = sqlite3_aggregate_context(ctx, 0);

	sqlite3_result_int64(ctx, acc != NULL ? *acc : 0);
}

/* Recognises the file as ours (or as new), then configures the connection. */
static int setup(struct pl_store *s, int exists, unsigned flags)
{
	int64_t v[3];
	int fresh, rc;

	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	rc = sqlite3_create_function(s->db, "pl_bit_or", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
				     NULL, NULL, bit_or_step, bit_or_final);
	if (rc != SQLITE_OK)
		return fail_db(s, rc, "cannot prepare");
	rc = query_sql(s, "SELECT (SELECT application_id FROM pragma_application_id), "
			  "(SELECT user_version FROM pragma_user_version), "
			  "(SELECT COUNT(*) FROM sqlite_master)", v, 3, 0, NULL, "cannot read");
	if (rc == -PL_ECORRUPT)
		return refuse_foreign(s);
	if (rc < 0 && s->readonly && (sqlite3_extended_errcode(s->db) & 0xff) == SQLITE_READONLY)
		/* WAL mode: a reader needs the -shm, which the last connection removed */
		return fail(s, -PL_EIO, "cannot read: the logger is not running and SQLite cannot "
			    "create %s-shm (no write access to the directory): read it as the "
			    "logger's user, or give the group write access to the directory",
			    s->path);
	if (rc < 0)
		return rc;
	fresh = v[2] == 0 && v[1] == 0 && (v[0] == 0 || v[0] == PL_STORE_APPLICATION_ID);
	if (!fresh && v[0] != PL_STORE_APPLICATION_ID)
		return refuse_foreign(s);
	if (fresh && s->readonly)
		return fail(s, -PL_ENOENT, "empty store (not created yet, or being created)");
	if (v[1] > PL_STORE_SCHEMA_VERSION)
		return fail(s, -PL_EINVAL, "store schema version %" PRId64 " is newer than this "
			    "program's (%d): use a newer PowerLogger", v[1], PL_STORE_SCHEMA_VERSION);
	if (!fresh && v[1] < 1)
		return refuse_foreign(s);
	if (s->readonly && v[1] < PL_STORE_SCHEMA_VERSION)
		return fail(s, -PL_EINVAL, "store schema version %" PRId64 " is older than this "
			    "program's (%d): `powerlogger run` upgrades it", v[1],
			    PL_STORE_SCHEMA_VERSION);
	if (exists && !fresh) {
		/* an older schema is upgraded below: that is a write, so check first */
		if (!(flags & (PL_STORE_NOCHECK | PL_STORE_DEFER_CHECK)) ||
		    v[1] < PL_STORE_SCHEMA_VERSION) {
			rc = quick_check(s);
			if (rc < 0)
				return rc;
		} else if (flags & PL_STORE_DEFER_CHECK) {
			s->unchecked = 1;
		}
	}
	if (s->readonly)
		return prepare_all(s);
	if (sqlite3_db_readonly(s->db, "main") == 1)
		return fail(s, -PL_EIO,
			    "cannot write: read-only (the file or its directory is not writable)");
	if (fresh) {
		rc = exec(s, "PRAGMA page_size = " PAGE_SIZE_STR "; PRAGMA auto_vacuum = INCREMENTAL",
			  "cannot create the store");
		if (rc < 0)
			return rc;
	}
	{
		sqlite3_stmt *st;
		int ok;

		rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
		if (rc != SQLITE_OK)
			return fail_db(s, rc, "cannot switch to WAL");
		rc = sqlite3_step(st);
		ok = rc == SQLITE_ROW &&
		     strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
		if (rc == SQLITE_ROW)
			rc = SQLITE_OK;
		sqlite3_finalize(st);
		if (rc != SQLITE_OK)
			return fail_db(s, rc, "cannot switch to WAL");
		if (!ok)
			return fail(s, -PL_EIO, "cannot switch to WAL (is the directory writable?)");
	}
	rc = exec(s, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON",
		  "cannot configure");
	if (rc < 0)
		return rc;
	rc = fresh ? create_schema(s) : migrate(s, v[1]);
	if (rc < 0)
		return rc;
	return prepare_all(s);
}

int pl_store_open(const char *path, unsigned flags, struct pl_store **out, char *err,
		  size_t errlen)
{
	struct pl_store *s;
	int exists, rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (out == NULL)
		return -PL_EINVAL;
	*out = NULL;
	if (path == NULL || path[0] == '\0' ||
	    (flags & ~(unsigned)(PL_STORE_CREATE | PL_STORE_NOCHECK | PL_STORE_DEFER_CHECK |
				 PL_STORE_READONLY)) ||
	    ((flags & PL_STORE_READONLY) && (flags & PL_STORE_CREATE))) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "store: invalid arguments");
		return -PL_EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL || (s->path = strdup(path)) == NULL) {
		free(s);
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s: out of memory", path);
		return -PL_ENOMEM;
	}
	s->readonly = (flags & PL_STORE_READONLY) != 0;
	s->wfd = s->rfd = -1;
	rc = check_file(s, flags, &exists);
	if (rc == 0 && !exists && (flags & PL_STORE_CREATE))
		rc = create_private(s);
	if (rc == 0)
		rc = file_identity(s->path, &s->dev, &s->ino) == 0 ?
			     0 : fail(s, -PL_EIO, "cannot open: %s", strerror(errno));
	if (rc == 0) {
		int o = (s->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
			SQLITE_OPEN_NOMUTEX;

		rc = sqlite3_open_v2(path, &s->db, o, NULL);
		rc = rc == SQLITE_OK ? 0 : fail_db(s, rc, "cannot open");
	}
	if (rc == 0)
		rc = setup(s, exists, flags);
	if (rc == 0 && pl_store_moved(s) != PL_STORE_IN_PLACE)
		rc = fail(s, -PL_EIO, "the file was replaced while it was being opened");
	if (rc < 0) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s", s->msg);
		pl_store_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

void pl_store_close(struct pl_store *s)
{
	if (s == NULL)
		return;
	if (s->wfd >= 0) {
		/* everything into the database: a stopped logger's store is one file again */
		intake_merge(s);
		acks_drop(s);
		close(s->wfd);
	}
	if (s->rfd >= 0)
		close(s->rfd);
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	free(s->sinks);
	sqlite3_close(s->db);
	free(s->path);
	free(s);
}

int pl_store_moved(struct pl_store *s)
{
	dev_t dev;
	ino_t ino;

	if (s == NULL)
		return PL_STORE_IN_PLACE;
	if (file_identity(s->path, &dev, &ino) != 0)
		return errno == ENOENT || errno == ENOTDIR ? PL_STORE_DELETED : PL_STORE_IN_PLACE;
	return dev == s->dev && ino == s->ino ? PL_STORE_IN_PLACE : PL_STORE_REPLACED;
}

/* 1 when this process has the file at path open (by its identity: a stat of /proc/self/fd/N
 * follows the link without opening the file, so it cannot drop a lock). */
static int have_open(const char *path)
{
	struct stat want, got;
	char link[300];
	struct dirent *e;
	DIR *d;
	int found = 0;

	if (stat(path, &want) != 0)
		return 0;
	d = opendir("/proc/self/fd");
	if (d == NULL)
		return 0;
	while (!found && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		found = stat(link, &got) == 0 && got.st_dev == want.st_dev &&
			got.st_ino == want.st_ino;
	}
	closedir(d);
	return found;
}

/*
 * The blocks of the intake that count for the database as this connection now sees it (a read
 * transaction must be open: its snapshot is the one the copy takes): *n of them into buf (room
 * for INTAKE_SLOTS). 1 when a merge and a new append came between the snapshot and the read
 * (blocks may be missing: try again), 0, or <0.
 */
static int intake_snapshot(struct pl_store *s, unsigned char *buf, uint32_t *n)
{
	struct intake_block b;
	char name[4200];
	uint64_t gen;
	int fd, rc;

	*n = 0;
	rc = folded_gen(s, &gen);
	if (rc < 0)
		return rc;
	fd = open(intake_path(s, name, sizeof(name)), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : fail(s, -PL_EIO, "cannot read %s: %s", name,
						  strerror(errno));
	while (*n < INTAKE_SLOTS) {
		unsigned char *raw = buf + (size_t)*n * INTAKE_BLOCK;

		rc = intake_read(fd, *n, raw);
		if (rc < 0) {
			rc = fail(s, -PL_EIO, "cannot read %s: %s", name, strerror(errno));
			break;
		}
		if (rc == 0 || intake_parse(raw, gen + 1, s->iid, *n, &b) != 0)
			break;
		++*n;
	}
	/* The first block of the generation after: merged since the snapshot, and written over */
	if (rc >= 0) {
		unsigned char raw[INTAKE_BLOCK];

		rc = intake_read(fd, 0, raw);
		rc = rc < 0 ? fail(s, -PL_EIO, "cannot read %s: %s", name, strerror(errno)) :
		     rc == 1 && intake_parse(raw, gen + 2, s->iid, 0, &b) == 0 ? 1 : 0;
	}
	close(fd);
	return rc;
}

/* SQLite's backup of main into the new file dest (inside this connection's transaction, if one
 * is open: its snapshot). */
static int backup_to(struct pl_store *s, const char *dest)
{
	sqlite3 *d = NULL;
	sqlite3_backup *b;
	int fd, rc;

	/* A new file, never someone's: O_EXCL. Nothing has it open yet, so closing is safe. */
	fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return fail(s, errno == ENOSPC ? -PL_ENOSPC : -PL_EIO, "cannot save a copy as %s: %s",
			    dest, strerror(errno));
	close(fd);
	rc = sqlite3_open_v2(dest, &d, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK) {
		b = sqlite3_backup_init(d, "main", s->db, "main");
		if (b == NULL) {
			rc = sqlite3_errcode(d);
		} else {
			while ((rc = sqlite3_backup_step(b, -1)) == SQLITE_OK ||
			       rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
				sqlite3_sleep(10);
			rc = sqlite3_backup_finish(b);
		}
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_close(d);
	if (rc != SQLITE_OK) {
		snprintf(s->msg, sizeof(s->msg), "%s: cannot save a copy as %s: %s", s->path, dest,
			 d != NULL ? sqlite3_errmsg(d) : sqlite3_errstr(rc));
		sqlite3_close(d);
		unlink(dest);
		return map_sqlite(rc) != 0 ? map_sqlite(rc) : -PL_EIO;
	}
	return 0;
}

/* Merges n blocks (of the generation after dest's) into the copy dest: as the writer's replay
 * after a crash, through dest's own intake, which goes afterwards. */
static int merge_into_copy(struct pl_store *s, const char *dest, const unsigned char *blocks,
			   uint32_t n)
{
	struct pl_store *d = NULL;
	char name[4200], err[512];
	int fd, rc;

	snprintf(name, sizeof(name), "%s.intake", dest);
	fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return fail(s, -PL_EIO, "cannot save a copy as %s: %s: %s", dest, name,
			    strerror(errno));
	rc = pwrite_all(fd, blocks, (size_t)n * INTAKE_BLOCK, 0);
	close(fd);
	if (rc != 0) {
		rc = fail_write(s, "cannot save a copy in", name, errno);
	} else if ((rc = pl_store_open(dest, PL_STORE_NOCHECK, &d, err, sizeof(err))) != 0 ||
		   (rc = pl_store_intake(d, 1)) != 0) {
		rc = fail(s, rc < 0 ? rc : -PL_EIO, "cannot save a copy as %s: %s", dest,
			  d != NULL ? pl_store_error(d) : err);
	} else {
		pl_store_close(d); /* merges; nothing is left in the intake */
		d = NULL;
	}
	pl_store_close(d);
	unlink(name);
	return rc;
}

int pl_store_save_copy(struct pl_store *s, const char *dest)
{
	unsigned char *blocks;
	uint32_t n = 0;
	int rc;

	if (s == NULL || dest == NULL)
		return -PL_EINVAL;
	if (s->wfd >= 0) {
		/* the writer: everything into the database, which is then all there is */
		rc = intake_merge(s);
		return rc < 0 ? rc : backup_to(s, dest);
	}
	/* Another process may be writing: the database as of one snapshot, and the blocks of
	 * the intake that go with it, merged into the copy. */
	blocks = malloc((size_t)INTAKE_SLOTS * INTAKE_BLOCK);
	if (blocks == NULL)
		return fail(s, -PL_ENOMEM, "cannot save a copy: out of memory");
	for (int tries = 0;; tries++) {
		rc = exec(s, "BEGIN", "cannot save a copy");
		if (rc == 0)
			rc = intake_snapshot(s, blocks, &n);
		if (rc == 0)
			rc = backup_to(s, dest);
		sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
		if (rc != 1 || tries == 5)
			break;
	}
	if (rc == 1)
		rc = fail(s, -PL_EIO, "cannot save a copy: the intake changes faster than it can be "
			  "read");
	if (rc == 0 && n > 0 && (rc = merge_into_copy(s, dest, blocks, n)) != 0)
		unlink(dest);
	free(blocks);
	return rc;
}

void pl_store_close_moved(struct pl_store *s)
{
	static const char *const suffix[2] = { "-wal", "-shm" };
	char name[2][4096];
	dev_t dev[2];
	ino_t ino[2];
	int ours[2];

	if (s == NULL)
		return;
	/* SQLite sees that the file moved and leaves the -wal and -shm at the path when it
	 * closes. Those that this process has open are this store's: beside a file that now
	 * takes the path they would be read as its log, so they go once the store is closed.
	 * Those of another file (not open here) stay. */
	for (int i = 0; i < 2; i++) {
		snprintf(name[i], sizeof(name[i]), "%s%s", s->path, suffix[i]);
		ours[i] = have_open(name[i]) && file_identity(name[i], &dev[i], &ino[i]) == 0;
	}
	pl_store_close(s);
	for (int i = 0; i < 2; i++) {
		dev_t d;
		ino_t n;

		if (ours[i] && file_identity(name[i], &d, &n) == 0 && d == dev[i] && n == ino[i])
			unlink(name[i]);
	}
}

int pl_store_lock(const char *path, int *fd_out, char *err, size_t errlen)
{
	char name[4096], pid[32];
	int fd, n;

	*fd_out = -1;
	snprintf(name, sizeof(name), "%s.lock", path);
	/* flock() on a file of its own, never a lock on the database: a descriptor of the
	 * database closed by this process would drop SQLite's POSIX locks, and flock() and
	 * POSIX locks do not interfere on Linux. The lock goes with the process. */
	fd = open(name, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot create the lock file: %s", name, strerror(errno));
		return -PL_EIO;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;

		/* The holder writes its PID just after it took the lock: a logger started at the
		 * same instant may look in between, so it waits a little for a whole line. */
		for (int tries = 0; tries < 50; tries++) {
			struct timespec ms10 = { 0, 10 * 1000 * 1000 };

			n = (int)pread(fd, pid, sizeof(pid) - 1, 0);
			pid[n > 0 ? n : 0] = '\0';
			if (strchr(pid, '\n') != NULL)
				break;
			nanosleep(&ms10, NULL);
		}
		pid[strcspn(pid, "\n")] = '\0';
		close(fd);
		if (e != EWOULDBLOCK) {
			snprintf(err, errlen, "%s: cannot lock: %s", name, strerror(e));
			return -PL_EIO;
		}
		snprintf(err, errlen, "%s is in use by another `powerlogger run`%s%s%s: not starting "
			 "a second logger on the same store", path, pid[0] ? " (PID " : "", pid,
			 pid[0] ? ")" : "");
		return -PL_EBUSY;
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
		/* only the message would lack the PID: the lock itself holds */
	}
	*fd_out = fd;
	return 0;
}

const char *pl_store_error(const struct pl_store *s)
{
	return s != NULL ? s->msg : "store: NULL";
}

void *pl_store_sqlite(struct pl_store *s)
{
	return s->db;
}

int pl_store_sync_(struct pl_store *s)
{
	return intake_sync(s);
}

int pl_store_fail_db_(struct pl_store *s, int rc, const char *what)
{
	return fail_db(s, rc, what);
}

/* Gets or creates a row in a name-keyed table (meters, sinks). */
static int get_or_create(struct pl_store *s, const char *select_sql, const char *insert_sql,
			 const char *name, int64_t *id, const char *what)
{
	sqlite3_stmt *st;
	int found = 0, rc;

	rc = sqlite3_prepare_v2(s->db, select_sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return fail_db(s, rc, what);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = query_ints(s, st, id, 1, 0, &found, what);
	sqlite3_finalize(st);
	if (rc < 0 || found)
		return rc;
	rc = ensure_checked(s);
	if (rc < 0)
		return rc;
	rc = sqlite3_prepare_v2(s->db, insert_sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return fail_db(s, rc, what);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return fail_db(s, rc, what);
	*id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

int pl_store_meter(struct pl_store *s, const char *name, uint32_t imp_per_kwh,
		   uint32_t interval_s, int64_t *id)
{
	sqlite3_stmt *st;
	int rc;

	if (s == NULL || name == NULL || name[0] == '\0' || id == NULL)
		return -PL_EINVAL;
	rc = get_or_create(s, "SELECT id FROM meters WHERE name = ?",
			   "INSERT INTO meters(name, imp_per_kwh, interval_s) VALUES(?, 0, 0)",
			   name, id, "cannot register the meter");
	if (rc == 0)
		rc = ensure_checked(s);
	if (rc < 0)
		return rc;
	rc = sqlite3_prepare_v2(s->db, "UPDATE meters SET imp_per_kwh = ?, interval_s = ? "
				"WHERE id = ? AND (imp_per_kwh, interval_s) IS NOT (?1, ?2)",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return fail_db(s, rc, "cannot register the meter");
	sqlite3_bind_int64(st, 1, imp_per_kwh);
	sqlite3_bind_int64(st, 2, interval_s);
	sqlite3_bind_int64(st, 3, *id);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : fail_db(s, rc, "cannot register the meter");
}

int pl_store_id(struct pl_store *s, char *buf, size_t cap)
{
	int64_t id = 0;
	int found = 0, rc;

	if (s == NULL || buf == NULL || cap < 17)
		return -PL_EINVAL;
	rc = query_sql(s, "SELECT id FROM main.intake", &id, 1, 0, &found,
		       "cannot read the store's id");
	if (rc != 0)
		return rc;
	if (!found)
		return fail(s, -PL_ECORRUPT, "the store has no id (its intake table is empty)");
	snprintf(buf, cap, "%016" PRIx64, (uint64_t)id);
	return 0;
}

int pl_store_meter_name(struct pl_store *s, int64_t id, char *buf, size_t cap)
{
	sqlite3_stmt *st;
	int rc;

	if (s == NULL || buf == NULL || cap == 0)
		return -PL_EINVAL;
	rc = sqlite3_prepare_v2(s->db, "SELECT name FROM meters WHERE id = ?", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return fail_db(s, rc, "cannot read the meter");
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		size_t len = strlen(name);

		if (len >= cap) {
			rc = fail(s, -PL_ENOSPC, "meter name longer than %zu bytes", cap - 1);
		} else {
			memcpy(buf, name, len + 1);
			rc = 0;
		}
	} else if (rc == SQLITE_DONE) {
		rc = fail(s, -PL_ENOENT, "no meter %" PRId64, id);
	} else {
		rc = fail_db(s, rc, "cannot read the meter");
	}
	sqlite3_finalize(st);
	return rc;
}

int pl_store_sink(struct pl_store *s, const char *name, int64_t *id)
{
	int64_t *grown;
	int rc;

	if (s == NULL || name == NULL || name[0] == '\0' || id == NULL)
		return -PL_EINVAL;
	rc = get_or_create(s, "SELECT id FROM sinks WHERE name = ?",
			   "INSERT INTO main.sinks(name) VALUES(?)", name, id,
			   "cannot register the sink");
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < s->nsinks; i++)
		if (s->sinks[i] == *id)
			return 0;
	grown = realloc(s->sinks, (s->nsinks + 1) * sizeof(*grown));
	if (grown == NULL)
		return fail(s, -PL_ENOMEM, "cannot register the sink: out of memory");
	s->sinks = grown;
	s->sinks[s->nsinks++] = *id;
	return 0;
}

/*
 * The highest seq delivered to every sink that retention waits for (*found 0 when none):
 * those registered through this handle, or every sink in the store when none was.
 */
static int delivered_upto(struct pl_store *s, int64_t *upto, int *found)
{
	sqlite3_stmt *st;
	int rc;

	*found = 0;
	if (s->nsinks == 0)
		return query_sql(s, "SELECT MIN(cursor) FROM sinks", upto, 1, 0, found,
				 "cannot prune");
	rc = sqlite3_prepare_v2(s->db, "SELECT cursor FROM sinks WHERE id = ?", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return fail_db(s, rc, "cannot prune");
	for (size_t i = 0; i < s->nsinks; i++) {
		int64_t cursor;
		int one;

		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, s->sinks[i]);
		rc = query_ints(s, st, &cursor, 1, 0, &one, "cannot prune");
		if (rc < 0)
			break;
		if (one && (!*found || cursor < *upto))
			*upto = cursor;
		*found |= one;
	}
	sqlite3_finalize(st);
	return rc < 0 ? rc : 0;
}

static int meter_exists(struct pl_store *s, int64_t meter_id)
{
	sqlite3_stmt *st = stmt(s, ST_METER_EXISTS);
	int64_t one;
	int found, rc;

	sqlite3_bind_int64(st, 1, meter_id);
	rc = query_ints(s, st, &one, 1, 0, &found, "cannot read the meter");
	if (rc < 0)
		return rc;
	return found ? 0 : fail(s, -PL_ENOENT, "no meter %" PRId64, meter_id);
}

int pl_store_commit_interval(struct pl_store *s, int64_t meter_id,
			     const struct pl_interval_record *recs, size_t n, const void *state,
			     size_t state_len)
{
	const char *what = "cannot commit the interval";
	int64_t t = pl_clock_wall_us();
	sqlite3_stmt *st;
	int rc;

	if (s == NULL || (recs == NULL && n > 0) || state == NULL || state_len == 0 ||
	    state_len > PL_STORE_MAX_STATE)
		return s != NULL ? fail(s, -PL_EINVAL, "commit: invalid arguments") : -PL_EINVAL;
	if (s->over_limit)
		return fail(s, -PL_ENOSPC, "store over its size bound (%" PRIu64 " bytes used, "
			    "limit %" PRIu64 ") with only undelivered records left: refusing new "
			    "records until the sinks catch up", s->over_bytes, s->over_max);
	rc = ensure_checked(s);
	if (rc == 0 && s->wfd >= 0) {
		rc = meter_exists(s, meter_id);
		if (rc == 0)
			rc = intake_sync(s);
		if (rc == 0)
			rc = intake_append(s, meter_id, recs, n, state, state_len, t);
		if (rc <= 0)
			return rc;
		/* too large for a block (a backlog of records after an outage): straight into
		 * the database, after what the intake holds */
		rc = intake_merge(s);
		if (rc == 0)
			rc = exec(s, "BEGIN IMMEDIATE", what);
		if (rc < 0)
			return rc;
		rc = meter_exists(s, meter_id);
	} else {
		if (rc == 0)
			rc = exec(s, "BEGIN IMMEDIATE", what);
		if (rc < 0)
			return rc;
		rc = meter_exists(s, meter_id);
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const struct pl_interval_record *r = &recs[i];

		st = stmt(s, ST_INS_REC);
		sqlite3_bind_int64(st, 1, meter_id);
		sqlite3_bind_int64(st, 2, r->start_us);
		sqlite3_bind_int64(st, 3, r->length_s);
		sqlite3_bind_int64(st, 4, r->pulses);
		sqlite3_bind_int64(st, 5, r->rejected);
		sqlite3_bind_int64(st, 6, r->flags);
		sqlite3_bind_int64(st, 7, r->energy_uwh);
		sqlite3_bind_int64(st, 8, r->avg_mw);
		sqlite3_bind_int64(st, 9, r->peak_mw);
		sqlite3_bind_int64(st, 10, r->register_uwh);
		sqlite3_bind_int64(st, 11, t);
		rc = sqlite3_step(st);
		rc = rc == SQLITE_DONE ? 0 : fail_db(s, rc, what);
		sqlite3_reset(st);
	}
	for (int put = ST_PUT_CP; rc == 0 && put <= ST_ADD_CP; put++) {
		st = stmt(s, (enum stmt_id)put);
		sqlite3_bind_int64(st, 1, meter_id);
		sqlite3_bind_blob(st, 2, state, (int)state_len, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, crc32_of(state, state_len));
		sqlite3_bind_int64(st, 4, t);
		rc = sqlite3_step(st);
		rc = rc == SQLITE_DONE ? 0 : fail_db(s, rc, what);
		sqlite3_reset(st);
		sqlite3_clear_bindings(st); /* it pointed at the caller's state */
		if (rc == 0 && sqlite3_changes(s->db) > 0)
			break; /* the UPDATE found the meter's row */
	}
	if (rc == 0)
		rc = exec(s, "COMMIT", what);
	if (rc < 0)
		rollback(s);
	else if (s->wfd >= 0)
		rc = max_seq(s, &s->next_seq) == 0 ? (s->next_seq++, 0) : -PL_EIO;
	return rc;
}

int pl_store_intake(struct pl_store *s, unsigned merge_s)
{
	int rc;

	if (s == NULL || s->readonly || s->wfd >= 0 || merge_s == 0)
		return s != NULL ? fail(s, -PL_EINVAL, "intake: invalid arguments") : -PL_EINVAL;
	rc = ensure_checked(s);
	if (rc == 0)
		rc = intake_open_writer(s, merge_s);
	if (rc < 0 && s->wfd >= 0) {
		close(s->wfd);
		s->wfd = -1;
	}
	return rc;
}

int pl_store_merge(struct pl_store *s)
{
	if (s == NULL)
		return -PL_EINVAL;
	return s->wfd >= 0 ? intake_merge(s) : 0;
}

int pl_store_load_checkpoint(struct pl_store *s, int64_t meter_id, void *buf, size_t cap,
			     size_t *len)
{
	sqlite3_stmt *st;
	const void *blob;
	size_t blen;
	int rc;

	if (s == NULL || len == NULL || (buf == NULL && cap > 0))
		return -PL_EINVAL;
	*len = 0;
	rc = intake_sync(s);
	if (rc < 0)
		return rc;
	st = stmt(s, ST_GET_CP);
	sqlite3_bind_int64(st, 1, meter_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		rc = fail(s, -PL_ENOENT, "no checkpoint for meter %" PRId64, meter_id);
		goto out;
	}
	if (rc != SQLITE_ROW) {
		rc = fail_db(s, rc, "cannot read the checkpoint");
		goto out;
	}
	blob = sqlite3_column_blob(st, 0);
	blen = (size_t)sqlite3_column_bytes(st, 0);
	*len = blen;
	if (blob == NULL || (uint32_t)sqlite3_column_int64(st, 1) != crc32_of(blob, blen)) {
		*len = 0;
		rc = fail(s, -PL_ECORRUPT, "checkpoint of meter %" PRId64 " fails its CRC",
			  meter_id);
	} else if (blen > cap) {
		rc = fail(s, -PL_ENOSPC, "checkpoint of %zu bytes, buffer of %zu", blen, cap);
	} else {
		memcpy(buf, blob, blen);
		rc = 0;
	}
out:
	sqlite3_reset(st);
	return rc;
}

static int sink_cursor(struct pl_store *s, int64_t sink_id, int64_t *cursor)
{
	sqlite3_stmt *st = stmt(s, ST_SINK_CURSOR);
	int found, rc;

	*cursor = 0;
	sqlite3_bind_int64(st, 1, sink_id);
	rc = query_ints(s, st, cursor, 1, 0, &found, "cannot read the sink");
	if (rc < 0)
		return rc;
	return found ? 0 : fail(s, -PL_ENOENT, "no sink %" PRId64, sink_id);
}

int pl_store_next_batch(struct pl_store *s, int64_t sink_id, size_t max,
			struct pl_store_record *out, size_t *n)
{
	return pl_store_next_batch_after(s, sink_id, 0, max, out, n);
}

int pl_store_next_batch_after(struct pl_store *s, int64_t sink_id, int64_t after_seq,
			      size_t max, struct pl_store_record *out, size_t *n)
{
	sqlite3_stmt *st;
	int64_t cursor;
	int rc;

	if (n != NULL)
		*n = 0;
	if (s == NULL || n == NULL || (out == NULL && max > 0))
		return -PL_EINVAL;
	rc = intake_sync(s);
	if (rc == 0)
		rc = sink_cursor(s, sink_id, &cursor);
	if (rc < 0 || max == 0)
		return rc;
	if (after_seq > cursor)
		cursor = after_seq;
	st = stmt(s, ST_BATCH);
	sqlite3_bind_int64(st, 1, cursor);
	sqlite3_bind_int64(st, 2, (int64_t)(max < (size_t)INT64_MAX ? max : (size_t)INT64_MAX));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct pl_store_record *r = &out[*n];

		r->seq = sqlite3_column_int64(st, 0);
		r->meter_id = sqlite3_column_int64(st, 1);
		r->rec.start_us = sqlite3_column_int64(st, 2);
		r->rec.length_s = (uint32_t)sqlite3_column_int64(st, 3);
		r->rec.pulses = (uint32_t)sqlite3_column_int64(st, 4);
		r->rec.rejected = (uint32_t)sqlite3_column_int64(st, 5);
		r->rec.flags = (uint32_t)sqlite3_column_int64(st, 6);
		r->rec.energy_uwh = sqlite3_column_int64(st, 7);
		r->rec.avg_mw = sqlite3_column_int64(st, 8);
		r->rec.peak_mw = sqlite3_column_int64(st, 9);
		r->rec.register_uwh = sqlite3_column_int64(st, 10);
		(*n)++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		*n = 0;
		return fail_db(s, rc, "cannot read records");
	}
	return 0;
}

static int max_seq(struct pl_store *s, int64_t *seq)
{
	*seq = 0;
	return query_ints(s, stmt(s, ST_MAXSEQ), seq, 1, 0, NULL, "cannot read records");
}

static int advance(struct pl_store *s, int64_t sink_id, int64_t upto_seq, int delivered)
{
	sqlite3_stmt *st = stmt(s, ST_ACK);
	int rc = ensure_checked(s);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, sink_id);
	sqlite3_bind_int64(st, 2, upto_seq);
	if (delivered)
		sqlite3_bind_int64(st, 3, pl_clock_wall_us());
	else
		sqlite3_bind_null(st, 3);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : fail_db(s, rc, "cannot move the cursor");
}

int pl_store_ack(struct pl_store *s, int64_t sink_id, int64_t upto_seq)
{
	int64_t cursor, top;
	int rc;

	if (s == NULL)
		return -PL_EINVAL;
	rc = intake_sync(s);
	if (rc == 0)
		rc = sink_cursor(s, sink_id, &cursor);
	if (rc == 0)
		rc = max_seq(s, &top);
	if (rc < 0)
		return rc;
	if (upto_seq > top)
		return fail(s, -PL_EINVAL, "ack of seq %" PRId64 ", never assigned (highest %"
			    PRId64 ")", upto_seq, top);
	if (upto_seq <= cursor)
		return 0;
	{
		/* A writer with an intake in this process: the acknowledgement waits in memory
		 * for its next append or merge (see "The intake"). */
		struct ack none[1];
		int writer;

		acks_of(s, none, 0, &writer);
		if (writer) {
			if (acks_put(s, sink_id, upto_seq, pl_clock_wall_us()) == 0)
				return 0;
		}
	}
	/* Not synced (store.h): synchronous NORMAL for this one transaction, under which a
	 * commit only appends to the WAL while a checkpoint still syncs the WAL before it and the
	 * database after it. The next record commit's fdatasync takes the frames to the disk;
	 * before that a power cut rolls the cursor back to an earlier acknowledgement. */
	rc = exec(s, "PRAGMA synchronous = NORMAL", "cannot move the cursor");
	if (rc == 0)
		rc = advance(s, sink_id, upto_seq, 1);
	/* back to FULL whatever happened: every other commit of this connection is durable */
	if (exec(s, "PRAGMA synchronous = FULL", "cannot move the cursor") < 0 && rc == 0)
		rc = -PL_EIO;
	return rc;
}

int pl_store_quarantine(struct pl_store *s, int64_t sink_id, int64_t seq, const char *message)
{
	const char *what = "cannot quarantine";
	char msg[PL_STORE_MAX_MESSAGE + 1];
	int64_t cursor, key[2] = { 0, 0 };
	sqlite3_stmt *st;
	int found, rc;

	if (s == NULL)
		return -PL_EINVAL;
	snprintf(msg, sizeof(msg), "%s", message != NULL ? message : "");
	if (message != NULL && strlen(message) > PL_STORE_MAX_MESSAGE) {
		/* Cut at a character boundary, so that the text stays valid UTF-8. */
		size_t len = PL_STORE_MAX_MESSAGE;

		while (len > 0 && ((unsigned char)message[len] & 0xC0) == 0x80)
			len--;
		msg[len] = '\0';
	}
	if ((rc = intake_sync(s)) < 0)
		return rc;
	rc = ensure_checked(s);
	if (rc == 0)
		rc = exec(s, "BEGIN IMMEDIATE", what);
	if (rc < 0)
		return rc;
	rc = sink_cursor(s, sink_id, &cursor);
	if (rc == 0) {
		st = stmt(s, ST_REC_BY_SEQ);
		sqlite3_bind_int64(st, 1, seq);
		rc = query_ints(s, st, key, 2, 0, &found, what);
		if (rc == 0 && !found)
			rc = fail(s, -PL_ENOENT, "no record with seq %" PRId64, seq);
	}
	if (rc == 0) {
		st = stmt(s, ST_QUAR_INS);
		sqlite3_bind_int64(st, 1, sink_id);
		sqlite3_bind_int64(st, 2, seq);
		sqlite3_bind_int64(st, 3, key[0]);
		sqlite3_bind_int64(st, 4, key[1]);
		sqlite3_bind_text(st, 5, msg, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, pl_clock_wall_us());
		rc = sqlite3_step(st);
		rc = rc == SQLITE_DONE ? 0 : fail_db(s, rc, what);
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
	if (rc == 0)
		rc = advance(s, sink_id, seq, 0);
	if (rc == 0)
		rc = exec(s, "COMMIT", what);
	if (rc < 0)
		rollback(s);
	return rc;
}

int pl_store_backlog(struct pl_store *s, int64_t sink_id, uint64_t *count,
		     int64_t *oldest_start_us)
{
	int64_t cursor, v[2] = { 0, 0 };
	sqlite3_stmt *st;
	int rc;

	if (s == NULL || count == NULL || oldest_start_us == NULL)
		return -PL_EINVAL;
	if ((rc = intake_sync(s)) < 0)
		return rc;
	rc = sink_cursor(s, sink_id, &cursor);
	if (rc < 0)
		return rc;
	st = stmt(s, ST_BACKLOG);
	sqlite3_bind_int64(st, 1, cursor);
	rc = query_ints(s, st, v, 2, INT64_MIN, NULL, "cannot count records");
	if (rc < 0)
		return rc;
	*count = (uint64_t)v[0];
	*oldest_start_us = v[0] > 0 ? v[1] : INT64_MIN;
	return 0;
}

int pl_store_pending(struct pl_store *s, int64_t sink_id, int *any)
{
	int64_t cursor, seq;
	int found = 0, rc;
	sqlite3_stmt *st;

	if (s == NULL || any == NULL)
		return -PL_EINVAL;
	*any = 0;
	if ((rc = intake_sync(s)) < 0)
		return rc;
	rc = sink_cursor(s, sink_id, &cursor);
	if (rc < 0)
		return rc;
	st = stmt(s, ST_PENDING);
	sqlite3_bind_int64(st, 1, cursor);
	rc = query_ints(s, st, &seq, 1, 0, &found, "cannot read records");
	if (rc < 0)
		return rc;
	*any = found;
	return 0;
}

int pl_store_sink_report(struct pl_store *s, int64_t sink_id, int failing, const char *error)
{
	sqlite3_stmt *st;
	int rc;

	if (s == NULL || (failing && error == NULL))
		return -PL_EINVAL;
	rc = ensure_checked(s);
	if (rc < 0)
		return rc;
	st = stmt(s, ST_SINK_STATE);
	sqlite3_bind_int64(st, 1, sink_id);
	sqlite3_bind_int(st, 2, failing != 0);
	sqlite3_bind_text(st, 3, failing ? error : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 4, pl_clock_wall_us());
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return fail_db(s, rc, "cannot record the sink's state");
	return sqlite3_changes(s->db) == 1 ? 0 : fail(s, -PL_ENOENT, "no sink %" PRId64, sink_id);
}

int pl_store_sink_info(struct pl_store *s, int64_t sink_id, struct pl_store_sink_info *info)
{
	sqlite3_stmt *st;
	int rc;

	if (s == NULL || info == NULL)
		return -PL_EINVAL;
	memset(info, 0, sizeof(*info));
	if ((rc = intake_sync(s)) < 0)
		return rc;
	st = stmt(s, ST_SINK_INFO);
	sqlite3_bind_int64(st, 1, sink_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *e = sqlite3_column_text(st, 1);

		info->failing = sqlite3_column_int(st, 0);
		snprintf(info->last_error, sizeof(info->last_error), "%s", e ? (const char *)e : "");
		info->error_us = sqlite3_column_int64(st, 2);
		info->ok_us = sqlite3_column_int64(st, 3);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return fail(s, -PL_ENOENT, "no sink %" PRId64, sink_id);
	return rc == SQLITE_ROW ? 0 : fail_db(s, rc, "cannot read the sink");
}

int pl_store_quarantined(struct pl_store *s, int64_t sink_id, uint64_t *count)
{
	int64_t cursor, c = 0;
	sqlite3_stmt *st;
	int rc;

	if (s == NULL || count == NULL)
		return -PL_EINVAL;
	rc = sink_cursor(s, sink_id, &cursor);
	if (rc < 0)
		return rc;
	st = stmt(s, ST_QCOUNT);
	sqlite3_bind_int64(st, 1, sink_id);
	rc = query_ints(s, st, &c, 1, 0, NULL, "cannot count the quarantine");
	*count = (uint64_t)c;
	return rc;
}

static int used_bytes(struct pl_store *s, uint64_t *bytes)
{
	int64_t v[2] = { 0, 0 };
	int rc = query_sql(s, "SELECT (SELECT page_count FROM pragma_page_count) - "
			      "(SELECT freelist_count FROM pragma_freelist_count), "
			      "(SELECT page_size FROM pragma_page_size)", v, 2, 0, NULL,
			   "cannot measure");

	*bytes = rc == 0 && v[0] > 0 && v[1] > 0 ? (uint64_t)v[0] * (uint64_t)v[1] : 0;
	return rc;
}

/* Deletes delivered records (seq <= upto) by a condition; *deleted gets how many. */
static int delete_delivered(struct pl_store *s, const char *sql, int64_t a, int64_t b,
			    uint64_t *deleted)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK)
		return fail_db(s, rc, "cannot prune");
	sqlite3_bind_int64(st, 1, a);
	sqlite3_bind_int64(st, 2, b);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return fail_db(s, rc, "cannot prune");
	*deleted += (uint64_t)sqlite3_changes(s->db);
	return 0;
}

int pl_store_prune(struct pl_store *s, int64_t keep_delivered_s, uint64_t max_bytes,
		   struct pl_store_prune_result *res)
{
	struct pl_store_prune_result r = { 0 };
	int64_t delivered = 0, cutoff;
	int found, rc;

	if (res != NULL)
		*res = r;
	if (s == NULL || keep_delivered_s < 0)
		return -PL_EINVAL;
	rc = ensure_checked(s);
	if (rc < 0)
		return rc;
	if ((rc = intake_sync(s)) < 0)
		return rc;
	/* With no sink, nothing counts as delivered. */
	rc = delivered_upto(s, &delivered, &found);
	if (rc < 0)
		return rc;
	if (!found)
		delivered = 0;
	cutoff = keep_delivered_s > INT64_MAX / PL_US_PER_S ? INT64_MIN :
							       pl_clock_wall_us() - keep_delivered_s * PL_US_PER_S;
	rc = delete_delivered(s, "DELETE FROM main.records WHERE seq <= ?1 AND stored_us < ?2",
			      delivered, cutoff, &r.deleted_by_age);
	if (rc == 0)
		rc = used_bytes(s, &r.bytes);
	while (rc == 0 && max_bytes > 0 && r.bytes > max_bytes) {
		int64_t v[2] = { 0, 0 }; /* delivered records left, all records */
		uint64_t per, k;
		sqlite3_stmt *st;

		rc = sqlite3_prepare_v2(s->db, "SELECT (SELECT COUNT(*) FROM main.records WHERE seq <= ?),"
					" (SELECT COUNT(*) FROM main.records)", -1, &st, NULL);
		if (rc != SQLITE_OK) {
			rc = fail_db(s, rc, "cannot prune");
			break;
		}
		sqlite3_bind_int64(st, 1, delivered);
		rc = query_ints(s, st, v, 2, 0, NULL, "cannot prune");
		sqlite3_finalize(st);
		if (rc < 0)
			break;
		if (v[0] == 0)
			break;
		/* Estimate how many rows make up the excess; at least a useful chunk. */
		per = v[1] > 0 ? r.bytes / (uint64_t)v[1] : 1;
		k = (r.bytes - max_bytes) / (per > 0 ? per : 1) + 1;
		if (k < 64)
			k = 64;
		if (k > (uint64_t)v[0])
			k = (uint64_t)v[0];
		rc = delete_delivered(s, "DELETE FROM main.records WHERE seq IN (SELECT seq FROM main.records "
				      "WHERE seq <= ?1 ORDER BY seq LIMIT ?2)", delivered,
				      (int64_t)k, &r.deleted_by_size);
		if (rc == 0)
			rc = used_bytes(s, &r.bytes);
	}
	if (rc == 0 && (r.deleted_by_age > 0 || r.deleted_by_size > 0))
		rc = exec(s, "PRAGMA incremental_vacuum", "cannot vacuum");
	if (rc < 0)
		return rc;
	r.over_limit = max_bytes > 0 && r.bytes > max_bytes;
	s->over_limit = r.over_limit;
	s->over_bytes = r.bytes;
	s->over_max = max_bytes;
	if (res != NULL)
		*res = r;
	if (r.over_limit)
		return fail(s, -PL_ENOSPC, "store over its size bound (%" PRIu64 " bytes used, "
			    "limit %" PRIu64 ") with only undelivered records left: refusing new "
			    "records until the sinks catch up", r.bytes, max_bytes);
	return 0;
}

/* ---- listing, for `powerlogger status` ------------------------------------------------- */

static void copy_name(char *dst, size_t cap, const unsigned char *src)
{
	snprintf(dst, cap, "%s", src ? (const char *)src : "");
}

int pl_store_list(struct pl_store *s, int sinks, struct pl_store_entry *out, size_t cap,
		  size_t *n)
{
	sqlite3_stmt *st;
	int rc;

	if (s == NULL || n == NULL || (out == NULL && cap > 0))
		return -PL_EINVAL;
	*n = 0;
	rc = sqlite3_prepare_v2(s->db, sinks ? "SELECT id, name FROM sinks ORDER BY id"
					     : "SELECT id, name FROM meters ORDER BY id",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return fail_db(s, rc, "cannot list");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < cap) {
		out[*n].id = sqlite3_column_int64(st, 0);
		copy_name(out[*n].name, sizeof(out[*n].name), sqlite3_column_text(st, 1));
		(*n)++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fail_db(s, rc, "cannot list");
	return 0;
}

int pl_store_last_record(struct pl_store *s, int64_t meter_id, struct pl_interval_record *r)
{
	sqlite3_stmt *st;
	int rc;

	if (s == NULL || r == NULL)
		return -PL_EINVAL;
	if ((rc = intake_sync(s)) < 0)
		return rc;
	rc = sqlite3_prepare_v2(s->db,
				"SELECT start_us, length_s, pulses, rejected, flags, energy_uwh, avg_mw, "
				"peak_mw, register_uwh FROM records WHERE meter_id = ? "
				"ORDER BY start_us DESC LIMIT 1", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return fail_db(s, rc, "cannot read records");
	sqlite3_bind_int64(st, 1, meter_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		memset(r, 0, sizeof(*r));
		r->start_us = sqlite3_column_int64(st, 0);
		r->length_s = (uint32_t)sqlite3_column_int64(st, 1);
		r->pulses = (uint32_t)sqlite3_column_int64(st, 2);
		r->rejected = (uint32_t)sqlite3_column_int64(st, 3);
		r->flags = (uint32_t)sqlite3_column_int64(st, 4);
		r->energy_uwh = sqlite3_column_int64(st, 5);
		r->avg_mw = sqlite3_column_int64(st, 6);
		r->peak_mw = sqlite3_column_int64(st, 7);
		r->register_uwh = sqlite3_column_int64(st, 8);
		sqlite3_finalize(st);
		return 0;
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return -PL_ENOENT;
	return fail_db(s, rc, "cannot read records");
}

int pl_store_register_at(struct pl_store *s, int64_t meter_id, int64_t t_us, int64_t *reg_uwh)
{
	int64_t v = 0;
	int found = 0, rc;
	sqlite3_stmt *st;

	if (s == NULL || reg_uwh == NULL)
		return -PL_EINVAL;
	if ((rc = intake_sync(s)) < 0)
		return rc;
	/* the register at the end of the newest interval before t, else at the start of the
	 * oldest one (a meter that began after t) */
	rc = sqlite3_prepare_v2(s->db,
				"SELECT COALESCE((SELECT register_uwh FROM records WHERE meter_id = ?1"
				" AND start_us < ?2 ORDER BY start_us DESC LIMIT 1),"
				" (SELECT register_uwh - energy_uwh FROM records WHERE meter_id = ?1"
				" ORDER BY start_us LIMIT 1))", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return fail_db(s, rc, "cannot read records");
	sqlite3_bind_int64(st, 1, meter_id);
	sqlite3_bind_int64(st, 2, t_us);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		v = sqlite3_column_int64(st, 0);
		found = 1;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return fail_db(s, rc, "cannot read records");
	if (!found)
		return fail(s, -PL_ENOENT, "no records of meter %" PRId64, meter_id);
	*reg_uwh = v;
	return 0;
}

int pl_store_flagged(struct pl_store *s, int64_t meter_id, uint32_t flags, int64_t since_us,
		     uint64_t *count, int64_t *newest_start_us)
{
	int64_t v[2] = { 0, 0 };
	sqlite3_stmt *st;
	int rc;

	if (s == NULL || count == NULL || newest_start_us == NULL)
		return -PL_EINVAL;
	if ((rc = intake_sync(s)) < 0)
		return rc;
	rc = sqlite3_prepare_v2(s->db, "SELECT COUNT(*), MAX(start_us) FROM records WHERE "
				"meter_id = ? AND start_us >= ? AND (flags & ?) != 0", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return fail_db(s, rc, "cannot read records");
	sqlite3_bind_int64(st, 1, meter_id);
	sqlite3_bind_int64(st, 2, since_us);
	sqlite3_bind_int64(st, 3, flags);
	rc = query_ints(s, st, v, 2, INT64_MIN, NULL, "cannot read records");
	sqlite3_finalize(st);
	if (rc < 0)
		return rc;
	*count = (uint64_t)v[0];
	*newest_start_us = v[0] > 0 ? v[1] : INT64_MIN;
	return 0;
}
