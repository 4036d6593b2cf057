/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the IIO source's scan-type parser (pl_iio_parse_type(), src_iio.c): the text of
 * scan_elements/<channel>_type comes from a driver, or a fake, and must give a clear refusal
 * or a type, never a crash or undefined behaviour. The input's first line is the type; the
 * bytes after it are a scan to decode and a list of scan elements to lay out with it.
 *
 * Checked for a type that parses: its fields are in range (storage 8/16/32/64 bits, value and
 * shift inside it, a repeat count); written back in the kernel's form it parses to the same
 * type; a value decoded with it fits its bits and sign; and a scan laid out with it
 * (pl_iio_layout()) is in the kernel's order (channels by index, the timestamp last) with its
 * elements one after the other, each aligned to its size when that is a power of two, inside
 * the scan's size.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "powerlogger/common.h"
#include "sources/src_iio.h"

#define MAX_ELEMS 8

static void check(int ok)
{
	if (!ok)
		__builtin_trap();
}

static void check_decode(const struct pl_iio_type *t, const uint8_t *p, size_t n)
{
	unsigned char scan[8];
	int64_t v;

	if (n < t->storagebits / 8)
		return;
	memcpy(scan, p, t->storagebits / 8);
	v = pl_iio_decode(t, scan);
	if (t->realbits == 64)
		return;
	if (t->is_signed) {
		int64_t lim = INT64_C(1) << (t->realbits - 1);

		check(v >= -lim && v < lim);
	} else {
		check(v >= 0 && (uint64_t)v < UINT64_C(1) << t->realbits);
	}
}

static void check_layout(const struct pl_iio_type *t, const uint8_t *p, size_t n)
{
	static const struct pl_iio_type ts = { .realbits = 64, .storagebits = 64, .repeat = 1,
					       .is_signed = 1 };
	struct pl_iio_elem e[MAX_ELEMS];
	size_t k = n < MAX_ELEMS ? n : MAX_ELEMS, size, end = 0;
	int have_ts = 0;

	for (size_t i = 0; i < k; i++) {
		/* one timestamp at most, as the kernel has */
		int is_ts = (p[i] & 0x80) && !have_ts;

		have_ts |= is_ts;
		e[i] = (struct pl_iio_elem){ .index = p[i] & 0x7f, .is_timestamp = is_ts,
					     .type = is_ts ? ts : *t };
	}
	size = pl_iio_layout(e, k);
	for (size_t i = 0; i < k; i++) {
		size_t len = e[i].type.storagebits / 8 * e[i].type.repeat;

		if (i > 0) {
			check(e[i - 1].is_timestamp <= e[i].is_timestamp);
			check(e[i].is_timestamp || e[i - 1].index <= e[i].index);
		}
		check(e[i].offset >= end);
		if ((len & (len - 1)) == 0)
			check(e[i].offset % len == 0);
		end = e[i].offset + len;
	}
	check(size >= end);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t len = nl ? (size_t)(nl - data) : size;
	const uint8_t *rest = nl ? nl + 1 : data + size;
	size_t nrest = size - (size_t)(rest - data);
	struct pl_iio_type t, again;
	char text[256], canon[96];
	int rc;

	if (len >= sizeof(text))
		len = sizeof(text) - 1;
	memcpy(text, data, len);
	text[len] = '\0';
	rc = pl_iio_parse_type(text, &t);
	check(rc == 0 || rc == -PL_EPARSE);
	if (rc != 0)
		return 0;
	check(t.storagebits == 8 || t.storagebits == 16 || t.storagebits == 32 ||
	      t.storagebits == 64);
	check(t.realbits >= 1 && t.realbits + t.shift <= t.storagebits);
	check(t.repeat >= 1 && t.repeat <= 1024);
	check(t.be == 0 || t.be == 1);
	/* the kernel's own form of it parses to the same type */
	if (t.repeat > 1)
		snprintf(canon, sizeof(canon), "%s:%c%u/%uX%u>>%u", t.be ? "be" : "le",
			 t.is_signed ? 's' : 'u', t.realbits, t.storagebits, t.repeat, t.shift);
	else
		snprintf(canon, sizeof(canon), "%s:%c%u/%u>>%u", t.be ? "be" : "le",
			 t.is_signed ? 's' : 'u', t.realbits, t.storagebits, t.shift);
	check(pl_iio_parse_type(canon, &again) == 0);
	check(memcmp(&t, &again, sizeof(t)) == 0);
	check_decode(&t, rest, nrest);
	check_layout(&t, rest, nrest);
	return 0;
}
