#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# How `powerlogger run` meets a server that answers but not as InfluxDB does, end to end. The
# server is tests/fake_influx.py, a FAKE: a real influxd does not lack its own endpoint, does
# not redirect and never sends Retry-After.
#
# 1. issue 9, fault 2: a server without /api/v3/write_lp answers "400 unsupported path
#    requested". Nothing may be quarantined (the old code bisected down to single records and
#    quarantined all 15 in under a second); the records stay in the store, the failure is
#    reported loudly and retried slowly (a handful of requests, not one per record).
# 2. issue 9, fault 16: then a redirect: the log says where it pointed and that it is not
#    followed (it said "HTTP 302 ;").
# 3. Once the server answers properly, every record arrives, each exactly once.
# 4. issue 9, fault 15: "Retry-After: 999999" on a 500 parks delivery for at most 5 minutes,
#    and the log says the request was capped; SIGTERM still stops the daemon at once.
set -euo pipefail
bin=${1:?usage: cli_server_answers.sh PATH/TO/powerlogger}
src=${PL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
fill="$(dirname "$bin")/fillstore"
work=$(mktemp -d)
fake_pid=
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
die() { echo "cli_server_answers: $*" >&2; [ -f "$work/run.log" ] && sed 's/^/  run.log: /' "$work/run.log" >&2; exit 1; }
n=15

python3 "$src/tests/fake_influx.py" "$work/fake.port" </dev/null >"$work/fake.log" 2>&1 &
for _ in $(seq 1 100); do [ -f "$work/fake.port" ] && break; sleep 0.1; done
[ -f "$work/fake.port" ] || die "the fake server did not start"
fake_pid=$(cat "$work/fake.port.pid")
fake="http://127.0.0.1:$(cat "$work/fake.port")"
ctl() { curl -sf -XPOST "$fake/$1" --data-binary "$2" >/dev/null || die "fake: $1 $2"; }
writes() { curl -sf "$fake/_writes"; }
nwrites() { writes | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }

"$fill" "$work/store.db" "$work/all.lp" $n --sink v3 2>/dev/null
config() { # $1: store
  printf '[store]\npath = %s\n\n[influxdb v3]\nurl = %s\napi = 3\ndatabase = energy\ntoken = test-token\ntimeout_s = 2\nprecision = s\n' \
    "$1" "$fake"
}
config "$work/store.db" >"$work/run.ini"; chmod 600 "$work/run.ini"

# 1. the 400 that is not about the lines
ctl _default '{"status":400,"body":"400 unsupported path requested"}'
"$bin" run -c "$work/run.ini" --until-drained --quiet 2>"$work/run.log" &
pid=$!
sleep 6
kill -0 $pid 2>/dev/null || die "run gave up on a 400"
grep -q 'error: sink v3: HTTP 400 400 unsupported path requested; not an answer about the records' "$work/run.log" ||
  die "the 400 is not reported as a configuration error"
status=$("$bin" status -c "$work/run.ini" 2>&1) || die "status failed: $status"
grep -q "v3: .*backlog $n records.*; 0 quarantined" <<<"$status" ||
  die "after 6 s of 400s the records are not all kept: $status"
k=$(nwrites)
# slow backoff from 1 s, equal jitter: attempts at about 0, 0.5-1, 1.5-3, 3.5-7 s
[ "$k" -ge 2 ] && [ "$k" -le 6 ] || die "$k requests in 6 s of 400s (expected 2 to 6)"
echo "cli_server_answers: 6 s of '400 unsupported path requested': $k requests, $n records kept, 0 quarantined"

# 2. a redirect, then 3. the server answers properly
ctl _next "{\"status\":302,\"headers\":{\"Location\":\"$fake/v3/api/v3/write_lp?db=energy\"}}"
ctl _default '{"status":204}'
for _ in $(seq 1 80); do kill -0 $pid 2>/dev/null || break; sleep 0.5; done
kill -0 $pid 2>/dev/null && die "not drained 40 s after the server was right"
wait $pid || die "run exited $?"
pid=
grep -q "HTTP 302 redirect to $fake/v3/api/v3/write_lp?db=energy, not followed (set url to the final address)" "$work/run.log" ||
  die "the redirect is not reported with its target"
grep -q "delivering again" "$work/run.log" || die "the recovery is not reported"
writes | python3 -c '
import json, sys
w = json.load(sys.stdin)
got = [l for x in w if x["status"] == 204 for l in x["body"].split("\n") if l]
want = [l for l in open(sys.argv[1]).read().split("\n") if l]
if sorted(got) != sorted(want):
    sys.exit("delivered %d lines (%d distinct), expected %d" % (len(got), len(set(got)), len(want)))
if not any(x["status"] == 302 for x in w):
    sys.exit("the fake never answered the redirect")
' "$work/all.lp" || die "not every record arrived exactly once"
"$bin" status -c "$work/run.ini" | grep -q "v3: .*backlog 0 records.*; 0 quarantined" ||
  die "after the drain: $("$bin" status -c "$work/run.ini")"
echo "cli_server_answers: after a redirect and a proper answer, all $n records arrived once, none quarantined"

# 4. Retry-After: 999999 on a 500
"$fill" "$work/store2.db" "$work/all2.lp" 5 --sink v3 2>/dev/null
config "$work/store2.db" >"$work/run2.ini"; chmod 600 "$work/run2.ini"
ctl _default '{"status":500,"headers":{"Retry-After":"999999"},"body":"{\"error\":\"busy\"}"}'
"$bin" run -c "$work/run2.ini" --until-drained --quiet 2>"$work/run.log" &
pid=$!
for _ in $(seq 1 40); do grep -q "Retry-After" "$work/run.log" && break; sleep 0.25; done
grep -q 'HTTP 500 busy; keeping the 5 records of this batch and all after it, retrying with backoff (next in 300.0 s; the server asked to wait 999999 s (Retry-After), capped at 300 s)' "$work/run.log" ||
  die "the capped Retry-After is not reported"
t0=$(date +%s%N)
kill -TERM $pid
wait $pid || true
pid=
dt=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$dt" -lt 5000 ] || die "SIGTERM took $dt ms while waiting out a Retry-After"
echo "cli_server_answers: Retry-After 999999 waited 300 s at most (logged), SIGTERM took $dt ms"
