/* SPDX-License-Identifier: MIT */
/*
 * A fake IIO ADC in real time, for measuring what the daemon's IIO source costs (CPU per
 * second of a 10 kHz stream) on a machine without the hardware.
 *
 *   iiofeed [--dir DIR] [--seconds S] [--rate HZ] [--imp-per-kwh N] [--power-w W]
 *           [--pulse-ms MS] [--noise LSB] [--clock realtime|monotonic] [--name NAME]
 *           [--truth FILE]
 *
 * Makes (or takes, when DIR already holds one) a fake kernel interface like the one
 * tests/test_iio.c builds: DIR/sys/bus/iio/devices/iio:device0 with in_voltage0_raw and
 * scan elements for channel 0 (le:s12/16>>4, an ADS1015's) and a timestamp, and a FIFO
 * DIR/dev/iio:device0 for the character device. It prints the configuration lines for a
 * meter that reads it, then for S seconds (default 60) plays a meter LED seen by a fast
 * sensor: a baseline of 200 LSB with noise, a pulse of +1500 LSB for pulse-ms (10) every
 * 3.6e6 / (imp_per_kwh * power_w) seconds (1.8 s at 1000 imp/kWh and 2 kW).
 *
 * Every millisecond it writes the newest value into in_voltage0_raw (poll mode reads it);
 * every 10 ms, while buffer/enable says 1 (the daemon started a capture), it writes the
 * scans of those 10 ms into the FIFO (buffer mode reads them), as a kernel with a watermark
 * of 10 ms would wake its reader. When the reader falls behind and the FIFO is full, scans
 * are dropped as a kernel buffer drops them, and counted; the reader sees the timestamp gap.
 * --truth FILE gets the time of every pulse's first sample, one per line, in microseconds of
 * the timestamp clock (wall-clock time with --clock realtime): the end-to-end test counts the
 * pulses of each interval from it.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SCAN_BYTES 16   /* le:s12/16>>4 at 0, le:s64/64>>0 timestamp at 8 */
