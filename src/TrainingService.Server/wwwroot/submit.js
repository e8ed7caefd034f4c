// Step two of a new job: a form for POST /api/jobs, built from the chosen dataset's columns and the loss catalogue
// (GET /api/losses). The fixed parts of the form are in index.html; each input that maps to the spec names its JSON
// path in data-field (e.g. "model.hiddenLayers") and its kind in data-type, so one function reads the spec and a problem
// from the API lands at the input its `field` names. Validation is the API's: the form only offers sensible choices.

import { el, problemOf } from './elements.js';

// The loss a target gets first, by the task the target suggests.
const DEFAULT_LOSS = { regression: 'mse', binary: 'bce_with_logits', multiclass: 'cross_entropy' };

const $ = (id) => document.getElementById(id);

let api = null;
let catalogue = null;  // GET /api/losses
let dataset = null;    // the dataset the form is built for
let lossTerms = [];    // [{ name, weight, params: { name: value } }] as the person set them

/** Wires the form. `dashboard` gives request() and openJob(id), which shows the submitted job. */
export function initSubmit(dashboard) {
  api = dashboard;
  const form = $('submit-form');
  form.addEventListener('input', () => onFormChange());
  form.addEventListener('change', () => onFormChange());
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    submit();
  });
  $('f-target').addEventListener('change', () => targetChanged());
  $('f-class-weights').addEventListener('change', () => renderClassWeights());
  $('add-loss-term').addEventListener('click', () => {
    lossTerms.push({ name: lossChoices()[0]?.name, weight: 1, params: {} });
    renderLossTerms();
    $(`loss-name-${lossTerms.length - 1}`).focus();
  });
  $('copy-spec').addEventListener('click', () => copySpec());
}

/** Loads the loss catalogue (once). */
export async function loadCatalogue() {
  if (!catalogue) {
    catalogue = await (await api.request('/api/losses')).json();
  }
}

/** Rebuilds the dataset-dependent parts of the form for `chosen`, and shows the form. */
export async function showForDataset(chosen) {
  try {
    await loadCatalogue();
  } catch (error) {
    showGeneralProblem(problemOf(error));
    return;
  }
  dataset = chosen;
  const usable = dataset.columns.filter((c) => c.usable);
  // The last usable column is the usual place for a label.
  $('f-target').replaceChildren(...usable.map((c) => el('option', { value: c.name }, `${c.name} (${c.type})`)));
  $('f-target').value = usable.at(-1)?.name ?? '';
  $('submit-form').hidden = false;
  targetChanged();
}

// ---- Target, features and the losses that fit -----------------------------------------------------------------

function targetColumn() {
  return dataset?.columns.find((c) => c.name === $('f-target').value) ?? null;
}

/** The classes a target column has, as the API would label it (ColumnResolver.Labels), or null when not a class column. */
function classLabels(column) {
  const labelled = column.type === 'boolean' || column.type === 'categorical' || (column.type === 'numeric' && column.integral === true);
  if (!labelled || column.distinctCapped || !column.topValues) {
    return null;
  }
  return column.topValues.map((v) => v.value);
}

/** The tasks a single target column allows, in the API's order of preference. */
function targetTasks(column) {
  const tasks = column.type === 'numeric' ? ['regression'] : [];
  const classes = classLabels(column)?.length ?? 0;
  if (classes >= 2 && column.distinct >= 2) {
    tasks.push(...(column.distinct === 2 ? ['binary', 'multiclass'] : ['multiclass']));
  }
  return tasks;
}

function lossChoices() {
  const column = targetColumn();
  const tasks = column ? targetTasks(column) : [];
  return catalogue.losses.filter((l) => l.tasks.some((t) => tasks.includes(t)));
}

