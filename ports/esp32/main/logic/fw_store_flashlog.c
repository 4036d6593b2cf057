/* SPDX-License-Identifier: MIT */
/*
 * The outbox on flash (see fw_store_flashlog.h): interval records, the meter state and the
 * boots' time anchors as records of the core's pl_flashlog. The log does the hard part (power
 * cuts, wear, reclaiming); this file maps the outbox's calls onto appends, a read cursor and
 * acknowledgements, and keeps in RAM only counts and the newest meter state and anchors.
 */
#include "fw_store_flashlog.h"

#include <string.h>

#include "powerlogger/common.h"

static int is_record(const struct pl_flashlog_rec *rec)
{
	return rec->type == FW_FLASH_T_RECORD && rec->len == sizeof(struct fw_record);
}

/* Notes a flash failure: the log refuses work until mounted again, which the next call does. */
static int failed(struct fw_store_flashlog *fs, int rc)
{
	if (rc == -PL_EIO)
		fs->need_mount = 1;
	return rc;
}

/* The newest record of a kept type into fs->buf; its length, or a negative PL_E* code. */
static int load_kept(struct fw_store_flashlog *fs, uint8_t type)
{
	struct pl_flashlog_rec rec;
	int rc = pl_flashlog_last_of_type(&fs->log, type, &rec, fs->buf, sizeof(fs->buf));

	return rc < 0 ? rc : (int)rec.len;
}

/* Mounts and rebuilds the RAM side: the count, the meter state, the anchors. */
static int mount(struct fw_store_flashlog *fs)
{
	struct pl_flashlog_cursor cur;
	struct pl_flashlog_rec rec;
	int rc;

	fs->need_mount = 1;
	fs->n = 0;
	fs->skipped = 0;
	fs->has_meter = 0;
	fs->has_cursors = 0;
	fs->nanchors = 0;
	memset(fs->hint, 0, sizeof(fs->hint)); /* log cursors do not survive a mount */
	rc = pl_flashlog_mount(&fs->log, &fs->flash);
	if (rc < 0)
		return rc;
	pl_flashlog_rewind(&fs->log, &cur);
	while ((rc = pl_flashlog_next(&fs->log, &cur, &rec, fs->buf, sizeof(fs->buf))) == 0) {
		if (is_record(&rec))
			fs->n++;
		else if (rec.type == FW_FLASH_T_RECORD)
			fs->skipped++;
	}
	if (rc != -PL_ENOENT)
		return rc;

	rc = load_kept(fs, FW_FLASH_T_METER);
	if (rc == (int)sizeof(fs->meter)) {
		memcpy(&fs->meter, fs->buf, sizeof(fs->meter));
		fs->has_meter = 1;
	} else if (rc < 0 && rc != -PL_ENOENT) {
		return rc;
	}
	rc = load_kept(fs, FW_FLASH_T_CURSORS);
	if (rc == (int)sizeof(fs->cursors)) {
		memcpy(&fs->cursors, fs->buf, sizeof(fs->cursors));
		fs->has_cursors = fs->cursors.n <= FW_CURSORS_MAX;
	} else if (rc < 0 && rc != -PL_ENOENT) {
		return rc;
	}
	rc = load_kept(fs, FW_FLASH_T_ANCHORS);
	if (rc > 0 && (size_t)rc % sizeof(fs->anchors[0]) == 0 &&
	    (size_t)rc <= sizeof(fs->anchors)) {
		memcpy(fs->anchors, fs->buf, (size_t)rc);
		fs->nanchors = (uint32_t)((size_t)rc / sizeof(fs->anchors[0]));
	} else if (rc < 0 && rc != -PL_ENOENT) {
		return rc;
	}
	fs->need_mount = 0;
	return 0;
}

/* Every call starts here: after a flash failure the log must be mounted again first. */
static int ready(struct fw_store_flashlog *fs)
{
	return fs->need_mount ? mount(fs) : 0;
}

