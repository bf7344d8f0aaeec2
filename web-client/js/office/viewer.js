// The dialog a viewer opens in (an attachment's file, attachments.js; a DICOM series,
// dicomview.js). It sits inside the page's view, like the other dialogs: a change pushed
// meanwhile waits while it is open (updates.js), and a route change or a language switch
// takes it away with the page. However it goes (its close button, Escape, the page rendered
// anew), what it holds is released once: object URLs revoked, requests under way stopped.
// A PDF's pages are drawn here too (pdfPages), one at a time, by pdf.js (../pdfview.js).
import { errorBox, h } from '../dom.js';
import { t } from '../i18n.js';
import { clampPage, fitScale, renderScale } from '../pdfview.js';

/** @typedef {import('../pdfview.js').PdfDoc} PdfDoc */

/**
 * Opens `dialog` modally; `release` runs once when it goes. Returns a function that closes it.
 * @param {HTMLDialogElement} dialog
 * @param {HTMLElement | null} opener focused again when it closes (if still on the page)
 * @param {() => void} release
 * @returns {() => void}
 */
export function openViewer(dialog, opener, release) {
  let gone = false;
  // Taken away with the page (a route, a language switch): no event says so but its leaving.
  const left = new MutationObserver(() => { if (!dialog.isConnected) close(); });
  const close = () => {
    if (gone) return;
    gone = true;
    left.disconnect();
    try { release(); } catch (e) { console.error('huizhen: a viewer could not release what it held', e); }
    if (dialog.open) dialog.close();
    dialog.remove();
    if (opener?.isConnected) opener.focus();
  };
  dialog.addEventListener('close', close);
  (opener?.closest('[data-testid="view"]') || document.getElementById('view') || document.body).append(dialog);
  left.observe(document.body, { childList: true, subtree: true });
  dialog.showModal();
  return close;
}

/** The close button of a viewer's toolbar. @param {string} testid @param {() => void} close */
export function closeButton(testid, close) {
  return h('button', { type: 'button', class: 'ghost', testid, 'aria-label': t('viewer.close'), onclick: close }, t('viewer.close'));
}

/** Keys that turn a PDF's page (the page number field keeps its own arrows). @type {Record<string, number>} */
const PAGE_KEYS = { ArrowLeft: -1, ArrowRight: 1, PageUp: -1, PageDown: 1 };

/**
 * A PDF's pages for a viewer: the page drawn across the body's width (scrolled down to read),
 * previous and next, and the page number to read or type. A page is drawn off screen and put
 * in place once whole (the last one stays until then); a page left before it is drawn stops
 * drawing; a wider or narrower body draws it again once it would look blurred. `release`
 * closes the document.
 * @param {PdfDoc} doc
 * @returns {{ el: HTMLElement, nav: HTMLElement, release: () => void }}
 */
export function pdfPages(doc) {
  let page = 0;
  /** @type {{ page: number, scale: number } | null} what the canvas holds */
  let drawn = null;
  /** @type {{ page: number, scale: number, stop: AbortController } | null} the page being drawn */
  let drawing = null;
  let gone = false;

  const sheet = h('div', { class: 'pdf-sheet', testid: 'file-viewer-pdf', 'data-pages': String(doc.pages), 'data-page': '1', 'data-ready': 'false' },
    h('p', { class: 'muted' }, t('common.loading')));
  const el = h('div', { class: 'pdf-view', testid: 'file-viewer-pdf-view', tabindex: '0' }, sheet);
  const prev = h('button', { type: 'button', class: 'ghost small', testid: 'pdf-prev', onclick: () => go(page - 1) }, t('pdf.prev'));
  const next = h('button', { type: 'button', class: 'ghost small', testid: 'pdf-next', onclick: () => go(page + 1) }, t('pdf.next'));
  const number = h('input', {
    type: 'number', min: '1', max: String(doc.pages), step: '1', value: '1', class: 'pdf-number', testid: 'pdf-page', 'aria-label': t('pdf.page'),
    // Taken when the number is whole (typed and left, or Enter, or the field's arrows); an
    // emptied field shows the page it is on again.
    onchange: () => go(number.value.trim() === '' ? page : Number(number.value) - 1),
  });
  const nav = h('div', { class: 'pdf-nav', testid: 'pdf-nav', role: 'group', 'aria-label': t('pdf.pages') },
    prev, h('label', { class: 'pdf-where' }, h('span', {}, t('pdf.page')), number, h('span', { testid: 'pdf-pages' }, t('pdf.of', { total: doc.pages }))), next);

  const box = () => ({ width: Math.max(1, el.clientWidth - 24), height: el.clientHeight });

  /** Draws page `page` for the body's width now, unless it is there already. */
  async function draw() {
    const want = page;
    const size = await doc.pageSize(want);
    if (gone || want !== page) return;
    const css = fitScale(size, box(), 'width');
    const scale = renderScale(size, css, window.devicePixelRatio || 1);
    const shown = sheet.querySelector('canvas');
    // The same pixels: only its size on the screen follows the body.
    if (shown && drawn?.page === want && drawn.scale === scale) {
      shown.style.width = `${size.width * css}px`;
      return;
    }
    // Already on its way (the body's size settling as the dialog opens).
    if (drawing?.page === want && drawing.scale === scale) return;
    drawing?.stop.abort();
    const stop = new AbortController();
    drawing = { page: want, scale, stop };
    sheet.dataset.ready = 'false';
    try {
      const canvas = await doc.render(want, scale, stop.signal);
      if (gone || stop.signal.aborted) return;
      canvas.classList.add('pdf-canvas');
      canvas.dataset.testid = 'file-viewer-page';
      canvas.dataset.page = String(want + 1);
      canvas.style.width = `${size.width * fitScale(size, box(), 'width')}px`;
      sheet.replaceChildren(canvas);
      drawn = { page: want, scale };
      sheet.dataset.ready = 'true';
    } catch (e) {
      if (gone || stop.signal.aborted || /** @type {any} */ (e)?.name === 'AbortError') return;
      sheet.replaceChildren(errorBox(e, 'file-viewer-error'));
    } finally {
      if (drawing?.stop === stop) drawing = null;
    }
  }

  /** Draws when the body has a width (not before the dialog is laid out: that would be a sliver). */
  function redraw() {
    if (gone || el.clientWidth <= 0) return;
    draw().catch((e) => { if (!gone) sheet.replaceChildren(errorBox(e, 'file-viewer-error')); });
  }

  /** @param {number} n 0-based, kept within the document */
  function go(n) {
    page = clampPage(n, doc.pages);
    number.value = String(page + 1);
    prev.disabled = page <= 0;
    next.disabled = page >= doc.pages - 1;
    sheet.dataset.page = String(page + 1);
    // The top of the new page, not where the last one was left.
    if (drawn && drawn.page !== page) el.scrollTop = 0;
    redraw();
  }

  el.addEventListener('keydown', (e) => {
    const d = PAGE_KEYS[e.key];
    if (!d || e.altKey || e.ctrlKey || e.metaKey) return;
    e.preventDefault();
    go(page + d);
  });
  // The dialog is laid out once it is open: the first drawing waits for the body's width.
  const resized = new ResizeObserver(redraw);
  resized.observe(el);
  go(0);

  return {
    el,
    nav,
    release() {
      gone = true;
      resized.disconnect();
      drawing?.stop.abort();
      doc.close();
    },
  };
}
