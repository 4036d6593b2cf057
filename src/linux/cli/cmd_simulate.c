/* SPDX-License-Identifier: MIT */
/*
 * `powerlogger simulate`: writes a simulated sensor trace and the true pulses behind it.
 *
 * The physics lives in sim.c; this file parses options, reads a load file, streams the samples
 * to the trace (CSV `time_s,value`, or raw 16-bit samples at the rate) and the pulses to the
 * truth file (CSV `time_s,width_ms,power_w`), and prints a summary on standard error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "powerlogger/common.h"
#include "sources/sim.h"
#include "sources/trace.h"

enum {
	OPT_SEED = 256, OPT_DURATION, OPT_RATE, OPT_JITTER,
	OPT_POWER, OPT_LOAD, OPT_INTERP, OPT_LOAD_START, OPT_LOAD_SPEED, OPT_LOAD_IMP,
	OPT_LOAD_PULSES, OPT_ZERO, OPT_CREEP_W, OPT_IMP,
	OPT_WIDTH, OPT_LED, OPT_ANTICREEP,
	OPT_AMBIENT, OPT_DRIFT, OPT_DRIFT_PERIOD, OPT_STEPS, OPT_STEP_SIZE, OPT_FLICKER,
	OPT_FLICKER_HZ,
	OPT_SENSOR, OPT_TAU, OPT_RISE, OPT_FALL, OPT_INVERT,
	OPT_BITS, OPT_VREF, OPT_AMPLITUDE, OPT_OFFSET, OPT_NOISE, OPT_DEADZONE, OPT_COMPRESS,
	OPT_SPIKES, OPT_BURST, OPT_SPIKE_LSB, OPT_SUN, OPT_LAMP_NEAR, OPT_HIGH, OPT_ESP32,
	OPT_OUT, OPT_TRUTH, OPT_RAW, OPT_QUIET, OPT_HELP,
};

static const struct option long_opts[] = {
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "rate", required_argument, NULL, OPT_RATE },
	{ "jitter", required_argument, NULL, OPT_JITTER },
	{ "power", required_argument, NULL, OPT_POWER },
	{ "load", required_argument, NULL, OPT_LOAD },
	{ "interp", required_argument, NULL, OPT_INTERP },
	{ "load-start", required_argument, NULL, OPT_LOAD_START },
	{ "load-speed", required_argument, NULL, OPT_LOAD_SPEED },
	{ "load-imp", required_argument, NULL, OPT_LOAD_IMP },
	{ "load-pulses", required_argument, NULL, OPT_LOAD_PULSES },
	{ "zero-load", required_argument, NULL, OPT_ZERO },
	{ "creep-w", required_argument, NULL, OPT_CREEP_W },
	{ "imp-per-kwh", required_argument, NULL, OPT_IMP },
	{ "width-ms", required_argument, NULL, OPT_WIDTH },
	{ "led", required_argument, NULL, OPT_LED },
	{ "anticreep", no_argument, NULL, OPT_ANTICREEP },
	{ "ambient", required_argument, NULL, OPT_AMBIENT },
	{ "drift", required_argument, NULL, OPT_DRIFT },
	{ "drift-period", required_argument, NULL, OPT_DRIFT_PERIOD },
	{ "steps", required_argument, NULL, OPT_STEPS },
	{ "step-size", required_argument, NULL, OPT_STEP_SIZE },
	{ "flicker", required_argument, NULL, OPT_FLICKER },
	{ "flicker-hz", required_argument, NULL, OPT_FLICKER_HZ },
	{ "sensor", required_argument, NULL, OPT_SENSOR },
	{ "tau-ms", required_argument, NULL, OPT_TAU },
	{ "rise-ms", required_argument, NULL, OPT_RISE },
	{ "fall-ms", required_argument, NULL, OPT_FALL },
	{ "invert-adc", no_argument, NULL, OPT_INVERT },
	{ "adc-bits", required_argument, NULL, OPT_BITS },
	{ "vref", required_argument, NULL, OPT_VREF },
	{ "amplitude", required_argument, NULL, OPT_AMPLITUDE },
	{ "offset", required_argument, NULL, OPT_OFFSET },
	{ "noise", required_argument, NULL, OPT_NOISE },
	{ "deadzone", required_argument, NULL, OPT_DEADZONE },
	{ "compress", required_argument, NULL, OPT_COMPRESS },
	{ "spikes", required_argument, NULL, OPT_SPIKES },
	{ "burst-ms", required_argument, NULL, OPT_BURST },
	{ "spike-lsb", required_argument, NULL, OPT_SPIKE_LSB },
	{ "sun", required_argument, NULL, OPT_SUN },
	{ "lamp-near-pulse", required_argument, NULL, OPT_LAMP_NEAR },
	{ "high", required_argument, NULL, OPT_HIGH },
	{ "esp32", no_argument, NULL, OPT_ESP32 },
	{ "out", required_argument, NULL, OPT_OUT },
	{ "truth", required_argument, NULL, OPT_TRUTH },
	{ "raw", required_argument, NULL, OPT_RAW },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

/* The --esp32 preset: what an ESP32's ADC1 at 11 dB attenuation does to a clean signal. */
#define ESP32_NOISE 30.0
#define ESP32_DEADZONE_MV 120.0
#define ESP32_COMPRESS 0.8
#define ESP32_SPIKES 0.2

