/* SPDX-License-Identifier: MIT */
/*
 * InfluxDB line protocol: records in, text out (and a small strict parser, for tests, fuzzing
 * and for telling which line of a batch a server rejected).
 *
 * Escaping follows the protocol (see docs/line-protocol.md): the measurement escapes ',' and
 * ' '; tag keys, tag values and field keys escape ',', '=' and ' '; string field values escape
 * '"' and '\'. Nothing else is changed, so that every element reads back from InfluxDB exactly
 * as given. What no line can carry so that every InfluxDB (1.x, 2.x and 3.x) reads it back the
 * same is refused (-PL_EINVAL), never altered: an empty measurement, key or tag value; a
 * measurement starting with '#' (a comment line); control characters (bytes below 0x20 and
 * 0x7f: newline, tab, ...); bytes that are not UTF-8; and in a measurement, key or tag value a
 * backslash before '\', ',', '=', ' ', '"' or at the end (1.x keeps "\\" as two backslashes,
 * 3.x reads it as one, so no encoding of such a backslash is stored alike).
 * pl_lp_name_problem() tells which rule a name breaks, for configuration checks. Lines end
 * with '\n'.
 *
 * The schema (compatible with the original sketch's measurement):
 *   energy_meter_reading,device=<name> value=<pulses>,energy_wh=..,power_w=..,peak_w=..,
 *     register_wh=..,rejected=<n>i,flags=<n>i,interval_s=<n>i <start>
 * `value` stays a float field (no "i"), as the original wrote it, so that existing databases
 * keep one field type. Decimal numbers are printed from integer micro/milli units exactly:
 * energy_wh and register_wh from uWh (up to 6 decimals), power_w and peak_w from mW (up to 3).
 *
 * Writes into caller-owned buffers; never allocates. Thread-safe (no state). ISR-safe.
 */
#ifndef POWERLOGGER_LINEPROTO_H
#define POWERLOGGER_LINEPROTO_H

#include "powerlogger/common.h"
#include "powerlogger/meter.h"

