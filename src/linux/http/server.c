/* SPDX-License-Identifier: MIT */
/*
 * The web server's connections and routes (http.h): the socket bound here (so that a taken
 * address is a clear error at the start, not a NULL from libmicrohttpd), handed to
 * libmicrohttpd with the limits of http.h; GET and HEAD only; the files of web/ with their
 * content types, an ETag and a Content-Security-Policy that lets the page load nothing from
 * elsewhere; /metrics and /api/v1 with Cache-Control: no-store.
 *
 * The request head's deadline (PL_HTTP_HEAD_S): libmicrohttpd 0.9.75 has an idle timeout but no
 * deadline for a request's head, so a slow loris that sends a byte every few seconds keeps its
 * connections for ever, and a few addresses of them take every connection. Each connection is
 * in h->conns from its start (MHD_OPTION_NOTIFY_CONNECTION) to its end; the access handler's
 * first call marks its head in; a request answered (MHD_OPTION_NOTIFY_COMPLETED) starts the
 * clock again for the next on the same connection. Our own thread (the reaper) looks every
 * 0.5 s and shuts down (shutdown(SHUT_RDWR), not close) the socket of a connection late with its
 * head: MHD's thread then sees the end of it (epoll wakes on the hang-up) and closes it as it
 * closes any connection the client ended. The descriptor cannot be another one by then: MHD
 * tells the end (MHD_CONNECTION_NOTIFY_CLOSED) before it closes the socket, and both that and
 * the shutdown are under h->lock.
 *
 * All connections taken: libmicrohttpd at its limit stops accepting, and the next clients wait
 * in the kernel's backlog behind the attacker's own (who can keep it full). So its limit is a
 * few above PL_HTTP_CONN_MAX: it accepts on, and a connection beyond PL_HTTP_CONN_MAX makes us
 * shut down the oldest one still without its head (a slow loris is the oldest; the new one
 * when all others have theirs). A normal client's head comes at once, so it is served; a slow
 * loris from many addresses only cuts its own connections.
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
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/http.h"
#include "http/http_priv.h"
#include "log.h"
#include "powerlogger/common.h"

#define PL_STR_(x) #x
#define PL_STR(x) PL_STR_(x)

#define CSP "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

/* The assets' ETags: FNV-1a of each file, made once at the start. */
static char (*etags)[24];

/* *con_cls of a request: its head is in, the handler was called once (the answer comes on the
 * second call); or its URL has too many parameters (uri_log). NULL: not seen yet. */
static int seen, too_many;

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Under h->lock: the oldest connection still without its head shut down (the newest, just
 * accepted, when every other has its head in); 0 when there is none. */
static int cut_oldest(struct pl_http *h)
{
	struct pl_http_conn *old = NULL;

	for (size_t i = 0; i < sizeof(h->conns) / sizeof(h->conns[0]); i++) {
		struct pl_http_conn *k = &h->conns[i];

		if (k->c == NULL || k->head || k->cut)
			continue;
		if (old == NULL || k->since_ms < old->since_ms)
			old = k;
	}
	if (old == NULL)
		return 0;
	shutdown(old->fd, SHUT_RDWR);
	old->cut = 1;
	return 1;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct pl_http *h = cls;
	struct pl_http_conn *k = *socket_context;
	const union MHD_ConnectionInfo *ci;
	size_t n = 0;

	pthread_mutex_lock(&h->lock);
	if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (k != NULL)
			k->c = NULL;
		*socket_context = NULL;
		pthread_mutex_unlock(&h->lock);
		return;
	}
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	for (size_t i = 0; i < sizeof(h->conns) / sizeof(h->conns[0]); i++) {
		if (h->conns[i].c != NULL) {
			n++;
		} else if (k == NULL && ci != NULL) {
			k = &h->conns[i];
			*k = (struct pl_http_conn){ .c = c, .fd = ci->connect_fd,
						    .since_ms = mono_ms() };
			n++;
		}
	}
	*socket_context = k; /* NULL: not watched (cannot be: more slots than MHD's limit) */
	if (n > PL_HTTP_CONN_MAX)
		cut_oldest(h);
	pthread_mutex_unlock(&h->lock);
}

static struct pl_http_conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

/* A request answered (or given up): the next one on the connection has its own deadline. */
static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct pl_http *h = cls;
	struct pl_http_conn *k = conn_of(c);

	(void)con_cls;
	(void)toe;
	if (k == NULL)
		return;
	pthread_mutex_lock(&h->lock);
	k->head = 0;
	k->since_ms = mono_ms();
	pthread_mutex_unlock(&h->lock);
}

