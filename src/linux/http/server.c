/* SPDX-License-Identifier: MIT */
/*
 * The web server's connections and routes (http.h): the socket bound here (so that a taken
 * address is a clear error at the start, not a NULL from libmicrohttpd), handed to
 * libmicrohttpd with the limits of http.h; GET and HEAD only; the files of web/ with their
 * content types, an ETag and a Content-Security-Policy that lets the page load nothing from
 * elsewhere; /metrics and /api/v1 with Cache-Control: no-store.
 */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/http.h"
#include "http/http_priv.h"
#include "log.h"
#include "powerlogger/common.h"

#define CSP "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

/* The assets' ETags: FNV-1a of each file, made once at the start. */
static char (*etags)[24];

struct pl_store *pl_http_store(struct pl_http *h, struct pl_http_answer *a)
{
	if (h->store == NULL &&
	    pl_store_open(h->cfg->store.path, PL_STORE_READONLY | PL_STORE_NOCHECK, &h->store,
			  h->store_err, sizeof(h->store_err)) != 0) {
		h->store = NULL;
		pl_http_error(a, 503, "the store cannot be read: %s", h->store_err);
	}
	return h->store;
}

void pl_http_error(struct pl_http_answer *a, unsigned status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* the message may quote a parameter as the client sent it: ASCII only, so the answer
	 * is valid JSON (UTF-8) whatever bytes it had */
	for (char *q = msg; *q; q++)
		if ((unsigned char)*q < 0x20 || (unsigned char)*q >= 0x7f)
			*q = '?';
	pl_buf_free(&a->b);
	a->b.oom = 0;
	a->status = status;
	a->type = "application/json";
	pl_buf_puts(&a->b, "{\"error\": ");
	pl_buf_json_str(&a->b, msg);
	pl_buf_puts(&a->b, "}\n");
}

static const char *get_arg(void *req, const char *name)
{
	return MHD_lookup_connection_value(req, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *r,
			     const char *type, const char *cache)
{
	enum MHD_Result ret;

	if (r == NULL)
		return MHD_NO;
	if (type)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, cache);
	MHD_add_response_header(r, "Content-Security-Policy", CSP);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result answer_buf(struct MHD_Connection *c, struct pl_http_answer *a)
{
	struct MHD_Response *r;

	if (a->b.oom) {
		pl_buf_free(&a->b);
		a->b.oom = 0;
		pl_http_error(a, 500, "out of memory (or the answer is too large)");
	}
	r = MHD_create_response_from_buffer(a->b.len, a->b.p ? a->b.p : (char *)"",
					    a->b.p ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (r == NULL) {
		pl_buf_free(&a->b);
		return MHD_NO;
	}
	a->b.p = NULL;
	return queue(c, a->status, r, a->type, "no-store");
}

static enum MHD_Result answer_text(struct MHD_Connection *c, unsigned status, const char *text)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text,
								 MHD_RESPMEM_PERSISTENT);

	return queue(c, status, r, "text/plain; charset=utf-8", "no-store");
}

static enum MHD_Result answer_asset(struct MHD_Connection *c, size_t i)
{
	const struct pl_web_asset *w = &pl_web_assets[i];
	const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						      MHD_HTTP_HEADER_IF_NONE_MATCH);
	struct MHD_Response *r;
	unsigned status = MHD_HTTP_OK;

	if (inm != NULL && strstr(inm, etags[i]) != NULL) {
		r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		status = MHD_HTTP_NOT_MODIFIED;
	} else {
		r = MHD_create_response_from_buffer(w->size, (void *)w->data,
						    MHD_RESPMEM_PERSISTENT);
	}
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etags[i]);
	/* no-cache: kept, but asked again each time (an upgraded logger serves a new page) */
	return queue(c, status, r, w->type, "no-cache");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct pl_http *h = cls;
	struct pl_http_answer a = { .status = 200, .type = "application/json" };
	const char *path = strcmp(url, "/") == 0 ? "/index.html" : url;

	static int seen; /* *con_cls after the first call of a request: its headers are in */

	(void)version;
	(void)upload_data;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		struct MHD_Response *r = MHD_create_response_from_buffer(
			strlen("read-only: GET and HEAD only\n"),
			(void *)"read-only: GET and HEAD only\n", MHD_RESPMEM_PERSISTENT);

		if (r == NULL)
			return MHD_NO;
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
		return queue(c, MHD_HTTP_METHOD_NOT_ALLOWED, r, "text/plain; charset=utf-8",
			     "no-store");
	}
	/* The answer waits for the second call, when the request is complete: an answer queued
	 * before would close the connection (no keep-alive). A body (on a GET) is not read:
	 * refused, and the connection is closed. */
	if (*con_cls == NULL) {
		*con_cls = &seen;
		return MHD_YES;
	}
	if (*upload_data_size != 0)
		return answer_text(c, MHD_HTTP_CONTENT_TOO_LARGE, "no request body here\n");
	pl_live_get(h->live, h->snap);
	if (strcmp(path, "/metrics") == 0) {
		pl_http_metrics(h, &a);
		return answer_buf(c, &a);
	}
	if (strncmp(path, "/api/", 5) == 0) {
		if (strcmp(path, "/api/v1/status") == 0)
			pl_api_status(h, &a);
		else if (strcmp(path, "/api/v1/energy") == 0)
			pl_api_energy(h, get_arg, c, &a);
		else if (strcmp(path, "/api/v1/power") == 0)
			pl_api_power(h, get_arg, c, &a);
		else
			pl_http_error(&a, 404, "no such path (see /api/v1/status, /api/v1/energy, "
				      "/api/v1/power)");
		return answer_buf(c, &a);
	}
	for (size_t i = 0; i < pl_web_nassets; i++)
		if (strcmp(path, pl_web_assets[i].path) == 0)
			return answer_asset(c, i);
	return answer_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
}

