# SPDX-License-Identifier: MIT
# Shared part of the Debian cross toolchain files (toolchain-arm64.cmake,
# toolchain-armhf.cmake): each sets PL_CROSS_TRIPLET, PL_CROSS_PROCESSOR and PL_CROSS_QEMU and
# includes this. It uses what Debian 12 installs, nothing else:
#   compiler     <triplet>-gcc            (gcc-aarch64-linux-gnu, gcc-arm-linux-gnueabihf)
#   libraries    /usr/lib/<triplet>       (multiarch: libsqlite3-dev:arm64 and so on)
#   pkg-config   <triplet>-pkg-config     (pkgconf:arm64 / pkgconf:armhf); without it, the
#                native pkg-config limited to the multiarch directories
#   tests        qemu-<cpu> from qemu-user, as CMAKE_CROSSCOMPILING_EMULATOR, so that ctest
#                runs the arm test programs without binfmt_misc (not usable in a container)

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${PL_CROSS_PROCESSOR})
set(CMAKE_C_COMPILER ${PL_CROSS_TRIPLET}-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE ${PL_CROSS_TRIPLET})

# Programs (bash, python3, sqlite3 in the tests) are the build machine's; libraries and
# headers are only the target's. The root stays /: Debian's multiarch libraries live in
# /usr/lib/<triplet>, and CMake looks there first because of CMAKE_LIBRARY_ARCHITECTURE; a
# library found only for the build machine would be a wrong-architecture link error, so the
# build machine's own directory is kept out.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
list(APPEND CMAKE_IGNORE_PATH /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu)

find_program(PL_CROSS_PKG_CONFIG ${PL_CROSS_TRIPLET}-pkg-config)
if(PL_CROSS_PKG_CONFIG)
  set(PKG_CONFIG_EXECUTABLE ${PL_CROSS_PKG_CONFIG} CACHE FILEPATH "pkg-config for the target")
else()
  # The native pkg-config, told to read the target's .pc files only.
  set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${PL_CROSS_TRIPLET}/pkgconfig:/usr/share/pkgconfig")
endif()

# The tests run under qemu-user. "-L /" on purpose, not the cross sysroot /usr/<triplet>:
# every multiarch library (libsqlite3:arm64 ...) pulls in libc6:<arch>, whose loader
# /lib/ld-linux-*.so is then at its usual place, and the libraries resolve against that libc.
# The cross sysroot's libc6-<arch>-cross is a separate build of glibc (2.36-8cross1 beside
# 2.36-9+deb12uN in Debian 12); its loader with the multiarch libc would mix two builds.
find_program(PL_CROSS_QEMU_PATH ${PL_CROSS_QEMU})
if(PL_CROSS_QEMU_PATH)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${PL_CROSS_QEMU_PATH} -L /)
endif()
