/* SPDX-License-Identifier: MIT */
/*
 * Live source: a Linux Industrial I/O ADC (ADS1015/ADS1115, MCP3008, a SoC's own ADC) with a
 * photodiode or an LDR divider on one channel, behind the seam in live.h.
 *
 * Two ways to read it:
 *
 *	poll	in_voltageN_raw read at rate_hz, paced by a timerfd (the source's fd). Every
 *		driver offers it; each read is a conversion, so the real rate is what the bus and
 *		the chip allow (an ADS1115 at its default 128 SPS takes ~8 ms per read: such a
 *		read blocks the caller that long, and the timer's missed expirations are then
 *		reported as lost samples, which is what they are).
 *	buffer	the kernel captures scans into a FIFO we read from /dev/iio:deviceN, each scan
 *		stamped by the kernel (in_timestamp). Needs a driver with buffer support and, for
 *		most, a trigger. The fd is the character device itself.
 *
 * Everything is reached through sysfs_root and dev_root, so tests put a fake tree in a
 * temporary directory. Device-supplied text (names, types) is parsed defensively: a fake or a
 * buggy driver must give a clear message, never a crash.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "config/keys.h"
#include "powerlogger/detector.h"
#include "sources/live.h"
#include "sources/src_iio.h"

#define MAX_DEVICES 64          /* IIO devices listed in a "not found" message */
#define MAX_ELEMS 64            /* enabled scan elements we lay out */
#define READ_SCANS 1024         /* scans taken from the kernel per read() at most */
#define BUFFER_SECONDS 1        /* kernel buffer length: this much of capture, ... */
#define BUFFER_MIN_SCANS 4096   /* ... and never fewer scans than this */
#define WAKEUPS_PER_S 100       /* watermark: wake the loop about this often in buffer mode */

#define PRESENCE_CHECK_NS 1000000000 /* the default of presence_check_ns: once a second */

/* ---- the configuration's keys (src_iio.h) ---------------------------------------------- */

const char *const pl_iio_keys[] = { "channel", "mode", "trigger", NULL };
const char *const pl_iio_mode_names[] = { "poll", "buffer", NULL };

void pl_iio_check_keys(struct pl_config_section *s, const struct pl_iio_config *c)
{
	if (!pl_config_key_line(s, "device"))
		pl_config_missing(s, "device", "the ADC, e.g. device = ads1015 (its name in "
				  "/sys/bus/iio/devices)");
	if (c->mode != PL_IIO_BUFFER)
		pl_config_not_here(s, "trigger", "applies to mode = buffer only");
}

struct iio {
	char label[128];          /* "iio device ads1015", the prefix of every message */
	char dir[PATH_MAX];       /* the device's sysfs directory */
	unsigned num;             /* N of iio:deviceN */
	enum pl_iio_mode mode;
	int fd;                   /* poll: the timerfd; buffer: /dev/iio:deviceN */
	int raw_fd;               /* poll: in_voltageN_raw, kept open; -1 in buffer mode */
	int64_t period_ns;        /* the sampling period the device runs at (nominal) */
	int64_t last_t_us;        /* the last sample's time, wall clock (the opening time first) */
	int64_t next_check_ns;    /* CLOCK_MONOTONIC: when to check the device is still there */
	int64_t check_every_ns;   /* and how often (0: at every read) */
	/* buffer mode */
	int enabled;              /* we wrote buffer/enable = 1: undo it on close */
	struct pl_iio_type vtype; /* our channel's storage */
	struct pl_iio_type ttype; /* the timestamp's */
	size_t scan_bytes, val_off, ts_off;
	int have_ts;              /* scans carry a timestamp */
	clockid_t ts_clock;       /* the clock the kernel stamps with */
	int have_last_ts;
	int64_t last_ts_ns;       /* the previous scan's timestamp, the kernel's clock */
	unsigned char *buf;       /* (READ_SCANS + 1) scans: a partial one kept for next time */
	size_t have;              /* bytes in buf */
};

