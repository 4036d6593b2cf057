/* SPDX-License-Identifier: MIT */
/*
 * A lock-free single-producer/single-consumer ring of fixed-size items.
 *
 * The firmware's sampling task (producer) hands interval records to the network task
 * (consumer) through one of these, and a GPIO interrupt hands edges to the sampling task
 * through another: neither side ever waits for the other, so a slow HTTPS request can never
 * stall sampling. The head and tail are C11 atomics: the producer publishes an item with a
 * release store of the head after copying it in, the consumer reads the head with acquire
 * before copying out (and the mirror image for the tail), so no lock and no interrupt masking
 * is needed on a dual-core ESP32 or on the host.
 *
 * Storage is the caller's: cap items of item_size bytes; cap must be a power of two (the ring
 * holds up to cap items: the counters run freely and are masked). Exactly one thread (or ISR)
 * may push and exactly one may pop; fw_ring_push is ISR-safe (no locks, no allocation).
 */
#ifndef FW_RING_H
#define FW_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct fw_ring {
	unsigned char *buf;
	size_t item_size;
	uint32_t mask;         /* cap - 1 */
	atomic_uint_least32_t head; /* items pushed, ever (written by the producer only) */
	atomic_uint_least32_t tail; /* items popped, ever (written by the consumer only) */
	atomic_uint_least32_t dropped; /* pushes refused because the ring was full (producer's) */
};

/*
 * Sets up a ring over storage (cap * item_size bytes, owned by the caller and outliving the
 * ring). Returns 0, or -PL_EINVAL if cap is not a power of two between 2 and 2^31 or
 * item_size is 0. Not thread-safe: call before either side starts.
 */
int fw_ring_init(struct fw_ring *r, void *storage, uint32_t cap, size_t item_size);

/* Producer side: copies one item in. Returns 0, or -PL_ENOSPC when full (the item is not
 * taken, and counted in `dropped`). ISR-safe, and in IRAM on the device (fw_iram.h): safe in
 * an interrupt that runs while a flash write has the cache off. */
int fw_ring_push(struct fw_ring *r, const void *item);

/* Consumer side: copies the oldest item out and removes it. Returns 0, or -PL_ENOENT when
 * the ring is empty. */
int fw_ring_pop(struct fw_ring *r, void *item);

/* Consumer side: copies the oldest item out without removing it; -PL_ENOENT when empty. */
int fw_ring_peek(struct fw_ring *r, void *item);

/* Items in the ring now: exact for the consumer, a lower bound for the producer's view of
 * free space. Either side may call it. */
uint32_t fw_ring_count(struct fw_ring *r);

/* Capacity in items. */
uint32_t fw_ring_cap(const struct fw_ring *r);

#endif
