/* SPDX-License-Identifier: MIT */
/*
 * Tests of the flash log on a fake NOR flash (tests/fake_nor.h: an array where program ANDs
 * and erase sets 0xFF; it counts erases per sector, refuses a program over bytes that are not
 * blank, and can lose power at a chosen program or erase step, leaving that step partly done).
 *
 * The heart is the power-cut test: a random workload (appends of random sizes and types, reads,
 * acks, remounts) is run once to count its flash steps, then replayed with the power cut at
 * each step k in turn. After each cut the log is mounted and must return exactly the records
 * whose append returned 0 and that are not acknowledged, in order, with their bytes (a record
 * whose append was cut may be there or not; an ack that was cut may count or not), the newest
 * record of each kept type, and then keep working through more appends, acks and a remount.
 *
 * PL_VALGRIND (set by scripts/valgrind-tests.sh) or PL_FLASHLOG_QUICK shortens the runs: every
 * 16th cut point only, and a shorter wear run.
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
#include "powerlogger/flashlog.h"

static int quick(void)
{
	return getenv("PL_VALGRIND") != NULL || getenv("PL_FLASHLOG_QUICK") != NULL;
}

/* ---- the model of what the log must hold ---- */

struct rec {
	uint32_t seq, id;
	uint8_t type;
	uint16_t len;
};

enum { PEND_NONE, PEND_APPEND, PEND_ACK, PEND_MOUNT };

struct model {
	struct rec *r;
	size_t n, cap;
	size_t rd;           /* index of the next record the cursor must return */
	uint32_t acked;      /* the last ack that returned 0 */
	uint32_t next_id;
	int pend;            /* the operation the power cut interrupted */
	struct rec pend_rec;
	uint32_t pend_ack;
	struct pl_flashlog log;
	struct pl_flashlog_cursor cur;
	long enospc;
	int stingy;          /* read and ack little, so the log runs full */
};

static void payload(uint32_t id, uint8_t *buf, size_t len)
{
	uint64_t s = (uint64_t)id * 0x9E3779B97F4A7C15u + 1;
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (uint8_t)(rng_next(&s) >> 32);
}

static void model_push(struct model *m, struct rec r)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 256;
		m->r = realloc(m->r, m->cap * sizeof(*m->r));
		assert_non_null(m->r);
	}
	m->r[m->n++] = r;
}

/* Checks a record read from the log against the model's. */
static void check_rec(const struct pl_flashlog_rec *got, const uint8_t *buf, const struct rec *want)
{
	uint8_t exp[PL_FLASHLOG_MAX_PAYLOAD];

	if (got->type != want->type || got->len != want->len || got->flags != 0 ||
	    (want->seq != 0 && got->seq != want->seq))
		fail_msg("record: got seq %u type %u len %u, want seq %u type %u len %u", got->seq,
			 got->type, got->len, want->seq, want->type, want->len);
	payload(want->id, exp, want->len);
	assert_memory_equal(buf, exp, want->len);
}

static size_t first_unacked(const struct model *m)
{
	size_t i = 0;

	while (i < m->n && m->r[i].seq <= m->acked)
		i++;
	return i;
}

/* The newest of each kept type must be there, acknowledged or not, reclaimed or not. */
static void check_kept(struct model *m)
{
	uint8_t buf[PL_FLASHLOG_MAX_PAYLOAD];
	struct pl_flashlog_rec got;
	uint8_t t;

	for (t = 0; t < PL_FLASHLOG_KEEP_TYPES; t++) {
		const struct rec *want = NULL;
		size_t i;
		int err;

		for (i = m->n; i-- > 0;)
			if (m->r[i].type == t) {
				want = &m->r[i];
				break;
			}
		err = pl_flashlog_last_of_type(&m->log, t, &got, buf, sizeof(buf));
		if (want == NULL) {
			assert_int_equal(err, -PL_ENOENT);
			continue;
		}
		assert_int_equal(err, 0);
		got.flags = 0; /* a copy carries PL_FLASHLOG_F_COPY and a newer seq */
		assert_int_equal(got.type, t);
		assert_int_equal(got.len, want->len);
		assert_true(got.seq >= want->seq);
		{
			uint8_t exp[PL_FLASHLOG_MAX_PAYLOAD];

			payload(want->id, exp, want->len);
			assert_memory_equal(buf, exp, want->len);
		}
	}
}

