/* SPDX-License-Identifier: MIT */
/*
 * MQTT payloads and topics for a meter (include/powerlogger/mqttmsg.h): the same bytes from the
 * daemon and the firmware, so that Home Assistant sees one logger the same way whichever runs.
 *
 * Everything is written through one small sink (struct out) that keeps counting past the end
 * of the caller's buffer: a payload that does not fit is measured all the same, the caller gets
 * -PL_ENOSPC and an empty string, and nothing is written beyond cap. No payload is assembled
 * twice, so the length is known only at the end; that costs nothing here (payloads are small)
 * and keeps the code short, which matters on the firmware (scripts/fw-footprint.sh).
 *
 * Numbers come from the records' integer units, as in lineproto.c: no floating point, so the
 * energy register prints exactly the same on a Cortex-M4 as on a PC. Days are converted to
 * civil dates with civil_from_days() from H. Hinnant's "chrono-Compatible Low-Level Date
 * Algorithms", not gmtime(): the core has no libc.
 *
 * Home Assistant's rules for the discovery payload were read from its source (the MQTT
 * integration's discovery.py, schemas.py, abbreviations.py and sensor.py, and
 * sensor/const.py; versions in tests/ha_discovery_check.py, which checks them). Two choices
 * follow from that reading:
 *   - keys are abbreviated ("dev", "o", "stat_t", ...) where the abbreviation has been in HA's
 *     table for as long as device discovery has existed; "components" and "platform" are
 *     written in full, because their abbreviations changed while device discovery was new
 *     (one version of abbreviations.py has "cmp" and no "p", the documentation has "cmps" and
 *     "p"), and full keys are what HA's schema is written in, so every version accepts them;
 *   - the diagnostic sensors have no device class and no unit (HA allows a state class
 *     without a unit for those), and a null amplitude renders as "None", which HA's MQTT
 *     sensor takes as "unknown" rather than as a malformed number.
 *
 * Freestanding C11: integer arithmetic only; no library call (64-bit division becomes the
 * compiler's helper on 32-bit targets, which scripts/check-freestanding.sh allows).
 */
#include "powerlogger/mqttmsg.h"

#include <limits.h>
#include <stdbool.h>

/* ---------------------------------------------------------------- output */

struct out {
	char *p;
	size_t cap;
	size_t n;  /* characters produced so far, also those that did not fit */
	int err;   /* first error other than lack of room, or 0 */
};

static void out_init(struct out *o, char *buf, size_t cap)
{
	o->p = buf;
	o->cap = cap;
	o->n = 0;
	o->err = 0;
}

/* Stores c if it fits with the final NUL, counts it either way. */
static void put(struct out *o, char c)
{
	if (o->n + 1 < o->cap)
		o->p[o->n] = c;
	o->n++;
}

static void puts_(struct out *o, const char *s)
{
	while (*s != '\0')
		put(o, *s++);
}

/* The length written, or the error; buf holds "" on an error (if cap > 0). */
static int finish(struct out *o)
{
	int err = o->err;

	if (err == 0 && (o->n >= o->cap || o->n > (size_t)INT_MAX))
		err = -PL_ENOSPC;
	if (err != 0) {
		if (o->cap > 0)
			o->p[0] = '\0';
		return err;
	}
	o->p[o->n] = '\0';
	return (int)o->n;
}

static const char hex[] = "0123456789abcdef";

/* ---------------------------------------------------------------- numbers */

static const uint32_t pow10_u32[10] = {
	1u, 10u, 100u, 1000u, 10000u, 100000u, 1000000u, 10000000u, 100000000u, 1000000000u,
};

/* Prints u with at least min_digits digits (leading zeros). */
static void put_u64w(struct out *o, uint64_t u, unsigned min_digits)
{
	char d[20];
	unsigned k = 0;

	do {
		d[k++] = (char)('0' + (unsigned)(u % 10u));
		u /= 10u;
	} while (u != 0 || k < min_digits);
	while (k > 0)
		put(o, d[--k]);
}

