/* SPDX-License-Identifier: MIT */
/*
 * A FAKE serial port (fake_serial.h): modem-line changes from a FIFO, behind the serial
 * source's backend table (src_serial.h), for CI without serial hardware. Test programs only.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/serial.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake_serial.h"
#include "sources/src_serial.h"

static struct pl_serial_fake env_fake; /* PL_FAKE_SERIAL's, set again at every open */

#define ALL_LINES (TIOCM_CTS | TIOCM_CAR | TIOCM_DSR | TIOCM_RNG)

struct fake_handle {
	struct pl_serial_fake *fake;
	int fd;
	pthread_mutex_t lock; /* bits, counts and vanished: the thread writes, level() reads */
	int bits;
	struct serial_icounter_struct counts;
	int vanished;
	char line[128];       /* the wait's partial line (kept across EINTR) */
	size_t len;
};

static int fake_open(void *ctx, const char *meter, const char *path, void **h,
		     enum pl_serial_stage *stage, char *why, size_t whylen)
{
	struct pl_serial_fake *f = ctx;
	struct fake_handle *k;
	struct stat st;
	int e;

	(void)meter;
	(void)why;
	(void)whylen;
	snprintf(f->device, sizeof(f->device), "%s", path);
	*stage = PL_SERIAL_STAGE_OPEN;
	if (f->must_exist && stat(path, &st) != 0)
		return -errno;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->fd = open(f->fifo, O_RDWR | O_CLOEXEC);
	if (k->fd < 0) {
		e = errno;
		free(k);
		return -e;
	}
	pthread_mutex_init(&k->lock, NULL);
	k->fake = f;
	k->bits = f->initial_level ? ALL_LINES : 0;
	f->opens++;
	*h = k;
	return 0;
}

static int *counter_of(struct serial_icounter_struct *c, int mask)
{
	switch (mask) {
	case TIOCM_CAR:
		return &c->dcd;
	case TIOCM_DSR:
		return &c->dsr;
	case TIOCM_RNG:
		return &c->rng;
	default:
		return &c->cts;
	}
}

/* Applies one line of the FIFO: 1 when it was a change, 0 to skip, -1 with errno. */
static int fake_apply(struct fake_handle *k, int mask)
{
	char *s = k->line, *end;
	long level, n = 1;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '\0' || *s == '#')
		return 0;
	if (strcmp(s, "vanish") == 0) {
		pthread_mutex_lock(&k->lock);
		k->vanished = 1;
		pthread_mutex_unlock(&k->lock);
		errno = EIO;
		return -1;
	}
	level = strtol(s, &end, 10);
	if (end == s || (level != 0 && level != 1))
		goto bad;
	s = end;
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s) {
		n = strtol(s, &end, 10);
		if (end == s || *end || n < 0 || n > 1000000)
			goto bad;
	}
	pthread_mutex_lock(&k->lock);
	k->bits = level ? k->bits | mask : k->bits & ~mask;
	*counter_of(&k->counts, mask) += (int)n;
	pthread_mutex_unlock(&k->lock);
	return 1;
bad:
	fprintf(stderr, "powerlogger: error: serial FAKE: malformed line \"%s\" (want \"LEVEL\", "
		"\"LEVEL N\" or \"vanish\")\n", k->line);
	errno = EINVAL;
	return -1;
}

/* Blocks in read() on the FIFO, as the real one does in TIOCMIWAIT; EINTR wakes it alike. */
static int fake_wait(void *h, int mask)
{
	struct fake_handle *k = h;

	k->fake->mask = mask;
	for (;;) {
		char c;
		ssize_t r;
		int rc;

		pthread_mutex_lock(&k->lock);
		rc = k->vanished;
		pthread_mutex_unlock(&k->lock);
		if (rc) {
			errno = EIO;
			return -1;
		}
		r = read(k->fd, &c, 1);
		if (r < 0)
			return -1; /* EINTR included: close() is waking us */
		if (r == 0) {
			errno = EIO;
			return -1;
		}
		if (c != '\n') {
			if (k->len + 1 < sizeof(k->line))
				k->line[k->len++] = c;
			continue;
		}
		k->line[k->len] = '\0';
		k->len = 0;
		rc = fake_apply(k, mask);
		if (rc != 0)
			return rc > 0 ? 0 : -1;
	}
}

static int fake_get_lines(void *h, int *bits)
{
	struct fake_handle *k = h;
	int rc = 0;

	pthread_mutex_lock(&k->lock);
	if (k->vanished) {
		errno = EIO;
		rc = -1;
	} else {
		*bits = k->bits;
	}
	pthread_mutex_unlock(&k->lock);
	return rc;
}

static int fake_get_counts(void *h, struct serial_icounter_struct *c)
{
	struct fake_handle *k = h;
	int rc = 0;

	pthread_mutex_lock(&k->lock);
	if (k->fake->no_counts || k->vanished) {
		errno = k->vanished ? EIO : ENOTTY;
		rc = -1;
	} else {
		*c = k->counts;
	}
	pthread_mutex_unlock(&k->lock);
	return rc;
}

static void fake_close(void *h)
{
	struct fake_handle *k = h;

	k->fake->closes++;
	close(k->fd);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

static struct pl_serial_backend fake_backend = {
	.open = fake_open,
	.wait = fake_wait,
	.get_lines = fake_get_lines,
	.get_counts = fake_get_counts,
	.close = fake_close,
};

void pl_serial_use_fake(struct pl_serial_fake *fake)
{
	fake_backend.open = fake_open;
	fake_backend.ctx = fake;
	pl_serial_set_backend(fake ? &fake_backend : NULL);
}

/* PL_FAKE_SERIAL's fake: any device; the variables are read at every open. */
static int env_open(void *ctx, const char *meter, const char *path, void **h,
		    enum pl_serial_stage *stage, char *why, size_t whylen)
{
	const char *env = getenv("PL_FAKE_SERIAL"), *level = getenv("PL_FAKE_SERIAL_LEVEL");
	int rc;

	(void)ctx;
	if (!env || !*env) {
		*stage = PL_SERIAL_STAGE_OPEN;
		snprintf(why, whylen, "no such serial port (the FAKE's PL_FAKE_SERIAL is not set)");
		return -ENOENT;
	}
	env_fake = (struct pl_serial_fake){ .fifo = env };
	if (level && strcmp(level, "1") == 0)
		env_fake.initial_level = 1;
	fprintf(stderr, "powerlogger: warning: meter %s: serial source is a FAKE for tests "
		"(PL_FAKE_SERIAL=%s): modem-line changes come from that FIFO, not from a "
		"serial port\n", meter, env);
	rc = fake_open(&env_fake, meter, path, h, stage, why, whylen);
	if (rc == -ENOENT && *stage == PL_SERIAL_STAGE_OPEN)
		snprintf(why, whylen, "no such serial port (the FAKE's FIFO %s does not exist)",
			 env);
	return rc;
}

int pl_serial_fake_from_env(void)
{
	const char *env = getenv("PL_FAKE_SERIAL");

	if (!env || !*env)
		return 0;
	fake_backend.open = env_open;
	fake_backend.ctx = NULL;
	pl_serial_set_backend(&fake_backend);
	return 1;
}
