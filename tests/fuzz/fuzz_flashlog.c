/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: pl_flashlog_mount() on arbitrary flash contents. The image is a real log
 * (records appended, acknowledged and wrapped round a 3-sector ring) with the input's patches
 * written over it, or with the input itself as the whole image (first byte odd). Mounting must
 * never crash or overrun; whatever it then delivers must come in increasing sequence order with
 * sane lengths; and using the log afterwards (append, ack, remount) must never program a byte
 * that is not blank, which is what would corrupt data on a real NOR flash.
 *
 * Input: mode byte, then patches of (offset u16 LE, length u8, bytes).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "powerlogger/flashlog.h"

#define NSECT 3u

static uint8_t mem[NSECT * 4096u], base[NSECT * 4096u];
static uint32_t sector_size;

static int f_read(void *ctx, uint32_t addr, void *buf, size_t len)
{
	(void)ctx;
	if ((uint64_t)addr + len > (uint64_t)sector_size * NSECT)
		abort();
	memcpy(buf, mem + addr, len);
	return 0;
}

static int f_program(void *ctx, uint32_t addr, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	size_t i;

	(void)ctx;
	if ((uint64_t)addr + len > (uint64_t)sector_size * NSECT || addr % 4 || len % 4)
		abort();
	for (i = 0; i < len; i++) {
		if (mem[addr + i] != 0xFF) {
			fprintf(stderr, "program over a written byte at %u\n", (unsigned)(addr + i));
			abort();
		}
		mem[addr + i] &= b[i];
	}
	return 0;
}

static int f_erase(void *ctx, uint32_t sector)
{
	(void)ctx;
	if (sector >= NSECT)
		abort();
	memset(mem + sector * sector_size, 0xFF, sector_size);
	return 0;
}

static struct pl_flash flash = {
	.sector_count = NSECT,
	.write_align = 4,
	.read = f_read,
	.program = f_program,
	.erase = f_erase,
};

/* The base image: a log that wrapped, with acks, kept types and unacknowledged records. */
static void make_base(void)
{
	struct pl_flashlog log;
	uint8_t p[PL_FLASHLOG_MAX_PAYLOAD];
	uint32_t i, seq;

	sector_size = pl_flashlog_min_sector(4);
	flash.sector_size = sector_size;
	memset(mem, 0xFF, sizeof(mem));
	if (pl_flashlog_mount(&log, &flash) != 0)
		abort();
	for (i = 0; i < 120; i++) {
		memset(p, (int)i, sizeof(p));
		if (pl_flashlog_append(&log, (uint8_t)(i % 6), p, 8 + (i * 37) % 120, &seq) != 0)
			abort();
		if (i % 5 == 4 && pl_flashlog_ack(&log, seq - 2) != 0)
			abort();
	}
	memcpy(base, mem, sizeof(mem));
}

static void drain(struct pl_flashlog *log)
{
	struct pl_flashlog_cursor cur;
	struct pl_flashlog_rec rec;
	uint8_t buf[PL_FLASHLOG_MAX_PAYLOAD];
	uint32_t prev = pl_flashlog_acked(log);
	int err, n = 0;

	pl_flashlog_rewind(log, &cur);
	while ((err = pl_flashlog_next(log, &cur, &rec, buf, sizeof(buf))) == 0) {
		if (rec.seq <= prev || rec.len > PL_FLASHLOG_MAX_PAYLOAD ||
		    rec.type == PL_FLASHLOG_TYPE_ACK || (rec.flags & PL_FLASHLOG_F_COPY))
			abort();
		prev = rec.seq;
		if (++n > 100000)
			abort();
	}
	if (err != -PL_ENOENT)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pl_flashlog log;
	struct pl_flashlog_rec rec;
	uint8_t buf[PL_FLASHLOG_MAX_PAYLOAD];
	size_t total, i;
	uint32_t seq;
	int err;

	if (sector_size == 0)
		make_base();
	total = (size_t)sector_size * NSECT;
	if (size == 0)
		return 0;
	if (data[0] & 1) {
		memset(mem, 0xFF, total);
		memcpy(mem, data + 1, size - 1 < total ? size - 1 : total);
	} else {
		memcpy(mem, base, total);
		for (i = 1; i + 3 <= size;) {
			size_t off = ((size_t)data[i] | (size_t)data[i + 1] << 8) % total;
			size_t len = data[i + 2];

			i += 3;
			if (len > size - i)
				len = size - i;
			if (len > total - off)
				len = total - off;
			memcpy(mem + off, data + i, len);
			i += len;
		}
	}

	err = pl_flashlog_mount(&log, &flash);
	if (err != 0)
		abort(); /* the fake never fails, so any contents must mount */
	drain(&log);
	for (i = 0; i < 4; i++)
		(void)pl_flashlog_last_of_type(&log, (uint8_t)i, &rec, buf, sizeof(buf));
	/* it keeps working: append until full or a few, ack, remount */
	memset(buf, 0xA5, sizeof(buf));
	for (i = 0; i < 30; i++) {
		err = pl_flashlog_append(&log, (uint8_t)(i % 5), buf, 16 + i * 7, &seq);
		if (err == -PL_ENOSPC)
			break;
		if (err != 0)
			abort();
		/* an ack may find no room only when damage wasted the reserve */
		if (i % 3 == 2) {
			err = pl_flashlog_ack(&log, seq);
			if (err != 0 && err != -PL_ENOSPC)
				abort();
		}
	}
	if (pl_flashlog_mount(&log, &flash) != 0)
		abort();
	drain(&log);
	return 0;
}
