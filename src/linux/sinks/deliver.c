/*
 * One InfluxDB sink's delivery thread (see deliver.h).
 *
 * The loop, with a backlog:
 *
 *	read+encode batch k    POST k ......................... done
 *	                       read+encode k+1   (wait)         POST k+1 ......... done
 *	                                                        ack k (fsync)  read+encode k+2
 *
 * so the work of this process hides behind the server's, and the acknowledgement's fsync
 * behind the next POST. Batch k+1 is posted only after k succeeded, so a failure never leaves
 * a later batch delivered before an earlier one (the cursor is a single sequence number). A
 * crash between a POST and its acknowledgement sends the batch again: InfluxDB keeps one point
 * per series and timestamp, so the repeat overwrites itself.
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

#include "sinks/deliver.h"
#include "sinks/influx.h"
#include "store/store.h"
#include "powerlogger/lineproto.h"
#include "powerlogger/retry.h"

#define BATCH_MAX 5000          /* records per POST at most (InfluxDB's advice: 5000 lines) */
#define BODY_BYTES (1u << 20)   /* a batch's line protocol; a batch that would not fit is cut */
#define POLL_MS 200             /* how often a request in flight looks at the stop request */
#define DEV_CACHE 16

struct batch {
	struct pl_store_record *rec;
	size_t n;
	char *body;
	size_t len;
};

struct pl_deliver {
	const struct pl_config_influx *cfg;
	int64_t sink_id;
	char prefix[96];
	struct pl_store *store;
	struct pl_influx *influx;
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
	size_t cap;
	struct pl_backoff backoff;
	uint64_t rng;
	int64_t partial_since_us;
	long fail_status;                  /* the kind of the current failure: */
	enum pl_sink_transport fail_transport; /* a new kind is logged, a repeat is not */
	struct {
		int64_t id;
		char name[128];
	} dev[DEV_CACHE];
	size_t ndev;
};

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * PL_US_PER_S + ts.tv_nsec / 1000;
}

