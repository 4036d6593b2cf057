/* SPDX-License-Identifier: MIT */
/*
 * Meter channel (see channel.h): the detector or the edge filter, the meter, and the rules
 * between them.
 *
 * Everything that can write a record goes through meter_to() or a call that first checks the
 * queue's room, and every step is idempotent when repeated: a call that meets a full queue
 * returns -PL_ENOSPC with its progress in the state (the meter's own time, a note's `from`,
 * the pulse queue's index), and the same call again carries on from there.
 */
#include "powerlogger/channel.h"

#include <string.h>

#include "sat.h"

/* Input time to meter time. */
static int64_t mtime(const struct pl_channel *ch, int64_t t)
{
	return t == INT64_MIN ? INT64_MIN : sat_add(t, ch->offset_us);
}

static int64_t interval_us(const struct pl_meter *m)
{
	return (int64_t)m->cfg.interval_s * PL_US_PER_S;
}

static uint32_t room(const struct pl_channel *ch)
{
	return PL_CHANNEL_RECORDS - ch->nrec;
}

static void push_record(struct pl_channel *ch, const struct pl_interval_record *r)
{
	ch->rec[ch->nrec++] = *r;
}

/* The first multiple of iv at or after t (t may be negative: traces start at 0). */
static int64_t align_up(int64_t t, int64_t iv)
{
	int64_t q = t / iv * iv;

	return q < t ? q + iv : q;
}

/* The first interval boundary after t. */
static int64_t next_boundary(int64_t t, int64_t len)
{
	int64_t q = t / len;

	if (t % len != 0 && t < 0)
		q--; /* floor */
	return (q + 1) * len;
}

/* 1 while an interval that ends at or before tm is still open. */
static int due(const struct pl_meter *m, int64_t tm)
{
	return m->cur_start != INT64_MIN && tm >= m->t_last && m->cur_start + interval_us(m) <= tm;
}

/* Closes the intervals that end at or before meter time tm, into the queue's room. */
static int advance_raw(struct pl_channel *ch, int64_t tm)
{
	struct pl_meter *m = &ch->meter;

	if (tm > PL_METER_T_LIMIT)
		tm = PL_METER_T_LIMIT;
	for (;;) {
		size_t n = pl_meter_advance(m, tm, ch->rec + ch->nrec, room(ch));

		ch->nrec += (uint32_t)n;
		if (!due(m, tm))
			return 0;
		if (room(ch) == 0)
			return -PL_ENOSPC;
	}
}

/*
 * A pending settings change takes effect when the meter is given a time at or after
 * switch_at: the old intervals close up to there (the last cut short), the meter starts again
 * with the new settings at switch_at, a boundary of both lengths, and the register goes on.
 */
static int switch_due(struct pl_channel *ch, int64_t tm)
{
	struct pl_meter *m = &ch->meter;
	struct pl_interval_record rec;
	int64_t at = ch->switch_at, reg;
	int rc;

	if (!ch->switch_pending || tm < at)
		return 0;
	if (at < m->t_last)
		at = m->t_last; /* skipped past it (pl_channel_skip): switch where the meter is */
	if ((rc = advance_raw(ch, at)) != 0)
		return rc;
	while (m->cur_start != INT64_MIN) {
		if (room(ch) == 0)
			return -PL_ENOSPC;
		if (pl_meter_flush(m, at, &rec) != 1)
			break;
		push_record(ch, &rec);
	}
	reg = pl_meter_register(m);
	if (pl_meter_init(m, &ch->switch_cfg) != 0)
		return -PL_EINVAL; /* checked by pl_channel_reconfigure: cannot happen */
	pl_meter_set_register(m, reg);
	pl_meter_start(m, at);
	ch->switch_pending = 0;
	return 0;
}

/* Gives the meter meter time tm: the settings change first, then the intervals up to tm. */
static int meter_to(struct pl_channel *ch, int64_t tm)
{
	int rc = switch_due(ch, tm);

	return rc != 0 ? rc : advance_raw(ch, tm);
}

/*
 * The pending clock step, once the input reaches it: the intervals up to the step close as
 * usual, then pl_meter_step() flags the gap, and meter time follows the new clock.
 */
