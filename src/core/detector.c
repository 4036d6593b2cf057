/* SPDX-License-Identifier: MIT */
/*
 * Analog pulse detector.
 *
 * The pipeline, per sample and then per bin of about a millisecond:
 *
 *   samples -> bin (mean) -> median of 3 bins (removes an ADC spike, which disturbs one bin;
 *   at low rates only when pulses span several bins) -> moving average over half a pulse or
 *   over one mains flicker period (z) -> slow EMA of z (s)
 *
 * Noise: a running median of |difference of consecutive bins|, which ignores the rare large
 * differences at pulse edges and includes flicker, so the step never drops into it.
 *
 * Detection is a hysteresis "zig-zag": in a high run the tracker remembers the highest s, in a
 * low run the lowest; when z moves more than `step` the other way, the run ends. The step is a
 * fraction of the recent peak-to-valley swing, never less than eight noise deviations. Because
 * every rise is measured from the last valley (not from a fixed baseline), it follows ambient
 * drift and room-light steps, and it still separates LDR pulses whose slow tails merge at high
 * load. The extremes leak slowly (about a second) towards the signal, so that slow drift cannot
 * accumulate into a false edge and noise cannot ratchet an extreme outwards for ever.
 *
 * Runs alternate high, low, high... The pulse side is the side whose runs are shorter (an LED
 * is dark far longer than it flashes, and inverted meters the other way round); until two runs
 * of each side have been seen, runs wait in a small buffer and are emitted once the polarity is
 * known. A pulse-side run longer than max_width is the LED held steadily (anti-creep) or a
 * room-light step: never a pulse; the tracker then takes that level as the new rest level.
 *
 * Integer arithmetic only; values inside are input units * 16.
 */
#include "powerlogger/detector.h"

#include <string.h>

#define Q 16                       /* fixed-point scale of values inside the detector */
#define DEFAULT_MAX_WIDTH_US 400000u
#define BIN_US 1000u               /* target bin length */
#define MIN_STEP (3 * Q)           /* never react to less than 3 LSB */
#define NOISE_K 8                  /* step floor: 8 sigma of z */
#define WARM_BINS 15
/* d->held: the LED held steadily (a state), or a pulse-side run longer than a pulse */
#define HELD_STEADY 1
#define HELD_STAIR 2
#define HOLD_SETTLE 2048           /* bins before the noise estimate is held (see hold_noise) */
#define PULSING_HOLD_US (INT64_C(120) * PL_US_PER_S)

/* 65536 / n, for moving averages of n = 1..8 bins */
static const int64_t recip[9] = { 0, 65536, 32768, 21845, 16384, 13107, 10923, 9362, 8192 };

/* The per-bin path is hot at low sample rates (a bin a sample); let it be one function. */
#if defined(__GNUC__)
#define HOT_INLINE static inline __attribute__((always_inline))
#else
#define HOT_INLINE static inline
#endif

static int32_t clamp32(int64_t v)
{
	if (v > INT32_MAX)
		return INT32_MAX;
	if (v < INT32_MIN)
		return INT32_MIN;
	return (int32_t)v;
}

/*
 * Bin values are limited to +-2^22 input units (any ADC up to 23 bits), so that every sum and
 * difference inside the detector stays far from int32 overflow whatever the input.
 */
#define VALUE_LIMIT (INT64_C(1) << 26) /* 2^22 units in Q4 */
static int32_t clamp_value(int64_t v)
{
	if (v > VALUE_LIMIT)
		return (int32_t)VALUE_LIMIT;
	if (v < -VALUE_LIMIT)
		return (int32_t)-VALUE_LIMIT;
	return (int32_t)v;
}

static int32_t med3(int32_t a, int32_t b, int32_t c)
{
	if (a > b) {
		int32_t t = a;
		a = b;
		b = t;
	}
	if (b > c)
		b = c;
	return a > b ? a : b;
}

static int32_t abs32(int32_t v)
{
	return v < 0 ? -v : v;
}

void pl_detector_config_default(struct pl_detector_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->polarity = PL_POLARITY_AUTO;
}

int pl_detector_init(struct pl_detector *d, const struct pl_detector_config *cfg)
{
	struct pl_detector_config def;

	if (cfg == NULL) {
		pl_detector_config_default(&def);
		cfg = &def;
	}
	if (cfg->polarity < -1 || cfg->polarity > 1)
		return -PL_EINVAL;
	if (cfg->max_width_us > 10u * 1000000u)
		return -PL_EINVAL;
	memset(d, 0, sizeof(*d));
	d->cfg = *cfg;
	d->min_gap_us = pl_min_gap_us(cfg->imp_per_kwh, cfg->max_power_w);
	d->max_width_us = cfg->max_width_us ? cfg->max_width_us : DEFAULT_MAX_WIDTH_US;
	d->wmax_eff = d->max_width_us;
	d->pol = cfg->polarity;
	d->bin_len_us = BIN_US;
	d->bin_end = INT64_MIN;
	d->t_last = INT64_MIN;
	d->last_pulse_t = INT64_MIN;
	d->last_accept_t = INT64_MIN;
	d->use_median = 1;
	d->use_smooth = 1;
	d->smooth_len = 3;
	d->hold_from = HOLD_SETTLE;
	d->leak_shift = 10;
	return 0;
}

int pl_detector_set_limits(struct pl_detector *d, uint32_t imp_per_kwh, uint32_t max_power_w)
{
	if (d == NULL)
		return -PL_EINVAL;
	d->cfg.imp_per_kwh = imp_per_kwh;
	d->cfg.max_power_w = max_power_w;
	d->min_gap_us = pl_min_gap_us(imp_per_kwh, max_power_w);
	return 0;
}

/* ---- emitting pulses -------------------------------------------------------------------- */

/*
 * The noise (standard deviation) of the tracked signal z, Q4, from the running median of
 * |difference| of bins (0.954 sigma for independent Gaussian bins) times a factor measured for
 * each filter (the median of 3 correlates neighbouring bins, so the averages that follow
 * reduce the noise less than 1/sqrt(length)).
 */
/* sigma of z over median|diff| * 256, measured on white noise at 1 and 10 kHz (the larger of
 * the two) for each smoothing length */
