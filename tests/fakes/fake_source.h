/* SPDX-License-Identifier: MIT */
/*
 * A FAKE device for tests/test_daemon.c: a pulse meter's LED comparator wired to an input
 * line (an edge source, live.h, timeline PL_LIVE_WALL), which the tests cannot have. It gives
 * a pulse (a rising edge, then a falling one width_us later) every period_us of monotonic
 * time (clock.h, the test's fake clock) from first_us on, stamped in wall-clock time as a
 * device does. From fail_at_us it "vanishes": the next read fails with -PL_EIO and every open
 * fails until back_at_us; edges while it is gone are lost, as with a real line. Every open
 * attempt is recorded (the monotonic time), so a test can check the reopen backoff.
 *
 * One fake at a time (a static instance): fake_source_setup() resets it.
 */
#ifndef PL_TESTS_FAKE_SOURCE_H
#define PL_TESTS_FAKE_SOURCE_H

#include <stdint.h>

#include "sources/live.h"

#define FAKE_SOURCE_FD 1000       /* the fd it says to poll (the fake clock answers for it) */
#define FAKE_SOURCE_MAX_OPENS 64

struct fake_source {
	/* set by the test */
	int64_t first_us, period_us, width_us; /* monotonic */
	int64_t fail_at_us, back_at_us;        /* 0: never fails */
	/* what happened */
	int64_t opens_us[FAKE_SOURCE_MAX_OPENS]; /* monotonic time of every open attempt */
	int opens_ok[FAKE_SOURCE_MAX_OPENS];     /* 1 if that attempt succeeded */
	int nopens;
	int64_t failed_read_us;                  /* when a read failed (0: none) */
	int is_open, failed;
	uint64_t next_edge;                      /* index of the next edge to give */
};

extern struct fake_source fake_source;
extern const struct pl_live_ops fake_source_ops;

/* Resets the fake: pulses every period_us from first_us, each width_us long; no failure. */
void fake_source_setup(int64_t first_us, int64_t period_us, int64_t width_us);

/* The monotonic time of the next thing the fake will have to say (an edge, its failure);
 * INT64_MAX when nothing is coming. For the fake clock's wait. */
int64_t fake_source_next_event(void);

/* 1 when a read would return something now (an edge due, or the failure). */
int fake_source_readable(void);

#endif