static void help(FILE *f)
{
	struct pl_sim_config d;
	pl_sim_config_default(&d);
	fprintf(f,
"usage: powerlogger simulate [options] --out TRACE [--truth TRUTH]\n"
"\n"
"Simulates an electricity meter's pulse LED, the room around it, a light sensor and an ADC,\n"
"and writes the sensor trace and the true pulses. Deterministic for a given --seed.\n"
"Light is measured in LED units: a lit LED adds 1 at the sensor.\n"
"\n"
"Output:\n"
"  --out TRACE          trace file ('-' = standard output); CSV `time_s,value` (header, time\n"
"                       with 6 decimals, ADC code) unless --raw\n"
"  --truth TRUTH        true pulses, CSV `time_s,width_ms,power_w` (leading edge, time in\n"
"                       the pulse state, load at the edge)\n"
"  --raw s16le|u16le    write raw 16-bit little-endian samples at --rate instead of CSV\n"
"                       (needs even spacing: no --jitter)\n"
"  --quiet              no summary on standard error\n"
"Sampling:\n"
"  --seed N             random seed (default %" PRIu64 ")\n"
"  --duration S         seconds of signal (default %g)\n"
"  --rate HZ            sample rate, 100..50000 Hz (default %g)\n"
"  --jitter FRAC        uneven spacing: each interval 1/rate * (1 +- FRAC), FRAC 0..0.9\n"
"                       (default %g)\n"
"Load and meter:\n"
"  --power W            constant load (default %g W)\n"
"  --load FILE          load file instead: a profile `unix_s,watts` (REFIT) or a pulse log\n"
"                       `epoch_ms` (volkszaehler); played in a loop\n"
"  --interp linear|step profile interpolation (default linear)\n"
"  --load-start S       offset into the load file, seconds of file time (default %g)\n"
"  --load-speed X       file seconds per simulated second; 60 plays an hour in a minute\n"
"                       (default %g)\n"
"  --load-pulses power|asis\n"
"                       pulse log: turn it into power and make this meter's pulses (power),\n"
"                       or use its pulse times themselves, divided by --load-speed (asis)\n"
"                       (default power)\n"
"  --load-imp N         pulse log's meter constant, imp/kWh (default: from its header\n"
"                       comment, e.g. \"2000 imp/kWh\")\n"
"  --zero-load A:B[,C:D]  no load from A to B simulated seconds (repeatable, up to %d)\n"
"  --creep-w W          load below this is no load: no pulses, anti-creep (default %g W)\n"
"  --imp-per-kwh N      meter constant, 1..1000000 imp/kWh (default %" PRIu32 ")\n"
"                       One pulse per 1/N kWh of integrated energy, random initial phase.\n"
"LED:\n"
"  --width-ms MS        pulse width, 2..200 ms (default %g); at most half the gap to the\n"
"                       next pulse\n"
"  --led lit|dark       lit during the pulse, or normally lit and dark for it (default lit)\n"
"  --anticreep          LED steadily lit during no load (from 1 s after the last pulse,\n"
"                       for no-load periods of 3 s or more; led lit only)\n"
"Room (LED units):\n"
"  --ambient X          steady room light (default %g)\n"
"  --drift X            sinusoidal drift amplitude (default %g)\n"
"  --drift-period S     drift period (default %g s)\n"
"  --steps N            lamp switched on or off N times per hour, at random (default %g)\n"
"  --step-size X        light the lamp adds (default %g)\n"
"  --flicker X          mains flicker, peak to peak (default %g)\n"
"  --flicker-hz HZ      flicker frequency, 100 or 120 for mains (default %g Hz)\n"
"Sensor:\n"
"  --sensor photodiode|ldr\n"
"                       photodiode: fast, linear; ldr: CdS photoresistor in a divider,\n"
"                       R ~ lux^-0.7, slow and slower in the dark (default photodiode)\n"
"  --tau-ms MS          photodiode time constant (default %g ms)\n"
"  --rise-ms MS         LDR time constant when light rises, 3..20 typical (default %g ms)\n"
"  --fall-ms MS         LDR time constant when light falls, 30..120 typical (default %g ms)\n"
"  --invert-adc         more light gives a lower reading (the other divider orientation)\n"
"ADC:\n"
"  --adc-bits N         resolution, 8..16 bits (default %u)\n"
"  --vref V             full-scale voltage, for --deadzone (default %g V)\n"
"  --amplitude LSB      LED swing at the ADC: photodiode, the LED's light; LDR, the settled\n"
"                       swing at the initial ambient light (default %g LSB)\n"
"  --offset LSB         added to every reading, the sensor's dark level (default %g)\n"
"  --noise LSB          Gaussian noise sigma, ESP32: about 30 (default %g)\n"
"  --deadzone MV        inputs below this read 0, ESP32: 100..150 (default %g mV, off)\n"
"  --compress KNEE      soft compression above KNEE x full scale, ESP32 at 11 dB: 0.8\n"
"                       (default %g, off)\n"
"  --spikes RATE        outliers of 1100..2000 LSB (at 12 bits), per second (default %g)\n"
"  --burst-ms MS[:MAX]  each outlier lasts MS (or a uniform MS..MAX), like a WiFi\n"
"                       transmission; 0 = one sample (default %g)\n"
"  --spike-lsb MIN:MAX  outlier size in LSB instead of 1100..2000 at 12 bits\n"
"  --sun AT:EVERY:RISE:HOLD:LEVEL:FALL\n"
"                       sunlight from AT s (again every EVERY s, 0 = once): rises over\n"
"                       RISE s to LEVEL (LED units), held HOLD s, falls with time\n"
"                       constant FALL s; strong enough, it drives the ADC into its rail\n"
"  --lamp-near-pulse P[:PRE_MS]\n"
"                       with probability P per pulse the lamp (--step-size) toggles at a\n"
"                       random time from PRE_MS (default 250) before the edge to its end\n"
"  --high W:A:B[,C:D]   constant load only: W watts instead of --power from A to B s\n"
"  --esp32              preset: --noise %g --deadzone %g --compress %g --spikes %g\n"
"                       (options given explicitly win)\n"
"  --help               this text\n"
"\n"
"Exit status: 0 success, 1 failure (I/O), 2 bad options or input.\n",
		d.seed, d.duration_s, d.rate_hz, d.jitter, d.power_w, d.load_start_s, d.load_speed,
		PL_SIM_MAX_ZERO, d.creep_w, d.imp_per_kwh, d.width_ms, d.ambient, d.drift,
		d.drift_period_s, d.steps_per_hour, d.step_size, d.flicker, d.flicker_hz, d.tau_ms,
		d.rise_ms, d.fall_ms, d.adc_bits, d.vref_v, d.amplitude, d.offset, d.noise,
		d.deadzone_mv, d.compress, d.spikes_per_s, d.burst_ms, ESP32_NOISE, ESP32_DEADZONE_MV,
		ESP32_COMPRESS, ESP32_SPIKES);
}

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reports a usage error or bad input; returns exit status 2. */
static int bad(const char *fmt, ...)
{
	va_list ap;
	fputs("powerlogger simulate: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(see powerlogger simulate --help)\n", stderr);
	return 2;
}

