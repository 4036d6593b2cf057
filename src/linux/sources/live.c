/*
 * The live sources' registry and clock conversion (see live.h).
 */
#include <time.h>

#include "sources/live.h"


const struct pl_live_ops *pl_live_ops_for(enum pl_config_source src)
{
	switch (src) {
	case PL_CONFIG_SOURCE_IIO:
		return &pl_live_iio;
	case PL_CONFIG_SOURCE_GPIO:
		return &pl_live_gpio;
	case PL_CONFIG_SOURCE_SERIAL:
		return &pl_live_serial;
	default:
		return NULL;
	}
}

int64_t pl_live_mono_to_real_us(void)
{
	struct timespec r, m;

	clock_gettime(CLOCK_REALTIME, &r);
	clock_gettime(CLOCK_MONOTONIC, &m);
	return ((int64_t)r.tv_sec - (int64_t)m.tv_sec) * PL_US_PER_S +
	       ((int64_t)r.tv_nsec - (int64_t)m.tv_nsec) / 1000;
}
