/* SPDX-License-Identifier: MIT */
/*
 * A strict parser for InfluxDB line protocol that accepts what InfluxDB 1.x accepts (minus a
 * few ambiguous corners, see lineproto.h), and exact decimal-to-fixed conversion. The product
 * never parses line protocol: tests and fuzzers use this to hold the encoder (lineproto.c) to
 * what a server reads. Freestanding C11, integer arithmetic only.
 */
#include "powerlogger/lineproto.h"

#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include "lp_chars.h"

/* Longest series key (measurement, tags, 4-byte separator, field key) InfluxDB accepts. */
#define INFLUX_MAX_KEY 65535u
#define MAX_DECIMALS 18u

/* ---------------------------------------------------------------- decimal numbers */

/* Exponents beyond this are all the same to us (and keep the arithmetic far from overflow). */
#define EXP_LIMIT INT64_C(1000000000)

/* A decimal number as text: [-] int-digits [. frac-digits] [e|E [+|-] exp-digits]. */
struct decimal {
	bool neg;
	size_t int_at, nint, frac_at, nfrac;
	int64_t exp;
	/* Filled in by decimal_digits(): the significant digits (first to last non-zero one of
	 * int and frac digits together) and the power of ten of the last one. */
	bool zero;
	size_t first, nsig;
	int64_t exp10;
};

static char decimal_digit(const char *s, const struct decimal *x, size_t k)
{
	return k < x->nint ? s[x->int_at + k] : s[x->frac_at + (k - x->nint)];
}

static void decimal_digits(const char *s, struct decimal *x)
{
	size_t total = x->nint + x->nfrac, last;

	x->first = 0;
	while (x->first < total && decimal_digit(s, x, x->first) == '0')
		x->first++;
	x->zero = x->first == total;
	if (x->zero)
		return;
	last = total - 1;
	while (decimal_digit(s, x, last) == '0')
		last--;
	x->nsig = last - x->first + 1;
	/* value = sig * 10^(exp - nfrac + trailing zeros); lengths of real objects fit int64. */
	x->exp10 = x->exp - (int64_t)x->nfrac + (int64_t)(total - 1 - last);
}

/* Scans s[0..n) as a whole decimal number. */
static bool decimal_scan(const char *s, size_t n, struct decimal *x)
{
	size_t i = 0;

	x->neg = false;
	x->exp = 0;
	if (i < n && s[i] == '-') {
		x->neg = true;
		i++;
	}
	x->int_at = i;
	while (i < n && is_digit(s[i]))
		i++;
	x->nint = i - x->int_at;
	x->frac_at = i;
	x->nfrac = 0;
	if (i < n && s[i] == '.') {
		x->frac_at = ++i;
		while (i < n && is_digit(s[i]))
			i++;
		x->nfrac = i - x->frac_at;
	}
	if (x->nint + x->nfrac == 0)
		return false;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		bool eneg = false;
		size_t e0;
		int64_t e = 0;

		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			eneg = s[i++] == '-';
		e0 = i;
		for (; i < n && is_digit(s[i]); i++) {
			if (e < EXP_LIMIT)
				e = e * 10 + (s[i] - '0');
		}
		if (i == e0)
			return false;
		x->exp = eneg ? -e : e;
	}
	if (i != n)
		return false;
	decimal_digits(s, x);
	return true;
}

/* The halfway point between DBL_MAX and 2^1024: 2^1024 - 2^970. A decimal number at or above it
 * rounds to infinity as a float64 (ties go to even, which is 2^1024), and InfluxDB refuses it. */
static const char float_overflow_digits[] =
	"17976931348623158079372897140530341507993413271003782693617377898044496829276475094664"
	"90179775872070963302864166928879109465555478519404026306574886715058206819089020007083"
	"83676273854845817711531764475730270069855571366959622842914819860834936475292719074168"
	"444365510704342711559699508093042880177904174497792";

