/* SPDX-License-Identifier: MIT */
/*
 * Over-the-air update with rollback: the device's side of logic/fw_ota.h, over esp_https_ota
 * (the advanced API: begin, the image's description checked before a byte is written,
 * perform, finish) and esp_ota_ops.
 *
 * Where it runs. The download runs in a task of its own, made for it and deleted after it
 * ("ota", 8 KB of stack from the heap while it lives, priority 3 on core 0, under the network
 * task's 5; the sampling task keeps core 1). Not in the network task: esp_https_ota_begin
 * resolves the name, connects and does the TLS handshake in one call, which can block for
 * longer than the task watchdog's 10 s (lwIP waits 7 s per DNS server that does not answer),
 * and the records must go on being stored and delivered during a download of a minute or two.
 * The task is not subscribed to the task watchdog, so nothing needs feeding; a stalled server
 * ends each read after HTTP_TIMEOUT_MS and the update with it. The network task only calls
 * fw_ota_poll() (net.c), which never blocks: it marks the image valid or rolls it back when
 * fw_ota says so, starts the periodic check, and does the restart.
 *
 * The flash. esp_https_ota writes into esp_ota_get_next_update_partition(): the app slot not
 * running, never "pllog" (the outbox, the register, the time anchors) nor "nvs" (the boot
 * counter, the settings); fw_ota_boot() checks that the slot and pllog do not overlap and
 * turns updates off if they do. The slot is erased sector by sector as it is written (no bulk
 * erase: that would stop both cores' caches for some 20 s at once), with a pause after each
 * 1 KB, so that the sampling task gets its CPU between the erases (each stops the caches for
 * ~45 ms, as an erase of the outbox does; the ADC pool holds 102 ms).
 *
 * Memory: a second TLS connection beside InfluxDB's (mbedTLS's buffers, ~40 KB of heap) and
 * esp_https_ota's 1 KB buffer, while it runs; the update is refused, and said so, when the heap
 * has less than OTA_HEAP_MIN free. The state (struct ota_state, ~1 KB) is heap, taken once at
 * boot; the only static is the pointer to it.
 *
 * The restart into a written image, and a rollback's, wait for the next interval's record to
 * be in the outbox (fw_ota_restart_due): a restart is a power cut to the meter, and this way it
 * costs the register a fraction of a second of pulses, not an interval's.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esp_log.h"
#include "sdkconfig.h"

#include "ota.h"
#include "powerlogger/common.h"

static const char *TAG = "ota";

#if CONFIG_IDF_TARGET_LINUX

/* ESP-IDF has no app_update or esp_https_ota on the linux target: nothing to update. */
void fw_ota_boot(const char *url)
{
	(void)url;
	ESP_LOGI(TAG, "no over-the-air update on the linux target");
}

void fw_ota_poll(int64_t now_ms, int net_up, const struct fw_sinks *sinks)
{
	(void)now_ms;
	(void)net_up;
	(void)sinks;
}

int fw_ota_start(const char *url)
{
	(void)url;
	ESP_LOGE(TAG, "update: not on the linux target");
	return -PL_ENOENT;
}

int fw_ota_start_forced(const char *url)
{
	return fw_ota_start(url);
}

void fw_ota_status(char *buf, size_t cap)
{
	snprintf(buf, cap, "ota: not on the linux target");
}

#else /* a real chip */

#include "esp_app_desc.h"
#include "esp_crt_bundle.h"
#include "esp_heap_caps.h"
#include "esp_http_client.h"
#include "esp_https_ota.h"
#include "esp_ota_ops.h"
#include "esp_partition.h"
#include "esp_system.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"

#include "fw_mqtt.h"
#include "fw_ota.h"
#include "fw_port.h"
#include "fw_sinks.h"

_Static_assert(FW_OTA_IMG_NEW == ESP_OTA_IMG_NEW &&
	       FW_OTA_IMG_PENDING_VERIFY == ESP_OTA_IMG_PENDING_VERIFY &&
	       FW_OTA_IMG_VALID == ESP_OTA_IMG_VALID && FW_OTA_IMG_INVALID == ESP_OTA_IMG_INVALID &&
	       FW_OTA_IMG_ABORTED == ESP_OTA_IMG_ABORTED &&
	       FW_OTA_IMG_UNDEFINED == ESP_OTA_IMG_UNDEFINED,
	       "ESP-IDF's esp_ota_img_states_t changed: update fw_ota.h");
