/* SPDX-License-Identifier: MIT */
/*
 * `powerlogger report`: energy (and cost) per hour, day or month from the store, as an aligned
 * table with a total line or as CSV, for a running or a stopped logger (a read-only handle:
 * SQLite in WAL mode lets a reader in beside the writer, as for `status`).
 *
 * The sums come from the store's rollups (store/query.h), so a report over years of records
 * costs milliseconds, and they are the same numbers the dashboard and /api/v1/energy show:
 * the buckets are the local-time (TZ) hours, days or months of pl_calendar_edges(), a record
 * counts in the bucket its start falls in. Every bucket of the range is a row, also an empty
 * one: the coverage column (the records' time over the bucket's time, up to now for the
 * bucket still running) and its '*' tell where the logger was not there or sampling was
 * interrupted, rather than leaving the reader to guess why a day is low.
 *
 * Dates on the command line are local: YYYY-MM-DD or YYYY-MM. --from is the first day (month)
 * in the report, --to the last one, inclusive, as a person says "from the 1st to the 7th".
 * The CSV has docs/http.md's columns of /api/v1/energy with the meter's name in front (one
 * file can hold every meter) and no total line (a program sums it itself).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "config/config.h"
#include "powerlogger/common.h"
#include "store/query.h"
#include "store/store.h"

#define PROG "powerlogger report"
#define MAXN 64
/* Hours over 20 years: a bound on a report's rows that no sane request meets. */
#define MAX_ROWS (20 * 366 * 24)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: powerlogger report [-c FILE | --store PATH] [--meter NAME]\n"
		"                          [--daily | --monthly | --hourly] [--from DATE] [--to DATE]\n"
		"                          [--csv] [--price X [--currency C]]\n"
		"\n"
		"Energy per day (default), month or hour from the store of a running or a stopped\n"
		"logger: kWh, cost, peak power and how much of the time the logger was there, with a\n"
		"total line; --csv writes the rows as CSV instead (the columns of /api/v1/energy,\n"
		"docs/http.md, with the meter's name first). Without options: ./powerlogger.db, every\n"
		"meter, the last 30 days.\n"
		"\n"
		"  -c, --config FILE   the store the configuration names; its [http] price_per_kwh and\n"
		"                      currency give the cost unless --price is given\n"
		"      --store PATH    the store file (default ./powerlogger.db)\n"
		"  -m, --meter NAME    only this meter (repeatable; default every meter)\n"
		"      --daily         one row per day (default: the last 30 days)\n"
		"      --monthly       one row per month (default: the last 12 months)\n"
		"      --hourly        one row per hour (default: the last 48 hours)\n"
		"      --from DATE     the first day or month in the report: YYYY-MM-DD or YYYY-MM\n"
		"      --to DATE       the last day or month in the report, inclusive (default: today)\n"
		"      --csv           CSV on stdout instead of the table\n"
		"      --price X       the price of a kWh, for the cost column\n"
		"      --currency C    the price's currency, shown beside the cost (e.g. EUR)\n"
		"  -h, --help          this text\n"
		"\n"
		"Dates and buckets are in local time (TZ). A '*' marks a bucket the logger did not\n"
		"cover completely or where sampling was interrupted.\n");
}

struct report_opts {
	int step;
	int csv;
	int have_price;
	double price;
	const char *currency;
	const char *from, *to;
	const char *meters[MAXN];
	size_t nmeters;
};

/*
 * A local date, YYYY-MM-DD or YYYY-MM: *us gets its first instant (local midnight), *month is
 * set when it names a month. 0, or -1 when it is no such date.
 */
static int parse_date(const char *s, int64_t *us, int *month)
{
	struct tm tm;
	int y, m, d = 1, n = 0;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) == 3 && s[n] == '\0' && n == 10)
		*month = 0;
	else if (n = 0, d = 1, sscanf(s, "%4d-%2d%n", &y, &m, &n) == 2 && s[n] == '\0' && n == 7)
		*month = 1;
	else
		return -1;
	if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1 || d > 31)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	tm.tm_isdst = -1;
	t = mktime(&tm);
	if (t == (time_t)-1 || tm.tm_mday != d || tm.tm_mon != m - 1) /* 2026-02-30 */
		return -1;
	*us = (int64_t)t * PL_US_PER_S;
	return 0;
}

