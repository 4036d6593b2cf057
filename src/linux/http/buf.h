/* SPDX-License-Identifier: MIT */
/*
 * A growing text buffer for the HTTP answers (JSON, CSV, the Prometheus text format), with
 * the escapes each format needs. Out of memory is sticky (oom): the writer goes on without
 * checking every call, and the server answers 500 at the end. Capped at PL_BUF_MAX, so no
 * request can make an answer grow without bound.
 */
#ifndef PL_HTTP_BUF_H
#define PL_HTTP_BUF_H

#include <stddef.h>
#include <stdint.h>

#define PL_BUF_MAX (16u << 20)

struct pl_buf {
	char *p;
	size_t len, cap;
	int oom; /* an allocation failed or PL_BUF_MAX was reached: the text is incomplete */
};

void pl_buf_printf(struct pl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pl_buf_put(struct pl_buf *b, const char *s, size_t n);
void pl_buf_puts(struct pl_buf *b, const char *s);
/* s as a JSON string, quotes included (control characters as \uXXXX; valid UTF-8 as it is,
 * any other byte as U+FFFD: an error text from a server may be anything). */
void pl_buf_json_str(struct pl_buf *b, const char *s);
/* s as a Prometheus label value, without quotes: \\, \" and \n (text format 0.0.4). */
void pl_buf_label(struct pl_buf *b, const char *s);
/* s as a CSV field: quoted (with "" inside) when it has a comma, quote or line break. */
void pl_buf_csv(struct pl_buf *b, const char *s);
/* An exact decimal: v / 10^scale with scale digits, trailing zeros dropped ("1.5", "0"). */
void pl_buf_fixed(struct pl_buf *b, int64_t v, unsigned scale);
void pl_buf_free(struct pl_buf *b);

#endif
