/*
 * Helpers shared by the tests and the fuzzers: a small repeatable random generator and a model
 * of how InfluxDB splits a batch into lines. Header-only (static functions): include it once
 * per test program.
 */
#ifndef PL_TESTS_TESTUTIL_H
#define PL_TESTS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "powerlogger/lineproto.h"

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
 * What a name, key or tag value reads as after the round trip, computed the way the documents
 * state the rules: '\n', '\r', '\t' become two-character texts, then every run of backslashes
 * right before ',', '=', ' ', '"' or the end is dropped.
 */
static inline void expected_name(const char *raw, char *out)
{
	size_t n = strlen(raw), i, j, o = 0, t = 0;
	char *tmp = malloc(2 * n + 1);

	if (tmp == NULL)
		abort();
	for (i = 0; i < n; i++) {
		char c = raw[i];

		if (c == '\n' || c == '\r' || c == '\t') {
			tmp[t++] = '\\';
			tmp[t++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
		} else {
			tmp[t++] = c;
		}
	}
	tmp[t] = '\0';
	for (i = 0; i < t; i = j) {
		if (tmp[i] != '\\') {
			out[o++] = tmp[i];
			j = i + 1;
			continue;
		}
		for (j = i; tmp[j] == '\\'; j++) {
		}
		if (tmp[j] == '\0' || strchr(",= \"", tmp[j]) != NULL)
			continue;
		for (; i < j; i++)
			out[o++] = '\\';
	}
	out[o] = '\0';
	free(tmp);
}

/* The timestamp the encoder should write, computed in 128-bit arithmetic; 0 if out of range. */
static inline int want_timestamp(int64_t t_us, int prec, int64_t *ts)
{
	static const int64_t unit_ns[] = { 1, 1000, 1000000, 1000000000 };
	__int128 v = t_us;

	if (prec == PL_PREC_NS)
		v *= 1000;
	else if (prec == PL_PREC_MS)
		v = (v - (((v % 1000) + 1000) % 1000)) / 1000;
	else if (prec == PL_PREC_S)
		v = (v - (((v % 1000000) + 1000000) % 1000000)) / 1000000;
	if (v * unit_ns[prec] < (__int128)INT64_MIN + 2 || v * unit_ns[prec] > (__int128)INT64_MAX - 1)
		return 0;
	*ts = (int64_t)v;
	return 1;
}

#endif