function targetChanged() {
  const column = targetColumn();
  if (!column) {
    return;
  }
  const tasks = targetTasks(column);
  $('f-target-task').textContent = tasks.length ? `task: ${tasks.join(' or ')}` : 'no loss fits this column';
  renderFeatures(column);
  const first = catalogue.losses.find((l) => l.name === DEFAULT_LOSS[tasks[0]]) ?? lossChoices()[0];
  lossTerms = first ? [{ name: first.name, weight: 1, params: {} }] : [];
  renderLossTerms();
  const classes = classLabels(column);
  $('class-weights-block').hidden = !tasks.some((t) => t === 'binary' || t === 'multiclass');
  $('f-class-weights').value = '';
  renderClassWeights(classes);
  onFormChange();
}

function renderFeatures(target) {
  const box = $('f-features');
  box.replaceChildren(el('legend', {}, 'Features'), ...dataset.columns.filter((c) => c.name !== target.name).map((c, i) =>
    el('label', { class: 'check', title: c.usable ? null : c.note },
      el('input', { type: 'checkbox', id: `feature-${i}`, 'data-feature': c.name, checked: c.usable, disabled: !c.usable }),
      ` ${c.name}`, c.usable ? null : el('span', { class: 'hint' }, ` (${c.type})`))));
}

// ---- Loss terms -----------------------------------------------------------------------------------------------

/** One block per term: the loss, its weight (when combined) and its parameters with the catalogue's defaults and ranges. */
function renderLossTerms() {
  const combined = lossTerms.length > 1;
  const choices = lossChoices();
  $('loss-terms').replaceChildren(...lossTerms.map((term, i) => {
    const prefix = combined ? `loss.terms[${i}]` : 'loss';
    const definition = catalogue.losses.find((l) => l.name === term.name);
    const select = el('select', { id: `loss-name-${i}`, 'data-field': `${prefix}.name` },
      choices.map((l) => el('option', { value: l.name, selected: l.name === term.name }, `${l.name} (${l.tasks.join(', ')})`)));
    select.addEventListener('change', () => {
      lossTerms[i] = { name: select.value, weight: term.weight, params: {} };
      renderLossTerms();
      $(`loss-name-${i}`).focus();
      onFormChange();
    });
    return el('div', { class: 'loss-term', 'data-field': combined ? prefix : null },
      el('div', { class: 'field' }, el('label', { for: `loss-name-${i}` }, combined ? `Loss term ${i + 1}` : 'Loss'), select,
        definition ? el('span', { class: 'hint' }, `${definition.inputSpace.replaceAll('_', ' ')} · ${definition.targets}`) : null,
        combined ? removeTermButton(i) : null),
      combined ? numberField(`loss-weight-${i}`, 'Term weight', `${prefix}.weight`, term.weight, null, (v) => { term.weight = v; }) : null,
      ...(definition?.parameters ?? []).map((p) => parameterField(term, p, i, prefix)));
  }));
}

function removeTermButton(i) {
  const button = el('button', { type: 'button', class: 'link', 'aria-label': `Remove loss term ${i + 1}` }, 'Remove');
  button.addEventListener('click', () => {
    lossTerms.splice(i, 1);
    renderLossTerms();
    onFormChange();
    $('add-loss-term').focus();
  });
  return button;
}

/** An input for one catalogue parameter; the spec carries it only when it differs from the default. */
function parameterField(term, parameter, i, prefix) {
  const id = `loss-${i}-${parameter.name}`;
  const field = `${prefix}.${parameter.name}`;
  const value = term.params[parameter.name] ?? parameter.default;
  const hint = [parameter.range ? `range ${parameter.range}` : null, `default ${parameter.default ?? 'none'}`, parameter.description]
    .filter(Boolean).join(' · ');
  if (parameter.type === 'boolean') {
    const input = el('input', { type: 'checkbox', id, 'data-field': field, checked: Boolean(value), 'aria-describedby': `${id}-hint` });
    input.addEventListener('change', () => setParam(term, parameter, input.checked));
    return el('div', { class: 'field' }, el('label', { for: id }, parameter.name), input, el('span', { id: `${id}-hint`, class: 'hint' }, hint));
  }
  if (parameter.type === 'number_array') {
    const input = el('input', { type: 'text', id, 'data-field': field, value: Array.isArray(value) ? value.join(', ') : '',
      placeholder: 'numbers, comma-separated', 'aria-describedby': `${id}-hint` });
    input.addEventListener('input', () => setParam(term, parameter, input.value.trim()
      ? input.value.split(',').map((v) => Number(v.trim())) : null));
    return el('div', { class: 'field' }, el('label', { for: id }, parameter.name), input, el('span', { id: `${id}-hint`, class: 'hint' }, hint));
  }
  return numberField(id, parameter.name, field, value, hint, (v) => setParam(term, parameter, v), parameter.type === 'integer' ? 1 : 'any');
}

