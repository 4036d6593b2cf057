# SPDX-License-Identifier: MIT
# The portable core's sources: one list, included by the host build (CMakeLists.txt), the
# freestanding Cortex-M4 check (scripts/check-freestanding.sh reads it too) and the ESP-IDF
# component. Paths are relative to this file's directory.
set(PL_CORE_SOURCES
  error.c
  detector.c
  edges.c
  meter.c
  lineproto.c
  lpparse.c
  retry.c
  channel.c
  delivery.c
  flashlog.c
  mqttmsg.c
)
