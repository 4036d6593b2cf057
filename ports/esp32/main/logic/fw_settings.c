/* SPDX-License-Identifier: MIT */
/*
 * The firmware's run-time settings (fw_settings.h): the key table, validation, display and
 * the NVS blob. The URL and name checks are the ones the network task applies (fw_http,
 * fw_mqtt, the core's line protocol), so a value `set` takes is one the task can use.
 */
#include <stdio.h>
#include <string.h>

#include "fw_http.h"
#include "fw_mqtt.h"
#include "fw_ota.h"
#include "fw_settings.h"
#include "powerlogger/common.h"
#include "powerlogger/lineproto.h"

#define OFF(f) (uint16_t)offsetof(struct fw_settings, f)
#define SZ(f) (uint16_t)sizeof(((struct fw_settings *)0)->f)
#define STR(key, f, fl, lo, help) \
	{ key, FW_SET_T_STR, FW_SET_RESTART | (fl), OFF(f), SZ(f), lo, SZ(f) - 1u, help }
#define BOOL(key, f, help) { key, FW_SET_T_BOOL, FW_SET_RESTART, OFF(f), SZ(f), 0, 1, help }
#define UINT(key, f, lo, hi, help) \
	{ key, FW_SET_T_UINT, FW_SET_RESTART, OFF(f), SZ(f), lo, hi, help }

static const struct fw_set_desc keys[FW_SET_COUNT] = {
	[FW_SET_WIFI_SSID] = STR("wifi_ssid", wifi_ssid, 0, 1, "WiFi network name"),
	[FW_SET_WIFI_PASS] = STR("wifi_pass", wifi_pass, FW_SET_SECRET, 0,
				 "WiFi password (empty: an open network)"),
	[FW_SET_INFLUX_ENABLE] = BOOL("influx_enable", influx_enable, "deliver to InfluxDB"),
	[FW_SET_INFLUX_URL] = STR("influx_url", influx_url, 0, 8,
				  "InfluxDB server: http[s]://HOST[:PORT], no credentials"),
	[FW_SET_INFLUX_API] = UINT("influx_api", influx_api, 1, 3, "InfluxDB API version: 1, 2, 3"),
	[FW_SET_INFLUX_DB] = STR("influx_db", influx_db, 0, 0, "database (1.x, 3.x)"),
	[FW_SET_INFLUX_ORG] = STR("influx_org", influx_org, 0, 0, "organisation (2.x)"),
	[FW_SET_INFLUX_BUCKET] = STR("influx_bucket", influx_bucket, 0, 0, "bucket (2.x)"),
	[FW_SET_INFLUX_TOKEN] = STR("influx_token", influx_token, FW_SET_SECRET, 0,
				    "API token (2.x, 3.x; empty: none)"),
	[FW_SET_INFLUX_USER] = STR("influx_user", influx_user, 0, 0, "user (1.x; empty: none)"),
	[FW_SET_INFLUX_PASS] = STR("influx_pass", influx_pass, FW_SET_SECRET, 0, "password (1.x)"),
	[FW_SET_MQTT_ENABLE] = BOOL("mqtt_enable", mqtt_enable, "publish to an MQTT broker"),
	[FW_SET_MQTT_URI] = STR("mqtt_uri", mqtt_uri, 0, 8, "broker: mqtt[s]://HOST[:PORT]"),
	[FW_SET_MQTT_USER] = STR("mqtt_user", mqtt_user, 0, 0, "MQTT user name (empty: none)"),
	[FW_SET_MQTT_PASS] = STR("mqtt_pass", mqtt_pass, FW_SET_SECRET, 0, "MQTT password"),
	[FW_SET_MQTT_CLIENT_ID] = STR("mqtt_client_id", mqtt_client_id, 0, 0,
				      "client and node id (empty: powerlogger-<MAC>)"),
	[FW_SET_MQTT_PREFIX] = STR("mqtt_prefix", mqtt_prefix, 0, 1, "state topic prefix"),
	[FW_SET_MQTT_DISCOVERY] = STR("mqtt_discovery", mqtt_discovery, 0, 0,
				      "Home Assistant discovery prefix (empty: none)"),
	[FW_SET_DEVICE] = STR("device", device, 0, 1, "device name (InfluxDB tag, MQTT name)"),
	[FW_SET_IMP_PER_KWH] = UINT("imp_per_kwh", imp_per_kwh, 1, 1000000,
				    "meter constant, impulses per kWh"),
	[FW_SET_MAX_POWER_W] = UINT("max_power_w", max_power_w, 0, 1000000,
				    "supply's maximum power, W (faster pulses are rejected)"),
	[FW_SET_INTERVAL_S] = UINT("interval_s", interval_s, 1, 86400, "interval length, s"),
	[FW_SET_OTA_URL] = STR("ota_url", ota_url, 0, 0,
			       "update image URL, https:// (empty: no automatic checks)"),
};

