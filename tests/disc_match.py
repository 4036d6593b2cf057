#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Matches `powerlogger detect` pulses against a disc trace's truth (tests/disc_trace.py).

A revolution is found when exactly one pulse's span (leading edge .. leading edge + width)
holds the mark's centre, widened by one sample period (--slack) for the edges' estimate. Prints
"found N of M, missed K, extra E" and exits 0 only when every revolution is found by exactly one
pulse with status ok and no other pulse is given out.
"""
import sys


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: disc_match.py TRUTH PULSES [SLACK_S]")
    slack = float(sys.argv[3]) if len(sys.argv) == 4 else 0.1
    truth = []
    for line in open(sys.argv[1]):
        if line.startswith("#") or not line.strip():
            continue
        truth.append(float(line.split(",")[0]))
    pulses = []
    for line in open(sys.argv[2]):
        f = line.strip().split(",")
        if len(f) != 5:
            sys.exit("disc_match.py: not a pulse line: %r" % line)
        pulses.append((float(f[0]), float(f[1]) / 1000.0, f[4]))
    used = [0] * len(pulses)
    found = missed = 0
    for r in truth:
        hits = [i for i, (t, w, st) in enumerate(pulses)
                if t - slack <= r <= t + w + slack and st == "ok"]
        if len(hits) == 1 and not used[hits[0]]:
            used[hits[0]] = 1
            found += 1
        else:
            missed += 1
    extra = used.count(0)
    print("found %d of %d, missed %d, extra %d" % (found, len(truth), missed, extra))
    sys.exit(0 if missed == 0 and extra == 0 and truth else 1)


if __name__ == "__main__":
    main()
