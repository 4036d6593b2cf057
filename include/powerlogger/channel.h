/* SPDX-License-Identifier: MIT */
/*
 * Meter channel: one input (light-sensor samples or digital edges) in, interval records out.
 *
 * A channel composes the analog detector (detector.h) or the edge filter (edges.h) with the
 * meter (meter.h) and owns the rules that make the three agree:
 *
 *   - The detector and the edge filter emit a pulse late (after its trailing edge, after the
 *     polarity is learned, after the plausibility limit's wait), and the meter refuses pulses
 *     older than a time it was advanced to. So the meter is advanced only to the front end's
 *     horizon: an interval closes only when no pulse can still arrive for it.
 *   - An edge filter accepts a level only once it has been held, so time passing with no edge
 *     is input too (pl_channel_advance, pl_channel_settle): a pulse whose end was seen is
 *     emitted before its interval closes or the source goes away.
 *   - Loss is flagged PL_Q_GAP on the intervals it may touch (pl_channel_gap), a pause in the
 *     input closes or flags the open interval (pl_channel_resume), the register runs on.
 *   - Records wait in a small queue inside the channel. A call that would have to write a
 *     record into a full queue stops there and returns -PL_ENOSPC having lost nothing: take
 *     records (pl_channel_take) and call again with the rest of its input. Everything a channel
 *     does is resumable in that way, so a caller with a bounded buffer (firmware), a caller
 *     that commits in batches (the daemon) and a caller that prints (detect) drive it alike.
 *
 * Time: the front end works in input time (a trace's own, or a clock that never jumps); the
 * meter works in meter time = input time + offset_us, 0 unless pl_channel_rebase() or
 * pl_channel_step() moved it. Every time argument below is input time unless it says so.
 *
 * The state is plain data with no pointers: it may be copied, saved whole and restored (a
 * restored copy goes on exactly as the original would have). Callers that save only the
 * detector's and the meter's state restore it with pl_channel_restore(); pulses still queued
 * are lost that way, see pl_channel_idle(). Not thread-safe; never allocates; integer
 * arithmetic only.
 */
#ifndef POWERLOGGER_CHANNEL_H
#define POWERLOGGER_CHANNEL_H

#include "powerlogger/common.h"
#include "powerlogger/detector.h"
#include "powerlogger/edges.h"
#include "powerlogger/meter.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PL_CHANNEL_PULSES PL_DETECTOR_MIN_OUT       /* pulses between front end and meter */
#define PL_CHANNEL_RECORDS 16                       /* records waiting for pl_channel_take */
#define PL_CHANNEL_NOTES 32                         /* flag spans waiting for the horizon */

/* For pl_channel_gap(): from the latest input time seen / up to the next input given. */
#define PL_CHANNEL_LAST INT64_MIN
#define PL_CHANNEL_NEXT INT64_MAX

enum pl_channel_kind {
	PL_CHANNEL_SAMPLES = 0, /* analog samples through the detector */
	PL_CHANNEL_EDGES = 1,   /* digital edges through the edge filter */
};

struct pl_channel_config {
	uint8_t kind;                  /* enum pl_channel_kind */
	uint8_t state_flags;           /* 1: the detector's states flag the intervals they span:
	                                * PL_Q_NO_SIGNAL (cleared again in an interval with
	                                * pulses) and PL_Q_STEADY; samples only */
	struct pl_detector_config det; /* PL_CHANNEL_SAMPLES */
	struct pl_edges_config edges;  /* PL_CHANNEL_EDGES */
	struct pl_meter_config meter;
};

/* A pulse as the meter took it, with the power from the gap before it (pl_meter_pulse()). */
struct pl_channel_pulse {
	struct pl_pulse pulse;         /* input time, as the front end emitted it */
	int64_t power_mw;              /* 0 for the first pulse and for a rejected one */
};

/* Quality flags over a span of input time, waiting for the meter to reach it. */
struct pl_channel_note {
	int64_t from, to;              /* to PL_CHANNEL_NEXT: until the next input */
	uint32_t flags;
	uint32_t reserved;
};