static void put_u64(struct out *o, uint64_t u)
{
	put_u64w(o, u, 1);
}

/* |v| in unsigned arithmetic, exact for INT64_MIN. */
static uint64_t mag(int64_t v)
{
	return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
}

static void put_i64(struct out *o, int64_t v)
{
	if (v < 0)
		put(o, '-');
	put_u64(o, mag(v));
}

/*
 * Prints (neg ? -1 : 1) * u / 10^dec (dec <= 9): all dec fraction digits, or with trim only
 * up to the last one that is not zero (none for a whole number). No sign for zero.
 */
static void put_fixed(struct out *o, bool neg, uint64_t u, unsigned dec, bool trim)
{
	uint64_t frac = u % pow10_u32[dec];

	if (neg && u != 0)
		put(o, '-');
	put_u64(o, u / pow10_u32[dec]);
	if (trim) {
		while (dec > 0 && frac % 10u == 0) {
			frac /= 10u;
			dec--;
		}
	}
	if (dec > 0) {
		put(o, '.');
		put_u64w(o, frac, dec);
	}
}

unsigned pl_mqtt_kwh_decimals(uint32_t imp_per_kwh)
{
	unsigned d = 0;
	uint32_t p = 1;

	while (p < imp_per_kwh && d < 6) {
		p *= 10u;
		d++;
	}
	return d;
}

/* A register in uWh as kWh with the meter's decimals, rounded half away from zero (the
 * meter's own rounding, pl_meter_pulses_uwh), so a negative register mirrors a positive one. */
static void put_kwh(struct out *o, int64_t uwh, uint32_t imp_per_kwh)
{
	unsigned dec = pl_mqtt_kwh_decimals(imp_per_kwh);
	uint32_t div = pow10_u32[9 - dec];
	uint64_t u = mag(uwh);
	uint64_t q = u / div, r = u % div;

	if (r >= div - r)
		q++;
	put_fixed(o, uwh < 0, q, dec, false);
}

/* mW as W, exactly (up to 3 decimals, trailing zeros left out). */
static void put_watts(struct out *o, int64_t mw)
{
	put_fixed(o, mw < 0, mag(mw), 3, true);
}

/* ---------------------------------------------------------------- time */

/* Days from 1970-01-01 to 0000-01-01 and to 9999-12-31: the years RFC 3339 can write. */
#define DAY_MIN (-719528)
#define DAY_MAX 2932896

/*
 * t_us as "YYYY-MM-DDTHH:MM:SS[.ffffff]Z" (UTC; fraction digits only as far as not zero).
 * Years outside 0000..9999 have no RFC 3339 form: -PL_EINVAL. Past the split into days the
 * arithmetic is 32-bit, which the small targets do without a library call.
 */
static void put_time(struct out *o, int64_t t_us)
{
	int64_t s = t_us / PL_US_PER_S, days64;
	int32_t us = (int32_t)(t_us % PL_US_PER_S), sod, z, era, doe, yoe, doy, mp, y, m, d;

	if (us < 0) {
		us += (int32_t)PL_US_PER_S;
		s--;
	}
	days64 = s / 86400;
	sod = (int32_t)(s % 86400);
	if (sod < 0) {
		sod += 86400;
		days64--;
	}
	if (days64 < DAY_MIN || days64 > DAY_MAX) {
		o->err = -PL_EINVAL;
		return;
	}
	/* civil_from_days: eras of 400 years (146097 days) that start on 0000-03-01. */
	z = (int32_t)days64 + 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y = yoe + era * 400 + (m <= 2);
	put_u64w(o, (uint64_t)y, 4);
	put(o, '-');
	put_u64w(o, (uint64_t)m, 2);
	put(o, '-');
	put_u64w(o, (uint64_t)d, 2);
	put(o, 'T');
	put_u64w(o, (uint64_t)(sod / 3600), 2);
	put(o, ':');
	put_u64w(o, (uint64_t)(sod / 60 % 60), 2);
	put(o, ':');
	put_u64w(o, (uint64_t)(sod % 60), 2);
	if (us != 0) {
		unsigned dec = 6;

		while (us % 10 == 0) {
			us /= 10;
			dec--;
		}
		put(o, '.');
		put_u64w(o, (uint64_t)us, dec);
	}
	put(o, 'Z');
}

