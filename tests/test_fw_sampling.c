/* SPDX-License-Identifier: MIT */
/*
 * The sampling task's step (ports/esp32/main/logic/fw_sampling.c) on a simulated ESP32 ADC
 * (ports/esp32/host/adcsim.c: 20 kHz raw with noise sigma 30 LSB, a dead zone, WiFi outliers,
 * an ADC running 2 % fast and DMA frames read with jitter; WiFi bursts of 50-250 us - a
 * burst of a millisecond or more at low load is still taken for a pulse by the core's detector): every interval record holds exactly
 * the pulses whose leading edges lie in it, through a change of time base at SNTP sync (the
 * register carried over exactly); GPIO edges with comparator chatter likewise. The detector's
 * view for MQTT's diag goes to the network task through a fw_seqpair, written only when it
 * changed and read back whole.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "adcsim.h"
#include "fw_sampling.h"
#include "powerlogger/common.h"
#include "powerlogger/meter_type.h"

#define S INT64_C(1000000)
#define WALL0 (INT64_C(1735689600) * S)
#define FRAME 256

static int64_t pulses[4096];
static struct fw_record ring_store[256];

static unsigned expected(const int64_t *p, size_t n, int64_t from, int64_t to)
{
	unsigned k = 0;

	for (size_t i = 0; i < n; i++)
		k += p[i] >= from && p[i] < to;
	return k;
}

static void test_adc_exact_per_interval_through_sync(void **state)
{
	static const uint32_t watts[] = {800, 3000, 250, 6000, 1500, 12000};
	struct fw_sampling_config cfg;
	static struct fw_sampling s;
	struct fw_adcsim adc;
	struct fw_ring ring;
	struct fw_record r;
	uint16_t raw[FRAME];
	const double true_rate = 20400.0; /* the ADC runs 2 % fast */
	const int64_t sync_at = 70 * S, offset = WALL0 + 7 * S + 123456 - sync_at;
	size_t np;
	uint64_t k = 0, seed = 99;
	unsigned nrec = 0, total = 0, unstamped = 0;
	int64_t last_end = INT64_MIN, end_mono = 0, sync_h = INT64_MAX;
	int synced = 0;

	(void)state;
	np = fw_adcsim_pulse_train(pulses, 4096, 3 * S, 178 * S, 1000, watts, 6, 25, 20);
	assert_true(np > 150);
	/* records after the sync are aligned in wall time: keep edges off those boundaries too */
	for (size_t i = 0; i < np; i++) {
		int64_t w = pulses[i] + offset, rem = ((w % (20 * S)) + 20 * S) % (20 * S);

		if (rem < 30000 || rem > 20 * S - 30000)
			pulses[i] += 70000;
	}
	fw_adcsim_init(&adc, 7, pulses, np);
	assert_int_equal(fw_ring_init(&ring, ring_store, 256, sizeof(struct fw_record)), 0);
	fw_sampling_config_default(&cfg);
	cfg.det.imp_per_kwh = 1000;
	cfg.det.max_power_w = 20000;
	cfg.meter.imp_per_kwh = 1000;
	cfg.meter.interval_s = 20;
	assert_int_equal(fw_sampling_init(&s, &cfg, &ring, 3), 0);

	while (end_mono < 180 * S) {
		int64_t t_last;

		for (int i = 0; i < FRAME; i++, k++)
			raw[i] = fw_adcsim_read(&adc, (int64_t)((double)k * 1e6 / true_rate));
		t_last = (int64_t)((double)(k - 1) * 1e6 / true_rate);
		seed = seed * 6364136223846793005u + 1442695040888963407u;
		end_mono = t_last + (int64_t)((seed >> 33) % 3000); /* read 0-3 ms late */
		assert_true(fw_sampling_adc(&s, raw, FRAME, end_mono) >= 0);
		if (!synced && end_mono >= sync_at) {
			assert_int_equal(fw_sampling_timebase(&s, offset, end_mono), 0);
			sync_h = s.ch.meter.t_last - offset; /* the new base starts at the horizon */
			synced = 1;
		}
		fw_sampling_tick(&s, end_mono);
		while (fw_ring_pop(&ring, &r) == 0) {
			int64_t from = r.rec.start_us, to = from + 20 * S;

			if (r.stamped) {
				from -= offset;
				to -= offset;
				assert_true(r.rec.start_us % (20 * S) == 0);
			} else {
				unstamped++;
				assert_int_equal(r.boot, 3);
			}
			/* a partial interval covers from its observed start or up to the sync */
			if (from < last_end)
				from = last_end;
			if (!r.stamped && synced && to > sync_h) {
				assert_true(r.rec.flags & PL_Q_PARTIAL);
				to = sync_h;
			}
			assert_int_equal(r.rec.pulses, expected(pulses, np, from, to));
			assert_false(r.rec.flags & PL_Q_GAP);
			total += r.rec.pulses;
			assert_true(r.rec.register_uwh == (int64_t)total * 1000000);
			last_end = to;
			nrec++;
		}
	}
	assert_true(unstamped >= 3);
	assert_true(nrec >= 8);
	assert_true(adc.outliers > 300);
	assert_int_equal(total, expected(pulses, np, 0, last_end));
	printf("# %u records, %u pulses, %u unstamped before the sync, %llu outlier samples\n",
	       nrec, total, unstamped, (unsigned long long)adc.outliers);
}

