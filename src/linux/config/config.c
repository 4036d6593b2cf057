/* SPDX-License-Identifier: MIT */
/*
 * The daemon's configuration file (see config.h): libinih splits the INI syntax, the tables
 * below say which keys each section takes and how their values are checked, and a final pass
 * checks what concerns a whole section (required keys, options that exclude each other, what
 * an InfluxDB API version needs). Every problem becomes one diagnostic with its file:line.
 *
 * libinih is driven through ini_parse_stream() with the line reader below, which numbers the
 * lines itself: libinih's own line argument exists only in builds with INI_HANDLER_LINENO
 * (Debian's is one, though its header says otherwise), and its error return names only the
 * first bad line. The reader also knows the section headers before libinih does, so sections
 * without keys are still seen (and a missing `url` is reported at its section's line).
 */
#define INI_HANDLER_LINENO 1 /* what Debian's libinih1 (55-1) is built with; see config.h */
#include <ini.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "config/keys.h"
#include "powerlogger/common.h"
#include "powerlogger/detector.h"
#include "powerlogger/lineproto.h"
#include "powerlogger/meter_type.h"
#include "sources/live_config.h"
#include "sources/trace.h"

#define MAX_KEYS 32
#define SECRET_MAX 4096 /* longest secret read from a file, bytes */
/* A configuration file is a few kB. These bounds keep a wrong path (/dev/zero, a log file, a
 * disk image) from growing memory without end: a line is kept up to LINE_KEEP bytes (libinih
 * refuses much shorter ones anyway, with "line too long") and reading stops at FILE_MAX. */
#define LINE_KEEP 4096
#define FILE_MAX (1024 * 1024)

enum sect_type { S_NONE, S_STORE, S_METER, S_INFLUX, S_MQTT, S_HTTP, S_BAD };

enum kind {
	K_STR,    /* char *, not empty */
	K_RFILE,  /* char *, a file that must be readable */
	K_URL,    /* char *, http:// or https:// */
	K_UINT,   /* uint32_t in [min, max] */
	K_ENUM,   /* int, one of names[] -> values[] */
	K_BOOL,   /* int, yes/no */
	K_KWH,    /* int64_t micro-watt-hours from kWh, >= 0 */
	K_SPEED,  /* double, >= 0 */
	K_SECRET, /* struct pl_config_secret; how = INLINE, FILE or ENV */
	K_LISTEN, /* struct pl_config_http */
	K_MQTT_URL, /* struct pl_config_mqtt: url, host, port, tls */
	K_TOPIC,  /* char *, an MQTT topic prefix; min = 1: may be empty ("" or nothing) */
	K_CLIENT, /* char *, an MQTT client id: 1..PL_CONFIG_NAME_MAX of [A-Za-z0-9_.-] */
	K_PRICE,  /* int64_t millionths from a decimal >= 0 (a price per kWh) */
	K_CURRENCY, /* char *, 1..16 bytes without control characters or quotes */
};

struct key {
	const char *name;
	enum kind kind;
	size_t off;
	uint32_t min, max;
	const char *const *names; /* K_ENUM: NULL-terminated */
	const int *values;
	enum pl_config_secret_from how; /* K_SECRET */
};

static const char *const source_names[] = { "sim", "file", "iio", "gpio", "serial", NULL };
static const int source_values[] = { PL_CONFIG_SOURCE_SIM, PL_CONFIG_SOURCE_FILE,
				     PL_CONFIG_SOURCE_IIO, PL_CONFIG_SOURCE_GPIO,
				     PL_CONFIG_SOURCE_SERIAL };
/* The live sources' keys mode, bias and pin take the names each source gives, in the order of
 * its enum: their values are the names' indexes. */
static const int index_values[] = { 0, 1, 2, 3 };
static const char *const format_names[] = { "csv", "s16le", "u16le", NULL };
static const int format_values[] = { PL_TRACE_CSV, PL_TRACE_S16LE, PL_TRACE_U16LE };
static const char *const polarity_names[] = { "auto", "up", "down", NULL };
static const int polarity_values[] = { PL_POLARITY_AUTO, PL_POLARITY_UP, PL_POLARITY_DOWN };
static const char *const meter_type_names[] = { "led", "disc", NULL };
static const int meter_type_values[] = { PL_METER_LED, PL_METER_DISC };
static const char *const api_names[] = { "1", "2", "3", NULL };
static const int api_values[] = { 1, 2, 3 };
static const char *const precision_names[] = { "s", "ms", "us", "ns", NULL };
static const int precision_values[] = { PL_PREC_S, PL_PREC_MS, PL_PREC_US, PL_PREC_NS };

#define STORE(f) offsetof(struct pl_config_store, f)
#define METER(f) offsetof(struct pl_config_meter, f)
#define INFLUX(f) offsetof(struct pl_config_influx, f)
#define MQTT(f) offsetof(struct pl_config_mqtt, f)
#define HTTP(f) offsetof(struct pl_config_http, f)

static const struct key store_keys[] = {
	{ "path", K_STR, STORE(path), 0, 0, NULL, NULL, 0 },
	{ "retention_days", K_UINT, STORE(retention_days), 0, 36500, NULL, NULL, 0 },
	{ "max_size_mb", K_UINT, STORE(max_size_mb), 0, 16777216, NULL, NULL, 0 },
	{ "merge_s", K_UINT, STORE(merge_s), 0, 86400, NULL, NULL, 0 },
	{ NULL, 0, 0, 0, 0, NULL, NULL, 0 },
};

static const struct key meter_keys[] = {
	{ "source", K_ENUM, METER(source), 0, 0, source_names, source_values, 0 },
	{ "file", K_RFILE, METER(file), 0, 0, NULL, NULL, 0 },
	{ "format", K_ENUM, METER(format), 0, 0, format_names, format_values, 0 },
	{ "rate", K_UINT, METER(rate_hz), 1, PL_TRACE_MAX_RATE, NULL, NULL, 0 },
	{ "speed", K_SPEED, METER(speed), 0, 1000000, NULL, NULL, 0 },
	{ "meter_type", K_ENUM, METER(meter_type), 0, 0, meter_type_names, meter_type_values, 0 },
	{ "imp_per_kwh", K_UINT, METER(imp_per_kwh), 1, 1000000, NULL, NULL, 0 },
	{ "rev_per_kwh", K_UINT, METER(imp_per_kwh), 1, 1000000, NULL, NULL, 0 },
	{ "max_power_w", K_UINT, METER(max_power_w), 1, 100000000, NULL, NULL, 0 },
	{ "interval_s", K_UINT, METER(interval_s), 1, 86400, NULL, NULL, 0 },
	{ "start_register_kwh", K_KWH, METER(start_register_uwh), 0, 0, NULL, NULL, 0 },
	{ "polarity", K_ENUM, METER(polarity), 0, 0, polarity_names, polarity_values, 0 },
	{ "profile", K_RFILE, METER(profile), 0, 0, NULL, NULL, 0 },
	{ "device", K_STR, METER(device), 0, 0, NULL, NULL, 0 },
	{ "channel", K_UINT, METER(channel), 0, 1023, NULL, NULL, 0 },
	{ "line", K_UINT, METER(channel), 0, 1023, NULL, NULL, 0 },
	{ "mode", K_ENUM, METER(iio_mode), 0, 0, pl_iio_mode_names, index_values, 0 },
	{ "trigger", K_STR, METER(trigger), 0, 0, NULL, NULL, 0 },
	{ "sysfs_root", K_STR, METER(sysfs_root), 0, 0, NULL, NULL, 0 },
	{ "dev_root", K_STR, METER(dev_root), 0, 0, NULL, NULL, 0 },
	{ "bias", K_ENUM, METER(bias), 0, 0, pl_gpio_bias_names, index_values, 0 },
	{ "active_low", K_BOOL, METER(active_low), 0, 0, NULL, NULL, 0 },
	{ "pin", K_ENUM, METER(modem_line), 0, 0, pl_serial_pin_names, index_values, 0 },
	{ "debounce_ms", K_UINT, METER(debounce_us), 0, 1000, NULL, NULL, 0 },
	{ NULL, 0, 0, 0, 0, NULL, NULL, 0 },
};

