// A consultation's attachments on its detail page (docs/api.md §Attachments; issue 15): the
// list (name, kind, size, who and when, the checksum; a DICOM series in words), uploads for
// whoever may attach (a button and dropping files on the section; each file with its progress,
// and the server's refusal in the user's language), and viewing: a PDF (its pages drawn by
// pdf.js, one at a time: viewer.js pdfPages) or an image in a dialog, a DICOM series in its
// viewer (dicomview.js), every file also downloadable. The request form picks
// files too (requestAttachments), sent once the consultation exists.
//
// Uploads live here, not in the page: a pushed change or a language switch renders the detail
// page again, and the files on their way (or refused) are shown again as they stand.
import { me } from '../api.js';
import { errorBox, h, showBanner } from '../dom.js';
import { errorText, fmtTime, label, t } from '../i18n.js';
import { openPdf } from '../pdfview.js';
import { filePath, mayAttach, mergeAttachments, shortSha, sizeText, uploadPath, viewerOf, dicomWords } from './attachfacts.js';
import { openDicomViewer } from './dicomview.js';
import { showNotice } from './notices.js';
import { nameOf } from './people.js';
import { blobPolicy, fetchBlob, saveBlob, sendFile, showable } from './transfer.js';
import { closeButton, openViewer, pdfPages } from './viewer.js';

/** @typedef {import('./attachfacts.js').Attachment} Attachment */
/** @typedef {import('./attachfacts.js').AttachTarget & { id: string, attachments?: Attachment[] }} Target */
/**
 * One file on its way: waiting its turn, sending (`sent` of `size` bytes), being checked by the
 * server (all sent, no answer yet), done (`attachment`) or failed (`error`).
 * @typedef {{ key: number, cid: string, name: string, size: number, sent: number,
 *   state: 'waiting' | 'sending' | 'checking' | 'done' | 'failed', error: unknown,
 *   attachment: Attachment | null }} Upload
 */

/** @type {Map<string, Upload[]>} consultation id → its uploads since the page was loaded */
const uploads = new Map();
/** @type {Map<string, Promise<unknown>>} consultation id → its queue: one file at a time, in order */
const queues = new Map();
/** @type {Set<(u?: Upload) => void>} the sections and forms showing uploads: told of progress (u) or of a change of state */
const watchers = new Set();
let nextKey = 1;

/** Some server refusals speak of recordings in the catalogue; for a file, these say it. @type {Record<string, string>} */
const OWN_ERRORS = { storage_error: 'attachments.storage_error', body_timeout: 'attachments.body_timeout' };

/** An upload's refusal in the user's language. @param {unknown} err */
function refusalText(err) {
  const own = OWN_ERRORS[/** @type {{ code?: string } | null} */ (err)?.code ?? ''];
  return own ? t(own) : errorText(err);
}

/** @param {Upload} [u] */
function notify(u) {
  for (const w of [...watchers]) w(u);
}

/**
 * Sends `files` to consultation `cid`, one after the other (after any still going there); the
 * uploads are shown wherever they are watched.
 * @param {string} cid @param {File[]} files
 * @returns {{ list: Upload[], done: Promise<Upload[]> }} list: the uploads, at once; done: they, once all are answered
 */
export function uploadFiles(cid, files) {
  /** @type {Upload[]} */
  const mine = files.map((f) => ({ key: nextKey++, cid, name: f.name, size: f.size, sent: 0, state: 'waiting', error: null, attachment: null }));
  uploads.set(cid, [...(uploads.get(cid) ?? []), ...mine]);
  notify();
  const run = async () => {
    for (const [i, u] of mine.entries()) {
      u.state = 'sending';
      notify();
      try {
        u.attachment = await sendFile(uploadPath(cid, u.name), files[i], (sent, size) => {
          u.sent = sent;
          // Every byte is there: the server now reads the file (a series unpacked and checked).
          const state = sent >= size ? 'checking' : 'sending';
          if (state !== u.state) { u.state = state; notify(); } else notify(u);
        });
        u.state = 'done';
      } catch (e) {
        u.state = 'failed';
        u.error = e;
      }
      notify();
    }
  };
  const queued = (queues.get(cid) ?? Promise.resolve()).then(run);
  queues.set(cid, queued);
  return { list: mine, done: queued.then(() => mine) };
}

/** The attachments uploaded here to `cid` (the page may have been rendered before they came). @param {string} cid @returns {Attachment[]} */
function uploaded(cid) {
  return (uploads.get(cid) ?? []).flatMap((u) => (u.state === 'done' && u.attachment ? [u.attachment] : []));
}

/** Forgets a failed upload (its row's close button). @param {Upload} u */
function dismiss(u) {
  uploads.set(u.cid, (uploads.get(u.cid) ?? []).filter((x) => x !== u));
  notify();
}

