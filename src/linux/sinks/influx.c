/* SPDX-License-Identifier: MIT */
/*
 * InfluxDB writes over libcurl: one easy handle in one multi handle per sink, so that a write
 * can be started, driven a little at a time and collected while the caller prepares the next
 * batch, and so that the connection is kept alive across requests (the multi handle holds the
 * connection cache; removing the finished easy handle and adding it again reuses it). The
 * write URL is built once with escaped query values, credentials go through curl's own
 * options or one Authorization header, and every outcome is reduced to struct
 * pl_influx_result.
 *
 * Bodies are copied, and with gzip compressed, into a buffer the sink owns and reuses: libcurl
 * only decompresses responses, it does not compress request bodies, so zlib does that here.
 *
 * A v1 sink with create_database answers a 404 "database not found" by POSTing CREATE
 * DATABASE to /query and then the write again, all within the one request the caller started
 * and within its total timeout (stage below).
 */
#include "clock.h"
#include "sinks/influx.h"

#define ZLIB_CONST /* next_in is const: the caller's body is never written to */
#include <curl/curl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zlib.h>

#define BODY_MAX 4096 /* how much of an error body we keep; messages are short */

/* Where the request in flight is. */
enum stage {
	IDLE,     /* nothing in flight */
	WRITING,  /* the write the caller started */
	CREATING, /* CREATE DATABASE after that write's 404 */
	REWRITING /* the same write again, after the database was created */
};

struct pl_influx {
	CURLM *multi;
	CURL *curl;
	struct curl_slist *headers;       /* the write's */
	struct curl_slist *query_headers; /* CREATE DATABASE's (no Content-Encoding) */
	char *url;
	char *query_url;   /* v1 with create_database: base URL + "/query", else NULL */
	char *create_body; /* its form body, q=CREATE DATABASE "db" escaped */
	char *user, *password; /* secrets: wiped on free */
	char *auth_header;     /* "Authorization: Token ..." (secret) */
	long connect_timeout_ms, timeout_ms;
	enum pl_precision precision; /* of the lines encode_op makes */
	bool gzip;
	z_stream z; /* kept between requests: deflateReset is far cheaper than deflateInit */
	bool z_ready;
	char *req; /* the body in flight, owned (plain copy or gzip) */
	size_t req_len, req_cap;
	enum stage stage;
	int64_t t0_us;   /* when pl_influx_start was called */
	CURLcode rc;     /* curl's result of the last finished transfer */
	uint32_t connects; /* new connections made by this request's transfers so far */
	struct pl_influx_result first; /* the 404 that prompted CREATE DATABASE */
	char body[BODY_MAX];
	size_t body_len;
	char errbuf[CURL_ERROR_SIZE];
};

static bool curl_ready;

static char *dup_or_null(const char *s, bool *oom)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = strdup(s);
	if (d == NULL)
		*oom = true;
	return d;
}

static void wipe_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

static const char *precision_v3(enum pl_precision p)
{
	switch (p) {
	case PL_PREC_NS: return "nanosecond";
	case PL_PREC_US: return "microsecond";
	case PL_PREC_MS: return "millisecond";
	case PL_PREC_S: return "second";
	}
	return NULL;
}

static bool empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

/* Appends "&key=escaped(value)" (or "?key=..." for the first) to the URL being built. */
static int add_query(CURL *c, char *url, size_t cap, const char *key, const char *value)
{
	char *esc = curl_easy_escape(c, value, 0);
	size_t n = strlen(url);
	int w;

	if (esc == NULL)
		return -PL_ENOMEM;
	w = snprintf(url + n, cap - n, "%c%s=%s", strchr(url, '?') ? '&' : '?', key, esc);
	curl_free(esc);
	return (w < 0 || (size_t)w >= cap - n) ? -PL_EINVAL : 0;
}

/*
 * The form body of CREATE DATABASE "db" for POST /query. InfluxQL takes a double-quoted
 * identifier with \" and \\ escaped, so any database name the write accepts can be created.
 */
