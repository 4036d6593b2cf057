#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# issue 9, fault 3: after an outage the backlog must start to drain within ~15 s of the server
# answering again, whatever the outage's length, without hammering the server while it is down.
# A REAL influxd (Debian's, private, loopback) is stopped for 45 s while `powerlogger run`
# has records to deliver; the old policy (5 min ceiling, full jitter) had reached a ceiling of
# 32 to 64 s by then and usually waited far longer than 15 s; the new one (15 s cap for refused
# connections) must deliver the first batch within 15 s of the restart (plus 3 s for a busy
# machine), and everything, once, soon after.
set -euo pipefail
bin=${1:?usage: cli_resume.sh PATH/TO/powerlogger}
src=${PL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
fill="$(dirname "$bin")/fillstore"
work=$(mktemp -d)
export PL_INFLUX_DIR="$work/influx"
mkdir -p "$PL_INFLUX_DIR"
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; bash "$src/scripts/influxd.sh" stop >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
die() { echo "cli_resume: $*" >&2; sed 's/^/  run.log: /' "$work/run.log" >&2 2>/dev/null || true; exit 1; }
n=500
outage=${PL_RESUME_OUTAGE_S:-45}

url=$(bash "$src/scripts/influxd.sh" start 2>/dev/null)
port=${url##*:}
curl -sS -XPOST "$url/query" --data-urlencode "q=CREATE DATABASE resume" >/dev/null
bash "$src/scripts/influxd.sh" stop >/dev/null             # the outage begins
"$fill" "$work/store.db" "$work/all.lp" $n --sink local 2>/dev/null
printf '[store]\npath = %s\n\n[influxdb local]\nurl = %s\ndatabase = resume\ntimeout_s = 2\n' \
  "$work/store.db" "$url" >"$work/run.ini"
count() {
  curl -sS -G "$url/query" --data-urlencode "db=resume" \
    --data-urlencode "q=SELECT count(value) FROM energy_meter_reading" 2>/dev/null |
    python3 -c 'import json,sys
r = json.load(sys.stdin)["results"][0]
print(r["series"][0]["values"][0][1] if "series" in r else 0)' 2>/dev/null || echo 0
}

"$bin" run -c "$work/run.ini" --until-drained --quiet 2>"$work/run.log" &
pid=$!
sleep "$outage"
kill -0 $pid 2>/dev/null || die "run gave up during the outage"
PL_INFLUX_PORT=$port bash "$src/scripts/influxd.sh" start >/dev/null 2>"$work/influxd.err" ||
  die "influxd did not start again: $(cat "$work/influxd.err")"   # the server is back
t0=$(date +%s%N)
first=
for _ in $(seq 1 120); do
  if [ -z "$first" ] && [ "$(count)" -gt 0 ]; then first=$(( ($(date +%s%N) - t0) / 1000000 )); fi
  kill -0 $pid 2>/dev/null || break
  sleep 0.25
done
[ -n "$first" ] || first=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$(count)" -gt 0 ] || die "nothing delivered $(( first / 1000 )) s after the server came back"
kill -0 $pid 2>/dev/null && die "backlog of $n not drained a minute after the server came back"
wait $pid || die "run exited $?"
pid=
[ "$first" -le 18000 ] ||
  die "after a ${outage} s outage the first batch arrived $first ms after the server was back (bound 15 s + 3 s)"
got=$(count)
[ "$got" = "$n" ] || die "InfluxDB has $got points, the backlog was $n"
echo "cli_resume: ${outage} s outage: first batch $first ms after the server was back, all $n delivered"
