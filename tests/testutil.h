/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the tests and the fuzzers: a small repeatable random generator, a model
 * of how InfluxDB splits a batch into lines, the wall clock's offset from the monotonic one. Header-only (static functions): include it once
 * per test program.
 */
#ifndef PL_TESTS_TESTUTIL_H
#define PL_TESTS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "powerlogger/lineproto.h"

/*
 * CLOCK_REALTIME - CLOCK_MONOTONIC in us, read so that no preemption (valgrind, a loaded
 * machine) comes between the two clocks: the middle of the narrowest of many brackets
 * wall-mono-wall. Two unbracketed readings can be milliseconds apart there.
 */
static inline int64_t tu_wall_minus_mono_us(void)
{
	int64_t best = 0, width = INT64_MAX;

	for (int i = 0; i < 200 && width > 50; i++) {
		struct timespec a, m, b;

		clock_gettime(CLOCK_REALTIME, &a);
		clock_gettime(CLOCK_MONOTONIC, &m);
		clock_gettime(CLOCK_REALTIME, &b);
		int64_t r1 = a.tv_sec * INT64_C(1000000) + a.tv_nsec / 1000;
		int64_t r2 = b.tv_sec * INT64_C(1000000) + b.tv_nsec / 1000;
		int64_t mo = m.tv_sec * INT64_C(1000000) + m.tv_nsec / 1000;

		if (r2 >= r1 && r2 - r1 < width) {
			width = r2 - r1;
			best = r1 + (r2 - r1) / 2 - mo;
		}
	}
	return best;
}

/* A small, repeatable generator (xorshift64*). */
static uint64_t rng_state;

static inline uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

/*
 * Signed 128-bit integers for the tests' reference arithmetic, which must be exact. gcc's
 * __int128 exists on 64-bit targets only, and the tests also run on armhf (32-bit), so these
 * are plain C: two's complement in two halves, the product's low 128 bits, division
 * truncating toward zero as C's does. Slow (bit by bit), which a test does not mind.
 */
struct i128 {
	uint64_t hi, lo;
};

static inline struct i128 i128_of(int64_t v)
{
	struct i128 r = { v < 0 ? UINT64_MAX : 0, (uint64_t)v };

	return r;
}

static inline int64_t i128_to_i64(struct i128 a)
{
	return (int64_t)a.lo; /* the caller knows it fits */
}

static inline struct i128 i128_add(struct i128 a, struct i128 b)
{
	struct i128 r = { a.hi + b.hi, a.lo + b.lo };

	r.hi += r.lo < a.lo;
	return r;
}

static inline struct i128 i128_neg(struct i128 a)
{
	struct i128 r = { ~a.hi, ~a.lo };

	return i128_add(r, i128_of(1));
}

static inline struct i128 i128_sub(struct i128 a, struct i128 b)
{
	return i128_add(a, i128_neg(b));
}

static inline int i128_is_neg(struct i128 a)
{
	return (a.hi >> 63) != 0;
}

static inline struct i128 i128_mul(struct i128 a, struct i128 b)
{
	uint64_t a0 = a.lo & 0xffffffffu, a1 = a.lo >> 32;
	uint64_t b0 = b.lo & 0xffffffffu, b1 = b.lo >> 32;
	uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
	uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
	struct i128 r;

	r.lo = (mid << 32) | (p00 & 0xffffffffu);
	r.hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32) + a.hi * b.lo + a.lo * b.hi;
	return r;
}

/* -1, 0 or 1 as a < b, a == b, a > b (signed) */
static inline int i128_cmp(struct i128 a, struct i128 b)
{
	uint64_t ah = a.hi ^ (UINT64_C(1) << 63), bh = b.hi ^ (UINT64_C(1) << 63);

	if (ah != bh)
		return ah < bh ? -1 : 1;
	if (a.lo != b.lo)
		return a.lo < b.lo ? -1 : 1;
	return 0;
}

/* a / b truncated toward zero, b != 0 */
static inline struct i128 i128_div(struct i128 a, struct i128 b)
{
	int neg = i128_is_neg(a) != i128_is_neg(b);
	struct i128 n = i128_is_neg(a) ? i128_neg(a) : a;
	struct i128 d = i128_is_neg(b) ? i128_neg(b) : b;
	struct i128 q = { 0, 0 }, r = { 0, 0 };
	int i;

	for (i = 127; i >= 0; i--) {
		uint64_t bit = i >= 64 ? (n.hi >> (i - 64)) & 1 : (n.lo >> i) & 1;

		r.hi = (r.hi << 1) | (r.lo >> 63);
		r.lo = (r.lo << 1) | bit;
		/* magnitudes: compare unsigned */
		if (r.hi > d.hi || (r.hi == d.hi && r.lo >= d.lo)) {
			r = i128_sub(r, d);
			if (i >= 64)
				q.hi |= UINT64_C(1) << (i - 64);
			else
				q.lo |= UINT64_C(1) << i;
		}
	}
	return neg ? i128_neg(q) : q;
}

/*
 * Where InfluxDB 1.x's batch splitter (models.scanLine) ends the line that starts at buf[0]:
 * it steps over any backslash pair, and ignores '\n' inside a string it believes is open. A
 * '"' opens or closes a string once the first unescaped space was seen and more '=' than ','
 * were counted after it. Written here from the behaviour, to check that our lines never make
 * it run past their end.
 */
