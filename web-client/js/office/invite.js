// The "Invite" button of a consultation's detail page and its dialog (issue 14): trainees for a
// teaching session, other sites for a case discussion. People are chosen by name, by site (its
// doctors), by role, or from a pasted list of usernames (unknown names are listed back); the
// choice is shown (count and names) and sent as one `invite` call (api.md, lifecycle actions).
// Finding people needs the user directory (GET /v1/users), which only coordinators (and
// admins, who may not invite) can read: a host or requester is told to ask the centre.
import { ApiError, api, me } from '../api.js';
import { errorBox, form, h, options, showBanner } from '../dom.js';
import { label, t } from '../i18n.js';
import {
  INVITE_ROLES, MAX_PARTICIPANTS, atSite, choose, invitable, mayInvite, parseUsernames, placesLeft,
  resolveUsernames, search, withRole,
} from './invitees.js';
import { refresh } from './nav.js';
import { loadDirectory, loadSites, nameOf, siteById } from './people.js';

/** @typedef {import('./invitees.js').Person} Person */
/** @typedef {{ id: string, name: string }} Site */
/** @typedef {{ people: Person[], sites: Site[] }} Directory */

/** Search results shown at most; more means "type more of the name". */
const SHOWN_MATCHES = 30;

/** Why the dialog is there, by kind of consultation. */
const HINTS = { teaching: 'invite.hint_teaching', case_discussion: 'invite.hint_discussion', consultation: 'invite.hint_consultation' };

/** The button that opens the dialog, or null when the signed-in user may not invite now. */
export function inviteButton(c) {
  if (!mayInvite(c, me())) return null;
  const button = h('button', { type: 'button', class: 'ghost', testid: 'invite-open' }, t('invite.button'));
  button.addEventListener('click', () => openDialog(c, button));
  return button;
}

/**
 * The people and sites to choose from, or null when this user may not list users. Only
 * coordinators get here with the right to list; the server has the last word (403).
 * @returns {Promise<Directory | null>}
 */
async function loadDirectoryFor() {
  if (me()?.role !== 'coordinator') return null;
  try {
    const [people, sites] = await Promise.all([loadDirectory(true), loadSites()]);
    return { people, sites };
  } catch (e) {
    if (e?.status === 403) return null;
    throw e;
  }
}

/** @param {any} c the consultation @param {HTMLElement} opener */
async function openDialog(c, opener) {
  const body = h('div', { class: 'dialog-body' }, h('p', { class: 'muted', testid: 'invite-loading' }, t('common.loading')));
  const close = h('button', { type: 'button', class: 'ghost', testid: 'invite-close', 'aria-label': t('invite.close') }, '×');
  const dialog = h('dialog', { class: 'dialog', testid: 'invite-dialog', 'aria-labelledby': 'invite-title' },
    h('div', { class: 'toolbar' }, h('h2', { id: 'invite-title', class: 'grow', testid: 'invite-title' }, t('invite.title')), close),
    h('p', { class: 'muted small' }, t(HINTS[c.kind] || 'invite.hint_consultation')),
    body);
  close.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => { dialog.remove(); if (opener.isConnected) opener.focus(); });
  // Inside the page's view: a route change removes it with the page.
  (opener.closest('[data-testid="view"]') || document.body).append(dialog);
  dialog.showModal();
  let dir;
  try {
    dir = await loadDirectoryFor();
  } catch (e) {
    body.replaceChildren(errorBox(e, 'invite-error'));
    return;
  }
  if (!dialog.isConnected) return;
  body.replaceChildren(...(dir ? picker(c, dir, dialog) : noDirectory(c, dialog)).filter(Boolean));
}

/**
 * What a host or requester sees: the directory is the centre's.
 * @param {any} c @param {HTMLDialogElement} dialog @returns {HTMLElement[]}
 */
function noDirectory(c, dialog) {
  return [
    h('p', { class: 'warn', role: 'status', testid: 'invite-no-directory' }, t('invite.no_directory')),
    c.coordinator && h('p', { class: 'small', testid: 'invite-coordinator' }, t('invite.ask_coordinator', { name: nameOf(c.coordinator) })),
    h('div', { class: 'actions' }, h('button', { type: 'button', testid: 'invite-cancel', onclick: () => dialog.close() }, t('invite.ok'))),
  ];
}

