// Live loss curves for TrainingService, by polling the REST API. Polling (rather than the SSE stream) is the
// point: it is what a dashboard behind any proxy can do, and the history endpoint is built for it (afterEpoch
// pages, ETag/304); it also lets every request carry the key in a header, which EventSource cannot (and a key in a
// URL would end up in logs). Charts are uPlot, loaded as a global by index.html.
//
// Nothing is read before the user gives an API key. The key lives in sessionStorage (this tab, until sign-out or
// close), travels as `Authorization: Bearer`, and any 401 drops it and asks again. The first start of the service
// prints a link `/#key=ts_…`: the fragment never reaches a server, and is removed from the address bar at once.

import { initActions, renderJobActions } from './actions.js';
import { clearUpload, initUpload, loadDatasets } from './upload.js';
import { clearSubmit, initSubmit, loadCatalogue, showForDataset } from './submit.js';
import { hideSweeps, showSweeps } from './sweeps.js';

const JOB_LIST_INTERVAL_MS = 3000;
const HISTORY_INTERVAL_MS = 1500;
const COMPARE_INTERVAL_MS = 2000;
const ERROR_RETRY_MS = 5000;
const JOB_LIST_LIMIT = 50;
const HISTORY_PAGE = 1000; // the API's default page; a finished long run is read in a few pages
const TABLE_ROWS = 8;
const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
// Per-epoch fields besides the losses that are worth a curve; metrics (rmse, accuracy, …) are added as seen.
const EXTRA_SERIES = ['gradientNorm', 'regularizationLoss', 'samplesPerSecond', 'durationMs'];
// What /api/histories accepts as ?metric= (HistoryReader.BuiltInSeries and MetricSeries).
const COMPARE_SERIES = ['valLoss', 'trainLoss', 'regularizationLoss', 'learningRate', 'gradientNorm', 'samplesPerSecond',
  'durationMs', 'rmse', 'mae', 'r2', 'accuracy', 'precision', 'recall', 'f1', 'auc', 'macroF1'];
const COLORS = ['#0969da', '#d1242f', '#1a7f37', '#8250df', '#bc4c00', '#0598bc', '#bf3989', '#4d2d00', '#6e7781', '#116329'];

const KEY_STORAGE = 'trainingservice.key';

const $ = (id) => document.getElementById(id);

const state = {
  mode: 'job',
  jobs: [],              // the latest page of GET /api/jobs
  selectedId: null,
  followNewest: true,    // until the user picks a job (or a link names one), show the newest running job
  compareIds: new Set(),
  compareMetric: 'valLoss',
  sweepId: null,         // the sweep shown in the sweep view (#sweep=<id>)
};

let view = null;     // the job being watched: its epochs, polling cursor and charts
let compare = null;  // the comparison being shown
let session = null;  // { key, me, jobTimer, closed }: while signed in

// ---- Numbers --------------------------------------------------------------------------------------------------

// The API writes a diverging value as the string "NaN", "Infinity" or "-Infinity"; Number() reads all three.
function toNumber(value) {
  if (value === null || value === undefined) {
    return null;
  }
  return typeof value === 'number' ? value : Number(value);
}

