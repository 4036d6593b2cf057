/* SPDX-License-Identifier: MIT */
/*
 * `powerlogger status`: what the store says, from a running or a stopped logger (SQLite in WAL
 * mode lets a reader in beside the writer). Per meter: the register, the newest interval
 * record, and from the last checkpoint the power and the detector's state; per sink: whether
 * it is failing and its last error, the last delivery, the backlog, the oldest undelivered
 * interval and the quarantined count.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store/checkpoint.h"
#include "cli/commands.h"
#include "config/config.h"
#include "store/store.h"
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

/* The power and the detector's state as of the last checkpoint (at time t_us, the end of the
 * newest record). */
static void print_checkpoint(struct pl_store *st, int64_t meter_id, int64_t t_us)
{
	struct pl_checkpoint ck;
	struct pl_detector_status ds;
	size_t len = 0;

	if (pl_store_load_checkpoint(st, meter_id, &ck, sizeof(ck), &len) != 0 ||
	    !pl_checkpoint_valid(&ck, len))
		return;
	pl_detector_status(&ck.det, &ds);
	printf("    power %.1f W; detector %s, polarity %s, %" PRIu64 " pulses (%" PRIu64
	       " rejected), noise %" PRId32 ", swing %" PRId32 "\n",
	       (double)pl_meter_power(&ck.meter, t_us, NULL) / 1000.0,
	       pl_detector_state_name(ds.state),
	       ds.polarity > 0 ? "rising" : ds.polarity < 0 ? "falling" : "not yet known",
	       ds.pulses, ds.rejected, ds.noise, ds.amplitude);
}

/* Sampling gaps and overruns the sources reported (PL_Q_GAP), over the day before newest_us. */
static void print_gaps(struct pl_store *st, int64_t meter_id, int64_t newest_us)
{
	uint64_t n = 0;
	int64_t last;

	if (pl_store_flagged(st, meter_id, PL_Q_GAP, newest_us - 86400 * PL_US_PER_S, &n,
			     &last) != 0)
		return;
	printf("    sampling gaps: %" PRIu64 " interval%s in the last 24 h", n, n == 1 ? "" : "s");
	if (n > 0) {
		printf(", newest ");
		print_time(last);
	}
	putchar('\n');
}

static void print_sink_state(struct pl_store *st, int64_t sink_id)
{
	struct pl_store_sink_info info;

	if (pl_store_sink_info(st, sink_id, &info) != 0)
		return;
	printf("    %s", info.failing ? "FAILING" : info.ok_us ? "delivering" : "nothing delivered yet");
	if (info.ok_us) {
		printf("; last delivery ");
		print_time(info.ok_us);
	}
	if (info.last_error[0]) {
		printf("; last error ");
		print_time(info.error_us);
		printf(": %s", info.last_error);
	}
	putchar('\n');
}

static void usage(FILE *f)
{
	fprintf(f, "usage: powerlogger status [-c FILE | --store PATH]\n"
		   "\n"
		   "Shows each meter's register, newest interval record, power and detector state, and\n"
		   "each sink's state, last error, backlog, oldest undelivered record and quarantined\n"
		   "count, from the store of a running or a stopped logger. Without options:\n"
		   "./powerlogger.db.\n");
}

/* Each meter's last record, checkpoint and gaps: 0, or 1 when one could not be read. */
static int print_meters(struct pl_store *st, const struct pl_store_entry *e, size_t n)
{
	int status = 0;

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
		print_checkpoint(st, e[i].id, r.start_us + (int64_t)r.length_s * PL_US_PER_S);
		print_gaps(st, e[i].id, r.start_us);
	}
	return status;
}

/* With a configuration: where an MQTT sink publishes (its backlog and state are the same as
 * any sink's: the store's). */
static void print_mqtt(const struct pl_config *cfg, const char *name)
{
	for (size_t i = 0; cfg != NULL && i < cfg->nmqtt; i++) {
		const struct pl_config_mqtt *q = &cfg->mqtt[i];

		if (strcmp(q->name, name) != 0)
			continue;
		printf("    mqtt %s as %s, topics %s/", q->url, q->client_id, q->topic_prefix);
		if (q->discovery_prefix[0])
			printf(", discovery %s/", q->discovery_prefix);
		putchar('\n');
	}
}

/* Each sink's backlog, quarantine and state: 0, or 1 when one could not be read. */
static int print_sinks(struct pl_store *st, const struct pl_store_entry *e, size_t n,
		       const struct pl_config *cfg)
{
	int status = 0;

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
		print_mqtt(cfg, e[i].name);
		print_sink_state(st, e[i].id);
	}
	return status;
}

int pl_cmd_status(int argc, char **argv)
{
	const char *config = NULL, *path = "powerlogger.db";
	struct pl_config *cfg = NULL;
	struct pl_store *st = NULL;
	struct pl_store_entry e[MAXN];
	char err[256];
	size_t n = 0;
	int c, status = 0;

	c = pl_cli_store_options(argc, argv, "", usage, &config, &path);
	if (c >= 0)
		return c;
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	/* reading the store needs none of the sinks' secrets */
	if (pl_cli_store_config(PROG, config, &cfg, &path) != 0)
		return 2;
	/* Read-only: a reader beside a running logger must change nothing (SQLite's busy
	 * timeout covers a commit in progress). */
	if (pl_store_open(path, PL_STORE_READONLY, &st, err, sizeof(err)) != 0) {
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
	if (print_meters(st, e, n) != 0)
		status = 1;
	if (pl_store_list(st, 1, e, MAXN, &n) != 0) {
		fprintf(stderr, PROG ": %s\n", pl_store_error(st));
		status = 1;
		goto out;
	}
	printf("sinks: %zu\n", n);
	if (print_sinks(st, e, n, cfg) != 0)
		status = 1;
out:
	pl_store_close(st);
	pl_config_free(cfg);
	return status;
}