/*
 * Reads everything from a fresh cursor: exactly the unacknowledged records, in order. With
 * allow_pending, the interrupted append's record may follow them (it then joins the model).
 */
static void check_all(struct model *m, int allow_pending)
{
	uint8_t buf[PL_FLASHLOG_MAX_PAYLOAD];
	struct pl_flashlog_rec got;
	size_t i = first_unacked(m);
	int err;

	pl_flashlog_rewind(&m->log, &m->cur);
	for (;;) {
		err = pl_flashlog_next(&m->log, &m->cur, &got, buf, sizeof(buf));
		if (err == -PL_ENOENT)
			break;
		assert_int_equal(err, 0);
		if (i < m->n) {
			check_rec(&got, buf, &m->r[i]);
			i++;
			continue;
		}
		/* one more: only the interrupted append's record, once */
		if (!allow_pending)
			fail_msg("record seq %u not in the model (model has %zu)", got.seq, m->n);
		m->pend_rec.seq = 0;
		check_rec(&got, buf, &m->pend_rec);
		assert_true(m->n == 0 || got.seq > m->r[m->n - 1].seq);
		m->pend_rec.seq = got.seq;
		model_push(m, m->pend_rec);
		i = m->n;
		allow_pending = 0;
	}
	assert_int_equal(i, m->n);
	m->rd = m->n;
	check_kept(m);
}

/* Power is back: mount, and the log must hold what the model says, give or take the cut op. */
static void recover(struct model *m, struct fake *f, const struct pl_flash *fl)
{
	uint32_t a;

	f->dead = 0;
	f->cut_at = -1;
	assert_int_equal(pl_flashlog_mount(&m->log, fl), 0);
	a = pl_flashlog_acked(&m->log);
	if (a != m->acked && !(m->pend == PEND_ACK && a == m->pend_ack))
		fail_msg("acked %u after the cut, want %u (pending ack %u)", a, m->acked,
			 m->pend == PEND_ACK ? m->pend_ack : 0);
	m->acked = a;
	check_all(m, m->pend == PEND_APPEND);
	m->pend = PEND_NONE;
	assert_int_equal(f->misuse, 0);
}

/*
 * One random operation. Returns 1 when the power failed in it (m->pend says what was going
 * on), else 0.
 */
static int step(struct model *m, const struct pl_flash *fl, uint64_t *rng)
{
	uint8_t buf[PL_FLASHLOG_MAX_PAYLOAD];
	struct pl_flashlog_rec got;
	uint32_t r = (uint32_t)(rng_next(rng) % 100), seq;
	int err;

	if (r < (m->stingy ? 80u : 55u)) {
		struct rec rec = {.id = m->next_id++};
		uint32_t l = (uint32_t)(rng_next(rng) % 100);

		rec.type = (uint8_t)(rng_next(rng) % 6);
		/* mostly interval-record sizes, sometimes tiny or the largest */
		rec.len = (uint16_t)(l < 10 ? rng_next(rng) % 8 :
				     l < 90 ? 40 + rng_next(rng) % 60 :
				     rng_next(rng) % (PL_FLASHLOG_MAX_PAYLOAD + 1));
		payload(rec.id, buf, rec.len);
		m->pend = PEND_APPEND;
		m->pend_rec = rec;
		err = pl_flashlog_append(&m->log, rec.type, buf, rec.len, &seq);
		if (err == -PL_EIO)
			return 1;
		m->pend = PEND_NONE;
		if (err == -PL_ENOSPC) {
			m->enospc++;
			return 0;
		}
		assert_int_equal(err, 0);
		assert_true(m->n == 0 || seq > m->r[m->n - 1].seq);
		rec.seq = seq;
		model_push(m, rec);
	} else if (r < 92) {
		uint32_t cnt = (uint32_t)(rng_next(rng) % (m->stingy ? 3 : 12)) + 1, last = 0;

		while (cnt--) {
			err = pl_flashlog_next(&m->log, &m->cur, &got, buf, sizeof(buf));
			if (err == -PL_ENOENT) {
				assert_int_equal(m->rd, m->n);
				break;
			}
			assert_int_equal(err, 0);
			assert_true(m->rd < m->n);
			check_rec(&got, buf, &m->r[m->rd]);
			last = m->r[m->rd++].seq;
		}
		if (last != 0 && rng_next(rng) % 5 != 0) {
			m->pend = PEND_ACK;
			m->pend_ack = last;
			err = pl_flashlog_ack(&m->log, last);
			if (err == -PL_EIO)
				return 1;
			assert_int_equal(err, 0);
			m->pend = PEND_NONE;
			m->acked = last;
		}
	} else {
		m->pend = PEND_MOUNT;
		err = pl_flashlog_mount(&m->log, fl);
		if (err == -PL_EIO)
			return 1;
		assert_int_equal(err, 0);
		m->pend = PEND_NONE;
		assert_int_equal(pl_flashlog_acked(&m->log), m->acked);
		pl_flashlog_rewind(&m->log, &m->cur);
		m->rd = first_unacked(m);
	}
	return 0;
}

