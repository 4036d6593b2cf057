/* SPDX-License-Identifier: MIT */
/*
 * The firmware's MQTT sink: the network task's state machine that publishes every interval
 * record from the outbox once, in order, with Home Assistant discovery (docs/mqtt.md, the
 * same messages as the daemon's, built by the core's powerlogger/mqttmsg.h).
 *
 *   IDLE --(network up, backoff over)--> CONNECTING --CONNECTED--> SYNC --token back-->
 *   DISCOVERY --PUBACK--> AVAILABILITY --PUBACK--> BACKLOG <--> LIVE
 *   any state --(disconnect, timeout, network down)--> IDLE (client stopped, backoff)
 *
 * Exactly once (QoS 1 alone is at least once): each record goes out as its interval message
 * (P/M/interval, QoS 1) followed at once by the retained state (P/M/state, QoS 1) of the same
 * record; both carry the mark {store id, flash seq}. The sink's cursor (fw_sinks.h) moves
 * past a record only when both PUBACKs are in. On every connection, before anything from the
 * backlog, the state machine subscribes to its meter's state topic and its private sync topic
 * P/sync/<client id>, publishes a token there and waits for it to come back: MQTT keeps one
 * connection's messages in order, so by then the broker has sent the retained state. A mark
 * with this store's id that is ahead of the cursor moves the cursor there, unpublished: the
 * broker already has those records (a PUBACK lost in a disconnect or a reboot, a cursor save
 * lost to a power cut). A mark behind the cursor (a broker that lost its retained state) is
 * ignored: what the cursor passed was acknowledged.
 *
 * esp-mqtt keeps unacknowledged QoS 1 messages in a RAM outbox and sends them again when its
 * client reconnects. That resend is not used: every connection is a fresh client (ops->start
 * after ops->stop, esp-mqtt's own reconnect off), so after a disconnect nothing goes out that
 * the mark logic has not decided. Events carry the connection's number; those of a stopped
 * client (still queued) are ignored.
 *
 * The residual window, documented rather than hidden: a disconnect (or reset) after the
 * broker took a record's interval message but before it took its state leaves the mark one
 * record behind, and that interval message is published again on the next connection.
 * Consumers that must not count twice drop an interval whose (store, seq) they have seen.
 * The marks are retained messages: a broker that loses them in a restart (mosquitto without
 * `persistence true`) can get the records whose PUBACKs the restart swallowed a second time.
 *
 * Publishing never blocks the caller (ops->publish queues: esp_mqtt_client_enqueue on the
 * device). Up to cfg.window records are in flight at a time. Records made before the clock
 * was set wait (fw_time_stamp); one that can never be stamped (an earlier boot that never
 * synced) or encoded is passed over, counted in `unpublishable`.
 *
 * The glue (ports/esp32/main/mqtt.c on the device, a fake client in tests/test_fw_mqtt.c)
 * calls fw_mqtt_event() for each client event and fw_mqtt_step() from the network task. Not
 * thread-safe: the network task owns it.
 */
#ifndef FW_MQTT_H
#define FW_MQTT_H

#include <stddef.h>
#include <stdint.h>

#include "fw_sinks.h"
#include "fw_time.h"
#include "powerlogger/mqttmsg.h"
#include "powerlogger/retry.h"

#define FW_MQTT_WINDOW 8          /* records in flight at most */
#define FW_MQTT_TOKEN_MAX 40

/* The client seam: esp-mqtt on the device, a fake in the tests. */
struct fw_mqtt_ops {
	/*
	 * Creates and starts a fresh client (no messages of an earlier one), with the Last Will
	 * "offline" (QoS 1, retained) on will_topic. Its events carry conn. 0 or negative.
	 */
	int (*start)(void *ctx, uint32_t conn, const char *will_topic);
	/* Stops and frees the client; its unsent and unacknowledged messages are gone. */
	void (*stop)(void *ctx);
	/*
	 * Queues a message without blocking. Returns the message id (> 0 for QoS 1; 0 for
	 * QoS 0) or negative (not connected, outbox full: try again later).
	 */
	int (*publish)(void *ctx, const char *topic, const char *data, size_t len, int qos,
		       int retain);
	/* Subscribes. The message id (>= 0) or negative. */
	int (*subscribe)(void *ctx, const char *topic, int qos);
	/* A line for the console (level 0 info, 1 warning, 2 error). May be NULL. */
	void (*log)(void *ctx, int level, const char *msg);
};

enum fw_mqtt_ev_type {
	FW_MQTT_EV_CONNECTED = 1,
	FW_MQTT_EV_DISCONNECTED,
	FW_MQTT_EV_PUBLISHED,     /* PUBACK of msg_id */
	FW_MQTT_EV_DATA,          /* a message on a subscribed topic */
	FW_MQTT_EV_ERROR,
};

