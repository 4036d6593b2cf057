/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the core's delivery policy (powerlogger/delivery.h) driven by arbitrary
 * bytes. The first bytes choose the batch limit and the queue; then each byte pair is one
 * request: the answer (2xx, 400 about the lines with or without a line number, 400 about
 * something else, 413, 429/503 with Retry-After, 401, 404, a transport error, an error page
 * on a 200), how many fewer records the caller sent than it was allowed, and now and then a
 * record the caller removes unsent. Whatever the answers, the machine never asks for more
 * than is pending, never acknowledges more than was sent, never skips a record (it only
 * ever speaks of the oldest), quarantines only a record sent alone in the request it refers
 * to, waits exactly when it retries and never beyond the caps. Then an honest server (it
 * refuses a request only for a record of a bad set chosen by the input) must see the whole
 * queue through in a bounded number of requests, quarantining exactly the bad records.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "powerlogger/delivery.h"

#define QMAX 4096u

struct queue {
	uint32_t head, n;     /* records [head, n) are pending */
	uint8_t bad[QMAX];    /* the honest server refuses these */
};

static void check_verdict(const struct pl_delivery_verdict *v, uint32_t sent,
			  const struct pl_sink_response *r)
{
	uint32_t cap = PL_BACKOFF_SLOW_CAP_MS > PL_BACKOFF_MAX_RETRY_AFTER_S * 1000u
			       ? PL_BACKOFF_SLOW_CAP_MS
			       : PL_BACKOFF_MAX_RETRY_AFTER_S * 1000u;

	if (v->ack > sent || v->ack + v->quarantine > sent)
		abort();
	if (v->quarantine && sent != 1)
		abort(); /* quarantined without having been sent alone */
	if (v->quarantine && v->action != PL_SINK_QUARANTINE)
		abort();
	if (v->ack > 0 && v->action != PL_SINK_OK)
		abort();
	if ((v->delay_ms > 0) != (v->action == PL_SINK_RETRY || v->action == PL_SINK_NOTFOUND))
		abort();
	if (v->delay_ms > cap)
		abort();
	if (r->retry_after_s > 0 && v->delay_ms > 0) {
		uint32_t ra = r->retry_after_s < PL_BACKOFF_MAX_RETRY_AFTER_S
				      ? r->retry_after_s
				      : PL_BACKOFF_MAX_RETRY_AFTER_S;

		if (v->delay_ms < ra * 1000u)
			abort(); /* a server's Retry-After undercut */
	}
}

/* One request of up to the machine's size, less `less`, answered by `kind`. */
static void request(struct pl_delivery *dv, struct queue *q, uint8_t kind, uint8_t less,
		    uint32_t rnd)
{
	struct pl_sink_response r;
	struct pl_delivery_verdict v;
	uint32_t pending = q->n - q->head, want = pl_delivery_next(dv, pending), sent, line = 0;

	if (want > pending || want > dv->max || (pending > 0 && want == 0))
		abort();
	if (pending == 0)
		return;
	sent = less < want ? want - less : 1;
	memset(&r, 0, sizeof r);
	r.batch_lines = sent;
	switch (kind % 12) {
	case 0: case 1: case 2: r.status = 204; break;
	case 3: r.status = 400; r.body = PL_BODY_UNABLE_TO_PARSE; break;
	case 4:
		r.status = 400; r.body = PL_BODY_PARTIAL_WRITE | PL_BODY_LINE_REPORT;
		line = (uint32_t)(kind / 12) % (sent + 2); /* 0, in range, or beyond */
		break;
	case 5: r.status = 400; r.body = PL_BODY_ERROR; break; /* not about the lines */
	case 6: r.status = 413; break;
	case 7: r.status = 429; r.retry_after_s = (uint32_t)kind * 997u; break;
	case 8: r.status = 503; r.retry_after_s = kind & 1 ? 0 : (uint32_t)kind << 20; break;
	case 9: r.status = kind & 1 ? 401 : 404; break;
	case 10: r.transport = (enum pl_sink_transport)(1 + kind % 5); break;
	default: r.status = 200; r.body = PL_BODY_HTML; break;
	}
	pl_delivery_result(dv, &r, line, rnd, &v);
	check_verdict(&v, sent, &r);
	q->head += v.ack + v.quarantine;
	if (q->head > q->n)
		abort();
}

/* The honest server: 413 above `too_large` records (0: never), 400 for a bad record. */
static void honest(struct pl_delivery *dv, struct queue *q, uint32_t too_large, int name_line)
{
	uint32_t budget = 64, bad = 0;

	for (uint32_t i = q->head; i < q->n; i++)
		bad += q->bad[i];
	/* every record costs at most one request at the smallest limit, every bad one a
	 * bisection, and the limit's shrinking and growing back a few dozen more */
	budget += (q->n - q->head) + (q->n - q->head) / 4u + 16u + bad * (2u * 13u + 4u);
	while (q->head < q->n) {
		struct pl_sink_response r;
		struct pl_delivery_verdict v;
		uint32_t pending = q->n - q->head, sent = pl_delivery_next(dv, pending), first = 0;

		if (budget-- == 0)
			abort(); /* the queue does not drain */
		if (sent == 0 || sent > pending)
			abort();
		for (uint32_t i = 0; i < sent && first == 0; i++)
			if (q->bad[q->head + i])
				first = i + 1;
		memset(&r, 0, sizeof r);
		r.batch_lines = sent;
		if (too_large != 0 && sent > too_large)
			r.status = 413;
		else if (first != 0)
			r.status = 400, r.body = PL_BODY_UNABLE_TO_PARSE;
		else
			r.status = 204;
		pl_delivery_result(dv, &r, name_line ? first : 0, 1, &v);
		check_verdict(&v, sent, &r);
		if (v.delay_ms != 0 && !(too_large != 0 && sent > too_large))
			abort(); /* an honest server's answers need no waiting */
		if (v.delay_ms != 0) {
			/* 413 for one record: kept, retried; let the server relent */
			if (sent != 1)
				abort();
			too_large = 0;
		}
		if (v.quarantine && !q->bad[q->head + v.ack])
			abort(); /* a good record quarantined */
		for (uint32_t i = 0; i < v.ack; i++)
			if (q->bad[q->head + i])
				abort(); /* a bad record acknowledged */
		q->head += v.ack + v.quarantine;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct queue q;
	struct pl_delivery dv;
	size_t i;

	if (size < 6)
		return 0;
	memset(&q, 0, sizeof q);
	pl_delivery_init(&dv, (uint32_t)(data[0] | data[1] << 8) % 5001u);
	q.n = (uint32_t)(data[2] | data[3] << 8) % QMAX;
	for (i = 0; i < q.n; i++)
		q.bad[i] = (uint8_t)((i * 2654435761u >> 13 ^ data[4]) % 97u == 0);
	for (i = 6; i + 1 < size && q.head < q.n; i += 2) {
		if ((data[i + 1] & 0xf0) == 0xf0) {
			pl_delivery_removed(&dv, 1); /* unencodable: removed unsent */
			q.head++;
			continue;
		}
		request(&dv, &q, data[i], data[i + 1] & 0x0f, (uint32_t)data[i] * 0x9e3779b9u);
	}
	honest(&dv, &q, data[5] & 1 ? (uint32_t)data[5] * 8u : 0, data[5] & 2);
	return 0;
}
