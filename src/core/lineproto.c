/* SPDX-License-Identifier: MIT */
/*
 * InfluxDB line protocol: the encoder for interval and pulse records, exact decimal printing of
 * integer units. The strict parser that tests and fuzzers hold the encoder to is in lpparse.c.
 *
 * An encoder learns the exact length of a line before it writes a byte of it to the caller's
 * buffer: the names are checked and measured first (so the validity checks, such as empty
 * names, the series key's length or out-of-range times, come before any output) and the field
 * set is printed into a local buffer. Only a line that fits is then written out; one that does
 * not leaves the caller's buffer exactly as it was.
 *
 * The daemon encodes every record it sends, so the common case is kept cheap: a name with
 * nothing to escape (most are plain ASCII) is scanned once and copied as it is, literal texts
 * are copied whole, and the field set is printed from its end backwards, which is the order in
 * which numbers come out of division by ten and spares measuring them first. Names that do need
 * escaping go through the general escaper, character by character.
 *
 * Freestanding C11: integer arithmetic only, and no library call but memcpy(), which GCC and
 * clang require of a freestanding target anyway (and mostly expand inline, see copy_bytes).
 */
#include "powerlogger/lineproto.h"

#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include "lp_chars.h"

/* InfluxDB keeps times as int64 nanoseconds; it reserves the two lowest values as sentinels
 * and the highest as an exclusive bound, and refuses points there. */
#define INFLUX_MIN_NS (INT64_MIN + 2)
#define INFLUX_MAX_NS (INT64_MAX - 1)
/* Longest series key (measurement, tags, 4-byte separator, field key) InfluxDB accepts. */
#define INFLUX_MAX_KEY 65535u
#define MAX_DECIMALS 18u

/* ---------------------------------------------------------------- output */

/* A place to emit characters to one at a time, for the general escaper. With p == NULL it only
 * counts. */
struct out {
	char *p;
	size_t cap;
	size_t n;
};

static void put(struct out *o, char c)
{
	if (o->p != NULL && o->n < o->cap)
		o->p[o->n] = c;
	o->n++;
}

/*
 * memcpy(), expanded inline where the length is known (a field's name, a pair of digits).
 * Under -ffreestanding, as the core is built, memcpy() is an ordinary function that compilers
 * do not expand, but GCC and clang still expand their builtin.
 */
#ifdef __GNUC__
#define copy_bytes(dst, src, n) __builtin_memcpy((dst), (src), (n))
#else
#define copy_bytes(dst, src, n) memcpy((dst), (src), (n))
#endif

/* Copies n bytes to dst, which has room for them; returns the end. */
static char *copy(char *dst, const char *src, size_t n)
{
	copy_bytes(dst, src, n);
	return dst + n;
}

/* Copies n bytes so that they end at e; returns their start. */
static char *copy_before(char *e, const char *src, size_t n)
{
	e -= n;
	copy_bytes(e, src, n);
	return e;
}

/* Copies a string literal (without its NUL) so that it ends at e; returns its start. */
#define LITERAL_BEFORE(e, lit) copy_before((e), (lit), sizeof(lit) - 1)


/* ---------------------------------------------------------------- numbers */

/*
 * Numbers are printed from the last digit backwards, the order in which division by ten yields
 * the digits, so that none needs measuring first: the "..._before" functions take the end of
 * their text and return its start.
 */

static const uint64_t pow10_u64[MAX_DECIMALS + 1] = {
	UINT64_C(1),
	UINT64_C(10),
	UINT64_C(100),
	UINT64_C(1000),
	UINT64_C(10000),
	UINT64_C(100000),
	UINT64_C(1000000),
	UINT64_C(10000000),
	UINT64_C(100000000),
	UINT64_C(1000000000),
	UINT64_C(10000000000),
	UINT64_C(100000000000),
	UINT64_C(1000000000000),
	UINT64_C(10000000000000),
	UINT64_C(100000000000000),
	UINT64_C(1000000000000000),
	UINT64_C(10000000000000000),
	UINT64_C(100000000000000000),
	UINT64_C(1000000000000000000),
};

/* "00" to "99": digits come off two at a time, halving the divisions. */
static const char digit_pairs[201] = "00010203040506070809"
				     "10111213141516171819"
				     "20212223242526272829"
				     "30313233343536373839"
				     "40414243444546474849"
				     "50515253545556575859"
				     "60616263646566676869"
				     "70717273747576777879"
				     "80818283848586878889"
				     "90919293949596979899";

