#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Holds PowerLogger's MQTT messages to Home Assistant's rules for device-based discovery.

Reads "TOPIC<TAB>PAYLOAD" lines as tests/mqttmsg_dump prints them (from a file, stdin, or by
running the dump itself with --dump) and checks every discovery payload the way Home Assistant
would take it, plus what HA would accept silently but get wrong (a key it drops, a template
that renders nothing, an energy sensor the Energy dashboard refuses). --self-test also feeds
deliberately broken payloads, each of which must be rejected for its reason.

The rules below were written from Home Assistant's own source, read through the project's
code index (no network here); the versions read:
  - homeassistant/components/mqtt/abbreviations.py: the fork wayne-uts/core at commit
    7325ef6055e0d0ee72b46aa798603b5e1f2f6d9b (device discovery era: it has "o", "cmp",
    "sug_dsp_prc", ORIGIN_ABBREVIATIONS); its homeassistant/const.py is not in the index, so
    its MAJOR/MINOR_VERSION could not be read. It is 2024.11-dev or later (device discovery).
  - homeassistant/components/mqtt/schemas.py (DEVICE_DISCOVERY_SCHEMA, MQTT_ORIGIN_INFO_SCHEMA,
    MQTT_ENTITY_DEVICE_INFO_SCHEMA, check_unique_id, SHARED_OPTIONS):
    M2D-sOxOs/home-assistant-core at 484df5c63299b06c5306503aeecbe7a4a9000fb7.
  - homeassistant/components/mqtt/discovery.py (TOPIC_MATCHER, _replace_all_abbreviations,
    _parse_device_payload, _merge_common_device_options): a 2025 copy in the index (the one
    with _async_process_discovery_migration); home-assistant/core's own stored copy is from
    2020 and predates device discovery.
  - homeassistant/components/mqtt/sensor.py (_PLATFORM_SCHEMA_BASE,
    validate_sensor_state_and_device_class_config, _update_state): a 2024/2025 copy.
  - homeassistant/components/sensor/const.py (DEVICE_CLASS_UNITS, DEVICE_CLASS_STATE_CLASSES):
    a 2025 copy (it has MEASUREMENT_ANGLE and ENERGY_DISTANCE).
  - homeassistant/components/energy/validate.py (ENERGY_USAGE_UNITS, allowed state classes).