static int parse_double(const char *opt, const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end != '\0' || errno || !isfinite(v))
		return bad("--%s: '%s' is not a number", opt, s);
	*out = v;
	return 0;
}

static int parse_u64(const char *opt, const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	if (*s == '-' || *s == '\0')
		return bad("--%s: '%s' is not a whole number >= 0", opt, s);
	unsigned long long v = strtoull(s, &end, 0);
	if (*end != '\0' || errno)
		return bad("--%s: '%s' is not a whole number >= 0", opt, s);
	*out = v;
	return 0;
}

static int parse_u32(const char *opt, const char *s, uint32_t *out)
{
	uint64_t v = 0;
	if (parse_u64(opt, s, &v))
		return 2;
	if (v > UINT32_MAX)
		return bad("--%s: '%s' is too large", opt, s);
	*out = (uint32_t)v;
	return 0;
}

/* "A:B" or "A:B,C:D,...". */
/* Up to n numbers separated by ':'; returns how many, or -1 when s is not such a list. */
static int parse_numbers(const char *s, double *v, int n)
{
	const char *p = s;
	int k = 0;
	for (;;) {
		char *end;
		errno = 0;
		double x = strtod(p, &end);
		if (end == p || errno || !isfinite(x) || k == n)
			return -1;
		v[k++] = x;
		if (*end == '\0')
			return k;
		if (*end != ':')
			return -1;
		p = end + 1;
	}
}

