/* SPDX-License-Identifier: MIT */
/*
 * The daemon's poll loop (see daemon.h): one thread, woken by a device's fd, a paced source's
 * next sample, an interval's close, a retry, the status line or the watchdog; nothing else
 * waits. Every clock reading goes through clock.h, so the loop runs under a fake clock in
 * tests/test_daemon.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "clock.h"
#include "daemon/run.h"
#include "log.h"

/* Steps smaller than this are reading noise or NTP's own fine corrections: not acted on. */
#define CLOCK_STEP_TOL_US 10000

/*
 * Watches the wall clock against the monotonic one (each wake-up of the loop: every edge or
 * block of samples, every interval's close). A step is logged once and handed to every sim
 * and live meter; file sources replay their own time and ignore it. Two steps before the first
 * took effect add up.
 */
static void check_clock(struct run *r)
{
	int64_t off = pl_clock_wall_minus_mono_us(), d = off - r->clock_off;
	char span[32], when[40];
	time_t now;
	struct tm tm;

	if (d <= CLOCK_STEP_TOL_US && d >= -CLOCK_STEP_TOL_US)
		return;
	r->clock_off = off;
	now = (time_t)(pl_clock_wall_us() / PL_US_PER_S);
	if (gmtime_r(&now, &tm) == NULL || strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(when, sizeof(when), "%lld", (long long)now);
	format_span(span, sizeof(span), d);
	pl_log(PL_LOG_WARNING, "the wall clock was stepped %s by %s (now %s)%s",
	       d > 0 ? "forward" : "back", span, when,
	       d > 0 ? "; the intervals of the step are flagged as a gap, the span skipped gets no "
	       "records (or the system was suspended)" : "; the open intervals stay open until the "
	       "clock is back at their end, so that no interval is stamped twice; they are flagged "
	       "as a gap");
	for (size_t i = 0; i < r->nmeters; i++) {
		struct meter_run *m = &r->meters[i];

		if (m->src->timeline == PL_LIVE_REPLAY)
			continue;
		/* two steps before the first took effect add up */
		meter_clock_step(m, feed_step_at(r, m), d);
	}
}


/* What the loop polls: an fd per open device, and the meter each belongs to. */
struct loop_fds {
	struct pollfd *pfd;
	size_t *meter;
	int n;
	int64_t status_every, last_status, last_wd;
	uint64_t wd_usec;
};

/*
 * When to wake: the paced sources' next look, a device's interval close or retry, the status
 * line, the watchdog; and any device fd that becomes readable. Pruning rides on other
 * wake-ups: with one GPIO meter and no pulse, the loop wakes once per interval. Returns the
 * poll timeout in ms (-1: none).
 */
static int loop_wake(struct run *r, struct loop_fds *f, int64_t now)
{
	int64_t wake = INT64_MAX;
	const struct pl_daemon_options *o = r->o;

	f->n = 0;
	for (size_t i = 0; i < r->nmeters; i++) {
		int fd;

		wake = MIN64(wake, feed_wake(r, &r->meters[i], now, &fd));
		if (fd >= 0) {
			f->pfd[f->n].fd = fd;
			f->pfd[f->n].events = POLLIN;
			f->meter[f->n++] = i;
		}
	}
	if (!o->quiet)
		wake = MIN64(wake, f->last_status + f->status_every);
	if (r->cfg->nmqtt > 0) /* the detectors' view for P/M/diag */
		wake = MIN64(wake, r->next_diag_us);
	if (r->live) /* the web server's view */
		wake = MIN64(wake, r->next_live_us);
	if (f->wd_usec)
		wake = MIN64(wake, f->last_wd + (int64_t)f->wd_usec / 2);
	if (o->until_drained && r->flushing)
		wake = MIN64(wake, now + 1000); /* the end is near: look often */
	if (r->nsinks > 0 && (o->until_drained || o->duration_s > 0))
		wake = MIN64(wake, now + 100000); /* sinks' state for the exit checks */
	if (o->duration_s > 0)
		wake = MIN64(wake, r->started_us + (int64_t)(o->duration_s * 1e6));
	return wake == INT64_MAX ? -1 : wake <= now ? 0 : (int)MIN64((wake - now + 999) / 1000, 60000);
}

/* The meters' work of one wake-up: the devices that were readable (or silent), then each
 * meter's timers or paced reads. 1 when the run is over (--duration, --until-drained), 0 to
 * go on, -1 on a failure. */
static int loop_meters(struct run *r, struct loop_fds *f)
{
	int all_eof = 1, all_duration = r->o->duration_s > 0;
	int64_t now;

	for (int k = 0; k < f->n; k++)
		if (feed_poll_device(r, &r->meters[f->meter[k]], f->pfd[k].revents != 0) != 0)
			return -1;
	now = pl_clock_mono_us();
	for (size_t i = 0; i < r->nmeters; i++) {
		if (feed_tick(r, &r->meters[i], now) != 0)
			return -1;
		feed_done(r, &r->meters[i], now, &all_eof, &all_duration);
	}
	if (all_eof && !r->flushing) {
		/* every file read: no record is coming to fill a partial batch */
		r->flushing = 1;
		for (size_t i = 0; i < r->nsinks; i++)
			pl_deliver_kick(r->sinks[i].d, r->gen, 1);
	}
	if (sinks_broken(r))
		return -1;
	if (now >= r->next_prune_us) {
		daemon_prune(r);
		r->next_prune_us = now + PRUNE_EVERY_US;
	}
	if (now >= r->next_diag_us) {
		status_mqtt_diag(r);
		r->next_diag_us = now + DIAG_EVERY_US;
	}
	if (r->live && now >= r->next_live_us) {
		status_live(r);
		r->next_live_us = now + PL_LIVE_EVERY_US;
	}
	if (!r->o->quiet && now - f->last_status >= f->status_every) {
		status_line(r);
		f->last_status = now;
	}
	if (f->wd_usec && now - f->last_wd >= (int64_t)f->wd_usec / 2) {
		sd_notify(0, "WATCHDOG=1");
		f->last_wd = now;
	}
	if (all_duration)
		return 1;
	return r->o->until_drained && all_eof && sinks_idle(r) ? 1 : 0;
}

/* Runs until a stop, the end, a reload (*reexec) or a failure; the exit status. */
static int loop(struct run *r, int *reexec)
{
	struct loop_fds f = { 0 };
	int status = 0;

	/* the status line: live on a terminal, a log line a minute otherwise (the journal) */
	f.status_every = r->o->tty ? PL_US_PER_S : 60 * PL_US_PER_S;
	if (sd_watchdog_enabled(0, &f.wd_usec) <= 0)
		f.wd_usec = 0;
	f.pfd = calloc(r->nmeters + 1, sizeof(*f.pfd));
	f.meter = calloc(r->nmeters + 1, sizeof(*f.meter));
	if (!f.pfd || !f.meter) {
		pl_log(PL_LOG_ERROR, "out of memory");
		status = 1;
		goto out;
	}
	r->started_us = pl_clock_mono_us();
	while (!daemon_stopping() && !r->moved) {
		int timeout = loop_wake(r, &f, pl_clock_mono_us()), rc;

		if (pl_clock_wait(f.pfd, (nfds_t)f.n, timeout) < 0 && errno != EINTR) {
			pl_log(PL_LOG_ERROR, "poll: %s", strerror(errno));
			status = 1;
			break;
		}
		daemon_report_ignored_signals();
		if (daemon_take_reload() && daemon_reload_ok(r)) {
			*reexec = 1;
			break;
		}
		r->wakeups++;
		check_clock(r);
		rc = loop_meters(r, &f);
		if (rc != 0) {
			status = rc < 0;
			break;
		}
	}
out:
	free(f.pfd);
	free(f.meter);
	return status;
}

/* Checkpoints where each meter stands, so a restart resumes exactly here. */
static int checkpoint_all(struct run *r)
{
	int status = 0;

	r->store_retry_us = 0; /* a last attempt, whenever the previous one was */
	for (size_t i = 0; i < r->nmeters && r->store; i++) {
		struct meter_run *m = &r->meters[i];

		if (feed_settle(r, m) != 0)
			status = 1;
		if (m->finished && m->nrecs == 0)
			continue;
		if (meter_commit(r, m) != 0) {
			pl_log(PL_LOG_ERROR, "meter %s: %zu interval records could not be stored and are "
			       "lost%s", m->cfg->name, m->nrecs, m->src->timeline == PL_LIVE_REPLAY ?
			       " (a restart replays them from the file)" : "");
			status = 1;
		}
	}
	return status;
}

int pl_daemon_run(const struct pl_daemon_options *o, int *restart)
{
	struct run r;
	int status, reexec = 0, was_moved;

	memset(&r, 0, sizeof(r));
	r.o = o;
	r.cfg = o->cfg;
	r.lock_fd = -1;
	*restart = 0;
	pl_log_set_prog(PROG);
	daemon_signals_install();
	if (daemon_setup(&r) != 0) {
		daemon_teardown(&r);
		return 1;
	}
	sd_notify(0, "READY=1");
	status = loop(&r, &reexec);
	sd_notify(0, reexec ? "RELOADING=1" : "STOPPING=1");
	if (getenv("PL_REPORT_WAKEUPS"))
		pl_log(PL_LOG_INFO, "main loop: %" PRIu64 " wake-ups", r.wakeups);
	was_moved = r.moved != 0;
	if (checkpoint_all(&r) != 0)
		status = 1;
	if (o->tty)
		fputc('\n', pl_log_stream());
	daemon_teardown(&r);
	*restart = r.moved == 0 && status == 0 && !daemon_stopping() && (reexec || was_moved);
	if (r.moved != 0)
		status = 1;
	return status;
}
