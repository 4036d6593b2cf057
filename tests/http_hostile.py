#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Hostile HTTP clients against a running `powerlogger run` with [http] (tests/cli_http_hostile.sh).

  http_hostile.py attack --port PORT --pid PID --out RESULT.json [--seconds S]
      Runs, against 127.0.0.1:PORT, while a monitor samples the daemon's RSS (/proc/PID/status)
      and open descriptors (/proc/PID/fd) every 0.1 s and a normal client (from 127.0.0.1)
      asks for /api/v1/status every 0.5 s, from other loopback addresses (as from other
      machines: the server bounds connections per address and in all):
        slow loris   100 connections from one address that send their request a byte every
                     2 s, held open through everything below (the server may close them)
        concurrent   200 connections at once, each a whole GET /metrics; repeated until the
                     attack has lasted S seconds (default 12)
        hostile      all at once: a request line and a header of 1 MB, 10000 headers, random
                     bytes, a TLS hello, broken request lines and headers, NUL bytes, an unknown
                     method, POSTs with a 10 MB Content-Length and chunked, a GET with a body,
                     2000 parameters
        parameters   absurd query parameters on /api/v1/energy and /api/v1/power, one by one
      Fails (exit 1, every problem on stderr) when the daemon dies; a normal request is not
      answered within 5 s; a hostile request gets a 2xx where it must not, or neither an
      answer nor a close within the server's idle timeout (10 s) and 4 s; an absurd parameter
      does not get its 400 (with a JSON error) or 404 within 3 s; the descriptors exceed the
      baseline by more than --max-fds during the attack or are not back to it after; the RSS
      grows past --rss-peak-mb during or --rss-end-mb after. Writes the figures and the
      attack's start and end (wall clock, microseconds) to RESULT.json.

  http_hostile.py delays --store DB --result RESULT.json [--max-ms MS]
      From the store of the stopped logger: every interval record that ended during the attack
      (and 1 s before and after), its commit delay (stored_us minus the interval's end);
      fails when one is over MS (default 1000) or when an interval is missing (records of one
      meter must follow each other without a hole in time).

Which answers a read-only server may give to each hostile request is written beside it; no
status is asked for where HTTP allows several (a 400 or a closed connection for garbage).
"""
import argparse
import http.client
import json
import os
import random
import socket
import sqlite3
import statistics
import sys
import threading
import time

problems = []
# The clients' addresses, all on loopback (the whole of 127/8 is this machine's): the normal
# client is 127.0.0.1; the attackers come from others, as from other machines, so that the
# server's bound per address (PL_HTTP_PER_IP in src/linux/http/http.h) is what it is for: the
# slow loris and the bursts exhaust their own addresses' share, not everyone's.
LORIS, BURST, OTHER, API = "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"
# The server's idle timeout (PL_HTTP_TIMEOUT_S): the longest it may keep a silent client.
IDLE_S = 10


say_lock = threading.Lock()


def say(msg, f=None):
    """One line, whole (the hostile requests' threads print too)."""
    f = f or sys.stdout
    with say_lock:
        f.write(f"http_hostile: {msg}\n")
        f.flush()


def problem(msg):
    problems.append(msg)
    say(f"FAIL: {msg}", sys.stderr)


def now_us():
    return int(time.time() * 1e6)


class Monitor(threading.Thread):
    """The daemon's RSS (kB) and open descriptors, every 0.1 s."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.stop, self.samples, self.alive = pid, threading.Event(), [], True

    def sample(self):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                st = dict(l.split(":", 1) for l in f if ":" in l)
            rss = int(st["VmRSS"].split()[0])
            state = st["State"].split()[0]
            if state == "Z":
                raise FileNotFoundError
            fds = len(os.listdir(f"/proc/{self.pid}/fd"))
        except (FileNotFoundError, ProcessLookupError, KeyError):
            self.alive = False
            return None
        s = (time.monotonic(), rss, fds)
        self.samples.append(s)
        return s

    def run(self):
        while not self.stop.is_set() and self.alive:
            self.sample()
            time.sleep(0.1)


class Normal(threading.Thread):
    """A well-behaved client: GET /api/v1/status every 0.5 s; each probe retries (a refused or
    reset connection) until it has a 200 with the status JSON, for at most 5 s."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.stop, self.lat, self.failed = port, threading.Event(), [], []

    def probe(self):
        t0 = time.monotonic()
        last = "?"
        while time.monotonic() - t0 < 5:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port,
                                               timeout=max(0.1, 5 - (time.monotonic() - t0)))
                c.request("GET", "/api/v1/status")
                r = c.getresponse()
                body = r.read()
                c.close()
                if r.status == 200 and "meters" in json.loads(body):
                    return time.monotonic() - t0, None
                last = f"status {r.status}"
            except (OSError, http.client.HTTPException, ValueError) as e:
                last = f"{type(e).__name__}: {e}"
            time.sleep(0.2)
        return None, last

    def run(self):
        while not self.stop.is_set():
            t, why = self.probe()
            if t is None:
                self.failed.append((time.strftime("%H:%M:%S"), why))
            else:
                self.lat.append(t)
            self.stop.wait(0.5)


class Loris(threading.Thread):
    """N connections, each sending its request one byte every `every` seconds, forever (until
    stopped). Counts the ones the server closes or answers."""

    def __init__(self, port, n, every=2.0):
        super().__init__(daemon=True)
        self.port, self.n, self.every = port, n, every
        self.stop, self.socks, self.closed, self.connect_failed = threading.Event(), [], 0, 0
        self.src = LORIS
        self.text = b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Slow: a\r\n" * 1000

    def run(self):
        for _ in range(self.n):
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=2,
                                             source_address=(self.src, 0))
                s.setblocking(False)
                self.socks.append([s, 0])
            except OSError:
                self.connect_failed += 1
        while not self.stop.is_set():
            for e in list(self.socks):
                s, i = e
                try:
                    try:
                        s.recv(4096)  # b"" (closed) or an answer (408, 431): done with it
                        raise ConnectionResetError
                    except BlockingIOError:
                        pass  # nothing from the server: go on
                    s.send(self.text[i:i + 1])
                    e[1] = i + 1
                except OSError:
                    s.close()
                    self.socks.remove(e)
                    self.closed += 1
            self.stop.wait(self.every)
        for s, _ in self.socks:
            s.close()


