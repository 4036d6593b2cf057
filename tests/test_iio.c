/* SPDX-License-Identifier: MIT */
/*
 * Tests of the IIO ADC source (src/linux/src_iio.c).
 *
 * The CI machine has no ADC, so every test builds a fake of the kernel's interface in a
 * temporary directory: a sysfs tree (bus/iio/devices/iio:deviceN as a link into devices/, as
 * the kernel makes it, with name, in_voltageN_raw, scan_elements/, buffer/, trigger/) and a
 * /dev/iio:deviceN that is a FIFO the test writes scans into. The test holds the FIFO open
 * read-write, so the source sees EAGAIN when it is empty, a short read when the test wrote
 * part of a scan, and end of file when the test closes its end (the device went away).
 * These are fakes of the kernel's interface, not of its behaviour in every detail: the real
 * character device returns whole scans only, which the source also handles.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "powerlogger/detector.h"
#include "sources/live.h"
#include "sources/src_iio.h"
#include "testutil.h"

struct fake {
	char root[64];          /* the temporary directory */
	char sysfs[128];        /* root/sys */
	char dev[128];          /* root/dev */
	char devices[192];      /* sysfs/bus/iio/devices */
	int writer;             /* the FIFO's end the test writes to; -1 when closed */
};

static struct fake fk;

