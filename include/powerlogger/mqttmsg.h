/* SPDX-License-Identifier: MIT */
/*
 * MQTT messages for a meter, the same in the daemon and the firmware (docs/mqtt.md): the
 * topics, the retained state, the per-interval message, the diagnostics and Home Assistant's
 * device-based discovery payload. Writes into caller-owned buffers; never allocates; no state.
 *
 * Topics (P = topic_prefix, D = discovery_prefix, M = the meter's topic segment):
 *   P/availability        "online" / "offline" (retained; "offline" is the Last Will)
 *   P/M/state             retained: the register and power as of the newest delivered interval
 *   P/M/interval          QoS 1, not retained: every interval record once, oldest first
 *   P/M/diag              retained: the detector's view and the sink's backlog
 *   D/device/<id>/config  retained: discovery of one meter as one device (HA's device-based
 *                         format, with "dev", "o" and "cmps")
 *   D/status              HA's birth message: "online" asks for discovery again
 *
 * Names: any byte string (UTF-8 expected) is accepted as a meter name or node. In JSON strings
 * it is escaped ('"', '\\', control bytes and DEL as \u00XX); bytes >= 0x80 pass through as
 * they are, so a name that is not UTF-8 gives a payload Home Assistant cannot parse (the
 * structure of the JSON stays intact): the caller refuses such names. In a topic segment the
 * bytes MQTT gives a meaning ('/', '+', '#') and control bytes become '_', and so does what
 * brokers refuse in a topic and drop the connection over (MQTT 3.1.1 section 1.5.3, as
 * mosquitto checks it): each byte of invalid UTF-8, C1 controls U+0080..U+009F and
 * non-characters; an empty name is the segment "_". Segments are not unique ("a/b" and "a_b"
 * share one): the caller refuses two meters whose segments coincide. In ids (unique_id, the
 * discovery object id) everything outside [A-Za-z0-9_-] becomes '_', and when anything was
 * replaced (or the name is empty) '_' and the 32-bit FNV-1a hash of the original bytes in 8
 * lowercase hex digits are appended, so that "a.b" and "a_b" do not share an id.
 *
 * Numbers are printed from the record's integer units exactly (no floating point): energy in
 * kWh with exactly the meter's resolution (pl_mqtt_kwh_decimals, all digits, "1234.500"),
 * rounded half away from zero as the meter rounds, never "-0"; power in W and energy in Wh
 * exactly, with up to 3 (W) or 6 (Wh) decimals and no trailing zeros ("812.5", "900").
 * Times are UTC, RFC 3339 with a 'Z' ("2026-12-07T14:00:20Z"; fraction digits only as far as
 * they are not zero, "...:20.25Z"); a time outside the years 0000..9999 is -PL_EINVAL.
 *
 * Every function returns the length written (a NUL follows it; the length excludes it), or
 * -PL_ENOSPC when cap is too small (buf then holds an empty string if cap > 0), -PL_EINVAL on a
 * NULL argument or a value out of range.
 */
#ifndef POWERLOGGER_MQTTMSG_H
#define POWERLOGGER_MQTTMSG_H

#include <stddef.h>
#include <stdint.h>

#include "powerlogger/common.h"
#include "powerlogger/meter.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Room that is always enough: a topic, the state or interval payload, one discovery payload
 * (with the meter name and node id up to PL_MQTT_NAME_MAX bytes each, of any kind: the worst,
 * measured by test_mqttmsg, is 3770 bytes; 5686 with every other node string 64 bytes too). */
#define PL_MQTT_NAME_MAX 64
#define PL_MQTT_TOPIC_MAX 256
#define PL_MQTT_PAYLOAD_MAX 1024
#define PL_MQTT_DISCOVERY_MAX 6144

/* Who publishes: the same for every meter of one logger. */
struct pl_mqtt_node {
	const char *topic_prefix;     /* P, e.g. "powerlogger"; not empty */
	const char *discovery_prefix; /* D, e.g. "homeassistant"; "" or NULL: no discovery */
	const char *node_id;          /* the logger's stable id (client id): unique_ids start
	                               * with it, e.g. "powerlogger-pi" */
	const char *sw_version;       /* origin's and device's sw version, e.g. "0.4.0" */
	const char *model;            /* device model, e.g. "Linux daemon" or "ESP32" */
	const char *support_url;      /* origin url; NULL: none */
};

/* One meter. */
struct pl_mqtt_meter {
	const char *name;     /* the configured name, any bytes */
	uint32_t imp_per_kwh; /* the meter constant (>= 1) */
};

/* Where a retained state says delivery has come to: the store's id and the record's sequence
 * number in it. A logger that reconnects reads its own retained states back and does not
 * publish again what the broker already has (docs/mqtt.md, "exactly once"). */
#define PL_MQTT_STORE_ID_MAX 32
/* The payload builders refuse (-PL_EINVAL) a store that is not so. */
struct pl_mqtt_mark {
	char store[PL_MQTT_STORE_ID_MAX + 1]; /* the record store's opaque id, [A-Za-z0-9_-] */
	uint64_t seq;                         /* the record's sequence number in that store */
};

/* The live view of a meter for P/M/diag (not part of any record). */
struct pl_mqtt_diag {
	const char *detector_state; /* "learning", "tracking", "steady", "no_signal", "edges" */
	int32_t amplitude;          /* signal amplitude in ADC counts; < 0: not known (edges) */
	int32_t noise;              /* noise in ADC counts; < 0: not known */
	uint64_t rejected_total;    /* rejected pulses since the logger started */
	uint64_t backlog;           /* records this sink has still to deliver */
	int64_t updated_us;         /* UTC time of this view */
};

