#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Clock steps (issue 9): the wall clock stepped forward and back, by minutes, hours and days,
# while `powerlogger run` logs a fake GPIO meter and a simulated one into the store, and while
# it is stopped. The wall clock is
# moved with libfaketime (only CLOCK_REALTIME, as an NTP step moves it: the monotonic clock
# is left alone); the GPIO line is the source's fake backend (PL_FAKE_GPIO, no hardware in
# CI; in powerlogger-fakes, the test build of the program), fed edges stamped with the monotonic clock as the kernel stamps them.
#
# Checked, over five runs on one store: every pulse fed is in the register and in the records
# (no record lost or doubled: each record's register minus its energy is the previous one's
# register); every interval not flagged as a gap holds exactly the pulses made in it and is
# stamped by the clock of its time (closed within a few seconds of its end, by that clock);
# each step's interval is flagged PL_Q_GAP; the simulated meter follows the clock too; the
# daemon answers SIGTERM within 3 s after every step and does not spin (CPU time).
#
# No sink here, on purpose: libfaketime's pthread_cond_timedwait() wrapper takes the delivery
# thread's CLOCK_MONOTONIC deadline for a wall-clock one and returns at once, so under
# libfaketime that thread wakes constantly (step or no step; without libfaketime it sleeps),
# and with FAKETIME_NO_CACHE its clock reads race the main thread's inside libfaketime, which
# then now and then hands out the unfaked time. Delivery across steps needs no fake clock:
# its waits are all monotonic (deliver.c).
set -euo pipefail
bin=${1:?usage: cli_clock.sh PATH/TO/powerlogger}
fakes="$(dirname "$bin")/powerlogger-fakes" # powerlogger with the fake GPIO kernel
src=${PL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
ft=""
for f in /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 /usr/lib/*/faketime/libfaketime.so.1 \
  /usr/lib/faketime/libfaketime.so.1; do
  [ -e "$f" ] && { ft=$f; break; }
done
[ -n "$ft" ] || { echo "cli_clock: libfaketime is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
work=$(mktemp -d)
run_pid=""
cleanup() {
  [ -n "$run_pid" ] && kill -9 "$run_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "cli_clock: $*" >&2; [ -f "$work/run.log" ] && tail -20 "$work/run.log" >&2; exit 1; }
iv=2

mkfifo "$work/gpio.fifo"
cat >"$work/clock.ini" <<INI
[store]
path = $work/clock.db

[meter comparator]
source = gpio
device = gpiochip0
line = 4
imp_per_kwh = 1000
interval_s = $iv

[meter sim]
source = sim
imp_per_kwh = 1000
interval_s = $iv
INI
"$bin" check-config "$work/clock.ini" >/dev/null

# One run: the daemon under libfaketime with the wall clock at offset $1 (s); after 2.5 s the
# clock is stepped to offset $2; pulses every 0.3 s throughout; SIGTERM after 5.5 s.
: >"$work/truth"
run_once() { # $1 offset at the start, $2 offset after the step, $3 name
  echo "+$1" | sed 's/+-/-/' >"$work/faketime"
  PL_FAKE_GPIO="$work/gpio.fifo" PL_FAKE_GPIO_LEVEL=0 LD_PRELOAD="$ft" \
    FAKETIME_TIMESTAMP_FILE="$work/faketime" FAKETIME_NO_CACHE=1 \
    FAKETIME_DONT_FAKE_MONOTONIC=1 "$fakes" run -c "$work/clock.ini" --quiet 2>>"$work/run.log" &
  run_pid=$!
  echo "$(( $2 - $1 ))" >>"$work/steps"
  python3 - "$work" "$1" "$2" "$iv" <<'PY' || fail "$3: the pulse generator failed"
import os, sys, time
work, off1, off2, iv = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]) * 10**6
real_off = time.time_ns() // 1000 - time.monotonic_ns() // 1000
f = os.open(f"{work}/gpio.fifo", os.O_WRONLY)
truth = open(f"{work}/truth", "a")
t0 = time.monotonic()
time.sleep(0.5)     # the daemon has opened the line
stepped = False
while time.monotonic() - t0 < 5.2:
    el = time.monotonic() - t0
    if not stepped and el >= 2.5:
        open(f"{work}/faketime.new", "w").write(f"{off2:+d}\n")
        os.rename(f"{work}/faketime.new", f"{work}/faketime")
        stepped = True
    off = off2 if stepped else off1
    stamp = time.monotonic_ns() // 1000 + real_off + off * 10**6  # the edge's wall-clock time
    # no pulse near an interval boundary or just before the step: either side would be right
    # (one just after it falls in intervals the step flags as gaps, and finds a meter that
    # has not yet closed the intervals up to the new time)
    if stamp % iv < 150000 or stamp % iv > iv - 150000 or 2.1 < el < 2.5:
        time.sleep(0.05)
        continue
    mono = time.monotonic_ns()
    os.write(f, f"{mono} 1\n".encode())
    truth.write(f"{stamp}\n")
    time.sleep(0.03)
    os.write(f, f"{mono + 30 * 10**6} 0\n".encode())
    time.sleep(0.27)
truth.close()
PY
  sleep 0.3
  local stat cpu
  # CPU time: 5.5 s of handling 3 pulses a second is a few ticks, a spinning loop all of them
  stat=$(cut -d' ' -f14,15 "/proc/$run_pid/stat" 2>/dev/null) || fail "$3: the daemon died"
  cpu=$(( ${stat% *} + ${stat#* } ))
  [ "$cpu" -lt $(( $(getconf CLK_TCK) )) ] || fail "$3: $cpu ticks of CPU in 5.5 s (spinning)"
  kill -TERM "$run_pid"
  for _ in $(seq 30); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$run_pid" 2>/dev/null; then
    kill -9 "$run_pid"; wait "$run_pid" 2>/dev/null || true; run_pid=""
    fail "$3: SIGTERM not answered within 3 s"
  fi
  local rc=0
  wait "$run_pid" || rc=$?
  run_pid=""
  [ $rc -eq 0 ] || fail "$3: run exited $rc"
}

h=3600 d=86400
run_once 0 $((90 * 60)) "forward 1.5 h"
run_once $((90 * 60)) $((75 * 60)) "back 15 min"
run_once $((75 * 60)) $((75 * 60 + 3 * d)) "forward 3 days"
# stepped back a day while stopped: the restart finds the clock behind its checkpoint
run_once $((75 * 60 + 2 * d)) $((75 * 60 + 2 * d - 180)) "back 1 day while stopped, then 3 min"
# forward again while stopped, past the interval held open since the step back
run_once $((75 * 60 + 3 * d + 60)) $((75 * 60 + 3 * d + 60)) "forward past the held interval while stopped"
sleep 0.5

grep -q "wall clock was stepped forward by 90.0 min" "$work/run.log" || fail "the forward step was not logged"
grep -q "wall clock was stepped back by 15.0 min" "$work/run.log" || fail "the backward step was not logged"
grep -q "24.00 h behind" "$work/run.log" || fail "the clock behind the checkpoint was not logged"

sqlite3 -separator ' ' "$work/clock.db" "SELECT m.name, r.start_us, r.pulses, r.flags, r.energy_uwh,
  r.register_uwh, r.stored_us FROM records r JOIN meters m ON m.id = r.meter_id ORDER BY r.seq" \
  >"$work/records"
"$bin" status -c "$work/clock.ini" >"$work/status" 2>&1 || true
python3 - "$work" "$iv" <<'PY' || fail "the records do not add up"
import sys
work, iv = sys.argv[1], int(sys.argv[2]) * 10**6
GAP = 2
steps = [0] + [int(l) for l in open(f"{work}/steps")]
truth = [(int(l), 0) for l in open(f"{work}/truth")]
recs = {}
for l in open(f"{work}/records"):
    name, *v = l.split()
    recs.setdefault(name, []).append(tuple(int(x) for x in v))
ok = True
def bad(msg):
    global ok
    ok = False
    print("cli_clock:", msg, file=sys.stderr)
for name, rs in recs.items():
    prev = None
    starts = set()
    for start, pulses, flags, energy, reg, stored in rs:
        if start in starts:
            bad(f"{name}: interval {start} stamped twice")
        starts.add(start)
        if prev is not None and reg - energy != prev:
            bad(f"{name}: record {start}: register {reg} - energy {energy} != previous {prev}")
        prev = reg
        late = stored - (start + iv)
        # closed by the clock of its time: the one before a step when it ended before it
        if not flags & GAP and not any(-100000 <= late - d * 10**6 <= 5 * 10**6 for d in steps):
            bad(f"{name}: record {start} (flags {flags}) closed {late / 1e6:.1f} s after its end: "
                "mis-stamped")
    gaps = sum(1 for r in rs if r[2] & GAP)
    if gaps < 3:
        bad(f"{name}: only {gaps} intervals flagged as gaps for 4 steps and restarts")
rs = recs.get("comparator", [])
for start, pulses, flags, energy, reg, stored in rs:
    if flags & GAP:
        continue
    want = sum(1 for t, _ in truth if start <= t < start + iv)
    if pulses != want:
        bad(f"comparator: interval {start}: {pulses} pulses, {want} made in it (flags {flags})")
status = open(f"{work}/status").read()
print(status, file=sys.stderr) if not ok else None
# the last record's register: every pulse up to its end; those after it are in the checkpoint
in_recs = rs[-1][4] // 10**6 if rs else 0
after = sum(1 for t, _ in truth if rs and t >= rs[-1][0] + iv)
if in_recs + after != len(truth):
    bad(f"comparator: {len(truth)} pulses fed, {in_recs} in the records and {after} after them")
print(f"cli_clock: comparator {len(rs)} records, sim {len(recs.get('sim', []))}, {len(truth)} pulses")
sys.exit(0 if ok else 1)
PY
echo "cli_clock: ok"