static const struct key influx_keys[] = {
	{ "url", K_URL, INFLUX(url), 0, 0, NULL, NULL, 0 },
	{ "api", K_ENUM, INFLUX(api), 0, 0, api_names, api_values, 0 },
	{ "database", K_STR, INFLUX(database), 0, 0, NULL, NULL, 0 },
	{ "retention_policy", K_STR, INFLUX(retention_policy), 0, 0, NULL, NULL, 0 },
	{ "org", K_STR, INFLUX(org), 0, 0, NULL, NULL, 0 },
	{ "bucket", K_STR, INFLUX(bucket), 0, 0, NULL, NULL, 0 },
	{ "username", K_STR, INFLUX(username), 0, 0, NULL, NULL, 0 },
	{ "password", K_SECRET, INFLUX(password), 0, 0, NULL, NULL, PL_CONFIG_SECRET_INLINE },
	{ "password_file", K_SECRET, INFLUX(password), 0, 0, NULL, NULL, PL_CONFIG_SECRET_FILE },
	{ "password_env", K_SECRET, INFLUX(password), 0, 0, NULL, NULL, PL_CONFIG_SECRET_ENV },
	{ "token", K_SECRET, INFLUX(token), 0, 0, NULL, NULL, PL_CONFIG_SECRET_INLINE },
	{ "token_file", K_SECRET, INFLUX(token), 0, 0, NULL, NULL, PL_CONFIG_SECRET_FILE },
	{ "token_env", K_SECRET, INFLUX(token), 0, 0, NULL, NULL, PL_CONFIG_SECRET_ENV },
	{ "precision", K_ENUM, INFLUX(precision), 0, 0, precision_names, precision_values, 0 },
	{ "gzip", K_BOOL, INFLUX(gzip), 0, 0, NULL, NULL, 0 },
	{ "ca_file", K_RFILE, INFLUX(ca_file), 0, 0, NULL, NULL, 0 },
	{ "timeout_s", K_UINT, INFLUX(timeout_s), 1, 3600, NULL, NULL, 0 },
	{ "batch_max_records", K_UINT, INFLUX(batch_max_records), 1, 1000000, NULL, NULL, 0 },
	{ "batch_max_age_s", K_UINT, INFLUX(batch_max_age_s), 0, 86400, NULL, NULL, 0 },
	{ "create_database", K_BOOL, INFLUX(create_database), 0, 0, NULL, NULL, 0 },
	{ NULL, 0, 0, 0, 0, NULL, NULL, 0 },
};

/* password, _file and _env as for InfluxDB; qos 2 is parsed to be refused with a reason */
static const struct key mqtt_keys[] = {
	{ "url", K_MQTT_URL, 0, 0, 0, NULL, NULL, 0 },
	{ "username", K_STR, MQTT(username), 0, 0, NULL, NULL, 0 },
	{ "password", K_SECRET, MQTT(password), 0, 0, NULL, NULL, PL_CONFIG_SECRET_INLINE },
	{ "password_file", K_SECRET, MQTT(password), 0, 0, NULL, NULL, PL_CONFIG_SECRET_FILE },
	{ "password_env", K_SECRET, MQTT(password), 0, 0, NULL, NULL, PL_CONFIG_SECRET_ENV },
	{ "ca_file", K_RFILE, MQTT(ca_file), 0, 0, NULL, NULL, 0 },
	{ "client_id", K_CLIENT, MQTT(client_id), 0, 0, NULL, NULL, 0 },
	{ "topic_prefix", K_TOPIC, MQTT(topic_prefix), 0, 0, NULL, NULL, 0 },
	{ "discovery_prefix", K_TOPIC, MQTT(discovery_prefix), 1, 0, NULL, NULL, 0 },
	{ "qos", K_UINT, MQTT(qos), 0, 2, NULL, NULL, 0 },
	{ "keepalive_s", K_UINT, MQTT(keepalive_s), 5, 3600, NULL, NULL, 0 },
	{ NULL, 0, 0, 0, 0, NULL, NULL, 0 },
};

static const struct key http_keys[] = {
	{ "listen", K_LISTEN, 0, 0, 0, NULL, NULL, 0 },
	{ "price_per_kwh", K_PRICE, HTTP(price_micro), 0, 0, NULL, NULL, 0 },
	{ "currency", K_CURRENCY, HTTP(currency), 0, 0, NULL, NULL, 0 },
	{ NULL, 0, 0, 0, 0, NULL, NULL, 0 },
};

struct section {
	enum sect_type type;
	char label[160];   /* "meter house", as shown in diagnostics */
	unsigned line;
	size_t index; /* into cfg->meters, cfg->influx or cfg->mqtt */
	unsigned key_line[MAX_KEYS]; /* where each key of its table was set; 0: not set */
};

struct parser {
	const char *name;
	struct pl_config *cfg;
	struct pl_config_diags *diags;
	int nomem;
	/* the input: a FILE or a string */
	FILE *f;
	const char *text;
	char *buf;
	size_t bufcap;
	unsigned line;
	size_t total;       /* bytes read from f */
	int line_long;      /* the current line was longer than LINE_KEEP (the rest is dropped) */
	int line_nul;       /* the current line has a NUL byte */
	int file_too_big;   /* reading stopped at FILE_MAX */
	int need_meter;     /* a file, not the built-in text: it must define a meter */
	int world_readable; /* the file is readable by others: inline secrets get a warning */
	struct section *sects;
	size_t nsects;
	int cur; /* index into sects, -1 before the first section */
	int no_secrets; /* PL_CONFIG_NO_SECRETS: secrets are not read */
};

/* ---- small helpers ----------------------------------------------------------------------- */

static char *xstrdup(struct parser *p, const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		p->nomem = 1;
	return d;
}

static void diag(struct parser *p, int warning, unsigned line, const struct section *s,
		 const char *key, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Adds a diagnostic, keeping the list sorted by line (stable). */
static void diag(struct parser *p, int warning, unsigned line, const struct section *s,
		 const char *key, const char *fmt, ...)
{
	struct pl_config_diags *d = p->diags;
	struct pl_config_diag *v;
	char head[256], msg[1024], *text;
	va_list ap;
	size_t i;
	int n;

	n = snprintf(head, sizeof(head), "%s:%u: %s", p->name, line, warning ? "warning: " : "");
	if (s != NULL && key != NULL)
		snprintf(head + n, sizeof(head) - (size_t)n, "[%s] %s: ", s->label, key);
	else if (s != NULL)
		snprintf(head + n, sizeof(head) - (size_t)n, "[%s]: ", s->label);
	else if (key != NULL)
		snprintf(head + n, sizeof(head) - (size_t)n, "%s: ", key);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (warning)
		d->warnings++;
	else
		d->errors++;
	v = realloc(d->v, (d->n + 1) * sizeof(*v));
	text = malloc(strlen(head) + strlen(msg) + 1);
	if (v == NULL || text == NULL) {
		if (v != NULL)
			d->v = v;
		free(text);
		p->nomem = 1;
		return;
	}
	strcpy(text, head);
	strcat(text, msg);
	d->v = v;
	for (i = d->n; i > 0 && d->v[i - 1].line > line; i--)
		d->v[i] = d->v[i - 1];
	d->v[i].line = line;
	d->v[i].warning = warning;
	d->v[i].text = text;
	d->n++;
}

/* Edit distance, case-insensitive, capped for long words. */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t row[65];

	if (la > 64 || lb > 64)
		return 99;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		size_t diag_prev = row[0];

		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag_prev + (tolower((unsigned char)a[i - 1]) !=
						   tolower((unsigned char)b[j - 1]));

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag_prev = up;
		}
	}
	return row[lb];
}

/* The candidate closest to word, or NULL if none is close. */
static const char *nearest(const char *word, const char *const *cands, size_t n)
{
	const char *best = NULL;
	size_t i, bestd = 3, len = strlen(word);

	for (i = 0; i < n; i++) {
		size_t d = distance(word, cands[i]);

		if (d < bestd || (best == NULL && len >= 3 &&
				  strncasecmp(cands[i], word, len) == 0)) {
			bestd = d < bestd ? d : bestd;
			best = cands[i];
		}
	}
	return best;
}

static const struct key *keys_of(enum sect_type t)
{
	switch (t) {
	case S_STORE:
		return store_keys;
	case S_METER:
		return meter_keys;
	case S_INFLUX:
		return influx_keys;
	case S_MQTT:
		return mqtt_keys;
	case S_HTTP:
		return http_keys;
	default:
		return NULL;
	}
}

static int key_index(const struct key *keys, const char *name)
{
	int i;

	for (i = 0; keys[i].name != NULL; i++)
		if (strcmp(keys[i].name, name) == 0)
			return i;
	return -1;
}

/* The line where a key of the section was set, 0 if not. */
static unsigned key_line(const struct section *s, const char *name)
{
	int i = key_index(keys_of(s->type), name);

	return i < 0 ? 0 : s->key_line[i];
}

static void *section_base(struct parser *p, const struct section *s)
{
	switch (s->type) {
	case S_STORE:
		return &p->cfg->store;
	case S_METER:
		return &p->cfg->meters[s->index];
	case S_INFLUX:
		return &p->cfg->influx[s->index];
	case S_MQTT:
		return &p->cfg->mqtt[s->index];
	case S_HTTP:
		return &p->cfg->http;
	default:
		return NULL;
	}
}

/* ---- sections ---------------------------------------------------------------------------- */

