#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A FAKE InfluxDB write endpoint for the sink's tests, for what the real server cannot show.

Debian's influxd 1.6 has no /api/v2/write or /api/v3/write_lp and never answers 429 or sends
Retry-After, so those cases are scripted here; everything 1.6 can answer is tested against the
real influxd. Loopback only.

  fake_influx.py PORTFILE            HTTP/1.1 server (keep-alive). Control endpoints:
      POST /_next   body: JSON {"status":N,"headers":{...},"body":"..."} queued for the next
                    write (FIFO; with nothing queued a write gets the default reply).
                    Optional keys for what a misbehaving server or network does:
                    "repeat": N (the body N times: an enormous body), "trickle_s": S
                    (the body one byte every S seconds), "close": true (close the
                    connection without answering), "cut": true (send the headers and
                    half the body, then close: a reset mid-body).
      POST /_default  body: the same JSON: the reply when nothing is queued (initially 204)
      GET  /_writes JSON list of every write so far: {"status": answered, "body": text}
      GET  /_last   JSON of the last write: method, path, headers, body, peer port, and
                    raw_len (bytes on the wire). A body sent with Content-Encoding: gzip
                    is checked and unpacked here (magic, CRC and length, by Python's gzip
                    module): "gzip" is "ok" and body the unpacked text, or "gzip" says
                    what was wrong.
  fake_influx.py PORTFILE --hang     accepts connections and never answers (timeouts)

The chosen port is written to PORTFILE once the socket listens, the process id to PORTFILE.pid
(python3 may be a wrapper script, so the caller's $! is not necessarily this process).
"""
import gzip
import http.server
import json
import os
import socket
import sys
import threading
import time
import zlib

queue = []
default = {"status": 204}
writes = []
last = {}
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _read_body(self):
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n) if n else b""

    def _reply(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path in ("/_last", "/_writes"):
            with lock:
                data = json.dumps(last if self.path == "/_last" else writes).encode()
            self._reply(200, data, {"Content-Type": "application/json"})
        else:
            self._reply(404, b"404 page not found")

    def do_POST(self):
        body = self._read_body()
        if self.path in ("/_next", "/_default"):
            global default
            with lock:
                if self.path == "/_next":
                    queue.append(json.loads(body))
                else:
                    default = json.loads(body)
            self._reply(204)
            return
        info = dict(method="POST", path=self.path, headers=dict(self.headers),
                    raw_len=len(body), peer_port=self.client_address[1])
        if self.headers.get("Content-Encoding") == "gzip":
            try:
                body = gzip.decompress(body)
                info["gzip"] = "ok"
            except (OSError, EOFError, zlib.error) as e:
                info["gzip"] = "bad gzip: %s" % e
        info["body"] = body.decode("utf-8", "replace")
        with lock:
            last.clear()
            last.update(info)
            step = queue.pop(0) if queue else default
            writes.append({"status": step["status"], "body": info["body"]})
        self._answer(step)

    def _answer(self, step):
        reply = step.get("body", "").encode() * int(step.get("repeat", 1))
        if step.get("close"):
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if step.get("cut") or step.get("trickle_s"):
            self.send_response(step["status"])
            for k, v in (step.get("headers") or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.flush()
            if step.get("cut"):
                self.wfile.write(reply[: len(reply) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            for i in range(len(reply)):
                self.wfile.write(reply[i:i + 1])
                self.wfile.flush()
                time.sleep(float(step["trickle_s"]))
            return
        self._reply(step["status"], reply, step.get("headers"))


def announce(port_file, port):
    with open(port_file + ".pid", "w") as f:
        f.write(str(os.getpid()))
    with open(port_file + ".tmp", "w") as f:
        f.write(str(port))
    os.rename(port_file + ".tmp", port_file)


def hang(port_file):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    announce(port_file, srv.getsockname()[1])
    held = []
    while True:
        conn, _ = srv.accept()
        held.append(conn)  # never read, never answer, never close


def main():
    port_file = sys.argv[1]
    if len(sys.argv) > 2 and sys.argv[2] == "--hang":
        hang(port_file)
        return
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    announce(port_file, srv.server_address[1])
    srv.serve_forever()


if __name__ == "__main__":
    main()