The abbreviation of "components" differs between readings ("cmp" in the abbreviations.py
above, "cmps" in HA's documentation and later copies) and "p" for "platform" is missing from
that table: PowerLogger writes both keys in full, and this checker refuses the abbreviations
whose meaning depends on the HA version.
"""

import argparse
import copy
import json
import re
import subprocess
import sys

# ---------------------------------------------------------------- HA's tables, as facts

# abbreviations.py ABBREVIATIONS, the entries for what a sensor or a device discovery payload
# can hold (the rest of the table names options of other platforms). An abbreviation outside
# this list is left as it is, so it ends up as an unknown key below: refused, never guessed.
ABBREVIATIONS = {
    "avty": "availability",
    "avty_mode": "availability_mode",
    "avty_t": "availability_topic",
    "avty_tpl": "availability_template",
    "cmd_t": "command_topic",
    "dev": "device",
    "dev_cla": "device_class",
    "e": "encoding",
    "en": "enabled_by_default",
    "ent_cat": "entity_category",
    "ent_pic": "entity_picture",
    "exp_aft": "expire_after",
    "frc_upd": "force_update",
    "ic": "icon",
    "json_attr_t": "json_attributes_topic",
    "json_attr_tpl": "json_attributes_template",
    "lrst_val_tpl": "last_reset_value_template",
    "name": "name",
    "o": "origin",
    "obj_id": "object_id",
    "ops": "options",
    "pl_avail": "payload_available",
    "pl_not_avail": "payload_not_available",
    "stat_cla": "state_class",
    "stat_t": "state_topic",
    "sug_dsp_prc": "suggested_display_precision",
    "t": "topic",
    "uniq_id": "unique_id",
    "unit_of_meas": "unit_of_measurement",
    "val_tpl": "value_template",
}
# Keys whose abbreviation is not the same in every version read (see the docstring).
VERSION_DEPENDENT = {"cmp": "components", "cmps": "components", "p": "platform"}

DEVICE_ABBREVIATIONS = {
    "cns": "connections",
    "cu": "configuration_url",
    "ids": "identifiers",
    "name": "name",
    "mf": "manufacturer",
    "mdl": "model",
    "hw": "hw_version",
    "sw": "sw_version",
    "sa": "suggested_area",
    "sn": "serial_number",
}
ORIGIN_ABBREVIATIONS = {"name": "name", "sw": "sw_version", "url": "support_url"}

# discovery.py
TOPIC_MATCHER = re.compile(
    r"(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?(?P<object_id>[a-zA-Z0-9_-]+)/config"
)
SUPPORTED_COMPONENTS = {
    "alarm_control_panel", "binary_sensor", "button", "camera", "climate", "cover",
    "device_automation", "device_tracker", "event", "fan", "humidifier", "image", "lawn_mower",
    "light", "lock", "notify", "number", "scene", "siren", "select", "sensor", "switch", "tag",
    "text", "update", "vacuum", "valve", "water_heater",
}

# schemas.py: DEVICE_DISCOVERY_SCHEMA (a vol.Schema without extra=: unknown keys are errors)
DEVICE_LEVEL_KEYS = {
    "device", "components", "origin", "state_topic", "command_topic",
    "message_expiry_interval", "qos", "encoding",
    # _MQTT_AVAILABILITY_SCHEMA
    "availability_topic", "availability_template", "payload_available",
    "payload_not_available", "availability_mode", "availability",
}
SHARED_OPTIONS = {
    "availability", "availability_mode", "availability_template", "availability_topic",
    "command_topic", "encoding", "message_expiry_interval", "payload_available",
    "payload_not_available", "state_topic", "qos",
}
DEVICE_KEYS = {
    "identifiers", "connections", "manufacturer", "model", "model_id", "name", "hw_version",
    "serial_number", "sw_version", "via_device", "suggested_area", "configuration_url",
}
ORIGIN_KEYS = {"name", "sw_version", "support_url"}

# sensor.py _PLATFORM_SCHEMA_BASE (MQTT_RO_SCHEMA + MQTT_ENTITY_COMMON_SCHEMA). Its discovery
# schema has extra=vol.REMOVE_EXTRA: an unknown key is dropped without a word, which is why
# this checker refuses one (a misspelt key would silently do nothing).
SENSOR_KEYS = {
    "device_class", "expire_after", "force_update", "last_reset_value_template", "name",
    "options", "suggested_display_precision", "state_class", "unit_of_measurement",
    "qos", "encoding", "state_topic", "value_template", "retain",
    "availability_topic", "availability_template", "payload_available",
    "payload_not_available", "availability_mode", "availability",
    "device", "entity_picture", "origin", "enabled_by_default", "entity_category", "icon",
    "json_attributes_topic", "json_attributes_template", "object_id", "default_entity_id",
    "message_expiry_interval", "unique_id", "visible_by_default",
}
ENTITY_CATEGORIES = {"config", "diagnostic"}

# sensor/const.py
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}
UNIT_OF_ENERGY = {"J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh", "cal", "kcal",
                  "Mcal", "Gcal"}
UNIT_OF_POWER = {"mW", "W", "kW", "MW", "GW", "TW"}
# DEVICE_CLASS_STATE_CLASSES for every device class (so an unknown class is seen), and
# DEVICE_CLASS_UNITS for the ones PowerLogger could use; a class with no units given here is
# refused as "not modelled" rather than let through unchecked.
_M = {"measurement"}
_T = {"total", "total_increasing"}
DEVICE_CLASS_STATE_CLASSES = {
    "apparent_power": _M, "aqi": _M, "area": STATE_CLASSES, "atmospheric_pressure": _M,
    "battery": _M, "blood_glucose_concentration": _M, "co": _M, "co2": _M, "conductivity": _M,
    "current": _M, "data_rate": _M, "data_size": STATE_CLASSES, "date": set(),
    "distance": STATE_CLASSES, "duration": STATE_CLASSES, "energy": _T,
    "energy_distance": _M, "energy_storage": _M, "enum": set(), "frequency": _M, "gas": _T,
    "humidity": _M, "illuminance": _M, "irradiance": _M, "moisture": _M, "monetary": {"total"},
    "nitrogen_dioxide": _M, "nitrogen_monoxide": _M, "nitrous_oxide": _M, "ozone": _M,
    "ph": _M, "pm1": _M, "pm10": _M, "pm25": _M, "power_factor": _M, "power": _M,
    "precipitation": STATE_CLASSES, "precipitation_intensity": _M, "pressure": _M,
    "reactive_power": _M, "signal_strength": _M, "sound_pressure": _M, "speed": _M,
    "sulphur_dioxide": _M, "temperature": _M, "timestamp": set(),
    "volatile_organic_compounds": _M, "volatile_organic_compounds_parts": _M, "voltage": _M,
    "volume": _T, "volume_storage": _M, "volume_flow_rate": _M, "water": _T,
    "weight": {"measurement", "total", "total_increasing"},
    "wind_direction": {"measurement_angle"}, "wind_speed": _M,
}
DEVICE_CLASS_UNITS = {
    "energy": UNIT_OF_ENERGY,
    "energy_storage": UNIT_OF_ENERGY,
    "power": UNIT_OF_POWER,
}
NON_NUMERIC_DEVICE_CLASSES = {"date", "enum", "timestamp"}

# energy/validate.py: what the Energy dashboard takes as grid consumption (the older, shorter
# unit list: a newer HA takes every UnitOfEnergy).
ENERGY_USAGE_UNITS = {"GJ", "kWh", "MJ", "MWh", "Wh"}
ENERGY_STATE_CLASSES = {"measurement", "total", "total_increasing"}

DEFAULT_PAYLOAD_AVAILABLE = "online"
OBJECT_ID = re.compile(r"[a-zA-Z0-9_-]+")
TEMPLATE = re.compile(r"\{\{\s*value_json\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
MAX_TEXT_STATE = 255  # sensor.py check_state_too_long


# ---------------------------------------------------------------- helpers

class Problems:
    def __init__(self):
        self.items = []

    def add(self, where, what):
        self.items.append(f"{where}: {what}")

    def __bool__(self):
        return bool(self.items)


def strict_json(text):
    """json.loads refusing what HA's orjson refuses (NaN, Infinity) and duplicate keys."""
    def pairs(kv):
        d = {}
        for k, v in kv:
            if k in d:
                raise ValueError(f"duplicate key {k!r}")
            d[k] = v
        return d

    def bad_constant(name):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, object_pairs_hook=pairs, parse_constant=bad_constant)


