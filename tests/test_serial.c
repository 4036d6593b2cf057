/* SPDX-License-Identifier: MIT */
/*
 * The serial edge source (src_serial.c). CI has no serial port with an S0 output on it, so
 * these tests fake the kernel interface: a FAKE backend (tests/fakes/fake_serial.h, installed
 * through the source's backend table in src_serial.h) takes
 * modem-line changes from a FIFO that the test writes, read by the source's own thread where
 * the real one waits in TIOCMIWAIT. The real tty path is run as far as it goes without
 * hardware: a missing device, a file that is no tty, a pseudo-terminal without modem lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fakes/fake_serial.h"
#include "fakes/fifo_fake.h"
#include "sources/live.h"
#include "sources/src_serial.h"

static struct pl_serial_fake fake;

static int setup(void **state)
{
	(void)state;
	fifo_make("pl_serial", "changes");
	fake = (struct pl_serial_fake){ .fifo = fifo_path };
	pl_serial_use_fake(&fake);
	unsetenv("PL_FAKE_SERIAL");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pl_serial_use_fake(NULL);
	assert_int_equal(fake.opens, fake.closes); /* every open closed */
	fifo_remove();
	return 0;
}

static struct pl_serial_config meter(const char *device, enum pl_serial_pin pin)
{
	return (struct pl_serial_config){ .name = "m", .device = device, .pin = pin,
					 .dev_root = fifo_dir };
}

static void *open_ok(const struct pl_serial_config *cfg)
{
	char err[256] = "";
	void *s = NULL;

	assert_int_equal(pl_live_serial.open(&s, cfg, err, sizeof(err)), 0);
	assert_non_null(s);
	assert_true(pl_live_serial.fd(s) >= 0);
	return s;
}

/*
 * Reads until want edges came (the thread hands them over asynchronously), at most cap per
 * read, within a second. Returns the edges read; *lost sums info->lost, *first_info is the
 * first read's info with a loss.
 */
static int collect(void *s, struct pl_live_edge *e, size_t cap, int want, uint64_t *lost,
		   struct pl_live_info *first_loss)
{
	int64_t until = now_us(CLOCK_MONOTONIC) + PL_US_PER_S;
	int total = 0;

	*lost = 0;
	while (total < want && now_us(CLOCK_MONOTONIC) < until) {
		struct pollfd p = { .fd = pl_live_serial.fd(s), .events = POLLIN };
		struct pl_live_info info;
		char err[256];
		int n;

		poll(&p, 1, 20);
		n = pl_live_serial.read(s, e + total, cap, &info, err, sizeof(err));
		assert_true(n >= 0);
		if (info.lost && *lost == 0 && first_loss)
			*first_loss = info;
		*lost += info.lost;
		total += n;
	}
	return total;
}

static void test_edges_carry_levels_and_wall_clock_times(void **state)
{
	struct pl_serial_config cfg = meter("ttyUSB0", PL_SERIAL_PIN_CTS);
	struct pl_live_edge e[8];
	uint64_t lost;
	int64_t before;
	void *s;

	(void)state;
	s = open_ok(&cfg);
	assert_int_equal(pl_live_serial.level(s), 0);
	before = now_us(CLOCK_REALTIME);
	feed("1\n");
	assert_int_equal(collect(s, e, 8, 1, &lost, NULL), 1);
	assert_int_equal(e[0].level, 1);
	assert_true(e[0].t_us >= before && e[0].t_us <= now_us(CLOCK_REALTIME));
	assert_int_equal(pl_live_serial.level(s), 1);
	feed("0\n");
	assert_int_equal(collect(s, e, 8, 1, &lost, NULL), 1);
	assert_int_equal(e[0].level, 0);
	assert_int_equal(lost, 0);
	assert_int_equal(fake.mask, TIOCM_CTS);
	pl_live_serial.close(s);
}

static void test_nothing_available_reads_zero(void **state)
{
	struct pl_serial_config cfg = meter("ttyUSB0", PL_SERIAL_PIN_CTS);
	void *s = open_ok(&cfg);
	struct pl_live_edge e[4];
	struct pl_live_info info = { .lost = 9 };
	char err[64];

	(void)state;
	assert_int_equal(pl_live_serial.read(s, e, 4, &info, err, sizeof(err)), 0);
	assert_int_equal(info.lost, 0);
	/* a change to the level the line already has is no edge */
	feed("0 0\n");
	usleep(20000);
	assert_int_equal(pl_live_serial.read(s, e, 4, &info, err, sizeof(err)), 0);
	assert_int_equal(info.lost, 0);
	pl_live_serial.close(s);
}

