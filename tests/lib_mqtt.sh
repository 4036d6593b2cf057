# SPDX-License-Identifier: MIT
# Helpers for the MQTT tests (tests/cli_mqtt*.sh): a private broker (scripts/mosquitto.sh) and
# captures of what real clients (mosquitto_sub) receive from it. Sourced, not run (its name
# keeps it out of ctest's tests/cli_*.sh glob). Needs $work (a scratch directory) and $src (the
# source tree).
#
# A capture is a file of lines "UNIXTIME RETAIN MID TOPIC PAYLOAD" (mosquitto_sub -F
# '%U %r %m %t %p': the receive time with nanoseconds, the retain flag as delivered (1: a stored
# copy sent on subscribing, 0: live), the broker's message id towards this subscriber), plus the
# test's own marks, "# UNIXTIME TEXT" (mark), at the moment they happen. tests/mqtt_check.py
# reads it.
#
# The subscriber has a persistent session (-c, a fixed client id, QoS 1) on a broker with
# persistence: while it is away (the broker restarting) the broker keeps its subscriptions and
# queues its QoS 1 messages, also across a clean restart of the broker, and delivers them when
# it is back. mosquitto_sub reconnects by itself after losing the broker; should it exit all
# the same (a refused first connection, a crash), a supervisor starts it again with the same id.

mqtt_sh() { bash "$src/scripts/mosquitto.sh" "$@"; }

# mqtt_start: a broker with its state in $work/mqtt; sets mqtt_url and mqtt_port. The port is
# the first free one from a random point in 18830..18999, not from 18830: a broker that is down
# for a test's outage cannot hold its port, and another broker on this machine (a developer's,
# a parallel run's) starting meanwhile takes the first free port, which would be ours.
mqtt_start() {
	local p=$((18830 + RANDOM % 170))
	export PL_MQTT_DIR="$work/mqtt"
	mkdir -p "$PL_MQTT_DIR"
	while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do
		p=$((p + 1))
		[ $p -lt 19100 ] || { echo "no free port for the broker" >&2; return 1; }
	done
	[ -n "${PL_MQTT_PORT:-}" ] || export PL_MQTT_PORT=$p
	mqtt_url=$(mqtt_sh start 2>"$work/mosquitto.err") ||
		{ cat "$work/mosquitto.err" >&2; return 1; }
	mqtt_port=${mqtt_url##*:}
}

# mqtt_broker restart|stop|start|kill: the broker's life; marks every capture with it.
mqtt_broker() {
	if [ "$1" = restart ]; then
		mqtt_broker stop && mqtt_broker start
		return
	fi
	mqtt_sh "$1" >/dev/null 2>"$work/mosquitto.err" ||
		{ cat "$work/mosquitto.err" >&2; return 1; }
	# after the stop and before the start, so that nothing the broker sends after a start
	# comes before the mark
	mark_all "broker $1"
}

mqtt_caps=()
declare -A mqtt_sup_pid

# mark NAME TEXT: a line "# UNIXTIME TEXT" in capture NAME, between what came before and after.
mark() { echo "# $(date +%s.%N) $2" >>"$work/$1.cap"; }

# mark_all TEXT: the mark in every capture.
mark_all() {
	local c
	for c in "${mqtt_caps[@]}"; do mark "$c" "$1"; done
}

# capture_start NAME TOPIC...: captures TOPICs into $work/NAME.cap (client id pltest-NAME;
# appended to when it exists: the same subscriber back, e.g. after capture_stop); returns once
# the subscription is in place (a probe published to it has come back), 1 when that does not
# happen within 30 s.
capture_start() {
	local name=$1 t args=()
	shift
	for t in "$@"; do args+=(-t "$t"); done
	rm -f "$work/$name.stop"
	[ -e "$work/$name.cap" ] || : >"$work/$name.cap" # a capture started again goes on
	(
		# a supervisor: a mosquitto_sub that exits is started again, same id and session
		while [ ! -e "$work/$name.stop" ]; do
			mosquitto_sub -p "$mqtt_port" -c -i "pltest-$name" -q 1 -k 5 \
				-t "pltest/probe/$name" "${args[@]}" -F '%U %r %m %t %p' \
				>>"$work/$name.cap" 2>>"$work/$name.sub.err" &
			echo $! >"$work/$name.sub.pid"
			wait $! || true
			[ -e "$work/$name.stop" ] || { mark "$name" "subscriber exited"; sleep 0.5; }
		done
	) &
	[ -n "${mqtt_sup_pid[$name]:-}" ] || mqtt_caps+=("$name")
	mqtt_sup_pid[$name]=$!
	local i token
	for i in $(seq 30); do
		token="probe-$i-$RANDOM"
		mosquitto_pub -p "$mqtt_port" -q 1 -t "pltest/probe/$name" -m "$token" 2>/dev/null || true
		wait_for 1 grep -q " pltest/probe/$name $token\$" "$work/$name.cap" && return 0
	done
	echo "capture $name: no subscription after 30 s: $(head -c 300 "$work/$name.sub.err")" >&2
	return 1
}

# capture_stop NAME: ends the capture's subscriber (its session stays on the broker).
capture_stop() {
	local name=$1 pid
	touch "$work/$name.stop"
	pid=$(cat "$work/$name.sub.pid" 2>/dev/null) && kill "$pid" 2>/dev/null
	wait "${mqtt_sup_pid[$name]}" 2>/dev/null || true
}

# capture_sync NAME: returns once everything the broker had for capture NAME when it was
# called has been written (a probe sent now comes after it: one broker, one subscriber,
# messages in order); 1 after 60 s.
capture_sync() {
	local name=$1 token="sync-$RANDOM-$RANDOM" i
	mosquitto_pub -p "$mqtt_port" -q 1 -t "pltest/probe/$name" -m "$token" 2>/dev/null || return 1
	for i in $(seq 60); do
		wait_for 1 grep -q " pltest/probe/$name $token\$" "$work/$name.cap" && return 0
	done
	return 1
}

# mqtt_cleanup: for the tests' EXIT traps: ends the captures and the broker.
mqtt_cleanup() {
	local c
	for c in "${mqtt_caps[@]}"; do capture_stop "$c"; done
	[ -z "${PL_MQTT_DIR:-}" ] || mqtt_sh stop >/dev/null 2>&1 || true
}

# retained COUNT TOPIC...: prints the retained messages on TOPICs that the broker has now, as a
# fresh client (clean session) sees them, in the capture's format: COUNT of them (fewer when
# the broker has fewer within 10 s), or, with COUNT 0, all it sends within 3 s.
retained() {
	local n=$1 t args=()
	shift
	for t in "$@"; do args+=(-t "$t"); done
	if [ "$n" -gt 0 ]; then
		args+=(-C "$n" -W 10)
	else
		args+=(-W 3)
	fi
	mosquitto_sub -p "$mqtt_port" -q 1 --retained-only "${args[@]}" \
		-F '%U %r %m %t %p' 2>/dev/null || true
}

# wait_for SECONDS CMD...: runs CMD every 0.1 s until it succeeds; 1 after SECONDS.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.1
	done
}

