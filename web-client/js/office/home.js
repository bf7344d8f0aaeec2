// The home pages that are lists: the doctor's requests (with the emergency button), the
// specialist's day, the trainee's consultations, and the full filtered list (#/all). Rows
// show the report number and the patient as lists have it (masked name, sex, age); the
// doctor's list and #/all find a case by the patient's number (门诊号/住院号).
import { api, me } from '../api.js';
import { form, h, options, showBanner } from '../dom.js';
import { fmtClock, fmtTime, label, shanghaiMidnight, t } from '../i18n.js';
import { enableButton } from './desktop.js';
import { STATUSES } from './enums.js';
import { refresh, update } from './nav.js';
import { patientLine } from './patient.js';
import { emergencyPanel } from './request.js';

/** @typedef {import('./people.js').ListedConsultation} ListedConsultation */
/** @typedef {import('./people.js').ConsultationPage} ConsultationPage */
/** @typedef {{ join?: boolean, clock?: boolean }} RowOpts */

const filter = { status: '', mine: false, number: '' };

/**
 * One consultation in a list. Lists never show the case summary: it is patient data, shown
 * only in the detail view. `join` adds the way into the room for open consultations.
 * @param {ListedConsultation} c @param {RowOpts} [opts]
 */
export function row(c, { join = false, clock = false } = {}) {
  const when = c.start ? (clock ? fmtClock(c.start) : fmtTime(c.start)) : t('list.not_scheduled');
  const canJoin = join && (c.status === 'live' || c.status === 'scheduled');
  return h('li', { testid: 'consultation-item', 'data-id': c.id, 'data-status': c.status, 'data-urgency': c.urgency, class: c.urgency === 'emergency' && c.status === 'live' ? 'alarm' : null },
    h('a', { href: `#/c/${c.id}`, class: 'row' },
      h('span', { class: `badge status-${c.status}` }, label('status', c.status)),
      h('span', { class: 'grow' },
        h('strong', {}, label('specialty', c.specialty)), ' · ', label('kind', c.kind),
        (c.number || c.patient_summary) && h('small', { class: 'row-case' },
          c.number && h('span', { class: 'number', testid: 'row-number' }, c.number),
          c.number && c.patient_summary && ' · ',
          patientLine(c))),
      h('span', { class: `badge urgency-${c.urgency}` }, label('urgency', c.urgency)),
      h('time', { datetime: c.start || '' }, when)),
    canJoin && h('a', { class: 'button join-small', href: `#/c/${c.id}/call`, testid: 'row-join' }, t('join.short')));
}

/**
 * A list of consultations from `query`, with "load more".
 * @param {Record<string, string>} query @param {string} testid @param {RowOpts & { empty?: string }} [opts]
 */
async function pagedList(query, testid, opts = {}) {
  const q = new URLSearchParams({ limit: '20', ...query });
  /** @type {ConsultationPage} */
  const page = await api('GET', `/v1/consultations?${q}`);
  const ul = h('ul', { class: 'list', testid });
  ul.append(...page.items.map((c) => row(c, opts)));
  let next = page.next_offset;
  const more = h('button', { class: 'ghost', testid: `${testid}-more`, hidden: next == null }, t('list.more'));
  more.onclick = async () => {
    more.disabled = true;
    try {
      q.set('offset', String(next));
      /** @type {ConsultationPage} */
      const p = await api('GET', `/v1/consultations?${q}`);
      ul.append(...p.items.map((c) => row(c, opts)));
      next = p.next_offset;
      more.hidden = next == null;
    } catch (e) { showBanner(e); } finally { more.disabled = false; }
  };
  return {
    total: page.total,
    nodes: [page.items.length ? ul : h('p', { class: 'muted', testid: `${testid}-empty` }, opts.empty || t('list.empty')), more],
  };
}

function statusFilter() {
  return h('select', {
    testid: 'status-filter', 'aria-label': t('list.filter'),
    onchange: (/** @type {Event & { target: HTMLSelectElement }} */ e) => { filter.status = e.target.value; refresh(); },
  }, h('option', { value: '' }, t('list.all')), options('status', STATUSES, filter.status));
}

/**
 * The search by the patient's number at the requesting hospital (门诊号/住院号; the server
 * matches it whole, letter case ignored), and while one is on, what it looked for and the way
 * back to the whole list.
 */
function numberSearch() {
  const input = h('input', {
    type: 'search', value: filter.number, maxlength: 32, autocomplete: 'off', testid: 'patient-number-search',
    'aria-label': t('list.search_number'), placeholder: t('list.search_number'), title: t('list.search_hint'),
  });
  const clear = () => { filter.number = ''; refresh(); };
  return [
    form({ class: 'search', role: 'search', testid: 'patient-number-form' }, [
      input,
      h('button', { type: 'submit', class: 'ghost', testid: 'patient-number-submit' }, t('list.search')),
    ], async () => { filter.number = input.value.trim(); await refresh(); }),
    filter.number && h('p', { class: 'muted small searching', testid: 'patient-number-active' },
      t('list.found_number', { number: filter.number }), ' ',
      h('button', { type: 'button', class: 'ghost small', testid: 'patient-number-clear', onclick: clear }, t('list.search_clear'))),
  ];
}

/** The list's query by the patient's number, if one is searched for. @param {Record<string, string>} query */
function withNumber(query) {
  if (filter.number) query.patient_number = filter.number;
  return query;
}

