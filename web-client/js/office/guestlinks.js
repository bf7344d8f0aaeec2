// A consultation's guest links (api.md §Guest links) and its room settings (`settings`), as
// the detail page offers them: what state a link is in, what may still be done with it, the
// choices of validity, who may change how the room admits people. Pure data and logic: no
// DOM, no i18n, no requests (guests.js shows it; web-client/test/guestlinks.test.mjs).

/**
 * A link as the consultation record lists it (`guests`).
 * @typedef {{ id: string, label: string, created_by: string, created_at: string, expires_at: string,
 *   revoked_at: string | null, used_at: string | null, guest_name: string | null }} GuestLink
 */

/** @typedef {'unused' | 'used' | 'revoked' | 'expired'} LinkStatus */

/**
 * The consultation fields the rules read.
 * @typedef {{ status: string, urgency: string, requester: string, coordinator?: string | null,
 *   specialists: string[] }} SettingsTarget
 */

/** How long a new link may stay open, in hours (the server takes 1 to 168). */
export const VALIDITY_HOURS = [2, 8, 24, 72, 168];
export const DEFAULT_VALIDITY_HOURS = 24;
/** The longest label (what the inviter writes to tell links apart). */
export const MAX_LABEL_CHARS = 60;
/** Statuses in which links can be made and the settings changed (not closed). */
export const OPEN_STATUSES = ['requested', 'scheduled', 'live'];

/** An API instant in milliseconds (the API may send nanoseconds, Date reads milliseconds). @param {string} ts */
export function instantMs(ts) {
  return Date.parse(String(ts).replace(/(\.\d{3})\d+/, '$1'));
}

/**
 * Where a link stands at `now` (ms): withdrawn first (whether or not it was used), then run
 * out, then used (someone came through it) or not yet.
 * @param {GuestLink} link @param {number} now
 * @returns {LinkStatus}
 */
export function linkStatus(link, now) {
  if (link.revoked_at) return 'revoked';
  if (!(now < instantMs(link.expires_at))) return 'expired';
  return link.used_at ? 'used' : 'unused';
}

/**
 * Whether the link still lets someone in (or keeps the guest who came through it in): not
 * withdrawn and not run out. Only such a link can be withdrawn.
 * @param {GuestLink} link @param {number} now
 */
export function isOpen(link, now) {
  const s = linkStatus(link, now);
  return s === 'unused' || s === 'used';
}

/** Whether the link can be handed out again: open and nobody came through it yet. @param {GuestLink} link @param {number} now */
export function canCopyAgain(link, now) {
  return linkStatus(link, now) === 'unused';
}

/** The links newest first (the one just made at the top). @param {GuestLink[] | undefined} links */
export function sortLinks(links) {
  return [...(links ?? [])].sort((a, b) => instantMs(b.created_at) - instantMs(a.created_at));
}

/**
 * The address a guest opens: the server's `path` (`/#/guest/<token>`) on this site's origin.
 * @param {string} origin e.g. location.origin @param {string} path
 */
export function guestUrl(origin, path) {
  return `${origin.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}

/**
 * Whether `user` may change how the room admits people (`settings`): the consultation's
 * coordinator (any coordinator while it has none) or a host (lead specialist, its
 * coordinator, the requesting doctor of an emergency), while the consultation is not closed.
 * @param {SettingsTarget} c
 * @param {{ id: string, role: string } | null} user
 */
export function mayChangeSettings(c, user) {
  if (!user || !OPEN_STATUSES.includes(c.status)) return false;
  const itsCoordinator = user.role === 'coordinator' && (!c.coordinator || c.coordinator === user.id);
  const host = c.specialists[0] === user.id || c.coordinator === user.id
    || (c.urgency === 'emergency' && c.requester === user.id);
  return itsCoordinator || host;
}