// uPlot draws null as a gap in the line; NaN or ±Infinity would wreck the axis range instead.
function plotValue(value, logScale = false) {
  const n = toNumber(value);
  if (n === null || !Number.isFinite(n) || (logScale && n <= 0)) {
    return null;
  }
  return n;
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

function numberCell(value) {
  const n = toNumber(value);
  const odd = n !== null && !Number.isFinite(n);
  return `<td class="num${odd ? ' nonfinite' : ''}">${escapeHtml(formatNumber(value))}</td>`;
}

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

// ---- HTTP -----------------------------------------------------------------------------------------------------

// cache: 'no-store' keeps the browser's HTTP cache out of the way, so our own If-None-Match reaches the server
// and a 304 reaches us (instead of the cached body the browser would substitute).
export async function request(url, options = {}) {
  const current = session;
  if (!current) {
    throw new Error('signed out');
  }
  // No key in Auth:Mode=None (a laptop on loopback): the API takes every caller for the owner.
  const headers = current.key ? { ...(options.headers ?? {}), Authorization: `Bearer ${current.key}` } : { ...(options.headers ?? {}) };
  const response = await fetch(url, { cache: 'no-store', ...options, headers });
  if (response.status === 401 && session === current) {
    const problem = await response.json().catch(() => ({}));
    signOut(`The key was refused (${problem.code ?? '401'}): ${problem.detail ?? 'sign in again.'}`);
  }
  if (!response.ok && response.status !== 304) {
    let detail = `${response.status} ${response.statusText}`;
    let problem = null;
    try {
      problem = await response.json(); // every API error is application/problem+json with a code
      detail = `${problem.code ?? response.status}: ${problem.detail ?? problem.title}`;
    } catch {
      // not JSON; keep the status line
    }
    // The problem itself goes along: the submit form puts it at the field it names.
    throw Object.assign(new Error(detail), { status: response.status, problem });
  }
  return response;
}

function setConnection(error) {
  const el = $('connection');
  el.classList.toggle('error', Boolean(error));
  el.textContent = error ? `API error: ${error.message}` : `updated ${new Date().toLocaleTimeString()}`;
}

// ---- Job list -------------------------------------------------------------------------------------------------

async function refreshJobs(current) {
  if (current.closed) {
    return;
  }
  try {
    const page = await (await request(`/api/jobs?limit=${JOB_LIST_LIMIT}`)).json();
    state.jobs = page.items;
    setConnection(null);
    renderJobs();
    followNewestJob();
    if (view?.id && !view.job) {
      view.job = state.jobs.find((j) => j.id === view.id) ?? null;
      renderJobHeader();
    }
  } catch (error) {
    if (current.closed) {
      return;
    }
    setConnection(error);
  }
  if (!current.closed) {
    current.jobTimer = setTimeout(() => refreshJobs(current), JOB_LIST_INTERVAL_MS);
  }
}

function describeSpec(spec) {
  if (!spec) {
    return '';
  }
  const model = spec.model?.type === 'mlp' ? `mlp[${(spec.model.hiddenLayers ?? []).join(',')}]` : (spec.model?.type ?? 'linear');
  const loss = spec.loss?.name ?? (spec.loss?.terms ? spec.loss.terms.map((t) => t.name).join('+') : '?');
  const optimizer = spec.optimizer ? `${spec.optimizer.name ?? 'adam'}${spec.optimizer.learningRate ? ` ${spec.optimizer.learningRate}` : ''}` : 'adam';
  const target = Array.isArray(spec.target) ? spec.target.join(',') : spec.target;
  return `${target} · ${model} · ${loss} · ${optimizer}`;
}

function progressHtml(job) {
  const total = job.progress?.totalEpochs ?? 0;
  const done = job.progress?.epoch ?? job.epochsCompleted ?? 0;
  const percent = total > 0 ? Math.min(100, (100 * done) / total) : 0;
  // A <progress> element, not a styled span: the content security policy allows no inline style attributes.
  return `<progress class="progress" max="100" value="${percent.toFixed(1)}"></progress>` +
    `<span class="progress-text">${done}/${total}</span>`;
}

function renderJobs() {
  $('jobs-empty').hidden = state.jobs.length > 0;
  $('job-rows').innerHTML = state.jobs.map((job) => `
    <tr data-id="${job.id}" class="${job.id === state.selectedId && state.mode === 'job' ? 'selected' : ''}">
      <td><input type="checkbox" data-compare="${job.id}" ${state.compareIds.has(job.id) ? 'checked' : ''}
           title="Compare this job"></td>
      <td><span class="job-id" title="${job.id}">${job.id.slice(-8)}</span>
          <span class="job-desc">${escapeHtml(describeSpec(job.spec))}</span></td>
      <td><span class="badge ${job.status}">${job.status}</span><br>${progressHtml(job)}</td>
      ${numberCell(job.summary?.lastValLoss ?? job.summary?.lastTrainLoss)}
    </tr>`).join('');
}

// Without a choice, show the newest running job, moving on when it ends and a newer one runs.
function followNewestJob() {
  if (!state.followNewest || state.mode !== 'job' || state.jobs.length === 0) {
    return;
  }
  const running = state.jobs.find((j) => !TERMINAL.has(j.status) && j.status !== 'queued');
  const current = state.jobs.find((j) => j.id === state.selectedId);
  if (!state.selectedId) {
    selectJob((running ?? state.jobs[0]).id, { follow: true });
  } else if (running && running.id !== state.selectedId && (!current || TERMINAL.has(current.status))) {
    selectJob(running.id, { follow: true });
  }
}

// ---- One job: incremental history polling -------------------------------------------------------------------

function selectJob(id, { follow = false } = {}) {
  state.followNewest = follow;
  if (state.mode === 'job' && view?.id === id) {
    updateHash(); // already watching it; keep its epochs rather than reading them again
    return;
  }
  state.selectedId = id;
  if (state.mode !== 'job') {
    setMode('job');
    return; // setMode opens the job
  }
  openJob(id);
  renderJobs();
  updateHash();
}

function openJob(id) {
  closeJob();
  view = {
    id,
    job: state.jobs.find((j) => j.id === id) ?? null,
    epochs: [],
    after: 0,        // last epoch received: the next poll asks only for epochs after it
    etag: null,      // the last history ETag: unchanged job → 304, no body
    status: null,
    done: false,
    timer: null,
    closed: false,
    metric: null,
    charts: {},
    baseline: null,  // the trivial model's losses, from the history
    diagnoses: [],   // what the curve says, from the history (and the job once it ends)
  };
  $('job-title').innerHTML = `Job <span class="job-id">${escapeHtml(id)}</span>`;
  renderJobHeader();
  renderDiagnoses();
  createJobCharts();
  renderEpochTable();
  pollHistory(view);
}

function closeJob() {
  if (!view) {
    return;
  }
  view.closed = true; // a response still in flight for this job is dropped
  clearTimeout(view.timer);
  Object.values(view.charts).forEach((chart) => chart.destroy());
  view = null;
}

async function pollHistory(v) {
  let delay = HISTORY_INTERVAL_MS;
  try {
    const headers = v.etag ? { 'If-None-Match': v.etag } : {};
    const response = await request(`/api/jobs/${v.id}/history?afterEpoch=${v.after}&limit=${HISTORY_PAGE}`, { headers });
    if (v.closed) {
      return;
    }
    if (response.status !== 304) {
      v.etag = response.headers.get('ETag');
      const page = await response.json();
      if (v.closed) {
        return;
      }
      const wasTerminal = TERMINAL.has(v.status);
      v.status = page.status;
      v.epochsCompleted = page.epochsCompleted;
      v.totalEpochs = page.totalEpochs;
      v.baseline = page.baseline ?? v.baseline;
      v.diagnoses = page.diagnoses ?? v.diagnoses;
      renderDiagnoses();
      if (page.epochs.length > 0) {
        v.epochs.push(...page.epochs);
        v.after = page.nextAfterEpoch ?? v.after;
        updateJobCharts();
        renderEpochTable();
      }
      if (page.hasMore) {
        delay = 0; // a long history: read the next page at once
      } else if (TERMINAL.has(page.status)) {
        // The API reads the status before the epochs, so a terminal status means every epoch is in this page.
        v.done = true;
        if (!wasTerminal) {
          await refreshSelectedJob(v);
        }
      }
    }
    renderJobHeader();
  } catch (error) {
    if (v.closed) {
      return;
    }
    $('job-polling').textContent = `history: ${error.message} (retrying)`;
    delay = ERROR_RETRY_MS;
  }
  if (!v.done && !v.closed) {
    v.timer = setTimeout(() => pollHistory(v), delay);
  }
}

// The history says "cancelled"; the job resource says why (stopReason, failure).
async function refreshSelectedJob(v) {
  try {
    const job = await (await request(`/api/jobs/${v.id}`)).json();
    if (!v.closed) {
      v.job = job;
      v.diagnoses = job.diagnoses;
      renderDiagnoses();
      v.charts.loss?.redraw(false);
    }
  } catch {
    // the list refresh will catch up
  }
}

// What the curve says, as the API computed it after the last epoch: one line each, with what to try.
function renderDiagnoses() {
  const list = $('job-diagnoses');
  const diagnoses = view?.diagnoses ?? [];
  list.hidden = diagnoses.length === 0;
  list.innerHTML = diagnoses.map((d) => `<li class="${d.code === 'diverged' ? 'severe' : ''}">
    <code>${escapeHtml(d.code)}</code> <span class="hint">epochs ${d.fromEpoch}–${d.toEpoch}</span> ${escapeHtml(d.message)}
    <div class="suggest">Try: ${d.suggestions.map(escapeHtml).join(' · ')}</div></li>`).join('');
  const job = view?.job;
  const baseline = view?.baseline;
  $('job-model').hidden = !job?.modelEpoch && !baseline;
  $('job-model').textContent = [
    job?.modelEpoch ? `Kept model: epoch ${job.modelEpoch} (keep: ${job.spec?.keep ?? 'best'})` : '',
    baseline ? `Baseline (predicting the ${baseline.model}): loss ${formatNumber(baseline.valLoss ?? baseline.trainLoss)}` : '',
  ].filter(Boolean).join(' · ');
}

function renderJobHeader() {
  if (!view) {
    return;
  }
  const job = view.job;
  const status = view.status ?? job?.status ?? '…';
  $('job-status').innerHTML = `<span class="badge ${escapeHtml(status)}">${escapeHtml(status)}</span>` +
    (job?.stopReason ? ` <span class="hint">(${escapeHtml(job.stopReason)})</span>` : '');
  const done = view.epochsCompleted ?? job?.epochsCompleted;
  const total = view.totalEpochs ?? job?.progress?.totalEpochs;
  $('job-progress').textContent = done !== undefined ? `epoch ${done} of ${total}` : '';
  $('job-polling').textContent = view.done ? 'finished · polling stopped' : `polling every ${HISTORY_INTERVAL_MS / 1000} s`;
  $('job-spec').textContent = job ? describeSpec(job.spec) + (job.device ? ` · ${job.device}` : '') : '';
  const failure = job?.failure;
  $('job-failure').hidden = !failure;
  $('job-failure').textContent = failure ? `${failure.code}: ${failure.message}` : '';
  $('cancel').hidden = TERMINAL.has(status) || status === 'cancelling' || session?.me?.role === 'viewer';
  renderJobActions({ id: view.id, status, modelEpoch: job?.modelEpoch }, session?.me?.role);
}

// ---- Charts ---------------------------------------------------------------------------------------------------

function makeChart(el, labels, { height, logScale = false, colors = COLORS, dashed = [], markers = null }) {
  const options = {
    width: Math.max(200, el.clientWidth),
    height,
    scales: { x: { time: false }, y: logScale ? { distr: 3 } : {} },
    axes: [{}, { size: 64 }], // the legend names the x axis ("epoch"), so no axis label
    series: [{ label: 'epoch' }, ...labels.map((label, i) => ({
      label,
      stroke: colors[i % colors.length],
      width: 1.5,
      dash: dashed.includes(i) ? [6, 4] : undefined,
      points: dashed.includes(i) ? { show: false } : undefined, // a reference line, not data
      value: (u, v) => formatNumber(v),
    }))],
    legend: { live: true },
    hooks: markers ? { draw: [(u) => drawMarkers(u, markers())] } : {},
  };
  return new uPlot(options, [[], ...labels.map(() => [])], el);
}

// Vertical lines at epochs worth a look: where each diagnosis starts, and the epoch whose model was kept.
function drawMarkers(u, markers) {
  const ctx = u.ctx;
  ctx.save();
  ctx.font = `${11 * devicePixelRatio}px sans-serif`;
  markers.forEach(({ epoch, label, color }, i) => {
    const x = u.valToPos(epoch, 'x', true);
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
    ctx.fillText(label, x + 3 * devicePixelRatio, u.bbox.top + 12 * (1 + i % 3) * devicePixelRatio); // staggered: markers may share an epoch
  });
  ctx.restore();
}

function lossMarkers() {
  const markers = (view?.diagnoses ?? []).map((d) => ({
    epoch: d.fromEpoch, label: d.code, color: d.code === 'diverged' ? '#cf222e' : '#bf8700',
  }));
  const kept = view?.job?.modelEpoch;
  if (kept) {
    markers.push({ epoch: kept, label: 'kept model', color: '#1a7f37' });
  }
  return markers;
}

function createJobCharts() {
  const log = $('log-scale').checked;
  view.charts.loss = makeChart($('chart-loss'), ['train loss', 'validation loss', 'baseline'],
    { height: 230, logScale: log, colors: [COLORS[0], COLORS[1], '#6e7781'], dashed: [2], markers: lossMarkers });
  view.charts.lr = makeChart($('chart-lr'), ['learning rate'], { height: 160, colors: ['#8250df'] });
  view.charts.metric = makeChart($('chart-metric'), [view.metric ?? 'metric'], { height: 160, colors: ['#1a7f37'] });
}

// Rebuilds the series from all epochs seen so far: cheap at these sizes, and it keeps the gaps right.
function updateJobCharts() {
  const epochs = view.epochs;
  const x = epochs.map((e) => e.epoch);
  const log = $('log-scale').checked;
  // The trivial model's loss (training mean or class prior) as a flat reference line: where the validation loss is measured.
  const reference = view.baseline ? (view.baseline.valLoss ?? view.baseline.trainLoss) : null;
  view.charts.loss.setData([x, epochs.map((e) => plotValue(e.trainLoss, log)), epochs.map((e) => plotValue(e.valLoss, log)),
    epochs.map(() => plotValue(reference, log))]);
  view.charts.lr.setData([x, epochs.map((e) => plotValue(e.learningRate))]);
  updateMetricChoices();
  view.charts.metric.setData([x, epochs.map((e) => plotValue(seriesValue(e, view.metric)))]);
}

function seriesValue(epoch, name) {
  return name in (epoch.metrics ?? {}) ? epoch.metrics[name] : epoch[name];
}

// The selector lists the job's metrics (they depend on the task) and a few per-epoch diagnostics.
function updateMetricChoices() {
  const names = [...new Set(view.epochs.flatMap((e) => Object.keys(e.metrics ?? {})))].sort();
  const choices = [...names, ...EXTRA_SERIES];
  const select = $('metric');
  if (select.dataset.choices !== choices.join()) {
    select.dataset.choices = choices.join();
    select.innerHTML = choices.map((n) => `<option>${escapeHtml(n)}</option>`).join('');
  }
  if (!view.metric || !choices.includes(view.metric)) {
    view.metric = choices[0];
    view.charts.metric.destroy();
    view.charts.metric = makeChart($('chart-metric'), [view.metric], { height: 160, colors: ['#1a7f37'] });
  }
  select.value = view.metric;
}

function renderEpochTable() {
  const epochs = view.epochs;
  const metrics = [...new Set(epochs.flatMap((e) => Object.keys(e.metrics ?? {})))].sort();
  $('epoch-head').innerHTML = `<tr><th class="num">epoch</th><th class="num">train loss</th><th class="num">val loss</th>
    <th class="num">lr</th>${metrics.map((m) => `<th class="num">${escapeHtml(m)}</th>`).join('')}
    <th class="num">grad norm</th><th class="num">ms</th></tr>`;
  $('epoch-rows').innerHTML = epochs.slice(-TABLE_ROWS).reverse().map((e) => `<tr>
    <td class="num">${e.epoch}</td>${numberCell(e.trainLoss)}${numberCell(e.valLoss)}${numberCell(e.learningRate)}
    ${metrics.map((m) => numberCell(e.metrics?.[m])).join('')}${numberCell(e.gradientNorm)}${numberCell(e.durationMs)}</tr>`).join('')
    || `<tr><td colspan="${6 + metrics.length}" class="empty">No epochs yet.</td></tr>`;
}

// ---- Compare mode ---------------------------------------------------------------------------------------------

function startCompare() {
  stopCompare();
  compare = { timer: null, closed: false, chart: null, key: null };
  refreshCompare(compare);
}

function stopCompare() {
  if (!compare) {
    return;
  }
  compare.closed = true;
  clearTimeout(compare.timer);
  compare.chart?.destroy();
  compare = null;
}

// /api/histories has no ETag or afterEpoch, so this re-reads the (downsampled) series while any job still runs.
async function refreshCompare(c) {
  const ids = [...state.compareIds];
  const metric = state.compareMetric;
  if (ids.length === 0) {
    c.chart?.destroy();
    c.chart = null;
    c.key = null;
    $('compare-note').textContent = 'no jobs selected';
    return;
  }
  let delay = COMPARE_INTERVAL_MS;
  try {
    const body = await (await request(`/api/histories?jobIds=${ids.join(',')}&metric=${encodeURIComponent(metric)}`)).json();
    if (c.closed) {
      return;
    }
    // uPlot wants one shared x array: uPlot.join aligns the jobs on the union of their epochs, leaving undefined
    // (spanned) where a job has no point and keeping null (a gap) where its value is not finite.
    const tables = body.series.map((s) => [s.points.map((p) => p.epoch), s.points.map((p) => plotValue(p.value))]);
    const data = tables.length === 1 ? tables[0] : uPlot.join(tables);
    // Labels carry each job's status, so a job that ends gets a new chart (uPlot labels are fixed at creation).
    const labels = body.series.map((s) => `${s.jobId.slice(-8)} (${s.status})`);
    const key = `${metric}|${labels.join()}`;
    if (c.key !== key) {
      c.chart?.destroy();
      c.chart = makeChart($('chart-compare'), labels, { height: 420 });
      c.key = key;
    }
    c.chart.setData(data);
    const running = body.series.some((s) => !TERMINAL.has(s.status));
    $('compare-note').textContent = `${metric} of ${body.series.length} job(s)` +
      (body.sampled ? ' · downsampled by the API' : '') + (running ? ' · refreshing' : ' · all finished');
    if (!running) {
      return;
    }
  } catch (error) {
    if (c.closed) {
      return;
    }
    $('compare-note').textContent = error.message;
    delay = ERROR_RETRY_MS;
  }
  if (!c.closed) {
    c.timer = setTimeout(() => refreshCompare(c), delay);
  }
}

// ---- Modes, links and events ----------------------------------------------------------------------------------

function setMode(mode) {
  state.mode = mode;
  $('mode-job').classList.toggle('active', mode === 'job');
  $('mode-compare').classList.toggle('active', mode === 'compare');
  $('job-view').hidden = mode !== 'job';
  $('compare-view').hidden = mode !== 'compare';
  $('mode-sweeps').classList.toggle('active', mode === 'sweep');
  $('sweep-view').hidden = mode !== 'sweep';
  // Only the visible view polls.
  if (mode !== 'sweep') {
    hideSweeps();
  }
  if (mode === 'sweep') {
    closeJob();
    stopCompare();
    showSweeps(state.sweepId);
  } else if (mode === 'compare') {
    closeJob();
    startCompare();
  } else {
    stopCompare();
    if (state.selectedId) {
      openJob(state.selectedId);
    } else {
      followNewestJob();
    }
  }
  renderJobs();
  updateHash();
}

// The hash makes a view linkable: #job=<id> or #compare=<id>,<id>&metric=valLoss.
function updateHash() {
  const params = new URLSearchParams();
  if (state.mode === 'compare') {
    params.set('compare', [...state.compareIds].join(','));
    params.set('metric', state.compareMetric);
  } else if (state.mode === 'sweep') {
    params.set('sweep', state.sweepId ?? '');
  } else if (state.selectedId && !state.followNewest) {
    params.set('job', state.selectedId);
  }
  history.replaceState(null, '', params.size ? `#${params.toString().replaceAll('%2C', ',')}` : location.pathname);
}

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.get('job')) {
    state.selectedId = params.get('job');
    state.followNewest = false;
  }
  if (params.has('compare')) {
    params.get('compare').split(',').filter(Boolean).forEach((id) => state.compareIds.add(id));
    state.compareMetric = params.get('metric') ?? state.compareMetric;
    return 'compare';
  }
  if (params.has('sweep')) {
    state.sweepId = params.get('sweep') || null;
    return 'sweep';
  }
  return 'job';
}

