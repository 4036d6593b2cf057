/* SPDX-License-Identifier: MIT */
/*
 * The linux target's flash: ESP-IDF emulates it with a file mapped into memory
 * (esp_partition's linux port). By default that is a new temporary file each run; the outbox
 * and NVS must outlive the process like a device's flash outlives a power cut, so the file is
 * kept under a name. Writes reach it through a MAP_SHARED mapping: they are in the page cache
 * the moment they are made, so a killed process (SIGKILL, the linux target's power cut) loses
 * nothing it wrote; a host crash is another matter (no msync), which a device does not have.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "esp_log.h"
#include "esp_partition.h"
#include "esp_private/partition_linux.h"
#include "sdkconfig.h"

#include "fw_linux.h"

static const char *TAG = "flash";

static void copy_name(char *dst, const char *src, size_t cap)
{
	size_t n = strlen(src);

	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

int fw_linux_flash_setup(void)
{
	const char *path = getenv("PL_FLASH_FILE");
	esp_partition_file_mmap_ctrl_t *in = esp_partition_get_file_mmap_ctrl_input();
	const esp_partition_file_mmap_ctrl_t *act;
	struct stat st;

	if (path == NULL || path[0] == '\0')
		path = CONFIG_PL_LINUX_FLASH_FILE;
	if (strlen(path) >= sizeof(in->flash_file_name)) {
		ESP_LOGE(TAG, "flash file name too long: %s", path);
		return -1;
	}
	memset(in, 0, sizeof(*in));
	in->remove_dump = false;
	if (stat(path, &st) == 0) {
		/* as it is: its partition table is the one it was made with */
		copy_name(in->flash_file_name, path, sizeof(in->flash_file_name));
		ESP_LOGI(TAG, "emulated flash: %s (%ld KB, kept from an earlier run)", path,
			 (long)(st.st_size / 1024));
		return 0;
	}
	if (errno != ENOENT) {
		ESP_LOGE(TAG, "emulated flash %s: %s", path, strerror(errno));
		return -1;
	}
	/* a new one, made by ESP-IDF from the build's partition table, then given the name */
	if (esp_partition_find_first(ESP_PARTITION_TYPE_DATA, ESP_PARTITION_SUBTYPE_ANY, NULL) ==
	    NULL) {
		ESP_LOGE(TAG, "emulated flash: no data partition in the partition table");
		return -1;
	}
	act = esp_partition_get_file_mmap_ctrl_act();
	if (link(act->flash_file_name, path) != 0) {
		ESP_LOGW(TAG, "emulated flash: cannot keep %s as %s (%s): this run's flash is lost "
			 "when it ends", act->flash_file_name, path, strerror(errno));
		return 0;
	}
	unlink(act->flash_file_name);
	ESP_LOGI(TAG, "emulated flash: %s (new, %u KB, blank partitions)", path,
		 (unsigned)(act->flash_file_size / 1024));
	return 0;
}
