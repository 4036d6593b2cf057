/* SPDX-License-Identifier: MIT */
/*
 * The status LED's blink (ports/esp32/main/logic/fw_led.c): on at a pulse, off 50 ms later,
 * a new pulse while on keeps it on for another 50 ms. (That sampling_task.c compiles with
 * and without an LED is tests/cli_fw_iram.sh.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fw_led.h"

static void test_blink(void **state)
{
	struct fw_led l = {0};

	(void)state;
	assert_int_equal(fw_led_update(&l, 0, 1000), -1);              /* off, stays off */
	assert_int_equal(fw_led_update(&l, 1, 2000), 1);               /* pulse: on */
	assert_int_equal(fw_led_update(&l, 0, 2000 + FW_LED_ON_US - 1), -1);
	assert_int_equal(fw_led_update(&l, 2, 30000), 1);              /* again: later off */
	assert_int_equal(fw_led_update(&l, 0, 2000 + FW_LED_ON_US), -1);
	assert_int_equal(fw_led_update(&l, 0, 30000 + FW_LED_ON_US), 0); /* off */
	assert_int_equal(fw_led_update(&l, 0, 30000 + 2 * FW_LED_ON_US), -1);
	/* a pulse at the time that would make off_at 0 still turns it off later */
	assert_int_equal(fw_led_update(&l, 1, -FW_LED_ON_US), 1);
	assert_int_equal(fw_led_update(&l, 0, 5), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blink),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
