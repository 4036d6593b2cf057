#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The builds a packager makes: every CMake build type with gcc and with clang, the whole tree
# (program, tests, benchmark helpers), warnings as errors. Run by `make check`; a warning that
# one optimisation level or one compiler sees is caught here rather than by a distribution.
#   scripts/build-matrix.sh [OUTDIR]     (default: build-matrix/)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build-matrix}
jobs=$(nproc 2>/dev/null || echo 2)
mkdir -p "$out"
fail=0
for cc in gcc clang; do
	for bt in Release RelWithDebInfo Debug MinSizeRel; do
		d="$out/$cc-$bt"
		start=$SECONDS
		if cmake -S . -B "$d" -DCMAKE_BUILD_TYPE="$bt" -DCMAKE_C_COMPILER="$cc" \
			-DPL_WERROR=ON >"$d.log" 2>&1 &&
		   cmake --build "$d" -j "$jobs" >>"$d.log" 2>&1; then
			echo "build-matrix: $cc $bt: ok ($((SECONDS - start)) s)"
		else
			echo "build-matrix: $cc $bt: FAILED (log: $d.log)"
			grep -E "(error|warning):" "$d.log" | head -20
			fail=1
		fi
	done
done
exit $fail
