/* SPDX-License-Identifier: MIT */
/*
 * The trace simulator (see sim.h for the model and its units).
 *
 * Three stages, each pulled lazily by the one after it so that a trace of any length streams in
 * constant memory:
 *
 *   march     walks the load through time, integrating energy piece by piece (pieces are
 *             linear in power: profile segments cut at zero-load and no-load boundaries), and
 *             yields items: a pulse at the exact time the energy reaches one more 1/imp kWh, or
 *             a no-load span.
 *   schedule  turns items into LED spans (times when the LED is not in its resting state) and
 *             true pulses: widths capped at half the gap to the next pulse, anti-creep lighting
 *             with its guard times.
 *   physics   integrates the sensor between samples in sub-steps that break exactly at LED
 *             edges and lamp switchings (and at least 16 times per flicker period), so a 2 ms
 *             flash between two 10 ms samples still reaches the sensor as it physically would.
 *             Each sub-step is an exact first-order update for light held at its mid-point
 *             value. The ADC stage then adds noise, dead zone, compression and outliers.
 *
 * Every random choice draws from its own xoshiro256** stream seeded from the one seed, so
 * turning on noise does not move the pulses, and the same seed gives the same samples.
 */
#include "sources/sim.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "powerlogger/common.h"

#define TWO_PI 6.283185307179586

/* The LED turns steadily lit this long after the last pulse (the meter decides there is no
 * load), and the first pulse after a steadily lit period comes at least this long after it. */
#define CREEP_GUARD_S 1.0
/* No-load periods shorter than this do not light the LED. */
#define CREEP_MIN_S 3.0
/* An LDR's conductance in complete darkness, as light in LED units (dark resistance ~1000x). */
#define LDR_DARK 1e-3
/* CdS: conductance ~ light^gamma, so R ~ lux^-0.7. */
#define LDR_GAMMA 0.7
/* Outlier size at 12 bits (scaled with the ADC's range). */
#define SPIKE_MIN_LSB 1100.0
#define SPIKE_MAX_LSB 2000.0

/* ---- random numbers: xoshiro256** seeded by splitmix64 ---- */

