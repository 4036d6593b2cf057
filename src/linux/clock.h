/* SPDX-License-Identifier: MIT */
/*
 * The clock seam: every clock reading of the daemon (and of the paced sources, sim and trace
 * replay) goes through here, so that a test can run the whole loop under a fake clock
 * (tests/test_daemon.c). The system clock is the default; pl_clock_use() swaps in another.
 *
 * Three readings: monotonic time (timers, pacing, backoff), wall-clock time (the stamps of
 * records, seeds), and the wall-minus-monotonic offset (it moves only when the wall clock is
 * stepped or the system was suspended: the daemon watches it for clock steps). And one wait:
 * the loop's poll(), so that a fake clock lets the time pass instead of sleeping.
 *
 * Threads: every thread reads through here (the loop, the sinks' delivery threads, the
 * serial source's TIOCMIWAIT thread, the store), and reading is safe from any of them: the
 * clock in use is a plain pointer, set by pl_clock_use() before the daemon starts its threads
 * and not changed while they run (the thread creation orders the write before their reads).
 * Swapping while threads run is not supported. A clock's functions must then be callable
 * from several threads (the system clock's are).
 *
 * Only readings of the time go through the seam: a kernel API that takes a clock of its own
 * (timerfd, pthread_cond_timedwait on a CLOCK_MONOTONIC condattr, pthread_timedjoin_np) is
 * given the kernel's clock, and kernel timestamps (GPIO events, IIO scans) are converted to
 * wall time with pl_clock_wall_minus_mono_us().
 */
#ifndef PL_LINUX_CLOCK_H
#define PL_LINUX_CLOCK_H

#include <poll.h>
#include <stdint.h>

struct pl_clock {
	int64_t (*mono_us)(void *ctx);  /* CLOCK_MONOTONIC, µs */
	int64_t (*wall_us)(void *ctx);  /* CLOCK_REALTIME, µs since the epoch */
	/* poll(2): waits up to timeout_ms (-1: forever) for an event on fds; returns what poll
	 * returns (a fake clock advances its time by the wait instead of sleeping). */
	int (*wait)(struct pollfd *fds, nfds_t n, int timeout_ms, void *ctx);
	void *ctx;
};

/* The clock everything reads from now on; NULL: the system's. The struct must outlive its
 * use (a static, or the test's own). Not thread-safe: call it before any thread that reads
 * the clock starts, or after they all stopped. */
void pl_clock_use(const struct pl_clock *c);

int64_t pl_clock_mono_us(void);
int64_t pl_clock_wall_us(void);

/*
 * Wall clock minus monotonic clock, µs. On the system clock it is read between two wall-clock
 * readings, the narrowest of a few tries, so that being preempted between the two clocks
 * cannot look like a step.
 */
int64_t pl_clock_wall_minus_mono_us(void);

/* Waits as poll(2) does, through the clock in use. */
int pl_clock_wait(struct pollfd *fds, nfds_t n, int timeout_ms);

#endif
