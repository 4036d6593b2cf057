/* SPDX-License-Identifier: MIT */
/*
 * `powerlogger set-register`: sets a meter's energy register to the meter's own reading, in
 * the store of a STOPPED logger. Until now the register could be given only at a meter's first
 * start (start_register_kwh in [meter NAME]); this is the one way it can change later, and the
 * one way the total can fall (issue 12): the MQTT sink then warns "the register was set lower"
 * and Home Assistant counts it as a meter reset.
 *
 * Why a stopped logger only: the daemon holds the meter's state in memory and writes it back
 * with every interval, so a checkpoint changed beside it would be overwritten by the next one.
 * The command takes the store's lock (pl_store_lock()) as a logger would, and refuses with the
 * running logger's PID.
 *
 * What it writes: the meter's checkpoint with pl_meter_set_register() applied, committed with
 * no records (pl_store_commit_interval(), n = 0). It opens the store's intake like the daemon
 * does: that merges whatever a killed logger left in STORE.intake first, so an older
 * checkpoint there cannot be replayed over this one at the next start; the close merges ours.
 * Pulses already counted in the open interval stay in its energy (meter.h), so the next record
 * has register = the value set + the energy of the pulses after the set. The meter is not
 * advanced to the present first (meter.h suggests it for a running meter): the time it knows
 * is the source's, which only the daemon has; so the interval open at the stop, and any the
 * daemon closes on its restart for the time it was stopped, carry the new value. That is what
 * is wanted: the reading was taken while the logger was stopped.
 *
 * tests/cli_set_register.sh; it fails when the intake is not merged first (seen once).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"
#include "config/config.h"
#include "powerlogger/common.h"
#include "store/checkpoint.h"
#include "store/store.h"

#define PROG "powerlogger set-register"
#define MAX_METERS 64

static void usage(FILE *f)
{
	fprintf(f, "usage: powerlogger set-register [-c FILE | --store PATH] METER KWH\n"
		   "\n"
		   "Sets the energy register of METER to KWH, the meter's own reading (up to 6\n"
		   "decimals), in the store of a STOPPED logger: the next record after the logger\n"
		   "starts again carries it. A lower value is a meter reset to Home Assistant.\n"
		   "Stop the logger first (systemctl stop powerlogger). Without -c or --store:\n"
		   "./powerlogger.db.\n");
}

/* "1234.567" -> uWh. 0, or -1 for a negative number, -2 for anything else not a reading. */
static int parse_kwh(const char *s, int64_t *uwh)
{
	int64_t v = 0;
	int idigits = 0, fdigits = 0;

	if (*s == '-')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++, idigits++) {
		if (idigits >= 12) /* up to 999,999,999,999 kWh: far from int64's limit */
			return -2;
		v = v * 10 + (*s - '0');
	}
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++, fdigits++) {
			if (fdigits >= 6)
				return -2;
			v = v * 10 + (*s - '0');
		}
		if (fdigits == 0)
			return -2;
	}
	if (*s != '\0' || idigits == 0)
		return -2;
	for (; fdigits < 9; fdigits++)
		v *= 10;
	*uwh = v;
	return 0;
}

/* uWh as kWh with 3 to 6 decimals: as many as it takes, so that the value set shows whole */
static const char *kwh_text(int64_t uwh, char *buf, size_t cap)
{
	size_t n = (size_t)snprintf(buf, cap, "%" PRId64 ".%06" PRId64, uwh / 1000000000,
				    uwh % 1000000000 / 1000);

	while (n > 0 && n < cap && buf[n - 1] == '0' && strchr(buf, '.') + 4 < buf + n)
		buf[--n] = '\0';
	return buf;
}

