/* SPDX-License-Identifier: MIT */
/*
 * The serial edge source (live.h): an S0 output wired to a serial port's modem-status input
 * (CTS, DCD, DSR or RI), typically powered from RTS or DTR.
 *
 * The kernel offers no fd to poll for modem-status changes, only TIOCMIWAIT, which blocks.
 * So a thread of the source's own waits in it, reads the lines (TIOCMGET), stamps the wall
 * clock and hands each edge to the loop through a pipe whose read end is the source's fd.
 * TIOCMIWAIT only returns for changes after it was entered: a transition between two waits
 * is seen only at the next one. The port's interrupt counters (TIOCGICOUNT) count every
 * transition, so a counter that advanced by more than the level changes we saw is a loss,
 * reported in info->lost. Drivers without TIOCGICOUNT give edges without loss detection.
 *
 * RI on 8250-type UARTs counts only the trailing edge (the TERI bit): there one pulse is one
 * wake at the same level, so CTS, DSR or DCD are the inputs to wire.
 *
 * Stopping the thread: TIOCMIWAIT sleeps interruptibly, so close() signals the thread
 * (SIGURG, with a handler that does nothing, installed without SA_RESTART) until it has
 * left; the ioctl returns EINTR and the thread sees the stop flag. The signal is sent again
 * every few milliseconds because one sent just before the thread enters the ioctl would be
 * lost. Bounded: if the thread has not left after two seconds (a driver that waits
 * uninterruptibly), it is detached and frees the source itself when it leaves.
 *
 * The ioctls are reached through a tiny backend table (src_serial.h), the seam where the
 * tests put a fake tty (tests/fakes/fake_serial.c) for the hardware that CI does not have.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/serial.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "config/keys.h"
#include "sources/live.h"
#include "sources/src_serial.h"

#define WAKE_SIGNAL SIGURG     /* ignored by default: harmless if it ever strays */
#define STOP_POLL_NS 5000000L  /* how often close() signals the thread */
#define STOP_TRIES 400         /* 400 x 5 ms: two seconds */
#define READ_CHUNK 64          /* records per read() of the pipe */

/* ---- the configuration's keys (src_serial.h) ---------------------------------------------- */

const char *const pl_serial_keys[] = { "pin", NULL };
const char *const pl_serial_pin_names[] = { "cts", "dcd", "dsr", "ri", NULL };

void pl_serial_check_keys(struct pl_config_section *s, const struct pl_serial_config *c)
{
	(void)c;
	if (!pl_config_key_line(s, "device"))
		pl_config_missing(s, "device", "the serial port, e.g. device = /dev/ttyUSB0");
}

/* ---- the tty ---------------------------------------------------------------------------- */

struct real_handle {
	int fd;
};

static int real_open(void *ctx, const char *meter, const char *path, void **h,
		     enum pl_serial_stage *stage, char *why, size_t whylen)
{
	struct real_handle *r = malloc(sizeof(*r));
	struct termios tio;
	int bits = TIOCM_DTR | TIOCM_RTS, e;

	(void)ctx;
	(void)meter;
	(void)why;
	(void)whylen;
	if (!r)
		return -ENOMEM;
	*stage = PL_SERIAL_STAGE_OPEN;
	r->fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (r->fd < 0)
		goto err_free;
	*stage = PL_SERIAL_STAGE_TTY;
	if (tcgetattr(r->fd, &tio) != 0)
		goto err_close;
	/* Without CLOCAL a falling DCD hangs the port up, and every later ioctl fails with EIO. */
	tio.c_cflag |= CLOCAL;
	if (tcsetattr(r->fd, TCSANOW, &tio) != 0)
		goto err_close;
	/* An S0 output is often powered from RTS or DTR: assert both (not every tty has them). */
	(void)ioctl(r->fd, TIOCMBIS, &bits);
	*h = r;
	return 0;

err_close:
	e = errno;
	close(r->fd);
	errno = e;
err_free:
	e = errno;
	free(r);
	return -e;
}