/* The local midnight of the day (month: first day) holding us, days (months) later. */
static int64_t local_start(int64_t us, int month, int later)
{
	time_t t = (time_t)(us / PL_US_PER_S);
	struct tm tm;

	localtime_r(&t, &tm);
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	if (month) {
		tm.tm_mday = 1;
		tm.tm_mon += later;
	} else {
		tm.tm_mday += later;
	}
	tm.tm_isdst = -1;
	return (int64_t)mktime(&tm) * PL_US_PER_S;
}

/*
 * The report's range [*from_us, *to_us) from --from/--to and the defaults: 0, or 2 with the
 * problem printed.
 */
static int report_range(const struct report_opts *o, int64_t now_us, int64_t *from_us,
			int64_t *to_us)
{
	int fmonth = 0, tmonth = 0;
	int64_t t;

	if (o->to != NULL) {
		if (parse_date(o->to, &t, &tmonth) != 0) {
			fprintf(stderr, PROG ": --to '%s': not a date (YYYY-MM-DD or YYYY-MM, local time)\n",
				o->to);
			return 2;
		}
		*to_us = local_start(t, tmonth, 1); /* inclusive: up to the next day or month */
	} else if (o->step == PL_STEP_HOUR) {
		*to_us = now_us - now_us % (3600 * PL_US_PER_S) + 3600 * PL_US_PER_S;
	} else {
		*to_us = local_start(now_us, o->step == PL_STEP_MONTH, 1);
	}
	if (o->from != NULL) {
		if (parse_date(o->from, from_us, &fmonth) != 0) {
			fprintf(stderr,
				PROG ": --from '%s': not a date (YYYY-MM-DD or YYYY-MM, local time)\n",
				o->from);
			return 2;
		}
	} else if (o->step == PL_STEP_HOUR) {
		*from_us = *to_us - 48 * 3600 * PL_US_PER_S;
	} else if (o->step == PL_STEP_MONTH) {
		*from_us = local_start(*to_us - 1, 1, -11);
	} else {
		*from_us = local_start(*to_us - 1, 0, -29);
	}
	if (*from_us >= *to_us) {
		fprintf(stderr, PROG ": --from %s is after --to %s (the report would be empty)\n",
			o->from ? o->from : "(default)", o->to ? o->to : "(today)");
		return 2;
	}
	return 0;
}

/* The bucket's start as the table shows it: a day, a month or an hour, local time. */
static void label(char *buf, size_t cap, int step, int64_t us)
{
	time_t t = (time_t)(us / PL_US_PER_S);
	struct tm tm;
	const char *fmt = step == PL_STEP_MONTH ? "%Y-%m" :
			  step == PL_STEP_DAY	? "%Y-%m-%d" :
						  "%Y-%m-%d %H:%M %Z"; /* the DST repeat hour */

	localtime_r(&t, &tm);
	if (strftime(buf, cap, fmt, &tm) == 0)
		snprintf(buf, cap, "%" PRId64, us);
}

/* RFC 3339 in local time, 2026-12-01T00:00:00+01:00, as docs/http.md's CSV. */
static void rfc3339(char *buf, size_t cap, int64_t us)
{
	time_t t = (time_t)(us / PL_US_PER_S);
	struct tm tm;
	char z[8];

	localtime_r(&t, &tm);
	if (strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm) == 0 ||
	    strftime(z, sizeof(z), "%z", &tm) == 0 || strlen(z) != 5) {
		snprintf(buf, cap, "%" PRId64, us);
		return;
	}
	size_t n = strlen(buf);
	snprintf(buf + n, cap - n, "%.3s:%s", z, z + 3);
}

/* The time of the bucket the logger could have covered: up to now for the running one. */
static int64_t bucket_span_s(const struct pl_store_bucket *b, int64_t now_us)
{
	int64_t end = b->end_us < now_us ? b->end_us : now_us;

	return end > b->start_us ? (end - b->start_us) / PL_US_PER_S : 0;
}