#ifdef __cplusplus
extern "C" {
#endif

enum pl_precision { PL_PREC_NS = 0, PL_PREC_US, PL_PREC_MS, PL_PREC_S };

/* Name of a precision as the InfluxDB 1.x and 2.x write endpoints want it in their query
 * strings; NULL for a value outside enum pl_precision. */
const char *pl_precision_v1(enum pl_precision p); /* "n", "u", "ms", "s" */
const char *pl_precision_v2(enum pl_precision p); /* "ns", "us", "ms", "s" */

/*
 * Converts a time in microseconds to a line-protocol timestamp in the given precision: ns
 * multiplies, ms and s divide rounding towards minus infinity (so a negative time lands on the
 * start of its millisecond or second). Returns 0, -PL_EINVAL for a bad precision, or
 * -PL_ERANGE when the time lies outside what InfluxDB stores (int64 nanoseconds less the two
 * lowest values and the highest: about the years 1677 to 2262), which it would reject forever.
 */
int pl_lp_timestamp(int64_t t_us, enum pl_precision prec, int64_t *ts);

#define PL_LP_MEASUREMENT "energy_meter_reading"

/* Kinds of element, for pl_lp_escape. PL_LP_KEY is a tag key or a field key. */
enum pl_lp_kind { PL_LP_MEASUREMENT_NAME, PL_LP_KEY, PL_LP_TAG_VALUE, PL_LP_STRING_FIELD };

/*
 * Checks that name can be sent as an element of the given kind (see the rules at the top).
 * Returns NULL if it can, or a phrase saying what is wrong with it ("is empty", "is not valid
 * UTF-8", ...), meant to follow the name in a message. The phrase is a static string.
 */
const char *pl_lp_name_problem(const char *name, enum pl_lp_kind kind);

/*
 * Escapes the NUL-terminated string src as an element of the given kind into dst (cap bytes,
 * NUL-terminated on success, so it needs the length + 1). A string field value is escaped
 * without its quotes. Returns the length written (without NUL); -PL_ENOSPC if it does not fit,
 * leaving dst untouched; -PL_EINVAL for NULL arguments or a name that breaks one of the rules
 * at the top (see pl_lp_name_problem()).
 */
int pl_lp_escape(char *dst, size_t cap, const char *src, enum pl_lp_kind kind);

/*
 * Appends one interval record as a line (with its '\n') to buf, which holds *len bytes of
 * cap, and NUL-terminates it (the NUL is not counted in *len, but needs room). measurement
 * NULL means PL_LP_MEASUREMENT. On success *len grows and 0 is returned. Errors leave buf and
 * *len untouched: -PL_ENOSPC; -PL_EINVAL for NULL arguments, *len > cap, a bad precision, a
 * device or measurement that breaks one of the rules at the top (see pl_lp_name_problem()),
 * or a series key longer than InfluxDB's 65535 bytes; -PL_ERANGE if the timestamp is out of range (see
 * pl_lp_timestamp). The timestamp is the interval start (r->start_us) in the given precision.
 */
int pl_lp_interval(char *buf, size_t cap, size_t *len, const char *measurement,
		   const char *device, const struct pl_interval_record *r,
		   enum pl_precision prec);

/*
 * Appends one per-pulse record: measurement "<measurement>_pulse" (default
 * "energy_meter_pulse"), tag device, fields power_w (float, from power_mw: the power from the
 * gap to the previous pulse), width_ms (float, from p->width_us), rejected (boolean, from
 * PL_PULSE_REJECTED); timestamp the pulse's leading edge. Same contract as pl_lp_interval.
 */
int pl_lp_pulse(char *buf, size_t cap, size_t *len, const char *measurement,
		const char *device, const struct pl_pulse *p, int64_t power_mw,
		enum pl_precision prec);

/* Formats v / 10^decimals (decimals 0..18) as a decimal number with trailing zeros trimmed
 * ("12.5", "-3", "0.001", "0"; never "-0") into dst, NUL-terminated. Returns the length;
 * -PL_ENOSPC (dst untouched) or -PL_EINVAL (NULL dst, decimals > 18). */
int pl_lp_fixed(char *dst, size_t cap, int64_t v, unsigned decimals);

/* A parsed line: pointers into a caller-owned scratch buffer (unescaped, NUL-terminated). */
#define PL_LP_MAX_TAGS 8
#define PL_LP_MAX_FIELDS 16
enum pl_lp_ftype { PL_LP_FLOAT, PL_LP_INT, PL_LP_UINT, PL_LP_BOOL, PL_LP_STRING };
struct pl_lp_field {
	const char *key;
	enum pl_lp_ftype type;
	const char *text;  /* the value as written (without the i/u suffix; unescaped for strings) */
	int64_t i;         /* PL_LP_INT, PL_LP_BOOL (0/1) */
	uint64_t u;        /* PL_LP_UINT */
};
struct pl_lp_line {
	const char *measurement;
	size_t ntags, nfields;
	const char *tag_key[PL_LP_MAX_TAGS], *tag_val[PL_LP_MAX_TAGS];
	struct pl_lp_field field[PL_LP_MAX_FIELDS];
	int has_time;
	int64_t time;
};

/*
 * Parses one line (without its '\n'; len bytes, need not be NUL-terminated) into out, using
 * scratch for the unescaped strings (len + 1 bytes always suffice). Follows InfluxDB 1.x:
 * leading spaces/tabs are skipped; any run of spaces/tabs separates the sections; a backslash
 * escapes the element's special characters and is literal otherwise; floats are decimal with
 * an optional exponent; integers end in 'i', unsigned integers in 'u' (note that InfluxDB 1.x
 * refuses 'u' unless enabled); booleans are t/T/true/True/TRUE and f/F/false/False/FALSE;
 * the timestamp is an optional int64 followed by nothing but spaces. Returns 0; -PL_EPARSE for
 * a line InfluxDB would reject (no measurement or field set, empty key or tag value, duplicate
 * tag key, bad number or boolean, integer out of range, a float that overflows to Inf, NaN,
 * unterminated string, junk after a value or the timestamp, series key over 65535 bytes), for
 * a blank or comment ('#') line, which holds no point, and for what this parser does not
 * accept although InfluxDB might (a NUL byte anywhere, a '\n' outside a string, an unescaped
 * '=' in a tag value, a field key whose backslashes InfluxDB's scanners read differently);
 * -PL_ENOSPC (more than PL_LP_MAX_TAGS tags or PL_LP_MAX_FIELDS fields, scratch too small);
 * -PL_EINVAL for NULL arguments. The timestamp's range is not checked: it depends on the
 * precision of the request.
 */
int pl_lp_parse(const char *line, size_t len, char *scratch, size_t scratch_cap,
		struct pl_lp_line *out);

/*
 * Converts decimal text ("12.5", "-3", "1e3", "0.001", "-.5e-2") to an integer scaled by
 * 10^decimals (0..18), exactly. Returns 0; -PL_EPARSE if it is not a number in the line
 * protocol's float syntax (optional '-', digits with an optional '.', optional exponent);
 * -PL_ERANGE if it does not fit in int64 or is not an exact multiple of 10^-decimals;
 * -PL_EINVAL for NULL arguments or decimals > 18.
 */
int pl_lp_parse_fixed(const char *text, unsigned decimals, int64_t *v);

#ifdef __cplusplus
}
#endif
#endif
