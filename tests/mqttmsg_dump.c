/* SPDX-License-Identifier: MIT */
/*
 * Prints what a logger publishes over MQTT for the meters given on the command line, one
 * message a line as "TOPIC<TAB>PAYLOAD": the availability, then for each meter its discovery
 * config, a retained state, an interval message and the diagnostics, all built by the core's
 * mqttmsg.c from one sample record. tests/ha_discovery_check.py reads this and holds it to
 * Home Assistant's rules; the documentation can show real payloads with it.
 *
 *   mqttmsg_dump [--prefix P] [--discovery D] [--node ID] [--sw V] [--model M] [--url U]
 *                METER...
 *
 * A METER is NAME or NAME:IMP_PER_KWH (default 1000); "hex:414243" or "hex:414243:800" gives
 * the name as hex bytes, for names no shell argument can carry comfortably (control bytes,
 * invalid UTF-8). The same "hex:" form works for --node. Topics cannot hold a tab or newline
 * (mqttmsg.c replaces control bytes in topics) and JSON escapes them, so every message is one
 * line. Exits 1 if the core refuses anything, 2 on bad usage.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "powerlogger/mqttmsg.h"

#define NAME_CAP 1024

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes "hex:..." up to the first ':' (or the end) into out; returns the rest after ':' or
 * "" , NULL on a malformed hex string. Other text is copied up to the last ':' followed by
 * digits only. */
static const char *parse_name(const char *arg, char *out, size_t cap)
{
	if (strncmp(arg, "hex:", 4) == 0) {
		const char *p = arg + 4;
		size_t n = 0;

		while (*p != '\0' && *p != ':') {
			int hi = hexval(p[0]), lo = p[1] != '\0' ? hexval(p[1]) : -1;

			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0) || n + 1 >= cap)
				return NULL;
			out[n++] = (char)(hi * 16 + lo);
			p += 2;
		}
		out[n] = '\0';
		return *p == ':' ? p + 1 : p;
	} else {
		const char *colon = strrchr(arg, ':');
		size_t n = strlen(arg);

		if (colon != NULL && colon[1] != '\0' && strspn(colon + 1, "0123456789") ==
		    strlen(colon + 1))
			n = (size_t)(colon - arg);
		else
			colon = NULL;
		if (n + 1 > cap)
			return NULL;
		memcpy(out, arg, n);
		out[n] = '\0';
		return colon != NULL ? colon + 1 : "";
	}
}

static void emit(const char *topic, int tn, const char *payload, int pn, const char *what)
{
	if (tn < 0 || pn < 0) {
		fprintf(stderr, "mqttmsg_dump: %s: %s\n", what, pl_strerror(tn < 0 ? tn : pn));
		exit(1);
	}
	printf("%s\t%s\n", topic, payload);
}

static void dump_meter(const struct pl_mqtt_node *node, const struct pl_mqtt_meter *m,
		       unsigned index)
{
	static char topic[PL_MQTT_TOPIC_MAX * 2], payload[PL_MQTT_DISCOVERY_MAX];
	struct pl_interval_record r = {
		.start_us = INT64_C(1796652020) * PL_US_PER_S + (int64_t)index * 20 * PL_US_PER_S,
		.length_s = 20,
		.pulses = 5 + index,
		.rejected = index % 2,
		.flags = index % 2 ? PL_Q_REJECTED : 0,
		.energy_uwh = (int64_t)(5 + index) * 1000000000 / m->imp_per_kwh,
		.avg_mw = 812500,
		.peak_mw = 1100250,
		.register_uwh = INT64_C(1234567891234) + index,
	};
	struct pl_mqtt_mark mark = { .seq = 42 + index };
	struct pl_mqtt_diag d = {
		.detector_state = index % 2 ? "edges" : "tracking",
		.amplitude = index % 2 ? -1 : 812,
		.noise = index % 2 ? -1 : 3,
		.rejected_total = index,
		.backlog = 7,
		.updated_us = r.start_us + 20 * PL_US_PER_S + 250000,
	};
	int tn, pn;

	strcpy(mark.store, "s0123abcd");
	if (node->discovery_prefix != NULL && node->discovery_prefix[0] != '\0') {
		tn = pl_mqtt_discovery_topic(topic, sizeof topic, node, m);
		pn = pl_mqtt_discovery_json(payload, sizeof payload, node, m);
		emit(topic, tn, payload, pn, "discovery");
	}
	tn = pl_mqtt_topic(topic, sizeof topic, node, m->name, "state");
	pn = pl_mqtt_state_json(payload, sizeof payload, m, &r, &mark);
	emit(topic, tn, payload, pn, "state");
	tn = pl_mqtt_topic(topic, sizeof topic, node, m->name, "interval");
	pn = pl_mqtt_interval_json(payload, sizeof payload, m, &r, &mark);
	emit(topic, tn, payload, pn, "interval");
	tn = pl_mqtt_topic(topic, sizeof topic, node, m->name, "diag");
	pn = pl_mqtt_diag_json(payload, sizeof payload, &d);
	emit(topic, tn, payload, pn, "diag");
}

int main(int argc, char **argv)
{
	static char node_id[NAME_CAP], names[64][NAME_CAP];
	struct pl_mqtt_node node = {
		.topic_prefix = "powerlogger",
		.discovery_prefix = "homeassistant",
		.node_id = "powerlogger-test",
		.sw_version = "0.4.0",
		.model = "Linux daemon",
		.support_url = "https://example.org/powerlogger",
	};
	struct pl_mqtt_meter meters[64];
	size_t nmeters = 0;
	char topic[PL_MQTT_TOPIC_MAX];
	int i, tn;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (a[0] == '-' && a[1] == '-' && v == NULL) {
			fprintf(stderr, "mqttmsg_dump: %s needs a value\n", a);
			return 2;
		}
		if (strcmp(a, "--prefix") == 0) {
			node.topic_prefix = v;
		} else if (strcmp(a, "--discovery") == 0) {
			node.discovery_prefix = v;
		} else if (strcmp(a, "--node") == 0) {
			if (parse_name(v, node_id, sizeof node_id) == NULL) {
				fprintf(stderr, "mqttmsg_dump: bad --node %s\n", v);
				return 2;
			}
			node.node_id = node_id;
		} else if (strcmp(a, "--sw") == 0) {
			node.sw_version = v;
		} else if (strcmp(a, "--model") == 0) {
			node.model = v;
		} else if (strcmp(a, "--url") == 0) {
			node.support_url = v[0] != '\0' ? v : NULL;
		} else {
			const char *imp;

			if (nmeters == sizeof meters / sizeof meters[0] ||
			    (imp = parse_name(a, names[nmeters], NAME_CAP)) == NULL) {
				fprintf(stderr, "mqttmsg_dump: bad meter %s\n", a);
				return 2;
			}
			meters[nmeters].name = names[nmeters];
			meters[nmeters].imp_per_kwh = imp[0] != '\0' ?
				(uint32_t)strtoul(imp, NULL, 10) : 1000u;
			nmeters++;
			continue;
		}
		i++;
	}
	if (nmeters == 0) {
		fprintf(stderr, "usage: mqttmsg_dump [--prefix P] [--discovery D] [--node ID] "
			"[--sw V] [--model M] [--url U] METER...\n");
		return 2;
	}
	tn = pl_mqtt_topic(topic, sizeof topic, &node, NULL, "availability");
	emit(topic, tn, "online", 0, "availability");
	for (size_t k = 0; k < nmeters; k++)
		dump_meter(&node, &meters[k], (unsigned)k);
	return 0;
}
