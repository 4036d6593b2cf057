/* SPDX-License-Identifier: MIT */
/*
 * From the configuration file's [influx NAME] section (struct pl_config_influx) to what the
 * InfluxDB sink and the delivery thread take: the one place that knows both. The sink and the
 * thread know nothing of the file (sinks/influx.h, sinks/deliver.h).
 */
#ifndef PL_LINUX_INFLUX_CONFIG_H
#define PL_LINUX_INFLUX_CONFIG_H

#include <stdint.h>

#include "config/config.h"
#include "sinks/deliver.h"
#include "sinks/influx.h"

/* Fills the writer's and the delivery thread's settings from the section c. The strings are
 * c's (not copied): ic and dc are valid while c is. */
void pl_influx_config_from(const struct pl_config_influx *c, struct pl_influx_config *ic,
			   struct pl_deliver_config *dc);

/* pl_deliver_start for the InfluxDB sink of section c (see there). */
int pl_influx_deliver_start(const char *store_path, const struct pl_config_influx *c,
			    int64_t sink_id, struct pl_deliver **out);

#endif
