// SPDX-License-Identifier: MIT
// The dashboard's script (web/index.html; the API it reads is docs/http.md). No framework and
// no library: the page is small, and the logger serves it from its own binary on a Pi, so the
// charts are inline SVG drawn here. It fetches only from its own origin, with relative paths
// (api/v1/...), so that it also works behind a reverse proxy that adds a path prefix.
//
// What refreshes when: the live status every 3 s (power, today's energy, last interval,
// detector, sinks), the 24 h power series every 60 s, the daily and monthly energy every
// 5 minutes and when the logger's day changes. A failed fetch keeps the values last shown and
// marks the page "not reachable"; the next tick tries again.
//
// Every value is written as text with textContent (never innerHTML: meter and sink names and
// error messages come from the configuration and from servers), in an element with a data-v
// attribute naming the field, inside the meter's section (data-meter="NAME") or the sink's row
// (data-sink="NAME"). Times are shown in the logger's local time (utc_offset_s of the status),
// which is the time the day and month buckets are cut in, not the browser's.
'use strict';

const SVGNS = 'http://www.w3.org/2000/svg';
const STATUS_MS = 3000;
const POWER_MS = 60000;
const ENERGY_MS = 300000;

const state = {
	status: null,        // the last /api/v1/status
	meters: new Map(),   // name -> { el, power, days, months, powerAt, energyAt, day }
	offsetS: 0,          // the logger's UTC offset
};

// ---- small helpers -------------------------------------------------------------------------

function el(tag, attrs, ...kids) {
	const e = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {}))
		e.setAttribute(k, v);
	for (const k of kids)
		e.append(k);
	return e;
}

function svg(tag, attrs) {
	const e = document.createElementNS(SVGNS, tag);
	for (const [k, v] of Object.entries(attrs || {}))
		e.setAttribute(k, String(v));
	return e;
}

function fmt(v, digits) {
	if (v === null || v === undefined || Number.isNaN(v))
		return '–';
	return Number(v).toFixed(digits);
}

// A power for people: W below 10 kW, kW above.
function fmtW(w) {
	if (w === null || w === undefined)
		return '–';
	return Math.abs(w) >= 10000 ? fmt(w / 1000, 2) + ' kW' : fmt(w, 1) + ' W';
}

function fmtMoney(v, cur) {
	return v === null || v === undefined ? '' : fmt(v, 2) + (cur ? ' ' + cur : '');
}

// The logger's local calendar fields of a Unix time in ms (a Date whose UTC fields are them).
function local(ms) {
	return new Date(ms + state.offsetS * 1000);
}

function pad2(n) {
	return String(n).padStart(2, '0');
}

