// The administrator's pages: sites (create, rename, level, time zone), users (create, edit the
// name, site and specialty, reset the password, disable, change role) and the audit log
// (audit.js).
import { api, me } from '../api.js';
import { errorBox, field, form, h, options, showBanner } from '../dom.js';
import { fmtTime, label, t } from '../i18n.js';
import { auditView } from './audit.js';
import { LEVELS, ROLES, SPECIALTIES } from './enums.js';
import { refresh } from './nav.js';
import { loadDirectory, loadSites, siteById } from './people.js';
import { DEFAULT_ZONE, zoneGroups, zoneLabel } from './zones.js';

/** @typedef {import('./people.js').User} User */
/** @typedef {import('./people.js').Site} Site */

const TABS = ['users', 'sites', 'audit'];

/** @param {string} active */
function tabs(active) {
  return h('nav', { class: 'tabs', 'aria-label': t('admin.title') },
    TABS.map((k) => h('a', {
      href: `#/admin/${k}`, class: k === active ? 'tab active' : 'tab', testid: `admin-tab-${k}`,
      'aria-current': k === active ? 'page' : null,
    }, t(`admin.${k}`))));
}

/** @param {string} section */
export async function adminView(section) {
  if (me()?.role !== 'admin') return h('p', { class: 'error', testid: 'view-error' }, t('error.forbidden_role'));
  const body = section === 'sites' ? await sitesView() : section === 'audit' ? await auditView() : await usersView();
  return [h('h1', {}, t('admin.title')), tabs(TABS.includes(section) ? section : 'users'), body];
}

// ---- sites ----

async function sitesView() {
  const sites = await loadSites(true);
  const name = h('input', { required: true, maxlength: 200, testid: 'site-name' });
  const level = h('select', { testid: 'site-level' }, options('level', LEVELS, 'township'));
  const zone = zoneSelect(DEFAULT_ZONE, { testid: 'site-zone' });
  const create = form({ class: 'card', testid: 'site-form' }, [
    h('h2', {}, t('admin.site_new')),
    h('div', { class: 'grid' }, field('admin.site_name', name), field('admin.level', level), field('admin.time_zone', zone, t('admin.zone_hint'))),
    h('div', { class: 'actions' }, h('button', { type: 'submit', testid: 'site-submit' }, t('admin.create'))),
  ], async () => {
    await api('POST', '/v1/sites', { name: name.value.trim(), level: level.value, time_zone: zone.value });
    await refresh();
    showBanner(t('action.done'), 'notice');
  });
  return [
    h('section', { class: 'card table-card' },
      h('table', { class: 'table', testid: 'site-table' },
        h('thead', {}, h('tr', {}, ['admin.site_name', 'admin.level', 'admin.time_zone', 'admin.created_at', 'admin.actions'].map((k) => h('th', {}, t(k))))),
        h('tbody', {}, sites.map(siteRow)))),
    create,
  ];
}

/**
 * A time zone chooser: the browser's zones by region, each with its offset now, the site's
 * own zone among them (a free-text name the server does not know is refused: unknown_time_zone).
 * @param {string} current @param {Record<string, any>} attrs
 */
function zoneSelect(current, attrs) {
  /** @type {string[]} */
  let supported = [];
  try { supported = /** @type {any} */ (Intl).supportedValuesOf('timeZone'); } catch { /* an old browser: the default and the current zone */ }
  const now = Date.now();
  return h('select', { class: 'zone-select', ...attrs }, zoneGroups(supported, current).map(([region, zones]) => h('optgroup', { label: region },
    zones.map((z) => h('option', { value: z, selected: z === current }, zoneLabel(z, now))))));
}

/** @param {Site} s */
function siteRow(s) {
  const name = h('input', { value: s.name, maxlength: 200, 'aria-label': t('admin.site_name'), testid: 'site-row-name' });
  const level = h('select', { 'aria-label': t('admin.level'), testid: 'site-row-level' }, options('level', LEVELS, s.level));
  const zone = zoneSelect(s.time_zone, { 'aria-label': t('admin.time_zone'), testid: 'site-row-zone' });
  const save = h('button', { type: 'button', class: 'ghost', testid: 'site-save' }, t('admin.save'));
  save.onclick = () => {
    /** @type {Record<string, string>} */
    const body = { name: name.value.trim(), level: level.value };
    if (zone.value !== s.time_zone) body.time_zone = zone.value;
    patch(save, `/v1/sites/${s.id}`, body, t('admin.site_saved', { name: body.name }));
  };
  return h('tr', { testid: 'site-row', 'data-id': s.id, 'data-zone': s.time_zone },
    h('td', {}, name), h('td', {}, level), h('td', {}, zone), h('td', {}, fmtTime(s.created_at)), h('td', {}, save));
}

