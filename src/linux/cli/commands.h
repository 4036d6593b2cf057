/* SPDX-License-Identifier: MIT */
/*
 * The subcommands of the `powerlogger` program. Each takes the arguments after its name
 * (argv[0] is the subcommand's name) and returns the process exit status: 0 success,
 * 1 runtime failure, 2 usage error or bad input.
 */
#ifndef PL_COMMANDS_H
#define PL_COMMANDS_H

int pl_cmd_detect(int argc, char **argv);
int pl_cmd_simulate(int argc, char **argv);
int pl_cmd_check_config(int argc, char **argv);
int pl_cmd_run(int argc, char **argv);
int pl_cmd_status(int argc, char **argv);
int pl_cmd_backup(int argc, char **argv);
int pl_cmd_set_register(int argc, char **argv);

/* The whole program (argv[0] is its name): dispatches to the subcommands. Returns the exit
 * status. */
int pl_main(int argc, char **argv);

#endif