static int valid_name(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= PL_CONFIG_NAME_MAX &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

static void meter_defaults(struct pl_config_meter *m)
{
	memset(m, 0, sizeof(*m));
	m->source = PL_CONFIG_SOURCE_SIM;
	m->format = PL_TRACE_CSV;
	m->speed = 1.0;
	m->imp_per_kwh = 1000;
	m->interval_s = 20;
	m->polarity = PL_POLARITY_AUTO;
	m->meter_type = PL_METER_LED;
}

static void influx_defaults(struct pl_config_influx *x)
{
	memset(x, 0, sizeof(*x));
	x->api = 1;
	x->precision = PL_PREC_S;
	x->timeout_s = 10;
	x->batch_max_records = 5000;
	x->batch_max_age_s = 2; /* near real time, yet one request for meters closing together */
}

static void mqtt_defaults(struct pl_config_mqtt *q)
{
	memset(q, 0, sizeof(*q));
	q->qos = 1;
	q->keepalive_s = 30;
}

/* The section's name (or its lack) fits its type, and no earlier section has it: 1, or 0
 * with a diagnostic. Sinks of both kinds share one namespace: the name is the store's sink
 * id, and two sinks of one name would share a delivery cursor. */
static int section_name_ok(struct parser *p, const struct section *s, const char *type,
			   const char *name)
{
	int named = s->type == S_METER || s->type == S_INFLUX || s->type == S_MQTT;

	if (named && !*name) {
		diag(p, 0, s->line, s, NULL, "needs a name (write [%s NAME], e.g. [%s house])",
		     type, type);
		return 0;
	}
	if (!named && *name) {
		diag(p, 0, s->line, s, NULL, "takes no name (write [%s])", type);
		return 0;
	}
	if (named && !valid_name(name)) {
		diag(p, 0, s->line, s, NULL,
		     "bad name '%s' (1..%d letters, digits, '_', '.' or '-')", name,
		     PL_CONFIG_NAME_MAX);
		return 0;
	}
	for (size_t i = 0; i + 1 < p->nsects; i++) {
		if (p->sects[i].type == s->type && strcmp(p->sects[i].label, s->label) == 0) {
			diag(p, 0, s->line, s, NULL,
			     "duplicate section (first at line %u; give each its own name)",
			     p->sects[i].line);
			return 0;
		}
		if ((s->type == S_INFLUX || s->type == S_MQTT) &&
		    (p->sects[i].type == S_INFLUX || p->sects[i].type == S_MQTT) &&
		    p->sects[i].type != s->type && strcmp(p->sects[i].label + strcspn(
			    p->sects[i].label, " ") + 1, name) == 0) {
			diag(p, 0, s->line, s, NULL,
			     "the name '%s' is already the sink [%s] (line %u): sinks of every kind "
			     "share one namespace, it is their delivery cursor in the store (give "
			     "each its own name)", name, p->sects[i].label, p->sects[i].line);
			return 0;
		}
	}
	return 1;
}

static void add_section_config(struct parser *p, struct section *s, const char *name);

/* Starts a section from the text between the brackets (already trimmed). */
static void begin_section(struct parser *p, const char *inner)
{
	static const char *const types[] = { "store", "meter", "influxdb", "mqtt", "http" };
	static const enum sect_type tvals[] = { S_STORE, S_METER, S_INFLUX, S_MQTT, S_HTTP };
	struct section *s, *all;
	char type[64];
	const char *name;
	size_t tl = strcspn(inner, " \t"), i;

	all = realloc(p->sects, (p->nsects + 1) * sizeof(*all));
	if (all == NULL) {
		p->nomem = 1;
		p->cur = -1;
		return;
	}
	p->sects = all;
	s = &all[p->nsects];
	memset(s, 0, sizeof(*s));
	s->line = p->line;
	s->type = S_BAD;
	p->cur = (int)p->nsects++;

	name = inner + tl;
	name += strspn(name, " \t");
	snprintf(type, sizeof(type), "%.*s", (int)(tl < 63 ? tl : 63), inner);
	if (*name)
		snprintf(s->label, sizeof(s->label), "%s %.*s", type, PL_CONFIG_NAME_MAX + 1, name);
	else
		snprintf(s->label, sizeof(s->label), "%s", type);

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(type, types[i]) == 0)
			s->type = tvals[i];
	if (s->type == S_BAD) {
		const char *near = nearest(type, types, sizeof(types) / sizeof(types[0]));

		if (near != NULL)
			diag(p, 0, s->line, s, NULL, "unknown section (did you mean [%s%s]?)", near,
			     strcmp(near, "store") && strcmp(near, "http") ? " NAME" : "");
		else
			diag(p, 0, s->line, s, NULL,
			     "unknown section (sections are [store], [meter NAME], "
			     "[influxdb NAME], [mqtt NAME] and [http])");
		return;
	}
	if (!section_name_ok(p, s, type, name)) {
		s->type = S_BAD;
		return;
	}
	add_section_config(p, s, name);
}

/* The meter's or the sink's configuration for section s, with its defaults. */
static void add_section_config(struct parser *p, struct section *s, const char *name)
{
	if (s->type == S_METER) {
		struct pl_config_meter *v = realloc(p->cfg->meters,
						    (p->cfg->nmeters + 1) * sizeof(*v));

		if (v == NULL) {
			p->nomem = 1;
			s->type = S_BAD;
			return;
		}
		p->cfg->meters = v;
		s->index = p->cfg->nmeters++;
		meter_defaults(&v[s->index]);
		v[s->index].name = xstrdup(p, name);
		v[s->index].line = s->line;
	} else if (s->type == S_INFLUX) {
		struct pl_config_influx *v = realloc(p->cfg->influx,
						     (p->cfg->ninflux + 1) * sizeof(*v));

		if (v == NULL) {
			p->nomem = 1;
			s->type = S_BAD;
			return;
		}
		p->cfg->influx = v;
		s->index = p->cfg->ninflux++;
		influx_defaults(&v[s->index]);
		v[s->index].name = xstrdup(p, name);
		v[s->index].line = s->line;
	} else if (s->type == S_MQTT) {
		struct pl_config_mqtt *v = realloc(p->cfg->mqtt, (p->cfg->nmqtt + 1) * sizeof(*v));

		if (v == NULL) {
			p->nomem = 1;
			s->type = S_BAD;
			return;
		}
		p->cfg->mqtt = v;
		s->index = p->cfg->nmqtt++;
		mqtt_defaults(&v[s->index]);
		v[s->index].name = xstrdup(p, name);
		v[s->index].line = s->line;
	}
}

/* ---- the line reader --------------------------------------------------------------------- */

/*
 * Reads the next line of the file into p->buf (LINE_KEEP bytes at most, NUL-terminated, line
 * end included), noting in p a longer line, a NUL byte, and the end of FILE_MAX. Returns its
 * length, or -1 at the end of the file (or of what may be read of it).
 */
static ssize_t read_file_line(struct parser *p)
{
	size_t len = 0;
	int c;

	if (p->bufcap < LINE_KEEP + 1) {
		char *b = realloc(p->buf, LINE_KEEP + 1);

		if (b == NULL) {
			p->nomem = 1;
			return -1;
		}
		p->buf = b;
		p->bufcap = LINE_KEEP + 1;
	}
	p->line_long = 0;
	p->line_nul = 0;
	while ((c = getc(p->f)) != EOF) {
		if (++p->total > FILE_MAX) {
			p->file_too_big = 1;
			return -1;
		}
		if (c == '\0')
			p->line_nul = 1;
		if (len < LINE_KEEP)
			p->buf[len++] = (char)c;
		else
			p->line_long = 1;
		if (c == '\n')
			break;
	}
	if (len == 0 && c == EOF)
		return -1;
	p->buf[len] = '\0';
	return (ssize_t)len;
}

/* The next line without its line end into p->buf; NULL at the end. */
static char *next_line(struct parser *p)
{
	size_t len;

	if (p->f != NULL) {
		ssize_t n = read_file_line(p);

		if (n < 0)
			return NULL;
		len = (size_t)n;
	} else {
		const char *end;

		if (p->text == NULL || *p->text == '\0')
			return NULL;
		end = strchr(p->text, '\n');
		len = end ? (size_t)(end - p->text) + 1 : strlen(p->text);
		if (len + 1 > p->bufcap) {
			char *b = realloc(p->buf, len + 1);

			if (b == NULL) {
				p->nomem = 1;
				return NULL;
			}
			p->buf = b;
			p->bufcap = len + 1;
		}
		memcpy(p->buf, p->text, len);
		p->buf[len] = '\0';
		p->text += len;
		p->line_long = 0;
		p->line_nul = 0;
	}
	while (len > 0 && (p->buf[len - 1] == '\n' || p->buf[len - 1] == '\r'))
		p->buf[--len] = '\0';
	p->line++;
	return p->buf;
}

static void rtrim(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
}

/*
 * The ini_reader: hands libinih one line at a time, numbered and checked here. Lines that are
 * wrong are reported and replaced by an empty line, so that libinih sees only good ones.
 */