/** Sends a change from a table row; the page is shown again with it. @param {HTMLElement} button @param {string} path @param {any} body @param {string} [done] */
async function patch(button, path, body, done = t('action.done')) {
  /** @type {any} */ (button).disabled = true;
  try {
    await api('PATCH', path, body);
    await refresh();
    showBanner(done, 'notice');
  } catch (e) {
    showBanner(e);
  } finally {
    /** @type {any} */ (button).disabled = false;
  }
}

// ---- users ----

async function usersView() {
  const [users, sites] = await Promise.all([loadDirectory(true), loadSites()]);
  const username = h('input', { required: true, maxlength: 64, autocomplete: 'off', testid: 'user-username' });
  const display = h('input', { required: true, maxlength: 100, testid: 'user-display-name' });
  const role = h('select', { testid: 'user-role' }, options('role', ROLES, 'doctor'));
  const password = h('input', { type: 'password', required: true, minlength: 10, autocomplete: 'new-password', testid: 'user-password' });
  const site = h('select', { testid: 'user-site' }, siteOptions(sites, null));
  const specialty = h('select', { testid: 'user-specialty' }, specialtyOptions(null));
  const create = form({ class: 'card', testid: 'user-form' }, [
    h('h2', {}, t('admin.user_new')),
    h('div', { class: 'grid' },
      field('admin.username', username), field('admin.display_name', display), field('admin.role', role),
      field('admin.password', password, t('admin.password_hint')), field('admin.site', site), field('field.specialty', specialty)),
    h('div', { class: 'actions' }, h('button', { type: 'submit', testid: 'user-submit' }, t('admin.create'))),
  ], async () => {
    /** @type {{ username: string, display_name: string, role: string, password: string, site_id?: string, specialty?: string }} */
    const body = { username: username.value.trim(), display_name: display.value.trim(), role: role.value, password: password.value };
    if (site.value) body.site_id = site.value;
    if (specialty.value) body.specialty = specialty.value;
    await api('POST', '/v1/users', body);
    await refresh();
    showBanner(t('admin.user_created', { name: body.username }), 'notice');
  });
  return [
    h('section', { class: 'card table-card' },
      h('table', { class: 'table', testid: 'user-table' },
        h('thead', {}, h('tr', {}, ['admin.username', 'admin.display_name', 'admin.role', 'admin.site', 'field.specialty', 'admin.state', 'admin.actions'].map((k) => h('th', {}, t(k))))),
        h('tbody', {}, users.map((u) => userRows(u, sites))))),
    create,
  ];
}

/**
 * The sites to choose from. "—" (none) only while none is set: the API cannot clear a user's
 * site once set (docs/api.md, PATCH /v1/users).
 * @param {Site[]} sites @param {string | null} selected
 */
function siteOptions(sites, selected) {
  return [!selected && h('option', { value: '' }, '—'), sites.map((s) => h('option', { value: s.id, selected: s.id === selected }, s.name))];
}

/** The specialties to choose from; one the list does not have (set elsewhere) stays offered. "—" as for sites. @param {string | null} selected */
function specialtyOptions(selected) {
  const values = selected && !SPECIALTIES.includes(selected) ? [...SPECIALTIES, selected] : SPECIALTIES;
  return [!selected && h('option', { value: '' }, '—'), options('specialty', values, selected ?? '')];
}

