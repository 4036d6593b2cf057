/* SPDX-License-Identifier: MIT */
/*
 * Tests of the daemon's loop (src/linux/daemon/) under a fake clock (clock.h), with a fake
 * device (tests/fakes/fake_source.c: a pulse meter's line, which CI does not have) and a real
 * store in a temporary directory: an interval closes and is committed; a device that fails is
 * opened again with backoff; a sink that fails (a closed port) holds nothing back; a stop
 * (SIGTERM) checkpoints the open interval, which the next run closes as a PARTIAL record.
 *
 * The fake clock never sleeps: the loop's wait moves its time to the next thing due (the
 * loop's own timeout, the fake line's next edge), and a test's stop time raises SIGTERM.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "clock.h"
#include "config/config.h"
#include "daemon/daemon.h"
#include "fakes/fake_source.h"
#include "log.h"
#include "powerlogger/meter.h"
#include "powerlogger/retry.h"
#include "store/checkpoint.h"
#include "store/store.h"

#define S (PL_US_PER_S)
#define M0 (INT64_C(1000) * S)                 /* the fake monotonic clock at the start */
#define WALL0 (INT64_C(1700000000) * S)        /* the wall clock then: a 10 s boundary */
#define PERIOD (3600 * 1000)                   /* a pulse every 3.6 s: 1000 W at 1000 imp/kWh */
#define WIDTH (100 * 1000)

struct fake_clock {
	int64_t mono, off;     /* wall = mono + off */
	int64_t stop_at;       /* monotonic: raise SIGTERM once reached (0: never) */
	int64_t limit;         /* monotonic: give up (a stuck loop fails the test, not hangs) */
	int stopped, waits;
	/* a sink's thread reads this clock too but waits really: at wait_sink_at, wait (really)
	 * until the store says the sink is failing */
	int64_t wait_sink_at;
	const char *store_path;
	int sink_seen_failing;
};

static struct fake_clock fc;

/* For the tests that wait for a failing sink: no holding back of a partial batch. The hold
 * ends on the fake clock, which stands still while fake_wait waits for the sink, so a sink
 * thread that first saw the records less than batch_max_age_s before wait_sink_at (a slow
 * thread start: under qemu on armhf, one run in three) would hold them for ever. */
#define NO_HOLD "batch_max_age_s = 0\n"

/* Read from the sinks' threads too, written by the loop's wait: atomic. */
static int64_t fake_mono(void *ctx)
{
	(void)ctx;
	return __atomic_load_n(&fc.mono, __ATOMIC_RELAXED);
}

static int64_t fake_wall(void *ctx)
{
	(void)ctx;
	return __atomic_load_n(&fc.mono, __ATOMIC_RELAXED) + fc.off;
}

static int sink_failing_now(void)
{
	struct pl_store *st;
	struct pl_store_sink_info info = { 0 };
	int64_t id;
	int failing = 0;

	if (pl_store_open(fc.store_path, PL_STORE_READONLY, &st, NULL, 0) != 0)
		return 0;
	if (pl_store_sink(st, "down", &id) == 0 && pl_store_sink_info(st, id, &info) == 0)
		failing = info.failing;
	pl_store_close(st);
	return failing;
}

static int fake_wait(struct pollfd *fds, nfds_t n, int timeout_ms, void *ctx)
{
	int64_t target = timeout_ms < 0 ? INT64_MAX : fc.mono + (int64_t)timeout_ms * 1000;
	int64_t next = fake_source_next_event();
	int ready = 0;

	(void)ctx;
	fc.waits++;
	if (next < target)
		target = next;
	if (fc.stop_at && !fc.stopped && fc.stop_at < target)
		target = fc.stop_at;
	if (target > fc.mono)
		__atomic_store_n(&fc.mono, target, __ATOMIC_RELAXED);
	for (nfds_t i = 0; i < n; i++) {
		fds[i].revents = fds[i].fd == FAKE_SOURCE_FD && fake_source_readable() ? POLLIN : 0;
		ready += fds[i].revents != 0;
	}
	if (fc.wait_sink_at && fc.mono >= fc.wait_sink_at && !fc.sink_seen_failing) {
		for (int i = 0; i < 500 && !fc.sink_seen_failing; i++) {
			fc.sink_seen_failing = sink_failing_now();
			if (!fc.sink_seen_failing)
				usleep(10000);
		}
		fc.wait_sink_at = 0;
	}
	if (fc.stop_at && !fc.stopped && fc.mono >= fc.stop_at) {
		fc.stopped = 1;
		raise(SIGTERM);
	}
	if (fc.mono >= fc.limit)
		pl_daemon_request_stop();
	return ready;
}