static const char *bind_error(int e)
{
	switch (e) {
	case EADDRINUSE:
		return "address in use (another program listens there: stop it or change "
		       "[http] listen)";
	case EADDRNOTAVAIL:
		return "no such address on this machine";
	case EACCES:
		return "permission denied (ports below 1024 need privileges)";
	default:
		return strerror(e);
	}
}

/* A listening socket for host:port, close-on-exec (a reload executes the program anew). */
static int listen_on(const struct pl_config_http *c, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV }, *res, *ai;
	char port[8];
	int rc, fd = -1, e = 0, one = 1;

	snprintf(port, sizeof(port), "%u", (unsigned)c->port);
	rc = getaddrinfo(c->host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", c->listen, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0)
			break;
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(err, errlen, "cannot listen on %s: %s", c->listen, bind_error(e));
	return fd;
}

static void make_etags(void)
{
	static char tags[64][24];

	etags = tags;
	for (size_t i = 0; i < pl_web_nassets && i < 64; i++) {
		uint64_t x = 0xcbf29ce484222325u;

		for (size_t k = 0; k < pl_web_assets[i].size; k++)
			x = (x ^ pl_web_assets[i].data[k]) * 0x100000001b3u;
		snprintf(tags[i], sizeof(tags[i]), "\"%016llx\"", (unsigned long long)x);
	}
}

int pl_http_start(const struct pl_config *cfg, struct pl_live *live, struct pl_http **out,
		  char *err, size_t errlen)
{
	struct pl_http *h;
	int fd;

	*out = NULL;
	if (pl_web_nassets > 64) {
		snprintf(err, errlen, "too many files in web/ (at most 64)");
		return -1;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	h->cfg = cfg;
	h->live = live;
	h->snap = pl_live_new(live->nmeters, live->nsinks);
	if (h->snap == NULL) {
		snprintf(err, errlen, "out of memory");
		free(h);
		return -1;
	}
	make_etags();
	tzset(); /* localtime_r() in the server's thread: the zone read once, here */
	fd = listen_on(&cfg->http, err, errlen);
	if (fd < 0) {
		pl_http_stop(h);
		return -1;
	}
	h->mhd = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD, 0, NULL, NULL, on_request, h,
				  MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)PL_HTTP_CONN_MAX,
				  MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)PL_HTTP_PER_IP,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)PL_HTTP_CONN_MEM,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)PL_HTTP_TIMEOUT_S,
				  MHD_OPTION_END);
	if (h->mhd == NULL) {
		snprintf(err, errlen, "cannot serve on %s: libmicrohttpd did not start",
			 cfg->http.listen);
		close(fd);
		pl_http_stop(h);
		return -1;
	}
	*out = h;
	return 0;
}

void pl_http_stop(struct pl_http *h)
{
	if (h == NULL)
		return;
	if (h->mhd)
		MHD_stop_daemon(h->mhd); /* joins the thread, closes the socket */
	if (h->store)
		pl_store_close(h->store);
	pl_live_free(h->snap);
	free(h->tmp);
	free(h->edges);
	free(h);
}
