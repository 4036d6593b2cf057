#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# issue 12: `powerlogger set-register METER KWH`, the one way the register (and the total Home
# Assistant sees) can fall. A trace (9000 W, 1 s intervals, replayed at 10x) is logged with an
# [mqtt] sink on a REAL private broker (scripts/mosquitto.sh), a capture recording the state.
#   - beside a running logger the command is refused (exit != 0), naming the logger's PID and
#     saying to stop it first; the store is unchanged;
#   - bad input (a negative reading, "abc", 7 decimals, an unknown meter, a missing store) is
#     refused with a message saying what is wrong, and changes nothing (the checkpoints
#     table is compared byte for byte);
#   - on the logger stopped by SIGKILL (its last intervals still in STORE.intake, which
#     set-register merges first) the register is set lower; the command says "lower"; after the
#     restart the records from before are unchanged, the first new one's register is the value
#     set plus the energy of its pulses after the set, every later one adds up (register =
#     previous + energy); the state on the broker falls once, to below the old value, and the
#     log says "the register was set lower".
set -euo pipefail
bin=${1:?usage: cli_set_register.sh PATH/TO/powerlogger}
src=${PL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
work=$(mktemp -d)
daemon_pid=
# shellcheck source=tests/lib_mqtt.sh
. "$src/tests/lib_mqtt.sh"
cleanup() {
	[ -z "$daemon_pid" ] || kill -9 "$daemon_pid" 2>/dev/null || true
	mqtt_cleanup
	if [ -n "${PL_KEEP_WORK:-}" ]; then
		echo "cli_set_register: kept $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
die() {
	echo "cli_set_register: $*" >&2
	tail -n 20 "$work/run.log" 2>/dev/null | sed 's/^/  run.log: /' >&2 || true
	exit 1
}
# records DB: "seq start_us energy_uwh register_uwh" of every record, oldest first
records() {
	sqlite3 "$1" "SELECT seq, start_us, energy_uwh, register_uwh FROM records ORDER BY seq"
}
# ckpt: the stopped logger's store as it is on the disk: the checkpoints table, as hex, and
# the intake (a refusal merges nothing either)
ckpt() {
	sqlite3 "$work/a.db" "SELECT meter_id, hex(state), crc FROM checkpoints"
	md5sum <"$work/a.db.intake"
}
# refused WHAT PATTERN ARGS...: set-register ARGS must fail, saying PATTERN, changing nothing
refused() {
	local what=$1 pat=$2 before rc=0
	shift 2
	before=$(ckpt)
	"$bin" set-register "$@" >"$work/out" 2>"$work/err" || rc=$?
	[ $rc -ne 0 ] || die "$what: accepted (exit 0): $(cat "$work/out")"
	grep -q -- "$pat" "$work/err" || die "$what: no '$pat' in: $(cat "$work/err")"
	[ "$(ckpt)" = "$before" ] || die "$what: the checkpoint changed"
	echo "cli_set_register: $what: refused: $(head -n 1 "$work/err")"
}

cat >"$work/a.ini" <<INI
[store]
path = $work/a.db
merge_s = 600

[meter house]
source = file
file = $work/trace.csv
speed = 10
imp_per_kwh = 1000
interval_s = 1

[mqtt home]
client_id = powerlogger-test-setreg
topic_prefix = powerlogger
discovery_prefix = homeassistant
qos = 1
keepalive_s = 5
INI
"$bin" simulate --duration 300 --rate 1000 --power 9000 --noise 20 --seed 7 \
	--out "$work/trace.csv" --quiet
mqtt_start || die "the broker did not start"
sed -i "s|^client_id|url = $mqtt_url\nclient_id|" "$work/a.ini"
"$bin" check-config "$work/a.ini" >/dev/null || die "the test's configuration is refused"
capture_start all 'powerlogger/house/state' || die "no capture"

daemon_start "$work/a.ini"
wait_for 60 eval '[ "$(count all powerlogger/house/state)" -ge 10 ]' ||
	die "fewer than 10 states within 60 s"

# while it runs: refused, with its PID
rc=0
"$bin" set-register -c "$work/a.ini" house 1 >"$work/out" 2>"$work/err" || rc=$?
[ $rc -ne 0 ] || die "set-register beside a running logger: accepted"
grep -q "PID $daemon_pid" "$work/err" ||
	die "the refusal does not name PID $daemon_pid: $(cat "$work/err")"
grep -q "stop it first" "$work/err" || die "the refusal has no hint: $(cat "$work/err")"
echo "cli_set_register: beside the running logger: refused: $(tail -n 1 "$work/err")"

# SIGKILL: what the logger committed last is still in STORE.intake (merge_s 600), with an
# older checkpoint than the one set below: set-register merges it first, or the next start
# would replay it over the value set
daemon_kill
[ -s "$work/a.db.intake" ] || die "no intake left by the killed logger"
"$bin" backup -c "$work/a.ini" "$work/before.db" >/dev/null || die "powerlogger backup failed"
records "$work/before.db" >"$work/before.txt"
n_before=$(wc -l <"$work/before.txt")
old_uwh=$(tail -n 1 "$work/before.txt" | cut -d'|' -f4)
[ "$n_before" -ge 10 ] && [ "$old_uwh" -gt 20000000 ] ||
	die "too little logged before the set: $n_before records, register $old_uwh uWh"

refused "a negative reading" "cannot be negative" -c "$work/a.ini" house -5
refused "abc" "not a reading in kWh" -c "$work/a.ini" house abc
refused "7 decimals" "not a reading in kWh" -c "$work/a.ini" house 1.1234567
refused "an empty reading" "not a reading in kWh" -c "$work/a.ini" house ""
refused "an unknown meter" "no meter 'garage'" -c "$work/a.ini" garage 1
refused "a missing store" "no store there" --store "$work/none.db" house 1
[ ! -e "$work/none.db.lock" ] || die "a missing store: a lock file was left behind"

# lower: 0.012345 kWh, the register was above 0.02 kWh
set_uwh=12345000
"$bin" set-register -c "$work/a.ini" house 0.012345 >"$work/out" 2>"$work/err" ||
	die "set-register failed: $(cat "$work/err")"
lower="(lower: Home Assistant will count it as a meter reset)"
grep -qF -- "-> 0.012345 kWh $lower" "$work/out" && grep -q "^meter house: register [0-9.]* kWh" \
	"$work/out" || die "unexpected output: $(cat "$work/out")"
echo "cli_set_register: $(cat "$work/out")"
"$bin" status -c "$work/a.ini" >"$work/status" 2>&1 || true

daemon_start "$work/a.ini"
wait_for 60 eval '[ "$(sqlite3 "$work/a.db" "SELECT count(*) FROM records" 2>/dev/null ||
	echo 0)" -ge $((n_before + 10)) ]' || die "no new records after the restart"
n=$(count all powerlogger/house/state)
wait_for 30 eval '[ "$(count all powerlogger/house/state)" -gt "$n" ]' || die "no new states"
kill -TERM "$daemon_pid"
daemon_wait 30 || die "the logger did not stop on SIGTERM"
capture_sync all || die "the capture does not answer"
records "$work/a.db" >"$work/after.txt"

head -n "$n_before" "$work/after.txt" | cmp -s - "$work/before.txt" ||
	die "the records from before the set changed"
python3 - "$work/after.txt" "$n_before" "$set_uwh" "$old_uwh" "$work/all.cap" <<'PY' ||
import json, sys
rows = [[int(x) for x in l.split("|")] for l in open(sys.argv[1])]
nb, setv, old = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
first = rows[nb]
# the pulses counted in the open interval before the set stay in its energy (meter.h): the
# first record's register is the value set plus at most its energy
extra = first[3] - setv
if not (0 <= extra <= first[2]):
    sys.exit(f"first record after the set: register {first[3]} uWh, energy {first[2]}: "
             f"not the value set ({setv}) plus at most its energy")
for p, r in zip(rows[nb:], rows[nb + 1:]):
    if r[3] != p[3] + r[2]:
        sys.exit(f"seq {r[0]}: register {r[3]} != {p[3]} + energy {r[2]}")
vals = []
for l in open(sys.argv[5]):
    f = l.split(" ", 4)
    if l.startswith("#") or len(f) < 5 or f[3] != "powerlogger/house/state":
        continue
    vals.append(float(json.loads(f[4])["energy_kwh"]))
falls = [(a, b) for a, b in zip(vals, vals[1:]) if b < a]
if len(falls) != 1 or not (falls[0][1] < old / 1e9 and falls[0][1] <= (setv + first[2]) / 1e9
                           + 1e-9):
    sys.exit(f"the state on the broker should fall once, to the value set: falls {falls}")
print(f"cli_set_register: {len(rows) - nb} records after the set, the first register "
      f"{first[3]} uWh = {setv} + {extra} (its energy {first[2]}); the state fell once: "
      f"{falls[0][0]} -> {falls[0][1]} kWh")
PY
	die "the records or states after the set are wrong"
grep -q "the register was set lower" "$work/run.log" ||
	die "the log does not say 'the register was set lower'"
[ "$(grep -c "the register was set lower" "$work/run.log")" -eq 1 ] ||
	die "'the register was set lower' more than once"
echo "cli_set_register: the log:" \
	"$(grep -o "meter house: the register was set lower.*" "$work/run.log")"

# on copies of the stopped logger's store: higher, and a meter without a checkpoint
"$bin" backup -c "$work/a.ini" "$work/b.db" >/dev/null || die "powerlogger backup failed"
"$bin" set-register --store "$work/b.db" house 12345.678 >"$work/out" 2>"$work/err" ||
	die "set-register higher failed: $(cat "$work/err")"
grep -q "^meter house: register [0-9.]* kWh -> 12345.678 kWh (higher: " "$work/out" ||
	die "unexpected output: $(cat "$work/out")"
echo "cli_set_register: $(cat "$work/out")"
[ "$(sqlite3 "$work/b.db" "SELECT length(state) FROM checkpoints")" -gt 0 ] || die "no checkpoint"
sqlite3 "$work/b.db" "DELETE FROM checkpoints"
rc=0
"$bin" set-register --store "$work/b.db" house 1 >"$work/out" 2>"$work/err" || rc=$?
[ $rc -ne 0 ] && grep -q "no checkpoint yet.*start_register_kwh" "$work/err" ||
	die "a meter without a checkpoint: exit $rc, $(cat "$work/err")"
[ "$(sqlite3 "$work/b.db" "SELECT count(*) FROM checkpoints")" = 0 ] ||
	die "a meter without a checkpoint: one was written"
echo "cli_set_register: without a checkpoint: refused: $(cat "$work/err")"
echo "cli_set_register: OK"