/* --high W:A:B[,C:D]: a constant load's high-power periods. */
static int parse_high(const char *s, struct pl_sim_config *c)
{
	char *end;
	errno = 0;
	double w = strtod(s, &end);
	if (end == s || *end != ':' || errno || !isfinite(w))
		return bad("--high: '%s' is not WATTS:START:END[,START:END]", s);
	c->high_w = w;
	const char *p = end + 1;
	while (*p) {
		double a = strtod(p, &end);
		if (end == p || *end != ':' || errno || !isfinite(a))
			return bad("--high: '%s' is not WATTS:START:END[,START:END]", s);
		p = end + 1;
		double b = strtod(p, &end);
		if (end == p || (*end != ',' && *end != '\0') || errno || !isfinite(b))
			return bad("--high: '%s' is not WATTS:START:END[,START:END]", s);
		if (c->n_high >= PL_SIM_MAX_ZERO)
			return bad("--high: too many periods (at most %d)", PL_SIM_MAX_ZERO);
		c->high[c->n_high].start_s = a;
		c->high[c->n_high].end_s = b;
		c->n_high++;
		p = *end == ',' ? end + 1 : end;
	}
	return 0;
}

static int parse_zero(const char *s, struct pl_sim_config *c)
{
	const char *p = s;
	while (*p) {
		char *end;
		errno = 0;
		double a = strtod(p, &end);
		if (end == p || *end != ':' || errno || !isfinite(a))
			return bad("--zero-load: '%s' is not START:END in seconds", s);
		p = end + 1;
		double b = strtod(p, &end);
		if (end == p || (*end != ',' && *end != '\0') || errno || !isfinite(b))
			return bad("--zero-load: '%s' is not START:END in seconds", s);
		if (c->n_zero >= PL_SIM_MAX_ZERO)
			return bad("--zero-load: too many periods (at most 16)");
		c->zero[c->n_zero].start_s = a;
		c->zero[c->n_zero].end_s = b;
		c->n_zero++;
		p = *end == ',' ? end + 1 : end;
	}
	return 0;
}

struct outputs {
	const char *out, *truth;
	int raw; /* 0 csv, else enum pl_trace_format */
	int quiet;
	const char *load_path;
};

