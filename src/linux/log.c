/* SPDX-License-Identifier: MIT */
/*
 * The daemon's log (see log.h).
 */
#include <stdarg.h>

#include "log.h"

static const char *prog = "powerlogger";
static FILE *stream;

void pl_log_set_prog(const char *p)
{
	prog = p ? p : "powerlogger";
}

const char *pl_log_prog(void)
{
	return prog;
}

void pl_log_set_stream(FILE *f)
{
	stream = f;
}

FILE *pl_log_stream(void)
{
	return stream ? stream : stderr;
}

void pl_log(enum pl_log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info" };
	FILE *f = pl_log_stream();
	va_list ap;

	/* one line under the stream's lock: the lines of several threads do not interleave */
	flockfile(f);
	fprintf(f, "%s: %s: ", prog, names[level]);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	funlockfile(f);
}
