#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# No load, no pulse: half an hour of signal in each of several rooms, through
# `powerlogger simulate | powerlogger detect`, must give no accepted pulse at all. Over-counting
# is the complaint users of other loggers make most (ghost pulses, drift, a steadily lit LED).
set -euo pipefail
bin=${1:?usage: cli_idle.sh PATH/TO/powerlogger}
fail=0
run() {
  local seed=$1; shift
  local n
  n=$("$bin" simulate --seed "$seed" --power 0 --duration 1800 --rate 1000 "$@" \
        --out - --truth /dev/null --quiet | "$bin" detect --quiet - | grep -c ',ok$' || true)
  if [ "$n" -ne 0 ]; then
    echo "cli_idle: FAIL seed $seed $*: $n pulses counted with no load"
    fail=1
  else
    echo "cli_idle: ok   seed $seed $*"
  fi
}
for seed in 1 2; do
  run $seed --noise 30 --flicker 0.5 --steps 40                  # flickering lamp switched often
  run $seed --esp32 --drift 0.5                                  # ESP32 ADC, drifting in and out of its dead zone
  run $seed --anticreep --noise 30 --flicker 0.2                 # LED steadily lit (anti-creep)
  run $seed --sensor ldr --noise 10 --drift 0.3 --steps 30       # LDR, daylight and a lamp
done
exit $fail
