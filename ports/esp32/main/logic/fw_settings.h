/* SPDX-License-Identifier: MIT */
/*
 * The firmware's run-time settings: what a user must be able to change without recompiling
 * (WiFi, InfluxDB, MQTT, the device name, the meter, the update URL), set from the serial console
 * (console.c) and kept in NVS (settings_nvs.c). The Kconfig values are the defaults: the
 * platform file fills a struct fw_settings from CONFIG_PL_* (this file never sees
 * sdkconfig.h), and a key the user has not set follows the default, also a default changed
 * by a later firmware. Input pins, the ADC rate and block, the LED polarity and the status LED
 * stay Kconfig-only: they are wiring, not settings, and a wrong one is not fixed from a
 * console that may then not be reached.
 *
 * Every key has a name (the console's, at most FW_SET_NAME_MAX bytes, which NVS would also
 * take as a key), a type, limits, and flags: FW_SET_SECRET (the WiFi password, the InfluxDB
 * token and password, the MQTT password) is never shown, only "(set)" or "(not set)", and no
 * message of this module ever quotes a value it refuses, so a secret's text cannot leak
 * through an error either; FW_SET_RESTART: the tasks read the value when they start, so a
 * change takes effect at the next restart (today every key: the network task builds its URL,
 * headers and MQTT client once, the sampling task its detector and meter).
 *
 * The stored form (fw_settings_save / _load) is a blob: a header with a magic, a format
 * version and the length, then "key=value\n" for each key the user has set, in the same text
 * the console takes. Loading runs each line through the same validation as `set`: a key this
 * firmware does not know (written by a newer one, or one removed) is ignored, a value it
 * refuses falls back to the default, each with a warning; a blob whose header is wrong
 * (another format, truncated) leaves every key at its default. One format for both ways keeps
 * a settings blob readable across an OTA update and its rollback.
 *
 * Not thread-safe: settings_nvs.c keeps the copy the tasks read at boot apart from the one the
 * console edits.
 */
#ifndef FW_SETTINGS_H
#define FW_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

#define FW_SET_NAME_MAX 15              /* a key's name, bytes (NVS's NVS_KEY_NAME_MAX_SIZE-1) */
#define FW_SET_MSG_MAX 128              /* a message from set/load, with its NUL */
#define FW_SET_VALUE_MAX 160            /* the longest value's text, with its NUL (the token) */
#define FW_SET_BLOB_MAGIC "plst"
#define FW_SET_BLOB_VERSION 1
#define FW_SET_BLOB_HEADER 8            /* magic 4, version 1, reserved 1, length 2 (LE) */
#define FW_SET_BLOB_MAX 2048            /* every key set to its longest value fits */

struct fw_settings {
	char wifi_ssid[33];             /* 1..32 bytes (802.11) */
	char wifi_pass[65];             /* "" (open), 8..63 characters or 64 hex digits */
	uint8_t influx_enable;
	uint8_t influx_api;             /* 1, 2 or 3 */
	char influx_url[128];           /* http:// or https://, host, port; no credentials */
	char influx_db[64];             /* 1.x and 3.x */
	char influx_org[64];            /* 2.x */
	char influx_bucket[64];         /* 2.x */
	char influx_token[FW_SET_VALUE_MAX]; /* 2.x, 3.x; "" for none */
	char influx_user[64];           /* 1.x; "" for none */
	char influx_pass[64];           /* 1.x */
	uint8_t mqtt_enable;
	char mqtt_uri[128];             /* mqtt:// or mqtts://HOST[:PORT] */
	char mqtt_user[64];             /* "" for none */
	char mqtt_pass[64];
	char mqtt_client_id[64];        /* "": powerlogger-<MAC> */
	char mqtt_prefix[64];
	char mqtt_discovery[64];        /* "": no Home Assistant discovery */
	char device[64];                /* the InfluxDB tag and MQTT name (pl_lp_name_problem) */
	uint32_t imp_per_kwh;           /* 1..1000000 */
	uint32_t max_power_w;           /* 0..1000000 (0: no limit) */
	uint32_t interval_s;            /* 1..86400 */
	char ota_url[FW_SET_VALUE_MAX]; /* "": no automatic update checks (fw_ota_check_url) */
	uint32_t user_set;              /* bit per key (enum fw_set_key): set by the user */
};

