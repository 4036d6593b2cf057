/* SPDX-License-Identifier: MIT */
/*
 * The status LED's blink: on with each accepted pulse, off FW_LED_ON_US later. The sampling
 * task calls fw_led_update() after every batch of edges or ADC frame and sets the pin when it
 * says so; with no LED configured it never calls it (and has no state for it).
 *
 * Plain data; the sampling task owns it.
 */
#ifndef FW_LED_H
#define FW_LED_H

#include <stdint.h>

#define FW_LED_ON_US INT64_C(50000)

struct fw_led {
	int64_t off_at;   /* monotonic us when the LED goes off; 0 while it is off */
};

/* pulses: accepted pulses since the last call (0 for none). Returns 1 to switch the LED on,
 * 0 to switch it off, -1 to leave it as it is. */
int fw_led_update(struct fw_led *l, int pulses, int64_t now_us);

#endif
