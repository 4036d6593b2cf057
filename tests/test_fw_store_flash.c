/* SPDX-License-Identifier: MIT */
/*
 * The firmware's outbox (ports/esp32/main/logic/fw_store*.c). The behaviour every fw_store
 * must have - first in first out, peek/drop/quarantine, anchors, the meter state, ENOSPC
 * without losing anything - is checked on both implementations, the RAM store and the flash
 * store over the fake NOR flash (tests/fake_nor.h). Then what only the flash store does:
 * everything survives a reboot, the anchor table keeps the newest boots, a flash failure is
 * recovered by the next call, and how many intervals the 256 KB "pllog" partition holds.
 *
 * The heart is the power-cut test: the firmware's store workload (interval records put in
 * with their register, batches peeked and dropped as after a 2xx, a quarantine now and then,
 * anchors, reboots) is run once to count its flash steps, then replayed with the power cut at
 * each step in turn. After each cut the store is opened again and must hold exactly the
 * records whose append returned 0 and that were not dropped, once each, in order, with their
 * bytes (the record whose append was cut may be there or not; a cut drop counts or not, as a
 * whole), the last meter state saved (or the one being saved at the cut) and the anchors; and
 * then keep working through more of the workload and another reboot.
 *
 * PL_VALGRIND (set by scripts/valgrind-tests.sh) or PL_FLASHLOG_QUICK: every 16th cut point.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_nor.h"
#include "fw_store.h"
#include "fw_store_flashlog.h"
#include "powerlogger/common.h"

static int quick(void)
{
	return getenv("PL_VALGRIND") != NULL || getenv("PL_FLASHLOG_QUICK") != NULL;
}

/* A record that says where it came from: id in pulses, the rest derived from it. */
static struct fw_record make_record(uint32_t id, uint32_t boot, int64_t reg)
{
	struct fw_record r;

	memset(&r, 0, sizeof(r));
	r.rec.start_us = (int64_t)id * 20000000;
	r.rec.length_s = 20;
	r.rec.pulses = id;
	r.rec.flags = id % 3;
	r.rec.energy_uwh = (int64_t)id * 1000;
	r.rec.avg_mw = (int64_t)id * 180;
	r.rec.peak_mw = (int64_t)id * 7;
	r.rec.register_uwh = reg;
	r.boot = boot;
	r.stamped = (uint8_t)(id & 1);
	return r;
}

/* ---- the two implementations behind one rig ---- */

struct rig {
	int flash;                 /* 0: RAM store, 1: flash store */
	struct fw_store s;
	struct fw_store_ram ram;
	struct fw_record storage[64];
	struct fw_store_flashlog fs;
	struct fake f;
	struct pl_flash fl;
};

static uint32_t rig_quarantined(const struct rig *r)
{
	return r->flash ? r->fs.quarantined : r->ram.quarantined;
}

static const char *rig_why(const struct rig *r, size_t slot)
{
	return r->flash ? r->fs.q_why[slot] : r->ram.q_why[slot];
}

static const struct fw_record *rig_q(const struct rig *r, size_t slot)
{
	return r->flash ? &r->fs.q[slot] : &r->ram.q[slot];
}

/* RAM: 64 records. Flash: 3 sectors of 4 KiB (two of data, one held back by the log). */
static struct rig *rig_new(int flash)
{
	struct rig *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	r->flash = flash;
	if (flash) {
		fake_init(&r->f, &r->fl, 4096, 3, 4);
		assert_int_equal(fw_store_flashlog_open(&r->fs, &r->fl, &r->s), 0);
		assert_int_equal(r->fs.log.formatted, 1);
	} else {
		fw_store_ram_init(&r->ram, r->storage, 64, &r->s);
	}
	return r;
}

static void rig_reboot(struct rig *r)
{
	assert_true(r->flash);
	memset(&r->s, 0, sizeof(r->s));
	assert_int_equal(fw_store_flashlog_open(&r->fs, &r->fl, &r->s), 0);
	assert_int_equal(r->fs.log.formatted, 0);
}

