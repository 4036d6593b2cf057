/* SPDX-License-Identifier: MIT */
/*
 * The run-time settings in NVS (logic/fw_settings.h): namespace "plset", one blob under the key
 * "settings". One blob rather than one NVS key per setting: nvs_set_blob() + nvs_commit()
 * replaces it as a whole, so a power cut during a save leaves the old set or the new one,
 * never a mix (a new WiFi SSID with the old password); the blob carries its own format version
 * and holds only the keys the user set, as text that the same validation as the console's
 * `set` reads back - a key another firmware wrote (after an OTA update or its rollback) is
 * ignored, a value this one refuses falls back to the Kconfig default, each with a warning.
 * NVS stores the secrets in plain text unless NVS encryption is on (CONFIG_NVS_ENCRYPTION):
 * like the Kconfig values they replace, which sit in the app image in plain text.
 *
 * The Kconfig values are the defaults (a key the user never set follows a changed default
 * after an update). Options Kconfig hides (the InfluxDB ones with InfluxDB off, the database
 * with API 2.x) have no value: "" here, which fw_settings_check() reports once such a sink is
 * switched on without them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esp_err.h"
#include "esp_log.h"
#include "nvs.h"
#include "sdkconfig.h"

#include "fw_console_port.h"
#include "powerlogger/common.h"

static const char *TAG = "settings";

#define NAMESPACE "plset"
#define BLOB_KEY "settings"

/* ---- the defaults: Kconfig's values, in flash ---- */
#ifdef CONFIG_PL_INFLUX_ENABLE
#define INFLUX_ENABLE 1
#else
#define INFLUX_ENABLE 0
#endif
#ifdef CONFIG_PL_MQTT_ENABLE
#define MQTT_ENABLE 1
#else
#define MQTT_ENABLE 0
#endif
#if defined(CONFIG_PL_INFLUX_API_V3)
#define INFLUX_API 3
#elif defined(CONFIG_PL_INFLUX_API_V2)
#define INFLUX_API 2
#else
#define INFLUX_API 1
#endif
#ifndef CONFIG_PL_INFLUX_URL
#define CONFIG_PL_INFLUX_URL ""
#endif
#ifndef CONFIG_PL_INFLUX_DB
#define CONFIG_PL_INFLUX_DB ""
#endif
#ifndef CONFIG_PL_INFLUX_ORG
#define CONFIG_PL_INFLUX_ORG ""
#endif
#ifndef CONFIG_PL_INFLUX_BUCKET
#define CONFIG_PL_INFLUX_BUCKET ""
#endif
#ifndef CONFIG_PL_INFLUX_TOKEN
#define CONFIG_PL_INFLUX_TOKEN ""
#endif
#ifndef CONFIG_PL_INFLUX_USER
#define CONFIG_PL_INFLUX_USER ""
#endif
#ifndef CONFIG_PL_INFLUX_PASSWORD
#define CONFIG_PL_INFLUX_PASSWORD ""
#endif
#ifndef CONFIG_PL_MQTT_URI
#define CONFIG_PL_MQTT_URI ""
#define CONFIG_PL_MQTT_USERNAME ""
#define CONFIG_PL_MQTT_PASSWORD ""
#define CONFIG_PL_MQTT_CLIENT_ID ""
#define CONFIG_PL_MQTT_TOPIC_PREFIX "powerlogger"
#define CONFIG_PL_MQTT_DISCOVERY_PREFIX "homeassistant"
#endif

#ifndef CONFIG_PL_OTA_URL
#define CONFIG_PL_OTA_URL ""
#endif

/* A Kconfig string longer than its setting would be cut: refuse it when building. */
#define FITS(opt, f) _Static_assert(sizeof(opt) <= sizeof(((struct fw_settings *)0)->f), \
				    #opt " is longer than the setting " #f " takes")
