/* SPDX-License-Identifier: MIT */
/*
 * `powerlogger detect`: finds the meter's pulses in a recorded sensor trace.
 *
 * The trace (CSV or raw 16-bit, see trace.h) is streamed through the analog detector; each
 * pulse is printed as it is found, or, with --interval, fed to the meter, whose interval
 * records are printed as CSV or InfluxDB line protocol. A summary goes to stderr.
 *
 * The detector and the meter run as the core's channel (channel.h), which advances the meter
 * only to the detector's horizon, so no pulse the detector has yet to emit finds its interval
 * closed, and gives the quality flags (no signal, LED steadily lit) to every interval the
 * detector's states spanned (no signal only where no pulse came). This file reads, prints and
 * sums up. The input ends one sample period after its last sample (exact for raw input, the
 * mean period for CSV), so a trace of whole intervals gives whole intervals.
 *
 * With --state FILE a trace can be given in parts: a run starts from the state the previous
 * part left in FILE (the channel whole: it is plain data) and leaves its own there, without
 * finishing - pulses and the interval the detector and the meter still hold go on into the
 * next part, as they go on across a restart of the daemon. The last part is run with --end,
 * which finishes and leaves FILE as it was, so the parts give exactly what one run gives.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "powerlogger/channel.h"
#include "powerlogger/lineproto.h"
#include "powerlogger/meter_type.h"
#include "sources/trace.h"

#define PROG "powerlogger detect"
#define SAMPLE_BATCH 1024
#define U16_BATCH 16384 /* covers the alignment step of every common audio rate */
#define RECORD_CAP PL_CHANNEL_RECORDS

enum out_format { OUT_PULSES, OUT_LP, OUT_CSV };

struct options {
	const char *path;
	struct pl_trace_config trace;
	struct pl_detector_config det;
	int meter_type;      /* enum pl_meter_type: its defaults go into det */
	uint32_t interval_s; /* 0: no interval records */
	enum out_format format;
	int format_set;
	const char *device;
	enum pl_precision precision;
	int quiet;
	int check_only;
	int have_rate;
	const char *state_path; /* --state FILE */
	int end;                /* --end: the last part */
};

struct detect {
	struct options opt;
	struct pl_trace *trace;
	struct pl_channel ch;      /* the detector and the meter */
	int use_meter;
	uint64_t handled;         /* pulses the channel has given out */
	/* what was read (over every part, with --state) */
	uint64_t samples;
	int64_t t_first, t_last;
	/* what was written */
	uint64_t records;
	int out_failed;
	int resumed;              /* from a --state file */
	uint64_t base;            /* raw input: samples of the earlier parts (their time) */
	struct pl_interval_record recs[RECORD_CAP];
	char lp[1024];
	struct pl_sample samp[SAMPLE_BATCH];
	uint16_t u16[U16_BATCH];
};

static void usage(FILE *f)
{
	fputs("usage: powerlogger detect [options] FILE|-\n"
	      "\n"
	      "Finds the meter's pulses in a recorded light-sensor trace and prints one line per\n"
	      "pulse: time_s,width_ms,amplitude,confidence,status (status ok or rejected), with\n"
	      "time_s in the trace's own time base. With --interval, prints interval records\n"
	      "instead. A summary goes to standard error.\n"
	      "\n"
	      "Input (FILE, or - for standard input):\n"
	      "  CSV lines time_s,value (seconds, ADC reading); an optional header line, '#'\n"
	      "  comments and blank lines are allowed. Or raw 16-bit mono samples with --raw.\n"
	      "\n"
	      "Options:\n"
	      "  --raw s16le|u16le     raw little-endian 16-bit samples (needs --rate)\n"
	      "  --rate HZ             sample rate of raw input, 1..10000000\n"
	      "  --imp-per-kwh N       meter constant (impulses per kWh); adds the energy total\n"
	      "  --max-power W         the supply's maximum power: pulses closer together than\n"
	      "                        this allows are reported as rejected (needs --imp-per-kwh)\n"
	      "  --polarity auto|up|down   whether the value rises (up) or falls (down) during a\n"
	      "                        pulse; default auto (learned from the signal)\n"
	      "  --meter-type led|disc   an impulse LED (default), or a Ferraris meter's disc\n"
	      "                        under a reflective sensor: one slow dip per revolution,\n"
	      "                        up to 10 s long (--imp-per-kwh is then rev/kWh)\n"
	      "  --max-width-ms MS     longest plausible pulse; longer is a steadily lit LED\n"
	      "                        (default 400, 10000 with --meter-type disc)\n"
	      "  --interval SECONDS    print interval records of this length (1..86400) instead\n"
	      "                        of pulses, aligned to multiples of the length; energy\n"
	      "                        from --imp-per-kwh (default 1000)\n"
	      "  --format pulses|lp|csv   output: pulses (default), or with --interval csv\n"
	      "                        (default then) or lp (InfluxDB line protocol)\n"
	      "  --device NAME         the device tag of line protocol (default powerlogger)\n"
	      "  --precision ns|us|ms|s    timestamp precision of line protocol (default s)\n"
	      "  --state FILE          the trace in parts: start from the state FILE holds (if it\n"
	      "                        exists) and leave this part's there, not finishing\n"
	      "  --end                 with --state: this is the last part: finish, and leave\n"
	      "                        FILE as it was\n"
	      "  -n, --check           only read and check the trace, then print the summary\n"
	      "  -q, --quiet           no summary on standard error\n"
	      "  -h, --help            this help\n"
	      "\n"
	      "Exit status: 0 success, 2 bad usage or bad input (FILE:LINE: what is wrong),\n"
	      "1 other failure.\n"
	      "\n"
	      "Examples:\n"
	      "  powerlogger detect trace.csv\n"
	      "  powerlogger detect --imp-per-kwh 1000 --max-power 17000 trace.csv\n"
	      "  powerlogger detect --meter-type disc --imp-per-kwh 75 disc.csv\n"
	      "  arecord -q -t raw -f S16_LE -r 48000 -c 1 |\n"
	      "      powerlogger detect --raw s16le --rate 48000 -\n"
	      "  powerlogger detect --interval 20 --format lp --device house trace.csv\n"
	      "  powerlogger detect -n big-trace.csv     # validate only\n"
	      "  powerlogger detect --state s part1.csv; powerlogger detect --state s --end part2.csv\n",
	      f);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints a usage problem and returns the exit status for it. */
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nRun 'powerlogger detect --help' for the options.\n", stderr);
	return 2;
}

