#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Disk writes of `powerlogger run` with one simulated meter (20 s intervals) delivering to a
# local InfluxDB (a private influxd, scripts/influxd.sh): what a Pi's SD card would see.
#
# One simulated hour is replayed at --speed $PL_DISKIO_SPEED (default 60: about a minute of
# wall time). Speeding up does not change what is written per interval: each interval is one
# durable commit (written and fdatasynced whatever the pace) and one delivery. What the pace
# would change is how often the kernel writes back pages that are dirty but never synced: the
# WAL index (-shm) is a shared mapping SQLite rewrites at every commit and never syncs, and the
# kernel writes a dirty page back once it is older than vm.dirty_expire_centisecs (30 s), so
# in real time each of its pages is written about every 40 s (the first commit after the
# write-back dirties it again) and counted that often. This script plays the kernel's part at
# the simulated pace: it fsyncs the -shm every $PL_DISKIO_WRITEBACK_S simulated seconds
# (default 40; 0: never, which undercounts the -shm). The store is created by a short run
# first, so the figures are those of a logger that runs on, its stop included.
#
# Reported, scaled to an hour:
#   write_bytes  bytes the process sent (or would send) to the disk: the kernel's count of page
#                cache pages it dirtied, 4 KiB each (getrusage ru_oublock x 512 of the run,
#                which includes everything written until the process exited)
#   fsync/fdatasync  system calls, counted by strace -f -c (--seccomp-bpf: only these stop)
#   wchar/syscw  bytes passed to write calls and their number (/proc/PID/io, last sample
#                before the exit)
# and per record: write_bytes / records committed.
# Usage: bash bench/diskio.sh [BUILD] [BIN]   (BIN default BUILD/powerlogger)
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${2:-$here/$build/powerlogger}
speed=${PL_DISKIO_SPEED:-60}
writeback=${PL_DISKIO_WRITEBACK_S:-40}
secs=${PL_DISKIO_SECONDS:-3600}
[ -x "$bin" ] || { echo "diskio: no program $bin (make build first)" >&2; exit 2; }
command -v strace >/dev/null || { echo "diskio: needs strace (scripts/install-deps.sh)" >&2; exit 2; }
# the store must be on a disk file system: tmpfs counts no writes
work=$(mktemp -d "${PL_DISKIO_DIR:-$here/$build}/diskio.XXXXXX")
export PL_INFLUX_DIR="$work/influx"
mkdir -p "$PL_INFLUX_DIR"
trap 'bash "$here/scripts/influxd.sh" stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
url=$(bash "$here/scripts/influxd.sh" start 2>/dev/null)
curl -sS -XPOST "$url/query" --data-urlencode "q=CREATE DATABASE io" >/dev/null
cat >"$work/io.ini" <<EOF
[store]
path = $work/s.db

[meter house]
source = sim
imp_per_kwh = 1000

[influxdb local]
url = $url
database = io
; each record on its own, as at real-time pace (2 s of wall time would gather 6 here)
batch_max_age_s = 0
EOF
# the store and the sink's row exist before the measured run
"$bin" run -c "$work/io.ini" --quiet --speed 1 --duration 1 2>"$work/warm.err" ||
  { cat "$work/warm.err" >&2; exit 1; }
before=$(sqlite3 "$work/s.db" "SELECT COUNT(*) FROM records")
python3 - "$work" "$bin" "$speed" "$secs" "$writeback" <<'PY' || { cat "$work/run.err" >&2; exit 1; }
import os, resource, subprocess, sys, time
work, binary, speed, secs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
period = float(sys.argv[5]) / float(speed) if float(speed) > 0 else 0
cmd = ["strace", "-f", "--seccomp-bpf", "-c", "-e", "trace=fsync,fdatasync", "-o",
       f"{work}/strace.txt", binary, "run", "-c", f"{work}/io.ini", "--quiet", "--speed",
       speed, "--duration", secs]
t0 = time.monotonic()
err = open(f"{work}/run.err", "w")
p = subprocess.Popen(cmd, stderr=err, stdout=subprocess.DEVNULL)
last, child = {}, None
due = time.monotonic() + period
while p.poll() is None:
    if period > 0 and time.monotonic() >= due:
        due += period
        try:  # the kernel's write-back of the -shm (a descriptor of another process)
            fd = os.open(f"{work}/s.db-shm", os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
        except OSError:
            pass
    if child is None:
        try:
            kids = open(f"/proc/{p.pid}/task/{p.pid}/children").read().split()
            child = kids[0] if kids else None
        except OSError:
            pass
    if child is not None:
        try:
            last = dict(l.split(": ") for l in open(f"/proc/{child}/io").read().split("\n") if l)
        except OSError:
            pass
    time.sleep(min(0.2, period) if period > 0 else 0.2)
wall = time.monotonic() - t0
# poll() reaped strace, which had reaped the logger: their writes are the children's now
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(f"{work}/measured", "w") as f:
    f.write(f"{ru.ru_oublock * 512} {wall:.1f} {last.get('wchar', 0)} {last.get('syscw', 0)} "
            f"{p.returncode}\n")
PY
read -r wbytes wall wchar syscw prc <"$work/measured"
[ "$prc" = 0 ] || { echo "diskio: the run failed ($prc)" >&2; cat "$work/run.err" >&2; exit 1; }
after=$(sqlite3 "$work/s.db" "SELECT COUNT(*) FROM records")
delivered=$(curl -sS -G "$url/query" --data-urlencode "db=io" \
  --data-urlencode "q=SELECT count(value) FROM energy_meter_reading" |
  python3 -c 'import json,sys; d=json.load(sys.stdin)["results"][0]; print(d["series"][0]["values"][0][1] if "series" in d else 0)')
count() { awk -v s="$1" '$NF == s { print $4 }' "$work/strace.txt"; }
fdatasync=$(count fdatasync); fsync=$(count fsync)
python3 - "$wbytes" "$wall" "$wchar" "$syscw" "$((after - before))" "$delivered" \
  "${fdatasync:-0}" "${fsync:-0}" "$secs" "$speed" <<'PY'
import sys
wb, wall, wchar, syscw, recs, deliv, fds, fs, secs, speed = sys.argv[1:]
wb, wall, wchar, syscw = int(wb), float(wall), int(wchar), int(syscw)
recs, deliv, fds, fs, secs = int(recs), int(deliv), int(fds), int(fs), int(secs)
h = 3600 / secs
per = wb / recs if recs else float("nan")
print(f"diskio: {recs} records committed in {secs} s simulated (speed {speed}, {wall:.0f} s wall), "
      f"{deliv} points in influxd")
print(f"diskio: write_bytes {wb * h / 2**20:.2f} MiB/h ({per / 1024:.1f} KiB per record); "
      f"fdatasync {fds * h:.0f}/h, fsync {fs * h:.0f}/h ({(fds + fs) / recs if recs else 0:.2f} "
      f"per record); wchar {wchar * h / 2**20:.2f} MiB/h in {syscw * h:.0f} writes/h")
PY
