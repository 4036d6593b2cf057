/* SPDX-License-Identifier: MIT */
/*
 * The InfluxDB sink against a REAL influxd (Debian's 1.6, started by scripts/influxd.sh with
 * auth on and a 4 KiB max-body-size): every response class 1.6 can give is provoked and run
 * through the retry policy, and what was written is read back with GET /query; gzip bodies,
 * the asynchronous calls with keep-alive, and create_database are shown on it too. A second
 * REAL influxd serves HTTPS with a throwaway CA and certificate made at test time by
 * tests/tls_certs.sh (no key is committed). A server that cannot be started fails the test;
 * nothing is skipped.
 *
 * What 1.6 cannot answer (the 2.x and 3.x endpoints, 429 and 503 with Retry-After, 2.x JSON
 * errors) is shown against tests/fake_influx.py, a scripted FAKE server, and so are the exact
 * bytes of a gzip body and a listener that accepts and never answers (the timeouts).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sinks/influx.h"
#include "powerlogger/retry.h"

#define ADMIN "admin:admin-secret" /* scripts/influxd.sh's default test admin */

static char dir[64];     /* state directory of influxd and the fakes */
static char url[128];    /* the real influxd */
static char tls_url[128]; /* the real influxd over HTTPS (no auth) */
static char fake_url[64];
static char hang_url[64];
static bool influx_up, tls_up;

static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* Runs a shell command and returns its stdout (static buffer, NUL-terminated). */
static const char *capture(const char *fmt, ...)
{
	static char out[8192];
	char cmd[2048];
	va_list ap;
	FILE *p;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	p = popen(cmd, "r");
	if (p == NULL)
		return "";
	n = fread(out, 1, sizeof out - 1, p);
	out[n] = '\0';
	pclose(p);
	while (n > 0 && out[n - 1] == '\n')
		out[--n] = '\0';
	return out;
}

static const char *admin_query(const char *q)
{
	return capture("curl -s -u " ADMIN " -XPOST '%s/query' --data-urlencode \"q=%s\"", url, q);
}

static const char *select_db(const char *db, const char *q)
{
	return capture("curl -s -G -u " ADMIN " '%s/query' --data-urlencode 'db=%s' "
		       "--data-urlencode \"q=%s\"", url, db, q);
}

/* The HTTPS server, verified with the test CA. */
static const char *tls_query(const char *db, const char *q)
{
	return capture("curl -s --cacert '%s/certs/ca.pem' -XPOST '%s/query' "
		       "--data-urlencode 'db=%s' --data-urlencode \"q=%s\"", dir, tls_url, db, q);
}

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Starts a fake (mode "" or "--hang") and fills base with its URL. */
static int start_fake(const char *name, const char *mode, char *base, size_t cap)
{
	char port[16] = "";

	if (sh("python3 '%s/tests/fake_influx.py' '%s/%s.port' %s </dev/null >'%s/%s.log' 2>&1 & "
	       "true", PL_SOURCE_DIR, dir, name, mode, dir, name) != 0)
		return -1;
	for (int i = 0; i < 100 && port[0] == '\0'; i++) {
		usleep(50000);
		snprintf(port, sizeof port, "%s", capture("cat '%s/%s.port' 2>/dev/null", dir, name));
	}
	if (port[0] == '\0') {
		fprintf(stderr, "test_influx: the fake server %s did not start: %s\n", name,
			capture("cat '%s/%s.log'", dir, name));
		return -1;
	}
	snprintf(base, cap, "http://127.0.0.1:%s", port);
	return 0;
}

static int teardown(void **state);

static int setup_servers(void)
{
	const char *out;

	snprintf(dir, sizeof dir, "/tmp/pl-test-influx.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	out = capture("PL_INFLUX_DIR='%s' bash '%s/scripts/influxd.sh' start --auth "
		      "--max-body-size 4096 2>&1", dir, PL_SOURCE_DIR);
	if (strncmp(out, "http://", 7) != 0) {
		fprintf(stderr, "test_influx: FAILED to start influxd with scripts/influxd.sh:\n%s\n",
			out);
		return -1;
	}
	snprintf(url, sizeof url, "%s", out);
	influx_up = true;
	/* A database, a writer and a read-only user. */
	if (!strstr(admin_query("CREATE DATABASE pl"), "statement_id") ||
	    !strstr(admin_query("CREATE USER writer WITH PASSWORD 'w-secret'"), "statement_id") ||
	    !strstr(admin_query("GRANT ALL ON pl TO writer"), "statement_id") ||
	    !strstr(admin_query("CREATE USER ro WITH PASSWORD 'r-secret'"), "statement_id") ||
	    !strstr(admin_query("GRANT READ ON pl TO ro"), "statement_id")) {
		fprintf(stderr, "test_influx: FAILED to create the test database and users\n");
		return -1;
	}
	/* The HTTPS server: a throwaway CA and a certificate for 127.0.0.1 it signs. */
	out = capture("bash '%s/tests/tls_certs.sh' '%s/certs' 2>&1", PL_SOURCE_DIR, dir);
	if (out[0] != '\0') {
		fprintf(stderr, "test_influx: FAILED to make the test certificates:\n%s\n", out);
		return -1;
	}
	out = capture("mkdir -p '%s/tls' && PL_INFLUX_DIR='%s/tls' bash '%s/scripts/influxd.sh' "
		      "start --https '%s/certs/server.pem' '%s/certs/server.key' 2>&1", dir, dir,
		      PL_SOURCE_DIR, dir, dir);
	if (strncmp(out, "https://", 8) != 0) {
		fprintf(stderr, "test_influx: FAILED to start influxd with --https:\n%s\n", out);
		return -1;
	}
	snprintf(tls_url, sizeof tls_url, "%s", out);
	tls_up = true;
	if (!strstr(tls_query("", "CREATE DATABASE t"), "statement_id")) {
		fprintf(stderr, "test_influx: FAILED to create the database on the HTTPS server\n");
		return -1;
	}
	if (start_fake("fake", "", fake_url, sizeof fake_url) != 0 ||
	    start_fake("hang", "--hang", hang_url, sizeof hang_url) != 0)
		return -1;
	return 0;
}

static int setup(void **state)
{
	if (setup_servers() == 0)
		return 0;
	teardown(state); /* cmocka does not call it when the setup fails */
	return -1;
}

static int teardown(void **state)
{
	(void)state;
	sh("for f in '%s'/*.port.pid; do [ -f \"$f\" ] && kill $(cat \"$f\") 2>/dev/null; done; "
	   "true", dir);
	if (influx_up)
		sh("PL_INFLUX_DIR='%s' bash '%s/scripts/influxd.sh' stop", dir, PL_SOURCE_DIR);
	if (tls_up)
		sh("PL_INFLUX_DIR='%s/tls' bash '%s/scripts/influxd.sh' stop", dir, PL_SOURCE_DIR);
	sh("rm -rf '%s'", dir);
	return 0;
}

static void expect_prefix(const char *s, const char *prefix)
{
	if (strncmp(s, prefix, strlen(prefix)) != 0)
		fail_msg("\"%s\" does not start with \"%s\"", s, prefix);
}

static void expect_in(const char *hay, const char *needle)
{
	if (strstr(hay, needle) == NULL)
		fail_msg("\"%s\" not in %s", needle, hay);
}