struct rng {
	uint64_t s[4];
	double spare;
	int has_spare;
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * UINT64_C(0xd1b54a32d192ed03));
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
	r->has_spare = 0;
	r->spare = 0;
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* Uniform in [0, 1). */
static double rng_unif(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Standard normal, Box-Muller (pairs). */
static double rng_gauss(struct rng *r)
{
	if (r->has_spare) {
		r->has_spare = 0;
		return r->spare;
	}
	double u1 = 1.0 - rng_unif(r); /* (0, 1] */
	double u2 = rng_unif(r);
	double m = sqrt(-2.0 * log(u1));
	r->spare = m * sin(TWO_PI * u2);
	r->has_spare = 1;
	return m * cos(TWO_PI * u2);
}

/* Exponential waiting time of a Poisson process with the given rate (per second). */
static double rng_expo(struct rng *r, double rate)
{
	return -log(1.0 - rng_unif(r)) / rate;
}

/* ---- the simulator ---- */

enum item_kind { IT_END, IT_PULSE, IT_CREEP };

struct item {
	enum item_kind kind;
	double a, b; /* pulse: a = time; no load: [a, b) */
	double p;    /* pulse: load, W */
};

struct span {
	double a, b;
};

struct pl_sim {
	struct pl_sim_config cfg;
	/* derived constants */
	double ep_j;        /* energy per pulse of the simulated meter, J */
	double t_end;       /* duration */
	double t_march_end; /* the load is walked a little past the end, for the last widths */
	int32_t fs;
	double dz_lsb;
	double ldr_vs, ldr_gref;
	double hmax;
	double width_s;
	/* profile in load time (a REFIT profile, or a pulse log turned into one) */
	const double *pt, *pw;
	double *pw_own;
	size_t pn;
	double pT;
	int step_interp;
	/* pulse log played as is */
	int asis;
	const double *ap;
	size_t an;
	double a_ep_j;
	/* march state */
	double tm, e_acc;
	size_t ci;
	int64_t ck;
	int in_creep;
	double creep_a;
	size_t zi;
	double skip_until;
	struct item look;
	int have_look;
	/* schedule state */
	double last_end;
	int after_creep;
	int plan_done;
	double last_pulse_t;
	struct span *q;
	size_t q_head, q_len, q_cap;
	struct pl_sim_pulse *truth;
	size_t t_head, t_len, t_cap;
	/* physics state */
	double tp, y, lamp, next_step, ph_drift, ph_flicker, next_spike;
	double burst_until, burst_mag; /* an outlier burst in progress (until, exclusive) */
	int burst_up;
	double sync_step; /* the lamp's next switching near a pulse (INFINITY: none) */
	size_t hi;        /* first high-load period not yet over */
	/* sampling state */
	uint64_t k;
	double ts;
	int64_t t_us_last;
	int done;
	int lit_now;
	struct rng r_noise, r_spike, r_jitter, r_room, r_load, r_lamp, r_burst;
	struct pl_sim_stats st;
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void pl_sim_config_default(struct pl_sim_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->seed = 1;
	cfg->duration_s = 60;
	cfg->rate_hz = 1000;
	cfg->jitter = 0;
	cfg->power_w = 1000;
	cfg->load = NULL;
	cfg->interp = PL_SIM_LINEAR;
	cfg->load_start_s = 0;
	cfg->load_speed = 1;
	cfg->load_imp_per_kwh = 0;
	cfg->pulse_mode = PL_SIM_PULSES_POWER;
	cfg->creep_w = 5;
	cfg->imp_per_kwh = 1000;
	cfg->width_ms = 10;
	cfg->led_dark = 0;
	cfg->anticreep = 0;
	cfg->ambient = 0.2;
	cfg->drift = 0;
	cfg->drift_period_s = 600;
	cfg->steps_per_hour = 0;
	cfg->step_size = 0.5;
	cfg->flicker = 0;
	cfg->flicker_hz = 100;
	cfg->sensor = PL_SIM_PHOTODIODE;
	cfg->tau_ms = 0.1;
	cfg->rise_ms = 10;
	cfg->fall_ms = 60;
	cfg->invert = 0;
	cfg->adc_bits = 12;
	cfg->vref_v = 3.3;
	cfg->amplitude = 1000;
	cfg->offset = 0;
	cfg->noise = 0;
	cfg->deadzone_mv = 0;
	cfg->compress = 0;
	cfg->spikes_per_s = 0;
}

/* True when lo <= x <= hi (false for NaN). */
static int in_range(double x, double lo, double hi)
{
	return x >= lo && x <= hi;
}

int pl_sim_config_check(const struct pl_sim_config *c, char *err, size_t errlen)
{
#define BAD(...) do { seterr(err, errlen, __VA_ARGS__); return -PL_EINVAL; } while (0)
	if (!in_range(c->duration_s, 1e-3, 1e7))
		BAD("--duration must be between 0.001 and 1e7 s");
	if (!in_range(c->rate_hz, 100, 50000))
		BAD("--rate must be between 100 and 50000 Hz");
	if (!in_range(c->jitter, 0, 0.9))
		BAD("--jitter must be between 0 and 0.9");
	if (!in_range(c->power_w, 0, 1e7))
		BAD("--power must be between 0 and 1e7 W");
	if (!in_range(c->load_start_s, 0, 1e12))
		BAD("--load-start must be 0 or more seconds");
	if (!in_range(c->load_speed, 1e-3, 1e6))
		BAD("--load-speed must be between 0.001 and 1e6");
	if (c->pulse_mode != PL_SIM_PULSES_POWER && c->pulse_mode != PL_SIM_PULSES_ASIS)
		BAD("bad pulse-log mode");
	if (c->interp != PL_SIM_LINEAR && c->interp != PL_SIM_STEP)
		BAD("bad interpolation");
	if (c->n_zero > PL_SIM_MAX_ZERO)
		BAD("at most %d --zero-load periods", PL_SIM_MAX_ZERO);
	for (size_t i = 0; i < c->n_zero; i++)
		if (!in_range(c->zero[i].start_s, 0, 1e12) ||
		    !in_range(c->zero[i].end_s, c->zero[i].start_s, 1e12) ||
		    c->zero[i].end_s == c->zero[i].start_s)
			BAD("--zero-load START:END needs 0 <= START < END (seconds)");
	if (!in_range(c->creep_w, 0, 1e6))
		BAD("--creep-w must be 0 or more W");
	if (c->imp_per_kwh < 1 || c->imp_per_kwh > 1000000)
		BAD("--imp-per-kwh must be between 1 and 1000000");
	if (!in_range(c->width_ms, 2, 200))
		BAD("--width-ms must be between 2 and 200 ms");
	if (!in_range(c->ambient, 0, 1e3))
		BAD("--ambient must be between 0 and 1000 (LED units)");
	if (!in_range(c->drift, 0, 1e3))
		BAD("--drift must be between 0 and 1000 (LED units)");
	if (!in_range(c->drift_period_s, 1e-3, 1e9))
		BAD("--drift-period must be more than 0 s");
	if (!in_range(c->steps_per_hour, 0, 36000))
		BAD("--steps must be between 0 and 36000 per hour");
	if (!in_range(c->step_size, 0, 1e3))
		BAD("--step-size must be between 0 and 1000 (LED units)");
	if (!in_range(c->flicker, 0, 1e3))
		BAD("--flicker must be between 0 and 1000 (LED units)");
	if (!in_range(c->flicker_hz, 1, 10000))
		BAD("--flicker-hz must be between 1 and 10000 Hz");
	if (c->sensor != PL_SIM_PHOTODIODE && c->sensor != PL_SIM_LDR)
		BAD("bad sensor");
	if (!in_range(c->tau_ms, 1e-3, 1000))
		BAD("--tau-ms must be between 0.001 and 1000 ms");
	if (!in_range(c->rise_ms, 0.1, 10000) || !in_range(c->fall_ms, 0.1, 10000))
		BAD("--rise-ms and --fall-ms must be between 0.1 and 10000 ms");
	if (c->adc_bits < 8 || c->adc_bits > 16)
		BAD("--adc-bits must be between 8 and 16");
	double fs = (double)((1u << c->adc_bits) - 1u);
	if (!in_range(c->vref_v, 0.1, 100))
		BAD("--vref must be between 0.1 and 100 V");
	if (!in_range(c->amplitude, 0, 16 * fs))
		BAD("--amplitude must be between 0 and 16x full scale (LSB)");
	if (!in_range(c->offset, -fs, fs))
		BAD("--offset must be within +-full scale (LSB)");
	if (!in_range(c->noise, 0, fs))
		BAD("--noise must be between 0 and full scale (LSB)");
	if (!in_range(c->deadzone_mv, 0, c->vref_v * 500))
		BAD("--deadzone must be between 0 and half of --vref (mV)");
	if (!(c->compress == 0 || in_range(c->compress, 0.05, 0.999)))
		BAD("--compress must be 0 (off) or a knee between 0.05 and 0.999 of full scale");
	if (!in_range(c->spikes_per_s, 0, c->rate_hz / 2))
		BAD("--spikes must be between 0 and half the sample rate per second");
	if (!in_range(c->burst_ms, 0, 1000))
		BAD("--burst-ms must be between 0 and 1000 ms");
	if (!(c->burst_max_ms == 0 || in_range(c->burst_max_ms, c->burst_ms, 1000)))
		BAD("--burst-ms MIN:MAX needs MIN <= MAX <= 1000 ms");
	if (!in_range(c->spike_min_lsb, 0, 2 * fs) ||
	    !(c->spike_max_lsb == 0 || in_range(c->spike_max_lsb, c->spike_min_lsb, 2 * fs)) ||
	    (c->spike_min_lsb > 0 && c->spike_max_lsb == 0))
		BAD("--spike-lsb MIN:MAX needs 0 < MIN <= MAX <= 2x full scale");
	if (!in_range(c->sun_level, 0, 1e4) || !in_range(c->sun_at_s, 0, 1e9) ||
	    !in_range(c->sun_every_s, 0, 1e9) || !in_range(c->sun_rise_s, 0, 1e6) ||
	    !in_range(c->sun_s, 0, 1e6) || !(c->sun_level == 0 || in_range(c->sun_fall_s, 1e-3, 1e6)))
		BAD("--sun needs AT, EVERY, RISE, HOLD >= 0 s, LEVEL 0..10000 (LED units), FALL > 0 s");
	if (c->sun_every_s > 0 && c->sun_every_s < c->sun_rise_s + c->sun_s)
		BAD("--sun: EVERY must be at least RISE + HOLD");
	if (!in_range(c->lamp_near_pulse, 0, 1) || !in_range(c->lamp_pre_ms, 0, 1e5))
		BAD("--lamp-near-pulse needs a probability 0..1 and a lead of 0 or more ms");
	if (!in_range(c->high_w, 0, 1e7))
		BAD("--high must be between 0 and 1e7 W");
	if (c->n_high > PL_SIM_MAX_ZERO)
		BAD("at most %d --high periods", PL_SIM_MAX_ZERO);
	for (size_t i = 0; i < c->n_high; i++)
		if (!in_range(c->high[i].start_s, i ? c->high[i - 1].end_s : 0, 1e12) ||
		    !(c->high[i].end_s > c->high[i].start_s))
			BAD("--high START:END periods need 0 <= START < END, in order, not overlapping");
	if (c->load) {
		const struct pl_sim_load *l = c->load;
		if (l->n < 2 || !l->t || (l->kind == PL_SIM_LOAD_PROFILE && !l->w))
			BAD("the load has fewer than 2 entries");
		if (l->t[l->n - 1] <= 0)
			BAD("the load covers no time");
		if (l->kind == PL_SIM_LOAD_PULSES && !c->load_imp_per_kwh && !l->imp_per_kwh)
			BAD("the pulse log's meter constant is unknown: give --load-imp");
	}
	return 0;
#undef BAD
}

/* ---- load files ---- */

void pl_sim_load_free(struct pl_sim_load *load)
{
	if (!load)
		return;
	free(load->t);
	free(load->w);
	load->t = load->w = NULL;
	load->n = 0;
}

int pl_sim_load_from(struct pl_sim_load *load, const double *t, const double *w, size_t n,
		     uint32_t imp_per_kwh, char *err, size_t errlen)
{
	memset(load, 0, sizeof(*load));
	if (n < 2) {
		seterr(err, errlen, "a load needs at least 2 entries");
		return -PL_EINVAL;
	}
	load->kind = w ? PL_SIM_LOAD_PROFILE : PL_SIM_LOAD_PULSES;
	load->t = malloc(n * sizeof(double));
	load->w = w ? malloc(n * sizeof(double)) : NULL;
	if (!load->t || (w && !load->w)) {
		pl_sim_load_free(load);
		seterr(err, errlen, "out of memory");
		return -PL_ENOMEM;
	}
	load->t0_unix = t[0];
	load->imp_per_kwh = imp_per_kwh;
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		double ti = t[i] - t[0];
		if (!isfinite(ti) || (w && !isfinite(w[i])) || (m > 0 && ti < load->t[m - 1])) {
			pl_sim_load_free(load);
			seterr(err, errlen, "load entry %zu: time not finite or going backwards", i + 1);
			return -PL_EPARSE;
		}
		if (m > 0 && ti == load->t[m - 1]) {
			/* A repeated time: a profile keeps the later value, a log the one pulse. */
			if (w)
				load->w[m - 1] = w[i] < 0 ? 0 : w[i];
			continue;
		}
		load->t[m] = ti;
		if (w)
			load->w[m] = w[i] < 0 ? 0 : w[i]; /* export is no load for an import meter */
		m++;
	}
	load->n = m;
	if (m < 2) {
		pl_sim_load_free(load);
		seterr(err, errlen, "a load needs at least 2 distinct times");
		return -PL_EINVAL;
	}
	return 0;
}

/* Finds "<digits> imp/kWh" in a comment. */
static uint32_t comment_imp(const char *line)
{
	const char *p = strstr(line, "imp/kWh");
	if (!p)
		p = strstr(line, "imp/kwh");
	if (!p)
		return 0;
	while (p > line && p[-1] == ' ')
		p--;
	const char *e = p;
	while (p > line && p[-1] >= '0' && p[-1] <= '9')
		p--;
	if (p == e)
		return 0;
	unsigned long v = strtoul(p, NULL, 10);
	return v <= 1000000 ? (uint32_t)v : 0;
}

static int push_double(double **a, size_t *len, size_t *cap, double v)
{
	if (*len == *cap) {
		size_t nc = *cap ? *cap * 2 : 1024;
		double *na = realloc(*a, nc * sizeof(double));
		if (!na)
			return -PL_ENOMEM;
		*a = na;
		*cap = nc;
	}
	(*a)[(*len)++] = v;
	return 0;
}

/* What pl_sim_load_read has read so far. */
struct load_text {
	double *t, *w;
	size_t nt, ct, nw, cw;
	int kind; /* unknown (-1) until the header or the first line */
	uint32_t imp;
};

/* A header line (p starts with a letter): 0, or -PL_EPARSE. */
static int load_header(struct load_text *lt, const char *p, const char *path, size_t lineno,
		       char *err, size_t errlen)
{
	if (lt->nt > 0 || lt->kind >= 0) {
		seterr(err, errlen, "%s:%zu: unexpected text", path, lineno);
		return -PL_EPARSE;
	}
	if (strncmp(p, "unix_s,watts", 12) == 0) {
		lt->kind = PL_SIM_LOAD_PROFILE;
	} else if (strncmp(p, "epoch_ms", 8) == 0) {
		lt->kind = PL_SIM_LOAD_PULSES;
	} else {
		seterr(err, errlen, "%s:%zu: unknown header (want `unix_s,watts` or `epoch_ms`)",
		       path, lineno);
		return -PL_EPARSE;
	}
	return 0;
}

/* A line of numbers: `unix_s,watts` or one time in ms. 0, -PL_EPARSE or -PL_ENOMEM. */
static int load_entry(struct load_text *lt, char *p, const char *path, size_t lineno,
		      char *err, size_t errlen)
{
	char *end;

	errno = 0;
	double a = strtod(p, &end);
	if (end == p || errno || !isfinite(a)) {
		seterr(err, errlen, "%s:%zu: bad number", path, lineno);
		return -PL_EPARSE;
	}
	if (lt->kind < 0)
		lt->kind = (*end == ',') ? PL_SIM_LOAD_PROFILE : PL_SIM_LOAD_PULSES;
	if (lt->kind == PL_SIM_LOAD_PROFILE) {
		if (*end != ',') {
			seterr(err, errlen, "%s:%zu: expected `unix_s,watts`", path, lineno);
			return -PL_EPARSE;
		}
		p = end + 1;
		errno = 0;
		double b = strtod(p, &end);
		if (end == p || errno || !isfinite(b) || *end != '\0') {
			seterr(err, errlen, "%s:%zu: bad power", path, lineno);
			return -PL_EPARSE;
		}
		if (push_double(&lt->w, &lt->nw, &lt->cw, b))
			return -PL_ENOMEM;
	} else {
		if (*end != '\0') {
			seterr(err, errlen, "%s:%zu: expected one time in ms", path, lineno);
			return -PL_EPARSE;
		}
		a /= 1000.0;
	}
	if (lt->nt > 0 && a < lt->t[lt->nt - 1]) {
		seterr(err, errlen, "%s:%zu: time goes backwards", path, lineno);
		return -PL_EPARSE;
	}
	if (push_double(&lt->t, &lt->nt, &lt->ct, a))
		return -PL_ENOMEM;
	return 0;
}

int pl_sim_load_read(const char *path, struct pl_sim_load *load, char *err, size_t errlen)
{
	memset(load, 0, sizeof(*load));
	FILE *f = fopen(path, "r");
	if (!f) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		return -PL_EIO;
	}
	struct load_text lt = { .kind = -1 };
	char *line = NULL;
	size_t lcap = 0;
	ssize_t len;
	size_t lineno = 0;
	int rc = 0;
	while ((len = getline(&line, &lcap, f)) >= 0) {
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
				   line[len - 1] == ' ' || line[len - 1] == '\t'))
			line[--len] = '\0';
		char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			continue;
		if (*p == '#') {
			if (!lt.imp)
				lt.imp = comment_imp(p);
			continue;
		}
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
			rc = load_header(&lt, p, path, lineno, err, errlen);
		else
			rc = load_entry(&lt, p, path, lineno, err, errlen);
		if (rc)
			goto out;
	}
	if (ferror(f)) {
		seterr(err, errlen, "%s: read error", path);
		rc = -PL_EIO;
		goto out;
	}
	if (lt.nt < 2) {
		seterr(err, errlen, "%s: fewer than 2 entries", path);
		rc = -PL_EINVAL;
		goto out;
	}
	rc = pl_sim_load_from(load, lt.t, lt.kind == PL_SIM_LOAD_PROFILE ? lt.w : NULL, lt.nt,
			      lt.imp, err, errlen);
	if (rc == 0 && lt.kind == PL_SIM_LOAD_PULSES && lt.nt > 0)
		load->t0_unix = lt.t[0];