static void rig_free(struct rig *r)
{
	if (r->flash) {
		assert_int_equal(r->f.misuse, 0);
		fake_free(&r->f);
	}
	free(r);
}

static int setup_ram(void **state)
{
	*state = rig_new(0);
	return 0;
}

static int setup_flash(void **state)
{
	*state = rig_new(1);
	return 0;
}

static int teardown(void **state)
{
	rig_free(*state);
	return 0;
}

/* Peeks everything and checks it is records first..first+n-1 (ids). */
static void expect_ids(struct fw_store *s, uint32_t first, size_t n)
{
	struct fw_record out[80];
	size_t got, i;

	assert_int_equal(fw_store_count(s), n);
	assert_int_equal(fw_store_peek(s, out, 80, &got), 0);
	assert_int_equal(got, n);
	for (i = 0; i < n; i++) {
		struct fw_record want = make_record(first + (uint32_t)i, 1, 0);

		want.rec.register_uwh = out[i].rec.register_uwh;
		assert_memory_equal(&out[i], &want, sizeof(want));
	}
}

/* ---- behaviour every store has ---- */

static void test_fifo(void **state)
{
	struct rig *r = *state;
	struct fw_record out[8], rec;
	size_t got;
	uint32_t i;

	assert_int_equal(fw_store_count(&r->s), 0);
	assert_int_equal(fw_store_peek(&r->s, out, 8, &got), 0);
	assert_int_equal(got, 0);
	assert_int_equal(fw_store_drop(&r->s, 1), -PL_EINVAL);
	assert_int_equal(fw_store_drop(&r->s, 0), 0);
	for (i = 0; i < 10; i++) {
		rec = make_record(i, 1, 0);
		assert_int_equal(fw_store_append(&r->s, &rec), 0);
	}
	expect_ids(&r->s, 0, 10);
	/* peek does not remove, and honours cap */
	assert_int_equal(fw_store_peek(&r->s, out, 3, &got), 0);
	assert_int_equal(got, 3);
	assert_int_equal(out[2].rec.pulses, 2);
	assert_int_equal(fw_store_drop(&r->s, 3), 0);
	expect_ids(&r->s, 3, 7);
	assert_int_equal(fw_store_drop(&r->s, 8), -PL_EINVAL);
	expect_ids(&r->s, 3, 7);
	for (i = 10; i < 15; i++) {
		rec = make_record(i, 1, 0);
		assert_int_equal(fw_store_append(&r->s, &rec), 0);
	}
	expect_ids(&r->s, 3, 12);
	assert_int_equal(fw_store_drop(&r->s, 12), 0);
	expect_ids(&r->s, 15, 0);
}

static void test_quarantine(void **state)
{
	struct rig *r = *state;
	struct fw_record rec;
	uint32_t i;

	assert_int_equal(fw_store_quarantine(&r->s, "nothing"), -PL_EINVAL);
	for (i = 0; i < 3; i++) {
		rec = make_record(i, 1, 0);
		assert_int_equal(fw_store_append(&r->s, &rec), 0);
	}
	assert_int_equal(fw_store_quarantine(&r->s, "unable to parse"), 0);
	assert_int_equal(rig_quarantined(r), 1);
	assert_string_equal(rig_why(r, 0), "unable to parse");
	assert_int_equal(rig_q(r, 0)->rec.pulses, 0);
	expect_ids(&r->s, 1, 2);
	assert_int_equal(fw_store_quarantine(&r->s, NULL), 0);
	assert_string_equal(rig_why(r, 1), "");
	expect_ids(&r->s, 2, 1);
}