enum fw_set_key {
	FW_SET_WIFI_SSID, FW_SET_WIFI_PASS,
	FW_SET_INFLUX_ENABLE, FW_SET_INFLUX_URL, FW_SET_INFLUX_API, FW_SET_INFLUX_DB,
	FW_SET_INFLUX_ORG, FW_SET_INFLUX_BUCKET, FW_SET_INFLUX_TOKEN, FW_SET_INFLUX_USER,
	FW_SET_INFLUX_PASS,
	FW_SET_MQTT_ENABLE, FW_SET_MQTT_URI, FW_SET_MQTT_USER, FW_SET_MQTT_PASS,
	FW_SET_MQTT_CLIENT_ID, FW_SET_MQTT_PREFIX, FW_SET_MQTT_DISCOVERY,
	FW_SET_DEVICE, FW_SET_IMP_PER_KWH, FW_SET_MAX_POWER_W, FW_SET_INTERVAL_S,
	FW_SET_OTA_URL,
	FW_SET_COUNT
};

enum fw_set_type { FW_SET_T_STR, FW_SET_T_BOOL, FW_SET_T_UINT };

enum fw_set_flags {
	FW_SET_SECRET = 1u << 0,        /* never shown, never echoed */
	FW_SET_RESTART = 1u << 1,       /* takes effect at the next restart */
};

/* One key's description (a table in flash). */
struct fw_set_desc {
	const char *name;
	uint8_t type;                   /* enum fw_set_type */
	uint8_t flags;                  /* enum fw_set_flags */
	uint16_t offset;                /* in struct fw_settings */
	uint16_t size;                  /* strings: the array (length + 1); numbers: 4; bools 1 */
	uint32_t min, max;              /* numbers: the range; strings: the length in bytes */
	const char *help;               /* one line for `show`'s help and the README */
};

/* The description of key k (0..FW_SET_COUNT-1), NULL beyond. */
const struct fw_set_desc *fw_settings_desc(int k);

/* The key named name, or -PL_ENOENT. */
int fw_settings_find(const char *name);

/* s = defaults, nothing set by the user. */
void fw_settings_init(struct fw_settings *s, const struct fw_settings *defaults);

/*
 * Sets key k from text (as typed after `set KEY`), validated: on success 0 and the key counts
 * as set by the user; else -PL_EINVAL (or -PL_ERANGE for a number out of range), s unchanged,
 * and msg (FW_SET_MSG_MAX bytes, may be NULL) says why, starting with the key's name
 * ("influx_url: must start with http:// or https://"). The message never contains the value.
 */
int fw_settings_set(struct fw_settings *s, int k, const char *text, char *msg, size_t cap);

/* Key k back to its default (and no longer set by the user). */
void fw_settings_unset(struct fw_settings *s, const struct fw_settings *defaults, int k);

/*
 * Key k's value as text for display into buf (cap bytes, NUL-terminated, cut if it does not
 * fit): strings as they are, bools "on"/"off", numbers in decimal; a secret "(set)" or
 * "(not set)", never its text. Returns the length written.
 */
int fw_settings_format(const struct fw_settings *s, int k, char *buf, size_t cap);

/*
 * Checks the whole set as the tasks will use it (the defaults from Kconfig too): each value
 * against its key's rules, and the combinations (an InfluxDB 2.x without an org or bucket).
 * 0, or -PL_EINVAL for the first problem, said in msg.
 */
int fw_settings_check(const struct fw_settings *s, char *msg, size_t cap);

/* Writes the keys set by the user as a blob into buf (cap bytes). Returns its length, or
 * -PL_ENOSPC. */
int fw_settings_save(const struct fw_settings *s, uint8_t *buf, size_t cap);

/* A warning from fw_settings_load (one line, no value in it). */
typedef void (*fw_settings_warn_fn)(void *ctx, const char *msg);

/*
 * s = defaults, then every key of the blob (buf, len bytes) that is known and valid. Unknown
 * keys and refused values each give a warning (warn may be NULL) and leave the default.
 * Returns the number of keys taken, or -PL_ECORRUPT for a blob whose header or framing is
 * wrong (s is then the defaults; a warning says so).
 */
int fw_settings_load(struct fw_settings *s, const struct fw_settings *defaults,
		     const uint8_t *buf, size_t len, fw_settings_warn_fn warn, void *ctx);

#endif