static const int32_t by_len[9] = { 269, 269, 177, 148, 133, 123, 115, 108, 102 };

static int32_t noise_sigma_now(const struct pl_detector *d)
{
	if (d->box) {
		/* Under the flicker filter, also measure z itself: a flicker that an ADC's dead
		 * zone clips to a square wave leaves the lagged bin differences at zero half the
		 * time, and their median says too little. */
		int64_t by_bins = d->box == 10 ? (int64_t)d->q10 * 90 / 256 : (int64_t)d->q25 * 108 / 256;
		int64_t by_z = (int64_t)d->qz * 268 / 256;
		return clamp32(by_bins > by_z ? by_bins : by_z);
	}
	return clamp32(d->use_smooth ? (int64_t)d->noise_m * by_len[d->smooth_len] / 256
				     : (int64_t)d->noise_m * 21 / 20);
}

/*
 * The noise the step floor uses: never much less than recently seen. An ADC that drifts into
 * its dead zone reads 0 without noise for minutes; on the way out its first clipped wiggles
 * would otherwise pass for pulses. So the estimate is held at its recent peak, which decays
 * with a time constant of about nine minutes of bins (and restarts when the filter changes).
 */
static int32_t noise_sigma_q(const struct pl_detector *d)
{
	int32_t now = noise_sigma_now(d);
	if (d->nbins < d->hold_from)
		return now;
	return now > d->sigma_mem ? now : d->sigma_mem;
}

/* Updates the held noise; called with the step, every 16 bins. */
static void hold_noise(struct pl_detector *d)
{
	int32_t now = noise_sigma_now(d);

	if (d->nbins < d->hold_from) {
		d->sigma_mem = now; /* still settling: follow, do not hold */
		return;
	}
	if (now >= d->sigma_mem)
		d->sigma_mem = now;
	else
		d->sigma_mem -= (d->sigma_mem >> 15) + ((d->nbins & 0x7fff) == 0);
}

/* Learns from an accepted pulse: its width and height are this meter's. */
static void learn(struct pl_detector *d, const struct pl_pulse *p)
{
	uint32_t len = p->width_us;
	/* A pulse cut to about half the gap before it (a metering chip's output at high rates,
	 * 50 % duty) tells how short the gaps are, not how long this meter's pulses are once the
	 * gaps are long again: it may raise the longest plausible width, never lower it. */
	int duty_cut = d->last_accept_t != INT64_MIN && p->t_us > d->last_accept_t &&
		       (uint64_t)len * 5 >= (uint64_t)(p->t_us - d->last_accept_t) * 2;

	d->last_accept_t = p->t_us;
	/* The learned width sets the smoothing, and at low rates whether a pulse spans enough
	 * bins for the spike filter. */
	d->width_avg_us = d->width_avg_us ? (uint32_t)(((uint64_t)d->width_avg_us * 3 + len) / 4) : len;
	d->amp_avg = d->amp_avg ? (d->amp_avg * 3 + p->amplitude) / 4 : p->amplitude;
	/* A meter's flashes all last the same time: once it is known, a pulse-side run four
	 * times longer is a lamp switched on or the LED held, so the pulse that may follow on
	 * top of it is found as a pulse of its own. */
	{
		uint64_t w = (uint64_t)d->width_avg_us * 4 + 2u * (uint32_t)(d->bin_dt_us > 0 ? d->bin_dt_us : 0);
		if (w < 30000)
			w = 30000;
		if (w > d->max_width_us)
			w = d->max_width_us;
		if (!duty_cut || w > d->wmax_eff)
			d->wmax_eff = (uint32_t)w;
	}
	if (d->bin_dt_us > 0 && len >= 3u * (uint32_t)d->bin_dt_us && d->wide_seen < 255)
		d->wide_seen++;
}

static void output(struct pl_detector *d, const struct pl_pulse *p, struct pl_pulse *out,
		   size_t *n_out)
{
	out[(*n_out)++] = *p;
	d->n_pulses++;
	d->last_pulse_t = p->t_us;
	if (p->flags & PL_PULSE_REJECTED)
		d->n_rejected++;
	else
		learn(d, p);
}

/* How unlike this meter's pulses a pulse is: relative differences of width and height,
 * in thousandths. */
static int64_t unlikeness(const struct pl_detector *d, const struct pl_pulse *p)
{
	int64_t w = d->width_avg_us, a = d->amp_avg;
	int64_t dw = (int64_t)p->width_us - w, da = (int64_t)p->amplitude - a;

	if (w <= 0 || a <= 0)
		return 0;
	return (dw < 0 ? -dw : dw) * 1000 / w + (da < 0 ? -da : da) * 1000 / a;
}

/* The plausibility limit: of two pulses closer than the supply allows, the one less like
 * this meter's pulses is rejected. Each pulse is held until min_gap has passed. */
static void release_hold(struct pl_detector *d, int64_t now, struct pl_pulse *out, size_t *n_out)
{
	if (d->has_hold && now - d->hold.t_us >= d->min_gap_us) {
		d->has_hold = 0;
		output(d, &d->hold, out, n_out);
	}
}

static void emit(struct pl_detector *d, int64_t t0, uint32_t len, int32_t swing,
		 struct pl_pulse *out, size_t *n_out)
{
	struct pl_pulse p;
	int32_t sigma = noise_sigma_q(d);
	int64_t snr100 = sigma > 0 ? (int64_t)swing * 100 / sigma : 100 * 100;

