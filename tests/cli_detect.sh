#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Tests of `powerlogger detect` and the program's command dispatch, run by ctest as
#   bash tests/cli_detect.sh /path/to/powerlogger
# Usage errors and bad input must exit 2 with a message (FILE:LINE for bad lines); a small
# hand-made trace with three obvious pulses must give exactly three pulses, and interval
# records as CSV and line protocol. Prints every failed check; exits 1 if any failed.
set -u

PL=${1:?usage: cli_detect.sh /path/to/powerlogger}
work=$(mktemp -d "${TMPDIR:-/tmp}/cli_detect.XXXXXX")
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/lib_cli.sh"

# stderr_has TEXT: the last command's stderr contains TEXT.
stderr_has() {
  grep -qF -- "$1" "$work/err" || fail "stderr lacks '$1'; it was: $(head -c 300 "$work/err")"
}

stdout_empty() {
  [ ! -s "$work/out" ] || fail "stdout not empty: $(head -c 200 "$work/out")"
}

# ---- the program's frame -------------------------------------------------------------------

expect 2 "$PL" && stderr_has "usage: powerlogger <command>"
expect 0 "$PL" --help && grep -q "detect" "$work/out" || fail "--help does not list detect"
expect 0 "$PL" --version && grep -q "^powerlogger " "$work/out" || fail "--version output"
expect 2 "$PL" frobnicate && stderr_has "unknown command 'frobnicate'"
expect 2 "$PL" detcet && stderr_has "Did you mean 'powerlogger detect'?"
expect 2 "$PL" --bogus && stderr_has "unknown option '--bogus'"
expect 0 "$PL" help detect && grep -q "usage: powerlogger detect" "$work/out" ||
  fail "help detect"
expect 0 "$PL" detect --help && grep -q "Examples:" "$work/out" || fail "detect --help"

# ---- usage errors ----------------------------------------------------------------------------

printf '0,1\n0.001,2\n' >"$work/tiny.csv"
expect 2 "$PL" detect && stderr_has "missing FILE"
expect 2 "$PL" detect "$work/tiny.csv" "$work/tiny.csv" && stderr_has "one FILE only"
expect 2 "$PL" detect --nope "$work/tiny.csv" && stderr_has "unknown option '--nope'"
expect 2 "$PL" detect "$work/tiny.csv" --imp-per-kwh && stderr_has "needs a value"
expect 2 "$PL" detect --imp-per-kwh abc "$work/tiny.csv" && stderr_has "needs a whole number"
expect 2 "$PL" detect --imp-per-kwh 0 "$work/tiny.csv" && stderr_has "out of range"
expect 2 "$PL" detect --max-power 5000 "$work/tiny.csv" && stderr_has "needs --imp-per-kwh"
expect 2 "$PL" detect --polarity sideways "$work/tiny.csv" && stderr_has "--polarity"
expect 2 "$PL" detect --max-width-ms 20000 "$work/tiny.csv" && stderr_has "out of range"
expect 2 "$PL" detect --raw s16le "$work/tiny.csv" && stderr_has "--raw needs --rate"
expect 2 "$PL" detect --raw s24le --rate 1000 "$work/tiny.csv" && stderr_has "--raw takes"
expect 2 "$PL" detect --rate 1000 "$work/tiny.csv" && stderr_has "--rate applies to --raw"
expect 2 "$PL" detect --raw u16le --rate 10000001 "$work/tiny.csv" && stderr_has "out of range"
expect 2 "$PL" detect --format lp "$work/tiny.csv" && stderr_has "needs --interval"
expect 2 "$PL" detect --interval 0 "$work/tiny.csv" && stderr_has "out of range"
expect 2 "$PL" detect --interval 1 --format pulses "$work/tiny.csv" &&
  stderr_has "--format csv or lp"
expect 2 "$PL" detect --interval 1 --format lp --precision hours "$work/tiny.csv" &&
  stderr_has "--precision"
expect 2 "$PL" detect --interval 1 --format lp --device "" "$work/tiny.csv" && stderr_has "--device"
# Names InfluxDB cannot store back as given are refused before any output (issue 9).
for dev in 'dev\' 'foo\,bar' 'east\ ' '\ \="' 'a\\b' $'a\tb' $'a\nb' $'caf\xe9'; do
  if expect 2 "$PL" detect --interval 1 --format lp --device "$dev" "$work/tiny.csv"; then
    stderr_has "--device" || fail "--device $(printf %q "$dev"): $(cat "$work/err")"
    [ ! -s "$work/out" ] || fail "--device $(printf %q "$dev") wrote output"
  fi
done

# ---- bad input -------------------------------------------------------------------------------

