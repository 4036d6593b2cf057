/* SPDX-License-Identifier: MIT */
/*
 * The sink seam: what the delivery thread (deliver.c) needs from one kind of sink, as a small
 * table of operations. The thread owns everything that is the same for every sink - reading
 * records back from the store, the batch and bisection policy (powerlogger/delivery.h), the
 * backoff, acknowledgements, quarantine, the status - and a sink only turns records into a
 * request and says how the request ended. InfluxDB (influx.c, pl_influx_sink_ops) is the first
 * implementation; a new sink adds a table like it and a function that starts pl_deliver_start
 * with its own configuration (see influx_config.c).
 *
 * One request at a time per sink object; the object is used by the delivery thread only.
 */
#ifndef PL_LINUX_SINK_H
#define PL_LINUX_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "powerlogger/meter.h"
#include "powerlogger/retry.h"

#define PL_SINK_MSG_MAX 256

/* How one request ended, as the policy and the log need it. */
struct pl_sink_result {
	/* transport error or HTTP status, Retry-After, body flags; batch_lines is the caller's */
	struct pl_sink_response resp;
	uint32_t bad_line;                  /* 1-based line the server named as refused; 0: none */
	char message[PL_SINK_MSG_MAX + 1];  /* the server's text or the transport's, "" if none;
	                                     * no secrets */
};

struct pl_sink_ops {
	const char *kind; /* for messages: "InfluxDB" */
	/* What a status in a result is called in messages: NULL for "HTTP 503 ..." (then the
	 * status is printed); else e.g. "CONNACK", followed by the result's message alone. */
	const char *status_name;
	/* Creates a sink object from the kind's own configuration (e.g. struct
	 * pl_influx_config; copied, may be freed afterwards). 0, or a negative PL_E* code. */
	int (*open)(const void *cfg, void **out);
	/* Abandons any request in flight and frees the object. NULL is fine. */
	void (*close)(void *s);
	/* Appends one interval record, tagged with device, to the request body buf[*len..cap)
	 * and advances *len. seq is the record's sequence number in the store (for a sink
	 * that marks what it delivered, as MQTT does; InfluxDB ignores it). 0; -PL_ENOSPC when
	 * it does not fit (buf and *len unchanged: the batch ends there); another negative code
	 * when the record can never be encoded. */
	int (*encode)(void *s, char *buf, size_t cap, size_t *len, const char *device,
		      int64_t seq, const struct pl_interval_record *rec);
	/* Starts sending len bytes made by encode (the sink copies them: buf may be reused at
	 * once). 0; -PL_EBUSY with a request in flight; -PL_ENOMEM. */
	int (*start)(void *s, const char *buf, size_t len);
	/* Drives the request for at most timeout_ms (0: without waiting). 1 when it has ended,
	 * with *res filled (whatever the outcome); 0 while in flight; negative with none. */
	int (*poll)(void *s, int timeout_ms, struct pl_sink_result *res);
	/* 1 while the request's body has not all been handed to the network: the caller polls
	 * it out before doing other work, or the server waits for the next poll. */
	int (*sending)(void *s);
	/* Abandons the request in flight, if any; nothing of it is acknowledged. */
	void (*abort)(void *s);
	/* Optional (NULL: none, as for InfluxDB): called by the delivery thread instead of
	 * sleeping while it has nothing to send, for at most timeout_ms, so that a sink with a
	 * connection of its own services it (MQTT: keepalive, Home Assistant's birth message,
	 * a reconnect). Returns after timeout_ms at most; the thread then looks for records. */
	void (*idle)(void *s, int timeout_ms);
};

#endif