static int flash_append(void *ctx, const struct fw_record *r)
{
	struct fw_store_flashlog *fs = ctx;
	int rc = ready(fs);

	if (rc < 0)
		return rc;
	rc = pl_flashlog_append(&fs->log, FW_FLASH_T_RECORD, r, sizeof(*r), NULL);
	if (rc < 0)
		return failed(fs, rc);
	fs->n++;
	return 0;
}

/*
 * Reads from the oldest waiting record on: copies up to cap interval records into out (NULL:
 * only counts), and says through *upto the seq to acknowledge to drop exactly those: the last
 * one's, or that of the last meter or anchor record before the next interval record.
 */
static int walk(struct fw_store_flashlog *fs, struct fw_record *out, size_t cap, size_t *n,
		uint32_t *upto)
{
	struct pl_flashlog_cursor cur;
	struct pl_flashlog_rec rec;
	int rc;

	*n = 0;
	*upto = 0;
	pl_flashlog_rewind(&fs->log, &cur);
	while ((rc = pl_flashlog_next(&fs->log, &cur, &rec, fs->buf, sizeof(fs->buf))) == 0) {
		if (is_record(&rec)) {
			if (*n == cap)
				return 0;
			if (out != NULL)
				memcpy(&out[*n], fs->buf, sizeof(*out));
			(*n)++;
		}
		*upto = rec.seq;
	}
	return rc == -PL_ENOENT ? 0 : rc;
}

static int flash_peek(void *ctx, struct fw_record *out, size_t cap, size_t *n)
{
	struct fw_store_flashlog *fs = ctx;
	uint32_t upto;
	int rc = ready(fs);

	*n = 0;
	if (rc < 0)
		return rc;
	return failed(fs, walk(fs, out, cap, n, &upto));
}

static int flash_drop(void *ctx, size_t n)
{
	struct fw_store_flashlog *fs = ctx;
	uint32_t upto;
	size_t got;
	int rc = ready(fs);

	if (rc < 0)
		return rc;
	if (n > fs->n)
		return -PL_EINVAL;
	if (n == 0)
		return 0;
	rc = walk(fs, NULL, n, &got, &upto);
	if (rc < 0)
		return failed(fs, rc);
	if (got != n) /* the count and the flash disagree: only a bug gets here */
		return -PL_EIO;
	rc = pl_flashlog_ack(&fs->log, upto);
	if (rc < 0)
		return failed(fs, rc);
	fs->n -= n;
	return 0;
}

static int flash_quarantine(void *ctx, const char *why)
{
	struct fw_store_flashlog *fs = ctx;
	struct fw_record r;
	size_t got, slot;
	int rc = flash_peek(ctx, &r, 1, &got);

	if (rc < 0)
		return rc;
	if (got == 0)
		return -PL_EINVAL;
	rc = flash_drop(ctx, 1);
	if (rc < 0)
		return rc;
	slot = fs->quarantined % FW_QUARANTINE_KEEP;
	fs->q[slot] = r;
	strncpy(fs->q_why[slot], why ? why : "", sizeof(fs->q_why[slot]) - 1);
	fs->q_why[slot][sizeof(fs->q_why[slot]) - 1] = '\0';
	fs->quarantined++;
	return 0;
}

/* The table with boot's anchor set: replaced if there, else added, the oldest boot dropped. */
static uint32_t anchors_with(const struct fw_store_flashlog *fs, struct fw_time_anchor *t,
			     uint32_t boot, int64_t offset_us)
{
	uint32_t i, n = fs->nanchors;

	memcpy(t, fs->anchors, n * sizeof(*t));
	for (i = 0; i < n; i++)
		if (t[i].boot == boot)
			break;
	if (i == n) {
		if (n == FW_STORE_FLASH_ANCHORS) {
			uint32_t oldest = 0;

			for (i = 1; i < n; i++)
				if (t[i].boot < t[oldest].boot)
					oldest = i;
			memmove(&t[oldest], &t[oldest + 1], (n - oldest - 1) * sizeof(*t));
			n--;
		}
		i = n++;
	}
	t[i] = (struct fw_time_anchor){.boot = boot, .offset_us = offset_us};
	return n;
}