bad() { # bad NAME CONTENT EXPECTED-STDERR
  printf "$2" >"$work/$1"
  expect 2 "$PL" detect "$work/$1" && stderr_has "$work/$1$3"
}
bad nonnum.csv 'time_s,value\n0,1\n0.001,abc\n' ":3: value is not a number: 'abc'"
bad backwards.csv '0,1\n0.002,1\n0.001,1\n' ":3: time goes backwards"
bad column.csv '# x\n0,1\n0.001\n' ":3: missing value column"
bad extra.csv '0,1,2\n' ":1: extra columns"
bad nan.csv '0,1\n0.001,NaN\n' ":2: value is NaN or infinite"
bad range.csv '0,99999999999\n' ":1: value out of int32 range"
bad empty.csv '' ": no samples"
bad comments.csv '# only\n\ntime_s,value\n' ": no samples"
printf 'abc' >"$work/odd.raw"
expect 2 "$PL" detect --raw s16le --rate 1000 "$work/odd.raw" && stderr_has "odd byte count"
expect 2 "$PL" detect --raw s16le --rate 1000 - <"$work/odd.raw"
expect 2 "$PL" detect "$work/does-not-exist.csv" && stderr_has "does-not-exist.csv: No such file"
awk 'BEGIN { printf "0,"; for (i = 0; i < 5000; i++) printf "1"; printf "\n" }' >"$work/long.csv"
expect 2 "$PL" detect "$work/long.csv" && stderr_has "long.csv:1: line longer than 4096 bytes"
# Bad input from standard input is named stdin.
printf '0,1\nx,1\n' >"$work/stdin.csv"
"$PL" detect - <"$work/stdin.csv" >/dev/null 2>"$work/err"
rc=$?
checks=$((checks + 1))
[ "$rc" = 2 ] || fail "bad stdin exited $rc, expected 2"
stderr_has "stdin:2: time is not a number: 'x'"

# ---- three obvious pulses --------------------------------------------------------------------

# 5 s at 1 kHz, baseline 100 without noise, pulses of 1000 lasting 20 ms at 1.5, 2.5, 3.5 s.
awk 'BEGIN {
  print "time_s,value"
  for (i = 0; i < 5000; i++) {
    s = int(i / 1000); ms = i % 1000
    v = (s >= 1 && s <= 3 && ms >= 500 && ms < 520) ? 1100 : 100
    printf "%d.%03d,%d\n", s, ms, v
  }
}' >"$work/pulses.csv"

if expect 0 "$PL" detect "$work/pulses.csv"; then
  n=$(wc -l <"$work/out")
  [ "$n" = 3 ] || fail "three pulses expected, got $n lines: $(head -c 400 "$work/out")"
  # time_s,width_ms,amplitude,confidence,status; leading edges within 5 ms, widths 15..25 ms.
  awk -F, -v want="1.5 2.5 3.5" '
    BEGIN { split(want, w, " ") }
    {
      # (no {n} repetition: mawk lacks it)
      d6 = "[0-9][0-9][0-9][0-9][0-9][0-9]"; d3 = "[0-9][0-9][0-9]"
      if ($0 !~ ("^[0-9]+\\." d6 ",[0-9]+\\." d3 ",-?[0-9]+,[0-9]+,(ok|rejected)$")) {
        print "bad pulse line: " $0; bad = 1; next
      }
      d = $1 - w[NR]; if (d < 0) d = -d
      if (d > 0.005) { print "pulse " NR " at " $1 ", expected " w[NR]; bad = 1 }
      if ($2 < 15 || $2 > 25) { print "pulse " NR " width " $2 " ms"; bad = 1 }
      if ($3 < 800 || $3 > 1200) { print "pulse " NR " amplitude " $3; bad = 1 }
      if ($5 != "ok") { print "pulse " NR " " $5; bad = 1 }
    }
    END { exit bad }' "$work/out" >"$work/why" || fail "pulse lines: $(cat "$work/why")"
  stderr_has "samples:   5000"
  stderr_has "pulses:    3 (0 rejected)"
fi

# The same through standard input, quietly.
"$PL" detect --quiet - <"$work/pulses.csv" >"$work/out" 2>"$work/err"
rc=$?
checks=$((checks + 1))
[ "$rc" = 0 ] && [ "$(wc -l <"$work/out")" = 3 ] ||
  fail "stdin: rc $rc, $(wc -l <"$work/out") lines"
[ ! -s "$work/err" ] || fail "--quiet still wrote: $(head -c 200 "$work/err")"

# Energy with the meter constant; implausible pulses rejected with a low maximum power
# (1000 imp/kWh, 1 s apart is 3600 W).
if expect 0 "$PL" detect --imp-per-kwh 1000 "$work/pulses.csv"; then
  stderr_has "energy:    3.000000 Wh (3 pulses at 1000 imp/kWh)"
