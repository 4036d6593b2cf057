/* SPDX-License-Identifier: MIT */
/*
 * Tests of the meter channel (src/core/channel.c).
 *
 * Property tests: random pulse trains, as light-sensor samples (time-stamped and evenly spaced
 * 16-bit) and as digital edges with chatter, are run once the plain way (fixed chunks, every
 * record taken at once) and again in random chunkings, with the meter advanced at random
 * times, records taken late and a few at a time (so that calls meet a full queue and must be
 * called again), and the channel saved and continued from the copy at random points (the
 * whole struct, or the detector and meter alone when the channel is idle). The records must
 * be the same. Declared losses must flag exactly the intervals they touch and change nothing
 * else; a pause (a hole in the input, resumed with pl_channel_resume) must flag the intervals
 * around it, give no records inside it, and leave every other record as it was.
 *
 * Unit tests: the ENOSPC contract, clock steps, a change of settings, a change of time base,
 * the detector's state flags, skip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "powerlogger/channel.h"
#include "testutil.h"

#define S INT64_C(1000000)
#define MAX_SAMPLES 200000
#define MAX_EDGES 8192
#define MAX_RECS 4096
#define MAX_GAPS 8

static unsigned below(unsigned n)
{
	return (unsigned)(rnd() % n);
}

static uint64_t checked; /* cases checked, for the summary */
static uint64_t n_full, n_copies, n_restores, n_gap_flags; /* what the random runs did */
static int stingy; /* this run takes records only when a call met a full queue */
static uint64_t viewed; /* pulses seen through pl_channel_pulses() in this run */
static int restored; /* this run went on from a fresh channel: its counters started again */

/* ---- records ---------------------------------------------------------------------------- */

struct sink {
	struct pl_interval_record r[MAX_RECS];
	size_t n;
};

static struct sink ref_sink, run_sink;

static void take_upto(struct pl_channel *ch, struct sink *k, size_t cap)
{
	size_t n;

	if (cap > MAX_RECS - k->n)
		cap = MAX_RECS - k->n;
	n = pl_channel_take(ch, k->r + k->n, cap);
	k->n += n;
	assert_true(k->n < MAX_RECS);
}

static void take_all(struct pl_channel *ch, struct sink *k)
{
	take_upto(ch, k, PL_CHANNEL_RECORDS);
	assert_int_equal(pl_channel_pending(ch), 0);
}

/*
 * The random run's taking: after a call that met a full queue, at least one record half of the
 * time (else the call is repeated as it is); otherwise now and then a few.
 */
static void take_random(struct pl_channel *ch, struct sink *k, int rc)
{
	size_t nv;
	const struct pl_channel_pulse *v = pl_channel_pulses(ch, &nv);

	for (size_t i = 0; i < nv; i++)
		assert_true(v[i].pulse.width_us > 0 && v[i].pulse.amplitude > 0);
	viewed += nv;
	if (rc == -PL_ENOSPC) {
		n_full++;
		if (below(2))
			take_upto(ch, k, 1 + below(PL_CHANNEL_RECORDS));
		return;
	}
	if (!stingy && below(3) == 0)
		take_upto(ch, k, 1 + below(4));
}

static void print_rec(const char *what, const struct pl_interval_record *r)
{
	print_message("%s start %lld pulses %u rej %u flags %u energy %lld reg %lld peak %lld\n",
		      what, (long long)r->start_us, r->pulses, r->rejected, r->flags,
		      (long long)r->energy_uwh, (long long)r->register_uwh, (long long)r->peak_mw);
}

static void same_record(const struct pl_interval_record *want, const struct pl_interval_record *got)
{
	if (memcmp(want, got, sizeof(*want)) != 0) {
		print_rec("want", want);
		print_rec("got ", got);
	}
	assert_memory_equal(want, got, sizeof(*want));
}

static void same_records(const struct sink *want, const struct sink *got)
{
	if (want->n != got->n)
		print_message("records: want %zu, got %zu\n", want->n, got->n);
	for (size_t i = 0; i < want->n && i < got->n; i++)
		same_record(&want->r[i], &got->r[i]);
	assert_int_equal(want->n, got->n);
}

static void check_view(const struct pl_channel *ch, const struct sink *k);

/* ---- checkpoints ------------------------------------------------------------------------ */

static struct pl_channel chbuf[2];

/*
 * Now and then the run goes on from a copy: the whole struct (always exact), or, when the
 * channel is idle, a fresh channel that takes over only the detector's and meter's state.
 * The old copy is scribbled over, so nothing may still point into it.
 */
static struct pl_channel *maybe_checkpoint(struct pl_channel *cur)
{
	struct pl_channel *next = cur == &chbuf[0] ? &chbuf[1] : &chbuf[0];

	if (below(8) != 0)
		return cur;
	if (below(2) && pl_channel_idle(cur) && cur->t_first != INT64_MIN &&
	    cur->cfg.state_flags == 0 && cur->cfg.kind == PL_CHANNEL_SAMPLES) {
		assert_int_equal(pl_channel_init(next, &cur->cfg), 0);
		assert_int_equal(pl_channel_restore(next, &cur->det, &cur->meter), 0);
		n_restores++;
		restored = 1;
	} else {
		memcpy(next, cur, sizeof(*next));
		n_copies++;
	}
	memset(cur, 0xa5, sizeof(*cur));
	return next;
}

/* ---- sample trains ---------------------------------------------------------------------- */

static struct pl_sample smp[MAX_SAMPLES];
static uint16_t u16v[MAX_SAMPLES];

/*
 * A light-sensor trace at 1 kHz from t0: a baseline with noise, flashes of 10..40 ms every
 * 0.2..4 s (so power varies over 50x), none within 2 s before or 0.5 s after a hole
 * [hole_from, hole_to) that has no samples at all (hole_from == hole_to: none).
 */