static int flash_anchor(void *ctx, uint32_t boot, int64_t offset_us)
{
	struct fw_store_flashlog *fs = ctx;
	struct fw_time_anchor t[FW_STORE_FLASH_ANCHORS];
	uint32_t n;
	int rc = ready(fs);

	if (rc < 0)
		return rc;
	n = anchors_with(fs, t, boot, offset_us);
	rc = pl_flashlog_append(&fs->log, FW_FLASH_T_ANCHORS, t, n * sizeof(t[0]), NULL);
	if (rc < 0)
		return failed(fs, rc);
	memcpy(fs->anchors, t, n * sizeof(t[0]));
	fs->nanchors = n;
	return 0;
}

static int flash_anchors(void *ctx, struct fw_time_anchor *out, size_t cap, size_t *n)
{
	struct fw_store_flashlog *fs = ctx;
	size_t i, k;
	int rc = ready(fs);

	*n = 0;
	if (rc < 0)
		return rc;
	k = fs->nanchors < cap ? fs->nanchors : cap;
	for (i = 0; i < k; i++) /* the newest when cap is short */
		out[i] = fs->anchors[fs->nanchors - k + i];
	*n = k;
	return 0;
}

static int flash_save_meter(void *ctx, const struct fw_meter_state *m)
{
	struct fw_store_flashlog *fs = ctx;
	int rc = ready(fs);

	if (rc < 0)
		return rc;
	/* an idle interval leaves the register as it was: no need to write it again */
	if (fs->has_meter && fs->meter.register_uwh == m->register_uwh &&
	    fs->meter.boot == m->boot)
		return 0;
	rc = pl_flashlog_append(&fs->log, FW_FLASH_T_METER, m, sizeof(*m), NULL);
	if (rc < 0)
		return failed(fs, rc);
	fs->meter = *m;
	fs->has_meter = 1;
	return 0;
}

static int flash_load_meter(void *ctx, struct fw_meter_state *m)
{
	struct fw_store_flashlog *fs = ctx;
	int rc = ready(fs);

	if (rc < 0)
		return rc;
	if (!fs->has_meter)
		return -PL_ENOENT;
	*m = fs->meter;
	return 0;
}

static size_t flash_count(void *ctx)
{
	return ((struct fw_store_flashlog *)ctx)->n;
}

/* The remembered position nearest before (or at) after; NULL when none is. */
static int hint_find(const struct fw_store_flashlog *fs, uint32_t after)
{
	int i, best = -1;

	for (i = 0; i < FW_STORE_FLASH_HINTS; i++)
		if (fs->hint[i].seq != 0 && fs->hint[i].seq <= after &&
		    (best < 0 || fs->hint[i].seq > fs->hint[best].seq))
			best = i;
	return best;
}

/* Remembers cur as the position just after seq, in place of the least recently used. */
static void hint_put(struct fw_store_flashlog *fs, const struct pl_flashlog_cursor *cur,
		     uint32_t seq)
{
	int i, slot = 0;

	if (seq == 0)
		return;
	for (i = 0; i < FW_STORE_FLASH_HINTS; i++) {
		if (fs->hint[i].seq == seq) {
			slot = i;
			break;
		}
		if (fs->hint[i].used < fs->hint[slot].used)
			slot = i;
	}
	fs->hint[slot].cur = *cur;
	fs->hint[slot].seq = seq;
	fs->hint[slot].used = ++fs->hint_clock;
}

