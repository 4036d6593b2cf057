/* SPDX-License-Identifier: MIT */
/*
 * Tests of the store (src/linux/store.c): checkpoints, exactly-once records, per-sink cursors,
 * quarantine, backlog, the retention policy, refusal of foreign or damaged files, unwritable
 * files, a full disk, and a writer killed with SIGKILL at random moments.
 *
 * Every test works in its own directory made by mkdtemp() under /tmp and removes it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/store.h"
#include "testutil.h"

#define T0 (INT64_C(1700000000) * PL_US_PER_S) /* an epoch-based start, on a 20 s boundary */
#define STATE_LEN 200
#define STATE_VERSION 0x53543031u /* "ST01" */

struct tmp {
	char dir[64];
	char path[128];
};

static void tmp_make(struct tmp *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/pl_store_XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->path, sizeof(t->path), "%s/store.db", t->dir);
}

static void tmp_remove(struct tmp *t)
{
	DIR *d;
	struct dirent *e;
	char p[400];

	chmod(t->dir, 0700);
	d = opendir(t->dir);
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

/* The record of interval k: every field depends on k. */
static struct pl_interval_record rec_of(int64_t k)
{
	struct pl_interval_record r = {
		.start_us = T0 + k * 20 * PL_US_PER_S,
		.length_s = 20,
		.pulses = (uint32_t)(k % 7),
		.rejected = (uint32_t)(k % 3 == 0),
		.flags = (uint32_t)(k % 5 == 0 ? PL_Q_GAP : 0),
		.energy_uwh = (k % 7) * 1000,
		.avg_mw = (k % 7) * 180,
		.peak_mw = INT64_C(5000000000) + k,
		.register_uwh = INT64_C(123456789012) + k * 1000,
	};
	return r;
}

/* The checkpoint after interval k: a version tag, k, and bytes that depend on k. */
static void state_of(int64_t k, unsigned char *buf)
{
	uint32_t v = STATE_VERSION;

	memcpy(buf, &v, 4);
	memcpy(buf + 4, &k, 8);
	for (size_t i = 12; i < STATE_LEN; i++)
		buf[i] = (unsigned char)(k * 31 + (int64_t)i);
}

static int64_t state_k(const unsigned char *buf)
{
	int64_t k;

	memcpy(&k, buf + 4, 8);
	return k;
}

static void assert_rec_equal(const struct pl_interval_record *a, const struct pl_interval_record *b)
{
	assert_true(a->start_us == b->start_us);
	assert_int_equal(a->length_s, b->length_s);
	assert_int_equal(a->pulses, b->pulses);
	assert_int_equal(a->rejected, b->rejected);
	assert_int_equal(a->flags, b->flags);
	assert_true(a->energy_uwh == b->energy_uwh);
	assert_true(a->avg_mw == b->avg_mw);
	assert_true(a->peak_mw == b->peak_mw);
	assert_true(a->register_uwh == b->register_uwh);
}

static struct pl_store *open_ok(const char *path, unsigned flags)
{
	struct pl_store *s = NULL;
	char err[512];
	int rc = pl_store_open(path, flags, &s, err, sizeof(err));

	if (rc != 0)
		fail_msg("open %s: %d %s", path, rc, err);
	assert_non_null(s);
	return s;
}

static void commit_k(struct pl_store *s, int64_t meter, int64_t k)
{
	struct pl_interval_record r = rec_of(k);
	unsigned char st[STATE_LEN];
	int rc;

	state_of(k, st);
	rc = pl_store_commit_interval(s, meter, &r, 1, st, sizeof(st));
	if (rc != 0)
		fail_msg("commit %lld: %d %s", (long long)k, rc, pl_store_error(s));
}

static int64_t sql_int(struct pl_store *s, const char *sql)
{
	sqlite3 *db = pl_store_sqlite(s);
	sqlite3_stmt *st;
	int64_t v;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* FNV-1a of a file's bytes, to check that it was left untouched (no heap: forked children
 * must not inherit an allocation that looks leaked). */
static uint64_t file_digest(const char *path, size_t *len)
{
	uint64_t h = UINT64_C(14695981039346656037);
	FILE *f = fopen(path, "rb");
	int c;

	assert_non_null(f);
	*len = 0;
	while ((c = getc(f)) != EOF) {
		h = (h ^ (uint64_t)(unsigned char)c) * UINT64_C(1099511628211);
		(*len)++;
	}
	fclose(f);
	return h;
}

static void write_all(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void test_checkpoint_round_trip(void **state)
{
	unsigned char st[STATE_LEN], got[STATE_LEN + 10];
	struct pl_store_record out[4];
	struct pl_interval_record r = rec_of(3);
	struct pl_store *s;
	struct tmp t;
	int64_t meter, meter2, sink;
	size_t len, n;
	char name[32], err[512];

	(void)state;
	tmp_make(&t);
	/* Not there, and not asked to create it. */
	assert_int_equal(pl_store_open(t.path, 0, &s, err, sizeof(err)), -PL_ENOENT);
	assert_null(s);
	assert_non_null(strstr(err, t.path));

	s = open_ok(t.path, PL_STORE_CREATE);
	assert_int_equal(pl_store_meter(s, "house", 1000, 20, &meter), 0);
	assert_int_equal(pl_store_meter(s, "house", 1000, 20, &meter2), 0);
	assert_true(meter == meter2);
	/* A changed meter constant is taken over, same id. */
	assert_int_equal(pl_store_meter(s, "house", 800, 10, &meter2), 0);
	assert_true(meter == meter2);
	assert_int_equal(sql_int(s, "SELECT imp_per_kwh * 1000 + interval_s FROM meters"), 800010);
	assert_int_equal(pl_store_meter_name(s, meter, name, sizeof(name)), 0);
	assert_string_equal(name, "house");
	assert_int_equal(pl_store_meter_name(s, meter, name, 3), -PL_ENOSPC);
	assert_int_equal(pl_store_meter_name(s, meter + 99, name, sizeof(name)), -PL_ENOENT);
	assert_int_equal(pl_store_load_checkpoint(s, meter, got, sizeof(got), &len), -PL_ENOENT);

	state_of(3, st);
	assert_int_equal(pl_store_commit_interval(s, meter, &r, 1, st, sizeof(st)), 0);
	assert_int_equal(pl_store_load_checkpoint(s, meter, got, sizeof(got), &len), 0);
	assert_int_equal(len, STATE_LEN);
	assert_memory_equal(got, st, STATE_LEN);
	/* Too small a buffer: the length, nothing copied. */
	memset(got, 0xAA, sizeof(got));
	assert_int_equal(pl_store_load_checkpoint(s, meter, got, 10, &len), -PL_ENOSPC);
	assert_int_equal(len, STATE_LEN);
	assert_int_equal(got[0], 0xAA);
	/* Bad arguments and an unknown meter change nothing. */
	assert_int_equal(pl_store_commit_interval(s, meter, &r, 1, st, 0), -PL_EINVAL);
	assert_int_equal(pl_store_commit_interval(s, meter + 99, &r, 1, st, sizeof(st)),
			 -PL_ENOENT);
	/* A checkpoint without records (an interval-less state update) is fine. */
	state_of(4, st);
	assert_int_equal(pl_store_commit_interval(s, meter, NULL, 0, st, sizeof(st)), 0);
	pl_store_close(s);

	/* Reopened: the checkpoint and every field of the record are back. */
	s = open_ok(t.path, 0);
	assert_int_equal(pl_store_load_checkpoint(s, meter, got, sizeof(got), &len), 0);
	assert_int_equal(len, STATE_LEN);
	assert_memory_equal(got, st, STATE_LEN);
	assert_int_equal(pl_store_sink(s, "influx", &sink), 0);
	assert_int_equal(pl_store_next_batch(s, sink, 4, out, &n), 0);
	assert_int_equal(n, 1);
	assert_true(out[0].meter_id == meter);
	assert_rec_equal(&out[0].rec, &r);

	/* A damaged checkpoint (its bytes changed behind the CRC) is reported. */
	assert_int_equal(sqlite3_exec(pl_store_sqlite(s), "UPDATE main.checkpoints SET state = "
				      "zeroblob(200)", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(pl_store_load_checkpoint(s, meter, got, sizeof(got), &len),
			 -PL_ECORRUPT);
	/* A store from a newer program is refused with a clear message. */
	assert_int_equal(sqlite3_exec(pl_store_sqlite(s), "PRAGMA user_version = 99", NULL, NULL,
				      NULL), SQLITE_OK);
	pl_store_close(s);
	assert_int_equal(pl_store_open(t.path, 0, &s, err, sizeof(err)), -PL_EINVAL);
	assert_non_null(strstr(err, "newer"));
	tmp_remove(&t);
}

static void test_recommit_is_harmless(void **state)
{
	struct pl_store_record out[16];
	struct pl_interval_record r[2];
	unsigned char st[STATE_LEN], got[STATE_LEN];
	struct pl_store *s;
	struct tmp t;
	int64_t meter, sink;
	size_t n, len;
	uint64_t count;
	int64_t oldest;

	(void)state;
	tmp_make(&t);
	s = open_ok(t.path, PL_STORE_CREATE);
	assert_int_equal(pl_store_meter(s, "m", 1000, 20, &meter), 0);
	assert_int_equal(pl_store_sink(s, "a", &sink), 0);
	for (int64_t k = 0; k < 5; k++)
		commit_k(s, meter, k);
	/* Intervals 3 and 4 again, as after a crash before the checkpoint moved on. */
	commit_k(s, meter, 3);
	commit_k(s, meter, 4);
	/* And 4 twice in one commit, with a newer state. */
	r[0] = rec_of(4);
	r[1] = rec_of(4);
	state_of(5, st);
	assert_int_equal(pl_store_commit_interval(s, meter, r, 2, st, sizeof(st)), 0);
	assert_int_equal(pl_store_load_checkpoint(s, meter, got, sizeof(got), &len), 0);
	assert_int_equal(state_k(got), 5);
	assert_int_equal(sql_int(s, "SELECT COUNT(*) FROM records"), 5);

	/* One delivery each, in order. */
	assert_int_equal(pl_store_next_batch(s, sink, 16, out, &n), 0);
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++) {
		struct pl_interval_record want = rec_of((int64_t)i);

		assert_rec_equal(&out[i].rec, &want);
		if (i > 0)
			assert_true(out[i].seq > out[i - 1].seq);
	}
	assert_int_equal(pl_store_ack(s, sink, out[4].seq), 0);
	/* A re-commit of delivered intervals does not deliver them again. */
	commit_k(s, meter, 2);
	commit_k(s, meter, 4);
	assert_int_equal(pl_store_backlog(s, sink, &count, &oldest), 0);
	assert_int_equal(count, 0);
	assert_true(oldest == INT64_MIN);
	assert_int_equal(pl_store_next_batch(s, sink, 16, out, &n), 0);
	assert_int_equal(n, 0);
	pl_store_close(s);
	tmp_remove(&t);
}

static void test_cursors_per_sink(void **state)
{
	struct pl_store_record out[16];
	struct pl_store *s;
	struct tmp t;
	int64_t meter, a, b, a2;
	size_t n;

	(void)state;
	tmp_make(&t);
	s = open_ok(t.path, PL_STORE_CREATE);
	assert_int_equal(pl_store_meter(s, "m", 1000, 20, &meter), 0);
	assert_int_equal(pl_store_sink(s, "a", &a), 0);
	assert_int_equal(pl_store_sink(s, "b", &b), 0);
	assert_int_equal(pl_store_sink(s, "a", &a2), 0);
	assert_true(a == a2 && a != b);
	for (int64_t k = 0; k < 10; k++)
		commit_k(s, meter, k);

	assert_int_equal(pl_store_next_batch(s, a, 3, out, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(pl_store_ack(s, a, out[2].seq), 0);
	/* Backwards is a no-op; the future is refused; unknown sinks are refused. */
	assert_int_equal(pl_store_ack(s, a, out[0].seq), 0);
	assert_int_equal(pl_store_ack(s, a, 1000), -PL_EINVAL);
	assert_int_equal(pl_store_ack(s, 999, 1), -PL_ENOENT);
	assert_int_equal(pl_store_next_batch(s, 999, 3, out, &n), -PL_ENOENT);
	pl_store_close(s);

	/* Cursors survive a reopen, each on its own. */
	s = open_ok(t.path, 0);
	assert_int_equal(pl_store_next_batch(s, a, 16, out, &n), 0);
	assert_int_equal(n, 7);
	assert_true(out[0].rec.start_us == rec_of(3).start_us);
	assert_int_equal(pl_store_next_batch(s, b, 16, out, &n), 0);
	assert_int_equal(n, 10);
	assert_true(out[0].rec.start_us == rec_of(0).start_us);
	assert_int_equal(pl_store_ack(s, b, out[9].seq), 0);
	assert_int_equal(pl_store_next_batch(s, b, 16, out, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(pl_store_next_batch(s, a, 16, out, &n), 0);
	assert_int_equal(n, 7);
	pl_store_close(s);
	tmp_remove(&t);
}

static void test_quarantine_advances(void **state)
{
	struct pl_store_record out[16];
	struct pl_store *s;
	struct tmp t;
	int64_t meter, a, b;
	size_t n;
	uint64_t q;
	char big[PL_STORE_MAX_MESSAGE + 100];

	(void)state;
	tmp_make(&t);
	s = open_ok(t.path, PL_STORE_CREATE);
	assert_int_equal(pl_store_meter(s, "m", 1000, 20, &meter), 0);
	assert_int_equal(pl_store_sink(s, "a", &a), 0);
	assert_int_equal(pl_store_sink(s, "b", &b), 0);
	for (int64_t k = 0; k < 5; k++)
		commit_k(s, meter, k);
	assert_int_equal(pl_store_next_batch(s, a, 16, out, &n), 0);
	assert_int_equal(n, 5);
	/* The server rejected the third line and took the others before it. */
	assert_int_equal(pl_store_quarantine(s, a, out[2].seq,
					     "partial write: field type conflict"), 0);
	assert_int_equal(pl_store_quarantined(s, a, &q), 0);
	assert_int_equal(q, 1);
	assert_int_equal(pl_store_quarantined(s, b, &q), 0);
	assert_int_equal(q, 0);
	assert_int_equal(pl_store_next_batch(s, a, 16, out, &n), 0);
	assert_int_equal(n, 2);
	assert_true(out[0].rec.start_us == rec_of(3).start_us);
	/* An unknown record, an unknown sink. */
	assert_int_equal(pl_store_quarantine(s, a, 12345, "x"), -PL_ENOENT);
	assert_int_equal(pl_store_quarantine(s, 77, out[0].seq, "x"), -PL_ENOENT);
	/* A huge message is cut, not refused. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(pl_store_quarantine(s, a, out[1].seq, big), 0);
	assert_int_equal(sql_int(s, "SELECT MAX(LENGTH(message)) FROM quarantine"),
			 PL_STORE_MAX_MESSAGE);
	/* Cut between characters: 'e' with an accent is two bytes; 4096 is even, one 'x' first. */
	big[0] = 'x';
	for (size_t i = 1; i + 1 < sizeof(big); i += 2)
		memcpy(big + i, "\xc3\xa9", 2);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(pl_store_quarantine(s, a, out[1].seq, big), 0);
	assert_int_equal(sql_int(s, "SELECT MIN(LENGTH(CAST(message AS BLOB))) FROM quarantine "
				    "WHERE id = 3"), PL_STORE_MAX_MESSAGE - 1);
	assert_int_equal(pl_store_quarantined(s, a, &q), 0);
	assert_int_equal(q, 3);
	assert_int_equal(pl_store_next_batch(s, a, 16, out, &n), 0);
	assert_int_equal(n, 0);
	/* The other sink still gets everything. */
	assert_int_equal(pl_store_next_batch(s, b, 16, out, &n), 0);
	assert_int_equal(n, 5);
	pl_store_close(s);
	tmp_remove(&t);
}

static void test_backlog(void **state)
{
	struct pl_store_record out[16];
	struct pl_store *s;
	struct tmp t;
	int64_t m1, m2, a, oldest;
	uint64_t count;
	size_t n;

	(void)state;
	tmp_make(&t);
	s = open_ok(t.path, PL_STORE_CREATE);
	assert_int_equal(pl_store_meter(s, "m1", 1000, 20, &m1), 0);
	assert_int_equal(pl_store_meter(s, "m2", 800, 20, &m2), 0);
	assert_int_equal(pl_store_sink(s, "a", &a), 0);
	assert_int_equal(pl_store_backlog(s, a, &count, &oldest), 0);
	assert_int_equal(count, 0);
	assert_true(oldest == INT64_MIN);
	for (int64_t k = 10; k < 20; k++)
		commit_k(s, m1, k);
	for (int64_t k = 5; k < 8; k++) /* a second meter, behind in time */
		commit_k(s, m2, k);
	assert_int_equal(pl_store_backlog(s, a, &count, &oldest), 0);
	assert_int_equal(count, 13);
	assert_true(oldest == rec_of(5).start_us);
	assert_int_equal(pl_store_next_batch(s, a, 12, out, &n), 0);
	assert_int_equal(n, 12);
	assert_int_equal(pl_store_ack(s, a, out[11].seq), 0);
	assert_int_equal(pl_store_backlog(s, a, &count, &oldest), 0);
	assert_int_equal(count, 1);
	assert_true(oldest == rec_of(7).start_us);
	assert_int_equal(pl_store_backlog(s, 42, &count, &oldest), -PL_ENOENT);
	pl_store_close(s);
	tmp_remove(&t);
}

/* pl_store_pending and pl_store_next_batch_after: what a sink with a batch in flight uses. */
static void test_pending_and_after(void **state)
{
	struct pl_store_record out[16];
	struct pl_store *s;
	struct tmp t;
	int64_t m, a;
	size_t n;
	int any;

	(void)state;
	tmp_make(&t);
	s = open_ok(t.path, PL_STORE_CREATE);
	assert_int_equal(pl_store_meter(s, "m", 1000, 20, &m), 0);
	assert_int_equal(pl_store_sink(s, "a", &a), 0);
	assert_int_equal(pl_store_pending(s, a, &any), 0);
	assert_int_equal(any, 0);
	for (int64_t k = 0; k < 10; k++)
		commit_k(s, m, k);
	assert_int_equal(pl_store_pending(s, a, &any), 0);
	assert_int_equal(any, 1);
	/* a batch in flight: the next one starts after it, the cursor stays */
	assert_int_equal(pl_store_next_batch(s, a, 4, out, &n), 0);
	assert_int_equal(n, 4);
	int64_t last = out[3].seq;
	assert_int_equal(pl_store_next_batch_after(s, a, last, 16, out, &n), 0);
	assert_int_equal(n, 6);
	struct pl_interval_record r4 = rec_of(4);
	assert_rec_equal(&out[0].rec, &r4);
	/* after_seq below the cursor changes nothing: never before the cursor */
	assert_int_equal(pl_store_ack(s, a, out[1].seq), 0);
	assert_int_equal(pl_store_next_batch_after(s, a, 0, 16, out, &n), 0);
	assert_int_equal(n, 4);
	struct pl_interval_record r6 = rec_of(6);
	assert_rec_equal(&out[0].rec, &r6);
	assert_int_equal(pl_store_ack(s, a, out[3].seq), 0);
	assert_int_equal(pl_store_pending(s, a, &any), 0);
	assert_int_equal(any, 0);
	assert_int_equal(pl_store_pending(s, 42, &any), -PL_ENOENT);
	pl_store_close(s);
	tmp_remove(&t);
}

/* A sink's state (failing, last error, last delivery) is kept in the store for `status`. */
static void test_sink_state(void **state)
{
	struct pl_store_sink_info info;
	struct pl_store_record out[4];
	struct pl_store *s;
	struct tmp t;
	int64_t m, a, b;
	size_t n;

	(void)state;
	tmp_make(&t);
	s = open_ok(t.path, PL_STORE_CREATE);
	assert_int_equal(pl_store_meter(s, "m", 1000, 20, &m), 0);
	assert_int_equal(pl_store_sink(s, "a", &a), 0);
	assert_int_equal(pl_store_sink(s, "b", &b), 0);
	assert_int_equal(pl_store_sink_info(s, a, &info), 0);
	assert_int_equal(info.failing, 0);
	assert_string_equal(info.last_error, "");
	assert_true(info.ok_us == 0 && info.error_us == 0);
	assert_int_equal(pl_store_sink_report(s, a, 1, "HTTP 500 internal error"), 0);
	pl_store_close(s);
	s = open_ok(t.path, 0); /* survives a restart */
	assert_int_equal(pl_store_sink_info(s, a, &info), 0);
	assert_int_equal(info.failing, 1);
	assert_string_equal(info.last_error, "HTTP 500 internal error");
	assert_true(info.error_us > T0 && info.ok_us == 0);
	assert_int_equal(pl_store_sink_info(s, b, &info), 0); /* the other sink untouched */
	assert_int_equal(info.failing, 0);
	/* a delivery ends the failure; the last error stays visible */
	commit_k(s, m, 0);
	assert_int_equal(pl_store_next_batch(s, a, 4, out, &n), 0);
	assert_int_equal(pl_store_ack(s, a, out[0].seq), 0);
	assert_int_equal(pl_store_sink_info(s, a, &info), 0);
	assert_int_equal(info.failing, 0);
	assert_string_equal(info.last_error, "HTTP 500 internal error");
	assert_true(info.ok_us >= info.error_us);
	/* a quarantine is not a delivery */
	assert_int_equal(pl_store_sink_report(s, b, 1, "timeout"), 0);
	assert_int_equal(pl_store_quarantine(s, b, out[0].seq, "bad line"), 0);
	assert_int_equal(pl_store_sink_info(s, b, &info), 0);
	assert_int_equal(info.failing, 1);
	assert_true(info.ok_us == 0);
	assert_int_equal(pl_store_sink_report(s, 42, 0, NULL), -PL_ENOENT);
	assert_int_equal(pl_store_sink_info(s, 42, &info), -PL_ENOENT);
	pl_store_close(s);
	tmp_remove(&t);
}

/* A store written by schema version 1 (before the sinks' state) is upgraded in place, and
 * keeps its records, cursors and checkpoints. */
static void test_upgrade_from_v1(void **state)
{
	static const char v1[] =
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
		" cursor INTEGER NOT NULL DEFAULT 0);"
		"CREATE TABLE quarantine(id INTEGER PRIMARY KEY,"
		" sink_id INTEGER NOT NULL REFERENCES sinks(id), seq INTEGER NOT NULL,"
		" meter_id INTEGER NOT NULL, start_us INTEGER NOT NULL, message TEXT NOT NULL,"
		" at_us INTEGER NOT NULL);"
		"CREATE INDEX quarantine_sink ON quarantine(sink_id);"
		"CREATE TABLE checkpoints(meter_id INTEGER PRIMARY KEY REFERENCES meters(id),"
		" state BLOB NOT NULL, crc INTEGER NOT NULL, stored_us INTEGER NOT NULL);"
		"INSERT INTO meters VALUES(1, 'house', 1000, 20);"
		"INSERT INTO records(meter_id, start_us, length_s, pulses, rejected, flags,"
		" energy_uwh, avg_mw, peak_mw, register_uwh, stored_us)"
		" VALUES(1, 1700000000000000, 20, 3, 0, 0, 3000000, 540000, 600000, 5000000, 1);"
		"INSERT INTO records(meter_id, start_us, length_s, pulses, rejected, flags,"
		" energy_uwh, avg_mw, peak_mw, register_uwh, stored_us)"
		" VALUES(1, 1700000020000000, 20, 2, 0, 0, 2000000, 360000, 400000, 7000000, 1);"
		"INSERT INTO sinks VALUES(1, 'influx', 1);"
		"PRAGMA application_id = 1347178311;" /* "PLOG" */
		"PRAGMA user_version = 1;";
	struct pl_store_sink_info info;
	struct pl_store_record out[4];
	struct pl_store *s;
	sqlite3 *db;
	struct tmp t;
	int64_t id;
	size_t n;

	(void)state;
	tmp_make(&t);
	assert_int_equal(sqlite3_open(t.path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, v1, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	s = open_ok(t.path, 0);
	assert_int_equal(sql_int(s, "PRAGMA user_version"), PL_STORE_SCHEMA_VERSION);
	assert_int_equal(pl_store_sink(s, "influx", &id), 0);
	assert_int_equal(id, 1);
	assert_int_equal(pl_store_sink_info(s, id, &info), 0);
	assert_int_equal(info.failing, 0);
	assert_int_equal(pl_store_next_batch(s, id, 4, out, &n), 0); /* the cursor kept */
	assert_int_equal(n, 1);
	assert_true(out[0].rec.start_us == INT64_C(1700000020000000));
	assert_int_equal(out[0].rec.pulses, 2);
	assert_int_equal(pl_store_sink_report(s, id, 1, "refused"), 0);
	pl_store_close(s);
	s = open_ok(t.path, 0); /* and opens again as a current store */
	assert_int_equal(pl_store_sink_info(s, id, &info), 0);
	assert_string_equal(info.last_error, "refused");
	/* it keeps its page size (only a new store gets small pages), and takes commits: the
	 * first checkpoint of a meter is inserted, the next ones update it in place */
	assert_int_equal(sql_int(s, "PRAGMA page_size"), 4096);
	commit_k(s, 1, 2);
	commit_k(s, 1, 3);
	assert_int_equal(sql_int(s, "SELECT COUNT(*) FROM checkpoints"), 1);
	{
		unsigned char st[STATE_LEN], want[STATE_LEN];
		size_t len;

		assert_int_equal(pl_store_load_checkpoint(s, 1, st, sizeof(st), &len), 0);
		state_of(3, want);
		assert_int_equal(len, STATE_LEN);
		assert_memory_equal(st, want, STATE_LEN);
	}
	pl_store_close(s);
	tmp_remove(&t);
}

/* A new store: small pages (fewer bytes per WAL frame, docs/daemon-design.md), and a
 * checkpoint replaced on every commit, one row per meter, whatever its size does. */
static void test_new_store_layout(void **state)
{
	unsigned char big[3000], got[3000];
	struct pl_store *s;
	struct tmp t;
	int64_t meter;
	size_t len;

	(void)state;
	tmp_make(&t);
	s = open_ok(t.path, PL_STORE_CREATE);
	assert_int_equal(sql_int(s, "PRAGMA page_size"), 512);
	assert_int_equal(sql_int(s, "PRAGMA auto_vacuum"), 2); /* incremental, as before */
	assert_int_equal(pl_store_meter(s, "m", 1000, 20, &meter), 0);
	for (int64_t k = 0; k < 6; k++)
		commit_k(s, meter, k);
	{
		struct pl_interval_record r = rec_of(6);

		memset(big, 0x5a, sizeof(big)); /* a bigger state replaces a smaller one */
		assert_int_equal(pl_store_commit_interval(s, meter, &r, 1, big, sizeof(big)), 0);
	}
	assert_int_equal(sql_int(s, "SELECT COUNT(*) FROM checkpoints"), 1);
	pl_store_close(s);
	s = open_ok(t.path, 0);
	assert_int_equal(sql_int(s, "PRAGMA page_size"), 512);
	assert_int_equal(pl_store_load_checkpoint(s, meter, got, sizeof(got), &len), 0);
	assert_int_equal(len, sizeof(big));
	assert_memory_equal(got, big, sizeof(big));
	commit_k(s, meter, 7); /* and a smaller one a bigger one */
	assert_int_equal(sql_int(s, "SELECT COUNT(*) FROM records"), 8);
	assert_int_equal(sql_int(s, "SELECT COUNT(*) FROM checkpoints"), 1);
	assert_int_equal(pl_store_load_checkpoint(s, meter, got, sizeof(got), &len), 0);
	assert_int_equal(len, STATE_LEN);
	assert_int_equal(state_k(got), 7);
	pl_store_close(s);
	tmp_remove(&t);
}

/* The register at a time, for "energy today". */
static void test_register_at(void **state)
{
	struct pl_store *s;
	struct tmp t;
	int64_t m, reg;

	(void)state;
	tmp_make(&t);
	s = open_ok(t.path, PL_STORE_CREATE);
	assert_int_equal(pl_store_meter(s, "m", 1000, 20, &m), 0);
	assert_int_equal(pl_store_register_at(s, m, T0, &reg), -PL_ENOENT);
	for (int64_t k = 10; k < 20; k++)
		commit_k(s, m, k);
	/* before every record: the register at the start of the oldest */
	assert_int_equal(pl_store_register_at(s, m, T0, &reg), 0);
	assert_true(reg == rec_of(10).register_uwh - rec_of(10).energy_uwh);
	/* within: the end of the newest record starting before t */
	assert_int_equal(pl_store_register_at(s, m, rec_of(15).start_us, &reg), 0);
	assert_true(reg == rec_of(14).register_uwh);
	assert_int_equal(pl_store_register_at(s, m, rec_of(15).start_us + 1, &reg), 0);
	assert_true(reg == rec_of(15).register_uwh);
	assert_int_equal(pl_store_register_at(s, m, INT64_MAX, &reg), 0);
	assert_true(reg == rec_of(19).register_uwh);
	assert_int_equal(pl_store_register_at(s, 42, INT64_MAX, &reg), -PL_ENOENT);
	pl_store_close(s);
	tmp_remove(&t);
}

static void test_prune_policy(void **state)
{
	struct pl_store_prune_result res;
	struct pl_store_record out[64];
	struct pl_store *s;
	struct tmp t;
	int64_t meter, a, b, oldest, last = 0;
	uint64_t count, before;
	size_t n;
	int rc;

	(void)state;
	tmp_make(&t);
	s = open_ok(t.path, PL_STORE_CREATE);
	assert_int_equal(pl_store_meter(s, "m", 1000, 20, &meter), 0);
	/* With no sink, nothing counts as delivered. */
	for (int64_t k = 0; k < 10; k++)
		commit_k(s, meter, k);
	assert_int_equal(pl_store_prune(s, 0, 0, &res), 0);
	assert_int_equal(res.deleted_by_age, 0);

	assert_int_equal(pl_store_sink(s, "a", &a), 0);
	assert_int_equal(pl_store_sink(s, "b", &b), 0);
	assert_int_equal(pl_store_next_batch(s, a, 6, out, &n), 0);
	assert_int_equal(pl_store_ack(s, a, out[5].seq), 0);
	assert_int_equal(pl_store_next_batch(s, b, 3, out, &n), 0);
	assert_int_equal(pl_store_ack(s, b, out[2].seq), 0);
	/* Stored just now: an hour's retention keeps them all. */
	assert_int_equal(pl_store_prune(s, 3600, 0, &res), 0);
	assert_int_equal(res.deleted_by_age, 0);
	/* Made two hours old: only those delivered to both sinks go. */
	assert_int_equal(sqlite3_exec(pl_store_sqlite(s), "UPDATE main.records SET stored_us = "
				      "stored_us - 7200000000", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(pl_store_prune(s, 3600, 0, &res), 0);
	assert_int_equal(res.deleted_by_age, 3);
	assert_int_equal(res.over_limit, 0);
	assert_int_equal(sql_int(s, "SELECT COUNT(*) FROM records"), 7);
	assert_int_equal(pl_store_backlog(s, a, &count, &oldest), 0);
	assert_int_equal(count, 4);
	assert_int_equal(pl_store_backlog(s, b, &count, &oldest), 0);
	assert_int_equal(count, 7);

	/* Size bound: many records, sink a has all, sink b half. */
	for (int64_t k = 10; k < 3000; k++)
		commit_k(s, meter, k);
	do {
		assert_int_equal(pl_store_next_batch(s, a, 64, out, &n), 0);
		if (n > 0) {
			last = out[n - 1].seq;
			assert_int_equal(pl_store_ack(s, a, last), 0);
		}
	} while (n > 0);
	for (int i = 0; i < 23; i++) {
		assert_int_equal(pl_store_next_batch(s, b, 64, out, &n), 0);
		assert_int_equal(pl_store_ack(s, b, out[n - 1].seq), 0);
	}
	assert_int_equal(pl_store_backlog(s, b, &before, &oldest), 0);
	/* A bound that the delivered records' deletion can meet. */
	assert_int_equal(pl_store_prune(s, 1000000, 1, &res), -PL_ENOSPC);
	assert_true(res.deleted_by_size > 0);
	assert_int_equal(res.deleted_by_age, 0);
	assert_int_equal(res.over_limit, 1);
	assert_non_null(strstr(pl_store_error(s), "undelivered"));
	/* Nothing undelivered was dropped: b's backlog is whole, and it is all that is left. */
	assert_int_equal(pl_store_backlog(s, b, &count, &oldest), 0);
	assert_int_equal(count, before);
	assert_int_equal(sql_int(s, "SELECT COUNT(*) FROM records"), (int64_t)before);
	/* New commits are refused while over the bound, and change nothing. */
	{
		struct pl_interval_record r = rec_of(5000);
		unsigned char st[STATE_LEN];

		state_of(5000, st);
		assert_int_equal(pl_store_commit_interval(s, meter, &r, 1, st, sizeof(st)),
				 -PL_ENOSPC);
		assert_non_null(strstr(pl_store_error(s), "size bound"));
	}
	assert_int_equal(sql_int(s, "SELECT COUNT(*) FROM records"), (int64_t)before);

	/* Sink b catches up: a prune to a bound of a few pages fits, commits resume. */
	assert_int_equal(pl_store_ack(s, b, last), 0);
	rc = pl_store_prune(s, 1000000, 64 * 1024, &res);
	if (rc != 0)
		fail_msg("prune: %d %s", rc, pl_store_error(s));
	assert_int_equal(res.over_limit, 0);
	assert_true(res.bytes <= 64 * 1024);
	assert_true(res.deleted_by_size > 0);
	commit_k(s, meter, 5000);
	/* The sequence goes on past the pruned records: the new one is delivered. */
	assert_int_equal(pl_store_backlog(s, a, &count, &oldest), 0);
	assert_int_equal(count, 1);
	assert_true(oldest == rec_of(5000).start_us);
	pl_store_close(s);
	/* The file shrank with the records (incremental vacuum). */
	{
		struct stat sb;

		assert_int_equal(stat(t.path, &sb), 0);
		assert_true(sb.st_size <= 64 * 1024);
	}
	tmp_remove(&t);
}

/*
 * A sink removed from the configuration (or renamed) keeps its row and cursor in the store;
 * retention waits only for the sinks the logger registers now, or the store would never be
 * pruned again, and with a size bound would end up refusing every new record.
 */
static void test_prune_ignores_removed_sink(void **state)
{
	struct pl_store_prune_result res;
	struct pl_store_record out[16];
	struct pl_store *s;
	struct tmp t;
	int64_t meter, a, gone;
	size_t n;

	(void)state;
	tmp_make(&t);
	s = open_ok(t.path, PL_STORE_CREATE);
	assert_int_equal(pl_store_meter(s, "m", 1000, 20, &meter), 0);
	assert_int_equal(pl_store_sink(s, "a", &a), 0);
	assert_int_equal(pl_store_sink(s, "gone", &gone), 0);
	for (int64_t k = 0; k < 10; k++)
		commit_k(s, meter, k);
	assert_int_equal(pl_store_next_batch(s, a, 10, out, &n), 0);
	assert_int_equal(n, 10);
	assert_int_equal(pl_store_ack(s, a, out[9].seq), 0);
	assert_int_equal(sqlite3_exec(pl_store_sqlite(s), "UPDATE main.records SET stored_us = "
				      "stored_us - 7200000000", NULL, NULL, NULL), SQLITE_OK);
	/* both configured: "gone" has delivered nothing, so nothing may go */
	assert_int_equal(pl_store_prune(s, 3600, 0, &res), 0);
	assert_int_equal(res.deleted_by_age, 0);
	pl_store_close(s);

	/* the next run has only "a" in its configuration */
	s = open_ok(t.path, 0);
	assert_int_equal(pl_store_sink(s, "a", &a), 0);
	assert_int_equal(pl_store_sink(s, "a", &a), 0); /* twice is once */
	assert_int_equal(pl_store_prune(s, 3600, 0, &res), 0);
	assert_int_equal(res.deleted_by_age, 10);
	assert_int_equal(sql_int(s, "SELECT COUNT(*) FROM records"), 0);
	pl_store_close(s);

	/* a handle that registers no sink judges by every sink in the store, as before */
	s = open_ok(t.path, 0);
	commit_k(s, meter, 20);
	assert_int_equal(sqlite3_exec(pl_store_sqlite(s), "UPDATE main.records SET stored_us = "
				      "stored_us - 7200000000", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(pl_store_prune(s, 3600, 0, &res), 0);
	assert_int_equal(res.deleted_by_age, 0);
	pl_store_close(s);
	tmp_remove(&t);
}

/* Opening must fail with the exact message and leave the file as it was. */
static void assert_refused(const char *path)
{
	struct pl_store *s = (struct pl_store *)1;
	char err[512], want[512];
	size_t len0, len1;
	uint64_t before = file_digest(path, &len0);

	assert_int_equal(pl_store_open(path, PL_STORE_CREATE, &s, err, sizeof(err)), -PL_ECORRUPT);
	assert_null(s);
	snprintf(want, sizeof(want), "not a PowerLogger store (or damaged): %s", path);
	assert_string_equal(err, want);
	assert_true(file_digest(path, &len1) == before);
	assert_int_equal(len0, len1);
}

static void test_foreign_files_refused(void **state)
{
	unsigned char junk[8192];
	struct pl_store *s;
	struct tmp t;
	sqlite3 *db;
	char *good;
	size_t len;
	int64_t meter;

	(void)state;
	tmp_make(&t);
	rng_state = 42;
	/* Random bytes. */
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)rnd();
	write_all(t.path, junk, sizeof(junk));
	assert_refused(t.path);
	/* Text (a configuration file given by mistake). */
	write_all(t.path, "[meter]\nname = house\n", 21);
	assert_refused(t.path);
	/* SQLite's magic with garbage after it. */
	memcpy(junk, "SQLite format 3", 16);
	write_all(t.path, junk, sizeof(junk));
	assert_refused(t.path);
	unlink(t.path);
	/* Another program's SQLite database. */
	assert_int_equal(sqlite3_open(t.path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE x(a); INSERT INTO x VALUES(1)", NULL,
				      NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_refused(t.path);
	unlink(t.path);

	/* A store of ours with a damaged page: quick_check refuses it. */
	s = open_ok(t.path, PL_STORE_CREATE);
	assert_int_equal(pl_store_meter(s, "m", 1000, 20, &meter), 0);
	for (int64_t k = 0; k < 400; k++)
		commit_k(s, meter, k);
	pl_store_close(s); /* the last close checkpoints the WAL into the file */
	good = read_all(t.path, &len);
	assert_true(len > 5 * 4096);
	/* inside the b-tree pages of the records, past a page's header: the middle of the file
	 * (the schema's pages come first; schema version 4's trigger fills 11 of 512 bytes) */
	memset(good + (len / 2 / 4096) * 4096 + 8, 0x5A, 2000);
	write_all(t.path, good, len);
	free(good);
	assert_refused(t.path);
	/* With the check deferred (the daemon reads while it runs), the first write runs it:
	 * refused, and the file is still untouched. */
	{
		size_t len0, len1;
		uint64_t before = file_digest(t.path, &len0);
		struct pl_store_record out[4];
		size_t n;
		int64_t sink;
		int rc;

		s = open_ok(t.path, PL_STORE_DEFER_CHECK);
		assert_int_equal(pl_store_sink(s, "new sink", &sink), -PL_ECORRUPT);
		assert_int_equal(pl_store_check(s), -PL_ECORRUPT);
		assert_int_equal(pl_store_sink_report(s, 1, 1, "x"), -PL_ECORRUPT);
		/* (this store has no sink: refused either way) */
		rc = pl_store_ack(s, 1, 1);
		assert_true(rc == -PL_ECORRUPT || rc == -PL_ENOENT);
		rc = pl_store_quarantine(s, 1, 1, "x");
		assert_true(rc == -PL_ECORRUPT || rc == -PL_ENOENT);
		assert_int_equal(pl_store_prune(s, 0, 0, NULL), -PL_ECORRUPT);
		(void)pl_store_next_batch(s, 1, 4, out, &n); /* a read may go either way */
		pl_store_close(s);
		assert_true(file_digest(t.path, &len1) == before);
		assert_int_equal(len0, len1);
	}
	tmp_remove(&t);
}

/* A deferred check passes on a sound store: reads at once, writes after the check. */
static void test_deferred_check(void **state)
{
	struct pl_store_record out[4];
	struct pl_store *s;
	struct tmp t;
	int64_t m, a;
	size_t n;

	(void)state;
	tmp_make(&t);
	s = open_ok(t.path, PL_STORE_CREATE | PL_STORE_DEFER_CHECK); /* new: nothing to check */
	assert_int_equal(pl_store_meter(s, "m", 1000, 20, &m), 0);
	assert_int_equal(pl_store_sink(s, "a", &a), 0);
	for (int64_t k = 0; k < 3; k++)
		commit_k(s, m, k);
	pl_store_close(s);
	s = open_ok(t.path, PL_STORE_DEFER_CHECK);
	assert_int_equal(pl_store_next_batch(s, a, 4, out, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(pl_store_check(s), 0);
	assert_int_equal(pl_store_ack(s, a, out[2].seq), 0);
	commit_k(s, m, 3);
	pl_store_close(s);
	s = open_ok(t.path, PL_STORE_DEFER_CHECK); /* and a write without an explicit check */
	commit_k(s, m, 4);
	assert_int_equal(pl_store_next_batch(s, a, 4, out, &n), 0);
	assert_int_equal(n, 2);
	pl_store_close(s);
	tmp_remove(&t);
}

/* Another process reads the store with the sqlite3 program and exits (what a backup script
 * or a dashboard does). Not SQLite in a forked child: it would inherit this process's view of
 * the file's locks. */
static void foreign_reader(const char *path)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0)
			dup2(null, STDOUT_FILENO);
		execlp("sqlite3", "sqlite3", path, "SELECT COUNT(*) FROM records", (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/*
 * Issue 9, fault 1: a second connection of the same process (a sink's thread) used to open and
 * close the database file by hand, dropping the first one's POSIX locks; the next reader of
 * another process to close then took itself for the last connection and deleted the WAL the
 * daemon still writes into. The WAL must stay, and what is committed after the reader must be
 * seen by the next one.
 */
static void test_second_connection_keeps_locks(void **state)
{
	struct pl_store *s, *b, *r;
	struct stat before, after;
	char wal[160];
	struct tmp t;
	int64_t m, n;

	(void)state;
	tmp_make(&t);
	snprintf(wal, sizeof(wal), "%s-wal", t.path);
	s = open_ok(t.path, PL_STORE_CREATE);
	assert_int_equal(pl_store_meter(s, "m", 1000, 20, &m), 0);
	commit_k(s, m, 0);
	b = open_ok(t.path, PL_STORE_NOCHECK); /* the sink thread's connection */
	r = open_ok(t.path, PL_STORE_READONLY); /* and `status` in this process */
	pl_store_close(r);
	assert_int_equal(stat(wal, &before), 0);
	foreign_reader(t.path);
	assert_int_equal(stat(wal, &after), 0); /* still there, */
	assert_true(before.st_ino == after.st_ino); /* the same file */
	commit_k(s, m, 1);
	pl_store_close(b);
	/* a new connection sees both records */
	r = open_ok(t.path, PL_STORE_READONLY);
	n = sql_int(r, "SELECT COUNT(*) FROM records");
	assert_int_equal(n, 2);
	pl_store_close(r);
	pl_store_close(s);
	tmp_remove(&t);
}

/* A reader writes nothing: a new (empty) file, an older schema, a write are refused. */
static void test_readonly(void **state)
{
	struct pl_store *s = NULL, *r;
	char err[512];
	struct tmp t;
	int64_t m, id;
	int fd;

	(void)state;
	tmp_make(&t);
	fd = open(t.path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(pl_store_open(t.path, PL_STORE_READONLY, &s, err, sizeof(err)),
			 -PL_ENOENT);
	assert_non_null(strstr(err, "empty"));
	assert_int_equal(pl_store_open(t.path, PL_STORE_READONLY | PL_STORE_CREATE, &s, err,
				       sizeof(err)), -PL_EINVAL);
	s = open_ok(t.path, PL_STORE_CREATE);
	assert_int_equal(pl_store_meter(s, "m", 1000, 20, &m), 0);
	commit_k(s, m, 0);
	r = open_ok(t.path, PL_STORE_READONLY);
	assert_int_equal(pl_store_sink(r, "new", &id), -PL_EIO); /* a write: refused */
	assert_int_equal(sql_int(r, "SELECT COUNT(*) FROM sinks"), 0);
	pl_store_close(r);
	pl_store_close(s);
	tmp_remove(&t);
}

/* A new store is 0600 whatever the umask; an existing one keeps its mode. */
static void test_private_mode(void **state)
{
	struct pl_store *s;
	struct stat sb;
	struct tmp t;
	char name[160];
	mode_t old = umask(022);
	int64_t m;

	(void)state;
	tmp_make(&t);
	s = open_ok(t.path, PL_STORE_CREATE);
	assert_int_equal(pl_store_meter(s, "m", 1000, 20, &m), 0);
	commit_k(s, m, 0);
	assert_int_equal(stat(t.path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	snprintf(name, sizeof(name), "%s-wal", t.path);
	assert_int_equal(stat(name, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	pl_store_close(s);
	assert_int_equal(chmod(t.path, 0640), 0);
	s = open_ok(t.path, PL_STORE_CREATE);
	pl_store_close(s);
	assert_int_equal(stat(t.path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0640);
	umask(old);
	tmp_remove(&t);
}

/* One logger per store: a second lock is refused with the holder's PID. */
static void test_lock(void **state)
{
	char err[512], want[64], name[160];
	struct tmp t;
	int fd, fd2, status;
	pid_t pid;

	(void)state;
	tmp_make(&t);
	assert_int_equal(pl_store_lock(t.path, &fd, err, sizeof(err)), 0);
	pid = fork(); /* flock() is per open file: another process must find it taken */
	assert_true(pid >= 0);
	if (pid == 0) {
		int rc = pl_store_lock(t.path, &fd2, err, sizeof(err));

		snprintf(want, sizeof(want), "(PID %ld)", (long)getppid());
		_exit(rc == -PL_EBUSY && strstr(err, want) != NULL ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(fd);
	assert_int_equal(pl_store_lock(t.path, &fd2, err, sizeof(err)), 0);
	close(fd2);
	snprintf(name, sizeof(name), "%s.lock", t.path);
	unlink(name);
	tmp_remove(&t);
}

/* The file deleted or replaced under an open store: noticed; the content saved intact. */
static void test_moved_and_saved(void **state)
{
	struct pl_store *s, *c;
	char copy[160], other[160];
	struct tmp t;
	int64_t m;

	(void)state;
	tmp_make(&t);
	snprintf(copy, sizeof(copy), "%s/copy.db", t.dir);
	snprintf(other, sizeof(other), "%s/other", t.dir);
	s = open_ok(t.path, PL_STORE_CREATE);
	assert_int_equal(pl_store_meter(s, "m", 1000, 20, &m), 0);
	for (int64_t k = 0; k < 5; k++)
		commit_k(s, m, k);
	assert_int_equal(pl_store_moved(s), PL_STORE_IN_PLACE);
	assert_int_equal(unlink(t.path), 0);
	assert_int_equal(pl_store_moved(s), PL_STORE_DELETED);
	commit_k(s, m, 5); /* into the deleted file: still readable through s */
	write_all(other, "mine", 4);
	assert_int_equal(rename(other, t.path), 0);
	assert_int_equal(pl_store_moved(s), PL_STORE_REPLACED);
	assert_int_equal(pl_store_save_copy(s, copy), 0);
	assert_int_equal(pl_store_save_copy(s, copy), -PL_EIO); /* never over a file */
	pl_store_close_moved(s);
	c = open_ok(copy, PL_STORE_READONLY);
	assert_int_equal(sql_int(c, "SELECT COUNT(*) FROM records"), 6);
	pl_store_close(c);
	snprintf(other, sizeof(other), "%s-wal", t.path);
	assert_int_equal(access(other, F_OK), -1); /* its own log gone, not left beside "mine" */
	tmp_remove(&t);
}

/* In a child: tries to open path (as `nobody` when run as root); exits with -rc. */
static int open_in_child(const char *path, unsigned flags, char *msg, size_t cap)
{
	int fds[2], status;
	pid_t pid;
	ssize_t got;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct pl_store *s;
		char err[512];
		int rc;

		close(fds[0]);
		if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
			_exit(100);
		rc = pl_store_open(path, flags, &s, err, sizeof(err));
		if (rc == 0)
			pl_store_close(s);
		if (write(fds[1], err, strlen(err) + 1) < 0)
			_exit(101);
		_exit(-rc);
	}
	close(fds[1]);
	got = read(fds[0], msg, cap - 1);
	msg[got > 0 ? got : 0] = '\0';
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return -WEXITSTATUS(status);
}

static void test_unwritable(void **state)
{
	struct pl_store *s;
	struct tmp t;
	char path[300], msg[600], err[512];
	int64_t meter;
	size_t len0, len1;
	uint64_t before;

	(void)state;
	tmp_make(&t);
	/* A directory that does not exist, and a directory given as the store. */
	snprintf(path, sizeof(path), "%s/no/such/dir/store.db", t.dir);
	assert_int_equal(pl_store_open(path, PL_STORE_CREATE, &s, err, sizeof(err)), -PL_EIO);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file or directory"));
	assert_int_equal(pl_store_open(t.dir, PL_STORE_CREATE, &s, err, sizeof(err)), -PL_EIO);
	assert_non_null(strstr(err, "is a directory"));

	/* A store made, then made read-only (file and directory; the child is not root). */
	s = open_ok(t.path, PL_STORE_CREATE);
	assert_int_equal(pl_store_meter(s, "m", 1000, 20, &meter), 0);
	commit_k(s, meter, 0);
	pl_store_close(s);
	assert_int_equal(chmod(t.dir, 0755), 0);
	assert_int_equal(chmod(t.path, 0444), 0);
	before = file_digest(t.path, &len0);
	assert_int_equal(open_in_child(t.path, PL_STORE_CREATE, msg, sizeof(msg)), -PL_EIO);
	assert_non_null(strstr(msg, t.path));
	assert_non_null(strstr(msg, "read-only"));
	assert_true(file_digest(t.path, &len1) == before);
	assert_int_equal(len0, len1);
	/* A reader without write access to the directory, the logger stopped (no -shm): it
	 * says why and what to do. */
	if (geteuid() == 0) {
		assert_int_equal(open_in_child(t.path, PL_STORE_READONLY, msg, sizeof(msg)), -PL_EIO);
		assert_non_null(strstr(msg, "the logger is not running and SQLite cannot create"));
		assert_true(file_digest(t.path, &len1) == before);
	}
	/* Writable file in a read-only directory: SQLite cannot make its WAL index. */
	assert_int_equal(chmod(t.path, 0666), 0);
	assert_int_equal(chmod(t.dir, 0555), 0);
	assert_int_equal(open_in_child(t.path, PL_STORE_CREATE, msg, sizeof(msg)), -PL_EIO);
	assert_non_null(strstr(msg, t.path));
	assert_non_null(strstr(msg, "read-only"));
	/* A new store in a read-only directory. */
	snprintf(path, sizeof(path), "%s/new.db", t.dir);
	assert_int_equal(open_in_child(path, PL_STORE_CREATE, msg, sizeof(msg)), -PL_EIO);
	assert_non_null(strstr(msg, path));
	assert_non_null(strstr(msg, "Permission denied"));
	assert_int_equal(chmod(t.dir, 0700), 0);

	/* Still intact for its owner. */
	s = open_ok(t.path, 0);
	assert_int_equal(sql_int(s, "SELECT COUNT(*) FROM records"), 1);
	pl_store_close(s);
	tmp_remove(&t);
}

static void test_disk_full(void **state)
{
	unsigned char big[3000], got[3000];
	struct pl_interval_record r;
	struct pl_store *s;
	struct tmp t;
	int64_t meter, k, pages;
	size_t len;
	char sql[100];
	int rc = 0;

	(void)state;
	tmp_make(&t);
	s = open_ok(t.path, PL_STORE_CREATE);
	assert_int_equal(pl_store_meter(s, "m", 1000, 20, &meter), 0);
	commit_k(s, meter, 0);
	/* The disk is full at the current size plus a few pages: 16 KiB, whatever their size. */
	pages = sql_int(s, "PRAGMA page_count");
	snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld",
		 (long long)(pages + 16384 / sql_int(s, "PRAGMA page_size")));
	assert_int_equal(sqlite3_exec(pl_store_sqlite(s), sql, NULL, NULL, NULL), SQLITE_OK);
	for (k = 1; k < 1000; k++) {
		r = rec_of(k);
		memset(big, (int)k, sizeof(big));
		rc = pl_store_commit_interval(s, meter, &r, 1, big, sizeof(big));
		if (rc != 0)
			break;
	}
	assert_int_equal(rc, -PL_ENOSPC);
	assert_true(k > 1);
	assert_non_null(strstr(pl_store_error(s), "disk full"));
	assert_non_null(strstr(pl_store_error(s), t.path));
	/* The failed interval left nothing: records and checkpoint are those of k - 1. */
	assert_int_equal(sql_int(s, "SELECT COUNT(*) FROM records"), k);
	assert_int_equal(pl_store_load_checkpoint(s, meter, got, sizeof(got), &len), 0);
	assert_int_equal(len, sizeof(big));
	assert_int_equal(got[0], (unsigned char)(k - 1));
	/* It fails the same way again, and recovers when space comes back. */
	assert_int_equal(pl_store_commit_interval(s, meter, &r, 1, big, sizeof(big)), -PL_ENOSPC);
	assert_int_equal(sqlite3_exec(pl_store_sqlite(s), "PRAGMA max_page_count = 1000000", NULL,
				      NULL, NULL), SQLITE_OK);
	assert_int_equal(pl_store_commit_interval(s, meter, &r, 1, big, sizeof(big)), 0);
	pl_store_close(s);
	s = open_ok(t.path, 0);
	assert_int_equal(sql_int(s, "SELECT COUNT(*) FROM records"), k + 1);
	assert_int_equal(pl_store_load_checkpoint(s, meter, got, sizeof(got), &len), 0);
	assert_int_equal(got[0], (unsigned char)k);
	pl_store_close(s);
	tmp_remove(&t);
}

/* Progress messages from the writer child: before and after each commit. */
struct progress {
	int32_t after; /* 0 before the commit of k, 1 after it returned 0 */
	int32_t k;
};

/* The writer: resumes from its checkpoint (committing that interval again) and goes on. */
/* With an intake (pl_store_intake), merged this often; 0: none. */
static unsigned writer_merge_s;

static void writer(const char *path, int fd)
{
	unsigned char st[STATE_LEN];
	struct pl_interval_record r[2];
	struct pl_store *s;
	int64_t meter, k = 0;
	size_t len;
	int rc;

	if (pl_store_open(path, 0, &s, NULL, 0) != 0 || pl_store_meter(s, "m", 1000, 20, &meter))
		_exit(2);
	if (writer_merge_s > 0 && pl_store_intake(s, writer_merge_s) != 0)
		_exit(6);
	rc = pl_store_load_checkpoint(s, meter, st, sizeof(st), &len);
	if (rc == 0 && len == STATE_LEN)
		k = state_k(st);
	else if (rc != -PL_ENOENT)
		_exit(3);
	for (;; k++) {
		struct progress p = { 0, (int32_t)k };
		size_t n = 1;

		r[0] = rec_of(k);
		if (k > 0 && k % 4 == 0) /* sometimes the previous one again in the same commit */
			r[n++] = rec_of(k - 1);
		state_of(k, st);
		if (write(fd, &p, sizeof(p)) != (ssize_t)sizeof(p))
			_exit(4);
		if (pl_store_commit_interval(s, meter, r, n, st, sizeof(st)) != 0)
			_exit(5);
		p.after = 1;
		if (write(fd, &p, sizeof(p)) != (ssize_t)sizeof(p))
			_exit(4);
	}
}

#define MAX_K 100000

static void crash_exactly_once(void)
{
	unsigned char st[STATE_LEN], want[STATE_LEN];
	static uint8_t delivered[MAX_K];
	struct pl_store_record out[37];
	struct pl_store *s;
	struct tmp t;
	int64_t meter, sink, cp = -1;
	int rounds = getenv("PL_VALGRIND") != NULL ? 4 : 20;
	int mid_commit = 0, before_ack = 0; /* where the kills landed */

	memset(delivered, 0, sizeof(delivered));
	rng_state = getenv("PL_STORE_SEED") != NULL ?
			    strtoull(getenv("PL_STORE_SEED"), NULL, 0) :
			    (uint64_t)time(NULL);
	rng_state |= 1;
	print_message("crash test seed %llu\n", (unsigned long long)rng_state);
	tmp_make(&t);
	s = open_ok(t.path, PL_STORE_CREATE);
	assert_int_equal(pl_store_meter(s, "m", 1000, 20, &meter), 0);
	assert_int_equal(pl_store_sink(s, "influx", &sink), 0);
	pl_store_close(s);

	for (int round = 0; round < rounds; round++) {
		int fds[2], status, afters = 0, target = 1 + (int)(rnd() % 12);
		int64_t last_before = -1, last_after = -1;
		struct progress p;
		size_t len, n;
		pid_t pid;

		assert_int_equal(pipe(fds), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			writer(t.path, fds[1]);
			_exit(1);
		}
		close(fds[1]);
		/* Let it make some progress, then kill it at a random moment. */
		while (afters < target && read(fds[0], &p, sizeof(p)) == (ssize_t)sizeof(p)) {
			if (p.after) {
				last_after = p.k;
				afters++;
			} else {
				last_before = p.k;
			}
		}
		usleep((useconds_t)(rnd() % 4000));
		assert_int_equal(kill(pid, SIGKILL), 0);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
			fail_msg("writer ended by itself: status %d", status);
		while (read(fds[0], &p, sizeof(p)) == (ssize_t)sizeof(p)) {
			if (p.after)
				last_after = p.k;
			else
				last_before = p.k;
		}
		close(fds[0]);
		assert_true(last_after >= 0);

		/* Everything acknowledged is there; the checkpoint is the last interval. */
		s = open_ok(t.path, 0);
		assert_int_equal(pl_store_load_checkpoint(s, meter, st, sizeof(st), &len), 0);
		assert_int_equal(len, STATE_LEN);
		cp = state_k(st);
		if (cp < last_after || cp > last_before)
			fail_msg("checkpoint %lld, acknowledged %lld, attempted %lld",
				 (long long)cp, (long long)last_after, (long long)last_before);
		mid_commit += cp < last_before;
		before_ack += cp > last_after;
		state_of(cp, want);
		assert_memory_equal(st, want, STATE_LEN);
		assert_true(cp < MAX_K);
		/* Exactly the intervals 0..cp, each once, each with its fields. */
		assert_int_equal(sql_int(s, "SELECT COUNT(*) FROM records"), cp + 1);
		do {
			assert_int_equal(pl_store_next_batch(s, sink, 1 + rnd() % 37, out, &n), 0);
			for (size_t i = 0; i < n; i++) {
				int64_t k = (out[i].rec.start_us - T0) / (20 * PL_US_PER_S);
				struct pl_interval_record r = rec_of(k);

				assert_true(k >= 0 && k <= cp);
				assert_rec_equal(&out[i].rec, &r);
				assert_int_equal(delivered[k], 0);
				delivered[k] = 1;
			}
			if (n > 0)
				assert_int_equal(pl_store_ack(s, sink, out[n - 1].seq), 0);
		} while (n > 0);
		pl_store_close(s);
	}
	for (int64_t k = 0; k <= cp; k++)
		assert_int_equal(delivered[k], 1);
	print_message("%d kills, %lld intervals; killed in a commit: %d rolled back, %d kept "
		      "though not yet acknowledged\n", rounds, (long long)cp + 1,
		      mid_commit, before_ack);
	tmp_remove(&t);
}

/*
 * A logger with an intake that commits intervals from..to-1 of meter "m" (after sink "influx"
 * acknowledged everything up to ack_seq through a second handle, as the daemon's sink thread
 * does, when ack_seq > 0) and then dies without closing: what it leaves is in the intake.
 */
static void intake_run(const char *path, int64_t from, int64_t to, int64_t ack_seq)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct pl_store *s, *r;
		int64_t m, sink;

		if (pl_store_open(path, PL_STORE_CREATE, &s, NULL, 0) != 0 ||
		    pl_store_meter(s, "m", 1000, 20, &m) != 0 ||
		    pl_store_sink(s, "influx", &sink) != 0 || pl_store_intake(s, 3600) != 0)
			_exit(2);
		if (ack_seq > 0 && (pl_store_open(path, 0, &r, NULL, 0) != 0 ||
				    pl_store_ack(r, sink, ack_seq) != 0))
			_exit(3);
		for (int64_t k = from; k < to; k++) {
			struct pl_interval_record rec = rec_of(k);
			unsigned char st[STATE_LEN];

			state_of(k, st);
			if (pl_store_commit_interval(s, m, &rec, 1, st, sizeof(st)) != 0)
				_exit(4);
		}
		_exit(0); /* no pl_store_close(): as a crash, nothing merged */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* The intervals a reader sees: exactly 0..n-1, each once, the checkpoint that of n-1. */
static void assert_intervals(const char *path, int64_t n)
{
	struct pl_store *s = open_ok(path, 0); /* a handle that is not the writer */
	unsigned char st[STATE_LEN];
	struct pl_interval_record last;
	int64_t meter;
	size_t len;

	assert_int_equal(pl_store_meter(s, "m", 1000, 20, &meter), 0);
	assert_int_equal(pl_store_load_checkpoint(s, meter, st, sizeof(st), &len), 0);
	assert_int_equal(state_k(st), n - 1);
	assert_int_equal(pl_store_last_record(s, meter, &last), 0);
	struct pl_interval_record want = rec_of(n - 1);
	assert_rec_equal(&last, &want);
	assert_int_equal(sql_int(s, "SELECT COUNT(*) FROM records"), n);
	assert_int_equal(sql_int(s, "SELECT COUNT(DISTINCT start_us) FROM records"), n);
	assert_int_equal(sql_int(s, "SELECT MIN(start_us) FROM records"), T0);
	assert_int_equal(sql_int(s, "SELECT MAX(seq) - MIN(seq) + 1 FROM records"), n);
	pl_store_close(s);
}

/*
 * What a crash leaves in the intake: the blocks up to the first torn one count, those after it
 * (and the blocks of an older generation, still in the file after a merge) do not, for readers
 * and for the next writer's replay.
 */
static void test_intake_torn_and_stale_blocks(void **state)
{
	char name[200];
	unsigned char byte;
	struct pl_store *s;
	struct tmp t;
	int fd;

	(void)state;
	tmp_make(&t);
	intake_run(t.path, 0, 10, 0); /* blocks 0..9 of generation 1 */
	assert_intervals(t.path, 10);
	s = open_ok(t.path, PL_STORE_READONLY);
	assert_int_equal(sql_int(s, "SELECT COUNT(*) FROM main.records"), 0); /* none merged */
	pl_store_close(s);
	/* a power cut in the middle of block 6: its CRC fails */
	snprintf(name, sizeof(name), "%s.intake", t.path);
	fd = open(name, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &byte, 1, 6 * 4096 + 300), 1);
	byte ^= 0x5a;
	assert_int_equal(pwrite(fd, &byte, 1, 6 * 4096 + 300), 1);
	close(fd);
	assert_intervals(t.path, 6);
	/* the next writer replays blocks 0..5 and goes on from interval 6: one more block, of
	 * generation 2, over block 0; blocks 1..9 of generation 1 are still in the file */
	intake_run(t.path, 6, 7, 0);
	assert_intervals(t.path, 7);
	s = open_ok(t.path, PL_STORE_READONLY);
	assert_int_equal(sql_int(s, "SELECT COUNT(*) FROM main.records"), 6);
	pl_store_close(s);
	/* closed cleanly: everything in the database, the intake counts for nothing */
	s = open_ok(t.path, 0);
	assert_int_equal(pl_store_intake(s, 3600), 0);
	pl_store_close(s);
	s = open_ok(t.path, PL_STORE_READONLY);
	assert_int_equal(sql_int(s, "SELECT COUNT(*) FROM main.records"), 7);
	pl_store_close(s);
	assert_intervals(t.path, 7);
	tmp_remove(&t);
}

/* An intake beside another database (a store deleted and made again, the file copied) is not
 * that database's: its blocks carry their database's mark. */
static void test_intake_of_another_database(void **state)
{
	char from[200], to[200], other[160];
	struct pl_store *s;
	size_t len;
	char *bytes;
	struct tmp t;

	(void)state;
	tmp_make(&t);
	snprintf(other, sizeof(other), "%s/other.db", t.dir);
	intake_run(t.path, 0, 5, 0);
	intake_run(other, 0, 0, 0); /* a new store whose blocks would be of t.path's generation */
	snprintf(from, sizeof(from), "%s.intake", t.path);
	snprintf(to, sizeof(to), "%s.intake", other);
	bytes = read_all(from, &len);
	write_all(to, bytes, len);
	free(bytes);
	s = open_ok(other, PL_STORE_READONLY);
	assert_int_equal(sql_int(s, "SELECT COUNT(*) FROM records"), 0);
	pl_store_close(s);
	s = open_ok(other, 0);
	assert_int_equal(pl_store_intake(s, 3600), 0); /* the replay takes nothing */
	pl_store_close(s);
	s = open_ok(other, PL_STORE_READONLY);
	assert_int_equal(sql_int(s, "SELECT COUNT(*) FROM main.records"), 0);
	pl_store_close(s);
	assert_intervals(t.path, 5);
	tmp_remove(&t);
}

/*
 * A copy taken by a reader (powerlogger backup) while the intake holds intervals has them,
 * merged into the copy, which is then one file; an acknowledgement made through another handle
 * of the writer's process is carried by the writer's next block and survives the crash.
 */
static void test_intake_copy_and_acks(void **state)
{
	char copy[160], name[200];
	struct pl_store *s;
	uint64_t backlog = 0;
	int64_t oldest, sink;
	struct tmp t;

	(void)state;
	tmp_make(&t);
	snprintf(copy, sizeof(copy), "%s/copy.db", t.dir);
	intake_run(t.path, 0, 4, 0);
	intake_run(t.path, 4, 9, 3); /* seqs 1..3 acknowledged, then intervals 4..8 */
	s = open_ok(t.path, 0);
	assert_int_equal(pl_store_sink(s, "influx", &sink), 0);
	assert_int_equal(pl_store_backlog(s, sink, &backlog, &oldest), 0);
	assert_int_equal(backlog, 6);
	assert_true(oldest == rec_of(3).start_us);
	assert_int_equal(pl_store_save_copy(s, copy), 0);
	pl_store_close(s);
	snprintf(name, sizeof(name), "%s.intake", copy);
	assert_int_equal(access(name, F_OK), -1);
	s = open_ok(copy, 0);
	assert_int_equal(sql_int(s, "SELECT COUNT(*) FROM main.records"), 9);
	assert_int_equal(pl_store_sink(s, "influx", &sink), 0);
	assert_int_equal(pl_store_backlog(s, sink, &backlog, &oldest), 0);
	assert_int_equal(backlog, 6);
	pl_store_close(s);
	assert_intervals(copy, 9);
	assert_intervals(t.path, 9);
	tmp_remove(&t);
}

/*
 * A full disk with the intake: appends go on into its allocated blocks; the merge when it is
 * full fails, and that commit is refused with -PL_ENOSPC and nothing lost; with room again the
 * same commit succeeds, and every interval is there once.
 */
static void test_intake_disk_full(void **state)
{
	unsigned char st[STATE_LEN];
	struct pl_interval_record r;
	struct pl_store *s;
	struct tmp t;
	int64_t meter, k, refused = -1;
	char sql[100];
	int rc;

	(void)state;
	tmp_make(&t);
	s = open_ok(t.path, PL_STORE_CREATE);
	assert_int_equal(pl_store_meter(s, "m", 1000, 20, &meter), 0);
	assert_int_equal(pl_store_intake(s, 3600), 0);
	snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld",
		 (long long)sql_int(s, "PRAGMA page_count"));
	assert_int_equal(sqlite3_exec(pl_store_sqlite(s), sql, NULL, NULL, NULL), SQLITE_OK);
	for (k = 0; k < 300; k++) {
		r = rec_of(k);
		state_of(k, st);
		rc = pl_store_commit_interval(s, meter, &r, 1, st, sizeof(st));
		if (rc != 0) {
			assert_int_equal(rc, -PL_ENOSPC);
			assert_non_null(strstr(pl_store_error(s), "disk full"));
			refused = k;
			break;
		}
	}
	assert_int_equal(refused, 256); /* the intake's 256 blocks, then the merge */
	assert_int_equal(sqlite3_exec(pl_store_sqlite(s), "PRAGMA max_page_count = 1000000", NULL,
				      NULL, NULL), SQLITE_OK);
	for (k = refused; k < 300; k++)
		commit_k(s, meter, k);
	pl_store_close(s);
	assert_intervals(t.path, 300);
	tmp_remove(&t);
}

static void test_crash_exactly_once(void **state)
{
	(void)state;
	writer_merge_s = 0;
	crash_exactly_once();
}

/*
 * The same with the daemon's intake: the kills land in appends (a block half written), in the
 * replay of the last round's blocks when the writer opens, in merges (every second, and when
 * the file is full). The reader between rounds has no writer in its process: it reads the
 * intake as if merged.
 */
static void test_crash_exactly_once_intake(void **state)
{
	(void)state;
	writer_merge_s = 1;
	crash_exactly_once();
	writer_merge_s = 0;
}

/*
 * The acknowledgement is not synced (pl_store_ack), but a crash of the process alone must lose
 * none: its WAL frames are in the page cache. A child commits and acknowledges through a
 * second connection, as the daemon's sink thread does, and is killed with SIGKILL at random
 * moments; the cursor must be at least the last acknowledgement that returned and at most the
 * last one begun.
 */
static void test_ack_survives_kill(void **state)
{
	struct tmp t;
	int64_t meter, sink, begun = 0, returned = 0;
	struct pl_store *s;

	(void)state;
	rng_state = (uint64_t)time(NULL) | 1;
	tmp_make(&t);
	s = open_ok(t.path, PL_STORE_CREATE);
	assert_int_equal(pl_store_meter(s, "m", 1000, 20, &meter), 0);
	assert_int_equal(pl_store_sink(s, "influx", &sink), 0);
	pl_store_close(s);
	for (int round = 0; round < 10; round++) {
		int64_t msg[2], cursor;
		int fds[2], status, seen = 0, want = 20 + (int)(rnd() % 40);
		pid_t pid;

		assert_int_equal(pipe(fds), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct pl_store_record out[16];
			struct pl_store *c, *d;
			size_t n;
			int64_t k;

			close(fds[0]);
			if (pl_store_open(t.path, 0, &c, NULL, 0) != 0 ||
			    pl_store_open(t.path, PL_STORE_NOCHECK, &d, NULL, 0) != 0)
				_exit(2);
			for (k = sql_int(c, "SELECT COUNT(*) FROM records");; k++) {
				commit_k(c, meter, k);
				if (pl_store_next_batch(d, sink, 16, out, &n) != 0 || n == 0)
					_exit(3);
				msg[0] = 'A';
				msg[1] = out[n - 1].seq;
				if (write(fds[1], msg, sizeof(msg)) != (ssize_t)sizeof(msg) ||
				    pl_store_ack(d, sink, out[n - 1].seq) != 0)
					_exit(4);
				msg[0] = 'a';
				if (write(fds[1], msg, sizeof(msg)) != (ssize_t)sizeof(msg))
					_exit(5);
			}
		}
		close(fds[1]);
		for (;;) {
			if (seen == want) {
				usleep((useconds_t)(rnd() % 3000));
				assert_int_equal(kill(pid, SIGKILL), 0);
			}
			if (read(fds[0], msg, sizeof(msg)) != (ssize_t)sizeof(msg))
				break; /* the child is gone and the pipe drained */
			seen++;
			if (msg[0] == 'A')
				begun = msg[1];
			else
				returned = msg[1];
		}
		close(fds[0]);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
			fail_msg("writer ended by itself: status %d", status);
		s = open_ok(t.path, 0);
		cursor = sql_int(s, "SELECT cursor FROM sinks WHERE name = 'influx'");
		pl_store_close(s);
		if (cursor < returned || cursor > begun)
			fail_msg("round %d: cursor %lld, acknowledged %lld, begun %lld", round,
				 (long long)cursor, (long long)returned, (long long)begun);
		returned = cursor; /* the next round begins from the store's cursor */
	}
	tmp_remove(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checkpoint_round_trip),
		cmocka_unit_test(test_recommit_is_harmless),
		cmocka_unit_test(test_cursors_per_sink),
		cmocka_unit_test(test_quarantine_advances),
		cmocka_unit_test(test_backlog),
		cmocka_unit_test(test_register_at),
		cmocka_unit_test(test_pending_and_after),
		cmocka_unit_test(test_sink_state),
		cmocka_unit_test(test_upgrade_from_v1),
		cmocka_unit_test(test_new_store_layout),
		cmocka_unit_test(test_prune_policy),
		cmocka_unit_test(test_prune_ignores_removed_sink),
		cmocka_unit_test(test_foreign_files_refused),
		cmocka_unit_test(test_deferred_check),
		cmocka_unit_test(test_unwritable),
		cmocka_unit_test(test_disk_full),
		cmocka_unit_test(test_crash_exactly_once),
		cmocka_unit_test(test_crash_exactly_once_intake),
		cmocka_unit_test(test_intake_torn_and_stale_blocks),
		cmocka_unit_test(test_intake_of_another_database),
		cmocka_unit_test(test_intake_copy_and_acks),
		cmocka_unit_test(test_intake_disk_full),
		cmocka_unit_test(test_ack_survives_kill),
		cmocka_unit_test(test_second_connection_keeps_locks),
		cmocka_unit_test(test_readonly),
		cmocka_unit_test(test_private_mode),
		cmocka_unit_test(test_lock),
		cmocka_unit_test(test_moved_and_saved),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