static size_t make_samples(int64_t t0, int64_t dur, int64_t hole_from, int64_t hole_to)
{
	int64_t next_pulse = t0 + 1500000 + (int64_t)below(500000), pulse_end = INT64_MIN;
	size_t n = 0;

	for (int64_t t = t0; t < t0 + dur && n < MAX_SAMPLES; t += 1000) {
		int32_t v = 200 + (int32_t)below(21) - 10;

		if (t >= next_pulse) {
			pulse_end = t + 10000 + 1000 * (int64_t)below(31);
			next_pulse = t + 200000 + 1000 * (int64_t)below(3800);
			if (hole_from != hole_to && next_pulse > hole_from - 2 * S &&
			    next_pulse < hole_to + S / 2)
				next_pulse = hole_to + S / 2 + 1000 * (int64_t)below(1000);
		}
		if (t < pulse_end)
			v += 600;
		if (t >= hole_from && t < hole_to)
			continue;
		smp[n].t_us = t;
		smp[n].v = v;
		u16v[n] = (uint16_t)v;
		n++;
	}
	return n;
}

static void sample_config(struct pl_channel_config *cc, uint32_t interval_s)
{
	pl_channel_config_default(cc);
	cc->kind = PL_CHANNEL_SAMPLES;
	cc->det.imp_per_kwh = 1000;
	cc->det.max_power_w = below(2) ? 0 : 20000;
	cc->meter.interval_s = interval_s;
	cc->meter.imp_per_kwh = 1000;
}

/* The plain run: chunks of 1000, advanced after each, everything taken at once. */
static void ref_samples(const struct pl_channel_config *cc, size_t n, int64_t t_end, int u16,
			size_t hole_at, struct sink *k)
{
	static struct pl_channel ch;
	int rc;

	k->n = 0;
	assert_int_equal(pl_channel_init(&ch, cc), 0);
	for (size_t off = 0; off < n;) {
		size_t end = off + 1000 < n ? off + 1000 : n;

		if (off < hole_at && end > hole_at)
			end = hole_at; /* evenly spaced chunks for feed_u16 */
		while (off < end) {
			size_t used = 0;

			rc = u16 ? pl_channel_feed_u16(&ch, smp[off].t_us, 1000, u16v + off, end - off, &used)
				 : pl_channel_feed(&ch, smp + off, end - off, &used);
			assert_true(rc == 0 || rc == -PL_ENOSPC);
			take_all(&ch, k);
			off += used;
		}
		do {
			rc = pl_channel_advance(&ch, smp[end - 1].t_us);
			take_all(&ch, k);
		} while (rc == -PL_ENOSPC);
		assert_int_equal(rc, 0);
	}
	do {
		rc = pl_channel_finish(&ch, t_end);
		take_all(&ch, k);
	} while (rc == -PL_ENOSPC);
	assert_int_equal(rc, 0);
}

struct gap {
	int64_t from, to;
};

/*
 * The random run. Declares up to ngaps losses (pl_channel_gap(LAST, NEXT)) at random chunk
 * boundaries, returned in gaps[]; with hole_at (an index into smp, 0: none) it resumes there.
 */
static void run_samples(const struct pl_channel_config *cc, size_t n, int64_t t_end, int u16,
			size_t hole_at, int64_t *ia, struct gap *gaps, size_t *ngaps, struct sink *k)
{
	struct pl_channel *ch = &chbuf[0];
	size_t want_gaps = *ngaps;
	int rc;

	*ngaps = 0;
	k->n = 0;
	stingy = below(3) == 0;
	viewed = 0;
	restored = 0;
	assert_int_equal(pl_channel_init(ch, cc), 0);
	for (size_t off = 0; off < n;) {
		size_t len = 1 + below(below(4) == 0 ? 5000 : 300), end;

		end = off + len < n ? off + len : n;
		if (hole_at > off && hole_at < end)
			end = hole_at; /* a chunk ends at the hole */
		if (hole_at > 0 && off == hole_at) {
			/* the open interval is the one the pause is in once the meter has been
			 * advanced to the horizon: the resume does that itself, or the last read
			 * did; a probe copy says where that is */
			static struct pl_channel probe;
			static struct sink scratch;

			if (below(2)) {
				do {
					rc = pl_channel_advance(ch, smp[off - 1].t_us);
					take_random(ch, k, rc);
				} while (rc == -PL_ENOSPC);
			}
			probe = *ch;
			do {
				rc = pl_channel_advance(&probe, smp[off - 1].t_us);
				scratch.n = 0;
				take_all(&probe, &scratch);
			} while (rc == -PL_ENOSPC);
			*ia = probe.meter.cur_start;
			do {
				rc = pl_channel_resume(ch, smp[off].t_us);
				take_random(ch, k, rc);
			} while (rc == -PL_ENOSPC);
			assert_int_equal(rc, 0);
		}
		while (off < end) {
			size_t used = 0;

			rc = u16 ? pl_channel_feed_u16(ch, smp[off].t_us, 1000, u16v + off, end - off, &used)
				 : pl_channel_feed(ch, smp + off, end - off, &used);
			assert_true(rc == 0 || rc == -PL_ENOSPC);
			if (rc == -PL_ENOSPC)
				assert_int_equal(pl_channel_pending(ch), PL_CHANNEL_RECORDS);
			take_random(ch, k, rc);
			off += used;
			ch = maybe_checkpoint(ch);
		}
		if (below(2)) {
			/* an advance to the last sample, or to some time before it */
			int64_t t = smp[end - 1].t_us - (below(3) ? 0 : (int64_t)below(3000000));

			do {
				rc = pl_channel_advance(ch, t);
				take_random(ch, k, rc);
			} while (rc == -PL_ENOSPC);
			assert_int_equal(rc, 0);
		}
		if (*ngaps < want_gaps && end < n && end != hole_at && below(40) == 0) {
			gaps[*ngaps].from = smp[end - 1].t_us;
			gaps[*ngaps].to = smp[end].t_us;
			(*ngaps)++;
			assert_int_equal(pl_channel_gap(ch, PL_CHANNEL_LAST, PL_CHANNEL_NEXT), 0);
		}
		ch = maybe_checkpoint(ch);
		off = end;
	}
	do {
		rc = pl_channel_finish(ch, t_end);
		take_random(ch, k, rc);
	} while (rc == -PL_ENOSPC);
	assert_int_equal(rc, 0);
	take_all(ch, k);
	assert_int_equal(ch->n_late, 0);
	check_view(ch, k);
}

