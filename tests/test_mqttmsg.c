/* SPDX-License-Identifier: MIT */
/*
 * Tests of the MQTT payload builder (src/core/mqttmsg.c): exact state, interval, diagnostics
 * and discovery payloads; kWh decimals for common meter constants with half-up rounding,
 * negative and extreme registers; exact watts; quality names; topic segments and ids for
 * hostile names (quotes, backslashes, control bytes, wildcards, UTF-8, broken UTF-8, 64
 * bytes); RFC 3339 times for known instants, before 1970, with fractions, at the ends of the
 * 4-digit years, and random instants against the C library's gmtime_r(); the worst-case
 * discovery payload within PL_MQTT_DISCOVERY_MAX; every buffer size from 0 to the length
 * needed (-PL_ENOSPC with an empty string, then success; a canary after the buffer, and
 * exact-size heap buffers for ASan); reading marks back, rejecting malformed ones, and random
 * and mutated inputs in exact-size heap buffers (never a crash, never a read past len).
 * That the payloads are JSON that Home Assistant accepts is checked by ha_discovery_check.py.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "powerlogger/mqttmsg.h"
#include "testutil.h"

/* ------------------------------------------------------------------ fixtures */

static const struct pl_mqtt_node node = {
	.topic_prefix = "powerlogger",
	.discovery_prefix = "homeassistant",
	.node_id = "powerlogger-pi",
	.sw_version = "0.4.0",
	.model = "Linux daemon",
	.support_url = "https://example.org/pl",
};

static const struct pl_mqtt_meter house = { .name = "house", .imp_per_kwh = 1000 };

/* The record of 2026-12-07 14:00:20 UTC, 20 s, 5 pulses of a 1000 imp/kWh meter. */
static struct pl_interval_record record(void)
{
	struct pl_interval_record r = {
		.start_us = INT64_C(1796652020) * PL_US_PER_S,
		.length_s = 20,
		.pulses = 5,
		.rejected = 0,
		.flags = 0,
		.energy_uwh = 5000000,
		.avg_mw = 900000,
		.peak_mw = 1100000,
		.register_uwh = INT64_C(1234567000000),
	};

	return r;
}

static struct pl_mqtt_mark mark_of(const char *store, uint64_t seq)
{
	struct pl_mqtt_mark m;

	memset(&m, 0, sizeof m);
	strcpy(m.store, store);
	m.seq = seq;
	return m;
}

/* The text of "key": in a flat payload up to the next ',' or '}' (strings with quotes). */
static const char *field_of(const char *json, const char *key)
{
	static char out[256];
	char pat[64];
	const char *p;
	size_t n;

	snprintf(pat, sizeof pat, "\"%s\":", key);
	p = strstr(json, pat);
	if (p == NULL)
		fail_msg("no %s in %s", key, json);
	p += strlen(pat);
	if (*p == '"') {
		n = strcspn(p + 1, "\"") + 2;
	} else {
		n = strcspn(p, ",}");
	}
	assert_true(n < sizeof out);
	memcpy(out, p, n);
	out[n] = '\0';
	return out;
}

static const char *state_field(const struct pl_mqtt_meter *m, const struct pl_interval_record *r,
			       const char *key)
{
	static char buf[PL_MQTT_PAYLOAD_MAX];
	int n = pl_mqtt_state_json(buf, sizeof buf, m, r, NULL);

	if (n < 0)
		fail_msg("state_json: %d", n);
	return field_of(buf, key);
}

/* The 32-bit FNV-1a hash, computed here independently of mqttmsg.c. */
static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s != '\0')
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

/* ------------------------------------------------------------------ exact payloads */

static void test_state_exact(void **st)
{
	struct pl_interval_record r = record();
	struct pl_mqtt_mark mk = mark_of("s01-AZ_z", 42);
	char buf[PL_MQTT_PAYLOAD_MAX];
	int n;

	(void)st;
	n = pl_mqtt_state_json(buf, sizeof buf, &house, &r, &mk);
	assert_string_equal(buf, "{\"energy_kwh\":1234.567,\"power_w\":900,"
				 "\"start\":\"2026-12-07T14:00:20Z\",\"length_s\":20,\"pulses\":5,"
				 "\"rejected\":0,\"flags\":0,\"quality\":\"ok\","
				 "\"store\":\"s01-AZ_z\",\"seq\":42}");
	assert_int_equal(n, (int)strlen(buf));
	/* without a mark */
	r.avg_mw = 812500;
	r.flags = PL_Q_PARTIAL | PL_Q_GAP;
	r.rejected = 2;
	n = pl_mqtt_state_json(buf, sizeof buf, &house, &r, NULL);
	assert_string_equal(buf, "{\"energy_kwh\":1234.567,\"power_w\":812.5,"
				 "\"start\":\"2026-12-07T14:00:20Z\",\"length_s\":20,\"pulses\":5,"
				 "\"rejected\":2,\"flags\":3,\"quality\":\"partial,gap\"}");
	assert_int_equal(n, (int)strlen(buf));
}

static void test_interval_exact(void **st)
{
	struct pl_interval_record r = record();
	struct pl_mqtt_mark mk = mark_of("store1", 7);
	char buf[PL_MQTT_PAYLOAD_MAX];
	int n;

	(void)st;
	n = pl_mqtt_interval_json(buf, sizeof buf, &house, &r, &mk);
	assert_string_equal(buf, "{\"start\":\"2026-12-07T14:00:20Z\",\"length_s\":20,\"pulses\":5,"
				 "\"rejected\":0,\"energy_wh\":5,\"power_w\":900,\"peak_w\":1100,"
				 "\"energy_kwh\":1234.567,\"flags\":0,\"quality\":\"ok\","
				 "\"store\":\"store1\",\"seq\":7}");
	assert_int_equal(n, (int)strlen(buf));
	/* Wh with up to 6 decimals: one pulse of a 75 imp/kWh meter is 13333333 uWh */
	r.energy_uwh = 13333333;
	r.peak_mw = 0;
	r.avg_mw = 2400000;
	n = pl_mqtt_interval_json(buf, sizeof buf, &house, &r, NULL);
	assert_true(n > 0);
	assert_string_equal(field_of(buf, "energy_wh"), "13.333333");
	assert_string_equal(field_of(buf, "peak_w"), "0");
	assert_string_equal(field_of(buf, "power_w"), "2400");
	assert_null(strstr(buf, "store"));
	r.energy_uwh = -1;
	n = pl_mqtt_interval_json(buf, sizeof buf, &house, &r, NULL);
	assert_true(n > 0);
	assert_string_equal(field_of(buf, "energy_wh"), "-0.000001");
}

