/* SPDX-License-Identifier: MIT */
/*
 * The clock seam (see clock.h): the system clock, or the one a test put in.
 */
/*
 * A 64-bit time_t in this file even where the C library's default is 32 bits (Debian 12
 * armhf): its interface is int64_t microseconds, no time_t leaves it, and so the wall clock
 * still reads right after 2038-01-19, when a 32-bit clock_gettime() fails with EOVERFLOW. The
 * rest of the program keeps the default, because Debian 12's armhf libgpiod (1.6) hands out
 * events with a 32-bit struct timespec (docs/raspberry-pi.md).
 */
#ifndef _FILE_OFFSET_BITS
#define _FILE_OFFSET_BITS 64 /* glibc allows _TIME_BITS 64 only with it */
#endif
#ifndef _TIME_BITS
#define _TIME_BITS 64
#endif
#include <time.h>

#include "clock.h"
#include "powerlogger/common.h"

static int64_t read_clock(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (int64_t)ts.tv_sec * PL_US_PER_S + ts.tv_nsec / 1000;
}

static int64_t system_mono(void *ctx)
{
	(void)ctx;
	return read_clock(CLOCK_MONOTONIC);
}

static int64_t system_wall(void *ctx)
{
	(void)ctx;
	return read_clock(CLOCK_REALTIME);
}

static int system_wait(struct pollfd *fds, nfds_t n, int timeout_ms, void *ctx)
{
	(void)ctx;
	return poll(fds, n, timeout_ms);
}

static const struct pl_clock system_clock = {
	.mono_us = system_mono,
	.wall_us = system_wall,
	.wait = system_wait,
};

static const struct pl_clock *clk = &system_clock;

void pl_clock_use(const struct pl_clock *c)
{
	clk = c ? c : &system_clock;
}

int64_t pl_clock_mono_us(void)
{
	return clk->mono_us(clk->ctx);
}

int64_t pl_clock_wall_us(void)
{
	return clk->wall_us(clk->ctx);
}

int64_t pl_clock_wall_minus_mono_us(void)
{
	int64_t best = 0, width = INT64_MAX;

	if (clk != &system_clock) /* a fake clock is not preempted between its readings */
		return pl_clock_wall_us() - pl_clock_mono_us();
	for (int i = 0; i < 4 && width > 1000; i++) {
		int64_t r1 = pl_clock_wall_us(), mo = pl_clock_mono_us();
		int64_t r2 = pl_clock_wall_us();

		if (r2 >= r1 && r2 - r1 < width) {
			width = r2 - r1;
			best = r1 + (r2 - r1) / 2 - mo;
		}
	}
	return width == INT64_MAX ? pl_clock_wall_us() - pl_clock_mono_us() : best;
}

int pl_clock_wait(struct pollfd *fds, nfds_t n, int timeout_ms)
{
	return clk->wait(fds, n, timeout_ms, clk->ctx);
}
