/* SPDX-License-Identifier: MIT */
/*
 * fw_settings and fw_console (ports/esp32/main/logic): the firmware's settings as the serial
 * console sets them and NVS keeps them, and the console's hand-over of a new energy register
 * to the sampling task. Parsing and limits of every kind of key; secrets never in any text
 * this module makes (display, messages for refused values, load warnings); the blob's round
 * trip, and blobs that are corrupt, of another format or from another firmware (unknown keys,
 * refused values); the register request taken by a real fw_sampling, whose next record
 * carries the new register.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "fw_console.h"
#include "fw_record.h"
#include "fw_ring.h"
#include "fw_sampling.h"
#include "fw_settings.h"
#include "powerlogger/common.h"

#define S INT64_C(1000000)

/* What the platform file fills from Kconfig (sdkconfig.defaults' values). */
static void defaults(struct fw_settings *d)
{
	memset(d, 0, sizeof(*d));
	strcpy(d->wifi_ssid, "myssid");
	d->influx_enable = 1;
	d->influx_api = 1;
	strcpy(d->influx_url, "http://192.168.1.10:8086");
	strcpy(d->influx_db, "energy");
	strcpy(d->influx_org, "home");
	strcpy(d->influx_bucket, "energy");
	strcpy(d->mqtt_uri, "mqtt://192.168.1.10:1883");
	strcpy(d->mqtt_prefix, "powerlogger");
	strcpy(d->mqtt_discovery, "homeassistant");
	strcpy(d->device, "esp32");
	d->imp_per_kwh = 1000;
	d->max_power_w = 17250;
	d->interval_s = 20;
}

static int key(const char *name)
{
	int k = fw_settings_find(name);

	assert_true(k >= 0);
	return k;
}

static void test_keys_fit_nvs_and_are_unique(void **state)
{
	(void)state;
	for (int k = 0; k < FW_SET_COUNT; k++) {
		const struct fw_set_desc *d = fw_settings_desc(k);

		assert_non_null(d);
		assert_true(strlen(d->name) <= FW_SET_NAME_MAX);
		assert_int_equal(fw_settings_find(d->name), k);
		assert_true(d->size <= FW_SET_VALUE_MAX);
		assert_non_null(d->help);
	}
	assert_null(fw_settings_desc(FW_SET_COUNT));
	assert_int_equal(fw_settings_find("wifi_password"), -PL_ENOENT);
	assert_true(fw_settings_desc(key("wifi_pass"))->flags & FW_SET_SECRET);
	assert_true(fw_settings_desc(key("influx_token"))->flags & FW_SET_SECRET);
	assert_true(fw_settings_desc(key("influx_pass"))->flags & FW_SET_SECRET);
	assert_true(fw_settings_desc(key("mqtt_pass"))->flags & FW_SET_SECRET);
	assert_false(fw_settings_desc(key("mqtt_user"))->flags & FW_SET_SECRET);
}

static void test_kconfig_defaults_pass_the_check(void **state)
{
	struct fw_settings d;
	char msg[FW_SET_MSG_MAX];

	(void)state;
	defaults(&d);
	assert_int_equal(fw_settings_check(&d, msg, sizeof(msg)), 0);
	d.influx_api = 2;
	d.influx_bucket[0] = '\0';
	assert_int_equal(fw_settings_check(&d, msg, sizeof(msg)), -PL_EINVAL);
	assert_string_equal(msg, "influx_api: 2 needs influx_org and influx_bucket");
	d.influx_api = 3;
	d.influx_db[0] = '\0';
	assert_int_equal(fw_settings_check(&d, msg, sizeof(msg)), -PL_EINVAL);
	assert_string_equal(msg, "influx_api: 1 and 3 need influx_db");
	d.influx_enable = 0; /* a disabled sink's settings are not its problem */
	strcpy(d.influx_url, "ftp://x");
	assert_int_equal(fw_settings_check(&d, msg, sizeof(msg)), 0);
	d.interval_s = 0; /* a default out of range (no Kconfig allows it, but be sure) */
	assert_int_equal(fw_settings_check(&d, msg, sizeof(msg)), -PL_EINVAL);
	assert_string_equal(msg, "interval_s: out of range");
}

