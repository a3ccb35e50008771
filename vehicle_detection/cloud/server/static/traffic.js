// Copyright 2026 The vehicle_detection Authors. Licensed under the Apache License, Version 2.0.
// Traffic counts: per device and counting line a stacked bar chart and its 15-minute table;
// the CSV export.
'use strict';

const MAX_CHARTS = 12;
const TABLE_SPAN_MS = 24 * 3600e3; // the 15-minute table: at most 96 rows

// Without a time window in the filters, the span each bucket draws: at most 180 bars.
const BUCKET_SPAN_MS = { '1min': 3 * 3600e3, '15min': 24 * 3600e3, hour: 7 * 86400e3,
  day: 30 * 86400e3 };
const BUCKET_S = { '1min': 60, '15min': 900, hour: 3600, day: 86400 };

function trafficQuery(filters) {
  // The alert filters' device, time window and replays; the traffic panel's bucket. Only
  // what the charts draw: rows split by the stacking (direction or class), the other summed.
  const params = new URLSearchParams();
  const bucket = document.getElementById('t-bucket').value;
  if (filters.get('device')) params.set('device', filters.get('device'));
  // Without an end in the filters, the end of the current bucket: every operator then asks
  // the same query (one cached answer) and the server aligns to buckets anyway.
  const step = BUCKET_S[bucket] * 1000;
  const until = filters.get('until') ? new Date(filters.get('until'))
    : new Date(Math.ceil(Date.now() / step) * step);
  const since = filters.get('since') ? new Date(filters.get('since'))
    : new Date(until.getTime() - BUCKET_SPAN_MS[bucket]);
  params.set('since', since.toISOString());
  params.set('until', until.toISOString());
  params.set('replay', filters.get('replay') || 'exclude');
  params.set('bucket', bucket);
  params.set('by', document.getElementById('t-stack').value);
  return params;
}

function bucketTimes(series) {
  const times = [];
  const step = series.bucket_s * 1000;
  for (let t = new Date(series.start).getTime(); t < new Date(series.end).getTime(); t += step) {
    times.push(t);
  }
  return times;
}

function qualityNote(coverage) {
  // What a bucket's coverage says of its data: flags, and the seconds the camera saw.
  const seen = `observed ${coverage.observed_seconds} of ${coverage.seconds} s`;
  return coverage.flags.length ? `${coverage.flags.join(', ')}; ${seen}` : seen;
}

function stackedChart(figure, series, device, line, stackBy) {
  // One chart: a bar per bucket, stacked by direction or class; grey: no data that bucket;
  // orange under a bar: detection was degraded (dark, glare, ...), its counts may be low.
  const { atBucket, barChart, BAR_COLOURS, fullTimeLabel } = window.vdCharts;
  const rows = series.rows.filter((r) => r.device_id === device && r.line === line);
  const coverage = new Map(series.coverage.filter((c) => c.device_id === device)
    .map((c) => [new Date(c.start).getTime(), c]));
  const covered = new Set(coverage.keys());
  const keys = [...new Set(rows.map((r) => r[stackBy]))].sort();
  const times = bucketTimes(series);
  const index = new Map(times.map((t, i) => [t, i]));
  const stacks = keys.map(() => times.map(() => 0));
  rows.forEach((r) => {
    const i = index.get(new Date(r.start).getTime());
    if (i !== undefined) stacks[keys.indexOf(r[stackBy])][i] += r.count;
  });
  const step = series.bucket_s * 1000;
  const canvas = figure.querySelector('canvas');
  barChart(canvas, {
    timeAxis: true, step, stacked: true, min: times[0], max: times[times.length - 1],
    yTitle: `vehicles per ${document.getElementById('t-bucket').selectedOptions[0].text}`,
    noData: times.filter((t) => !covered.has(t)),
    degraded: times.filter((t) => covered.has(t) && coverage.get(t).flags.length),
    datasets: keys.map((key, k) => ({
      label: key, backgroundColor: BAR_COLOURS[k % BAR_COLOURS.length],
      data: times.map((t, i) => ({ x: atBucket(t, step), y: stacks[k][i] })),
    })),
  });
  figure.dataset.bars = String(stacks.flat().filter((v) => v > 0).length);
  // The degraded buckets, named (the chart's orange marks), and the flags in the caption.
  const degraded = times.filter((t) => covered.has(t) && coverage.get(t).flags.length);
  figure.querySelector('ul.degraded').replaceChildren(...degraded.map((t) => {
    const item = document.createElement('li');
    item.dataset.flags = coverage.get(t).flags.join(' ');
    item.textContent = `${fullTimeLabel(t)} ${qualityNote(coverage.get(t))}`;
    return item;
  }));
  const flags = [...new Set(degraded.flatMap((t) => coverage.get(t).flags))].sort();
  figure.querySelector('figcaption').textContent = `${device} · ${line}` +
    (flags.length ? ` · degraded (counts may be low): ${flags.join(', ')}` : '');
  const legend = figure.querySelector('ul.legend');
  legend.replaceChildren(...keys.map((key, k) => {
    const item = document.createElement('li');
    item.dataset.key = key;
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = BAR_COLOURS[k % BAR_COLOURS.length];
    const total = stacks[k].reduce((a, b) => a + b, 0);
    item.append(swatch, `${key} (${total})`);
    return item;
  }));
}

