#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The web server of `powerlogger run` ([http] listen), against one running daemon whose meter
# replays a simulated trace (400 s of a 2500 W load) as fast as it can and then has no more
# input, so the store stands still while it is asked:
#  1. check-config prints the [http] keys; a bad price, a bad currency and a currency without
#     a price are reported as FILE:LINE.
#  2. /api/v1/status, /api/v1/energy (JSON and CSV, hour and day), /api/v1/power parse (python3)
#     and their numbers equal the store's (sqlite3 over the records: register, last interval,
#     sums of energy, pulses and records, the series' buckets); /metrics's energy counter is
#     the register in joules, and `promtool check metrics` (Debian's prometheus) finds nothing.
#  3. errors: 400 naming the parameter (step, from, format), 404 (meter, path), 405 (POST),
#     HEAD answered without a body, a 1 MB request line refused (414/431), not buffered.
#  4. a second daemon on the same address exits 1 with "cannot listen on ...: address in use".
# No fake: the real program, the real store, a real HTTP client (curl).
set -euo pipefail
bin=${1:?usage: cli_http.sh PATH/TO/powerlogger}
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "cli_http: FAIL: $*" >&2; exit 1; }
passed=0
ok() { passed=$((passed + 1)); }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"

# 1. the configuration
printf '[http]\nlisten = 127.0.0.1:1\nprice_per_kwh = cheap\ncurrency = "EU\n' >"$work/bad.ini"
"$bin" check-config "$work/bad.ini" >"$work/out" 2>&1 && fail "check-config accepted a bad price"
grep -q 'bad.ini:3: \[http\] price_per_kwh: .cheap. is not a price' "$work/out" ||
  fail "no FILE:LINE error for the price: $(cat "$work/out")"
grep -q 'bad.ini:4: \[http\] currency: ' "$work/out" || fail "no error for the currency: $(cat "$work/out")"
ok
printf '[meter m]\nsource = sim\n[http]\nlisten = 127.0.0.1:1\ncurrency = EUR\n' >"$work/warn.ini"
"$bin" check-config "$work/warn.ini" >"$work/out" 2>&1 || fail "a currency alone is no error"
grep -q 'warn.ini:5: .*currency: has no effect without price_per_kwh' "$work/out" ||
  fail "no warning for a currency without a price: $(cat "$work/out")"
ok

"$bin" simulate --duration 400 --rate 200 --power 2500 --seed 3 --out "$work/trace.csv" --quiet
cat >"$work/pl.ini" <<EOF
[store]
path = $work/pl.db
merge_s = 0

[meter house]
source = file
file = $work/trace.csv
speed = 0
imp_per_kwh = 1000
interval_s = 10

[http]
listen = 127.0.0.1:$port
price_per_kwh = 0.25
currency = EUR
EOF
"$bin" check-config "$work/pl.ini" >"$work/out" 2>&1 || fail "check-config: $(cat "$work/out")"
grep -q "^http: 127.0.0.1:$port, price 0.250000 EUR per kWh" "$work/out" ||
  fail "check-config does not show [http]: $(cat "$work/out")"
ok

# 2. one daemon, its input replayed at once; wait for the last interval to be in the store
"$bin" run -c "$work/pl.ini" --quiet 2>"$work/run.log" &
pid=$!
for _ in $(seq 100); do
  n=$(sqlite3 "$work/pl.db" "SELECT COUNT(*) FROM records" 2>/dev/null || echo 0)
  [ "$n" -ge 40 ] && curl -sf "$url/api/v1/status" -o "$work/status.json" 2>/dev/null &&
    python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["meters"][0]
sys.exit(0 if m["last_interval"] and m["last_interval"]["start_ms"] >= 390000 else 1)' \
      "$work/status.json" && break
  sleep 0.2
