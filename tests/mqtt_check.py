#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks what real MQTT clients received from `powerlogger run` (tests/cli_mqtt*.sh).

A capture (tests/lib_mqtt.sh) is lines "UNIXTIME RETAIN MID TOPIC PAYLOAD" as mosquitto_sub
printed them, and the test's marks "# UNIXTIME TEXT" ("daemon kill", "broker stop", ...). The
store is a copy of the logger's SQLite database (`powerlogger backup`): its `records` are the
truth every interval message is compared with.

  mqtt_check.py intervals CAPTURE STORE METER [--outage N]
      every record of METER in STORE arrived on P/METER/interval exactly once, oldest first,
      with its seq, start, pulses and register; with --outage N, at least N of them were
      committed while the broker was down ("broker stop" .. "broker start") and all of those
      arrived after it was back.
  mqtt_check.py states CAPTURE METER
      the energy on P/METER/state never decreases over the capture (live and retained copies).
  mqtt_check.py retained SNAPSHOT STORE METER
      a fresh client's view of the retained topics: availability "online", the discovery of
      METER well formed (dev, o, cmps: energy, power, diagnostics), its state equal to the
      store's record it names.
  mqtt_check.py availability CAPTURE
      after every "daemon kill" mark "offline" comes (the Last Will), after every "daemon
      start" mark "online"; prints the delays.
  mqtt_check.py rediscovery CAPTURE METER
      after the last "ha birth" mark a live (not retained) copy of METER's discovery arrived.

Options: --prefix P (topic_prefix, default powerlogger), --discovery D (default
homeassistant). Exit status 0 when it holds, 1 with the reasons on stderr; a summary line with
the figures on stdout either way.

Duplicates. The same interval twice is a failure, with two exceptions the logger cannot
prevent and that are therefore counted and printed, not hidden:
  - the broker re-sending its in-flight message to the capture after a restart (MQTT QoS 1
    between the broker and this subscriber): same message id, same payload, a "broker stop"
    mark between the copies;
  - the documented residual window of the logger's exactly-once scheme (docs/mqtt.md): the
    logger killed (or the broker stopped) after the interval message reached the broker and
    before its retained state did. Then no state of that record or a later one can have come
    before the second copy (the logger republishes only what the retained state does not
    cover), and a "daemon kill" or "broker stop" mark lies between the copies.