	/* Pulses go out in time order. A recovered one (a wrong polarity corrected, one-sample
	 * pulses established) older than one already given out can only come from input that no
	 * meter makes; it is counted, not given out. */
	if (d->n_pulses > 0 && t0 < d->last_pulse_t) {
		d->n_unordered++;
		return;
	}
	p.t_us = t0;
	p.width_us = len;
	p.amplitude = swing / Q;
	/* SNR 20 or more is certain; below 8 the tracker cannot have seen it. */
	p.confidence = (uint8_t)(snr100 >= 2000 ? 100 : snr100 <= 800 ? 0 : (snr100 - 800) / 12);
	p.flags = 0;
	/* At low rates (bins of 2 ms or more), once this meter's pulses are known to span three
	 * bins or more, a run of one or two bins is ADC outliers, not the LED. */
	if (d->bin_dt_us >= 2000 && d->wide_seen >= 2 &&
	    d->width_avg_us >= 3u * (uint32_t)d->bin_dt_us && len <= 2u * (uint32_t)d->bin_dt_us) {
		p.flags = PL_PULSE_REJECTED | PL_PULSE_NARROW;
		if (d->has_hold) { /* keep the output in time order */
			d->has_hold = 0;
			output(d, &d->hold, out, n_out);
		}
		output(d, &p, out, n_out);
		return;
	}
	/* An LED is equally bright every time: a run under a quarter of this meter's learned
	 * height and under 3/4 of its learned width is not its flash but an ADC outlier burst
	 * (WiFi transmitting, 0.2-1 ms, smeared over a few bins): rejected and counted. */
	if (d->amp_avg > 0 && d->width_avg_us > 0 && (int64_t)p.amplitude * 4 < d->amp_avg &&
	    (uint64_t)len * 4 < (uint64_t)d->width_avg_us * 3)
		p.flags = PL_PULSE_REJECTED | PL_PULSE_NARROW;
	if (d->min_gap_us <= 0 || p.flags) {
		if (p.flags && d->has_hold) { /* keep the output in time order */
			d->has_hold = 0;
			output(d, &d->hold, out, n_out);
		}
		output(d, &p, out, n_out);
		return;
	}
	release_hold(d, t0, out, n_out);
	if (!d->has_hold) {
		if (d->last_accept_t != INT64_MIN && t0 - d->last_accept_t < d->min_gap_us) {
			p.flags = PL_PULSE_REJECTED; /* too soon after one already given out */
			output(d, &p, out, n_out);
			return;
		}
		d->hold = p;
		d->has_hold = 1;
		return;
	}
	/* Two within min_gap: keep the one more like the meter's pulses (the first on a tie),
	 * and give both out now, in time order. */
	d->has_hold = 0;
	if (unlikeness(d, &p) < unlikeness(d, &d->hold))
		d->hold.flags = PL_PULSE_REJECTED;
	else
		p.flags = PL_PULSE_REJECTED;
	if (p.t_us < d->hold.t_us) {
		output(d, &p, out, n_out);
		output(d, &d->hold, out, n_out);
	} else {
		output(d, &d->hold, out, n_out);
		output(d, &p, out, n_out);
	}
}

/* The polarity is known: the waiting runs of the pulse side are pulses. */
static void decided(struct pl_detector *d, int8_t pol, struct pl_pulse *out, size_t *n_out)
{
	d->pol = pol;
	for (unsigned i = 0; i < d->npend; i++) {
		const struct pl_det_run *r = &d->pend[i];
		if (r->side == pol && r->len_us <= d->max_width_us)
			emit(d, r->t0, r->len_us, r->swing, out, n_out);
	}
	d->npend = 0;
}

/* Decides the polarity from the pending runs once each side has two, and emits the pulses. */
static void try_decide(struct pl_detector *d, struct pl_pulse *out, size_t *n_out)
{
	int64_t sum[2] = { 0, 0 };
	int n[2] = { 0, 0 };
	int8_t pol;

	for (unsigned i = 0; i < d->npend; i++) {
		int k = d->pend[i].side > 0;
		uint32_t len = d->pend[i].len_us;
		sum[k] += len > 1000000u ? 1000000u : len;
		n[k]++;
	}
	if (n[0] >= 2 && n[1] >= 2) {
		pol = sum[1] <= sum[0] ? 1 : -1;       /* the shorter side pulses */
	} else if (n[1] >= 2 && d->nlong[0] > d->nlong[1]) {
		pol = 1;                               /* high runs short, low runs long */
	} else if (n[0] >= 2 && d->nlong[1] > d->nlong[0]) {
		pol = -1;
	} else if (d->npend == PL_DET_PENDING) {
		pol = n[1] >= n[0] ? 1 : -1;
	} else {
		return;
	}
	decided(d, pol, out, n_out);
}

/*
 * A run of `side` ended at t_edge. Classifies it: pulse, rest, steady, or pending.
 */
static void run_ended(struct pl_detector *d, int8_t side, int64_t t_edge, int32_t swing,
		      struct pl_pulse *out, size_t *n_out)
{
	int64_t len64 = t_edge - d->run_t0;
	uint32_t len = len64 > UINT32_MAX ? UINT32_MAX : (uint32_t)(len64 < 0 ? 0 : len64);

	if (d->run_is_init) {
		d->run_is_init = 0;
		return;
	}
	if (d->pol == 0) {
		struct pl_det_run *r = &d->pend[d->npend++];
		r->t0 = d->run_t0;
		r->len_us = len;
		r->swing = swing;
		r->side = side;
		try_decide(d, out, n_out);
		return;
	}
	if (side == d->pol) {
		if (len <= d->wmax_eff)
			emit(d, d->run_t0, len, swing, out, n_out);
		return;
	}
	/*
	 * A rest run. If it began when a "pulse" was held too long and was itself short, it may
	 * be a real pulse seen with the polarity the wrong way round: keep it (see check_hold).
	 */
	d->last_rest.t0 = d->run_t0;
	d->last_rest.len_us = len;
	d->last_rest.swing = swing;
	d->last_rest.side = side;
	if (d->after_hold && len <= d->max_width_us / 2 && d->cfg.polarity == PL_POLARITY_AUTO) {
		if (d->npend == PL_DET_PENDING) {
			memmove(&d->pend[0], &d->pend[1], sizeof(d->pend[0]) * (PL_DET_PENDING - 1));
			d->npend--;
		}
		d->pend[d->npend++] = d->last_rest;
		if (d->held_short < 255)
			d->held_short++;
	} else {
		d->held_short = 0;
		d->npend = 0;
	}
}

/* ---- the per-bin tracker ---------------------------------------------------------------- */

