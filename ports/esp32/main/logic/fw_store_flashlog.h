/* SPDX-License-Identifier: MIT */
/*
 * The outbox on flash: struct fw_store_ops (fw_store.h) over the core's power-fail-safe record
 * log, pl_flashlog (include/powerlogger/flashlog.h), on a flash area the caller describes with
 * a struct pl_flash - the "pllog" partition on the device (ports/esp32/main/store_flash.c), a
 * RAM-backed fake in fwsim and the tests.
 *
 * Flash log record types (0..3 are the log's kept types: the newest of each survives the
 * reclaiming of its sector, so the meter state and anchors are never lost with old records):
 *   FW_FLASH_T_RECORD  0  one struct fw_record (64 bytes): an interval record waiting to be sent
 *   FW_FLASH_T_METER   1  one struct fw_meter_state (16 bytes): the energy register
 *   FW_FLASH_T_ANCHORS 2  struct fw_time_anchor[1..FW_STORE_FLASH_ANCHORS]: the whole table of
 *                         the boots' time anchors, newest boots only, so that the newest record
 *                         alone always holds every anchor still needed
 *   FW_FLASH_T_CURSORS 3  one struct fw_cursors (32 bytes): the store's id and each sink's
 *                         delivery cursor (fw_sinks.h), a flash sequence number
 * drop(n) acknowledges up to the n-th waiting interval record, together with the meter and
 * anchor records that follow it up to the next interval record (they stay readable as kept
 * types), so the sectors behind can be reclaimed. quarantine() keeps the record in RAM for
 * inspection, as the RAM store does, and drops it from flash.
 *
 * The sequence numbers of peek_after and drop_upto are the log's own (they only grow, also
 * across mounts, and start again only when the log is formatted - which loses the cursors
 * with them, so a new store id is made). peek_after starts from a few remembered log cursors
 * (the readers' positions) instead of the oldest record, so that two sinks far apart do not
 * each read the whole backlog at every call. drop_upto acknowledges like drop.
 *
 * Guarantees, from pl_flashlog's, for a power cut at any moment: a record whose append
 * returned 0 is delivered until dropped, once, in order; a drop that returned 0 is durable; the
 * meter state and anchors are the last saved (or the one before, if the cut hit that save).
 * After -PL_EIO the next call mounts the log again (and recounts) before it does anything.
 *
 * RAM: sizeof(struct fw_store_flashlog) is about 1.3 KB (on a 32-bit MCU), static in the
 * caller; the calls need a few hundred bytes of stack (the 240-byte read buffer is in the
 * struct). Not thread-safe: the network task owns it.
 */
#ifndef FW_STORE_FLASHLOG_H
#define FW_STORE_FLASHLOG_H

#include <stddef.h>
#include <stdint.h>

#include "fw_store.h"
#include "fw_time.h"
#include "powerlogger/flashlog.h"

enum fw_flash_type {
	FW_FLASH_T_RECORD = 0,
	FW_FLASH_T_METER = 1,
	FW_FLASH_T_ANCHORS = 2,
	FW_FLASH_T_CURSORS = 3,
};

#define FW_STORE_FLASH_HINTS 4 /* remembered reader positions (peek_after) */

#define FW_STORE_FLASH_ANCHORS (FW_TIME_ANCHORS + 1) /* earlier boots' and this boot's */

struct fw_store_flashlog {
	struct pl_flashlog log;
	struct pl_flash flash;       /* a copy of the caller's, for mounting again after -PL_EIO */
	size_t n;                    /* interval records waiting */
	uint32_t skipped;            /* type-0 records of the wrong size, passed over (never
	                              * written by this code: a different firmware's format) */
	uint32_t quarantined;        /* records quarantined, ever (this boot) */
	struct fw_record q[FW_QUARANTINE_KEEP];
	char q_why[FW_QUARANTINE_KEEP][96];
	struct fw_meter_state meter; /* the newest meter state on flash (valid if has_meter) */
	struct fw_time_anchor anchors[FW_STORE_FLASH_ANCHORS]; /* as on flash, oldest boot first */
	uint32_t nanchors;
	struct fw_cursors cursors;   /* the newest cursors on flash (valid if has_cursors) */
	struct {
		struct pl_flashlog_cursor cur; /* positioned just after the record seq */
		uint32_t seq;                  /* 0: unused */
		uint32_t used;                 /* when last used (hint_clock) */
	} hint[FW_STORE_FLASH_HINTS];
	uint32_t hint_clock;
	uint8_t has_meter;
	uint8_t need_mount;          /* a call failed with -PL_EIO: mount before the next one */
	uint8_t has_cursors;
	uint8_t reserved;
	uint8_t buf[PL_FLASHLOG_MAX_PAYLOAD]; /* read buffer: records of any type pass through */
};

/*
 * Mounts the log on flash (recovery after a power cut: see pl_flashlog_mount; a blank or
 * foreign area is formatted, fs->log.formatted then says so), counts the records waiting and
 * loads the meter state and anchors; fills *s to reach the store. flash is copied; its ctx and
 * functions must stay valid while the store is used. fs is caller-owned storage.
 * Returns 0, -PL_EINVAL (NULL arguments or a geometry pl_flashlog refuses) or -PL_EIO.
 */
int fw_store_flashlog_open(struct fw_store_flashlog *fs, const struct pl_flash *flash,
			   struct fw_store *s);

#endif
