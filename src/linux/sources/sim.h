/* SPDX-License-Identifier: MIT */
/*
 * The trace simulator: a physically modelled electricity meter LED, room, light sensor and ADC,
 * producing a stream of (time, ADC value) samples and the list of true pulses behind them.
 *
 * It exists for tests, benchmarks and demos: everything is deterministic from one seed, and a
 * generator streams samples into a caller's buffer so that hours of signal need no memory and
 * no files. The model, from the meter outwards:
 *
 *   load      constant power, or a household profile (`unix_s,watts`) or a real pulse log
 *             (`epoch_ms`), played from an offset and optionally compressed in time; optional
 *             zero-load periods. Power below a small threshold is "no load" (anti-creep).
 *   meter     integrates the energy and flashes once per 1/imp kWh, with a random initial
 *             phase; the flash lasts width_ms (at most half the gap to the next one, as a
 *             meter's pulse output must). With anti-creep, the LED is steadily lit during no
 *             load (from 1 s after the last pulse, and only for no-load periods of 3 s or more).
 *   room      ambient light, a slow sinusoidal drift, a lamp switched on and off at random
 *             (Poisson, N per hour), mains flicker. Light is measured in units of the LED's
 *             contribution at the sensor: a lit LED adds 1.
 *   sensor    photodiode: first order, tau 0.1 ms, voltage proportional to light.
 *             CdS LDR: first order on the log of the conductance (conductance ~ light^0.7,
 *             R ~ lux^-0.7) with a rise time constant when the light increases and a fall time
 *             constant when it decreases, both slower in the dark (up to 3x), read through a
 *             voltage divider whose fixed resistor matches the LDR at the ambient light.
 *   ADC       ideal code from the sensor voltage, Gaussian noise, an ESP32-like dead zone at
 *             the bottom (everything is shifted down by it and clipped at 0), soft compression
 *             above a knee near full scale, outliers (Poisson: single samples, or bursts that
 *             hold one offset for burst_ms, or a random time up to burst_max_ms, like a WiFi
 *             transmission), quantisation and clipping.
 *   events    for the detector's hard cases (docs/accuracy.md, issue 15): sunlight that drives
 *             the ADC into its rail and falls back exponentially; a lamp switched close to a
 *             pulse; a constant load with high-power periods (a long fixed pulse width at low
 *             rates is cut to half the gap, 50 % duty, at high rates).
 *   sampling  a sample rate with optional random spacing (each interval 1/rate * (1 +- FRAC)).
 *
 * Amplitude: for the photodiode, the LED's contribution in LSB (before dead zone and
 * compression). For the LDR, the divider supply is scaled so that a fully settled LED swing at
 * the initial mean room light is that many LSB (a short flash gives only part of it), but never
 * above the ADC's full scale: in a bright room the LED's share is small and so is the swing.
 *
 * Ownership: pl_sim_new() allocates; pl_sim_free() releases. A load (struct pl_sim_load)
 * belongs to the caller and must outlive the simulator that uses it. Not thread-safe.
 */
#ifndef PL_SIM_H
#define PL_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "powerlogger/detector.h" /* struct pl_sample */

enum pl_sim_sensor { PL_SIM_PHOTODIODE = 0, PL_SIM_LDR = 1 };
enum pl_sim_interp { PL_SIM_LINEAR = 0, PL_SIM_STEP = 1 };
enum pl_sim_load_kind { PL_SIM_LOAD_PROFILE = 0, PL_SIM_LOAD_PULSES = 1 };
enum pl_sim_pulse_mode {
	PL_SIM_PULSES_POWER = 0, /* a pulse log becomes a power profile, pulses re-made at imp_per_kwh */
	PL_SIM_PULSES_ASIS = 1,  /* the log's own pulse times (divided by load_speed) are the pulses */
};

/* A load read from a file. Times are seconds after the first entry (t[0] == 0). */
struct pl_sim_load {
	enum pl_sim_load_kind kind;
	size_t n;
	double *t;            /* n times, non-decreasing (pulses: strictly increasing) */
	double *w;            /* profile: n powers in W; pulse log: NULL */
	double t0_unix;       /* absolute time of the first entry, Unix seconds */
	uint32_t imp_per_kwh; /* pulse log: meter constant found in its header comment, else 0 */
};

/*
 * Reads a load file: a REFIT-style profile (header `unix_s,watts`) or a pulse log (header
 * `epoch_ms`). Lines starting with '#' are comments; a comment containing "<N> imp/kWh" sets
 * the pulse log's meter constant. Returns 0, -PL_EIO (cannot open), -PL_EPARSE (malformed,
 * with the line number in err), -PL_EINVAL (fewer than 2 entries) or -PL_ENOMEM. On success the
 * caller frees the load with pl_sim_load_free().
 */
int pl_sim_load_read(const char *path, struct pl_sim_load *load, char *err, size_t errlen);

/* Builds a load from arrays in memory (copied). w NULL makes a pulse log. Same returns. */
int pl_sim_load_from(struct pl_sim_load *load, const double *t, const double *w, size_t n,
		     uint32_t imp_per_kwh, char *err, size_t errlen);

void pl_sim_load_free(struct pl_sim_load *load);

#define PL_SIM_MAX_ZERO 16

