// PDFs shown in the page, one page at a time, drawn by Mozilla's pdf.js (vendored, unchanged:
// web-client/vendor/pdfjs/, whose README names the version and how to update it). The office's
// file viewer (office/attachments.js) and the call's case panel (call/casepanel.js) both use
// it: the bytes come in (fetched with the session's token, as every attachment is), a page
// comes out on a canvas.
//
// The library is 0.9 MB and its worker 2.2 MB: it is loaded with the first PDF opened, not
// with the page (a dynamic import), and one worker serves every document while the page lives.
// That also keeps this module's pure helpers loadable under node (web-client/test/pdfview.test.mjs).
//
// Under the page's Content-Security-Policy (default-src 'self'): the library and its worker come
// from 'self'; this version never evaluates code (no eval, no new Function); embedded fonts are
// handed to the browser as bytes (FontFace), which no font-src governs; fonts a PDF names
// without embedding them come from the system (useSystemFonts), nothing is fetched for them.

/** A width and height: a page in PDF points (1/72 inch) at scale 1, or a box in CSS pixels. @typedef {{ width: number, height: number }} Size */

/**
 * The little of pdf.js this client uses (its own type files are not vendored).
 * @typedef {{ width: number, height: number }} PdfViewport
 * @typedef {{ promise: Promise<void>, cancel: () => void }} PdfRenderTask
 * @typedef {{ getViewport: (o: { scale: number }) => PdfViewport,
 *   render: (o: { canvas: HTMLCanvasElement, canvasContext: CanvasRenderingContext2D, viewport: PdfViewport }) => PdfRenderTask,
 *   cleanup: () => boolean }} PdfPageProxy
 * @typedef {{ numPages: number, getPage: (n: number) => Promise<PdfPageProxy> }} PdfDocumentProxy
 * A document is freed through the task that loaded it (pdf.js 6 has no destroy() on the document).
 * @typedef {{ promise: Promise<PdfDocumentProxy>, destroy: () => Promise<void> }} PdfLoadingTask
 * @typedef {{ getDocument: (src: Record<string, unknown>) => PdfLoadingTask, GlobalWorkerOptions: { workerSrc: string },
 *   PDFWorker: new (o?: { name?: string }) => unknown }} PdfLib
 */

/** At most this many pixels in one rendered page (32 MB of RGBA): a zoom past it magnifies these. */
export const MAX_PIXELS = 8 * 1024 * 1024;
/** …and at most this many on its longer side (a long strip of a page). */
export const MAX_SIDE = 8192;

const clamp = (/** @type {number} */ v, /** @type {number} */ lo, /** @type {number} */ hi) => Math.min(hi, Math.max(lo, v));

/**
 * A page index (0-based) within a document of `count` pages: a view may name a page past the
 * end (sent by a client that knew another file) or no number at all.
 * @param {number} n @param {number} count
 */
export function clampPage(n, count) {
  if (!(count >= 1)) return 0;
  const i = Math.floor(Number(n));
  return Number.isFinite(i) ? clamp(i, 0, Math.floor(count) - 1) : 0;
}

/**
 * CSS pixels per PDF point that show `page` in `box`: all of it ('contain', the case panel's
 * zoom 1) or across its width ('width', a document read by scrolling). 0 for an empty size.
 * @param {Size} page @param {Size} box @param {'contain' | 'width'} [mode]
 */
export function fitScale(page, box, mode = 'contain') {
  if (!(page.width > 0 && page.height > 0 && box.width > 0)) return 0;
  if (mode === 'width') return box.width / page.width;
  if (!(box.height > 0)) return 0;
  return Math.min(box.width / page.width, box.height / page.height);
}

/**
 * The scale to render `page` at (device pixels per PDF point) for showing it at `cssScale` CSS
 * pixels per point on a screen of `dpr` device pixels per CSS pixel: rounded up to a power of
 * √2, so that a zoom or a resize draws the page again only once it would look blurred (never
 * sharper than needed by more than √2), and held to `maxPixels` and `maxSide` (beyond them the
 * picture is magnified, not drawn larger). Rounded to 4 places: equal views make equal keys.
 * @param {Size} page @param {number} cssScale @param {number} [dpr] @param {{ maxPixels?: number, maxSide?: number }} [cap]
 */
export function renderScale(page, cssScale, dpr = 1, { maxPixels = MAX_PIXELS, maxSide = MAX_SIDE } = {}) {
  if (!(page.width > 0 && page.height > 0)) return 1;
  const want = cssScale * (dpr > 0 ? dpr : 1);
  // Nothing to fit into yet (a hidden panel): the page at its own size.
  const steps = want > 0 && Number.isFinite(want) ? Math.ceil(Math.log2(want) * 2 - 1e-9) : 0;
  const stepped = 2 ** (steps / 2);
  const most = Math.min(Math.sqrt(maxPixels / (page.width * page.height)), maxSide / Math.max(page.width, page.height));
  // Down, not to the nearest: the cap is a cap.
  return Math.floor(Math.min(stepped, most) * 1e4) / 1e4;
}

/** The pixels of a page rendered at `scale`. @param {Size} page @param {number} scale @returns {Size} */
export function pixelSize(page, scale) {
  return { width: Math.max(1, Math.round(page.width * scale)), height: Math.max(1, Math.round(page.height * scale)) };
}

/** A PDF that cannot be shown, with the code its text is found by (error.<code> in the catalogues). */
export class PdfError extends Error {
  /** @param {'pdf_unreadable' | 'pdf_password' | 'pdf_unsupported'} code @param {string} message */
  constructor(code, message) {
    super(message);
    this.name = 'PdfError';
    this.code = code;
  }
}

/** @type {Promise<PdfLib> | null} */
let libLoading = null;
/** The one worker every document shares (made with the first). @type {unknown} */
let worker = null;

