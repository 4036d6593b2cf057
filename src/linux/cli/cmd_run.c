/*
 * `powerlogger run`: the long-running logger (first version, see docs/daemon-design.md).
 *
 * For each meter: a source (the simulator, or a trace file replayed at a speed factor) feeds
 * the analog detector; pulses feed the meter; the meter is advanced only to the detector's
 * horizon, so an interval is closed only when no pulse can still arrive for it; closed records
 * and the checkpoint (the detector's and the meter's plain-data state, and the number of
 * samples consumed) are committed to the store in one transaction. A restart loads the
 * checkpoint: a file source skips the samples already consumed, so the records of a replay are
 * those of an uninterrupted run.
 *
 * For each InfluxDB sink, a thread of its own (deliver.c) reads the store's undelivered
 * records, oldest first, posts them and moves its cursor only on a 2xx, following the core's
 * retry policy; this thread only commits and kicks, so sampling never waits for the network.
 *
 * SIGINT/SIGTERM stop it cleanly: a checkpoint of every meter, a request in flight gets a
 * short grace time, and the process exits 0. SIGHUP reloads: the same stop, then the program
 * executes itself again in place (see reload_ok()). One logger per store (pl_store_lock()); a
 * store file deleted or replaced under it is noticed after a commit (store_rescue()).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "cli/commands.h"
#include "store/checkpoint.h"
#include "config/config.h"
#include "sinks/deliver.h"
#include "sinks/influx_config.h"
#include "sources/live.h"
#include "sources/sim.h"
#include "store/store.h"
#include "sources/trace.h"
#include "powerlogger/detector.h"
#include "powerlogger/edges.h"
#include "powerlogger/retry.h"
#include "powerlogger/meter.h"

#define PROG "powerlogger run"
#define BLOCK 1024
#define RECS 256            /* records taken from the meter between commits, normally */
#define PENDING_MAX 65536   /* records held in memory while the store refuses (15 days at 20 s) */
#define STORE_RETRY_US (5 * PL_US_PER_S)
#define PRUNE_EVERY_US (60 * PL_US_PER_S)
#define LIVE_SLACK_US (50 * 1000)  /* an edge or sample may reach us this late after its time */
#define LIVE_RETRY_CAP_MS 30000    /* a vanished device is looked for at least this often */
#define LIVE_BUF 1024
#define MIN64(a, b) ((a) < (b) ? (a) : (b))
#define STOP_GRACE_MS 2000 /* a request in flight at a stop gets this long to finish */

static volatile sig_atomic_t stop_requested, reload_requested, got_usr1, got_usr2;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		reload_requested = 1;
	else if (sig == SIGUSR1)
		got_usr1 = 1;
	else if (sig == SIGUSR2)
		got_usr2 = 1;
	else
		stop_requested = 1;
}


struct meter_run {
	const struct pl_config_meter *cfg;
	int64_t id;
	struct pl_checkpoint ck;
	struct pl_trace *trace;
	struct pl_sim *sim;
	struct pl_sim_load load;
	int have_load;
	struct pl_sample buf[BLOCK];
	size_t pos, len;
	int eof, eof_done;
	int64_t wall0_us, input0_us; /* pacing: wall time and input time at the start */
	struct pl_interval_record *recs; /* closed, not yet committed */
	size_t nrecs, rcap;
	int64_t power_mw, last_t;
	struct pl_interval_record last;
	int have_last;
	int64_t day_start_us, day_base_uwh; /* local midnight of the day shown, register then */
	/* live sources (live.h) */
	const struct pl_live_ops *live;
	void *live_self;             /* NULL while closed */
	struct pl_edges edges;       /* edge sources: the filter (not checkpointed: a restart
				      * of a live source is a gap anyway) */
	int64_t live_retry_us;       /* monotonic: when to open again */
	struct pl_backoff live_backoff;
	int live_failing;
	char live_error[256];
	uint64_t lost;               /* samples or edges the source lost in this run */
	int64_t next_close_us;       /* monotonic: when to look for intervals to close */
	/* settings changed since the checkpoint: the meter goes on with the old ones up to
	 * switch_us, a boundary of both interval lengths (settings_changed()) */
	int switch_pending;
	struct pl_meter_config switch_cfg;
	int64_t switch_us;
	int64_t last_read_us;        /* monotonic: the last read of a sample source */
	/* Clock steps (sim and live meters; see check_clock). The sources, the detector and the
	 * edge filter run on a line time that never jumps (the simulator's own, or monotonic
	 * time for live sources); the meter stamps with meter time = line time + shift_us, so
	 * a step changes the stamps and nothing else. A step is applied to the meter once the
	 * line time reaches step_at: every pulse before it is stamped with the old clock. */
	int64_t shift_us;
	int step_pending;
	int64_t step_at, step_delta;
	int64_t last_in_t;           /* line time of the source's latest edge or sample */
	int eorder_logged;
};

struct sink_run {
	const struct pl_config_influx *cfg;
	int64_t id;
	struct pl_deliver *d;
	uint64_t backlog;        /* for the status line */
	int64_t backlog_at_us, backlog_cost_us;
};

struct run {
	struct pl_config *cfg;
	struct pl_config *owned_cfg;
	struct pl_store *store;
	int lock_fd;     /* pl_store_lock(): the only logger of this store; -1 none */
	struct meter_run *meters;
	size_t nmeters;
	struct sink_run *sinks;
	size_t nsinks;
	double speed_override;
	int have_speed_override;
	double duration_s;
	int until_drained, quiet, tty;
	int64_t started_us;
	uint64_t gen;    /* commits so far: what the sinks are kicked with */
	int store_failing;          /* commits fail: records wait in memory */
	int64_t store_retry_us;     /* monotonic time of the next attempt */
	int64_t next_prune_us;
	int flushing;    /* every source has ended: sinks send partial batches at once */
	int moved;       /* enum pl_store_place: the store's file went away under us */
	uint64_t wakeups; /* of the main loop (PL_REPORT_WAKEUPS=1 prints them at exit) */
	int64_t clock_off0; /* wall minus monotonic clock at the start: live sources' line time */
	int64_t clock_off;  /* the same now, as far as check_clock has seen */
};

static int64_t now_us(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (int64_t)ts.tv_sec * PL_US_PER_S + ts.tv_nsec / 1000;
}

/*
 * Wall clock minus monotonic clock, µs. It changes only when the wall clock is stepped (NTP,
 * a clock set by hand, a leap second) or the system was suspended: NTP's slewing moves both
 * alike. Read between two wall-clock readings, the narrowest of a few tries, so that being
 * preempted between the two clocks cannot look like a step.
 */
static int64_t wall_minus_mono(void)
{
	int64_t best = 0, width = INT64_MAX;

	for (int i = 0; i < 4 && width > 1000; i++) {
		int64_t r1 = now_us(CLOCK_REALTIME), mo = now_us(CLOCK_MONOTONIC);
		int64_t r2 = now_us(CLOCK_REALTIME);

		if (r2 >= r1 && r2 - r1 < width) {
			width = r2 - r1;
			best = r1 + (r2 - r1) / 2 - mo;
		}
	}
	return width == INT64_MAX ? now_us(CLOCK_REALTIME) - now_us(CLOCK_MONOTONIC) : best;
}

/* Steps smaller than this are reading noise or NTP's own fine corrections: not acted on. */
#define CLOCK_STEP_TOL_US 10000

/* The live sources' line time now: monotonic, in the wall clock's terms at the start. */
static int64_t line_now(const struct run *r)
{
	return now_us(CLOCK_MONOTONIC) + r->clock_off0;
}

