// The patient a consultation is about (docs/api.md, "Patient block"; issue 15), on the office
// screens: its part of the request form, its card on the detail page and the report, and the
// masked line of a list row. Patient data: shown whole only where the server sends it whole
// (detail, report); lists get the masked name, sex and age. The rules are patientfacts.js.
import { ApiError } from '../api.js';
import { errorBox, h, options } from '../dom.js';
import { label, t } from '../i18n.js';
import {
  ALWAYS, CLINICAL, PATIENT_FIELDS, SEXES, ageOf, ageText, beijingToday, patientBody, patientFieldOf, patientProblem, summaryText,
} from './patientfacts.js';

/** @typedef {import('./patientfacts.js').Patient} Patient */
/** @typedef {import('./patientfacts.js').PatientField} PatientField */
/** @typedef {import('./patientfacts.js').PatientSummary} PatientSummary */
/** @typedef {import('./patientfacts.js').PatientValues} PatientValues */

/** The words patientfacts.js needs, from the catalogue. @type {import('./patientfacts.js').Words} */
const words = { t, sex: (s) => label('sex', s) };

/** Kinds whose request must name its patient; the others may (case discussion, teaching). */
const NEEDS_PATIENT = ['consultation'];

/** An age from a date of birth, today in Beijing; '' when the date is not usable. @param {string} birth */
function ageFrom(birth) {
  const a = ageOf(birth, beijingToday(Date.now()));
  return a ? ageText(a.years, a.months, words) : '';
}

/**
 * The request form's patient block. For a consultation (会诊) it is always open and complete;
 * for the other kinds it stays folded behind "add patient" until the doctor wants it.
 * `onChange(used)` says whether a block will be sent (the summary is optional then).
 * @param {string} kind the kind chosen first
 * @param {(used: boolean) => void} onChange
 */
