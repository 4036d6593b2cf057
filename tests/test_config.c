/* SPDX-License-Identifier: MIT */
/*
 * Tests of the configuration parser (src/linux/config.c): defaults, several meters and sinks,
 * every class of problem with its exact FILE:LINE text, all problems collected in one pass,
 * secrets from files and the environment, and that no dump ever shows a secret.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "powerlogger/common.h"
#include "powerlogger/detector.h"
#include "powerlogger/lineproto.h"
#include "sources/trace.h"

/* Parses text named "t.ini"; the diagnostics stay in *d for the caller to free. */
static int parse(const char *text, struct pl_config **cfg, struct pl_config_diags *d)
{
	memset(d, 0, sizeof(*d));
	return pl_config_parse_string("t.ini", text, cfg, d);
}

/* The diagnostics contain exactly this line. */
static void has(const struct pl_config_diags *d, const char *want)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (strcmp(d->v[i].text, want) == 0)
			return;
	for (i = 0; i < d->n; i++)
		print_message("  got: %s\n", d->v[i].text);
	fail_msg("missing diagnostic: %s", want);
}

/* One bad input gives exactly one error, with this text. */
static void one_error(const char *text, const char *want)
{
	struct pl_config_diags d;
	struct pl_config *cfg = (struct pl_config *)1;

	assert_int_equal(parse(text, &cfg, &d), -PL_EINVAL);
	assert_null(cfg);
	has(&d, want);
	if (d.errors != 1)
		has(&d, "(exactly one error expected)");
	pl_config_diags_free(&d);
}