/** Every consultation the user may see, filtered by status (coordinators: the whole queue). */
export async function listView() {
  const coordinator = me()?.role === 'coordinator';
  /** @type {Record<string, string>} */
  const query = {};
  if (filter.status) query.status = filter.status;
  if (coordinator && filter.mine) query.mine = 'true';
  const list = await pagedList(withNumber(query), 'consultation-list', {
    join: true, empty: filter.number ? t('list.no_match_number', { number: filter.number }) : undefined,
  });
  return [
    h('h1', {}, t(coordinator && !filter.mine ? 'list.all_title' : 'list.mine')),
    h('div', { class: 'toolbar' },
      statusFilter(),
      coordinator && h('label', { class: 'check' }, h('input', {
        type: 'checkbox', checked: filter.mine, testid: 'mine-only',
        onchange: (/** @type {Event & { target: HTMLInputElement }} */ e) => { filter.mine = e.target.checked; refresh(); },
      }), t('list.mine_only')),
      numberSearch()),
    list.nodes,
    h('p', { class: 'muted small' }, t('list.total', { n: list.total }), ' · ', t('common.zone_note')),
  ];
}

export async function doctorHome() {
  /** @type {Record<string, string>} */
  const query = filter.status ? { status: filter.status } : {};
  const [list, waiting] = await Promise.all([
    pagedList(withNumber(query), 'consultation-list', {
      join: true, empty: filter.number ? t('list.no_match_number', { number: filter.number }) : t('doctor.empty'),
    }),
    api('GET', '/v1/consultations?status=ended&limit=50'),
  ]);
  return [
    emergencyPanel(),
    waiting.items.length > 0 && h('p', { class: 'warn', testid: 'plan-needed' }, t('doctor.plan_needed', { n: waiting.items.length }), ' ',
      filter.status !== 'ended' && h('button', { type: 'button', class: 'ghost', testid: 'show-ended', onclick: () => { filter.status = 'ended'; refresh(); } }, t('doctor.show_ended'))),
    h('div', { class: 'toolbar' },
      h('h1', {}, t('doctor.title')),
      h('span', { class: 'spacer' }),
      statusFilter(),
      h('a', { class: 'button', href: '#/new', testid: 'new-request' }, t('request.new'))),
    h('div', { class: 'toolbar' }, numberSearch()),
    list.nodes,
    h('p', { class: 'muted small' }, t('list.total', { n: list.total }), ' · ', t('common.zone_note')),
  ];
}

/** The specialist's day: today's consultations in time order, what is coming, what awaits an opinion. */
export async function specialistHome() {
  const today = shanghaiMidnight();
  const tomorrow = shanghaiMidnight(new Date(), 1);
  /** @type {ConsultationPage[]} */
  const [day, upcoming, opinions] = await Promise.all([
    api('GET', `/v1/consultations?${new URLSearchParams({ from: today.toISOString(), to: tomorrow.toISOString(), order: 'asc', limit: '100' })}`),
    api('GET', `/v1/consultations?${new URLSearchParams({ from: tomorrow.toISOString(), status: 'scheduled', order: 'asc', limit: '20' })}`),
    api('GET', `/v1/consultations?${new URLSearchParams({ status: 'live,ended', order: 'asc', limit: '50' })}`),
  ]);
  // Live ones first (an emergency cannot wait), then the day in order.
  const todays = [...day.items.filter((c) => c.status === 'live'), ...day.items.filter((c) => c.status !== 'live')];
  // An emergency opened earlier and still live belongs on today's list too.
  for (const c of opinions.items) if (c.status === 'live' && !todays.some((x) => x.id === c.id)) todays.unshift(c);
  /** @param {string} title @param {string} testid @param {ListedConsultation[]} items @param {RowOpts} opts @param {string} empty */
  const section = (title, testid, items, opts, empty) => h('section', { class: 'card', testid },
    h('h2', {}, title, ' ', h('span', { class: 'count' }, String(items.length))),
    items.length ? h('ul', { class: 'list' }, items.map((c) => row(c, opts))) : h('p', { class: 'muted', testid: `${testid}-empty` }, empty));
  const ended = opinions.items.filter((c) => c.status === 'ended');
  return [
    h('h1', {}, t('specialist.title', { name: me()?.display_name })),
    h('p', { class: 'muted small' }, fmtTime(new Date()), ' · ', t('common.zone_note')),
    // An emergency assigned to the specialist is alerted on the page (alerts.js); on the
    // desktop too once they allow it, asked only when they press this.
    desktopHint(),
    section(t('specialist.today'), 'day-today', todays, { join: true, clock: true }, t('specialist.today_empty')),
    section(t('specialist.upcoming'), 'day-upcoming', upcoming.items, { join: true }, t('specialist.upcoming_empty')),
    section(t('specialist.awaiting'), 'day-awaiting', ended, {}, t('specialist.awaiting_empty')),
    h('p', {}, h('a', { href: '#/all', testid: 'all-link' }, t('list.see_all'))),
  ];
}

/** "Enable desktop alerts", while the browser can still ask; null otherwise. */
function desktopHint() {
  const button = enableButton(() => update());
  return button && h('p', { class: 'muted small', testid: 'desktop-alerts' }, t('desktop.why'), ' ', button);
}

export async function viewerHome() {
  return listView();
}

