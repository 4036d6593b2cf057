#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make check`: every stage in turn, each one timed, stopping at the first that fails, and a
# table of the times at the end (the budget is 25 minutes on 2 cores).
#   scripts/check.sh STAGE...     (each STAGE is a make target)
set -uo pipefail
cd "$(dirname "$0")/.."
make=${MAKE:-make}
total=$SECONDS
declare -a rows
for stage in "$@"; do
	echo "check: == $stage"
	start=$SECONDS
	if ! $make --no-print-directory "$stage"; then
		echo "check: $stage FAILED after $((SECONDS - start)) s"
		exit 1
	fi
	rows+=("$(printf '%-14s %5d s' "$stage" $((SECONDS - start)))")
	echo "check: $stage passed in $((SECONDS - start)) s"
done
echo "check: stage times"
printf '  %s\n' "${rows[@]}"
echo "make check: all stages passed in $((SECONDS - total)) s"
