/* SPDX-License-Identifier: MIT */
/*
 * Analog pulse detector: samples of a light sensor over a meter's LED in, pulses out.
 *
 * There is no threshold to tune. The detector averages samples into bins of about a
 * millisecond, removes spikes with a median of three bins,
 * estimates the noise from the data, and follows the signal with a hysteresis "zig-zag"
 * tracker whose step adapts to the swing of recent pulses (never below a multiple of the
 * measured noise). Each state run is classified: the shorter of the two alternating states is
 * the pulse state (polarity, learned automatically unless fixed), a pulse-state run longer than
 * the longest plausible pulse is a steadily lit (or steadily dark) LED — a state, never a
 * pulse. Pulses sooner after the previous one than the meter constant and maximum power allow
 * are flagged rejected and counted.
 *
 * The state is plain data: it can be copied, saved and restored bit-exactly. Not thread-safe;
 * one detector per input. All arithmetic is integer, so results are identical on every
 * platform.
 */
#ifndef POWERLOGGER_DETECTOR_H
#define POWERLOGGER_DETECTOR_H

#include "powerlogger/common.h"

#ifdef __cplusplus
extern "C" {
#endif

enum pl_polarity {
	PL_POLARITY_AUTO = 0,
	PL_POLARITY_UP = 1,    /* the input value rises during a pulse */
	PL_POLARITY_DOWN = -1, /* the input value falls during a pulse */
};

enum pl_detector_state {
	PL_DET_NO_SIGNAL = 0, /* no excursion above the noise seen yet (or for a long time) */
	PL_DET_DARK,          /* resting between pulses */
	PL_DET_PULSING,       /* pulses seen recently */
	PL_DET_STEADY,        /* held in the pulse state far longer than a pulse: LED steadily lit */
};

struct pl_detector_config {
	uint32_t imp_per_kwh;  /* meter constant; 0 = unknown (no plausibility limit) */
	uint32_t max_power_w;  /* supply's maximum power; 0 = unknown (no plausibility limit) */
	int8_t polarity;       /* enum pl_polarity; default PL_POLARITY_AUTO */
	uint32_t max_width_us; /* longest plausible pulse; 0 = default (400 ms: a 200 ms flash
	                        * stretched by a slow LDR) */
};

/* A completed run waiting for the polarity decision. */
struct pl_det_run {
	int64_t t0;      /* estimated edge that began the run */
	uint32_t len_us;
	int32_t swing;   /* Q4 */
	int8_t side;     /* +1 high, -1 low */
};

#define PL_DET_PENDING 6
#define PL_DET_NARROW 16

/* Internal state. Plain data: treat as opaque, but it may be copied, saved and restored. */
struct pl_detector {
	struct pl_detector_config cfg;
	int64_t min_gap_us;
	uint32_t max_width_us;
	uint32_t wmax_eff;        /* longest pulse, from the learned width (<= max_width_us) */

	/* Bin accumulator: the mean of the samples over about a millisecond. */
	int64_t bin_t0, bin_end, bin_sum;
	uint32_t bin_n;
	uint32_t bin_len_us;      /* time-based bins (pl_detector_feed) */
	uint32_t bin_samples;     /* sample-count bins (pl_detector_feed_u16), 0 = unset */

	/* Bin pipeline; values in input units * 16 (Q4). */
	uint64_t nbins;
	int32_t y[2];             /* the two previous bin values (for median-of-3) */
	int64_t ty[2];
	int32_t m_prev;           /* previous median output */
	int64_t tm_prev;
	int32_t z_prev, s;        /* smoothed value, its slow EMA */
	int64_t tz_prev;
	uint8_t use_median, use_smooth;
	uint8_t smooth_len;       /* moving average length in bins (fine bins), 2..8 */
	uint8_t wide_seen;        /* pulses seen spanning 3 bins or more */
	uint8_t nar_n[2];         /* one-bin excursions seen, down and up (low rates) */
	uint8_t narrow_mode;      /* one-sample pulses established: no median filter */
	int32_t nar_min[2], nar_max[2]; /* their smallest and largest height (Q4) */
	int64_t nar_t[2][PL_DET_NARROW]; /* times of the last few of each */
	int64_t t_adapt;          /* time of the bin when the pipeline was last chosen */
	int64_t sm_sum;
	int64_t sm_delay;         /* how far the moving average's output lags, us */
	int32_t noise_m;          /* running median of |y[k] - y[k-1]| (Q4) */
	int32_t sigma_mem;        /* recent peak of the noise of z, decaying slowly (Q4) */
	uint64_t hold_from;       /* bin count from which sigma_mem is held */
	int32_t q5, q10, q25;     /* the same at lags of 5, 10 and 25 bins (mains flicker) */
	int32_t qz;               /* running median of |z[k] - z[k-box]| under the flicker filter */
	int32_t zring[16];
	uint8_t zi;
	int64_t t_first;          /* time of the first bin */
	int32_t yring[32];        /* recent bins, for the lagged differences */
	int32_t mring[16];        /* recent median outputs, for the flicker box filter */
	int32_t ring2[16];        /* second stage of the 120 Hz filter */
	int64_t box_sum, box2_sum;
	uint8_t yi, mi, ri;
	uint8_t box;              /* flicker filter length in bins: 0 (off), 8 or 10 */
	int32_t bin_dt_us;        /* measured spacing of bins */
	int32_t warm[15];         /* first differences for the initial noise estimate */
	uint8_t nwarm;
	uint8_t leak_shift;       /* extreme leak: time constant ~ 1 s in bins */

	/* Zig-zag tracker. */
	int8_t zz;                /* 0 initial, +1 high run, -1 low run */
	int8_t pol;               /* pulse side: +1, -1, 0 undecided */
	uint8_t held_short;       /* held pulse side, then a short rest run: times in a row */
	uint8_t after_hold;       /* the current rest run began with a held pulse side */
	uint8_t held;             /* the pulse side was held past max width (LED steady) */
	int32_t ext, ext_lo, ext_hi, hold_level;
	int32_t swing;            /* recent swing (Q4) */
	int32_t step;             /* current hysteresis step (Q4), from noise and swing */
	int32_t prev_ext;         /* extreme of the previous run */
	int64_t run_t0;
	uint8_t run_is_init;      /* current run began at the detector start */
	uint32_t width_avg_us;

	struct pl_det_run pend[PL_DET_PENDING];
	struct pl_det_run last_rest; /* the last rest run (polarity check) */
	uint8_t npend;
	uint16_t nlong[2];        /* runs too long for a pulse before the polarity was known */

	uint64_t n_pulses, n_rejected, n_steady, n_backwards, n_flips, n_unordered;
	int64_t last_pulse_t;     /* last emitted pulse (accepted or not) */
	int64_t last_accept_t;    /* last accepted pulse, for the plausibility limit */
	struct pl_pulse hold;     /* a pulse waiting min_gap for a rival (plausibility limit) */
	uint8_t has_hold;
	int32_t amp_avg;          /* learned height of this meter's pulses (input units) */
	int64_t t_last;
};

struct pl_detector_status {
	enum pl_detector_state state;
	int8_t polarity;         /* learned or configured: +1 up, -1 down, 0 undecided */
	int32_t noise;           /* noise estimate (standard deviation of one bin), input units */
	int32_t amplitude;       /* recent pulse swing, input units; 0 before the first pulse */
	uint32_t bin_us;         /* current bin length */
	uint64_t pulses;         /* pulses emitted, including rejected ones */
	uint64_t rejected;       /* pulses flagged PL_PULSE_REJECTED */
	uint64_t steady_events;  /* times the LED was held steadily in the pulse state */
	uint64_t backwards;      /* samples skipped because their time went backwards */
	uint64_t polarity_flips; /* times the learned polarity was found wrong and corrected */
	uint64_t unordered;      /* recovered pulses older than one given out: not given out
				  * (only input that no meter makes produces them) */
	int64_t last_pulse_us;   /* leading edge of the last pulse; INT64_MIN before any */
};

/* Fills a config with the defaults (auto polarity, no plausibility limit). */
void pl_detector_config_default(struct pl_detector_config *cfg);

/*
 * Initialises a detector. cfg may be NULL for the defaults. Returns 0 or -PL_EINVAL for a bad
 * configuration (polarity out of range, max_width_us over 10 s).
 */
int pl_detector_init(struct pl_detector *d, const struct pl_detector_config *cfg);

/*
 * Changes the plausibility limits of a detector (the meter constant and the supply's maximum
 * power, as in pl_detector_config) and keeps everything it has learned: for a setting changed
 * between two runs of a logger that resumes from a saved state. Pulses from now on are judged
 * by the new limits. Returns 0 or -PL_EINVAL (d NULL).
 */
int pl_detector_set_limits(struct pl_detector *d, uint32_t imp_per_kwh, uint32_t max_power_w);

/* One input sample. Values beyond +-4194304 (2^22) are clamped: no ADC gives more. Times
 * must lie within +-2^62 microseconds (+-146,000 years), like the meter's. */
struct pl_sample {
	int64_t t_us;
	int32_t v;
};

/*
 * Feeds n samples, times non-decreasing (also across calls). Pulses are written to out (at
 * most out_cap; *n_out receives how many). A call stops early, before the output could
 * overflow, so that it never has to drop a pulse: the return value is the number of samples
 * consumed; call again with the rest. out_cap must be at least PL_DETECTOR_MIN_OUT. A sample
 * whose time goes backwards is skipped and counted; use pl_detector_status to see.
 */
#define PL_DETECTOR_MIN_OUT 32
size_t pl_detector_feed(struct pl_detector *d, const struct pl_sample *s, size_t n,
			struct pl_pulse *out, size_t out_cap, size_t *n_out);

/*
 * Feeds n evenly spaced 16-bit samples; sample i is at t0_us + i * 1e6 / rate_hz. Same output
 * contract as pl_detector_feed. This is the fast path for raw ADC or sound-card input.
 */
size_t pl_detector_feed_u16(struct pl_detector *d, int64_t t0_us, uint32_t rate_hz,
			    const uint16_t *v, size_t n,
			    struct pl_pulse *out, size_t out_cap, size_t *n_out);

/*
 * Ends the input after the last sample fed: a pulse still in progress is not emitted (it may
 * be cut short), a pending polarity decision is made with what was seen. Writes pulses like
 * feed.
 */
void pl_detector_finish(struct pl_detector *d, struct pl_pulse *out, size_t out_cap,
			size_t *n_out);

void pl_detector_status(const struct pl_detector *d, struct pl_detector_status *st);

/*
 * The detector's horizon: no pulse it emits from now on will have a leading edge earlier than
 * this time. Pulses come out after their trailing edge, runs wait while the polarity is
 * learned, and the plausibility limit holds a pulse for min_gap; a caller that closes
 * intervals (pl_meter_advance) only up to the horizon never has to refuse a late pulse.
 * INT64_MIN before the first sample.
 */
int64_t pl_detector_horizon(const struct pl_detector *d);

/* Returns a short lower-case name ("dark", "pulsing", "steady", "no-signal"). */
const char *pl_detector_state_name(enum pl_detector_state s);

#ifdef __cplusplus
}
#endif
#endif
