/* SPDX-License-Identifier: MIT */
/*
 * The live box: what the web server shows of the running logger (/api/v1/status, /metrics).
 * The loop fills a copy in its own thread every PL_LIVE_EVERY_US (daemon/status.c, reading
 * its own state: the meters' channels, the sinks' status) and puts it here under a mutex held
 * only for the copy; the HTTP thread takes a copy the same way. So the loop never waits for a
 * client, and a client sees one consistent moment of every meter and sink.
 *
 * The names, meter settings and the price come from the configuration, which outlives the
 * run (a reload executes the program anew); only what changes is here.
 */
#ifndef PL_HTTP_LIVE_H
#define PL_HTTP_LIVE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "powerlogger/meter.h"

#define PL_LIVE_EVERY_US (2 * 1000000)

struct pl_live_meter {
	int64_t id;             /* the store's meter id */
	int64_t power_mw;       /* the meter's power now (pl_meter_power()) */
	int64_t register_uwh;   /* the register as of the last commit: the store's */
	int64_t today_base_uwh; /* the register at local midnight (the store's) */
	int64_t day_start_us;   /* that midnight */
	uint64_t pulses;        /* accepted pulses in the records committed in this run */
	uint64_t rejected;      /* rejected pulses in them */
	uint64_t gaps;          /* records committed in this run flagged PL_Q_GAP or PL_Q_PARTIAL */
	uint64_t rejected_total; /* the detector's or edge filter's rejected pulses in this run */
	int have_last;
	struct pl_interval_record last; /* the newest record in the store */
	int edges;              /* a digital input: no detector state, amplitude or noise */
	char det_state[16];
	int64_t amplitude, noise;
	int failing;            /* the source */
	char error[256];
	uint64_t lost;
};

struct pl_live_sink {
	int failing;
	char last_error[320];
	uint64_t backlog, delivered, quarantined;
	int64_t last_ok_us;     /* wall clock of the last acknowledged delivery; 0: none */
};

struct pl_live {
	pthread_mutex_t mu;
	size_t nmeters, nsinks;
	struct pl_live_meter *m;
	struct pl_live_sink *s;
	int64_t updated_us;     /* wall clock of the last put; 0: never */
};

/* A box for nmeters and nsinks; NULL when out of memory. */
struct pl_live *pl_live_new(size_t nmeters, size_t nsinks);
void pl_live_free(struct pl_live *l);

/* Replaces the box's content with src's (same sizes). */
void pl_live_put(struct pl_live *l, const struct pl_live *src);

/* Copies the box's content into dst (made by pl_live_new() with the same sizes). */
void pl_live_get(struct pl_live *l, struct pl_live *dst);

#endif
