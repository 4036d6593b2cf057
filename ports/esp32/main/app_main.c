/* SPDX-License-Identifier: MIT */
/*
 * PowerLogger firmware: boot, then two tasks. The sampling task (core 1) turns the sensor into
 * interval records; the network task (core 0) keeps them in the flash outbox and delivers them
 * to InfluxDB and MQTT. They share only two lock-free rings (fw_ring) and the detector's view
 * (a fw_seqpair), never a lock held across I/O.
 */
#include <stdio.h>

#include "esp_log.h"
#include "esp_system.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "nvs_flash.h"
#include "sdkconfig.h"

#include "fw_console_port.h"
#include "fw_port.h"
#include "fw_record.h"
#if CONFIG_IDF_TARGET_LINUX
#include "fw_linux.h"
#endif
#include "ota.h"

static const char *TAG = "powerlogger";

/* Sampling on the second core, the network on the first; one core (the linux target's
 * FreeRTOS): both there. */
#ifndef configNUMBER_OF_CORES
#define configNUMBER_OF_CORES portNUM_PROCESSORS /* before ESP-IDF 5.2 */
#endif
#if configNUMBER_OF_CORES > 1
#define SAMPLING_CORE 1
#else
#define SAMPLING_CORE 0
#endif

struct fw_ring g_records, g_timebase;
struct fw_seqpair g_view;
static struct fw_record records_store[64];          /* 64 intervals: 21 min at 20 s */
static struct fw_timebase_msg timebase_store[4];
static struct fw_store store;
static struct fw_time clock_state;
static struct fw_net_args net_args;
static struct fw_sampling_args sampling_args;

static const char *reset_name(esp_reset_reason_t r)
{
	switch (r) {
	case ESP_RST_POWERON: return "power-on";
	case ESP_RST_EXT: return "external pin";
	case ESP_RST_SW: return "software restart";
	case ESP_RST_PANIC: return "panic";
	case ESP_RST_INT_WDT: return "interrupt watchdog";
	case ESP_RST_TASK_WDT: return "task watchdog";
	case ESP_RST_WDT: return "other watchdog";
	case ESP_RST_DEEPSLEEP: return "deep sleep";
	case ESP_RST_BROWNOUT: return "brownout (power failing)";
	case ESP_RST_SDIO: return "SDIO";
	default: return "unknown";
	}
}

void app_main(void)
{
	esp_err_t err;
	TaskHandle_t sampling = NULL;
	struct fw_meter_state meter;
	uint32_t boot = 0;
	int rc;

#if CONFIG_IDF_TARGET_LINUX
	/* the emulated flash in a file that outlives the process, before its first use */
	if (fw_linux_flash_setup() != 0)
		esp_restart();
#endif
	err = nvs_flash_init();
	if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND) {
		ESP_ERROR_CHECK(nvs_flash_erase());
		err = nvs_flash_init();
	}
	ESP_ERROR_CHECK(err);
	if (fw_settings_boot() != 0) { /* NVS's settings, or Kconfig's: before the tasks */
		vTaskDelay(pdMS_TO_TICKS(10000));
		esp_restart();
	}
	ESP_LOGI(TAG, "last reset: %s (%d)", reset_name(esp_reset_reason()), (int)esp_reset_reason());

	rc = fw_store_flash_open(&store, &clock_state, &boot, &meter);
	if (rc < 0) {
		ESP_LOGE(TAG, "outbox: cannot open (%d); restarting in 10 s", rc);
		vTaskDelay(pdMS_TO_TICKS(10000));
		esp_restart();
	}
	ESP_LOGI(TAG, "PowerLogger firmware, boot %lu, %u record(s) waiting", (unsigned long)boot,
		 (unsigned)fw_store_count(&store));
	/* the running image's slot and state, the update URL (the setting ota_url) */
	fw_ota_boot(fw_settings_get()->ota_url);

	fw_ring_init(&g_records, records_store, 64, sizeof(records_store[0]));
	fw_ring_init(&g_timebase, timebase_store, 4, sizeof(timebase_store[0]));
	fw_seqpair_init(&g_view);

	sampling_args = (struct fw_sampling_args){.boot = boot, .meter = meter};
	xTaskCreatePinnedToCore(fw_sampling_task, "sampling", 6144, &sampling_args, 10, &sampling,
				SAMPLING_CORE);
	net_args = (struct fw_net_args){
		.store = &store, .time = &clock_state, .boot = boot, .sampling_task = sampling,
	};
	xTaskCreatePinnedToCore(fw_net_task, "network", 8192, &net_args, 5, NULL, 0);
	fw_console_start(boot); /* the serial console (console.c) */
}