static void test_anchor_and_meter(void **state)
{
	struct rig *r = *state;
	struct fw_time_anchor a[FW_STORE_FLASH_ANCHORS];
	struct fw_meter_state m = {.register_uwh = 12345, .boot = 3}, got;
	size_t n;

	assert_int_equal(fw_store_anchors(&r->s, a, FW_STORE_FLASH_ANCHORS, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(fw_store_anchor(&r->s, 3, INT64_C(1700000000000000)), 0);
	assert_int_equal(fw_store_anchor(&r->s, 4, INT64_C(1700000000500000)), 0);
	assert_int_equal(fw_store_anchors(&r->s, a, FW_STORE_FLASH_ANCHORS, &n), 0);
	assert_true(n >= 1);
	assert_int_equal(a[n - 1].boot, 4); /* the newest last */
	assert_true(a[n - 1].offset_us == INT64_C(1700000000500000));

	assert_int_equal(fw_store_load_meter(&r->s, &got), -PL_ENOENT);
	assert_int_equal(fw_store_save_meter(&r->s, &m), 0);
	m.register_uwh = 20000;
	assert_int_equal(fw_store_save_meter(&r->s, &m), 0);
	assert_int_equal(fw_store_load_meter(&r->s, &got), 0);
	assert_memory_equal(&got, &m, sizeof(m));
}

/* put_record saves the register with the record; restore gives it back with the anchors. */
static void test_put_and_restore(void **state)
{
	struct rig *r = *state;
	struct fw_record rec = make_record(7, 5, 777000);
	struct fw_meter_state m;
	struct fw_time t;

	fw_time_init(&t, 6);
	assert_int_equal(fw_store_restore(&r->s, &t, &m), 0);
	assert_int_equal(m.boot, 0);
	assert_true(m.register_uwh == 0);
	assert_int_equal(t.nold, 0);

	assert_int_equal(fw_store_put_record(&r->s, &rec), 0);
	assert_int_equal(fw_store_anchor(&r->s, 5, INT64_C(1736319597000000)), 0);
	assert_int_equal(fw_store_count(&r->s), 1);
	if (r->flash)
		rig_reboot(r);
	fw_time_init(&t, 6);
	assert_int_equal(fw_store_restore(&r->s, &t, &m), 0);
	assert_int_equal(m.boot, 5);
	assert_true(m.register_uwh == 777000);
	assert_int_equal(t.nold, 1);
	assert_int_equal(t.old[0].boot, 5);
	/* the unstamped record of boot 5 can now be stamped */
	rec.stamped = 0;
	assert_int_equal(fw_time_stamp(&t, &rec), FW_STAMP_OK);
}

/* Full: -PL_ENOSPC and nothing lost; a drop makes room. */
static void test_full(void **state)
{
	struct rig *r = *state;
	struct fw_record rec;
	uint32_t n = 0;
	int rc;

	for (;;) {
		rec = make_record(n, 1, 0);
		rc = fw_store_append(&r->s, &rec);
		if (rc == -PL_ENOSPC)
			break;
		assert_int_equal(rc, 0);
		n++;
		assert_true(n < 1000);
	}
	printf("%s store full at %u records\n", r->flash ? "flash (3 x 4 KiB)" : "RAM (64)", n);
	assert_int_equal(fw_store_count(&r->s), n);
	if (r->flash)
		rig_reboot(r);
	assert_int_equal(fw_store_count(&r->s), n);
	rec = make_record(n, 1, 0);
	assert_int_equal(fw_store_append(&r->s, &rec), -PL_ENOSPC);
	/* a 2xx for the whole batch in slices of 32, as the delivery does */
	while (fw_store_count(&r->s) > 0) {
		size_t k = fw_store_count(&r->s) < 32 ? fw_store_count(&r->s) : 32;

		assert_int_equal(fw_store_drop(&r->s, k), 0);
	}
	assert_int_equal(fw_store_append(&r->s, &rec), 0);
	expect_ids(&r->s, n, 1);
}

/* ---- what only the flash store does ---- */

/* Records, meter state and anchors survive reboots and reclaims, many laps of the ring. */
static void test_flash_survives_laps(void **state)
{
	struct rig *r = *state;
	struct fw_time_anchor a[FW_STORE_FLASH_ANCHORS];
	struct fw_meter_state m;
	struct fw_record out[4];
	uint32_t id = 0, first = 0, boot;
	int64_t reg = 0;
	size_t n, got;

	for (boot = 1; boot <= 40; boot++) {
		int i;

		if (boot % 3 != 0) /* some boots never see the network time */
			assert_int_equal(fw_store_anchor(&r->s, boot, (int64_t)boot * 1000), 0);
		for (i = 0; i < 30; i++) {
			struct fw_record rec;

			reg += 1000 + i;
			rec = make_record(id++, 1, reg);
			assert_int_equal(fw_store_put_record(&r->s, &rec), 0);
			if (i % 4 == 3) { /* deliver all but the newest */
				n = fw_store_count(&r->s) - 1;
				assert_int_equal(fw_store_drop(&r->s, n), 0);
				first += (uint32_t)n;
			}
		}
		rig_reboot(r);
		assert_int_equal(fw_store_count(&r->s), id - first);
		assert_int_equal(fw_store_peek(&r->s, out, 4, &got), 0);
		assert_int_equal(out[0].rec.pulses, first);
		assert_int_equal(fw_store_load_meter(&r->s, &m), 0);
		assert_true(m.register_uwh == reg);
	}
	/* the newest nine boots that had an anchor, oldest first */
	assert_int_equal(fw_store_anchors(&r->s, a, FW_STORE_FLASH_ANCHORS, &n), 0);
	assert_int_equal(n, FW_STORE_FLASH_ANCHORS);
	assert_int_equal(a[0].boot, 28);
	assert_int_equal(a[n - 1].boot, 40);
	assert_true(r->f.erases[0] > 5);
}

/* A failing flash: -PL_EIO, then the next call mounts again and carries on. */
static void test_flash_eio(void **state)
{
	struct rig *r = *state;
	struct fw_record rec = make_record(1, 1, 0), out[2];
	size_t got;

	assert_int_equal(fw_store_append(&r->s, &rec), 0);
	r->f.dead = 1;
	rec = make_record(2, 1, 0);
	assert_int_equal(fw_store_append(&r->s, &rec), -PL_EIO);
	assert_int_equal(fw_store_peek(&r->s, out, 2, &got), -PL_EIO);
	assert_int_equal(got, 0);
	r->f.dead = 0;
	assert_int_equal(fw_store_append(&r->s, &rec), 0);
	expect_ids(&r->s, 1, 2);
	assert_int_equal(fw_store_flashlog_open(NULL, &r->fl, &r->s), -PL_EINVAL);
	{
		struct pl_flash bad = r->fl;

		bad.sector_count = 2;
		assert_int_equal(fw_store_flashlog_open(&r->fs, &bad, &r->s), -PL_EINVAL);
	}
}

/* How long the device's "pllog" partition (64 x 4 KiB) bridges an outage at 20 s intervals. */
static void test_flash_capacity(void **state)
{
	struct fake f;
	struct pl_flash fl;
	struct fw_store_flashlog fs;
	struct fw_store s;
	uint32_t n = 0;
	int64_t reg = 0;

	(void)state;
	fake_init(&f, &fl, 4096, 64, 4);
	assert_int_equal(fw_store_flashlog_open(&fs, &fl, &s), 0);
	for (;;) {
		struct fw_record rec;

		reg += 1000;
		rec = make_record(n, 1, reg);
		if (fw_store_put_record(&s, &rec) != 0)
			break;
		n++;
	}
	printf("flash store capacity: %u interval records (each with its register) in 64 x 4 KiB "
	       "= %.1f h at 20 s intervals\n", n, n * 20.0 / 3600);
	assert_true(n > 1500);
	fake_free(&f);
}

/* ---- the power-cut test ---- */

enum { PEND_NONE, PEND_APPEND, PEND_DROP, PEND_METER, PEND_ANCHOR, PEND_OPEN };

struct model {
	struct fw_record *r;       /* records waiting, oldest first (r[head..n)) */
	size_t head, n, cap;
	uint32_t next_id, boot;
	int64_t reg;               /* the register the meter is at */
	struct fw_meter_state meter;  /* the last save that returned 0 */
	int has_meter;
	struct fw_time_anchor anchor; /* the last anchor saved */
	int has_anchor;
	int pend;                  /* what the power cut interrupted */
	struct fw_record pend_rec;
	size_t pend_drop;
	struct fw_meter_state pend_meter;
	struct fw_time_anchor pend_anchor;
	struct fw_store_flashlog fs;
	struct fw_store s;
	long enospc, drops, reboots;
	int stingy;                /* deliver seldom: the flash runs full */
};

static void model_push(struct model *m, const struct fw_record *r)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 256;
		m->r = realloc(m->r, m->cap * sizeof(*m->r));
		assert_non_null(m->r);
	}
	m->r[m->n++] = *r;
}

