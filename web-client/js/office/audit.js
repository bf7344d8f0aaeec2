// The administrator's audit page: the trail as sentences in the user's language (auditlog.js),
// filtered by who, what, which consultation and which days, a page at a time, and exported as
// a CSV file made here from the pages the filter matches (csv.js). Names come from the user
// and site lists (an admin may read both); records hold ids only, never case text.
import { api, followDownload } from '../api.js';
import { field, form, h, showBanner } from '../dom.js';
import { ZONE, has, label, t } from '../i18n.js';
import { collect, csvRows, detailText, sentence, shortRef, stamp } from './auditlog.js';
import { toCsv } from './csv.js';
import { dayRange } from './dayrange.js';
import { AUDIT_ACTIONS } from './enums.js';
import { refresh } from './nav.js';
import { loadDirectory, loadSites, siteById, userById } from './people.js';

/** Records per page on screen. */
const PAGE = 50;
/** Records per request when exporting: the API's largest page. */
const EXPORT_PAGE = 1000;
/** The most records one export writes; more and the admin is asked to narrow the filter. */
const EXPORT_CAP = 10000;
/** Beijing (ZONE) is UTC+8 all year: the times written in the list and the file. */
const BEIJING_MINUTES = 480;

/** The filter, kept while the admin moves between the admin pages. Days: date inputs' values. */
const filter = { actor: '', action: '', consultation: '', fromDay: '', toDay: '' };

/** @returns {import('./auditlog.js').Words} */
function words() {
  return {
    t, has,
    user: (id) => userById(id)?.display_name ?? null,
    site: (id) => siteById(id)?.name ?? null,
    status: (s) => label('status', s),
  };
}

/** The API query for the filter (without before/limit). */
function filterQuery() {
  const q = new URLSearchParams();
  if (filter.actor) q.set('actor', filter.actor);
  if (filter.action) q.set('action', filter.action);
  if (filter.consultation) q.set('consultation', filter.consultation);
  const days = dayRange(filter.fromDay, filter.toDay, ZONE);
  if (days.from) q.set('from', days.from);
  if (days.to) q.set('to', days.to);
  return q;
}

/** One page of records below `before` (null: the newest). @param {number | null} before @param {number} limit */
async function fetchPage(before, limit) {
  const q = filterQuery();
  q.set('limit', String(limit));
  if (before != null) q.set('before', String(before));
  return /** @type {Promise<import('./auditlog.js').AuditPage & { total: number }>} */ (api('GET', `/v1/audit?${q}`));
}

export async function auditView() {
  const [users] = await Promise.all([loadDirectory(), loadSites()]);
  const first = await fetchPage(null, PAGE);
  const w = words();
  const actor = h('select', { testid: 'audit-actor' }, h('option', { value: '' }, t('admin.anyone')),
    users.map((u) => h('option', { value: u.id, selected: u.id === filter.actor }, `${u.display_name} (${u.username})`)),
    h('option', { value: 'system', selected: filter.actor === 'system' }, t('admin.system')),
    h('option', { value: 'unknown', selected: filter.actor === 'unknown' }, t('admin.unknown_actor')));
  const action = h('select', { testid: 'audit-action' }, h('option', { value: '' }, t('admin.any_action')),
    AUDIT_ACTIONS.map((a) => h('option', { value: a, selected: a === filter.action }, actionLabel(a))));
  const consultation = h('input', { value: filter.consultation, pattern: '[0-9a-f]{32}', placeholder: t('admin.consultation_id'), testid: 'audit-consultation' });
  const fromDay = h('input', { type: 'date', value: filter.fromDay, testid: 'audit-from' });
  const toDay = h('input', { type: 'date', value: filter.toDay, testid: 'audit-to' });
  const filters = form({ class: 'card filters', testid: 'audit-filter-form' }, [
    h('div', { class: 'grid' },
      field('admin.actor', actor), field('admin.action', action), field('admin.consultation', consultation),
      field('admin.date_from', fromDay), field('admin.date_to', toDay, t('admin.date_hint'))),
    h('div', { class: 'actions' },
      h('button', {
        type: 'button', class: 'ghost', testid: 'audit-clear',
        onclick: () => { Object.assign(filter, { actor: '', action: '', consultation: '', fromDay: '', toDay: '' }); refresh(); },
      }, t('admin.clear')),
      h('button', { type: 'submit', testid: 'audit-apply' }, t('admin.apply'))),
  ], async () => {
    // Checked here, so the admin reads what is wrong with the days in their language.
    const days = dayRange(fromDay.value, toDay.value, ZONE);
    if (days.problem) {
      toDay.setAttribute('aria-invalid', 'true');
      throw { code: days.problem };
    }
    Object.assign(filter, { actor: actor.value, action: action.value, consultation: consultation.value.trim(), fromDay: fromDay.value, toDay: toDay.value });
    await refresh();
  });

  const list = h('ol', { class: 'audit-list', testid: 'audit-list' }, first.items.map((r) => auditRow(r, w)));
  let shown = first.items.length;
  const total = h('p', { class: 'muted small', testid: 'audit-total' }, t('admin.audit_total', { shown, n: first.total }));
  let next = first.next_before;
  const more = h('button', { class: 'ghost', testid: 'audit-more', hidden: next == null }, t('list.more'));
  more.onclick = async () => {
    more.disabled = true;
    try {
      const p = await fetchPage(next, PAGE);
      list.append(...p.items.map((r) => auditRow(r, w)));
      shown += p.items.length;
      total.textContent = t('admin.audit_total', { shown, n: p.total });
      next = p.next_before;
      more.hidden = next == null;
    } catch (e) { showBanner(e); } finally { more.disabled = false; }
  };
  const exportButton = h('button', { type: 'button', class: 'ghost', testid: 'audit-export', disabled: shown === 0 }, t('admin.export_csv'));
  exportButton.onclick = () => exportCsv(exportButton);
  return [
    filters,
    h('div', { class: 'audit-bar' }, total, exportButton),
    h('section', { class: 'card' }, shown ? list : h('p', { class: 'muted', testid: 'audit-empty' }, emptyText())),
    more,
  ];
}