/* More edges than one read's cap: in order, capped, none lost. */
static void test_many_edges_over_several_reads(void **state)
{
	struct pl_serial_config cfg = meter("ttyUSB0", PL_SERIAL_PIN_DSR);
	void *s = open_ok(&cfg);
	static struct pl_live_edge e[300];
	static char text[1024];
	struct pl_live_info info;
	char err[64];
	int total = 0, biggest = 0;
	int64_t until = now_us(CLOCK_MONOTONIC) + PL_US_PER_S;

	(void)state;
	for (int i = 0; i < 300; i++)
		memcpy(text + 2 * i, i % 2 == 0 ? "1\n" : "0\n", 2);
	feed("%s", text);
	usleep(100000); /* let the thread hand over most of them */
	while (total < 300 && now_us(CLOCK_MONOTONIC) < until) {
		int n = pl_live_serial.read(s, e + total, 64, &info, err, sizeof(err));

		assert_true(n >= 0 && n <= 64);
		assert_int_equal(info.lost, 0);
		biggest = n > biggest ? n : biggest;
		total += n;
		if (n == 0)
			usleep(5000);
	}
	assert_int_equal(total, 300);
	assert_int_equal(biggest, 64);
	for (int i = 0; i < 300; i++) {
		assert_int_equal(e[i].level, i % 2 == 0);
		if (i > 0)
			assert_true(e[i].t_us >= e[i - 1].t_us);
	}
	assert_int_equal(fake.mask, TIOCM_DSR);
	pl_live_serial.close(s);
}

/* The counter advanced by more than the level changes seen: transitions were missed. */
static void test_counter_jump_is_a_loss(void **state)
{
	struct pl_serial_config cfg = meter("ttyS0", PL_SERIAL_PIN_DCD);
	void *s = open_ok(&cfg);
	struct pl_live_edge e[8];
	struct pl_live_info gap = { 0 };
	uint64_t lost;

	(void)state;
	feed("1\n");
	assert_int_equal(collect(s, e, 8, 1, &lost, NULL), 1);
	/* from 1: down and up again, then down and up once more before the next wait */
	feed("0 3\n");
	assert_int_equal(collect(s, e + 1, 8, 1, &lost, &gap), 1);
	assert_int_equal(e[1].level, 0);
	assert_int_equal(lost, 2);
	assert_int_equal(gap.gap_from_us, e[0].t_us);
	assert_int_equal(gap.gap_to_us, e[1].t_us);
	/* a whole pulse between two waits: no edge, two transitions lost */
	feed("0 2\n1\n");
	assert_int_equal(collect(s, e, 8, 1, &lost, NULL), 1);
	assert_int_equal(e[0].level, 1);
	assert_int_equal(lost, 2);
	assert_int_equal(fake.mask, TIOCM_CAR);
	pl_live_serial.close(s);
}

/* Drivers without TIOCGICOUNT: edges still, no loss detection. */
static void test_without_counters_edges_still_come(void **state)
{
	struct pl_serial_config cfg = meter("ttyS0", PL_SERIAL_PIN_RI);
	void *s;
	struct pl_live_edge e[8];
	uint64_t lost;

	(void)state;
	fake.no_counts = 1;
	s = open_ok(&cfg);
	feed("1 3\n0\n");
	assert_int_equal(collect(s, e, 8, 2, &lost, NULL), 2);
	assert_int_equal(lost, 0);
	assert_int_equal(fake.mask, TIOCM_RNG);
	pl_live_serial.close(s);
}

