/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: builds an interval record (or a pulse), a device name, a measurement and
 * a precision from the bytes, encodes them, and checks that a name the documented rules accept
 * is encoded and parses back byte for byte (and that one they refuse is refused: control
 * characters, bytes that are not UTF-8, a backslash before '\', ',', '=', ' ', '"' or at the
 * end), both as InfluxDB 1.x reads it (pl_lp_parse) and as 3.x does (influx3_series), every
 * field value exactly (through pl_lp_parse_fixed), and the timestamp. Also checks that
 * InfluxDB's batch splitter would end the line exactly at its '\n'. abort() on any mismatch.
 *
 * Input: byte 0 options (bits 0-1 precision, bit 2 custom measurement, bit 3 pulse line),
 * then little-endian integers, then "device\0measurement".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "powerlogger/lineproto.h"
#include "../testutil.h"

struct reader {
	const uint8_t *p;
	size_t n, at;
};

static uint64_t take(struct reader *r, size_t bytes)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < bytes; i++) {
		uint8_t b = r->at < r->n ? r->p[r->at] : 0;

		r->at++;
		v |= (uint64_t)b << (8 * i);
	}
	return v;
}

static void fail(const char *what, const char *line)
{
	fprintf(stderr, "fuzz_lp_encode: %s\nline: %s\n", what, line != NULL ? line : "(none)");
	abort();
}




static const struct pl_lp_field *field(const struct pl_lp_line *l, size_t i, const char *key,
				       enum pl_lp_ftype type, const char *line)
{
	if (i >= l->nfields || strcmp(l->field[i].key, key) != 0 || l->field[i].type != type)
		fail(key, line);
	return &l->field[i];
}

static void expect_fixed(const struct pl_lp_line *l, size_t i, const char *key,
			 unsigned decimals, int64_t want, const char *line)
{
	int64_t v;

	if (pl_lp_parse_fixed(field(l, i, key, PL_LP_FLOAT, line)->text, decimals, &v) != 0 ||
	    v != want)
		fail(key, line);
}