static int reach(struct pl_channel *ch, int64_t t)
{
	struct pl_meter *m = &ch->meter;
	struct pl_interval_record rec;
	int64_t tm;
	int rc;

	if (!ch->step_pending || t < ch->step_at)
		return 0;
	tm = mtime(ch, ch->step_at);
	if (m->cur_start != INT64_MIN && tm > m->t_last && (rc = meter_to(ch, tm)) != 0)
		return rc;
	if (room(ch) == 0)
		return -PL_ENOSPC;
	rc = pl_meter_step(m, ch->step_delta, &rec);
	if (rc == 1)
		push_record(ch, &rec);
	if (rc >= 0)
		ch->offset_us = sat_add(ch->offset_us, ch->step_delta);
	ch->step_pending = 0;
	return 0;
}

/* ---- flag notes ------------------------------------------------------------------------- */

static void drop_first_note(struct pl_channel *ch)
{
	ch->nnotes--;
	memmove(ch->note, ch->note + 1, ch->nnotes * sizeof(ch->note[0]));
}

/*
 * Notes flags over [from, to]. A span that continues the latest one with the same flags
 * extends it; when the queue is full, the latest span absorbs the new one.
 */
static void note(struct pl_channel *ch, int64_t from, int64_t to, uint32_t flags)
{
	struct pl_channel_note *last = ch->nnotes ? &ch->note[ch->nnotes - 1] : NULL;

	if (flags == 0)
		return;
	if (last != NULL &&
	    ((last->flags == flags && last->to >= from) || ch->nnotes == PL_CHANNEL_NOTES)) {
		last->flags |= flags;
		if (to > last->to)
			last->to = to;
		return;
	}
	ch->note[ch->nnotes++] = (struct pl_channel_note){ .from = from, .to = to, .flags = flags };
}

/*
 * Applies the flags noted up to input time upto to every interval their spans touch, by
 * advancing the meter into each of those intervals in turn and flagging it. A note's `from`
 * moves on as its intervals are done, so a full queue interrupts it without repeating work.
 */
static int apply_notes(struct pl_channel *ch, int64_t upto)
{
	int64_t len = interval_us(&ch->meter);
	int rc;

	while (ch->nnotes > 0 && ch->note[0].from <= upto) {
		struct pl_channel_note *n = &ch->note[0];
		int64_t stop = n->to < upto ? n->to : upto, next;

		if (n->from > n->to) {
			drop_first_note(ch); /* an open span that ended inside its flagged interval */
			continue;
		}
		if ((rc = meter_to(ch, mtime(ch, n->from))) != 0)
			return rc;
		pl_meter_flag(&ch->meter, n->flags);
		next = next_boundary(mtime(ch, n->from), len) - ch->offset_us;
		if (next <= stop) {
			n->from = next;
			continue;
		}
		if (n->to > upto && next <= n->to) {
			n->from = next; /* the rest waits */
			break;
		}
		drop_first_note(ch);
	}
	return 0;
}

/* Input at time t: ends open spans (PL_CHANNEL_NEXT), and the first input starts the meter. */
static void saw_input(struct pl_channel *ch, int64_t t)
{
	for (uint32_t i = 0; i < ch->nnotes; i++)
		if (ch->note[i].to == PL_CHANNEL_NEXT)
			ch->note[i].to = t;
	if (ch->t_first != INT64_MIN)
		return;
	ch->t_first = t;
	ch->last_look = t;
	ch->look_n = ch->n_in;
	if (ch->meter.cur_start == INT64_MIN && ch->meter.t_last == INT64_MIN)
		pl_meter_start(&ch->meter, mtime(ch, t));
}

/* The detector's states since the last look, as notes over the input time they span. */
static void look(struct pl_channel *ch, int64_t t)
{
	struct pl_detector_status st;
	uint32_t flags = 0;

	if (ch->cfg.kind != PL_CHANNEL_SAMPLES || !ch->cfg.state_flags ||
	    ch->t_first == INT64_MIN || ch->n_in == ch->look_n)
		return;
	pl_detector_status(&ch->det, &st);
	if (st.steady_events > ch->steady_seen || st.state == PL_DET_STEADY)
		flags |= PL_Q_STEADY;
	ch->steady_seen = st.steady_events;
	if (st.state == PL_DET_NO_SIGNAL)
		flags |= PL_Q_NO_SIGNAL;
	note(ch, ch->last_look, t, flags);
	ch->last_look = t;
	ch->look_n = ch->n_in;
}