/* The kernel's clock c, ns: for a timestamp clock the clock seam does not have. */
static int64_t kernel_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void msg(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void msg(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* A hint for an errno met while opening, or "". */
static const char *hint(int e)
{
	switch (e) {
	case EACCES:
	case EPERM:
		return " (permission denied: run as root, or let the user's group read the device: "
		       "a udev rule such as SUBSYSTEM==\"iio\", GROUP=\"iio\", MODE=\"0660\", "
		       "RUN+=\"/bin/sh -c 'chgrp -R iio /sys%p && chmod -R g+w /sys%p'\" and the "
		       "user in group iio)";
	case EBUSY:
		return " (busy: another program reads this device's buffer, or a buffered capture "
		       "is running, which also stops polled reads)";
	default:
		return "";
	}
}

/* Formats a path; -PL_EINVAL (with a message) when it does not fit. */
static int path_fmt(char *out, size_t len, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int path_fmt(char *out, size_t len, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len) {
		msg(err, errlen, "iio: path too long: %.80s...", out);
		return -PL_EINVAL;
	}
	return 0;
}

/* Reads a small sysfs file into buf, trailing whitespace removed. 0 or -errno. */
static int read_text(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	close(fd);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	buf[n] = '\0';
	return 0;
}

/* Writes text to a sysfs file, as `echo text > path` does. 0 or -errno. */
static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	size_t len = strlen(text);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, len);
	if (n < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	if (close(fd) != 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

/* ---- scan layout ------------------------------------------------------------------------- */

int pl_iio_parse_type(const char *text, struct pl_iio_type *t)
{
	const char *p = text;
	char *end;
	unsigned long v;

	memset(t, 0, sizeof(*t));
	if (strncmp(p, "le:", 3) == 0)
		t->be = 0;
	else if (strncmp(p, "be:", 3) == 0)
		t->be = 1;
	else
		return -PL_EPARSE;
	p += 3;
	if (*p != 's' && *p != 'u' && *p != 'S' && *p != 'U')
		return -PL_EPARSE;
	/* upper case: "S"/"U" for a value stored in 2's complement or not, as in newer kernels */
	t->is_signed = *p == 's' || *p == 'S';
	p++;
	if (*p < '0' || *p > '9')
		return -PL_EPARSE;
	v = strtoul(p, &end, 10);
	if (*end != '/' || v == 0 || v > 64)
		return -PL_EPARSE;
	t->realbits = (unsigned)v;
	p = end + 1;
	if (*p < '0' || *p > '9')
		return -PL_EPARSE;
	v = strtoul(p, &end, 10);
	if (v != 8 && v != 16 && v != 32 && v != 64)
		return -PL_EPARSE;
	t->storagebits = (unsigned)v;
	p = end;
	t->repeat = 1;
	if (*p == 'X') {
		p++;
		if (*p < '0' || *p > '9')
			return -PL_EPARSE;
		v = strtoul(p, &end, 10);
		if (v == 0 || v > 1024)
			return -PL_EPARSE;
		t->repeat = (unsigned)v;
		p = end;
	}
	if (strncmp(p, ">>", 2) != 0)
		return -PL_EPARSE;
	p += 2;
	if (*p < '0' || *p > '9')
		return -PL_EPARSE;
	v = strtoul(p, &end, 10);
	if (*end != '\0' || v >= 64)
		return -PL_EPARSE;
	t->shift = (unsigned)v;
	if (t->realbits + t->shift > t->storagebits)
		return -PL_EPARSE;
	return 0;
}

int64_t pl_iio_decode(const struct pl_iio_type *t, const unsigned char *p)
{
	unsigned bytes = t->storagebits / 8;
	uint64_t x = 0;

	for (unsigned i = 0; i < bytes; i++)
		x = (x << 8) | p[t->be ? i : bytes - 1 - i];
	x >>= t->shift;
	if (t->realbits < 64) {
		uint64_t mask = (UINT64_C(1) << t->realbits) - 1;

		x &= mask;
		if (t->is_signed && (x >> (t->realbits - 1)) & 1)
			x |= ~mask;
	}
	return (int64_t)x;
}

static int elem_cmp(const void *a, const void *b)
{
	const struct pl_iio_elem *x = a, *y = b;

	if (x->is_timestamp != y->is_timestamp)
		return x->is_timestamp - y->is_timestamp;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* The kernel's ALIGN(): exact for the power-of-two sizes that occur; kept as the kernel
 * writes it so that an odd repeat count gives the kernel's layout, whatever that is. */
static size_t kernel_align(size_t x, size_t a)
{
	return (x + a - 1) & ~(a - 1);
}

size_t pl_iio_layout(struct pl_iio_elem *e, size_t n)
{
	size_t bytes = 0, largest = 1;

	qsort(e, n, sizeof(*e), elem_cmp);
	for (size_t i = 0; i < n; i++) {
		size_t len = e[i].type.storagebits / 8 * e[i].type.repeat;

		bytes = kernel_align(bytes, len);
		e[i].offset = bytes;
		bytes += len;
		if (len > largest)
			largest = len;
	}
	return kernel_align(bytes, largest);
}

/* ---- finding the device ------------------------------------------------------------------ */

struct found {
	unsigned num;
	char name[64];
};

static int found_cmp(const void *a, const void *b)
{
	const struct found *x = a, *y = b;

	return x->num < y->num ? -1 : x->num > y->num;
}

/* N when name is exactly "iio:deviceN", else -1. */
static long device_number(const char *name)
{
	unsigned n;
	int end = 0;

	if (sscanf(name, "iio:device%u%n", &n, &end) != 1 || name[end] != '\0' ||
	    strncmp(name, "iio:device", 10) != 0 || name[10] < '0' || name[10] > '9')
		return -1;
	return (long)n;
}

/* The device given as the path of its sysfs directory. */
static int find_by_path(struct iio *s, const char *path, char *err, size_t errlen)
{
	char real[PATH_MAX], file[PATH_MAX + 8], name[64];
	const char *base;
	long num;
	int rc;

	if (realpath(path, real) == NULL) {
		int e = errno;

		msg(err, errlen, "iio device %s: %s%s", path, strerror(e),
		    e == ENOENT ? " (no such directory: give a directory such as /sys/bus/iio/"
		    "devices/iio:device0, or the device's name)" : hint(e));
		return e == ENOENT ? -PL_ENOENT : -PL_EIO;
	}
	/* /sys/bus/iio/devices/iio:deviceN is a link into /sys/devices/...; the real directory
	 * has the same last component, which gives N for /dev/iio:deviceN. */
	base = strrchr(real, '/');
	base = base ? base + 1 : real;
	num = device_number(base);
	if (num < 0) {
		msg(err, errlen, "iio device %s: not an IIO device directory (its name must be "
		    "iio:deviceN, as in /sys/bus/iio/devices)", path);
		return -PL_EINVAL;
	}
	if ((rc = path_fmt(file, sizeof(file), err, errlen, "%s/name", real)) != 0)
		return rc;
	if ((rc = read_text(file, name, sizeof(name))) != 0) {
		msg(err, errlen, "iio device %s: cannot read %s: %s%s", path, file, strerror(-rc),
		    rc == -ENOENT ? " (not an IIO device directory)" : hint(-rc));
		return rc == -ENOENT ? -PL_ENOENT : -PL_EIO;
	}
	snprintf(s->dir, sizeof(s->dir), "%s", real);
	s->num = (unsigned)num;
	snprintf(s->label, sizeof(s->label), "iio device %.63s (%.40s)", name, base);
	return 0;
}

/* The device given by its name: the one iio:device* whose name file says so. */
static int find_by_name(struct iio *s, const struct pl_iio_config *cfg, char *err,
			size_t errlen)
{
	char devices[PATH_MAX], file[PATH_MAX + 300], there[512];
	struct found *f;
	size_t nf = 0, o = 0, matches = 0, match = 0;
	struct dirent *de;
	DIR *d;
	int rc;

	if ((rc = path_fmt(devices, sizeof(devices), err, errlen, "%s/bus/iio/devices",
			   cfg->sysfs_root)) != 0)
		return rc;
	d = opendir(devices);
	if (d == NULL) {
		int e = errno;

		msg(err, errlen, "iio device %s: cannot list %s: %s%s", cfg->device, devices,
		    strerror(e), e == ENOENT ? " (no IIO support: is the ADC's driver loaded, "
		    "e.g. dtoverlay=ads1015 on a Raspberry Pi?)" : hint(e));
		return e == ENOENT ? -PL_ENOENT : -PL_EIO;
	}
	f = calloc(MAX_DEVICES, sizeof(*f));
	if (f == NULL) {
		closedir(d);
		msg(err, errlen, "iio device %s: out of memory", cfg->device);
		return -PL_ENOMEM;
	}
	while ((de = readdir(d)) != NULL && nf < MAX_DEVICES) {
		long num = device_number(de->d_name);

		if (num < 0)
			continue;
		snprintf(file, sizeof(file), "%s/%s/name", devices, de->d_name);
		if (read_text(file, f[nf].name, sizeof(f[nf].name)) != 0)
			snprintf(f[nf].name, sizeof(f[nf].name), "?");
		f[nf++].num = (unsigned)num;
	}
	closedir(d);
	qsort(f, nf, sizeof(*f), found_cmp);
	there[0] = '\0';
	for (size_t i = 0; i < nf; i++) {
		if (strcmp(f[i].name, cfg->device) == 0) {
			if (matches++ == 0)
				match = i;
		}
		if (o < sizeof(there)) {
			int k = snprintf(there + o, sizeof(there) - o, "%s%s (iio:device%u)",
					 i ? ", " : "", f[i].name, f[i].num);

			o += k > 0 ? (size_t)k : 0;
		}
	}
	if (matches == 0) {
		if (nf == 0)
			msg(err, errlen, "iio device %s: not found: %s has no IIO devices (is the "
			    "ADC's driver loaded, e.g. dtoverlay=ads1015 on a Raspberry Pi?)",
			    cfg->device, devices);
		else
			msg(err, errlen, "iio device %s: not found in %s (there: %s)", cfg->device,
			    devices, there);
		free(f);
		return -PL_ENOENT;
	}
	if (matches > 1) {
		/* Two ADCs of one type (two ADS1115 at different addresses) share a name, and
		 * their numbering follows probe order: refuse to guess. */
		msg(err, errlen, "iio device %s: %zu devices have this name (%s): give the one "
		    "you mean as the path of its sysfs directory, e.g. device = %s/iio:device%u",
		    cfg->device, matches, there, devices, f[match].num);
		free(f);
		return -PL_EINVAL;
	}
	s->num = f[match].num;
	free(f);
	snprintf(s->label, sizeof(s->label), "iio device %s", cfg->device);
	return path_fmt(s->dir, sizeof(s->dir), err, errlen, "%s/iio:device%u", devices, s->num);
}

static int uint_cmp(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

	return x < y ? -1 : x > y;
}

/* The channels a directory offers as files "<prefix>N<suffix>", listed as "0, 1, 3". */
static void list_channels(const char *dir, const char *prefix, const char *suffix, char *out,
			  size_t len)
{
	size_t o = 0, n = 0, pl = strlen(prefix), sl = strlen(suffix);
	unsigned nums[MAX_ELEMS];
	struct dirent *de;
	DIR *d = opendir(dir);

	out[0] = '\0';
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL && n < MAX_ELEMS) {
		const char *p = de->d_name, *q;
		size_t nl = strlen(p);

		if (nl <= pl + sl || strncmp(p, prefix, pl) != 0 ||
		    strcmp(p + nl - sl, suffix) != 0)
			continue;
		for (q = p + pl; q < p + nl - sl && *q >= '0' && *q <= '9'; q++)
			;
		if (q == p + nl - sl && q - (p + pl) <= 6)
			nums[n++] = (unsigned)strtoul(p + pl, NULL, 10);
	}
	closedir(d);
	qsort(nums, n, sizeof(nums[0]), uint_cmp);
	for (size_t i = 0; i < n && o < len; i++) {
		int k = snprintf(out + o, len - o, "%s%u", i ? ", " : "", nums[i]);

		o += k > 0 ? (size_t)k : 0;
	}
}

/* ---- vanishing ---------------------------------------------------------------------------- */

static int gone(struct iio *s, const char *what, int e, char *err, size_t errlen)
{
	msg(err, errlen, "%s: gone (unplugged?): %s%s%s", s->label, what, e ? ": " : "",
	    e ? strerror(e) : "");
	return -PL_EIO;
}

/* -PL_EIO when the device's sysfs directory went away; checked now and then (see header). */
static int check_present(struct iio *s, char *err, size_t errlen)
{
	int64_t now = pl_clock_mono_us() * 1000;
	struct stat st;

	if (now < s->next_check_ns)
		return 0;
	s->next_check_ns = now + s->check_every_ns;
	if (s->raw_fd >= 0 && fstat(s->raw_fd, &st) == 0 && st.st_nlink == 0)
		return gone(s, "its sysfs files were removed", 0, err, errlen);
	if (access(s->dir, F_OK) != 0)
		return gone(s, s->dir, errno, err, errlen);
	return 0;
}

/* ---- poll mode ---------------------------------------------------------------------------- */

/* Reads the channel's raw value now: 0; -1 when the read failed (errno in *e); -2 when the
 * text is not a number (or the file was removed: *e = 0). */
static int raw_value(struct iio *s, int32_t *v, char *text, size_t len, int *e)
{
	ssize_t n = pread(s->raw_fd, text, len - 1, 0);
	struct stat st;
	long long x;
	char *end;

	*e = 0;
	if (n < 0) {
		*e = errno;
		return -1;
	}
	text[n] = '\0';
	errno = 0;
	x = strtoll(text, &end, 10);
	if (end != text && (*end == '\0' || *end == '\n') && errno == 0 && x >= INT32_MIN &&
	    x <= INT32_MAX) {
		*v = (int32_t)x;
		return 0;
	}
	/* a regular file that was unlinked (a fake tree removed) reads as it was, or empty */
	if (fstat(s->raw_fd, &st) == 0 && st.st_nlink == 0)
		*e = ENODEV;
	return -2;
}

/* raw_value() for read(): 0 or -PL_EIO with the message. */
static int read_raw(struct iio *s, int32_t *v, char *err, size_t errlen)
{
	char text[32];
	int e, rc = raw_value(s, v, text, sizeof(text), &e);

	if (rc == 0)
		return 0;
	if (rc == -1 || e != 0)
		return gone(s, "reading its value", e, err, errlen);
	msg(err, errlen, "%s: channel value is not a number: \"%.20s\"", s->label, text);
	return -PL_EIO;
}

static int open_poll(struct iio *s, const struct pl_iio_config *cfg, char *err, size_t errlen)
{
	char path[PATH_MAX + 32], there[256];
	struct itimerspec its = { 0 };
	int32_t v;
	int rc, e;

	if ((rc = path_fmt(path, sizeof(path), err, errlen, "%s/in_voltage%u_raw", s->dir,
			   cfg->channel)) != 0)
		return rc;
	s->raw_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->raw_fd < 0) {
		e = errno;
		if (e == ENOENT) {
			list_channels(s->dir, "in_voltage", "_raw", there, sizeof(there));
			msg(err, errlen, "%s: no channel %u: %s does not exist "
			    "(channels there: %s)", s->label, cfg->channel, path,
			    there[0] ? there : "none");
			return -PL_ENOENT;
		}
		msg(err, errlen, "%s: cannot open %s: %s%s", s->label, path, strerror(e), hint(e));
		return -PL_EIO;
	}
	/* One read now, so that a device that cannot be read says so at once (EBUSY while a
	 * buffered capture runs, EIO from a chip that does not answer on its bus). */
	rc = raw_value(s, &v, there, sizeof(there), &e);
	if (rc == -1) {
		msg(err, errlen, "%s: cannot read %s: %s%s", s->label, path, strerror(e), hint(e));
		return -PL_EIO;
	}
	if (rc == -2) {
		msg(err, errlen, "%s: %s holds no number: \"%.20s\"", s->label, path, there);
		return -PL_EIO;
	}
	s->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->fd < 0) {
		msg(err, errlen, "%s: timerfd_create: %s", s->label, strerror(errno));
		return -PL_EIO;
	}
	its.it_interval.tv_sec = s->period_ns / 1000000000;
	its.it_interval.tv_nsec = s->period_ns % 1000000000;
	its.it_value = its.it_interval;
	if (timerfd_settime(s->fd, 0, &its, NULL) != 0) {
		msg(err, errlen, "%s: timerfd_settime: %s", s->label, strerror(errno));
		return -PL_EIO;
	}
	return 0;
}

static int read_poll(struct iio *s, struct pl_sample *out, size_t cap, struct pl_live_info *info,
		     char *err, size_t errlen)
{
	uint64_t expirations;
	ssize_t n;
	int64_t t;
	int32_t v;
	int rc;

	if (cap == 0)
		return 0;
	if ((rc = check_present(s, err, errlen)) != 0)
		return rc;
	n = read(s->fd, &expirations, sizeof(expirations));
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		msg(err, errlen, "%s: reading the timer: %s", s->label, strerror(errno));
		return -PL_EIO;
	}
	if (n != sizeof(expirations) || expirations == 0)
		return 0;
	if ((rc = read_raw(s, &v, err, errlen)) != 0)
		return rc;
	/* The clock can be stepped back (NTP); the detector needs times that never decrease. */
	t = pl_clock_wall_us();
	if (t < s->last_t_us)
		t = s->last_t_us;
	if (expirations > 1) {
		/* one sample per tick: the caller was late by this many ticks */
		info->lost = expirations - 1;
		info->gap_from_us = s->last_t_us;
		info->gap_to_us = t;
	}
	out[0].t_us = t;
	out[0].v = v;
	s->last_t_us = t;
	return 1;
}