/* A v1 sink on the real server with the given database and credentials. */
static struct pl_influx *v1(const char *db, const char *user, const char *password)
{
	struct pl_influx_config cfg = {
		.url = url, .api = PL_INFLUX_V1, .db = db, .user = user, .password = password,
		.precision = PL_PREC_S, .connect_timeout_ms = 2000, .timeout_ms = 5000,
	};
	struct pl_influx *s = NULL;

	assert_int_equal(pl_influx_new(&cfg, &s), 0);
	return s;
}

/* Writes body and classifies the answer for a batch of `lines` lines. */
static enum pl_sink_action write_classify(struct pl_influx *s, const char *body, uint32_t lines,
					  struct pl_influx_result *res, unsigned *flags)
{
	struct pl_sink_response r;

	assert_int_equal(pl_influx_write(s, body, strlen(body), res), 0);
	pl_influx_response(res, lines, &r);
	return pl_sink_classify(&r, flags);
}

/* ------------------------------------------------------------------ real influxd */

static void test_write_and_read_back(void **state)
{
	struct pl_influx *s = v1("pl", "writer", "w-secret");
	struct pl_influx_result res;
	unsigned flags;
	const char *q;

	(void)state;
	expect_prefix(pl_influx_write_url(s), url);
	assert_int_equal(write_classify(s, "m,device=a v=1.5 1000\nm,device=a v=2.5 1010\n"
					   "m,device=b v=7 1000\n", 3, &res, &flags), PL_SINK_OK);
	assert_int_equal(res.status, 204);
	assert_int_equal(res.transport, PL_XPORT_NONE);
	assert_string_equal(res.message, "");
	assert_true(res.elapsed_us > 0);
	q = select_db("pl", "SELECT sum(v), count(v) FROM m WHERE device='a'");
	if (!strstr(q, "\"values\":[[\"1970-01-01T00:00:00Z\",4,2]]"))
		fail_msg("read back: %s", q);
	q = select_db("pl", "SELECT v FROM m WHERE device='b'");
	if (!strstr(q, "[\"1970-01-01T00:16:40Z\",7]"))
		fail_msg("read back: %s", q);
	pl_influx_free(s);
}

static void test_database_not_found(void **state)
{
	struct pl_influx *s = v1("nope", "admin", "admin-secret");
	struct pl_influx_result res;
	unsigned flags;

	(void)state;
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_NOTFOUND);
	assert_int_equal(res.status, 404);
	assert_true(res.body & PL_BODY_DB_NOT_FOUND);
	assert_non_null(strstr(res.message, "database not found"));
	assert_true(flags & PL_SINK_F_LOUD);
	pl_influx_free(s);
}

static void test_type_conflict(void **state)
{
	struct pl_influx *s = v1("pl", "writer", "w-secret");
	struct pl_influx_result res;
	unsigned flags;
	const char *q;

	(void)state;
	assert_int_equal(write_classify(s, "tc v=1.5 1\n", 1, &res, &flags), PL_SINK_OK);
	/* Two lines, one good, one an integer where a float is stored: partial write. */
	assert_int_equal(write_classify(s, "tc v=2.5 2\ntc v=3i 3\n", 2, &res, &flags),
			 PL_SINK_SPLIT);
	assert_int_equal(res.status, 400);
	assert_true(res.body & PL_BODY_PARTIAL_WRITE);
	assert_true(flags & PL_SINK_F_PARTIAL);
	assert_non_null(strstr(res.message, "field type conflict"));
	/* The good point of that batch was written, as the policy assumes. */
	q = select_db("pl", "SELECT count(v) FROM tc");
	if (!strstr(q, ",2]]"))
		fail_msg("after a partial write: %s", q);
	/* The bad line alone: quarantine. */
	assert_int_equal(write_classify(s, "tc v=3i 3\n", 1, &res, &flags), PL_SINK_QUARANTINE);
	assert_int_equal(res.status, 400);
	/* A malformed line alone: "unable to parse", quarantine. */
	assert_int_equal(write_classify(s, "tc v= 4\n", 1, &res, &flags), PL_SINK_QUARANTINE);
	assert_int_equal(res.status, 400);
	assert_true(res.body & PL_BODY_UNABLE_TO_PARSE);
	pl_influx_free(s);
}

/* A retention policy that does not exist: the REAL 1.6 answers 500, which is no passing
 * trouble of the server. Kept, loud, slow; the message names the policy. */
static void test_retention_policy_not_found(void **state)
{
	struct pl_influx_config cfg = {
		.url = url, .api = PL_INFLUX_V1, .db = "pl", .rp = "no_such_rp", .user = "writer",
		.password = "w-secret", .precision = PL_PREC_S, .connect_timeout_ms = 2000,
		.timeout_ms = 5000,
	};
	struct pl_influx *s = NULL;
	struct pl_influx_result res;
	unsigned flags;

	(void)state;
	assert_int_equal(pl_influx_new(&cfg, &s), 0);
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	assert_int_equal(res.status, 500);
	assert_int_equal(flags, PL_SINK_F_CONFIG | PL_SINK_F_LOUD);
	expect_in(res.message, "retention policy not found");
	expect_in(res.message, "no_such_rp");
	pl_influx_free(s);
}

/* Points older than the retention policy keeps: the REAL 1.6 answers 400 "partial write:
 * points beyond retention policy", having written the newer points. The old points will never
 * be accepted, so they are found by bisection and quarantined (kept in the store's quarantine,
 * not dropped); the batch's new point arrives. */
static void test_beyond_retention(void **state)
{
	struct pl_influx_config cfg = {
		.url = url, .api = PL_INFLUX_V1, .db = "pl", .rp = "short", .user = "writer",
		.password = "w-secret", .precision = PL_PREC_S, .connect_timeout_ms = 2000,
		.timeout_ms = 5000,
	};
	struct pl_influx *s = NULL;
	struct pl_influx_result res;
	unsigned flags;
	char body[128];
	const char *q;

	(void)state;
	assert_non_null(strstr(admin_query("CREATE RETENTION POLICY short ON pl DURATION 1h "
					   "REPLICATION 1"), "statement_id"));
	assert_int_equal(pl_influx_new(&cfg, &s), 0);
	snprintf(body, sizeof body, "old v=1 1000\nold v=2 %lld\n", (long long)time(NULL));
	assert_int_equal(write_classify(s, body, 2, &res, &flags), PL_SINK_SPLIT);
	assert_int_equal(res.status, 400);
	assert_int_equal(flags, PL_SINK_F_PARTIAL);
	expect_in(res.message, "points beyond retention policy");
	assert_int_equal(write_classify(s, "old v=1 1000\n", 1, &res, &flags), PL_SINK_QUARANTINE);
	assert_int_equal(flags, PL_SINK_F_PARTIAL | PL_SINK_F_LOUD);
	q = capture("curl -s -G -u " ADMIN " '%s/query' --data-urlencode 'db=pl' "
		    "--data-urlencode 'q=SELECT count(v) FROM short.old'", url);
	if (!strstr(q, ",1]]"))
		fail_msg("the new point of the partial write: %s", q);
	pl_influx_free(s);
}

/* 400s of the REAL 1.6 that are not about the lines, provoked with curl because this client
 * never sends them (a broken gzip body, no database): classified by their bodies, they keep
 * the data. */