/* Decimals for kWh that show one pulse: ceil(log10(imp_per_kwh)), at least 0, at most 6. */
unsigned pl_mqtt_kwh_decimals(uint32_t imp_per_kwh);

/*
 * Why name (a meter name or node id) should be refused, as a phrase ("is not valid UTF-8"), or
 * NULL when it is fine: not empty, at most PL_MQTT_NAME_MAX bytes (what the buffer sizes above
 * are measured for), valid UTF-8 (JSON strings pass its bytes through, and HA cannot parse a
 * payload that is not UTF-8). Added for the configuration checks; the builders below still
 * take any bytes.
 */
const char *pl_mqtt_name_problem(const char *name);

/* s as an MQTT topic segment (see above). */
int pl_mqtt_segment(char *buf, size_t cap, const char *s);

/* s as an id: [A-Za-z0-9_-] only, with a hash suffix when anything was replaced. */
int pl_mqtt_id(char *buf, size_t cap, const char *s);

/* "P/M/leaf" for a meter (m != NULL), "P/leaf" for the logger (m == NULL). P and leaf come
 * from the program and are used as they are ('/' allowed, e.g. leaf "sync/<client id>"), but
 * must not be empty nor hold '+', '#' or control bytes, and P must not start with '$' (the
 * broker's own topics): -PL_EINVAL. The same holds for D. */
int pl_mqtt_topic(char *buf, size_t cap, const struct pl_mqtt_node *n, const char *meter,
		  const char *leaf);

/* "D/device/<node_id>_<meter id>/config"; -PL_EINVAL when discovery is off. */
int pl_mqtt_discovery_topic(char *buf, size_t cap, const struct pl_mqtt_node *n,
			    const struct pl_mqtt_meter *m);

/*
 * The retained state after record r:
 * {"energy_kwh":1234.567,"power_w":812.5,"start":"...Z","length_s":20,"pulses":5,
 *  "rejected":0,"flags":0,"quality":"ok","store":"...","seq":42}
 * energy_kwh is r->register_uwh, power_w r->avg_mw; quality is "ok" or the flags' names joined
 * with ',' ("partial,gap"). mark may be NULL (no "store"/"seq").
 */
int pl_mqtt_state_json(char *buf, size_t cap, const struct pl_mqtt_meter *m,
		       const struct pl_interval_record *r, const struct pl_mqtt_mark *mark);

/*
 * The interval message of record r:
 * {"start":"...Z","length_s":20,"pulses":5,"rejected":0,"energy_wh":5,"power_w":900,
 *  "peak_w":1100,"energy_kwh":1234.567,"flags":0,"quality":"ok","store":"...","seq":42}
 */
int pl_mqtt_interval_json(char *buf, size_t cap, const struct pl_mqtt_meter *m,
			  const struct pl_interval_record *r, const struct pl_mqtt_mark *mark);

/* {"detector":"tracking","amplitude":812,"noise":3,"rejected":0,"backlog":0,"updated":"...Z"}
 * (amplitude and noise null when < 0, which HA shows as unknown; detector "unknown" when
 * detector_state is NULL). */
int pl_mqtt_diag_json(char *buf, size_t cap, const struct pl_mqtt_diag *d);

/*
 * The discovery payload of meter m: one device ("PowerLogger <meter>", identifiers
 * "<node_id>_<meter id>", sw_version, model, manufacturer "PowerLogger"), origin ("o"), the
 * availability topic, and components (cmps): energy (device_class energy, state_class
 * total_increasing, kWh, from P/M/state), power (power, measurement, W, from P/M/state),
 * and diagnostic entities from P/M/diag: detector state, amplitude, noise, rejected pulses,
 * backlog. unique_ids are "<node_id>_<meter id>_<component>".
 *
 * Keys are HA's abbreviations ("dev", "o", "avty_t", "stat_t", "uniq_id", ...) except
 * "components" and "platform", written in full: their abbreviations changed while device
 * discovery was new ("cmp"/"cmps", "p"), the full keys are accepted by every version. The
 * energy entity has "sug_dsp_prc" pl_mqtt_kwh_decimals(); the diagnostic ones (entity category
 * "diagnostic") have no device class and no unit: detector is text, rejected is
 * total_increasing (it restarts with the logger, which HA takes as a reset), amplitude, noise
 * and backlog are measurements. sw_version, model and support_url are left out when NULL;
 * a support_url that is not "http(s)://host..." (HA would refuse the whole payload) is
 * -PL_EINVAL. tests/ha_discovery_check.py holds the payload to HA's rules.
 */
int pl_mqtt_discovery_json(char *buf, size_t cap, const struct pl_mqtt_node *n,
			   const struct pl_mqtt_meter *m);

/*
 * Reads "store" and "seq" back from a state payload this module wrote (len bytes, need not be
 * NUL-terminated; nothing at or past len is read). 0, or -PL_EPARSE when either is missing or
 * malformed (a state from another program, or from before marks: the caller then trusts its
 * own cursor); *mark is written only on success. The payload must be one flat JSON object
 * (string, number and literal values; a nested object or array is foreign), with exactly one
 * "store" of 1..PL_MQTT_STORE_ID_MAX characters [A-Za-z0-9_-] and one "seq" of plain digits
 * within uint64_t; whitespace and other keys in any order are fine.
 */
int pl_mqtt_parse_mark(const char *payload, size_t len, struct pl_mqtt_mark *mark);

#ifdef __cplusplus
}
#endif
#endif