/* ---- buffer mode -------------------------------------------------------------------------- */

/* "0", "1" or other text of a scan element's _en file; -1 when unreadable. */
static int read_flag(const char *path)
{
	char text[16];

	if (read_text(path, text, sizeof(text)) != 0)
		return -1;
	return strcmp(text, "1") == 0 ? 1 : strcmp(text, "0") == 0 ? 0 : -1;
}

/*
 * Enables exactly our channel and the timestamp (others off: less to copy, and an ADC that
 * sequences its channels keeps its full rate), then lays out the scan from what the kernel
 * says is enabled, not from what we asked, so a driver that keeps some channel on is decoded
 * right all the same.
 */
/* -PL_ENOENT, with what is there, when scan_elements or our channel's _en file is missing. */
static int scan_channel_exists(struct iio *s, const char *scan, const char *ours,
			       uint32_t channel, char *err, size_t errlen)
{
	char file[PATH_MAX + 300];
	int rc;

	if ((rc = path_fmt(file, sizeof(file), err, errlen, "%s/%s", scan, ours)) != 0)
		return rc;
	if (access(file, F_OK) == 0)
		return 0;
	if (access(scan, F_OK) != 0) {
		msg(err, errlen, "%s: no buffered capture: %s does not exist "
		    "(the driver has no buffer support; use mode = poll)", s->label, scan);
	} else {
		char there[256];

		list_channels(scan, "in_voltage", "_en", there, sizeof(there));
		msg(err, errlen, "%s: no channel %u in buffered capture: %s does not exist "
		    "(channels there: %s)", s->label, channel, file, there[0] ? there : "none");
	}
	return -PL_ENOENT;
}