static char *reader(char *str, int num, void *stream)
{
	struct parser *p = stream;
	char *s = next_line(p);

	if (s == NULL)
		return NULL;
	/* A NUL would silently cut the value short where libinih and the checks read it. */
	if (p->line_nul) {
		diag(p, 0, p->line, NULL, NULL, "contains a NUL byte (is this a text file?)");
		goto empty;
	}
	if (p->line == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	s += strspn(s, " \t");
	if (*s == '\0' || *s == ';' || *s == '#')
		goto empty;
	if (p->line_long || (int)strlen(s) + 3 > num) {
		diag(p, 0, p->line, NULL, NULL, "line too long (at most %d bytes)", num - 3);
		goto empty;
	}
	if (*s == '[') {
		char *end = strchr(s, ']'), *rest, inner[256];

		if (end == NULL) {
			diag(p, 0, p->line, NULL, NULL, "missing ']' in the section header");
			p->cur = -2; /* keys up to the next header belong nowhere; already reported */
			goto empty;
		}
		rest = end + 1 + strspn(end + 1, " \t");
		if (*rest != '\0' && *rest != ';' && *rest != '#') {
			diag(p, 0, p->line, NULL, NULL, "text after the section header: '%s'", rest);
			p->cur = -2;
			goto empty;
		}
		snprintf(inner, sizeof(inner), "%.*s", (int)(end - s - 1), s + 1);
		rtrim(inner);
		begin_section(p, inner + strspn(inner, " \t"));
		snprintf(str, (size_t)num, "%.*s\n", (int)(end - s + 1), s);
		return str;
	}
	{
		size_t k = strcspn(s, "=:");

		if (s[k] == '\0' || k == 0) {
			diag(p, 0, p->line, NULL, NULL,
			     "expected 'key = value' or '[section]', not '%s'", s);
			goto empty;
		}
	}
	snprintf(str, (size_t)num, "%s\n", s);
	return str;
empty:
	snprintf(str, (size_t)num, "\n");
	return str;
}

/* ---- values ------------------------------------------------------------------------------ */

static int parse_bool(const char *v, int *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

static void list_names(char *buf, size_t cap, const char *const *names)
{
	size_t i, n = 0;

	buf[0] = '\0';
	for (i = 0; names[i] != NULL && n < cap; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? "|" : "", names[i]);
}

static void set_string(struct parser *p, char **dst, const char *v)
{
	free(*dst);
	*dst = xstrdup(p, v);
}

/* Reads a secret from a file: refuses unreadable and empty files, warns of open modes. */
static void secret_from_file(struct parser *p, const struct section *s, const char *key,
			     const char *path, struct pl_config_secret *sec)
{
	char buf[SECRET_MAX + 1];
	struct stat st;
	ssize_t n;
	size_t len = 0;
	/* O_NONBLOCK: opening a FIFO would otherwise wait for a writer forever (it is refused
	 * below); it changes nothing for the regular file read here. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0) {
		diag(p, 0, p->line, s, key, "cannot read '%s': %s", path, strerror(errno));
		return;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		diag(p, 0, p->line, s, key, "'%s' is not a regular file", path);
		goto out_close;
	}
	if (st.st_mode & S_IROTH)
		diag(p, 1, p->line, s, key, "'%s' is readable by everyone (chmod o-rwx '%s')",
		     path, path);
	while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			diag(p, 0, p->line, s, key, "cannot read '%s': %s", path, strerror(errno));
			goto out_close;
		}
		len += (size_t)n;
	}
	if (len > SECRET_MAX) {
		diag(p, 0, p->line, s, key, "'%s' is too long for a secret (at most %d bytes)",
		     path, SECRET_MAX);
		goto out_close;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	buf[len] = '\0';
	if (len == 0 || strlen(buf) != len) {
		diag(p, 0, p->line, s, key, "'%s' %s", path,
		     len == 0 ? "is empty" : "contains a NUL byte");
		goto out_close;
	}
	sec->value = xstrdup(p, buf);
	sec->origin = xstrdup(p, path);
out_close:
	memset(buf, 0, sizeof(buf));
	close(fd);
}

static void set_secret(struct parser *p, const struct section *s, const struct key *k,
		       const char *v, struct pl_config_secret *sec)
{
	static const char *const suffix[] = { "", "_file", "_env" };
	char base[32], other[48];
	size_t i;

	/* The three ways to give a secret exclude each other. */
	snprintf(base, sizeof(base), "%.*s", (int)strcspn(k->name, "_"), k->name);
	for (i = 0; i < 3; i++) {
		unsigned at;

		snprintf(other, sizeof(other), "%s%s", base, suffix[i]);
		if (strcmp(other, k->name) == 0)
			continue;
		at = key_line(s, other);
		if (at) {
			diag(p, 0, p->line, s, k->name,
			     "conflicts with %s at line %u (give the %s one way only)", other, at,
			     base);
			return;
		}
	}
	if (p->no_secrets)
		return; /* a reader of the store: neither the file nor the variable is needed */
	switch (k->how) {
	case PL_CONFIG_SECRET_INLINE:
		/* as secret_from_file() warns of a secret file anyone can read */
		if (p->world_readable)
			diag(p, 1, p->line, s, k->name,
			     "the file is readable by everyone and holds this secret (chmod o-rwx "
			     "'%s', or use %s_file or %s_env)", p->name, base, base);
		sec->value = xstrdup(p, v);
		break;
	case PL_CONFIG_SECRET_FILE:
		secret_from_file(p, s, k->name, v, sec);
		break;
	case PL_CONFIG_SECRET_ENV: {
		const char *e;

		if (!isalpha((unsigned char)v[0]) && v[0] != '_') {
			diag(p, 0, p->line, s, k->name, "'%s' is not an environment variable name",
			     v);
			return;
		}
		e = getenv(v);
		if (e == NULL || *e == '\0') {
			diag(p, 0, p->line, s, k->name, "environment variable %s is %s", v,
			     e == NULL ? "not set" : "empty");
			return;
		}
		sec->value = xstrdup(p, e);
		sec->origin = xstrdup(p, v);
		break;
	}
	default:
		return;
	}
	if (sec->value != NULL)
		sec->from = k->how;
}

static void set_listen(struct parser *p, const struct section *s, const char *v,
		       struct pl_config_http *h)
{
	const char *colon = strrchr(v, ':');
	const char *host = v;
	size_t hl;
	char *endp;
	unsigned long port;

	if (colon == NULL || colon == v || colon[1] == '\0') {
		diag(p, 0, p->line, s, "listen", "'%s' is not HOST:PORT (e.g. 127.0.0.1:8080)", v);
		return;
	}
	hl = (size_t)(colon - v);
	if (v[0] == '[') {
		if (hl < 3 || v[hl - 1] != ']') {
			diag(p, 0, p->line, s, "listen", "'%s' is not [IPV6]:PORT (e.g. [::1]:8080)",
			     v);
			return;
		}
		host = v + 1;
		hl -= 2;
	} else if (memchr(v, ':', hl) != NULL) {
		diag(p, 0, p->line, s, "listen", "write an IPv6 address in brackets, e.g. [::1]:8080");
		return;
	}
	errno = 0;
	port = strtoul(colon + 1, &endp, 10);
	if (*endp != '\0' || !isdigit((unsigned char)colon[1]) || errno || port < 1 ||
	    port > 65535) {
		diag(p, 0, p->line, s, "listen", "bad port '%s' (1..65535)", colon + 1);
		return;
	}
	free(h->listen);
	free(h->host);
	h->listen = xstrdup(p, v);
	h->host = strndup(host, hl);
	if (h->host == NULL)
		p->nomem = 1;
	h->port = (uint16_t)port;
}

static void set_url(struct parser *p, const struct section *s, const struct key *k,
		    const char *v, char **field)
{
	if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) {
		diag(p, 0, p->line, s, k->name,
		     "'%s' is not an http:// or https:// URL (e.g. http://localhost:8086)", v);
		return;
	}
	{
		/* user:password@ in the URL would end up in logs: the URL is not a secret */
		const char *host = strstr(v, "://") + 3;
		size_t hostlen = strcspn(host, "/?#");

		if (memchr(host, '@', hostlen) != NULL) {
			diag(p, 0, p->line, s, k->name,
			     "credentials in the URL are not accepted (URLs are logged): use "
			     "username and password, or token, and their _file or _env forms");
			return;
		}
	}
	set_string(p, field, v);
}

/*
 * mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (an IPv6 address in brackets), nothing after it
 * but an optional '/': a broker has no path. No user:password@ (URLs are logged).
 */
static void set_mqtt_url(struct parser *p, const struct section *s, const char *v,
			 struct pl_config_mqtt *q)
{
	int tls = strncmp(v, "mqtts://", 8) == 0;
	const char *host, *end, *colon = NULL;
	size_t hl, len;
	unsigned long port = tls ? 8883 : 1883;

	if (!tls && strncmp(v, "mqtt://", 7) != 0) {
		diag(p, 0, p->line, s, "url", "'%s' is not an mqtt:// or mqtts:// URL (e.g. "
		     "mqtt://127.0.0.1:1883)", v);
		return;
	}
	host = v + (tls ? 8 : 7);
	len = strlen(host);
	if (len > 0 && host[len - 1] == '/')
		len--;
	if (memchr(host, '@', len) != NULL) {
		diag(p, 0, p->line, s, "url", "credentials in the URL are not accepted (URLs are "
		     "logged): use username and password_file");
		return;
	}
	if (memchr(host, '/', len) != NULL || memchr(host, '?', len) != NULL ||
	    memchr(host, '#', len) != NULL) {
		diag(p, 0, p->line, s, "url", "'%s': a broker URL has no path (write "
		     "mqtt://HOST[:PORT]; topics are set with topic_prefix)", v);
		return;
	}
	end = host + len;
	if (host[0] == '[') {
		const char *rb = memchr(host, ']', len);

		if (rb == NULL || rb == host + 1 || (rb + 1 != end && rb[1] != ':')) {
			diag(p, 0, p->line, s, "url", "'%s': bad IPv6 address (write "
			     "mqtt://[::1]:1883)", v);
			return;
		}
		colon = rb + 1 != end ? rb + 1 : NULL;
		host++;
		hl = (size_t)(rb - host);
	} else {
		colon = memchr(host, ':', len);
		hl = colon ? (size_t)(colon - host) : len;
	}
	if (hl == 0) {
		diag(p, 0, p->line, s, "url", "'%s' names no host (e.g. mqtt://127.0.0.1:1883)", v);
		return;
	}
	if (colon != NULL) {
		char digits[8];
		size_t dl = (size_t)(end - colon - 1);

		if (dl == 0 || dl > 5 || strspn(colon + 1, "0123456789") < dl) {
			diag(p, 0, p->line, s, "url", "'%s': bad port '%.*s' (1..65535)", v,
			     (int)(dl > 16 ? 16 : dl), colon + 1);
			return;
		}
		memcpy(digits, colon + 1, dl);
		digits[dl] = '\0';
		port = strtoul(digits, NULL, 10);
		if (port < 1 || port > 65535) {
			diag(p, 0, p->line, s, "url", "'%s': bad port '%s' (1..65535)", v, digits);
			return;
		}
	}
	free(q->url);
	free(q->host);
	q->url = xstrdup(p, v);
	q->host = strndup(host, hl);
	if (q->host == NULL)
		p->nomem = 1;
	q->port = (uint16_t)port;
	q->tls = tls;
}

/* A topic prefix: one or more levels, no wildcards, no empty level ('/' at either end or
 * twice), no control bytes; at most 128 bytes. k->min: may be empty. */
static void set_topic(struct parser *p, const struct section *s, const struct key *k,
		      const char *v, char **field)
{
	size_t len = strlen(v);

	if (len == 0 || strcmp(v, "\"\"") == 0) {
		set_string(p, field, "");
		return;
	}
	if (len > 128) {
		diag(p, 0, p->line, s, k->name, "longer than 128 bytes");
		return;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '+' || c == '#') {
			diag(p, 0, p->line, s, k->name, "'%s' has the wildcard '%c' (a prefix "
			     "names topics, it matches none)", v, c);
			return;
		}
		if (c < 0x20 || c == 0x7f) {
			diag(p, 0, p->line, s, k->name, "has a control character");
			return;
		}
	}
	if (v[0] == '/' || v[len - 1] == '/' || strstr(v, "//") != NULL) {
		diag(p, 0, p->line, s, k->name, "'%s' has an empty level ('/' at either end or "
		     "twice; write e.g. home/powerlogger)", v);
		return;
	}
	set_string(p, field, v);
}