def topic_problem(topic):
    """mqtt/util.py valid_topic() plus: no wildcard at all (the topics are also published)."""
    raw = topic.encode("utf-8")
    if not raw:
        return "empty topic"
    if len(raw) > 65535:
        return "topic longer than 65535 bytes"
    if "\0" in topic:
        return "NUL in topic"
    if any(c <= "\x1f" for c in topic):
        return "control character in topic"
    if any("\x7f" <= c <= "\x9f" for c in topic):
        return "control character (U+007F..U+009F) in topic"
    if any("\ufdd0" <= c <= "\ufdef" for c in topic):
        return "non-character (U+FDD0..U+FDEF) in topic"
    if any((ord(c) & 0xFFFF) in (0xFFFE, 0xFFFF) for c in topic):
        return "non-character (U+xFFFE/U+xFFFF) in topic"
    if "+" in topic or "#" in topic:
        return "wildcard in a topic that is published to"
    if topic.startswith("$"):
        return "topic starts with '$' (reserved for the broker)"
    return None


def url_problem(value):
    """cv.configuration_url: http(s) with a host (vol.Url), or homeassistant://."""
    from urllib.parse import urlparse

    if not isinstance(value, str):
        return "not a string"
    u = urlparse(value)
    if u.scheme in ("http", "https"):
        if not u.netloc or any(c.isspace() for c in value):
            return "not a valid URL"
        return None
    if u.scheme == "homeassistant":
        return None
    return "invalid url (http, https or homeassistant only)"


def expand(d, table):
    """discovery.py _replace_abbreviations."""
    for key in set(table).intersection(d):
        d[table[key]] = d.pop(key)


def render(template, payload, where, problems):
    """The tiny evaluator of "{{ value_json.KEY }}": what Jinja would make of that key."""
    m = TEMPLATE.fullmatch(template)
    if not m:
        problems.add(where, f"value template {template!r} is not of the form "
                            "'{{ value_json.KEY }}' this checker can evaluate")
        return None
    key = m.group(1)
    if not isinstance(payload, dict) or key not in payload:
        problems.add(where, f"value template reads '{key}', which the payload on its state "
                            "topic does not have")
        return None
    v = payload[key]
    if v is None:
        return "None"
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, (int, float, str)):
        return str(v)
    problems.add(where, f"value template renders a {type(v).__name__}")
    return None


# ---------------------------------------------------------------- reading the dump

def read_messages(data, problems):
    """[(topic, payload text)] from the dump's bytes; every line must be UTF-8."""
    messages = []
    for n, line in enumerate(data.split(b"\n"), 1):
        if line == b"":
            continue
        if b"\t" not in line:
            problems.add(f"line {n}", "no TAB between topic and payload")
            continue
        t, p = line.split(b"\t", 1)
        try:
            topic = t.decode("utf-8")
            payload = p.decode("utf-8")
        except UnicodeDecodeError as e:
            problems.add(f"line {n}", f"not valid UTF-8 ({e}); HA's JSON parser refuses it")
            continue
        messages.append((topic, payload))
    return messages


