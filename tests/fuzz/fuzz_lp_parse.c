/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: arbitrary bytes into pl_lp_parse (and pl_lp_parse_fixed). It must never
 * crash or overrun, and what it accepts must be self-consistent: every string lies inside the
 * scratch buffer, there is at least one field, and the numbers' texts read back as the same
 * values through pl_lp_parse_fixed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "powerlogger/lineproto.h"

static void check_str(const char *s, const char *scratch, size_t cap)
{
	if (s == NULL || s < scratch || s >= scratch + cap ||
	    memchr(s, '\0', (size_t)(scratch + cap - s)) == NULL) {
		fprintf(stderr, "string outside scratch\n");
		abort();
	}
}

static void check_line(const struct pl_lp_line *l, const char *scratch, size_t cap)
{
	size_t i;

	check_str(l->measurement, scratch, cap);
	if (l->measurement[0] == '\0' || l->nfields == 0 || l->nfields > PL_LP_MAX_FIELDS ||
	    l->ntags > PL_LP_MAX_TAGS)
		abort();
	for (i = 0; i < l->ntags; i++) {
		check_str(l->tag_key[i], scratch, cap);
		check_str(l->tag_val[i], scratch, cap);
		if (l->tag_key[i][0] == '\0' || l->tag_val[i][0] == '\0')
			abort();
	}
	for (i = 0; i < l->nfields; i++) {
		const struct pl_lp_field *f = &l->field[i];
		int64_t v = 0;
		int err;

		check_str(f->key, scratch, cap);
		check_str(f->text, scratch, cap);
		if (f->key[0] == '\0')
			abort();
		switch (f->type) {
		case PL_LP_FLOAT:
			/* the text is in the float syntax; it may just not fit an int64 */
			err = pl_lp_parse_fixed(f->text, 0, &v);
			if (err != 0 && err != -PL_ERANGE) {
				fprintf(stderr, "float text \"%s\" rejected: %d\n", f->text, err);
				abort();
			}
			break;
		case PL_LP_INT:
			if (pl_lp_parse_fixed(f->text, 0, &v) != 0 || v != f->i) {
				fprintf(stderr, "int text \"%s\" != %lld\n", f->text, (long long)f->i);
				abort();
			}
			break;
		case PL_LP_UINT:
			err = pl_lp_parse_fixed(f->text, 0, &v);
			if (f->u <= (uint64_t)INT64_MAX ? err != 0 || (uint64_t)v != f->u
							: err != -PL_ERANGE)
				abort();
			break;
		case PL_LP_BOOL:
			if (f->i != 0 && f->i != 1)
				abort();
			break;
		case PL_LP_STRING:
			break;
		default:
			abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Exact-size heap copies, so that AddressSanitizer sees any overrun. */
	char *line = malloc(size + 1);
	size_t cap = size + 1;
	char *scratch = malloc(cap);
	struct pl_lp_line l;
	int err;

	if (line == NULL || scratch == NULL)
		abort();
	memcpy(line, data, size);
	line[size] = '\0';

	err = pl_lp_parse(line, size, scratch, cap, &l);
	if (err == 0)
		check_line(&l, scratch, cap);
	else if (err != -PL_EPARSE && err != -PL_ENOSPC)
		abort();
	/* A smaller scratch must fail cleanly or give the same answer. */
	if (cap > 1) {
		int err2 = pl_lp_parse(line, size, scratch, cap / 2, &l);

		if (err2 == 0)
			check_line(&l, scratch, cap / 2);
		else if (err2 != -PL_EPARSE && err2 != -PL_ENOSPC)
			abort();
		if (err == 0 && err2 != 0 && err2 != -PL_ENOSPC)
			abort();
	}
	/* The whole input (up to a NUL) as decimal text. */
	if (size > 0) {
		int64_t v;

		err = pl_lp_parse_fixed(line + 1, (unsigned)(data[0] % 19u), &v);
		if (err != 0 && err != -PL_EPARSE && err != -PL_ERANGE)
			abort();
	}
	free(scratch);
	free(line);
	return 0;
}