static void put(const char *text, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes text to a file of the fake tree (path relative to the sysfs root). */
static void put(const char *text, const char *fmt, ...)
{
	char rel[512], path[768];
	va_list ap;
	FILE *f;

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	snprintf(path, sizeof(path), "%s/%s", fk.sysfs, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* The text of a file of the fake tree, trailing newline removed. */
static const char *get(const char *rel)
{
	static char text[256];
	char path[768];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", fk.sysfs, rel);
	f = fopen(path, "r");
	if (f == NULL)
		return "(missing)";
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	while (n > 0 && text[n - 1] == '\n')
		n--;
	text[n] = '\0';
	return text;
}

static void mkdirs(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void mkdirs(const char *fmt, ...)
{
	char rel[512], path[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	snprintf(path, sizeof(path), "%s/%s", fk.sysfs, rel);
	for (char *p = path + strlen(fk.root) + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(path, 0755);
			*p = '/';
		}
	}
	mkdir(path, 0755);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_tree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * Makes device iio:device<num> named name: four channels in_voltage0..3_raw, and unless
 * no_buffer, scan elements for them (channel 0 enabled, as a previous user might have left
 * it), a timestamp unless no_ts, buffer/, trigger/ and the FIFO /dev/iio:device<num>.
 */
static void add_device(unsigned num, const char *name, const char *vtype, int no_ts,
		       int no_buffer)
{
	char real[64], link[512], target[256];

	snprintf(real, sizeof(real), "devices/platform/i2c-1/%u/iio:device%u", num, num);
	mkdirs("%s", real);
	mkdirs("bus/iio/devices");
	snprintf(link, sizeof(link), "%s/iio:device%u", fk.devices, num);
	snprintf(target, sizeof(target), "../../../%s", real);
	assert_int_equal(symlink(target, link), 0);
	{
		char text[80];

		snprintf(text, sizeof(text), "%s\n", name);
		put(text, "%s/name", real);
	}
	for (unsigned c = 0; c < 4; c++) {
		char text[16];

		snprintf(text, sizeof(text), "%u\n", 100 * num + c);
		put(text, "%s/in_voltage%u_raw", real, c);
	}
	put("1000\n", "%s/sampling_frequency", real);
	put("realtime\n", "%s/current_timestamp_clock", real);
	if (no_buffer)
		return;
	mkdirs("%s/scan_elements", real);
	mkdirs("%s/buffer", real);
	mkdirs("%s/trigger", real);
	for (unsigned c = 0; c < 4; c++) {
		char text[16];

		put(c == 0 ? "1\n" : "0\n", "%s/scan_elements/in_voltage%u_en", real, c);
		snprintf(text, sizeof(text), "%u\n", c);
		put(text, "%s/scan_elements/in_voltage%u_index", real, c);
		put(vtype, "%s/scan_elements/in_voltage%u_type", real, c);
	}
	if (!no_ts) {
		put("0\n", "%s/scan_elements/in_timestamp_en", real);
		put("4\n", "%s/scan_elements/in_timestamp_index", real);
		put("le:s64/64>>0\n", "%s/scan_elements/in_timestamp_type", real);
	}
	put("0\n", "%s/buffer/enable", real);
	put("2\n", "%s/buffer/length", real);
	put("1\n", "%s/buffer/watermark", real);
	put("\n", "%s/trigger/current_trigger", real);
	snprintf(link, sizeof(link), "%s/iio:device%u", fk.dev, num);
	assert_int_equal(mkfifo(link, 0600), 0);
}

/* Opens the test's (writing) end of device num's FIFO. */
static void open_writer(unsigned num)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/iio:device%u", fk.dev, num);
	fk.writer = open(path, O_RDWR | O_NONBLOCK);
	assert_true(fk.writer >= 0);
}

static int setup(void **state)
{
	(void)state;
	memset(&fk, 0, sizeof(fk));
	fk.writer = -1;
	snprintf(fk.root, sizeof(fk.root), "/tmp/test_iio.XXXXXX");
	assert_non_null(mkdtemp(fk.root));
	snprintf(fk.sysfs, sizeof(fk.sysfs), "%s/sys", fk.root);
	snprintf(fk.dev, sizeof(fk.dev), "%s/dev", fk.root);
	snprintf(fk.devices, sizeof(fk.devices), "%s/bus/iio/devices", fk.sysfs);
	assert_int_equal(mkdir(fk.sysfs, 0755), 0);
	assert_int_equal(mkdir(fk.dev, 0755), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (fk.writer >= 0)
		close(fk.writer);
	rm_tree(fk.root);
	return 0;
}

static struct pl_iio_config meter(const char *device, uint32_t channel, enum pl_iio_mode mode)
{
	struct pl_iio_config m = {
		.name = "m",
		.device = device,
		.channel = channel,
		.mode = mode,
		/* the fake tree is removed under the source: look at every read */
		.presence_check_ns = -1,
		.rate_hz = 1000,
		.sysfs_root = fk.sysfs,
		.dev_root = fk.dev,
	};
	return m;
}

static int64_t now_us(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Waits for the source's fd (at most ms) and reads. */
static int wait_read(void *src, struct pl_sample *buf, size_t cap, struct pl_live_info *info,
		     char *err, int ms)
{
	struct pollfd p = { .fd = pl_live_iio.fd(src), .events = POLLIN };

	poll(&p, 1, ms);
	return pl_live_iio.read(src, buf, cap, info, err, 256);
}

/* ---- finding the device ---------------------------------------------------------------- */

static void test_ops(void **state)
{
	(void)state;
	assert_string_equal(pl_live_iio.name, "iio");
	assert_int_equal(pl_live_iio.kind, PL_LIVE_SAMPLES);
	assert_null(pl_live_iio.level);
	assert_ptr_equal(pl_live_ops_for(PL_CONFIG_SOURCE_IIO), &pl_live_iio);
}

/* By name: the second device; its channel 1 reads 101 (100 * num + channel). */
static void test_find_by_name(void **state)
{
	struct pl_iio_config m = meter("mcp3008", 1, PL_IIO_POLL);
	struct pl_live_info info;
	struct pl_sample s[4];
	char err[256] = "";
	void *src;
	int n;

	(void)state;
	add_device(0, "ads1015", "le:s12/16>>4\n", 0, 0);
	add_device(1, "mcp3008", "be:u10/16>>6\n", 0, 0);
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), 0);
	n = wait_read(src, s, 4, &info, err, 100);
	assert_int_equal(n, 1);
	assert_int_equal(s[0].v, 101);
	pl_live_iio.close(src);
}

/* By path: the link in bus/iio/devices and the real directory it points to. */
static void test_find_by_path(void **state)
{
	struct pl_iio_config m = meter(NULL, 2, PL_IIO_POLL);
	struct pl_live_info info;
	char path[512], err[256] = "";
	struct pl_sample s[1];
	void *src;

	(void)state;
	add_device(0, "ads1015", "le:s12/16>>4\n", 0, 0);
	add_device(3, "ads1015", "le:s12/16>>4\n", 0, 0);
	snprintf(path, sizeof(path), "%s/iio:device3", fk.devices);
	m.device = path;
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), 0);
	assert_int_equal(wait_read(src, s, 1, &info, err, 100), 1);
	assert_int_equal(s[0].v, 302);
	pl_live_iio.close(src);

	snprintf(path, sizeof(path), "%s/devices/platform/i2c-1/0/iio:device0", fk.sysfs);
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), 0);
	assert_int_equal(wait_read(src, s, 1, &info, err, 100), 1);
	assert_int_equal(s[0].v, 2);
	pl_live_iio.close(src);

	/* a directory that is not an IIO device */
	m.device = fk.sysfs;
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), -PL_EINVAL);
	assert_non_null(strstr(err, "not an IIO device directory"));
	assert_null(src);
	snprintf(path, sizeof(path), "%s/iio:device9", fk.devices);
	m.device = path;
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), -PL_ENOENT);
	assert_non_null(strstr(err, "iio:device9: No such file or directory"));
}