# ---------------------------------------------------------------- the checks

def check(messages, discovery_prefix, problems):
    """Returns (discovery payloads, components) checked; problems collects what is wrong."""
    retained = {}  # topic -> latest payload (what a subscriber would hold)
    for topic, payload in messages:
        tp = topic_problem(topic)
        if tp:
            problems.add(f"topic {topic!r}", tp)
        retained[topic] = payload

    parsed = {}
    for topic, payload in retained.items():
        if payload == DEFAULT_PAYLOAD_AVAILABLE or payload == "offline":
            continue
        try:
            parsed[topic] = strict_json(payload)
        except ValueError as e:
            problems.add(f"topic {topic!r}", f"payload is not JSON: {e}")
            continue
        if not isinstance(parsed[topic], dict):
            problems.add(f"topic {topic!r}", "payload is not a JSON object")
        elif topic.endswith("/state") and not {"store", "seq"} <= set(parsed[topic]):
            problems.add(f"topic {topic!r}", "state payload without its mark (store, seq)")

    unique_ids = {}
    device_ids = {}
    state_topics = {}  # state topic -> the discovery payload that reads it
    n_payloads = n_components = 0
    prefix = discovery_prefix + "/"
    for topic, payload in retained.items():
        if not topic.startswith(prefix):
            continue
        where = f"discovery {topic!r}"
        m = TOPIC_MATCHER.fullmatch(topic[len(prefix):])
        if not m:
            problems.add(where, "does not match HA's discovery topic pattern "
                                "<prefix>/<component>/[<node_id>/]<object_id>/config with ids "
                                "of [a-zA-Z0-9_-]")
            continue
        if m.group("component") != "device":
            problems.add(where, "not a device-based discovery topic")
            continue
        object_id = m.group("object_id")
        cfg = parsed.get(topic)
        if not isinstance(cfg, dict):
            continue
        n_payloads += 1
        n_components += check_device_payload(cfg, object_id, where, parsed, retained,
                                             unique_ids, device_ids, problems)
        for comp in (cfg.get("components") or {}).values():
            st = comp.get("stat_t", comp.get("state_topic")) if isinstance(comp, dict) else None
            if isinstance(st, str):
                if state_topics.setdefault(st, where) != where:
                    problems.add(where, f"state topic {st!r} is also the one of "
                                        f"{state_topics[st]}: two meters would publish to it")
    if n_payloads == 0:
        problems.add("dump", "no discovery payload")
    return n_payloads, n_components


