/* SPDX-License-Identifier: MIT */
/*
 * `powerlogger backup`: a copy of the store, complete as of one moment, from a running or a
 * stopped logger. Beside a running logger the newest intervals are in STORE.intake until its
 * next merge (docs/daemon-design.md, "Disk writes and the SD card"): a copy of the database
 * file alone (sqlite3 .backup) lacks them; this one has them merged in.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "config/config.h"
#include "store/store.h"

#define PROG "powerlogger backup"

static void usage(FILE *f)
{
	fprintf(f, "usage: powerlogger backup [-c FILE | --store PATH] DEST\n"
		   "\n"
		   "Writes a copy of the store (of a running or a stopped logger) to the new file\n"
		   "DEST, complete as of one moment: with the intervals that a running logger holds\n"
		   "in STORE.intake until its next merge. DEST must not exist. The copy is a store\n"
		   "of its own: `powerlogger status --store DEST` reads it, and a logger can run on\n"
		   "it. Without -c or --store: ./powerlogger.db.\n");
}

int pl_cmd_backup(int argc, char **argv)
{
	const char *config = NULL, *path = "powerlogger.db", *dest;
	struct pl_config *cfg = NULL;
	struct pl_store *st = NULL, *copy = NULL;
	char err[512];
	struct stat sb;
	int c, status = 1;

	c = pl_cli_store_options(argc, argv, "", usage, &config, &path);
	if (c >= 0)
		return c;
	if (optind + 1 != argc) {
		fprintf(stderr, optind < argc ? PROG ": unexpected argument '%s'\n" :
						PROG ": where to? (DEST is missing)\n",
			optind < argc ? argv[optind + 1] : "");
		usage(stderr);
		return 2;
	}
	dest = argv[optind];
	if (lstat(dest, &sb) == 0) {
		fprintf(stderr, PROG ": %s exists: name a new file (nothing is overwritten)\n", dest);
		return 2;
	}
	/* reading the store needs none of the sinks' secrets */
	if (pl_cli_store_config(PROG, config, &cfg, &path) != 0)
		return 2;
	if (pl_store_open(path, PL_STORE_READONLY, &st, err, sizeof(err)) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}
	if (pl_store_save_copy(st, dest) != 0) {
		fprintf(stderr, PROG ": %s\n", pl_store_error(st));
		goto out;
	}
	/* the copy read back as a store: its integrity check, and what it holds */
	if (pl_store_open(dest, PL_STORE_READONLY, &copy, err, sizeof(err)) != 0) {
		fprintf(stderr, PROG ": the copy does not read back: %s\n", err);
		goto out;
	}
	printf("%s: a copy of %s (integrity check passed)\n", dest, path);
	status = 0;
out:
	pl_store_close(copy);
	pl_store_close(st);
	pl_config_free(cfg);
	return status;
}
