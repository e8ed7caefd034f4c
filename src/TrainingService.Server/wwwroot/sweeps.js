// The sweep view: the list of sweeps, and for the chosen one its trials by objective, their objective curves overlaid
// (uPlot), a parallel-coordinates plot of parameters against the objective (drawn here on a canvas), and the loss verdict
// when the sweep varies the loss. dashboard.js shows and hides the view (#sweep=<id>); this module owns what is inside.
//
// It polls every 3 s while the chosen sweep (or any listed one) runs and the tab is visible, and stops once the sweep has
// ended and every trial with it: then nothing on screen can change.

import { formatNumber, plotValue } from './charts.js';
import { escapeHtml, request } from './dashboard.js';

const POLL_MS = 3000;
const ERROR_RETRY_MS = 5000;
const SWEEP_LIST_LIMIT = 50;
// /api/histories takes at most Jobs:MaxCompareJobs jobs per request (20 by default), so curves are read in batches.
const HISTORY_BATCH = 20;
const TERMINAL_TRIAL = new Set(['succeeded', 'failed', 'cancelled', 'pruned']);
const PARALLEL_HEIGHT = 320;
const CURVE_HEIGHT = 300;
// How loss parameters are written on a parallel-coordinates tick ("huber δ=1").
const SYMBOLS = { delta: 'δ', beta: 'β', alpha: 'α', gamma: 'γ' };

const $ = (id) => document.getElementById(id);

let view = null; // { id, closed, seq, timer, paused, sweeps, sweep, trials, curves, losses, final, chart, chartKey }

/** Shows the list, and the sweep <id> when given; keeps polling an already open sweep rather than reading it again. */
export function showSweeps(id) {
  if (view && view.id === id) {
    return;
  }
  hideSweeps();
  view = {
    id, closed: false, seq: 0, timer: null, paused: false, sweeps: [], sweep: null, trials: [], losses: null, final: false,
    curves: new Map(), // jobId → { status, points }: a trial's objective per epoch; an ended job's is not read again
    chart: null, chartKey: null,
  };
  $('sweep-detail').hidden = !id;
  $('sweep-title').innerHTML = id ? `Sweep <span class="job-id">${escapeHtml(id)}</span>` : '';
  ['sweep-status', 'sweep-summary', 'trial-head', 'trial-rows', 'sweep-verdict-text', 'loss-rows'].forEach((el) => { $(el).innerHTML = ''; });
  $('sweep-parallel').width = 0; // clears the previous sweep's drawing
  $('sweep-verdict').hidden = true;
  $('sweep-cancel').hidden = true;
  $('sweep-error').hidden = true;
  $('sweep-polling').textContent = '';
  poll(view);
}

/** Stops polling and drops what was shown (another view, or signing out). */
export function hideSweeps() {
  if (!view) {
    return;
  }
  view.closed = true;
  clearTimeout(view.timer);
  view.chart?.destroy();
  view = null;
}

// ---- Polling --------------------------------------------------------------------------------------------------

// One chain of polls per view: a poll started out of turn (cancel, the tab shown again) supersedes the one in flight.
async function poll(v) {
  clearTimeout(v.timer);
  v.timer = null;
  const seq = ++v.seq;
  const stale = () => v.closed || seq !== v.seq;
  let delay = POLL_MS;
  try {
    const page = await getJson(`/api/sweeps?limit=${SWEEP_LIST_LIMIT}`);
    if (stale()) {
      return;
    }
    v.sweeps = page.items;
    renderList(v);
    if (v.id && !v.final) {
      await refreshSweep(v, stale);
    }
    $('sweep-error').hidden = true;
  } catch (error) {
    if (stale()) {
      return;
    }
    $('sweep-error').hidden = false;
    $('sweep-error').textContent = error.message;
    // A sweep that does not exist (or is another tenant's) will not appear later: stop asking for it.
    v.final ||= error.message.startsWith('sweep.not_found');
    delay = ERROR_RETRY_MS;
  }
  if (stale()) {
    return;
  }
  const active = v.sweeps.some((s) => s.status === 'running') || (v.id && !v.final);
  if (!active) {
    $('sweep-polling').textContent = v.id ? 'ended · not refreshing' : '';
  } else if (document.visibilityState === 'hidden') {
    pause(v);
  } else {
    $('sweep-polling').textContent = `refreshing every ${POLL_MS / 1000} s`;
    v.timer = setTimeout(() => poll(v), delay);
  }
}