/* ---------------------------------------------------------------- strings */

/* One byte inside a JSON string: '"' and '\\' escaped, control bytes (and DEL) as \u00XX,
 * everything else, bytes >= 0x80 included, as it is (UTF-8 passes through; invalid UTF-8 is
 * the caller's to avoid, but cannot break the JSON structure). */
static void put_jchar(struct out *o, unsigned char c)
{
	if (c == '"' || c == '\\') {
		put(o, '\\');
		put(o, (char)c);
	} else if (c < 0x20 || c == 0x7f) {
		puts_(o, "\\u00");
		put(o, hex[c >> 4]);
		put(o, hex[c & 15u]);
	} else {
		put(o, (char)c);
	}
}

static void put_jstr(struct out *o, const char *s)
{
	while (*s != '\0')
		put_jchar(o, (unsigned char)*s++);
}

/* A quoted JSON string. */
static void put_jquoted(struct out *o, const char *s)
{
	put(o, '"');
	put_jstr(o, s);
	put(o, '"');
}

/* ,"key": */
static void put_key(struct out *o, const char *key)
{
	put(o, ',');
	put(o, '"');
	puts_(o, key);
	puts_(o, "\":");
}

/*
 * The code point of the well-formed UTF-8 sequence at s (shortest form, no surrogates, at most
 * U+10FFFF) and its length, or 0 for a byte that starts none. Stops at a NUL (never a
 * continuation byte), so it never reads past the string.
 */
static unsigned utf8_at(const unsigned char *s, uint32_t *cp)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	unsigned n, k;
	uint32_t v;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		v = c & 0x1fu;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		v = c & 0x0fu;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		v = c & 0x07u;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	for (k = 1; k < n; k++) {
		if (s[k] < lo || s[k] > hi)
			return 0;
		v = v << 6 | (s[k] & 0x3fu);
		lo = 0x80;
		hi = 0xbf;
	}
	*cp = v;
	return n;
}

/*
 * Whether code point cp may stand in a topic. Besides '/', '+' and '#', brokers refuse (and
 * drop the connection over) what MQTT 3.1.1 section 1.5.3 says a topic should not contain:
 * control characters U+0001..U+001F and U+007F..U+009F, and non-characters (mosquitto's
 * mosquitto_validate_utf8() checks exactly these). A logger that reconnected in a loop over
 * its meter's name would deliver nothing.
 */
static bool topic_ok(uint32_t cp)
{
	if (cp == '/' || cp == '+' || cp == '#' || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
		return false;
	if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffeu) == 0xfffeu)
		return false;
	return true;
}

/* s as a topic segment: every refused character, and every byte of invalid UTF-8, as '_'.
 * An empty s becomes "_" (a topic level of its own, not "P//state"). In JSON if json. */
static void put_segment(struct out *o, const char *s, bool json)
{
	const unsigned char *u = (const unsigned char *)s;

	if (*u == 0)
		put(o, '_');
	while (*u != 0) {
		uint32_t cp = 0;
		unsigned k = utf8_at(u, &cp), i;

		if (k == 0 || !topic_ok(cp)) {
			put(o, '_');
			u += k == 0 ? 1 : k;
			continue;
		}
		for (i = 0; i < k; i++) {
			if (json)
				put_jchar(o, u[i]);
			else
				put(o, (char)u[i]);
		}
		u += k;
	}
}

static bool id_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

/*
 * s as an id: [A-Za-z0-9_-] kept, anything else '_', and when anything was replaced (or s is
 * empty) '_' and the 32-bit FNV-1a hash of s in 8 hex digits appended, so that "a.b" and "a_b"
 * differ. (A name that is itself of the form "a_b_<that hash>" would still meet "a.b": names
 * are configured, not adversarial.) Plain characters: no JSON escaping needed.
 */