static void test_parse_and_limits(void **state)
{
	struct fw_settings d, s;
	char msg[FW_SET_MSG_MAX];

	(void)state;
	defaults(&d);
	fw_settings_init(&s, &d);

	/* numbers: decimal digits only, in the key's range, a refusal leaves the value */
	assert_int_equal(fw_settings_set(&s, key("imp_per_kwh"), "10000", msg, sizeof(msg)), 0);
	assert_int_equal(s.imp_per_kwh, 10000);
	assert_int_equal(fw_settings_set(&s, key("imp_per_kwh"), "0", msg, sizeof(msg)),
			 -PL_ERANGE);
	assert_string_equal(msg, "imp_per_kwh: must be a whole number from 1 to 1000000");
	assert_int_equal(fw_settings_set(&s, key("interval_s"), "86401", msg, sizeof(msg)),
			 -PL_ERANGE);
	assert_int_equal(fw_settings_set(&s, key("interval_s"), "-5", msg, sizeof(msg)),
			 -PL_EINVAL);
	assert_int_equal(fw_settings_set(&s, key("interval_s"), "20s", msg, sizeof(msg)),
			 -PL_EINVAL);
	assert_int_equal(fw_settings_set(&s, key("interval_s"), "99999999999", msg,
					 sizeof(msg)), -PL_EINVAL);
	assert_int_equal(fw_settings_set(&s, key("interval_s"), "", msg, sizeof(msg)),
			 -PL_EINVAL);
	assert_int_equal(s.interval_s, 20);
	assert_int_equal(fw_settings_set(&s, key("max_power_w"), "0", msg, sizeof(msg)), 0);
	assert_int_equal(s.max_power_w, 0);
	assert_int_equal(fw_settings_set(&s, key("influx_api"), "3", msg, sizeof(msg)), 0);
	assert_int_equal(s.influx_api, 3);
	assert_int_equal(fw_settings_set(&s, key("influx_api"), "4", msg, sizeof(msg)),
			 -PL_ERANGE);
	assert_string_equal(msg, "influx_api: must be a whole number from 1 to 3");

	/* bools */
	assert_int_equal(fw_settings_set(&s, key("mqtt_enable"), "on", msg, sizeof(msg)), 0);
	assert_int_equal(s.mqtt_enable, 1);
	assert_int_equal(fw_settings_set(&s, key("influx_enable"), "no", msg, sizeof(msg)), 0);
	assert_int_equal(s.influx_enable, 0);
	assert_int_equal(fw_settings_set(&s, key("mqtt_enable"), "maybe", msg, sizeof(msg)),
			 -PL_EINVAL);
	assert_string_equal(msg, "mqtt_enable: must be on or off");
	assert_int_equal(s.mqtt_enable, 1);

	/* URLs: net.c's and mqtt.c's own checks */
	assert_int_equal(fw_settings_set(&s, key("influx_url"), "influx.lan:8086", msg,
					 sizeof(msg)), -PL_EINVAL);
	assert_string_equal(msg, "influx_url: must start with http:// or https://");
	assert_int_equal(fw_settings_set(&s, key("influx_url"), "https://u:p@influx.lan", msg,
					 sizeof(msg)), -PL_EINVAL);
	assert_non_null(strstr(msg, "influx_url: needs a host name"));
	assert_int_equal(fw_settings_set(&s, key("influx_url"), "http://influx.lan:8086/", msg,
					 sizeof(msg)), -PL_EINVAL);
	assert_int_equal(fw_settings_set(&s, key("influx_url"), "http://x/write?db=a", msg,
					 sizeof(msg)), -PL_EINVAL);
	assert_int_equal(fw_settings_set(&s, key("influx_url"), "https://[fd00::1]:8086", msg,
					 sizeof(msg)), 0);
	assert_string_equal(s.influx_url, "https://[fd00::1]:8086");
	assert_int_equal(fw_settings_set(&s, key("mqtt_uri"), "tcp://broker", msg, sizeof(msg)),
			 -PL_EINVAL);
	assert_string_equal(msg, "mqtt_uri: must start with mqtt:// or mqtts://");
	assert_int_equal(fw_settings_set(&s, key("mqtt_uri"), "mqtts://broker.lan:8883", msg,
					 sizeof(msg)), 0);

	/* names: the core's device name rules, URL-safe database names, topic levels */
	assert_int_equal(fw_settings_set(&s, key("device"), "", msg, sizeof(msg)), -PL_EINVAL);
	assert_int_equal(fw_settings_set(&s, key("device"), "kitchen\\", msg, sizeof(msg)),
			 -PL_EINVAL);
	assert_true(strncmp(msg, "device: ", 8) == 0);
	assert_int_equal(fw_settings_set(&s, key("device"), "Zähler Keller", msg, sizeof(msg)),
			 0);
	assert_int_equal(fw_settings_set(&s, key("influx_db"), "my db", msg, sizeof(msg)),
			 -PL_EINVAL);
	assert_int_equal(fw_settings_set(&s, key("influx_db"), "power_2026", msg, sizeof(msg)),
			 0);
	assert_int_equal(fw_settings_set(&s, key("mqtt_client_id"), "a/b", msg, sizeof(msg)),
			 -PL_EINVAL);
	assert_int_equal(fw_settings_set(&s, key("mqtt_prefix"), "home/#", msg, sizeof(msg)),
			 -PL_EINVAL);
	assert_int_equal(fw_settings_set(&s, key("mqtt_prefix"), "", msg, sizeof(msg)),
			 -PL_EINVAL);
	assert_int_equal(fw_settings_set(&s, key("mqtt_discovery"), "", msg, sizeof(msg)), 0);

	/* the update URL: fw_ota's own check (https, no credentials), empty for none */
	assert_int_equal(fw_settings_set(&s, key("ota_url"), "ftp://x/fw.bin", msg, sizeof(msg)),
			 -PL_EINVAL);
	assert_string_equal(msg, "ota_url: the URL must start with https://");
	assert_int_equal(fw_settings_set(&s, key("ota_url"), "https://u:pw@x/fw.bin", msg,
					 sizeof(msg)), -PL_EINVAL);
	assert_null(strstr(msg, "pw"));
	assert_int_equal(fw_settings_set(&s, key("ota_url"), "https://fw.lan/powerlogger.bin", msg,
					 sizeof(msg)), 0);
	assert_int_equal(fw_settings_set(&s, key("ota_url"), "", msg, sizeof(msg)), 0);

	/* lengths: the SSID's 32 bytes, a control character */
	assert_int_equal(fw_settings_set(&s, key("wifi_ssid"), "0123456789abcdef0123456789abcdef",
					 msg, sizeof(msg)), 0);
	assert_int_equal(fw_settings_set(&s, key("wifi_ssid"),
					 "0123456789abcdef0123456789abcdefX", msg, sizeof(msg)),
			 -PL_EINVAL);
	assert_string_equal(msg, "wifi_ssid: must be 1 to 32 bytes");
	assert_int_equal(fw_settings_set(&s, key("wifi_ssid"), "a\tb", msg, sizeof(msg)),
			 -PL_EINVAL);
	assert_string_equal(msg, "wifi_ssid: must not contain control characters");

	/* unset: back to the default, no longer the user's */
	assert_true(s.user_set & (1u << key("imp_per_kwh")));
	fw_settings_unset(&s, &d, key("imp_per_kwh"));
	assert_int_equal(s.imp_per_kwh, 1000);
	assert_false(s.user_set & (1u << key("imp_per_kwh")));
	fw_settings_unset(&s, &d, key("device"));
	assert_string_equal(s.device, "esp32");
}

