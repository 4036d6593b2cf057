/* SPDX-License-Identifier: MIT */
#ifndef STUB_GPIO_REG_H
#define STUB_GPIO_REG_H
#define DR_REG_GPIO_BASE 0x3ff44000 /* ESP32 */
#define GPIO_IN_REG (DR_REG_GPIO_BASE + 0x003c)
#define GPIO_IN1_REG (DR_REG_GPIO_BASE + 0x0040)
#endif
