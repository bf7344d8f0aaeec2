// What a pushed consultation change (GET /v1/events, api.md "Events") means for the open
// office page: whether it is valid, whether the current route shows it, whether it is an
// emergency that is now the signed-in specialist's, whether it is news for a requesting
// doctor, and how long to wait before opening the stream again. Pure data and logic, no DOM
// and no requests: updates.js and events.js act on it, node unit tests pin it
// (web-client/test/changes.test.mjs).

/**
 * A change as the server sends it in `event: consultation`: ids and lifecycle words only,
 * never case text.
 * @typedef {{ id: string, action: string, status: string, urgency: string, version: number,
 *   specialists: string[] }} Change
 */

/** The first wait before opening the stream again, doubled after each failure up to MAX. */
export const FIRST_DELAY_MS = 1000;
export const MAX_DELAY_MS = 30000;

/** The steps that make a specialist responsible for an emergency (issue 14). */
export const ALERT_ACTIONS = ['assign', 'emergency_opened', 'accept'];

/** The steps a requesting doctor is told of: their request has a time now. */
const NEWS = /** @type {Record<string, 'accepted' | 'rescheduled'>} */ ({ accept: 'accepted', reschedule: 'rescheduled' });

const ID = '[A-Za-z0-9_-]{1,64}';
const DETAIL = new RegExp(`^/c/(${ID})(?:/report|/referral/${ID})?$`);
const LISTS = ['/', '/all'];
/** The referrals page and its tabs (referrallist.js): any consultation may have a row there. */
const REFERRAL_LISTS = /^\/referrals(?:\/(?:incoming|outgoing))?$/;

/**
 * The change in an event's data, or null when it is not one (then it is ignored).
 * @param {string} data
 * @returns {Change | null}
 */
export function parseChange(data) {
  /** @type {any} */
  let v;
  try { v = JSON.parse(data); } catch { return null; }
  if (!v || typeof v !== 'object') return null;
  const strings = ['id', 'action', 'status', 'urgency'].every((k) => typeof v[k] === 'string' && v[k] !== '');
  if (!strings || !Number.isInteger(v.version) || !Array.isArray(v.specialists)) return null;
  if (!v.specialists.every((/** @type {unknown} */ s) => typeof s === 'string')) return null;
  return { id: v.id, action: v.action, status: v.status, urgency: v.urgency, version: v.version, specialists: [...v.specialists] };
}

/** Whether `path` is a list of consultations or of referrals. @param {string} path */
const isList = (path) => LISTS.includes(path) || REFERRAL_LISTS.test(path);

/**
 * The consultation id of a detail, report or referral form route ('/c/<id>', '/c/<id>/report',
 * '/c/<id>/referral/<rid>'), or null.
 * @param {string} path the route, location.hash without '#'
 * @returns {string | null}
 */
export function routeConsultation(path) {
  return path.match(DETAIL)?.[1] ?? null;
}

/**
 * Whether the page at `path` follows changes at all: the lists (home, #/all, the referrals)
 * and one consultation's pages. Not the call (re-rendering would leave the room), the request
 * form or the administration.
 * @param {string} path
 */
export function followsChanges(path) {
  return isList(path) || routeConsultation(path) !== null;
}

/**
 * Whether the page at `path` may show consultation `change.id`: a list may hold any of them;
 * a consultation's page only its own.
 * @param {string} path
 * @param {Change} change
 */
export function routeShows(path, change) {
  if (isList(path)) return true;
  return routeConsultation(path) === change.id;
}

/**
 * Whether a shown consultation page is already as new as the change (the user's own step,
 * which re-rendered it): its version, from the page, against the change's.
 * @param {number | null} shownVersion null when the page does not say
 * @param {Change} change
 */
export function alreadyShown(shownVersion, change) {
  return shownVersion !== null && shownVersion >= change.version;
}

/**
 * Whether the change makes an emergency the responsibility of user `me`: an emergency step
 * (assign, emergency_opened, accept) that lists them among its specialists.
 * @param {Change} change
 * @param {string | null | undefined} me the signed-in user's id
 */
export function emergencyForMe(change, me) {
  return Boolean(me) && change.urgency === 'emergency' && ALERT_ACTIONS.includes(change.action)
    && change.specialists.includes(/** @type {string} */ (me));
}

/**
 * Whether an emergency alert for this consultation has nothing left to alert: it is no longer
 * live (ended, cancelled…).
 * @param {Change} change
 */
export function emergencyOver(change) {
  return change.urgency === 'emergency' && change.status !== 'live';
}

/**
 * What a doctor is told of a change of a request of theirs, or null: 'accepted' (scheduled by
 * the centre) or 'rescheduled'. Whether it is their request the caller checks (the change does
 * not name the requester).
 * @param {Change} change
 * @param {string | null | undefined} role the signed-in user's role
 * @returns {'accepted' | 'rescheduled' | null}
 */
export function newsFor(change, role) {
  if (role !== 'doctor') return null;
  return NEWS[change.action] ?? null;
}

/**
 * The wait before the next attempt after one that waited `ms`: doubled, at most MAX_DELAY_MS.
 * A stream that reached `ready` starts again from FIRST_DELAY_MS.
 * @param {number} ms
 */
export function nextDelay(ms) {
  return Math.min(Math.max(ms, FIRST_DELAY_MS) * 2, MAX_DELAY_MS);
}
