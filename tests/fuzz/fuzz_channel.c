/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the meter channel with arbitrary sequences of its calls on either kind of input:
 * samples and edges at times that jump, stall and go backwards, advances, settles, losses,
 * pauses, clock steps, settings changes, time base changes, skips and finishes, with records
 * taken a few at a time or not at all. Checks the contract: no undefined behaviour, return
 * codes from the documented set, the record queue never over its size, -PL_ENOSPC from feeds
 * and edges only with a full queue, consecutive records adding up to the register, every pulse
 * the front end emitted either in the meter (in a record taken or waiting, or in the open
 * interval), dropped for its range, or still queued, and that a copy of the whole state made
 * at any point goes on exactly like the original.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "powerlogger/channel.h"

#define T_LIMIT (INT64_C(1) << 60) /* well inside the detector's and meter's +-2^62 */

struct run {
	struct pl_channel ch;
	int64_t reg;      /* register after the last record taken */
	uint64_t records;
	uint64_t in_records; /* pulses and rejected pulses in the records taken */
	uint64_t edges_base; /* pulses of edge filters a resume has replaced */
};

static struct run a, b;
static int twin; /* b is a copy of a, and gets every call a gets */

static void check_rc(int rc)
{
	if (rc != 0 && rc != 1 && rc != -PL_ENOSPC && rc != -PL_ERANGE && rc != -PL_EORDER &&
	    rc != -PL_EINVAL)
		abort();
}

static void take(struct run *r, size_t cap, struct pl_interval_record *out, size_t *n)
{
	if (pl_channel_pending(&r->ch) > PL_CHANNEL_RECORDS)
		abort();
	*n = pl_channel_take(&r->ch, out, cap);
	for (size_t i = 0; i < *n; i++) {
		if (out[i].register_uwh != r->reg + out[i].energy_uwh)
			abort();
		r->reg = out[i].register_uwh;
		r->in_records += out[i].pulses + out[i].rejected;
	}
	r->records += *n;
}

/* Every pulse the front end emitted is accounted for. */
static void conserved(const struct run *r)
{
	const struct pl_channel *ch = &r->ch;
	uint64_t emitted, waiting = 0;

	if (ch->cfg.kind == PL_CHANNEL_EDGES) {
		emitted = r->edges_base + ch->edges.n_pulses;
	} else {
		struct pl_detector_status st;

		pl_detector_status(&ch->det, &st);
		emitted = st.pulses;
	}
	if (emitted != ch->n_pulses + ch->n_range + (ch->npulses - ch->pulse_next))
		abort();
	for (uint32_t k = 0; k < ch->nrec; k++)
		waiting += ch->rec[k].pulses + ch->rec[k].rejected;
	if (ch->n_pulses != r->in_records + waiting + ch->meter.cur_pulses + ch->meter.cur_rejected)
		abort();
}

/* Takes up to cap records from both and compares them, with the pulse views. */
static void take_both(size_t cap)
{
	struct pl_interval_record ra[PL_CHANNEL_RECORDS], rb[PL_CHANNEL_RECORDS];
	size_t na, nb, va, vb;
	const struct pl_channel_pulse *pa = pl_channel_pulses(&a.ch, &va), *pb;

	if (va > PL_CHANNEL_PULSES)
		abort();
	if (twin) {
		pb = pl_channel_pulses(&b.ch, &vb);
		if (va != vb)
			abort();
		for (size_t k = 0; k < va; k++)
			if (pa[k].pulse.t_us != pb[k].pulse.t_us ||
			    pa[k].pulse.width_us != pb[k].pulse.width_us ||
			    pa[k].pulse.flags != pb[k].pulse.flags || pa[k].power_mw != pb[k].power_mw)
				abort();
	}
	take(&a, cap, ra, &na);
	if (!twin)
		return;
	take(&b, cap, rb, &nb);
	if (na != nb || memcmp(ra, rb, na * sizeof(ra[0])) != 0)
		abort();
}

static void same_rc(int ra, int rb)
{
	check_rc(ra);
	if (twin && ra != rb)
		abort();
}

static int64_t clamp_t(int64_t t)
{
	return t > T_LIMIT ? T_LIMIT : t < -T_LIMIT ? -T_LIMIT : t;
}

