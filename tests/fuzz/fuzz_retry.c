/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: arbitrary bytes as a server's answer to a write (the first bytes choose
 * the status, the batch size and Retry-After, the rest is the body) through pl_sink_body_flags,
 * pl_sink_classify and pl_backoff_next. It must never crash or overrun, and the policy's
 * promises must hold for every input: only a 400/422 whose body names bad lines splits or
 * quarantines, only a single line is quarantined, a 2xx other than 204 with an error or HTML
 * body is not acknowledged, and no wait exceeds its cap or the Retry-After limit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "powerlogger/retry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pl_sink_response r;
	struct pl_backoff b = PL_BACKOFF_INIT;
	enum pl_sink_action a;
	unsigned flags = 0;
	uint32_t cap, wait_ms, limit_ms;

	if (size < 8)
		return 0;
	memset(&r, 0, sizeof r);
	r.transport = (enum pl_sink_transport)(data[0] % 8 < 6 ? 0 : data[0] % 6);
	r.status = 100 + (int)((data[1] | (unsigned)data[2] << 8) % 500);
	r.batch_lines = data[3] % 4 == 0 ? 1u : data[3];
	r.retry_after_s = (uint32_t)data[4] << 24 | (uint32_t)data[5] << 16 |
			  (uint32_t)data[6] << 8 | data[7];
	r.body = pl_sink_body_flags((const char *)data + 8, size - 8);
	a = pl_sink_classify(&r, &flags);

	if (r.transport == PL_XPORT_NONE) {
		int lines_bad = (r.body & PL_BODY_BAD_LINES) != 0;

		if ((a == PL_SINK_QUARANTINE || (a == PL_SINK_SPLIT && r.status != 413)) &&
		    (!lines_bad || (r.status != 400 && r.status != 422)))
			abort();
		if (a == PL_SINK_QUARANTINE && r.batch_lines != 1)
			abort();
		if (a == PL_SINK_OK && r.status != 204 && (r.body & (PL_BODY_ERROR | PL_BODY_HTML)))
			abort();
	} else if (a != PL_SINK_RETRY) {
		abort();
	}
	b.slow = (flags & (PL_SINK_F_AUTH | PL_SINK_F_CONFIG)) != 0;
	b.attempt = data[3];
	cap = b.slow ? PL_BACKOFF_SLOW_CAP_MS : PL_BACKOFF_CAP_MS;
	limit_ms = PL_BACKOFF_MAX_RETRY_AFTER_S * 1000u;
	wait_ms = pl_backoff_next(&b, (uint32_t)data[1] << 16 | data[2], r.retry_after_s);
	if (wait_ms > (cap > limit_ms ? cap : limit_ms))
		abort();
	if (r.retry_after_s == 0 && wait_ms > cap)
		abort();
	return 0;
}