# lines NAME: the number of lines in capture NAME now (a position for tests/mqtt_check.py).
lines() { wc -l <"$work/$1.cap"; }

# daemon_start CONFIG ARGS...: `$bin run -c CONFIG --quiet ARGS` in the background, its stderr
# appended to $work/run.log; sets daemon_pid. Marks the captures first ("daemon start"), so
# that whatever it publishes comes after the mark.
daemon_start() {
	local c=$1
	shift
	mark_all "daemon start"
	"$bin" run -c "$c" --quiet "$@" 2>>"$work/run.log" </dev/null &
	daemon_pid=$!
}

# daemon_catches_term SECONDS: waits until the daemon has installed its SIGTERM handler
# (SigCgt in /proc/PID/status), so that a SIGTERM is a clean stop and not the default death
# of a process still starting (a test that stopped a logger started a moment before saw 143).
daemon_catches_term() {
	wait_for "$1" eval '[ "$(readlink /proc/$daemon_pid/exe)" = "$(readlink -f "$bin")" ] &&
		[ $(( 0x$(sed -n "s/^SigCgt:[[:space:]]*//p" \
		/proc/$daemon_pid/status 2>/dev/null || echo 0) >> 14 & 1 )) = 1 ]'
}

# daemon_kill: SIGKILL, marked in the captures before it (the Last Will can only come after).
daemon_kill() {
	mark_all "daemon kill"
	kill -9 "$daemon_pid" 2>/dev/null || true
	wait "$daemon_pid" 2>/dev/null || true
	daemon_pid=
}

# daemon_wait SECONDS: waits for the daemon to exit by itself; 1 when it still runs after
# SECONDS or exited with a status other than 0.
daemon_wait() {
	local rc=0
	wait_for "$1" eval '! kill -0 "$daemon_pid" 2>/dev/null' ||
		{ echo "the logger still runs after $1 s" >&2; return 1; }
	wait "$daemon_pid" || rc=$?
	daemon_pid=
	[ $rc -eq 0 ] || echo "the logger exited with status $rc" >&2
	return $rc
}

# daemon_stacks: the running daemon's threads' backtraces on stderr (gdb, when there is one), for
# a test's message about a logger that hangs.
daemon_stacks() {
	[ -n "$daemon_pid" ] && command -v gdb >/dev/null || return 0
	echo "the logger's threads:" >&2
	timeout 30 gdb -p "$daemon_pid" -batch -ex 'thread apply all bt' 2>/dev/null |
		grep '^#\|^Thread' | head -n 80 >&2 || true
}

# sink_backlog CONFIG SINK: the backlog `powerlogger status` shows for SINK (empty if none,
# e.g. before the logger has made its store).
sink_backlog() {
	{ "$bin" status -c "$1" 2>/dev/null || true; } |
		sed -n "s/^  $2: backlog \\([0-9]*\\) records.*/\\1/p"
}

# count NAME TOPIC [FROM_LINE]: the messages on TOPIC in capture NAME (from line FROM_LINE on).
count() {
	tail -n "+${3:-1}" "$work/$1.cap" | grep -c "^[0-9.]* [01] [0-9]* $2 " || true
}
