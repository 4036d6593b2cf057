#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What happens to a running `powerlogger run` in a person's installation, checked against the
# records `powerlogger detect --interval 20` computes from the same trace file (replayed at
# 100x, so a run lasts ~9 s; no InfluxDB needed, the store itself is compared):
#  1. SIGHUP (systemd's reload, or a closed SSH terminal) at random moments: the logger reloads
#     in place (same PID) and the records are exactly detect's, the open interval's pulses
#     included; a SIGHUP with a broken configuration is reported and changes nothing; SIGUSR1
#     and SIGUSR2 (what some log rotation scripts send) are logged and ignored.
#  2. its terminal goes away (a pseudo-terminal whose master is closed: SIGHUP, then EIO on
#     every write of the status line): it goes on and ends with exactly detect's records.
#  3. the store file deleted under it (alone, or with its -wal and -shm): it says so, writes the
#     content back, goes on, and the store ends with exactly detect's records.
#  4. the store file replaced by another file: that file is left byte for byte as it is, the
#     run's store is saved beside it under a name the log gives, the logger stops (exit 1);
#     resuming from the saved copy gives exactly detect's records.
#  5. a file size limit (ulimit -f) reached by the store: the intake (1 MiB) cannot be made, so
#     it is said and each interval goes to the database directly; no SIGXFSZ death, the commits are
#     refused and reported like a full disk, SIGTERM stops it (exit 1, the replay's records not
#     stored said so), a SIGHUP meanwhile is refused (the waiting records would go with the old
#     process); a run without the limit then ends with exactly detect's records.
set -euo pipefail
bin=${1:?usage: cli_lifecycle.sh PATH/TO/powerlogger}
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "cli_lifecycle: $*" >&2; exit 1; }

"$bin" simulate --duration 900 --rate 1000 --power 2500 --noise 20 --flicker 0.2 --seed 4 \
  --out "$work/trace.csv" --truth /dev/null --quiet
"$bin" detect --quiet --imp-per-kwh 1000 --interval 20 --format lp --device house \
  "$work/trace.csv" | python3 -c '
import sys
for line in sys.stdin:
    head, fields, ts = line.rsplit(" ", 2)
    f = dict(kv.split("=", 1) for kv in fields.split(","))
    num = lambda v: float(v.rstrip("i"))
    print(int(ts), int(num(f["value"])), "%g" % num(f["register_wh"]), int(num(f["flags"])))
' >"$work/want.txt"
[ "$(wc -l <"$work/want.txt")" -ge 40 ] || fail "too few reference records"
got() { # the store's records in the same shape
  sqlite3 "$1" "SELECT start_us / 1000000, pulses, register_uwh / 1e6, flags FROM records
                ORDER BY start_us" | python3 -c '
import sys
for l in sys.stdin:
    t, p, r, f = l.strip().split("|")
    print(t, p, "%g" % float(r), f)'
}
same() { # $1 store, $2 what
  got "$1" >"$work/got.txt"
  cmp -s "$work/want.txt" "$work/got.txt" ||
    { diff "$work/want.txt" "$work/got.txt" | head -10 >&2; fail "$2: the records differ from detect's"; }
}
config() { # $1 store
  printf '[store]\npath = %s\n\n[meter house]\nsource = file\nfile = %s\nspeed = 100\nimp_per_kwh = 1000\n' \
    "$1" "$work/trace.csv"
}
alive() { kill -0 "$pid" 2>/dev/null || fail "$1: the logger is gone"; }

# 1. SIGHUP
config "$work/hup.db" >"$work/hup.ini"
cp "$work/hup.ini" "$work/hup.good"
"$bin" run -c "$work/hup.ini" --quiet --until-drained 2>"$work/hup.log" &
pid=$!
for i in 1 2 3; do
  sleep "1.$((RANDOM % 9))"
  kill -HUP $pid
  sleep 0.2
  alive "SIGHUP $i"
