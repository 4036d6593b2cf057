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

/* CLOCK_REALTIME minus CLOCK_MONOTONIC, µs, now: converts monotonic kernel timestamps. */
int64_t pl_live_mono_to_real_us(void);

#endif
