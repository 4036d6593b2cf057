#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The install rules (`cmake --install`, `make install`), run by `make check-deb`: a build of the
# program alone, installed twice into scratch directories under build-deb/ — with --prefix
# (the files follow it) and for prefix /usr with DESTDIR (the configuration goes to /etc) —
# and what each put where, what the unit and the configuration name, and the version.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/build-deb/install-test
t0=$(date +%s)
fail() {
  echo "install-test: FAIL: $*" >&2
  exit 1
}
rm -rf "$out"
mkdir -p "$root/build-deb"
trap 'rm -rf "$out"; echo "install-test: took $(($(date +%s) - t0)) s"' EXIT
b=$out/build

echo "install-test: building the program (log: $b/build.log)"
cmake -S "$root" -B "$b" -DPL_TESTS=OFF -DCMAKE_INSTALL_PREFIX=/usr/local >"$out.cmake.log" 2>&1 ||
  { cat "$out.cmake.log"; fail "cmake"; }
mv "$out.cmake.log" "$b/cmake.log"
cmake --build "$b" -j "$(nproc)" --target powerlogger >"$b/build.log" 2>&1 ||
  { tail -n 30 "$b/build.log"; fail "the build"; }

# The version from git in a checkout of this tree, else the release number.
v=$("$b/powerlogger" --version)
release=$(sed -n 's/^project(powerlogger VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
if git -C "$root" rev-parse --show-toplevel >/dev/null 2>&1; then
  if desc=$(git -C "$root" describe --tags --dirty 2>/dev/null); then
    [ "$v" = "powerlogger $desc" ] || fail "--version says '$v', git describe '$desc'"
  else
    [[ "$v" =~ ^powerlogger\ $release-dev-g[0-9a-f]+(-dirty)?$ ]] ||
      fail "--version says '$v' (untagged: $release-dev-gHASH expected)"
  fi
else
  [ "$v" = "powerlogger $release" ] || fail "--version says '$v', not the release $release"
fi
echo "install-test: $v"

# The files and nothing else (no test, benchmark or fuzzing program; no fwsim).
expect_tree() { # DIR FILE...
  local dir=$1
  shift
  (cd "$dir" && find . -type f | sed 's|^\./||' | grep -v '^usr/share/doc/powerlogger/examples/\|^share/doc/powerlogger/examples/' | sort) >"$out/got"
  printf '%s\n' "$@" | sort >"$out/want"
  diff -u "$out/want" "$out/got" >"$out/diff" || { cat "$out/diff"; fail "installed files in $dir"; }
}

# 1. --prefix at install time: everything under it; the unit still names the configured prefix.
cmake --install "$b" --prefix "$out/p1" >"$b/install1.log" 2>&1 || { cat "$b/install1.log"; fail "cmake --install --prefix"; }
expect_tree "$out/p1" bin/powerlogger etc/powerlogger/powerlogger.ini \
  lib/systemd/system/powerlogger.service share/man/man1/powerlogger.1 \
  share/man/man5/powerlogger.ini.5 share/doc/powerlogger/powerlogger.example.ini \
  share/doc/powerlogger/install.md
unit=$out/p1/lib/systemd/system/powerlogger.service
grep -qx "ExecStart=/usr/local/bin/powerlogger run -c /usr/local/etc/powerlogger/powerlogger.ini --quiet" "$unit" ||
  fail "the unit's ExecStart for prefix /usr/local: $(grep ^ExecStart= "$unit")"
grep -q "@[A-Z_]*@" "$unit" "$out/p1/etc/powerlogger/powerlogger.ini" && fail "an unsubstituted @VARIABLE@"
ls "$out/p1/share/doc/powerlogger/examples/"*.ini >/dev/null 2>&1 || fail "no examples installed"
"$out/p1/bin/powerlogger" check-config "$out/p1/etc/powerlogger/powerlogger.ini" >"$out/check" 2>&1 ||
  { cat "$out/check"; fail "the installed configuration does not check"; }
grep -q "store: /var/lib/powerlogger/demo.db" "$out/check" || fail "the installed configuration's store"

# 2. Prefix /usr with DESTDIR, as a packager does: the configuration in /etc, not /usr/etc.
cmake -S "$root" -B "$b" -DCMAKE_INSTALL_PREFIX=/usr >/dev/null 2>&1 || fail "cmake for prefix /usr"
DESTDIR=$out/p2 cmake --install "$b" >"$b/install2.log" 2>&1 || { cat "$b/install2.log"; fail "DESTDIR install"; }
expect_tree "$out/p2" usr/bin/powerlogger etc/powerlogger/powerlogger.ini \
  usr/lib/systemd/system/powerlogger.service usr/share/man/man1/powerlogger.1 \
  usr/share/man/man5/powerlogger.ini.5 usr/share/doc/powerlogger/powerlogger.example.ini \
  usr/share/doc/powerlogger/install.md
grep -qx "ExecStart=/usr/bin/powerlogger run -c /etc/powerlogger/powerlogger.ini --quiet" \
  "$out/p2/usr/lib/systemd/system/powerlogger.service" || fail "the unit's ExecStart for prefix /usr"
grep -qF "(/etc/powerlogger/powerlogger.ini)" "$out/p2/etc/powerlogger/powerlogger.ini" ||
  fail "the configuration does not name /etc/powerlogger/powerlogger.ini"

# The man pages: no warnings from groff or man.
for page in "$out/p2/usr/share/man/man1/powerlogger.1" "$out/p2/usr/share/man/man5/powerlogger.ini.5"; do
  w=$(groff -man -ww -z "$page" 2>&1; MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
  [ -z "$w" ] || fail "$(basename "$page") warns: $w"
done
echo "install-test: all steps passed"