static int build_create(struct pl_influx *s, const char *db)
{
	size_t n = strlen(db), k;
	char *stmt = malloc(2 * n + sizeof "CREATE DATABASE \"\"");
	char *esc;

	if (stmt == NULL)
		return -PL_ENOMEM;
	k = (size_t)sprintf(stmt, "CREATE DATABASE \"");
	for (size_t i = 0; i < n; i++) {
		if (db[i] == '"' || db[i] == '\\')
			stmt[k++] = '\\';
		stmt[k++] = db[i];
	}
	stmt[k++] = '"';
	stmt[k] = '\0';
	esc = curl_easy_escape(s->curl, stmt, (int)k);
	free(stmt);
	if (esc == NULL)
		return -PL_ENOMEM;
	s->create_body = malloc(strlen(esc) + 3);
	if (s->create_body != NULL)
		sprintf(s->create_body, "q=%s", esc);
	curl_free(esc);
	return s->create_body ? 0 : -PL_ENOMEM;
}

static int build_url(struct pl_influx *s, const struct pl_influx_config *cfg)
{
	size_t base_len = strlen(cfg->url), cap;
	const char *path, *prec;
	int err = 0;

	while (base_len > 0 && cfg->url[base_len - 1] == '/')
		base_len--;
	cap = base_len + 64 + 3 * (strlen(cfg->db ? cfg->db : "") + strlen(cfg->rp ? cfg->rp : "") +
				   strlen(cfg->org ? cfg->org : "") +
				   strlen(cfg->bucket ? cfg->bucket : ""));
	s->url = malloc(cap);
	if (s->url == NULL)
		return -PL_ENOMEM;
	switch (cfg->api) {
	case PL_INFLUX_V1:
		path = "/write";
		prec = pl_precision_v1(cfg->precision);
		break;
	case PL_INFLUX_V2:
		path = "/api/v2/write";
		prec = pl_precision_v2(cfg->precision);
		break;
	default:
		path = "/api/v3/write_lp";
		prec = precision_v3(cfg->precision);
		break;
	}
	snprintf(s->url, cap, "%.*s%s", (int)base_len, cfg->url, path);
	if (cfg->api == PL_INFLUX_V2) {
		err = add_query(s->curl, s->url, cap, "org", cfg->org);
		if (!err)
			err = add_query(s->curl, s->url, cap, "bucket", cfg->bucket);
	} else {
		err = add_query(s->curl, s->url, cap, "db", cfg->db);
		if (!err && cfg->api == PL_INFLUX_V1 && !empty(cfg->rp))
			err = add_query(s->curl, s->url, cap, "rp", cfg->rp);
	}
	if (!err)
		err = add_query(s->curl, s->url, cap, "precision", prec);
	if (!err && cfg->api == PL_INFLUX_V1 && cfg->create_database) {
		s->query_url = malloc(base_len + sizeof "/query");
		if (s->query_url == NULL)
			return -PL_ENOMEM;
		snprintf(s->query_url, base_len + sizeof "/query", "%.*s/query", (int)base_len,
			 cfg->url);
		err = build_create(s, cfg->db);
	}
	return err;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
	struct pl_influx *s = user;
	size_t n = size * nmemb, room = sizeof s->body - 1 - s->body_len;

	memcpy(s->body + s->body_len, data, n < room ? n : room);
	s->body_len += n < room ? n : room;
	return n; /* keep reading (and discard) the rest, so the connection stays usable */
}

void pl_influx_abort(struct pl_influx *s)
{
	if (s == NULL || s->stage == IDLE)
		return;
	/* curl closes a connection whose transfer was cut short; the next request opens one. */
	curl_multi_remove_handle(s->multi, s->curl);
	s->stage = IDLE;
}

void pl_influx_free(struct pl_influx *s)
{
	if (s == NULL)
		return;
	pl_influx_abort(s);
	if (s->curl)
		curl_easy_cleanup(s->curl);
	if (s->multi)
		curl_multi_cleanup(s->multi); /* closes the kept-alive connection */
	if (s->z_ready)
		deflateEnd(&s->z);
	curl_slist_free_all(s->headers); /* holds a copy of the auth header */
	curl_slist_free_all(s->query_headers);
	wipe_free(s->auth_header);
	wipe_free(s->user);
	wipe_free(s->password);
	free(s->req);
	free(s->create_body);
	free(s->query_url);
	free(s->url);
	free(s);
}

/* Appends each header to *list; false when curl ran out of memory (the list stays valid). */
static bool add_headers(struct curl_slist **list, const char *const *lines)
{
	for (; *lines != NULL; lines++) {
		struct curl_slist *h = curl_slist_append(*list, *lines);

		if (h == NULL)
			return false;
		*list = h;
	}
	return true;
}

