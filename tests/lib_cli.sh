# SPDX-License-Identifier: MIT
# Helpers for the shell tests of the `powerlogger` program; sourced, not run (its name keeps it out of
# ctest's tests/cli_*.sh glob). Needs $work set to a scratch directory.
checks=0
fails=0

fail() {
  echo "FAIL: $*" >&2
  fails=$((fails + 1))
}

# run CMD...: runs it with stdout in $work/out, stderr in $work/err; sets $rc.
run() {
  "$@" >"$work/out" 2>"$work/err" </dev/null
  rc=$?
  checks=$((checks + 1))
}

# expect STATUS CMD...: runs the command and checks its exit status.
expect() {
  local want=$1
  shift
  run "$@"
  if [ "$rc" != "$want" ]; then
    fail "'$*' exited $rc, expected $want; stderr: $(head -c 300 "$work/err")"
    return 1
  fi
}
