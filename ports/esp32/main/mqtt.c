/* SPDX-License-Identifier: MIT */
/*
 * The MQTT sink's device side: esp-mqtt behind fw_mqtt's client seam (logic/fw_mqtt.h, where
 * the state machine and the exactly-once scheme live and are tested on the host).
 *
 * Tasks: esp-mqtt runs its own task; its event handler only copies each event into a queue,
 * and the network task takes them from there into fw_mqtt, which it alone touches. The
 * network task also waits on that queue instead of sleeping, so PUBACKs move the backlog on
 * at network speed.
 *
 * Blocking and the task watchdog (the network task is watched): esp-mqtt holds its API lock
 * while its task connects, reads and writes, and every API call takes that lock. So:
 *  - messages are queued with esp_mqtt_client_enqueue(), not esp_mqtt_client_publish():
 *    publish writes to the socket in the caller's task (a stalled link blocks it for the
 *    whole network timeout per message, two messages a record); enqueue only copies into
 *    esp-mqtt's outbox and its own task sends. It still waits for the lock, which esp-mqtt's
 *    task holds for one read or write at most: network.timeout_ms is a quarter of the
 *    watchdog's period, and the watchdog is fed after every call into esp-mqtt;
 *  - calls into esp-mqtt are made only between CONNECTED and DISCONNECTED (fw_mqtt does so),
 *    never while esp-mqtt's task sits in its connect - except stop, which waits for it;
 *  - the broker's name is looked up before a client is started (lwIP's resolver, polled in
 *    short sleeps like the InfluxDB host's), so esp-mqtt's connect finds it in lwIP's cache
 *    and is bounded by network.timeout_ms instead of 7 s per DNS server that does not answer.
 * esp-mqtt's own resends are off: auto-reconnect is off (every connection is a fresh client,
 * esp_mqtt_client_destroy() throws the old one's outbox away, see fw_mqtt.h), and the
 * in-session retransmit timeout is longer than fw_mqtt's PUBACK timeout, so a slow broker
 * never gets a QoS 1 message twice on the same connection (mosquitto would forward both).
 *
 * The session is persistent (session.disable_clean_session): the broker keeps this client
 * id's subscriptions and queues what comes on them while no connection is there - the echoes
 * of our own interval messages (P/M/interval, subscribed by fw_mqtt), which close the window
 * between an interval and its state (fw_mqtt.h). A fresh client in the same session has no
 * messages of its own to send again; what the broker sends again is only what it forwarded
 * and we never acknowledged. An echo travels through the queue as its mark only
 * (fw_mqtt_echo_mark: an interval message can be longer than an item's data).
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esp_app_desc.h"
#include "esp_crt_bundle.h"
#include "esp_idf_version.h"
#include "esp_log.h"
#include "esp_mac.h"
#include "esp_task_wdt.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/queue.h"
#include "freertos/task.h"
#include "lwip/dns.h"
#include "lwip/tcpip.h"
#include "mqtt_client.h"
#include "sdkconfig.h"

#include "fw_console_port.h"
#include "fw_mqtt.h"
#include "fw_port.h"

#if CONFIG_PL_MQTT_ENABLE

static const char *TAG = "mqtt";

#ifdef CONFIG_ESP_TASK_WDT_TIMEOUT_S
#define MQTT_NET_TIMEOUT_MS (CONFIG_ESP_TASK_WDT_TIMEOUT_S * 1000 / 4)
#else
#define MQTT_NET_TIMEOUT_MS 2500
#endif
#define MQTT_ACK_TIMEOUT_MS 20000       /* fw_mqtt: token back, each PUBACK */
#define MQTT_RETRANSMIT_MS 60000        /* > MQTT_ACK_TIMEOUT_MS: never within a connection */
#define MQTT_OUTBOX_LIMIT (16 * 1024)   /* the window's records and a discovery payload */
#define MQTT_IN_BUFFER 1024             /* we read states, our intervals, the token, HA's */
/* Events in the queue at most. A record makes four (its interval's echo, its state's, two
 * PUBACKs), so a full window (FW_MQTT_WINDOW records in flight) makes four times that at once,
 * and a reconnection brings up to two per record of the window (the echoes the session kept)
 * before the token; eight more for the connection's own events. Room for all of it: 40 items
 * of 332 B, 13 KB of heap. Should one still find no room, it costs at most a record published
 * twice or a sync timed out (logged with the count), never a record (fw_mqtt.h, what remains
 * (3)). */
#define MQTT_QUEUE_DEPTH (4 * FW_MQTT_WINDOW + 8)

_Static_assert(MQTT_NET_TIMEOUT_MS >= 500, "the task watchdog's period is too short for MQTT");
_Static_assert(MQTT_RETRANSMIT_MS > MQTT_ACK_TIMEOUT_MS, "esp-mqtt must not resend in session");
_Static_assert(FW_MQTT_ECHO_MAX <= FW_MQTT_DATA_MAX, "an echo's mark must fit an item");