static void logmsg(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logmsg(const char *level, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: %s: ", PROG, level);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static double speed_of(const struct run *r, const struct meter_run *m)
{
	return r->have_speed_override ? r->speed_override : m->cfg->speed;
}

/* ---- sources ---------------------------------------------------------------------------- */

static int source_open(struct run *r, struct meter_run *m)
{
	char err[256];
	const struct pl_config_meter *c = m->cfg;

	if (c->source == PL_CONFIG_SOURCE_FILE) {
		struct pl_trace_config tc = { .format = (enum pl_trace_format)c->format,
					      .rate_hz = c->rate_hz };
		if (pl_trace_open(&m->trace, c->file, &tc, err, sizeof(err)) != 0) {
			logmsg("error", "meter %s: %s", c->name, err);
			return -1;
		}
		/* Skip what the checkpoint says was consumed: the replay resumes exactly. */
		uint64_t skip = m->ck.consumed;
		while (skip > 0) {
			size_t n = 0, want = skip < BLOCK ? (size_t)skip : BLOCK;
			if (pl_trace_read(m->trace, m->buf, want, &n) != 0 || n == 0) {
				logmsg("error", "meter %s: %s is shorter than its checkpoint says",
				       c->name, c->file);
				return -1;
			}
			skip -= n;
		}
		return 0;
	}
	struct pl_sim_config sc;
	pl_sim_config_default(&sc);
	sc.duration_s = 1e7; /* the simulator's longest: 115 days, then the source ends */
	sc.rate_hz = 1000;
	sc.noise = 10;
	sc.imp_per_kwh = c->imp_per_kwh;
	sc.seed = (uint64_t)now_us(CLOCK_REALTIME);
	if (c->profile) {
		if (pl_sim_load_read(c->profile, &m->load, err, sizeof(err)) != 0) {
			logmsg("error", "meter %s: %s", c->name, err);
			return -1;
		}
		m->have_load = 1;
		sc.load = &m->load;
		/* start at the profile's time of day now */
		sc.load_start_s = (double)((now_us(CLOCK_REALTIME) / PL_US_PER_S) % 86400);
	}
	if (pl_sim_new(&m->sim, &sc, err, sizeof(err)) != 0) {
		logmsg("error", "meter %s: %s", c->name, err);
		return -1;
	}
	/* A simulated meter lives in wall-clock time from now on. */
	m->ck.epoch_us = now_us(CLOCK_REALTIME);
	(void)r;
	return 0;
}

/* Refills the buffer; returns the number of samples available (0 at the end). */
static size_t source_fill(struct meter_run *m)
{
	if (m->pos < m->len)
		return m->len - m->pos;
	m->pos = m->len = 0;
	if (m->eof)
		return 0;
	if (m->trace) {
		size_t n = 0;
		int rc = pl_trace_read(m->trace, m->buf, BLOCK, &n);
		if (rc != 0) {
			logmsg("error", "meter %s: %s", m->cfg->name, pl_trace_error(m->trace));
			m->eof = 1;
			return 0;
		}
		if (n == 0)
			m->eof = 1;
		m->len = n;
	} else {
		size_t n = pl_sim_read(m->sim, m->buf, BLOCK);
		for (size_t i = 0; i < n; i++)
			m->buf[i].t_us += m->ck.epoch_us;
		if (n == 0)
			m->eof = 1;
		m->len = n;
	}
	return m->len;
}

/* ---- meters ----------------------------------------------------------------------------- */

/* Applies the store's retention policy (see store.h). */
static void prune(struct run *r)
{
	struct pl_store_prune_result res;
	const struct pl_config_store *c = &r->cfg->store;
	int64_t keep = c->retention_days ? (int64_t)c->retention_days * 86400 : INT64_MAX;
	int rc = pl_store_prune(r->store, keep, (uint64_t)c->max_size_mb << 20, &res);

	if (rc != 0 && rc != -PL_ENOSPC)
		logmsg("warning", "store: %s", pl_store_error(r->store));
	else if (res.deleted_by_age + res.deleted_by_size > 0 && !r->quiet)
		logmsg("info", "store: %" PRIu64 " delivered records removed by the retention policy"
		       " (%" PRIu64 " by age, %" PRIu64 " by size)",
		       res.deleted_by_age + res.deleted_by_size, res.deleted_by_age,
		       res.deleted_by_size);
}

static void store_check_place(struct run *r);

/*
 * Commits the meter's pending records with its checkpoint. Returns 0, 1 when the store refuses
 * (full disk, size bound, I/O error: the records stay pending in memory and are retried every
 * STORE_RETRY_US, reported once), or -1 on a failure that ends the daemon (a damaged store).
 */
static int commit(struct run *r, struct meter_run *m)
{
	int64_t now = now_us(CLOCK_MONOTONIC);
	int rc;

	if (r->store_failing && now < r->store_retry_us)
		return 1;
	if (r->store_failing)
		prune(r); /* the sinks may have caught up: room again within the size bound */
	rc = pl_store_commit_interval(r->store, m->id, m->recs, m->nrecs, &m->ck, sizeof(m->ck));
	if (rc == -PL_ECORRUPT || rc == -PL_EINVAL) {
		logmsg("error", "store: %s", pl_store_error(r->store));
		return -1;
	}
	if (rc != 0) {
		if (!r->store_failing)
			logmsg("error", "store: %s; new records wait in memory (at most %d per meter),"
			       " retrying every %d s", pl_store_error(r->store), PENDING_MAX,
			       (int)(STORE_RETRY_US / PL_US_PER_S));
		r->store_failing = 1;
		r->store_retry_us = now + STORE_RETRY_US;
		return 1;
	}
	if (r->store_failing)
		logmsg("info", "store: writing again (%zu records of meter %s were waiting)",
		       m->nrecs, m->cfg->name);
	r->store_failing = 0;
	if (!r->moved)
		store_check_place(r);
	if (m->nrecs > 0) {
		m->last = m->recs[m->nrecs - 1];
		m->have_last = 1;
		r->gen++;
		for (size_t i = 0; i < r->nsinks; i++)
			pl_deliver_kick(r->sinks[i].d, r->gen, r->flushing);
	}
	m->nrecs = 0;
	return 0;
}

/*
 * After a commit: is the store's file still at its path? One stat(). Deleted or replaced, the
 * daemon stops as on SIGTERM (everything checkpointed, into the open file), then
 * store_rescue() saves what the open file holds before the store is closed.
 */
static void store_check_place(struct run *r)
{
	r->moved = pl_store_moved(r->store);
	if (r->moved == PL_STORE_DELETED)
		logmsg("error", "store %s: the file was deleted while the logger runs: writing "
		       "everything back to it and restarting", r->cfg->store.path);
	else if (r->moved == PL_STORE_REPLACED)
		logmsg("error", "store %s: the file was replaced by another one while the logger "
		       "runs: that file is left alone; saving this run's store beside it and "
		       "stopping", r->cfg->store.path);
}

/* Room for at least `room` more records; -1 when out of memory or at PENDING_MAX. */
static int reserve(struct meter_run *m, size_t room)
{
	size_t want = m->nrecs + room, cap = m->rcap ? m->rcap : RECS;
	struct pl_interval_record *p;

	if (want <= m->rcap)
		return 0;
	while (cap < want)
		cap *= 2;
	if (cap > PENDING_MAX)
		return -1;
	p = realloc(m->recs, cap * sizeof(*p));
	if (p == NULL)
		return -1;
	m->recs = p;
	m->rcap = cap;
	return 0;
}

/* Commits when enough records are pending; a refusing store only delays it. */
static int take_records(struct run *r, struct meter_run *m, size_t n)
{
	m->nrecs += n;
	if (m->nrecs >= RECS / 2)
		return commit(r, m) < 0 ? -1 : 0;
	return 0;
}

/* The first multiple of iv at or after t (t may be negative: replayed traces start at 0). */
static int64_t align_up(int64_t t, int64_t iv)
{
	int64_t q = t / iv * iv;

	return q < t ? q + iv : q;
}

/*
 * Puts the settings changed since the checkpoint into effect once the meter reaches
 * switch_us: every interval of the old length up to there is closed (the last one cut short
 * when switch_us is not one of its boundaries), the meter starts again with the new settings
 * at switch_us, a boundary of the new length, and the register goes on. So no record of the
 * new length overlaps one of the old (records are keyed by their start) and the energies
 * still add up to the register. Called before the meter is given any time t.
 */
static int meter_switch(struct run *r, struct meter_run *m, int64_t t)
{
	struct pl_meter *mt = &m->ck.meter;
	struct pl_interval_record rec;
	int64_t reg;
	size_t n;

	if (!m->switch_pending || t < m->switch_us)
		return 0;
	do {
		if (reserve(m, RECS) != 0)
			return -1;
		n = pl_meter_advance(mt, m->switch_us, m->recs + m->nrecs, RECS);
		if (take_records(r, m, n) != 0)
			return -1;
	} while (n == RECS);
	while (pl_meter_flush(mt, m->switch_us, &rec) == 1) {
		if (reserve(m, 1) != 0)
			return -1;
		m->recs[m->nrecs++] = rec;
	}
	reg = pl_meter_register(mt);
	if (pl_meter_init(mt, &m->switch_cfg) != 0)
		return -1;
	pl_meter_set_register(mt, reg);
	pl_meter_start(mt, m->switch_us);
	m->switch_pending = 0;
	if (!r->quiet)
		logmsg("info", "meter %s: now %" PRIu32 " s intervals at %" PRIu32 " imp/kWh",
		       m->cfg->name, mt->cfg.interval_s, mt->cfg.imp_per_kwh);
	return take_records(r, m, 0);
}

/*
 * Closes every interval that ends at or before t (meter time), RECS at a time with a commit
 * between, so that no span, however long, needs more memory than that. A stop request ends it
 * early: the rest is closed on the next call.
 */
static int advance_meter(struct run *r, struct meter_run *m, int64_t t)
{
	if (meter_switch(r, m, t) != 0)
		return -1;
	for (;;) {
		size_t n;

		if (reserve(m, RECS) != 0)
			return 0; /* at PENDING_MAX: the rest when the store takes them */
		n = pl_meter_advance(&m->ck.meter, t, m->recs + m->nrecs, RECS);
		if (take_records(r, m, n) != 0)
			return -1;
		if (n < RECS || stop_requested)
			return 0;
	}
}

static void format_span(char *buf, size_t len, int64_t us)
{
	double s = (double)(us < 0 ? -us : us) / 1e6;

	if (s < 120)
		snprintf(buf, len, "%.3f s", s);
	else if (s < 7200)
		snprintf(buf, len, "%.1f min", s / 60);
	else if (s < 2 * 86400)
		snprintf(buf, len, "%.2f h", s / 3600);
	else
		snprintf(buf, len, "%.2f days", s / 86400);
}

/* Applies the meter's pending clock step: intervals up to the step instant close as usual,
 * then pl_meter_step() (meter.h) flags the gap; from here on the stamps follow the new clock. */
static int apply_step(struct run *r, struct meter_run *m)
{
	struct pl_interval_record rec;
	int64_t t = m->step_at == INT64_MIN ? INT64_MIN : m->step_at + m->shift_us;
	int rc;

	m->step_pending = 0;
	if (m->ck.started && m->ck.meter.cur_start != INT64_MIN && t > m->ck.meter.t_last &&
	    advance_meter(r, m, t) != 0)
		return -1;
	rc = pl_meter_step(&m->ck.meter, m->step_delta, &rec);
	if (rc < 0)
		logmsg("error", "meter %s: cannot follow the clock step: %s", m->cfg->name,
		       pl_strerror(rc));
	if (rc == 1) {
		if (reserve(m, 1) != 0) {
			logmsg("error", "meter %s: out of memory for pending records", m->cfg->name);
			return -1;
		}
		m->recs[m->nrecs++] = rec;
	}
	if (rc >= 0)
		m->shift_us += m->step_delta;
	return take_records(r, m, 0);
}

/* A pending clock step takes effect once the line time t_line reaches it. */
static int meter_reach(struct run *r, struct meter_run *m, int64_t t_line)
{
	if (m->step_pending && t_line >= m->step_at)
		return apply_step(r, m);
	return 0;
}

/*
 * Watches the wall clock against the monotonic one (each wake-up of the loop: every edge or
 * block of samples, every interval's close). A step is logged once and handed to every sim
 * and live meter; file sources replay their own time and ignore it. Two steps before the first
 * took effect add up.
 */
static void check_clock(struct run *r)
{
	int64_t off = wall_minus_mono(), d = off - r->clock_off;
	char span[32], when[40];
	time_t now;
	struct tm tm;

	if (d <= CLOCK_STEP_TOL_US && d >= -CLOCK_STEP_TOL_US)
		return;
	r->clock_off = off;
	now = (time_t)(now_us(CLOCK_REALTIME) / PL_US_PER_S);
	if (gmtime_r(&now, &tm) == NULL || strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(when, sizeof(when), "%lld", (long long)now);
	format_span(span, sizeof(span), d);
	logmsg("warning", "the wall clock was stepped %s by %s (now %s)%s", d > 0 ? "forward" : "back",
	       span, when, d > 0 ? "; the intervals of the step are flagged as a gap, the span "
	       "skipped gets no records (or the system was suspended)" : "; the open intervals "
	       "stay open until the clock is back at their end, so that no interval is stamped "
	       "twice; they are flagged as a gap");
	for (size_t i = 0; i < r->nmeters; i++) {
		struct meter_run *m = &r->meters[i];

		if (!m->sim && !m->live)
			continue;
		if (m->step_pending) {
			m->step_delta += d;
			continue;
		}
		m->step_pending = 1;
		m->step_delta = d;
		/* live: what the sources stamped before now; sim: the samples read so far */
		if (m->live)
			m->step_at = line_now(r);
		else
			m->step_at = m->wall0_us ? m->last_t + 1 : INT64_MIN;
	}
}

/* Feeds a pulse (line time) to the meter. Never refuses it: the energy is real. */
static int meter_pulse(struct run *r, struct meter_run *m, const struct pl_pulse *p)
{
	struct pl_pulse q = *p;

	if (meter_reach(r, m, p->t_us) != 0)
		return -1;
	q.t_us = p->t_us + m->shift_us;
	if (meter_switch(r, m, q.t_us) != 0) {
		logmsg("error", "meter %s: out of memory for pending records", m->cfg->name);
		return -1;
	}
	for (;;) {
		size_t n = 0;
		int rc;

		if (reserve(m, 8) != 0) {
			logmsg("error", "meter %s: out of memory for pending records", m->cfg->name);
			return -1;
		}
		rc = pl_meter_pulse(&m->ck.meter, &q, &m->power_mw, m->recs + m->nrecs,
				    m->rcap - m->nrecs, &n);
		if (take_records(r, m, n) != 0)
			return -1;
		if (rc == -PL_ENOSPC) {
			/* Intervals without pulses before it (a stall, a trace's silent stretch):
			 * closed in bounded steps; at a stop the rest is flagged as a gap instead. */
			struct pl_interval_record rec;

			if (advance_meter(r, m, q.t_us) != 0)
				return -1;
			if (stop_requested && pl_meter_step(&m->ck.meter, 0, &rec) == 1) {
				if (reserve(m, 1) != 0)
					return -1;
				m->recs[m->nrecs++] = rec;
			}
			continue;
		}
		if (rc == -PL_EORDER) {
			/* Cannot happen while line times only grow; should it, the pulse counts in
			 * the open interval rather than being lost. */
			if (!m->eorder_logged)
				logmsg("warning", "meter %s: a pulse stamped %" PRId64 " us before the "
				       "meter's time: counted in the open interval", m->cfg->name,
				       m->ck.meter.t_last - q.t_us);
			m->eorder_logged = 1;
			q.t_us = m->ck.meter.t_last;
			continue;
		}
		return 0;
	}
}

/* Processes the samples due now; returns 1 if it did work, 0 if idle, -1 on failure. */
static int meter_step(struct run *r, struct meter_run *m)
{
	struct pl_pulse pulses[PL_DETECTOR_MIN_OUT * 2];
	int64_t limit = INT64_MAX;
	double speed = speed_of(r, m);
	int worked = 0;

	if (m->nrecs + 2 * RECS > PENDING_MAX) {
		/* the store has refused for long: stop taking samples rather than drop records */
		if (m->nrecs > 0 && commit(r, m) < 0)
			return -1;
		return 0;
	}
	if (source_fill(m) == 0)
		return 0;
	if (m->wall0_us == 0) {
		m->wall0_us = now_us(CLOCK_MONOTONIC);
		m->input0_us = m->buf[m->pos].t_us;
	}
	if (speed > 0)
		limit = m->input0_us + (int64_t)((double)(now_us(CLOCK_MONOTONIC) - m->wall0_us) * speed);
	while (source_fill(m) > 0 && m->buf[m->pos].t_us <= limit) {
		size_t avail = m->len - m->pos, take = 0;
		while (take < avail && m->buf[m->pos + take].t_us <= limit)
			take++;
		if (!m->ck.started) {
			pl_meter_start(&m->ck.meter, m->buf[m->pos].t_us);
			m->ck.started = 1;
			m->ck.first_t = m->buf[m->pos].t_us;
		}
		size_t off = 0;
		while (off < take) {
			size_t np = 0;
			size_t used = pl_detector_feed(&m->ck.det, m->buf + m->pos + off, take - off,
						      pulses, sizeof(pulses) / sizeof(pulses[0]), &np);
			for (size_t i = 0; i < np; i++)
				if (meter_pulse(r, m, &pulses[i]) != 0)
					return -1;
			off += used;
		}
		m->last_t = m->buf[m->pos + take - 1].t_us;
		m->pos += take;
		m->ck.consumed += take;
		worked = 1;
		/* close the intervals no pulse can reach any more */
		int64_t h = pl_detector_horizon(&m->ck.det);
		if (h != INT64_MIN) {
			if (meter_reach(r, m, h) != 0)
				return -1;
			if (advance_meter(r, m, h + m->shift_us) != 0)
				return -1;
		}
		if (m->nrecs > 0 && commit(r, m) < 0)
			return -1;
		if (r->duration_s > 0 && m->last_t - m->input0_us >= (int64_t)(r->duration_s * 1e6))
			break;
	}
	return worked;
}

/*
 * A meter that goes on in wall-clock time after a pause (a restart of the daemon, a source
 * that was gone): if the open interval is over, it is closed where observation stopped
 * (PL_Q_PARTIAL, PL_Q_GAP) and a new observation starts now, so the pause gives no records
 * rather than records of zero pulses; within the same interval it just goes on, flagged.
 */
static int resume_meter(struct run *r, struct meter_run *m, int64_t now)
{
	struct pl_meter *mt = &m->ck.meter;
	int64_t iv = (int64_t)mt->cfg.interval_s * PL_US_PER_S;
	struct pl_interval_record rec;

	if (!m->ck.started || mt->cur_start == INT64_MIN) {
		if (pl_meter_start(mt, now) == 0) {
			m->ck.started = 1;
			m->ck.first_t = now;
		}
		return 0;
	}
	if (now < mt->t_last) {
		/* The clock is behind the checkpoint (stepped back while stopped, or not yet set
		 * at boot): a step back, so that no pulse is refused and no start written twice. */
		char span[32];

		format_span(span, sizeof(span), mt->t_last - now);
		logmsg("warning", "meter %s: the wall clock is %s behind the meter's last time; the "
		       "open interval stays open until the clock is back at its end (flagged as a gap)",
		       m->cfg->name, span);
		if (pl_meter_step(mt, now - mt->t_last, &rec) == 1) {
			if (reserve(m, 1) != 0)
				return -1;
			m->recs[m->nrecs++] = rec;
		}
		if (mt->cur_start == INT64_MIN) {
			if (pl_meter_start(mt, now) == 0)
				m->ck.first_t = now;
			return take_records(r, m, 0);
		}
	}
	pl_meter_flag(mt, PL_Q_GAP);
	if (mt->cur_start + iv > now)
		return take_records(r, m, 0);
	while (pl_meter_flush(mt, mt->t_last, &rec) == 1) {
		if (reserve(m, 1) != 0)
			return -1;
		m->recs[m->nrecs++] = rec;
	}
	pl_meter_start(mt, now);
	if (m->switch_pending)
		m->switch_us = align_up(mt->cur_start + iv, (int64_t)m->switch_cfg.interval_s *
					PL_US_PER_S);
	return take_records(r, m, 0);
}

/* ---- live sources ----------------------------------------------------------------------- */

/* The next time to look for closed intervals: just after the open interval's end. */
static void live_schedule_close(const struct run *r, struct meter_run *m)
{
	int64_t iv = (int64_t)m->ck.meter.cfg.interval_s * PL_US_PER_S;
	int64_t t = line_now(r) + m->shift_us; /* the meter's time: the wall clock's */
	int64_t end = (t / iv + 1) * iv;

	m->next_close_us = now_us(CLOCK_MONOTONIC) + (end - t) + LIVE_SLACK_US +
			   (int64_t)m->cfg->debounce_us + 10000;
}

/* Closes what no late sample or edge can still reach, and commits it. */
static int live_close(struct run *r, struct meter_run *m)
{
	int64_t upto = line_now(r) - LIVE_SLACK_US, h;
	struct pl_pulse p;

	if (!m->ck.started)
		return 0;
	if (m->live_self == NULL)
		return 0; /* gone: no records while nothing is seen, the gap shows as a gap */
	if (m->live->kind == PL_LIVE_EDGES) {
		if (pl_edges_advance(&m->edges, upto, &p) == 1 && meter_pulse(r, m, &p) != 0)
			return -1;
		h = pl_edges_horizon(&m->edges);
	} else {
		h = pl_detector_horizon(&m->ck.det);
	}
	if (h == INT64_MIN)
		return 0;
	if (h > upto)
		h = upto;
	if (meter_reach(r, m, h) != 0 || advance_meter(r, m, h + m->shift_us) != 0)
		return -1;
	m->last_t = upto;
	return m->nrecs > 0 && commit(r, m) < 0 ? -1 : 0;
}

static void live_failed(struct run *r, struct meter_run *m, const char *why)
{
	uint32_t ms = pl_backoff_next(&m->live_backoff, (uint32_t)now_us(CLOCK_REALTIME), 0);

	if (ms > LIVE_RETRY_CAP_MS)
		ms = LIVE_RETRY_CAP_MS;
	if (!m->live_failing || strcmp(why, m->live_error) != 0)
		logmsg("error", "meter %s: %s; trying again with backoff (first in %.1f s), the "
		       "other meters carry on", m->cfg->name, why, ms / 1000.0);
	snprintf(m->live_error, sizeof(m->live_error), "%s", why);
	m->live_failing = 1;
	m->live_retry_us = now_us(CLOCK_MONOTONIC) + (int64_t)ms * 1000;
	if (m->ck.started)
		pl_meter_flag(&m->ck.meter, PL_Q_GAP);
	(void)r;
}

static int live_open(struct run *r, struct meter_run *m)
{
	char err[256];
	int rc = pl_live_open_meter(m->live, &m->live_self, m->cfg, err, sizeof(err));
	/* the line is watched from here: edges after this instant are new, even if committing
	 * the resumed meter below takes a while */
	int64_t opened = line_now(r);

	if (rc != 0) {
		m->live_self = NULL;
		live_failed(r, m, err);
		return 0;
	}
	/* "back" only once data flows again (live_read): a device that opens and fails at once
	 * (an unplugged ADC's buffer) must not reset the backoff or log twice per attempt */
	if (meter_reach(r, m, line_now(r)) != 0 || resume_meter(r, m, line_now(r) + m->shift_us) != 0)
		return -1;
	if (m->live->kind == PL_LIVE_EDGES) {
		struct pl_edges_config ec;
		int level = m->live->level ? m->live->level(m->live_self) : -1;

		pl_edges_config_default(&ec);
		ec.min_high_us = ec.min_low_us = m->cfg->debounce_us;
		ec.active_low = (uint8_t)(m->cfg->active_low != 0);
		ec.imp_per_kwh = m->cfg->imp_per_kwh;
		ec.max_power_w = m->cfg->max_power_w;
		pl_edges_init(&m->edges, &ec);
		/* the level the line has now is the state it was already in */
		if (level >= 0)
			pl_edges_feed(&m->edges, opened, level, &(struct pl_pulse){ 0 });
	}
	live_schedule_close(r, m);
	return 1;
}

/* An edge source about to close: the pulse whose end the filter has seen but not yet
 * accepted (the rest level is accepted only as time passes) would be lost with the filter; the
 * line was watched until now, so let that time pass first. */
static int live_settle_edges(struct run *r, struct meter_run *m)
{
	struct pl_pulse p;
	int64_t upto = line_now(r) - LIVE_SLACK_US;

	if (!m->live || m->live->kind != PL_LIVE_EDGES || !m->live_self || !m->ck.started)
		return 0;
	if (upto > m->last_t && pl_edges_advance(&m->edges, upto, &p) == 1)
		return meter_pulse(r, m, &p);
	return 0;
}

static void live_close_source(struct meter_run *m)
{
	if (m->live && m->live_self)
		m->live->close(m->live_self);
	m->live_self = NULL;
}

/* Reads everything the source has now and feeds it on. -1 on a failure of the daemon. */
static int live_read(struct run *r, struct meter_run *m)
{
	static union {
		struct pl_sample s[LIVE_BUF];
		struct pl_live_edge e[LIVE_BUF];
	} buf;
	struct pl_pulse pulses[PL_DETECTOR_MIN_OUT * 2];
	char err[256];

	for (;;) {
		struct pl_live_info info = { 0 };
		/* The sources stamp in wall-clock time (live.h); the pipeline runs on line time,
		 * monotonic: undone with the offset the source converted with, read just before. */
		int64_t to_line = r->clock_off0 - wall_minus_mono();
		int n = m->live->read(m->live_self, &buf, LIVE_BUF, &info, err, sizeof(err));

		if (info.lost > 0) {
			m->lost += info.lost;
			pl_meter_flag(&m->ck.meter, PL_Q_GAP);
		}
		if (n < 0) {
			if (live_settle_edges(r, m) != 0)
				return -1;
			live_close_source(m);
			live_failed(r, m, err);
			return 0;
		}
		if (n == 0)
			return 0;
		if (m->live_failing) {
			logmsg("info", "meter %s: source is back", m->cfg->name);
			m->live_failing = 0;
			pl_backoff_reset(&m->live_backoff);
		}
		if (m->live->kind == PL_LIVE_EDGES) {
			for (int i = 0; i < n; i++) {
				struct pl_pulse p;
				int64_t t = buf.e[i].t_us + to_line;

				/* an edge stamped across a step by a source's own thread (serial) */
				if (t < m->last_in_t)
					t = m->last_in_t;
				/* An edge read later than LIVE_SLACK_US after its time (the loop was busy:
				 * an fsync, a loaded machine) is older than what the filter has already
				 * let pass: it would be refused (-PL_EORDER) and its pulse lost. It counts
				 * at the filter's time instead, a few ms late. */
				if (t < m->edges.t_last)
					t = m->edges.t_last;
				m->last_in_t = t;
				if (pl_edges_feed(&m->edges, t, buf.e[i].level, &p) == 1 &&
				    meter_pulse(r, m, &p) != 0)
					return -1;
				m->last_t = t;
			}
		} else {
			size_t off = 0;

			for (int i = 0; i < n; i++) {
				buf.s[i].t_us += to_line;
				if (buf.s[i].t_us < m->last_in_t)
					buf.s[i].t_us = m->last_in_t;
				m->last_in_t = buf.s[i].t_us;
			}
			while (off < (size_t)n) {
				size_t np = 0;

				off += pl_detector_feed(&m->ck.det, buf.s + off, (size_t)n - off,
							pulses, sizeof(pulses) / sizeof(pulses[0]),
							&np);
				for (size_t i = 0; i < np; i++)
					if (meter_pulse(r, m, &pulses[i]) != 0)
						return -1;
			}
			m->last_t = buf.s[n - 1].t_us;
			m->ck.consumed += (uint64_t)n;
		}
		if (n < LIVE_BUF)
			return 0;
	}
}

/* The end of a file: the detector's last pulses, every interval closed. */
static int meter_finish(struct run *r, struct meter_run *m)
{
	struct pl_pulse pulses[PL_DETECTOR_MIN_OUT * 2];
	size_t np = 0;
	struct pl_interval_record rec;

	pl_detector_finish(&m->ck.det, pulses, sizeof(pulses) / sizeof(pulses[0]), &np);
	for (size_t i = 0; i < np; i++)
		if (meter_pulse(r, m, &pulses[i]) != 0)
			return -1;
	/* the input ends one (mean) sample period after its last sample, as in detect */
	int64_t end = m->last_t + 1;
	if (m->ck.consumed > 1 && m->trace && pl_trace_rate(m->trace) > 0)
		end = m->last_t + pl_trace_index_us(1, pl_trace_rate(m->trace));
	else if (m->ck.consumed > 1 && m->ck.first_t < m->last_t)
		end = m->last_t + (m->last_t - m->ck.first_t) / (int64_t)(m->ck.consumed - 1);
	for (;;) {
		int rc = pl_meter_flush(&m->ck.meter, end, &rec);
		if (rc <= 0)
			break;
		if (reserve(m, 1) != 0) {
			logmsg("error", "meter %s: out of memory for pending records", m->cfg->name);
			return -1;
		}
		m->recs[m->nrecs++] = rec;
		if (take_records(r, m, 0) != 0)
			return -1;
	}
	return commit(r, m) < 0 ? -1 : 0;
}

/* ---- sinks ------------------------------------------------------------------------------ */

/* 1 when every sink has delivered everything committed so far. */
static int sinks_idle(struct run *r)
{
	for (size_t i = 0; i < r->nsinks; i++) {
		struct pl_deliver_status st;

		pl_deliver_status(r->sinks[i].d, &st);
		if (st.idle_gen != r->gen)
			return 0;
	}
	return 1;
}

/* 1 when a sink's thread has stopped on a store failure. */
static int sinks_broken(struct run *r)
{
	for (size_t i = 0; i < r->nsinks; i++) {
		struct pl_deliver_status st;

		pl_deliver_status(r->sinks[i].d, &st);
		if (st.broken)
			return 1;
	}
	return 0;
}

/* ---- status ----------------------------------------------------------------------------- */

/* Local midnight before t_us (the day "today" counts from). */
static int64_t local_midnight_us(int64_t t_us)
{
	time_t t = (time_t)(t_us / PL_US_PER_S);
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL)
		return t_us;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_isdst = -1;
	return (int64_t)mktime(&tm) * PL_US_PER_S;
}

static void status_line(struct run *r)
{
	char line[512];
	size_t o = 0;

	for (size_t i = 0; i < r->nmeters && o < sizeof(line) - 100; i++) {
		struct meter_run *m = &r->meters[i];
		int64_t bound, reg = pl_meter_register(&m->ck.meter);
		int64_t t = m->last_t + m->shift_us; /* the meter's time: the wall clock's */
		int64_t p = pl_meter_power(&m->ck.meter, t, &bound);
		int64_t midnight = local_midnight_us(t);

		if (midnight != m->day_start_us) { /* a new day, or the first line */
			m->day_start_us = midnight;
			if (pl_store_register_at(r->store, m->id, midnight, &m->day_base_uwh) != 0)
				m->day_base_uwh = reg;
		}
		o += (size_t)snprintf(line + o, sizeof(line) - o,
				      "%s%s %.0f W, today %.3f kWh, register %.3f kWh", i ? " | " : "",
				      m->cfg->name, (double)p / 1000.0,
				      (double)(reg - m->day_base_uwh) / 1e9, (double)reg / 1e9);
	}
	for (size_t i = 0; i < r->nsinks && o < sizeof(line) - 100; i++) {
		struct sink_run *k = &r->sinks[i];
		struct pl_deliver_status st;
		int64_t now = now_us(CLOCK_MONOTONIC), oldest;

		/* Counting a backlog is a scan: a long one is counted less often. */
		if (now - k->backlog_at_us >= 100 * k->backlog_cost_us) {
			uint64_t count = 0;
			if (pl_store_backlog(r->store, k->id, &count, &oldest) == 0)
				k->backlog = count;
			k->backlog_at_us = now_us(CLOCK_MONOTONIC);
			k->backlog_cost_us = k->backlog_at_us - now;
		}
		pl_deliver_status(k->d, &st);
		o += (size_t)snprintf(line + o, sizeof(line) - o, " | %s: %s, backlog %" PRIu64,
				      k->cfg->name, st.failing ? "failing" : "ok", k->backlog);
	}
	if (r->tty)
		fprintf(stderr, "\r%s\033[K", line);
	else
		fprintf(stderr, "%s: %s\n", PROG, line);
}

/* ---- set-up ----------------------------------------------------------------------------- */

static const char *default_profile(void)
{
	static const char *const candidates[] = {
		"../shared/data/refit-house1-2015-01-08.csv",
		"shared/data/refit-house1-2015-01-08.csv",
	};
	const char *env = getenv("PL_PROFILE");
	if (env)
		return env;
	for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++)
		if (access(candidates[i], R_OK) == 0)
			return candidates[i];
	return NULL;
}

static int default_config(struct run *r, const char *store_path)
{
	char text[1024];
	struct pl_config_diags diags = { 0 };
	const char *profile = default_profile();

	snprintf(text, sizeof(text),
		 "[store]\npath = %s\n\n[meter house]\nsource = sim\nimp_per_kwh = 1000\n%s%s%s",
		 store_path ? store_path : "powerlogger.db", profile ? "profile = " : "",
		 profile ? profile : "", profile ? "\n" : "");
	if (pl_config_parse_string("(built-in)", text, &r->owned_cfg, &diags) != 0) {
		pl_config_diags_print(&diags, stderr);
		pl_config_diags_free(&diags);
		return -1;
	}
	pl_config_diags_free(&diags);
	r->cfg = r->owned_cfg;
	return 0;
}

/*
 * The checkpoint holds the detector's and the meter's settings as they were when it was
 * written; the configuration may have changed since. The detector's limits (meter constant,
 * maximum power) change at once and it keeps what it learned; a changed polarity makes it
 * learn again. The meter's constant and interval length change at the next boundary of both
 * lengths after the open interval (meter_switch()). Each change is logged.
 */
static int settings_changed(struct run *r, struct meter_run *m)
{
	const struct pl_config_meter *c = m->cfg;
	struct pl_detector *d = &m->ck.det;
	struct pl_meter *mt = &m->ck.meter;
	struct pl_meter_config mc = { .imp_per_kwh = c->imp_per_kwh, .interval_s = c->interval_s };
	char what[160] = "";
	size_t w = 0;

	if (d->cfg.imp_per_kwh != c->imp_per_kwh || d->cfg.max_power_w != c->max_power_w) {
		logmsg("info", "meter %s: max_power_w %" PRIu32 " -> %" PRIu32 ", imp_per_kwh %"
		       PRIu32 " -> %" PRIu32 " since the last run: the detector's limits follow",
		       c->name, d->cfg.max_power_w, c->max_power_w, d->cfg.imp_per_kwh,
		       c->imp_per_kwh);
		pl_detector_set_limits(d, c->imp_per_kwh, c->max_power_w);
	}
	if (d->cfg.polarity != c->polarity) {
		struct pl_detector_config dc = d->cfg;

		logmsg("info", "meter %s: polarity changed since the last run: the detector learns "
		       "the signal again", c->name);
		dc.polarity = (int8_t)c->polarity;
		if (pl_detector_init(d, &dc) != 0)
			return -1;
	}
	if (mt->cfg.imp_per_kwh == mc.imp_per_kwh && mt->cfg.interval_s == mc.interval_s)
		return 0;
	if (mt->cfg.interval_s != mc.interval_s)
		w += (size_t)snprintf(what + w, sizeof(what) - w, "interval_s %" PRIu32 " -> %"
				      PRIu32 ", ", mt->cfg.interval_s, mc.interval_s);
	if (mt->cfg.imp_per_kwh != mc.imp_per_kwh)
		snprintf(what + w, sizeof(what) - w, "imp_per_kwh %" PRIu32 " -> %" PRIu32 ", ",
			 mt->cfg.imp_per_kwh, mc.imp_per_kwh);
	if (mt->cur_start == INT64_MIN) {
		/* no interval open: nothing to finish first */
		int64_t reg = pl_meter_register(mt), t_last = mt->t_last;

		if (pl_meter_init(mt, &mc) != 0)
			return -1;
		pl_meter_set_register(mt, reg);
		if (t_last != INT64_MIN)
			pl_meter_start(mt, align_up(t_last, (int64_t)mc.interval_s * PL_US_PER_S));
		logmsg("info", "meter %s: %ssince the last run: in effect now, the register goes on",
		       c->name, what);
		return 0;
	}
	m->switch_pending = 1;
	m->switch_cfg = mc;
	m->switch_us = align_up(mt->cur_start + (int64_t)mt->cfg.interval_s * PL_US_PER_S,
				(int64_t)mc.interval_s * PL_US_PER_S);
	{
		time_t ts = (time_t)(m->switch_us / PL_US_PER_S);
		struct tm tm;
		char stamp[32];

		gmtime_r(&ts, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
		logmsg("info", "meter %s: %ssince the last run: in effect from %s (the next "
		       "boundary of both interval lengths), the register goes on", c->name, what,
		       stamp);
	}
	(void)r;
	return 0;
}

/*
 * A sink in the store that the configuration no longer has (removed or renamed): its records
 * no longer hold retention back (pl_store_prune() waits only for the configured sinks). Said
 * once at the start, with what it had not received, so a rename is noticed.
 */
static void report_removed_sinks(struct run *r)
{
	struct pl_store_entry e[64];
	size_t n = 0;

	if (r->nsinks == 0 || pl_store_list(r->store, 1, e, 64, &n) != 0)
		return;
	for (size_t i = 0; i < n && i < 64; i++) {
		uint64_t backlog = 0;
		int64_t oldest = 0;
		size_t k = 0;

		while (k < r->nsinks && r->sinks[k].id != e[i].id)
			k++;
		if (k < r->nsinks)
			continue;
		pl_store_backlog(r->store, e[i].id, &backlog, &oldest);
		logmsg("info", "sink %s is in the store but not in the configuration: %" PRIu64
		       " record(s) it never received may now be pruned (put it back under the "
		       "same name to have them delivered)", e[i].name, backlog);
	}
}

static int setup(struct run *r)
{
	char err[512];
	int rc = pl_store_lock(r->cfg->store.path, &r->lock_fd, err, sizeof(err));

	if (rc != 0) {
		logmsg("error", "%s", err);
		return -1;
	}
	/* The integrity check of an existing store reads the whole file: the sinks start
	 * reading and posting meanwhile, and nothing is written before it has passed. */
	rc = pl_store_open(r->cfg->store.path, PL_STORE_CREATE | PL_STORE_DEFER_CHECK,
			       &r->store, err, sizeof(err));
	if (rc != 0) {
		logmsg("error", "%s", err);
		return -1;
	}
	r->clock_off0 = r->clock_off = wall_minus_mono();
	r->nmeters = r->cfg->nmeters;
	r->meters = calloc(r->nmeters ? r->nmeters : 1, sizeof(*r->meters));
	r->nsinks = r->cfg->ninflux;
	r->sinks = calloc(r->nsinks ? r->nsinks : 1, sizeof(*r->sinks));
	if (!r->meters || !r->sinks) {
		logmsg("error", "out of memory");
		return -1;
	}
	for (size_t i = 0; i < r->nsinks; i++) {
		struct sink_run *s = &r->sinks[i];
		const struct pl_config_influx *c = &r->cfg->influx[i];

		s->cfg = c;
		if (pl_store_sink(r->store, c->name, &s->id) != 0) { /* a new one: checks first */
			logmsg("error", "store: %s", pl_store_error(r->store));
			return -1;
		}
		if (pl_influx_deliver_start(r->cfg->store.path, c, s->id, PROG, &s->d) != 0)
			return -1;
	}
	if (pl_store_check(r->store) != 0) {
		logmsg("error", "%s", pl_store_error(r->store));
		return -1;
	}
	for (size_t i = 0; i < r->nsinks; i++)
		pl_deliver_allow_writes(r->sinks[i].d);
	report_removed_sinks(r);
	prune(r); /* before the first commit: the size bound may already be reached */
	r->next_prune_us = now_us(CLOCK_MONOTONIC) + PRUNE_EVERY_US;
	for (size_t i = 0; i < r->nmeters; i++) {
		struct meter_run *m = &r->meters[i];
		const struct pl_config_meter *c = &r->cfg->meters[i];
		size_t len = 0;
		m->cfg = c;
		if (pl_store_meter(r->store, c->name, c->imp_per_kwh, c->interval_s, &m->id) != 0) {
			logmsg("error", "store: %s", pl_store_error(r->store));
			return -1;
		}
		rc = pl_store_load_checkpoint(r->store, m->id, &m->ck, sizeof(m->ck), &len);
		if (rc == 0 && pl_checkpoint_valid(&m->ck, len)) {
			if (!r->quiet)
				logmsg("info", "meter %s: resuming from its checkpoint (%" PRIu64
				       " samples in, register %.3f kWh)", c->name, m->ck.consumed,
				       (double)pl_meter_register(&m->ck.meter) / 1e9);
			if (settings_changed(r, m) != 0) {
				logmsg("error", "meter %s: bad detector or meter settings", c->name);
				return -1;
			}
		} else {
			if (rc == 0 || rc == -PL_ENOSPC)
				logmsg("warning", "meter %s: checkpoint of another version ignored",
				       c->name);
			else if (rc != -PL_ENOENT) {
				logmsg("error", "store: %s", pl_store_error(r->store));
				return -1;
			}
			struct pl_detector_config dc;
			struct pl_meter_config mc = { .imp_per_kwh = c->imp_per_kwh,
						      .interval_s = c->interval_s };
			memset(&m->ck, 0, sizeof(m->ck));
			m->ck.magic = PL_CKPT_MAGIC;
			m->ck.version = PL_CKPT_VERSION;
			m->ck.det_size = sizeof(m->ck.det);
			m->ck.meter_size = sizeof(m->ck.meter);
			pl_detector_config_default(&dc);
			dc.imp_per_kwh = c->imp_per_kwh;
			dc.max_power_w = c->max_power_w;
			dc.polarity = (int8_t)c->polarity;
			if (pl_detector_init(&m->ck.det, &dc) != 0 || pl_meter_init(&m->ck.meter, &mc) != 0) {
				logmsg("error", "meter %s: bad detector or meter settings", c->name);
				return -1;
			}
			pl_meter_set_register(&m->ck.meter, c->start_register_uwh);
		}
		m->live = pl_live_ops_for(c->source);
		if (m->live == NULL && c->source != PL_CONFIG_SOURCE_SIM &&
		    c->source != PL_CONFIG_SOURCE_FILE) {
			logmsg("error", "meter %s: source %s is not built into this program",
			       c->name, pl_config_source_name(c->source));
			return -1;
		}
		if (!m->live && source_open(r, m) != 0)
			return -1;
		/* A simulated or live meter goes on in wall-clock time after a restart: a new
		 * detector (what it learned may no longer hold), the register kept. */
		if ((m->sim || m->live) && m->ck.consumed > 0)
			pl_detector_init(&m->ck.det, NULL);
		if (m->sim && m->ck.consumed > 0 && resume_meter(r, m, m->ck.epoch_us) != 0)
			return -1;
		if (m->live && live_open(r, m) < 0)
			return -1;
	}
	return 0;
}

/*
 * The store's file was deleted or replaced (r->moved); the sinks have stopped, only the main
 * connection is left. Its content goes into a new file beside the path first, then the store
 * is closed, and only then does the copy take the path: while a connection of the old file is
 * open, SQLite may still delete the -wal and -shm by their names. A replaced file is never
 * overwritten: the copy keeps its own name, and the daemon stops (exit 1). Sets r->moved to 0
 * when the store is back at its path (the caller restarts), to -1 when it stays elsewhere.
 */
static void store_rescue(struct run *r)
{
	const char *path = r->cfg->store.path;
	char tmp[4096], saved[4096], stamp[32];
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(tmp, sizeof(tmp), "%s.restoring-%ld", path, (long)getpid());
	snprintf(saved, sizeof(saved), "%s.saved-%s", path, stamp);
	if (pl_store_save_copy(r->store, r->moved == PL_STORE_DELETED ? tmp : saved) != 0) {
		logmsg("error", "%s; what this run stored is lost", pl_store_error(r->store));
		pl_store_close_moved(r->store);
		r->moved = -1;
		return;
	}
	pl_store_close_moved(r->store);
	if (r->moved == PL_STORE_DELETED) {
		/* link(): fails rather than overwrite a file that appeared at the path meanwhile */
		if (link(tmp, path) == 0) {
			unlink(tmp);
			logmsg("info", "store %s: written back, nothing lost", path);
			r->moved = 0;
			return;
		}
		if (rename(tmp, saved) != 0)
			snprintf(saved, sizeof(saved), "%s", tmp);
	}
	logmsg("error", "store %s: this run's store is saved as %s (nothing lost); move it back "
	       "to %s, or point [store] path at it, and start again", path, saved, path);
	r->moved = -1;
}

static void teardown(struct run *r)
{
	for (size_t i = 0; i < r->nmeters; i++) {
		struct meter_run *m = &r->meters[i];
		pl_trace_free(m->trace);
		pl_sim_free(m->sim);
		live_close_source(m);
		free(m->recs);
		if (m->have_load)
			pl_sim_load_free(&m->load);
	}
	for (size_t i = 0; i < r->nsinks; i++) {
		struct pl_deliver_status st;

		if (r->sinks[i].d == NULL)
			continue;
		pl_deliver_stop(r->sinks[i].d, STOP_GRACE_MS, &st);
		if (st.delivered > 0 && st.last_ack_us > st.first_post_us) {
			double s = (double)(st.last_ack_us - st.first_post_us) / 1e6;
			logmsg("info", "sink %s: %" PRIu64 " records delivered in this run, %.3f s from "
			       "the first request to the last acknowledgement (%.1f records/s)%s",
			       r->sinks[i].cfg->name, st.delivered, s, (double)st.delivered / s,
			       st.quarantined ? "; some quarantined" : "");
		}
	}
	free(r->meters);
	free(r->sinks);
	if (r->store && r->moved)
		store_rescue(r); /* closes the store */
	else if (r->store)
		pl_store_close(r->store);
	r->store = NULL;
	if (r->lock_fd >= 0) {
		/* the PID goes first, so that nobody names this process once it is gone */
		if (ftruncate(r->lock_fd, 0) != 0) {
			/* only a later message could name a stale PID */
		}
		close(r->lock_fd); /* only now: another logger may take the store over */
	}
	pl_config_free(r->owned_cfg);
}

/* The signals the loop handles (on_signal): blocked across a re-exec, unblocked once the
 * handlers are in place. */
static void handled_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGUSR2);
}