/* Unknown and ambiguous names, no IIO at all: the message says what there is. */
static void test_find_errors(void **state)
{
	struct pl_iio_config m = meter("ads1115", 0, PL_IIO_POLL);
	char err[256] = "";
	void *src;

	(void)state;
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), -PL_ENOENT);
	assert_non_null(strstr(err, "iio device ads1115: cannot list "));
	assert_non_null(strstr(err, "driver loaded"));

	add_device(0, "ads1015", "le:s12/16>>4\n", 0, 0);
	add_device(1, "mcp3008", "be:u10/16>>6\n", 0, 0);
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), -PL_ENOENT);
	assert_non_null(strstr(err, "iio device ads1115: not found in "));
	assert_non_null(strstr(err, "(there: ads1015 (iio:device0), mcp3008 (iio:device1))"));

	add_device(2, "mcp3008", "be:u10/16>>6\n", 0, 0);
	m.device = "mcp3008";
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), -PL_EINVAL);
	assert_non_null(strstr(err, "iio device mcp3008: 2 devices have this name"));
	assert_non_null(strstr(err, "give the one you mean as the path of its sysfs directory"));

	m.device = "ads1015";
	m.channel = 7;
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), -PL_ENOENT);
	assert_non_null(strstr(err, "iio device ads1015: no channel 7: "));
	assert_non_null(strstr(err, "in_voltage7_raw does not exist (channels there: 0, 1, 2, 3)"));

	m.device = "";
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), -PL_EINVAL);
}

/* ---- poll mode -------------------------------------------------------------------------- */

/*
 * 1000 Hz for ~0.15 s: every sample is the value written last, times never decrease and
 * follow the clock; then 60 ms without reading: the missed ticks come back as lost, with the
 * span they cover.
 */
static void test_poll(void **state)
{
	struct pl_iio_config m = meter("ads1015", 1, PL_IIO_POLL);
	struct pl_live_info info;
	struct pl_sample s[8];
	char err[256] = "", path[512];
	int64_t start = now_us(CLOCK_REALTIME), last = 0, end;
	int raw, value = 1, count = 0, changes = 0; /* channel 1 of device 0 reads 1 */
	void *src;

	(void)state;
	add_device(0, "ads1015", "le:s12/16>>4\n", 0, 0);
	snprintf(path, sizeof(path), "%s/iio:device0/in_voltage1_raw", fk.devices);
	raw = open(path, O_WRONLY);
	assert_true(raw >= 0);
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), 0);
	end = now_us(CLOCK_MONOTONIC) + 150000;
	while (now_us(CLOCK_MONOTONIC) < end) {
		int n = wait_read(src, s, 8, &info, err, 20);

		assert_true(n >= 0);
		if (n == 0)
			continue;
		assert_int_equal(n, 1); /* one sample per tick, however large the buffer */
		count++;
		assert_int_equal(s[0].v, value);
		assert_true(s[0].t_us >= last);
		assert_true(s[0].t_us >= start && s[0].t_us <= now_us(CLOCK_REALTIME));
		last = s[0].t_us;
		if (count % 10 == 0) {
			/* a new value, as fixed-width text so no old digits remain (pwrite at 0,
			 * no truncation: the source never sees an empty file) */
			char text[16];

			value = -500 + changes++;
			snprintf(text, sizeof(text), "%6d\n", value);
			assert_int_equal(pwrite(raw, text, strlen(text), 0), (ssize_t)strlen(text));
			n = wait_read(src, s, 8, &info, err, 20);
			if (n == 1) {
				count++;
				assert_int_equal(s[0].v, value);
				last = s[0].t_us;
			}
		}
	}
	assert_true(count >= 30);  /* ~150 at 1000 Hz; a busy machine (valgrind, ctest -j) fewer */
	assert_true(changes >= 3);

	sleep_ms(60);
	assert_int_equal(pl_live_iio.read(src, s, 8, &info, err, sizeof(err)), 1);
	assert_true(info.lost >= 40 && info.lost <= 1000);
	assert_int_equal(info.gap_from_us, last);
	assert_int_equal(info.gap_to_us, s[0].t_us);
	assert_true(info.gap_to_us - info.gap_from_us >= 55000);
	assert_int_equal(s[0].v, value);
	pl_live_iio.close(src);
	close(raw);
}