static int real_wait(void *h, int mask)
{
	return ioctl(((struct real_handle *)h)->fd, TIOCMIWAIT, (unsigned long)mask);
}

static int real_get_lines(void *h, int *bits)
{
	return ioctl(((struct real_handle *)h)->fd, TIOCMGET, bits);
}

static int real_get_counts(void *h, struct serial_icounter_struct *c)
{
	return ioctl(((struct real_handle *)h)->fd, TIOCGICOUNT, c);
}

static void real_close(void *h)
{
	struct real_handle *r = h;

	close(r->fd);
	free(r);
}

static const struct pl_serial_backend tty_backend = {
	.open = real_open,
	.wait = real_wait,
	.get_lines = real_get_lines,
	.get_counts = real_get_counts,
	.close = real_close,
};

static const struct pl_serial_backend *backend = &tty_backend;

void pl_serial_set_backend(const struct pl_serial_backend *be)
{
	backend = be ? be : &tty_backend;
}

/* ---- the source ------------------------------------------------------------------------- */

enum rec_kind { REC_EDGE = 1, REC_LOST, REC_FAIL };
enum fail_op { OP_WAIT = 1, OP_LINES, OP_COUNTS };

/* What the thread tells the loop: whole records, written atomically (< PIPE_BUF). */
struct record {
	int64_t t_us;        /* REC_EDGE: wall clock */
	int64_t gap_from_us; /* lost > 0: the span of the loss */
	int64_t gap_to_us;
	uint32_t lost;       /* transitions missed before this record */
	int32_t err;         /* REC_FAIL: errno */
	int8_t kind;
	int8_t level;        /* REC_EDGE */
	int8_t op;           /* REC_FAIL: enum fail_op */
};

struct serial_src {
	const struct pl_serial_backend *be;
	void *h;
	const char *device;  /* the configuration's, for messages (it outlives the source) */
	const char *line_name;
	int mask;            /* TIOCM_CTS, TIOCM_CAR, TIOCM_DSR or TIOCM_RNG */
	int pipe_r, pipe_w;
	pthread_t thread;
	atomic_int stop;
	atomic_int failed;   /* the thread's errno when it failed (set before its REC_FAIL) */
	atomic_int failed_op;
	/* the thread's own */
	int have_counts;
	int level;
	uint32_t accounted;  /* counter value explained by the edges and losses so far */
	int64_t last_t_us;
	uint32_t pending_lost; /* not yet told (the pipe was full) */
	int64_t pending_from, pending_to;
	/* close() against a thread that will not leave */
	pthread_mutex_t lock;
	int exited, orphaned;
	/* the reader's own */
	int read_failed;     /* a failure met after edges that were returned first */
	int read_err, read_op;
};

static void on_wake(int sig)
{
	(void)sig; /* only there to make TIOCMIWAIT return EINTR */
}

static pthread_once_t wake_once = PTHREAD_ONCE_INIT;
static int wake_installed;

static void install_wake(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_wake;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: the ioctl must return EINTR */
	wake_installed = sigaction(WAKE_SIGNAL, &sa, NULL) == 0;
}