_Static_assert(FW_OTA_SINKS == FW_CURSORS_MAX, "fw_ota must see every sink");
_Static_assert(FW_OTA_VERSION_MAX == sizeof(((esp_app_desc_t *)0)->version) &&
	       FW_OTA_VERSION_MAX == sizeof(((esp_app_desc_t *)0)->project_name),
	       "esp_app_desc_t's names changed: update fw_ota.h");

#ifndef CONFIG_PL_OTA_VERIFY_MIN
#error "main/Kconfig.ota is not read: rsource it in main/Kconfig.projbuild's PowerLogger menu"
#endif

#define OTA_STACK 8192
#define OTA_PRIO 3
#define OTA_HEAP_MIN (60 * 1024)        /* free heap to start: a TLS connection and margin */
#define OTA_BLOCK_MIN (20 * 1024)       /* largest free block: mbedTLS's 16 KB input buffer */
#define HTTP_TIMEOUT_MS 10000
#define PAUSE_MS 10                     /* after each 1 KB written: see the top */
#if CONFIG_PL_OTA_ALLOW_HTTP
#define ALLOW_HTTP 1
#else
#define ALLOW_HTTP 0
#endif
#if CONFIG_PL_INFLUX_ENABLE || CONFIG_PL_MQTT_ENABLE
#define HAS_SINK 1
#else
#define HAS_SINK 0
#endif

struct ota_state {
	struct fw_ota o;                /* the network task's (fw_ota_poll) */
	struct fw_ota_restart restart;  /* the network task's */
	const esp_partition_t *running, *next;
	atomic_int image;               /* o.image, for the console's task */
	atomic_int busy;                /* the ota task runs */
	atomic_int written;             /* it has written and verified an image: restart */
	atomic_int pct;                 /* its progress (-1: none or the size is unknown) */
	atomic_int rollback;            /* fw_ota said roll back: at the restart */
	unsigned job_flags;             /* FW_OTA_FORCE */
	int job_check;                  /* the periodic check (a quieter log when up to date) */
	char url[FW_OTA_URL_MAX];       /* the configured one ("" none) */
	char job_url[FW_OTA_URL_MAX];   /* the one the ota task fetches (written before it runs) */
	char failed[FW_OTA_VERSION_MAX]; /* the version rolled back from ("" none) */
	char last[160];                 /* the last update's outcome, for fw_ota_status */
};

static struct ota_state *ota_st;        /* heap, from fw_ota_boot */

static const char *slot_name(const esp_partition_t *p)
{
	return p != NULL ? p->label : "?";
}

static void say_outcome(struct ota_state *s, int error, const char *fmt, const char *why)
{
	snprintf(s->last, sizeof(s->last), fmt, why);
	if (error)
		ESP_LOGE(TAG, "%s", s->last);
	else
		ESP_LOGI(TAG, "%s", s->last);
}

/* ---- the download (its own task) ---- */

