/* SPDX-License-Identifier: MIT */
/*
 * Saturating int64 arithmetic the core's time and energy sums share (internal to the core):
 * a time pushed past the representable range sticks at its end instead of wrapping.
 */
#ifndef PL_CORE_SAT_H
#define PL_CORE_SAT_H

#include <stdint.h>

static inline int64_t sat_add(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b)
		return INT64_MAX;
	if (b < 0 && a < INT64_MIN - b)
		return INT64_MIN;
	return a + b;
}

#endif
