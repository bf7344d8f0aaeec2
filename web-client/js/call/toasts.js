// Passing notes in the call: who joined or left. Small, at the stage's corner, gone after a few
// seconds by themselves; never in the notice bar, whose warnings and errors must stay readable.
import { h } from './dom.js';

/** How long a note stays (ms). */
const SHOW_MS = 5000;
/** At most this many at once: a busy moment drops the oldest. */
const MAX = 4;

/**
 * Adds a note to `box`; `text` is a function so that a language switch while it is shown can
 * write it again (relabel()).
 * @param {HTMLElement} box
 * @param {() => string} text
 * @param {Record<string, string>} data dataset of the note (what, participant), for tests and styling
 */
export function toast(box, text, data) {
  const el = h('div', { class: 'call-toast', testid: 'call-toast', role: 'status', dataset: data }, text());
  /** @type {any} */ (el).hzText = text;
  box.append(el);
  while (box.childElementCount > MAX) box.firstElementChild?.remove();
  setTimeout(() => el.remove(), SHOW_MS);
}

/** Writes the shown notes again in the current language. @param {HTMLElement} box */
export function relabelToasts(box) {
  for (const el of box.children) {
    const text = /** @type {any} */ (el).hzText;
    if (typeof text === 'function') el.textContent = text();
  }
}
