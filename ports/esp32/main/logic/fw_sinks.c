/* SPDX-License-Identifier: MIT */
/*
 * Two sinks' cursors over one outbox (see fw_sinks.h).
 */
#include "fw_sinks.h"

#include <string.h>

#include "powerlogger/common.h"

size_t fw_sink_count(const struct fw_sink *k)
{
	size_t all = fw_store_count(k->owner->base);

	return all > k->ahead ? all - k->ahead : 0;
}

/*
 * Counts the waiting records after `from` with a seq up to upto, at most max of them: *count
 * gets how many and *last the newest one's seq (from if none).
 */
static int walk(struct fw_sinks *s, uint32_t from, uint32_t upto, size_t max, size_t *count,
		uint32_t *last)
{
	*count = 0;
	*last = from;
	while (*count < max) {
		size_t i, got, want = max - *count;
		int rc = fw_store_peek_after(s->base, *last, s->scratch, s->seqs,
					     want < FW_SINKS_CHUNK ? want : FW_SINKS_CHUNK, &got);

		if (rc < 0)
			return rc;
		for (i = 0; i < got; i++) {
			if (s->seqs[i] > upto)
				return 0;
			*last = s->seqs[i];
			(*count)++;
		}
		if (got < FW_SINKS_CHUNK && got < want)
			return 0; /* no more records */
	}
	return 0;
}

static int save(struct fw_sinks *s)
{
	struct fw_cursors c = s->saved;
	uint32_t i;
	int rc;

	if (!s->dirty)
		return 0;
	for (i = 0; i < s->n; i++) {
		c.c[i].sink = s->sink[i].kind;
		c.c[i].seq = s->sink[i].cursor;
	}
	c.n = s->n;
	rc = fw_store_save_cursors(s->base, &c);
	if (rc == -PL_ENOSPC) {
		s->unsaved_moves++;
		return 0;
	}
	if (rc < 0)
		return rc;
	s->saved = c;
	s->dirty = 0;
	return 0;
}

/* Acknowledges the log up to the oldest cursor. */
static int ack_min(struct fw_sinks *s)
{
	uint32_t i, lo = 0;
	size_t n;
	int rc;

	for (i = 1; i < s->n; i++)
		if (s->sink[i].ahead < s->sink[lo].ahead)
			lo = i;
	n = s->sink[lo].ahead;
	if (n == 0)
		return 0;
	rc = fw_store_drop_upto(s->base, s->sink[lo].cursor);
	if (rc < 0)
		return rc;
	for (i = 0; i < s->n; i++)
		s->sink[i].ahead -= n;
	return 0;
}

int fw_sink_done_upto(struct fw_sink *k, uint32_t seq)
{
	struct fw_sinks *s = k->owner;
	uint32_t last;
	size_t m;
	int rc;

	if (seq <= k->cursor)
		return 0;
	rc = walk(s, k->cursor, seq, SIZE_MAX, &m, &last);
	if (rc < 0)
		return rc;
	if (m == 0)
		return 0;
	k->cursor = last;
	k->ahead += m;
	s->dirty = 1;
	rc = ack_min(s);
	if (rc < 0)
		return rc;
	return s->n > 1 ? save(s) : 0;
}

int fw_sink_peek(struct fw_sink *k, struct fw_record *out, uint32_t *seqs, size_t cap,
		 size_t *n)
{
	return fw_store_peek_after(k->owner->base, k->cursor, out, seqs, cap, n);
}

long fw_sinks_make_room(struct fw_sinks *s)
{
	struct fw_sink *primary = &s->sink[0];
	long total = 0;
	uint32_t i, last;
	size_t m;
	int rc;

	for (i = 1; i < s->n; i++) {
		struct fw_sink *k = &s->sink[i];

		if (k->cursor >= primary->cursor || k->ahead > primary->ahead)
			continue;
		rc = walk(s, k->cursor, primary->cursor, FW_SINKS_SKIP, &m, &last);
		if (rc < 0)
			return rc;
		if (m == 0)
			continue;
		k->skipped += m;
		total += (long)m;
		rc = fw_sink_done_upto(k, last);
		if (rc < 0)
			return rc;
	}
	return total;
}

int fw_sinks_put_record(struct fw_sinks *s, const struct fw_record *r, long *skipped)
{
	int rc = fw_store_put_record(s->base, r);
	long sk;

	if (skipped != NULL)
		*skipped = 0;
	if (rc != -PL_ENOSPC)
		return rc;
	sk = fw_sinks_make_room(s);
	if (sk < 0)
		return (int)sk;
	if (skipped != NULL)
		*skipped = sk;
	return sk > 0 ? fw_store_put_record(s->base, r) : rc;
}

struct fw_sink *fw_sinks_get(struct fw_sinks *s, uint32_t kind)
{
	uint32_t i;

	for (i = 0; i < s->n; i++)
		if (s->sink[i].kind == kind)
			return &s->sink[i];
	return NULL;
}

/* ---- a sink's view as a struct fw_store ------------------------------------------------- */

static int v_append(void *ctx, const struct fw_record *r)
{
	return fw_store_append(((struct fw_sink *)ctx)->owner->base, r);
}

static int v_peek(void *ctx, struct fw_record *out, size_t cap, size_t *n)
{
	struct fw_sink *k = ctx;
	struct fw_sinks *s = k->owner;
	uint32_t after = k->cursor;

	*n = 0;
	while (*n < cap) {
		size_t got, want = cap - *n;
		int rc = fw_store_peek_after(s->base, after, out + *n, s->seqs,
					     want < FW_SINKS_CHUNK ? want : FW_SINKS_CHUNK, &got);

		if (rc < 0)
			return rc;
		*n += got;
		if (got == 0 || (got < FW_SINKS_CHUNK && got < want))
			break;
		after = s->seqs[got - 1];
	}
	return 0;
}

