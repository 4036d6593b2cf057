#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the firmware's linux-target app (built by scripts/build-firmware.sh into BUILD) the way a
# user runs the device, against a local InfluxDB (scripts/influxd.sh), on an emulated flash of
# its own (a temporary file, not the user's powerlogger-flash.bin):
#   0. set up through the serial console: the InfluxDB URL, 5 s intervals, a WiFi password
#      (a secret: it must never appear in the output), `restart`;
#   1. a run of PL_FW_RUN_S seconds (default 30) in which the console sets the energy register
#      to a meter reading and shows `status`, then SIGKILL (the linux target's power cut);
#   2. a second run on the same flash, InfluxDB stopped for a third of it and started again.
# Checks, from what InfluxDB holds: records of both runs arrived; every record's register is
# the one before it plus its own energy (the register went on across the kill, nothing was
# counted twice, nothing lost while the server was away), but for the one where the register
# was set, which starts from the reading given; the second run restored the register the first
# had saved. The console output goes to BUILD/fw-linux-run{0,1,2}.log.
#   fw-linux-run.sh BUILD
#   PL_FW_INFLUX_PORT  the test InfluxDB's port (default: the first free from 18086 up)
set -euo pipefail
out=${1:?usage: fw-linux-run.sh BUILD, the build directory of the linux target}
src=$(cd "$(dirname "$0")/.." && pwd)
secs=${PL_FW_RUN_S:-30}
reading=1234.5 # kWh, the meter reading the console sets in run 1
secret="s3cret-wifi-$$"
work=$(mktemp -d)
export PL_INFLUX_DIR="$work/influx"
mkdir -p "$PL_INFLUX_DIR"
app="" feeder=""
cleanup() {
  for p in $app $feeder; do kill -9 "$p" 2>/dev/null || true; done
  bash "$src/scripts/influxd.sh" stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "fw-linux-run: $*" >&2; exit 1; }

[ -n "${PL_FW_INFLUX_PORT:-}" ] && export PL_INFLUX_PORT=$PL_FW_INFLUX_PORT
url=$(bash "$src/scripts/influxd.sh" start 2>/dev/null) || fail "the test InfluxDB did not start"
curl -sS -XPOST "$url/query" --data-urlencode "q=CREATE DATABASE energy" >/dev/null
elf="$out/powerlogger.elf"
[ -x "$elf" ] || fail "no $elf (build the linux target first: scripts/build-firmware.sh)"
export PL_FLASH_FILE="$work/flash.bin"

# 0. the settings, through the console; `restart` ends the process on the linux target
{ printf 'set influx_url %s\nset interval_s 5\nset wifi_pass\n%s\nshow\nrestart\n' "$url" \
    "$secret"; sleep 20; } | timeout 30 "$elf" >"$out/fw-linux-run0.log" 2>&1 ||
  { cat "$out/fw-linux-run0.log" >&2; fail "run 0: the console did not restart the app"; }
grep -q "influx_url .*\"$url\"" "$out/fw-linux-run0.log" ||
  { cat "$out/fw-linux-run0.log" >&2; fail "run 0: the console did not take the URL"; }

mkfifo "$work/console"
for run in 1 2; do
  log="$out/fw-linux-run$run.log"
  "$elf" <"$work/console" >"$log" 2>&1 &
  app=$!
  if [ $run = 1 ]; then
    # the console: the meter's reading, then the status
    { sleep 2; printf 'register %s\n' "$reading"; sleep 8; printf 'status\n'; exec sleep 1000; } \
      >"$work/console" 2>/dev/null &
  else
    { exec sleep 1000; } >"$work/console" 2>/dev/null &
  fi
  feeder=$!
  if [ $run = 2 ]; then
    # the server pulled away for a third of the run: the records wait in the outbox
    sleep $((secs / 3))
    bash "$src/scripts/influxd.sh" stop >/dev/null 2>&1
    sleep $((secs / 3))
    bash "$src/scripts/influxd.sh" start >/dev/null 2>&1 || fail "the test InfluxDB did not restart"
    sleep $((secs - 2 * (secs / 3)))
  else
    sleep "$secs"
  fi
  kill -0 "$app" 2>/dev/null || { cat "$log" >&2; fail "run $run: the app stopped by itself"; }
  kill -9 "$app"
  wait "$app" 2>/dev/null || true
  kill "$feeder" 2>/dev/null || true
  wait "$feeder" 2>/dev/null || true
  app="" feeder=""
  echo "fw-linux-run: run $run: $(grep -c 'record(s) written' "$log") request(s) acknowledged," \
       "$(grep -c 'record(s) kept' "$log") refused or failed (console output: $log)"
done
for run in 0 1 2; do
  ! grep -q -- "$secret" "$out/fw-linux-run$run.log" ||
    fail "run $run: the WiFi password appears in the console output"
done
grep -q "energy register restored" "$out/fw-linux-run2.log" ||
  fail "run 2 did not restore the register"
curl -sS -G "$url/query" --data-urlencode db=energy --data-urlencode epoch=s --data-urlencode \
  "q=SELECT energy_wh, register_wh, flags FROM energy_meter_reading" >"$work/rows.json"
python3 - "$work/rows.json" "$out/fw-linux-run2.log" "$reading" <<'PY'
import json, re, sys
rows = json.load(open(sys.argv[1]))["results"][0].get("series", [{}])[0].get("values", [])
restored = re.search(r"energy register restored: ([0-9.]+) Wh", open(sys.argv[2]).read())
reading_wh = float(sys.argv[3]) * 1000
if len(rows) < 8:
    sys.exit(f"fw-linux-run: only {len(rows)} records in InfluxDB")
breaks, set_at = 0, None
if reading_wh <= rows[0][2] <= reading_wh + rows[0][1] + 1e-6:
    set_at = rows[0][0] # the reading went into the first interval
for (t0, e0, r0, f0), (t1, e1, r1, f1) in zip(rows, rows[1:]):
    if abs(r1 - (r0 + e1)) <= 1e-6:
        continue
    if set_at is None and reading_wh <= r1 <= reading_wh + e1 + 1e-6:
        set_at = t1 # the interval the console's reading went into
        continue
    breaks += 1
    print(f"fw-linux-run: record at {t1}: register {r1} Wh, the one before {r0} + its "
          f"energy {e1}", file=sys.stderr)
if set_at is None:
    print(f"fw-linux-run: no record starts from the reading {reading_wh} Wh", file=sys.stderr)
    breaks += 1
print(f"fw-linux-run: {len(rows)} records in InfluxDB, register {rows[0][2]:.3f} -> "
      f"{rows[-1][2]:.3f} Wh, set to the reading {reading_wh:.1f} Wh in the record at "
      f"{set_at}; run 2 restored {restored.group(1)} Wh; {breaks} break(s) in the register")
sys.exit(1 if breaks else 0)
PY
