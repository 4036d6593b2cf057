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
#
# Then the same run with the web server on ([http] on loopback, issue 13) and clients as a
# person with Prometheus and the dashboard open would have them: /metrics scraped every second,
# /api/v1/status every 5 s (the page's live values), and every 20 s a page load (/, the 24 h
# power series, the 30 daily and 12 monthly energy buckets). Both runs' CPU and peak RSS are
# printed side by side; the clients' own CPU is not the logger's and is not counted.
# PL_FOOTPRINT_HTTP=0 leaves the second run out; a build without the server (no answer on
# /metrics) reports that instead of figures.
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
count_points() { # $1 database
  curl -sS -G "$url/query" --data-urlencode "db=$1" \
    --data-urlencode "q=SELECT count(value) FROM energy_meter_reading" |
    python3 -c 'import json, sys
d = json.load(sys.stdin)["results"][0]
print(d["series"][0]["values"][0][1] if "series" in d else 0)'
}
points=$(count_points fp)
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
[ "${PL_FOOTPRINT_HTTP:-1}" != 0 ] || exit 0

# The second run: the same, with [http] and its clients.
curl -sS -XPOST "$url/query" --data-urlencode "q=CREATE DATABASE fp2" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
sed -e "s|^path = .*|path = $work/s2.db|" -e "s|^database = fp$|database = fp2|" "$work/f.ini" \
  >"$work/h.ini"
printf '\n[http]\nlisten = 127.0.0.1:%s\n' "$port" >>"$work/h.ini"
"$here/$build/maxrss" "$here/$build/powerlogger" run -c "$work/h.ini" --quiet \
  --duration "$secs" 2>"$work/run2.err" &
run_pid=$!
python3 - "$port" "$secs" >"$work/clients.out" <<'PY' &
# The clients: one request at a time, each on a new connection, as Prometheus and a browser
# (a new page load) would mostly make them.
import sys, time, urllib.request
port, secs = int(sys.argv[1]), float(sys.argv[2])
base = f"http://127.0.0.1:{port}"
page = ["/", "/api/v1/status", "/api/v1/power", "/api/v1/energy?step=day",
        "/api/v1/energy?step=month"]
ok = failed = nbytes = 0
slowest = 0.0
t0 = time.monotonic()
# the server comes up with the logger: wait for it (up to 10 s)
while time.monotonic() - t0 < 10:
    try:
        urllib.request.urlopen(base + "/metrics", timeout=2).read()
        break
    except OSError:
        time.sleep(0.1)
else:
    print("noserver")
    sys.exit(0)
tick = 0
while time.monotonic() - t0 < secs - 2:
    paths = ["/metrics"] + (["/api/v1/status"] if tick % 5 == 0 else []) + \
        (page if tick % 20 == 0 else [])
    for p in paths:
        t = time.monotonic()
        try:
            nbytes += len(urllib.request.urlopen(base + p, timeout=5).read())
            ok += 1
        except OSError:
            failed += 1
        slowest = max(slowest, time.monotonic() - t)
    tick += 1
    time.sleep(max(0, t0 + tick - time.monotonic()))
print(f"{ok} {failed} {nbytes} {slowest:.3f}")
PY
clients_pid=$!
rc=0
wait "$run_pid" || rc=$?
wait "$clients_pid" || true
[ $rc -eq 0 ] || { cat "$work/run2.err" >&2; exit 1; }
read -r _ rss2_kb user2 sys2 wall2 < <(grep '^maxrss ' "$work/run2.err" | tail -n1)
points2=$(count_points fp2)
python3 - "$rss_kb" "$user" "$sys" "$wall" "$points" "$rss2_kb" "$user2" "$sys2" "$wall2" \
  "$points2" "$(cat "$work/clients.out")" <<'PY'
import sys
a = sys.argv[1:]
rss, cpu, wall, pts = int(a[0]), float(a[1]) + float(a[2]), float(a[3]), int(a[4])
rss2, cpu2, wall2, pts2 = int(a[5]), float(a[6]) + float(a[7]), float(a[8]), int(a[9])
clients = a[10].split()
if clients == ["noserver"] or len(clients) != 4:
    print("footprint: with [http]: no answer on /metrics: this build has no web server "
          f"(the run itself: peak RSS {rss2/1024:.1f} MiB, CPU {cpu2/wall2*100:.2f} %)")
    sys.exit(0)
ok, failed, nbytes, slowest = int(clients[0]), int(clients[1]), int(clients[2]), float(clients[3])
print(f"footprint:                    {'without [http]':>16} {'with [http] + clients':>22}")
print(f"footprint: peak RSS           {rss/1024:>12.1f} MiB {rss2/1024:>18.1f} MiB"
      f"   (+{(rss2-rss)/1024:.1f} MiB)")
print(f"footprint: CPU, % of a core   {cpu/wall*100:>14.2f} % {cpu2/wall2*100:>20.2f} %"
      f"   (+{(cpu2/wall2-cpu/wall)*100:.2f} points)")
print(f"footprint: CPU s per hour     {cpu/wall*3600:>16.0f} {cpu2/wall2*3600:>22.0f}")
print(f"footprint: records to influxd {pts:>16} {pts2:>22}")
print(f"footprint: with [http]: {ok} requests answered ({nbytes/1024:.0f} kB; /metrics every "
      f"second, the status every 5 s, a page load every 20 s), {failed} failed, the slowest "
      f"{slowest*1000:.0f} ms")
PY
