/*
 * Analog pulse detector: samples of a light sensor over a meter's LED in, pulses out.
 *
 * There is no threshold to tune. The detector averages samples into bins of about a
 * millisecond (trimmed mean: one outlier per bin is dropped), removes single-bin spikes,
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
	uint32_t max_width_us; /* longest plausible pulse; 0 = default (250 ms) */
};

/* Internal state. Plain data: treat as opaque, but it may be copied, saved and restored. */
struct pl_detector {
	struct pl_detector_config cfg;
	int64_t min_gap_us;
	/* bin accumulator */
	int64_t bin_t0, bin_t1; /* time of first and last sample in the bin */
	int64_t bin_sum;
	int32_t bin_min, bin_max;
	uint32_t bin_n;
	uint32_t bin_len_us;
	/* median-of-3 and smoothing over bins (values in input units * 16) */
	int32_t y1, y2;
	int64_t ty1;
	int32_t z_prev;
	int64_t tz_prev;
	uint32_t nbins;
	/* noise: running median of |first difference| (units * 16) */
	int32_t dabs_med;
	/* zig-zag tracker (units * 16) */
	int8_t zz;          /* 0 = initial, +1 high run, -1 low run */
	int8_t pol;         /* pulse side: +1, -1, 0 = undecided */
	int8_t vote;
	uint8_t steady;     /* current pulse-side run was reclassified as steady */
	int32_t ext;        /* extreme of the current run (max in high, min in low) */
	int32_t ext_lo, ext_hi; /* in the initial state: min and max seen */
	int32_t level;      /* slow mean of the current run, the extreme leaks towards it */
	int32_t swing;      /* recent peak-to-valley swing */
	int32_t run_ext_other; /* extreme of the previous run */
	int64_t run_t0;     /* start of the current run (estimated edge time) */
	int64_t prev_run_len;
	int64_t last_emit_t;
	uint32_t width_avg_us;
	/* runs waiting for the polarity decision */
	struct pl_det_pending {
		int64_t t0;
		uint32_t len;
		int32_t swing;
		int8_t side;
	} pend[6];
	uint8_t npend;
	uint8_t nside[2];
	int64_t sum_side[2];
	/* counters */
	uint64_t n_pulses, n_rejected, n_steady;
	int64_t last_pulse_t;
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
	int64_t last_pulse_us;   /* leading edge of the last pulse; INT64_MIN before any */
};

/* Fills a config with the defaults (auto polarity, no plausibility limit). */
void pl_detector_config_default(struct pl_detector_config *cfg);

/*
 * Initialises a detector. cfg may be NULL for the defaults. Returns 0 or -PL_EINVAL for a bad
 * configuration (polarity out of range, max_width_us over 10 s).
 */
int pl_detector_init(struct pl_detector *d, const struct pl_detector_config *cfg);

/* One input sample. */
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
#define PL_DETECTOR_MIN_OUT 8
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
 * Ends the input at time t_end_us: a pulse still in progress is not emitted (it may be cut
 * short), a pending polarity decision is made with what was seen. Writes pulses like feed.
 */
void pl_detector_finish(struct pl_detector *d, struct pl_pulse *out, size_t out_cap,
			size_t *n_out);

void pl_detector_status(const struct pl_detector *d, struct pl_detector_status *st);

/* Returns a short lower-case name ("dark", "pulsing", "steady", "no-signal"). */
const char *pl_detector_state_name(enum pl_detector_state s);

#ifdef __cplusplus
}
#endif
#endif