static void expect_int(const struct pl_lp_line *l, size_t i, const char *key, int64_t want,
		       const char *line)
{
	if (field(l, i, key, PL_LP_INT, line)->i != want)
		fail(key, line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reader rd = { data, size, 0 };
	uint8_t opt = (uint8_t)take(&rd, 1);
	int prec = opt & 3, custom = (opt & 4) != 0, pulse_line = (opt & 8) != 0;
	struct pl_interval_record r;
	struct pl_pulse p = { 0 };
	int64_t power_mw, ts = 0;
	size_t rest, cap, len = 0, dlen;
	char *names, *dev, *meas, *want_dev, *want_meas, *buf, *scratch, *joined;
	const char *m;
	struct pl_lp_line l;
	int err, ok_names, ok_ts;

	r.start_us = (int64_t)take(&rd, 8);
	r.length_s = (uint32_t)take(&rd, 4);
	r.pulses = (uint32_t)take(&rd, 4);
	r.rejected = (uint32_t)take(&rd, 4);
	r.flags = (uint32_t)take(&rd, 4);
	r.energy_uwh = (int64_t)take(&rd, 8);
	r.avg_mw = (int64_t)take(&rd, 8);
	r.peak_mw = (int64_t)take(&rd, 8);
	r.register_uwh = (int64_t)take(&rd, 8);
	power_mw = (int64_t)take(&rd, 8);
	p.t_us = r.start_us;
	p.width_us = r.pulses;
	p.flags = (uint8_t)(r.flags & PL_PULSE_REJECTED);

	/* "device\0measurement" from the rest; everything after a second NUL is ignored */
	rest = rd.at < size ? size - rd.at : 0;
	names = calloc(rest + 2, 1);
	if (names == NULL)
		abort();
	if (rest > 0)
		memcpy(names, data + rd.at, rest);
	dev = names;
	dlen = strlen(dev);
	meas = dlen < rest ? names + dlen + 1 : names + rest + 1;
	m = custom ? meas : NULL;

	want_dev = malloc(2 * rest + 64);
	want_meas = malloc(2 * rest + 64);
	joined = malloc(rest + 64);
	cap = 4 * rest + 512;
	buf = malloc(cap);
	scratch = malloc(cap);
	if (want_dev == NULL || want_meas == NULL || joined == NULL || buf == NULL ||
	    scratch == NULL)
		abort();

	expected_name(dev, want_dev);
	expected_name(m != NULL ? m : PL_LP_MEASUREMENT, want_meas);
	ok_names = want_dev[0] != '\0' && want_meas[0] != '\0' && (m == NULL || m[0] != '#');
	ok_ts = want_timestamp(pulse_line ? p.t_us : r.start_us, prec, &ts);

	if (pulse_line)
		err = pl_lp_pulse(buf, cap, &len, m, dev, &p, power_mw, (enum pl_precision)prec);
	else
		err = pl_lp_interval(buf, cap, &len, m, dev, &r, (enum pl_precision)prec);

	if (!ok_names) {
		if (err != -PL_EINVAL)
			fail("an empty name was not refused", err == 0 ? buf : NULL);
		goto out;
	}
	/* a name near InfluxDB's 65535-byte series key limit may be refused too */
	if (err == -PL_EINVAL && 2 * rest + 64 > 65000)
		goto out;
	if (!ok_ts) {
		if (err != -PL_ERANGE)
			fail("an out-of-range time was not refused", err == 0 ? buf : NULL);
		goto out;
	}
	if (err != 0 || len == 0 || len >= cap || buf[len] != '\0' || strlen(buf) != len)
		fail("encoding failed", NULL);
	if (buf[len - 1] != '\n' || memchr(buf, '\n', len - 1) != NULL)
		fail("not exactly one line", buf);
	{
		/* the line followed by a copy of itself: the splitter must stop at the first '\n' */
		char *two = malloc(2 * len);

		if (two == NULL)
			abort();
		memcpy(two, buf, len);
		memcpy(two + len, buf, len);
		if (influx_line_end(two, 2 * len) != len - 1)
			fail("InfluxDB's splitter would run past the line", buf);
		free(two);
	}

	err = pl_lp_parse(buf, len - 1, scratch, len, &l);
	if (err != 0)
		fail("the line does not parse", buf);
	if (pulse_line) {
		snprintf(joined, rest + 64, "%s", m != NULL ? m : "energy_meter");
		strcat(joined, "_pulse");
		expected_name(joined, want_meas);
	}
	if (strcmp(l.measurement, want_meas) != 0)
		fail("measurement differs", buf);
	{
		/* and InfluxDB 3.x reads the same names */
		char *m3 = malloc(len + 1), *k3 = malloc(len + 1), *v3 = malloc(len + 1);

		if (m3 == NULL || k3 == NULL || v3 == NULL)
			abort();
		if (influx3_series(buf, len - 1, m3, k3, v3, len + 1) != 0 ||
		    strcmp(m3, want_meas) != 0 || strcmp(k3, "device") != 0 ||
		    strcmp(v3, want_dev) != 0)
			fail("InfluxDB 3.x would read other names", buf);
		free(m3);
		free(k3);
		free(v3);
	}
	if (l.ntags != 1 || strcmp(l.tag_key[0], "device") != 0 ||
	    strcmp(l.tag_val[0], want_dev) != 0)
		fail("device differs", buf);
	if (!l.has_time || l.time != ts)
		fail("timestamp differs", buf);
	if (pulse_line) {
		if (l.nfields != 3)
			fail("field count", buf);
		expect_fixed(&l, 0, "power_w", 3, power_mw, buf);
		expect_fixed(&l, 1, "width_ms", 3, p.width_us, buf);
		if (field(&l, 2, "rejected", PL_LP_BOOL, buf)->i != (p.flags & PL_PULSE_REJECTED))
			fail("rejected", buf);
	} else {
		if (l.nfields != 8)
			fail("field count", buf);
		expect_fixed(&l, 0, "value", 0, r.pulses, buf);
		expect_fixed(&l, 1, "energy_wh", 6, r.energy_uwh, buf);
		expect_fixed(&l, 2, "power_w", 3, r.avg_mw, buf);
		expect_fixed(&l, 3, "peak_w", 3, r.peak_mw, buf);
		expect_fixed(&l, 4, "register_wh", 6, r.register_uwh, buf);
		expect_int(&l, 5, "rejected", r.rejected, buf);
		expect_int(&l, 6, "flags", r.flags, buf);
		expect_int(&l, 7, "interval_s", r.length_s, buf);
	}

	/* one byte less than needed: refused, nothing written */
	{
		size_t len2 = 0;

		memset(buf, 'X', len + 1);
		if (pulse_line)
			err = pl_lp_pulse(buf, len, &len2, m, dev, &p, power_mw,
					  (enum pl_precision)prec);
		else
			err = pl_lp_interval(buf, len, &len2, m, dev, &r, (enum pl_precision)prec);
		if (err != -PL_ENOSPC || len2 != 0)
			fail("a short buffer was not refused", NULL);
		for (size_t i = 0; i < len + 1; i++) {
			if (buf[i] != 'X')
				fail("a refused line wrote into the buffer", NULL);
		}
	}
out:
	free(scratch);
	free(buf);
	free(joined);
	free(want_meas);
	free(want_dev);
	free(names);
	return 0;
}
