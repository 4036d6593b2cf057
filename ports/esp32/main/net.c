/* SPDX-License-Identifier: MIT */
/*
 * The network task (core 0): WiFi with reconnect and backoff, SNTP, and delivery. Records
 * from the sampling task go into the outbox first (fw_store), then out through fw_delivery
 * (logic/) over esp_http_client - HTTPS checked against the ESP-IDF certificate bundle - and,
 * when enabled, through fw_mqtt (logic/, the device side in mqtt.c) to an MQTT broker. Each
 * sink has its own cursor over the outbox (fw_sinks, logic/): a dead broker never holds
 * InfluxDB back, and a log filled while MQTT is down makes MQTT skip, never InfluxDB. The
 * HTTP transport below is the device's side of fw_delivery's seam, driven in watchdog-sized
 * steps by fw_http (logic/); the tests use fakes for both.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "esp_event.h"
#include "esp_http_client.h"
#include "esp_log.h"
#include "esp_random.h"
#include "esp_system.h"
#include "esp_task_wdt.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "sdkconfig.h"
#if !CONFIG_IDF_TARGET_LINUX
#include "esp_crt_bundle.h"
#include "esp_heap_caps.h"
#include "esp_netif.h"
#include "esp_sntp.h"
#include "esp_wifi.h"
#include "lwip/dns.h"
#include "lwip/tcpip.h"
#endif

#include "fw_console_port.h"
#include "fw_delivery.h"
#include "fw_http.h"
#include "fw_mqtt.h"
#include "fw_port.h"
#include "fw_sampling.h"
#include "fw_seqpair.h"
#include "fw_sinks.h"
#include "ota.h"
#include "powerlogger/lineproto.h"
#include "powerlogger/retry.h"

static const char *TAG = "network";

/*
 * Written by the WiFi event handler (the event loop's task) and the SNTP callback (lwIP's
 * task), read by this task, maybe on the other core. A 64-bit value is two 32-bit stores on
 * the ESP32, so the 64-bit ones go through fw_seqpair (logic/), never torn; each has one
 * writer. wifi_up and wifi_failures are single words; only the event handler writes them.
 */
static atomic_int wifi_up;
#if !CONFIG_IDF_TARGET_LINUX
static int wifi_failures;               /* the event handler's own */
#endif
static struct fw_seqpair reconnect;     /* (esp_timer time of the next association, 0) */
static struct fw_seqpair sync_pair;     /* (esp_timer time, wall-clock us) of the last sync */

static struct fw_sinks sinks;           /* the sinks' cursors over the outbox */
#if CONFIG_PL_INFLUX_ENABLE
static struct fw_delivery delivery;     /* ~12 KB: static */
/* MQTT's payloads are built in InfluxDB's request body: fw_delivery uses it only inside
 * fw_delivery_step, fw_mqtt only inside its calls, all in this task (fw_mqtt.h) */
#define MQTT_SCRATCH delivery.body
#elif CONFIG_PL_MQTT_ENABLE
static char mqtt_payload[PL_MQTT_PAYLOAD_MAX]; /* without InfluxDB: MQTT's own */
#define MQTT_SCRATCH mqtt_payload
#endif

#if CONFIG_IDF_TARGET_LINUX
/* ---- the linux target: the host's network and clock ---------------------------------- */

/* The host is online: the network is up from the start, as a device's is once associated. */
static void wifi_start(void)
{
	fw_seqpair_init(&reconnect);
	ESP_ERROR_CHECK(esp_event_loop_create_default());
	atomic_store(&wifi_up, 1);
	ESP_LOGI(TAG, "network: the host's (linux target: no WiFi)");
}

/* The host's clock is set: one sync at once, as SNTP's first answer would be. */
static void sntp_start(void)
{
	struct timeval tv;

	fw_seqpair_init(&sync_pair);
	gettimeofday(&tv, NULL);
	fw_seqpair_write(&sync_pair, esp_timer_get_time(),
			 (int64_t)tv.tv_sec * 1000000 + tv.tv_usec);
	ESP_LOGI(TAG, "clock: the host's (linux target: no SNTP)");
}

#else
/* ---- WiFi ---------------------------------------------------------------------------- */