/* ---- pulses ----------------------------------------------------------------------------- */

/* Starts a call that may give pulses to the meter: the view begins empty. */
static void begin(struct pl_channel *ch)
{
	ch->view_from = ch->pulse_next;
}

/*
 * Puts the front end's pulses into the queue, all of whose pulses have been given on. Those
 * given on during this call stay in front of them, for pl_channel_pulses(). Both fit: a call
 * queues a detector's batch (PL_DETECTOR_MIN_OUT) only when it gave on none before, and an
 * edge filter's pulses come one at a time.
 */
static void queue_pulses(struct pl_channel *ch, const struct pl_pulse *p, size_t n)
{
	uint32_t keep = ch->pulse_next - ch->view_from;

	memmove(ch->pulse, ch->pulse + ch->view_from, keep * sizeof(ch->pulse[0]));
	ch->view_from = 0;
	ch->pulse_next = ch->npulses = keep;
	for (size_t i = 0; i < n && ch->npulses < PL_CHANNEL_PULSES; i++)
		ch->pulse[ch->npulses++] = (struct pl_channel_pulse){ .pulse = p[i] };
}

/*
 * Gives the queued pulses to the meter, oldest first. A pulse is never refused for being late
 * (the energy is real): one older than the meter's time counts at that time. One beyond the
 * meter's range is dropped and counted.
 */
static int deliver(struct pl_channel *ch)
{
	struct pl_meter *m = &ch->meter;

	while (ch->pulse_next < ch->npulses) {
		struct pl_channel_pulse *cp = &ch->pulse[ch->pulse_next];
		struct pl_pulse q = cp->pulse;
		int64_t power = 0;
		int rc;

		if ((rc = reach(ch, q.t_us)) != 0 || (rc = apply_notes(ch, q.t_us)) != 0)
			return rc;
		q.t_us = mtime(ch, cp->pulse.t_us);
		if ((rc = switch_due(ch, q.t_us)) != 0)
			return rc;
		for (;;) {
			size_t n = 0;

			rc = pl_meter_pulse(m, &q, &power, ch->rec + ch->nrec, room(ch), &n);
			ch->nrec += (uint32_t)n;
			if (rc == -PL_ENOSPC) {
				/* intervals without pulses before it: closed into the queue first */
				if (cp->pulse.t_us > ch->reached)
					ch->reached = cp->pulse.t_us;
				if ((rc = advance_raw(ch, q.t_us)) != 0)
					return rc;
				continue;
			}
			if (rc == -PL_EORDER) {
				ch->n_late++;
				q.t_us = m->t_last;
				continue;
			}
			break;
		}
		ch->pulse_next++;
		if (rc == -PL_ERANGE) {
			ch->n_range++;
			return rc;
		}
		if (rc < 0)
			return rc;
		ch->n_pulses++;
		if (cp->pulse.flags & PL_PULSE_REJECTED)
			ch->n_rejected++;
		cp->power_mw = power;
		ch->power_mw = power;
	}
	return 0;
}

/* ---- the API ---------------------------------------------------------------------------- */

void pl_channel_config_default(struct pl_channel_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->kind = PL_CHANNEL_SAMPLES;
	pl_detector_config_default(&cfg->det);
	pl_edges_config_default(&cfg->edges);
	pl_meter_config_default(&cfg->meter);
}

static void reset_flow(struct pl_channel *ch)
{
	ch->t_first = ch->t_in = ch->reached = ch->last_look = INT64_MIN;
	ch->look_n = ch->steady_seen = 0;
	ch->npulses = ch->pulse_next = ch->view_from = 0;
	ch->nrec = ch->nnotes = 0;
	ch->step_pending = ch->switch_pending = 0;
	ch->det_finished = 0;
}

