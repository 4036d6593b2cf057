#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Starts and stops a private InfluxDB 1.x (Debian's influxd) for the tests: loopback only, a
# temporary configuration and data directory, the current user, never the system service.
#
#   influxd.sh start [--auth] [--max-body-size BYTES] [--https CERT KEY]
#                                                       prints the base URL
#   influxd.sh stop                                     stops it and waits
#   influxd.sh url                                      prints the base URL
#
# --https serves HTTPS only (https://127.0.0.1:PORT) with the PEM certificate CERT and its key
# KEY (tests/tls_certs.sh makes a throwaway pair). The script's own requests (the readiness
# ping, creating the admin) verify the server against CERT itself: curl accepts a certificate
# in --cacert as a trust anchor even when it is not a CA's.
#
# Environment:
#   PL_INFLUX_DIR   state directory (config, meta/data/wal, log, pid, url). `start` creates one
#                   with mktemp when unset and prints `export PL_INFLUX_DIR=...` on stderr; the
#                   other commands need it.
#   PL_INFLUX_PORT  HTTP port (default: the first free port from 18086 up; when set, it must
#                   be free; a restart in the same PL_INFLUX_DIR reuses the port of the
#                   first start). The RPC (backup) listener takes the next free port.
#   PL_INFLUX_ADMIN_USER / PL_INFLUX_ADMIN_PASSWORD  the admin `--auth` creates
#                   (default admin / admin-secret). Written to $PL_INFLUX_DIR/admin, mode 600.
set -euo pipefail

die() { echo "influxd.sh: $*" >&2; exit 1; }