/** A user's row, and the edit form under it (hidden until "edit"). @param {User} u @param {Site[]} sites */
function userRows(u, sites) {
  const self = u.id === me()?.id;
  const role = h('select', { 'aria-label': t('admin.role'), testid: 'user-row-role', disabled: self }, options('role', ROLES, u.role));
  role.onchange = () => {
    // A role change signs the user out everywhere (their tokens are revoked).
    if (!window.confirm(t('admin.role_confirm', { name: u.display_name, role: label('role', role.value) }))) { role.value = u.role; return; }
    patch(role, `/v1/users/${u.id}`, { role: role.value });
  };
  const toggle = h('button', { type: 'button', class: u.disabled ? 'ghost' : 'ghost danger-text', testid: 'user-row-toggle', disabled: self },
    t(u.disabled ? 'admin.enable' : 'admin.disable'));
  toggle.onclick = () => {
    if (!u.disabled && !window.confirm(t('admin.disable_confirm', { name: u.display_name }))) return;
    patch(toggle, `/v1/users/${u.id}`, { disabled: !u.disabled });
  };
  const editRow = h('tr', { class: 'edit-row', testid: 'user-edit-row', 'data-username': u.username, hidden: true },
    h('td', { colspan: 7 }, userEditForm(u, sites, self, () => { editRow.hidden = true; edit.setAttribute('aria-expanded', 'false'); })));
  const edit = h('button', { type: 'button', class: 'ghost', testid: 'user-row-edit', 'aria-expanded': 'false' }, t('admin.edit'));
  edit.onclick = () => {
    editRow.hidden = !editRow.hidden;
    edit.setAttribute('aria-expanded', String(!editRow.hidden));
    if (!editRow.hidden) /** @type {HTMLElement | null} */ (editRow.querySelector('input'))?.focus();
  };
  const row = h('tr', { testid: 'user-row', 'data-username': u.username, 'data-disabled': String(u.disabled), class: u.disabled ? 'disabled' : null },
    h('td', {}, u.username), h('td', { testid: 'user-row-name' }, u.display_name), h('td', {}, role),
    h('td', { testid: 'user-row-site' }, u.site_id ? (siteById(u.site_id)?.name ?? u.site_id) : '—'),
    h('td', { testid: 'user-row-specialty' }, label('specialty', u.specialty) || '—'),
    h('td', { testid: 'user-row-state' }, t(u.disabled ? 'admin.disabled' : 'admin.active')),
    h('td', { class: 'row-actions' }, edit, ' ', toggle));
  return [row, editRow];
}

/**
 * Edits a user's name, site and specialty, and resets their password (a new password signs
 * them out everywhere: the server revokes their tokens). Only what changed is sent; a refusal
 * shows in the form, in the user's language, by its code.
 * @param {User} u @param {Site[]} sites @param {boolean} self @param {() => void} close
 */
function userEditForm(u, sites, self, close) {
  const display = h('input', { value: u.display_name, testid: 'user-edit-name' });
  const site = h('select', { testid: 'user-edit-site' }, siteOptions(sites, u.site_id ?? null));
  const specialty = h('select', { testid: 'user-edit-specialty' }, specialtyOptions(u.specialty ?? null));
  // No browser checks (required, minlength): the server's refusal says what is wrong, in the
  // user's language (name_length, password_length), where the browser's would use its own.
  const password = h('input', { type: 'password', autocomplete: 'new-password', testid: 'user-edit-password' });
  const f = form({ class: 'edit-form', testid: 'user-edit-form' }, [
    h('h3', {}, t('admin.user_edit_title', { name: u.username })),
    h('div', { class: 'grid' },
      field('admin.display_name', display), field('admin.site', site), field('field.specialty', specialty),
      field('admin.new_password', password, self ? t('admin.own_password_hint') : t('admin.new_password_hint'))),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'ghost', testid: 'user-edit-cancel', onclick: close }, t('common.cancel')),
      h('button', { type: 'submit', testid: 'user-edit-save' }, t('admin.save'))),
  ], async () => {
    /** @type {Record<string, string>} */
    const body = {};
    const name = display.value.trim();
    if (name !== u.display_name) body.display_name = name;
    if (site.value && site.value !== u.site_id) body.site_id = site.value;
    if (specialty.value && specialty.value !== u.specialty) body.specialty = specialty.value;
    if (password.value) body.password = password.value;
    if (!Object.keys(body).length) {
      f.append(errorBox(t('admin.nothing_changed'), 'user-edit-error'));
      return;
    }
    await api('PATCH', `/v1/users/${u.id}`, body);
    await refresh();
    const shown = body.display_name ?? u.display_name;
    showBanner(body.password ? t('admin.password_reset_done', { name: shown }) : t('admin.user_saved', { name: shown }), 'notice');
  });
  return f;
}
