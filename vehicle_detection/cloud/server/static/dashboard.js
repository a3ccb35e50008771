// Copyright 2026 The vehicle_detection Authors. Licensed under the Apache License, Version 2.0.
// The dashboard: plain JavaScript, no build step. Polls the read API every 5 s.
'use strict';

const API = '/api/v1';
const REFRESH_MS = 5000;
const $ = (id) => document.getElementById(id);
window.vdRefreshes = 0; // counted by the browser test: refreshes without a page load

function filters() {
  const params = new URLSearchParams();
  const add = (key, value) => { if (value) params.set(key, value); };
  add('device', $('f-device').value);
  add('class_name', $('f-class').value);
  add('kind', $('f-kind').value);
  const since = $('f-since').value, until = $('f-until').value;
  if (since) params.set('since', new Date(since).toISOString());
  if (until) params.set('until', new Date(until).toISOString());
  params.set('replay', $('f-replay').value);
  return params;
}

async function problemOf(response) {
  // The server's reason in words: its detail, or each refused parameter and why.
  let detail;
  try {
    detail = (await response.json()).detail;
  } catch (error) {
    detail = undefined;
  }
  if (Array.isArray(detail)) {
    detail = detail.map((d) => `${(d.loc || []).slice(-1)[0] || 'query'}: ${d.msg}`).join('; ');
  }
  return detail ? String(detail) : `the server answered HTTP ${response.status}`;
}

async function getJSON(path) {
  // 'no-cache': the browser keeps the answer and asks again with If-None-Match; an
  // unchanged read costs the server a 304 without a body.
  const response = await fetch(path, { cache: 'no-cache' });
  if (response.status === 401) window.location.assign('/login'); // session ended
  if (!response.ok) {
    const error = new Error(await problemOf(response));
    error.refused = response.status >= 400 && response.status < 500;
    throw error;
  }
  return response.json();
}

async function logOut() {
  await fetch(`${API}/session`, { method: 'DELETE' });
  window.location.assign('/login');
}

function text(tag, content, className) {
  const element = document.createElement(tag);
  element.textContent = content;
  if (className) element.className = className;
  return element;
}

const fmtTime = (iso) => (iso ? new Date(iso).toLocaleString() : 'never');
const fmtNum = (value, unit, digits = 0) =>
  (value === undefined || value === null ? '–' : `${Number(value).toFixed(digits)}${unit}`);
const fmtMB = (bytes) => fmtNum(bytes === undefined ? undefined : bytes / 1048576, ' MB', 1);

// Disk used on the box: outbox database, snapshots waiting, logs (undefined: not reported).
const diskBytes = (h) => (h.outbox_db_bytes === undefined ? undefined
  : h.outbox_db_bytes + (h.snapshot_bytes || 0) + (h.log_bytes || 0));

function renderDevices(devices) {
  const body = $('devices').querySelector('tbody');
  body.replaceChildren();
  const select = $('f-device');
  const known = new Set([...select.options].map((o) => o.value));
  for (const device of devices) {
    const h = device.health || {};
    const row = document.createElement('tr');
    row.dataset.device = device.name;
    const state = device.revoked ? 'revoked' : (device.online ? 'online' : 'offline');
    const budget = h.budget_bytes ? ` / ${fmtMB(h.budget_bytes)}` : '';
    [text('td', device.name), text('td', state, device.online ? 'online' : 'offline'),
      text('td', fmtTime(device.last_seen_at)), text('td', fmtNum(h.cpu_percent, ' %')),
      text('td', fmtNum(h.memory_percent, ' %')), text('td', fmtNum(h.temperature_c, ' °C')),
      text('td', fmtNum(h.queue_depth, '')), text('td', fmtNum(h.oldest_unsent_s, ' s')),
      text('td', fmtNum(h.upload_success_rate === undefined ? undefined
        : 100 * h.upload_success_rate, ' %')),
      text('td', fmtMB(h.bytes_month) + budget), text('td', fmtMB(diskBytes(h))),
      text('td', String(device.alerts_24h)), window.vdConfig.cell(device),
    ].forEach((cell) => row.appendChild(cell));
    body.appendChild(row);
    if (!known.has(device.name)) select.appendChild(new Option(device.name, device.name));
  }
}

// An alert of another kind than a vehicle seen says what happened, and where.
function eventText(alert) {
  if (alert.kind === 'stopped_vehicle') return ` stopped in ${alert.zone}`;
  if (alert.kind === 'wrong_way') return ` wrong way on ${alert.line} (${alert.direction})`;
  if (!alert.kind || alert.kind === 'vehicle') return '';
  const places = ['zone', 'line', 'direction'].filter((p) => alert[p]).map((p) => alert[p]);
  return ` ${alert.kind.replace(/_/g, ' ')} ${places.join(' ')}`.trimEnd();
}

function renderAlerts(page) {
  const box = $('alerts');
  box.replaceChildren();
  for (const alert of page.items) {
    const card = document.createElement('div');
    card.className = 'alert';
    card.dataset.eventId = alert.event_id;
    if (alert.thumbnail_url) {
      card.appendChild(window.vdViewer.thumbnail(alert, () => window.vdViewer.open(alert)));
    } else {
      card.appendChild(text('div', 'no snapshot yet', 'noimg muted'));
    }
    if (alert.replay) {
      card.classList.add('replay');
      card.appendChild(text('span', 'replay', 'replay-badge'));
    }
    const what = eventText(alert);
    card.appendChild(text('div', `${alert.class_name} ${(100 * alert.confidence).toFixed(0)} %`
      + what, what ? 'event' : ''));
    card.appendChild(text('div', `${alert.device_id} · track ${alert.track_id}`, 'muted'));
    card.appendChild(text('div', fmtTime(alert.detected_at), 'muted'));
    box.appendChild(card);
  }
  $('alert-count').textContent = `(${page.items.length} shown)`;
  window.vdViewer.setAlerts(page.items);
}