/* Enables our channel and the timestamp, disables the others (as far as they let us). */
static int enable_ours(struct iio *s, DIR *d, const char *scan, const char *ours, char *err,
		       size_t errlen)
{
	char file[PATH_MAX + 300];
	struct dirent *de;

	while ((de = readdir(d)) != NULL) {
		size_t nl = strlen(de->d_name);
		int want, is, rc;

		if (nl < 4 || strcmp(de->d_name + nl - 3, "_en") != 0)
			continue;
		want = strcmp(de->d_name, ours) == 0 || strcmp(de->d_name, "in_timestamp_en") == 0;
		snprintf(file, sizeof(file), "%s/%s", scan, de->d_name);
		is = read_flag(file);
		if (is == want)
			continue;
		rc = write_text(file, want ? "1" : "0");
		if (rc != 0 && want) {
			msg(err, errlen, "%s: cannot enable %s: %s%s", s->label, file,
			    strerror(-rc), hint(-rc));
			return -PL_EIO;
		}
		/* a channel that will not turn off is laid out below, not refused */
	}
	return 0;
}

/* The enabled elements into e (MAX_ELEMS), *ne of them; *ours_index: our channel's index,
 * SIZE_MAX when it is not enabled. */
static int read_elements(struct iio *s, DIR *d, const char *scan, const char *ours,
			 struct pl_iio_elem *e, size_t *ne, size_t *ours_index, char *err,
			 size_t errlen)
{
	char file[PATH_MAX + 300], text[64];
	struct dirent *de;

	while ((de = readdir(d)) != NULL && *ne < MAX_ELEMS) {
		size_t nl = strlen(de->d_name), base = nl - 3;
		unsigned long idx;
		char *end;

		if (nl < 4 || strcmp(de->d_name + base, "_en") != 0)
			continue;
		snprintf(file, sizeof(file), "%s/%s", scan, de->d_name);
		if (read_flag(file) != 1)
			continue;
		snprintf(file, sizeof(file), "%s/%.*s_index", scan, (int)base, de->d_name);
		if (read_text(file, text, sizeof(text)) != 0 ||
		    (idx = strtoul(text, &end, 10), end == text || *end != '\0')) {
			msg(err, errlen, "%s: cannot read a number from %s", s->label, file);
			return -PL_EIO;
		}
		snprintf(file, sizeof(file), "%s/%.*s_type", scan, (int)base, de->d_name);
		if (read_text(file, text, sizeof(text)) != 0 ||
		    pl_iio_parse_type(text, &e[*ne].type) != 0) {
			msg(err, errlen, "%s: cannot read a scan type (like le:s12/16>>4) from %s",
			    s->label, file);
			return -PL_EIO;
		}
		e[*ne].index = (unsigned)idx;
		e[*ne].is_timestamp = strcmp(de->d_name, "in_timestamp_en") == 0;
		/* the index tells which one is ours after the sort */
		if (strcmp(de->d_name, ours) == 0)
			*ours_index = idx;
		(*ne)++;
	}
	return 0;
}

