/* SPDX-License-Identifier: MIT */
/*
 * The bridge from a [meter NAME] section of the configuration file (struct pl_config_meter)
 * to each live source's own configuration (src_iio.h, src_gpio.h, src_serial.h), in live.c.
 * The daemon opens through it (pl_live_open_meter(), live.h) and the configuration parser
 * lets each source check its keys through it; a source itself never sees the file's struct.
 */
#ifndef PL_LINUX_LIVE_CONFIG_H
#define PL_LINUX_LIVE_CONFIG_H

#include "sources/src_gpio.h"
#include "sources/src_iio.h"
#include "sources/src_serial.h"

struct pl_config_meter;
struct pl_config_section;

/* The source's configuration from a meter's keys; the strings point into the meter's. */
struct pl_iio_config pl_live_iio_config(const struct pl_config_meter *m);
struct pl_gpio_config pl_live_gpio_config(const struct pl_config_meter *m);
struct pl_serial_config pl_live_serial_config(const struct pl_config_meter *m);

/*
 * Lets the meter's source check the section's keys (pl_iio_check_keys(), ...); nothing for
 * sim and file meters.
 */
void pl_live_check_keys(struct pl_config_section *s, const struct pl_config_meter *m);

#endif