static const struct pl_clock fake = {
	.mono_us = fake_mono,
	.wall_us = fake_wall,
	.wait = fake_wait,
};

static const struct pl_live_ops *fake_device(const struct pl_config_meter *cfg)
{
	(void)cfg;
	return &fake_source_ops;
}

struct env {
	char dir[64], store[128];
	char *log;        /* what the daemon logged */
	size_t loglen;
	FILE *logf;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	snprintf(e->dir, sizeof(e->dir), "/tmp/pl_daemon_XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->store, sizeof(e->store), "%s/store.db", e->dir);
	e->logf = open_memstream(&e->log, &e->loglen);
	assert_non_null(e->logf);
	pl_log_set_stream(e->logf);
	pl_clock_use(&fake);
	memset(&fc, 0, sizeof(fc));
	fc.mono = M0;
	fc.off = WALL0 - M0;
	fc.limit = M0 + 3600 * S;
	fc.store_path = e->store;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	char cmd[128];

	pl_clock_use(NULL);
	pl_log_set_stream(NULL);
	fclose(e->logf);
	free(e->log);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", e->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", e->dir);
	free(e);
	return 0;
}

/* Runs the daemon on the configuration "[store] + meter + extra" with the options o (cfg and
 * device_for filled in here); returns its exit status. */
static int run_config(struct env *e, const char *meter, const char *extra,
		      struct pl_daemon_options o)
{
	char text[1024];
	struct pl_config *cfg = NULL;
	struct pl_config_diags diags = { 0 };
	int status, restart = -1;

	snprintf(text, sizeof(text), "[store]\npath = %s\n\n%s\n%s", e->store, meter, extra);
	if (pl_config_parse_string("test", text, &cfg, &diags) != 0)
		pl_config_diags_print(&diags, stderr);
	pl_config_diags_free(&diags);
	assert_non_null(cfg);
	o.cfg = cfg;
	o.device_for = fake_device;
	status = pl_daemon_run(&o, &restart);
	assert_int_equal(restart, 0);
	pl_config_free(cfg);
	fflush(e->logf);
	return status;
}

/* The daemon on one fake line ("house", 10 s intervals) and the given extra sections. */
static int run_daemon(struct env *e, const char *extra)
{
	return run_config(e, "[meter house]\nsource = gpio\ndevice = gpiochip0\nline = 17\n"
			  "imp_per_kwh = 1000\ninterval_s = 10\n", extra,
			  (struct pl_daemon_options){ 0 });
}

/* The fake line pulsing from 1.0 s (gone from fail_s to back_s if fail_s > 0), and the
 * daemon on it until SIGTERM at stop_s; its exit status. */
static int run_pulses(struct env *e, int stop_s, int fail_s, int back_s, const char *extra)
{
	fake_source_setup(M0 + 1 * S, PERIOD, WIDTH);
	if (fail_s > 0) {
		fake_source.fail_at_us = M0 + fail_s * S;
		fake_source.back_at_us = M0 + back_s * S;
	}
	fc.stop_at = M0 + stop_s * S;
	return run_daemon(e, extra);
}

struct rec {
	int64_t start_s; /* seconds after WALL0 */
	int pulses, flags;
	int64_t energy_uwh, peak_mw;
};

/* The meter's records in the store, oldest first; returns how many. */
static int read_records(struct env *e, struct rec *out, int cap)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	int n = 0;

	assert_int_equal(sqlite3_open_v2(e->store, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT start_us, pulses, flags, energy_uwh, "
					    "peak_mw FROM records ORDER BY start_us", -1, &q,
					    NULL), SQLITE_OK);
	while (sqlite3_step(q) == SQLITE_ROW && n < cap) {
		out[n].start_s = (sqlite3_column_int64(q, 0) - WALL0) / S;
		out[n].pulses = sqlite3_column_int(q, 1);
		out[n].flags = sqlite3_column_int(q, 2);
		out[n].energy_uwh = sqlite3_column_int64(q, 3);
		out[n].peak_mw = sqlite3_column_int64(q, 4);
		n++;
	}
	sqlite3_finalize(q);
	sqlite3_close(db);
	return n;
}

