/* SPDX-License-Identifier: MIT */
/*
 * powerlogger-fakes: the `powerlogger` program for the end-to-end tests (tests/cli_*.sh,
 * bench/live.sh), with the fake GPIO and serial kernels linked in. When PL_FAKE_GPIO or
 * PL_FAKE_SERIAL names a FIFO, that source's fake backend is installed (fake_gpio.h,
 * fake_serial.h); then it is the normal program. The shipped `powerlogger` has no fakes.
 */
#include "cli/commands.h"
#include "fake_gpio.h"
#include "fake_serial.h"

int main(int argc, char **argv)
{
	pl_gpio_fake_from_env();
	pl_serial_fake_from_env();
	return pl_main(argc, argv);
}
