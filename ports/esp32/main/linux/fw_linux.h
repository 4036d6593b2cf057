/* SPDX-License-Identifier: MIT */
/*
 * The linux target (idf.py --preview set-target linux): the real app on the host, with a
 * simulated sensor and the host's network and clock. See README "The firmware on the linux
 * target".
 */
#ifndef FW_LINUX_H
#define FW_LINUX_H

/*
 * Keeps the emulated flash (NVS, the pllog outbox) in a file that outlives the process:
 * $PL_FLASH_FILE, or CONFIG_PL_LINUX_FLASH_FILE in the working directory. An existing file is
 * opened as it is (its partition table included); a missing one is made by ESP-IDF from the
 * build's partition table and kept under that name. Call before the first flash access
 * (nvs_flash_init). Returns 0, or -1 with the reason logged.
 */
int fw_linux_flash_setup(void);

#endif