function wireEvents() {
  $('job-rows').addEventListener('click', (event) => {
    const box = event.target.closest('input[data-compare]');
    if (box) {
      // Ticking a job only changes the comparison; it does not open the job.
      const id = box.dataset.compare;
      if (box.checked) {
        state.compareIds.add(id);
      } else {
        state.compareIds.delete(id);
      }
      if (state.mode === 'compare') {
        startCompare();
        updateHash();
      }
      return;
    }
    const row = event.target.closest('tr[data-id]');
    if (row) {
      selectJob(row.dataset.id);
    }
  });
  $('mode-job').addEventListener('click', () => setMode('job'));
  $('mode-sweeps').addEventListener('click', () => setMode('sweep'));
  $('mode-compare').addEventListener('click', () => {
    // With nothing ticked yet, start from the job being watched.
    if (state.compareIds.size === 0 && state.selectedId) {
      state.compareIds.add(state.selectedId);
    }
    setMode('compare');
  });
  $('metric').addEventListener('change', (event) => {
    view.metric = event.target.value;
    view.charts.metric.destroy();
    view.charts.metric = makeChart($('chart-metric'), [view.metric], { height: 160, colors: ['#1a7f37'] });
    updateJobCharts();
  });
  $('log-scale').addEventListener('change', () => {
    view.charts.loss.destroy();
    view.charts.loss = makeChart($('chart-loss'), ['train loss', 'validation loss'], { height: 230, logScale: $('log-scale').checked });
    updateJobCharts();
  });
  $('compare-metric').innerHTML = COMPARE_SERIES.map((n) => `<option>${n}</option>`).join('');
  $('compare-metric').addEventListener('change', (event) => {
    state.compareMetric = event.target.value;
    startCompare();
    updateHash();
  });
  $('cancel').addEventListener('click', async () => {
    const v = view;
    if (!v) {
      return;
    }
    try {
      v.job = await (await request(`/api/jobs/${v.id}/cancel`, { method: 'POST' })).json();
      v.status = v.job.status;
      renderJobHeader();
    } catch (error) {
      $('job-polling').textContent = `cancel: ${error.message}`;
    }
  });
  // uPlot has a fixed size; follow the layout.
  new ResizeObserver(() => {
    const charts = [...Object.entries(view?.charts ?? {}), ['compare', compare?.chart]];
    for (const [, chart] of charts) {
      if (chart) {
        chart.setSize({ width: Math.max(200, chart.root.parentElement.clientWidth), height: chart.height });
      }
    }
  }).observe(document.querySelector('main'));
}