/* Every pulse the meter took was seen once in the view, and is in a record. */
static void check_view(const struct pl_channel *ch, const struct sink *k)
{
	uint64_t in_records = 0;

	for (size_t i = 0; i < k->n; i++)
		in_records += k->r[i].pulses + k->r[i].rejected;
	assert_int_equal(viewed, in_records);
	if (!restored)
		assert_int_equal(in_records, ch->n_pulses);
}

/* Whether [from, to] touches the interval at start of length len. */
static int touches(int64_t start, int64_t len, int64_t from, int64_t to)
{
	return start <= to && start + len > from;
}

static void test_samples_any_chunking(void **state)
{
	int cases = getenv("PL_VALGRIND") ? 20 : 200;
	uint64_t with_gaps = 0, records = 0;

	(void)state;
	rng_state = 0x9e3779b97f4a7c15u;
	for (int c = 0; c < cases; c++) {
		struct pl_channel_config cc;
		static const uint32_t ivs[] = { 1, 2, 3, 5, 7, 10, 20 };
		uint32_t iv = ivs[below(7)];
		int64_t t0 = (int64_t)below(1000) * 1000 + (below(2) ? 1700000000 * S : 0);
		int64_t dur = (20 + (int64_t)below(60)) * S;
		size_t n = make_samples(t0, dur, 0, 0);
		int64_t t_end = smp[n - 1].t_us + 1000;
		int u16 = (int)below(2);
		struct gap gaps[MAX_GAPS];
		size_t ngaps = c % 2 ? MAX_GAPS : 0;

		sample_config(&cc, iv);
		ref_samples(&cc, n, t_end, u16, 0, &ref_sink);
		assert_true(ref_sink.n >= (size_t)(dur / S / iv));
		run_samples(&cc, n, t_end, u16, 0, NULL, gaps, &ngaps, &run_sink);
		/* the reference with the losses' flags: exactly on the intervals they touch */
		for (size_t i = 0; i < ref_sink.n; i++)
			for (size_t g = 0; g < ngaps; g++)
				if (touches(ref_sink.r[i].start_us, (int64_t)iv * S, gaps[g].from,
					    gaps[g].to))
					ref_sink.r[i].flags |= PL_Q_GAP;
		for (size_t i = 0; i < ref_sink.n; i++)
			n_gap_flags += (ref_sink.r[i].flags & PL_Q_GAP) != 0;
		same_records(&ref_sink, &run_sink);
		with_gaps += ngaps > 0;
		records += ref_sink.n;
		checked++;
	}
	print_message("# samples: %d cases (%llu with declared losses), %llu records alike\n",
		      cases, (unsigned long long)with_gaps, (unsigned long long)records);
}

/* Finds the record that starts at start; NULL if none. */
static const struct pl_interval_record *rec_at(const struct sink *k, int64_t start)
{
	for (size_t i = 0; i < k->n; i++)
		if (k->r[i].start_us == start)
			return &k->r[i];
	return NULL;
}

static int64_t floor_to(int64_t t, int64_t len)
{
	int64_t q = t / len;

	if (t % len != 0 && t < 0)
		q--;
	return q * len;
}

/*
 * A hole in the input resumed with pl_channel_resume(): the records before it and after it
 * are those of a run that just saw the time jump; the interval the input stopped in is flagged
 * PL_Q_GAP (and PL_Q_PARTIAL when the pause outlasts it), the intervals inside the pause give
 * no records, and the one it resumes in is PL_Q_PARTIAL.
 */
static void test_samples_pause_resume(void **state)
{
	int cases = getenv("PL_VALGRIND") ? 10 : 100;

	(void)state;
	rng_state = 0x1234567887654321u;
	for (int c = 0; c < cases; c++) {
		struct pl_channel_config cc;
		static const uint32_t ivs[] = { 1, 2, 5, 10, 20 };
		uint32_t iv = ivs[below(5)];
		int64_t len = (int64_t)iv * S, t0 = 0, dur = 80 * S;
		int64_t hole_from = (30 + (int64_t)below(10)) * S + (int64_t)below(1000) * 1000;
		int64_t hole_to = hole_from + (c % 3 == 0 ? (int64_t)below(500) * 1000 + 1000
							  : (int64_t)below(30) * S + 1000);
		size_t n = make_samples(t0, dur, hole_from, hole_to), hole_at = 0, ngaps = 0;
		int64_t t_end = smp[n - 1].t_us + 1000, b, ia = INT64_MIN, ib;
		int u16 = (int)below(2);

		while (smp[hole_at].t_us < hole_from)
			hole_at++;
		b = smp[hole_at].t_us;
		ib = floor_to(b, len);
		sample_config(&cc, iv);
		ref_samples(&cc, n, t_end, u16, hole_at, &ref_sink);
		run_samples(&cc, n, t_end, u16, hole_at, &ia, NULL, &ngaps, &run_sink);
		assert_true(ia != INT64_MIN && ia <= floor_to(smp[hole_at - 1].t_us, len));
		for (size_t i = 0; i < ref_sink.n; i++) {
			struct pl_interval_record want = ref_sink.r[i];
			const struct pl_interval_record *got = rec_at(&run_sink, want.start_us);

			if (want.start_us > ia && want.start_us < ib) {
				assert_null(got); /* inside the pause: no record */
				continue;
			}
			assert_non_null(got);
			if (want.start_us == ia)
				want.flags |= PL_Q_GAP | (ia != ib ? PL_Q_PARTIAL : 0u);
			else if (want.start_us == ib && b != ib)
				want.flags |= PL_Q_PARTIAL;
			same_record(&want, got);
		}
		/* and nothing else */
		assert_int_equal(run_sink.n, ref_sink.n - (size_t)(ib > ia ? (ib - ia) / len - 1 : 0));
		checked++;
	}
	print_message("# pause/resume: %d cases\n", cases);
}

