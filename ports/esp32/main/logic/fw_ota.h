/* SPDX-License-Identifier: MIT */
/*
 * Over-the-air update: the decisions that need no hardware (ota.c is the device's side, over
 * esp_https_ota and esp_ota_ops).
 *
 * Rollback. With CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE the bootloader starts a freshly written
 * image "pending verify". The image is on probation until the app says it is good
 * (esp_ota_mark_app_valid_cancel_rollback) or bad (esp_ota_mark_app_invalid_rollback_and_
 * reboot); a reset of any kind before either - a crash loop, the task watchdog, a power cut -
 * makes the bootloader boot the previous image again. The proof asked of an image here is the
 * job it is for: one record delivered after boot, an InfluxDB 2xx or an MQTT PUBACK. A boot
 * or a WiFi connection alone proves little (an image that cannot build a request, or fails
 * TLS, boots and connects fine).
 *
 * When to give up: after verify_ms (PL_OTA_VERIFY_MIN) *with network* (the WiFi station has an
 * address) and no delivery. Time without network does not count: a house whose WiFi or router
 * is down has not shown that the image is bad, and the previous image could not deliver
 * either, so rolling back would trade a probably good new image for nothing. But an image that
 * breaks WiFi itself would then stay for ever, out of reach of any further update; so there is
 * a second, long limit (give_up_ms, hours) after which a pending image is rolled back whatever
 * the network did. The worst case of that limit is a good image rolled back after a long
 * outage: the old, valid image runs again, the records stay in the outbox either way, and the
 * update can be pushed again.
 *
 * While an image is pending no update is started: the other slot holds the image a rollback
 * would return to (and ESP-IDF refuses esp_ota_begin then, ESP_ERR_OTA_ROLLBACK_INVALID_STATE).
 *
 * Checks of an image before it is written (fw_ota_check_url, fw_ota_check_image): https://
 * only unless http:// is allowed in the configuration (esp_https_ota accepts either as long as
 * a certificate bundle is attached, so this is the one place that refuses it); no credentials
 * in the URL (it is logged); the same version as the running one, an older one, or the one
 * that was rolled back from, only when forced; another project's image never.
 *
 * Plain data; the network task owns struct fw_ota (ota.c's poll runs in it).
 */
#ifndef FW_OTA_H
#define FW_OTA_H

#include <stddef.h>
#include <stdint.h>

/* ESP-IDF's esp_ota_img_states_t, by value (ota.c checks them against the real ones) */
#define FW_OTA_IMG_NEW            0x0u
#define FW_OTA_IMG_PENDING_VERIFY 0x1u
#define FW_OTA_IMG_VALID          0x2u
#define FW_OTA_IMG_INVALID        0x3u
#define FW_OTA_IMG_ABORTED        0x4u
#define FW_OTA_IMG_UNDEFINED      0xFFFFFFFFu

#define FW_OTA_URL_MAX 256        /* with the NUL */
#define FW_OTA_VERSION_MAX 32     /* esp_app_desc_t.version, with the NUL */
#define FW_OTA_SINKS 2           /* FW_CURSORS_MAX (ota.c checks) */
#define FW_OTA_FIRST_CHECK_MS 30000 /* the check at boot: this long after the network is up */

enum fw_ota_image {
	FW_OTA_UNTRACKED = 0,     /* no OTA state for the running image (flashed over USB, or
				   * no otadata yet): nothing to verify, updates allowed */
	FW_OTA_PENDING,           /* first boot of an update: on probation */
	FW_OTA_VALID,             /* confirmed (here or in an earlier boot) */
};

/*
 * What the running image is, from esp_ota_get_state_partition() on the running partition:
 * have_state 0 when that failed (ESP_ERR_NOT_FOUND: no otadata entry for it).
 */
enum fw_ota_image fw_ota_image_state(int have_state, uint32_t img_state);
const char *fw_ota_image_name(enum fw_ota_image image);

struct fw_ota_config {
	uint32_t verify_ms;       /* this long with network and no delivery: roll back (> 0) */
	uint32_t give_up_ms;      /* this long after boot and no delivery: roll back; 0 never */
	uint32_t check_ms;        /* between update checks; 0: only the one at boot */
	uint8_t has_sink;         /* InfluxDB or MQTT configured; none: the network is the proof */
};

enum fw_ota_action {
	FW_OTA_NONE = 0,
	FW_OTA_MARK_VALID,        /* esp_ota_mark_app_valid_cancel_rollback() */
	FW_OTA_ROLL_BACK,         /* esp_ota_mark_app_invalid_rollback_and_reboot() */
	FW_OTA_CHECK,             /* time to look for an update (if a URL is set) */
};

struct fw_ota {
	struct fw_ota_config cfg;
	enum fw_ota_image image;
	int64_t boot_ms;          /* monotonic ms of fw_ota_init */
	int64_t last_ms;          /* the previous fw_ota_step */
	int64_t net_ms;           /* time with network while pending */
	int64_t next_check_ms;    /* -1: none planned */
	int64_t first_net_ms;     /* when the network was first up (-1: not yet) */
	uint64_t deliveries;      /* records delivered since boot */
	uint8_t decided;          /* MARK_VALID or ROLL_BACK was returned */
	struct {                  /* the sinks as last seen (fw_ota_sink_seen) */
		uint32_t cursor;
		uint64_t other;
		uint8_t valid;
	} sink[FW_OTA_SINKS];
	char why[128];            /* the last decision's reason, for the log and the console */
};