/* The configuration makes sense for its API (the URL, precision, database or bucket). */
static bool config_valid(const struct pl_influx_config *cfg)
{
	if (empty(cfg->url) || pl_precision_v1(cfg->precision) == NULL)
		return false;
	switch (cfg->api) {
	case PL_INFLUX_V1:
		return !empty(cfg->db);
	case PL_INFLUX_V3:
		return !empty(cfg->db) && !cfg->create_database;
	case PL_INFLUX_V2:
		return !empty(cfg->org) && !empty(cfg->bucket) && !cfg->create_database;
	default:
		return false;
	}
}

/* The credentials (1.x user and password, or the token's header) and the gzip stream:
 * 0, or -PL_ENOMEM. */
static int set_auth_and_gzip(struct pl_influx *s, const struct pl_influx_config *cfg)
{
	bool oom = false;

	if (cfg->api == PL_INFLUX_V1) {
		s->user = dup_or_null(cfg->user, &oom);
		s->password = dup_or_null(cfg->password ? cfg->password : "", &oom);
	} else if (!empty(cfg->token)) {
		size_t n = strlen(cfg->token) + 32;

		s->auth_header = malloc(n);
		if (s->auth_header == NULL)
			oom = true;
		else
			snprintf(s->auth_header, n, "Authorization: %s %s",
				 cfg->api == PL_INFLUX_V2 ? "Token" : "Bearer", cfg->token);
	}
	if (cfg->gzip) {
		/* Level 1: line protocol repeats its measurement and tags on every line, so the
		 * fastest level already shrinks a batch several times over, at a fraction of the
		 * CPU of the default level (which matters on a small board draining a backlog).
		 * 15 + 16: a 32 KiB window with a gzip header and trailer, as Content-Encoding:
		 * gzip means. */
		if (deflateInit2(&s->z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8,
				 Z_DEFAULT_STRATEGY) != Z_OK)
			oom = true;
		else
			s->z_ready = true;
		s->gzip = true;
	}
	return oom ? -PL_ENOMEM : 0;
}

/* The write's and the query's header lists: 0, or -PL_ENOMEM. */
static int set_headers(struct pl_influx *s, bool gzip)
{
	/* "Expect:" turns off curl's 100-continue wait on bodies over 1 KiB: a round trip per
	 * batch for nothing, and 1.x answers 413 without reading the body anyway. */
	const char *const write_lines[] = {
		"Content-Type: text/plain; charset=utf-8", "Expect:",
		gzip ? "Content-Encoding: gzip" : NULL, NULL,
	};
	const char *const query_lines[] = {
		"Content-Type: application/x-www-form-urlencoded", "Expect:", NULL,
	};

	if (!add_headers(&s->headers, write_lines) ||
	    (s->auth_header && !add_headers(&s->headers,
					    (const char *const[]){s->auth_header, NULL})) ||
	    (s->query_url && !add_headers(&s->query_headers, query_lines)))
		return -PL_ENOMEM;
	return 0;
}

/* The easy handle's options that stay the same for every request: 0, or -PL_ENOMEM. */
static int set_curl_options(struct pl_influx *s, const struct pl_influx_config *cfg)
{
	CURL *c = s->curl;

	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->errbuf);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, s->connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "powerlogger");
	if (!empty(cfg->ca_file)) {
		/* ca_file replaces the system's trust store rather than adding to it: Debian's
		 * libcurl also reads the directory /etc/ssl/certs unless told not to. */
		if (curl_easy_setopt(c, CURLOPT_CAINFO, cfg->ca_file) != CURLE_OK)
			return -PL_ENOMEM;
		curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
	}
	if (s->user != NULL) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERNAME, s->user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, s->password);
	}
	return 0;
}

