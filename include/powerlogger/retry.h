/* SPDX-License-Identifier: MIT */
/*
 * What a sink does after a write: classify the server's answer (or the transport failure) into
 * one action, and space out retries with exponential backoff and jitter.
 *
 * The policy is the one in the project's InfluxDB notes, chosen for a logger that must never
 * lose a reading: anything that may succeed later is retried and the data kept; only lines the
 * server says it will never accept leave the batch, and they go to a quarantine, not to the
 * bin. Since only some server versions say *which* lines of a batch they rejected (3.x lists
 * them, 1.x quotes some, 2.x the first), bad lines are found by bisection:
 * a rejected batch of several lines is split in halves and each half resent (the good halves
 * are written; an InfluxDB re-write of the same point is harmless), until a single line is left,
 * which is quarantined.
 *
 * Shared by the Linux daemon and the ESP32 firmware: no allocation, no I/O, integer only, state
 * is plain data. Thread-safe (no hidden state); each struct pl_backoff belongs to one sink.
 */
#ifndef POWERLOGGER_RETRY_H
#define POWERLOGGER_RETRY_H

#include "powerlogger/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How the request failed below HTTP, if it did. */
enum pl_sink_transport {
	PL_XPORT_NONE = 0,  /* an HTTP response arrived; its status says the rest */
	PL_XPORT_REFUSED,   /* the connection was refused or the host was unreachable */
	PL_XPORT_TIMEOUT,   /* connect or total timeout expired (a server that never answers) */
	PL_XPORT_DNS,       /* the host name could not be resolved */
	PL_XPORT_TLS,       /* TLS handshake or certificate verification failed */
	PL_XPORT_OTHER,     /* anything else: reset connection, empty reply, send/receive error */
};

/*
 * What the response body says, as far as it matters to the policy. A 400 only means "bad
 * lines" when the body says so in the words of an InfluxDB server; a proxy, a load balancer
 * or a server without the endpoint answers 400 for reasons that have nothing to do with the
 * lines, and quarantining on those would move every record out of the way.
 */
enum pl_sink_body {
	PL_BODY_DB_NOT_FOUND = 1u << 0,  /* "database not found" (1.x), "bucket ... not found" */
	PL_BODY_PARTIAL_WRITE = 1u << 1, /* "partial write": the valid points were written */
	PL_BODY_UNABLE_TO_PARSE = 1u << 2, /* "unable to parse": the line(s) are malformed */
	PL_BODY_TYPE_CONFLICT = 1u << 3, /* 1.x/2.x "field type conflict", 3.x "invalid column
	                                  * type": a field has another type in the database */
	PL_BODY_RETENTION = 1u << 4,     /* "points beyond retention policy": older than the
	                                  * database keeps; it will never take them */
	PL_BODY_LIMIT = 1u << 5,         /* "... limit exceeded" (max-series-per-database,
	                                  * max-values-per-tag): the server's own limit, which an
	                                  * administrator can raise; not the lines' fault */
	PL_BODY_LINE_REPORT = 1u << 6,   /* a per-line report: 3.x "partial write of line
	                                  * protocol occurred" / "parsing failed for write_lp",
	                                  * or a JSON body with "code":"invalid" and a "line" */
	PL_BODY_ERROR = 1u << 7,         /* a JSON "error" member, or "code" and "message" */
	PL_BODY_HTML = 1u << 8,          /* an HTML page (a proxy's, a login or captive portal) */
	PL_BODY_RP_NOT_FOUND = 1u << 9,  /* 1.x "retention policy not found" (a 500 that only a
	                                  * change of rp or of the server can end) */
};

/* The bits of pl_sink_body_flags() by which a server says the lines themselves are bad. */
#define PL_BODY_BAD_LINES                                                                  \
	(PL_BODY_PARTIAL_WRITE | PL_BODY_UNABLE_TO_PARSE | PL_BODY_TYPE_CONFLICT |          \
	 PL_BODY_RETENTION | PL_BODY_LINE_REPORT)

/* One write attempt, as the platform's HTTP code saw it. */
struct pl_sink_response {
	enum pl_sink_transport transport; /* PL_XPORT_NONE when an HTTP status arrived */
	int status;                       /* HTTP status; ignored unless transport is NONE */
	uint32_t retry_after_s;           /* Retry-After in seconds; 0 when absent */
	unsigned body;                    /* enum pl_sink_body bits, see pl_sink_body_flags() */
	uint32_t batch_lines;             /* lines in the batch that was sent (>= 1) */
};

/* The action a sink takes next. */
enum pl_sink_action {
	/* 2xx: the whole batch is stored; advance the delivery cursor and reset the backoff.
	 * Except a 2xx other than 204 whose body is an error or an HTML page: no InfluxDB answers
	 * a write like that (1.x, 2.x and 3.x answer 204), a captive portal or a misrouted proxy
	 * does, and acknowledging it would lose the batch. */
	PL_SINK_OK = 0,
	/* Keep the batch and send it again after pl_backoff_next(): transport errors, timeouts,
	 * 408, 429, 5xx (the server's trouble, which passes: fast cap), and, with PL_SINK_F_AUTH
	 * or PL_SINK_F_CONFIG (slow cap, loud), 401/403, a 400/422 whose body does not say the
	 * lines are bad, 413 for a single line, 1xx, 3xx (never followed: a POST must not be
	 * redirected silently), any other status, because keeping data is never wrong. */
	PL_SINK_RETRY,
	/* Send the batch again as two halves, each on its own (no backoff needed): 413 for a batch
	 * of more than one line, and a 400/422 that says the lines are bad (PL_BODY_BAD_LINES)
	 * for more than one line, to bisect down to the bad line(s). */
	PL_SINK_SPLIT,
	/* The batch is a single line the server says it will never accept (400/422 with
	 * PL_BODY_BAD_LINES for that line alone): move it to the quarantine with the server's
	 * message and go on. */
	PL_SINK_QUARANTINE,
	/* 404: the database (1.x/3.x) or bucket (2.x) does not exist, or the endpoint does not.
	 * Report it, create it if the configuration allows, and retry slowly; the data is kept. */
	PL_SINK_NOTFOUND,
};

