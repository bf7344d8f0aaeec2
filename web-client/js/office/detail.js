// One consultation: its facts, the opinions and the plan, the way into the room, and the
// lifecycle steps the signed-in user may take (accept/reject/reschedule/assign for
// coordinators, start/end for hosts, the opinion for specialists, the plan for the doctor),
// the invitation of further participants (invite.js), guest links and how the room admits
// people (guests.js), operating-room encoders publishing by WHIP (encoders.js). The patient's
// card (patient.js); a signed opinion shows its signature (signature.js), and signing asks for
// the password again (sign.js). The case's files, their uploads and viewers (attachments.js).
// The patient's referrals up and back down (referrals.js).
import { api, me } from '../api.js';
import { field, h, options, showBanner, submitting } from '../dom.js';
import { fmtRange, fmtTime, instantToShanghai, label, shanghaiToInstant, t, toDate } from '../i18n.js';
import { attachmentsSection } from './attachments.js';
import { encodersSection } from './encoders.js';
import { OPEN, RECORDING } from './enums.js';
import { guestLinksSection, roomSettingsSection } from './guests.js';
import { inviteButton } from './invite.js';
import { refresh } from './nav.js';
import { activeSpecialists, nameOf, remember, rememberSites } from './people.js';
import { patientFacts } from './patient.js';
import { recordingsSection } from './recordings.js';
import { referralsSection } from './referrals.js';
import { signDialog } from './sign.js';
import { signatureLine } from './signature.js';

/** @typedef {import('./people.js').Consultation} Consultation */
/** @typedef {import('./people.js').Report} Report */
/** @typedef {import('./people.js').Site} Site */
/** @typedef {import('./people.js').User} User */
/**
 * How a lifecycle step's form reads: its button's style, test id and text, an extra control
 * beside the button, the text to sign (the sign button), a question to confirm first.
 * @typedef {{ danger?: boolean, testid?: string, button?: string, extra?: Node,
 *   signText?: () => string, confirm?: string }} StepOpts
 */

/**
 * The consultation's report (consultation, people, requester site), names remembered.
 * @param {string} id
 * @returns {Promise<Report>}
 */
export async function loadReport(id) {
  /** @type {Report} */
  const report = await api('GET', `/v1/consultations/${encodeURIComponent(id)}/report`);
  remember(report.people);
  if (report.requester_site) rememberSites([report.requester_site]);
  return report;
}

const names = (/** @type {string[] | null | undefined} */ ids) => (ids?.length ? ids.map(nameOf).join('、') : '—');

/** The end of a consultation's slot, or null. @param {{ start: string | null, duration_minutes: number | null }} c */
export function slotEnd(c) {
  return c.start && c.duration_minutes ? new Date(toDate(c.start).getTime() + c.duration_minutes * 60e3) : null;
}

/**
 * [catalogue key, value] pairs describing a consultation, for the detail and the report.
 * @param {Consultation} c @param {Site | null | undefined} site the requester's
 * @returns {Array<[string, string]>}
 */
export function facts(c, site) {
  const end = slotEnd(c);
  return /** @type {Array<[string, string]>} */ ([
    // The readable report number (none on records from before numbers).
    c.number && ['field.number', c.number],
    ['field.kind', label('kind', c.kind)],
    ['field.specialty', label('specialty', c.specialty)],
    ['field.urgency', label('urgency', c.urgency)],
    ['field.recording', label('recording', c.recording)],
    ['field.requester', `${nameOf(c.requester)}${site ? ` · ${site.name}` : ''}`],
    ['field.coordinator', c.coordinator ? nameOf(c.coordinator) : '—'],
    ['field.specialists', names(c.specialists)],
    c.participants?.length && ['field.participants', names(c.participants)],
    c.wished && ['field.wished', fmtRange(c.wished.from, c.wished.to)],
    // A slot's end implies its start (slotEnd()): said again for the type check.
    ['field.start', end && c.start ? `${fmtRange(c.start, end)} (${t('common.minutes', { n: c.duration_minutes })})` : t('list.not_scheduled')],
    c.started_at && ['field.started_at', fmtTime(c.started_at)],
    c.ended_at && ['field.ended_at', fmtTime(c.ended_at)],
    // How long it really ran (the room starts it when the first host comes in).
    c.started_at && c.ended_at && ['field.actual_duration', t('common.minutes', { n: Math.max(0, Math.round((toDate(c.ended_at).getTime() - toDate(c.started_at).getTime()) / 60e3)) })],
    c.reason && ['field.reason', c.reason],
    ['field.created_at', fmtTime(c.created_at)],
  ].filter(Boolean));
}

