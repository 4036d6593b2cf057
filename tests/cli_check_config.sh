#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Tests of `powerlogger check-config`, run by ctest as
#   bash tests/cli_check_config.sh /path/to/powerlogger
# The annotated example configuration must pass with a summary; a broken file must exit 2
# with every problem as FILE:LINE: [section] key: problem (hint); secrets never appear.
set -u

PL=${1:?usage: cli_check_config.sh /path/to/powerlogger}
SRC=${PL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
work=$(mktemp -d "${TMPDIR:-/tmp}/cli_check_config.XXXXXX")
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/lib_cli.sh"

has() { # FILE TEXT
  grep -qF -- "$2" "$1" || fail "$(basename "$1") lacks '$2'; it was: $(head -c 400 "$1")"
}

lacks() { # FILE TEXT
  ! grep -qF -- "$2" "$1" || fail "$(basename "$1") shows '$2'"
}

# Help and usage.
expect 0 "$PL" check-config --help
has "$work/out" "usage: powerlogger check-config"
expect 2 "$PL" check-config
has "$work/err" "powerlogger check-config: missing FILE"
expect 2 "$PL" check-config --bogus x.ini
has "$work/err" "unknown option '--bogus'"
expect 2 "$PL" check-config "$work/none.ini"
has "$work/err" "$work/none.ini:0: cannot open: No such file or directory"

# The example passes.
expect 0 "$PL" check-config "$SRC/docs/powerlogger.example.ini"
has "$work/out" "meters: 1"
has "$work/out" "house: source sim"
has "$work/out" "local: influxdb api 1 http://localhost:8086, database powerlogger"

# A broken file: every problem, exit 2.
cat >"$work/bad.ini" <<'INI'
[store]
retention_dayz = 3
[meter house]
source = file
interval_s = 0
interval_s = 20
[influxdb db]
api = 2
password = hunter2
password_env = HOME
[mqtt ha]
nonsense line
INI
expect 2 "$PL" check-config "$work/bad.ini"
b="$work/bad.ini"
has "$work/err" "$b:2: [store] retention_dayz: unknown key (did you mean retention_days?)"
has "$work/err" "$b:3: [meter house]: missing key 'file' (source = file needs file = PATH)"
has "$work/err" "$b:5: [meter house] interval_s: 0 is out of range (1..86400)"
has "$work/err" "$b:6: [meter house] interval_s: duplicate key (first set at line 5)"
has "$work/err" "$b:7: [influxdb db]: missing key 'url' (e.g. url = http://localhost:8086)"
has "$work/err" "$b:7: [influxdb db]: missing key 'token' (api = 2 needs token, token_file or token_env)"
has "$work/err" "$b:10: [influxdb db] password_env: conflicts with password at line 9"
has "$work/err" "$b:11: [mqtt ha]: missing key 'url' (e.g. url = mqtt://127.0.0.1:1883)"
has "$work/err" "$b:12: expected 'key = value' or '[section]', not 'nonsense line'"
has "$work/err" "$b:3: warning: [meter house]: imp_per_kwh not set: assuming 1000"
has "$work/err" "$b:9: warning: [influxdb db] password: the file is readable by everyone and holds this secret"
has "$work/err" "powerlogger check-config: $b: 13 errors, 2 warnings"
lacks "$work/err" "hunter2"

# Secrets from a file and the environment: accepted, never shown.
printf 'pw-from-file\n' >"$work/pw"
chmod 600 "$work/pw"
cat >"$work/secret.ini" <<INI
[influxdb a]
url = http://localhost:8086
database = d
username = u
password_file = $work/pw
[meter house]
[influxdb b]
url = http://localhost:8181
api = 3
database = d
token_env = PL_CLI_TOKEN
INI
expect 0 env PL_CLI_TOKEN=tok-from-env "$PL" check-config "$work/secret.ini"
has "$work/out" "password (redacted, from file $work/pw)"
has "$work/out" "token (redacted, from \$PL_CLI_TOKEN)"
lacks "$work/out" "pw-from-file"
lacks "$work/out" "tok-from-env"
chmod 644 "$work/pw"
expect 0 env PL_CLI_TOKEN=tok-from-env "$PL" check-config "$work/secret.ini"
has "$work/err" "$work/secret.ini:5: warning: [influxdb a] password_file: '$work/pw' is readable by everyone"

# Credentials inside the URL: refused (URLs appear in logs), and not echoed.
printf '[influxdb a]\nurl = http://admin:s3cret@localhost:8086/\ndatabase = d\n' >"$work/url.ini"
expect 2 "$PL" check-config "$work/url.ini"
has "$work/err" "$work/url.ini:2: [influxdb a] url: credentials in the URL are not accepted"
lacks "$work/err" "s3cret"

# Live sources: keys of another kind of source are refused where they would do nothing.
cat >"$work/live.ini" <<'INI'
[meter a]
source = gpio
device = gpiochip0
line = 17
polarity = up
imp_per_kwh = 1000
[meter b]
source = iio
device = ads1015
trigger = t0
imp_per_kwh = 1000
[meter c]
source = serial
imp_per_kwh = 1000
channel = 2
INI
expect 2 "$PL" check-config "$work/live.ini"
has "$work/err" "$work/live.ini:5: [meter a] polarity: applies to analog sources only"
has "$work/err" "$work/live.ini:10: [meter b] trigger: applies to mode = buffer only"
has "$work/err" "[meter c]: missing key 'device' (the serial port, e.g. device = /dev/ttyUSB0)"
has "$work/err" "$work/live.ini:15: [meter c] channel: applies to source = iio only"

# One input, one meter: the same GPIO line or serial pin twice is refused at the second.
cat >"$work/twice.ini" <<'INI'
[meter a]
source = gpio
device = gpiochip0
line = 17
imp_per_kwh = 1000
[meter b]
source = gpio
device = gpiochip0
line = 17
imp_per_kwh = 1000
[meter c]
source = serial
device = /dev/ttyUSB0
imp_per_kwh = 1000
[meter d]
source = serial
device = /dev/ttyUSB0
pin = dcd
imp_per_kwh = 1000
INI
expect 2 "$PL" check-config "$work/twice.ini"
has "$work/err" "$work/twice.ini:6: [meter b]: gpiochip0 line 17 is already read by [meter a] (line 1)"
has "$work/err" "1 error, 0 warnings"

# Issue 9: hostile files. Each command runs with its memory and time bounded, so that a
# regression (a line buffer growing on /dev/zero, an open blocking on a FIFO) fails the test
# instead of eating the machine. `ulimit -v` is in KiB. An AddressSanitizer build reserves
# terabytes of address space for its shadow memory and cannot start under `ulimit -v`: it is
# bounded by its own resident-size limit instead.
if grep -q -a AddressSanitizer "$PL"; then
  bounded() { ASAN_OPTIONS="${ASAN_OPTIONS:-}:hard_rss_limit_mb=1000" timeout 20 "$@"; }
else
  bounded() { (ulimit -v 1000000; exec timeout 20 "$@"); }
fi
for cmd in check-config run; do
  if c="-c"; [ "$cmd" = check-config ] && c=""; expect 2 bounded "$PL" $cmd $c /dev/zero; then
    has "$work/err" "/dev/zero:0: is not a regular file (a FIFO or a device is not a configuration)"
  fi
  expect 2 bounded "$PL" $cmd $c "$work" && has "$work/err" "$work:0: is a directory"
done
mkfifo "$work/fifo.ini"
expect 2 bounded "$PL" check-config "$work/fifo.ini" && has "$work/err" "is not a regular file"
printf '[meter a]\nsource = sim\ninterval_s = 2\0000\n' >"$work/nul.ini"
expect 2 bounded "$PL" check-config "$work/nul.ini" &&
  has "$work/err" "$work/nul.ini:3: contains a NUL byte (is this a text file?)"
head -c 3000000 /dev/zero | tr '\0' '#' >"$work/huge.ini"
expect 2 bounded "$PL" check-config "$work/huge.ini" &&
  has "$work/err" "$work/huge.ini:0: is larger than 1 MiB: not a configuration file"
# A configuration with no meter passed and then ran forever doing nothing. With no sink it is
# refused; with a sink only `run --until-drained` (forwarding the store's backlog) takes it.
printf '[store]\npath = %s\n' "$work/nometer.db" >"$work/nometer.ini"
for cmd in check-config run; do
  if c="-c"; [ "$cmd" = check-config ] && c=""; expect 2 bounded "$PL" $cmd $c "$work/nometer.ini"; then
    has "$work/err" "$work/nometer.ini:0: no [meter NAME] section and no sink: there is nothing to log"
  fi
done
printf '[store]\npath = %s\n[influxdb db]\nurl = http://127.0.0.1:1\ndatabase = d\ntimeout_s = 1\n' \
  "$work/nometer.db" >"$work/sinkonly.ini"
expect 0 "$PL" check-config "$work/sinkonly.ini" &&
  has "$work/err" "$work/sinkonly.ini:0: warning: no [meter NAME] section: \`run\` only delivers what the store holds, with --until-drained"
expect 2 bounded "$PL" run -c "$work/sinkonly.ini" &&
  has "$work/err" "no [meter NAME] section: nothing to log (only --until-drained"
[ ! -e "$work/nometer.db" ] || fail "a refused run created its store"

# An inline password in a file everyone can read: a warning like a secret file's, not a refusal.
printf '[meter a]\n[influxdb db]\nurl = http://localhost:1\ndatabase = d\nusername = u\npassword = hunter2\n' \
  >"$work/pw.ini"
chmod 644 "$work/pw.ini"
expect 0 "$PL" check-config "$work/pw.ini" &&
  has "$work/err" "$work/pw.ini:6: warning: [influxdb db] password: the file is readable by everyone and holds this secret"
lacks "$work/err" "hunter2"
chmod 640 "$work/pw.ini"
expect 0 "$PL" check-config "$work/pw.ini" && lacks "$work/err" "warning"

echo "cli_check_config: $checks commands, $fails failures"
[ "$fails" = 0 ]
