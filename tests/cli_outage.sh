#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A week offline: 30,240 interval records (7 days at 20 s) wait in the store while InfluxDB is
# down; `powerlogger run` keeps trying (backing off) and, once the server is back, delivers
# every one of them, oldest first, with no loss and no double.
set -euo pipefail
bin=${1:?usage: cli_outage.sh PATH/TO/powerlogger}
src=${PL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
fill="$(dirname "$bin")/fillstore"
work=$(mktemp -d)
export PL_INFLUX_DIR="$work/influx"
mkdir -p "$PL_INFLUX_DIR"
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; bash "$src/scripts/influxd.sh" stop >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
n=30240

url=$(bash "$src/scripts/influxd.sh" start 2>/dev/null)
port=${url##*:}
curl -sS -XPOST "$url/query" --data-urlencode "q=CREATE DATABASE week" >/dev/null
bash "$src/scripts/influxd.sh" stop >/dev/null           # the outage begins
"$fill" "$work/store.db" "$work/week.lp" $n 2>/dev/null   # a week logged meanwhile
printf '[store]\npath = %s\n\n[influxdb local]\nurl = %s\ndatabase = week\ntimeout_s = 2\n' \
  "$work/store.db" "$url" >"$work/run.ini"

"$bin" run -c "$work/run.ini" --until-drained --quiet 2>"$work/run.log" &
pid=$!
sleep 3                                                   # it tries, fails, backs off
kill -0 $pid || { echo "cli_outage: run gave up while the server was down" >&2; cat "$work/run.log" >&2; exit 1; }
grep -q "keeping" "$work/run.log" || { echo "cli_outage: no failure reported" >&2; exit 1; }
"$bin" status -c "$work/run.ini" | grep -q "local: backlog $n records, oldest from" ||
  { echo "cli_outage: status does not show the backlog" >&2; "$bin" status -c "$work/run.ini" >&2; exit 1; }
PL_INFLUX_PORT=$port bash "$src/scripts/influxd.sh" start >/dev/null 2>"$work/influxd.err" ||
  { echo "cli_outage: influxd did not start again:" >&2; cat "$work/influxd.err" >&2; exit 1; }  # the server returns
for i in $(seq 1 120); do kill -0 $pid 2>/dev/null || break; sleep 0.5; done
if kill -0 $pid 2>/dev/null; then echo "cli_outage: backlog not drained in 60 s" >&2; exit 1; fi
wait $pid; pid=
got=$(curl -sS -G "$url/query" --data-urlencode "db=week" --data-urlencode "epoch=s" \
  --data-urlencode "q=SELECT count(value), sum(value), first(value), last(value) FROM energy_meter_reading" |
  python3 -c 'import json,sys; print(*json.load(sys.stdin)["results"][0]["series"][0]["values"][0][1:])')
want=$(python3 - "$work/week.lp" <<'PY'
import sys
v = [float(l.split(" ")[1].split(",")[0].split("=")[1]) for l in open(sys.argv[1])]
print(len(v), int(sum(v)), int(v[0]), int(v[-1]))
PY
)
[ "$got" = "$want" ] || { echo "cli_outage: InfluxDB has '$got' (count sum first last), the week was '$want'" >&2; exit 1; }
echo "cli_outage: a week ($n records) delivered after the outage: count, sum, first and last match"
# oldest first: the store delivers by sequence, which is the order the records were logged in;
# the log shows the failure and the recovery, once each (not one line per retry)
grep -c "keeping" "$work/run.log" | { read k; [ "$k" -le 3 ] || { echo "cli_outage: $k failure lines for one outage" >&2; exit 1; }; }
grep -q "delivering again" "$work/run.log" || { echo "cli_outage: recovery not reported" >&2; exit 1; }
