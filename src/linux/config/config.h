/* SPDX-License-Identifier: MIT */
/*
 * The daemon's configuration: an INI file parsed with libinih into struct pl_config.
 *
 * Sections: [store], [meter NAME] (several; NAME is the device tag), [influxdb NAME] (several
 * sinks), [mqtt NAME] (several sinks; influxdb and mqtt sections share one namespace of names,
 * the store's sink ids, so that no two sinks share a cursor) and [http]. Every problem is
 * collected, not only the first, as a diagnostic "FILE:LINE: [section] key: problem (hint)";
 * a missing required key is reported at its section's line. Secrets (passwords, tokens) may
 * come from the file, from a file named in it (*_file) or from the environment (*_env); they
 * are never printed: pl_config_dump() shows only where a secret came from.
 *
 * Line numbers: Debian's libinih 55 is built with INI_HANDLER_LINENO (its handler calls pass
 * the line number; checked in the disassembly), but its header defaults the macro to 0, and
 * other builds differ. So config.c defines INI_HANDLER_LINENO 1 to match the Debian ABI but
 * never trusts that argument: it parses through ini_parse_stream() with its own line reader,
 * which counts the lines, checks their syntax (so that every bad line is reported, not only
 * the first as libinih does), removes leading blanks (libinih would take an indented line for
 * the continuation of the previous value) and refuses over-long lines.
 */
#ifndef PL_CONFIG_H
#define PL_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PL_CONFIG_NAME_MAX 64 /* longest meter or sink name, bytes */

enum pl_config_source {
	PL_CONFIG_SOURCE_SIM = 0,
	PL_CONFIG_SOURCE_FILE,
	PL_CONFIG_SOURCE_IIO,    /* a Linux IIO ADC: photodiode or LDR divider (analog) */
	PL_CONFIG_SOURCE_GPIO,   /* a GPIO line through libgpiod: comparator module, S0 (edges) */
	PL_CONFIG_SOURCE_SERIAL, /* a serial port's modem-status line: S0 (edges) */
};


/* Where a secret came from; the secret itself is in the value (NULL if none). */
enum pl_config_secret_from {
	PL_CONFIG_SECRET_NONE = 0,
	PL_CONFIG_SECRET_INLINE, /* written in the configuration file */
	PL_CONFIG_SECRET_FILE,   /* read from the file named by *_file */
	PL_CONFIG_SECRET_ENV,    /* read from the environment variable named by *_env */
};

struct pl_config_secret {
	char *value;                  /* NUL-terminated; never print it */
	enum pl_config_secret_from from;
	char *origin;                 /* the file path or variable name; NULL for INLINE */
};

struct pl_config_store {
	char *path;              /* default "./powerlogger.db" */
	uint32_t retention_days; /* delivered records older than this are removed; 0: keep */
	uint32_t max_size_mb;    /* size bound of the database; 0: none */
	uint32_t merge_s;        /* intervals wait in STORE.intake this long; 0: no intake */
};

struct pl_config_meter {
	char *name;                  /* the section's NAME, the device tag */
	unsigned line;               /* line of the section header */
	enum pl_config_source source; /* default sim */
	char *file;                  /* file source: the trace; NULL for sim */
	int format;                  /* enum pl_trace_format; default csv */
	uint32_t rate_hz;            /* raw formats: sample rate (required for them) */
	double speed;                /* replay factor; 0: as fast as possible; default 1 */
	int meter_type;              /* enum pl_meter_type (powerlogger/meter_type.h); led */
	uint32_t imp_per_kwh;        /* meter constant (key imp_per_kwh, or rev_per_kwh for a
				      * disc: revolutions per kWh); default 1000 (led) */
	uint32_t max_power_w;        /* the supply's maximum power; 0: not set */
	uint32_t interval_s;         /* interval record length; default 20 */
	int64_t start_register_uwh;  /* start_register_kwh in micro-watt-hours; default 0 */
	int polarity;                /* enum pl_polarity; default auto */
	char *profile;               /* sim: load profile file; NULL: the built-in one */
	/* live sources: the keys as written, turned into each source's own configuration
	 * (struct pl_iio_config, ...) by sources/live.c, and checked there by the source */
	char *device;       /* iio: device name (e.g. "ads1015") or its sysfs directory; gpio: chip
			     * name or path ("gpiochip0", "/dev/gpiochip0"); serial: the tty */
	uint32_t channel;   /* iio: N of in_voltageN (key channel); gpio: line offset (key line) */
	int iio_mode;       /* enum pl_iio_mode (src_iio.h); default poll */
	char *trigger;      /* iio buffer: trigger name; NULL: the device's current trigger */
	char *sysfs_root;   /* default "/sys"; tests point it at a fake tree */
	char *dev_root;     /* default "/dev"; likewise */
	int bias;           /* gpio: enum pl_gpio_bias (src_gpio.h); default as-is */
	int active_low;     /* gpio, serial: 1 = the pulse is the low level; default 0 */
	int modem_line;     /* serial: key pin, enum pl_serial_pin (src_serial.h); default cts */
	uint32_t debounce_us; /* gpio, serial: shortest accepted level (key debounce_ms); 2000,
			       * 20000 for a disc (a comparator on a slow dip) */
};

