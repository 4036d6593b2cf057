/* SPDX-License-Identifier: MIT */
/*
 * A pair of 64-bit values that one task (or callback) writes and another reads, never torn.
 *
 * The ESP32's Xtensa cores (and the RISC-V ones of the C3/C6) store and load 64 bits as two
 * 32-bit halves: a plain (even volatile) int64_t written by the SNTP callback in lwIP's task
 * while the network task reads it can be read as the new low half with the old high half - a
 * clock time off by 71 minutes, or a WiFi reconnect time in the far future or past. Nor does
 * volatile order the two values against each other or against a "new value" flag.
 *
 * This is a sequence lock over four 32-bit C11 atomics: the writer makes the sequence odd,
 * stores the halves, and makes it even again (release); the reader takes the sequence
 * (acquire), the halves, and the sequence again, and accepts them only when both sequences
 * are the same even number. No lock, no interrupt masking, nothing the writer waits for - the
 * SNTP and WiFi callbacks run in other tasks, possibly on the other core, at higher priority.
 * The sequence also tells the reader whether anything was written since it last looked.
 *
 * One writer at a time (the caller makes sure: each instance has one writing task); any
 * number of readers. The steps of a read and a write are exposed for the tests, which
 * interleave them deterministically; the firmware uses fw_seqpair_write and _read.
 */
#ifndef FW_SEQPAIR_H
#define FW_SEQPAIR_H

#include <stdatomic.h>
#include <stdint.h>

#define FW_SEQPAIR_TRIES 64 /* reads that find a write in progress before giving up */

struct fw_seqpair {
	atomic_uint_least32_t seq;     /* odd while a write is in progress; writes = seq / 2 */
	atomic_uint_least32_t half[4]; /* a low, a high, b low, b high */
};

/* Both values 0, nothing written yet (version 0). Before either side starts. */
void fw_seqpair_init(struct fw_seqpair *p);

/* Stores (a, b) as one. The one writer only. */
void fw_seqpair_write(struct fw_seqpair *p, int64_t a, int64_t b);

/*
 * Loads the pair as last written, and in *version (may be NULL) the number of writes so far
 * (a reader that remembers it sees whether a new pair came). Returns 0, or -PL_EBUSY when a
 * write was in progress at each of FW_SEQPAIR_TRIES attempts (nothing is stored; try later).
 */
int fw_seqpair_read(const struct fw_seqpair *p, int64_t *a, int64_t *b, uint32_t *version);

/* The steps. Write: begin, store, end. Read: begin (-PL_EBUSY while a write is in
 * progress), load, then validate (0 if no write overlapped, else -PL_EBUSY). */
void fw_seqpair_write_begin(struct fw_seqpair *p);
void fw_seqpair_write_store(struct fw_seqpair *p, int64_t a, int64_t b);
void fw_seqpair_write_end(struct fw_seqpair *p);
int fw_seqpair_read_begin(const struct fw_seqpair *p, uint32_t *seq);
void fw_seqpair_read_load(const struct fw_seqpair *p, int64_t *a, int64_t *b);
int fw_seqpair_read_validate(const struct fw_seqpair *p, uint32_t seq);

#endif
