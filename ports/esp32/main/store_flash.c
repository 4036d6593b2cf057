/* SPDX-License-Identifier: MIT */
/*
 * The outbox on the device: the boot counter in NVS, and the core's power-fail-safe record log
 * (pl_flashlog, through fw_store_flashlog in logic/) on the "pllog" data partition
 * (partitions.csv, subtype 0x40: 256 KB = 64 sectors of 4 KB). This file is only the flash
 * seam - struct pl_flash over esp_partition_read/_write/_erase_range - and the boot-time
 * recovery; what goes into the log, and how, is host-tested logic.
 *
 * Program granularity: esp_partition_write() takes any length at any offset on a partition
 * without flash encryption (the SPI flash driver splits it into page programs and programs
 * only the bits that go from 1 to 0, which is what pl_flashlog expects of NOR). We still tell
 * the log write_align 4, the flash's word, so every program is whole words at word addresses.
 * An encrypted partition is refused: encrypted writes need 16-byte units and an erased sector
 * does not read back as 0xFF through decryption, so the log could not tell blank from written.
 *
 * Flash writes stall the caches on both cores for their duration (tens of us per word, ~45 ms
 * per sector erase); the ADC callback is IRAM-resident and the ADC keeps filling its DMA pool
 * meanwhile, so the sampling task only reads a frame later. The GPIO edge interrupt is in IRAM
 * too (ESP_INTR_FLAG_IRAM, sampling_task.c), so edges are timestamped through an erase.
 */
#include "esp_log.h"
#include "esp_partition.h"
#include "nvs.h"

#include "fw_port.h"
#include "fw_store_flashlog.h"
#include "powerlogger/common.h"

static const char *TAG = "store";

static struct fw_store_flashlog outbox; /* ~1.3 KB: the log's state, quarantine, read buffer */

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

/* ---- struct pl_flash over the partition (addresses are partition offsets) ---- */

static int part_read(void *ctx, uint32_t addr, void *buf, size_t len)
{
	const esp_partition_t *p = ctx;

	return esp_partition_read(p, addr, buf, len) == ESP_OK ? 0 : -PL_EIO;
}

static int part_program(void *ctx, uint32_t addr, const void *buf, size_t len)
{
	const esp_partition_t *p = ctx;

	return esp_partition_write(p, addr, buf, len) == ESP_OK ? 0 : -PL_EIO;
}

static int part_erase(void *ctx, uint32_t sector)
{
	const esp_partition_t *p = ctx;
	esp_err_t err = esp_partition_erase_range(p, (size_t)sector * p->erase_size, p->erase_size);

	if (err != ESP_OK)
		ESP_LOGE(TAG, "erase of sector %lu failed: %s", (unsigned long)sector,
			 esp_err_to_name(err));
	return err == ESP_OK ? 0 : -PL_EIO;
}

int fw_store_flash_open(struct fw_store *s, struct fw_time *t, uint32_t *boot,
			struct fw_meter_state *meter)
{
	const esp_partition_t *part;
	struct pl_flash flash;
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
	if (part->encrypted) {
		ESP_LOGE(TAG, "\"pllog\" must not be encrypted (remove the flag in partitions.csv)");
		return -PL_EINVAL;
	}
	flash = (struct pl_flash){
		.sector_size = part->erase_size,            /* 4096 */
		.sector_count = part->size / part->erase_size,
		.write_align = 4,
		.read = part_read,
		.program = part_program,
		.erase = part_erase,
		.ctx = (void *)part,                        /* partition records live forever */
	};
	ESP_LOGI(TAG, "\"pllog\": %lu KB at 0x%lx, %lu sectors of %lu B",
		 (unsigned long)(part->size / 1024), (unsigned long)part->address,
		 (unsigned long)flash.sector_count, (unsigned long)flash.sector_size);
	rc = fw_store_flashlog_open(&outbox, &flash, s);
	if (rc < 0) {
		ESP_LOGE(TAG, "flash log: cannot mount (%s)", pl_strerror(rc));
		return rc;
	}
	ESP_LOGI(TAG, "flash log: %s, %u record(s) waiting (%lu sector(s) repaired)",
		 outbox.log.formatted ? "formatted (blank or foreign partition)" : "mounted",
		 (unsigned)outbox.n, (unsigned long)outbox.log.mount_erases);
	rc = fw_store_restore(s, t, meter);
	if (rc < 0)
		return rc;
	if (meter->boot != 0)
		ESP_LOGI(TAG, "energy register %.3f Wh (saved in boot %lu); %lu earlier boot(s) "
			 "with a time anchor", (double)meter->register_uwh / 1e6,
			 (unsigned long)meter->boot, (unsigned long)t->nold);
	return 0;
}
