/*
 * The outbox on the device: the boot counter in NVS and the record log on the "pllog" data
 * partition (partitions.csv, subtype 0x40).
 *
 * ==== WIRING POINT: pl_flashlog ============================================================
 * The power-fail-safe log itself is the core's pl_flashlog (include/powerlogger/flashlog.h,
 * src/core/flashlog.c), being written now. Until it lands this file uses the RAM store
 * (fw_store_ram.c), so records survive network outages but NOT a reboot. To wire it:
 *   1. add flashlog.c to src/core/sources.cmake (the component picks it up from there);
 *   2. implement its flash seam here with esp_partition_erase_range / esp_partition_write /
 *      esp_partition_read over `part` (sector size part->erase_size, 4 KB);
 *   3. implement struct fw_store_ops over pl_flashlog (append = a record entry, anchor = an
 *      anchor entry, peek/drop/quarantine over its read cursor) and return it from
 *      fw_store_flash_open instead of the RAM store; load the anchors of earlier boots with
 *      fw_time_add_anchor() during the recovery scan.
 * ===========================================================================================
 */
#include "esp_log.h"
#include "esp_partition.h"
#include "nvs.h"

#include "fw_port.h"
#include "powerlogger/common.h"

static const char *TAG = "store";

static struct fw_record ram_records[512]; /* 32 KB: ~2.8 h at 20 s intervals */
static struct fw_store_ram ram;

static int next_boot(uint32_t *boot)
{
	nvs_handle_t h;
	uint32_t b = 0;

	if (nvs_open("powerlogger", NVS_READWRITE, &h) != ESP_OK)
		return -PL_EIO;
	nvs_get_u32(h, "boot", &b); /* absent on the first boot: 0 */
	b++;
	if (nvs_set_u32(h, "boot", b) != ESP_OK || nvs_commit(h) != ESP_OK) {
		nvs_close(h);
		return -PL_EIO;
	}
	nvs_close(h);
	*boot = b;
	return 0;
}

int fw_store_flash_open(struct fw_store *s, struct fw_time *t, uint32_t *boot)
{
	const esp_partition_t *part;
	int rc = next_boot(boot);

	if (rc < 0)
		return rc;
	fw_time_init(t, *boot);
	part = esp_partition_find_first(ESP_PARTITION_TYPE_DATA, (esp_partition_subtype_t)0x40,
					"pllog");
	if (part == NULL) {
		ESP_LOGE(TAG, "no \"pllog\" data partition (flash partitions.csv)");
		return -PL_ENOENT;
	}
	ESP_LOGI(TAG, "\"pllog\": %lu KB at 0x%lx", (unsigned long)(part->size / 1024),
		 (unsigned long)part->address);
	/* WIRING POINT: pl_flashlog over `part` replaces the RAM store here (see above). */
	ESP_LOGW(TAG, "flash log not wired yet: records are kept in RAM (lost at reboot)");
	fw_store_ram_init(&ram, ram_records, sizeof(ram_records) / sizeof(ram_records[0]), s);
	return 0;
}