// ---- Signing in and out ---------------------------------------------------------------------------------------

// `/#key=ts_…` (the first start's link): keep the key for this tab, and take it out of the address bar and history.
// Returns the key, or null when the fragment has none.
function takeKeyFromHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const key = params.get('key')?.trim();
  if (!key) {
    return null;
  }
  sessionStorage.setItem(KEY_STORAGE, key);
  params.delete('key');
  history.replaceState(null, '', params.size ? `#${params.toString()}` : location.pathname + location.search);
  return key;
}

function showSignIn(message) {
  $('app').hidden = true;
  $('modes').hidden = true;
  $('identity').hidden = true;
  $('connection').textContent = '';
  $('sign-in').hidden = false;
  $('sign-in-message').hidden = !message;
  $('sign-in-message').textContent = message ?? '';
  $('key-input').value = '';
  $('key-input').focus();
}

// Checks the key with GET /api/me before anything else is shown.
async function signIn(key) {
  const current = { key, me: null, jobTimer: null, closed: false };
  session = current;
  try {
    const response = await request('/api/me');
    current.me = await response.json();
  } catch (error) {
    if (session === current) {
      // Not a refusal (a 401 has signed out already): the API is unreachable. Keep the key and try again.
      showSignIn(`Could not reach the API (${error.message}); retrying in ${ERROR_RETRY_MS / 1000} s.`);
      setTimeout(() => {
        if (session === current) {
          signIn(key);
        }
      }, ERROR_RETRY_MS);
    }
    return;
  }
  if (session !== current) {
    return; // refused (a 401 signed out) or replaced meanwhile
  }
  sessionStorage.setItem(KEY_STORAGE, key);
  $('whoami').textContent = `${current.me.tenant} · ${current.me.role}` + (current.me.keyId ? ` · key ${current.me.keyId}` : '');
  $('new-job-open').hidden = current.me.role === 'viewer'; // uploads and submits need a member
  $('sign-in').hidden = true;
  $('identity').hidden = false;
  $('modes').hidden = false;
  $('app').hidden = false;
  setMode(readHash());
  refreshJobs(current);
}