/* The secrets' text appears in nothing this module writes: display, refusals, warnings. */
static const char *const secret = "Tr0ub4dor&3xyz"; /* 14 characters */
static char warned[4096];

static void collect(void *ctx, const char *msg)
{
	(void)ctx;
	strncat(warned, msg, sizeof(warned) - strlen(warned) - 2);
	strcat(warned, "\n");
}

static void test_secrets_never_shown(void **state)
{
	static const char *const secrets[] = {"wifi_pass", "influx_token", "influx_pass",
					      "mqtt_pass"};
	struct fw_settings d, s, l;
	char msg[FW_SET_MSG_MAX], out[FW_SET_VALUE_MAX], bad[80];
	uint8_t blob[FW_SET_BLOB_MAX];
	int n;

	(void)state;
	defaults(&d);
	fw_settings_init(&s, &d);
	for (size_t i = 0; i < 4; i++) {
		int k = key(secrets[i]);

		fw_settings_format(&s, k, out, sizeof(out));
		assert_string_equal(out, "(not set)");
		assert_int_equal(fw_settings_set(&s, k, secret, msg, sizeof(msg)), 0);
		fw_settings_format(&s, k, out, sizeof(out));
		assert_string_equal(out, "(set)");
		/* a refused value: the message names the key, never the value */
		snprintf(bad, sizeof(bad), "%s\x01", secret);
		assert_int_equal(fw_settings_set(&s, k, bad, msg, sizeof(msg)), -PL_EINVAL);
		assert_null(strstr(msg, secret));
		assert_true(strncmp(msg, secrets[i], strlen(secrets[i])) == 0);
	}
	/* a WiFi password too short: refused, not quoted */
	assert_int_equal(fw_settings_set(&s, key("wifi_pass"), "1234567", msg, sizeof(msg)),
			 -PL_EINVAL);
	assert_null(strstr(msg, "1234567"));
	/* a display cut to its buffer stays terminated */
	assert_int_equal(fw_settings_format(&d, key("influx_url"), out, 8), 7);
	assert_string_equal(out, "http://");
	/* no key's display holds it */
	for (int k = 0; k < FW_SET_COUNT; k++) {
		fw_settings_format(&s, k, out, sizeof(out));
		assert_null(strstr(out, secret));
	}
	/* the blob keeps it (NVS is the device's own), and loading it warns about nothing */
	n = fw_settings_save(&s, blob, sizeof(blob));
	assert_true(n > 0);
	warned[0] = '\0';
	assert_int_equal(fw_settings_load(&l, &d, blob, (size_t)n, collect, NULL), 4);
	assert_string_equal(l.mqtt_pass, secret);
	assert_string_equal(warned, "");
	/* a stored secret this firmware refuses: the warning has no trace of it */
	n = fw_settings_save(&s, blob, sizeof(blob));
	memcpy(memchr(blob, '&', (size_t)n), "\x02", 1); /* in the first secret: wifi_pass */
	warned[0] = '\0';
	assert_int_equal(fw_settings_load(&l, &d, blob, (size_t)n, collect, NULL), 3);
	assert_string_equal(l.wifi_pass, "");
	assert_non_null(strstr(warned, "stored wifi_pass: must not contain control characters; "
				       "the default is used"));
	assert_null(strstr(warned, "Tr0ub4dor"));
}