function trafficFigure(box, device, line) {
  // The figure of a device's line: made once, its chart updated in place after.
  const found = [...box.querySelectorAll('figure.traffic')].find(
    (f) => f.dataset.device === device && f.dataset.line === line);
  if (found) return found;
  const figure = document.createElement('figure');
  figure.className = 'traffic';
  figure.dataset.device = device;
  figure.dataset.line = line;
  const caption = document.createElement('figcaption');
  caption.textContent = `${device} · ${line}`;
  const holder = document.createElement('div');
  holder.className = 'chart-box';
  holder.appendChild(document.createElement('canvas'));
  const legend = document.createElement('ul');
  legend.className = 'legend';
  const degraded = document.createElement('ul');
  degraded.className = 'degraded';
  const table = document.createElement('div');
  table.className = 'table15';
  figure.append(caption, holder, legend, degraded, table);
  return figure;
}

function clearTraffic() {
  const box = document.getElementById('traffic');
  box.querySelectorAll('canvas').forEach((c) => window.vdCharts.clearChart(c));
  box.replaceChildren();
}

function renderTraffic(series, table) {
  // table: the 15-minute counts (by direction and class) drawn as a table next to each chart.
  const box = document.getElementById('traffic');
  const stackBy = document.getElementById('t-stack').value;
  const pairs = [...new Set(series.rows.map((r) => `${r.device_id}\u0000${r.line}`))].sort()
    .slice(0, MAX_CHARTS);
  const keep = pairs.map((pair) => {
    const [device, line] = pair.split('\u0000');
    const figure = trafficFigure(box, device, line);
    stackedChart(figure, series, device, line, stackBy);
    window.vdTable15.renderTable(figure.querySelector('.table15'), table, device, line);
    return figure;
  });
  [...box.children].filter((child) => !keep.includes(child)).forEach((child) => {
    child.querySelectorAll('canvas').forEach((c) => window.vdCharts.clearChart(c));
    child.remove();
  });
  keep.forEach((figure) => box.appendChild(figure)); // in order (a no-op when already)
  if (!pairs.length) {
    const empty = document.createElement('p');
    empty.className = 'muted';
    empty.textContent = series.coverage.length ? 'no vehicle crossed a counting line'
      : 'no counts in this window (set counting_lines on a device)';
    box.appendChild(empty);
  }
}

function showRefusal(detail) {
  // A window the server will not answer in one go (too many rows): say what to change.
  const note = document.createElement('p');
  note.className = 'muted';
  note.textContent = `not shown: ${detail}`;
  clearTraffic();
  document.getElementById('traffic').appendChild(note);
}

function tableQuery(query) {
  // The 15-minute table: every direction and class, the last 24 h of the chart's window.
  const params = new URLSearchParams(query);
  const until = new Date(params.get('until'));
  const since = new Date(Math.max(new Date(params.get('since')).getTime(),
    until.getTime() - TABLE_SPAN_MS));
  params.set('since', since.toISOString());
  params.set('bucket', '15min');
  params.set('by', 'direction,class_name');
  return params;
}

async function fetchCounts(query) {
  // The answer, or a refusal (422: the window is too large) as { refused: detail }.
  const path = `/api/v1/counts?${query}`;
  const response = await fetch(path, { cache: 'no-cache' }); // revalidated with its ETag
  if (response.status === 422) return { refused: (await response.json()).detail };
  if (response.status === 401) window.location.assign('/login'); // session ended
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

async function refreshTraffic(filters, current = () => true) {
  // current(): whether this refresh is still the newest (an older one must not draw).
  const query = trafficQuery(filters);
  const everything = new URLSearchParams(query);
  everything.delete('by'); // the export keeps every direction and class
  // The export states its times in UTC and in the zone this page shows.
  everything.set('tz', Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC');
  document.getElementById('t-csv').href = `/api/v1/counts.csv?${everything}`;
  const [series, table] = await Promise.all([fetchCounts(query), fetchCounts(tableQuery(query))]);
  if (!current()) return;
  const refused = series.refused || table.refused;
  if (refused) {
    showRefusal(refused);
    return;
  }
  renderTraffic(series, table);
}

window.vdTraffic = { refreshTraffic, clearTraffic };
