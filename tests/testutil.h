/*
 * Helpers shared by the tests and the fuzzers: a small repeatable random generator and a model
 * of how InfluxDB splits a batch into lines. Header-only (static functions): include it once
 * per test program.
 */
#ifndef PL_TESTS_TESTUTIL_H
#define PL_TESTS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

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

#endif
