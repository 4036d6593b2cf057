#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# issue 13: a REAL Prometheus (Debian's prometheus 2.x, private, loopback: scripts/prometheus.sh,
# scrape every second, its TSDB in the test's directory) scraping /metrics of `powerlogger run`
# with [http], and REAL promtool on what the logger serves. The meter replays a 40 s trace (2.5
# pulses a second, 1 s intervals) at 4x, its pulses counted at 375 imp/kWh so that the register
# is no round number of joules (2666666.67 uWh a pulse); after its end the logger stays up (a
# file source that is over leaves the daemon running, without --until-drained), so its last
# value is scraped again and again.
#   a. promtool check metrics: the body of /metrics has no lint problem (promtool's exit status
#      and its output both), and it has every metric the issue names, each with HELP and TYPE.
#   b. Prometheus's view of the target: health "up", no last error.
#   c. while pulses come in, powerlogger_energy_joules_total{meter="house"} as Prometheus
#      stored it (a range query over the replay) rises: never down, at least 3 distinct
#      increasing values before the end of the input.
#   d. once the input is over: the counter Prometheus holds is the store's register
#      (register_uwh of the newest record, from `powerlogger backup`) x 0.0036 J, exactly (as
#      a double: what Prometheus keeps), and so is the value in the /metrics body (as a decimal).
#   e. powerlogger_build_info carries the version `powerlogger --version` prints.
#   f. an InfluxDB sink whose server is not there: powerlogger_sink_failing 1, its backlog the
#      store's number of records, nothing delivered, nothing quarantined.
# Skipped (exit 77, ctest's SKIP_RETURN_CODE) only when prometheus or promtool is not
# installed at all.
set -euo pipefail
bin=${1:?usage: cli_prometheus.sh PATH/TO/powerlogger}
src=${PL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
name=cli_prometheus
for p in prometheus promtool; do
	if ! command -v "$p" >/dev/null; then
		echo "$name: SKIP: $p is not installed (bash scripts/install-deps.sh installs prometheus)"
		exit 77
	fi
done
work=$(mktemp -d)
daemon_pid=
export PL_PROM_DIR=$work/prom
cleanup() {
	[ -z "$daemon_pid" ] || kill -9 "$daemon_pid" 2>/dev/null || true
	bash "$src/scripts/prometheus.sh" stop >/dev/null 2>&1 || true
	if [ -n "${PL_KEEP_WORK:-}" ]; then echo "$name: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
die() {
	echo "$name: FAIL: $*" >&2
	tail -n 15 "$work/run.log" 2>/dev/null | sed 's/^/  run.log: /' >&2 || true
	tail -n 5 "$PL_PROM_DIR/prometheus.log" 2>/dev/null | sed 's/^/  prometheus.log: /' >&2 ||
		true
	exit 1
}
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# prom_query QUERY: the JSON answer of Prometheus's /api/v1/query
prom_query() { curl -sS -G --max-time 5 "$prom/api/v1/query" --data-urlencode "query=$1"; }

secs=40 speed=4
"$bin" simulate --duration $secs --rate 1000 --power 9000 --noise 20 --seed 13 \
	--out "$work/trace.csv" --quiet
port=$(free_port)
absent=$(free_port) # a sink whose server is not there: it fails, its backlog grows
cat >"$work/p.ini" <<INI
[store]
path = $work/s.db

[meter house]
source = file
file = $work/trace.csv
speed = $speed
imp_per_kwh = 375
interval_s = 1

[influxdb dead]
url = http://127.0.0.1:$absent
database = x
timeout_s = 1

[http]
listen = 127.0.0.1:$port
INI
"$bin" check-config "$work/p.ini" >/dev/null || die "the test's configuration is refused"

# Prometheus first, and until it has both targets in its scrape loops (its discovery hands
# them over a few seconds after the start): then the replay is scraped from its beginning.
prom=$(bash "$src/scripts/prometheus.sh" start "127.0.0.1:$port" 2>/dev/null) ||
	die "prometheus did not start"
targets() { curl -sS --max-time 5 "$prom/api/v1/targets?state=active"; }
for _ in $(seq 150); do
	n=$(targets | python3 -c 'import json, sys
print(len(json.load(sys.stdin)["data"]["activeTargets"]))') || n=0
	[ "$n" -ge 2 ] && break
	sleep 0.1
done
[ "$n" -ge 2 ] || die "prometheus has not taken up its 2 targets within 15 s"

t_start=$(date +%s.%N)
"$bin" run -c "$work/p.ini" 2>"$work/run.log" &
daemon_pid=$!
for _ in $(seq 100); do
	curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$port/metrics" && break
	kill -0 "$daemon_pid" 2>/dev/null || die "the logger exited at its start"
	sleep 0.1
done
curl -sf --max-time 2 -o "$work/m0.txt" "http://127.0.0.1:$port/metrics" ||
	die "no answer on http://127.0.0.1:$port/metrics within 10 s of the start"

# a. promtool on the body, as served (the content type too)
curl -sS --max-time 5 -D "$work/m.hdr" -o "$work/m1.txt" "http://127.0.0.1:$port/metrics"
grep -qi '^content-type: text/plain; version=0.0.4' "$work/m.hdr" ||
	die "/metrics: not Prometheus's text format 0.0.4: $(grep -i '^content-type' "$work/m.hdr")"
rc=0
promtool check metrics <"$work/m1.txt" >"$work/promtool.out" 2>&1 || rc=$?
if [ $rc -ne 0 ] || [ -s "$work/promtool.out" ]; then
	sed 's/^/  promtool: /' "$work/promtool.out" >&2
	die "promtool check metrics finds problems in /metrics (exit $rc)"
fi
for m in powerlogger_energy_joules_total powerlogger_power_watts powerlogger_pulses_total \
	powerlogger_rejected_pulses_total powerlogger_sampling_gaps_total \
	powerlogger_detector_noise powerlogger_detector_amplitude powerlogger_build_info; do
	base=${m%_total}
	grep -q "^# HELP $base " "$work/m1.txt" || grep -q "^# HELP $m " "$work/m1.txt" ||
		die "/metrics: no HELP for $m"
	grep -q "^# TYPE $base " "$work/m1.txt" || grep -q "^# TYPE $m " "$work/m1.txt" ||
		die "/metrics: no TYPE for $m"
	grep -q "^$m{[^}]*meter=\"house\"\|^$m{version=\|^$m{[^}]*version=" "$work/m1.txt" ||
		die "/metrics: no sample of $m (for meter \"house\", or with its version)"
done
echo "$name: promtool check metrics: clean ($(grep -vc '^#' "$work/m1.txt") samples)"

# e. the build's version
version=$("$bin" --version | awk 'NR == 1 { print $2 }')
grep -q "^powerlogger_build_info{[^}]*version=\"$version\"[^}]*} 1$" "$work/m1.txt" ||
	die "/metrics: powerlogger_build_info has not version=\"$version\" with the value 1:" \
		"$(grep '^powerlogger_build_info' "$work/m1.txt")"

# d needs the end of the input: the replay lasts secs/speed seconds of wall time.
end_wall=$(python3 -c "print($t_start + $secs / $speed)")
while python3 -c "import sys,time; sys.exit(0 if time.time() < $end_wall + 2 else 1)"; do
	kill -0 "$daemon_pid" 2>/dev/null || die "the logger exited during the replay"
	sleep 0.5
done
"$bin" backup -c "$work/p.ini" "$work/b1.db" >/dev/null || die "powerlogger backup failed"
reg=$(sqlite3 "$work/b1.db" "SELECT register_uwh FROM records r JOIN meters m ON
	m.id = r.meter_id WHERE m.name = 'house' ORDER BY seq DESC LIMIT 1")
nrec=$(sqlite3 "$work/b1.db" "SELECT COUNT(*) FROM records")
[ -n "$reg" ] && [ "$reg" -gt 0 ] || die "no register in the store after the replay"
[ "$nrec" -ge $((secs - 2)) ] || die "only $nrec records of a $secs s trace with 1 s intervals"

# b, d: Prometheus's latest value equals the register (a few scrapes after the end)
want=$(python3 -c "from decimal import Decimal as D; print(D($reg) * D('0.0036'))")
q='powerlogger_energy_joules_total{meter="house",job="powerlogger"}'
# same_number A B: true when the two decimals are the same double (what Prometheus keeps)
same_number() { python3 -c 'import sys; sys.exit(float(sys.argv[1]) != float(sys.argv[2]))' "$@"; }
got=none
for _ in $(seq 20); do
	got=$(prom_query "$q" | python3 -c 'import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if len(r) == 1 else "none")')
	[ "$got" != none ] && same_number "$got" "$want" && break
	sleep 0.5
done
[ "$got" != none ] || die "prometheus has no (single) series $q"
same_number "$got" "$want" ||
	die "prometheus holds $got J for house; the store's register is $reg uWh = $want J"
curl -sS --max-time 5 "http://127.0.0.1:$port/metrics" >"$work/m2.txt"
body=$(sed -n 's/^powerlogger_energy_joules_total{meter="house"} \([^ ]*\).*/\1/p' "$work/m2.txt")
# and the body's decimal is the register's exactly, as a decimal
python3 -c 'import sys; from decimal import Decimal as D
sys.exit(D(sys.argv[1]) != D(sys.argv[2]))' "${body:-none}" "$want" 2>/dev/null ||
	die "/metrics says '$body' J for house; the store's register is $reg uWh = $want J"
# the input was over: a second look at the store finds the same register
"$bin" backup -c "$work/p.ini" "$work/b2.db" >/dev/null || die "powerlogger backup failed"
reg2=$(sqlite3 "$work/b2.db" "SELECT MAX(register_uwh) FROM records")
[ "$reg2" = "$reg" ] || die "the register moved after the end of the input ($reg, then $reg2)"
# the sink that cannot deliver: failing, every record of the store in its backlog
sample() { # $1 metric, $2 a label that must be there: the value of the first such sample
	sed -n "s/^$1{\([^}]*,\)\{0,1\}$2[,}].* \([^ ]*\)\$/\2/p" "$work/m2.txt" | head -n1
}
failing=$(sample powerlogger_sink_failing 'sink="dead"')
backlog=$(sample powerlogger_sink_backlog_records 'sink="dead"')
delivered=$(sample powerlogger_sink_delivered_records_total 'sink="dead"')
[ "$failing" = 1 ] || die "powerlogger_sink_failing{sink=\"dead\"} is '$failing', not 1"
[ "$backlog" = "$nrec" ] ||
	die "powerlogger_sink_backlog_records{sink=\"dead\"} is '$backlog'; the store has $nrec records"
[ "$delivered" = 0 ] || die "powerlogger_sink_delivered_records_total{sink=\"dead\"}: '$delivered'"
grep -q '^powerlogger_sink_quarantined_records_total{[^}]*sink="dead"[^}]*} 0$' "$work/m2.txt" ||
	die "no powerlogger_sink_quarantined_records_total{sink=\"dead\"} 0"
echo "$name: sink dead: failing $failing, backlog $backlog = the store's $nrec records"
echo "$name: after the replay: prometheus $got J = /metrics $body J = register $reg uWh x 0.0036"

health=$(targets | python3 -c '
import json, sys
for t in json.load(sys.stdin)["data"]["activeTargets"]:
    if t["labels"]["job"] == "powerlogger":
        print(t["health"], t["lastError"] or "-", t["scrapeUrl"])')
[ "${health%% *}" = up ] || die "prometheus's target: $health (not up)"
echo "$name: prometheus's target: $health"

# c. the counter as Prometheus stored it over the replay: rising, never down
range=$(python3 -c "import time; print(int(time.time() - $t_start) + 2)")
prom_query "${q}[${range}s]" >"$work/range.json"
python3 - "$work/range.json" "$end_wall" "$want" <<'PY' ||
	die "the counter did not rise as it should"
import json, sys
res = json.load(open(sys.argv[1]))["data"]["result"]
end, want = float(sys.argv[2]), float(sys.argv[3])
if len(res) != 1:
    sys.exit(f"{len(res)} series in the range query, not 1")
vals = [(float(t), float(v)) for t, v in res[0]["values"]]
down = [(a, b) for a, b in zip(vals, vals[1:]) if b[1] < a[1]]
if down:
    sys.exit(f"the counter went down: {down[0]}")
during = sorted({v for t, v in vals if t < end - 0.5})
print(f"cli_prometheus: {len(vals)} samples scraped, {len(during)} distinct values during "
      f"the input: {', '.join(f'{v:g}' for v in during[:8])}{' ...' if len(during) > 8 else ''}"
      f"; last {vals[-1][1]:g} J")
if len(during) < 3:
    sys.exit(f"only {len(during)} distinct values while the pulses came in (want 3 or more)")
if vals[-1][1] != want:
    sys.exit(f"the last sample is {vals[-1][1]}, not {want}")
PY

kill -TERM "$daemon_pid"
for _ in $(seq 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$daemon_pid" 2>/dev/null && die "the logger did not stop within 10 s of SIGTERM"
rc=0
wait "$daemon_pid" || rc=$?
daemon_pid=
[ $rc -eq 0 ] || die "the logger exited $rc on SIGTERM"
echo "$name: ok"