done
printf '[meter broken\n' >"$work/hup.ini"
kill -HUP $pid
sleep 0.5
alive "SIGHUP with a broken configuration"
grep -q "SIGHUP: $work/hup.ini has errors (above): going on" "$work/hup.log" ||
  { cat "$work/hup.log" >&2; fail "the broken configuration was not reported"; }
cp "$work/hup.good" "$work/hup.ini"
kill -USR1 $pid
kill -USR2 $pid
sleep 0.3
alive "SIGUSR1 and SIGUSR2"
rc=0; wait $pid || rc=$?
pid=
[ $rc -eq 0 ] || { cat "$work/hup.log" >&2; fail "the reloaded logger exited $rc"; }
[ "$(grep -c 'is valid: checkpointing and restarting' "$work/hup.log")" -eq 3 ] ||
  { cat "$work/hup.log" >&2; fail "not 3 reloads"; }
same "$work/hup.db" "after 3 SIGHUPs"
grep -q "SIGUSR1.* ignored" "$work/hup.log" && grep -q "SIGUSR2 ignored" "$work/hup.log" ||
  { cat "$work/hup.log" >&2; fail "SIGUSR1/SIGUSR2 not logged"; }
echo "cli_lifecycle: 3 SIGHUPs (reloads in place) and one with a broken configuration" \
  "(reported, ignored), SIGUSR1 and SIGUSR2 (ignored): the records are exactly detect's"

# 2. the terminal goes away
config "$work/tty.db" >"$work/tty.ini"
rc=0
python3 - "$bin" "$work/tty.ini" >"$work/tty.out" <<'PY' || rc=$?
import fcntl, os, pty, sys, termios, time
master, slave = pty.openpty()
pid = os.fork()
if pid == 0:
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    os.close(master)
    os.execv(sys.argv[1], [sys.argv[1], "run", "-c", sys.argv[2], "--until-drained"])
os.close(slave)
end = time.time() + 1.5
while time.time() < end:  # read the status line for a while, like a terminal
    try:
        os.read(master, 4096)
    except OSError:
        break
os.close(master)  # the terminal goes away: SIGHUP, then EIO on every write
end = time.time() + 90
while time.time() < end:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        print(os.waitstatus_to_exitcode(status))
        sys.exit(0)
    time.sleep(0.1)
os.kill(pid, 9)
print("hung")
PY
[ $rc -eq 0 ] || fail "the pty driver failed"
[ "$(cat "$work/tty.out")" = 0 ] || fail "with its terminal gone the logger exited $(cat "$work/tty.out")"
same "$work/tty.db" "after the terminal went away"
echo "cli_lifecycle: terminal closed under it: went on, exit 0, the records are exactly detect's"

# 3. the store deleted under it
for what in alone all; do
  config "$work/del.db" >"$work/del.ini"
  rm -f "$work"/del.db*
  "$bin" run -c "$work/del.ini" --quiet --until-drained 2>"$work/del.log" &
  pid=$!
  sleep "2.$((RANDOM % 9))"
  if [ $what = alone ]; then rm "$work/del.db"; else rm "$work/del.db" "$work/del.db-wal" "$work/del.db-shm"; fi
  sleep 1
  alive "store deleted ($what)"
  rc=0; wait $pid || rc=$?
  pid=
  [ $rc -eq 0 ] || { cat "$work/del.log" >&2; fail "after the store was deleted ($what) exit $rc"; }
  grep -q "the file was deleted while the logger runs" "$work/del.log" &&
    grep -q "written back, nothing lost" "$work/del.log" ||
    { cat "$work/del.log" >&2; fail "the deletion ($what) was not reported"; }
  [ "$(sqlite3 "$work/del.db" 'PRAGMA integrity_check')" = ok ] || fail "restored store damaged"
  same "$work/del.db" "store deleted ($what)"
done
echo "cli_lifecycle: store deleted under the logger (alone, with its -wal and -shm): reported," \
  "written back, the records are exactly detect's"

