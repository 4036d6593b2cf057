/* SPDX-License-Identifier: MIT */
/*
 * fillstore: fills a PowerLogger store with N interval records, as a meter that logged while
 * its sinks were away would have left them, and writes the same records as line protocol.
 *
 *   fillstore STORE LPFILE N [--meter NAME] [--sink NAME] [--interval S] [--start UNIX_S]
 *
 * --sink registers a sink that has delivered none of them: the logger was configured with it
 * all along and it was away (without it the first run registers the sink itself).
 *
 * For the outage test (a week at 20 s is 30240 records) and the drain benchmark (the same line
 * protocol posted by curl in the same batch sizes). Records: 20 s intervals ending now-ish by
 * default, pulse counts following a daily load curve, the register rising with them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "powerlogger/lineproto.h"
#include "powerlogger/meter.h"
#include "store/store.h"

int main(int argc, char **argv)
{
	const char *meter = "house", *sink = NULL;
	uint32_t interval_s = 20;
	int64_t start_s = -1;
	enum pl_precision prec = PL_PREC_S;

	if (argc < 4) {
		fprintf(stderr, "usage: fillstore STORE LPFILE N [--meter NAME] [--sink NAME] "
				"[--interval S] [--start UNIX_S]\n");
		return 2;
	}
	const char *path = argv[1], *lp_path = argv[2];
	long n = strtol(argv[3], NULL, 10);
	for (int i = 4; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--meter"))
			meter = argv[i + 1];
		else if (!strcmp(argv[i], "--sink"))
			sink = argv[i + 1];
		else if (!strcmp(argv[i], "--interval"))
			interval_s = (uint32_t)strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--start"))
			start_s = strtoll(argv[i + 1], NULL, 10);
		else {
			fprintf(stderr, "fillstore: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (n <= 0 || interval_s == 0) {
		fprintf(stderr, "fillstore: N and the interval must be positive\n");
		return 2;
	}
	if (start_s < 0)
		start_s = (int64_t)time(NULL) - (int64_t)n * interval_s;
	start_s -= start_s % interval_s;

	char err[256];
	struct pl_store *st;
	int64_t id;
	if (pl_store_open(path, PL_STORE_CREATE, &st, err, sizeof(err)) != 0) {
		fprintf(stderr, "fillstore: %s\n", err);
		return 1;
	}
	int64_t sink_id;
	if (sink != NULL && pl_store_sink(st, sink, &sink_id) != 0) {
		fprintf(stderr, "fillstore: %s\n", pl_store_error(st));
		return 1;
	}
	if (pl_store_meter(st, meter, 1000, interval_s, &id) != 0) {
		fprintf(stderr, "fillstore: %s\n", pl_store_error(st));
		return 1;
	}
	FILE *lp = fopen(lp_path, "w");
	if (!lp) {
		perror(lp_path);
		return 1;
	}
	static struct pl_interval_record recs[1000];
	static char line[1024];
	const char state[] = "fillstore";
	int64_t reg = 0;
	uint64_t x = 12345;
	for (long done = 0; done < n;) {
		size_t k = 0;
		for (; k < 1000 && done < n; k++, done++) {
			struct pl_interval_record *r = &recs[k];
			int64_t t = start_s + (int64_t)done * interval_s;
			int hour = (int)((t / 3600) % 24);
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			uint32_t pulses = (uint32_t)((hour >= 7 && hour < 23 ? 8 : 2) + x % 5);
			memset(r, 0, sizeof(*r));
			r->start_us = t * PL_US_PER_S;
			r->length_s = interval_s;
			r->pulses = pulses;
			r->energy_uwh = (int64_t)pulses * 1000000;
			r->avg_mw = r->energy_uwh * 3600 / ((int64_t)interval_s * 1000);
			r->peak_mw = r->avg_mw * 3 / 2;
			reg += r->energy_uwh;
			r->register_uwh = reg;
			size_t len = 0;
			if (pl_lp_interval(line, sizeof(line), &len, NULL, meter, r, prec) != 0) {
				fprintf(stderr, "fillstore: cannot encode a record\n");
				return 1;
			}
			fwrite(line, 1, len, lp);
		}
		if (pl_store_commit_interval(st, id, recs, k, state, sizeof(state)) != 0) {
			fprintf(stderr, "fillstore: %s\n", pl_store_error(st));
			return 1;
		}
	}
	fclose(lp);
	pl_store_close(st);
	fprintf(stderr, "fillstore: %ld records of %" PRIu32 " s for meter %s from %" PRId64 "\n", n,
		interval_s, meter, start_s);
	return 0;
}
