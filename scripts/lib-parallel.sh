# SPDX-License-Identifier: MIT
# Sourced by scripts that run many independent programs: for_each_parallel JOBS FUNC ARG...
# calls FUNC ARG for each ARG, at most JOBS at a time, and returns when all have ended. FUNC
# records its own outcome (the callers write an exit status file per ARG), so one failure
# neither stops the others nor is lost.
for_each_parallel() {
  local jobs=$1 fn=$2 running=0 a
  shift 2
  for a in "$@"; do
    "$fn" "$a" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
      wait -n || true
      running=$((running - 1))
    fi
  done
  wait || true
}
