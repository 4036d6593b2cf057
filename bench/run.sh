#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make bench`: the figures the issue note reports, all measured in this run.
#   1. accuracy: the scenario matrix, detector against the original's method (bench/accuracy.c)
#   2. detector cost: callgrind instructions per sample at several rates, both input paths,
#      and wall-clock samples/s beside a plain summing loop over the same array
#   3. input path: instructions per sample of `powerlogger detect` on raw and CSV input
#      against the detector alone, so parsing's share is visible
#   then drain speed, footprint, live sources, and the disk writes of one meter delivering to
#   InfluxDB per hour (bench/diskio.sh: bytes, fdatasyncs, bytes per record), and the rollup
#   queries on five years of records (bench/query.sh)
# (the core's Cortex-M4 .text/.data/.bss sizes are printed by `make freestanding` before this)
set -euo pipefail
build=${1:-build}
data=${2:-data}
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== accuracy (scenario matrix; docs/accuracy.md has the explanation)"
"$build/accuracy" --data "$data"

echo
echo "== detector cost: valgrind --tool=callgrind --toggle-collect=detect_all $build/speed --rate R --seconds 20 --path P"
printf '%-8s %8s %14s %12s\n' path rate_hz instructions per_sample
for path in samples u16; do
  for rate in 1000 5000 20000 50000; do
    ir=$(cd "$tmp" && valgrind --tool=callgrind --toggle-collect=detect_all \
          --callgrind-out-file="$tmp/cg.out" "$here/$build/speed" --rate $rate --seconds 20 \
          --path $path 2>&1 | awk '/Collected/ {print $4}')
    printf '%-8s %8d %14d %12.1f\n' $path $rate "$ir" "$(echo "$ir / ($rate * 20)" | bc -l)"
  done
done
echo
echo "== detector wall clock (600 s of 20 kHz signal)"
"$build/speed" --rate 20000 --seconds 600 --path samples | tail -n1
"$build/speed" --rate 20000 --seconds 600 --path u16 | tail -n1

echo
echo "== input path: whole \`powerlogger detect\` per sample, 20 s at 20 kHz (callgrind)"
"$build/powerlogger" simulate --rate 20000 --duration 20 --power 3000 --seed 1 \
   --out "$tmp/t.raw" --raw s16le --truth "$tmp/truth.csv" 2>/dev/null
"$build/powerlogger" simulate --rate 20000 --duration 20 --power 3000 --seed 1 \
   --out "$tmp/t.csv" --truth "$tmp/truth.csv" 2>/dev/null
n=400000
for fmt in raw csv; do
  if [ $fmt = raw ]; then args=(--raw s16le --rate 20000 "$tmp/t.raw"); else args=("$tmp/t.csv"); fi
  ir=$(valgrind --tool=callgrind --callgrind-out-file="$tmp/cg2.out" \
        "$build/powerlogger" detect --quiet "${args[@]}" 2>&1 >/dev/null | awk '/Collected/ {print $4}')
  printf '%-4s input: %12d instructions, %7.1f per sample\n' $fmt "$ir" "$(echo "$ir / $n" | bc -l)"
done

echo
echo "== drain speed: bench/drain.sh (100,000 stored records to a local influxd, against curl)"
bash "$here/bench/drain.sh" "$build"

echo
echo "== footprint: bench/footprint.sh (run with one meter, 1 kHz at real-time pace, 20 s)"
PL_FOOTPRINT_SECONDS=${PL_FOOTPRINT_SECONDS:-20} bash "$here/bench/footprint.sh" "$build"

echo
echo "== live sources: bench/live.sh (fake IIO 1 kHz polled, 10 kHz buffered; idle GPIO line)"
bash "$here/bench/live.sh" "$build"

echo
echo "== disk writes: bench/diskio.sh (one sim meter to a local influxd, a simulated hour at speed 60)"
bash "$here/bench/diskio.sh" "$build"

echo
echo "== rollup queries: bench/query.sh (5 years of 20 s records, 2 meters; the store is kept in $build)"
bash "$here/bench/query.sh" "$build"