/* Prints u. */
static char *put_u32_before(char *e, uint32_t u)
{
	while (u >= 100u) {
		uint32_t q = u / 100u;

		e -= 2;
		copy_bytes(e, &digit_pairs[(u - q * 100u) * 2u], 2);
		u = q;
	}
	if (u < 10u) {
		*--e = (char)('0' + u);
	} else {
		e -= 2;
		copy_bytes(e, &digit_pairs[u * 2u], 2);
	}
	return e;
}

/* Fills the room from start to e with '0's (a number's leading zeros). */
static char *put_zeros_before(char *e, char *start)
{
	while (e > start)
		*--e = '0';
	return e;
}

/* Prints u. */
static char *put_uint_before(char *e, uint64_t u)
{
	/* 64-bit division is a library call on the small targets: a number beyond 32 bits is
	 * cut into pieces of eight digits, with one such division a piece, and the pieces are
	 * printed in 32-bit arithmetic. */
	while (u > UINT32_MAX) {
		char *start = e - 8;

		e = put_zeros_before(put_u32_before(e, (uint32_t)(u % 100000000u)), start);
		u /= 100000000u;
	}
	return put_u32_before(e, (uint32_t)u);
}

/* The longest text put_fixed_before() writes: "-9223372036854775808" with a '.' in it (or "-0."
 * and 18 decimals). */
#define FIXED_MAX 21

/* Prints v / 10^decimals (decimals <= MAX_DECIMALS) with trailing fraction zeros trimmed. */
static char *put_fixed_before(char *e, int64_t v, unsigned decimals)
{
	/* Negating in unsigned arithmetic keeps INT64_MIN exact. */
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

	if (decimals > 0) {
		uint64_t frac = u % pow10_u64[decimals];

		u /= pow10_u64[decimals];
		/* Fraction digits that are zero from the right end are left out; for a whole
		 * number that is all of them. */
		if (frac != 0) {
			char *start;

			while (frac % 10u == 0) {
				frac /= 10u;
				decimals--;
			}
			start = e - decimals;
			e = put_zeros_before(put_uint_before(e, frac), start);
			*--e = '.';
		}
	}
	e = put_uint_before(e, u);
	if (v < 0)
		*--e = '-';
	return e;
}

/* ---------------------------------------------------------------- escaping */

/*
 * After a backslash in a measurement, key or tag value, these characters are read differently
 * by InfluxDB's two parsers: the Go one of 1.x and 2.x keeps "\\" as two backslashes and reads
 * "\," "\=" "\ " (and in a measurement "\"") as the character alone, while the Rust one of 3.x
 * reads "\\" as one backslash. A literal backslash before one of them therefore has no encoding
 * that every server stores the same (1.x needs "\\,", which 3.x reads as a backslash followed
 * by the end of the element), and one at the end of an element would escape the separator.
 */
static bool is_backslash_hazard(char c)
{
	return c == '\\' || c == ',' || c == '=' || c == ' ' || c == '"';
}

/* Length of the well-formed UTF-8 sequence at s (shortest form, no surrogates, at most
 * U+10FFFF), or 0. InfluxDB 3.x refuses a whole request that is not UTF-8, and 1.x returns
 * such bytes as U+FFFD from its queries. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n, k;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		else if (c == 0xf4)
			hi = 0x8f; /* beyond U+10FFFF */
	} else {
		return 0;
	}
	for (k = 1; k < n; k++) {
		if (s[k] < lo || s[k] > hi)
			return 0;
		lo = 0x80;
		hi = 0xbf;
	}
	return n;
}

/*
 * Checks src as an element of the given kind and measures it: *raw gets its length, *escaped
 * its length once escaped. Returns NULL or what is wrong, as a phrase.
 */