static void put_id(struct out *o, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	uint32_t h = 2166136261u;
	bool replaced = *u == 0;
	int shift;

	for (; *u != 0; u++) {
		h = (h ^ *u) * 16777619u;
		if (id_char(*u)) {
			put(o, (char)*u);
		} else {
			put(o, '_');
			replaced = true;
		}
	}
	if (!replaced)
		return;
	put(o, '_');
	for (shift = 28; shift >= 0; shift -= 4)
		put(o, hex[(h >> shift) & 15u]);
}

/* "<node id>_<meter id>": the device's identifier and the discovery object id. */
static void put_device_id(struct out *o, const struct pl_mqtt_node *n,
			  const struct pl_mqtt_meter *m)
{
	put_id(o, n->node_id);
	put(o, '_');
	put_id(o, m->name);
}

/* "P/M/leaf" or "P/leaf", as a topic or inside a JSON string. */
static void put_topic(struct out *o, const struct pl_mqtt_node *n, const char *meter,
		      const char *leaf, bool json)
{
	if (json)
		put_jstr(o, n->topic_prefix);
	else
		puts_(o, n->topic_prefix);
	put(o, '/');
	if (meter != NULL) {
		put_segment(o, meter, json);
		put(o, '/');
	}
	puts_(o, leaf);
}

/* A prefix or leaf given by the program: not empty, no wildcard, no control byte. */
static bool topic_text_ok(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '+' || c == '#' || c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

/* A topic prefix: that, and not starting with '$', which MQTT keeps for the broker's own
 * topics ($SYS/...): a client cannot publish there. */
static bool prefix_ok(const char *s)
{
	return topic_text_ok(s) && s[0] != '$';
}

/* ---------------------------------------------------------------- public: names */

_Static_assert(PL_MQTT_NAME_MAX == 64, "pl_mqtt_name_problem() says 64 bytes");

const char *pl_mqtt_name_problem(const char *name)
{
	const unsigned char *u = (const unsigned char *)name;
	size_t n = 0;

	if (name == NULL)
		return "is missing";
	if (*u == 0)
		return "is empty";
	while (u[n] != 0) {
		uint32_t cp;
		unsigned k = utf8_at(u + n, &cp);

		if (k == 0)
			return "is not valid UTF-8";
		n += k;
	}
	if (n > PL_MQTT_NAME_MAX)
		return "is longer than 64 bytes";
	return NULL;
}

int pl_mqtt_segment(char *buf, size_t cap, const char *s)
{
	struct out o;

	if (buf == NULL || s == NULL)
		return -PL_EINVAL;
	out_init(&o, buf, cap);
	put_segment(&o, s, false);
	return finish(&o);
}

int pl_mqtt_id(char *buf, size_t cap, const char *s)
{
	struct out o;

	if (buf == NULL || s == NULL)
		return -PL_EINVAL;
	out_init(&o, buf, cap);
	put_id(&o, s);
	return finish(&o);
}

int pl_mqtt_topic(char *buf, size_t cap, const struct pl_mqtt_node *n, const char *meter,
		  const char *leaf)
{
	struct out o;

	if (buf == NULL)
		return -PL_EINVAL;
	out_init(&o, buf, cap);
	if (n == NULL || !prefix_ok(n->topic_prefix) || !topic_text_ok(leaf))
		o.err = -PL_EINVAL;
	else
		put_topic(&o, n, meter, leaf, false);
	return finish(&o);
}

/* Discovery is on: a discovery prefix, a node id and a meter name. */
static bool discovery_args_ok(const struct pl_mqtt_node *n, const struct pl_mqtt_meter *m)
{
	return n != NULL && m != NULL && m->name != NULL && n->node_id != NULL &&
	       prefix_ok(n->discovery_prefix);
}

int pl_mqtt_discovery_topic(char *buf, size_t cap, const struct pl_mqtt_node *n,
			    const struct pl_mqtt_meter *m)
{
	struct out o;

	if (buf == NULL)
		return -PL_EINVAL;
	out_init(&o, buf, cap);
	if (!discovery_args_ok(n, m)) {
		o.err = -PL_EINVAL;
	} else {
		puts_(&o, n->discovery_prefix);
		puts_(&o, "/device/");
		put_device_id(&o, n, m);
		puts_(&o, "/config");
	}
	return finish(&o);
}

/* ---------------------------------------------------------------- public: payloads */

static const char *const quality_names[] = {
	"partial", "gap", "rejected", "steady", "no_signal",
};
#define N_QUALITY (sizeof quality_names / sizeof quality_names[0])

/* "ok", or the flags' names joined with ','; bits without a name as "other". */
static void put_quality(struct out *o, uint32_t flags)
{
	bool first = true;
	unsigned i;

	put(o, '"');
	if (flags == 0)
		puts_(o, "ok");
	for (i = 0; i < N_QUALITY; i++) {
		if ((flags & (1u << i)) == 0)
			continue;
		if (!first)
			put(o, ',');
		puts_(o, quality_names[i]);
		first = false;
	}
	if ((flags >> N_QUALITY) != 0) {
		if (!first)
			put(o, ',');
		puts_(o, "other");
	}
	put(o, '"');
}

/* A store id as the header describes it: 1..PL_MQTT_STORE_ID_MAX of [A-Za-z0-9_-]. */
static bool store_ok(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (!id_char((unsigned char)s[i]))
			return false;
	}
	return len >= 1 && len <= PL_MQTT_STORE_ID_MAX;
}

