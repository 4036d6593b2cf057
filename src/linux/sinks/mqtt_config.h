/* SPDX-License-Identifier: MIT */
/*
 * From the configuration file's [mqtt NAME] section (struct pl_config_mqtt) to what the MQTT
 * sink and the delivery thread take: the one place that knows both (as influx_config.h is for
 * InfluxDB). The sink knows nothing of the file (sinks/mqtt.h).
 */
#ifndef PL_LINUX_MQTT_CONFIG_H
#define PL_LINUX_MQTT_CONFIG_H

#include <stdint.h>

#include "config/config.h"
#include "sinks/deliver.h"
#include "sinks/mqtt.h"
#include "store/store.h"

/*
 * pl_deliver_start for the MQTT sink of section q of cfg: the meters of cfg are the ones
 * discovered, store (the daemon's own connection) gives the store id that marks the
 * records, box (may be NULL) the diagnostics. Batches of PL_MQTT_BATCH records, sent at once.
 * Returns 0, or -1 with a message logged.
 */
int pl_mqtt_deliver_start(const char *store_path, struct pl_store *store,
			  const struct pl_config *cfg, const struct pl_config_mqtt *q,
			  int64_t sink_id, struct pl_mqtt_box *box, struct pl_deliver **out);

#endif
