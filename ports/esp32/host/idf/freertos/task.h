/* SPDX-License-Identifier: MIT */
#ifndef STUB_FREERTOS_TASK_H
#define STUB_FREERTOS_TASK_H
#include <stdint.h>
#include "FreeRTOS.h"
typedef struct tskTaskControlBlock *TaskHandle_t;
void vTaskNotifyGiveFromISR(TaskHandle_t task, BaseType_t *woken);
uint32_t ulTaskNotifyTake(BaseType_t clear, TickType_t wait);
TaskHandle_t xTaskGetCurrentTaskHandle(void);
#endif