/** One line about a person: name, username, role, site. @param {Person} p */
function personLine(p) {
  const site = p.site_id ? siteById(p.site_id)?.name : null;
  return [h('strong', {}, p.display_name), ' ', h('span', { class: 'muted small' }, [p.username, label('role', p.role), site].filter(Boolean).join(' · '))];
}

/**
 * The four ways to choose, the choice, and the send button.
 * @param {any} c @param {Directory} dir @param {HTMLDialogElement} dialog
 * @returns {HTMLElement[]}
 */
function picker(c, dir, dialog) {
  const pool = invitable(dir.people, c);
  /** @type {Map<string, Person>} */
  const chosen = new Map();
  const feedback = h('p', { class: 'small', role: 'status', 'aria-live': 'polite', testid: 'invite-feedback' });
  const views = [];
  const update = () => { for (const v of views) v(); };
  /** Adds people to the choice and says how many were new. @param {Person[]} people */
  const add = (people) => {
    const n = choose(chosen, people);
    feedback.textContent = n ? t('invite.added', { n }) : t('invite.added_none');
    feedback.dataset.added = String(n);
    update();
    return n;
  };
  const remove = (id) => { chosen.delete(id); update(); };
  const notChosen = (list) => list.filter((p) => !chosen.has(p.id));

  /** @type {Array<{ mode: string, title: string, panel: HTMLElement }>} */
  const modes = [
    { mode: 'person', title: t('invite.by_person'), panel: byPerson(pool, chosen, add, views) },
    { mode: 'site', title: t('invite.by_site'), panel: bySite(pool, dir.sites, notChosen, add, views) },
    { mode: 'role', title: t('invite.by_role'), panel: byRole(pool, notChosen, add, views) },
    { mode: 'bulk', title: t('invite.by_list'), panel: byList(dir.people, c, add) },
  ];
  const tabs = modes.map(({ mode, title, panel }, i) => {
    panel.hidden = i !== 0;
    const tab = h('button', { type: 'button', class: 'tab-button', testid: `invite-mode-${mode}`, 'aria-pressed': String(i === 0) }, title);
    tab.addEventListener('click', () => {
      tabs.forEach((b, j) => b.setAttribute('aria-pressed', String(j === i)));
      modes.forEach((m, j) => { m.panel.hidden = j !== i; });
      feedback.textContent = '';
    });
    return tab;
  });
  return [
    h('div', { class: 'modes', role: 'group', 'aria-label': t('invite.how') }, tabs),
    ...modes.map((m) => m.panel),
    feedback,
    choiceForm(c, chosen, remove, views, dialog),
  ];
}

/** By name or username: type, then add a match. */
function byPerson(pool, chosen, add, views) {
  const query = h('input', { type: 'search', autocomplete: 'off', testid: 'invite-search', placeholder: t('invite.search_placeholder'), 'aria-label': t('invite.search') });
  const results = h('ul', { class: 'picklist', testid: 'invite-results' });
  const show = () => {
    const found = search(pool, query.value);
    results.replaceChildren(...found.slice(0, SHOWN_MATCHES).map((p) => h('li', { testid: 'invite-match', 'data-username': p.username },
      h('span', { class: 'grow' }, personLine(p)),
      h('button', {
        type: 'button', class: 'ghost small', testid: 'invite-person-add', 'data-username': p.username, disabled: chosen.has(p.id),
        onclick: () => { add([p]); query.focus(); },
      }, t(chosen.has(p.id) ? 'invite.is_chosen' : 'invite.add')))));
    if (query.value.trim() && !found.length) results.append(h('li', { class: 'muted', testid: 'invite-no-match' }, t('invite.no_match')));
    if (found.length > SHOWN_MATCHES) results.append(h('li', { class: 'muted small' }, t('invite.more_matches', { n: found.length - SHOWN_MATCHES })));
  };
  query.addEventListener('input', show);
  query.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter') return;
    e.preventDefault();
    const found = search(pool, query.value);
    if (found.length === 1) add(found);
  });
  views.push(show);
  return h('div', { class: 'mode', testid: 'invite-panel-person' },
    h('label', { class: 'field' }, h('span', {}, t('invite.search')), query, h('small', {}, t('invite.search_hint'))), results);
}