/* State. Plain data: the members may be read; change them only through the functions. */
struct pl_channel {
	struct pl_channel_config cfg;
	struct pl_detector det;        /* PL_CHANNEL_SAMPLES */
	struct pl_edges edges;         /* PL_CHANNEL_EDGES */
	struct pl_meter meter;
	int64_t offset_us;             /* meter time - input time */
	int64_t t_first;               /* first input time; INT64_MIN before any */
	int64_t t_in;                  /* latest input time (sample, edge, or edges' advance) */
	int64_t reached;               /* input time the meter was last advanced to */
	int64_t last_look;             /* input time the detector's state was last noted */
	uint64_t look_n;               /* n_in then */
	uint64_t steady_seen;          /* the detector's steady_events then */
	uint64_t n_in;                 /* samples or edges taken */
	uint64_t n_pulses, n_rejected; /* pulses given to the meter; of those, rejected */
	uint64_t n_late;               /* pulses older than the meter's time: counted at its time
	                                * (cannot happen while the rules above hold) */
	uint64_t n_range;              /* pulses beyond PL_METER_T_LIMIT: dropped */
	int64_t power_mw;              /* of the last pulse given to the meter */
	int64_t step_at, step_delta;   /* a pending clock step (pl_channel_step) */
	int64_t switch_at;             /* meter time of a pending settings change */
	struct pl_meter_config switch_cfg;
	uint8_t step_pending, switch_pending;
	uint8_t det_finished;          /* pl_detector_finish() was called */
	uint8_t reserved[5];
	uint32_t npulses, pulse_next;  /* pulse[pulse_next..npulses) wait for the meter */
	uint32_t view_from;            /* pulse[view_from..pulse_next): given by the last call */
	uint32_t nrec, nnotes;
	struct pl_channel_pulse pulse[PL_CHANNEL_PULSES];
	struct pl_interval_record rec[PL_CHANNEL_RECORDS];
	struct pl_channel_note note[PL_CHANNEL_NOTES];
};

/* Fills cfg with the defaults: samples, no state flags, the core defaults of each part. */
void pl_channel_config_default(struct pl_channel_config *cfg);

/*
 * Initialises a channel: the front end the kind names (the other is left zeroed) and the meter
 * with register 0, not yet observing. cfg NULL for the defaults. Returns 0 or -PL_EINVAL (ch
 * NULL, kind unknown, or a configuration the detector, edge filter or meter refuses).
 */
int pl_channel_init(struct pl_channel *ch, const struct pl_channel_config *cfg);

/*
 * Takes over a saved detector state (det; NULL keeps the channel's; ignored for edges) and
 * meter state (meter; NULL keeps the channel's), as a caller does whose checkpoint holds only
 * those two. The meter observes on if the saved one did, and the latest input time is the
 * detector's. Queued pulses, records and notes are dropped; pending steps and settings
 * changes are cleared; the counters (n_pulses, ...) go on from the channel's. An edge
 * channel's filter is not restored (see pl_channel_resume). Call after pl_channel_init(); then
 * pl_channel_reconfigure() if the meter's settings changed since, and pl_channel_resume().
 * Returns 0 or -PL_EINVAL.
 */
int pl_channel_restore(struct pl_channel *ch, const struct pl_detector *det,
		       const struct pl_meter *meter);

/*
 * Starts observation at t_us (the first interval is PL_Q_PARTIAL unless t_us lies on a
 * boundary). Optional: the first sample or edge starts it otherwise. Returns 0, -PL_EINVAL
 * (already observing), -PL_ERANGE or -PL_EORDER as pl_meter_start().
 */
int pl_channel_start(struct pl_channel *ch, int64_t t_us);

/*
 * Feeds samples (times non-decreasing, also across calls; PL_CHANNEL_SAMPLES only). A call
 * takes a prefix of the input: *used gets how many samples it took (maybe fewer than n, maybe
 * 0, whatever it returns); call again with the rest. Pulses the detector emits go to the
 * meter, and intervals a pulse closes are queued; it does not advance the meter to the horizon
 * (pl_channel_advance). Returns 0, -PL_ENOSPC (the record queue is full: take records first;
 * nothing was lost), -PL_ERANGE (a pulse beyond the meter's range was dropped and counted in
 * n_range) or -PL_EINVAL (NULL arguments, or an edge channel).
 */