function hourlySlots(perHour) {
  // Every hour of the window gets a bar, empty hours too, so the time axis is honest.
  const counts = new Map(perHour.map(([h, n]) => [new Date(h).getTime(), n]));
  const hour = 3600 * 1000;
  const end = Math.floor(Date.now() / hour) * hour;
  const first = perHour.length ? Math.min(new Date(perHour[0][0]).getTime(), end - 23 * hour)
    : end - 23 * hour;
  const slots = [];
  for (let t = Math.max(first, end - 167 * hour); t <= end; t += hour) {
    slots.push([t, counts.get(t) || 0]);
  }
  return slots;
}

function renderStats(stats) {
  const { atBucket, barChart, BAR_COLOURS } = window.vdCharts;
  const slots = hourlySlots(stats.per_hour);
  barChart($('chart-hour'), { timeAxis: true, step: 3600e3, stacked: false, yTitle: 'alerts',
    min: slots[0][0], max: slots[slots.length - 1][0],
    datasets: [{ label: 'alerts', backgroundColor: BAR_COLOURS[0],
      data: slots.map(([t, n]) => ({ x: atBucket(t, 3600e3), y: n })) }] });
  const classes = Object.keys(stats.per_class).sort();
  barChart($('chart-class'), { timeAxis: false, stacked: false, yTitle: 'alerts',
    labels: classes, datasets: [{ label: 'alerts', backgroundColor: BAR_COLOURS[0],
      data: classes.map((c) => stats.per_class[c]) }] });
  addOptions($('f-class'), classes, (c) => c);
  addOptions($('f-kind'), Object.keys(stats.per_kind || {}).sort(),
    (k) => k.replace(/_/g, ' '));
}

function addOptions(select, values, label) {
  const known = new Set([...select.options].map((o) => o.value));
  values.filter((v) => !known.has(v)).forEach((v) => select.appendChild(new Option(label(v), v)));
}

function showProblem(message) {
  // A refused query leaves nothing stale: alerts, charts and traffic are cleared.
  $('problem').textContent = `Not shown: ${message}`;
  $('problem').hidden = false;
  $('alerts').replaceChildren();
  $('alert-count').textContent = '';
  window.vdCharts.clearChart($('chart-hour'));
  window.vdCharts.clearChart($('chart-class'));
  window.vdTraffic.clearTraffic();
}

let latestRefresh = 0; // a refresh overtaken by a newer one (the filters changed) draws nothing

// The alerts shown, newest first, and the filters they were asked with: a refresh asks
// only for newer ones (after_id), and again for recent ones still without a snapshot.
const ALERT_LIMIT = 60;
const SNAPSHOT_WAIT_MS = 120000; // an alert this old without a snapshot will not get one
const shown = { query: null, items: [] };
window.vdAlertQueries = []; // the alert queries asked, for the browser test

function alertsAnchor() {
  // The newest alert shown, or just before the oldest recent one still waiting for its
  // snapshot (asked again to get it); 0 when none is shown.
  const recentWithout = shown.items.filter((a) => !a.image_url
    && Date.now() - new Date(a.received_at).getTime() < SNAPSHOT_WAIT_MS);
  return Math.min(Math.max(0, ...shown.items.map((a) => a.id)),
    ...recentWithout.map((a) => a.id - 1));
}

async function refreshAlerts(query) {
  const alertQuery = new URLSearchParams(query);
  alertQuery.set('limit', String(ALERT_LIMIT));
  const same = shown.query === query.toString();
  if (same) alertQuery.set('after_id', String(alertsAnchor()));
  window.vdAlertQueries.push(alertQuery.toString());
  const page = await getJSON(`${API}/alerts?${alertQuery}`);
  if (!same || page.next_cursor !== null) { // new filters, or more new ones than shown
    shown.items = page.items;
  } else {
    const fresh = new Map(page.items.map((a) => [a.id, a]));
    const kept = shown.items.filter((a) => !fresh.has(a.id));
    shown.items = [...page.items, ...kept].sort((a, b) => b.id - a.id).slice(0, ALERT_LIMIT);
  }
  shown.query = query.toString();
  return { items: shown.items };
}

async function refresh() {
  const query = filters();
  const mine = ++latestRefresh;
  try {
    // The devices panel takes no filter: it stays current whatever the filters say.
    renderDevices(await getJSON(`${API}/devices`));
    const [page, stats] = await Promise.all([
      refreshAlerts(query), getJSON(`${API}/stats?${query}`)]);
    if (mine !== latestRefresh) return;
    renderAlerts(page);
    renderStats(stats);
    const current = () => mine === latestRefresh;
    await window.vdTraffic.refreshTraffic(query, current);
    if (!current()) return;
    $('problem').hidden = true;
    window.vdRefreshes += 1;
    $('status').textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    if (mine !== latestRefresh) return;
    if (error.refused) {
      showProblem(error.message);
      window.vdRefreshes += 1; // answered: the filters are what is wrong
      $('status').textContent = `updated ${new Date().toLocaleTimeString()}`;
    } else {
      $('status').textContent = `update failed: ${error.message}`;
    }
  }
}

$('filters').addEventListener('change', refresh);
$('traffic-controls').addEventListener('change', refresh);
$('logout').addEventListener('click', logOut);
$('filters').addEventListener('reset', () => setTimeout(refresh, 0));
refresh();
setInterval(refresh, REFRESH_MS);
