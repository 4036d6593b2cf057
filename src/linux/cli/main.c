/* SPDX-License-Identifier: MIT */
/*
 * The `powerlogger` program. Everything is in pl_main() (cli.c); the test variant of the
 * program, powerlogger-fakes (tests/fakes/main_fakes.c), calls it too.
 */
#include "cli/commands.h"

int main(int argc, char **argv)
{
	return pl_main(argc, argv);
}
