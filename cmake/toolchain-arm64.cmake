# SPDX-License-Identifier: MIT
# Cross build for 64-bit Arm Linux (Raspberry Pi 3/4/5/Zero 2 W on 64-bit Raspberry Pi OS or
# Debian 12) with Debian's cross toolchain and multiarch libraries; tests under qemu-aarch64.
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-arm64.cmake
# What to install: scripts/check-arm.sh, docs/raspberry-pi.md.
set(PL_CROSS_TRIPLET aarch64-linux-gnu)
set(PL_CROSS_PROCESSOR aarch64)
set(PL_CROSS_QEMU qemu-aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