int pl_channel_feed(struct pl_channel *ch, const struct pl_sample *s, size_t n, size_t *used);

/*
 * The same for n evenly spaced 16-bit samples, sample i at t0_us + i * 1e6 / rate_hz
 * (pl_detector_feed_u16). After a partial take, call again with t0_us the exact time of the
 * first sample left.
 */
int pl_channel_feed_u16(struct pl_channel *ch, int64_t t0_us, uint32_t rate_hz, const uint16_t *v,
			size_t n, size_t *used);

/*
 * Feeds one edge: the raw level (0 or 1, before active_low) from t_us on (PL_CHANNEL_EDGES
 * only). Returns 0 (taken; if the queue filled before the pulse it completed was through, that
 * pulse waits and goes on at the next call), -PL_ENOSPC (not taken, because pulses of earlier
 * calls still wait: take records and give it again), -PL_EORDER (older than the latest input
 * time: ignored; a caller that would rather count it late gives max(t_us, ch->t_in)),
 * -PL_ERANGE as for pl_channel_feed (the edge was taken), or -PL_EINVAL.
 */
int pl_channel_edge(struct pl_channel *ch, int64_t t_us, int level);

/*
 * Input in [from_us, to_us] was lost, or may have been (an overrun, a full ring, a clock that
 * jumped). Every interval that span touches is flagged PL_Q_GAP once the meter reaches it.
 * from_us PL_CHANNEL_LAST: from the latest input time seen; to_us PL_CHANNEL_NEXT: up to the
 * next sample, edge or edge channel's advance. Before any input, the first interval is
 * flagged. An interval already closed cannot be flagged: the open one is. Returns 0 or
 * -PL_EINVAL (to_us < from_us).
 */
int pl_channel_gap(struct pl_channel *ch, int64_t from_us, int64_t to_us);

/* Adds quality flags (enum pl_quality) to the meter's open interval now (pl_meter_flag()). */
void pl_channel_flag(struct pl_channel *ch, uint32_t flags);

/*
 * Time t_us has come. An edge channel takes it as input (the filter accepts levels held long
 * enough and emits a pulse that ended; t_us before the latest input time is taken as that);
 * a sample channel with state_flags notes the detector's state over the input since the last
 * advance, up to t_us (give the time of the last sample); then the meter is advanced to the
 * front end's horizon, but not beyond t_us, and the flags noted up to there are applied (an
 * advance that would not move it past where it was does nothing more). Pulses still queued
 * are given to the meter first. Returns 0 (done), -PL_ENOSPC (the record queue filled: take
 * records and call again), -PL_ERANGE as for pl_channel_feed, -PL_EINVAL.
 */
int pl_channel_advance(struct pl_channel *ch, int64_t t_us);

/*
 * As pl_channel_advance() for the front end only: time t_us has passed with no edge, so a
 * pulse whose rest level is held by then is emitted and counted; no interval is closed beyond
 * what that pulse closes. For an edge source about to close (its filter would take the pulse
 * with it). A sample channel only gives queued pulses to the meter. Same returns.
 */
int pl_channel_settle(struct pl_channel *ch, int64_t t_us);

/*
 * Moves up to cap queued records into out, oldest first; returns how many. Records are those
 * of pl_meter (meter.h), except that PL_Q_NO_SIGNAL is cleared from an interval with pulses.
 */
size_t pl_channel_take(struct pl_channel *ch, struct pl_interval_record *out, size_t cap);

/* Records waiting in the queue. */
size_t pl_channel_pending(const struct pl_channel *ch);

/*
 * The pulses the meter took (or refused for their range: n_range) during the last call of
 * feed, feed_u16, edge, advance, settle, finish or resume, in order; *n gets how many. Valid
 * until the next of those calls. The firmware counts its pulses here; detect prints them.
 */
const struct pl_channel_pulse *pl_channel_pulses(const struct pl_channel *ch, size_t *n);