/* Flags that qualify an action (bit set through pl_sink_classify's flags argument). */
enum pl_sink_flag {
	/* 401/403: credentials are wrong or lack the write permission. Report loudly; back off
	 * with the slow cap (set struct pl_backoff.slow). */
	PL_SINK_F_AUTH = 1u << 0,
	/* A human must act (credentials, TLS, missing database, an unexpected status, quarantined
	 * line): report at warning level, once per change of state. */
	PL_SINK_F_LOUD = 1u << 1,
	/* The server wrote the valid points of the batch (1.x "partial write", 2.x 422, 3.x's
	 * partial write). Splitting and resending those points is harmless: a re-write of a
	 * point overwrites it. */
	PL_SINK_F_PARTIAL = 1u << 2,
	/* The answer is about the server or the way to it, not about the lines: a 400/422 without
	 * a line error, a redirect, a 404, 413 for one line, an error body on a 2xx, an unknown
	 * status. Nothing is quarantined; back off with the slow cap and report loudly, because
	 * the configuration (url, api) or the server must change before it can succeed. */
	PL_SINK_F_CONFIG = 1u << 3,
};

/*
 * Classifies one write attempt. Returns the action and, when flags is not NULL, stores the
 * enum pl_sink_flag bits that go with it. A batch_lines of 0 is treated as 1. Never fails.
 */
enum pl_sink_action pl_sink_classify(const struct pl_sink_response *r, unsigned *flags);

/*
 * Scans an error message (len bytes, need not be NUL-terminated; NULL means none) for the
 * phrases that matter to pl_sink_classify, case-insensitively, and returns enum pl_sink_body
 * bits.
 */
unsigned pl_sink_body_flags(const char *msg, size_t len);

/* Static English name of an action ("ok", "retry", "split", "quarantine", "not-found"). */
const char *pl_sink_action_name(enum pl_sink_action a);

/* Static name of a transport error ("none", "refused", "timeout", "dns", "tls", "other"). */
const char *pl_sink_transport_name(enum pl_sink_transport t);

/*
 * The fast cap is for what heals without anyone doing anything: a server restarting, a
 * network down, a timeout, a 5xx. One cheap attempt every 7.5 to 15 s does not hammer a
 * server that is down, and once it answers again the backlog starts to drain within 15 s
 * whatever the outage's length (a logger is about near-real-time data). Waits beyond that are
 * only for what a person must fix (the slow cap) and for what a server explicitly asks
 * (Retry-After), and even a server may not park delivery for longer than
 * PL_BACKOFF_MAX_RETRY_AFTER_S: a mistaken or hostile "Retry-After: 999999" costs minutes.
 */
#define PL_BACKOFF_BASE_MS UINT32_C(1000)       /* ceiling of the first delay */
#define PL_BACKOFF_CAP_MS UINT32_C(15000)       /* ceiling for transient failures: 15 s */
#define PL_BACKOFF_SLOW_CAP_MS UINT32_C(300000) /* for auth and configuration errors: 5 min */
#define PL_BACKOFF_MAX_RETRY_AFTER_S UINT32_C(300) /* Retry-After is clamped to 5 min */

/*
 * Backoff state: plain data, copy or store it freely. Start from PL_BACKOFF_INIT (all zero).
 * Set `slow` to 1 while the failures are auth or configuration failures (PL_SINK_F_AUTH,
 * PL_SINK_F_CONFIG) and to 0 otherwise.
 */
struct pl_backoff {
	uint32_t attempt; /* failures since the last success (saturates) */
	uint8_t slow;     /* use PL_BACKOFF_SLOW_CAP_MS instead of PL_BACKOFF_CAP_MS */
};
#define PL_BACKOFF_INIT {0, 0}

/*
 * Returns the delay in milliseconds before the next attempt and counts one more failure.
 * The ceiling is PL_BACKOFF_BASE_MS * 2^attempt capped at the cap above; the delay is rand32
 * scaled onto [ceiling / 2, ceiling] ("equal jitter": spread out, so that many loggers do not
 * retry in step, yet never so short that a down server is hammered). Then it is raised to
 * retry_after_s * 1000 if that is later (a server's Retry-After is never undercut, even
 * beyond the cap), with retry_after_s clamped to PL_BACKOFF_MAX_RETRY_AFTER_S. rand32 is any
 * uniformly random 32-bit value from the caller, so the result is deterministic given it.
 * b NULL returns 0.
 */
uint32_t pl_backoff_next(struct pl_backoff *b, uint32_t rand32, uint32_t retry_after_s);

/* The ceiling the next call of pl_backoff_next would use, in milliseconds (0 for NULL). */
uint32_t pl_backoff_ceiling(const struct pl_backoff *b);

/* Forgets the failures (call after PL_SINK_OK). Clears `slow` too. */
void pl_backoff_reset(struct pl_backoff *b);

#ifdef __cplusplus
}
#endif
#endif