static size_t bounded_len(const char *s, size_t max)
{
	size_t i = 0;

	while (i < max && s[i] != '\0')
		i++;
	return i;
}

/* ,"store":"...","seq":N}  or just }  */
static void put_mark_end(struct out *o, const struct pl_mqtt_mark *mark)
{
	if (mark != NULL) {
		size_t len = bounded_len(mark->store, sizeof mark->store);

		if (len == sizeof mark->store || !store_ok(mark->store, len)) {
			o->err = -PL_EINVAL;
			return;
		}
		put_key(o, "store");
		put_jquoted(o, mark->store);
		put_key(o, "seq");
		put_u64(o, mark->seq);
	}
	put(o, '}');
}

/* "start":"...","length_s":N,"pulses":N,"rejected":N (without the leading comma) */
static void put_record_head(struct out *o, const struct pl_interval_record *r)
{
	puts_(o, "\"start\":\"");
	put_time(o, r->start_us);
	put(o, '"');
	put_key(o, "length_s");
	put_u64(o, r->length_s);
	put_key(o, "pulses");
	put_u64(o, r->pulses);
	put_key(o, "rejected");
	put_u64(o, r->rejected);
}

/* ,"flags":N,"quality":"...", the mark and the closing brace */
static void put_record_tail(struct out *o, const struct pl_interval_record *r,
			    const struct pl_mqtt_mark *mark)
{
	put_key(o, "flags");
	put_u64(o, r->flags);
	put_key(o, "quality");
	put_quality(o, r->flags);
	put_mark_end(o, mark);
}

static bool meter_ok(const struct pl_mqtt_meter *m)
{
	return m != NULL && m->imp_per_kwh >= 1;
}

int pl_mqtt_state_json(char *buf, size_t cap, const struct pl_mqtt_meter *m,
		       const struct pl_interval_record *r, const struct pl_mqtt_mark *mark)
{
	struct out o;

	if (buf == NULL)
		return -PL_EINVAL;
	out_init(&o, buf, cap);
	if (!meter_ok(m) || r == NULL) {
		o.err = -PL_EINVAL;
		return finish(&o);
	}
	puts_(&o, "{\"energy_kwh\":");
	put_kwh(&o, r->register_uwh, m->imp_per_kwh);
	put_key(&o, "power_w");
	put_watts(&o, r->avg_mw);
	put(&o, ',');
	put_record_head(&o, r);
	put_record_tail(&o, r, mark);
	return finish(&o);
}