// Resumed by the visibilitychange listener below.
function pause(v) {
  clearTimeout(v.timer);
  v.timer = null;
  v.paused = true;
  $('sweep-polling').textContent = 'paused while the tab is hidden';
}

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'hidden' && view?.timer) {
    pause(view);
  } else if (document.visibilityState === 'visible' && view?.paused) {
    view.paused = false;
    poll(view);
  }
});

// The sweep is read before its trials and curves, so once it reads as ended (and its trials too) what follows is final.
async function refreshSweep(v, stale) {
  const sweep = await getJson(`/api/sweeps/${encodeURIComponent(v.id)}`);
  const trials = (await getJson(`/api/sweeps/${encodeURIComponent(v.id)}/trials?sort=objective`)).items;
  await refreshCurves(v, historySeries(sweep.spec.objective.metric), trials);
  // 409 sweep.loss_not_varied otherwise: there is no verdict to show.
  const losses = 'loss' in sweep.spec.parameters ? await getJson(`/api/sweeps/${encodeURIComponent(v.id)}/losses`) : null;
  if (stale()) {
    return;
  }
  Object.assign(v, { sweep, trials, losses, final: sweep.status !== 'running' && trials.every((t) => TERMINAL_TRIAL.has(t.state)) });
  renderSweep(v);
}

// The history series of an objective: val.rmse is the per-epoch metric rmse; valLoss and trainLoss are series themselves.
function historySeries(metric) {
  return metric.startsWith('val.') ? metric.slice(4) : metric;
}

async function refreshCurves(v, series, trials) {
  const unread = trials.filter((t) => !TERMINAL_TRIAL.has(v.curves.get(t.jobId)?.status ?? 'unread')).map((t) => t.jobId);
  for (let i = 0; i < unread.length; i += HISTORY_BATCH) {
    const ids = unread.slice(i, i + HISTORY_BATCH);
    const body = await getJson(`/api/histories?jobIds=${ids.join(',')}&metric=${encodeURIComponent(series)}`);
    for (const s of body.series) {
      v.curves.set(s.jobId, { status: s.status, points: s.points });
    }
  }
}

async function getJson(url) {
  return (await request(url)).json();
}

// ---- The list -------------------------------------------------------------------------------------------------

function renderList(v) {
  $('sweeps-empty').hidden = v.sweeps.length > 0;
  $('sweep-rows').innerHTML = v.sweeps.map((s) => {
    const objective = s.spec.objective;
    const best = s.best ? `${escapeHtml(formatNumber(s.best.objective))} <span class="hint">${escapeHtml(objective.metric)}</span>` : '–';
    return `<tr class="${s.id === v.id ? 'selected' : ''}">
      <td><a href="#sweep=${encodeURIComponent(s.id)}" class="job-id" title="${escapeHtml(s.id)}">${escapeHtml(s.id.slice(-8))}</a>
          <span class="job-desc">${escapeHtml(s.spec.method)} · ${escapeHtml(new Date(s.createdAt).toLocaleString())}</span></td>
      <td><span class="badge ${escapeHtml(s.status)}">${escapeHtml(s.status)}</span></td>
      <td>${countsHtml(s.trials)}</td>
      <td class="num">${best}</td>
    </tr>`;
  }).join('');
}

function countsHtml(counts) {
  const states = Object.entries(counts.byState).sort(([a], [b]) => a.localeCompare(b));
  return `${escapeHtml(counts.created)}/${escapeHtml(counts.planned)} ` + states.map(([state, n]) =>
    `<span class="badge ${escapeHtml(state)}" title="${escapeHtml(state)}">${escapeHtml(n)} ${escapeHtml(state)}</span>`).join(' ');
}

// ---- One sweep ------------------------------------------------------------------------------------------------

function renderSweep(v) {
  const { sweep } = v;
  const spec = sweep.spec;
  $('sweep-status').innerHTML = `<span class="badge ${escapeHtml(sweep.status)}">${escapeHtml(sweep.status)}</span> ${countsHtml(sweep.trials)}`;
  $('sweep-cancel').hidden = sweep.status !== 'running';
  const early = spec.earlyTermination;
  $('sweep-summary').textContent = [
    `${spec.method} search`,
    `objective ${spec.objective.metric} (${spec.objective.goal})`,
    `${sweep.trials.planned} trials planned, ${sweep.trials.created} created`,
    `at most ${spec.maxParallel} at once`,
    early ? `${early.type} from epoch ${early.minEpochs}` : 'no early termination',
    `seed ${spec.seed}`,
    sweep.stopReason ? `stopped: ${sweep.stopReason}` : '',
    sweep.best ? `best: trial ${sweep.best.trial}, ${formatNumber(sweep.best.objective)}` : '',
  ].filter(Boolean).join(' · ');
  renderTrials(v);
  renderVerdict(v.losses);
  renderCurves(v);
  drawParallel(v);
}

