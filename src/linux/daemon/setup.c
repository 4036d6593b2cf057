/* SPDX-License-Identifier: MIT */
/*
 * The daemon's start and end around its store: the lock (one logger per store), the store
 * opened with its integrity check deferred (the sinks start meanwhile), the sinks' threads,
 * every meter loaded from its checkpoint and its source opened; the retention policy; and at
 * the end the sinks stopped with a grace time, the store closed, or rescued when its file
 * went away under the logger.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "daemon/run.h"
#include "log.h"
#include "sinks/influx_config.h"
#include "sinks/mqtt_config.h"

/* Applies the store's retention policy (see store.h). */
void daemon_prune(struct run *r)
{
	struct pl_store_prune_result res;
	const struct pl_config_store *c = &r->cfg->store;
	int64_t keep = c->retention_days ? (int64_t)c->retention_days * 86400 : INT64_MAX;
	int rc = pl_store_prune(r->store, keep, (uint64_t)c->max_size_mb << 20, &res);

	if (rc != 0 && rc != -PL_ENOSPC)
		pl_log(PL_LOG_WARNING, "store: %s", pl_store_error(r->store));
	else if (res.deleted_by_age + res.deleted_by_size > 0 && !r->o->quiet)
		pl_log(PL_LOG_INFO, "store: %" PRIu64 " delivered records removed by the retention policy"
		       " (%" PRIu64 " by age, %" PRIu64 " by size)",
		       res.deleted_by_age + res.deleted_by_size, res.deleted_by_age,
		       res.deleted_by_size);
}

/*
 * After a commit: is the store's file still at its path? One stat(). Deleted or replaced, the
 * daemon stops as on SIGTERM (everything checkpointed, into the open file), then
 * store_rescue() saves what the open file holds before the store is closed.
 */
void store_check_place(struct run *r)
{
	r->moved = pl_store_moved(r->store);
	if (r->moved == PL_STORE_DELETED)
		pl_log(PL_LOG_ERROR, "store %s: the file was deleted while the logger runs: writing "
		       "everything back to it and restarting", r->cfg->store.path);
	else if (r->moved == PL_STORE_REPLACED)
		pl_log(PL_LOG_ERROR, "store %s: the file was replaced by another one while the logger "
		       "runs: that file is left alone; saving this run's store beside it and "
		       "stopping", r->cfg->store.path);
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
		pl_log(PL_LOG_INFO, "sink %s is in the store but not in the configuration: %" PRIu64
		       " record(s) it never received may now be pruned (put it back under the "
		       "same name to have them delivered)", e[i].name, backlog);
	}
}

/*
 * The web server (http/http.h), last: it shows the meters as loaded. Its live box is filled
 * once before the first request can come. An address that cannot be bound is a failure of the
 * start (exit 1), not a warning: the user asked for the page, and a logger that silently
 * serves nothing is the very thing [http] listen was made real to end.
 */
static int http_start(struct run *r)
{
	char err[512];

	if (r->cfg->http.listen == NULL)
		return 0;
	r->live = pl_live_new(r->nmeters, r->nsinks);
	r->live_tmp = pl_live_new(r->nmeters, r->nsinks);
	if (r->live == NULL || r->live_tmp == NULL) {
		pl_log(PL_LOG_ERROR, "out of memory");
		return -1;
	}
	status_live(r);
	r->next_live_us = pl_clock_mono_us() + PL_LIVE_EVERY_US;
	if (pl_http_start(r->cfg, r->live, &r->http, err, sizeof(err)) != 0) {
		pl_log(PL_LOG_ERROR, "[http] listen: %s", err);
		return -1;
	}
	if (!r->o->quiet)
		pl_log(PL_LOG_INFO, "dashboard at http://%s/ (metrics at /metrics)",
		       r->cfg->http.listen);
	return 0;
}

