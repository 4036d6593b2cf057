/* SPDX-License-Identifier: MIT */
/*
 * A POST in watchdog-sized steps (see fw_http.h).
 */
#include "fw_http.h"

#include <stdio.h>
#include <string.h>

#include "powerlogger/common.h"

/* The timeout for the next call: one step, or what is left of the deadline if less. 0 when
 * the deadline has passed. */
static int32_t next_timeout(const struct fw_http_ops *ops, void *ctx,
			    const struct fw_http_limits *lim, int64_t deadline)
{
	int64_t left = deadline - ops->now_ms(ctx);

	if (left <= 0)
		return 0;
	return left < lim->step_ms ? (int32_t)left : lim->step_ms;
}

static void failed(struct fw_http_result *res, enum pl_sink_transport x, const char *what)
{
	res->transport = x;
	res->status = 0;
	snprintf(res->msg, sizeof(res->msg), "%s", what);
}

static const char *phase_name(enum fw_http_phase p)
{
	switch (p) {
	case FW_HTTP_RESOLVE: return "the server's name could not be resolved";
	case FW_HTTP_OPEN: return "connect or request head failed";
	case FW_HTTP_WRITE: return "sending the body failed";
	case FW_HTTP_HEADERS: return "no response head";
	case FW_HTTP_READ: return "reading the response failed";
	}
	return "?";
}

/*
 * Repeats call `phase` while it answers FW_HTTP_AGAIN and the deadline allows, feeding the
 * watchdog after each call. Returns the call's last result, or FW_HTTP_FAIL(TIMEOUT) at the
 * deadline.
 */
static int run_step(const struct fw_http_ops *ops, void *ctx, const struct fw_http_limits *lim,
		    int64_t deadline, enum fw_http_phase phase, const char *buf, size_t len,
		    char *rbuf, size_t cap)
{
	for (;;) {
		int32_t t = next_timeout(ops, ctx, lim, deadline);
		int rc;

		if (t == 0)
			return FW_HTTP_FAIL(PL_XPORT_TIMEOUT);
		switch (phase) {
		case FW_HTTP_RESOLVE: rc = ops->resolve(ctx, t); break;
		case FW_HTTP_OPEN: rc = ops->open(ctx, len, t); break;
		case FW_HTTP_WRITE: rc = ops->write(ctx, buf, len, t); break;
		case FW_HTTP_HEADERS: rc = ops->fetch_headers(ctx, t); break;
		default: rc = ops->read(ctx, rbuf, cap, t); break;
		}
		ops->feed(ctx);
		/* only the waits for the answer may be repeated: open and write have sent an
		 * unknown part of the request when they fail */
		if (rc != FW_HTTP_AGAIN || phase == FW_HTTP_OPEN || phase == FW_HTTP_WRITE)
			return rc == FW_HTTP_AGAIN ? FW_HTTP_FAIL(PL_XPORT_TIMEOUT) : rc;
	}
}

