/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the trace reader's CSV parser (src/linux/trace.c).
 *
 * The input is read as a CSV trace through fmemopen, twice: one sample per read and in
 * batches of 97. Beyond not crashing, the two must agree exactly (same samples, same error,
 * same message), times must never go backwards, and an error must come with a message that
 * names the input. The decimal parser is also fed the input's first line on its own, with and
 * without an "e0" appended, which takes it from the one-pass path to the general one: both
 * must give the same result.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sources/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct result {
	uint64_t n, hash;
	int rc;
	char msg[1100];
};

static void check(int ok)
{
	if (!ok)
		__builtin_trap();
}

static void read_all(const uint8_t *data, size_t size, size_t batch, struct result *r)
{
	static const struct pl_trace_config cfg = { .format = PL_TRACE_CSV };
	struct pl_sample s[97];
	struct pl_trace *t;
	FILE *f;
	int64_t last = INT64_MIN;

	memset(r, 0, sizeof(*r));
	r->hash = 14695981039346656037u;
	/* fmemopen wants a buffer it may write to in some modes; "r" never writes. */
	f = fmemopen((void *)data, size, "r");
	if (f == NULL) {
		r->rc = 1;
		return;
	}
	check(pl_trace_open_file(&t, f, "fuzz.csv", &cfg, NULL, 0) == 0);
	for (;;) {
		size_t n = 0;
		int rc = pl_trace_read(t, s, batch, &n);

		if (rc < 0) {
			check(n == 0);
			r->rc = rc;
			snprintf(r->msg, sizeof(r->msg), "%s", pl_trace_error(t));
			check(strncmp(r->msg, "fuzz.csv:", 9) == 0);
			/* Sticky. */
			check(pl_trace_read(t, s, batch, &n) == rc && n == 0);
			break;
		}
		check(rc == 0 && n <= batch);
		if (n == 0)
			break;
		for (size_t i = 0; i < n; i++) {
			check(s[i].t_us >= last);
			last = s[i].t_us;
			r->hash = (r->hash ^ (uint64_t)s[i].t_us) * 1099511628211u;
			r->hash = (r->hash ^ (uint32_t)s[i].v) * 1099511628211u;
		}
		r->n += n;
	}
	check(pl_trace_count(t) == r->n);
	/* An input that ended without error had samples. */
	check(r->rc != 0 || r->n > 0);
	pl_trace_free(t);
	fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct result a, b;
	const uint8_t *nl = memchr(data, '\n', size);
	size_t len = nl ? (size_t)(nl - data) : size;
	int64_t v;

	read_all(data, size, 1, &a);
	read_all(data, size, 97, &b);
	check(a.n == b.n && a.hash == b.hash && a.rc == b.rc && strcmp(a.msg, b.msg) == 0);

	/* The one-pass parser and the general one (which an exponent forces) must agree; NaN and
	 * Inf (every spelling has an 'n') have no exponent form. */
	if (len <= PL_TRACE_MAX_LINE && memchr(data, 'e', len) == NULL &&
	    memchr(data, 'E', len) == NULL && memchr(data, 'n', len) == NULL &&
	    memchr(data, 'N', len) == NULL) {
		static char e0[PL_TRACE_MAX_LINE + 2];

		memcpy(e0, data, len);
		memcpy(e0 + len, "e0", 2);
		for (unsigned scale = 0; scale <= 18; scale += 3) {
			int64_t w = 0;
			int rc = pl_trace_parse_decimal((const char *)data, len, scale, &v);
			int rc2 = pl_trace_parse_decimal(e0, len + 2, scale, &w);

			check(rc == 0 || rc == -PL_EPARSE || rc == -PL_ERANGE);
			check(rc == rc2 && (rc != 0 || v == w));
		}
	}
	return 0;
}
