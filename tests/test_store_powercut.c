/* SPDX-License-Identifier: MIT */
/*
 * Power cuts under the store (src/linux/store/store.c), with a fake of the disk: a SQLite VFS
 * shim that passes everything to the real unix VFS and keeps, per file, what a power cut would
 * leave. A kill -9 (test_store.c) loses nothing that reached the page cache; only a fake can
 * show what an unsynced write costs, since a real power cut cannot be made in a test.
 *
 * The fake disk: at every xSync of the database or its WAL the file's whole content is copied
 * aside as its durable image; every xWrite and xTruncate after that is logged in order. The
 * writer runs in a child process with the shim as its default VFS and stops dead (_exit, no
 * close, no checkpoint) at a random I/O operation, before performing it. The parent then makes
 * each file what the disk could hold after the cut: the durable image, plus a random prefix of
 * the logged operations, the last of which may be torn (only its first bytes written); the
 * -shm goes (SQLite rebuilds it from the WAL). Then it opens the store as a restarted logger
 * would and checks:
 *  - every interval whose commit returned is there, intact, and the checkpoint is at least as
 *    new as the newest of them (durable before acknowledged);
 *  - the sink's cursor is never ahead of what was acknowledged (at most the highest seq an
 *    acknowledgement was started for: a resend, never a skip), never past the records, and at
 *    least the last acknowledgement that returned before a later commit returned (the ack
 *    rides on the next commit's sync, from the other connection);
 *  - the store passes its integrity check (pl_store_open runs quick_check).
 * The child acknowledges through a second connection, as the daemon's sink thread does, and
 * checkpoints often (wal_autocheckpoint 40) so that cuts also land in checkpoints and WAL
 * restarts. Rounds go on in the same store, the writer resuming from its checkpoint.
 * PL_TEST_SEED repeats a run.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
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

#define T0 (INT64_C(1700000000) * PL_US_PER_S)
#define STATE_LEN 1400 /* about the daemon's checkpoint: it spills into overflow pages */
#define STATE_VERSION 0x50433031u /* "PC01" */
#define MAX_K 20000
#define ROUNDS 40 /* PL_POWERCUT_ROUNDS sets another number (check-arm.sh: fewer under qemu) */

/* ---- the fake disk: a VFS shim ------------------------------------------------------- */

struct pc_file {
	sqlite3_file base;
	sqlite3_file *real; /* the unix VFS's file, allocated right after this struct */
	int tracked;        /* the database or its WAL */
	char path[512];
};

static sqlite3_vfs *pc_real;
static sqlite3_vfs pc_vfs;
static long pc_ops, pc_cut_at; /* the child dies before operation pc_cut_at */

/* Counts an operation and dies before the one chosen: a power cut there. */
static void pc_tick(void)
{
	if (++pc_ops == pc_cut_at)
		_exit(0);
}

static void pc_log(const char *path, char op, sqlite3_int64 off, const void *data, int len)
{
	char name[600];
	int32_t n = len;
	int fd;

	snprintf(name, sizeof(name), "%s.pending", path);
	fd = open(name, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd < 0 || write(fd, &op, 1) != 1 || write(fd, &off, sizeof(off)) != sizeof(off) ||
	    write(fd, &n, sizeof(n)) != sizeof(n) ||
	    (len > 0 && write(fd, data, (size_t)len) != len))
		_exit(90);
	close(fd);
}

static int pc_close(sqlite3_file *p)
{
	struct pc_file *f = (struct pc_file *)p;

	return f->real->pMethods->xClose(f->real);
}

static int pc_read(sqlite3_file *p, void *buf, int amt, sqlite3_int64 off)
{
	struct pc_file *f = (struct pc_file *)p;

	return f->real->pMethods->xRead(f->real, buf, amt, off);
}

static int pc_write(sqlite3_file *p, const void *buf, int amt, sqlite3_int64 off)
{
	struct pc_file *f = (struct pc_file *)p;

	if (f->tracked) {
		pc_tick();
		pc_log(f->path, 'w', off, buf, amt);
	}
	return f->real->pMethods->xWrite(f->real, buf, amt, off);
}