static void test_real_400_not_about_lines(void **state)
{
	static const char *const posts[] = {
		"/write?db=pl&precision=s' -H 'Content-Encoding: gzip",
		"/write?precision=s",
	};
	(void)state;
	for (size_t i = 0; i < sizeof posts / sizeof posts[0]; i++) {
		const char *out = capture("curl -s -u writer:w-secret -w ' %%{http_code}' -XPOST "
					  "'%s%s' --data-binary 'm v=1 1'", url, posts[i]);
		struct pl_sink_response r = {.status = 0, .batch_lines = 1};
		const char *sp = strrchr(out, ' ');
		unsigned flags;

		assert_non_null(sp);
		assert_string_equal(sp + 1, "400");
		r.status = 400;
		r.body = pl_sink_body_flags(out, (size_t)(sp - out));
		assert_int_equal(pl_sink_classify(&r, &flags), PL_SINK_RETRY);
		if (flags != (PL_SINK_F_CONFIG | PL_SINK_F_LOUD))
			fail_msg("%s: flags %#x", out, flags);
	}
}

static void test_wrong_password(void **state)
{
	struct pl_influx *s = v1("pl", "writer", "not-the-password");
	struct pl_influx_result res;
	unsigned flags;

	(void)state;
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	assert_int_equal(res.status, 401);
	assert_int_equal(flags, PL_SINK_F_AUTH | PL_SINK_F_LOUD);
	assert_string_equal(res.message, "authorization failed");
	assert_null(strstr(res.message, "not-the-password"));
	pl_influx_free(s);
}

static void test_read_only_user(void **state)
{
	struct pl_influx *s = v1("pl", "ro", "r-secret");
	struct pl_influx_result res;
	unsigned flags;

	(void)state;
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	assert_int_equal(res.status, 403);
	assert_int_equal(flags, PL_SINK_F_AUTH | PL_SINK_F_LOUD);
	assert_non_null(strstr(res.message, "not authorized"));
	pl_influx_free(s);
}

static void test_body_too_large(void **state)
{
	struct pl_influx *s = v1("pl", "writer", "w-secret");
	struct pl_influx_result res;
	unsigned flags;
	static char big[8192];
	size_t n = 0;
	uint32_t lines = 0;

	(void)state;
	while (n < 6000) {
		n += (size_t)snprintf(big + n, sizeof big - n, "big,device=x v=%u %u\n", lines,
				      1000 + lines);
		lines++;
	}
	assert_int_equal(write_classify(s, big, lines, &res, &flags), PL_SINK_SPLIT);
	assert_int_equal(res.status, 413);
	/* One line still over the limit: the server's limit is wrong for a logger whose records
	 * are a few hundred bytes; the record is kept and retried slowly, loudly. */
	memset(big, 'a', 5000);
	memcpy(big, "big s=\"", 7);
	memcpy(big + 4990, "\" 1\n", 5);
	assert_int_equal(write_classify(s, big, 1, &res, &flags), PL_SINK_RETRY);
	assert_int_equal(flags, PL_SINK_F_CONFIG | PL_SINK_F_LOUD);
	assert_int_equal(res.status, 413);
	pl_influx_free(s);
}

/* gzip on the real server: the points arrive, and a body over max-body-size (4 KiB) when
 * plain passes compressed, because 1.x checks the size of what is on the wire. */
static void test_gzip_real(void **state)
{
	struct pl_influx_config cfg = {
		.url = url, .api = PL_INFLUX_V1, .db = "pl", .user = "writer", .password = "w-secret",
		.precision = PL_PREC_S, .gzip = 1, .timeout_ms = 5000,
	};
	struct pl_influx *s = NULL;
	struct pl_influx_result res;
	unsigned flags;
	static char big[8192];
	size_t n = 0;
	uint32_t lines = 0;
	const char *q;

	(void)state;
	assert_int_equal(pl_influx_new(&cfg, &s), 0);
	assert_int_equal(write_classify(s, "gz,device=a v=1.5 1000\ngz,device=a v=2.5 1010\n", 2,
					&res, &flags), PL_SINK_OK);
	assert_int_equal(res.status, 204);
	q = select_db("pl", "SELECT sum(v), count(v) FROM gz WHERE device='a'");
	if (!strstr(q, "\"values\":[[\"1970-01-01T00:00:00Z\",4,2]]"))
		fail_msg("read back: %s", q);
	while (n < 6000) {
		n += (size_t)snprintf(big + n, sizeof big - n, "gzbig,device=x v=%u %u\n", lines,
				      1000 + lines);
		lines++;
	}
	assert_int_equal(write_classify(s, big, lines, &res, &flags), PL_SINK_OK);
	assert_int_equal(res.status, 204);
	q = select_db("pl", "SELECT count(v) FROM gzbig");
	{
		char want[32];

		snprintf(want, sizeof want, ",%u]]", lines);
		if (!strstr(q, want))
			fail_msg("read back %u lines: %s", lines, q);
	}
	pl_influx_free(s);
}

/* start/poll on the real server: the connection is reused from one request to the next
 * (curl reports no new connection), the caller's buffer is free as soon as start returns, and
 * one request at a time. */
static void test_async_keepalive(void **state)
{
	struct pl_influx *s = v1("pl", "writer", "w-secret");
	struct pl_influx_result res;
	char buf[64];
	const char *q;
	int rc;

	(void)state;
	assert_int_equal(pl_influx_poll(s, 0, &res), -PL_EINVAL); /* nothing in flight */
	snprintf(buf, sizeof buf, "ka v=1 1\n");
	assert_int_equal(pl_influx_start(s, buf, strlen(buf)), 0);
	memset(buf, 'x', sizeof buf); /* the sink has its own copy */
	assert_int_equal(pl_influx_start(s, "ka v=9 9\n", 9), -PL_EBUSY);
	assert_int_equal(pl_influx_write(s, "ka v=9 9\n", 9, &res), -PL_EBUSY);
	assert_int_equal(res.transport, PL_XPORT_OTHER); /* reads as "retry", not as success */
	while ((rc = pl_influx_poll(s, 10, &res)) == 0)
		; /* the caller would prepare its next batch here */
	assert_int_equal(rc, 1);
	assert_int_equal(res.status, 204);
	assert_int_equal(res.connects, 1);
	assert_int_equal(pl_influx_poll(s, 0, &res), -PL_EINVAL); /* collected: idle again */

	snprintf(buf, sizeof buf, "ka v=2 2\n");
	assert_int_equal(pl_influx_start(s, buf, strlen(buf)), 0);
	assert_int_equal(pl_influx_poll(s, -1, &res), 1);
	assert_int_equal(res.status, 204);
	assert_int_equal(res.connects, 0); /* kept alive */
	/* The blocking call is start + poll(-1) on the same connection. */
	assert_int_equal(pl_influx_write(s, "ka v=3 3\n", 9, &res), 0);
	assert_int_equal(res.status, 204);
	assert_int_equal(res.connects, 0);
	q = select_db("pl", "SELECT sum(v), count(v) FROM ka");
	if (!strstr(q, ",6,3]]"))
		fail_msg("read back: %s", q);
	pl_influx_free(s);
}

/* create_database on the real server: a write to a missing database creates it (same
 * credentials, POST /query) and is written; the next write is plain. Off, the 404 stays. */
