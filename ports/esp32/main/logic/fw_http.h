/* SPDX-License-Identifier: MIT */
/*
 * One HTTP POST driven in short steps, for a task that the task watchdog watches.
 *
 * esp_http_client_perform() blocks for as long as its socket timeout allows at every read and
 * write, and the network task cannot feed the task watchdog while it waits: a server that
 * takes longer than the watchdog period to answer (a busy InfluxDB compacting, a slow link)
 * rebooted the device. Here the request is a sequence of calls - resolve the server's name,
 * open (connect and send the head), write the body, fetch the response head, read the start
 * of the body - each with a timeout of `step_ms`, well below the watchdog period. A call that times out without
 * progress (waiting for the response head or body) is repeated until the overall deadline;
 * the watchdog is fed after every call, so the longest time between two feeds is one call.
 *
 * The platform calls sit behind struct fw_http_ops (esp_http_client on the device, a fake
 * with a fake clock and watchdog in tests/test_fw_http.c). What ESP-IDF's calls return is
 * turned into a step result by fw_http_map_esp(), which is plain logic and host-tested too.
 *
 * Not thread-safe; the network task owns the request. Never allocates.
 */
#ifndef FW_HTTP_H
#define FW_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "fw_delivery.h"
#include "powerlogger/retry.h"

/*
 * The per-call timeout for a watchdog period of wdt_s seconds: a fifth of it. The longest a
 * single call can block is FW_HTTP_WORST_BLOCK_MS of it: esp-tls checks its connect timeout
 * only between handshake reads, so a TLS connect can take one more read timeout after the
 * first has nearly run out. net.c checks at compile time that this stays below the period.
 */
#define FW_HTTP_STEP_MS(wdt_s) ((int32_t)(wdt_s) * 1000 / 5)
#define FW_HTTP_WORST_BLOCK_MS(step_ms) (2 * (step_ms))
#define FW_HTTP_DEADLINE_MS 15000     /* a whole request: a server slower than this is down */
#define FW_HTTP_WRITE_CHUNK 1024      /* body bytes per write call */

/*
 * Step results the ops return (besides >= 0 for success, or bytes for write and read):
 * FW_HTTP_AGAIN - the call's timeout passed with nothing received; the same call may be made
 * again (waiting for the response head or body). FW_HTTP_FAIL(x) - the request failed, x is
 * its enum pl_sink_transport class; the connection must be closed.
 */
#define FW_HTTP_AGAIN (-1)
#define FW_HTTP_FAIL(x) (-16 - (int)(x))
#define FW_HTTP_FAIL_CLASS(rc) ((enum pl_sink_transport)(-16 - (rc)))
#define FW_HTTP_IS_FAIL(rc) ((rc) <= FW_HTTP_FAIL(PL_XPORT_NONE))

enum fw_http_phase {
	FW_HTTP_RESOLVE = 0,  /* the server's name, before the connect */
	FW_HTTP_OPEN,         /* esp_http_client_open(): connect, send the request head */
	FW_HTTP_WRITE,        /* esp_http_client_write(): the body */
	FW_HTTP_HEADERS,      /* esp_http_client_fetch_headers() */
	FW_HTTP_READ,         /* esp_http_client_read(): the response body */
};

/*
 * The platform's side. Every call blocks at most timeout_ms (plus what FW_HTTP_WORST_BLOCK_MS
 * allows for a TLS connect). Return values as above.
 */
struct fw_http_ops {
	/*
	 * May be NULL. Looks the server's name up without blocking for longer than timeout_ms:
	 * 0 when the address is known (the connect then finds it in the resolver's cache),
	 * FW_HTTP_AGAIN while the lookup is still going on, FW_HTTP_FAIL(PL_XPORT_DNS). Without
	 * it the connect looks the name up itself, and lwIP's resolver waits up to 7 s per DNS
	 * server that does not answer (1 + 1 + 2 + 3 s), with no way to feed the watchdog.
	 */
	int (*resolve)(void *ctx, int32_t timeout_ms);
	/* Connects (unless connected) and sends the head for a body of body_len bytes: 0 or
	 * FW_HTTP_FAIL(x). */
	int (*open)(void *ctx, size_t body_len, int32_t timeout_ms);
	/* Sends up to len bytes: the number sent (> 0) or FW_HTTP_FAIL(x). */
	int (*write)(void *ctx, const char *buf, size_t len, int32_t timeout_ms);
	/* Waits for the response head: 0 when it is in, FW_HTTP_AGAIN, FW_HTTP_FAIL(x). */
	int (*fetch_headers)(void *ctx, int32_t timeout_ms);
	/* Reads body bytes: the number read, 0 at its end, FW_HTTP_AGAIN, FW_HTTP_FAIL(x). */
	int (*read)(void *ctx, char *buf, size_t cap, int32_t timeout_ms);
	int (*status)(void *ctx);                  /* the response's HTTP status */
	void (*close)(void *ctx);                  /* closes the connection */
	int64_t (*now_ms)(void *ctx);              /* monotonic milliseconds */
	void (*feed)(void *ctx);                   /* resets the task watchdog */
};

