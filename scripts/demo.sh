#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make demo`: Simulates ten minutes of a real household's load (REFIT
# house 1, replayed 6x faster) seen by an LDR taped over a 1000 imp/kWh meter, sampled at 1 kHz
# with ESP32-like noise, room-light flicker and drift; then detects the pulses and prints the
# interval records (as InfluxDB line protocol) and a comparison with the simulator's truth.
set -euo pipefail
bin=${1:-build/powerlogger}
data=${2:-data}
profile="$data/refit-house1-2015-01-08.csv"
out=${PL_DEMO_DIR:-$(mktemp -d)}
[ -f "$profile" ] || { echo "demo: $profile not found (the data/ folder of the repository)" >&2; exit 1; }

echo "== simulate: 10 min, REFIT house 1 from 18:00, LDR, 1 kHz, noise 30 LSB, flicker, drift"
"$bin" simulate --load "$profile" --load-start 64800 --load-speed 6 --duration 600 \
  --sensor ldr --rate 1000 --noise 30 --flicker 0.1 --drift 0.2 --imp-per-kwh 1000 \
  --seed 7 --out "$out/trace.csv" --truth "$out/truth.csv"
echo
echo "== detect: interval records (20 s) as line protocol, first and last five"
"$bin" detect --imp-per-kwh 1000 --max-power 20000 --interval 20 --format lp \
  --device demo-meter "$out/trace.csv" >"$out/records.lp"
head -n 5 "$out/records.lp"; echo "..."; tail -n 5 "$out/records.lp"
echo
true_n=$(grep -vc '^[#a-z]' "$out/truth.csv" || true)
det_n=$("$bin" detect --quiet "$out/trace.csv" | grep -c ',ok$' || true)
echo "== pulses: simulator truth $true_n, detected $det_n (files in $out)"
