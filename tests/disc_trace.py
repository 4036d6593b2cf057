#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A Ferraris (spinning disc) meter read by a reflective sensor: a physically modelled trace.

Writes a CSV trace (time_s,value, as `powerlogger detect` and `source = file` read it) and the
truth: the time of every revolution (the mark's centre under the sensor's spot) and the
revolution count. Deterministic from --seed (Python's own random, no numpy).

What is assumed (docs/disc-meters.md explains the figures):
- Load: a household's, stepping between random levels (--min-w .. --max-w) every 20-90 s, with
  a slow ripple of a few per cent (a fridge compressor, a heater's thermostat).
- Disc: turns at P * rev_per_kwh / 3.6e6 revolutions per second; the eddy-current brake makes
  its speed follow the power with a time constant of about 1 s (first order).
- Mark: a dark sector of --mark (fraction of the circumference, default 0.03: an 8 mm mark on a
  ~270 mm rim) whose reflectance is 15 % of the bare aluminium's.
- Optics: the TCRT5000's spot, at 2-3 mm from the disc (behind the meter's window), is a blur of Gaussian
  profile (sigma --spot, fraction of the circumference, default 0.006); the reflected light is
  the reflectance profile convolved with it: a smooth dip (erf edges), not a square pulse.
  The bare disc's reflectance varies a little around the turn (scratches, dust: 3 harmonics,
  2 % of the contrast together).
- Sensor: the module's analog output (phototransistor to ground, pull-up to Vcc): more light,
  lower voltage; 12-bit ADC, the bare disc near 900 LSB, the mark --contrast higher (2000 by
  default: a sensor close to the window, well aimed; a badly placed one may give only 15 mV,
  some 20-60 LSB, docs/disc-meters.md). Ambient IR
  (daylight through a window: a slow swing of 150 LSB over minutes, lamps: a 100 Hz flicker
  of 20 LSB at a mains frequency off by a little, which sampling at 10-100 Hz aliases down)
  adds light, so lowers the value. Gaussian noise of --noise LSB, sample times jittered by up
  to 0.5 ms (a polled ADC), quantised to whole LSB.
"""
import argparse
import bisect
import math
import random


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rate", type=float, default=25.0, help="sample rate, Hz (10..100)")
    ap.add_argument("--duration", type=float, default=900.0, help="seconds")
    ap.add_argument("--rev-per-kwh", type=float, default=75.0)
    ap.add_argument("--min-w", type=float, default=300.0)
    ap.add_argument("--max-w", type=float, default=4000.0)
    ap.add_argument("--mark", type=float, default=0.03)
    ap.add_argument("--spot", type=float, default=0.006)
    ap.add_argument("--noise", type=float, default=8.0)
    ap.add_argument("--contrast", type=float, default=2000.0,
                    help="LSB between the bare disc and the mark (+-7 %%)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--truth", required=True)
    a = ap.parse_args()
    rnd = random.Random(a.seed)

    # the load: (start time, level) steps
    steps, t = [], 0.0
    while t < a.duration:
        lo, hi = math.log(a.min_w), math.log(a.max_w)
        steps.append((t, math.exp(rnd.uniform(lo, hi))))
        t += rnd.uniform(20.0, 90.0)
    rip_f, rip_a = rnd.uniform(1 / 120.0, 1 / 30.0), rnd.uniform(0.0, 0.04)
    harm = [(k, rnd.uniform(0, 0.01), rnd.uniform(0, 2 * math.pi)) for k in (1, 2, 3)]
    day_f, day_p = rnd.uniform(1 / 600.0, 1 / 200.0), rnd.uniform(0, 2 * math.pi)
    mains = 100.0 + rnd.uniform(-0.1, 0.1)
    fl_p = rnd.uniform(0, 2 * math.pi)
    theta = rnd.uniform(0.1, 0.6)  # revolutions; the mark's centre at 0 (mod 1)
    base = 900.0 + rnd.uniform(-100, 100)
    mark_v = base + a.contrast * rnd.uniform(0.93, 1.07)
    r_mark = 0.15
    s2 = a.spot * math.sqrt(2.0)

    starts = [t0 for t0, _ in steps]

    def load(t):
        lvl = steps[bisect.bisect_right(starts, t) - 1][1]
        return lvl * (1.0 + rip_a * math.sin(2 * math.pi * rip_f * t))

    def reflectance(th):
        x = ((th + 0.5) % 1.0) - 0.5  # from the mark's centre, in revolutions
        h = a.mark / 2.0
        covered = 0.5 * (math.erf((x + h) / s2) - math.erf((x - h) / s2))
        r = 1.0 + sum(am * math.sin(2 * math.pi * k * th + ph) for k, am, ph in harm)
        return r * (1.0 - (1.0 - r_mark) * covered)

    # integrate the disc finely (2 ms) and sample it at the rate
    dt = 0.002
    speed = load(0.0) * a.rev_per_kwh / 3.6e6
    revs = []
    n = int(a.duration * a.rate)
    half = a.mark / 2.0 + 3 * a.spot  # the dip's reach from the mark's centre, revolutions
    t = 0.0
    i = 0
    with open(a.out, "w") as out:
        out.write("time_s,value\n")
        # the trace ends at --duration, or later while the mark is still under the spot, so
        # that no dip is cut (it starts away from the mark): every revolution in it is whole
        while i < n or abs(((theta + 0.5) % 1.0) - 0.5) < half:
            ts = i / a.rate + rnd.uniform(0.0, 0.0005)
            while t < ts:
                target = load(t) * a.rev_per_kwh / 3.6e6
                speed += (target - speed) * dt / 1.0
                prev = theta
                theta += speed * dt
                if math.floor(theta) > math.floor(prev):
                    revs.append((t + dt * (math.floor(theta) - prev) / (theta - prev), speed))
                t += dt
            light = reflectance(theta)
            amb = 75.0 * (1 + math.sin(2 * math.pi * day_f * ts + day_p))
            amb += 20.0 * math.sin(2 * math.pi * mains * ts + fl_p)
            v = mark_v - (mark_v - base) * (light - r_mark) / (1.0 - r_mark)
            v -= amb
            v += rnd.gauss(0.0, a.noise)
            out.write("%.6f,%d\n" % (ts, max(0, min(4095, round(v)))))
            i += 1
    whole = [(r, half / sp) for r, sp in revs]
    with open(a.truth, "w") as tr:
        tr.write("# the mark's centre under the spot (s), the dip's half length (s)\n")
        for r, h in whole:
            tr.write("%.3f,%.3f\n" % (r, h))
    print(len(whole))


if __name__ == "__main__":
    main()
