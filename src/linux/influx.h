/*
 * The InfluxDB sink's HTTP side: one POST of a line-protocol batch with libcurl, and an exact
 * account of what came back. What to do about the answer is decided by the portable core
 * (powerlogger/retry.h): pl_influx_response() turns a result into its input.
 *
 * One struct pl_influx holds one curl handle, so the connection is kept alive between writes.
 * Not thread-safe: one sink per thread. Secrets (password, token) are copied into the object,
 * sent only in headers (HTTP Basic, Authorization) and never printed or put into messages.
 */
#ifndef PL_LINUX_INFLUX_H
#define PL_LINUX_INFLUX_H

#include <stddef.h>
#include <stdint.h>

#include "powerlogger/lineproto.h"
#include "powerlogger/retry.h"

/* Which write API the server speaks. */
enum pl_influx_api {
	PL_INFLUX_V1 = 1, /* POST /write?db=&rp=&precision=n|u|ms|s, HTTP Basic user/password */
	PL_INFLUX_V2 = 2, /* POST /api/v2/write?org=&bucket=&precision=ns|us|ms|s, Token */
	PL_INFLUX_V3 = 3, /* POST /api/v3/write_lp?db=&precision=nanosecond|..., Bearer token */
};

/* Fill with designated initialisers; strings are copied by pl_influx_new. */
struct pl_influx_config {
	const char *url;       /* base URL, e.g. "http://127.0.0.1:8086" (no trailing path) */
	enum pl_influx_api api;
	const char *db;        /* v1, v3: database (required) */
	const char *rp;        /* v1: retention policy, NULL for the database's default */
	const char *org;       /* v2: organisation (required) */
	const char *bucket;    /* v2: bucket (required) */
	const char *user;      /* v1: user name, NULL for none */
	const char *password;  /* v1: password (secret) */
	const char *token;     /* v2, v3: API token (secret), NULL for none */
	enum pl_precision precision;
	int gzip;              /* compress bodies: not supported yet, must be 0 (see influx.c) */
	const char *ca_file;   /* PEM bundle to verify the server with; NULL: system default.
	                        * Verification is always on. */
	long connect_timeout_ms; /* 0: 5000 */
	long timeout_ms;         /* whole request, 0: 30000 */
};

#define PL_INFLUX_MSG_MAX 256

/* What one write attempt came to. */
struct pl_influx_result {
	long status;                      /* HTTP status, 0 when none arrived */
	enum pl_sink_transport transport; /* PL_XPORT_NONE when a status arrived */
	uint32_t retry_after_s;           /* Retry-After, 0 when absent */
	/* The server's error text: "error" of a 1.x JSON body, "message" of a 2.x/3.x one, else
	 * the start of the body; for a transport error, curl's description. At most
	 * PL_INFLUX_MSG_MAX bytes, NUL-terminated; "" on success. */
	char message[PL_INFLUX_MSG_MAX + 1];
	unsigned body;                    /* enum pl_sink_body bits of message */
	int64_t elapsed_us;               /* wall time of the attempt */
};

struct pl_influx;

/*
 * Creates a sink from cfg (copied; cfg may be freed afterwards). Returns 0 and stores the sink
 * in *out, to be released with pl_influx_free(); -PL_EINVAL for a missing URL, db, org or
 * bucket, an unknown api or precision, or gzip (not implemented yet); -PL_ENOMEM.
 */
int pl_influx_new(const struct pl_influx_config *cfg, struct pl_influx **out);

/* Closes the connection and wipes the copied secrets. NULL is fine. */
void pl_influx_free(struct pl_influx *s);

/*
 * POSTs len bytes of line protocol (body need not be NUL-terminated) and fills *res. Returns 0
 * when the attempt was made, whatever its outcome (read res); -PL_EINVAL for NULL arguments;
 * -PL_ENOMEM. Blocks for at most the configured total timeout.
 */
int pl_influx_write(struct pl_influx *s, const char *body, size_t len,
		    struct pl_influx_result *res);

/* The write URL that pl_influx_write posts to (no secrets in it). Owned by s. */
const char *pl_influx_write_url(const struct pl_influx *s);

/* Fills a classification input from a result and the number of lines that were sent. */
void pl_influx_response(const struct pl_influx_result *res, uint32_t batch_lines,
			struct pl_sink_response *out);

#endif