def check_device_payload(cfg, object_id, where, parsed, retained, unique_ids, device_ids,
                         problems):
    cfg = copy.deepcopy(cfg)
    for key, full in VERSION_DEPENDENT.items():
        if key in cfg:
            problems.add(where, f"'{key}' for '{full}': the abbreviation depends on the HA "
                                "version; write the key in full")
    expand(cfg, ABBREVIATIONS)
    for key in set(cfg) - DEVICE_LEVEL_KEYS:
        problems.add(where, f"unknown key '{key}' at device level (DEVICE_DISCOVERY_SCHEMA "
                            "refuses the whole payload)")

    # device
    dev = cfg.get("device")
    if not isinstance(dev, dict):
        problems.add(where, "no device ('dev')")
        dev = {}
    expand(dev, DEVICE_ABBREVIATIONS)
    for key in set(dev) - DEVICE_KEYS:
        problems.add(where, f"unknown device key '{key}'")
    ids = dev.get("identifiers", [])
    if isinstance(ids, str):
        ids = [ids]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        problems.add(where, "device identifiers must be strings")
        ids = []
    if not ids and not dev.get("connections"):
        problems.add(where, "device has no identifier and no connection")
    for i in ids:
        if i in device_ids and device_ids[i] != where:
            problems.add(where, f"device identifier '{i}' also in {device_ids[i]}: the two "
                                "would merge into one device")
        device_ids[i] = where
    for key in ("name", "manufacturer", "model", "sw_version", "hw_version"):
        if key in dev and not isinstance(dev[key], str):
            problems.add(where, f"device {key} is not a string")
    if "configuration_url" in dev and url_problem(dev["configuration_url"]):
        problems.add(where, f"device configuration_url: {url_problem(dev['configuration_url'])}")

    # origin (required for device discovery)
    origin = cfg.get("origin")
    if not isinstance(origin, dict):
        problems.add(where, "no origin ('o'), which device discovery requires")
        origin = {}
    expand(origin, ORIGIN_ABBREVIATIONS)
    for key in set(origin) - ORIGIN_KEYS:
        problems.add(where, f"unknown origin key '{key}'")
    if not isinstance(origin.get("name"), str):
        problems.add(where, "origin has no name")
    if "support_url" in origin and url_problem(origin["support_url"]):
        problems.add(where, f"origin support_url: {url_problem(origin['support_url'])}")

    # device-level options
    if "qos" in cfg and cfg["qos"] not in (0, 1, 2):
        problems.add(where, f"qos {cfg['qos']!r} is not 0, 1 or 2")
    for key in ("availability_topic", "state_topic", "command_topic"):
        if key in cfg:
            if not isinstance(cfg[key], str):
                problems.add(where, f"{key} is not a string")
            elif topic_problem(cfg[key]):
                problems.add(where, f"{key}: {topic_problem(cfg[key])}")
    if "availability_topic" in cfg and "availability" in cfg:
        problems.add(where, "availability_topic and availability are exclusive")

    comps = cfg.get("components")
    if not isinstance(comps, dict) or not comps:
        problems.add(where, "no components")
        return 0
    n = 0
    for cid, comp in comps.items():
        n += 1
        cw = f"{where} component '{cid}'"
        if not OBJECT_ID.fullmatch(cid):
            problems.add(cw, "component id outside [a-zA-Z0-9_-]")
        if not isinstance(comp, dict):
            problems.add(cw, "not an object")
            continue
        comp = copy.deepcopy(comp)
        for key, full in VERSION_DEPENDENT.items():
            if key in comp:
                problems.add(cw, f"'{key}' for '{full}': the abbreviation depends on the HA "
                                 "version; write the key in full")
        expand(comp, ABBREVIATIONS)
        platform = comp.pop("platform", None)
        if platform not in SUPPORTED_COMPONENTS:
            problems.add(cw, f"platform {platform!r} is not one HA's MQTT integration has")
            continue
        if len(comp) > 0 and not isinstance(comp.get("unique_id"), str):
            problems.add(cw, "no unique_id (HA refuses an entity component without one)")
        uid = comp.get("unique_id")
        if isinstance(uid, str):
            if uid in unique_ids:
                problems.add(cw, f"unique_id '{uid}' also used by {unique_ids[uid]}")
            unique_ids[uid] = cw
            # PowerLogger's own convention: <node id>_<meter id>_<kind>
            if ids and uid != f"{ids[0]}_{cid}":
                problems.add(cw, f"unique_id '{uid}' is not '<device id>_{cid}'")
        if ids and ids[0] != object_id:
            problems.add(cw, "device identifier differs from the discovery object id")
        for opt in SHARED_OPTIONS:  # _merge_common_device_options
            if opt in cfg and opt not in comp:
                comp[opt] = cfg[opt]
        if platform == "sensor":
            check_sensor(comp, cw, parsed, retained, problems)
        else:
            problems.add(cw, f"platform {platform!r}: this checker models only sensors")
    return n


