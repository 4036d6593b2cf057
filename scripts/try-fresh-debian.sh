#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The team's check of the README's first command on a machine that has nothing: a minimal
# Debian 12 (debootstrap --variant=minbase) in a chroot, a clone of this repository in it,
# `apt-get install git make` (the README's prerequisites), then `make run` for RUN_SECONDS
# (default 75) on a pseudo-terminal. Prints how long it took, the status lines, and whether any
# test-only package (cmocka, clang, valgrind, influxdb) was installed on the way (none must be).
#   scripts/try-fresh-debian.sh [DIR]     (as root; needs the Debian mirror; DIR default /tmp/pl-fresh)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-/tmp/pl-fresh}
secs=${RUN_SECONDS:-75}
[ "$(id -u)" = 0 ] || { echo "try-fresh-debian: run as root (debootstrap, chroot)" >&2; exit 1; }
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
mirror=${MIRROR:-http://deb.debian.org/debian}

cleanup() { umount "$dir/proc" "$dir/dev/pts" "$dir/dev" 2>/dev/null || true; }
trap cleanup EXIT
if [ ! -x "$dir/bin/bash" ]; then
	echo "try-fresh-debian: debootstrap bookworm into $dir"
	debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$dir.debootstrap.log" 2>&1 ||
		{ tail "$dir.debootstrap.log"; exit 1; }
fi
mount -t proc proc "$dir/proc"
mount --bind /dev "$dir/dev"
mount -t devpts devpts "$dir/dev/pts" 2>/dev/null || true
cp /etc/resolv.conf "$dir/etc/"
rm -rf "$dir/root/powerlogger"
git clone -q "$repo" "$dir/root/powerlogger"
start=$SECONDS
chroot "$dir" bash -c "export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq && apt-get install -y -qq --no-install-recommends git make >/dev/null
	cd /root/powerlogger && timeout -s INT $secs script -qfec 'make run' /dev/null" |
	tr '\r' '\n' | grep -v '^\s*$' | sed 's/\x1b\[K//' | awk '!/^house/ || ++n % 10 == 1' || true
echo "try-fresh-debian: $((SECONDS - start)) s from 'apt-get install git make' to the end of the run"
extra=$(chroot "$dir" dpkg-query -W -f '${Package}\n' | grep -E '^(libcmocka|clang|valgrind|influxdb|gcc-arm-none)' || true)
if [ -n "$extra" ]; then
	echo "try-fresh-debian: test-only packages were installed for make run: $extra" >&2
	exit 1
fi
echo "try-fresh-debian: no test-only package installed ($(chroot "$dir" dpkg-query -W | wc -l) packages in all)"
