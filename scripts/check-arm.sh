#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Raspberry Pi builds, tested: cross-compiles PowerLogger for Debian's arm64 and armhf
# with Debian 12's cross toolchains and multiarch libraries (cmake/toolchain-*.cmake), runs
# the unit tests of each under qemu-user, and checks that a store written on this machine
# reads the same on the arm builds and back. See docs/raspberry-pi.md.
#   check-arm.sh [BUILD]   builds BUILD-arm64/ and BUILD-armhf/ (BUILD defaults to build),
#                          and the native program BUILD/powerlogger
#   ARCHES="armhf"         only some of the architectures
#   PL_NO_INSTALL=1        do not install missing packages, fail instead
#
# Installs what is missing (only that): the two foreign architectures, the cross compilers,
# qemu-user, and the daemon's -dev libraries for each architecture (the native test tools,
# influxd and sqlite3 among them, come from install-deps.sh); also what a cross
# `dpkg-buildpackage -a arm64|armhf` of the project needs (debhelper, dpkg-dev, fakeroot and
# <triplet>-pkg-config), so that a package build can be added without a new install step.
#
# Tests run: the labels core, linux and firmware (firmware on armhf only), test_influx among
# them (the arm sink against a real influxd, which runs natively: qemu-user hands an exec of a
# native program to the kernel). Left out: the cli_* tests, shell scripts that run the program
# directly: without binfmt_misc, which a container does not have, the kernel cannot start an
# arm program.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
read -r -a arches <<<"${ARCHES:-arm64 armhf}"
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
t_all=$(date +%s)

triplet_of() {
	case $1 in
	arm64) echo aarch64-linux-gnu ;;
	armhf) echo arm-linux-gnueabihf ;;
	*) echo "check-arm: unknown architecture $1 (arm64, armhf)" >&2; exit 2 ;;
	esac
}
qemu_of() {
	case $1 in arm64) echo qemu-aarch64 ;; armhf) echo qemu-arm ;; esac
}

# --- packages --------------------------------------------------------------------------------
# The daemon's libraries and the tests' cmocka, for the target (Multi-Arch: same, so they
# install beside the native ones; apt moves a native package to the same version if needed).
arch_pkgs=(libsqlite3-dev libcurl4-openssl-dev libinih-dev libsystemd-dev zlib1g-dev
	libgpiod-dev libmosquitto-dev libmicrohttpd-dev libcmocka-dev
	pkgconf pkg-config)  # pkgconf:<arch> provides <triplet>-pkg-config
native_pkgs=(cmake qemu-user
	sqlite3              # test_store runs the sqlite3 program as a foreign reader
	dpkg-dev debhelper fakeroot)  # a cross dpkg-buildpackage
want_archs=()
missing=()
for a in "${arches[@]}"; do
	triplet_of "$a" >/dev/null
	native_pkgs+=("crossbuild-essential-$a")
	dpkg --print-foreign-architectures | grep -qx "$a" || want_archs+=("$a")
	for p in "${arch_pkgs[@]}"; do missing+=("$p:$a"); done
