/* SPDX-License-Identifier: MIT */
/*
 * The GPIO edge source (live.h): a comparator module or an S0 output on a GPIO line, read as
 * edge events through libgpiod 1.6 (the v1 character-device uAPI; no sysfs GPIO).
 *
 * The line is requested for both edges with the configured bias and WITHOUT the kernel's
 * active-low flag: levels stay raw, as for every source, and the daemon's edge filter applies
 * active_low. The event fd is non-blocking and is the source's fd. The kernel stamps events
 * with CLOCK_MONOTONIC (Linux 5.7 and later; CLOCK_REALTIME before), converted here to
 * wall-clock microseconds.
 *
 * The v1 uAPI has no sequence numbers: when the kernel's event FIFO (16 per line) is full it
 * drops events silently. Edges alternate, so two of the same direction in a row mean at
 * least one of the other direction was lost; that is what info->lost reports.
 *
 * libgpiod is reached through a tiny backend table (src_gpio.h), the seam where the tests put
 * a fake kernel (tests/fakes/fake_gpio.c) for the hardware that CI does not have.
 */
#include <errno.h>
#include <fcntl.h>
#include <gpiod.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "config/keys.h"
#include "sources/live.h"
#include "sources/src_gpio.h"

#define CONSUMER "powerlogger"
#define READ_CHUNK 16 /* libgpiod 1.6 reads at most 16 events per call */

/* ---- the configuration's keys (src_gpio.h) ---------------------------------------------- */

const char *const pl_gpio_keys[] = { "line", "bias", NULL };
const char *const pl_gpio_bias_names[] = { "as-is", "pull-up", "pull-down", "disable", NULL };

void pl_gpio_check_keys(struct pl_config_section *s, const struct pl_gpio_config *c)
{
	(void)c;
	if (!pl_config_key_line(s, "device"))
		pl_config_missing(s, "device", "the GPIO chip, e.g. device = gpiochip0");
	if (!pl_config_key_line(s, "line"))
		pl_config_missing(s, "line", "the line offset on the chip, e.g. line = 17 for "
				  "GPIO17 on a Raspberry Pi");
}

/* ---- libgpiod --------------------------------------------------------------------------- */

struct real_handle {
	struct gpiod_chip *chip;
	struct gpiod_line *line;
	int fd;
};

static int real_open(void *ctx, const struct pl_gpio_request *req, void **h,
		     enum pl_gpio_stage *stage, unsigned *nlines, char *why, size_t whylen)
{
	struct real_handle *r = calloc(1, sizeof(*r));
	int e, fl;

	(void)ctx;
	(void)why;
	(void)whylen;
	*nlines = 0;
	if (!r)
		return -ENOMEM;
	*stage = PL_GPIO_STAGE_CHIP;
	r->chip = gpiod_chip_open(req->path);
	if (!r->chip)
		goto err_free;
	*nlines = gpiod_chip_num_lines(r->chip);
	*stage = PL_GPIO_STAGE_LINE;
	r->line = gpiod_chip_get_line(r->chip, req->offset);
	if (!r->line)
		goto err_close_chip;
	*stage = PL_GPIO_STAGE_REQUEST;
	if (gpiod_line_request_both_edges_events_flags(r->line, req->consumer, req->flags) != 0)
		goto err_close_chip;
	r->fd = gpiod_line_event_get_fd(r->line);
	/* the kernel's event fd blocks by default; the loop must never block in read() */
	fl = r->fd >= 0 ? fcntl(r->fd, F_GETFL) : -1;
	if (fl < 0 || fcntl(r->fd, F_SETFL, fl | O_NONBLOCK) != 0)
		goto err_release;
	*h = r;
	return 0;

err_release:
	e = errno;
	gpiod_line_release(r->line);
	errno = e;
err_close_chip:
	e = errno;
	gpiod_chip_close(r->chip);
	errno = e;
err_free:
	e = errno ? errno : EIO;
	free(r);
	return -e;
}

static int real_event_fd(void *h)
{
	return ((struct real_handle *)h)->fd;
}

static int real_read_events(void *h, struct gpiod_line_event *ev, unsigned n)
{
	return gpiod_line_event_read_fd_multiple(((struct real_handle *)h)->fd, ev, n);
}

static int real_get_value(void *h)
{
	return gpiod_line_get_value(((struct real_handle *)h)->line);
}

static void real_release(void *h)
{
	struct real_handle *r = h;

	gpiod_line_release(r->line);
	gpiod_chip_close(r->chip);
	free(r);
}