def exchange(port, data, timeout, shut=False, src=None):
    """Sends data (what the server takes of it) from the address src (default OTHER), reads
    until the server closes or timeout.
    Returns (status or None, seconds, how it ended: 'closed', 'timeout')."""
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(src or OTHER, 0))
    s.settimeout(timeout)
    got, end = b"", "closed"
    try:
        try:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server closed on us mid-send: an answer may still be there
        while True:
            left = timeout - (time.monotonic() - t0)
            if left <= 0:
                end = "timeout"
                break
            s.settimeout(left)
            try:
                b = s.recv(65536)
            except socket.timeout:
                end = "timeout"
                break
            except OSError:
                break
            if not b:
                break
            got += b
            if len(got) > 1 << 20:
                break
    finally:
        s.close()
    status = None
    if got.startswith(b"HTTP/1."):
        try:
            status = int(got.split(b" ", 2)[1])
        except (IndexError, ValueError):
            status = -1
    return status, time.monotonic() - t0, end, got


def hostile(port, what, data, allow=None, shut=False, timeout=None):
    """One hostile request: it must end (an answer or a close) within timeout (default: the
    server's idle timeout and 4 s: a request the server waits to see the end of is a slow
    loris, and bounded as one); its status, if any, must not be 2xx (or must be in allow); the
    answer must not hold a password file."""
    timeout = timeout or IDLE_S + 4
    try:
        status, secs, end, got = exchange(port, data, timeout, shut)
    except OSError as e:
        problem(f"{what}: could not connect: {e}")
        return
    ok_status = (status is None or (allow is not None and status in allow)
                 or (allow is None and not 200 <= status < 300))
    if end == "timeout" and status is None:
        problem(f"{what}: neither an answer nor a close within {timeout:g} s")
    elif not ok_status:
        problem(f"{what}: answered {status}")
    if b"root:" in got:
        problem(f"{what}: the answer has a password file in it")
    say(f"{what}: {status if status else 'no answer'} ({end}) in {secs:.2f} s")