static void test_diag_exact(void **st)
{
	struct pl_mqtt_diag d = {
		.detector_state = "tracking",
		.amplitude = 812,
		.noise = 3,
		.rejected_total = 0,
		.backlog = 0,
		.updated_us = INT64_C(1796652020) * PL_US_PER_S,
	};
	char buf[PL_MQTT_PAYLOAD_MAX];
	int n;

	(void)st;
	n = pl_mqtt_diag_json(buf, sizeof buf, &d);
	assert_string_equal(buf, "{\"detector\":\"tracking\",\"amplitude\":812,\"noise\":3,"
				 "\"rejected\":0,\"backlog\":0,"
				 "\"updated\":\"2026-12-07T14:00:20Z\"}");
	assert_int_equal(n, (int)strlen(buf));
	d.detector_state = "edges";
	d.amplitude = -1;
	d.noise = INT32_MIN;
	d.rejected_total = UINT64_MAX;
	d.backlog = 123456789012ull;
	n = pl_mqtt_diag_json(buf, sizeof buf, &d);
	assert_string_equal(buf, "{\"detector\":\"edges\",\"amplitude\":null,\"noise\":null,"
				 "\"rejected\":18446744073709551615,\"backlog\":123456789012,"
				 "\"updated\":\"2026-12-07T14:00:20Z\"}");
	assert_int_equal(n, (int)strlen(buf));
	/* a detector state is a string from the program, but escaped all the same */
	d.detector_state = "a\"b";
	d.amplitude = INT32_MAX;
	n = pl_mqtt_diag_json(buf, sizeof buf, &d);
	assert_true(n > 0);
	assert_string_equal(field_of(buf, "amplitude"), "2147483647");
	assert_non_null(strstr(buf, "\"detector\":\"a\\\"b\""));
	d.detector_state = NULL;
	assert_true(pl_mqtt_diag_json(buf, sizeof buf, &d) > 0);
	assert_string_equal(field_of(buf, "detector"), "\"unknown\"");
	assert_int_equal(pl_mqtt_diag_json(buf, sizeof buf, NULL), -PL_EINVAL);
	assert_string_equal(buf, "");
}

static const char discovery_house[] =
	"{\"dev\":{\"ids\":[\"powerlogger-pi_house\"],\"name\":\"PowerLogger house\","
	"\"mf\":\"PowerLogger\",\"mdl\":\"Linux daemon\",\"sw\":\"0.4.0\"},"
	"\"o\":{\"name\":\"PowerLogger\",\"sw\":\"0.4.0\",\"url\":\"https://example.org/pl\"},"
	"\"avty_t\":\"powerlogger/availability\",\"components\":{"
	"\"energy\":{\"platform\":\"sensor\",\"name\":\"Energy\",\"dev_cla\":\"energy\","
	"\"stat_cla\":\"total_increasing\",\"unit_of_meas\":\"kWh\",\"sug_dsp_prc\":3,"
	"\"stat_t\":\"powerlogger/house/state\",\"val_tpl\":\"{{ value_json.energy_kwh }}\","
	"\"uniq_id\":\"powerlogger-pi_house_energy\"},"
	"\"power\":{\"platform\":\"sensor\",\"name\":\"Power\",\"dev_cla\":\"power\","
	"\"stat_cla\":\"measurement\",\"unit_of_meas\":\"W\","
	"\"stat_t\":\"powerlogger/house/state\",\"val_tpl\":\"{{ value_json.power_w }}\","
	"\"uniq_id\":\"powerlogger-pi_house_power\"},"
	"\"detector\":{\"platform\":\"sensor\",\"name\":\"Detector\",\"ent_cat\":\"diagnostic\","
	"\"stat_t\":\"powerlogger/house/diag\",\"val_tpl\":\"{{ value_json.detector }}\","
	"\"uniq_id\":\"powerlogger-pi_house_detector\"},"
	"\"amplitude\":{\"platform\":\"sensor\",\"name\":\"Signal amplitude\","
	"\"stat_cla\":\"measurement\",\"ent_cat\":\"diagnostic\","
	"\"stat_t\":\"powerlogger/house/diag\",\"val_tpl\":\"{{ value_json.amplitude }}\","
	"\"uniq_id\":\"powerlogger-pi_house_amplitude\"},"
	"\"noise\":{\"platform\":\"sensor\",\"name\":\"Signal noise\","
	"\"stat_cla\":\"measurement\",\"ent_cat\":\"diagnostic\","
	"\"stat_t\":\"powerlogger/house/diag\",\"val_tpl\":\"{{ value_json.noise }}\","
	"\"uniq_id\":\"powerlogger-pi_house_noise\"},"
	"\"rejected\":{\"platform\":\"sensor\",\"name\":\"Rejected pulses\","
	"\"stat_cla\":\"total_increasing\",\"ent_cat\":\"diagnostic\","
	"\"stat_t\":\"powerlogger/house/diag\",\"val_tpl\":\"{{ value_json.rejected }}\","
	"\"uniq_id\":\"powerlogger-pi_house_rejected\"},"
	"\"backlog\":{\"platform\":\"sensor\",\"name\":\"Backlog\","
	"\"stat_cla\":\"measurement\",\"ent_cat\":\"diagnostic\","
	"\"stat_t\":\"powerlogger/house/diag\",\"val_tpl\":\"{{ value_json.backlog }}\","
	"\"uniq_id\":\"powerlogger-pi_house_backlog\"}},\"qos\":1}";

static void test_discovery_exact(void **st)
{
	static char buf[PL_MQTT_DISCOVERY_MAX];
	struct pl_mqtt_node bare = node;
	int n;

	(void)st;
	n = pl_mqtt_discovery_json(buf, sizeof buf, &node, &house);
	assert_string_equal(buf, discovery_house);
	assert_int_equal(n, (int)strlen(buf));
	n = pl_mqtt_discovery_topic(buf, sizeof buf, &node, &house);
	assert_string_equal(buf, "homeassistant/device/powerlogger-pi_house/config");
	assert_int_equal(n, (int)strlen(buf));

	/* optional node strings left out when NULL */
	bare.sw_version = NULL;
	bare.model = NULL;
	bare.support_url = NULL;
	n = pl_mqtt_discovery_json(buf, sizeof buf, &bare, &house);
	assert_true(n > 0);
	assert_non_null(strstr(buf, "\"dev\":{\"ids\":[\"powerlogger-pi_house\"],"
				    "\"name\":\"PowerLogger house\",\"mf\":\"PowerLogger\"},"
				    "\"o\":{\"name\":\"PowerLogger\"},\"avty_t\""));
	assert_null(strstr(buf, "\"sw\""));
	assert_null(strstr(buf, "\"mdl\""));
	assert_null(strstr(buf, "\"url\""));
}

