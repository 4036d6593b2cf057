/* SPDX-License-Identifier: MIT */
#ifndef STUB_SOC_H
#define STUB_SOC_H
#include <stdint.h>
#define REG_READ(r) (*(volatile uint32_t *)(r))
#endif
