// The office page's push channel (issue 14): GET /v1/events read with fetch (the session token
// goes in a header, which EventSource cannot send), its blocks parsed by sse.js, each
// `consultation` change and each `ready`/`resync` handed to the handlers (updates.js decides
// what they mean). When the stream fails or ends it is opened again after 1 s, doubling up to
// 30 s, and the wait starts from 1 s again once a stream is `ready`. It ends when its session
// token expires, so it is opened again with a fresh token (api.js refreshes it), and at once
// when the token was refreshed meanwhile. While it is down, and only then, the handlers'
// `poll` runs every 30 s so the page is not left stale.
//
// For the browser tests: <html data-events="off|connecting|live|down"> says where it stands,
// and window.hzEvents counts what happened.
import { onTokenRefreshed, openStream } from '../api.js';
import { FIRST_DELAY_MS, nextDelay, parseChange } from './changes.js';
import { takeEvents } from './sse.js';

/** @typedef {import('./changes.js').Change} Change */

/**
 * @typedef {object} Handlers
 * @property {(change: Change) => void} change a consultation changed
 * @property {(afterGap: boolean) => void} ready the stream is live; afterGap: an earlier
 *   stream or attempt came before, so changes may have been missed (reload what is shown)
 * @property {() => void} resync the server dropped changes for this stream (reload)
 * @property {() => void} poll the stream is down: show the current page afresh
 */

const POLL_MS = 30000;
/** Keep-alives come every 15 s: this long without a byte, the connection is dead. */
const SILENT_MS = 45000;

/**
 * The poll interval. Browser tests only may shorten it (tests/e2e/events.test.mjs sets
 * localStorage 'huizhen.test.poll_ms' to see the fallback in seconds); nobody else sets it.
 */
function pollMs() {
  let v = NaN;
  try { v = Number(localStorage.getItem('huizhen.test.poll_ms')); } catch { /* no storage */ }
  return Number.isFinite(v) && v >= 200 ? v : POLL_MS;
}

/** What happened, for the browser tests. */
const stats = { opened: 0, ready: 0, changes: 0, resyncs: 0, failures: 0, polls: 0, polling: false, state: 'off' };
/** @type {any} */ (window).hzEvents = stats;

/**
 * A running channel.
 * @typedef {{ handlers: Handlers, attempt: AbortController | null, stopped: boolean,
 *   reopen: boolean, delay: number, attempts: number, live: boolean,
 *   poll: ReturnType<typeof setInterval> | null, wake: (() => void) | null }} Run
 */

/** The running channel, or null. @type {Run | null} */
let run = null;

/** @param {string} state */
function setState(state) {
  stats.state = state;
  document.documentElement.dataset.events = state;
}

/** Opens the channel unless it is open; `handlers` are kept for its whole life. @param {Handlers} handlers */
export function connectEvents(handlers) {
  if (run) return;
  /** @type {Run} */
  const r = { handlers, attempt: null, stopped: false, reopen: false, delay: FIRST_DELAY_MS, attempts: 0, live: false, poll: null, wake: null };
  run = r;
  loop(r);
}

/** Closes the channel (sign-out). */
export function disconnectEvents() {
  const r = run;
  if (!r) return;
  run = null;
  r.stopped = true;
  stopPolling(r);
  r.attempt?.abort();
  r.wake?.();
  setState('off');
}

// A refreshed token: a stream opened with the old one ends when that one expires; open it
// again now with the new one, rather than lose changes in between.
onTokenRefreshed(() => {
  const r = run;
  if (!r?.live || !r.attempt) return;
  r.reopen = true;
  r.attempt.abort();
});

/** @param {Run} r */
async function loop(r) {
  while (!r.stopped) {
    r.attempts++;
    r.reopen = false;
    // Down stays down until a stream is ready; a first attempt or a reopen is connecting.
    if (stats.state !== 'down') setState('connecting');
    const attempt = new AbortController();
    r.attempt = attempt;
    let unauthorised = false;
    try {
      await readStream(r, attempt);
    } catch (e) {
      // 401: the session is over (api.js ended it, app.js shows the sign-in form).
      unauthorised = /** @type {{ status?: number } | null | undefined} */ (e)?.status === 401;
      if (!r.stopped && !r.reopen) stats.failures++;
    }
    r.live = false;
    r.attempt = null;
    if (r.stopped) return;
    if (unauthorised) {
      disconnectEvents();
      return;
    }
    if (r.reopen) continue;
    setState('down');
    startPolling(r);
    // A stream that was live waits the first delay (`ready` reset it); each failed attempt
    // after it waits twice as long, up to 30 s.
    const wait = r.delay;
    r.delay = nextDelay(wait);
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, wait);
      r.wake = () => { clearTimeout(timer); resolve(undefined); };
    });
    r.wake = null;
  }
}

/**
 * One stream, from the request to its end: resolves when the server ends it, throws when the
 * request fails or the connection is dropped.
 * @param {Run} r
 * @param {AbortController} attempt
 */
async function readStream(r, attempt) {
  const res = await openStream('/v1/events', attempt.signal);
  if (!res.body) throw new Error('a stream without a body');
  stats.opened++;
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  /** @type {ReturnType<typeof setTimeout> | null} */
  let silent = null;
  const watch = () => {
    if (silent) clearTimeout(silent);
    silent = setTimeout(() => attempt.abort(), SILENT_MS);
  };
  try {
    watch();
    for (;;) {
      const { done, value } = await reader.read();
      if (done || r.stopped) return;
      watch();
      const got = takeEvents(buffer + decoder.decode(value, { stream: true }));
      buffer = got.rest;
      for (const e of got.events) dispatch(r, e);
    }
  } finally {
    if (silent) clearTimeout(silent);
    reader.cancel().catch(() => {});
  }
}

/** @param {Run} r @param {import('./sse.js').SseEvent} e */
function dispatch(r, e) {
  if (r.stopped) return;
  try {
    handle(r, e);
  } catch (err) {
    // A screen's failure is not the stream's: keep reading.
    console.error('huizhen events: a handler failed', err);
  }
}

/** @param {Run} r @param {import('./sse.js').SseEvent} e */
function handle(r, e) {
  if (e.event === 'ready') {
    r.live = true;
    r.delay = FIRST_DELAY_MS;
    stats.ready++;
    stopPolling(r);
    setState('live');
    r.handlers.ready(r.attempts > 1);
  } else if (e.event === 'consultation') {
    const change = parseChange(e.data);
    if (!change) return;
    stats.changes++;
    r.handlers.change(change);
  } else if (e.event === 'resync') {
    stats.resyncs++;
    r.handlers.resync();
  }
}

/** @param {Run} r */
function startPolling(r) {
  if (r.poll) return;
  stats.polling = true;
  r.poll = setInterval(() => {
    stats.polls++;
    r.handlers.poll();
  }, pollMs());
}

/** @param {Run} r */
function stopPolling(r) {
  if (r.poll) clearInterval(r.poll);
  r.poll = null;
  stats.polling = false;
}
