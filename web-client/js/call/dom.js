// DOM pieces only the call screens use: a silent <video>, icons, a confirmation dialog. Elements
// are built with the client's one builder, h() from ../dom.js (re-exported for the call's
// modules).
import { h } from '../dom.js';

export { h };

/**
 * A <video> that plays a stream silently (audio goes through <audio> elements so that the
 * chosen speaker applies to it).
 * @param {string} testid
 * @returns {HTMLVideoElement}
 */
export function videoEl(testid) {
  const v = /** @type {HTMLVideoElement} */ (h('video', { testid, autoplay: true, playsInline: true, muted: true }));
  v.muted = true;
  return v;
}


/** Outline icons (24×24 paths): no icon font, no image requests, crisp at any size. */
const ICONS = {
  // A push pin.
  pin: 'M9 3h6l-1 6 3 3v2H7v-2l3-3zM12 14v7',
  // Four corners pointing out, and in.
  expand: 'M4 9V4h5M20 9V4h-5M4 15v5h5M20 15v5h-5',
  shrink: 'M9 4v5H4M15 4v5h5M9 20v-5H4M15 20v-5h5',
};

/**
 * An icon for a button whose name is in its aria-label (the icon itself is hidden from
 * screen readers).
 * @param {keyof typeof ICONS} name
 * @returns {SVGSVGElement}
 */
export function icon(name) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.classList.add('icon');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', ICONS[name]);
  svg.append(path);
  return svg;
}

/**
 * Asks a yes/no question in a modal <dialog> in the app's style (Esc or the backdrop's
 * cancel answer no); resolves true only for the yes button.
 * @param {{ testid: string, title: string, text: string, yes: string, no: string, danger?: boolean }} q
 * @returns {Promise<boolean>}
 */
export function confirmDialog(q) {
  return new Promise((resolve) => {
    const title = h('h2', { id: `${q.testid}-title` }, q.title);
    const yes = h('button', { type: 'button', class: q.danger ? 'danger' : '', testid: `${q.testid}-yes` }, q.yes);
    const no = h('button', { type: 'button', class: 'ghost', testid: `${q.testid}-no` }, q.no);
    const dialog = /** @type {HTMLDialogElement} */ (h('dialog', { class: 'dialog confirm', testid: q.testid, 'aria-labelledby': `${q.testid}-title` },
      title, h('p', { testid: `${q.testid}-text` }, q.text), h('div', { class: 'actions' }, no, yes)));
    let answer = false;
    yes.addEventListener('click', () => { answer = true; dialog.close(); });
    no.addEventListener('click', () => dialog.close());
    dialog.addEventListener('close', () => { dialog.remove(); resolve(answer); });
    document.body.append(dialog);
    dialog.showModal();
    // The safe answer has the focus: Enter by habit keeps the call.
    no.focus();
  });
}
