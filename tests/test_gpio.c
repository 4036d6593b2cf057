/* SPDX-License-Identifier: MIT */
/*
 * The GPIO edge source (src_gpio.c). CI has no GPIO hardware, so these tests fake the kernel
 * interface: a FAKE backend (tests/fakes/fake_gpio.h, installed through the source's backend
 * table in src_gpio.h) takes edge events from a FIFO that the test writes. One test also runs the real libgpiod path as far as it goes without hardware:
 * opening a chip that does not exist.
 */
#include <errno.h>
#include <fcntl.h>
#include <gpiod.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "config/config.h"
#include "fakes/fake_gpio.h"
#include "fakes/fifo_fake.h"
#include "sources/live.h"
#include "sources/src_gpio.h"
#include "testutil.h"

static struct pl_gpio_fake fake;

static int setup(void **state)
{
	(void)state;
	fifo_make("pl_gpio", "events");
	fake = (struct pl_gpio_fake){ .fifo = fifo_path };
	pl_gpio_use_fake(&fake);
	unsetenv("PL_FAKE_GPIO");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pl_gpio_use_fake(NULL);
	assert_int_equal(fake.opens, fake.releases); /* every open released */
	fifo_remove();
	return 0;
}

static struct pl_gpio_config meter(const char *device, uint32_t line)
{
	return (struct pl_gpio_config){ .name = "m", .device = device, .line = line,
					.dev_root = fifo_dir };
}

static void *open_ok(const struct pl_gpio_config *cfg)
{
	char err[256] = "";
	void *s = NULL;

	assert_int_equal(pl_live_gpio.open(&s, cfg, err, sizeof(err)), 0);
	assert_non_null(s);
	assert_true(pl_live_gpio.fd(s) >= 0);
	return s;
}

static int readn(void *s, struct pl_live_edge *e, size_t cap, struct pl_live_info *info)
{
	char err[256];

	return pl_live_gpio.read(s, e, cap, info, err, sizeof(err));
}

static void test_edges_carry_levels_and_wall_clock_times(void **state)
{
	struct pl_gpio_config cfg = meter("gpiochip0", 4);
	void *s;
	struct pl_live_edge e[8];
	struct pl_live_info info;
	int64_t mono, real, before, after;

	(void)state;
	mono = now_us(CLOCK_MONOTONIC);
	real = mono + tu_wall_minus_mono_us(); /* the wall clock at `mono` */
	fake.initial_level = 0;
	s = open_ok(&cfg);
	assert_int_equal(pl_live_gpio.level(s), 0);
	/* kernel stamps: monotonic ns, 30 ms and 20 ms ago */
	feed("%lld 1\n%lld 0\n", (long long)(mono - 30000) * 1000, (long long)(mono - 20000) * 1000);
	assert_int_equal(readn(s, e, 8, &info), 2);
	assert_int_equal(info.lost, 0);
	assert_int_equal(e[0].level, 1);
	assert_int_equal(e[1].level, 0);
	assert_true(llabs(e[0].t_us - (real - 30000)) < 1000);
	assert_true(llabs(e[1].t_us - (real - 20000)) < 1000);
	/* "now" is stamped when read: between the clock before the read and after it */
	feed("now 1\n");
	before = now_us(CLOCK_REALTIME);
	assert_int_equal(readn(s, e, 8, &info), 1);
	after = now_us(CLOCK_REALTIME);
	assert_int_equal(e[0].level, 1);
	assert_true(e[0].t_us >= before - 1000 && e[0].t_us <= after + 1000);
	assert_int_equal(pl_live_gpio.level(s), 1);
	pl_live_gpio.close(s);
}

/* Linux before 5.7 stamped line events with CLOCK_REALTIME: kept as they are. */
static void test_realtime_stamps_of_old_kernels_kept(void **state)
{
	struct pl_gpio_config cfg = meter("gpiochip0", 0);
	void *s = open_ok(&cfg);
	struct pl_live_edge e[2];
	struct pl_live_info info;
	int64_t real = now_us(CLOCK_REALTIME) - 5000;

	(void)state;
	feed("%lld 1\n", (long long)real * 1000);
	assert_int_equal(readn(s, e, 2, &info), 1);
	assert_int_equal(e[0].t_us, real);
	pl_live_gpio.close(s);
}