/* A whole-number option value in [min, max]. Returns 0, or prints the problem and returns 2. */
static int parse_uint(const char *opt, const char *text, uint32_t min, uint32_t max, uint32_t *out)
{
	size_t len = strlen(text);
	unsigned long long v;

	if (len == 0 || strspn(text, "0123456789") != len) {
		fprintf(stderr, PROG ": %s needs a whole number, not '%s'\n", opt, text);
		return 2;
	}
	errno = 0;
	v = strtoull(text, NULL, 10);
	if (errno != 0 || v < min || v > max) {
		fprintf(stderr, PROG ": %s %s out of range (%" PRIu32 "..%" PRIu32 ")\n", opt, text,
			min, max);
		return 2;
	}
	*out = (uint32_t)v;
	return 0;
}

enum {
	OPT_RAW = 256, OPT_RATE, OPT_IMP, OPT_MAXPOWER, OPT_POLARITY, OPT_MAXWIDTH, OPT_INTERVAL,
	OPT_FORMAT, OPT_DEVICE, OPT_PRECISION, OPT_STATE, OPT_END, OPT_METER_TYPE,
};

static const struct option long_options[] = {
	{ "raw", required_argument, NULL, OPT_RAW },
	{ "rate", required_argument, NULL, OPT_RATE },
	{ "imp-per-kwh", required_argument, NULL, OPT_IMP },
	{ "max-power", required_argument, NULL, OPT_MAXPOWER },
	{ "polarity", required_argument, NULL, OPT_POLARITY },
	{ "max-width-ms", required_argument, NULL, OPT_MAXWIDTH },
	{ "meter-type", required_argument, NULL, OPT_METER_TYPE },
	{ "interval", required_argument, NULL, OPT_INTERVAL },
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ "device", required_argument, NULL, OPT_DEVICE },
	{ "precision", required_argument, NULL, OPT_PRECISION },
	{ "state", required_argument, NULL, OPT_STATE },
	{ "end", no_argument, NULL, OPT_END },
	{ "check", no_argument, NULL, 'n' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int set_polarity(struct options *o, const char *arg)
{
	if (strcmp(arg, "auto") == 0)
		o->det.polarity = PL_POLARITY_AUTO;
	else if (strcmp(arg, "up") == 0)
		o->det.polarity = PL_POLARITY_UP;
	else if (strcmp(arg, "down") == 0)
		o->det.polarity = PL_POLARITY_DOWN;
	else
		return usage_error("--polarity takes auto, up or down, not '%s'", arg);
	return 0;
}

static int set_meter_type(struct options *o, const char *arg)
{
	if (strcmp(arg, "led") == 0)
		o->meter_type = PL_METER_LED;
	else if (strcmp(arg, "disc") == 0)
		o->meter_type = PL_METER_DISC;
	else
		return usage_error("--meter-type takes led or disc, not '%s'", arg);
	return 0;
}

static int set_max_width(struct options *o, const char *arg)
{
	int64_t us;
	int rc = pl_trace_parse_decimal(arg, strlen(arg), 3, &us);

	if (rc == -PL_EPARSE)
		return usage_error("--max-width-ms needs a number, not '%s'", arg);
	if (rc != 0 || us < 1 || us > 10 * PL_US_PER_S)
		return usage_error("--max-width-ms %s out of range (0.001..10000)", arg);
	o->det.max_width_us = (uint32_t)us;
	return 0;
}

static int set_format(struct options *o, const char *arg)
{
	if (strcmp(arg, "pulses") == 0)
		o->format = OUT_PULSES;
	else if (strcmp(arg, "lp") == 0)
		o->format = OUT_LP;
	else if (strcmp(arg, "csv") == 0)
		o->format = OUT_CSV;
	else
		return usage_error("--format takes pulses, lp or csv, not '%s'", arg);
	o->format_set = 1;
	return 0;
}

static int set_device(struct options *o, char *arg)
{
	/* Refused here rather than at the first record: a name InfluxDB would store
	 * differently (or not at all) must not produce any output. */
	const char *why = pl_lp_name_problem(arg, PL_LP_TAG_VALUE);

	if (strlen(arg) > 256)
		return usage_error("--device needs a name of 1..256 bytes");
	if (why != NULL)
		return usage_error("--device '%s' %s", arg, why);
	o->device = arg;
	return 0;
}

static int set_precision(struct options *o, const char *arg)
{
	if (strcmp(arg, "ns") == 0)
		o->precision = PL_PREC_NS;
	else if (strcmp(arg, "us") == 0)
		o->precision = PL_PREC_US;
	else if (strcmp(arg, "ms") == 0)
		o->precision = PL_PREC_MS;
	else if (strcmp(arg, "s") == 0)
		o->precision = PL_PREC_S;
	else
		return usage_error("--precision takes ns, us, ms or s, not '%s'", arg);
	return 0;
}

/* One option c (its value in optarg): 0 to go on, 2 for a usage error, -1 after --help. */
static int take_option(int c, char **argv, struct options *o)
{
	int rc;

	switch (c) {
	case OPT_RAW:
		if (pl_trace_format_parse(optarg, &o->trace.format) != 0 ||
		    o->trace.format == PL_TRACE_CSV)
			return usage_error("--raw takes s16le or u16le, not '%s'", optarg);
		return 0;
	case OPT_RATE:
		rc = parse_uint("--rate", optarg, 1, PL_TRACE_MAX_RATE, &o->trace.rate_hz);
		if (rc)
			return rc;
		o->have_rate = 1;
		return 0;
	case OPT_IMP:
		return parse_uint("--imp-per-kwh", optarg, 1, 1000000, &o->det.imp_per_kwh);
	case OPT_MAXPOWER:
		return parse_uint("--max-power", optarg, 1, 100000000, &o->det.max_power_w);
	case OPT_POLARITY:
		return set_polarity(o, optarg);
	case OPT_MAXWIDTH:
		return set_max_width(o, optarg);
	case OPT_METER_TYPE:
		return set_meter_type(o, optarg);
	case OPT_INTERVAL:
		return parse_uint("--interval", optarg, 1, 86400, &o->interval_s);
	case OPT_FORMAT:
		return set_format(o, optarg);
	case OPT_DEVICE:
		return set_device(o, optarg);
	case OPT_PRECISION:
		return set_precision(o, optarg);
	case OPT_STATE:
		if (optarg[0] == '\0')
			return usage_error("--state needs a file name");
		o->state_path = optarg;
		return 0;
	case OPT_END:
		o->end = 1;
		return 0;
	case 'n':
		o->check_only = 1;
		return 0;
	case 'q':
		o->quiet = 1;
		return 0;
	case 'h':
		usage(stdout);
		return -1;
	case ':':
		return usage_error("option '%s' needs a value", argv[optind - 1]);
	default:
		return usage_error("unknown option '%s'", argv[optind - 1]);
	}
}

/* The FILE operand and the options that need or exclude others: 0, or 2. */
static int check_operands(int argc, char **argv, struct options *o)
{
	if (optind >= argc)
		return usage_error("missing FILE (use - for standard input)");
	if (optind + 1 < argc)
		return usage_error("one FILE only; unexpected '%s'", argv[optind + 1]);
	o->path = argv[optind];

	if (o->trace.format != PL_TRACE_CSV && !o->have_rate)
		return usage_error("--raw needs --rate HZ");
	if (o->trace.format == PL_TRACE_CSV && o->have_rate)
		return usage_error("--rate applies to --raw input only");
	if (o->det.max_power_w && !o->det.imp_per_kwh)
		return usage_error("--max-power needs --imp-per-kwh");
	if (o->interval_s && !o->format_set)
		o->format = OUT_CSV;
	if (o->interval_s && o->format == OUT_PULSES)
		return usage_error("--interval prints interval records: use --format csv or lp");
	if (!o->interval_s && o->format != OUT_PULSES)
		return usage_error("--format %s needs --interval SECONDS",
				   o->format == OUT_LP ? "lp" : "csv");
	if (o->end && !o->state_path)
		return usage_error("--end needs --state FILE");
	if (o->state_path && o->check_only)
		return usage_error("--state does not go with --check");
	return 0;
}

/* Returns 0 to go on, 2 for a usage error, -1 when --help was printed. */
static int parse_options(int argc, char **argv, struct options *o)
{
	int c, rc;

	memset(o, 0, sizeof(*o));
	o->trace.format = PL_TRACE_CSV;
	pl_detector_config_default(&o->det);
	o->format = OUT_PULSES;
	o->device = "powerlogger";
	o->precision = PL_PREC_S;

	optind = 0; /* glibc: start afresh (this may not be the first getopt user) */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":nqh", long_options, NULL)) != -1)
		if ((rc = take_option(c, argv, o)) != 0)
			return rc;
	/* the type's defaults for what the options left unset (an explicit --max-width-ms stays,
	 * in whatever order the two came) */
	pl_meter_type_detector(&o->det, o->meter_type);
	return check_operands(argc, argv, o);
}

