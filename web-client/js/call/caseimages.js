// The case panel's pictures over HTTP (docs/api.md §Attachments): each browser fetches the
// image it shows with the session's token (api.js withToken; the API decides who may see it)
// and decodes it into an ImageBitmap, which the panel draws on a canvas. No object URL is made:
// the page's Content-Security-Policy (signaling/src/web.rs) allows no blob: images, and a
// bitmap needs none. A PDF is fetched whole once and opened (CasePdfs, pdf.js through
// ../pdfview.js); its pages become bitmaps the same way, each drawn by this browser at the
// size its panel needs. Only the last few pictures are kept (the one shown, its neighbours
// fetched ahead, a few just left), and the last two PDFs; what drops out is closed at once,
// and everything when the call ends.
import { ApiError, withToken } from '../api.js';
import { openPdf } from '../pdfview.js';

/** @typedef {import('../pdfview.js').PdfDoc} PdfDoc */
/** What makes a picture that is not a file of its own (a PDF's page). @typedef {(signal: AbortSignal) => Promise<ImageBitmap>} Maker */

/** Pictures kept decoded: the one shown, the next and previous fetched ahead, a few just left. */
const KEEP = 6;
/** PDFs kept open: the one shown and the one before (a presenter going back and forth). */
const KEEP_PDFS = 2;

/**
 * A GET with the session's token; a refusal is thrown as an ApiError with the server's code.
 * @param {string} path @param {AbortSignal} signal @returns {Promise<Blob>}
 */
export function fetchBlob(path, signal) {
  return withToken(async (token) => {
    let res;
    try {
      res = await fetch(path, { headers: { Authorization: `Bearer ${token}` }, cache: 'no-store', signal });
    } catch (e) {
      if (signal.aborted) throw e;
      throw new ApiError(0, 'network', 'the server cannot be reached');
    }
    if (!res.ok) {
      /** @type {any} */
      let data = null;
      try { data = await res.json(); } catch { /* not JSON: a proxy's page */ }
      throw new ApiError(res.status, data?.code || 'http_error', data?.message || `HTTP ${res.status}`, data?.details);
    }
    return res.blob();
  });
}

export class CaseImages {
  constructor(keep = KEEP) {
    this.keep = keep;
    /** @type {Map<string, ImageBitmap>} path → picture, least recently used first */
    this.ready = new Map();
    /** @type {Map<string, { promise: Promise<ImageBitmap>, stop: AbortController }>} pictures on their way */
    this.coming = new Map();
    this.closed = false;
  }

  /** The picture at `path` if it is here already (and now the most recent). @param {string} path */
  peek(path) {
    const bmp = this.ready.get(path);
    if (bmp) { this.ready.delete(path); this.ready.set(path, bmp); }
    return bmp ?? null;
  }

  /**
   * The picture at `path`, fetched and decoded once however often it is asked for; `make`
   * makes it instead (a PDF's page drawn here, `path` then only names it).
   * @param {string} path @param {Maker} [make] @returns {Promise<ImageBitmap>}
   */
  get(path, make) {
    const here = this.peek(path);
    if (here) return Promise.resolve(here);
    const on = this.coming.get(path);
    if (on) return on.promise;
    const stop = new AbortController();
    const promise = (make ? make(stop.signal) : fetchBlob(path, stop.signal).then((blob) => createImageBitmap(blob)))
      .then((bmp) => {
        if (this.closed || stop.signal.aborted) { bmp.close(); throw new DOMException('no longer wanted', 'AbortError'); }
        this.ready.set(path, bmp);
        this.trim();
        return bmp;
      })
      .finally(() => { if (this.coming.get(path)?.stop === stop) this.coming.delete(path); });
    this.coming.set(path, { promise, stop });
    return promise;
  }

  /**
   * Stops fetching what is no longer wanted: when the presenter runs through a series, only the
   * pictures around where they stop are worth the link.
   * @param {string[]} wanted
   */
  only(wanted) {
    for (const [path, on] of this.coming) {
      if (!wanted.includes(path)) { on.stop.abort(); this.coming.delete(path); }
    }
  }

  /** Closes the least recently used pictures beyond the few kept. */
  trim() {
    while (this.ready.size > this.keep) {
      const [path, bmp] = /** @type {[string, ImageBitmap]} */ (this.ready.entries().next().value);
      this.ready.delete(path);
      bmp.close();
    }
  }

  /** Frees everything (the call is over). */
  close() {
    this.closed = true;
    for (const on of this.coming.values()) on.stop.abort();
    this.coming.clear();
    for (const bmp of this.ready.values()) bmp.close();
    this.ready.clear();
  }
}

/**
 * A PDF being opened or open: `doc` once it is, `error` if it could not be.
 * @typedef {{ promise: Promise<PdfDoc>, doc: PdfDoc | null, error: unknown, stop: AbortController }} PdfEntry
 */

/** The PDFs the panel shows, each fetched with the session's token and opened once. */
export class CasePdfs {
  constructor(keep = KEEP_PDFS) {
    this.keep = keep;
    /** @type {Map<string, PdfEntry>} path → the PDF, least recently asked for first */
    this.docs = new Map();
    this.closed = false;
  }

  /**
   * The PDF at `path`, opened the first time it is asked for (and now the most recent); one
   * that could not be opened stays so, unless `retry` (shown anew) asks again.
   * @param {string} path @param {boolean} [retry]
   * @returns {PdfEntry}
   */
  open(path, retry = false) {
    const known = this.docs.get(path);
    if (known && !(retry && known.error)) {
      this.docs.delete(path);
      this.docs.set(path, known);
      return known;
    }
    const stop = new AbortController();
    /** @type {PdfEntry} */
    const entry = { promise: Promise.resolve(/** @type {any} */ (null)), doc: null, error: null, stop };
    entry.promise = fetchBlob(path, stop.signal)
      .then((blob) => blob.arrayBuffer())
      .then((bytes) => openPdf(bytes, stop.signal))
      .then((doc) => {
        if (this.closed || stop.signal.aborted) { doc.close(); throw new DOMException('no longer wanted', 'AbortError'); }
        entry.doc = doc;
        return doc;
      }, (e) => {
        entry.error = e;
        throw e;
      });
    // Whoever asks handles the failure; this keeps an unasked one from being reported as unhandled.
    entry.promise.catch(() => {});
    this.docs.delete(path);
    this.docs.set(path, entry);
    this.trim();
    return entry;
  }

  /** Closes the least recently shown PDFs beyond the few kept. */
  trim() {
    while (this.docs.size > this.keep) {
      const [path, entry] = /** @type {[string, PdfEntry]} */ (this.docs.entries().next().value);
      this.docs.delete(path);
      entry.stop.abort();
      entry.doc?.close();
    }
  }

  /** Frees everything (the call is over). */
  close() {
    this.closed = true;
    for (const entry of this.docs.values()) {
      entry.stop.abort();
      entry.doc?.close();
    }
    this.docs.clear();
  }
}

/**
 * A PDF's page (0-based) drawn at `scale` as a bitmap; the canvas it was drawn on is emptied at
 * once (the bitmap is a copy, and a page is megabytes).
 * @param {PdfDoc} doc @param {number} page @param {number} scale @returns {Maker}
 */
export function pdfPage(doc, page, scale) {
  return async (signal) => {
    const canvas = await doc.render(page, scale, signal);
    try {
      return await createImageBitmap(canvas);
    } finally {
      canvas.width = 0;
      canvas.height = 0;
    }
  };
}