static void test_discovery_refusals(void **st)
{
	char buf[256];
	struct pl_mqtt_node n = node;
	struct pl_mqtt_meter m = house;
	static const char *const bad_urls[] = {
		"ftp://x", "http:/x", "https://", "http:///x", "https://a b", "https://a\"b",
		"https://a\\b", "https://a\x01", "example.org", "", "javascript:alert(1)",
	};
	static const char *const good_urls[] = { "http://x", "https://example.org/a?b=c#d" };
	static char big[PL_MQTT_DISCOVERY_MAX];
	size_t i;

	(void)st;
	for (i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
		n.support_url = bad_urls[i];
		strcpy(big, "x");
		assert_int_equal(pl_mqtt_discovery_json(big, sizeof big, &n, &m), -PL_EINVAL);
		assert_string_equal(big, "");
	}
	for (i = 0; i < sizeof good_urls / sizeof good_urls[0]; i++) {
		n.support_url = good_urls[i];
		assert_true(pl_mqtt_discovery_json(big, sizeof big, &n, &m) > 0);
	}
	n = node;
	/* discovery off */
	n.discovery_prefix = NULL;
	assert_int_equal(pl_mqtt_discovery_topic(buf, sizeof buf, &n, &m), -PL_EINVAL);
	assert_int_equal(pl_mqtt_discovery_json(big, sizeof big, &n, &m), -PL_EINVAL);
	n.discovery_prefix = "";
	assert_int_equal(pl_mqtt_discovery_topic(buf, sizeof buf, &n, &m), -PL_EINVAL);
	n.discovery_prefix = "home/#";
	assert_int_equal(pl_mqtt_discovery_topic(buf, sizeof buf, &n, &m), -PL_EINVAL);
	n.discovery_prefix = "$ha";
	assert_int_equal(pl_mqtt_discovery_topic(buf, sizeof buf, &n, &m), -PL_EINVAL);
	n = node;
	n.node_id = NULL;
	assert_int_equal(pl_mqtt_discovery_topic(buf, sizeof buf, &n, &m), -PL_EINVAL);
	n = node;
	n.topic_prefix = "a+b";
	assert_int_equal(pl_mqtt_discovery_json(big, sizeof big, &n, &m), -PL_EINVAL);
	m.imp_per_kwh = 0;
	assert_int_equal(pl_mqtt_discovery_json(big, sizeof big, &node, &m), -PL_EINVAL);
	m = house;
	m.name = NULL;
	assert_int_equal(pl_mqtt_discovery_json(big, sizeof big, &node, &m), -PL_EINVAL);
	assert_int_equal(pl_mqtt_discovery_json(big, sizeof big, NULL, &house), -PL_EINVAL);
	assert_int_equal(pl_mqtt_discovery_json(big, sizeof big, &node, NULL), -PL_EINVAL);
	assert_int_equal(pl_mqtt_discovery_json(NULL, 10, &node, &house), -PL_EINVAL);
}

/* ------------------------------------------------------------------ numbers */

static void test_kwh_decimals(void **st)
{
	static const struct {
		uint32_t imp;
		unsigned dec;
	} cases[] = {
		{ 0, 0 }, { 1, 0 }, { 2, 1 }, { 9, 1 }, { 10, 1 }, { 11, 2 }, { 75, 2 },
		{ 100, 2 }, { 101, 3 }, { 800, 3 }, { 1000, 3 }, { 1001, 4 }, { 10000, 4 },
		{ 100000, 5 }, { 1000000, 6 }, { 1000001, 6 }, { UINT32_MAX, 6 },
	};
	size_t i;

	(void)st;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (pl_mqtt_kwh_decimals(cases[i].imp) != cases[i].dec)
			fail_msg("imp %" PRIu32 ": %u decimals, want %u", cases[i].imp,
				 pl_mqtt_kwh_decimals(cases[i].imp), cases[i].dec);
	}
}

static void check_kwh(uint32_t imp, int64_t uwh, const char *want)
{
	struct pl_mqtt_meter m = { .name = "m", .imp_per_kwh = imp };
	struct pl_interval_record r = record();
	const char *got;

	r.register_uwh = uwh;
	got = state_field(&m, &r, "energy_kwh");
	if (strcmp(got, want) != 0)
		fail_msg("imp %" PRIu32 ", %" PRId64 " uWh: \"%s\", want \"%s\"", imp, uwh, got,
			 want);
}

static void test_kwh_values(void **st)
{
	(void)st;
	/* the brief's meter constants, one register */
	check_kwh(1, INT64_C(1234567891234), "1235");
	check_kwh(75, INT64_C(1234567891234), "1234.57");
	check_kwh(800, INT64_C(1234567891234), "1234.568");
	check_kwh(1000, INT64_C(1234567891234), "1234.568");
	check_kwh(10000, INT64_C(1234567891234), "1234.5679");
	/* all decimals printed, also zeros */
	check_kwh(1000, 0, "0.000");
	check_kwh(10000, INT64_C(2000000000), "2.0000");
	check_kwh(1, 0, "0");
	check_kwh(1000000, 1, "0.000000");
	check_kwh(1000000, 500, "0.000001");
	/* rounding half up (away from zero for negatives, as the meter rounds) */
	check_kwh(1000, 1500000, "0.002");
	check_kwh(1000, 1499999, "0.001");
	check_kwh(1000, 500000, "0.001");
	check_kwh(1000, 499999, "0.000");
	check_kwh(1, 500000000, "1");
	check_kwh(1, 499999999, "0");
	check_kwh(75, 995000000, "1.00");
	check_kwh(1000, 999999999, "1.000");
	/* negative registers: invalid, but printed correctly, and no "-0" */
	check_kwh(1000, -1500000, "-0.002");
	check_kwh(1000, -1499999, "-0.001");
	check_kwh(1000, -1, "0.000");
	check_kwh(1000, -499999, "0.000");
	check_kwh(1000, -500000, "-0.001");
	check_kwh(1, -INT64_C(1234567891234), "-1235");
	/* huge registers: the ends of int64_t */
	check_kwh(1000, INT64_MAX, "9223372036.855");
	check_kwh(1000, INT64_MIN, "-9223372036.855");
	check_kwh(1, INT64_MAX, "9223372037");
	check_kwh(1000000, INT64_MAX, "9223372036.854776");
	check_kwh(1000000, INT64_MIN, "-9223372036.854776");
	check_kwh(75, INT64_MAX - 1, "9223372036.85");
}

static void check_watts(int64_t mw, const char *want)
{
	struct pl_interval_record r = record();
	const char *got;

	r.avg_mw = mw;
	got = state_field(&house, &r, "power_w");
	if (strcmp(got, want) != 0)
		fail_msg("%" PRId64 " mW: \"%s\", want \"%s\"", mw, got, want);
}

static void test_watts(void **st)
{
	(void)st;
	check_watts(812500, "812.5");
	check_watts(0, "0");
	check_watts(1, "0.001");
	check_watts(10, "0.01");
	check_watts(1000, "1");
	check_watts(1234567, "1234.567");
	check_watts(-812500, "-812.5");
	check_watts(-1, "-0.001");
	check_watts(INT64_MAX, "9223372036854775.807");
	check_watts(INT64_MIN, "-9223372036854775.808");
}

static void test_quality(void **st)
{
	static const struct {
		uint32_t flags;
		const char *want;
	} cases[] = {
		{ 0, "\"ok\"" },
		{ PL_Q_PARTIAL, "\"partial\"" },
		{ PL_Q_GAP, "\"gap\"" },
		{ PL_Q_REJECTED, "\"rejected\"" },
		{ PL_Q_STEADY, "\"steady\"" },
		{ PL_Q_NO_SIGNAL, "\"no_signal\"" },
		{ PL_Q_PARTIAL | PL_Q_GAP, "\"partial,gap\"" },
		{ PL_Q_GAP | PL_Q_NO_SIGNAL, "\"gap,no_signal\"" },
		{ 31, "\"partial,gap,rejected,steady,no_signal\"" },
		{ 1u << 7, "\"other\"" },
		{ UINT32_MAX, "\"partial,gap,rejected,steady,no_signal,other\"" },
	};
	struct pl_interval_record r = record();
	char want_flags[16];
	size_t i;

	(void)st;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		r.flags = cases[i].flags;
		assert_string_equal(state_field(&house, &r, "quality"), cases[i].want);
		snprintf(want_flags, sizeof want_flags, "%" PRIu32, cases[i].flags);
		assert_string_equal(state_field(&house, &r, "flags"), want_flags);
	}
}