# 4. the store replaced by another file
config "$work/rep.db" >"$work/rep.ini"
sqlite3 "$work/other.db" "CREATE TABLE mine(x); INSERT INTO mine VALUES('the user''s data')"
"$bin" run -c "$work/rep.ini" --quiet --until-drained 2>"$work/rep.log" &
pid=$!
sleep "2.$((RANDOM % 9))"
before=$(sha256sum <"$work/other.db")
mv "$work/other.db" "$work/rep.db"
rc=0
for _ in $(seq 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
wait $pid || rc=$?
pid=
[ $rc -eq 1 ] || { cat "$work/rep.log" >&2; fail "after the store was replaced exit $rc, not 1"; }
[ "$(sha256sum <"$work/rep.db")" = "$before" ] || fail "the file put in the store's place was changed"
[ "$(sqlite3 "$work/rep.db" 'SELECT x FROM mine')" = "the user's data" ] || fail "the user's file lost data"
saved=$(sed -n 's/.*this run.s store is saved as \([^ ]*\) (nothing lost).*/\1/p' "$work/rep.log")
[ -n "$saved" ] && [ -f "$saved" ] || { cat "$work/rep.log" >&2; fail "no saved copy named in the log"; }
[ "$(sqlite3 "$saved" 'PRAGMA integrity_check')" = ok ] || fail "the saved copy is damaged"
config "$saved" >"$work/rep2.ini"
"$bin" run -c "$work/rep2.ini" --quiet --until-drained --speed 0 2>>"$work/rep.log" ||
  { cat "$work/rep.log" >&2; fail "resuming from the saved copy failed"; }
same "$saved" "resumed from the copy saved when the store was replaced"
echo "cli_lifecycle: store replaced under the logger: the new file untouched, the run's store" \
  "saved beside it, exit 1; resumed from the copy, the records are exactly detect's"

# 5. a file size limit
config "$work/lim.db" >"$work/lim.ini"
rc=0
( ulimit -f 150 # KiB: the store and its WAL reach it within a few seconds of the replay
  "$bin" run -c "$work/lim.ini" --quiet 2>"$work/lim.log" &
  p=$!
  for _ in $(seq 100); do grep -q "cannot commit.*file size limit" "$work/lim.log" && break; sleep 0.1; done
  kill -HUP $p # a reload now would lose the records waiting in memory: refused
  sleep 0.5
  kill -0 $p || exit 99
  kill -TERM $p
  wait $p ) || rc=$?
# A retry (every 5 s) may find room again before the SIGTERM (a checkpoint lets the WAL start
# over; seen on a loaded machine): then the waiting records are written and the stop is a
# clean one, exit 0; otherwise they are reported lost to this run, exit 1. Either way the run
# after it must leave exactly detect's records (below).
if grep -q "store: writing again" "$work/lim.log"; then
  want=0 lost="store: writing again"
else
  want=1 lost="could not be stored and are lost (a restart replays them"
fi
[ $rc -eq $want ] || { cat "$work/lim.log" >&2; fail "at the file size limit exit $rc, not $want"; }
grep -q "lim.db.intake: the process's file size limit (ulimit -f) is reached; each interval is committed to the database directly" "$work/lim.log" &&
  grep -q "cannot commit the interval: I/O error (the process has a file size limit" "$work/lim.log" &&
  grep -q "SIGHUP: not reloading while the store refuses new records" "$work/lim.log" &&
  grep -qF "$lost" "$work/lim.log" ||
  { cat "$work/lim.log" >&2; fail "the file size limit was not reported"; }
"$bin" run -c "$work/lim.ini" --quiet --until-drained --speed 0 2>>"$work/lim.log" ||
  { cat "$work/lim.log" >&2; fail "the run after the file size limit failed"; }
same "$work/lim.db" "after a file size limit"
echo "cli_lifecycle: a file size limit: no SIGXFSZ death, reported like a full disk, a SIGHUP" \
  "refused meanwhile, exit $want at" \
  "SIGTERM; without it the records are exactly detect's"
