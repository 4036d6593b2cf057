/* SPDX-License-Identifier: MIT */
/*
 * Each live source's configuration next to the source (src_iio.h, src_gpio.h, src_serial.h):
 * a meter of the configuration file turned into the source's own config (sources/live.c),
 * the keys each source checks itself, with their exact FILE:LINE texts (the ones config.c
 * wrote before the checks moved), the values of the keys that name a source's enum, and
 * pl_live_open_meter() opening the source that the ops name with the meter's keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "fakes/fake_gpio.h"
#include "fakes/fake_serial.h"
#include "powerlogger/common.h"
#include "sources/live.h"
#include "sources/live_config.h"

static char fifo_dir[64], fifo_path[96];

static int parse(const char *text, struct pl_config **cfg, struct pl_config_diags *d)
{
	memset(d, 0, sizeof(*d));
	return pl_config_parse_string("t.ini", text, cfg, d);
}

/* The diagnostics are exactly these lines, in this order. */
static void exactly(const struct pl_config_diags *d, const char *const *want, size_t n)
{
	for (size_t i = 0; i < d->n; i++)
		print_message("  got: %s\n", d->v[i].text);
	assert_int_equal(d->n, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(d->v[i].text, want[i]);
}

static void bad(const char *text, const char *const *want, size_t n)
{
	struct pl_config_diags d;
	struct pl_config *cfg = (struct pl_config *)1;

	assert_int_equal(parse(text, &cfg, &d), -PL_EINVAL);
	assert_null(cfg);
	exactly(&d, want, n);
	pl_config_diags_free(&d);
}

/* What each source requires, reported at the section's line in the order of before. */
static void test_required_keys_per_source(void **state)
{
	static const char *const iio[] = {
		"t.ini:1: [meter a]: missing key 'device' (the ADC, e.g. device = ads1015 (its "
		"name in /sys/bus/iio/devices))",
	};
	static const char *const gpio[] = {
		"t.ini:1: [meter g]: missing key 'device' (the GPIO chip, e.g. device = gpiochip0)",
		"t.ini:1: [meter g]: missing key 'line' (the line offset on the chip, e.g. line = "
		"17 for GPIO17 on a Raspberry Pi)",
	};
	static const char *const serial[] = {
		"t.ini:1: [meter s]: missing key 'device' (the serial port, e.g. device = "
		"/dev/ttyUSB0)",
	};

	(void)state;
	bad("[meter a]\nsource = iio\nimp_per_kwh = 1000\n", iio, 1);
	bad("[meter g]\nsource = gpio\nimp_per_kwh = 1000\n", gpio, 2);
	bad("[meter s]\nsource = serial\nimp_per_kwh = 1000\n", serial, 1);
}

/* A source's keys under another source, and the iio trigger outside buffer mode. */
static void test_keys_of_one_source_only(void **state)
{
	static const char *const want[] = {
		"t.ini:4: [meter a] trigger: applies to mode = buffer only",
		"t.ini:5: [meter a] pin: applies to source = serial only",
		"t.ini:10: [meter g] mode: applies to source = iio only",
		"t.ini:11: [meter g] pin: applies to source = serial only",
		"t.ini:16: [meter s] bias: applies to source = gpio only",
		"t.ini:17: [meter s] line: applies to source = gpio only",
	};

	(void)state;
	bad("[meter a]\nsource = iio\ndevice = ads1015\ntrigger = t0\npin = cts\n"
	    "imp_per_kwh = 1000\n"
	    "[meter g]\nsource = gpio\ndevice = gpiochip0\nmode = poll\npin = dcd\nline = 4\n"
	    "imp_per_kwh = 1000\n"
	    "[meter s]\nsource = serial\nbias = pull-up\nline = 3\ndevice = ttyS0\n"
	    "imp_per_kwh = 1000\n", want, 6);
}

/* The enum keys take the names the sources give, in their enums' order. */
static void test_enum_values_are_the_sources(void **state)
{
	static const char *const want[] = {
		"t.ini:4: [meter a] mode: 'fast' is not one of poll|buffer",
		("t.ini:9: [meter g] bias: 'pull-sideways' is not one of "
		 "as-is|pull-up|pull-down|disable"),
		"t.ini:15: [meter s] pin: 'rts' is not one of cts|dcd|dsr|ri",
	};

	(void)state;
	bad("[meter a]\nsource = iio\ndevice = ads1015\nmode = fast\nimp_per_kwh = 1000\n"
	    "[meter g]\nsource = gpio\ndevice = gpiochip0\nbias = pull-sideways\nline = 1\n"
	    "imp_per_kwh = 1000\n"
	    "[meter s]\nsource = serial\ndevice = ttyS0\npin = rts\nimp_per_kwh = 1000\n",
	    want, 3);
	assert_string_equal(pl_iio_mode_names[PL_IIO_BUFFER], "buffer");
	assert_string_equal(pl_gpio_bias_names[PL_GPIO_BIAS_DISABLE], "disable");
	assert_string_equal(pl_serial_pin_names[PL_SERIAL_PIN_RI], "ri");
}

/* A meter's keys become the source's own configuration, defaults included. */
static void test_meter_to_source_config(void **state)
{
	struct pl_config_diags d;
	struct pl_config *cfg;
	struct pl_iio_config iio;
	struct pl_gpio_config gpio;
	struct pl_serial_config serial;

	(void)state;
	assert_int_equal(parse("[meter a]\nsource = iio\ndevice = ads1115\nchannel = 3\n"
			       "mode = buffer\nrate = 860\ntrigger = t1\nimp_per_kwh = 800\n"
			       "[meter g]\nsource = gpio\ndevice = gpiochip1\nline = 17\n"
			       "bias = pull-down\ndev_root = /tmp/dev\nimp_per_kwh = 800\n"
			       "[meter s]\nsource = serial\ndevice = ttyUSB0\npin = dsr\n"
			       "imp_per_kwh = 800\n", &cfg, &d), 0);
	assert_int_equal(d.errors, 0);
	assert_int_equal(cfg->nmeters, 3);

	iio = pl_live_iio_config(&cfg->meters[0]);
	assert_string_equal(iio.name, "a");
	assert_string_equal(iio.device, "ads1115");
	assert_int_equal(iio.channel, 3);
	assert_int_equal(iio.mode, PL_IIO_BUFFER);
	assert_int_equal(iio.rate_hz, 860);
	assert_string_equal(iio.trigger, "t1");
	assert_string_equal(iio.sysfs_root, "/sys");
	assert_string_equal(iio.dev_root, "/dev");
	assert_int_equal(iio.presence_check_ns, 0); /* the source's default */

	gpio = pl_live_gpio_config(&cfg->meters[1]);
	assert_string_equal(gpio.name, "g");
	assert_string_equal(gpio.device, "gpiochip1");
	assert_int_equal(gpio.line, 17);
	assert_int_equal(gpio.bias, PL_GPIO_BIAS_PULL_DOWN);
	assert_string_equal(gpio.dev_root, "/tmp/dev");

	serial = pl_live_serial_config(&cfg->meters[2]);
	assert_string_equal(serial.name, "s");
	assert_string_equal(serial.device, "ttyUSB0");
	assert_int_equal(serial.pin, PL_SERIAL_PIN_DSR);
	assert_string_equal(serial.dev_root, "/dev");
	pl_config_free(cfg);
	pl_config_diags_free(&d);

	/* an iio meter without rate samples at 1000 Hz */
	assert_int_equal(parse("[meter a]\nsource = iio\ndevice = x\nimp_per_kwh = 1\n", &cfg, &d),
			 0);
	iio = pl_live_iio_config(&cfg->meters[0]);
	assert_int_equal(iio.rate_hz, 1000);
	assert_int_equal(iio.mode, PL_IIO_POLL);
	pl_config_free(cfg);
	pl_config_diags_free(&d);
}

/* The daemon's way in: the meter's keys reach the source that the ops name. */
static void test_open_meter(void **state)
{
	struct pl_gpio_fake gf;
	struct pl_serial_fake sf;
	struct pl_config_meter gm = { .name = "g", .source = PL_CONFIG_SOURCE_GPIO,
				      .device = "gpiochip2", .channel = 9,
				      .bias = PL_GPIO_BIAS_PULL_UP };
	struct pl_config_meter sm = { .name = "s", .source = PL_CONFIG_SOURCE_SERIAL,
				      .device = "ttyS1", .modem_line = PL_SERIAL_PIN_DCD };
	static const struct pl_live_ops other = { .name = "other" };
	char err[256] = "", want[128];
	void *s = NULL;

	(void)state;
	snprintf(fifo_dir, sizeof(fifo_dir), "/tmp/pl_live_config_XXXXXX");
	assert_non_null(mkdtemp(fifo_dir));
	snprintf(fifo_path, sizeof(fifo_path), "%s/fifo", fifo_dir);
	assert_int_equal(mkfifo(fifo_path, 0600), 0);
	gm.dev_root = fifo_dir;
	sm.dev_root = fifo_dir;
	gf = (struct pl_gpio_fake){ .fifo = fifo_path };
	pl_gpio_use_fake(&gf);
	assert_ptr_equal(pl_live_ops_for(gm.source), &pl_live_gpio);
	assert_int_equal(pl_live_open_meter(&pl_live_gpio, &s, &gm, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/gpiochip2", fifo_dir);
	assert_string_equal(gf.chip, want);
	assert_int_equal(gf.line, 9);
	assert_int_equal(gf.opens, 1);
	pl_live_gpio.close(s);
	assert_int_equal(gf.releases, 1);
	pl_gpio_use_fake(NULL);

	sf = (struct pl_serial_fake){ .fifo = fifo_path };
	pl_serial_use_fake(&sf);
	assert_ptr_equal(pl_live_ops_for(sm.source), &pl_live_serial);
	assert_int_equal(pl_live_open_meter(&pl_live_serial, &s, &sm, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/ttyS1", fifo_dir);
	assert_string_equal(sf.device, want);
	pl_live_serial.close(s);
	assert_int_equal(sf.opens, sf.closes);
	pl_serial_use_fake(NULL);

	/* ops that are none of the live sources cannot be opened from a meter's keys */
	s = (void *)1;
	assert_int_equal(pl_live_open_meter(&other, &s, &gm, err, sizeof(err)), -PL_EINVAL);
	assert_null(s);
	assert_string_equal(err, "meter g: source other is not opened from a meter's keys");
	assert_null(pl_live_ops_for(PL_CONFIG_SOURCE_SIM));
	assert_null(pl_live_ops_for(PL_CONFIG_SOURCE_FILE));
	assert_int_equal(unlink(fifo_path), 0);
	assert_int_equal(rmdir(fifo_dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_required_keys_per_source),
		cmocka_unit_test(test_keys_of_one_source_only),
		cmocka_unit_test(test_enum_values_are_the_sources),
		cmocka_unit_test(test_meter_to_source_config),
		cmocka_unit_test(test_open_meter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
