// Copyright 2026 The vehicle_detection Authors. Licensed under the Apache License, Version 2.0.
// The server monitor panel: this server instance's health, from GET /api/v1/server every 5 s.
'use strict';

const MONITOR_MS = 5000;
window.vdMonitorRefreshes = 0; // counted by the browser test

function monitorTile(key, label, value, detail, down) {
  const tile = document.createElement('div');
  tile.className = down ? 'tile down' : 'tile';
  tile.dataset.key = key;
  [['label', label], ['value', value], ['detail', detail || '']].forEach(([name, content]) => {
    const part = document.createElement('div');
    part.className = name;
    part.textContent = content;
    tile.appendChild(part);
  });
  return tile;
}

const bytes = (n) => {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
};
const percent = (rate) => (rate === null || rate === undefined ? '–' : `${(100 * rate).toFixed(1)} %`);

function uptime(seconds) {
  const d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return d ? `${d} d ${h} h` : (h ? `${h} h ${m} min` : `${m} min ${Math.floor(seconds % 60)} s`);
}

function renderMonitor(s) {
  const db = s.database, st = s.storage, c = s.cache, r = s.requests, p = s.process;
  const span = `last ${r.window_s >= 59 ? 'minute' : `${Math.round(r.window_s)} s`}`;
  $('monitor').replaceChildren(
    monitorTile('database', `Database (${db.backend})`, db.ok ? `up · ${db.answer_ms} ms`
      : 'DOWN', db.ok ? `${bytes(db.size_bytes)} · schema ${db.schema_version}` : db.error, !db.ok),
    monitorTile('storage', `Snapshots (${st.kind})`, st.free_bytes !== null && st.free_bytes
      !== undefined ? `${bytes(st.free_bytes)} free` : (st.ok ? 'reachable' : 'DOWN'),
    st.error || (st.total_bytes ? `of ${bytes(st.total_bytes)}` : ''), !st.ok),
    monitorTile('cache', `Read cache (${c.backend})`, `${percent(c.hit_rate)} hits`,
      c.error || `${c.hits} hits, ${c.misses} misses, ${span}`, !c.ok),
    monitorTile('workers', 'Workers', `${p.workers} of ${p.workers_configured}`,
      `${p.processes} processes`, p.workers < p.workers_configured),
    monitorTile('requests', 'Requests', `${r.rate_per_s.toFixed(1)}/s`,
      `p95 ${r.p95_ms === null ? '–' : `${r.p95_ms} ms`}, ${span}`, false),
    monitorTile('errors', 'Server errors', percent(r.error_rate || 0),
      `${r.errors} of ${r.requests} answered 5xx, ${span}`, r.errors > 0),
    monitorTile('process', 'CPU · memory', `${p.cpu_percent.toFixed(0)} % · ${bytes(p.memory_bytes)}`,
      `${span}, of one core`, false),
    monitorTile('uptime', 'Up', uptime(s.uptime_s), `version ${s.version}`, false));
}

async function refreshMonitor() {
  const status = $('monitor-status');
  try {
    const response = await fetch('/api/v1/server', { cache: 'no-store' });
    if (response.status === 401) window.location.assign('/login');
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    renderMonitor(await response.json());
    $('monitor').classList.remove('stale');
    status.className = 'muted';
    status.textContent = `checked ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    $('monitor').classList.add('stale'); // the last figures stay, greyed
    status.className = 'down';
    status.textContent = `server not answering: ${error.message}`;
  }
  window.vdMonitorRefreshes += 1;
}

refreshMonitor();
setInterval(refreshMonitor, MONITOR_MS);
