// Building DOM for the upload, submit and job-action panels. Text always goes in as text nodes, never as HTML, so
// column names and cells from an uploaded file cannot inject markup; the content security policy forbids inline
// style attributes, so looks come from classes in dashboard.css.

/**
 * el('td', { class: 'num', title: 'x' }, 'text', child): attributes with a value of null, undefined or false are left
 * out; true gives an empty attribute (hidden, checked, disabled); children are strings, numbers or nodes.
 */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) {
      continue;
    }
    node.setAttribute(name, value === true ? '' : String(value));
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false).map((c) => (c instanceof Node ? c : String(c))));
  return node;
}

/** The problem+json body a failed request carried (dashboard.js's request() attaches it to the error), or a stand-in. */
export function problemOf(error) {
  return error.problem ?? { code: 'error', detail: error.message };
}

/** Saves a blob as a file: a temporary object URL clicked through a download link. */
export function saveBlob(blob, fileName) {
  const url = URL.createObjectURL(blob);
  const link = el('a', { href: url, download: fileName, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  // The click has handed the blob to the download by the next task.
  setTimeout(() => URL.revokeObjectURL(url), 0);
}
