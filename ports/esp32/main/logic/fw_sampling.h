/* SPDX-License-Identifier: MIT */
/*
 * The sampling task's work, without the hardware: raw ADC samples (or GPIO edges) in,
 * interval records out into the ring to the network task.
 *
 * ADC path: the ESP32's ADC1 in continuous (DMA) mode cannot run slower than about 20 kHz,
 * and its samples are noisy (sigma 25-40 LSB). Blocks of `block` raw samples are averaged (4
 * gives 5 kHz and halves the noise) before the core's detector sees them - still far finer
 * than a 10 ms flash needs. Each DMA frame comes with the monotonic time it was read; sample
 * times run on the nominal rate and follow that clock gently (a sixteenth of the difference per
 * frame), because the read time jitters with task scheduling while the ADC's own rate is off
 * by a few per cent; a difference beyond FW_SAMPLING_SNAP_US is a lost stretch: the clock
 * jumps and the interval is flagged PL_Q_GAP. A frame may be read late by up to `pool_us`
 * more without that: the ADC driver keeps frames in its pool while the sampling task cannot
 * run - a flash sector erase (the outbox) stops both cores for ~45 ms, and the frames then
 * come out together. Samples the pool could not hold are reported by the driver
 * (fw_sampling_gap).
 *
 * GPIO path: timestamped edges from the interrupt (comparator module or S0) go through the
 * core's edge filter.
 *
 * Both run through the core's channel (channel.h): it closes intervals only up to the
 * detector's (or edge filter's) horizon, so no late pulse ever finds its interval closed, and
 * flags lost input (PL_Q_GAP) on the intervals it may touch. Time base: the detector always
 * works in monotonic time; the meter works in record time = monotonic + offset (the channel's
 * offset_us), 0 (records unstamped) until the clock is set. fw_sampling_timebase() moves to a
 * new offset: it closes the open interval (PL_Q_PARTIAL) in the old base, and starts afresh
 * in the new one with the energy register carried over exactly.
 *
 * Records go from the channel's queue to a short pending list and on into the ring; while the
 * ring is full they wait and the meter holds back (nothing is lost), and once the channel's
 * queue is full too, new frames and edges are dropped and flagged as a gap.
 *
 * The detector's view (state, amplitude, noise, rejected pulses: MQTT's P/M/diag) goes to the
 * network task through a fw_seqpair (fw_sampling_share, the sampling task the one writer;
 * fw_sampling_view_read in the network task): the ESP32 stores 64 bits as two halves, and the
 * four values must be read as one. Two 64-bit words hold them: the rejected count (56 bits)
 * with the state, and amplitude and noise (32 bits each).
 *
 * Not thread-safe: the sampling task owns it (fw_sampling_view_read excepted). Never
 * allocates.
 */
#ifndef FW_SAMPLING_H
#define FW_SAMPLING_H

#include <stddef.h>
#include <stdint.h>

#include "fw_record.h"
#include "fw_ring.h"
#include "fw_seqpair.h"
#include "powerlogger/channel.h"

#define FW_SAMPLING_CHUNK 128          /* averaged samples fed to the detector per call */
#define FW_SAMPLING_PENDING 8          /* records waiting for room in the ring */
#define FW_SAMPLING_SNAP_US INT64_C(50000) /* frame clock error taken as a gap */
#define FW_SAMPLING_POOL_FRAMES 8        /* the driver's pool, in DMA frames ... */
#define FW_SAMPLING_FRAME_SAMPLES 256    /* ... of this many raw samples */
#define FW_SAMPLING_EDGE_SLACK_US INT64_C(10000) /* edges may still be in the ISR ring */

struct fw_sampling_config {
	uint8_t digital;                 /* 0: ADC samples, 1: GPIO edges */
	uint32_t adc_rate_hz;            /* raw sample rate (ADC path), e.g. 20000 */
	uint32_t block;                  /* raw samples averaged into one, 1..64 */
	uint32_t pool_us;                /* how long the driver's pool holds frames (ADC path) */
	struct pl_detector_config det;
	struct pl_edges_config edges;
	struct pl_meter_config meter;
};

/* One edge from the GPIO interrupt, through a struct fw_ring to the sampling task. */
struct fw_edge {
	int64_t t_us;                    /* esp_timer_get_time() in the interrupt */
	int32_t level;                   /* raw input level, 0 or 1 */
	int32_t reserved;
};

struct fw_sampling_stats {
	uint64_t raw_samples, samples, pulses, rejected, records, gaps, dropped_frames;
	int64_t power_mw;                /* from the last gap between pulses */
};

#define FW_SAMPLING_VIEW_EDGES (-1)     /* fw_sampling_view.state on the GPIO path */

/* What P/M/diag shows of the input, as the daemon's does (src/linux/daemon/status.c). */
struct fw_sampling_view {
	int32_t state;                   /* enum pl_detector_state, or FW_SAMPLING_VIEW_EDGES */
	int32_t amplitude;               /* recent pulse swing in ADC counts; -1: not known */
	int32_t noise;                   /* noise in ADC counts; -1: not known */
	uint64_t rejected;               /* pulses rejected since boot (below 2^56) */
};

struct fw_sampling {
	struct fw_sampling_config cfg;
	struct pl_channel ch;            /* detector or edge filter, and the meter */
	struct fw_ring *out;
	uint32_t boot;
	uint8_t stamped;                 /* the channel's offset is a real wall-clock offset */
	uint8_t started;
	uint8_t have_clock;
	uint8_t rebase_pending;          /* fw_sampling_timebase() waits for room */
	int64_t rebase_offset_us;
	int64_t raw_t;                   /* time of the last raw sample (ADC path) */
	int64_t last_sample_t;           /* time of the last averaged sample given out */
	uint32_t acc_n;                  /* raw samples in the block being averaged */
	uint32_t acc_sum;
	uint32_t npend;
	uint32_t edges_dropped_seen;     /* the edge ring's `dropped` as last taken */
	struct fw_sampling_stats stats;
	struct fw_sampling_view shared;  /* as last given to fw_sampling_share's pair */
	uint8_t shared_valid;
	struct pl_sample chunk[FW_SAMPLING_CHUNK];
	struct fw_record pend[FW_SAMPLING_PENDING];
};