/* ---- edge trains ------------------------------------------------------------------------ */

struct edge_in {
	int64_t t;
	int level;
};

static struct edge_in edg[MAX_EDGES];

/*
 * Raw edges from t0: pulses of 3..60 ms every 50 ms..3 s, chattering at both ends for less
 * than the minimum widths, now and then a pulse level held for 1.2..3 s (steady), and runs of
 * pulses too close together for the plausibility limit. Raw levels with active_low applied.
 * No edge in [hole_from, hole_to).
 */
static size_t make_edges(int64_t t0, int64_t dur, int active_low, int64_t hole_from,
			 int64_t hole_to, int64_t *t_last)
{
	size_t n = 0;
	int64_t t = t0;
	int rest = active_low ? 1 : 0, pulse = !rest;

	edg[n++] = (struct edge_in){ t, rest };
	t += 300000;
	while (t < t0 + dur && n + 16 < MAX_EDGES) {
		int64_t w = 3000 + 1000 * (int64_t)below(58);

		if (below(30) == 0)
			w = 1200000 + 1000 * (int64_t)below(1800);
		if (hole_from != hole_to && t + w > hole_from - S && t < hole_to + S / 2) {
			t = hole_to + S / 2 + 1000 * (int64_t)below(200);
			continue;
		}
		edg[n++] = (struct edge_in){ t, pulse };
		if (below(2)) { /* chatter at the leading edge */
			edg[n++] = (struct edge_in){ t + 300, rest };
			edg[n++] = (struct edge_in){ t + 600 + (int64_t)below(600), pulse };
		}
		edg[n++] = (struct edge_in){ t + w, rest };
		if (below(2)) { /* and at the trailing one */
			edg[n++] = (struct edge_in){ t + w + 400, pulse };
			edg[n++] = (struct edge_in){ t + w + 800 + (int64_t)below(500), rest };
		}
		t += w + (below(10) == 0 ? 20000 + 1000 * (int64_t)below(100)
					 : 50000 + 1000 * (int64_t)below(3000));
	}
	*t_last = t;
	return n;
}

static void edge_config(struct pl_channel_config *cc, uint32_t interval_s, int active_low)
{
	pl_channel_config_default(cc);
	cc->kind = PL_CHANNEL_EDGES;
	cc->edges.min_high_us = 2000;
	cc->edges.min_low_us = 2000;
	cc->edges.max_width_us = S;
	cc->edges.active_low = (uint8_t)active_low;
	cc->edges.imp_per_kwh = 1000;
	cc->edges.max_power_w = below(2) ? 0 : 40000;
	cc->meter.interval_s = interval_s;
	cc->meter.imp_per_kwh = 1000;
}

static void feed_edge(struct pl_channel *ch, struct sink *k, const struct edge_in *e, int random)
{
	int rc;

	for (;;) {
		rc = pl_channel_edge(ch, e->t, e->level);
		assert_true(rc == 0 || rc == -PL_ENOSPC);
		if (rc == -PL_ENOSPC)
			assert_int_equal(pl_channel_pending(ch), PL_CHANNEL_RECORDS);
		if (random)
			take_random(ch, k, rc);
		else
			take_all(ch, k);
		if (rc == 0)
			return;
	}
}

static void ref_edges(const struct pl_channel_config *cc, size_t n, int64_t t_end, struct sink *k)
{
	static struct pl_channel ch;
	int rc;

	k->n = 0;
	assert_int_equal(pl_channel_init(&ch, cc), 0);
	for (size_t i = 0; i < n; i++)
		feed_edge(&ch, k, &edg[i], 0);
	do {
		rc = pl_channel_finish(&ch, t_end);
		take_all(&ch, k);
	} while (rc == -PL_ENOSPC);
	assert_int_equal(rc, 0);
}

/* The random run: advances and settles at random times between the edges; resumes at hole_at. */
static void run_edges(const struct pl_channel_config *cc, size_t n, int64_t t_end, size_t hole_at,
		      const struct gap *hole, int64_t *ia, struct gap *gaps, size_t *ngaps,
		      struct sink *k)
{
	struct pl_channel *ch = &chbuf[0];
	size_t want_gaps = *ngaps;
	int rc;

