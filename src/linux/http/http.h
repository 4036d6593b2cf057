/* SPDX-License-Identifier: MIT */
/*
 * The logger's web server (docs/http.md): `[http] listen = HOST:PORT` makes `powerlogger run`
 * serve the dashboard (the files of web/, built into the program), /metrics (Prometheus) and
 * /api/v1 (JSON and CSV), read-only.
 *
 * libmicrohttpd with its own polling thread (epoll where there is one): every request is
 * answered in that one thread, which has its own read-only store handle for the history
 * (store/query.h) and reads the loop's state only through the live box (live.h). The loop
 * never waits for it. Bounded against a slow or hostile client: PL_HTTP_CONN_MAX connections
 * (PL_HTTP_PER_IP from one address), PL_HTTP_CONN_MEM bytes per connection for the request
 * line and headers (a longer request is refused, not buffered), PL_HTTP_TIMEOUT_S of silence
 * closes a connection (slow loris), GET and HEAD only (405 otherwise), no request body.
 */
#ifndef PL_HTTP_H
#define PL_HTTP_H

#include "config/config.h"
#include "http/live.h"

#define PL_HTTP_CONN_MAX 64
#define PL_HTTP_PER_IP 32
#define PL_HTTP_CONN_MEM (16 * 1024)
#define PL_HTTP_TIMEOUT_S 10

struct pl_http;

/*
 * Binds cfg->http's address and starts serving; live must outlive the server. The store at
 * cfg->store.path is opened read-only for the history. Returns 0, or -1 with a message in err
 * ("cannot listen on 127.0.0.1:8080: address in use").
 */
int pl_http_start(const struct pl_config *cfg, struct pl_live *live, struct pl_http **out,
		  char *err, size_t errlen);

/* Stops the server (closes every connection and the socket) and frees it. NULL is fine. */
void pl_http_stop(struct pl_http *h);

#endif