function parameterPaths(sweep) {
  return Object.keys(sweep.spec.parameters);
}

function renderTrials(v) {
  const paths = parameterPaths(v.sweep);
  const bestId = v.sweep.best?.jobId;
  $('trial-head').innerHTML = `<tr><th>Trial</th>${paths.map((p) => `<th title="${escapeHtml(p)}">${escapeHtml(shortPath(p))}</th>`).join('')}
    <th>State</th><th class="num">${escapeHtml(v.sweep.spec.objective.metric)}</th><th class="num">Epochs</th></tr>`;
  $('trial-rows').innerHTML = v.trials.map((t) => `<tr data-job="${escapeHtml(t.jobId)}" class="${t.jobId === bestId ? 'best' : ''}">
      <td><a href="#job=${encodeURIComponent(t.jobId)}" title="Open job ${escapeHtml(t.jobId)}">#${escapeHtml(t.trial)}</a></td>
      ${paths.map((p) => `<td>${escapeHtml(shortLabel(t.parameters[p]))}</td>`).join('')}
      <td><span class="badge ${escapeHtml(t.state)}">${escapeHtml(t.state)}</span></td>
      <td class="num">${escapeHtml(formatNumber(t.objective))}</td>
      <td class="num">${escapeHtml(t.epochsCompleted)}</td>
    </tr>`).join('') || `<tr><td colspan="${paths.length + 4}" class="empty">No trials yet.</td></tr>`;
}

function renderVerdict(report) {
  $('sweep-verdict').hidden = !report;
  if (!report) {
    return;
  }
  $('sweep-verdict-text').textContent = report.verdict;
  $('loss-rows').closest('table').hidden = report.groups.length === 0;
  $('loss-rows').innerHTML = report.groups.map((g) => `<tr>
      <td>${escapeHtml(g.label)}</td>
      <td class="num" title="${escapeHtml(g.finished)} finished, ${escapeHtml(g.pruned)} pruned">${escapeHtml(g.trials)}</td>
      <td class="num">${escapeHtml(formatNumber(g.best))}${g.rankedOnPruned ? ' <span class="hint" title="No trial of this loss finished: ranked on pruned trials">(pruned)</span>' : ''}</td>
      <td class="num">${escapeHtml(formatNumber(g.median))}</td>
      <td class="num">${escapeHtml(g.epochsToWithin1Percent ?? '–')}</td>
    </tr>`).join('');
}

// ---- Colours by objective -------------------------------------------------------------------------------------

// Rank, not value, picks the colour: one diverged trial would otherwise squeeze every other trial into one shade.
// Returns jobId → 0 (worst) … 1 (best); trials without an objective are absent.
function objectiveRanks(trials) {
  const ranked = trials.filter((t) => t.objective !== null && t.objective !== undefined); // already best first
  return new Map(ranked.map((t, i) => [t.jobId, ranked.length === 1 ? 1 : 1 - i / (ranked.length - 1)]));
}

// From a pale blue (worst) to a deep violet (best); grey for a trial without an objective.
function rankColor(rank, alpha = 1) {
  if (rank === undefined) {
    return `rgba(140, 149, 159, ${alpha})`;
  }
  const from = [174, 203, 250];
  const to = [76, 29, 149];
  const [r, g, b] = from.map((f, i) => Math.round(f + (to[i] - f) * rank));
  return `rgba(${r}, ${g}, ${b}, ${alpha})`;
}

// ---- Objective curves -----------------------------------------------------------------------------------------

