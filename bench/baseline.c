/* SPDX-License-Identifier: MIT */
/*
 * The original Arduino sketch's method, over a recorded trace: the baseline the detector is
 * measured against.
 *
 *   baseline [--cutoff N | --truth TRUTH [--calib-s S]] [--polarity up|down] [--poll-ms MS]
 *            [--raw s16le|u16le --rate HZ] TRACE
 *
 * Every poll period (10 ms) it takes the trace's sample nearest the tick and compares it with
 * a fixed cutoff; a pulse is counted at each change from not lit to lit ("lit" is above the
 * cutoff, or below it with --polarity down; the sketch itself knew only "above"). The cutoff
 * is given (--cutoff), or set as its user would have set it once at installation: half way
 * between the idle level (the median of the first S seconds, default 60) and the pulse level
 * (idle plus the true pulses' typical swing in that time, see bench/scenarios.h; the true
 * pulses come from the simulator's truth file, with times from the trace's start).
 *
 * Prints `time_s` of each counted pulse (the polled sample's time) and a summary on standard
 * error. Exit status: 0, 1 on a read error, 2 on bad usage or input.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "powerlogger/common.h"
#include "scenarios.h"
#include "sources/trace.h"

struct tpulse {
	int64_t t_us, w_us;
};

static void usage(FILE *f)
{
	fputs("usage: baseline [--cutoff N | --truth TRUTH [--calib-s S]] [--polarity up|down]\n"
	      "                [--poll-ms MS] [--raw s16le|u16le --rate HZ] TRACE\n"
	      "The original sketch's method: poll every 10 ms, fixed cutoff, count rising\n"
	      "crossings. Prints time_s of each pulse.\n"
	      "  --cutoff N       the fixed cutoff (ADC units)\n"
	      "  --truth TRUTH    set the cutoff from the first --calib-s seconds (default 60):\n"
	      "                   half way between the median level and that plus the true\n"
	      "                   pulses' typical swing\n"
	      "  --polarity down  lit reads below the cutoff (default up: above)\n"
	      "  --poll-ms MS     poll period (default 10)\n"
	      "  --raw FMT --rate HZ  raw 16-bit input instead of CSV time_s,value\n",
	      f);
}

/* Reads a truth file (`time_s,width_ms,...`). Returns the count, or -1 (message printed). */
static long read_truth(const char *path, struct tpulse **out)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "baseline: %s: %s\n", path, strerror(errno));
		return -1;
	}
	char line[512];
	size_t n = 0, cap = 0;
	struct tpulse *p = NULL;
	long lineno = 0;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (line[0] == '#' || line[0] == '\n' || (line[0] >= 'a' && line[0] <= 'z'))
			continue;
		char *end;
		double t = strtod(line, &end);
		double w = 0;
		if (end == line || (*end != ',' && *end != '\n' && *end != '\0')) {
			fprintf(stderr, "baseline: %s:%ld: bad line\n", path, lineno);
			free(p);
			fclose(f);
			return -1;
		}
		if (*end == ',')
			w = strtod(end + 1, NULL);
		if (n == cap) {
			cap = cap ? 2 * cap : 256;
			struct tpulse *np = realloc(p, cap * sizeof(*np));
			if (!np) {
				fputs("baseline: out of memory\n", stderr);
				free(p);
				fclose(f);
				return -1;
			}
			p = np;
		}
		p[n].t_us = llround(t * 1e6);
		p[n].w_us = llround(w * 1e3);
		n++;
	}
	fclose(f);
	*out = p;
	return (long)n;
}

static int open_trace(struct pl_trace **t, const char *path, const struct pl_trace_config *tc)
{
	char err[512];
	int rc = pl_trace_open(t, path, tc, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "baseline: %s\n", err);
		return rc == -PL_EIO ? 1 : 2;
	}
	return 0;
}

/* The cutoff from the first calib_s seconds of the trace and the true pulses in them. */
static int calibrate(const char *path, const struct pl_trace_config *tc, const char *truth,
		     double calib_s, int down, int32_t *idle, int32_t *pulse, int32_t *cutoff)
{
	struct tpulse *tp = NULL;
	long nt = read_truth(truth, &tp);
	if (nt < 0)
		return 2;
	struct pl_trace *t;
	int rc = open_trace(&t, path, tc);
	if (rc) {
		free(tp);
		return rc;
	}
	struct bl_calib cal;
	if (bl_calib_init(&cal, down)) {
		fputs("baseline: out of memory\n", stderr);
		free(tp);
		pl_trace_free(t);
		return 1;
	}
	static struct pl_sample buf[4096];
	size_t n;
	int64_t t0 = INT64_MIN, end = 0;
	int done = 0;
	while (!done && (rc = pl_trace_read(t, buf, 4096, &n)) == 0 && n > 0) {
		for (size_t i = 0; i < n; i++) {
			if (t0 == INT64_MIN) {
				/* The truth's times are from the trace's start. */
				t0 = buf[i].t_us;
				end = t0 + (int64_t)(calib_s * 1e6);
				for (long k = 0; k < nt; k++)
					if (tp[k].t_us + t0 < end &&
					    bl_calib_pulse(&cal, tp[k].t_us + t0, tp[k].w_us)) {
						rc = -PL_ENOMEM;
						done = 1;
						break;
					}
			}
			if (done || buf[i].t_us >= end) {
				done = 1;
				break;
			}
			if (bl_calib_sample(&cal, buf[i])) {
				rc = -PL_ENOMEM;
				done = 1;
				break;
			}
		}
	}
	if (rc == -PL_ENOMEM) {
		fputs("baseline: out of memory\n", stderr);
		rc = 1;
	} else if (rc) {
		fprintf(stderr, "baseline: %s\n", pl_trace_error(t));
		rc = rc == -PL_EIO ? 1 : 2;
	} else if ((rc = bl_calib_cutoff(&cal, idle, pulse, cutoff)) == -2) {
		fputs("baseline: out of memory\n", stderr);
		rc = 1;
	} else if (rc) {
		fprintf(stderr, "baseline: no complete true pulse in the first %g s: give --cutoff\n",
			calib_s);
		rc = 2;
	}
	free(tp);
	bl_calib_free(&cal);
	pl_trace_free(t);
	return rc;
}