	*ngaps = 0;
	k->n = 0;
	stingy = below(3) == 0;
	viewed = 0;
	restored = 0;
	assert_int_equal(pl_channel_init(ch, cc), 0);
	for (size_t i = 0; i < n; i++) {
		if (i == hole_at && i > 0) {
			/* the source fails at hole->from: the time until then passes first */
			do {
				rc = pl_channel_advance(ch, hole->from);
				take_random(ch, k, rc);
			} while (rc == -PL_ENOSPC);
			*ia = ch->meter.cur_start;
			/* and opens again at hole->to, where the line is at its rest level */
			do {
				rc = pl_channel_resume(ch, hole->to);
				take_random(ch, k, rc);
			} while (rc == -PL_ENOSPC);
			assert_int_equal(rc, 0);
			feed_edge(ch, k, &(struct edge_in){ hole->to, edg[i - 1].level }, 1);
		}
		feed_edge(ch, k, &edg[i], 1);
		ch = maybe_checkpoint(ch);
		if (i + 1 < n && i + 1 != hole_at && below(3) == 0) {
			/* time passes before the next edge (and maybe the source is about to close) */
			int64_t gap = edg[i + 1].t - edg[i].t;
			int64_t t = edg[i].t + (gap > 0 ? (int64_t)(rnd() % (uint64_t)(gap + 1)) : 0);
			int settle = below(4) == 0;

			do {
				rc = settle ? pl_channel_settle(ch, t) : pl_channel_advance(ch, t);
				take_random(ch, k, rc);
			} while (rc == -PL_ENOSPC);
			assert_int_equal(rc, 0);
		}
		if (*ngaps < want_gaps && i + 1 < n && i + 1 != hole_at && below(60) == 0 &&
		    edg[i + 1].t > edg[i].t) {
			gaps[*ngaps].from = ch->t_in;
			gaps[*ngaps].to = edg[i + 1].t;
			(*ngaps)++;
			assert_int_equal(pl_channel_gap(ch, PL_CHANNEL_LAST, PL_CHANNEL_NEXT), 0);
		}
	}
	do {
		rc = pl_channel_finish(ch, t_end);
		take_random(ch, k, rc);
	} while (rc == -PL_ENOSPC);
	assert_int_equal(rc, 0);
	take_all(ch, k);
	assert_int_equal(ch->n_late, 0);
	check_view(ch, k);
}

static void test_edges_any_chunking(void **state)
{
	int cases = getenv("PL_VALGRIND") ? 100 : 1000;
	uint64_t records = 0, pulses = 0, rejected = 0;

	(void)state;
	rng_state = 0x0123456789abcdefu;
	for (int c = 0; c < cases; c++) {
		struct pl_channel_config cc;
		static const uint32_t ivs[] = { 1, 2, 3, 10, 20, 60 };
		uint32_t iv = ivs[below(6)];
		int active_low = (int)below(2);
		int64_t t0 = (int64_t)below(100000) * 10 + (below(2) ? 1700000000 * S : 0), t_last;
		size_t n = make_edges(t0, (10 + (int64_t)below(200)) * S, active_low, 0, 0, &t_last);
		int64_t t_end = t_last + (int64_t)below(3) * S;
		struct gap gaps[MAX_GAPS];
		size_t ngaps = c % 2 ? MAX_GAPS : 0;

		edge_config(&cc, iv, active_low);
		ref_edges(&cc, n, t_end, &ref_sink);
		run_edges(&cc, n, t_end, 0, NULL, NULL, gaps, &ngaps, &run_sink);
		for (size_t i = 0; i < ref_sink.n; i++) {
			for (size_t g = 0; g < ngaps; g++)
				if (touches(ref_sink.r[i].start_us, (int64_t)iv * S, gaps[g].from,
					    gaps[g].to))
					ref_sink.r[i].flags |= PL_Q_GAP;
			n_gap_flags += (ref_sink.r[i].flags & PL_Q_GAP) != 0;
			pulses += ref_sink.r[i].pulses;
			rejected += ref_sink.r[i].rejected;
		}
		same_records(&ref_sink, &run_sink);
		records += ref_sink.n;
		checked++;
	}
	assert_true(rejected > 0 && pulses > 20 * (uint64_t)cases);
	print_message("# edges: %d cases, %llu records, %llu pulses (%llu rejected) alike\n", cases,
		      (unsigned long long)records, (unsigned long long)pulses,
		      (unsigned long long)rejected);
}

static void test_edges_pause_resume(void **state)
{
	int cases = getenv("PL_VALGRIND") ? 40 : 400;

	(void)state;
	rng_state = 0xfeedfacecafebeefu;
	for (int c = 0; c < cases; c++) {
		struct pl_channel_config cc;
		static const uint32_t ivs[] = { 1, 2, 5, 10, 20 };
		uint32_t iv = ivs[below(5)];
		int64_t len = (int64_t)iv * S, t_last;
		int64_t hole_from = (30 + (int64_t)below(10)) * S + (int64_t)below(1000) * 1000;
		int64_t hole_to = hole_from + (c % 3 == 0 ? (int64_t)below(500) * 1000 + 1000
							  : (int64_t)below(30) * S + 1000);
		int active_low = (int)below(2);
		size_t n = make_edges(0, 90 * S, active_low, hole_from, hole_to, &t_last), at = 0, ng = 0;
		int64_t b, ia = INT64_MIN, ib, t_end = t_last;
		struct gap hole = { hole_from, hole_to };

		while (edg[at].t < hole_from)
			at++;
		b = hole_to;
		ib = floor_to(b, len);
		edge_config(&cc, iv, active_low);
		ref_edges(&cc, n, t_end, &ref_sink);
		run_edges(&cc, n, t_end, at, &hole, &ia, NULL, &ng, &run_sink);
		assert_int_equal(ia, floor_to(hole_from, len));
		for (size_t i = 0; i < ref_sink.n; i++) {
			struct pl_interval_record want = ref_sink.r[i];
			const struct pl_interval_record *got = rec_at(&run_sink, want.start_us);

			if (want.start_us > ia && want.start_us < ib) {
				assert_null(got);
				continue;
			}
			assert_non_null(got);
			if (want.start_us == ia)
				want.flags |= PL_Q_GAP | (ia != ib ? PL_Q_PARTIAL : 0u);
			else if (want.start_us == ib && b != ib)
				want.flags |= PL_Q_PARTIAL;
			same_record(&want, got);
		}
		assert_int_equal(run_sink.n, ref_sink.n - (size_t)(ib > ia ? (ib - ia) / len - 1 : 0));
		checked++;
	}
	print_message("# edges pause/resume: %d cases\n", cases);
}