int pl_mqtt_interval_json(char *buf, size_t cap, const struct pl_mqtt_meter *m,
			  const struct pl_interval_record *r, const struct pl_mqtt_mark *mark)
{
	struct out o;

	if (buf == NULL)
		return -PL_EINVAL;
	out_init(&o, buf, cap);
	if (!meter_ok(m) || r == NULL) {
		o.err = -PL_EINVAL;
		return finish(&o);
	}
	put(&o, '{');
	put_record_head(&o, r);
	put_key(&o, "energy_wh");
	put_fixed(&o, r->energy_uwh < 0, mag(r->energy_uwh), 6, true);
	put_key(&o, "power_w");
	put_watts(&o, r->avg_mw);
	put_key(&o, "peak_w");
	put_watts(&o, r->peak_mw);
	put_key(&o, "energy_kwh");
	put_kwh(&o, r->register_uwh, m->imp_per_kwh);
	put_record_tail(&o, r, mark);
	return finish(&o);
}

/* A count in ADC units, or null when not known (< 0). */
static void put_opt_count(struct out *o, int32_t v)
{
	if (v < 0)
		puts_(o, "null");
	else
		put_i64(o, v);
}

int pl_mqtt_diag_json(char *buf, size_t cap, const struct pl_mqtt_diag *d)
{
	struct out o;

	if (buf == NULL)
		return -PL_EINVAL;
	out_init(&o, buf, cap);
	if (d == NULL) {
		o.err = -PL_EINVAL;
		return finish(&o);
	}
	puts_(&o, "{\"detector\":");
	put_jquoted(&o, d->detector_state != NULL ? d->detector_state : "unknown");
	put_key(&o, "amplitude");
	put_opt_count(&o, d->amplitude);
	put_key(&o, "noise");
	put_opt_count(&o, d->noise);
	put_key(&o, "rejected");
	put_u64(&o, d->rejected_total);
	put_key(&o, "backlog");
	put_u64(&o, d->backlog);
	put_key(&o, "updated");
	put(&o, '"');
	put_time(&o, d->updated_us);
	puts_(&o, "\"}");
	return finish(&o);
}

/* ---------------------------------------------------------------- discovery */

/* One entity of a meter's device. */
struct component {
	const char *key;       /* the component id in "components", and the unique_id suffix */
	const char *name;      /* the entity's name (HA prefixes the device's) */
	const char *dev_cla;   /* device class, or NULL */
	const char *stat_cla;  /* state class, or NULL: a text sensor */
	const char *unit;      /* unit of measurement, or NULL */
	const char *leaf;      /* "state" or "diag" */
	const char *field;     /* the payload's key the value template reads */
	bool diagnostic;       /* entity_category "diagnostic" */
	bool kwh;              /* suggested_display_precision: the meter's kWh decimals */
};

static const struct component components[] = {
	{ "energy", "Energy", "energy", "total_increasing", "kWh", "state", "energy_kwh", false,
	  true },
	{ "power", "Power", "power", "measurement", "W", "state", "power_w", false, false },
	{ "detector", "Detector", NULL, NULL, NULL, "diag", "detector", true, false },
	{ "amplitude", "Signal amplitude", NULL, "measurement", NULL, "diag", "amplitude", true,
	  false },
	{ "noise", "Signal noise", NULL, "measurement", NULL, "diag", "noise", true, false },
	{ "rejected", "Rejected pulses", NULL, "total_increasing", NULL, "diag", "rejected", true,
	  false },
	{ "backlog", "Backlog", NULL, "measurement", NULL, "diag", "backlog", true, false },
};
#define N_COMPONENTS (sizeof components / sizeof components[0])