static void ota_task(void *arg)
{
	struct ota_state *s = arg;
	const esp_app_desc_t *run = esp_app_get_description();
	esp_http_client_config_t http = {
		.url = s->job_url,
		.timeout_ms = HTTP_TIMEOUT_MS,
		.crt_bundle_attach = esp_crt_bundle_attach,
		.keep_alive_enable = true,
		.buffer_size_tx = 1024,          /* the request line holds the URL (255 bytes) */
	};
	esp_https_ota_config_t cfg = {
		.http_config = &http,
		.bulk_flash_erase = false,       /* sector by sector: see the top */
	};
	esp_https_ota_handle_t h = NULL;
	struct fw_ota_progress prog;
	esp_app_desc_t desc;
	char why[160];
	esp_err_t err;
	int verdict;

	ESP_LOGI(TAG, "update: fetching %s into %s (heap free %u)", s->job_url,
		 slot_name(s->next), (unsigned)esp_get_free_heap_size());
	err = esp_https_ota_begin(&cfg, &h);
	if (err != ESP_OK) {
		say_outcome(s, 1, "update: cannot fetch the image: %s", esp_err_to_name(err));
		goto out;
	}
	err = esp_https_ota_get_img_desc(h, &desc);
	if (err != ESP_OK) {
		say_outcome(s, 1, "update: the file is no app image (%s)", esp_err_to_name(err));
		esp_https_ota_abort(h);
		goto out;
	}
	verdict = fw_ota_check_image(run->project_name, run->version, desc.project_name,
				     desc.version, s->failed,
				     s->job_flags | (s->job_check ? FW_OTA_AUTO : 0u), why,
				     sizeof(why));
	if (verdict != FW_OTA_GO) {
		/* the periodic check's usual answer: not worth a warning */
		if (s->job_check && verdict == FW_OTA_SAME)
			say_outcome(s, 0, "update: none (%s)", why);
		else
			say_outcome(s, 1, "update: not written: %s", why);
		esp_https_ota_abort(h);
		goto out;
	}
	fw_ota_progress_init(&prog, esp_https_ota_get_image_size(h));
	ESP_LOGI(TAG, "update: writing %s, %d bytes, into %s at 0x%lx", why,
		 esp_https_ota_get_image_size(h), slot_name(s->next),
		 (unsigned long)(s->next != NULL ? s->next->address : 0));
	while ((err = esp_https_ota_perform(h)) == ESP_ERR_HTTPS_OTA_IN_PROGRESS) {
		int done = esp_https_ota_get_image_len_read(h);

		if (fw_ota_progress(&prog, done)) {
			atomic_store(&s->pct, prog.pct);
			if (prog.pct >= 0)
				ESP_LOGI(TAG, "update: %d %% (%d bytes)", prog.pct, done);
			else
				ESP_LOGI(TAG, "update: %d KB", done / 1024);
		}
		vTaskDelay(pdMS_TO_TICKS(PAUSE_MS));
	}
	if (err != ESP_OK || !esp_https_ota_is_complete_data_received(h)) {
		say_outcome(s, 1, "update: the download broke off (%s); the running image stays",
			    esp_err_to_name(err != ESP_OK ? err : ESP_FAIL));
		esp_https_ota_abort(h);
		goto out;
	}
	/* checks the image (its SHA-256, the chip) and makes it the one to boot */
	err = esp_https_ota_finish(h);
	if (err != ESP_OK) {
		say_outcome(s, 1, "update: the image failed its check (%s); the running image "
			    "stays", esp_err_to_name(err));
		goto out;
	}
	snprintf(why, sizeof(why), "%.31s", desc.version);
	say_outcome(s, 0, "update: version %s written and checked; restarting into it once the "
		    "open interval is in the outbox", why);
	atomic_store(&s->pct, 100);
	atomic_store(&s->written, 1);
out:
	atomic_store(&s->busy, 0);
	vTaskDelete(NULL);
}

static int start_job(struct ota_state *s, const char *url, unsigned flags, int check)
{
	char why[160];

	if (fw_ota_check_url(url, ALLOW_HTTP, why, sizeof(why)) < 0) {
		ESP_LOGE(TAG, "update: %s", why);
		return -PL_EINVAL;
	}
	if (atomic_load(&s->image) == FW_OTA_PENDING) {
		ESP_LOGW(TAG, "update: not while this image is on probation (nothing delivered "
			 "yet): the other slot holds the image a rollback returns to");
		return -PL_EBUSY;
	}
	if (atomic_exchange(&s->busy, 1) != 0) {
		ESP_LOGW(TAG, "update: one is running already");
		return -PL_EBUSY;
	}
	if (atomic_load(&s->written) || atomic_load(&s->rollback)) {
		atomic_store(&s->busy, 0);
		ESP_LOGW(TAG, "update: the device is about to restart");
		return -PL_EBUSY;
	}
	if (esp_get_free_heap_size() < OTA_HEAP_MIN ||
	    heap_caps_get_largest_free_block(MALLOC_CAP_8BIT) < OTA_BLOCK_MIN) {
		atomic_store(&s->busy, 0);
		ESP_LOGE(TAG, "update: not enough heap for a second TLS connection (%u free, "
			 "largest block %u; needs %u and %u)", (unsigned)esp_get_free_heap_size(),
			 (unsigned)heap_caps_get_largest_free_block(MALLOC_CAP_8BIT),
			 (unsigned)OTA_HEAP_MIN, (unsigned)OTA_BLOCK_MIN);
		return -PL_ENOMEM;
	}
	strcpy(s->job_url, url); /* fits: fw_ota_check_url */
	s->job_flags = flags;
	s->job_check = check;
	atomic_store(&s->pct, -1);
	if (xTaskCreatePinnedToCore(ota_task, "ota", OTA_STACK, s, OTA_PRIO, NULL, 0) != pdPASS) {
		atomic_store(&s->busy, 0);
		ESP_LOGE(TAG, "update: no memory for its task (%u B of stack)", OTA_STACK);
		return -PL_ENOMEM;
	}
	return 0;
}