static double coverage_pct(int64_t covered_s, int64_t span_s)
{
	double pct;

	if (span_s <= 0)
		return 100.0;
	pct = 100.0 * (double)covered_s / (double)span_s;
	return pct > 100.0 ? 100.0 : pct; /* a record straddling the end counts where it starts */
}

/* A bucket to mark: sampling interrupted, or the logger not there all the time. The bucket
 * still running is behind now by the record in progress (an interval, up to an hour): it is
 * marked only when more than RUNNING_SLACK_S of it is missing. */
#define RUNNING_SLACK_S 3600
static int incomplete(const struct pl_store_bucket *b, int64_t now_us)
{
	int64_t span = bucket_span_s(b, now_us);

	if (b->end_us > now_us)
		span -= RUNNING_SLACK_S;
	return b->gaps > 0 || b->covered_s < span;
}

static void print_csv(const char *meter, const struct pl_store_bucket *b, size_t n,
		      const struct report_opts *o)
{
	char s[40], e[40];

	for (size_t i = 0; i < n; i++) {
		rfc3339(s, sizeof(s), b[i].start_us);
		rfc3339(e, sizeof(e), b[i].end_us);
		printf("%s,%s,%s,%.6f,", meter, s, e, (double)b[i].energy_uwh / 1e9);
		if (o->have_price)
			printf("%.4f", (double)b[i].energy_uwh / 1e9 * o->price);
		printf(",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRId64 ",%" PRIu64 ",%.3f\n",
		       b[i].pulses, b[i].rejected, b[i].records, b[i].covered_s, b[i].gaps,
		       (double)b[i].peak_mw / 1000.0);
	}
}

static void print_table(const char *meter, const struct pl_store_bucket *b, size_t n,
			const struct report_opts *o, int64_t now_us)
{
	const char *cur = o->currency ? o->currency : "";
	int64_t energy = 0, covered = 0, span = 0, peak = 0;
	int marks = 0, w = o->step == PL_STEP_HOUR ? 22 : o->step == PL_STEP_DAY ? 10 : 7;
	char buf[48];

	printf("%s\n", meter);
	printf("  %-*s %12s", w, o->step == PL_STEP_MONTH ? "month" :
			      o->step == PL_STEP_DAY	? "date" : "hour",
	       "kWh");
	if (o->have_price) {
		snprintf(buf, sizeof(buf), "cost%s%s", cur[0] ? " " : "", cur);
		printf(" %12s", buf);
	}
	printf(" %10s %9s\n", "peak W", "coverage");
	for (size_t i = 0; i < n; i++) {
		int64_t sp = bucket_span_s(&b[i], now_us);
		int mark = incomplete(&b[i], now_us) && sp > 0;

		label(buf, sizeof(buf), o->step, b[i].start_us);
		printf("  %-*s %12.3f", w, buf, (double)b[i].energy_uwh / 1e9);
		if (o->have_price)
			printf(" %12.2f", (double)b[i].energy_uwh / 1e9 * o->price);
		if (b[i].records > 0)
			printf(" %10.1f", (double)b[i].peak_mw / 1000.0);
		else
			printf(" %10s", "-");
		if (sp > 0)
			printf(" %8.1f%%%s\n", coverage_pct(b[i].covered_s, sp), mark ? " *" : "");
		else
			printf(" %9s\n", "(future)");
		energy += b[i].energy_uwh;
		covered += b[i].covered_s;
		span += sp;
		peak = b[i].peak_mw > peak ? b[i].peak_mw : peak;
		marks += mark;
	}
	printf("  %-*s %12.3f", w, "total", (double)energy / 1e9);
	if (o->have_price)
		printf(" %12.2f", (double)energy / 1e9 * o->price);
	printf(" %10.1f %8.1f%%\n", (double)peak / 1000.0, coverage_pct(covered, span));
	if (marks > 0)
		printf("  * %d of %zu incomplete: the logger was not there all the time, or sampling "
		       "was interrupted\n",
		       marks, n);
}

