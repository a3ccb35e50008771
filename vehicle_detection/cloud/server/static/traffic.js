// Copyright 2026 The vehicle_detection Authors. Licensed under the Apache License, Version 2.0.
// Traffic counts: one stacked bar chart per device and counting line, and the CSV export.
'use strict';

const TRAFFIC_COLOURS = ['#3b6fd8', '#e8710a', '#1e8e3e', '#a142f4', '#d93025', '#12b5cb'];
const SVG_NS = 'http://www.w3.org/2000/svg';
const MAX_CHARTS = 12;

// Without a time window in the filters, the span each bucket draws: at most 180 bars.
const BUCKET_SPAN_MS = { '1min': 3 * 3600e3, '15min': 24 * 3600e3, hour: 7 * 86400e3,
  day: 30 * 86400e3 };

function trafficQuery(filters) {
  // The alert filters' device, time window and replays; the traffic panel's bucket. Only
  // what the charts draw: rows split by the stacking (direction or class), the other summed.
  const params = new URLSearchParams();
  const bucket = document.getElementById('t-bucket').value;
  if (filters.get('device')) params.set('device', filters.get('device'));
  const until = filters.get('until') ? new Date(filters.get('until')) : new Date();
  const since = filters.get('since') ? new Date(filters.get('since'))
    : new Date(until.getTime() - BUCKET_SPAN_MS[bucket]);
  params.set('since', since.toISOString());
  params.set('until', until.toISOString());
  params.set('replay', filters.get('replay') || 'exclude');
  params.set('bucket', bucket);
  params.set('by', document.getElementById('t-stack').value);
  return params;
}

function svgElement(tag, attributes, content) {
  const element = document.createElementNS(SVG_NS, tag);
  Object.entries(attributes).forEach(([name, value]) => element.setAttribute(name, value));
  if (content !== undefined) element.textContent = content;
  return element;
}

function bucketTimes(series) {
  const times = [];
  const step = series.bucket_s * 1000;
  for (let t = new Date(series.start).getTime(); t < new Date(series.end).getTime(); t += step) {
    times.push(t);
  }
  return times;
}

function bucketLabel(time, bucketS) {
  const date = new Date(time);
  if (bucketS >= 86400) return `${date.getMonth() + 1}/${date.getDate()}`;
  return `${String(date.getHours()).padStart(2, '0')}:${String(date.getMinutes()).padStart(2, '0')}`;
}

function stackedChart(series, device, line, stackBy) {
  // One chart: a bar per bucket, stacked by direction or class; grey: no data that bucket.
  const rows = series.rows.filter((r) => r.device_id === device && r.line === line);
  const covered = new Set(series.coverage.filter((c) => c.device_id === device)
    .map((c) => new Date(c.start).getTime()));
  const keys = [...new Set(rows.map((r) => r[stackBy]))].sort();
  const times = bucketTimes(series);
  const index = new Map(times.map((t, i) => [t, i]));
  const stacks = times.map(() => new Map());
  rows.forEach((r) => {
    const i = index.get(new Date(r.start).getTime());
    if (i !== undefined) stacks[i].set(r[stackBy], (stacks[i].get(r[stackBy]) || 0) + r.count);
  });
  const totals = stacks.map((s) => [...s.values()].reduce((a, b) => a + b, 0));
  const max = Math.max(1, ...totals);
  const svg = svgElement('svg', { viewBox: '0 0 960 206', class: 'traffic-chart' });
  const width = 900 / Math.max(1, times.length);
  times.forEach((time, i) => {
    const x = 50 + i * width;
    if (!covered.has(time)) {
      svg.appendChild(svgElement('rect', { x, y: 168, width: Math.max(1, width - 1), height: 4,
        class: 'nodata' })).appendChild(svgElement('title', {}, 'no data'));
    }
    let y = 170;
    keys.forEach((key, k) => {
      const value = stacks[i].get(key) || 0;
      if (!value) return;
      const height = (150 * value) / max;
      y -= height;
      const rect = svgElement('rect', { x, y, width: Math.max(1, width - 1), height,
        fill: TRAFFIC_COLOURS[k % TRAFFIC_COLOURS.length], 'data-key': key });
      rect.appendChild(svgElement('title', {}, `${bucketLabel(time, series.bucket_s)} ${key}: ${value}`));
      svg.appendChild(rect);
    });
    if (times.length <= 24 || i % Math.ceil(times.length / 24) === 0) {
      svg.appendChild(svgElement('text', { x, y: 186 }, bucketLabel(time, series.bucket_s)));
    }
  });
  svg.appendChild(svgElement('text', { x: 0, y: 24 }, String(max)));
  svg.appendChild(svgElement('text', { x: 0, y: 170 }, '0'));
  keys.forEach((key, k) => {
    const total = rows.filter((r) => r[stackBy] === key).reduce((a, r) => a + r.count, 0);
    svg.appendChild(svgElement('rect', { x: 60 + 150 * k, y: 191, width: 10, height: 9,
      fill: TRAFFIC_COLOURS[k % TRAFFIC_COLOURS.length] }));
    svg.appendChild(svgElement('text', { x: 74 + 150 * k, y: 200, class: 'legend' },
      `${key} (${total})`));
  });
  return svg;
}

function renderTraffic(series) {
  const box = document.getElementById('traffic');
  const stackBy = document.getElementById('t-stack').value;
  const pairs = [...new Set(series.rows.map((r) => `${r.device_id}\u0000${r.line}`))].sort();
  box.replaceChildren();
  if (!pairs.length) {
    const empty = document.createElement('p');
    empty.className = 'muted';
    empty.textContent = series.coverage.length ? 'no vehicle crossed a counting line'
      : 'no counts in this window (set counting_lines on a device)';
    box.appendChild(empty);
  }
  pairs.slice(0, MAX_CHARTS).forEach((pair) => {
    const [device, line] = pair.split('\u0000');
    const figure = document.createElement('figure');
    figure.className = 'traffic';
    figure.dataset.device = device;
    figure.dataset.line = line;
    const caption = document.createElement('figcaption');
    caption.textContent = `${device} · ${line}`;
    figure.append(caption, stackedChart(series, device, line, stackBy));
    box.appendChild(figure);
  });
}

function showRefusal(detail) {
  // A window the server will not answer in one go (too many rows): say what to change.
  const note = document.createElement('p');
  note.className = 'muted';
  note.textContent = `not shown: ${detail}`;
  document.getElementById('traffic').replaceChildren(note);
}

async function refreshTraffic(filters, current = () => true) {
  // current(): whether this refresh is still the newest (an older one must not draw).
  const query = trafficQuery(filters);
  const everything = new URLSearchParams(query);
  everything.delete('by'); // the export keeps every direction and class
  document.getElementById('t-csv').href = `/api/v1/counts.csv?${everything}`;
  const path = `/api/v1/counts?${query}`;
  const response = await fetch(path, { cache: 'no-store' });
  if (!current()) return;
  if (response.status === 422) {
    showRefusal((await response.json()).detail);
    return;
  }
  if (response.status === 401) window.location.assign('/login'); // session ended
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  const series = await response.json();
  if (current()) renderTraffic(series);
}

window.vdTraffic = { refreshTraffic };