/* ---- output ----------------------------------------------------------------------------- */

/* Room for any int64 with up to 19 decimals (sign, 20 digits, point, 19 digits, NUL), so that
 * no compiler can see a truncation. */
#define FIXED_CAP 48

/* v / 10^decimals with exactly that many decimals, from integers. */
static void fixed(char *buf, size_t cap, int64_t v, unsigned decimals)
{
	uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, p = 1;
	unsigned i;

	for (i = 0; i < decimals; i++)
		p *= 10;
	if (decimals == 0)
		snprintf(buf, cap, "%s%" PRIu64, v < 0 ? "-" : "", a);
	else
		snprintf(buf, cap, "%s%" PRIu64 ".%0*" PRIu64, v < 0 ? "-" : "", a / p,
			 (int)decimals, a % p);
}

static void print_pulse(const struct pl_pulse *p)
{
	char t[32], w[FIXED_CAP];

	pl_trace_format_time(t, sizeof(t), p->t_us);
	fixed(w, sizeof(w), p->width_us, 3);
	printf("%s,%s,%" PRId32 ",%u,%s\n", t, w, p->amplitude, (unsigned)p->confidence,
	       (p->flags & PL_PULSE_REJECTED) ? "rejected" : "ok");
}

static int print_record(struct detect *x, const struct pl_interval_record *r)
{
	x->records++;
	if (x->opt.format == OUT_LP) {
		size_t len = 0;
		int rc = pl_lp_interval(x->lp, sizeof(x->lp), &len, NULL, x->opt.device, r,
					x->opt.precision);
		if (rc < 0) {
			char t[32];

			pl_trace_format_time(t, sizeof(t), r->start_us);
			fprintf(stderr, PROG ": cannot write the interval at %s s as line "
				"protocol: %s\n", t, pl_strerror(rc));
			return rc == -PL_ERANGE || rc == -PL_EINVAL ? 2 : 1;
		}
		fwrite(x->lp, 1, len, stdout);
	} else {
		char start[FIXED_CAP], e[FIXED_CAP], avg[FIXED_CAP], peak[FIXED_CAP], reg[FIXED_CAP];

		if (x->records == 1)
			puts("start_s,length_s,pulses,rejected,energy_wh,avg_w,peak_w,register_wh,"
			     "flags");
		/* The start is a multiple of the length: whole seconds. */
		fixed(start, sizeof(start), r->start_us / PL_US_PER_S, 0);
		fixed(e, sizeof(e), r->energy_uwh, 6);
		fixed(avg, sizeof(avg), r->avg_mw, 3);
		fixed(peak, sizeof(peak), r->peak_mw, 3);
		fixed(reg, sizeof(reg), r->register_uwh, 6);
		printf("%s,%" PRIu32 ",%" PRIu32 ",%" PRIu32 ",%s,%s,%s,%s,%" PRIu32 "\n", start,
		       r->length_s, r->pulses, r->rejected, e, avg, peak, reg, r->flags);
	}
	return 0;
}