static void test_nothing_available_reads_zero(void **state)
{
	struct pl_gpio_config cfg = meter("gpiochip0", 0);
	void *s = open_ok(&cfg);
	struct pl_live_edge e[4];
	struct pl_live_info info = { .lost = 99 };

	(void)state;
	assert_int_equal(readn(s, e, 4, &info), 0);
	assert_int_equal(info.lost, 0);
	/* a partial line is kept for the next read */
	feed("%lld", (long long)now_us(CLOCK_MONOTONIC) * 1000);
	assert_int_equal(readn(s, e, 4, &info), 0);
	feed(" 1\n");
	assert_int_equal(readn(s, e, 4, &info), 1);
	assert_int_equal(readn(s, e, 4, &info), 0);
	pl_live_gpio.close(s);
}

/* More events than one read's cap (and than libgpiod's 16 per call): in order, none lost. */
static void test_many_events_over_several_reads(void **state)
{
	struct pl_gpio_config cfg = meter("gpiochip0", 0);
	void *s = open_ok(&cfg);
	struct pl_live_edge e[64];
	struct pl_live_info info;
	int64_t t0 = now_us(CLOCK_MONOTONIC) - 200000;
	char text[4096];
	size_t len = 0;
	int total = 0, n, reads = 0;

	(void)state;
	for (int i = 0; i < 150; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "%lld %d\n",
					(long long)(t0 + i * 1000) * 1000, i % 2 == 0);
	feed("%s", text);
	while ((n = readn(s, e, 64, &info)) > 0) {
		assert_int_equal(info.lost, 0);
		for (int i = 0; i < n; i++) {
			assert_int_equal(e[i].level, (total + i) % 2 == 0);
			if (i > 0)
				assert_int_equal(e[i].t_us - e[i - 1].t_us, 1000);
		}
		total += n;
		reads++;
	}
	assert_int_equal(n, 0);
	assert_int_equal(total, 150);
	assert_int_equal(reads, 3); /* 64 + 64 + 22 */
	pl_live_gpio.close(s);
}

/* The v1 uAPI drops events silently when its FIFO is full: same direction twice is a loss. */
static void test_same_direction_twice_is_a_loss(void **state)
{
	struct pl_gpio_config cfg = meter("gpiochip0", 0);
	void *s = open_ok(&cfg);
	struct pl_live_edge e[8];
	struct pl_live_info info;
	int64_t t0 = now_us(CLOCK_MONOTONIC) - 100000, r0 = t0 + pl_clock_wall_minus_mono_us();

	(void)state;
	feed("%lld 1\n%lld 1\n%lld 0\n", (long long)t0 * 1000, (long long)(t0 + 10000) * 1000,
	     (long long)(t0 + 20000) * 1000);
	assert_int_equal(readn(s, e, 8, &info), 3);
	assert_int_equal(info.lost, 1);
	assert_true(llabs(info.gap_from_us - r0) < 1000);
	assert_true(llabs(info.gap_to_us - (r0 + 10000)) < 1000);
	assert_int_equal(e[1].level, 1);
	/* and across reads: falling, then falling in the next read */
	feed("%lld 0\n", (long long)(t0 + 30000) * 1000);
	assert_int_equal(readn(s, e, 8, &info), 1);
	assert_int_equal(info.lost, 1);
	assert_true(llabs(info.gap_from_us - (r0 + 20000)) < 1000);
	/* alternating again: nothing lost */
	feed("%lld 1\n", (long long)(t0 + 40000) * 1000);
	assert_int_equal(readn(s, e, 8, &info), 1);
	assert_int_equal(info.lost, 0);
	pl_live_gpio.close(s);
}