/* ---- unit tests ------------------------------------------------------------------------- */

/* An edge channel with 1 s intervals, every record taken into k. */
static void edges_1s(struct pl_channel *ch)
{
	struct pl_channel_config cc;

	pl_channel_config_default(&cc);
	cc.kind = PL_CHANNEL_EDGES;
	cc.meter.interval_s = 1;
	assert_int_equal(pl_channel_init(ch, &cc), 0);
	assert_int_equal(pl_channel_edge(ch, 0, 0), 0); /* at rest from 0 */
}

/* A pulse of 10 ms at t (rest level 0), the time after it settled. */
static void pulse_at(struct pl_channel *ch, struct sink *k, int64_t t)
{
	feed_edge(ch, k, &(struct edge_in){ t, 1 }, 0);
	feed_edge(ch, k, &(struct edge_in){ t + 10000, 0 }, 0);
}

static void test_enospc_contract(void **state)
{
	static struct pl_channel ch;
	struct pl_interval_record r[PL_CHANNEL_RECORDS];
	size_t used, n = 0;
	int rc;

	(void)state;
	edges_1s(&ch);
	assert_int_equal(pl_channel_edge(&ch, 100 * S, 1), 0);
	/* the pulse ends 100 s on: it closes 100 intervals, the queue holds 16 */
	assert_int_equal(pl_channel_edge(&ch, 100 * S + 10000, 0), 0);
	assert_int_equal(pl_channel_edge(&ch, 100 * S + 20000, 0), 0); /* no pulse: taken */
	assert_int_equal(pl_channel_pending(&ch), PL_CHANNEL_RECORDS);
	/* the pulse is emitted once the rest level is held: it waits behind a full queue */
	rc = pl_channel_advance(&ch, 100 * S + 30000);
	assert_int_equal(rc, -PL_ENOSPC);
	assert_int_equal(pl_channel_edge(&ch, 101 * S, 1), -PL_ENOSPC); /* not taken */
	assert_int_equal(ch.n_in, 4); /* the rest level at 0 and three edges */
	assert_int_equal(pl_channel_advance(&ch, 100 * S + 30000), -PL_ENOSPC); /* nothing lost */
	for (;;) {
		size_t k = pl_channel_take(&ch, r, 3);

		for (size_t i = 0; i < k; i++, n++) {
			assert_int_equal(r[i].start_us, (int64_t)n * S);
			assert_int_equal(r[i].pulses, 0);
		}
		rc = pl_channel_advance(&ch, 100 * S + 30000);
		if (rc == 0)
			break;
		assert_int_equal(rc, -PL_ENOSPC);
	}
	assert_int_equal(n + pl_channel_pending(&ch), 100);
	assert_int_equal(ch.n_pulses, 1);
	assert_int_equal(ch.meter.cur_pulses, 1);
	assert_int_equal(pl_channel_edge(&ch, 101 * S, 1), 0);
	/* feed: a full queue stops it with *used saying how far it got */
	{
		static struct pl_channel cs;
		struct pl_channel_config cc;
		struct pl_sample s[2000];

		pl_channel_config_default(&cc);
		cc.meter.interval_s = 1;
		assert_int_equal(pl_channel_init(&cs, &cc), 0);
		for (int i = 0; i < 2000; i++)
			s[i] = (struct pl_sample){ (int64_t)i * 1000, 100 + (i % 3) };
		for (int i = 0; i < 2000; i++)
			s[i].t_us += i >= 1000 ? 40 * S : 0; /* 40 s without samples */
		size_t off = 0;
		while (off < 2000) {
			rc = pl_channel_feed(&cs, s + off, 2000 - off, &used);
			assert_int_equal(rc, 0);
			off += used;
		}
		rc = pl_channel_advance(&cs, s[1999].t_us);
		assert_int_equal(rc, -PL_ENOSPC);
		assert_int_equal(pl_channel_pending(&cs), PL_CHANNEL_RECORDS);
		rc = pl_channel_feed(&cs, s, 0, &used);
		assert_int_equal(rc, 0);
		assert_int_equal(used, 0);
	}
	checked++;
}

static void test_step(void **state)
{
	static struct pl_channel ch;
	static struct sink k;
	int64_t reg;

	(void)state;
	edges_1s(&ch);
	k.n = 0;
	pulse_at(&ch, &k, 100000);
	pulse_at(&ch, &k, 1500000);
	/* the clock is stepped an hour forward at 2.2 s */
	assert_int_equal(pl_channel_step(&ch, 2200000, 3600 * S), 0);
	assert_int_equal(pl_channel_step(&ch, 2300000, 1 * S), 0); /* adds up, at 2.2 s */
	pulse_at(&ch, &k, 2500000);
	assert_int_equal(pl_channel_advance(&ch, 4 * S), 0);
	take_all(&ch, &k);
	assert_int_equal(ch.offset_us, 3601 * S);
	/* 0, 1: as usual; 2: cut by the step; then 3603 (2.2 s + 3601 s), flagged, and 3604 */
	assert_int_equal(k.n, 5);
	assert_int_equal(k.r[0].start_us, 0);
	assert_int_equal(k.r[1].start_us, 1 * S);
	assert_int_equal(k.r[1].flags, 0);
	assert_int_equal(k.r[2].start_us, 2 * S);
	assert_int_equal(k.r[2].flags, PL_Q_GAP | PL_Q_PARTIAL);
	assert_int_equal(k.r[3].start_us, 3603 * S);
	assert_int_equal(k.r[3].flags, PL_Q_GAP | PL_Q_PARTIAL);
	assert_int_equal(k.r[3].pulses, 1);
	assert_int_equal(k.r[4].start_us, 3604 * S);
	assert_int_equal(k.r[4].flags, 0);
	reg = 0;
	for (size_t i = 0; i < k.n; i++)
		reg += k.r[i].energy_uwh;
	assert_int_equal(reg, k.r[4].register_uwh);
	assert_int_equal(reg, 3 * 1000000);
	checked++;
}

