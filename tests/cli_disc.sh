#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Ferraris (disc) meters: a reflective sensor's slow dip per revolution of the disc's mark
# (tests/disc_trace.py models it: a stepping household load, the disc's speed, the mark seen
# through the sensor's blurred spot, ambient IR, flicker, noise), sampled at 10, 25 and 100 Hz.
# - `detect --meter-type disc` finds every revolution, exactly once, and nothing else, over
#   three seeds at each rate (tests/disc_match.py: each revolution's mark centre inside one
#   pulse with status ok, no pulse left over);
# - with the LED defaults (a 400 ms limit) the same traces are not counted right: the
#   difference is printed and must be there;
# - `--max-width-ms` still overrides the type's default; --state parts of a disc trace give
#   one run's pulses, and a state of the LED type is refused for a disc run;
# - `powerlogger run` with a `source = file` meter of `meter_type = disc` stores interval
#   records whose pulses are the revolutions and whose energy is revolutions / rev_per_kwh;
# - the configuration's meter_type and rev_per_kwh are checked (FILE:LINE messages).
#   bash tests/cli_disc.sh /path/to/powerlogger
set -uo pipefail
PL=$(realpath "${1:?usage: cli_disc.sh /path/to/powerlogger}")
SRC=${PL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
work=$(mktemp -d "${TMPDIR:-/tmp}/cli_disc.XXXXXX")
trap 'rm -rf "$work"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
cd "$work"
gen() { python3 "$SRC/tests/disc_trace.py" "$@"; }
match() { python3 "$SRC/tests/disc_match.py" "$@"; }

# rate, the meter's rev/kWh, seed; a household's load between 400 W and 1.5 kW
n=0
led_wrong=0
for c in "10 75" "25 120" "100 375"; do
  set -- $c
  for seed in 1 2 3; do
    gen --seed "$seed" --rate "$1" --rev-per-kwh "$2" --min-w 400 --max-w 1500 --duration 600 \
      --out t.csv --truth t.truth >/dev/null || { fail "disc_trace.py failed"; continue; }
    "$PL" detect -q --meter-type disc --imp-per-kwh "$2" t.csv >disc.out ||
      fail "detect --meter-type disc exited $?"
    if got=$(match t.truth disc.out); then
      n=$((n + 1))
    else
      fail "$1 Hz, $2 rev/kWh, seed $seed, --meter-type disc: $got"
    fi
    "$PL" detect -q --imp-per-kwh "$2" t.csv >led.out || fail "detect (led) exited $?"
    if led=$(match t.truth led.out); then
      fail "$1 Hz, $2 rev/kWh, seed $seed: the LED defaults count this disc right ($led): the test shows nothing"
    else
      led_wrong=$((led_wrong + 1))
    fi
    echo "  $1 Hz, $2 rev/kWh, seed $seed: disc: $got; led defaults: $led"
  done
done

# --max-width-ms overrides the type's 10 s (here down to the LED's 400 ms: the same output)
gen --seed 4 --rate 25 --rev-per-kwh 75 --min-w 400 --max-w 1500 --out t.csv --truth t.truth >/dev/null
"$PL" detect -q --imp-per-kwh 75 t.csv >led.out
"$PL" detect -q --meter-type disc --max-width-ms 400 --imp-per-kwh 75 t.csv >over.out
cmp -s led.out over.out || fail "--max-width-ms 400 with --meter-type disc differs from the LED defaults"
"$PL" detect -q --max-width-ms 400 --meter-type disc --imp-per-kwh 75 t.csv >over2.out
cmp -s over.out over2.out || fail "--max-width-ms before or after --meter-type differs"

# --state: the trace in three parts (cut inside dips too) gives one run's pulses
"$PL" detect --meter-type disc --imp-per-kwh 75 t.csv >one.out 2>sum.txt
grep -q "($(wc -l <one.out) revolutions at 75 rev/kWh)" sum.txt ||
  fail "the summary does not count revolutions: $(cat sum.txt)"
total=$(($(wc -l <t.csv) - 1))
awk -F, 'NR == 1 || (NR > 1 && $1 < 300)' t.csv >a.csv
awk -F, 'NR == 1 || ($1 >= 300 && $1 < 600.1)' t.csv >b.csv
awk -F, 'NR == 1 || $1 >= 600.1' t.csv >c.csv
[ $(($(wc -l <a.csv) + $(wc -l <b.csv) + $(wc -l <c.csv) - 3)) = "$total" ] || fail "parts lost samples"
rm -f s.state
"$PL" detect -q --meter-type disc --imp-per-kwh 75 --state s.state a.csv >parts.out &&
  "$PL" detect -q --meter-type disc --imp-per-kwh 75 --state s.state b.csv >>parts.out &&
  "$PL" detect -q --meter-type disc --imp-per-kwh 75 --state s.state --end c.csv >>parts.out ||
  fail "detect --state parts failed"
cmp -s one.out parts.out || fail "the disc trace in parts differs from one run"
rm -f l.state
"$PL" detect -q --imp-per-kwh 75 --state l.state a.csv >/dev/null
"$PL" detect -q --meter-type disc --imp-per-kwh 75 --state l.state b.csv >/dev/null 2>err.txt
rc=$?
[ "$rc" = 2 ] && grep -q "other options" err.txt ||
  fail "a state of the LED type taken for a disc run (exit $rc: $(head -c 200 err.txt))"
"$PL" detect --meter-type ferraris t.csv >/dev/null 2>err.txt
rc=$?
[ "$rc" = 2 ] && grep -q "led or disc" err.txt || fail "--meter-type ferraris: exit $rc"

# the daemon: a disc meter replaying the trace, 60 s records
revs=$(grep -vc '^#' t.truth)
cat >disc.ini <<INI
[store]
path = $work/disc.db
[meter disc]
source = file
file = $work/t.csv
speed = 0
meter_type = disc
rev_per_kwh = 75
interval_s = 60
INI
"$PL" check-config disc.ini >cc.out 2>cc.err || fail "check-config disc.ini: $(head -c 300 cc.err)"
grep -q "disc, 75 rev/kWh" cc.out || fail "check-config does not show the disc: $(cat cc.out)"
[ ! -s cc.err ] || fail "check-config warned: $(cat cc.err)"
timeout 60 "$PL" run -q -c disc.ini --until-drained >run.out 2>run.err || fail "run: $(head -c 300 run.err)"
read -r recs pulses uwh < <(sqlite3 -separator ' ' disc.db \
  "SELECT count(*), sum(pulses), sum(energy_uwh) FROM records")
[ "$pulses" = "$revs" ] || fail "run: $pulses pulses stored, the trace has $revs revolutions"
# the records' energy: each revolution 1/75 kWh = 13333333.3 uWh, to a micro-watt-hour
want=$((revs * 1000000000 / 75))
[ $((uwh - want)) -ge -1 ] && [ $((uwh - want)) -le 1 ] ||
  fail "run: energy $uwh uWh, $revs revolutions at 75 rev/kWh are $want"
bad=$(sqlite3 disc.db "SELECT count(*) FROM records WHERE energy_uwh * 75 > pulses * 1000000000 + 75 OR energy_uwh * 75 < pulses * 1000000000 - 75")
[ "$bad" = 0 ] || fail "run: $bad records whose energy is not pulses / 75 kWh"

# the type changed since the last run: the checkpoint's detector (a disc's) is not kept
sed 's/^meter_type = disc$/meter_type = led/; s/^rev_per_kwh = 75$/imp_per_kwh = 75/' disc.ini >led.ini
timeout 60 "$PL" run -q -c led.ini --until-drained >run.out 2>run.err || fail "run (led): $(head -c 300 run.err)"
grep -q "meter disc: meter_type changed since the last run: the detector learns the signal again" \
  run.err || fail "run: a changed meter_type not taken up: $(head -c 300 run.err)"

# the configuration's checks
cat >bad.ini <<INI
[meter a]
source = file
file = $work/t.csv
meter_type = disc
[meter b]
source = file
file = $work/t.csv
rev_per_kwh = 75
[meter c]
source = file
file = $work/t.csv
meter_type = disc
rev_per_kwh = 75
imp_per_kwh = 75
[meter d]
source = file
file = $work/t.csv
meter_type = ferraris
INI
"$PL" check-config bad.ini >/dev/null 2>bad.err
rc=$?
[ "$rc" = 2 ] || fail "check-config bad.ini exited $rc"
for want in "bad.ini:1: \[meter a\]: missing key 'rev_per_kwh'" \
  "bad.ini:8: \[meter b\] rev_per_kwh: applies to meter_type = disc only" \
  "bad.ini:14: \[meter c\] imp_per_kwh: the meter constant is already set at line 13" \
  "bad.ini:18: \[meter d\] meter_type: 'ferraris' is not one of led|disc"; do
  grep -q "$want" bad.err || fail "check-config: no '$want' in: $(cat bad.err)"
done

if [ "$fails" -gt 0 ]; then
  echo "cli_disc: $fails failures" >&2
  exit 1
fi
echo "cli_disc: $n of 9 disc traces exact with --meter-type disc, $led_wrong of 9 wrong with the" \
  "LED defaults; parts, daemon ($revs revolutions, $uwh uWh in $recs records), config checked"