function fmtDay(ms) {
	const d = local(ms);
	return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`;
}

function fmtTime(ms) {
	const d = local(ms);
	return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ` +
		`${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov',
	'Dec'];

// Sets the text of the element with data-v=NAME under ROOT (and a title, if given).
function put(root, name, text, title) {
	const e = root.querySelector(`[data-v="${name}"]`);
	if (!e)
		return;
	if (e.textContent !== text)
		e.textContent = text;
	if (title !== undefined)
		e.title = title;
}

async function getJSON(path) {
	const r = await fetch(path, { cache: 'no-store', headers: { Accept: 'application/json' } });
	if (!r.ok) {
		let why = r.status + ' ' + r.statusText;
		try {
			why = (await r.json()).error || why;
		} catch (e) { /* not JSON: the status line says it */ }
		throw new Error(path + ': ' + why);
	}
	return r.json();
}

function setConn(ok, why) {
	const c = document.getElementById('conn');
	c.dataset.state = ok ? 'ok' : 'down';
	c.textContent = ok ? 'live' : 'not reachable';
	c.title = why || '';
}

// ---- the meter's section -------------------------------------------------------------------

function stat(label, name, unit) {
	return el('div', { class: 'stat' },
		el('div', { class: 'label' }, label),
		el('div', { class: 'value' }, el('span', { 'data-v': name }, '–'),
			unit ? el('span', { class: 'unit' }, ' ' + unit) : ''));
}

function row(label, name) {
	return [el('dt', {}, label), el('dd', { 'data-v': name }, '–')];
}

function chartBox(title, name, note) {
	const fig = el('figure', { class: 'chart', 'data-chart': name });
	fig.append(el('figcaption', {}, el('h3', {}, title), note ? el('span', {
		class: 'muted legend' }, note) : ''));
	fig.append(el('div', { class: 'plot' }));
	const det = el('details', {}, el('summary', {}, 'Values'), el('div', { class: 'scroll' },
		el('table', { class: 'values', 'data-table': name })));
	fig.append(det);
	return fig;
}

function meterSection(name) {
	const id = 'meter-' + state.meters.size;
	const sec = el('section', { class: 'card meter', 'data-meter': name, id: id,
		'aria-labelledby': id + '-h' });
	sec.append(el('h2', { id: id + '-h' }, 'Meter ', el('span', { class: 'name' }, name)));
	sec.append(el('div', { class: 'stats' },
		stat('Power now', 'power_w', 'W'),
		stat('Today', 'today_kwh', 'kWh'),
		el('div', { class: 'stat cost', hidden: '' },
			el('div', { class: 'label' }, 'Cost today'),
			el('div', { class: 'value' },
				el('span', { 'data-v': 'today_cost' }, '–'))),
		stat('Register', 'register_kwh', 'kWh')));
	sec.append(chartBox('Power, last 24 hours', 'power',
		'average per bucket; gaps: no records · ▲ gap-flagged'));
	const bars = el('div', { class: 'bars' });
	const inc = 'pale, dashed: not fully covered';
	bars.append(chartBox('Energy per day, last 30 days', 'days', inc));
	bars.append(chartBox('Energy per month, last 12 months', 'months', inc));
	sec.append(bars);
	const dl1 = el('dl', { class: 'kv' }, ...row('Start', 'li_start'),
		...row('Length', 'li_length'), ...row('Pulses', 'li_pulses'),
		...row('Rejected', 'li_rejected'), ...row('Energy', 'li_energy_wh'),
		...row('Average', 'li_avg_w'), ...row('Peak', 'li_peak_w'),
		...row('Flags', 'li_flags'));
	const dl2 = el('dl', { class: 'kv' }, ...row('State', 'det_state'),
		...row('Amplitude', 'det_amplitude'), ...row('Noise', 'det_noise'),
		...row('Rejected pulses', 'det_rejected'), ...row('Source', 'src_state'),
		...row('Samples lost', 'src_lost'), ...row('Constant', 'imp_per_kwh'),
		...row('Interval', 'interval_s'));
	sec.append(el('div', { class: 'details' },
		el('div', {}, el('h3', {}, 'Last interval'), dl1),
		el('div', {}, el('h3', {}, 'Detector and source'), dl2)));
	document.getElementById('meters').append(sec);
	const m = { el: sec, name: name, power: null, days: null, months: null, powerAt: 0,
		energyAt: 0, day: null };
	state.meters.set(name, m);
	return m;
}

function showMeter(m, s, st) {
	const e = m.el;
	put(e, 'power_w', fmt(s.power_w, 1));
	put(e, 'today_kwh', fmt(s.today_kwh, 3));
	put(e, 'register_kwh', fmt(s.register_kwh, 3));
	const cost = e.querySelector('.stat.cost');
	cost.hidden = s.today_cost === null || s.today_cost === undefined;
	put(e, 'today_cost', fmtMoney(s.today_cost, st.currency));
	const li = s.last_interval;
	if (li) {
		put(e, 'li_start', fmtTime(li.start_ms), li.start);
		e.querySelector('[data-v="li_start"]').dataset.ms = String(li.start_ms);
		put(e, 'li_length', li.length_s + ' s');
		put(e, 'li_pulses', String(li.pulses));
		put(e, 'li_rejected', String(li.rejected));
		put(e, 'li_energy_wh', fmt(li.energy_kwh * 1000, 1) + ' Wh');
		put(e, 'li_avg_w', fmt(li.avg_w, 1) + ' W');
		put(e, 'li_peak_w', fmt(li.peak_w, 1) + ' W');
		put(e, 'li_flags', li.flags && li.flags.length ? li.flags.join(', ') : 'none');
	} else {
		put(e, 'li_start', 'no record yet');
	}
	const d = s.detector || {};
	put(e, 'det_state', d.state || '–');
	put(e, 'det_amplitude', d.amplitude === null || d.amplitude === undefined ? '–' :
		String(d.amplitude));
	put(e, 'det_noise', d.noise === null || d.noise === undefined ? '–' : String(d.noise));
	put(e, 'det_rejected', String(d.rejected_total ?? '–'));
	const src = s.source || {};
	put(e, 'src_state', src.failing ? 'failing: ' + (src.error || '?') : 'ok');
	e.querySelector('[data-v="src_state"]').classList.toggle('bad', !!src.failing);
	put(e, 'src_lost', String(src.lost ?? '–'));
	put(e, 'imp_per_kwh', s.imp_per_kwh + ' imp/kWh');
	put(e, 'interval_s', s.interval_s + ' s');
}

function showSinks(sinks) {
	const tb = document.querySelector('#sinks tbody');
	document.getElementById('sinks-none').hidden = sinks.length > 0;
	document.getElementById('sinks').hidden = sinks.length === 0;
	for (const k of sinks) {
		let tr = [...tb.children].find((r) => r.dataset.sink === k.name);
		if (!tr) {
			tr = el('tr', { 'data-sink': k.name }, el('th', { scope: 'row' }, k.name));
			for (const f of ['kind', 'state', 'backlog', 'delivered', 'quarantined',
				'last_ok', 'last_error'])
				tr.append(el('td', { 'data-v': f }));
			tb.append(tr);
		}
		put(tr, 'kind', k.kind);
		put(tr, 'state', k.failing ? 'failing' : 'ok');
		tr.classList.toggle('bad', !!k.failing);
		put(tr, 'backlog', String(k.backlog));
		put(tr, 'delivered', String(k.delivered));
		put(tr, 'quarantined', String(k.quarantined));
		put(tr, 'last_ok', k.last_ok_ms ? fmtTime(k.last_ok_ms) : 'never');
		put(tr, 'last_error', k.last_error || '');
	}
}

// ---- charts ---------------------------------------------------------------------------------

// Chart geometry for a plot element: its width now (redrawn on resize), a fixed height.
function frame(plot, h) {
	const w = Math.max(280, Math.floor(plot.clientWidth || 600));
	const pad = { l: 44, r: 8, t: 18, b: 22 };
	return { w, h, pad, iw: w - pad.l - pad.r, ih: h - pad.t - pad.b };
}

// A "nice" upper bound and tick step for 0..max.
function niceScale(max) {
	if (!(max > 0))
		max = 1;
	const raw = max / 4;
	const p = Math.pow(10, Math.floor(Math.log10(raw)));
	const step = [1, 2, 2.5, 5, 10].map((f) => f * p).find((s) => s >= raw);
	return { top: Math.ceil(max / step) * step, step };
}

function yAxis(g, f, scale, unit) {
	for (let v = 0; v <= scale.top + 1e-9; v += scale.step) {
		const y = f.pad.t + f.ih - v / scale.top * f.ih;
		g.append(svg('line', { x1: f.pad.l, x2: f.w - f.pad.r, y1: y, y2: y,
			class: 'grid' }));
		const t = svg('text', { x: f.pad.l - 4, y: y + 4, class: 'tick',
			'text-anchor': 'end' });
		t.textContent = scale.step < 1 ? v.toFixed(1) : String(Math.round(v));
		g.append(t);
	}
	const u = svg('text', { x: 2, y: 11, class: 'tick unit' });
	u.textContent = unit;
	g.append(u);
}

function newSvg(plot, f, label) {
	const s = svg('svg', { width: f.w, height: f.h, viewBox: `0 0 ${f.w} ${f.h}`, role: 'img',
		'aria-label': label });
	plot.replaceChildren(s);
	return s;
}

function drawPower(m) {
	const fig = m.el.querySelector('[data-chart="power"]');
	const plot = fig.querySelector('.plot');
	const p = m.power;
	if (!p)
		return;
	const f = frame(plot, 200);
	const pts = p.points || [];
	const from = p.from_ms, to = p.to_ms, stepMs = p.step_s * 1000;
	let max = 0;
	for (const q of pts)
		max = Math.max(max, q[1]);
	const sc = niceScale(max);
	const x = (ms) => f.pad.l + (ms - from) / (to - from) * f.iw;
	const y = (w) => f.pad.t + f.ih - Math.max(0, w) / sc.top * f.ih;
	const s = newSvg(plot, f, `Power over the last 24 hours, ${pts.length} buckets, ` +
		`highest average ${fmtW(max)}`);
	yAxis(s, f, sc, 'W');
	// hour ticks every 3 h (6 h on a narrow screen), in the logger's local time
	const every = (f.iw < 500 ? 6 : 3) * 3600000;
	const off = state.offsetS * 1000;
	const first = Math.ceil((from + off) / every) * every - off;
	for (let t = first; t <= to; t += every) {
		const edge = x(t) > f.w - 18; // the last label, not cut at the right edge
		const tx = svg('text', { x: edge ? f.w - 1 : x(t), y: f.h - 6, class: 'tick',
			'text-anchor': edge ? 'end' : 'middle' });
		tx.textContent = pad2(local(t).getUTCHours()) + ':00';
		s.append(tx);
	}
	// runs of adjacent buckets become one area each: a missing bucket is a hole
	let d = '', line = '', run = [];
	const flush = () => {
		if (!run.length)
			return;
		const x0 = x(run[0][0]), x1 = x(run[run.length - 1][0] + stepMs);
		let seg = '';
		for (const q of run)
			seg += `L${x(q[0]).toFixed(1)},${y(q[1]).toFixed(1)}` +
				`L${x(q[0] + stepMs).toFixed(1)},${y(q[1]).toFixed(1)}`;
		const y0 = y(0).toFixed(1);
		d += `M${x0.toFixed(1)},${y0}` + seg + `L${x1.toFixed(1)},${y0}Z`;
		line += 'M' + seg.slice(1);
		run = [];
	};
	for (const q of pts) {
		if (run.length && q[0] - run[run.length - 1][0] > stepMs * 1.5)
			flush();
		run.push(q);
	}
	flush();
	s.append(svg('path', { d: d || 'M0,0', class: 'area' }));
	s.append(svg('path', { d: line || 'M0,0', class: 'line' }));
	// gap-flagged buckets: a mark under the axis
	let gaps = 0;
	for (const q of pts) {
		if (!q[3])
			continue;
		gaps++;
		const gx = x(q[0] + stepMs / 2);
		const y0 = y(0);
		s.append(svg('path', { d: `M${gx - 4},${y0 + 7}L${gx},${y0}L${gx + 4},${y0 + 7}Z`,
			class: 'gapmark' }));
	}
	// the holes, as text: how much of the 24 h has no records
	const covered = pts.length * stepMs;
	fig.dataset.points = String(pts.length);
	fig.dataset.from = String(from);
	fig.dataset.to = String(to);
	fig.dataset.step = String(p.step_s);
	fig.dataset.gaps = String(gaps);
	const tbl = fig.querySelector('table');
	const hours = new Map(); // the hourly summary of the series, as text
	for (const q of pts) {
		const h = Math.floor((q[0] + state.offsetS * 1000) / 3600000);
		const e = hours.get(h) || { n: 0, sum: 0, peak: 0, gaps: 0, ms: q[0] };
		e.n++;
		e.sum += q[1];
		e.peak = Math.max(e.peak, q[2]);
		e.gaps += q[3];
		hours.set(h, e);
	}
	const body = [el('tr', {}, el('th', { scope: 'col' }, 'Hour'),
		el('th', { scope: 'col' }, 'Average W'), el('th', { scope: 'col' }, 'Peak W'),
		el('th', { scope: 'col' }, 'Buckets'), el('th', { scope: 'col' }, 'Gap-flagged'))];
	for (const e of hours.values()) {
		const t = fmtTime(e.ms);
		body.push(el('tr', {}, el('td', {}, t.slice(0, 14) + '00'),
			el('td', {}, fmt(e.sum / e.n, 1)), el('td', {}, fmt(e.peak, 1)),
			el('td', {}, String(e.n)), el('td', {}, String(e.gaps))));
	}
	tbl.replaceChildren(...body);
	fig.querySelector('summary').textContent =
		`Values (records cover ${fmt(covered / 36e5, 1)} h of 24 h, ${gaps} gap-flagged)`;
}

function drawBars(m, which) {
	const fig = m.el.querySelector(`[data-chart="${which}"]`);
	const plot = fig.querySelector('.plot');
	const data = m[which];
	if (!data)
		return;
	const rows = data.rows || [];
	const f = frame(plot, 180);
	let max = 0;
	for (const r of rows)
		max = Math.max(max, r.kwh);
	const sc = niceScale(max);
	const s = newSvg(plot, f, `Energy per ${which === 'days' ? 'day' : 'month'}, ` +
		`${rows.length} bars, highest ${fmt(max, 3)} kWh`);
	yAxis(s, f, sc, 'kWh');
	const bw = f.iw / Math.max(1, rows.length);
	const labelEvery = Math.ceil(rows.length / Math.max(1, Math.floor(f.iw / 34)));
	const now = state.status ? state.status.now_ms : Date.now();
	let incomplete = 0;
	rows.forEach((r, i) => {
		const lenS = (Math.min(r.end_ms, now) - r.start_ms) / 1000;
		const whole = (r.end_ms - r.start_ms) / 1000;
		// the current day/month is "incomplete" only for the time that has not yet passed
		const inc = r.covered_s < Math.min(whole, Math.max(0, lenS)) - 1 || r.records === 0;
		if (inc)
			incomplete++;
		const h = r.kwh / sc.top * f.ih;
		const bx = f.pad.l + i * bw + Math.max(1, bw * 0.12);
		const rect = svg('rect', { x: bx.toFixed(1), y: (f.pad.t + f.ih - h).toFixed(1),
			width: Math.max(1, bw * 0.76).toFixed(1), height: Math.max(0, h).toFixed(1),
			class: inc ? 'bar incomplete' : 'bar' });
		const d = local(r.start_ms);
		const name = which === 'days' ? fmtDay(r.start_ms) :
			`${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}`;
		const tt = svg('title', {});
		tt.textContent = `${name}: ${fmt(r.kwh, 3)} kWh` + (inc ? ' (incomplete: covered ' +
			fmt(r.covered_s / 3600, 1) + ' h)' : '');
		rect.append(tt);
		s.append(rect);
		if (inc) // an outline, so an empty incomplete bucket is still visible
			s.append(svg('rect', { x: bx.toFixed(1), y: (f.pad.t + f.ih - 3).toFixed(1),
				width: Math.max(1, bw * 0.76).toFixed(1), height: 3,
				class: 'nodata' }));
		if ((rows.length - 1 - i) % labelEvery === 0) {
			const tx = svg('text', { x: (f.pad.l + (i + 0.5) * bw).toFixed(1),
				y: f.h - 6, class: 'tick', 'text-anchor': 'middle' });
			tx.textContent = which === 'days' ? String(d.getUTCDate()) :
				MONTHS[d.getUTCMonth()];
			s.append(tx);
		}
	});
	fig.dataset.bars = String(rows.length);
	fig.dataset.incomplete = String(incomplete);
	const withCost = data.price_per_kwh !== null && data.price_per_kwh !== undefined;
	const head = el('tr', {}, el('th', { scope: 'col' }, which === 'days' ? 'Day' : 'Month'),
		el('th', { scope: 'col' }, 'kWh'));
	if (withCost)
		head.append(el('th', { scope: 'col' }, 'Cost' + (data.currency ? ' ' +
			data.currency : '')));
	head.append(el('th', { scope: 'col' }, 'Covered h'), el('th', { scope: 'col' }, 'Peak W'));
	const body = [head];
	for (const r of rows.slice().reverse()) {
		const tr = el('tr', { 'data-start': String(r.start_ms) },
			el('td', {}, which === 'days' ? fmtDay(r.start_ms) :
				fmtDay(r.start_ms).slice(0, 7)),
			el('td', { 'data-v': 'kwh' }, fmt(r.kwh, 3)));
		if (withCost)
			tr.append(el('td', {}, fmt(r.cost, 2)));
		tr.append(el('td', {}, fmt(r.covered_s / 3600, 1)),
			el('td', {}, r.records ? fmt(r.peak_w, 1) : '–'));
		body.push(tr);
	}
	fig.querySelector('table').replaceChildren(...body);
	fig.querySelector('summary').textContent = `Values (${incomplete} of ${rows.length} ` +
		'not fully covered)';
}

// ---- the refresh loop -----------------------------------------------------------------------

async function loadPower(m) {
	m.power = await getJSON('api/v1/power?meter=' + encodeURIComponent(m.name));
	m.powerAt = Date.now();
	drawPower(m);
}

async function loadEnergy(m) {
	const q = 'api/v1/energy?meter=' + encodeURIComponent(m.name);
	const [days, months] = await Promise.all([getJSON(q + '&step=day'),
		getJSON(q + '&step=month')]);
	m.days = days;
	m.months = months;
	m.energyAt = Date.now();
	drawBars(m, 'days');
	drawBars(m, 'months');
}

async function tick() {
	try {
		const st = await getJSON('api/v1/status');
		state.status = st;
		state.offsetS = st.utc_offset_s || 0;
		put(document.body, 'now', fmtTime(st.now_ms));
		put(document.body, 'version', 'v' + st.version);
		setConn(true);
		const day = Math.floor((st.now_ms / 1000 + state.offsetS) / 86400);
		const jobs = [];
		for (const s of st.meters) {
			const m = state.meters.get(s.name) || meterSection(s.name);
			showMeter(m, s, st);
			if (Date.now() - m.powerAt >= POWER_MS)
				jobs.push(loadPower(m));
			if (Date.now() - m.energyAt >= ENERGY_MS || m.day !== day) {
				m.day = day;
				jobs.push(loadEnergy(m));
			}
		}
		showSinks(st.sinks || []);
		await Promise.all(jobs);
		document.body.dataset.rendered = '1';
	} catch (e) {
		setConn(false, String(e.message || e));
	}
	setTimeout(tick, STATUS_MS);
}

let resizeTimer = 0;
window.addEventListener('resize', () => {
	clearTimeout(resizeTimer);
	resizeTimer = setTimeout(() => {
		for (const m of state.meters.values()) {
			drawPower(m);
			drawBars(m, 'days');
			drawBars(m, 'months');
		}
	}, 150);
});

tick();
