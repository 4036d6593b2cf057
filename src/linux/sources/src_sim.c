/* SPDX-License-Identifier: MIT */
/*
 * The simulated meter as a source (see src_sim.h).
 */
#include <stdlib.h>

#include "clock.h"
#include "sources/sim.h"
#include "sources/src_paced.h"
#include "sources/src_sim.h"

struct src_sim {
	struct pl_paced paced; /* first: the ops of src_paced.c take self as one */
	struct pl_sim *sim;
	struct pl_sim_load load;
	int have_load;
	int64_t epoch_us;
};

static int sim_fill(void *self, struct pl_sample *buf, size_t cap, char *err, size_t errlen)
{
	struct src_sim *s = self;
	size_t n = pl_sim_read(s->sim, buf, cap);

	(void)err;
	(void)errlen;
	for (size_t i = 0; i < n; i++)
		buf[i].t_us += s->epoch_us;
	return (int)n;
}

static void sim_close(void *self)
{
	struct src_sim *s = self;

	if (s == NULL)
		return;
	pl_sim_free(s->sim);
	if (s->have_load)
		pl_sim_load_free(&s->load);
	free(s);
}

int pl_src_sim_open(void **self, const struct pl_src_sim_config *cfg, char *err, size_t errlen)
{
	struct src_sim *s = calloc(1, sizeof(*s));
	struct pl_sim_config sc;
	int rc;

	*self = NULL;
	if (s == NULL)
		return -PL_ENOMEM;
	pl_sim_config_default(&sc);
	sc.duration_s = 1e7; /* the simulator's longest: 115 days, then the source ends */
	sc.rate_hz = 1000;
	sc.noise = 10;
	sc.imp_per_kwh = cfg->imp_per_kwh;
	sc.seed = (uint64_t)pl_clock_wall_us();
	if (cfg->profile) {
		rc = pl_sim_load_read(cfg->profile, &s->load, err, errlen);
		if (rc != 0) {
			free(s);
			return rc < 0 ? rc : -PL_EIO;
		}
		s->have_load = 1;
		sc.load = &s->load;
		/* start at the profile's time of day now */
		sc.load_start_s = (double)((pl_clock_wall_us() / PL_US_PER_S) % 86400);
	}
	rc = pl_sim_new(&s->sim, &sc, err, errlen);
	if (rc != 0) {
		sim_close(s);
		return rc < 0 ? rc : -PL_EINVAL;
	}
	s->epoch_us = cfg->epoch_us;
	s->paced.fill = sim_fill;
	s->paced.self = s;
	s->paced.speed = cfg->speed;
	*self = s;
	return 0;
}

const struct pl_live_ops pl_src_sim = {
	.name = "sim",
	.kind = PL_LIVE_SAMPLES,
	.read = pl_paced_read,
	.close = sim_close,
	.timeline = PL_LIVE_PACED,
	.next_wakeup = pl_paced_next_wakeup,
	.position = pl_paced_position,
};