out:
	if (rc == -PL_ENOMEM)
		seterr(err, errlen, "out of memory");
	free(line);
	free(lt.t);
	free(lt.w);
	fclose(f);
	return rc;
}

/* ---- march: the load walked through time ---- */

static void cursor_advance(struct pl_sim *s)
{
	if (++s->ci >= s->pn - 1) {
		s->ci = 0;
		s->ck++;
	}
}

/* Power of the profile at load time u within the current segment. */
static double profile_power(const struct pl_sim *s, double u)
{
	double ua = (double)s->ck * s->pT + s->pt[s->ci];
	double ub = (double)s->ck * s->pT + s->pt[s->ci + 1];
	if (s->step_interp || ub <= ua)
		return s->pw[s->ci];
	double f = (u - ua) / (ub - ua);
	if (f < 0)
		f = 0;
	if (f > 1)
		f = 1;
	return s->pw[s->ci] + (s->pw[s->ci + 1] - s->pw[s->ci]) * f;
}

/*
 * The piece of load that starts at s->tm: it ends at *tb and its power goes linearly from *pa
 * to *pb. Returns 1 in a zero-load period. *at_point is set when the piece ends at a profile
 * point, so that consuming it moves the cursor to the next segment.
 */
static int load_piece(struct pl_sim *s, double *tb, double *pa, double *pb, int *at_point)
{
	const struct pl_sim_config *c = &s->cfg;
	double t = s->tm;
	*at_point = 0;
	while (s->zi < c->n_zero && c->zero[s->zi].end_s <= t)
		s->zi++;
	double lim = s->t_march_end;
	if (s->zi < c->n_zero) {
		if (c->zero[s->zi].start_s <= t) {
			*tb = fmin(c->zero[s->zi].end_s, lim);
			*pa = *pb = 0;
			return 1;
		}
		lim = fmin(lim, c->zero[s->zi].start_s);
	}
	if (!s->pn) {
		double p = c->power_w;
		while (s->hi < c->n_high && c->high[s->hi].end_s <= t)
			s->hi++;
		if (s->hi < c->n_high) {
			if (c->high[s->hi].start_s <= t) {
				p = c->high_w;
				lim = fmin(lim, c->high[s->hi].end_s);
			} else {
				lim = fmin(lim, c->high[s->hi].start_s);
			}
		}
		*tb = lim;
		*pa = *pb = p;
		return 0;
	}
	double tpt = ((double)s->ck * s->pT + s->pt[s->ci + 1] - c->load_start_s) / c->load_speed;
	if (tpt < t)
		tpt = t; /* rounding at a segment's end: an empty piece that moves the cursor */
	*pa = profile_power(s, c->load_start_s + t * c->load_speed);
	if (tpt <= lim) {
		*tb = tpt;
		*pb = s->step_interp ? s->pw[s->ci] : s->pw[s->ci + 1];
		*at_point = 1;
	} else {
		*tb = lim;
		*pb = profile_power(s, c->load_start_s + lim * c->load_speed);
	}
	return 0;
}

