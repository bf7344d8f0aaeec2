// Who is who: user and site records the screens have seen, by id, so ids are shown as names.
// Admins and coordinators can list every user; others learn names from consultation reports
// and from the invite dialog's searches (invite.js).
import { api, me } from '../api.js';

/** @type {Map<string, any>} user id → user */
const users = new Map();
/** @type {Map<string, any>} site id → site */
const sites = new Map();
let directory = null; // Promise of the full user list (admin, coordinator)
let siteList = null;

export function remember(list) {
  for (const u of list || []) if (u?.id) users.set(u.id, u);
}

export function rememberSites(list) {
  for (const s of list || []) if (s?.id) sites.set(s.id, s);
}

export const userById = (id) => users.get(id) ?? null;
export const siteById = (id) => sites.get(id) ?? null;

/** A user's display name, or the id when the user is not known here. */
export function nameOf(id) {
  if (!id) return '—';
  if (id === me()?.id) return me().display_name;
  return users.get(id)?.display_name ?? id;
}

/** Every user (admin and coordinator only), loaded once per sign-in. */
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
