#!/usr/bin/env bash
# Drain speed: 100,000 stored records delivered by `powerlogger run` to a local influxd, against
# curl posting the same line protocol in the same batch sizes (5000 lines, one kept-alive
# connection) to the same server in the same run. The two sides take turns, ROUNDS times (default
# 5), each into a fresh database; the best time of each side is compared (the machine's noise
# only ever adds time), and the median of the per-round ratios is shown beside it.
# Target: run >= 0.9 of curl's throughput. The run's time includes its start: loading the
# libraries, opening the store and checking its integrity (quick_check).
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

"$here/$build/fillstore" "$work/base.db" "$work/all.lp" "$n" 2>/dev/null
(cd "$work" && split -l $batch -d -a 4 all.lp chunk.)
rounds=${ROUNDS:-5}
best_curl=999999 best_run=999999 ratios=""
for round in $(seq "$rounds"); do
  db=curl$round
  curl -sS -XPOST "$url/query" --data-urlencode "q=CREATE DATABASE $db" >/dev/null
  args=()
  for f in "$work"/chunk.*; do
    [ ${#args[@]} -gt 0 ] && args+=(--next)
    args+=(-sS -o /dev/null --data-binary "@$f" "$url/write?db=$db&precision=s")
  done
  t0=$(now); curl "${args[@]}"; t1=$(now)
  c=$(count $db); [ "$c" -eq "$n" ] || { echo "drain: curl wrote $c of $n" >&2; exit 1; }
  t_curl=$(python3 -c "print($t1 - $t0)")
  best_curl=$(python3 -c "print(min($best_curl, $t_curl))")

  db=pl$round
  curl -sS -XPOST "$url/query" --data-urlencode "q=CREATE DATABASE $db" >/dev/null
  cp "$work/base.db" "$work/run$round.db"
  printf '[store]\npath = %s\n\n[influxdb local]\nurl = %s\ndatabase = %s\nbatch_max_records = %d\n' \
    "$work/run$round.db" "$url" "$db" $batch >"$work/run$round.ini"
  t0=$(now); "$here/$build/powerlogger" run -c "$work/run$round.ini" --until-drained --quiet; t1=$(now)
  c=$(count $db); [ "$c" -eq "$n" ] || { echo "drain: run wrote $c of $n" >&2; exit 1; }
  best_run=$(python3 -c "print(min($best_run, $t1 - $t0))")
  ratios="$ratios $(python3 -c "print($t_curl / ($t1 - $t0))")"
done
python3 - "$n" "$best_curl" "$best_run" $ratios <<'PY'
import statistics, sys
n, c, r = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
ratios = sorted(float(x) for x in sys.argv[4:])
print(f"drain: {n} records, batches of 5000, best of {len(ratios)} rounds: curl {c:.3f} s "
      f"({n/c:,.0f} records/s), powerlogger run {r:.3f} s ({n/r:,.0f} records/s); "
      f"run/curl throughput {c/r:.2f} (per round: median {statistics.median(ratios):.2f}, "
      f"range {ratios[0]:.2f}-{ratios[-1]:.2f}; target 0.9)")
PY