static int write_samples(FILE *f, const struct outputs *o, const struct pl_sample *s, size_t n)
{
	if (o->raw) {
		unsigned char buf[2 * 4096];
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			uint16_t u = (uint16_t)s[i].v; /* 0..fs, checked to fit */
			buf[k++] = (unsigned char)(u & 0xff);
			buf[k++] = (unsigned char)(u >> 8);
			if (k == sizeof(buf)) {
				if (fwrite(buf, 1, k, f) != k)
					return -1;
				k = 0;
			}
		}
		if (k && fwrite(buf, 1, k, f) != k)
			return -1;
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		char tb[32];
		pl_trace_format_time(tb, sizeof(tb), s[i].t_us);
		if (fprintf(f, "%s,%" PRId32 "\n", tb, s[i].v) < 0)
			return -1;
	}
	return 0;
}

static int write_truth(FILE *f, const struct pl_sim_pulse *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char tb[32];
		pl_trace_format_time(tb, sizeof(tb), p[i].t_us);
		if (fprintf(f, "%s,%.3f,%.1f\n", tb, p[i].width_us / 1000.0, p[i].power_w) < 0)
			return -1;
	}
	return 0;
}

/* Runs the simulation into the outputs. Returns the exit status. */
static int run(const struct pl_sim_config *cfg, const struct outputs *o)
{
	char err[256];
	struct pl_sim *sim;
	int status = 1;
	FILE *fo = NULL, *ft = NULL;
	int rc = pl_sim_new(&sim, cfg, err, sizeof(err));
	if (rc == -PL_EINVAL)
		return bad("%s", err);
	if (rc) {
		fprintf(stderr, "powerlogger simulate: %s\n", err);
		return 1;
	}
	if (strcmp(o->out, "-") == 0) {
		fo = stdout;
	} else if (!(fo = fopen(o->out, o->raw ? "wb" : "w"))) {
		fprintf(stderr, "powerlogger simulate: %s: %s\n", o->out, strerror(errno));
		goto err_free_sim;
	}
	if (o->truth) {
		if (strcmp(o->truth, "-") == 0) {
			ft = stdout;
		} else if (!(ft = fopen(o->truth, "w"))) {
			fprintf(stderr, "powerlogger simulate: %s: %s\n", o->truth, strerror(errno));
			goto err_close_out;
		}
		if (fputs("time_s,width_ms,power_w\n", ft) < 0)
			goto err_write_truth;
	}
	if (!o->raw && fputs("time_s,value\n", fo) < 0)
		goto err_write_out;

	static struct pl_sample buf[4096];
	struct pl_sim_pulse tp[256];
	size_t n;
	while ((n = pl_sim_read(sim, buf, sizeof(buf) / sizeof(buf[0]))) > 0) {
		if (write_samples(fo, o, buf, n))
			goto err_write_out;
		size_t m;
		while ((m = pl_sim_truth(sim, tp, sizeof(tp) / sizeof(tp[0]))) > 0)
			if (ft && write_truth(ft, tp, m))
				goto err_write_truth;
	}
	size_t m;
	while ((m = pl_sim_truth(sim, tp, sizeof(tp) / sizeof(tp[0]))) > 0)
		if (ft && write_truth(ft, tp, m))
			goto err_write_truth;
	if (fflush(fo) || ferror(fo))
		goto err_write_out;
	if (ft && (fflush(ft) || ferror(ft)))
		goto err_write_truth;

	if (!o->quiet) {
		struct pl_sim_stats st;
		pl_sim_stats(sim, &st);
		double dur = cfg->duration_s;
		fprintf(stderr,
			"simulate: %" PRIu64 " pulses in %.3f s (%.4f Wh at %" PRIu32
			" imp/kWh, expect %.1f), %" PRIu64 " samples at %g Hz%s\n",
			st.pulses, dur, st.energy_wh, st.pulse_imp_per_kwh,
			st.energy_wh * st.pulse_imp_per_kwh / 1000.0, st.samples, cfg->rate_hz,
			cfg->jitter > 0 ? " (uneven)" : "");
		fprintf(stderr,
			"simulate: load %.1f..%.1f W (mean %.1f W)%s%s, no load %.1f s; values "
			"%" PRId32 "..%" PRId32 " of %" PRId32 "; %" PRIu64 " spikes, %" PRIu64
			" lamp switchings\n",
			st.load_min_w, st.load_max_w, st.energy_wh * 3600.0 / dur,
			o->load_path ? " from " : "", o->load_path ? o->load_path : "", st.no_load_s,
			st.v_min, st.v_max, pl_sim_full_scale(sim), st.spikes, st.lamp_steps);
		if (o->raw)
			fprintf(stderr, "simulate: raw %s at %g Hz\n",
				o->raw == PL_TRACE_S16LE ? "s16le" : "u16le", cfg->rate_hz);
	}
	status = 0;
	goto out;

err_write_truth:
	fprintf(stderr, "powerlogger simulate: %s: write failed: %s\n", o->truth,
		strerror(errno));
	goto out;
err_write_out:
	fprintf(stderr, "powerlogger simulate: %s: write failed: %s\n", o->out, strerror(errno));
out:
	if (ft && ft != stdout && fclose(ft) && status == 0) {
		fprintf(stderr, "powerlogger simulate: %s: %s\n", o->truth, strerror(errno));
		status = 1;
	}
err_close_out:
	if (fo != stdout && fclose(fo) && status == 0) {
		fprintf(stderr, "powerlogger simulate: %s: %s\n", o->out, strerror(errno));
		status = 1;
	}
err_free_sim:
	pl_sim_free(sim);
	return status;
}

