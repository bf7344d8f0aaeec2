// The HTTP API: JSON in and out, the session in sessionStorage, one refresh when the access
// token has expired. Every failure becomes an ApiError with the server's `code`. Streams
// (GET /v1/events) are opened here too, with the same token and the same refresh.

/**
 * The sign-in response (docs/api.md, "Sign-in response"), kept as the session.
 * @typedef {{ access_token: string, expires_at: string, refresh_token: string, refresh_expires_at?: string,
 *   user: Me }} Session
 * The signed-in user (a User record); `must_change_password` while a one-time password is in use.
 * @typedef {import('./office/people.js').User & { must_change_password?: boolean }} Me
 */

const KEY = 'huizhen.session';
let session = load();
/** @type {Promise<void> | null} the refresh on its way, shared by every call that needs it */
let refreshing = null;
/** @type {((err: ApiError) => void)[]} */
const signedOut = [];
/** @type {(() => void)[]} */
const refreshed = [];
/** A stream is opened with a fresh token when its own has less than this left (seconds). */
const STREAM_MIN_TOKEN_SECS = 10;

export class ApiError extends Error {
  /**
   * @param {number} status the HTTP status; 0 when the server could not be reached
   * @param {string} code @param {string} message @param {any} [details]
   */
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** @returns {Session | null} */
function load() {
  try { return JSON.parse(sessionStorage.getItem(KEY) || 'null'); } catch { return null; }
}

/** @param {Session | null} s */
function save(s) {
  session = s;
  try {
    if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
    else sessionStorage.removeItem(KEY);
  } catch { /* storage disabled: the session lives until the tab reloads */ }
}

/** The signed-in user (UserView), or null. @returns {Me | null} */
export function me() { return session?.user ?? null; }

/** `fn(error)` runs when the server ends the session (revoked, refresh expired). @param {(err: ApiError) => void} fn */
export function onSignedOut(fn) { signedOut.push(fn); }

/** `fn()` runs after the access token was refreshed (streams opened with the old one reopen). @param {() => void} fn */
export function onTokenRefreshed(fn) { refreshed.push(fn); }

/** @param {ApiError} err */
function endSession(err) {
  save(null);
  for (const fn of signedOut) fn(err);
}

/**
 * @param {string} method @param {string} path @param {any} [body] @param {string} [token]
 * @returns {Promise<any>} the answer's JSON; null for 204
 */
async function send(method, path, body, token) {
  /** @type {Record<string, string>} */
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, 'network', 'the server cannot be reached');
  }
  if (res.status === 204) return null;
  let data = null;
  try { data = await res.json(); } catch { /* not JSON */ }
  if (!res.ok) {
    throw new ApiError(res.status, data?.code || 'http_error', data?.message || `HTTP ${res.status}`, data?.details);
  }
  if (data === null) throw new ApiError(res.status, 'bad_response', 'the server sent no JSON');
  return data;
}

/** @param {string} token the session's refresh token (a refresh on its way is shared instead) */
async function refresh(token) {
  refreshing ??= send('POST', '/v1/auth/refresh', { refresh_token: token })
    .then((s) => {
      save(s);
      for (const fn of refreshed) {
        try { fn(); } catch (err) { console.error('huizhen: a token listener failed', err); }
      }
    }, (e) => {
      if (e.status === 401) {
        // The refresh token is gone too: expired (the user was away for hours), or revoked.
        const ended = new ApiError(401, e.code === 'token_expired' ? 'session_expired' : e.code, e.message);
        endSession(ended);
        throw ended;
      }
      throw e;
    })
    .finally(() => { refreshing = null; });
  return refreshing;
}

/**
 * An authenticated call; refreshes the session once on 401 token_expired. Any other 401 ends
 * the session (onSignedOut listeners run) and is thrown as it came.
 * @param {string} method
 * @param {string} path
 * @param {any} [body]
 * @returns {Promise<any>}
 */
export async function api(method, path, body) {
  if (!session) throw new ApiError(401, 'token_missing', 'sign in first');
  try {
    try {
      return await send(method, path, body, session.access_token);
    } catch (e) {
      if (!(e instanceof ApiError) || e.code !== 'token_expired' || !session?.refresh_token) throw e;
      await refresh(session.refresh_token);
      return await send(method, path, body, session.access_token);
    }
  } catch (e) {
    if (e instanceof ApiError && e.status === 401 && session) endSession(e);
    throw e;
  }
}