/* Lays the ne elements out: the scan's size, our value's and the timestamp's place. */
static int lay_out(struct iio *s, struct pl_iio_elem *e, size_t ne, size_t ours_index,
		   uint32_t channel, char *err, size_t errlen)
{
	size_t ts_i = SIZE_MAX;

	s->scan_bytes = pl_iio_layout(e, ne);
	for (size_t i = 0; i < ne; i++) {
		if (e[i].is_timestamp) {
			ts_i = i;
		} else if (e[i].index == ours_index) {
			s->val_off = e[i].offset;
			s->vtype = e[i].type;
		}
	}
	if (s->vtype.realbits > 32 || (!s->vtype.is_signed && s->vtype.realbits > 31)) {
		msg(err, errlen, "%s: channel %u has %u-bit values, more than a sample holds "
		    "(31 bits unsigned, 32 signed)", s->label, channel, s->vtype.realbits);
		return -PL_EINVAL;
	}
	if (ts_i != SIZE_MAX) {
		if (e[ts_i].type.storagebits != 64 || e[ts_i].type.realbits != 64) {
			msg(err, errlen, "%s: unexpected timestamp type in scan_elements/"
			    "in_timestamp_type (want le:s64/64>>0)", s->label);
			return -PL_EIO;
		}
		s->have_ts = 1;
		s->ts_off = e[ts_i].offset;
		s->ttype = e[ts_i].type;
	}
	return 0;
}