def check_sensor(comp, cw, parsed, retained, problems):
    for key in set(comp) - SENSOR_KEYS:
        problems.add(cw, f"unknown sensor key '{key}' (HA drops it without a word)")
    dc = comp.get("device_class")
    sc = comp.get("state_class")
    unit = comp.get("unit_of_measurement")
    if dc is not None and dc not in DEVICE_CLASS_STATE_CLASSES:
        problems.add(cw, f"device class {dc!r} is not one of SensorDeviceClass")
        dc = None
    if sc is not None and sc not in STATE_CLASSES:
        problems.add(cw, f"state class {sc!r} is not one of SensorStateClass")
        sc = None
    if unit is not None and (not isinstance(unit, str) or not unit.strip()):
        problems.add(cw, "unit_of_measurement is not a non-empty string")
        unit = None
    if dc is not None:
        if dc not in DEVICE_CLASS_UNITS:
            problems.add(cw, f"device class {dc!r}: units not modelled in this checker")
        elif unit not in DEVICE_CLASS_UNITS[dc]:
            problems.add(cw, f"unit {unit!r} is not valid for device class {dc!r} "
                             f"(DEVICE_CLASS_UNITS: {sorted(DEVICE_CLASS_UNITS[dc])})")
        if sc is not None and sc not in DEVICE_CLASS_STATE_CLASSES[dc]:
            problems.add(cw, f"state class {sc!r} is not valid for device class {dc!r} "
                             f"(DEVICE_CLASS_STATE_CLASSES: "
                             f"{sorted(DEVICE_CLASS_STATE_CLASSES[dc])})")
    if "last_reset_value_template" in comp and sc != "total":
        problems.add(cw, "last_reset_value_template needs state class 'total'")
    if "options" in comp and (dc != "enum" or sc or unit):
        problems.add(cw, "options only for device class enum without state class or unit")
    if "entity_category" in comp and comp["entity_category"] not in ENTITY_CATEGORIES:
        problems.add(cw, f"entity_category {comp['entity_category']!r} is not one of "
                         f"{sorted(ENTITY_CATEGORIES)}")
    prec = comp.get("suggested_display_precision")
    if prec is not None and (isinstance(prec, bool) or not isinstance(prec, int) or prec < 0):
        problems.add(cw, f"suggested_display_precision {prec!r} is not an integer >= 0")
    for key in ("name", "value_template", "unique_id"):
        if key in comp and comp[key] is not None and not isinstance(comp[key], str):
            problems.add(cw, f"{key} is not a string")
    if "qos" in comp and comp["qos"] not in (0, 1, 2):
        problems.add(cw, f"qos {comp['qos']!r} is not 0, 1 or 2")

    # topics: the state topic must be published, and so must the availability
    st = comp.get("state_topic")
    if not isinstance(st, str):
        problems.add(cw, "no state_topic (MQTT_RO_SCHEMA requires one)")
        return
    if topic_problem(st):
        problems.add(cw, f"state_topic: {topic_problem(st)}")
    at = comp.get("availability_topic")
    if isinstance(at, str):
        pa = comp.get("payload_available", DEFAULT_PAYLOAD_AVAILABLE)
        if retained.get(at) != pa:
            problems.add(cw, f"availability topic {at!r} is never published with {pa!r}")
    if st not in retained:
        problems.add(cw, f"state_topic {st!r} is never published")
        return

    # the value, as HA would make it from the retained payload
    tpl = comp.get("value_template")
    if tpl is None:
        value = retained[st]
    else:
        value = render(tpl, parsed.get(st), cw, problems)
        if value is None:
            return
    numeric = dc not in NON_NUMERIC_DEVICE_CLASSES and (
        dc is not None or sc is not None or unit is not None or prec is not None)
    if numeric:
        if value == "None":
            return  # PAYLOAD_NONE: the state is unknown, which is what null means here
        try:
            number = float(value)
        except ValueError:
            problems.add(cw, f"a numeric sensor gets {value!r}")
            return
        if dc == "energy":
            # energy/validate.py: what the Energy dashboard takes as consumption
            if unit not in ENERGY_USAGE_UNITS:
                problems.add(cw, f"the Energy dashboard refuses unit {unit!r}")
            if sc not in ENERGY_STATE_CLASSES:
                problems.add(cw, f"the Energy dashboard refuses state class {sc!r}")
            if number < 0:
                problems.add(cw, f"the Energy dashboard refuses a negative value ({value})")
    elif len(value) > MAX_TEXT_STATE:
        problems.add(cw, f"a text state longer than {MAX_TEXT_STATE} characters")


# ---------------------------------------------------------------- running and self-test

def random_run(seed=12, meters=40):
    """Meters with random names from the bytes that break naive encoders (valid UTF-8 only:
    the core passes other bytes through, see the self-test) and random meter constants."""
    import random

    rnd = random.Random(seed)
    atoms = ['"', "\\", "/", "+", "#", " ", ".", ",", ":", "\t", "\n", "\x01", "\x1f", "\x7f",
             "\u0085", "\u00e9", "\u20ac", "\U0001f4a1", "\ufffe", "\ufdd0", "a", "Z", "0", "_",
             "-", "{{", "}}", "'", "$"]
    args = []
    for i in range(meters):
        name = "".join(rnd.choice(atoms) for _ in range(rnd.randint(1, 24)))
        # a plain suffix keeps the topic segments apart ("a/b" and "a_b" share one: the
        # daemon refuses such a pair, see the self-test)
        raw = name.encode("utf-8")[:61]
        while True:  # 61 bytes at most, not cut inside a character
            try:
                raw.decode("utf-8")
                break
            except UnicodeDecodeError:
                raw = raw[:-1]
        raw += f"~{i:02d}".encode()  # 64 bytes at most
        imp = rnd.choice([1, 2, 10, 75, 100, 500, 800, 1000, 2000, 10000, 1000000])
        args.append(f"hex:{raw.hex()}:{imp}")
    return args


RUNS = [
    # ordinary and hostile names, common meter constants; "a.b" and "a_b" must not share ids
    ["house", "garage:75", "K\u00fcche/Keller #2:800", "a.b:1", "a_b:10000", "imp1:1",
     "hex:" + "\"\\\x01d\x7f+#/".encode().hex() + ":1000",
     "hex:" + ("01" * 64) + ":1000000",
     "hex:" + ("22" * 64) + ":1000",
     "hex:" + ("f09f92a1" * 16) + ":1000",
     "hex:c285efbfbe41:1000"],
    # a node id of the worst kind, another prefix, no origin url
    ["--node", "hex:" + ("2e" * 64), "--prefix", "home/power", "--discovery", "ha",
     "--url", "", "--model", "ESP32", "house", "hex:" + ("5c" * 64)],
    random_run(),
]


