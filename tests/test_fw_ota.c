/* SPDX-License-Identifier: MIT */
/*
 * Over-the-air update's decisions (ports/esp32/main/logic/fw_ota.c): a new image is marked
 * valid after its first delivery and not before, rolled back after the verify time with
 * network and no delivery, kept through a network outage up to the long limit, never updated
 * while on probation; the update checks' schedule; the URL and version checks; progress. And
 * ports/esp32/partitions.csv, which no ESP-IDF checks here: aligned, within 4 MB, two equal
 * app slots, and pllog and nvs where the single-app layout had them (README: an update of
 * the layout keeps the outbox only so).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fw_ota.h"
#include "powerlogger/common.h"

#define MIN 60000
#define HOUR (60 * MIN)

static const struct fw_ota_config cfg = {
	.verify_ms = 30 * MIN, .give_up_ms = 24 * HOUR, .check_ms = 24 * HOUR, .has_sink = 1,
};

/* steps of 200 ms, the network task's loop, from *t to until; the first action not NONE */
static enum fw_ota_action run(struct fw_ota *o, int64_t *t, int64_t until, int net_up)
{
	enum fw_ota_action a;

	for (; *t <= until; *t += 200) {
		a = fw_ota_step(o, *t, net_up);
		if (a != FW_OTA_NONE)
			return a;
	}
	return FW_OTA_NONE;
}

static void test_image_state(void **state)
{
	(void)state;
	assert_int_equal(fw_ota_image_state(0, 0), FW_OTA_UNTRACKED);
	assert_int_equal(fw_ota_image_state(1, FW_OTA_IMG_PENDING_VERIFY), FW_OTA_PENDING);
	assert_int_equal(fw_ota_image_state(1, FW_OTA_IMG_VALID), FW_OTA_VALID);
	assert_int_equal(fw_ota_image_state(1, FW_OTA_IMG_UNDEFINED), FW_OTA_UNTRACKED);
	assert_string_equal(fw_ota_image_name(FW_OTA_PENDING), "pending verify");
}

static void test_valid_after_first_delivery(void **state)
{
	struct fw_ota o;
	int64_t t = 1000;

	(void)state;
	fw_ota_init(&o, &cfg, FW_OTA_PENDING, t);
	assert_false(fw_ota_may_update(&o));
	/* network up for 10 minutes, nothing delivered (InfluxDB answering 503): no verdict */
	assert_int_equal(run(&o, &t, 10 * MIN, 1), FW_OTA_NONE);
	assert_int_equal(o.image, FW_OTA_PENDING);
	fw_ota_note_delivery(&o, 0); /* a step that acknowledged nothing */
	assert_int_equal(fw_ota_step(&o, t, 1), FW_OTA_NONE);
	fw_ota_note_delivery(&o, 2);
	assert_int_equal(fw_ota_step(&o, t + 200, 1), FW_OTA_MARK_VALID);
	assert_non_null(strstr(o.why, "delivered 2 record(s)"));
	assert_int_equal(o.image, FW_OTA_VALID);
	assert_true(fw_ota_may_update(&o));
	/* once: never again, and never rolled back, however long nothing is delivered (the
	 * update checks go on) */
	int checks = 0;

	for (t += 400; t < 48 * HOUR; t += 200) {
		enum fw_ota_action a = fw_ota_step(&o, t, (t / HOUR) % 2);

		assert_true(a == FW_OTA_NONE || a == FW_OTA_CHECK);
		checks += a == FW_OTA_CHECK;
	}
	assert_int_equal(checks, 2); /* after 30 s with network, then 24 h later */
}