_Static_assert(FW_SET_COUNT <= 32, "user_set has a bit per key");
_Static_assert(sizeof(((struct fw_settings *)0)->influx_api) == 1, "influx_api is a byte");

const struct fw_set_desc *fw_settings_desc(int k)
{
	return k >= 0 && k < FW_SET_COUNT ? &keys[k] : NULL;
}

int fw_settings_find(const char *name)
{
	for (int k = 0; name != NULL && k < FW_SET_COUNT; k++)
		if (strcmp(keys[k].name, name) == 0)
			return k;
	return -PL_ENOENT;
}

void fw_settings_init(struct fw_settings *s, const struct fw_settings *defaults)
{
	*s = *defaults;
	s->user_set = 0;
}

static void *field(struct fw_settings *s, int k)
{
	return (char *)s + keys[k].offset;
}

static const void *cfield(const struct fw_settings *s, int k)
{
	return (const char *)s + keys[k].offset;
}

static uint32_t get_uint(const struct fw_settings *s, int k)
{
	const uint8_t *p = cfield(s, k);
	uint32_t v;

	if (keys[k].size == 1)
		return *p;
	memcpy(&v, p, sizeof(v));
	return v;
}

static void put_uint(struct fw_settings *s, int k, uint32_t v)
{
	uint8_t *p = field(s, k);

	if (keys[k].size == 1)
		*p = (uint8_t)v;
	else
		memcpy(p, &v, sizeof(v));
}

static int fail(char *msg, size_t cap, int rc, const char *name, const char *why)
{
	if (msg != NULL && cap > 0)
		snprintf(msg, cap, "%s: %s", name, why);
	return rc;
}

static int has_control(const char *t)
{
	for (; *t != '\0'; t++)
		if ((unsigned char)*t < 0x20 || *t == 0x7f)
			return 1;
	return 0;
}

/* Characters that go into the write URL's query as they are. */
static int url_safe(const char *t)
{
	for (; *t != '\0'; t++)
		if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') ||
		      (*t >= '0' && *t <= '9') || *t == '.' || *t == '_' || *t == '-'))
			return 0;
	return 1;
}

static int all_hex(const char *t)
{
	for (; *t != '\0'; t++)
		if (!((*t >= '0' && *t <= '9') || (*t >= 'a' && *t <= 'f') ||
		      (*t >= 'A' && *t <= 'F')))
			return 0;
	return 1;
}

/* The key's own rules beyond length and control characters. NULL: fine; buf (cap bytes)
 * may hold the reason. */