int fw_ota_start(const char *url)
{
	if (ota_st == NULL)
		return -PL_ENOENT;
	return start_job(ota_st, url, 0, 0);
}

int fw_ota_start_forced(const char *url)
{
	if (ota_st == NULL)
		return -PL_ENOENT;
	return start_job(ota_st, url, FW_OTA_FORCE, 0);
}

/* ---- boot ---- */

static int overlaps(const esp_partition_t *a, const esp_partition_t *b)
{
	return a != NULL && b != NULL && a->address < b->address + b->size &&
	       b->address < a->address + a->size;
}

void fw_ota_boot(const char *url)
{
	const struct fw_ota_config cfg = {
		.verify_ms = CONFIG_PL_OTA_VERIFY_MIN * 60000u,
		.give_up_ms = CONFIG_PL_OTA_GIVE_UP_H * 3600000u,
		.check_ms = CONFIG_PL_OTA_CHECK_H * 3600000u,
		.has_sink = HAS_SINK,
	};
	const esp_app_desc_t *run = esp_app_get_description();
	const esp_partition_t *pllog, *bad;
	struct ota_state *s = calloc(1, sizeof(*s));
	esp_ota_img_states_t st = ESP_OTA_IMG_UNDEFINED;
	enum fw_ota_image image;
	esp_app_desc_t d;
	char why[160];

	if (s == NULL) {
		ESP_LOGE(TAG, "no memory for the update's state (%u B): no updates this boot; a "
			 "new image stays pending and is rolled back at the next reset",
			 (unsigned)sizeof(*s));
		return;
	}
	s->running = esp_ota_get_running_partition();
	s->next = esp_ota_get_next_update_partition(NULL);
	image = fw_ota_image_state(esp_ota_get_state_partition(s->running, &st) == ESP_OK,
				   (uint32_t)st);
	fw_ota_init(&s->o, &cfg, image, esp_timer_get_time() / 1000);
	atomic_store(&s->image, image);
	atomic_store(&s->pct, -1);
	bad = esp_ota_get_last_invalid_partition();
	if (bad != NULL && esp_ota_get_partition_description(bad, &d) == ESP_OK)
		snprintf(s->failed, sizeof(s->failed), "%.31s", d.version);
	ESP_LOGI(TAG, "running %s at 0x%lx: %s version %s, %s", slot_name(s->running),
		 (unsigned long)(s->running != NULL ? s->running->address : 0), run->project_name,
		 run->version, fw_ota_image_name(image));
	if (image == FW_OTA_PENDING && CONFIG_PL_OTA_GIVE_UP_H > 0)
		ESP_LOGW(TAG, "first boot of this update: it is kept once it has delivered a "
			 "record; rolled back after %d min with network and no delivery, or %d h "
			 "after boot, or at any reset before", CONFIG_PL_OTA_VERIFY_MIN,
			 CONFIG_PL_OTA_GIVE_UP_H);
	else if (image == FW_OTA_PENDING)
		ESP_LOGW(TAG, "first boot of this update: it is kept once it has delivered a "
			 "record; rolled back after %d min with network and no delivery, or at any "
			 "reset before", CONFIG_PL_OTA_VERIFY_MIN);
	if (s->failed[0] != '\0')
		ESP_LOGW(TAG, "version %s in %s was rolled back from; it is not fetched again "
			 "unless forced", s->failed, slot_name(bad));

	pllog = esp_partition_find_first(ESP_PARTITION_TYPE_DATA, (esp_partition_subtype_t)0x40,
					 "pllog");
	if (s->next == NULL || overlaps(s->next, pllog) || s->next == s->running) {
		ESP_LOGE(TAG, "no second app slot apart from \"pllog\" (flash partitions.csv with "
			 "ota_0 and ota_1): updates are off");
		s->next = NULL;
		atomic_store(&s->busy, 1); /* never cleared: start_job refuses */
	}
	if (url != NULL && url[0] != '\0') {
		if (fw_ota_check_url(url, ALLOW_HTTP, why, sizeof(why)) == 0) {
			strcpy(s->url, url);
			ESP_LOGI(TAG, "checks %s after boot, then every %d h (0: never)", s->url,
				 CONFIG_PL_OTA_CHECK_H);
		} else {
			ESP_LOGE(TAG, "the update URL is not used: %s", why);
		}
	}
	ota_st = s;
}