static void test_reconfigure(void **state)
{
	static struct pl_channel ch;
	static struct sink k;
	struct pl_meter_config mc = { .imp_per_kwh = 500, .interval_s = 7 };
	int64_t sum = 0;

	(void)state;
	edges_1s(&ch);
	k.n = 0;
	pulse_at(&ch, &k, 300000);
	/* open interval [0, 1 s): the first boundary of both lengths after it is 7 s */
	assert_int_equal(pl_channel_reconfigure(&ch, &mc), 1);
	assert_int_equal(ch.switch_at, 7 * S);
	for (int64_t t = 1; t < 20; t++)
		pulse_at(&ch, &k, t * S + 500000);
	assert_int_equal(pl_channel_advance(&ch, 21 * S + 100000), 0);
	take_all(&ch, &k);
	for (size_t i = 0; i < k.n; i++) {
		sum += k.r[i].energy_uwh;
		assert_int_equal(sum, k.r[i].register_uwh);
	}
	/* seven 1 s records at 1000 imp/kWh, then 7 s ones at 500 */
	assert_int_equal(k.n, 7 + 2);
	assert_int_equal(k.r[6].start_us, 6 * S);
	assert_int_equal(k.r[6].length_s, 1);
	assert_int_equal(k.r[7].start_us, 7 * S);
	assert_int_equal(k.r[7].length_s, 7);
	assert_int_equal(k.r[7].pulses, 7);
	assert_int_equal(k.r[7].energy_uwh, 7 * 2000000);
	assert_int_equal(pl_channel_reconfigure(&ch, &mc), 0); /* unchanged */
	checked++;
}

static void test_rebase(void **state)
{
	static struct pl_channel ch;
	static struct sink k;
	const int64_t off = 1700000000 * S;

	(void)state;
	edges_1s(&ch);
	k.n = 0;
	pulse_at(&ch, &k, 300000);
	pulse_at(&ch, &k, 1300000);
	assert_int_equal(pl_channel_advance(&ch, 1600000), 0);
	assert_int_equal(pl_channel_rebase(&ch, off + 250000, 1600000), 0);
	take_all(&ch, &k);
	assert_int_equal(k.n, 2);
	assert_int_equal(k.r[1].start_us, 1 * S);
	assert_int_equal(k.r[1].flags, PL_Q_PARTIAL);
	pulse_at(&ch, &k, 2 * S);
	assert_int_equal(pl_channel_advance(&ch, 3 * S), 0);
	take_all(&ch, &k);

	/* the new base starts at the horizon, 1.6 s + offset: partial, then whole seconds */
	assert_int_equal(k.r[2].start_us, off + 1 * S);
	assert_int_equal(k.r[2].flags, PL_Q_PARTIAL);
	assert_int_equal(k.r[2].pulses, 0);
	assert_int_equal(k.r[3].start_us, off + 2 * S);
	assert_int_equal(k.r[3].pulses, 1);
	assert_int_equal(k.r[3].register_uwh, 3 * 1000000);
	checked++;
}

static void test_state_flags(void **state)
{
	static struct pl_channel ch;
	static struct sink k;
	struct pl_channel_config cc;
	static struct pl_sample s[30000];
	size_t used;

	(void)state;
	pl_channel_config_default(&cc);
	cc.state_flags = 1;
	cc.meter.interval_s = 5;
	assert_int_equal(pl_channel_init(&ch, &cc), 0);
	k.n = 0;
	for (int i = 0; i < 30000; i++)
		s[i] = (struct pl_sample){ (int64_t)i * 1000, 100 + (int32_t)(rnd() % 5) };
	for (size_t off = 0; off < 30000; off += 1000) {
		for (size_t o = off; o < off + 1000; o += used)
			assert_int_equal(pl_channel_feed(&ch, s + o, off + 1000 - o, &used), 0);
		assert_int_equal(pl_channel_advance(&ch, s[off + 999].t_us), 0);
		take_all(&ch, &k);
	}
	assert_int_equal(pl_channel_finish(&ch, 30 * S), 0);
	take_all(&ch, &k);
	assert_int_equal(k.n, 6);
	for (size_t i = 0; i < k.n; i++)
		assert_int_equal(k.r[i].flags, PL_Q_NO_SIGNAL);
	/* without state flags: none */
	cc.state_flags = 0;
	assert_int_equal(pl_channel_init(&ch, &cc), 0);
	k.n = 0;
	for (size_t o = 0; o < 30000; o += used)
		assert_true(pl_channel_feed(&ch, s + o, 30000 - o, &used) == 0);
	assert_int_equal(pl_channel_finish(&ch, 30 * S), 0);
	take_all(&ch, &k);
	for (size_t i = 0; i < k.n; i++)
		assert_int_equal(k.r[i].flags, 0);
	checked++;
}

static void test_skip(void **state)
{
	static struct pl_channel ch;
	static struct sink k;

	(void)state;
	edges_1s(&ch);
	k.n = 0;
	pulse_at(&ch, &k, 300000);
	assert_int_equal(pl_channel_skip(&ch), 0); /* nothing queued */
	assert_int_equal(pl_channel_edge(&ch, 5000 * S, 1), 0);
	assert_int_equal(pl_channel_edge(&ch, 5000 * S + 10000, 0), 0);
	assert_int_equal(pl_channel_advance(&ch, 5000 * S + 20000), -PL_ENOSPC);
	take_all(&ch, &k);
	/* a stop: the rest of the silent stretch is a gap, not 4984 empty records */
	assert_int_equal(pl_channel_skip(&ch), 1);
	assert_int_equal(pl_channel_advance(&ch, 5000 * S + 20000), 0);
	take_all(&ch, &k);
	assert_int_equal(k.n, PL_CHANNEL_RECORDS + 1);
	assert_int_equal(k.r[k.n - 1].flags, PL_Q_GAP | PL_Q_PARTIAL);
	assert_int_equal(ch.meter.cur_start, 5000 * S);
	assert_int_equal(ch.meter.cur_pulses, 1);
	assert_int_equal(ch.meter.cur_flags, PL_Q_GAP);
	checked++;
}

