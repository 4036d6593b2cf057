/* SPDX-License-Identifier: MIT */
/*
 * The logger daemon (`powerlogger run`, docs/daemon-design.md): one poll loop (loop.c) over
 * the meters (meter.c: a source, the detector or edge filter with the meter, and the commit
 * of closed records with the checkpoint into the store) and the sinks (a delivery thread
 * each, sinks/deliver.c), with the status line (status.c) and the signals (signals.c).
 *
 * For each meter: a source (live.h: a device, the simulator, or a trace file replayed at a
 * speed factor) feeds the analog detector or the edge filter; pulses feed the meter; the
 * meter is advanced only to the detector's horizon, so an interval is closed only when no
 * pulse can still arrive for it; closed records and the checkpoint (the detector's and the
 * meter's plain-data state, and the source's position) are committed to the store in one
 * transaction. A restart loads the checkpoint: a file source skips the samples already
 * consumed, so the records of a replay are those of an uninterrupted run.
 *
 * For each InfluxDB sink, a thread of its own reads the store's undelivered records, oldest
 * first, posts them and moves its cursor only on a 2xx; the loop only commits and kicks, so
 * sampling never waits for the network.
 *
 * SIGINT/SIGTERM (or pl_daemon_request_stop()) stop it cleanly: a checkpoint of every meter, a
 * request in flight gets a short grace time. SIGHUP reloads: the same stop, then the caller
 * executes the program again in place (pl_daemon_restart()). One logger per store
 * (pl_store_lock()); a store file deleted or replaced under it is noticed after a commit.
 *
 * Every clock reading goes through clock.h and every message through log.h, so a test runs
 * the loop under a fake clock with a fake device (tests/test_daemon.c).
 */
#ifndef PL_LINUX_DAEMON_H
#define PL_LINUX_DAEMON_H

#include "config/config.h"
#include "sources/live.h"

struct pl_daemon_options {
	const struct pl_config *cfg; /* the configuration; the caller's, must outlive the run */
	const char *config_path;     /* read again on SIGHUP; NULL: there is no file */
	double speed;                /* with have_speed: the replay speed of every meter */
	int have_speed;
	double duration_s;           /* > 0: stop after this much input (wall time for devices) */
	int until_drained;           /* stop once every file is read and every record delivered */
	int quiet;                   /* no status line, fewer info lines */
	int tty;                     /* stderr is a terminal: a live status line */
	/* The source of a meter of a device kind (iio, gpio, serial); NULL: pl_live_ops_for(),
	 * opened with pl_live_open_meter(). A device given here is opened with the meter's
	 * configuration itself as open()'s cfg (a struct pl_config_meter). (The simulator and
	 * files are always src_sim.c and src_trace.c.) */
	const struct pl_live_ops *(*device_for)(const struct pl_config_meter *cfg);
};

/*
 * Runs the logger until a stop, the end of its input (--duration, --until-drained), a reload
 * or a failure. Returns the exit status (0, or 1 on a failure) and sets *restart when the
 * caller should execute the program again in place (a reload, or a deleted store written back
 * to its path). Installs the handlers of SIGINT, SIGTERM, SIGHUP, SIGUSR1/2; ignores SIGPIPE
 * and SIGXFSZ. Not reentrant: one run per process at a time.
 */
int pl_daemon_run(const struct pl_daemon_options *o, int *restart);

/* Asks the running loop to stop as on SIGTERM. Async-signal-safe. */
void pl_daemon_request_stop(void);

/* Executes this program again as `powerlogger run ARGS...` (argv[0] is "run"); returns only
 * on failure (logged). */
void pl_daemon_restart(int argc, char **argv);

#endif
