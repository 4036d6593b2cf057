/* SPDX-License-Identifier: MIT */
/*
 * The GPIO edge source (pl_live_gpio, src_gpio.c): its configuration, its keys in the
 * configuration file, and the backend through which it reaches the kernel.
 *
 * The backend is a tiny table (open the chip and request the line, the event fd, read events,
 * get the value, release): libgpiod 1.6 in the product. A program may install another with
 * pl_gpio_set_backend(); the tests do, with a fake that reads edge events from a FIFO
 * (tests/fakes/fake_gpio.c), because CI has no GPIO hardware. The product installs none.
 */
#ifndef PL_LINUX_SRC_GPIO_H
#define PL_LINUX_SRC_GPIO_H

#include <stddef.h>
#include <stdint.h>

struct gpiod_line_event;  /* <gpiod.h> */
struct pl_config_section; /* config/keys.h */

/* Key bias: the line's pull resistor. */
enum pl_gpio_bias {
	PL_GPIO_BIAS_AS_IS = 0, /* leave it as the board or an earlier user set it */
	PL_GPIO_BIAS_PULL_UP,
	PL_GPIO_BIAS_PULL_DOWN,
	PL_GPIO_BIAS_DISABLE,
};

/*
 * What pl_live_gpio.open() takes. Fill it with designated initialisers; what is left zero
 * is the default. The strings must outlive the source.
 */
struct pl_gpio_config {
	const char *name;       /* the meter's, for messages; may be NULL */
	const char *device;     /* the chip: a name under dev_root ("gpiochip0") or a path
				 * ("/dev/gpiochip0"); required */
	uint32_t line;          /* the line's offset on the chip */
	enum pl_gpio_bias bias;
	const char *dev_root;   /* where chip names are looked up; NULL or "": "/dev" */
};

/* The keys only source = gpio takes (config.c refuses them elsewhere), NULL-terminated. */
extern const char *const pl_gpio_keys[];
/* The values of key bias, in the order of enum pl_gpio_bias, NULL-terminated. */
extern const char *const pl_gpio_bias_names[];

/*
 * Checks what a [meter NAME] section with source = gpio must have (the chip, the line),
 * reporting "FILE:LINE: [meter NAME]: missing key ..." through config/keys.h. Called by the
 * configuration parser.
 */
void pl_gpio_check_keys(struct pl_config_section *s, const struct pl_gpio_config *c);

/* ---- the backend ------------------------------------------------------------------------ */

/* Which step of opening failed. */
enum pl_gpio_stage {
	PL_GPIO_STAGE_CHIP,    /* opening the chip */
	PL_GPIO_STAGE_LINE,    /* getting the line */
	PL_GPIO_STAGE_REQUEST, /* requesting its edge events */
};

/* What the source asks a backend to open. */
struct pl_gpio_request {
	const char *meter;    /* the meter's name, for the backend's own messages; never NULL */
	const char *path;     /* the chip's path, resolved from device and dev_root */
	unsigned offset;      /* the line */
	int flags;            /* GPIOD_LINE_REQUEST_FLAG_* (the bias; never active-low) */
	const char *consumer; /* the name the kernel shows as the line's user */
};

/* The few kernel calls the source needs; errors are -1 (or NULL) with errno, as libgpiod's. */
struct pl_gpio_backend {
	/*
	 * Opens the chip and requests the line for both-edge events, the event fd non-blocking.
	 * Returns 0 with *h, or -errno with *stage saying which step failed and *nlines the
	 * chip's line count when known (0 otherwise). A backend that knows better than errno
	 * what is wrong writes it to why ("no such GPIO chip (...)"), which is "" on entry; the
	 * source then reports "device DEV: WHY".
	 */
	int (*open)(void *ctx, const struct pl_gpio_request *req, void **h,
		    enum pl_gpio_stage *stage, unsigned *nlines, char *why, size_t whylen);
	int (*event_fd)(void *h);
	/* Up to n events without blocking: how many, or -1 with errno (EAGAIN: none now). */
	int (*read_events)(void *h, struct gpiod_line_event *ev, unsigned n);
	int (*get_value)(void *h); /* 0/1, or -1 with errno */
	void (*release)(void *h);
	void *ctx; /* passed to open */
};

/*
 * Makes every later open of pl_live_gpio use be (NULL: libgpiod again). be must outlive the
 * sources opened on it. Not thread-safe: call it before sources are opened.
 */
void pl_gpio_set_backend(const struct pl_gpio_backend *be);

#endif
