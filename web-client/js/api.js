// The HTTP API: JSON in and out, the session in sessionStorage, one refresh when the access
// token has expired. Every failure becomes an ApiError with the server's `code`.

const KEY = 'huizhen.session';
let session = load();
let refreshing = null;
const signedOut = [];

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

function load() {
  try { return JSON.parse(sessionStorage.getItem(KEY) || 'null'); } catch { return null; }
}

function save(s) {
  session = s;
  try {
    if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
    else sessionStorage.removeItem(KEY);
  } catch { /* storage disabled: the session lives until the tab reloads */ }
}

/** The signed-in user (UserView), or null. */
export function me() { return session?.user ?? null; }

/** `fn(error)` runs when the server ends the session (revoked, refresh expired). */
export function onSignedOut(fn) { signedOut.push(fn); }

function endSession(err) {
  save(null);
  for (const fn of signedOut) fn(err);
}

async function send(method, path, body, token) {
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

async function refresh() {
  refreshing ??= send('POST', '/v1/auth/refresh', { refresh_token: session.refresh_token })
    .then(save, (e) => {
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
      if (e.code !== 'token_expired' || !session?.refresh_token) throw e;
      await refresh();
      return await send(method, path, body, session.access_token);
    }
  } catch (e) {
    if (e.status === 401 && session) endSession(e);
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

export async function login(username, password) {
  save(await send('POST', '/v1/auth/login', { username, password }));
  return session.user;
}

/** Signs out on the server (this revokes every session of the user), then locally. */
export async function logout() {
  try { await api('POST', '/v1/auth/logout'); } catch { /* signed out locally anyway */ }
  save(null);
}
