/* SPDX-License-Identifier: MIT */
#ifndef STUB_FREERTOS_H
#define STUB_FREERTOS_H
#include <stdint.h>
#include "esp_attr.h" /* as ESP-IDF's, through portmacro.h */
typedef int BaseType_t;
typedef uint32_t TickType_t;
#define pdFALSE ((BaseType_t)0)
#define pdTRUE ((BaseType_t)1)
#define pdMS_TO_TICKS(ms) ((TickType_t)(ms))
void vPortYieldFromISR(void);
#define portYIELD_FROM_ISR(x) do { if (x) vPortYieldFromISR(); } while (0)
#endif
