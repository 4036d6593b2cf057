#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Debian package on this machine, as CI runs it (`make check-deb`, part of `make check`):
# build it from the tree, lint it, install it, check and run the packaged configuration as the
# packaged user, upgrade to a rebuilt package (the store and a locally changed configuration
# kept), remove it, purge it. Needs root (dpkg -i); whatever it installed is purged at the end,
# on failure too. There is no systemd running in this container: the service is not started;
# the unit is checked with systemd-analyze verify, and the daemon is run as the unit would
# run it (the same user, configuration and working directory) with runuser.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/build-deb/test
conf=/etc/powerlogger/powerlogger.ini
state=/var/lib/powerlogger
store=$state/demo.db
marker=$state/.deb-test # says that leftovers of a killed run are this test's
t0=$(date +%s)

fail() {
  echo "deb-test: FAIL: $*" >&2
  exit 1
}
step() { echo "deb-test: $*"; }

if [ "$(id -u)" != 0 ]; then
  echo "deb-test: skipped (needs root: it installs the package with dpkg -i)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive

# Never replace someone's installation or data: only a machine without the package, or with
# the leftovers of an earlier run of this test, will do.
if dpkg-query -W -f='${Status}' powerlogger 2>/dev/null | grep -q "installed\|config-files"; then
  [ -e "$marker" ] || fail "the powerlogger package is installed here; this test would replace it"
fi
if [ -e "$state" ] && [ ! -e "$marker" ]; then
  fail "$state exists (a kept store?); this test would use it: move it away first"
fi

cleanup() {
  dpkg -P powerlogger >/dev/null 2>&1
  rm -rf "$state" /etc/powerlogger
  if getent passwd powerlogger >/dev/null; then deluser --quiet --system powerlogger >/dev/null 2>&1; fi
  if getent group powerlogger >/dev/null; then delgroup --quiet --system powerlogger >/dev/null 2>&1; fi
  rm -rf "$out"
  echo "deb-test: took $(($(date +%s) - t0)) s"
}
trap cleanup EXIT
cleanup >/dev/null # the leftovers of a killed run
t0=$(date +%s)

# The number of interval records in the store (read-only).
records() { sqlite3 -readonly "$store" 'SELECT count(*) FROM records'; }
# powerlogger run as the unit runs it: the packaged user, in the state directory.
run_as_user() { (cd "$state" && runuser -u powerlogger -- powerlogger run -c "$conf" --quiet "$@"); }

# 1. Build and lint.
changelog_v=$(dpkg-parsechangelog -l "$root/debian/changelog" -S Version)
cmake_v=$(sed -n 's/^project(powerlogger VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
[ "${changelog_v%%[-+~]*}" = "$cmake_v" ] ||
  fail "debian/changelog says $changelog_v, CMakeLists.txt project(VERSION) $cmake_v"
step "building powerlogger $changelog_v"
bash "$root/scripts/build-deb.sh" --no-lintian "$out" || fail "the package build failed"
arch=$(dpkg-architecture -qDEB_BUILD_ARCH)
deb=$out/powerlogger_${changelog_v}_${arch}.deb
[ -f "$deb" ] || fail "no $deb"
step "lintian:"
lintian -I "$out/powerlogger_${changelog_v}_${arch}.changes" >"$out/lintian.txt" 2>&1
lint_rc=$?
sed 's/^/  /' "$out/lintian.txt"
grep -q '^E: ' "$out/lintian.txt" && fail "lintian reports errors"
[ $lint_rc -eq 0 ] || fail "lintian exited $lint_rc"

# What the package holds: the program, the conffile, the unit, the man pages; no test,
# benchmark or fuzzing program.
dpkg-deb -c "$deb" | awk '{print $NF}' >"$out/contents"
for f in ./usr/bin/powerlogger ./etc/powerlogger/powerlogger.ini \
         ./lib/systemd/system/powerlogger.service ./usr/share/man/man1/powerlogger.1.gz \
         ./usr/share/man/man5/powerlogger.ini.5.gz ./usr/share/doc/powerlogger/powerlogger.example.ini \
         ./usr/share/doc/powerlogger/copyright; do
  grep -qxF "$f" "$out/contents" || fail "the package lacks $f"
done
progs=$(grep -c '^\./usr/bin/.' "$out/contents")
[ "$progs" = 1 ] || fail "the package installs $progs programs: $(grep '^\./usr/bin/.' "$out/contents" | tr '\n' ' ')"
dpkg-deb -f "$deb" Version | grep -qxF "$changelog_v" || fail "package version is not $changelog_v"
dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles | grep -qxF "$conf" ||
  fail "$conf is not a conffile"

# 2. Install.
step "dpkg -i $(basename "$deb")"
dpkg -i "$deb" </dev/null >"$out/install.log" 2>&1 || { cat "$out/install.log"; fail "dpkg -i failed"; }
touch "$marker"
[ "$(powerlogger --version)" = "powerlogger $changelog_v" ] ||
  fail "--version says '$(powerlogger --version)', not 'powerlogger $changelog_v'"
pw=$(getent passwd powerlogger) || fail "no user powerlogger"
[ "$(echo "$pw" | cut -d: -f6)" = "$state" ] || fail "powerlogger's home is not $state: $pw"
[ "$(echo "$pw" | cut -d: -f3)" -lt 1000 ] || fail "powerlogger is not a system user: $pw"
groups=" $(id -nG powerlogger) "
for g in gpio dialout i2c spi; do
  if getent group "$g" >/dev/null; then
    case "$groups" in *" $g "*) ;; *) fail "powerlogger is not in group $g (groups:$groups)" ;; esac
  fi
