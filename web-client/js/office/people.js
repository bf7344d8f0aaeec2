// Who is who: user and site records the screens have seen, by id, so ids are shown as names.
// Admins and coordinators can list every user; others learn names from consultation reports
// and from the invite dialog's searches (invite.js).
import { api, me } from '../api.js';

/**
 * The API's records as the office screens read them (docs/api.md). A user may be known only
 * as an invitable person (invitees.js), hence the optional fields.
 * @typedef {{ id: string, username: string, display_name: string, role: string,
 *   site_id?: string | null, specialty?: string | null, disabled?: boolean, created_at?: string }} User
 * @typedef {{ id: string, name: string, level: string, time_zone: string, created_at: string }} Site
 * @typedef {{ author: string, text: string, updated_at: string, signed_at: string | null,
 *   signature?: import('./verdicts.js').Signature | null }} Opinion an opinion; `signature` once signed with the password (issue 15)
 * @typedef {{ author: string, text: string, recorded_at: string }} Plan
 * @typedef {{ id: string, version: number, kind: string, number?: string | null, specialty: string, urgency: string,
 *   summary: string, patient?: import('./patientfacts.js').Patient | null,
 *   patient_summary?: import('./patientfacts.js').PatientSummary | null, wished: { from: string, to: string } | null, recording: string, status: string,
 *   requester: string, requester_site: string | null, coordinator: string | null,
 *   specialists: string[], participants: string[], start: string | null,
 *   duration_minutes: number | null, reason: string | null, opinions: Opinion[], plan: Plan | null,
 *   created_at: string, updated_at: string, started_at: string | null, ended_at: string | null,
 *   referrals?: import('./referralfacts.js').Referral[],
 *   encoders?: import('./encoderlinks.js').EncoderLink[] }} Consultation
 * @typedef {Omit<Consultation, 'summary' | 'opinions' | 'plan' | 'reason' | 'patient' | 'referrals'>} ListedConsultation a list item: no clinical text, the patient only as patient_summary
 * @typedef {{ items: ListedConsultation[], total: number, next_offset: number | null }} ConsultationPage
 * @typedef {{ consultation: Consultation, people: User[], requester_site: Site | null }} Report
 */

/** @type {Map<string, User>} user id → user */
const users = new Map();
/** @type {Map<string, Site>} site id → site */
const sites = new Map();
/** @type {Promise<User[]> | null} */
let directory = null; // Promise of the full user list (admin, coordinator)
/** @type {Promise<Site[]> | null} */
let siteList = null;

/** @param {User[] | null | undefined} list */
export function remember(list) {
  for (const u of list || []) if (u?.id) users.set(u.id, u);
}

/** @param {Site[] | null | undefined} list */
export function rememberSites(list) {
  for (const s of list || []) if (s?.id) sites.set(s.id, s);
}

export const userById = (/** @type {string} */ id) => users.get(id) ?? null;
export const siteById = (/** @type {string} */ id) => sites.get(id) ?? null;

/** A user's display name, or the id when the user is not known here. @param {string | null | undefined} id */
export function nameOf(id) {
  if (!id) return '—';
  const self = me();
  if (id === self?.id) return self.display_name;
  return users.get(id)?.display_name ?? id;
}

/** Every user (admin and coordinator only), loaded once per sign-in. @returns {Promise<User[]>} */
export function loadDirectory(force = false) {
  const role = me()?.role;
  if (role !== 'admin' && role !== 'coordinator') return Promise.resolve([]);
  if (force || !directory) {
    directory = api('GET', '/v1/users').then((r) => { remember(r.items); return r.items; });
    directory.catch(() => { directory = null; });
  }
  return directory;
}

/** Active specialists, for scheduling. */
export async function activeSpecialists() {
  const all = await loadDirectory();
  return all.filter((u) => u.role === 'specialist' && !u.disabled);
}

/** @returns {Promise<Site[]>} */
export function loadSites(force = false) {
  if (force || !siteList) {
    siteList = api('GET', '/v1/sites').then((r) => { rememberSites(r.items); return r.items; });
    siteList.catch(() => { siteList = null; });
  }
  return siteList;
}

/** Forgets everything (on sign-out: the next user may see less). */
export function forget() {
  users.clear();
  sites.clear();
  directory = null;
  siteList = null;
}
