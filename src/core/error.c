/* SPDX-License-Identifier: MIT */
/*
 * Error strings and the one bit of meter physics every module shares.
 */
#include "powerlogger/common.h"

static const char *const messages[PL_E_COUNT] = {
	[PL_OK] = "success",
	[PL_EINVAL] = "invalid argument",
	[PL_ENOSPC] = "no space (buffer too small, disk full or store at its size limit)",
	[PL_ERANGE] = "value out of range",
	[PL_EPARSE] = "malformed input",
	[PL_EORDER] = "time went backwards",
	[PL_EIO] = "input/output error",
	[PL_ENOENT] = "not found",
	[PL_ECORRUPT] = "stored data is corrupt",
	[PL_ENOMEM] = "out of memory",
	[PL_ETIMEDOUT] = "timed out",
	[PL_EBUSY] = "busy (an operation is already in progress)",
};

const char *pl_strerror(int err)
{
	if (err < 0)
		err = -err;
	if (err >= PL_E_COUNT || messages[err] == NULL)
		return "unknown error";
	return messages[err];
}

int64_t pl_min_gap_us(uint32_t imp_per_kwh, uint32_t max_power_w)
{
	if (imp_per_kwh == 0 || max_power_w == 0)
		return 0;
	/* One pulse = 3.6e6 J / imp_per_kwh; at P watts that takes 3.6e6 / (imp * P) seconds. */
	return INT64_C(3600000000000) / ((int64_t)imp_per_kwh * (int64_t)max_power_w);
}