/* What the options ask for. */
struct sim_options {
	struct pl_sim_config cfg;
	struct outputs o;
	int have_power;
	/* Explicit options override the --esp32 preset, wherever it appears. */
	int set_noise, set_dz, set_comp, set_spikes, esp32;
};

/* One option (getopt_long's c; name is its long name). Returns 0, 2 on a usage error, or -1
 * when it printed the help. */
/* The options that take a word: 0, or what bad() returns. */
static int set_interp(struct pl_sim_config *cfg, const char *arg)
{
	if (strcmp(arg, "linear") == 0)
		cfg->interp = PL_SIM_LINEAR;
	else if (strcmp(arg, "step") == 0)
		cfg->interp = PL_SIM_STEP;
	else
		return bad("--interp: '%s' is not linear or step", arg);
	return 0;
}

static int set_load_pulses(struct pl_sim_config *cfg, const char *arg)
{
	if (strcmp(arg, "power") == 0)
		cfg->pulse_mode = PL_SIM_PULSES_POWER;
	else if (strcmp(arg, "asis") == 0 || strcmp(arg, "as-is") == 0)
		cfg->pulse_mode = PL_SIM_PULSES_ASIS;
	else
		return bad("--load-pulses: '%s' is not power or asis", arg);
	return 0;
}

static int set_led(struct pl_sim_config *cfg, const char *arg)
{
	if (strcmp(arg, "lit") == 0)
		cfg->led_dark = 0;
	else if (strcmp(arg, "dark") == 0)
		cfg->led_dark = 1;
	else
		return bad("--led: '%s' is not lit or dark", arg);
	return 0;
}

static int set_sensor(struct pl_sim_config *cfg, const char *arg)
{
	if (strcmp(arg, "photodiode") == 0 || strcmp(arg, "pd") == 0)
		cfg->sensor = PL_SIM_PHOTODIODE;
	else if (strcmp(arg, "ldr") == 0)
		cfg->sensor = PL_SIM_LDR;
	else
		return bad("--sensor: '%s' is not photodiode or ldr", arg);
	return 0;
}

static int set_raw(struct outputs *o, const char *arg)
{
	enum pl_trace_format fmt;

	if (pl_trace_format_parse(arg, &fmt) || fmt == PL_TRACE_CSV)
		return bad("--raw: '%s' is not s16le or u16le", arg);
	o->raw = (int)fmt;
	return 0;
}

/* --bits: a whole number, more than 64 taken as 64. */
static int set_bits(struct pl_sim_config *cfg, const char *name, const char *arg)
{
	uint32_t b = 0;
	int rc = parse_u32(name, arg, &b);

	cfg->adc_bits = b > 64 ? 64 : (unsigned)b;
	return rc;
}