static void test_rollback_with_network(void **state)
{
	struct fw_ota o;
	int64_t t = 0;

	(void)state;
	fw_ota_init(&o, &cfg, FW_OTA_PENDING, t);
	/* 5 min without network first: not counted */
	assert_int_equal(run(&o, &t, 5 * MIN, 0), FW_OTA_NONE);
	/* then 30 min with it, nothing delivered: rolled back at 35 min, not before */
	assert_int_equal(run(&o, &t, 35 * MIN - 400, 1), FW_OTA_NONE);
	assert_int_equal(run(&o, &t, 36 * MIN, 1), FW_OTA_ROLL_BACK);
	assert_true(t >= 35 * MIN - 200 && t <= 35 * MIN + 200);
	assert_non_null(strstr(o.why, "with network"));
	/* said once; a late delivery does not undo it */
	fw_ota_note_delivery(&o, 1);
	assert_int_equal(fw_ota_step(&o, t + 200, 1), FW_OTA_NONE);
	assert_int_equal(o.image, FW_OTA_PENDING);
}

static void test_flapping_network_counts_only_up_time(void **state)
{
	struct fw_ota o;
	int64_t t = 0;
	int i;

	(void)state;
	fw_ota_init(&o, &cfg, FW_OTA_PENDING, t);
	/* 10 rounds of 2 min up, 10 min down: 20 min with network, no rollback */
	for (i = 0; i < 10; i++) {
		assert_int_equal(run(&o, &t, t + 2 * MIN, 1), FW_OTA_NONE);
		assert_int_equal(run(&o, &t, t + 10 * MIN, 0), FW_OTA_NONE);
	}
	assert_true(o.net_ms >= 20 * MIN - 10 * 400 && o.net_ms <= 20 * MIN + 10 * 400);
	assert_int_equal(run(&o, &t, t + 9 * MIN, 1), FW_OTA_NONE);
	assert_int_equal(run(&o, &t, t + 2 * MIN, 1), FW_OTA_ROLL_BACK);
}

static void test_no_network_keeps_the_image_until_the_long_limit(void **state)
{
	struct fw_ota o;
	int64_t t = 0;

	(void)state;
	fw_ota_init(&o, &cfg, FW_OTA_PENDING, t);
	/* the house's WiFi down for a day less a minute: kept */
	assert_int_equal(run(&o, &t, 24 * HOUR - MIN, 0), FW_OTA_NONE);
	/* at 24 h: an image that never got network is given up */
	assert_int_equal(run(&o, &t, 24 * HOUR + MIN, 0), FW_OTA_ROLL_BACK);
	assert_true(t >= 24 * HOUR && t <= 24 * HOUR + 200);
	assert_non_null(strstr(o.why, "since boot"));

	/* give_up_ms 0: never without network */
	struct fw_ota_config c = cfg;

	c.give_up_ms = 0;
	t = 0;
	fw_ota_init(&o, &c, FW_OTA_PENDING, t);
	for (int h = 0; h < 72; h++)
		assert_int_equal(run(&o, &t, t + HOUR, 0), FW_OTA_NONE);
	/* and network afterwards starts the verify time */
	assert_int_equal(run(&o, &t, t + 29 * MIN, 1), FW_OTA_NONE);
	assert_int_equal(run(&o, &t, t + 2 * MIN, 1), FW_OTA_ROLL_BACK);
}

static void test_no_sink_network_is_the_proof(void **state)
{
	struct fw_ota_config c = cfg;
	struct fw_ota o;
	int64_t t = 0;

	(void)state;
	c.has_sink = 0;
	fw_ota_init(&o, &c, FW_OTA_PENDING, t);
	assert_int_equal(run(&o, &t, 3 * MIN, 0), FW_OTA_NONE);
	assert_int_equal(fw_ota_step(&o, t, 1), FW_OTA_MARK_VALID);
	assert_non_null(strstr(o.why, "no sink"));
}