/* An origin url HA's cv.configuration_url takes: http(s)://, no byte it would trip over. */
static bool url_ok(const char *s)
{
	const char *rest;

	if (s[0] == 'h' && s[1] == 't' && s[2] == 't' && s[3] == 'p' && s[4] == ':')
		rest = s + 5;
	else if (s[0] == 'h' && s[1] == 't' && s[2] == 't' && s[3] == 'p' && s[4] == 's' &&
		 s[5] == ':')
		rest = s + 6;
	else
		return false;
	if (rest[0] != '/' || rest[1] != '/' || rest[2] == '\0' || rest[2] == '/')
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c == 0x7f || c == '"' || c == '\\')
			return false;
	}
	return true;
}

static void put_opt_jfield(struct out *o, const char *key, const char *value)
{
	if (value == NULL)
		return;
	put_key(o, key);
	put_jquoted(o, value);
}

static void put_component(struct out *o, const struct pl_mqtt_node *n,
			  const struct pl_mqtt_meter *m, const struct component *c)
{
	put(o, '"');
	puts_(o, c->key);
	puts_(o, "\":{\"platform\":\"sensor\",\"name\":\"");
	puts_(o, c->name);
	put(o, '"');
	if (c->dev_cla != NULL) {
		put_key(o, "dev_cla");
		put_jquoted(o, c->dev_cla);
	}
	if (c->stat_cla != NULL) {
		put_key(o, "stat_cla");
		put_jquoted(o, c->stat_cla);
	}
	if (c->unit != NULL) {
		put_key(o, "unit_of_meas");
		put_jquoted(o, c->unit);
	}
	if (c->kwh) { /* as many decimals as one pulse needs */
		put_key(o, "sug_dsp_prc");
		put_u64(o, pl_mqtt_kwh_decimals(m->imp_per_kwh));
	}
	if (c->diagnostic) {
		put_key(o, "ent_cat");
		puts_(o, "\"diagnostic\"");
	}
	put_key(o, "stat_t");
	put(o, '"');
	put_topic(o, n, m->name, c->leaf, true);
	put(o, '"');
	put_key(o, "val_tpl");
	puts_(o, "\"{{ value_json.");
	puts_(o, c->field);
	puts_(o, " }}\"");
	put_key(o, "uniq_id");
	put(o, '"');
	put_device_id(o, n, m);
	put(o, '_');
	puts_(o, c->key);
	puts_(o, "\"}");
}

int pl_mqtt_discovery_json(char *buf, size_t cap, const struct pl_mqtt_node *n,
			   const struct pl_mqtt_meter *m)
{
	struct out o;
	unsigned i;

	if (buf == NULL)
		return -PL_EINVAL;
	out_init(&o, buf, cap);
	if (!discovery_args_ok(n, m) || !meter_ok(m) || !prefix_ok(n->topic_prefix) ||
	    (n->support_url != NULL && !url_ok(n->support_url))) {
		o.err = -PL_EINVAL;
		return finish(&o);
	}
	puts_(&o, "{\"dev\":{\"ids\":[\"");
	put_device_id(&o, n, m);
	puts_(&o, "\"],\"name\":\"PowerLogger ");
	put_jstr(&o, m->name);
	puts_(&o, "\",\"mf\":\"PowerLogger\"");
	put_opt_jfield(&o, "mdl", n->model);
	put_opt_jfield(&o, "sw", n->sw_version);
	puts_(&o, "},\"o\":{\"name\":\"PowerLogger\"");
	put_opt_jfield(&o, "sw", n->sw_version);
	put_opt_jfield(&o, "url", n->support_url);
	put(&o, '}');
	put_key(&o, "avty_t");
	put(&o, '"');
	put_topic(&o, n, NULL, "availability", true);
	put(&o, '"');
	put_key(&o, "components");
	put(&o, '{');
	for (i = 0; i < N_COMPONENTS; i++) {
		if (i > 0)
			put(&o, ',');
		put_component(&o, n, m, &components[i]);
	}
	puts_(&o, "},\"qos\":1}");
	return finish(&o);
}

/* ---------------------------------------------------------------- reading a mark back */

/* A cursor over len bytes that need not end in a NUL: nothing reads at or past e. */
struct scan {
	const char *p, *e;
};