int pl_channel_init(struct pl_channel *ch, const struct pl_channel_config *cfg)
{
	struct pl_channel_config def;
	int rc;

	if (ch == NULL)
		return -PL_EINVAL;
	if (cfg == NULL) {
		pl_channel_config_default(&def);
		cfg = &def;
	}
	if (cfg->kind != PL_CHANNEL_SAMPLES && cfg->kind != PL_CHANNEL_EDGES)
		return -PL_EINVAL;
	memset(ch, 0, sizeof(*ch));
	ch->cfg = *cfg;
	rc = cfg->kind == PL_CHANNEL_EDGES ? pl_edges_init(&ch->edges, &cfg->edges)
					   : pl_detector_init(&ch->det, &cfg->det);
	if (rc == 0)
		rc = pl_meter_init(&ch->meter, &cfg->meter);
	if (rc != 0)
		return -PL_EINVAL;
	reset_flow(ch);
	return 0;
}

int pl_channel_restore(struct pl_channel *ch, const struct pl_detector *det,
		       const struct pl_meter *meter)
{
	if (ch == NULL)
		return -PL_EINVAL;
	if (det != NULL && ch->cfg.kind == PL_CHANNEL_SAMPLES)
		ch->det = *det;
	if (meter != NULL)
		ch->meter = *meter;
	reset_flow(ch);
	if (ch->cfg.kind == PL_CHANNEL_SAMPLES && ch->det.t_last != INT64_MIN) {
		/* the detector knows how far the input went: a resume closes up to there */
		ch->t_in = ch->t_first = ch->last_look = ch->det.t_last;
		ch->look_n = ch->n_in;
		ch->steady_seen = ch->det.n_steady;
	}
	return 0;
}

int pl_channel_start(struct pl_channel *ch, int64_t t_us)
{
	if (ch == NULL)
		return -PL_EINVAL;
	return pl_meter_start(&ch->meter, mtime(ch, t_us));
}

int pl_channel_feed(struct pl_channel *ch, const struct pl_sample *s, size_t n, size_t *used)
{
	struct pl_pulse out[PL_DETECTOR_MIN_OUT];
	size_t np = 0, u;

	if (used != NULL)
		*used = 0;
	if (ch == NULL || used == NULL || (s == NULL && n > 0) || ch->cfg.kind != PL_CHANNEL_SAMPLES)
		return -PL_EINVAL;
	begin(ch);
	if (ch->pulse_next < ch->npulses)
		return deliver(ch); /* the pulses of the previous call first; nothing taken */
	if (n == 0)
		return 0;
	saw_input(ch, s[0].t_us);
	u = pl_detector_feed(&ch->det, s, n, out, PL_DETECTOR_MIN_OUT, &np);
	if (u > n)
		u = n;
	if (u > 0) {
		ch->n_in += u;
		ch->t_in = s[u - 1].t_us;
	}
	*used = u;
	queue_pulses(ch, out, np);
	return deliver(ch);
}

int pl_channel_feed_u16(struct pl_channel *ch, int64_t t0_us, uint32_t rate_hz, const uint16_t *v,
			size_t n, size_t *used)
{
	struct pl_pulse out[PL_DETECTOR_MIN_OUT];
	size_t np = 0, u;

	if (used != NULL)
		*used = 0;
	if (ch == NULL || used == NULL || (v == NULL && n > 0) || rate_hz == 0 ||
	    ch->cfg.kind != PL_CHANNEL_SAMPLES)
		return -PL_EINVAL;
	begin(ch);
	if (ch->pulse_next < ch->npulses)
		return deliver(ch);
	if (n == 0)
		return 0;
	saw_input(ch, t0_us);
	u = pl_detector_feed_u16(&ch->det, t0_us, rate_hz, v, n, out, PL_DETECTOR_MIN_OUT, &np);
	if (u > n)
		u = n;
	if (u > 0) {
		ch->n_in += u;
		ch->t_in = ch->det.t_last;
	}
	*used = u;
	queue_pulses(ch, out, np);
	return deliver(ch);
}

