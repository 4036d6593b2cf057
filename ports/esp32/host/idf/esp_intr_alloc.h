/* SPDX-License-Identifier: MIT */
#ifndef STUB_ESP_INTR_ALLOC_H
#define STUB_ESP_INTR_ALLOC_H
#define ESP_INTR_FLAG_IRAM (1 << 10)
#endif
