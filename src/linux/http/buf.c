/* SPDX-License-Identifier: MIT */
/*
 * The HTTP answers' text buffer (buf.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/buf.h"

static int reserve(struct pl_buf *b, size_t more)
{
	size_t want, cap;
	char *p;

	if (b->oom)
		return -1;
	want = b->len + more + 1;
	if (want <= b->cap)
		return 0;
	if (want > PL_BUF_MAX) {
		b->oom = 1;
		return -1;
	}
	cap = b->cap ? b->cap : 4096;
	while (cap < want)
		cap *= 2;
	if (cap > PL_BUF_MAX)
		cap = PL_BUF_MAX;
	p = realloc(b->p, cap);
	if (p == NULL) {
		b->oom = 1;
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

void pl_buf_put(struct pl_buf *b, const char *s, size_t n)
{
	if (reserve(b, n) != 0)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void pl_buf_puts(struct pl_buf *b, const char *s)
{
	pl_buf_put(b, s, strlen(s));
}

void pl_buf_printf(struct pl_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (reserve(b, 64) != 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = 1;
		return;
	}
	if ((size_t)n >= b->cap - b->len) {
		if (reserve(b, (size_t)n) != 0)
			return;
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

/* The length of the valid UTF-8 sequence at s (1..4), 0 if it is not one. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1fu;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0fu;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07u;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void pl_buf_json_str(struct pl_buf *b, const char *s)
{
	pl_buf_put(b, "\"", 1);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		size_t n;

		if (c >= 0x80) { /* a server's error text may be any bytes: the answer stays UTF-8 */
			n = utf8_len((const unsigned char *)s);
			if (n == 0) {
				pl_buf_puts(b, "\\ufffd");
			} else {
				pl_buf_put(b, s, n);
				s += n - 1;
			}
		} else if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };

			pl_buf_put(b, e, 2);
		} else if (c < 0x20 || c == 0x7f) {
			pl_buf_printf(b, "\\u%04x", c);
		} else {
			pl_buf_put(b, s, 1);
		}
	}
	pl_buf_put(b, "\"", 1);
}

void pl_buf_label(struct pl_buf *b, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '\\')
			pl_buf_put(b, "\\\\", 2);
		else if (*s == '"')
			pl_buf_put(b, "\\\"", 2);
		else if (*s == '\n')
			pl_buf_put(b, "\\n", 2);
		else
			pl_buf_put(b, s, 1);
	}
}

void pl_buf_csv(struct pl_buf *b, const char *s)
{
	if (strpbrk(s, ",\"\r\n") == NULL) {
		pl_buf_puts(b, s);
		return;
	}
	pl_buf_put(b, "\"", 1);
	for (; *s; s++) {
		if (*s == '"')
			pl_buf_put(b, "\"", 1);
		pl_buf_put(b, s, 1);
	}
	pl_buf_put(b, "\"", 1);
}

void pl_buf_fixed(struct pl_buf *b, int64_t v, unsigned scale)
{
	char frac[24];
	uint64_t m = 1, a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	int n;

	for (unsigned i = 0; i < scale; i++)
		m *= 10;
	n = snprintf(frac, sizeof(frac), "%0*llu", (int)scale, (unsigned long long)(a % m));
	while (n > 0 && frac[n - 1] == '0')
		frac[--n] = '\0';
	pl_buf_printf(b, "%s%llu%s%s", v < 0 ? "-" : "", (unsigned long long)(a / m),
		      n > 0 ? "." : "", frac);
}

void pl_buf_free(struct pl_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}
