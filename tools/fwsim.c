/* SPDX-License-Identifier: MIT */
/*
 * fwsim: the ESP32 firmware's logic (ports/esp32/main/logic) run on the host through two
 * boots, printing what the device prints on its serial console. The hardware is replaced by
 * fakes: the ADC by ports/esp32/host/adcsim.c (a 2.5 kW load on a 1000 imp/kWh meter), WiFi by
 * a script (the first association of the first boot fails), SNTP by a sync 4.2 s after boot,
 * the "pllog" partition by 256 KB of RAM under the same outbox as on the device
 * (fw_store_flashlog over pl_flashlog), InfluxDB by a transport that answers 204 except for a
 * 503 outage from 25 s into the first boot until 8 s into the second. The power fails 42 s into
 * the first boot: the record the outage kept waits on flash and goes out after the reboot, and
 * the energy register goes on from the value saved with the last interval. Used for the README
 * capture:
 *   build/fwsim
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "adcsim.h"
#include "fw_delivery.h"
#include "fw_ring.h"
#include "fw_sampling.h"
#include "fw_store.h"
#include "fw_store_flashlog.h"
#include "fw_time.h"

#define S INT64_C(1000000)
#define WALL_AT_SYNC (INT64_C(1736319597) * S + 250000) /* 2025-01-08T06:59:57.25Z */
#define FRAME 256
#define RATE 20000
#define DEVICE "esp32-hall"
#define T0 INT64_C(350000) /* the sampling task starts 350 ms after boot */

#define PART_SECTOR 4096
#define PART_SECTORS 64 /* "pllog": 256 KB at 0x210000 */

static int64_t mono;     /* the simulated esp_timer_get_time() */
static uint32_t boot;    /* the NVS boot counter */
static uint8_t part[PART_SECTORS * PART_SECTOR]; /* the partition, kept across the reboot */