static void on_wifi(void *arg, esp_event_base_t base, int32_t id, void *data)
{
	if (base == WIFI_EVENT && id == WIFI_EVENT_STA_START) {
		esp_wifi_connect();
	} else if (base == WIFI_EVENT && id == WIFI_EVENT_STA_DISCONNECTED) {
		const wifi_event_sta_disconnected_t *d = data;
		struct pl_backoff b = {(uint32_t)wifi_failures, 0};
		uint32_t ms = pl_backoff_next(&b, esp_random(), 0);

		if (ms > 60000)
			ms = 60000;
		atomic_store(&wifi_up, 0);
		wifi_failures++;
		fw_seqpair_write(&reconnect, esp_timer_get_time() + (int64_t)ms * 1000, 0);
		ESP_LOGW(TAG, "wifi: disconnected (reason %d), retry in %.1f s", d->reason, ms / 1e3);
	} else if (base == IP_EVENT && id == IP_EVENT_STA_GOT_IP) {
		const ip_event_got_ip_t *e = data;

		ESP_LOGI(TAG, "wifi: got IP " IPSTR, IP2STR(&e->ip_info.ip));
		wifi_failures = 0;
		fw_seqpair_write(&reconnect, 0, 0);
		atomic_store(&wifi_up, 1);
	}
}

static void wifi_start(void)
{
	wifi_init_config_t init = WIFI_INIT_CONFIG_DEFAULT();
	wifi_config_t sta = {0};
	const struct fw_settings *st = fw_settings_get();

	fw_seqpair_init(&reconnect);
	ESP_ERROR_CHECK(esp_netif_init());
	ESP_ERROR_CHECK(esp_event_loop_create_default());
	esp_netif_create_default_wifi_sta();
	ESP_ERROR_CHECK(esp_wifi_init(&init));
	ESP_ERROR_CHECK(esp_event_handler_register(WIFI_EVENT, ESP_EVENT_ANY_ID, on_wifi, NULL));
	ESP_ERROR_CHECK(esp_event_handler_register(IP_EVENT, IP_EVENT_STA_GOT_IP, on_wifi, NULL));
	/* fw_settings: at most 32 and 64 bytes, the fields' sizes (no NUL needed there) */
	strncpy((char *)sta.sta.ssid, st->wifi_ssid, sizeof(sta.sta.ssid));
	strncpy((char *)sta.sta.password, st->wifi_pass, sizeof(sta.sta.password));
	ESP_ERROR_CHECK(esp_wifi_set_mode(WIFI_MODE_STA));
	ESP_ERROR_CHECK(esp_wifi_set_config(WIFI_IF_STA, &sta));
	ESP_ERROR_CHECK(esp_wifi_start());
	ESP_LOGI(TAG, "wifi: connecting to \"%s\"", st->wifi_ssid);
}

/* ---- SNTP ---------------------------------------------------------------------------- */

static void on_sntp(struct timeval *tv)
{
	fw_seqpair_write(&sync_pair, esp_timer_get_time(),
			 (int64_t)tv->tv_sec * 1000000 + tv->tv_usec);
}

static void sntp_start(void)
{
	fw_seqpair_init(&sync_pair);
	esp_sntp_setoperatingmode(ESP_SNTP_OPMODE_POLL);
	esp_sntp_setservername(0, "pool.ntp.org");
	sntp_set_time_sync_notification_cb(on_sntp);
	esp_sntp_init();
}

#endif /* CONFIG_IDF_TARGET_LINUX */

/* ---- HTTP transport (fw_delivery's seam) ---------------------------------------------- */
#if CONFIG_PL_INFLUX_ENABLE

/*
 * The task watchdog watches this task, so no call may block for as long as its period:
 * requests go through fw_http (logic/) in steps of a fifth of the period, the watchdog fed
 * after each, instead of one esp_http_client_perform() that waits out the whole timeout.
 */
#ifdef CONFIG_ESP_TASK_WDT_TIMEOUT_S
#define WDT_MS (CONFIG_ESP_TASK_WDT_TIMEOUT_S * 1000)
#define HTTP_STEP_MS FW_HTTP_STEP_MS(CONFIG_ESP_TASK_WDT_TIMEOUT_S)
#else
#define WDT_MS 10000 /* no task watchdog: the same steps as with the default period */
#define HTTP_STEP_MS FW_HTTP_STEP_MS(10)
#endif
_Static_assert(HTTP_STEP_MS > 0 && FW_HTTP_WORST_BLOCK_MS(HTTP_STEP_MS) < WDT_MS,
	       "an HTTP call must not block for the task watchdog's period");
