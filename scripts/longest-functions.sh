#!/bin/bash
# SPDX-License-Identifier: MIT
# The longest C functions below a folder (default src/linux), from universal-ctags' start and
# end lines: "LINES FILE:LINE NAME", longest first. Usage: scripts/longest-functions.sh [DIR] [N]
set -euo pipefail
dir=${1:-src/linux}
n=${2:-10}
command -v ctags >/dev/null || { echo "longest-functions: needs universal-ctags (apt install universal-ctags)" >&2; exit 2; }
find "$dir" -name '*.c' -print0 | xargs -0 ctags --c-kinds=f --fields=+ne -o - |
	awk -F'\t' '{ s = ""; e = ""; for (i = 4; i <= NF; i++) { if ($i ~ /^line:/) s = substr($i, 6); if ($i ~ /^end:/) e = substr($i, 5) }
		if (s != "" && e != "") printf "%d %s:%s %s\n", e - s + 1, $2, s, $1 }' |
	sort -rn | head -n "$n"
