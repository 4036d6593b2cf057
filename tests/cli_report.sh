#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `powerlogger report` against the store's own records (TZ=Europe/Berlin, so that a day of 23
# hours is in the range):
#  1. a store filled by bench/fillstore with 60 s records from 2026-03-20 to 2026-04-09 (one
#     day left out, 2026-04-02) and a second meter: the daily and monthly CSV rows equal a
#     sqlite3 sum over the records grouped by local date and month (kWh, pulses, records,
#     covered seconds, peak), the CSV parses (python3 csv) with docs/http.md's columns after
#     `meter`, the DST day is 23 h long, an empty day is a row of zeros;
#  2. the table: its total line and total cost equal the sqlite3 sum, the missing day is
#     marked incomplete with 0.0% coverage, --meter picks one meter;
#  3. beside a running logger (sim, 1 s intervals): report -c answers with its records, and
#     the logger goes on committing;
#  4. errors: an unknown meter names the known ones, bad dates, --from after --to, a bad
#     price, a missing store, a file that is no store, a store without meters.
set -euo pipefail
bin=${1:?usage: cli_report.sh PATH/TO/powerlogger}
fillstore=$(dirname "$bin")/fillstore
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "cli_report: line $LINENO: a command failed (exit $?)" >&2' ERR
source "${PL_SOURCE_DIR:-$(dirname "$0")/..}/tests/lib_cli.sh"
export TZ=Europe/Berlin
s=$work/s.db

# 1. known records: 2026-03-20 00:00 local to 2026-04-02 00:00, then 2026-04-03 to 04-10
t0=$(date -d '2026-03-20 00:00' +%s)
t1=$(date -d '2026-04-02 00:00' +%s)
t2=$(date -d '2026-04-03 00:00' +%s)
t3=$(date -d '2026-04-10 00:00' +%s)
"$fillstore" "$s" "$work/lp1" $(((t1 - t0) / 60)) --interval 60 --start "$t0" 2>/dev/null
"$fillstore" "$s" "$work/lp2" $(((t3 - t2) / 60)) --interval 60 --start "$t2" 2>/dev/null
"$fillstore" "$s" "$work/lp3" 3000 --meter garage --interval 60 --start "$t0" 2>/dev/null

q() { sqlite3 -csv "$s" "$1"; }
# sqlite3's 'localtime' is the same TZ's
by() { # $1 strftime format of the group; prints group,kwh,pulses,records,covered_s,peak_w
  q "SELECT strftime('$1', start_us / 1000000, 'unixepoch', 'localtime'),
       printf('%.6f', SUM(energy_uwh) / 1e9), SUM(pulses), COUNT(*), SUM(length_s),
       printf('%.3f', MAX(peak_mw) / 1000.0)
     FROM records JOIN meters ON meters.id = meter_id WHERE meters.name = 'house'
     GROUP BY 1 ORDER BY 1"
}
by '%Y-%m-%d' >"$work/want-daily"
by '%Y-%m' >"$work/want-monthly"

expect 0 "$bin" report --store "$s" --meter house --from 2026-03-20 --to 2026-04-09 --csv ||
  true
cp "$work/out" "$work/daily.csv"
# the rows with records, as the sqlite3 groups
awk -F, 'NR > 1 && $8 > 0 { print substr($2, 1, 10) "," $4 "," $6 "," $8 "," $9 "," $11 }' \
  "$work/daily.csv" >"$work/got-daily"
diff "$work/want-daily" "$work/got-daily" >"$work/diff" ||
  fail "daily CSV differs from the sqlite3 sums: $(head -c 600 "$work/diff")"
checks=$((checks + 1))
[ "$(wc -l <"$work/want-daily")" -eq 20 ] || fail "the test's store has $(wc -l <"$work/want-daily") days, not 20"
grep -q '^house,2026-03-29T00:00:00+01:00,2026-03-30T00:00:00+02:00,' "$work/daily.csv" ||
  fail "no 23-hour row for the DST day: $(grep 2026-03-29T "$work/daily.csv")"
