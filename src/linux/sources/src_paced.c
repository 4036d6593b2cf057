/* SPDX-License-Identifier: MIT */
/*
 * Pacing for the sources without a device (see src_paced.h).
 */
#include <string.h>

#include "clock.h"
#include "sources/src_paced.h"

/* The latest input time due at the monotonic time now. */
static int64_t due_limit(const struct pl_paced *p, int64_t now)
{
	if (p->speed <= 0)
		return INT64_MAX;
	return p->input0_us + (int64_t)((double)(now - p->wall0_us) * p->speed);
}

int pl_paced_read(void *self, void *buf, size_t cap, struct pl_live_info *info, char *err,
		  size_t errlen)
{
	struct pl_paced *p = self;
	struct pl_sample *out = buf;
	int64_t limit;
	size_t take = 0;

	if (p->pos >= p->len && !p->eof) {
		int n = p->fill(p->self, p->buf, PL_PACED_BLOCK, err, errlen);

		p->pos = p->len = 0;
		if (n <= 0) {
			p->eof = 1;
			info->ended = 1;
			return n;
		}
		p->len = (size_t)n;
	}
	if (p->pos >= p->len) {
		info->ended = p->eof;
		return 0;
	}
	if (!p->started) {
		p->started = 1;
		p->wall0_us = pl_clock_mono_us();
		p->input0_us = p->buf[p->pos].t_us;
	}
	limit = due_limit(p, pl_clock_mono_us());
	while (take < cap && p->pos + take < p->len && p->buf[p->pos + take].t_us <= limit)
		take++;
	memcpy(out, p->buf + p->pos, take * sizeof(*out));
	p->pos += take;
	p->position += take;
	return (int)take;
}

int64_t pl_paced_next_wakeup(void *self, int64_t now_us)
{
	const struct pl_paced *p = self;

	if (p->eof && p->pos >= p->len)
		return INT64_MAX;
	if (p->pos >= p->len || !p->started || p->buf[p->pos].t_us <= due_limit(p, now_us))
		return now_us;
	return now_us + PL_PACED_POLL_US;
}

uint64_t pl_paced_position(void *self)
{
	const struct pl_paced *p = self;

	return p->position;
}
