// The referrals page (#/referrals/incoming, #/referrals/outgoing; 转诊): the referrals to the
// user's site (转入) and from it (转出), newest first, as GET /v1/referrals lists them: the
// report number, the patient masked (name, sex, age), direction, sites, department, status and
// dates, each row leading to its consultation (where the steps are) and to its printable form.
// A status filter narrows the list. Lists carry no reasons (patient data): the consultation
// has them. Pushed changes render the page again (updates.js, changes.js).
import { api, me } from '../api.js';
import { h, options } from '../dom.js';
import { fmtTime, label, t } from '../i18n.js';
import { refresh } from './nav.js';
import { patientLine } from './patient.js';
import { loadSites } from './people.js';
import { BOXES, REFERRAL_STATUSES } from './referralfacts.js';
import { siteName } from './referrals.js';

/** @typedef {import('./referralfacts.js').ReferralItem} ReferralItem */
/** @typedef {import('./referralfacts.js').Referral} Referral */

/** The status chosen, kept across renders (a pushed change renders the page again). */
const filter = { status: '' };

/** @param {string} active */
function tabs(active) {
  return h('nav', { class: 'tabs', 'aria-label': t('referrals.title') },
    BOXES.map((box) => h('a', {
      href: `#/referrals/${box}`, class: box === active ? 'tab active' : 'tab', testid: `referrals-tab-${box}`,
      'aria-current': box === active ? 'page' : null,
    }, t(`referrals.${box}`))));
}

function statusFilter() {
  return h('select', {
    testid: 'referral-status-filter', 'aria-label': t('referrals.filter'),
    onchange: (/** @type {Event & { target: HTMLSelectElement }} */ e) => { filter.status = e.target.value; refresh(); },
  }, h('option', { value: '' }, t('list.all')), options('referral.status', REFERRAL_STATUSES, filter.status));
}

/**
 * What happened when, one line each: asked, the day planned, and the latest step since.
 * @param {Referral} r
 */
function dates(r) {
  const latest = r.received_at ? ['received', r.received_at] : r.discharged_at ? ['discharged', r.discharged_at]
    : r.admitted_at ? ['admitted', r.admitted_at] : r.decided_at ? [r.status === 'declined' ? 'declined' : 'accepted', r.decided_at] : null;
  return [
    h('div', { testid: 'referral-row-requested' }, `${t('referral.time.requested')} ${fmtTime(r.requested_at)}`),
    r.planned_date && h('div', { testid: 'referral-row-planned' }, `${t('referral.planned_date')} ${r.planned_date}`),
    latest && h('div', { class: 'muted' }, `${t(`referral.time.${latest[0]}`)} ${fmtTime(latest[1])}`),
  ];
}

/** @param {ReferralItem} item */
function row(item) {
  const r = item.referral;
  const open = `#/c/${item.consultation}`;
  return h('tr', { testid: 'referral-row', dataset: { id: r.id, consultation: item.consultation, direction: r.direction, status: r.status } },
    h('td', {}, h('a', { href: open, testid: 'referral-row-open' }, item.number || t('referrals.open'))),
    h('td', {}, patientLine(item) ?? h('span', { class: 'muted' }, '—')),
    h('td', {}, h('span', { class: `badge direction-${r.direction}`, testid: 'referral-row-direction' }, label('referral.direction', r.direction))),
    h('td', { testid: 'referral-row-route' }, siteName(r.from_site), ' → ', siteName(r.to_site)),
    h('td', { testid: 'referral-row-department' }, r.department),
    h('td', {}, h('span', { class: `badge referral-status-${r.status}`, testid: 'referral-row-status' }, label('referral.status', r.status)),
      r.urgency !== 'routine' && [' ', h('span', { class: `badge urgency-${r.urgency}` }, label('urgency', r.urgency))]),
    h('td', { class: 'small' }, dates(r)),
    h('td', { class: 'row-actions' }, h('a', { href: `${open}/referral/${r.id}`, class: 'small', testid: 'referral-row-sheet' }, t('referral.sheet'))));
}

/** @param {string} box incoming or outgoing (anything else: incoming) */
export async function referralsView(box) {
  const active = BOXES.includes(box) ? box : 'incoming';
  const head = [h('h1', {}, t('referrals.title')), tabs(active)];
  // The lists are a site's: an account without one has none (the server answers empty).
  if (!me()?.site_id) return [...head, h('p', { class: 'muted', testid: 'referral-list-empty' }, t('referrals.no_site'))];
  const q = new URLSearchParams({ box: active });
  if (filter.status) q.set('status', filter.status);
  /** @type {[{ items: ReferralItem[], total: number }, unknown]} */
  const [page] = await Promise.all([api('GET', `/v1/referrals?${q}`), loadSites().catch(() => [])]);
  const cols = ['field.number', 'referrals.patient', 'referrals.direction', 'referrals.route', 'referral.department', 'field.status', 'referrals.dates', 'referral.sheet'];
  return [
    ...head,
    h('div', { class: 'toolbar' }, statusFilter(), h('span', { class: 'muted small' }, t('referrals.hint'))),
    page.items.length
      ? h('section', { class: 'card table-card' },
        h('table', { class: 'table referral-table', testid: 'referral-list', dataset: { box: active } },
          h('thead', {}, h('tr', {}, cols.map((k) => h('th', {}, t(k))))),
          h('tbody', {}, page.items.map(row))))
      : h('p', { class: 'muted', testid: 'referral-list-empty', dataset: { box: active } }, t(`referrals.empty_${active}`)),
    h('p', { class: 'muted small' }, t('list.total', { n: page.total }), ' · ', t('common.zone_note')),
  ];
}
