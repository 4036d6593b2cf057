/* SPDX-License-Identifier: MIT */
/*
 * The linux target only (this directory is on the include path for CONFIG_IDF_TARGET_LINUX
 * alone): ESP-IDF has no task watchdog there, so the network task's calls to it do nothing.
 * The watchdog's deadlines still shape the code that runs there (fw_http's steps), so the
 * linux app exercises the same request path as the device.
 */
#ifndef PL_LINUX_ESP_TASK_WDT_H
#define PL_LINUX_ESP_TASK_WDT_H

#include "esp_err.h"

static inline esp_err_t esp_task_wdt_add(void *task)
{
	(void)task;
	return ESP_OK;
}

static inline esp_err_t esp_task_wdt_reset(void)
{
	return ESP_OK;
}

#endif