function setParam(term, parameter, value) {
  if (value === null || value === parameter.default || (Array.isArray(value) && value.length === 0)) {
    delete term.params[parameter.name];
  } else {
    term.params[parameter.name] = value;
  }
  onFormChange();
}

function numberField(id, label, field, value, hint, set, step = 'any') {
  const input = el('input', { type: 'number', id, 'data-field': field, step, value: value ?? '', 'aria-describedby': hint ? `${id}-hint` : null });
  input.addEventListener('input', () => set(input.value === '' ? null : Number(input.value)));
  return el('div', { class: 'field' }, el('label', { for: id }, label), input, hint ? el('span', { id: `${id}-hint`, class: 'hint' }, hint) : null);
}

function lossSpec() {
  const term = (t) => ({ name: t.name, ...t.params });
  if (lossTerms.length > 1) {
    return { terms: lossTerms.map((t) => ({ ...term(t), weight: t.weight ?? 1 })) };
  }
  const only = lossTerms[0];
  return only && Object.keys(only.params).length === 0 ? only.name : only ? term(only) : undefined;
}

// ---- Class weights --------------------------------------------------------------------------------------------

function renderClassWeights(classes = classLabels(targetColumn() ?? {}) ?? []) {
  const custom = $('f-class-weights').value === 'custom';
  $('class-weight-values').replaceChildren(...(custom ? classes : []).map((label, i) =>
    el('div', { class: 'field' }, el('label', { for: `class-weight-${i}` }, `weight of “${label}”`),
      el('input', { type: 'number', id: `class-weight-${i}`, 'data-class': label, min: 0, step: 'any', value: 1 }))));
  onFormChange();
}

function classWeightsSpec() {
  if ($('class-weights-block').hidden) {
    return undefined;
  }
  const choice = $('f-class-weights').value;
  if (choice === 'balanced') {
    return 'balanced';
  }
  if (choice !== 'custom') {
    return undefined;
  }
  return Object.fromEntries([...document.querySelectorAll('#class-weight-values input')].map((i) => [i.dataset.class, Number(i.value)]));
}

// ---- The spec -------------------------------------------------------------------------------------------------

/** Sets obj.a.b = value for path "a.b". */
function setPath(target, path, value) {
  const parts = path.split('.');
  const last = parts.pop();
  const parent = parts.reduce((node, part) => (node[part] ??= {}), target);
  parent[last] = value;
}

/** A fixed input's value as its data-type says, or undefined when it is empty, at its default, or hidden. */
function fixedValue(input) {
  if (input.closest('[hidden]') || input.disabled) {
    return undefined;
  }
  switch (input.dataset.type) {
    case 'bool':
      return input.checked === (input.dataset.default === 'true') ? undefined : input.checked;
    case 'number':
      return input.value === '' ? undefined : Number(input.value);
    case 'list':
      return input.value.trim() === '' ? undefined : input.value.split(',').map((v) => Number(v.trim()));
    default:
      return input.value === '' ? undefined : input.value;
  }
}

