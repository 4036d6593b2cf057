/* SPDX-License-Identifier: MIT */
/*
 * A power-fail-safe circular log of small records on raw NOR flash.
 *
 * The firmware keeps its outbox here: interval records go in with pl_flashlog_append(), the
 * network task reads the unacknowledged ones oldest first with a cursor and, once the sink
 * answered 2xx, acknowledges them with pl_flashlog_ack(). The flash area is a ring of equal
 * sectors used strictly in ring order, so every sector is erased once per lap: the wear is even
 * by construction.
 *
 * On flash (little-endian; A = write_align, W = 4 rounded up to A):
 *
 *   sector header (16 bytes): magic "PLFL", epoch (+1 for every sector opened), base_seq (the
 *     next sequence number when the sector was opened), CRC-32 of the 12 bytes before it.
 *   record: length word (W bytes: footprint u16, ~footprint u16), header (type u8, flags u8,
 *     len u16, seq u32, CRC-32 of those 8 bytes and the payload), payload, 0xFF padding to A,
 *     commit word (W bytes: 0xA55ADEC0), then 0xFF up to the footprint.
 *
 * A record is written in three steps: the length word, then header and payload, then the
 * commit word. A length word cut short has more one-bits than any valid pair of a value and its
 * complement, so it is recognised and stepped over; once it is whole, the reader knows where
 * the next record starts whatever became of the rest. A record counts only with its commit word
 * and a matching CRC, so a cut append leaves the record either whole or absent.
 *
 * Acknowledgements are records too (type PL_FLASHLOG_TYPE_ACK, payload = acknowledged seq).
 * A sector is reclaimed (erased) only when every record in it is acknowledged; before that, the
 * newest acknowledgement and the newest record of each kept type (0..PL_FLASHLOG_KEEP_TYPES-1)
 * that live in it are copied to the head (copies carry PL_FLASHLOG_F_COPY, are never delivered
 * and only serve pl_flashlog_last_of_type()). So nothing that matters is ever only in the
 * sector being erased, and an erase cut half-way is simply done again at the next mount.
 *
 * Guarantees, for a power cut at any single program or erase step:
 *   - a record whose append returned 0 is delivered exactly once (until acknowledged), with its
 *     exact bytes, in sequence order; an append that did not return 0 left its record either
 *     whole (then it is delivered like the others) or absent, never corrupt;
 *   - an acknowledgement that returned 0 is durable: those records are never delivered again
 *     (exactly once). A cut ack is either whole or absent;
 *   - sequence numbers only grow, across mounts too;
 *   - unacknowledged records are never overwritten: append returns -PL_ENOSPC instead.
 * One free sector is held back for acknowledgements and the copies made when reclaiming, and
 * data records take at least twice the room of an acknowledgement, so acknowledging a full log
 * always gets through to the point where its oldest sector can be reclaimed. (Only repeated
 * power cuts in the middle of acks of a completely full log could waste that reserve.)
 *
 * RAM: sizeof(struct pl_flashlog) is 132 bytes on a 32-bit MCU and a cursor 16; the calls need
 * about 400 bytes of stack at most (Cortex-M4, -Os); the core never allocates. Not thread-safe: one task owns the log, or callers lock.
 * After any -PL_EIO from the flash the log refuses further work (-PL_EIO) until it is mounted
 * again, because what the failed step left behind is only known after a fresh scan.
 */
#ifndef POWERLOGGER_FLASHLOG_H
#define POWERLOGGER_FLASHLOG_H

#include "powerlogger/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PL_FLASHLOG_MAX_PAYLOAD 240u /* bytes per record */
#define PL_FLASHLOG_KEEP_TYPES 4u    /* types 0..3: their newest record survives reclaiming */
#define PL_FLASHLOG_TYPE_ACK 0xFFu   /* reserved for the log's own acknowledgement records */
#define PL_FLASHLOG_MIN_SECTORS 3u
#define PL_FLASHLOG_MAX_SECTOR (1u << 16) /* footprints and offsets fit 16 bits */

/* Record flags. */
enum pl_flashlog_flags {
	PL_FLASHLOG_F_COPY = 1u << 0, /* a kept record carried forward; not delivered */
};

/*
 * The flash area, given by the caller. Addresses are bytes from the start of the area; the log
 * only programs whole multiples of write_align at aligned addresses, and each location at most
 * once between erases. Each function returns 0 or -PL_EIO.
 *   read:    len bytes at addr into buf.
 *   program: NOR semantics, bits only go from 1 to 0 (the flash ANDs buf into what is there).
 *   erase:   sets every byte of the sector to 0xFF.
 */
struct pl_flash {
	uint32_t sector_size;  /* bytes: a multiple of write_align, at least
	                        * pl_flashlog_min_sector(write_align) (2192 bytes, 2512 for
	                        * write_align 16; 4096 is the usual NOR sector), at most
	                        * PL_FLASHLOG_MAX_SECTOR */
	uint32_t sector_count; /* at least PL_FLASHLOG_MIN_SECTORS */
	uint32_t write_align;  /* program granularity: 1, 2, 4, 8 or 16 bytes */
	int (*read)(void *ctx, uint32_t addr, void *buf, size_t len);
	int (*program)(void *ctx, uint32_t addr, const void *buf, size_t len);
	int (*erase)(void *ctx, uint32_t sector);
	void *ctx;
};

