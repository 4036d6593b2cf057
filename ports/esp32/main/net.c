/*
 * The network task (core 0): WiFi with reconnect and backoff, SNTP, and delivery. Records
 * from the sampling task go into the outbox first (fw_store), then out through fw_delivery
 * (logic/) over esp_http_client - HTTPS checked against the ESP-IDF certificate bundle. The
 * HTTP transport below is the device's side of fw_delivery's seam; the tests use a fake.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "esp_crt_bundle.h"
#include "esp_event.h"
#include "esp_heap_caps.h"
#include "esp_http_client.h"
#include "esp_log.h"
#include "esp_netif.h"
#include "esp_random.h"
#include "esp_sntp.h"
#include "esp_system.h"
#include "esp_task_wdt.h"
#include "esp_timer.h"
#include "esp_wifi.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "sdkconfig.h"

#include "fw_delivery.h"
#include "fw_port.h"
#include "powerlogger/retry.h"

static const char *TAG = "network";

static volatile int wifi_up;
static volatile int wifi_failures;
static volatile int64_t reconnect_at;   /* esp_timer time of the next association attempt */
static volatile int sntp_synced;        /* set by the SNTP callback, taken by the task */
static volatile int64_t sync_mono, sync_wall;

static struct fw_delivery delivery;     /* ~12 KB: static */

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
		wifi_up = 0;
		wifi_failures++;
		reconnect_at = esp_timer_get_time() + (int64_t)ms * 1000;
		ESP_LOGW(TAG, "wifi: disconnected (reason %d), retry in %.1f s", d->reason, ms / 1e3);
	} else if (base == IP_EVENT && id == IP_EVENT_STA_GOT_IP) {
		const ip_event_got_ip_t *e = data;

		ESP_LOGI(TAG, "wifi: got IP " IPSTR, IP2STR(&e->ip_info.ip));
		wifi_up = 1;
		wifi_failures = 0;
		reconnect_at = 0;
	}
}

static void wifi_start(void)
{
	wifi_init_config_t init = WIFI_INIT_CONFIG_DEFAULT();
	wifi_config_t sta = {0};

	ESP_ERROR_CHECK(esp_netif_init());
	ESP_ERROR_CHECK(esp_event_loop_create_default());
	esp_netif_create_default_wifi_sta();
	ESP_ERROR_CHECK(esp_wifi_init(&init));
	ESP_ERROR_CHECK(esp_event_handler_register(WIFI_EVENT, ESP_EVENT_ANY_ID, on_wifi, NULL));
	ESP_ERROR_CHECK(esp_event_handler_register(IP_EVENT, IP_EVENT_STA_GOT_IP, on_wifi, NULL));
	strncpy((char *)sta.sta.ssid, CONFIG_PL_WIFI_SSID, sizeof(sta.sta.ssid));
	strncpy((char *)sta.sta.password, CONFIG_PL_WIFI_PASSWORD, sizeof(sta.sta.password));
	ESP_ERROR_CHECK(esp_wifi_set_mode(WIFI_MODE_STA));
	ESP_ERROR_CHECK(esp_wifi_set_config(WIFI_IF_STA, &sta));
	ESP_ERROR_CHECK(esp_wifi_start());
	ESP_LOGI(TAG, "wifi: connecting to \"%s\"", CONFIG_PL_WIFI_SSID);
}

/* ---- SNTP ---------------------------------------------------------------------------- */

static void on_sntp(struct timeval *tv)
{
	sync_mono = esp_timer_get_time();
	sync_wall = (int64_t)tv->tv_sec * 1000000 + tv->tv_usec;
	sntp_synced = 1;
}

static void sntp_start(void)
{
	esp_sntp_setoperatingmode(ESP_SNTP_OPMODE_POLL);
	esp_sntp_setservername(0, "pool.ntp.org");
	sntp_set_time_sync_notification_cb(on_sntp);
	esp_sntp_init();
}

/* ---- HTTP transport (fw_delivery's seam) ---------------------------------------------- */

struct http_ctx {
	esp_http_client_handle_t client;
	struct fw_http_result *res;
	size_t msg_len;
};
static struct http_ctx http;

static esp_err_t on_http(esp_http_client_event_t *e)
{
	struct http_ctx *c = e->user_data;

	if (c->res == NULL)
		return ESP_OK;
	if (e->event_id == HTTP_EVENT_ON_HEADER && strcasecmp(e->header_key, "Retry-After") == 0) {
		c->res->retry_after_s = (uint32_t)strtoul(e->header_value, NULL, 10);
	} else if (e->event_id == HTTP_EVENT_ON_DATA && c->msg_len + 1 < sizeof(c->res->msg)) {
		size_t n = (size_t)e->data_len;

		if (n > sizeof(c->res->msg) - 1 - c->msg_len)
			n = sizeof(c->res->msg) - 1 - c->msg_len;
		memcpy(c->res->msg + c->msg_len, e->data, n);
		c->msg_len += n;
		c->res->msg[c->msg_len] = '\0';
	}
	return ESP_OK;
}

static int http_post(void *ctx, const char *body, size_t len, struct fw_http_result *res)
{
	struct http_ctx *c = ctx;
	esp_err_t err;

	c->res = res;
	c->msg_len = 0;
	esp_http_client_set_post_field(c->client, body, (int)len);
	err = esp_http_client_perform(c->client);
	if (err == ESP_OK) {
		res->transport = PL_XPORT_NONE;
		res->status = esp_http_client_get_status_code(c->client);
	} else if (err == ESP_ERR_HTTP_EAGAIN || err == ESP_ERR_TIMEOUT) {
		res->transport = PL_XPORT_TIMEOUT;
	} else if (err == ESP_ERR_HTTP_CONNECT) {
		res->transport = PL_XPORT_REFUSED; /* also DNS and TLS failures: logged below */
		snprintf(res->msg, sizeof(res->msg), "%s", esp_err_to_name(err));
	} else {
		res->transport = PL_XPORT_OTHER;
		snprintf(res->msg, sizeof(res->msg), "%s", esp_err_to_name(err));
	}
	if (err != ESP_OK)
		esp_http_client_close(c->client); /* a fresh connection next time */
	c->res = NULL;
	return 0;
}