grep -q '^house,2026-04-02T00:00:00+02:00,2026-04-03T00:00:00+02:00,0.000000,,0,0,0,0,0,0.000$' \
  "$work/daily.csv" || fail "the empty day is not a row of zeros: $(grep 2026-04-02T "$work/daily.csv")"
checks=$((checks + 2))
python3 - "$work/daily.csv" <<'EOF' || fail "the CSV does not parse as docs/http.md's columns"
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
assert rows[0] == ["meter", "start", "end", "kwh", "cost", "pulses", "rejected", "records",
                   "covered_s", "gap_records", "peak_w"], rows[0]
assert len(rows) == 1 + 21, len(rows)  # 2026-03-20 .. 2026-04-09, inclusive
for r in rows[1:]:
    assert len(r) == 11 and r[0] == "house" and r[4] == "", r
    float(r[3]); float(r[10]); [int(x) for x in r[5:10]]
EOF
checks=$((checks + 1))

expect 0 "$bin" report --store "$s" -m house --monthly --from 2026-03 --to 2026-04 --csv || true
awk -F, 'NR > 1 && $8 > 0 { print substr($2, 1, 7) "," $4 "," $6 "," $8 "," $9 "," $11 }' \
  "$work/out" >"$work/got-monthly"
diff "$work/want-monthly" "$work/got-monthly" >"$work/diff" ||
  fail "monthly CSV differs from the sqlite3 sums: $(head -c 600 "$work/diff")"
checks=$((checks + 1))

