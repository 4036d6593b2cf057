/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the simulator's load-file parser (REFIT profiles `unix_s,watts`, volkszaehler pulse
 * logs `epoch_ms`), the one parser of `powerlogger simulate`: any bytes must give either a
 * load or a FILE:LINE message, never a crash, a leak or undefined behaviour. A parsed load
 * must have sorted, finite times. The bytes reach pl_sim_load_read() through a memfd, whose
 * /proc path stands in for a file.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <math.h>

#include "sources/sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	struct pl_sim_load load;
	char err[256];

	if (fd < 0) {
		fd = memfd_create("fuzz_load", 0);
		if (fd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	err[0] = '\0';
	int rc = pl_sim_load_read(path, &load, err, sizeof(err));
	if (rc == 0) {
		for (size_t i = 0; i < load.n; i++) {
			if (!isfinite(load.t[i]))
				abort();
			if (i > 0 && load.t[i] < load.t[i - 1])
				abort();
		}
		pl_sim_load_free(&load);
	} else if (err[0] == '\0') {
		abort(); /* every failure says why */
	}
	return 0;
}