static int print_records(struct detect *x, size_t n)
{
	size_t i;

	if (x->opt.format == OUT_PULSES)
		return 0;
	for (i = 0; i < n; i++) {
		int rc = print_record(x, &x->recs[i]);

		if (rc)
			return rc;
	}
	return 0;
}

/* ---- the channel ------------------------------------------------------------------------ */

static int meter_range_error(const struct detect *x)
{
	fprintf(stderr, PROG ": %s: times beyond the meter's range (about +-146,000 years)\n",
		pl_trace_name(x->trace));
	return 2;
}

/*
 * After every call of the channel: prints the pulses it gave the meter (in pulse format) and
 * the records it closed (in record format), and judges its return code. Returns 0 to go on
 * or the exit status. Without a meter (no --interval, no --imp-per-kwh) only the pulses
 * matter: times beyond the meter's range are no error then.
 */
static int drain(struct detect *x, int rc)
{
	size_t n, i;
	const struct pl_channel_pulse *p = pl_channel_pulses(&x->ch, &n);
	int out;

	x->handled += n;
	if (x->opt.format == OUT_PULSES)
		for (i = 0; i < n; i++)
			print_pulse(&p[i].pulse);
	while ((n = pl_channel_take(&x->ch, x->recs, RECORD_CAP)) > 0)
		if ((out = print_records(x, n)) != 0)
			return out;
	if (ferror(stdout)) {
		x->out_failed = 1;
		return 1;
	}
	if (rc == -PL_ERANGE && x->use_meter)
		return meter_range_error(x);
	if (rc < 0 && rc != -PL_ENOSPC && rc != -PL_ERANGE) {
		fprintf(stderr, PROG ": the meter refused a pulse: %s\n", pl_strerror(rc));
		return 1;
	}
	return 0;
}

