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
 * backlog, the state machine subscribes to its meter's state topic, its meter's interval topic
 * and its private sync topic P/sync/<client id>, publishes a token there and waits for it to
 * come back: MQTT keeps one connection's messages in order, so by then the broker has sent the
 * retained state and every interval echo it kept for this client (below). A mark with this
 * store's id that is ahead of the cursor moves the cursor there, unpublished: the broker
 * already has those records (a PUBACK lost in a disconnect or a reboot, a cursor save lost to
 * a power cut). A mark behind the cursor (a broker that lost its retained state) is ignored:
 * what the cursor passed was acknowledged.
 *
 * The interval/state window closed (the daemon's scheme, src/linux/sinks/mqtt.h): the client
 * uses a persistent session (clean session off) and is subscribed to its own P/M/interval
 * (QoS 1), so every interval message the broker took comes back as an echo - live, or, when
 * the connection went away before it was delivered, queued in the session and delivered at
 * the next connection, after a reboot of the device or a restart of a broker that saves its
 * sessions (mosquitto's `persistence true`) too. The newest echo of this store (echo_seq) is
 * kept for the life of the object, across connections (never reset on connect), and is taken
 * from any connection's events, also a stopped one's: what the broker forwarded, it has. At
 * the token the cursor moves to the newer of the mark and the echo. So a cut, a broker
 * restart or a reboot between an interval message and its state no longer publishes that
 * interval a second time. The session holds nothing that could come back otherwise: the
 * broker keeps no state of the QoS 1 messages a client sent it, and every connection is a
 * fresh client with no messages of its own to resend (below).
 *
 * What remains, documented rather than hidden: (1) a broker that loses its state in a restart
 * (mosquitto without `persistence true`, or killed before it saved) loses the retained marks
 * and the session's queued echoes: the records whose PUBACKs the restart swallowed can come a
 * second time (at most the window). (2) An echo already handed to this object lives only in
 * its RAM: a reset after the echo of an interval came back but before the broker took its
 * state (the two messages leave back to back, the echo needs a round trip: a narrow window)
 * publishes that interval again after the reboot. (3) An event esp-mqtt acknowledged but the
 * device's event queue had no room for (mqtt.c counts and logs them) is an echo not seen.
 * Consumers that must not count twice drop an interval whose (store, seq) they have seen.
 *
 * esp-mqtt keeps unacknowledged QoS 1 messages in a RAM outbox and sends them again when its
 * client reconnects. That resend is not used: every connection is a fresh client (ops->start
 * after ops->stop, esp-mqtt's own reconnect off), so after a disconnect nothing goes out that
 * the mark logic has not decided. Events carry the connection's number; those of a stopped
 * client (still queued) are ignored, interval echoes excepted (above).
 *
 * Publishing never blocks the caller (ops->publish queues: esp_mqtt_client_enqueue on the
 * device). Up to cfg.window records are in flight at a time. Records made before the clock
 * was set wait (fw_time_stamp); one that can never be stamped (an earlier boot that never
 * synced) or encoded is passed over, counted in `unpublishable`.
 *
 * RAM (the firmware's static budget is 32 KB, scripts/fw-footprint.sh): the sink holds no
 * payload buffer of its own. The state, interval, diag and availability payloads are built in
 * cfg.scratch, which the caller lends (on the device InfluxDB's request body: both sinks run
 * in the network task, each builds and hands its message off within one call, so they never
 * use it at once). The discovery payload (up to PL_MQTT_DISCOVERY_MAX, a few KB) is built in
 * a buffer taken from ops->alloc only for that one publish and given back at once (the client
 * copies what it queues); init measures its length, so that buffer is just as long. A failed
 * allocation never stops the sink: it goes online without discovery and tries again every
 * FW_MQTT_DISC_RETRY_MS. The topics share one pool of FW_MQTT_TOPICS_MAX bytes.
 *
 * P/M/diag (retained, QoS 0): the detector's view (fw_mqtt_set_view(), from the sampling task
 * through the caller) and the backlog, published when any of them changed since the last one
 * this connection published, at most every cfg.diag_min_ms, and at once after going online.
 *
 * The glue (ports/esp32/main/mqtt.c on the device, a fake client in tests/test_fw_mqtt.c)
 * calls fw_mqtt_event() for each client event and fw_mqtt_step() from the network task. Not
 * thread-safe: the network task owns it (fw_mqtt_topic_kind() excepted, see there).
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
#define FW_MQTT_TOPICS_MAX 1024   /* all topics together: the prefixes and names up to 64 B */
#define FW_MQTT_DISC_RETRY_MS 5000 /* discovery again after a failed allocation */
#define FW_MQTT_DIAG_MIN_MS 10000 /* P/M/diag at most this often (default) */
/* The longest message the sink reads (DATA): its own retained state, 286 B with every field
 * at its extreme (test_fw_mqtt checks it fits); the token and "online" are shorter. An
 * interval echo (up to 351 B) is read as its mark only: fw_mqtt_echo_mark(). */
#define FW_MQTT_DATA_MAX 320

/* The client seam: esp-mqtt on the device, a fake in the tests. */
struct fw_mqtt_ops {
	/*
	 * Creates and starts a fresh client (no messages of an earlier one) in the client id's
	 * persistent session (clean session off: the broker keeps the subscriptions and queues
	 * their QoS 1 messages while no connection is there), with the Last Will "offline" (QoS
	 * 1, retained) on will_topic. Its events carry conn. 0 or negative.
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
	/* n bytes for the discovery payload, or NULL (no memory now: tried again later). Each
	 * buffer is given back with release() before the call that took it returns. */
	void *(*alloc)(void *ctx, size_t n);
	void (*release)(void *ctx, void *p);
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
	int32_t diag_min_ms;          /* P/M/diag at most this often; 0: FW_MQTT_DIAG_MIN_MS */
	uint32_t seed;                /* backoff jitter and sync tokens */
	char *scratch;                /* lent: payloads are built here (see above) */
	size_t scratch_cap;           /* >= PL_MQTT_PAYLOAD_MAX */
};

/* The subscribed topics an event can come on (fw_mqtt_topic_kind). */
enum fw_mqtt_topic {
	FW_MQTT_T_OTHER = 0,
	FW_MQTT_T_STATE,
	FW_MQTT_T_SYNC,
	FW_MQTT_T_HASTATUS,
	FW_MQTT_T_INTERVAL,       /* the echoes of our own interval messages */
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
	uint64_t echo_seq;            /* this store's newest interval echoed (never reset) */
	uint8_t broker_mark;          /* broker_seq is valid */
	uint8_t echo_mark;            /* echo_seq is valid */
	uint8_t discovery_again;      /* publish discovery again (HA's "online", no memory) */
	uint8_t disc_nomem;           /* discovery_again because an allocation failed */
	int64_t disc_retry_ms;        /* discovery_again: not before */
	size_t disc_len;              /* the discovery payload's length (measured at init) */
	uint32_t nflight;
	struct fw_mqtt_flight flight[FW_MQTT_WINDOW];
	uint32_t last_queued;         /* the newest seq queued on this connection */
	int64_t next_diag_ms;
	uint64_t skipped_told;        /* sink->skipped already reported */
	struct pl_mqtt_diag diag;     /* the detector's fields: fw_mqtt_set_view; backlog ours */
	struct pl_mqtt_diag diag_sent; /* as last published on this connection */
	uint8_t diag_sent_valid;
	/* counters */
	uint32_t connects, failures;
	uint32_t alloc_failures;      /* discovery buffers refused */
	uint32_t diags;               /* P/M/diag messages queued */
	uint64_t published, by_mark, unpublishable;
	uint32_t by_echo;             /* connections whose echo was ahead of the state's mark */
	char msg[160];
	/* the topics, NUL-terminated in topics[] (t_disc and t_hastatus "" without discovery) */
	const char *t_state, *t_interval, *t_diag, *t_avail, *t_sync, *t_disc, *t_hastatus;
	char topics[FW_MQTT_TOPICS_MAX];
};

/*
 * Sets up the sink (cfg copied; the strings it points to, the scratch, ops, sink and time are
 * borrowed and must outlive m). Builds the discovery payload once in a buffer from ops->alloc
 * to check and measure it. 0, -PL_EINVAL (NULL arguments, a bad window, a scratch under
 * PL_MQTT_PAYLOAD_MAX, names the topics cannot hold: m->msg says which) or -PL_ENOMEM.
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

/*
 * The detector's fields of P/M/diag (detector_state, amplitude, noise, rejected_total; the
 * string must stay valid: the core's state names and "edges" are static). NULL: unknown.
 */
void fw_mqtt_set_view(struct fw_mqtt *m, const struct pl_mqtt_diag *view);

/*
 * Which subscribed topic topic[0..len) is (not NUL-terminated), FW_MQTT_T_OTHER if none. It
 * reads only what fw_mqtt_init() wrote, so the client's task may call it (mqtt.c does, so its
 * event queue carries a topic's kind instead of its bytes); fw_mqtt_topic_of() gives the topic
 * back for the event.
 */
enum fw_mqtt_topic fw_mqtt_topic_kind(const struct fw_mqtt *m, const char *topic, size_t len);
const char *fw_mqtt_topic_of(const struct fw_mqtt *m, enum fw_mqtt_topic kind);

/*
 * An interval echo's mark only, as {"store":"...","seq":N} into out (what the sink reads of an
 * echo: the whole interval message can be longer than FW_MQTT_DATA_MAX, 351 B at its extreme).
 * The length (at most FW_MQTT_ECHO_MAX), or -PL_EPARSE (no mark: not ours) or -PL_ENOSPC. It
 * reads nothing of the sink, so the client's task may call it (mqtt.c does, for the queue).
 */
#define FW_MQTT_ECHO_MAX (sizeof("{\"store\":\"\",\"seq\":}") - 1 + PL_MQTT_STORE_ID_MAX + 20)
int fw_mqtt_echo_mark(const char *data, size_t len, char *out, size_t cap);

/* The longest payload the sink publishes (for the client's output buffer). */
size_t fw_mqtt_max_payload(const struct fw_mqtt *m);

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