static const char *check_element(const char *src, enum pl_lp_kind kind, size_t *raw,
				 size_t *escaped)
{
	const unsigned char *s = (const unsigned char *)src;
	bool name = kind != PL_LP_STRING_FIELD;
	size_t i = 0, n = 0;

	while (s[i] != 0) {
		unsigned char c = s[i];
		size_t k;

		if (c < 0x20 || c == 0x7f)
			return "contains a control character (newline, tab, ...)";
		if (c >= 0x80) {
			k = utf8_len(s + i);
			if (k == 0)
				return "is not valid UTF-8";
			i += k;
			n += k;
			continue;
		}
		if (name && c == '\\' && (s[i + 1] == 0 || is_backslash_hazard((char)s[i + 1])))
			return "has a backslash before '\\', ',', '=', a space, '\"' or at its end, "
			       "which InfluxDB versions read differently";
		if (is_special((char)c, kind))
			n++;
		n++;
		i++;
	}
	if (name && i == 0)
		return "is empty";
	/* A line whose first character is '#' is a comment to InfluxDB. */
	if (kind == PL_LP_MEASUREMENT_NAME && src[0] == '#')
		return "starts with '#' (a comment line)";
	*raw = i;
	*escaped = n;
	return NULL;
}

/* Emits src escaped as kind (checked by check_element); returns how many characters that took. */
static size_t put_escaped(struct out *o, const char *src, enum pl_lp_kind kind)
{
	size_t start = o->n, i;

	for (i = 0; src[i] != '\0'; i++) {
		if (is_special(src[i], kind))
			put(o, '\\');
		put(o, src[i]);
	}
	return o->n - start;
}

const char *pl_lp_name_problem(const char *name, enum pl_lp_kind kind)
{
	size_t raw, escaped;

	if (name == NULL)
		return "is missing";
	if ((unsigned)kind > (unsigned)PL_LP_STRING_FIELD)
		return "is of an unknown kind";
	return check_element(name, kind, &raw, &escaped);
}

/* A measurement or tag value, checked and measured once for the line it goes into. */
struct name {
	const char *s;
	size_t n;            /* length once escaped */
	enum pl_lp_kind kind;
	bool plain;          /* nothing to escape: n == strlen(s), written as it is */
};

/* Printable ASCII that needs no escape in any element and no look at its neighbours. */
static bool is_plain(char c)
{
	return c > ' ' && c < 0x7f && c != ',' && c != '=' && c != '\\';
}

/* Checks src as an element of kind (see check_element) and measures it. */
static int name_init(struct name *nm, const char *src, enum pl_lp_kind kind)
{
	size_t raw = 0, escaped;

	if (src == NULL)
		return -PL_EINVAL;
	/* the common case, a plain ASCII name, in one cheap pass */
	while (is_plain(src[raw]))
		raw++;
	if (src[raw] == '\0' && raw > 0 && !(kind == PL_LP_MEASUREMENT_NAME && src[0] == '#')) {
		*nm = (struct name){ .s = src, .n = raw, .kind = kind, .plain = true };
		return 0;
	}
	if (check_element(src, kind, &raw, &escaped) != NULL)
		return -PL_EINVAL;
	*nm = (struct name){ .s = src, .n = escaped, .kind = kind, .plain = raw == escaped };
	return 0;
}

/* Writes a name measured by name_init() to p, which has room for it; returns the end. */
static char *put_name(char *p, const struct name *nm)
{
	struct out o = { p, nm->n, 0 };

	if (nm->plain)
		return copy(p, nm->s, nm->n);
	put_escaped(&o, nm->s, nm->kind);
	return p + o.n;
}

int pl_lp_escape(char *dst, size_t cap, const char *src, enum pl_lp_kind kind)
{
	struct out o;
	size_t raw, escaped;

	if (dst == NULL || src == NULL || (unsigned)kind > (unsigned)PL_LP_STRING_FIELD)
		return -PL_EINVAL;
	if (check_element(src, kind, &raw, &escaped) != NULL)
		return -PL_EINVAL;
	if (escaped >= cap || escaped > (size_t)INT_MAX)
		return -PL_ENOSPC;
	o = (struct out){ dst, cap, 0 };
	put_escaped(&o, src, kind);
	dst[o.n] = '\0';
	return (int)o.n;
}

int pl_lp_fixed(char *dst, size_t cap, int64_t v, unsigned decimals)
{
	char text[FIXED_MAX], *start;
	size_t n;

	if (dst == NULL || decimals > MAX_DECIMALS)
		return -PL_EINVAL;
	start = put_fixed_before(text + FIXED_MAX, v, decimals);
	n = (size_t)(text + FIXED_MAX - start);
	if (n >= cap)
		return -PL_ENOSPC;
	copy(dst, start, n)[0] = '\0';
	return (int)n;
}

/* ---------------------------------------------------------------- precision and time */

