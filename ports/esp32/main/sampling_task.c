/* SPDX-License-Identifier: MIT */
/*
 * The sampling task (core 1): ADC1 in continuous (DMA) mode, or timestamped GPIO edges, into
 * fw_sampling (logic/), whose records go into g_records. The status LED echoes each pulse.
 * Only hardware access lives here; the loop's logic is tested on the host.
 */
#include <string.h>

#include "driver/gpio.h"
#include "esp_adc/adc_continuous.h"
#include "esp_attr.h"
#include "esp_idf_version.h"
#include "esp_intr_alloc.h"
#include "esp_log.h"
#include "esp_task_wdt.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "sdkconfig.h"

#include "soc/gpio_reg.h"
#include "soc/soc.h"

#include "fw_console_port.h"
#include "fw_led.h"
#include "fw_port.h"
#include "fw_sampling.h"
#include "powerlogger/meter_type.h"

static const char *TAG = "sampling";

/* Kconfig leaves unset bools and hidden options undefined: give the GPIO ones values. */
#ifdef CONFIG_PL_INPUT_ACTIVE_LOW
#define ACTIVE_LOW 1
#else
#define ACTIVE_LOW 0
#endif
#ifndef CONFIG_PL_INPUT_GPIO_NUM
#define CONFIG_PL_INPUT_GPIO_NUM 0
#define CONFIG_PL_INPUT_DEBOUNCE_US 0
#endif

#define FRAME_SAMPLES FW_SAMPLING_FRAME_SAMPLES
#define FRAME_BYTES (FRAME_SAMPLES * SOC_ADC_DIGI_RESULT_BYTES)
/* The driver's pool: 8 frames, 102 ms at 20 kHz, twice a flash sector erase (~45 ms), during
 * which this task cannot run and the frames wait there (fw_sampling.h). */
#define POOL_BYTES (FW_SAMPLING_POOL_FRAMES * FRAME_BYTES)

#if CONFIG_IDF_TARGET_ESP32 || CONFIG_IDF_TARGET_ESP32S2
#define ADC_FORMAT ADC_DIGI_OUTPUT_FORMAT_TYPE1
#define ADC_VALUE(p) ((p)->type1.data)
#else
#define ADC_FORMAT ADC_DIGI_OUTPUT_FORMAT_TYPE2
#define ADC_VALUE(p) ((p)->type2.data)
#endif

#if ESP_IDF_VERSION >= ESP_IDF_VERSION_VAL(5, 2, 0)
#define ADC_ATTEN ADC_ATTEN_DB_12
#else
#define ADC_ATTEN ADC_ATTEN_DB_11
#endif

static TaskHandle_t self;
static struct fw_sampling smp;     /* ~4 KB: static, not on the task's stack */

static struct fw_ring edges;        /* struct fw_edge: ISR -> task */
static struct fw_edge edge_store[64];

#if CONFIG_PL_INPUT_ADC
static uint8_t frame[FRAME_BYTES];
static uint16_t values[FRAME_SAMPLES];
static volatile uint32_t pool_overflows;

static bool IRAM_ATTR on_conv_done(adc_continuous_handle_t h, const adc_continuous_evt_data_t *e,
				   void *arg)
{
	BaseType_t woken = pdFALSE;

	vTaskNotifyGiveFromISR(self, &woken);
	return woken == pdTRUE;
}

static bool IRAM_ATTR on_pool_ovf(adc_continuous_handle_t h, const adc_continuous_evt_data_t *e,
				  void *arg)
{
	pool_overflows++;
	return false;
}
#endif

#if CONFIG_PL_INPUT_GPIO
/*
 * The input's level straight from the GPIO input register: gpio_get_level() is in flash
 * (ESP-IDF puts it in IRAM only from v5.3 and only with CONFIG_GPIO_CTRL_FUNC_IN_IRAM), and
 * gpio_ll_get_level() is a plain inline that an unoptimised build may leave out of line.
 */
#if CONFIG_PL_INPUT_GPIO_NUM < 32
#define INPUT_LEVEL() ((int)((REG_READ(GPIO_IN_REG) >> CONFIG_PL_INPUT_GPIO_NUM) & 1))
#else
#define INPUT_LEVEL() ((int)((REG_READ(GPIO_IN1_REG) >> (CONFIG_PL_INPUT_GPIO_NUM - 32)) & 1))
#endif

