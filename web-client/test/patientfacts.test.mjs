// The patient block's rules and words (js/office/patientfacts.js) under plain node, with the
// real catalogues: ages counted as the server counts them, a list row's masked line in both
// languages, what the request form sends and what it refuses before sending.
//   node --test web-client/test/*.test.mjs   (scripts/e2e.sh runs it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  PATIENT_FIELDS, ageOf, ageText, beijingToday, parseDate, patientBody, patientFieldOf, patientProblem, summaryText,
} from '../js/office/patientfacts.js';

const WEB = fileURLToPath(new URL('..', import.meta.url));

/** The words of a language, as patient.js passes them. @param {string} lang @returns {Promise<import('../js/office/patientfacts.js').Words>} */
async function words(lang) {
  /** @type {Record<string, string>} */
  const cat = JSON.parse(await readFile(join(WEB, 'i18n', `${lang}.json`), 'utf8'));
  return {
    t: (key, params = {}) => (cat[key] ?? key).replace(/\{(\w+)\}/g, (m, k) => String(params[k] ?? m)),
    sex: (s) => cat[`sex.${s}`] ?? s,
  };
}

/** @param {Partial<import('../js/office/patientfacts.js').PatientValues>} v @returns {import('../js/office/patientfacts.js').PatientValues} */
const values = (v) => ({
  name: '欧阳小明', sex: 'male', birth_date: '1958-04-02', number: '', chief_complaint: '胸痛 2 小时', history: '高血压 10 年', diagnosis: '急性冠脉综合征？', purpose: '明确诊断', ...v,
});

test('ages: completed years and months, as the server counts them (patient.rs)', () => {
  const today = '2026-12-06';
  // The server's own cases (signaling/src/consult/patient.rs, ages_count_completed_years_and_months).
  assert.deepEqual(ageOf('1960-12-06', today), { years: 66, months: 0 });
  assert.deepEqual(ageOf('1960-12-07', today), { years: 65, months: 11 });
  assert.deepEqual(ageOf('2026-03-20', today), { years: 0, months: 8 });
  assert.deepEqual(ageOf('2026-12-06', today), { years: 0, months: 0 });
  // Born on the 31st: a month is complete on the day of the month it came back to, not before.
  assert.deepEqual(ageOf('2026-01-31', '2026-03-30'), { years: 0, months: 1 });
  assert.deepEqual(ageOf('2024-02-29', '2025-02-28'), { years: 0, months: 11 });
  assert.deepEqual(ageOf('2024-02-29', '2025-03-01'), { years: 1, months: 0 });
  assert.equal(ageOf('2026-12-07', today), null, 'a date of birth in the future has no age');
  for (const bad of ['', '1958-4-2', '1958-02-30', '1958-13-01', '02/04/1958']) assert.equal(ageOf(bad, today), null, bad);
});

test('real calendar dates only', () => {
  assert.deepEqual(parseDate('2024-02-29'), [2024, 2, 29]);
  assert.equal(parseDate('2023-02-29'), null);
  assert.equal(parseDate('2026-04-31'), null);
});

test('today in Beijing: the date turns at midnight UTC+8, not UTC', () => {
  assert.equal(beijingToday(Date.parse('2026-12-06T15:59:59Z')), '2026-12-06');
  assert.equal(beijingToday(Date.parse('2026-12-06T16:00:00Z')), '2026-12-07');
});

test('an age in words: years, months for an infant, a newborn', async () => {
  const zh = await words('zh-CN');
  const en = await words('en');
  assert.equal(ageText(62, 3, zh), '62岁');
  assert.equal(ageText(62, 3, en), '62 y');
  assert.equal(ageText(1, 0, zh), '1岁');
  assert.equal(ageText(0, 8, zh), '8个月');
  assert.equal(ageText(0, 8, en), '8 mo');
  assert.equal(ageText(0, 0, zh), '未满月');
  assert.equal(ageText(0, 0, en), '< 1 mo');
});

test('a list row\'s patient: masked name, sex, age', async () => {
  const zh = await words('zh-CN');
  const en = await words('en');
  const s = { masked_name: '欧**明', sex: 'male', age_years: 68, age_months: 8 };
  assert.equal(summaryText(s, zh), '欧**明 · 男 · 68岁');
  assert.equal(summaryText(s, en), '欧**明 · Male · 68 y');
  assert.equal(summaryText({ masked_name: '张*', sex: 'female', age_years: 0, age_months: 8 }, zh), '张* · 女 · 8个月');
  assert.equal(summaryText({ masked_name: 'L*', sex: 'unknown', age_years: 0, age_months: 8 }, en), 'L* · Unknown · 8 mo');
});

test('the block sent: trimmed, empty optional fields left out', () => {
  assert.deepEqual(patientBody(values({ name: ' 欧阳小明 ', number: ' ZY-20260042 ', history: '  ', purpose: '' })), {
    name: '欧阳小明', sex: 'male', birth_date: '1958-04-02', number: 'ZY-20260042',
    chief_complaint: '胸痛 2 小时', diagnosis: '急性冠脉综合征？',
  });
});

test('a consultation\'s block is asked for whole (but the number); otherwise name, sex, date of birth', () => {
  assert.equal(patientProblem(values({}), true), null);
  assert.equal(patientProblem(values({ number: '' }), true), null, 'the number stays optional');
  assert.deepEqual(patientProblem(values({ name: '  ' }), true), { code: 'text_required', field: 'patient.name' });
  assert.deepEqual(patientProblem(values({ sex: '' }), true), { code: 'choice_required', field: 'patient.sex' });
  assert.deepEqual(patientProblem(values({ birth_date: '' }), true), { code: 'text_required', field: 'patient.birth_date' });
  assert.deepEqual(patientProblem(values({ history: '' }), true), { code: 'text_required', field: 'patient.history' });
  assert.deepEqual(patientProblem(values({ purpose: '\n' }), true), { code: 'text_required', field: 'patient.purpose' });
  // A case discussion's block: the API's own rules only.
  assert.equal(patientProblem(values({ chief_complaint: '', history: '', diagnosis: '', purpose: '' }), false), null);
  assert.deepEqual(patientProblem(values({ name: '' }), false), { code: 'text_required', field: 'patient.name' });
  assert.deepEqual(patientProblem(values({ sex: 'x' }), false), { code: 'choice_required', field: 'patient.sex' });
});

test('an error about the block names its field; others are not the block\'s', () => {
  assert.equal(patientFieldOf({ details: { field: 'patient.birth_date' } }), 'birth_date');
  assert.equal(patientFieldOf({ details: { field: 'patient.number' } }), 'number');
  assert.equal(patientFieldOf({ details: { field: 'summary' } }), null);
  assert.equal(patientFieldOf({ details: { field: 'patient.nonsense' } }), null);
  assert.equal(patientFieldOf({}), null);
  assert.equal(patientFieldOf(null), null);
});

test('every field has its label in both catalogues (errors name it: "请填写出生日期。")', async () => {
  for (const lang of ['zh-CN', 'en']) {
    /** @type {Record<string, string>} */
    const cat = JSON.parse(await readFile(join(WEB, 'i18n', `${lang}.json`), 'utf8'));
    const missing = [...PATIENT_FIELDS.map((f) => `field.patient.${f}`), 'sex.male', 'sex.female', 'sex.unknown', 'error.choice_required',
      'error.birth_date_in_future', 'error.birth_date_too_early', 'error.patient_number_invalid'].filter((k) => !cat[k]);
    assert.deepEqual(missing, [], lang);
  }
});