static int32_t step_of(const struct pl_detector *d)
{
	int64_t floor_ = (int64_t)noise_sigma_q(d) * NOISE_K;
	int64_t frac = (int64_t)d->swing * 3 / 16;

	/* for the first half second or so the noise estimate is still settling: twice the
	 * margin, so that it cannot make a pulse of the noise it has not measured yet */
	if (d->tz_prev - d->t_first < 512000)
		floor_ *= 2;
	int64_t st = floor_ > frac ? floor_ : frac;
	/* values stay within +-2^26 (clamp_value), so a step over 2^28 means "never": cap it there
	 * and ext +- step cannot overflow */
	if (st > (INT64_C(1) << 28))
		st = INT64_C(1) << 28;
	return (int32_t)(st > MIN_STEP ? st : MIN_STEP);
}

/*
 * The edge of a new run: the first bin at or past `level` (half a step from the extreme).
 * Interpolating between bins would put it before the first sample that saw the change, up to
 * a sample period early at low rates; this is at most a bin late.
 */
static int64_t edge_time(int64_t t_prev, int32_t z_prev, int64_t t, int32_t level, int rising)
{
	if (rising ? z_prev >= level : z_prev <= level)
		return t_prev;
	return t;
}

HOT_INLINE void track(struct pl_detector *d, int64_t t, int32_t z, struct pl_pulse *out,
		  size_t *n_out)
{
	int32_t step = d->step;
	int32_t s = d->s;

	if (d->has_hold)
		release_hold(d, t, out, n_out);

	if (d->zz == 0) {
		/* Initial run: no direction yet. */
		if (s < d->ext_lo)
			d->ext_lo = s;
		if (s > d->ext_hi)
			d->ext_hi = s;
		if (z > d->ext_lo + step) {
			d->zz = -1;
			d->ext = d->ext_lo;
		} else if (z < d->ext_hi - step) {
			d->zz = 1;
			d->ext = d->ext_hi;
		} else {
			if (t - d->run_t0 > (int64_t)d->max_width_us) {
				/* re-anchor, so that slow drift cannot add up to a step */
				d->ext_lo = d->ext_hi = s;
				d->run_t0 = t;
			}
			return;
		}
		/* fall through to the transition below with the run that just ended */
	} else if (d->held == HELD_STAIR) {
		/* A pulse-side run longer than this meter's pulses, then a further move of a step
		 * the pulse's way: the first move was the room light stepping (a lamp switched on
		 * just before the pulse), and the pulse begins here, its swing from that level. */
		int8_t up = d->zz > 0;
		if (up ? s > d->ext : s < d->ext)
			d->ext = s;
		/* the slow mean s, not z: a WiFi burst of a bin or two must not pass for it */
		if (up ? s > d->hold_level + step : s < d->hold_level - step) {
			int32_t half = up ? d->hold_level + step / 2 : d->hold_level - step / 2;
			d->run_t0 = edge_time(d->tz_prev, d->z_prev, t, half, up);
			d->prev_ext = d->hold_level;
			d->held = 0;
		}
		if (up ? z >= d->ext - step : z <= d->ext + step)
			goto check_hold;
	} else if (d->zz > 0) {
		if (s > d->ext)
			d->ext = s;
		else if ((d->nbins & 3) == 0) /* the leak, every fourth bin */
			d->ext -= (d->ext - s) >> d->leak_shift;
		if (d->held && s > d->hold_level + step) {
			d->held = 0; /* left the held level: the run really starts here */
			d->run_t0 = t;
		}
		if (z >= d->ext - step)
			goto check_hold;
	} else {
		if (s < d->ext)
			d->ext = s;
		else if ((d->nbins & 3) == 0)
			d->ext += (s - d->ext) >> d->leak_shift;
		if (d->held && s < d->hold_level - step) {
			d->held = 0;
			d->run_t0 = t;
		}
		if (z <= d->ext + step)
			goto check_hold;
	}

	/* Transition: the run of side zz ends; a run of the other side begins. */
	{
		int8_t side = d->zz;
		int32_t swing = abs32(d->ext - d->prev_ext);
		int32_t half = side > 0 ? d->ext - step / 2 : d->ext + step / 2;
		(void)z;
		int64_t t_edge = edge_time(d->tz_prev, d->z_prev, t, half, side < 0);

		if (t_edge < d->run_t0)
			t_edge = d->run_t0;
		if (!d->run_is_init) {
			d->swing = d->swing ? (d->swing + swing) / 2 : swing;
			d->step = step_of(d);
		}
		run_ended(d, side, t_edge, swing, out, n_out);
		d->prev_ext = d->ext;
		d->zz = (int8_t)-side;
		d->ext = s;
		d->run_t0 = t_edge;
		d->held = 0;
		d->after_hold = 0;
		return;
	}

check_hold:
	if (d->pol == 0 && t - d->run_t0 > (int64_t)d->max_width_us) {
		/* Polarity not known yet and a run too long for a pulse (a gap, a held LED, a light
		 * step, the sensor settling): note which side, and start afresh from this level,
		 * so that a pulse on top of it is not merged into it. */
		d->nlong[d->zz > 0]++;
		d->zz = 0;
		d->ext_lo = d->ext_hi = s;
		d->run_is_init = 1;
		d->run_t0 = t;
		return;
	}
	if (d->pol != 0 && d->zz == d->pol && !d->held && d->width_avg_us > 0 &&
	    t - d->run_t0 > (int64_t)d->width_avg_us * 3 / 2) {
		d->held = HELD_STAIR; /* longer than a pulse: see the top of this function */
		d->hold_level = s;
	}
	/* A pulse-side run far longer than any pulse: the LED is held (or the room light
	 * stepped). Not a pulse; its level becomes the rest level. */
	if (d->pol != 0 && d->zz == d->pol && t - d->run_t0 > (int64_t)d->wmax_eff) {
		if (d->cfg.polarity == PL_POLARITY_AUTO && d->held_short >= 2) {
			/* Held, short excursion, held, short excursion, held: the short excursions
			 * are the pulses and the polarity was learned the wrong way round (at high
			 * load a slow LDR's stretched pulses can outlast the gaps). Flip it, emit the
			 * kept excursions; this long run is simply a rest run. */
			d->pol = (int8_t)-d->pol;
			d->n_flips++;
			for (unsigned i = 0; i < d->npend; i++)
				emit(d, d->pend[i].t0, d->pend[i].len_us, d->pend[i].swing, out, n_out);
			d->npend = 0;
			d->held_short = 0;
			return;
		}
		if (d->held_short == 0) {
			/* A possible start of held/short/held...: with the polarity the wrong way
			 * round, the short rest run just before this held one was a pulse whose
			 * gap-after is this run, so it has not been counted. Keep it too. */
			d->npend = 0;
			if (d->last_rest.len_us <= d->max_width_us / 2 &&
			    d->last_rest.t0 + d->last_rest.len_us == d->run_t0)
				d->pend[d->npend++] = d->last_rest;
		}
		d->n_steady++;
		d->held = HELD_STEADY;
		d->hold_level = s;
		d->prev_ext = d->ext;
		d->zz = (int8_t)-d->zz;
		d->ext = s;
		d->run_t0 = t;
		d->after_hold = 1;
	}
}

