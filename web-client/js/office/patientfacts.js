// The patient block's rules and words (docs/api.md, "Patient block"; issue 15): the age as the
// server counts it, a list row's masked line, what the request form sends and what it checks
// before sending. Pure: no DOM and no i18n import (the page passes its words in, as for the
// audit sentences), so that web-client/test/patientfacts.test.mjs runs it under node.

export const SEXES = /** @type {const} */ (['male', 'female', 'unknown']);
/** The clinical question, in the order a doctor writes it: 主诉, 现病史, 初步诊断, 会诊目的. */
export const CLINICAL = /** @type {const} */ (['chief_complaint', 'history', 'diagnosis', 'purpose']);
/** Every field of the block, in the order the form and the detail page show them. */
export const PATIENT_FIELDS = /** @type {const} */ (['name', 'sex', 'birth_date', 'number', ...CLINICAL]);
/** What a block needs whenever it is given (the API's own rules). @type {readonly PatientField[]} */
export const ALWAYS = ['name', 'sex', 'birth_date'];

/** @typedef {typeof PATIENT_FIELDS[number]} PatientField */
/** @typedef {Record<PatientField, string>} PatientValues the form's raw values ('' when empty) */
/**
 * The block as the API takes and returns it.
 * @typedef {{ name: string, sex: string, birth_date: string, number?: string,
 *   chief_complaint?: string, history?: string, diagnosis?: string, purpose?: string }} Patient
 */
/** A list item's patient (api.md, "List"). @typedef {{ masked_name: string, sex: string, age_years: number, age_months: number }} PatientSummary */
/**
 * What the words need from the page.
 * @typedef {Object} Words
 * @property {(key: string, params?: Record<string, string | number>) => string} t a catalogue text
 * @property {(sex: string) => string} sex the sex's label
 */

/**
 * A 'YYYY-MM-DD' date as [year, month, day], or null when it is not a real calendar date.
 * @param {string} s
 * @returns {[number, number, number] | null}
 */
export function parseDate(s) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return null;
  const [y, mo, d] = m.slice(1).map(Number);
  const back = new Date(Date.UTC(y, mo - 1, d));
  // Date.UTC rolls 02-30 over to March: a date that does not come back as written is none.
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) return null;
  return [y, mo, d];
}

/** Today's date in Beijing (UTC+8, no daylight saving), 'YYYY-MM-DD'. @param {number} nowMs */
export function beijingToday(nowMs) {
  return new Date(nowMs + 8 * 3600e3).toISOString().slice(0, 10);
}

/**
 * Completed years, and the months beyond them, from `birth` to `today` (both 'YYYY-MM-DD'),
 * counted as the server counts them (signaling/src/consult/patient.rs age()), so that the form's
 * age and the list's agree. null for a date that is malformed or after today.
 * @param {string} birth @param {string} today
 * @returns {{ years: number, months: number } | null}
 */
export function ageOf(birth, today) {
  const b = parseDate(birth);
  const t = parseDate(today);
  if (!b || !t || birth > today) return null;
  let months = (t[0] - b[0]) * 12 + (t[1] - b[1]);
  if (t[2] < b[2]) months -= 1;
  months = Math.max(0, months);
  return { years: Math.floor(months / 12), months: months % 12 };
}

/**
 * An age as staff write it: years from one year on, months for an infant, "under a month" for
 * a newborn (62岁, 8个月 / 62 y, 8 mo).
 * @param {number} years @param {number} months @param {Words} w
 */
export function ageText(years, months, w) {
  if (years >= 1) return w.t('patient.age_years', { n: years });
  if (months >= 1) return w.t('patient.age_months', { n: months });
  return w.t('patient.age_newborn');
}

/**
 * A list row's patient: masked name, sex and age ("欧**明 · 男 · 67岁"), enough to tell cases
 * apart; the list never has more (api.md, "List").
 * @param {PatientSummary} s @param {Words} w
 */
export function summaryText(s, w) {
  return [s.masked_name, w.sex(s.sex), ageText(s.age_years, s.age_months, w)].filter(Boolean).join(' · ');
}

/**
 * The form's values as the API's block: trimmed, the optional fields left out when empty (the
 * server would store them empty anyway; an absent number is what "none" looks like there).
 * @param {PatientValues} v
 * @returns {Patient}
 */
export function patientBody(v) {
  /** @type {Patient} */
  const p = { name: v.name.trim(), sex: v.sex, birth_date: v.birth_date };
  const number = v.number.trim();
  if (number) p.number = number;
  for (const k of CLINICAL) {
    const text = v[k].trim();
    if (text) p[k] = text;
  }
  return p;
}

/**
 * The first field the form must refuse before sending, with the server's own code for it
 * (text_required) or the form's (choice_required for the sex), or null. `full`: the block of a
 * consultation (会诊), whose clinical question the form asks for whole; otherwise only what the
 * API itself requires of a block. Dates in the future and the number's characters are the
 * server's to judge: its answer names the field as well.
 * @param {PatientValues} v @param {boolean} full
 * @returns {{ code: 'text_required' | 'choice_required', field: string } | null}
 */
export function patientProblem(v, full) {
  const needed = full ? PATIENT_FIELDS.filter((f) => f !== 'number') : ALWAYS;
  for (const f of needed) {
    if (f === 'sex') {
      if (!(/** @type {readonly string[]} */ (SEXES)).includes(v.sex)) return { code: 'choice_required', field: 'patient.sex' };
    } else if (!v[f].trim()) {
      return { code: 'text_required', field: `patient.${f}` };
    }
  }
  return null;
}

/**
 * The block field an API error is about ('birth_date' for details.field "patient.birth_date"),
 * or null when it is about something else.
 * @param {{ details?: { field?: string } } | null | undefined} err
 * @returns {PatientField | null}
 */
export function patientFieldOf(err) {
  const f = /^patient\.(\w+)$/.exec(err?.details?.field ?? '')?.[1];
  return f && (/** @type {readonly string[]} */ (PATIENT_FIELDS)).includes(f) ? /** @type {PatientField} */ (f) : null;
}
