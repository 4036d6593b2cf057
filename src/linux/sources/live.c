/* SPDX-License-Identifier: MIT */
/*
 * The live sources' registry, the bridge from a meter of the configuration file to each
 * source's own configuration, and the clock conversion (see live.h).
 */
#include <stdio.h>
#include <time.h>

#include "config/config.h"
#include "config/keys.h"
#include "sources/live.h"
#include "sources/live_config.h"
#include "sources/src_gpio.h"
#include "sources/src_iio.h"
#include "sources/src_serial.h"

const struct pl_live_ops *pl_live_ops_for(int source)
{
	switch (source) {
	case PL_CONFIG_SOURCE_IIO:
		return &pl_live_iio;
	case PL_CONFIG_SOURCE_GPIO:
		return &pl_live_gpio;
	case PL_CONFIG_SOURCE_SERIAL:
		return &pl_live_serial;
	default:
		return NULL;
	}
}

struct pl_iio_config pl_live_iio_config(const struct pl_config_meter *m)
{
	return (struct pl_iio_config){
		.name = m->name,
		.device = m->device,
		.channel = m->channel,
		.mode = (enum pl_iio_mode)m->iio_mode,
		.rate_hz = m->rate_hz,
		.trigger = m->trigger,
		.sysfs_root = m->sysfs_root,
		.dev_root = m->dev_root,
	};
}

struct pl_gpio_config pl_live_gpio_config(const struct pl_config_meter *m)
{
	return (struct pl_gpio_config){
		.name = m->name,
		.device = m->device,
		.line = m->channel,
		.bias = (enum pl_gpio_bias)m->bias,
		.dev_root = m->dev_root,
	};
}

struct pl_serial_config pl_live_serial_config(const struct pl_config_meter *m)
{
	return (struct pl_serial_config){
		.name = m->name,
		.device = m->device,
		.pin = (enum pl_serial_pin)m->modem_line,
		.dev_root = m->dev_root,
	};
}

int pl_live_open_meter(const struct pl_live_ops *ops, void **self,
		       const struct pl_config_meter *meter, char *err, size_t errlen)
{
	/* each source copies what it keeps of its configuration, or points into the meter's
	 * strings, which outlive it: a configuration on the stack is enough */
	if (ops == &pl_live_iio) {
		struct pl_iio_config c = pl_live_iio_config(meter);

		return ops->open(self, &c, err, errlen);
	}
	if (ops == &pl_live_gpio) {
		struct pl_gpio_config c = pl_live_gpio_config(meter);

		return ops->open(self, &c, err, errlen);
	}
	if (ops == &pl_live_serial) {
		struct pl_serial_config c = pl_live_serial_config(meter);

		return ops->open(self, &c, err, errlen);
	}
	*self = NULL;
	snprintf(err, errlen, "meter %s: source %s is not opened from a meter's keys",
		 meter->name ? meter->name : "?", ops->name);
	return -PL_EINVAL;
}

void pl_live_check_keys(struct pl_config_section *s, const struct pl_config_meter *m)
{
	switch (m->source) {
	case PL_CONFIG_SOURCE_IIO: {
		struct pl_iio_config c = pl_live_iio_config(m);

		pl_iio_check_keys(s, &c);
		break;
	}
	case PL_CONFIG_SOURCE_GPIO: {
		struct pl_gpio_config c = pl_live_gpio_config(m);

		pl_gpio_check_keys(s, &c);
		break;
	}
	case PL_CONFIG_SOURCE_SERIAL: {
		struct pl_serial_config c = pl_live_serial_config(m);

		pl_serial_check_keys(s, &c);
		break;
	}
	default:
		break;
	}
}