/* Statistics of the load over [a, b) (the part before the end), power pa..pb. */
static void account(struct pl_sim *s, double a, double b, double pa, double pb, int no_load)
{
	if (a >= s->t_end || b <= a)
		return;
	if (b > s->t_end) {
		pb = pa + (pb - pa) * (s->t_end - a) / (b - a);
		b = s->t_end;
	}
	if (pa < s->st.load_min_w)
		s->st.load_min_w = pa;
	if (pb < s->st.load_min_w)
		s->st.load_min_w = pb;
	if (pa > s->st.load_max_w)
		s->st.load_max_w = pa;
	if (pb > s->st.load_max_w)
		s->st.load_max_w = pb;
	if (no_load)
		s->st.no_load_s += b - a;
	else
		s->st.energy_wh += 0.5 * (pa + pb) * (b - a) / 3600.0;
}

static struct item mk_item(enum item_kind kind, double a, double b, double p)
{
	struct item it = { .kind = kind, .a = a, .b = b, .p = p };
	return it;
}

static struct item march_energy(struct pl_sim *s)
{
	const double creep_w = s->cfg.creep_w;
	for (;;) {
		if (s->tm >= s->t_march_end) {
			if (s->in_creep) {
				s->in_creep = 0;
				return mk_item(IT_CREEP, s->creep_a, s->t_march_end, 0);
			}
			return mk_item(IT_END, 0, 0, 0);
		}
		double tb, pa, pb;
		int at_point;
		int zero = load_piece(s, &tb, &pa, &pb, &at_point);
		if (!zero && (pa < creep_w) != (pb < creep_w) && pb != pa) {
			/* Cut the piece where the load crosses the no-load threshold. */
			double tx = s->tm + (creep_w - pa) / (pb - pa) * (tb - s->tm);
			if (tx > s->tm && tx < tb) {
				tb = tx;
				pb = creep_w;
				at_point = 0;
			}
		}
		int no_load = zero || 0.5 * (pa + pb) < creep_w;
		if (no_load) {
			if (!s->in_creep) {
				s->in_creep = 1;
				s->creep_a = s->tm;
			}
			account(s, s->tm, tb, pa, pb, 1);
			s->tm = tb;
			if (at_point)
				cursor_advance(s);
			continue;
		}
		if (s->in_creep) {
			s->in_creep = 0;
			return mk_item(IT_CREEP, s->creep_a, s->tm, 0);
		}
		double need = s->ep_j - s->e_acc;
		double dt = tb - s->tm;
		double e = 0.5 * (pa + pb) * dt;
		if (dt > 0 && need <= e) {
			/* Energy pa*x + (pb-pa)/(2 dt)*x^2 = need; the stable root. */
			double disc = pa * pa + 2.0 * (pb - pa) * need / dt;
			double x = 2.0 * need / (pa + sqrt(disc > 0 ? disc : 0));
			if (!(x >= 0))
				x = 0;
			if (x > dt)
				x = dt;
			double pp = pa + (pb - pa) * x / dt;
			account(s, s->tm, s->tm + x, pa, pp, 0);
			s->tm += x;
			s->e_acc = 0;
			return mk_item(IT_PULSE, s->tm, 0, pp);
		}
		account(s, s->tm, tb, pa, pb, 0);
		s->e_acc += e;
		s->tm = tb;
		if (at_point)
			cursor_advance(s);
	}
}