static void test_blob_round_trip(void **state)
{
	struct fw_settings d, s, l;
	char msg[FW_SET_MSG_MAX], longest[FW_SET_VALUE_MAX];
	uint8_t blob[FW_SET_BLOB_MAX];
	int n;

	(void)state;
	defaults(&d);
	fw_settings_init(&s, &d);
	/* nothing set: a header only, and loading it gives the defaults */
	n = fw_settings_save(&s, blob, sizeof(blob));
	assert_int_equal(n, FW_SET_BLOB_HEADER);
	assert_int_equal(fw_settings_load(&l, &d, blob, (size_t)n, NULL, NULL), 0);
	assert_memory_equal(&l, &s, sizeof(s));

	/* every key at its longest value fits FW_SET_BLOB_MAX */
	for (int k = 0; k < FW_SET_COUNT; k++) {
		const struct fw_set_desc *dk = fw_settings_desc(k);

		if (dk->type == FW_SET_T_STR && k != key("influx_url") && k != key("mqtt_uri") &&
		    k != key("wifi_pass") && k != key("ota_url")) {
			memset(longest, 'a', dk->max);
			longest[dk->max] = '\0';
		} else if (k == key("wifi_pass")) {
			strcpy(longest, "0123456789012345678901234567890123456789012345678901234567"
				       "89abcd");
		} else if (k == key("ota_url")) {
			memset(longest, 'o', dk->max);
			memcpy(longest, "https://o/", 10); /* a host and a file */
			longest[dk->max] = '\0';
		} else if (k == key("influx_url")) {
			memset(longest, 'h', dk->max);
			memcpy(longest, "https://", 8);
			longest[dk->max] = '\0';
		} else if (k == key("mqtt_uri")) {
			memset(longest, 'm', dk->max);
			memcpy(longest, "mqtts://", 8);
			longest[dk->max] = '\0';
		} else {
			snprintf(longest, sizeof(longest), "%lu", (unsigned long)dk->max);
		}
		assert_int_equal(fw_settings_set(&s, k, longest, msg, sizeof(msg)), 0);
	}
	n = fw_settings_save(&s, blob, sizeof(blob));
	assert_true(n > FW_SET_BLOB_HEADER);
	assert_int_equal(fw_settings_load(&l, &d, blob, (size_t)n, NULL, NULL), FW_SET_COUNT);
	assert_memory_equal(&l, &s, sizeof(s));
	assert_true(n <= FW_SET_BLOB_MAX);
	assert_int_equal(fw_settings_save(&s, blob, 200), -PL_ENOSPC);
	assert_int_equal(fw_settings_save(&s, blob, (size_t)n - 1), -PL_ENOSPC);
	assert_int_equal(fw_settings_save(&s, blob, (size_t)n), n);

	/* a key set to its default value is still the user's (a later default leaves it) */
	fw_settings_init(&s, &d);
	assert_int_equal(fw_settings_set(&s, key("interval_s"), "20", msg, sizeof(msg)), 0);
	n = fw_settings_save(&s, blob, sizeof(blob));
	d.interval_s = 60;
	assert_int_equal(fw_settings_load(&l, &d, blob, (size_t)n, NULL, NULL), 1);
	assert_int_equal(l.interval_s, 20);
	assert_int_equal(l.imp_per_kwh, 1000);
}