static void http_open(void)
{
	static char url[384];
	esp_http_client_config_t cfg = {
		.url = url,
		.method = HTTP_METHOD_POST,
		.timeout_ms = 15000,
		.event_handler = on_http,
		.user_data = &http,
		.crt_bundle_attach = esp_crt_bundle_attach,
		.keep_alive_enable = true,
	};

#if CONFIG_PL_INFLUX_API_V1
	snprintf(url, sizeof(url), "%s/write?db=%s&precision=s", CONFIG_PL_INFLUX_URL,
		 CONFIG_PL_INFLUX_DB);
	if (CONFIG_PL_INFLUX_USER[0] != '\0') {
		cfg.username = CONFIG_PL_INFLUX_USER;
		cfg.password = CONFIG_PL_INFLUX_PASSWORD;
		cfg.auth_type = HTTP_AUTH_TYPE_BASIC;
	}
#elif CONFIG_PL_INFLUX_API_V2
	snprintf(url, sizeof(url), "%s/api/v2/write?org=%s&bucket=%s&precision=s",
		 CONFIG_PL_INFLUX_URL, CONFIG_PL_INFLUX_ORG, CONFIG_PL_INFLUX_BUCKET);
#else
	snprintf(url, sizeof(url), "%s/api/v3/write_lp?db=%s&precision=second",
		 CONFIG_PL_INFLUX_URL, CONFIG_PL_INFLUX_DB);
#endif
	http.client = esp_http_client_init(&cfg);
	esp_http_client_set_header(http.client, "Content-Type", "text/plain; charset=utf-8");
#if CONFIG_PL_INFLUX_API_V2 || CONFIG_PL_INFLUX_API_V3
	if (CONFIG_PL_INFLUX_TOKEN[0] != '\0') {
		static char auth[256];

#if CONFIG_PL_INFLUX_API_V2
		snprintf(auth, sizeof(auth), "Token %s", CONFIG_PL_INFLUX_TOKEN);
#else
		snprintf(auth, sizeof(auth), "Bearer %s", CONFIG_PL_INFLUX_TOKEN);
#endif
		esp_http_client_set_header(http.client, "Authorization", auth);
	}
#endif
}

/* ---- the task -------------------------------------------------------------------------- */

static void log_event(const struct fw_delivery_event *ev, size_t waiting)
{
	if (ev->action == PL_SINK_OK)
		ESP_LOGI(TAG, "influx: %lu record(s) written (HTTP %d), %u waiting",
			 (unsigned long)ev->lines, ev->status, (unsigned)waiting);
	else if (ev->action == PL_SINK_RETRY || ev->action == PL_SINK_NOTFOUND)
		ESP_LOGW(TAG, "influx: %s %d %s: %lu record(s) kept, retry in %.1f s",
			 ev->transport ? pl_sink_transport_name(ev->transport) : "HTTP", ev->status,
			 ev->msg, (unsigned long)ev->lines, ev->delay_ms / 1e3);
	else if (ev->action == PL_SINK_QUARANTINE)
		ESP_LOGW(TAG, "influx: 1 record quarantined: %s", ev->msg);
}

void fw_net_task(void *arg)
{
	struct fw_net_args *a = arg;
	struct fw_delivery_config dcfg = {
		.device = CONFIG_PL_DEVICE_NAME,
		.precision = PL_PREC_S,
		.max_batch = 0,
		.seed = esp_random(),
	};
	int64_t next_health = 0;

	esp_task_wdt_add(NULL);
	wifi_start();
	sntp_start();
	http_open();
	if (fw_delivery_init(&delivery, &dcfg, a->store, a->time, http_post, &http) != 0)
		ESP_LOGE(TAG, "delivery: bad configuration");

	for (;;) {
		int64_t now = esp_timer_get_time();
		struct fw_delivery_event ev;
		struct fw_record r;

		/* records into the outbox with the register they end with (fw_store_put_record);
		 * one the outbox refuses waits in the ring */
		while (fw_ring_peek(&g_records, &r) == 0 && fw_store_put_record(a->store, &r) == 0)
			fw_ring_pop(&g_records, &r);

		if (!wifi_up && reconnect_at && now >= reconnect_at) {
			reconnect_at = 0;
			esp_wifi_connect();
		}
		if (sntp_synced) {
			sntp_synced = 0;
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
		while (fw_delivery_step(&delivery, now / 1000, wifi_up, &ev) == 1) {
			log_event(&ev, fw_store_count(a->store));
			esp_task_wdt_reset();
		}
		if (now >= next_health) {
			ESP_LOGI(TAG, "health: heap free %u (min %u), stack left: sampling %u B, "
				 "network %u B; outbox %u, delivered %lu, quarantined %lu",
				 (unsigned)esp_get_free_heap_size(),
				 (unsigned)esp_get_minimum_free_heap_size(),
				 (unsigned)uxTaskGetStackHighWaterMark(a->sampling_task),
				 (unsigned)uxTaskGetStackHighWaterMark(NULL),
				 (unsigned)fw_store_count(a->store), (unsigned long)delivery.delivered,
				 (unsigned long)delivery.quarantined);
			next_health = now + 60 * 1000000LL;
		}
		esp_task_wdt_reset();
		vTaskDelay(pdMS_TO_TICKS(200));
	}
}