done
[ "$(stat -c '%U:%G %a' "$state")" = "powerlogger:powerlogger 750" ] ||
  fail "$state is $(stat -c '%U:%G %a' "$state"), not powerlogger:powerlogger 750"
# Installed, not enabled: the demonstration configuration does not start at boot.
enabled=$(systemctl is-enabled powerlogger.service 2>&1)
[ "$enabled" = disabled ] || fail "systemctl is-enabled says '$enabled', not disabled"
[ ! -e /etc/systemd/system/multi-user.target.wants/powerlogger.service ] || fail "enabled at install"
step "systemd-analyze verify"
systemd-analyze verify /lib/systemd/system/powerlogger.service >"$out/verify.txt" 2>&1 ||
  { cat "$out/verify.txt"; fail "systemd-analyze verify failed"; }
[ ! -s "$out/verify.txt" ] || { cat "$out/verify.txt"; fail "systemd-analyze verify warns"; }
grep -qx "User=powerlogger" /lib/systemd/system/powerlogger.service || fail "the unit's user"
grep -qx "ExecStart=/usr/bin/powerlogger run -c $conf --quiet" /lib/systemd/system/powerlogger.service ||
  fail "the unit's ExecStart"
for page in powerlogger powerlogger.ini; do
  man -w "$page" >/dev/null 2>&1 || fail "man $page: not found"
  w=$(MANWIDTH=80 man --warnings "$page" 2>&1 >/dev/null)
  [ -z "$w" ] || fail "man $page warns: $w"
done

# 3. The packaged configuration: valid, readable by the packaged user, and it runs.
step "powerlogger check-config $conf"
powerlogger check-config "$conf" >"$out/check.txt" 2>&1 || { cat "$out/check.txt"; fail "check-config"; }
sed 's/^/  /' "$out/check.txt"
grep -q "store: $store" "$out/check.txt" || fail "the packaged store is not $store"
grep -q "demo: source sim" "$out/check.txt" || fail "no demo meter in the packaged configuration"
grep -q "sinks: 0" "$out/check.txt" || fail "the packaged configuration has a sink"
runuser -u powerlogger -- powerlogger check-config --quiet "$conf" || fail "check-config as powerlogger"
# The commented sensor sections are ready: each one, uncommented with the InfluxDB sink in place
# of the demo, checks (keys written ';;' stay comments).
step "the commented sensor sections, uncommented, check"
uncomment() { sed -E 's/^;(\[|[a-z_]+ = )/\1/'; }
sensors=0
while IFS= read -r -d '' block; do
  sensors=$((sensors + 1))
  { printf '[store]\npath = %s/powerlogger.db\n\n' "$state"
    printf '%s\n\n' "$block" | uncomment
    awk -v RS= '/\n;\[influxdb local\]/ || /^;\[influxdb local\]/' "$conf" | uncomment; } >"$out/sensor.ini"
  powerlogger check-config "$out/sensor.ini" >"$out/sensor.txt" 2>&1 ||
    { cat "$out/sensor.ini" "$out/sensor.txt"; fail "commented sensor section $sensors does not check"; }
  grep -q "local: influxdb api 1 http://localhost:8086" "$out/sensor.txt" || fail "sensor $sensors: no sink"
done < <(awk -v RS= -v ORS='\0' '/(^|\n);\[meter house\]/' "$conf")
[ "$sensors" = 3 ] || fail "$sensors commented sensor sections (gpio, iio, serial expected)"
# The demo meter as packaged, in real time: 25 s cross a 20 s boundary, which commits the
# (partial) interval before it.
step "run as powerlogger: --duration 25"
run_as_user --duration 25 || fail "powerlogger run as powerlogger failed"
[ -f "$store" ] || fail "no store $store"
[ "$(stat -c %U "$store")" = powerlogger ] || fail "the store is not the user's"
n1=$(records)
[ "$n1" -ge 1 ] || fail "$n1 records after 25 s of 20 s intervals"
# status as root (what an administrator types) must leave nothing the user cannot write.
powerlogger status -c "$conf" >"$out/status.txt" 2>&1 || { cat "$out/status.txt"; fail "status"; }
sed 's/^/  /' "$out/status.txt"
grep -Eq "demo: register [0-9.]+ kWh; last interval" "$out/status.txt" || fail "status shows no record"
stray=$(find "$state" ! -user powerlogger ! -path "$marker")
[ -z "$stray" ] || fail "files in $state not owned by powerlogger: $stray"