struct fw_mqtt_event {
	enum fw_mqtt_ev_type type;
	uint32_t conn;            /* the connection (ops->start's conn) it belongs to */
	int msg_id;               /* PUBLISHED */
	const char *topic;        /* DATA: not NUL-terminated */
	size_t topic_len;
	const char *data;         /* DATA: the whole payload (a fragment is passed as ERROR) */
	size_t data_len;
};

enum fw_mqtt_state {
	FW_MQTT_IDLE = 0,
	FW_MQTT_CONNECTING,
	FW_MQTT_SYNC,
	FW_MQTT_DISCOVERY,
	FW_MQTT_AVAILABILITY,
	FW_MQTT_BACKLOG,
	FW_MQTT_LIVE,
};

struct fw_mqtt_config {
	struct pl_mqtt_node node;     /* prefixes, node_id (the client id), versions */
	struct pl_mqtt_meter meter;   /* the one meter of the device */
	uint32_t window;              /* 1..FW_MQTT_WINDOW records in flight; 0: the maximum */
	int32_t connect_timeout_ms;   /* 0: 20 s */
	int32_t sync_timeout_ms;      /* token back, and each PUBACK; 0: 20 s */
	int32_t diag_every_ms;        /* P/M/diag; 0: 60 s */
	uint32_t seed;                /* backoff jitter and sync tokens */
};

struct fw_mqtt_flight {
	uint32_t seq;
	int id_interval, id_state;    /* message ids; 0: not queued yet (state) */
	uint8_t got_interval, got_state;
	int64_t sent_ms;
};

struct fw_mqtt {
	struct fw_mqtt_config cfg;
	const struct fw_mqtt_ops *ops;
	void *ctx;
	struct fw_sink *sink;
	struct fw_time *time;
	enum fw_mqtt_state state;
	uint32_t conn;                /* the current connection's number */
	int64_t due_ms;               /* IDLE: backoff end; waiting states: the deadline */
	struct pl_backoff backoff;
	uint32_t rng;
	int ctl_id;                   /* DISCOVERY, AVAILABILITY: the PUBACK awaited */
	char token[FW_MQTT_TOKEN_MAX];
	uint64_t broker_seq;          /* this store's newest mark seen on the state topic */
	uint8_t broker_mark;          /* broker_seq is valid */
	uint8_t discovery_again;      /* HA said "online": publish discovery again */
	uint32_t nflight;
	struct fw_mqtt_flight flight[FW_MQTT_WINDOW];
	uint32_t last_queued;         /* the newest seq queued on this connection */
	int64_t next_diag_ms;
	uint64_t skipped_told;        /* sink->skipped already reported */
	struct pl_mqtt_diag diag;     /* the caller fills the detector's fields; backlog is ours */
	/* counters */
	uint32_t connects, failures;
	uint64_t published, by_mark, unpublishable;
	char msg[160];
	char t_state[PL_MQTT_TOPIC_MAX], t_interval[PL_MQTT_TOPIC_MAX];
	char t_diag[PL_MQTT_TOPIC_MAX], t_avail[PL_MQTT_TOPIC_MAX];
	char t_sync[PL_MQTT_TOPIC_MAX], t_disc[PL_MQTT_TOPIC_MAX], t_hastatus[PL_MQTT_TOPIC_MAX];
	char buf[PL_MQTT_DISCOVERY_MAX];
};

/*
 * Sets up the sink (cfg copied; the strings it points to, ops, sink and time are borrowed and
 * must outlive m). 0, or -PL_EINVAL (NULL arguments, a bad window, names the topics cannot
 * hold: m->msg says which).
 */
int fw_mqtt_init(struct fw_mqtt *m, const struct fw_mqtt_config *cfg,
		 const struct fw_mqtt_ops *ops, void *ctx, struct fw_sink *sink,
		 struct fw_time *time);

/* One event of the client. now_ms: the caller's monotonic clock. */
void fw_mqtt_event(struct fw_mqtt *m, const struct fw_mqtt_event *ev, int64_t now_ms);

/*
 * Does what is due at now_ms: connects when the network is up and the backoff is over,
 * notices timeouts, fills the window with records, publishes discovery again and the diag.
 * Returns 0, or a negative PL_E* code from the store.
 */
int fw_mqtt_step(struct fw_mqtt *m, int64_t now_ms, int net_up);

/* Milliseconds until a step has something to do without an event (for the caller's wait). */
int64_t fw_mqtt_wait_ms(const struct fw_mqtt *m, int64_t now_ms);

const char *fw_mqtt_state_name(enum fw_mqtt_state s);

/*
 * The host of an mqtt:// or mqtts:// URI into buf (what the device looks up before it starts a
 * client, so that the lookup never blocks the network task inside esp-mqtt's connect). *tls
 * (may be NULL) is set for mqtts://. 0, -PL_EINVAL (another scheme, no host, credentials in
 * the URI: they have their own settings) or -PL_ENOSPC.
 */
int fw_mqtt_uri_host(const char *uri, char *buf, size_t cap, int *tls);

#endif