int pl_channel_edge(struct pl_channel *ch, int64_t t_us, int level)
{
	struct pl_pulse p;
	int rc;

	if (ch == NULL || ch->cfg.kind != PL_CHANNEL_EDGES || (level != 0 && level != 1))
		return -PL_EINVAL;
	begin(ch);
	/* the edge is not taken while its pulse could not be queued behind older ones; one
	 * dropped for its range (counted in n_range) is out of the way */
	while (ch->pulse_next < ch->npulses)
		if ((rc = deliver(ch)) == -PL_ENOSPC)
			return rc;
	if (ch->t_in != INT64_MIN && t_us < ch->t_in)
		return -PL_EORDER;
	saw_input(ch, t_us);
	rc = pl_edges_feed(&ch->edges, t_us, level, &p);
	if (rc < 0)
		return rc;
	ch->n_in++;
	ch->t_in = t_us;
	if (rc == 0)
		return 0;
	queue_pulses(ch, &p, 1);
	rc = deliver(ch);
	return rc == -PL_ENOSPC ? 0 : rc; /* taken: its pulse goes on at the next call */
}

int pl_channel_gap(struct pl_channel *ch, int64_t from_us, int64_t to_us)
{
	if (ch == NULL)
		return -PL_EINVAL;
	if (from_us == PL_CHANNEL_LAST) {
		if (ch->t_in == INT64_MIN) {
			pl_meter_flag(&ch->meter, PL_Q_GAP); /* the first interval */
			return 0;
		}
		from_us = ch->t_in;
	}
	if (to_us < from_us)
		return -PL_EINVAL;
	note(ch, from_us, to_us, PL_Q_GAP);
	return 0;
}

void pl_channel_flag(struct pl_channel *ch, uint32_t flags)
{
	if (ch != NULL)
		pl_meter_flag(&ch->meter, flags);
}

/* An edge channel: time t has passed with no edge. Emits (and gives on) a pulse that ended. */
static int edges_time(struct pl_channel *ch, int64_t t)
{
	struct pl_pulse p;

	if (ch->t_in != INT64_MIN && t < ch->t_in)
		t = ch->t_in;
	saw_input(ch, t);
	if (pl_edges_advance(&ch->edges, t, &p) == 1)
		queue_pulses(ch, &p, 1);
	ch->t_in = t;
	return deliver(ch);
}

int pl_channel_advance(struct pl_channel *ch, int64_t t_us)
{
	int64_t h;
	int rc;

	if (ch == NULL)
		return -PL_EINVAL;
	begin(ch);
	if ((rc = deliver(ch)) != 0)
		return rc;
	if (ch->cfg.kind == PL_CHANNEL_EDGES) {
		if ((rc = edges_time(ch, t_us)) != 0)
			return rc;
		h = pl_edges_horizon(&ch->edges);
		if (h == INT64_MIN || h > t_us)
			h = t_us;
	} else {
		look(ch, t_us);
		h = pl_detector_horizon(&ch->det);
		if (h > t_us)
			h = t_us;
	}
	if (h == INT64_MIN)
		return 0;
	if ((rc = reach(ch, h)) != 0)
		return rc;
	if (h <= ch->reached)
		return 0;
	if ((rc = apply_notes(ch, h)) != 0 || (rc = meter_to(ch, mtime(ch, h))) != 0)
		return rc;
	ch->reached = h;
	return 0;
}

int pl_channel_settle(struct pl_channel *ch, int64_t t_us)
{
	int rc;

	if (ch == NULL)
		return -PL_EINVAL;
	begin(ch);
	if ((rc = deliver(ch)) != 0)
		return rc;
	return ch->cfg.kind == PL_CHANNEL_EDGES ? edges_time(ch, t_us) : 0;
}

size_t pl_channel_take(struct pl_channel *ch, struct pl_interval_record *out, size_t cap)
{
	size_t n;

	if (ch == NULL || out == NULL)
		return 0;
	n = cap < ch->nrec ? cap : ch->nrec;
	for (size_t i = 0; i < n; i++) {
		out[i] = ch->rec[i];
		/* the detector says no signal until its first pulse; an interval with pulses had one */
		if (out[i].pulses || out[i].rejected)
			out[i].flags &= ~(uint32_t)PL_Q_NO_SIGNAL;
	}
	ch->nrec -= (uint32_t)n;
	memmove(ch->rec, ch->rec + n, ch->nrec * sizeof(ch->rec[0]));
	return n;
}