#define TICK_NS 1000000 /* raw value updated every millisecond */
#define FEED_TICKS 10   /* FIFO written every 10 ms */

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int64_t now_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void put(const char *dir, const char *file, const char *text)
{
	char path[PATH_MAX + 64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "w");
	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
		fprintf(stderr, "iiofeed: cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

static int read_small(const char *path, char *text, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, text, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
		n--;
	text[n] = '\0';
	return 0;
}

static void mkdir_p(const char *path)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s", path);
	for (char *q = p + 1; *q; q++) {
		if (*q == '/') {
			*q = '\0';
			mkdir(p, 0755);
			*q = '/';
		}
	}
	if (mkdir(p, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "iiofeed: cannot make %s: %s\n", p, strerror(errno));
		exit(1);
	}
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* The fake device (see the header comment), made under root. */
static void make_tree(const char *root, const char *name, uint32_t rate, const char *clock)
{
	char dev[PATH_MAX], text[64], path[PATH_MAX + 64];

	snprintf(dev, sizeof(dev), "%.3000s/sys/bus/iio/devices/iio:device0", root);
	mkdir_p(dev);
	snprintf(path, sizeof(path), "%s/scan_elements", dev);
	mkdir_p(path);
	snprintf(path, sizeof(path), "%s/buffer", dev);
	mkdir_p(path);
	snprintf(path, sizeof(path), "%s/trigger", dev);
	mkdir_p(path);
	snprintf(path, sizeof(path), "%s/dev", root);
	mkdir_p(path);
	snprintf(text, sizeof(text), "%s\n", name);
	put(dev, "name", text);
	put(dev, "in_voltage0_raw", "   200\n");
	snprintf(text, sizeof(text), "%" PRIu32 "\n", rate);
	put(dev, "sampling_frequency", text);
	snprintf(text, sizeof(text), "%s\n", clock);
	put(dev, "current_timestamp_clock", text);
	put(dev, "scan_elements/in_voltage0_en", "0\n");
	put(dev, "scan_elements/in_voltage0_index", "0\n");
	put(dev, "scan_elements/in_voltage0_type", "le:s12/16>>4\n");
	put(dev, "scan_elements/in_timestamp_en", "0\n");
	put(dev, "scan_elements/in_timestamp_index", "1\n");
	put(dev, "scan_elements/in_timestamp_type", "le:s64/64>>0\n");
	put(dev, "buffer/enable", "0\n");
	put(dev, "buffer/length", "4096\n");
	put(dev, "buffer/watermark", "1\n");
	put(dev, "trigger/current_trigger", "\n");
	snprintf(path, sizeof(path), "%s/dev/iio:device0", root);
	if (mkfifo(path, 0600) != 0 && errno != EEXIST) {
		fprintf(stderr, "iiofeed: cannot make the FIFO %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

static uint64_t rng = 88172645463325252ull;

/* Roughly normal noise, σ = sigma (the sum of four uniforms). */
static double noise(double sigma)
{
	double sum = 0;

	for (int i = 0; i < 4; i++) {
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		sum += (double)(rng >> 11) / 9007199254740992.0 - 0.5;
	}
	return sum * sigma * 1.7320508; /* var of the sum of 4 U(-.5,.5) = 1/3 */
}

static void usage(void)
{
	fprintf(stderr, "usage: iiofeed [--dir DIR] [--seconds S] [--rate HZ] [--imp-per-kwh N] "
		"[--power-w W] [--pulse-ms MS] [--noise LSB] [--clock realtime|monotonic] "
		"[--name NAME]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *dir = NULL, *name = "iiofeed", *clock_name = "realtime";
	double seconds = 60, power_w = 2000, pulse_ms = 10, sigma = 30;
	FILE *truth = NULL;
	uint32_t rate = 10000, imp = 1000;
	char root[PATH_MAX], devdir[PATH_MAX], path[PATH_MAX + 64], text[64];
	int created = 0, fifo, raw, enabled = 0;
	/* the newest sample's value: kept across ticks, for a tick that makes no sample (one
	 * that wakes late twice in a row) writes it again rather than a made-up rest level */
	int value = 200;
	uint64_t made = 0, fed = 0, dropped = 0, pulses = 0;
	unsigned char *pending;
	size_t npending = 0, cap;
	clockid_t ts_clock;
	int64_t start, ts0, period_ns, pulse_every_ns, pulse_ns, next;
	struct stat st;

	for (int i = 1; i < argc; i += 2) { /* every option takes a value */
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			usage();
		if (strcmp(a, "--dir") == 0)
			dir = v;
		else if (strcmp(a, "--seconds") == 0)
			seconds = atof(v);
		else if (strcmp(a, "--rate") == 0)
			rate = (uint32_t)strtoul(v, NULL, 10);
		else if (strcmp(a, "--imp-per-kwh") == 0)
			imp = (uint32_t)strtoul(v, NULL, 10);
		else if (strcmp(a, "--power-w") == 0)
			power_w = atof(v);
		else if (strcmp(a, "--pulse-ms") == 0)
			pulse_ms = atof(v);
		else if (strcmp(a, "--truth") == 0 && v != NULL) {
			truth = fopen(v, "w");
			if (truth == NULL) {
				perror(v);
				return 1;
			}
			setvbuf(truth, NULL, _IOLBF, 0);
		}
		else if (strcmp(a, "--noise") == 0)
			sigma = atof(v);
		else if (strcmp(a, "--clock") == 0)
			clock_name = v;
		else if (strcmp(a, "--name") == 0)
			name = v;
		else
			usage();
	}
	if (rate == 0 || rate > 1000000 || imp == 0 || power_w <= 0 || seconds <= 0)
		usage();
	if (strcmp(clock_name, "realtime") == 0)
		ts_clock = CLOCK_REALTIME;
	else if (strcmp(clock_name, "monotonic") == 0)
		ts_clock = CLOCK_MONOTONIC;
	else
		usage();

	if (dir == NULL) {
		snprintf(root, sizeof(root), "/tmp/iiofeed.XXXXXX");
		if (mkdtemp(root) == NULL) {
			perror("iiofeed: mkdtemp");
			return 1;
		}
	} else {
		snprintf(root, sizeof(root), "%s", dir);
	}
	if (strlen(root) > 3000) {
		fprintf(stderr, "iiofeed: --dir: path too long\n");
		return 2;
	}
	snprintf(devdir, sizeof(devdir), "%.3000s/sys/bus/iio/devices/iio:device0", root);
	if (stat(devdir, &st) != 0) {
		make_tree(root, name, rate, clock_name);
		created = 1;
	} else if (read_small((snprintf(path, sizeof(path), "%s/name", devdir), path), text,
			      sizeof(text)) == 0) {
		name = strdup(text);
	}

	snprintf(path, sizeof(path), "%s/dev/iio:device0", root);
	fifo = open(path, O_RDWR | O_NONBLOCK); /* a writer and a reader: never blocks, no EOF */
	snprintf(path, sizeof(path), "%s/in_voltage0_raw", devdir);
	raw = open(path, O_WRONLY);
	if (fifo < 0 || raw < 0) {
		fprintf(stderr, "iiofeed: cannot open the fake device in %s: %s\n", root,
			strerror(errno));
		return 1;
	}
	cap = rate; /* a second of scans: room for a feeder that was itself held up */
	pending = malloc(cap * SCAN_BYTES);
	if (pending == NULL)
		return 1;

	printf("# a meter on the fake ADC in %s (%s, %" PRIu32 " Hz, pulse every %.3f s);\n"
	       "# mode = poll reads in_voltage0_raw (updated every ms) instead\n"
	       "[meter %s]\nsource = iio\ndevice = %s\nchannel = 0\nmode = buffer\n"
	       "rate = %" PRIu32 "\nimp_per_kwh = %" PRIu32 "\nsysfs_root = %s/sys\n"
	       "dev_root = %s/dev\n\n", root, clock_name, rate, 3.6e6 / (imp * power_w), name,
	       name, rate, imp, root, root);
	fflush(stdout);

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	period_ns = 1000000000 / rate;
	pulse_every_ns = (int64_t)(3.6e15 / ((double)imp * power_w));
	pulse_ns = (int64_t)(pulse_ms * 1e6);
	start = now_ns(CLOCK_MONOTONIC);
	ts0 = now_ns(ts_clock);
	next = start;
	snprintf(path, sizeof(path), "%s/buffer/enable", devdir);
	for (uint64_t tick = 1; !stop && (double)(next - start) < seconds * 1e9; tick++) {
		struct timespec ts;
		int64_t upto;

		next = start + (int64_t)tick * TICK_NS;
		ts.tv_sec = next / 1000000000;
		ts.tv_nsec = next % 1000000000;
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR && !stop)
			;
		upto = (now_ns(CLOCK_MONOTONIC) - start) / period_ns;
		for (; (int64_t)made < upto; made++) {
			int64_t t = (int64_t)made * period_ns;
			int64_t in_cycle = t % pulse_every_ns;
			double v = 200 + noise(sigma);

			if (in_cycle < pulse_ns) {
				v += 1500;
				if (in_cycle < period_ns) {
					pulses++;
					if (truth != NULL)
						fprintf(truth, "%" PRId64 "\n", (ts0 + t) / 1000);
				}
			}
			value = v < -2048 ? -2048 : v > 2047 ? 2047 : (int)v;
			if (enabled && npending == cap)
				dropped++;
			if (enabled && npending < cap) {
				unsigned char *p = pending + npending++ * SCAN_BYTES;
				uint16_t stored = (uint16_t)((unsigned)value << 4);
				uint64_t stamp = (uint64_t)(ts0 + t);

				memset(p, 0, SCAN_BYTES);
				p[0] = (unsigned char)stored;
				p[1] = (unsigned char)(stored >> 8);
				for (int b = 0; b < 8; b++)
					p[8 + b] = (unsigned char)(stamp >> (8 * b));
			}
		}
		snprintf(text, sizeof(text), "%6d\n", value);
		if (pwrite(raw, text, strlen(text), 0) < 0)
			break;
		if (tick % FEED_TICKS != 0)
			continue;
		{
			char en[8] = "0";
			int now_enabled = read_small(path, en, sizeof(en)) == 0 &&
					  strcmp(en, "1") == 0;

			if (now_enabled && !enabled) {
				char sf[PATH_MAX + 64], hz[32];

				snprintf(sf, sizeof(sf), "%s/sampling_frequency", devdir);
				if (read_small(sf, hz, sizeof(hz)) == 0 &&
				    strtod(hz, NULL) != rate)
					fprintf(stderr, "iiofeed: the reader asked for %s Hz; "
						"feeding %" PRIu32 " Hz (set rate = %" PRIu32
						")\n", hz, rate, rate);
			}
			if (!now_enabled && enabled) {
				/* capture stopped: what the reader left is not there next time */
				unsigned char junk[4096];

				while (read(fifo, junk, sizeof(junk)) > 0)
					;
			}
			enabled = now_enabled;
		}
		/* whole scans in writes of at most PIPE_BUF bytes, which a pipe takes whole or
		 * not at all: the reader never sees a torn scan from a full FIFO */
		for (size_t off = 0; off < npending;) {
			size_t n = npending - off, most = PIPE_BUF / SCAN_BYTES;

			if (n > most)
				n = most;
			if (write(fifo, pending + off * SCAN_BYTES, n * SCAN_BYTES) < 0) {
				dropped += npending - off;
				break;
			}
			fed += n;
			off += n;
		}
		npending = 0;
	}
	fprintf(stderr, "iiofeed: %.1f s: %" PRIu64 " samples made (%" PRIu64 " pulses), %" PRIu64
		" scans fed, %" PRIu64 " dropped (FIFO full)\n",
		(double)(now_ns(CLOCK_MONOTONIC) - start) / 1e9, made, pulses, fed, dropped);
	free(pending);
	if (truth != NULL)
		fclose(truth);
	close(raw);
	close(fifo);
	if (created && dir == NULL)
		nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
