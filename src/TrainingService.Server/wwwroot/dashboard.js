// Live loss curves for TrainingService. A job's history is read once, downsampled to the chart's width (each bucket's
// low and high kept, and its range shaded), then followed live: the SSE stream read with fetch() where the browser can
// (EventSource cannot send the key's header, and a key in a URL would end up in logs), afterEpoch polling (ETag/304)
// where streaming fails. Nothing is read while the tab is in the background. Drawing is charts.js's, on uPlot.
//
// Nothing is read before the user gives an API key. The key lives in sessionStorage (this tab, until sign-out or
// close), travels as `Authorization: Bearer`, and any 401 drops it and asks again. The first start of the service
// prints a link `/#key=ts_…`: the fragment never reaches a server, and is removed from the address bar at once.

import {
  COLORS, X_AXES, ema, epochToX, formatNumber, lineChart, lossMarkers, plotValue, preference, remember, scaled, schedulePhases,
  setChartData, toNumber, xToEpoch,
} from './charts.js';
import { initActions, renderJobActions } from './actions.js';
import { clearUpload, initUpload, loadDatasets } from './upload.js';
import { clearSubmit, initSubmit, loadCatalogue, showForDataset } from './submit.js';
import { hideSweeps, showSweeps } from './sweeps.js';

const JOB_LIST_INTERVAL_MS = 3000;
const HISTORY_INTERVAL_MS = 1500;
const COMPARE_INTERVAL_MS = 2000;
const ERROR_RETRY_MS = 5000;
const STREAM_RETRY_MS = 2000; // the retry the history stream names, as EventSource would honour it
const MAX_CHART_POINTS = 4000;
const REDRAW_INTERVAL_MS = 250; // live epochs are drawn in batches at most this often
const JOB_LIST_LIMIT = 50;
const HISTORY_PAGE = 1000; // the API's default page: a poll that fell behind catches up in a few
const TABLE_ROWS = 8;
const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
// Per-epoch fields besides the losses that are worth a curve; metrics (rmse, accuracy, …) are added as seen.
const EXTRA_SERIES = ['gradientNorm', 'regularizationLoss', 'samplesPerSecond', 'durationMs'];
// What /api/histories accepts as ?metric= (HistoryReader.BuiltInSeries and MetricSeries).
const COMPARE_SERIES = ['valLoss', 'trainLoss', 'regularizationLoss', 'learningRate', 'gradientNorm', 'samplesPerSecond',
  'durationMs', 'rmse', 'mae', 'r2', 'accuracy', 'precision', 'recall', 'f1', 'auc', 'macroF1'];

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
  current.busy = true;
  try {
    const page = await (await request(`/api/jobs?limit=${JOB_LIST_LIMIT}`)).json();
    state.jobs = page.items;
    setConnection(null);
    renderJobs();
    followNewestJob();
    refreshWatchedJob();
  } catch (error) {
    if (current.closed) {
      return;
    }
    setConnection(error);
  } finally {
    current.busy = false;
  }
  if (current.closed) {
    return;
  }
  if (document.hidden) {
    current.paused = true; // resumed by onVisibilityChange
  } else {
    current.jobTimer = setTimeout(() => refreshJobs(current), JOB_LIST_INTERVAL_MS);
  }
}