/* The device's directory goes away: -PL_EIO, the message says so. */
static void test_poll_gone(void **state)
{
	struct pl_iio_config m = meter("ads1015", 0, PL_IIO_POLL);
	struct pl_live_info info;
	char err[256] = "", path[256];
	struct pl_sample s[1];
	void *src;

	(void)state;
	add_device(0, "ads1015", "le:s12/16>>4\n", 0, 0);
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), 0);
	assert_int_equal(wait_read(src, s, 1, &info, err, 100), 1);
	snprintf(path, sizeof(path), "%s/devices/platform/i2c-1/0", fk.sysfs);
	rm_tree(path);
	assert_int_equal(wait_read(src, s, 1, &info, err, 100), -PL_EIO);
	assert_non_null(strstr(err, "iio device ads1015: gone (unplugged?): "));
	pl_live_iio.close(src);
}

/* A value file that holds no number: refused at open, and -PL_EIO when it turns bad later. */
static void test_poll_bad_value(void **state)
{
	struct pl_iio_config m = meter("ads1015", 3, PL_IIO_POLL);
	struct pl_live_info info;
	struct pl_sample s[1];
	char err[256] = "";
	void *src;

	(void)state;
	add_device(0, "ads1015", "le:s12/16>>4\n", 0, 0);
	put("oops\n", "bus/iio/devices/iio:device0/in_voltage3_raw");
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), -PL_EIO);
	assert_non_null(strstr(err, "in_voltage3_raw holds no number: \"oops"));
	assert_null(src);

	put("42\n", "bus/iio/devices/iio:device0/in_voltage3_raw");
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), 0);
	assert_int_equal(pl_live_iio.read(src, s, 0, &info, err, sizeof(err)), 0); /* cap 0 */
	assert_int_equal(wait_read(src, s, 1, &info, err, 100), 1);
	assert_int_equal(s[0].v, 42);
	put("99999999999\n", "bus/iio/devices/iio:device0/in_voltage3_raw");
	assert_int_equal(wait_read(src, s, 1, &info, err, 100), -PL_EIO);
	assert_non_null(strstr(err, "channel value is not a number: \"99999999999"));
	pl_live_iio.close(src);
}

/* ---- buffer mode ------------------------------------------------------------------------ */

/* Appends n bytes to the FIFO. */
static void feed(const void *p, size_t n)
{
	assert_int_equal(write(fk.writer, p, n), (ssize_t)n);
}

static void put_le(unsigned char *p, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put_be(unsigned char *p, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		p[bytes - 1 - i] = (unsigned char)(v >> (8 * i));
}

/* A scan of the ads1015 layout: le:s12/16>>4 at 0, padding, le:s64 timestamp at 8. */
static void scan_s12(unsigned char scan[16], int v, int64_t ts_ns)
{
	memset(scan, 0xee, 16); /* padding the source must ignore */
	put_le(scan, (uint64_t)(uint16_t)((unsigned)v << 4) | 0x5, 2); /* low bits: junk */
	put_le(scan + 8, (uint64_t)ts_ns, 8);
}

/*
 * Signed 12-bit values shifted by 4, kernel timestamps in the realtime clock. Opening enables
 * exactly our channel and the timestamp (channel 0, left on by "someone", goes off), sets the
 * rate, length and watermark, and buffer/enable = 1; closing writes 0.
 */
static void test_buffer_s12(void **state)
{
	struct pl_iio_config m = meter("ads1015", 2, PL_IIO_BUFFER);
	static const int values[] = { -2048, -1, 0, 1, 2047, -1000 };
	const char *dir = "bus/iio/devices/iio:device0";
	struct pl_live_info info;
	struct pl_sample s[16];
	unsigned char scan[16];
	char err[256] = "", rel[256];
	int64_t t0 = now_us(CLOCK_REALTIME) * 1000;
	void *src;

	(void)state;
	add_device(0, "ads1015", "le:s12/16>>4\n", 0, 0);
	open_writer(0);
	m.rate_hz = 2000;
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), 0);
	assert_true(pl_live_iio.fd(src) >= 0);
