/* SPDX-License-Identifier: MIT */
/*
 * A FAKE serial port for the tests (fake_serial.c): a backend of the serial source
 * (struct pl_serial_backend, src_serial.h) that reads modem-line changes from a FIFO. It
 * stands in for serial hardware with S0 wiring, which CI does not have. Only test programs
 * link it: test_serial installs it with pl_serial_use_fake(); powerlogger-fakes
 * (main_fakes.c), the program the end-to-end tests run, installs it with
 * pl_serial_fake_from_env() when PL_FAKE_SERIAL names its FIFO, and then every open logs on
 * stderr that the source is a fake.
 *
 * The FIFO carries text lines, one change each, read by the source's thread where the real
 * one waits in TIOCMIWAIT:
 *
 *	LEVEL		the configured modem line changed and now has the raw LEVEL (1: its
 *			TIOCMGET bit set, 0: clear); its interrupt counter advances by one
 *	LEVEL N		the same with the counter advanced by N (N >= 0): N larger than one
 *			level change means the source missed transitions, as when the line
 *			changes again before the thread waits again; read() reports them in
 *			info->lost ("0 2" from level 0: a whole pulse missed, lost 2, no edge)
 *	vanish		the port goes away: the wait fails with EIO, as when a USB adapter is
 *			unplugged, so the source's read() returns -PL_EIO (the daemon reopens it,
 *			which opens the FIFO again and works as before)
 *
 * Blank lines and lines starting with '#' are skipped; any other line fails the wait with
 * EINVAL (read() returns -PL_EIO, and a message goes to stderr). The edge's time is the wall
 * clock when the source's thread read the line. The FIFO is opened O_RDWR (blocking: the
 * thread waits in it) at every open of the source and closed at its close; a writer should
 * open it after the source did, or keep it open O_RDWR itself. A missing FIFO makes open()
 * fail as a missing port does. PL_FAKE_SERIAL's fake ignores the device; its lines are all
 * at level 0 at open, or at PL_FAKE_SERIAL_LEVEL (0 or 1) if that is set.
 */
#ifndef PL_TESTS_FAKE_SERIAL_H
#define PL_TESTS_FAKE_SERIAL_H

/* A fake serial port: what the test sets, and what the source asked it for. */
struct pl_serial_fake {
	/* set by the test */
	const char *fifo;      /* where the changes come from (format above) */
	int must_exist;        /* 1: the device's resolved path must exist (else ENOENT) */
	int initial_level;     /* every modem line's level at open, 0 or 1 */
	int no_counts;         /* 1: TIOCGICOUNT unsupported (ENOTTY), as on some drivers */
	/* filled in by the fake */
	char device[256];      /* the path the source resolved */
	int mask;              /* the TIOCM_* mask of the last wait */
	unsigned opens, closes;
};

/*
 * Makes every later open of pl_live_serial use the fake (NULL: the real tty again). The fake
 * must outlive the sources opened on it. Not thread-safe.
 */
void pl_serial_use_fake(struct pl_serial_fake *fake);

/*
 * When PL_FAKE_SERIAL is set and not empty, installs the fake that the variable names at
 * every open (it is read again each time, with PL_FAKE_SERIAL_LEVEL) and returns 1;
 * otherwise changes nothing and returns 0.
 */
int pl_serial_fake_from_env(void);

#endif
