/* SPDX-License-Identifier: MIT */
/*
 * Delivery state machine (see fw_delivery.h).
 */
#include "fw_delivery.h"

#include <stdio.h>
#include <string.h>

#include "powerlogger/common.h"

int fw_delivery_init(struct fw_delivery *d, const struct fw_delivery_config *cfg,
		     struct fw_store *store, struct fw_time *time, fw_post_fn post, void *post_ctx)
{
	/* The device name is free text from Kconfig: one InfluxDB cannot store back as given
	 * would fail to encode for every record, so it is refused before anything is sent. */
	if (d == NULL || cfg == NULL || cfg->device == NULL || store == NULL || time == NULL ||
	    post == NULL || cfg->max_batch > FW_DELIVERY_MAX_BATCH ||
	    pl_precision_v2(cfg->precision) == NULL ||
	    pl_lp_name_problem(cfg->device, PL_LP_TAG_VALUE) != NULL)
		return -PL_EINVAL;
	memset(d, 0, sizeof(*d));
	d->cfg = *cfg;
	if (d->cfg.max_batch == 0)
		d->cfg.max_batch = FW_DELIVERY_MAX_BATCH;
	d->store = store;
	d->time = time;
	d->post = post;
	d->post_ctx = post_ctx;
	pl_delivery_init(&d->policy, d->cfg.max_batch);
	d->rng = cfg->seed ? cfg->seed : UINT32_C(0x9e3779b9);
	return 0;
}

/* The next value of the jitter's xorshift32, without taking it. */
static uint32_t peek_rand(const struct fw_delivery *d)
{
	uint32_t x = d->rng;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return x;
}

/* Quarantines the oldest record unsent (it cannot be stamped or encoded). */
static int quarantine_unsent(struct fw_delivery *d, struct fw_delivery_event *ev)
{
	int rc = fw_store_quarantine(d->store, d->why);

	if (rc < 0)
		return rc;
	d->quarantined++;
	pl_delivery_removed(&d->policy, 1);
	memset(ev, 0, sizeof(*ev));
	ev->action = PL_SINK_QUARANTINE;
	ev->flags = PL_SINK_F_LOUD;
	ev->lines = 1;
	ev->msg = d->why;
	return 1;
}

/* Reads, stamps and encodes the next batch; returns its number of lines (0: nothing to send,
 * and *stop tells why: 0 nothing or waiting, 1 the first record must be quarantined). */
static size_t build(struct fw_delivery *d, size_t *len, int *stop)
{
	size_t n = 0, i, pending = fw_store_count(d->store);
	uint32_t want = pl_delivery_next(&d->policy,
					 pending < UINT32_MAX ? (uint32_t)pending : UINT32_MAX);

	*stop = 0;
	*len = 0;
	if (fw_store_peek(d->store, d->batch, want, &n) < 0)
		return 0;
	for (i = 0; i < n; i++) {
		enum fw_stamp st = fw_time_stamp(d->time, &d->batch[i]);
		int rc;

		if (st == FW_STAMP_WAIT)
			break;
		if (st == FW_STAMP_NEVER) {
			if (i == 0) {
				snprintf(d->why, sizeof(d->why),
					 "no wall-clock time known for boot %lu (never synced)",
					 (unsigned long)d->batch[0].boot);
				*stop = 1;
			}
			break;
		}
		rc = pl_lp_interval(d->body, sizeof(d->body), len, NULL, d->cfg.device,
				    &d->batch[i].rec, d->cfg.precision);
		if (rc < 0) {
			if (i == 0) {
				snprintf(d->why, sizeof(d->why), "cannot encode: %s",
					 pl_strerror(rc));
				*stop = 1;
			}
			break;
		}
	}
	return i;
}

int fw_delivery_step(struct fw_delivery *d, int64_t now_ms, int net_up,
		     struct fw_delivery_event *ev)
{
	struct fw_delivery_event dummy;
	struct pl_sink_response resp;
	struct pl_delivery_verdict v;
	uint32_t rnd;
	size_t len, n;
	int stop, rc;

	if (ev == NULL)
		ev = &dummy;
	if (d->state == FW_DELIVERY_BACKOFF) {
		if (now_ms < d->due_ms)
			return 0;
		d->state = FW_DELIVERY_IDLE;
	}
	if (!net_up || fw_store_count(d->store) == 0)
		return 0;
	n = build(d, &len, &stop);
	if (n == 0)
		return stop ? quarantine_unsent(d, ev) : 0;

	d->state = FW_DELIVERY_SENDING;
	memset(&d->res, 0, sizeof(d->res));
	rc = d->post(d->post_ctx, d->body, len, &d->res);
	d->state = FW_DELIVERY_IDLE;
	if (rc < 0)
		return rc;
	d->res.msg[sizeof(d->res.msg) - 1] = '\0';
	d->requests++;

	memset(&resp, 0, sizeof(resp));
	resp.transport = d->res.transport;
	resp.status = d->res.status;
	resp.retry_after_s = d->res.retry_after_s;
	resp.body = pl_sink_body_flags(d->res.msg, strlen(d->res.msg));
	resp.batch_lines = (uint32_t)n;
	/* the jitter's generator moves on only when it is used, as it always has */
	rnd = peek_rand(d);
	pl_delivery_result(&d->policy, &resp, 0, rnd, &v);

	memset(ev, 0, sizeof(*ev));
	ev->action = v.action;
	ev->flags = v.flags;
	ev->lines = (uint32_t)n;
	ev->transport = d->res.transport;
	ev->status = d->res.status;
	ev->msg = d->res.msg;

	if (v.ack > 0) {
		rc = fw_store_drop(d->store, v.ack);
		if (rc < 0)
			return rc;
		d->delivered += v.ack;
	}
	if (v.quarantine) {
		rc = fw_store_quarantine(d->store, d->res.msg[0] ? d->res.msg : "refused");
		if (rc < 0)
			return rc;
		d->quarantined++;
	}
	if (v.delay_ms > 0) {
		d->rng = rnd;
		ev->delay_ms = v.delay_ms;
		d->due_ms = now_ms + v.delay_ms;
		d->state = FW_DELIVERY_BACKOFF;
		d->retries++;
	}
	return 1;
}

int64_t fw_delivery_wait_ms(const struct fw_delivery *d, int64_t now_ms)
{
	if (d->state == FW_DELIVERY_BACKOFF && d->due_ms > now_ms)
		return d->due_ms - now_ms;
	return 0;
}

const char *fw_delivery_state_name(enum fw_delivery_state s)
{
	switch (s) {
	case FW_DELIVERY_IDLE:
		return "idle";
	case FW_DELIVERY_SENDING:
		return "sending";
	case FW_DELIVERY_BACKOFF:
		return "backoff";
	}
	return "?";
}
