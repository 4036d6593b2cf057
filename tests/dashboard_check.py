#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# The dashboard (web/, served by `powerlogger run` at `/`) in a real browser: Debian's chromium,
# headless, driven over the DevTools protocol (python3-websocket). Run by tests/cli_dashboard.sh
# against a running logger; usable by hand:
#   dashboard_check.py --url http://127.0.0.1:PORT/ --store STORE.db --meter house [--shots DIR]
# Checks, each a failure with a message when it does not hold:
#   - every request the page makes (Network.requestWillBeSent, data: URLs aside) goes to the
#     logger's origin; no script exception, no console error (a Content-Security-Policy
#     violation is one), no failed request;
#   - the page renders (body[data-rendered]) and shows the meter, with the 24 h power chart
#     holding points and the daily and monthly bar charts holding bars;
#   - the numbers shown equal the store's, read with sqlite3 from the store file itself (not
#     through the logger's API): the last interval (its start, pulses, rejected, energy,
#     average and peak power, flags), the register after it and today's energy (the records
#     of the logger's local day, the TZ of this process, up to that interval), to the
#     resolution shown; and today's bar in the daily table equals today's energy too;
#   - each --sink NAME: its row shows the store's failing state, its backlog (the records
#     past its cursor) and, when failing, an error;
#   - the 24 h power chart has one point for each record of the store in its range, and as
#     many gap marks as records flagged gap or partial (when its step is the interval);
#   - at phone widths (390 and 360 px) nothing is wider than the screen; the dark scheme
#     (prefers-color-scheme: dark) changes the page's colours.
# With --shots DIR it writes DIR/dashboard-desktop.png (1280x900) and DIR/dashboard-phone.png
# (390x844), also when a check failed (to see why).
import argparse
import base64
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import websocket

FLAGS = ['partial', 'gap', 'rejected', 'steady', 'no_signal']  # PL_Q_* bits, meter.h

failures = []


def fail(msg):
    failures.append(msg)
    print('dashboard_check: FAIL: ' + msg, file=sys.stderr)