/*
 * SIGINT and SIGTERM stop the logger; SIGHUP reloads it (see reload_ok()). The handlers go in
 * before the signals are unblocked: a reload re-executes the program with them blocked, so a
 * signal that arrives meanwhile waits for the new image instead of killing it. A terminal that
 * went away (SIGHUP, then EIO on every write to stderr) cannot stop or wedge the logger: writes
 * to it just fail, and SIGPIPE is ignored.
 */
static void install_signals(void)
{
	struct sigaction sa;
	sigset_t set;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* Their default action ends the process without a checkpoint (a log rotation script
	 * that sends SIGUSR1 to every daemon): logged and otherwise ignored. */
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* A file size limit (ulimit -f) would kill it in the middle of a commit: ignored, the
	 * write fails with EFBIG instead, and the records wait as on a full disk. */
	signal(SIGXFSZ, SIG_IGN);
	handled_signals(&set);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
}

/*
 * SIGHUP: the configuration is read again first. With errors, the logger says why and goes on
 * with the configuration it runs. Otherwise it stops exactly as on SIGTERM (every meter
 * checkpointed) and executes itself again with the same arguments: same PID, so systemd's
 * ExecReload=kill -HUP $MAINPID works, and the open interval goes on from its checkpoint.
 */
static int reload_ok(const struct run *r, const char *config)
{
	struct pl_config *cfg = NULL;
	char err[512];
	int fd;

	if (r->store_failing) {
		/* the records waiting in memory would be lost with the old process */
		logmsg("error", "SIGHUP: not reloading while the store refuses new records (they "
		       "wait in memory); send it again once the store writes");
		return 0;
	}
	if (config == NULL) {
		logmsg("info", "SIGHUP: restarting (no configuration file to read again)");
		return 1;
	}
	if (pl_config_load_for(config, PROG, &cfg) != 0) {
		logmsg("error", "SIGHUP: %s has errors (above): going on with the configuration "
		       "read at the start", config);
		return 0;
	}
	/* A store that another logger holds would stop this one at the restart: refuse. (The
	 * lock is on a file of its own, so closing it again disturbs no SQLite lock.) */
	if (strcmp(cfg->store.path, r->cfg->store.path) != 0) {
		if (pl_store_lock(cfg->store.path, &fd, err, sizeof(err)) != 0) {
			logmsg("error", "SIGHUP: %s; going on with the configuration read at the "
			       "start", err);
			pl_config_free(cfg);
			return 0;
		}
		close(fd);
	}
	pl_config_free(cfg);
	logmsg("info", "SIGHUP: %s is valid: checkpointing and restarting with it", config);
	return 1;
}