/*
 * Flash sector erases (the outbox) stop both cores for tens of ms; the ADC driver keeps the
 * frames in its pool and the sampling task reads them together afterwards. That is latency,
 * not lost samples: no gap, every interval exact. Before, a frame read more than 50 ms after
 * its end was taken for lost samples - a gap flagged and the sample clock jumped at every
 * slow erase. Samples really lost (a stretch the pool could not hold, 400 ms here) still
 * flag the interval.
 */
static void test_adc_frames_late_after_flash_erase(void **state)
{
	static const uint32_t watts[] = {2500, 900, 4000};
	struct fw_sampling_config cfg;
	static struct fw_sampling s;
	struct fw_adcsim adc;
	struct fw_ring ring;
	struct fw_record r;
	uint16_t raw[FRAME];
	size_t np;
	uint64_t k = 0, seed = 5;
	int64_t t_last = 0, stall_end = 0, next_stall = 5 * S, lost_from = 104300000;
	unsigned stalls = 0, nrec = 0, flagged = 0;
	int lost = 0;

	(void)state;
	np = fw_adcsim_pulse_train(pulses, 4096, 2 * S, 118 * S, 1000, watts, 3, 30, 10);
	fw_adcsim_init(&adc, 11, pulses, np);
	assert_int_equal(fw_ring_init(&ring, ring_store, 256, sizeof(struct fw_record)), 0);
	/* as the sampling tasks set it up: the meter's settings, the ADC's rate and block */
	fw_sampling_config_adc(&cfg, &(struct fw_sampling_meter){1000, 20000, 10, PL_METER_LED},
			       20000, 4);
	assert_int_equal(cfg.pool_us, 102400); /* 8 frames of 256 at 20 kHz */
	assert_int_equal(cfg.det.max_power_w, 20000);
	assert_int_equal(cfg.meter.interval_s, 10);
	assert_int_equal(fw_sampling_init(&s, &cfg, &ring, 1), 0);
	while (t_last < 120 * S) {
		int64_t read_at;

		for (int i = 0; i < FRAME; i++, k++)
			raw[i] = fw_adcsim_read(&adc, (int64_t)((double)k * 1e6 / 20000.0));
		t_last = (int64_t)((double)(k - 1) * 1e6 / 20000.0);
		if (!lost && t_last >= lost_from) {
			/* 400 ms of samples the pool could not hold: never delivered */
			k += 8000;
			lost = 1;
			continue;
		}
		if (t_last >= next_stall) {
			/* an erase of 60 ms: the frames that end in it wait in the pool */
			stall_end = next_stall + 60000;
			next_stall += 7 * S;
			stalls++;
		}
		seed = seed * 6364136223846793005u + 1442695040888963407u;
		read_at = t_last + (int64_t)((seed >> 33) % 3000);
		if (read_at < stall_end)
			read_at = stall_end + (int64_t)((seed >> 40) % 500);
		assert_true(fw_sampling_adc(&s, raw, FRAME, read_at) >= 0);
		fw_sampling_tick(&s, read_at);
		while (fw_ring_pop(&ring, &r) == 0) {
			int64_t from = r.rec.start_us, to = from + 10 * S;

			nrec++;
			if (from <= lost_from && lost_from < to) {
				assert_true(r.rec.flags & PL_Q_GAP);
				flagged++;
				continue;
			}
			assert_false(r.rec.flags & PL_Q_GAP);
			assert_int_equal(r.rec.pulses, expected(pulses, np, from, to));
		}
	}
	assert_true(stalls >= 15);
	assert_true(nrec >= 10);
	assert_int_equal(flagged, 1);
}

