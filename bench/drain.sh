#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Drain speed: 100,000 stored records delivered by `powerlogger run` to a local influxd, against
# curl posting the same line protocol in the same batch sizes (5000 lines, one kept-alive
# connection) to the same server in the same run. The two sides take turns, ROUNDS times (default
# 5), each into a fresh database; the best time of each side is compared (the machine's noise
# only ever adds time), and the median of the per-round ratios is shown beside it.
# Target: run >= 0.9 of curl's throughput. Two views, both printed:
#  - end to end: each process from start to exit (the run's includes loading its libraries,
#    opening the store and its integrity check; curl's its own start);
#  - delivery: from the first request to the last response, i.e. throughput proper (curl's
#    -w time_total summed over its transfers; the run's own figure from its last log line,
#    first request to last acknowledgement).
set -euo pipefail
build=${1:-build}
n=${PL_DRAIN_RECORDS:-100000}
batch=5000
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
export PL_INFLUX_DIR="$work/influx"
mkdir -p "$PL_INFLUX_DIR"
trap 'bash "$here/scripts/influxd.sh" stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
url=$(bash "$here/scripts/influxd.sh" start 2>/dev/null)
count() {
  curl -sS -G "$url/query" --data-urlencode "db=$1" \
    --data-urlencode "q=SELECT count(value) FROM energy_meter_reading" |
    python3 -c 'import json,sys; d=json.load(sys.stdin)["results"][0]; print(d["series"][0]["values"][0][1] if "series" in d else 0)'
}
now() { date +%s.%N; }

# the store as the logger leaves it when its sink was away: the sink known, nothing delivered
"$here/$build/fillstore" "$work/base.db" "$work/all.lp" "$n" --sink local 2>/dev/null
(cd "$work" && split -l $batch -d -a 4 all.lp chunk.)
rounds=${ROUNDS:-5}
best_curl=999999 best_run=999999 ratios="" best_curl_x=999999 best_run_x=999999
for round in $(seq "$rounds"); do
  db=curl$round
  curl -sS -XPOST "$url/query" --data-urlencode "q=CREATE DATABASE $db" >/dev/null
  args=()
  for f in "$work"/chunk.*; do
    [ ${#args[@]} -gt 0 ] && args+=(--next)
    args+=(-sS -o /dev/null -w '%{time_total}\n' --data-binary "@$f" "$url/write?db=$db&precision=s")
  done
  t0=$(now); curl "${args[@]}" >"$work/curl.times"; t1=$(now)
  x=$(python3 -c "import sys; print(sum(float(l) for l in open('$work/curl.times')))")
  best_curl_x=$(python3 -c "print(min($best_curl_x, $x))")
  c=$(count $db); [ "$c" -eq "$n" ] || { echo "drain: curl wrote $c of $n" >&2; exit 1; }
  t_curl=$(python3 -c "print($t1 - $t0)")
  best_curl=$(python3 -c "print(min($best_curl, $t_curl))")

  db=pl$round
  curl -sS -XPOST "$url/query" --data-urlencode "q=CREATE DATABASE $db" >/dev/null
  cp "$work/base.db" "$work/run$round.db"
  printf '[store]\npath = %s\n\n[influxdb local]\nurl = %s\ndatabase = %s\nbatch_max_records = %d\n' \
    "$work/run$round.db" "$url" "$db" $batch >"$work/run$round.ini"
  t0=$(now)
  "$here/$build/powerlogger" run -c "$work/run$round.ini" --until-drained --quiet 2>"$work/run.log"
  t1=$(now)
  x=$(sed -n 's/.* records delivered in this run, \([0-9.]*\) s from the first request.*/\1/p' "$work/run.log")
  [ -n "$x" ] || { cat "$work/run.log" >&2; echo "drain: no delivery time in the log" >&2; exit 1; }
  best_run_x=$(python3 -c "print(min($best_run_x, $x))")
  c=$(count $db); [ "$c" -eq "$n" ] || { echo "drain: run wrote $c of $n" >&2; exit 1; }
  best_run=$(python3 -c "print(min($best_run, $t1 - $t0))")
  ratios="$ratios $(python3 -c "print($t_curl / ($t1 - $t0))")"
done
python3 - "$n" "$best_curl" "$best_run" "$best_curl_x" "$best_run_x" $ratios <<'PY'
import statistics, sys
n, c, r, cx, rx = (int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]),
                   float(sys.argv[5]))
ratios = sorted(float(x) for x in sys.argv[6:])
print(f"drain: {n} records, batches of 5000, best of {len(ratios)} rounds: curl {c:.3f} s "
      f"({n/c:,.0f} records/s), powerlogger run {r:.3f} s ({n/r:,.0f} records/s); "
      f"run/curl throughput {c/r:.2f} (per round: median {statistics.median(ratios):.2f}, "
      f"range {ratios[0]:.2f}-{ratios[-1]:.2f}; target 0.9)")
print(f"drain, delivery only (first request to last response), best of {len(ratios)}: curl "
      f"{cx:.3f} s ({n/cx:,.0f} records/s), powerlogger run {rx:.3f} s ({n/rx:,.0f} records/s); "
      f"run/curl throughput {cx/rx:.2f} (target 0.9)")
PY
