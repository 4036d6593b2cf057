#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Starts and stops a private Prometheus (Debian's prometheus 2.x) for the tests: it listens on
# loopback only, scrapes one target's /metrics every second, keeps its TSDB in the state
# directory, runs as the current user, never as the system service (whose configuration,
# port 9090 and /var/lib/prometheus it does not touch). A second scrape job names
# Prometheus itself, so that a test can tell a broken target from a broken Prometheus.
#
#   prometheus.sh start HOST:PORT   starts it scraping http://HOST:PORT/metrics, waits until
#                                   /-/ready answers, prints the URL (http://127.0.0.1:PORT)
#   prometheus.sh stop              a clean stop (SIGTERM), waits for the exit
#   prometheus.sh url               prints the URL
#   prometheus.sh port              prints the port
#
# Environment:
#   PL_PROM_DIR         state directory (config, tsdb, log, pid, port, url). `start` creates one
#                       with mktemp when unset and prints `export PL_PROM_DIR=...` on stderr;
#                       the other commands need it.
#   PL_PROM_PORT        the port (default: the first free port from 19090 up; when set, it must
#                       be free).
#   PL_PROM_INTERVAL_S  the scrape interval (default 1, the smallest Prometheus takes).
#   PL_PROMETHEUS       the program (default /usr/bin/prometheus).
set -euo pipefail

die() { echo "prometheus.sh: $*" >&2; exit 1; }

prom_bin=${PL_PROMETHEUS:-/usr/bin/prometheus}
cmd=${1:-}
[ $# -gt 0 ] && shift

dir_var=PL_PROM_DIR
. "$(dirname "$0")/lib-server.sh"

do_start() {
	[ $# -eq 1 ] || die "usage: prometheus.sh start HOST:PORT (the target to scrape)"
	local target=$1
	[[ $target =~ ^[^/[:space:]]+:[0-9]+$ ]] ||
		die "start: the target must be HOST:PORT (got: $target)"
	[ -x "$prom_bin" ] ||
		die "$prom_bin not found (bash scripts/install-deps.sh installs prometheus)"
	if [ -z "${PL_PROM_DIR:-}" ]; then
		PL_PROM_DIR=$(mktemp -d "${TMPDIR:-/tmp}/pl-prometheus.XXXXXX")
		echo "export PL_PROM_DIR=$PL_PROM_DIR" >&2
	fi
	mkdir -p "$PL_PROM_DIR"
	PL_PROM_DIR=$(cd "$PL_PROM_DIR" && pwd)
	local pid d=$PL_PROM_DIR port
	if pid=$(running_pid); then
		die "already running (pid $pid) in $d"
	fi
	if [ -n "${PL_PROM_PORT:-}" ]; then
		port=$PL_PROM_PORT
		port_free "$port" || die "port $port is in use (PL_PROM_PORT)"
	else
		port=$(pick_port 19090)
	fi
	echo "$port" >"$d/port"
	local every=${PL_PROM_INTERVAL_S:-1}
	[[ $every =~ ^[1-9][0-9]*$ ]] || die "PL_PROM_INTERVAL_S: not a whole number of seconds: $every"
	mkdir -p "$d/tsdb"
	cat >"$d/prometheus.yml" <<EOF
# Written by scripts/prometheus.sh: a private test Prometheus on loopback.
global:
  scrape_interval: ${every}s
  scrape_timeout: ${every}s
  evaluation_interval: ${every}s
scrape_configs:
  - job_name: powerlogger
    static_configs:
      - targets: ['$target']
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:$port']
EOF
	"$(dirname "$prom_bin")/promtool" check config "$d/prometheus.yml" >"$d/check.log" 2>&1 ||
		{ cat "$d/check.log" >&2; die "promtool refuses the configuration it wrote"; }
	rm -f "$d/url" "$d/pid"
	# setsid: it must not die with the shell that started it, nor get its signals.
	# --web.console.*: Debian's defaults point into /etc, which a test has no business with.
	setsid "$prom_bin" --config.file="$d/prometheus.yml" --storage.tsdb.path="$d/tsdb" \
		--web.listen-address="127.0.0.1:$port" --storage.tsdb.retention.time=1d \
		--web.console.templates="$d" --web.console.libraries="$d" --log.level=info \
		</dev/null >>"$d/prometheus.log" 2>&1 &
	pid=$!
	echo "$pid" >"$d/pid"
	# Ready when /-/ready says so: the TSDB is open and the scrape loops are started.
	local deadline=$((SECONDS + 30))
	until curl -sf -o /dev/null "http://127.0.0.1:$port/-/ready" 2>/dev/null; do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "prometheus.sh: prometheus exited during startup; the end of its log:" >&2
			tail -n 20 "$d/prometheus.log" >&2 2>/dev/null || true
			rm -f "$d/pid"
			exit 1
		fi
		if [ $SECONDS -ge $deadline ]; then
			echo "prometheus.sh: prometheus was not ready on 127.0.0.1:$port within 30 s" >&2
			tail -n 20 "$d/prometheus.log" >&2 2>/dev/null || true
			kill -9 "$pid" 2>/dev/null || true
			rm -f "$d/pid"
			exit 1
		fi
		sleep 0.1
	done
	echo "http://127.0.0.1:$port" >"$d/url"
	cat "$d/url"
}

do_stop() {
	need_dir
	local pid
	if ! pid=$(running_pid); then
		rm -f "$PL_PROM_DIR/pid"
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 200); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "prometheus.sh: prometheus (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL" >&2
		kill -9 "$pid" 2>/dev/null || true
		sleep 0.2
	fi
	rm -f "$PL_PROM_DIR/pid"
}

case $cmd in
start) do_start "$@" ;;
stop) do_stop ;;
url) need_dir; [ -f "$PL_PROM_DIR/url" ] || die "not started in $PL_PROM_DIR"
	cat "$PL_PROM_DIR/url" ;;
port) need_dir; [ -f "$PL_PROM_DIR/port" ] || die "not started in $PL_PROM_DIR"
	cat "$PL_PROM_DIR/port" ;;
-h | --help) sed -n '3,22p' "$0" | sed 's/^# \{0,1\}//' ;;
*) die "usage: prometheus.sh start HOST:PORT | stop | url | port (--help)" ;;
esac