static size_t blob_of(uint8_t *buf, const char *body)
{
	size_t n = strlen(body);

	memcpy(buf, "plst\x01\x00", 6);
	buf[6] = (uint8_t)(n & 0xff);
	buf[7] = (uint8_t)(n >> 8);
	memcpy(buf + 8, body, n);
	return 8 + n;
}

static void test_corrupt_and_foreign_blobs(void **state)
{
	struct fw_settings d, l;
	uint8_t blob[FW_SET_BLOB_MAX];
	size_t n;

	(void)state;
	defaults(&d);

	/* another firmware's: an unknown key and a value this one refuses, each warned once,
	 * the rest taken */
	n = blob_of(blob, "wifi_ssid=home\nled_gpio=4\ninterval_s=0\nimp_per_kwh=800\n");
	warned[0] = '\0';
	assert_int_equal(fw_settings_load(&l, &d, blob, n, collect, NULL), 2);
	assert_string_equal(l.wifi_ssid, "home");
	assert_int_equal(l.imp_per_kwh, 800);
	assert_int_equal(l.interval_s, 20);
	assert_false(l.user_set & (1u << key("interval_s")));
	assert_string_equal(warned,
			    "stored setting \"led_gpio\" is not known to this firmware: ignored\n"
			    "stored interval_s: must be a whole number from 1 to 86400; the "
			    "default is used\n");

	/* a line without '=' and one with a NUL: skipped, the others taken */
	n = blob_of(blob, "garbage\ndevice=cellar\n");
	assert_int_equal(fw_settings_load(&l, &d, blob, n, NULL, NULL), 1);
	assert_string_equal(l.device, "cellar");
	n = blob_of(blob, "device=cel\0ar\nmqtt_enable=on\n");
	n = blob_of(blob, "device=cel_ar\nmqtt_enable=on\n");
	blob[8 + 10] = '\0';
	assert_int_equal(fw_settings_load(&l, &d, blob, n, NULL, NULL), 1);
	assert_string_equal(l.device, "esp32");
	assert_int_equal(l.mqtt_enable, 1);

	/* truncated (the length says more), a wrong magic, a newer format: all defaults */
	n = blob_of(blob, "wifi_ssid=home\ndevice=cellar\n");
	warned[0] = '\0';
	assert_int_equal(fw_settings_load(&l, &d, blob, n - 5, collect, NULL), -PL_ECORRUPT);
	assert_string_equal(l.wifi_ssid, "myssid");
	assert_string_equal(l.device, "esp32");
	assert_string_equal(warned, "stored settings are truncated: defaults used\n");
	blob[4] = 2;
	warned[0] = '\0';
	assert_int_equal(fw_settings_load(&l, &d, blob, n, collect, NULL), -PL_ECORRUPT);
	assert_string_equal(warned, "stored settings have format 2, this firmware reads 1: "
				    "defaults used\n");
	blob[4] = 1;
	blob[0] = 'X';
	assert_int_equal(fw_settings_load(&l, &d, blob, n, NULL, NULL), -PL_ECORRUPT);
	assert_int_equal(fw_settings_load(&l, &d, blob, 3, NULL, NULL), -PL_ECORRUPT);
	assert_int_equal(l.user_set, 0);
	assert_memory_equal(l.wifi_ssid, d.wifi_ssid, sizeof(d.wifi_ssid));
}