static const char *rule(int k, const char *t, char *buf, size_t cap)
{
	char host[128];
	size_t n = strlen(t);

	switch (k) {
	case FW_SET_WIFI_PASS:
		if (n != 0 && (n < 8 || (n == 64 && !all_hex(t))))
			return "must be empty (open network), 8 to 63 characters, or 64 hex digits";
		return NULL;
	case FW_SET_INFLUX_URL:
		if (strncmp(t, "http://", 7) != 0 && strncmp(t, "https://", 8) != 0)
			return "must start with http:// or https://";
		if (strchr(t, ' ') != NULL)
			return "must not contain a space";
		if (fw_http_url_host(t, host, sizeof(host)) != 0)
			return "needs a host name (and no user:password@: use influx_user and "
			       "influx_pass or influx_token)";
		if (strpbrk(t + (t[4] == 's' ? 8 : 7), "?#") != NULL)
			return "scheme, host and port only: the path and query are the API's";
		if (t[n - 1] == '/')
			return "must not end with '/' (the API's path follows it)";
		return NULL;
	case FW_SET_INFLUX_DB:
	case FW_SET_INFLUX_ORG:
	case FW_SET_INFLUX_BUCKET:
		if (!url_safe(t))
			return "only letters, digits, '.', '_' and '-' (it goes into the URL as "
			       "is)";
		return NULL;
	case FW_SET_INFLUX_TOKEN:
		if (strchr(t, ' ') != NULL)
			return "must not contain a space";
		return NULL;
	case FW_SET_MQTT_URI:
		if (strncmp(t, "mqtt://", 7) != 0 && strncmp(t, "mqtts://", 8) != 0)
			return "must start with mqtt:// or mqtts://";
		if (fw_mqtt_uri_host(t, host, sizeof(host), NULL) != 0)
			return "must be mqtt://HOST[:PORT] or mqtts://HOST[:PORT], no "
			       "user:password@ (use mqtt_user and mqtt_pass)";
		return NULL;
	case FW_SET_MQTT_CLIENT_ID:
	case FW_SET_MQTT_PREFIX:
	case FW_SET_MQTT_DISCOVERY:
		if (strpbrk(t, "+# ") != NULL)
			return "must not contain '+', '#' or a space (MQTT topics)";
		if (k == FW_SET_MQTT_CLIENT_ID && strchr(t, '/') != NULL)
			return "must not contain '/' (it is one level of the topics)";
		if (n > 0 && (t[0] == '/' || t[n - 1] == '/'))
			return "must not start or end with '/'";
		return NULL;
	case FW_SET_DEVICE:
		return pl_lp_name_problem(t, PL_LP_TAG_VALUE);
	case FW_SET_OTA_URL:
		/* ota.c's own check; http:// too here: ota.c refuses it at use unless the build
		 * allows it (PL_OTA_ALLOW_HTTP, which the console checks when it is set) */
		if (n == 0 || fw_ota_check_url(t, 1, buf, cap) == 0)
			return NULL;
		return buf;
	default:
		return NULL;
	}
}

static int check_str(int k, const char *t, char *msg, size_t cap)
{
	const struct fw_set_desc *d = &keys[k];
	size_t n = strlen(t);
	const char *why;
	char buf[96];

	if (n < d->min || n > d->max) {
		if (d->min == 0)
			snprintf(buf, sizeof(buf), "must be at most %u bytes", (unsigned)d->max);
		else
			snprintf(buf, sizeof(buf), "must be %u to %u bytes", (unsigned)d->min,
				 (unsigned)d->max);
		return fail(msg, cap, -PL_EINVAL, d->name, buf);
	}
	if (has_control(t))
		return fail(msg, cap, -PL_EINVAL, d->name, "must not contain control characters");
	why = rule(k, t, buf, sizeof(buf));
	if (why != NULL)
		return fail(msg, cap, -PL_EINVAL, d->name, why);
	return 0;
}

static int parse_bool(const char *t)
{
	static const char *const on[] = {"on", "yes", "true", "1"};
	static const char *const off[] = {"off", "no", "false", "0"};

	for (size_t i = 0; i < sizeof(on) / sizeof(on[0]); i++) {
		if (strcmp(t, on[i]) == 0)
			return 1;
		if (strcmp(t, off[i]) == 0)
			return 0;
	}
	return -1;
}

/* Decimal digits only, no sign, no spaces; -1 for anything else or beyond 2^32-1. */
static int64_t parse_uint(const char *t)
{
	int64_t v = 0;

	if (*t == '\0')
		return -1;
	for (; *t != '\0'; t++) {
		if (*t < '0' || *t > '9')
			return -1;
		v = v * 10 + (*t - '0');
		if (v > UINT32_MAX)
			return -1;
	}
	return v;
}

