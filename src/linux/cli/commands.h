/* SPDX-License-Identifier: MIT */
/*
 * The subcommands of the `powerlogger` program. Each takes the arguments after its name
 * (argv[0] is the subcommand's name) and returns the process exit status: 0 success,
 * 1 runtime failure, 2 usage error or bad input.
 */
#ifndef PL_COMMANDS_H
#define PL_COMMANDS_H

#include <stdio.h>

int pl_cmd_detect(int argc, char **argv);
int pl_cmd_simulate(int argc, char **argv);
int pl_cmd_check_config(int argc, char **argv);
int pl_cmd_run(int argc, char **argv);
int pl_cmd_status(int argc, char **argv);
int pl_cmd_backup(int argc, char **argv);
int pl_cmd_set_register(int argc, char **argv);
int pl_cmd_report(int argc, char **argv);

/*
 * The options of the commands that work on a store, not a configuration as such (status,
 * backup, set-register): -c/--config FILE (the store its [store] names) or --store PATH
 * (default ./powerlogger.db), and -h/--help. Parses argv from its start (optstring_prefix
 * "+" stops at the first operand, so that an operand such as "-5" is not an option); optind is
 * left at the first operand. Returns -1 to go on, with *config (NULL: none given) and *path
 * set; else the exit status: 0 after --help (show_usage(stdout)), 2 on a bad option
 * (show_usage(stderr)).
 */
int pl_cli_store_options(int argc, char **argv, const char *optstring_prefix,
			 void (*show_usage)(FILE *f), const char **config, const char **path);

/*
 * The store's path from the configuration file config, read without the sinks' secrets (a
 * reader needs none; prog names the command in its messages); *cfg gets it (free with pl_config_free). NULL config: *path unchanged.
 * 0, or 2 with the configuration's problems printed.
 */
struct pl_config;
int pl_cli_store_config(const char *prog, const char *config, struct pl_config **cfg,
			const char **path);

/* The whole program (argv[0] is its name): dispatches to the subcommands. Returns the exit
 * status. */
int pl_main(int argc, char **argv);

#endif