function renderCurves(v) {
  const el = $('chart-sweep');
  const ranks = objectiveRanks(v.trials);
  const bestId = v.sweep.best?.jobId;
  // Worst first, so the best trial is drawn last, on top of the others.
  const trials = [...v.trials].reverse();
  const tables = trials.map((t) => {
    const points = v.curves.get(t.jobId)?.points ?? [];
    return [points.map((p) => p.epoch), points.map((p) => plotValue(p.value))];
  });
  $('sweep-curves-note').textContent = `${v.sweep.spec.objective.metric} per epoch · pruned trials faded · best trial thick`;
  if (tables.length === 0) {
    v.chart?.destroy();
    v.chart = null;
    v.chartKey = null;
    return;
  }
  // Series are fixed when a uPlot chart is made: a new trial, a new state or a new best makes a new chart.
  const key = `${bestId}|${trials.map((t) => `${t.jobId}:${t.state}:${ranks.get(t.jobId)}`).join()}`;
  if (v.chartKey !== key) {
    v.chart?.destroy();
    v.chart = new uPlot({
      width: Math.max(300, el.clientWidth),
      height: CURVE_HEIGHT,
      scales: { x: { time: false } },
      // Epochs are whole numbers: no ticks at 1.5.
      axes: [{ label: 'epoch', incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000] }, { size: 64, label: v.sweep.spec.objective.metric }],
      series: [{ label: 'epoch' }, ...trials.map((t) => ({
        label: `#${t.trial}${t.jobId === bestId ? ' (best)' : ''}${t.state === 'pruned' ? ' (pruned)' : ''}`,
        stroke: rankColor(ranks.get(t.jobId), t.state === 'pruned' ? 0.25 : 0.85),
        width: t.jobId === bestId ? 3 : 1.25,
        points: { show: false },
        value: (u, value) => formatNumber(value),
      }))],
      legend: { live: true },
    }, [[], ...trials.map(() => [])], el);
    v.chartKey = key;
  }
  // One shared x for uPlot: join aligns the trials on the union of their epochs.
  v.chart.setData(tables.length === 1 ? tables[0] : uPlot.join(tables));
}

// ---- Parallel coordinates -------------------------------------------------------------------------------------

// One axis per parameter and one for the objective, each mapping a value to 0 (bottom) … 1 (top), with its ticks.
function parallelAxes(sweep, trials) {
  const axes = parameterPaths(sweep).map((path) => parameterAxis(path, sweep.spec.parameters[path]));
  const { metric, goal } = sweep.spec.objective;
  const values = trials.map((t) => plotValue(t.objective)).filter((x) => x !== null);
  const objective = numericAxis(metric, Math.min(...values), Math.max(...values), false);
  // Better is up, whichever the goal.
  const up = (x) => {
    const at = objective.position(x);
    return at !== null && goal === 'minimize' ? 1 - at : at;
  };
  axes.push({ ...objective, title: `${metric} (${goal === 'minimize' ? 'lower' : 'higher'} is better)`, position: up,
    ticks: objective.ticks.map((tick) => ({ ...tick, at: up(tick.value) })) });
  return axes;
}

function parameterAxis(path, space) {
  if (space.distribution) {
    return numericAxis(shortPath(path), space.min, space.max, space.distribution === 'log_uniform');
  }
  if (space.values.every((x) => typeof x === 'number')) {
    // A list of numbers is ticked at its values, the only ones trials can have.
    return numericAxis(shortPath(path), Math.min(...space.values), Math.max(...space.values), false, space.values);
  }
  // Lists, strings and objects (losses with their parameters): the spec's values, evenly spaced, first at the top.
  const keys = space.values.map(canonicalJson);
  const step = (i) => (keys.length === 1 ? 0.5 : 1 - i / (keys.length - 1));
  return {
    title: shortPath(path),
    position: (value) => {
      const i = keys.indexOf(canonicalJson(value));
      return i >= 0 ? step(i) : null;
    },
    ticks: space.values.map((value, i) => ({ at: step(i), label: shortLabel(value) })),
  };
}

function numericAxis(title, min, max, log, tickValues = null) {
  const t = log ? Math.log : (x) => x;
  const lo = t(min);
  const span = t(max) - lo;
  // A single value (or one trial so far) sits in the middle rather than dividing by zero.
  const position = (value) => (Number.isFinite(value) ? (span > 0 ? (t(value) - lo) / span : 0.5) : null);
  const middle = log ? Math.sqrt(min * max) : (min + max) / 2;
  const ticks = (tickValues ?? (Number.isFinite(span) ? (span > 0 ? [min, middle, max] : [min]) : []))
    .map((value) => ({ value, at: position(value), label: formatNumber(value) }));
  return { title: log ? `${title} (log)` : title, position, ticks };
}

