// Two-way referral (双向转诊, docs/api.md "Referrals"): who may take which step of a referral,
// when a consultation may be referred up, the order of a referral's times, the dates the
// acceptance may name. The server decides; these rules only keep the office screens from
// offering what it would refuse. Pure data and logic: no DOM, no i18n, no requests
// (referrals.js, referrallist.js and referralsheet.js show it;
// web-client/test/referralfacts.test.mjs pins it).

/**
 * A referral as the consultation record has it (`referrals`). Lists leave out `reason` and
 * `refusal` (patient data).
 * @typedef {{ id: string, direction: string, from_site: string, to_site: string, department: string,
 *   reason?: string, urgency: string, status: string, requested_by: string, requested_at: string,
 *   answers?: string | null, decided_by?: string | null, decided_at?: string | null,
 *   planned_date?: string | null, refusal?: string | null, admitted_at?: string | null,
 *   discharged_at?: string | null, received_at?: string | null }} Referral
 */
/**
 * One row of GET /v1/referrals.
 * @typedef {{ consultation: string, number: string | null, referral: Referral,
 *   patient_summary: import('./patientfacts.js').PatientSummary | null }} ReferralItem
 */
/** The consultation fields the rules read. @typedef {{ status: string, requester: string, requester_site?: string | null, referrals?: Referral[] }} ReferralTarget */
/** The signed-in user as the rules read them. @typedef {{ id: string, role: string, site_id?: string | null }} Viewer */
/** @typedef {'cancel' | 'accept' | 'decline' | 'admit' | 'discharge' | 'receive'} ReferralStep */

/** Every referral status, in the order a referral goes through them (the list's filter). */
export const REFERRAL_STATUSES = ['requested', 'accepted', 'admitted', 'discharged', 'received', 'declined', 'cancelled'];
/** The two lists of GET /v1/referrals: to the user's site, from it. */
export const BOXES = ['incoming', 'outgoing'];
/** Consultation statuses after which the patient may be referred up (it has taken place). */
export const REFER_FROM = ['live', 'ended', 'reported'];
/** An up referral in one of these is under way: no second one until it is over. */
export const UNDER_WAY = ['requested', 'accepted', 'admitted'];
/** The server's limits (api.md). */
export const MAX_REFERRALS = 20;
export const MAX_DEPARTMENT_CHARS = 60;
export const MAX_REASON_CHARS = 4000;

/** Whether an up referral of `c` is under way. @param {ReferralTarget} c */
export function referralUnderWay(c) {
  return (c.referrals ?? []).some((r) => r.direction === 'up' && UNDER_WAY.includes(r.status));
}

/**
 * Whether `user` may refer the patient of `c` up now: its requesting doctor, once it has taken
 * place, nothing under way, below the limit, and the request from a site (the referral's).
 * @param {ReferralTarget} c @param {Viewer | null | undefined} user
 */
export function mayRefer(c, user) {
  if (!user || user.role !== 'doctor' || c.requester !== user.id || !c.requester_site) return false;
  return REFER_FROM.includes(c.status) && !referralUnderWay(c) && (c.referrals?.length ?? 0) < MAX_REFERRALS;
}

/**
 * The steps `user` may take on referral `r` of `c` now, in the order the page offers them.
 * The receiving site's coordinator answers an up referral and records the stay; the referring
 * doctor may withdraw it before admission; the requesting doctor takes a down one back.
 * @param {ReferralTarget} c @param {Referral} r @param {Viewer | null | undefined} user
 * @returns {ReferralStep[]}
 */
export function referralSteps(c, r, user) {
  if (!user) return [];
  /** @type {ReferralStep[]} */
  const steps = [];
  const receiving = user.role === 'coordinator' && Boolean(user.site_id) && user.site_id === r.to_site;
  if (r.direction === 'up') {
    if (receiving && r.status === 'requested') steps.push('accept', 'decline');
    if (receiving && r.status === 'accepted') steps.push('admit');
    if (receiving && r.status === 'admitted') steps.push('discharge');
    if (r.requested_by === user.id && (r.status === 'requested' || r.status === 'accepted')) steps.push('cancel');
  } else if (r.direction === 'down' && c.requester === user.id && r.status === 'requested') {
    steps.push('receive');
  }
  return steps;
}

/**
 * What happened to `r` and when, oldest first: [what, instant] for each time it has.
 * @param {Referral} r
 * @returns {Array<['requested' | 'decided' | 'admitted' | 'discharged' | 'received', string]>}
 */
export function referralTimes(r) {
  /** @type {Array<['requested' | 'decided' | 'admitted' | 'discharged' | 'received', string | null | undefined]>} */
  const all = [
    ['requested', r.requested_at], ['decided', r.decided_at], ['admitted', r.admitted_at],
    ['discharged', r.discharged_at], ['received', r.received_at],
  ];
  return /** @type {Array<['requested' | 'decided' | 'admitted' | 'discharged' | 'received', string]>} */ (all.filter(([, v]) => Boolean(v)));
}

/**
 * The up referral a down one answers (its stay), or null.
 * @param {ReferralTarget} c @param {Referral} r
 */
export function answeredReferral(c, r) {
  if (!r.answers) return null;
  return (c.referrals ?? []).find((x) => x.id === r.answers) ?? null;
}

/** A day `days` after `nowMs` in Beijing (UTC+8, no daylight saving), 'YYYY-MM-DD'. @param {number} nowMs @param {number} [days] */
export function beijingDay(nowMs, days = 0) {
  return new Date(nowMs + 8 * 3600e3 + days * 86400e3).toISOString().slice(0, 10);
}

/**
 * The sites a referral from `fromSite` may go to: every other one, the higher levels first
 * (a county refers up to the city), by name within a level.
 * @template {{ id: string, name: string, level: string }} S
 * @param {S[]} sites @param {string | null | undefined} fromSite
 * @returns {S[]}
 */
export function receivingSites(sites, fromSite) {
  const rank = (/** @type {string} */ level) => {
    const i = ['city', 'county', 'township'].indexOf(level);
    return i < 0 ? 3 : i;
  };
  return sites.filter((s) => s.id !== fromSite).sort((a, b) => rank(a.level) - rank(b.level) || a.name.localeCompare(b.name));
}
