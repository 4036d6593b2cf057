/* SPDX-License-Identifier: MIT */
#ifndef STUB_ESP_ATTR_H
#define STUB_ESP_ATTR_H
/* as ESP-IDF's esp_attr.h: a section .iram1.<n> the linker script places in IRAM */
#define _COUNTER_STRINGIFY(COUNTER) #COUNTER
#define _SECTION_ATTR_IMPL(SECTION, COUNTER) \
	__attribute__((section(SECTION "." _COUNTER_STRINGIFY(COUNTER))))
#define IRAM_ATTR _SECTION_ATTR_IMPL(".iram1", __COUNTER__)
#endif