static void test_acknowledgements_count(void **state)
{
	struct fw_ota o;

	(void)state;
	fw_ota_init(&o, &cfg, FW_OTA_PENDING, 0);
	/* the first sight is the base line, whatever the cursor */
	assert_int_equal(fw_ota_sink_seen(&o, 1, 40, 0), 0);
	assert_int_equal(fw_ota_sink_seen(&o, 1, 40, 0), 0);
	/* MQTT moved by the broker's marks at connection, skipped for room, passed over: no
	 * delivery of this image (each is one of the other moves) */
	assert_int_equal(fw_ota_sink_seen(&o, 1, 45, 5), 0);
	assert_int_equal(fw_ota_sink_seen(&o, 1, 50, 10), 0);
	assert_int_equal(fw_ota_sink_seen(&o, 1, 51, 11), 0);
	/* InfluxDB: a 4xx quarantines the record, the cursor moves: the server answered, but
	 * nothing was delivered (an image writing bad line protocol must not be kept) */
	assert_int_equal(fw_ota_sink_seen(&o, 0, 7, 0), 0);
	assert_int_equal(fw_ota_sink_seen(&o, 0, 8, 1), 0);
	assert_int_equal(fw_ota_sink_seen(&o, 2, 9, 0), 0); /* no such sink */
	assert_int_equal(fw_ota_step(&o, 1000, 1), FW_OTA_NONE);
	/* MQTT's cursor moved by itself: PUBACKs */
	assert_int_equal(fw_ota_sink_seen(&o, 1, 53, 11), 1);
	assert_int_equal(o.deliveries, 1);
	assert_int_equal(fw_ota_step(&o, 1200, 1), FW_OTA_MARK_VALID);

	/* the same for InfluxDB's 2xx */
	fw_ota_init(&o, &cfg, FW_OTA_PENDING, 0);
	assert_int_equal(fw_ota_sink_seen(&o, 0, 7, 3), 0);
	assert_int_equal(fw_ota_step(&o, 200, 1), FW_OTA_NONE);
	assert_int_equal(fw_ota_sink_seen(&o, 0, 9, 3), 1);
	assert_int_equal(fw_ota_step(&o, 400, 1), FW_OTA_MARK_VALID);
}

static void test_restart_timing(void **state)
{
	struct fw_ota_restart r = {0};

	(void)state;
	assert_int_equal(fw_ota_restart_due(&r, 1000, 0, 0, 20000), 0); /* not asked */
	fw_ota_restart_ask(&r, 1000, 17);
	/* no record stored since: wait for the interval's */
	assert_int_equal(fw_ota_restart_due(&r, 1200, 17, 0, 20000), 0);
	assert_int_equal(fw_ota_restart_due(&r, 15000, 17, 0, 20000), 0);
	/* a record in the ring, not yet in the outbox: not yet */
	assert_int_equal(fw_ota_restart_due(&r, 15200, 17, 1, 20000), 0);
	/* popped into the outbox, ring empty: now */
	assert_int_equal(fw_ota_restart_due(&r, 15400, 18, 0, 20000), 1);
	assert_int_equal(fw_ota_restart_due(&r, 15400, 18, 1, 20000), 0);
	/* no record at all: after the interval + 5 s */
	assert_int_equal(fw_ota_restart_due(&r, 1000 + 24999, 17, 0, 20000), 0);
	assert_int_equal(fw_ota_restart_due(&r, 1000 + 25000, 17, 0, 20000), 1);
	/* a ring that never empties: twice that */
	assert_int_equal(fw_ota_restart_due(&r, 1000 + 49999, 18, 3, 20000), 0);
	assert_int_equal(fw_ota_restart_due(&r, 1000 + 50000, 18, 3, 20000), 1);
	/* a day-long interval waits at most 15 minutes */
	fw_ota_restart_ask(&r, 0, 5);
	assert_int_equal(fw_ota_restart_due(&r, FW_OTA_RESTART_WAIT_MAX_MS - 1, 5, 0,
					    86400000u), 0);
	assert_int_equal(fw_ota_restart_due(&r, FW_OTA_RESTART_WAIT_MAX_MS, 5, 0, 86400000u), 1);
}

