/* SPDX-License-Identifier: MIT */
/*
 * What the simulator (src_sim.c) and trace replay (src_trace.c) share as sources (live.h):
 * a block of samples read ahead, handed on as the monotonic clock (clock.h) makes them due at
 * the configured speed, and the count of samples given (the position). Neither has an fd:
 * the loop asks next_wakeup() when to read again.
 */
#ifndef PL_LINUX_SRC_PACED_H
#define PL_LINUX_SRC_PACED_H

#include <stddef.h>
#include <stdint.h>

#include "powerlogger/detector.h"
#include "sources/live.h"

#define PL_PACED_BLOCK 1024
#define PL_PACED_POLL_US 10000 /* nothing due: look again this much later */

struct pl_paced {
	/* Fills buf with up to cap samples of the source's time line: returns how many (0 at
	 * the end), or a negative PL_E* code with a message in err. */
	int (*fill)(void *self, struct pl_sample *buf, size_t cap, char *err, size_t errlen);
	void *self;
	double speed;       /* 1: as the samples' times say; 0: as fast as possible */
	struct pl_sample buf[PL_PACED_BLOCK];
	size_t pos, len;
	int eof;
	int started;        /* pacing: the monotonic time and input time of the first sample */
	int64_t wall0_us, input0_us;
	uint64_t position;  /* samples given, counting those skipped at the open */
};

/*
 * The read(), next_wakeup() and position() of live.h for a source whose state begins with a
 * struct pl_paced (self points at both). read() gives the samples due now, from the block
 * read ahead (never more than is left of it, at most cap), and sets info->ended at the end
 * (or after a failed fill).
 */
int pl_paced_read(void *self, void *buf, size_t cap, struct pl_live_info *info, char *err,
		  size_t errlen);
int64_t pl_paced_next_wakeup(void *self, int64_t now_us);
uint64_t pl_paced_position(void *self);

#endif