static void test_defaults(void **state)
{
	struct pl_config_diags d;
	struct pl_config *cfg;

	(void)state;
	assert_int_equal(parse("", &cfg, &d), 0);
	assert_int_equal(d.n, 0);
	assert_string_equal(cfg->store.path, "./powerlogger.db");
	assert_int_equal(cfg->store.retention_days, 0);
	assert_int_equal(cfg->nmeters, 0);
	assert_int_equal(cfg->ninflux, 0);
	assert_null(cfg->http.listen);
	pl_config_free(cfg);

	assert_int_equal(parse("[meter house]\n[influxdb db]\nurl = http://localhost:8086\n"
			       "database = power\n", &cfg, &d), 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(cfg->nmeters, 1);
	assert_string_equal(cfg->meters[0].name, "house");
	assert_int_equal(cfg->meters[0].line, 1);
	assert_int_equal(cfg->meters[0].source, PL_CONFIG_SOURCE_SIM);
	assert_int_equal(cfg->meters[0].imp_per_kwh, 1000);
	assert_int_equal(cfg->meters[0].interval_s, 20);
	assert_int_equal(cfg->meters[0].polarity, PL_POLARITY_AUTO);
	assert_true(cfg->meters[0].speed == 1.0);
	assert_null(cfg->meters[0].profile);
	assert_int_equal(cfg->influx[0].api, 1);
	assert_int_equal(cfg->influx[0].precision, PL_PREC_S);
	assert_int_equal(cfg->influx[0].timeout_s, 10);
	assert_int_equal(cfg->influx[0].batch_max_records, 5000);
	assert_int_equal(cfg->influx[0].gzip, 0);
	assert_int_equal(cfg->influx[0].password.from, PL_CONFIG_SECRET_NONE);
	pl_config_free(cfg);
}

static void test_several(void **state)
{
	static const char text[] =
		"; comment\n"
		"[store]\n"
		"path = /tmp/x.db\n"
		"retention_days = 30\n"
		"[meter a]\n"
		"  source = sim   ; indented, with a comment\n"
		"speed = 0\n"
		"start_register_kwh = 12345.678\n"
		"polarity = down\n"
		"[meter b]\n"
		"source = file\n"
		"file = " PL_SOURCE_DIR "/CMakeLists.txt\n"
		"format = s16le\n"
		"rate = 48000\n"
		"imp_per_kwh = 800\n"
		"speed = 2.5\n"
		"[influxdb one]\n"
		"url = http://localhost:8086\n"
		"database = power\n"
		"precision = ms\n"
		"gzip = yes\n"
		"[influxdb two]\n"
		"url = https://example.com\n"
		"api = 2\n"
		"org = home\n"
		"bucket = power\n"
		"token = abc\n"
		"[influxdb three]\n"
		"url = http://localhost:8181\n"
		"api = 3\n"
		"database = power\n"
		"token = def\n"
		"[http]\n"
		"listen = [::1]:8080\n";
	struct pl_config_diags d;
	struct pl_config *cfg;

	(void)state;
	assert_int_equal(parse(text, &cfg, &d), 0);
	assert_int_equal(d.n, 0);
	assert_string_equal(cfg->store.path, "/tmp/x.db");
	assert_int_equal(cfg->store.retention_days, 30);
	assert_int_equal(cfg->nmeters, 2);
	assert_true(cfg->meters[0].speed == 0.0);
	assert_int_equal(cfg->meters[0].start_register_uwh, INT64_C(12345678000000));
	assert_int_equal(cfg->meters[0].polarity, PL_POLARITY_DOWN);
	assert_string_equal(cfg->meters[1].name, "b");
	assert_int_equal(cfg->meters[1].line, 10);
	assert_int_equal(cfg->meters[1].source, PL_CONFIG_SOURCE_FILE);
	assert_int_equal(cfg->meters[1].format, PL_TRACE_S16LE);
	assert_int_equal(cfg->meters[1].rate_hz, 48000);
	assert_int_equal(cfg->meters[1].imp_per_kwh, 800);
	assert_true(cfg->meters[1].speed == 2.5);
	assert_int_equal(cfg->ninflux, 3);
	assert_int_equal(cfg->influx[0].precision, PL_PREC_MS);
	assert_int_equal(cfg->influx[0].gzip, 1);
	assert_int_equal(cfg->influx[1].api, 2);
	assert_string_equal(cfg->influx[1].bucket, "power");
	assert_string_equal(cfg->influx[1].token.value, "abc");
	assert_int_equal(cfg->influx[1].token.from, PL_CONFIG_SECRET_INLINE);
	assert_int_equal(cfg->influx[2].api, 3);
	assert_string_equal(cfg->http.host, "::1");
	assert_int_equal(cfg->http.port, 8080);
	pl_config_free(cfg);
}

static void test_unknown(void **state)
{
	(void)state;
	one_error("[metre house]\n", "t.ini:1: [metre house]: unknown section (did you mean "
		  "[meter NAME]?)");
	one_error("\n[stor]\n", "t.ini:2: [stor]: unknown section (did you mean [store]?)");
	one_error("[zzzzzz]\n", "t.ini:1: [zzzzzz]: unknown section (sections are [store], "
		  "[meter NAME], [influxdb NAME], [mqtt NAME] and [http])");
	one_error("[store]\nretension_days = 3\n",
		  "t.ini:2: [store] retension_days: unknown key (did you mean retention_days?)");
	one_error("[meter m]\n\nimp_per_kw = 3\n",
		  "t.ini:3: [meter m] imp_per_kw: unknown key (did you mean imp_per_kwh?)");
	one_error("[meter m]\nxyzzy = 3\n", "t.ini:2: [meter m] xyzzy: unknown key");
	one_error("path = x\n", "t.ini:1: path: key outside any section (put it under "
		  "[store], [meter NAME], ...)");
	one_error("[meter]\n", "t.ini:1: [meter]: needs a name (write [meter NAME], e.g. "
		  "[meter house])");
	one_error("[store x]\n", "t.ini:1: [store x]: takes no name (write [store])");
	one_error("[meter a]\n[meter a]\n",
		  "t.ini:2: [meter a]: duplicate section (first at line 1; give each its own name)");
	one_error("[mqtt ha]\nurl = mqtt://h\nhost = x\n",
		  "t.ini:3: [mqtt ha] host: unknown key (did you mean qos?)");
}

static void test_syntax(void **state)
{
	(void)state;
	one_error("[store]\njunk\n", "t.ini:2: expected 'key = value' or '[section]', not 'junk'");
	one_error("[store\npath = x\n", "t.ini:1: missing ']' in the section header");
	one_error("[store] x\n", "t.ini:1: text after the section header: 'x'");
	one_error("[store]\npath =\n", "t.ini:2: [store] path: needs a value");
}

static void test_values(void **state)
{
	(void)state;
	one_error("[store]\npath = a\npath = b\n",
		  "t.ini:3: [store] path: duplicate key (first set at line 2)");
	one_error("[meter m]\ninterval_s = 2x\n",
		  "t.ini:2: [meter m] interval_s: '2x' is not a whole number (1..86400)");
	one_error("[meter m]\ninterval_s = 0\n",
		  "t.ini:2: [meter m] interval_s: 0 is out of range (1..86400)");
	one_error("[meter m]\npolarity = sideways\n",
		  "t.ini:2: [meter m] polarity: 'sideways' is not one of auto|up|down");
	one_error("[meter m]\nspeed = -1\n",
		  "t.ini:2: [meter m] speed: '-1' is not a factor 0..1000000 (0: as fast as "
		  "possible)");
	one_error("[meter m]\nstart_register_kwh = lots\n",
		  "t.ini:2: [meter m] start_register_kwh: 'lots' is not an energy in kWh >= 0 "
		  "(e.g. 12345.678)");
	one_error("[influxdb x]\nurl = localhost\ndatabase = d\n",
		  "t.ini:2: [influxdb x] url: 'localhost' is not an http:// or https:// URL "
		  "(e.g. http://localhost:8086)");
	one_error("[influxdb x]\nurl = http://h\ndatabase = d\ngzip = maybe\n",
		  "t.ini:4: [influxdb x] gzip: 'maybe' is not yes or no");
	one_error("[http]\nlisten = 8080\n",
		  "t.ini:2: [http] listen: '8080' is not HOST:PORT (e.g. 127.0.0.1:8080)");
}

static void test_required(void **state)
{
	(void)state;
	one_error("[meter m]\nsource = file\n",
		  "t.ini:1: [meter m]: missing key 'file' (source = file needs file = PATH)");
	one_error("[meter m]\nsource = file\nfile = /nonexistent/x.csv\n",
		  "t.ini:3: [meter m] file: cannot read '/nonexistent/x.csv': No such file or "
		  "directory");
	one_error("[meter m]\nsource = sim\nformat = csv\n",
		  "t.ini:3: [meter m] format: applies to source = file only");
	one_error("\n[influxdb x]\ndatabase = d\n",
		  "t.ini:2: [influxdb x]: missing key 'url' (e.g. url = http://localhost:8086)");
	one_error("[influxdb x]\nurl = http://h\n",
		  "t.ini:1: [influxdb x]: missing key 'database' (api = 1 needs database)");
	one_error("[influxdb x]\nurl = http://h\napi = 3\ntoken = t\n",
		  "t.ini:1: [influxdb x]: missing key 'database' (api = 3 needs database and a "
		  "token)");
	one_error("[influxdb x]\nurl = http://h\napi = 3\ndatabase = d\n",
		  "t.ini:1: [influxdb x]: missing key 'token' (api = 3 needs token, token_file or "
		  "token_env)");
	one_error("[influxdb x]\nurl = http://h\ndatabase = d\ntoken = t\n",
		  "t.ini:4: [influxdb x] token: applies to api = 2 or 3 (api = 1 uses "
		  "username/password)");
	one_error("[influxdb x]\nurl = http://h\ndatabase = d\nusername = u\n",
		  "t.ini:1: [influxdb x]: missing key 'password' (username needs password, "
		  "password_file or password_env)");
}

/* Many problems at once: all reported, sorted by line, v2's three requirements included. */
static void test_all_collected(void **state)
{
	struct pl_config_diags d;
	struct pl_config *cfg;

	(void)state;
	assert_int_equal(parse("[influxdb x]\nurl = http://h\napi = 2\nbogus = 1\n"
			       "[meter m]\ninterval_s = 0\n", &cfg, &d), -PL_EINVAL);
	assert_int_equal(d.errors, 5);
	has(&d, "t.ini:1: [influxdb x]: missing key 'org' (api = 2 needs org, bucket and a "
	    "token)");
	has(&d, "t.ini:1: [influxdb x]: missing key 'bucket' (api = 2 needs org, bucket and a "
	    "token)");
	has(&d, "t.ini:1: [influxdb x]: missing key 'token' (api = 2 needs token, token_file or "
	    "token_env)");
	has(&d, "t.ini:4: [influxdb x] bogus: unknown key");
	has(&d, "t.ini:6: [meter m] interval_s: 0 is out of range (1..86400)");
	assert_int_equal(d.v[0].line, 1);
	assert_int_equal(d.v[d.n - 1].line, 6);
	pl_config_diags_free(&d);
}

static char *secret_file(const char *content, mode_t mode)
{
	static char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/pl_test_secret.XXXXXX");
	close(mkstemp(path));
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
	chmod(path, mode);
	return path;
}

/* The dump of cfg does not contain s. */
static void dump_hides(const struct pl_config *cfg, const char *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(pl_config_dump(cfg, f), 0);
	fclose(f);
	assert_non_null(strstr(buf, "redacted"));
	assert_null(strstr(buf, s));
	free(buf);
}

static void test_secrets(void **state)
{
	char text[512], *path;
	struct pl_config_diags d;
	struct pl_config *cfg;

	(void)state;
	path = secret_file("s3cr3t-pw\n", 0600);
	setenv("PL_TEST_TOKEN", "t0k3n-value", 1);
	snprintf(text, sizeof(text),
		 "[influxdb a]\nurl = http://h\ndatabase = d\nusername = u\npassword_file = %s\n"
		 "[influxdb b]\nurl = http://h\napi = 3\ndatabase = d\ntoken_env = PL_TEST_TOKEN\n"
		 "[influxdb c]\nurl = http://h\ndatabase = d\nusername = u\npassword = inline-pw\n",
		 path);
	assert_int_equal(parse(text, &cfg, &d), 0);
	assert_int_equal(d.n, 0);
	assert_string_equal(cfg->influx[0].password.value, "s3cr3t-pw");
	assert_int_equal(cfg->influx[0].password.from, PL_CONFIG_SECRET_FILE);
	assert_string_equal(cfg->influx[0].password.origin, path);
	assert_string_equal(cfg->influx[1].token.value, "t0k3n-value");
	assert_int_equal(cfg->influx[1].token.from, PL_CONFIG_SECRET_ENV);
	assert_string_equal(cfg->influx[2].password.value, "inline-pw");
	dump_hides(cfg, "s3cr3t");
	dump_hides(cfg, "t0k3n");
	dump_hides(cfg, "inline-pw");
	pl_config_free(cfg);

	/* World-readable: a warning, still usable. */
	chmod(path, 0644);
	assert_int_equal(parse(text, &cfg, &d), 0);
	assert_int_equal(d.warnings, 1);
	assert_int_equal(d.v[0].line, 5);
	assert_true(d.v[0].warning);
	assert_non_null(strstr(d.v[0].text, "t.ini:5: warning: [influxdb a] password_file: '"));
	assert_non_null(strstr(d.v[0].text, "is readable by everyone (chmod o-rwx"));
	pl_config_free(cfg);
	pl_config_diags_free(&d);

	/* Conflicts, unset variables and unreadable files are errors. */
	one_error("[influxdb x]\nurl = http://h\ndatabase = d\nusername = u\npassword = p\n"
		  "password_env = PL_TEST_TOKEN\n",
		  "t.ini:6: [influxdb x] password_env: conflicts with password at line 5 (give the "
		  "password one way only)");
	unsetenv("PL_TEST_UNSET");
	one_error("[influxdb x]\nurl = http://h\napi = 3\ndatabase = d\ntoken_env = PL_TEST_UNSET\n",
		  "t.ini:5: [influxdb x] token_env: environment variable PL_TEST_UNSET is not set");
	one_error("[influxdb x]\nurl = http://h\napi = 3\ndatabase = d\n"
		  "token_file = /nonexistent/token\n",
		  "t.ini:5: [influxdb x] token_file: cannot read '/nonexistent/token': No such "
		  "file or directory");
	unlink(path);
}

/* [mqtt NAME]: defaults, every key, every error with its line, the shared sink namespace, the
 * password kept out of the dump. */
static void test_mqtt(void **state)
{
	char text[512], host[256] = "", want[128], *path;
	struct pl_config_diags d;
	struct pl_config *cfg;

	(void)state;
	assert_int_equal(parse("[mqtt home]\nurl = mqtt://127.0.0.1\n", &cfg, &d), 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(cfg->nmqtt, 1);
	assert_string_equal(cfg->mqtt[0].name, "home");
	assert_int_equal(cfg->mqtt[0].line, 1);
	assert_string_equal(cfg->mqtt[0].host, "127.0.0.1");
	assert_int_equal(cfg->mqtt[0].port, 1883);
	assert_int_equal(cfg->mqtt[0].tls, 0);
	assert_int_equal(cfg->mqtt[0].qos, 1);
	assert_int_equal(cfg->mqtt[0].keepalive_s, 30);
	assert_string_equal(cfg->mqtt[0].topic_prefix, "powerlogger");
	assert_string_equal(cfg->mqtt[0].discovery_prefix, "homeassistant");
	assert_null(cfg->mqtt[0].username);
	assert_null(cfg->mqtt[0].password.value);
	assert_null(cfg->mqtt[0].ca_file);
	/* the client id from the host name, cut at its first dot, reduced to [A-Za-z0-9_-] */
	gethostname(host, sizeof(host) - 1);
	host[strcspn(host, ".")] = '\0';
	snprintf(want, sizeof(want), "powerlogger-%.40s", host);
	for (char *c = want + 12; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		      *c == '_' || *c == '-'))
			*c = '-';
	assert_string_equal(cfg->mqtt[0].client_id, want);
	pl_config_free(cfg);

	/* every key; mqtts with its default port; two sinks; discovery off with "" */
	path = secret_file("mq-s3cr3t\n", 0600);
	snprintf(text, sizeof(text),
		 "[mqtt a]\nurl = mqtts://broker.lan/\nusername = pl\npassword_file = %s\n"
		 "ca_file = /dev/null\nclient_id = logger-1\ntopic_prefix = home/power\n"
		 "discovery_prefix = \"\"\nqos = 1\nkeepalive_s = 60\n"
		 "[mqtt b]\nurl = mqtt://[::1]:18830\ndiscovery_prefix =\n"
		 "[influxdb c]\nurl = http://h\ndatabase = d\n", path);
	assert_int_equal(parse(text, &cfg, &d), 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(cfg->nmqtt, 2);
	assert_int_equal(cfg->ninflux, 1);
	assert_string_equal(cfg->mqtt[0].host, "broker.lan");
	assert_int_equal(cfg->mqtt[0].port, 8883);
	assert_int_equal(cfg->mqtt[0].tls, 1);
	assert_string_equal(cfg->mqtt[0].username, "pl");
	assert_string_equal(cfg->mqtt[0].password.value, "mq-s3cr3t");
	assert_int_equal(cfg->mqtt[0].password.from, PL_CONFIG_SECRET_FILE);
	assert_string_equal(cfg->mqtt[0].ca_file, "/dev/null");
	assert_string_equal(cfg->mqtt[0].client_id, "logger-1");
	assert_string_equal(cfg->mqtt[0].topic_prefix, "home/power");
	assert_string_equal(cfg->mqtt[0].discovery_prefix, "");
	assert_int_equal(cfg->mqtt[0].keepalive_s, 60);
	assert_string_equal(cfg->mqtt[1].host, "::1");
	assert_int_equal(cfg->mqtt[1].port, 18830);
	assert_string_equal(cfg->mqtt[1].discovery_prefix, "");
	dump_hides(cfg, "mq-s3cr3t");
	pl_config_free(cfg);
	unlink(path);

	/* qos 0: accepted, with a warning at its line */
	assert_int_equal(parse("[mqtt a]\nurl = mqtt://h\nqos = 0\n", &cfg, &d), 0);
	assert_int_equal(d.warnings, 1);
	has(&d, "t.ini:3: warning: [mqtt a] qos: 0: the cursor moves once a message is written "
		"to the socket, not on the broker's PUBACK, so a disconnect can lose intervals (1 "
		"is the default)");
	assert_int_equal(cfg->mqtt[0].qos, 0);
	pl_config_free(cfg);
	pl_config_diags_free(&d);

	/* errors, each at its line */
	one_error("[mqtt a]\n", "t.ini:1: [mqtt a]: missing key 'url' (e.g. url = "
		  "mqtt://127.0.0.1:1883)");
	one_error("[mqtt a]\nurl = http://h\n", "t.ini:2: [mqtt a] url: 'http://h' is not an "
		  "mqtt:// or mqtts:// URL (e.g. mqtt://127.0.0.1:1883)");
	one_error("[mqtt a]\nurl = mqtt://u:p@h\n", "t.ini:2: [mqtt a] url: credentials in the "
		  "URL are not accepted (URLs are logged): use username and password_file");
	one_error("[mqtt a]\nurl = mqtt://h/x\n", "t.ini:2: [mqtt a] url: 'mqtt://h/x': a broker "
		  "URL has no path (write mqtt://HOST[:PORT]; topics are set with topic_prefix)");
	one_error("[mqtt a]\nurl = mqtt://h:0\n", "t.ini:2: [mqtt a] url: 'mqtt://h:0': bad port "
		  "'0' (1..65535)");
	one_error("[mqtt a]\nurl = mqtt://h:99999\n", "t.ini:2: [mqtt a] url: 'mqtt://h:99999': "
		  "bad port '99999' (1..65535)");
	one_error("[mqtt a]\nurl = mqtt://h:\n", "t.ini:2: [mqtt a] url: 'mqtt://h:': bad port "
		  "'' (1..65535)");
	one_error("[mqtt a]\nurl = mqtt://:1883\n", "t.ini:2: [mqtt a] url: 'mqtt://:1883' names "
		  "no host (e.g. mqtt://127.0.0.1:1883)");
	one_error("[mqtt a]\nurl = mqtt://[::1\n", "t.ini:2: [mqtt a] url: 'mqtt://[::1': bad "
		  "IPv6 address (write mqtt://[::1]:1883)");
	one_error("[mqtt a]\nurl = mqtt://h\nqos = 2\n", "t.ini:3: [mqtt a] qos: 2 is not used "
		  "(exactly once comes from the delivery cursor and the marks in the retained "
		  "state, over QoS 1; write qos = 1)");
	one_error("[mqtt a]\nurl = mqtt://h\nqos = 3\n", "t.ini:3: [mqtt a] qos: 3 is out of "
		  "range (0..2)");
	one_error("[mqtt a]\nurl = mqtt://h\nkeepalive_s = 1\n", "t.ini:3: [mqtt a] keepalive_s: "
		  "1 is out of range (5..3600)");
	one_error("[mqtt a]\nurl = mqtt://h\ntopic_prefix = a/#\n", "t.ini:3: [mqtt a] "
		  "topic_prefix: 'a/#' has the wildcard '#' (a prefix names topics, it matches "
		  "none)");
	one_error("[mqtt a]\nurl = mqtt://h\ntopic_prefix = /a\n", "t.ini:3: [mqtt a] "
		  "topic_prefix: '/a' has an empty level ('/' at either end or twice; write e.g. "
		  "home/powerlogger)");
	one_error("[mqtt a]\nurl = mqtt://h\ndiscovery_prefix = ha//x\n", "t.ini:3: [mqtt a] "
		  "discovery_prefix: 'ha//x' has an empty level ('/' at either end or twice; write "
		  "e.g. home/powerlogger)");
	one_error("[mqtt a]\nurl = mqtt://h\ntopic_prefix =\n", "t.ini:3: [mqtt a] topic_prefix: "
		  "needs a value (a prefix cannot be empty)");
	one_error("[mqtt a]\nurl = mqtt://h\nclient_id = a/b\n", "t.ini:3: [mqtt a] client_id: "
		  "bad client id 'a/b' (1..64 letters, digits, '_', '.' or '-': it is also a topic "
		  "level and Home Assistant's node id)");
	one_error("[mqtt a]\nurl = mqtt://h\nca_file = /dev/null\n", "t.ini:3: [mqtt a] ca_file: "
		  "applies to mqtts:// URLs only");
	one_error("[mqtt a]\nurl = mqtts://h\nca_file = /nonexistent/ca.pem\n", "t.ini:3: [mqtt a] "
		  "ca_file: cannot read '/nonexistent/ca.pem': No such file or directory");
	one_error("[mqtt a]\nurl = mqtt://h\npassword = p\n", "t.ini:1: [mqtt a]: missing key "
		  "'username' (MQTT sends a password only with a user name)");
	one_error("[mqtt a]\nurl = mqtt://h\nusername = u\npassword = p\npassword_file = /x\n",
		  "t.ini:5: [mqtt a] password_file: conflicts with password at line 4 (give the "
		  "password one way only)");
	one_error("[mqtt a]\nurl = mqtt://h\nretain = yes\n", "t.ini:3: [mqtt a] retain: unknown "
		  "key");
	one_error("[mqtt a]\nurl = mqtt://h\n[mqtt a]\nurl = mqtt://h\n", "t.ini:3: [mqtt a]: "
		  "duplicate section (first at line 1; give each its own name)");
	one_error("[influxdb a]\nurl = http://h\ndatabase = d\n[mqtt a]\nurl = mqtt://h\n",
		  "t.ini:4: [mqtt a]: the name 'a' is already the sink [influxdb a] (line 1): sinks "
		  "of every kind share one namespace, it is their delivery cursor in the store (give "
		  "each its own name)");
	one_error("[mqtt]\nurl = mqtt://h\n", "t.ini:1: [mqtt]: needs a name (write [mqtt NAME], "
		  "e.g. [mqtt house])");
}

static void test_load_file(void **state)
{
	struct pl_config_diags d = { 0 };
	struct pl_config *cfg;

	(void)state;
	assert_int_equal(pl_config_load(PL_SOURCE_DIR "/docs/powerlogger.example.ini", &cfg, &d),
			 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(cfg->nmeters, 1);
	assert_int_equal(cfg->ninflux, 1);
	assert_string_equal(cfg->influx[0].url, "http://localhost:8086");
	pl_config_free(cfg);

	assert_int_equal(pl_config_load("/nonexistent/pl.ini", &cfg, &d), -PL_EIO);
	assert_null(cfg);
	has(&d, "/nonexistent/pl.ini:0: cannot open: No such file or directory");
	pl_config_diags_free(&d);
}

/* A reader of the store (`status`) loads the configuration without the sinks' secrets. */
static void test_load_without_secrets(void **state)
{
	static const char text[] = "[store]\npath = /tmp/x.db\n\n[meter m]\nsource = sim\n\n[influxdb x]\nurl = http://h\n"
				   "api = 3\ndatabase = d\ntoken_env = PL_TEST_UNSET\n\n"
				   "[influxdb y]\nurl = http://h\napi = 2\norg = o\nbucket = b\n"
				   "token_file = /nonexistent/token\n";
	char path[] = "/tmp/pl_config_XXXXXX";
	struct pl_config_diags d = { 0 };
	struct pl_config *cfg;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
	close(fd);
	unsetenv("PL_TEST_UNSET");
	assert_int_equal(pl_config_load(path, &cfg, &d), -PL_EINVAL); /* `run` needs them */
	pl_config_diags_free(&d);
	assert_int_equal(pl_config_load_flags(path, PL_CONFIG_NO_SECRETS, &cfg, &d), 0);
	assert_int_equal(d.n, 0);
	assert_string_equal(cfg->store.path, "/tmp/x.db");
	assert_null(cfg->influx[0].token.value);
	pl_config_free(cfg);
	pl_config_diags_free(&d);
	unlink(path);
}

/* Writes n bytes to a new temporary file with the given mode; returns its path (static). */
static const char *temp_file(const char *data, size_t n, mode_t mode)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/pl_test_config.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	close(fd);
	chmod(path, mode);
	return path;
}

/* pl_config_load(path) fails with rc and has the diagnostic "<path>:<want>". */
static void load_refused(const char *path, int rc, const char *want)
{
	struct pl_config_diags d = { 0 };
	struct pl_config *cfg = (struct pl_config *)1;
	char line[512];

	assert_int_equal(pl_config_load(path, &cfg, &d), rc);
	assert_null(cfg);
	snprintf(line, sizeof(line), "%s:%s", path, want);
	has(&d, line);
	pl_config_diags_free(&d);
}

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* Issue 9: what a wrong path or a damaged file can be. Each used to hang, eat memory without
 * bound, cut a value silently or pass a configuration that then does nothing. */
static void test_load_hostile(void **state)
{
	static const char nul_text[] = "[meter a]\nsource = sim\ninterval_s = 2\0000\n";
	char fifo[] = "/tmp/pl_test_fifo.XXXXXX", *big;
	const char *path;
	pid_t pid;
	int status;

	(void)state;
	alarm(60); /* a regression that blocks (a FIFO) fails instead of hanging */
	load_refused("/tmp", -PL_EINVAL, "0: is a directory");
	assert_non_null(mkdtemp(fifo));
	rmdir(fifo);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	load_refused(fifo, -PL_EINVAL,
		     "0: is not a regular file (a FIFO or a device is not a configuration)");
	{
		/* a FIFO as a secret file: its open used to wait for a writer forever */
		char text[256], want[256];
		struct pl_config_diags d = { 0 };
		struct pl_config *cfg = (struct pl_config *)1;

		snprintf(text, sizeof(text), "[meter a]\n[influxdb x]\nurl = http://h\napi = 3\n"
			 "database = d\ntoken_file = %s\n", fifo);
		snprintf(want, sizeof(want), "t.ini:6: [influxdb x] token_file: '%s' is not a "
			 "regular file", fifo);
		assert_int_equal(parse(text, &cfg, &d), -PL_EINVAL);
		assert_null(cfg);
		has(&d, want);
		pl_config_diags_free(&d);
	}
	unlink(fifo);

	/* /dev/zero has no line end: reading it used to grow a line buffer without end. The
	 * child runs with its address space bounded, so that a regression fails, not the
	 * machine (ASan reserves terabytes of address space, so it runs unbounded there). */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct pl_config_diags d = { 0 };
		struct pl_config *cfg;
#ifndef UNDER_ASAN
		struct rlimit lim = { 512u << 20, 512u << 20 };

		setrlimit(RLIMIT_AS, &lim);
#endif
		alarm(20);
		_exit(pl_config_load("/dev/zero", &cfg, &d) == -PL_EINVAL && d.errors == 1 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	/* a NUL byte would cut "2<NUL>0" to "2" where libinih reads it */
	path = temp_file(nul_text, sizeof(nul_text) - 1, 0600);
	load_refused(path, -PL_EINVAL, "3: contains a NUL byte (is this a text file?)");
	unlink(path);

	big = malloc(2u << 20);
	assert_non_null(big);
	memset(big, '#', 2u << 20);
	path = temp_file(big, 2u << 20, 0600);
	free(big);
	load_refused(path, -PL_EINVAL, "0: is larger than 1 MiB: not a configuration file");
	unlink(path);

	path = temp_file("[store]\npath = x.db\n", 20, 0600);
	load_refused(path, -PL_EINVAL, "0: no [meter NAME] section and no sink: there is nothing "
		     "to log and nowhere to send (see docs/powerlogger.example.ini)");
	unlink(path);
	alarm(0);
}

/* Windows line ends and a UTF-8 byte order mark are accepted as they are. */
static void test_load_crlf_bom(void **state)
{
	static const char text[] = "\xEF\xBB\xBF[meter a]\r\nsource = sim\r\ninterval_s = 20\r\n";
	struct pl_config_diags d = { 0 };
	struct pl_config *cfg;
	const char *path = temp_file(text, sizeof(text) - 1, 0600);

	(void)state;
	assert_int_equal(pl_config_load(path, &cfg, &d), 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(cfg->nmeters, 1);
	assert_string_equal(cfg->meters[0].name, "a");
	assert_int_equal(cfg->meters[0].interval_s, 20);
	pl_config_free(cfg);
	unlink(path);
}

/* An inline secret in a file everyone can read gets the warning a secret file gets. */
static void test_inline_secret_mode(void **state)
{
	static const char text[] = "[meter a]\n[influxdb db]\nurl = http://h\ndatabase = d\n"
				   "username = u\npassword = hunter2\n";
	struct pl_config_diags d = { 0 };
	struct pl_config *cfg;
	const char *path = temp_file(text, sizeof(text) - 1, 0644);
	char want[256];

	(void)state;
	assert_int_equal(pl_config_load(path, &cfg, &d), 0);
	assert_int_equal(d.warnings, 1);
	assert_true(snprintf(want, sizeof(want), "%s:6: warning: [influxdb db] password: the file "
			     "is readable by everyone and holds this secret (chmod o-rwx '%s', or use "
			     "password_file or password_env)", path, path) < (int)sizeof(want));
	has(&d, want);
	assert_null(strstr(d.v[0].text, "hunter2"));
	pl_config_free(cfg);
	pl_config_diags_free(&d);

	chmod(path, 0640); /* root:powerlogger 0640 is how a daemon's group reads it */
	assert_int_equal(pl_config_load(path, &cfg, &d), 0);
	assert_int_equal(d.n, 0);
	pl_config_free(cfg);
	pl_config_diags_free(&d);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_without_secrets),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_several),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_required),
		cmocka_unit_test(test_all_collected),
		cmocka_unit_test(test_secrets),
		cmocka_unit_test(test_mqtt),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_load_hostile),
		cmocka_unit_test(test_load_crlf_bom),
		cmocka_unit_test(test_inline_secret_mode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