/* The loop far behind: the pipe fills, the edges that do not fit are reported lost. */
static void test_full_pipe_counts_as_lost(void **state)
{
	struct pl_serial_config cfg = meter("ttyS0", PL_SERIAL_PIN_CTS);
	void *s = open_ok(&cfg);
	static struct pl_live_edge e[4096];
	static char text[8200];
	struct pl_live_info info;
	uint64_t lost = 0;
	int total = 0, n;
	char err[64];

	(void)state;
	for (int i = 0; i < 4000; i++)
		memcpy(text + 2 * i, i % 2 == 0 ? "1\n" : "0\n", 2);
	feed("%s", text);
	/* all read by the thread (the FIFO empty) and the pipe full */
	for (int i = 0; i < 200; i++) {
		int avail = -1;
		int fd = open(fifo_path, O_RDONLY | O_NONBLOCK);

		assert_int_equal(ioctl(fd, FIONREAD, &avail), 0);
		close(fd);
		if (avail == 0)
			break;
		usleep(5000);
	}
	usleep(20000);
	while ((n = pl_live_serial.read(s, e + total, 4096 - (size_t)total, &info, err,
					sizeof(err))) > 0) {
		lost += info.lost;
		total += n;
	}
	assert_true(total < 4000);
	/* the next edge carries what the full pipe lost */
	feed("1\n");
	total += collect(s, e + total, 8, 1, &info.lost, NULL);
	lost += info.lost;
	assert_int_equal((uint64_t)total + lost, 4001);
	pl_live_serial.close(s);
}

static void test_device_by_name_or_path(void **state)
{
	char want[128];
	struct pl_serial_config cfg;
	void *s;

	(void)state;
	cfg = meter("ttyUSB0", 0);
	s = open_ok(&cfg);
	snprintf(want, sizeof(want), "%s/ttyUSB0", fifo_dir);
	assert_string_equal(fake.device, want);
	pl_live_serial.close(s);

	cfg = meter("/dev/ttyAMA0", 0);
	s = open_ok(&cfg);
	assert_string_equal(fake.device, "/dev/ttyAMA0");
	pl_live_serial.close(s);
}

static void test_unknown_device_is_a_clear_error(void **state)
{
	struct pl_serial_config cfg = meter("ttyUSB7", 0);
	char err[256] = "", want[256];
	void *s = (void *)1;

	(void)state;
	fake.must_exist = 1;
	assert_int_equal(pl_live_serial.open(&s, &cfg, err, sizeof(err)), -PL_ENOENT);
	assert_null(s);
	snprintf(want, sizeof(want), "device ttyUSB7: no such serial port (%s/ttyUSB7 does not "
		 "exist)", fifo_dir);
	assert_string_equal(err, want);
	cfg.device = NULL;
	assert_int_equal(pl_live_serial.open(&s, &cfg, err, sizeof(err)), -PL_EINVAL);
	assert_non_null(strstr(err, "no serial port configured"));
}

/* The real tty path without hardware: no device, not a tty, a tty without modem lines. */
static void test_real_tty_errors(void **state)
{
	struct pl_serial_config cfg = meter("ttyUSB0", 0);
	char err[256] = "", want[256];
	void *s = (void *)1;
	int pty;

	(void)state;
	pl_serial_use_fake(NULL);
	assert_int_equal(pl_live_serial.open(&s, &cfg, err, sizeof(err)), -PL_ENOENT);
	assert_null(s);
	snprintf(want, sizeof(want), "device ttyUSB0: no such serial port (%s/ttyUSB0 does not "
		 "exist)", fifo_dir);
	assert_string_equal(err, want);

	cfg.device = "/dev/null";
	assert_int_equal(pl_live_serial.open(&s, &cfg, err, sizeof(err)), -PL_EIO);
	assert_non_null(strstr(err, "device /dev/null: /dev/null is not a serial port ("));

	pty = posix_openpt(O_RDWR | O_NOCTTY);
	if (pty < 0 || grantpt(pty) != 0 || unlockpt(pty) != 0) {
		if (pty >= 0)
			close(pty);
		return; /* no ptys here: the rest needs one */
	}
	cfg.device = ptsname(pty);
	assert_int_equal(pl_live_serial.open(&s, &cfg, err, sizeof(err)), -PL_EIO);
	assert_non_null(strstr(err, "has no modem-status lines (TIOCMGET: "));
	close(pty);
}

