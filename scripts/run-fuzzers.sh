#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs each libFuzzer target for the given number of seconds, starting from its seed corpus
# in tests/fuzz/corpus/<name>/ (copied, so the repository stays clean). A crash fails.
set -euo pipefail
build=${1:-build-fuzz}
secs=${2:-20}
src=$(cd "$(dirname "$0")/.." && pwd)
n=0
for f in "$build"/fuzz_*; do
  [ -x "$f" ] || continue
  name=$(basename "$f")
  work="$build/corpus/$name"
  mkdir -p "$work"
  [ -d "$src/tests/fuzz/corpus/$name" ] && cp -n "$src/tests/fuzz/corpus/$name"/* "$work"/ 2>/dev/null || true
  # A fixed seed in CI: the same inputs every run, so a result is reproducible (`make fuzz`
  # with FUZZ_SEED unset explores afresh).
  if ! "$f" -seed="${FUZZ_SEED:-1}" -max_total_time="$secs" -max_len=4096 -print_final_stats=0 \
       -artifact_prefix="$build/$name-" "$work" \
       >"$build/$name.log" 2>&1; then
    echo "fuzz: $name found a failure:" >&2
    tail -n 60 "$build/$name.log" >&2
    exit 1
  fi
  runs=$(grep -o 'Done [0-9]* runs' "$build/$name.log" | tail -n1 || true)
  echo "fuzz: $name clean for ${secs}s (${runs:-?})"
  n=$((n + 1))
done
[ "$n" -gt 0 ] || { echo "run-fuzzers: no fuzz targets in $build" >&2; exit 1; }
