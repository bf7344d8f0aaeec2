// The bytes of attachments over HTTP (docs/api.md §Attachments), with the session's token
// (api.js withToken): a file or a rendered image fetched whole as a Blob, a file sent as the raw
// body with its progress (XMLHttpRequest: fetch tells nothing of an upload's progress), a Blob
// saved under its name, and a Blob shown in the page.
//
// Showing a Blob as an image depends on the page's own Content-Security-Policy
// (signaling/src/web.rs): an object URL where it lists blob: images, a data: URL where it does
// not. The policy is read once from the server's answer, never assumed. A PDF needs neither:
// pdf.js draws its pages from the bytes (../pdfview.js).
import { ApiError, withToken } from '../api.js';
import { cspAllows } from './attachfacts.js';

/** What the page's policy lets a Blob be shown as. @typedef {{ img: boolean, frame: boolean }} BlobPolicy */
/** A Blob made showable; `release` frees it (revokes an object URL) once nothing shows it. @typedef {{ url: string, release: () => void }} Shown */

/** @type {Promise<BlobPolicy> | null} */
let policyAsked = null;
/** An object URL handed to a download lives this long: the browser has read it by then. */
const HANDED_OVER_MS = 60e3;

/**
 * What the page's policy lets a Blob be shown as, asked of the server once (the index page's
 * headers). Unknown (the server unreachable): neither, which always works, and asked again later.
 * @returns {Promise<BlobPolicy>}
 */
export function blobPolicy() {
  policyAsked ??= fetch('/', { method: 'HEAD', cache: 'no-store' })
    .then((res) => {
      const csp = res.headers.get('content-security-policy');
      return { img: cspAllows(csp, 'img-src', 'blob:'), frame: cspAllows(csp, 'frame-src', 'blob:') };
    }, () => {
      policyAsked = null;
      return { img: false, frame: false };
    });
  return policyAsked;
}

/** An ApiError from a refusal's status and body (the server's `{code, message, details}`). @param {number} status @param {string} body */
function refusal(status, body) {
  /** @type {any} */
  let data = null;
  try { data = JSON.parse(body); } catch { /* not JSON: a proxy's page */ }
  return new ApiError(status, data?.code || 'http_error', data?.message || `HTTP ${status}`, data?.details);
}

/**
 * GETs `path` with the session's token and returns the body as a Blob; a refusal is thrown as an
 * ApiError, an abort as the fetch's AbortError.
 * @param {string} path @param {AbortSignal} [signal]
 * @returns {Promise<Blob>}
 */
export function fetchBlob(path, signal) {
  return withToken(async (token) => {
    let res;
    try {
      res = await fetch(path, { headers: { Authorization: `Bearer ${token}` }, cache: 'no-store', signal });
    } catch (e) {
      if (signal?.aborted) throw e;
      throw new ApiError(0, 'network', 'the server cannot be reached');
    }
    if (!res.ok) throw refusal(res.status, await res.text().catch(() => ''));
    return res.blob();
  });
}

/**
 * POSTs `file` as the raw body of `path` with the session's token; `progress(sent, total)` is
 * called as the bytes go. Resolves with the answer's JSON; a refusal is thrown as an ApiError,
 * a lost connection as ApiError 'network', an abort as an AbortError.
 * @param {string} path @param {Blob} file @param {(sent: number, total: number) => void} progress
 * @param {AbortSignal} [signal]
 * @returns {Promise<any>}
 */
export function sendFile(path, file, progress, signal) {
  return withToken((token) => new Promise((resolve, reject) => {
    if (signal?.aborted) { reject(new DOMException('the upload was stopped', 'AbortError')); return; }
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.setRequestHeader('Accept', 'application/json');
    // The server decides by the content, whatever the type says.
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.upload.addEventListener('progress', (e) => progress(e.loaded, e.lengthComputable ? e.total : file.size));
    xhr.addEventListener('load', () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try { resolve(JSON.parse(xhr.responseText)); } catch { reject(new ApiError(xhr.status, 'bad_response', 'the server sent no JSON')); }
      } else {
        reject(refusal(xhr.status, xhr.responseText));
      }
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, 'network', 'the server cannot be reached')));
    xhr.addEventListener('abort', () => reject(new DOMException('the upload was stopped', 'AbortError')));
    signal?.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(file);
  }));
}

/** A Blob as a data: URL (what the page's policy allows for images today). @param {Blob} blob @returns {Promise<string>} */
function dataUrl(blob) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result));
    r.onerror = () => reject(r.error);
    r.readAsDataURL(blob);
  });
}

/**
 * A Blob made showable in an <img>: an object URL where the policy allows blob: images, else a
 * data: URL (nothing to release).
 * @param {Blob} blob
 * @returns {Promise<Shown>}
 */
export async function showable(blob) {
  if ((await blobPolicy()).img) {
    const url = URL.createObjectURL(blob);
    return { url, release: () => URL.revokeObjectURL(url) };
  }
  return { url: await dataUrl(blob), release: () => {} };
}

/** Saves a Blob as a file named `name` (the browser's download). @param {Blob} blob @param {string} name */
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  // The download has read the URL long before; revoked so the Blob's memory can go.
  setTimeout(() => URL.revokeObjectURL(url), HANDED_OVER_MS);
}