/* A time step from one byte: small, stalled, backwards, or a jump. */
static int64_t step_of(uint8_t c)
{
	switch (c >> 5) {
	case 0:
		return 0;
	case 1:
		return -(int64_t)(c & 31) * 1000;
	case 2:
		return (int64_t)(c & 31) * 1000 * 1000; /* up to 31 s */
	case 3:
		return (int64_t)(c & 31) * 3600 * INT64_C(1000000) * 24; /* days */
	default:
		return 1 + (int64_t)c * 37;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct pl_sample s[64];
	static uint16_t v[64];
	static const uint32_t ivs[] = { 1, 2, 7, 20, 60, 86400 };
	static const uint32_t rates[] = { 100, 1000, 8000, 44100 };
	struct pl_channel_config cc;
	int64_t t;
	size_t i = 0;

	if (size < 4)
		return 0;
	pl_channel_config_default(&cc);
	cc.kind = data[0] & 1 ? PL_CHANNEL_EDGES : PL_CHANNEL_SAMPLES;
	cc.state_flags = (uint8_t)((data[0] >> 1) & 1);
	cc.meter.interval_s = ivs[(data[1] & 0x7f) % 6];
	cc.meter.imp_per_kwh = data[1] & 0x80 ? 1000 : 10000;
	cc.det.imp_per_kwh = cc.edges.imp_per_kwh = data[2] & 1 ? 1000 : 0;
	cc.det.max_power_w = cc.edges.max_power_w = data[2] & 2 ? 20000 : 0;
	cc.edges.active_low = (uint8_t)((data[2] >> 2) & 1);
	t = (int64_t)(int8_t)data[3] * INT64_C(1000000000000);
	twin = 0;
	memset(&b, 0, sizeof(b));
	memset(&a, 0, sizeof(a));
	if (pl_channel_init(&a.ch, &cc) != 0)
		abort();
	i = 4;
	while (i + 2 <= size) {
		uint8_t op = data[i], arg = data[i + 1];
		int ra = 0, rb = 0;

		i += 2;
		t = clamp_t(t + step_of(arg));
		switch (op % 16) {
		case 0:
		case 1: { /* samples: up to 64, values and steps from the following bytes */
			size_t n = 0, used_a = 0, used_b = 0;

			while (n < 64 && i < size && n < (size_t)(arg % 64) + 1) {
				t = clamp_t(t + (data[i] & 0x80 ? step_of(data[i]) : 1000));
				s[n].t_us = t;
				s[n].v = (int32_t)(data[i] & 0x7f) * 8;
				v[n] = (uint16_t)s[n].v;
				n++;
				i++;
			}
			if (op % 16 == 0) {
				ra = pl_channel_feed(&a.ch, s, n, &used_a);
				if (twin)
					rb = pl_channel_feed(&b.ch, s, n, &used_b);
			} else {
				uint32_t rate = rates[arg & 3];

				ra = pl_channel_feed_u16(&a.ch, s[0].t_us, rate, v, n, &used_a);
				if (twin)
					rb = pl_channel_feed_u16(&b.ch, s[0].t_us, rate, v, n, &used_b);
			}
			if (used_a > n || (twin && used_a != used_b))
				abort();
			if (ra == -PL_ENOSPC && pl_channel_pending(&a.ch) != PL_CHANNEL_RECORDS)
				abort();
			break;
		}
		case 2:
		case 3:
			ra = pl_channel_edge(&a.ch, t, arg & 1);
			if (twin)
				rb = pl_channel_edge(&b.ch, t, arg & 1);
			if (ra == -PL_ENOSPC && pl_channel_pending(&a.ch) != PL_CHANNEL_RECORDS)
				abort();
			break;
		case 4:
			ra = pl_channel_advance(&a.ch, t);
			if (twin)
				rb = pl_channel_advance(&b.ch, t);
			break;
		case 5:
			ra = pl_channel_settle(&a.ch, t);
			if (twin)
				rb = pl_channel_settle(&b.ch, t);
			break;
		case 6:
			ra = pl_channel_gap(&a.ch, arg & 1 ? PL_CHANNEL_LAST : t - 5000,
					    arg & 2 ? PL_CHANNEL_NEXT : t);
			if (twin)
				rb = pl_channel_gap(&b.ch, arg & 1 ? PL_CHANNEL_LAST : t - 5000,
						    arg & 2 ? PL_CHANNEL_NEXT : t);
			break;
		case 7:
			/* an edge channel's filter starts afresh: its count goes on here */
			if (cc.kind == PL_CHANNEL_EDGES) {
				a.edges_base += a.ch.edges.n_pulses;
				if (twin)
					b.edges_base += b.ch.edges.n_pulses;
			}
			ra = pl_channel_resume(&a.ch, t);
			if (twin)
				rb = pl_channel_resume(&b.ch, t);
			if (cc.kind == PL_CHANNEL_EDGES && a.ch.edges.n_pulses != 0) {
				/* not replaced (the call stopped early): undo */
				a.edges_base -= a.ch.edges.n_pulses;
				if (twin)
					b.edges_base -= b.ch.edges.n_pulses;
			}
			break;
		case 8: {
			int64_t d = (int64_t)(int8_t)arg * 60 * INT64_C(1000000);

			ra = pl_channel_step(&a.ch, arg & 1 ? INT64_MIN : t, d);
			if (twin)
				rb = pl_channel_step(&b.ch, arg & 1 ? INT64_MIN : t, d);
			break;
		}
		case 9: {
			struct pl_meter_config mc = { .imp_per_kwh = arg & 1 ? 500 : 1000,
						      .interval_s = ivs[(arg >> 1) % 6] };

			ra = pl_channel_reconfigure(&a.ch, &mc);
			if (twin)
				rb = pl_channel_reconfigure(&b.ch, &mc);
			break;
		}
		case 10: {
			int64_t off = (int64_t)(int8_t)arg * INT64_C(1000000000000);

			ra = pl_channel_rebase(&a.ch, off, t);
			if (twin)
				rb = pl_channel_rebase(&b.ch, off, t);
			break;
		}
		case 11:
			ra = pl_channel_skip(&a.ch);
			if (twin)
				rb = pl_channel_skip(&b.ch);
			break;
		case 12:
			ra = pl_channel_finish(&a.ch, t);
			if (twin)
				rb = pl_channel_finish(&b.ch, t);
			break;
		case 13:
			if (!twin) {
				memcpy(&b, &a, sizeof(a));
				twin = 1;
			}
			break;
		default:
			break;
		}
		same_rc(ra, rb);
		/* take: all, a few, or (arg's top bits) none, so that the queue fills */
		take_both(arg >> 6 == 0 ? 0 : arg >> 6 == 1 ? 1 + (arg & 3) : PL_CHANNEL_RECORDS);
		conserved(&a);
		if (twin)
			conserved(&b);
	}
	take_both(PL_CHANNEL_RECORDS);
	return 0;
}
