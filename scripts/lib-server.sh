# SPDX-License-Identifier: MIT
# Sourced by the scripts that run a private server for the tests (influxd.sh, mosquitto.sh):
# a free loopback port, and the state directory named by the variable whose name the caller
# puts in dir_var (e.g. dir_var=PL_MQTT_DIR) before sourcing. The caller defines die().

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The first free port from $1 up (200 tried).
pick_port() {
	local p=$1
	while ! port_free "$p"; do
		p=$((p + 1))
		[ "$p" -lt $(($1 + 200)) ] || die "no free port in $1..$p"
	done
	echo "$p"
}

need_dir() {
	[ -n "${!dir_var:-}" ] || die "$dir_var is not set"
	[ -d "${!dir_var}" ] || die "no such directory: ${!dir_var}"
}

# The server's PID from the state directory, if it runs.
running_pid() {
	local pid d=${!dir_var}
	[ -f "$d/pid" ] || return 1
	pid=$(cat "$d/pid")
	kill -0 "$pid" 2>/dev/null || return 1
	echo "$pid"
}
