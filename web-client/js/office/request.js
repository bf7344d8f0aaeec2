// The doctor's two ways to ask for help: a request the centre schedules, and the emergency
// button, which opens a live consultation at once (docs/api.md: an `emergency` is created
// `live`) and takes the doctor straight into its room while the centre assigns specialists.
// A consultation (会诊) names its patient (patient.js): the API keeps the block optional, the
// form does not; a case discussion or teaching round may add one. Files picked on the form
// (attachments.js) go once the consultation exists: the request itself is never held back by
// one, and a refused file is named, to be added on the detail page.
import { ApiError, api, me } from '../api.js';
import { field, form, h, options } from '../dom.js';
import { shanghaiToInstant, t } from '../i18n.js';
import { requestAttachments, tellFailedUploads } from './attachments.js';
import { KINDS, RECORDING, SPECIALTIES, URGENCIES } from './enums.js';
import { go } from './nav.js';
import { patientForm } from './patient.js';
import { wishedProblem } from './wished.js';

export function requestForm() {
  if (me()?.role !== 'doctor') return h('p', { class: 'muted', testid: 'view-error' }, t('request.doctors_only'));
  const kind = h('select', { testid: 'request-kind' }, options('kind', KINDS, 'consultation'));
  const specialty = h('select', { testid: 'request-specialty' }, options('specialty', SPECIALTIES, 'cardiology'));
  const urgency = h('select', { testid: 'request-urgency' }, options('urgency', URGENCIES, 'routine'));
  const recording = h('select', { testid: 'request-recording' }, options('recording', RECORDING, 'off'));
  const summary = h('textarea', { rows: 6, maxlength: 4000, required: true, testid: 'request-summary' });
  const summaryHint = h('small', {}, t('request.summary_hint'));
  const patient = patientForm(kind.value, (used) => {
    // The server asks for the summary only of a request without a patient block.
    summary.required = !used;
    summaryHint.textContent = t(used ? 'request.summary_hint_optional' : 'request.summary_hint');
  });
  kind.onchange = () => patient.setKind(kind.value);
  const from = h('input', { type: 'datetime-local', testid: 'request-wished-from' });
  const to = h('input', { type: 'datetime-local', testid: 'request-wished-to' });
  const warn = h('p', { class: 'warn', hidden: true, testid: 'emergency-warning' }, t('request.emergency_warning'));
  urgency.onchange = () => { warn.hidden = urgency.value !== 'emergency'; };
  const files = requestAttachments();
  return form({ class: 'card', testid: 'request-form' }, [
    h('h1', {}, t('request.new')),
    h('div', { class: 'grid' },
      field('field.kind', kind), field('field.specialty', specialty),
      field('field.urgency', urgency), field('field.recording', recording)),
    warn,
    patient.el,
    field('field.summary', summary, summaryHint),
    h('fieldset', {}, h('legend', {}, t('field.wished')),
      h('div', { class: 'grid' }, field('request.wished_from', from), field('request.wished_to', to)),
      h('small', {}, t('request.wished_hint'))),
    files.el,
    h('div', { class: 'actions' },
      h('a', { href: '#/', class: 'button ghost', testid: 'back' }, t('common.cancel')),
      h('button', { type: 'submit', testid: 'request-submit' }, t('request.submit'))),
  ], async () => {
    /** @type {{ kind: string, specialty: string, urgency: string, recording: string, summary: string, wished?: { from: string, to: string }, patient?: import('./patient.js').Patient }} */
    const body = {
      kind: kind.value, specialty: specialty.value, urgency: urgency.value,
      recording: recording.value, summary: summary.value,
    };
    // Checked here first (wished.js): a time already over, reversed or half given is refused
    // with its reason before anything is sent.
    const problem = wishedProblem(from.value, to.value, Date.now());
    for (const input of [from, to]) {
      if (problem) input.setAttribute('aria-invalid', 'true'); else input.removeAttribute('aria-invalid');
    }
    if (problem) {
      (problem === 'wished_reversed' || problem === 'wished_in_past' ? to : from).focus();
      throw new ApiError(0, problem, 'the preferred time cannot be used');
    }
    if (from.value) body.wished = { from: shanghaiToInstant(from.value), to: shanghaiToInstant(to.value) };
    patient.clearErrors();
    try {
      const p = patient.value();
      if (p) body.patient = p;
      const c = await api('POST', '/v1/consultations', body);
      if (files.files().length) {
        const sent = files.send(c.id).then((uploads) => tellFailedUploads(c.id, uploads));
        // The doctor watches the files go, then sees them on the detail page; an emergency's
        // room cannot wait for them (they go on meanwhile, and a refusal is said there too).
        if (c.status !== 'live') await sent;
      }
      // An emergency is live already: its room is where the doctor is needed.
      go(c.status === 'live' ? `#/c/${c.id}/call` : `#/c/${c.id}`);
    } catch (e) {
      // An error about a patient field (the form's check or the server's details.field
      // "patient.<x>") shows under that field; anything else below the form, as before.
      if (!patient.showError(e)) throw e;
    }
  });
}

/** The emergency button on the doctor's home, with the two things the centre must know. */
export function emergencyPanel() {
  const specialty = h('select', { testid: 'emergency-specialty' }, options('specialty', SPECIALTIES, 'cardiology'));
  const summary = h('textarea', { rows: 3, maxlength: 4000, required: true, testid: 'emergency-summary', placeholder: t('emergency.summary_placeholder') });
  const open = h('button', { type: 'button', class: 'emergency-button', testid: 'emergency-button', 'aria-expanded': 'false' },
    h('span', { class: 'big' }, t('emergency.button')), h('small', {}, t('emergency.button_hint')));
  const f = form({ class: 'emergency-form', hidden: true, testid: 'emergency-form' }, [
    h('p', { class: 'warn' }, t('request.emergency_warning')),
    h('div', { class: 'grid' }, field('field.specialty', specialty)),
    field('emergency.summary', summary),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'danger', testid: 'emergency-submit' }, t('emergency.submit'))),
  ], async () => {
    const c = await api('POST', '/v1/consultations', {
      kind: 'consultation', specialty: specialty.value, urgency: 'emergency', summary: summary.value,
    });
    go(`#/c/${c.id}/call`);
  });
  open.onclick = () => {
    f.hidden = !f.hidden;
    open.setAttribute('aria-expanded', String(!f.hidden));
    if (!f.hidden) summary.focus();
  };
  return h('section', { class: 'card emergency', testid: 'emergency' }, open, f);
}