/* fw_http_map_esp() knows ESP-IDF's codes by value: they must be these */
_Static_assert(FW_ESP_OK == ESP_OK && FW_ESP_FAIL == ESP_FAIL &&
	       FW_ESP_ERR_NO_MEM == ESP_ERR_NO_MEM && FW_ESP_ERR_TIMEOUT == ESP_ERR_TIMEOUT &&
	       FW_ESP_ERR_HTTP_CONNECT == ESP_ERR_HTTP_CONNECT &&
	       FW_ESP_ERR_HTTP_WRITE_DATA == ESP_ERR_HTTP_WRITE_DATA &&
	       FW_ESP_ERR_HTTP_FETCH_HEADER == ESP_ERR_HTTP_FETCH_HEADER &&
	       FW_ESP_ERR_HTTP_INVALID_TRANSPORT == ESP_ERR_HTTP_INVALID_TRANSPORT &&
	       FW_ESP_ERR_HTTP_CONNECTING == ESP_ERR_HTTP_CONNECTING &&
	       FW_ESP_ERR_HTTP_EAGAIN == ESP_ERR_HTTP_EAGAIN &&
	       FW_ESP_ERR_HTTP_CONNECTION_CLOSED == ESP_ERR_HTTP_CONNECTION_CLOSED,
	       "ESP-IDF's esp_http_client error codes changed: update fw_http.h");

struct http_ctx {
	esp_http_client_handle_t client;
	struct fw_http_result *res;
};
static struct http_ctx http;

/* Only the head's Retry-After is taken here; fw_http reads the body itself. */
static esp_err_t on_http(esp_http_client_event_t *e)
{
	struct http_ctx *c = e->user_data;

	if (c->res != NULL && e->event_id == HTTP_EVENT_ON_HEADER &&
	    strcasecmp(e->header_key, "Retry-After") == 0)
		c->res->retry_after_s = (uint32_t)strtoul(e->header_value, NULL, 10);
	return ESP_OK;
}

/*
 * The name lookup as a step of its own (fw_http's resolve): inside the connect, lwIP's
 * resolver waits up to 7 s for each DNS server that does not answer, with the watchdog
 * unfed. dns_gethostbyname() runs in lwIP's task (tcpip_callback) and answers through a
 * callback; this task polls in 20 ms sleeps for at most one step. The address lands in lwIP's
 * cache, where the connect's getaddrinfo() then finds it at once. A lookup still running from
 * an earlier request is waited for, not started twice.
 */
#if CONFIG_IDF_TARGET_LINUX
static char dns_host[128];              /* from the setting influx_url; "" if unusable */

/* The host's resolver, inside the connect (getaddrinfo): no lwIP task to step around. */
static int x_resolve(void *ctx, int32_t timeout_ms)
{
	return 0;
}

#else
enum { DNS_IDLE = 0, DNS_PENDING, DNS_DONE, DNS_FAILED };
static atomic_int dns_state;
static char dns_host[128];              /* from the setting influx_url; "" if unusable */
static ip_addr_t dns_addr;              /* lwIP's out-parameter; written in lwIP's task */

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

static int x_resolve(void *ctx, int32_t timeout_ms)
{
	int64_t until = esp_timer_get_time() + (int64_t)timeout_ms * 1000;

	if (dns_host[0] == '\0')
		return 0; /* the connect will say what is wrong with the URL */
	if (atomic_load(&dns_state) != DNS_PENDING) {
		atomic_store(&dns_state, DNS_PENDING);
		if (tcpip_callback(dns_start, NULL) != ERR_OK) {
			atomic_store(&dns_state, DNS_FAILED);
			return FW_HTTP_FAIL(PL_XPORT_DNS);
		}
	}
	for (;;) {
		int st = atomic_load(&dns_state);

		if (st == DNS_DONE)
			return 0;
		if (st == DNS_FAILED)
			return FW_HTTP_FAIL(PL_XPORT_DNS);
		if (esp_timer_get_time() >= until)
			return FW_HTTP_AGAIN;
		vTaskDelay(pdMS_TO_TICKS(20));
	}
}