/* Executes this program again as `powerlogger run ARGS...`; returns only on failure. */
static void restart_self(int argc, char **argv)
{
	char **args = calloc((size_t)argc + 2, sizeof(*args));
	sigset_t set;

	if (args == NULL) {
		logmsg("error", "restart: out of memory");
		return;
	}
	args[0] = program_invocation_name;
	for (int i = 0; i < argc; i++)
		args[i + 1] = argv[i];
	handled_signals(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
	fflush(NULL);
	/* /proc/self/exe: this very program, even if its file was replaced meanwhile */
	execv("/proc/self/exe", args);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	logmsg("error", "restart: cannot execute /proc/self/exe: %s", strerror(errno));
	free(args);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: powerlogger run [-c FILE] [options]\n"
		"\n"
		"Logs every configured meter into the store and delivers the interval records to every\n"
		"configured InfluxDB, exactly once, across outages, restarts and power cuts. Without -c,\n"
		"a simulated meter (a real household's load profile when ../shared/data is there) is\n"
		"logged into ./powerlogger.db.\n"
		"\n"
		"Options:\n"
		"  -c, --config FILE    configuration (see docs/powerlogger.example.ini;\n"
		"                       check it with `powerlogger check-config FILE`)\n"
		"      --store PATH     store file when running without -c (default powerlogger.db)\n"
		"      --speed X        replay speed for every meter (0: as fast as possible)\n"
		"      --duration S     stop after S seconds of input\n"
		"      --until-drained  with file sources: stop once every file is read and every\n"
		"                       record delivered\n"
		"  -q, --quiet          no status line\n"
		"  -h, --help           this help\n"
		"\n"
		"SIGINT/SIGTERM stop it cleanly: the state is checkpointed, a restart resumes.\n"
		"SIGHUP reloads: a valid configuration is taken up by a clean restart in place\n"
		"(same PID); one with errors is reported and the running one kept.\n");
}

