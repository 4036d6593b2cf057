# SPDX-License-Identifier: MIT
# The firmware's hardware-free logic: one list, included by the ESP-IDF component
# (ports/esp32/main/CMakeLists.txt) and the host build that tests it (CMakeLists.txt, plfw).
# Paths are relative to this file's directory.
set(PL_FW_SOURCES
  fw_console.c
  fw_delivery.c
  fw_http.c
  fw_led.c
  fw_mqtt.c
  fw_ota.c
  fw_ring.c
  fw_sampling.c
  fw_seqpair.c
  fw_settings.c
  fw_sinks.c
  fw_store.c
  fw_store_flashlog.c
  fw_store_ram.c
  fw_time.c
)
