// The "Invite" button of a consultation's detail page and its dialog (issue 14): trainees for a
// teaching session, other sites for a case discussion. People are chosen by name, by site (its
// doctors), by role, or from a pasted list of usernames (unknown names are listed back); the
// choice is shown (count and names) and sent as one `invite` call (api.md, lifecycle actions).
// Everyone who may invite (the record's coordinator, a host, the requester) finds people
// through GET /v1/consultations/{id}/invitable and POST …/invitable/lookup, which list only
// active people not on the consultation yet; sites come from GET /v1/sites. The rules and the
// requests' shapes are in invitees.js.
import { ApiError, api, me } from '../api.js';
import { errParams, errorBox, form, h, options, showBanner } from '../dom.js';
import { label, t } from '../i18n.js';
import {
  INVITE_ROLES, LIST_LIMIT, MAX_PARTICIPANTS, choose, invitablePath, latestOnly, listProblem, lookupPath, mayInvite, merge,
  notChosen, parseUsernames, placesLeft, roleFilters, searchFilters, siteFilters,
} from './invitees.js';
import { refresh } from './nav.js';
import { loadSites, remember, siteById, userById } from './people.js';

/** @typedef {import('./people.js').Consultation} Consultation */
/** @typedef {import('./invitees.js').Person} Person */
/** @typedef {import('./invitees.js').InvitableFilters} InvitableFilters */
/** @typedef {import('./invitees.js').Lookup} Lookup */
/** @typedef {{ id: string, name: string }} Site */
/** @typedef {(people: Person[]) => number} Add */

/** Why the dialog is there, by kind of consultation. @type {Record<string, string>} */
const HINTS = { teaching: 'invite.hint_teaching', case_discussion: 'invite.hint_discussion', consultation: 'invite.hint_consultation' };

/** Milliseconds of quiet typing before a search is sent (one request per name, not per key). */
const TYPING_PAUSE_MS = 150;

/** The button that opens the dialog, or null when the signed-in user may not invite now. @param {Consultation} c */
export function inviteButton(c) {
  if (!mayInvite(c, me())) return null;
  const button = h('button', { type: 'button', class: 'ghost', testid: 'invite-open' }, t('invite.button'));
  button.addEventListener('click', () => openDialog(c, button));
  return button;
}

/**
 * Names of people found, for messages that name them (a refused invitee). Known records (the
 * directory's, with more fields) are kept as they are.
 * @param {Person[]} people
 */
function rememberNames(people) {
  remember(people.filter((p) => !userById(p.id)));
}

/**
 * People the consultation can take, by one or more searches (GET …/invitable), merged.
 * @param {Consultation} c @param {InvitableFilters[]} searches
 * @returns {Promise<{ people: Person[], hidden: number }>}
 */
async function findInvitable(c, searches) {
  const pages = await Promise.all(searches.map((f) => api('GET', invitablePath(c.id, f))));
  const found = merge(pages);
  rememberNames(found.people);
  return found;
}

/** An error of a search or lookup, in the user's language. @param {unknown} e */
const loadError = (e) => errorBox(e, 'invite-load-error', errParams(e));

/** @param {Consultation} c @param {HTMLElement} opener */
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
  /** @type {Site[]} */
  let sites;
  try {
    sites = await loadSites();
  } catch (e) {
    body.replaceChildren(errorBox(e, 'invite-error', errParams(e)));
    return;
  }
  if (!dialog.isConnected) return;
  body.replaceChildren(...picker(c, sites, dialog));
}

/** One line about a person: name, username, role, site. @param {Person} p */
function personLine(p) {
  const site = p.site_id ? siteById(p.site_id)?.name : null;
  return [h('strong', {}, p.display_name), ' ', h('span', { class: 'muted small' }, [p.username, label('role', p.role), site].filter(Boolean).join(' · '))];
}

/**
 * The four ways to choose, the choice, and the send button.
 * @param {Consultation} c @param {Site[]} sites @param {HTMLDialogElement} dialog
 * @returns {HTMLElement[]}
 */