EMULATOR = []  # a cross build's CMAKE_CROSSCOMPILING_EMULATOR (qemu-user), from --emulator


def run_dump(dump, args):
    out = subprocess.run(EMULATOR + [dump] + args, stdout=subprocess.PIPE, check=True)
    return out.stdout


def discovery_prefix_of(args):
    return args[args.index("--discovery") + 1] if "--discovery" in args else "homeassistant"


def check_bytes(data, discovery_prefix):
    problems = Problems()
    messages = read_messages(data, problems)
    counts = check(messages, discovery_prefix, problems)
    return problems, counts, messages


def to_dump(messages):
    return "".join(f"{t}\t{p}\n" for t, p in messages).encode("utf-8")


def first_discovery(messages):
    for i, (t, p) in enumerate(messages):
        if t.startswith("homeassistant/device/"):
            return i, json.loads(p)
    raise SystemExit("self-test: no discovery payload in the first run")


def mutations():
    """(name, expected words in a problem, function of (messages) -> messages)."""
    def on_disc(f):
        def apply(messages):
            messages = list(messages)
            i, cfg = first_discovery(messages)
            f(cfg)
            messages[i] = (messages[i][0], json.dumps(cfg))
            return messages
        return apply

    def comp(cfg, key):
        return cfg["components"][key]

    def state_of(messages):
        for i, (t, p) in enumerate(messages):
            if t.endswith("/state"):
                return i
        raise SystemExit("self-test: no state")

    def negative_energy(messages):
        messages = list(messages)
        i = state_of(messages)
        st = json.loads(messages[i][1])
        st["energy_kwh"] = -1.5
        messages[i] = (messages[i][0], json.dumps(st))
        return messages

    def truncated(messages):
        messages = list(messages)
        i, _ = first_discovery(messages)
        messages[i] = (messages[i][0], messages[i][1][:-2])
        return messages

    def bad_object_id(messages):
        messages = list(messages)
        i, _ = first_discovery(messages)
        messages[i] = (messages[i][0].replace("/config", ".x/config"), messages[i][1])
        return messages

    def no_availability(messages):
        return [(t, p) for t, p in messages if not t.endswith("/availability")]

    def drop(d, k):
        d.pop(k)

    return [
        ("wrong unit for energy", "not valid for device class 'energy'",
         on_disc(lambda c: comp(c, "energy").update(unit_of_meas="kW"))),
        ("power unit in Wh", "not valid for device class 'power'",
         on_disc(lambda c: comp(c, "power").update(unit_of_meas="Wh"))),
        ("missing uniq_id", "no unique_id",
         on_disc(lambda c: drop(comp(c, "energy"), "uniq_id"))),
        ("bad device class", "not one of SensorDeviceClass",
         on_disc(lambda c: comp(c, "power").update(dev_cla="powr"))),
        ("energy as measurement", "state class 'measurement' is not valid",
         on_disc(lambda c: comp(c, "energy").update(stat_cla="measurement"))),
        ("unknown state class", "not one of SensorStateClass",
         on_disc(lambda c: comp(c, "backlog").update(stat_cla="sum"))),
        ("template key missing", "does not have",
         on_disc(lambda c: comp(c, "energy").update(val_tpl="{{ value_json.energy }}"))),
        ("template not understood", "not of the form",
         on_disc(lambda c: comp(c, "power").update(val_tpl="{{ value_json.power_w * 2 }}"))),
        ("wildcard state topic", "wildcard",
         on_disc(lambda c: comp(c, "power").update(stat_t="powerlogger/+/state"))),
        ("state topic never published", "never published",
         on_disc(lambda c: comp(c, "power").update(stat_t="powerlogger/nowhere/state"))),
        ("origin without name", "origin has no name",
         on_disc(lambda c: drop(c["o"], "name"))),
        ("no origin", "no origin", on_disc(lambda c: drop(c, "o"))),
        ("unknown top-level key", "unknown key 'foo'", on_disc(lambda c: c.update(foo=1))),
        ("misspelt sensor key", "unknown sensor key 'unit_of_measure'",
         on_disc(lambda c: comp(c, "energy").update(unit_of_measure="kWh"))),
        ("components abbreviated", "depends on the HA version",
         on_disc(lambda c: c.update(cmps=c.pop("components")))),
        ("unsupported platform", "is not one HA's MQTT integration has",
         on_disc(lambda c: comp(c, "energy").update(platform="sensr"))),
        ("duplicate unique id", "also used by",
         on_disc(lambda c: comp(c, "power").update(uniq_id=comp(c, "energy")["uniq_id"]))),
        ("no device identifiers", "no identifier",
         on_disc(lambda c: c["dev"].update(ids=[]))),
        ("negative display precision", "suggested_display_precision",
         on_disc(lambda c: comp(c, "energy").update(sug_dsp_prc=-1))),
        ("bad entity category", "entity_category",
         on_disc(lambda c: comp(c, "noise").update(ent_cat="diag"))),
        ("text sensor given a unit", "a numeric sensor gets",
         on_disc(lambda c: comp(c, "detector").update(unit_of_meas="x"))),
        ("bad qos", "qos", on_disc(lambda c: c.update(qos=3))),
        ("bad origin url", "support_url", on_disc(lambda c: c["o"].update(url="ftp://x"))),
        ("component id with a dot", "component id outside",
         on_disc(lambda c: c["components"].update({"a.b": c["components"].pop("noise")}))),
        ("negative energy", "refuses a negative value", negative_energy),
        ("truncated JSON", "not JSON", truncated),
        ("discovery object id with a dot", "discovery topic pattern", bad_object_id),
        ("availability never published", "never published with 'online'", no_availability),
    ]


