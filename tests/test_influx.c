/*
 * The InfluxDB sink against a REAL influxd (Debian's 1.6, started by scripts/influxd.sh with
 * auth on and a 4 KiB max-body-size): every response class 1.6 can give is provoked and run
 * through the retry policy, and what was written is read back with GET /query. A server that
 * cannot be started fails the test; nothing is skipped.
 *
 * What 1.6 cannot answer (the 2.x and 3.x endpoints, 429 and 503 with Retry-After, 2.x JSON
 * errors) is shown against tests/fake_influx.py, a scripted FAKE server, and so is a listener
 * that accepts and never answers (the timeout).
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
#include <unistd.h>

#include <cmocka.h>

#include "influx.h"
#include "powerlogger/retry.h"

#define ADMIN "admin:admin-secret" /* scripts/influxd.sh's default test admin */

static char dir[64];     /* state directory of influxd and the fakes */
static char url[128];    /* the real influxd */
static char fake_url[64];
static char hang_url[64];
static bool influx_up;

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
	sh("rm -rf '%s'", dir);
	return 0;
}

static void expect_prefix(const char *s, const char *prefix)
{
	if (strncmp(s, prefix, strlen(prefix)) != 0)
		fail_msg("\"%s\" does not start with \"%s\"", s, prefix);
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
	/* One line still over the limit: quarantine. */
	memset(big, 'a', 5000);
	memcpy(big, "big s=\"", 7);
	memcpy(big + 4990, "\" 1\n", 5);
	assert_int_equal(write_classify(s, big, 1, &res, &flags), PL_SINK_QUARANTINE);
	assert_int_equal(res.status, 413);
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

/* ------------------------------------------------------------------ the FAKE server */

static void fake_next(const char *json)
{
	assert_int_equal(sh("curl -sf -XPOST '%s/_next' --data-binary '%s'", fake_url, json), 0);
}

static const char *fake_last(void)
{
	return capture("curl -sf '%s/_last'", fake_url);
}

static void expect_in(const char *hay, const char *needle)
{
	if (strstr(hay, needle) == NULL)
		fail_msg("\"%s\" not in %s", needle, hay);
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
	c = ok, c.gzip = 1; /* not implemented yet */
	assert_int_equal(pl_influx_new(&c, &s), -PL_EINVAL);
	assert_null(s);
	assert_int_equal(pl_influx_new(&ok, &s), 0);
	assert_string_equal(pl_influx_write_url(s), "http://x/write?db=d&precision=n");
	assert_int_equal(pl_influx_write(s, NULL, 3, NULL), -PL_EINVAL);
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
		cmocka_unit_test(test_wrong_password),
		cmocka_unit_test(test_read_only_user),
		cmocka_unit_test(test_body_too_large),
		cmocka_unit_test(test_server_stopped),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_v1_escaping_and_basic_auth),
		cmocka_unit_test(test_v2_token_and_errors),
		cmocka_unit_test(test_v3_bearer),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