struct pl_config_influx {
	char *name;                 /* the section's NAME, the sink's id */
	unsigned line;              /* line of the section header */
	char *url;                  /* http:// or https://, required */
	int api;                    /* 1, 2 or 3; default 1 */
	char *database;             /* v1, v3 */
	char *retention_policy;     /* v1, optional */
	char *org, *bucket;         /* v2 */
	char *username;             /* v1, optional (with a password) */
	struct pl_config_secret password; /* v1 */
	struct pl_config_secret token;    /* v2, v3 */
	int precision;              /* enum pl_precision; default s */
	int gzip;                   /* default 0 */
	char *ca_file;              /* NULL: the system's CA store */
	uint32_t timeout_s;         /* default 10 */
	uint32_t batch_max_records; /* default 5000 */
	uint32_t batch_max_age_s;   /* default 2 */
	int create_database;        /* v1: create the database when it is missing; default 0 */
};

/* [mqtt NAME]: an MQTT broker with Home Assistant discovery (sinks/mqtt.h). */
struct pl_config_mqtt {
	char *name;                 /* the section's NAME, the sink's id */
	unsigned line;              /* line of the section header */
	char *url;                  /* mqtt://HOST[:PORT] or mqtts://HOST[:PORT], required */
	char *host;                 /* HOST of the URL, without brackets */
	uint16_t port;              /* default 1883, 8883 for mqtts */
	int tls;                    /* mqtts:// */
	char *username;             /* optional */
	struct pl_config_secret password; /* optional; needs username */
	char *ca_file;              /* mqtts: PEM CA bundle; NULL: the system's (/etc/ssl/certs) */
	char *client_id;            /* default "powerlogger-<hostname>", [A-Za-z0-9_.-] */
	char *topic_prefix;         /* default "powerlogger": no wildcards, no '/' at the ends */
	char *discovery_prefix;     /* default "homeassistant"; "" (empty): no discovery */
	uint32_t qos;               /* 0 or 1; default 1 (2 is refused: see config.c) */
	uint32_t keepalive_s;       /* default 30 */
};

struct pl_config_http {
	char *listen; /* "HOST:PORT" as written; NULL: no HTTP server (first: config.c) */
	char *host;   /* HOST without brackets */
	uint16_t port;
	int64_t price_micro; /* price_per_kwh in millionths of the currency; < 0: no price */
	char *currency;      /* short text (1..16 bytes, no control character), NULL: none */
};

struct pl_config {
	char *path; /* the file's name as given */
	struct pl_config_store store;
	struct pl_config_meter *meters; /* in file order */
	size_t nmeters;
	struct pl_config_influx *influx; /* in file order */
	size_t ninflux;
	struct pl_config_mqtt *mqtt; /* in file order */
	size_t nmqtt;
	struct pl_config_http http;
};

struct pl_config_diag {
	unsigned line;  /* 0 when about the whole file */
	int warning;    /* 1: a warning, the configuration is still usable */
	char *text;     /* "FILE:LINE: [section] key: problem (hint)", no newline */
};

/* Diagnostics, sorted by line. Zero-initialise; free with pl_config_diags_free(). */
struct pl_config_diags {
	struct pl_config_diag *v;
	size_t n;
	size_t errors, warnings;
};

/*
 * Parses the configuration file at path. On success (no errors; warnings allowed) returns 0
 * and stores a new configuration in *out, to be freed by the caller with pl_config_free().
 * Otherwise returns -PL_EINVAL (problems in the file), -PL_EIO (cannot read it) or
 * -PL_ENOMEM, with *out NULL. Every problem is appended to diags (which may be NULL).
 * Beyond what pl_config_parse_string() checks, the file must be a regular file of at most
 * 1 MiB (not a directory, FIFO or device such as /dev/zero), must define a meter or a sink (a
 * warning without a meter: only `run --until-drained` has work then), and an inline password
 * or token in a file readable by everyone gets a warning.
 */
int pl_config_load(const char *path, struct pl_config **out, struct pl_config_diags *diags);

/* For pl_config_load_flags(). */
enum pl_config_load_flags {
	/* the caller only reads the store (`status`): secrets are left unread (NULL), so
	 * neither a token file nor an environment variable is needed */
	PL_CONFIG_NO_SECRETS = 1u << 0,
};

/* pl_config_load() with flags (enum pl_config_load_flags). */
int pl_config_load_flags(const char *path, unsigned flags, struct pl_config **out,
			 struct pl_config_diags *diags);

/* Same as pl_config_load() for text in memory; name is used in the diagnostics. Text without
 * a meter is accepted here (the built-in configuration, tests of fragments). */
int pl_config_parse_string(const char *name, const char *text, struct pl_config **out,
			   struct pl_config_diags *diags);

/* Frees a configuration; NULL is allowed. */
void pl_config_free(struct pl_config *cfg);

/* Frees the diagnostics' storage and zeroes *d; NULL is allowed. */
void pl_config_diags_free(struct pl_config_diags *d);

/* Prints every diagnostic, one per line. */
void pl_config_diags_print(const struct pl_config_diags *d, FILE *f);

/*
 * Prints a short summary of the configuration (store, meters with their sources, sinks).
 * Secrets are never printed, only where they come from. Returns 0 or -PL_EIO.
 */
int pl_config_dump(const struct pl_config *cfg, FILE *f);

/* Returns the name of a source: "sim", "file", "iio", "gpio" or "serial". */
const char *pl_config_source_name(enum pl_config_source s);

/*
 * For a command that needs a configuration: loads it, prints every diagnostic (errors or
 * warnings) on stderr, and returns 0, or 2 (the exit status for bad input) with *out NULL.
 */
int pl_config_load_for(const char *path, const char *prog, struct pl_config **out);

/* pl_config_load_for() with flags (enum pl_config_load_flags). */
int pl_config_load_for_flags(const char *path, const char *prog, unsigned flags,
			     struct pl_config **out);

#endif