/* ---- the network task's poll ---- */

static void mark_valid(struct ota_state *s)
{
	esp_err_t err = esp_ota_mark_app_valid_cancel_rollback();

	if (err == ESP_OK)
		ESP_LOGI(TAG, "this image is kept (%s)", s->o.why);
	else
		ESP_LOGE(TAG, "cannot mark this image valid (%s): a reset will roll it back",
			 esp_err_to_name(err));
	atomic_store(&s->image, s->o.image);
}

static void restart_now(struct ota_state *s)
{
	esp_err_t err;

	if (!atomic_load(&s->rollback)) {
		ESP_LOGI(TAG, "restarting into the new image");
		esp_restart();
	}
	ESP_LOGW(TAG, "rolling back (%s)", s->o.why);
	err = esp_ota_mark_app_invalid_rollback_and_reboot();
	/* only back here if there is no image to go back to: keep this one, it is all there is */
	ESP_LOGE(TAG, "cannot roll back (%s): no other image; keeping this one",
		 esp_err_to_name(err));
	atomic_store(&s->rollback, 0);
	s->restart.asked = 0;
	esp_ota_mark_app_valid_cancel_rollback();
	s->o.image = FW_OTA_VALID;
	atomic_store(&s->image, FW_OTA_VALID);
}

void fw_ota_poll(int64_t now_ms, int net_up, const struct fw_sinks *sinks)
{
	struct ota_state *s = ota_st;
	uint32_t i;

	if (s == NULL)
		return;
	for (i = 0; sinks != NULL && i < sinks->n; i++) {
		const struct fw_sink *k = &sinks->sink[i];
		uint64_t other = k->skipped + k->quarantined;

#if CONFIG_PL_MQTT_ENABLE
		if (k->kind == FW_SINK_MQTT && fw_net_mqtt() != NULL)
			other += fw_net_mqtt()->by_mark + fw_net_mqtt()->unpublishable;
#endif
		fw_ota_sink_seen(&s->o, i, k->cursor, other);
	}
	switch (fw_ota_step(&s->o, now_ms, net_up)) {
	case FW_OTA_MARK_VALID:
		mark_valid(s);
		break;
	case FW_OTA_ROLL_BACK:
		ESP_LOGW(TAG, "this image is given up: %s; rolling back once the open interval is "
			 "in the outbox", s->o.why);
		atomic_store(&s->rollback, 1);
		break;
	case FW_OTA_CHECK:
		if (s->url[0] != '\0' && !atomic_load(&s->busy))
			start_job(s, s->url, 0, 1);
		break;
	default:
		break;
	}
	if ((atomic_load(&s->written) || atomic_load(&s->rollback)) && !s->restart.asked)
		fw_ota_restart_ask(&s->restart, now_ms, (uint32_t)atomic_load(&g_records.tail));
	if (s->restart.asked &&
	    fw_ota_restart_due(&s->restart, now_ms, (uint32_t)atomic_load(&g_records.tail),
			       fw_ring_count(&g_records), CONFIG_PL_INTERVAL_S * 1000u))
		restart_now(s);
}

void fw_ota_status(char *buf, size_t cap)
{
	struct ota_state *s = ota_st;
	const esp_app_desc_t *run = esp_app_get_description();
	int n;

	if (s == NULL) {
		snprintf(buf, cap, "ota: off (no memory at boot)");
		return;
	}
	n = snprintf(buf, cap, "ota: %s, version %s, %s", slot_name(s->running), run->version,
		     fw_ota_image_name((enum fw_ota_image)atomic_load(&s->image)));
	if (n < 0 || (size_t)n >= cap)
		return;
	if (atomic_load(&s->busy) && s->next != NULL)
		snprintf(buf + n, cap - (size_t)n, "; updating %s: %d %%", s->job_url,
			 atomic_load(&s->pct));
	else if (s->last[0] != '\0')
		snprintf(buf + n, cap - (size_t)n, "; %s", s->last);
}

#endif /* CONFIG_IDF_TARGET_LINUX */
