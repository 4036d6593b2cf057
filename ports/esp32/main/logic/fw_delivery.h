/* SPDX-License-Identifier: MIT */
/*
 * Delivery: the network task's state machine that moves records from the outbox to InfluxDB.
 *
 *   IDLE --(records, network up, time known)--> SENDING --2xx--> IDLE (records dropped)
 *                                                  |--split/quarantine--> IDLE (at once)
 *                                                  '--retry/not-found--> BACKOFF --due--> IDLE
 *
 * It reads the oldest records (fw_store.h), stamps those made before the clock was set
 * (fw_time.h), encodes them with the core's line protocol and posts them through a transport
 * seam - esp_http_client on the device, a fake in the tests. The core's delivery policy
 * (powerlogger/delivery.h, the daemon's too) says how many records go into a request and what
 * the answer means; records leave the outbox only after a 2xx (dropped) or when a single
 * line is refused for good (quarantined with the server's message). A refused batch of several
 * lines is bisected: its first half is sent, then the rest, until the bad line stands alone;
 * a 413 halves the batch until the server takes it. Everything else keeps the data and waits
 * pl_backoff_next() (jitter, Retry-After honoured, the slow cap for 401/403).
 *
 * One request at a time, synchronous: the state is SENDING only inside fw_delivery_step. Not
 * thread-safe; the network task owns it.
 */
#ifndef FW_DELIVERY_H
#define FW_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

#include "fw_store.h"
#include "fw_time.h"
#include "powerlogger/delivery.h"
#include "powerlogger/lineproto.h"
#include "powerlogger/retry.h"

#define FW_DELIVERY_MAX_BATCH 32
#define FW_DELIVERY_LINE_BYTES 320  /* a record's line is about 200 bytes with a long name */
#define FW_DELIVERY_MSG_BYTES 128

/* What the transport saw. The transport fills it; msg is the start of the response body. */
struct fw_http_result {
	enum pl_sink_transport transport; /* PL_XPORT_NONE when a status arrived */
	int status;
	uint32_t retry_after_s;           /* 0 when absent */
	char msg[FW_DELIVERY_MSG_BYTES];  /* NUL-terminated, possibly cut short */
};

/*
 * The transport seam: posts body (len bytes of line protocol) and fills *res. Returns 0 when
 * *res is filled (any status or transport error), negative only for a programming error.
 */
typedef int (*fw_post_fn)(void *ctx, const char *body, size_t len, struct fw_http_result *res);

enum fw_delivery_state { FW_DELIVERY_IDLE = 0, FW_DELIVERY_SENDING, FW_DELIVERY_BACKOFF };

struct fw_delivery_config {
	const char *device;        /* the device tag (the Kconfig device name) */
	enum pl_precision precision;
	uint32_t max_batch;        /* 1..FW_DELIVERY_MAX_BATCH; 0 = the maximum */
	uint32_t seed;             /* jitter seed (esp_random() on the device) */
};

/* What one step did, for the console. */
struct fw_delivery_event {
	enum pl_sink_action action;
	unsigned flags;            /* enum pl_sink_flag */
	uint32_t lines;            /* lines in the request (or 1 for a record quarantined unsent) */
	enum pl_sink_transport transport;
	int status;
	uint32_t delay_ms;         /* RETRY, NOTFOUND: wait before the next attempt */
	const char *msg;           /* the server's message or the reason; valid until next step */
};

struct fw_delivery {
	struct fw_delivery_config cfg;
	struct fw_store *store;
	struct fw_time *time;
	fw_post_fn post;
	void *post_ctx;
	enum fw_delivery_state state;
	int64_t due_ms;            /* BACKOFF: the next attempt, in the caller's ms clock */
	struct pl_delivery policy; /* batch size, bisection and backoff (the core's) */
	uint32_t rng;
	uint32_t requests, delivered, quarantined, retries; /* counters */
	struct fw_http_result res;
	char why[FW_DELIVERY_MSG_BYTES];
	struct fw_record batch[FW_DELIVERY_MAX_BATCH];
	/* used only inside fw_delivery_step: between steps the network task lends it to MQTT
	 * as its payload buffer (net.c, fw_mqtt.h), so it must never hold anything across one */
	char body[FW_DELIVERY_MAX_BATCH * FW_DELIVERY_LINE_BYTES];
};

/* Sets up delivery. All pointers are borrowed and must outlive d. 0 or -PL_EINVAL (also for a
 * device name that pl_lp_name_problem() refuses as a tag value: log what it says). */
int fw_delivery_init(struct fw_delivery *d, const struct fw_delivery_config *cfg,
		     struct fw_store *store, struct fw_time *time, fw_post_fn post, void *post_ctx);

/*
 * Does at most one request (or one quarantine of a record that cannot be stamped or
 * encoded) if one is due at now_ms and the network is up. Returns 1 and fills *ev (may be
 * NULL) if it acted, 0 if there was nothing to do (empty outbox, backing off, network down,
 * the oldest record waiting for the clock), or a negative PL_E* code from the store.
 */
int fw_delivery_step(struct fw_delivery *d, int64_t now_ms, int net_up,
		     struct fw_delivery_event *ev);

/* Milliseconds until a step could act (0 = now; while idle, 0 too: poll on new records). */
int64_t fw_delivery_wait_ms(const struct fw_delivery *d, int64_t now_ms);

const char *fw_delivery_state_name(enum fw_delivery_state s);

#endif
