/* SPDX-License-Identifier: MIT */
/*
 * Over-the-air update, the device's side (ota.c; the decisions are logic/fw_ota.h). Three
 * entry points, each a single call from its caller, so that app_main.c, net.c and the console
 * need no OTA code of their own. On the linux target (no app_update there) they are stubs that
 * say so.
 */
#ifndef OTA_H
#define OTA_H

#include <stddef.h>
#include <stdint.h>

struct fw_sinks;

/*
 * app_main, once, before the tasks start: reads the running image's slot, version and state
 * (pending verify after an update, valid, or untracked when flashed over USB), says what will
 * happen, and keeps url (copied; "" or NULL: no automatic checks; CONFIG_PL_OTA_URL or the
 * console's setting). Its memory is heap, taken here once.
 */
void fw_ota_boot(const char *url);

/*
 * The network task, once per loop: sees the sinks' acknowledgements (the proof a new image
 * needs), marks the image valid or rolls it back when logic/fw_ota says so, starts the
 * periodic check, and restarts into a written image once the records are in the outbox.
 * Returns at once (the download runs in a task of its own).
 */
void fw_ota_poll(int64_t now_ms, int net_up, const struct fw_sinks *sinks);

/*
 * A pushed update (the console's `ota URL`): checks the URL, starts the download in its own
 * task and returns. 0, or -PL_EINVAL (the URL: the reason is logged), -PL_EBUSY (an update is
 * running, or the running image is still on probation), -PL_ENOMEM, -PL_ENOENT (not on this
 * target, or fw_ota_boot not called). _forced writes the same, an older or a rolled-back
 * version too (never another project's image).
 */
int fw_ota_start(const char *url);
int fw_ota_start_forced(const char *url);

/* One line for the console's status: slot, version, state, and an update's progress. */
void fw_ota_status(char *buf, size_t cap);

#endif