static void test_checks_schedule(void **state)
{
	struct fw_ota o;
	int64_t t = 0;

	(void)state;
	/* no check on probation, whatever the time */
	fw_ota_init(&o, &cfg, FW_OTA_PENDING, t);
	assert_int_equal(run(&o, &t, 20 * MIN, 1), FW_OTA_NONE);

	/* a valid image: the first check 30 s after the network came up, then every 24 h */
	t = 0;
	fw_ota_init(&o, &cfg, FW_OTA_VALID, t);
	assert_int_equal(run(&o, &t, 10 * MIN, 0), FW_OTA_NONE);
	assert_int_equal(run(&o, &t, 10 * MIN + FW_OTA_FIRST_CHECK_MS - 200, 1), FW_OTA_NONE);
	assert_int_equal(run(&o, &t, 11 * MIN, 1), FW_OTA_CHECK);
	assert_true(o.first_net_ms == 10 * MIN + 200);
	assert_true(t == o.first_net_ms + FW_OTA_FIRST_CHECK_MS);
	t += 200;
	assert_int_equal(run(&o, &t, 24 * HOUR, 1), FW_OTA_NONE);
	/* due while the network is down: when it is back */
	assert_int_equal(run(&o, &t, 25 * HOUR, 0), FW_OTA_NONE);
	assert_int_equal(fw_ota_step(&o, t, 1), FW_OTA_CHECK);

	/* check_ms 0: the one at boot only */
	struct fw_ota_config c = cfg;

	c.check_ms = 0;
	t = 0;
	fw_ota_init(&o, &c, FW_OTA_UNTRACKED, t);
	assert_true(fw_ota_may_update(&o));
	assert_int_equal(run(&o, &t, MIN, 1), FW_OTA_CHECK);
	t += 200;
	assert_int_equal(run(&o, &t, 100 * HOUR, 1), FW_OTA_NONE);

	/* validated after an update: its checks start then */
	t = 0;
	fw_ota_init(&o, &cfg, FW_OTA_PENDING, t);
	assert_int_equal(run(&o, &t, 5 * MIN, 1), FW_OTA_NONE);
	fw_ota_note_delivery(&o, 1);
	assert_int_equal(fw_ota_step(&o, t, 1), FW_OTA_MARK_VALID);
	assert_int_equal(fw_ota_step(&o, t + 200, 1), FW_OTA_CHECK);
}

static void test_url(void **state)
{
	char why[160];

	(void)state;
	assert_int_equal(fw_ota_check_url("https://example.org/fw/powerlogger.bin", 0, why,
					  sizeof(why)), 0);
	assert_int_equal(fw_ota_check_url("HTTPS://example.org:8443/powerlogger.bin?x=1", 0, why,
					  sizeof(why)), 0);
	assert_int_equal(fw_ota_check_url("http://192.0.2.1/powerlogger.bin", 0, why,
					  sizeof(why)), -PL_EINVAL);
	assert_non_null(strstr(why, "http:// is refused"));
	assert_int_equal(fw_ota_check_url("http://192.0.2.1/powerlogger.bin", 1, why,
					  sizeof(why)), 0);
	assert_int_equal(fw_ota_check_url("", 0, why, sizeof(why)), -PL_EINVAL);
	assert_int_equal(fw_ota_check_url(NULL, 0, why, sizeof(why)), -PL_EINVAL);
	assert_int_equal(fw_ota_check_url("ftp://example.org/a.bin", 1, why, sizeof(why)),
			 -PL_EINVAL);
	assert_int_equal(fw_ota_check_url("https:///a.bin", 0, why, sizeof(why)), -PL_EINVAL);
	assert_int_equal(fw_ota_check_url("https://example.org", 0, why, sizeof(why)),
			 -PL_EINVAL);
	assert_int_equal(fw_ota_check_url("https://example.org/", 0, why, sizeof(why)),
			 -PL_EINVAL);
	assert_int_equal(fw_ota_check_url("https://exa mple.org/a.bin", 0, why, sizeof(why)),
			 -PL_EINVAL);
	/* credentials: refused, and the reason does not repeat them */
	assert_int_equal(fw_ota_check_url("https://me:s3cret@example.org/a.bin", 0, why,
					  sizeof(why)), -PL_EINVAL);
	assert_null(strstr(why, "s3cret"));
	/* an '@' in the path is no credential */
	assert_int_equal(fw_ota_check_url("https://example.org/a@b.bin", 0, why, sizeof(why)), 0);

	char longurl[FW_OTA_URL_MAX + 1];

	memset(longurl, 'a', sizeof(longurl) - 1);
	longurl[sizeof(longurl) - 1] = '\0';
	memcpy(longurl, "https://x/", 10);
	assert_int_equal(fw_ota_check_url(longurl, 0, why, sizeof(why)), -PL_EINVAL);
	longurl[FW_OTA_URL_MAX - 1] = '\0';
	assert_int_equal(fw_ota_check_url(longurl, 0, why, sizeof(why)), 0);
}

