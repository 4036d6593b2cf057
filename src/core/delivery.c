/* SPDX-License-Identifier: MIT */
/*
 * The delivery policy's state machine (see include/powerlogger/delivery.h).
 *
 * The bisection is the one the firmware has shipped with (and its tests count the requests):
 * a refused range is halved, the first half sent, then the whole rest of the range, which
 * either passes or is refused and halved in turn. Resending the rest whole, rather than
 * assuming it bad, costs at most one request per level and means a server that refused the
 * range for a passing reason never gets a good line quarantined.
 */
#include "powerlogger/delivery.h"

#include <stddef.h>

void pl_delivery_init(struct pl_delivery *dv, uint32_t max_batch)
{
	if (dv == NULL)
		return;
	dv->max = max_batch > 0 ? max_batch : 1u;
	dv->limit = dv->max;
	dv->suspect = 0;
	dv->probe = 0;
	dv->streak = 0;
	dv->failing = 0;
	pl_backoff_reset(&dv->backoff);
}

uint32_t pl_delivery_next(const struct pl_delivery *dv, uint32_t pending)
{
	uint32_t w;

	if (dv == NULL || pending == 0)
		return 0;
	w = dv->suspect > 0 ? dv->probe : dv->limit;
	if (w > dv->limit)
		w = dv->limit;
	if (w == 0)
		w = 1;
	return w < pending ? w : pending;
}

/* The oldest n records left the queue (acknowledged, quarantined or removed). */
static void left(struct pl_delivery *dv, uint32_t n)
{
	if (dv->suspect == 0)
		return;
	if (n >= dv->suspect) {
		dv->suspect = 0;
		dv->probe = 0;
		return;
	}
	dv->suspect -= n;
	/* the rest of a half being sent in parts; after a whole half, the rest of the range */
	if (n < dv->probe)
		dv->probe -= n;
	else
		dv->probe = dv->suspect;
}

static void acknowledged(struct pl_delivery *dv, uint32_t n)
{
	left(dv, n);
	pl_backoff_reset(&dv->backoff);
	if (dv->limit >= dv->max || n < dv->limit) {
		/* only a full request at the smaller limit says anything about larger ones */
		if (dv->limit >= dv->max)
			dv->streak = 0;
		return;
	}
	if (++dv->streak >= PL_DELIVERY_GROW_AFTER) {
		dv->limit = dv->limit > dv->max / 2u ? dv->max : dv->limit * 2u;
		dv->streak = 0;
	}
}

/* A refused request of n > 1 records: too large (413), or holding a bad line. */
static void split(struct pl_delivery *dv, const struct pl_sink_response *r, uint32_t n,
		  uint32_t bad_line)
{
	if (r->transport == PL_XPORT_NONE && r->status == 413) {
		/* nothing is wrong with the records: only the size of the body */
		dv->limit = n / 2u;
		dv->streak = 0;
		return;
	}
	if (bad_line >= 1 && bad_line <= n) {
		/* the lines before the one named, then that line alone */
		dv->suspect = bad_line;
		dv->probe = bad_line > 1 ? bad_line - 1u : 1u;
	} else {
		dv->suspect = n;
		dv->probe = n / 2u;
	}
}

void pl_delivery_result(struct pl_delivery *dv, const struct pl_sink_response *r,
			uint32_t bad_line, uint32_t rand32, struct pl_delivery_verdict *v)
{
	struct pl_delivery_verdict dummy;
	unsigned flags = 0;
	enum pl_sink_action a = pl_sink_classify(r, &flags);
	uint32_t n = r != NULL ? r->batch_lines : 0;

	if (v == NULL)
		v = &dummy;
	v->action = a;
	v->flags = flags;
	v->ack = 0;
	v->quarantine = 0;
	v->delay_ms = 0;
	if (dv == NULL)
		return;
	switch (a) {
	case PL_SINK_OK:
	case PL_SINK_SPLIT:
	case PL_SINK_QUARANTINE:
		/* an answer about the records of a request that carried none says nothing */
		if (n == 0)
			return;
		dv->failing = 0;
		if (a == PL_SINK_OK) {
			v->ack = n;
			acknowledged(dv, n);
		} else if (a == PL_SINK_SPLIT) {
			split(dv, r, n, bad_line);
		} else {
			v->quarantine = 1; /* pl_sink_classify quarantines a request of one line only */
			left(dv, 1);
		}
		return;
	case PL_SINK_RETRY:
	case PL_SINK_NOTFOUND:
		break;
	}
	/* what a person must fix is retried slowly; what passes by itself, quickly */
	dv->backoff.slow = (flags & (PL_SINK_F_AUTH | PL_SINK_F_CONFIG)) != 0;
	v->delay_ms = pl_backoff_next(&dv->backoff, rand32, r != NULL ? r->retry_after_s : 0);
	dv->streak = 0;
	dv->failing = 1;
}

void pl_delivery_removed(struct pl_delivery *dv, uint32_t n)
{
	if (dv != NULL)
		left(dv, n);
}

enum pl_delivery_state pl_delivery_state(const struct pl_delivery *dv)
{
	if (dv == NULL)
		return PL_DELIVERY_STEADY;
	if (dv->failing)
		return PL_DELIVERY_FAILING;
	if (dv->suspect > 0)
		return PL_DELIVERY_BISECTING;
	if (dv->limit < dv->max)
		return PL_DELIVERY_SHRUNK;
	return PL_DELIVERY_STEADY;
}

const char *pl_delivery_state_name(enum pl_delivery_state s)
{
	switch (s) {
	case PL_DELIVERY_STEADY: return "steady";
	case PL_DELIVERY_SHRUNK: return "shrunk";
	case PL_DELIVERY_BISECTING: return "bisecting";
	case PL_DELIVERY_FAILING: return "failing";
	}
	return "unknown";
}
