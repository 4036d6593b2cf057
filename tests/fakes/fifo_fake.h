/* SPDX-License-Identifier: MIT */
/*
 * For the tests of the edge sources' fake kernels (test_gpio, test_serial): a temporary
 * directory with the FIFO the fake reads, text fed into it, and a clock reading. Header-only,
 * include it after cmocka.h, once per test program.
 */
#ifndef PL_TESTS_FIFO_FAKE_H
#define PL_TESTS_FIFO_FAKE_H

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "powerlogger/common.h"

static char fifo_dir[64], fifo_path[96];

static int64_t now_us(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (int64_t)ts.tv_sec * PL_US_PER_S + ts.tv_nsec / 1000;
}

/* Makes /tmp/<prefix>_XXXXXX/<name> as a FIFO: fifo_dir and fifo_path name them. */
static void fifo_make(const char *prefix, const char *name)
{
	snprintf(fifo_dir, sizeof(fifo_dir), "/tmp/%s_XXXXXX", prefix);
	assert_non_null(mkdtemp(fifo_dir));
	snprintf(fifo_path, sizeof(fifo_path), "%s/%s", fifo_dir, name);
	assert_int_equal(mkfifo(fifo_path, 0600), 0);
}

static void fifo_remove(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", fifo_dir);
	assert_int_equal(system(cmd), 0);
}

/* Writes text into the FIFO (the source holds it open, so it stays there). */
static void feed(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void feed(const char *fmt, ...)
{
	static char text[16384];
	va_list ap;
	int fd = open(fifo_path, O_WRONLY | O_NONBLOCK);

	assert_true(fd >= 0);
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

#endif