/**
 * Watches the uploads while `el` is on the page; `fn` is called on every change (u: only that
 * upload's progress). Stops once `el` was on the page and has left it.
 * @param {HTMLElement} el @param {(u?: Upload) => void} fn
 */
function watch(el, fn) {
  let shown = false;
  /** @param {Upload} [u] */
  const w = (u) => {
    if (!el.isConnected) {
      if (shown) watchers.delete(w);
      return;
    }
    shown = true;
    fn(u);
  };
  watchers.add(w);
}

/** The files a drag carries, or none. @param {DragEvent} e */
const draggedFiles = (e) => Boolean(e.dataTransfer && [...e.dataTransfer.types].includes('Files'));

/**
 * Makes `target` take files dropped on it (highlighted while they are over it).
 * @param {HTMLElement} target @param {(files: File[]) => void} take
 */
function dropTarget(target, take) {
  let depth = 0;
  target.addEventListener('dragenter', (e) => {
    if (!draggedFiles(e)) return;
    e.preventDefault();
    depth++;
    target.classList.add('dropping');
  });
  target.addEventListener('dragover', (e) => {
    if (!draggedFiles(e)) return;
    // Without this the browser opens the file in place of the page.
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
  });
  target.addEventListener('dragleave', (e) => {
    if (!draggedFiles(e)) return;
    // Entering a child leaves the parent first: count, so the highlight does not flicker.
    depth = Math.max(0, depth - 1);
    if (!depth) target.classList.remove('dropping');
  });
  target.addEventListener('drop', (e) => {
    if (!draggedFiles(e)) return;
    e.preventDefault();
    depth = 0;
    target.classList.remove('dropping');
    const files = [...(e.dataTransfer?.files ?? [])];
    if (files.length) take(files);
  });
}

/**
 * A "choose files" button with its hidden input (several at once; no type filter: DICOM files
 * often have no extension, and the server decides by the content anyway).
 * @param {string} testid the input's; the button's is testid + '-button'
 * @param {(files: File[]) => void} take
 */
function chooser(testid, take) {
  const input = h('input', { type: 'file', multiple: true, hidden: true, testid });
  input.addEventListener('change', () => {
    const files = [...(input.files ?? [])];
    // Emptied, so the same file can be chosen again after a refusal.
    input.value = '';
    if (files.length) take(files);
  });
  const button = h('button', { type: 'button', class: 'ghost', testid: `${testid}-button`, onclick: () => input.click() }, t('attachments.choose'));
  return [button, input];
}

/** One upload's row: name and size, progress, and how it stands (or why it was refused). @param {Upload} u */
function uploadRow(u) {
  const bar = h('progress', { max: u.size || 1, value: u.sent, testid: 'attachment-upload-progress', hidden: u.state === 'failed' || u.state === 'done' });
  const state = h('span', { class: 'small', testid: 'attachment-upload-state' });
  const write = () => {
    bar.value = u.sent;
    const pct = u.size ? Math.floor((u.sent / u.size) * 100) : 100;
    state.textContent = u.state === 'waiting' ? t('attachments.waiting')
      : u.state === 'sending' ? t('attachments.sending', { pct })
        : u.state === 'checking' ? t('attachments.checking')
          : u.state === 'done' ? t('attachments.sent') : '';
  };
  write();
  const row = h('li', { class: `upload upload-${u.state}`, testid: 'attachment-upload', 'data-state': u.state, 'data-name': u.name },
    h('div', { class: 'upload-head' },
      h('span', { class: 'grow name' }, u.name, h('span', { class: 'muted small' }, ` · ${sizeText(u.size)}`)),
      state,
      u.state === 'failed' && h('button', {
        type: 'button', class: 'ghost small close', testid: 'attachment-upload-dismiss', 'aria-label': t('attachments.dismiss'), onclick: () => dismiss(u),
      }, '×')),
    bar,
    u.state === 'failed' && h('p', { class: 'error small', role: 'alert', testid: 'attachment-upload-error', 'data-code': /** @type {{ code?: string } | null} */ (u.error)?.code ?? null }, refusalText(u.error)));
  return { row, write };
}

/**
 * A list of uploads that keeps itself up to date: rows rebuilt when one changes state, only the
 * progress written while bytes go.
 * @param {() => Upload[]} which
 * @param {{ changed?: () => void, keepDone?: boolean, testid?: string }} [opts] changed: also told when
 *   an upload changes state (the list to show grows); keepDone: done uploads keep their row (on the
 *   detail page they show in the list of attachments instead)
 */
