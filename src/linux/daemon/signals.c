/* SPDX-License-Identifier: MIT */
/*
 * The daemon's signals (style(9): the handler only sets flags the loop reads) and the reload:
 * SIGINT and SIGTERM stop, SIGHUP reloads (the configuration is checked, then the same stop
 * and the program executes itself again in place), SIGUSR1/2 are logged and ignored.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/run.h"
#include "log.h"

static volatile sig_atomic_t stop_requested, reload_requested, got_usr1, got_usr2;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		reload_requested = 1;
	else if (sig == SIGUSR1)
		got_usr1 = 1;
	else if (sig == SIGUSR2)
		got_usr2 = 1;
	else
		stop_requested = 1;
}

/* The signals the loop handles (on_signal): blocked across a re-exec, unblocked once the
 * handlers are in place. */
static void handled_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGUSR2);
}

/*
 * SIGINT and SIGTERM stop the logger; SIGHUP reloads it (see daemon_reload_ok()). The
 * handlers go in before the signals are unblocked: a reload re-executes the program with them
 * blocked, so a signal that arrives meanwhile waits for the new image instead of killing it.
 * A terminal that went away (SIGHUP, then EIO on every write to stderr) cannot stop or wedge
 * the logger: writes to it just fail, and SIGPIPE is ignored.
 */
void daemon_signals_install(void)
{
	struct sigaction sa;
	sigset_t set;

	/* a new run: nothing asked yet (what arrives from here on is seen) */
	stop_requested = reload_requested = got_usr1 = got_usr2 = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* Their default action ends the process without a checkpoint (a log rotation script
	 * that sends SIGUSR1 to every daemon): logged and otherwise ignored. */
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* A file size limit (ulimit -f) would kill it in the middle of a commit: ignored, the
	 * write fails with EFBIG instead, and the records wait as on a full disk. */
	signal(SIGXFSZ, SIG_IGN);
	handled_signals(&set);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
}

/*
 * SIGHUP: the configuration is read again first. With errors, the logger says why and goes on
 * with the configuration it runs. Otherwise it stops exactly as on SIGTERM (every meter
 * checkpointed) and executes itself again with the same arguments: same PID, so systemd's
 * ExecReload=kill -HUP $MAINPID works, and the open interval goes on from its checkpoint.
 */
int daemon_reload_ok(const struct run *r)
{
	const char *config = r->o->config_path;
	struct pl_config *cfg = NULL;
	char err[512];
	int fd;

	if (r->store_failing) {
		/* the records waiting in memory would be lost with the old process */
		pl_log(PL_LOG_ERROR, "SIGHUP: not reloading while the store refuses new records (they "
		       "wait in memory); send it again once the store writes");
		return 0;
	}
	if (config == NULL) {
		pl_log(PL_LOG_INFO, "SIGHUP: restarting (no configuration file to read again)");
		return 1;
	}
	if (pl_config_load_for(config, PROG, &cfg) != 0) {
		pl_log(PL_LOG_ERROR, "SIGHUP: %s has errors (above): going on with the configuration "
		       "read at the start", config);
		return 0;
	}
	/* A store that another logger holds would stop this one at the restart: refuse. (The
	 * lock is on a file of its own, so closing it again disturbs no SQLite lock.) */
	if (strcmp(cfg->store.path, r->cfg->store.path) != 0) {
		if (pl_store_lock(cfg->store.path, &fd, err, sizeof(err)) != 0) {
			pl_log(PL_LOG_ERROR, "SIGHUP: %s; going on with the configuration read at the "
			       "start", err);
			pl_config_free(cfg);
			return 0;
		}
		close(fd);
	}
	pl_config_free(cfg);
	pl_log(PL_LOG_INFO, "SIGHUP: %s is valid: checkpointing and restarting with it", config);
	return 1;
}

void pl_daemon_restart(int argc, char **argv)
{
	char **args = calloc((size_t)argc + 2, sizeof(*args));
	sigset_t set;

	if (args == NULL) {
		pl_log(PL_LOG_ERROR, "restart: out of memory");
		return;
	}
	args[0] = program_invocation_name;
	for (int i = 0; i < argc; i++)
		args[i + 1] = argv[i];
	handled_signals(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
	fflush(NULL);
	/* /proc/self/exe: this very program, even if its file was replaced meanwhile */
	execv("/proc/self/exe", args);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	pl_log(PL_LOG_ERROR, "restart: cannot execute /proc/self/exe: %s", strerror(errno));
	free(args);
}


void pl_daemon_request_stop(void)
{
	stop_requested = 1;
}

int daemon_stopping(void)
{
	return stop_requested != 0;
}

int daemon_take_reload(void)
{
	int r = reload_requested != 0;

	reload_requested = 0;
	return r;
}

void daemon_report_ignored_signals(void)
{
	if (!got_usr1 && !got_usr2)
		return;
	pl_log(PL_LOG_INFO, "%s%s%s ignored (SIGHUP reloads, SIGTERM stops)",
	       got_usr1 ? "SIGUSR1" : "", got_usr1 && got_usr2 ? " and " : "",
	       got_usr2 ? "SIGUSR2" : "");
	got_usr1 = got_usr2 = 0;
}
