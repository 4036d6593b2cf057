#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# issue 12: both sinks at once — a REAL InfluxDB (scripts/influxd.sh) and a REAL broker
# (scripts/mosquitto.sh) — while `powerlogger run` replays a trace at 10x with 1 s intervals
# (10 records a second): 10 SIGKILLs of the logger and 3 restarts of the broker at random
# moments (seeded; PL_CHAOS_SEED=N repeats a run), each broker outage 4 to 6 s long. Then the
# rest of the trace as fast as it goes, until both sinks have everything. A capture by a real
# client (mosquitto_sub, persistent session) records powerlogger/# throughout.
#   - every interval record of the store arrived on powerlogger/house/interval exactly once,
#     in order, with its seq, start, pulses and register (tests/mqtt_check.py intervals; the
#     two kinds of copy the logger cannot prevent are counted and printed, see there);
#   - the energy on powerlogger/house/state never decreased over the whole capture;
#   - InfluxDB has every record exactly once (one point per record, at its start, with its
#     pulses and register);
#   - a dead broker does not hold InfluxDB back: `powerlogger status` is read every 0.2 s
#     throughout, and while the broker is down InfluxDB's backlog must stay as small as the
#     sink's default batching makes it anyway (batch_max_age_s 2: 20 records; bound 30) while
#     the MQTT sink's grows (at least 30 in each outage: long enough to tell). Both figures,
#     and InfluxDB's worst backlog while the broker was up, are printed.
# Each property was seen to fail by hand once: a capture line deleted, copied or moved
# (intervals), a state's energy lowered (states), a point deleted from InfluxDB (count), the
# InfluxDB sink's bound lowered to 0 (lag).
set -euo pipefail
bin=${1:?usage: cli_mqtt_chaos.sh PATH/TO/powerlogger}
src=${PL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
work=$(mktemp -d)
daemon_pid=
export PL_INFLUX_DIR="$work/influx"
mkdir -p "$PL_INFLUX_DIR"
# shellcheck source=tests/lib_mqtt.sh
. "$src/tests/lib_mqtt.sh"
cleanup() {
	[ -z "$daemon_pid" ] || kill -9 "$daemon_pid" 2>/dev/null || true
	mqtt_cleanup
	bash "$src/scripts/influxd.sh" stop >/dev/null 2>&1 || true
	if [ -n "${PL_KEEP_WORK:-}" ]; then echo "cli_mqtt_chaos: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM # the EXIT trap also when ctest or a person stops the test
die() {
	echo "cli_mqtt_chaos: $* (seed $seed)" >&2
	tail -n 20 "$work/run.log" 2>/dev/null | sed 's/^/  run.log: /' >&2 || true
	exit 1
}
check() { python3 "$src/tests/mqtt_check.py" "$@" || die "mqtt_check $* failed"; }
seed=${PL_CHAOS_SEED:-$(( $(date +%s) % 100000 ))}
RANDOM=$seed
echo "cli_mqtt_chaos: seed $seed (PL_CHAOS_SEED=$seed repeats it)"
# InfluxDB's sink holds a partial batch for batch_max_age_s (2 s by default: 20 records here);
# a dead broker must not add to that (10 records of slack for a loaded machine)
kills=10 outages=3 lag_bound=30

influx=$(bash "$src/scripts/influxd.sh" start 2>/dev/null) || die "influxd did not start"
curl -sS -XPOST "$influx/query" --data-urlencode "q=CREATE DATABASE chaos" >/dev/null
mqtt_start || die "the broker did not start"
capture_start all 'powerlogger/#' || die "no capture"
"$bin" simulate --duration 900 --rate 1000 --power 2500 --noise 20 --seed 21 \
	--out "$work/trace.csv" --quiet
cat >"$work/chaos.ini" <<INI
[store]
path = $work/chaos.db

[meter house]
source = file
file = $work/trace.csv
speed = 10
imp_per_kwh = 1000
interval_s = 1

[influxdb local]
url = $influx
database = chaos
timeout_s = 2

[mqtt home]
url = $mqtt_url
client_id = powerlogger-chaos
keepalive_s = 5
INI
"$bin" check-config "$work/chaos.ini" >/dev/null || die "the test's configuration is refused"

# The events in a random order: k (SIGKILL and restart) and o (a broker outage).
events=()
for _ in $(seq $kills); do events+=(k); done
for _ in $(seq $outages); do events+=(o); done
for ((i = ${#events[@]} - 1; i > 0; i--)); do
	j=$((RANDOM % (i + 1)))
	t=${events[i]} events[i]=${events[j]} events[j]=$t
done
echo "cli_mqtt_chaos: events ${events[*]} (k: SIGKILL, o: broker outage)"

# watch MILLISECONDS: reads both sinks' backlogs from `powerlogger status` every 0.2 s for that
# long; sets b_influx and b_mqtt to the largest seen.
watch() {
	local end=$(( $(date +%s%N) / 1000000 + $1 )) b m
	b_influx=0 b_mqtt=0
	while [ $(( $(date +%s%N) / 1000000 )) -lt $end ]; do
		b=$(sink_backlog "$work/chaos.ini" local)
		m=$(sink_backlog "$work/chaos.ini" home)
		[ -z "$b" ] || [ "$b" -le "$b_influx" ] || b_influx=$b
		[ -z "$m" ] || [ "$m" -le "$b_mqtt" ] || b_mqtt=$m
		sleep 0.2
	done
}
up_influx=0 down_influx=0 least_mqtt=1000000
daemon_start "$work/chaos.ini"
for ev in "${events[@]}"; do
	watch $((1000 + RANDOM % 3000)) # 1 to 4 s of logging
	[ "$b_influx" -le "$up_influx" ] || up_influx=$b_influx
	kill -0 "$daemon_pid" 2>/dev/null || die "the logger exited by itself"
	if [ "$ev" = k ]; then
		daemon_kill
		daemon_start "$work/chaos.ini"
		continue
	fi
	mqtt_broker stop || die "the broker did not stop"
	watch $((4000 + RANDOM % 2000))
	mqtt_broker start || die "the broker did not start again"
	echo "cli_mqtt_chaos: broker outage: InfluxDB's backlog at most $b_influx records, the" \
		"MQTT sink's grew to $b_mqtt"
	[ "$b_influx" -le "$down_influx" ] || down_influx=$b_influx
	[ "$b_mqtt" -ge "$least_mqtt" ] || least_mqtt=$b_mqtt
done
last=$("$bin" status -c "$work/chaos.ini" | sed -n 's/.*last interval \([0-9]*\)\.[0-9]* s.*/\1/p')
[ "${last:-0}" -lt 895 ] || die "the trace ended before the last event: too slow a machine?"
# the last event may have been a kill and a start a moment ago
daemon_catches_term 10 || die "the logger does not handle SIGTERM 10 s after its start"
kill -TERM "$daemon_pid"
daemon_wait 30 || { daemon_stacks; die "the logger did not stop cleanly on SIGTERM"; }
daemon_start "$work/chaos.ini" --until-drained --speed 0
daemon_wait 120 || die "the replay did not end and drain cleanly within 120 s"
capture_sync all || die "the capture does not answer"
"$bin" backup -c "$work/chaos.ini" "$work/copy.db" >/dev/null || die "powerlogger backup failed"

check intervals "$work/all.cap" "$work/copy.db" house
check states "$work/all.cap" house
! grep "register was set lower" "$work/run.log" ||
	die "the logger reported a register set lower, but nobody set it"

# InfluxDB: one point per record, at its start, with its pulses and register
curl -sS -G "$influx/query" --data-urlencode "db=chaos" --data-urlencode "epoch=u" \
	--data-urlencode "q=SELECT value, register_wh FROM energy_meter_reading WHERE device = 'house'" \
	>"$work/influx.json"
python3 - "$work/influx.json" "$work/copy.db" <<'PY' || die "InfluxDB: not every record once"
import json, sqlite3, sys
d = json.load(open(sys.argv[1]))["results"][0]
rows = d["series"][0]["values"] if "series" in d else []
got = {}
for t, v, reg in rows:
    got.setdefault(t, []).append((v, reg))
db = sqlite3.connect(sys.argv[2])
recs = db.execute("SELECT r.start_us, r.pulses, r.register_uwh FROM records r JOIN meters m "
                  "ON m.id = r.meter_id WHERE m.name = 'house' ORDER BY r.seq").fetchall()
bad = [(s, p, u, got.get(s)) for s, p, u in recs
       if got.get(s) != [(p, u / 1e6)]]
extra = set(got) - {s for s, _, _ in recs}
print(f"influxdb: {len(recs)} records in the store, {len(rows)} points, "
      f"{len(bad)} missing or different, {len(extra)} not in the store")
for b in bad[:5]:
    print(f"  record at {b[0]} us: pulses {b[1]}, register {b[2]} uWh; InfluxDB: {b[3]}",
          file=sys.stderr)
sys.exit(1 if bad or extra or len(rows) != len(recs) else 0)
PY
# 10 records a second: the worst lag in seconds of logging is the backlog / 10
echo "cli_mqtt_chaos: InfluxDB's worst backlog: $down_influx records (a lag of" \
	"$((down_influx / 10)).$((down_influx % 10)) s) while the broker was down (bound $lag_bound)," \
	"$up_influx while it was up (restarts after SIGKILLs included); the MQTT sink's at least" \
	"$least_mqtt in each outage"
[ "$least_mqtt" -ge 30 ] ||
	die "the MQTT backlog reached only $least_mqtt in an outage: too short to show anything"
[ "$down_influx" -le "$lag_bound" ] ||
	die "InfluxDB fell $down_influx records behind while the broker was down (bound $lag_bound)"
echo "cli_mqtt_chaos: $kills SIGKILLs and $outages broker restarts: every record once and in" \
	"order on MQTT and in InfluxDB, the total never fell, InfluxDB not held back by the broker"
