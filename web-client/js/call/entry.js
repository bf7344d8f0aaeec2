// How a page comes into the room. The call screens (precall.js, room.js) ask `entry.join()`
// for a room token and never which kind of caller this is: a signed-in member's entry posts
// POST /v1/consultations/{id}/join with the session (api.js), a guest's (js/guest/) posts
// POST /v1/guest/join with the guest's own token. The entry also says where the pre-call
// screen's back link and the last screen's way on lead; a guest has neither.
import { api, me } from '../api.js';
import { afterCall } from './after.js';

/**
 * What POST …/join answers (api.md, protocol.md §1).
 * @typedef {{ token: string, expires_at: string, room: string, identity: string, grants: Record<string, boolean>,
 *   signaling_path: string, signaling_url?: string, node?: { id: string, url: string },
 *   ice_servers?: RTCIceServer[], protocol_version: number }} JoinAnswer
 */

/**
 * @typedef {object} Entry
 * @property {{ id: string, kind: string, attachments?: import('./casepanel.js').Attachment[] }} consultation
 *   what the call shows of it (for a guest: the guest view, which has nothing of the case, and
 *   no `attachments`: the case panel is for members only)
 * @property {() => Promise<JoinAnswer>} join a room token; throws an ApiError when refused
 * @property {string | null} back the pre-call screen's way back; null: there is none
 * @property {(phase: string) => { form: string | null, href: string } | null} after the call's
 *   last screen's way on (after.js), or null: none
 */

/**
 * Join refusals after which asking again is pointless: the way in is gone for this page (the
 * consultation is over, the caller no longer on it, a guest's link withdrawn or run out).
 */
export const NO_WAY_IN = ['join_window_closed', 'consultation_not_found', 'not_participant',
  'guest_link_revoked', 'guest_link_expired', 'guest_link_invalid'];

/**
 * The signed-in member's way in: the session's /join, back to the consultation's page, and
 * on to the step that follows the call for them.
 * @param {any} consultation the record (GET /v1/consultations/{id})
 * @returns {Entry}
 */
export function memberEntry(consultation) {
  return {
    consultation,
    join: () => api('POST', `/v1/consultations/${encodeURIComponent(consultation.id)}/join`, {}),
    back: `#/c/${consultation.id}`,
    after: (phase) => afterCall(consultation, me()?.id ?? null, phase),
  };
}
