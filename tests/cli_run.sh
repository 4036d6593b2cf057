#!/usr/bin/env bash
# `powerlogger run` end to end against a real InfluxDB (Debian's influxd, started privately on
# loopback by scripts/influxd.sh): a 15-minute trace file is replayed as fast as possible and
# delivered; the points in InfluxDB must be exactly the interval records that
# `powerlogger detect --interval 20` computes from the same file. Then the same replay again
# into a fresh database and store, killed with SIGKILL at random moments and restarted until it
# is done, with influxd stopped and started in between: the points must still be exactly the
# same, none missing, none doubled.
set -euo pipefail
bin=${1:?usage: cli_run.sh PATH/TO/powerlogger}
src=${PL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
work=$(mktemp -d)
export PL_INFLUX_DIR="$work/influx"
mkdir -p "$PL_INFLUX_DIR"
cleanup() { bash "$src/scripts/influxd.sh" stop >/dev/null 2>&1 || true; rm -rf "$work"; }
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
    bash "$src/scripts/influxd.sh" start >/dev/null 2>&1
  fi
done
# and then to the end, as fast as it goes
"$bin" run -c "$work/chaos.ini" --until-drained --quiet --speed 0 2>>"$work/chaos.log"
dump chaos | norm >"$work/got2.txt"
if ! cmp -s "$work/want.txt" "$work/got2.txt"; then
  echo "cli_run: after $kills kills and $restarts influxd restarts the points differ:" >&2
  diff "$work/want.txt" "$work/got2.txt" | head -20 >&2
  exit 1
fi
echo "cli_run: $kills SIGKILLs, $restarts influxd restarts: $(wc -l <"$work/got2.txt") points, equal, none missing, none doubled"