# 2. the table and its total line, with a price
total=$(q "SELECT printf('%.3f', SUM(energy_uwh) / 1e9) FROM records WHERE meter_id =
  (SELECT id FROM meters WHERE name = 'house')")
cost=$(q "SELECT printf('%.2f', SUM(energy_uwh) / 1e9 * 0.25) FROM records WHERE meter_id =
  (SELECT id FROM meters WHERE name = 'house')")
expect 0 "$bin" report --store "$s" --from 2026-03-20 --to 2026-04-09 --price 0.25 \
  --currency EUR || true
cp "$work/out" "$work/table"
grep -q "^house$" "$work/table" && grep -q "^garage$" "$work/table" ||
  fail "the table does not have both meters: $(cat "$work/table")"
sed -n '/^house$/,/^$/p' "$work/table" >"$work/house-table"
grep -Eq "^  total +$total +$cost +[0-9.]+ +" "$work/house-table" ||
  fail "total line is not $total kWh, $cost EUR: $(grep total "$work/house-table")"
grep -q "cost EUR" "$work/house-table" || fail "no 'cost EUR' heading"
grep -Eq '^  2026-04-02 +0\.000 +0\.00 +- +0\.0% \*$' "$work/house-table" ||
  fail "the missing day is not marked: $(grep 2026-04-02 "$work/house-table")"
grep -Eq '^  2026-04-01 .* 100\.0%$' "$work/house-table" ||
  fail "a complete day is marked: $(grep 2026-04-01 "$work/house-table")"
checks=$((checks + 4))
# the price from the configuration's [http], as the dashboard's; --price overrides it
printf '[store]\npath = %s\n\n[meter house]\nsource = sim\nimp_per_kwh = 1000\n\n' "$s" \
  >"$work/p.ini"
printf '[http]\nlisten = 127.0.0.1:8080\nprice_per_kwh = 0.25\ncurrency = CHF\n' >>"$work/p.ini"
expect 0 "$bin" report -c "$work/p.ini" -m house --from 2026-03-20 --to 2026-04-09 || true
grep -Eq "^  total +$total +$cost +[0-9.]+ +" "$work/out" && grep -q "cost CHF" "$work/out" ||
  fail "the configuration's price: $(grep -E 'total|cost' "$work/out")"
expect 0 "$bin" report -c "$work/p.ini" -m house --from 2026-03-20 --to 2026-03-20 --csv \
  --price 1 || true
want=$(awk -F, 'NR == 2 { print $4 }' "$work/out")
grep -q "^house,2026-03-20T00:00:00+01:00,2026-03-21T00:00:00+01:00,$want,${want%00}," "$work/out" ||
  fail "--price 1 beside the configuration's: $(tail -n 1 "$work/out")"
checks=$((checks + 2))
expect 0 "$bin" report --store "$s" --meter garage --from 2026-03-20 --to 2026-03-21 || true
! grep -q house "$work/out" && grep -q '^garage$' "$work/out" ||
  fail "--meter garage shows: $(cat "$work/out")"
checks=$((checks + 1))

# 3. beside a running logger (sqlite3 waits out the logger's commits)
live_count() { sqlite3 -cmd '.timeout 5000' "$work/live.db" 'SELECT COUNT(*) FROM records'; }
printf '[store]\npath = %s\nmerge_s = 1\n\n[meter house]\nsource = sim\nimp_per_kwh = 1000\n' \
  "$work/live.db" >"$work/live.ini"
printf 'interval_s = 1\n' >>"$work/live.ini"
"$bin" run -c "$work/live.ini" --quiet 2>"$work/run.log" &
pids+=($!)
for _ in $(seq 100); do
  [ -s "$work/live.db" ] &&
    [ "$(live_count 2>/dev/null || echo 0)" -ge 3 ] &&
    break
  sleep 0.1
done
n1=$(live_count)
expect 0 "$bin" report -c "$work/live.ini" --hourly --csv || true
got=$(awk -F, 'NR > 1 { n += $8 } END { print n + 0 }' "$work/out")
[ "$got" -ge "$n1" ] || fail "report beside the running logger counts $got records, the store had $n1"
for _ in $(seq 100); do # a busy machine may take a while for the next 1 s interval
  n2=$(live_count)
  [ "$n2" -le "$n1" ] || break
  sleep 0.1
done
[ "$n2" -gt "$n1" ] || fail "the logger stopped committing beside report ($n1, then $n2)"
kill -0 "${pids[0]}" || fail "the logger died: $(cat "$work/run.log")"
kill -TERM "${pids[0]}"
wait "${pids[0]}" || fail "the logger beside report exited $?: $(cat "$work/run.log")"
pids=()
checks=$((checks + 4))

# 4. errors
experr() { # $1 status, $2 text in stderr, then the arguments
  local want=$1 text=$2
  shift 2
  expect "$want" "$bin" report "$@" || return 0
  grep -qF -- "$text" "$work/err" || fail "report $*: stderr lacks '$text': $(cat "$work/err")"
}
experr 2 "no meter 'hous' in the store $s (it has: house, garage)" --store "$s" --meter hous
experr 2 "--from '2026-13-01': not a date (YYYY-MM-DD or YYYY-MM" --store "$s" --from 2026-13-01
experr 2 "--to '2026-02-30': not a date" --store "$s" --to 2026-02-30
experr 2 "--from 'yesterday': not a date" --store "$s" --from yesterday
experr 2 "is after --to" --store "$s" --from 2026-04-05 --to 2026-04-01
experr 2 "--price 'abc': not a price" --store "$s" --price abc
experr 2 "one of --daily, --monthly and --hourly" --store "$s" --daily --monthly
experr 2 "unexpected argument 'x'" --store "$s" x
experr 1 "$work/none.db" --store "$work/none.db"
echo "not a store" >"$work/text.db"
experr 1 "not a PowerLogger store (or damaged): $work/text.db" --store "$work/text.db"
cp "$s" "$work/empty.db"
sqlite3 "$work/empty.db" 'DELETE FROM records; DELETE FROM checkpoints; DELETE FROM meters'
experr 1 "has no meter yet: nothing to report" --store "$work/empty.db"
expect 0 "$bin" report --help && grep -q -- "--monthly" "$work/out" || fail "report --help"

[ "$fails" -eq 0 ] || { echo "cli_report: $fails of $checks checks failed" >&2; exit 1; }
echo "cli_report: $checks checks passed: daily and monthly CSV equal sqlite3's sums over" \
  "$(wc -l <"$work/want-daily") days of records (DST day 23 h), total and cost lines, a missing" \
  "day marked, a run beside a logger ($n1 -> $n2 records), errors"
