/* SPDX-License-Identifier: MIT */
/*
 * One sink's delivery thread (see deliver.h).
 *
 * The loop, with a backlog:
 *
 *	read+encode batch k    POST k ......................... done
 *	                       read+encode k+1   (wait)         POST k+1 ......... done
 *	                                                        ack k          read+encode k+2
 *
 * so the work of this process hides behind the server's, and the acknowledgement behind the
 * next POST. Batch k+1 is posted only after k succeeded, so a failure never leaves a later
 * batch delivered before an earlier one (the cursor is a single sequence number). A crash
 * between a POST and its acknowledgement sends the batch again, and so does a power cut soon
 * after it: the acknowledgement is not synced (pl_store_ack), it reaches the disk with the next
 * record commit. InfluxDB keeps one point per series and timestamp, so the repeat overwrites
 * itself (docs/daemon-design.md, "Disk writes and the SD card").
 *
 * The sink itself is reached through its operations (sinks/sink.h) only; the size of each
 * request and what an answer leads to are the core's delivery policy (powerlogger/delivery.h).
 *
 * Locking: d->lock guards the fields shared with the daemon's main thread (the kick, the stop
 * request, the status); it is never held across I/O.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "sinks/deliver.h"
#include "store/store.h"
#include "powerlogger/delivery.h"
#include "powerlogger/retry.h"

#define BATCH_MAX 5000          /* records per POST at most (InfluxDB's advice: 5000 lines) */
#define BODY_BYTES (1u << 20)   /* a batch's line protocol; a batch that would not fit is cut */
#define POLL_MS 200             /* how often a request in flight looks at the stop request */
#define DEV_CACHE 16
#define IDLE_MS 100             /* an idle sink's slices (sink.h, idle): a kick waits this long */

struct batch {
	struct pl_store_record *rec;
	size_t n;
	size_t asked; /* the records the policy allowed when it was read */
	char *body;
	size_t len;
};

struct pl_deliver {
	const struct pl_sink_ops *ops;
	void *sink;
	char name[128];
	uint32_t batch_max_age_s;
	int64_t sink_id;
	struct pl_store *store;
	pthread_t thread;
	int started;

	/* shared with the main thread, under lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t gen;
	int flush, stop;
	int writable; /* the store's integrity check has passed: acks may be written */
	struct pl_deliver_status st;

	/* the thread's own */
	struct batch b[2];
	struct pl_delivery dv; /* batch size, bisection, backoff */
	uint64_t rng;
	int64_t partial_since_us;
	int fail_status;                   /* the kind of the current failure: */
	enum pl_sink_transport fail_transport; /* a new kind is logged, a repeat is not */
	struct {
		int64_t id;
		char name[128];
	} dev[DEV_CACHE];
	size_t ndev;
};