int main(int argc, char **argv)
{
	const char *truth = NULL, *path = NULL;
	double calib_s = 60, poll_ms = 10;
	int down = 0, have_cutoff = 0;
	long cutoff_arg = 0;
	struct pl_trace_config tc = { .format = PL_TRACE_CSV, .rate_hz = 0 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end = NULL;
		int ok = 1;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (a[0] != '-' || a[1] == '\0') {
			if (path)
				goto bad;
			path = a;
			continue;
		}
		if (!v)
			goto bad;
		if (strcmp(a, "--cutoff") == 0) {
			cutoff_arg = strtol(v, &end, 10);
			ok = *end == '\0' && end != v && labs(cutoff_arg) < 1000000;
			have_cutoff = 1;
		} else if (strcmp(a, "--truth") == 0) {
			truth = v;
		} else if (strcmp(a, "--calib-s") == 0) {
			calib_s = strtod(v, &end);
			ok = *end == '\0' && calib_s > 0;
		} else if (strcmp(a, "--poll-ms") == 0) {
			poll_ms = strtod(v, &end);
			ok = *end == '\0' && poll_ms >= 0.001 && poll_ms <= 10000;
		} else if (strcmp(a, "--polarity") == 0) {
			ok = strcmp(v, "up") == 0 || strcmp(v, "down") == 0;
			down = strcmp(v, "down") == 0;
		} else if (strcmp(a, "--raw") == 0) {
			ok = pl_trace_format_parse(v, &tc.format) == 0 && tc.format != PL_TRACE_CSV;
		} else if (strcmp(a, "--rate") == 0) {
			unsigned long r = strtoul(v, &end, 10);
			ok = *end == '\0' && r >= 1 && r <= PL_TRACE_MAX_RATE;
			tc.rate_hz = ok ? (uint32_t)r : 0;
		} else {
			ok = 0;
		}
		if (!ok)
			goto bad;
		i++;
	}
	if (!path || have_cutoff == (truth != NULL))
		goto bad;
	if (truth && strcmp(path, "-") == 0) {
		fputs("baseline: --truth needs a file (the trace is read twice)\n", stderr);
		return 2;
	}

	int32_t idle = 0, pulse = 0, cutoff = (int32_t)cutoff_arg;
	if (truth) {
		int rc = calibrate(path, &tc, truth, calib_s, down, &idle, &pulse, &cutoff);
		if (rc)
			return rc;
	}
	struct pl_trace *t;
	int rc = open_trace(&t, path, &tc);
	if (rc)
		return rc;
	struct bl_state bl;
	bl_init(&bl, cutoff, down, llround(poll_ms * 1000.0));
	static struct pl_sample buf[4096];
	size_t n;
	printf("time_s\n");
	while ((rc = pl_trace_read(t, buf, 4096, &n)) == 0 && n > 0) {
		for (size_t i = 0; i < n; i++) {
			int64_t out[64];
			size_t k = bl_feed(&bl, buf[i], out, 64);
			for (size_t q = 0; q < k; q++) {
				char tb[32];
				pl_trace_format_time(tb, sizeof(tb), out[q]);
				printf("%s\n", tb);
			}
		}
	}
	if (rc) {
		fprintf(stderr, "baseline: %s\n", pl_trace_error(t));
		pl_trace_free(t);
		return rc == -PL_EIO ? 1 : 2;
	}
	fprintf(stderr, "baseline: %" PRIu64 " pulses, %" PRIu64 " polls every %g ms, cutoff %"
		PRId32 " (%s)", bl.pulses, bl.polls, poll_ms, cutoff,
		down ? "lit below" : "lit above");
	if (truth)
		fprintf(stderr, ", from idle %" PRId32 " and pulse %" PRId32 " in the first %g s",
			idle, pulse, calib_s);
	fputc('\n', stderr);
	pl_trace_free(t);
	return fflush(stdout) ? 1 : 0;

bad:
	usage(stderr);
	return 2;
}
