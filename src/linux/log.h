/* SPDX-License-Identifier: MIT */
/*
 * The daemon's log: one line per message on stderr (the journal under systemd), as
 * "PROG: LEVEL: message", e.g. "powerlogger run: error: store: disk I/O error". Every part
 * of the daemon logs through here; a test may point it at a file of its own.
 *
 * pl_log() may be called from any thread (the sinks' delivery threads do): each line is
 * written whole. The setters are not thread-safe: call them before the threads start.
 */
#ifndef PL_LINUX_LOG_H
#define PL_LINUX_LOG_H

#include <stdio.h>

enum pl_log_level {
	PL_LOG_ERROR,   /* "error" */
	PL_LOG_WARNING, /* "warning" */
	PL_LOG_INFO,    /* "info" */
};

/* The program name the lines start with (default "powerlogger"); the string must outlive
 * its use. */
void pl_log_set_prog(const char *prog);
const char *pl_log_prog(void);

/* Where the lines go (default, and NULL: stderr). */
void pl_log_set_stream(FILE *f);
FILE *pl_log_stream(void);

void pl_log(enum pl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
