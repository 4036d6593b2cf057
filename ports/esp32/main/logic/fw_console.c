/* SPDX-License-Identifier: MIT */
/* The console's mailbox to the sampling task and its status view (fw_console.h). */
#include <string.h>

#include "fw_console.h"
#include "powerlogger/common.h"

void fw_regreq_init(struct fw_regreq *q)
{
	fw_seqpair_init(&q->req);
	fw_seqpair_init(&q->done);
	q->taken = 0;
	q->reserved = 0;
}

int64_t fw_regreq_post(struct fw_regreq *q, int64_t register_uwh)
{
	int64_t a, b;
	uint32_t v;

	if (register_uwh < 0 || register_uwh > FW_KWH_MAX * 1000000000)
		return -PL_EINVAL;
	fw_seqpair_write(&q->req, register_uwh, 0);
	/* the console is the one writer: no write can be in progress here */
	if (fw_seqpair_read(&q->req, &a, &b, &v) != 0)
		return -PL_EBUSY;
	return (int64_t)v;
}

int fw_regreq_result(const struct fw_regreq *q, int64_t id, int64_t *replaced_uwh)
{
	int64_t old, done;

	if (fw_seqpair_read(&q->done, &old, &done, NULL) != 0)
		return -PL_EBUSY;
	if (done < id)
		return 0;
	if (replaced_uwh != NULL)
		*replaced_uwh = old;
	return 1;
}

int fw_regreq_take(struct fw_regreq *q, struct fw_sampling *s, int64_t *old_uwh,
		   int64_t *new_uwh)
{
	int64_t want, unused, old;
	uint32_t v;
	int rc;

	if (fw_seqpair_read(&q->req, &want, &unused, &v) != 0 || v == q->taken)
		return 0; /* none, or being written: the next tick takes it */
	q->taken = v;
	old = pl_meter_register(&s->ch.meter);
	rc = fw_sampling_set_register(s, want);
	if (rc < 0)
		return rc;
	fw_seqpair_write(&q->done, old, (int64_t)v);
	if (old_uwh != NULL)
		*old_uwh = old;
	if (new_uwh != NULL)
		*new_uwh = want;
	return 1;
}

int fw_parse_kwh(const char *t, int64_t *uwh)
{
	int64_t whole = 0, frac = 0, scale = 1000000000;
	int digits = 0;

	if (t == NULL || *t == '\0' || *t == '.')
		return -PL_EINVAL;
	for (; *t >= '0' && *t <= '9'; t++) {
		whole = whole * 10 + (*t - '0');
		if (whole > FW_KWH_MAX)
			return -PL_ERANGE;
	}
	if (*t == '.') {
		for (t++; *t >= '0' && *t <= '9'; t++) {
			if (++digits > 9)
				return -PL_EINVAL;
			scale /= 10;
			frac += (*t - '0') * scale;
		}
		if (digits == 0)
			return -PL_EINVAL;
	}
	if (*t != '\0')
		return -PL_EINVAL;
	if (whole == FW_KWH_MAX && frac > 0)
		return -PL_ERANGE;
	*uwh = whole * 1000000000 + frac;
	return 0;
}

void fw_status_init(struct fw_status *st)
{
	fw_seqpair_init(&st->net);
	fw_seqpair_init(&st->err);
	fw_seqpair_init(&st->meter);
}

void fw_status_net(struct fw_status *st, int wifi_up, uint32_t waiting, uint64_t delivered)
{
	fw_seqpair_write(&st->net, (int64_t)waiting | (int64_t)(wifi_up != 0) << 32,
			 (int64_t)delivered);
}

void fw_status_error(struct fw_status *st, int action, int transport, int status,
		     int64_t at_us)
{
	uint32_t packed = ((uint32_t)status & 0xffffu) | ((uint32_t)transport & 0xffu) << 16 |
			  ((uint32_t)action & 0x7fu) << 24;

	fw_seqpair_write(&st->err, (int64_t)packed, at_us);
}

void fw_status_meter(struct fw_status *st, int64_t register_uwh, int64_t power_mw)
{
	fw_seqpair_write(&st->meter, register_uwh, power_mw);
}

void fw_status_read(const struct fw_status *st, struct fw_status_view *v)
{
	int64_t a, b;
	uint32_t ver;

	memset(v, 0, sizeof(*v));
	if (fw_seqpair_read(&st->net, &a, &b, NULL) == 0) {
		v->waiting = (uint32_t)(a & 0xffffffff);
		v->wifi_up = (int)((a >> 32) & 1);
		v->delivered = (uint64_t)b;
	}
	if (fw_seqpair_read(&st->err, &a, &b, &ver) == 0 && ver != 0) {
		v->have_error = 1;
		v->err_status = (int)(a & 0xffff);
		v->err_transport = (int)((a >> 16) & 0xff);
		v->err_action = (int)((a >> 24) & 0x7f);
		v->err_at_us = b;
	}
	if (fw_seqpair_read(&st->meter, &a, &b, &ver) == 0 && ver != 0) {
		v->have_meter = 1;
		v->register_uwh = a;
		v->power_mw = b;
	}
}
