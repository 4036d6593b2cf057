#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What live sources cost `powerlogger run` (issue 4), on fake kernel interfaces (no hardware
# here): bench/iiofeed plays an ADS1015 in real time — its raw value for a 1 kHz polled
# channel, a 10 kHz buffered stream through a FIFO — and PL_FAKE_GPIO a GPIO line with no
# pulse at all. Figures: the daemon's CPU time over the run (user + sys, bench/maxrss; the
# feeder's own is not counted) as a share of one core, and the main loop's wake-ups
# (PL_REPORT_WAKEUPS) for the idle GPIO line, against its interval closes.
set -euo pipefail
build=${1:-build}
secs=${PL_LIVE_BENCH_SECONDS:-60}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

measure_iio() { # $1 mode, $2 rate
  rm -rf "$work/fake"
  "$here/$build/iiofeed" --dir "$work/fake" --seconds $((secs + 5)) --rate "$2" \
    --name ads1015 >/dev/null 2>&1 &
  local feed=$!
  for _ in $(seq 100); do [ -p "$work/fake/dev/iio:device0" ] && break; sleep 0.05; done
  cat >"$work/$1.ini" <<INI
[store]
path = $work/$1.db
[meter adc]
source = iio
device = ads1015
mode = $1
rate = $2
imp_per_kwh = 1000
sysfs_root = $work/fake/sys
dev_root = $work/fake/dev
INI
  "$here/$build/maxrss" "$here/$build/powerlogger" run -c "$work/$1.ini" --quiet \
    --duration "$secs" 2>"$work/$1.log" || { cat "$work/$1.log" >&2; exit 1; }
  kill $feed 2>/dev/null || true; wait $feed 2>/dev/null || true
  read -r _ _ user sys wall < <(grep '^maxrss ' "$work/$1.log" | tail -n1)
  python3 -c "
u, s, w = $user, $sys, $wall
print(f'live: iio {\"$1\"} {$2} Hz: CPU {u + s:.2f} s over {w:.0f} s = {(u + s) / w * 100:.2f} % of a core')"
}
measure_iio poll 1000
measure_iio buffer 10000

# GPIO, no pulse: the loop should wake only to close intervals (20 s).
mkfifo "$work/gpio.fifo"
cat >"$work/gpio.ini" <<INI
[store]
path = $work/gpio.db
[meter s0]
source = gpio
device = gpiochip0
line = 17
imp_per_kwh = 1000
interval_s = 20
INI
# (powerlogger-fakes: the program with the fake GPIO kernel linked in, for the tests)
PL_FAKE_GPIO="$work/gpio.fifo" PL_FAKE_GPIO_LEVEL=0 PL_REPORT_WAKEUPS=1 \
  "$here/$build/maxrss" "$here/$build/powerlogger-fakes" run -c "$work/gpio.ini" --quiet \
  --duration "$secs" 2>"$work/gpio.log" || { cat "$work/gpio.log" >&2; exit 1; }
wakes=$(sed -n 's/.*main loop: \([0-9]*\) wake-ups.*/\1/p' "$work/gpio.log")
read -r _ _ user sys wall < <(grep '^maxrss ' "$work/gpio.log" | tail -n1)
python3 -c "
w, secs = $wakes, $wall
print(f'live: gpio, no pulse for {secs:.0f} s: {w} main-loop wake-ups ({w / secs * 60:.1f} per minute; '
      f'interval closes in that time: {secs / 20:.1f}); CPU {$user + $sys:.3f} s')"