/* An MQTT client id, also the Home Assistant node id and a topic level (P/sync/ID). */
static int valid_client_id(const char *v)
{
	return valid_name(v);
}

static void set_uint(struct parser *p, const struct section *s, const struct key *k,
		     const char *v, uint32_t *field)
{
	size_t len = strlen(v);
	unsigned long long x;

	if (strspn(v, "0123456789") != len) {
		diag(p, 0, p->line, s, k->name, "'%s' is not a whole number (%" PRIu32 "..%" PRIu32
		     ")", v, k->min, k->max);
		return;
	}
	errno = 0;
	x = strtoull(v, NULL, 10);
	if (errno != 0 || x < k->min || x > k->max) {
		diag(p, 0, p->line, s, k->name, "%s is out of range (%" PRIu32 "..%" PRIu32 ")", v,
		     k->min, k->max);
		return;
	}
	*field = (uint32_t)x;
}

static void set_enum(struct parser *p, const struct section *s, const struct key *k,
		     const char *v, int *field)
{
	char names[128];

	for (size_t i = 0; k->names[i] != NULL; i++) {
		if (strcmp(v, k->names[i]) == 0) {
			*field = k->values[i];
			return;
		}
	}
	list_names(names, sizeof(names), k->names);
	diag(p, 0, p->line, s, k->name, "'%s' is not one of %s", v, names);
}

static void set_value(struct parser *p, const struct section *s, const struct key *k,
		      const char *v)
{
	char *field = (char *)section_base(p, s) + k->off;

	if (*v == '\0' && !(k->kind == K_TOPIC && k->min)) {
		diag(p, 0, p->line, s, k->name, "needs a value%s",
		     k->kind == K_TOPIC ? " (a prefix cannot be empty)" : "");
		return;
	}
	switch (k->kind) {
	case K_STR:
		set_string(p, (char **)(void *)field, v);
		break;
	case K_RFILE:
		if (access(v, R_OK) != 0) {
			diag(p, 0, p->line, s, k->name, "cannot read '%s': %s", v, strerror(errno));
			return;
		}
		set_string(p, (char **)(void *)field, v);
		break;
	case K_URL:
		set_url(p, s, k, v, (char **)(void *)field);
		break;
	case K_UINT:
		set_uint(p, s, k, v, (uint32_t *)(void *)field);
		break;
	case K_ENUM:
		set_enum(p, s, k, v, (int *)(void *)field);
		break;
	case K_BOOL:
		if (parse_bool(v, (int *)(void *)field) != 0)
			diag(p, 0, p->line, s, k->name, "'%s' is not yes or no", v);
		break;
	case K_KWH: {
		int64_t uwh;
		int rc = pl_trace_parse_decimal(v, strlen(v), 9, &uwh);

		if (rc != 0 || uwh < 0) {
			diag(p, 0, p->line, s, k->name, "'%s' is not an energy in kWh >= 0 "
			     "(e.g. 12345.678)", v);
			return;
		}
		*(int64_t *)(void *)field = uwh;
		break;
	}
	case K_SPEED: {
		int64_t milli;
		int rc = pl_trace_parse_decimal(v, strlen(v), 3, &milli);

		if (rc != 0 || milli < 0 || milli > (int64_t)k->max * 1000) {
			diag(p, 0, p->line, s, k->name, "'%s' is not a factor 0..%" PRIu32
			     " (0: as fast as possible)", v, k->max);
			return;
		}
		*(double *)(void *)field = (double)milli / 1000.0;
		break;
	}
	case K_SECRET:
		set_secret(p, s, k, v, (struct pl_config_secret *)(void *)field);
		break;
	case K_LISTEN:
		set_listen(p, s, v, (struct pl_config_http *)(void *)field);
		break;
	case K_MQTT_URL:
		set_mqtt_url(p, s, v, (struct pl_config_mqtt *)(void *)field);
		break;
	case K_TOPIC:
		set_topic(p, s, k, v, (char **)(void *)field);
		break;
	case K_CLIENT:
		if (!valid_client_id(v)) {
			diag(p, 0, p->line, s, k->name, "bad client id '%s' (1..%d letters, digits, "
			     "'_', '.' or '-': it is also a topic level and Home Assistant's node "
			     "id)", v, PL_CONFIG_NAME_MAX);
			return;
		}
		set_string(p, (char **)(void *)field, v);
		break;
	case K_PRICE: {
		int64_t micro;
		int rc = pl_trace_parse_decimal(v, strlen(v), 6, &micro);

		if (rc != 0 || micro < 0 || micro > INT64_C(1000000000000)) {
			diag(p, 0, p->line, s, k->name, "'%s' is not a price per kWh >= 0 "
			     "(e.g. 0.30)", v);
			return;
		}
		*(int64_t *)(void *)field = micro;
		break;
	}
	case K_CURRENCY: {
		size_t len = strlen(v);

		if (len > 16) {
			diag(p, 0, p->line, s, k->name, "longer than 16 bytes (a short name such as "
			     "EUR or €)");
			return;
		}
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)v[i];

			if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
				diag(p, 0, p->line, s, k->name, "'%s' has a control character, a quote "
				     "or a backslash (a short name such as EUR or €)", v);
				return;
			}
		}
		set_string(p, (char **)(void *)field, v);
		break;
	}
	}
}

static int handler(void *user, const char *section, const char *name, const char *value,
		   int lineno)
{
	struct parser *p = user;
	struct section *s;
	const struct key *keys;
	int i;

	(void)section; /* the reader tracks sections */
	(void)lineno;  /* and numbers the lines */
	if (name == NULL || value == NULL)
		return 1; /* a section start, from builds that report them */
	if (p->cur == -2)
		return 1;
	if (p->cur < 0) {
		diag(p, 0, p->line, NULL, name,
		     "key outside any section (put it under [store], [meter NAME], ...)");
		return 1;
	}
	s = &p->sects[p->cur];
	keys = keys_of(s->type);
	if (keys == NULL)
		return 1; /* a bad or unsupported section, reported at its header */
	i = key_index(keys, name);
	if (i < 0) {
		const char *cands[MAX_KEYS];
		const char *near;
		size_t n;

		for (n = 0; keys[n].name != NULL; n++)
			cands[n] = keys[n].name;
		near = nearest(name, cands, n);
		if (near != NULL)
			diag(p, 0, p->line, s, name, "unknown key (did you mean %s?)", near);
		else
			diag(p, 0, p->line, s, name, "unknown key");
		return 1;
	}
	if (s->key_line[i]) {
		diag(p, 0, p->line, s, name, "duplicate key (first set at line %u)",
		     s->key_line[i]);
		return 1;
	}
	s->key_line[i] = p->line;
	set_value(p, s, &keys[i], value);
	return 1;
}

