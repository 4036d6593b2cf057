#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Readers and a second logger beside a running `powerlogger run` (no InfluxDB needed: the sink
# points at a closed port, which only keeps its delivery thread, a second connection to the
# store in the daemon's process, busy):
#  1. `powerlogger status` (several times), `sqlite3 .backup` and `sqlite3 SELECT` beside the
#     daemon: its -wal and -shm stay linked (/proc/PID/fd shows no "(deleted)"), records go on
#     arriving where readers see them, and a SIGKILL afterwards loses nothing committed.
#  2. status needs none of the sinks' secrets; a commit in progress in another process (a
#     write transaction held for 2 s) does not make it fail; it writes nothing.
#  3. the store, its -wal and -shm are created 0600 under umask 022; an existing store's mode
#     is left as its owner set it.
#  4. a second logger on the same store, also with another configuration and also when both
#     start at the same instant on a new store, refuses with a message naming the first PID;
#     a logger told by SIGHUP to reload a configuration whose store another logger holds
#     refuses the reload and goes on.
#  5. with the intake (the default merge_s = 900): status shows the newest interval while the
#     database file alone (sqlite3) has none of them yet; `powerlogger backup` beside the
#     running logger has them all, passes the integrity check and needs no intake; after a
#     SIGKILL the next start merges them, exactly once (no seq twice, none missing), and a
#     stopped logger leaves them all in the database file.
# Sections 1-4 read the database file with sqlite3, so their logger merges every second.
set -euo pipefail
bin=${1:?usage: cli_readers.sh PATH/TO/powerlogger}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "cli_readers: $*" >&2; exit 1; }
umask 022
absent=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

config() { # $1 store, $2 meter name, $3 merge_s (default 1)
  printf '[store]\npath = %s\nmerge_s = %s\n\n' "$1" "${3:-1}"
  printf '[meter %s]\nsource = sim\nimp_per_kwh = 1000\ninterval_s = 1\n\n' "${2:-house}"
  printf '[influxdb s]\nurl = http://127.0.0.1:%s\napi = 3\ndatabase = x\n' "$absent"
  printf 'token_env = PL_READERS_TOKEN\ntimeout_s = 1\n'
}
count() { sqlite3 "$1" "SELECT COUNT(*) FROM records"; }
no_deleted() { # $1 pid, $2 when
  local fds
  fds=$(ls -l "/proc/$1/fd")
  if grep -q "(deleted)" <<<"$fds"; then
    echo "$fds" >&2
    fail "$2: the daemon's store files were deleted under it"
  fi
}
wait_records() { # $1 store, $2 at least
  for _ in $(seq 100); do
    [ -s "$1" ] && [ "$(count "$1" 2>/dev/null || echo 0)" -ge "$2" ] && return 0
    sleep 0.1
  done
  fail "no $2 records in $1 after 10 s"
}

# 1. readers beside the daemon
config "$work/s.db" >"$work/s.ini"
PL_READERS_TOKEN=t "$bin" run -c "$work/s.ini" --quiet 2>"$work/run.log" &
pid=$!
pids+=($pid)
wait_records "$work/s.db" 2
mode=$(stat -c %a "$work/s.db" "$work/s.db-wal" "$work/s.db-shm" "$work/s.db.intake" | sort -u)
[ "$mode" = 600 ] || fail "store files created with modes $mode under umask 022, not 600"
for i in 1 2 3; do
  # without the token: reading the store needs no secret
  env -u PL_READERS_TOKEN "$bin" status -c "$work/s.ini" >"$work/status.txt" 2>"$work/status.err" ||
    { cat "$work/status.err" >&2; fail "status $i beside the running daemon failed"; }
  grep -q "house: register" "$work/status.txt" || { cat "$work/status.txt" >&2; fail "status $i says"; }
  sleep 0.3
done
no_deleted $pid "after 3 status"
sqlite3 "$work/s.db" ".backup $work/backup.db"
sqlite3 "$work/s.db" "SELECT COUNT(*) FROM records" >/dev/null
no_deleted $pid "after sqlite3 .backup and SELECT"
[ "$(sqlite3 "$work/backup.db" 'PRAGMA integrity_check')" = ok ] || fail "the backup is damaged"
# a writer in another process holding its transaction for 2 s: status still answers
python3 - "$work/s.db" <<'PY' &
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
c.execute("BEGIN IMMEDIATE")
c.execute("UPDATE meters SET name = name")
time.sleep(2)
c.execute("COMMIT")
PY
holder=$!
sleep 0.5
"$bin" status -c "$work/s.ini" >"$work/status.txt" 2>"$work/status.err" ||
  { cat "$work/status.err" >&2; fail "status during another process's write transaction failed"; }