/* One event, copied out of esp-mqtt's task. DATA comes only on the topics we subscribe to;
 * the handler keeps which one (fw_mqtt_topic_kind: it reads only what fw_mqtt_init wrote,
 * before any client started), not its bytes. DATA larger than FW_MQTT_DATA_MAX is not ours
 * (ours are at most 286 bytes: the state, the token, "online") and is dropped in the handler
 * (a state we cannot read is a mark not seen: records published again, never lost); an
 * interval echo (up to 351 B) is carried as its mark, FW_MQTT_ECHO_MAX bytes at most. */
struct item {
	uint8_t type;                   /* enum fw_mqtt_ev_type */
	uint8_t topic;                  /* DATA: enum fw_mqtt_topic */
	uint16_t data_len;
	uint32_t conn;
	int32_t msg_id;
	char data[FW_MQTT_DATA_MAX];
};

static QueueHandle_t queue;             /* MQTT_QUEUE_DEPTH items: heap (fw-footprint.sh) */
static atomic_uint dropped;             /* events the full queue refused (esp-mqtt's task) */
static esp_mqtt_client_handle_t client;
static struct fw_mqtt mq;               /* ~2.4 KB: its payloads are built in net.c's buffer */
static char client_id[64];

/* The broker's name lookup (see the header comment). */
enum { DNS_IDLE = 0, DNS_PENDING, DNS_DONE, DNS_FAILED };
static atomic_int dns_state;
static char dns_host[128];
static ip_addr_t dns_addr;
static uint32_t start_conn;             /* a start waiting for the lookup; 0: none */
static const char *will_topic;          /* fw_mqtt's availability topic (lives in mq) */

static void on_mqtt(void *arg, esp_event_base_t base, int32_t id, void *data)
{
	esp_mqtt_event_handle_t e = data;
	static struct item it;          /* esp-mqtt's task only: off its stack */

	memset(&it, 0, offsetof(struct item, data));
	it.conn = (uint32_t)(uintptr_t)arg;
	switch ((esp_mqtt_event_id_t)id) {
	case MQTT_EVENT_CONNECTED:
		it.type = FW_MQTT_EV_CONNECTED;
		break;
	case MQTT_EVENT_DISCONNECTED:
		it.type = FW_MQTT_EV_DISCONNECTED;
		break;
	case MQTT_EVENT_PUBLISHED:
		it.type = FW_MQTT_EV_PUBLISHED;
		it.msg_id = e->msg_id;
		break;
	case MQTT_EVENT_DATA: {
		int n;

		if (e->current_data_offset != 0 || e->data_len != e->total_data_len ||
		    e->topic_len < 0 || e->data_len < 0)
			return;
		it.type = FW_MQTT_EV_DATA;
		it.topic = (uint8_t)fw_mqtt_topic_kind(&mq, e->topic, (size_t)e->topic_len);
		if (it.topic == FW_MQTT_T_OTHER)
			return;
		if (it.topic == FW_MQTT_T_INTERVAL) { /* our own interval: its mark is enough */
			n = fw_mqtt_echo_mark(e->data, (size_t)e->data_len, it.data,
					      sizeof(it.data));
			if (n < 0)
				return;
			it.data_len = (uint16_t)n;
			break;
		}
		if ((size_t)e->data_len > sizeof(it.data))
			return;
		it.data_len = (uint16_t)e->data_len;
		memcpy(it.data, e->data, it.data_len);
		break;
	}
	case MQTT_EVENT_ERROR:
		it.type = FW_MQTT_EV_ERROR;
		break;
	default:
		return;
	}
	/* never wait here: esp-mqtt's task holds its API lock, which the network task may be
	 * waiting for. A lost event costs a timeout and a fresh connection, never a record. */
	if (xQueueSend(queue, &it, 0) != pdTRUE)
		atomic_fetch_add(&dropped, 1);
}

static struct item local;               /* the network task's: posting and taking events */

static void post_local(uint8_t type, uint32_t conn)
{
	memset(&local, 0, offsetof(struct item, data));
	local.type = type;
	local.conn = conn;
	xQueueSend(queue, &local, 0);
}

static void dns_found(const char *name, const ip_addr_t *ip, void *arg)
{
	atomic_store(&dns_state, ip != NULL ? DNS_DONE : DNS_FAILED);
}

static void dns_start(void *arg)
{
	err_t e = dns_gethostbyname(dns_host, &dns_addr, dns_found, NULL);

	if (e == ERR_OK)
		atomic_store(&dns_state, DNS_DONE);
	else if (e != ERR_INPROGRESS)
		atomic_store(&dns_state, DNS_FAILED);
}

