/* SPDX-License-Identifier: MIT */
/*
 * The status LED's blink (see fw_led.h).
 */
#include "fw_led.h"

int fw_led_update(struct fw_led *l, int pulses, int64_t now_us)
{
	if (pulses > 0) {
		l->off_at = now_us + FW_LED_ON_US;
		if (l->off_at == 0)
			l->off_at = 1; /* 0 means "off" */
		return 1;
	}
	if (l->off_at != 0 && now_us >= l->off_at) {
		l->off_at = 0;
		return 0;
	}
	return -1;
}