static int v_drop(void *ctx, size_t n)
{
	struct fw_sink *k = ctx;
	uint32_t last;
	size_t m;
	int rc;

	if (n == 0)
		return 0;
	rc = walk(k->owner, k->cursor, UINT32_MAX, n, &m, &last);
	if (rc < 0)
		return rc;
	if (m != n)
		return -PL_EINVAL;
	return fw_sink_done_upto(k, last);
}

static int v_quarantine(void *ctx, const char *why)
{
	struct fw_sink *k = ctx;
	uint32_t last;
	size_t m;
	int rc = walk(k->owner, k->cursor, UINT32_MAX, 1, &m, &last);

	if (rc < 0)
		return rc;
	if (m == 0)
		return -PL_EINVAL;
	strncpy(k->why, why != NULL ? why : "", sizeof(k->why) - 1);
	k->why[sizeof(k->why) - 1] = '\0';
	k->quarantined++;
	return fw_sink_done_upto(k, last);
}

static int v_anchor(void *ctx, uint32_t boot, int64_t offset_us)
{
	return fw_store_anchor(((struct fw_sink *)ctx)->owner->base, boot, offset_us);
}

static int v_anchors(void *ctx, struct fw_time_anchor *out, size_t cap, size_t *n)
{
	return fw_store_anchors(((struct fw_sink *)ctx)->owner->base, out, cap, n);
}

static int v_save_meter(void *ctx, const struct fw_meter_state *m)
{
	return fw_store_save_meter(((struct fw_sink *)ctx)->owner->base, m);
}

static int v_load_meter(void *ctx, struct fw_meter_state *m)
{
	return fw_store_load_meter(((struct fw_sink *)ctx)->owner->base, m);
}

static size_t v_count(void *ctx)
{
	return fw_sink_count(ctx);
}

static int v_peek_after(void *ctx, uint32_t after, struct fw_record *out, uint32_t *seqs,
			size_t cap, size_t *n)
{
	struct fw_sink *k = ctx;

	return fw_store_peek_after(k->owner->base, after > k->cursor ? after : k->cursor, out,
				   seqs, cap, n);
}

static int v_drop_upto(void *ctx, uint32_t seq)
{
	return fw_sink_done_upto(ctx, seq);
}

static int v_save_cursors(void *ctx, const struct fw_cursors *c)
{
	(void)ctx;
	(void)c;
	return -PL_EINVAL; /* the cursors belong to fw_sinks */
}

static int v_load_cursors(void *ctx, struct fw_cursors *c)
{
	return fw_store_load_cursors(((struct fw_sink *)ctx)->owner->base, c);
}

static const struct fw_store_ops view_ops = {
	.append = v_append,
	.peek = v_peek,
	.drop = v_drop,
	.quarantine = v_quarantine,
	.anchor = v_anchor,
	.anchors = v_anchors,
	.save_meter = v_save_meter,
	.load_meter = v_load_meter,
	.count = v_count,
	.peek_after = v_peek_after,
	.drop_upto = v_drop_upto,
	.save_cursors = v_save_cursors,
	.load_cursors = v_load_cursors,
};

/* ---- opening ----------------------------------------------------------------------------- */

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

int fw_sinks_open(struct fw_sinks *s, struct fw_store *base, const uint32_t *kinds, uint32_t n,
		  uint64_t seed)
{
	static const char hex[] = "0123456789abcdef";
	uint32_t i, j;
	int rc;

	if (s == NULL || base == NULL || kinds == NULL || n == 0 || n > FW_CURSORS_MAX)
		return -PL_EINVAL;
	for (i = 0; i < n; i++)
		for (j = 0; j < i; j++)
			if (kinds[i] == kinds[j])
				return -PL_EINVAL;
	memset(s, 0, sizeof(*s));
	s->base = base;
	s->n = n;
	rc = fw_store_load_cursors(base, &s->saved);
	if (rc == -PL_ENOENT || (rc == 0 && s->saved.n > FW_CURSORS_MAX)) {
		uint64_t x = seed, v = splitmix(&x);

		memset(&s->saved, 0, sizeof(s->saved));
		for (i = 0; i < sizeof(s->saved.id); i++)
			s->saved.id[i] = (uint8_t)(v >> (8 * i));
		rc = fw_store_save_cursors(base, &s->saved);
	}
	if (rc < 0)
		return rc;
	for (i = 0; i < sizeof(s->saved.id); i++) {
		s->id_hex[2 * i] = hex[s->saved.id[i] >> 4];
		s->id_hex[2 * i + 1] = hex[s->saved.id[i] & 15];
	}
	s->id_hex[16] = '\0';
	for (i = 0; i < n; i++) {
		struct fw_sink *k = &s->sink[i];
		uint32_t last;

		k->owner = s;
		k->kind = kinds[i];
		k->store.ops = &view_ops;
		k->store.ctx = k;
		for (j = 0; j < s->saved.n; j++)
			if (s->saved.c[j].sink == kinds[i])
				k->cursor = s->saved.c[j].seq;
		/* a cursor before the acknowledgement point is at it (walk finds nothing) */
		rc = walk(s, 0, k->cursor, SIZE_MAX, &k->ahead, &last);
		if (rc < 0)
			return rc;
	}
	/* a move whose save was lost left both sinks past records still waiting */
	return ack_min(s);
}