done
sleep 2.2 # one more fill of the live box (every 2 s): the last commit is in it
kill -0 "$pid" || fail "the logger stopped: $(cat "$work/run.log")"
curl -sf "$url/api/v1/status" -o "$work/status.json" || fail "GET /api/v1/status"
curl -sf "$url/metrics" -o "$work/metrics.txt" || fail "GET /metrics"
curl -sf "$url/api/v1/energy?step=hour&from=0&to=3600" -o "$work/hour.json" || fail "energy hour"
curl -sf "$url/api/v1/energy?step=day&from=1970-01-01T00:00:00Z&to=1970-01-03T00:00:00Z&format=csv" \
  -o "$work/day.csv" || fail "energy day csv"
curl -sf "$url/api/v1/power?from=0&to=400&step=30" -o "$work/power.json" || fail "power"
curl -sf "$url/api/v1/power?from=0&to=400&step=30&format=csv" -o "$work/power.csv" || fail "power csv"
# no step over 400000 s: the interval (10 s) would give 40000 points; the default is 20 s
curl -sf "$url/api/v1/power?from=0&to=400000" | grep -q '"step_s": 20,' ||
  fail "the default step does not fit 20000 points: $(curl -s "$url/api/v1/power?from=0&to=400000" | head -c 300)"
sqlite3 -separator ' ' "$work/pl.db" "SELECT start_us, pulses, energy_uwh, register_uwh, flags
  FROM records ORDER BY start_us" >"$work/records.txt"
python3 - "$work" <<'EOF' || fail "the answers differ from the store (above)"
import csv, json, sys
w = sys.argv[1]
recs = [tuple(map(int, l.split())) for l in open(w + "/records.txt")]
st = json.load(open(w + "/status.json"))
m = st["meters"][0]
errs = []
def eq(what, got, want):
    if got != want:
        errs.append(f"{what}: {got!r}, the store has {want!r}")