/* The store must hold exactly the model; the cut operation may have happened or not. */
static void check_store(struct model *m)
{
	size_t want = m->n - m->head, got, i, extra = 0;
	struct fw_record *out = malloc((want + 2) * sizeof(*out));
	struct fw_meter_state ms;
	struct fw_time_anchor a[FW_STORE_FLASH_ANCHORS];
	size_t na;

	assert_non_null(out);
	assert_int_equal(fw_store_peek(&m->s, out, want + 2, &got), 0);
	if (m->pend == PEND_DROP && got + m->pend_drop == want) {
		m->head += m->pend_drop; /* the cut drop's ack made it */
		want -= m->pend_drop;
	}
	if (m->pend == PEND_APPEND && got == want + 1) {
		extra = 1;
		assert_memory_equal(&out[want], &m->pend_rec, sizeof(m->pend_rec));
	}
	if (got != want + extra)
		fail_msg("after the cut: %zu records, want %zu (pending op %d)", got, want, m->pend);
	for (i = 0; i < want; i++)
		if (memcmp(&out[i], &m->r[m->head + i], sizeof(out[i])) != 0)
			fail_msg("record %zu of %zu: id %u, want %u", i, want, out[i].rec.pulses,
				 m->r[m->head + i].rec.pulses);
	if (extra)
		model_push(m, &m->pend_rec);
	assert_int_equal(fw_store_count(&m->s), got);
	free(out);

	if (fw_store_load_meter(&m->s, &ms) == 0) {
		if (m->pend == PEND_METER && memcmp(&ms, &m->pend_meter, sizeof(ms)) == 0) {
			m->meter = ms;
			m->has_meter = 1;
		}
		assert_true(m->has_meter);
		assert_memory_equal(&ms, &m->meter, sizeof(ms));
	} else {
		assert_false(m->has_meter);
	}
	assert_int_equal(fw_store_anchors(&m->s, a, FW_STORE_FLASH_ANCHORS, &na), 0);
	if (na > 0 && m->pend == PEND_ANCHOR &&
	    memcmp(&a[na - 1], &m->pend_anchor, sizeof(a[0])) == 0) {
		m->anchor = m->pend_anchor;
		m->has_anchor = 1;
	}
	if (m->has_anchor) {
		assert_true(na > 0);
		assert_memory_equal(&a[na - 1], &m->anchor, sizeof(a[0]));
	} else {
		assert_int_equal(na, 0);
	}
	m->pend = PEND_NONE;
}