static void test_create_database(void **state)
{
	const char *db = "pl new \"db\"";
	struct pl_influx_config cfg = {
		.url = url, .api = PL_INFLUX_V1, .db = db, .user = "admin",
		.password = "admin-secret", .precision = PL_PREC_S, .timeout_ms = 5000,
	};
	struct pl_influx *s = NULL;
	struct pl_influx_result res;
	unsigned flags;
	const char *q;

	(void)state;
	/* Off (the default): 404, kept and reported, as before. */
	assert_int_equal(pl_influx_new(&cfg, &s), 0);
	assert_int_equal(write_classify(s, "cd v=1 1\n", 1, &res, &flags), PL_SINK_NOTFOUND);
	assert_int_equal(res.status, 404);
	assert_int_equal(res.created_database, 0);
	pl_influx_free(s);

	cfg.create_database = 1;
	assert_int_equal(pl_influx_new(&cfg, &s), 0);
	assert_int_equal(write_classify(s, "cd v=1 1\ncd v=2 2\n", 2, &res, &flags), PL_SINK_OK);
	assert_int_equal(res.status, 204);
	assert_int_equal(res.created_database, 1);
	assert_int_equal(res.connects, 1); /* write, CREATE, write: one connection */
	assert_string_equal(res.message, "");
	assert_int_equal(write_classify(s, "cd v=3 3\n", 1, &res, &flags), PL_SINK_OK);
	assert_int_equal(res.created_database, 0);
	q = select_db(db, "SELECT sum(v), count(v) FROM cd");
	if (!strstr(q, ",6,3]]"))
		fail_msg("read back: %s", q);
	pl_influx_free(s);
}

/* create_database with a user that may write but not create: the write's 404 is reported,
 * with why the database could not be created, and classified as before. */
static void test_create_database_refused(void **state)
{
	struct pl_influx_config cfg = {
		.url = url, .api = PL_INFLUX_V1, .db = "pl_missing", .user = "writer",
		.password = "w-secret", .precision = PL_PREC_S, .create_database = 1,
	};
	struct pl_influx *s = NULL;
	struct pl_influx_result res;
	unsigned flags;

	(void)state;
	assert_int_equal(pl_influx_new(&cfg, &s), 0);
	assert_int_equal(write_classify(s, "cd v=1 1\n", 1, &res, &flags), PL_SINK_NOTFOUND);
	assert_int_equal(res.status, 404);
	assert_true(res.body & PL_BODY_DB_NOT_FOUND);
	assert_int_equal(res.created_database, 0);
	expect_prefix(res.message, "database not found");
	if (!strstr(res.message, "CREATE DATABASE failed: HTTP 403"))
		fail_msg("message: %s", res.message);
	assert_null(strstr(res.message, "w-secret"));
	assert_true(flags & PL_SINK_F_LOUD);
	pl_influx_free(s);
}

/* Last on the real server: stop it, and the next write is refused at once. */
static void test_server_stopped(void **state)
{
	struct pl_influx *s = v1("pl", "writer", "w-secret");
	struct pl_influx_result res;
	unsigned flags;

	(void)state;
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_OK);
	assert_int_equal(sh("PL_INFLUX_DIR='%s' bash '%s/scripts/influxd.sh' stop", dir,
			    PL_SOURCE_DIR), 0);
	influx_up = false;
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	assert_int_equal(res.transport, PL_XPORT_REFUSED);
	assert_int_equal(res.status, 0);
	assert_true(res.message[0] != '\0');
	assert_true(res.elapsed_us < 2000000);
	pl_influx_free(s);
}

/* ------------------------------------------------------------------ real influxd over HTTPS */

static struct pl_influx *tls_sink(const char *ca_file)
{
	struct pl_influx_config cfg = {
		.url = tls_url, .api = PL_INFLUX_V1, .db = "t", .precision = PL_PREC_S,
		.ca_file = ca_file, .connect_timeout_ms = 5000, .timeout_ms = 10000,
	};
	struct pl_influx *s = NULL;

	assert_int_equal(pl_influx_new(&cfg, &s), 0);
	return s;
}

/* The private CA is not in the system's store: not trusted, a loud retry, and the message
 * says what to configure. */