influxd_bin=${PL_INFLUXD:-/usr/bin/influxd}
cmd=${1:-}
[ $# -gt 0 ] && shift

dir_var=PL_INFLUX_DIR
. "$(dirname "$0")/lib-server.sh"

do_start() {
	local auth=false max_body=25000000 https=false cert="" key="" scheme=http
	local tls=() # curl's options for the script's own requests
	while [ $# -gt 0 ]; do
		case $1 in
		--auth) auth=true ;;
		--https) [ $# -ge 3 ] || die "--https needs a certificate and a key file"
			https=true; cert=$2; key=$3; shift 2 ;;
		--max-body-size) [ $# -ge 2 ] || die "--max-body-size needs a number"
			max_body=$2; shift ;;
		--max-body-size=*) max_body=${1#*=} ;;
		*) die "unknown option: $1" ;;
		esac
		shift
	done
	[[ $max_body =~ ^[0-9]+$ ]] || die "--max-body-size: not a number: $max_body"
	if [ "$https" = true ]; then
		[ -r "$cert" ] && [ -r "$key" ] || die "--https: cannot read $cert or $key"
		cert=$(cd "$(dirname "$cert")" && pwd)/$(basename "$cert")
		key=$(cd "$(dirname "$key")" && pwd)/$(basename "$key")
		scheme=https
		tls=(--cacert "$cert")
	fi
	[ -x "$influxd_bin" ] || die "$influxd_bin not found (bash scripts/install-deps.sh installs influxdb)"
	command -v curl >/dev/null || die "curl not found"

	if [ -z "${PL_INFLUX_DIR:-}" ]; then
		PL_INFLUX_DIR=$(mktemp -d "${TMPDIR:-/tmp}/pl-influxd.XXXXXX")
		echo "export PL_INFLUX_DIR=$PL_INFLUX_DIR" >&2
	fi
	mkdir -p "$PL_INFLUX_DIR"
	PL_INFLUX_DIR=$(cd "$PL_INFLUX_DIR" && pwd)
	if pid=$(running_pid); then
		die "already running (pid $pid) in $PL_INFLUX_DIR"
	fi

	local port rpc_port d=$PL_INFLUX_DIR
	if [ -n "${PL_INFLUX_PORT:-}" ]; then
		port=$PL_INFLUX_PORT
		port_free "$port" || die "port $port is in use (PL_INFLUX_PORT)"
	elif [ -s "$d/port" ]; then
		# a restart: the same URL as before, or clients configured with it would be lost
		port=$(cat "$d/port")
		port_free "$port" || die "port $port of the previous start is in use now"
	else
		port=$(pick_port 18086)
	fi
	echo "$port" >"$d/port"
	rpc_port=$(pick_port $((port + 1)))
	mkdir -p "$d/meta" "$d/data" "$d/wal"
	cat >"$d/influxdb.conf" <<EOF
# Written by scripts/influxd.sh: a private test server on loopback.
reporting-disabled = true
bind-address = "127.0.0.1:$rpc_port"
[meta]
  dir = "$d/meta"
[data]
  dir = "$d/data"
  wal-dir = "$d/wal"
  query-log-enabled = false
[coordinator]
[retention]
  enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:$port"
  auth-enabled = $auth
  log-enabled = false
  max-body-size = $max_body
  https-enabled = $https
  https-certificate = "$cert"
  https-private-key = "$key"
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
EOF
	local url="$scheme://127.0.0.1:$port"
	rm -f "$d/url" "$d/pid"
	# setsid: the server must not die with the shell that started it, nor get its signals.
	setsid "$influxd_bin" run -config "$d/influxdb.conf" </dev/null >"$d/influxd.log" 2>&1 &
	local pid=$!
	echo "$pid" >"$d/pid"

	local deadline=$((SECONDS + 30)) code
	while :; do
		code=$(curl -s "${tls[@]}" -o /dev/null -w '%{http_code}' --max-time 2 "$url/ping" || true)
		[ "$code" = 204 ] && break
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "influxd.sh: influxd exited during startup; the end of $d/influxd.log:" >&2
			tail -n 20 "$d/influxd.log" >&2
			rm -f "$d/pid"
			exit 1
		fi
		if [ $SECONDS -ge $deadline ]; then
			echo "influxd.sh: influxd did not answer GET $url/ping with 204 within 30 s" \
				"(last: ${code:-none}); the end of $d/influxd.log:" >&2
			tail -n 20 "$d/influxd.log" >&2
			kill "$pid" 2>/dev/null || true
			rm -f "$d/pid"
			exit 1
		fi
		sleep 0.1
	done
	echo "$url" >"$d/url"

	if [ "$auth" = true ]; then
		local user=${PL_INFLUX_ADMIN_USER:-admin} pass=${PL_INFLUX_ADMIN_PASSWORD:-admin-secret}
		# With auth on and no user yet, 1.x accepts exactly this statement unauthenticated.
		# The password goes through a file (curl -d @file), never the command line.
		(umask 077; printf 'user=%s\npassword=%s\n' "$user" "$pass" >"$d/admin"
		 printf "CREATE USER \"%s\" WITH PASSWORD '%s' WITH ALL PRIVILEGES" "$user" "$pass" >"$d/.create-admin")
		local out
		out=$(curl -s "${tls[@]}" -w '\n%{http_code}' -XPOST "$url/query" \
			--data-urlencode "q@$d/.create-admin" || true)
		rm -f "$d/.create-admin"
		if [ "${out##*$'\n'}" != 200 ] || [[ $out == *'"error"'* ]]; then
			echo "influxd.sh: creating the admin user failed: ${out%$'\n'*}" >&2
			do_stop
			exit 1
		fi
	fi
	echo "$url"
}

do_stop() {
	need_dir
	local pid
	if ! pid=$(running_pid); then
		rm -f "$PL_INFLUX_DIR/pid"
		return 0
	fi
	kill "$pid" 2>/dev/null || true
	local i
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "influxd.sh: influxd (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL" >&2
		kill -9 "$pid" 2>/dev/null || true
		sleep 0.2
	fi
	rm -f "$PL_INFLUX_DIR/pid"
}

case $cmd in
start) do_start "$@" ;;
stop) do_stop ;;
url) need_dir; [ -f "$PL_INFLUX_DIR/url" ] || die "not started in $PL_INFLUX_DIR"
	cat "$PL_INFLUX_DIR/url" ;;
*) die "usage: influxd.sh start [--auth] [--max-body-size BYTES] [--https CERT KEY] | stop | url" ;;
esac
