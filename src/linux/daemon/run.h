/* SPDX-License-Identifier: MIT */
/*
 * The daemon's state and the functions its files share (daemon.h is the public side):
 * loop.c the poll loop, meter.c a meter's records and commits, feed.c a meter's source,
 * setup.c the store and sinks at the start and the end, status.c the status line,
 * signals.c the signals and the reload.
 */
#ifndef PL_LINUX_DAEMON_RUN_H
#define PL_LINUX_DAEMON_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/daemon.h"
#include "powerlogger/channel.h"
#include "powerlogger/meter.h"
#include "powerlogger/retry.h"
#include "sinks/deliver.h"
#include "http/http.h"
#include "sinks/mqtt.h"
#include "sources/live.h"
#include "store/checkpoint.h"
#include "store/store.h"

#define PROG "powerlogger run"
#define RECS 256            /* records taken from the meter between commits, normally */
#define PENDING_MAX 65536   /* records held in memory while the store refuses (15 days at 20 s) */
#define STORE_RETRY_US (5 * PL_US_PER_S)
#define PRUNE_EVERY_US (60 * PL_US_PER_S)
#define LIVE_SLACK_US (50 * 1000)  /* an edge or sample may reach us this late after its time */
#define LIVE_RETRY_CAP_MS 30000    /* a vanished device is looked for at least this often */
#define LIVE_BUF 1024
#define STOP_GRACE_MS 2000 /* a request in flight at a stop gets this long to finish */
#define DIAG_EVERY_US (2 * PL_US_PER_S) /* the MQTT sinks' view of the detectors */
#define MIN64(a, b) ((a) < (b) ? (a) : (b))

struct meter_run {
	const struct pl_config_meter *cfg;
	int64_t id;
	struct pl_checkpoint ck;
	/* the source (live.h): a device, the simulator or a replayed file alike */
	const struct pl_live_ops *src;
	void *self;                  /* NULL while closed */
	int ended, finished;         /* the input is over; its last intervals are closed */
	int64_t end_us;              /* where the input ended (source time), 0 if unknown */
	/* the detector or the edge filter with the meter (the edge filter is not checkpointed:
	 * a restart of a device is a gap anyway); ck holds their state as of the last commit.
	 * Clock steps (sim and device meters; loop.c's check_clock()): the sources, the
	 * detector and the edge filter run on a line time that never jumps (the simulator's
	 * own, or monotonic time for devices); the meter stamps with meter time = line time +
	 * ch.offset_us, so a step changes the stamps and nothing else (pl_channel_step()). */
	struct pl_channel ch;
	int64_t retry_us;            /* monotonic: when to open the source again */
	struct pl_backoff backoff;
	int failing;
	char error[256];
	uint64_t lost;               /* samples or edges the source lost in this run */
	int64_t next_close_us;       /* monotonic: when to look for intervals to close */
	int64_t last_read_us;        /* monotonic: the last read of a device's samples */
	int have_input;              /* a sample was read in this run: its time is input0_us */
	int64_t input0_us;
	struct pl_interval_record *recs; /* closed, not yet committed */
	size_t nrecs, rcap;
	int64_t last_t;              /* line time of the latest input */
	struct pl_interval_record last;
	int have_last;
	int64_t day_start_us, day_base_uwh; /* local midnight of the day shown, register then */
	int switch_pending;          /* settings changed since the checkpoint: logged when the
				      * channel puts them into effect */
	int64_t last_in_t;           /* line time of the source's latest edge or sample */
	uint64_t late_logged;        /* pulses counted late (ch.n_late) as far as logged */
	/* committed in this run, for the web server's counters (http/live.h) */
	uint64_t c_pulses, c_rejected, c_gaps;
	int last_looked;             /* the store's newest record was looked up for `last` */
	int64_t live_day_us, live_day_base_uwh; /* the web view's midnight and register then */
};

struct sink_run {
	const char *name;        /* the section's NAME, the store's sink id */
	const char *kind;        /* "influxdb" or "mqtt" */
	struct pl_mqtt_box *box; /* mqtt: what the loop shows it for P/M/diag; NULL otherwise */
	int64_t id;
	struct pl_deliver *d;
	uint64_t backlog;        /* for the status line */
	int64_t backlog_at_us, backlog_cost_us;
};

struct run {
	const struct pl_daemon_options *o;
	const struct pl_config *cfg;
	struct pl_store *store;
	int lock_fd;     /* pl_store_lock(): the only logger of this store; -1 none */
	struct meter_run *meters;
	size_t nmeters;
	struct sink_run *sinks;
	size_t nsinks;
	int64_t started_us;
	uint64_t gen;    /* commits so far: what the sinks are kicked with */
	int store_failing;          /* commits fail: records wait in memory */
	int64_t store_retry_us;     /* monotonic time of the next attempt */
	int64_t next_prune_us;
	int flushing;    /* every source has ended: sinks send partial batches at once */
	int moved;       /* enum pl_store_place: the store's file went away under us */
	uint64_t wakeups; /* of the main loop (PL_REPORT_WAKEUPS=1 prints them at exit) */
	int64_t clock_off0; /* wall minus monotonic clock at the start: devices' line time */
	int64_t clock_off;  /* the same now, as far as check_clock has seen */
	int64_t next_diag_us; /* monotonic: the MQTT sinks' diagnostics are due */
	struct pl_live *live; /* what the web server shows; NULL without [http] listen */
	struct pl_live *live_tmp; /* the loop's copy, filled and then put into live */
	struct pl_http *http;
	int64_t next_live_us; /* monotonic: the live box is due */
};

/* signals.c */
void daemon_signals_install(void);
int daemon_stopping(void);
int daemon_take_reload(void);
void daemon_report_ignored_signals(void);
int daemon_reload_ok(const struct run *r);

/* meter.c: a meter's channel and the commit of its records */
int meter_load(struct run *r, struct meter_run *m);
int meter_commit(struct run *r, struct meter_run *m);
int meter_feed(struct run *r, struct meter_run *m, const struct pl_sample *s, size_t n);
int meter_edge(struct run *r, struct meter_run *m, int64_t t, int level);
int meter_advance(struct run *r, struct meter_run *m, int64_t t);
int meter_settle(struct run *r, struct meter_run *m, int64_t t);
int meter_resume(struct run *r, struct meter_run *m, int64_t now);
int meter_finish(struct run *r, struct meter_run *m);
void meter_clock_step(struct meter_run *m, int64_t at, int64_t d);
void meter_flag_gap(struct meter_run *m);
void format_span(char *buf, size_t len, int64_t us);

/* feed.c: a meter's source */
int64_t line_now(const struct run *r);
int feed_open(struct run *r, struct meter_run *m);
int feed_poll_device(struct run *r, struct meter_run *m, int readable);
int feed_tick(struct run *r, struct meter_run *m, int64_t now);
int64_t feed_wake(const struct run *r, const struct meter_run *m, int64_t now, int *fd);
void feed_done(const struct run *r, const struct meter_run *m, int64_t now, int *all_eof,
	       int *all_duration);
int64_t feed_step_at(const struct run *r, const struct meter_run *m);
int feed_settle(struct run *r, struct meter_run *m);
void feed_close(struct meter_run *m);

/* setup.c */
int daemon_setup(struct run *r);
void daemon_teardown(struct run *r);
void daemon_prune(struct run *r);
void store_check_place(struct run *r);
int sinks_idle(struct run *r);
int sinks_broken(struct run *r);

/* status.c */
void status_line(struct run *r);
void status_mqtt_diag(struct run *r);
void status_live(struct run *r);

#endif
