/* SPDX-License-Identifier: MIT */
/*
 * The MQTT sink (libmosquitto): every stored interval record published once, in order, with
 * Home Assistant discovery, behind the delivery seam (sinks/sink.h). The payloads and topics
 * are the portable builder's (powerlogger/mqttmsg.h, the same in the firmware); this file is
 * the connection and the exactly-once bookkeeping around them.
 *
 * Per record, in store order: P/M/interval (QoS 1, not retained) and at once P/M/state
 * (retained, QoS 1), both carrying the mark {store id, seq}. A request (a batch of at most
 * PL_MQTT_BATCH records) ends well only when the broker has acknowledged (PUBACK) every
 * message of it; a disconnect ends it as a transport failure, retried with the delivery
 * policy's backoff, and the next attempt uses a new connection (a new mosquitto object), so
 * libmosquitto never resends old in-flight messages behind the cursor's back (clean session).
 *
 * Exactly once (QoS 1 alone is at least once): on every connection, before anything of the
 * backlog, the sink subscribes to P/+/state and to its private P/sync/<client_id>, waits for
 * both SUBACKs, publishes a token to the sync topic and waits until the token comes back. MQTT
 * keeps one connection's messages in order, so by then the broker has handed over every
 * retained state, each with the mark of the newest record it holds for that meter. Records at
 * or before their meter's mark (the same store id) are acknowledged without being published
 * again. What remains is the window between the interval message and its state (two
 * back-to-back writes into one socket): a kill -9 that falls exactly there leaves an interval
 * the broker has without a state saying so, and that interval is published a second time.
 * The marks live in retained messages: a broker that loses them (no persistence, restarted)
 * cannot be asked, and the cursor alone decides (at least once for the batch in flight). A
 * record is skipped only when its interval does not start later than the marked one either:
 * a store restored from a backup keeps its id and numbers its new records again from where
 * the backup ended, and those must not pass for records the broker has.
 *
 * Then, on every connection: the discovery of every configured meter (when a discovery prefix
 * is set; again whenever D/status says "online"), P/availability "online" (retained; the Last
 * Will says "offline"), and P/M/diag from the daemon's mailbox when it changed (at most every
 * PL_MQTT_DIAG_EVERY_S). While it has nothing to send the delivery thread lends the sink its
 * idle time (sink.h, idle): keepalive, D/status and reconnecting happen there.
 *
 * The connection runs in the delivery thread: mosquitto_loop() on it, never
 * mosquitto_loop_start(). The connect is mosquitto_connect_async(): the name is resolved
 * there (blocking, as getaddrinfo is), the TCP connect is only started, and the sink waits for
 * it with poll() before libmosquitto's loop may touch the socket (that loop takes a connect in
 * progress for a broken connection), for at most 10 s, so that an unreachable host does not
 * hold a stop up for the kernel's SYN timeout. MQTT 3.1.1.
 *
 * The residual window applies to the broker as well: a broker that stops between the
 * interval message and its state has the interval without the mark, and it is published
 * again after the restart (seen once in cli_mqtt's 1000-interval outage).
 */
#ifndef PL_LINUX_MQTT_H
#define PL_LINUX_MQTT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "powerlogger/mqttmsg.h"
#include "sinks/sink.h"

#define PL_MQTT_BATCH 100         /* records per request: a reconnect re-checks marks often */
#define PL_MQTT_DIAG_EVERY_S 10   /* P/M/diag at most this often per meter */
#define PL_MQTT_SYNC_TIMEOUT_MS 10000 /* the sync token must come back within this */

/*
 * The daemon's view of its meters for P/M/diag: the main loop owns the detectors and puts a
 * copy here every few seconds; the sink's thread takes it. One per MQTT sink (the backlog is
 * the sink's own). All under the box's lock; never held across I/O.
 */
struct pl_mqtt_box_meter {
	char detector[24];
	int32_t amplitude, noise;
	uint64_t rejected_total;
	int64_t updated_us;
	uint64_t version; /* grows with every put that changed something */
};

struct pl_mqtt_box {
	pthread_mutex_t lock;
	uint64_t backlog;
	uint64_t backlog_version;
	size_t n; /* the configured meters, in configuration order */
	struct pl_mqtt_box_meter *m;
};

/* A box for n meters (zeroed, amplitude and noise unknown), or NULL (out of memory). */
struct pl_mqtt_box *pl_mqtt_box_new(size_t n);
void pl_mqtt_box_free(struct pl_mqtt_box *b);
/* Meter i's view now (d->backlog is ignored: see pl_mqtt_box_backlog). */
void pl_mqtt_box_put(struct pl_mqtt_box *b, size_t i, const struct pl_mqtt_diag *d);
/* The sink's backlog as the main thread last counted it. */
void pl_mqtt_box_backlog(struct pl_mqtt_box *b, uint64_t backlog);

/* A configured meter, for discovery. */
struct pl_mqtt_sink_meter {
	const char *name;
	uint32_t imp_per_kwh;
};

/* Fill with designated initialisers; everything is copied by open. */
struct pl_mqtt_config {
	const char *name;             /* the sink's name, for messages */
	const char *host;
	uint16_t port;
	int tls;                      /* verify always; ca_file NULL: /etc/ssl/certs */
	const char *ca_file;
	const char *username;         /* NULL: none */
	const char *password;         /* secret; NULL: none */
	const char *client_id;        /* also Home Assistant's node id */
	const char *topic_prefix;
	const char *discovery_prefix; /* "" or NULL: no discovery */
	int qos;                      /* 0 or 1 */
	int keepalive_s;
	const char *store_id;         /* pl_store_id() of the store the records come from */
	const char *sw_version;
	const struct pl_mqtt_sink_meter *meters; /* for discovery and kWh decimals */
	size_t nmeters;
	struct pl_mqtt_box *box;      /* may be NULL: no P/M/diag; must outlive the sink */
	int sync_timeout_ms;          /* 0: PL_MQTT_SYNC_TIMEOUT_MS */
};

/* The sink behind the seam: open takes a struct pl_mqtt_config. */
extern const struct pl_sink_ops pl_mqtt_sink_ops;

#endif
