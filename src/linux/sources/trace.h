/* SPDX-License-Identifier: MIT */
/*
 * Trace reader: recorded sensor samples from a file, a pipe or standard input, streamed in
 * batches in constant memory, for the detector.
 *
 * Two kinds of input:
 *
 *  - CSV text, one sample per line: `time_s,value`. Time is in seconds (any time base: from the
 *    start of a recording, or since the Unix epoch), as a decimal number; it is converted to
 *    microseconds exactly from its digits (no floating point), rounding half away from zero
 *    past the sixth decimal. Value is the ADC reading, an integer or a decimal rounded half
 *    away from zero to int32_t. An exponent ("1.5e3") is allowed in both. The first line that
 *    is not blank or a comment may be a header (its first field is not a number). Lines
 *    starting with '#' and blank lines are skipped anywhere; CRLF line ends and spaces or tabs
 *    around fields are accepted. Times must not go backwards (equal times are fine).
 *
 *  - Raw 16-bit little-endian mono samples (a sound card, `arecord -t raw -f S16_LE`, a
 *    dumped ADC buffer) at a fixed rate. Sample i is at time floor(i * 1e6 / rate) us, computed
 *    from the index each time, so long recordings do not drift. s16le values are returned
 *    as they are by pl_trace_read().
 *
 * Errors are sticky: after a failed read every later read fails the same way, and
 * pl_trace_error() gives a message of the form "FILE:LINE: what is wrong" (raw input and
 * whole-file errors: "FILE: what is wrong"), ready to print. Input that ends without a single
 * sample is an error ("no samples").
 *
 * A reader is not thread-safe. Linux-side code: it allocates and uses stdio.
 */
#ifndef PL_TRACE_H
#define PL_TRACE_H

#include <stdio.h>

#include "powerlogger/detector.h"

enum pl_trace_format {
	PL_TRACE_CSV = 0,
	PL_TRACE_S16LE, /* signed 16-bit little-endian */
	PL_TRACE_U16LE, /* unsigned 16-bit little-endian */
};

#define PL_TRACE_MAX_LINE 4096     /* longest CSV line accepted, without its line end */
/*
 * CSV times must lie strictly within +-2^62 us (about +-146,000 years), as the meter requires
 * (PL_METER_T_LIMIT), so that the sum of two times, or a time plus an interval, cannot overflow.
 */
#define PL_TRACE_TIME_LIMIT (INT64_C(1) << 62)
#define PL_TRACE_MAX_RATE 10000000 /* highest raw sample rate, Hz */

struct pl_trace_config {
	enum pl_trace_format format;
	uint32_t rate_hz; /* raw formats: sample rate, 1..PL_TRACE_MAX_RATE; ignored for CSV */
};

struct pl_trace;

/*
 * Opens the file at path, or standard input for "-" (named "stdin" in messages). On success
 * *out receives a reader that must be freed with pl_trace_free(), which closes the file (but
 * not standard input). Returns 0, or on failure a negative PL_E* code with *out NULL and a
 * message "PATH: what is wrong" in err (errcap bytes, may be NULL): -PL_EINVAL for a bad
 * configuration (rate out of range), -PL_ENOENT when the file does not exist, -PL_EIO when it
 * cannot be opened, -PL_EPARSE for raw input of an odd number of bytes (regular files are
 * checked up front), -PL_ENOMEM.
 */
int pl_trace_open(struct pl_trace **out, const char *path, const struct pl_trace_config *cfg,
		  char *err, size_t errcap);

/*
 * Same over an open stream, which stays the caller's: pl_trace_free() does not close it, and
 * it must outlive the reader. name is used in messages (copied).
 */
int pl_trace_open_file(struct pl_trace **out, FILE *f, const char *name,
		       const struct pl_trace_config *cfg, char *err, size_t errcap);

/*
 * Same over a file descriptor, which stays the caller's: the reader reads through a duplicate
 * of it and closes only that.
 */
int pl_trace_open_fd(struct pl_trace **out, int fd, const char *name,
		     const struct pl_trace_config *cfg, char *err, size_t errcap);

/* Frees a reader (NULL is fine) and closes what pl_trace_open opened. */
void pl_trace_free(struct pl_trace *t);

/*
 * Reads up to cap (>= 1) samples into s; *n receives how many. Returns 0 with *n > 0, 0 with
 * *n == 0 at the end of the input, or a negative PL_E* code with *n == 0: -PL_EPARSE
 * (malformed line, no samples, odd raw byte count), -PL_ERANGE (number too large, NaN or
 * Inf), -PL_EORDER (time went backwards), -PL_EIO (read error). See pl_trace_error().
 * Works for every format.
 */
int pl_trace_read(struct pl_trace *t, struct pl_sample *s, size_t cap, size_t *n);

/*
 * The fast path for raw input, feeding pl_detector_feed_u16(): reads up to cap (>= 1) samples
 * as uint16_t into v, *n receives how many and *t0_us the time of the first. s16le samples are
 * offset by 32768 (s + 32768, i.e. the sign bit flipped) to make them unsigned: swings and
 * noise are unchanged, only the baseline moves. To keep the detector's times exact, a block
 * starts at an index whose time is a whole number of microseconds (a multiple of
 * rate / gcd(rate, 1e6) samples) whenever such a block fits in cap; then t0_us + i * 1e6 / rate
 * is exactly the time of sample i. Same return codes as pl_trace_read(); -PL_EINVAL for CSV
 * input. Reads of both kinds may be mixed.
 */
int pl_trace_read_u16(struct pl_trace *t, uint16_t *v, size_t cap, size_t *n, int64_t *t0_us);

/* The message of the last error ("" if none). Lifetime: until the reader is freed. */
const char *pl_trace_error(const struct pl_trace *t);

/* The name used in messages ("stdin" for standard input). */
const char *pl_trace_name(const struct pl_trace *t);

/* Samples returned so far. */
uint64_t pl_trace_count(const struct pl_trace *t);

/* The raw sample rate (0 for CSV). */
uint32_t pl_trace_rate(const struct pl_trace *t);

/* Time of raw sample index i at rate_hz: floor(i * 1e6 / rate_hz), without overflow. */
int64_t pl_trace_index_us(uint64_t i, uint32_t rate_hz);

/*
 * Parses a format name ("csv", "s16le", "u16le") into *fmt. Returns 0 or -PL_EINVAL.
 */
int pl_trace_format_parse(const char *name, enum pl_trace_format *fmt);

/*
 * Converts decimal text (len bytes, no surrounding spaces: "12", "-0.5", "1420675206.123456",
 * "1.5e3") to round(value * 10^scale) as an int64_t, exactly, rounding half away from zero.
 * Returns 0, -PL_EPARSE if it is not a decimal number, -PL_ERANGE for NaN, Inf or a result
 * beyond int64_t. scale <= 18.
 */
int pl_trace_parse_decimal(const char *text, size_t len, unsigned scale, int64_t *out);

/*
 * Formats t_us as seconds with six decimals ("1420675206.123456", "-0.500000") into buf.
 * Exact for every int64_t. Returns the length, or -PL_ENOSPC if it does not fit (22 bytes
 * always do).
 */
int pl_trace_format_time(char *buf, size_t cap, int64_t t_us);

#endif