/** @param {Array<[string, string]>} pairs */
export function factList(pairs) {
  return h('dl', { class: 'facts' }, pairs.map(([k, v]) => [h('dt', {}, t(k)), h('dd', { testid: `fact-${k.slice(6)}` }, v)]));
}

/** @param {Consultation} c */
export function opinionsBlock(c) {
  if (!c.opinions.length && !c.plan) return null;
  return [
    h('h2', {}, t('detail.opinions')),
    c.opinions.length ? c.opinions.map((o) => h('article', { class: 'opinion', testid: 'opinion', 'data-signed': o.signed_at ? 'true' : 'false' },
      h('header', {}, h('strong', {}, nameOf(o.author)), ' · ',
        o.signed_at ? t('detail.signed_at', { time: fmtTime(o.signed_at) }) : t('detail.draft', { time: fmtTime(o.updated_at) })),
      h('p', { class: 'text', testid: 'opinion-body' }, o.text),
      signatureLine(o))) : h('p', { class: 'muted' }, t('detail.no_opinion')),
    c.plan && [h('h2', {}, t('detail.plan')),
      h('p', { class: 'muted small' }, `${nameOf(c.plan.author)} · ${fmtTime(c.plan.recorded_at)}`),
      h('p', { class: 'text', testid: 'plan' }, c.plan.text)],
  ];
}

/**
 * @param {string} id
 * @param {{ form?: string | null }} [opts] `form`: opinion or plan, the form to land on (the
 *   route's ?form=, from the end of a call): app.js scrolls to it and focuses its text
 */
export async function detailView(id, opts = {}) {
  const report = await loadReport(id);
  const c = report.consultation;
  const u = me();
  /** @type {User[]} */
  let specialists = [];
  if (u?.role === 'coordinator' && OPEN.includes(c.status)) {
    specialists = await activeSpecialists().catch((e) => { showBanner(e); return []; });
  }
  const referrals = await referralsSection(c);
  // A teaching session's audience coming in before the lecturer is the usual case: its
  // admission setting stands out, next to the way in; other kinds have it further down.
  const settings = roomSettingsSection(c);
  const teaching = c.kind === 'teaching';
  return h('div', { testid: 'detail', 'data-id': c.id, 'data-status': c.status, 'data-version': String(c.version) },
    h('div', { class: 'toolbar' },
      h('a', { href: '#/', class: 'back', testid: 'back' }, `← ${t('common.back')}`),
      h('span', { class: 'spacer' }),
      inviteButton(c),
      h('a', { href: `#/c/${c.id}/report`, class: 'button ghost', testid: 'open-report' }, t('report.open'))),
    h('h1', {}, label('specialty', c.specialty), ' ',
      h('span', { class: `badge status-${c.status}`, testid: 'detail-status' }, label('status', c.status)),
      c.urgency !== 'routine' && h('span', { class: `badge urgency-${c.urgency}` }, label('urgency', c.urgency))),
    joinSection(c),
    teaching && settings,
    h('section', { class: 'card' },
      factList(facts(c, report.requester_site)),
      c.patient && [h('h2', {}, t('field.patient')), patientFacts(c.patient)],
      // Optional when the patient block carries the clinical question.
      c.summary && [h('h2', {}, t('field.summary')), h('p', { class: 'text', testid: 'summary' }, c.summary)]),
    // The case's material (the CT series, the ECG) right under the case it belongs to.
    attachmentsSection(c),
    (c.opinions.length || c.plan) && h('section', { class: 'card', testid: 'opinions' }, opinionsBlock(c)),
    // What became of the patient after the consultation: up to a hospital, and back.
    referrals,
    guestLinksSection(c),
    // Who else comes into the room: people by guest link, then devices by WHIP.
    encodersSection(c),
    !teaching && settings,
    recordingsSection(c),
    actionsSection(c, specialists, opts.form ?? null));
}