static void free_source(struct serial_src *s)
{
	s->be->close(s->h);
	close(s->pipe_r);
	close(s->pipe_w);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* Sends a record; 0, or -1 when the pipe is full (the loop is behind). */
static int send_record(struct serial_src *s, struct record *r)
{
	ssize_t w;

	do
		w = write(s->pipe_w, r, sizeof(*r));
	while (w < 0 && errno == EINTR);
	return w == (ssize_t)sizeof(*r) ? 0 : -1;
}

static void fail(struct serial_src *s, int op, int e)
{
	struct record r = { .kind = REC_FAIL, .err = e, .op = (int8_t)op };

	atomic_store(&s->failed_op, op);
	atomic_store(&s->failed, e ? e : EIO);
	/* full pipe: the loop will drain it and then find s->failed */
	(void)send_record(s, &r);
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

/* One wake: the level now, the counter's advance, the edge and what was missed. */
static int on_change(struct serial_src *s)
{
	struct serial_icounter_struct c;
	struct record r = { 0 };
	int64_t t = pl_clock_wall_us();
	uint32_t advance, missed, changed;
	int bits, level;

	/* counters first: a transition after them shows in the level, and is accounted below */
	if (s->have_counts && s->be->get_counts(s->h, &c) != 0) {
		fail(s, OP_COUNTS, errno);
		return -1;
	}
	if (s->be->get_lines(s->h, &bits) != 0) {
		fail(s, OP_LINES, errno);
		return -1;
	}
	level = (bits & s->mask) != 0;
	changed = level != s->level;
	if (s->have_counts) {
		uint32_t now = (uint32_t)*counter_of(&c, s->mask);

		advance = now - s->accounted;
		/* a change not counted yet (in flight) must not count as lost when it is */
		s->accounted = advance >= changed ? now : s->accounted + changed;
	} else {
		advance = changed;
	}
	missed = advance > changed ? advance - changed : 0;
	if (missed) {
		if (s->pending_lost == 0)
			s->pending_from = s->last_t_us ? s->last_t_us : t;
		s->pending_lost += missed;
		s->pending_to = t;
	}
	s->level = level;
	s->last_t_us = t;
	if (!changed && !s->pending_lost)
		return 0;
	r.kind = changed ? REC_EDGE : REC_LOST;
	r.t_us = t;
	r.level = (int8_t)level;
	r.lost = s->pending_lost;
	r.gap_from_us = s->pending_from;
	r.gap_to_us = s->pending_to;
	if (send_record(s, &r) == 0) {
		s->pending_lost = 0;
	} else if (changed) {
		/* the loop is far behind: this edge is lost too */
		if (s->pending_lost == 0)
			s->pending_from = t;
		s->pending_lost++;
		s->pending_to = t;
	}
	return 0;
}

static void *watch(void *arg)
{
	struct serial_src *s = arg;
	sigset_t wake;
	int orphaned;

	sigemptyset(&wake);
	sigaddset(&wake, WAKE_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &wake, NULL);
	while (!atomic_load(&s->stop)) {
		if (s->be->wait(s->h, s->mask) != 0) {
			if (errno == EINTR)
				continue;
			fail(s, OP_WAIT, errno);
			break;
		}
		if (on_change(s) != 0)
			break;
	}
	pthread_mutex_lock(&s->lock);
	s->exited = 1;
	orphaned = s->orphaned;
	pthread_mutex_unlock(&s->lock);
	if (orphaned)
		free_source(s);
	return NULL;
}

static int line_mask(enum pl_serial_pin pin, const char **name)
{
	switch (pin) {
	case PL_SERIAL_PIN_DCD:
		*name = "DCD";
		return TIOCM_CAR;
	case PL_SERIAL_PIN_DSR:
		*name = "DSR";
		return TIOCM_DSR;
	case PL_SERIAL_PIN_RI:
		*name = "RI";
		return TIOCM_RNG;
	default:
		*name = "CTS";
		return TIOCM_CTS;
	}
}

static int open_error(char *err, size_t errlen, const char *dev, const char *path, int e,
		      enum pl_serial_stage stage, const char *why)
{
	if (why[0])
		snprintf(err, errlen, "device %s: %s", dev, why);
	else if (stage == PL_SERIAL_STAGE_OPEN && e == ENOENT)
		snprintf(err, errlen, "device %s: no such serial port (%s does not exist)", dev,
			 path);
	else if (stage == PL_SERIAL_STAGE_OPEN && (e == EACCES || e == EPERM))
		snprintf(err, errlen, "device %s: permission denied on %s (run as root or join the "
			 "group that owns it, often dialout)", dev, path);
	else if (stage == PL_SERIAL_STAGE_OPEN && e == EBUSY)
		snprintf(err, errlen, "device %s: %s is busy (opened exclusively by another "
			 "program)", dev, path);
	else if (stage == PL_SERIAL_STAGE_OPEN)
		snprintf(err, errlen, "device %s: cannot open %s: %s", dev, path, strerror(e));
	else
		snprintf(err, errlen, "device %s: %s is not a serial port (%s)", dev, path,
			 strerror(e));
	if (e == ENOMEM)
		return -PL_ENOMEM;
	return stage == PL_SERIAL_STAGE_OPEN && e == ENOENT ? -PL_ENOENT : -PL_EIO;
}

static int serial_open(void **self, const void *config, char *err, size_t errlen)
{
	const struct pl_serial_config *cfg = config;
	const char *root = cfg->dev_root && *cfg->dev_root ? cfg->dev_root : "/dev";
	struct serial_icounter_struct c;
	enum pl_serial_stage stage = PL_SERIAL_STAGE_OPEN;
	sigset_t all, old;
	char path[4096], why[256] = "";
	struct serial_src *s;
	int rc, bits, p[2];

	*self = NULL;
	if (!cfg->device || !*cfg->device) {
		snprintf(err, errlen, "no serial port configured (key device, e.g. ttyUSB0)");
		return -PL_EINVAL;
	}
	if (cfg->device[0] == '/')
		rc = snprintf(path, sizeof(path), "%s", cfg->device);
	else
		rc = snprintf(path, sizeof(path), "%s/%s", root, cfg->device);
	if (rc < 0 || (size_t)rc >= sizeof(path)) {
		snprintf(err, errlen, "device %s: path too long", cfg->device);
		return -PL_EINVAL;
	}
	pthread_once(&wake_once, install_wake);
	if (!wake_installed) {
		snprintf(err, errlen, "device %s: cannot install the handler of signal %d: %s",
			 cfg->device, WAKE_SIGNAL, strerror(errno));
		return -PL_EIO;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "device %s: out of memory", cfg->device);
		return -PL_ENOMEM;
	}
	s->device = cfg->device;
	s->mask = line_mask(cfg->pin, &s->line_name);
	s->be = backend;
	rc = s->be->open(s->be->ctx, cfg->name ? cfg->name : "?", path, &s->h, &stage, why,
			 sizeof(why));
	if (rc != 0) {
		rc = open_error(err, errlen, cfg->device, path, -rc, stage, why);
		goto err_free;
	}
	if (s->be->get_lines(s->h, &bits) != 0) {
		snprintf(err, errlen, "device %s: %s has no modem-status lines (TIOCMGET: %s; a "
			 "pseudo-terminal or a driver without them)", cfg->device, path,
			 strerror(errno));
		rc = -PL_EIO;
		goto err_close;
	}
	s->level = (bits & s->mask) != 0;
	if (s->be->get_counts(s->h, &c) == 0) {
		s->have_counts = 1;
		s->accounted = (uint32_t)*counter_of(&c, s->mask);
	} else if (errno != ENOTTY && errno != EINVAL) {
		snprintf(err, errlen, "device %s: cannot read the interrupt counters (TIOCGICOUNT: "
			 "%s)", cfg->device, strerror(errno));
		rc = -PL_EIO;
		goto err_close;
	}
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
		snprintf(err, errlen, "device %s: pipe: %s", cfg->device, strerror(errno));
		rc = -PL_EIO;
		goto err_close;
	}
	s->pipe_r = p[0];
	s->pipe_w = p[1];
	pthread_mutex_init(&s->lock, NULL);
	/* the thread starts with every signal blocked and lets only its wake-up in */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&s->thread, NULL, watch, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(err, errlen, "device %s: cannot start its thread: %s", cfg->device,
			 strerror(rc));
		rc = -PL_EIO;
		goto err_close_pipe;
	}
	*self = s;
	return 0;

