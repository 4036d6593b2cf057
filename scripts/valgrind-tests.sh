#!/usr/bin/env bash
# Runs every unit test binary under valgrind memcheck; any error or leak fails.
set -euo pipefail
build=${1:-build}
command -v valgrind >/dev/null || { echo "valgrind-tests: valgrind not found (make deps)" >&2; exit 1; }
n=0
for t in "$build"/test_*; do
  [ -x "$t" ] || continue
  if ! PL_VALGRIND=1 valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
       "$t" >"$t.valgrind.log" 2>&1; then
    echo "valgrind-tests: $(basename "$t") failed under valgrind:" >&2
    tail -n 40 "$t.valgrind.log" >&2
    exit 1
  fi
  n=$((n + 1))
done
[ "$n" -gt 0 ] || { echo "valgrind-tests: no test binaries in $build" >&2; exit 1; }
echo "valgrind: $n test programs clean"
