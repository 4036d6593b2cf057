/* SPDX-License-Identifier: MIT */
/*
 * What every outbox does the same way on top of struct fw_store_ops (fw_store.h): an interval
 * record going in with the register it ends with, and the boot-time restore of anchors and
 * register.
 */
#include "fw_store.h"

#include "powerlogger/common.h"

int fw_store_put_record(struct fw_store *s, const struct fw_record *r)
{
	struct fw_meter_state m = {.register_uwh = r->rec.register_uwh, .boot = r->boot};
	int rc = fw_store_save_meter(s, &m);

	return rc < 0 ? rc : fw_store_append(s, r);
}

int fw_store_restore(struct fw_store *s, struct fw_time *t, struct fw_meter_state *m)
{
	struct fw_time_anchor a[FW_TIME_ANCHORS + 1];
	size_t i, n;
	int rc = fw_store_anchors(s, a, sizeof(a) / sizeof(a[0]), &n);

	if (rc < 0)
		return rc;
	for (i = 0; i < n; i++)
		if (a[i].boot != t->boot) /* NVS erased: the counter started again */
			fw_time_add_anchor(t, a[i].boot, a[i].offset_us);
	rc = fw_store_load_meter(s, m);
	if (rc == -PL_ENOENT) {
		*m = (struct fw_meter_state){0};
		rc = 0;
	}
	return rc;
}
