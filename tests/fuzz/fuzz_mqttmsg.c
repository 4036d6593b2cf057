/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the MQTT payload builder (powerlogger/mqttmsg.h) with arbitrary names,
 * records and marks, and arbitrary bytes into pl_mqtt_parse_mark. It must never crash or
 * overrun; every payload it writes is as long as it says, holds no raw control byte (JSON
 * strings escape them) and has balanced braces outside strings; a state's mark reads back as
 * the mark given; a topic holds no MQTT wildcard and an id only [A-Za-z0-9_-].
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "powerlogger/mqttmsg.h"

static void die(const char *what, const char *buf)
{
	fprintf(stderr, "fuzz_mqttmsg: %s: %s\n", what, buf);
	abort();
}

/* Length as returned, no control bytes, braces balanced outside strings. */
static void check_json(const char *buf, int n)
{
	int depth = 0, in_str = 0;

	if (n < 0)
		return;
	if ((size_t)n != strlen(buf))
		die("length", buf);
	for (int i = 0; i < n; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (c < 0x20)
			die("raw control byte", buf);
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
		} else if (c == '"') {
			in_str = 1;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (--depth < 0)
				die("unbalanced", buf);
		}
	}
	if (depth != 0 || in_str)
		die("unterminated", buf);
}

static size_t take(const uint8_t **d, size_t *n, void *out, size_t want)
{
	size_t k = want < *n ? want : *n;

	memset(out, 0, want);
	memcpy(out, *d, k);
	*d += k;
	*n -= k;
	return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char buf[PL_MQTT_DISCOVERY_MAX];
	char name[PL_MQTT_NAME_MAX + 1], node[PL_MQTT_NAME_MAX + 1];
	struct pl_interval_record r;
	struct pl_mqtt_mark mark, back;
	uint8_t lens[3];
	uint32_t imp;
	int n;

	/* Whatever the bytes are, as a state payload: read, never overrun (exact-size copy). */
	char *raw = malloc(size ? size : 1);
	memcpy(raw, data, size);
	(void)pl_mqtt_parse_mark(raw, size, &back);
	free(raw);

	take(&data, &size, lens, sizeof(lens));
	take(&data, &size, name, lens[0] % (PL_MQTT_NAME_MAX + 1));
	take(&data, &size, node, lens[1] % (PL_MQTT_NAME_MAX + 1));
	name[lens[0] % (PL_MQTT_NAME_MAX + 1)] = '\0';
	node[lens[1] % (PL_MQTT_NAME_MAX + 1)] = '\0';
	take(&data, &size, &imp, sizeof(imp));
	take(&data, &size, &r, sizeof(r));
	memset(&mark, 0, sizeof(mark));
	take(&data, &size, &mark.seq, sizeof(mark.seq));
	size_t sl = lens[2] % (PL_MQTT_STORE_ID_MAX + 1);
	for (size_t i = 0; i < sl; i++)
		mark.store[i] = "abcXYZ019_-"[(i * 7 + lens[2]) % 11];
	mark.store[sl] = '\0';

	struct pl_mqtt_meter m = { .name = name, .imp_per_kwh = imp ? imp : 1 };
	struct pl_mqtt_node nd = { .topic_prefix = "powerlogger", .discovery_prefix = "homeassistant",
				   .node_id = node[0] ? node : "n", .sw_version = "0",
				   .model = "fuzz", .support_url = NULL };

	n = pl_mqtt_state_json(buf, sizeof(buf), &m, &r, sl ? &mark : NULL);
	check_json(buf, n);
	if (n >= 0 && sl) {
		if (pl_mqtt_parse_mark(buf, (size_t)n, &back) != 0 || back.seq != mark.seq ||
		    strcmp(back.store, mark.store) != 0)
			die("mark does not read back", buf);
	}
	check_json(buf, pl_mqtt_interval_json(buf, sizeof(buf), &m, &r, sl ? &mark : NULL));
	n = pl_mqtt_discovery_json(buf, sizeof(buf), &nd, &m);
	check_json(buf, n);
	n = pl_mqtt_topic(buf, sizeof(buf), &nd, name, "state");
	if (n >= 0 && (strpbrk(buf, "+#") != NULL || (size_t)n != strlen(buf)))
		die("topic", buf);
	n = pl_mqtt_id(buf, sizeof(buf), name);
	if (n >= 0 && strspn(buf, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
			      (size_t)n)
		die("id", buf);
	return 0;
}