// Stops every poll, forgets the key and what was shown, and asks for a key again.
function signOut(message) {
  if (session) {
    session.closed = true;
    clearTimeout(session.jobTimer);
  }
  session = null;
  sessionStorage.removeItem(KEY_STORAGE);
  closeJob();
  stopCompare();
  hideSweeps();
  state.jobs = [];
  state.selectedId = null;
  state.followNewest = true;
  state.compareIds.clear();
  $('job-rows').innerHTML = '';
  closeNewJob();
  showSignIn(message);
}

function wireSignIn() {
  $('sign-in-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const key = $('key-input').value.trim();
    if (key) {
      signIn(key);
    }
  });
  $('sign-out').addEventListener('click', () => signOut(null));
  // The link pasted into a tab that is already open changes only the fragment: no reload, so look here too.
  window.addEventListener('hashchange', () => {
    const key = takeKeyFromHash();
    if (key && key !== session?.key) {
      signIn(key);
    } else if (!key && session?.me) {
      setMode(readHash()); // a link within the page: a sweep, or a trial's job (#job=<id>)
    }
  });
}

// ---- New job and job actions (upload.js, submit.js, actions.js) ----------------------------------------------

function wireNewJob() {
  const dashboard = { request, key: () => session?.key ?? '', openJob: (id) => openSubmittedJob(id) };
  initUpload(dashboard, (dataset) => showForDataset(dataset));
  initSubmit(dashboard);
  initActions(dashboard);
  $('new-job-open').addEventListener('click', () => showNewJob($('new-job').hidden));
  $('new-job-close').addEventListener('click', () => showNewJob(false));
}

