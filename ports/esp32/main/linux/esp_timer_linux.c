/* SPDX-License-Identifier: MIT */
/*
 * esp_timer_get_time() for the linux target, where ESP-IDF's esp_timer is headers only: the
 * host's monotonic clock, counted from the start of the process as the device counts from its
 * boot (the firmware's records before a clock sync, and its time anchors, depend on that).
 */
#include <stdint.h>
#include <time.h>

#include "esp_timer.h"

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t boot_us;

__attribute__((constructor)) static void boot_now(void)
{
	boot_us = mono_us();
}

int64_t esp_timer_get_time(void)
{
	return mono_us() - boot_us;
}