err_close_pipe:
	pthread_mutex_destroy(&s->lock);
	close(s->pipe_r);
	close(s->pipe_w);
err_close:
	s->be->close(s->h);
err_free:
	free(s);
	return rc;
}

static int serial_fd(void *self)
{
	return ((struct serial_src *)self)->pipe_r;
}

static int failure(struct serial_src *s, int e, int op, char *err, size_t errlen)
{
	static const char *const call[] = { "?", "TIOCMIWAIT", "TIOCMGET", "TIOCGICOUNT" };
	const char *what = call[op >= OP_WAIT && op <= OP_COUNTS ? op : 0];

	if (op == OP_WAIT && (e == ENOTTY || e == EINVAL))
		snprintf(err, errlen, "device %s: the serial driver cannot wait for %s changes "
			 "(%s: %s)", s->device, s->line_name, what, strerror(e));
	else
		snprintf(err, errlen, "device %s: the serial port failed or vanished (%s: %s; a "
			 "USB adapter unplugged?)", s->device, what, strerror(e));
	return -PL_EIO;
}

static int serial_read(void *self, void *buf, size_t cap, struct pl_live_info *info,
		       char *err, size_t errlen)
{
	struct serial_src *s = self;
	struct pl_live_edge *out = buf;
	struct record rec[READ_CHUNK];
	/* loaded before draining: every record the thread sent before failing is then read */
	int failed = atomic_load(&s->failed), op = atomic_load(&s->failed_op);
	int drained = 0;
	size_t n = 0;

	*info = (struct pl_live_info){ 0 };
	if (s->read_failed)
		return failure(s, s->read_err, s->read_op, err, errlen);
	while (n < cap) {
		size_t want = cap - n < READ_CHUNK ? cap - n : READ_CHUNK;
		ssize_t r = read(s->pipe_r, rec, want * sizeof(rec[0]));
		size_t got;

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN) {
			drained = 1;
			break;
		}
		if (r <= 0 || r % (ssize_t)sizeof(rec[0]) != 0) {
			snprintf(err, errlen, "device %s: reading the source's pipe: %s", s->device,
				 r < 0 ? strerror(errno) : "short record");
			return -PL_EIO;
		}
		got = (size_t)r / sizeof(rec[0]);
		for (size_t i = 0; i < got; i++) {
			if (rec[i].lost) {
				if (info->lost == 0)
					info->gap_from_us = rec[i].gap_from_us;
				info->lost += rec[i].lost;
				info->gap_to_us = rec[i].gap_to_us;
			}
			if (rec[i].kind == REC_EDGE) {
				out[n].t_us = rec[i].t_us;
				out[n].level = rec[i].level;
				n++;
			} else if (rec[i].kind == REC_FAIL) {
				failed = rec[i].err;
				op = rec[i].op;
				drained = 1; /* the thread has stopped: nothing follows */
			}
		}
		if (got < want) {
			drained = 1;
			break;
		}
	}
	if (!failed || !drained)
		return (int)n;
	if (n > 0) {
		s->read_failed = 1;
		s->read_err = failed;
		s->read_op = op;
		return (int)n;
	}
	return failure(s, failed, op, err, errlen);
}