function drawParallel(v) {
  const canvas = $('sweep-parallel');
  const width = canvas.clientWidth;
  const height = PARALLEL_HEIGHT;
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext('2d');
  ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, width, height);
  const trials = v.trials;
  const axes = parallelAxes(v.sweep, trials);
  canvas.setAttribute('aria-label', `Parallel coordinates of ${trials.length} trials: axes ${axes.map((a) => a.title).join(', ')}`);
  const left = 40;
  const right = 110; // room for the last axis's tick labels
  const top = 34;
  const bottom = 16;
  const x = (i) => left + (axes.length === 1 ? 0 : (i * (width - left - right)) / (axes.length - 1));
  const y = (at) => top + (1 - at) * (height - top - bottom);
  const ranks = objectiveRanks(trials);
  const bestId = v.sweep.best?.jobId;
  const paths = parameterPaths(v.sweep);
  // Worst first and the best last, so the strongest colours are on top.
  for (const t of [...trials].reverse()) {
    const values = [...paths.map((p) => t.parameters[p]), plotValue(t.objective)];
    const positions = axes.map((axis, i) => axis.position(values[i]));
    ctx.strokeStyle = rankColor(ranks.get(t.jobId), t.state === 'pruned' ? 0.35 : 0.9);
    ctx.lineWidth = t.jobId === bestId ? 3 : 1.25;
    ctx.beginPath();
    let drawing = false;
    positions.forEach((at, i) => {
      if (at === null) {
        drawing = false; // no value on this axis (no objective yet): a gap
        return;
      }
      if (drawing) {
        ctx.lineTo(x(i), y(at));
      } else {
        ctx.moveTo(x(i), y(at));
      }
      drawing = true;
    });
    ctx.stroke();
  }
  drawAxes(ctx, axes, x, y, top, height - bottom);
}

function drawAxes(ctx, axes, x, y, top, bottom) {
  ctx.font = '11px system-ui, sans-serif';
  ctx.textBaseline = 'middle';
  axes.forEach((axis, i) => {
    ctx.strokeStyle = '#57606a';
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(x(i), top);
    ctx.lineTo(x(i), bottom);
    ctx.stroke();
    ctx.fillStyle = '#1f2328';
    ctx.textAlign = i === 0 ? 'left' : i === axes.length - 1 ? 'right' : 'center';
    ctx.fillText(axis.title, x(i) + (i === 0 ? -8 : 0), top - 18);
    ctx.textAlign = 'left';
    for (const tick of axis.ticks) {
      ctx.beginPath();
      ctx.moveTo(x(i) - 3, y(tick.at));
      ctx.lineTo(x(i) + 3, y(tick.at));
      ctx.stroke();
      // A white halo keeps the label readable over the lines.
      ctx.strokeStyle = 'rgba(255, 255, 255, 0.9)';
      ctx.lineWidth = 3;
      ctx.strokeText(tick.label, x(i) + 6, y(tick.at));
      ctx.fillText(tick.label, x(i) + 6, y(tick.at));
      ctx.strokeStyle = '#57606a';
      ctx.lineWidth = 1;
    }
  });
}

// ---- Labels ---------------------------------------------------------------------------------------------------

// "optimizer.learningRate" → "learningRate": axis titles and column heads stay short; the full path is in the title.
function shortPath(path) {
  return path.split('.').at(-1);
}

// A parameter value as a short label: "huber δ=1", "[16,8]", "0.035".
function shortLabel(value) {
  if (value === null || value === undefined) {
    return '–';
  }
  if (Array.isArray(value)) {
    return `[${value.map(shortLabel).join(',')}]`;
  }
  if (typeof value === 'object') {
    if (Array.isArray(value.terms)) {
      return value.terms.map(shortLabel).join(' + '); // a combined loss
    }
    const params = Object.entries(value).filter(([k]) => k !== 'name').map(([k, x]) => `${SYMBOLS[k] ?? k}=${shortLabel(x)}`);
    return 'name' in value ? [String(value.name), ...params].join(' ') : params.join(' ');
  }
  return typeof value === 'number' ? formatNumber(value) : String(value);
}

// JSON with sorted keys: a trial's value and the spec's value are one value whatever their key order.
function canonicalJson(value) {
  if (Array.isArray(value)) {
    return `[${value.map(canonicalJson).join(',')}]`;
  }
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

// ---- Controls -------------------------------------------------------------------------------------------------

$('sweep-cancel').addEventListener('click', async () => {
  const v = view;
  if (!v?.id) {
    return;
  }
  $('sweep-cancel').disabled = true;
  try {
    await request(`/api/sweeps/${encodeURIComponent(v.id)}/cancel`, { method: 'POST' });
    if (!v.closed) {
      poll(v); // read the cancelled state now, and follow the trials until they stop
    }
  } catch (error) {
    $('sweep-error').hidden = false;
    $('sweep-error').textContent = `cancel: ${error.message}`;
  } finally {
    $('sweep-cancel').disabled = false;
  }
});

// uPlot has a fixed size and the canvas is drawn at its size: follow the layout.
new ResizeObserver(() => {
  if (!view?.sweep || $('sweep-view').hidden) {
    return;
  }
  view.chart?.setSize({ width: Math.max(300, $('chart-sweep').clientWidth), height: CURVE_HEIGHT });
  drawParallel(view);
}).observe($('sweep-view'));
