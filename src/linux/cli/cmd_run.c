/* SPDX-License-Identifier: MIT */
/*
 * `powerlogger run`: the long-running logger's command line. The options, the configuration
 * (a file, or the built-in one: a simulated meter into ./powerlogger.db), then the daemon
 * (daemon/daemon.h) runs; a reload or a store written back after its deletion executes the
 * program again in place, with the same arguments.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "config/config.h"
#include "daemon/daemon.h"

#define PROG "powerlogger run"

static const char *default_profile(void)
{
	static const char *const candidates[] = {
		"data/refit-house1-2015-01-08.csv",
	};
	const char *env = getenv("PL_PROFILE");
	if (env)
		return env;
	for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++)
		if (access(candidates[i], R_OK) == 0)
			return candidates[i];
	return NULL;
}

static int default_config(const char *store_path, struct pl_config **cfg)
{
	char text[1024];
	struct pl_config_diags diags = { 0 };
	const char *profile = default_profile();

	snprintf(text, sizeof(text),
		 "[store]\npath = %s\n\n[meter house]\nsource = sim\nimp_per_kwh = 1000\n%s%s%s",
		 store_path ? store_path : "powerlogger.db", profile ? "profile = " : "",
		 profile ? profile : "", profile ? "\n" : "");
	if (pl_config_parse_string("(built-in)", text, cfg, &diags) != 0) {
		pl_config_diags_print(&diags, stderr);
		pl_config_diags_free(&diags);
		return -1;
	}
	pl_config_diags_free(&diags);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: powerlogger run [-c FILE] [options]\n"
		"\n"
		"Logs every configured meter into the store and delivers the interval records to every\n"
		"configured InfluxDB, exactly once, across outages, restarts and power cuts. Without -c,\n"
		"a simulated meter is logged into ./powerlogger.db: a real household's load profile\n"
		"(data/ of the repository, when run from there; PL_PROFILE names another file).\n"
		"\n"
		"Options:\n"
		"  -c, --config FILE    configuration (see docs/powerlogger.example.ini;\n"
		"                       check it with `powerlogger check-config FILE`)\n"
		"      --store PATH     store file when running without -c (default powerlogger.db)\n"
		"      --speed X        replay speed for every meter (0: as fast as possible)\n"
		"      --duration S     stop after S seconds of input\n"
		"      --until-drained  with file sources: stop once every file is read and every\n"
		"                       record delivered\n"
		"  -q, --quiet          no status line\n"
		"  -h, --help           this help\n"
		"\n"
		"SIGINT/SIGTERM stop it cleanly: the state is checkpointed, a restart resumes.\n"
		"SIGHUP reloads: a valid configuration is taken up by a clean restart in place\n"
		"(same PID); one with errors is reported and the running one kept.\n");
}

/* The options into o; returns -1 to go on, else the exit status (help, a usage error). */
static int parse_options(int argc, char **argv, struct pl_daemon_options *o,
			 const char **config, const char **store_path)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "store", required_argument, NULL, 's' },
		{ "speed", required_argument, NULL, 'x' },
		{ "duration", required_argument, NULL, 'd' },
		{ "until-drained", no_argument, NULL, 'u' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:qh", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'c':
			*config = optarg;
			break;
		case 's':
			*store_path = optarg;
			break;
		case 'x':
			o->speed = strtod(optarg, &end);
			if (*end || o->speed < 0) {
				fprintf(stderr, PROG ": --speed wants a number >= 0\n");
				return 2;
			}
			o->have_speed = 1;
			break;
		case 'd':
			o->duration_s = strtod(optarg, &end);
			if (*end || o->duration_s <= 0) {
				fprintf(stderr, PROG ": --duration wants seconds > 0\n");
				return 2;
			}
			break;
		case 'u':
			o->until_drained = 1;
			break;
		case 'q':
			o->quiet = 1;
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
	return -1;
}

/* The configuration file, or the built-in one; returns -1 to go on, else the exit status. */
static int load_config(const char *config, const char *store_path, int until_drained,
		       struct pl_config **cfg)
{
	if (config == NULL)
		return default_config(store_path, cfg) != 0 ? 1 : -1;
	if (pl_config_load_for(config, PROG, cfg) != 0)
		return 2;
	/* Without a meter only forwarding the store's backlog is work; anything else would
	 * run forever doing nothing. */
	if ((*cfg)->nmeters == 0 && !until_drained) {
		fprintf(stderr, PROG ": %s: no [meter NAME] section: nothing to log (only "
			"--until-drained, delivering what the store holds, runs without one)\n",
			config);
		pl_config_free(*cfg);
		*cfg = NULL;
		return 2;
	}
	return -1;
}

int pl_cmd_run(int argc, char **argv)
{
	struct pl_daemon_options o = { 0 };
	struct pl_config *cfg = NULL;
	const char *store_path = NULL;
	int status, restart = 0;

	status = parse_options(argc, argv, &o, &o.config_path, &store_path);
	if (status < 0)
		status = load_config(o.config_path, store_path, o.until_drained, &cfg);
	if (status >= 0)
		return status;
	o.cfg = cfg;
	o.tty = isatty(STDERR_FILENO) && !o.quiet;
	status = pl_daemon_run(&o, &restart);
	pl_config_free(cfg);
	if (restart)
		pl_daemon_restart(argc, argv); /* returns only if exec failed */
	return status;
}