#endif

static int x_open(void *ctx, size_t body_len, int32_t timeout_ms)
{
	struct http_ctx *c = ctx;

	esp_http_client_set_timeout_ms(c->client, (int)timeout_ms);
	return fw_http_map_esp(FW_HTTP_OPEN, esp_http_client_open(c->client, (int)body_len));
}

static int x_write(void *ctx, const char *buf, size_t len, int32_t timeout_ms)
{
	struct http_ctx *c = ctx;

	esp_http_client_set_timeout_ms(c->client, (int)timeout_ms);
	return fw_http_map_esp(FW_HTTP_WRITE, esp_http_client_write(c->client, buf, (int)len));
}

static int x_headers(void *ctx, int32_t timeout_ms)
{
	struct http_ctx *c = ctx;

	esp_http_client_set_timeout_ms(c->client, (int)timeout_ms);
	return fw_http_map_esp(FW_HTTP_HEADERS, esp_http_client_fetch_headers(c->client));
}

static int x_read(void *ctx, char *buf, size_t cap, int32_t timeout_ms)
{
	struct http_ctx *c = ctx;

	esp_http_client_set_timeout_ms(c->client, (int)timeout_ms);
	return fw_http_map_esp(FW_HTTP_READ, esp_http_client_read(c->client, buf, (int)cap));
}

static int x_status(void *ctx)
{
	return esp_http_client_get_status_code(((struct http_ctx *)ctx)->client);
}

static void x_close(void *ctx)
{
	esp_http_client_close(((struct http_ctx *)ctx)->client);
}

static int64_t x_now_ms(void *ctx)
{
	return esp_timer_get_time() / 1000;
}

static void x_feed(void *ctx)
{
	esp_task_wdt_reset();
}

static const struct fw_http_ops http_ops = {
	.resolve = x_resolve, .open = x_open, .write = x_write, .fetch_headers = x_headers, .read = x_read,
	.status = x_status, .close = x_close, .now_ms = x_now_ms, .feed = x_feed,
};

static int http_post(void *ctx, const char *body, size_t len, struct fw_http_result *res)
{
	static const struct fw_http_limits lim = {
		.step_ms = HTTP_STEP_MS, .deadline_ms = FW_HTTP_DEADLINE_MS,
	};
	struct http_ctx *c = ctx;
	int rc;

	if (c->client == NULL) {
		res->transport = PL_XPORT_OTHER;
		snprintf(res->msg, sizeof(res->msg), "no HTTP client: check the InfluxDB URL");
		return 0;
	}
	c->res = res;
	rc = fw_http_post(&http_ops, c, &lim, body, len, res);
	c->res = NULL;
	return rc;
}

static void http_open(void)
{
	static char url[384];
	const struct fw_settings *st = fw_settings_get();
	esp_http_client_config_t cfg = {
		.url = url,
		.method = HTTP_METHOD_POST,
		.timeout_ms = HTTP_STEP_MS,
		.event_handler = on_http,
		.user_data = &http,
#if !CONFIG_IDF_TARGET_LINUX
		.crt_bundle_attach = esp_crt_bundle_attach,
#endif
	};
	int n;

	/* the settings (fw_settings_get): URL-safe names, a URL checked when it was set */
	if (st->influx_api == 1) {
		n = snprintf(url, sizeof(url), "%s/write?db=%s&precision=s", st->influx_url,
			     st->influx_db);
		if (st->influx_user[0] != '\0') {
			cfg.username = st->influx_user;
			cfg.password = st->influx_pass;
			cfg.auth_type = HTTP_AUTH_TYPE_BASIC;
		}
	} else if (st->influx_api == 2) {
		n = snprintf(url, sizeof(url), "%s/api/v2/write?org=%s&bucket=%s&precision=s",
			     st->influx_url, st->influx_org, st->influx_bucket);
	} else {
		n = snprintf(url, sizeof(url), "%s/api/v3/write_lp?db=%s&precision=second",
			     st->influx_url, st->influx_db);
	}
	if (fw_http_url_host(st->influx_url, dns_host, sizeof(dns_host)) != 0) {
		ESP_LOGE(TAG, "influx: cannot take a host name from \"%s\"", st->influx_url);
		dns_host[0] = '\0';
	}
	/* A bad URL leaves no client: say so at every attempt rather than crash in the first
	 * request (http_post), and keep the records. */
	if (n < 0 || (size_t)n >= sizeof(url)) {
		ESP_LOGE(TAG, "influx: the write URL is longer than %u bytes", (unsigned)sizeof(url));
		return;
	}
	http.client = esp_http_client_init(&cfg);
	if (http.client == NULL) {
		ESP_LOGE(TAG, "influx: esp_http_client refuses the URL \"%s\"", url);
		return;
	}
	/* each wait for the answer is a step of its own (fw_http): its timeout is no news */
	esp_log_level_set("HTTP_CLIENT", ESP_LOG_ERROR);
	esp_http_client_set_header(http.client, "Content-Type", "text/plain; charset=utf-8");
	if (st->influx_api != 1 && st->influx_token[0] != '\0') {
		static char auth[256];

		snprintf(auth, sizeof(auth), "%s %s", st->influx_api == 2 ? "Token" : "Bearer",
			 st->influx_token);
		esp_http_client_set_header(http.client, "Authorization", auth);
	}
}

