#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the Debian package from this tree without writing outside it (`make deb`):
#   build-deb.sh [-a ARCH] [-v VERSION] [--no-lintian] OUTDIR
# dpkg-buildpackage writes its results beside the source directory, so the tree (the files git
# tracks or would add, as they are now; everything but build directories without git) is copied
# to OUTDIR/work-ARCH/powerlogger and built there; the .deb, .buildinfo and .changes end up in
# OUTDIR, the build's log in OUTDIR/build-ARCH.log. -a ARCH cross-builds (-Pcross,nocheck:
# nothing built is run). -v VERSION adds a changelog entry to the copy (an upgrade to test).
# Then lintian checks the result and its output is printed; an error fails the build.
set -euo pipefail

arch="" version="" lintian=1
while [ $# -gt 1 ]; do
  case "$1" in
  -a) arch=$2; shift 2 ;;
  -v) version=$2; shift 2 ;;
  --no-lintian) lintian=0; shift ;;
  *) break ;;
  esac
done
[ $# -eq 1 ] || { echo "usage: build-deb.sh [-a ARCH] [-v VERSION] [--no-lintian] OUTDIR" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
build_arch=$(dpkg-architecture -qDEB_BUILD_ARCH)
arch=${arch:-$build_arch}
work=$out/work-$arch
src=$work/powerlogger
log=$out/build-$arch.log

rm -rf "$work"
mkdir -p "$src"
if git -C "$root" rev-parse --show-toplevel >/dev/null 2>&1 &&
   [ "$(cd "$(git -C "$root" rev-parse --show-toplevel)" && pwd -P)" = "$(cd "$root" && pwd -P)" ]; then
  (cd "$root" && git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
    tar --null -T - -cf -) | tar -C "$src" -xf -
else
  (cd "$root" && tar --exclude='./build*' --exclude=./.git -cf - .) | tar -C "$src" -xf -
fi

if [ -n "$version" ]; then
  # A new entry on top, in the format dpkg-parsechangelog reads.
  maint=$(sed -n 's/^ -- \(.*>\)  .*/\1/p' "$src/debian/changelog" | head -n1)
  { printf 'powerlogger (%s) unstable; urgency=medium\n\n  * Rebuilt as %s.\n\n -- %s  %s\n\n' \
      "$version" "$version" "$maint" "$(date -R)"
    cat "$src/debian/changelog"; } >"$src/debian/changelog.new"
  mv "$src/debian/changelog.new" "$src/debian/changelog"
fi

opts=(-us -uc -b -jauto)
if [ "$arch" != "$build_arch" ]; then
  opts+=(-a "$arch" -Pcross,nocheck)
  export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:+$DEB_BUILD_OPTIONS }nocheck"
fi
v=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
echo "build-deb: powerlogger $v for $arch (log: $log)"
if ! (cd "$src" && dpkg-buildpackage "${opts[@]}") >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "build-deb: dpkg-buildpackage failed (log: $log)" >&2
  exit 1
fi
changes=powerlogger_${v}_${arch}.changes
for f in "$work"/*.deb "$work"/*.ddeb "$work"/*.buildinfo "$work"/*.changes; do
  [ -e "$f" ] && mv -f "$f" "$out/"
done
rm -rf "$work"
ls "$out"/powerlogger*_"${v}"_"$arch".*deb | sed 's/^/build-deb: /'

if [ "$lintian" = 1 ]; then
  echo "build-deb: lintian $changes"
  rc=0
  lintian -I --fail-on error "$out/$changes" || rc=$?
  [ $rc -eq 0 ] || { echo "build-deb: lintian found errors" >&2; exit 1; }
fi