/* The adapter unplugged (EIO in the wait): edges first, then -PL_EIO with a message. */
static void test_vanishing_port_is_eio(void **state)
{
	struct pl_serial_config cfg = meter("ttyUSB0", PL_SERIAL_PIN_CTS);
	void *s = open_ok(&cfg);
	struct pl_live_edge e[8];
	struct pl_live_info info;
	struct pollfd p = { .fd = pl_live_serial.fd(s), .events = POLLIN };
	char err[256] = "";
	uint64_t lost;
	int rc = 0;

	(void)state;
	feed("1\nvanish\n");
	assert_int_equal(collect(s, e, 8, 1, &lost, NULL), 1);
	for (int i = 0; i < 100 && rc == 0; i++) {
		poll(&p, 1, 10);
		rc = pl_live_serial.read(s, e, 8, &info, err, sizeof(err));
	}
	assert_int_equal(rc, -PL_EIO);
	assert_string_equal(err, "device ttyUSB0: the serial port failed or vanished "
			    "(TIOCMIWAIT: Input/output error; a USB adapter unplugged?)");
	assert_int_equal(pl_live_serial.level(s), -1);
	assert_int_equal(pl_live_serial.read(s, e, 8, &info, err, sizeof(err)), -PL_EIO);
	pl_live_serial.close(s); /* its thread has already left */
	/* reopened (the daemon's backoff): works again */
	s = open_ok(&cfg);
	feed("1\n");
	assert_int_equal(collect(s, e, 8, 1, &lost, NULL), 1);
	pl_live_serial.close(s);
}

static int open_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			n++;
	return n;
}

/*
 * close() stops a thread blocked in its wait, at once, also right after open (before the
 * thread is in the wait) and with edges not read; nothing stays open (valgrind checks the
 * memory).
 */
static void test_close_is_bounded_and_clean(void **state)
{
	struct pl_serial_config cfg = meter("ttyUSB0", PL_SERIAL_PIN_CTS);
	int fds = open_fds();

	(void)state;
	for (int i = 0; i < 20; i++) {
		void *s = open_ok(&cfg);
		int64_t t0;

		if (i % 3 == 1)
			feed("%d\n", i % 2);
		if (i % 3 == 2)
			usleep(2000); /* in the wait for sure */
		t0 = now_us(CLOCK_MONOTONIC);
		pl_live_serial.close(s);
		assert_true(now_us(CLOCK_MONOTONIC) - t0 < 200000);
	}
	pl_live_serial.close(NULL);
	assert_int_equal(fake.opens, 20);
	assert_int_equal(fake.closes, 20);
	assert_int_equal(open_fds(), fds);
}

/* PL_FAKE_SERIAL=<FIFO> selects the fake in powerlogger-fakes: any device. */
static void test_fake_selected_by_environment(void **state)
{
	struct pl_serial_config cfg = meter("ttyUSB9", PL_SERIAL_PIN_DSR);
	struct pl_live_edge e[4];
	char err[256] = "";
	uint64_t lost;
	void *s;

	(void)state;
	pl_serial_use_fake(NULL);
	assert_int_equal(pl_serial_fake_from_env(), 0); /* not set: nothing installed */
	setenv("PL_FAKE_SERIAL", fifo_path, 1);
	setenv("PL_FAKE_SERIAL_LEVEL", "1", 1);
	assert_int_equal(pl_serial_fake_from_env(), 1); /* as powerlogger-fakes does at its start */
	s = open_ok(&cfg);
	assert_int_equal(pl_live_serial.level(s), 1);
	feed("0\n");
	assert_int_equal(collect(s, e, 4, 1, &lost, NULL), 1);
	assert_int_equal(e[0].level, 0);
	pl_live_serial.close(s);
	setenv("PL_FAKE_SERIAL", "/nonexistent/fifo", 1);
	assert_int_equal(pl_live_serial.open(&s, &cfg, err, sizeof(err)), -PL_ENOENT);
	assert_non_null(strstr(err, "no such serial port (the FAKE's FIFO /nonexistent/fifo"));
	unsetenv("PL_FAKE_SERIAL");
	unsetenv("PL_FAKE_SERIAL_LEVEL");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_edges_carry_levels_and_wall_clock_times, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nothing_available_reads_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_edges_over_several_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_counter_jump_is_a_loss, setup, teardown),
		cmocka_unit_test_setup_teardown(test_without_counters_edges_still_come, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_pipe_counts_as_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_by_name_or_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_device_is_a_clear_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_real_tty_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vanishing_port_is_eio, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_is_bounded_and_clean, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fake_selected_by_environment, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
