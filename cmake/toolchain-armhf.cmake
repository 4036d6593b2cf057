# SPDX-License-Identifier: MIT
# Cross build for 32-bit Arm Linux, hard float, ARMv7 (Debian's armhf: Raspberry Pi 2/3/Zero 2 W
# on 32-bit Raspberry Pi OS; not the ARMv6 Pi 1 and Zero) with Debian's cross toolchain and
# multiarch libraries; tests under qemu-arm.
#   cmake -S . -B build-armhf -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-armhf.cmake
# What to install: scripts/check-arm.sh, docs/raspberry-pi.md.
set(PL_CROSS_TRIPLET arm-linux-gnueabihf)
set(PL_CROSS_PROCESSOR armv7l)
set(PL_CROSS_QEMU qemu-arm)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
