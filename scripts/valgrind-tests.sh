#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs every unit test binary under valgrind memcheck; any error or leak fails.
set -euo pipefail
build=${1:-build}
command -v valgrind >/dev/null || { echo "valgrind-tests: valgrind not found (make deps)" >&2; exit 1; }
jobs=${JOBS:-$(nproc)}
vg_one() { # $1 a test binary; its log in $1.valgrind.log, its exit status in $1.valgrind.rc
  local rc=0
  PL_VALGRIND=1 valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
       "$1" >"$1.valgrind.log" 2>&1 || rc=$?
  echo "$rc" >"$1.valgrind.rc"
}
tests=()
for t in "$build"/test_*; do
  [ -x "$t" ] && [ -f "$t" ] || continue
  # test_store_powercut's writer child dies at a random I/O call by design (the power cut), so
  # memcheck's exit code in the child breaks the test's own check; it runs under ASan instead.
  [ "$(basename "$t")" = test_store_powercut ] && continue
  tests+=("$t")
done
# Each test is one process (a few start a thread): as many at a time as there are cores.
running=0
for t in "${tests[@]}"; do
  vg_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true
n=0
for t in "${tests[@]}"; do
  if [ "$(cat "$t.valgrind.rc" 2>/dev/null || echo missing)" != 0 ]; then
    echo "valgrind-tests: $(basename "$t") failed under valgrind:" >&2
    tail -n 40 "$t.valgrind.log" >&2
    exit 1
  fi
  n=$((n + 1))
done
[ "$n" -gt 0 ] || { echo "valgrind-tests: no test binaries in $build" >&2; exit 1; }

# The program itself: simulate a short trace, detect it (pulses and interval records).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
vg=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect)
if ! { "${vg[@]}" "$build/powerlogger" simulate --duration 20 --power 3000 --sensor ldr \
         --noise 20 --flicker 0.3 --out "$tmp/t.csv" --truth "$tmp/truth.csv" --quiet &&
       "${vg[@]}" "$build/powerlogger" detect --quiet "$tmp/t.csv" >/dev/null &&
       "${vg[@]}" "$build/powerlogger" detect --quiet --interval 5 --format lp \
         --imp-per-kwh 1000 --max-power 15000 "$tmp/t.csv" >/dev/null; } 2>"$tmp/vg.log"; then
  echo "valgrind-tests: powerlogger failed under valgrind:" >&2
  tail -n 40 "$tmp/vg.log" >&2
  exit 1
fi
echo "valgrind: $n test programs and powerlogger simulate/detect clean"