# 4. A local change to the conffile, then an upgrade to a rebuilt package: both kept.
sed -i 's/^max_power_w = 17000$/max_power_w = 16000/' "$conf"
echo "; changed locally by deb-test" >>"$conf"
powerlogger check-config "$conf" | grep -q "max 16000 W" || fail "the local change does not check"
new_v=$changelog_v+test1
step "rebuilding as $new_v, upgrading"
DEB_BUILD_OPTIONS=nocheck bash "$root/scripts/build-deb.sh" --no-lintian -v "$new_v" "$out" ||
  fail "the rebuild failed"
timeout 300 dpkg -i "$out/powerlogger_${new_v}_${arch}.deb" </dev/null >"$out/upgrade.log" 2>&1 ||
  { cat "$out/upgrade.log"; fail "the upgrade failed"; }
[ "$(dpkg-query -W -f='${Version}' powerlogger)" = "$new_v" ] || fail "not upgraded to $new_v"
[ "$(powerlogger --version)" = "powerlogger $new_v" ] || fail "--version after the upgrade"
grep -qx "; changed locally by deb-test" "$conf" || fail "the upgrade replaced the local configuration"
powerlogger check-config "$conf" | grep -q "max 16000 W" || fail "the local change is gone"
[ "$(records)" = "$n1" ] || fail "the store had $n1 records, $(records) after the upgrade"
# Ten simulated minutes at full speed (--speed 0), resuming the store the old version wrote.
run_as_user --speed 0 --duration 600 || fail "run after the upgrade failed"
n2=$(records)
[ "$n2" -ge $((n1 + 28)) ] || fail "$n1 records before, $n2 after 600 more simulated seconds"
powerlogger status -c "$conf" | grep -q "demo: register 0.000 kWh" && fail "no energy logged"

# 5. Remove: the program goes, the configuration and the store stay.
step "dpkg -r"
dpkg -r powerlogger >"$out/remove.log" 2>&1 || { cat "$out/remove.log"; fail "dpkg -r"; }
dpkg-query -W -f='${Status}' powerlogger | grep -q "config-files" || fail "not in config-files state"
[ ! -e /usr/bin/powerlogger ] || fail "dpkg -r left /usr/bin/powerlogger"
grep -qx "; changed locally by deb-test" "$conf" || fail "dpkg -r removed the configuration"
[ "$(records)" = "$n2" ] || fail "dpkg -r changed the store"

# 6. Purge: the configuration goes; the store stays, and the message says so and how to remove
# it. With an empty state directory, nothing is kept.
step "dpkg -P"
# A file of the administrator's beside the conffile (a secret for a sink) is left, and said.
install -m 0640 -g powerlogger /dev/null /etc/powerlogger/influx-password
dpkg -P powerlogger >"$out/purge.log" 2>&1 || { cat "$out/purge.log"; fail "dpkg -P"; }
sed 's/^/  /' "$out/purge.log"
grep -q "kept the store (your recorded data) in $state" "$out/purge.log" || fail "purge does not say it kept the store"
grep -q "rm -r $state" "$out/purge.log" || fail "purge does not say how to remove the store"
[ ! -e "$conf" ] || fail "purge left $conf"
grep -q "kept files of yours in /etc/powerlogger: influx-password" "$out/purge.log" ||
  fail "purge does not say it kept /etc/powerlogger/influx-password"
[ -e /etc/powerlogger/influx-password ] || fail "purge removed a file it does not own"
[ "$(records)" = "$n2" ] || fail "purge changed the store"
getent passwd powerlogger >/dev/null || fail "purge removed the user owning the kept store"
rm -rf "$state" /etc/powerlogger # as the message says
dpkg -i "$out/powerlogger_${new_v}_${arch}.deb" </dev/null >"$out/install2.log" 2>&1 ||
  { cat "$out/install2.log"; fail "dpkg -i over the kept user"; }
[ "$(stat -c '%U %a' "$state")" = "powerlogger 750" ] || fail "reinstall: $state"
dpkg -P powerlogger >"$out/purge2.log" 2>&1 || fail "dpkg -P (empty store)"
[ ! -e "$state" ] || fail "purge kept an empty $state"
grep -q "kept the store" "$out/purge2.log" && fail "purge claims to keep an empty store"
grep -q "kept files of yours" "$out/purge2.log" && fail "purge claims to keep files in /etc"
[ ! -e /etc/powerlogger ] || fail "purge left /etc/powerlogger: $(ls -A /etc/powerlogger)"

step "all steps passed"
