#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the ESP32 firmware (ports/esp32) with the user's ESP-IDF, where one is installed
# (IDF_PATH set, export.sh sourced), for the esp32 and for ESP-IDF's linux target, then runs
# the linux app against a local InfluxDB (scripts/fw-linux-run.sh): set up through its serial
# console, records delivered, a kill and a restart that continues the register. Without ESP-IDF there is nothing to do: the
# firmware's logic is built and tested on the host anyway (plfw, tests/test_fw_*.c).
#   PL_FW_TARGETS      the targets to build (default "esp32 linux")
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${IDF_PATH:-}" ]; then
  echo "build-firmware: skipped: no IDF_PATH (source ESP-IDF's export.sh to build ports/esp32)"
  exit 0
fi
command -v idf.py >/dev/null 2>&1 || type idf.py >/dev/null 2>&1 ||
  { echo "build-firmware: idf.py not found (source \$IDF_PATH/export.sh)" >&2; exit 1; }
for target in ${PL_FW_TARGETS:-esp32 linux}; do
  out="$PWD/build-fw-$target"
  # the configuration lives in the build directory, not in the source tree
  args=(-C ports/esp32 -B "$out" -D SDKCONFIG="$out/sdkconfig")
  [ "$target" = linux ] && args+=(--preview)
  echo "build-firmware: $target -> $out"
  [ -f "$out/sdkconfig" ] || idf.py "${args[@]}" set-target "$target"
  idf.py "${args[@]}" build
  if [ "$target" = linux ]; then
    bash scripts/fw-linux-run.sh "$out"
  else
    idf.py "${args[@]}" size
  fi
done