#define F(file) (snprintf(rel, sizeof(rel), "%s/%s", dir, file), get(rel))
	assert_string_equal(F("buffer/enable"), "1");
	assert_string_equal(F("scan_elements/in_voltage0_en"), "0");
	assert_string_equal(F("scan_elements/in_voltage1_en"), "0");
	assert_string_equal(F("scan_elements/in_voltage2_en"), "1");
	assert_string_equal(F("scan_elements/in_timestamp_en"), "1");
	assert_string_equal(F("sampling_frequency"), "2000");
	assert_string_equal(F("buffer/length"), "4096");
	assert_string_equal(F("buffer/watermark"), "20");
	assert_string_equal(F("trigger/current_trigger"), ""); /* none configured: left alone */

	/* nothing yet: EAGAIN is 0 */
	assert_int_equal(pl_live_iio.read(src, s, 16, &info, err, sizeof(err)), 0);
	assert_int_equal(info.lost, 0);
	for (int i = 0; i < 6; i++) {
		scan_s12(scan, values[i], t0 + i * 500000);
		feed(scan, sizeof(scan));
	}
	assert_int_equal(wait_read(src, s, 16, &info, err, 100), 6);
	assert_int_equal(info.lost, 0);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(s[i].v, values[i]);
		assert_int_equal(s[i].t_us, t0 / 1000 + i * 500);
	}
	pl_live_iio.close(src);
	assert_string_equal(F("buffer/enable"), "0");
#undef F
}

/* Big-endian unsigned 16-bit values without a timestamp: times are the read's, a period
 * apart before it; a configured trigger is written. */
static void test_buffer_be_u16_no_ts(void **state)
{
	struct pl_iio_config m = meter("adc", 0, PL_IIO_BUFFER);
	static const unsigned values[] = { 0, 1, 0xabcd, 0xffff };
	struct pl_live_info info;
	struct pl_sample s[8];
	unsigned char scan[2];
	char err[256] = "";
	int64_t before, after;
	void *src;

	(void)state;
	add_device(0, "adc", "be:u16/16>>0\n", 1, 0);
	open_writer(0);
	m.trigger = "adc-dev0";
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), 0);
	assert_string_equal(get("bus/iio/devices/iio:device0/trigger/current_trigger"),
			    "adc-dev0");
	for (int i = 0; i < 4; i++) {
		put_be(scan, values[i], 2);
		feed(scan, 2);
	}
	before = now_us(CLOCK_REALTIME);
	assert_int_equal(wait_read(src, s, 8, &info, err, 100), 4);
	after = now_us(CLOCK_REALTIME);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(s[i].v, (int32_t)values[i]);
		if (i > 0)
			assert_int_equal(s[i].t_us - s[i - 1].t_us, 1000);
	}
	assert_true(s[3].t_us >= before && s[3].t_us <= after);
	assert_int_equal(info.lost, 0);
	pl_live_iio.close(src);
}

/* Short reads across scan boundaries, a caller's cap smaller than what is there, EAGAIN. */
static void test_buffer_short_reads(void **state)
{
	struct pl_iio_config m = meter("ads1015", 0, PL_IIO_BUFFER);
	struct pl_live_info info;
	struct pl_sample s[8];
	unsigned char scans[5 * 16];
	char err[256] = "";
	int64_t t0 = INT64_C(1700000000000000000);
	void *src;

	(void)state;
	add_device(0, "ads1015", "le:s12/16>>4\n", 0, 0);
	open_writer(0);
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), 0);
	for (int i = 0; i < 5; i++)
		scan_s12(scans + 16 * i, 10 * i - 20, t0 + i * 1000000);

	feed(scans, 24); /* one and a half */
	assert_int_equal(wait_read(src, s, 8, &info, err, 100), 1);
	assert_int_equal(s[0].v, -20);
	assert_int_equal(pl_live_iio.read(src, s, 8, &info, err, sizeof(err)), 0); /* EAGAIN */
	feed(scans + 24, 3); /* still not whole */
	assert_int_equal(wait_read(src, s, 8, &info, err, 100), 0);
	feed(scans + 27, 5 + 16 * 3 - 3); /* the rest of the second, two more, 3 bytes short */
	assert_int_equal(wait_read(src, s, 2, &info, err, 100), 2); /* cap 2 */
	assert_int_equal(s[0].v, -10);
	assert_int_equal(s[1].v, 0);
	assert_int_equal(s[1].t_us, t0 / 1000 + 2000);
	assert_int_equal(wait_read(src, s, 8, &info, err, 100), 1); /* the one left over */
	assert_int_equal(s[0].v, 10);
	assert_int_equal(pl_live_iio.read(src, s, 8, &info, err, sizeof(err)), 0);
	feed(scans + 77, 3);
	assert_int_equal(wait_read(src, s, 8, &info, err, 100), 1);
	assert_int_equal(s[0].v, 20);
	assert_int_equal(s[0].t_us, t0 / 1000 + 4000);
	assert_int_equal(info.lost, 0);
	assert_int_equal(pl_live_iio.read(src, s, 8, &info, err, sizeof(err)), 0);
	pl_live_iio.close(src);
}