struct pl_sim_config {
	uint64_t seed;
	/* sampling */
	double duration_s;  /* > 0 */
	double rate_hz;     /* 100 .. 50000 */
	double jitter;      /* 0 .. 0.9: each interval is 1/rate * (1 + jitter * U(-1, 1)) */
	/* load */
	double power_w;                   /* constant load when load is NULL */
	const struct pl_sim_load *load;   /* optional; owned by the caller */
	enum pl_sim_interp interp;        /* profile interpolation */
	double load_start_s;              /* offset into the load, seconds of load time */
	double load_speed;                /* load seconds per simulated second (>= 1 compresses) */
	uint32_t load_imp_per_kwh;        /* pulse log's meter constant; 0 = from the file */
	enum pl_sim_pulse_mode pulse_mode;
	size_t n_zero;                    /* zero-load periods, simulated seconds */
	struct pl_sim_span { double start_s, end_s; } zero[PL_SIM_MAX_ZERO];
	double creep_w;                   /* load below this is no load (anti-creep), W */
	uint32_t imp_per_kwh;             /* meter constant of the simulated meter */
	/* LED */
	double width_ms;                  /* 2 .. 200 */
	int led_dark;                     /* 1: normally lit, dark for the pulse */
	int anticreep;                    /* 1: steadily lit while there is no load */
	/* room, in units of the LED's light */
	double ambient;                   /* steady room light */
	double drift, drift_period_s;     /* sinusoidal drift: amplitude, period */
	double steps_per_hour, step_size; /* lamp switched on/off: rate, light added when on */
	double flicker, flicker_hz;       /* mains flicker: peak-to-peak light, frequency */
	/* sensor */
	enum pl_sim_sensor sensor;
	double tau_ms;                    /* photodiode time constant */
	double rise_ms, fall_ms;          /* LDR time constants (light rising, falling) */
	int invert;                       /* 1: more light gives a lower reading */
	/* ADC */
	unsigned adc_bits;                /* 8 .. 16 */
	double vref_v;                    /* full-scale voltage (for the dead zone in mV) */
	double amplitude;                 /* LED swing in LSB (see the file comment) */
	double offset;                    /* LSB added to every reading (dark level) */
	double noise;                     /* Gaussian noise, sigma in LSB */
	double deadzone_mv;               /* readings below this input read 0; 0 = off */
	double compress;                  /* knee as a fraction of full scale; 0 = off */
	double spikes_per_s;              /* outliers (> 1000 LSB at 12 bits), per second */
	double burst_ms;                  /* each outlier lasts this long (a WiFi transmission);
					   * 0 = a single sample */
	double burst_max_ms;              /* > burst_ms: each burst lasts U(burst_ms, this) */
	double spike_min_lsb, spike_max_lsb; /* outlier size range in LSB; 0 = 1100..2000 at
					      * 12 bits, scaled with the ADC's range */
	/* sunlight on the sensor (LED units): from sun_at_s (then every sun_every_s, 0 = once)
	 * a linear rise over sun_rise_s to sun_level, held sun_s, then an exponential fall
	 * with time constant sun_fall_s: strong enough, it drives the ADC into its rail */
	double sun_at_s, sun_every_s, sun_rise_s, sun_s, sun_level, sun_fall_s;
	/* a lamp switched near a pulse: with this probability per pulse the lamp (step_size)
	 * toggles at a uniform time in [edge - lamp_pre_ms, edge + width] */
	double lamp_near_pulse, lamp_pre_ms;
	/* constant load only: power high_w instead of power_w in these periods (in order) */
	double high_w;
	size_t n_high;
	struct pl_sim_span high[PL_SIM_MAX_ZERO];
};

/* One true pulse: its leading edge, how long the LED was in the pulse state, the load. */
struct pl_sim_pulse {
	int64_t t_us;
	uint32_t width_us;
	double power_w; /* load at the leading edge (as-is pulse logs: from the gap before it) */
};

struct pl_sim_stats {
	uint64_t samples;
	uint64_t pulses;       /* true pulses with a leading edge before the end */
	uint64_t spikes;       /* outliers injected */
	uint64_t lamp_steps;   /* room-light switchings */
	double load_min_w, load_max_w;
	double energy_wh;      /* load energy over the duration */
	double no_load_s;      /* time spent in no load */
	int32_t v_min, v_max;  /* sample range */
	double ldr_supply_lsb; /* LDR divider supply in LSB (0 for the photodiode) */
	uint32_t pulse_imp_per_kwh; /* meter constant of the pulses (the log's, played as is) */
};

/* A running simulation (opaque). */
struct pl_sim;

/* Fills cfg with the defaults (documented in `powerlogger simulate --help`). */
void pl_sim_config_default(struct pl_sim_config *cfg);

/*
 * Checks a configuration. Returns 0, or -PL_EINVAL with a sentence naming the option in err.
 */
int pl_sim_config_check(const struct pl_sim_config *cfg, char *err, size_t errlen);

/*
 * Creates a simulator (the configuration is copied; cfg->load must outlive it). Returns 0,
 * -PL_EINVAL (bad configuration, see err) or -PL_ENOMEM.
 */
int pl_sim_new(struct pl_sim **out, const struct pl_sim_config *cfg, char *err, size_t errlen);

/*
 * Writes up to cap next samples to out and returns how many; 0 once the duration is reached.
 * Times are in microseconds from the start, strictly increasing.
 */
size_t pl_sim_read(struct pl_sim *s, struct pl_sample *out, size_t cap);

/*
 * Moves up to cap true pulses to out, in order, and returns how many: those whose leading edge
 * is at or before the last sample read, or, once pl_sim_read() has returned 0, all of them.
 */
size_t pl_sim_truth(struct pl_sim *s, struct pl_sim_pulse *out, size_t cap);

/* 1 if the LED was physically lit at the time of the last sample read, else 0. */
int pl_sim_led_lit(const struct pl_sim *s);

void pl_sim_stats(const struct pl_sim *s, struct pl_sim_stats *st);

/* The full-scale code, 2^adc_bits - 1. */
int32_t pl_sim_full_scale(const struct pl_sim *s);

void pl_sim_free(struct pl_sim *s);

#endif
