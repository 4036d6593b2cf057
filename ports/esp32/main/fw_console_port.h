/* SPDX-License-Identifier: MIT */
/*
 * The settings (settings_nvs.c) and the serial console (console.c) as the other platform
 * files see them. The settings live in one heap block allocated at boot, with the console's
 * mailbox to the sampling task and its status view (logic/fw_console.h): a static pointer,
 * not 2.6 KB of statics in a firmware at its RAM budget.
 *
 * Two copies of the settings: the one loaded at boot, which the tasks read (fw_settings_get)
 * and nothing changes afterwards, so no task ever sees a value half-written; and the one the
 * console edits and saves (fw_settings_edit), which becomes the first at the next restart.
 */
#ifndef FW_CONSOLE_PORT_H
#define FW_CONSOLE_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "fw_console.h"
#include "fw_settings.h"

/*
 * Allocates the block and loads the settings from NVS (namespace "plset"), the Kconfig values
 * for every key not stored. Call after nvs_flash_init(), before the tasks start. 0 or
 * -PL_ENOMEM (logged).
 */
int fw_settings_boot(void);

const struct fw_settings *fw_settings_get(void);      /* as loaded at boot: the tasks' */
const struct fw_settings *fw_settings_defaults(void); /* the Kconfig values */
struct fw_settings *fw_settings_edit(void);           /* the console's */

/* Saves the console's copy to NVS. 0, or -PL_EIO with the reason in msg. */
int fw_settings_store(char *msg, size_t cap);

/* Erases the stored settings (not the outbox, the register or the boot count): the Kconfig
 * values from the next restart on. 0 or -PL_EIO (msg). */
int fw_settings_factory_reset(char *msg, size_t cap);

struct fw_regreq *fw_console_regreq(void);  /* console -> sampling task */
struct fw_status *fw_console_status(void);  /* network and sampling tasks -> console */

/*
 * The sampling task (either target's), after each fw_sampling_tick: takes the console's
 * `register KWH` (fw_regreq_take; the meter is this task's), logs it - that it went down, when
 * it did: Home Assistant sees a meter reset - and gives `status` the register and power.
 */
void fw_console_sampling_tick(struct fw_sampling *s);

/* Starts the REPL on the console UART (stdin/stdout on the linux target). boot: this boot's
 * number, for `status`. Logs and returns if it cannot. */
void fw_console_start(uint32_t boot);

#endif
