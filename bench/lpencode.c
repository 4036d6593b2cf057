/* SPDX-License-Identifier: MIT */
/*
 * Line-protocol encoder cost: instructions per interval record.
 *
 *   lpencode [--records N] [--device NAME] [--measurement NAME] [--prec ns|us|ms|s]
 *
 * Makes N realistic interval records in memory first (20 s intervals, 1 Wh per pulse, a
 * register with a fractional part, now and then a rejected pulse), then encodes them inside
 * encode_all() the way the daemon's sink does: into a batch body of 5000 records, starting a
 * new body when one is full. callgrind counts only that function:
 *
 *   valgrind --tool=callgrind --toggle-collect=encode_all build/lpencode
 *
 * It prints the bytes encoded and an FNV-1a hash of them, so that two versions of the encoder
 * can be checked to write exactly the same text.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "powerlogger/lineproto.h"

#define BATCH 5000

static char body[BATCH * 300];

struct totals {
	uint64_t bytes, hash;
	size_t failed;
};

static void hash_bytes(struct totals *t, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		t->hash ^= (unsigned char)p[i];
		t->hash *= UINT64_C(0x100000001b3);
	}
	t->bytes += n;
}

/* Kept out of line so that callgrind can count it alone; the hashing is outside it. */
__attribute__((noinline)) size_t encode_all(const struct pl_interval_record *r, size_t from,
					    size_t n, const char *measurement, const char *device,
					    enum pl_precision prec, size_t *len);
__attribute__((noinline)) size_t encode_all(const struct pl_interval_record *r, size_t from,
					    size_t n, const char *measurement, const char *device,
					    enum pl_precision prec, size_t *len)
{
	size_t i;

	*len = 0;
	for (i = from; i < n; i++) {
		if (pl_lp_interval(body, sizeof body, len, measurement, device, &r[i], prec) != 0)
			break;
	}
	return i;
}

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void make_records(struct pl_interval_record *r, size_t n)
{
	int64_t reg = INT64_C(12345678901); /* 12345.678901 Wh */
	size_t i;

	for (i = 0; i < n; i++) {
		uint32_t pulses = (uint32_t)(rnd() % 40);
		int64_t energy = (int64_t)pulses * 1000000; /* 1000 imp/kWh: 1 Wh a pulse */

		reg += energy;
		r[i] = (struct pl_interval_record){
			.start_us = (INT64_C(1420675200) + (int64_t)i * 20) * 1000000,
			.length_s = 20,
			.pulses = pulses,
			.rejected = rnd() % 50 == 0 ? 1u : 0u,
			.flags = 0,
			.energy_uwh = energy,
			.avg_mw = energy * 36 / 10 / 20, /* uWh over 20 s in mW */
			.peak_mw = pulses == 0 ? 0 : (int64_t)(rnd() % 5000000),
			.register_uwh = reg,
		};
	}
}

int main(int argc, char **argv)
{
	size_t n = 100000, i = 0, len;
	const char *device = "house", *measurement = NULL;
	enum pl_precision prec = PL_PREC_S;
	struct pl_interval_record *r;
	struct totals t = { 0, UINT64_C(0xcbf29ce484222325), 0 };
	int a;

	for (a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--records") == 0 && a + 1 < argc) {
			n = (size_t)strtoull(argv[++a], NULL, 10);
		} else if (strcmp(argv[a], "--device") == 0 && a + 1 < argc) {
			device = argv[++a];
		} else if (strcmp(argv[a], "--measurement") == 0 && a + 1 < argc) {
			measurement = argv[++a];
		} else if (strcmp(argv[a], "--prec") == 0 && a + 1 < argc) {
			const char *p = argv[++a];

			prec = strcmp(p, "ns") == 0   ? PL_PREC_NS
			       : strcmp(p, "us") == 0 ? PL_PREC_US
			       : strcmp(p, "ms") == 0 ? PL_PREC_MS
						      : PL_PREC_S;
		} else {
			fprintf(stderr, "usage: lpencode [--records N] [--device NAME] "
					"[--measurement NAME] [--prec ns|us|ms|s]\n");
			return 2;
		}
	}
	r = malloc(n * sizeof *r + 1);
	if (r == NULL)
		return 1;
	make_records(r, n);
	while (i < n) {
		size_t next = encode_all(r, i, i + BATCH < n ? i + BATCH : n, measurement, device,
					 prec, &len);

		hash_bytes(&t, body, len);
		if (next == i) {
			fprintf(stderr, "lpencode: record %zu was refused\n", i);
			return 1;
		}
		i = next;
	}
	printf("records %zu bytes %" PRIu64 " (%.1f per record) fnv1a %016" PRIx64 "\n", n,
	       t.bytes, n != 0 ? (double)t.bytes / (double)n : 0.0, t.hash);
	free(r);
	return 0;
}
