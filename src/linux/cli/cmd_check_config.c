/* SPDX-License-Identifier: MIT */
/*
 * `powerlogger check-config`: checks a configuration file and exits, like ntpd -n.
 *
 * Every problem is printed as FILE:LINE: [section] key: problem (hint), all of them, not only
 * the first; then the exit status is 2. A good file gives a short summary of what the daemon
 * would run (secrets redacted) and exit status 0; warnings do not fail the check.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "config/config.h"
#include "powerlogger/common.h"

#define PROG "powerlogger check-config"

static void usage(FILE *f)
{
	fputs("usage: powerlogger check-config [options] FILE\n"
	      "\n"
	      "Checks a configuration file: every problem is printed as\n"
	      "FILE:LINE: [section] key: problem (hint). A good file gives a short summary of\n"
	      "the meters, sources and sinks on standard output; secrets are never shown.\n"
	      "An annotated example is docs/powerlogger.example.ini.\n"
	      "\n"
	      "Options:\n"
	      "  -q, --quiet           no summary, only the problems\n"
	      "  -h, --help            this help\n"
	      "\n"
	      "Exit status: 0 the file is good (warnings allowed), 2 bad usage or problems in\n"
	      "the file, 1 other failure.\n"
	      "\n"
	      "Example:\n"
	      "  powerlogger check-config /etc/powerlogger/powerlogger.ini\n",
	      f);
}

static int usage_error(const char *what, const char *arg)
{
	fprintf(stderr, PROG ": %s%s%s%s\n", what, arg ? " '" : "", arg ? arg : "",
		arg ? "'" : "");
	fputs("Run 'powerlogger check-config --help' for the options.\n", stderr);
	return 2;
}

static const struct option long_options[] = {
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int pl_cmd_check_config(int argc, char **argv)
{
	struct pl_config_diags diags = { 0 };
	struct pl_config *cfg = NULL;
	int c, rc, quiet = 0;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":qh", long_options, NULL)) != -1) {
		switch (c) {
		case 'q':
			quiet = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return usage_error("unknown option", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return usage_error("missing FILE", NULL);
	if (optind + 1 < argc)
		return usage_error("one FILE only; unexpected", argv[optind + 1]);

	rc = pl_config_load(argv[optind], &cfg, &diags);
	pl_config_diags_print(&diags, stderr);
	if (rc == -PL_ENOMEM) {
		fprintf(stderr, PROG ": out of memory\n");
		rc = 1;
	} else if (rc < 0) {
		if (diags.errors)
			fprintf(stderr, PROG ": %s: %zu error%s, %zu warning%s\n", argv[optind],
				diags.errors, diags.errors == 1 ? "" : "s", diags.warnings,
				diags.warnings == 1 ? "" : "s");
		rc = 2;
	} else {
		if (!quiet && pl_config_dump(cfg, stdout) != 0)
			rc = 1;
		if (fflush(stdout) != 0) {
			fprintf(stderr, PROG ": cannot write the output\n");
			rc = 1;
		}
	}
	pl_config_free(cfg);
	pl_config_diags_free(&diags);
	return rc;
}
