/* SPDX-License-Identifier: MIT */
/*
 * The simulated meter as a source (live.h, src_sim.c): the simulator (sim.h) with the
 * daemon's settings (1 kHz, a little noise, a real household's load profile if one is
 * given), stamped in wall-clock time from its open on and paced by the monotonic clock.
 */
#ifndef PL_LINUX_SRC_SIM_H
#define PL_LINUX_SRC_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "sources/live.h"

struct pl_src_sim_config {
	uint32_t imp_per_kwh;
	const char *profile; /* a load profile (sim.h's pl_sim_load_read()), or NULL */
	double speed;        /* 1: real time; 0: as fast as possible */
	int64_t epoch_us;    /* wall-clock time of the first sample */
};

/* Timeline PL_LIVE_PACED; no open() or fd(): opened with pl_src_sim_open(). */
extern const struct pl_live_ops pl_src_sim;

/* Returns 0 with *self set (closed with pl_src_sim.close), or a negative PL_E* code with a
 * message in err. The random seed and the profile's time of day come from the wall clock. */
int pl_src_sim_open(void **self, const struct pl_src_sim_config *cfg, char *err, size_t errlen);

#endif