static const char *const prec_v1[] = { "n", "u", "ms", "s" };
static const char *const prec_v2[] = { "ns", "us", "ms", "s" };
static const int64_t ns_per_unit[] = { 1, 1000, 1000000, 1000000000 };

const char *pl_precision_v1(enum pl_precision p)
{
	return (unsigned)p <= (unsigned)PL_PREC_S ? prec_v1[p] : NULL;
}

const char *pl_precision_v2(enum pl_precision p)
{
	return (unsigned)p <= (unsigned)PL_PREC_S ? prec_v2[p] : NULL;
}

/* a / b rounded towards minus infinity, b > 0. */
static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	if (a % b < 0)
		q--;
	return q;
}

int pl_lp_timestamp(int64_t t_us, enum pl_precision prec, int64_t *ts)
{
	int64_t v, unit;

	if (ts == NULL)
		return -PL_EINVAL;
	switch (prec) {
	case PL_PREC_NS:
		if (t_us > INT64_MAX / 1000 || t_us < INT64_MIN / 1000)
			return -PL_ERANGE;
		v = t_us * 1000;
		break;
	case PL_PREC_US:
		v = t_us;
		break;
	case PL_PREC_MS:
		v = floor_div(t_us, 1000);
		break;
	case PL_PREC_S:
		v = floor_div(t_us, 1000000);
		break;
	default:
		return -PL_EINVAL;
	}
	/* v * unit must lie in InfluxDB's range. C division truncates towards zero, which is the
	 * floor of the upper bound and the ceiling of the lower one, as needed. */
	unit = ns_per_unit[prec];
	if (v > INFLUX_MAX_NS / unit || v < INFLUX_MIN_NS / unit)
		return -PL_ERANGE;
	*ts = v;
	return 0;
}

/* ---------------------------------------------------------------- records */

/*
 * The longest field set (from the space after the tags to the '\n') of either kind of line:
 * an interval line's has 82 characters of text, four put_fixed_before() numbers, four uint32
 * ones of at most 10 digits and a timestamp of at most 20 characters (226 in all); a pulse
 * line's is shorter.
 */
#define FIELDS_MAX (82 + 4 * FIXED_MAX + 4 * 10 + 20)

/* The field sets are written backwards (see "numbers"): read these from the bottom up. */

struct interval_fields {
	const struct pl_interval_record *r;
	int64_t ts;
};

static char *put_interval_fields_before(char *e, const void *ctx)
{
	const struct interval_fields *f = ctx;
	const struct pl_interval_record *r = f->r;

	*--e = '\n';
	e = put_fixed_before(e, f->ts, 0);
	e = LITERAL_BEFORE(e, "i ");
	e = put_uint_before(e, r->length_s);
	e = LITERAL_BEFORE(e, "i,interval_s=");
	e = put_uint_before(e, r->flags);
	e = LITERAL_BEFORE(e, "i,flags=");
	e = put_uint_before(e, r->rejected);
	e = LITERAL_BEFORE(e, ",rejected=");
	e = put_fixed_before(e, r->register_uwh, 6);
	e = LITERAL_BEFORE(e, ",register_wh=");
	e = put_fixed_before(e, r->peak_mw, 3);
	e = LITERAL_BEFORE(e, ",peak_w=");
	e = put_fixed_before(e, r->avg_mw, 3);
	e = LITERAL_BEFORE(e, ",power_w=");
	e = put_fixed_before(e, r->energy_uwh, 6);
	e = LITERAL_BEFORE(e, ",energy_wh=");
	e = put_uint_before(e, r->pulses);
	return LITERAL_BEFORE(e, " value=");
}

struct pulse_fields {
	const struct pl_pulse *p;
	int64_t power_mw, ts;
};

static char *put_pulse_fields_before(char *e, const void *ctx)
{
	const struct pulse_fields *f = ctx;

	*--e = '\n';
	e = put_fixed_before(e, f->ts, 0);
	if ((f->p->flags & PL_PULSE_REJECTED) != 0)
		e = LITERAL_BEFORE(e, ",rejected=true ");
	else
		e = LITERAL_BEFORE(e, ",rejected=false ");
	e = put_fixed_before(e, f->p->width_us, 3);
	e = LITERAL_BEFORE(e, ",width_ms=");
	e = put_fixed_before(e, f->power_mw, 3);
	return LITERAL_BEFORE(e, " power_w=");
}