/* Starts the client for connection conn once the name is known. */
static void start_now(uint32_t conn)
{
	const struct fw_settings *st = fw_settings_get(); /* as loaded at boot */
	const esp_mqtt_client_config_t cfg = {
		.broker.address.uri = st->mqtt_uri,
		.broker.verification.crt_bundle_attach = esp_crt_bundle_attach,
		.credentials.client_id = client_id,
		.credentials.username = st->mqtt_user[0] ? st->mqtt_user : NULL,
		.credentials.authentication.password = st->mqtt_pass[0] ? st->mqtt_pass : NULL,
		.session.last_will = {
			.topic = will_topic, .msg = "offline", .msg_len = 7, .qos = 1, .retain = 1,
		},
		.session.keepalive = 30,
		/* persistent: the interval echoes queued while no connection is there (above) */
		.session.disable_clean_session = true,
		.session.message_retransmit_timeout = MQTT_RETRANSMIT_MS,
		.network.timeout_ms = MQTT_NET_TIMEOUT_MS,
		.network.disable_auto_reconnect = true,
		.buffer.size = MQTT_IN_BUFFER,
		/* the longest message whole: discovery as long as init measured it */
		.buffer.out_size = (int)(fw_mqtt_max_payload(&mq) + PL_MQTT_TOPIC_MAX + 16),
#if ESP_IDF_VERSION >= ESP_IDF_VERSION_VAL(5, 2, 0)
		.outbox.limit = MQTT_OUTBOX_LIMIT, /* v5.1 has none: the window bounds it too */
#endif
	};

	client = esp_mqtt_client_init(&cfg);
	if (client == NULL) {
		ESP_LOGE(TAG, "esp-mqtt refuses the configuration (URI \"%s\")", st->mqtt_uri);
		post_local(FW_MQTT_EV_DISCONNECTED, conn);
		return;
	}
	esp_mqtt_client_register_event(client, MQTT_EVENT_ANY, on_mqtt, (void *)(uintptr_t)conn);
	if (esp_mqtt_client_start(client) != ESP_OK)
		post_local(FW_MQTT_EV_DISCONNECTED, conn);
}

static int c_start(void *ctx, uint32_t conn, const char *will)
{
	will_topic = will; /* mq's own: outlives every client */
	if (dns_host[0] == '\0') {
		post_local(FW_MQTT_EV_DISCONNECTED, conn); /* the URI: said at init */
		return 0;
	}
	start_conn = conn;
	if (atomic_load(&dns_state) == DNS_PENDING)
		return 0; /* an earlier lookup still runs: its answer serves this start */
	atomic_store(&dns_state, DNS_PENDING);
	if (tcpip_callback(dns_start, NULL) != ERR_OK)
		atomic_store(&dns_state, DNS_FAILED);
	return 0;
}

/* The start waiting for the name: started, or failed as a disconnect. */
static void poll_start(void)
{
	int st = atomic_load(&dns_state);

	if (start_conn == 0 || st == DNS_PENDING)
		return;
	if (st == DNS_DONE) {
		start_now(start_conn);
	} else {
		ESP_LOGW(TAG, "cannot look up \"%s\"", dns_host);
		post_local(FW_MQTT_EV_DISCONNECTED, start_conn);
	}
	start_conn = 0;
	esp_task_wdt_reset();
}

static void c_stop(void *ctx)
{
	start_conn = 0;
	if (client == NULL)
		return;
	esp_task_wdt_reset();
	/* sends DISCONNECT (a write: one network timeout at most, a failure ignored), then waits
	 * for esp-mqtt's task to finish its step: a connect or a write (one network timeout) or a
	 * 1 s poll. Together well inside the watchdog's period. */
	esp_mqtt_client_destroy(client);
	client = NULL;
	esp_task_wdt_reset();
}

static int c_publish(void *ctx, const char *topic, const char *data, size_t len, int qos,
		     int retain)
{
	int id;

	if (client == NULL)
		return -1;
	id = esp_mqtt_client_enqueue(client, topic, data, (int)len, qos, retain, true);
	esp_task_wdt_reset();
	return id;
}

static int c_subscribe(void *ctx, const char *topic, int qos)
{
	int id;

	if (client == NULL)
		return -1;
	id = esp_mqtt_client_subscribe(client, topic, qos); /* a write: see the header */
	esp_task_wdt_reset();
	return id;
}

static void c_log(void *ctx, int level, const char *msg)
{
	if (level >= 2)
		ESP_LOGE(TAG, "%s", msg);
	else if (level == 1)
		ESP_LOGW(TAG, "%s", msg);
	else
		ESP_LOGI(TAG, "%s", msg);
}

/* The discovery payload's buffer: taken for one publish, given back at once (fw_mqtt.h). */
static void *c_alloc(void *ctx, size_t n)
{
	return malloc(n);
}