static int take_option(int c, const char *name, struct sim_options *so, char **argv)
{
	struct pl_sim_config *cfg = &so->cfg;
	struct outputs *o = &so->o;
	int rc = 0;

	switch (c) {
	case OPT_SEED: rc = parse_u64(name, optarg, &cfg->seed); break;
	case OPT_DURATION: rc = parse_double(name, optarg, &cfg->duration_s); break;
	case OPT_RATE: rc = parse_double(name, optarg, &cfg->rate_hz); break;
	case OPT_JITTER: rc = parse_double(name, optarg, &cfg->jitter); break;
	case OPT_POWER:
		rc = parse_double(name, optarg, &cfg->power_w);
		so->have_power = 1;
		break;
	case OPT_LOAD: o->load_path = optarg; break;
	case OPT_INTERP: rc = set_interp(cfg, optarg); break;
	case OPT_LOAD_START: rc = parse_double(name, optarg, &cfg->load_start_s); break;
	case OPT_LOAD_SPEED: rc = parse_double(name, optarg, &cfg->load_speed); break;
	case OPT_LOAD_IMP: rc = parse_u32(name, optarg, &cfg->load_imp_per_kwh); break;
	case OPT_LOAD_PULSES: rc = set_load_pulses(cfg, optarg); break;
	case OPT_ZERO: rc = parse_zero(optarg, cfg); break;
	case OPT_CREEP_W: rc = parse_double(name, optarg, &cfg->creep_w); break;
	case OPT_IMP: rc = parse_u32(name, optarg, &cfg->imp_per_kwh); break;
	case OPT_WIDTH: rc = parse_double(name, optarg, &cfg->width_ms); break;
	case OPT_LED: rc = set_led(cfg, optarg); break;
	case OPT_ANTICREEP: cfg->anticreep = 1; break;
	case OPT_AMBIENT: rc = parse_double(name, optarg, &cfg->ambient); break;
	case OPT_DRIFT: rc = parse_double(name, optarg, &cfg->drift); break;
	case OPT_DRIFT_PERIOD: rc = parse_double(name, optarg, &cfg->drift_period_s); break;
	case OPT_STEPS: rc = parse_double(name, optarg, &cfg->steps_per_hour); break;
	case OPT_STEP_SIZE: rc = parse_double(name, optarg, &cfg->step_size); break;
	case OPT_FLICKER: rc = parse_double(name, optarg, &cfg->flicker); break;
	case OPT_FLICKER_HZ: rc = parse_double(name, optarg, &cfg->flicker_hz); break;
	case OPT_SENSOR: rc = set_sensor(cfg, optarg); break;
	case OPT_TAU: rc = parse_double(name, optarg, &cfg->tau_ms); break;
	case OPT_RISE: rc = parse_double(name, optarg, &cfg->rise_ms); break;
	case OPT_FALL: rc = parse_double(name, optarg, &cfg->fall_ms); break;
	case OPT_INVERT: cfg->invert = 1; break;
	case OPT_BITS: rc = set_bits(cfg, name, optarg); break;
	case OPT_VREF: rc = parse_double(name, optarg, &cfg->vref_v); break;
	case OPT_AMPLITUDE: rc = parse_double(name, optarg, &cfg->amplitude); break;
	case OPT_OFFSET: rc = parse_double(name, optarg, &cfg->offset); break;
	case OPT_NOISE:
		rc = parse_double(name, optarg, &cfg->noise);
		so->set_noise = 1;
		break;
	case OPT_DEADZONE:
		rc = parse_double(name, optarg, &cfg->deadzone_mv);
		so->set_dz = 1;
		break;
	case OPT_COMPRESS:
		rc = parse_double(name, optarg, &cfg->compress);
		so->set_comp = 1;
		break;
	case OPT_SPIKES:
		rc = parse_double(name, optarg, &cfg->spikes_per_s);
		so->set_spikes = 1;
		break;
	case OPT_BURST: {
		double v[2];
		int k = parse_numbers(optarg, v, 2);
		if (k < 1)
			return bad("--burst-ms: '%s' is not MS or MIN:MAX", optarg);
		cfg->burst_ms = v[0];
		cfg->burst_max_ms = k == 2 ? v[1] : 0;
		break;
	}
	case OPT_SPIKE_LSB: {
		double v[2];
		if (parse_numbers(optarg, v, 2) != 2)
			return bad("--spike-lsb: '%s' is not MIN:MAX in LSB", optarg);
		cfg->spike_min_lsb = v[0];
		cfg->spike_max_lsb = v[1];
		break;
	}
	case OPT_SUN: {
		double v[6];
		if (parse_numbers(optarg, v, 6) != 6)
			return bad("--sun: '%s' is not AT:EVERY:RISE:HOLD:LEVEL:FALL", optarg);
		cfg->sun_at_s = v[0];
		cfg->sun_every_s = v[1];
		cfg->sun_rise_s = v[2];
		cfg->sun_s = v[3];
		cfg->sun_level = v[4];
		cfg->sun_fall_s = v[5];
		break;
	}
	case OPT_LAMP_NEAR: {
		double v[2];
		int k = parse_numbers(optarg, v, 2);
		if (k < 1)
			return bad("--lamp-near-pulse: '%s' is not P or P:PRE_MS", optarg);
		cfg->lamp_near_pulse = v[0];
		cfg->lamp_pre_ms = k == 2 ? v[1] : 250;
		break;
	}
	case OPT_HIGH: rc = parse_high(optarg, cfg); break;
	case OPT_ESP32: so->esp32 = 1; break;
	case OPT_OUT: o->out = optarg; break;
	case OPT_TRUTH: o->truth = optarg; break;
	case OPT_RAW: rc = set_raw(o, optarg); break;
	case OPT_QUIET: o->quiet = 1; break;
	case 'h':
	case OPT_HELP:
		help(stdout);
		return -1;
	case ':':
		return bad("option '%s' needs a value", argv[optind - 1]);
	default:
		return bad("unknown option '%s'", argv[optind - 1]);
	}
	return rc ? 2 : 0;
}

