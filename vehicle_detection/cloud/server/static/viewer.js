// Copyright 2026 The vehicle_detection Authors. Licensed under the Apache License, Version 2.0.
// Alert pictures that show the vehicle: thumbnails cropped around its box, and a viewer that
// draws the box on the snapshot (from the alert's bbox, scaled to the picture), opens at a
// readable size and steps through the alerts shown (buttons, arrow keys).
'use strict';

const THUMB_ASPECT = 16 / 9; // the card's picture frame (style.css .thumb)
const THUMB_MAX_ZOOM = 2; // the crop is at least half the frame wide: a 240 px thumbnail
const VIEWER_MAX_WIDTH = 1280;
const SVG = 'http://www.w3.org/2000/svg';

function cropAround(bbox, width, height) {
  // The part of the frame a thumbnail shows: the box with a margin, THUMB_ASPECT wide, moved
  // inside the frame (centred on it where the frame is narrower than the crop).
  const [x1, y1, x2, y2] = bbox;
  let w = Math.max(1.6 * (x2 - x1), 1.6 * (y2 - y1) * THUMB_ASPECT, width / THUMB_MAX_ZOOM);
  w = Math.min(w, width);
  let h = w / THUMB_ASPECT;
  if (h > height) {
    h = height;
    w = h * THUMB_ASPECT;
  }
  const place = (centre, size, side) => (size >= side ? (side - size) / 2
    : Math.min(Math.max(centre - size / 2, 0), side - size));
  return { x: place((x1 + x2) / 2, w, width), y: place((y1 + y2) / 2, h, height), w, h };
}

const cssPercent = (value) => `${(100 * value).toFixed(3)}%`;

function thumbnail(alert, onOpen) {
  // A frame of THUMB_ASPECT showing the crop of the thumbnail, the box outlined.
  const frame = document.createElement('div');
  frame.className = 'thumb';
  const img = document.createElement('img');
  img.src = alert.thumbnail_url;
  img.alt = `${alert.class_name} snapshot`;
  const W = alert.image_width, H = alert.image_height;
  const crop = cropAround(alert.bbox, W, H);
  Object.assign(img.style, { left: cssPercent(-crop.x / crop.w), top: cssPercent(-crop.y / crop.h),
    width: cssPercent(W / crop.w), height: cssPercent(H / crop.h) });
  const [x1, y1, x2, y2] = alert.bbox;
  const box = document.createElement('div');
  box.className = 'box';
  Object.assign(box.style, { left: cssPercent((x1 - crop.x) / crop.w),
    top: cssPercent((y1 - crop.y) / crop.h), width: cssPercent((x2 - x1) / crop.w),
    height: cssPercent((y2 - y1) / crop.h) });
  frame.append(img, box);
  frame.addEventListener('click', onOpen);
  return frame;
}

let viewable = []; // the alerts with a snapshot, as the list shows them (newest first)
let current = null; // the event id in the viewer

function caption(alert) {
  return `${alert.class_name} ${(100 * alert.confidence).toFixed(0)} % — ${alert.device_id}/` +
    `${alert.camera_id} — track ${alert.track_id} — ${new Date(alert.detected_at).toLocaleString()}`;
}

function fitImage() {
  // As large as the window allows (small snapshots are scaled up), never past 1280 px.
  const img = document.getElementById('viewer-img');
  if (!img.naturalWidth) return;
  const aspect = img.naturalWidth / img.naturalHeight;
  const width = Math.min(window.innerWidth * 0.9 - 40, VIEWER_MAX_WIDTH,
    window.innerHeight * 0.8 * aspect);
  img.style.width = `${Math.max(160, Math.floor(width))}px`;
}

