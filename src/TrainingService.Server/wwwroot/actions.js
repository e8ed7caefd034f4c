// What a person does with the job being watched, besides cancelling it (dashboard.js): retry it, download its history
// as CSV and its model, and predict with the model from a small form or pasted CSV rows. Downloads go through
// fetch, since the key travels in a header a plain link cannot send, and are saved from the response's blob.

import { formatNumber } from './charts.js';
import { el, problemOf, saveBlob } from './elements.js';

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

const $ = (id) => document.getElementById(id);

let api = null;
let shown = null;        // { id, status, modelEpoch } of the job whose actions are shown
let model = null;        // the model document of `shown`, once the predict panel has loaded it
let modelJobId = null;

/** Wires the buttons and forms. `dashboard` gives request() and openJob(id). */
export function initActions(dashboard) {
  api = dashboard;
  $('retry').addEventListener('click', () => act('retry', retry));
  $('download-history').addEventListener('click', () => act('history', () => download(`/api/jobs/${shown.id}/history`, 'text/csv',
    `job-${shown.id}-history.csv`)));
  $('download-model').addEventListener('click', () => act('model', () => download(`/api/jobs/${shown.id}/model`, 'application/json',
    `job-${shown.id}-model.json`)));
  $('download-onnx').addEventListener('click', () => act('onnx', () => download(`/api/jobs/${shown.id}/model?format=onnx`, 'application/onnx',
    `job-${shown.id}.onnx`)));
  $('predict-panel').addEventListener('toggle', () => {
    if ($('predict-panel').open) {
      loadModel();
    }
  });
  $('predict-form').addEventListener('submit', (event) => {
    event.preventDefault();
    predict([formRow()]);
  });
  $('predict-csv-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const rows = csvRows($('predict-csv').value);
    if (rows.length) {
      predict(rows);
    }
  });
}

/**
 * Shows the actions that fit `job` ({ id, status, modelEpoch }, or null for none): retry once it has ended (and the
 * caller may submit), the model and prediction once a model is stored. Cheap: called on every history poll.
 */
export function renderJobActions(job, role) {
  const changed = job?.id !== shown?.id;
  shown = job;
  $('job-actions').hidden = !job;
  if (!job) {
    $('predict-panel').hidden = true;
    return;
  }
  $('retry').hidden = !TERMINAL.has(job.status) || role === 'viewer';
  const hasModel = Boolean(job.modelEpoch);
  $('download-model').hidden = !hasModel;
  $('download-onnx').hidden = !hasModel;
  $('predict-panel').hidden = !hasModel;
  if (changed) {
    $('action-status').textContent = '';
    $('predict-panel').open = false;
    $('predict-results').replaceChildren();
    $('predict-problem').hidden = true;
  }
}

async function act(what, action) {
  const status = $('action-status');
  status.textContent = `${what}…`;
  try {
    await action();
    status.textContent = '';
  } catch (error) {
    status.textContent = `${what}: ${error.message}`;
  }
}

async function retry() {
  const job = await (await api.request(`/api/jobs/${shown.id}/retry`, { method: 'POST' })).json();
  api.openJob(job.id);
}

async function download(url, accept, fileName) {
  const response = await api.request(url, { headers: { Accept: accept } });
  saveBlob(await response.blob(), fileName);
}

// ---- Predict --------------------------------------------------------------------------------------------------

async function loadModel() {
  if (modelJobId === shown?.id && model) {
    return;
  }
  const id = shown.id;
  try {
    const loaded = await (await api.request(`/api/jobs/${id}/model`)).json();
    if (shown?.id !== id) {
      return;
    }
    model = loaded;
    modelJobId = id;
    renderPredictFields();
  } catch (error) {
    showPredictProblem(problemOf(error));
  }
}

/** One input per feature column the model takes: a list of its categories, or a number. */
function renderPredictFields() {
  $('predict-columns').textContent = model.features.map((f) => f.column).join(',');
  $('predict-fields').replaceChildren(...model.features.map((feature, i) => {
    const id = `predict-${i}`;
    const input = feature.categories
      ? el('select', { id, 'data-column': feature.column },
        el('option', { value: '' }, '(missing)'), feature.categories.map((c) => el('option', { value: c }, c)))
      : feature.type === 'boolean'
        ? el('select', { id, 'data-column': feature.column }, el('option', { value: '' }, '(missing)'), el('option', {}, 'true'), el('option', {}, 'false'))
        : el('input', { id, type: 'number', step: 'any', 'data-column': feature.column, placeholder: 'missing' });
    return el('div', { class: 'field' }, el('label', { for: id }, feature.column), input);
  }));
}

function typedCell(feature, text) {
  const value = text?.trim() ?? '';
  if (value === '') {
    return null;
  }
  if (feature?.type === 'boolean') {
    return value.toLowerCase() === 'true';
  }
  return feature?.categories || Number.isNaN(Number(value)) ? value : Number(value);
}

function formRow() {
  return Object.fromEntries(model.features.map((f, i) => [f.column, typedCell(f, $(`predict-${i}`).value)]));
}

/**
 * Rows from pasted CSV: a first line that names every feature column is a header; otherwise each line holds the
 * values in the model's feature order. Quoted cells may hold commas; "" is a quote.
 */
function csvRows(text) {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '').map(splitCsvLine);
  if (lines.length === 0) {
    return [];
  }
  const features = model.features.map((f) => f.column);
  const header = features.every((name) => lines[0].includes(name)) ? lines.shift() : features;
  return lines.map((cells) => Object.fromEntries(model.features.map((f) => [f.column, typedCell(f, cells[header.indexOf(f.column)])])));
}

function splitCsvLine(line) {
  const cells = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted && c === '"' && line[i + 1] === '"') {
      cell += '"';
      i++;
    } else if (c === '"') {
      quoted = !quoted;
    } else if (c === ',' && !quoted) {
      cells.push(cell);
      cell = '';
    } else {
      cell += c;
    }
  }
  cells.push(cell);
  return cells;
}

async function predict(rows) {
  $('predict-problem').hidden = true;
  try {
    const response = await api.request(`/api/jobs/${shown.id}/predict`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ rows }),
    });
    renderPredictions((await response.json()).predictions);
  } catch (error) {
    showPredictProblem(problemOf(error));
  }
}

function renderPredictions(predictions) {
  $('predict-results').replaceChildren(
    el('caption', {}, 'Predictions'),
    el('thead', {}, el('tr', {}, ['row', 'prediction', 'details'].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, predictions.map((p, i) => el('tr', {},
      el('td', { class: 'num' }, i + 1),
      el('td', { class: 'prediction' }, p.label ?? (p.values ?? []).map(formatNumber).join(', ')),
      el('td', {}, [
        p.probability !== undefined && p.probability !== null ? `probability ${formatNumber(p.probability)}` : null,
        p.probabilities ? Object.entries(p.probabilities).map(([k, v]) => `${k}: ${formatNumber(v)}`).join(' · ') : null,
        p.notes?.length ? `notes: ${p.notes.join('; ')}` : null,
      ].filter(Boolean).join(' — '))))));
}

function showPredictProblem(problem) {
  const box = $('predict-problem');
  box.hidden = false;
  box.replaceChildren(el('code', {}, problem.code), problem.field ? ` (${problem.field})` : '', `: ${problem.detail}`);
}