static int setup_scan(struct iio *s, uint32_t channel, char *err, size_t errlen)
{
	char scan[PATH_MAX], ours[48];
	struct pl_iio_elem *e;
	size_t ne = 0, ours_index = SIZE_MAX;
	DIR *d;
	int rc;

	if ((rc = path_fmt(scan, sizeof(scan), err, errlen, "%s/scan_elements", s->dir)) != 0)
		return rc;
	snprintf(ours, sizeof(ours), "in_voltage%u_en", channel);
	if ((rc = scan_channel_exists(s, scan, ours, channel, err, errlen)) != 0)
		return rc;
	d = opendir(scan);
	if (d == NULL) {
		msg(err, errlen, "%s: cannot list %s: %s%s", s->label, scan, strerror(errno),
		    hint(errno));
		return -PL_EIO;
	}
	if ((rc = enable_ours(s, d, scan, ours, err, errlen)) != 0) {
		closedir(d);
		return rc;
	}
	rewinddir(d);
	e = calloc(MAX_ELEMS, sizeof(*e));
	if (e == NULL) {
		closedir(d);
		msg(err, errlen, "%s: out of memory", s->label);
		return -PL_ENOMEM;
	}
	rc = read_elements(s, d, scan, ours, e, &ne, &ours_index, err, errlen);
	if (rc == 0 && ours_index == SIZE_MAX) {
		msg(err, errlen, "%s: channel %u stayed disabled after writing 1 to "
		    "scan_elements/%s", s->label, channel, ours);
		rc = -PL_EIO;
	}
	if (rc == 0)
		rc = lay_out(s, e, ne, ours_index, channel, err, errlen);
	free(e);
	closedir(d);
	return rc;
}

/* The clock of the kernel's timestamps (current_timestamp_clock; realtime before Linux 4.10,
 * which had no such file). The coarse clocks count from the same origin as the fine ones. */
static int timestamp_clock(struct iio *s, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		clockid_t id;
	} clocks[] = {
		{ "realtime", CLOCK_REALTIME },
		{ "realtime_coarse", CLOCK_REALTIME },
		{ "monotonic", CLOCK_MONOTONIC },
		{ "monotonic_coarse", CLOCK_MONOTONIC },
		{ "monotonic_raw", CLOCK_MONOTONIC_RAW },
		{ "boottime", CLOCK_BOOTTIME },
		{ "tai", CLOCK_TAI },
	};
	char path[PATH_MAX + 32], text[32];
	int rc;

	s->ts_clock = CLOCK_REALTIME;
	if ((rc = path_fmt(path, sizeof(path), err, errlen, "%s/current_timestamp_clock",
			   s->dir)) != 0)
		return rc;
	if (read_text(path, text, sizeof(text)) != 0)
		return 0;
	for (size_t i = 0; i < sizeof(clocks) / sizeof(clocks[0]); i++) {
		if (strcmp(text, clocks[i].name) == 0) {
			s->ts_clock = clocks[i].id;
			return 0;
		}
	}
	msg(err, errlen, "%s: unknown timestamp clock \"%s\" in %s", s->label, text, path);
	return -PL_EINVAL;
}

/*
 * Asks for rate_hz and takes what the device then says it runs at: drivers round to the rates
 * the chip has (an ADS1015 has 128..3300 SPS) or refuse, and the loss detection must know the
 * real period or every scan would look like a gap.
 */
static void sampling_rate(struct iio *s, uint32_t rate_hz)
{
	char path[PATH_MAX + 32], text[32];
	double hz;
	char *end;

	s->period_ns = 1000000000 / rate_hz;
	if (snprintf(path, sizeof(path), "%s/sampling_frequency", s->dir) >= (int)sizeof(path) ||
	    access(path, F_OK) != 0)
		return;
	snprintf(text, sizeof(text), "%" PRIu32, rate_hz);
	(void)write_text(path, text);
	if (read_text(path, text, sizeof(text)) != 0)
		return;
	hz = strtod(text, &end);
	if (end != text && hz >= 0.1 && hz <= 1e9)
		s->period_ns = (int64_t)(1e9 / hz + 0.5);
}

/* The names of the triggers there are, "a, b", for a message. */
static void list_triggers(const char *sysfs_root, char *out, size_t len)
{
	char devices[PATH_MAX], file[PATH_MAX + 300], name[64];
	struct dirent *de;
	size_t o = 0;
	DIR *d;

	out[0] = '\0';
	snprintf(devices, sizeof(devices), "%s/bus/iio/devices", sysfs_root);
	d = opendir(devices);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL && o < len) {
		int k;

		if (strncmp(de->d_name, "trigger", 7) != 0)
			continue;
		snprintf(file, sizeof(file), "%s/%s/name", devices, de->d_name);
		if (read_text(file, name, sizeof(name)) != 0)
			continue;
		k = snprintf(out + o, len - o, "%s%s", o ? ", " : "", name);
		o += k > 0 ? (size_t)k : 0;
	}
	closedir(d);
}

