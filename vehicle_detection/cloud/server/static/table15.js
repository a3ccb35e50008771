// Copyright 2026 The vehicle_detection Authors. Licensed under the Apache License, Version 2.0.
// The 15-minute table of a device's counting line: time x direction x class, with totals,
// the peak hour (the four consecutive observed quarters with the most vehicles) and its peak
// hour factor, PHF = peak hour volume / (4 x the busiest quarter of that hour).
'use strict';

const QUARTER_MS = 900e3;

function cell(tag, content, attributes = {}) {
  const element = document.createElement(tag);
  element.textContent = content;
  Object.entries(attributes).forEach(([name, value]) => {
    if (name === 'className') element.className = value;
    else element.setAttribute(name, value);
  });
  return element;
}

function quarterTable(series, device, line) {
  // Quarters (observed or not) from the first to the last observed one, and the columns.
  const rows = series.rows.filter((r) => r.device_id === device && r.line === line);
  const covered = new Set(series.coverage.filter((c) => c.device_id === device)
    .map((c) => new Date(c.start).getTime()));
  const directions = [...new Set(rows.map((r) => r.direction))].sort();
  const classes = [...new Set(rows.map((r) => r.class_name))].sort();
  const columns = [];
  directions.forEach((direction) => {
    classes.forEach((name) => columns.push({ direction, name }));
    columns.push({ direction, name: null }); // the direction's total
  });
  columns.push({ direction: null, name: null }); // every direction and class
  const counts = new Map(); // quarter -> Map(direction \0 class -> count)
  rows.forEach((r) => {
    const t = new Date(r.start).getTime();
    if (!counts.has(t)) counts.set(t, new Map());
    const key = `${r.direction}\u0000${r.class_name}`;
    counts.get(t).set(key, (counts.get(t).get(key) || 0) + r.count);
  });
  const value = (t, column) => {
    let sum = 0;
    (counts.get(t) || new Map()).forEach((count, key) => {
      const [direction, name] = key.split('\u0000');
      if ((column.direction === null || column.direction === direction) &&
          (column.name === null || column.name === name)) sum += count;
    });
    return sum;
  };
  const times = [];
  for (let t = new Date(series.start).getTime(); t < new Date(series.end).getTime();
    t += QUARTER_MS) times.push(t);
  const observed = times.filter((t) => covered.has(t));
  const quarters = observed.length
    ? times.filter((t) => t >= observed[0] && t <= observed[observed.length - 1]) : [];
  return { quarters, covered, columns, value };
}

function peakHour({ quarters, covered, columns, value }) {
  // The four consecutive quarters, all observed, with the most vehicles (the earliest of
  // equals); per column its volume then and its PHF. null: no observed hour with traffic.
  const total = columns[columns.length - 1];
  let best = null;
  for (let i = 0; i + 4 <= quarters.length; i += 1) {
    const hour = quarters.slice(i, i + 4);
    if (!hour.every((t) => covered.has(t))) continue;
    const volume = hour.reduce((sum, t) => sum + value(t, total), 0);
    if (volume > 0 && (!best || volume > best.volume)) best = { hour, volume };
  }
  if (!best) return null;
  return {
    start: best.hour[0],
    columns: columns.map((column) => {
      const volumes = best.hour.map((t) => value(t, column));
      const volume = volumes.reduce((a, b) => a + b, 0);
      const busiest = Math.max(...volumes);
      return { volume, phf: busiest ? volume / (4 * busiest) : null };
    }),
  };
}

function renderTable(box, series, device, line) {
  const { clockLabel, timeLabel, fullTimeLabel } = window.vdCharts;
  const data = quarterTable(series, device, line);
  const { quarters, covered, columns, value } = data;
  const table = cell('table', '', { className: 't15', 'data-device': device, 'data-line': line });
  const title = cell('caption', '15-minute counts (local time)');
  table.appendChild(title);
  const head = table.createTHead();
  const top = head.insertRow();
  const sub = head.insertRow();
  top.appendChild(cell('th', 'Time', { rowspan: 2 }));
  const directions = [...new Set(columns.map((c) => c.direction).filter((d) => d !== null))];
  directions.forEach((direction) => {
    const span = columns.filter((c) => c.direction === direction).length;
    top.appendChild(cell('th', direction, { colspan: span, 'data-direction': direction }));
    columns.filter((c) => c.direction === direction).forEach((c) => sub.appendChild(
      cell('th', c.name === null ? 'total' : c.name, c.name === null ? { className: 'sum' } : {})));
  });
  top.appendChild(cell('th', 'All', { rowspan: 2, className: 'sum' }));
  const attributes = (column, className = '') => ({
    ...(column.direction !== null ? { 'data-direction': column.direction } : {}),
    ...(column.name !== null ? { 'data-class': column.name } : {}),
    className: `${className} ${column.name === null ? 'sum' : ''}`.trim(),
  });
  const body = table.createTBody();
  quarters.forEach((t, i) => {
    const row = body.insertRow();
    row.dataset.start = new Date(t).toISOString();
    const midnight = new Date(t).getHours() === 0 && new Date(t).getMinutes() === 0;
    row.appendChild(cell('th', i === 0 || midnight ? fullTimeLabel(t) : timeLabel(t)));
    if (!covered.has(t)) {
      row.className = 'nodata';
      row.appendChild(cell('td', 'no data', { colspan: columns.length }));
      return;
    }
    columns.forEach((column) => row.appendChild(
      cell('td', String(value(t, column)), attributes(column))));
  });
  const foot = table.createTFoot();
  const sums = foot.insertRow();
  sums.className = 'total';
  sums.appendChild(cell('th', 'Total'));
  columns.forEach((column) => sums.appendChild(cell('td', String(quarters.filter(
    (t) => covered.has(t)).reduce((sum, t) => sum + value(t, column), 0)), attributes(column))));
  const peak = peakHour(data);
  const peakRow = foot.insertRow();
  peakRow.className = 'peak';
  const phfRow = foot.insertRow();
  phfRow.className = 'phf';
  if (!peak) {
    peakRow.appendChild(cell('th', 'Peak hour: no hour of four observed quarters with traffic',
      { colspan: columns.length + 1 }));
  } else {
    peakRow.dataset.start = new Date(peak.start).toISOString();
    const all = peak.columns[peak.columns.length - 1];
    title.textContent += ` · peak hour ${clockLabel(peak.start)}–` +
      `${clockLabel(peak.start + 4 * QUARTER_MS)}: ${all.volume} vehicles, PHF ${all.phf.toFixed(2)}`;
    peakRow.appendChild(cell('th', `Peak hour ${clockLabel(peak.start)}–` +
      `${clockLabel(peak.start + 4 * QUARTER_MS)}`));
    phfRow.appendChild(cell('th', 'PHF'));
    peak.columns.forEach((p, k) => {
      peakRow.appendChild(cell('td', String(p.volume), attributes(columns[k])));
      phfRow.appendChild(cell('td', p.phf === null ? '–' : p.phf.toFixed(2),
        attributes(columns[k])));
    });
  }
  const scrolled = box.scrollTop; // the 5 s refresh keeps the reader's place
  box.replaceChildren(table);
  box.scrollTop = scrolled;
}

window.vdTable15 = { renderTable, peakHour, quarterTable };