/*
 * A Ferraris disc (Kconfig PL_METER_TYPE_DISC): the detector takes dips up to 10 s, and an
 * ADC at 20 kHz averaged in blocks of 64 (312.5 Hz to the detector) counts every revolution:
 * smooth dips (raised cosine) of 0.6-2.4 s, one every 9-21 s, the reading rising by 1500 LSB
 * over the mark, noise of +-40 LSB. The LED type's 400 ms limit would take each for a steady
 * state; the type leaves everything else as the LED's.
 */
static void test_disc_meter(void **state)
{
	struct fw_sampling_config cfg, led;
	static struct fw_sampling s;
	struct fw_ring ring;
	struct fw_record r;
	static uint16_t raw[FRAME];
	int64_t centre[16], half[16];
	uint64_t k = 0, seed = 7;
	unsigned nd = 0, i, got = 0, want = 0, nrec = 0;
	int64_t t = 0;

	(void)state;
	for (int64_t c = 6 * S; nd < 16 && c < 200 * S; nd++) {
		centre[nd] = c;
		half[nd] = (int64_t)(300000 + 300000 * (nd % 4)); /* 0.6 .. 2.4 s */
		c += 9 * S + (int64_t)(nd % 5) * 3 * S;
	}
	fw_sampling_config_adc(&led, &(struct fw_sampling_meter){75, 17000, 10, PL_METER_LED},
			       20000, 64);
	fw_sampling_config_adc(&cfg, &(struct fw_sampling_meter){75, 17000, 10, PL_METER_DISC},
			       20000, 64);
	assert_int_equal(led.det.max_width_us, 0); /* the detector's default, 400 ms */
	assert_int_equal(cfg.det.max_width_us, PL_DISC_MAX_WIDTH_US);
	led.det.max_width_us = cfg.det.max_width_us;
	assert_memory_equal(&led, &cfg, sizeof(cfg)); /* nothing else differs */
	assert_int_equal(fw_ring_init(&ring, ring_store, 256, sizeof(struct fw_record)), 0);
	assert_int_equal(fw_sampling_init(&s, &cfg, &ring, 1), 0);
	while (t < centre[nd - 1] + 15 * S) {
		for (int j = 0; j < FRAME; j++, k++) {
			double v = 2000.0;

			t = (int64_t)k * 50; /* 20 kHz */
			for (i = 0; i < nd; i++) {
				int64_t d = t - centre[i];

				if (d > -half[i] && d < half[i])
					v += 750.0 * (1.0 + cos(3.14159265358979 * (double)d /
								(double)half[i]));
			}
			seed = seed * 6364136223846793005u + 1442695040888963407u;
			v += (double)((seed >> 33) % 81) - 40.0;
			raw[j] = (uint16_t)v;
		}
		assert_true(fw_sampling_adc(&s, raw, FRAME, t) >= 0);
		fw_sampling_tick(&s, t);
		while (fw_ring_pop(&ring, &r) == 0) {
			nrec++;
			got += r.rec.pulses;
			for (i = 0; i < nd; i++)
				want += centre[i] - half[i] / 2 >= r.rec.start_us &&
					centre[i] - half[i] / 2 < r.rec.start_us + 10 * S;
		}
	}
	assert_true(nrec >= 15);
	assert_true(want >= 12);
	assert_int_equal(got, want);
}