/* A pulse log played as is: its own pulse times, divided by the speed. */
static struct item march_asis(struct pl_sim *s)
{
	const struct pl_sim_config *c = &s->cfg;
	for (;;) {
		double tf = (double)s->ck * s->pT + s->ap[s->ci];
		double tp = (tf - c->load_start_s) / c->load_speed;
		if (tp < 0 || tp < s->skip_until) {
			cursor_advance(s);
			continue;
		}
		if (s->zi < c->n_zero && c->zero[s->zi].start_s <= tp &&
		    c->zero[s->zi].start_s < s->t_march_end) {
			const struct pl_sim_span *z = &c->zero[s->zi++];
			double b = fmin(z->end_s, s->t_march_end);
			s->skip_until = b;
			account(s, z->start_s, b, 0, 0, 1);
			return mk_item(IT_CREEP, z->start_s, b, 0);
		}
		if (tp >= s->t_march_end)
			return mk_item(IT_END, 0, 0, 0);
		/* The gap before pulse 0 of a wrap is the last gap of the log. */
		double gap = s->ci > 0 ? s->ap[s->ci] - s->ap[s->ci - 1]
				       : s->ap[s->an - 1] - s->ap[s->an - 2];
		double p = s->a_ep_j / gap * c->load_speed;
		cursor_advance(s);
		if (tp < s->t_end) {
			s->st.load_min_w = fmin(s->st.load_min_w, p);
			s->st.load_max_w = fmax(s->st.load_max_w, p);
			s->st.energy_wh += s->a_ep_j / 3600.0;
		}
		return mk_item(IT_PULSE, tp, 0, p);
	}
}

static struct item march(struct pl_sim *s)
{
	return s->asis ? march_asis(s) : march_energy(s);
}

static struct item take_item(struct pl_sim *s)
{
	if (s->have_look) {
		s->have_look = 0;
		return s->look;
	}
	return march(s);
}

static const struct item *peek_item(struct pl_sim *s)
{
	if (!s->have_look) {
		s->look = march(s);
		s->have_look = 1;
	}
	return &s->look;
}

/* ---- schedule: items into LED spans and true pulses ---- */

static int push_span(struct pl_sim *s, double a, double b)
{
	if (s->q_head + s->q_len == s->q_cap) {
		if (s->q_head > 0) {
			memmove(s->q, s->q + s->q_head, s->q_len * sizeof(*s->q));
			s->q_head = 0;
		} else {
			size_t nc = s->q_cap ? s->q_cap * 2 : 16;
			struct span *nq = realloc(s->q, nc * sizeof(*nq));
			if (!nq)
				return -PL_ENOMEM;
			s->q = nq;
			s->q_cap = nc;
		}
	}
	s->q[s->q_head + s->q_len].a = a;
	s->q[s->q_head + s->q_len].b = b;
	s->q_len++;
	return 0;
}