static int pc_truncate(sqlite3_file *p, sqlite3_int64 size)
{
	struct pc_file *f = (struct pc_file *)p;

	if (f->tracked) {
		pc_tick();
		pc_log(f->path, 't', size, NULL, 0);
	}
	return f->real->pMethods->xTruncate(f->real, size);
}

/* A sync: the file as it is now is what the disk holds; nothing is pending any more. */
static int pc_sync(sqlite3_file *p, int flags)
{
	struct pc_file *f = (struct pc_file *)p;
	sqlite3_int64 size = 0;
	char name[600], buf[4096];
	int rc, fd;

	if (!f->tracked)
		return f->real->pMethods->xSync(f->real, flags);
	pc_tick();
	rc = f->real->pMethods->xSync(f->real, flags);
	if (rc != SQLITE_OK)
		return rc;
	snprintf(name, sizeof(name), "%s.durable", f->path);
	fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || f->real->pMethods->xFileSize(f->real, &size) != SQLITE_OK)
		_exit(91);
	for (sqlite3_int64 off = 0; off < size; off += (sqlite3_int64)sizeof(buf)) {
		int n = size - off < (sqlite3_int64)sizeof(buf) ? (int)(size - off) : (int)sizeof(buf);

		if (f->real->pMethods->xRead(f->real, buf, n, off) != SQLITE_OK ||
		    write(fd, buf, (size_t)n) != n)
			_exit(92);
	}
	close(fd);
	snprintf(name, sizeof(name), "%s.pending", f->path);
	unlink(name);
	return SQLITE_OK;
}

static int pc_size(sqlite3_file *p, sqlite3_int64 *size)
{
	struct pc_file *f = (struct pc_file *)p;

	return f->real->pMethods->xFileSize(f->real, size);
}

static int pc_lock(sqlite3_file *p, int l)
{
	return ((struct pc_file *)p)->real->pMethods->xLock(((struct pc_file *)p)->real, l);
}

static int pc_unlock(sqlite3_file *p, int l)
{
	return ((struct pc_file *)p)->real->pMethods->xUnlock(((struct pc_file *)p)->real, l);
}

static int pc_reserved(sqlite3_file *p, int *out)
{
	struct pc_file *f = (struct pc_file *)p;

	return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int pc_fcntl(sqlite3_file *p, int op, void *arg)
{
	struct pc_file *f = (struct pc_file *)p;

	return f->real->pMethods->xFileControl(f->real, op, arg);
}

static int pc_sector(sqlite3_file *p)
{
	return ((struct pc_file *)p)->real->pMethods->xSectorSize(((struct pc_file *)p)->real);
}

static int pc_devchar(sqlite3_file *p)
{
	struct pc_file *f = (struct pc_file *)p;

	return f->real->pMethods->xDeviceCharacteristics(f->real);
}

static int pc_shm_map(sqlite3_file *p, int pg, int sz, int extend, void volatile **pp)
{
	struct pc_file *f = (struct pc_file *)p;

	return f->real->pMethods->xShmMap(f->real, pg, sz, extend, pp);
}

static int pc_shm_lock(sqlite3_file *p, int off, int n, int flags)
{
	struct pc_file *f = (struct pc_file *)p;

	return f->real->pMethods->xShmLock(f->real, off, n, flags);
}

static void pc_shm_barrier(sqlite3_file *p)
{
	struct pc_file *f = (struct pc_file *)p;

	f->real->pMethods->xShmBarrier(f->real);
}

static int pc_shm_unmap(sqlite3_file *p, int del)
{
	struct pc_file *f = (struct pc_file *)p;

	return f->real->pMethods->xShmUnmap(f->real, del);
}

/* No memory-mapped I/O (SQLite's default, mmap_size 0): every page goes through xWrite. */
static int pc_fetch(sqlite3_file *p, sqlite3_int64 off, int amt, void **pp)
{
	(void)p;
	(void)off;
	(void)amt;
	*pp = NULL;
	return SQLITE_OK;
}

static int pc_unfetch(sqlite3_file *p, sqlite3_int64 off, void *ptr)
{
	(void)p;
	(void)off;
	(void)ptr;
	return SQLITE_OK;
}

static const sqlite3_io_methods pc_methods = {
	3, pc_close, pc_read, pc_write, pc_truncate, pc_sync, pc_size, pc_lock, pc_unlock,
	pc_reserved, pc_fcntl, pc_sector, pc_devchar, pc_shm_map, pc_shm_lock, pc_shm_barrier,
	pc_shm_unmap, pc_fetch, pc_unfetch,
};

static int pc_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *p, int flags, int *out)
{
	struct pc_file *f = (struct pc_file *)p;
	int rc;

	(void)vfs;
	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *)(f + 1);
	rc = pc_real->xOpen(pc_real, name, f->real, flags, out);
	if (rc != SQLITE_OK) {
		f->base.pMethods = NULL;
		return rc;
	}
	f->tracked = name != NULL && (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL)) &&
		     !(flags & SQLITE_OPEN_READONLY);
	snprintf(f->path, sizeof(f->path), "%s", name != NULL ? name : "");
	f->base.pMethods = &pc_methods;
	return SQLITE_OK;
}

