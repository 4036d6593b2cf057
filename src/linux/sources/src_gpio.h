/*
 * The GPIO edge source (pl_live_gpio, src_gpio.c) and its FAKE kernel.
 *
 * The source reaches the kernel through a tiny backend (open the chip and request the line,
 * the event fd, read events, get the value, release): libgpiod 1.6 normally, or a fake that
 * reads edge events from a FIFO. The fake stands in for GPIO hardware, which CI does not
 * have; it is used only when a test selects it with pl_gpio_use_fake() or when the
 * environment variable PL_FAKE_GPIO names its FIFO (the daemon's end-to-end tests), never
 * otherwise, and then every open logs on stderr that the source is a fake.
 *
 * The fake's FIFO carries text lines, one event each:
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
#ifndef PL_LINUX_SRC_GPIO_H
#define PL_LINUX_SRC_GPIO_H

/* A fake GPIO kernel for the tests: what they set, and what the source asked it for. */
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
 * Makes every later open of pl_live_gpio use the fake (NULL: libgpiod again, or the fake
 * named by PL_FAKE_GPIO). The fake must outlive the sources opened on it. Not thread-safe:
 * for tests.
 */
void pl_gpio_use_fake(struct pl_gpio_fake *fake);

#endif
