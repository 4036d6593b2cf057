/* SPDX-License-Identifier: MIT */
/*
 * What the firmware's platform files share: the two rings between the tasks, the store, and
 * the task entry points. Everything here runs on the ESP32 only; the logic it drives is in
 * logic/ and is tested on the host.
 */
#ifndef FW_PORT_H
#define FW_PORT_H

#include <stdint.h>

#include "fw_ring.h"
#include "fw_store.h"
#include "fw_time.h"

/* A new time base, from the network task (which owns fw_time) to the sampling task. */
struct fw_timebase_msg {
	int64_t offset_us;  /* record time = esp_timer_get_time() + offset_us */
	uint32_t epoch;
	uint32_t reserved;
};

extern struct fw_ring g_records;   /* struct fw_record: sampling task -> network task */
extern struct fw_ring g_timebase;  /* struct fw_timebase_msg: network task -> sampling task */

/*
 * Opens the outbox on the "pllog" partition (mounting the flash log: the recovery after a
 * power cut), counts this boot (NVS), loads the earlier boots' time anchors into *t and the
 * last saved meter state into *meter (boot 0 if none). Returns 0 or a negative PL_E* code.
 */
int fw_store_flash_open(struct fw_store *s, struct fw_time *t, uint32_t *boot,
			struct fw_meter_state *meter);

void fw_sampling_task(void *arg);  /* pinned to core 1; arg: struct fw_sampling_args */
void fw_net_task(void *arg);       /* pinned to core 0; arg: struct fw_net_args */

struct fw_sampling_args {
	uint32_t boot;
	uint32_t reserved;
	struct fw_meter_state meter;    /* restored from the outbox; boot 0: none */
};

struct fw_net_args {
	struct fw_store *store;
	struct fw_time *time;
	uint32_t boot;
	void *sampling_task;            /* TaskHandle_t, for its stack high-water mark */
};

/* ---- the MQTT sink (mqtt.c; only with CONFIG_PL_MQTT_ENABLE) ---- */
struct fw_sink;
struct fw_mqtt;
struct pl_mqtt_diag;

/* Sets the sink up (client id, the broker's host, the event queue). 0 or negative (logged). */
int fw_net_mqtt_init(struct fw_sink *sink, struct fw_time *time);
/*
 * Waits up to ms for a client event (or sleeps ms when MQTT is not set up), feeds the events
 * to fw_mqtt and steps it. view: the detector's fields for P/M/diag (NULL: unknown).
 */
void fw_net_mqtt_poll(int net_up, uint32_t ms, const struct pl_mqtt_diag *view);
/* The sink's state for the console; NULL when not set up. */
const struct fw_mqtt *fw_net_mqtt(void);

#endif
