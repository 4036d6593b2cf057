#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The builds a packager makes: every CMake build type with gcc and with clang, the whole tree
# (program, tests, benchmark helpers), warnings as errors. Run by `make check`; a warning that
# one optimisation level or one compiler sees is caught here rather than by a distribution.
#   scripts/build-matrix.sh [OUTDIR [REUSE]]     (default: build-matrix/)
# REUSE: a build directory made already (`make check`: the test stage's build/); when it is
# one of the matrix's combinations (compiler, build type, warnings as errors, no sanitizer or
# extra flags), that combination is brought up to date there instead of built a second time.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build-matrix}
reuse=${2:-}
jobs=$(nproc 2>/dev/null || echo 2)
mkdir -p "$out"
fail=0

# "COMPILER-BUILDTYPE" of the directory $1 when it is a plain -DPL_WERROR=ON build, else "".
combination_of() {
	local c=$1/CMakeCache.txt id bt
	[ -f "$c" ] || return 0
	grep -qx 'PL_WERROR:BOOL=ON' "$c" && grep -qx 'PL_SANITIZE:BOOL=OFF' "$c" &&
		grep -qx 'PL_FUZZ:BOOL=OFF' "$c" && grep -qx 'CMAKE_C_FLAGS:STRING=' "$c" || return 0
	bt=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$c")
	id=$(sed -n 's/^set(CMAKE_C_COMPILER_ID "\(.*\)")$/\1/p' "$1"/CMakeFiles/*/CMakeCCompiler.cmake |
		head -n1)
	case $id in GNU) id=gcc ;; Clang) id=clang ;; *) return 0 ;; esac
	echo "$id-${bt:-none}"
}
reused=""
[ -n "$reuse" ] && reused=$(combination_of "$reuse")

for cc in gcc clang; do
	for bt in Release RelWithDebInfo Debug MinSizeRel; do
		d="$out/$cc-$bt"
		start=$SECONDS
		if [ "$reused" = "$cc-$bt" ]; then
			if cmake --build "$reuse" -j "$jobs" >"$d.log" 2>&1; then
				echo "build-matrix: $cc $bt: ok, in $reuse ($((SECONDS - start)) s)"
			else
				echo "build-matrix: $cc $bt: FAILED in $reuse (log: $d.log)"
				grep -E "(error|warning):" "$d.log" | head -20
				fail=1
			fi
			continue
		fi
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