/*
 * After a batch of input that ended at time now: the channel moves the meter on to the
 * detector's horizon, so that every pulse the detector has yet to emit still finds its
 * interval open, and flags the intervals the detector's states spanned.
 */
static int meter_catch_up(struct detect *x, int64_t now)
{
	int rc, out;

	if (!x->use_meter)
		return 0;
	do {
		rc = pl_channel_advance(&x->ch, now);
		if ((out = drain(x, rc)) != 0)
			return out;
	} while (rc == -PL_ENOSPC);
	return 0;
}

/* ---- the input -------------------------------------------------------------------------- */

static void saw_samples(struct detect *x, int64_t first, int64_t last, size_t n)
{
	if (x->samples == 0)
		x->t_first = first;
	x->t_last = last;
	x->samples += n;
}

static int no_progress(void)
{
	fprintf(stderr, PROG ": internal error: the detector consumed no samples\n");
	return 1;
}

static int feed_samples(struct detect *x, const struct pl_sample *s, size_t n)
{
	saw_samples(x, s[0].t_us, s[n - 1].t_us, n);
	if (x->opt.check_only)
		return 0;
	while (n > 0) {
		size_t used = 0;
		uint64_t before = x->handled;
		int rc = pl_channel_feed(&x->ch, s, n, &used), out;

		if ((out = drain(x, rc)) != 0)
			return out;
		if (used == 0 && rc == 0 && x->handled == before)
			return no_progress();
		s += used;
		n -= used;
	}
	return meter_catch_up(x, x->t_last);
}

static int feed_u16(struct detect *x, int64_t t0, const uint16_t *v, size_t n)
{
	uint32_t rate = pl_trace_rate(x->trace);
	/* the block's first sample, counted over every part */
	uint64_t index0 = x->base + pl_trace_count(x->trace) - n;
	size_t off = 0;

	saw_samples(x, t0, pl_trace_index_us(index0 + n - 1, rate), n);
	if (x->opt.check_only)
		return 0;
	while (off < n) {
		size_t used = 0;
		uint64_t before = x->handled;
		/* After an early return, restart from the exact time of the next sample. */
		int64_t t = off ? pl_trace_index_us(index0 + off, rate) : t0;
		int rc = pl_channel_feed_u16(&x->ch, t, rate, v + off, n - off, &used), out;

		if ((out = drain(x, rc)) != 0)
			return out;
		if (used == 0 && rc == 0 && x->handled == before)
			return no_progress();
		off += used;
	}
	return meter_catch_up(x, x->t_last);
}

static int goes_back(const struct detect *x, int64_t t);

static int trace_failed(struct detect *x, int rc)
{
	fprintf(stderr, PROG ": %s\n", pl_trace_error(x->trace));
	return rc == -PL_EIO || rc == -PL_ENOMEM ? 1 : 2;
}

static int read_all(struct detect *x)
{
	int raw = x->opt.trace.format != PL_TRACE_CSV;

	for (;;) {
		size_t n = 0;
		int64_t t0 = 0;
		int rc = raw ? pl_trace_read_u16(x->trace, x->u16, U16_BATCH, &n, &t0)
			     : pl_trace_read(x->trace, x->samp, SAMPLE_BATCH, &n);

		if (rc < 0)
			return trace_failed(x, rc);
		if (n == 0)
			return 0;
		if (raw)
			t0 = pl_trace_index_us(x->base + pl_trace_count(x->trace) - n,
					       pl_trace_rate(x->trace));
		else if (x->resumed && pl_trace_count(x->trace) == n && x->samp[0].t_us <= x->t_last)
			return goes_back(x, x->samp[0].t_us); /* this part's first samples */
		rc = raw ? feed_u16(x, t0, x->u16, n) : feed_samples(x, x->samp, n);
		if (rc)
			return rc;
	}
}