// The watched job's resource, as the list has it: while the history streams, its diagnoses, stop reason and kept model
// come from here (the stream carries epochs only).
function refreshWatchedJob() {
  const fresh = view && state.jobs.find((j) => j.id === view.id);
  if (!fresh) {
    return;
  }
  view.job = fresh;
  if (!view.done && fresh.diagnoses) {
    view.diagnoses = fresh.diagnoses;
  }
  renderDiagnoses();
  renderJobHeader();
  view.charts.loss?.redraw(false);
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
    epochs: [],      // what the charts draw: every epoch, or a downsampled read's kept epochs followed by every later one
    latest: [],      // the last few epochs, every one of them (the table)
    buckets: null,   // for a downsampled read: { trainLoss: [...], valLoss: [...] }, each bucket's range of that loss
    sampled: false,
    zoom: null,      // a range read at full resolution (or re-bucketed), shown instead of the overview until reset
    localZoom: false, // the user zoomed into data already loaded: uPlot's own zoom, kept while epochs arrive
    after: 0,        // last epoch received: the stream (or the next poll) starts after it
    etag: null,      // the last history ETag when polling: unchanged job → 304, no body
    transport: canStream() ? 'stream' : 'polling',
    abort: new AbortController(), // aborts what is in flight: when the job is closed, or the tab goes to the background
    status: null,
    done: false,
    paused: false,
    timer: null,
    closed: false,
    redrawPending: false,
    metric: null,
    charts: {},
    hidden: [],      // x of values the log scale cannot draw
    baseline: null,  // the trivial model's losses, from the history
    diagnoses: [],   // what the curve says, from the history (and the job once it ends)
  };
  $('job-title').innerHTML = `Job <span class="job-id">${escapeHtml(id)}</span>`;
  renderJobHeader();
  renderDiagnoses();
  loadJob(view); // the history request goes out first: the charts are built while it is in flight
  createJobCharts();
  renderEpochTable();
}

function closeJob() {
  if (!view) {
    return;
  }
  view.closed = true; // a response still in flight for this job is dropped
  view.abort.abort();
  clearTimeout(view.timer);
  Object.values(view.charts).forEach((chart) => chart.destroy());
  view = null;
}

// fetch() can read a text/event-stream as it arrives where the browser streams response bodies (all current ones).
// EventSource would be simpler but cannot send the Authorization header, and a key in the URL would end up in logs.
function canStream() {
  return typeof ReadableStream === 'function' && typeof TextDecoderStream === 'function' && 'body' in Response.prototype;
}

// About one point per pixel of the loss chart (a bucket's low and high every two pixels), from the window's width: the
// chart's own would force a layout of the whole page before the first history request could go out (~60 ms here).
function chartPoints() {
  return Math.min(MAX_CHART_POINTS, Math.max(200, Math.round(window.innerWidth * 0.55)));
}

/**
 * One view of the history for the charts: a downsampled read of the whole run (or of a zoomed range, which comes back
 * exact when it is short enough). The API keeps each bucket's lowest and highest validation loss (training loss without a
 * validation split) and gives every bucket's range of both losses, which the loss chart shades.
 */
async function readChartView(v, signal, range) {
  const query = `maxPoints=${chartPoints()}` + (range ? `&afterEpoch=${range.from - 1}&toEpoch=${range.to}` : '');
  const page = await (await request(`/api/jobs/${v.id}/history?${query}`, { signal })).json();
  return { page, epochs: page.epochs, sampled: page.sampled, buckets: page.buckets ?? null };
}

// The first read: the whole run as the charts need it, then live updates from its last epoch on.
async function loadJob(v) {
  const { signal } = v.abort;
  try {
    const read = await readChartView(v, signal);
    if (v.closed || signal.aborted) {
      return;
    }
    Object.assign(v, { epochs: read.epochs, buckets: read.buckets, sampled: read.sampled, after: read.page.nextAfterEpoch, loaded: true });
    v.latest = read.sampled ? [] : read.epochs.slice(-TABLE_ROWS);
    applyPage(v, read.page);
    redraw(v); // at once: the first curve is what the page is waiting for
    if (read.sampled) {
      await readLatest(v, signal); // the kept epochs are not the last ones; the table shows those
    }
  } catch (error) {
    if (v.closed || signal.aborted) {
      return; // closed, or paused: resumeJob() loads it when the tab is visible
    }
    $('job-polling').textContent = `history: ${error.message} (retrying)`;
    v.timer = setTimeout(() => loadJob(v), ERROR_RETRY_MS);
    return;
  }
  if (TERMINAL.has(v.status)) {
    v.done = true;
    await refreshSelectedJob(v);
    renderJobHeader();
    return;
  }
  follow(v);
}

