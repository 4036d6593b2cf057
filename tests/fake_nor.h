/* SPDX-License-Identifier: MIT */
/*
 * A fake NOR flash for the flash log's tests (test_flashlog, test_fw_store_flash): an array in
 * RAM where program ANDs and erase sets 0xFF. It counts erases per sector, flags a program that
 * is unaligned or not onto blank bytes (misuse), and can lose power at a chosen program or
 * erase step (cut_at), leaving that step not done, partly done or done; after it every call
 * fails with -PL_EIO until the test clears `dead`. Header-only, include it after cmocka.h,
 * once per test program.
 */
#ifndef PL_TESTS_FAKE_NOR_H
#define PL_TESTS_FAKE_NOR_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "powerlogger/flashlog.h"

/* A small repeatable generator (xorshift64*), one per purpose. */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

/* ---- the fake flash ---- */

struct fake {
	uint8_t *mem;
	uint32_t S, N, A;
	uint32_t *erases;    /* per sector */
	long steps;          /* program and erase calls so far */
	long cut_at;         /* the step at which power fails; -1 never */
	int dead;            /* power is off: every call fails */
	int misuse;          /* a program that was unaligned or not onto blank bytes */
	uint64_t cut_rng;
};

static int fake_read(void *ctx, uint32_t addr, void *buf, size_t len)
{
	struct fake *f = ctx;

	if (f->dead)
		return -PL_EIO;
	assert_true((uint64_t)addr + len <= (uint64_t)f->S * f->N);
	memcpy(buf, f->mem + addr, len);
	return 0;
}

/* The cut step: done not at all, partly (a prefix, or some of the bits), or fully. */
static int fake_program(void *ctx, uint32_t addr, const void *buf, size_t len)
{
	struct fake *f = ctx;
	const uint8_t *b = buf;
	size_t i, n = len;
	int mode = 3;

	if (f->dead)
		return -PL_EIO;
	assert_true((uint64_t)addr + len <= (uint64_t)f->S * f->N);
	if (addr % f->A != 0 || len % f->A != 0)
		f->misuse = 1;
	for (i = 0; i < len; i++)
		if (f->mem[addr + i] != 0xFF)
			f->misuse = 1;
	if (f->steps++ == f->cut_at) {
		f->dead = 1;
		mode = (int)(rng_next(&f->cut_rng) % 4);
		if (mode == 1)
			n = (size_t)(rng_next(&f->cut_rng) % (len + 1));
	}
	for (i = 0; i < n; i++) {
		uint8_t v = b[i];

		if (mode == 0)
			break;
		if (mode == 2) /* some of the bits that should go to 0 did */
			v |= (uint8_t)rng_next(&f->cut_rng);
		f->mem[addr + i] &= v;
	}
	return f->dead ? -PL_EIO : 0;
}

/* The cut step: nothing, a random mess (bytes erased, kept or random), a prefix, or all. */
static int fake_erase(void *ctx, uint32_t sector)
{
	struct fake *f = ctx;
	uint8_t *p;
	uint32_t i, n;
	int mode = 3;

	if (f->dead)
		return -PL_EIO;
	assert_true(sector < f->N);
	p = f->mem + (size_t)sector * f->S;
	if (f->steps++ == f->cut_at) {
		f->dead = 1;
		mode = (int)(rng_next(&f->cut_rng) % 4);
	}
	if (mode == 3) {
		memset(p, 0xFF, f->S);
		f->erases[sector]++;
	} else if (mode == 2) {
		n = (uint32_t)(rng_next(&f->cut_rng) % f->S);
		memset(p, 0xFF, n);
	} else if (mode == 1) {
		for (i = 0; i < f->S; i++) {
			uint64_t r = rng_next(&f->cut_rng);

			if (r % 3 == 0)
				p[i] = 0xFF;
			else if (r % 3 == 1)
				p[i] = (uint8_t)(r >> 8);
		}
	}
	return f->dead ? -PL_EIO : 0;
}

static void fake_init(struct fake *f, struct pl_flash *fl, uint32_t S, uint32_t N, uint32_t A)
{
	memset(f, 0, sizeof(*f));
	f->S = S;
	f->N = N;
	f->A = A;
	f->mem = malloc((size_t)S * N);
	f->erases = calloc(N, sizeof(*f->erases));
	assert_non_null(f->mem);
	assert_non_null(f->erases);
	memset(f->mem, 0xFF, (size_t)S * N);
	f->cut_at = -1;
	*fl = (struct pl_flash){
		.sector_size = S,
		.sector_count = N,
		.write_align = A,
		.read = fake_read,
		.program = fake_program,
		.erase = fake_erase,
		.ctx = f,
	};
}

static void fake_free(struct fake *f)
{
	free(f->mem);
	free(f->erases);
}

#endif
