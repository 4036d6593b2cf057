#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the firmware's linux-target app (built by scripts/build-firmware.sh into BUILD) against
# a local InfluxDB (scripts/influxd.sh): a run of PL_FW_RUN_S seconds (default 30), killed with
# SIGKILL (the linux target's power cut), and a second run on the same emulated flash. Checks,
# from what InfluxDB holds: records of both boots arrived; every record's register is the one
# before it plus its own energy (the register continued across the kill, nothing counted twice);
# the second boot restored the register the first had saved. The app's console output goes to
# BUILD/fw-linux-run{1,2}.log.
#   fw-linux-run.sh BUILD
#   PL_FW_INFLUX_PORT  the test InfluxDB's port, the one the app was built for (18186)
set -euo pipefail
out=${1:?usage: fw-linux-run.sh BUILD, the build directory of the linux target}
src=$(cd "$(dirname "$0")/.." && pwd)
secs=${PL_FW_RUN_S:-30}
work=$(mktemp -d)
export PL_INFLUX_DIR="$work/influx"
mkdir -p "$PL_INFLUX_DIR"
app=""
cleanup() {
  [ -n "$app" ] && kill -9 "$app" 2>/dev/null || true
  bash "$src/scripts/influxd.sh" stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "fw-linux-run: $*" >&2; exit 1; }

export PL_INFLUX_PORT=${PL_FW_INFLUX_PORT:-18186}
url=$(bash "$src/scripts/influxd.sh" start 2>/dev/null) || fail "the test InfluxDB did not start"
curl -sS -XPOST "$url/query" --data-urlencode "q=CREATE DATABASE energy" >/dev/null
# the app's InfluxDB URL is a setting; this build's default points at 127.0.0.1:8086
elf="$out/powerlogger.elf"
[ -x "$elf" ] || fail "no $elf (build the linux target first)"
grep -q "^CONFIG_PL_INFLUX_URL=\"$url\"" "$out/sdkconfig" ||
  fail "the build's CONFIG_PL_INFLUX_URL is not $url (build it with scripts/build-firmware.sh)"
export PL_FLASH_FILE="$work/flash.bin"
for run in 1 2; do
  log="$out/fw-linux-run$run.log"
  "$elf" </dev/null >"$log" 2>&1 &
  app=$!
  sleep "$secs"
  kill -0 "$app" 2>/dev/null || { cat "$log" >&2; fail "run $run: the app stopped by itself"; }
  kill -9 "$app"
  wait "$app" 2>/dev/null || true
  app=""
  echo "fw-linux-run: run $run: $(grep -c 'record(s) written' "$log") request(s) acknowledged" \
       "(console output: $log)"
done
grep -q "energy register restored" "$out/fw-linux-run2.log" ||
  fail "run 2 did not restore the register"
curl -sS -G "$url/query" --data-urlencode db=energy --data-urlencode epoch=s --data-urlencode \
  "q=SELECT energy_wh, register_wh, flags FROM energy_meter_reading" >"$work/rows.json"
python3 - "$work/rows.json" "$out/fw-linux-run1.log" "$out/fw-linux-run2.log" <<'PY'
import json, re, sys
rows = json.load(open(sys.argv[1]))["results"][0].get("series", [{}])[0].get("values", [])
restored = re.search(r"energy register restored: ([0-9.]+) Wh", open(sys.argv[3]).read())
if len(rows) < 4:
    sys.exit(f"fw-linux-run: only {len(rows)} records in InfluxDB")
bad = 0
for (t0, e0, r0, f0), (t1, e1, r1, f1) in zip(rows, rows[1:]):
    if abs(r1 - (r0 + e1)) > 1e-6:
        bad += 1
        print(f"fw-linux-run: record at {t1}: register {r1} Wh, the one before {r0} + its "
              f"energy {e1}", file=sys.stderr)
total = sum(r[1] for r in rows)
print(f"fw-linux-run: {len(rows)} records in InfluxDB, {total:.3f} Wh, register "
      f"{rows[0][2]:.3f} -> {rows[-1][2]:.3f} Wh; run 2 restored {restored.group(1)} Wh; "
      f"{bad} break(s) in the register")
sys.exit(1 if bad else 0)
PY
