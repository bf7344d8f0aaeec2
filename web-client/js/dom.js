// DOM building and the small pieces every office screen shares: h() builds elements (text is
// never parsed as HTML), form fields, error boxes, the page banner.
import { errorText, label, t } from './i18n.js';

/** @typedef {import('./i18n.js').ErrorLike} ErrorLike */
/** @typedef {import('./i18n.js').Params} Params */

/** Attributes set as properties (their attribute only sets the initial state, or none exists). */
const PROPERTIES = ['value', 'checked', 'disabled', 'required', 'selected', 'hidden', 'muted', 'autoplay', 'playsInline'];

/**
 * Builds an element: h('button', { onclick, testid: 'x', dataset: {…} }, 'text', child…). Text
 * is never HTML: names and chat come from other people. The one element builder of the whole
 * client (the call's screens use it too).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, any> | null} [attrs]
 * @param {...any} kids
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'testid') el.dataset.testid = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (PROPERTIES.includes(k)) /** @type {any} */ (el)[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of kids.flat(Infinity)) {
    if (c != null && c !== false) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/**
 * <option>s for an enum group, labelled from the catalogue.
 * @param {string} group
 * @param {readonly string[]} values
 * @param {string | null} [selected]
 */
export const options = (group, values, selected) =>
  values.map((v) => h('option', { value: v, selected: v === selected }, label(group, v)));

/**
 * A labelled form control with an optional hint under it.
 * @param {string} key
 * @param {Node} control
 * @param {string | Node | null} [hint]
 */
export function field(key, control, hint) {
  return h('label', { class: 'field' }, h('span', {}, t(key)), control, hint && h('small', {}, hint));
}

/**
 * An error in the user's language, from an ApiError (by its code) or a plain string.
 * @param {unknown} err
 * @param {Params} [params]
 */
export function errorBox(err, testid = 'form-error', params = {}) {
  return h('p', { class: 'error', role: 'alert', testid, 'data-code': /** @type {ErrorLike | null | undefined} */ (err)?.code || null },
    typeof err === 'string' ? err : errorText(err, params));
}

/** @typedef {(err: ErrorLike | null | undefined) => Params} ParamsOf */
/** @type {ParamsOf} */
let paramsOf = (_err) => ({});
/** Sets how error parameters (e.g. {name} for specialist_busy) are found for an error. @param {ParamsOf} fn */
export function setErrorParams(fn) { paramsOf = fn; }
/** @param {unknown} err an ApiError, or whatever else was thrown */
export const errParams = (err) => paramsOf(/** @type {ErrorLike | null | undefined} */ (err));

/** Shows a message above the page: an ApiError, or a string with kind 'notice'. @param {unknown} err */
export function showBanner(err, kind = 'error') {
  const banner = document.getElementById('banner');
  if (!banner) return;
  banner.replaceChildren(typeof err === 'string' ? err : errorText(err, errParams(err)));
  banner.className = kind;
  banner.dataset.code = typeof err === 'string' ? '' : (/** @type {ErrorLike | null | undefined} */ (err)?.code || '');
  banner.hidden = false;
}

export function clearBanner() {
  const banner = document.getElementById('banner');
  if (!banner) return;
  banner.hidden = true;
  banner.replaceChildren();
}

/**
 * Runs a form's submit: disables its buttons, shows a failure inside the form (testid
 * x-error for a form x-form) in the user's language.
 * @param {HTMLFormElement} form
 * @param {() => Promise<any>} fn
 */
export async function submitting(form, fn) {
  const testid = (form.dataset.testid || 'form').replace(/-form$/, '') + '-error';
  form.querySelector(':scope > .error')?.remove();
  const buttons = [...form.querySelectorAll('button')];
  buttons.forEach((b) => { b.disabled = true; });
  try {
    await fn();
  } catch (e) {
    if (form.isConnected) form.append(errorBox(e, testid, errParams(e)));
    else showBanner(e);
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

/**
 * A form whose submit runs `fn` through submitting().
 * @param {Record<string, any> | null} attrs
 * @param {any[]} kids
 * @param {(e: SubmitEvent) => Promise<any>} fn
 */
export function form(attrs, kids, fn) {
  const f = h('form', attrs, kids);
  f.addEventListener('submit', (e) => {
    e.preventDefault();
    submitting(f, () => fn(/** @type {SubmitEvent} */ (e)));
  });
  return f;
}