static int pc_delete(sqlite3_vfs *v, const char *name, int sync)
{
	(void)v;
	return pc_real->xDelete(pc_real, name, sync);
}

static int pc_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
	(void)v;
	return pc_real->xAccess(pc_real, name, flags, out);
}

static int pc_fullpath(sqlite3_vfs *v, const char *name, int n, char *out)
{
	(void)v;
	return pc_real->xFullPathname(pc_real, name, n, out);
}

static int pc_random(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	return pc_real->xRandomness(pc_real, n, out);
}

static int pc_sleep(sqlite3_vfs *v, int us)
{
	(void)v;
	return pc_real->xSleep(pc_real, us);
}

static int pc_time(sqlite3_vfs *v, double *out)
{
	(void)v;
	return pc_real->xCurrentTime(pc_real, out);
}

static int pc_lasterr(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	return pc_real->xGetLastError(pc_real, n, out);
}

static int pc_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
	(void)v;
	return pc_real->xCurrentTimeInt64(pc_real, out);
}

/* Makes the shim the default VFS of this (child) process. */
static void pc_install(void)
{
	pc_real = sqlite3_vfs_find("unix");
	if (pc_real == NULL)
		_exit(93);
	memset(&pc_vfs, 0, sizeof(pc_vfs));
	pc_vfs.iVersion = 2;
	pc_vfs.szOsFile = (int)sizeof(struct pc_file) + pc_real->szOsFile;
	pc_vfs.mxPathname = pc_real->mxPathname;
	pc_vfs.zName = "powercut";
	pc_vfs.xOpen = pc_open;
	pc_vfs.xDelete = pc_delete;
	pc_vfs.xAccess = pc_access;
	pc_vfs.xFullPathname = pc_fullpath;
	pc_vfs.xRandomness = pc_random;
	pc_vfs.xSleep = pc_sleep;
	pc_vfs.xCurrentTime = pc_time;
	pc_vfs.xGetLastError = pc_lasterr;
	pc_vfs.xCurrentTimeInt64 = pc_time64;
	if (sqlite3_vfs_register(&pc_vfs, 1) != SQLITE_OK)
		_exit(94);
}

/*
 * The intake (STORE.intake) is written by the store itself with pwrite() and synced with
 * fdatasync() (fsync() when it is made), not through SQLite: this test is linked with
 * -Wl,--wrap for those calls (CMakeLists.txt), so that the store's calls come here, and the
 * intake gets the same fake disk as the database (a cut may land in each of them). Other files
 * (the test's own pipe and logs) pass straight through.
 */