static int push_truth(struct pl_sim *s, const struct pl_sim_pulse *p)
{
	if (s->t_head + s->t_len == s->t_cap) {
		if (s->t_head > s->t_cap / 2) {
			memmove(s->truth, s->truth + s->t_head, s->t_len * sizeof(*s->truth));
			s->t_head = 0;
		} else {
			size_t nc = s->t_cap ? s->t_cap * 2 : 64;
			struct pl_sim_pulse *nt = realloc(s->truth, nc * sizeof(*nt));
			if (!nt)
				return -PL_ENOMEM;
			s->truth = nt;
			s->t_cap = nc;
		}
	}
	s->truth[s->t_head + s->t_len++] = *p;
	return 0;
}

/* Takes one item from the march and schedules what it means for the LED. */
static void schedule(struct pl_sim *s)
{
	struct item it = take_item(s);
	switch (it.kind) {
	case IT_END:
		s->plan_done = 1;
		return;
	case IT_CREEP:
		if (s->cfg.anticreep && !s->cfg.led_dark && it.b - it.a >= CREEP_MIN_S) {
			double a = fmax(it.a, s->last_end + CREEP_GUARD_S);
			if (it.b > a) {
				(void)push_span(s, a, it.b);
				s->last_end = it.b;
				s->after_creep = 1;
			}
		}
		return;
	case IT_PULSE: {
		double t = it.a;
		if (s->after_creep)
			t = fmax(t, s->last_end + CREEP_GUARD_S);
		double w = s->width_s;
		const struct item *nx = peek_item(s);
		if (nx->kind == IT_PULSE && w > 0.5 * (nx->a - t))
			w = 0.5 * (nx->a - t);
		if (w < 1e-6)
			w = 1e-6;
		(void)push_span(s, t, t + w);
		if (s->cfg.lamp_near_pulse > 0 && rng_unif(&s->r_lamp) < s->cfg.lamp_near_pulse) {
			double pre = s->cfg.lamp_pre_ms * 1e-3;
			double at = t - pre + (pre + w) * rng_unif(&s->r_lamp);
			if (at > s->tp && at < s->sync_step)
				s->sync_step = at;
		}
		s->last_end = t + w;
		s->after_creep = 0;
		s->last_pulse_t = t;
		if (t < s->t_end) {
			struct pl_sim_pulse p = {
				.t_us = llround(t * 1e6),
				.width_us = (uint32_t)llround(w * 1e6),
				.power_w = it.p,
			};
			(void)push_truth(s, &p);
			s->st.pulses++;
		}
		return;
	}
	}
}

/* ---- physics ---- */

static double room_light(const struct pl_sim *s, double t)
{
	const struct pl_sim_config *c = &s->cfg;
	double l = c->ambient;
	if (c->drift > 0)
		l += c->drift * sin(TWO_PI * t / c->drift_period_s + s->ph_drift);
	if (l < 0)
		l = 0;
	l += s->lamp;
	if (c->flicker > 0)
		l += c->flicker * 0.5 * (1.0 + sin(TWO_PI * c->flicker_hz * t + s->ph_flicker));
	if (c->sun_level > 0 && t >= c->sun_at_s) {
		double u = t - c->sun_at_s;
		if (c->sun_every_s > 0)
			u = fmod(u, c->sun_every_s);
		if (u < c->sun_rise_s)
			l += c->sun_level * u / c->sun_rise_s;
		else if (u < c->sun_rise_s + c->sun_s)
			l += c->sun_level;
		else
			l += c->sun_level * exp(-(u - c->sun_rise_s - c->sun_s) / c->sun_fall_s);
	}
	return l;
}

static double ldr_target(double light)
{
	return LDR_GAMMA * log(light + LDR_DARK);
}

/* Exact first-order update for light held constant over h seconds. */
static void sensor_step(struct pl_sim *s, double light, double h)
{
	const struct pl_sim_config *c = &s->cfg;
	if (c->sensor == PL_SIM_PHOTODIODE) {
		s->y += (light - s->y) * -expm1(-h / (c->tau_ms * 1e-3));
		return;
	}
	double target = ldr_target(light);
	double tau = (target > s->y ? c->rise_ms : c->fall_ms) * 1e-3;
	/* Slower in the dark: time constants grow as light^-0.3 below the LED's light, up to 3x. */
	double slow = exp(-0.3 / LDR_GAMMA * s->y);
	if (slow < 1)
		slow = 1;
	if (slow > 3)
		slow = 3;
	s->y += (target - s->y) * -expm1(-h / (tau * slow));
}

static void drop_passed_spans(struct pl_sim *s)
{
	while (s->q_len && s->q[s->q_head].b <= s->tp) {
		s->q_head++;
		s->q_len--;
	}
	if (!s->q_len)
		s->q_head = 0;
}

/* Whether the LED is away from its resting state at s->tp; *bound: when that next changes. */
static int led_active(struct pl_sim *s, double *bound)
{
	drop_passed_spans(s);
	while (!s->q_len && !s->plan_done) {
		schedule(s);
		drop_passed_spans(s);
	}
	if (!s->q_len) {
		*bound = INFINITY;
		return 0;
	}
	const struct span *sp = &s->q[s->q_head];
	if (s->tp >= sp->a) {
		*bound = sp->b;
		return 1;
	}
	*bound = sp->a;
	return 0;
}

static void advance(struct pl_sim *s, double t1)
{
	while (s->tp < t1) {
		if (s->next_step <= s->tp) {
			s->lamp = s->lamp > 0 ? 0 : s->cfg.step_size;
			s->st.lamp_steps++;
			s->next_step += rng_expo(&s->r_room, s->cfg.steps_per_hour / 3600.0);
			continue;
		}
		if (s->sync_step <= s->tp) {
			s->lamp = s->lamp > 0 ? 0 : s->cfg.step_size;
			s->st.lamp_steps++;
			s->sync_step = INFINITY;
			continue;
		}
		double bound;
		int active = led_active(s, &bound);
		double te = fmin(fmin(t1, bound), fmin(s->next_step, s->tp + s->hmax));
		te = fmin(te, s->sync_step);
		int lit = active ^ (s->cfg.led_dark != 0);
		double light = room_light(s, 0.5 * (s->tp + te)) + (lit ? 1.0 : 0.0);
		sensor_step(s, light, te - s->tp);
		s->tp = te;
	}
	double bound;
	s->lit_now = led_active(s, &bound) ^ (s->cfg.led_dark != 0);
}