/** A non-2xx answer as an ApiError with the server's code. @param {Response} res */
async function failure(res) {
  let data = null;
  try { data = await res.json(); } catch { /* not JSON */ }
  return new ApiError(res.status, data?.code || 'http_error', data?.message || `HTTP ${res.status}`, data?.details);
}

/** Seconds the access token has left by this machine's clock; Infinity when unknown. */
function tokenSecondsLeft() {
  const at = Date.parse(session?.expires_at ?? '');
  return Number.isNaN(at) ? Infinity : (at - Date.now()) / 1000;
}

/** @param {string} path @param {string} token @param {AbortSignal} signal @returns {Promise<Response>} */
async function get(path, token, signal) {
  let res;
  try {
    res = await fetch(path, { headers: { Accept: 'text/event-stream', Authorization: `Bearer ${token}` }, signal, cache: 'no-store' });
  } catch (e) {
    if (signal.aborted) throw e;
    throw new ApiError(0, 'network', 'the server cannot be reached');
  }
  if (!res.ok) throw await failure(res);
  return res;
}

/**
 * Opens a streamed GET (server-sent events) with the session's token and returns the Response,
 * its body unread. Tokens are handled as in api(): one refresh on 401 token_expired; any other
 * 401 ends the session. A token about to expire is refreshed first: the server ends a stream
 * when its token expires, so one opened with an old token would end at once.
 * @param {string} path
 * @param {AbortSignal} signal aborts the request and the stream
 * @returns {Promise<Response>}
 */
export async function openStream(path, signal) {
  if (!session) throw new ApiError(401, 'token_missing', 'sign in first');
  try {
    if (session.refresh_token && tokenSecondsLeft() < STREAM_MIN_TOKEN_SECS) await refresh(session.refresh_token);
    try {
      return await get(path, session.access_token, signal);
    } catch (e) {
      if (!(e instanceof ApiError) || e.code !== 'token_expired' || !session?.refresh_token) throw e;
      await refresh(session.refresh_token);
      return await get(path, session.access_token, signal);
    }
  } catch (e) {
    if (e instanceof ApiError && e.status === 401 && session) endSession(e);
    throw e;
  }
}

/**
 * Runs a request the caller makes itself (a file fetched whole as a Blob, an upload with
 * progress: office/transfer.js) with the session's token, handled as in openStream(): a token
 * about to expire is refreshed first (a long upload is not refused at its start), one refresh on
 * 401 token_expired, any other 401 ends the session.
 * @template T
 * @param {(token: string) => Promise<T>} fn sends the request; throws an ApiError for a refusal
 * @returns {Promise<T>}
 */
export async function withToken(fn) {
  if (!session) throw new ApiError(401, 'token_missing', 'sign in first');
  try {
    if (session.refresh_token && tokenSecondsLeft() < STREAM_MIN_TOKEN_SECS) await refresh(session.refresh_token);
    try {
      return await fn(session.access_token);
    } catch (e) {
      if (!(e instanceof ApiError) || e.code !== 'token_expired' || !session?.refresh_token) throw e;
      await refresh(session.refresh_token);
      return await fn(session.access_token);
    }
  } catch (e) {
    if (e instanceof ApiError && e.status === 401 && session) endSession(e);
    throw e;
  }
}

/**
 * Starts the browser's own download of a server URL that needs no header (a short-lived
 * recording link): the file streams to disk, however large, instead of into the page's memory.
 * @param {string} url @param {string} filename
 */
export function followDownload(url, filename) {
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
}

/** @param {string} username @param {string} password */
export async function login(username, password) {
  /** @type {Session} */
  const s = await send('POST', '/v1/auth/login', { username, password });
  save(s);
  return s.user;
}

/**
 * Sets a new password. The server signs every other session of the user out and answers with
 * fresh tokens for this one, kept as the session.
 * @param {string} oldPassword @param {string} newPassword
 */
export async function changePassword(oldPassword, newPassword) {
  /** @type {Session} */
  const s = await api('POST', '/v1/me/password', { old_password: oldPassword, new_password: newPassword });
  save(s);
  return s.user;
}

/** Signs out on the server (this revokes every session of the user), then locally. */
export async function logout() {
  try { await api('POST', '/v1/auth/logout'); } catch { /* signed out locally anyway */ }
  save(null);
}