static void test_parse_kwh(void **state)
{
	int64_t u = -1;

	(void)state;
	assert_int_equal(fw_parse_kwh("12345.678", &u), 0);
	assert_true(u == INT64_C(12345678000000));
	assert_int_equal(fw_parse_kwh("0", &u), 0);
	assert_true(u == 0);
	assert_int_equal(fw_parse_kwh("7.000000001", &u), 0);
	assert_true(u == INT64_C(7000000001));
	assert_int_equal(fw_parse_kwh("1000000000", &u), 0);
	assert_int_equal(fw_parse_kwh("1000000000.5", &u), -PL_ERANGE);
	assert_int_equal(fw_parse_kwh("10000000000", &u), -PL_ERANGE);
	assert_int_equal(fw_parse_kwh("-1", &u), -PL_EINVAL);
	assert_int_equal(fw_parse_kwh("1,5", &u), -PL_EINVAL);
	assert_int_equal(fw_parse_kwh("1.", &u), -PL_EINVAL);
	assert_int_equal(fw_parse_kwh(".5", &u), -PL_EINVAL);
	assert_int_equal(fw_parse_kwh("1.0000000001", &u), -PL_EINVAL);
	assert_int_equal(fw_parse_kwh("", &u), -PL_EINVAL);
}

/* `register KWH`: the console posts, the sampling task takes it after a tick, the next record
 * carries the new register (and grows from it), the console gets the replaced value. */