static void test_gpio_edges_with_chatter(void **state)
{
	struct fw_sampling_config cfg;
	static struct fw_sampling s;
	struct fw_ring ring;
	struct fw_record r;
	int64_t t = 1 * S;
	unsigned got = 0, want = 0;

	(void)state;
	assert_int_equal(fw_ring_init(&ring, ring_store, 256, sizeof(struct fw_record)), 0);
	fw_sampling_config_default(&cfg);
	cfg.digital = 1;
	cfg.edges.active_low = 1; /* an LM393 module pulls low while the LED is lit */
	cfg.edges.imp_per_kwh = 1000;
	cfg.edges.max_power_w = 20000;
	cfg.meter.interval_s = 10;
	assert_int_equal(fw_sampling_init(&s, &cfg, &ring, 1), 0);
	assert_int_equal(fw_sampling_edge(&s, 1, t), 0); /* idle high */
	for (int i = 0; i < 60; i++) {
		t += 900000 + (i % 7) * 50000;
		if (t % (10 * S) < 50000 || t % (10 * S) > 10 * S - 50000)
			t += 100000;
		/* the comparator chatters at both edges of a 10 ms flash */
		fw_sampling_edge(&s, 0, t);
		fw_sampling_edge(&s, 1, t + 200);
		fw_sampling_edge(&s, 0, t + 500);
		fw_sampling_edge(&s, 1, t + 10000);
		fw_sampling_edge(&s, 0, t + 10300);
		fw_sampling_edge(&s, 1, t + 10600);
		want++;
		fw_sampling_tick(&s, t + 20000);
	}
	fw_sampling_tick(&s, t + 30 * S);
	while (fw_ring_pop(&ring, &r) == 0)
		got += r.rec.pulses;
	assert_int_equal(got, want);
	assert_int_equal(s.stats.rejected, 0);
}

static void push_edge(struct fw_ring *edges, int level, int64_t t)
{
	struct fw_edge e = {.t_us = t, .level = level};

	fw_ring_push(edges, &e); /* a full ring refuses it and counts it, as in the interrupt */
}

/* Edges the GPIO interrupt could not push (its ring full) flag the interval as a gap; an
 * interval without lost edges is not flagged, and a loss is flagged once. */
static void test_lost_edges_flag_a_gap(void **state)
{
	struct fw_sampling_config cfg;
	static struct fw_sampling s;
	struct fw_edge edge_store[4];
	struct fw_ring ring, edges;
	struct fw_record r;
	int seen_first = 0, seen_second = 0, seen_clean = 0;

	(void)state;
	assert_int_equal(fw_ring_init(&ring, ring_store, 256, sizeof(struct fw_record)), 0);
	assert_int_equal(fw_ring_init(&edges, edge_store, 4, sizeof(struct fw_edge)), 0);
	fw_sampling_config_default(&cfg);
	cfg.digital = 1;
	cfg.edges.active_low = 1;
	cfg.edges.imp_per_kwh = 1000;
	cfg.edges.max_power_w = 20000;
	cfg.edges.min_high_us = 2000;
	cfg.edges.min_low_us = 2000;
	cfg.meter.interval_s = 10;
	assert_int_equal(fw_sampling_init(&s, &cfg, &ring, 1), 0);
	push_edge(&edges, 1, 1 * S);                       /* idle high */
	push_edge(&edges, 0, 2 * S);                       /* a 20 ms flash */
	push_edge(&edges, 1, 2 * S + 20000);
	assert_int_equal(fw_sampling_edges(&s, &edges), 0);
	fw_sampling_tick(&s, 3 * S);
	/* 12 s on: six edges into a ring of four, nobody draining it */
	for (int i = 0; i < 3; i++) {
		push_edge(&edges, 0, 12 * S + i * S);
		push_edge(&edges, 1, 12 * S + i * S + 20000);
	}
	assert_int_equal(atomic_load(&edges.dropped), 2);
	fw_sampling_edges(&s, &edges);
	assert_int_equal(s.stats.gaps, 1);
	fw_sampling_edges(&s, &edges);                     /* nothing new lost */
	fw_sampling_tick(&s, 40 * S);
	assert_int_equal(s.stats.gaps, 1);
	/* and a clean interval later: not flagged */
	push_edge(&edges, 0, 42 * S);
	push_edge(&edges, 1, 42 * S + 20000);
	assert_int_equal(fw_sampling_edges(&s, &edges), 0);
	fw_sampling_tick(&s, 43 * S);
	assert_int_equal(s.stats.gaps, 1);
	fw_sampling_tick(&s, 60 * S);
	while (fw_ring_pop(&ring, &r) == 0) {
		if (r.rec.start_us == 0) {
			/* the loss is only known to be after 2.02 s: this one may hold it too */
			seen_first = 1;
			assert_int_equal(r.rec.pulses, 1);
		} else if (r.rec.start_us == 10 * S) {
			seen_second = 1;
			assert_true(r.rec.flags & PL_Q_GAP);
		} else if (r.rec.start_us == 40 * S) {
			seen_clean = 1;
			assert_false(r.rec.flags & PL_Q_GAP);
			assert_int_equal(r.rec.pulses, 1);
		}
	}
	assert_true(seen_first && seen_second && seen_clean);
}