/* A pulse older than the meter's time is counted at that time, never lost. */
static void test_late_pulse_counted(void **state)
{
	static struct pl_channel ch;
	static struct sink k;

	(void)state;
	edges_1s(&ch);
	k.n = 0;
	/* the source reopens at 10 s; its edges were stamped from 9 s on (an edge source's
	 * thread saw the line before the channel was told) */
	assert_int_equal(pl_channel_resume(&ch, 10 * S), 0);
	feed_edge(&ch, &k, &(struct edge_in){ 9 * S, 0 }, 0);
	pulse_at(&ch, &k, 9500000);
	assert_int_equal(pl_channel_advance(&ch, 12 * S), 0);
	take_all(&ch, &k);
	assert_int_equal(ch.n_late, 1);
	assert_int_equal(ch.n_pulses, 1);
	assert_int_equal(k.n, 2);
	assert_int_equal(k.r[0].start_us, 10 * S);
	assert_int_equal(k.r[0].pulses, 1);
	checked++;
}

/*
 * A loss over [from, to] flags every interval it touches: the one holding `from`, and each
 * one whose start is at or before `to` (so a span that ends on a boundary flags the interval
 * that starts there), but not the one that ends at `from`.
 */
static void test_gap_span_on_boundaries(void **state)
{
	static struct pl_channel ch;
	static struct sink k;

	(void)state;
	edges_1s(&ch);
	k.n = 0;
	feed_edge(&ch, &k, &(struct edge_in){ 2 * S, 0 }, 0);
	assert_int_equal(pl_channel_gap(&ch, 2 * S, 4 * S), 0);
	assert_int_equal(pl_channel_gap(&ch, 6 * S + 1, 6 * S + 2), 0);
	assert_int_equal(pl_channel_advance(&ch, 9 * S), 0);
	take_all(&ch, &k);
	assert_int_equal(k.n, 9);
	for (size_t i = 0; i < k.n; i++) {
		int want = (i >= 2 && i <= 4) || i == 6;

		assert_int_equal(k.r[i].start_us, (int64_t)i * S);
		assert_int_equal(k.r[i].flags, want ? PL_Q_GAP : 0u);
	}
	/* an open span (until the next input) waits for it: 9.5 s, within the open interval */
	assert_int_equal(pl_channel_gap(&ch, PL_CHANNEL_LAST, PL_CHANNEL_NEXT), 0);
	feed_edge(&ch, &k, &(struct edge_in){ 9500000, 0 }, 0);
	assert_int_equal(pl_channel_advance(&ch, 12 * S), 0);
	take_all(&ch, &k);
	assert_int_equal(k.n, 12);
	assert_int_equal(k.r[9].flags, PL_Q_GAP);
	assert_int_equal(k.r[10].flags, 0);
	assert_int_equal(k.r[11].flags, 0);
	checked++;
}

static void test_bad_arguments(void **state)
{
	static struct pl_channel ch;
	struct pl_channel_config cc;
	size_t used = 7;

	(void)state;
	pl_channel_config_default(&cc);
	cc.kind = 2;
	assert_int_equal(pl_channel_init(&ch, &cc), -PL_EINVAL);
	cc.kind = PL_CHANNEL_SAMPLES;
	cc.meter.interval_s = 0;
	assert_int_equal(pl_channel_init(&ch, &cc), -PL_EINVAL);
	assert_int_equal(pl_channel_init(&ch, NULL), 0);
	assert_int_equal(pl_channel_edge(&ch, 0, 1), -PL_EINVAL); /* a sample channel */
	assert_int_equal(pl_channel_feed(&ch, NULL, 1, &used), -PL_EINVAL);
	assert_int_equal(used, 0);
	assert_int_equal(pl_channel_gap(&ch, 5, 4), -PL_EINVAL);
	edges_1s(&ch);
	assert_int_equal(pl_channel_edge(&ch, 10, 2), -PL_EINVAL);
	assert_int_equal(pl_channel_edge(&ch, 10, 1), 0);
	assert_int_equal(pl_channel_edge(&ch, 9, 0), -PL_EORDER);
	assert_int_equal(pl_channel_feed(&ch, NULL, 0, &used), -PL_EINVAL); /* an edge channel */
	checked++;
}

static int summary(void **state)
{
	(void)state;
	printf("# test_channel: %llu cases checked; the random runs met a full queue %llu times, "
	       "went on from %llu copies and %llu detector+meter restores; %llu records flagged "
	       "by declared losses\n", (unsigned long long)checked, (unsigned long long)n_full,
	       (unsigned long long)n_copies, (unsigned long long)n_restores,
	       (unsigned long long)n_gap_flags);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_enospc_contract),
		cmocka_unit_test(test_step),
		cmocka_unit_test(test_reconfigure),
		cmocka_unit_test(test_rebase),
		cmocka_unit_test(test_state_flags),
		cmocka_unit_test(test_skip),
		cmocka_unit_test(test_late_pulse_counted),
		cmocka_unit_test(test_gap_span_on_boundaries),
		cmocka_unit_test(test_edges_any_chunking),
		cmocka_unit_test(test_edges_pause_resume),
		cmocka_unit_test(test_samples_any_chunking),
		cmocka_unit_test(test_samples_pause_resume),
	};
	return cmocka_run_group_tests(tests, NULL, summary);
}
