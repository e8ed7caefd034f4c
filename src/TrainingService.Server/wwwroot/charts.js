// Line charts for the dashboard, on uPlot (a global from lib/uplot, loaded by index.html). This module draws; it reads
// nothing from the API. dashboard.js hands it epochs and the history's buckets, and it turns them into series, the
// smoothed curves, the min–max bands of a downsampled view, markers, and a note that says what the chart leaves out.
//
// uPlot draws null as a gap in the line; NaN or ±Infinity would wreck the axis range instead, so they become gaps too,
// and the markers say where a run diverged. A log scale is a real one (uPlot's distr 3); values ≤ 0, which it cannot
// place, are not drawn and not clamped to some small number either: the chart's note counts them, and a tick on the
// bottom edge shows where they are.

export const COLORS = ['#0969da', '#d1242f', '#1a7f37', '#8250df', '#bc4c00', '#0598bc', '#bf3989', '#4d2d00', '#6e7781', '#116329'];
const BAND_ALPHA = 0.25;
const RAW_ALPHA = 0.3;
const PREFERENCE_PREFIX = 'trainingservice.chart.';

// ---- Numbers --------------------------------------------------------------------------------------------------

// The API writes a diverging value as the string "NaN", "Infinity" or "-Infinity"; Number() reads all three.
export function toNumber(value) {
  if (value === null || value === undefined) {
    return null;
  }
  return typeof value === 'number' ? value : Number(value);
}

export function formatNumber(value) {
  const n = toNumber(value);
  if (n === null) {
    return '–';
  }
  if (!Number.isFinite(n)) {
    return String(value);
  }
  const abs = Math.abs(n);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) {
    return n.toExponential(3);
  }
  return String(Number(n.toPrecision(5)));
}

// A value as uPlot should draw it: finite, and on a log scale positive; anything else is a gap.
export function plotValue(value, logScale = false) {
  const n = toNumber(value);
  if (n === null || !Number.isFinite(n) || (logScale && n <= 0)) {
    return null;
  }
  return n;
}

/**
 * TensorBoard's debiased exponential moving average (also W&B's "EMA"): last = last·w + (1−w)·x, shown as
 * last / (1 − wⁿ) after n values, so the first points are not pulled toward the zero it starts from. Gaps and non-finite
 * values stay gaps and do not count. weight 0 returns the series itself.
 */
export function ema(values, weight) {
  const smoothed = new Array(values.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined || !Number.isFinite(v)) {
      smoothed[i] = null;
      continue;
    }
    last = last * weight + (1 - weight) * v;
    n++;
    smoothed[i] = last / (1 - weight ** n);
  }
  return smoothed;
}

// ---- Preferences (per chart, in localStorage: they outlive the tab, unlike the key) -----------------------------

export function preference(chart, name, fallback) {
  try {
    const stored = localStorage.getItem(`${PREFERENCE_PREFIX}${chart}.${name}`);
    return stored === null ? fallback : JSON.parse(stored);
  } catch {
    return fallback; // storage disabled or an old value in another shape
  }
}

export function remember(chart, name, value) {
  try {
    localStorage.setItem(`${PREFERENCE_PREFIX}${chart}.${name}`, JSON.stringify(value));
  } catch {
    // storage disabled: the choice lasts until reload
  }
}

// ---- The x axis -------------------------------------------------------------------------------------------------

/** What an x value is: the epoch, or when the epoch was recorded (seconds since 1970, as uPlot's time scale wants). */
export const X_AXES = {
  epoch: { label: 'epoch', time: false, of: (e) => e.epoch },
  time: { label: 'wall-clock time (local)', time: true, of: (e) => Date.parse(e.recordedAt) / 1000 },
};

/**
 * Maps an epoch to x on a chart whose points are epochs (sorted): itself on the epoch axis, on the
 * time axis interpolated between the nearest drawn epochs (a bucket edge or a marker may fall between kept points).
 */
