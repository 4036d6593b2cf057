/* SPDX-License-Identifier: MIT */
/*
 * A FAKE GPIO kernel (fake_gpio.h): edge events from a FIFO, behind the GPIO source's backend
 * table (src_gpio.h), for CI without GPIO hardware. Test programs only.
 */
#include <errno.h>
#include <fcntl.h>
#include <gpiod.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fake_gpio.h"
#include "sources/src_gpio.h"

static struct pl_gpio_fake env_fake; /* PL_FAKE_GPIO's, set again at every open */

struct fake_handle {
	struct pl_gpio_fake *fake;
	int fd;
	int value;      /* the last edge's level; -1 unknown */
	int vanished;
	int pending_errno; /* a bad line met after events that were returned first */
	char line[128];
	size_t len;
};

static int fake_open(void *ctx, const struct pl_gpio_request *req, void **h,
		     enum pl_gpio_stage *stage, unsigned *nlines, char *why, size_t whylen)
{
	struct pl_gpio_fake *f = ctx;
	struct fake_handle *k;
	struct stat st;

	(void)why;
	(void)whylen;
	snprintf(f->chip, sizeof(f->chip), "%s", req->path);
	f->line = req->offset;
	f->flags = req->flags;
	snprintf(f->consumer, sizeof(f->consumer), "%s", req->consumer);
	*nlines = f->nlines;
	*stage = PL_GPIO_STAGE_CHIP;
	if (f->chip_must_exist && stat(req->path, &st) != 0)
		return -errno;
	*stage = PL_GPIO_STAGE_LINE;
	if (f->nlines && req->offset >= f->nlines)
		return -EINVAL;
	*stage = PL_GPIO_STAGE_CHIP;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->fd = open(f->fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (k->fd < 0) {
		int e = errno;

		free(k);
		return -e;
	}
	k->fake = f;
	k->value = f->initial_level;
	f->opens++;
	*h = k;
	return 0;
}

static int fake_event_fd(void *h)
{
	return ((struct fake_handle *)h)->fd;
}

/*
 * Parses one line into *ev; returns 1 for an event, 0 for a line to skip, -1 with errno for
 * "vanish" (ENODEV) or a malformed line (EINVAL).
 */
static int fake_parse(struct fake_handle *k, struct gpiod_line_event *ev)
{
	char *s = k->line, *end;
	long long ns;
	int level;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '\0' || *s == '#')
		return 0;
	if (strcmp(s, "vanish") == 0) {
		k->vanished = 1;
		errno = ENODEV;
		return -1;
	}
	if (strncmp(s, "now", 3) == 0) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ns = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
		end = s + 3;
	} else {
		errno = 0;
		ns = strtoll(s, &end, 10);
		if (end == s || errno != 0 || ns < 0)
			goto bad;
	}
	while (*end == ' ' || *end == '\t')
		end++;
	if ((end[0] != '0' && end[0] != '1') || (end[1] != '\0' && end[1] != ' '))
		goto bad;
	level = end[0] - '0';
	ev->ts.tv_sec = (time_t)(ns / 1000000000LL);
	ev->ts.tv_nsec = (long)(ns % 1000000000LL);
	ev->event_type = level ? GPIOD_LINE_EVENT_RISING_EDGE : GPIOD_LINE_EVENT_FALLING_EDGE;
	k->value = level;
	return 1;
bad:
	fprintf(stderr, "powerlogger: error: gpio FAKE: malformed line \"%s\" (want \"T_NS LEVEL\", "
		"\"now LEVEL\" or \"vanish\")\n", k->line);
	errno = EINVAL;
	return -1;
}

/*
 * Reads the FIFO one byte at a time, never past the last line it returns: what stays unread
 * keeps the fd readable, as the kernel's event fd stays readable while events are queued.
 * Slow, and fine for a fake.
 */
static int fake_read_events(void *h, struct gpiod_line_event *ev, unsigned n)
{
	struct fake_handle *k = h;
	unsigned got = 0;

	if (k->vanished || k->pending_errno) {
		errno = k->vanished ? ENODEV : k->pending_errno;
		k->pending_errno = 0;
		return -1;
	}
	while (got < n) {
		char c;
		ssize_t r = read(k->fd, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (c != '\n') {
			if (k->len + 1 < sizeof(k->line))
				k->line[k->len++] = c;
			continue;
		}
		k->line[k->len] = '\0';
		k->len = 0;
		int rc = fake_parse(k, &ev[got]);
		if (rc < 0 && got == 0)
			return -1;
		if (rc < 0) {
			/* the events before it first; the failure on the next call */
			if (!k->vanished)
				k->pending_errno = errno;
			break;
		}
		got += (unsigned)rc;
	}
	if (got == 0) {
		errno = EAGAIN;
		return -1;
	}
	return (int)got;
}

static int fake_get_value(void *h)
{
	struct fake_handle *k = h;

	if (k->vanished) {
		errno = ENODEV;
		return -1;
	}
	return k->value;
}

static void fake_release(void *h)
{
	struct fake_handle *k = h;

	k->fake->releases++;
	close(k->fd);
	free(k);
}

static struct pl_gpio_backend fake_backend = {
	.open = fake_open,
	.event_fd = fake_event_fd,
	.read_events = fake_read_events,
	.get_value = fake_get_value,
	.release = fake_release,
};

void pl_gpio_use_fake(struct pl_gpio_fake *fake)
{
	fake_backend.open = fake_open;
	fake_backend.ctx = fake;
	pl_gpio_set_backend(fake ? &fake_backend : NULL);
}

/* PL_FAKE_GPIO's fake: any chip and line; the variables are read at every open. */
static int env_open(void *ctx, const struct pl_gpio_request *req, void **h,
		    enum pl_gpio_stage *stage, unsigned *nlines, char *why, size_t whylen)
{
	const char *env = getenv("PL_FAKE_GPIO"), *level = getenv("PL_FAKE_GPIO_LEVEL");
	int rc;

	(void)ctx;
	if (!env || !*env) {
		*stage = PL_GPIO_STAGE_CHIP;
		snprintf(why, whylen, "no such GPIO chip (the FAKE's PL_FAKE_GPIO is not set)");
		return -ENOENT;
	}
	env_fake = (struct pl_gpio_fake){ .fifo = env, .initial_level = -1 };
	if (level && (strcmp(level, "0") == 0 || strcmp(level, "1") == 0))
		env_fake.initial_level = level[0] - '0';
	fprintf(stderr, "powerlogger: warning: meter %s: gpio source is a FAKE for tests "
		"(PL_FAKE_GPIO=%s): edges come from that FIFO, not from GPIO hardware\n",
		req->meter, env);
	rc = fake_open(&env_fake, req, h, stage, nlines, why, whylen);
	if (rc == -ENOENT && *stage == PL_GPIO_STAGE_CHIP)
		snprintf(why, whylen, "no such GPIO chip (the FAKE's FIFO %s does not exist)", env);
	return rc;
}

int pl_gpio_fake_from_env(void)
{
	const char *env = getenv("PL_FAKE_GPIO");

	if (!env || !*env)
		return 0;
	fake_backend.open = env_open;
	fake_backend.ctx = NULL;
	pl_gpio_set_backend(&fake_backend);
	return 1;
}