static void c_release(void *ctx, void *p)
{
	free(p);
}

static const struct fw_mqtt_ops ops = {
	.start = c_start, .stop = c_stop, .publish = c_publish, .subscribe = c_subscribe,
	.log = c_log, .alloc = c_alloc, .release = c_release,
};

int fw_net_mqtt_init(struct fw_sink *sink, struct fw_time *time, char *scratch, size_t cap)
{
	const struct fw_settings *st = fw_settings_get(); /* as loaded at boot */
	struct fw_mqtt_config cfg = {
		.node = {
			.topic_prefix = st->mqtt_prefix,
			.discovery_prefix = st->mqtt_discovery,
			.node_id = client_id,
			.sw_version = esp_app_get_description()->version,
			.model = "ESP32",
			.support_url = NULL,
		},
		.meter = {.name = st->device, .imp_per_kwh = st->imp_per_kwh},
		.sync_timeout_ms = MQTT_ACK_TIMEOUT_MS,
		.connect_timeout_ms = MQTT_ACK_TIMEOUT_MS,
		.seed = (uint32_t)esp_timer_get_time() ^ (uint32_t)(uintptr_t)&cfg,
		.scratch = scratch,
		.scratch_cap = cap,
	};
	uint8_t mac[6] = {0};

	if (st->mqtt_client_id[0] != '\0') {
		snprintf(client_id, sizeof(client_id), "%s", st->mqtt_client_id);
	} else {
		esp_read_mac(mac, ESP_MAC_WIFI_STA);
		snprintf(client_id, sizeof(client_id), "powerlogger-%02x%02x%02x", mac[3], mac[4],
			 mac[5]);
	}
	if (fw_mqtt_uri_host(st->mqtt_uri, dns_host, sizeof(dns_host), NULL) != 0) {
		ESP_LOGE(TAG, "the broker URI \"%s\" is not mqtt://HOST[:PORT] or "
			 "mqtts://HOST[:PORT]; records are kept, none published (set mqtt_uri)",
			 st->mqtt_uri);
		dns_host[0] = '\0';
	}
	queue = xQueueCreate(MQTT_QUEUE_DEPTH, sizeof(struct item));
	if (queue == NULL)
		return -PL_ENOMEM;
	/* esp-mqtt's own log would repeat every failed connection; fw_mqtt says it once */
	esp_log_level_set("mqtt_client", ESP_LOG_ERROR);
	if (fw_mqtt_init(&mq, &cfg, &ops, NULL, sink, time) != 0) {
		/* m->msg says what (a name, the topics' room, no memory to measure discovery) */
		ESP_LOGE(TAG, "%s; records are kept, none published (fix it with the console's "
			 "`set`)", mq.msg);
		vQueueDelete(queue);
		queue = NULL;
		return -PL_EINVAL;
	}
	ESP_LOGI(TAG, "client id \"%s\", broker %s", client_id, st->mqtt_uri);
	return 0;
}

/* Waits up to ms for an event, takes every queued one into fw_mqtt, and steps it. */
void fw_net_mqtt_poll(int net_up, uint32_t ms, const struct pl_mqtt_diag *view)
{
	struct item *it = &local;
	struct fw_mqtt_event ev;
	unsigned lost;

	if (queue == NULL) {
		vTaskDelay(pdMS_TO_TICKS(ms));
		return;
	}
	/* a lookup in progress is polled every 20 ms; nothing coming still steps (timeouts,
	 * the backoff, new records) */
	(void)xQueuePeek(queue, it, pdMS_TO_TICKS(start_conn != 0 && ms > 20 ? 20 : ms));
	poll_start();
	while (xQueueReceive(queue, it, 0) == pdTRUE) {
		memset(&ev, 0, sizeof(ev));
		ev.type = (enum fw_mqtt_ev_type)it->type;
		ev.conn = it->conn;
		ev.msg_id = it->msg_id;
		ev.topic = fw_mqtt_topic_of(&mq, (enum fw_mqtt_topic)it->topic);
		ev.topic_len = strlen(ev.topic);
		ev.data = it->data;
		ev.data_len = it->data_len;
		fw_mqtt_event(&mq, &ev, esp_timer_get_time() / 1000);
		esp_task_wdt_reset();
	}
	lost = atomic_exchange(&dropped, 0);
	if (lost > 0)
		ESP_LOGW(TAG, "%u event(s) lost (queue full): the connection will be renewed",
			 lost);
	if (view != NULL)
		fw_mqtt_set_view(&mq, view);
	fw_mqtt_step(&mq, esp_timer_get_time() / 1000, net_up);
}

const struct fw_mqtt *fw_net_mqtt(void)
{
	return queue != NULL ? &mq : NULL;
}

#endif /* CONFIG_PL_MQTT_ENABLE */