static void test_version_cmp(void **state)
{
	(void)state;
	assert_int_equal(fw_ota_version_cmp("0.1.0", "0.1.0"), 0);
	assert_int_equal(fw_ota_version_cmp("v0.2.0", "0.1.9"), 1);
	assert_int_equal(fw_ota_version_cmp("0.1.10", "0.1.9"), 1);
	assert_int_equal(fw_ota_version_cmp("1", "1.0.1"), -1);
	assert_int_equal(fw_ota_version_cmp("1.0", "1.0.0"), 0);
	assert_int_equal(fw_ota_version_cmp("0.1.0-12-g5ea7d45", "0.1.0"), 1);
	assert_int_equal(fw_ota_version_cmp("0.1.0-12-g5ea7d45", "0.1.0-13-gabcdef0"), -1);
	assert_int_equal(fw_ota_version_cmp("0.1.1", "0.1.0-99-gabcdef0"), 1);
	/* the same distance from the tag, other commit or a dirty tree: different, no order */
	assert_int_equal(fw_ota_version_cmp("0.1.0-12-g5ea7d45", "0.1.0-12-gabcdef0"), -2);
	assert_int_equal(fw_ota_version_cmp("0.1.0-12-g5ea7d45-dirty", "0.1.0-12-g5ea7d45"), -2);
	/* not of the form: only equality */
	assert_int_equal(fw_ota_version_cmp("5ea7d45", "abcdef0"), -2);
	assert_int_equal(fw_ota_version_cmp("5ea7d45", "5ea7d45"), 0);
	assert_int_equal(fw_ota_version_cmp("1.2.3.4.5", "1.2.3"), -2);
	assert_int_equal(fw_ota_version_cmp("1..2", "1.2"), -2);
	assert_int_equal(fw_ota_version_cmp("1.2-rc1", "1.2"), -2);
}

