/* SPDX-License-Identifier: MIT */
/*
 * The sequence lock (see fw_seqpair.h). The halves are relaxed atomics, so a read that
 * overlaps a write is not a data race in C11 terms - it is only discarded. The fences give
 * the order that matters: on the writer's side the odd sequence is visible before any half
 * (release fence after it), and the halves before the even one (release store); on the
 * reader's side the halves are loaded after the first sequence (acquire load) and before the
 * second (acquire fence before it).
 */
#include "fw_seqpair.h"

#include "powerlogger/common.h"

static uint32_t lo(int64_t v)
{
	return (uint32_t)((uint64_t)v & UINT32_MAX);
}

static uint32_t hi(int64_t v)
{
	return (uint32_t)((uint64_t)v >> 32);
}

static int64_t join(uint32_t l, uint32_t h)
{
	return (int64_t)(((uint64_t)h << 32) | l);
}

void fw_seqpair_init(struct fw_seqpair *p)
{
	atomic_init(&p->seq, 0);
	for (int i = 0; i < 4; i++)
		atomic_init(&p->half[i], 0);
}

void fw_seqpair_write_begin(struct fw_seqpair *p)
{
	uint32_t s = (uint32_t)atomic_load_explicit(&p->seq, memory_order_relaxed);

	atomic_store_explicit(&p->seq, s + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

void fw_seqpair_write_store(struct fw_seqpair *p, int64_t a, int64_t b)
{
	atomic_store_explicit(&p->half[0], lo(a), memory_order_relaxed);
	atomic_store_explicit(&p->half[1], hi(a), memory_order_relaxed);
	atomic_store_explicit(&p->half[2], lo(b), memory_order_relaxed);
	atomic_store_explicit(&p->half[3], hi(b), memory_order_relaxed);
}

void fw_seqpair_write_end(struct fw_seqpair *p)
{
	uint32_t s = (uint32_t)atomic_load_explicit(&p->seq, memory_order_relaxed);

	atomic_store_explicit(&p->seq, s + 1, memory_order_release);
}

void fw_seqpair_write(struct fw_seqpair *p, int64_t a, int64_t b)
{
	fw_seqpair_write_begin(p);
	fw_seqpair_write_store(p, a, b);
	fw_seqpair_write_end(p);
}

int fw_seqpair_read_begin(const struct fw_seqpair *p, uint32_t *seq)
{
	/* the atomics are only read, but C11's atomic_load wants a non-const pointer */
	struct fw_seqpair *q = (struct fw_seqpair *)(uintptr_t)p;

	*seq = (uint32_t)atomic_load_explicit(&q->seq, memory_order_acquire);
	return (*seq & 1) ? -PL_EBUSY : 0;
}

void fw_seqpair_read_load(const struct fw_seqpair *p, int64_t *a, int64_t *b)
{
	struct fw_seqpair *q = (struct fw_seqpair *)(uintptr_t)p;
	uint32_t h[4];

	for (int i = 0; i < 4; i++)
		h[i] = (uint32_t)atomic_load_explicit(&q->half[i], memory_order_relaxed);
	*a = join(h[0], h[1]);
	*b = join(h[2], h[3]);
}

int fw_seqpair_read_validate(const struct fw_seqpair *p, uint32_t seq)
{
	struct fw_seqpair *q = (struct fw_seqpair *)(uintptr_t)p;

	atomic_thread_fence(memory_order_acquire);
	return (uint32_t)atomic_load_explicit(&q->seq, memory_order_relaxed) == seq ? 0
										    : -PL_EBUSY;
}

int fw_seqpair_read(const struct fw_seqpair *p, int64_t *a, int64_t *b, uint32_t *version)
{
	for (int i = 0; i < FW_SEQPAIR_TRIES; i++) {
		uint32_t s;
		int64_t va, vb;

		if (fw_seqpair_read_begin(p, &s) != 0)
			continue;
		fw_seqpair_read_load(p, &va, &vb);
		if (fw_seqpair_read_validate(p, s) != 0)
			continue;
		*a = va;
		*b = vb;
		if (version != NULL)
			*version = s / 2;
		return 0;
	}
	return -PL_EBUSY;
}
