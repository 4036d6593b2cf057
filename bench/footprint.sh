#!/usr/bin/env bash
# Footprint of `powerlogger run` with one meter: peak RSS, and CPU time for a 1 kHz sample
# stream replayed at real-time pace (a trace file read at speed 1), scaled to an hour.
# Targets: peak RSS under half of vzlogger's 13.6 MB for one channel; under 1 % of one core.
set -euo pipefail
build=${1:-build}
secs=${PL_FOOTPRINT_SECONDS:-60}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$here/$build/powerlogger" simulate --duration $((secs + 30)) --rate 1000 --power 2000 \
  --noise 20 --out "$work/t.csv" --truth /dev/null --quiet
printf '[store]\npath = %s/s.db\n\n[meter house]\nsource = file\nfile = %s/t.csv\nspeed = 1\n' \
  "$work" "$work" >"$work/f.ini"
/usr/bin/time -f '%M %U %S %e' -o "$work/time" \
  "$here/$build/powerlogger" run -c "$work/f.ini" --quiet --duration "$secs" 2>/dev/null
read -r rss_kb user sys wall <"$work/time"
python3 - "$rss_kb" "$user" "$sys" "$wall" <<'PY'
import sys
rss, user, sys_, wall = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
cpu = user + sys_
print(f"footprint: peak RSS {rss/1024:.1f} MiB ({rss/1024/13.6*100:.0f} % of vzlogger's 13.6 MB); "
      f"CPU {cpu:.2f} s over {wall:.0f} s of 1 kHz input at real-time pace = {cpu/wall*100:.2f} % "
      f"of a core, {cpu/wall*3600:.0f} s per hour")
PY