/* ---- --state: the trace in parts ------------------------------------------------------ */

#define STATE_MAGIC "PLDETST1"
#define STATE_VERSION 3u /* 2: the meter type in the key; 3: the key field by field */

/* What must be the same in every part: the options that shape the output. */
/* A new field in the channel's configuration must go into the key too (state_key_of). */
_Static_assert(sizeof(struct pl_channel_config) == 52 && sizeof(struct pl_detector_config) == 16 &&
	       sizeof(struct pl_edges_config) == 24 && sizeof(struct pl_meter_config) == 8,
	       "the channel's configuration changed: update struct state_key and state_key_of");

/* Field by field, never a struct's bytes: a struct copy leaves its padding unspecified, and a
 * key with stray bytes in it matched itself only by chance (test-asan found it). */
struct state_key {
	uint32_t kind, state_flags;
	uint32_t det_imp_per_kwh, det_max_power_w, det_max_width_us;
	int32_t det_polarity;
	uint32_t edges_min_high_us, edges_min_low_us, edges_max_width_us, edges_active_low;
	uint32_t edges_imp_per_kwh, edges_max_power_w;
	uint32_t meter_imp_per_kwh, meter_interval_s;
	uint32_t interval_s, format, trace_format, rate_hz;
	uint32_t meter_type; /* also in the detector's longest pulse, but said as given */
};

/* The file: a header, the key, the counters, the channel whole, a checksum of all before it. */
struct state_file {
	char magic[8];
	uint32_t version;
	uint32_t channel_size;
	struct state_key key;
	uint64_t handled, samples, records;
	int64_t t_first, t_last;
	struct pl_channel ch;
	uint64_t sum;
};

static uint64_t fnv1a64(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 14695981039346656037ull;

	while (n--) {
		h ^= *b++;
		h *= 1099511628211ull;
	}
	return h;
}

static void state_key_of(const struct detect *x, const struct pl_channel_config *cc,
			 struct state_key *k)
{
	memset(k, 0, sizeof(*k));
	k->kind = cc->kind;
	k->state_flags = cc->state_flags;
	k->det_imp_per_kwh = cc->det.imp_per_kwh;
	k->det_max_power_w = cc->det.max_power_w;
	k->det_max_width_us = cc->det.max_width_us;
	k->det_polarity = cc->det.polarity;
	k->edges_min_high_us = cc->edges.min_high_us;
	k->edges_min_low_us = cc->edges.min_low_us;
	k->edges_max_width_us = cc->edges.max_width_us;
	k->edges_active_low = cc->edges.active_low;
	k->edges_imp_per_kwh = cc->edges.imp_per_kwh;
	k->edges_max_power_w = cc->edges.max_power_w;
	k->meter_imp_per_kwh = cc->meter.imp_per_kwh;
	k->meter_interval_s = cc->meter.interval_s;
	k->interval_s = x->opt.interval_s;
	k->format = (uint32_t)x->opt.format;
	k->trace_format = (uint32_t)x->opt.trace.format;
	k->rate_hz = x->opt.trace.format != PL_TRACE_CSV ? x->opt.trace.rate_hz : 0;
	k->meter_type = (uint32_t)x->opt.meter_type;
}

static int goes_back(const struct detect *x, int64_t t)
{
	char a[32], b[32];

	pl_trace_format_time(a, sizeof(a), t);
	pl_trace_format_time(b, sizeof(b), x->t_last);
	fprintf(stderr, PROG ": %s starts at %s s, but the state in %s ends at %s s: a part "
		"given twice, or out of order\n", pl_trace_name(x->trace), a, x->opt.state_path, b);
	return 2;
}

/*
 * Takes the state in --state FILE over, if the file exists (0: none, a first part), checked to
 * be one this program wrote with the same options. 0, or prints the problem and returns 2.
 */