/* cfg copied. now_ms: monotonic. */
void fw_ota_init(struct fw_ota *o, const struct fw_ota_config *cfg, enum fw_ota_image image,
		 int64_t now_ms);
/* records acknowledged by a sink (InfluxDB's 2xx: fw_delivery's delivered going up). */
void fw_ota_note_delivery(struct fw_ota *o, uint64_t records);
/*
 * Sink i's cursor over the outbox (fw_sinks: i < FW_OTA_SINKS), once per network loop, with
 * the sum of the counters of the other ways a cursor moves: records quarantined (an InfluxDB
 * 4xx), skipped for room, and for MQTT found on the broker by their marks or passed over as
 * unpublishable. A cursor that moved while that sum did not moved because the server
 * acknowledged the records (fw_delivery's 2xx, fw_mqtt's PUBACK): that counts as a delivery.
 * Returns 1 if it counted one. The first call for a sink only takes its base line. (A loop in
 * which an acknowledgement and another move both happen is not counted; the next one is.)
 */
int fw_ota_sink_seen(struct fw_ota *o, unsigned i, uint32_t cursor, uint64_t other_moves);
/* What to do now; net_up: the WiFi station has an address. Sets o->why for the actions. */
enum fw_ota_action fw_ota_step(struct fw_ota *o, int64_t now_ms, int net_up);
/* An update may be written now (not while pending verify). */
int fw_ota_may_update(const struct fw_ota *o);

/*
 * url: an update's address. 0, or -PL_EINVAL with the reason in why (never the URL's
 * password: a URL with credentials is refused without printing them).
 */
int fw_ota_check_url(const char *url, int allow_http, char *why, size_t cap);

#define FW_OTA_FORCE 1u           /* fw_ota_check_image: same, older or rolled-back version */
#define FW_OTA_AUTO 2u            /* the periodic check: only a version known to be newer */

enum fw_ota_verdict {
	FW_OTA_GO = 0,            /* write it */
	FW_OTA_FOREIGN,           /* another project's image (never, forced or not) */
	FW_OTA_SAME,              /* the running version */
	FW_OTA_OLDER,             /* older than the running one */
	FW_OTA_FAILED_BEFORE,     /* the version that was rolled back from */
	FW_OTA_BAD_DESC,          /* an empty or unterminated version or name */
	FW_OTA_UNORDERED,         /* FW_OTA_AUTO: not known to be newer (push it by hand) */
};

/*
 * The image's own description (esp_https_ota_get_img_desc: project_name, version) against
 * the running one; failed: the version the bootloader rolled back from (the other slot's,
 * when its state is INVALID or ABORTED), NULL or "" for none. Returns a verdict, the reason in
 * why (also for FW_OTA_GO: what was compared). Versions are compared as
 * [v]MAJOR[.MINOR[.PATCH[.TWEAK]]][-N-gHASH][-dirty] (git describe); where either is not of
 * that form (an untagged tree's bare hash), only "the same" can be told: a pushed update of a
 * different one is written, the periodic check (FW_OTA_AUTO) leaves it, so that an old image
 * left on the server never replaces a newer one flashed over USB.
 */
enum fw_ota_verdict fw_ota_check_image(const char *run_project, const char *run_version,
				       const char *new_project, const char *new_version,
				       const char *failed, unsigned flags, char *why, size_t cap);
/* -1, 0, 1 as a is older, the same, newer than b; -2 when they cannot be ordered (different) */
int fw_ota_version_cmp(const char *a, const char *b);

/*
 * When to restart into a new image (or back into the old one): just after an interval's
 * record has gone from the ring into the flash outbox, so that the restart costs the register
 * only the pulses of a fraction of a second, not of an open interval (a restart is a power cut
 * to the meter). fw_ota_restart_ask at the request; fw_ota_restart_due in each network loop
 * with the ring's pop count and fill: 1 once a record was popped since the request and the
 * ring is empty; or, with no record coming (the sampling task stuck), once the ring is empty
 * and a whole interval + 5 s (at most FW_OTA_RESTART_WAIT_MAX_MS) has passed; or, whatever the
 * ring holds (a full outbox refusing records), twice that.
 */
#define FW_OTA_RESTART_WAIT_MAX_MS (15 * 60000)
struct fw_ota_restart {
	int64_t asked_ms;
	uint32_t popped;
	uint8_t asked;
};

void fw_ota_restart_ask(struct fw_ota_restart *r, int64_t now_ms, uint32_t popped);
int fw_ota_restart_due(const struct fw_ota_restart *r, int64_t now_ms, uint32_t popped,
		       uint32_t in_ring, uint32_t interval_ms);

/* Progress of a download: a report at every 10 %, or every 128 KB when the size is unknown. */
struct fw_ota_progress {
	int64_t total;            /* bytes; <= 0 unknown */
	int64_t next;             /* the next report at this many bytes */
	int pct;                  /* the last percent reported (-1: none; unknown size: -1) */
};

void fw_ota_progress_init(struct fw_ota_progress *p, int64_t total);
/* done: bytes so far. 1 when this is worth a report (then p->pct is the percent, or -1 with
 * an unknown size), else 0. The end (done == total) is always reported once. */
int fw_ota_progress(struct fw_ota_progress *p, int64_t done);

#endif