/* ---- the task -------------------------------------------------------------------------- */

static void log_event(const struct fw_delivery_event *ev, size_t waiting)
{
	if (ev->action != PL_SINK_OK) /* for the console's `status` */
		fw_status_error(fw_console_status(), ev->action, ev->transport, ev->status,
				esp_timer_get_time());
	if (ev->action == PL_SINK_OK)
		ESP_LOGI(TAG, "influx: %lu record(s) written (HTTP %d), %u waiting",
			 (unsigned long)ev->lines, ev->status, (unsigned)waiting);
	else if ((ev->action == PL_SINK_RETRY || ev->action == PL_SINK_NOTFOUND) && ev->transport)
		/* no answer at all: what failed, not an HTTP status */
		ESP_LOGW(TAG, "influx: %s (%s): %lu record(s) kept, retry in %.1f s", ev->msg,
			 pl_sink_transport_name(ev->transport), (unsigned long)ev->lines,
			 ev->delay_ms / 1e3);
	else if (ev->action == PL_SINK_RETRY || ev->action == PL_SINK_NOTFOUND)
		ESP_LOGW(TAG, "influx: HTTP %d %s: %lu record(s) kept, retry in %.1f s", ev->status,
			 ev->msg, (unsigned long)ev->lines, ev->delay_ms / 1e3);
	else if (ev->action == PL_SINK_QUARANTINE)
		ESP_LOGW(TAG, "influx: 1 record quarantined: %s", ev->msg);
}
#endif /* CONFIG_PL_INFLUX_ENABLE */

/* Each interval as it enters the outbox: what the serial console shows of the meter. */
static void log_record(const struct fw_record *r)
{
	const struct pl_interval_record *x = &r->rec;
	char at[32];

	if (r->stamped) {
		time_t s = (time_t)(x->start_us / 1000000);
		struct tm tm;

		gmtime_r(&s, &tm);
		strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
	} else {
		snprintf(at, sizeof(at), "boot+%.3fs", (double)x->start_us / 1e6);
	}
	ESP_LOGI(TAG, "interval %s %lus: %lu pulses, %.3f Wh, register %.3f Wh%s%s%s", at,
		 (unsigned long)x->length_s, (unsigned long)x->pulses, (double)x->energy_uwh / 1e6,
		 (double)x->register_uwh / 1e6, x->flags & PL_Q_PARTIAL ? " [partial]" : "",
		 x->flags & PL_Q_GAP ? " [gap]" : "", x->flags & PL_Q_STEADY ? " [steady]" : "");
}

