#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The configurations shipped as documentation must stay valid: run by ctest as
#   bash tests/cli_examples.sh /path/to/powerlogger
# Every docs/examples/*.ini and docs/powerlogger.example.ini passes `powerlogger check-config`
# (exit 0, a summary with at least one meter, no error, no warning that a comment does not
# explain), none holds a secret inline, and the annotated file's commented-out live meters are
# valid once uncommented.
set -u

PL=${1:?usage: cli_examples.sh /path/to/powerlogger}
SRC=${PL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
work=$(mktemp -d "${TMPDIR:-/tmp}/cli_examples.XXXXXX")
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/lib_cli.sh"

# The examples show secrets only commented out (token_env, password_file): a variable from the
# caller's environment must not make one of them pass or fail here.
unset INFLUX_TOKEN INFLUX_PASSWORD

files=("$SRC"/docs/examples/*.ini "$SRC/docs/powerlogger.example.ini")
[ -e "${files[0]}" ] || fail "no docs/examples/*.ini in $SRC"
[ "${#files[@]}" -ge 7 ] || fail "expected at least 6 examples besides the annotated one, found $((${#files[@]} - 1))"

for f in "${files[@]}"; do
  name=${f#"$SRC"/}
  if ! expect 0 "$PL" check-config "$f"; then
    continue
  fi
  grep -q '^meters: [1-9]' "$work/out" || fail "$name: no meter in the summary: $(head -c 300 "$work/out")"
  if grep -v ': warning: ' "$work/err" | grep -q .; then
    fail "$name: check-config printed more than warnings: $(head -c 300 "$work/err")"
  fi
  # A warning is allowed only where a comment in the file explains it (mentions the warning).
  if grep -q ': warning: ' "$work/err" && ! grep -Eqi '^[[:space:]]*[;#].*warning' "$f"; then
    fail "$name: a warning that no comment explains: $(head -c 300 "$work/err")"
  fi
  if grep -Eq '^[[:space:]]*(password|token)[[:space:]]*[=:]' "$f"; then
    fail "$name: a secret written inline (use password_file/password_env or token_file/token_env)"
  fi
done

# The annotated example's commented-out live meters ([meter NAME] blocks with source = iio, gpio
# or serial) must be valid once uncommented, as a user would do.
awk '
  function flush() { if (block ~ /source = (iio|gpio|serial)\n/) printf "%s", block; block = "" }
  /^;\[meter / { flush(); on = 1; block = substr($0, 2) "\n"; next }
  /^;?\[/ { flush(); on = 0; next }
  on && /^;[a-z_]+ = / { block = block substr($0, 2) "\n" }
  END { flush() }
' "$SRC/docs/powerlogger.example.ini" >"$work/live.ini"
if expect 0 "$PL" check-config "$work/live.ini"; then
  for src in iio gpio serial; do
    grep -q "source $src " "$work/out" || fail "live examples: no $src meter in: $(head -c 400 "$work/out")"
  done
  ! grep -q . "$work/err" || fail "live examples: $(head -c 300 "$work/err")"
fi

# The test would be worthless if check-config accepted anything: a broken copy must fail.
sed 's/^source = iio$/source = iio2/' "$SRC/docs/examples/pi-ads1115-photodiode.ini" \
  >"$work/broken.ini"
expect 2 "$PL" check-config "$work/broken.ini"
grep -qF "[meter house] source: 'iio2' is not one of" "$work/err" ||
  fail "broken copy: expected a source error, got: $(head -c 300 "$work/err")"

echo "cli_examples: $checks commands, $fails failures"
[ "$fails" = 0 ]