/*
 * Each edge of the input, timestamped. In IRAM and installed with ESP_INTR_FLAG_IRAM, so it
 * runs while a flash write or erase (the outbox, ~45 ms per sector) has the cache off: before,
 * it waited for the cache, and both edges of a flash inside one erase made one interrupt - a
 * lost pulse, unflagged. It calls only IRAM code: esp_timer_get_time() (ESP-IDF's is
 * IRAM_ATTR), fw_ring_push() (FW_IRAM, tests/cli_fw_iram.sh checks it and this function),
 * vTaskNotifyGiveFromISR() (FreeRTOS is in IRAM unless FREERTOS_PLACE_FUNCTIONS_INTO_FLASH);
 * and touches only .bss (edges, edge_store, self). A full ring counts the edge in
 * edges.dropped, which fw_sampling_edges() turns into a gap.
 */
static void IRAM_ATTR gpio_edge_isr(void *arg)
{
	struct fw_edge e = {
		.t_us = esp_timer_get_time(),
		.level = INPUT_LEVEL(),
	};
	BaseType_t woken = pdFALSE;

	fw_ring_push(&edges, &e);
	vTaskNotifyGiveFromISR(self, &woken);
	portYIELD_FROM_ISR(woken);
}
#endif

/* The meter from the settings (NVS or Kconfig, fw_settings_get), the input from Kconfig. */
static void config_from_settings(struct fw_sampling_config *c)
{
	const struct fw_settings *st = fw_settings_get();
	const struct fw_sampling_meter m = {
		.imp_per_kwh = st->imp_per_kwh, .max_power_w = st->max_power_w,
		.interval_s = st->interval_s,
#if CONFIG_PL_METER_TYPE_DISC
		.meter_type = PL_METER_DISC,
#endif
	};

#if CONFIG_PL_INPUT_GPIO
	fw_sampling_config_default(c);
	c->meter.imp_per_kwh = m.imp_per_kwh;
	c->meter.interval_s = m.interval_s;
	c->digital = 1;
	c->edges.imp_per_kwh = m.imp_per_kwh;
	c->edges.max_power_w = m.max_power_w;
	c->edges.active_low = ACTIVE_LOW;
	c->edges.min_high_us = CONFIG_PL_INPUT_DEBOUNCE_US;
	c->edges.min_low_us = CONFIG_PL_INPUT_DEBOUNCE_US;
#else
	fw_sampling_config_adc(c, &m, CONFIG_PL_ADC_RATE_HZ, CONFIG_PL_ADC_BLOCK);
#if CONFIG_PL_LED_POLARITY_UP
	c->det.polarity = PL_POLARITY_UP;
#elif CONFIG_PL_LED_POLARITY_DOWN
	c->det.polarity = PL_POLARITY_DOWN;
#endif
#endif
}

#if CONFIG_PL_STATUS_LED_GPIO >= 0
static struct fw_led led;

static void led_pulse(int n)
{
	int level = fw_led_update(&led, n, esp_timer_get_time());

	if (level >= 0)
		gpio_set_level((gpio_num_t)CONFIG_PL_STATUS_LED_GPIO, (uint32_t)level);
}
#else
static void led_pulse(int n)
{
	(void)n; /* no status LED */
}
#endif

static void take_timebase(void)
{
	struct fw_timebase_msg m;

	while (fw_ring_pop(&g_timebase, &m) == 0) {
		fw_sampling_timebase(&smp, m.offset_us, esp_timer_get_time());
		ESP_LOGI(TAG, "time base %lu: records stamped from now on", (unsigned long)m.epoch);
	}
}

#if CONFIG_PL_INPUT_ADC
static adc_continuous_handle_t adc_start(void)
{
	adc_continuous_handle_t h = NULL;
	adc_continuous_handle_cfg_t hc = {
		.max_store_buf_size = POOL_BYTES,
		.conv_frame_size = FRAME_BYTES,
	};
	adc_digi_pattern_config_t pattern = {
		.atten = ADC_ATTEN,
		.channel = CONFIG_PL_ADC_CHANNEL,
		.unit = ADC_UNIT_1,
		.bit_width = SOC_ADC_DIGI_MAX_BITWIDTH,
	};
	adc_continuous_config_t cc = {
		.pattern_num = 1,
		.adc_pattern = &pattern,
		.sample_freq_hz = CONFIG_PL_ADC_RATE_HZ,
		.conv_mode = ADC_CONV_SINGLE_UNIT_1,
		.format = ADC_FORMAT,
	};
	adc_continuous_evt_cbs_t cbs = {
		.on_conv_done = on_conv_done,
		.on_pool_ovf = on_pool_ovf,
	};

	ESP_ERROR_CHECK(adc_continuous_new_handle(&hc, &h));
	ESP_ERROR_CHECK(adc_continuous_config(h, &cc));
	ESP_ERROR_CHECK(adc_continuous_register_event_callbacks(h, &cbs, NULL));
	ESP_ERROR_CHECK(adc_continuous_start(h));
	return h;
}