/* Opens the sinks' cursors over the outbox: InfluxDB first (the primary), then MQTT. */
static void sinks_open(struct fw_store *store)
{
	uint32_t kinds[FW_CURSORS_MAX], n = 0;
	int rc;

#if CONFIG_PL_INFLUX_ENABLE
	if (fw_settings_get()->influx_enable)
		kinds[n++] = FW_SINK_INFLUX;
#endif
#if CONFIG_PL_MQTT_ENABLE
	if (fw_settings_get()->mqtt_enable)
		kinds[n++] = FW_SINK_MQTT;
#endif
	if (n == 0) {
		ESP_LOGE(TAG, "neither InfluxDB nor MQTT is enabled: records are kept, none sent");
		kinds[n++] = FW_SINK_INFLUX; /* a cursor nobody moves: the outbox just fills */
	}
	rc = fw_sinks_open(&sinks, store, kinds, n,
			   ((uint64_t)esp_random() << 32) | esp_random());
	if (rc < 0) {
		ESP_LOGE(TAG, "outbox: cannot read the sinks' cursors (%d); restarting in 10 s",
			 rc);
		vTaskDelay(pdMS_TO_TICKS(10000));
		esp_restart();
	}
}

void fw_net_task(void *arg)
{
	struct fw_net_args *a = arg;
	const struct fw_settings *st = fw_settings_get(); /* as loaded at boot */
#if CONFIG_PL_INFLUX_ENABLE
	const int influx_on = st->influx_enable; /* built in, and switched on */
	struct fw_delivery_config dcfg = {
		.device = st->device,
		.precision = PL_PREC_S,
		.max_batch = 0,
		.seed = esp_random(),
	};
#endif
	int64_t next_health = 0;
#if CONFIG_PL_MQTT_ENABLE
	uint32_t view_seen = 0;                 /* the detector views taken (g_view) */
#endif
	int64_t reconnect_done = 0;             /* the reconnect time acted on */
	uint32_t sync_seen = 0;                 /* the SNTP syncs taken */

	(void)st; /* used only by the sinks built in */
	esp_task_wdt_add(NULL);
	wifi_start();
	sntp_start();
	sinks_open(a->store);
#if CONFIG_PL_MQTT_ENABLE
	if (st->mqtt_enable)
		fw_net_mqtt_init(fw_sinks_get(&sinks, FW_SINK_MQTT), a->time, MQTT_SCRATCH,
				 sizeof(MQTT_SCRATCH)); /* says what is wrong */
#endif
#if CONFIG_PL_INFLUX_ENABLE
	if (influx_on)
		http_open();
	if (influx_on &&
	    fw_delivery_init(&delivery, &dcfg, fw_sink_store(fw_sinks_get(&sinks, FW_SINK_INFLUX)),
			     a->time, http_post, &http) != 0) {
		const char *why = pl_lp_name_problem(st->device, PL_LP_TAG_VALUE);

		/* the records are still kept in the outbox; nothing is sent until it is fixed */
		if (why != NULL)
			ESP_LOGE(TAG, "delivery: device name \"%s\": %s; records are kept, none "
				 "sent (fix it with the console's `set device`)", st->device, why);
		else
			ESP_LOGE(TAG, "delivery: bad configuration; records are kept, none sent");
	}
#endif

	for (;;) {
		int64_t now = esp_timer_get_time();
#if CONFIG_PL_INFLUX_ENABLE
		struct fw_delivery_event ev;
#endif
		struct fw_record r;

		/* records into the outbox with the register they end with (fw_store_put_record);
		 * a full outbox makes a lagging MQTT skip (fw_sinks); one still refused waits in
		 * the ring */
		while (fw_ring_peek(&g_records, &r) == 0 &&
		       fw_sinks_put_record(&sinks, &r, NULL) == 0) {
			fw_ring_pop(&g_records, &r);
			log_record(&r);
		}

		int64_t at, unused, sync_mono, sync_wall;
		uint32_t version;
		int up = atomic_load(&wifi_up);

		if (!up && fw_seqpair_read(&reconnect, &at, &unused, NULL) == 0 && at != 0 &&
		    at != reconnect_done && now >= at) {
			reconnect_done = at;
#if !CONFIG_IDF_TARGET_LINUX
			esp_wifi_connect();
#endif
		}
		if (fw_seqpair_read(&sync_pair, &sync_mono, &sync_wall, &version) == 0 &&
		    version != sync_seen) {
			sync_seen = version;
			int first = !a->time->synced;

			if (fw_time_sync(a->time, sync_mono, sync_wall) == 1) {
				struct fw_timebase_msg m = {
					.offset_us = a->time->offset_us, .epoch = a->time->epoch,
				};

				fw_ring_push(&g_timebase, &m);
				if (first)
					fw_store_anchor(a->store, a->boot, a->time->anchor_us);
				ESP_LOGI(TAG, "sntp: clock set (time base %lu)", (unsigned long)m.epoch);
			}
		}
#if CONFIG_PL_INFLUX_ENABLE
		while (influx_on && fw_delivery_step(&delivery, now / 1000, up, &ev) == 1) {
			log_event(&ev, fw_store_count(fw_sink_store(&sinks.sink[0])));
			esp_task_wdt_reset();
		}
#endif
		/* a new image is kept after its first delivery (or rolled back); update checks */
		fw_ota_poll(now / 1000, up, &sinks);
		uint64_t delivered = 0; /* for the console's `status`: InfluxDB's, else MQTT's */
#if CONFIG_PL_INFLUX_ENABLE
		if (influx_on)
			delivered = delivery.delivered;
#endif
#if CONFIG_PL_MQTT_ENABLE
		if (delivered == 0 && fw_net_mqtt() != NULL)
			delivered = fw_net_mqtt()->published;
#endif
		fw_status_net(fw_console_status(), up, (uint32_t)fw_store_count(a->store),
			      delivered);
		if (now >= next_health) {
#if CONFIG_IDF_TARGET_LINUX
			/* the host's malloc: no heap figures there */
			ESP_LOGI(TAG, "health: stack left: sampling %u B, network %u B; outbox %u",
				 (unsigned)uxTaskGetStackHighWaterMark(a->sampling_task),
				 (unsigned)uxTaskGetStackHighWaterMark(NULL),
				 (unsigned)fw_store_count(a->store));
#else
			ESP_LOGI(TAG, "health: heap free %u (min %u), stack left: sampling %u B, "
				 "network %u B; outbox %u", (unsigned)esp_get_free_heap_size(),
				 (unsigned)esp_get_minimum_free_heap_size(),
				 (unsigned)uxTaskGetStackHighWaterMark(a->sampling_task),
				 (unsigned)uxTaskGetStackHighWaterMark(NULL),
				 (unsigned)fw_store_count(a->store));
#endif
#if CONFIG_PL_INFLUX_ENABLE
			if (influx_on)
				ESP_LOGI(TAG, "health: influx %u waiting, delivered %lu, "
					 "quarantined %lu",
					 (unsigned)fw_sink_count(fw_sinks_get(&sinks,
									      FW_SINK_INFLUX)),
					 (unsigned long)delivery.delivered,
					 (unsigned long)delivery.quarantined);
#endif
#if CONFIG_PL_MQTT_ENABLE
			if (fw_net_mqtt() != NULL) {
				const struct fw_sink *k = fw_sinks_get(&sinks, FW_SINK_MQTT);

				ESP_LOGI(TAG, "health: mqtt %s, %u waiting, published %lu, skipped "
					 "(outbox full) %lu, already on the broker %lu",
					 fw_mqtt_state_name(fw_net_mqtt()->state),
					 (unsigned)fw_sink_count(k), (unsigned long)fw_net_mqtt()->published,
					 (unsigned long)k->skipped, (unsigned long)fw_net_mqtt()->by_mark);
			}
#endif
			next_health = now + 60 * 1000000LL;
		}
		esp_task_wdt_reset();
#if CONFIG_PL_MQTT_ENABLE
		struct fw_sampling_view sv;
		struct pl_mqtt_diag view, *vp = NULL;
		uint32_t view_ver;

		/* the sampling task's view, read whole (fw_seqpair); a write in progress: later */
		if (fw_sampling_view_read(&g_view, &sv, &view_ver) == 0 && view_ver != view_seen) {
			view_seen = view_ver;
			view = (struct pl_mqtt_diag){
				.detector_state = fw_sampling_view_state_name(&sv),
				.amplitude = sv.amplitude, .noise = sv.noise,
				.rejected_total = sv.rejected,
			};
			vp = &view;
		}
		fw_net_mqtt_poll(up, 200, vp); /* waits for the broker's events, at most 200 ms */
		esp_task_wdt_reset();
#else
		vTaskDelay(pdMS_TO_TICKS(200));
#endif
	}
}