static int state_load(struct detect *x, const struct pl_channel_config *cc)
{
	const char *path = x->opt.state_path;
	struct state_file *f;
	struct state_key key;
	FILE *in = fopen(path, "rb");
	size_t n;
	int extra;

	if (in == NULL) {
		if (errno == ENOENT)
			return 0;
		fprintf(stderr, PROG ": --state %s: %s\n", path, strerror(errno));
		return 2;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		fclose(in);
		fprintf(stderr, PROG ": out of memory\n");
		return 1;
	}
	n = fread(f, 1, sizeof(*f), in);
	extra = fgetc(in) != EOF;
	fclose(in);
	state_key_of(x, cc, &key);
	if (n < sizeof(f->magic) || memcmp(f->magic, STATE_MAGIC, 8) != 0) {
		fprintf(stderr, PROG ": --state %s: not a state file of powerlogger detect\n", path);
	} else if (n != sizeof(*f) || extra || f->version != STATE_VERSION ||
		   f->channel_size != sizeof(struct pl_channel)) {
		fprintf(stderr, PROG ": --state %s: written by another version of powerlogger "
			"(or cut short): start the trace again from its first part\n", path);
	} else if (f->sum != fnv1a64(f, offsetof(struct state_file, sum))) {
		fprintf(stderr, PROG ": --state %s: damaged (its checksum does not match)\n", path);
	} else if (memcmp(&f->key, &key, sizeof(key)) != 0) {
		fprintf(stderr, PROG ": --state %s: written with other options (detector, meter, "
			"--interval, --format or the input format): give every part the same "
			"ones\n", path);
	} else {
		x->ch = f->ch;
		x->handled = f->handled;
		x->samples = f->samples;
		x->records = f->records;
		x->t_first = f->t_first;
		x->t_last = f->t_last;
		x->base = f->samples;
		x->resumed = 1;
		free(f);
		return 0;
	}
	free(f);
	return 2;
}

/* Leaves this part's state in --state FILE (whole or not at all: a new file renamed over).
 * 0, or prints the problem and returns 1. */