int pl_cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "store", required_argument, NULL, 's' },
		{ "speed", required_argument, NULL, 'x' },
		{ "duration", required_argument, NULL, 'd' },
		{ "until-drained", no_argument, NULL, 'u' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct run r;
	const char *config = NULL, *store_path = NULL;
	int c, status = 0, reexec = 0, was_moved;

	memset(&r, 0, sizeof(r));
	r.lock_fd = -1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:qh", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 's':
			store_path = optarg;
			break;
		case 'x':
			r.speed_override = strtod(optarg, &end);
			if (*end || r.speed_override < 0) {
				fprintf(stderr, PROG ": --speed wants a number >= 0\n");
				return 2;
			}
			r.have_speed_override = 1;
			break;
		case 'd':
			r.duration_s = strtod(optarg, &end);
			if (*end || r.duration_s <= 0) {
				fprintf(stderr, PROG ": --duration wants seconds > 0\n");
				return 2;
			}
			break;
		case 'u':
			r.until_drained = 1;
			break;
		case 'q':
			r.quiet = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (config) {
		if (pl_config_load_for(config, PROG, &r.owned_cfg) != 0)
			return 2;
		/* Without a meter only forwarding the store's backlog is work; anything else
		 * would run forever doing nothing. */
		if (r.owned_cfg->nmeters == 0 && !r.until_drained) {
			fprintf(stderr, PROG ": %s: no [meter NAME] section: nothing to log (only "
				"--until-drained, delivering what the store holds, runs without one)\n",
				config);
			pl_config_free(r.owned_cfg);
			return 2;
		}
		r.cfg = r.owned_cfg;
	} else if (default_config(&r, store_path) != 0) {
		return 1;
	}
	r.tty = isatty(STDERR_FILENO) && !r.quiet;
	install_signals();
	if (setup(&r) != 0) {
		teardown(&r);
		return 1;
	}
	sd_notify(0, "READY=1");
	uint64_t wd_usec = 0;
	int64_t last_status = 0, last_wd = 0;
	/* the status line: live on a terminal, a log line a minute otherwise (the journal) */
	int64_t status_every = r.tty ? PL_US_PER_S : 60 * PL_US_PER_S;
	if (sd_watchdog_enabled(0, &wd_usec) <= 0)
		wd_usec = 0;
	struct pollfd *pfd = calloc(r.nmeters + 1, sizeof(*pfd));
	size_t *pidx = calloc(r.nmeters + 1, sizeof(*pidx));
	if (!pfd || !pidx) {
		logmsg("error", "out of memory");
		status = 1;
		goto out;
	}
	int worked = 1;
	r.started_us = now_us(CLOCK_MONOTONIC);
	while (!stop_requested && !r.moved) {
		int all_eof = 1, all_duration = r.duration_s > 0, np = 0;
		int64_t now = now_us(CLOCK_MONOTONIC), wake = INT64_MAX;

		/* When to wake: the paced sources' next look, a live source's interval close or
		 * retry, the status line, the watchdog; and any live fd that becomes readable.
		 * Pruning rides on other wake-ups: with one GPIO meter and no pulse, the loop
		 * wakes once per interval. */
		for (size_t i = 0; i < r.nmeters; i++) {
			struct meter_run *m = &r.meters[i];

			if (!m->live) {
				if (!m->eof_done)
					wake = MIN64(wake, now + (worked ? 0 : 10000));
			} else if (m->live_self) {
				pfd[np].fd = m->live->fd(m->live_self);
				pfd[np].events = POLLIN;
				pidx[np++] = i;
				wake = MIN64(wake, m->next_close_us);
				/* An IIO buffer gives no poll event once its device is gone: a
				 * sample source that falls silent is read anyway, once a second,
				 * for the read to notice. (Edge sources are silent by nature.) */
				if (m->live->kind == PL_LIVE_SAMPLES)
					wake = MIN64(wake, m->last_read_us + PL_US_PER_S);
			} else {
				wake = MIN64(wake, m->live_retry_us);
			}
		}
		if (!r.quiet)
			wake = MIN64(wake, last_status + status_every);
		if (wd_usec)
			wake = MIN64(wake, last_wd + (int64_t)wd_usec / 2);
		if (r.until_drained && r.flushing)
			wake = MIN64(wake, now + 1000); /* the end is near: look often */
		if (r.nsinks > 0 && (r.until_drained || r.duration_s > 0))
			wake = MIN64(wake, now + 100000); /* sinks' state for the exit checks */
		if (r.duration_s > 0)
			wake = MIN64(wake, r.started_us + (int64_t)(r.duration_s * 1e6));
		int timeout = wake == INT64_MAX ? -1 :
			      wake <= now ? 0 : (int)MIN64((wake - now + 999) / 1000, 60000);
		if (poll(pfd, (nfds_t)np, timeout) < 0 && errno != EINTR) {
			logmsg("error", "poll: %s", strerror(errno));
			status = 1;
			goto out;
		}
		if (got_usr1 || got_usr2) {
			logmsg("info", "%s%s%s ignored (SIGHUP reloads, SIGTERM stops)",
			       got_usr1 ? "SIGUSR1" : "", got_usr1 && got_usr2 ? " and " : "",
			       got_usr2 ? "SIGUSR2" : "");
			got_usr1 = got_usr2 = 0;
		}
		if (reload_requested) {
			reload_requested = 0;
			if (reload_ok(&r, config)) {
				reexec = 1;
				break;
			}
		}
		r.wakeups++;
		worked = 0;
		check_clock(&r);
		for (int k = 0; k < np; k++) {
			struct meter_run *m = &r.meters[pidx[k]];

			int silent = m->live->kind == PL_LIVE_SAMPLES &&
				     now_us(CLOCK_MONOTONIC) - m->last_read_us >= PL_US_PER_S;

			if (!pfd[k].revents && !silent)
				continue;
			m->last_read_us = now_us(CLOCK_MONOTONIC);
			if (m->live_self && live_read(&r, m) != 0) {
				status = 1;
				goto out;
			}
		}
		now = now_us(CLOCK_MONOTONIC);
		for (size_t i = 0; i < r.nmeters; i++) {
			struct meter_run *m = &r.meters[i];

			if (m->live) {
				if (m->live_self && now >= m->next_close_us) {
					if (live_close(&r, m) != 0) {
						status = 1;
						goto out;
					}
					live_schedule_close(&r, m);
				} else if (!m->live_self && now >= m->live_retry_us &&
					   live_open(&r, m) < 0) {
					status = 1;
					goto out;
				}
				all_eof = 0;
				/* --duration: of wall time, for a source that lives in it */
				if (!(r.duration_s > 0 &&
				      now - r.started_us >= (int64_t)(r.duration_s * 1e6)))
					all_duration = 0;
				continue;
			}
			int w = meter_step(&r, m);
			if (w < 0) {
				status = 1;
				goto out;
			}
			worked |= w;
			if (m->eof && m->pos >= m->len && m->ck.consumed > 0 && !m->have_load &&
			    m->trace && !m->eof_done) {
				if (meter_finish(&r, m) != 0) {
					status = 1;
					goto out;
				}
				m->eof_done = 1;
			}
			if (m->eof_done && m->nrecs > 0 && commit(&r, m) < 0) {
				status = 1; /* the end of a file, not yet in the store */
				goto out;
			}
			if (!(m->trace && m->eof_done && m->nrecs == 0))
				all_eof = 0;
			if (!(r.duration_s > 0 && m->last_t - m->input0_us >= (int64_t)(r.duration_s * 1e6)))
				all_duration = 0;
		}
		if (all_eof && !r.flushing) {
			/* every file read: no record is coming to fill a partial batch */
			r.flushing = 1;
			for (size_t i = 0; i < r.nsinks; i++)
				pl_deliver_kick(r.sinks[i].d, r.gen, 1);
		}
		if (sinks_broken(&r)) {
			status = 1;
			goto out;
		}
		if (now >= r.next_prune_us) {
			prune(&r);
			r.next_prune_us = now + PRUNE_EVERY_US;
		}
		if (!r.quiet && now - last_status >= status_every) {
			status_line(&r);
			last_status = now;
		}
		if (wd_usec && now - last_wd >= (int64_t)wd_usec / 2) {
			sd_notify(0, "WATCHDOG=1");
			last_wd = now;
		}
		if (all_duration)
			break;
		if (r.until_drained && all_eof && sinks_idle(&r))
			break;
	}
out:
	sd_notify(0, reexec ? "RELOADING=1" : "STOPPING=1");
	free(pfd);
	free(pidx);
	if (getenv("PL_REPORT_WAKEUPS"))
		logmsg("info", "main loop: %" PRIu64 " wake-ups", r.wakeups);
	was_moved = r.moved != 0;
	/* Checkpoint where each meter stands, so a restart resumes exactly here. */
	r.store_retry_us = 0; /* a last attempt, whenever the previous one was */
	for (size_t i = 0; i < r.nmeters && r.store; i++) {
		struct meter_run *m = &r.meters[i];

		if (live_settle_edges(&r, m) != 0)
			status = 1;
		if (m->eof_done && m->nrecs == 0)
			continue;
		if (commit(&r, m) != 0) {
			logmsg("error", "meter %s: %zu interval records could not be stored and are "
			       "lost%s", m->cfg->name, m->nrecs,
			       m->trace ? " (a restart replays them from the file)" : "");
			status = 1;
		}
	}
	if (r.tty)
		fputc('\n', stderr);
	teardown(&r);
	if (r.moved == 0 && status == 0 && !stop_requested && (reexec || was_moved))
		restart_self(argc, argv); /* returns only if exec failed */
	if (r.moved != 0)
		status = 1;
	return status;
}