/** Why the list is empty: nothing matches, or nothing between the days chosen. */
function emptyText() {
  if (!filter.fromDay && !filter.toDay) return t('admin.audit_empty');
  return t('admin.audit_empty_range', { from: filter.fromDay || t('admin.audit_open_start'), to: filter.toDay || t('admin.audit_open_end') });
}

/** An action's label with its code, e.g. "Accepted (consultation.accept)". @param {string} a */
function actionLabel(a) {
  const key = `audit.${a}`;
  return has(key) ? `${t(key)} (${a})` : a;
}

/** One record: the sentence and when, then the code, the detail and the full consultation id. @param {import('./auditlog.js').AuditRecord} r @param {import('./auditlog.js').Words} w */
function auditRow(r, w) {
  const detail = detailText(r.detail, w);
  return h('li', { testid: 'audit-row', 'data-action': r.action, 'data-seq': String(r.seq), 'data-consultation': r.consultation ?? null },
    h('p', { class: 'audit-sentence' },
      h('span', { testid: 'audit-sentence' }, sentence(r, w)), ' ',
      h('time', { class: 'muted', datetime: r.at, testid: 'audit-time' }, `(${stamp(r.at, BEIJING_MINUTES)})`)),
    h('small', { class: 'muted audit-meta' },
      h('code', {}, r.action),
      detail && ` · ${detail}`,
      r.consultation && [' · ', h('code', { title: r.consultation }, shortRef(r.consultation))],
      ` · ${t('admin.seq')} ${r.seq}`));
}

/**
 * Fetches every record the filter matches (up to EXPORT_CAP), writes them as CSV and hands the
 * file to the browser's download.
 * @param {HTMLButtonElement} button
 */
async function exportCsv(button) {
  button.disabled = true;
  button.textContent = t('admin.exporting');
  try {
    const { records, capped } = await collect((before) => fetchPage(before, EXPORT_PAGE), EXPORT_CAP);
    if (!records.length) {
      showBanner(t('admin.export_empty'), 'notice');
      return;
    }
    const blob = new Blob([toCsv(csvRows(records, words(), BEIJING_MINUTES))], { type: 'text/csv;charset=utf-8' });
    const url = URL.createObjectURL(blob);
    const now = stamp(new Date().toISOString(), BEIJING_MINUTES).replace(/[-: ]/g, '');
    followDownload(url, `huizhen-audit-${now}.csv`);
    // The download has taken the file by the time the admin reads the notice; the URL can go.
    setTimeout(() => URL.revokeObjectURL(url), 60e3);
    showBanner(capped ? t('admin.export_capped', { n: records.length }) : t('admin.exported', { n: records.length }), 'notice');
  } catch (e) {
    showBanner(e);
  } finally {
    button.disabled = false;
    button.textContent = t('admin.export_csv');
  }
}