static void test_bias_flags_and_consumer_requested(void **state)
{
	static const struct {
		int bias, flags;
	} want[] = {
		{ PL_GPIO_BIAS_AS_IS, 0 },
		{ PL_GPIO_BIAS_PULL_UP, GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_UP },
		{ PL_GPIO_BIAS_PULL_DOWN, GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_DOWN },
		{ PL_GPIO_BIAS_DISABLE, GPIOD_LINE_REQUEST_FLAG_BIAS_DISABLE },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		/* opened as the daemon does, from a meter of the configuration file */
		struct pl_config_meter m = { .name = "m", .source = PL_CONFIG_SOURCE_GPIO,
					     .device = "gpiochip0", .channel = 17,
					     .bias = want[i].bias, .dev_root = fifo_dir };
		char err[256] = "";
		void *s = NULL;

		m.active_low = 1; /* never passed to the kernel: levels stay raw */
		assert_int_equal(pl_live_open_meter(&pl_live_gpio, &s, &m, err, sizeof(err)), 0);
		assert_non_null(s);
		assert_int_equal(fake.flags, want[i].flags);
		assert_int_equal(fake.line, 17);
		assert_string_equal(fake.consumer, "powerlogger");
		pl_live_gpio.close(s);
	}
}

static void test_chip_by_name_or_path(void **state)
{
	char want[128];
	struct pl_gpio_config cfg;
	void *s;

	(void)state;
	cfg = meter("gpiochip3", 0);
	s = open_ok(&cfg);
	snprintf(want, sizeof(want), "%s/gpiochip3", fifo_dir);
	assert_string_equal(fake.chip, want);
	pl_live_gpio.close(s);

	cfg = meter("/dev/gpiochip1", 0);
	s = open_ok(&cfg);
	assert_string_equal(fake.chip, "/dev/gpiochip1");
	pl_live_gpio.close(s);

	cfg = meter("gpiochip2", 0);
	cfg.dev_root = NULL; /* the default */
	s = open_ok(&cfg);
	assert_string_equal(fake.chip, "/dev/gpiochip2");
	pl_live_gpio.close(s);
}

static void test_unknown_chip_or_line_is_a_clear_error(void **state)
{
	struct pl_gpio_config cfg = meter("gpiochip7", 9);
	char err[256] = "", chip[128];
	void *s = (void *)1;
	int fd;

	(void)state;
	fake.chip_must_exist = 1;
	fake.nlines = 8;
	assert_int_equal(pl_live_gpio.open(&s, &cfg, err, sizeof(err)), -PL_ENOENT);
	assert_null(s);
	assert_non_null(strstr(err, "device gpiochip7: no such GPIO chip"));

	snprintf(chip, sizeof(chip), "%s/gpiochip7", fifo_dir);
	fd = open(chip, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(pl_live_gpio.open(&s, &cfg, err, sizeof(err)), -PL_ENOENT);
	assert_string_equal(err, "device gpiochip7: no line 9 (the chip has 8 lines, 0 to 7; "
			    "gpioinfo lists them)");

	cfg.device = NULL;
	assert_int_equal(pl_live_gpio.open(&s, &cfg, err, sizeof(err)), -PL_EINVAL);
	assert_non_null(strstr(err, "no GPIO chip configured"));
}

/* The chip goes away (ENODEV): edges already queued first, then -PL_EIO with a message. */
static void test_vanishing_chip_is_eio(void **state)
{
	struct pl_gpio_config cfg = meter("gpiochip0", 5);
	void *s = open_ok(&cfg);
	struct pl_live_edge e[8];
	struct pl_live_info info;
	char err[256] = "";

	(void)state;
	feed("now 1\nvanish\n");
	assert_int_equal(pl_live_gpio.read(s, e, 8, &info, err, sizeof(err)), 1);
	assert_int_equal(pl_live_gpio.read(s, e, 8, &info, err, sizeof(err)), -PL_EIO);
	assert_string_equal(err, "device gpiochip0 line 5: the GPIO chip failed or vanished "
			    "(reading events: No such device)");
	assert_int_equal(pl_live_gpio.level(s), -1);
	assert_int_equal(pl_live_gpio.read(s, e, 8, &info, err, sizeof(err)), -PL_EIO);
	pl_live_gpio.close(s);
	/* reopened (the daemon's backoff): works again */
	s = open_ok(&cfg);
	feed("now 0\n");
	assert_int_equal(pl_live_gpio.read(s, e, 8, &info, err, sizeof(err)), 1);
	pl_live_gpio.close(s);
}

static void test_malformed_fake_line_is_eio(void **state)
{
	struct pl_gpio_config cfg = meter("gpiochip0", 0);
	void *s = open_ok(&cfg);
	struct pl_live_edge e[8];
	struct pl_live_info info;
	char err[256] = "";

	(void)state;
	feed("# a comment\n\nnow 1\n12 x\n");
	assert_int_equal(pl_live_gpio.read(s, e, 8, &info, err, sizeof(err)), 1);
	assert_int_equal(pl_live_gpio.read(s, e, 8, &info, err, sizeof(err)), -PL_EIO);
	pl_live_gpio.close(s);
}

static int open_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			n++;
	return n;
}