/** By site: all its active doctors and specialists not on the consultation yet. */
function bySite(pool, sites, notChosen, add, views) {
  const site = h('select', { testid: 'invite-site', 'aria-label': t('invite.site') },
    sites.map((s) => h('option', { value: s.id }, s.name)));
  const addAll = h('button', { type: 'button', testid: 'invite-site-add' });
  const names = h('p', { class: 'small muted', testid: 'invite-site-names' });
  const show = () => {
    const list = notChosen(atSite(pool, site.value));
    addAll.textContent = t('invite.site_add', { n: list.length });
    addAll.dataset.count = String(list.length);
    addAll.disabled = !list.length;
    names.textContent = list.length ? list.map((p) => p.display_name).join('、') : t('invite.site_none');
  };
  site.addEventListener('change', show);
  addAll.addEventListener('click', () => add(notChosen(atSite(pool, site.value))));
  views.push(show);
  return h('div', { class: 'mode', testid: 'invite-panel-site' },
    sites.length
      ? [h('label', { class: 'field' }, h('span', {}, t('invite.site')), site, h('small', {}, t('invite.site_hint'))), names, h('div', { class: 'actions' }, addAll)]
      : h('p', { class: 'muted' }, t('invite.no_sites')));
}

/** By role: e.g. every trainee. */
function byRole(pool, notChosen, add, views) {
  const role = h('select', { testid: 'invite-role', 'aria-label': t('invite.role') }, options('role', INVITE_ROLES, INVITE_ROLES[0]));
  const addAll = h('button', { type: 'button', testid: 'invite-role-add' });
  const show = () => {
    const list = notChosen(withRole(pool, role.value));
    addAll.textContent = t('invite.role_add', { n: list.length, role: label('role', role.value) });
    addAll.dataset.count = String(list.length);
    addAll.disabled = !list.length;
  };
  role.addEventListener('change', show);
  addAll.addEventListener('click', () => add(notChosen(withRole(pool, role.value))));
  views.push(show);
  return h('div', { class: 'mode', testid: 'invite-panel-role' },
    h('label', { class: 'field' }, h('span', {}, t('invite.role')), role, h('small', {}, t('invite.role_hint'))), h('div', { class: 'actions' }, addAll));
}

/**
 * From a pasted list of usernames. Every name is accounted for: added, unknown, disabled, or
 * already on the consultation; the unknown ones stay in the box to be corrected.
 * @param {Person[]} everyone the whole directory (disabled users too, to say why they are left out)
 */