function uploadList(which, { changed, keepDone = false, testid = 'attachment-uploads' } = {}) {
  const el = h('ul', { class: 'uploads', testid });
  /** @type {Map<number, () => void>} */
  let writers = new Map();
  const render = () => {
    const built = which().filter((u) => keepDone || u.state !== 'done').map((u) => ({ key: u.key, ...uploadRow(u) }));
    writers = new Map(built.map((b) => [b.key, b.write]));
    el.replaceChildren(...built.map((b) => b.row));
  };
  render();
  watch(el, (u) => {
    if (u) writers.get(u.key)?.();
    else { render(); changed?.(); }
  });
  return el;
}

/**
 * The section on the detail page; null when there is nothing to show and nothing the user may add.
 * @param {Target} c
 */
export function attachmentsSection(c) {
  const u = me();
  const may = mayAttach(c, u);
  const listed = c.attachments ?? [];
  if (!may && !listed.length && !uploaded(c.id).length) return null;
  // Asked now: an image opened is shown at once from the right kind of URL.
  blobPolicy();
  const list = h('div', { class: 'attachment-list' });
  const renderList = () => {
    const all = mergeAttachments(listed, uploaded(c.id));
    section.dataset.count = String(all.length);
    list.replaceChildren(all.length
      ? h('table', { class: 'files attachments-table', testid: 'attachment-list' },
        h('thead', {}, h('tr', {},
          h('th', {}, t('attachments.name')), h('th', {}, t('attachments.size')), h('th', {}, t('attachments.uploaded')),
          h('th', {}, t('attachments.sha256')), h('th', {}))),
        h('tbody', {}, all.map((a) => attachmentRow(c, a))))
      : h('p', { class: 'muted', testid: 'attachments-empty' }, t('attachments.none')));
  };
  const take = (/** @type {File[]} */ files) => { uploadFiles(c.id, files); };
  const section = h('section', { class: 'card attachments', testid: 'attachments', 'data-may-attach': String(may) },
    h('div', { class: 'toolbar' }, h('h2', { class: 'grow' }, t('attachments.title')), may && chooser('attachment-input', take)),
    may && h('p', { class: 'small muted', testid: 'attachments-hint' }, t('attachments.hint')),
    may && uploadList(() => uploads.get(c.id) ?? [], { changed: renderList }),
    list);
  renderList();
  if (may) dropTarget(section, take);
  return section;
}

/** @param {Target} c @param {Attachment} a */
function attachmentRow(c, a) {
  const viewer = viewerOf(a.kind);
  const d = a.dicom ? dicomWords(a.dicom) : null;
  const status = h('span', { class: 'small', testid: 'attachment-status' });
  const view = viewer && h('button', {
    type: 'button', class: 'small', testid: 'attachment-view',
    onclick: (/** @type {Event} */ e) => open(c, a, /** @type {HTMLElement} */ (e.currentTarget), status),
  }, t(viewer === 'dicom' ? 'attachments.view_images' : 'attachments.view'));
  return h('tr', { testid: 'attachment', 'data-id': a.id, 'data-kind': a.kind },
    h('td', {},
      h('span', { class: 'attachment-name', testid: 'attachment-name' }, a.name),
      h('div', { class: 'small muted' },
        h('span', { testid: 'attachment-kind' }, label('attachment_kind', a.kind)),
        d && [' · ', h('span', { testid: 'attachment-dicom' }, t(`attachments.dicom_${d.key}`, d))])),
    h('td', { testid: 'attachment-size' }, sizeText(a.size)),
    h('td', { class: 'small' }, h('span', { testid: 'attachment-uploader' }, nameOf(a.uploaded_by)), h('br'), h('span', { class: 'muted' }, fmtTime(a.uploaded_at))),
    h('td', {}, h('code', { class: 'sha', title: a.sha256, testid: 'attachment-sha256', 'data-sha256': a.sha256 }, shortSha(a.sha256))),
    h('td', {}, h('div', { class: 'row-actions' }, view, downloadButton(c, a, status), status)));
}

/** Downloads the file as it was uploaded, under its name. @param {Target} c @param {Attachment} a @param {HTMLElement} [status] */
function downloadButton(c, a, status) {
  const btn = h('button', {
    type: 'button', class: 'ghost small', testid: 'attachment-download',
    onclick: async () => {
      btn.disabled = true;
      if (status) status.textContent = t('attachments.downloading');
      try {
        saveBlob(await fetchBlob(filePath(c.id, a.id)), a.name);
        if (status) status.textContent = '';
      } catch (e) {
        if (status) status.textContent = errorText(e); else showBanner(e);
      } finally {
        btn.disabled = false;
      }
    },
  }, t('attachments.download'));
  return btn;
}

/**
 * Opens an attachment in its viewer.
 * @param {Target} c @param {Attachment} a @param {HTMLElement} opener @param {HTMLElement} status
 */