static void test_image_checks(void **state)
{
	char why[160];
	const char *p = "powerlogger";

	(void)state;
	assert_int_equal(fw_ota_check_image(p, "0.1.0", p, "0.2.0", NULL, 0, why, sizeof(why)),
			 FW_OTA_GO);
	assert_int_equal(fw_ota_check_image(p, "0.1.0", p, "0.1.0", NULL, 0, why, sizeof(why)),
			 FW_OTA_SAME);
	assert_non_null(strstr(why, "running already"));
	assert_int_equal(fw_ota_check_image(p, "0.1.0", p, "0.1.0", NULL, FW_OTA_FORCE, why,
					    sizeof(why)), FW_OTA_GO);
	assert_non_null(strstr(why, "forced"));
	assert_int_equal(fw_ota_check_image(p, "0.2.0", p, "0.1.0", NULL, 0, why, sizeof(why)),
			 FW_OTA_OLDER);
	assert_int_equal(fw_ota_check_image(p, "0.2.0", p, "0.1.0", NULL, FW_OTA_FORCE, why,
					    sizeof(why)), FW_OTA_GO);
	/* the version rolled back from: only forced */
	assert_int_equal(fw_ota_check_image(p, "0.1.0", p, "0.2.0", "0.2.0", 0, why, sizeof(why)),
			 FW_OTA_FAILED_BEFORE);
	assert_int_equal(fw_ota_check_image(p, "0.1.0", p, "0.2.0", "0.2.0", FW_OTA_FORCE, why,
					    sizeof(why)), FW_OTA_GO);
	assert_int_equal(fw_ota_check_image(p, "0.1.0", p, "0.2.1", "0.2.0", 0, why, sizeof(why)),
			 FW_OTA_GO);
	assert_int_equal(fw_ota_check_image(p, "0.1.0", p, "0.2.1", "", 0, why, sizeof(why)),
			 FW_OTA_GO);
	/* another project, forced or not */
	assert_int_equal(fw_ota_check_image(p, "0.1.0", "blink", "9.0", NULL, FW_OTA_FORCE, why,
					    sizeof(why)), FW_OTA_FOREIGN);
	/* unordered versions: a different one goes, the same one does not */
	assert_int_equal(fw_ota_check_image(p, "5ea7d45", p, "abcdef0", NULL, 0, why,
					    sizeof(why)), FW_OTA_GO);
	assert_non_null(strstr(why, "not comparable"));
	assert_int_equal(fw_ota_check_image(p, "5ea7d45", p, "5ea7d45", NULL, 0, why,
					    sizeof(why)), FW_OTA_SAME);
	/* the periodic check writes only a version known to be newer */
	assert_int_equal(fw_ota_check_image(p, "5ea7d45", p, "abcdef0", NULL, FW_OTA_AUTO, why,
					    sizeof(why)), FW_OTA_UNORDERED);
	assert_int_equal(fw_ota_check_image(p, "0.1.0-3-g5ea7d45", p, "0.1.0-4-gabcdef0", NULL,
					    FW_OTA_AUTO, why, sizeof(why)), FW_OTA_GO);
	assert_int_equal(fw_ota_check_image(p, "0.2.0", p, "0.1.0", NULL, FW_OTA_AUTO, why,
					    sizeof(why)), FW_OTA_OLDER);
	/* a description without a terminated version (32 bytes, no NUL) */
	char v[FW_OTA_VERSION_MAX];

	memset(v, '1', sizeof(v));
	assert_int_equal(fw_ota_check_image(p, "0.1.0", p, v, NULL, 0, why, sizeof(why)),
			 FW_OTA_BAD_DESC);
	assert_int_equal(fw_ota_check_image(p, "0.1.0", p, "", NULL, 0, why, sizeof(why)),
			 FW_OTA_BAD_DESC);
}

static void test_progress(void **state)
{
	struct fw_ota_progress p;
	int reported[11] = {0}, n = 0, last = -1;
	int64_t done;

	(void)state;
	fw_ota_progress_init(&p, 1234567);
	for (done = 0; done <= 1234567; done += 1024) {
		if (fw_ota_progress(&p, done)) {
			assert_true(p.pct > last && p.pct % 10 == 0);
			reported[p.pct / 10]++;
			last = p.pct;
			n++;
		}
	}
	assert_int_equal(fw_ota_progress(&p, 1234567), 1); /* the end, not a multiple of 1024 */
	assert_int_equal(p.pct, 100);
	assert_int_equal(fw_ota_progress(&p, 1234567), 0); /* once */
	for (int i = 1; i <= 9; i++)
		assert_int_equal(reported[i], 1);
	assert_int_equal(n, 9);
	/* big jumps report the step reached, then nothing until the next */
	fw_ota_progress_init(&p, 1000);
	assert_int_equal(fw_ota_progress(&p, 99), 0);
	assert_int_equal(fw_ota_progress(&p, 100), 1);
	assert_int_equal(p.pct, 10);
	assert_int_equal(fw_ota_progress(&p, 799), 1);
	assert_int_equal(p.pct, 70);
	assert_int_equal(fw_ota_progress(&p, 799), 0);
	assert_int_equal(fw_ota_progress(&p, 5000), 1); /* more than announced: 100 */
	assert_int_equal(p.pct, 100);
	/* unknown size (chunked): every 128 KB */
	fw_ota_progress_init(&p, -1);
	assert_int_equal(fw_ota_progress(&p, 100000), 0);
	assert_int_equal(fw_ota_progress(&p, 131072), 1);
	assert_int_equal(p.pct, -1);
	assert_int_equal(fw_ota_progress(&p, 200000), 0);
	assert_int_equal(fw_ota_progress(&p, 600000), 1);
	assert_int_equal(fw_ota_progress(&p, 655359), 0);
	assert_int_equal(fw_ota_progress(&p, 655360), 1);
}

