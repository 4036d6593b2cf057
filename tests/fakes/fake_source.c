/* SPDX-License-Identifier: MIT */
/*
 * The FAKE pulse line for tests/test_daemon.c (see fake_source.h).
 */
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "fake_source.h"

#define MIN_EVENT(a, b) ((a) < (b) ? (a) : (b))

struct fake_source fake_source;

void fake_source_setup(int64_t first_us, int64_t period_us, int64_t width_us)
{
	memset(&fake_source, 0, sizeof(fake_source));
	fake_source.first_us = first_us;
	fake_source.period_us = period_us;
	fake_source.width_us = width_us;
}

/* Edge i: even ones rise, odd ones fall. */
static int64_t edge_time(uint64_t i)
{
	struct fake_source *f = &fake_source;

	return f->first_us + (int64_t)(i / 2) * f->period_us + (i % 2 ? f->width_us : 0);
}

static int gone(int64_t now)
{
	struct fake_source *f = &fake_source;

	return f->fail_at_us && now >= f->fail_at_us && now < f->back_at_us;
}

int64_t fake_source_next_event(void)
{
	struct fake_source *f = &fake_source;

	if (!f->is_open)
		return INT64_MAX;
	if (f->fail_at_us && !f->failed)
		return MIN_EVENT(f->fail_at_us, edge_time(f->next_edge));
	return edge_time(f->next_edge);
}

int fake_source_readable(void)
{
	struct fake_source *f = &fake_source;
	int64_t now = pl_clock_mono_us();

	if (!f->is_open)
		return 0;
	if (f->fail_at_us && !f->failed && now >= f->fail_at_us)
		return 1;
	return edge_time(f->next_edge) <= now;
}

static int fake_open(void **self, const void *cfg, char *err, size_t errlen)
{
	struct fake_source *f = &fake_source;
	int64_t now = pl_clock_mono_us();
	int ok = !gone(now);

	(void)cfg;
	if (f->nopens < FAKE_SOURCE_MAX_OPENS) {
		f->opens_us[f->nopens] = now;
		f->opens_ok[f->nopens] = ok;
		f->nopens++;
	}
	if (!ok) {
		snprintf(err, errlen, "fake line: no such device");
		return -PL_EIO;
	}
	/* edges before the open were not seen */
	while (edge_time(f->next_edge) < now)
		f->next_edge++;
	f->is_open = 1;
	*self = f;
	return 0;
}

static int fake_fd(void *self)
{
	(void)self;
	return FAKE_SOURCE_FD;
}

static int fake_read(void *self, void *buf, size_t cap, struct pl_live_info *info, char *err,
		     size_t errlen)
{
	struct fake_source *f = self;
	struct pl_live_edge *e = buf;
	int64_t now = pl_clock_mono_us(), to_wall = pl_clock_wall_minus_mono_us();
	size_t n = 0;

	memset(info, 0, sizeof(*info));
	if (f->fail_at_us && !f->failed && now >= f->fail_at_us) {
		f->failed = 1;
		f->failed_read_us = now;
		snprintf(err, errlen, "fake line: device vanished");
		return -PL_EIO;
	}
	while (n < cap && edge_time(f->next_edge) <= now) {
		e[n].t_us = edge_time(f->next_edge) + to_wall;
		e[n].level = (int8_t)(f->next_edge % 2 == 0);
		f->next_edge++;
		n++;
	}
	return (int)n;
}

static int fake_level(void *self)
{
	struct fake_source *f = self;

	return f->next_edge % 2 ? 1 : 0; /* the last edge given rose: high */
}

static void fake_close(void *self)
{
	struct fake_source *f = self;

	f->is_open = 0;
}

const struct pl_live_ops fake_source_ops = {
	.name = "fake",
	.kind = PL_LIVE_EDGES,
	.open = fake_open,
	.fd = fake_fd,
	.read = fake_read,
	.level = fake_level,
	.close = fake_close,
};
