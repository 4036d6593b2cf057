#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Hostile device names through the real encoder into a real InfluxDB (Debian's influxd, started
# privately on loopback by scripts/influxd.sh), read back with the query API (issue 9). Every
# name `powerlogger detect --device` accepts must come back from SHOW TAG VALUES and SELECT ...
# GROUP BY byte for byte, all of them written in ONE batch (so that one line that confused
# InfluxDB's batch splitter would take its neighbours down with it, as `\ \="` once did); every
# name it refuses must be refused with exit 2 and no output.
set -euo pipefail
bin=${1:?usage: cli_escape.sh PATH/TO/powerlogger}
src=${PL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
work=$(mktemp -d)
export PL_INFLUX_DIR="$work/influx"
mkdir -p "$PL_INFLUX_DIR"
cleanup() { bash "$src/scripts/influxd.sh" stop >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

# Names every InfluxDB stores as given: the protocol's specials, quotes, '#', blanks at the
# ends, backslashes before ordinary characters, non-ASCII text and an emoji.
accepted=(
  'plain' 'a,b' 'a=b' 'a b' ' lead' 'trail ' ',' '=' ' ' '"' '""' 'say "hi"' "it's"
  '#1' 'a\b' 'x\y\z' '\x' 'C:\Users\meter' 'a\b,c=d e' '\#'
  $'Z\xc3\xa4hler Keller' $'\xe2\x82\xac/kWh' $'\xf0\x9f\x92\xa1 lamp' $'\xe6\xb0\xb4'
  'compiled=Jun 30 2019'
)
# Names no line can carry so that InfluxDB 1.x/2.x and 3.x read them back alike.
refused=(
  'foo\,bar' 'east\ ' 'dev\' '\ \="' 'a\\b' 'a\=b' 'a\"b' '\' ''
  $'a\tb' $'a\nb' $'a\rb' $'caf\xe9' $'\xc0\xaf' $'x\x01y'
)

url=$(bash "$src/scripts/influxd.sh" start 2>/dev/null)
curl -sS -XPOST "$url/query" --data-urlencode "q=CREATE DATABASE esc" >/dev/null

# A few pulses: each name gives the same few interval lines.
"$bin" simulate --duration 60 --rate 1000 --power 3000 --noise 20 --seed 3 \
  --out "$work/t.csv" --truth /dev/null --quiet

: >"$work/batch.lp"
: >"$work/names"
for name in "${accepted[@]}"; do
  if ! "$bin" detect --quiet --imp-per-kwh 1000 --interval 20 --format lp --device "$name" \
    "$work/t.csv" >"$work/one.lp" 2>"$work/err"; then
    fail "--device $(printf %q "$name") refused: $(cat "$work/err")"
    continue
  fi
  cat "$work/one.lp" >>"$work/batch.lp"
  printf '%s\0' "$name" >>"$work/names"
done
for name in "${refused[@]}"; do
  rc=0
  "$bin" detect --quiet --imp-per-kwh 1000 --interval 20 --format lp --device "$name" \
    "$work/t.csv" >"$work/one.lp" 2>"$work/err" || rc=$?
  [ "$rc" = 2 ] || fail "--device $(printf %q "$name") exited $rc, not 2"
  [ ! -s "$work/one.lp" ] || fail "--device $(printf %q "$name") wrote: $(head -c 200 "$work/one.lp")"
  grep -q -- "--device" "$work/err" || fail "--device $(printf %q "$name"): no clear message"
done
per=$("$bin" detect --quiet --imp-per-kwh 1000 --interval 20 --format lp --device x "$work/t.csv" | wc -l)
[ "$per" -ge 3 ] || fail "only $per lines per name"

# One batch with every line; the lines are shuffled so that each name has other names'
# lines before and after it.
shuf --random-source=<(yes) "$work/batch.lp" >"$work/shuffled.lp"
code=$(curl -sS -o "$work/write.out" -w '%{http_code}' -XPOST "$url/write?db=esc&precision=s" \
  --data-binary @"$work/shuffled.lp")
[ "$code" = 204 ] || fail "the batch was answered $code: $(head -c 300 "$work/write.out")"

curl -sS -G "$url/query" --data-urlencode "db=esc" \
  --data-urlencode 'q=SHOW TAG VALUES FROM energy_meter_reading WITH KEY = "device"' \
  >"$work/tags.json"
curl -sS -G "$url/query" --data-urlencode "db=esc" \
  --data-urlencode 'q=SELECT count(value) FROM energy_meter_reading GROUP BY device' \
  >"$work/counts.json"
python3 - "$work/names" "$work/tags.json" "$work/counts.json" "$per" <<'PY' || fails=$((fails + 1))
import json, sys
names = open(sys.argv[1], "rb").read().split(b"\0")[:-1]
want = sorted(n.decode("utf-8") for n in names)
tags = json.load(open(sys.argv[2]))["results"][0]["series"][0]["values"]
got = sorted(v[1] for v in tags)
bad = 0
if got != want:
    print("FAIL: SHOW TAG VALUES differs", file=sys.stderr)
    print("  missing:", [n for n in want if n not in got], file=sys.stderr)
    print("  extra:  ", [n for n in got if n not in want], file=sys.stderr)
    bad = 1
counts = {s["tags"]["device"]: s["values"][0][1]
          for s in json.load(open(sys.argv[3]))["results"][0]["series"]}
for n in want:
    if counts.get(n) != int(sys.argv[4]):
        print("FAIL: device %r has %r points, not %s" % (n, counts.get(n), sys.argv[4]),
              file=sys.stderr)
        bad = 1
print("cli_escape: %d names read back byte for byte, %d points each" % (len(want), int(sys.argv[4])))
sys.exit(bad)
PY

echo "cli_escape: ${#accepted[@]} accepted, ${#refused[@]} refused names, $fails failures"
[ "$fails" = 0 ]