// The pre-call screen (js/call) shows the join window and its errors; here only the way in.
/** @param {Consultation} c */
function joinSection(c) {
  if (!OPEN.includes(c.status) || me()?.role === 'admin') return null;
  const end = slotEnd(c);
  const hint = c.status === 'live' ? t('join.live')
    : c.status === 'scheduled' && c.start ? t('join.opens', { time: fmtTime(c.start) })
      : t('join.not_scheduled');
  return h('section', { class: `card join ${c.status === 'live' ? 'live' : ''}` },
    h('div', { class: 'grow' }, h('h2', {}, t('join.title')), h('p', { class: 'muted', testid: 'join-hint' }, hint),
      end && c.start && c.status !== 'live' && h('p', { class: 'small muted' }, fmtRange(c.start, end))),
    h('a', { class: c.status === 'requested' ? 'button ghost' : 'button', href: `#/c/${c.id}/call`, testid: 'join' }, t('join.button')));
}

/**
 * A small form that posts one lifecycle step and then shows the consultation again.
 * @param {Consultation} c @param {string} action @param {string | null} titleKey
 * @param {Node | Node[] | null} controls @param {(() => object) | null} body @param {StepOpts} [opts]
 */
function stepForm(c, action, titleKey, controls, body, opts = {}) {
  const submit = h('button', { type: 'submit', class: opts.danger ? 'danger' : null, testid: opts.testid || `${action}-submit` }, t(opts.button || `action.${action}`));
  const form = h('form', { class: 'step', testid: `${action}-form` },
    titleKey && h('h3', {}, t(titleKey)), controls, h('div', { class: 'actions' }, opts.extra, submit));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const submitter = /** @type {HTMLElement | null} */ (e.submitter);
    // Signing is final and legally binding: it asks for the password again, in its own
    // dialog (sign.js), which sends the step itself. Only the opinion's form has the sign
    // button, and it gives the text to sign.
    if (submitter?.dataset.sign === 'true' && opts.signText) { signDialog(c, opts.signText, submitter); return; }
    if (opts.confirm && !window.confirm(t(opts.confirm))) return;
    submitting(form, async () => {
      await api('POST', `/v1/consultations/${c.id}/${action}`, body ? body() : {});
      await refresh();
      showBanner(t('action.done'), 'notice');
    });
  });
  return form;
}

/**
 * Specialist checkboxes; the first one ticked leads.
 * @param {string} action @param {User[]} specialists @param {string[]} chosen the ids ticked first
 * @param {string} specialty the consultation's: its specialists come first
 */
export function specialistPicker(action, specialists, chosen, specialty) {
  const sorted = [...specialists].sort((a, b) => Number(b.specialty === specialty) - Number(a.specialty === specialty));
  const boxes = sorted.map((s) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', value: s.id, checked: chosen.includes(s.id), testid: `${action}-specialist`, 'data-username': s.username }),
    `${s.display_name} · ${label('specialty', s.specialty)}`));
  const el = h('fieldset', {}, h('legend', {}, t('field.specialists')),
    boxes.length ? boxes : h('p', { class: 'muted' }, t('schedule.no_specialists')),
    h('small', {}, t('schedule.lead_hint')));
  // The first specialist leads: keep them in the order they were ticked.
  const order = [...chosen];
  el.addEventListener('change', (e) => {
    const box = /** @type {HTMLInputElement} */ (e.target);
    const i = order.indexOf(box.value);
    if (box.checked && i < 0) order.push(box.value);
    if (!box.checked && i >= 0) order.splice(i, 1);
  });
  return { el, value: () => [...order] };
}