static int state_save(const struct detect *x, const struct pl_channel_config *cc)
{
	const char *path = x->opt.state_path;
	size_t len = strlen(path) + 8;
	char *tmp = malloc(len);
	struct state_file *f = calloc(1, sizeof(*f));
	int fd = -1, rc = 1;

	if (tmp == NULL || f == NULL) {
		fprintf(stderr, PROG ": out of memory\n");
		goto out;
	}
	snprintf(tmp, len, "%s.new", path);
	memcpy(f->magic, STATE_MAGIC, 8);
	f->version = STATE_VERSION;
	f->channel_size = sizeof(struct pl_channel);
	state_key_of(x, cc, &f->key);
	f->handled = x->handled;
	f->samples = x->samples;
	f->records = x->records;
	f->t_first = x->t_first;
	f->t_last = x->t_last;
	f->ch = x->ch;
	f->sum = fnv1a64(f, offsetof(struct state_file, sum));
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, f, sizeof(*f)) != (ssize_t)sizeof(*f) || fsync(fd) != 0 ||
	    close(fd) != 0) {
		fprintf(stderr, PROG ": --state %s: cannot write %s: %s\n", path, tmp,
			strerror(errno));
		if (fd >= 0)
			unlink(tmp);
		fd = -1;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		fprintf(stderr, PROG ": --state %s: %s\n", path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	rc = 0;
out:
	free(tmp);
	free(f);
	return rc;
}

/* Time from the first sample to the last; INT64_MAX if that does not fit. */
static int64_t span_of(const struct detect *x)
{
	int64_t span;

	return __builtin_sub_overflow(x->t_last, x->t_first, &span) ? INT64_MAX : span;
}

/* The end of the input: just after the last sample, one (mean) sample period on. */
static int64_t end_time(const struct detect *x)
{
	uint32_t rate = pl_trace_rate(x->trace);
	int64_t t = x->t_last;

	if (rate)
		return pl_trace_index_us(x->samples, rate);
	if (x->samples >= 2 &&
	    __builtin_add_overflow(t, span_of(x) / (int64_t)(x->samples - 1), &t))
		t = INT64_MAX;
	return t;
}

static int finish(struct detect *x)
{
	int64_t t_end = end_time(x);
	int rc, out;

	if (x->opt.check_only)
		return 0;
	for (;;) {
		uint64_t before = x->handled;

		rc = pl_channel_finish(&x->ch, t_end);
		if ((out = drain(x, rc)) != 0)
			return out;
		if (rc == -PL_ENOSPC)
			continue;
		/* without a meter, a pulse beyond its range is no error: the rest of them */
		if (rc == -PL_ERANGE && !x->use_meter && x->handled > before)
			continue;
		break;
	}
	if (!x->use_meter || rc == 0)
		return 0;
	if (rc == -PL_ERANGE)
		return meter_range_error(x);
	fprintf(stderr, PROG ": cannot close the last interval: %s\n", pl_strerror(rc));
	return 1;
}

static void summary(struct detect *x)
{
	struct pl_detector_status st;
	char first[32], dur[32];
	int64_t span = span_of(x);

	fprintf(stderr, "%s: %s\n", PROG, pl_trace_name(x->trace));
	if (x->opt.state_path)
		fprintf(stderr, "  parts:     %s %s (%s)\n",
			x->resumed ? "resumed from" : "first part, state in", x->opt.state_path,
			x->opt.end ? "the last part: finished" :
			"not finished: the state is left for the next part");
	pl_trace_format_time(first, sizeof(first), x->t_first);
	pl_trace_format_time(dur, sizeof(dur), span);
	fprintf(stderr, "  samples:   %" PRIu64 " from %s s over %s s", x->samples, first, dur);
	if (pl_trace_rate(x->trace))
		fprintf(stderr, " (%" PRIu32 " Hz raw)\n", pl_trace_rate(x->trace));
	else if (span > 0)
		fprintf(stderr, " (%.1f Hz)\n", (double)(x->samples - 1) * 1e6 / (double)span);
	else
		fputc('\n', stderr);
	if (x->opt.check_only)
		return;
	pl_detector_status(&x->ch.det, &st);
	fprintf(stderr, "  pulses:    %" PRIu64 " (%" PRIu64 " rejected), steady-LED events %"
		PRIu64 "\n", st.pulses, st.rejected, st.steady_events);
	fprintf(stderr, "  detector:  %s, polarity %s, noise %" PRId32 ", amplitude %" PRId32,
		pl_detector_state_name(st.state),
		st.polarity > 0 ? "up" : st.polarity < 0 ? "down" : "undecided", st.noise,
		st.amplitude);
	if (st.bin_us)
		fprintf(stderr, ", bin %" PRIu32 " us", st.bin_us);
	fputc('\n', stderr);
	if (st.backwards)
		fprintf(stderr, "  warning:   %" PRIu64 " samples skipped: time went backwards\n",
			st.backwards);
	if (x->opt.det.imp_per_kwh) {
		char wh[FIXED_CAP];
		uint64_t ok = st.pulses - st.rejected;

		fixed(wh, sizeof(wh), pl_meter_register(&x->ch.meter), 6);
		if (x->opt.meter_type == PL_METER_DISC)
			fprintf(stderr, "  energy:    %s Wh (%" PRIu64 " revolutions at %" PRIu32
				" rev/kWh)\n", wh, ok, x->opt.det.imp_per_kwh);
		else
			fprintf(stderr, "  energy:    %s Wh (%" PRIu64 " pulses at %" PRIu32
				" imp/kWh)\n", wh, ok, x->opt.det.imp_per_kwh);
	}
	if (x->opt.interval_s)
		fprintf(stderr, "  intervals: %" PRIu64 " records of %" PRIu32 " s\n", x->records,
			x->opt.interval_s);
	if (x->ch.n_late)
		fprintf(stderr, "  warning:   %" PRIu64 " pulses came too late for their interval "
			"and are counted in a later one\n", x->ch.n_late);
}

int pl_cmd_detect(int argc, char **argv)
{
	struct detect *x;
	struct pl_channel_config cc;
	char err[512];
	int rc;

	x = calloc(1, sizeof(*x));
	if (x == NULL) {
		fprintf(stderr, PROG ": out of memory\n");
		return 1;
	}
	rc = parse_options(argc, argv, &x->opt);
	if (rc)
		goto out_free;

	if (pl_detector_init(&x->ch.det, &x->opt.det) != 0) {
		rc = usage_error("the detector refused the options");
		goto out_free;
	}
	x->use_meter = x->opt.det.imp_per_kwh || x->opt.interval_s;
	memset(&cc, 0, sizeof(cc)); /* its bytes are part of a --state file's key */
	pl_channel_config_default(&cc);
	cc.det = x->opt.det;
	cc.state_flags = 1;
	if (x->opt.det.imp_per_kwh)
		cc.meter.imp_per_kwh = x->opt.det.imp_per_kwh;
	if (x->opt.interval_s)
		cc.meter.interval_s = x->opt.interval_s;
	if (pl_channel_init(&x->ch, &cc) != 0) {
		rc = usage_error("the meter refused the options");
		goto out_free;
	}

	if (x->opt.state_path && (rc = state_load(x, &cc)) != 0)
		goto out_free;

	rc = pl_trace_open(&x->trace, x->opt.path, &x->opt.trace, err, sizeof(err));
	if (rc) {
		fprintf(stderr, PROG ": %s\n", err);
		rc = rc == -PL_ENOMEM ? 1 : 2;
		goto out_free;
	}
	rc = read_all(x);
	if (rc == 0 && x->opt.state_path && !x->opt.end)
		rc = state_save(x, &cc); /* not finished: the next part goes on from here */
	else if (rc == 0)
		rc = finish(x);
	if (fflush(stdout) != 0 || ferror(stdout) || x->out_failed) {
		fprintf(stderr, PROG ": cannot write the output: %s\n", strerror(errno));
		rc = 1;
	}
	if (rc == 0 && !x->opt.quiet)
		summary(x);
	pl_trace_free(x->trace);
out_free:
	free(x);
	return rc < 0 ? 0 : rc;
}