/* A reboot: the boot counter moves on, the store is opened again (the recovery). */
static int reboot(struct model *m, const struct pl_flash *fl)
{
	int rc;

	if (m->pend == PEND_NONE) /* else the recovery: what the cut hit is still pending */
		m->pend = PEND_OPEN;
	m->boot++;
	rc = fw_store_flashlog_open(&m->fs, fl, &m->s);
	if (rc == -PL_EIO)
		return 1;
	assert_int_equal(rc, 0);
	m->reboots++;
	check_store(m);
	return 0;
}

/* One step of the firmware's store workload; returns 1 when the power failed in it. */
static int step(struct model *m, const struct pl_flash *fl, uint64_t *rng)
{
	uint32_t r = (uint32_t)(rng_next(rng) % 100);
	int rc;

	if (r < (m->stingy ? 75u : 55u)) {
		/* an interval closes: the register, then the record (fw_store_put_record) */
		struct fw_record rec;
		struct fw_meter_state ms;

		if (rng_next(rng) % 8 != 0) /* some intervals are idle: the same register */
			m->reg += (int64_t)(rng_next(rng) % 50000);
		rec = make_record(m->next_id++, m->boot, m->reg);
		ms = (struct fw_meter_state){.register_uwh = m->reg, .boot = m->boot};
		m->pend = PEND_METER;
		m->pend_meter = ms;
		rc = fw_store_save_meter(&m->s, &ms);
		if (rc == -PL_EIO)
			return 1;
		if (rc == -PL_ENOSPC) {
			m->enospc++;
			m->pend = PEND_NONE;
			return 0;
		}
		assert_int_equal(rc, 0);
		m->meter = ms;
		m->has_meter = 1;
		m->pend = PEND_APPEND;
		m->pend_rec = rec;
		rc = fw_store_append(&m->s, &rec);
		if (rc == -PL_EIO)
			return 1;
		m->pend = PEND_NONE;
		if (rc == -PL_ENOSPC) {
			m->enospc++;
			return 0;
		}
		assert_int_equal(rc, 0);
		model_push(m, &rec);
	} else if (r < 90) {
		/* a batch goes out and is answered 2xx (or a part of it, after a split) */
		struct fw_record out[32];
		size_t got, k, i, cap = (size_t)(rng_next(rng) % (m->stingy ? 3 : 32)) + 1;

		rc = fw_store_peek(&m->s, out, cap, &got);
		assert_int_equal(rc, 0);
		assert_int_equal(got, (m->n - m->head) < cap ? (m->n - m->head) : cap);
		for (i = 0; i < got; i++)
			assert_memory_equal(&out[i], &m->r[m->head + i], sizeof(out[i]));
		if (got == 0)
			return 0;
		k = rng_next(rng) % 4 == 0 ? (size_t)(rng_next(rng) % got) + 1 : got;
		m->pend = PEND_DROP;
		m->pend_drop = k;
		if (r < 87)
			rc = fw_store_drop(&m->s, k);
		else /* a line the server refuses for good */
			rc = (m->pend_drop = 1, fw_store_quarantine(&m->s, "unable to parse"));
		if (rc == -PL_EIO)
			return 1;
		assert_int_equal(rc, 0);
		m->head += m->pend_drop;
		m->drops++;
		m->pend = PEND_NONE;
	} else if (r < 94) {
		/* SNTP: this boot's anchor */
		struct fw_time_anchor a = {.boot = m->boot,
					   .offset_us = (int64_t)(rng_next(rng) % 1000000000)};

		m->pend = PEND_ANCHOR;
		m->pend_anchor = a;
		rc = fw_store_anchor(&m->s, a.boot, a.offset_us);
		if (rc == -PL_EIO)
			return 1;
		m->pend = PEND_NONE;
		if (rc == -PL_ENOSPC) {
			m->enospc++;
			return 0;
		}
		assert_int_equal(rc, 0);
		m->anchor = a;
		m->has_anchor = 1;
	} else {
		return reboot(m, fl);
	}
	return 0;
}