static int serial_level(void *self)
{
	struct serial_src *s = self;
	int bits;

	if (s->be->get_lines(s->h, &bits) != 0)
		return -1;
	return (bits & s->mask) != 0;
}

static void serial_close(void *self)
{
	struct serial_src *s = self;
	int joined = 0, orphan = 0;

	if (!s)
		return;
	atomic_store(&s->stop, 1);
	for (int i = 0; i < STOP_TRIES && !joined; i++) {
		struct timespec until;

		pthread_kill(s->thread, WAKE_SIGNAL);
		/* the kernel's clock: pthread_timedjoin_np waits on CLOCK_REALTIME */
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += STOP_POLL_NS;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		joined = pthread_timedjoin_np(s->thread, NULL, &until) == 0;
	}
	if (!joined) {
		pthread_mutex_lock(&s->lock);
		orphan = !s->exited;
		s->orphaned = orphan;
		pthread_mutex_unlock(&s->lock);
		if (orphan) {
			/* it frees the source when it leaves */
			pthread_detach(s->thread);
			return;
		}
		pthread_join(s->thread, NULL);
	}
	free_source(s);
}

const struct pl_live_ops pl_live_serial = {
	.name = "serial",
	.kind = PL_LIVE_EDGES,
	.open = serial_open,
	.fd = serial_fd,
	.read = serial_read,
	.level = serial_level,
	.close = serial_close,
};
