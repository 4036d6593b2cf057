/* SPDX-License-Identifier: MIT */
/*
 * The [mqtt NAME] section into the MQTT sink's and the delivery thread's settings (see
 * mqtt_config.h).
 */
#include "sinks/mqtt_config.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

#ifndef PL_VERSION
#define PL_VERSION "0.1.0-dev"
#endif

int pl_mqtt_deliver_start(const char *store_path, struct pl_store *store,
			  const struct pl_config *cfg, const struct pl_config_mqtt *q,
			  int64_t sink_id, struct pl_mqtt_box *box, struct pl_deliver **out)
{
	char id[PL_MQTT_STORE_ID_MAX + 1];
	struct pl_mqtt_sink_meter *meters;
	int rc;

	*out = NULL;
	if (pl_store_id(store, id, sizeof(id)) != 0) {
		pl_log(PL_LOG_ERROR, "sink %s: store: %s", q->name, pl_store_error(store));
		return -1;
	}
	meters = calloc(cfg->nmeters ? cfg->nmeters : 1, sizeof(*meters));
	if (meters == NULL) {
		pl_log(PL_LOG_ERROR, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < cfg->nmeters; i++)
		meters[i] = (struct pl_mqtt_sink_meter){ .name = cfg->meters[i].name,
							 .imp_per_kwh = cfg->meters[i].imp_per_kwh };
	struct pl_mqtt_config mc = {
		.name = q->name,
		.host = q->host,
		.port = q->port,
		.tls = q->tls,
		.ca_file = q->ca_file,
		.username = q->username,
		.password = q->password.value,
		.client_id = q->client_id,
		.topic_prefix = q->topic_prefix,
		.discovery_prefix = q->discovery_prefix,
		.qos = (int)q->qos,
		.keepalive_s = (int)q->keepalive_s,
		.store_id = id,
		.sw_version = PL_VERSION,
		.meters = meters,
		.nmeters = cfg->nmeters,
		.box = box,
	};
	struct pl_deliver_config dc = {
		.name = q->name,
		.batch_max_records = PL_MQTT_BATCH,
		.batch_max_age_s = 0,
	};
	rc = pl_deliver_start(store_path, &pl_mqtt_sink_ops, &mc, &dc, sink_id, out);
	free(meters); /* open copied them */
	return rc;
}
