#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs each libFuzzer target for the given number of seconds, starting from its seed corpus
# in tests/fuzz/corpus/<name>/ (copied, so the repository stays clean), JOBS targets at a time
# (default: the number of cores; each fuzzer is one process). A crash fails.
set -euo pipefail
build=${1:-build-fuzz}
secs=${2:-20}
jobs=${JOBS:-$(nproc)}
src=$(cd "$(dirname "$0")/.." && pwd)

fuzz_one() { # $1 the fuzzer; writes $build/NAME.log and $build/NAME.rc
  local f=$1 name work rc=0
  name=$(basename "$f")
  work="$build/corpus/$name"
  mkdir -p "$work"
  [ -d "$src/tests/fuzz/corpus/$name" ] && cp -n "$src/tests/fuzz/corpus/$name"/* "$work"/ 2>/dev/null || true
  # A fixed seed in CI: the same inputs every run, so a result is reproducible (`make fuzz`
  # with FUZZ_SEED unset explores afresh).
  "$f" -seed="${FUZZ_SEED:-1}" -max_total_time="$secs" -max_len=4096 -print_final_stats=0 \
       -artifact_prefix="$build/$name-" "$work" >"$build/$name.log" 2>&1 || rc=$?
  echo "$rc" >"$build/$name.rc"
}

targets=()
for f in "$build"/fuzz_*; do
  [ -x "$f" ] && [ -f "$f" ] && targets+=("$f")
done
[ "${#targets[@]}" -gt 0 ] || { echo "run-fuzzers: no fuzz targets in $build" >&2; exit 1; }
echo "fuzz: ${#targets[@]} targets, ${secs} s each, $jobs at a time"
running=0
for f in "${targets[@]}"; do
  fuzz_one "$f" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true
bad=0
for f in "${targets[@]}"; do
  name=$(basename "$f")
  if [ "$(cat "$build/$name.rc" 2>/dev/null || echo missing)" != 0 ]; then
    echo "fuzz: $name found a failure:" >&2
    tail -n 60 "$build/$name.log" >&2
    bad=1
    continue
  fi
  runs=$(grep -o 'Done [0-9]* runs' "$build/$name.log" | tail -n1 || true)
  echo "fuzz: $name clean for ${secs}s (${runs:-?})"
done
exit $bad
