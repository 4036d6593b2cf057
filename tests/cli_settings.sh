#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A meter's settings changed between two runs on one store. The checkpoint carries the meter's
# and the detector's settings as they were; a restart used to resume with those and silently
# ignore the new `interval_s`, `imp_per_kwh` or `max_power_w`. Now the change takes effect at
# the next boundary both interval lengths share, is logged, and nothing is lost or doubled:
# the records never overlap, the energies add up to the register, the register goes on, and
# every pulse of the trace is counted exactly once.
set -uo pipefail
bin=${1:?usage: cli_settings.sh PATH/TO/powerlogger}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=${PL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
. "$src/tests/lib_cli.sh"

"$bin" simulate --duration 600 --rate 1000 --power 3000 --noise 20 --seed 7 \
  --out "$work/trace.csv" --truth "$work/truth.csv" --quiet || exit 1
# Every pulse the detector finds in the whole trace, with the first run's constant.
total=$("$bin" detect --quiet --imp-per-kwh 1000 --interval 20 --format lp --device m \
  "$work/trace.csv" | sed -n "s/.* value=\([0-9]*\)[i,].*/\1/p" | awk '{s+=$1} END {print s}')
[ "${total:-0}" -ge 400 ] || { echo "FAIL: only ${total:-0} reference pulses" >&2; exit 1; }

config() { # $1 interval, $2 imp/kWh
  cat >"$work/m.ini" <<INI
[store]
path = $work/m.db
[meter m]
source = file
file = $work/trace.csv
speed = 0
interval_s = $1
imp_per_kwh = $2
INI
}

# Records as "start length pulses energy_uwh register_uwh", in time order.
records() { sqlite3 "$work/m.db" "SELECT start_us, length_s, pulses, energy_uwh, register_uwh
  FROM records ORDER BY start_us" | tr '|' ' '; }

# 1. The interval changes from 20 s to 60 s after 190 s of input (inside an interval of both).
config 20 1000
expect 0 "$bin" run -q -c "$work/m.ini" --duration 190
config 60 1000
expect 0 "$bin" run -q -c "$work/m.ini" --until-drained
grep -q "interval_s 20 -> 60" "$work/err" ||
  fail "the interval change is not logged: $(head -c 300 "$work/err")"
records >"$work/r1"
python3 - "$work/r1" "$total" <<'PY' || fail "interval change: $(cat "$work/r1.why" 2>/dev/null)"
import sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1])]
total = int(sys.argv[2])
why = []
reg = None
for (s, ln, p, e, r), nxt in zip(rows, rows[1:] + [None]):
    if nxt and s + ln * 10**6 > nxt[0]:
        why.append("records overlap: %d+%ds and %d" % (s, ln, nxt[0]))
    if reg is not None and r != reg + e:
        why.append("register %d is not %d + %d at %d" % (r, reg, e, s))
    reg = r
lens = [ln for _, ln, *_ in rows]
if 20 not in lens or 60 not in lens:
    why.append("lengths seen: %s (want 20 s, then 60 s)" % sorted(set(lens)))
first60 = lens.index(60) if 60 in lens else len(lens)
if any(ln != 20 for ln in lens[:first60]) or any(ln != 60 for ln in lens[first60:]):
    why.append("lengths not 20 s then 60 s: %s" % lens)
if 60 in lens and rows[first60][0] % (60 * 10**6):
    why.append("first 60 s record not on a 60 s boundary")
pulses = sum(p for _, _, p, _, _ in rows)
if pulses != total:
    why.append("%d pulses recorded, the trace has %d" % (pulses, total))
if rows and rows[-1][4] != sum(e for _, _, _, e, _ in rows):
    why.append("register %d is not the sum of the energies" % rows[-1][4])
open(sys.argv[1] + ".why", "w").write("; ".join(why))
sys.exit(1 if why else 0)
PY
checks=$((checks + 1))

# 2. The meter constant changes from 1000 to 500 imp/kWh: from the switch on a pulse is 2 Wh,
#    the register goes on from where it was.
rm -f "$work"/m.db*
config 20 1000
expect 0 "$bin" run -q -c "$work/m.ini" --duration 190
reg1=$(sqlite3 "$work/m.db" "SELECT max(register_uwh) FROM records")
config 20 500
expect 0 "$bin" run -q -c "$work/m.ini" --until-drained
grep -q "imp_per_kwh 1000 -> 500" "$work/err" ||
  fail "the constant change is not logged: $(head -c 300 "$work/err")"
records >"$work/r2"
python3 - "$work/r2" "$total" "$reg1" <<'PY' || fail "constant change: $(cat "$work/r2.why" 2>/dev/null)"
import sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1])]
total, reg1 = int(sys.argv[2]), int(sys.argv[3])
why = []
# The first run stopped 190 s into the trace, inside the interval [180 s, 200 s): the new
# constant counts from 200 s, the next boundary; the records before carry 1 Wh a pulse.
after = [r for r in rows if r[0] >= 200 * 10**6]
for s, ln, p, e, r in rows:
    if s < 200 * 10**6 and e != p * 1000000:
        why.append("at %d: %d pulses carry %d uWh before the switch" % (s, p, e))
        break
if not any(r[4] == reg1 for r in rows):
    why.append("the first run's last register %d is gone" % reg1)
if not after:
    why.append("no record after the change")
for s, ln, p, e, r in after:
    if e != p * 2000000:
        why.append("at %d: %d pulses carry %d uWh (want 2 Wh each)" % (s, p, e))
        break
pulses = sum(r[2] for r in rows)
if pulses != total:
    why.append("%d pulses recorded, the trace has %d" % (pulses, total))
if rows and rows[-1][4] != sum(r[3] for r in rows):
    why.append("register %d is not the sum of the energies" % rows[-1][4])
open(sys.argv[1] + ".why", "w").write("; ".join(why))
sys.exit(1 if why else 0)
PY
checks=$((checks + 1))

echo "cli_settings: $checks checks, $fails failed"
[ "$fails" -eq 0 ]