size_t pl_channel_pending(const struct pl_channel *ch)
{
	return ch != NULL ? ch->nrec : 0;
}

const struct pl_channel_pulse *pl_channel_pulses(const struct pl_channel *ch, size_t *n)
{
	*n = ch->pulse_next - ch->view_from;
	return ch->pulse + ch->view_from;
}

int pl_channel_finish(struct pl_channel *ch, int64_t t_us)
{
	struct pl_meter *m = &ch->meter;
	struct pl_interval_record rec;
	int64_t tm;
	int rc;

	if (ch == NULL)
		return -PL_EINVAL;
	begin(ch);
	if ((rc = deliver(ch)) != 0)
		return rc;
	if (ch->cfg.kind == PL_CHANNEL_SAMPLES && !ch->det_finished) {
		struct pl_pulse out[PL_DETECTOR_MIN_OUT];
		size_t np = 0;

		if (ch->pulse_next > ch->view_from)
			return -PL_ENOSPC; /* the detector's last batch in a call of its own */

		pl_detector_finish(&ch->det, out, PL_DETECTOR_MIN_OUT, &np);
		ch->det_finished = 1;
		queue_pulses(ch, out, np);
		if ((rc = deliver(ch)) != 0)
			return rc;
	} else if (ch->cfg.kind == PL_CHANNEL_EDGES && (rc = edges_time(ch, t_us)) != 0) {
		return rc;
	}
	if ((rc = apply_notes(ch, t_us)) != 0)
		return rc;
	if (t_us > ch->reached)
		ch->reached = t_us;
	tm = mtime(ch, t_us);
	if ((rc = meter_to(ch, tm)) != 0)
		return rc;
	while (m->cur_start != INT64_MIN) {
		if (room(ch) == 0)
			return -PL_ENOSPC;
		rc = pl_meter_flush(m, tm, &rec);
		if (rc <= 0)
			return rc;
		push_record(ch, &rec);
	}
	return 0;
}

int pl_channel_resume(struct pl_channel *ch, int64_t now_us)
{
	struct pl_meter *m;
	struct pl_interval_record rec;
	int64_t tm;
	int rc;

	if (ch == NULL)
		return -PL_EINVAL;
	m = &ch->meter;
	begin(ch);
	if ((rc = deliver(ch)) != 0)
		return rc;
	/* what the input covered before the pause closes first, as far as the horizon lets it */
	tm = pl_channel_horizon(ch);
	if (tm > ch->t_in)
		tm = ch->t_in;
	if (tm != INT64_MIN && tm > ch->reached) {
		if ((rc = reach(ch, tm)) != 0 || (rc = apply_notes(ch, tm)) != 0 ||
		    (rc = meter_to(ch, mtime(ch, tm))) != 0)
			return rc;
		ch->reached = tm;
	}
	if ((rc = reach(ch, now_us)) != 0)
		return rc;
	if (room(ch) < 2)
		return -PL_ENOSPC; /* a step back and a flush write one record each at most */
	tm = mtime(ch, now_us);
	if (m->cur_start == INT64_MIN) {
		pl_meter_start(m, tm);
		goto front;
	}
	if (tm < m->t_last) {
		/* The clock is behind the meter (stepped back while stopped, or not yet set at
		 * boot): a step back, so that no pulse is refused and no start written twice. */
		if (pl_meter_step(m, tm - m->t_last, &rec) == 1)
			push_record(ch, &rec);
		if (m->cur_start == INT64_MIN) {
			pl_meter_start(m, tm);
			goto front;
		}
	}
	pl_meter_flag(m, PL_Q_GAP);
	if (m->cur_start + interval_us(m) > tm)
		goto front;
	while (room(ch) > 0 && pl_meter_flush(m, m->t_last, &rec) == 1)
		push_record(ch, &rec);
	pl_meter_start(m, tm);
	if (ch->switch_pending)
		ch->switch_at = align_up(m->cur_start + interval_us(m),
					 (int64_t)ch->switch_cfg.interval_s * PL_US_PER_S);
front:
	if (ch->cfg.kind == PL_CHANNEL_EDGES) {
		pl_edges_init(&ch->edges, &ch->cfg.edges);
		ch->t_in = INT64_MIN; /* the new filter's time starts afresh */
	}
	ch->det_finished = 0;
	return 0;
}

