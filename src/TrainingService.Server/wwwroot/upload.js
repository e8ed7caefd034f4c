// Step one of a new job: a CSV into a dataset. The file goes up as the raw request body (text/csv), which the API
// streams column by column; XMLHttpRequest rather than fetch because only it reports upload progress. Then the
// dataset's typed schema (GET /api/datasets/{id}) and first rows (…/preview) are shown, or, when the API refuses the
// file, its problem (code, line, column) beside the file's own first lines with the offending one marked.

import { formatNumber } from './charts.js';
import { el, problemOf } from './elements.js';

const PREVIEW_ROWS = 10;
const LOCAL_PREVIEW_BYTES = 64 * 1024; // enough for the first rows of any file and the usual header problem
const LOCAL_PREVIEW_LINES = 12;

const $ = (id) => document.getElementById(id);

let api = null;
let onDataset = () => {};

/**
 * Wires the drop zone, the file picker and the dataset list. `dashboard` gives request() and the signed-in key;
 * `datasetChosen(dataset)` is called with each dataset shown (uploaded or picked), for the submit form.
 */
export function initUpload(dashboard, datasetChosen) {
  api = dashboard;
  onDataset = datasetChosen;
  const zone = $('drop-zone');
  zone.addEventListener('dragover', (event) => {
    event.preventDefault(); // without this the browser opens the dropped file instead
    zone.classList.add('dragging');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('dragging');
    const file = event.dataTransfer?.files?.[0];
    if (file) {
      upload(file);
    }
  });
  $('upload-file').addEventListener('change', (event) => {
    const file = event.target.files?.[0];
    if (file) {
      upload(file);
    }
  });
  $('dataset-select').addEventListener('change', async (event) => {
    if (!event.target.value) {
      return;
    }
    try {
      showDataset(await (await api.request(`/api/datasets/${event.target.value}`)).json());
    } catch (error) {
      showProblem(problemOf(error), null);
    }
  });
}

/** Fills the list of datasets already uploaded (newest first), choosing `chosen` (default: the current choice). */
export async function loadDatasets(chosen = $('dataset-select').value) {
  const select = $('dataset-select');
  try {
    const page = await (await api.request('/api/datasets?limit=100')).json();
    select.replaceChildren(el('option', { value: '' }, page.items.length ? '— choose —' : 'none yet'),
      ...page.items.map((d) => el('option', { value: d.id }, `${d.name} (${d.rowCount} rows)`)));
    select.value = chosen;
  } catch (error) {
    setStatus(`Could not list datasets: ${error.message}`);
  }
}

/** Forgets the dataset and problem shown (on sign-out). */
export function clearUpload() {
  for (const id of ['schema', 'preview', 'upload-problem-lines', 'upload-problem-text', 'dataset-select', 'dataset-title']) {
    $(id).replaceChildren();
  }
  $('dataset-view').hidden = true;
  $('upload-problem').hidden = true;
  $('upload-progress').hidden = true;
  $('upload-file').value = '';
  setStatus('');
}

function setStatus(text) {
  $('upload-status').textContent = text;
}

function upload(file) {
  const progress = $('upload-progress');
  progress.hidden = false;
  progress.value = 0;
  $('upload-problem').hidden = true;
  $('dataset-view').hidden = true;
  setStatus(`Uploading ${file.name}…`);
  const xhr = new XMLHttpRequest();
  xhr.open('POST', `/api/datasets?name=${encodeURIComponent(file.name.replace(/\.[^.]*$/, '') || file.name)}`);
  const key = api.key();
  if (key) {
    xhr.setRequestHeader('Authorization', `Bearer ${key}`);
  }
  xhr.setRequestHeader('Content-Type', 'text/csv');
  xhr.responseType = 'json';
  xhr.upload.addEventListener('progress', (event) => {
    if (event.lengthComputable) {
      progress.value = (100 * event.loaded) / event.total;
      setStatus(`Uploading ${file.name}: ${kib(event.loaded)} of ${kib(event.total)}`);
    }
  });
  // The body is sent; the server is still reading it into columns.
  xhr.upload.addEventListener('load', () => setStatus(`Uploaded ${file.name}; the service is reading it…`));
  xhr.addEventListener('load', () => {
    progress.value = 100;
    const body = xhr.response ?? {};
    if (xhr.status === 200 || xhr.status === 201) {
      setStatus(xhr.status === 201 ? `Stored ${file.name} as a new dataset.` : `${file.name} was uploaded before; showing that dataset.`);
      showDataset(body);
      loadDatasets(body.id);
    } else {
      setStatus(`The service refused ${file.name}.`);
      showProblem({ code: body.code ?? String(xhr.status), detail: body.detail ?? xhr.statusText, ...body }, file);
    }
  });
  xhr.addEventListener('error', () => {
    setStatus(`The upload of ${file.name} failed: the connection broke.`);
    showProblem({ code: 'network', detail: 'The connection broke during the upload.' }, file);
  });
  xhr.send(file);
}