int daemon_setup(struct run *r)
{
	char err[512];
	int rc = pl_store_lock(r->cfg->store.path, &r->lock_fd, err, sizeof(err));

	if (rc != 0) {
		pl_log(PL_LOG_ERROR, "%s", err);
		return -1;
	}
	/* The integrity check of an existing store reads the whole file: the sinks start
	 * reading and posting meanwhile, and nothing is written before it has passed. */
	rc = pl_store_open(r->cfg->store.path, PL_STORE_CREATE | PL_STORE_DEFER_CHECK,
			       &r->store, err, sizeof(err));
	if (rc != 0) {
		pl_log(PL_LOG_ERROR, "%s", err);
		return -1;
	}
	/* each interval durable in one block of STORE.intake, merged into the database every
	 * merge_s (docs/daemon-design.md, "Disk writes and the SD card") */
	if (r->cfg->store.merge_s > 0) {
		rc = pl_store_intake(r->store, r->cfg->store.merge_s);
		if (rc == 1) {
			pl_log(PL_LOG_WARNING, "store: %s; each interval is committed to the "
			       "database directly (nothing is lost, the disk is written more)",
			       pl_store_error(r->store));
		} else if (rc != 0) {
			pl_log(PL_LOG_ERROR, "store: %s", pl_store_error(r->store));
			return -1;
		}
	}
	r->clock_off0 = r->clock_off = pl_clock_wall_minus_mono_us();
	r->nmeters = r->cfg->nmeters;
	r->meters = calloc(r->nmeters ? r->nmeters : 1, sizeof(*r->meters));
	r->nsinks = r->cfg->ninflux + r->cfg->nmqtt;
	r->sinks = calloc(r->nsinks ? r->nsinks : 1, sizeof(*r->sinks));
	if (!r->meters || !r->sinks) {
		pl_log(PL_LOG_ERROR, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < r->nsinks; i++) {
		struct sink_run *s = &r->sinks[i];
		int mqtt = i >= r->cfg->ninflux;
		const struct pl_config_mqtt *q = mqtt ? &r->cfg->mqtt[i - r->cfg->ninflux] : NULL;

		s->name = mqtt ? q->name : r->cfg->influx[i].name;
		s->kind = mqtt ? "mqtt" : "influxdb";
		if (pl_store_sink(r->store, s->name, &s->id) != 0) { /* a new one: checks first */
			pl_log(PL_LOG_ERROR, "store: %s", pl_store_error(r->store));
			return -1;
		}
		if (!mqtt) {
			if (pl_influx_deliver_start(r->cfg->store.path, &r->cfg->influx[i], s->id,
						    &s->d) != 0)
				return -1;
			continue;
		}
		s->box = pl_mqtt_box_new(r->cfg->nmeters);
		if (s->box == NULL) {
			pl_log(PL_LOG_ERROR, "out of memory");
			return -1;
		}
		if (pl_mqtt_deliver_start(r->cfg->store.path, r->store, r->cfg, q, s->id, s->box,
					  &s->d) != 0)
			return -1;
	}
	if (pl_store_check(r->store) != 0) {
		pl_log(PL_LOG_ERROR, "%s", pl_store_error(r->store));
		return -1;
	}
	for (size_t i = 0; i < r->nsinks; i++)
		pl_deliver_allow_writes(r->sinks[i].d);
	report_removed_sinks(r);
	daemon_prune(r); /* before the first commit: the size bound may already be reached */
	r->next_prune_us = pl_clock_mono_us() + PRUNE_EVERY_US;
	for (size_t i = 0; i < r->nmeters; i++) {
		struct meter_run *m = &r->meters[i];

		m->cfg = &r->cfg->meters[i];
		if (meter_load(r, m) != 0 || feed_open(r, m) != 0)
			return -1;
	}
	return http_start(r);
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
	time_t t = (time_t)(pl_clock_wall_us() / PL_US_PER_S);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(tmp, sizeof(tmp), "%s.restoring-%ld", path, (long)getpid());
	snprintf(saved, sizeof(saved), "%s.saved-%s", path, stamp);
	if (pl_store_save_copy(r->store, r->moved == PL_STORE_DELETED ? tmp : saved) != 0) {
		pl_log(PL_LOG_ERROR, "%s; what this run stored is lost", pl_store_error(r->store));
		pl_store_close_moved(r->store);
		r->moved = -1;
		return;
	}
	pl_store_close_moved(r->store);
	if (r->moved == PL_STORE_DELETED) {
		/* link(): fails rather than overwrite a file that appeared at the path meanwhile */
		if (link(tmp, path) == 0) {
			unlink(tmp);
			pl_log(PL_LOG_INFO, "store %s: written back, nothing lost", path);
			r->moved = 0;
			return;
		}
		if (rename(tmp, saved) != 0)
			snprintf(saved, sizeof(saved), "%s", tmp);
	}
	pl_log(PL_LOG_ERROR, "store %s: this run's store is saved as %s (nothing lost); move it back "
	       "to %s, or point [store] path at it, and start again", path, saved, path);
	r->moved = -1;
}

void daemon_teardown(struct run *r)
{
	pl_http_stop(r->http); /* first: it shows what the rest of this frees */
	r->http = NULL;
	pl_live_free(r->live);
	pl_live_free(r->live_tmp);
	r->live = r->live_tmp = NULL;
	for (size_t i = 0; i < r->nmeters; i++) {
		feed_close(&r->meters[i]);
		free(r->meters[i].recs);
	}
	for (size_t i = 0; i < r->nsinks; i++) {
		struct pl_deliver_status st;

		if (r->sinks[i].d == NULL) {
			pl_mqtt_box_free(r->sinks[i].box);
			continue;
		}
		pl_deliver_stop(r->sinks[i].d, STOP_GRACE_MS, &st);
		pl_mqtt_box_free(r->sinks[i].box); /* the thread that read it has stopped */
		if (st.delivered > 0 && st.last_ack_us > st.first_post_us) {
			double s = (double)(st.last_ack_us - st.first_post_us) / 1e6;
			pl_log(PL_LOG_INFO, "sink %s: %" PRIu64 " records delivered in this run, %.3f s from "
			       "the first request to the last acknowledgement (%.1f records/s)%s",
			       r->sinks[i].name, st.delivered, s, (double)st.delivered / s,
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
}

/* 1 when every sink has delivered everything committed so far. */
int sinks_idle(struct run *r)
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
int sinks_broken(struct run *r)
{
	for (size_t i = 0; i < r->nsinks; i++) {
		struct pl_deliver_status st;

		pl_deliver_status(r->sinks[i].d, &st);
		if (st.broken)
			return 1;
	}
	return 0;
}

