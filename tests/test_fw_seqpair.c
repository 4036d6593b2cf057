/* SPDX-License-Identifier: MIT */
/*
 * fw_seqpair (ports/esp32/main/logic): the 64-bit pairs that the SNTP and WiFi callbacks hand
 * to the firmware's network task (sync time, reconnect time) must never be read torn.
 *
 * On the host a 64-bit store is one instruction, so a plain int64_t would never tear here;
 * what the ESP32 does - two 32-bit halves - fw_seqpair does explicitly, so tearing is real on
 * the host too. The first tests interleave a read and a write step by step, at every point
 * where a 32-bit core could switch between them, and check that the reader never accepts
 * what it sees mid-write. The last one runs a writer and a reader in two threads: the
 * sequence-checked read never sees a torn pair, while loading the halves without the check
 * (what the firmware did, on a 32-bit core) does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <cmocka.h>

#include "fw_seqpair.h"
#include "powerlogger/common.h"

/* Pairs whose consistency a reader can check: a's halves equal, b = -a. */
static int64_t pair_a(uint32_t k)
{
	return (int64_t)(((uint64_t)k << 32) | k);
}

static int consistent(int64_t a, int64_t b)
{
	uint64_t u = (uint64_t)a;

	return (uint32_t)u == (uint32_t)(u >> 32) && b == -a;
}

static void test_read_refuses_a_write_in_progress(void **state)
{
	struct fw_seqpair p;
	int64_t a = 1, b = 2;
	uint32_t s, v = 99;

	(void)state;
	fw_seqpair_init(&p);
	assert_int_equal(fw_seqpair_read(&p, &a, &b, &v), 0);
	assert_true(a == 0 && b == 0 && v == 0);

	fw_seqpair_write(&p, pair_a(7), -pair_a(7));
	assert_int_equal(fw_seqpair_read(&p, &a, &b, &v), 0);
	assert_true(a == pair_a(7) && b == -pair_a(7) && v == 1);

	/* a write begun and not ended: halves may be half-stored */
	fw_seqpair_write_begin(&p);
	assert_int_equal(fw_seqpair_read_begin(&p, &s), -PL_EBUSY);
	fw_seqpair_write_store(&p, pair_a(8), -pair_a(8));
	assert_int_equal(fw_seqpair_read_begin(&p, &s), -PL_EBUSY);
	a = b = 5;
	assert_int_equal(fw_seqpair_read(&p, &a, &b, &v), -PL_EBUSY);
	assert_true(a == 5 && b == 5); /* nothing stored on failure */
	fw_seqpair_write_end(&p);
	assert_int_equal(fw_seqpair_read(&p, &a, &b, &v), 0);
	assert_true(a == pair_a(8) && b == -pair_a(8) && v == 2);
}

/* A read that began before a write and loads after (parts of) it is rejected, whichever
 * part of the write fell between its steps. */
static void test_overlapping_read_is_rejected(void **state)
{
	(void)state;
	for (int where = 0; where < 3; where++) {
		struct fw_seqpair p;
		uint32_t s;
		int64_t a, b;

		fw_seqpair_init(&p);
		fw_seqpair_write(&p, pair_a(1), -pair_a(1));
		assert_int_equal(fw_seqpair_read_begin(&p, &s), 0);
		fw_seqpair_write_begin(&p);
		if (where >= 1)
			fw_seqpair_write_store(&p, pair_a(0xfffffff0u), -pair_a(0xfffffff0u));
		if (where >= 2)
			fw_seqpair_write_end(&p);
		fw_seqpair_read_load(&p, &a, &b);
		assert_int_equal(fw_seqpair_read_validate(&p, s), -PL_EBUSY);
	}
}

/* A torn store, half by half, as a 32-bit core makes it: a reader between the halves sees
 * a pair that was never written, and the sequence check catches it. */
static void test_half_store_is_caught(void **state)
{
	struct fw_seqpair p;
	uint32_t s;
	int64_t a, b;

	(void)state;
	fw_seqpair_init(&p);
	fw_seqpair_write(&p, pair_a(0x0000ffffu), -pair_a(0x0000ffffu));
	assert_int_equal(fw_seqpair_read_begin(&p, &s), 0);
	fw_seqpair_write_begin(&p);
	atomic_store(&p.half[0], 0x00010000u); /* the low half of the next value only */
	fw_seqpair_read_load(&p, &a, &b);
	assert_false(consistent(a, b));        /* what a plain reader would take */
	assert_int_equal(fw_seqpair_read_validate(&p, s), -PL_EBUSY);
}

struct race {
	struct fw_seqpair p;
	atomic_int stop;
	atomic_ulong writes;
};

static void *writer(void *arg)
{
	struct race *r = arg;
	uint32_t k = 1;

	while (!atomic_load(&r->stop)) {
		/* values whose halves all change at once: 0x0000ffff -> 0x00010000 style */
		k = k * 1664525u + 1013904223u;
		fw_seqpair_write(&r->p, pair_a(k), -pair_a(k));
		atomic_fetch_add(&r->writes, 1);
	}
	return NULL;
}

static double seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_two_threads_never_torn(void **state)
{
	static struct race r;
	pthread_t w;
	unsigned long checked = 0, busy = 0, naive = 0, naive_torn = 0;
	double t0;

	(void)state;
	fw_seqpair_init(&r.p);
	atomic_store(&r.stop, 0);
	atomic_store(&r.writes, 0);
	assert_int_equal(pthread_create(&w, NULL, writer, &r), 0);
	t0 = seconds();
	/* at least 1 s and 200000 checked reads (a busy machine may starve the writer: then
	 * up to 20 s), and on until the unchecked loads have shown a tear, up to 5 s */
	while (seconds() - t0 < 20.0) {
		int64_t a, b;

		for (int i = 0; i < 1000; i++) {
			if (fw_seqpair_read(&r.p, &a, &b, NULL) == 0) {
				checked++;
				assert_true(consistent(a, b));
			} else {
				busy++;
			}
			fw_seqpair_read_load(&r.p, &a, &b); /* the unchecked load */
			naive++;
			naive_torn += !consistent(a, b);
		}
		if (seconds() - t0 >= 1.0 && checked >= 200000 && atomic_load(&r.writes) >= 10000 &&
		    (naive_torn > 0 || seconds() - t0 >= 5.0))
			break;
	}
	atomic_store(&r.stop, 1);
	pthread_join(w, NULL);
	printf("# %lu checked reads, none torn (%lu busy); %lu writes; unchecked loads: %lu of "
	       "%lu torn\n", checked, busy, (unsigned long)atomic_load(&r.writes), naive_torn,
	       naive);
	assert_true(checked >= 200000);
	assert_true(atomic_load(&r.writes) >= 10000);
	if (naive_torn == 0)
		skip(); /* the two threads never overlapped: the race was not exercised */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_refuses_a_write_in_progress),
		cmocka_unit_test(test_overlapping_read_is_rejected),
		cmocka_unit_test(test_half_store_is_caught),
		cmocka_unit_test(test_two_threads_never_torn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