/** The job spec the form describes, as POST /api/jobs takes it. */
export function buildSpec() {
  const spec = { datasetId: dataset?.id, target: $('f-target').value || undefined };
  const boxes = [...document.querySelectorAll('#f-features input[data-feature]:not(:disabled)')];
  if (boxes.some((b) => !b.checked)) {
    spec.features = boxes.filter((b) => b.checked).map((b) => b.dataset.feature);
  }
  spec.loss = lossSpec();
  spec.classWeights = classWeightsSpec();
  for (const input of document.querySelectorAll('#submit-form [data-type]')) {
    const value = fixedValue(input);
    if (value !== undefined) {
      setPath(spec, input.dataset.field, value);
    }
  }
  return JSON.parse(JSON.stringify(spec)); // drops the undefined members
}

function onFormChange() {
  for (const part of document.querySelectorAll('#submit-form [data-show-if]')) {
    const [id, values] = part.dataset.showIf.split(':');
    const input = $(id);
    const value = input.type === 'checkbox' ? String(input.checked) : input.value;
    part.hidden = !values.split(' ').includes(value);
  }
  $('spec-json').textContent = JSON.stringify(buildSpec(), null, 2);
}

async function copySpec() {
  const text = $('spec-json').textContent;
  try {
    await navigator.clipboard.writeText(text);
    $('copy-status').textContent = 'Copied.';
  } catch {
    // No clipboard permission (an insecure origin, say): select the text for a manual copy instead.
    getSelection().selectAllChildren($('spec-json'));
    $('copy-status').textContent = 'Selected: press Ctrl+C to copy.';
  }
}

// ---- Submitting and the API's problems ------------------------------------------------------------------------

async function submit() {
  clearProblems();
  const button = $('submit-job');
  button.disabled = true;
  $('submit-status').textContent = 'Submitting…';
  try {
    const response = await api.request('/api/jobs', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(buildSpec()),
    });
    const job = await response.json();
    $('submit-status').textContent = `Submitted job ${job.id}.`;
    api.openJob(job.id);
  } catch (error) {
    $('submit-status').textContent = '';
    showProblemAtField(problemOf(error));
  } finally {
    button.disabled = false;
  }
}

function clearProblems() {
  $('submit-problem').hidden = true;
  for (const note of document.querySelectorAll('#submit-form .field-problem')) {
    note.remove();
  }
  for (const input of document.querySelectorAll('#submit-form [aria-invalid]')) {
    input.removeAttribute('aria-invalid');
    input.setAttribute('aria-describedby', (input.getAttribute('aria-describedby') ?? '').replace(/\s*field-problem-note/, '').trim());
  }
}

/** The input for an API field path: exact, else its nearest named parent ("loss.terms[1].delta" → "loss.terms[1]" → "loss"). */
function inputFor(field) {
  for (let path = field; path; path = path.replace(/(\[\d+\]|\.[^.[]*)$/, '')) {
    const found = document.querySelector(`#submit-form [data-field="${CSS.escape(path)}"]`);
    if (found && !found.closest('[hidden]')) {
      return found;
    }
    if (!/(\[\d+\]|\.[^.[]*)$/.test(path)) {
      break;
    }
  }
  return null;
}

function showProblemAtField(problem) {
  const target = problem.field ? inputFor(problem.field) : null;
  if (!target) {
    showGeneralProblem(problem);
    return;
  }
  const note = el('p', { class: 'field-problem', id: 'field-problem-note', role: 'alert' }, el('code', {}, problem.code), `: ${problem.detail}`);
  const control = target.matches('input, select, textarea') ? target : target.querySelector('input, select, textarea') ?? target;
  control.setAttribute('aria-invalid', 'true');
  control.setAttribute('aria-describedby', `${control.getAttribute('aria-describedby') ?? ''} field-problem-note`.trim());
  (target.closest('.field') ?? target).after(note);
  control.focus();
}

function showGeneralProblem(problem) {
  const box = $('submit-problem');
  box.hidden = false;
  box.replaceChildren(el('code', {}, problem.code), problem.field ? ` (${problem.field})` : '', `: ${problem.detail}`);
}