function showNewJob(open) {
  $('new-job').hidden = !open;
  $('new-job-open').setAttribute('aria-expanded', String(open));
  $('new-job-open').classList.toggle('active', open);
  if (open) {
    loadDatasets();
    loadCatalogue().catch(() => {}); // the form reports it when a dataset is chosen
    $('upload-file').focus();
  } else {
    $('new-job-open').focus();
  }
}

// Signing out leaves nothing of the last tenant's data in the page: the form and the dataset shown are emptied.
function closeNewJob() {
  $('new-job').hidden = true;
  $('new-job-open').setAttribute('aria-expanded', 'false');
  $('new-job-open').classList.remove('active');
  clearUpload();
  clearSubmit();
}

// A job just submitted or retried: close the form and watch it.
function openSubmittedJob(id) {
  if (!$('new-job').hidden) {
    showNewJob(false);
  }
  selectJob(id);
}

takeKeyFromHash();
wireEvents();
wireSignIn();
wireNewJob();
$('compare-metric').value = state.compareMetric;
const storedKey = sessionStorage.getItem(KEY_STORAGE);
if (storedKey) {
  signIn(storedKey);
} else {
  startWithoutKey();
}

// A service run with Auth:Mode=None answers /api/me without a key: go straight in; otherwise ask for one.
async function startWithoutKey() {
  try {
    const response = await fetch('/api/me', { cache: 'no-store' });
    if (response.ok) {
      signIn('');
      return;
    }
  } catch {
    // unreachable: the sign-in form says so when a key is tried
  }
  showSignIn(null);
}
