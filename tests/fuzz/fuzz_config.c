/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the configuration parser (config.c, over libinih): any bytes as a configuration
 * file must give either a configuration or diagnostics, never a crash, a leak or undefined
 * behaviour. The bytes go through both entry points: pl_config_load() reads them as a file
 * (through a memfd, whose /proc path stands in for one: NUL bytes, over-long lines, CR/LF
 * and the 1 MiB bound are the file reader's), and pl_config_parse_string() parses them up to
 * the first NUL. Checked: success gives a configuration and no errors, failure gives none and
 * at least one error; every diagnostic reads "NAME:LINE: ..."; a configuration can be
 * printed and each of its live meters turned into its source's own configuration.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config/config.h"
#include "powerlogger/common.h"
#include "sources/live_config.h"

static FILE *devnull;

static void check_diags(const struct pl_config_diags *d, const char *name)
{
	size_t len = strlen(name), errors = 0;

	for (size_t i = 0; i < d->n; i++) {
		const char *t = d->v[i].text, *digits;

		if (strncmp(t, name, len) != 0 || t[len] != ':')
			abort(); /* every diagnostic starts with the file's name and its line */
		digits = t + len + 1;
		if (strspn(digits, "0123456789") == 0 || digits[strspn(digits, "0123456789")] != ':')
			abort();
		if (i > 0 && d->v[i].line < d->v[i - 1].line)
			abort(); /* sorted by line */
		errors += !d->v[i].warning;
	}
	if (errors != d->errors || d->n - errors != d->warnings)
		abort();
}

static void check_result(int rc, struct pl_config *cfg, const struct pl_config_diags *d,
			 const char *name)
{
	check_diags(d, name);
	if (rc == 0) {
		if (cfg == NULL || d->errors != 0)
			abort();
		if (pl_config_dump(cfg, devnull) != 0)
			abort();
		for (size_t i = 0; i < cfg->nmeters; i++) {
			const struct pl_config_meter *m = &cfg->meters[i];
			struct pl_iio_config iio = pl_live_iio_config(m);
			struct pl_gpio_config gpio = pl_live_gpio_config(m);
			struct pl_serial_config serial = pl_live_serial_config(m);

			if (m->name == NULL || iio.name != m->name || gpio.line != m->channel ||
			    serial.device != m->device)
				abort();
			if ((m->source == PL_CONFIG_SOURCE_IIO || m->source == PL_CONFIG_SOURCE_GPIO ||
			     m->source == PL_CONFIG_SOURCE_SERIAL) && m->device == NULL)
				abort(); /* a live meter without a device is an error */
		}
	} else {
		if (cfg != NULL)
			abort();
		if (rc == -PL_EINVAL && d->errors == 0)
			abort(); /* bad input always says why */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	struct pl_config_diags d = { 0 };
	struct pl_config *cfg = NULL;
	char *text;
	int rc;

	if (fd < 0) {
		fd = memfd_create("fuzz_config", 0);
		devnull = fopen("/dev/null", "w");
		if (fd < 0 || devnull == NULL)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	rc = pl_config_load(path, &cfg, &d);
	check_result(rc, cfg, &d, path);
	pl_config_free(cfg);
	pl_config_diags_free(&d);

	text = malloc(size + 1);
	if (text == NULL)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	cfg = NULL;
	rc = pl_config_parse_string("fuzz.ini", text, &cfg, &d);
	check_result(rc, cfg, &d, "fuzz.ini");
	pl_config_free(cfg);
	pl_config_diags_free(&d);
	free(text);
	return 0;
}