ssize_t __real_pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t __real_pwrite64(int fd, const void *buf, size_t n, off_t off);
int __real_fdatasync(int fd);
int __real_fsync(int fd);
ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t __wrap_pwrite64(int fd, const void *buf, size_t n, off_t off);
int __wrap_fdatasync(int fd);
int __wrap_fsync(int fd);

static int pc_intake_on; /* in the writer child only */

/* The path of fd when it is an intake, else 0. */
static int pc_intake_path(int fd, char *path, size_t cap)
{
	char link[64];
	ssize_t n;

	if (!pc_intake_on)
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, cap - 1);
	if (n <= 7)
		return 0;
	path[n] = '\0';
	return strcmp(path + n - 7, ".intake") == 0;
}

/* The intake as it is now is what the disk holds. */
static void pc_intake_durable(const char *path)
{
	char name[600], buf[4096];
	int in, out;
	ssize_t n;

	snprintf(name, sizeof(name), "%s.durable", path);
	in = open(path, O_RDONLY);
	out = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (in < 0 || out < 0)
		_exit(96);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			_exit(97);
	close(in);
	close(out);
	snprintf(name, sizeof(name), "%s.pending", path);
	unlink(name);
}

static ssize_t pc_pwrite(int fd, const void *buf, size_t n, off_t off, int wide)
{
	char path[512];

	if (pc_intake_path(fd, path, sizeof(path))) {
		pc_tick();
		pc_log(path, 'w', off, buf, (int)n);
	}
	return wide ? __real_pwrite64(fd, buf, n, off) : __real_pwrite(fd, buf, n, off);
}

ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	return pc_pwrite(fd, buf, n, off, 0);
}

ssize_t __wrap_pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	return pc_pwrite(fd, buf, n, off, 1);
}

static int pc_fsync(int fd, int data)
{
	char path[512];
	int rc, tracked = pc_intake_path(fd, path, sizeof(path));

	if (tracked)
		pc_tick();
	rc = data ? __real_fdatasync(fd) : __real_fsync(fd);
	if (rc == 0 && tracked)
		pc_intake_durable(path);
	return rc;
}

int __wrap_fdatasync(int fd)
{
	return pc_fsync(fd, 1);
}

int __wrap_fsync(int fd)
{
	return pc_fsync(fd, 0);
}

/* ---- the writer ------------------------------------------------------------------------- */

static struct pl_interval_record rec_of(int64_t k)
{
	struct pl_interval_record r = {
		.start_us = T0 + k * 20 * PL_US_PER_S,
		.length_s = 20,
		.pulses = (uint32_t)(k % 11),
		.rejected = (uint32_t)(k % 3 == 0),
		.flags = 0,
		.energy_uwh = (k % 11) * 1000,
		.avg_mw = (k % 11) * 180,
		.peak_mw = INT64_C(4000000000) + k,
		.register_uwh = INT64_C(9876543210) + k * 1000,
	};
	return r;
}

/* The checkpoint after interval k: mostly zeros like the daemon's, with k spread through it. */
static void state_of(int64_t k, unsigned char *buf)
{
	uint32_t v = STATE_VERSION;

	memset(buf, 0, STATE_LEN);
	memcpy(buf, &v, 4);
	memcpy(buf + 4, &k, 8);
	for (size_t i = 16; i < STATE_LEN; i += 37)
		buf[i] = (unsigned char)(k * 7 + (int64_t)i);
}

/* Messages of the writer, each sent once the step named is done (or, 'A', begun). */
struct msg {
	char kind;   /* 'C' commit of k returned, 'A' ack of seq begun, 'a' ack of seq returned */
	int64_t val; /* k or seq */
};

static void say(int fd, char kind, int64_t val)
{
	struct msg m = { kind, val };

	if (write(fd, &m, sizeof(m)) != (ssize_t)sizeof(m))
		_exit(95);
}