static inline size_t influx_line_end(const char *buf, size_t len)
{
	size_t i = 0, equals = 0, commas = 0;
	int quoted = 0, fields = 0;

	while (i < len) {
		if (buf[i] == '\\' && i + 2 < len) {
			i += 2;
			continue;
		}
		if (buf[i] == ' ')
			fields = 1;
		if (fields) {
			if (!quoted && buf[i] == '=') {
				equals++;
				i++;
				continue;
			} else if (!quoted && buf[i] == ',') {
				commas++;
				i++;
				continue;
			} else if (buf[i] == '"' && equals > commas) {
				quoted = !quoted;
				i++;
				continue;
			}
		}
		if (buf[i] == '\n' && !quoted)
			break;
		i++;
	}
	return i;
}

/*
 * What a name, key or tag value reads as after the round trip, computed from the documented
 * rules: the name itself if the encoder must accept it, "" if it must refuse it (control
 * characters, bytes that are not UTF-8, a backslash before '\', ',', '=', ' ', '"' or at the
 * end). Empty names and '#' at the start of a measurement are left to the caller.
 */
static inline void expected_name(const char *raw, char *out)
{
	const unsigned char *s = (const unsigned char *)raw;
	size_t i = 0;

	out[0] = '\0';
	while (s[i] != 0) {
		unsigned cp, need, k;

		if (s[i] < 0x20 || s[i] == 0x7f)
			return;
		if (s[i] == '\\' && (s[i + 1] == 0 || strchr("\\,= \"", s[i + 1]) != NULL))
			return;
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		/* decode one UTF-8 sequence and check it by its value */
		need = s[i] >= 0xf0 ? 3 : s[i] >= 0xe0 ? 2 : s[i] >= 0xc0 ? 1 : 9;
		if (need == 9 || s[i] > 0xf7)
			return;
		cp = s[i] & (0x3fu >> need);
		for (k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return;
			cp = (cp << 6) | (s[i + k] & 0x3fu);
		}
		if ((need == 1 && cp < 0x80) || (need == 2 && cp < 0x800) ||
		    (need == 3 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return;
		i += need + 1;
	}
	strcpy(out, raw);
}

/* One element of a series key as InfluxDB 3.x's parser (the Rust influxdb_line_protocol
 * crate) reads it from s[*i]: it ends at a character of `stop` or a blank; a backslash
 * before '\', ',', '=' or ' ' stands for that character, before anything else it is kept with
 * the character. Unescaped into out (cap bytes); -1 if empty or ending in a backslash, which
 * 3.x refuses. */
static inline int influx3_element(const char *s, size_t n, size_t *i, const char *stop,
				  char *out, size_t cap)
{
	size_t o = 0;

	while (*i < n && o + 2 < cap) {
		char c = s[*i];

		if (c == '\\' && *i + 1 < n && strchr("\\,= ", s[*i + 1]) != NULL) {
			out[o++] = s[*i + 1];
			*i += 2;
		} else if (c == '\\' && *i + 1 < n) {
			out[o++] = '\\';
			out[o++] = s[*i + 1];
			*i += 2;
		} else if (c == '\\') {
			out[o++] = '\\';
			*i += 1;
		} else if (strchr(stop, c) != NULL || c == ' ' || c == '\t' || c == '\n') {
			break;
		} else {
			out[o++] = c;
			*i += 1;
		}
	}
	out[o] = '\0';
	return o == 0 || out[o - 1] == '\\' ? -1 : 0;
}

/*
 * The measurement and the first tag of a line (len bytes, without its '\n') as InfluxDB 3.x
 * reads them, a model written from that parser's rules to hold the encoder to both
 * parsers (pl_lp_parse() follows 1.x). Returns 0, or -1 where 3.x would refuse the line.
 */
static inline int influx3_series(const char *line, size_t len, char *meas, char *key, char *val,
				 size_t cap)
{
	size_t i = 0;

	if (influx3_element(line, len, &i, ",", meas, cap) != 0 || i >= len || line[i] != ',')
		return -1;
	i++;
	if (influx3_element(line, len, &i, "=", key, cap) != 0 || i >= len || line[i] != '=')
		return -1;
	i++;
	if (influx3_element(line, len, &i, ",", val, cap) != 0 || i >= len ||
	    (line[i] != ' ' && line[i] != ','))
		return -1;
	return 0;
}

/* The timestamp the encoder should write, computed in 128-bit arithmetic; 0 if out of range. */
static inline int want_timestamp(int64_t t_us, int prec, int64_t *ts)
{
	static const int64_t unit_ns[] = { 1, 1000, 1000000, 1000000000 };
	struct i128 v = i128_of(t_us), ns;

	if (prec == PL_PREC_NS) {
		v = i128_mul(v, i128_of(1000));
	} else if (prec == PL_PREC_MS || prec == PL_PREC_S) {
		/* floor division: v - ((v % u) + u) % u, then / u */
		struct i128 u = i128_of(prec == PL_PREC_MS ? 1000 : 1000000);
		struct i128 rem = i128_sub(v, i128_mul(i128_div(v, u), u));

		if (i128_is_neg(rem))
			rem = i128_add(rem, u);
		v = i128_div(i128_sub(v, rem), u);
	}
	ns = i128_mul(v, i128_of(unit_ns[prec]));
	if (i128_cmp(ns, i128_of(INT64_MIN + 2)) < 0 || i128_cmp(ns, i128_of(INT64_MAX - 1)) > 0)
		return 0;
	*ts = i128_to_i64(v);
	return 1;
}

#endif