/* ---- whole sections ---------------------------------------------------------------------- */

/* What a source's own check sees of a section (config/keys.h). */
struct pl_config_section {
	struct parser *p;
	const struct section *s;
};

static void missing(struct parser *p, const struct section *s, const char *key,
		    const char *why)
{
	diag(p, 0, s->line, s, NULL, "missing key '%s' (%s)", key, why);
}

/* A key that must not be set: reports it at its own line. */
static void not_here(struct parser *p, const struct section *s, const char *key,
		     const char *why)
{
	unsigned at = key_line(s, key);

	if (at)
		diag(p, 0, at, s, key, "%s", why);
}

/* Keys of one kind of source only: set elsewhere, they are reported. */
static void only_for(struct parser *p, const struct section *s, int ok, const char *const *keys,
		     const char *why)
{
	if (ok)
		return;
	for (; *keys; keys++)
		not_here(p, s, *keys, why);
}

unsigned pl_config_key_line(const struct pl_config_section *s, const char *key)
{
	return key_line(s->s, key);
}

void pl_config_missing(struct pl_config_section *s, const char *key, const char *why)
{
	missing(s->p, s->s, key, why);
}

void pl_config_not_here(struct pl_config_section *s, const char *key, const char *why)
{
	not_here(s->p, s->s, key, why);
}

/*
 * meter_type and the meter constant. A disc's constant is its revolutions per kWh, written
 * rev_per_kwh (imp_per_kwh is taken too: it is the same number to the daemon, one pulse per
 * revolution), and it has no default: the LED meters' 1000 would be off by a factor of 3 to
 * 13 on every disc, so a missing one is an error, not a warning. rev_per_kwh on an LED meter
 * is a mistake of the type (or of the key); both keys at once are one constant given twice.
 */
static void check_meter_type(struct parser *p, const struct section *s,
			     const struct pl_config_meter *m)
{
	unsigned imp = key_line(s, "imp_per_kwh"), rev = key_line(s, "rev_per_kwh");

	if (imp && rev)
		diag(p, 0, imp > rev ? imp : rev, s, imp > rev ? "imp_per_kwh" : "rev_per_kwh",
		     "the meter constant is already set at line %u (rev_per_kwh and imp_per_kwh "
		     "are the same key: give one)", imp > rev ? rev : imp);
	if (m->meter_type == PL_METER_DISC && !imp && !rev)
		missing(p, s, "rev_per_kwh", "meter_type = disc needs the disc's constant, printed "
			"on the meter as rev/kWh or U/kWh, typically 75..375");
	if (m->meter_type != PL_METER_DISC)
		not_here(p, s, "rev_per_kwh", "applies to meter_type = disc only (an LED meter's "
			 "constant is imp_per_kwh; set meter_type = disc for a Ferraris meter)");
}

static void check_meter(struct parser *p, const struct section *s)
{
	struct pl_config_section sec = { p, s };
	struct pl_config_meter *m = &p->cfg->meters[s->index];
	enum pl_config_source src = m->source;
	int live = src == PL_CONFIG_SOURCE_IIO || src == PL_CONFIG_SOURCE_GPIO ||
		   src == PL_CONFIG_SOURCE_SERIAL;
	int edges = src == PL_CONFIG_SOURCE_GPIO || src == PL_CONFIG_SOURCE_SERIAL;
	static const char *const file_keys[] = { "file", "format", NULL };
	static const char *const live_keys[] = { "device", "sysfs_root", "dev_root", NULL };
	static const char *const edge_keys[] = { "active_low", "debounce_ms", NULL };
	static const char *const sim_keys[] = { "profile", NULL };

	only_for(p, s, src == PL_CONFIG_SOURCE_FILE, file_keys, "applies to source = file only");
	only_for(p, s, src == PL_CONFIG_SOURCE_SIM, sim_keys, "applies to source = sim only");
	only_for(p, s, live, live_keys, "applies to source = iio, gpio or serial only");
	only_for(p, s, src == PL_CONFIG_SOURCE_IIO, pl_iio_keys, "applies to source = iio only");
	only_for(p, s, edges, edge_keys, "applies to source = gpio or serial only");
	only_for(p, s, src == PL_CONFIG_SOURCE_GPIO, pl_gpio_keys, "applies to source = gpio only");
	only_for(p, s, src == PL_CONFIG_SOURCE_SERIAL, pl_serial_keys,
		 "applies to source = serial only");
	/* what each live source needs of its keys, it checks itself */
	pl_live_check_keys(&sec, m);
	if (live)
		not_here(p, s, "speed", "applies to source = file or sim only (live sources run "
			 "at the pace of the world)");
	if (edges)
		not_here(p, s, "polarity", "applies to analog sources only (sim, file, iio); for "
			 "gpio and serial use active_low");
	if (src == PL_CONFIG_SOURCE_IIO && !key_line(s, "rate"))
		m->rate_hz = 1000;
	if (src == PL_CONFIG_SOURCE_FILE) {
		if (!key_line(s, "file"))
			missing(p, s, "file", "source = file needs file = PATH");
		if (m->format != PL_TRACE_CSV && !key_line(s, "rate"))
			missing(p, s, "rate", "raw formats need rate = HZ");
		if (m->format == PL_TRACE_CSV)
			not_here(p, s, "rate", "applies to raw formats only (format = s16le|u16le)");
	} else if (src != PL_CONFIG_SOURCE_IIO) {
		not_here(p, s, "rate", "applies to source = file or iio only");
	}
	check_meter_type(p, s, m);
	if (m->meter_type == PL_METER_LED && src != PL_CONFIG_SOURCE_SIM &&
	    !key_line(s, "imp_per_kwh"))
		diag(p, 1, s->line, s, NULL, "imp_per_kwh not set: assuming 1000 "
		     "(set your meter's constant, printed on it as imp/kWh)");
	if (edges && !key_line(s, "debounce_ms"))
		m->debounce_us = m->meter_type == PL_METER_DISC ? 20000 : 2000;
	else
		m->debounce_us *= 1000;
	if (!m->sysfs_root)
		set_string(p, &m->sysfs_root, "/sys");
	if (!m->dev_root)
		set_string(p, &m->dev_root, "/dev");
}

static void check_influx(struct parser *p, const struct section *s)
{
	const struct pl_config_influx *x = &p->cfg->influx[s->index];
	int have_pw = key_line(s, "password") || key_line(s, "password_file") ||
		      key_line(s, "password_env");
	int have_token = key_line(s, "token") || key_line(s, "token_file") ||
			 key_line(s, "token_env");

	if (!key_line(s, "url"))
		missing(p, s, "url", "e.g. url = http://localhost:8086");
	switch (x->api) {
	case 1:
		if (!key_line(s, "database"))
			missing(p, s, "database", "api = 1 needs database");
		if (key_line(s, "username") && !have_pw)
			missing(p, s, "password", "username needs password, password_file or "
				"password_env");
		if (have_pw && !key_line(s, "username"))
			missing(p, s, "username", "a password needs a username");
		not_here(p, s, "org", "applies to api = 2 only");
		not_here(p, s, "bucket", "applies to api = 2 only");
		not_here(p, s, "token", "applies to api = 2 or 3 (api = 1 uses username/password)");
		not_here(p, s, "token_file", "applies to api = 2 or 3");
		not_here(p, s, "token_env", "applies to api = 2 or 3");
		break;
	case 2:
		if (!key_line(s, "org"))
			missing(p, s, "org", "api = 2 needs org, bucket and a token");
		if (!key_line(s, "bucket"))
			missing(p, s, "bucket", "api = 2 needs org, bucket and a token");
		if (!have_token)
			missing(p, s, "token", "api = 2 needs token, token_file or token_env");
		not_here(p, s, "database", "applies to api = 1 or 3 (api = 2 uses bucket)");
		break;
	case 3:
		if (!key_line(s, "database"))
			missing(p, s, "database", "api = 3 needs database and a token");
		if (!have_token)
			missing(p, s, "token", "api = 3 needs token, token_file or token_env");
		not_here(p, s, "org", "applies to api = 2 only");
		not_here(p, s, "bucket", "applies to api = 2 only");
		break;
	default:
		break;
	}
	if (x->api != 1) {
		not_here(p, s, "retention_policy", "applies to api = 1 only");
		not_here(p, s, "username", "applies to api = 1 only");
		not_here(p, s, "password", "applies to api = 1 only");
		not_here(p, s, "password_file", "applies to api = 1 only");
		not_here(p, s, "password_env", "applies to api = 1 only");
		not_here(p, s, "create_database", "applies to api = 1 only");
	}
	if (x->url != NULL && strncmp(x->url, "http://", 7) == 0)
		not_here(p, s, "ca_file", "applies to https:// URLs only");
}

/* "powerlogger-<hostname>", the host name cut at its first '.' and reduced to a client id's
 * characters ([A-Za-z0-9_-]; others become '-'). */
static void default_client_id(char *buf, size_t cap)
{
	char host[256] = "";
	size_t n;

	if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "host");
	host[sizeof(host) - 1] = '\0';
	host[strcspn(host, ".")] = '\0';
	n = (size_t)snprintf(buf, cap, "powerlogger-%.40s", host);
	for (size_t i = 12; i < n && i < cap; i++)
		if (!isalnum((unsigned char)buf[i]) && buf[i] != '_' && buf[i] != '-')
			buf[i] = '-';
}

