/* SPDX-License-Identifier: MIT */
/*
 * The MQTT sink (src/linux/sinks/mqtt.c) through its seam operations, against a real broker:
 * Debian's mosquitto, started here on a free loopback port, and a libmosquitto subscriber of
 * the test's own. No fakes. What is checked:
 *  - a request publishes, per record in order, the interval (not retained) and the state
 *    (retained), both with the mark {store, seq}, and ends OK once every PUBACK is in;
 *  - a new connection reads the retained states back first and does not publish again what
 *    they mark (same store id), but does publish a record of another store;
 *  - a broker that is not there ends the request as a refused connection, fast;
 *  - while idle the sink answers Home Assistant's birth message with discovery again;
 *  - a clean close leaves "offline" retained on the availability topic.
 * Skipped when /usr/sbin/mosquitto is missing (scripts/install-deps.sh installs it).
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <mosquitto.h>

#include "clock.h"
#include "sinks/mqtt.h"
#include "powerlogger/mqttmsg.h"

#define BROKER "/usr/sbin/mosquitto"
#define MAXMSG 256

static pid_t broker_pid;
static int port;
static char dir[64];

/* What the test's subscriber received, in order. */
static struct {
	pthread_mutex_t lock;
	size_t n;
	struct {
		char topic[128];
		char payload[PL_MQTT_DISCOVERY_MAX];
		int retain;
	} m[MAXMSG];
} got = { .lock = PTHREAD_MUTEX_INITIALIZER };

static struct mosquitto *sub;