/* A jump in the kernel's timestamps: the scans between were lost, with the span. */
static void test_buffer_gap(void **state)
{
	struct pl_iio_config m = meter("ads1015", 0, PL_IIO_BUFFER);
	struct pl_live_info info;
	struct pl_sample s[8];
	unsigned char scan[16];
	char err[256] = "";
	int64_t t0 = INT64_C(1700000000000000000);
	void *src;

	(void)state;
	add_device(0, "ads1015", "le:s12/16>>4\n", 0, 0);
	open_writer(0);
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), 0);
	/* 1 kHz: 0, 1 ms, 2.4 ms (jitter, not a loss), then 12.4 ms (9 lost), 13.4 ms */
	scan_s12(scan, 1, t0);
	feed(scan, 16);
	scan_s12(scan, 2, t0 + 1000000);
	feed(scan, 16);
	scan_s12(scan, 3, t0 + 2400000);
	feed(scan, 16);
	assert_int_equal(wait_read(src, s, 8, &info, err, 100), 3);
	assert_int_equal(info.lost, 0);
	scan_s12(scan, 4, t0 + 12400000);
	feed(scan, 16);
	scan_s12(scan, 5, t0 + 13400000);
	feed(scan, 16);
	assert_int_equal(wait_read(src, s, 8, &info, err, 100), 2);
	assert_int_equal(info.lost, 9);
	assert_int_equal(info.gap_from_us, t0 / 1000 + 2400);
	assert_int_equal(info.gap_to_us, t0 / 1000 + 12400);
	assert_int_equal(s[0].t_us, t0 / 1000 + 12400);
	pl_live_iio.close(src);
}

/* The kernel stamps in CLOCK_MONOTONIC: the samples come out in wall-clock time. */
static void test_buffer_monotonic(void **state)
{
	struct pl_iio_config m = meter("ads1015", 0, PL_IIO_BUFFER);
	struct pl_live_info info;
	struct pl_sample s[2];
	unsigned char scan[16];
	char err[256] = "";
	int64_t mono, real;
	void *src;

	(void)state;
	add_device(0, "ads1015", "le:s12/16>>4\n", 0, 0);
	put("monotonic\n", "bus/iio/devices/iio:device0/current_timestamp_clock");
	open_writer(0);
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), 0);
	mono = now_us(CLOCK_MONOTONIC);
	real = mono + tu_wall_minus_mono_us(); /* the wall clock at `mono` */
	scan_s12(scan, 7, (mono - 5000) * 1000);
	feed(scan, 16);
	assert_int_equal(wait_read(src, s, 2, &info, err, 100), 1);
	assert_int_equal(s[0].v, 7);
	/* 5 ms before `mono`, in wall time (the source's offset and ours agree to far better) */
	assert_true(s[0].t_us >= real - 5000 - 1000 && s[0].t_us <= real - 5000 + 1000);
	pl_live_iio.close(src);

	put("bogus\n", "bus/iio/devices/iio:device0/current_timestamp_clock");
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), -PL_EINVAL);
	assert_non_null(strstr(err, "unknown timestamp clock \"bogus\""));
	assert_string_equal(get("bus/iio/devices/iio:device0/buffer/enable"), "0");
}