struct fw_http_limits {
	int32_t step_ms;      /* per call, 1..deadline_ms */
	int32_t deadline_ms;  /* the whole request */
};

/*
 * Posts body (len bytes) through ops and fills *res as fw_delivery's transport seam expects
 * (status, or the transport class of the failure and a message; retry_after_s is the
 * caller's, from the response head). The connection is closed afterwards, whatever happened:
 * each request starts on a fresh one, so no half-read answer is ever mistaken for the next.
 * Feeds the watchdog after every call. Returns 0 when *res is filled, -PL_EINVAL for bad
 * arguments or limits.
 */
int fw_http_post(const struct fw_http_ops *ops, void *ctx, const struct fw_http_limits *lim,
		 const char *body, size_t len, struct fw_http_result *res);

/*
 * ESP-IDF's esp_http_client error codes (esp_http_client.h), which net.c checks against the
 * real ones at compile time; the logic cannot include ESP-IDF headers.
 */
#define FW_ESP_OK 0
#define FW_ESP_FAIL (-1)
#define FW_ESP_ERR_NO_MEM 0x101
#define FW_ESP_ERR_TIMEOUT 0x107
#define FW_ESP_ERR_HTTP_BASE 0x7000
#define FW_ESP_ERR_HTTP_CONNECT (FW_ESP_ERR_HTTP_BASE + 2)
#define FW_ESP_ERR_HTTP_WRITE_DATA (FW_ESP_ERR_HTTP_BASE + 3)
#define FW_ESP_ERR_HTTP_FETCH_HEADER (FW_ESP_ERR_HTTP_BASE + 4)
#define FW_ESP_ERR_HTTP_INVALID_TRANSPORT (FW_ESP_ERR_HTTP_BASE + 5)
#define FW_ESP_ERR_HTTP_CONNECTING (FW_ESP_ERR_HTTP_BASE + 6)
#define FW_ESP_ERR_HTTP_EAGAIN (FW_ESP_ERR_HTTP_BASE + 7)
#define FW_ESP_ERR_HTTP_CONNECTION_CLOSED (FW_ESP_ERR_HTTP_BASE + 8)

/*
 * What an ESP-IDF call of the given phase returned, as a step result. rc is the call's own
 * return value: open's esp_err_t, write's and read's byte count or negative code,
 * fetch_headers' content length or negative code. Blocking (not async) mode, as read in
 * ESP-IDF v5.1 to v6.x:
 *  - open: ESP_ERR_HTTP_CONNECT covers refused, unreachable, DNS, connect timeout and TLS;
 *    ESP_ERR_HTTP_WRITE_DATA is a head that could not be sent;
 *  - write: 0 means the send timed out, but esp_http_client_write() also returns 0 when a
 *    later chunk of the same call timed out after earlier ones went out, so how much of the
 *    body was sent is unknown: a failure (timeout), never "try again";
 *  - fetch_headers and read: -ESP_ERR_HTTP_EAGAIN is the read timeout with nothing received
 *    (blocking mode too: esp_http_client_perform() passes it on as ESP_ERR_HTTP_EAGAIN) and
 *    the call may be repeated; ESP_FAIL is a closed or reset connection or a bad response;
 *  - ESP_ERR_HTTP_EAGAIN / _CONNECTING from open would be async mode's "in progress", which
 *    blocking mode never returns: a failure, not a retry.
 */
int fw_http_map_esp(enum fw_http_phase phase, int64_t rc);

/*
 * The host part of an http:// or https:// URL into buf (cap bytes, NUL-terminated): what the
 * resolve step looks up. "http://[fd00::1]:8086/x" gives "fd00::1". Returns 0, -PL_EINVAL for
 * a URL without a scheme or host (or with credentials, which the configuration forbids),
 * -PL_ENOSPC if the host does not fit.
 */
int fw_http_url_host(const char *url, char *buf, size_t cap);

#endif