static bool float_overflows(const char *s, const struct decimal *x)
{
	const size_t nmid = sizeof float_overflow_digits - 1; /* 309: the midpoint < 10^309 */
	int64_t point;
	size_t k;

	if (x->zero)
		return false;
	/* value = 0.d1d2... * 10^point */
	point = x->exp10 + (int64_t)x->nsig;
	if (point != (int64_t)nmid)
		return point > (int64_t)nmid;
	for (k = 0; k < nmid; k++) {
		char d = k < x->nsig ? decimal_digit(s, x, x->first + k) : '0';

		if (d != float_overflow_digits[k])
			return d > float_overflow_digits[k];
	}
	return true; /* equal over 309 digits: at or above the midpoint */
}

/* Exact sig * 10^(exp10 + decimals) as int64. */
static int decimal_to_fixed(const char *s, const struct decimal *x, unsigned decimals,
			    int64_t *v)
{
	uint64_t limit = x->neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX, m = 0;
	int64_t scale;
	size_t k;

	if (x->zero) {
		*v = 0;
		return 0;
	}
	scale = x->exp10 + (int64_t)decimals;
	if (scale < 0)
		return -PL_ERANGE; /* the last significant digit is finer than 10^-decimals */
	if (x->nsig > 19)
		return -PL_ERANGE; /* >= 10^19 > 2^63 */
	for (k = 0; k < x->nsig; k++)
		m = m * 10u + (uint64_t)(decimal_digit(s, x, x->first + k) - '0');
	for (; scale > 0; scale--) {
		if (m > limit / 10u)
			return -PL_ERANGE;
		m *= 10u;
	}
	if (m > limit)
		return -PL_ERANGE;
	if (!x->neg)
		*v = (int64_t)m;
	else if (m == (uint64_t)INT64_MAX + 1u)
		*v = INT64_MIN;
	else
		*v = -(int64_t)m;
	return 0;
}

int pl_lp_parse_fixed(const char *text, unsigned decimals, int64_t *v)
{
	struct decimal x;
	size_t n = 0;

	if (text == NULL || v == NULL || decimals > MAX_DECIMALS)
		return -PL_EINVAL;
	while (text[n] != '\0')
		n++;
	if (!decimal_scan(text, n, &x))
		return -PL_EPARSE;
	return decimal_to_fixed(text, &x, decimals, v);
}

/* ---------------------------------------------------------------- parser */

struct scratch {
	char *p;
	size_t cap, n;
};

/* Copies s[0..n) unescaped as kind into the scratch buffer; *str gets the copy. */
static int copy_unescaped(struct scratch *sc, const char *s, size_t n, enum pl_lp_kind kind,
			  const char **str)
{
	size_t i;

	*str = sc->p + sc->n;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (kind == PL_LP_STRING_FIELD) {
			if (c == '\\' && i + 1 < n && (s[i + 1] == '"' || s[i + 1] == '\\'))
				c = s[++i];
		} else if (c == '\\' && i + 1 < n && is_special(s[i + 1], kind)) {
			c = s[++i];
		}
		if (sc->n >= sc->cap)
			return -PL_ENOSPC;
		sc->p[sc->n++] = c;
	}
	if (sc->n >= sc->cap)
		return -PL_ENOSPC;
	sc->p[sc->n++] = '\0';
	return 0;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static size_t skip_blanks(const char *s, size_t n, size_t i)
{
	while (i < n && is_blank(s[i]))
		i++;
	return i;
}

/*
 * Scans a measurement, key or tag value from s[*pos]: it ends at an unescaped character in
 * `ends` (left at *pos); an unescaped character in `bad`, the end of the line, a NUL or a
 * '\n', or an empty element fail. A character is escaped when a backslash precedes it, as in
 * InfluxDB's scanners.
 */
static int scan_name(const char *s, size_t n, size_t *pos, const char *ends, const char *bad,
		     enum pl_lp_kind kind, struct scratch *sc, const char **str)
{
	size_t start = *pos, i;
	const char *e;

