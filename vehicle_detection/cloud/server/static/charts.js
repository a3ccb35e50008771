// Copyright 2026 The vehicle_detection Authors. Licensed under the Apache License, Version 2.0.
// Bar charts on Chart.js (vendored: chart.umd.min.js, v4.5.1, MIT, chart.js-LICENSE.md):
// a numeric y axis, a time x axis labelled on round local hours (or days), values on hover.
'use strict';

const MINUTE_MS = 60e3;
// Tick steps in minutes: the first that gives at most MAX_TICKS labels is used; minutes,
// quarters and half hours only in a window shorter than 3 hours (round hours otherwise).
const TICK_STEPS = [60, 120, 180, 360, 720, 1440, 2 * 1440, 7 * 1440];
const SHORT_STEPS = [1, 2, 5, 10, 15, 30, ...TICK_STEPS];
const MAX_TICKS = 12;
const BAR_COLOURS = ['#3b6fd8', '#e8710a', '#1e8e3e', '#a142f4', '#d93025', '#12b5cb'];

const pad2 = (n) => String(n).padStart(2, '0');

function roundTimeTicks(min, max) {
  // Times in [min, max] on round local hours (or local midnights for long spans): the
  // browser's zone, the one every time on the dashboard is shown in.
  const span = Math.max(1, (max - min) / MINUTE_MS);
  const steps = span < 180 ? SHORT_STEPS : TICK_STEPS;
  const step = steps.find((s) => span / s <= MAX_TICKS) || steps[steps.length - 1];
  const ticks = [];
  const walk = Math.min(step, 15); // minutes between the times looked at
  const t = new Date(min);
  t.setSeconds(0, 0);
  if (step >= 1440) t.setHours(0, 0, 0, 0);
  else t.setMinutes(t.getMinutes() - t.getMinutes() % walk);
  for (; t.getTime() <= max; t.setMinutes(t.getMinutes() + walk)) {
    if (t.getTime() < min) continue;
    const minutes = t.getHours() * 60 + t.getMinutes();
    const days = Math.round((t.getTime() - new Date(t.getFullYear(), 0, 1).getTime()) / 864e5);
    if (step < 1440 ? minutes % step === 0 : minutes === 0 && days % (step / 1440) === 0) {
      ticks.push(t.getTime());
    }
  }
  return ticks;
}

function timeLabel(ms) {
  const date = new Date(ms);
  if (date.getHours() === 0 && date.getMinutes() === 0) {
    return `${date.getDate()}/${date.getMonth() + 1}`;
  }
  return `${pad2(date.getHours())}:${pad2(date.getMinutes())}`;
}

function clockLabel(ms) {
  // The end of a span: its time of day, also at midnight (23:45–00:00, not 23:45–7/12).
  const date = new Date(ms);
  return `${pad2(date.getHours())}:${pad2(date.getMinutes())}`;
}

function fullTimeLabel(ms) {
  const date = new Date(ms);
  return `${date.getFullYear()}-${pad2(date.getMonth() + 1)}-${pad2(date.getDate())} ` +
    `${pad2(date.getHours())}:${pad2(date.getMinutes())}`;
}

// Grey stripes under the buckets without data (no count period covered them): not zeros;
// orange ones under the buckets whose detection was degraded (quality flags): maybe low.
const noDataPlugin = {
  id: 'vdNoData',
  beforeDatasetsDraw(chart, args, options) {
    const marks = [['#9aa0ad', options.times || []], ['#e8710a', options.degraded || []]];
    if (!marks.some(([, times]) => times.length)) return;
    const { ctx, chartArea, scales } = chart;
    // (pixels far off the chart are clamped by Chart.js: measured from its first value)
    const half = Math.max(1, (scales.x.getPixelForValue(scales.x.min + options.step) -
      scales.x.getPixelForValue(scales.x.min)) / 2);
    ctx.save();
    marks.forEach(([colour, times]) => {
      ctx.fillStyle = colour;
      times.forEach((t) => {
        const x = scales.x.getPixelForValue(t);
        ctx.fillRect(x + 0.5, chartArea.bottom - 6, Math.max(1, 2 * half - 1), 6);
      });
    });
    ctx.restore();
  },
};

function barOptions({ timeAxis, step, yTitle, stacked, min, max }) {
  // step: the bucket in ms (time axis): a bar spans its bucket, from its start to its end
  // (data at the bucket's middle, atBucket). Hover shows each value, and the bucket's total.
  const x = timeAxis ? {
    type: 'linear', min, max: max + step, offset: false, stacked,
    afterBuildTicks: (scale) => {
      scale.ticks = roundTimeTicks(scale.min, scale.max).map((value) => ({ value }));
    },
    ticks: { callback: (value) => timeLabel(value), autoSkip: false, maxRotation: 0 },
    grid: { offset: false },
  } : { type: 'category', stacked };
  return {
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    interaction: { mode: 'index', intersect: false },
    datasets: { bar: { categoryPercentage: 1, barPercentage: 0.9 } },
    scales: {
      x,
      y: { type: 'linear', beginAtZero: true, stacked, ticks: { precision: 0 },
        title: { display: Boolean(yTitle), text: yTitle } },
    },
    plugins: {
      legend: { display: false },
      vdNoData: { times: [], degraded: [], step },
      tooltip: {
        callbacks: {
          title: (items) => (items.length && timeAxis
            ? `${fullTimeLabel(items[0].parsed.x - step / 2)}–` +
              `${clockLabel(items[0].parsed.x + step / 2)}` : items.map((i) => i.label)[0]),
          footer: (items) => (items.length > 1
            ? `total: ${items.reduce((sum, i) => sum + i.parsed.y, 0)}` : ''),
        },
      },
    },
  };
}

// The x of a bucket's bar: the middle of the bucket starting at ``start`` (ms), ``step`` long.
const atBucket = (start, step) => start + step / 2;

function barChart(canvas, config) {
  // The chart of this canvas, made once and updated in place after (hover survives refresh).
  // config: { timeAxis, step, yTitle, stacked, min, max (the first and last bucket's start),
  // labels?, datasets, noData? (starts of the buckets without data), degraded? (of those
  // whose detection was degraded) }
  let chart = window.Chart.getChart(canvas);
  const options = barOptions(config);
  options.plugins.vdNoData.times = config.noData || [];
  options.plugins.vdNoData.degraded = config.degraded || [];
  const data = { labels: config.labels, datasets: config.datasets };
  if (!chart) {
    chart = new window.Chart(canvas, { type: 'bar', data, options, plugins: [noDataPlugin] });
  } else {
    chart.options = options;
    chart.data = data;
    chart.update('none');
  }
  return chart;
}

function clearChart(canvas) {
  const chart = window.Chart.getChart(canvas);
  if (chart) chart.destroy();
}

window.vdCharts = {
  barChart, clearChart, atBucket, BAR_COLOURS, clockLabel, timeLabel, fullTimeLabel, pad2,
};
