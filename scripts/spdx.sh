#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every source file of the project carries an SPDX licence identifier (the licence: LICENSE).
#   scripts/spdx.sh          list the tracked files that lack one; exit 1 if any (make check)
#   scripts/spdx.sh --add    add "SPDX-License-Identifier: MIT" to them, in each one's comment style
# Data (data/, fuzz corpora) and prose (*.md) are not sources: data/README.md gives the data's
# own licences.
set -euo pipefail
cd "$(dirname "$0")/.."
tag="SPDX-License-Identifier: MIT"

# The comment style of a file, or nothing for a file that is not a source.
style() {
	case "$1" in
	data/* | */corpus/* | *.md | *.csv | LICENSE | .gitignore) ;;
	*.c | *.h) echo c ;;
	*.sh | *.py | *.cmake | CMakeLists.txt | */CMakeLists.txt | Makefile | .ci/run | \
	*/Kconfig* | *sdkconfig.defaults | *.service | debian/rules | debian/post* | */*.txt) echo hash ;;
	*.ini) echo semi ;;
	*.[1-8]) echo roff ;;
	esac
}

add=0
[ "${1:-}" = --add ] && add=1
missing=0
while IFS= read -r f; do
	s=$(style "$f")
	[ -n "$s" ] && [ -f "$f" ] || continue
	head -n 3 "$f" | grep -q "SPDX-License-Identifier:" && continue
	if [ $add = 0 ]; then
		echo "spdx: no licence identifier: $f"
		missing=1
		continue
	fi
	case $s in
	c) line="/* $tag */" ;;
	hash) line="# $tag" ;;
	semi) line="; $tag" ;;
	roff) line=".\\\" $tag" ;;
	esac
	# After a "#!" line, so that the file stays executable as it was.
	if head -n 1 "$f" | grep -q '^#!'; then
		awk -v l="$line" 'NR == 1 { print; print l; next } { print }' "$f" >"$f.spdx"
	else
		{ printf '%s\n' "$line"; cat "$f"; } >"$f.spdx"
	fi
	chmod --reference="$f" "$f.spdx"
	mv "$f.spdx" "$f"
	echo "spdx: added to $f"
done < <(git ls-files)
exit $missing