static inline void qtrack(int32_t *q, int32_t x, unsigned shift, int32_t min_step)
{
	/* Running median by stochastic approximation: step 2^-shift of the estimate towards x,
	 * but at least min_step. */
	int32_t st = *q >> shift;

	if (st < min_step)
		st = min_step;
	*q += x > *q ? st : -st;
	if (*q < 0)
		*q = 0;
}

/* One bin value (Q4) centred at time t. */
HOT_INLINE void process_bin(struct pl_detector *d, int64_t t, int32_t y, struct pl_pulse *out,
			size_t *n_out)
{
	int32_t m, z;
	int64_t tm, tz;
	unsigned yi;

	d->nbins++;
	if (d->nbins <= 2) {
		d->y[d->nbins - 1] = y;
		d->ty[d->nbins - 1] = t;
		if (d->nbins == 1) {
			d->m_prev = y;
			d->tm_prev = t;
			d->z_prev = d->s = y;
			d->tz_prev = t;
			d->ext_lo = d->ext_hi = y;
			d->run_t0 = t;
			d->t_first = t;
			d->run_is_init = 1;
			for (unsigned i = 0; i < 32; i++)
				d->yring[i] = y;
			for (unsigned i = 0; i < 16; i++)
				d->mring[i] = y;
			d->sm_sum = (int64_t)y * d->smooth_len;
		}
		return;
	}
	if (d->use_median) {
		m = med3(d->y[0], d->y[1], y);
		tm = d->ty[1];
	} else {
		m = y;
		tm = t;
	}
	d->y[0] = d->y[1];
	d->ty[0] = d->ty[1];
	d->y[1] = y;
	d->ty[1] = t;

	/*
	 * Noise: running medians of |y[k] - y[k-L]| on the bins before the median filter (whose
	 * output repeats values and would hide the noise), for L = 1, and for L = 10 and 25 bins
	 * of a millisecond: one and three periods of 100 Hz and 120 Hz mains flicker. Flicker
	 * shows as lag 10 or 25 being far quieter than lag 1.
	 */
	yi = d->yi++ & 31u;
	d->yring[yi] = y;
	if (!d->use_smooth && d->nwarm >= WARM_BINS) {
		/* one-bin excursions, for the choice of the median filter at low rates */
		int32_t y0 = d->yring[(yi - 2) & 31u], y1 = d->yring[(yi - 1) & 31u];
		int32_t up = y1 - (y0 > y ? y0 : y), dn = (y0 < y ? y0 : y) - y1;
		int k = up > d->step ? 1 : dn > d->step ? 0 : -1;
		if (k >= 0) {
			int32_t h = k ? up : dn;
			memmove(&d->nar_t[k][0], &d->nar_t[k][1], sizeof(d->nar_t[k][0]) * (PL_DET_NARROW - 1));
			d->nar_t[k][PL_DET_NARROW - 1] = d->ty[0];
			if (d->nar_n[k] == 0 || h < d->nar_min[k])
				d->nar_min[k] = h;
			if (d->nar_n[k] == 0 || h > d->nar_max[k])
				d->nar_max[k] = h;
			if (d->nar_n[k] < 255)
				d->nar_n[k]++;
		}
	}
	if (d->nwarm < WARM_BINS) {
		/* insertion sort of the first differences; their median starts the trackers */
		int32_t diff = abs32(y - d->yring[(yi - 1) & 31u]);
		unsigned i = d->nwarm++;
		while (i > 0 && d->warm[i - 1] > diff) {
			d->warm[i] = d->warm[i - 1];
			i--;
		}
		d->warm[i] = diff;
		d->noise_m = d->q5 = d->q10 = d->q25 = d->warm[d->nwarm / 2];
		d->step = step_of(d);
	} else if ((d->nbins & 3) == 0) {
		/* every fourth bin is plenty for estimates that move 1/32 a step */
		/* big steps to converge, then small ones: a running median's own jitter is about
		 * the square root of its step, and the noise floor must not dip with it */
		int32_t diff1 = abs32(y - d->yring[(yi - 1) & 31u]);
		qtrack(&d->noise_m, diff1, d->nbins < 2048 ? 5 : 8, 1);
		/* An estimate under an LSB has seen no noise at all (an ADC's dead zone reads 0):
		 * a difference of two LSB or more pulls it up at once by a sixteenth of the gap,
		 * so that the signal coming out of the dead zone does not pass its clipped noise
		 * for pulses while the estimate creeps up a sixteenth of an LSB at a time. */
		if (d->noise_m < Q && diff1 >= 2 * Q)
			d->noise_m += (diff1 - d->noise_m) >> 4;
		if (d->use_smooth && (d->nbins & 7) == 0) {
			/* slower, every eighth bin: they only choose the flicker filter, which must
			 * not flap when a slow LDR's tail briefly inflates the lagged differences */
			qtrack(&d->q5, abs32(y - d->yring[(yi - 5) & 31u]), d->nbins < 2048 ? 6 : 8, 1);
			qtrack(&d->q10, abs32(y - d->yring[(yi - 10) & 31u]), d->nbins < 2048 ? 6 : 8, 1);
			qtrack(&d->q25, abs32(y - d->yring[(yi - 25) & 31u]), d->nbins < 2048 ? 6 : 8, 1);
		}
		if ((d->nbins & 15) == 0) {
			hold_noise(d);
			d->step = step_of(d);
		}
	}

	/* the ring always holds the last 16 median outputs, so the flicker filter can start
	 * at any time with a full window */
	{
		unsigned mi = d->mi++ & 15u;
		if (d->box)
			d->box_sum += m - d->mring[(mi - d->box) & 15u];
		d->mring[mi] = m;
	}
	if (d->box == 10) {
		/* 100 Hz flicker: a moving average over exactly one period (10 bins) */
		z = clamp32(d->box_sum / 10);
		tz = tm - d->bin_dt_us; /* see sm_delay */
	} else if (d->box == 8) {
		/* 120 Hz flicker: 8.33 bins a period, so two moving averages, of 8 and of 9 bins
		 * (each leaves 4 to 7 % of the flicker, together 0.3 %) */
		int32_t v1 = clamp32(d->box_sum / 8);
		unsigned ri = d->ri++ & 15u;
		d->box2_sum += v1 - d->ring2[(ri - 9) & 15u];
		d->ring2[ri] = v1;
		z = clamp32(d->box2_sum / 9);
		tz = tm - (int64_t)2 * d->bin_dt_us;
	} else if (d->use_smooth) {
		/* moving average of smooth_len bins; division by a reciprocal, exact enough */
		unsigned mi = (d->mi - 1u) & 15u;
		d->sm_sum += m - d->mring[(mi - d->smooth_len) & 15u];
		z = (int32_t)((d->sm_sum * recip[d->smooth_len]) >> 16);
		tz = tm - d->sm_delay;
	} else {
		z = m;
		tz = tm;
	}
	if (tz < d->tz_prev)
		tz = d->tz_prev; /* when the filter's delay changes, time must not go back */
	d->m_prev = m;
	d->tm_prev = tm;
	d->s += (z - d->s) / 4;

	if (d->nwarm >= WARM_BINS) {
		track(d, tz, z, out, n_out);
	} else {
		d->ext_lo = d->ext_hi = d->s;
		d->run_t0 = tz;
	}
	if (d->box) {
		/* z's own noise, from z a filter length apart (see noise_sigma_now) */
		unsigned zi = d->zi++ & 15u;
		d->zring[zi] = z;
		if ((d->nbins & 3) == 0)
			qtrack(&d->qz, abs32(z - d->zring[(zi - (d->box == 10 ? 10u : 15u)) & 15u]), 7, 1);
	}
	d->z_prev = z;
	d->tz_prev = tz;
}

