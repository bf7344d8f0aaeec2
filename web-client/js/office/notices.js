// Small notices that do not block the page (issue 14): "your request was scheduled", "this page
// has changes, shown once you are done". They sit in #notices under the page banner, in the
// page's flow (never over a button), and go by themselves after a while or with their close
// button. One notice per key: a newer one with the same key replaces it. A language switch
// (app.js's `huizhen:lang`) writes every notice shown again in the new language, in place.
import { h } from '../dom.js';
import { t } from '../i18n.js';

const SHOWN_MS = 12000;
/** @typedef {Array<Node | string | null | false>} Content */
/** @type {Map<string, { el: HTMLElement, timer: ReturnType<typeof setTimeout> | null, relabel: () => void }>} */
const shown = new Map();

/** The container, made on first use (under #banner). */
function box() {
  let el = document.getElementById('notices');
  if (!el) {
    el = h('div', { id: 'notices', class: 'notices', 'aria-live': 'polite', testid: 'notices' });
    const banner = document.getElementById('banner');
    if (banner) banner.after(el); else document.body.prepend(el);
  }
  return el;
}

/**
 * Shows a notice; returns its element.
 * @param {string} key one notice per key
 * @param {() => Content} content what it says, built again after a language switch (so: its
 *   texts read from the catalogue inside this function)
 * @param {{ testid?: string, attrs?: Record<string, string>, sticky?: boolean }} [opts]
 *   sticky: stays until closed or dropped (dropNotice)
 */
export function showNotice(key, content, { testid = 'notice', attrs = {}, sticky = false } = {}) {
  dropNotice(key);
  const close = h('button', { type: 'button', class: 'ghost small close', testid: `${testid}-close`, 'aria-label': t('notice.close') }, '×');
  let body = h('span', { class: 'grow' }, content());
  const el = h('div', { class: 'notice-item', role: 'status', testid, ...attrs }, body, close);
  close.addEventListener('click', () => dropNotice(key));
  box().append(el);
  const relabel = () => {
    const next = h('span', { class: 'grow' }, content());
    body.replaceWith(next);
    body = next;
    close.setAttribute('aria-label', t('notice.close'));
  };
  shown.set(key, { el, timer: sticky ? null : setTimeout(() => dropNotice(key), SHOWN_MS), relabel });
  return el;
}

/** Writes every notice shown again in the current language (the same elements stay). */
export function relabelNotices() {
  for (const n of shown.values()) n.relabel();
}

window.addEventListener('huizhen:lang', relabelNotices);

/** Removes the notice of `key`, if shown. @param {string} key */
export function dropNotice(key) {
  const n = shown.get(key);
  if (!n) return;
  if (n.timer) clearTimeout(n.timer);
  n.el.remove();
  shown.delete(key);
}

/** Removes every notice (sign-out). */
export function dropNotices() {
  for (const key of [...shown.keys()]) dropNotice(key);
}
