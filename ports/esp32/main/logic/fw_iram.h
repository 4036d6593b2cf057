/* SPDX-License-Identifier: MIT */
/*
 * FW_IRAM: code that runs while the flash cache may be off.
 *
 * A flash write or erase (the outbox, NVS) turns the caches of both cores off for its
 * duration - up to ~45 ms for a sector erase. An interrupt handler, and everything it calls,
 * must then be in internal RAM (IRAM) and touch only data in internal RAM (DRAM: no const
 * tables, which the compiler puts in flash), or the interrupt waits for the cache to come
 * back, and both edges of a short LED flash fall into one wait: a lost pulse.
 *
 * On the device FW_IRAM is ESP-IDF's IRAM_ATTR (a section ".iram1.<n>" that the linker puts
 * in IRAM). On the host it is a section of the same name, so that tests/cli_fw_iram.sh can
 * check in the host objects that such functions are placed there and call nothing outside.
 * noinline: an inlined copy would land in the caller's section.
 */
#ifndef FW_IRAM_H
#define FW_IRAM_H

#ifdef ESP_PLATFORM
#include "esp_attr.h"
#define FW_IRAM IRAM_ATTR
#else
#define FW_IRAM __attribute__((section(".iram1.fw"), noinline))
#endif

#endif