static void logi(char lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#include <stdarg.h>
static void logi(char lvl, const char *fmt, ...)
{
	va_list ap;

	printf("%c (%" PRId64 ") powerlogger: ", lvl, mono / 1000);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static void iso(char *buf, size_t cap, int64_t us)
{
	time_t t = (time_t)(us / S);
	struct tm tm;

	tm = *gmtime(&t);
	strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int fake_influx(void *ctx, const char *body, size_t len, struct fw_http_result *res)
{
	(void)ctx;
	(void)body;
	(void)len;
	if ((boot == 12 && mono >= 25 * S) || (boot == 13 && mono < 8 * S)) {
		res->status = 503;
		res->retry_after_s = 5;
		snprintf(res->msg, sizeof(res->msg), "{\"code\":\"unavailable\",\"message\":\"request throttled\"}");
	} else {
		res->status = 204;
	}
	return 0;
}

/* ---- the "pllog" partition: NOR flash in RAM (program ANDs, erase sets 0xFF) ---- */

static int part_read(void *ctx, uint32_t addr, void *buf, size_t len)
{
	(void)ctx;
	memcpy(buf, part + addr, len);
	return 0;
}

static int part_program(void *ctx, uint32_t addr, const void *buf, size_t len)
{
	const uint8_t *b = buf;

	(void)ctx;
	for (size_t i = 0; i < len; i++)
		part[addr + i] &= b[i];
	return 0;
}

static int part_erase(void *ctx, uint32_t sector)
{
	(void)ctx;
	memset(part + (size_t)sector * PART_SECTOR, 0xFF, PART_SECTOR);
	return 0;
}

static void print_record(const struct fw_record *r)
{
	char t[32];
	unsigned f = r->rec.flags;

	if (r->stamped)
		iso(t, sizeof(t), r->rec.start_us);
	else
		snprintf(t, sizeof(t), "boot+%.3fs", (double)r->rec.start_us / 1e6);
	logi('I', "interval %s %" PRIu32 "s: %" PRIu32 " pulses, %.3f Wh, avg %.1f W, peak %.1f W, "
	     "register %.3f Wh%s%s%s%s",
	     t, r->rec.length_s, r->rec.pulses, (double)r->rec.energy_uwh / 1e6,
	     (double)r->rec.avg_mw / 1e3, (double)r->rec.peak_mw / 1e3,
	     (double)r->rec.register_uwh / 1e6, f & PL_Q_PARTIAL ? " [partial]" : "",
	     f & PL_Q_GAP ? " [gap]" : "", f & PL_Q_STEADY ? " [steady]" : "",
	     r->stamped ? "" : " (unstamped: kept until the clock is set)");
}

/* One boot, from reset until `until` us of monotonic time (the power fails there). */
static void run_boot(uint32_t n_boot, int64_t until, int wifi_fails)
{
	static const uint32_t watts[] = {2500, 2500, 900, 4200};
	static int64_t pulses[512];
	static struct fw_record ring_store[64];
	static struct fw_sampling smp;
	static struct fw_delivery dl;
	static struct fw_store_flashlog outbox;
	const struct pl_flash flash = {
		.sector_size = PART_SECTOR, .sector_count = PART_SECTORS, .write_align = 4,
		.read = part_read, .program = part_program, .erase = part_erase,
	};
	struct fw_sampling_config scfg;
	struct fw_delivery_config dcfg = {.device = DEVICE, .precision = PL_PREC_S, .seed = n_boot};
	struct fw_meter_state meter;
	struct fw_store store;
	struct fw_ring ring;
	struct fw_time clock;
	struct fw_adcsim adc;
	uint16_t raw[FRAME];
	uint64_t k = 0;
	size_t np;
	int net_up = 0, synced = 0, wifi_tries = 0;
	int64_t next_wifi = 400000, next_health = 30 * S;

	boot = n_boot;
	mono = 312000;
	np = fw_adcsim_pulse_train(pulses, 512, 1500000, until, 1000, watts, 4, 15, 20);
	fw_adcsim_init(&adc, 2025 + n_boot, pulses, np);
	fw_ring_init(&ring, ring_store, 64, sizeof(struct fw_record));
	fw_time_init(&clock, boot);
	fw_sampling_config_default(&scfg);
	scfg.det.imp_per_kwh = scfg.meter.imp_per_kwh = 1000;
	scfg.det.max_power_w = 17250;
	scfg.meter.interval_s = 20;
	fw_sampling_init(&smp, &scfg, &ring, boot);

	logi('I', "PowerLogger firmware (host simulation of the ESP32 build), boot %" PRIu32, boot);
	logi('I', "last reset: %s", boot == 12 ? "power-on (ESP_RST_POWERON)" :
	     "brownout (power failing) (ESP_RST_BROWNOUT)");
	logi('I', "outbox \"pllog\": %d KB at 0x%x, %d sectors of %d B", PART_SECTORS * PART_SECTOR /
	     1024, 0x210000, PART_SECTORS, PART_SECTOR);
	if (fw_store_flashlog_open(&outbox, &flash, &store) != 0 ||
	    fw_store_restore(&store, &clock, &meter) != 0) {
		logi('E', "outbox: cannot open");
		return;
	}
	logi('I', "flash log: %s, %zu record(s) waiting", outbox.log.formatted ?
	     "formatted (blank partition)" : "mounted", fw_store_count(&store));
	if (meter.boot != 0) {
		fw_sampling_set_register(&smp, meter.register_uwh);
		logi('I', "energy register restored: %.3f Wh (saved in boot %" PRIu32 "); anchors of "
		     "%" PRIu32 " earlier boot(s)", (double)meter.register_uwh / 1e6, meter.boot,
		     clock.nold);
	}
	fw_delivery_init(&dl, &dcfg, &store, &clock, fake_influx, NULL);
	logi('I', "input: ADC1 channel 6, continuous %d Hz in blocks of %" PRIu32 " -> %" PRIu32
	     " Hz; meter 1000 imp/kWh, max 17250 W, interval 20 s", RATE, scfg.block,
	     RATE / scfg.block);
	logi('I', "tasks: sampling on core 1, network on core 0; task watchdog 10 s");
	logi('I', "wifi: connecting to \"home\"");

	while (mono < until) {
		struct fw_record r;
		struct fw_delivery_event ev;
		int64_t t_last;

		/* sampling task: one DMA frame */
		for (int i = 0; i < FRAME; i++, k++)
			raw[i] = fw_adcsim_read(&adc, T0 + (int64_t)(k * 1000000 / RATE));
		t_last = T0 + (int64_t)((k - 1) * 1000000 / RATE);
		mono = t_last + 700;
		fw_sampling_adc(&smp, raw, FRAME, mono);
		if (synced == 1) {
			fw_sampling_timebase(&smp, clock.offset_us, mono);
			synced = 2;
		}
		fw_sampling_tick(&smp, mono);

		/* network task, every ~100 ms */
		if (k % (RATE / 10) >= FRAME)
			continue;
		while (fw_ring_peek(&ring, &r) == 0 && fw_store_put_record(&store, &r) == 0) {
			fw_ring_pop(&ring, &r);
			print_record(&r);
		}
		if (!net_up && mono >= next_wifi) {
			if (wifi_tries++ < wifi_fails) {
				logi('W', "wifi: disconnected (reason 201 NO_AP_FOUND), retry in 1.0 s");
				next_wifi = mono + 1 * S;
			} else {
				logi('I', "wifi: connected to \"home\", channel 6, RSSI -61 dBm");
				logi('I', "wifi: got IP 192.168.1.57");
				net_up = 1;
			}
		}
		if (net_up && !synced && mono >= 4200000) {
			char t[32];
			int64_t wall = WALL_AT_SYNC + (boot - 12) * 50 * S;

			fw_time_sync(&clock, mono, wall);
			fw_store_anchor(&store, boot, clock.anchor_us);
			iso(t, sizeof(t), wall);
			logi('I', "sntp: time set to %s (offset anchored for boot %" PRIu32 ")", t, boot);
			synced = 1;
		}
		while (fw_delivery_step(&dl, mono / 1000, net_up, &ev) == 1) {
			if (ev.action == PL_SINK_OK)
				logi('I', "influx: %" PRIu32 " record(s) written (HTTP %d), %zu waiting",
				     ev.lines, ev.status, fw_store_count(&store));
			else if (ev.action == PL_SINK_RETRY)
				logi('W', "influx: HTTP %d %s: %" PRIu32 " record(s) kept, retry in %.1f s",
				     ev.status, ev.msg, ev.lines, ev.delay_ms / 1e3);
			else
				logi('W', "influx: %s: %s", pl_sink_action_name(ev.action), ev.msg);
		}
		if (mono >= next_health) {
			logi('I', "health: static RAM sampling %zu B, delivery %zu B, ring %zu B, outbox "
			     "%zu B; records %" PRIu64 ", pulses %" PRIu64 ", power %.1f W, outbox %zu",
			     sizeof(smp), sizeof(dl), sizeof(ring_store), sizeof(outbox),
			     smp.stats.records, smp.stats.pulses, (double)smp.stats.power_mw / 1e3,
			     fw_store_count(&store));
			next_health += 30 * S;
		}
	}
	logi('I', "%s after %.0f s: %zu record(s) in the outbox, %" PRIu32 " delivered, %" PRIu32
	     " retries, %" PRIu32 " quarantined", boot == 12 ? "power fails" : "simulation ends",
	     (double)until / 1e6, fw_store_count(&store), dl.delivered, dl.retries, dl.quarantined);
}

int main(void)
{
	memset(part, 0xFF, sizeof(part)); /* a new device: the partition is erased */
	run_boot(12, 42 * S, 1);
	putchar('\n');
	run_boot(13, 30 * S, 0);
	return 0;
}
