// What a guest's page keeps (api.md §Guest links): once the link is used, the answer of
// POST /v1/guest/session (the guest's own token and the guest view) stays in sessionStorage,
// so that a reload goes on without the link, which opens for no one a second time; once the
// call is over for the guest, also how it ended, so that a reload shows that again instead of
// a way back in. And what the last page says for each way a guest's call ends. The rules are
// pure (web-client/test/guest.test.mjs); only loadSession and saveSession touch the storage.

/**
 * What a guest sees of the consultation: when it is and whether it is on, nothing of the case.
 * `name` is the name the guest gave.
 * @typedef {{ id: string, kind: string, status: string, start: string | null, duration_minutes: number | null,
 *   name: string | null, expires_at: string }} GuestView
 */

/**
 * @typedef {object} GuestSession
 * @property {string} link the link this page came through (used up by now)
 * @property {string} token the guest's own token, the bearer of /v1/guest/consultation and /v1/guest/join
 * @property {string} expires_at when the token (and the link) runs out
 * @property {GuestView} consultation
 * @property {string} [done] how the call ended for this page (a final phase of call/state.js)
 */

/**
 * How a guest's page ends: a title, the reason (a catalogue key, or none), and the thanks.
 * @typedef {{ title: string, text: string | null }} Ending
 */

const KEY = 'huizhen.guest';

/** The longest name a guest may give (api.md: 1 to 40 characters, trimmed). */
export const MAX_NAME_CHARS = 40;

/** Consultation statuses after which there is no call to come to (api.md). */
export const CLOSED_STATUSES = ['ended', 'reported', 'rejected', 'cancelled', 'no_show'];

/**
 * Refusals that mean this link or this guest's token opens nothing any more: said as they are
 * (error.<code>), with no form and no retry.
 */
export const LINK_GONE = ['guest_link_used', 'guest_link_expired', 'guest_link_revoked', 'guest_link_invalid'];

/** @param {unknown} v @returns {v is string} */
const isText = (v) => typeof v === 'string' && v.length > 0;

/**
 * A kept session, or null when there is none or it is not one (another version of the page,
 * edited by hand).
 * @param {string | null} raw
 * @returns {GuestSession | null}
 */
export function parseSession(raw) {
  if (!raw) return null;
  /** @type {any} */
  let v;
  try { v = JSON.parse(raw); } catch { return null; }
  if (!v || typeof v !== 'object' || !isText(v.link) || !isText(v.token) || !isText(v.expires_at)) return null;
  const c = v.consultation;
  if (!c || typeof c !== 'object' || !isText(c.id) || !isText(c.kind) || !isText(c.status)) return null;
  /** @type {GuestSession} */
  const s = { link: v.link, token: v.token, expires_at: v.expires_at, consultation: c };
  if (isText(v.done)) s.done = v.done;
  return s;
}

/**
 * Whether a kept session goes on for the page opened: with no link in the address (a reload
 * after the link was used), or with the very link it came through. Another link is another
 * invitation: its own name page.
 * @param {GuestSession | null} s @param {string | null} link
 * @returns {s is GuestSession}
 */
export function continues(s, link) {
  return Boolean(s) && (!link || s?.link === link);
}

/**
 * What the last page says. `phase`: how the call ended for this page (call/state.js's final
 * phases), or 'ended' for a consultation found over. `problem`: what the server says of the
 * link now (a code of LINK_GONE, e.g. withdrawn), or null: it explains a removal or a refusal
 * better than the room could (the room says only `removed`, by the system).
 * @param {string} phase @param {string | null} problem
 * @returns {Ending}
 */
export function endingOf(phase, problem) {
  if (phase === 'ended') return { title: 'guest.end.ended', text: null };
  if (phase === 'left') return { title: 'guest.end.left', text: null };
  if (problem) return { title: 'guest.end.other', text: `error.${problem}` };
  return { title: 'guest.end.other', text: `call.final.${phase}` };
}

/** The session kept in this tab, or null. */
export function loadSession() {
  try { return parseSession(sessionStorage.getItem(KEY)); } catch { return null; }
}

/** @param {GuestSession} s */
export function saveSession(s) {
  try { sessionStorage.setItem(KEY, JSON.stringify(s)); } catch { /* storage off: a reload needs the link again */ }
}