last = recs[-1]
eq("status register_kwh", round(m["register_kwh"] * 1e9), last[3])
eq("status last_interval start_ms", m["last_interval"]["start_ms"], last[0] // 1000)
eq("status last_interval pulses", m["last_interval"]["pulses"], last[1])
eq("status last_interval energy", round(m["last_interval"]["energy_kwh"] * 1e9), last[2])
eq("status price", (st["price_per_kwh"], st["currency"]), (0.25, "EUR"))
eq("status meter", (m["name"], m["imp_per_kwh"], m["interval_s"]), ("house", 1000, 10))
eq("status pulses this run", m["pulses"], sum(r[1] for r in recs))
if m["detector"]["state"] in ("", "edges") or m["detector"]["amplitude"] is None:
    errs.append(f"detector: {m['detector']}")
met = {}
for line in open(w + "/metrics.txt"):
    if not line.startswith("#"):
        k, v = line.rsplit(" ", 1)
        met[k] = v.strip()
eq("metrics energy joules", met.get('powerlogger_energy_joules_total{meter="house"}'),
   f"{last[3] * 36 // 10000}" + (f".{last[3] * 36 % 10000:04d}".rstrip("0").rstrip(".")
                                  if last[3] * 36 % 10000 else ""))
eq("metrics pulses", met.get('powerlogger_pulses_total{meter="house"}'), str(sum(r[1] for r in recs)))
if not any(k.startswith("powerlogger_build_info{version=") for k in met):
    errs.append("no powerlogger_build_info")
h = json.load(open(w + "/hour.json"))
eq("energy hour rows", len(h["rows"]), 1)
row = h["rows"][0]
eq("energy hour kwh", round(row["kwh"] * 1e9), sum(r[2] for r in recs))
eq("energy hour pulses", row["pulses"], sum(r[1] for r in recs))
eq("energy hour records", row["records"], len(recs))
eq("energy hour cost", row["cost"], round(sum(r[2] for r in recs) * 0.25 / 1e9, 4))
eq("energy hour start_ms", (row["start_ms"], row["end_ms"]), (0, 3600000))
eq("energy meter/step", (h["meter"], h["step"]), ("house", "hour"))
d = list(csv.reader(open(w + "/day.csv")))
eq("energy csv header", d[0], "start,end,kwh,cost,pulses,rejected,records,covered_s,gap_records,peak_w".split(","))
eq("energy csv rows", len(d), 3)
eq("energy csv day 1 kwh", round(float(d[1][2]) * 1e9), sum(r[2] for r in recs))
eq("energy csv day 2 records", d[2][6], "0")
p = json.load(open(w + "/power.json"))
buckets = {}
for r in recs:
    if r[0] < 400_000_000:
        b = r[0] // 30_000_000 * 30_000
        buckets[b] = buckets.get(b, 0) + r[2]
eq("power points", [q[0] for q in p["points"]], sorted(buckets))
eq("power step", p["step_s"], 30)
full = [q for q in p["points"] if q[3] == 0]
if not full or any(abs(q[1] - 2500) > 400 for q in full[1:]):
    errs.append(f"power: not about 2500 W: {p['points'][:5]}")
pc = list(csv.reader(open(w + "/power.csv")))
eq("power csv", (pc[0], len(pc) - 1), (["start", "avg_w", "peak_w", "gap"], len(p["points"])))
for e in errs:
    print("cli_http:", e, file=sys.stderr)
sys.exit(1 if errs else 0)
EOF
ok
if command -v promtool >/dev/null; then
  promtool check metrics <"$work/metrics.txt" >"$work/prom.out" 2>&1 ||
    fail "promtool check metrics: $(cat "$work/prom.out")"
  ok
else
  echo "cli_http: promtool not installed (Debian: prometheus): that check is left out"
fi

# 3. errors
code() { curl -s -o "$work/body" -w '%{http_code}' "$@"; }
[ "$(code "$url/api/v1/energy?step=week")" = 400 ] && grep -q '"error": "step:' "$work/body" ||
  fail "step=week: $(cat "$work/body")"
[ "$(code "$url/api/v1/power?from=yesterday")" = 400 ] && grep -q '"error": "from:' "$work/body" ||
  fail "from=yesterday: $(cat "$work/body")"
[ "$(code "$url/api/v1/energy?format=xml")" = 400 ] && grep -q '"error": "format:' "$work/body" ||
  fail "format=xml: $(cat "$work/body")"
[ "$(code "$url/api/v1/energy?meter=garage")" = 404 ] && grep -q "no meter 'garage'" "$work/body" ||
  fail "meter=garage: $(cat "$work/body")"
[ "$(code "$url/api/v1/nothing")" = 404 ] || fail "/api/v1/nothing is not 404"
[ "$(code "$url/etc/passwd")" = 404 ] || fail "/etc/passwd is not 404"
[ "$(code -X POST -d x=1 "$url/metrics")" = 405 ] || fail "POST is not 405"
[ "$(code -I "$url/api/v1/status")" = 200 ] || fail "HEAD /api/v1/status"
[ "$(code "$url/")" = 200 ] && grep -qi '<html' "$work/body" || fail "/ is no page"
curl -sI "$url/" | grep -qi "^Content-Security-Policy: default-src 'self'" || fail "/ has no CSP"
ok
python3 - "$port" <<'EOF' || fail "a 1 MB request line was not refused"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
try:
    s.sendall(b"GET /" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
except OSError:
    pass  # refused while sending: also fine
ans = s.recv(100)
sys.exit(0 if ans.startswith((b"HTTP/1.1 414", b"HTTP/1.1 431")) or ans == b"" else 1)
EOF
curl -sf "$url/api/v1/status" >/dev/null || fail "the server does not answer after the long line"
ok

# 4. the address taken
sed "s|$work/pl.db|$work/other.db|" "$work/pl.ini" >"$work/other.ini"
set +e
"$bin" run -c "$work/other.ini" --quiet >"$work/out" 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || fail "a second logger on the same address exited $rc"
grep -q "cannot listen on 127.0.0.1:$port: address in use" "$work/out" ||
  fail "no clear message for the address in use: $(cat "$work/out")"
ok
kill -0 "$pid" || fail "the logger stopped"
kill "$pid"
wait "$pid" || fail "the logger did not stop cleanly: $(cat "$work/run.log")"
pid=
echo "cli_http: $passed passed, 0 failed"
