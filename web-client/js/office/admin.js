// The administrator's pages: sites, users (create, disable, change role) and the audit log.
import { api, me } from '../api.js';
import { field, form, h, options, showBanner } from '../dom.js';
import { fmtTime, label, t } from '../i18n.js';
import { AUDIT_ACTIONS, LEVELS, ROLES, SPECIALTIES } from './enums.js';
import { refresh } from './nav.js';
import { loadDirectory, loadSites, nameOf, siteById } from './people.js';

const TABS = ['users', 'sites', 'audit'];

function tabs(active) {
  return h('nav', { class: 'tabs', 'aria-label': t('admin.title') },
    TABS.map((k) => h('a', {
      href: `#/admin/${k}`, class: k === active ? 'tab active' : 'tab', testid: `admin-tab-${k}`,
      'aria-current': k === active ? 'page' : null,
    }, t(`admin.${k}`))));
}

export async function adminView(section) {
  if (me().role !== 'admin') return h('p', { class: 'error', testid: 'view-error' }, t('error.forbidden_role'));
  const body = section === 'sites' ? await sitesView() : section === 'audit' ? await auditView() : await usersView();
  return [h('h1', {}, t('admin.title')), tabs(TABS.includes(section) ? section : 'users'), body];
}

// ---- sites ----

async function sitesView() {
  const sites = await loadSites(true);
  const name = h('input', { required: true, maxlength: 200, testid: 'site-name' });
  const level = h('select', { testid: 'site-level' }, options('level', LEVELS, 'township'));
  const zone = h('input', { value: 'Asia/Shanghai', required: true, testid: 'site-zone' });
  const create = form({ class: 'card', testid: 'site-form' }, [
    h('h2', {}, t('admin.site_new')),
    h('div', { class: 'grid' }, field('admin.site_name', name), field('admin.level', level), field('admin.time_zone', zone)),
    h('div', { class: 'actions' }, h('button', { type: 'submit', testid: 'site-submit' }, t('admin.create'))),
  ], async () => {
    await api('POST', '/v1/sites', { name: name.value.trim(), level: level.value, time_zone: zone.value.trim() });
    await refresh();
    showBanner(t('action.done'), 'notice');
  });
  return [
    h('section', { class: 'card' },
      h('table', { class: 'table', testid: 'site-table' },
        h('thead', {}, h('tr', {}, ['admin.site_name', 'admin.level', 'admin.time_zone', 'admin.created_at', 'admin.actions'].map((k) => h('th', {}, t(k))))),
        h('tbody', {}, sites.map(siteRow)))),
    create,
  ];
}

function siteRow(s) {
  const name = h('input', { value: s.name, maxlength: 200, 'aria-label': t('admin.site_name'), testid: 'site-row-name' });
  const level = h('select', { 'aria-label': t('admin.level'), testid: 'site-row-level' }, options('level', LEVELS, s.level));
  const save = h('button', { type: 'button', class: 'ghost', testid: 'site-save' }, t('admin.save'));
  save.onclick = () => patch(save, `/v1/sites/${s.id}`, { name: name.value.trim(), level: level.value });
  return h('tr', { testid: 'site-row', 'data-id': s.id }, h('td', {}, name), h('td', {}, level), h('td', {}, s.time_zone), h('td', {}, fmtTime(s.created_at)), h('td', {}, save));
}

async function patch(button, path, body) {
  button.disabled = true;
  try {
    await api('PATCH', path, body);
    await refresh();
    showBanner(t('action.done'), 'notice');
  } catch (e) {
    showBanner(e);
  } finally {
    button.disabled = false;
  }
}

// ---- users ----

async function usersView() {
  const [users, sites] = await Promise.all([loadDirectory(true), loadSites()]);
  const siteOptions = (selected) => [h('option', { value: '' }, '—'), sites.map((s) => h('option', { value: s.id, selected: s.id === selected }, s.name))];
  const username = h('input', { required: true, maxlength: 64, autocomplete: 'off', testid: 'user-username' });
  const display = h('input', { required: true, maxlength: 100, testid: 'user-display-name' });
  const role = h('select', { testid: 'user-role' }, options('role', ROLES, 'doctor'));
  const password = h('input', { type: 'password', required: true, minlength: 10, autocomplete: 'new-password', testid: 'user-password' });
  const site = h('select', { testid: 'user-site' }, siteOptions(null));
  const specialty = h('select', { testid: 'user-specialty' }, h('option', { value: '' }, '—'), options('specialty', SPECIALTIES, ''));
  const create = form({ class: 'card', testid: 'user-form' }, [
    h('h2', {}, t('admin.user_new')),
    h('div', { class: 'grid' },
      field('admin.username', username), field('admin.display_name', display), field('admin.role', role),
      field('admin.password', password, t('admin.password_hint')), field('admin.site', site), field('field.specialty', specialty)),
    h('div', { class: 'actions' }, h('button', { type: 'submit', testid: 'user-submit' }, t('admin.create'))),
  ], async () => {
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
        h('tbody', {}, users.map((u) => userRow(u))))),
    create,
  ];
}