// The last few epochs of a run read downsampled, for the table: one short exact page.
async function readLatest(v, signal) {
  const from = Math.max(0, v.after - TABLE_ROWS);
  const page = await (await request(`/api/jobs/${v.id}/history?afterEpoch=${from}&toEpoch=${v.after}`, { signal })).json();
  if (!v.closed && !signal.aborted) {
    v.latest = [...page.epochs, ...v.latest.filter((e) => e.epoch > v.after)].slice(-TABLE_ROWS);
    renderEpochTable();
  }
}

// The status, baseline and diagnoses a history page carries.
function applyPage(v, page) {
  v.status = page.status;
  v.epochsCompleted = page.epochsCompleted;
  v.totalEpochs = page.totalEpochs;
  v.baseline = page.baseline ?? v.baseline;
  v.diagnoses = page.diagnoses ?? v.diagnoses;
  renderDiagnoses();
  renderJobHeader();
}

// Epochs that arrived live: appended after what is shown, redrawn at most every REDRAW_INTERVAL_MS however fast they come.
function addEpochs(v, epochs) {
  const fresh = epochs.filter((e) => e.epoch > v.after);
  if (fresh.length === 0) {
    return;
  }
  v.epochs.push(...fresh);
  v.latest = [...v.latest, ...fresh].slice(-TABLE_ROWS);
  v.after = fresh[fresh.length - 1].epoch;
  v.epochsCompleted = Math.max(v.epochsCompleted ?? 0, v.after);
  scheduleRedraw(v, REDRAW_INTERVAL_MS);
}

// One redraw for everything that arrived meanwhile, in an animation frame. A run that logs an epoch every few
// milliseconds would otherwise redraw three charts sixty times a second for no one's benefit.
function scheduleRedraw(v, delay = 0) {
  if (v.redrawPending) {
    return;
  }
  v.redrawPending = true;
  setTimeout(() => requestAnimationFrame(() => {
    v.redrawPending = false;
    redraw(v);
  }), delay);
}

function redraw(v) {
  if (!v.closed) {
    updateJobCharts();
    renderEpochTable();
    renderJobHeader();
  }
}

// Live updates until the job ends: the SSE stream, or afterEpoch polling where streaming failed. Nothing runs while the
// tab is in the background; becoming visible again resumes from the last epoch received.
function follow(v) {
  if (v.closed || v.done) {
    return;
  }
  if (document.hidden) {
    v.paused = true;
    renderJobHeader();
    return;
  }
  v.paused = false;
  if (v.transport === 'stream') {
    streamHistory(v);
  } else {
    pollHistory(v);
  }
}

async function streamHistory(v) {
  const { signal } = v.abort;
  let ended = false;
  try {
    const response = await request(`/api/jobs/${v.id}/history/stream?afterEpoch=${v.after}`,
      { signal, headers: { Accept: 'text/event-stream' } });
    v.streaming = true;
    renderJobHeader();
    await readEvents(response.body, (event) => {
      if (event.type === 'epoch') {
        addEpochs(v, [JSON.parse(event.data)]);
      } else if (event.type === 'end') {
        ended = true;
      }
    });
  } catch (error) {
    if (v.closed || signal.aborted) {
      return; // closed, or paused: resumeJob() follows it again when the tab is visible
    }
    // A proxy that buffers or cuts streams, or a browser that cannot read one: read pages instead, for this job.
    v.transport = 'polling';
    v.streamFailure = error.message;
  } finally {
    v.streaming = false;
  }
  if (v.closed || signal.aborted) {
    return;
  }
  // After 'end'', one history read brings the final status and diagnoses (and stops, the job being over). A stream
  // that closed without one (the server restarted) is opened again, as EventSource would, after the retry it names.
  v.timer = setTimeout(() => (ended ? pollHistory(v) : follow(v)), ended ? 0 : STREAM_RETRY_MS);
}

