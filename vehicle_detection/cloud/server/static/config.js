// Copyright 2026 The vehicle_detection Authors. Licensed under the Apache License, Version 2.0.
// Configuration from the dashboard: each device's state in the devices panel, and for admins
// an editor that draws counting lines and zones on the device's latest picture and saves
// them as a new version. The device checks every value itself and applies all or nothing;
// this page only shows what it answered.
'use strict';

(() => {
  const API = '/api/v1';
  const HISTORY_MS = 2000; // the open editor follows the device's answer this often
  const POINT = /^([0-9.eE+-]+),([0-9.eE+-]+)$/;
  const SVG = 'http://www.w3.org/2000/svg';
  const $ = (id) => document.getElementById(id);
  const state = { admin: false, device: null, base: 0, previous: {}, drawing: [], timer: 0 };

  async function call(path, options) {
    const response = await fetch(path, { cache: 'no-store', ...options });
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;
    }
    if (!response.ok) {
      let detail = body && body.detail;
      if (Array.isArray(detail)) detail = detail.map((d) => d.msg).join('; ');
      throw new Error(detail ? String(detail) : `the server answered HTTP ${response.status}`);
    }
    return body;
  }

  // -- the devices panel --------------------------------------------------------------------
  function stateOf(config) {
    if (!config) return ['–', ''];
    const applied = config.applied_version && config.applied_version !== config.version
      ? ` (v${config.applied_version} applied)` : '';
    if (config.state === 'refused') {
      return [`v${config.version} refused: ${config.reason || ''}${applied}`, 'cfg-refused'];
    }
    if (config.state === 'pending') return [`v${config.version} pending${applied}`, 'cfg-pending'];
    return [`v${config.version} applied`, 'cfg-applied'];
  }

  function cell(device) {
    const td = document.createElement('td');
    const [label, className] = stateOf(device.config);
    const span = document.createElement('span');
    span.textContent = label;
    span.className = `cfg-state ${className}`;
    td.appendChild(span);
    if (state.admin) {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'cfg-open';
      button.textContent = 'Configure';
      button.addEventListener('click', () => open(device.name));
      td.append(' ', button);
    }
    return td;
  }

  // -- the editor ---------------------------------------------------------------------------
  async function open(name) {
    state.device = name;
    state.drawing = [];
    $('cfg-device').textContent = name;
    $('cfg-error').textContent = '';
    const versions = await loadHistory();
    const latest = versions.length ? versions[0].parameters : {};
    state.base = versions.length ? versions[0].version : 0;
    state.previous = latest;
    $('cfg-lines').value = latest.counting_lines || '';
    $('cfg-zones').value = latest.counting_zones || '';
    const other = { ...latest };
    delete other.counting_lines;
    delete other.counting_zones;
    $('cfg-other').value = Object.keys(other).length ? JSON.stringify(other) : '';
    const page = await call(`${API}/alerts?${new URLSearchParams(
      { device: name, limit: '20', replay: 'include' })}`);
    const pictured = page.items.find((alert) => alert.image_url);
    $('cfg-picture').classList.toggle('empty', !pictured);
    $('cfg-nopicture').hidden = Boolean(pictured);
    if (pictured) $('cfg-picture').src = pictured.image_url;
    else $('cfg-picture').removeAttribute('src');
    draw();
    if (!$('config-editor').open) $('config-editor').showModal();
    clearInterval(state.timer);
    state.timer = setInterval(loadHistory, HISTORY_MS);
  }

  async function loadHistory() {
    const versions = await call(`${API}/admin/devices/${encodeURIComponent(state.device)}/config`);
    const list = $('cfg-history');
    list.replaceChildren();
    for (const version of versions) {
      const item = document.createElement('li');
      item.value = version.version;
      item.dataset.version = version.version;
      item.dataset.state = version.state;
      item.className = `cfg-${version.state}`;
      item.textContent = `v${version.version} ${version.state}`
        + `${version.reason ? `: ${version.reason}` : ''} (saved by ${version.created_by}, `
        + `${new Date(version.created_at).toLocaleString()})`;
      list.appendChild(item);
    }
    $('cfg-state').textContent = versions.length
      ? `latest v${versions[0].version}: ${versions[0].state}` : 'never configured here';
    return versions;
  }

  function close() {
    clearInterval(state.timer);
    $('config-editor').close();
  }

  // Where the picture was clicked, as fractions of it (3 decimals: a pixel of a 1000 px image).
  function pointAt(event) {
    const box = $('cfg-overlay').getBoundingClientRect();
    const fraction = (value) => Math.round(1000 * Math.min(1, Math.max(0, value))) / 1000;
    return [fraction((event.clientX - box.left) / box.width),
      fraction((event.clientY - box.top) / box.height)];
  }

  function click(event) {
    state.drawing.push(pointAt(event));
    if ($('cfg-tool').value === 'line' && state.drawing.length === 2) finish();
    draw();
  }

  // What is drawn becomes an entry of the text, as it is: the device judges it.
  function finish() {
    if (!state.drawing.length) return;
    const line = $('cfg-tool').value === 'line';
    const name = $('cfg-name').value.trim() || (line ? 'line' : 'zone');
    const points = state.drawing.map(([x, y]) => `${x},${y}`).join(' ');
    const extra = line ? $('cfg-directions').value.trim() : `dwell=${$('cfg-dwell').value.trim()}`;
    const field = line ? $('cfg-lines') : $('cfg-zones');
    const entry = `${name} ${points}${extra && extra !== 'dwell=' ? ` ${extra}` : ''}`;
    field.value = field.value.trim() ? `${field.value.trim()}; ${entry}` : entry;
    state.drawing = [];
    const numbered = name.match(/^(.*?)(\d+)$/);
    $('cfg-name').value = numbered ? `${numbered[1]}${Number(numbered[2]) + 1}` : `${name}2`;
    draw();
  }

  function shapes(text, picture) {
    // Entries as the device reads them: fractions when every coordinate is in [0, 1].
    return text.split(';').map((entry) => entry.trim().split(/\s+/)).filter((w) => w[0])
      .map((words) => {
        const points = words.slice(1).map((w) => w.match(POINT)).filter(Boolean)
          .map((m) => [Number(m[1]), Number(m[2])]);
        const pixels = points.some(([x, y]) => x > 1 || y > 1);
        const scale = pixels && picture.naturalWidth
          ? [picture.naturalWidth, picture.naturalHeight] : [1, 1];
        return { name: words[0], points: points.map(([x, y]) => [x / scale[0], y / scale[1]]) };
      });
  }

  function svgElement(tag, attributes) {
    const element = document.createElementNS(SVG, tag);
    Object.entries(attributes).forEach(([key, value]) => element.setAttribute(key, value));
    return element;
  }

  function draw() {
    const overlay = $('cfg-overlay');
    overlay.replaceChildren();
    const picture = $('cfg-picture');
    const add = (tag, points, className, name) => {
      const joined = points.map(([x, y]) => `${x},${y}`).join(' ');
      overlay.appendChild(svgElement(tag, { points: joined, class: className }));
      if (points.length === 1) { // one point is no line: shown, so that it can be seen wrong
        overlay.appendChild(svgElement('ellipse', {
          cx: points[0][0], cy: points[0][1], rx: 0.006, ry: 0.008, class: className }));
      }
      if (name && points.length) {
        const label = svgElement('text', { x: points[0][0], y: points[0][1] });
        label.textContent = name;
        overlay.appendChild(label);
      }
    };
    shapes($('cfg-lines').value, picture).forEach((s) => add('polyline', s.points, 'line', s.name));
    shapes($('cfg-zones').value, picture).forEach((s) => add('polygon', s.points, 'zone', s.name));
    add('polyline', state.drawing, 'drawing');
  }

  async function save(event) {
    event.preventDefault();
    $('cfg-error').textContent = '';
    let parameters;
    try {
      parameters = $('cfg-other').value.trim() ? JSON.parse($('cfg-other').value) : {};
      if (typeof parameters !== 'object' || Array.isArray(parameters) || parameters === null) {
        throw new Error('a JSON object is needed');
      }
    } catch (error) {
      $('cfg-error').textContent = `Other parameters: ${error.message}`;
      return;
    }
    // Lines and zones go when written here, or to clear what an earlier version set;
    // otherwise the device keeps its own.
    for (const [name, field] of [['counting_lines', 'cfg-lines'], ['counting_zones', 'cfg-zones']]) {
      const value = $(field).value.trim();
      if (value || name in state.previous) parameters[name] = value;
    }
    try {
      const saved = await call(
        `${API}/admin/devices/${encodeURIComponent(state.device)}/config`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ parameters, base_version: state.base }),
        });
      state.base = saved.version;
      state.previous = saved.parameters;
      await loadHistory();
    } catch (error) {
      $('cfg-error').textContent = `Not saved: ${error.message}`;
    }
  }

  function start() {
    call(`${API}/session`).then((who) => { state.admin = who.role === 'admin'; })
      .catch(() => { state.admin = false; });
    $('cfg-overlay').addEventListener('click', click);
    $('cfg-finish').addEventListener('click', finish);
    $('cfg-undo').addEventListener('click', () => { state.drawing.pop(); draw(); });
    $('cfg-close').addEventListener('click', close);
    $('config-editor').addEventListener('close', () => clearInterval(state.timer));
    $('cfg-form').addEventListener('submit', save);
    ['cfg-lines', 'cfg-zones'].forEach((id) => $(id).addEventListener('input', draw));
    $('cfg-picture').addEventListener('load', draw);
  }

  window.vdConfig = { cell, open };
  start();
})();