"""
import argparse
import datetime
import json
import sqlite3
import sys
from decimal import Decimal


class Capture:
    """The lines of a capture: messages (dicts) and marks, in the order they were written."""

    def __init__(self, path):
        self.events = []
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line:
                    continue
                if line.startswith("# "):
                    t, _, text = line[2:].partition(" ")
                    self.events.append({"mark": text, "t": float(t), "line": n})
                    continue
                parts = line.split(" ", 4)
                if len(parts) < 4:
                    raise SystemExit(f"{path}:{n}: not a capture line: {line[:80]!r}")
                t, retain, mid, topic = parts[:4]
                self.events.append({"t": float(t), "retain": retain == "1", "mid": mid,
                            "topic": topic, "payload": parts[4] if len(parts) > 4 else "",
                            "line": n})

    def messages(self, topic):
        return [(i, e) for i, e in enumerate(self.events) if e.get("topic") == topic]

    def marks(self, text):
        return [(i, e) for i, e in enumerate(self.events) if e.get("mark") == text]

    def marks_between(self, i, j, texts):
        return [e for e in self.events[i + 1:j] if e.get("mark") in texts]


def payload_json(e, errors, what):
    try:
        return json.loads(e["payload"], parse_float=Decimal)
    except ValueError as x:
        errors.append(f"capture line {e['line']}: {what} is not JSON ({x}): {e['payload'][:100]!r}")
        return None


def rfc3339_us(s):
    """Microseconds since the epoch of 'YYYY-MM-DDTHH:MM:SS[.frac]Z'; None when malformed."""
    if not isinstance(s, str) or not s.endswith("Z") or len(s) < 20 or s[10] != "T":
        return None
    try:
        whole = datetime.datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    frac = s[19:-1]
    us = 0
    if frac:
        if frac[0] != "." or not frac[1:].isdigit() or len(frac) > 10:
            return None
        us = int((frac[1:] + "000000")[:6])
        if frac[1:][6:].strip("0"):
            return None  # finer than a microsecond: the store has none
    epoch = whole.replace(tzinfo=datetime.timezone.utc).timestamp()
    return int(epoch) * 1000000 + us


def store_records(path, meter):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    row = db.execute("SELECT id, imp_per_kwh FROM meters WHERE name = ?", (meter,)).fetchone()
    if row is None:
        raise SystemExit(f"{path}: no meter {meter!r}")
    recs = db.execute("SELECT seq, start_us, length_s, pulses, register_uwh, stored_us "
              "FROM records WHERE meter_id = ? ORDER BY seq", (row[0],)).fetchall()
    return [dict(zip(("seq", "start_us", "length_s", "pulses", "register_uwh", "stored_us"), r))
        for r in recs]


def kwh(register_uwh):
    return Decimal(register_uwh) / Decimal(10**9)


def check_intervals(a):
    errors = []
    cap = Capture(a.capture)
    recs = store_records(a.store, a.meter)
    by_seq = {r["seq"]: r for r in recs}
    itopic = f"{a.prefix}/{a.meter}/interval"
    stopic = f"{a.prefix}/{a.meter}/state"
    msgs = cap.messages(itopic)
    states = []  # (index, seq) of every state message, for the residual window
    for i, e in cap.messages(stopic):
        j = payload_json(e, errors, "a state")
        if isinstance(j, dict) and isinstance(j.get("seq"), int):
            states.append((i, j["seq"]))
    first = {}  # seq -> (index, event) of its first copy
    got = []  # seqs in arrival order, without the duplicates
    redelivered = residual = dups = 0
    stores = set()
    for i, e in msgs:
        if e["retain"]:
            errors.append(f"capture line {e['line']}: an interval message arrived retained")
        j = payload_json(e, errors, "an interval message")
        if not isinstance(j, dict):
            continue
        seq = j.get("seq")
        if not isinstance(seq, int):
            errors.append(f"capture line {e['line']}: no integer seq: {e['payload'][:100]!r}")
            continue
        stores.add(j.get("store"))
        if seq in first:
            fi, fe = first[seq]
            if (fe["mid"] == e["mid"] and fe["payload"] == e["payload"]
                    and cap.marks_between(fi, i, ("broker stop",))):
                redelivered += 1
                continue
            # A second copy the logger published. Its own echo of the interval topic (a
            # persistent session) says which intervals the broker took, also when the broker
            # stopped, or the logger was killed, between an interval and its state: so none
            # is allowed. --residual-ok accepts such copies (a logger without the echo, or a
            # broker that lost its state in a hard kill) as counted, not failed.
            later_state = [s for si, s in states if fi < si < i and s >= seq]
            if (a.residual_ok and not later_state
                    and cap.marks_between(fi, i, ("daemon kill", "broker stop"))):
                residual += 1
                continue
            why = (f"a state with seq {later_state[0]} came between them" if later_state
                   else "no later state between them: the window between an interval and its "
                   "state, which the echo must close")
            errors.append(f"seq {seq} twice: capture lines {fe['line']} and {e['line']} ({why})")
            dups += 1
            continue
        first[seq] = (i, e)
        got.append(seq)
        r = by_seq.get(seq)
        if r is None:
            errors.append(f"capture line {e['line']}: seq {seq} is not a record of {a.meter}")
            continue
        start = rfc3339_us(j.get("start"))
        if start != r["start_us"]:
            errors.append(f"seq {seq}: start {j.get('start')!r}, the store has {r['start_us']} us")
        if j.get("pulses") != r["pulses"]:
            errors.append(f"seq {seq}: pulses {j.get('pulses')!r}, the store has {r['pulses']}")
        if j.get("length_s", r["length_s"]) != r["length_s"]:
            errors.append(f"seq {seq}: length_s {j.get('length_s')!r}, the store has "
                          f"{r['length_s']}")
        e_kwh = j.get("energy_kwh")
        if not isinstance(e_kwh, (Decimal, int)) or Decimal(e_kwh) != kwh(r["register_uwh"]):
            errors.append(f"seq {seq}: energy_kwh {e_kwh!r}, the store's register is "
                      f"{kwh(r['register_uwh'])} kWh")
    if len(stores) > 1:
        errors.append(f"interval messages name {len(stores)} stores: {sorted(map(str, stores))}")
    want = [r["seq"] for r in recs]
    if got != want:
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        disorder = sum(1 for x, y in zip(got, got[1:]) if y <= x)
        errors.append(f"{len(got)} distinct seqs arrived, the store has {len(want)}: "
                  f"{len(missing)} missing {missing[:10]}, {len(extra)} not in the store "
                  f"{extra[:10]}, {disorder} out of order")
    outage = ""
    if a.outage:
        stops, starts = cap.marks("broker stop"), cap.marks("broker start")
        if not stops or not starts:
            errors.append("--outage: no 'broker stop' and 'broker start' marks")
        else:
            si, stop = stops[0]
            bi, back = next(((i, e) for i, e in starts if i > si), starts[-1])
            during = [r["seq"] for r in recs
                  if stop["t"] * 1e6 <= r["stored_us"] <= back["t"] * 1e6]
            early = [s for s in during if s in first and first[s][0] < bi]
            if len(during) < a.outage:
                errors.append(f"only {len(during)} records committed while the broker was "
                          f"down, not {a.outage}")
            if early:
                errors.append(f"{len(early)} records of the outage arrived before the broker was"
                          f" back (seq {early[:5]}): the marks are wrong")
            outage = (f", {len(during)} committed during the {back['t'] - stop['t']:.1f} s "
                  f"broker outage all after it, oldest first")
    print(f"intervals {a.meter}: {len(want)} records in the store, {len(got)} arrived, "
          f"duplicates {dups} (redelivered by the broker to the capture {redelivered}, residual "
          f"window {residual}), missing {len(set(want) - set(got))}{outage}")
    return errors


def check_states(a):
    errors = []
    cap = Capture(a.capture)
    last = None
    n = retained = 0
    lo = hi = None
    seen = {}  # payload -> (index, mid) of its first copy
    redelivered = 0
    for i, e in cap.messages(f"{a.prefix}/{a.meter}/state"):
        # The broker sending the capture again what was in flight to it when the broker
        # stopped (the same message id and payload, a stop between): the subscriber's leg of
        # QoS 1, not a state the logger published again, and no fall of the total.
        first = seen.get(e["payload"])
        if (first is not None and first[1] == e["mid"] and not e["retain"]
                and cap.marks_between(first[0], i, ("broker stop",))):
            redelivered += 1
            continue
        seen.setdefault(e["payload"], (i, e["mid"]))
        j = payload_json(e, errors, "a state")
        if not isinstance(j, dict):
            continue
        v = j.get("energy_kwh")
        if not isinstance(v, (Decimal, int)):
            errors.append(f"capture line {e['line']}: no numeric energy_kwh")
            continue
        n += 1
        retained += e["retain"]
        if last is not None and v < last[0]:
            errors.append(f"capture line {e['line']}: energy_kwh {v} after {last[0]} (line "
                      f"{last[1]}): the total went backwards")
        last = (v, e["line"])
        lo = v if lo is None else min(lo, v)
        hi = v if hi is None else max(hi, v)
    if n == 0:
        errors.append(f"no state messages on {a.prefix}/{a.meter}/state")
    elif lo == 0 and hi == 0:
        errors.append("the energy on the state topic is 0 throughout: nothing to check")
    print(f"states {a.meter}: {n} state messages ({retained} retained copies, {redelivered} "
          f"redelivered by the broker to the capture), energy "
          f"{lo} .. {hi} kWh, decreases {sum(1 for x in errors if 'backwards' in x)}")
    return errors


def get(obj, key, abbr):
    """obj[key] or obj[abbr]: HA takes discovery keys in full or abbreviated."""
    if not isinstance(obj, dict):
        return None
    return obj.get(key, obj.get(abbr))


def need(errors, obj, key, abbr, types, where):
    v = get(obj, key, abbr)
    if not isinstance(v, types) or v == "":
        errors.append(f"{where}: no {key!r} or {abbr!r} (or not a {types.__name__})")
        return None
    return v


def check_retained(a):
    errors = []
    cap = Capture(a.snapshot)
    msgs = {e["topic"]: e for e in cap.events if "topic" in e}
    for e in msgs.values():
        if not e["retain"]:
            errors.append(f"{e['topic']}: delivered as a live message in a retained-only read")
    avail = msgs.get(f"{a.prefix}/availability")
    if avail is None or avail["payload"] != "online":
        got = avail["payload"] if avail else None
        errors.append(f"{a.prefix}/availability: {got!r}, not 'online'")
    disc = [e for t, e in msgs.items()
        if t.startswith(f"{a.discovery}/device/") and t.endswith("/config")]
    state_topic = f"{a.prefix}/{a.meter}/state"
    energy = None
    uids = []
    for e in disc:
        d = payload_json(e, errors, "a discovery payload")
        w = e["topic"]
        dev = need(errors, d, "device", "dev", dict, w)
        if dev is not None:
            if not get(dev, "identifiers", "ids"):
                errors.append(f"{w}: the device has no identifiers")
            need(errors, dev, "name", "name", str, w + " device")
        o = need(errors, d, "origin", "o", dict, w)
        if o is not None:
            need(errors, o, "name", "name", str, w + " origin")
        cmps = need(errors, d, "components", "cmps", dict, w) or {}
        for cid, c in cmps.items():
            cw = f"{w} components.{cid}"
            if not get(c, "platform", "p"):
                errors.append(f"{cw}: no platform")
            uid = need(errors, c, "unique_id", "uniq_id", str, cw)
            if uid:
                uids.append(uid)
            if get(c, "device_class", "dev_cla") == "energy":
                energy = (cw, c, get(c, "state_topic", "stat_t"))
        if cmps and not any(get(c, "device_class", "dev_cla") == "power" for c in cmps.values()):
            errors.append(f"{w}: no power component")
    if not disc:
        errors.append(f"no retained discovery under {a.discovery}/device/")
    if len(uids) != len(set(uids)):
        errors.append(f"unique_ids repeat: {sorted(uids)}")
    if energy is None:
        if disc:
            errors.append("no component with device_class energy")
    else:
        cw, c, st = energy
        sc = get(c, "state_class", "stat_cla")
        unit = get(c, "unit_of_measurement", "unit_of_meas")
        if sc != "total_increasing":
            errors.append(f"{cw}: state_class {sc!r}, not total_increasing")
        if unit != "kWh":
            errors.append(f"{cw}: unit {unit!r}, not kWh")
        if st != state_topic:
            errors.append(f"{cw}: state_topic {st!r}, not {state_topic}")
    state = msgs.get(state_topic)
    figures = ""
    if state is None:
        errors.append(f"{state_topic}: no retained state")
    else:
        s = payload_json(state, errors, "the state")
        if isinstance(s, dict):
            for k in ("energy_kwh", "power_w", "start", "pulses", "quality", "store", "seq"):
                if k not in s:
                    errors.append(f"{state_topic}: no {k!r}")
            recs = {r["seq"]: r for r in store_records(a.store, a.meter)}
            r = recs.get(s.get("seq"))
            if r is None:
                errors.append(f"{state_topic}: seq {s.get('seq')!r} is not a record of the store")
            else:
                if Decimal(s.get("energy_kwh", -1)) != kwh(r["register_uwh"]):
                    errors.append(f"{state_topic}: energy_kwh {s.get('energy_kwh')}, the store's "
                              f"register after seq {r['seq']} is {kwh(r['register_uwh'])}")
                if rfc3339_us(s.get("start")) != r["start_us"]:
                    errors.append(f"{state_topic}: start {s.get('start')!r}, the store has "
                              f"{r['start_us']} us")
                behind = max(recs) - r["seq"]
                figures = (f"; state: {s.get('energy_kwh')} kWh = the store's register after seq"
                       f" {r['seq']} ({behind} records behind the newest)")
    print(f"retained: availability {avail['payload'] if avail else None}, {len(disc)} discovery "
          f"payload(s), {len(uids)} components{figures}")
    return errors


def check_availability(a):
    errors = []
    cap = Capture(a.capture)
    topic = f"{a.prefix}/availability"
    figures = []
    for what, want in (("daemon kill", "offline"), ("daemon start", "online")):
        for i, m in cap.marks(what):
            nxt = next((e for e in cap.events[i + 1:] if e.get("topic") == topic), None)
            if nxt is None:
                errors.append(f"capture line {m['line']}: no availability message after {what!r}")
            elif nxt["payload"] != want:
                errors.append(f"capture line {nxt['line']}: {nxt['payload']!r} after {what!r}, "
                          f"not {want!r}")
            else:
                figures.append(f"{want} {(nxt['t'] - m['t']) * 1000:.0f} ms after {what}")
    if not figures and not errors:
        errors.append("no 'daemon kill' or 'daemon start' marks")
    print("availability: " + (", ".join(figures) or "nothing"))
    return errors


def check_rediscovery(a):
    errors = []
    cap = Capture(a.capture)
    births = cap.marks("ha birth")
    if not births:
        return ["no 'ha birth' mark"]
    bi, birth = births[-1]
    before = [e for i, e in enumerate(cap.events) if i < bi and "topic" in e
          and e["topic"].startswith(f"{a.discovery}/device/")]
    after = [e for e in cap.events[bi + 1:] if "topic" in e
         and e["topic"].startswith(f"{a.discovery}/device/") and e["topic"].endswith("/config")]
    live = [e for e in after if not e["retain"]]
    if not before:
        errors.append("no discovery before the birth message (the capture started too late?)")
    if not live:
        errors.append("no live discovery message after HA's birth message")
    else:
        e = live[0]
        if not e["payload"].startswith("{"):
            errors.append(f"capture line {e['line']}: the discovery after the birth is not JSON")
    delay = f", the first {live[0]['t'] - birth['t']:.2f} s after it" if live else ""
    print(f"rediscovery: {len(before)} discovery message(s) before HA's birth, {len(live)} live"
          f" after it{delay}")
    return errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prefix", default="powerlogger")
    ap.add_argument("--discovery", default="homeassistant")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("intervals")
    p.add_argument("capture")
    p.add_argument("store")
    p.add_argument("meter")
    p.add_argument("--outage", type=int, default=0)
    p.add_argument("--residual-ok", action="store_true",
                   help="count, not fail, a second copy in the window between an interval and "
                   "its state")
    p = sub.add_parser("states")
    p.add_argument("capture")
    p.add_argument("meter")
    p = sub.add_parser("retained")
    p.add_argument("snapshot")
    p.add_argument("store")
    p.add_argument("meter")
    p = sub.add_parser("availability")
    p.add_argument("capture")
    p = sub.add_parser("rediscovery")
    p.add_argument("capture")
    p.add_argument("meter")
    a = ap.parse_args()
    errors = {"intervals": check_intervals, "states": check_states, "retained": check_retained,
          "availability": check_availability, "rediscovery": check_rediscovery}[a.cmd](a)
    for e in errors[:20]:
        print(f"mqtt_check {a.cmd}: {e}", file=sys.stderr)
    if len(errors) > 20:
        print(f"mqtt_check {a.cmd}: ... and {len(errors) - 20} more", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
