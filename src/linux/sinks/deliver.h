/* SPDX-License-Identifier: MIT */
/*
 * Delivery of stored interval records to one sink, on a thread of its own.
 *
 * The sampling side never waits for the network: it commits records to the store and kicks
 * the sink; the sink's thread reads them back through its own store connection (WAL lets a
 * reader and the writer work at once), posts them oldest first, and moves its cursor only on
 * a 2xx. While one batch is in flight the next is already read and encoded, and the cursor of
 * the previous one is committed, so a backlog drains at the server's pace.
 *
 * The kind of sink is a table of operations (sinks/sink.h); how many records go into a
 * request, the bisection of refused batches and the backoff are the core's delivery policy
 * (powerlogger/delivery.h), the same as the firmware's. A change of state (failing,
 * delivering again) is logged once and recorded in the store for `powerlogger status`.
 */
#ifndef PL_LINUX_DELIVER_H
#define PL_LINUX_DELIVER_H

#include <stddef.h>
#include <stdint.h>

#include "sinks/sink.h"

struct pl_deliver;

/* What is the same for every kind of sink. Fill with designated initialisers. */
struct pl_deliver_config {
	const char *name;           /* the sink's name (the store's sink id), for messages */
	uint32_t batch_max_records; /* records per request at most; 0 or more than 5000: 5000 */
	uint32_t batch_max_age_s;   /* a partial batch waits this long for more; 0: send at once */
};

/* What the sink's thread reports to the rest of the daemon. */
struct pl_deliver_status {
	int failing;            /* the last attempt failed */
	char last_error[320];   /* the last failure, "" if none in this run */
	uint64_t delivered;     /* records delivered in this run */
	uint64_t quarantined;   /* records quarantined in this run */
	uint64_t idle_gen;      /* the generation (see pl_deliver_kick) found fully delivered */
	int64_t first_post_us;  /* monotonic: the first POST of this run started, 0: none */
	int64_t last_ack_us;    /* monotonic: the last delivery of this run was acknowledged */
	int broken;             /* the store failed under the sink: it has stopped */
};

/*
 * Opens the store at store_path a second time (it must exist), creates the sink with
 * ops->open(sink_cfg) (the kind's own configuration, e.g. struct pl_influx_config) and starts
 * the thread. ops must outlive the thread; dc and sink_cfg are copied or used before this
 * returns. The thread logs through log.h and reads the time through clock.h: set both up
 * before. Returns 0, or -1 with a message logged.
 */
int pl_deliver_start(const char *store_path, const struct pl_sink_ops *ops,
		     const void *sink_cfg, const struct pl_deliver_config *dc, int64_t sink_id,
		     struct pl_deliver **out);

/*
 * Tells the sink that records up to generation gen are committed (gen only grows). With
 * flush set, partial batches are sent at once instead of waiting for batch_max_age_s: the
 * sources have ended.
 */
void pl_deliver_kick(struct pl_deliver *d, uint64_t gen, int flush);

/*
 * Lets the sink write to the store (acknowledgements, quarantine, its state). Until then it
 * reads and posts, and waits before its first write: the daemon starts the sinks while the
 * store's integrity check runs, and allows writes once it has passed.
 */
void pl_deliver_allow_writes(struct pl_deliver *d);

/* A consistent copy of the sink's state. */
void pl_deliver_status(struct pl_deliver *d, struct pl_deliver_status *st);

/*
 * Stops the thread: a request in flight gets at most grace_ms to finish (and is acknowledged
 * if it succeeds), then is abandoned; nothing unacknowledged is lost, it is sent again on the
 * next start. *final (may be NULL) gets the last status. Frees d. NULL is fine.
 */
void pl_deliver_stop(struct pl_deliver *d, int grace_ms, struct pl_deliver_status *final);

#endif