export function epochToX(epochs, xAxis) {
  if (xAxis === X_AXES.epoch || epochs.length === 0) {
    return (epoch) => epoch;
  }
  const numbers = epochs.map((e) => e.epoch);
  const xs = epochs.map(xAxis.of);
  return (epoch) => interpolate(numbers, xs, epoch);
}

/** The inverse of epochToX: the epoch at x (for a zoom drawn on the time axis). */
export function xToEpoch(epochs, xAxis) {
  if (xAxis === X_AXES.epoch || epochs.length === 0) {
    return (x) => x;
  }
  const numbers = epochs.map((e) => e.epoch);
  const xs = epochs.map(xAxis.of);
  return (x) => interpolate(xs, numbers, x);
}

// Piecewise-linear y(x) through sorted points, held flat beyond the ends.
function interpolate(xs, ys, x) {
  let hi = xs.findIndex((v) => v >= x);
  if (hi <= 0) {
    return hi === 0 ? ys[0] : ys[ys.length - 1];
  }
  const lo = hi - 1;
  const span = xs[hi] - xs[lo];
  return span === 0 ? ys[hi] : ys[lo] + ((ys[hi] - ys[lo]) * (x - xs[lo])) / span;
}

// ---- What each chart drew last, for the page's tests (recorded by the draw hooks, so it is what is on screen) --------

const drawn = new Map();

/** The data, bands, markers and hidden points the chart called name drew last (or undefined). */
export function lastDrawn(name) {
  return drawn.get(name);
}

// ---- Charts -------------------------------------------------------------------------------------------------------

