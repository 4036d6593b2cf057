/* SPDX-License-Identifier: MIT */
/*
 * The [influx NAME] section into the InfluxDB sink's and the delivery thread's settings (see
 * influx_config.h).
 */
#include "sinks/influx_config.h"

#include <string.h>

void pl_influx_config_from(const struct pl_config_influx *c, struct pl_influx_config *ic,
			   struct pl_deliver_config *dc)
{
	memset(ic, 0, sizeof(*ic));
	ic->url = c->url;
	ic->api = (enum pl_influx_api)c->api;
	ic->db = c->database;
	ic->rp = c->retention_policy;
	ic->org = c->org;
	ic->bucket = c->bucket;
	ic->user = c->username;
	ic->password = c->password.value;
	ic->token = c->token.value;
	ic->precision = (enum pl_precision)c->precision;
	ic->gzip = c->gzip;
	ic->ca_file = c->ca_file;
	ic->timeout_ms = (long)c->timeout_s * 1000;
	ic->create_database = c->create_database;
	memset(dc, 0, sizeof(*dc));
	dc->name = c->name;
	dc->batch_max_records = c->batch_max_records;
	dc->batch_max_age_s = c->batch_max_age_s;
}

int pl_influx_deliver_start(const char *store_path, const struct pl_config_influx *c,
			    int64_t sink_id, struct pl_deliver **out)
{
	struct pl_influx_config ic;
	struct pl_deliver_config dc;

	pl_influx_config_from(c, &ic, &dc);
	return pl_deliver_start(store_path, &pl_influx_sink_ops, &ic, &dc, sink_id, out);
}
