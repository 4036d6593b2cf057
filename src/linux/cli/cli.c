/* SPDX-License-Identifier: MIT */
/*
 * The `powerlogger` program's command line, pl_main(): `powerlogger <command> [options]`.
 *
 * This file only dispatches: each command lives in its own cmd_<name>.c behind commands.h,
 * parses its own options and returns the exit status (0 success, 1 failure, 2 bad usage or
 * bad input). main() (main.c) only calls it, so that a test program can do the same after
 * installing its fakes (tests/fakes/main_fakes.c).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "config/config.h"

#ifndef PL_VERSION
#define PL_VERSION "0.1.0-dev"
#endif

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "detect", pl_cmd_detect, "find the meter's pulses in a recorded sensor trace" },
	{ "run", pl_cmd_run, "log the configured meters, deliver to InfluxDB and MQTT (the daemon)" },
	{ "status", pl_cmd_status, "show meters and sinks from the store (running or stopped)" },
	{ "report", pl_cmd_report, "energy and cost per day, month or hour from the store" },
	{ "backup", pl_cmd_backup, "copy the store, complete, from a running or stopped logger" },
	{ "set-register", pl_cmd_set_register, "set a meter's register to its reading" },
	{ "simulate", pl_cmd_simulate, "simulate a meter's LED and sensor, write a trace" },
	{ "check-config", pl_cmd_check_config, "check a configuration file and exit" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	size_t i;

	fputs("usage: powerlogger <command> [options]\n"
	      "       powerlogger <command> --help\n"
	      "       powerlogger --version\n"
	      "\n"
	      "Logs an electricity meter's pulse LED: every watt-hour, at high resolution.\n"
	      "\n"
	      "Commands:\n",
	      f);
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-13s %s\n", commands[i].name, commands[i].summary);
	fputs("\nRun 'powerlogger <command> --help' for a command's options.\n", f);
}

static const struct command *find(const char *name)
{
	size_t i;

	for (i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* Edit distance with a small cap, for "did you mean". */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t row[33];

	if (la > 32 || lb > 32)
		return 99;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

static int unknown_command(const char *name)
{
	const struct command *near = NULL;
	size_t i, best = 3;

	for (i = 0; i < NCOMMANDS; i++) {
		size_t d = distance(name, commands[i].name);

		if (d < best || strncmp(commands[i].name, name, strlen(name)) == 0) {
			best = d < best ? d : best;
			near = &commands[i];
		}
	}
	fprintf(stderr, "powerlogger: unknown command '%s'\n", name);
	if (near != NULL && name[0] != '\0')
		fprintf(stderr, "Did you mean 'powerlogger %s'?\n", near->name);
	fputs("Run 'powerlogger --help' for the list of commands.\n", stderr);
	return 2;
}

int pl_main(int argc, char **argv)
{
	const struct command *cmd;
	const char *name;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	name = argv[1];
	if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(name, "-V") == 0 || strcmp(name, "--version") == 0) {
		printf("powerlogger %s\n", PL_VERSION);
		return 0;
	}
	if (strcmp(name, "help") == 0) {
		/* `powerlogger help detect` is `powerlogger detect --help`. */
		static char help_opt[] = "--help";
		char *sub[3];

		if (argc < 3) {
			usage(stdout);
			return 0;
		}
		cmd = find(argv[2]);
		if (cmd == NULL)
			return unknown_command(argv[2]);
		sub[0] = argv[2];
		sub[1] = help_opt;
		sub[2] = NULL;
		return cmd->run(2, sub);
	}
	if (name[0] == '-') {
		fprintf(stderr,
			"powerlogger: unknown option '%s' (options come after the command)\n"
			"Run 'powerlogger --help' for the list of commands.\n",
			name);
		return 2;
	}
	cmd = find(name);
	if (cmd == NULL)
		return unknown_command(name);
	return cmd->run(argc - 1, argv + 1);
}

int pl_cli_store_options(int argc, char **argv, const char *optstring_prefix,
			 void (*show_usage)(FILE *f), const char **config, const char **path)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "store", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char optstring[8];
	int c;

	snprintf(optstring, sizeof(optstring), "%sc:h", optstring_prefix);
	*config = NULL;
	*path = "powerlogger.db";
	optind = 1;
	while ((c = getopt_long(argc, argv, optstring, opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			*config = optarg;
			break;
		case 's':
			*path = optarg;
			break;
		case 'h':
			show_usage(stdout);
			return 0;
		default:
			show_usage(stderr);
			return 2;
		}
	}
	return -1;
}

int pl_cli_store_config(const char *prog, const char *config, struct pl_config **cfg,
			const char **path)
{
	if (config == NULL)
		return 0;
	if (pl_config_load_for_flags(config, prog, PL_CONFIG_NO_SECRETS, cfg) != 0)
		return 2;
	*path = (*cfg)->store.path;
	return 0;
}