function open(c, a, opener, status) {
  status.textContent = '';
  const viewer = viewerOf(a.kind);
  if (viewer === 'dicom') { openDicomViewer(c, a, opener); return; }
  fileDialog(c, a, opener);
}

/**
 * A PDF (page by page, with its page controls under the title) or an image in a dialog, with
 * its download. @param {Target} c @param {Attachment} a @param {HTMLElement} opener
 */
function fileDialog(c, a, opener) {
  const body = h('div', { class: 'file-view', testid: 'file-viewer-body' }, h('p', { class: 'muted' }, t('common.loading')));
  const stop = new AbortController();
  let release = () => {};
  const dialog = h('dialog', { class: 'dialog file-dialog', testid: 'file-viewer', 'data-id': a.id, 'data-kind': a.kind, 'aria-labelledby': 'file-viewer-title' });
  const close = openViewer(dialog, opener, () => { stop.abort(); release(); });
  /** Where a PDF's page controls go once it is open. */
  const navSlot = h('div', { class: 'file-nav' });
  dialog.append(
    h('div', { class: 'toolbar' },
      h('h2', { class: 'grow', id: 'file-viewer-title' }, a.name),
      downloadButton(c, a),
      closeButton('file-viewer-close', close)),
    navSlot,
    body);
  fetchBlob(filePath(c.id, a.id, true), stop.signal).then(async (blob) => {
    if (a.kind === 'pdf') {
      const pages = pdfPages(await openPdf(await blob.arrayBuffer(), stop.signal));
      release = pages.release;
      if (stop.signal.aborted) { release(); return; }
      navSlot.replaceChildren(pages.nav);
      body.replaceChildren(pages.el);
      return;
    }
    const shown = await showable(blob);
    release = shown.release;
    if (stop.signal.aborted) { release(); return; }
    body.replaceChildren(h('img', { src: shown.url, alt: a.name, class: 'file-image', testid: 'file-viewer-image' }));
  }).catch((e) => {
    if (!stop.signal.aborted) body.replaceChildren(errorBox(e, 'file-viewer-error'));
  });
}

/**
 * The request form's files: chosen (a button, or dropped on the block) before the consultation
 * exists, then sent to it (uploadFiles), each row showing its progress.
 * @returns {{ el: HTMLElement, files: () => File[], send: (cid: string) => Promise<Upload[]> }}
 */
export function requestAttachments() {
  /** @type {File[]} */
  let chosen = [];
  const rows = h('ul', { class: 'uploads', testid: 'request-files' });
  const renderChosen = () => rows.replaceChildren(...chosen.map((f) => h('li', { class: 'upload', testid: 'request-file', 'data-name': f.name },
    h('div', { class: 'upload-head' },
      h('span', { class: 'grow name' }, f.name, h('span', { class: 'muted small' }, ` · ${sizeText(f.size)}`)),
      h('button', {
        type: 'button', class: 'ghost small close', testid: 'request-file-remove', 'aria-label': t('attachments.remove'),
        onclick: () => { chosen = chosen.filter((x) => x !== f); renderChosen(); },
      }, '×')))));
  const take = (/** @type {File[]} */ files) => { chosen = [...chosen, ...files]; renderChosen(); };
  const el = h('fieldset', { class: 'attachments-pick', testid: 'request-attachments' },
    h('legend', {}, t('attachments.title')),
    h('div', { class: 'toolbar' }, chooser('request-file-input', take), h('small', { class: 'grow' }, t('attachments.request_hint'))),
    rows);
  dropTarget(el, take);
  return {
    el,
    files: () => [...chosen],
    send(cid) {
      const { list, done } = uploadFiles(cid, [...chosen]);
      // From now on the rows are these files on their way.
      rows.replaceWith(uploadList(() => list, { keepDone: true, testid: 'request-uploads' }));
      return done;
    },
  };
}

/**
 * Says which of the files sent with a request were refused, and that they can be added on the
 * consultation's page (a notice: it stays across the route change, until closed).
 * @param {string} cid @param {Upload[]} sent
 */
export function tellFailedUploads(cid, sent) {
  const failed = sent.filter((u) => u.state === 'failed');
  if (!failed.length) return;
  showNotice(`attach-failed-${cid}`, () => [
    t('attachments.request_failed', { n: failed.length }), ' ',
    h('a', { href: `#/c/${cid}`, testid: 'request-attach-failed-open' }, t('attachments.request_failed_open')),
    h('ul', { class: 'small' }, failed.map((u) => h('li', { testid: 'request-attach-failed-file', 'data-name': u.name, 'data-code': /** @type {{ code?: string } | null} */ (u.error)?.code ?? null },
      t('attachments.failed_item', { name: u.name, reason: refusalText(u.error) })))),
  ], { testid: 'request-attach-failed', sticky: true });
}
