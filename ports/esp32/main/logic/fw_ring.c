/* SPDX-License-Identifier: MIT */
/*
 * The SPSC ring (see fw_ring.h). Each counter has one writer; the other side only reads it.
 * The counters are 32-bit and wrap: head - tail is the fill level in modular arithmetic, which
 * is exact while cap <= 2^31.
 */
#include "fw_ring.h"
#include "fw_iram.h"

#include <string.h>

#include "powerlogger/common.h"

int fw_ring_init(struct fw_ring *r, void *storage, uint32_t cap, size_t item_size)
{
	if (r == NULL || storage == NULL || item_size == 0 || cap < 2 ||
	    cap > (UINT32_C(1) << 31) || (cap & (cap - 1)) != 0)
		return -PL_EINVAL;
	r->buf = storage;
	r->item_size = item_size;
	r->mask = cap - 1;
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 0);
	atomic_init(&r->dropped, 0);
	return 0;
}

/*
 * In IRAM (FW_IRAM): the GPIO edge interrupt pushes while a flash write may have the cache
 * off. So no call out of it: the copy is a loop through a volatile pointer (which the
 * compiler cannot turn into a memcpy() call, and memcpy may be in flash), and `dropped` is
 * a plain load and store rather than a read-modify-write, which on cores without atomic
 * instructions (ESP32-C3) is a library call; the producer is its only writer.
 */
FW_IRAM int fw_ring_push(struct fw_ring *r, const void *item)
{
	uint32_t head = (uint32_t)atomic_load_explicit(&r->head, memory_order_relaxed);
	uint32_t tail = (uint32_t)atomic_load_explicit(&r->tail, memory_order_acquire);
	volatile unsigned char *dst;
	const unsigned char *src = item;

	if (head - tail > r->mask) {
		uint32_t d = (uint32_t)atomic_load_explicit(&r->dropped, memory_order_relaxed);

		atomic_store_explicit(&r->dropped, d + 1, memory_order_relaxed);
		return -PL_ENOSPC;
	}
	dst = r->buf + (size_t)(head & r->mask) * r->item_size;
	for (size_t i = 0; i < r->item_size; i++)
		dst[i] = src[i];
	/* release: the copy above is visible before the consumer can see the new head */
	atomic_store_explicit(&r->head, head + 1, memory_order_release);
	return 0;
}

static int peek_at(struct fw_ring *r, void *item, uint32_t *tail_out)
{
	uint32_t tail = (uint32_t)atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint32_t head = (uint32_t)atomic_load_explicit(&r->head, memory_order_acquire);

	if (head == tail)
		return -PL_ENOENT;
	memcpy(item, r->buf + (size_t)(tail & r->mask) * r->item_size, r->item_size);
	*tail_out = tail;
	return 0;
}

int fw_ring_pop(struct fw_ring *r, void *item)
{
	uint32_t tail;
	int rc = peek_at(r, item, &tail);

	if (rc != 0)
		return rc;
	/* release: the copy out is done before the producer may overwrite the slot */
	atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
	return 0;
}

int fw_ring_peek(struct fw_ring *r, void *item)
{
	uint32_t tail;

	return peek_at(r, item, &tail);
}

uint32_t fw_ring_count(struct fw_ring *r)
{
	uint32_t tail = (uint32_t)atomic_load_explicit(&r->tail, memory_order_acquire);
	uint32_t head = (uint32_t)atomic_load_explicit(&r->head, memory_order_acquire);

	return head - tail;
}

uint32_t fw_ring_cap(const struct fw_ring *r)
{
	return r->mask + 1;
}