/* One meter's report: 0, or 1 when the store could not answer. */
static int report_meter(struct pl_store *st, const struct pl_store_entry *m,
			const struct report_opts *o, int64_t from_us, int64_t to_us, int64_t now_us)
{
	size_t cap = MAX_ROWS + 1, k;
	int64_t *edges = malloc(cap * sizeof(*edges));
	struct pl_store_bucket *b = NULL;
	int rc, status = 1;

	if (edges == NULL) {
		fprintf(stderr, PROG ": out of memory\n");
		return 1;
	}
	k = pl_calendar_edges(o->step, from_us, to_us, edges, cap);
	if (k < 2) {
		fprintf(stderr, PROG ": the range holds more than %d rows; choose a shorter one or a "
				"longer step (--daily, --monthly)\n",
			MAX_ROWS);
		goto out;
	}
	b = calloc(k - 1, sizeof(*b));
	if (b == NULL) {
		fprintf(stderr, PROG ": out of memory\n");
		goto out;
	}
	rc = pl_store_buckets(st, m->id, edges, k - 1, b);
	if (rc != 0) {
		fprintf(stderr, PROG ": meter %s: %s\n", m->name, pl_store_error(st));
		goto out;
	}
	if (o->csv)
		print_csv(m->name, b, k - 1, o);
	else
		print_table(m->name, b, k - 1, o, now_us);
	status = 0;
out:
	free(b);
	free(edges);
	return status;
}

/* Option codes without a short letter. */
enum { OPT_STORE = 256, OPT_DAILY, OPT_MONTHLY, OPT_HOURLY, OPT_FROM, OPT_TO, OPT_CSV,
       OPT_PRICE, OPT_CURRENCY };

/* The options into *o: -1 to go on, else the exit status. */
static int parse_options(int argc, char **argv, struct report_opts *o, const char **config,
			 const char **path)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "store", required_argument, NULL, OPT_STORE },
		{ "meter", required_argument, NULL, 'm' },
		{ "daily", no_argument, NULL, OPT_DAILY },
		{ "monthly", no_argument, NULL, OPT_MONTHLY },
		{ "hourly", no_argument, NULL, OPT_HOURLY },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "to", required_argument, NULL, OPT_TO },
		{ "csv", no_argument, NULL, OPT_CSV },
		{ "price", required_argument, NULL, OPT_PRICE },
		{ "currency", required_argument, NULL, OPT_CURRENCY },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, steps = 0;
	char *end;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:m:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			*config = optarg;
			break;
		case OPT_STORE:
			*path = optarg;
			break;
		case 'm':
			if (o->nmeters == MAXN) {
				fprintf(stderr, PROG ": more than %d --meter options\n", MAXN);
				return 2;
			}
			o->meters[o->nmeters++] = optarg;
			break;
		case OPT_DAILY:
		case OPT_MONTHLY:
		case OPT_HOURLY:
			o->step = c == OPT_DAILY ? PL_STEP_DAY :
				  c == OPT_MONTHLY ? PL_STEP_MONTH : PL_STEP_HOUR;
			steps++;
			break;
		case OPT_FROM:
			o->from = optarg;
			break;
		case OPT_TO:
			o->to = optarg;
			break;
		case OPT_CSV:
			o->csv = 1;
			break;
		case OPT_PRICE:
			errno = 0;
			o->price = strtod(optarg, &end);
			if (errno != 0 || end == optarg || *end != '\0' || !isfinite(o->price) ||
			    o->price < 0) {
				fprintf(stderr, PROG ": --price '%s': not a price per kWh (a number "
						"such as 0.30)\n",
					optarg);
				return 2;
			}
			o->have_price = 1;
			break;
		case OPT_CURRENCY:
			if (optarg[0] == '\0' || strlen(optarg) > 16 || strpbrk(optarg, ",\"\n\r")) {
				fprintf(stderr, PROG ": --currency '%s': a short name such as EUR\n",
					optarg);
				return 2;
			}
			o->currency = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (steps > 1) {
		fprintf(stderr, PROG ": one of --daily, --monthly and --hourly, not several\n");
		return 2;
	}
	if (*config != NULL && *path != NULL) {
		fprintf(stderr, PROG ": -c and --store both name the store: give one\n");
		return 2;
	}
	return -1;
}