/* The sensor's output as an ideal ADC code (before noise and the ADC's nonlinearity). */
static double sensor_code(const struct pl_sim *s)
{
	const struct pl_sim_config *c = &s->cfg;
	if (c->sensor == PL_SIM_PHOTODIODE) {
		double x = c->offset + c->amplitude * s->y;
		return c->invert ? (double)s->fs - x : x;
	}
	double g = exp(s->y);
	double f = c->invert ? s->ldr_gref / (g + s->ldr_gref) : g / (g + s->ldr_gref);
	return c->offset + s->ldr_vs * f;
}

static int32_t adc_read(struct pl_sim *s, double ts)
{
	const struct pl_sim_config *c = &s->cfg;
	double fs = (double)s->fs;
	double x = sensor_code(s);
	if (c->noise > 0)
		x += c->noise * rng_gauss(&s->r_noise);
	x -= s->dz_lsb;
	if (x < 0)
		x = 0;
	if (c->compress > 0) {
		double knee = c->compress * fs;
		if (x > knee)
			x = knee + (fs - knee) * tanh((x - knee) / (fs - knee));
	}
	if (x > fs)
		x = fs;
	int32_t v = (int32_t)lround(x);
	if (c->spikes_per_s > 0 && s->next_spike <= ts) {
		while (s->next_spike <= ts)
			s->next_spike += rng_expo(&s->r_spike, c->spikes_per_s);
		double scale = fs / 4095.0;
		if (c->spike_min_lsb > 0)
			s->burst_mag = c->spike_min_lsb + (c->spike_max_lsb - c->spike_min_lsb) *
							  rng_unif(&s->r_spike);
		else
			s->burst_mag = scale * (SPIKE_MIN_LSB + (SPIKE_MAX_LSB - SPIKE_MIN_LSB) *
								rng_unif(&s->r_spike));
		int up = rng_unif(&s->r_spike) < 0.5;
		/* The direction in which an outlier of this size fits. */
		if (up && v + s->burst_mag > fs)
			up = 0;
		else if (!up && v - s->burst_mag < 0)
			up = 1;
		s->burst_up = up;
		double dur = c->burst_ms;
		if (c->burst_max_ms > c->burst_ms) /* own stream: the other draws do not move */
			dur += (c->burst_max_ms - c->burst_ms) * rng_unif(&s->r_burst);
		s->burst_until = ts + dur * 1e-3;
		s->st.spikes++;
	} else if (!(ts < s->burst_until)) {
		return v;
	}
	double sv = s->burst_up ? v + s->burst_mag : v - s->burst_mag;
	if (sv < 0)
		sv = 0;
	if (sv > fs)
		sv = fs;
	return (int32_t)lround(sv);
}

/* ---- public API ---- */

static int cmp_span(const void *a, const void *b)
{
	double x = ((const struct pl_sim_span *)a)->start_s;
	double y = ((const struct pl_sim_span *)b)->start_s;
	return (x > y) - (x < y);
}

/* The load profile or pulse log the simulator follows (cfg->load), from load_start_s on. */
static int sim_use_load(struct pl_sim *s, char *err, size_t errlen)
{
	const struct pl_sim_config *c = &s->cfg;
	const struct pl_sim_load *l = c->load;
	uint32_t limp = c->load_imp_per_kwh ? c->load_imp_per_kwh : l->imp_per_kwh;
	s->pt = l->t;
	s->pT = l->t[l->n - 1];
	s->pn = l->n;
	if (l->kind == PL_SIM_LOAD_PROFILE) {
		s->pw = l->w;
		s->step_interp = c->interp == PL_SIM_STEP;
	} else if (c->pulse_mode == PL_SIM_PULSES_ASIS) {
		s->asis = 1;
		s->ap = l->t;
		s->an = l->n;
		s->a_ep_j = 3.6e6 / (double)limp;
		s->st.pulse_imp_per_kwh = limp;
	} else {
		/* Each gap between two logged pulses held one pulse's energy. */
		s->pw_own = malloc(l->n * sizeof(double));
		if (!s->pw_own) {
			seterr(err, errlen, "out of memory");
			return -PL_ENOMEM;
		}
		double ep_log = 3.6e6 / (double)limp;
		for (size_t i = 0; i + 1 < l->n; i++)
			s->pw_own[i] = ep_log / (l->t[i + 1] - l->t[i]);
		s->pw_own[l->n - 1] = s->pw_own[l->n - 2];
		s->pw = s->pw_own;
		s->step_interp = 1;
	}
	/* Cursor on the segment that holds the start. */
	double u = c->load_start_s;
	s->ck = (int64_t)floor(u / s->pT);
	s->ci = 0;
	if (!s->asis) {
		double uu = u - (double)s->ck * s->pT;
		while (s->ci + 2 < s->pn && s->pt[s->ci + 1] <= uu)
			s->ci++;
	}
	return 0;
}

/* The sensor settled at the light of t = 0 with the LED at rest. */
static void sim_settle_sensor(struct pl_sim *s)
{
	const struct pl_sim_config *c = &s->cfg;
	double l0 = room_light(s, 0) + (c->led_dark ? 1.0 : 0.0);
	if (c->sensor == PL_SIM_PHOTODIODE) {
		s->y = l0;
	} else {
		s->y = ldr_target(l0);
		/* Divider: the fixed resistor matches the LDR half way up the LED's swing; the
		 * supply makes the settled swing at the initial ambient light `amplitude` LSB. */
		/* The room's mean light at the start, flicker averaged, as its installer saw it. */
		double amb = c->ambient + c->drift * sin(s->ph_drift);
		if (amb < 0)
			amb = 0;
		amb += 0.5 * c->flicker;
		s->ldr_gref = pow(amb + 0.5 + LDR_DARK, LDR_GAMMA);
		double g0 = pow(amb + LDR_DARK, LDR_GAMMA), g1 = pow(amb + 1.0 + LDR_DARK, LDR_GAMMA);
		double f0 = g0 / (g0 + s->ldr_gref), f1 = g1 / (g1 + s->ldr_gref);
		s->ldr_vs = c->amplitude / (f1 - f0);
		/* The divider's supply is the ADC's reference at most: in a bright room the LED's
		 * share of the light is small and the swing stays below `amplitude`. */
		if (s->ldr_vs > (double)s->fs)
			s->ldr_vs = (double)s->fs;
		s->st.ldr_supply_lsb = s->ldr_vs;
	}
}