function picker(c, sites, dialog) {
  /** @type {Map<string, Person>} */
  const chosen = new Map();
  const feedback = h('p', { class: 'small', role: 'status', 'aria-live': 'polite', testid: 'invite-feedback' });
  /** @type {Array<() => void>} */
  const views = [];
  const update = () => { for (const v of views) v(); };
  /** Adds people to the choice and says how many were new. @type {Add} */
  const add = (people) => {
    const n = choose(chosen, people);
    feedback.textContent = n ? t('invite.added', { n }) : t('invite.added_none');
    feedback.dataset.added = String(n);
    update();
    return n;
  };
  /** @param {string} id */
  const remove = (id) => { chosen.delete(id); update(); };

  /** @type {Array<{ mode: string, title: string, panel: HTMLElement, shown?: () => void }>} */
  const modes = [
    { mode: 'person', title: t('invite.by_person'), ...byPerson(c, chosen, add, views) },
    { mode: 'site', title: t('invite.by_site'), ...bySite(c, sites, chosen, add, views) },
    { mode: 'role', title: t('invite.by_role'), ...byRole(c, chosen, add, views) },
    { mode: 'bulk', title: t('invite.by_list'), ...byList(c, add) },
  ];
  const tabs = modes.map(({ mode, title, panel }, i) => {
    panel.hidden = i !== 0;
    const tab = h('button', { type: 'button', class: 'tab-button', testid: `invite-mode-${mode}`, 'aria-pressed': String(i === 0) }, title);
    tab.addEventListener('click', () => {
      tabs.forEach((b, j) => b.setAttribute('aria-pressed', String(j === i)));
      modes.forEach((m, j) => { m.panel.hidden = j !== i; });
      feedback.textContent = '';
      modes[i].shown?.();
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

/**
 * By name or username: type, then add a match. The server searches (at most a page of
 * matches; more means "type more"); the results list carries the query it answers
 * (data-query) and is emptied while a new one is asked.
 * @param {Consultation} c @param {Map<string, Person>} chosen @param {Add} add @param {Array<() => void>} views
 */
function byPerson(c, chosen, add, views) {
  const query = h('input', { type: 'search', autocomplete: 'off', testid: 'invite-search', placeholder: t('invite.search_placeholder'), 'aria-label': t('invite.search') });
  const results = h('ul', { class: 'picklist', testid: 'invite-results', 'aria-live': 'polite' });
  const fresh = latestOnly();
  /** @type {{ q: string, people: Person[], hidden: number } | { q: string, error: any } | null} */
  let answer = null;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let pause;
  const show = () => {
    if (!answer) { results.replaceChildren(); delete results.dataset.query; return; }
    results.dataset.query = answer.q;
    if ('error' in answer) { results.replaceChildren(h('li', {}, loadError(answer.error))); return; }
    const { people, hidden } = answer;
    results.replaceChildren(...people.map((p) => h('li', { testid: 'invite-match', 'data-username': p.username },
      h('span', { class: 'grow' }, personLine(p)),
      h('button', {
        type: 'button', class: 'ghost small', testid: 'invite-person-add', 'data-username': p.username, disabled: chosen.has(p.id),
        onclick: () => { add([p]); query.focus(); },
      }, t(chosen.has(p.id) ? 'invite.is_chosen' : 'invite.add')))));
    if (!people.length) results.append(h('li', { class: 'muted', testid: 'invite-no-match' }, t('invite.no_match')));
    if (hidden) results.append(h('li', { class: 'muted small', testid: 'invite-more-matches' }, t('invite.more_matches', { n: hidden })));
  };
  const search = async () => {
    const filters = searchFilters(query.value);
    const current = fresh();
    if (!filters) { answer = null; show(); results.removeAttribute('aria-busy'); return; }
    const q = filters.q ?? '';
    try {
      const found = await findInvitable(c, [filters]);
      if (current()) answer = { q, ...found };
    } catch (e) {
      if (current()) answer = { q, error: e };
    }
    if (current()) { show(); results.removeAttribute('aria-busy'); }
  };
  query.addEventListener('input', () => {
    // Nothing stale on show: the old matches go at once, the new ones come with the answer.
    fresh();
    answer = null;
    show();
    results.setAttribute('aria-busy', 'true');
    clearTimeout(pause);
    pause = setTimeout(search, TYPING_PAUSE_MS);
  });
  query.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter') return;
    e.preventDefault();
    // The one match of what is typed, once its answer is in.
    if (answer && !('error' in answer) && answer.q === query.value.trim() && answer.people.length === 1 && !answer.hidden) add(answer.people);
  });
  views.push(show);
  const panel = h('div', { class: 'mode', testid: 'invite-panel-person' },
    h('label', { class: 'field' }, h('span', {}, t('invite.search')), query, h('small', {}, t('invite.search_hint'))), results);
  return { panel };
}

/**
 * A list loaded by searches (a site's doctors, a role), offered as one "add all" button: its
 * count (data-count, absent while loading) is of those not chosen yet, and those the server
 * did not send (over a page) are counted in words, never dropped silently.
 * @param {Consultation} c @param {Map<string, Person>} chosen @param {Add} add @param {Array<() => void>} views
 * @param {{ testid: string, searches: () => InvitableFilters[], text: (n: number) => string, names?: HTMLElement }} how
 */
function addAllList(c, chosen, add, views, how) {
  const button = h('button', { type: 'button', testid: `${how.testid}-add` });
  const more = h('p', { class: 'warn small', testid: `${how.testid}-more`, hidden: true });
  const error = h('div', {});
  const fresh = latestOnly();
  /** @type {{ people: Person[], hidden: number } | { error: any } | null} null while loading */
  let list = null;
  const show = () => {
    const ready = list && !('error' in list) ? list : null;
    const offered = ready ? notChosen(chosen, ready.people) : [];
    error.replaceChildren(...(list && 'error' in list ? [loadError(list.error)] : []));
    button.hidden = Boolean(list && 'error' in list);
    button.textContent = ready ? how.text(offered.length) : t('common.loading');
    if (ready) button.dataset.count = String(offered.length);
    else delete button.dataset.count;
    button.disabled = !offered.length;
    more.hidden = !ready?.hidden;
    more.dataset.hidden = String(ready?.hidden ?? 0);
    more.textContent = t('invite.not_shown', { n: ready?.hidden ?? 0, max: LIST_LIMIT });
    if (how.names) how.names.textContent = !ready ? '' : offered.length ? offered.map((p) => p.display_name).join('、') : t('invite.site_none');
  };
  const load = async () => {
    const current = fresh();
    list = null;
    show();
    try {
      const found = await findInvitable(c, how.searches());
      if (current()) list = found;
    } catch (e) {
      if (current()) list = { error: e };
    }
    if (current()) show();
  };
  button.addEventListener('click', () => { if (list && !('error' in list)) add(notChosen(chosen, list.people)); });
  views.push(show);
  let loaded = false;
  /** Loads the list the first time its panel is shown. */
  const shown = () => { if (!loaded) { loaded = true; load(); } };
  return { button, more, error, load, shown };
}

/**
 * By site: all its active doctors and specialists not on the consultation yet.
 * @param {Consultation} c @param {Site[]} sites @param {Map<string, Person>} chosen @param {Add} add @param {Array<() => void>} views
 */
function bySite(c, sites, chosen, add, views) {
  if (!sites.length) return { panel: h('div', { class: 'mode', testid: 'invite-panel-site' }, h('p', { class: 'muted' }, t('invite.no_sites'))) };
  const site = h('select', { testid: 'invite-site', 'aria-label': t('invite.site') },
    sites.map((s) => h('option', { value: s.id }, s.name)));
  const names = h('p', { class: 'small muted', testid: 'invite-site-names' });
  const list = addAllList(c, chosen, add, views, {
    testid: 'invite-site', names, searches: () => siteFilters(site.value), text: (n) => t('invite.site_add', { n }),
  });
  site.addEventListener('change', () => list.load());
  const panel = h('div', { class: 'mode', testid: 'invite-panel-site' },
    h('label', { class: 'field' }, h('span', {}, t('invite.site')), site, h('small', {}, t('invite.site_hint'))),
    names, list.more, list.error, h('div', { class: 'actions' }, list.button));
  return { panel, shown: list.shown };
}

/**
 * By role: e.g. every trainee.
 * @param {Consultation} c @param {Map<string, Person>} chosen @param {Add} add @param {Array<() => void>} views
 */
function byRole(c, chosen, add, views) {
  const role = h('select', { testid: 'invite-role', 'aria-label': t('invite.role') }, options('role', INVITE_ROLES, INVITE_ROLES[0]));
  const list = addAllList(c, chosen, add, views, {
    testid: 'invite-role', searches: () => roleFilters(role.value), text: (n) => t('invite.role_add', { n, role: label('role', role.value) }),
  });
  role.addEventListener('change', () => list.load());
  const panel = h('div', { class: 'mode', testid: 'invite-panel-role' },
    h('label', { class: 'field' }, h('span', {}, t('invite.role')), role, h('small', {}, t('invite.role_hint'))),
    list.more, list.error, h('div', { class: 'actions' }, list.button));
  return { panel, shown: list.shown };
}

/**
 * From a pasted list of usernames, looked up by the server (POST …/invitable/lookup). Every
 * name is accounted for: added, unknown, disabled, or already on the consultation; the unknown
 * ones stay in the box to be corrected.
 * @param {Consultation} c @param {Add} add
 */
function byList(c, add) {
  const text = h('textarea', { rows: 6, testid: 'invite-bulk', placeholder: t('invite.list_placeholder'), 'aria-label': t('invite.list') });
  const check = h('button', { type: 'button', testid: 'invite-bulk-add' }, t('invite.list_add'));
  const report = h('div', { class: 'list-report', testid: 'invite-bulk-report', 'aria-live': 'polite' });
  /**
   * A titled list of names in the report.
   * @param {string} cls @param {string} testid @param {string} title @param {Array<[string, string]>} items [username, text]
   */
  const block = (cls, testid, title, items) => items.length > 0 && h('div', { class: cls, testid: `${testid}-block` },
    h('p', {}, title), h('ul', { class: 'names' }, items.map(([username, line]) => h('li', { testid, 'data-username': username }, line))));
  check.addEventListener('click', async () => {
    const names = parseUsernames(text.value);
    const problem = listProblem(names);
    if (problem === 'empty') { report.replaceChildren(h('p', { class: 'warn', testid: 'invite-bulk-empty' }, t('invite.list_empty'))); return; }
    if (problem === 'too_many') {
      report.replaceChildren(h('p', { class: 'error', testid: 'invite-bulk-too-many' }, t('invite.list_too_many', { n: names.length, max: MAX_PARTICIPANTS })));
      return;
    }
    check.disabled = true;
    report.replaceChildren(h('p', { class: 'muted', testid: 'invite-bulk-loading' }, t('common.loading')));
    /** @type {Lookup} */
    let r;
    try {
      r = await api('POST', lookupPath(c.id), { usernames: names });
    } catch (e) {
      report.replaceChildren(loadError(e));
      return;
    } finally {
      check.disabled = false;
    }
    rememberNames([...r.found, ...r.already]);
    const added = add(r.found);
    /** @param {Person} p @returns {[string, string]} */
    const who = (p) => [p.username, `${p.username} (${p.display_name})`];
    /** @param {string} n @returns {[string, string]} */
    const plain = (n) => [n, n];
    // filter(Boolean) leaves only the elements (TypeScript cannot tell).
    report.replaceChildren(.../** @type {HTMLElement[]} */ ([
      h('p', { class: 'ok', testid: 'invite-bulk-found', 'data-count': String(r.found.length) }, t('invite.list_found', { n: r.found.length, added })),
      block('error', 'invite-unknown', t('invite.list_unknown', { n: r.unknown.length }), r.unknown.map(plain)),
      block('warn', 'invite-disabled', t('invite.list_disabled', { n: r.disabled.length }), r.disabled.map(plain)),
      block('muted small', 'invite-already', t('invite.list_already', { n: r.already.length }), r.already.map(who)),
    ].filter(Boolean)));
    text.value = r.unknown.join('\n');
  });
  const panel = h('div', { class: 'mode', testid: 'invite-panel-bulk' },
    h('label', { class: 'field' }, h('span', {}, t('invite.list')), text, h('small', {}, t('invite.list_hint', { max: MAX_PARTICIPANTS }))),
    h('div', { class: 'actions' }, check), report);
  return { panel };
}

/**
 * The choice so far (count and names, each removable) and the one `invite` call.
 * @param {Consultation} c @param {Map<string, Person>} chosen @param {(id: string) => void} remove
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