/* What a record is. */
struct pl_flashlog_rec {
	uint32_t seq;  /* unique, increasing in append order; never 0 */
	uint16_t len;  /* payload bytes */
	uint8_t type;  /* the caller's type, 0..254 */
	uint8_t flags; /* enum pl_flashlog_flags */
};

/*
 * State. Plain data (it holds a copy of the struct pl_flash, whose ctx and functions must stay
 * valid while the log is used); fill it with pl_flashlog_mount(). Fields are private.
 */
struct pl_flashlog {
	struct pl_flash fl;
	uint32_t lw;         /* length and commit word size: 4 rounded up to write_align */
	uint32_t ack_fp;     /* footprint of an ack record */
	uint32_t data_min;   /* smallest footprint of any other record */
	uint32_t head, head_off, head_epoch;
	uint32_t tail, nfree;
	uint32_t next_seq, acked;
	uint32_t tail_last_data; /* newest delivered-kind seq in the tail sector; 0 if none */
	uint32_t ack_sector;     /* sector of the newest ack record; UINT32_MAX if none */
	struct {
		uint32_t seq;    /* 0: none in the log */
		uint16_t sector, off, fp, reserved;
	} keep[PL_FLASHLOG_KEEP_TYPES];
	uint32_t mount_erases; /* sectors the last mount had to erase (torn or stale) */
	uint8_t mounted, broken, formatted, reserved;
};

/*
 * Where a reader is. A cursor from pl_flashlog_rewind() stays usable across appends, acks and
 * reclaims (it re-finds its place if its sector was reclaimed); not across mounts.
 */
struct pl_flashlog_cursor {
	uint32_t sector, off, epoch;
	uint32_t last_seq; /* the newest seq delivered through it */
};

/* The smallest sector size the log accepts for this write_align (0 if write_align is invalid). */
uint32_t pl_flashlog_min_sector(uint32_t write_align);

/*
 * Mounts the log on flash at boot: finds the newest consistent ring of sectors, steps over torn
 * records, erases sectors that hold no part of it (torn sector headers, half-erased sectors)
 * and finishes a reclaim that a power cut interrupted. A flash with no log at all is formatted
 * (log->formatted is then 1). Returns 0, -PL_EINVAL (NULL arguments or bad geometry: see
 * struct pl_flash) or -PL_EIO.
 */
int pl_flashlog_mount(struct pl_flashlog *log, const struct pl_flash *flash);

/*
 * Appends a record of type (0..254) with len bytes (at most PL_FLASHLOG_MAX_PAYLOAD) from data.
 * When 0 is returned the record is on flash and survives any power cut; *seq (may be NULL)
 * gets its sequence number. May erase one or more fully acknowledged sectors first.
 * Returns 0, -PL_ENOSPC (the log is full of unacknowledged records: ack some), -PL_EINVAL,
 * -PL_ERANGE (sequence numbers exhausted) or -PL_EIO.
 */
int pl_flashlog_append(struct pl_flashlog *log, uint8_t type, const void *data, size_t len,
		       uint32_t *seq);

/*
 * Acknowledges (durably) every record with seq <= upto_seq: they are never delivered again,
 * also after a power cut. Acknowledging what is already acknowledged does nothing. May erase
 * sectors that became fully acknowledged. Returns 0, -PL_EINVAL (upto_seq beyond the newest
 * record, or log NULL), -PL_ENOSPC (only after repeated cuts, see above) or -PL_EIO.
 */
int pl_flashlog_ack(struct pl_flashlog *log, uint32_t upto_seq);

/* The newest acknowledged sequence number (0 before any acknowledgement). */
uint32_t pl_flashlog_acked(const struct pl_flashlog *log);

/* Sets a cursor to the oldest unacknowledged record. */
void pl_flashlog_rewind(const struct pl_flashlog *log, struct pl_flashlog_cursor *cur);

/*
 * Reads the next unacknowledged record after the cursor, oldest first: *rec gets its header and
 * buf (cap bytes) its payload, and the cursor moves past it. Records that fail their check on
 * the way are skipped, never returned. Returns 0, -PL_ENOENT (no more records now; the cursor
 * stays, and later appends will be found), -PL_ENOSPC (the payload is longer than cap: *rec is
 * filled, the cursor does not move), -PL_EINVAL or -PL_EIO. buf may be overwritten also when
 * no record is returned.
 */
int pl_flashlog_next(const struct pl_flashlog *log, struct pl_flashlog_cursor *cur,
		     struct pl_flashlog_rec *rec, void *buf, size_t cap);

/*
 * The newest record of a type still on flash, acknowledged or not (copies included). For the
 * kept types 0..PL_FLASHLOG_KEEP_TYPES-1 that is the newest ever appended; other types vanish
 * when their sectors are reclaimed. Reads the whole log (a few ms per sector). Returns 0,
 * -PL_ENOENT (none), -PL_ENOSPC (longer than cap; *rec is filled), -PL_EINVAL or -PL_EIO.
 */
int pl_flashlog_last_of_type(const struct pl_flashlog *log, uint8_t type,
			     struct pl_flashlog_rec *rec, void *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