static void writer(const char *path, long cut_at, int fd, unsigned merge_s)
{
	unsigned char st[STATE_LEN];
	struct pl_store_record batch[64];
	struct pl_store *s, *d;
	int64_t meter, sink, k = 0;
	size_t len, n;
	int rc;

	pc_install();
	pc_intake_on = 1;
	/* what the last restart left is on the disk: the durable image of each file */
	for (int i = 0; i < 2; i++) {
		char name[600];
		struct pc_file f = { .tracked = 1 };
		sqlite3_file *real = malloc((size_t)pc_real->szOsFile);
		int out;

		snprintf(f.path, sizeof(f.path), "%s%s", path, i ? "-wal" : "");
		snprintf(name, sizeof(name), "%s.pending", f.path);
		unlink(name);
		if (real == NULL || access(f.path, F_OK) != 0) {
			free(real);
			continue;
		}
		f.real = real;
		if (pc_real->xOpen(pc_real, f.path, real, SQLITE_OPEN_READWRITE |
				   (i ? SQLITE_OPEN_WAL : SQLITE_OPEN_MAIN_DB), &out) != SQLITE_OK)
			_exit(9);
		pc_cut_at = 0;
		pc_sync(&f.base, SQLITE_SYNC_NORMAL);
		real->pMethods->xClose(real);
		free(real);
	}
	{
		char name[600];

		snprintf(name, sizeof(name), "%s.intake", path);
		if (access(name, F_OK) == 0)
			pc_intake_durable(name);
	}
	if (pl_store_open(path, PL_STORE_CREATE, &s, NULL, 0) != 0 ||
	    pl_store_meter(s, "m", 1000, 20, &meter) != 0 || pl_store_sink(s, "influx", &sink) != 0)
		_exit(2);
	/* the sink's own connection, as the daemon's delivery thread has */
	if (pl_store_open(path, PL_STORE_NOCHECK, &d, NULL, 0) != 0)
		_exit(3);
	sqlite3_wal_autocheckpoint(pl_store_sqlite(s), 40);
	sqlite3_wal_autocheckpoint(pl_store_sqlite(d), 40);
	rc = pl_store_load_checkpoint(s, meter, st, sizeof(st), &len);
	if (rc == 0 && len == STATE_LEN) {
		memcpy(&k, st + 4, 8);
		k++; /* resume after the checkpointed interval */
	} else if (rc != -PL_ENOENT) {
		_exit(4);
	}
	pc_ops = 0;
	pc_cut_at = cut_at; /* from here on: the cut may come at any operation */
	/* the daemon's writer: the replay of what the last cut left, then one block per commit */
	if (merge_s > 0 && pl_store_intake(s, merge_s) != 0)
		_exit(10);
	for (; k < MAX_K; k++) {
		struct pl_interval_record r = rec_of(k);

		state_of(k, st);
		if (pl_store_commit_interval(s, meter, &r, 1, st, sizeof(st)) != 0)
			_exit(5);
		say(fd, 'C', k);
		if (pl_store_next_batch(d, sink, 64, batch, &n) != 0)
			_exit(6);
		if (n > 0 && k % 3 != 1) { /* not every time: some acks cover several records */
			say(fd, 'A', batch[n - 1].seq);
			if (pl_store_ack(d, sink, batch[n - 1].seq) != 0)
				_exit(7);
			say(fd, 'a', batch[n - 1].seq);
		}
	}
	_exit(8);
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

/* ---- the cut ---------------------------------------------------------------------------- */

/* Makes path what the disk could hold after the cut: its durable image and a random prefix of
 * the operations since, the last one possibly torn. */
static void cut_file(const char *path)
{
	char name[600];
	unsigned char *data = NULL;
	size_t cap = 0;
	FILE *log;
	long ops = 0, keep;
	int fd;

	snprintf(name, sizeof(name), "%s.durable", path);
	if (access(name, F_OK) == 0) {
		assert_int_equal(rename(name, path), 0);
	} else if (access(path, F_OK) == 0) {
		fd = open(path, O_WRONLY | O_TRUNC); /* never synced: nothing of it survives */
		assert_true(fd >= 0);
		close(fd);
	}
	snprintf(name, sizeof(name), "%s.pending", path);
	log = fopen(name, "rb");
	if (log == NULL)
		return;
	for (;;) { /* count the operations */
		char op;
		int64_t off;
		int32_t n;

		if (fread(&op, 1, 1, log) != 1 || fread(&off, 8, 1, log) != 1 ||
		    fread(&n, 4, 1, log) != 1 || fseek(log, n, SEEK_CUR) != 0)
			break;
		ops++;
	}
	rewind(log);
	keep = (long)(rnd() % (uint64_t)(ops + 1));
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	for (long i = 0; i < keep; i++) {
		char op;
		int64_t off;
		int32_t n;

		assert_int_equal(fread(&op, 1, 1, log), 1);
		assert_int_equal(fread(&off, 8, 1, log), 1);
		assert_int_equal(fread(&n, 4, 1, log), 1);
		if ((size_t)n > cap) {
			data = realloc(data, (size_t)n);
			assert_non_null(data);
			cap = (size_t)n;
		}
		assert_int_equal(fread(data, 1, (size_t)n, log), (size_t)n);
		if (op == 't') {
			assert_int_equal(ftruncate(fd, off), 0);
			continue;
		}
		if (i == keep - 1 && rnd() % 2)
			n = (int32_t)(rnd() % (uint64_t)(n + 1)); /* torn: only its first bytes */
		assert_int_equal(pwrite(fd, data, (size_t)n, off), n);
	}
	close(fd);
	fclose(log);
	free(data);
	unlink(name);
}

static void power_cuts(unsigned merge_s)
{
	char dir[64] = "/tmp/pl_powercut_XXXXXX", path[128], name[400];
	int64_t committed = -1;  /* newest interval whose commit returned, over all rounds */
	int64_t acked_safe = 0;  /* newest ack that returned before a later commit returned */
	int64_t ack_begun = 0;   /* highest seq an ack was begun for */
	uint64_t seed;
	int cuts_in_ack = 0, resent = 0, rounds = ROUNDS;

	seed = getenv("PL_TEST_SEED") ? strtoull(getenv("PL_TEST_SEED"), NULL, 10) :
					(uint64_t)time(NULL);
	printf("power cut test seed %llu\n", (unsigned long long)seed);
	rng_state = seed | 1;
	if (getenv("PL_POWERCUT_ROUNDS") && atoi(getenv("PL_POWERCUT_ROUNDS")) > 0)
		rounds = atoi(getenv("PL_POWERCUT_ROUNDS"));
	printf("power cut test: %d rounds\n", rounds);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/store.db", dir);
	for (int round = 0; round < rounds; round++) {
		int64_t acked_now = 0, last_a = 0, cursor, top, k;
		unsigned char ck_buf[STATE_LEN];
		size_t len;
		int pipefd[2], status;
		struct msg m;
		struct pl_store *s;
		char err[512];
		pid_t pid;
		FILE *in;

		assert_int_equal(pipe(pipefd), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(pipefd[0]);
			writer(path, 1 + (long)(rnd() % 600), pipefd[1], merge_s);
		}
		close(pipefd[1]);
		in = fdopen(pipefd[0], "rb");
		assert_non_null(in);
		while (fread(&m, sizeof(m), 1, in) == 1) {
			if (m.kind == 'C') {
				assert_true(m.val == committed + 1);
				committed = m.val;
				if (last_a > acked_safe)
					acked_safe = last_a; /* synced by this commit */
			} else if (m.kind == 'A') {
				if (m.val > ack_begun)
					ack_begun = m.val;
			} else {
				last_a = m.val;
			}
		}
		fclose(in);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0); /* the cut, not a failure of the writer */
		acked_now = last_a;
		/* the power cut */
		cut_file(path);
		snprintf(name, sizeof(name), "%s-wal", path);
		cut_file(name);
		snprintf(name, sizeof(name), "%s-shm", path);
		unlink(name);
		snprintf(name, sizeof(name), "%s.intake", path);
		cut_file(name);

		/* the restart: integrity check included */
		if (pl_store_open(path, 0, &s, err, sizeof(err)) != 0) {
			if (committed < 0) /* cut before the store was ever complete */
				continue;
			fail_msg("round %d: open after the cut: %s", round, err);
		}
		/* as the restarted logger: the intake's replay (into the database) first */
		if (merge_s > 0 && pl_store_intake(s, merge_s) != 0)
			fail_msg("round %d: the replay of the intake after the cut: %s", round,
				 pl_store_error(s));
		for (k = 0; k <= committed; k++) {
			struct pl_interval_record want = rec_of(k);
			sqlite3_stmt *st;

			assert_int_equal(sqlite3_prepare_v2(pl_store_sqlite(s),
							    "SELECT pulses, energy_uwh, peak_mw, "
							    "register_uwh FROM records WHERE start_us = ?",
							    -1, &st, NULL), SQLITE_OK);
			sqlite3_bind_int64(st, 1, want.start_us);
			if (sqlite3_step(st) != SQLITE_ROW)
				fail_msg("round %d: committed interval %lld lost in the cut", round,
					 (long long)k);
			assert_int_equal(sqlite3_column_int64(st, 0), want.pulses);
			assert_true(sqlite3_column_int64(st, 1) == want.energy_uwh);
			assert_true(sqlite3_column_int64(st, 2) == want.peak_mw);
			assert_true(sqlite3_column_int64(st, 3) == want.register_uwh);
			sqlite3_finalize(st);
		}
		if (pl_store_load_checkpoint(s, 1, ck_buf, sizeof(ck_buf), &len) == 0) {
			unsigned char want[STATE_LEN];
			int64_t ck;

			assert_int_equal(len, STATE_LEN);
			memcpy(&ck, ck_buf + 4, 8);
			/* the newest committed interval's, or the one in flight */
			assert_true(ck >= committed && ck <= committed + 1);
			state_of(ck, want);
			assert_memory_equal(ck_buf, want, STATE_LEN);
			committed = ck; /* where the writer resumes */
		} else {
			assert_true(committed < 0);
		}
		cursor = sql_int(s, "SELECT cursor FROM sinks WHERE name = 'influx'");
		top = sql_int(s, "SELECT COALESCE(MAX(seq), 0) FROM records");
		/* never ahead: a resend, not a skip */
		if (cursor > ack_begun || cursor > top)
			fail_msg("round %d: cursor %lld ahead (acks begun up to %lld, records up to "
				 "%lld)", round, (long long)cursor, (long long)ack_begun,
				 (long long)top);
		/* never behind what a later commit's sync made durable */
		if (cursor < acked_safe)
			fail_msg("round %d: cursor %lld behind %lld, an ack that a later commit "
				 "synced", round, (long long)cursor, (long long)acked_safe);
		if (cursor < acked_now)
			resent++; /* the last acks were lost: those records go again */
		if (ack_begun > acked_now)
			cuts_in_ack++;
		/* the store's state is the truth the next round starts from */
		ack_begun = acked_safe = cursor;
		pl_store_close(s);
	}
	printf("%s: %d power cuts, %lld intervals; %d cut during an ack, %d rounds where the "
	       "last acks were lost (resent)\n", merge_s ? "with the intake" : "without",
	       rounds, (long long)committed + 1, cuts_in_ack, resent);
	assert_true(committed > rounds); /* the cuts did not all come before any commit */
	{
		DIR *d = opendir(dir);
		struct dirent *e;

		assert_non_null(d);
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(name, sizeof(name), "%s/%s", dir, e->d_name);
			unlink(name);
		}
		closedir(d);
		assert_int_equal(rmdir(dir), 0);
	}
}

static void test_power_cuts(void **state)
{
	(void)state;
	power_cuts(0);
}

/* The same with the daemon's intake: the cuts land in its appends (a block torn), in its
 * creation, in the replay at the writer's start and in merges (when it is full, every second). */
static void test_power_cuts_intake(void **state)
{
	(void)state;
	power_cuts(1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_power_cuts),
		cmocka_unit_test(test_power_cuts_intake),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