/* The writer goes away (read gives end of file), or the sysfs directory does: -PL_EIO. */
static void test_buffer_gone(void **state)
{
	struct pl_iio_config m = meter("ads1015", 0, PL_IIO_BUFFER);
	struct pl_live_info info;
	struct pl_sample s[2];
	unsigned char scan[16];
	char err[256] = "", path[256];
	void *src;

	(void)state;
	add_device(0, "ads1015", "le:s12/16>>4\n", 0, 0);
	open_writer(0);
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), 0);
	scan_s12(scan, 7, 1000);
	feed(scan, 16);
	close(fk.writer);
	fk.writer = -1;
	assert_int_equal(wait_read(src, s, 2, &info, err, 100), 1); /* what was there first */
	assert_int_equal(wait_read(src, s, 2, &info, err, 100), -PL_EIO);
	assert_non_null(strstr(err, "iio device ads1015: gone (unplugged?): "));
	pl_live_iio.close(src);

	open_writer(0);
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), 0);
	assert_int_equal(pl_live_iio.read(src, s, 2, &info, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/devices/platform/i2c-1/0", fk.sysfs);
	rm_tree(path);
	assert_int_equal(pl_live_iio.read(src, s, 2, &info, err, sizeof(err)), -PL_EIO);
	assert_non_null(strstr(err, "iio device ads1015: gone (unplugged?): "));
	pl_live_iio.close(src); /* buffer/enable is gone too: closing must not mind */
}

/*
 * The presence check's period is the source's configuration (presence_check_ns): by default
 * once a second, so a tree removed just after a check goes unnoticed by reads that cannot
 * tell, until the period has passed.
 */
static void test_presence_check_period(void **state)
{
	struct pl_iio_config m = meter("ads1015", 0, PL_IIO_BUFFER);
	struct pl_live_info info;
	struct pl_sample s[2];
	char err[256] = "", path[256];
	void *src;
	int writer;

	(void)state;
	add_device(0, "ads1015", "le:s12/16>>4\n", 0, 0);
	add_device(1, "mcp3008", "le:s12/16>>4\n", 0, 0);
	open_writer(0);
	m.presence_check_ns = 0; /* the default: one second */
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/devices/platform/i2c-1/0", fk.sysfs);
	rm_tree(path);
	assert_int_equal(pl_live_iio.read(src, s, 2, &info, err, sizeof(err)), 0);
	pl_live_iio.close(src);

	writer = fk.writer;
	open_writer(1);
	m.device = "mcp3008";
	m.presence_check_ns = 200000000; /* 200 ms */
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/devices/platform/i2c-1/1", fk.sysfs);
	rm_tree(path);
	assert_int_equal(pl_live_iio.read(src, s, 2, &info, err, sizeof(err)), 0);
	sleep_ms(250);
	assert_int_equal(pl_live_iio.read(src, s, 2, &info, err, sizeof(err)), -PL_EIO);
	assert_non_null(strstr(err, "iio device mcp3008: gone (unplugged?): "));
	pl_live_iio.close(src);
	close(writer);
}

/* Open errors of buffered capture: messages with the path and what to do. */
static void test_buffer_errors(void **state)
{
	struct pl_iio_config m = meter("ads1015", 0, PL_IIO_BUFFER);
	char err[256] = "";
	void *src;

	(void)state;
	add_device(0, "ads1015", "le:s12/16>>4\n", 0, 1);
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), -PL_ENOENT);
	assert_non_null(strstr(err, "iio device ads1015: cannot open "));
	assert_non_null(strstr(err, "use mode = poll"));

	add_device(1, "mcp3008", "be:u10/16>>6\n", 0, 0);
	m.device = "mcp3008";
	m.channel = 5;
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), -PL_ENOENT);
	assert_non_null(strstr(err, "no channel 5 in buffered capture"));
	assert_non_null(strstr(err, "(channels there: 0, 1, 2, 3)"));

	m.channel = 1;
	put("le:s12/15>>0\n", "bus/iio/devices/iio:device1/scan_elements/in_voltage1_type");
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), -PL_EIO);
	assert_non_null(strstr(err, "cannot read a scan type"));

	put("be:u10/16>>6\n", "bus/iio/devices/iio:device1/scan_elements/in_voltage1_type");
	m.trigger = "nope";
	{
		char path[256];

		snprintf(path, sizeof(path), "%s/iio:device1/trigger", fk.devices);
		rm_tree(path);
	}
	assert_int_equal(pl_live_iio.open(&src, &m, err, sizeof(err)), -PL_EINVAL);
	assert_non_null(strstr(err, "trigger nope: the device takes no trigger"));
}

/* ---- layout arithmetic ------------------------------------------------------------------ */