export function patientForm(kind, onChange) {
  /** @type {Record<PatientField, HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>} */
  const controls = {
    name: h('input', { type: 'text', maxlength: 40, autocomplete: 'off', testid: 'patient-name' }),
    sex: h('select', { testid: 'patient-sex' }, h('option', { value: '' }, t('patient.choose_sex')), options('sex', SEXES)),
    birth_date: h('input', { type: 'date', testid: 'patient-birth_date' }),
    number: h('input', { type: 'text', maxlength: 32, autocomplete: 'off', testid: 'patient-number' }),
    chief_complaint: h('textarea', { rows: 2, maxlength: 4000, testid: 'patient-chief_complaint' }),
    history: h('textarea', { rows: 4, maxlength: 4000, testid: 'patient-history' }),
    diagnosis: h('textarea', { rows: 2, maxlength: 4000, testid: 'patient-diagnosis' }),
    purpose: h('textarea', { rows: 2, maxlength: 4000, testid: 'patient-purpose' }),
  };
  // The age next to the date of birth, as the doctor types it: a wrong year shows at once. A
  // date in the future has none; the server's refusal then names the field.
  const age = h('span', { class: 'age muted', 'aria-live': 'polite', testid: 'patient-age' });
  const showAge = () => {
    const text = ageFrom(controls.birth_date.value);
    age.textContent = text ? t('patient.age_label', { age: text }) : '';
  };
  controls.birth_date.addEventListener('input', showAge);
  controls.birth_date.addEventListener('change', showAge);

  /** Each field's label, with its error under the control (aria-describedby ties them). */
  /** @type {Record<string, HTMLElement>} */
  const holders = {};
  /** @param {PatientField} f @param {string | null} [hint] */
  const fieldOf = (f, hint) => {
    const c = controls[f];
    c.id = `patient-${f}`;
    holders[f] = h('label', { class: 'field', testid: `patient-field-${f}` },
      h('span', { class: 'label-text' }, t(`field.patient.${f}`), h('span', { class: 'needed', 'aria-hidden': 'true', hidden: true }, ' *')),
      f === 'birth_date' ? h('span', { class: 'with-age' }, c, age) : c,
      hint && h('small', {}, hint));
    return holders[f];
  };
  const body = h('div', { class: 'patient-body', testid: 'patient-body' },
    h('div', { class: 'grid' }, fieldOf('name'), fieldOf('sex'), fieldOf('birth_date'), fieldOf('number', t('patient.number_hint'))),
    CLINICAL.map((f) => fieldOf(f)));
  const hint = h('p', { class: 'muted small', testid: 'patient-hint' });
  const add = h('button', { type: 'button', class: 'ghost', testid: 'patient-add' }, t('patient.add'));
  const remove = h('button', { type: 'button', class: 'ghost small', testid: 'patient-remove' }, t('patient.remove'));
  const el = h('fieldset', { class: 'patient-form', testid: 'patient-form' },
    h('legend', {}, t('field.patient')), hint, body, h('div', { class: 'actions' }, add, remove));

  let current = kind;
  let opened = false;
  const required = () => NEEDS_PATIENT.includes(current);
  const used = () => required() || opened;
  const draw = () => {
    const need = required();
    body.hidden = !used();
    add.hidden = used();
    remove.hidden = need || !opened;
    hint.textContent = t(need ? 'patient.required_hint' : 'patient.optional_hint');
    el.dataset.required = String(need);
    el.dataset.used = String(used());
    // The stars say what the form will ask for: everything but the number for a consultation,
    // the API's name, sex and date of birth otherwise.
    for (const f of PATIENT_FIELDS) {
      const star = /** @type {HTMLElement} */ (holders[f].querySelector('.needed'));
      star.hidden = f === 'number' || (!need && !ALWAYS.includes(f));
      controls[f].setAttribute('aria-required', String(!star.hidden));
    }
    onChange(used());
  };
  add.addEventListener('click', () => { opened = true; draw(); controls.name.focus(); });
  remove.addEventListener('click', () => { opened = false; clearErrors(); draw(); add.focus(); });

  /** @returns {PatientValues} */
  const values = () => /** @type {PatientValues} */ (Object.fromEntries(PATIENT_FIELDS.map((f) => [f, controls[f].value])));

  function clearErrors() {
    for (const f of PATIENT_FIELDS) {
      controls[f].removeAttribute('aria-invalid');
      controls[f].removeAttribute('aria-describedby');
      holders[f].querySelector(':scope > .error')?.remove();
    }
  }

  /**
   * Shows an error about one of the block's fields under that field, focused, in the user's
   * language; false when the error is about something else (the form shows it as before).
   * @param {unknown} err
   */
  function showError(err) {
    const f = patientFieldOf(/** @type {any} */ (err));
    if (!f || !used()) return false;
    clearErrors();
    const box = errorBox(err, `patient-${f}-error`);
    box.id = `patient-${f}-error`;
    holders[f].append(box);
    controls[f].setAttribute('aria-invalid', 'true');
    controls[f].setAttribute('aria-describedby', box.id);
    controls[f].focus();
    return true;
  }
  // A field's error goes once the doctor changes that field.
  for (const f of PATIENT_FIELDS) {
    controls[f].addEventListener('input', () => {
      if (controls[f].getAttribute('aria-invalid') !== 'true') return;
      controls[f].removeAttribute('aria-invalid');
      holders[f].querySelector(':scope > .error')?.remove();
    });
  }

  draw();
  return {
    el,
    /** @param {string} k the kind now chosen */
    setKind(k) { current = k; draw(); },
    /** Whether a block is sent. */
    used,
    clearErrors,
    showError,
    /**
     * The block to send, or null without one; throws (as the server would answer) when a field
     * the form asks for is empty, before anything is sent.
     * @returns {Patient | null}
     */
    value() {
      if (!used()) return null;
      const v = values();
      const problem = patientProblem(v, required());
      if (problem) throw new ApiError(0, problem.code, `${problem.field} is needed`, { field: problem.field });
      return patientBody(v);
    },
  };
}

/**
 * The patient's card content for the detail page and the report: only what is given. Long
 * texts keep their line breaks. `prefix` makes the test ids (patient-…, report-patient-…).
 * @param {Patient | null | undefined} p @param {string} [prefix]
 */
export function patientFacts(p, prefix = 'patient') {
  if (!p) return null;
  const age = ageFrom(p.birth_date);
  /** @type {Array<[PatientField, string]>} */
  const rows = [
    ['name', p.name],
    ['sex', label('sex', p.sex)],
    ['birth_date', age ? t('patient.birth_with_age', { date: p.birth_date, age }) : p.birth_date],
    ['number', p.number ?? ''],
    ...CLINICAL.map((f) => /** @type {[PatientField, string]} */ ([f, p[f] ?? ''])),
  ];
  return h('dl', { class: 'facts patient-facts', testid: `${prefix}-facts` }, rows.filter(([, v]) => v).map(([f, v]) => [
    h('dt', {}, t(`field.patient.${f}`)),
    h('dd', { class: CLINICAL.includes(/** @type {any} */ (f)) ? 'text' : null, testid: `${prefix}-${f}` }, v),
  ]));
}

/**
 * A list row's patient ("欧**明 · 男 · 67岁"), or null for a consultation without one.
 * @param {{ patient_summary?: PatientSummary | null }} c
 */
export function patientLine(c) {
  const s = c.patient_summary;
  return s ? h('span', { class: 'patient-line', testid: 'row-patient' }, summaryText(s, words)) : null;
}