int fw_http_post(const struct fw_http_ops *ops, void *ctx, const struct fw_http_limits *lim,
		 const char *body, size_t len, struct fw_http_result *res)
{
	int64_t deadline;
	size_t sent = 0, got = 0;
	int rc;

	if (ops == NULL || lim == NULL || res == NULL || (body == NULL && len > 0) ||
	    ops->open == NULL || ops->write == NULL || ops->fetch_headers == NULL ||
	    ops->read == NULL || ops->status == NULL || ops->close == NULL ||
	    ops->now_ms == NULL || ops->feed == NULL || lim->step_ms <= 0 ||
	    lim->deadline_ms < lim->step_ms)
		return -PL_EINVAL;
	res->transport = PL_XPORT_NONE;
	res->status = 0;
	res->msg[0] = '\0';
	deadline = ops->now_ms(ctx) + lim->deadline_ms;

	if (ops->resolve != NULL) {
		rc = run_step(ops, ctx, lim, deadline, FW_HTTP_RESOLVE, NULL, 0, NULL, 0);
		if (rc < 0) {
			failed(res, rc == FW_HTTP_FAIL(PL_XPORT_TIMEOUT) ? PL_XPORT_DNS
									 : FW_HTTP_FAIL_CLASS(rc),
			       phase_name(FW_HTTP_RESOLVE));
			goto out_close;
		}
	}
	rc = run_step(ops, ctx, lim, deadline, FW_HTTP_OPEN, NULL, len, NULL, 0);
	if (rc < 0) {
		failed(res, FW_HTTP_FAIL_CLASS(rc), phase_name(FW_HTTP_OPEN));
		goto out_close;
	}
	while (sent < len) {
		size_t n = len - sent < FW_HTTP_WRITE_CHUNK ? len - sent : FW_HTTP_WRITE_CHUNK;

		rc = run_step(ops, ctx, lim, deadline, FW_HTTP_WRITE, body + sent, n, NULL, 0);
		if (rc <= 0 || (size_t)rc > n) {
			failed(res, rc < 0 ? FW_HTTP_FAIL_CLASS(rc) : PL_XPORT_OTHER,
			       phase_name(FW_HTTP_WRITE));
			goto out_close;
		}
		sent += (size_t)rc;
	}
	rc = run_step(ops, ctx, lim, deadline, FW_HTTP_HEADERS, NULL, 0, NULL, 0);
	if (rc < 0) {
		failed(res, FW_HTTP_FAIL_CLASS(rc), phase_name(FW_HTTP_HEADERS));
		goto out_close;
	}
	res->status = ops->status(ctx);
	/* The start of the body is the server's message (all a 4xx needs). With the status in
	 * hand, a body that stalls or breaks off changes nothing: the answer stands. */
	while (got + 1 < sizeof(res->msg)) {
		rc = run_step(ops, ctx, lim, deadline, FW_HTTP_READ, NULL, 0, res->msg + got,
			      sizeof(res->msg) - 1 - got);
		if (rc <= 0 || (size_t)rc > sizeof(res->msg) - 1 - got)
			break;
		got += (size_t)rc;
	}
	res->msg[got] = '\0';
out_close:
	ops->close(ctx);
	ops->feed(ctx);
	return 0;
}

int fw_http_map_esp(enum fw_http_phase phase, int64_t rc)
{
	switch (phase) {
	case FW_HTTP_RESOLVE:
		return rc == FW_ESP_OK ? 0 : FW_HTTP_FAIL(PL_XPORT_DNS); /* not an ESP-IDF call */
	case FW_HTTP_OPEN:
		if (rc == FW_ESP_OK)
			return 0;
		if (rc == FW_ESP_ERR_HTTP_CONNECT)
			return FW_HTTP_FAIL(PL_XPORT_REFUSED);
		if (rc == FW_ESP_ERR_TIMEOUT)
			return FW_HTTP_FAIL(PL_XPORT_TIMEOUT);
		/* async mode's "in progress" cannot happen in blocking mode: no retry loop on it */
		return FW_HTTP_FAIL(PL_XPORT_OTHER);
	case FW_HTTP_WRITE:
		if (rc > 0)
			return rc > INT32_MAX ? FW_HTTP_FAIL(PL_XPORT_OTHER) : (int)rc;
		return FW_HTTP_FAIL(rc == 0 ? PL_XPORT_TIMEOUT : PL_XPORT_OTHER);
	case FW_HTTP_HEADERS:
		if (rc >= 0)
			return 0;
		if (rc == -FW_ESP_ERR_HTTP_EAGAIN)
			return FW_HTTP_AGAIN;
		/* closed, reset or a bad head: nothing usable came back */
		return FW_HTTP_FAIL(PL_XPORT_OTHER);
	case FW_HTTP_READ:
		if (rc >= 0)
			return rc > INT32_MAX ? FW_HTTP_FAIL(PL_XPORT_OTHER) : (int)rc;
		if (rc == -FW_ESP_ERR_HTTP_EAGAIN)
			return FW_HTTP_AGAIN;
		return FW_HTTP_FAIL(PL_XPORT_OTHER);
	}
	return FW_HTTP_FAIL(PL_XPORT_OTHER);
}

int fw_http_url_host(const char *url, char *buf, size_t cap)
{
	const char *p, *end;
	size_t n;

	if (url == NULL || buf == NULL || cap == 0)
		return -PL_EINVAL;
	if (strncmp(url, "http://", 7) == 0)
		p = url + 7;
	else if (strncmp(url, "https://", 8) == 0)
		p = url + 8;
	else
		return -PL_EINVAL;
	n = strcspn(p, "/?#"); /* the authority: host and port */
	if (memchr(p, '@', n) != NULL)
		return -PL_EINVAL;
	if (*p == '[') {
		p++;
		end = memchr(p, ']', n - 1);
		if (end == NULL)
			return -PL_EINVAL;
	} else {
		end = p + strcspn(p, ":/?#");
	}
	n = (size_t)(end - p);
	if (n == 0)
		return -PL_EINVAL;
	if (n >= cap)
		return -PL_ENOSPC;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return 0;
}