fi
if expect 0 "$PL" detect --imp-per-kwh 1000 --max-power 1000 "$work/pulses.csv"; then
  [ "$(grep -c ',rejected$' "$work/out")" = 2 ] ||
    fail "--max-power 1000: expected 2 rejected pulses: $(cat "$work/out")"
fi

# The same signal as raw s16le at 8 kHz (perl is part of every Debian system).
if command -v perl >/dev/null; then
  perl -e 'for $i (0 .. 39999) { $s = int($i / 8000); $f = $i % 8000;
           $v = ($s >= 1 && $s <= 3 && $f >= 4000 && $f < 4160) ? 1000 : -500;
           print pack("s<", $v) }' >"$work/pulses.s16"
  if expect 0 "$PL" detect --raw s16le --rate 8000 "$work/pulses.s16"; then
    [ "$(wc -l <"$work/out")" = 3 ] || fail "raw: three pulses expected: $(cat "$work/out")"
    stderr_has "samples:   40000"
  fi
fi

# ---- interval records ------------------------------------------------------------------------

if expect 0 "$PL" detect --interval 1 --format lp --imp-per-kwh 1000 "$work/pulses.csv"; then
  # Five 1-second records, each line: measurement,device=powerlogger fields timestamp.
  awk '
    {
      split($0, parts, " ")
      split(parts[1], key, ",")
      if (key[1] != "energy_meter_reading") { print "measurement " key[1]; bad = 1 }
      if (key[2] != "device=powerlogger") { print "tag " key[2]; bad = 1 }
      if (parts[3] != NR - 1) { print "timestamp " parts[3] " on line " NR; bad = 1 }
      if (match(parts[2], /(^|,)value=[0-9.]+/)) {
        v = substr(parts[2], RSTART, RLENGTH); sub(/.*value=/, "", v); total += v
      } else { print "no value field: " $0; bad = 1 }
    }
    END {
      if (NR != 5) { print NR " lines, expected 5"; bad = 1 }
      if (total != 3) { print "values add up to " total ", expected 3"; bad = 1 }
      exit bad
    }' "$work/out" >"$work/why" ||
    fail "--format lp: $(cat "$work/why"); output: $(cat "$work/out")"
fi

if expect 0 "$PL" detect --interval 1 --format lp --device "my house" --precision ms \
  "$work/pulses.csv"; then
  head -n1 "$work/out" | grep -q '^energy_meter_reading,device=my\\ house .* 0$' ||
    fail "--device/--precision: $(head -n1 "$work/out")"
  sed -n 2p "$work/out" | grep -q ' 1000$' || fail "--precision ms: $(sed -n 2p "$work/out")"
fi

if expect 0 "$PL" detect --interval 1 "$work/pulses.csv"; then
  head -n1 "$work/out" | grep -q '^start_s,length_s,pulses,' ||
    fail "csv header: $(head -n1 "$work/out")"
  pulses=$(awk -F, 'NR > 1 { n += $3 } END { print n + 0 }' "$work/out")
  [ "$pulses" = 3 ] || fail "csv intervals count $pulses pulses, expected 3"
  [ "$(wc -l <"$work/out")" = 6 ] || fail "csv intervals: $(wc -l <"$work/out") lines, expected 6"
fi

# A flat trace: no pulses, and every interval flagged "no signal" (PL_Q_NO_SIGNAL = 16); the
# intervals with pulses above are not.
awk 'BEGIN { for (i = 0; i < 3000; i++) printf "%d.%03d,100\n", i / 1000, i % 1000 }' \
  >"$work/flat.csv"
if expect 0 "$PL" detect --interval 1 "$work/flat.csv"; then
  flags=$(awk -F, 'NR > 1 { printf "%s%s", sep, $3 "/" $9; sep = " " }' "$work/out")
  [ "$flags" = "0/16 0/16 0/16" ] || fail "flat trace: pulses/flags $flags, expected 0/16 x3"
  stderr_has "no-signal"
fi
expect 0 "$PL" detect --interval 1 "$work/pulses.csv" &&
  awk -F, 'NR > 1 && $3 > 0 && $9 != 0 { bad = 1 } END { exit bad }' "$work/out" ||
  fail "intervals with pulses carry flags: $(cat "$work/out")"

# ---- check only ------------------------------------------------------------------------------

expect 0 "$PL" detect -n "$work/pulses.csv" && stdout_empty && stderr_has "samples:   5000"

if [ "$fails" -gt 0 ]; then
  echo "cli_detect: $fails failed checks in $checks commands" >&2
  exit 1
fi
echo "cli_detect: $checks commands, all checks passed"