int pl_cmd_set_register(int argc, char **argv)
{
	const char *config = NULL, *path = "powerlogger.db", *name, *kwh;
	struct pl_config *cfg = NULL;
	struct pl_store *st = NULL;
	struct pl_store_entry e[MAX_METERS];
	struct pl_checkpoint ck;
	char err[512], a[32], b[32];
	struct stat sb;
	int64_t id = -1, want, old;
	size_t n = 0, len = 0;
	int c, rc, fd = -1, status = 1;

	/* "+": options before METER only, so that a negative KWH is read as one (and refused) */
	c = pl_cli_store_options(argc, argv, "+", usage, &config, &path);
	if (c >= 0)
		return c;
	if (optind + 2 != argc) {
		if (optind + 2 < argc)
			fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind + 2]);
		else
			fprintf(stderr, PROG ": which meter, and what reading? (METER KWH)\n");
		usage(stderr);
		return 2;
	}
	name = argv[optind];
	kwh = argv[optind + 1];
	rc = parse_kwh(kwh, &want);
	if (rc != 0) {
		fprintf(stderr, rc == -1 ? PROG ": %s: a register cannot be negative\n" :
					   PROG ": %s: not a reading in kWh (digits, up to 6 decimals, "
					   "e.g. 12345.678)\n", kwh);
		return 2;
	}
	/* setting the register needs none of the sinks' secrets */
	if (pl_cli_store_config(PROG, config, &cfg, &path) != 0)
		return 2;
	/* before the lock, which would create PATH.lock beside a store that is not there */
	if (stat(path, &sb) != 0) {
		fprintf(stderr, PROG ": %s: no store there (%s)\n", path, strerror(errno));
		goto out;
	}
	rc = pl_store_lock(path, &fd, err, sizeof(err));
	if (rc == -PL_EBUSY) {
		fprintf(stderr, PROG ": %s\n" PROG ": the register can only be set while no logger "
			"runs: stop it first (systemctl stop powerlogger), then start it again\n",
			err);
		goto out;
	} else if (rc != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}
	if (pl_store_open(path, 0, &st, err, sizeof(err)) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}
	if (pl_store_list(st, 0, e, MAX_METERS, &n) != 0) {
		fprintf(stderr, PROG ": %s\n", pl_store_error(st));
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (strcmp(e[i].name, name) == 0)
			id = e[i].id;
	if (id < 0) {
		fprintf(stderr, PROG ": %s: no meter '%s' in this store (it has:", path, name);
		for (size_t i = 0; i < n; i++)
			fprintf(stderr, " %s", e[i].name);
		fprintf(stderr, "%s)\n", n ? "" : " none");
		status = 2;
		goto out;
	}
	rc = pl_store_load_checkpoint(st, id, &ck, sizeof(ck), &len);
	if (rc == -PL_ENOENT) {
		fprintf(stderr, PROG ": meter %s has no checkpoint yet (it never ran): give its "
			"reading as start_register_kwh in [meter %s] for its first start\n", name,
			name);
		goto out;
	}
	if (rc == 0 && !pl_checkpoint_valid(&ck, len))
		rc = -PL_ENOSPC;
	if (rc == -PL_ENOSPC) {
		fprintf(stderr, PROG ": meter %s: its checkpoint is of another version of "
			"PowerLogger: start this version's logger once, stop it, and try again\n",
			name);
		goto out;
	} else if (rc != 0) {
		fprintf(stderr, PROG ": %s\n", pl_store_error(st));
		goto out;
	}
	old = pl_meter_register(&ck.meter);
	/* only now, with nothing left to refuse: merges what a killed logger left in the intake
	 * (the checkpoint read above is the same either way: a reader sees it as if merged) */
	if (pl_store_intake(st, 60) < 0) {
		fprintf(stderr, PROG ": %s\n", pl_store_error(st));
		goto out;
	}
	if (pl_meter_set_register(&ck.meter, want) != 0 ||
	    pl_store_commit_interval(st, id, NULL, 0, &ck, sizeof(ck)) != 0) {
		fprintf(stderr, PROG ": %s\n", pl_store_error(st));
		goto out;
	}
	printf("meter %s: register %s kWh -> %s kWh%s\n", name, kwh_text(old, a, sizeof(a)),
	       kwh_text(want, b, sizeof(b)),
	       want < old ? " (lower: Home Assistant will count it as a meter reset)" :
	       want > old ? " (higher: Home Assistant counts the difference as energy used)" :
			    " (unchanged)");
	status = 0;
out:
	pl_store_close(st);
	if (fd >= 0)
		close(fd);
	pl_config_free(cfg);
	return status;
}