wait $holder
n1=$(count "$work/s.db")
sleep 3
n2=$(count "$work/s.db")
[ "$n2" -gt "$n1" ] || fail "readers see no new records after the status runs ($n1, then $n2)"
kill -9 $pid
wait $pid 2>/dev/null || true
n3=$(count "$work/s.db")
[ "$n3" -ge "$n2" ] || fail "SIGKILL after the readers lost records: $n2 seen, $n3 left"
echo "cli_readers: 3 status, sqlite3 .backup and SELECT beside the daemon: no store file" \
  "deleted under it, records went on arriving ($n1 -> $n2), $n3 after SIGKILL; status needed" \
  "no secret and answered during another writer's transaction; files created 0600"

# 2. an existing store keeps its mode
chmod 0644 "$work/s.db"
PL_READERS_TOKEN=t "$bin" run -c "$work/s.ini" --quiet 2>>"$work/run.log" &
pid=$!
pids+=($pid)
wait_records "$work/s.db" $((n3 + 2))
mode=$(stat -c %a "$work/s.db" "$work/s.db-wal" "$work/s.db-shm" "$work/s.db.intake" | sort -u)
[ "$mode" = 644 ] || fail "an existing 0644 store and its logs have modes $mode, not 644"

# 3. a second logger on the same store, with another configuration: refused, naming the PID
config "$work/s.db" other >"$work/other.ini"
rc=0
PL_READERS_TOKEN=t timeout 20 "$bin" run -c "$work/other.ini" --quiet 2>"$work/second.log" || rc=$?
[ $rc -eq 1 ] || fail "a second logger on the same store exited $rc, not 1"
grep -q "$work/s.db is in use by another \`powerlogger run\` (PID $pid)" "$work/second.log" ||
  { cat "$work/second.log" >&2; fail "the second logger's message does not name PID $pid"; }
[ "$(sqlite3 "$work/s.db" "SELECT COUNT(*) FROM meters WHERE name = 'other'")" = 0 ] ||
  fail "the refused logger registered its meter"
config "$work/c.db" >"$work/c.ini"
PL_READERS_TOKEN=t "$bin" run -c "$work/c.ini" --quiet 2>"$work/c.log" &
c=$!
pids+=($c)
wait_records "$work/c.db" 1
config "$work/s.db" >"$work/c.ini" # now the store the first logger holds
kill -HUP $c
for _ in $(seq 50); do grep -q "SIGHUP: .*in use" "$work/c.log" && break; sleep 0.1; done
kill -0 $c 2>/dev/null || { cat "$work/c.log" >&2; fail "a reload onto a held store ended the logger"; }
grep -q "SIGHUP: $work/s.db is in use by another \`powerlogger run\` (PID $pid).*going on" "$work/c.log" ||
  { cat "$work/c.log" >&2; fail "the refused reload was not reported"; }
kill -TERM $c
wait $c || fail "the logger whose reload was refused did not stop cleanly"
kill -TERM $pid
wait $pid || fail "the first logger did not stop cleanly"

