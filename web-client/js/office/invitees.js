// Who may be invited to a consultation, and how a choice of people is made: the rules of
// api.md's `invite` action (who may invite, in which statuses, at most 500 participants) and
// the picking itself (by name, by site, by role, from a pasted list of usernames). Pure data
// and logic, no DOM and no requests: the dialog (invite.js) shows it, node unit tests pin it.

/**
 * A user record as GET /v1/users lists it (api.md §Users).
 * @typedef {{ id: string, username: string, display_name: string, role: string,
 *   site_id?: string | null, specialty?: string | null, disabled?: boolean }} Person
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
 * Everyone already on the consultation: requester, coordinator, specialists, participants.
 * @param {InviteTarget} c
 * @returns {Set<string>}
 */
export function involvedIds(c) {
  const ids = new Set([c.requester, ...c.specialists, ...c.participants]);
  if (c.coordinator) ids.add(c.coordinator);
  return ids;
}

/**
 * How many more people the consultation can take.
 * @param {InviteTarget} c
 */
export const placesLeft = (c) => Math.max(0, MAX_PARTICIPANTS - c.participants.length);

/**
 * The people who can be invited: active and not on the consultation yet, sorted by name.
 * @param {Person[]} people
 * @param {InviteTarget} c
 * @returns {Person[]}
 */
export function invitable(people, c) {
  const on = involvedIds(c);
  return people.filter((p) => !p.disabled && !on.has(p.id))
    .sort((a, b) => a.display_name.localeCompare(b.display_name, 'zh-CN') || a.username.localeCompare(b.username));
}

/**
 * People whose name or username contains `query` (case does not matter); none for a blank query.
 * @param {Person[]} people
 * @param {string} query
 */
export function search(people, query) {
  const q = query.trim().toLowerCase();
  if (!q) return [];
  return people.filter((p) => p.display_name.toLowerCase().includes(q) || p.username.includes(q));
}

/**
 * The doctors and specialists of a site.
 * @param {Person[]} people
 * @param {string} siteId
 */
export const atSite = (people, siteId) => people.filter((p) => p.site_id === siteId && SITE_ROLES.includes(p.role));

/**
 * The people with a role.
 * @param {Person[]} people
 * @param {string} role
 */
export const withRole = (people, role) => people.filter((p) => p.role === role);

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
 * Pasted usernames looked up in the directory. Nothing is dropped silently: each name is found
 * (to invite), unknown, disabled, or already on the consultation.
 * @param {string[]} names
 * @param {Person[]} people every user (the directory)
 * @param {InviteTarget} c
 * @returns {{ found: Person[], unknown: string[], disabled: Person[], already: Person[] }}
 */
export function resolveUsernames(names, people, c) {
  const byName = new Map(people.map((p) => [p.username.toLowerCase(), p]));
  const on = involvedIds(c);
  /** @type {{ found: Person[], unknown: string[], disabled: Person[], already: Person[] }} */
  const out = { found: [], unknown: [], disabled: [], already: [] };
  for (const name of names) {
    const p = byName.get(name);
    if (!p) out.unknown.push(name);
    else if (p.disabled) out.disabled.push(p);
    else if (on.has(p.id)) out.already.push(p);
    else out.found.push(p);
  }
  return out;
}

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