int pl_channel_step(struct pl_channel *ch, int64_t at_us, int64_t delta_us)
{
	if (ch == NULL)
		return -PL_EINVAL;
	if (ch->step_pending) {
		ch->step_delta = sat_add(ch->step_delta, delta_us);
		return 0;
	}
	ch->step_pending = 1;
	ch->step_at = at_us;
	ch->step_delta = delta_us;
	return 0;
}

int pl_channel_rebase(struct pl_channel *ch, int64_t offset_us, int64_t now_us)
{
	struct pl_meter *m;
	struct pl_meter_config mc;
	struct pl_interval_record rec;
	int64_t reg, h;
	int rc;

	if (ch == NULL)
		return -PL_EINVAL;
	m = &ch->meter;
	if ((rc = deliver(ch)) != 0)
		return rc;
	if (m->cur_start == INT64_MIN && m->t_last == INT64_MIN) {
		ch->offset_us = offset_us;
		return 0;
	}
	if (room(ch) == 0)
		return -PL_ENOSPC;
	/* the open interval in the old time base (it ends after the meter's time: one record) */
	while (room(ch) > 0 && pl_meter_flush(m, m->t_last, &rec) == 1)
		push_record(ch, &rec);
	reg = pl_meter_register(m);
	mc = m->cfg;
	pl_meter_init(m, &mc);
	pl_meter_set_register(m, reg);
	/* pulses still inside the detector or edge filter lie at or after the horizon */
	h = pl_channel_horizon(ch);
	if (h == INT64_MIN || h > now_us)
		h = now_us;
	ch->offset_us = offset_us;
	pl_meter_start(m, mtime(ch, h));
	return 0;
}

int pl_channel_reconfigure(struct pl_channel *ch, const struct pl_meter_config *mc)
{
	struct pl_meter *m, check;
	int64_t reg, t_last;

	if (ch == NULL || mc == NULL || pl_meter_init(&check, mc) != 0)
		return -PL_EINVAL;
	m = &ch->meter;
	ch->cfg.meter = *mc;
	if (m->cfg.imp_per_kwh == mc->imp_per_kwh && m->cfg.interval_s == mc->interval_s) {
		ch->switch_pending = 0;
		return 0;
	}
	if (m->cur_start == INT64_MIN) {
		/* no interval open: nothing to finish first */
		reg = pl_meter_register(m);
		t_last = m->t_last;
		pl_meter_init(m, mc);
		pl_meter_set_register(m, reg);
		if (t_last != INT64_MIN)
			pl_meter_start(m, align_up(t_last, (int64_t)mc->interval_s * PL_US_PER_S));
		ch->switch_pending = 0;
		return 0;
	}
	ch->switch_pending = 1;
	ch->switch_cfg = *mc;
	ch->switch_at = align_up(m->cur_start + interval_us(m),
				 (int64_t)mc->interval_s * PL_US_PER_S);
	return 1;
}

int pl_channel_skip(struct pl_channel *ch)
{
	struct pl_interval_record rec;
	int64_t tm;

	if (ch == NULL)
		return -PL_EINVAL;
	if (ch->pulse_next >= ch->npulses)
		return 0;
	tm = mtime(ch, ch->pulse[ch->pulse_next].pulse.t_us);
	if (tm > PL_METER_T_LIMIT || !due(&ch->meter, tm))
		return 0;
	if (room(ch) == 0)
		return -PL_ENOSPC;
	pl_meter_advance(&ch->meter, tm, NULL, 0); /* the meter's time only: no record */
	if (pl_meter_step(&ch->meter, 0, &rec) == 1)
		push_record(ch, &rec);
	return 1;
}

int64_t pl_channel_horizon(const struct pl_channel *ch)
{
	return ch->cfg.kind == PL_CHANNEL_EDGES ? pl_edges_horizon(&ch->edges)
						: pl_detector_horizon(&ch->det);
}

int pl_channel_idle(const struct pl_channel *ch)
{
	return ch->pulse_next >= ch->npulses && ch->nrec == 0 && ch->nnotes == 0 &&
	       !ch->step_pending && !ch->switch_pending;
}
