#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The store under `powerlogger run` when it is not what it should be:
#  1. a file that is not a store, and a store with a damaged page: refused with a clear
#     message, exit status 1, the file byte for byte unchanged (with a sink configured too:
#     the sinks start while the integrity check runs, and must not write either);
#  2. a store at its size bound with only undelivered records (max_size_mb): new interval
#     records wait in memory, the condition is logged once; a stop with records still waiting
#     says how many are lost (a file source replays them); once a sink delivers, the retention
#     policy makes room and every record arrives in a real InfluxDB, exactly once.
set -euo pipefail
bin=${1:?usage: cli_store.sh PATH/TO/powerlogger}
src=${PL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
fill="$(dirname "$bin")/fillstore"
work=$(mktemp -d)
export PL_INFLUX_DIR="$work/influx"
mkdir -p "$PL_INFLUX_DIR"
cleanup() { bash "$src/scripts/influxd.sh" stop >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "cli_store: $*" >&2; exit 1; }

url=$(bash "$src/scripts/influxd.sh" start 2>/dev/null)
absent=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
count() {
  curl -sS -G "$url/query" --data-urlencode "db=$1" \
    --data-urlencode "q=SELECT count(value) FROM energy_meter_reading" |
    python3 -c 'import json,sys; d=json.load(sys.stdin)["results"][0]; print(d["series"][0]["values"][0][1] if "series" in d else 0)'
}

# 1. not a store; a damaged store
refused() { # $1 store file, $2 sink URL
  local before after rc=0
  before=$(sha256sum <"$1")
  printf '[store]\npath = %s\n\n[meter m]\n\n[influxdb s]\nurl = %s\ndatabase = dmg\ntimeout_s = 1\n' \
    "$1" "$2" >"$work/r.ini"
  "$bin" run -c "$work/r.ini" --quiet 2>"$work/r.log" || rc=$?
  [ $rc -eq 1 ] || fail "run on $(basename "$1") exited $rc, not 1"
  grep -q "not a PowerLogger store (or damaged): $1" "$work/r.log" ||
    { cat "$work/r.log" >&2; fail "no clear message for $(basename "$1")"; }
  after=$(sha256sum <"$1")
  [ "$before" = "$after" ] || fail "$(basename "$1") was changed"
}
printf '[meter house]\nsource = sim\n' >"$work/config.db"
refused "$work/config.db" "http://127.0.0.1:$absent"
"$fill" "$work/damaged.db" /dev/null 5000 2>/dev/null
python3 - "$work/damaged.db" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
assert len(b) > 8 * 4096
b[5 * 4096 + 16 : 5 * 4096 + 1016] = b"\x5a" * 1000   # inside a b-tree page, past its header
open(p, "wb").write(b)
PY
refused "$work/damaged.db" "http://127.0.0.1:$absent"
curl -sS -XPOST "$url/query" --data-urlencode "q=CREATE DATABASE dmg" >/dev/null
refused "$work/damaged.db" "$url"
echo "cli_store: a configuration file and a damaged store given as the store: refused, unchanged"

# 2. at the size bound
n=20000
"$fill" "$work/full.db" /dev/null $n 2>/dev/null
"$bin" simulate --duration 120 --rate 1000 --power 3000 --noise 20 --seed 9 \
  --out "$work/t.csv" --truth /dev/null --quiet
nrec=$("$bin" detect --quiet --imp-per-kwh 1000 --interval 20 --format lp "$work/t.csv" | wc -l)
config() { # $1 sink URL
  printf '[store]\npath = %s\nmax_size_mb = 1\n\n' "$work/full.db"
  printf '[meter house2]\nsource = file\nfile = %s\nspeed = 0\nimp_per_kwh = 1000\n\n' "$work/t.csv"
  printf '[influxdb s]\nurl = %s\ndatabase = full\ntimeout_s = 1\n' "$1"
}
config "http://127.0.0.1:$absent" >"$work/full.ini"
"$bin" run -c "$work/full.ini" --quiet 2>"$work/full.log" &
pid=$!
sleep 3
kill -TERM $pid
rc=0; wait $pid || rc=$?
[ $rc -eq 1 ] || { cat "$work/full.log" >&2; fail "stop with records waiting exited $rc, not 1"; }
grep -q "store over its size bound.*new records wait in memory" "$work/full.log" ||
  { cat "$work/full.log" >&2; fail "the size bound was not reported"; }
[ "$(grep -c 'new records wait in memory' "$work/full.log")" -eq 1 ] ||
  { cat "$work/full.log" >&2; fail "the size bound was reported more than once"; }
grep -q "meter house2: $nrec interval records could not be stored and are lost (a restart replays them" \
  "$work/full.log" || { cat "$work/full.log" >&2; fail "the loss at the stop was not reported"; }
curl -sS -XPOST "$url/query" --data-urlencode "q=CREATE DATABASE full" >/dev/null
config "$url" >"$work/full.ini"
"$bin" run -c "$work/full.ini" --quiet --until-drained 2>>"$work/full.log"
grep -q "store: writing again" "$work/full.log" ||
  { cat "$work/full.log" >&2; fail "commits did not resume after delivery made room"; }
got=$(count full)
[ "$got" -eq $((n + nrec)) ] || fail "InfluxDB has $got points, want $n + $nrec"
echo "cli_store: at its size bound the store refused; $nrec records waited in memory (reported" \
  "once, their loss at a stop reported); after the sink caught up all $((n + nrec)) points arrived"