static void on_msg(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
	(void)m;
	(void)obj;
	pthread_mutex_lock(&got.lock);
	if (got.n < MAXMSG) {
		snprintf(got.m[got.n].topic, sizeof(got.m[0].topic), "%s", msg->topic);
		snprintf(got.m[got.n].payload, sizeof(got.m[0].payload), "%.*s", msg->payloadlen,
			 (const char *)msg->payload);
		got.m[got.n].retain = msg->retain;
		got.n++;
	}
	pthread_mutex_unlock(&got.lock);
}

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), p;

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	p = ntohs(a.sin_port);
	close(fd);
	return p;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static int setup(void **state)
{
	char conf[128];
	FILE *f;

	(void)state;
	if (access(BROKER, X_OK) != 0)
		return 0; /* each test skips */
	snprintf(dir, sizeof(dir), "/tmp/pl_test_mqtt.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(conf, sizeof(conf), "%s/mosquitto.conf", dir);
	port = free_port();
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "listener %d 127.0.0.1\nallow_anonymous true\n", port);
	fclose(f);
	broker_pid = fork();
	assert_true(broker_pid >= 0);
	if (broker_pid == 0) {
		if (freopen("/dev/null", "w", stderr) == NULL || freopen("/dev/null", "w", stdout) == NULL)
			_exit(127);
		execl(BROKER, BROKER, "-c", conf, (char *)NULL);
		_exit(127);
	}
	mosquitto_lib_init();
	sub = mosquitto_new("pl-test-sub", true, NULL);
	assert_non_null(sub);
	mosquitto_message_callback_set(sub, on_msg);
	for (int i = 0; mosquitto_connect(sub, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS; i++) {
		assert_true(i < 100); /* the broker is up within 5 s */
		sleep_ms(50);
	}
	assert_int_equal(mosquitto_subscribe(sub, NULL, "#", 1), MOSQ_ERR_SUCCESS);
	assert_int_equal(mosquitto_loop_start(sub), MOSQ_ERR_SUCCESS);
	sleep_ms(200);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	if (broker_pid <= 0)
		return 0;
	mosquitto_disconnect(sub);
	mosquitto_loop_stop(sub, false);
	mosquitto_destroy(sub);
	kill(broker_pid, SIGTERM);
	waitpid(broker_pid, NULL, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 0;
	return 0;
}

static void need_broker(void)
{
	if (broker_pid <= 0)
		skip();
}

/* Messages on topic so far (payload containing what, if not NULL). */
static size_t count(const char *topic, const char *what)
{
	size_t n = 0;

	pthread_mutex_lock(&got.lock);
	for (size_t i = 0; i < got.n; i++)
		if (strcmp(got.m[i].topic, topic) == 0 && (what == NULL ||
							  strstr(got.m[i].payload, what)))
			n++;
	pthread_mutex_unlock(&got.lock);
	return n;
}

/* Waits up to 5 s for count(topic, what) to reach n. */
static size_t wait_count(const char *topic, const char *what, size_t n)
{
	size_t c = 0;

	for (int i = 0; i < 100 && (c = count(topic, what)) < n; i++)
		sleep_ms(50);
	return c;
}

static const struct pl_mqtt_sink_meter meters[] = { { "house", 1000 } };

static void *open_sink(const char *store, const char *prefix, int p)
{
	struct pl_mqtt_config c = { .name = "t", .host = "127.0.0.1", .port = (uint16_t)p,
				    .client_id = "pl-test", .topic_prefix = prefix,
				    .discovery_prefix = "homeassistant", .qos = 1,
				    .keepalive_s = 30, .store_id = store, .sw_version = "test",
				    .meters = meters, .nmeters = 1, .sync_timeout_ms = 3000 };
	void *s = NULL;

	assert_int_equal(pl_mqtt_sink_ops.open(&c, &s), 0);
	assert_non_null(s);
	return s;
}

static struct pl_interval_record rec_n(int64_t i)
{
	return (struct pl_interval_record){ .start_us = (1796650000 + 20 * i) * PL_US_PER_S,
					    .length_s = 20, .pulses = 5, .energy_uwh = 5000000,
					    .avg_mw = 900000, .register_uwh = 5000000 * i };
}

/* Sends records seq from..to through the sink, record seq q being the q + shift-th interval;
 * the result of the request. */
static struct pl_sink_result send_shifted(void *s, int64_t from, int64_t to, int64_t shift)
{
	static char body[1 << 16];
	struct pl_sink_result res;
	size_t len = 0;
	int rc;

	for (int64_t q = from; q <= to; q++) {
		struct pl_interval_record r = rec_n(q + shift);

		assert_int_equal(pl_mqtt_sink_ops.encode(s, body, sizeof(body), &len, "house", q, &r),
				 0);
	}
	assert_int_equal(pl_mqtt_sink_ops.start(s, body, len), 0);
	memset(&res, 0, sizeof(res));
	for (int i = 0; (rc = pl_mqtt_sink_ops.poll(s, 200, &res)) == 0; i++)
		assert_true(i < 50); /* over within 10 s */
	assert_int_equal(rc, 1);
	return res;
}

static struct pl_sink_result send_range(void *s, int64_t from, int64_t to)
{
	return send_shifted(s, from, to, 0);
}

static void test_publish_and_marks(void **state)
{
	struct pl_sink_result res;
	char want[64];
	void *s;

	(void)state;
	need_broker();
	s = open_sink("aaaa", "t1", port);
	res = send_range(s, 1, 3);
	assert_int_equal(res.resp.transport, PL_XPORT_NONE);
	assert_int_equal(res.resp.status, 204);
	assert_int_equal(wait_count("t1/house/interval", NULL, 3), 3);
	assert_int_equal(wait_count("t1/house/state", NULL, 3), 3);
	assert_int_equal(count("t1/availability", "online"), 1);
	assert_true(count("homeassistant/device/pl-test_house/config", NULL) >= 1);
	/* in order, interval before its state, each with the mark */
	pthread_mutex_lock(&got.lock);
	for (size_t i = 0, k = 1; i < got.n; i++) {
		if (strcmp(got.m[i].topic, "t1/house/interval") != 0)
			continue;
		snprintf(want, sizeof(want), "\"store\":\"aaaa\",\"seq\":%zu}", k);
		assert_non_null(strstr(got.m[i].payload, want));
		assert_int_equal(got.m[i].retain, 0);
		assert_true(i + 1 < got.n);
		assert_string_equal(got.m[i + 1].topic, "t1/house/state");
		assert_non_null(strstr(got.m[i + 1].payload, want));
		k++;
	}
	pthread_mutex_unlock(&got.lock);
	pl_mqtt_sink_ops.close(s);
	assert_int_equal(wait_count("t1/availability", "offline", 1), 1);

	/* a new connection: 2 and 3 are marked in the retained state, 4 and 5 are new */
	s = open_sink("aaaa", "t1", port);
	res = send_range(s, 2, 5);
	assert_int_equal(res.resp.status, 204);
	assert_int_equal(wait_count("t1/house/interval", NULL, 5), 5);
	sleep_ms(300);
	assert_int_equal(count("t1/house/interval", "\"seq\":2}"), 1);
	assert_int_equal(count("t1/house/interval", "\"seq\":3}"), 1);
	assert_int_equal(count("t1/house/interval", "\"seq\":4}"), 1);
	assert_int_equal(count("t1/house/interval", "\"seq\":5}"), 1);
	pl_mqtt_sink_ops.close(s);

	/* the same store restored from a backup taken at seq 3: its new records get the numbers
	 * 4 and 5 again, for later intervals than the marked one, and are published */
	s = open_sink("aaaa", "t1", port);
	res = send_shifted(s, 4, 5, 10);
	assert_int_equal(res.resp.status, 204);
	assert_int_equal(wait_count("t1/house/interval", NULL, 7), 7);
	assert_int_equal(count("t1/house/interval", "\"seq\":4}"), 2);
	pl_mqtt_sink_ops.close(s);

	/* another store (a new database): its seq 1 and 2 are not the broker's */
	s = open_sink("bbbb", "t1", port);
	res = send_range(s, 1, 2);
	assert_int_equal(res.resp.status, 204);
	assert_int_equal(wait_count("t1/house/interval", "\"store\":\"bbbb\"", 2), 2);
	pl_mqtt_sink_ops.close(s);
}

static void test_broker_down(void **state)
{
	struct pl_sink_result res;
	int64_t t0;
	void *s;

	(void)state;
	need_broker();
	s = open_sink("aaaa", "t2", free_port()); /* nobody listens there */
	t0 = pl_clock_mono_us();
	res = send_range(s, 1, 1);
	assert_int_equal(res.resp.transport, PL_XPORT_REFUSED);
	assert_non_null(strstr(res.message, "Connection refused"));
	assert_true(pl_clock_mono_us() - t0 < 2 * PL_US_PER_S);
	pl_mqtt_sink_ops.close(s);
	assert_int_equal(count("t2/house/interval", NULL), 0);
}

static void test_rediscovery_while_idle(void **state)
{
	const char *topic = "homeassistant/device/pl-test_house/config";
	size_t before;
	void *s;

	(void)state;
	need_broker();
	s = open_sink("cccc", "t3", port);
	for (int i = 0; i < 50 && count("t3/availability", "online") == 0; i++)
		pl_mqtt_sink_ops.idle(s, 100); /* connects, syncs, publishes discovery */
	assert_int_equal(count("t3/availability", "online"), 1);
	before = wait_count(topic, NULL, 1);
	assert_true(before >= 1);
	assert_int_equal(mosquitto_publish(sub, NULL, "homeassistant/status", 6, "online", 1,
					   false), MOSQ_ERR_SUCCESS);
	for (int i = 0; i < 50 && count(topic, NULL) == before; i++)
		pl_mqtt_sink_ops.idle(s, 100);
	assert_int_equal(count(topic, NULL), before + 1);
	pl_mqtt_sink_ops.close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_publish_and_marks),
		cmocka_unit_test(test_broker_down),
		cmocka_unit_test(test_rediscovery_while_idle),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