static int model_start(struct model *m, const struct pl_flash *fl, int stingy)
{
	int rc;

	memset(m, 0, sizeof(*m));
	m->stingy = stingy;
	m->boot = 1;
	m->pend = PEND_OPEN;
	rc = fw_store_flashlog_open(&m->fs, fl, &m->s);
	if (rc == -PL_EIO)
		return 1;
	assert_int_equal(rc, 0);
	m->pend = PEND_NONE;
	return 0;
}

static int workload(struct model *m, const struct pl_flash *fl, uint64_t seed, int ops)
{
	uint64_t rng = seed;
	int i;

	for (i = 0; i < ops; i++)
		if (step(m, fl, &rng))
			return 1;
	return 0;
}

struct cut_result {
	long steps, cuts, enospc, drops, reboots;
};

static struct cut_result cut_everywhere(uint32_t S, uint32_t N, uint64_t seed, int ops,
					long stride, int stingy)
{
	struct cut_result res = {0};
	struct pl_flash fl;
	struct fake f;
	struct model m;
	long k;

	/* the reference run, without a cut, counts the steps */
	fake_init(&f, &fl, S, N, 4);
	assert_int_equal(model_start(&m, &fl, stingy), 0);
	assert_int_equal(workload(&m, &fl, seed, ops), 0);
	check_store(&m);
	assert_int_equal(f.misuse, 0);
	res.steps = f.steps;
	res.enospc = m.enospc;
	res.drops = m.drops;
	res.reboots = m.reboots;
	free(m.r);
	fake_free(&f);

	for (k = 0; k < res.steps; k += stride) {
		fake_init(&f, &fl, S, N, 4);
		f.cut_rng = seed ^ ((uint64_t)k * 0x2545F4914F6CDD1Du) ^ 1;
		f.cut_at = k;
		if (!model_start(&m, &fl, stingy) && !workload(&m, &fl, seed, ops))
			fail_msg("cut at step %ld of %ld never happened", k, res.steps);
		/* power is back: the firmware boots */
		f.dead = 0;
		f.cut_at = -1;
		assert_int_equal(reboot(&m, &fl), 0);
		/* and keeps working: more of the workload, another reboot, the same checks */
		assert_int_equal(workload(&m, &fl, seed ^ 0xABCDEF, 60), 0);
		assert_int_equal(reboot(&m, &fl), 0);
		assert_int_equal(f.misuse, 0);
		res.cuts++;
		free(m.r);
		fake_free(&f);
	}
	return res;
}