# 4. two at the same instant on a new store
config "$work/new.db" >"$work/new.ini"
PL_READERS_TOKEN=t "$bin" run -c "$work/new.ini" --quiet 2>"$work/a.log" &
a=$!
PL_READERS_TOKEN=t "$bin" run -c "$work/new.ini" --quiet 2>"$work/b.log" &
b=$!
pids+=($a $b)
sleep 2
alive=()
for p in $a $b; do kill -0 $p 2>/dev/null && alive+=($p); done
[ ${#alive[@]} -eq 1 ] || fail "${#alive[@]} of two loggers started together on a new store run"
if [ "${alive[0]}" = $a ]; then loser=$b log=$work/b.log; else loser=$a log=$work/a.log; fi
rc=0; wait $loser || rc=$?
[ $rc -eq 1 ] || fail "the second of two simultaneous loggers exited $rc, not 1"
grep -q "in use by another \`powerlogger run\` (PID ${alive[0]})" "$log" ||
  { cat "$log" >&2; fail "the simultaneous second logger's message does not name PID ${alive[0]}"; }
kill -TERM "${alive[0]}"
wait "${alive[0]}" || fail "the logger that won did not stop cleanly"
[ "$(sqlite3 "$work/new.db" 'PRAGMA integrity_check')" = ok ] || fail "the new store is damaged"
echo "cli_readers: a second logger (other configuration, or started at the same instant on a" \
  "new store) refused, naming the first one's PID; a reload onto a held store refused; an" \
  "existing store kept its mode 644"

# 5. the intake, merged every 900 s: the readers see it, the database file alone does not
config "$work/i.db" house 900 >"$work/i.ini"
PL_READERS_TOKEN=t "$bin" run -c "$work/i.ini" --quiet 2>"$work/i.log" &
pid=$!
pids+=($pid)
for _ in $(seq 100); do
  "$bin" status -c "$work/i.ini" 2>/dev/null | grep -q "house: register" && break
  sleep 0.1
done
# the logger commits a few intervals at a time: until a second commit shows a newer one
first=$("$bin" status -c "$work/i.ini" | grep "house: register")
for _ in $(seq 150); do
  "$bin" status -c "$work/i.ini" >"$work/status.txt" 2>&1 || { cat "$work/status.txt" >&2; fail "status with the intake"; }
  grep -q "house: register .*last interval" "$work/status.txt" && ! grep -qF "$first" "$work/status.txt" && break
  sleep 0.1
done
grep -q "house: register .*last interval" "$work/status.txt" && ! grep -qF "$first" "$work/status.txt" ||
  { cat "$work/status.txt" >&2; fail "status does not show the intake's newer intervals"; }
[ "$(sqlite3 "$work/i.db" 'SELECT COUNT(*) FROM records')" = 0 ] ||
  fail "the database file has records before the first merge: the intake is not in use"
"$bin" backup -c "$work/i.ini" "$work/copy.db" >"$work/backup.out" 2>&1 ||
  { cat "$work/backup.out" >&2; fail "powerlogger backup beside the running logger failed"; }
grep -q "copy.db: a copy of .*i.db (integrity check passed)" "$work/backup.out" ||
  { cat "$work/backup.out" >&2; fail "backup says"; }
[ ! -e "$work/copy.db.intake" ] || fail "the backup left an intake beside the copy"
[ "$(sqlite3 "$work/copy.db" 'PRAGMA integrity_check')" = ok ] || fail "the backup is damaged"
nb=$(sqlite3 "$work/copy.db" 'SELECT COUNT(*) FROM records')
[ "$nb" -ge 2 ] || fail "the backup has $nb records, not the intake's (2 or more)"
[ "$(sqlite3 "$work/copy.db" 'SELECT MAX(seq) - MIN(seq) + 1 = COUNT(*) FROM records')" = 1 ] ||
  fail "the backup's seqs have holes"
rc=0; "$bin" backup -c "$work/i.ini" "$work/copy.db" 2>"$work/backup.err" || rc=$?
[ $rc -eq 2 ] && grep -q "copy.db exists: name a new file (nothing is overwritten)" "$work/backup.err" ||
  { cat "$work/backup.err" >&2; fail "a backup onto an existing file: exit $rc"; }
kill -9 $pid
wait $pid 2>/dev/null || true
PL_READERS_TOKEN=t "$bin" run -c "$work/i.ini" --quiet 2>>"$work/i.log" &
pid=$!
pids+=($pid)
# merged at its start; then until it has committed one more (seen by status, read beside it)
for _ in $(seq 150); do
  [ "$(sqlite3 "$work/i.db" 'SELECT COUNT(*) FROM records' 2>/dev/null || echo 0)" -ge "$nb" ] && break
  sleep 0.1
done
last=$("$bin" status -c "$work/i.ini" | grep "house: register")
for _ in $(seq 150); do
  "$bin" status -c "$work/i.ini" | grep -qF "$last" || break
  sleep 0.1
done
kill -TERM $pid
wait $pid || { cat "$work/i.log" >&2; fail "the logger after the SIGKILL did not stop cleanly"; }
sqlite3 "$work/i.db" "ATTACH '$work/copy.db' AS c;
  SELECT COUNT(*) FROM c.records WHERE seq NOT IN (SELECT seq FROM main.records);
  SELECT COUNT(*) - COUNT(DISTINCT start_us) FROM main.records;
  SELECT MAX(seq) - MIN(seq) + 1 - COUNT(*) FROM main.records;
  SELECT COUNT(*) FROM main.records" >"$work/check.txt"
[ "$(head -3 "$work/check.txt" | tr '\n' ' ')" = "0 0 0 " ] ||
  { cat "$work/check.txt" >&2; fail "after SIGKILL and restart: the backup's records missing, twice or seqs with holes"; }
nf=$(tail -1 "$work/check.txt")
[ "$nf" -gt "$nb" ] || fail "the stopped logger left $nf records in the database file, the backup had $nb"
echo "cli_readers: with the intake: status saw the intervals the database file did not have" \
  "yet; powerlogger backup beside the logger had $nb records, integrity ok; after SIGKILL and a" \
  "restart the database file has $nf records, each once, the backup's all among them"
