// Who may be invited to a consultation, and how a choice of people is made: the rules of
// api.md's `invite` action (who may invite, in which statuses, at most 500 participants), the
// requests that find people (GET …/invitable by name, site or role; a pasted list of
// usernames for POST …/invitable/lookup) and the choice itself. The server decides who can be
// invited (active, not on the consultation yet, never an administrator); this module only
// asks and keeps the choice. Pure data and logic, no DOM and no requests: the dialog
// (invite.js) shows it, node unit tests pin it.

/**
 * A person as GET /v1/consultations/{id}/invitable lists them (api.md §Consultations).
 * @typedef {{ id: string, username: string, display_name: string, role: string,
 *   site_id: string | null }} Person
 */

/**
 * One answer of GET …/invitable: the first `limit` matches, and how many matched in all.
 * @typedef {{ items: Person[], total: number }} InvitablePage
 */

/**
 * The filters of one GET …/invitable (all optional; blank ones are left out of the query).
 * @typedef {{ q?: string, site_id?: string, role?: string, limit?: number }} InvitableFilters
 */

/**
 * The answer of POST …/invitable/lookup: every pasted name is found (to invite), unknown,
 * disabled, or already on the consultation.
 * @typedef {{ found: Person[], unknown: string[], disabled: string[], already: Person[] }} Lookup
 */

/**
 * The consultation fields the rules read.
 * @typedef {{ status: string, urgency: string, requester: string, coordinator?: string | null,
 *   specialists: string[], participants: string[] }} InviteTarget
 */

/** At most this many invited participants on one consultation (api.md, `invite`). */
export const MAX_PARTICIPANTS = 500;

/** Statuses in which `invite` is allowed. */
export const INVITE_STATUSES = ['requested', 'scheduled', 'live'];

/** "All doctors of a site": the clinical roles, those who treat patients there. */
export const SITE_ROLES = ['doctor', 'specialist'];

/** Roles offered by the "by role" choice, trainees (viewers) first: the usual audience. */
export const INVITE_ROLES = ['viewer', 'doctor', 'specialist', 'coordinator'];

/** Matches of a search by name shown at most; more means "type more of the name". */
export const SEARCH_LIMIT = 30;

/** People listed at most by site or by role: the server's largest page. */
export const LIST_LIMIT = 200;

/**
 * Whether `user` may invite to `c` now, by the server's rule: the consultation's coordinator
 * (any coordinator while it has none), a host (lead specialist, its coordinator, the
 * requesting doctor of an emergency) or the requester; while requested, scheduled or live.
 * @param {InviteTarget} c
 * @param {{ id: string, role: string } | null} user
 */
export function mayInvite(c, user) {
  if (!user || !INVITE_STATUSES.includes(c.status)) return false;
  const itsCoordinator = user.role === 'coordinator' && (!c.coordinator || c.coordinator === user.id);
  const host = c.specialists[0] === user.id || c.coordinator === user.id
    || (c.urgency === 'emergency' && c.requester === user.id);
  return itsCoordinator || host || c.requester === user.id;
}

/**
 * How many more people the consultation can take.
 * @param {InviteTarget} c
 */
export const placesLeft = (c) => Math.max(0, MAX_PARTICIPANTS - c.participants.length);

/**
 * The path of GET /v1/consultations/{id}/invitable with these filters; blank ones left out
 * (the server takes no other parameter).
 * @param {string} id
 * @param {InvitableFilters} filters
 */
export function invitablePath(id, filters) {
  const query = new URLSearchParams();
  for (const key of /** @type {Array<keyof InvitableFilters>} */ (['q', 'site_id', 'role', 'limit'])) {
    const value = String(filters[key] ?? '').trim();
    if (value) query.set(key, value);
  }
  const qs = query.toString();
  return `/v1/consultations/${encodeURIComponent(id)}/invitable${qs ? `?${qs}` : ''}`;
}

/**
 * The path of POST /v1/consultations/{id}/invitable/lookup.
 * @param {string} id
 */
export const lookupPath = (id) => `/v1/consultations/${encodeURIComponent(id)}/invitable/lookup`;

/**
 * The search for a typed name or username, or null for a blank one (nobody is listed then).
 * @param {string} text
 * @returns {InvitableFilters | null}
 */
export function searchFilters(text) {
  const q = text.trim();
  return q ? { q, limit: SEARCH_LIMIT } : null;
}

/**
 * The searches behind "all doctors of a site": one per clinical role, as many as one page holds.
 * @param {string} siteId
 * @returns {InvitableFilters[]}
 */
export const siteFilters = (siteId) => SITE_ROLES.map((role) => ({ site_id: siteId, role, limit: LIST_LIMIT }));

/**
 * The search behind "everyone with a role".
 * @param {string} role
 * @returns {InvitableFilters[]}
 */
export const roleFilters = (role) => [{ role, limit: LIST_LIMIT }];

/**
 * The server's order: by display name, then username (code point order, as Rust compares).
 * @param {Person} a @param {Person} b
 */
function byName(a, b) {
  if (a.display_name !== b.display_name) return a.display_name < b.display_name ? -1 : 1;
  return a.username < b.username ? -1 : a.username > b.username ? 1 : 0;
}

/**
 * The answers of one or more searches as one list (each person once, in the server's order),
 * and how many matched but were not sent (`total` over the page): said, never dropped silently.
 * @param {InvitablePage[]} pages
 * @returns {{ people: Person[], hidden: number }}
 */
export function merge(pages) {
  /** @type {Map<string, Person>} */
  const people = new Map();
  let hidden = 0;
  for (const page of pages) {
    for (const p of page.items) if (!people.has(p.id)) people.set(p.id, p);
    hidden += Math.max(0, page.total - page.items.length);
  }
  const list = [...people.values()];
  return { people: pages.length > 1 ? list.sort(byName) : list, hidden };
}

/**
 * Usernames from pasted text: one per line, or separated by commas (also ， 、 ; and spaces),
 * lower-cased as the server stores them, each once, in the order given.
 * @param {string} text
 * @returns {string[]}
 */
export function parseUsernames(text) {
  const seen = new Set();
  for (const raw of text.split(/[\s,，、;；]+/)) {
    const name = raw.trim().toLowerCase();
    if (name) seen.add(name);
  }
  return [...seen];
}

/**
 * Why a pasted list cannot be looked up, or null: nothing in it, or more than one invite takes.
 * @param {string[]} names
 * @returns {'empty' | 'too_many' | null}
 */
export function listProblem(names) {
  if (!names.length) return 'empty';
  return names.length > MAX_PARTICIPANTS ? 'too_many' : null;
}

/**
 * The people of `people` not chosen yet.
 * @param {Map<string, Person>} chosen
 * @param {Person[]} people
 */
export const notChosen = (chosen, people) => people.filter((p) => !chosen.has(p.id));

/**
 * Adds people to a choice (id → person), each once; returns how many were new.
 * @param {Map<string, Person>} chosen
 * @param {Person[]} people
 */
export function choose(chosen, people) {
  let added = 0;
  for (const p of people) {
    if (!chosen.has(p.id)) { chosen.set(p.id, p); added++; }
  }
  return added;
}

/**
 * Tells answers that arrive out of order apart: each call of the returned function starts a
 * request and returns a check that is true only while no later request has started (a
 * slow answer for "张" must not replace the one for "张神内").
 * @returns {() => () => boolean}
 */
export function latestOnly() {
  let last = 0;
  return () => {
    const mine = ++last;
    return () => mine === last;
  };
}
