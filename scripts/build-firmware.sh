#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the ESP32 firmware (ports/esp32) with the user's ESP-IDF, where one is installed
# (IDF_PATH set, export.sh sourced). Without it there is nothing to do: the firmware's logic is
# built and tested on the host anyway (plfw, tests/test_fw_*.c).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${IDF_PATH:-}" ]; then
  echo "build-firmware: skipped: no IDF_PATH (source ESP-IDF's export.sh to build ports/esp32)"
  exit 0
fi
out=${1:-build-esp32}
idf.py -C ports/esp32 -B "$PWD/$out" set-target esp32
idf.py -C ports/esp32 -B "$PWD/$out" build
idf.py -C ports/esp32 -B "$PWD/$out" size