done
missing+=("${native_pkgs[@]}")
really_missing=()
for p in "${missing[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		really_missing+=("$p")
done
if [ ${#want_archs[@]} -gt 0 ] || [ ${#really_missing[@]} -gt 0 ]; then
	if [ "${PL_NO_INSTALL:-0}" = 1 ]; then
		echo "check-arm: missing:${want_archs[*]/#/ architecture } ${really_missing[*]}" \
		     "(PL_NO_INSTALL=1, not installing)" >&2
		exit 1
	fi
	sudo=""
	if [ "$(id -u)" != 0 ]; then
		command -v sudo >/dev/null || { echo "check-arm: need root to install" >&2; exit 1; }
		sudo=sudo
	fi
	t0=$(date +%s)
	export DEBIAN_FRONTEND=noninteractive
	update=0
	for a in "${want_archs[@]}"; do
		echo "check-arm: dpkg --add-architecture $a" >&2
		$sudo dpkg --add-architecture "$a"
		update=1
	done
	for a in "${arches[@]}"; do
		ls /var/lib/apt/lists/*_binary-"${a}"_Packages* >/dev/null 2>&1 || update=1
	done
	[ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null |
		head -n1)" ] || update=1
	[ $update = 0 ] || $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
	if [ ${#really_missing[@]} -gt 0 ]; then
		echo "check-arm: installing ${really_missing[*]}" >&2
		$sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
			"${really_missing[@]}" >/dev/null
	fi
	echo "check-arm: packages installed in $(($(date +%s) - t0)) s" >&2
fi
# Natively: what the native program (the store interchange check) and the tests need.
bash scripts/install-deps.sh

# --- the native program ----------------------------------------------------------------------
[ -f "$build/Makefile" ] ||
	cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPL_WERROR=ON >/dev/null
cmake --build "$build" -j "$jobs" --target powerlogger -- --no-print-directory \
	>"$build/build-native-powerlogger.log" 2>&1 || { cat "$build/build-native-powerlogger.log"; exit 1; }
native=$build/powerlogger

# --- build, test, interchange per architecture -----------------------------------------------
summary=()
fail=0
xdir=$(mktemp -d /tmp/pl-check-arm.XXXXXX)
trap 'rm -rf "$xdir"' EXIT
for a in "${arches[@]}"; do
	dir=$build-$a
	triplet=$(triplet_of "$a")
	qemu=$(qemu_of "$a")
	t0=$(date +%s)
	echo "check-arm: $a: building into $dir/ (log: $dir/build.log)"
	cmake -S . -B "$dir" -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/toolchain-$a.cmake" \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo -DPL_WERROR=ON -DPL_TESTS=ON >/dev/null
	cmake --build "$dir" -j "$jobs" -- --no-print-directory >"$dir/build.log" 2>&1 ||
		{ cat "$dir/build.log"; exit 1; }
	t_build=$(($(date +%s) - t0))

	# A program for the target, not this machine (a toolchain file not taken up would build
	# amd64 programs, and every test would pass natively).
	machine=$("$triplet-readelf" -h "$dir/powerlogger" | sed -n 's/^ *Machine: *//p')
	case $a:$machine in
	arm64:AArch64 | armhf:ARM) ;;
	*) echo "check-arm: $a: $dir/powerlogger is for '$machine'" >&2; exit 1 ;;
	esac
	# armhf: the wall clock is read with a 64-bit time_t (past 2038; see src/linux/clock.c).
	if [ "$a" = armhf ]; then
		"$triplet-nm" "$dir/CMakeFiles/pllinux.dir/src/linux/clock.c.o" |
			grep -q ' U __clock_gettime64$' ||
			{ echo "check-arm: armhf: clock.c does not use the 64-bit clock_gettime" >&2
			  fail=1; }
	fi

	t0=$(date +%s)
	# The firmware's logic runs on an ESP32 (32-bit, not ARM), never on a Pi: its tests run
	# where they tell something the native run does not, on armhf (32-bit, unsigned char);
	# on arm64 (64-bit, like the native run) they took half the stage's qemu time.
	labels='core|linux|firmware'
	[ "$a" = arm64 ] && labels='core|linux'
	echo "check-arm: $a: unit tests under $qemu (labels ${labels//|/, })"
	set +e
	# The power-cut test's 40 rounds take four minutes under qemu-user: 12 here (all 40 run
	# natively, in `make check`'s test and test-asan).
	(cd "$dir" && PL_POWERCUT_ROUNDS=12 ctest -L "$labels" -j "$jobs" \
		--timeout 900 --output-on-failure) >"$dir/ctest.log" 2>&1
	rc=$?
	set -e
	t_test=$(($(date +%s) - t0))
	line=$(grep -E 'tests passed, [0-9]+ tests failed out of' "$dir/ctest.log" || true)
	if [ $rc -ne 0 ]; then
		cat "$dir/ctest.log"
		fail=1
	fi

	# The store (records, checkpoint, sinks) is one file a user may move between machines:
	# written here, read there, and the other way round, `status` says the same.
	t0=$(date +%s)
	emu=("$qemu" -L /)
	"$native" run --store "$xdir/native-$a.db" --speed 0 --duration 900 -q >/dev/null 2>&1
	"${emu[@]}" "$dir/powerlogger" run --store "$xdir/$a.db" --speed 0 --duration 900 -q \
		>/dev/null 2>&1
	xc=ok
	for db in "$xdir/native-$a.db" "$xdir/$a.db"; do
		"$native" status --store "$db" >"$xdir/n.txt" 2>&1
		"${emu[@]}" "$dir/powerlogger" status --store "$db" >"$xdir/a.txt" 2>&1
		grep -q 'detector pulsing' "$xdir/n.txt" || xc="no detector state in $db"
		if ! diff -u "$xdir/n.txt" "$xdir/a.txt"; then
			xc="status differs for $(basename "$db")"
		fi
	done
	[ "$xc" = ok ] || { echo "check-arm: $a: store interchange: $xc" >&2; fail=1; }
	t_x=$(($(date +%s) - t0))
	summary+=("$a: ${line:-no ctest summary (see $dir/ctest.log)}; build ${t_build} s, tests ${t_test} s under $qemu; store amd64<->$a: $xc (${t_x} s)")
done

# The packages for the Pi, cross-built from this tree (scripts/build-deb.sh, lintian included),
# and the packaged program run under qemu-user.
for a in "${arches[@]}"; do
	t0=$(date +%s)
	pdir="$build-arm-deb"
	rm -f "$pdir"/powerlogger_*_"$a".deb
	if ! bash scripts/build-deb.sh -a "$a" "$pdir" >"$pdir-$a.log" 2>&1; then
		tail -n 30 "$pdir-$a.log"
		echo "check-arm: $a: the package did not build (log: $pdir-$a.log)" >&2
		fail=1
		continue
	fi
	deb=$(ls "$pdir"/powerlogger_*_"$a".deb)
	got=$(dpkg-deb -f "$deb" Architecture)
	ex="$pdir/x-$a"
	rm -rf "$ex" && dpkg-deb -x "$deb" "$ex"
	v=$($(qemu_of "$a") -L / "$ex/usr/bin/powerlogger" --version 2>&1 || true)
	if [ "$got" != "$a" ] || ! grep -q '^powerlogger ' <<<"$v"; then
		echo "check-arm: $a: $deb: architecture '$got', --version '$v'" >&2
		fail=1
	fi
	lint=$(grep -cE '^[EW]: ' "$pdir-$a.log" || true)
	summary+=("$a: $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB, lintian E/W: $lint), '$v' under qemu ($(($(date +%s) - t0)) s)")
done

echo "check-arm: summary"
for s in "${summary[@]}"; do echo "  $s"; done
echo "check-arm: total $(($(date +%s) - t_all)) s"
[ $fail = 0 ] || { echo "check-arm: FAILED" >&2; exit 1; }