/* Fills cfg with defaults: ADC at 20 kHz in blocks of 4, a pool of FW_SAMPLING_POOL_FRAMES
 * frames of FW_SAMPLING_FRAME_SAMPLES (102.4 ms at 20 kHz), core defaults elsewhere. */
void fw_sampling_config_default(struct fw_sampling_config *cfg);

/* The meter's settings (the console's, fw_settings.h), as the sampling tasks take them. */
struct fw_sampling_meter {
	uint32_t imp_per_kwh;            /* impulses per kWh, or revolutions for a disc */
	uint32_t max_power_w;
	uint32_t interval_s;
	uint32_t meter_type;             /* enum pl_meter_type; 0: an LED meter */
};

/*
 * Defaults, then an analog input: the ADC at rate_hz in blocks of `block` (the driver's pool of
 * FW_SAMPLING_POOL_FRAMES frames of FW_SAMPLING_FRAME_SAMPLES, its length in time as pool_us)
 * on the meter m. The device's sampling task and the linux target's simulated one both.
 */
void fw_sampling_config_adc(struct fw_sampling_config *cfg, const struct fw_sampling_meter *m,
			    uint32_t rate_hz, uint32_t block);

/*
 * Sets up s; records go to `out` (a ring of struct fw_record, borrowed) tagged with `boot`.
 * Returns 0 or -PL_EINVAL (a bad configuration, from the core or here).
 */
int fw_sampling_init(struct fw_sampling *s, const struct fw_sampling_config *cfg,
		     struct fw_ring *out, uint32_t boot);

/*
 * Sets the energy register (uWh), as restored from the last saved interval; before any input.
 * Returns 0 or -PL_EINVAL (register_uwh < 0).
 */
int fw_sampling_set_register(struct fw_sampling *s, int64_t register_uwh);

/*
 * One DMA frame: n raw ADC values (12-bit, already taken out of the DMA words), the last of
 * which was read at monotonic time t_end_us. Returns the number of accepted pulses detected
 * (for the status LED), or -PL_ENOSPC when the frame was dropped because the ring is full
 * (the interval is flagged PL_Q_GAP).
 */
int fw_sampling_adc(struct fw_sampling *s, const uint16_t *raw, size_t n, int64_t t_end_us);

/* The ADC driver reported lost samples (pool overflow): flags PL_Q_GAP on the intervals from
 * the last sample given to the next one. */
void fw_sampling_gap(struct fw_sampling *s);

/*
 * One edge from the GPIO interrupt: raw level 0/1 (before active-low) at t_us (monotonic).
 * Returns 1 if it completed an accepted pulse, 0 if not, -PL_EORDER for an edge older than the
 * previous one (ignored), -PL_ENOSPC as for fw_sampling_adc.
 */
int fw_sampling_edge(struct fw_sampling *s, int level, int64_t t_us);

/*
 * Takes every edge waiting in `edges` (a ring of struct fw_edge that the GPIO interrupt
 * fills) through fw_sampling_edge(). Edges the interrupt could not push because the ring was
 * full (its `dropped` counter moved since the last call) flag PL_Q_GAP: a lost edge may be a
 * lost pulse. When they were lost is only known to be after the edges taken last time, so
 * every interval that may hold them is flagged: from the time of the last edge (or tick)
 * before these edges to that of the next edge or fw_sampling_tick() after them. Returns the
 * number of accepted pulses (for the status LED).
 */
int fw_sampling_edges(struct fw_sampling *s, struct fw_ring *edges);

/*
 * Time now_us (monotonic) has come: lets the edge filter accept held levels, closes the
 * intervals no pulse can reach any more and moves records into the ring. Call after every
 * frame and every ~100 ms. Returns the number of records put into the ring.
 */
int fw_sampling_tick(struct fw_sampling *s, int64_t now_us);

/*
 * From now on record time = monotonic + offset_us and records are stamped (wall-clock). Call
 * with the offset the network task learned (fw_time.h). Returns 0 or -PL_ENOSPC if the
 * records of the closed interval did not all fit into the ring (they wait in the pending
 * list), or if the ring was too full to close it at all: then the change takes effect at the
 * first fw_sampling_tick() that finds room (records until then are in the old base).
 */
int fw_sampling_timebase(struct fw_sampling *s, int64_t offset_us, int64_t now_us);

/* The detector's view now (the edge filter's: state edges, amplitude and noise -1). */
void fw_sampling_get_view(const struct fw_sampling *s, struct fw_sampling_view *v);

/*
 * Writes the view into p when it differs from what this s last wrote there (the sampling
 * task, after each tick: a few compares when nothing changed). Returns 1 if written, else 0.
 */
int fw_sampling_share(struct fw_sampling *s, struct fw_seqpair *p);

/*
 * The view as last shared into p (any task). *version (may be NULL): fw_seqpair's count of
 * writes, so the reader sees whether it changed. 0, -PL_ENOENT (none shared yet) or -PL_EBUSY
 * (a write in progress at every try: ask again later).
 */
int fw_sampling_view_read(const struct fw_seqpair *p, struct fw_sampling_view *v,
			  uint32_t *version);

/* "edges", or the core's name of the detector state ("dark", "pulsing", ...); static. */
const char *fw_sampling_view_state_name(const struct fw_sampling_view *v);

#endif
