/* SPDX-License-Identifier: MIT */
/*
 * The RAM outbox (see fw_store.h): a circular array of records. Not durable - the host's
 * stand-in for the flash log, with the same first-in-first-out contract.
 */
#include "fw_store.h"

#include <string.h>

#include "powerlogger/common.h"

static int ram_append(void *ctx, const struct fw_record *r)
{
	struct fw_store_ram *s = ctx;

	if (s->n == s->cap)
		return -PL_ENOSPC;
	s->buf[(s->head + s->n) % s->cap] = *r;
	s->n++;
	return 0;
}

static int ram_peek(void *ctx, struct fw_record *out, size_t cap, size_t *n)
{
	struct fw_store_ram *s = ctx;
	size_t i, k = cap < s->n ? cap : s->n;

	for (i = 0; i < k; i++)
		out[i] = s->buf[(s->head + i) % s->cap];
	*n = k;
	return 0;
}

static int ram_drop(void *ctx, size_t n)
{
	struct fw_store_ram *s = ctx;

	if (n > s->n)
		return -PL_EINVAL;
	s->head = (s->head + n) % s->cap;
	s->n -= n;
	s->first_seq += (uint32_t)n;
	return 0;
}

/* Sequence numbers are positions: buf[head] has first_seq, the next one first_seq + 1. */
static int ram_peek_after(void *ctx, uint32_t after, struct fw_record *out, uint32_t *seqs,
			  size_t cap, size_t *n)
{
	struct fw_store_ram *s = ctx;
	size_t i, from = after >= s->first_seq ? (size_t)(after - s->first_seq) + 1 : 0;

	*n = 0;
	for (i = from; i < s->n && *n < cap; i++, (*n)++) {
		out[*n] = s->buf[(s->head + i) % s->cap];
		seqs[*n] = s->first_seq + (uint32_t)i;
	}
	return 0;
}

static int ram_drop_upto(void *ctx, uint32_t seq)
{
	struct fw_store_ram *s = ctx;

	if (seq < s->first_seq)
		return 0;
	return ram_drop(ctx, (size_t)(seq - s->first_seq) + 1 < s->n ?
			     (size_t)(seq - s->first_seq) + 1 : s->n);
}

static int ram_save_cursors(void *ctx, const struct fw_cursors *c)
{
	struct fw_store_ram *s = ctx;

	s->cursors = *c;
	s->has_cursors = 1;
	return 0;
}

static int ram_load_cursors(void *ctx, struct fw_cursors *c)
{
	struct fw_store_ram *s = ctx;

	if (!s->has_cursors)
		return -PL_ENOENT;
	*c = s->cursors;
	return 0;
}

static int ram_quarantine(void *ctx, const char *why)
{
	struct fw_store_ram *s = ctx;
	size_t slot;

	if (s->n == 0)
		return -PL_EINVAL;
	slot = s->quarantined % FW_QUARANTINE_KEEP;
	s->q[slot] = s->buf[s->head];
	strncpy(s->q_why[slot], why ? why : "", sizeof(s->q_why[slot]) - 1);
	s->q_why[slot][sizeof(s->q_why[slot]) - 1] = '\0';
	s->quarantined++;
	return ram_drop(ctx, 1);
}

static int ram_anchor(void *ctx, uint32_t boot, int64_t offset_us)
{
	struct fw_store_ram *s = ctx;

	s->anchor_boot = boot;
	s->anchor_offset_us = offset_us;
	s->has_anchor = 1;
	return 0;
}

static int ram_anchors(void *ctx, struct fw_time_anchor *out, size_t cap, size_t *n)
{
	struct fw_store_ram *s = ctx;

	*n = 0;
	if (s->has_anchor && cap > 0) {
		out[0] = (struct fw_time_anchor){.boot = s->anchor_boot,
						 .offset_us = s->anchor_offset_us};
		*n = 1;
	}
	return 0;
}

static int ram_save_meter(void *ctx, const struct fw_meter_state *m)
{
	struct fw_store_ram *s = ctx;

	s->meter = *m;
	s->has_meter = 1;
	return 0;
}

static int ram_load_meter(void *ctx, struct fw_meter_state *m)
{
	struct fw_store_ram *s = ctx;

	if (!s->has_meter)
		return -PL_ENOENT;
	*m = s->meter;
	return 0;
}

static size_t ram_count(void *ctx)
{
	return ((struct fw_store_ram *)ctx)->n;
}

static const struct fw_store_ops ram_ops = {
	.append = ram_append,
	.peek = ram_peek,
	.drop = ram_drop,
	.quarantine = ram_quarantine,
	.anchor = ram_anchor,
	.anchors = ram_anchors,
	.save_meter = ram_save_meter,
	.load_meter = ram_load_meter,
	.count = ram_count,
	.peek_after = ram_peek_after,
	.drop_upto = ram_drop_upto,
	.save_cursors = ram_save_cursors,
	.load_cursors = ram_load_cursors,
};

void fw_store_ram_init(struct fw_store_ram *ram, struct fw_record *storage, size_t cap,
		       struct fw_store *s)
{
	memset(ram, 0, sizeof(*ram));
	ram->buf = storage;
	ram->cap = cap;
	ram->first_seq = 1;
	s->ops = &ram_ops;
	s->ctx = ram;
}