function drawBox(alert) {
  // The box in the picture's own pixels: bbox is in the frame's (image_width x image_height),
  // the stored snapshot may be smaller. The SVG lies over the image at its drawn size.
  const img = document.getElementById('viewer-img');
  const svg = document.getElementById('viewer-box');
  const width = img.naturalWidth, height = img.naturalHeight;
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  const sx = width / alert.image_width, sy = height / alert.image_height;
  const [x1, y1, x2, y2] = alert.bbox;
  const rect = document.createElementNS(SVG, 'rect');
  Object.entries({ x: x1 * sx, y: y1 * sy, width: (x2 - x1) * sx, height: (y2 - y1) * sy,
    class: 'bbox' }).forEach(([name, value]) => rect.setAttribute(name, value));
  // 14 screen pixels high whatever the scale, above the box (inside it at the top edge).
  const pixel = width / img.getBoundingClientRect().width;
  const label = document.createElementNS(SVG, 'text');
  label.setAttribute('x', x1 * sx + 2 * pixel);
  label.setAttribute('y', y1 * sy > 18 * pixel ? y1 * sy - 4 * pixel : y1 * sy + 16 * pixel);
  label.setAttribute('class', 'bbox-label');
  label.style.fontSize = `${14 * pixel}px`;
  label.textContent = `${alert.class_name} ${(100 * alert.confidence).toFixed(0)} %`;
  svg.replaceChildren(rect, label);
}

function show(eventId) {
  const index = viewable.findIndex((a) => a.event_id === eventId);
  if (index < 0) return;
  const alert = viewable[index];
  current = eventId;
  const img = document.getElementById('viewer-img');
  document.getElementById('viewer-box').replaceChildren();
  img.onload = () => {
    if (current !== alert.event_id) return;
    fitImage();
    drawBox(alert);
    document.getElementById('viewer').dataset.shown = alert.event_id;
  };
  img.onerror = () => {
    if (current !== alert.event_id) return;
    document.getElementById('viewer-caption').textContent =
      `${caption(alert)} — the snapshot could not be loaded`;
  };
  delete document.getElementById('viewer').dataset.shown;
  if (img.complete && img.naturalWidth && img.src === new URL(alert.image_url, window.location).href) {
    img.onload(); // the same snapshot (alerts of one frame share it): no load event comes
  } else {
    img.src = alert.image_url;
  }
  document.getElementById('viewer-caption').textContent = caption(alert);
  document.getElementById('viewer-position').textContent = `${index + 1} of ${viewable.length}`;
  document.getElementById('viewer-prev').disabled = index === 0;
  document.getElementById('viewer-next').disabled = index === viewable.length - 1;
}

function step(by) {
  // Previous (-1: newer) or next (+1: older) in the list as shown now.
  const index = viewable.findIndex((a) => a.event_id === current);
  const next = viewable[index + by];
  if (index >= 0 && next) show(next.event_id);
}

function setAlerts(alerts) {
  viewable = alerts.filter((a) => a.image_url);
  const viewer = document.getElementById('viewer');
  if (viewer.open && current) {
    const index = viewable.findIndex((a) => a.event_id === current);
    document.getElementById('viewer-position').textContent =
      index < 0 ? 'no longer in the list' : `${index + 1} of ${viewable.length}`;
    document.getElementById('viewer-prev').disabled = index <= 0;
    document.getElementById('viewer-next').disabled = index < 0 || index === viewable.length - 1;
  }
}

function open(alert) {
  show(alert.event_id);
  const viewer = document.getElementById('viewer');
  if (!viewer.open) viewer.showModal();
}

document.getElementById('viewer-prev').addEventListener('click', () => step(-1));
document.getElementById('viewer-next').addEventListener('click', () => step(1));
document.getElementById('viewer').addEventListener('keydown', (event) => {
  if (event.key === 'ArrowLeft') step(-1);
  else if (event.key === 'ArrowRight') step(1);
  else return;
  event.preventDefault();
});
window.addEventListener('resize', fitImage);

window.vdViewer = { thumbnail, open, setAlerts, cropAround };
