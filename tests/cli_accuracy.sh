#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The accuracy claim as a test: every scenario of the matrix that is marked "exact" must give
# the true pulse count with no miss and no extra (bench/accuracy exits non-zero otherwise).
# Three seeds of three minutes each, as in `make bench`.
set -euo pipefail
bin=${1:?usage: cli_accuracy.sh PATH/TO/powerlogger}
acc="$(dirname "$bin")/accuracy"
data="${PL_SOURCE_DIR:-.}/data"
[ -x "$acc" ] || { echo "cli_accuracy: $acc not built" >&2; exit 1; }
if ! "$acc" --data "$data" --events 5 >accuracy.out 2>&1; then
  cat accuracy.out
  echo "cli_accuracy: a scenario that must be exact was not" >&2
  exit 1
fi
grep -E '^\| (scenario|nominal|esp32|weak-6sigma|ldr-merge)' accuracy.out
echo "cli_accuracy: every exact scenario exact"
