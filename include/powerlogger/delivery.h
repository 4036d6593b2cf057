/* SPDX-License-Identifier: MIT */
/*
 * The delivery policy of a sink, shared by the Linux daemon and the ESP32 firmware: how many
 * of the pending records go into the next request, and what to do with the answer.
 *
 * Records are delivered oldest first, and only from the head of the queue: a request carries
 * the oldest n pending records, an acknowledgement removes the oldest n, a quarantine the
 * oldest one. So a record is never skipped and never overtaken. pl_sink_classify (retry.h)
 * says what an answer means; this machine turns that into the next step:
 *
 *   STEADY     requests of up to `limit` records (the configured maximum).
 *   SHRUNK     a 413 for n > 1 records halved `limit`: the server takes no bodies that large.
 *              After PL_DELIVERY_GROW_AFTER requests in a row acknowledged at the smaller
 *              limit it doubles again, up to the maximum: a proxy's limit may be raised, and
 *              a persistent one costs one refused request in every few.
 *   BISECTING  a 400/422 naming bad lines for n > 1 records: the oldest `suspect` records hold
 *              a line the server will never take. The first half is sent, then what is left of
 *              the range, each refused part halved again, until one line refused on its own is
 *              quarantined (at most about 2 log2(n) + 1 requests; the good records are all
 *              written, in order). When the server names the line (3.x "line_number"), the
 *              lines before it go first and then that line alone.
 *   FAILING    anything that may succeed later (network, 5xx, 429, 401/403, a 400 that is not
 *              about the lines, 413 for a single record, 404): nothing leaves the queue, the
 *              same request is made again after pl_backoff_next() (Retry-After honoured and
 *              capped; the slow cap for what a person must fix). A success resets the backoff.
 *
 * The states combine (a shrunk limit while bisecting, a failure in either); pl_delivery_state
 * names the one that matters most. Only a record sent alone is ever quarantined.
 *
 * Pure: no allocation, no I/O, no clock (the caller waits the delay it is told); state is plain
 * data. Not thread-safe; each struct pl_delivery belongs to one sink.
 */
#ifndef POWERLOGGER_DELIVERY_H
#define POWERLOGGER_DELIVERY_H

#include "powerlogger/common.h"
#include "powerlogger/retry.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Requests acknowledged in a row at a shrunk limit before it doubles. */
#define PL_DELIVERY_GROW_AFTER 4u

struct pl_delivery {
	uint32_t max;      /* the configured batch limit (>= 1) */
	uint32_t limit;    /* records per request at most: max, or less after a 413 */
	uint32_t suspect;  /* bisecting: the oldest records known to hold a bad line; 0: none */
	uint32_t probe;    /* bisecting: records in the next request */
	uint32_t streak;   /* requests acknowledged in a row with `limit` records */
	uint8_t failing;   /* the last answer was one to retry later */
	struct pl_backoff backoff;
};

enum pl_delivery_state {
	PL_DELIVERY_STEADY = 0,
	PL_DELIVERY_SHRUNK,
	PL_DELIVERY_BISECTING,
	PL_DELIVERY_FAILING,
};

/* What the caller does with an answer, in this order: remove or acknowledge the oldest `ack`
 * records, then quarantine the (new) oldest one if `quarantine`, then wait delay_ms before the
 * next request (0: send the next at once). */
struct pl_delivery_verdict {
	enum pl_sink_action action; /* pl_sink_classify's, for the log */
	unsigned flags;             /* enum pl_sink_flag bits, for the log */
	uint32_t ack;               /* records delivered (the whole request on a 2xx), or 0 */
	uint32_t quarantine;        /* 1: quarantine the oldest record; else 0 */
	uint32_t delay_ms;          /* > 0 exactly when the request is to be made again later */
};

/* Starts in STEADY with max_batch records per request (0 is taken as 1). */
void pl_delivery_init(struct pl_delivery *dv, uint32_t max_batch);

/*
 * The number of records in the next request, given how many are pending (UINT32_MAX when the
 * caller does not know: it reads at most this many). 0 only when pending is 0. A caller may
 * send fewer (a body full, a record not ready yet), never more, and must report the number it
 * sent in the response's batch_lines.
 */
uint32_t pl_delivery_next(const struct pl_delivery *dv, uint32_t pending);

/*
 * Takes the answer to a request of r->batch_lines records (the oldest pending ones) and fills
 * *v. bad_line is the 1-based line of that request the server named as refused, 0 when it did
 * not say (a number beyond the request is ignored). rand32 is a uniformly random value for the
 * backoff's jitter. A batch_lines of 0 (nothing was sent) acknowledges and quarantines
 * nothing. r NULL is a failure to be retried (see pl_sink_classify).
 */
void pl_delivery_result(struct pl_delivery *dv, const struct pl_sink_response *r,
			uint32_t bad_line, uint32_t rand32, struct pl_delivery_verdict *v);

/*
 * The caller removed the oldest n records itself without sending them (a record that cannot
 * be encoded or stamped, quarantined unsent): the machine's counts move with the queue.
 */
void pl_delivery_removed(struct pl_delivery *dv, uint32_t n);

enum pl_delivery_state pl_delivery_state(const struct pl_delivery *dv);

/* Static name of a state ("steady", "shrunk", "bisecting", "failing"). */
const char *pl_delivery_state_name(enum pl_delivery_state s);

#ifdef __cplusplus
}
#endif
#endif