function withAlpha(color, alpha) {
  const n = parseInt(color.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

/**
 * A line chart. spec: name (for lastDrawn and the performance mark), yLabel, xAxis (X_AXES.epoch or .time), log,
 * height, series [{ label, color, dash, faint }], and optional callbacks markers() → [{ x, label, color }],
 * bands() → [{ x0, x1, min, max, color }], hidden() → [x] (values a log scale cannot draw), onZoom(min, max) (x range).
 */
export function lineChart(el, spec) {
  const { name, yLabel, xAxis = X_AXES.epoch, log = false, height, series } = spec;
  const options = {
    width: Math.max(200, el.clientWidth),
    height,
    scales: { x: { time: xAxis.time }, y: { distr: log ? 3 : 1, range: (u, min, max) => yRange(u, min, max, log, spec.bands?.() ?? []) } },
    axes: [{ label: xAxis.label, labelSize: 18 }, { label: yLabel + (log ? ' (log scale)' : ''), labelSize: 18, size: 64 }],
    series: [{ label: xAxis.time ? 'time' : 'epoch' }, ...series.map((s) => ({
      label: s.label,
      stroke: s.faint ? withAlpha(s.color, RAW_ALPHA) : s.color,
      width: s.faint ? 1 : 1.5,
      dash: s.dash,
      points: s.dash || s.faint ? { show: false } : undefined,
      value: (u, v) => formatNumber(v),
    }))],
    legend: { live: true },
    hooks: {
      drawClear: [(u) => {
        const bands = spec.bands?.() ?? [];
        drawBands(u, bands);
        record(name, { bands });
      }],
      draw: [(u) => {
        const markers = spec.markers?.() ?? [];
        const hidden = spec.hidden?.() ?? [];
        drawMarkers(u, markers);
        drawHidden(u, hidden);
        record(name, { data: u.data, log, markers, hidden });
        markFirstCurve(u, name);
      }],
      setSelect: [(u) => {
        if (u.select.width > 0 && spec.onZoom) {
          spec.onZoom(u.posToVal(u.select.left, 'x'), u.posToVal(u.select.left + u.select.width, 'x'));
        }
      }],
    },
  };
  const chart = new uPlot(options, [[], ...series.map(() => [])], el);
  chart.spec = spec;
  return chart;
}

/** New data for a chart. keepZoom leaves a zoomed x range where the user put it (uPlot otherwise rescales to the data). */
export function setChartData(chart, data, { keepZoom = false } = {}) {
  chart.setData(data, !keepZoom);
}

function record(name, what) {
  drawn.set(name, { ...drawn.get(name), ...what });
}

// The y range of the lines in view, widened to the bands in view: a band's spike above every kept point must not be cut
// off at the top of the chart (that would hide it as surely as a sampling that dropped it).
function yRange(u, min, max, log, bands) {
  const x = u.scales.x;
  for (const band of bands) {
    if (x.min != null && x.max != null && (band.x1 < x.min || band.x0 > x.max)) {
      continue;
    }
    max = max === null ? band.max : Math.max(max, band.max);
    if (!log || band.min > 0) {
      min = min === null ? band.min : Math.min(min, band.min);
    }
  }
  if (min === null || max === null) {
    return log ? [1, 10] : [0, 1];
  }
  return log ? uPlot.rangeLog(min, max, 10, true) : uPlot.rangeNum(min, max, 0.1, true);
}

// A performance mark the first time a chart draws a curve: the dashboard bench's "first curve" ends there.
const marked = new Set();
function markFirstCurve(u, name) {
  if (!marked.has(name) && u.data[0].length > 0 && u.data.slice(1).some((s) => s.some((v) => v !== null && v !== undefined))) {
    marked.add(name);
    performance.mark(`curve:${name}`);
  }
}

// Each bucket of a downsampled view as a shaded box: its epochs wide, from its lowest to its highest value, so a spike
// the kept points stand in for is always in sight. Drawn under the lines; a box below a log axis is clipped to it.
function drawBands(u, bands) {
  if (bands.length === 0) {
    return;
  }
  const ctx = u.ctx;
  const { left, top, width, height } = u.bbox;
  ctx.save();
  ctx.beginPath();
  ctx.rect(left, top, width, height);
  ctx.clip();
  for (const band of bands) {
    let x0 = u.valToPos(band.x0, 'x', true);
    let x1 = u.valToPos(band.x1, 'x', true);
    if (!(x1 >= left && x0 <= left + width)) {
      continue;
    }
    const high = u.valToPos(band.max, 'y', true);
    const low = band.min > 0 || !u.scales.y.distr || u.scales.y.distr !== 3 ? u.valToPos(band.min, 'y', true) : top + height;
    if (x1 - x0 < 2 * devicePixelRatio) { // a one-epoch spike still gets a visible sliver
      x0 -= devicePixelRatio;
      x1 = x0 + 2 * devicePixelRatio;
    }
    ctx.fillStyle = withAlpha(band.color, BAND_ALPHA);
    ctx.fillRect(x0, Math.min(high, low), x1 - x0, Math.max(1, Math.abs(low - high)));
  }
  ctx.restore();
}

// Vertical lines at epochs worth a look: divergence, early stopping, the kept model, schedule phases, diagnoses.
function drawMarkers(u, markers) {
  const ctx = u.ctx;
  ctx.save();
  ctx.font = `${11 * devicePixelRatio}px sans-serif`;
  markers.forEach(({ x: value, label, color }, i) => {
    const x = u.valToPos(value, 'x', true);
    if (!Number.isFinite(x) || x < u.bbox.left || x > u.bbox.left + u.bbox.width) {
      return;
    }
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.setLineDash([3, 3]);
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
    ctx.fillText(label, x + 3 * devicePixelRatio, u.bbox.top + 12 * (1 + (i % 4)) * devicePixelRatio); // staggered: markers may share an epoch
  });
  ctx.restore();
}

// Values a log scale cannot place: a small red tick on the bottom edge at each one's x (the note counts them).
function drawHidden(u, xs) {
  if (xs.length === 0) {
    return;
  }
  const ctx = u.ctx;
  const bottom = u.bbox.top + u.bbox.height;
  ctx.save();
  ctx.fillStyle = '#cf222e';
  for (const value of xs) {
    const x = u.valToPos(value, 'x', true);
    if (x >= u.bbox.left && x <= u.bbox.left + u.bbox.width) {
      ctx.fillRect(x - devicePixelRatio, bottom - 6 * devicePixelRatio, 2 * devicePixelRatio, 6 * devicePixelRatio);
    }
  }
  ctx.restore();
}

// ---- From epochs to what a chart draws ------------------------------------------------------------------------------

/**
 * One series on a (possibly log) scale, and the x of each value the scale had to leave out (finite but ≤ 0).
 */
export function scaled(xs, values, log) {
  const out = new Array(values.length);
  const hidden = [];
  for (let i = 0; i < values.length; i++) {
    const n = toNumber(values[i]);
    if (log && n !== null && Number.isFinite(n) && n <= 0) {
      hidden.push(xs[i]);
    }
    out[i] = plotValue(n, log);
  }
  return { values: out, hidden };
}

/**
 * The markers a loss curve carries. epochs: what is drawn; job: the job resource (stopReason, modelEpoch, spec);
 * diagnoses: the history's; nonFiniteBuckets: [fromEpoch] of downsampled buckets holding a NaN or ±Infinity.
 * Returns markers with epochs; the caller maps them to x.
 */
export function lossMarkers({ epochs, job, diagnoses, nonFiniteEpochs = [] }) {
  const markers = [];
  const firstNonFinite = epochs.find((e) => !isFiniteLoss(e.trainLoss) || (e.valLoss !== undefined && e.valLoss !== null && !isFiniteLoss(e.valLoss)));
  const diverged = [firstNonFinite?.epoch, ...nonFiniteEpochs].filter((e) => e !== undefined).sort((a, b) => a - b)[0];
  if (diverged !== undefined) {
    markers.push({ epoch: diverged, label: 'diverged (NaN/∞)', color: '#cf222e' });
  }
  for (const d of diagnoses ?? []) {
    if (d.code !== 'diverged') { // the epoch itself is marked above
      markers.push({ epoch: d.fromEpoch, label: d.code, color: '#bf8700' });
    }
  }
  if (job?.stopReason === 'early_stopped' && epochs.length > 0) {
    markers.push({ epoch: job.epochsCompleted ?? epochs[epochs.length - 1].epoch, label: 'early stop', color: '#57606a' });
  }
  if (job?.modelEpoch) {
    markers.push({ epoch: job.modelEpoch, label: `kept model (${job.spec?.keep ?? 'best'})`, color: '#1a7f37' });
  }
  return [...markers, ...schedulePhases(epochs, job?.spec?.schedule)];
}

function isFiniteLoss(value) {
  return Number.isFinite(toNumber(value));
}

/**
 * Where the learning-rate schedule changes phase, read from the learning rates themselves (what the trainer used,
 * whatever the spec's defaults): the end of a warm-up (the rate stops rising), and each step or plateau cut (a drop
 * after at least two epochs at one rate; a smooth decay, exponential or cosine, has none). The spec only names them.
 */
export function schedulePhases(epochs, schedule) {
  const phases = [];
  const kind = schedule?.name ?? 'constant';
  const cut = kind === 'reduce_on_plateau' ? 'lr cut (plateau)' : kind === 'step' ? 'lr step' : 'lr cut';
  let rising = false;
  for (let i = 1; i < epochs.length; i++) {
    const before = toNumber(epochs[i - 1].learningRate);
    const now = toNumber(epochs[i].learningRate);
    if (now > before * (1 + 1e-9)) {
      rising = true;
    } else if (rising) {
      phases.push({ epoch: epochs[i - 1].epoch, label: 'warm-up end', color: '#8250df' });
      rising = false;
    }
    const flat = i >= 2 && toNumber(epochs[i - 2].learningRate) === before;
    if (flat && now < before * (1 - 1e-6)) {
      phases.push({ epoch: epochs[i].epoch, label: cut, color: '#8250df' });
    }
  }
  return phases;
}