static int flash_peek_after(void *ctx, uint32_t after, struct fw_record *out, uint32_t *seqs,
			    size_t cap, size_t *n)
{
	struct fw_store_flashlog *fs = ctx;
	struct pl_flashlog_cursor cur, prev;
	struct pl_flashlog_rec rec;
	uint32_t prev_seq = 0;
	int rc = ready(fs), h;

	*n = 0;
	if (rc < 0)
		return rc;
	h = hint_find(fs, after);
	if (h >= 0) {
		cur = fs->hint[h].cur;
		prev_seq = fs->hint[h].seq;
		fs->hint[h].used = ++fs->hint_clock;
	} else {
		pl_flashlog_rewind(&fs->log, &cur);
	}
	for (;;) {
		prev = cur;
		rc = pl_flashlog_next(&fs->log, &cur, &rec, fs->buf, sizeof(fs->buf));
		if (rc < 0)
			break;
		if (rec.seq <= after) {
			prev_seq = rec.seq;
			continue;
		}
		if (*n == 0)
			hint_put(fs, &prev, prev_seq != 0 ? prev_seq : after);
		if (!is_record(&rec)) {
			prev_seq = rec.seq;
			continue;
		}
		if (*n == cap) {
			rc = 0;
			break;
		}
		memcpy(&out[*n], fs->buf, sizeof(*out));
		seqs[*n] = rec.seq;
		(*n)++;
		prev_seq = rec.seq;
		if (*n == cap)
			hint_put(fs, &cur, rec.seq);
	}
	if (rc == -PL_ENOENT)
		rc = 0;
	return failed(fs, rc);
}

/*
 * Acknowledges every interval record up to seq, and with them the meter, anchor and cursor
 * records that follow up to the next interval record, as drop() does.
 */
static int flash_drop_upto(void *ctx, uint32_t seq)
{
	struct fw_store_flashlog *fs = ctx;
	struct pl_flashlog_cursor cur;
	struct pl_flashlog_rec rec;
	uint32_t upto = 0;
	size_t k = 0;
	int rc = ready(fs);

	if (rc < 0)
		return rc;
	pl_flashlog_rewind(&fs->log, &cur);
	while ((rc = pl_flashlog_next(&fs->log, &cur, &rec, fs->buf, sizeof(fs->buf))) == 0) {
		if (is_record(&rec)) {
			if (rec.seq > seq)
				break;
			k++;
		}
		upto = rec.seq;
	}
	if (rc < 0 && rc != -PL_ENOENT)
		return failed(fs, rc);
	if (k == 0)
		return 0;
	if (k > fs->n) /* the count and the flash disagree: only a bug gets here */
		return -PL_EIO;
	rc = pl_flashlog_ack(&fs->log, upto);
	if (rc < 0)
		return failed(fs, rc);
	fs->n -= k;
	return 0;
}

static int flash_save_cursors(void *ctx, const struct fw_cursors *c)
{
	struct fw_store_flashlog *fs = ctx;
	int rc = ready(fs);

	if (rc < 0)
		return rc;
	if (fs->has_cursors && memcmp(&fs->cursors, c, sizeof(*c)) == 0)
		return 0;
	rc = pl_flashlog_append(&fs->log, FW_FLASH_T_CURSORS, c, sizeof(*c), NULL);
	if (rc < 0)
		return failed(fs, rc);
	fs->cursors = *c;
	fs->has_cursors = 1;
	return 0;
}

static int flash_load_cursors(void *ctx, struct fw_cursors *c)
{
	struct fw_store_flashlog *fs = ctx;
	int rc = ready(fs);

	if (rc < 0)
		return rc;
	if (!fs->has_cursors)
		return -PL_ENOENT;
	*c = fs->cursors;
	return 0;
}

static const struct fw_store_ops flash_ops = {
	.append = flash_append,
	.peek = flash_peek,
	.drop = flash_drop,
	.quarantine = flash_quarantine,
	.anchor = flash_anchor,
	.anchors = flash_anchors,
	.save_meter = flash_save_meter,
	.load_meter = flash_load_meter,
	.count = flash_count,
	.peek_after = flash_peek_after,
	.drop_upto = flash_drop_upto,
	.save_cursors = flash_save_cursors,
	.load_cursors = flash_load_cursors,
};

int fw_store_flashlog_open(struct fw_store_flashlog *fs, const struct pl_flash *flash,
			   struct fw_store *s)
{
	if (fs == NULL || flash == NULL || s == NULL)
		return -PL_EINVAL;
	memset(fs, 0, sizeof(*fs));
	fs->flash = *flash;
	s->ops = &flash_ops;
	s->ctx = fs;
	return mount(fs);
}