function userRow(u) {
  const self = u.id === me().id;
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
  return h('tr', { testid: 'user-row', 'data-username': u.username, 'data-disabled': String(u.disabled), class: u.disabled ? 'disabled' : null },
    h('td', {}, u.username), h('td', {}, u.display_name), h('td', {}, role),
    h('td', {}, u.site_id ? (siteById(u.site_id)?.name ?? u.site_id) : '—'),
    h('td', {}, label('specialty', u.specialty) || '—'),
    h('td', { testid: 'user-row-state' }, t(u.disabled ? 'admin.disabled' : 'admin.active')),
    h('td', {}, toggle));
}

// ---- audit ----

const audit = { actor: '', action: '', consultation: '' };

async function auditView() {
  const users = await loadDirectory();
  const q = new URLSearchParams({ limit: '50' });
  for (const [k, v] of Object.entries(audit)) if (v) q.set(k, v);
  const page = await api('GET', `/v1/audit?${q}`);
  const actor = h('select', { testid: 'audit-actor' }, h('option', { value: '' }, t('admin.anyone')),
    users.map((u) => h('option', { value: u.id, selected: u.id === audit.actor }, `${u.display_name} (${u.username})`)),
    h('option', { value: 'system', selected: audit.actor === 'system' }, t('admin.system')),
    h('option', { value: 'unknown', selected: audit.actor === 'unknown' }, t('admin.unknown_actor')));
  const action = h('select', { testid: 'audit-action' }, h('option', { value: '' }, t('admin.any_action')),
    AUDIT_ACTIONS.map((a) => h('option', { value: a, selected: a === audit.action }, actionLabel(a))));
  const consultation = h('input', { value: audit.consultation, pattern: '[0-9a-f]{32}', placeholder: t('admin.consultation_id'), testid: 'audit-consultation' });
  const filters = form({ class: 'card filters', testid: 'audit-filter-form' }, [
    h('div', { class: 'grid' }, field('admin.actor', actor), field('admin.action', action), field('admin.consultation', consultation)),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'ghost', testid: 'audit-clear', onclick: () => { Object.assign(audit, { actor: '', action: '', consultation: '' }); refresh(); } }, t('admin.clear')),
      h('button', { type: 'submit', testid: 'audit-apply' }, t('admin.apply'))),
  ], async () => {
    Object.assign(audit, { actor: actor.value, action: action.value, consultation: consultation.value.trim() });
    await refresh();
  });
  const tbody = h('tbody', {}, page.items.map(auditRow));
  let next = page.next_before;
  const more = h('button', { class: 'ghost', testid: 'audit-more', hidden: next == null }, t('list.more'));
  more.onclick = async () => {
    more.disabled = true;
    try {
      q.set('before', String(next));
      const p = await api('GET', `/v1/audit?${q}`);
      tbody.append(...p.items.map(auditRow));
      next = p.next_before;
      more.hidden = next == null;
    } catch (e) { showBanner(e); } finally { more.disabled = false; }
  };
  return [
    filters,
    h('p', { class: 'muted small', testid: 'audit-total' }, t('admin.audit_total', { shown: page.items.length, n: page.total })),
    h('section', { class: 'card table-card' },
      page.items.length
        ? h('table', { class: 'table', testid: 'audit-table' },
          h('thead', {}, h('tr', {}, ['admin.seq', 'admin.at', 'admin.actor', 'admin.action', 'admin.consultation', 'admin.target', 'admin.detail'].map((k) => h('th', {}, t(k))))),
          tbody)
        : h('p', { class: 'muted', testid: 'audit-empty' }, t('admin.audit_empty'))),
    more,
  ];
}

function actionLabel(a) {
  const key = `audit.${a}`;
  const l = t(key);
  return l === key ? a : `${l} (${a})`;
}

function auditRow(r) {
  const who = (id) => (id === 'system' ? t('admin.system') : id === 'unknown' ? t('admin.unknown_actor') : nameOf(id));
  return h('tr', { testid: 'audit-row', 'data-action': r.action },
    h('td', {}, String(r.seq)), h('td', {}, fmtTime(r.at)), h('td', {}, who(r.actor)), h('td', {}, actionLabel(r.action)),
    h('td', {}, r.consultation ? h('code', { title: r.consultation }, r.consultation.slice(-8)) : ''),
    h('td', {}, r.target ? who(r.target) : ''), h('td', {}, r.detail ?? ''));
}