/* The meters to report, by name, into sel: 0, 1 when the store has none, 2 for a name the
 * store does not know (the known ones printed). */
static int select_meters(const struct report_opts *o, const char *path,
			 const struct pl_store_entry *e, size_t n, struct pl_store_entry *sel,
			 size_t *nsel)
{
	if (n == 0) {
		fprintf(stderr, PROG ": the store %s has no meter yet: nothing to report (has the "
				"logger run with it?)\n",
			path);
		return 1;
	}
	if (o->nmeters == 0) {
		memcpy(sel, e, n * sizeof(*e));
		*nsel = n;
		return 0;
	}
	*nsel = 0;
	for (size_t i = 0; i < o->nmeters; i++) {
		size_t j;

		for (j = 0; j < n && strcmp(e[j].name, o->meters[i]) != 0; j++)
			;
		if (j == n) {
			fprintf(stderr, PROG ": no meter '%s' in the store %s (it has: ", o->meters[i],
				path);
			for (j = 0; j < n; j++)
				fprintf(stderr, "%s%s", j ? ", " : "", e[j].name);
			fprintf(stderr, ")\n");
			return 2;
		}
		sel[(*nsel)++] = e[j];
	}
	return 0;
}

int pl_cmd_report(int argc, char **argv)
{
	struct report_opts o = { .step = PL_STEP_DAY };
	const char *config = NULL, *path = NULL;
	struct pl_config *cfg = NULL;
	struct pl_store *st = NULL;
	struct pl_store_entry e[MAXN], sel[MAXN];
	struct timespec ts;
	int64_t now_us, from_us, to_us;
	size_t n = 0, nsel = 0;
	char err[256];
	int status;

	status = parse_options(argc, argv, &o, &config, &path);
	if (status >= 0)
		return status;
	if (path == NULL)
		path = "powerlogger.db";
	/* reading the store needs none of the sinks' secrets */
	if (pl_cli_store_config(PROG, config, &cfg, &path) != 0)
		return 2;
	/* The configuration's price, as the dashboard shows it, unless --price overrides it. */
	if (cfg != NULL && !o.have_price && cfg->http.price_micro >= 0) {
		o.have_price = 1;
		o.price = (double)cfg->http.price_micro / 1e6;
		if (o.currency == NULL)
			o.currency = cfg->http.currency;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	now_us = (int64_t)ts.tv_sec * PL_US_PER_S + ts.tv_nsec / 1000;
	status = report_range(&o, now_us, &from_us, &to_us);
	if (status != 0)
		goto out;
	/* Read-only: a reader beside a running logger must change nothing. Without the
	 * integrity check (quick_check reads the whole file: 0.7 s for a year of 20 s records,
	 * where the report itself takes milliseconds): the logger checks the store at its start
	 * and `status` does every time; damage the report meets is an error from SQLite. */
	if (pl_store_open(path, PL_STORE_READONLY | PL_STORE_NOCHECK, &st, err, sizeof(err)) !=
	    0) {
		fprintf(stderr, PROG ": %s\n", err);
		status = 1;
		goto out;
	}
	if (pl_store_list(st, 0, e, MAXN, &n) != 0) {
		fprintf(stderr, PROG ": %s\n", pl_store_error(st));
		status = 1;
		goto out;
	}
	status = select_meters(&o, path, e, n, sel, &nsel);
	if (status != 0)
		goto out;
	if (o.csv)
		printf("meter,start,end,kwh,cost,pulses,rejected,records,covered_s,gap_records,"
		       "peak_w\n");
	for (size_t i = 0; i < nsel; i++) {
		if (!o.csv && i > 0)
			putchar('\n');
		if (report_meter(st, &sel[i], &o, from_us, to_us, now_us) != 0)
			status = 1;
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, PROG ": writing the report: %s\n", strerror(errno));
		status = 1;
	}
out:
	pl_store_close(st);
	pl_config_free(cfg);
	return status;
}