function byList(everyone, c, add) {
  const text = h('textarea', { rows: 6, testid: 'invite-bulk', placeholder: t('invite.list_placeholder'), 'aria-label': t('invite.list') });
  const check = h('button', { type: 'button', testid: 'invite-bulk-add' }, t('invite.list_add'));
  const report = h('div', { class: 'list-report', testid: 'invite-bulk-report', 'aria-live': 'polite' });
  /**
   * A titled list of names in the report.
   * @param {string} cls @param {string} testid @param {string} title @param {Array<[string, string]>} items [username, text]
   */
  const block = (cls, testid, title, items) => items.length > 0 && h('div', { class: cls, testid: `${testid}-block` },
    h('p', {}, title), h('ul', { class: 'names' }, items.map(([username, line]) => h('li', { testid, 'data-username': username }, line))));
  check.addEventListener('click', () => {
    const names = parseUsernames(text.value);
    if (!names.length) { report.replaceChildren(h('p', { class: 'warn', testid: 'invite-bulk-empty' }, t('invite.list_empty'))); return; }
    if (names.length > MAX_PARTICIPANTS) {
      report.replaceChildren(h('p', { class: 'error', testid: 'invite-bulk-too-many' }, t('invite.list_too_many', { n: names.length, max: MAX_PARTICIPANTS })));
      return;
    }
    const r = resolveUsernames(names, everyone, c);
    const added = add(r.found);
    /** @param {Person} p @returns {[string, string]} */
    const who = (p) => [p.username, `${p.username} (${p.display_name})`];
    report.replaceChildren(...[
      h('p', { class: 'ok', testid: 'invite-bulk-found', 'data-count': String(r.found.length) }, t('invite.list_found', { n: r.found.length, added })),
      block('error', 'invite-unknown', t('invite.list_unknown', { n: r.unknown.length }), r.unknown.map((n) => [n, n])),
      block('warn', 'invite-disabled', t('invite.list_disabled', { n: r.disabled.length }), r.disabled.map(who)),
      block('muted small', 'invite-already', t('invite.list_already', { n: r.already.length }), r.already.map(who)),
    ].filter(Boolean));
    text.value = r.unknown.join('\n');
  });
  return h('div', { class: 'mode', testid: 'invite-panel-bulk' },
    h('label', { class: 'field' }, h('span', {}, t('invite.list')), text, h('small', {}, t('invite.list_hint', { max: MAX_PARTICIPANTS }))),
    h('div', { class: 'actions' }, check), report);
}

/**
 * The choice so far (count and names, each removable) and the one `invite` call.
 * @param {any} c @param {Map<string, Person>} chosen @param {(id: string) => void} remove
 * @param {Array<() => void>} views @param {HTMLDialogElement} dialog
 */
function choiceForm(c, chosen, remove, views, dialog) {
  const count = h('h3', { testid: 'invite-count' });
  const list = h('ul', { class: 'chips', testid: 'invite-chosen' });
  const over = h('p', { class: 'warn', testid: 'invite-over', hidden: true });
  const clear = h('button', { type: 'button', class: 'ghost small', testid: 'invite-clear' }, t('invite.clear'));
  const submit = h('button', { type: 'submit', testid: 'invite-submit' });
  const cancel = h('button', { type: 'button', class: 'ghost', testid: 'invite-cancel', onclick: () => dialog.close() }, t('common.cancel'));
  clear.addEventListener('click', () => { for (const id of [...chosen.keys()]) chosen.delete(id); views.forEach((v) => v()); });
  views.push(() => {
    const n = chosen.size;
    count.textContent = t('invite.chosen', { n });
    count.dataset.count = String(n);
    list.replaceChildren(...[...chosen.values()].map((p) => h('li', { testid: 'invite-chosen-item', 'data-username': p.username, 'data-id': p.id },
      p.display_name,
      h('button', { type: 'button', class: 'chip-remove', testid: 'invite-remove', 'aria-label': t('invite.remove', { name: p.display_name }), onclick: () => remove(p.id) }, '×'))));
    list.hidden = !n;
    clear.hidden = !n;
    over.hidden = n <= placesLeft(c);
    over.textContent = t('invite.over', { max: MAX_PARTICIPANTS, left: placesLeft(c) });
    submit.textContent = t('invite.submit', { n });
    submit.disabled = !n;
  });
  views.forEach((v) => v());
  const f = form({ class: 'choice', testid: 'invite-form' }, [
    h('div', { class: 'toolbar' }, count, h('span', { class: 'spacer' }), clear),
    list, over,
    h('div', { class: 'actions' }, cancel, submit),
  ], async () => {
    if (chosen.size > placesLeft(c)) {
      throw new ApiError(0, 'too_many_participants', `at most ${MAX_PARTICIPANTS} participants`, { field: 'participants', max: MAX_PARTICIPANTS });
    }
    const ids = [...chosen.keys()];
    const after = await api('POST', `/v1/consultations/${encodeURIComponent(c.id)}/invite`, { participants: ids });
    const added = ids.filter((id) => after.participants.includes(id) && !c.participants.includes(id)).length;
    dialog.close();
    await refresh();
    showBanner(t('invite.done', { n: added }), 'notice');
  });
  return f;
}