int fw_settings_set(struct fw_settings *s, int k, const char *text, char *msg, size_t cap)
{
	const struct fw_set_desc *d = fw_settings_desc(k);
	char why[64];
	int64_t v;
	int rc;

	if (d == NULL || s == NULL || text == NULL)
		return fail(msg, cap, -PL_EINVAL, d != NULL ? d->name : "set", "no such key");
	switch (d->type) {
	case FW_SET_T_STR:
		rc = check_str(k, text, msg, cap);
		if (rc < 0)
			return rc;
		memcpy(field(s, k), text, strlen(text) + 1);
		break;
	case FW_SET_T_BOOL:
		v = parse_bool(text);
		if (v < 0)
			return fail(msg, cap, -PL_EINVAL, d->name, "must be on or off");
		put_uint(s, k, (uint32_t)v);
		break;
	default:
		v = parse_uint(text);
		if (v < 0 || v < d->min || v > d->max) {
			snprintf(why, sizeof(why), "must be a whole number from %u to %u",
				 (unsigned)d->min, (unsigned)d->max);
			return fail(msg, cap, v < 0 ? -PL_EINVAL : -PL_ERANGE, d->name, why);
		}
		put_uint(s, k, (uint32_t)v);
		break;
	}
	s->user_set |= 1u << k;
	if (msg != NULL && cap > 0)
		msg[0] = '\0';
	return 0;
}

void fw_settings_unset(struct fw_settings *s, const struct fw_settings *defaults, int k)
{
	if (fw_settings_desc(k) == NULL)
		return;
	memcpy(field(s, k), cfield(defaults, k), keys[k].size);
	s->user_set &= ~(1u << k);
}

/* The value's text as stored and typed (a secret's too: for the blob only). */
static int raw_text(const struct fw_settings *s, int k, char *buf, size_t cap)
{
	switch (keys[k].type) {
	case FW_SET_T_STR:
		return snprintf(buf, cap, "%s", (const char *)cfield(s, k));
	case FW_SET_T_BOOL:
		return snprintf(buf, cap, "%s", get_uint(s, k) ? "on" : "off");
	default:
		return snprintf(buf, cap, "%lu", (unsigned long)get_uint(s, k));
	}
}

int fw_settings_format(const struct fw_settings *s, int k, char *buf, size_t cap)
{
	int n;

	if (buf == NULL || cap == 0)
		return 0;
	if (fw_settings_desc(k) == NULL)
		n = snprintf(buf, cap, "?");
	else if (keys[k].flags & FW_SET_SECRET)
		n = snprintf(buf, cap, "%s",
			     ((const char *)cfield(s, k))[0] != '\0' ? "(set)" : "(not set)");
	else
		n = raw_text(s, k, buf, cap);
	if (n < 0)
		n = 0;
	return (size_t)n < cap ? n : (int)cap - 1;
}

int fw_settings_check(const struct fw_settings *s, char *msg, size_t cap)
{
	for (int k = 0; k < FW_SET_COUNT; k++) {
		const struct fw_set_desc *d = &keys[k];
		const char *t = cfield(s, k);
		uint32_t v;

		if (d->type == FW_SET_T_STR) {
			if (memchr(t, '\0', d->size) == NULL)
				return fail(msg, cap, -PL_EINVAL, d->name, "not terminated");
			/* the ones a disabled sink uses may be anything */
			if ((k >= FW_SET_INFLUX_URL && k <= FW_SET_INFLUX_PASS &&
			     !s->influx_enable) ||
			    (k >= FW_SET_MQTT_URI && k <= FW_SET_MQTT_DISCOVERY && !s->mqtt_enable))
				continue;
			if (check_str(k, t, msg, cap) < 0)
				return -PL_EINVAL;
		} else {
			v = get_uint(s, k);
			if (v < d->min || v > d->max)
				return fail(msg, cap, -PL_EINVAL, d->name, "out of range");
		}
	}
	if (s->influx_enable && s->influx_api == 2 &&
	    (s->influx_org[0] == '\0' || s->influx_bucket[0] == '\0'))
		return fail(msg, cap, -PL_EINVAL, "influx_api",
			    "2 needs influx_org and influx_bucket");
	if (s->influx_enable && s->influx_api != 2 && s->influx_db[0] == '\0')
		return fail(msg, cap, -PL_EINVAL, "influx_api", "1 and 3 need influx_db");
	if (msg != NULL && cap > 0)
		msg[0] = '\0';
	return 0;
}

