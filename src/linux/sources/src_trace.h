/* SPDX-License-Identifier: MIT */
/*
 * Trace replay as a source (live.h, src_trace.c): a recorded file of samples (trace.h)
 * replayed at a speed factor, opened at a position (the samples a checkpoint says were
 * consumed are skipped), so that the records of a resumed replay are those of an
 * uninterrupted one. Its end is reported with where the input ends: one sample period after
 * its last sample (the file's rate, or the mean period of timestamped samples).
 */
#ifndef PL_LINUX_SRC_TRACE_H
#define PL_LINUX_SRC_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "sources/live.h"
#include "sources/trace.h"

struct pl_src_trace_config {
	const char *path;
	struct pl_trace_config trace; /* format, rate of raw formats */
	double speed;                 /* 1: as the file's times say; 0: as fast as possible */
	uint64_t start;               /* samples to skip (a checkpoint's position) */
};

/* Timeline PL_LIVE_REPLAY; no open() or fd(): opened with pl_src_trace_open(). */
extern const struct pl_live_ops pl_src_trace;

/* Returns 0 with *self set (closed with pl_src_trace.close), or a negative PL_E* code with
 * a message in err ("PATH: what is wrong", "PATH is shorter than its checkpoint says"). */
int pl_src_trace_open(void **self, const struct pl_src_trace_config *cfg, char *err,
		      size_t errlen);

#endif
