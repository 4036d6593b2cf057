/*
 * InfluxDB line protocol: records in, text out (and a small parser, for tests, fuzzing and
 * for telling which line of a batch a server rejected).
 *
 * Escaping follows the protocol (see docs/line-protocol.md): measurement escapes ',' and ' ';
 * tag keys, tag values and field keys escape ',', '=' and ' '; string field values escape '"'
 * and '\'. Characters the protocol cannot carry are replaced: '\n', '\r' and '\t' become the
 * two-character text "\n", "\r", "\t"; a trailing backslash in a key or tag value would escape
 * the separator after it, so it is dropped. Empty tag values are not allowed by the protocol;
 * the encoder refuses them (-PL_EINVAL). Lines end with '\n'.
 *
 * The schema (compatible with the original sketch's measurement):
 *   energy_meter_reading,device=<name> value=<pulses>,energy_wh=..,power_w=..,peak_w=..,
 *     register_wh=..,rejected=<n>i,flags=<n>i,interval_s=<n>i <start>
 * `value` stays a float field (no "i"), as the original wrote it, so that existing databases
 * keep one field type. Decimal numbers are printed from integer micro/milli units exactly.
 *
 * Writes into caller-owned buffers; never allocates. Thread-safe (no state).
 */
#ifndef POWERLOGGER_LINEPROTO_H
#define POWERLOGGER_LINEPROTO_H

#include "powerlogger/common.h"
#include "powerlogger/meter.h"

#ifdef __cplusplus
extern "C" {
#endif

enum pl_precision { PL_PREC_NS = 0, PL_PREC_US, PL_PREC_MS, PL_PREC_S };

/* Name of a precision as InfluxDB 1.x/2.x query strings want it: "ns", "u"/"us", "ms", "s". */
const char *pl_precision_v1(enum pl_precision p); /* "n", "u", "ms", "s" */
const char *pl_precision_v2(enum pl_precision p); /* "ns", "us", "ms", "s" */

#define PL_LP_MEASUREMENT "energy_meter_reading"

/* Kinds of element, for pl_lp_escape. */
enum pl_lp_kind { PL_LP_MEASUREMENT_NAME, PL_LP_KEY, PL_LP_TAG_VALUE, PL_LP_STRING_FIELD };

/*
 * Escapes the NUL-terminated string src as an element of the given kind into dst (cap bytes,
 * NUL-terminated on success). Returns the length written (without NUL), -PL_ENOSPC if it does
 * not fit, or -PL_EINVAL if the result would be empty for a name, key or tag value.
 */
int pl_lp_escape(char *dst, size_t cap, const char *src, enum pl_lp_kind kind);

/*
 * Appends one interval record as a line (with its '\n') to buf, which holds *len bytes of
 * cap. measurement NULL means PL_LP_MEASUREMENT. On success *len grows and 0 is returned;
 * -PL_ENOSPC leaves buf and *len untouched; -PL_EINVAL for an empty device name.
 * The timestamp is the interval start in the given precision (truncated).
 */
int pl_lp_interval(char *buf, size_t cap, size_t *len, const char *measurement,
		   const char *device, const struct pl_interval_record *r,
		   enum pl_precision prec);

/*
 * Appends one per-pulse record: measurement "<measurement>_pulse" (default
 * "energy_meter_pulse"), tag device, fields power_w (float, from the gap to the previous pulse),
 * width_ms, rejected (boolean); timestamp the pulse's leading edge. Same contract as above.
 */
int pl_lp_pulse(char *buf, size_t cap, size_t *len, const char *measurement,
		const char *device, const struct pl_pulse *p, int64_t power_mw,
		enum pl_precision prec);

/* Formats v / 10^decimals as a decimal number with trailing zeros trimmed ("12.5", "-3", "0.001").
 * Returns the length or -PL_ENOSPC. */
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
 * scratch (at least len + 64 bytes) for the unescaped strings. Returns 0, -PL_EPARSE for a line
 * InfluxDB would reject (missing field set, bad number, unterminated string, NaN/Inf, bad
 * escape at the end), or -PL_ENOSPC (too many tags/fields, scratch too small).
 */
int pl_lp_parse(const char *line, size_t len, char *scratch, size_t scratch_cap,
		struct pl_lp_line *out);

/*
 * Converts decimal text ("12.5", "-3", "1e3", "0.001") to an integer scaled by 10^decimals,
 * exactly. Returns 0, -PL_EPARSE if it is not a number, -PL_ERANGE if it does not fit or is
 * not an exact multiple of 10^-decimals.
 */
int pl_lp_parse_fixed(const char *text, unsigned decimals, int64_t *v);

#ifdef __cplusplus
}
#endif
#endif