def self_test(dump):
    failures = 0
    base_args = RUNS[0]
    data = run_dump(dump, base_args)
    problems, _, messages = check_bytes(data, "homeassistant")
    if problems:
        print("self-test: the unbroken payloads are refused:", *problems.items, sep="\n  ")
        return 1
    for name, words, mutate in mutations():
        broken = to_dump(mutate(messages))
        p, _, _ = check_bytes(broken, "homeassistant")
        hits = [i for i in p.items if words in i]
        if not hits:
            failures += 1
            print(f"self-test FAILED: '{name}' not rejected for '{words}'"
                  + (f" (only: {p.items})" if p else " (accepted)"))
        else:
            print(f"self-test: '{name}' rejected: {hits[0]}")
    # a meter name that is not UTF-8: the core passes the bytes through (the caller's to
    # refuse), and HA could not parse the payload; the checker must say so
    bad = run_dump(dump, ["hex:41ff42"])
    p, _, _ = check_bytes(bad, "homeassistant")
    if not any("not valid UTF-8" in i for i in p.items):
        failures += 1
        print("self-test FAILED: a name of invalid UTF-8 was not rejected")
    else:
        print("self-test: a name of invalid UTF-8 rejected (the daemon must refuse such names)")
    # two meters whose names differ only in what a topic replaces share their state topic
    p, _, _ = check_bytes(run_dump(dump, ["a/b", "a_b"]), "homeassistant")
    if not any("two meters would publish to it" in i for i in p.items):
        failures += 1
        print("self-test FAILED: meters 'a/b' and 'a_b' sharing a state topic not rejected")
    else:
        print("self-test: meters 'a/b' and 'a_b' rejected: they share a state topic (the "
              "daemon must refuse such a pair)")
    n = len(mutations()) + 2
    print(f"self-test: {n - failures} of {n} broken inputs rejected")
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input", nargs="?", help="dump output (default: stdin), unless --dump")
    ap.add_argument("--dump", help="run this mqttmsg_dump with the built-in meter sets")
    ap.add_argument("--emulator", action="append", default=[],
                    help="run the dump under this (one word per --emulator=WORD), for a "
                         "cross build under qemu-user")
    ap.add_argument("--discovery-prefix", default="homeassistant")
    ap.add_argument("--self-test", action="store_true",
                    help="also check that deliberately broken payloads are rejected")
    args = ap.parse_args()
    EMULATOR.extend(args.emulator)

    status = 0
    if args.dump:
        inputs = [(run_dump(args.dump, r), discovery_prefix_of(r), " ".join(r)[:60])
                  for r in RUNS]
    else:
        data = open(args.input, "rb").read() if args.input else sys.stdin.buffer.read()
        inputs = [(data, args.discovery_prefix, args.input or "stdin")]
    for data, prefix, label in inputs:
        problems, (npay, ncomp), messages = check_bytes(data, prefix)
        if problems:
            status = 1
            print(f"{label}: {len(problems.items)} problem(s):", *problems.items,
                  sep="\n  ")
        else:
            print(f"ok: {len(messages)} messages, {npay} discovery payloads, {ncomp} "
                  f"components ({label})")
    if args.self_test:
        if not args.dump:
            ap.error("--self-test needs --dump")
        status |= self_test(args.dump)
    return status


if __name__ == "__main__":
    sys.exit(main())