	for (i = start; i < n; i++) {
		char c = s[i];
		bool escaped = i > start && s[i - 1] == '\\';

		if (c == '\0' || c == '\n')
			return -PL_EPARSE;
		if (escaped)
			continue;
		for (e = ends; *e != '\0'; e++) {
			if (c == *e)
				goto found;
		}
		for (e = bad; *e != '\0'; e++) {
			if (c == *e)
				return -PL_EPARSE;
		}
	}
	return -PL_EPARSE; /* the line ended inside the element */
found:
	if (i == start)
		return -PL_EPARSE;
	*pos = i;
	return copy_unescaped(sc, s + start, i - start, kind, str);
}

/* InfluxDB's field scanner takes "\\" as one escape pair, its extractor looks only at the
 * character before: an even run of backslashes before a special character is read two ways. */
static bool ambiguous_key(const char *s, size_t n)
{
	size_t i, run = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '\\') {
			run++;
			continue;
		}
		if (run >= 2 && run % 2 == 0 && is_special(s[i], PL_LP_KEY))
			return true;
		run = 0;
	}
	return run >= 2 && run % 2 == 0; /* and the '=' after the key */
}

static bool token_is(const char *s, size_t n, const char *word)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (word[i] == '\0' || word[i] != s[i])
			return false;
	}
	return word[n] == '\0';
}

