#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Starts and stops a private MQTT broker (Debian's mosquitto 2.x) for the tests: loopback only,
# anonymous clients, a temporary configuration and state directory, the current user, never
# the system service. Persistence is on, as on a real installation's broker: retained messages,
# persistent sessions and the QoS 1 messages queued for them survive a restart (mosquitto
# writes its database on a clean stop and every PL_MQTT_AUTOSAVE_S; a `kill` loses what came
# since the last save, as a power cut of the broker's machine would).
#
#   mosquitto.sh start      starts it, waits until it accepts connections, prints the URL
#   mosquitto.sh restart    a clean stop, then a start on the same port (same URL)
#   mosquitto.sh stop       a clean stop (SIGTERM: the database is saved), waits for the exit
#   mosquitto.sh kill       a hard stop (SIGKILL), waits for the exit
#   mosquitto.sh url        prints the URL (mqtt://127.0.0.1:PORT)
#   mosquitto.sh port       prints the port
#
# Environment:
#   PL_MQTT_DIR         state directory (config, database, log, pid, port, url). `start` creates
#                       one with mktemp when unset and prints `export PL_MQTT_DIR=...` on stderr;
#                       the other commands need it.
#   PL_MQTT_PORT        the port (default: the first free port from 18830 up; when set, it must
#                       be free; a start in the same PL_MQTT_DIR reuses the port of the first).
#   PL_MQTT_AUTOSAVE_S  seconds between saves of the database while running (default 1800,
#                       mosquitto's own default).
set -euo pipefail

die() { echo "mosquitto.sh: $*" >&2; exit 1; }

mosquitto_bin=${PL_MOSQUITTO:-/usr/sbin/mosquitto}
cmd=${1:-}
[ $# -gt 0 ] && shift

dir_var=PL_MQTT_DIR
. "$(dirname "$0")/lib-server.sh"

do_start() {
	[ $# -eq 0 ] || die "start takes no arguments (got: $*)"
	[ -x "$mosquitto_bin" ] ||
		die "$mosquitto_bin not found (bash scripts/install-deps.sh installs mosquitto)"
	if [ -z "${PL_MQTT_DIR:-}" ]; then
		PL_MQTT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/pl-mosquitto.XXXXXX")
		echo "export PL_MQTT_DIR=$PL_MQTT_DIR" >&2
	fi
	mkdir -p "$PL_MQTT_DIR"
	PL_MQTT_DIR=$(cd "$PL_MQTT_DIR" && pwd)
	local pid d=$PL_MQTT_DIR port
	if pid=$(running_pid); then
		die "already running (pid $pid) in $d"
	fi
	if [ -n "${PL_MQTT_PORT:-}" ]; then
		port=$PL_MQTT_PORT
		port_free "$port" || die "port $port is in use (PL_MQTT_PORT)"
	elif [ -s "$d/port" ]; then
		# a restart: the same URL as before, or the clients configured with it would be lost
		port=$(cat "$d/port")
		port_free "$port" || die "port $port of the previous start is in use now"
	else
		port=$(pick_port 18830)
	fi
	echo "$port" >"$d/port"
	local autosave=${PL_MQTT_AUTOSAVE_S:-1800}
	[[ $autosave =~ ^[0-9]+$ ]] || die "PL_MQTT_AUTOSAVE_S: not a number: $autosave"
	mkdir -p "$d/db"
	# `user`: mosquitto started as root would switch to the user "mosquitto", which cannot
	# write the state directory; naming the current user keeps it as it is.
	cat >"$d/mosquitto.conf" <<EOF
# Written by scripts/mosquitto.sh: a private test broker on loopback.
user $(id -un)
per_listener_settings false
allow_anonymous true
listener $port 127.0.0.1
persistence true
persistence_location $d/db/
autosave_interval $autosave
# Tests queue whole backlogs for persistent subscribers that are away (a restart): no bound,
# or the broker would drop what a test checks (the default is 1000 messages).
max_queued_messages 0
log_dest file $d/mosquitto.log
log_type error
log_type warning
log_type notice
log_type information
connection_messages true
log_timestamp_format %Y-%m-%dT%H:%M:%S
EOF
	rm -f "$d/url" "$d/pid"
	# setsid: the broker must not die with the shell that started it, nor get its signals.
	setsid "$mosquitto_bin" -c "$d/mosquitto.conf" </dev/null >>"$d/stdout.log" 2>&1 &
	pid=$!
	echo "$pid" >"$d/pid"
	# Ready when it accepts a connection: mosquitto restores its database before it listens.
	local deadline=$((SECONDS + 30))
	while port_free "$port"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "mosquitto.sh: mosquitto exited during startup; the end of its logs:" >&2
			tail -n 20 "$d/stdout.log" "$d/mosquitto.log" >&2 2>/dev/null || true
			rm -f "$d/pid"
			exit 1
		fi
		if [ $SECONDS -ge $deadline ]; then
			echo "mosquitto.sh: mosquitto did not listen on 127.0.0.1:$port within 30 s" >&2
			tail -n 20 "$d/mosquitto.log" >&2 2>/dev/null || true
			kill -9 "$pid" 2>/dev/null || true
			rm -f "$d/pid"
			exit 1
		fi
		sleep 0.05
	done
	echo "mqtt://127.0.0.1:$port" >"$d/url"
	cat "$d/url"
}

# do_stop SIGNAL: sends it and waits for the exit (SIGKILL after 10 s of SIGTERM).
do_stop() {
	need_dir
	local pid sig=$1
	if ! pid=$(running_pid); then
		rm -f "$PL_MQTT_DIR/pid"
		return 0
	fi
	kill "-$sig" "$pid" 2>/dev/null || true
	for _ in $(seq 200); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "mosquitto.sh: mosquitto (pid $pid) ignored SIG$sig for 10 s; sending SIGKILL" >&2
		kill -9 "$pid" 2>/dev/null || true
		sleep 0.2
	fi
	rm -f "$PL_MQTT_DIR/pid"
}

case $cmd in
start) do_start "$@" ;;
restart) need_dir; do_stop TERM; do_start ;;
stop) do_stop TERM ;;
kill) do_stop KILL ;;
url) need_dir; [ -f "$PL_MQTT_DIR/url" ] || die "not started in $PL_MQTT_DIR"
	cat "$PL_MQTT_DIR/url" ;;
port) need_dir; [ -f "$PL_MQTT_DIR/port" ] || die "not started in $PL_MQTT_DIR"
	cat "$PL_MQTT_DIR/port" ;;
*) die "usage: mosquitto.sh start | restart | stop | kill | url | port" ;;
esac
