#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages PowerLogger needs, and only the ones that are missing, so that
# `make run` and `make check` work on a fresh Debian 12 machine:
#   install-deps.sh run     what building and running the logger needs (`make run`)
#   install-deps.sh         that and everything the tests and the benchmark need (`make check`)
#   install-deps.sh deb     what building and checking the Debian package needs (`make deb`)
# Run as root (or with sudo available). Set PL_NO_INSTALL=1 to skip installing.
set -euo pipefail

run_pkgs=(
  build-essential cmake pkg-config   # the build
  libsqlite3-dev libcurl4-openssl-dev libinih-dev libsystemd-dev  # the daemon's libraries
  zlib1g-dev                         # gzip request bodies for InfluxDB
  libgpiod-dev                       # GPIO edge sources (libgpiod 1.6)
  libmosquitto-dev                   # the MQTT sink
  libmicrohttpd-dev libmicrohttpd12  # the web server: dashboard, API, /metrics ([http])
)
test_pkgs=(
  libcmocka-dev                      # unit tests
  valgrind                           # memcheck in tests, callgrind in the bench
  clang libclang-rt-14-dev           # libFuzzer + sanitizers, the clang builds
  gcc-arm-none-eabi libnewlib-arm-none-eabi  # freestanding Cortex-M4 build of the core
  sqlite3 influxdb curl time         # the daemon's tests: a real InfluxDB 1.x, curl as a yardstick, /usr/bin/time
  strace                             # the bench: fdatasyncs of the logger (bench/diskio.sh)
  python3 openssl                    # the sink's tests: the fake server, throwaway TLS certificates
  faketime libfaketime               # clock-step tests: the wall clock stepped under the daemon
  mosquitto mosquitto-clients        # the MQTT sink's tests: a real broker, mosquitto_sub/_pub
  prometheus                         # the web server's tests: a real Prometheus, promtool
  chromium python3-websocket         # the dashboard's test: headless Chromium over DevTools
)
# The Debian package (debian/control's Build-Depends, and the tools tests/pkg/deb-test.sh uses).
deb_pkgs=(
  debhelper dpkg-dev fakeroot        # dpkg-buildpackage with dh
  libcmocka-dev                      # the core unit tests the package build runs (<!nocheck>)
  lintian                            # the package's checks
  man-db groff-base                  # man --warnings on the man pages
  systemd adduser                    # systemd-analyze verify on the unit; the postinst's adduser
  sqlite3                            # the package test counts the records in the store
)
case "${1:-test}" in
run) pkgs=("${run_pkgs[@]}") ;;
test) pkgs=("${run_pkgs[@]}" "${test_pkgs[@]}") ;;
deb) pkgs=("${run_pkgs[@]}" "${deb_pkgs[@]}") ;;
*) echo "usage: install-deps.sh [run|test|deb]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "${PL_NO_INSTALL:-0}" = 1 ]; then
  echo "install-deps: missing Debian packages: ${missing[*]} (PL_NO_INSTALL=1, not installing)" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists when they are missing or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -n1)" ]; then
  $sudo apt-get update -qq
fi
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