static void check_mqtt(struct parser *p, const struct section *s)
{
	struct pl_config_mqtt *q = &p->cfg->mqtt[s->index];
	int have_pw = key_line(s, "password") || key_line(s, "password_file") ||
		      key_line(s, "password_env");

	if (!key_line(s, "url"))
		missing(p, s, "url", "e.g. url = mqtt://127.0.0.1:1883");
	if (have_pw && !key_line(s, "username"))
		missing(p, s, "username", "MQTT sends a password only with a user name");
	if (q->url != NULL && !q->tls)
		not_here(p, s, "ca_file", "applies to mqtts:// URLs only");
	if (q->qos == 2 && key_line(s, "qos"))
		diag(p, 0, key_line(s, "qos"), s, "qos", "2 is not used (exactly once comes from "
		     "the delivery cursor and the marks in the retained state, over QoS 1; "
		     "write qos = 1)");
	else if (q->qos == 0)
		diag(p, 1, key_line(s, "qos"), s, "qos", "0: the cursor moves once a message is "
		     "written to the socket, not on the broker's PUBACK, so a disconnect can lose "
		     "intervals (1 is the default)");
	if (!q->client_id) {
		char id[PL_CONFIG_NAME_MAX + 1];

		default_client_id(id, sizeof(id));
		set_string(p, &q->client_id, id);
	}
	if (!q->topic_prefix)
		set_string(p, &q->topic_prefix, "powerlogger");
	if (!q->discovery_prefix)
		set_string(p, &q->discovery_prefix, "homeassistant");
}

static const char *enum_name(const char *const *names, const int *values, int v);

/* The same GPIO line, or the same modem line of a serial port, under two meters: the second
 * would only ever find it busy or double-count it, so it is refused here, at the second
 * section. */
static void check_shared_inputs(struct parser *p)
{
	for (size_t i = 0; i < p->nsects; i++) {
		const struct section *a = &p->sects[i];
		const struct pl_config_meter *ma;

		if (a->type != S_METER)
			continue;
		ma = &p->cfg->meters[a->index];
		if ((ma->source != PL_CONFIG_SOURCE_GPIO && ma->source != PL_CONFIG_SOURCE_SERIAL) ||
		    ma->device == NULL)
			continue;
		for (size_t j = i + 1; j < p->nsects; j++) {
			const struct section *b = &p->sects[j];
			const struct pl_config_meter *mb;

			if (b->type != S_METER)
				continue;
			mb = &p->cfg->meters[b->index];
			if (mb->source != ma->source || mb->device == NULL ||
			    strcmp(mb->device, ma->device) != 0 ||
			    (ma->source == PL_CONFIG_SOURCE_GPIO && mb->channel != ma->channel) ||
			    (ma->source == PL_CONFIG_SOURCE_SERIAL && mb->modem_line != ma->modem_line))
				continue; /* (one adapter, S0 on CTS and another on DCD: fine) */
			if (ma->source == PL_CONFIG_SOURCE_GPIO)
				diag(p, 0, b->line, b, NULL, "%s line %" PRIu32 " is already read by "
				     "[%s] (line %u): one line, one meter", mb->device, mb->channel,
				     a->label, a->line);
			else
				diag(p, 0, b->line, b, NULL, "%s pin %s is already read by [%s] (line "
				     "%u): one modem line, one meter (another pin of the same port is "
				     "fine)", mb->device,
				     enum_name(pl_serial_pin_names, index_values, mb->modem_line),
				     a->label, a->line);
		}
	}
}

/* A currency names the price's unit: alone it would label nothing. */
static void check_http(struct parser *p, const struct section *s)
{
	unsigned at = key_line(s, "currency");

	if (at && p->cfg->http.price_micro < 0)
		diag(p, 1, at, s, "currency", "has no effect without price_per_kwh (e.g. "
		     "price_per_kwh = 0.30)");
}

static void check_sections(struct parser *p)
{
	size_t i;

	for (i = 0; i < p->nsects; i++) {
		if (p->sects[i].type == S_METER)
			check_meter(p, &p->sects[i]);
		else if (p->sects[i].type == S_INFLUX)
			check_influx(p, &p->sects[i]);
		else if (p->sects[i].type == S_MQTT)
			check_mqtt(p, &p->sects[i]);
		else if (p->sects[i].type == S_HTTP)
			check_http(p, &p->sects[i]);
	}
	check_shared_inputs(p);
}

/* ---- the entry points -------------------------------------------------------------------- */

static void secret_free(struct pl_config_secret *s)
{
	if (s->value != NULL)
		memset(s->value, 0, strlen(s->value));
	free(s->value);
	free(s->origin);
}

void pl_config_free(struct pl_config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->store.path);
	for (i = 0; i < cfg->nmeters; i++) {
		free(cfg->meters[i].name);
		free(cfg->meters[i].file);
		free(cfg->meters[i].profile);
		free(cfg->meters[i].device);
		free(cfg->meters[i].trigger);
		free(cfg->meters[i].sysfs_root);
		free(cfg->meters[i].dev_root);
	}
	free(cfg->meters);
	for (i = 0; i < cfg->ninflux; i++) {
		struct pl_config_influx *x = &cfg->influx[i];

		free(x->name);
		free(x->url);
		free(x->database);
		free(x->retention_policy);
		free(x->org);
		free(x->bucket);
		free(x->username);
		secret_free(&x->password);
		secret_free(&x->token);
		free(x->ca_file);
	}
	free(cfg->influx);
	for (i = 0; i < cfg->nmqtt; i++) {
		struct pl_config_mqtt *q = &cfg->mqtt[i];

		free(q->name);
		free(q->url);
		free(q->host);
		free(q->username);
		secret_free(&q->password);
		free(q->ca_file);
		free(q->client_id);
		free(q->topic_prefix);
		free(q->discovery_prefix);
	}
	free(cfg->mqtt);
	free(cfg->http.listen);
	free(cfg->http.host);
	free(cfg->http.currency);
	free(cfg);
}

void pl_config_diags_free(struct pl_config_diags *d)
{
	size_t i;

	if (d == NULL)
		return;
	for (i = 0; i < d->n; i++)
		free(d->v[i].text);
	free(d->v);
	memset(d, 0, sizeof(*d));
}

void pl_config_diags_print(const struct pl_config_diags *d, FILE *f)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		fprintf(f, "%s\n", d->v[i].text);
}

static int parse(struct parser *p, struct pl_config **out)
{
	struct pl_config_diags own = { 0 };
	size_t errors_before;
	int rc;

	*out = NULL;
	if (p->diags == NULL)
		p->diags = &own;
	errors_before = p->diags->errors;
	p->cur = -1;
	p->cfg = calloc(1, sizeof(*p->cfg));
	if (p->cfg == NULL) {
		rc = -PL_ENOMEM;
		goto out;
	}
	p->cfg->path = xstrdup(p, p->name);
	p->cfg->store.path = xstrdup(p, "./powerlogger.db");
	p->cfg->store.merge_s = 900;
	p->cfg->http.price_micro = -1;

	rc = ini_parse_stream(reader, p, handler, p);
	if (rc == -2) {
		p->nomem = 1;
	} else if (rc != 0 && p->diags->errors == errors_before) {
		/* Not expected: the reader passes only lines libinih accepts. */
		diag(p, 0, (unsigned)rc, NULL, NULL, "libinih refused this line");
	}
	if (p->f != NULL && ferror(p->f)) {
		diag(p, 0, p->line, NULL, NULL, "read error: %s", strerror(errno));
		rc = -PL_EIO;
		goto out;
	}
	if (p->file_too_big) {
		diag(p, 0, p->line, NULL, NULL, "larger than %d bytes: not a configuration file "
		     "(reading stopped here)", FILE_MAX);
		rc = -PL_EINVAL;
		goto out;
	}
	check_sections(p);
	/* Without a meter `run` would wait forever and log nothing; with a sink it can still
	 * deliver what the store holds (`run --until-drained`, which is how a backlog is
	 * forwarded from a store whose meter has gone). The built-in configuration of a `run`
	 * without -c always has a meter; tests parse fragments without. */
	if (p->need_meter && p->cfg->nmeters == 0 && p->cfg->ninflux == 0 && p->cfg->nmqtt == 0)
		diag(p, 0, 0, NULL, NULL, "no [meter NAME] section and no sink: there is nothing "
		     "to log and nowhere to send (see docs/powerlogger.example.ini)");
	else if (p->need_meter && p->cfg->nmeters == 0)
		diag(p, 1, 0, NULL, NULL, "no [meter NAME] section: `run` only delivers what the "
		     "store holds, with --until-drained (see docs/powerlogger.example.ini)");
	if (p->nomem)
		rc = -PL_ENOMEM;
	else if (p->diags->errors > errors_before)
		rc = -PL_EINVAL;
	else
		rc = 0;
out:
	if (rc == 0) {
		*out = p->cfg;
	} else {
		pl_config_free(p->cfg);
	}
	p->cfg = NULL;
	free(p->sects);
	free(p->buf);
	pl_config_diags_free(&own);
	return rc;
}