/* ------------------------------------------------------------------ time */

static const char *time_of(int64_t t_us, int *rc)
{
	static char buf[PL_MQTT_PAYLOAD_MAX];
	struct pl_mqtt_diag d = { .detector_state = "x", .updated_us = t_us };

	*rc = pl_mqtt_diag_json(buf, sizeof buf, &d);
	if (*rc < 0)
		return buf;
	return field_of(buf, "updated");
}

static void check_time(int64_t t_us, const char *want)
{
	int rc;
	const char *got = time_of(t_us, &rc);
	char quoted[64];

	snprintf(quoted, sizeof quoted, "\"%s\"", want);
	if (rc < 0 || strcmp(got, quoted) != 0)
		fail_msg("%" PRId64 " us: %s (%d), want %s", t_us, got, rc, quoted);
}

static void test_time_known(void **st)
{
	const int64_t S = PL_US_PER_S;

	(void)st;
	check_time(0, "1970-01-01T00:00:00Z");
	check_time(951782400 * S, "2000-02-29T00:00:00Z");
	check_time(951868799 * S, "2000-02-29T23:59:59Z");
	check_time(951868800 * S, "2000-03-01T00:00:00Z");
	check_time(INT64_C(1796652020) * S, "2026-12-07T14:00:20Z");
	check_time(INT64_C(4107542400) * S, "2100-03-01T00:00:00Z");
	check_time(INT64_C(4107542399) * S, "2100-02-28T23:59:59Z"); /* 2100 is no leap year */
	/* before 1970 */
	check_time(-1, "1969-12-31T23:59:59.999999Z");
	check_time(-S, "1969-12-31T23:59:59Z");
	check_time(-S - 500000, "1969-12-31T23:59:58.5Z");
	check_time(-31536000 * S, "1969-01-01T00:00:00Z");
	check_time(INT64_C(-2208988800) * S, "1900-01-01T00:00:00Z");
	check_time(INT64_C(-62167219200) * S, "0000-01-01T00:00:00Z");
	/* fractions: only as many digits as are not zero */
	check_time(500000, "1970-01-01T00:00:00.5Z");
	check_time(1, "1970-01-01T00:00:00.000001Z");
	check_time(120000, "1970-01-01T00:00:00.12Z");
	check_time(INT64_C(1796652020) * S + 250000, "2026-12-07T14:00:20.25Z");
	/* the last instant with a 4-digit year */
	check_time(INT64_C(253402300799) * S + 999999, "9999-12-31T23:59:59.999999Z");
}

static void test_time_out_of_range(void **st)
{
	static const int64_t bad[] = {
		INT64_C(253402300800) * PL_US_PER_S, /* 10000-01-01 */
		INT64_C(-62167219200) * PL_US_PER_S - 1, /* before 0000 */
		INT64_MAX, INT64_MIN, PL_METER_T_LIMIT, -PL_METER_T_LIMIT,
	};
	struct pl_interval_record r = record();
	char buf[PL_MQTT_PAYLOAD_MAX];
	size_t i;
	int rc;

	(void)st;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		time_of(bad[i], &rc);
		assert_int_equal(rc, -PL_EINVAL);
		r.start_us = bad[i];
		strcpy(buf, "x");
		assert_int_equal(pl_mqtt_state_json(buf, sizeof buf, &house, &r, NULL), -PL_EINVAL);
		assert_string_equal(buf, "");
		assert_int_equal(pl_mqtt_interval_json(buf, sizeof buf, &house, &r, NULL),
				 -PL_EINVAL);
	}
}

/* Random instants of 1900..2200 against the C library (1901..2038 where time_t has 32 bits:
 * the tests also run on armhf). */
static void test_time_random(void **st)
{
	int64_t lo = INT64_C(-2208988800), span = INT64_C(9467280000);
	int i;

	(void)st;
	if (sizeof(time_t) < 8) {
		lo = INT32_MIN;
		span = (int64_t)INT32_MAX - INT32_MIN;
	}
	rng_state = 0x5eed0001;
	for (i = 0; i < (getenv("PL_VALGRIND") ? 10000 : 100000); i++) {
		int64_t s = lo + (int64_t)(rnd() % (uint64_t)span);
		int64_t us = (int64_t)(rnd() % 4 == 0 ? 0 : rnd() % 1000000);
		time_t t = (time_t)s;
		struct tm tm;
		char want[64], frac[16] = "";

		if (gmtime_r(&t, &tm) == NULL)
			fail_msg("gmtime_r(%" PRId64 ")", s);
		if (us != 0) {
			int k;

			snprintf(frac, sizeof frac, ".%06" PRId64, us);
			for (k = (int)strlen(frac) - 1; frac[k] == '0'; k--)
				frac[k] = '\0';
		}
		snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
		check_time(s * PL_US_PER_S + us, want);
	}
}

/* ------------------------------------------------------------------ names */

static void check_segment(const char *name, const char *want)
{
	char buf[512];
	int n = pl_mqtt_segment(buf, sizeof buf, name);

	assert_true(n >= 0);
	if (strcmp(buf, want) != 0)
		fail_msg("segment of \"%s\": \"%s\", want \"%s\"", name, buf, want);
	assert_int_equal(n, (int)strlen(want));
}

static void test_segment(void **st)
{
	(void)st;
	check_segment("house", "house");
	check_segment("a/b+c#d", "a_b_c_d");
	check_segment("", "_");
	check_segment("a b.c-d_e", "a b.c-d_e");
	check_segment("q\"uo\\te'", "q\"uo\\te'"); /* no meaning in a topic: kept */
	check_segment("tab\there\nnl\x01\x1f\x7f", "tab_here_nl___");
	check_segment("K\xc3\xbc" "che \xe2\x82\xac \xf0\x9f\x92\xa1",
		      "K\xc3\xbc" "che \xe2\x82\xac \xf0\x9f\x92\xa1");
	/* broken UTF-8: each byte that starts no valid sequence is one '_' */
	check_segment("a\xff" "b\xc3", "a_b_");
	check_segment("\xc0\xaf", "__");            /* overlong '/' */
	check_segment("\xed\xa0\x80", "___");       /* a surrogate */
	check_segment("\xf4\x90\x80\x80", "____");  /* beyond U+10FFFF */
	check_segment("\xe2\x82", "__");            /* truncated */
	/* characters brokers refuse in topics: C1 controls and non-characters */
	check_segment("x\xc2\x85y", "x_y");          /* U+0085 */
	check_segment("x\xc2\xa0y", "x\xc2\xa0y");   /* U+00A0 is fine */
	check_segment("\xef\xb7\x90", "_");          /* U+FDD0 */
	check_segment("\xef\xbf\xbe\xef\xbf\xbf", "__"); /* U+FFFE, U+FFFF */
	check_segment("\xf0\x9f\xbf\xbf", "_");      /* U+1FFFF */
	check_segment("$SYS", "$SYS"); /* '$' matters only at a topic's start: P comes first */
	assert_int_equal(pl_mqtt_segment(NULL, 1, "a"), -PL_EINVAL);
	{
		char b[4];

		assert_int_equal(pl_mqtt_segment(b, sizeof b, NULL), -PL_EINVAL);
	}
}

