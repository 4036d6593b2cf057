/* SPDX-License-Identifier: MIT */
/*
 * What `powerlogger run` stores with every commit so that a restart resumes exactly: the
 * detector's and the meter's plain-data state and the source's position. `powerlogger status`
 * reads it too (the meter's power and the detector's state of a running or stopped logger).
 *
 * Plain data, stored as bytes: a change of any member's layout must bump PL_CKPT_VERSION, and
 * a checkpoint of another version is ignored (the detector relearns, the register is lost only
 * back to the newest record, which holds it too).
 */
#ifndef PL_LINUX_CHECKPOINT_H
#define PL_LINUX_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "powerlogger/detector.h"
#include "powerlogger/meter.h"

#define PL_CKPT_MAGIC 0x4b43504cu /* "PLCK" */
#define PL_CKPT_VERSION 1u

struct pl_checkpoint {
	uint32_t magic, version;
	uint32_t det_size, meter_size;
	struct pl_detector det;
	struct pl_meter meter;
	uint64_t consumed;   /* samples of the source consumed */
	int64_t epoch_us;    /* sim: wall time of its sample 0 */
	uint8_t started;     /* the meter has seen its first sample */
	int64_t first_t;     /* time of the first sample */
};

/* 1 when len bytes at ck are a checkpoint this program can resume from. */
static inline int pl_checkpoint_valid(const struct pl_checkpoint *ck, size_t len)
{
	return len == sizeof(*ck) && ck->magic == PL_CKPT_MAGIC &&
	       ck->version == PL_CKPT_VERSION && ck->det_size == sizeof(ck->det) &&
	       ck->meter_size == sizeof(ck->meter);
}

#endif