static void logd(struct pl_deliver *d, enum pl_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void logd(struct pl_deliver *d, enum pl_log_level level, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	pl_log(level, "sink %s: %s", d->name, text);
}

/* The jitter's xorshift64 one step on from x. */
static uint64_t rng_next(uint64_t x)
{
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

/* The device tag of a meter: its name in the store. */
static const char *device_of(struct pl_deliver *d, int64_t meter_id)
{
	size_t i;

	for (i = 0; i < d->ndev; i++)
		if (d->dev[i].id == meter_id)
			return d->dev[i].name;
	i = d->ndev < DEV_CACHE ? d->ndev++ : (size_t)(meter_id % DEV_CACHE);
	d->dev[i].id = meter_id;
	if (pl_store_meter_name(d->store, meter_id, d->dev[i].name, sizeof(d->dev[i].name)) != 0)
		snprintf(d->dev[i].name, sizeof(d->dev[i].name), "meter%" PRId64, meter_id);
	return d->dev[i].name;
}

static int wait_writable(struct pl_deliver *d);

/* The records the next request may carry. */
static size_t window(const struct pl_deliver *d)
{
	return pl_delivery_next(&d->dv, UINT32_MAX);
}

/*
 * Reads and encodes the records after after_seq (0: after the cursor, the head of the queue)
 * for the next request. -1: store failure.
 */
static int prepare(struct pl_deliver *d, struct batch *b, int64_t after_seq)
{
	size_t n = 0;

	b->n = b->len = 0;
	b->asked = window(d);
	if (pl_store_next_batch_after(d->store, d->sink_id, after_seq, b->asked, b->rec,
				      &n) != 0) {
		logd(d, PL_LOG_ERROR, "store: %s", pl_store_error(d->store));
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (d->ops->encode(d->sink, b->body, BODY_BYTES, &b->len,
				   device_of(d, b->rec[i].meter_id), b->rec[i].seq,
				   &b->rec[i].rec) != 0) {
			if (i == 0 && after_seq != 0) {
				/* read ahead behind a request in flight: the head's business once
				 * that request is settled */
				n = 0;
				break;
			}
			if (i == 0) {
				/* cannot be encoded at all (a name the sink cannot take): keep it
				 * out of the way, with the reason */
				if (!wait_writable(d))
					return 0;
				char why[96];

				snprintf(why, sizeof(why), "cannot be encoded for %s", d->ops->kind);
				pl_store_quarantine(d->store, d->sink_id, b->rec[0].seq, why);
				logd(d, PL_LOG_WARNING, "record of %" PRId64 " cannot be encoded; "
				     "quarantined", b->rec[0].rec.start_us);
				pl_delivery_removed(&d->dv, 1);
				return prepare(d, b, after_seq);
			}
			n = i; /* the rest in the next batch */
			break;
		}
	}
	b->n = n;
	return 0;
}

/* Waits on the condition until deadline (monotonic µs, 0: one POLL_MS) or a kick/stop. */
static void wait_locked(struct pl_deliver *d, int64_t deadline_us)
{
	struct timespec ts;
	int64_t now = pl_clock_mono_us(), until = deadline_us ? deadline_us : now + POLL_MS * 1000;

	if (until <= now)
		return;
	/* the condition waits on the kernel's monotonic clock (its condattr): the time to wait
	 * comes from the clock seam, the absolute end from the kernel */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	until = (int64_t)ts.tv_sec * PL_US_PER_S + ts.tv_nsec / 1000 + (until - now);
	ts.tv_sec = (time_t)(until / PL_US_PER_S);
	ts.tv_nsec = (long)(until % PL_US_PER_S) * 1000;
	pthread_cond_timedwait(&d->cond, &d->lock, &ts);
}

/* Waits until writes are allowed (pl_deliver_allow_writes); 0 when stopping instead. */
static int wait_writable(struct pl_deliver *d)
{
	int ok;

	pthread_mutex_lock(&d->lock);
	while (!d->writable && !d->stop)
		wait_locked(d, 0);
	ok = d->writable && !d->stop;
	pthread_mutex_unlock(&d->lock);
	return ok;
}

static int stopping(struct pl_deliver *d)
{
	int s;

	pthread_mutex_lock(&d->lock);
	s = d->stop;
	pthread_mutex_unlock(&d->lock);
	return s;
}

/* Sleeps until deadline (monotonic µs) unless a stop is requested; returns 1 when stopping. */
static int sleep_until(struct pl_deliver *d, int64_t deadline_us)
{
	pthread_mutex_lock(&d->lock);
	while (!d->stop && pl_clock_mono_us() < deadline_us)
		wait_locked(d, deadline_us);
	int s = d->stop;
	pthread_mutex_unlock(&d->lock);
	return s;
}

/*
 * Drives the request in flight to its end. Returns 1 with *res filled, 0 when it was
 * abandoned because a stop was requested and the grace time ran out.
 */
static int finish(struct pl_deliver *d, struct pl_sink_result *res, int grace_ms)
{
	int64_t give_up = 0;

	for (;;) {
		int rc = d->ops->poll(d->sink, POLL_MS, res);

		if (rc != 0)
			return rc > 0;
		if (give_up == 0 && stopping(d))
			give_up = pl_clock_mono_us() + (int64_t)grace_ms * 1000;
		if (give_up != 0 && pl_clock_mono_us() >= give_up) {
			d->ops->abort(d->sink);
			return 0;
		}
	}
}

static void set_status(struct pl_deliver *d, int failing, const char *error, uint64_t delivered,
		       uint64_t quarantined)
{
	pthread_mutex_lock(&d->lock);
	d->st.failing = failing;
	if (error)
		snprintf(d->st.last_error, sizeof(d->st.last_error), "%s", error);
	d->st.delivered += delivered;
	if (delivered > 0)
		d->st.last_ack_us = pl_clock_mono_us();
	d->st.quarantined += quarantined;
	pthread_mutex_unlock(&d->lock);
}

static int grace_ms_of(struct pl_deliver *d)
{
	int g;

	pthread_mutex_lock(&d->lock);
	g = d->stop > 1 ? d->stop : 0;
	pthread_mutex_unlock(&d->lock);
	return g;
}

/* Handles a failed attempt of n records, to be made again in ms: log on a change, record it. */
static void failed(struct pl_deliver *d, const struct pl_sink_result *res, unsigned flags,
		   size_t n, uint32_t ms, int64_t *next_try_us)
{
	const struct pl_sink_response *r = &res->resp;
	char what[320], asked[96] = "";
	int was_failing;

	if (r->transport == PL_XPORT_NONE && d->ops->status_name != NULL)
		snprintf(what, sizeof(what), "%s %s", d->ops->status_name, res->message);
	else if (r->transport == PL_XPORT_NONE)
		snprintf(what, sizeof(what), "HTTP %d%s%s", r->status, res->message[0] ? " " : "",
			 res->message);
	else
		snprintf(what, sizeof(what), "%s: %s", pl_sink_transport_name(r->transport),
			 res->message);
	*next_try_us = pl_clock_mono_us() + (int64_t)ms * 1000;
	if (r->retry_after_s > PL_BACKOFF_MAX_RETRY_AFTER_S)
		snprintf(asked, sizeof(asked), "; the server asked to wait %" PRIu32 " s "
			 "(Retry-After), capped at %" PRIu32 " s", r->retry_after_s,
			 PL_BACKOFF_MAX_RETRY_AFTER_S);
	pthread_mutex_lock(&d->lock);
	was_failing = d->st.failing;
	pthread_mutex_unlock(&d->lock);
	/* one line per change of state (a new kind of failure), not one per retry: the text of
	 * the same failure varies (timings, addresses) */
	if (!was_failing || r->status != d->fail_status || r->transport != d->fail_transport) {
		logd(d, flags & PL_SINK_F_LOUD ? PL_LOG_ERROR : PL_LOG_WARNING,
		     "%s; %skeeping the %zu records of this batch and all after it, retrying %s "
		     "(next in %.1f s%s)", what,
		     flags & PL_SINK_F_CONFIG ? "not an answer about the records (check url, api "
						"and the server): " : "",
		     n, d->dv.backoff.slow ? "slowly" : "with backoff", ms / 1000.0, asked);
		if (pl_store_sink_report(d->store, d->sink_id, 1, what) != 0)
			logd(d, PL_LOG_WARNING, "store: %s", pl_store_error(d->store));
	} else if (asked[0] != '\0') {
		logd(d, PL_LOG_WARNING, "%s%s", what, asked);
	}
	d->fail_status = r->status;
	d->fail_transport = r->transport;
	set_status(d, 1, what, 0, 0);
}

/* The oldest n records of b were delivered. */
static void delivered(struct pl_deliver *d, const struct batch *b, size_t n)
{
	int was_failing;

	pthread_mutex_lock(&d->lock);
	was_failing = d->st.failing;
	pthread_mutex_unlock(&d->lock);
	/* the acknowledgement also records the delivery time and ends a failure in the store */
	if (pl_store_ack(d->store, d->sink_id, b->rec[n - 1].seq) != 0)
		logd(d, PL_LOG_WARNING, "store: %s (the batch will be sent again)",
		     pl_store_error(d->store));
	if (was_failing)
		logd(d, PL_LOG_INFO, "delivering again");
	set_status(d, 0, NULL, n, 0);
}

/*
 * Whether a partial batch should wait for more records (batch_max_age_s), and until when.
 * Returns 0 to send now.
 */
static int64_t hold_partial(struct pl_deliver *d, const struct batch *b)
{
	int flush;

	if (b->n >= window(d) || d->batch_max_age_s == 0) {
		d->partial_since_us = 0;
		return 0;
	}
	pthread_mutex_lock(&d->lock);
	flush = d->flush;
	pthread_mutex_unlock(&d->lock);
	if (flush) {
		d->partial_since_us = 0;
		return 0;
	}
	if (d->partial_since_us == 0)
		d->partial_since_us = pl_clock_mono_us();
	int64_t until = d->partial_since_us + (int64_t)d->batch_max_age_s * PL_US_PER_S;
	if (pl_clock_mono_us() >= until) {
		d->partial_since_us = 0;
		return 0;
	}
	return until;
}

/* The answer to batch b, as the policy saw it. Returns 1 when a read-ahead batch nx was
 * started in its place (cur is flipped then), 0 otherwise, -1 on a store failure. */
static int settle(struct pl_deliver *d, struct batch *b, struct batch *nx,
		  const struct pl_sink_result *res, int64_t *next_try_us)
{
	struct pl_delivery_verdict v;
	struct pl_sink_response resp = res->resp;
	uint64_t rng = rng_next(d->rng);
	int started = 0;

	resp.batch_lines = (uint32_t)b->n;
	pl_delivery_result(&d->dv, &resp, res->bad_line, (uint32_t)(rng >> 16), &v);
	if (v.ack > 0) {
		/* the next batch travels while this one is acked, if it is the one the policy
		 * asks for now (not read for a larger request than that) */
		if (nx->n > 0 && nx->asked <= window(d) && hold_partial(d, nx) == 0 &&
		    !stopping(d) && d->ops->start(d->sink, nx->body, nx->len) == 0)
			started = 1;
		delivered(d, b, v.ack);
	}
	if (v.quarantine) {
		const struct pl_store_record *q = &b->rec[v.ack];

		if (pl_store_quarantine(d->store, d->sink_id, q->seq, res->message) != 0) {
			logd(d, PL_LOG_ERROR, "store: %s", pl_store_error(d->store));
			return -1;
		}
		logd(d, PL_LOG_WARNING, "record of %" PRId64 " quarantined: %s", q->rec.start_us,
		     res->message);
		set_status(d, 0, NULL, 0, 1);
	}
	if (v.delay_ms > 0) {
		d->rng = rng; /* the jitter's generator moves on only when it is used */
		failed(d, res, v.flags, b->n, v.delay_ms, next_try_us);
	}
	/* else a batch to send again smaller (413) or in halves (bad lines): at once */
	return started;
}

/*
 * With d->lock held: lets the sink service its connection (ops->idle) in slices of IDLE_MS
 * until kicked past gen, stopped, or the partial batch is due at hold (0: none). The lock is
 * released around each slice.
 */
static void idle_until(struct pl_deliver *d, uint64_t gen, int64_t hold)
{
	while (d->gen == gen && !d->stop && !(hold && d->flush) &&
	       (hold == 0 || pl_clock_mono_us() < hold)) {
		int64_t left = hold ? (hold - pl_clock_mono_us()) / 1000 : IDLE_MS;

		pthread_mutex_unlock(&d->lock);
		d->ops->idle(d->sink, left < IDLE_MS ? (int)(left > 0 ? left : 0) : IDLE_MS);
		pthread_mutex_lock(&d->lock);
	}
}

static void *sink_main(void *arg)
{
	struct pl_deliver *d = arg;
	int64_t next_try_us = 0;
	int cur = 0, inflight = 0;

	while (!stopping(d)) {
		struct batch *b = &d->b[cur], *nx = &d->b[cur ^ 1];
		struct pl_sink_result res;
		int rc;

		if (!inflight) {
			uint64_t gen;

			if (next_try_us && sleep_until(d, next_try_us))
				break;
			next_try_us = 0;
			pthread_mutex_lock(&d->lock);
			gen = d->gen;
			pthread_mutex_unlock(&d->lock);
			if (prepare(d, b, 0) != 0)
				goto broken;
			int64_t hold = b->n > 0 ? hold_partial(d, b) : 0;
			if (b->n == 0 || hold) {
				pthread_mutex_lock(&d->lock);
				if (b->n == 0)
					d->st.idle_gen = gen;
				/* sleep until kicked (or the partial batch is due); a sink with
				 * a connection to look after does that meanwhile, in slices */
				if (d->ops->idle != NULL) {
					idle_until(d, gen, hold);
				} else if (d->gen == gen && !d->stop && !(hold && d->flush)) {
					wait_locked(d, hold ? hold : pl_clock_mono_us() + 1000 * PL_US_PER_S);
				}
				pthread_mutex_unlock(&d->lock);
				continue;
			}
			if (d->ops->start(d->sink, b->body, b->len) != 0) {
				logd(d, PL_LOG_ERROR, "out of memory");
				goto broken;
			}
			inflight = 1;
			if (d->st.first_post_us == 0) {
				pthread_mutex_lock(&d->lock);
				d->st.first_post_us = pl_clock_mono_us();
				pthread_mutex_unlock(&d->lock);
			}
		}
		/* while the server works: the next batch, if there is a full one behind this. But
		 * first the whole body onto the wire: what is left in the sink's hands would wait
		 * for the next poll, and the server with it. */
		int done = 0;
		while (d->ops->sending(d->sink) && !done && !stopping(d))
			done = d->ops->poll(d->sink, 5, &res) != 0;
		nx->n = 0;
		if (b->n == b->asked && prepare(d, nx, b->rec[b->n - 1].seq) != 0)
			goto broken;
		if (!done && !finish(d, &res, grace_ms_of(d)))
			break; /* stopping; nothing acknowledged, all of it is sent next time */
		inflight = 0;
		/* everything below writes to the store: not before its integrity check passed */
		if (!wait_writable(d))
			break;
		rc = settle(d, b, nx, &res, &next_try_us);
		if (rc < 0)
			goto broken;
		if (rc > 0) {
			inflight = 1;
			cur ^= 1;
		}
	}
	if (inflight)
		d->ops->abort(d->sink);
	return NULL;
broken:
	if (inflight)
		d->ops->abort(d->sink);
	pthread_mutex_lock(&d->lock);
	d->st.broken = 1;
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

static void free_deliver(struct pl_deliver *d)
{
	for (int i = 0; i < 2; i++) {
		free(d->b[i].rec);
		free(d->b[i].body);
	}
	if (d->sink != NULL)
		d->ops->close(d->sink);
	pl_store_close(d->store);
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

int pl_deliver_start(const char *store_path, const struct pl_sink_ops *ops,
		     const void *sink_cfg, const struct pl_deliver_config *dc, int64_t sink_id,
		     struct pl_deliver **out)
{
	struct pl_deliver *d = calloc(1, sizeof(*d));
	pthread_condattr_t ca;
	char err[512];
	int64_t wall;
	uint32_t max;

	*out = NULL;
	if (d == NULL) {
		pl_log(PL_LOG_ERROR, "out of memory");
		return -1;
	}
	d->ops = ops;
	snprintf(d->name, sizeof(d->name), "%s", dc->name);
	d->batch_max_age_s = dc->batch_max_age_s;
	d->sink_id = sink_id;
	d->st.idle_gen = UINT64_MAX; /* not known to be up to date with anything yet */
	pthread_mutex_init(&d->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cond, &ca);
	pthread_condattr_destroy(&ca);
	max = dc->batch_max_records;
	pl_delivery_init(&d->dv, max && max < BATCH_MAX ? max : BATCH_MAX);
	/* the jitter's seed: the wall clock's seconds and nanoseconds (whole µs), as the clock
	 * seam gives it (a fake clock: a known seed) */
	wall = pl_clock_wall_us();
	d->rng = ((uint64_t)(wall % PL_US_PER_S * 1000) << 20 ^ (uint64_t)(wall / PL_US_PER_S) ^
		  (uint64_t)sink_id) | 1;
	for (int i = 0; i < 2; i++) {
		d->b[i].rec = malloc(BATCH_MAX * sizeof(*d->b[i].rec));
		d->b[i].body = malloc(BODY_BYTES);
		if (!d->b[i].rec || !d->b[i].body) {
			pl_log(PL_LOG_ERROR, "out of memory");
			free_deliver(d);
			return -1;
		}
	}
	if (pl_store_open(store_path, PL_STORE_NOCHECK, &d->store, err, sizeof(err)) != 0) {
		pl_log(PL_LOG_ERROR, "sink %s: %s", d->name, err);
		free_deliver(d);
		return -1;
	}
	if (ops->open(sink_cfg, &d->sink) != 0) {
		d->sink = NULL;
		pl_log(PL_LOG_ERROR, "sink %s: cannot set up the %s writer", d->name, ops->kind);
		free_deliver(d);
		return -1;
	}
	if (pthread_create(&d->thread, NULL, sink_main, d) != 0) {
		pl_log(PL_LOG_ERROR, "sink %s: cannot start its thread", d->name);
		free_deliver(d);
		return -1;
	}
	d->started = 1;
	*out = d;
	return 0;
}

void pl_deliver_kick(struct pl_deliver *d, uint64_t gen, int flush)
{
	pthread_mutex_lock(&d->lock);
	if (gen > d->gen)
		d->gen = gen;
	if (flush)
		d->flush = 1;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

void pl_deliver_allow_writes(struct pl_deliver *d)
{
	pthread_mutex_lock(&d->lock);
	d->writable = 1;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

void pl_deliver_status(struct pl_deliver *d, struct pl_deliver_status *st)
{
	pthread_mutex_lock(&d->lock);
	*st = d->st;
	pthread_mutex_unlock(&d->lock);
}

void pl_deliver_stop(struct pl_deliver *d, int grace_ms, struct pl_deliver_status *final)
{
	if (d == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	d->stop = grace_ms > 1 ? grace_ms : 1;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	if (d->started)
		pthread_join(d->thread, NULL);
	if (final != NULL)
		*final = d->st;
	free_deliver(d);
}