/** pdf.js, loaded once; a failure (the network) is tried again next time. @returns {Promise<PdfLib>} */
function library() {
  libLoading ??= import(new URL('../vendor/pdfjs/pdf.mjs', import.meta.url).href).then((lib) => {
    lib.GlobalWorkerOptions.workerSrc = new URL('../vendor/pdfjs/pdf.worker.mjs', import.meta.url).href;
    return /** @type {PdfLib} */ (lib);
  }, (e) => {
    libLoading = null;
    // A browser too old for the library fails here (a syntax it does not know).
    throw new PdfError('pdf_unsupported', `pdf.js could not be loaded: ${e?.message ?? e}`);
  });
  return libLoading;
}

/** A pdf.js failure as a PdfError; a cancelled render as an AbortError. @param {any} e */
function pdfFailure(e) {
  if (e instanceof PdfError || e?.name === 'AbortError') return e;
  if (e?.name === 'RenderingCancelledException' || e?.name === 'AbortException') return new DOMException('the page is no longer wanted', 'AbortError');
  if (e?.name === 'PasswordException') return new PdfError('pdf_password', String(e.message));
  // A feature the browser lacks shows as a TypeError (x is not a function), not as a bad file.
  if (e instanceof TypeError) return new PdfError('pdf_unsupported', String(e.message));
  return new PdfError('pdf_unreadable', String(e?.message ?? e));
}

/** An open PDF: its page count, each page's size, a page drawn on a canvas. Closed when no longer shown. */
export class PdfDoc {
  /** @param {PdfDocumentProxy} doc @param {PdfLoadingTask} task what loaded it, and frees it */
  constructor(doc, task) {
    this.doc = doc;
    this.task = task;
    this.pages = doc.numPages;
    /** @type {Map<number, Size>} page (0-based) → its size in points, once asked */
    this.sizes = new Map();
    this.closed = false;
  }

  /** Page `n`'s size (0-based, in points, its /Rotate applied), if asked before. @param {number} n */
  sizeNow(n) {
    return this.sizes.get(clampPage(n, this.pages)) ?? null;
  }

  /** Page `n`'s size (0-based, in points, its /Rotate applied). @param {number} n @returns {Promise<Size>} */
  async pageSize(n) {
    const i = clampPage(n, this.pages);
    const known = this.sizes.get(i);
    if (known) return known;
    try {
      const vp = (await this.doc.getPage(i + 1)).getViewport({ scale: 1 });
      const size = { width: vp.width, height: vp.height };
      this.sizes.set(i, size);
      return size;
    } catch (e) {
      throw pdfFailure(e);
    }
  }

  /**
   * Page `n` (0-based) drawn at `scale` (device pixels per point) on a new canvas, white behind
   * it; `signal` stops the drawing (an AbortError).
   * @param {number} n @param {number} scale @param {AbortSignal} [signal]
   * @returns {Promise<HTMLCanvasElement>}
   */
  async render(n, scale, signal) {
    if (signal?.aborted) throw new DOMException('the page is no longer wanted', 'AbortError');
    try {
      const page = await this.doc.getPage(clampPage(n, this.pages) + 1);
      const viewport = page.getViewport({ scale });
      const canvas = document.createElement('canvas');
      const px = pixelSize(viewport, 1);
      canvas.width = px.width;
      canvas.height = px.height;
      // Opaque: a page is paper, and an opaque canvas draws faster.
      const canvasContext = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d', { alpha: false }));
      const task = page.render({ canvas, canvasContext, viewport });
      const stop = () => task.cancel();
      signal?.addEventListener('abort', stop, { once: true });
      try {
        await task.promise;
      } finally {
        signal?.removeEventListener('abort', stop);
      }
      return canvas;
    } catch (e) {
      throw pdfFailure(e);
    }
  }

  /** Frees the document (its pages in the worker); the shared worker stays. */
  close() {
    if (this.closed) return;
    this.closed = true;
    this.task.destroy().catch(() => {});
  }
}

/**
 * Opens a PDF from its bytes (handed over: the buffer goes to the worker and is empty after).
 * A file pdf.js cannot read, or one that wants a password, fails with a PdfError.
 * @param {ArrayBuffer | Uint8Array} bytes @param {AbortSignal} [signal]
 * @returns {Promise<PdfDoc>}
 */
export async function openPdf(bytes, signal) {
  const lib = await library();
  worker ??= new lib.PDFWorker({ name: 'huizhen-pdf' });
  const task = lib.getDocument({
    data: bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes),
    worker,
    // Nothing is evaluated (this version has no eval at all; the flag keeps an older one from
    // trying, which the page's policy would refuse anyway).
    isEvalSupported: false,
    // Chinese report PDFs often name fonts such as SimSun without embedding them: those need
    // Adobe's CMaps, and the 14 standard fonts cover the Latin ones (both vendored).
    cMapUrl: new URL('../vendor/pdfjs/cmaps/', import.meta.url).href,
    cMapPacked: true,
    standardFontDataUrl: new URL('../vendor/pdfjs/standard_fonts/', import.meta.url).href,
    // The main thread draws; a second worker would want GlobalWorkerOptions.rendererSrc.
    disableWorkerRendering: true,
  });
  const stop = () => { task.destroy().catch(() => {}); };
  signal?.addEventListener('abort', stop, { once: true });
  try {
    const doc = new PdfDoc(await task.promise, task);
    if (signal?.aborted) {
      doc.close();
      throw new DOMException('the file is no longer wanted', 'AbortError');
    }
    return doc;
  } catch (e) {
    throw signal?.aborted ? new DOMException('the file is no longer wanted', 'AbortError') : pdfFailure(e);
  } finally {
    signal?.removeEventListener('abort', stop);
  }
}