int pl_influx_new(const struct pl_influx_config *cfg, struct pl_influx **out)
{
	struct pl_influx *s;
	int err;

	if (cfg == NULL || out == NULL || !config_valid(cfg))
		return -PL_EINVAL;
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return -PL_ENOMEM;
		curl_ready = true;
	}
	s = calloc(1, sizeof *s);
	if (s == NULL)
		return -PL_ENOMEM;
	s->precision = cfg->precision;
	s->curl = curl_easy_init();
	s->multi = curl_multi_init();
	if (s->curl == NULL || s->multi == NULL) {
		err = -PL_ENOMEM;
		goto err_free;
	}
	err = build_url(s, cfg);
	if (err)
		goto err_free;
	s->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 5000;
	s->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000;
	err = set_auth_and_gzip(s, cfg);
	if (!err)
		err = set_headers(s, cfg->gzip);
	if (!err)
		err = set_curl_options(s, cfg);
	if (err)
		goto err_free;
	*out = s;
	return 0;

err_free:
	pl_influx_free(s);
	return err;
}

const char *pl_influx_write_url(const struct pl_influx *s)
{
	return s ? s->url : NULL;
}

static enum pl_sink_transport transport_of(CURLcode rc)
{
	switch (rc) {
	case CURLE_OK:
		return PL_XPORT_NONE;
	case CURLE_COULDNT_CONNECT:
		return PL_XPORT_REFUSED;
	case CURLE_OPERATION_TIMEDOUT:
		return PL_XPORT_TIMEOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return PL_XPORT_DNS;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_SHUTDOWN_FAILED:
		return PL_XPORT_TLS;
	default:
		return PL_XPORT_OTHER;
	}
}

/* Copies printable text, replacing control characters with spaces, within the message cap. */
static void put_text(char *dst, const char *src, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n && k < PL_INFLUX_MSG_MAX; i++) {
		unsigned char ch = (unsigned char)src[i];

		dst[k++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
	}
	while (k > 0 && dst[k - 1] == ' ')
		k--;
	dst[k] = '\0';
}

/* If body is a JSON object with a string member `key`, copies its unescaped value to dst
 * (truncated to the message cap) and returns true. A tolerant scan, not a JSON parser: enough
 * for {"error":"..."} and {"code":"...","message":"..."}. */
static bool json_string(const char *body, size_t len, const char *key, char *dst)
{
	size_t klen = strlen(key), i = 0, k = 0;

	for (; i + klen + 2 <= len; i++) {
		if (body[i] == '"' && memcmp(body + i + 1, key, klen) == 0 && body[i + 1 + klen] == '"')
			break;
	}
	if (i + klen + 2 > len)
		return false;
	i += klen + 2;
	while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r'))
		i++;
	if (i >= len || body[i++] != ':')
		return false;
	while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r'))
		i++;
	if (i >= len || body[i++] != '"')
		return false;
	for (; i < len && body[i] != '"' && k < PL_INFLUX_MSG_MAX; i++) {
		char ch = body[i];

		if (ch == '\\' && i + 1 < len) {
			ch = body[++i];
			switch (ch) {
			case 'n': case 't': case 'r': case 'b': case 'f': ch = ' '; break;
			case 'u': ch = '?'; i += (i + 4 < len) ? 4 : 0; break;
			default: break; /* \" \\ \/ */
			}
		}
		dst[k++] = ((unsigned char)ch < 0x20) ? ' ' : ch;
	}
	dst[k] = '\0';
	return true;
}

/* The description of a failed transfer. curl's messages name the host and port, never the
 * credentials. A certificate from an unknown CA, or for another name, gets a hint at the fix,
 * because curl's text ("unable to get local issuer certificate", "no alternative certificate
 * subject name matches") does not say what to configure. */
static void transport_message(const struct pl_influx *s, CURLcode rc, char *dst)
{
	const char *what = s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc);
	char text[CURL_ERROR_SIZE + 128];

	if (rc == CURLE_PEER_FAILED_VERIFICATION) {
		bool unknown_ca = strstr(what, "local issuer") || strstr(what, "self-signed") ||
				  strstr(what, "self signed");

		bool wrong_name = strstr(what, "subject name") || strstr(what, "does not match");

		snprintf(text, sizeof text, "server certificate not %s: %s",
			 unknown_ca ? "trusted (ca_file must name the CA that signed it)" :
			 wrong_name ? "for this name (the host in url must be one the certificate "
				      "names)" :
				      "accepted", what);
	} else {
		snprintf(text, sizeof text, "%s", what);
	}
	put_text(dst, text, strlen(text));
}

/* The unsigned integer after the JSON member name `key` (e.g. "line_number"), or -1. A long
 * long: a line number up to UINT32_MAX must fit where long has 32 bits (armhf). */
