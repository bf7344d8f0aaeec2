// A consultation's encoder credentials (api.md §Encoders: publishing by WHIP, RFC 9725) as the
// detail page offers them: what state a credential is in, what may still be done with it, the
// choices of validity, who may manage them, the order they are listed in and the WHIP URL an
// encoder's operator enters. Pure data and logic: no DOM, no i18n, no requests (encoders.js
// shows it; web-client/test/encoderlinks.test.mjs).
import { instantMs, mayChangeSettings } from './guestlinks.js';

/**
 * A credential as the consultation record lists it (`encoders`). The label names a room or a
 * device ("手术室 3 腔镜") and is the encoder's name in the call.
 * @typedef {{ id: string, label: string, created_by: string, created_at: string, expires_at: string,
 *   revoked_at: string | null }} EncoderLink
 */

/**
 * Unlike a guest link a credential is never "used up": an encoder reconnects with it again and
 * again, so it is only open (active) or not any more.
 * @typedef {'active' | 'revoked' | 'expired'} EncoderStatus
 */

/** @typedef {import('./guestlinks.js').SettingsTarget} EncoderTarget */

/**
 * How long a new credential may stay valid, in hours: an operation, a day of surgery, a
 * week, up to a month of teaching sessions (the server takes 1 to 744, MAX_ENCODER_HOURS).
 */
export const VALIDITY_HOURS = [2, 8, 24, 72, 168, 744];
/** The server's own default too (api::whip DEFAULT_VALID_HOURS): a day of surgery. */
export const DEFAULT_VALIDITY_HOURS = 24;
/** The longest label the server takes (lifecycle::MAX_ENCODER_LABEL_CHARS). */
export const MAX_LABEL_CHARS = 40;
/** Credentials per consultation, withdrawn and expired ones included (lifecycle::MAX_ENCODERS). */
export const MAX_ENCODER_LINKS = 20;

/**
 * Where a credential stands at `now` (ms): withdrawn first (what a host did, whether or not it
 * ran out since), then run out; else active.
 * @param {EncoderLink} e @param {number} now
 * @returns {EncoderStatus}
 */
export function encoderStatus(e, now) {
  if (e.revoked_at) return 'revoked';
  // An expiry that cannot be read counts as run out: never as open for ever.
  if (!(now < instantMs(e.expires_at))) return 'expired';
  return 'active';
}

/**
 * Whether the credential still lets an encoder publish: only such a one is shown again (the
 * server would sign a token that opens nothing) or withdrawn.
 * @param {EncoderLink} e @param {number} now
 */
export function isActive(e, now) {
  return encoderStatus(e, now) === 'active';
}

/**
 * The credentials as the page lists them: active ones first (those are what the host works
 * with; a credential lives up to a month, so old withdrawn ones pile up), each group newest
 * first. A copy: the record is left alone.
 * @param {EncoderLink[] | undefined} list @param {number} now
 */
export function sortEncoders(list, now) {
  return [...(list ?? [])].sort((a, b) => Number(isActive(b, now)) - Number(isActive(a, now))
    || instantMs(b.created_at) - instantMs(a.created_at));
}

/**
 * The WHIP endpoint's full URL: the server's `path` (`/v1/consultations/{id}/whip`) on this
 * site's origin, which is the address the encoder reaches the server at too.
 * @param {string} origin e.g. location.origin @param {string} path
 */
export function whipUrl(origin, path) {
  return `${origin.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}

/**
 * Whether `user` may make, show again and withdraw credentials of `c`: the server's
 * `may_host`, the rule of the room's settings too (a host: lead specialist, its coordinator,
 * the requesting doctor of an emergency; or a coordinator while it has none), while the
 * consultation is not over. A requester who may invite guests may not bring in an encoder.
 * @param {EncoderTarget} c
 * @param {{ id: string, role: string } | null} user
 */
export function mayManageEncoders(c, user) {
  return mayChangeSettings(c, user);
}

/**
 * Whether another credential can be made: the server keeps at most MAX_ENCODER_LINKS,
 * withdrawn and expired ones included.
 * @param {EncoderLink[] | undefined} list
 */
export function canCreateMore(list) {
  return (list?.length ?? 0) < MAX_ENCODER_LINKS;
}

/**
 * A label as it is sent: trimmed; null when it is empty or longer than the server takes
 * (counted in characters, as the server counts, not in UTF-16 units).
 * @param {string} raw
 * @returns {string | null}
 */
export function cleanLabel(raw) {
  const label = String(raw ?? '').trim();
  const chars = [...label].length;
  return chars >= 1 && chars <= MAX_LABEL_CHARS ? label : null;
}

/**
 * How a validity choice reads: up to a day in hours, longer in whole days (744 h: 31 days).
 * The words are the caller's (i18n), this says which and the number.
 * @param {number} hours
 * @returns {{ unit: 'hours' | 'days', n: number }}
 */
export function validityParts(hours) {
  return hours > 24 && hours % 24 === 0 ? { unit: 'days', n: hours / 24 } : { unit: 'hours', n: hours };
}