FITS(CONFIG_PL_WIFI_SSID, wifi_ssid);
FITS(CONFIG_PL_WIFI_PASSWORD, wifi_pass);
FITS(CONFIG_PL_INFLUX_URL, influx_url);
FITS(CONFIG_PL_INFLUX_DB, influx_db);
FITS(CONFIG_PL_INFLUX_ORG, influx_org);
FITS(CONFIG_PL_INFLUX_BUCKET, influx_bucket);
FITS(CONFIG_PL_INFLUX_TOKEN, influx_token);
FITS(CONFIG_PL_INFLUX_USER, influx_user);
FITS(CONFIG_PL_INFLUX_PASSWORD, influx_pass);
FITS(CONFIG_PL_MQTT_URI, mqtt_uri);
FITS(CONFIG_PL_MQTT_USERNAME, mqtt_user);
FITS(CONFIG_PL_MQTT_PASSWORD, mqtt_pass);
FITS(CONFIG_PL_MQTT_CLIENT_ID, mqtt_client_id);
FITS(CONFIG_PL_MQTT_TOPIC_PREFIX, mqtt_prefix);
FITS(CONFIG_PL_MQTT_DISCOVERY_PREFIX, mqtt_discovery);
FITS(CONFIG_PL_DEVICE_NAME, device);
FITS(CONFIG_PL_OTA_URL, ota_url);

static const struct fw_settings kconfig_defaults = {
	.wifi_ssid = CONFIG_PL_WIFI_SSID,
	.wifi_pass = CONFIG_PL_WIFI_PASSWORD,
	.influx_enable = INFLUX_ENABLE,
	.influx_api = INFLUX_API,
	.influx_url = CONFIG_PL_INFLUX_URL,
	.influx_db = CONFIG_PL_INFLUX_DB,
	.influx_org = CONFIG_PL_INFLUX_ORG,
	.influx_bucket = CONFIG_PL_INFLUX_BUCKET,
	.influx_token = CONFIG_PL_INFLUX_TOKEN,
	.influx_user = CONFIG_PL_INFLUX_USER,
	.influx_pass = CONFIG_PL_INFLUX_PASSWORD,
	.mqtt_enable = MQTT_ENABLE,
	.mqtt_uri = CONFIG_PL_MQTT_URI,
	.mqtt_user = CONFIG_PL_MQTT_USERNAME,
	.mqtt_pass = CONFIG_PL_MQTT_PASSWORD,
	.mqtt_client_id = CONFIG_PL_MQTT_CLIENT_ID,
	.mqtt_prefix = CONFIG_PL_MQTT_TOPIC_PREFIX,
	.mqtt_discovery = CONFIG_PL_MQTT_DISCOVERY_PREFIX,
	.device = CONFIG_PL_DEVICE_NAME,
	.imp_per_kwh = CONFIG_PL_IMP_PER_KWH,
	.max_power_w = CONFIG_PL_MAX_POWER_W,
	.interval_s = CONFIG_PL_INTERVAL_S,
	.ota_url = CONFIG_PL_OTA_URL,
};

/* ---- the heap block ---- */
struct block {
	struct fw_settings active;      /* as loaded at boot: the tasks read it, nothing writes */
	struct fw_settings edit;        /* the console's; saved on every change */
	struct fw_regreq regreq;
	struct fw_status status;
};

static struct block *blk;

static void warn(void *ctx, const char *msg)
{
	(void)ctx;
	ESP_LOGW(TAG, "%s", msg);
}