static bool str_eq(const char *a, const char *b)
{
	while (*a != '\0' && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

/* Parses -?digits (int) or digits (uint) exactly; false on syntax error or overflow. */
static bool parse_integer(const char *s, size_t n, bool is_unsigned, int64_t *i, uint64_t *u)
{
	bool neg = n > 0 && s[0] == '-';
	uint64_t m = 0, limit;
	size_t k = neg ? 1 : 0;

	if (is_unsigned && neg)
		return false;
	limit = is_unsigned ? UINT64_MAX : neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
	if (k == n)
		return false;
	for (; k < n; k++) {
		unsigned d;

		if (!is_digit(s[k]))
			return false;
		d = (unsigned)(s[k] - '0');
		if (m > (limit - d) / 10u)
			return false;
		m = m * 10u + d;
	}
	if (is_unsigned) {
		*u = m;
	} else if (neg) {
		*i = m == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)m;
	} else {
		*i = (int64_t)m;
	}
	return true;
}

/* Parses a field value at s[*pos]; leaves *pos after it. */
static int parse_value(const char *s, size_t n, size_t *pos, struct scratch *sc,
		       struct pl_lp_field *f)
{
	static const char *const words[] = { "t", "T", "true", "True", "TRUE",
					     "f", "F", "false", "False", "FALSE" };
	size_t i = *pos, end, k;
	char c = i < n ? s[i] : '\0';

	f->i = 0;
	f->u = 0;
	if (i >= n || c == ',' || c == ' ')
		return -PL_EPARSE;
	if (c == '"') {
		for (end = i + 1; end < n && s[end] != '"'; end++) {
			/* InfluxDB skips any backslash pair while looking for the closing quote. */
			if (s[end] == '\\' && end + 1 < n)
				end++;
			if (s[end] == '\0')
				return -PL_EPARSE;
		}
		if (end >= n)
			return -PL_EPARSE; /* unterminated */
		if (end + 1 < n && s[end + 1] != ',' && s[end + 1] != ' ')
			return -PL_EPARSE;
		f->type = PL_LP_STRING;
		*pos = end + 1;
		return copy_unescaped(sc, s + i + 1, end - i - 1, PL_LP_STRING_FIELD, &f->text);
	}
	for (end = i; end < n && s[end] != ',' && s[end] != ' '; end++) {
	}
	*pos = end;
	if (is_digit(c) || c == '.' || c == '-') {
		size_t body = end - i;
		struct decimal x;

		if (s[end - 1] == 'i' || s[end - 1] == 'u') {
			bool is_unsigned = s[end - 1] == 'u';

			body--;
			if (!parse_integer(s + i, body, is_unsigned, &f->i, &f->u))
				return -PL_EPARSE;
			f->type = is_unsigned ? PL_LP_UINT : PL_LP_INT;
		} else {
			if (!decimal_scan(s + i, body, &x) || float_overflows(s + i, &x))
				return -PL_EPARSE;
			f->type = PL_LP_FLOAT;
		}
		return copy_unescaped(sc, s + i, body, PL_LP_TAG_VALUE, &f->text);
	}
	for (k = 0; k < sizeof words / sizeof words[0]; k++) {
		if (token_is(s + i, end - i, words[k])) {
			f->type = PL_LP_BOOL;
			f->i = k >= 5 ? 0 : 1;
			return copy_unescaped(sc, s + i, end - i, PL_LP_TAG_VALUE, &f->text);
		}
	}
	return -PL_EPARSE;
}

int pl_lp_parse(const char *line, size_t len, char *scratch, size_t scratch_cap,
		struct pl_lp_line *out)
{
	struct scratch sc = { scratch, scratch_cap, 0 };
	size_t pos, key_start, key_len, k;
	int err;

	if (line == NULL || scratch == NULL || out == NULL)
		return -PL_EINVAL;
	*out = (struct pl_lp_line){ .measurement = NULL };

	pos = skip_blanks(line, len, 0);
	if (pos >= len || line[pos] == '#')
		return -PL_EPARSE; /* blank or comment: no point */
	key_start = pos;
	err = scan_name(line, len, &pos, ", ", "", PL_LP_MEASUREMENT_NAME, &sc,
			&out->measurement);
	if (err != 0)
		return err;

	while (line[pos] == ',') {
		const char *tkey, *tval;

		pos++;
		err = scan_name(line, len, &pos, "=", " ,", PL_LP_KEY, &sc, &tkey);
		if (err != 0)
			return err;
		pos++;
		err = scan_name(line, len, &pos, ", ", "=", PL_LP_TAG_VALUE, &sc, &tval);
		if (err != 0)
			return err;
		for (k = 0; k < out->ntags; k++) {
			if (str_eq(out->tag_key[k], tkey))
				return -PL_EPARSE; /* duplicate tag */
		}
		if (out->ntags >= PL_LP_MAX_TAGS)
			return -PL_ENOSPC;
		out->tag_key[out->ntags] = tkey;
		out->tag_val[out->ntags] = tval;
		out->ntags++;
	}
	key_len = pos - key_start;
	if (key_len > INFLUX_MAX_KEY)
		return -PL_EPARSE;

	pos = skip_blanks(line, len, pos);
	for (;;) {
		struct pl_lp_field f;
		size_t fkey_start = pos;

		err = scan_name(line, len, &pos, "=", " ,", PL_LP_KEY, &sc, &f.key);
		if (err != 0)
			return err;
		if (ambiguous_key(line + fkey_start, pos - fkey_start) ||
		    key_len + 4u + (pos - fkey_start) > INFLUX_MAX_KEY)
			return -PL_EPARSE;
		pos++;
		err = parse_value(line, len, &pos, &sc, &f);
		if (err != 0)
			return err;
		if (out->nfields >= PL_LP_MAX_FIELDS)
			return -PL_ENOSPC;
		out->field[out->nfields++] = f;
		if (pos >= len || line[pos] == ' ')
			break;
		pos++; /* the ',' before the next field */
	}

	pos = skip_blanks(line, len, pos);
	if (pos < len) {
		size_t t0 = pos;

		while (pos < len && line[pos] != ' ')
			pos++;
		if (!parse_integer(line + t0, pos - t0, false, &out->time, NULL))
			return -PL_EPARSE;
		out->has_time = 1;
		for (; pos < len; pos++) {
			if (line[pos] != ' ')
				return -PL_EPARSE; /* junk after the timestamp */
		}
	}
	return 0;
}