/*
 * End of input at t_us (for a trace: one sample period after its last sample): the detector's
 * last pulses (pl_detector_finish(), once), then every interval up to t_us closed and the open
 * one written, PL_Q_PARTIAL if t_us ends it early. Afterwards no interval is open; a later
 * input starts a new observation. Returns 0, -PL_ENOSPC (call again after taking records,
 * if any: it also stops once after giving on pulses queued by an earlier call),
 * -PL_ERANGE (t_us or a pulse beyond the meter's range), -PL_EORDER (t_us before the meter's
 * time) or -PL_EINVAL.
 */
int pl_channel_finish(struct pl_channel *ch, int64_t t_us);

/*
 * The input goes on at now_us after a pause (a restart from a checkpoint, a source that was
 * gone and is back). Queued pulses go to the meter first, the intervals the input covered
 * close as far as the horizon allows (as pl_channel_advance() to the latest input time), and a
 * pending clock step takes effect if now_us has reached it. Then: not observing yet,
 * observation starts at now_us;
 * now_us before the meter's time (the clock is behind a checkpoint), the meter steps back
 * (pl_meter_step()) so that no interval start is written twice; the open interval is flagged
 * PL_Q_GAP, and if it is over by now_us it is written where observation stopped
 * (PL_Q_PARTIAL) and a new observation starts at now_us, so the pause gives no records rather
 * than records of zero pulses. An edge channel's filter starts afresh (its state was about
 * the line as it was); the detector keeps what it learned. Returns 0, -PL_ENOSPC (nothing
 * done but the pulses: call again after taking records), -PL_ERANGE, -PL_EINVAL.
 */
int pl_channel_resume(struct pl_channel *ch, int64_t now_us);

/*
 * The clock that stamps meter time was stepped by delta_us at input time at_us (see
 * pl_meter_step()). Takes effect once the input reaches at_us (a pulse at or after it, the
 * horizon, a resume): intervals up to then close as usual, pl_meter_step() flags the gap, and
 * offset_us moves by delta_us. at_us INT64_MIN: at once. A second step before the first took
 * effect adds to it. Returns 0 or -PL_EINVAL.
 */
int pl_channel_step(struct pl_channel *ch, int64_t at_us, int64_t delta_us);

/*
 * From now on meter time = input time + offset_us (firmware: stamped once the clock is set).
 * Observing, the open interval is written in the old time base (PL_Q_PARTIAL), and the meter
 * starts afresh at the front end's horizon (now_us if there is none or it is later) in the new
 * one, the register carried over exactly. Returns 0, -PL_ENOSPC (nothing done: take records
 * and call again) or -PL_EINVAL.
 */
int pl_channel_rebase(struct pl_channel *ch, int64_t offset_us, int64_t now_us);

/*
 * New meter settings (the meter constant, the interval length) for a channel that goes on, as
 * after a restart with a changed configuration. With no interval open they take effect at
 * once (observation restarts at the next boundary of the new length after the meter's time);
 * otherwise at switch_at, the first boundary of both lengths after the open interval: every
 * interval of the old length up to there closes (the last cut short), the meter starts again
 * with the new settings there, the register goes on, and no record of the new length overlaps
 * one of the old. Returns 0 (in effect now), 1 (pending until ch->switch_at, meter time) or
 * -PL_EINVAL (settings the meter refuses).
 */
int pl_channel_reconfigure(struct pl_channel *ch, const struct pl_meter_config *mc);

/*
 * For a stop in the middle of a long silent stretch: the intervals still to close before the
 * queued pulse are not closed one by one; the open interval is written flagged PL_Q_GAP and
 * PL_Q_PARTIAL and the pulse's interval opens flagged PL_Q_GAP (pl_meter_step(0)). Returns 1
 * if it skipped, 0 if there was nothing to skip, -PL_ENOSPC (no room for the record).
 */
int pl_channel_skip(struct pl_channel *ch);

/* The front end's horizon (pl_detector_horizon() or pl_edges_horizon()), input time. */
int64_t pl_channel_horizon(const struct pl_channel *ch);

/*
 * 1 when nothing waits inside the channel but the front end's and the meter's own state: no
 * queued pulse, record or note, no pending step or settings change. A checkpoint of the
 * detector and meter alone (pl_channel_restore) loses nothing only then; a saved copy of the
 * whole struct never loses anything.
 */
int pl_channel_idle(const struct pl_channel *ch);

#ifdef __cplusplus
}
#endif
#endif
