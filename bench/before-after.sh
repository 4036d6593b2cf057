#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Drain, footprint and disk writes of this tree against an earlier revision, measured in one run
# on the same machine, so that a redesign can show it changed nothing beyond noise (or what it
# changed). REV (default HEAD~1) is exported with `git archive` into a temporary folder and built
# there (Release flags as `make build`); then both builds take turns: drain (bench/drain.sh)
# base, new; footprint (bench/footprint.sh) base, new; disk writes per hour (bench/diskio.sh)
# base, new; BA_ROUNDS times (default 2). Each script is the one of this tree, so both builds
# are measured the same way.
# Usage: bash bench/before-after.sh [REV] [BUILD]
set -euo pipefail
rev=${1:-HEAD~1}
build=${2:-build}
rounds=${BA_ROUNDS:-2}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -x "$here/$build/powerlogger" ] || { echo "before-after: build this tree first (make build)" >&2; exit 2; }
echo "== building $rev ($(git -C "$here" rev-parse --short "$rev")) in a temporary folder"
mkdir -p "$work/src"
git -C "$here" archive "$rev" | tar -x -C "$work/src"
cmake -S "$work/src" -B "$work/src/build" -DPL_TESTS=OFF >/dev/null
cmake --build "$work/src/build" -j "${JOBS:-2}" >/dev/null
# the scripts address the build relative to the tree: give the base build a name inside it
ln -s "$work/src/build" "$here/.bench-base-build"
trap 'rm -f "$here/.bench-base-build"; rm -rf "$work"' EXIT
for i in $(seq "$rounds"); do
  for side in base new; do
    b=$build; [ $side = base ] && b=.bench-base-build
    echo "== round $i, $side: drain"
    ROUNDS=${DRAIN_ROUNDS:-3} bash "$here/bench/drain.sh" "$b" | sed "s/^/$side /"
  done
  for side in base new; do
    b=$build; [ $side = base ] && b=.bench-base-build
    echo "== round $i, $side: footprint"
    PL_FOOTPRINT_SECONDS=${PL_FOOTPRINT_SECONDS:-30} bash "$here/bench/footprint.sh" "$b" | sed "s/^/$side /"
  done
  for side in base new; do
    b=$build; [ $side = base ] && b=.bench-base-build
    echo "== round $i, $side: disk writes"
    bash "$here/bench/diskio.sh" "$b" | sed "s/^/$side /"
  done
done
