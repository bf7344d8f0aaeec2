// The printable consultation report (#/c/<id>/report): the consultation, who took part, the
// times, the patient, the opinions with their signatures and the plan. The print stylesheet
// hides everything else. "Verify signatures" asks the server whether each signature still
// holds over what the report shows (signature.js).
import { h } from '../dom.js';
import { fmtTime, label, t } from '../i18n.js';
import { factList, facts, loadReport } from './detail.js';
import { patientFacts } from './patient.js';
import { shortSha, sizeText } from './attachfacts.js';
import { nameOf } from './people.js';
import { signatureLine, verifyControls } from './signature.js';

/** @typedef {import('./people.js').Consultation} Consultation */

/** @param {string} id */
export async function reportView(id) {
  /** @type {import('./people.js').Report} */
  const report = await loadReport(id);
  const c = report.consultation;
  const signed = c.opinions.filter((o) => o.signed_at);
  const drafts = c.opinions.filter((o) => !o.signed_at);
  // The verdicts go on the opinions shown: the section the result is put in.
  const verify = verifyControls(c, () => verify.result.parentElement);
  return h('article', { class: 'report', testid: 'report', 'data-id': c.id, 'data-status': c.status },
    h('div', { class: 'toolbar no-print' },
      h('a', { href: `#/c/${c.id}`, testid: 'back' }, `← ${t('report.back')}`),
      h('span', { class: 'spacer' }),
      signed.length > 0 && verify.button,
      h('button', { type: 'button', testid: 'print', onclick: () => window.print() }, t('report.print'))),
    h('header', { class: 'report-head' },
      h('h1', {}, t('report.title')),
      // The readable number (HZ-2026-000123); the id on records from before numbers.
      h('p', { class: 'muted', testid: 'report-number' }, `${report.requester_site ? `${report.requester_site.name} · ` : ''}${t('report.number', { id: c.number || c.id })}`),
      h('p', {}, h('span', { class: `badge status-${c.status}`, testid: 'report-status' }, label('status', c.status)), ' ',
        t('report.generated', { time: fmtTime(new Date()) }))),
    h('section', {}, h('h2', {}, t('report.consultation')), factList(facts(c, report.requester_site))),
    h('section', {}, h('h2', {}, t('report.people')),
      h('table', { class: 'people', testid: 'report-people' },
        h('thead', {}, h('tr', {}, h('th', {}, t('admin.display_name')), h('th', {}, t('admin.role')), h('th', {}, t('report.part')))),
        h('tbody', {}, report.people.map((p) => h('tr', {},
          h('td', {}, p.display_name), h('td', {}, label('role', p.role)), h('td', {}, partOf(c, p.id))))))),
    c.patient && h('section', { testid: 'report-patient' }, h('h2', {}, t('field.patient')), patientFacts(c.patient, 'report-patient')),
    c.summary && h('section', {}, h('h2', {}, t('field.summary')), h('p', { class: 'text', testid: 'report-summary' }, c.summary)),
    h('section', { testid: 'report-opinions' }, h('h2', {}, t('detail.opinions')),
      signed.length ? signed.map((o) => h('div', { class: 'opinion', testid: 'report-opinion', 'data-author': o.author },
        h('p', { class: 'muted small' }, `${nameOf(o.author)} · ${t('detail.signed_at', { time: fmtTime(o.signed_at) })}`),
        h('p', { class: 'text' }, o.text),
        signatureLine(o, 'report-signature'))) : h('p', { class: 'muted' }, t('report.no_signed')),
      drafts.length > 0 && h('p', { class: 'muted small' }, t('report.drafts', { n: drafts.length })),
      verify.result),
    attachmentList(c),
    h('section', { testid: 'report-plan' }, h('h2', {}, t('detail.plan')),
      c.plan ? [h('p', { class: 'muted small' }, `${nameOf(c.plan.author)} · ${fmtTime(c.plan.recorded_at)}`), h('p', { class: 'text', testid: 'report-plan-text' }, c.plan.text)]
        : h('p', { class: 'muted' }, t('report.no_plan'))),
    h('footer', { class: 'report-foot muted small' }, t('common.zone_note')));
}

/**
 * The material the opinions were given on, as printed: name, kind, size, uploader and time,
 * and the SHA-256 in full, so that a file can later be shown to be the one that was seen.
 * @param {Consultation} c
 */
export function attachmentList(c) {
  /** @type {import('./attachfacts.js').Attachment[]} */
  const files = /** @type {{ attachments?: import('./attachfacts.js').Attachment[] }} */ (c).attachments ?? [];
  if (!files.length) return null;
  return h('section', { testid: 'report-attachments' }, h('h2', {}, t('attachments.title')),
    h('table', { class: 'people' },
      h('thead', {}, h('tr', {},
        h('th', {}, t('attachments.name')), h('th', {}, t('attachments.size')), h('th', {}, t('attachments.uploaded')), h('th', {}, t('attachments.sha256')))),
      h('tbody', {}, files.map((a) => h('tr', { testid: 'report-attachment' },
        h('td', {}, a.name, ' ', h('span', { class: 'muted small' }, label('attachment_kind', a.kind))),
        h('td', {}, sizeText(a.size)),
        h('td', {}, `${nameOf(a.uploaded_by)} · ${fmtTime(a.uploaded_at)}`),
        h('td', { class: 'mono small', title: a.sha256 }, h('span', { class: 'no-print' }, shortSha(a.sha256)), h('span', { class: 'print-only' }, a.sha256)))))));
}

/** @param {Consultation} c @param {string} id */
function partOf(c, id) {
  const parts = [];
  if (c.requester === id) parts.push(t('field.requester'));
  if (c.coordinator === id) parts.push(t('field.coordinator'));
  if (c.specialists[0] === id) parts.push(t('report.lead'));
  else if (c.specialists.includes(id)) parts.push(t('report.specialist'));
  if (c.participants.includes(id)) parts.push(t('field.participants'));
  return parts.join('、');
}