static void test_register_request_hand_over(void **state)
{
	static struct fw_record ring_store[64];
	static struct fw_sampling smp;
	struct fw_sampling_config cfg;
	struct fw_regreq q;
	struct fw_ring ring;
	struct fw_record r;
	int64_t t = 0, old = -1, now = -1, replaced = -1, id, want;
	int64_t last_reg = -1, before = -1;

	(void)state;
	assert_int_equal(fw_ring_init(&ring, ring_store, 64, sizeof(ring_store[0])), 0);
	fw_sampling_config_default(&cfg);
	cfg.digital = 1;
	cfg.meter.interval_s = 10;
	cfg.edges.imp_per_kwh = 1000; /* 1 Wh a pulse */
	cfg.meter.imp_per_kwh = 1000;
	assert_int_equal(fw_sampling_init(&smp, &cfg, &ring, 1), 0);
	fw_regreq_init(&q);
	assert_int_equal(fw_sampling_set_register(&smp, INT64_C(5000000000)), 0); /* 5 kWh */
	assert_int_equal(fw_sampling_edge(&smp, 0, t), 0);

	/* nothing asked: nothing taken, nothing answered */
	assert_int_equal(fw_regreq_take(&q, &smp, &old, &now), 0);
	assert_int_equal(fw_regreq_result(&q, 1, &replaced), 0);

	for (int sec = 1; sec <= 40; sec++) {
		t = sec * S;
		fw_sampling_edge(&smp, 1, t);
		fw_sampling_edge(&smp, 0, t + 20000);
		fw_sampling_tick(&smp, t + 30000);
		if (sec == 15) {
			/* the meter shows 1234.5 kWh: lower than what we count (a reset to HA) */
			assert_int_equal(fw_parse_kwh("1234.5", &want), 0);
			id = fw_regreq_post(&q, want);
			assert_int_equal(id, 1);
			assert_int_equal(fw_regreq_result(&q, id, &replaced), 0);
			before = pl_meter_register(&smp.ch.meter);
			assert_true(before >= INT64_C(5000000000) + 13000000); /* 13..15 pulses */
			assert_int_equal(fw_regreq_take(&q, &smp, &old, &now), 1);
			assert_true(old == before);
			assert_true(now == want);
			assert_int_equal(fw_regreq_take(&q, &smp, &old, &now), 0); /* once */
			assert_int_equal(fw_regreq_result(&q, id, &replaced), 1);
			assert_true(replaced == old);
		}
	}
	fw_sampling_tick(&smp, 60 * S);
	while (fw_ring_pop(&ring, &r) == 0) {
		if (r.rec.start_us + (int64_t)r.rec.length_s * S <= 15 * S) {
			assert_true(r.rec.register_uwh <= INT64_C(5000000000) + 15000000);
		} else if (r.rec.start_us >= 20 * S) {
			/* after the request: from the meter's reading on, one Wh a pulse */
			assert_true(r.rec.register_uwh >= want);
			assert_true(r.rec.register_uwh < want + 40000000);
			assert_true(last_reg < 0 || r.rec.register_uwh ==
				    last_reg + r.rec.energy_uwh);
		} else {
			/* the interval it came in: ends on the new register */
			assert_true(r.rec.register_uwh >= want &&
				    r.rec.register_uwh < want + 10000000);
		}
		last_reg = r.rec.register_uwh;
	}
	/* pulses 16..40, all counted by now, on top of the meter's reading */
	assert_true(last_reg == pl_meter_register(&smp.ch.meter));
	assert_true(last_reg >= want + INT64_C(24000000) && last_reg <= want + INT64_C(26000000));
	assert_int_equal(fw_regreq_post(&q, -1), -PL_EINVAL);
}

static void test_status_view(void **state)
{
	struct fw_status st;
	struct fw_status_view v;

	(void)state;
	fw_status_init(&st);
	fw_status_read(&st, &v);
	assert_int_equal(v.have_error, 0);
	assert_int_equal(v.have_meter, 0);
	fw_status_net(&st, 1, 123456, UINT64_C(9876543210));
	fw_status_error(&st, 3, 2, 503, 42 * S);
	fw_status_meter(&st, INT64_C(1234567890123), -1);
	fw_status_read(&st, &v);
	assert_int_equal(v.wifi_up, 1);
	assert_int_equal(v.waiting, 123456);
	assert_true(v.delivered == UINT64_C(9876543210));
	assert_int_equal(v.have_error, 1);
	assert_int_equal(v.err_action, 3);
	assert_int_equal(v.err_transport, 2);
	assert_int_equal(v.err_status, 503);
	assert_true(v.err_at_us == 42 * S);
	assert_int_equal(v.have_meter, 1);
	assert_true(v.register_uwh == INT64_C(1234567890123));
	assert_true(v.power_mw == -1);
	fw_status_net(&st, 0, UINT32_MAX, 0);
	fw_status_read(&st, &v);
	assert_int_equal(v.wifi_up, 0);
	assert_true(v.waiting == UINT32_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys_fit_nvs_and_are_unique),
		cmocka_unit_test(test_kconfig_defaults_pass_the_check),
		cmocka_unit_test(test_parse_and_limits),
		cmocka_unit_test(test_secrets_never_shown),
		cmocka_unit_test(test_blob_round_trip),
		cmocka_unit_test(test_corrupt_and_foreign_blobs),
		cmocka_unit_test(test_parse_kwh),
		cmocka_unit_test(test_register_request_hand_over),
		cmocka_unit_test(test_status_view),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