static void skip_ws(struct scan *s)
{
	while (s->p < s->e && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static bool take(struct scan *s, char c)
{
	skip_ws(s);
	if (s->p < s->e && *s->p == c) {
		s->p++;
		return true;
	}
	return false;
}

/* A JSON string: *b and *n get its raw text between the quotes, *esc whether it has escapes. */
static bool scan_string(struct scan *s, const char **b, size_t *n, bool *esc)
{
	if (!take(s, '"'))
		return false;
	*b = s->p;
	*esc = false;
	while (s->p < s->e) {
		unsigned char c = (unsigned char)*s->p;

		if (c == '"') {
			*n = (size_t)(s->p - *b);
			s->p++;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c == '\\') {
			*esc = true;
			s->p++;
			if (s->p >= s->e)
				return false;
		}
		s->p++;
	}
	return false;
}

/* A number or literal (true, false, null): its characters, at least one. */
static bool scan_atom(struct scan *s, const char **b, size_t *n)
{
	skip_ws(s);
	*b = s->p;
	while (s->p < s->e) {
		char c = *s->p;

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-' || c == '+' ||
		      c == '.' || c == 'E'))
			break;
		s->p++;
	}
	*n = (size_t)(s->p - *b);
	return *n > 0;
}

static bool text_is(const char *b, size_t n, const char *lit)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (lit[i] != b[i]) /* lit ends first: its NUL differs from b[i] unless b has one */
			return false;
		if (lit[i] == '\0')
			return false;
	}
	return lit[n] == '\0';
}

/* A sequence number as this module prints it: digits, no leading zero, within uint64_t. */
static bool parse_seq(const char *b, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || (n > 1 && b[0] == '0'))
		return false;
	for (i = 0; i < n; i++) {
		unsigned dgt;

		if (b[i] < '0' || b[i] > '9')
			return false;
		dgt = (unsigned)(b[i] - '0');
		if (v > (UINT64_MAX - dgt) / 10u)
			return false;
		v = v * 10u + dgt;
	}
	*out = v;
	return true;
}

/*
 * The payload is read as a flat JSON object (the state payload is one): string, number and
 * literal values; a nested object or array, a duplicate "store" or "seq", or anything after
 * the closing brace makes it foreign (-PL_EPARSE). Keys written with escapes are not ours.
 */
int pl_mqtt_parse_mark(const char *payload, size_t len, struct pl_mqtt_mark *mark)
{
	struct scan s;
	bool have_store = false, have_seq = false;
	const char *store = NULL;
	size_t store_len = 0, i;
	uint64_t seq = 0;

	if (payload == NULL || mark == NULL)
		return -PL_EINVAL;
	s.p = payload;
	s.e = payload + len;
	if (!take(&s, '{'))
		return -PL_EPARSE;
	if (!take(&s, '}')) {
		do {
			const char *k, *v;
			size_t kn, vn;
			bool kesc, vesc = false, is_str;

			if (!scan_string(&s, &k, &kn, &kesc) || !take(&s, ':'))
				return -PL_EPARSE;
			skip_ws(&s);
			is_str = s.p < s.e && *s.p == '"';
			if (is_str ? !scan_string(&s, &v, &vn, &vesc) : !scan_atom(&s, &v, &vn))
				return -PL_EPARSE;
			if (kesc)
				continue;
			if (text_is(k, kn, "store")) {
				if (have_store || !is_str || vesc || !store_ok(v, vn))
					return -PL_EPARSE;
				have_store = true;
				store = v;
				store_len = vn;
			} else if (text_is(k, kn, "seq")) {
				if (have_seq || is_str || !parse_seq(v, vn, &seq))
					return -PL_EPARSE;
				have_seq = true;
			}
		} while (take(&s, ','));
		if (!take(&s, '}'))
			return -PL_EPARSE;
	}
	skip_ws(&s);
	if (s.p != s.e || !have_store || !have_seq)
		return -PL_EPARSE;
	for (i = 0; i < store_len; i++)
		mark->store[i] = store[i];
	mark->store[store_len] = '\0';
	mark->seq = seq;
	return 0;
}