static const struct pl_gpio_backend libgpiod_backend = {
	.open = real_open,
	.event_fd = real_event_fd,
	.read_events = real_read_events,
	.get_value = real_get_value,
	.release = real_release,
};

static const struct pl_gpio_backend *backend = &libgpiod_backend;

void pl_gpio_set_backend(const struct pl_gpio_backend *be)
{
	backend = be ? be : &libgpiod_backend;
}

/* ---- the source ------------------------------------------------------------------------- */

struct gpio_src {
	const struct pl_gpio_backend *be;
	void *h;
	const char *device; /* the configuration's, for messages (it outlives the source) */
	unsigned line;
	int last_type;      /* the previous event's GPIOD_LINE_EVENT_*; 0 before the first */
	int64_t last_t_us;
	int failed_errno;   /* a failure seen after edges that were returned first */
};

static const char *bias_name(enum pl_gpio_bias bias)
{
	switch (bias) {
	case PL_GPIO_BIAS_PULL_UP:
	case PL_GPIO_BIAS_PULL_DOWN:
	case PL_GPIO_BIAS_DISABLE:
		return pl_gpio_bias_names[bias];
	default:
		return "as-is";
	}
}

static int bias_flags(enum pl_gpio_bias bias)
{
	switch (bias) {
	case PL_GPIO_BIAS_PULL_UP:
		return GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_UP;
	case PL_GPIO_BIAS_PULL_DOWN:
		return GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_DOWN;
	case PL_GPIO_BIAS_DISABLE:
		return GPIOD_LINE_REQUEST_FLAG_BIAS_DISABLE;
	default:
		return 0;
	}
}

static void open_error(char *err, size_t errlen, const struct pl_gpio_config *cfg,
		       const char *path, int e, enum pl_gpio_stage stage, unsigned nlines,
		       const char *why)
{
	const char *dev = cfg->device;

	if (why[0]) {
		snprintf(err, errlen, "device %s: %s", dev, why);
		return;
	}
	switch (stage) {
	case PL_GPIO_STAGE_CHIP:
		if (e == ENOENT)
			snprintf(err, errlen, "device %s: no such GPIO chip (%s does not exist; "
				 "gpiodetect lists the chips)", dev, path);
		else if (e == EACCES || e == EPERM)
			snprintf(err, errlen, "device %s: permission denied on %s (run as root or "
				 "join the group that owns it, often gpio)", dev, path);
		else if (e == ENOTTY || e == ENODEV || e == EINVAL)
			snprintf(err, errlen, "device %s: %s is not a GPIO chip (give a name such as "
				 "gpiochip0 or its /dev path)", dev, path);
		else
			snprintf(err, errlen, "device %s: cannot open %s: %s", dev, path,
				 strerror(e));
		break;
	case PL_GPIO_STAGE_LINE:
		if (e == EINVAL && nlines > 0)
			snprintf(err, errlen, "device %s: no line %" PRIu32 " (the chip has %u "
				 "lines, 0 to %u; gpioinfo lists them)", dev, cfg->line, nlines,
				 nlines - 1);
		else
			snprintf(err, errlen, "device %s: cannot get line %" PRIu32 ": %s", dev,
				 cfg->line, strerror(e));
		break;
	case PL_GPIO_STAGE_REQUEST:
		if (e == EBUSY)
			snprintf(err, errlen, "device %s: line %" PRIu32 " is busy (another program "
				 "or a kernel driver holds it; gpioinfo shows the consumer)", dev,
				 cfg->line);
		else if ((e == EINVAL || e == EOPNOTSUPP || e == ENOTSUP) && bias_flags(cfg->bias))
			snprintf(err, errlen, "device %s: line %" PRIu32 ": the kernel refused bias "
				 "%s (%s; bias needs Linux 5.5 or later and a chip that supports "
				 "it; try bias = as-is with an external resistor)", dev, cfg->line,
				 bias_name(cfg->bias), strerror(e));
		else
			snprintf(err, errlen, "device %s: line %" PRIu32 ": cannot request edge "
				 "events: %s", dev, cfg->line, strerror(e));
		break;
	}
}