// Calls onEvent({ type, data, id }) for each event of a text/event-stream body (WHATWG HTML §9.2) until it ends.
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) {
      return;
    }
    buffer += value;
    const blocks = buffer.split(/\r\n\r\n|\n\n|\r\r/);
    buffer = blocks.pop();
    for (const block of blocks) {
      const event = { type: 'message', data: [], id: null };
      for (const line of block.split(/\r\n|\n|\r/)) {
        const colon = line.indexOf(':');
        if (colon === 0) {
          continue; // a comment: the heartbeat
        }
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') {
          event.type = text;
        } else if (field === 'data') {
          event.data.push(text);
        } else if (field === 'id') {
          event.id = text;
        }
      }
      if (event.data.length > 0) {
        onEvent({ ...event, data: event.data.join('\n') });
      }
    }
  }
}

async function pollHistory(v) {
  const { signal } = v.abort;
  let delay = HISTORY_INTERVAL_MS;
  try {
    const headers = v.etag ? { 'If-None-Match': v.etag } : {};
    const response = await request(`/api/jobs/${v.id}/history?afterEpoch=${v.after}&limit=${HISTORY_PAGE}`, { headers, signal });
    if (v.closed || signal.aborted) {
      return;
    }
    if (response.status !== 304) {
      v.etag = response.headers.get('ETag');
      const page = await response.json();
      if (v.closed) {
        return;
      }
      const wasTerminal = TERMINAL.has(v.status);
      applyPage(v, page);
      addEpochs(v, page.epochs);
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
    if (v.closed || signal.aborted) {
      return;
    }
    $('job-polling').textContent = `history: ${error.message} (retrying)`;
    delay = ERROR_RETRY_MS;
  }
  if (!v.done && !v.closed && !signal.aborted) {
    v.timer = setTimeout(() => follow(v), delay);
  }
}

// The tab went to the background: stop reading (the stream, a poll, a first read) until it is visible again.
function pauseJob(v) {
  v.abort.abort();
  clearTimeout(v.timer);
  v.paused = true;
  renderJobHeader();
}

function resumeJob(v) {
  if (!v.paused || v.closed) {
    return;
  }
  v.abort = new AbortController();
  v.paused = false;
  if (v.loaded) {
    follow(v);
  } else {
    loadJob(v);
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
  $('job-polling').textContent = liveStatus(view);
  $('job-spec').textContent = job ? describeSpec(job.spec) + (job.device ? ` · ${job.device}` : '') : '';
  const failure = job?.failure;
  $('job-failure').hidden = !failure;
  $('job-failure').textContent = failure ? `${failure.code}: ${failure.message}` : '';
  $('cancel').hidden = TERMINAL.has(status) || status === 'cancelling' || session?.me?.role === 'viewer';
  renderJobActions({ id: view.id, status, modelEpoch: job?.modelEpoch }, session?.me?.role);
}

function liveStatus(v) {
  if (v.done) {
    return 'finished · live updates stopped';
  }
  if (v.paused) {
    return 'paused while the tab is in the background';
  }
  if (v.transport === 'stream') {
    return v.streaming ? 'live (event stream)' : 'connecting…';
  }
  return `polling every ${HISTORY_INTERVAL_MS / 1000} s` + (v.streamFailure ? ` (the event stream failed: ${v.streamFailure})` : '');
}

// ---- Charts (drawing is charts.js's; here, what each job chart shows) -------------------------------------------

// Chart choices, remembered in this browser: the x axis for the job's charts, log scale and smoothing per chart.
const chartPrefs = {
  x: preference('job', 'x', 'epoch'),
  lossLog: preference('loss', 'log', false),
  lossSmoothing: preference('loss', 'smoothing', 0),
  compareLog: preference('compare', 'log', false),
  compareSmoothing: preference('compare', 'smoothing', 0),
};

function xAxis() {
  return X_AXES[chartPrefs.x] ?? X_AXES.epoch;
}

// What the job's charts show: a zoomed range while there is one, else the whole run.
function shown(v) {
  return v.zoom ?? v;
}

function createJobCharts() {
  Object.values(view.charts).forEach((chart) => chart.destroy());
  const v = view;
  v.charts = {};
  v.localZoom = false; // a new chart starts unzoomed
  const x = xAxis();
  v.charts.loss = lineChart($('chart-loss'), {
    name: 'loss', yLabel: 'loss', xAxis: x, log: chartPrefs.lossLog, height: 250,
    series: [
      { label: 'train loss (raw)', color: COLORS[0], faint: true },
      { label: 'validation loss (raw)', color: COLORS[1], faint: true },
      { label: 'train loss', color: COLORS[0] },
      { label: 'validation loss', color: COLORS[1] },
      { label: 'baseline', color: '#6e7781', dash: [6, 4] },
    ],
    bands: () => lossBands(v),
    markers: () => jobMarkers(v, lossMarkers({ epochs: shown(v).epochs, job: v.job, diagnoses: v.diagnoses, nonFiniteEpochs: nonFiniteBuckets(v) })),
    hidden: () => v.hidden,
    onZoom: (min, max) => zoomTo(v, min, max),
  });
  v.charts.lr = lineChart($('chart-lr'), {
    name: 'lr', yLabel: 'learning rate', xAxis: x, height: 170,
    series: [{ label: 'learning rate', color: '#8250df' }],
    markers: () => jobMarkers(v, schedulePhases(shown(v).epochs, v.job?.spec?.schedule)),
  });
  if (v.metric) {
    createMetricChart(v); // otherwise once the epochs say which metrics there are (updateMetricChoices)
  }
  for (const chart of [v.charts.loss, v.charts.lr]) {
    chart.over.addEventListener('dblclick', () => resetZoom(v)); // uPlot's own reset, plus ours: back to the whole run
  }
}

function createMetricChart(v) {
  v.charts.metric?.destroy();
  v.charts.metric = lineChart($('chart-metric'), {
    name: 'metric', yLabel: v.metric ?? 'metric', xAxis: xAxis(), height: 170,
    series: [{ label: `${v.metric ?? 'metric'} (raw)`, color: '#1a7f37', faint: true }, { label: v.metric ?? 'metric', color: '#1a7f37' }],
  });
}

// Marker epochs as x on the job's charts.
function jobMarkers(v, markers) {
  const toX = epochToX(shown(v).epochs, xAxis());
  return markers.map((m) => ({ ...m, x: toX(m.epoch) }));
}

// Buckets of a downsampled view holding a NaN or ±Infinity loss: the divergence marker goes to the first.
function nonFiniteBuckets(v) {
  return (shown(v).buckets ?? []).filter((b) => Object.values(b.ranges).some((r) => r.nonFinite > 0)).map((b) => b.fromEpoch);
}

// Each bucket of a downsampled view, train and validation loss: the range its kept epochs stand for.
function lossBands(v) {
  const { buckets, epochs } = shown(v);
  if (!buckets) {
    return [];
  }
  const toX = epochToX(epochs, xAxis());
  const bands = [];
  for (const [name, color] of [['trainLoss', COLORS[0]], ['valLoss', COLORS[1]]]) {
    for (const b of buckets) {
      const min = toNumber(b.ranges[name]?.min);
      const max = toNumber(b.ranges[name]?.max);
      if (min !== null && max !== null && (!chartPrefs.lossLog || max > 0)) {
        bands.push({ x0: toX(b.fromEpoch), x1: toX(b.toEpoch), min, max, color, series: name, fromEpoch: b.fromEpoch, toEpoch: b.toEpoch });
      }
    }
  }
  return bands;
}

// Rebuilds the series from what is shown: at most a few thousand points (a long run is read downsampled), so this
// stays well inside a frame, and it keeps the gaps right.
function updateJobCharts() {
  const v = view;
  const { epochs } = shown(v);
  const x = epochs.map(xAxis().of);
  const log = chartPrefs.lossLog;
  const weight = chartPrefs.lossSmoothing;
  // The trivial model's loss (training mean or class prior) as a flat reference line: where the validation loss is measured.
  const reference = v.baseline ? (v.baseline.valLoss ?? v.baseline.trainLoss) : null;
  const train = epochs.map((e) => toNumber(e.trainLoss));
  const val = epochs.map((e) => toNumber(e.valLoss));
  const rawTrain = scaled(x, train, log);
  const rawVal = scaled(x, val, log);
  v.hidden = [...rawTrain.hidden, ...rawVal.hidden];
  // Only the loss chart's own zoom is kept while epochs arrive: it is the one whose drag is followed.
  setChartData(v.charts.loss, [x, rawTrain.values, rawVal.values, scaled(x, ema(train, weight), log).values,
    scaled(x, ema(val, weight), log).values, epochs.map(() => plotValue(reference, log))], { keepZoom: v.localZoom });
  setChartData(v.charts.lr, [x, epochs.map((e) => plotValue(e.learningRate))]);
  updateMetricChoices();
  const metric = epochs.map((e) => toNumber(seriesValue(e, v.metric)));
  setChartData(v.charts.metric, [x, metric.map((n) => plotValue(n)), ema(metric, weight)]);
  renderChartNote(v);
}

// What the loss chart leaves out or stands in for, in words: sampling, the zoomed range, values a log scale cannot draw.
function renderChartNote(v) {
  const { epochs, sampled } = shown(v);
  const parts = [];
  if (v.zoom) {
    parts.push(`epochs ${v.zoom.from}–${v.zoom.to}${v.zoom.sampled ? ', downsampled again' : ' at full resolution'} (double-click or Reset zoom for the whole run)`);
  }
  if (sampled) {
    parts.push(`downsampled: ${epochs.length} of ${v.zoom ? v.zoom.to - v.zoom.from + 1 : v.epochsCompleted ?? '?'} epochs drawn; shading spans each bucket's lowest to highest loss`);
  }
  if (chartPrefs.lossLog && v.hidden.length > 0) {
    parts.push(`log scale: ${v.hidden.length} value(s) ≤ 0 not drawn (red ticks on the bottom edge)`);
  }
  if (chartPrefs.lossSmoothing > 0) {
    parts.push(`smoothed: debiased EMA ${chartPrefs.lossSmoothing}${sampled ? ' over the points drawn' : ''}; raw faint behind`);
  }
  $('loss-note').textContent = parts.join(' · ') || 'drag across a chart to zoom';
  $('zoom-reset').hidden = !v.zoom && !v.localZoom;
}

// A range dragged on the loss chart. A downsampled run reads that range again (exact when it is short enough), so
// zooming in shows every epoch; a run read whole is zoomed by uPlot alone.
async function zoomTo(v, min, max) {
  const toEpoch = xToEpoch(shown(v).epochs, xAxis());
  const from = Math.max(1, Math.floor(toEpoch(min)));
  const to = Math.ceil(toEpoch(max));
  if (!v.sampled || to - from < 2) {
    v.localZoom = true;
    renderChartNote(v);
    return;
  }
  const { signal } = v.abort;
  try {
    const read = await readChartView(v, signal, { from, to });
    if (!v.closed && !signal.aborted) {
      v.zoom = { from, to, epochs: read.epochs, buckets: read.buckets, sampled: read.sampled };
      updateJobCharts();
    }
  } catch (error) {
    if (!v.closed && !signal.aborted) {
      $('loss-note').textContent = `zoom: ${error.message}`;
    }
  }
}

function resetZoom(v) {
  if (!v || (!v.zoom && !v.localZoom)) {
    return;
  }
  v.zoom = null;
  v.localZoom = false;
  updateJobCharts();
}

function seriesValue(epoch, name) {
  return name in (epoch.metrics ?? {}) ? epoch.metrics[name] : epoch[name];
}

// The selector lists the job's metrics (they depend on the task) and a few per-epoch diagnostics.
function updateMetricChoices() {
  // Every epoch of a job reports the same metrics (they depend on the task): the first and last are enough to ask.
  const names = [...new Set([view.epochs[0], view.epochs.at(-1)].flatMap((e) => Object.keys(e?.metrics ?? {})))].sort();
  const choices = [...names, ...EXTRA_SERIES];
  const select = $('metric');
  if (select.dataset.choices !== choices.join()) {
    select.dataset.choices = choices.join();
    select.innerHTML = choices.map((n) => `<option>${escapeHtml(n)}</option>`).join('');
  }
  if (!view.metric || !choices.includes(view.metric)) {
    view.metric = choices[0];
    createMetricChart(view);
  }
  select.value = view.metric;
}

function renderEpochTable() {
  const epochs = view.latest;
  const metrics = [...new Set(epochs.flatMap((e) => Object.keys(e.metrics ?? {})))].sort();
  $('epoch-head').innerHTML = `<tr><th class="num">epoch</th><th class="num">train loss</th><th class="num">val loss</th>
    <th class="num">lr</th>${metrics.map((m) => `<th class="num">${escapeHtml(m)}</th>`).join('')}
    <th class="num">grad norm</th><th class="num">ms</th></tr>`;
  $('epoch-rows').innerHTML = epochs.slice().reverse().map((e) => `<tr>
    <td class="num">${e.epoch}</td>${numberCell(e.trainLoss)}${numberCell(e.valLoss)}${numberCell(e.learningRate)}
    ${metrics.map((m) => numberCell(e.metrics?.[m])).join('')}${numberCell(e.gradientNorm)}${numberCell(e.durationMs)}</tr>`).join('')
    || `<tr><td colspan="${6 + metrics.length}" class="empty">No epochs yet.</td></tr>`;
}

// ---- Compare mode ---------------------------------------------------------------------------------------------

function startCompare() {
  stopCompare();
  compare = { timer: null, closed: false, paused: false, chart: null, key: null, abort: new AbortController(), body: null };
  refreshCompare(compare);
}

function stopCompare() {
  if (!compare) {
    return;
  }
  compare.closed = true;
  compare.abort.abort();
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
  const { signal } = c.abort;
  let delay = COMPARE_INTERVAL_MS;
  try {
    c.body = await (await request(`/api/histories?jobIds=${ids.join(',')}&metric=${encodeURIComponent(metric)}`, { signal })).json();
    if (c.closed || signal.aborted) {
      return;
    }
    drawCompare(c);
    if (!c.body.series.some((s) => !TERMINAL.has(s.status))) {
      return;
    }
  } catch (error) {
    if (c.closed || signal.aborted) {
      return;
    }
    $('compare-note').textContent = error.message;
    delay = ERROR_RETRY_MS;
  }
  if (!c.closed && !signal.aborted) {
    c.timer = setTimeout(() => (document.hidden ? pauseCompare(c) : refreshCompare(c)), delay);
  }
}

// One line per job (with smoothing: the smoothed line over the raw one, faint). The API keeps each bucket's lowest and
// highest point of every job, so a downsampled line still reaches its spikes.
function drawCompare(c) {
  const body = c.body;
  const log = chartPrefs.compareLog;
  const weight = chartPrefs.compareSmoothing;
  // uPlot wants one shared x array: uPlot.join aligns the jobs on the union of their epochs, leaving undefined
  // (spanned) where a job has no point and keeping null (a gap) where its value is not finite.
  const tables = body.series.map((s) => {
    const x = s.points.map((p) => p.epoch);
    const values = s.points.map((p) => toNumber(p.value));
    const raw = scaled(x, values, log);
    return { x, raw, smoothed: weight > 0 ? scaled(x, ema(values, weight), log).values : null };
  });
  const columns = tables.map((t) => [t.x, ...(t.smoothed ? [t.raw.values, t.smoothed] : [t.raw.values])]);
  const data = columns.length === 1 ? columns[0] : uPlot.join(columns);
  // Labels carry each job's status, so a job that ends gets a new chart (uPlot labels are fixed at creation).
  const labels = body.series.map((s) => `${s.jobId.slice(-8)} (${s.status})`);
  const key = `${body.metric}|${labels.join()}|${log}|${weight > 0}`;
  const hidden = tables.flatMap((t) => t.raw.hidden);
  if (c.key !== key) {
    c.chart?.destroy();
    c.chart = lineChart($('chart-compare'), {
      name: 'compare', yLabel: body.metric, log, height: 420, hidden: () => c.hidden,
      series: labels.flatMap((label, i) => {
        const color = COLORS[i % COLORS.length];
        return weight > 0 ? [{ label: `${label} raw`, color, faint: true }, { label, color }] : [{ label, color }];
      }),
    });
    c.key = key;
  }
  c.hidden = hidden;
  setChartData(c.chart, data);
  const running = body.series.some((s) => !TERMINAL.has(s.status));
  $('compare-note').textContent = [
    `${body.metric} of ${body.series.length} job(s) by epoch`,
    body.sampled ? 'downsampled by the API (each bucket keeps its lowest and highest point)' : '',
    weight > 0 ? `smoothed: debiased EMA ${weight}, raw faint behind` : '',
    log && hidden.length > 0 ? `log scale: ${hidden.length} value(s) ≤ 0 not drawn (red ticks)` : '',
    running ? 'refreshing' : 'all finished',
  ].filter(Boolean).join(' · ');
}

function pauseCompare(c) {
  c.abort.abort();
  clearTimeout(c.timer);
  c.paused = true;
}

function resumeCompare(c) {
  if (c.paused && !c.closed) {
    c.paused = false;
    c.abort = new AbortController();
    refreshCompare(c);
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
  wireChartControls();
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

// The chart choices: each is remembered (charts.js's preference) and redraws what it changes.
function wireChartControls() {
  const redrawJob = ({ recreate = false } = {}) => {
    if (view) {
      if (recreate) {
        createJobCharts();
      }
      updateJobCharts();
    }
  };
  $('metric').addEventListener('change', (event) => {
    view.metric = event.target.value;
    createMetricChart(view);
    updateJobCharts();
  });
  bindChoice($('log-scale'), 'checked', 'loss', 'log', 'lossLog', () => redrawJob({ recreate: true }));
  bindChoice($('x-axis'), 'value', 'job', 'x', 'x', () => redrawJob({ recreate: true }));
  bindChoice($('smoothing'), 'value', 'loss', 'smoothing', 'lossSmoothing', () => redrawJob(), Number);
  bindChoice($('compare-log-scale'), 'checked', 'compare', 'log', 'compareLog', () => compare?.body && drawCompare(compare));
  bindChoice($('compare-smoothing'), 'value', 'compare', 'smoothing', 'compareSmoothing', () => compare?.body && drawCompare(compare), Number);
  $('zoom-reset').addEventListener('click', () => resetZoom(view));
}

// One control bound to chartPrefs[key] and remembered as (chart, name); a slider shows its value beside it.
function bindChoice(input, property, chart, name, key, apply, parse = (value) => value) {
  input[property] = chartPrefs[key];
  const output = input.parentElement.querySelector('output');
  const show = () => {
    if (output) {
      output.textContent = Number(chartPrefs[key]).toFixed(2);
    }
  };
  show();
  input.addEventListener('input', () => {
    chartPrefs[key] = parse(input[property]);
    remember(chart, name, chartPrefs[key]);
    show();
    apply();
  });
}

// A tab in the background reads nothing: the job list, the watched job's stream or polls and the comparison stop, and
// carry on from where they were when the tab is visible again.
function onVisibilityChange() {
  const current = session;
  if (document.hidden) {
    if (current) {
      clearTimeout(current.jobTimer);
      current.paused = current.paused || !current.busy;
    }
    if (view) {
      pauseJob(view);
    }
    if (compare) {
      pauseCompare(compare);
    }
    return;
  }
  if (current?.paused && !current.closed) {
    current.paused = false;
    refreshJobs(current);
  }
  if (view) {
    resumeJob(view);
  }
  if (compare) {
    resumeCompare(compare);
  }
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
document.addEventListener('visibilitychange', onVisibilityChange);
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