int fw_settings_save(const struct fw_settings *s, uint8_t *buf, size_t cap)
{
	size_t len = FW_SET_BLOB_HEADER;
	char val[FW_SET_VALUE_MAX], line[FW_SET_NAME_MAX + FW_SET_VALUE_MAX + 3];

	if (buf == NULL || cap < FW_SET_BLOB_HEADER)
		return -PL_ENOSPC;
	for (int k = 0; k < FW_SET_COUNT; k++) {
		int n;

		if (!(s->user_set & (1u << k)))
			continue;
		n = raw_text(s, k, val, sizeof(val));
		if (n < 0 || (size_t)n >= sizeof(val))
			return -PL_ENOSPC;
		n = snprintf(line, sizeof(line), "%s=%s\n", keys[k].name, val);
		if (n < 0 || (size_t)n >= sizeof(line) || (size_t)n > cap - len)
			return -PL_ENOSPC;
		memcpy(buf + len, line, (size_t)n); /* no NUL: the header has the length */
		len += (size_t)n;
	}
	if (len - FW_SET_BLOB_HEADER > 0xffff) /* the header's 16-bit length */
		return -PL_ENOSPC;
	memcpy(buf, FW_SET_BLOB_MAGIC, 4);
	buf[4] = FW_SET_BLOB_VERSION;
	buf[5] = 0;
	buf[6] = (uint8_t)((len - FW_SET_BLOB_HEADER) & 0xff);
	buf[7] = (uint8_t)((len - FW_SET_BLOB_HEADER) >> 8);
	return (int)len;
}

static void warnf(fw_settings_warn_fn warn, void *ctx, const char *msg)
{
	if (warn != NULL)
		warn(ctx, msg);
}

int fw_settings_load(struct fw_settings *s, const struct fw_settings *defaults,
		     const uint8_t *buf, size_t len, fw_settings_warn_fn warn, void *ctx)
{
	char line[FW_SET_NAME_MAX + 1 + FW_SET_VALUE_MAX + 1];
	char msg[FW_SET_MSG_MAX];
	size_t body, pos;
	int taken = 0;

	fw_settings_init(s, defaults);
	if (buf == NULL || len < FW_SET_BLOB_HEADER || memcmp(buf, FW_SET_BLOB_MAGIC, 4) != 0) {
		warnf(warn, ctx, "stored settings are not a settings blob: defaults used");
		return -PL_ECORRUPT;
	}
	if (buf[4] != FW_SET_BLOB_VERSION) {
		snprintf(msg, sizeof(msg), "stored settings have format %u, this firmware reads "
			 "%u: defaults used", buf[4], FW_SET_BLOB_VERSION);
		warnf(warn, ctx, msg);
		return -PL_ECORRUPT;
	}
	body = (size_t)buf[6] | (size_t)buf[7] << 8;
	if (body != len - FW_SET_BLOB_HEADER || (body > 0 && buf[len - 1] != '\n')) {
		warnf(warn, ctx, "stored settings are truncated: defaults used");
		return -PL_ECORRUPT;
	}
	for (pos = FW_SET_BLOB_HEADER; pos < len;) {
		const uint8_t *nl = memchr(buf + pos, '\n', len - pos);
		size_t n = (size_t)(nl - (buf + pos));
		char *eq;
		int k;

		if (n >= sizeof(line) || memchr(buf + pos, '\0', n) != NULL) {
			warnf(warn, ctx, "stored settings: a line that is no setting, ignored");
			pos += n + 1;
			continue;
		}
		memcpy(line, buf + pos, n);
		line[n] = '\0';
		pos += n + 1;
		eq = strchr(line, '=');
		if (eq == NULL) {
			warnf(warn, ctx, "stored settings: a line that is no setting, ignored");
			continue;
		}
		*eq = '\0';
		k = fw_settings_find(line);
		if (k < 0) {
			snprintf(msg, sizeof(msg), "stored setting \"%.*s\" is not known to this "
				 "firmware: ignored", FW_SET_NAME_MAX, line);
			warnf(warn, ctx, msg);
			continue;
		}
		if (fw_settings_set(s, k, eq + 1, msg, sizeof(msg)) != 0) {
			char w[FW_SET_MSG_MAX + 40];

			snprintf(w, sizeof(w), "stored %s; the default is used", msg);
			warnf(warn, ctx, w);
			continue;
		}
		taken++;
	}
	return taken;
}