/* Sets the length of the smoothing moving average (1..8 bins). */
static void set_smooth(struct pl_detector *d, uint8_t len)
{
	int64_t sum = 0;
	uint8_t old_len = d->smooth_len;

	if (len == d->smooth_len)
		return;
	for (unsigned k = 1; k <= len; k++)
		sum += d->mring[(d->mi - k) & 15u];
	d->smooth_len = len;
	d->sm_sum = sum;
	/* Edges are found where the average first moves a small part of a swing (half a step,
	 * about a tenth): when the first bins of the pulse have entered its window, not when it
	 * is centred on the edge. So the time of a bin is that of its newest bins, less a tenth
	 * of the window. */
	d->sm_delay = (int64_t)(len - 1) * d->bin_dt_us / 10;
	/* the held noise, as this filter would have seen it */
	if (old_len >= 1 && old_len <= 8)
		d->sigma_mem = clamp32((int64_t)d->sigma_mem * by_len[len] / by_len[old_len]);
	d->step = step_of(d);
}

/* Switches the flicker filter on or off (box = 0, 8 or 10 bins). */
static void set_box(struct pl_detector *d, uint8_t box)
{
	int64_t sum = 0;
	int32_t z;

	if (box == d->box)
		return;
	for (unsigned k = 1; k <= box; k++)
		sum += d->mring[(d->mi - k) & 15u];
	d->box = box;
	d->box_sum = sum;
	z = box ? clamp32(sum / box) : clamp32(d->sm_sum * recip[d->smooth_len] >> 16);
	for (unsigned k = 0; k < 16; k++)
		d->ring2[k] = z;
	d->box2_sum = (int64_t)z * 9;
	for (unsigned k = 0; k < 16; k++)
		d->zring[k] = z;
	d->qz = 0;
	d->sigma_mem = 0; /* flicker in or out of the noise: a new noise, let it settle */
	d->hold_from = d->nbins + HOLD_SETTLE;
	d->step = step_of(d);
	/* When strong flicker is filtered out (or back in), the signal jumps: restart the
	 * tracker on it rather than take the jump for an edge. */
	if (abs32(z - d->z_prev) > d->step / 2) {
		d->z_prev = d->s = d->ext_lo = d->ext_hi = d->ext = z;
		d->zz = 0;
		d->run_is_init = 1;
		d->run_t0 = d->tz_prev;
		d->held = 0;
	}
}

/* Chooses the bin pipeline from the spacing of the bins: smoothing and the median filter need
 * a pulse to span several bins. */
