#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Cross-compiles the portable core for a Cortex-M4 (freestanding, -Os) and fails if the
# objects need any symbol from outside the core other than the memcpy/memset class of
# builtins that a compiler may emit on its own. Prints the .text/.data/.bss sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build-arm}
cc=arm-none-eabi-gcc
command -v $cc >/dev/null || { echo "check-freestanding: $cc not found (make deps)" >&2; exit 1; }
mkdir -p "$out"
srcs=$(sed -n '/set(PL_CORE_SOURCES/,/)/p' src/core/sources.cmake | grep -o '[a-z_]*\.c')
objs=()
for s in $srcs; do
  o="$out/${s%.c}.o"
  $cc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -Os -ffreestanding \
      -fno-common -std=c11 -Wall -Wextra -Werror -Iinclude -c "src/core/$s" -o "$o"
  objs+=("$o")
done
arm-none-eabi-ld -r -o "$out/plcore.o" "${objs[@]}"
allowed='^(memcpy|memset|memmove|memcmp|__aeabi_.*|__udivmoddi4|__divmoddi4)$'
undef=$(arm-none-eabi-nm -u "$out/plcore.o" | awk '{print $2}' | sort -u)
bad=$(printf '%s\n' "$undef" | grep -Ev "$allowed" | grep -v '^$' || true)
if [ -n "$bad" ]; then
  echo "check-freestanding: the core needs symbols from outside itself:" >&2
  printf '  %s\n' $bad >&2
  exit 1
fi
echo "freestanding Cortex-M4 core (-Os), undefined symbols: $(printf '%s ' $undef)"
arm-none-eabi-size -t "${objs[@]}" | sed "s#$out/##"
