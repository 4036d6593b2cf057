#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `powerlogger detect --state FILE`: a trace cut anywhere - inside a pulse too - and given in
# parts, each resumed from the state the one before left, gives exactly what one run over the
# whole trace gives: the same pulses, the same interval records, for CSV and raw input. And a
# state that does not belong (other options, a part given twice, not a state file, damaged) is
# refused with a clear message, exit 2, before anything is printed.
#   bash tests/cli_detect_state.sh /path/to/powerlogger
set -euo pipefail
PL=${1:?usage: cli_detect_state.sh /path/to/powerlogger}
work=$(mktemp -d "${TMPDIR:-/tmp}/cli_detect_state.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "cli_detect_state: $*" >&2; exit 1; }
cd "$work"

# a 2-minute trace at 1 kHz with its true pulses, and a raw one at 2 kHz
"$PL" simulate --seed 3 --duration 120 --rate 1000 --out t.csv --truth truth.csv --quiet
"$PL" simulate --seed 4 --duration 60 --rate 2000 --raw s16le --out t.raw --quiet
"$PL" detect -q t.csv >one.pulses
"$PL" detect -q --interval 20 --imp-per-kwh 1000 t.csv >one.csv
"$PL" detect -q --interval 10 --format lp --raw s16le --rate 2000 t.raw >one.lp
[ "$(wc -l <one.pulses)" -ge 30 ] || fail "the whole trace gave only $(wc -l <one.pulses) pulses"

# CSV: parts cut 3 ms after leading edges (inside pulses) and at random samples, several ways
python3 - "$PL" <<'PY' || fail "parts of the CSV trace differ from one run"
import os, random, subprocess, sys
pl = sys.argv[1]
lines = open("t.csv").read().splitlines()
head, data = lines[0], lines[1:]
edges = [float(l.split(",")[0]) for l in open("truth.csv").read().splitlines()[1:]]
t0 = float(data[0].split(",")[0])
def parts(cuts, opts):
    if os.path.exists("s.state"):
        os.unlink("s.state")
    out, bounds = "", [0] + cuts + [len(data)]
    for i in range(len(bounds) - 1):
        with open("part.csv", "w") as f:
            f.write("\n".join([head] + data[bounds[i]:bounds[i + 1]]) + "\n")
        last = ["--end"] if i == len(bounds) - 2 else []
        r = subprocess.run([pl, "detect", "-q", "--state", "s.state"] + opts + last +
                           ["part.csv"], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"part {i + 1}: exit {r.returncode}: {r.stderr}")
        out += r.stdout
    return out
one = {"pulses": open("one.pulses").read(), "csv": open("one.csv").read()}
random.seed(1)
bad = 0
for trial in range(4):
    inside = [int(round((e - t0 + 0.003) * 1000)) for e in random.sample(edges, 3)]
    cuts = sorted(set(c for c in inside + [random.randrange(1, len(data)) for _ in range(3)]
                      if 0 < c < len(data)))
    for name, opts in (("pulses", []), ("csv", ["--interval", "20", "--imp-per-kwh", "1000"])):
        got = parts(cuts, opts)
        if got != one[name]:
            bad += 1
            print(f"cli_detect_state: cuts {cuts}, {name}: parts differ from one run",
                  file=sys.stderr)
print(f"cli_detect_state: 4 ways of cutting the CSV trace into {len(cuts) + 1} parts: "
      f"{8 - bad} of 8 outputs equal to one run's")
sys.exit(1 if bad else 0)
PY

# raw: three parts of odd lengths (whole samples), line protocol
sz=$(stat -c %s t.raw)
c1=$(( (sz / 7) & ~1 )) c2=$(( (sz / 2) & ~1 ))
dd if=t.raw of=a.raw bs=1 count="$c1" status=none
dd if=t.raw of=b.raw bs=1 skip="$c1" count=$((c2 - c1)) status=none
dd if=t.raw of=c.raw bs=1 skip="$c2" status=none
raw=(detect -q --interval 10 --format lp --raw s16le --rate 2000 --state r.state)
{ "$PL" "${raw[@]}" a.raw; "$PL" "${raw[@]}" b.raw; "$PL" "${raw[@]}" --end c.raw; } >parts.lp
cmp -s one.lp parts.lp || fail "parts of the raw trace differ from one run"
cp r.state r.before
"$PL" "${raw[@]}" --end c.raw >again.lp
cmp -s r.state r.before || fail "--end changed the state file"
cmp -s again.lp <(tail -n "$(wc -l <again.lp)" one.lp) || fail "--end run again differs"

# states that do not belong: exit 2, a message, nothing printed
expect_refused() { # $1: what stderr must say; the rest: the command
  local want=$1 rc=0
  shift
  "$PL" "$@" >out 2>err || rc=$?
  [ $rc -eq 2 ] || fail "$* exited $rc, not 2"
  grep -q -- "$want" err || fail "$*: no '$want' in: $(cat err)"
  [ ! -s out ] || fail "$*: printed output before refusing"
}
expect_refused "written with other options" detect --raw s16le --rate 2000 --state r.state b.raw
head -60000 t.csv >first.csv
"$PL" detect -q --state c.state first.csv >/dev/null
expect_refused "a part given twice, or out of order" detect --state c.state first.csv
echo "not a state" >g.state
expect_refused "not a state file" detect --state g.state t.csv
cp c.state d.state
printf '\x01' | dd of=d.state bs=1 seek=200 conv=notrunc status=none
expect_refused "damaged" detect --state d.state t.csv
head -c 100 c.state >short.state
expect_refused "cut short" detect --state short.state t.csv
expect_refused "needs --state" detect --end t.csv
expect_refused "does not go with --check" detect -n --state c.state t.csv
echo "cli_detect_state: raw in 3 parts equal to one run; 7 wrong states refused"