/* close() releases the line and frees everything, at once (valgrind checks the memory). */
static void test_close_is_quick_and_clean(void **state)
{
	struct pl_gpio_config cfg = meter("gpiochip0", 0);
	int fds = open_fds();
	int64_t t0 = now_us(CLOCK_MONOTONIC);

	(void)state;
	for (int i = 0; i < 20; i++) {
		void *s = open_ok(&cfg);

		feed("now %d\n", i % 2);
		pl_live_gpio.close(s);
	}
	pl_live_gpio.close(NULL);
	assert_int_equal(fake.opens, 20);
	assert_int_equal(fake.releases, 20);
	assert_int_equal(open_fds(), fds);
	assert_true(now_us(CLOCK_MONOTONIC) - t0 < 500000);
}

/* PL_FAKE_GPIO=<FIFO> selects the fake in powerlogger-fakes: any chip and line, level unknown. */
static void test_fake_selected_by_environment(void **state)
{
	struct pl_gpio_config cfg = meter("gpiochip9", 99);
	void *s;
	struct pl_live_edge e[4];
	struct pl_live_info info;
	char err[256] = "";

	(void)state;
	pl_gpio_use_fake(NULL);
	assert_int_equal(pl_gpio_fake_from_env(), 0); /* not set: nothing installed */
	setenv("PL_FAKE_GPIO", fifo_path, 1);
	assert_int_equal(pl_gpio_fake_from_env(), 1); /* as powerlogger-fakes does at its start */
	s = open_ok(&cfg);
	assert_int_equal(pl_live_gpio.level(s), -1);
	feed("now 1\n");
	assert_int_equal(readn(s, e, 4, &info), 1);
	assert_int_equal(pl_live_gpio.level(s), 1);
	pl_live_gpio.close(s);
	/* without its FIFO, it is a missing chip */
	setenv("PL_FAKE_GPIO", "/nonexistent/fifo", 1);
	assert_int_equal(pl_live_gpio.open(&s, &cfg, err, sizeof(err)), -PL_ENOENT);
	assert_non_null(strstr(err, "no such GPIO chip (the FAKE's FIFO /nonexistent/fifo"));
	unsetenv("PL_FAKE_GPIO");
}

/* The real libgpiod path, as far as a machine without GPIO goes. */
static void test_real_libgpiod_without_a_chip(void **state)
{
	struct pl_gpio_config cfg = meter("gpiochip0", 0);
	char err[256] = "", want[256], path[128];
	void *s = (void *)1;
	int fd;

	(void)state;
	pl_gpio_use_fake(NULL);
	assert_int_equal(pl_live_gpio.open(&s, &cfg, err, sizeof(err)), -PL_ENOENT);
	assert_null(s);
	snprintf(want, sizeof(want), "device gpiochip0: no such GPIO chip (%s/gpiochip0 does not "
		 "exist; gpiodetect lists the chips)", fifo_dir);
	assert_string_equal(err, want);

	/* a file that is not a GPIO character device */
	snprintf(path, sizeof(path), "%s/gpiochip0", fifo_dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(pl_live_gpio.open(&s, &cfg, err, sizeof(err)), -PL_EIO);
	snprintf(want, sizeof(want), "device gpiochip0: %s is not a GPIO chip", path);
	assert_non_null(strstr(err, want));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_edges_carry_levels_and_wall_clock_times, setup, teardown),
		cmocka_unit_test_setup_teardown(test_realtime_stamps_of_old_kernels_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nothing_available_reads_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_events_over_several_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_same_direction_twice_is_a_loss, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bias_flags_and_consumer_requested, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chip_by_name_or_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_chip_or_line_is_a_clear_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vanishing_chip_is_eio, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_fake_line_is_eio, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_is_quick_and_clean, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fake_selected_by_environment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_real_libgpiod_without_a_chip, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