static void adapt_pipeline(struct pl_detector *d, int64_t bin_dt, struct pl_pulse *out,
			   size_t *n_out)
{
	uint8_t fine = bin_dt > 0 && bin_dt <= 1500;
	uint32_t w = d->width_avg_us;
	/*
	 * At low rates a one-sample spike and a one-sample pulse look alike. The median filter
	 * (which removes both) stays on unless one-sample excursions have been seen going one
	 * way only — pulses, since spikes go both ways — and no pulse has spanned 3 bins.
	 */
	int8_t narrow_dir = 0;
	for (int k = 0; k < 2; k++) {
		/* sixteen of one direction, none of the other, heights within 1.3x of each other
		 * (an LED is equally bright every time; ADC outliers are not) */
		if (d->nar_n[k] >= PL_DET_NARROW && d->nar_n[!k] == 0 &&
		    (int64_t)d->nar_max[k] * 10 <= (int64_t)d->nar_min[k] * 13)
			narrow_dir = k ? 1 : -1;
	}
	uint8_t median = fine || d->wide_seen >= 2 || (narrow_dir == 0 && !d->narrow_mode);

	/* once one-sample pulses are established, stay with them unless wide ones appear */
	if (!fine && narrow_dir != 0 && d->wide_seen < 2)
		d->narrow_mode = 1;
	uint8_t len = 3;
	uint8_t shift = 10;

	/* leak time constant of about one second, whatever the bin length (applied every fourth
	 * bin) */
	if (bin_dt > 0) {
		int64_t bins_per_s = PL_US_PER_S / bin_dt / 4;
		shift = 0;
		while (shift < 16 && (INT64_C(1) << (shift + 1)) <= bins_per_s)
			shift++;
		if (shift < 1)
			shift = 1;
	}
	/* Smoothing over about half a pulse (2 to 8 bins) when bins are fine: the longer the
	 * pulses, the weaker the signal that can be told from noise. */
	if (fine && w > 0) {
		int64_t half_w = (int64_t)w / 2 / bin_dt;
		len = (uint8_t)(half_w < 3 ? 3 : half_w > 8 ? 8 : half_w);
	}
	d->leak_shift = shift;
	if (d->use_median && !median && d->pol != -narrow_dir) {
		/* The one-sample pulses the median filter hid so far: emit them. */
		if (d->pol == 0)
			d->pol = narrow_dir;
		if (d->npend == 0) {
			const int k = narrow_dir > 0;
			int64_t after = d->has_hold ? d->hold.t_us : d->last_pulse_t;
			for (unsigned i = 0; i < PL_DET_NARROW; i++) {
				/* only those not already given out some other way, in order */
				if (d->nar_t[k][i] > after)
					emit(d, d->nar_t[k][i], (uint32_t)(bin_dt > 0 ? bin_dt : 0),
					     d->nar_min[k], out, n_out);
			}
		}
	}
	d->use_median = median;
	d->use_smooth = fine;
	set_smooth(d, fine ? len : 1);
	d->bin_dt_us = bin_dt > 0 && bin_dt < INT32_MAX ? (int32_t)bin_dt : 0;
	d->sm_delay = (int64_t)(d->smooth_len - 1) * d->bin_dt_us / 10;

	/*
	 * Mains flicker. Half a period apart (5 bins) flicker adds up; one period (10 bins, 100 Hz)
	 * or three (25 bins, 120 Hz) apart it cancels; noise is the same at every lag. So the
	 * flicker filter goes on when the lag-5 differences are at least twice the lag-10 (or
	 * lag-25) ones, and off when they fall under 1.5 times. This also holds when an ADC's dead
	 * zone clips the flicker into a square wave. Nothing is decided on differences of under
	 * a few LSB.
	 */
	if (!fine || d->nbins < 256) {
		set_box(d, 0);
	} else if (d->q5 < 4 * Q) {
		/* too little to go on: keep the filter as it is */
	} else if (d->box == 0) {
		/* and the lag-1 ones clearly above the lag-10 (lag-25) ones too: a fast train of
		 * pulses is periodic as well, but its neighbouring bins agree */
		if ((int64_t)d->q10 * 2 < d->q5 && (int64_t)d->q10 * 7 < (int64_t)d->noise_m * 5)
			set_box(d, 10);
		else if ((int64_t)d->q25 * 2 < d->q5 && (int64_t)d->q25 * 7 < (int64_t)d->noise_m * 5)
			set_box(d, 8);
	} else {
		int32_t q = d->box == 10 ? d->q10 : d->q25;
		if ((int64_t)q * 3 > (int64_t)d->q5 * 2)
			set_box(d, 0);
	}
}

HOT_INLINE void close_bin(struct pl_detector *d, int64_t t_center, struct pl_pulse *out,
		      size_t *n_out)
{
	int64_t sum = d->bin_sum;
	uint32_t n = d->bin_n;
	int32_t y;

	y = n == 1 ? clamp_value(sum * Q) : clamp_value(sum * Q / (int64_t)n);
	if (d->nbins == 1) {
		adapt_pipeline(d, t_center - d->ty[0], out, n_out);
	} else if ((d->nbins & 63) == 1) {
		/* the mean spacing of the last 64 bins */
		adapt_pipeline(d, (t_center - d->t_adapt) / 64, out, n_out);
		d->t_adapt = t_center;
	} else if (d->nbins == 0) {
		d->t_adapt = t_center;
	}
	process_bin(d, t_center, y, out, n_out);
	d->bin_n = 0;
	d->bin_sum = 0;
}

size_t pl_detector_feed(struct pl_detector *d, const struct pl_sample *s, size_t n,
			struct pl_pulse *out, size_t out_cap, size_t *n_out)
{
	/*
	 * The hot loop: the accumulator lives in registers and the only test per sample is one
	 * unsigned compare (bin_t0 <= t < bin_t0 + bin_len); the state is written back at bin
	 * ends. The sample count of a bin comes from the pointer difference.
	 */
	int64_t bin_t0 = d->bin_t0, sum = d->bin_sum;
	uint64_t bin_len = d->bin_n ? d->bin_len_us : 0; /* 0: no bin open */
	const struct pl_sample *p = s, *end = s + n, *p0 = s;
	uint32_t carry = d->bin_n;
	int64_t t_prev = d->t_last;

	*n_out = 0;
	if (out_cap < PL_DETECTOR_MIN_OUT)
		return 0;
	for (; p < end; p++) {
		int32_t v = p->v;

		if ((uint64_t)p->t_us - (uint64_t)bin_t0 >= bin_len) {
			int64_t t = p->t_us;
			if (bin_len != 0 && t < bin_t0) {
				/* earlier than the open bin: time went backwards */
				d->n_backwards++;
				carry--; /* the pointer difference counted it */
				continue;
			}
			uint32_t cnt = carry + (uint32_t)(p - p0);
			if (p > p0)
				t_prev = p[-1].t_us;
			if (cnt) {
				if (out_cap - *n_out < PL_DETECTOR_MIN_OUT) {
					p0 = p;
					carry = cnt;
					break;
				}
				d->bin_sum = sum;
				d->bin_n = cnt;
				close_bin(d, bin_t0 + (t_prev - bin_t0) / 2, out, n_out);
			}
			bin_t0 = t;
			bin_len = d->bin_len_us;
			sum = 0;
			p0 = p;
			carry = 0;
		}
		sum += v;
	}
	if (p > p0)
		t_prev = p[-1].t_us;
	d->t_last = t_prev;
	d->bin_t0 = bin_t0;
	d->bin_sum = sum;
	d->bin_n = carry + (uint32_t)(p - p0);
	return (size_t)(p - s);
}

