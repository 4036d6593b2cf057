/*
 * `powerlogger status`: what the store says, from a running or a stopped logger (SQLite in WAL
 * mode lets a reader in beside the writer). Per meter: the register and the newest interval
 * record; per sink: the backlog, the oldest undelivered interval and the quarantined count.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "config.h"
#include "store.h"
#include "powerlogger/meter.h"

#define PROG "powerlogger status"
#define MAXN 64

static void print_time(int64_t us)
{
	time_t t = (time_t)(us / PL_US_PER_S);
	struct tm tm;
	char buf[40];

	if (us > 100000000LL * PL_US_PER_S / 100 && gmtime_r(&t, &tm) &&
	    strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm) > 0)
		fputs(buf, stdout);
	else
		printf("%.3f s", (double)us / 1e6); /* a trace's own time base */
}

static void usage(FILE *f)
{
	fprintf(f, "usage: powerlogger status [-c FILE | --store PATH]\n"
		   "\n"
		   "Shows each meter's register and newest interval record and each sink's backlog,\n"
		   "oldest undelivered record and quarantined count, from the store of a running or a\n"
		   "stopped logger. Without options: ./powerlogger.db.\n");
}

int pl_cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "store", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL, *path = "powerlogger.db";
	struct pl_config *cfg = NULL;
	struct pl_store *st = NULL;
	struct pl_store_entry e[MAXN];
	char err[256];
	size_t n = 0;
	int c, status = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 's':
			path = optarg;
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
	if (config) {
		if (pl_config_load_for(config, PROG, &cfg) != 0)
			return 2;
		path = cfg->store.path;
	}
	if (pl_store_open(path, 0, &st, err, sizeof(err)) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		pl_config_free(cfg);
		return 1;
	}
	printf("store: %s\n", path);
	if (pl_store_list(st, 0, e, MAXN, &n) != 0) {
		fprintf(stderr, PROG ": %s\n", pl_store_error(st));
		status = 1;
		goto out;
	}
	printf("meters: %zu\n", n);
	for (size_t i = 0; i < n; i++) {
		struct pl_interval_record r;
		int rc = pl_store_last_record(st, e[i].id, &r);
		printf("  %s: ", e[i].name);
		if (rc == -PL_ENOENT) {
			printf("no record yet\n");
			continue;
		}
		if (rc != 0) {
			printf("cannot read: %s\n", pl_store_error(st));
			status = 1;
			continue;
		}
		printf("register %.3f kWh; last interval ", (double)r.register_uwh / 1e9);
		print_time(r.start_us);
		printf(" (%" PRIu32 " s): %" PRIu32 " pulses, %.1f W average, %.1f W peak%s%s\n",
		       r.length_s, r.pulses, (double)r.avg_mw / 1000.0, (double)r.peak_mw / 1000.0,
		       r.rejected ? ", implausible pulses rejected" : "",
		       r.flags & PL_Q_STEADY ? ", LED steadily lit" : "");
	}
	if (pl_store_list(st, 1, e, MAXN, &n) != 0) {
		fprintf(stderr, PROG ": %s\n", pl_store_error(st));
		status = 1;
		goto out;
	}
	printf("sinks: %zu\n", n);
	for (size_t i = 0; i < n; i++) {
		uint64_t backlog = 0, quarantined = 0;
		int64_t oldest = INT64_MIN;
		if (pl_store_backlog(st, e[i].id, &backlog, &oldest) != 0 ||
		    pl_store_quarantined(st, e[i].id, &quarantined) != 0) {
			printf("  %s: cannot read: %s\n", e[i].name, pl_store_error(st));
			status = 1;
			continue;
		}
		printf("  %s: backlog %" PRIu64 " records", e[i].name, backlog);
		if (backlog > 0) {
			printf(", oldest from ");
			print_time(oldest);
		}
		printf("; %" PRIu64 " quarantined\n", quarantined);
	}
out:
	pl_store_close(st);
	pl_config_free(cfg);
	return status;
}
