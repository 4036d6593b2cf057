#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# issue 13: the dashboard (web/, served by `powerlogger run` at `/` with [http] listen) opened
# in a REAL browser, Debian's headless chromium, by tests/dashboard_check.py over the DevTools
# protocol. The logger replays a trace whose times are the last 20 minutes of the wall clock,
# as fast as it goes (speed 0), 5 minutes cut out of it (the file source records that jump as
# intervals without pulses, 0 W, not as a hole); at the trace's end the logger stays up with a
# store that no longer changes, so the numbers the page shows can be compared with the store's
# exactly (a copy made by `powerlogger backup`, which holds the records still in the intake).
# A price is set (cost shown) and an InfluxDB sink points at a port nobody listens on (the
# sinks table shows it failing, with its backlog and error). The checks (dashboard_check.py's
# header): every request to the logger's origin, no script or CSP error, today's kWh, the
# register and the last interval shown equal the store's (read with sqlite3), the sink's state
# and backlog too, the 24 h chart has a point per record and a gap mark per gap/partial record,
# the bar charts drawn, phone widths without sideways scrolling, the dark scheme. Seen to fail
# on a broken page (by hand, once): today's kWh shown plus 0.001 (today_kwh: the page shows
# ...), the last interval's pulses shown plus one, an <img> from another origin in index.html
# (loaded outside, CSP violation, failed request), one power point too many.
# Between 00:00 and 00:21 local time the trace crosses midnight and today_kwh of
# /api/v1/status counts yesterday's replayed records (src/linux/daemon/status.c takes the
# day's base register at its first look, before those records were committed): that failure
# is the logger's, not the test's.
# PL_SCREENSHOTS=DIR also writes DIR/dashboard-desktop.png and DIR/dashboard-phone.png, with
# a longer trace (docs/ holds the committed ones: `PL_SCREENSHOTS=docs bash
# tests/cli_dashboard.sh build/powerlogger`). Skipped with a message (exit 0: the
# cli_* tests have no skip status in ctest) when chromium or python3-websocket is absent.
set -euo pipefail
bin=${1:?usage: cli_dashboard.sh PATH/TO/powerlogger}
src=${PL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
chromium=${PL_CHROMIUM:-/usr/bin/chromium}
py=/usr/bin/python3 # Debian's, which has python3-websocket
if [ ! -x "$chromium" ]; then
	echo "cli_dashboard: SKIP: no chromium at $chromium (Debian package chromium)"
	exit 0
fi
if ! "$py" -c 'import websocket' 2>/dev/null; then
	echo "cli_dashboard: SKIP: $py has no websocket module (Debian package python3-websocket)"
	exit 0
fi
work=$(mktemp -d)
daemon_pid=
cleanup() {
	[ -z "$daemon_pid" ] || kill -9 "$daemon_pid" 2>/dev/null || true
	if [ -n "${PL_KEEP_WORK:-}" ]; then
		echo "cli_dashboard: kept $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
die() {
	echo "cli_dashboard: $*" >&2
	tail -n 20 "$work/run.log" 2>/dev/null | sed 's/^/  run.log: /' >&2 || true
	exit 1
}
free_port() {
	"$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}
t0=$SECONDS

# the trace: 20 minutes ending a minute ago, on the wall clock, 5 minutes cut out after the
# first 10; for the screenshots 8 hours of a real household's load (data/, REFIT, from 07:00
# of its day), 30 minutes cut out, which the logger takes ~15 s to replay
dur=1200 rate=200 load=(--power 1800)
if [ -n "${PL_SCREENSHOTS:-}" ]; then
	dur=28800 rate=200
	load=(--load "$src/data/refit-house2-2015-01-08.csv" --load-start 25200)
fi
hole=$((dur / 4 < 1800 ? dur / 4 : 1800))
"$bin" simulate --duration "$dur" --rate "$rate" "${load[@]}" --noise 20 --seed 13 \
	--out "$work/t0.csv" --quiet
now=$(date +%s)
awk -F, -v o=$((now - dur - 60)) -v a=$((dur / 2)) -v b=$((dur / 2 + hole)) '
	NR == 1 { print; next }
	$1 < a || $1 >= b { printf "%.3f,%s\n", $1 + o, $2 }' "$work/t0.csv" >"$work/trace.csv"
rm "$work/t0.csv"
absent=$(free_port)

for attempt in 1 2 3; do # the port picked may be taken by the time the logger binds it
	port=$(free_port)
	cat >"$work/a.ini" <<INI
[store]
path = $work/a.db

[meter house]
source = file
file = $work/trace.csv
speed = 0
imp_per_kwh = 1000
interval_s = 10

[influxdb nowhere]
url = http://127.0.0.1:$absent
api = 1
database = powerlogger

[http]
listen = 127.0.0.1:$port
price_per_kwh = 0.30
currency = EUR
INI
	"$bin" check-config "$work/a.ini" >/dev/null || die "the test's configuration is refused"
	"$bin" run -c "$work/a.ini" --quiet 2>>"$work/run.log" </dev/null &
	daemon_pid=$!
	up=
	for _ in $(seq 100); do
		kill -0 "$daemon_pid" 2>/dev/null || break
		if curl -sf "http://127.0.0.1:$port/api/v1/status" >/dev/null 2>&1; then
			up=1
			break
		fi
		sleep 0.1
	done
	[ -z "$up" ] || break
	kill -9 "$daemon_pid" 2>/dev/null || true
	wait "$daemon_pid" 2>/dev/null || true
	daemon_pid=
	rm -f "$work/a.db"*
done
[ -n "$up" ] || die "the logger does not answer on 127.0.0.1:$port"

# the replay's end: the last interval the logger reports stops changing; then the store as
# it is (records still in the intake file included) is copied by `powerlogger backup`, and
# that copy is what the page is compared with
last_start() {
	curl -sf "http://127.0.0.1:$port/api/v1/status" | "$py" -c 'import json, sys
li = json.load(sys.stdin)["meters"][0]["last_interval"]
print(li["start_ms"] if li else 0)'
}
prev=-1
for _ in $(seq $((dur > 1200 ? 300 : 60))); do
	cur=$(last_start) || die "/api/v1/status does not answer"
	[ "$cur" != "$prev" ] || [ "$cur" = 0 ] || break
	prev=$cur
	sleep 0.5
done
[ "$cur" = "$prev" ] || die "the replay did not end"
if [ "$dur" -gt 1200 ]; then
	# The screenshots' trace crosses midnight, and a logger that first looked at the day
	# before it held a record of the day before counts yesterday's records as today's (the
	# status's today_kwh then equals the register: reported). A restart looks again.
	kill -TERM "$daemon_pid"
	wait "$daemon_pid" || die "the logger did not stop cleanly"
	"$bin" run -c "$work/a.ini" --quiet 2>>"$work/run.log" </dev/null &
	daemon_pid=$!
	for _ in $(seq 100); do
		! curl -sf "http://127.0.0.1:$port/api/v1/status" >/dev/null 2>&1 || break
		sleep 0.1
	done
	cur=$(last_start) || die "the restarted logger does not answer"
fi
"$bin" backup -c "$work/a.ini" "$work/copy.db" >/dev/null || die "powerlogger backup failed"
n=$(sqlite3 -readonly "$work/copy.db" 'SELECT count(*) FROM records')
[ "$n" -gt 50 ] || die "only $n records committed"
echo "cli_dashboard: $n records in the store after $((SECONDS - t0)) s"

shots=()
[ -z "${PL_SCREENSHOTS:-}" ] || shots=(--shots "$PL_SCREENSHOTS")
"$py" "$src/tests/dashboard_check.py" --chromium "$chromium" \
	--url "http://127.0.0.1:$port/" --store "$work/copy.db" --meter house --sink nowhere \
	"${shots[@]}" ||
	die "the dashboard check failed"
kill -0 "$daemon_pid" 2>/dev/null || die "the logger died during the check"
kill -TERM "$daemon_pid"
wait "$daemon_pid" || die "the logger did not stop cleanly"
daemon_pid=
echo "cli_dashboard: ok ($((SECONDS - t0)) s)"
