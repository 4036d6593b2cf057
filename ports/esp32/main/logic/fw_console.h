/* SPDX-License-Identifier: MIT */
/*
 * What the serial console (console.c, its own task) shares with the two tasks that own the
 * state it shows and changes, without a lock and without reaching into their structures:
 *
 *  - the register request: `register KWH` sets the energy register to the meter's reading.
 *    The sampling task owns the meter (fw_sampling), so the console only posts the value
 *    (fw_regreq_post) and the sampling task takes it after its next tick (fw_regreq_take,
 *    applied with fw_sampling_set_register) and answers with the register it replaced. Both
 *    directions are fw_seqpairs, each with one writer: requests the console, answers the
 *    sampling task. The next interval record carries the new register and the outbox saves
 *    it like every register, so it survives a restart. A register set lower than it was is
 *    a meter reset to Home Assistant's total_increasing sensor: the caller logs so.
 *  - the status view: what `status` shows, written by its owners (fw_status_net by the
 *    network task, fw_status_meter by the sampling task) and read whole by the console
 *    (fw_status_read). Each part is one fw_seqpair, so a part is never torn; the parts are
 *    not read at one instant (nor need to be, for a display).
 *
 * Both live in one heap block allocated at boot (settings_nvs.c); plain data, no pointers.
 */
#ifndef FW_CONSOLE_H
#define FW_CONSOLE_H

#include <stdint.h>

#include "fw_sampling.h"
#include "fw_seqpair.h"

#define FW_KWH_MAX INT64_C(1000000000)  /* registers up to 1e9 kWh (1e18 uWh fits int64) */

struct fw_regreq {
	struct fw_seqpair req;          /* console: (register_uwh, 0); version: request number */
	struct fw_seqpair done;         /* sampling task: (replaced register_uwh, request number) */
	uint32_t taken;                 /* the sampling task's own: the last request taken */
	uint32_t reserved;
};

struct fw_status {
	struct fw_seqpair net;          /* (waiting | wifi_up << 32, delivered) */
	struct fw_seqpair err;          /* (status | transport << 16 | action << 24, at_us) */
	struct fw_seqpair meter;        /* (register_uwh, power_mw) */
};

struct fw_status_view {
	int wifi_up;
	uint32_t waiting;               /* records in the outbox not yet delivered */
	uint64_t delivered;
	int have_error;                 /* 0: no failed delivery since boot */
	int err_action;                 /* enum pl_sink_action */
	int err_transport;              /* enum pl_sink_transport; 0: the server answered */
	int err_status;                 /* the HTTP status */
	int64_t err_at_us;              /* esp_timer time of it */
	int have_meter;                 /* 0: the sampling task has not written yet */
	int64_t register_uwh;
	int64_t power_mw;
};

/* Both sides empty. Before the tasks start. */
void fw_regreq_init(struct fw_regreq *q);

/* The console: asks for register_uwh (0..FW_KWH_MAX kWh in uWh). Returns the request's
 * number (>= 1) for fw_regreq_result, or -PL_EINVAL. */
int64_t fw_regreq_post(struct fw_regreq *q, int64_t register_uwh);

/* The console: 1 if request id was taken (*replaced_uwh: the register before it), 0 if not yet,
 * -PL_EBUSY if the answer was being written (ask again). */
int fw_regreq_result(const struct fw_regreq *q, int64_t id, int64_t *replaced_uwh);

/*
 * The sampling task, after fw_sampling_tick: applies the newest request, if one came since the
 * last call (several in between: the last one counts, each is answered). Returns 1 (applied:
 * *old_uwh and *new_uwh say what to log), 0 (none) or a negative code from the meter.
 */
int fw_regreq_take(struct fw_regreq *q, struct fw_sampling *s, int64_t *old_uwh,
		   int64_t *new_uwh);

/* "12345.678" (kWh, up to 9 decimals, no sign) to uWh. 0 or -PL_EINVAL / -PL_ERANGE. */
int fw_parse_kwh(const char *text, int64_t *uwh);

void fw_status_init(struct fw_status *st);
/* The network task. */
void fw_status_net(struct fw_status *st, int wifi_up, uint32_t waiting, uint64_t delivered);
void fw_status_error(struct fw_status *st, int action, int transport, int status,
		     int64_t at_us);
/* The sampling task. */
void fw_status_meter(struct fw_status *st, int64_t register_uwh, int64_t power_mw);
/* The console: each part as last written (a part being written: as before, or unknown). */
void fw_status_read(const struct fw_status *st, struct fw_status_view *v);

#endif