/* The first mount formats the blank flash; returns 1 if the power failed in it. */
static int model_start(struct model *m, const struct pl_flash *fl)
{
	int err;

	memset(m, 0, sizeof(*m));
	m->pend = PEND_MOUNT;
	err = pl_flashlog_mount(&m->log, fl);
	if (err == -PL_EIO)
		return 1;
	assert_int_equal(err, 0);
	m->pend = PEND_NONE;
	pl_flashlog_rewind(&m->log, &m->cur);
	return 0;
}

/* Runs ops operations; returns 1 if the power failed (then the model is at the cut). */
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
	long steps, cuts, enospc;
};

static struct cut_result cut_everywhere(uint32_t S, uint32_t N, uint32_t A, uint64_t seed,
					int ops, long stride, int stingy)
{
	struct cut_result res = {0};
	struct pl_flash fl;
	struct fake f;
	struct model m;
	long k;

	/* the reference run, without a cut, counts the steps */
	fake_init(&f, &fl, S, N, A);
	assert_int_equal(model_start(&m, &fl), 0);
	m.stingy = stingy;
	assert_int_equal(workload(&m, &fl, seed, ops), 0);
	check_all(&m, 0);
	assert_int_equal(f.misuse, 0);
	res.steps = f.steps;
	res.enospc = m.enospc;
	free(m.r);
	fake_free(&f);

	for (k = 0; k < res.steps; k += stride) {
		fake_init(&f, &fl, S, N, A);
		f.cut_rng = seed ^ ((uint64_t)k * 0x2545F4914F6CDD1Du) ^ 1;
		f.cut_at = k;
		if (!model_start(&m, &fl) && (m.stingy = stingy, !workload(&m, &fl, seed, ops)))
			fail_msg("cut at step %ld of %ld never happened", k, res.steps);
		recover(&m, &f, &fl);
		/* the log keeps working: more of everything, a remount, the same checks */
		assert_int_equal(workload(&m, &fl, seed ^ 0xABCDEF, 40), 0);
		assert_int_equal(pl_flashlog_mount(&m.log, &fl), 0);
		assert_int_equal(pl_flashlog_acked(&m.log), m.acked);
		check_all(&m, 0);
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
	struct cut_result a, b, c, d;

	(void)state;
	/* ESP32-like: 4 KiB sectors, 4-byte program unit, a small ring that laps several times */
	a = cut_everywhere(4096, 4, 4, 0x1234567u, 700, stride, 0);
	/* byte-programmable, the smallest ring */
	b = cut_everywhere(pl_flashlog_min_sector(1), 3, 1, 0x7654321u, 400, stride, 0);
	/* 16-byte program unit */
	c = cut_everywhere(pl_flashlog_min_sector(16), 3, 16, 0xC0FFEEu, 300, stride, 0);
	/* a consumer that falls behind: the log runs full, acks come one or two at a time */
	d = cut_everywhere(pl_flashlog_min_sector(4), 3, 4, 0xFEEDu, 400, stride, 1);
	printf("flashlog power cuts: %ld cut points tested (%ld + %ld + %ld + %ld of %ld + %ld + "
	       "%ld + %ld steps), every one recovered exactly; ENOSPC seen %ld/%ld/%ld/%ld times\n",
	       a.cuts + b.cuts + c.cuts + d.cuts, a.cuts, b.cuts, c.cuts, d.cuts, a.steps, b.steps,
	       c.steps, d.steps, a.enospc, b.enospc, c.enospc, d.enospc);
	assert_true(d.enospc > 0);
}

static void test_wear(void **state)
{
	uint8_t buf[PL_FLASHLOG_MAX_PAYLOAD];
	struct pl_flashlog log;
	struct pl_flashlog_cursor cur;
	struct pl_flashlog_rec rec;
	struct pl_flash fl;
	struct fake f;
	uint32_t s, mn = UINT32_MAX, mx = 0, seq;
	long i, n = quick() ? 8000 : 60000;

	(void)state;
	fake_init(&f, &fl, 4096, 8, 4);
	assert_int_equal(pl_flashlog_mount(&log, &fl), 0);
	pl_flashlog_rewind(&log, &cur);
	memset(buf, 0x5A, sizeof(buf));
	for (i = 0; i < n; i++) {
		/* an interval record every time, the energy register (kept type 0) now and then */
		uint8_t type = i % 10 == 0 ? 0 : 4;

		assert_int_equal(pl_flashlog_append(&log, type, buf, 64, &seq), 0);
		if (i % 7 == 6) {
			while (pl_flashlog_next(&log, &cur, &rec, buf, sizeof(buf)) == 0)
				seq = rec.seq;
			assert_int_equal(pl_flashlog_ack(&log, seq), 0);
		}
		if (i % 5000 == 4999) {
			assert_int_equal(pl_flashlog_mount(&log, &fl), 0);
			pl_flashlog_rewind(&log, &cur);
		}
	}
	for (s = 0; s < 8; s++) {
		if (f.erases[s] < mn)
			mn = f.erases[s];
		if (f.erases[s] > mx)
			mx = f.erases[s];
	}
	printf("flashlog wear: %ld appends of 64 bytes over 8 x 4 KiB: erases per sector min %u "
	       "max %u, ratio %.3f\n", n, mn, mx, (double)mx / mn);
	assert_true(mn > 0);
	assert_true(mx - mn <= 1);
	assert_int_equal(pl_flashlog_last_of_type(&log, 0, &rec, buf, sizeof(buf)), 0);
	assert_int_equal(f.misuse, 0);
	fake_free(&f);
}

/* Full of unacknowledged records: ENOSPC, nothing lost; acking one at a time gets room back. */
static void test_full(void **state)
{
	uint8_t buf[PL_FLASHLOG_MAX_PAYLOAD];
	struct pl_flashlog log;
	struct pl_flashlog_cursor cur;
	struct pl_flashlog_rec rec;
	struct pl_flash fl;
	struct fake f;
	uint32_t seq, first = 0, last = 0, n = 0, i, got;
	int err;

	(void)state;
	fake_init(&f, &fl, 4096, 4, 4);
	assert_int_equal(pl_flashlog_mount(&log, &fl), 0);
	for (;;) {
		payload(n, buf, 20);
		err = pl_flashlog_append(&log, 5, buf, 20, &seq);
		if (err == -PL_ENOSPC)
			break;
		assert_int_equal(err, 0);
		if (first == 0)
			first = seq;
		last = seq;
		n++;
	}
	/* data fills all but the free sector held back; 20 bytes take the 48-byte minimum */
	printf("flashlog full: %u records of 20 bytes in 4 x 4 KiB (3 sectors of data)\n", n);
	assert_true(n >= 3 * (4096 - 16) / 48 - 3);
	assert_int_equal(pl_flashlog_append(&log, 5, buf, 0, NULL), -PL_ENOSPC);
	assert_int_equal(pl_flashlog_mount(&log, &fl), 0);
	assert_int_equal(pl_flashlog_append(&log, 5, buf, 20, NULL), -PL_ENOSPC);

	/* the worst case for the reserve: acknowledge each record on its own */
	pl_flashlog_rewind(&log, &cur);
	for (i = 0; i < n; i++) {
		assert_int_equal(pl_flashlog_next(&log, &cur, &rec, buf, sizeof(buf)), 0);
		{
			uint8_t exp[20];

			payload(i, exp, 20);
			assert_memory_equal(buf, exp, 20);
		}
		assert_int_equal(pl_flashlog_ack(&log, rec.seq), 0);
	}
	assert_int_equal(rec.seq, last);
	assert_int_equal(pl_flashlog_next(&log, &cur, &rec, buf, sizeof(buf)), -PL_ENOENT);
	for (got = 0; got < n / 2; got++)
		assert_int_equal(pl_flashlog_append(&log, 5, buf, 20, NULL), 0);
	assert_int_equal(pl_flashlog_ack(&log, last + 1000000), -PL_EINVAL);
	assert_int_equal(f.misuse, 0);
	fake_free(&f);
}

static void test_geometry(void **state)
{
	struct pl_flashlog log;
	struct pl_flash fl, bad;
	struct fake f;
	uint8_t big[PL_FLASHLOG_MAX_PAYLOAD + 1] = {0};
	struct pl_flashlog_rec rec;

	(void)state;
	fake_init(&f, &fl, 4096, 4, 4);
	assert_int_equal(pl_flashlog_min_sector(3), 0);
	assert_true(pl_flashlog_min_sector(4) <= 4096 && pl_flashlog_min_sector(16) <= 4096);
	bad = fl;
	bad.sector_count = 2;
	assert_int_equal(pl_flashlog_mount(&log, &bad), -PL_EINVAL);
	bad = fl;
	bad.sector_size = 1024;
	assert_int_equal(pl_flashlog_mount(&log, &bad), -PL_EINVAL);
	bad = fl;
	bad.write_align = 3;
	assert_int_equal(pl_flashlog_mount(&log, &bad), -PL_EINVAL);
	bad = fl;
	bad.sector_size = 4094; /* not a multiple of write_align */
	assert_int_equal(pl_flashlog_mount(&log, &bad), -PL_EINVAL);
	bad = fl;
	bad.sector_size = 1u << 17;
	assert_int_equal(pl_flashlog_mount(&log, &bad), -PL_EINVAL);
	bad = fl;
	bad.erase = NULL;
	assert_int_equal(pl_flashlog_mount(&log, &bad), -PL_EINVAL);
	assert_int_equal(pl_flashlog_mount(NULL, &fl), -PL_EINVAL);
	assert_int_equal(pl_flashlog_mount(&log, NULL), -PL_EINVAL);

	assert_int_equal(pl_flashlog_mount(&log, &fl), 0);
	assert_int_equal(log.formatted, 1);
	assert_int_equal(pl_flashlog_append(&log, 1, big, sizeof(big), NULL), -PL_EINVAL);
	assert_int_equal(pl_flashlog_append(&log, PL_FLASHLOG_TYPE_ACK, big, 1, NULL), -PL_EINVAL);
	assert_int_equal(pl_flashlog_append(&log, 1, NULL, 1, NULL), -PL_EINVAL);
	assert_int_equal(pl_flashlog_ack(&log, 1), -PL_EINVAL); /* nothing appended yet */
	assert_int_equal(pl_flashlog_last_of_type(&log, 1, &rec, big, sizeof(big)), -PL_ENOENT);
	assert_int_equal(pl_flashlog_append(&log, 1, big, 100, NULL), 0);
	assert_int_equal(pl_flashlog_last_of_type(&log, 1, &rec, big, 10), -PL_ENOSPC);
	assert_int_equal(rec.len, 100);

	/* a flash that fails: -PL_EIO, and the log refuses work until mounted again */
	f.dead = 1;
	assert_int_equal(pl_flashlog_append(&log, 1, big, 10, NULL), -PL_EIO);
	f.dead = 0;
	assert_int_equal(pl_flashlog_append(&log, 1, big, 10, NULL), -PL_EIO);
	assert_int_equal(pl_flashlog_mount(&log, &fl), 0);
	assert_int_equal(log.formatted, 0);
	assert_int_equal(pl_flashlog_append(&log, 1, big, 10, NULL), 0);
	fake_free(&f);
}

/* Sequence numbers keep growing when every sector was reclaimed and the head is empty. */
static void test_seq_survives(void **state)
{
	uint8_t buf[200] = {0};
	struct pl_flashlog log;
	struct pl_flash fl;
	struct fake f;
	uint32_t seq, prev = 0;
	int i;

	(void)state;
	fake_init(&f, &fl, 4096, 3, 4);
	assert_int_equal(pl_flashlog_mount(&log, &fl), 0);
	for (i = 0; i < 500; i++) {
		assert_int_equal(pl_flashlog_append(&log, 7, buf, sizeof(buf), &seq), 0);
		assert_true(seq > prev);
		prev = seq;
		assert_int_equal(pl_flashlog_ack(&log, seq), 0);
		if (i % 37 == 0)
			assert_int_equal(pl_flashlog_mount(&log, &fl), 0);
	}
	fake_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_geometry),
		cmocka_unit_test(test_seq_survives),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_wear),
		cmocka_unit_test(test_power_cuts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
