/* SPDX-License-Identifier: MIT */
/*
 * The firmware's SPSC ring (ports/esp32/main/logic/fw_ring.c): order, full and empty, wrap of
 * the free-running counters, bad arguments, and a producer and a consumer on two threads
 * passing a million items without loss, duplication or reordering.
 */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fw_ring.h"
#include "powerlogger/common.h"

static void test_order_full_empty(void **state)
{
	uint32_t store[8], v;
	struct fw_ring r;

	(void)state;
	assert_int_equal(fw_ring_init(&r, store, 8, sizeof(uint32_t)), 0);
	assert_int_equal(fw_ring_pop(&r, &v), -PL_ENOENT);
	assert_int_equal(fw_ring_peek(&r, &v), -PL_ENOENT);
	for (uint32_t i = 0; i < 8; i++)
		assert_int_equal(fw_ring_push(&r, &i), 0);
	v = 99;
	assert_int_equal(fw_ring_push(&r, &v), -PL_ENOSPC);
	assert_int_equal(atomic_load(&r.dropped), 1);
	assert_int_equal(fw_ring_count(&r), 8);
	assert_int_equal(fw_ring_peek(&r, &v), 0);
	assert_int_equal(v, 0);
	for (uint32_t i = 0; i < 8; i++) {
		assert_int_equal(fw_ring_pop(&r, &v), 0);
		assert_int_equal(v, i);
	}
	assert_int_equal(fw_ring_count(&r), 0);
	assert_int_equal(fw_ring_pop(&r, &v), -PL_ENOENT);
}

static void test_counter_wrap(void **state)
{
	uint64_t store[4], v;
	struct fw_ring r;

	(void)state;
	assert_int_equal(fw_ring_init(&r, store, 4, sizeof(uint64_t)), 0);
	/* start just below the 32-bit wrap of the free-running counters */
	atomic_store(&r.head, UINT32_MAX - 2);
	atomic_store(&r.tail, UINT32_MAX - 2);
	for (uint64_t i = 0; i < 100; i++) {
		assert_int_equal(fw_ring_push(&r, &i), 0);
		if (i % 3 == 0) {
			uint64_t j = i + 1000;
			assert_int_equal(fw_ring_push(&r, &j), 0);
			assert_int_equal(fw_ring_pop(&r, &v), 0);
			assert_int_equal(v, i);
			assert_int_equal(fw_ring_pop(&r, &v), 0);
			assert_int_equal(v, j);
		} else {
			assert_int_equal(fw_ring_count(&r), 1);
			assert_int_equal(fw_ring_pop(&r, &v), 0);
			assert_int_equal(v, i);
		}
	}
}

static void test_bad_init(void **state)
{
	uint8_t store[64];
	struct fw_ring r;

	(void)state;
	assert_int_equal(fw_ring_init(&r, store, 6, 1), -PL_EINVAL);
	assert_int_equal(fw_ring_init(&r, store, 1, 1), -PL_EINVAL);
	assert_int_equal(fw_ring_init(&r, store, 8, 0), -PL_EINVAL);
	assert_int_equal(fw_ring_init(&r, NULL, 8, 1), -PL_EINVAL);
	assert_int_equal(fw_ring_init(&r, store, 64, 1), 0);
	assert_int_equal(fw_ring_cap(&r), 64);
}

#define N_ITEMS 1000000u

struct item {
	uint32_t seq;
	uint32_t check; /* derived from seq: a torn copy would not match */
	uint64_t pad[3];
};

static struct fw_ring shared;
static struct item shared_store[64];

static void *producer(void *arg)
{
	uint64_t *spins = arg;

	for (uint32_t i = 0; i < N_ITEMS; i++) {
		struct item it = {i, i * 2654435761u, {i, ~(uint64_t)i, (uint64_t)i << 20}};

		while (fw_ring_push(&shared, &it) != 0) {
			(*spins)++;
			sched_yield(); /* two cores shared with other tests: let the consumer run */
		}
	}
	return NULL;
}

static void test_two_threads_million(void **state)
{
	pthread_t th;
	uint64_t spins = 0, empty = 0, sum = 0;
	uint32_t expect = 0;
	int bad = 0;

	(void)state;
	assert_int_equal(fw_ring_init(&shared, shared_store, 64, sizeof(struct item)), 0);
	assert_int_equal(pthread_create(&th, NULL, producer, &spins), 0);
	while (expect < N_ITEMS) {
		struct item it;

		if (fw_ring_pop(&shared, &it) != 0) {
			empty++;
			sched_yield();
			continue;
		}
		if (it.seq != expect || it.check != expect * 2654435761u || it.pad[0] != expect ||
		    it.pad[1] != ~(uint64_t)expect || it.pad[2] != (uint64_t)expect << 20)
			bad++;
		sum += it.seq;
		expect++;
	}
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(bad, 0);
	assert_true(sum == (uint64_t)N_ITEMS * (N_ITEMS - 1) / 2);
	assert_int_equal(fw_ring_count(&shared), 0);
	/* the producer saw the ring full at times: items were not dropped but retried */
	/* (the counter is 32 bits wide and wraps, as it may on a device that runs for years) */
	assert_true(atomic_load(&shared.dropped) == (uint32_t)spins);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_full_empty),
		cmocka_unit_test(test_counter_wrap),
		cmocka_unit_test(test_bad_init),
		cmocka_unit_test(test_two_threads_million),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