static void test_parse_type(void **state)
{
	struct pl_iio_type t;

	(void)state;
	assert_int_equal(pl_iio_parse_type("le:s12/16>>4", &t), 0);
	assert_int_equal(t.be, 0);
	assert_int_equal(t.is_signed, 1);
	assert_int_equal(t.realbits, 12);
	assert_int_equal(t.storagebits, 16);
	assert_int_equal(t.repeat, 1);
	assert_int_equal(t.shift, 4);
	assert_int_equal(pl_iio_parse_type("be:u24/32X3>>8", &t), 0);
	assert_int_equal(t.be, 1);
	assert_int_equal(t.is_signed, 0);
	assert_int_equal(t.repeat, 3);
	assert_int_equal(pl_iio_parse_type("le:s64/64>>0", &t), 0);
	assert_int_equal(pl_iio_parse_type("le:S16/16>>0", &t), 0);
	assert_int_equal(t.is_signed, 1);
	static const char *const bad[] = {
		"", "le", "xe:s12/16>>4", "le:x12/16>>4", "le:s12/16", "le:s12/12>>0",
		"le:s17/16>>0", "le:s12/16>>5", "le:s12/16>>4 ", "le:s0/16>>0", "le:s/16>>0",
		"le:s12/16X>>0", "le:s12/16X0>>0", "le:s12/16>>", "le:s-1/16>>0",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(pl_iio_parse_type(bad[i], &t), -PL_EPARSE);
}

static void test_decode(void **state)
{
	struct pl_iio_type t;
	unsigned char p[8];

	(void)state;
	assert_int_equal(pl_iio_parse_type("le:s12/16>>4", &t), 0);
	put_le(p, 0x800f, 2);
	assert_int_equal(pl_iio_decode(&t, p), -2048);
	put_le(p, 0x7ff0, 2);
	assert_int_equal(pl_iio_decode(&t, p), 2047);
	put_le(p, 0xfff0, 2);
	assert_int_equal(pl_iio_decode(&t, p), -1);
	assert_int_equal(pl_iio_parse_type("be:s24/32>>8", &t), 0);
	put_be(p, 0xff800000u | 0xab, 4); /* -128 in 24 bits, junk below */
	assert_int_equal(pl_iio_decode(&t, p), -32768);
	assert_int_equal(pl_iio_parse_type("be:u10/16>>6", &t), 0);
	put_be(p, 0x3ffu << 6 | 0x3f, 2);
	assert_int_equal(pl_iio_decode(&t, p), 1023);
	assert_int_equal(pl_iio_parse_type("le:s64/64>>0", &t), 0);
	put_le(p, (uint64_t)INT64_C(-5), 8);
	assert_int_equal(pl_iio_decode(&t, p), -5);
	assert_int_equal(pl_iio_parse_type("le:u8/8>>0", &t), 0);
	p[0] = 0xfe;
	assert_int_equal(pl_iio_decode(&t, p), 254);
}

/*
 * The kernel's layout: channels by index (whatever order they are listed in), each aligned to
 * its storage size, the timestamp after them at a multiple of 8, the scan a multiple of the
 * largest element. Another enabled channel before ours moves ours along.
 */
static void test_layout(void **state)
{
	struct pl_iio_elem e[3];

	(void)state;
	memset(e, 0, sizeof(e));
	e[0].is_timestamp = 1;
	e[0].index = 4;
	assert_int_equal(pl_iio_parse_type("le:s64/64>>0", &e[0].type), 0);
	e[1].index = 2; /* ours */
	assert_int_equal(pl_iio_parse_type("be:s24/32>>8", &e[1].type), 0);
	e[2].index = 0; /* another channel, left on */
	assert_int_equal(pl_iio_parse_type("le:u12/16>>0", &e[2].type), 0);
	assert_int_equal(pl_iio_layout(e, 3), 16);
	assert_int_equal(e[0].index, 0);
	assert_int_equal(e[0].offset, 0);
	assert_int_equal(e[1].index, 2);
	assert_int_equal(e[1].offset, 4);
	assert_true(e[2].is_timestamp);
	assert_int_equal(e[2].offset, 8);

	/* three 16-bit channels and a timestamp: 6 bytes, timestamp at 8, 16 in all */
	memset(e, 0, sizeof(e));
	for (int i = 0; i < 2; i++) {
		e[i].index = (unsigned)(1 - i);
		assert_int_equal(pl_iio_parse_type("le:s16/16>>0", &e[i].type), 0);
	}
	e[2].is_timestamp = 1;
	e[2].index = 2;
	assert_int_equal(pl_iio_parse_type("le:s64/64>>0", &e[2].type), 0);
	assert_int_equal(pl_iio_layout(e, 3), 16);
	assert_int_equal(e[1].offset, 2);
	assert_int_equal(e[2].offset, 8);

	/* no timestamp: a lone 16-bit channel is 2 bytes; 8 + 32 bits pad to 8 */
	assert_int_equal(pl_iio_layout(e, 1), 2);
	memset(e, 0, sizeof(e));
	assert_int_equal(pl_iio_parse_type("le:u8/8>>0", &e[0].type), 0);
	e[1].index = 1;
	assert_int_equal(pl_iio_parse_type("le:u32/32>>0", &e[1].type), 0);
	assert_int_equal(pl_iio_layout(e, 2), 8);
	assert_int_equal(e[1].offset, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ops),
		cmocka_unit_test_setup_teardown(test_find_by_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_find_by_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_find_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poll, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poll_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poll_bad_value, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buffer_s12, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buffer_be_u16_no_ts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buffer_short_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buffer_gap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buffer_monotonic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buffer_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_presence_check_period, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buffer_errors, setup, teardown),
		cmocka_unit_test(test_parse_type),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_layout),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