static int set_trigger(struct iio *s, const struct pl_iio_config *cfg, char *err,
		       size_t errlen)
{
	char path[PATH_MAX + 32], there[256];
	int rc;

	if ((rc = path_fmt(path, sizeof(path), err, errlen, "%s/trigger/current_trigger",
			   s->dir)) != 0)
		return rc;
	rc = write_text(path, cfg->trigger);
	if (rc == 0)
		return 0;
	if (rc == -ENOENT) {
		msg(err, errlen, "%s: trigger %s: the device takes no trigger (no %s; leave "
		    "trigger unset)", s->label, cfg->trigger, path);
		return -PL_EINVAL;
	}
	if (rc == -EINVAL) {
		list_triggers(cfg->sysfs_root, there, sizeof(there));
		msg(err, errlen, "%s: trigger %s: no such trigger (there: %s)", s->label,
		    cfg->trigger, there[0] ? there : "none; an hrtimer trigger can be made in "
		    "configfs: mkdir /sys/kernel/config/iio/triggers/hrtimer/NAME");
		return -PL_ENOENT;
	}
	msg(err, errlen, "%s: cannot set trigger %s in %s: %s%s", s->label, cfg->trigger, path,
	    strerror(-rc), hint(-rc));
	return -PL_EIO;
}

/* Writes a number to a buffer/ file when it exists; a refusal is not an error (a DMA buffer
 * may have its own length, an old kernel no watermark). */
static void buffer_setting(struct iio *s, const char *file, uint64_t value)
{
	char path[PATH_MAX + 32], text[32];

	if (snprintf(path, sizeof(path), "%s/buffer/%s", s->dir, file) >= (int)sizeof(path))
		return;
	snprintf(text, sizeof(text), "%" PRIu64, value);
	(void)write_text(path, text);
}