/*
 * The detector's view for P/M/diag, from the sampling task's fw_sampling_share to the network
 * task's fw_sampling_view_read: the state learned on the simulated ADC, amplitude and noise in
 * ADC counts, written only when something changed, read back as written; nothing before the
 * first share; a read during a write is refused, never torn.
 */
static void test_view_shared_with_the_network_task(void **state)
{
	static const uint32_t watts[] = {2000, 5000};
	struct fw_sampling_config cfg;
	static struct fw_sampling s;
	struct fw_adcsim adc;
	struct fw_ring ring;
	struct fw_record r;
	struct fw_seqpair pair;
	struct fw_sampling_view v, now;
	uint16_t raw[FRAME];
	uint32_t ver = 0, ver2 = 0;
	unsigned frames = 0, writes = 0, pulsing = 0;
	uint64_t k = 0;
	int64_t t = 0;
	size_t np;

	(void)state;
	fw_seqpair_init(&pair);
	assert_int_equal(fw_sampling_view_read(&pair, &v, &ver), -PL_ENOENT);
	np = fw_adcsim_pulse_train(pulses, 4096, 2 * S, 40 * S, 1000, watts, 2, 25, 20);
	assert_true(np > 20);
	fw_adcsim_init(&adc, 11, pulses, np);
	assert_int_equal(fw_ring_init(&ring, ring_store, 256, sizeof(struct fw_record)), 0);
	fw_sampling_config_default(&cfg);
	cfg.det.imp_per_kwh = 1000;
	cfg.meter.imp_per_kwh = 1000;
	assert_int_equal(fw_sampling_init(&s, &cfg, &ring, 1), 0);
	while (t < 40 * S) {
		for (int i = 0; i < FRAME; i++, k++)
			raw[i] = fw_adcsim_read(&adc, (int64_t)k * 50);
		t = (int64_t)(k - 1) * 50;
		assert_true(fw_sampling_adc(&s, raw, FRAME, t) >= 0);
		fw_sampling_tick(&s, t);
		while (fw_ring_pop(&ring, &r) == 0)
			;
		writes += (unsigned)fw_sampling_share(&s, &pair);
		frames++;
		/* what the network task reads is what the sampling task sees now */
		assert_int_equal(fw_sampling_view_read(&pair, &v, &ver), 0);
		fw_sampling_get_view(&s, &now);
		assert_int_equal(v.state, now.state);
		assert_int_equal(v.amplitude, now.amplitude);
		assert_int_equal(v.noise, now.noise);
		assert_int_equal(v.rejected, now.rejected);
		assert_int_equal(ver, writes);
		pulsing += v.state == PL_DET_PULSING;
	}
	/* the detector learned the signal: pulses well above the noise (block-averaged counts) */
	assert_true(pulsing > 0);
	assert_true(v.noise > 0);
	assert_true(v.amplitude > 4 * v.noise);
	assert_string_equal(fw_sampling_view_state_name(&v), pl_detector_state_name(v.state));
	/* written on change only: far fewer writes than frames; nothing new, nothing written */
	assert_true(writes >= 2 && writes < frames);
	assert_int_equal(fw_sampling_share(&s, &pair), 0);
	assert_int_equal(fw_sampling_view_read(&pair, &v, &ver2), 0);
	assert_int_equal(ver2, ver);
	/* a read that meets a write in progress is refused (-PL_EBUSY), not half old, half new */
	fw_seqpair_write_begin(&pair);
	fw_seqpair_write_store(&pair, 0, 0);
	assert_int_equal(fw_sampling_view_read(&pair, &v, NULL), -PL_EBUSY);
	fw_seqpair_write_end(&pair);
	assert_int_equal(fw_sampling_view_read(&pair, &v, NULL), -PL_ENOENT); /* (0, 0) */
	printf("# view: %u writes in %u frames, amplitude %d, noise %d\n", writes, frames,
	       (int)now.amplitude, (int)now.noise);
}