class Browser:
    """One headless chromium with one page, spoken to over its DevTools websocket."""

    def __init__(self, chromium):
        self.dir = tempfile.mkdtemp(prefix='pl-chromium-')
        args = [chromium, '--headless=new', '--remote-debugging-port=0',
            '--user-data-dir=' + self.dir, '--no-first-run', '--no-default-browser-check',
            '--disable-gpu', '--disable-extensions', '--disable-background-networking',
            '--disable-component-update', '--disable-sync', '--metrics-recording-only',
            '--no-pings', '--mute-audio', '--hide-scrollbars', '--window-size=1280,900',
            'about:blank']
        if os.geteuid() == 0:
            args.insert(1, '--no-sandbox')
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(self.dir, 'stderr'), 'w'))
        port_file = os.path.join(self.dir, 'DevToolsActivePort')
        deadline = time.time() + 20
        while not os.path.exists(port_file) or os.path.getsize(port_file) == 0:
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError('chromium did not start: ' + self.stderr())
            time.sleep(0.05)
        port = int(open(port_file).read().split()[0])
        req = urllib.request.Request('http://127.0.0.1:%d/json/list' % port)
        pages = [t for t in json.load(urllib.request.urlopen(req, timeout=10))
             if t['type'] == 'page']
        self.ws = websocket.create_connection(pages[0]['webSocketDebuggerUrl'], timeout=20,
                              suppress_origin=True)
        self.next_id = 0
        self.events = []

    def stderr(self):
        try:
            return open(os.path.join(self.dir, 'stderr')).read()[-2000:]
        except OSError:
            return ''

    def call(self, method, **params):
        self.next_id += 1
        me = self.next_id
        self.ws.send(json.dumps({'id': me, 'method': method, 'params': params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get('id') == me:
                if 'error' in msg:
                    raise RuntimeError('%s: %s' % (method, msg['error']))
                return msg.get('result', {})
            if 'method' in msg:
                self.events.append(msg)

    def pump(self, seconds):
        """Collects events for a while (the page runs meanwhile)."""
        end = time.time() + seconds
        self.ws.settimeout(0.1)
        try:
            while time.time() < end:
                try:
                    msg = json.loads(self.ws.recv())
                except websocket.WebSocketTimeoutException:
                    continue
                if 'method' in msg:
                    self.events.append(msg)
        finally:
            self.ws.settimeout(20)

    def js(self, expr):
        r = self.call('Runtime.evaluate', expression=expr, returnByValue=True,
                  awaitPromise=True)
        if 'exceptionDetails' in r:
            raise RuntimeError('evaluating %s: %s' % (expr[:60], r['exceptionDetails']))
        return r['result'].get('value')

    def size(self, w, h, mobile):
        self.call('Emulation.setDeviceMetricsOverride', width=w, height=h,
              deviceScaleFactor=1, mobile=mobile)

    def close(self):
        try:
            self.call('Browser.close')
        except Exception:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


# What the page shows of one meter: every data-v text, the last interval's start in ms, the
# charts' counts and the first (newest) row of the daily table.
READ = r'''(() => {
    const sec = [...document.querySelectorAll('[data-meter]')]
        .find((s) => s.dataset.meter === %s);
    if (!sec) return null;
    const v = {};
    for (const e of sec.querySelectorAll('[data-v]')) v[e.dataset.v] = e.textContent;
    const st = sec.querySelector('[data-v="li_start"]');
    const c = (n) => sec.querySelector('[data-chart="' + n + '"]').dataset;
    const today = sec.querySelector('[data-table="days"] tr[data-start] [data-v="kwh"]');
    const pw = c('power');
    return { v: v, start_ms: st.dataset.ms || null, points: pw.points, gaps: pw.gaps,
         from_ms: pw.from, to_ms: pw.to, step_s: pw.step,
         bars_days: c('days').bars, bars_months: c('months').bars,
         today_bar: today ? today.textContent : null,
         svgs: sec.querySelectorAll('svg').length };
})()'''


def store_view(path, meter):
    """The store's last record of METER, its register and today's energy up to it."""
    db = sqlite3.connect('file:%s?mode=ro' % urllib.parse.quote(path), uri=True, timeout=5)
    try:
        row = db.execute('SELECT id FROM meters WHERE name = ?', (meter,)).fetchone()
        if row is None:
            return None
        mid = row[0]
        last = db.execute('SELECT start_us, length_s, pulses, rejected, flags, energy_uwh, '
                  'avg_mw, peak_mw, register_uwh FROM records WHERE meter_id = ? '
                  'ORDER BY start_us DESC LIMIT 1', (mid,)).fetchone()
        if last is None:
            return None
        lt = time.localtime(last[0] // 1000000)
        midnight = int(time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, 0, 0, 0, 0, 0, -1)))
        today = db.execute('SELECT COALESCE(SUM(energy_uwh), 0) FROM records WHERE '
                   'meter_id = ? AND start_us >= ? AND start_us <= ?',
                   (mid, midnight * 1000000, last[0])).fetchone()[0]
    finally:
        db.close()
    keys = ['start_us', 'length_s', 'pulses', 'rejected', 'flags', 'energy_uwh', 'avg_mw',
        'peak_mw', 'register_uwh']
    r = dict(zip(keys, last))
    r['today_uwh'] = today
    return r


def store_sink(path, sink):
    """The store's view of SINK: failing, last error and backlog (records past its cursor)."""
    db = sqlite3.connect('file:%s?mode=ro' % urllib.parse.quote(path), uri=True, timeout=5)
    try:
        row = db.execute('SELECT cursor, failing, last_error FROM sinks WHERE name = ?',
                 (sink,)).fetchone()
        if row is None:
            return None
        backlog = db.execute('SELECT count(*) FROM records WHERE seq > ?',
                     (row[0],)).fetchone()[0]
    finally:
        db.close()
    return {'failing': bool(row[1]), 'last_error': row[2], 'backlog': backlog}


READ_SINK = r'''(() => {
    const tr = [...document.querySelectorAll('[data-sink]')]
        .find((s) => s.dataset.sink === %s);
    if (!tr) return null;
    const v = {};
    for (const e of tr.querySelectorAll('[data-v]')) v[e.dataset.v] = e.textContent;
    return v;
})()'''


def store_series(path, meter, from_ms, to_ms):
    """The records of METER between two times, and those flagged gap or partial."""
    db = sqlite3.connect('file:%s?mode=ro' % urllib.parse.quote(path), uri=True, timeout=5)
    try:
        return db.execute('SELECT count(*), COALESCE(SUM((flags & 3) != 0), 0), '
                          'MIN(m.interval_s) FROM records r JOIN meters m ON m.id = r.meter_id '
                          'WHERE m.name = ? AND start_us >= ? AND start_us < ?',
                          (meter, from_ms * 1000, to_ms * 1000)).fetchone()
    finally:
        db.close()


def number(text, unit=''):
    t = (text or '').strip()
    if unit and t.endswith(unit):
        t = t[:-len(unit)].strip()
    try:
        return float(t)
    except ValueError:
        return None


def same(name, shown, want, resolution, unit=''):
    """SHOWN (text) equals WANT to within half the resolution it is shown with."""
    got = number(shown, unit)
    if got is None or abs(got - want) > resolution / 2 + 1e-9:
        fail('%s: the page shows %r, the store holds %.6f' % (name, shown, want))


def compare(page, rec):
    v = page['v']
    if str(rec['start_us'] // 1000) != page['start_ms']:
        fail('last interval start: page %s ms, store %d ms' % (page['start_ms'],
                                       rec['start_us'] // 1000))
    same('today_kwh', v.get('today_kwh'), rec['today_uwh'] / 1e9, 0.001)
    same('register_kwh', v.get('register_kwh'), rec['register_uwh'] / 1e9, 0.001)
    same('last interval pulses', v.get('li_pulses'), rec['pulses'], 1)
    same('last interval rejected', v.get('li_rejected'), rec['rejected'], 1)
    same('last interval length', v.get('li_length'), rec['length_s'], 1, 's')
    same('last interval energy', v.get('li_energy_wh'), rec['energy_uwh'] / 1e6, 0.1, 'Wh')
    same('last interval average', v.get('li_avg_w'), rec['avg_mw'] / 1e3, 0.1, 'W')
    same('last interval peak', v.get('li_peak_w'), rec['peak_mw'] / 1e3, 0.1, 'W')
    flags = ', '.join(f for i, f in enumerate(FLAGS) if rec['flags'] & (1 << i)) or 'none'
    if v.get('li_flags') != flags:
        fail('last interval flags: the page shows %r, the store holds %r' %
             (v.get('li_flags'), flags))
    if page['today_bar'] is None:
        fail('the daily table has no row')
    else:
        same("today's bar (/api/v1/energy step=day)", page['today_bar'],
             rec['today_uwh'] / 1e9, 0.001)


def main():
    ap = argparse.ArgumentParser(description='Checks the dashboard in headless chromium.')
    ap.add_argument('--url', required=True, help="the logger's page, http://HOST:PORT/")
    ap.add_argument('--store', required=True, help="the logger's store (read with sqlite3)")
    ap.add_argument('--meter', default='house')
    ap.add_argument('--sink', action='append', default=[],
            help="a sink whose state and backlog the page must show as the store's")
    ap.add_argument('--chromium', default='/usr/bin/chromium')
    ap.add_argument('--timeout', type=float, default=20, help='seconds for the page to agree')
    ap.add_argument('--shots', metavar='DIR', help='write the two screenshots there')
    a = ap.parse_args()
    origin = urllib.parse.urlsplit(a.url)
    origin = (origin.scheme, origin.netloc)

    b = Browser(a.chromium)
    try:
        b.call('Network.enable')
        b.call('Page.enable')
        b.call('Runtime.enable')
        b.call('Log.enable')
        b.size(1280, 900, False)
        b.call('Page.navigate', url=a.url)
        # until the page has rendered and shows what the store holds (it refreshes every 3 s;
        # the logger may still be committing)
        page = rec = None
        deadline = time.time() + a.timeout
        while True:
            b.pump(0.5)
            if b.js('document.body && document.body.dataset.rendered === "1"'):
                rec = store_view(a.store, a.meter)
                page = b.js(READ % json.dumps(a.meter))
                if page and rec and page['start_ms'] == str(rec['start_us'] // 1000):
                    # the store may have moved on between the two reads: read it again
                    if store_view(a.store, a.meter) == rec:
                        break
            if time.time() > deadline:
                break
        if page is None:
            fail('the page did not render meter %r within %g s' % (a.meter, a.timeout))
        elif rec is None:
            fail('the store holds no record of meter %r' % a.meter)
        else:
            compare(page, rec)
            if not int(page['points'] or 0) > 0:
                fail('the 24 h power chart has no points')
            n, gaps, interval = store_series(a.store, a.meter, int(page['from_ms']),
                                             int(page['to_ms']))
            if str(interval) == page['step_s']:  # one record a bucket: the counts agree
                if (page['points'], page['gaps']) != (str(n), str(gaps)):
                    fail('the 24 h chart has %s points, %s gap-flagged; the store %d records '
                         'there, %d flagged gap or partial' % (page['points'], page['gaps'],
                                                              n, gaps))
            if not int(page['bars_days'] or 0) >= 30:
                fail('the daily chart has %s bars, not 30+' % page['bars_days'])
            if not int(page['bars_months'] or 0) >= 12:
                fail('the monthly chart has %s bars, not 12+' % page['bars_months'])
            if page['svgs'] != 3:
                fail('%d charts drawn, not 3' % page['svgs'])
            print('dashboard_check: shown: today %s kWh, register %s kWh, last interval %s: '
                  '%s pulses, %s, avg %s; %s power points, %s daily and %s monthly bars' %
                  (page['v']['today_kwh'], page['v']['register_kwh'], page['v']['li_start'],
                   page['v']['li_pulses'], page['v']['li_energy_wh'], page['v']['li_avg_w'],
                   page['points'], page['bars_days'], page['bars_months']))

        for name in a.sink:
            want = store_sink(a.store, name)
            got = b.js(READ_SINK % json.dumps(name))
            if want is None:
                fail('the store has no sink %r' % name)
            elif got is None:
                fail('the page shows no sink %r' % name)
            else:
                if got.get('state') != ('failing' if want['failing'] else 'ok'):
                    fail('sink %s: the page shows %r, the store holds failing=%d' %
                         (name, got.get('state'), want['failing']))
                same('sink %s backlog' % name, got.get('backlog'), want['backlog'], 1)
                if want['failing'] and not got.get('last_error'):
                    fail('sink %s fails (%s) but the page shows no error' %
                         (name, want['last_error']))
                print('dashboard_check: sink %s shown: %s, backlog %s, last error %r' %
                      (name, got.get('state'), got.get('backlog'),
                       got.get('last_error', '')[:60]))

        # phone widths: nothing wider than the screen
        for w, h in ((390, 844), (360, 740)):
            b.size(w, h, True)
            b.pump(0.5)
            sw = b.js('document.documentElement.scrollWidth')
            if sw > w:
                fail('at %d px wide the page is %d px wide (scrolls sideways)' % (w, sw))
        # the dark scheme
        light = b.js('getComputedStyle(document.body).backgroundColor')
        b.call('Emulation.setEmulatedMedia',
               features=[{'name': 'prefers-color-scheme', 'value': 'dark'}])
        dark = b.js('getComputedStyle(document.body).backgroundColor')
        b.call('Emulation.setEmulatedMedia',
               features=[{'name': 'prefers-color-scheme', 'value': 'light'}])
        if light == dark:
            fail('prefers-color-scheme dark does not change the background (%s)' % dark)

        if a.shots:
            os.makedirs(a.shots, exist_ok=True)
            for name, w, h, mobile in (('desktop', 1280, 900, False),
                           ('phone', 390, 844, True)):
                b.size(w, h, mobile)
                b.pump(0.6)  # app.js redraws the charts 150 ms after a resize
                png = b.call('Page.captureScreenshot', format='png')['data']
                out = os.path.join(a.shots, 'dashboard-%s.png' % name)
                with open(out, 'wb') as f:
                    f.write(base64.b64decode(png))
                print('dashboard_check: wrote ' + out)
        b.pump(0.2)
    finally:
        b.close()

    # everything the page asked for, from where
    urls = [e['params']['request']['url'] for e in b.events
        if e['method'] == 'Network.requestWillBeSent']
    outside = [u for u in urls if not u.startswith('data:') and
           (urllib.parse.urlsplit(u).scheme, urllib.parse.urlsplit(u).netloc) != origin]
    for u in outside:
        fail('the page loaded %s, outside the logger (%s://%s)' % (u, *origin))
    paths = sorted({urllib.parse.urlsplit(u).path for u in urls if u not in outside})
    if not any(p.startswith('/api/v1/') for p in paths):
        fail('the page fetched nothing from /api/v1/ (requests: %s)' % paths)
    by_id = {e['params']['requestId']: e['params']['request']['url'] for e in b.events
         if e['method'] == 'Network.requestWillBeSent'}
    for e in b.events:
        m, p = e['method'], e['params']
        if m == 'Runtime.exceptionThrown':
            fail('script exception: %s' % p['exceptionDetails'].get('exception', {})
                 .get('description', p['exceptionDetails'].get('text')))
        elif m == 'Log.entryAdded' and p['entry']['level'] == 'error':
            fail('console: %s %s' % (p['entry'].get('text'), p['entry'].get('url', '')))
        elif m == 'Runtime.consoleAPICalled' and p['type'] == 'error':
            fail('console.error: %s' % [x.get('value') for x in p['args']])
        elif m == 'Network.loadingFailed' and not p.get('canceled'):
            fail('a request failed: %s: %s %s' % (by_id.get(p['requestId'], '?'),
                                  p.get('errorText'), p.get('blockedReason', '')))
    print('dashboard_check: %d requests, all to %s://%s: %s' % (len(urls), *origin,
                                     ' '.join(paths)))
    if failures:
        print('dashboard_check: %d failure(s)' % len(failures), file=sys.stderr)
        return 1
    print('dashboard_check: ok')
    return 0


if __name__ == '__main__':
    sys.exit(main())
