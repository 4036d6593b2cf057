#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The rollup queries on five years of records: bench/query.sh BUILD [RUNS]
#   A store of 5 years of 20 s records for 2 meters (15.8 M rows) is made once by
#   BUILD/querybench gen and kept as BUILD/query-5y.db (a rerun reuses it unless its schema
#   version differs: delete it to make it again); then BUILD/querybench time runs the
#   dashboard's and the report's queries RUNS times (default 20) in local time (TZ,
#   Europe/Berlin unless set): 30 daily buckets, 12 monthly ones, a 24 h power series at 20 s
#   and 60 s, per meter, and the same 30-day and 12-month answers summed from the raw records,
#   the baseline. Targets: < 50, < 50, < 20 ms.
#   Not part of `make check` (the first run writes about 1.3 GB and takes minutes).
set -euo pipefail
build=${1:-build}
runs=${2:-20}
store="$build/query-5y.db"
export TZ=${TZ:-Europe/Berlin}

schema=$(sqlite3 -readonly "$store" "PRAGMA user_version" 2>/dev/null || echo none)
if [ ! -f "$store" ] || [ ! -f "$store.gen" ] || [ "$schema" != "$("$build/querybench" schema)" ]
then
  rm -f "$store" "$store-wal" "$store-shm" "$store.gen" "$store.tmp" "$store.tmp-wal" \
    "$store.tmp-shm"
  "$build/querybench" gen "$store.tmp" > "$store.gen.tmp"
  mv "$store.tmp" "$store"
  mv "$store.gen.tmp" "$store.gen"
  cat "$store.gen"
else
  echo "reusing $store: $(cat "$store.gen") (delete it to make it again)"
fi
size=$(stat -c %s "$store")
echo "store: $size bytes ($((size / 1048576)) MiB); TZ=$TZ; $runs runs"
sqlite3 -readonly "$store" "SELECT name || ': ' || (SELECT COUNT(*) FROM rollups) || ' rows, '
  || printf('%.1f', SUM(pgsize) / 1048576.0) || ' MiB' FROM dbstat WHERE name = 'rollups';
  SELECT name || ': ' || (SELECT COUNT(*) FROM rollups_day) || ' rows, '
  || printf('%.1f', SUM(pgsize) / 1048576.0) || ' MiB' FROM dbstat WHERE name = 'rollups_day'" \
  2>/dev/null || true
# read once, so the first timed run does not measure the disk
cat "$store" > /dev/null
"$build/querybench" time "$store" "$runs"
