// A guest's requests (api.md §Guest links): plain fetch, with the guest's own token or (for the
// link's first use) none. The signed-in session of api.js is never touched: no refresh, no
// sign-out on a 401, whatever session this tab may also hold. A failure is an ApiError with
// the server's code and details, as everywhere in the client.
import { ApiError } from '../api.js';

/**
 * The guest's own token runs out with their link and stands for nothing else: for a guest, an
 * expired or unreadable token is said as the link's expiry or a bad link (the sign-in texts
 * of these codes would send them to a sign-in they do not have).
 * @type {Record<string, string>}
 */
const AS_LINK = { token_expired: 'guest_link_expired', invalid_token: 'guest_link_invalid', token_missing: 'guest_link_invalid' };

/**
 * @param {string} method
 * @param {string} path
 * @param {any} [body]
 * @param {string} [token] the guest's token (Authorization: Bearer)
 * @returns {Promise<any>}
 */
export async function guestApi(method, path, body, token) {
  /** @type {Record<string, string>} */
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'network', 'the server cannot be reached');
  }
  let data = null;
  try { data = await res.json(); } catch { /* not JSON */ }
  if (!res.ok) {
    const code = data?.code || 'http_error';
    throw new ApiError(res.status, (res.status === 401 && AS_LINK[code]) || code, data?.message || `HTTP ${res.status}`, data?.details);
  }
  if (data === null) throw new ApiError(res.status, 'bad_response', 'the server sent no JSON');
  return data;
}
