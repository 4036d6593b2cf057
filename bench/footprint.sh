#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Footprint of `powerlogger run` with one meter and one InfluxDB sink (a local influxd): peak
# RSS, and CPU time for a 1 kHz sample stream replayed at real-time pace (a trace file read at
# speed 1), scaled to an hour. Targets: peak RSS under half of vzlogger's 13.6 MB for one
# channel (vzlogger 0.8.10 against InfluxDB 1.6.7, measured by the team); under 1 % of one core.
#
# Measured in the same run, as the floor under any libcurl-based logger: bench/curlbase, which
# only loads libcurl, initialises it and posts one line. Peak RSS by bench/maxrss (vfork: the
# figure is the command's own, see there).
set -euo pipefail
build=${1:-build}
secs=${PL_FOOTPRINT_SECONDS:-60}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
export PL_INFLUX_DIR="$work/influx"
mkdir -p "$PL_INFLUX_DIR"
trap 'bash "$here/scripts/influxd.sh" stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
url=$(bash "$here/scripts/influxd.sh" start 2>/dev/null)
curl -sS -XPOST "$url/query" --data-urlencode "q=CREATE DATABASE fp" >/dev/null

"$here/$build/powerlogger" simulate --duration $((secs + 30)) --rate 1000 --power 2000 \
  --noise 20 --out "$work/t.csv" --truth /dev/null --quiet
cat >"$work/f.ini" <<EOF
[store]
path = $work/s.db

[meter house]
source = file
file = $work/t.csv
speed = 1
imp_per_kwh = 1000

[influxdb local]
url = $url
database = fp
batch_max_age_s = 0
EOF
"$here/$build/maxrss" "$here/$build/powerlogger" run -c "$work/f.ini" --quiet \
  --duration "$secs" 2>"$work/run.err" || { cat "$work/run.err" >&2; exit 1; }
read -r _ rss_kb user sys wall < <(grep '^maxrss ' "$work/run.err" | tail -n1)
"$here/$build/maxrss" "$here/$build/curlbase" "$url/write?db=fp" 2>"$work/base.err" ||
  { cat "$work/base.err" >&2; exit 1; }
read -r _ base_kb _ < <(grep '^maxrss ' "$work/base.err" | tail -n1)
points=$(curl -sS -G "$url/query" --data-urlencode "db=fp" \
  --data-urlencode "q=SELECT count(value) FROM energy_meter_reading" |
  python3 -c 'import json,sys; d=json.load(sys.stdin)["results"][0]; print(d["series"][0]["values"][0][1] if "series" in d else 0)')
python3 - "$rss_kb" "$user" "$sys" "$wall" "$base_kb" "$points" <<'PY'
import sys
rss, user, sys_, wall, base, points = (int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]),
                                       float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
cpu = user + sys_
vz = 13.6 * 1000  # kB: vzlogger 0.8.10, one channel, as the team measured it
print(f"footprint: peak RSS {rss/1024:.1f} MiB ({rss/vz*100:.0f} % of vzlogger's 13.6 MB; "
      f"target 50 %); libcurl alone (curlbase, same run) {base/1024:.1f} MiB, "
      f"so the logger's own share is {(rss-base)/1024:.1f} MiB")
print(f"footprint: CPU {cpu:.2f} s over {wall:.0f} s of 1 kHz input at real-time pace = "
      f"{cpu/wall*100:.2f} % of a core, {cpu/wall*3600:.0f} s per hour; "
      f"{points} interval records delivered to influxd")
PY