int pl_cmd_simulate(int argc, char **argv)
{
	struct sim_options so = { 0 };
	struct pl_sim_config cfg;
	struct outputs o;
	pl_sim_config_default(&so.cfg);

	optind = 0; /* full re-initialisation: the dispatcher may have used getopt */
	opterr = 0;
	for (;;) {
		int li = -1, rc;
		int c = getopt_long(argc, argv, ":h", long_opts, &li);
		if (c == -1)
			break;
		rc = take_option(c, li >= 0 ? long_opts[li].name : "", &so, argv);
		if (rc)
			return rc < 0 ? 0 : rc;
	}
	cfg = so.cfg;
	o = so.o;
	if (optind < argc)
		return bad("unexpected argument '%s'", argv[optind]);
	if (!o.out)
		return bad("--out TRACE is required");
	if (o.truth && strcmp(o.out, "-") == 0 && strcmp(o.truth, "-") == 0)
		return bad("--out and --truth cannot both be standard output");
	if (o.load_path && so.have_power)
		return bad("give either --power or --load, not both");
	if (so.esp32) {
		if (!so.set_noise)
			cfg.noise = ESP32_NOISE;
		if (!so.set_dz)
			cfg.deadzone_mv = ESP32_DEADZONE_MV;
		if (!so.set_comp)
			cfg.compress = ESP32_COMPRESS;
		if (!so.set_spikes)
			cfg.spikes_per_s = ESP32_SPIKES;
	}
	if (o.raw) {
		if (cfg.jitter > 0)
			return bad("--raw needs evenly spaced samples: drop --jitter");
		if (cfg.rate_hz != floor(cfg.rate_hz))
			return bad("--raw needs a whole-number --rate");
		if (o.raw == PL_TRACE_S16LE && cfg.adc_bits > 15)
			return bad("--raw s16le holds at most 15-bit codes: use u16le");
	}

	struct pl_sim_load load;
	int have_load = 0;
	if (o.load_path) {
		char err[256];
		int lrc = pl_sim_load_read(o.load_path, &load, err, sizeof(err));
		if (lrc == -PL_EIO || lrc == -PL_ENOMEM) {
			fprintf(stderr, "powerlogger simulate: %s\n", err);
			return lrc == -PL_EIO ? 2 : 1;
		}
		if (lrc)
			return bad("--load: %s", err);
		cfg.load = &load;
		have_load = 1;
	}
	int status = run(&cfg, &o);
	if (have_load)
		pl_sim_load_free(&load);
	return status;
}