static void check_id(const char *name, const char *want_plain, bool hashed)
{
	char buf[512], want[512];
	int n = pl_mqtt_id(buf, sizeof buf, name);

	if (hashed)
		snprintf(want, sizeof want, "%s_%08" PRIx32, want_plain, fnv1a(name));
	else
		snprintf(want, sizeof want, "%s", want_plain);
	if (n != (int)strlen(want) || strcmp(buf, want) != 0)
		fail_msg("id of \"%s\": \"%s\" (%d), want \"%s\"", name, buf, n, want);
	for (n = 0; buf[n] != '\0'; n++) {
		char c = buf[n];

		assert_true((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '_' || c == '-');
	}
}

static void test_id(void **st)
{
	char a[64], b[64];

	(void)st;
	check_id("house", "house", false);
	check_id("Main-Meter_2", "Main-Meter_2", false);
	check_id("a.b", "a_b", true);
	check_id("a_b", "a_b", false);
	check_id("", "", true);
	check_id("K\xc3\xbc" "che", "K__che", true);
	check_id("a/b+c#d \"e\\", "a_b_c_d__e_", true);
	check_id("\x01\x02", "__", true);
	/* "a.b" and "a_b", "a.b" and "a,b" differ */
	assert_true(pl_mqtt_id(a, sizeof a, "a.b") > 0);
	assert_true(pl_mqtt_id(b, sizeof b, "a_b") > 0);
	assert_string_not_equal(a, b);
	assert_true(pl_mqtt_id(b, sizeof b, "a,b") > 0);
	assert_string_not_equal(a, b);
	assert_int_equal(pl_mqtt_id(a, sizeof a, NULL), -PL_EINVAL);
}

static void test_name_problem(void **st)
{
	char name[PL_MQTT_NAME_MAX + 2];

	(void)st;
	assert_null(pl_mqtt_name_problem("house"));
	assert_null(pl_mqtt_name_problem("a/b \"c\" \\ \x01 #+ K\xc3\xbc" "che \xf0\x9f\x92\xa1"));
	assert_string_equal(pl_mqtt_name_problem(""), "is empty");
	assert_string_equal(pl_mqtt_name_problem(NULL), "is missing");
	assert_string_equal(pl_mqtt_name_problem("a\xff"), "is not valid UTF-8");
	assert_string_equal(pl_mqtt_name_problem("\xc3"), "is not valid UTF-8");
	assert_string_equal(pl_mqtt_name_problem("\xed\xa0\x80"), "is not valid UTF-8");
	memset(name, 'a', PL_MQTT_NAME_MAX);
	name[PL_MQTT_NAME_MAX] = '\0';
	assert_null(pl_mqtt_name_problem(name));
	name[PL_MQTT_NAME_MAX] = 'a';
	name[PL_MQTT_NAME_MAX + 1] = '\0';
	assert_string_equal(pl_mqtt_name_problem(name), "is longer than 64 bytes");
}

static void test_topic(void **st)
{
	char buf[PL_MQTT_TOPIC_MAX];
	struct pl_mqtt_node n = node;
	int rc;

	(void)st;
	rc = pl_mqtt_topic(buf, sizeof buf, &node, "house", "state");
	assert_string_equal(buf, "powerlogger/house/state");
	assert_int_equal(rc, (int)strlen(buf));
	rc = pl_mqtt_topic(buf, sizeof buf, &node, NULL, "availability");
	assert_string_equal(buf, "powerlogger/availability");
	assert_int_equal(rc, (int)strlen(buf));
	assert_true(pl_mqtt_topic(buf, sizeof buf, &node, "a/b#", "diag") > 0);
	assert_string_equal(buf, "powerlogger/a_b_/diag");
	assert_true(pl_mqtt_topic(buf, sizeof buf, &node, NULL, "sync/powerlogger-pi") > 0);
	assert_string_equal(buf, "powerlogger/sync/powerlogger-pi");
	n.topic_prefix = "home/power";
	assert_true(pl_mqtt_topic(buf, sizeof buf, &n, "house", "interval") > 0);
	assert_string_equal(buf, "home/power/house/interval");
	/* refused: wildcards and control bytes in the program's own parts, empty, NULL */
	n.topic_prefix = "pl/+";
	assert_int_equal(pl_mqtt_topic(buf, sizeof buf, &n, "house", "state"), -PL_EINVAL);
	assert_string_equal(buf, "");
	n.topic_prefix = "";
	assert_int_equal(pl_mqtt_topic(buf, sizeof buf, &n, "house", "state"), -PL_EINVAL);
	n.topic_prefix = "$SYS"; /* the broker's own topics */
	assert_int_equal(pl_mqtt_topic(buf, sizeof buf, &n, "house", "state"), -PL_EINVAL);
	n.topic_prefix = "pl/$x"; /* '$' only matters at the start */
	assert_true(pl_mqtt_topic(buf, sizeof buf, &n, "house", "state") > 0);
	n.topic_prefix = NULL;
	assert_int_equal(pl_mqtt_topic(buf, sizeof buf, &n, "house", "state"), -PL_EINVAL);
	assert_int_equal(pl_mqtt_topic(buf, sizeof buf, &node, "house", "#"), -PL_EINVAL);
	assert_int_equal(pl_mqtt_topic(buf, sizeof buf, &node, "house", "a\nb"), -PL_EINVAL);
	assert_int_equal(pl_mqtt_topic(buf, sizeof buf, &node, "house", ""), -PL_EINVAL);
	assert_int_equal(pl_mqtt_topic(buf, sizeof buf, &node, "house", NULL), -PL_EINVAL);
	assert_int_equal(pl_mqtt_topic(buf, sizeof buf, NULL, "house", "state"), -PL_EINVAL);
	assert_int_equal(pl_mqtt_topic(NULL, 9, &node, "house", "state"), -PL_EINVAL);
}

/* Hostile names end up escaped in JSON and replaced in topics and ids. */
static void test_hostile_names_in_discovery(void **st)
{
	static char buf[PL_MQTT_DISCOVERY_MAX];
	struct pl_mqtt_meter m = { .name = "a\"b\\c\x01" "d\x7f/+#\xc3\xa9", .imp_per_kwh = 800 };
	char want_id[128];
	int n;

	(void)st;
	n = pl_mqtt_discovery_json(buf, sizeof buf, &node, &m);
	assert_true(n > 0);
	assert_non_null(strstr(buf, "\"name\":\"PowerLogger "
				    "a\\\"b\\\\c\\u0001d\\u007f/+#\xc3\xa9\""));
	assert_non_null(strstr(buf, "\"stat_t\":\"powerlogger/a\\\"b\\\\c_d____\xc3\xa9/state\""));
	snprintf(want_id, sizeof want_id, "\"uniq_id\":\"powerlogger-pi_a_b_c_d_______%08" PRIx32
		 "_energy\"", fnv1a(m.name));
	assert_non_null(strstr(buf, want_id));
	assert_non_null(strstr(buf, "\"sug_dsp_prc\":3"));
	n = pl_mqtt_discovery_topic(buf, sizeof buf, &node, &m);
	assert_true(n > 0);
	snprintf(want_id, sizeof want_id, "homeassistant/device/powerlogger-pi_a_b_c_d_______%08"
		 PRIx32 "/config", fnv1a(m.name));
	assert_string_equal(buf, want_id);
}

/* ------------------------------------------------------------------ sizes */

/* 64-byte names of the kinds that grow most: in JSON strings, in topics or in ids. */
static void fill_name(char *out, int kind)
{
	static const char *const unit[] = { "\x01", "\"", "\\", "\xf0\x9f\x92\xa1", "\xc3\xa9",
					    ".", "a" };
	size_t len = strlen(unit[kind]), n = 0;

	while (n + len <= PL_MQTT_NAME_MAX) {
		memcpy(out + n, unit[kind], len);
		n += len;
	}
	while (n < PL_MQTT_NAME_MAX)
		out[n++] = '"';
	out[n] = '\0';
}

#define N_KINDS 7

static void test_worst_case_sizes(void **st)
{
	static char buf[PL_MQTT_DISCOVERY_MAX + 4096];
	char name[PL_MQTT_NAME_MAX + 1], nid[PL_MQTT_NAME_MAX + 1];
	int worst_disc = 0, worst_topic = 0, worst_dtopic = 0, worst_state = 0, k, j;
	struct pl_interval_record r = record();
	struct pl_mqtt_mark mk = mark_of("0123456789abcdefghijABCDEFGHIJ-_", UINT64_MAX);

	(void)st;
	assert_int_equal(strlen(mk.store), PL_MQTT_STORE_ID_MAX);
	for (k = 0; k < N_KINDS; k++) {
		for (j = 0; j < N_KINDS; j++) {
			struct pl_mqtt_node n = node;
			struct pl_mqtt_meter m = { .name = name, .imp_per_kwh = 1000000 };
			int rc;

			fill_name(name, k);
			fill_name(nid, j);
			assert_int_equal(strlen(name), PL_MQTT_NAME_MAX);
			n.node_id = nid;
			rc = pl_mqtt_discovery_json(buf, PL_MQTT_DISCOVERY_MAX, &n, &m);
			if (rc < 0)
				fail_msg("kinds %d/%d: %d", k, j, rc);
			if (rc > worst_disc)
				worst_disc = rc;
			rc = pl_mqtt_discovery_topic(buf, PL_MQTT_TOPIC_MAX, &n, &m);
			assert_true(rc > 0);
			if (rc > worst_dtopic)
				worst_dtopic = rc;
			rc = pl_mqtt_topic(buf, PL_MQTT_TOPIC_MAX, &n, name, "interval");
			assert_true(rc > 0);
			if (rc > worst_topic)
				worst_topic = rc;
		}
	}
	/* the longest state and interval: every number at its widest */
	r.start_us = -1; /* a fraction of 6 digits */
	r.length_s = r.pulses = r.rejected = r.flags = UINT32_MAX;
	r.energy_uwh = r.avg_mw = r.peak_mw = r.register_uwh = INT64_MIN;
	worst_state = pl_mqtt_interval_json(buf, PL_MQTT_PAYLOAD_MAX, &house, &r, &mk);
	assert_true(worst_state > 0);
	k = pl_mqtt_state_json(buf, PL_MQTT_PAYLOAD_MAX, &house, &r, &mk);
	assert_true(k > 0 && k <= worst_state + 64);
	print_message("worst cases: discovery %d of %d, discovery topic %d, topic %d of %d, "
		      "interval %d of %d bytes\n", worst_disc, PL_MQTT_DISCOVERY_MAX, worst_dtopic,
		      worst_topic, PL_MQTT_TOPIC_MAX, worst_state, PL_MQTT_PAYLOAD_MAX);

	/* With every node string 64 bytes of the worst kind too, it still fits (not promised
	 * by the header, measured here so that a change that breaks it is seen). */
	{
		static char s[5][PL_MQTT_NAME_MAX + 1];
		struct pl_mqtt_node n = node;
		struct pl_mqtt_meter m = { .name = name, .imp_per_kwh = 1 };
		int rc;

		fill_name(name, 0);
		fill_name(nid, 5);
		fill_name(s[0], 1); /* topic prefix: quotes grow in JSON */
		fill_name(s[1], 0);
		fill_name(s[2], 0);
		memcpy(s[3], "https://", 8);
		memset(s[3] + 8, 'x', PL_MQTT_NAME_MAX - 8);
		s[3][PL_MQTT_NAME_MAX] = '\0';
		n.node_id = nid;
		n.topic_prefix = s[0];
		n.sw_version = s[1];
		n.model = s[2];
		n.support_url = s[3];
		rc = pl_mqtt_discovery_json(buf, sizeof buf, &n, &m);
		assert_true(rc > 0);
		print_message("every node string 64 bytes too: discovery %d bytes\n", rc);
		assert_true(rc < PL_MQTT_DISCOVERY_MAX);
	}
}

/* ------------------------------------------------------------------ every cap */

/* Calls one builder with cap bytes at buf. */
typedef int (*builder)(char *buf, size_t cap, const void *arg);

static int b_segment(char *buf, size_t cap, const void *arg)
{
	return pl_mqtt_segment(buf, cap, arg);
}

static int b_id(char *buf, size_t cap, const void *arg)
{
	return pl_mqtt_id(buf, cap, arg);
}

static int b_topic(char *buf, size_t cap, const void *arg)
{
	return pl_mqtt_topic(buf, cap, &node, arg, "state");
}

static int b_dtopic(char *buf, size_t cap, const void *arg)
{
	return pl_mqtt_discovery_topic(buf, cap, &node, arg);
}

static int b_disc(char *buf, size_t cap, const void *arg)
{
	return pl_mqtt_discovery_json(buf, cap, &node, arg);
}

static int b_state(char *buf, size_t cap, const void *arg)
{
	struct pl_mqtt_mark mk = mark_of("st0re", 99);

	return pl_mqtt_state_json(buf, cap, &house, arg, &mk);
}

static int b_interval(char *buf, size_t cap, const void *arg)
{
	struct pl_mqtt_mark mk = mark_of("st0re", 99);

	return pl_mqtt_interval_json(buf, cap, &house, arg, &mk);
}

static int b_diag(char *buf, size_t cap, const void *arg)
{
	return pl_mqtt_diag_json(buf, cap, arg);
}

#define CANARY 16

/*
 * Every cap from 0 to the length needed: -PL_ENOSPC and "" (nothing past cap touched: a
 * canary after it, and an exact-size heap buffer that ASan guards), then at the exact size
 * the same text as with plenty of room.
 */
static void check_every_cap(builder fn, const void *arg, const char *what)
{
	static char full[PL_MQTT_DISCOVERY_MAX];
	int len = fn(full, sizeof full, arg);
	size_t cap;

	if (len <= 0)
		fail_msg("%s: %d", what, len);
	for (cap = 0; cap <= (size_t)len + 1; cap++) {
		char *b = malloc(cap + CANARY), *exact = malloc(cap > 0 ? cap : 1);
		int rc, rc2;
		size_t i;

		assert_non_null(b);
		assert_non_null(exact);
		memset(b, 'Q', cap + CANARY);
		rc = fn(b, cap, arg);
		rc2 = fn(exact, cap, arg);
		for (i = cap; i < cap + CANARY; i++) {
			if (b[i] != 'Q')
				fail_msg("%s: cap %zu: byte %zu written", what, cap, i);
		}
		if (cap <= (size_t)len) {
			if (rc != -PL_ENOSPC || rc2 != -PL_ENOSPC)
				fail_msg("%s: cap %zu of %d: %d", what, cap, len, rc);
			if (cap > 0) {
				assert_int_equal(b[0], '\0');
				assert_int_equal(exact[0], '\0');
			}
		} else {
			assert_int_equal(rc, len);
			assert_int_equal(rc2, len);
			assert_string_equal(b, full);
			assert_string_equal(exact, full);
		}
		free(b);
		free(exact);
	}
}

static void test_every_cap(void **st)
{
	struct pl_interval_record r = record();
	struct pl_mqtt_diag d = { .detector_state = "tracking", .amplitude = 812, .noise = 3,
				  .rejected_total = 17, .backlog = 3, .updated_us = -1 };
	struct pl_mqtt_meter hostile = { .name = "a\"b\\c\x01" "d/+#\xc3\xa9.", .imp_per_kwh = 75 };
	char worst[PL_MQTT_NAME_MAX + 1];
	struct pl_mqtt_meter big = { .name = worst, .imp_per_kwh = 1000 };

	(void)st;
	fill_name(worst, 0);
	r.flags = PL_Q_GAP | PL_Q_STEADY;
	r.avg_mw = 812500;
	check_every_cap(b_segment, "a/b\x01" "c\xc3\xa9", "segment");
	check_every_cap(b_id, "a.b", "id");
	check_every_cap(b_id, "plain", "id");
	check_every_cap(b_topic, "gar/age", "topic");
	check_every_cap(b_dtopic, &hostile, "discovery topic");
	check_every_cap(b_disc, &house, "discovery");
	check_every_cap(b_disc, &hostile, "discovery (hostile)");
	check_every_cap(b_disc, &big, "discovery (64 control bytes)");
	check_every_cap(b_state, &r, "state");
	check_every_cap(b_interval, &r, "interval");
	check_every_cap(b_diag, &d, "diag");
}

/* ------------------------------------------------------------------ marks */

static void test_mark_round_trip(void **st)
{
	static const char *const stores[] = { "a", "s0123abcd", "A-Z_a-z-0-9",
					      "0123456789abcdefghijABCDEFGHIJ-_" };
	static const uint64_t seqs[] = { 0, 1, 42, 4294967296ull, 9007199254740993ull,
					 UINT64_MAX - 1, UINT64_MAX };
	struct pl_interval_record r = record();
	char buf[PL_MQTT_PAYLOAD_MAX];
	size_t i, j;

	(void)st;
	for (i = 0; i < sizeof stores / sizeof stores[0]; i++) {
		for (j = 0; j < sizeof seqs / sizeof seqs[0]; j++) {
			struct pl_mqtt_mark in = mark_of(stores[i], seqs[j]), out;
			int n = pl_mqtt_state_json(buf, sizeof buf, &house, &r, &in);
			char *exact;

			assert_true(n > 0);
			/* an exact-size copy without a NUL: nothing may read past len */
			exact = malloc((size_t)n);
			assert_non_null(exact);
			memcpy(exact, buf, (size_t)n);
			memset(&out, 0x55, sizeof out);
			assert_int_equal(pl_mqtt_parse_mark(exact, (size_t)n, &out), 0);
			assert_string_equal(out.store, in.store);
			assert_true(out.seq == in.seq);
			/* so are the interval's */
			n = pl_mqtt_interval_json(buf, sizeof buf, &house, &r, &in);
			assert_true(n > 0);
			memset(&out, 0, sizeof out);
			assert_int_equal(pl_mqtt_parse_mark(buf, (size_t)n, &out), 0);
			assert_string_equal(out.store, in.store);
			assert_true(out.seq == in.seq);
			free(exact);
		}
	}
}

static void check_mark_rejected(const char *payload)
{
	struct pl_mqtt_mark out = mark_of("untouched", 5);
	size_t len = strlen(payload);
	char *exact = malloc(len > 0 ? len : 1);
	int rc;

	assert_non_null(exact);
	memcpy(exact, payload, len);
	rc = pl_mqtt_parse_mark(exact, len, &out);
	free(exact);
	if (rc != -PL_EPARSE)
		fail_msg("accepted (%d): %s", rc, payload);
	assert_string_equal(out.store, "untouched");
	assert_true(out.seq == 5);
}

static void test_mark_rejections(void **st)
{
	static const char *const bad[] = {
		"",
		"{}",
		"{",
		"[]",
		"null",
		"{\"seq\":1}",
		"{\"store\":\"a\"}",
		"{\"store\":\"a\",\"seq\":01}",
		"{\"store\":\"a\",\"seq\":-1}",
		"{\"store\":\"a\",\"seq\":1.0}",
		"{\"store\":\"a\",\"seq\":1e3}",
		"{\"store\":\"a\",\"seq\":\"42\"}",
		"{\"store\":\"a\",\"seq\":18446744073709551616}",
		"{\"store\":\"a\",\"seq\":99999999999999999999}",
		"{\"store\":\"a\",\"seq\":null}",
		"{\"store\":\"a\",\"seq\":true}",
		"{\"store\":\"a.b\",\"seq\":1}",
		"{\"store\":\"\",\"seq\":1}",
		"{\"store\":\"0123456789abcdefghijABCDEFGHIJ-_x\",\"seq\":1}",
		"{\"store\":\"a\\u0041\",\"seq\":1}",
		"{\"store\":1,\"seq\":1}",
		"{\"store\":\"a\",\"seq\":1,\"store\":\"b\"}",
		"{\"store\":\"a\",\"seq\":1,\"seq\":2}",
		"{\"store\":\"a\",\"seq\":1,\"x\":{\"y\":1}}",
		"{\"store\":\"a\",\"seq\":1,\"x\":[1]}",
		"{\"store\":\"a\",\"seq\":1}x",
		"{\"store\":\"a\",\"seq\":1}}",
		"{\"store\":\"a\",\"seq\":1,}",
		"{\"store\":\"a\" \"seq\":1}",
		"{\"store\":\"a\",\"seq\"1}",
		"{\"store\":\"a\",\"seq\":}",
		"{\"store\":\"a\",\"seq\":1",
		"{\"store\":\"a\",\"seq\":1,\"q\":\"unterminated}",
		"{\"store\":\"a\",\"seq\":1,\"q\":\"ctl\x01\"}",
		"{\"store\":\"a\",\"seq\":1,\"q\":\"\\",
		"{\"st\\u006fre\":\"a\",\"seq\":1}", /* an escaped key is not ours */
		"{'store':'a','seq':1}",
	};
	struct pl_mqtt_mark out;
	size_t i;

	(void)st;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		check_mark_rejected(bad[i]);
	assert_int_equal(pl_mqtt_parse_mark(NULL, 0, &out), -PL_EINVAL);
	assert_int_equal(pl_mqtt_parse_mark("{}", 2, NULL), -PL_EINVAL);
	/* what other programs may well write around it is fine */
	{
		static const char ws[] = " {\n\t\"seq\" : 7 , \"x\":\"a,b}\\\"\",\"y\":-1.5e3,"
					 "\"z\":null, \"store\" : \"st\" }\r\n";

		assert_int_equal(pl_mqtt_parse_mark(ws, sizeof ws - 1, &out), 0);
	}
	assert_string_equal(out.store, "st");
	assert_true(out.seq == 7);
}

/* Every proper prefix of a valid state is refused: a truncated message is never a mark. */
static void test_mark_prefixes(void **st)
{
	struct pl_interval_record r = record();
	struct pl_mqtt_mark in = mark_of("abc", 123456), out;
	char buf[PL_MQTT_PAYLOAD_MAX];
	int n = pl_mqtt_state_json(buf, sizeof buf, &house, &r, &in);
	size_t len;

	(void)st;
	assert_true(n > 0);
	for (len = 0; len < (size_t)n; len++) {
		char *exact = malloc(len > 0 ? len : 1);

		memcpy(exact, buf, len);
		assert_int_equal(pl_mqtt_parse_mark(exact, len, &out), -PL_EPARSE);
		free(exact);
	}
	assert_int_equal(pl_mqtt_parse_mark(buf, (size_t)n, &out), 0);
	assert_true(out.seq == 123456);
}

static bool store_valid(const struct pl_mqtt_mark *m)
{
	size_t n = strnlen(m->store, sizeof m->store), i;

	if (n == 0 || n > PL_MQTT_STORE_ID_MAX)
		return false;
	for (i = 0; i < n; i++) {
		char c = m->store[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Random bytes, and random damage to valid payloads, in exact-size heap buffers: never a
 * crash or a read past len (ASan), and whatever is accepted is a valid mark. */
static void test_mark_fuzz(void **st)
{
	static const char alphabet[] = "{}[]\":,\\ 0123456789-.eatsorqu\x01\xff";
	struct pl_interval_record r = record();
	struct pl_mqtt_mark in = mark_of("s0123abcd", 42);
	char valid[PL_MQTT_PAYLOAD_MAX];
	int n = pl_mqtt_state_json(valid, sizeof valid, &house, &r, &in);
	long accepted = 0, i, cases = getenv("PL_VALGRIND") ? 30000 : 300000;

	(void)st;
	assert_true(n > 0);
	rng_state = 0xfeedface;
	for (i = 0; i < cases; i++) {
		size_t len = (size_t)(rnd() % 96), k;
		char *b = malloc(len > 0 ? len : 1);
		struct pl_mqtt_mark out;
		int rc;

		assert_non_null(b);
		if (i % 2 == 0) {
			for (k = 0; k < len; k++)
				b[k] = alphabet[rnd() % (sizeof alphabet - 1)];
		} else {
			/* a valid payload, cut to len or not, with a few bytes changed */
			size_t flips = 1 + rnd() % 3;

			if (len > (size_t)n)
				len = (size_t)n;
			if (rnd() % 2)
				len = (size_t)n;
			free(b);
			b = malloc(len > 0 ? len : 1);
			memcpy(b, valid, len);
			while (len > 0 && flips-- > 0)
				b[rnd() % len] = alphabet[rnd() % (sizeof alphabet - 1)];
		}
		memset(&out, 0, sizeof out);
		rc = pl_mqtt_parse_mark(b, len, &out);
		if (rc == 0) {
			accepted++;
			assert_true(store_valid(&out));
		} else {
			assert_int_equal(rc, -PL_EPARSE);
		}
		free(b);
	}
	/* the damage is sometimes harmless (a digit of the energy): some were accepted */
	assert_true(accepted > 0);
	print_message("mark fuzz: %ld of %ld accepted\n", accepted, i);
}

static void test_mark_invalid_on_output(void **st)
{
	struct pl_interval_record r = record();
	struct pl_mqtt_mark bad = mark_of("a.b", 1);
	char buf[PL_MQTT_PAYLOAD_MAX];

	(void)st;
	assert_int_equal(pl_mqtt_state_json(buf, sizeof buf, &house, &r, &bad), -PL_EINVAL);
	assert_string_equal(buf, "");
	bad = mark_of("", 1);
	assert_int_equal(pl_mqtt_interval_json(buf, sizeof buf, &house, &r, &bad), -PL_EINVAL);
	memset(bad.store, 'a', sizeof bad.store); /* no NUL in the array */
	assert_int_equal(pl_mqtt_state_json(buf, sizeof buf, &house, &r, &bad), -PL_EINVAL);
	assert_int_equal(pl_mqtt_state_json(buf, sizeof buf, &house, NULL, NULL), -PL_EINVAL);
	assert_int_equal(pl_mqtt_state_json(buf, sizeof buf, NULL, &r, NULL), -PL_EINVAL);
	{
		struct pl_mqtt_meter m0 = { .name = "x", .imp_per_kwh = 0 };

		assert_int_equal(pl_mqtt_state_json(buf, sizeof buf, &m0, &r, NULL), -PL_EINVAL);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_exact),
		cmocka_unit_test(test_interval_exact),
		cmocka_unit_test(test_diag_exact),
		cmocka_unit_test(test_discovery_exact),
		cmocka_unit_test(test_discovery_refusals),
		cmocka_unit_test(test_kwh_decimals),
		cmocka_unit_test(test_kwh_values),
		cmocka_unit_test(test_watts),
		cmocka_unit_test(test_quality),
		cmocka_unit_test(test_time_known),
		cmocka_unit_test(test_time_out_of_range),
		cmocka_unit_test(test_time_random),
		cmocka_unit_test(test_segment),
		cmocka_unit_test(test_id),
		cmocka_unit_test(test_name_problem),
		cmocka_unit_test(test_topic),
		cmocka_unit_test(test_hostile_names_in_discovery),
		cmocka_unit_test(test_worst_case_sizes),
		cmocka_unit_test(test_every_cap),
		cmocka_unit_test(test_mark_round_trip),
		cmocka_unit_test(test_mark_rejections),
		cmocka_unit_test(test_mark_prefixes),
		cmocka_unit_test(test_mark_fuzz),
		cmocka_unit_test(test_mark_invalid_on_output),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