static int open_buffer(struct iio *s, const struct pl_iio_config *cfg, char *err,
		       size_t errlen)
{
	char dev[PATH_MAX], enable[PATH_MAX + 32], text[16];
	uint64_t rate, length;
	int rc;

	/* The character device first: only one reader may hold it, so a busy device is refused
	 * before we change its settings under the program that holds it. */
	if ((rc = path_fmt(dev, sizeof(dev), err, errlen, "%s/iio:device%u", cfg->dev_root,
			   s->num)) != 0)
		return rc;
	s->fd = open(dev, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (s->fd < 0) {
		int e = errno;

		msg(err, errlen, "%s: cannot open %s: %s%s", s->label, dev, strerror(e),
		    e == ENOENT ? " (no buffer support in the driver, or no device node: use "
		    "mode = poll)" : hint(e));
		return e == ENOENT ? -PL_ENOENT : e == EBUSY ? -PL_EBUSY : -PL_EIO;
	}
	if ((rc = path_fmt(enable, sizeof(enable), err, errlen, "%s/buffer/enable", s->dir)) != 0)
		return rc;
	/* Left on by a run that crashed (we hold the device now): scan elements cannot change
	 * while it is on. */
	if (read_text(enable, text, sizeof(text)) == 0 && strcmp(text, "0") != 0)
		(void)write_text(enable, "0");
	if ((rc = setup_scan(s, cfg->channel, err, errlen)) != 0)
		return rc;
	if ((rc = timestamp_clock(s, err, errlen)) != 0)
		return rc;
	sampling_rate(s, cfg->rate_hz ? cfg->rate_hz : 1000);
	rate = (uint64_t)(1000000000 / s->period_ns);
	if (cfg->trigger && (rc = set_trigger(s, cfg, err, errlen)) != 0)
		return rc;
	/* A second of capture, so a loop held up by a slow disk loses nothing; a watermark so it
	 * is woken about WAKEUPS_PER_S times a second, not once per scan (10 kHz). */
	length = rate * BUFFER_SECONDS;
	if (length < BUFFER_MIN_SCANS)
		length = BUFFER_MIN_SCANS;
	buffer_setting(s, "length", length);
	buffer_setting(s, "watermark", rate / WAKEUPS_PER_S > 1 ? rate / WAKEUPS_PER_S : 1);
	rc = write_text(enable, "1");
	if (rc != 0) {
		char trig[PATH_MAX + 32], cur[64] = "";

		snprintf(trig, sizeof(trig), "%s/trigger/current_trigger", s->dir);
		if (read_text(trig, cur, sizeof(cur)) == 0 && cur[0] == '\0' && rc == -EINVAL) {
			list_triggers(cfg->sysfs_root, trig, sizeof(trig));
			msg(err, errlen, "%s: cannot start buffered capture: the device has no "
			    "trigger (set trigger = NAME; there: %s)", s->label,
			    trig[0] ? trig : "none");
			return -PL_EINVAL;
		}
		msg(err, errlen, "%s: cannot start buffered capture (%s): %s%s", s->label, enable,
		    strerror(-rc), hint(-rc));
		return -PL_EIO;
	}
	s->enabled = 1;
	/* Scans can be stamped before this moment (capture starts with the write above, a
	 * timestamp may be taken at the start of a conversion): no floor for the first ones. */
	s->last_t_us = INT64_MIN;
	s->buf = malloc((READ_SCANS + 1) * s->scan_bytes);
	if (s->buf == NULL) {
		msg(err, errlen, "%s: out of memory", s->label);
		return -PL_ENOMEM;
	}
	return 0;
}

/* CLOCK_REALTIME minus the timestamps' clock, µs, now. */
static int64_t to_real_us(const struct iio *s)
{
	if (s->ts_clock == CLOCK_REALTIME)
		return 0;
	if (s->ts_clock == CLOCK_MONOTONIC)
		return pl_clock_wall_minus_mono_us();
	/* another kernel clock (boottime, tai, monotonic_raw): its distance to the monotonic
	 * one is the kernel's, the rest the clock seam's */
	return pl_clock_wall_minus_mono_us() +
	       (kernel_ns(CLOCK_MONOTONIC) - kernel_ns(s->ts_clock)) / 1000;
}

static int read_buffer(struct iio *s, struct pl_sample *out, size_t cap,
		       struct pl_live_info *info, char *err, size_t errlen)
{
	size_t want, n;
	int64_t now_us = 0, offset = 0, period_us = s->period_ns / 1000;
	ssize_t got;
	int rc;

	if (cap == 0)
		return 0;
	if ((rc = check_present(s, err, errlen)) != 0)
		return rc;
	/* Whole scans only: the kernel refuses a read shorter than one (EINVAL) and returns
	 * whole scans; a fake (a FIFO) may return part of one, kept in buf for next time. */
	want = (cap < READ_SCANS ? cap : READ_SCANS) * s->scan_bytes;
	got = read(s->fd, s->buf + s->have, want);
	if (got < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		return gone(s, "reading its buffer", errno, err, errlen);
	}
	if (got == 0) {
		/* The kernel says end of file when the buffer was disabled under us (its scan
		 * size is then 0); a FIFO when its writer went away. */
		return gone(s, "its buffer reached end of file (device removed, or capture "
			    "stopped by another program)", 0, err, errlen);
	}
	s->have += (size_t)got;
	n = s->have / s->scan_bytes;
	if (n == 0)
		return 0;
	if (s->have_ts)
		offset = to_real_us(s);
	else
		now_us = pl_clock_wall_us();
	for (size_t i = 0; i < n; i++) {
		const unsigned char *scan = s->buf + i * s->scan_bytes;
		int64_t t;

		if (s->have_ts) {
			int64_t ts = pl_iio_decode(&s->ttype, scan + s->ts_off);

			t = ts / 1000 + offset;
			/* unsigned: a garbage timestamp must not overflow */
			uint64_t d = (uint64_t)ts - (uint64_t)s->last_ts_ns;

			if (s->have_last_ts && ts > s->last_ts_ns &&
			    d > (uint64_t)s->period_ns + (uint64_t)s->period_ns / 2) {

				/* more than one and a half periods: the scans between were lost
				 * (kernel buffer full, device hiccup) */
				if (info->lost == 0)
					info->gap_from_us = s->last_t_us;
				info->lost += (d + (uint64_t)s->period_ns / 2) /
					      (uint64_t)s->period_ns - 1;
				info->gap_to_us = t < s->last_t_us ? s->last_t_us : t;
			}
			s->last_ts_ns = ts;
			s->have_last_ts = 1;
		} else {
			/* no kernel time: the last scan is now, the others a period apart before */
			t = now_us - (int64_t)(n - 1 - i) * period_us;
		}
		if (t < s->last_t_us)
			t = s->last_t_us;
		out[i].t_us = t;
		out[i].v = (int32_t)pl_iio_decode(&s->vtype, scan + s->val_off);
		s->last_t_us = t;
	}
	s->have -= n * s->scan_bytes;
	memmove(s->buf, s->buf + n * s->scan_bytes, s->have);
	return (int)n;
}

/* ---- the seam ----------------------------------------------------------------------------- */

static void iio_close(void *self)
{
	struct iio *s = self;

	if (s == NULL)
		return;
	if (s->enabled) {
		char path[PATH_MAX + 32];

		snprintf(path, sizeof(path), "%s/buffer/enable", s->dir);
		(void)write_text(path, "0");
	}
	if (s->fd >= 0)
		close(s->fd);
	if (s->raw_fd >= 0)
		close(s->raw_fd);
	free(s->buf);
	free(s);
}

static int iio_open(void **self, const void *config, char *err, size_t errlen)
{
	struct pl_iio_config c = *(const struct pl_iio_config *)config;
	struct iio *s;
	int rc;

	*self = NULL;
	if (c.device == NULL || c.device[0] == '\0') {
		msg(err, errlen, "iio: no device configured (e.g. device = ads1015)");
		return -PL_EINVAL;
	}
	if (c.sysfs_root == NULL)
		c.sysfs_root = "/sys";
	if (c.dev_root == NULL)
		c.dev_root = "/dev";
	if (c.rate_hz == 0)
		c.rate_hz = 1000;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		msg(err, errlen, "iio device %s: out of memory", c.device);
		return -PL_ENOMEM;
	}
	s->fd = -1;
	s->raw_fd = -1;
	s->mode = c.mode;
	s->period_ns = 1000000000 / c.rate_hz;
	s->last_t_us = pl_clock_wall_us();
	s->check_every_ns = c.presence_check_ns < 0 ? 0 :
			    c.presence_check_ns ? c.presence_check_ns : PRESENCE_CHECK_NS;
	s->next_check_ns = pl_clock_mono_us() * 1000 + s->check_every_ns;
	if (strchr(c.device, '/'))
		rc = find_by_path(s, c.device, err, errlen);
	else
		rc = find_by_name(s, &c, err, errlen);
	if (rc == 0)
		rc = s->mode == PL_IIO_BUFFER ? open_buffer(s, &c, err, errlen) :
						       open_poll(s, &c, err, errlen);
	if (rc != 0) {
		iio_close(s);
		return rc;
	}
	*self = s;
	return 0;
}

static int iio_fd(void *self)
{
	return ((struct iio *)self)->fd;
}

static int iio_read(void *self, void *buf, size_t cap, struct pl_live_info *info, char *err,
		    size_t errlen)
{
	struct iio *s = self;

	memset(info, 0, sizeof(*info));
	if (s->mode == PL_IIO_BUFFER)
		return read_buffer(s, buf, cap, info, err, errlen);
	return read_poll(s, buf, cap, info, err, errlen);
}

const struct pl_live_ops pl_live_iio = {
	.name = "iio",
	.kind = PL_LIVE_SAMPLES,
	.open = iio_open,
	.fd = iio_fd,
	.read = iio_read,
	.level = NULL,
	.close = iio_close,
};