static void test_power_cuts(void **state)
{
	long stride = quick() ? 16 : 1;
	struct cut_result a, b;

	(void)state;
	/* ESP32-like sectors (4 KiB, 4-byte program unit), a small ring that laps several times */
	a = cut_everywhere(4096, 4, 0x5EED1u, 400, stride, 0);
	/* the network stays down a long time: the flash runs full, ENOSPC, then drains */
	b = cut_everywhere(pl_flashlog_min_sector(4), 3, 0x5EED2u, 260, stride, 1);
	printf("fw_store power cuts: %ld cut points tested (%ld + %ld of %ld + %ld flash steps; "
	       "%ld + %ld batches dropped, %ld + %ld reboots in the reference runs), every one "
	       "recovered exactly; ENOSPC seen %ld/%ld times\n",
	       a.cuts + b.cuts, a.cuts, b.cuts, a.steps, b.steps, a.drops, b.drops, a.reboots,
	       b.reboots, a.enospc, b.enospc);
	assert_true(b.enospc > 0);
	assert_true(a.reboots > 5);
}

#define BOTH(t) cmocka_unit_test_setup_teardown(t, setup_ram, teardown), \
		cmocka_unit_test_setup_teardown(t, setup_flash, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(test_fifo),
		BOTH(test_quarantine),
		BOTH(test_anchor_and_meter),
		BOTH(test_put_and_restore),
		BOTH(test_full),
		cmocka_unit_test_setup_teardown(test_flash_survives_laps, setup_flash, teardown),
		cmocka_unit_test_setup_teardown(test_flash_eio, setup_flash, teardown),
		cmocka_unit_test(test_flash_capacity),
		cmocka_unit_test(test_power_cuts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