static int gpio_open(void **self, const void *config, char *err, size_t errlen)
{
	const struct pl_gpio_config *cfg = config;
	const char *root = cfg->dev_root && *cfg->dev_root ? cfg->dev_root : "/dev";
	char path[4096], why[256] = "";
	struct pl_gpio_request req;
	enum pl_gpio_stage stage = PL_GPIO_STAGE_CHIP;
	unsigned nlines = 0;
	struct gpio_src *s;
	int rc;

	*self = NULL;
	if (!cfg->device || !*cfg->device) {
		snprintf(err, errlen, "no GPIO chip configured (key device, e.g. gpiochip0)");
		return -PL_EINVAL;
	}
	/* a name is looked up under dev_root, as libgpiod's open_by_name does under /dev */
	if (cfg->device[0] == '/')
		rc = snprintf(path, sizeof(path), "%s", cfg->device);
	else
		rc = snprintf(path, sizeof(path), "%s/%s", root, cfg->device);
	if (rc < 0 || (size_t)rc >= sizeof(path)) {
		snprintf(err, errlen, "device %s: path too long", cfg->device);
		return -PL_EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "device %s: out of memory", cfg->device);
		return -PL_ENOMEM;
	}
	s->be = backend;
	s->device = cfg->device;
	s->line = cfg->line;
	req = (struct pl_gpio_request){ .meter = cfg->name ? cfg->name : "?", .path = path,
					.offset = cfg->line, .flags = bias_flags(cfg->bias),
					.consumer = CONSUMER };
	rc = s->be->open(s->be->ctx, &req, &s->h, &stage, &nlines, why, sizeof(why));
	if (rc != 0) {
		open_error(err, errlen, cfg, path, -rc, stage, nlines, why);
		free(s);
		if (rc == -ENOMEM)
			return -PL_ENOMEM;
		/* no such chip, no such line on it: not found */
		if ((stage == PL_GPIO_STAGE_CHIP && rc == -ENOENT) ||
		    (stage == PL_GPIO_STAGE_LINE && rc == -EINVAL))
			return -PL_ENOENT;
		return -PL_EIO;
	}
	*self = s;
	return 0;
}

static int gpio_fd(void *self)
{
	struct gpio_src *s = self;

	return s->be->event_fd(s->h);
}

static int vanished(struct gpio_src *s, int e, char *err, size_t errlen)
{
	snprintf(err, errlen, "device %s line %u: the GPIO chip failed or vanished (reading "
		 "events: %s)", s->device, s->line, strerror(e));
	return -PL_EIO;
}

static int gpio_read(void *self, void *buf, size_t cap, struct pl_live_info *info, char *err,
		     size_t errlen)
{
	struct gpio_src *s = self;
	struct pl_live_edge *out = buf;
	struct gpiod_line_event ev[READ_CHUNK];
	int64_t offset = pl_clock_wall_minus_mono_us(), mono = pl_clock_mono_us();
	int64_t real = mono + offset;
	size_t n = 0;

	*info = (struct pl_live_info){ 0 };
	if (s->failed_errno)
		return vanished(s, s->failed_errno, err, errlen);
	while (n < cap) {
		unsigned want = cap - n < READ_CHUNK ? (unsigned)(cap - n) : READ_CHUNK;
		int got = s->be->read_events(s->h, ev, want);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (got < 0) {
			/* the edges read so far are good: return them, fail on the next call */
			if (n > 0) {
				s->failed_errno = errno;
				break;
			}
			return vanished(s, errno, err, errlen);
		}
		for (int i = 0; i < got; i++) {
			int64_t t = (int64_t)ev[i].ts.tv_sec * PL_US_PER_S + ev[i].ts.tv_nsec / 1000;

			/* Linux before 5.7 stamped with CLOCK_REALTIME: take the nearer clock */
			if (llabs(t - real) >= llabs(t - mono))
				t += offset;
			if (ev[i].event_type == s->last_type) {
				/* rising, rising: a falling edge between them was dropped */
				if (info->lost == 0)
					info->gap_from_us = s->last_t_us;
				info->lost++;
				info->gap_to_us = t;
			}
			s->last_type = ev[i].event_type;
			s->last_t_us = t;
			out[n].t_us = t;
			out[n].level = ev[i].event_type == GPIOD_LINE_EVENT_RISING_EDGE ? 1 : 0;
			n++;
		}
		if ((unsigned)got < want)
			break;
	}
	return (int)n;
}

static int gpio_level(void *self)
{
	struct gpio_src *s = self;
	int v = s->be->get_value(s->h);

	return v < 0 ? -1 : v != 0;
}

static void gpio_close(void *self)
{
	struct gpio_src *s = self;

	if (!s)
		return;
	s->be->release(s->h);
	free(s);
}

const struct pl_live_ops pl_live_gpio = {
	.name = "gpio",
	.kind = PL_LIVE_EDGES,
	.open = gpio_open,
	.fd = gpio_fd,
	.read = gpio_read,
	.level = gpio_level,
	.close = gpio_close,
};