static void adc_frames(adc_continuous_handle_t h)
{
	uint32_t got = 0, seen_ovf = 0;

	while (adc_continuous_read(h, frame, FRAME_BYTES, &got, 0) == ESP_OK) {
		int64_t t = esp_timer_get_time();
		size_t n = 0;
		int pulses;

		for (uint32_t i = 0; i + SOC_ADC_DIGI_RESULT_BYTES <= got;
		     i += SOC_ADC_DIGI_RESULT_BYTES) {
			const adc_digi_output_data_t *p = (const void *)&frame[i];

			values[n++] = (uint16_t)ADC_VALUE(p);
		}
		if (pool_overflows != seen_ovf) {
			seen_ovf = pool_overflows;
			fw_sampling_gap(&smp);
		}
		pulses = fw_sampling_adc(&smp, values, n, t);
		led_pulse(pulses > 0 ? pulses : 0);
	}
}
#endif

void fw_sampling_task(void *arg)
{
	const struct fw_sampling_args *a = arg;
	struct fw_sampling_config cfg;

	self = xTaskGetCurrentTaskHandle();
	config_from_settings(&cfg);
	ESP_ERROR_CHECK(fw_sampling_init(&smp, &cfg, &g_records, a->boot) == 0 ? ESP_OK : ESP_FAIL);
	/* the register goes on from where the last saved interval left it */
	if (a->meter.boot != 0 && fw_sampling_set_register(&smp, a->meter.register_uwh) == 0)
		ESP_LOGI(TAG, "energy register restored: %.3f Wh",
			 (double)a->meter.register_uwh / 1e6);
	fw_ring_init(&edges, edge_store, 64, sizeof(edge_store[0]));
#if CONFIG_PL_STATUS_LED_GPIO >= 0
	gpio_reset_pin((gpio_num_t)CONFIG_PL_STATUS_LED_GPIO);
	gpio_set_direction((gpio_num_t)CONFIG_PL_STATUS_LED_GPIO, GPIO_MODE_OUTPUT);
#endif
	esp_task_wdt_add(NULL);

#if CONFIG_PL_INPUT_ADC
	adc_continuous_handle_t adc = adc_start();
	ESP_LOGI(TAG, "ADC1 channel %d, %d Hz in blocks of %d", CONFIG_PL_ADC_CHANNEL,
		 CONFIG_PL_ADC_RATE_HZ, CONFIG_PL_ADC_BLOCK);
#else
	gpio_config_t io = {
		.pin_bit_mask = 1ULL << CONFIG_PL_INPUT_GPIO_NUM,
		.mode = GPIO_MODE_INPUT,
		/* the rest level held by the internal pull (an S0 output's transistor only pulls
		 * one way): a floating input would make an interrupt of every bit of noise */
		.pull_up_en = ACTIVE_LOW ? GPIO_PULLUP_ENABLE : GPIO_PULLUP_DISABLE,
		.pull_down_en = ACTIVE_LOW ? GPIO_PULLDOWN_DISABLE : GPIO_PULLDOWN_ENABLE,
		.intr_type = GPIO_INTR_ANYEDGE,
	};
	ESP_ERROR_CHECK(gpio_config(&io));
	ESP_ERROR_CHECK(gpio_install_isr_service(ESP_INTR_FLAG_IRAM));
	ESP_ERROR_CHECK(gpio_isr_handler_add((gpio_num_t)CONFIG_PL_INPUT_GPIO_NUM, gpio_edge_isr, NULL));
	/* the level the input is in now, as the filter's starting state */
	fw_sampling_edge(&smp, gpio_get_level((gpio_num_t)CONFIG_PL_INPUT_GPIO_NUM),
			 esp_timer_get_time());
	ESP_LOGI(TAG, "GPIO %d edges, %s, debounce %d us", CONFIG_PL_INPUT_GPIO_NUM,
		 ACTIVE_LOW ? "active low" : "active high", CONFIG_PL_INPUT_DEBOUNCE_US);
#endif

	for (;;) {
		ulTaskNotifyTake(pdTRUE, pdMS_TO_TICKS(100));
		take_timebase();
#if CONFIG_PL_INPUT_ADC
		adc_frames(adc);
#else
		led_pulse(fw_sampling_edges(&smp, &edges)); /* a full ring: a gap */
#endif
		fw_sampling_tick(&smp, esp_timer_get_time());
		fw_console_sampling_tick(&smp); /* `register KWH`; the register for `status` */
		fw_sampling_share(&smp, &g_view); /* for MQTT's diag; written only on change */
		led_pulse(0);
		esp_task_wdt_reset();
	}
}