def hostiles(port):
    """The hostile requests, each on its own connection, all at once (threads): the ones the
    server waits on until its idle timeout run beside the others. Returns the threads."""
    rnd = random.Random(13)
    many = "&".join(f"a{i}=1" for i in range(2000))
    reqs = [
        ("a 1 MB request line",
         b"GET /api/v1/status?" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n", {}),
        ("a 1 MB header line",
         b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * (1 << 20) + b"\r\n\r\n", {}),
        ("10000 header lines",
         b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Many: c\r\n" * 10000 + b"\r\n", {}),
        ("64 kB of random bytes", bytes(rnd.randrange(256) for _ in range(65536)),
         {"shut": True}),
        ("a TLS ClientHello", bytes.fromhex("16030100a5010000a10303") + bytes(32)
         + b"\x00\x00\x02\x13\x01\x01\x00" + bytes(64), {"shut": True}),
        # obs-text (0x80-0xff) is allowed in a header's value: an answer is right
        ("bytes 0xff in a header", b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"\xff" * 100
         + b"\r\n\r\n", {"allow": {200, 400}}),
        ("no version", b"GET\r\n\r\n", {"shut": True}),
        ("HTTP/9.9", b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", {"shut": True}),
        ("a header without a colon", b"GET / HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n", {}),
        # a URL cut at the NUL is "/": the page, or a refusal; never the file
        ("NUL bytes in the path", b"GET /\x00\x00/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
         {"allow": {200, 400, 404}}),
        ("an unknown method", b"BREW /api/v1/status HTTP/1.1\r\nHost: x\r\n\r\n", {}),
        ("a lone CR LF flood", b"\r\n" * 100000, {"shut": True}),
        ("POST with a 10 MB Content-Length, 1 MB sent",
         b"POST /api/v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n"
         + b"d" * (1 << 20), {}),
        ("a chunked POST of 1 MB",
         b"POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
         + b"".join(b"1000\r\n" + b"e" * 4096 + b"\r\n" for _ in range(256)) + b"0\r\n\r\n",
         {}),
        ("a negative Content-Length",
         b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\nhello", {}),
        # HTTP lets a server read and ignore a GET's body or refuse it; it must go on either way
        ("GET with a body", b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n"
         b"Content-Length: 5\r\nConnection: close\r\n\r\nhello", {"allow": {200, 400, 413}}),
        ("2000 unknown parameters", f"GET /api/v1/energy?{many} HTTP/1.1\r\nHost: x\r\n"
         "Connection: close\r\n\r\n".encode(), {"allow": {200, 400, 414, 431}}),
    ]
    ts = [threading.Thread(target=hostile, args=(port, w, d), kwargs=kw, daemon=True)
          for w, d, kw in reqs]
    for t in ts:
        t.start()
    return ts


def concurrent(port, n):
    """n connections at once, each a whole GET /metrics; every one must end within 15 s."""
    barrier = threading.Barrier(n)
    res = [None] * n

    def one(i):
        try:
            barrier.wait(10)
        except threading.BrokenBarrierError:
            pass
        try:
            res[i] = exchange(port, b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              b"Connection: close\r\n\r\n", 15, src=BURST)[:3]
        except OSError as e:
            res[i] = ("refused", 0, type(e).__name__)

    t0 = time.monotonic()
    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    secs = time.monotonic() - t0
    ok = sum(1 for r in res if r and r[0] == 200)
    hung = sum(1 for r in res if r is None or (r[2] == "timeout" and r[0] is None))
    other = n - ok - hung
    say(f"{n} concurrent GET /metrics: {ok} answered 200, {other} refused or "
          f"answered otherwise, {hung} without an end within 15 s; {secs:.1f} s for all")
    if hung:
        problem(f"{n} concurrent connections: {hung} neither answered nor closed within 15 s")
    if ok == 0:
        problem(f"{n} concurrent connections: not one answered")
    return ok, other, hung


def api(port, path, want, what, timeout=3.0):
    """An absurd parameter: the answer must come within timeout with a status in want; a 400
    must carry {"error": "..."}."""
    try:
        status, secs, end, got = exchange(port, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                          "Connection: close\r\n\r\n".encode(), timeout,
                                          src=API)
    except OSError as e:
        problem(f"{what}: could not connect: {e}")
        return
    if status not in want:
        problem(f"{what} ({path[:80]}): answered {status} ({end} after {secs:.2f} s), "
                f"not {'/'.join(map(str, sorted(want)))}")
        return
    body = got.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in got else b""
    if status == 400:
        try:
            err = json.loads(body)["error"]
            assert isinstance(err, str) and err
        except (ValueError, KeyError, AssertionError, TypeError):
            problem(f"{what}: a 400 without a JSON error: {body[:200]!r}")
            return
    if b"root:" in body:
        problem(f"{what}: the body has a password file in it")
    say(f"{what}: {status} in {secs:.2f} s")


def settle(port, secs=20):
    """Waits until the newest interval (/api/v1/status) ended less than 1.5 s ago: a simulated
    meter's first records wait for its detector to settle (a few seconds after the start), and
    those would count as delays of the attack."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < secs:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/api/v1/status")
            st = json.loads(c.getresponse().read())
            c.close()
            li = st["meters"][0]["last_interval"]
            if li and li["start_ms"] + li["length_s"] * 1000 >= time.time() * 1000 - 1500:
                return time.monotonic() - t0
        except (OSError, http.client.HTTPException, ValueError, KeyError, IndexError, TypeError):
            pass
        time.sleep(0.2)
    sys.exit(f"http_hostile: the meter does not commit on time before the attack ({secs} s)")


def attack(a):
    say(f"the meter commits on time after {settle(a.port):.1f} s more")
    mon, normal = Monitor(a.pid), Normal(a.port)
    base = mon.sample()
    if base is None:
        sys.exit(f"http_hostile: no process {a.pid}")
    # what the server opens at its first use (the store, read-only) is open before the baseline
    for path in ("/", "/metrics", "/api/v1/energy", "/api/v1/power", "/api/v1/status"):
        exchange(a.port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                 .encode(), 5, src="127.0.0.1")
    mon.samples.clear()
    mon.start()
    normal.start()
    time.sleep(2)  # the baseline: RSS and descriptors of an idle server with one client
    base_rss = max(s[1] for s in mon.samples)
    base_fds = min(s[2] for s in mon.samples)
    t_start = now_us()
    t0 = time.monotonic()

    loris = Loris(a.port, a.loris)
    loris.start()
    time.sleep(3)
    say(f"slow loris: {len(loris.socks)} connections held open "
          f"({loris.connect_failed} refused at connect, {loris.closed} closed by the server)")

    conc = concurrent(a.port, a.concurrent)

    hostile_threads = hostiles(a.port)

    e, p = "/api/v1/energy", "/api/v1/power"
    api(a.port, p, {200}, "the power series with its defaults (24 h at the meter's 1 s)")
    api(a.port, e + "?step=fortnight", {400}, "step=fortnight")
    api(a.port, e + "?step=", {400}, "an empty step")
    api(a.port, e + "?from=99999999999999999999999999", {400}, "from beyond 64 bits")
    api(a.port, e + "?from=1e308", {400}, "from=1e308")
    api(a.port, e + "?from=2026-13-45T99:99:99Z", {400}, "from: month 13, hour 99")
    api(a.port, e + "?from=2000000000&to=1000000000", {400}, "from after to")
    api(a.port, e + "?step=hour&from=0&to=2000000000", {400}, "555556 hourly buckets")
    api(a.port, p + "?step=1&from=0&to=2000000000", {400}, "two billion 1 s points")
    api(a.port, p + "?step=-20", {400}, "a negative step")
    api(a.port, p + "?step=abc", {400}, "step=abc")
    api(a.port, e + "?format=xml", {400}, "format=xml")
    api(a.port, e + "?meter=nosuch", {404}, "an unknown meter")
    api(a.port, e + "?meter=" + "m" * 8000, {400, 404, 414, 431}, "an 8000-byte meter name")
    api(a.port, e + "?meter=%00%zz%", {400, 404}, "NUL and broken %-escapes in meter")
    api(a.port, e + "?step=day&step=month&step=hour", {200, 400}, "step three times")
    api(a.port, "/../../../etc/passwd", {400, 404}, "a path out of the root")
    api(a.port, "/api/v1/status/../../../../etc/passwd", {400, 404}, "dots after a path")
    api(a.port, "/api/v2/status", {404}, "an unknown version of the API")

    # the bursts again until the attack has lasted a.seconds: intervals to commit under it
    while time.monotonic() - t0 < a.seconds:
        concurrent(a.port, a.concurrent)
        time.sleep(0.5)
    for t in hostile_threads:
        t.join(IDLE_S + 10)
    during = [s for s in mon.samples if s[0] >= t0]
    say(f"slow loris at the end: {len(loris.socks)} still open, "
          f"{loris.closed} closed by the server")
    loris.stop.set()
    loris.join(10)
    t_end = now_us()
    # after: the descriptors back where they were, the RSS near it
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        s = mon.sample()
        if s is None or s[2] <= base_fds + 2:
            break
        time.sleep(0.2)
    normal.stop.set()
    normal.join(10)
    mon.stop.set()
    mon.join(2)
    end = mon.sample()
    if end is None or not mon.alive:
        problem("the daemon died during the attack")
        end = (0, 0, 0)
    peak_rss = max(s[1] for s in during) if during else 0
    peak_fds = max(s[2] for s in during) if during else 0
    say(f"daemon RSS {base_rss / 1024:.1f} MiB before, peak "
          f"{peak_rss / 1024:.1f} MiB during, {end[1] / 1024:.1f} MiB after; open descriptors "
          f"{base_fds} before, peak {peak_fds} during, {end[2]} after")
    if peak_rss - base_rss > a.rss_peak_mb * 1024:
        problem(f"RSS grew by {(peak_rss - base_rss) / 1024:.1f} MiB during the attack "
                f"(bound {a.rss_peak_mb} MiB)")
    if end[1] - base_rss > a.rss_end_mb * 1024:
        problem(f"RSS is {(end[1] - base_rss) / 1024:.1f} MiB above the baseline after the "
                f"attack (bound {a.rss_end_mb} MiB)")
    if end[2] > base_fds + 2:
        problem(f"{end[2]} descriptors open 10 s after the attack, {base_fds} before")
    if peak_fds > base_fds + a.max_fds:
        problem(f"{peak_fds} descriptors open during the attack: {peak_fds - base_fds} more "
                f"than before (bound {a.max_fds})")
    lat = sorted(normal.lat)
    if lat:
        say(f"normal client: {len(lat)} /api/v1/status answered, median "
              f"{statistics.median(lat) * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms; "
              f"{len(normal.failed)} not within 5 s")
    for when, why in normal.failed:
        problem(f"normal client at {when}: no /api/v1/status within 5 s ({why})")
    if len(lat) < 5:
        problem(f"the normal client got only {len(lat)} answers")
    with open(a.out, "w") as f:
        json.dump({"attack_start_us": t_start, "attack_end_us": t_end,
                   "base_rss_kb": base_rss, "peak_rss_kb": peak_rss, "end_rss_kb": end[1],
                   "base_fds": base_fds, "peak_fds": peak_fds, "end_fds": end[2],
                   "concurrent": conc, "normal_max_s": lat[-1] if lat else None,
                   "normal_median_s": statistics.median(lat) if lat else None}, f)
    return 1 if problems else 0


def delays(a):
    res = json.load(open(a.result))
    lo, hi = res["attack_start_us"] - 1_000_000, res["attack_end_us"] + 1_000_000
    db = sqlite3.connect(f"file:{a.store}?mode=ro", uri=True)
    rows = db.execute("SELECT meter_id, start_us, length_s, stored_us FROM records "
                      "ORDER BY meter_id, start_us").fetchall()
    inside, prev = [], {}
    for m, start, length, stored in rows:
        end = start + length * 1_000_000
        if m in prev and lo <= end <= hi and start != prev[m]:
            problem(f"meter {m}: a hole from {prev[m]} to {start} (us) during the attack")
        prev[m] = end
        if lo <= end <= hi:
            inside.append((stored - end) / 1000)
    if not inside:
        problem("no interval records ended during the attack")
        return 1
    inside.sort()
    span = (hi - lo) / 1e6
    p50 = statistics.median(inside)
    p95 = inside[min(len(inside) - 1, int(len(inside) * 0.95))]
    say(f"commit delays of the {len(inside)} intervals ending during the attack "
          f"({span:.0f} s): median {p50:.1f} ms, p95 {p95:.1f} ms, max {inside[-1]:.1f} ms")
    if inside[-1] > a.max_ms:
        problem(f"an interval was committed {inside[-1]:.0f} ms after its end (bound "
                f"{a.max_ms} ms)")
    if inside[0] < -50:
        problem(f"an interval was committed {-inside[0]:.0f} ms before its end")
    return 1 if problems else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    at = sub.add_parser("attack")
    at.add_argument("--port", type=int, required=True)
    at.add_argument("--pid", type=int, required=True)
    at.add_argument("--out", required=True)
    at.add_argument("--loris", type=int, default=100)
    at.add_argument("--concurrent", type=int, default=200)
    at.add_argument("--rss-peak-mb", type=float, default=16)
    at.add_argument("--rss-end-mb", type=float, default=8)
    # PL_HTTP_CONN_MAX (64) connections and a few descriptors more
    at.add_argument("--max-fds", type=int, default=72)
    at.add_argument("--seconds", type=float, default=12, help="the attack's least length")
    de = sub.add_parser("delays")
    de.add_argument("--store", required=True)
    de.add_argument("--result", required=True)
    de.add_argument("--max-ms", type=float, default=1000)
    a = ap.parse_args()
    sys.exit(attack(a) if a.cmd == "attack" else delays(a))


if __name__ == "__main__":
    main()
