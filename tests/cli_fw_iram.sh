#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The firmware's GPIO edge interrupt runs while a flash write has the cache off (issue 9,
# fault 6), and the platform file compiles in every configuration under -Werror (fault 7:
# the status LED's state was unused without an LED).
#
# 1. The logic the interrupt calls (fw_ring_push, FW_IRAM) is compiled from
#    ports/esp32/main/logic at -O0, -O2 and -Os with gcc and clang: it must be in a
#    ".iram1.*" section, and nothing in that section may refer to code outside ".iram1.*"
#    (no memcpy, no libatomic call) or to data in flash (.rodata).
# 2. ports/esp32/main/sampling_task.c is compiled on the host against the ESP-IDF stand-ins in
#    ports/esp32/host/idf (declarations only) with ADC or GPIO input and with or without the
#    status LED, under -Wall -Wextra -Werror (-Wno-unused-parameter, as ESP-IDF builds). With
#    GPIO input, gpio_edge_isr must be in ".iram1.*" (IRAM_ATTR as ESP-IDF defines it) and
#    call only IRAM functions: its own section's, fw_ring_push (checked in 1), and ESP-IDF's
#    esp_timer_get_time, vTaskNotifyGiveFromISR and vPortYieldFromISR, which ESP-IDF places in
#    IRAM. And the ISR service must be installed with ESP_INTR_FLAG_IRAM (a source check: the
#    flag is a value in the code, which an object does not name).
set -euo pipefail
src=${PL_SOURCE_DIR:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
logic=$src/ports/esp32/main/logic

# Sections of obj whose name starts with .iram1, and what their relocations point at.
# Prints "section symbol-or-section-of-target" per relocation (readelf -rW), one a line.
iram_relocs() {
  readelf -rW "$1" | awk '
    /^Relocation section/ { sec = $3; gsub(/\047/, "", sec); inram = (sec ~ /^\.rela\.iram1/); next }
    inram && NF >= 5 && $1 ~ /^[0-9a-f]+$/ { print sec, $5 }'
}
# Section of a symbol in obj, by name.
sym_section() {
  local obj=$1 name=$2 ndx
  ndx=$(readelf -sW "$obj" | awk -v n="$name" '$8 == n { print $7; exit }')
  [ -n "$ndx" ] || { echo "?"; return; }
  [ "$ndx" = UND ] && { echo UND; return; }
  readelf -SW "$obj" | sed -n 's/^ *\[ *\([0-9]*\)\] \([^ ]*\).*/\1 \2/p' |
    awk -v i="$ndx" '$1 == i { print $2 }'
}
# Checks that every relocation in obj's .iram1 sections points into .iram1, at .bss/.data
# (DRAM), or at an allowed function ($2: a space-separated list).
check_iram_refs() {
  local obj=$1 allowed=" $2 " label=$3 sec target tsec
  while read -r sec target; do
    case $target in
      .iram1*|.bss*|.data*) continue ;;  # a section symbol: code in IRAM or data in DRAM
      .rodata*|.text*)
        echo "FAIL $label: $sec refers to $target (flash)"; fail=1; continue ;;
    esac
    tsec=$(sym_section "$obj" "$target")
    case $tsec in
      .iram1*|.bss*|.data*) ;;
      UND)
        if [[ $allowed != *" $target "* ]]; then
          echo "FAIL $label: $sec calls $target, which is not known to be in IRAM"; fail=1
        fi ;;
      *) echo "FAIL $label: $sec refers to $target in $tsec (flash)"; fail=1 ;;
    esac
  done < <(iram_relocs "$obj")
}

# ---- 1. the logic ----
for cc in gcc clang; do
  command -v $cc >/dev/null || { echo "FAIL: $cc not found"; exit 1; }
  for opt in -O0 -O2 -Os; do
    obj=$tmp/fw_ring_${cc}${opt}.o
    $cc -std=c11 $opt -Wall -Wextra -Werror -I"$src/include" -I"$logic" -c "$logic/fw_ring.c" -o "$obj"
    s=$(sym_section "$obj" fw_ring_push)
    if [[ $s != .iram1* ]]; then
      echo "FAIL fw_ring_push ($cc $opt): in section $s, not .iram1.*"; fail=1
    fi
    check_iram_refs "$obj" "" "fw_ring_push ($cc $opt)"
  done
done

# ---- 2. the platform file, every configuration ----
stubs=$src/ports/esp32/host/idf
for input in ADC GPIO; do
  for led in 2 -1; do
    d=$tmp/cfg_${input}_$led
    mkdir -p "$d"
    {
      echo "#define CONFIG_IDF_TARGET_ESP32 1"
      echo "#define CONFIG_PL_IMP_PER_KWH 1000"
      echo "#define CONFIG_PL_MAX_POWER_W 17250"
      echo "#define CONFIG_PL_INTERVAL_S 20"
      echo "#define CONFIG_PL_STATUS_LED_GPIO $led"
      if [ $input = ADC ]; then
        echo "#define CONFIG_PL_INPUT_ADC 1"
        echo "#define CONFIG_PL_ADC_CHANNEL 6"
        echo "#define CONFIG_PL_ADC_RATE_HZ 20000"
        echo "#define CONFIG_PL_ADC_BLOCK 4"
        echo "#define CONFIG_PL_LED_POLARITY_AUTO 1"
      else
        echo "#define CONFIG_PL_INPUT_GPIO 1"
        echo "#define CONFIG_PL_INPUT_GPIO_NUM 27"
        echo "#define CONFIG_PL_INPUT_ACTIVE_LOW 1"
        echo "#define CONFIG_PL_INPUT_DEBOUNCE_US 2000"
      fi
    } >"$d/sdkconfig.h"
    obj=$d/sampling_task.o
    if ! gcc -std=gnu11 -O2 -Wall -Wextra -Wno-unused-parameter -Werror -I"$d" -I"$stubs" \
        -I"$src/include" -I"$logic" -I"$src/ports/esp32/main" \
        -c "$src/ports/esp32/main/sampling_task.c" -o "$obj" 2>"$d/cc.log"; then
      echo "FAIL sampling_task.c does not compile with input $input, status LED GPIO $led:"
      sed 's/^/    /' "$d/cc.log"
      fail=1
      continue
    fi
    if [ $input = GPIO ]; then
      s=$(sym_section "$obj" gpio_edge_isr)
      if [[ $s != .iram1* ]]; then
        echo "FAIL gpio_edge_isr: in section $s, not .iram1.* (IRAM_ATTR)"; fail=1
      fi
      check_iram_refs "$obj" "esp_timer_get_time vTaskNotifyGiveFromISR vPortYieldFromISR fw_ring_push" \
        "gpio_edge_isr (LED $led)"
    fi
  done
done

# ---- the ISR service with ESP_INTR_FLAG_IRAM (source) ----
calls=$(grep -o 'gpio_install_isr_service([^)]*)' "$src/ports/esp32/main/sampling_task.c" || true)
if [ -z "$calls" ]; then
  echo "FAIL: sampling_task.c does not call gpio_install_isr_service"; fail=1
fi
while read -r c; do
  [ -z "$c" ] && continue
  if [[ $c != *ESP_INTR_FLAG_IRAM* ]]; then
    echo "FAIL: $c: the edge ISR would be disabled while the cache is off"; fail=1
  fi
done <<<"$calls"

if [ $fail = 0 ]; then
  echo "ok: fw_ring_push and gpio_edge_isr in .iram1 and calling only IRAM code; sampling_task.c" \
       "compiles with ADC/GPIO input and with/without the status LED under -Werror"
fi
exit $fail
