/* SPDX-License-Identifier: MIT */
/*
 * The character classes the line protocol's encoder (lineproto.c) and parser (lpparse.c) share.
 * Internal to the core.
 */
#ifndef PL_CORE_LP_CHARS_H
#define PL_CORE_LP_CHARS_H

#include <stdbool.h>

#include "powerlogger/lineproto.h"

static inline bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* The characters that must be escaped in an element of this kind. */
static inline bool is_special(char c, enum pl_lp_kind kind)
{
	switch (kind) {
	case PL_LP_MEASUREMENT_NAME:
		return c == ',' || c == ' ';
	case PL_LP_KEY:
	case PL_LP_TAG_VALUE:
		return c == ',' || c == '=' || c == ' ';
	case PL_LP_STRING_FIELD:
		return c == '"' || c == '\\';
	}
	return false;
}

#endif
