// Small DOM helpers for the call screens. Text is always set as text, never parsed as HTML:
// names and chat come from other people.

/**
 * Builds an element: h('button', { onclick, testid: 'x' }, 'text', child…).
 * @param {string} tag
 * @param {Record<string, any> | null} [attrs]
 * @param {...any} kids
 * @returns {HTMLElement}
 */
export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'testid') el.dataset.testid = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (['value', 'checked', 'disabled', 'muted', 'autoplay', 'playsInline', 'selected'].includes(k)) /** @type {any} */ (el)[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, kids);
  return el;
}

/**
 * @param {Element} el
 * @param {any[]} kids
 */
function append(el, kids) {
  for (const c of kids.flat(Infinity)) {
    if (c != null && c !== false) el.append(c instanceof Node ? c : String(c));
  }
}

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