int pl_config_parse_string(const char *name, const char *text, struct pl_config **out,
			   struct pl_config_diags *diags)
{
	struct parser p = { .name = name, .text = text, .diags = diags };

	return parse(&p, out);
}

int pl_config_load(const char *path, struct pl_config **out, struct pl_config_diags *diags)
{
	return pl_config_load_flags(path, 0, out, diags);
}

int pl_config_load_flags(const char *path, unsigned flags, struct pl_config **out,
			 struct pl_config_diags *diags)
{
	struct parser p = { .name = path, .diags = diags, .need_meter = 1,
			    .no_secrets = (flags & PL_CONFIG_NO_SECRETS) != 0 };
	struct pl_config_diags own = { 0 };
	const char *bad = NULL;
	struct stat st;
	int fd, rc, e = 0;

	*out = NULL;
	if (diags == NULL)
		p.diags = &own;
	/* O_NONBLOCK: a FIFO with no writer would block the open; it is refused below anyway. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		e = errno;
	else if (fstat(fd, &st) != 0)
		e = errno;
	else if (S_ISDIR(st.st_mode))
		bad = "is a directory";
	else if (!S_ISREG(st.st_mode))
		bad = "is not a regular file (a FIFO or a device is not a configuration)";
	else if (st.st_size > FILE_MAX)
		bad = "is larger than 1 MiB: not a configuration file";
	else if (fcntl(fd, F_SETFL, 0) != 0 || (p.f = fdopen(fd, "r")) == NULL)
		e = errno;
	if (p.f == NULL) {
		if (bad != NULL)
			diag(&p, 0, 0, NULL, NULL, "%s", bad);
		else
			diag(&p, 0, 0, NULL, NULL, "cannot open: %s", strerror(e));
		if (fd >= 0)
			close(fd);
		rc = p.nomem ? -PL_ENOMEM : bad != NULL ? -PL_EINVAL : -PL_EIO;
		pl_config_diags_free(&own);
		return rc;
	}
	p.world_readable = (st.st_mode & S_IROTH) != 0;
	rc = parse(&p, out);
	fclose(p.f);
	pl_config_diags_free(&own);
	return rc;
}

/* ---- the summary ------------------------------------------------------------------------- */

const char *pl_config_source_name(enum pl_config_source s)
{
	return (unsigned)s < sizeof(source_values) / sizeof(source_values[0]) ? source_names[s]
									       : "?";
}

static const char *enum_name(const char *const *names, const int *values, int v)
{
	size_t i;

	for (i = 0; names[i] != NULL; i++)
		if (values[i] == v)
			return names[i];
	return "?";
}

/* Where a secret comes from, never the secret. */
static void print_secret(FILE *f, const char *what, const struct pl_config_secret *s)
{
	switch (s->from) {
	case PL_CONFIG_SECRET_INLINE:
		fprintf(f, ", %s (redacted, in the file)", what);
		break;
	case PL_CONFIG_SECRET_FILE:
		fprintf(f, ", %s (redacted, from file %s)", what, s->origin);
		break;
	case PL_CONFIG_SECRET_ENV:
		fprintf(f, ", %s (redacted, from $%s)", what, s->origin);
		break;
	default:
		break;
	}
}

int pl_config_dump(const struct pl_config *cfg, FILE *f)
{
	size_t i;

	fprintf(f, "store: %s", cfg->store.path);
	if (cfg->store.retention_days)
		fprintf(f, ", keep %" PRIu32 " days", cfg->store.retention_days);
	if (cfg->store.max_size_mb)
		fprintf(f, ", at most %" PRIu32 " MB", cfg->store.max_size_mb);
	if (cfg->store.merge_s)
		fprintf(f, ", merged every %" PRIu32 " s", cfg->store.merge_s);
	else
		fprintf(f, ", no intake");
	fprintf(f, "\nmeters: %zu\n", cfg->nmeters);
	for (i = 0; i < cfg->nmeters; i++) {
		const struct pl_config_meter *m = &cfg->meters[i];
		const char *fmt = enum_name(format_names, format_values, m->format);

		fprintf(f, "  %s: source %s", m->name, pl_config_source_name(m->source));
		if (m->source == PL_CONFIG_SOURCE_FILE) {
			fprintf(f, " %s (%s", m->file, fmt);
			if (m->rate_hz)
				fprintf(f, ", %" PRIu32 " Hz", m->rate_hz);
			fputc(')', f);
		} else if (m->source == PL_CONFIG_SOURCE_SIM) {
			fprintf(f, " (profile %s)", m->profile ? m->profile : "built-in");
		} else if (m->source == PL_CONFIG_SOURCE_IIO) {
			fprintf(f, " %s channel %" PRIu32 " (%s, %" PRIu32 " Hz)", m->device, m->channel,
				m->iio_mode == PL_IIO_BUFFER ? "buffered" : "polled", m->rate_hz);
		} else if (m->source == PL_CONFIG_SOURCE_GPIO) {
			fprintf(f, " %s line %" PRIu32 " (bias %s%s, debounce %" PRIu32 " ms)",
				m->device, m->channel,
				enum_name(pl_gpio_bias_names, index_values, m->bias),
				m->active_low ? ", active low" : "", m->debounce_us / 1000);
		} else {
			fprintf(f, " %s %s (%sdebounce %" PRIu32 " ms)", m->device,
				enum_name(pl_serial_pin_names, index_values, m->modem_line),
				m->active_low ? "active low, " : "", m->debounce_us / 1000);
		}
		if (m->speed == 0)
			fputs(", as fast as possible", f);
		else if (m->speed != 1)
			fprintf(f, ", speed %g", m->speed);
		fprintf(f, ", %s, %" PRIu32 " %s/kWh, interval %" PRIu32 " s",
			pl_meter_type_name(m->meter_type), m->imp_per_kwh,
			m->meter_type == PL_METER_DISC ? "rev" : "imp", m->interval_s);
		if (m->max_power_w)
			fprintf(f, ", max %" PRIu32 " W", m->max_power_w);
		if (m->start_register_uwh)
			fprintf(f, ", register from %" PRId64 ".%09" PRId64 " kWh",
				m->start_register_uwh / 1000000000,
				m->start_register_uwh % 1000000000);
		fprintf(f, ", polarity %s\n",
			enum_name(polarity_names, polarity_values, m->polarity));
	}
	fprintf(f, "sinks: %zu\n", cfg->ninflux + cfg->nmqtt);
	for (i = 0; i < cfg->ninflux; i++) {
		const struct pl_config_influx *x = &cfg->influx[i];

		fprintf(f, "  %s: influxdb api %d %s", x->name, x->api, x->url);
		if (x->database)
			fprintf(f, ", database %s", x->database);
		if (x->retention_policy)
			fprintf(f, ", rp %s", x->retention_policy);
		if (x->org)
			fprintf(f, ", org %s, bucket %s", x->org, x->bucket);
		if (x->username)
			fprintf(f, ", user %s", x->username);
		print_secret(f, "password", &x->password);
		print_secret(f, "token", &x->token);
		fprintf(f, ", precision %s%s\n",
			enum_name(precision_names, precision_values, x->precision),
			x->gzip ? ", gzip" : "");
	}
	for (i = 0; i < cfg->nmqtt; i++) {
		const struct pl_config_mqtt *q = &cfg->mqtt[i];

		fprintf(f, "  %s: mqtt %s, client id %s, topics %s/", q->name, q->url, q->client_id,
			q->topic_prefix);
		if (q->discovery_prefix[0])
			fprintf(f, ", discovery %s/", q->discovery_prefix);
		else
			fputs(", no discovery", f);
		if (q->username)
			fprintf(f, ", user %s", q->username);
		print_secret(f, "password", &q->password);
		if (q->tls)
			fprintf(f, ", TLS verified with %s", q->ca_file ? q->ca_file : "the system's CAs");
		fprintf(f, ", qos %" PRIu32 ", keepalive %" PRIu32 " s\n", q->qos, q->keepalive_s);
	}
	if (cfg->http.listen)
		fprintf(f, "http: %s", cfg->http.listen);
	else
		fputs("http: off", f);
	if (cfg->http.price_micro >= 0)
		fprintf(f, ", price %" PRId64 ".%06" PRId64 "%s%s per kWh",
			cfg->http.price_micro / 1000000, cfg->http.price_micro % 1000000,
			cfg->http.currency ? " " : "", cfg->http.currency ? cfg->http.currency : "");
	fputc('\n', f);
	return ferror(f) ? -PL_EIO : 0;
}

int pl_config_load_for(const char *path, const char *prog, struct pl_config **out)
{
	return pl_config_load_for_flags(path, prog, 0, out);
}

int pl_config_load_for_flags(const char *path, const char *prog, unsigned flags,
			     struct pl_config **out)
{
	struct pl_config_diags diags = { 0 };
	int rc = pl_config_load_flags(path, flags, out, &diags);

	pl_config_diags_print(&diags, stderr); /* the errors, or the warnings */
	pl_config_diags_free(&diags);
	if (rc != 0) {
		fprintf(stderr, "%s: %s: not used (check it with `powerlogger check-config`)\n", prog,
			path);
		return 2;
	}
	return 0;
}