size_t pl_detector_feed_u16(struct pl_detector *d, int64_t t0_us, uint32_t rate_hz,
			    const uint16_t *v, size_t n,
			    struct pl_pulse *out, size_t out_cap, size_t *n_out)
{
	size_t i = 0;
	uint32_t per_bin;

	*n_out = 0;
	if (out_cap < PL_DETECTOR_MIN_OUT || rate_hz == 0)
		return 0;
	per_bin = (rate_hz + 500) / 1000;
	if (per_bin == 0)
		per_bin = 1;
	d->bin_samples = per_bin;
	for (;;) {
		uint32_t take;
		uint64_t sum = 0;

		if (d->bin_n >= per_bin) {
			if (out_cap - *n_out < PL_DETECTOR_MIN_OUT)
				return i; /* the full bin closes on the next call */
			close_bin(d, d->bin_t0 + (d->t_last - d->bin_t0) / 2, out, n_out);
		}
		if (i >= n)
			break;
		take = per_bin - d->bin_n;
		if (take > n - i)
			take = (uint32_t)(n - i);
		if (d->bin_n == 0)
			d->bin_t0 = t0_us + (int64_t)((uint64_t)i * 1000000u / rate_hz);
		for (uint32_t k = 0; k < take; k++)
			sum += v[i + k];
		d->bin_sum += (int64_t)sum;
		d->bin_n += take;
		i += take;
		d->t_last = t0_us + (int64_t)((uint64_t)(i - 1) * 1000000u / rate_hz);
	}
	return n;
}

void pl_detector_finish(struct pl_detector *d, struct pl_pulse *out, size_t out_cap,
			size_t *n_out)
{
	*n_out = 0;
	if (out_cap < PL_DETECTOR_MIN_OUT)
		return;
	if (d->has_hold) {
		d->has_hold = 0;
		output(d, &d->hold, out, n_out);
	}
	if (d->pol == 0 && d->npend > 0) {
		/* Decide with what was seen: the shorter side. Fewer than two runs a side means at
		 * most a pulse or two; better counted by the rule than dropped. */
		int64_t sum[2] = { 0, 0 };
		int n[2] = { 0, 0 };
		for (unsigned i = 0; i < d->npend; i++) {
			int k = d->pend[i].side > 0;
			sum[k] += d->pend[i].len_us;
			n[k]++;
		}
		int8_t pol;
		if (n[0] && n[1])
			pol = sum[1] * n[0] <= sum[0] * n[1] ? 1 : -1;
		else
			pol = n[1] ? 1 : -1; /* only runs of one side completed: those were pulses */
		decided(d, pol, out, n_out);
	}
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

int64_t pl_detector_horizon(const struct pl_detector *d)
{
	/* New runs start at or after the newest tracked bin, which lags the input by the
	 * pipeline; everything older that may still come out is listed in the state. */
	int64_t h = d->nbins ? d->tz_prev : d->t_last;

	if (d->nbins == 0)
		return INT64_MIN;
	if (d->zz != 0 && (d->pol == 0 || d->zz == d->pol))
		h = min64(h, d->run_t0); /* a run that may turn out to be a pulse */
	else if (d->zz != 0 && d->cfg.polarity == PL_POLARITY_AUTO &&
		 h - d->run_t0 <= (int64_t)d->max_width_us / 2)
		h = min64(h, d->run_t0); /* a short rest run: a pulse if the polarity flips */
	if (d->has_hold)
		h = min64(h, d->hold.t_us);
	for (unsigned i = 0; i < d->npend; i++)
		h = min64(h, d->pend[i].t0); /* waiting for the polarity, or a flip */
	if (d->pol != 0 && d->cfg.polarity == PL_POLARITY_AUTO && d->npend == 0 &&
	    d->last_rest.len_us <= d->max_width_us / 2 && d->last_rest.len_us > 0)
		h = min64(h, d->last_rest.t0); /* kept if the next run is held (see check_hold) */
	if (!d->use_smooth && !d->narrow_mode && d->wide_seen < 2) {
		for (int k = 0; k < 2; k++) {
			unsigned have = d->nar_n[k] < PL_DET_NARROW ? d->nar_n[k] : PL_DET_NARROW;
			if (have > 0)
				h = min64(h, d->nar_t[k][PL_DET_NARROW - have]);
		}
	}
	return h;
}

void pl_detector_status(const struct pl_detector *d, struct pl_detector_status *st)
{
	memset(st, 0, sizeof(*st));
	st->polarity = d->pol;
	st->noise = noise_sigma_q(d) / Q;
	st->amplitude = d->swing / Q;
	st->bin_us = d->bin_samples ? 0 : d->bin_len_us;
	st->pulses = d->n_pulses;
	st->rejected = d->n_rejected;
	st->steady_events = d->n_steady;
	st->backwards = d->n_backwards;
	st->polarity_flips = d->n_flips;
	st->unordered = d->n_unordered;
	st->last_pulse_us = d->last_pulse_t;
	if (d->n_pulses == 0 && d->npend == 0 && d->held != HELD_STEADY)
		st->state = PL_DET_NO_SIGNAL;
	else if (d->held == HELD_STEADY)
		st->state = PL_DET_STEADY;
	else if (d->last_pulse_t != INT64_MIN && d->t_last - d->last_pulse_t < PULSING_HOLD_US)
		st->state = PL_DET_PULSING;
	else
		st->state = PL_DET_DARK;
}

const char *pl_detector_state_name(enum pl_detector_state s)
{
	switch (s) {
	case PL_DET_NO_SIGNAL:
		return "no-signal";
	case PL_DET_DARK:
		return "dark";
	case PL_DET_PULSING:
		return "pulsing";
	case PL_DET_STEADY:
		return "steady";
	}
	return "unknown";
}
