/*
 * InfluxDB writes over libcurl: one reused easy handle per sink (keep-alive), the write URL
 * built once with escaped query values, credentials set through curl's own options or one
 * Authorization header, and every outcome reduced to struct pl_influx_result.
 *
 * gzip is not implemented yet: zlib is not among the libraries the build links (libcurl only
 * decompresses responses; it does not compress request bodies), so pl_influx_new refuses
 * gzip = 1 rather than silently sending plain text.
 */
#include "influx.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BODY_MAX 4096 /* how much of an error body we keep; messages are short */

struct pl_influx {
	CURL *curl;
	struct curl_slist *headers;
	char *url;
	char *user, *password; /* secrets: wiped on free */
	char *auth_header;     /* "Authorization: Token ..." (secret) */
	long connect_timeout_ms, timeout_ms;
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

void pl_influx_free(struct pl_influx *s)
{
	if (s == NULL)
		return;
	if (s->curl)
		curl_easy_cleanup(s->curl);
	curl_slist_free_all(s->headers); /* holds a copy of the auth header */
	wipe_free(s->auth_header);
	wipe_free(s->user);
	wipe_free(s->password);
	free(s->url);
	free(s);
}

int pl_influx_new(const struct pl_influx_config *cfg, struct pl_influx **out)
{
	struct pl_influx *s;
	struct curl_slist *h;
	bool oom = false;
	int err;

	if (cfg == NULL || out == NULL || empty(cfg->url) || cfg->gzip)
		return -PL_EINVAL;
	if (pl_precision_v1(cfg->precision) == NULL)
		return -PL_EINVAL;
	switch (cfg->api) {
	case PL_INFLUX_V1:
	case PL_INFLUX_V3:
		if (empty(cfg->db))
			return -PL_EINVAL;
		break;
	case PL_INFLUX_V2:
		if (empty(cfg->org) || empty(cfg->bucket))
			return -PL_EINVAL;
		break;
	default:
		return -PL_EINVAL;
	}
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return -PL_ENOMEM;
		curl_ready = true;
	}
	s = calloc(1, sizeof *s);
	if (s == NULL)
		return -PL_ENOMEM;
	s->curl = curl_easy_init();
	if (s->curl == NULL) {
		err = -PL_ENOMEM;
		goto err_free;
	}
	err = build_url(s, cfg);
	if (err)
		goto err_free;
	s->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 5000;
	s->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000;
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
	if (oom) {
		err = -PL_ENOMEM;
		goto err_free;
	}
	/* "Expect:" turns off curl's 100-continue wait on bodies over 1 KiB: a round trip per
	 * batch for nothing, and 1.x answers 413 without reading the body anyway. */
	h = curl_slist_append(NULL, "Content-Type: text/plain; charset=utf-8");
	if (h)
		s->headers = h, h = curl_slist_append(s->headers, "Expect:");
	if (h && s->auth_header)
		h = curl_slist_append(s->headers, s->auth_header);
	if (h == NULL) {
		err = -PL_ENOMEM;
		goto err_free;
	}

	CURL *c = s->curl;
	curl_easy_setopt(c, CURLOPT_URL, s->url);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, s->headers);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->errbuf);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, s->connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, s->timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "powerlogger");
	if (!empty(cfg->ca_file))
		curl_easy_setopt(c, CURLOPT_CAINFO, cfg->ca_file);
	if (s->user != NULL) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERNAME, s->user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, s->password);
	}
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

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int pl_influx_write(struct pl_influx *s, const char *body, size_t len,
		    struct pl_influx_result *res)
{
	CURLcode rc;
	int64_t t0;

	if (s == NULL || res == NULL || (body == NULL && len > 0))
		return -PL_EINVAL;
	memset(res, 0, sizeof *res);
	s->body_len = 0;
	s->errbuf[0] = '\0';
	curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, body ? body : "");
	curl_easy_setopt(s->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	t0 = now_us();
	rc = curl_easy_perform(s->curl);
	res->elapsed_us = now_us() - t0;
	res->transport = transport_of(rc);
	if (rc == CURLE_OUT_OF_MEMORY)
		return -PL_ENOMEM;
	if (rc != CURLE_OK) {
		/* curl's messages name the host and port, never the credentials. */
		put_text(res->message, s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc),
			 strlen(s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc)));
		return 0;
	}
	curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &res->status);
	{
		curl_off_t ra = 0;

		if (curl_easy_getinfo(s->curl, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
			res->retry_after_s = ra > UINT32_MAX ? UINT32_MAX : (uint32_t)ra;
	}
	if (res->status < 200 || res->status > 299) {
		s->body[s->body_len] = '\0';
		if (!json_string(s->body, s->body_len, "error", res->message) &&
		    !json_string(s->body, s->body_len, "message", res->message))
			put_text(res->message, s->body, s->body_len);
		res->body = pl_sink_body_flags(s->body, s->body_len);
	}
	return 0;
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