int pl_sim_new(struct pl_sim **out, const struct pl_sim_config *cfg, char *err, size_t errlen)
{
	*out = NULL;
	int rc = pl_sim_config_check(cfg, err, errlen);
	if (rc)
		return rc;
	struct pl_sim *s = calloc(1, sizeof(*s));
	if (!s) {
		seterr(err, errlen, "out of memory");
		return -PL_ENOMEM;
	}
	s->cfg = *cfg;
	struct pl_sim_config *c = &s->cfg;

	/* Zero-load periods in order, overlapping ones merged. */
	qsort(c->zero, c->n_zero, sizeof(c->zero[0]), cmp_span);
	size_t nz = 0;
	for (size_t i = 0; i < c->n_zero; i++) {
		if (nz > 0 && c->zero[i].start_s <= c->zero[nz - 1].end_s) {
			c->zero[nz - 1].end_s = fmax(c->zero[nz - 1].end_s, c->zero[i].end_s);
			continue;
		}
		c->zero[nz++] = c->zero[i];
	}
	c->n_zero = nz;

	rng_seed(&s->r_noise, c->seed, 1);
	rng_seed(&s->r_spike, c->seed, 2);
	rng_seed(&s->r_jitter, c->seed, 3);
	rng_seed(&s->r_room, c->seed, 4);
	rng_seed(&s->r_load, c->seed, 5);
	rng_seed(&s->r_lamp, c->seed, 6);
	rng_seed(&s->r_burst, c->seed, 7);

	s->ep_j = 3.6e6 / (double)c->imp_per_kwh;
	s->st.pulse_imp_per_kwh = c->imp_per_kwh;
	s->t_end = c->duration_s;
	s->t_march_end = c->duration_s + 2.0;
	s->fs = (int32_t)((1u << c->adc_bits) - 1u);
	s->dz_lsb = c->deadzone_mv * 1e-3 / c->vref_v * (double)s->fs;
	s->width_s = c->width_ms * 1e-3;

	if (c->load && sim_use_load(s, err, errlen) != 0) {
		pl_sim_free(s);
		return -PL_ENOMEM;
	}
	s->e_acc = rng_unif(&s->r_load) * s->ep_j; /* random initial phase of the meter */
	s->last_end = -1e9;
	s->last_pulse_t = -1e9;

	/* Time step: exact between LED edges; flicker and the LDR's nonlinearity need more. */
	s->hmax = 0.01;
	if (c->flicker > 0)
		s->hmax = fmin(s->hmax, 1.0 / (16.0 * c->flicker_hz));
	if (c->sensor == PL_SIM_LDR)
		s->hmax = fmin(s->hmax, 0.25e-3 * fmin(c->rise_ms, c->fall_ms));

	s->ph_drift = TWO_PI * rng_unif(&s->r_room);
	s->ph_flicker = TWO_PI * rng_unif(&s->r_room);
	s->next_step = c->steps_per_hour > 0 ? rng_expo(&s->r_room, c->steps_per_hour / 3600.0)
					     : INFINITY;
	s->next_spike = c->spikes_per_s > 0 ? rng_expo(&s->r_spike, c->spikes_per_s) : INFINITY;
	s->burst_until = -INFINITY;
	s->sync_step = INFINITY;

	sim_settle_sensor(s);
	s->st.load_min_w = INFINITY;
	s->st.load_max_w = -INFINITY;
	s->st.v_min = INT32_MAX;
	s->st.v_max = INT32_MIN;
	s->t_us_last = -1;
	*out = s;
	return 0;
}

/* At the end: schedule every pulse that starts before the end, for pl_sim_truth(). */
static void flush_plan(struct pl_sim *s)
{
	while (!s->plan_done && s->last_pulse_t < s->t_end)
		schedule(s);
}

size_t pl_sim_read(struct pl_sim *s, struct pl_sample *out, size_t cap)
{
	const struct pl_sim_config *c = &s->cfg;
	size_t n = 0;
	while (n < cap && !s->done) {
		double ts = c->jitter > 0 ? s->ts : (double)s->k / c->rate_hz;
		if (ts >= s->t_end) {
			s->done = 1;
			flush_plan(s);
			break;
		}
		int64_t tu = llround(ts * 1e6);
		if (tu <= s->t_us_last)
			tu = s->t_us_last + 1;
		double tq = (double)tu * 1e-6;
		advance(s, tq);
		int32_t v = adc_read(s, tq);
		out[n].t_us = tu;
		out[n].v = v;
		n++;
		s->t_us_last = tu;
		s->k++;
		if (c->jitter > 0)
			s->ts += (1.0 + c->jitter * (2.0 * rng_unif(&s->r_jitter) - 1.0)) / c->rate_hz;
		s->st.samples++;
		if (v < s->st.v_min)
			s->st.v_min = v;
		if (v > s->st.v_max)
			s->st.v_max = v;
	}
	return n;
}

size_t pl_sim_truth(struct pl_sim *s, struct pl_sim_pulse *out, size_t cap)
{
	size_t n = 0;
	while (n < cap && s->t_len > 0) {
		const struct pl_sim_pulse *p = &s->truth[s->t_head];
		if (!s->done && p->t_us > s->t_us_last)
			break;
		out[n++] = *p;
		s->t_head++;
		s->t_len--;
	}
	if (!s->t_len)
		s->t_head = 0;
	return n;
}

int pl_sim_led_lit(const struct pl_sim *s)
{
	return s->lit_now;
}

int32_t pl_sim_full_scale(const struct pl_sim *s)
{
	return s->fs;
}

void pl_sim_stats(const struct pl_sim *s, struct pl_sim_stats *st)
{
	*st = s->st;
	if (!isfinite(st->load_min_w))
		st->load_min_w = 0;
	if (!isfinite(st->load_max_w))
		st->load_max_w = 0;
	if (st->samples == 0)
		st->v_min = st->v_max = 0;
}

void pl_sim_free(struct pl_sim *s)
{
	if (!s)
		return;
	free(s->pw_own);
	free(s->q);
	free(s->truth);
	free(s);
}
