/* SPDX-License-Identifier: MIT */
/*
 * The kind of meter a light sensor watches, and what it changes in the detector's settings.
 *
 * An LED meter flashes for a fixed few milliseconds (up to ~90 ms on some metering chips) per
 * impulse: the detector's defaults are made for it. A Ferraris meter's aluminium disc carries
 * one dark mark on its rim; a reflective sensor over it sees one slow dip per revolution whose
 * length is the mark's share of the rim (2-4 %) times the revolution time: 0.3-2 s at household
 * loads, and longer the lower the load (docs/disc-meters.md). So for a disc the longest
 * plausible pulse is the detector's limit, 10 s: with a 3 % mark that covers one revolution in
 * up to 333 s, 144 W on a 75 rev/kWh meter, 29 W on a 375 rev/kWh one. A longer dip (the disc
 * crawling at a lower load, or stopped on the mark) is a steady state, never a pulse; the
 * meter constant is the revolutions per kWh, and nothing else differs: the polarity is
 * learned (the short state is the mark), the plausibility limit comes from the constant and
 * the supply's maximum power as for an LED.
 *
 * Used by the Linux program (config, `detect --meter-type`) and the firmware (Kconfig
 * PL_METER_TYPE), so that both derive the same detector settings. Freestanding.
 */
#ifndef POWERLOGGER_METER_TYPE_H
#define POWERLOGGER_METER_TYPE_H

#include "powerlogger/detector.h"

enum pl_meter_type {
	PL_METER_LED = 0,  /* an impulse LED (default) */
	PL_METER_DISC = 1, /* a Ferraris disc's mark under a reflective sensor */
};

/* A disc's longest plausible dip: the detector's maximum of max_width_us. */
#define PL_DISC_MAX_WIDTH_US 10000000u

/* Returns "led" or "disc" ("?" for anything else). */
static inline const char *pl_meter_type_name(int type)
{
	return type == PL_METER_LED ? "led" : type == PL_METER_DISC ? "disc" : "?";
}

/*
 * Applies a meter type's defaults to a detector configuration: what the caller left at 0
 * (default) takes the type's value, what it set (an explicit max width) stays. Returns 0, or
 * -PL_EINVAL for an unknown type.
 */
static inline int pl_meter_type_detector(struct pl_detector_config *cfg, int type)
{
	if (type != PL_METER_LED && type != PL_METER_DISC)
		return -PL_EINVAL;
	if (type == PL_METER_DISC && cfg->max_width_us == 0)
		cfg->max_width_us = PL_DISC_MAX_WIDTH_US;
	return 0;
}

#endif
