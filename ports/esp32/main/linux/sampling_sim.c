/* SPDX-License-Identifier: MIT */
/*
 * The sampling task on the linux target: the device's sampling task (sampling_task.c) with a
 * simulated ADC in place of the real one. The same fw_sampling (logic/) turns the readings
 * into interval records in g_records, the same frames of FW_SAMPLING_FRAME_SAMPLES raw
 * readings at CONFIG_PL_ADC_RATE_HZ reach it, stamped with esp_timer_get_time() at their end.
 * The readings come from fw_adcsim (ports/esp32/host/adcsim.c, the host tests' model of the
 * ESP32's ADC1 behind a photodiode: noise, the dead zone near 0 V, WiFi transmit bursts) over
 * the LED flashes of a meter at a steady CONFIG_PL_SIM_POWER_W, made in real time.
 */
#include <string.h>

#include "esp_log.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "sdkconfig.h"

#include "adcsim.h"
#include "fw_console_port.h"
#include "fw_port.h"
#include "fw_sampling.h"

static const char *TAG = "sampling";

#define FRAME_SAMPLES FW_SAMPLING_FRAME_SAMPLES
#define TRAIN 32 /* upcoming flashes the simulated ADC knows */

static struct fw_sampling smp;
static struct fw_adcsim adc;
static int64_t train[TRAIN];
static uint16_t values[FRAME_SAMPLES];

static void config_from_settings(struct fw_sampling_config *c)
{
	const struct fw_settings *st = fw_settings_get(); /* the meter: NVS or Kconfig */
	const struct fw_sampling_meter m = {
		.imp_per_kwh = st->imp_per_kwh, .max_power_w = st->max_power_w,
		.interval_s = st->interval_s,
	};

	fw_sampling_config_adc(c, &m, CONFIG_PL_ADC_RATE_HZ, CONFIG_PL_ADC_BLOCK);
}

/* Keeps the simulated ADC's list of flashes TRAIN long: drops the past ones, adds new ones
 * one period apart (a steady load), each logged as it is made. */
static void refill(int64_t *next_flash, int64_t period_us)
{
	size_t keep = adc.npulses - adc.next;

	memmove(train, train + adc.next, keep * sizeof(train[0]));
	while (keep < TRAIN) {
		train[keep++] = *next_flash;
		*next_flash += period_us;
	}
	adc.pulses = train;
	adc.npulses = keep;
	adc.next = 0;
}

static void take_timebase(void)
{
	struct fw_timebase_msg m;

	while (fw_ring_pop(&g_timebase, &m) == 0) {
		fw_sampling_timebase(&smp, m.offset_us, esp_timer_get_time());
		ESP_LOGI(TAG, "time base %lu: records stamped from now on", (unsigned long)m.epoch);
	}
}

void fw_sampling_task(void *arg)
{
	const struct fw_sampling_args *a = arg;
	struct fw_sampling_config cfg;
	const int64_t period_us = (int64_t)(3.6e12 / ((double)CONFIG_PL_IMP_PER_KWH *
						      CONFIG_PL_SIM_POWER_W));
	int64_t t0 = esp_timer_get_time(), next_flash;
	uint64_t k = 0; /* readings made */

	config_from_settings(&cfg);
	ESP_ERROR_CHECK(fw_sampling_init(&smp, &cfg, &g_records, a->boot) == 0 ? ESP_OK : ESP_FAIL);
	if (a->meter.boot != 0 && fw_sampling_set_register(&smp, a->meter.register_uwh) == 0)
		ESP_LOGI(TAG, "energy register restored: %.3f Wh",
			 (double)a->meter.register_uwh / 1e6);
	/* the first flash after the detector has seen a second of dark LED */
	next_flash = t0 + 1000000;
	fw_adcsim_init(&adc, (uint64_t)t0 ^ a->boot, train, 0);
	refill(&next_flash, period_us);
	ESP_LOGI(TAG, "simulated ADC (linux target): %d Hz in blocks of %d; a steady %d W on a "
		 "%d imp/kWh meter, a flash every %.3f s", CONFIG_PL_ADC_RATE_HZ,
		 CONFIG_PL_ADC_BLOCK, CONFIG_PL_SIM_POWER_W, CONFIG_PL_IMP_PER_KWH,
		 (double)period_us / 1e6);

	for (;;) {
		int64_t now;

		vTaskDelay(pdMS_TO_TICKS(10));
		take_timebase();
		now = esp_timer_get_time();
		/* the frames the ADC has filled by now, read as the device's DMA hands them over */
		while (t0 + (int64_t)((k + FRAME_SAMPLES) * 1000000 / CONFIG_PL_ADC_RATE_HZ) <= now) {
			int64_t t_end = 0;

			for (size_t i = 0; i < FRAME_SAMPLES; i++, k++) {
				t_end = t0 + (int64_t)(k * 1000000 / CONFIG_PL_ADC_RATE_HZ);
				values[i] = fw_adcsim_read(&adc, t_end);
			}
			fw_sampling_adc(&smp, values, FRAME_SAMPLES, t_end);
			if (adc.next > TRAIN / 2)
				refill(&next_flash, period_us);
		}
		fw_sampling_tick(&smp, now);
		fw_console_sampling_tick(&smp); /* `register KWH`; the register for `status` */
		fw_sampling_share(&smp, &g_view);
	}
}
