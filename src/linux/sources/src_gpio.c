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
 * libgpiod is reached through a tiny backend table so that a fake (src_gpio.h) can stand in
 * for the hardware that CI does not have.
 */
#include <errno.h>
#include <fcntl.h>
#include <gpiod.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sources/live.h"
#include "sources/src_gpio.h"

#define CONSUMER "powerlogger"
#define READ_CHUNK 16 /* libgpiod 1.6 reads at most 16 events per call */

enum open_stage { STAGE_CHIP, STAGE_LINE, STAGE_REQUEST };

/* The few kernel calls the source needs; errors are -1 (or NULL) with errno, as libgpiod's. */
struct gpio_backend {
	/*
	 * Opens the chip at path and requests line offset for both-edge events with flags
	 * (GPIOD_LINE_REQUEST_FLAG_*). Returns 0 with *h, or -errno with *stage saying which step
	 * failed and *nlines the chip's line count when known (0 otherwise).
	 */
	int (*open)(void **h, const char *path, unsigned offset, int flags, enum open_stage *stage,
		    unsigned *nlines);
	int (*event_fd)(void *h);
	/* Up to n events without blocking: how many, or -1 with errno (EAGAIN: none now). */
	int (*read_events)(void *h, struct gpiod_line_event *ev, unsigned n);
	int (*get_value)(void *h); /* 0/1, or -1 with errno */
	void (*release)(void *h);
};

/* ---- libgpiod --------------------------------------------------------------------------- */

struct real_handle {
	struct gpiod_chip *chip;
	struct gpiod_line *line;
	int fd;
};

static int real_open(void **h, const char *path, unsigned offset, int flags,
		     enum open_stage *stage, unsigned *nlines)
{
	struct real_handle *r = calloc(1, sizeof(*r));
	int e, fl;

	*nlines = 0;
	if (!r)
		return -ENOMEM;
	*stage = STAGE_CHIP;
	r->chip = gpiod_chip_open(path);
	if (!r->chip)
		goto err_free;
	*nlines = gpiod_chip_num_lines(r->chip);
	*stage = STAGE_LINE;
	r->line = gpiod_chip_get_line(r->chip, offset);
	if (!r->line)
		goto err_close_chip;
	*stage = STAGE_REQUEST;
	if (gpiod_line_request_both_edges_events_flags(r->line, CONSUMER, flags) != 0)
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

static const struct gpio_backend real_backend = {
	.open = real_open,
	.event_fd = real_event_fd,
	.read_events = real_read_events,
	.get_value = real_get_value,
	.release = real_release,
};

/* ---- the FAKE kernel (src_gpio.h): events from a FIFO, for CI without GPIO hardware ---- */

static struct pl_gpio_fake *test_fake;  /* set by pl_gpio_use_fake() */
static struct pl_gpio_fake env_fake;    /* PL_FAKE_GPIO */
static struct pl_gpio_fake *active_fake; /* the one the next fake_open() serves */

struct fake_handle {
	struct pl_gpio_fake *fake;
	int fd;
	int value;      /* the last edge's level; -1 unknown */
	int vanished;
	int pending_errno; /* a bad line met after events that were returned first */
	char line[128];
	size_t len;
};

void pl_gpio_use_fake(struct pl_gpio_fake *fake)
{
	test_fake = fake;
}

static int fake_open(void **h, const char *path, unsigned offset, int flags,
		     enum open_stage *stage, unsigned *nlines)
{
	struct pl_gpio_fake *f = active_fake;
	struct fake_handle *k;
	struct stat st;

