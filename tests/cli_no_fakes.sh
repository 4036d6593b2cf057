#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The shipped program has no test fakes (issue 10): the FIFO fake kernels of the GPIO and
# serial sources are linked only into powerlogger-fakes, the end-to-end tests' build of the
# program (tests/fakes/main_fakes.c). Checked on the binaries (no "fake" in powerlogger's
# strings or symbols; powerlogger-fakes has them, so the check can fail) and by behaviour:
# with PL_FAKE_GPIO and PL_FAKE_SERIAL naming FIFOs, powerlogger still opens the real devices
# (and finds none), while powerlogger-fakes reads the FIFOs and says that they are fakes.
set -euo pipefail
bin=${1:?usage: cli_no_fakes.sh PATH/TO/powerlogger}
fakes="$(dirname "$bin")/powerlogger-fakes"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "cli_no_fakes: $*" >&2; exit 1; }

# (AddressSanitizer's runtime, linked into the sanitizer build, has a "fake stack" of its own)
not_ours() { grep -v -i -e 'fake[ _]\?stack'; }
if strings "$bin" | grep -i fake | not_ours >"$work/hits"; then
  fail "strings of $bin name a fake: $(head -5 "$work/hits" | tr '\n' ' ')"
fi
if nm "$bin" | grep -i fake | not_ours >"$work/hits"; then
  fail "symbols of $bin name a fake: $(head -5 "$work/hits" | tr '\n' ' ')"
fi
# (into files: grep -q would stop reading early, and pipefail count that as a failure)
strings "$fakes" >"$work/strings"
nm "$fakes" >"$work/symbols"
grep -q "gpio source is a FAKE" "$work/strings" ||
  fail "$fakes has no GPIO fake (the check above proves nothing)"
grep -q "pl_serial_fake_from_env" "$work/symbols" || fail "$fakes has no serial fake"

mkfifo "$work/gpio.fifo" "$work/serial.fifo"
cat >"$work/live.ini" <<INI
[store]
path = $work/live.db

[meter g]
source = gpio
device = gpiochip0
line = 3
imp_per_kwh = 1000
dev_root = $work/dev

[meter s]
source = serial
device = ttyUSB0
imp_per_kwh = 1000
dev_root = $work/dev
INI
export PL_FAKE_GPIO="$work/gpio.fifo" PL_FAKE_SERIAL="$work/serial.fifo"
"$bin" run -c "$work/live.ini" --quiet --duration 1 2>"$work/product.log" ||
  { cat "$work/product.log" >&2; fail "powerlogger run failed"; }
grep -q "meter g: device gpiochip0: no such GPIO chip ($work/dev/gpiochip0 does not exist" \
  "$work/product.log" ||
  { cat "$work/product.log" >&2; fail "powerlogger did not open the real GPIO chip"; }
grep -q "meter s: device ttyUSB0: no such serial port ($work/dev/ttyUSB0 does not exist)" \
  "$work/product.log" ||
  { cat "$work/product.log" >&2; fail "powerlogger did not open the real serial port"; }
if grep -qi fake "$work/product.log"; then
  cat "$work/product.log" >&2; fail "powerlogger used a fake"
fi

rm -f "$work/live.db"*
"$fakes" run -c "$work/live.ini" --quiet --duration 1 2>"$work/fakes.log" ||
  { cat "$work/fakes.log" >&2; fail "powerlogger-fakes run failed"; }
grep -q "meter g: gpio source is a FAKE for tests (PL_FAKE_GPIO=$work/gpio.fifo)" \
  "$work/fakes.log" &&
  grep -q "meter s: serial source is a FAKE for tests (PL_FAKE_SERIAL=$work/serial.fifo)" \
    "$work/fakes.log" ||
  { cat "$work/fakes.log" >&2; fail "powerlogger-fakes did not use its fakes"; }
if grep -q "no such" "$work/fakes.log"; then
  cat "$work/fakes.log" >&2; fail "powerlogger-fakes looked for real devices"
fi
echo "cli_no_fakes: ok"