static void logd(struct pl_deliver *d, const char *level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void logd(struct pl_deliver *d, const char *level, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* one fprintf per line: lines of several threads do not interleave */
	fprintf(stderr, "%s: %s: sink %s: %s\n", d->prefix, level, d->cfg->name, text);
}

static uint32_t rand32(struct pl_deliver *d)
{
	d->rng ^= d->rng << 13;
	d->rng ^= d->rng >> 7;
	d->rng ^= d->rng << 17;
	return (uint32_t)(d->rng >> 16);
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

/* Reads and encodes the records after after_seq (0: after the cursor). -1: store failure. */
static int prepare(struct pl_deliver *d, struct batch *b, int64_t after_seq)
{
	size_t n = 0;

	b->n = b->len = 0;
	if (pl_store_next_batch_after(d->store, d->sink_id, after_seq, d->cap, b->rec, &n) != 0) {
		logd(d, "error", "store: %s", pl_store_error(d->store));
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (pl_lp_interval(b->body, BODY_BYTES, &b->len, NULL,
				   device_of(d, b->rec[i].meter_id), &b->rec[i].rec,
				   (enum pl_precision)d->cfg->precision) != 0) {
			if (i == 0) {
				/* cannot be encoded at all (a name InfluxDB cannot take): keep it
				 * out of the way, with the reason */
				if (!wait_writable(d))
					return 0;
				pl_store_quarantine(d->store, d->sink_id, b->rec[0].seq,
						    "cannot be encoded as line protocol");
				logd(d, "warning", "record of %" PRId64 " cannot be encoded; "
				     "quarantined", b->rec[0].rec.start_us);
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
	int64_t now = mono_us(), until = deadline_us ? deadline_us : now + POLL_MS * 1000;

	if (until <= now)
		return;
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
	while (!d->stop && mono_us() < deadline_us)
		wait_locked(d, deadline_us);
	int s = d->stop;
	pthread_mutex_unlock(&d->lock);
	return s;
}

/*
 * Drives the request in flight to its end. Returns 1 with *res filled, 0 when it was
 * abandoned because a stop was requested and the grace time ran out.
 */
static int finish(struct pl_deliver *d, struct pl_influx_result *res, int grace_ms)
{
	int64_t give_up = 0;

	for (;;) {
		int rc = pl_influx_poll(d->influx, POLL_MS, res);

		if (rc != 0)
			return rc > 0;
		if (give_up == 0 && stopping(d))
			give_up = mono_us() + (int64_t)grace_ms * 1000;
		if (give_up != 0 && mono_us() >= give_up) {
			pl_influx_abort(d->influx);
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
		d->st.last_ack_us = mono_us();
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

/* Handles a failed attempt of n records: log on a change, record it, back off. */
static void failed(struct pl_deliver *d, const struct pl_influx_result *res, unsigned flags,
		   size_t n, int64_t *next_try_us)
{
	char what[320], asked[96] = "";
	uint32_t ms;
	int was_failing;

	if (res->status)
		snprintf(what, sizeof(what), "HTTP %ld%s%s", res->status, res->message[0] ? " " : "",
			 res->message);
	else
		snprintf(what, sizeof(what), "%s: %s", pl_sink_transport_name(res->transport),
			 res->message);
	/* What a person must fix is retried slowly; what passes by itself, quickly. */
	d->backoff.slow = (flags & (PL_SINK_F_AUTH | PL_SINK_F_CONFIG)) != 0;
	ms = pl_backoff_next(&d->backoff, rand32(d), res->retry_after_s);
	*next_try_us = mono_us() + (int64_t)ms * 1000;
	if (res->retry_after_s > PL_BACKOFF_MAX_RETRY_AFTER_S)
		snprintf(asked, sizeof(asked), "; the server asked to wait %" PRIu32 " s "
			 "(Retry-After), capped at %" PRIu32 " s", res->retry_after_s,
			 PL_BACKOFF_MAX_RETRY_AFTER_S);
	pthread_mutex_lock(&d->lock);
	was_failing = d->st.failing;
	pthread_mutex_unlock(&d->lock);
	/* one line per change of state (a new kind of failure), not one per retry: the text of
	 * the same failure varies (timings, addresses) */
	if (!was_failing || res->status != d->fail_status || res->transport != d->fail_transport) {
		logd(d, flags & PL_SINK_F_LOUD ? "error" : "warning",
		     "%s; %skeeping the %zu records of this batch and all after it, retrying %s "
		     "(next in %.1f s%s)", what,
		     flags & PL_SINK_F_CONFIG ? "not an answer about the records (check url, api "
						"and the server): " : "",
		     n, d->backoff.slow ? "slowly" : "with backoff", ms / 1000.0, asked);
		if (pl_store_sink_report(d->store, d->sink_id, 1, what) != 0)
			logd(d, "warning", "store: %s", pl_store_error(d->store));
	} else if (asked[0] != '\0') {
		logd(d, "warning", "%s%s", what, asked);
	}
	d->fail_status = res->status;
	d->fail_transport = res->transport;
	set_status(d, 1, what, 0, 0);
}

static void delivered(struct pl_deliver *d, struct batch *b)
{
	int was_failing;

	pthread_mutex_lock(&d->lock);
	was_failing = d->st.failing;
	pthread_mutex_unlock(&d->lock);
	/* the acknowledgement also records the delivery time and ends a failure in the store */
	if (pl_store_ack(d->store, d->sink_id, b->rec[b->n - 1].seq) != 0)
		logd(d, "warning", "store: %s (the batch will be sent again)",
		     pl_store_error(d->store));
	if (was_failing)
		logd(d, "info", "delivering again");
	pl_backoff_reset(&d->backoff);
	d->cap = d->cfg->batch_max_records < BATCH_MAX ? d->cfg->batch_max_records : BATCH_MAX;
	if (d->cap == 0)
		d->cap = BATCH_MAX;
	set_status(d, 0, NULL, b->n, 0);
}

/*
 * Whether a partial batch should wait for more records (batch_max_age_s), and until when.
 * Returns 0 to send now.
 */
static int64_t hold_partial(struct pl_deliver *d, const struct batch *b)
{
	int flush;

	if (b->n >= d->cap || d->cfg->batch_max_age_s == 0) {
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
		d->partial_since_us = mono_us();
	int64_t until = d->partial_since_us + (int64_t)d->cfg->batch_max_age_s * PL_US_PER_S;
	if (mono_us() >= until) {
		d->partial_since_us = 0;
		return 0;
	}
	return until;
}

static void *sink_main(void *arg)
{
	struct pl_deliver *d = arg;
	int64_t next_try_us = 0;
	int cur = 0, inflight = 0;

	while (!stopping(d)) {
		struct batch *b = &d->b[cur], *nx = &d->b[cur ^ 1];
		struct pl_influx_result res;
		struct pl_sink_response resp;
		unsigned flags = 0;

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
				/* sleep until kicked (or the partial batch is due) */
				if (d->gen == gen && !d->stop && !(hold && d->flush))
					wait_locked(d, hold ? hold : mono_us() + 1000 * PL_US_PER_S);
				pthread_mutex_unlock(&d->lock);
				continue;
			}
			if (pl_influx_start(d->influx, b->body, b->len) != 0) {
				logd(d, "error", "out of memory");
				goto broken;
			}
			inflight = 1;
			if (d->st.first_post_us == 0) {
				pthread_mutex_lock(&d->lock);
				d->st.first_post_us = mono_us();
				pthread_mutex_unlock(&d->lock);
			}
		}
		/* while the server works: the next batch, if there is a full one behind this. But
		 * first the whole body onto the wire: what is left in curl's hands would wait for
		 * the next poll, and the server with it. */
		int done = 0;
		while (pl_influx_sending(d->influx) && !done && !stopping(d))
			done = pl_influx_poll(d->influx, 5, &res) != 0;
		nx->n = 0;
		if (b->n == d->cap && prepare(d, nx, b->rec[b->n - 1].seq) != 0)
			goto broken;
		if (!done && !finish(d, &res, grace_ms_of(d)))
			break; /* stopping; nothing acknowledged, all of it is sent next time */
		inflight = 0;
		/* everything below writes to the store: not before its integrity check passed */
		if (!wait_writable(d))
			break;
		pl_influx_response(&res, (uint32_t)b->n, &resp);
		switch (pl_sink_classify(&resp, &flags)) {
		case PL_SINK_OK:
			if (nx->n > 0 && hold_partial(d, nx) == 0 && !stopping(d) &&
			    pl_influx_start(d->influx, nx->body, nx->len) == 0) {
				inflight = 1; /* the next batch travels while this one is acked */
				cur ^= 1;
			}
			delivered(d, b);
			break;
		case PL_SINK_SPLIT:
			d->cap = b->n / 2 > 0 ? b->n / 2 : 1;
			break;
		case PL_SINK_QUARANTINE:
			if (pl_store_quarantine(d->store, d->sink_id, b->rec[0].seq, res.message) != 0) {
				logd(d, "error", "store: %s", pl_store_error(d->store));
				goto broken;
			}
			logd(d, "warning", "record of %" PRId64 " quarantined: %s",
			     b->rec[0].rec.start_us, res.message);
			set_status(d, 0, NULL, 0, 1);
			break;
		default:
			failed(d, &res, flags, b->n, &next_try_us);
			break;
		}
	}
	if (inflight)
		pl_influx_abort(d->influx);
	return NULL;
broken:
	if (inflight)
		pl_influx_abort(d->influx);
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
	pl_influx_free(d->influx);
	pl_store_close(d->store);
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

int pl_deliver_start(const char *store_path, const struct pl_config_influx *c, int64_t sink_id,
		     const char *log_prefix, struct pl_deliver **out)
{
	struct pl_influx_config ic = {
		.url = c->url, .api = (enum pl_influx_api)c->api, .db = c->database,
		.rp = c->retention_policy, .org = c->org, .bucket = c->bucket,
		.user = c->username, .password = c->password.value, .token = c->token.value,
		.precision = (enum pl_precision)c->precision, .gzip = c->gzip,
		.ca_file = c->ca_file, .timeout_ms = (long)c->timeout_s * 1000,
		.create_database = c->create_database,
	};
	struct pl_deliver *d = calloc(1, sizeof(*d));
	pthread_condattr_t ca;
	char err[512];
	struct timespec ts;

	*out = NULL;
	if (d == NULL) {
		fprintf(stderr, "%s: error: out of memory\n", log_prefix);
		return -1;
	}
	d->cfg = c;
	d->sink_id = sink_id;
	d->st.idle_gen = UINT64_MAX; /* not known to be up to date with anything yet */
	snprintf(d->prefix, sizeof(d->prefix), "%s", log_prefix);
	pthread_mutex_init(&d->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cond, &ca);
	pthread_condattr_destroy(&ca);
	d->cap = c->batch_max_records && c->batch_max_records < BATCH_MAX ? c->batch_max_records
									 : BATCH_MAX;
	clock_gettime(CLOCK_REALTIME, &ts);
	d->rng = ((uint64_t)ts.tv_nsec << 20 ^ (uint64_t)ts.tv_sec ^ (uint64_t)sink_id) | 1;
	for (int i = 0; i < 2; i++) {
		d->b[i].rec = malloc(BATCH_MAX * sizeof(*d->b[i].rec));
		d->b[i].body = malloc(BODY_BYTES);
		if (!d->b[i].rec || !d->b[i].body) {
			fprintf(stderr, "%s: error: out of memory\n", log_prefix);
			free_deliver(d);
			return -1;
		}
	}
	if (pl_store_open(store_path, PL_STORE_NOCHECK, &d->store, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: error: sink %s: %s\n", log_prefix, c->name, err);
		free_deliver(d);
		return -1;
	}
	if (pl_influx_new(&ic, &d->influx) != 0) {
		fprintf(stderr, "%s: error: sink %s: cannot set up the InfluxDB writer\n", log_prefix,
			c->name);
		free_deliver(d);
		return -1;
	}
	if (pthread_create(&d->thread, NULL, sink_main, d) != 0) {
		fprintf(stderr, "%s: error: sink %s: cannot start its thread\n", log_prefix, c->name);
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
