/* SPDX-License-Identifier: MIT */
/*
 * The InfluxDB sink's HTTP side: one POST of a line-protocol batch with libcurl, and an exact
 * account of what came back. What to do about the answer is decided by the portable core
 * (powerlogger/retry.h): pl_influx_response() turns a result into its input.
 *
 * A write is either made in one blocking call (pl_influx_write) or started, driven and
 * collected (pl_influx_start, pl_influx_poll), so that the caller can prepare the next batch
 * while one is in flight. One struct pl_influx holds one curl handle and one request at a
 * time, and keeps its connection alive between requests. Not thread-safe: one sink per
 * thread. Secrets (password, token) are copied into the object, sent only in headers (HTTP
 * Basic, Authorization) and never printed or put into messages.
 *
 * https:// URLs are always verified (certificate chain and host name); there is no option to
 * turn that off.
 */
#ifndef PL_LINUX_INFLUX_H
#define PL_LINUX_INFLUX_H

#include <stddef.h>
#include <stdint.h>

#include "powerlogger/lineproto.h"
#include "powerlogger/retry.h"
#include "sinks/sink.h"

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
	int gzip;              /* send bodies gzip-compressed (Content-Encoding: gzip) */
	const char *ca_file;   /* PEM bundle of the CA(s) to verify the server with, instead of
	                        * the system's store; NULL: the system's store. Verification is
	                        * always on. */
	int create_database;   /* v1 only: on 404 "database not found", POST CREATE DATABASE to
	                        * /query (same credentials) and write again, once per request */
	long connect_timeout_ms; /* 0: 5000 */
	long timeout_ms;         /* whole request, 0: 30000 */
};

#define PL_INFLUX_MSG_MAX PL_SINK_MSG_MAX

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
	uint32_t bad_line;                /* the first refused line the server named (1-based:
	                                   * 3.x "line_number", "line" of a 2.x-style JSON
	                                   * report), 0 when it named none */
	int64_t elapsed_us;               /* wall time of the attempt */
	uint32_t connects;                /* connections opened for it; 0: one was reused */
	int created_database;             /* 1: create_database created the database first */
};

struct pl_influx;

/*
 * Creates a sink from cfg (copied; cfg may be freed afterwards). Returns 0 and stores the sink
 * in *out, to be released with pl_influx_free(); -PL_EINVAL for a missing URL, db, org or
 * bucket, an unknown api or precision, or create_database with api 2 or 3; -PL_ENOMEM.
 */
int pl_influx_new(const struct pl_influx_config *cfg, struct pl_influx **out);

/* Abandons any request in flight, closes the connection and wipes the copied secrets. NULL is
 * fine. */
void pl_influx_free(struct pl_influx *s);

/*
 * POSTs len bytes of line protocol (body need not be NUL-terminated) and fills *res. Returns 0
 * when the attempt was made, whatever its outcome (read res); -PL_EINVAL for NULL arguments;
 * -PL_EBUSY when a request started with pl_influx_start is in flight; -PL_ENOMEM. On an error
 * return *res (when not NULL) reads as a transport error (PL_XPORT_OTHER), to be retried.
 * Blocks for at most the configured total timeout: pl_influx_start, then pl_influx_poll(-1).
 */
int pl_influx_write(struct pl_influx *s, const char *body, size_t len,
		    struct pl_influx_result *res);

/*
 * Starts POSTing len bytes of line protocol (body need not be NUL-terminated). The sink copies
 * the body (or its gzip) into a buffer of its own, so the caller may reuse its buffer at once.
 * Returns 0; -PL_EBUSY if a request is in flight; -PL_EINVAL for a NULL sink, a NULL body with
 * len > 0, or (gzip) a body over 2 GiB; -PL_ENOMEM. The configured total timeout runs from
 * here, and bounds the whole request, CREATE DATABASE and the second write included.
 */
int pl_influx_start(struct pl_influx *s, const char *body, size_t len);

/*
 * Drives the request in flight for at most timeout_ms milliseconds (-1: until it is over; 0:
 * only what can be done without waiting). Returns 1 and fills *res when the request has
 * finished, whatever its outcome (read res; the sink is then idle again); 0 if it is still
 * in flight (*res untouched); -PL_EINVAL if none is in flight or res is NULL.
 */
int pl_influx_poll(struct pl_influx *s, int timeout_ms, struct pl_influx_result *res);

/*
 * 1 while the body of the write in flight has not all been handed to the network yet. A
 * caller that has work to do meanwhile polls with short timeouts until this is 0 first:
 * otherwise the rest of the body waits for its next poll and the server with it.
 */
int pl_influx_sending(struct pl_influx *s);

/*
 * Abandons the request in flight, if any (at shutdown): nothing is acknowledged, and the
 * server may or may not have written the points (a later retry of the batch overwrites them
 * with the same values). The connection of an abandoned request is closed. NULL is fine.
 */
void pl_influx_abort(struct pl_influx *s);

/* The write URL that pl_influx_write posts to (no secrets in it). Owned by s. */
const char *pl_influx_write_url(const struct pl_influx *s);

/* Fills a classification input from a result and the number of lines that were sent. */
void pl_influx_response(const struct pl_influx_result *res, uint32_t batch_lines,
			struct pl_sink_response *out);

/*
 * The InfluxDB sink behind the seam that the delivery thread drives (sinks/sink.h): open takes
 * a struct pl_influx_config, encode makes line protocol in its precision, start/poll/abort are
 * pl_influx_start/pl_influx_poll/pl_influx_abort, bad_line and message come from the result.
 */
extern const struct pl_sink_ops pl_influx_sink_ops;

#endif