static long long json_number(const char *body, size_t len, const char *key)
{
	size_t klen = strlen(key);

	for (size_t i = 0; i + klen + 2 < len; i++) {
		if (body[i] != '"' || memcmp(body + i + 1, key, klen) != 0 || body[i + 1 + klen] != '"')
			continue;
		i += klen + 2;
		while (i < len && (body[i] == ' ' || body[i] == ':'))
			i++;
		if (i >= len || body[i] < '0' || body[i] > '9')
			return -1;
		return strtoll(body + i, NULL, 10); /* the body is NUL-terminated by collect() */
	}
	return -1;
}

/* An HTML page's message: its <title>, which says what answered (a proxy, a login page). */
static void html_message(const char *body, size_t len, char *dst)
{
	const char *t = NULL, *end = NULL;
	char text[PL_INFLUX_MSG_MAX + 1];

	for (size_t i = 0; i + 7 <= len && t == NULL; i++) {
		if (strncasecmp(body + i, "<title>", 7) == 0)
			t = body + i + 7;
	}
	for (const char *p = t; p != NULL && p + 8 <= body + len; p++) {
		if (strncasecmp(p, "</title>", 8) == 0) {
			end = p;
			break;
		}
	}
	if (t != NULL && end != NULL && end > t)
		snprintf(text, sizeof text, "an HTML page, not InfluxDB's answer: \"%.*s\"",
			 (int)(end - t > 160 ? 160 : end - t), t);
	else
		snprintf(text, sizeof text, "an HTML page, not InfluxDB's answer");
	put_text(dst, text, strlen(text));
}

/*
 * A redirect's message. libcurl does not follow it, on purpose: a POST that a server moves
 * elsewhere is either lost (turned into a GET by 301/302) or sent where the configuration did
 * not say; and the Authorization header would go along. The user sets url to the final address.
 */
static void redirect_message(struct pl_influx *s, long status, char *dst)
{
	const char *to = NULL;
	char text[PL_INFLUX_MSG_MAX + 128];

	if (curl_easy_getinfo(s->curl, CURLINFO_REDIRECT_URL, &to) != CURLE_OK || to == NULL)
		to = NULL;
	if (to != NULL)
		snprintf(text, sizeof text,
			 "redirect to %s, not followed (set url to the final address)", to);
	else
		snprintf(text, sizeof text, "redirect (%ld) without a Location, not followed",
			 status);
	put_text(dst, text, strlen(text));
}