struct part {
	char name[16], type[8], sub[8];
	unsigned long off, size;
};

static size_t read_partitions(struct part *p, size_t cap)
{
	char line[256];
	size_t n = 0;
	FILE *f = fopen(PL_SOURCE_DIR "/ports/esp32/partitions.csv", "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		char off[16], size[16];

		if (line[0] == '#' || line[0] == '\n')
			continue;
		assert_true(n < cap);
		assert_int_equal(sscanf(line, " %15[^, ] , %7[^, ] , %7[^, ] , %15[^, ] , "
					"%15[^, \n]", p[n].name, p[n].type, p[n].sub, off, size),
				 5);
		p[n].off = strtoul(off, NULL, 0);
		p[n].size = strtoul(size, NULL, 0);
		n++;
	}
	fclose(f);
	return n;
}

static const struct part *find(const struct part *p, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(p[i].name, name) == 0)
			return &p[i];
	fail_msg("no partition \"%s\" in partitions.csv", name);
	return NULL;
}

static void test_partition_table(void **state)
{
	struct part p[16];
	size_t n = read_partitions(p, 16), apps = 0;
	const struct part *a, *b, *log, *nvs, *ota;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		/* in order, no overlap, after the partition table (0x8000 + 0x1000), within 4 MB */
		assert_true(p[i].off >= (i == 0 ? 0x9000ul : p[i - 1].off + p[i - 1].size));
		assert_true(p[i].off + p[i].size <= 0x400000ul);
		assert_int_equal(p[i].off % (strcmp(p[i].type, "app") == 0 ? 0x10000 : 0x1000), 0);
		assert_int_equal(p[i].size % 0x1000, 0);
		apps += strcmp(p[i].type, "app") == 0;
	}
	a = find(p, n, "ota_0");
	b = find(p, n, "ota_1");
	assert_int_equal(apps, 2); /* no factory: the bootloader boots the OTA slots */
	assert_string_equal(a->sub, "ota_0");
	assert_string_equal(b->sub, "ota_1");
	assert_int_equal(a->off, 0x10000); /* where factory was: idf.py flash puts the app there */
	assert_int_equal(a->size, b->size);
	assert_true(a->size >= 1536 * 1024); /* the app with WiFi, TLS, MQTT, console: README */
	ota = find(p, n, "otadata");
	assert_string_equal(ota->type, "data");
	assert_string_equal(ota->sub, "ota");
	assert_int_equal(ota->size, 0x2000);
	log = find(p, n, "pllog");
	assert_string_equal(log->sub, "0x40");
	assert_int_equal(log->off, 0x210000);
	assert_int_equal(log->size, 256 * 1024);
	nvs = find(p, n, "nvs");
	assert_int_equal(nvs->off, 0x9000);
	assert_int_equal(nvs->size, 0x6000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_image_state),
		cmocka_unit_test(test_valid_after_first_delivery),
		cmocka_unit_test(test_rollback_with_network),
		cmocka_unit_test(test_flapping_network_counts_only_up_time),
		cmocka_unit_test(test_no_network_keeps_the_image_until_the_long_limit),
		cmocka_unit_test(test_no_sink_network_is_the_proof),
		cmocka_unit_test(test_acknowledgements_count),
		cmocka_unit_test(test_restart_timing),
		cmocka_unit_test(test_checks_schedule),
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_version_cmp),
		cmocka_unit_test(test_image_checks),
		cmocka_unit_test(test_progress),
		cmocka_unit_test(test_partition_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