/** @param {Consultation} c @param {string} action accept or reschedule @param {User[]} specialists */
function scheduleForm(c, action, specialists) {
  const first = specialists.find((s) => s.specialty === c.specialty);
  const pick = specialistPicker(action, specialists, c.specialists.length ? c.specialists : first ? [first.id] : [], c.specialty);
  const soon = new Date(Math.ceil((Date.now() + 3600e3) / 1800e3) * 1800e3);
  const start = h('input', { type: 'datetime-local', required: true, value: instantToShanghai(c.start ? toDate(c.start) : soon), testid: `${action}-start` });
  const duration = h('input', { type: 'number', min: 10, max: 480, step: 5, required: true, value: String(c.duration_minutes || 30), testid: `${action}-duration` });
  const recording = h('select', { testid: `${action}-recording` }, options('recording', RECORDING, c.recording));
  const controls = [pick.el, h('div', { class: 'grid' },
    field('schedule.start', start, t('schedule.start_hint')),
    field('schedule.duration', duration),
    action === 'accept' && field('field.recording', recording))];
  return stepForm(c, action, `action.${action}.title`, controls, () => {
    /** @type {{ specialists: string[], start: string, duration_minutes: number, recording?: string }} */
    const b = { specialists: pick.value(), start: shanghaiToInstant(start.value), duration_minutes: Number(duration.value) };
    if (action === 'accept') b.recording = recording.value;
    return b;
  });
}

/** @param {Consultation} c @param {string} action */
function reasonForm(c, action) {
  const reason = h('textarea', { rows: 2, maxlength: 1000, required: true, testid: `${action}-reason` });
  return stepForm(c, action, `action.${action}.title`, field('field.reason', reason), () => ({ reason: reason.value }), { danger: true });
}

/** @param {Consultation} c @param {User[]} specialists @param {string | null} land the form to focus (opinion, plan) */
function actionsSection(c, specialists, land) {
  const u = me();
  // Routes are only taken while signed in (app.js): said again for the type check.
  if (!u) return null;
  const coordinator = u.role === 'coordinator';
  const host = c.specialists[0] === u.id || c.coordinator === u.id || (c.urgency === 'emergency' && c.requester === u.id);
  const requester = u.role === 'doctor' && c.requester === u.id;
  const steps = [];
  if (coordinator && c.status === 'requested') {
    steps.push(h('p', { class: 'muted small' }, t('schedule.calendar_hint'), ' ', h('a', { href: '#/' }, t('schedule.to_calendar'))));
    steps.push(scheduleForm(c, 'accept', specialists), reasonForm(c, 'reject'));
  }
  if (coordinator && c.status === 'scheduled') steps.push(scheduleForm(c, 'reschedule', specialists));
  if (coordinator && c.status === 'live') {
    const pick = specialistPicker('assign', specialists.filter((s) => !c.specialists.includes(s.id)), [], c.specialty);
    steps.push(stepForm(c, 'assign', 'action.assign.title', pick.el, () => ({ specialists: pick.value() })));
  }
  if ((coordinator || host) && c.status === 'scheduled') steps.push(stepForm(c, 'start', null, null, null));
  if ((coordinator || host) && c.status === 'live') steps.push(stepForm(c, 'end', null, null, null, { confirm: 'action.end.confirm' }));
  if (coordinator && c.status === 'scheduled') steps.push(stepForm(c, 'no_show', null, null, null, { confirm: 'action.no_show.confirm' }));
  const own = c.opinions.find((o) => o.author === u.id);
  if (u.role === 'specialist' && c.specialists.includes(u.id) && ['live', 'ended'].includes(c.status) && !own?.signed_at) {
    const text = h('textarea', { rows: 8, maxlength: 20000, value: own?.text || '', testid: 'opinion-text', 'data-autofocus': land === 'opinion' || null });
    const sign = h('button', { type: 'submit', 'data-sign': 'true', testid: 'opinion-sign' }, t('action.opinion.sign'));
    steps.push(stepForm(c, 'opinion', 'action.opinion.title', field('field.opinion', text, t('action.opinion.hint')),
      () => ({ text: text.value, sign: false }),
      { button: 'action.opinion.draft', testid: 'opinion-draft', extra: sign, signText: () => text.value }));
  }
  if (requester && c.status === 'ended') {
    const text = h('textarea', { rows: 6, maxlength: 20000, required: true, testid: 'plan-text', 'data-autofocus': land === 'plan' || null });
    const hint = c.opinions.some((o) => o.signed_at) ? null : t('action.plan.needs_opinion');
    steps.push(stepForm(c, 'plan', 'action.plan.title', field('field.plan', text, hint), () => ({ text: text.value })));
  }
  if ((coordinator || requester) && ['requested', 'scheduled'].includes(c.status)) steps.push(reasonForm(c, 'cancel'));
  if (!steps.length) return null;
  return h('section', { class: 'card', testid: 'actions' }, h('h2', {}, t('detail.actions')), steps);
}