	snprintf(f->chip, sizeof(f->chip), "%s", path);
	f->line = offset;
	f->flags = flags;
	snprintf(f->consumer, sizeof(f->consumer), "%s", CONSUMER);
	*nlines = f->nlines;
	*stage = STAGE_CHIP;
	if (f->chip_must_exist && stat(path, &st) != 0)
		return -errno;
	*stage = STAGE_LINE;
	if (f->nlines && offset >= f->nlines)
		return -EINVAL;
	*stage = STAGE_CHIP;
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

static const struct gpio_backend fake_backend = {
	.open = fake_open,
	.event_fd = fake_event_fd,
	.read_events = fake_read_events,
	.get_value = fake_get_value,
	.release = fake_release,
};

/* ---- the source ------------------------------------------------------------------------- */

struct gpio_src {
	const struct gpio_backend *be;
	void *h;
	const char *device; /* the configuration's, for messages (it outlives the source) */
	unsigned line;
	int last_type;      /* the previous event's GPIOD_LINE_EVENT_*; 0 before the first */
	int64_t last_t_us;
	int failed_errno;   /* a failure seen after edges that were returned first */
};

static const char *bias_name(int bias)
{
	switch (bias) {
	case PL_CONFIG_BIAS_PULL_UP:
		return "pull-up";
	case PL_CONFIG_BIAS_PULL_DOWN:
		return "pull-down";
	case PL_CONFIG_BIAS_DISABLE:
		return "disable";
	default:
		return "as-is";
	}
}

static int bias_flags(int bias)
{
	switch (bias) {
	case PL_CONFIG_BIAS_PULL_UP:
		return GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_UP;
	case PL_CONFIG_BIAS_PULL_DOWN:
		return GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_DOWN;
	case PL_CONFIG_BIAS_DISABLE:
		return GPIOD_LINE_REQUEST_FLAG_BIAS_DISABLE;
	default:
		return 0;
	}
}

/* The backend to use: a test's fake, PL_FAKE_GPIO's, or libgpiod. */
static const struct gpio_backend *pick_backend(const struct pl_config_meter *cfg)
{
	const char *env = getenv("PL_FAKE_GPIO"), *level = getenv("PL_FAKE_GPIO_LEVEL");

	if (test_fake) {
		active_fake = test_fake;
		return &fake_backend;
	}
	if (env && *env) {
		env_fake = (struct pl_gpio_fake){ .fifo = env, .initial_level = -1 };
		if (level && (strcmp(level, "0") == 0 || strcmp(level, "1") == 0))
			env_fake.initial_level = level[0] - '0';
		active_fake = &env_fake;
		fprintf(stderr, "powerlogger: warning: meter %s: gpio source is a FAKE for tests "
			"(PL_FAKE_GPIO=%s): edges come from that FIFO, not from GPIO hardware\n",
			cfg->name ? cfg->name : "?", env);
		return &fake_backend;
	}
	return &real_backend;
}

static void open_error(char *err, size_t errlen, const struct pl_config_meter *cfg,
		       const char *path, int e, enum open_stage stage, unsigned nlines,
		       int fake)
{
	const char *dev = cfg->device;

	switch (stage) {
	case STAGE_CHIP:
		if (fake && e == ENOENT && active_fake == &env_fake)
			snprintf(err, errlen, "device %s: no such GPIO chip (the FAKE's FIFO %s "
				 "does not exist)", dev, active_fake->fifo);
		else if (e == ENOENT)
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
	case STAGE_LINE:
		if (e == EINVAL && nlines > 0)
			snprintf(err, errlen, "device %s: no line %" PRIu32 " (the chip has %u "
				 "lines, 0 to %u; gpioinfo lists them)", dev, cfg->channel, nlines,
				 nlines - 1);
		else
			snprintf(err, errlen, "device %s: cannot get line %" PRIu32 ": %s", dev,
				 cfg->channel, strerror(e));
		break;
	case STAGE_REQUEST:
		if (e == EBUSY)
			snprintf(err, errlen, "device %s: line %" PRIu32 " is busy (another program "
				 "or a kernel driver holds it; gpioinfo shows the consumer)", dev,
				 cfg->channel);
		else if ((e == EINVAL || e == EOPNOTSUPP || e == ENOTSUP) && bias_flags(cfg->bias))
			snprintf(err, errlen, "device %s: line %" PRIu32 ": the kernel refused bias "
				 "%s (%s; bias needs Linux 5.5 or later and a chip that supports "
				 "it; try bias = as-is with an external resistor)", dev, cfg->channel,
				 bias_name(cfg->bias), strerror(e));
		else
			snprintf(err, errlen, "device %s: line %" PRIu32 ": cannot request edge "
				 "events: %s", dev, cfg->channel, strerror(e));
		break;
	}
}

static int gpio_open(void **self, const struct pl_config_meter *cfg, char *err, size_t errlen)
{
	const char *root = cfg->dev_root && *cfg->dev_root ? cfg->dev_root : "/dev";
	char path[4096];
	enum open_stage stage = STAGE_CHIP;
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
	s->be = pick_backend(cfg);
	s->device = cfg->device;
	s->line = cfg->channel;
	rc = s->be->open(&s->h, path, cfg->channel, bias_flags(cfg->bias), &stage, &nlines);
	if (rc != 0) {
		open_error(err, errlen, cfg, path, -rc, stage, nlines, s->be == &fake_backend);
		free(s);
		if (rc == -ENOMEM)
			return -PL_ENOMEM;
		/* no such chip, no such line on it: not found */
		if ((stage == STAGE_CHIP && rc == -ENOENT) || (stage == STAGE_LINE && rc == -EINVAL))
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

static int64_t now_us(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (int64_t)ts.tv_sec * PL_US_PER_S + ts.tv_nsec / 1000;
}

static int gpio_read(void *self, void *buf, size_t cap, struct pl_live_info *info, char *err,
		     size_t errlen)
{
	struct gpio_src *s = self;
	struct pl_live_edge *out = buf;
	struct gpiod_line_event ev[READ_CHUNK];
	int64_t offset = pl_live_mono_to_real_us(), mono = now_us(CLOCK_MONOTONIC);
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
