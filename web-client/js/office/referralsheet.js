// The printable referral form (转诊单, #/c/<id>/referral/<rid>): what the receiving hospital
// (or, for a referral back down, the county doctor) needs on paper: the report number, the
// patient, from and to which site, department, urgency, the reason, the signed opinions of the
// consultation and its plan, the planned date, and for a referral down the instructions and
// the stay it follows; lines for the signature and the stamp. The print stylesheet hides the
// rest of the page (css/app.css).
import { ApiError } from '../api.js';
import { h } from '../dom.js';
import { fmtTime, label, t } from '../i18n.js';
import { loadReport } from './detail.js';
import { patientFacts } from './patient.js';
import { loadSites, nameOf } from './people.js';
import { answeredReferral } from './referralfacts.js';
import { attachmentList } from './report.js';
import { referralFacts, siteName } from './referrals.js';

/** @typedef {import('./people.js').Report} Report */

/** @param {Array<[string, string, string]>} rows */
const facts = (rows) => h('dl', { class: 'facts' }, rows.map(([k, v, id]) => [h('dt', {}, t(k)), h('dd', { testid: `sheet-${id}` }, v)]));

/** @param {string} id the consultation @param {string} rid the referral */
export async function referralSheetView(id, rid) {
  /** @type {[Report, unknown]} */
  const [report] = await Promise.all([loadReport(id), loadSites().catch(() => [])]);
  const c = report.consultation;
  const r = (c.referrals ?? []).find((x) => x.id === rid);
  if (!r) throw new ApiError(404, 'referral_not_found', 'no such referral');
  const down = r.direction === 'down';
  // A referral back down follows a stay: its admission and discharge are on the up referral.
  const stay = down ? answeredReferral(c, r) : null;
  const signed = c.opinions.filter((o) => o.signed_at);
  /** @type {Array<[string, string, string]>} */
  const rows = [['referral.direction', label('referral.direction', r.direction), 'direction-label'], ...referralFacts(r)];
  /** @type {Array<[string, string, string]>} */
  const stayRows = [];
  if (stay?.admitted_at) stayRows.push(['referral.stay.admitted', fmtTime(stay.admitted_at), 'stay-admitted']);
  if (stay?.discharged_at) stayRows.push(['referral.stay.discharged', fmtTime(stay.discharged_at), 'stay-discharged']);
  // The stay came before this referral's own times: it reads in the order things happened.
  const firstTime = rows.findIndex(([, , id]) => id.startsWith('time-'));
  rows.splice(firstTime < 0 ? rows.length : firstTime, 0, ...stayRows);
  return h('article', { class: 'report referral-sheet', testid: 'referral-sheet', dataset: { id: r.id, consultation: c.id, direction: r.direction, status: r.status } },
    h('div', { class: 'toolbar no-print' },
      h('a', { href: `#/c/${c.id}`, testid: 'back' }, `← ${t('report.back')}`),
      h('span', { class: 'spacer' }),
      h('button', { type: 'button', testid: 'referral-print', onclick: () => window.print() }, t('report.print'))),
    h('header', { class: 'report-head' },
      h('h1', {}, t('referral.sheet.title'), ' ', h('small', { testid: 'sheet-direction' }, t(down ? 'referral.sheet.down' : 'referral.sheet.up'))),
      h('p', { class: 'muted', testid: 'sheet-number' }, `${siteName(r.from_site)} · ${t('report.number', { id: c.number || c.id })}`),
      h('p', {}, h('span', { class: `badge referral-status-${r.status}`, testid: 'sheet-status' }, label('referral.status', r.status)), ' ',
        t('report.generated', { time: fmtTime(new Date()) }))),
    h('section', {}, h('h2', {}, t('referral.sheet.referral')),
      facts(rows)),
    h('section', { testid: 'sheet-patient' }, h('h2', {}, t('field.patient')),
      c.patient ? patientFacts(c.patient, 'sheet-patient') : h('p', { class: 'muted' }, t('referral.sheet.no_patient'))),
    h('section', {}, h('h2', {}, t(down ? 'referral.instructions' : 'referral.reason')),
      h('p', { class: 'text', testid: 'sheet-reason' }, r.reason ?? '')),
    r.refusal && h('section', {}, h('h2', {}, t(r.status === 'declined' ? 'referral.refusal.declined' : 'referral.refusal.cancelled')),
      h('p', { class: 'text', testid: 'sheet-refusal' }, r.refusal)),
    h('section', { testid: 'sheet-opinions' }, h('h2', {}, t('referral.sheet.opinions')),
      signed.length ? signed.map((o) => h('div', { class: 'opinion', testid: 'sheet-opinion' },
        h('p', { class: 'muted small' }, `${nameOf(o.author)} · ${t('detail.signed_at', { time: fmtTime(o.signed_at) })}`),
        h('p', { class: 'text' }, o.text))) : h('p', { class: 'muted' }, t('report.no_signed')),
      c.plan && [h('h3', {}, t('detail.plan')), h('p', { class: 'text', testid: 'sheet-plan' }, c.plan.text)]),
    // The material goes with the patient: the receiving site finds it by name and checksum.
    attachmentList(c),
    h('section', { class: 'sign-lines' },
      h('div', {}, t(down ? 'referral.sheet.sign_down' : 'referral.sheet.sign_up'), h('span', { class: 'sign-blank' })),
      h('div', {}, t('referral.sheet.stamp'), h('span', { class: 'sign-blank' })),
      h('div', {}, t('referral.sheet.date'), h('span', { class: 'sign-blank' }))),
    h('footer', { class: 'report-foot muted small' }, t('common.zone_note')));
}
