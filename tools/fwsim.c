/*
 * fwsim: the ESP32 firmware's logic (ports/esp32/main/logic) run on the host for a simulated
 * minute, printing what the device prints on its serial console. The hardware is replaced by
 * fakes: the ADC by ports/esp32/host/adcsim.c (a 2.5 kW load on a 1000 imp/kWh meter), WiFi by
 * a script (the first association fails), SNTP by a sync 4.2 s after boot, InfluxDB by a
 * transport that answers 204 except for a 503 outage from 25 s to 35 s. The flash log is the
 * RAM store here, as on the device until pl_flashlog is wired. Used for the README capture:
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
#include "fw_time.h"

#define S INT64_C(1000000)
#define WALL_AT_SYNC (INT64_C(1736319597) * S + 250000) /* 2025-01-08T06:59:57.25Z */
#define FRAME 256
#define RATE 20000
#define DEVICE "esp32-hall"
#define T0 INT64_C(350000) /* the sampling task starts 350 ms after boot */

static int64_t mono; /* the simulated esp_timer_get_time() */

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
	if (mono >= 25 * S && mono < 35 * S) {
		res->status = 503;
		res->retry_after_s = 5;
		snprintf(res->msg, sizeof(res->msg), "{\"code\":\"unavailable\",\"message\":\"request throttled\"}");
	} else {
		res->status = 204;
	}
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

int main(void)
{
	static const uint32_t watts[] = {2500, 2500, 900, 4200};
	static int64_t pulses[512];
	static struct fw_record ring_store[64], outbox[256];
	static struct fw_sampling smp;
	static struct fw_delivery dl;
	struct fw_sampling_config scfg;
	struct fw_delivery_config dcfg = {.device = DEVICE, .precision = PL_PREC_S, .seed = 1};
	struct fw_store_ram ram;
	struct fw_store store;
	struct fw_ring ring;
	struct fw_time clock;
	struct fw_adcsim adc;
	uint16_t raw[FRAME];
	uint64_t k = 0;
	size_t np;
	int net_up = 0, synced = 0, wifi_tries = 0;
	int64_t next_wifi = 400000, next_health = 30 * S;
	const uint32_t boot = 12;

	np = fw_adcsim_pulse_train(pulses, 512, 1500000, 60 * S, 1000, watts, 4, 15, 20);
	fw_adcsim_init(&adc, 2025, pulses, np);
	fw_ring_init(&ring, ring_store, 64, sizeof(struct fw_record));
	fw_store_ram_init(&ram, outbox, 256, &store);
	fw_time_init(&clock, boot);
	fw_sampling_config_default(&scfg);
	scfg.det.imp_per_kwh = scfg.meter.imp_per_kwh = 1000;
	scfg.det.max_power_w = 17250;
	scfg.meter.interval_s = 20;
	fw_sampling_init(&smp, &scfg, &ring, boot);
	fw_delivery_init(&dl, &dcfg, &store, &clock, fake_influx, NULL);

	mono = 312000;
	logi('I', "PowerLogger firmware (host simulation of the ESP32 build), boot %" PRIu32, boot);
	logi('I', "last reset: power-on (ESP_RST_POWERON)");
	logi('I', "outbox \"pllog\": 256 KB at 0x%x; flash log not wired yet: records kept in "
	     "RAM (lost at reboot), 0 waiting", 0x210000);
	logi('I', "input: ADC1 channel 6, continuous %d Hz in blocks of %" PRIu32 " -> %" PRIu32
	     " Hz; meter 1000 imp/kWh, max 17250 W, interval 20 s", RATE, scfg.block,
	     RATE / scfg.block);
	logi('I', "tasks: sampling on core 1, network on core 0; task watchdog 10 s");
	logi('I', "wifi: connecting to \"home\"");

	while (mono < 60 * S) {
		struct fw_record r;
		struct fw_delivery_event ev;
		int64_t t_last;
		int pc;

		/* sampling task: one DMA frame */
		for (int i = 0; i < FRAME; i++, k++)
			raw[i] = fw_adcsim_read(&adc, T0 + (int64_t)(k * 1000000 / RATE));
		t_last = T0 + (int64_t)((k - 1) * 1000000 / RATE);
		mono = t_last + 700;
		pc = fw_sampling_adc(&smp, raw, FRAME, mono);
		(void)pc;
		if (synced == 1) {
			int64_t now_wall;

			fw_time_now(&clock, mono, &now_wall);
			fw_sampling_timebase(&smp, clock.offset_us, mono);
			synced = 2;
		}
		fw_sampling_tick(&smp, mono);

		/* network task, every ~100 ms */
		if (k % (RATE / 10) >= FRAME)
			continue;
		while (fw_ring_pop(&ring, &r) == 0) {
			print_record(&r);
			fw_store_append(&store, &r);
		}
		if (!net_up && mono >= next_wifi) {
			if (wifi_tries++ == 0) {
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

			fw_time_sync(&clock, mono, WALL_AT_SYNC);
			fw_store_anchor(&store, boot, clock.anchor_us);
			iso(t, sizeof(t), WALL_AT_SYNC);
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
			logi('I', "health: static RAM sampling %zu B, delivery %zu B, ring %zu B; "
			     "records %" PRIu64 ", pulses %" PRIu64 ", power %.1f W, outbox %zu",
			     sizeof(smp), sizeof(dl), sizeof(ring_store), smp.stats.records,
			     smp.stats.pulses, (double)smp.stats.power_mw / 1e3, fw_store_count(&store));
			next_health += 30 * S;
		}
	}
	logi('I', "simulation ends after 60 s: %zu record(s) in the outbox, %" PRIu32
	     " delivered, %" PRIu32 " retries, %" PRIu32 " quarantined",
	     fw_store_count(&store), dl.delivered, dl.retries, dl.quarantined);
	return 0;
}
