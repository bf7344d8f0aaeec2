// The case panel's pictures over HTTP (docs/api.md §Attachments): each browser fetches the
// image it shows with the session's token (api.js withToken; the API decides who may see it)
// and decodes it into an ImageBitmap, which the panel draws on a canvas. No object URL is made:
// the page's Content-Security-Policy (signaling/src/web.rs) allows no blob: images, and a
// bitmap needs none. Only the last few pictures are kept (the one shown, its neighbours
// fetched ahead, a few just left); what drops out is closed at once, and everything when the
// call ends.
import { ApiError, withToken } from '../api.js';

/** Pictures kept decoded: the one shown, the next and previous fetched ahead, a few just left. */
const KEEP = 6;

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
   * The picture at `path`, fetched and decoded once however often it is asked for.
   * @param {string} path @returns {Promise<ImageBitmap>}
   */
  get(path) {
    const here = this.peek(path);
    if (here) return Promise.resolve(here);
    const on = this.coming.get(path);
    if (on) return on.promise;
    const stop = new AbortController();
    const promise = fetchBlob(path, stop.signal)
      .then((blob) => createImageBitmap(blob))
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