/* Fills res from the transfer that just finished with rc. */
static void collect(struct pl_influx *s, CURLcode rc, struct pl_influx_result *res)
{
	long connects = 0;
	curl_off_t ra = 0;

	memset(res, 0, sizeof *res);
	s->rc = rc;
	if (curl_easy_getinfo(s->curl, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK &&
	    connects > 0)
		s->connects += (uint32_t)connects;
	res->transport = transport_of(rc);
	if (rc != CURLE_OK) {
		transport_message(s, rc, res->message);
		return;
	}
	curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &res->status);
	/* libcurl reads both forms of Retry-After (seconds, or an HTTP-date, made relative to
	 * now) and gives 0 for a date in the past, a negative number and garbage. The value is
	 * passed on unclamped: the policy caps it, and the log says what the server asked. */
	if (curl_easy_getinfo(s->curl, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
		res->retry_after_s = ra > UINT32_MAX ? UINT32_MAX : (uint32_t)ra;
	s->body[s->body_len] = '\0';
	/* A 2xx carries no body from InfluxDB; one that has one (an error, an HTML page) is
	 * classified by it, so the body is looked at whatever the status. */
	res->body = pl_sink_body_flags(s->body, s->body_len);
	if (res->status == 204 ||
	    (res->status >= 200 && res->status <= 299 && !(res->body & (PL_BODY_ERROR | PL_BODY_HTML))))
		return;
	if (res->status >= 300 && res->status <= 399) {
		redirect_message(s, res->status, res->message);
	} else if (res->body & PL_BODY_HTML) {
		html_message(s->body, s->body_len, res->message);
	} else if (json_string(s->body, s->body_len, "error", res->message) ||
		   json_string(s->body, s->body_len, "message", res->message)) {
		/* 3.x lists the failed lines; the first one's number and reason make the message
		 * say what was wrong rather than only that something was. */
		char why[PL_INFLUX_MSG_MAX + 1], text[3 * PL_INFLUX_MSG_MAX];
		long long line = json_number(s->body, s->body_len, "line_number");

		/* the 3.x engine behind 2.x's endpoint: {"code":"invalid","line":N,...} */
		if (line < 0 && (res->body & PL_BODY_LINE_REPORT))
			line = json_number(s->body, s->body_len, "line");
		if (line > 0 && line <= (long long)UINT32_MAX)
			res->bad_line = (uint32_t)line;
		if (json_string(s->body, s->body_len, "error_message", why)) {
			snprintf(text, sizeof text, "%s: line %lld: %s", res->message, line, why);
			put_text(res->message, text, strlen(text));
		}
	} else {
		put_text(res->message, s->body, s->body_len);
	}
}

/*
 * Points the easy handle at one transfer and hands it to the multi handle. timeout_ms is what
 * is left of the request's total, so that CREATE DATABASE and the second write stay within it.
 */
static CURLMcode launch(struct pl_influx *s, const char *url, struct curl_slist *headers,
			const char *body, size_t len, long timeout_ms)
{
	s->body_len = 0;
	s->errbuf[0] = '\0';
	curl_easy_setopt(s->curl, CURLOPT_URL, url);
	curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(s->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(s->curl, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 1L);
	return curl_multi_add_handle(s->multi, s->curl);
}

static long time_left_ms(const struct pl_influx *s)
{
	return s->timeout_ms - (long)((pl_clock_mono_us() - s->t0_us) / 1000);
}

/* Makes room for n bytes of request body. */
static int reserve(struct pl_influx *s, size_t n)
{
	char *p;

	if (n <= s->req_cap)
		return 0;
	p = realloc(s->req, n);
	if (p == NULL)
		return -PL_ENOMEM;
	s->req = p;
	s->req_cap = n;
	return 0;
}

/* Compresses len bytes of body into s->req as one gzip member. */
static int compress_body(struct pl_influx *s, const char *body, size_t len)
{
	uLong bound;
	int zr, err;

	/* zlib counts in uInt (32 bits); 2 GiB leaves room for the growth below, and no sane
	 * batch comes near it. */
	if (len > UINT_MAX / 2)
		return -PL_EINVAL;
	/* Reset first: deflateBound reads the stream's state, and a finished gzip stream no
	 * longer counts its header and trailer. */
	if (deflateReset(&s->z) != Z_OK)
		return -PL_EINVAL;
	bound = deflateBound(&s->z, (uLong)len);
	err = reserve(s, bound);
	if (err)
		return err;
	s->z.next_in = (const Bytef *)body;
	s->z.avail_in = (uInt)len;
	s->z.next_out = (Bytef *)s->req;
	s->z.avail_out = (uInt)s->req_cap;
	/* With a deflateBound-sized buffer one call finishes; grow anyway should it not. */
	while ((zr = deflate(&s->z, Z_FINISH)) == Z_OK || zr == Z_BUF_ERROR) {
		size_t done = s->z.total_out;

		if (s->req_cap > UINT_MAX / 2)
			return -PL_EINVAL;
		err = reserve(s, 2 * s->req_cap);
		if (err)
			return err;
		s->z.next_out = (Bytef *)s->req + done;
		s->z.avail_out = (uInt)(s->req_cap - done);
	}
	if (zr != Z_STREAM_END)
		return -PL_EINVAL;
	s->req_len = s->z.total_out;
	return 0;
}

int pl_influx_sending(struct pl_influx *s)
{
	curl_off_t up = 0;

	if (s == NULL || s->stage != WRITING)
		return 0;
	if (curl_easy_getinfo(s->curl, CURLINFO_SIZE_UPLOAD_T, &up) != CURLE_OK)
		return 0;
	return up < (curl_off_t)s->req_len;
}

static int mcode_error(CURLMcode mc)
{
	return mc == CURLM_OUT_OF_MEMORY ? -PL_ENOMEM : -PL_EINVAL;
}

int pl_influx_start(struct pl_influx *s, const char *body, size_t len)
{
	CURLMcode mc;
	int err, running;

	if (s == NULL || (body == NULL && len > 0))
		return -PL_EINVAL;
	if (s->stage != IDLE)
		return -PL_EBUSY;
	if (s->gzip) {
		err = compress_body(s, body ? body : "", len);
	} else {
		err = reserve(s, len > 0 ? len : 1);
		if (!err && len > 0)
			memcpy(s->req, body, len);
		s->req_len = len;
	}
	if (err)
		return err;
	s->t0_us = pl_clock_mono_us();
	s->connects = 0;
	mc = launch(s, s->url, s->headers, s->req, s->req_len, s->timeout_ms);
	if (mc != CURLM_OK)
		return mcode_error(mc);
	s->stage = WRITING;
	/* Get the request onto the wire now, without waiting: on a kept-alive connection the
	 * headers and (socket buffers permitting) the body go out here, so the server works
	 * while the caller prepares its next batch. Errors surface in pl_influx_poll. */
	curl_multi_perform(s->multi, &running);
	return 0;
}

/*
 * What follows a finished transfer whose outcome is in *res: returns true when another
 * transfer of the same request was launched (CREATE DATABASE, or the write after it), false
 * when *res is the request's outcome.
 */
static bool next_transfer(struct pl_influx *s, struct pl_influx_result *res)
{
	char why[PL_INFLUX_MSG_MAX + 32]; /* room for "HTTP 403: " and a message */
	CURLMcode mc;

	switch (s->stage) {
	case WRITING:
		if (s->query_url == NULL || res->status != 404 ||
		    !(res->body & PL_BODY_DB_NOT_FOUND))
			return false;
		s->first = *res;
		mc = launch(s, s->query_url, s->query_headers, s->create_body,
			    strlen(s->create_body), time_left_ms(s));
		if (mc != CURLM_OK) {
			snprintf(why, sizeof why, "%s", curl_multi_strerror(mc));
			break;
		}
		s->stage = CREATING;
		return true;
	case CREATING:
		/* 1.x answers 200 with {"results":[{"statement_id":0}]} when it created the
		 * database (or it existed already); errors come as an "error" member, with 200
		 * (a statement that failed) or with 4xx (not allowed, not parsed). */
		if (res->transport != PL_XPORT_NONE) {
			snprintf(why, sizeof why, "%s", res->message);
		} else if (res->status != 200) {
			snprintf(why, sizeof why, "HTTP %ld%s%s", res->status,
				 res->message[0] ? ": " : "", res->message);
		} else if (!json_string(s->body, s->body_len, "error", why)) {
			mc = launch(s, s->url, s->headers, s->req, s->req_len, time_left_ms(s));
			if (mc == CURLM_OK) {
				s->stage = REWRITING;
				return true;
			}
			snprintf(why, sizeof why, "%s", curl_multi_strerror(mc));
		}
		break;
	default:
		return false;
	}
	/* The database could not be created: report the write's 404, and why. */
	*res = s->first;
	{
		char msg[2 * PL_INFLUX_MSG_MAX + 64];

		snprintf(msg, sizeof msg, "%s (CREATE DATABASE failed: %s)", s->first.message, why);
		put_text(res->message, msg, strlen(msg));
	}
	return false;
}

/* Ends the request after the multi handle failed (out of memory, or a broken handle): the
 * outcome is a transport error, to be retried like any other. Returns 1, as poll does. */
static int give_up(struct pl_influx *s, CURLMcode mc, struct pl_influx_result *res)
{
	const char *what = curl_multi_strerror(mc);

	pl_influx_abort(s);
	memset(res, 0, sizeof *res);
	res->transport = PL_XPORT_OTHER;
	put_text(res->message, what, strlen(what));
	res->connects = s->connects;
	res->elapsed_us = pl_clock_mono_us() - s->t0_us;
	s->rc = mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
	return 1;
}

int pl_influx_poll(struct pl_influx *s, int timeout_ms, struct pl_influx_result *res)
{
	int64_t deadline;

	/* Each transfer's outcome lands here; *res is written only when the request is over. */
	struct pl_influx_result r;

	if (s == NULL || res == NULL || s->stage == IDLE)
		return -PL_EINVAL;
	deadline = timeout_ms < 0 ? INT64_MAX : pl_clock_mono_us() + (int64_t)timeout_ms * 1000;
	for (;;) {
		CURLMcode mc;
		CURLMsg *msg;
		int running, left;
		int64_t now;

		mc = curl_multi_perform(s->multi, &running);
		while (mc == CURLM_OK && (msg = curl_multi_info_read(s->multi, &left)) != NULL) {
			CURLcode rc;

			if (msg->msg != CURLMSG_DONE || msg->easy_handle != s->curl)
				continue;
			rc = msg->data.result;
			/* Detached from the multi handle, the connection stays in its cache. */
			curl_multi_remove_handle(s->multi, s->curl);
			collect(s, rc, &r);
			if (next_transfer(s, &r))
				break; /* perform again: the next transfer has just been added */
			r.created_database = s->stage == REWRITING;
			r.connects = s->connects;
			r.elapsed_us = pl_clock_mono_us() - s->t0_us;
			s->stage = IDLE;
			*res = r;
			return 1;
		}
		if (mc != CURLM_OK)
			return give_up(s, mc, res);
		now = pl_clock_mono_us();
		if (now >= deadline)
			return 0;
		/* curl_multi_poll also wakes for curl's own timers (the timeouts), whichever is
		 * sooner; a request with nothing to do is looked at again within a second. */
		{
			int64_t wait_ms = (deadline - now + 999) / 1000;

			mc = curl_multi_poll(s->multi, NULL, 0, wait_ms > 1000 ? 1000 : (int)wait_ms,
					     NULL);
		}
		if (mc != CURLM_OK)
			return give_up(s, mc, res);
	}
}

int pl_influx_write(struct pl_influx *s, const char *body, size_t len,
		    struct pl_influx_result *res)
{
	int err;

	if (s == NULL || res == NULL || (body == NULL && len > 0))
		return -PL_EINVAL;
	memset(res, 0, sizeof *res);
	err = pl_influx_start(s, body, len);
	if (err == 0)
		err = pl_influx_poll(s, -1, res) == 1 ? 0 : -PL_EINVAL;
	if (err) {
		/* Nothing was sent: a caller that only reads res still sees a failure to retry. */
		res->transport = PL_XPORT_OTHER;
		put_text(res->message, pl_strerror(err), strlen(pl_strerror(err)));
		return err;
	}
	return s->rc == CURLE_OUT_OF_MEMORY ? -PL_ENOMEM : 0;
}

void pl_influx_response(const struct pl_influx_result *res, uint32_t batch_lines,
			struct pl_sink_response *out)
{
	if (res == NULL || out == NULL)
		return;
	memset(out, 0, sizeof *out);
	out->transport = res->transport;
	out->status = (int)res->status;
	out->retry_after_s = res->retry_after_s;
	out->body = res->body;
	out->batch_lines = batch_lines;
}

/* ---- the sink seam (sinks/sink.h) ------------------------------------------------------ */

static int open_op(const void *cfg, void **out)
{
	struct pl_influx *s = NULL;
	int rc = pl_influx_new(cfg, &s);

	*out = s;
	return rc;
}

static void close_op(void *s)
{
	pl_influx_free(s);
}

static int encode_op(void *s, char *buf, size_t cap, size_t *len, const char *device,
		     int64_t seq, const struct pl_interval_record *rec)
{
	(void)seq; /* a repeat overwrites the same point: InfluxDB needs no mark */
	return pl_lp_interval(buf, cap, len, NULL, device, rec,
			      ((struct pl_influx *)s)->precision);
}

static int start_op(void *s, const char *buf, size_t len)
{
	return pl_influx_start(s, buf, len);
}

static int poll_op(void *s, int timeout_ms, struct pl_sink_result *res)
{
	struct pl_influx_result r;
	int rc = pl_influx_poll(s, timeout_ms, &r);

	if (rc != 1)
		return rc;
	pl_influx_response(&r, 0, &res->resp);
	res->bad_line = r.bad_line;
	snprintf(res->message, sizeof res->message, "%s", r.message);
	return 1;
}

static int sending_op(void *s)
{
	return pl_influx_sending(s);
}

static void abort_op(void *s)
{
	pl_influx_abort(s);
}

const struct pl_sink_ops pl_influx_sink_ops = {
	.kind = "InfluxDB",
	.open = open_op,
	.close = close_op,
	.encode = encode_op,
	.start = start_op,
	.poll = poll_op,
	.sending = sending_op,
	.abort = abort_op,
};