function kib(bytes) {
  return bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** The dataset's schema and first rows, then tells the submit form. */
export async function showDataset(dataset) {
  $('upload-problem').hidden = true;
  $('dataset-view').hidden = false;
  $('dataset-title').textContent = `${dataset.name}: ${dataset.rowCount} rows, ${dataset.columns.length} columns`;
  renderSchema(dataset.columns);
  onDataset(dataset);
  try {
    const preview = await (await api.request(`/api/datasets/${dataset.id}/preview?rows=${PREVIEW_ROWS}`)).json();
    renderPreview(preview);
  } catch (error) {
    $('preview').replaceChildren(el('caption', {}, `Preview unavailable: ${error.message}`));
  }
}

function renderSchema(columns) {
  $('schema').replaceChildren(
    el('caption', {}, 'Columns as typed by the service'),
    el('thead', {}, el('tr', {}, ['column', 'type', 'missing', 'distinct', 'statistics'].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, columns.map((c) => el('tr', { 'data-column': c.name },
      el('th', { scope: 'row' }, c.name),
      el('td', {}, el('span', { class: `type ${c.type}` }, c.type), c.usable ? null : el('span', { class: 'hint' }, ' (not a feature)')),
      el('td', { class: 'num' }, c.missing),
      el('td', { class: 'num' }, c.distinctCapped ? `>${c.distinct}` : c.distinct),
      el('td', { class: 'stats' }, statistics(c))))));
}

function statistics(column) {
  if (column.stats) {
    const s = column.stats;
    return `min ${formatNumber(s.min)} · max ${formatNumber(s.max)} · mean ${formatNumber(s.mean)} · std ${formatNumber(s.std)}`;
  }
  if (column.topValues?.length) {
    return column.topValues.map((v) => `${v.value} (${v.count})`).join(' · ');
  }
  return column.note ?? '';
}

function renderPreview(preview) {
  $('preview').replaceChildren(
    el('caption', {}, `First ${preview.rows.length} rows as written`),
    el('thead', {}, el('tr', {}, preview.columns.map((c) => el('th', { scope: 'col' }, c)))),
    el('tbody', {}, preview.rows.map((row) => el('tr', {}, row.map((cell) =>
      cell === null || cell === '' ? el('td', { class: 'missing', title: 'missing' }, '·') : el('td', {}, cell))))));
}

/** The API's problem, and, for a file, its first lines with the one the problem names marked. */
async function showProblem(problem, file) {
  const box = $('upload-problem');
  box.hidden = false;
  const where = [problem.line ? `line ${problem.line}` : null, problem.column ? `column ${problem.column}` : null].filter(Boolean).join(', ');
  $('upload-problem-text').replaceChildren(el('code', {}, problem.code), where ? ` at ${where}` : '', `: ${problem.detail ?? ''}`);
  const excerpt = $('upload-problem-lines');
  excerpt.replaceChildren();
  if (!file) {
    return;
  }
  const text = await file.slice(0, LOCAL_PREVIEW_BYTES).text();
  const lines = text.split(/\r?\n/);
  // Show from the start, or around the named line when it is further down.
  const first = problem.line && problem.line > LOCAL_PREVIEW_LINES ? problem.line - 3 : 1;
  const shown = lines.slice(first - 1, first - 1 + LOCAL_PREVIEW_LINES);
  excerpt.start = first;
  excerpt.replaceChildren(...shown.map((line, i) => el('li', { class: first + i === problem.line ? 'bad-line' : null,
    'aria-current': first + i === problem.line ? 'true' : null }, line)));
}