static void *reaper(void *arg)
{
	struct pl_http *h = arg;
	struct timespec ts;

	pthread_mutex_lock(&h->lock);
	while (!h->stopping) {
		int64_t now = mono_ms();

		for (size_t i = 0; i < sizeof(h->conns) / sizeof(h->conns[0]); i++) {
			struct pl_http_conn *k = &h->conns[i];

			if (k->c != NULL && !k->head && !k->cut &&
			    now - k->since_ms >= PL_HTTP_HEAD_S * 1000) {
				shutdown(k->fd, SHUT_RDWR);
				k->cut = 1;
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 500 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&h->wake, &h->lock, &ts);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

/*
 * The URL, as soon as the request line is in and before libmicrohttpd parses its query: each
 * parameter costs a record in the connection's PL_HTTP_CONN_MEM, and when they do not fit,
 * libmicrohttpd 0.9.75 neither answers nor closes (the client waits for the idle timeout). So
 * more than PL_HTTP_ARGS_MAX parameters are cut off here (the query ends at its '?': MHD gives
 * us its own buffer, which it parses just after) and the request is answered 414.
 */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	char *q = strchr(uri, '?');
	size_t n = 0;

	(void)cls;
	(void)c;
	if (q == NULL)
		return NULL;
	for (const char *p = q; *p; p++)
		n += *p == '&';
	if (n < PL_HTTP_ARGS_MAX)
		return NULL;
	q[1] = '\0';
	return &too_many;
}

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

	(void)version;
	(void)upload_data;
	if (*con_cls != &seen) {
		struct pl_http_conn *k = conn_of(c);

		if (k != NULL) {
			pthread_mutex_lock(&h->lock);
			k->head = 1;
			pthread_mutex_unlock(&h->lock);
		}
	}
	if (*con_cls == &too_many)
		return answer_text(c, MHD_HTTP_URI_TOO_LONG,
				   "too many query parameters (at most " PL_STR(PL_HTTP_ARGS_MAX)
				   ")\n");
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
	if (*con_cls != &seen) {
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

/* The lock, and the reaper's wake-up on the monotonic clock (its timed wait). */
static int init_lock(struct pl_http *h)
{
	pthread_condattr_t ca;
	int e;

	e = pthread_condattr_init(&ca);
	if (e != 0)
		goto out;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	e = pthread_cond_init(&h->wake, &ca);
	pthread_condattr_destroy(&ca);
	if (e != 0)
		goto out;
	e = pthread_mutex_init(&h->lock, NULL);
	if (e != 0)
		pthread_cond_destroy(&h->wake);
out:
	errno = e;
	return e ? -1 : 0;
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
	if (init_lock(h) != 0) {
		snprintf(err, errlen, "cannot start the web server's thread: %s", strerror(errno));
		free(h);
		return -1;
	}
	h->snap = pl_live_new(live->nmeters, live->nsinks);
	if (h->snap == NULL) {
		snprintf(err, errlen, "out of memory");
		pl_http_stop(h);
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
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)PL_HTTP_CONN_MAX + 4,
				  MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)PL_HTTP_PER_IP,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)PL_HTTP_CONN_MEM,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)PL_HTTP_TIMEOUT_S,
				  MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
				  MHD_OPTION_URI_LOG_CALLBACK, on_uri, h,
				  MHD_OPTION_END);
	if (h->mhd == NULL) {
		snprintf(err, errlen, "cannot serve on %s: libmicrohttpd did not start",
			 cfg->http.listen);
		close(fd);
		pl_http_stop(h);
		return -1;
	}
	errno = pthread_create(&h->reaper, NULL, reaper, h);
	if (errno != 0) {
		snprintf(err, errlen, "cannot start the web server's thread: %s", strerror(errno));
		pl_http_stop(h);
		return -1;
	}
	h->reaper_on = 1;
	*out = h;
	return 0;
}

void pl_http_stop(struct pl_http *h)
{
	if (h == NULL)
		return;
	if (h->reaper_on) {
		pthread_mutex_lock(&h->lock);
		h->stopping = 1;
		pthread_cond_signal(&h->wake);
		pthread_mutex_unlock(&h->lock);
		pthread_join(h->reaper, NULL);
	}
	if (h->mhd)
		MHD_stop_daemon(h->mhd); /* joins the thread, closes the socket */
	if (h->store)
		pl_store_close(h->store);
	pl_live_free(h->snap);
	free(h->tmp);
	free(h->edges);
	pthread_cond_destroy(&h->wake);
	pthread_mutex_destroy(&h->lock);
	free(h);
}