static void test_https_untrusted(void **state)
{
	struct pl_influx *s = tls_sink(NULL);
	struct pl_influx_result res;
	unsigned flags;

	(void)state;
	expect_prefix(pl_influx_write_url(s), "https://127.0.0.1:");
	assert_int_equal(write_classify(s, "tls v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	assert_int_equal(res.transport, PL_XPORT_TLS);
	assert_int_equal(res.status, 0);
	assert_true(flags & PL_SINK_F_LOUD);
	expect_prefix(res.message, "server certificate not trusted (ca_file must name the CA");
	expect_in(res.message, "SSL certificate problem");
	pl_influx_free(s);
}

static void test_https_ca_file(void **state)
{
	char ca[128];
	struct pl_influx *s;
	struct pl_influx_result res;
	unsigned flags;
	const char *q;

	(void)state;
	snprintf(ca, sizeof ca, "%s/certs/ca.pem", dir);
	s = tls_sink(ca);
	assert_int_equal(write_classify(s, "tls v=1 1\ntls v=2 2\n", 2, &res, &flags), PL_SINK_OK);
	assert_int_equal(res.status, 204);
	assert_int_equal(res.connects, 1);
	assert_int_equal(write_classify(s, "tls v=3 3\n", 1, &res, &flags), PL_SINK_OK);
	assert_int_equal(res.connects, 0); /* the TLS session is kept alive as well */
	q = tls_query("t", "SELECT sum(v), count(v) FROM tls");
	if (!strstr(q, ",6,3]]"))
		fail_msg("read back: %s", q);
	pl_influx_free(s);
}

/* A certificate for other names than the one in url (here the same address written as an
 * IPv4-mapped IPv6 address, which the certificate does not list): refused, loud, and the
 * message says what to change. */
static void test_https_wrong_name(void **state)
{
	struct pl_influx_config cfg = {
		.api = PL_INFLUX_V1, .db = "t", .precision = PL_PREC_S, .connect_timeout_ms = 5000,
		.timeout_ms = 10000,
	};
	char ca[128], other[160];
	struct pl_influx *s = NULL;
	struct pl_influx_result res;
	unsigned flags;

	(void)state;
	snprintf(ca, sizeof ca, "%s/certs/ca.pem", dir);
	snprintf(other, sizeof other, "https://[::ffff:127.0.0.1]%s", strrchr(tls_url, ':'));
	cfg.url = other;
	cfg.ca_file = ca;
	assert_int_equal(pl_influx_new(&cfg, &s), 0);
	assert_int_equal(write_classify(s, "tls v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	assert_int_equal(res.transport, PL_XPORT_TLS);
	assert_true(flags & PL_SINK_F_LOUD);
	expect_prefix(res.message, "server certificate not for this name (the host in url must "
				   "be one the certificate names)");
	expect_in(res.message, "::ffff:127.0.0.1");
	pl_influx_free(s);
}

/* A CA that did not sign the server's certificate, and no system CA to fall back on. */
static void test_https_other_ca(void **state)
{
	char ca[128];
	struct pl_influx *s;
	struct pl_influx_result res;
	unsigned flags;

	(void)state;
	snprintf(ca, sizeof ca, "%s/certs/other-ca.pem", dir);
	s = tls_sink(ca);
	assert_int_equal(write_classify(s, "tls v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	assert_int_equal(res.transport, PL_XPORT_TLS);
	expect_prefix(res.message, "server certificate not trusted");
	pl_influx_free(s);
}

/* A ca_file that is not there: a TLS error that names the file (not a secret). */
static void test_https_missing_ca_file(void **state)
{
	char ca[128];
	struct pl_influx *s;
	struct pl_influx_result res;
	unsigned flags;

	(void)state;
	snprintf(ca, sizeof ca, "%s/certs/no-such-ca.pem", dir);
	s = tls_sink(ca);
	assert_int_equal(write_classify(s, "tls v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	assert_int_equal(res.transport, PL_XPORT_TLS);
	expect_in(res.message, "no-such-ca.pem");
	pl_influx_free(s);
}

/* ------------------------------------------------------------------ listener that never answers */

static void test_timeout(void **state)
{
	struct pl_influx_config cfg = {
		.url = hang_url, .api = PL_INFLUX_V1, .db = "pl", .precision = PL_PREC_S,
		.connect_timeout_ms = 500, .timeout_ms = 1000,
	};
	struct pl_influx *s = NULL;
	struct pl_influx_result res;
	unsigned flags;

	(void)state;
	assert_int_equal(pl_influx_new(&cfg, &s), 0);
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	assert_int_equal(res.transport, PL_XPORT_TIMEOUT);
	assert_true(res.elapsed_us >= 900000);
	assert_true(res.elapsed_us < 1500000);
	pl_influx_free(s);
}

/* start/poll against the listener that never answers: a short poll comes back promptly with 0
 * and leaves res alone, the total timeout still ends the request, and abort frees the sink for
 * the next one (free with a request in flight is clean too, under valgrind). */
static void test_poll_timeout_and_abort(void **state)
{
	struct pl_influx_config cfg = {
		.url = hang_url, .api = PL_INFLUX_V1, .db = "pl", .precision = PL_PREC_S,
		.connect_timeout_ms = 500, .timeout_ms = 1000,
	};
	struct pl_influx *s = NULL;
	struct pl_influx_result res;
	long untouched; /* res.status's bytes as the memset left them (long: 32 bits on armhf) */
	int64_t t0, dt;

	(void)state;
	memset(&untouched, 0x5a, sizeof untouched);
	assert_int_equal(pl_influx_new(&cfg, &s), 0);
	assert_int_equal(pl_influx_start(s, "m v=1 1\n", 8), 0);
	memset(&res, 0x5a, sizeof res);
	t0 = mono_us();
	assert_int_equal(pl_influx_poll(s, 50, &res), 0);
	dt = mono_us() - t0;
	if (dt < 40000 || dt > 300000)
		fail_msg("poll(50 ms) took %lld us", (long long)dt);
	assert_int_equal(res.status, untouched);
	t0 = mono_us();
	assert_int_equal(pl_influx_poll(s, 0, &res), 0);
	dt = mono_us() - t0;
	if (dt > 100000)
		fail_msg("poll(0) took %lld us", (long long)dt);
	assert_int_equal(pl_influx_poll(s, -1, &res), 1);
	assert_int_equal(res.transport, PL_XPORT_TIMEOUT);
	assert_true(res.elapsed_us >= 900000);
	assert_true(res.elapsed_us < 1500000);

	assert_int_equal(pl_influx_start(s, "m v=2 2\n", 8), 0);
	assert_int_equal(pl_influx_poll(s, 20, &res), 0);
	pl_influx_abort(s);
	assert_int_equal(pl_influx_poll(s, 0, &res), -PL_EINVAL);
	pl_influx_abort(s); /* nothing in flight: nothing happens */
	assert_int_equal(pl_influx_start(s, "m v=3 3\n", 8), 0);
	assert_int_equal(pl_influx_poll(s, 0, &res), 0);
	pl_influx_free(s); /* with the request in flight */
	pl_influx_abort(NULL);
}

/* ------------------------------------------------------------------ the FAKE server */

static void fake_next(const char *json)
{
	assert_int_equal(sh("curl -sf -XPOST '%s/_next' --data-binary '%s'", fake_url, json), 0);
}

static const char *fake_last(void)
{
	return capture("curl -sf '%s/_last'", fake_url);
}

static void test_v1_escaping_and_basic_auth(void **state)
{
	struct pl_influx_config cfg = {
		.url = fake_url, .api = PL_INFLUX_V1, .db = "my db&x=1", .rp = "r/p",
		.user = "u", .password = "p@ss", .precision = PL_PREC_MS,
	};
	struct pl_influx *s = NULL;
	struct pl_influx_result res;
	const char *last;
	char want[256];

	(void)state;
	assert_int_equal(pl_influx_new(&cfg, &s), 0);
	snprintf(want, sizeof want, "%s/write?db=my%%20db%%26x%%3D1&rp=r%%2Fp&precision=ms",
		 fake_url);
	assert_string_equal(pl_influx_write_url(s), want);
	assert_null(strstr(pl_influx_write_url(s), "p@ss"));
	assert_int_equal(pl_influx_write(s, "m v=1 1\n", 8, &res), 0);
	assert_int_equal(res.status, 204);
	last = fake_last();
	expect_in(last, "\"path\": \"/write?db=my%20db%26x%3D1&rp=r%2Fp&precision=ms\"");
	expect_in(last, "\"Authorization\": \"Basic dTpwQHNz\""); /* base64("u:p@ss") */
	expect_in(last, "\"body\": \"m v=1 1\\n\"");
	pl_influx_free(s);
}

static void test_v2_token_and_errors(void **state)
{
	struct pl_influx_config cfg = {
		.url = fake_url, .api = PL_INFLUX_V2, .org = "my org", .bucket = "b/rp",
		.token = "tok-123", .precision = PL_PREC_US,
	};
	struct pl_influx *s = NULL;
	struct pl_influx_result res;
	unsigned flags;
	const char *last;
	int port1;

	(void)state;
	assert_int_equal(pl_influx_new(&cfg, &s), 0);
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_OK);
	last = fake_last();
	expect_in(last, "\"path\": \"/api/v2/write?org=my%20org&bucket=b%2Frp&precision=us\"");
	expect_in(last, "\"Authorization\": \"Token tok-123\"");
	port1 = atoi(strstr(last, "\"peer_port\": ") + 13);

	/* 429 with Retry-After: retry, no sooner than the server asked. */
	fake_next("{\"status\":429,\"headers\":{\"Retry-After\":\"7\"},"
		  "\"body\":\"{\\\"code\\\":\\\"too many requests\\\",\\\"message\\\":\\\"slow down\\\"}\"}");
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	assert_int_equal(res.status, 429);
	assert_int_equal(res.retry_after_s, 7);
	assert_string_equal(res.message, "slow down");
	{
		struct pl_backoff b = PL_BACKOFF_INIT;

		assert_true(pl_backoff_next(&b, 0, res.retry_after_s) >= 7000);
	}
	/* The same connection was reused (keep-alive) across these requests. */
	last = fake_last();
	assert_int_equal(atoi(strstr(last, "\"peer_port\": ") + 13), port1);

	fake_next("{\"status\":503,\"headers\":{\"Retry-After\":\"30\"},\"body\":\"\"}");
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	assert_int_equal(res.retry_after_s, 30);

	/* 422: partial write; bisect. */
	fake_next("{\"status\":422,\"body\":\"{\\\"code\\\":\\\"unprocessable entity\\\","
		  "\\\"message\\\":\\\"failure writing points to database: partial write\\\"}\"}");
	assert_int_equal(write_classify(s, "m v=1 1\nm v=2 2\n", 2, &res, &flags), PL_SINK_SPLIT);
	assert_true(flags & PL_SINK_F_PARTIAL);
	assert_string_equal(res.message, "failure writing points to database: partial write");

	/* 404 bucket not found. */
	fake_next("{\"status\":404,\"body\":\"{\\\"code\\\":\\\"not found\\\","
		  "\\\"message\\\":\\\"bucket \\\\\\\"b/rp\\\\\\\" not found\\\"}\"}");
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_NOTFOUND);
	assert_string_equal(res.message, "bucket \"b/rp\" not found");

	/* A long error is cut to PL_INFLUX_MSG_MAX bytes. */
	{
		char json[1200] = "{\"status\":500,\"body\":\"";
		size_t n = strlen(json);

		memset(json + n, 'x', 600);
		strcpy(json + n + 600, "\"}");
		fake_next(json);
	}
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	assert_int_equal(strlen(res.message), PL_INFLUX_MSG_MAX);
	pl_influx_free(s);
}

static void test_v3_bearer(void **state)
{
	struct pl_influx_config cfg = {
		.url = fake_url, .api = PL_INFLUX_V3, .db = "energy", .token = "apiv3_x",
		.precision = PL_PREC_S,
	};
	struct pl_influx *s = NULL;
	struct pl_influx_result res;
	const char *last;

	(void)state;
	assert_int_equal(pl_influx_new(&cfg, &s), 0);
	assert_int_equal(pl_influx_write(s, "m v=1 1\n", 8, &res), 0);
	assert_int_equal(res.status, 204);
	last = fake_last();
	expect_in(last, "\"path\": \"/api/v3/write_lp?db=energy&precision=second\"");
	expect_in(last, "\"Authorization\": \"Bearer apiv3_x\"");
	pl_influx_free(s);
}

/* The exact bytes of a gzip write: the header, and a body that is valid gzip (magic, CRC and
 * length checked by the fake) of the text, smaller than the text. */
static void test_gzip_fake(void **state)
{
	struct pl_influx_config cfg = {
		.url = fake_url, .api = PL_INFLUX_V2, .org = "o", .bucket = "b", .token = "t",
		.precision = PL_PREC_S, .gzip = 1,
	};
	struct pl_influx *s = NULL;
	struct pl_influx_result res;
	static char big[4096];
	char want[64];
	size_t n = 0;
	const char *last;

	(void)state;
	assert_int_equal(pl_influx_new(&cfg, &s), 0);
	assert_int_equal(pl_influx_write(s, "m v=1 1\n", 8, &res), 0);
	assert_int_equal(res.status, 204);
	last = fake_last();
	expect_in(last, "\"Content-Encoding\": \"gzip\"");
	expect_in(last, "\"Content-Type\": \"text/plain; charset=utf-8\"");
	expect_in(last, "\"gzip\": \"ok\"");
	expect_in(last, "\"body\": \"m v=1 1\\n\"");

	for (unsigned i = 0; n < 3000; i++)
		n += (size_t)snprintf(big + n, sizeof big - n, "m,device=x v=%u %u\n", i, i);
	assert_int_equal(pl_influx_start(s, big, n), 0);
	assert_int_equal(pl_influx_poll(s, -1, &res), 1);
	assert_int_equal(res.status, 204);
	last = fake_last();
	expect_in(last, "\"gzip\": \"ok\"");
	expect_in(last, "m,device=x v=0 0\\nm,device=x v=1 1\\n");
	{
		const char *p = strstr(last, "\"raw_len\": ");

		assert_non_null(p);
		if ((size_t)atol(p + 11) * 3 > n)
			fail_msg("%zu bytes compressed to only %ld", n, atol(p + 11));
	}
	/* An empty body is a valid (empty) gzip member. */
	assert_int_equal(pl_influx_write(s, "", 0, &res), 0);
	expect_in(fake_last(), "\"gzip\": \"ok\"");
	snprintf(want, sizeof want, "\"body\": \"\"");
	expect_in(fake_last(), want);
	pl_influx_free(s);
}

static struct pl_influx *fake_sink(enum pl_influx_api api, long timeout_ms)
{
	struct pl_influx_config cfg = {
		.url = fake_url, .api = api, .db = "energy", .org = "o", .bucket = "b",
		.token = "t", .precision = PL_PREC_S, .connect_timeout_ms = 2000,
		.timeout_ms = timeout_ms,
	};
	struct pl_influx *s = NULL;

	assert_int_equal(pl_influx_new(&cfg, &s), 0);
	return s;
}

/* issue 9, fault 2: a server without /api/v3/write_lp answered "400 unsupported path
 * requested" and every record went to quarantine. A 400 that does not say the lines are bad
 * keeps them (FAKE server: a real influxd has no such endpoint to be missing). */
static void test_fake_400_not_about_lines(void **state)
{
	struct pl_influx *s = fake_sink(PL_INFLUX_V3, 5000);
	struct pl_influx_result res;
	unsigned flags;

	(void)state;
	fake_next("{\"status\":400,\"body\":\"400 unsupported path requested\"}");
	assert_int_equal(write_classify(s, "m v=1 1\nm v=2 2\nm v=3 3\n", 3, &res, &flags),
			 PL_SINK_RETRY);
	assert_int_equal(flags, PL_SINK_F_CONFIG | PL_SINK_F_LOUD);
	assert_string_equal(res.message, "400 unsupported path requested");
	fake_next("{\"status\":400,\"body\":\"400 unsupported path requested\"}");
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	/* a proxy's HTML page: the message is its title, not a screenful of markup */
	fake_next("{\"status\":400,\"headers\":{\"Content-Type\":\"text/html\"},\"body\":"
		  "\"<html>\\r\\n<head><title>400 The plain HTTP request was sent to HTTPS port"
		  "</title></head>\\r\\n<body>nginx</body></html>\"}");
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	assert_int_equal(flags, PL_SINK_F_CONFIG | PL_SINK_F_LOUD);
	assert_string_equal(res.message, "an HTML page, not InfluxDB's answer: \"400 The plain "
			    "HTTP request was sent to HTTPS port\"");
	/* 3.x's own partial write is about the lines; the message names the first one. */
	fake_next("{\"status\":400,\"body\":\"{\\\"error\\\":\\\"partial write of line protocol "
		  "occurred\\\",\\\"data\\\":[{\\\"original_line\\\":\\\"m v= 2\\\",\\\"line_number\\\":2,"
		  "\\\"error_message\\\":\\\"No fields were provided\\\"}]}\"}");
	assert_int_equal(write_classify(s, "m v=1 1\nm v= 2\n", 2, &res, &flags), PL_SINK_SPLIT);
	assert_int_equal(flags, PL_SINK_F_PARTIAL);
	assert_string_equal(res.message, "partial write of line protocol occurred: line 2: No "
			    "fields were provided");
	pl_influx_free(s);
}

/* The sink seam (sinks/sink.h) the delivery thread drives: encode makes the sink's line
 * protocol in its precision and stops at a full buffer, start/poll carry a request through,
 * and the result names the line a 3.x server refused (FAKE server). */
static void test_fake_sink_ops(void **state)
{
	const struct pl_sink_ops *ops = &pl_influx_sink_ops;
	struct pl_influx_config cfg = {
		.url = fake_url, .api = PL_INFLUX_V3, .db = "energy", .token = "t",
		.precision = PL_PREC_MS, .connect_timeout_ms = 2000, .timeout_ms = 5000,
	};
	struct pl_interval_record rec = {
		.start_us = INT64_C(1735689600) * PL_US_PER_S, .length_s = 60, .pulses = 3,
		.energy_uwh = 3000000, .register_uwh = 5000000,
	};
	struct pl_sink_result res;
	char body[512], tiny[16];
	size_t len = 0, tiny_len = 0;
	void *s = NULL;
	int rc;

	(void)state;
	assert_int_equal(ops->open(&cfg, &s), 0);
	assert_non_null(s);
	assert_int_equal(ops->encode(s, body, sizeof body, &len, "house", 1, &rec), 0);
	rec.start_us += 60 * PL_US_PER_S;
	assert_int_equal(ops->encode(s, body, sizeof body, &len, "house", 1, &rec), 0);
	assert_true(len < sizeof body);
	body[len] = '\0';
	expect_in(body, "device=house ");
	expect_in(body, " 1735689660000\n");
	assert_int_equal(ops->encode(s, tiny, sizeof tiny, &tiny_len, "house", 1, &rec),
			 -PL_ENOSPC);
	assert_int_equal(tiny_len, 0);

	fake_next("{\"status\":400,\"body\":\"{\\\"error\\\":\\\"partial write of line protocol "
		  "occurred\\\",\\\"data\\\":[{\\\"original_line\\\":\\\"x\\\",\\\"line_number\\\":2,"
		  "\\\"error_message\\\":\\\"No fields were provided\\\"}]}\"}");
	assert_int_equal(ops->start(s, body, len), 0);
	rc = 0;
	while (rc == 0 && ops->sending(s))
		rc = ops->poll(s, 5, &res); /* the body onto the wire first, as deliver.c does */
	while (rc == 0)
		rc = ops->poll(s, 100, &res);
	assert_int_equal(rc, 1);
	assert_int_equal(res.resp.transport, PL_XPORT_NONE);
	assert_int_equal(res.resp.status, 400);
	assert_true(res.resp.body & PL_BODY_LINE_REPORT);
	assert_int_equal(res.bad_line, 2);
	assert_string_equal(res.message, "partial write of line protocol occurred: line 2: No "
			    "fields were provided");
	expect_in(fake_last(), "precision=millisecond");

	/* 204: no line named, no message; an abort with nothing in flight is harmless */
	fake_next("{\"status\":204}");
	assert_int_equal(ops->start(s, body, len), 0);
	while ((rc = ops->poll(s, 100, &res)) == 0)
		;
	assert_int_equal(res.resp.status, 204);
	assert_int_equal(res.bad_line, 0);
	assert_string_equal(res.message, "");
	ops->abort(s);
	ops->close(s);
	ops->close(NULL);
}

/* issue 9, fault 16: a redirect was logged as "HTTP 302 ;". It is not followed (a POST must
 * not be moved silently, nor its credentials sent elsewhere) and the message says where it
 * pointed (FAKE server: influxd does not redirect). */
static void test_fake_redirect(void **state)
{
	static const int codes[] = {301, 302, 307, 308};
	struct pl_influx *s = fake_sink(PL_INFLUX_V2, 5000);
	struct pl_influx_result res;
	unsigned flags;
	char json[256];

	(void)state;
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		snprintf(json, sizeof json, "{\"status\":%d,\"headers\":{\"Location\":"
			 "\"https://influx.example.org/api/v2/write?org=o&bucket=b\"}}", codes[i]);
		fake_next(json);
		assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
		assert_int_equal(res.status, codes[i]);
		assert_int_equal(flags, PL_SINK_F_CONFIG | PL_SINK_F_LOUD);
		assert_string_equal(res.message, "redirect to https://influx.example.org/api/v2/"
				    "write?org=o&bucket=b, not followed (set url to the final "
				    "address)");
		/* not followed: the fake saw the write at its own path, nothing after it */
		expect_in(fake_last(), "\"path\": \"/api/v2/write?org=o&bucket=b&precision=s\"");
	}
	/* a relative Location is made absolute */
	fake_next("{\"status\":302,\"headers\":{\"Location\":\"/influx/api/v2/write\"}}");
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	expect_prefix(res.message, "redirect to http://127.0.0.1:");
	expect_in(res.message, "/influx/api/v2/write, not followed");
	fake_next("{\"status\":302}");
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	assert_string_equal(res.message, "redirect (302) without a Location, not followed");
	pl_influx_free(s);
}

/* issue 9, fault 15: Retry-After as the server sends it (FAKE server: influxd 1.6 sends none).
 * Seconds pass through as they are (the policy caps them, the log says what was asked); an
 * HTTP-date becomes the seconds until then; a date in the past, a negative number and garbage
 * mean none. */
static void test_fake_retry_after_forms(void **state)
{
	struct pl_influx *s = fake_sink(PL_INFLUX_V2, 5000);
	struct pl_influx_result res;
	unsigned flags;
	char json[256], date[64];
	time_t later = time(NULL) + 120;
	struct tm tm;

	(void)state;
	fake_next("{\"status\":500,\"headers\":{\"Retry-After\":\"999999\"}}");
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	assert_int_equal(res.retry_after_s, 999999);
	{
		struct pl_backoff b = PL_BACKOFF_INIT;

		assert_int_equal(pl_backoff_next(&b, UINT32_MAX, res.retry_after_s), 300000);
	}
	gmtime_r(&later, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	snprintf(json, sizeof json, "{\"status\":503,\"headers\":{\"Retry-After\":\"%s\"}}", date);
	fake_next(json);
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	if (res.retry_after_s < 110 || res.retry_after_s > 121)
		fail_msg("Retry-After: %s read as %u s", date, res.retry_after_s);
	fake_next("{\"status\":503,\"headers\":{\"Retry-After\":\"Wed, 21 Oct 2015 07:28:00 GMT\"}}");
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	assert_int_equal(res.retry_after_s, 0);
	fake_next("{\"status\":429,\"headers\":{\"Retry-After\":\"-30\"}}");
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	assert_int_equal(res.retry_after_s, 0);
	fake_next("{\"status\":429,\"headers\":{\"Retry-After\":\"soon\"}}");
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	assert_int_equal(res.retry_after_s, 0);
	fake_next("{\"status\":429,\"headers\":{\"Retry-After\":\"99999999999999999999999\"}}");
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	{
		struct pl_backoff b = PL_BACKOFF_INIT;

		assert_true(pl_backoff_next(&b, UINT32_MAX, res.retry_after_s) <= 300000);
	}
	pl_influx_free(s);
}

/* How a user's server or network misbehaves (FAKE server): a 200 with an error or a captive
 * portal's page is not an acknowledgement; an enormous error body is cut, not kept; a
 * connection closed without an answer or in the middle of the body, and a server that
 * trickles its answer, are transport failures to retry, never an acknowledgement. */
static void test_fake_misbehaving_server(void **state)
{
	struct pl_influx *s = fake_sink(PL_INFLUX_V1, 2000);
	struct pl_influx_result res;
	unsigned flags;

	(void)state;
	fake_next("{\"status\":200,\"body\":\"<!DOCTYPE html><html><head><title>Guest WiFi - "
		  "please log in</title></head></html>\"}");
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	assert_int_equal(flags, PL_SINK_F_CONFIG | PL_SINK_F_LOUD);
	assert_string_equal(res.message,
			    "an HTML page, not InfluxDB's answer: \"Guest WiFi - please log in\"");
	fake_next("{\"status\":200,\"body\":\"{\\\"error\\\":\\\"engine is read-only\\\"}\"}");
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	assert_string_equal(res.message, "engine is read-only");
	fake_next("{\"status\":200}");
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_OK);

	/* 8 MB of error body: read and dropped past the first 4 KiB */
	fake_next("{\"status\":500,\"body\":\"0123456789abcdef\",\"repeat\":500000}");
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	assert_int_equal(res.status, 500);
	assert_int_equal(strlen(res.message), PL_INFLUX_MSG_MAX);

	/* closed without an answer: on a kept-alive connection libcurl tries once more on a
	 * fresh one (the server may have closed an idle connection), so twice */
	fake_next("{\"status\":204,\"close\":true}");
	fake_next("{\"status\":204,\"close\":true}");
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	assert_int_equal(res.transport, PL_XPORT_OTHER);
	assert_true(res.message[0] != '\0');
	fake_next("{\"status\":400,\"body\":\"{\\\"error\\\":\\\"unable to parse\\\"}\",\"cut\":true}");
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	assert_int_equal(res.transport, PL_XPORT_OTHER);
	/* a 204 whose headers trickle in never completes: the total timeout ends it */
	fake_next("{\"status\":500,\"body\":\"slowslowslowslow\",\"trickle_s\":0.5}");
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	assert_int_equal(res.transport, PL_XPORT_TIMEOUT);
	assert_true(res.elapsed_us < 4000000);
	pl_influx_free(s);
}

/* A server that is not reachable by name: a DNS failure, loud, kept. ".invalid" never
 * resolves (RFC 2606), so no query leaves the machine for an answer. */
static void test_dns_failure(void **state)
{
	struct pl_influx_config cfg = {
		.url = "http://no-such-host.invalid:8086", .api = PL_INFLUX_V1, .db = "pl",
		.precision = PL_PREC_S, .connect_timeout_ms = 2000, .timeout_ms = 3000,
	};
	struct pl_influx *s = NULL;
	struct pl_influx_result res;
	unsigned flags;

	(void)state;
	assert_int_equal(pl_influx_new(&cfg, &s), 0);
	assert_int_equal(write_classify(s, "m v=1 1\n", 1, &res, &flags), PL_SINK_RETRY);
	assert_true(res.transport == PL_XPORT_DNS || res.transport == PL_XPORT_TIMEOUT);
	assert_true(flags & PL_SINK_F_LOUD || res.transport == PL_XPORT_TIMEOUT);
	expect_in(res.message, "no-such-host.invalid");
	pl_influx_free(s);
}

static void test_config_errors(void **state)
{
	struct pl_influx *s = NULL;
	struct pl_influx_config ok = {.url = "http://x", .api = PL_INFLUX_V1, .db = "d"};
	struct pl_influx_config c;

	(void)state;
	c = ok, c.url = NULL;
	assert_int_equal(pl_influx_new(&c, &s), -PL_EINVAL);
	c = ok, c.db = "";
	assert_int_equal(pl_influx_new(&c, &s), -PL_EINVAL);
	c = ok, c.api = PL_INFLUX_V2;
	assert_int_equal(pl_influx_new(&c, &s), -PL_EINVAL); /* no org/bucket */
	c = ok, c.api = (enum pl_influx_api)4;
	assert_int_equal(pl_influx_new(&c, &s), -PL_EINVAL);
	c = ok, c.precision = (enum pl_precision)9;
	assert_int_equal(pl_influx_new(&c, &s), -PL_EINVAL);
	c = ok, c.api = PL_INFLUX_V3, c.create_database = 1; /* v1 only */
	assert_int_equal(pl_influx_new(&c, &s), -PL_EINVAL);
	c = ok, c.api = PL_INFLUX_V2, c.org = "o", c.bucket = "b", c.create_database = 1;
	assert_int_equal(pl_influx_new(&c, &s), -PL_EINVAL);
	assert_null(s);
	c = ok, c.gzip = 1, c.create_database = 1;
	assert_int_equal(pl_influx_new(&c, &s), 0);
	pl_influx_free(s);
	s = NULL;
	assert_int_equal(pl_influx_new(&ok, &s), 0);
	assert_string_equal(pl_influx_write_url(s), "http://x/write?db=d&precision=n");
	assert_int_equal(pl_influx_write(s, NULL, 3, NULL), -PL_EINVAL);
	assert_int_equal(pl_influx_start(s, NULL, 3), -PL_EINVAL);
	assert_int_equal(pl_influx_start(NULL, "m v=1 1\n", 8), -PL_EINVAL);
	assert_int_equal(pl_influx_poll(s, 0, NULL), -PL_EINVAL);
	assert_int_equal(pl_influx_poll(NULL, 0, NULL), -PL_EINVAL);
	assert_string_equal(pl_strerror(-PL_EBUSY), "busy (an operation is already in progress)");
	pl_influx_free(s);
	pl_influx_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_write_and_read_back),
		cmocka_unit_test(test_database_not_found),
		cmocka_unit_test(test_type_conflict),
		cmocka_unit_test(test_retention_policy_not_found),
		cmocka_unit_test(test_beyond_retention),
		cmocka_unit_test(test_real_400_not_about_lines),
		cmocka_unit_test(test_wrong_password),
		cmocka_unit_test(test_read_only_user),
		cmocka_unit_test(test_body_too_large),
		cmocka_unit_test(test_gzip_real),
		cmocka_unit_test(test_async_keepalive),
		cmocka_unit_test(test_create_database),
		cmocka_unit_test(test_create_database_refused),
		cmocka_unit_test(test_server_stopped),
		cmocka_unit_test(test_https_untrusted),
		cmocka_unit_test(test_https_ca_file),
		cmocka_unit_test(test_https_other_ca),
		cmocka_unit_test(test_https_wrong_name),
		cmocka_unit_test(test_https_missing_ca_file),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_poll_timeout_and_abort),
		cmocka_unit_test(test_v1_escaping_and_basic_auth),
		cmocka_unit_test(test_v2_token_and_errors),
		cmocka_unit_test(test_v3_bearer),
		cmocka_unit_test(test_gzip_fake),
		cmocka_unit_test(test_fake_400_not_about_lines),
		cmocka_unit_test(test_fake_sink_ops),
		cmocka_unit_test(test_fake_redirect),
		cmocka_unit_test(test_fake_retry_after_forms),
		cmocka_unit_test(test_fake_misbehaving_server),
		cmocka_unit_test(test_dns_failure),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
