/* SPDX-License-Identifier: MIT */
/*
 * What the firmware keeps and sends: an interval record from the core's meter, and where its
 * time came from.
 *
 * Before SNTP has set the clock the device knows only its monotonic time (microseconds since
 * boot, esp_timer_get_time()). Intervals closed then are kept with that time (stamped = 0) and
 * the boot they belong to; once the offset between the two clocks is known for that boot
 * (fw_time.h), they are stamped with wall-clock time on their way out. Plain data without
 * padding (64 bytes): it goes into the ring and the flash log as it is.
 */
#ifndef FW_RECORD_H
#define FW_RECORD_H

#include <stdint.h>

#include "powerlogger/meter.h"

struct fw_record {
	struct pl_interval_record rec; /* rec.start_us: UTC us if stamped, else us since boot */
	uint32_t boot;                 /* boot counter of the boot that made it */
	uint8_t stamped;               /* 1: rec.start_us is wall-clock time */
	uint8_t reserved[3];           /* 0 */
};

#endif