int fw_settings_boot(void)
{
	nvs_handle_t h;
	size_t len = 0;
	uint8_t *buf = NULL;
	char msg[FW_SET_MSG_MAX];
	esp_err_t err;
	int n = 0;

	blk = calloc(1, sizeof(*blk));
	if (blk == NULL) {
		ESP_LOGE(TAG, "no memory for the settings (%u B)", (unsigned)sizeof(*blk));
		return -PL_ENOMEM;
	}
	fw_regreq_init(&blk->regreq);
	fw_status_init(&blk->status);
	fw_settings_init(&blk->active, &kconfig_defaults);
	err = nvs_open(NAMESPACE, NVS_READONLY, &h);
	if (err == ESP_OK) {
		err = nvs_get_blob(h, BLOB_KEY, NULL, &len);
		if (err == ESP_OK && len > 0 && len <= FW_SET_BLOB_MAX) {
			buf = malloc(len);
			if (buf != NULL)
				err = nvs_get_blob(h, BLOB_KEY, buf, &len);
			else
				err = ESP_ERR_NO_MEM;
		} else if (err == ESP_OK) {
			err = ESP_ERR_NVS_INVALID_LENGTH;
		}
		nvs_close(h);
	}
	if (err == ESP_OK) {
		n = fw_settings_load(&blk->active, &kconfig_defaults, buf, len, warn, NULL);
		if (n >= 0)
			ESP_LOGI(TAG, "%d setting(s) from NVS, the rest from Kconfig", n);
	} else if (err == ESP_ERR_NVS_NOT_FOUND) {
		ESP_LOGI(TAG, "no settings stored: the Kconfig values (the console's `set` "
			 "changes them)");
	} else {
		ESP_LOGW(TAG, "cannot read the stored settings (%s): the Kconfig values",
			 esp_err_to_name(err));
	}
	free(buf);
	blk->edit = blk->active;
	if (fw_settings_check(&blk->active, msg, sizeof(msg)) != 0)
		ESP_LOGE(TAG, "%s: fix it with the console's `set`", msg);
	return 0;
}

const struct fw_settings *fw_settings_get(void)
{
	return &blk->active;
}

const struct fw_settings *fw_settings_defaults(void)
{
	return &kconfig_defaults;
}

struct fw_settings *fw_settings_edit(void)
{
	return &blk->edit;
}

struct fw_regreq *fw_console_regreq(void)
{
	return &blk->regreq;
}

struct fw_status *fw_console_status(void)
{
	return &blk->status;
}

static int nvs_fail(char *msg, size_t cap, const char *what, esp_err_t err)
{
	snprintf(msg, cap, "%s: %s", what, esp_err_to_name(err));
	ESP_LOGE(TAG, "%s", msg);
	return -PL_EIO;
}

int fw_settings_store(char *msg, size_t cap)
{
	uint8_t *buf = malloc(FW_SET_BLOB_MAX);
	nvs_handle_t h;
	esp_err_t err;
	int n;

	if (buf == NULL)
		return nvs_fail(msg, cap, "no memory to save the settings", ESP_ERR_NO_MEM);
	n = fw_settings_save(&blk->edit, buf, FW_SET_BLOB_MAX);
	if (n < 0) {
		free(buf);
		return nvs_fail(msg, cap, "the settings do not fit", ESP_ERR_INVALID_SIZE);
	}
	err = nvs_open(NAMESPACE, NVS_READWRITE, &h);
	if (err != ESP_OK) {
		free(buf);
		return nvs_fail(msg, cap, "cannot open NVS", err);
	}
	err = nvs_set_blob(h, BLOB_KEY, buf, (size_t)n);
	if (err == ESP_OK)
		err = nvs_commit(h);
	nvs_close(h);
	free(buf);
	if (err != ESP_OK)
		return nvs_fail(msg, cap, "cannot save the settings", err);
	return 0;
}

int fw_settings_factory_reset(char *msg, size_t cap)
{
	nvs_handle_t h;
	esp_err_t err = nvs_open(NAMESPACE, NVS_READWRITE, &h);

	if (err != ESP_OK)
		return nvs_fail(msg, cap, "cannot open NVS", err);
	err = nvs_erase_key(h, BLOB_KEY);
	if (err == ESP_OK || err == ESP_ERR_NVS_NOT_FOUND)
		err = nvs_commit(h);
	nvs_close(h);
	if (err != ESP_OK)
		return nvs_fail(msg, cap, "cannot erase the settings", err);
	fw_settings_init(&blk->edit, &kconfig_defaults);
	ESP_LOGW(TAG, "settings erased: the Kconfig values from the next restart on");
	return 0;
}