/* The parts of a line: "<measurement><suffix>,device=<device>", then the field set. */
struct line {
	const struct name *measurement;
	const char *suffix; /* or NULL */
	size_t suffix_len;
	const struct name *device;
	size_t longest_field_key;
	/* writes the field set, at most FIELDS_MAX characters, to end at e; returns its start */
	char *(*put_fields_before)(char *e, const void *ctx);
	const void *ctx;
};

/*
 * Appends one line at buf + *len, or returns -PL_EINVAL for a series key InfluxDB refuses or
 * -PL_ENOSPC, leaving buf as it was.
 */
static int append(char *buf, size_t cap, size_t *len, const struct line *l)
{
	char fields[FIELDS_MAX], *f, *p;
	size_t key = l->measurement->n + l->suffix_len + (sizeof(",device=") - 1) + l->device->n;
	size_t nfields;

	if (key > INFLUX_MAX_KEY - 4u - l->longest_field_key)
		return -PL_EINVAL;
	f = l->put_fields_before(fields + FIELDS_MAX, l->ctx);
	nfields = (size_t)(fields + FIELDS_MAX - f);
	if (key + nfields >= cap - *len)
		return -PL_ENOSPC;
	p = put_name(buf + *len, l->measurement);
	if (l->suffix != NULL)
		p = copy(p, l->suffix, l->suffix_len);
	p = copy(p, ",device=", sizeof(",device=") - 1);
	p = put_name(p, l->device);
	copy(p, f, nfields)[0] = '\0';
	*len += key + nfields;
	return 0;
}

static int check_buffer(const char *buf, size_t cap, const size_t *len)
{
	return buf == NULL || len == NULL || *len > cap ? -PL_EINVAL : 0;
}

int pl_lp_interval(char *buf, size_t cap, size_t *len, const char *measurement,
		   const char *device, const struct pl_interval_record *r,
		   enum pl_precision prec)
{
	/* the default needs neither checking nor scanning */
	struct name m = { .s = PL_LP_MEASUREMENT, .n = sizeof(PL_LP_MEASUREMENT) - 1,
			  .kind = PL_LP_MEASUREMENT_NAME, .plain = true };
	struct name d;
	struct interval_fields f = { .r = r };
	struct line l = { .measurement = &m, .device = &d,
			  .longest_field_key = sizeof("register_wh") - 1,
			  .put_fields_before = put_interval_fields_before, .ctx = &f };
	int err = check_buffer(buf, cap, len);

	if (err == 0 && measurement != NULL)
		err = name_init(&m, measurement, PL_LP_MEASUREMENT_NAME);
	if (err == 0)
		err = name_init(&d, device, PL_LP_TAG_VALUE);
	if (err != 0)
		return err;
	if (r == NULL)
		return -PL_EINVAL;
	err = pl_lp_timestamp(r->start_us, prec, &f.ts);
	if (err != 0)
		return err;
	return append(buf, cap, len, &l);
}

int pl_lp_pulse(char *buf, size_t cap, size_t *len, const char *measurement,
		const char *device, const struct pl_pulse *p, int64_t power_mw,
		enum pl_precision prec)
{
	struct name m = { .s = "energy_meter_pulse", .n = sizeof("energy_meter_pulse") - 1,
			  .kind = PL_LP_MEASUREMENT_NAME, .plain = true };
	struct name d;
	struct pulse_fields f = { .p = p, .power_mw = power_mw };
	struct line l = { .measurement = &m, .device = &d,
			  .longest_field_key = sizeof("width_ms") - 1,
			  .put_fields_before = put_pulse_fields_before, .ctx = &f };
	int err = check_buffer(buf, cap, len);

	/* "<measurement>_pulse": the measurement is checked on its own, as it is for the interval
	 * lines, and the plain suffix follows it in the same element. */
	if (err == 0 && measurement != NULL) {
		err = name_init(&m, measurement, PL_LP_MEASUREMENT_NAME);
		l.suffix = "_pulse";
		l.suffix_len = sizeof("_pulse") - 1;
	}
	if (err == 0)
		err = name_init(&d, device, PL_LP_TAG_VALUE);
	if (err != 0)
		return err;
	if (p == NULL)
		return -PL_EINVAL;
	err = pl_lp_timestamp(p->t_us, prec, &f.ts);
	if (err != 0)
		return err;
	return append(buf, cap, len, &l);
}

