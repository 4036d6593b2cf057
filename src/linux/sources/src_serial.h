/* SPDX-License-Identifier: MIT */
/*
 * The serial edge source (pl_live_serial, src_serial.c): its configuration, its keys in the
 * configuration file, and the backend through which it reaches the tty.
 *
 * The backend is a tiny table (open, wait for a change, get the lines, get the interrupt
 * counters, close): the real ioctls in the product. A program may install another with
 * pl_serial_set_backend(); the tests do, with a fake that reads modem-line changes from a
 * FIFO (tests/fakes/fake_serial.c), because CI has no serial port with an S0 output on it.
 * The product installs none.
 */
#ifndef PL_LINUX_SRC_SERIAL_H
#define PL_LINUX_SRC_SERIAL_H

#include <stddef.h>

struct serial_icounter_struct; /* <linux/serial.h> */
struct pl_config_section;      /* config/keys.h */

/* Key pin: the modem-status input the S0 output is wired to. */
enum pl_serial_pin {
	PL_SERIAL_PIN_CTS = 0,
	PL_SERIAL_PIN_DCD,
	PL_SERIAL_PIN_DSR,
	PL_SERIAL_PIN_RI, /* 8250-type UARTs count only its trailing edge: prefer the others */
};

/*
 * What pl_live_serial.open() takes. Fill it with designated initialisers; what is left zero
 * is the default. The strings must outlive the source.
 */
struct pl_serial_config {
	const char *name;     /* the meter's, for messages; may be NULL */
	const char *device;   /* the tty: a name under dev_root ("ttyUSB0") or a path; required */
	enum pl_serial_pin pin;
	const char *dev_root; /* where names are looked up; NULL or "": "/dev" */
};

/* The keys only source = serial takes (config.c refuses them elsewhere), NULL-terminated. */
extern const char *const pl_serial_keys[];
/* The values of key pin, in the order of enum pl_serial_pin, NULL-terminated. */
extern const char *const pl_serial_pin_names[];

/*
 * Checks what a [meter NAME] section with source = serial must have (the port), reporting
 * through config/keys.h. Called by the configuration parser.
 */
void pl_serial_check_keys(struct pl_config_section *s, const struct pl_serial_config *c);

/* ---- the backend ------------------------------------------------------------------------ */

/* Which step of opening failed. */
enum pl_serial_stage {
	PL_SERIAL_STAGE_OPEN, /* opening the path */
	PL_SERIAL_STAGE_TTY,  /* it opened, but is not a tty */
};

/* The few tty calls the source needs; errors are -1 with errno. */
struct pl_serial_backend {
	/*
	 * Opens the tty at path for the meter (its name, for the backend's own messages).
	 * Returns 0 with *h, or -errno with *stage. A backend that knows better than errno what
	 * is wrong writes it to why ("no such serial port (...)"), which is "" on entry; the
	 * source then reports "device DEV: WHY".
	 */
	int (*open)(void *ctx, const char *meter, const char *path, void **h,
		    enum pl_serial_stage *stage, char *why, size_t whylen);
	/* Blocks until a line in mask (TIOCM_*) changes (TIOCMIWAIT); EINTR when signalled. */
	int (*wait)(void *h, int mask);
	int (*get_lines)(void *h, int *bits); /* TIOCM_* bits (TIOCMGET) */
	int (*get_counts)(void *h, struct serial_icounter_struct *c); /* TIOCGICOUNT */
	void (*close)(void *h);
	void *ctx; /* passed to open */
};

/*
 * Makes every later open of pl_live_serial use be (NULL: the real tty again). be must
 * outlive the sources opened on it. Not thread-safe: call it before sources are opened.
 */
void pl_serial_set_backend(const struct pl_serial_backend *be);

#endif
