#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `powerlogger run` end to end against a real InfluxDB (Debian's influxd, started privately on
# loopback by scripts/influxd.sh): a 15-minute trace file is replayed as fast as possible and
# delivered; the points in InfluxDB must be exactly the interval records that
# `powerlogger detect --interval 20` computes from the same file. Then the same replay again
# into a fresh database and store, killed with SIGKILL at random moments and restarted until it
# is done, with influxd stopped and started in between: the points must still be exactly the
# same, none missing, none doubled. Meanwhile readers keep reading the store: `powerlogger status`
# in a loop and `sqlite3 .backup` every second; each backup must pass PRAGMA integrity_check.
set -euo pipefail
bin=${1:?usage: cli_run.sh PATH/TO/powerlogger}
src=${PL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
work=$(mktemp -d)
export PL_INFLUX_DIR="$work/influx"
mkdir -p "$PL_INFLUX_DIR"
cleanup() {
  [ -z "${readers_pid:-}" ] || kill "$readers_pid" 2>/dev/null || true
  bash "$src/scripts/influxd.sh" stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

url=$(bash "$src/scripts/influxd.sh" start 2>/dev/null)
q() { curl -sS -G "$url/query" --data-urlencode "db=$1" --data-urlencode "q=$2"; }
curl -sS -XPOST "$url/query" --data-urlencode "q=CREATE DATABASE pl" >/dev/null
curl -sS -XPOST "$url/query" --data-urlencode "q=CREATE DATABASE chaos" >/dev/null

"$bin" simulate --duration 900 --rate 1000 --power 2500 --noise 20 --flicker 0.2 --seed 4 \
  --out "$work/trace.csv" --truth "$work/truth.csv" --quiet
"$bin" detect --quiet --imp-per-kwh 1000 --interval 20 --format lp --device house \
  "$work/trace.csv" | sort >"$work/expected.lp"
nexp=$(wc -l <"$work/expected.lp")
[ "$nexp" -ge 40 ] || { echo "cli_run: only $nexp reference records" >&2; exit 1; }

config() { # $1 database, $2 store, $3 speed
  cat <<INI
[store]
path = $2

[meter house]
source = file
file = $work/trace.csv
speed = ${3:-0}
imp_per_kwh = 1000

[influxdb local]
url = $url
database = $1
timeout_s = 2
INI
}

# Points as line protocol again, sorted, from InfluxDB's JSON (epoch seconds).
dump() {
  q "$1" "SELECT * FROM energy_meter_reading" | python3 -c '
import json, sys
d = json.load(sys.stdin)
s = d["results"][0].get("series")
if not s: sys.exit(0)
cols = s[0]["columns"]
for row in s[0]["values"]:
    r = dict(zip(cols, row))
    print(r["time"], r["value"], r["energy_wh"], r["register_wh"], r["rejected"], r["flags"])
' --  | sort -n
}
expected_fields() { # the reference in the same shape
  python3 - "$work/expected.lp" <<'PY'
import sys
for line in open(sys.argv[1]):
    head, fields, ts = line.rsplit(" ", 2)
    f = dict(kv.split("=", 1) for kv in fields.split(","))
    num = lambda v: float(v.rstrip("i"))
    print(int(ts) * 10**9 // 10**9, num(f["value"]), num(f["energy_wh"]), num(f["register_wh"]),
          int(num(f["rejected"])), int(num(f["flags"])))
PY
}
norm() { python3 -c '
import sys
for l in sys.stdin:
    p = l.split()
    print(" ".join([str(int(float(p[0]) if p[0].replace(".","").isdigit() else 0))] + ["%g" % float(x) for x in p[1:]]))
' | sort -n; }

# InfluxDB returns RFC3339 unless asked for epochs: ask for seconds.
q() { curl -sS -G "$url/query" --data-urlencode "db=$1" --data-urlencode "epoch=s" --data-urlencode "q=$2"; }

expected_fields | norm >"$work/want.txt"

# 1. one uninterrupted run
config pl "$work/one.db" >"$work/one.ini"
"$bin" run -c "$work/one.ini" --until-drained --quiet
dump pl | norm >"$work/got1.txt"
if ! cmp -s "$work/want.txt" "$work/got1.txt"; then
  echo "cli_run: uninterrupted run differs from detect's records:" >&2
  diff "$work/want.txt" "$work/got1.txt" | head -20 >&2
  exit 1
fi
echo "cli_run: uninterrupted replay: $(wc -l <"$work/got1.txt") points, equal to detect's records"
# status, from the stopped logger's store
"$bin" status -c "$work/one.ini" >"$work/status.txt"
grep -q "house: register" "$work/status.txt" && grep -q "local: backlog 0 records; 0 quarantined" "$work/status.txt" ||
  { echo "cli_run: status says:" >&2; cat "$work/status.txt" >&2; exit 1; }

# 2. killed with SIGKILL at random moments, influxd stopped and started in between. The replay
# runs at 100x, so a run lasts 9 s and every kill lands mid-stream.
config chaos "$work/chaos.db" 100 >"$work/chaos.ini"
mkdir "$work/backups"
readers() { # until chaos.stop appears: status every 0.2 s, a backup every second
  local i=0
  while [ ! -e "$work/chaos.stop" ]; do
    i=$((i + 1))
    if "$bin" status -c "$work/chaos.ini" >"$work/r.out" 2>"$work/r.err"; then
      echo ok >>"$work/status.runs"
    elif grep -q "no such store\|empty" "$work/r.err"; then
      : # before the first run created it
    else
      { echo "status $i:"; cat "$work/r.err"; } >>"$work/readers.fail"
    fi
    if [ $((i % 5)) -eq 0 ] && [ -s "$work/chaos.db" ]; then
      sqlite3 "$work/chaos.db" ".timeout 5000" ".backup $work/backups/$i.db" 2>>"$work/readers.fail" ||
        echo "backup $i failed" >>"$work/readers.fail"
    fi
    sleep 0.2
  done
}
readers &
readers_pid=$!
kills=0 restarts=0
while [ $kills -lt 20 ] || [ $restarts -lt 5 ]; do
  "$bin" run -c "$work/chaos.ini" --until-drained --quiet 2>>"$work/chaos.log" &
  pid=$!
  sleep "0.$((RANDOM % 6 + 2))"
  kill -9 $pid 2>/dev/null || { echo "cli_run: the replay ended before it was killed" >&2; exit 1; }
  wait $pid 2>/dev/null || true
  kills=$((kills + 1))
  if [ $((kills % 4)) -eq 0 ]; then
    # influxd goes away; the logger keeps logging, cannot deliver, and is killed again
    bash "$src/scripts/influxd.sh" stop >/dev/null
    restarts=$((restarts + 1))
    "$bin" run -c "$work/chaos.ini" --quiet 2>>"$work/chaos.log" &
    pid=$!
    sleep 0.3
    kill -9 $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
    kills=$((kills + 1))
    bash "$src/scripts/influxd.sh" start >/dev/null 2>"$work/influxd.err" ||
      { echo "cli_run: influxd did not start again:" >&2; cat "$work/influxd.err" >&2; exit 1; }
  fi
done
# and then to the end, as fast as it goes
"$bin" run -c "$work/chaos.ini" --until-drained --quiet --speed 0 2>>"$work/chaos.log"
touch "$work/chaos.stop"
wait $readers_pid
[ ! -s "$work/readers.fail" ] || { echo "cli_run: a reader failed:" >&2; head -20 "$work/readers.fail" >&2; exit 1; }
nstatus=$(wc -l <"$work/status.runs")
nbackups=0
for b in "$work/backups"/*.db; do
  [ "$(sqlite3 "$b" 'PRAGMA integrity_check')" = ok ] ||
    { echo "cli_run: backup $(basename "$b") taken during the chaos is damaged" >&2; exit 1; }
  sqlite3 "$b" "SELECT COUNT(*) FROM records" >/dev/null
  nbackups=$((nbackups + 1))
done
[ "$nstatus" -ge 20 ] && [ "$nbackups" -ge 4 ] ||
  { echo "cli_run: only $nstatus status runs and $nbackups backups during the chaos" >&2; exit 1; }
dump chaos | norm >"$work/got2.txt"
if ! cmp -s "$work/want.txt" "$work/got2.txt"; then
  echo "cli_run: after $kills kills and $restarts influxd restarts the points differ:" >&2
  diff "$work/want.txt" "$work/got2.txt" | head -20 >&2
  exit 1
fi
echo "cli_run: $kills SIGKILLs, $restarts influxd restarts, $nstatus status runs and $nbackups" \
  "sqlite3 backups (all intact) beside it: $(wc -l <"$work/got2.txt") points, equal, none missing, none doubled"

# 3. Two more sinks beside the real one: a listener that accepts and never answers (every
# request times out) and a port with no listener at all (refused). The real sink gets
# everything; the others keep all of it, say why in `status`, and a stop does not hang on the
# request in flight. Then the same two sinks (same names: same cursors) pointed at the real
# server receive every point, exactly once.
python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(64)
print(s.getsockname()[1], flush=True)
held = []
while True:
    c, _ = s.accept(); held.append(c)   # read nothing, answer nothing
' >"$work/silent.port" &
silent_pid=$!
trap 'kill $silent_pid 2>/dev/null; cleanup' EXIT
for _ in $(seq 50); do [ -s "$work/silent.port" ] && break; sleep 0.1; done
silent=$(cat "$work/silent.port")
absent=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
for db in pl3 late_silent late_absent; do
  curl -sS -XPOST "$url/query" --data-urlencode "q=CREATE DATABASE $db" >/dev/null
done
sinks() { # $1 URL of "silent", $2 URL of "absent"
  printf '\n[influxdb silent]\nurl = %s\ndatabase = late_silent\ntimeout_s = 1\n' "$1"
  printf '\n[influxdb absent]\nurl = %s\ndatabase = late_absent\ntimeout_s = 1\n' "$2"
}
{ config pl3 "$work/three.db"; sinks "http://127.0.0.1:$silent" "http://127.0.0.1:$absent"; } \
  >"$work/three.ini"
"$bin" run -c "$work/three.ini" --quiet 2>"$work/three.log" &
pid=$!
for _ in $(seq 100); do # until the real sink has it all
  [ "$(dump pl3 | wc -l)" -ge "$nexp" ] && break
  sleep 0.2
done
sleep 1.5 # at least one timeout on the silent sink
t0=$(date +%s.%N)
kill -TERM $pid
rc=0; wait $pid || rc=$?
t1=$(date +%s.%N)
stop_s=$(python3 -c "print(round($t1 - $t0, 2))")
[ $rc -eq 0 ] || { echo "cli_run: SIGTERM exit status $rc" >&2; cat "$work/three.log" >&2; exit 1; }
python3 -c "import sys; sys.exit(0 if $stop_s < 5 else 1)" ||
  { echo "cli_run: SIGTERM took $stop_s s with a request hanging" >&2; exit 1; }
dump pl3 | norm | cmp -s "$work/want.txt" - ||
  { echo "cli_run: the real sink beside two dead ones did not get every point" >&2; exit 1; }
"$bin" status -c "$work/three.ini" >"$work/status3.txt"
grep -A1 "silent: backlog $nexp records" "$work/status3.txt" | grep -q "FAILING.*timeout" &&
  grep -A1 "absent: backlog $nexp records" "$work/status3.txt" | grep -q "FAILING.*refused" ||
  { echo "cli_run: status of the dead sinks says:" >&2; cat "$work/status3.txt" >&2; exit 1; }
grep -q "sink silent: .*timeout" "$work/three.log" && grep -q "sink absent: .*refused" "$work/three.log" ||
  { echo "cli_run: the log does not say why the sinks fail:" >&2; cat "$work/three.log" >&2; exit 1; }
{ config pl3 "$work/three.db"; sinks "$url" "$url"; } >"$work/three.ini"
"$bin" run -c "$work/three.ini" --until-drained --quiet 2>>"$work/three.log"
for db in late_silent late_absent; do
  dump $db | norm | cmp -s "$work/want.txt" - ||
    { echo "cli_run: $db differs after the sink came back" >&2; exit 1; }
done
echo "cli_run: silent listener and no listener: the real sink got all $nexp points, the dead" \
  "ones kept theirs (status: timeout, refused), SIGTERM with a request hanging took $stop_s s," \
  "and every point arrived once they pointed at a live server"
