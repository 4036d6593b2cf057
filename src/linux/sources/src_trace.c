/* SPDX-License-Identifier: MIT */
/*
 * Trace replay as a source (see src_trace.h).
 */
#include <stdio.h>
#include <stdlib.h>

#include "sources/src_paced.h"
#include "sources/src_trace.h"

struct src_trace {
	struct pl_paced paced; /* first: the ops of src_paced.c take self as one */
	struct pl_trace *trace;
	int have_first;
	int64_t first_t, last_t; /* of the whole file, skipped samples included */
};

static int trace_fill(void *self, struct pl_sample *buf, size_t cap, char *err, size_t errlen)
{
	struct src_trace *s = self;
	size_t n = 0;
	int rc = pl_trace_read(s->trace, buf, cap, &n);

	if (rc != 0) {
		snprintf(err, errlen, "%s", pl_trace_error(s->trace));
		return rc;
	}
	if (n > 0) {
		if (!s->have_first)
			s->first_t = buf[0].t_us;
		s->have_first = 1;
		s->last_t = buf[n - 1].t_us;
	}
	return (int)n;
}

static void trace_close(void *self)
{
	struct src_trace *s = self;

	if (s == NULL)
		return;
	pl_trace_free(s->trace);
	free(s);
}

int pl_src_trace_open(void **self, const struct pl_src_trace_config *cfg, char *err,
		      size_t errlen)
{
	struct src_trace *s = calloc(1, sizeof(*s));
	uint64_t skip = cfg->start;
	int rc;

	*self = NULL;
	if (s == NULL)
		return -PL_ENOMEM;
	rc = pl_trace_open(&s->trace, cfg->path, &cfg->trace, err, errlen);
	if (rc != 0) {
		free(s);
		return rc;
	}
	/* Skip what the checkpoint says was consumed: the replay resumes exactly. */
	while (skip > 0) {
		size_t want = skip < PL_PACED_BLOCK ? (size_t)skip : PL_PACED_BLOCK;
		int n = trace_fill(s, s->paced.buf, want, err, errlen);

		if (n <= 0) {
			snprintf(err, errlen, "%s is shorter than its checkpoint says", cfg->path);
			trace_close(s);
			return -PL_ENOENT;
		}
		skip -= (uint64_t)n;
	}
	s->paced.fill = trace_fill;
	s->paced.self = s;
	s->paced.speed = cfg->speed;
	s->paced.position = cfg->start;
	*self = s;
	return 0;
}

static int trace_read(void *self, void *buf, size_t cap, struct pl_live_info *info, char *err,
		      size_t errlen)
{
	struct src_trace *s = self;
	int n = pl_paced_read(s, buf, cap, info, err, errlen);
	uint64_t count = s->paced.position;
	uint32_t rate = pl_trace_rate(s->trace);

	if (!info->ended || !s->have_first)
		return n;
	/* the input ends one (mean) sample period after its last sample, as in detect */
	info->end_us = s->last_t + 1;
	if (count > 1 && rate > 0)
		info->end_us = s->last_t + pl_trace_index_us(1, rate);
	else if (count > 1 && s->first_t < s->last_t)
		info->end_us = s->last_t + (s->last_t - s->first_t) / (int64_t)(count - 1);
	return n;
}

const struct pl_live_ops pl_src_trace = {
	.name = "file",
	.kind = PL_LIVE_SAMPLES,
	.read = trace_read,
	.close = trace_close,
	.timeline = PL_LIVE_REPLAY,
	.next_wakeup = pl_paced_next_wakeup,
	.position = pl_paced_position,
};