static int count_lines(const struct env *e, const char *needle)
{
	int n = 0;

	for (const char *p = e->log; p && (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* Pulses at 1.0, 4.6, 8.2, 11.8, ... s: each closed interval holds what its span saw, is
 * stored complete (no flags) and the loop slept in between (a handful of wake-ups). */
static void interval_closes_and_is_committed(void **state)
{
	struct env *e = *state;
	struct rec r[8];
	int n;

	assert_int_equal(run_pulses(e, 25, 0, 0, ""), 0);
	n = read_records(e, r, 8);
	assert_int_equal(n, 2);
	assert_int_equal(r[0].start_s, 0);
	assert_int_equal(r[0].pulses, 3); /* 1.0, 4.6, 8.2 */
	assert_int_equal(r[0].flags, 0);
	assert_int_equal(r[0].energy_uwh, 3000000);
	assert_int_equal(r[0].peak_mw, 1000000);
	assert_int_equal(r[1].start_s, 10);
	assert_int_equal(r[1].pulses, 3); /* 11.8, 15.4, 19.0 */
	assert_int_equal(r[1].flags, 0);
	assert_int_equal(r[1].energy_uwh, 3000000);
	assert_int_equal(fake_source.nopens, 1);
	/* 14 edges and 2 interval closes in 25 s: the loop waits for them, it does not spin */
	assert_true(fc.waits < 40);
	assert_int_equal(count_lines(e, "powerlogger run: error:"), 0);
}

/* The line vanishes at 12.0 s and comes back at 14.0 s: each reopen comes after the delay
 * the core's backoff gives for that failure (seeded by the wall clock, so known here), the
 * failure is logged once, "back" once, and the interval of the gap is flagged. */
static void source_fails_and_reopens_with_backoff(void **state)
{
	struct env *e = *state;
	struct pl_backoff b = PL_BACKOFF_INIT;
	int64_t failed_at;
	struct rec r[8];
	int n;

	assert_int_equal(run_pulses(e, 35, 12, 14, ""), 0);

	assert_int_equal(fake_source.failed_read_us, M0 + 12 * S);
	/* the first open, two that fail (12.0 + 0.5..1 s, then + 1..2 s), one that works */
	assert_int_equal(fake_source.nopens, 4);
	assert_int_equal(fake_source.opens_us[0], M0);
	failed_at = fake_source.failed_read_us;
	for (int k = 1; k < fake_source.nopens; k++) {
		uint32_t ceiling = pl_backoff_ceiling(&b);
		uint32_t ms = pl_backoff_next(&b, (uint32_t)(failed_at + fc.off), 0);
		int64_t at = fake_source.opens_us[k];

		assert_true(ms >= ceiling / 2 && ms <= ceiling);
		/* at the retry time, or within the millisecond the loop's timeout rounds to */
		assert_true(at >= failed_at + (int64_t)ms * 1000);
		assert_true(at < failed_at + (int64_t)ms * 1000 + 1000);
		assert_int_equal(fake_source.opens_ok[k], at >= fake_source.back_at_us);
		failed_at = at;
	}
	assert_int_equal(fake_source.opens_ok[3], 1);
	assert_int_equal(count_lines(e, "powerlogger run: error: meter house: fake line: device "
				     "vanished; trying again with backoff (first in"), 1);
	assert_int_equal(count_lines(e, "meter house: fake line: no such device; trying again"), 1);
	assert_int_equal(count_lines(e, "powerlogger run: info: meter house: source is back"), 1);

	n = read_records(e, r, 8);
	assert_int_equal(n, 3);
	assert_int_equal(r[0].start_s, 0);
	assert_int_equal(r[0].flags, 0);
	assert_int_equal(r[0].pulses, 3);
	/* 11.8 before the failure; 15.4 and 19.0 lie beyond the last reopen only if it came in
	 * time: counted exactly as the line was watched */
	assert_int_equal(r[1].start_s, 10);
	assert_true(r[1].flags & PL_Q_GAP);
	assert_int_equal(r[1].pulses, 1 + (fake_source.opens_us[3] < M0 + 15400 * 1000) + 1);
	assert_int_equal(r[2].start_s, 20);
	assert_int_equal(r[2].flags, 0);
	assert_int_equal(r[2].pulses, 3); /* 22.6, 26.2, 29.8 */
}

/* A sink whose server is down (a closed port): the records are stored all the same, none is
 * delivered, the store says the sink is failing, and the run stops cleanly. */
static void sink_fails_records_wait(void **state)
{
	struct env *e = *state;
	struct pl_store *st;
	struct pl_store_sink_info info = { 0 };
	uint64_t backlog = 0;
	int64_t id, oldest = 0;
	struct rec r[8];

	fc.wait_sink_at = M0 + 21 * S; /* two records committed: the sink has tried them */
	assert_int_equal(run_pulses(e, 25, 0, 0, "[influxdb down]\nurl = http://127.0.0.1:1\n"
				    "database = none\ntimeout_s = 1\n" NO_HOLD), 0);
	assert_true(fc.sink_seen_failing);
	assert_int_equal(read_records(e, r, 8), 2);
	assert_int_equal(r[0].pulses, 3);
	assert_int_equal(r[1].pulses, 3);
	assert_int_equal(pl_store_open(e->store, PL_STORE_READONLY, &st, NULL, 0), 0);
	assert_int_equal(pl_store_sink(st, "down", &id), 0);
	assert_int_equal(pl_store_backlog(st, id, &backlog, &oldest), 0);
	assert_int_equal(backlog, 2);
	assert_int_equal(oldest, WALL0);
	assert_int_equal(pl_store_sink_info(st, id, &info), 0);
	assert_int_equal(info.failing, 1);
	assert_true(info.last_error[0] != '\0');
	pl_store_close(st);
}

/* The sink's delivery thread and the store read the clock seam, not the system clock: the
 * failure the thread records is stamped with the fake wall clock (the run's 25 s after
 * WALL0, years before today), and so are the records the store committed. */
static void sink_and_store_read_the_fake_clock(void **state)
{
	struct env *e = *state;
	struct pl_store *st;
	struct pl_store_sink_info info = { 0 };
	sqlite3 *db;
	sqlite3_stmt *q;
	int64_t id;
	int n = 0;

	fc.wait_sink_at = M0 + 21 * S;
	assert_int_equal(run_pulses(e, 25, 0, 0, "[influxdb down]\nurl = http://127.0.0.1:1\n"
				    "database = none\ntimeout_s = 1\n" NO_HOLD), 0);
	assert_true(fc.sink_seen_failing);
	assert_int_equal(pl_store_open(e->store, PL_STORE_READONLY, &st, NULL, 0), 0);
	assert_int_equal(pl_store_sink(st, "down", &id), 0);
	assert_int_equal(pl_store_sink_info(st, id, &info), 0);
	assert_int_equal(info.failing, 1);
	assert_true(info.error_us >= WALL0);
	assert_true(info.error_us <= WALL0 + 25 * S);
	pl_store_close(st);

	assert_int_equal(sqlite3_open_v2(e->store, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT stored_us FROM records", -1, &q, NULL),
			 SQLITE_OK);
	while (sqlite3_step(q) == SQLITE_ROW) {
		int64_t t = sqlite3_column_int64(q, 0);

		assert_true(t >= WALL0 + 10 * S && t <= WALL0 + 25 * S); /* closed at 10, 20 s */
		n++;
	}
	sqlite3_finalize(q);
	sqlite3_close(db);
	assert_int_equal(n, 2);
}

/* SIGTERM at 25.0 s: exit 0, the open interval (one pulse, 22.6 s) is in the checkpoint,
 * not in the records. The next run starts at 100 s: the interval is over, so it is closed
 * where observation stopped, flagged PARTIAL and GAP, and a new one opens at 100 s. */
static void stop_finishes_cleanly_with_partial_record(void **state)
{
	struct env *e = *state;
	struct rec r[8];
	int n;

	assert_int_equal(run_pulses(e, 25, 0, 0, ""), 0);
	assert_int_equal(read_records(e, r, 8), 2);

	/* the next run: the logger was stopped for 75 s */
	fc.mono = M0 + 100 * S;
	fc.stopped = 0;
	fc.stop_at = M0 + 101 * S;
	fake_source_setup(M0 + 100500 * 1000, PERIOD, WIDTH);
	assert_int_equal(run_daemon(e, ""), 0);
	assert_int_equal(count_lines(e, "powerlogger run: info: meter house: resuming from its "
				     "checkpoint (0 samples in, register 0.007 kWh)"), 1);
	n = read_records(e, r, 8);
	assert_int_equal(n, 3);
	assert_int_equal(r[2].start_s, 20);
	assert_int_equal(r[2].pulses, 1);
	assert_int_equal(r[2].flags, PL_Q_PARTIAL | PL_Q_GAP);
	assert_int_equal(r[2].energy_uwh, 1000000);
}

/* The checkpoint of the store's only meter. */
static void load_checkpoint(struct env *e, struct pl_checkpoint *ck)
{
	struct pl_store *st;
	struct pl_store_entry m[2];
	size_t n = 0, len = 0;
	char err[256];

	assert_int_equal(pl_store_open(e->store, PL_STORE_READONLY, &st, err, sizeof(err)), 0);
	assert_int_equal(pl_store_list(st, 0, m, 2, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(pl_store_load_checkpoint(st, m[0].id, ck, sizeof(*ck), &len), 0);
	assert_true(pl_checkpoint_valid(ck, len));
	pl_store_close(st);
}

/* A simulated meter restarted from its checkpoint goes on with a new detector: with the
 * meter's own limits and polarity, not the detector's defaults (which have no plausibility
 * limit and learn the polarity; before the fix a restart dropped the configured ones). */
static void restart_keeps_detector_settings(void **state)
{
	struct env *e = *state;
	const char *meter = "[meter house]\nsource = sim\nimp_per_kwh = 2000\n"
			    "max_power_w = 9000\npolarity = down\ninterval_s = 10\n";
	struct pl_checkpoint ck;

	fc.stop_at = M0 + 25 * S;
	assert_int_equal(run_config(e, meter, "", (struct pl_daemon_options){ .quiet = 1 }), 0);
	load_checkpoint(e, &ck);
	assert_true(ck.consumed > 0);
	assert_int_equal(ck.det.cfg.imp_per_kwh, 2000);
	assert_int_equal(ck.det.cfg.max_power_w, 9000);
	assert_int_equal(ck.det.cfg.polarity, PL_POLARITY_DOWN);

	fc.stopped = 0;
	fc.stop_at = fc.mono + 25 * S;
	assert_int_equal(run_config(e, meter, "", (struct pl_daemon_options){ 0 }), 0);
	assert_int_equal(count_lines(e, "resuming from its checkpoint"), 1);
	load_checkpoint(e, &ck);
	assert_int_equal(ck.det.cfg.imp_per_kwh, 2000);
	assert_int_equal(ck.det.cfg.max_power_w, 9000);
	assert_int_equal(ck.det.cfg.polarity, PL_POLARITY_DOWN);
}

/* A trace file (a clean LED signal at 100 Hz, 40 s, a pulse every 3.6 s from 1.0 s) replayed
 * at twice its speed with --until-drained: the source seam's pacing runs on the fake clock,
 * so the run ends 20 s after it started, with every interval closed at the file's end. */
static void trace_replay_is_paced_by_the_clock(void **state)
{
	struct env *e = *state;
	char path[160], meter[256];
	struct rec r[8];
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "%s/trace.csv", e->dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "time_s,value\n");
	for (int i = 0; i < 4000; i++) {
		int ms = i * 10, lit = ms >= 1000 && (ms - 1000) % 3600 < 100;

		fprintf(f, "%d.%03d,%d\n", ms / 1000, ms % 1000, lit ? 3000 : 100);
	}
	fclose(f);
	snprintf(meter, sizeof(meter), "[meter house]\nsource = file\nfile = %s\nimp_per_kwh = "
		 "1000\ninterval_s = 10\n", path);
	assert_int_equal(run_config(e, meter, "", (struct pl_daemon_options){
		.have_speed = 1, .speed = 2, .until_drained = 1, .quiet = 1 }), 0);
	/* 39.99 s of input at 2x: read out 19.995 s after the first sample, at 10 ms polls */
	assert_true(fc.mono >= M0 + 19995 * 1000);
	assert_true(fc.mono <= M0 + 20010 * 1000);
	n = read_records(e, r, 8);
	assert_int_equal(n, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(r[i].start_s, (int64_t)i * 10 - WALL0 / S);
	assert_int_equal(r[0].pulses + r[1].pulses + r[2].pulses + r[3].pulses, 11);
	assert_int_equal(r[1].pulses, 3);
	assert_int_equal(r[2].pulses, 3);
	assert_int_equal(r[3].pulses, 2);
	assert_int_equal(r[3].flags & PL_Q_PARTIAL, 0); /* the file ends on its boundary */
	assert_int_equal(count_lines(e, "error"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(interval_closes_and_is_committed, setup, teardown),
		cmocka_unit_test_setup_teardown(source_fails_and_reopens_with_backoff, setup,
						teardown),
		cmocka_unit_test_setup_teardown(sink_fails_records_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(sink_and_store_read_the_fake_clock, setup,
						teardown),
		cmocka_unit_test_setup_teardown(stop_finishes_cleanly_with_partial_record, setup,
						teardown),
		cmocka_unit_test_setup_teardown(trace_replay_is_paced_by_the_clock, setup, teardown),
		cmocka_unit_test_setup_teardown(restart_keeps_detector_settings, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