/* The GPIO path's view: "edges", amplitude and noise unknown (-1); a large rejected count. */
static void test_view_edges(void **state)
{
	struct fw_sampling_config cfg;
	static struct fw_sampling s;
	struct fw_ring ring;
	struct fw_seqpair pair;
	struct fw_sampling_view v;

	(void)state;
	fw_seqpair_init(&pair);
	assert_int_equal(fw_ring_init(&ring, ring_store, 256, sizeof(struct fw_record)), 0);
	fw_sampling_config_default(&cfg);
	cfg.digital = 1;
	assert_int_equal(fw_sampling_init(&s, &cfg, &ring, 1), 0);
	assert_int_equal(fw_sampling_share(&s, &pair), 1);
	assert_int_equal(fw_sampling_view_read(&pair, &v, NULL), 0);
	assert_int_equal(v.state, FW_SAMPLING_VIEW_EDGES);
	assert_string_equal(fw_sampling_view_state_name(&v), "edges");
	assert_int_equal(v.amplitude, -1);
	assert_int_equal(v.noise, -1);
	assert_int_equal(v.rejected, 0);
	s.ch.n_rejected = (UINT64_C(1) << 56) - 3;
	assert_int_equal(fw_sampling_share(&s, &pair), 1);
	assert_int_equal(fw_sampling_view_read(&pair, &v, NULL), 0);
	assert_true(v.rejected == (UINT64_C(1) << 56) - 3);
	assert_int_equal(v.state, FW_SAMPLING_VIEW_EDGES);
	assert_int_equal(v.amplitude, -1);
}

static void test_ring_full_keeps_records(void **state)
{
	struct fw_sampling_config cfg;
	static struct fw_sampling s;
	struct fw_record small[2], r;
	struct fw_ring ring;
	unsigned n = 0;
	int64_t prev = INT64_MIN;

	(void)state;
	assert_int_equal(fw_ring_init(&ring, small, 2, sizeof(struct fw_record)), 0);
	fw_sampling_config_default(&cfg);
	cfg.digital = 1;
	cfg.meter.interval_s = 1;
	assert_int_equal(fw_sampling_init(&s, &cfg, &ring, 1), 0);
	/* 30 s pass while nobody drains the ring: records wait, the meter holds back */
	for (int64_t t = 0; t <= 30 * S; t += 100000)
		fw_sampling_tick(&s, t);
	assert_int_equal(fw_ring_count(&ring), 2);
	for (;;) {
		if (fw_ring_pop(&ring, &r) != 0) {
			fw_sampling_tick(&s, 30 * S);
			if (fw_ring_pop(&ring, &r) != 0)
				break;
		}
		assert_true(prev == INT64_MIN || r.rec.start_us == prev + S);
		prev = r.rec.start_us;
		n++;
	}
	assert_true(n >= 29); /* every second from the start, none lost */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_adc_exact_per_interval_through_sync),
		cmocka_unit_test(test_adc_frames_late_after_flash_erase),
		cmocka_unit_test(test_gpio_edges_with_chatter),
		cmocka_unit_test(test_ring_full_keeps_records),
		cmocka_unit_test(test_lost_edges_flag_a_gap),
		cmocka_unit_test(test_view_shared_with_the_network_task),
		cmocka_unit_test(test_view_edges),
		cmocka_unit_test(test_disc_meter),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
