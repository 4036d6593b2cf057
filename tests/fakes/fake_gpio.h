/* SPDX-License-Identifier: MIT */
/*
 * A FAKE GPIO kernel for the tests (fake_gpio.c): a backend of the GPIO source
 * (struct pl_gpio_backend, src_gpio.h) that reads edge events from a FIFO. It stands in for
 * GPIO hardware, which CI does not have. Only test programs link it: test_gpio installs it
 * with pl_gpio_use_fake(); powerlogger-fakes (main_fakes.c), the program the end-to-end
 * tests run, installs it with pl_gpio_fake_from_env() when PL_FAKE_GPIO names its FIFO, and
 * then every open logs on stderr that the source is a fake.
 *
 * The FIFO carries text lines, one event each:
 *
 *	T_NS LEVEL	an edge: the line has the raw LEVEL (0 or 1) from T_NS, nanoseconds of
 *			CLOCK_MONOTONIC as the kernel stamps them (the source converts them to
 *			wall-clock time); LEVEL 1 is a rising edge, 0 a falling one
 *	now LEVEL	the same, stamped with CLOCK_MONOTONIC when the source reads the line
 *	vanish		the chip goes away: from then on reads and the level fail with ENODEV,
 *			so the source's read() returns -PL_EIO (the daemon reopens it, which
 *			opens the FIFO again and works as before)
 *
 * Blank lines and lines starting with '#' are skipped; any other line makes read() fail with
 * -PL_EIO (and a message on stderr). Two edges of the same direction in a row are reported
 * as a loss, as with the real kernel. The FIFO is opened (O_RDWR | O_NONBLOCK, so writers may
 * come and go without an end of file) at every open of the source and closed at its close;
 * a writer should open it after the source did, or keep it open O_RDWR itself. A missing FIFO
 * makes open() fail as a missing chip does. The chip and line are not checked by the
 * PL_FAKE_GPIO fake; its level() is PL_FAKE_GPIO_LEVEL (0 or 1) if that is set, else -1
 * (unknown), until the first edge has been read, then the last edge's level.
 */
#ifndef PL_TESTS_FAKE_GPIO_H
#define PL_TESTS_FAKE_GPIO_H

/* A fake GPIO kernel: what the test sets, and what the source asked it for. */
struct pl_gpio_fake {
	/* set by the test */
	const char *fifo;    /* where the events come from (format above) */
	unsigned nlines;     /* lines of the fake chip: a higher offset fails as in the kernel
			      * (EINVAL); 0: any offset */
	int chip_must_exist; /* 1: the chip's resolved path must exist (else ENOENT) */
	int initial_level;   /* the line's level at open, 0 or 1 (-1: unknown) */
	/* filled in by the fake at every open */
	char chip[256];      /* the chip path the source resolved */
	unsigned line;       /* the offset requested */
	int flags;           /* GPIOD_LINE_REQUEST_FLAG_* requested (bias) */
	char consumer[32];
	unsigned opens, releases;
};

/*
 * Makes every later open of pl_live_gpio use the fake (NULL: libgpiod again). The fake must
 * outlive the sources opened on it. Not thread-safe.
 */
void pl_gpio_use_fake(struct pl_gpio_fake *fake);

/*
 * When PL_FAKE_GPIO is set and not empty, installs the fake that the variable names at every
 * open (it is read again each time, with PL_FAKE_GPIO_LEVEL) and returns 1; otherwise
 * changes nothing and returns 0.
 */
int pl_gpio_fake_from_env(void);

#endif
