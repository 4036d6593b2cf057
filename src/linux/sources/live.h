/* SPDX-License-Identifier: MIT */
/*
 * Live sources: the sensors a user wires to a Linux board (issue 4). Each kind is one file
 * behind this small seam, so the daemon's loop treats them alike and tests can put a fake
 * kernel interface under each:
 *
 *	src_iio.c	Industrial I/O ADC: polled sysfs (in_voltageN_raw, paced by a timerfd)
 *			or buffered capture from /dev/iio:deviceN (scan elements, kernel
 *			timestamps); analog samples for the detector
 *	src_gpio.c	a GPIO line's edge events through libgpiod (kernel timestamps, bias,
 *			active-low); edges for the edge filter
 *	src_serial.c	a serial port's modem-status line (CTS/DCD/DSR/RI) waited on with
 *			TIOCMIWAIT on a thread of its own; edges for the edge filter
 *
 * The loop polls every source's fd for POLLIN and then calls read(), which never blocks.
 * Times are wall-clock microseconds (CLOCK_REALTIME), whatever clock the kernel stamped with:
 * the source converts. A source reports what it lost (timer expirations missed, a full kernel
 * buffer, dropped events) in the read info; the loop flags the intervals (PL_Q_GAP) and shows
 * it in `status`. A source whose device fails or vanishes returns -PL_EIO with a message; the
 * loop closes it and opens it again with backoff, the other meters carrying on.
 */
#ifndef PL_LINUX_LIVE_H
#define PL_LINUX_LIVE_H

#include <stddef.h>
#include <stdint.h>

#include "powerlogger/common.h"

struct pl_config_meter; /* config/config.h */

enum pl_live_kind {
	PL_LIVE_SAMPLES = 1, /* buf is struct pl_sample[] */
	PL_LIVE_EDGES = 2,   /* buf is struct pl_live_edge[] */
};

/* One input edge: the raw level (0/1, active_low NOT applied) the line has from t_us on. */
struct pl_live_edge {
	int64_t t_us;
	int8_t level;
};

/* What a read found besides the data. */
struct pl_live_info {
	uint64_t lost;        /* samples or edges known to be lost since the last read (0: none) */
	int64_t gap_from_us;  /* when lost > 0: the span without data, wall clock; 0 if unknown */
	int64_t gap_to_us;
	/* A source with an end (a replayed file; the simulator after its longest run): set once
	 * everything is read; read() then keeps returning 0 (or, after a read error, returned
	 * that error once). end_us: where the input ends in the source's time (one sample period
	 * after its last sample), 0 if unknown. */
	int ended;
	int64_t end_us;
};

/*
 * Whose time a source's stamps are in (struct pl_live_ops.timeline). Live sources stamp in
 * wall-clock time as it is now, which the loop converts to its line time (monotonic); a
 * simulator or a replayed file has a time line of its own, read as it is. Those two have no
 * open() (NULL) and no fd(): they are opened by their own constructors, which take the pace
 * and the position to start at (src_sim.h, src_trace.h).
 */
enum pl_live_timeline {
	PL_LIVE_WALL = 0,   /* a device: wall-clock stamps; follows clock steps, resumes at open */
	PL_LIVE_PACED = 1,  /* the simulator: its own time from the wall clock at its open, paced
			     * by the monotonic clock; follows clock steps, resumes at open */
	PL_LIVE_REPLAY = 2, /* a replayed file: the file's time at any pace; ignores clock steps,
			     * resumes at its position; its end closes every interval */
};

struct pl_live_ops {
	const char *name;     /* "iio", "gpio", "serial" */
	enum pl_live_kind kind;
	/*
	 * Opens the source with its own configuration, cfg: a struct pl_iio_config,
	 * pl_gpio_config or pl_serial_config (src_iio.h, src_gpio.h, src_serial.h), read
	 * during the call only (its strings must outlive the source). Returns 0 with *self
	 * set, or a negative PL_E* code with a message in err ("device X: what is wrong
	 * (hint)").
	 */
	int (*open)(void **self, const void *cfg, char *err, size_t errlen);
	/* The fd to poll for POLLIN. Constant while open. */
	int (*fd)(void *self);
	/*
	 * Reads what is available now, never blocking: up to cap items into buf. Returns how many
	 * (0: nothing yet, e.g. EAGAIN or a short read kept for next time), or -PL_EIO when the
	 * device failed or vanished (message in err). info is always filled.
	 */
	int (*read)(void *self, void *buf, size_t cap, struct pl_live_info *info, char *err,
		    size_t errlen);
	/* For edges: the current raw level (0/1), or -1 if unknown; NULL for samples. */
	int (*level)(void *self);
	void (*close)(void *self); /* NULL is fine */
	/* Whose time the stamps are in; 0 (the live sources): PL_LIVE_WALL. */
	enum pl_live_timeline timeline;
	/*
	 * For a source without an fd (fd NULL: the simulator, a replayed file), paced by time:
	 * the monotonic time (µs, clock.h) at which the loop must call read() again, given the
	 * time now; now when data is due, INT64_MAX once it has ended. NULL for sources with an
	 * fd (they are read on POLLIN).
	 */
	int64_t (*next_wakeup)(void *self, int64_t now_us);
	/*
	 * Where the source stands in its input, for the checkpoint: items given since the
	 * input's start, counting those skipped at its open. A replayed file opened at that
	 * position goes on exactly where it stopped. NULL for live sources (nothing to go
	 * back to: a restart of a device is a gap).
	 */
	uint64_t (*position)(void *self);
};

extern const struct pl_live_ops pl_live_iio, pl_live_gpio, pl_live_serial;

/* The ops for a configured source (enum pl_config_source), or NULL for sim/file. */
const struct pl_live_ops *pl_live_ops_for(int source);

/*
 * Opens ops' source for a meter of the configuration file: builds the source's own
 * configuration from the meter's keys (device, channel or line, mode, rate, trigger, bias,
 * pin, sysfs_root, dev_root) and calls ops->open() with it. The meter must outlive the
 * source. Returns what open() returns (-PL_EINVAL for ops that are none of the three).
 */
int pl_live_open_meter(const struct pl_live_ops *ops, void **self,
		       const struct pl_config_meter *meter, char *err, size_t errlen);

#endif
