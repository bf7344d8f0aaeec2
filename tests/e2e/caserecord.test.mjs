// The case record in the real web client (issue 15), in Chinese and in English. Each language
// walks one consultation: a doctor opens the request form, where a consultation (会诊) asks for
// its patient (a case discussion only offers "add patient"), fills the block with a date of
// birth in the future and sees the server's refusal under that field, in the page's language;
// with the date put right (the form shows the age beside it) and no case summary, the request
// goes. The detail page shows the report number and the patient block; the doctor's list shows
// the number and the patient masked (name, sex, age: years, or months for an infant); the
// search by 门诊号/住院号 (typed in other letter case) finds it, and a number nobody has finds
// nothing and says so. Held and ended through the API, the consultation gets the specialist's
// opinion: the sign button asks for the password in a dialog that says signing is final and
// legally binding; no password and a wrong one are refused in the dialog (the opinion stays a
// draft), the right one signs it, and the opinion shows signer, time and fingerprint. The report
// shows number, patient block and signature, and "verify signatures" says each is valid. A case
// discussion without a patient still goes, its row with a number and no patient.
//
//   node tests/e2e/caserecord.test.mjs     (prints a JSON summary; exit code 1 on failure)
//
// Screenshots: tests/e2e/artifacts/screens/caserecord-*.png.

import { join } from 'node:path';
import {
  SCREENS, apiClient, launchBrowser, newPage, note, pageErrors, runTest, shot, signIn, startServer, until,
} from './lib/harness.mjs';
import { fillPatient, goto, openDetail, openReport, requestConsultation, routeId, signWithPassword } from './lib/office.mjs';
import { ageOf, beijingToday } from '../../web-client/js/office/patientfacts.js';

/** Waits for `locator`'s text to match `re`; returns the text. */
async function textOf(locator, re, what) {
  return until(what, async () => {
    const text = await locator.innerText().catch(() => '');
    return re.test(text) ? text : false;
  }, 15000, 100);
}

/** A date `months` months and `days` days before today (UTC), 'YYYY-MM-DD'. */
function before(months, days) {
  const d = new Date();
  d.setUTCDate(1); // no month overflow on the 31st
  d.setUTCMonth(d.getUTCMonth() - months);
  const last = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
  d.setUTCDate(Math.min(new Date().getUTCDate(), last));
  d.setUTCDate(d.getUTCDate() - days);
  return d.toISOString().slice(0, 10);
}

/** What each language walk enters and expects to read. */
const WALKS = [
  {
    lang: 'zh-CN',
    patient: {
      name: '欧阳小明', sex: 'male', birth_date: '1958-04-02', number: `ZY-${Date.now().toString(36).toUpperCase()}`,
      chief_complaint: '反复胸闷 3 月，加重 2 天。', history: '3 月前活动后胸闷，休息可缓解；高血压 10 年。', diagnosis: '冠心病，不稳定型心绞痛？', purpose: '明确诊断，评估是否需要冠脉介入治疗。',
    },
    masked: '欧**明', sex: '男', ageWords: (/** @type {{ years: number, months: number }} */ a) => `${a.years}岁`,
    words: {
      required: /远程会诊须填写患者信息/, future: /出生日期不能晚于今天/, age: /年龄：\d+岁/, noMatch: /没有门诊号\/住院号为 .+ 的会诊/,
      explain: /法律效力/, wrong: /^密码错误，意见未签署。$/, needed: /需要再次输入您的密码/, signature: /^电子签名：(.+) · (.+) · 指纹 ([0-9a-f ]+)$/,
      valid: /签名有效：1 份已签署的意见/, verdict: '签名有效', number: /编号 HZ-\d{4}-\d{6}/,
    },
    opinion: '考虑不稳定型心绞痛，建议冠脉造影，必要时介入治疗。',
  },
  {
    lang: 'en',
    // An infant: the list gives months.
    patient: {
      name: '司马光明', sex: 'female', birth_date: before(8, 5), number: `mz/${Date.now().toString(36)}.2`,
      chief_complaint: 'Fever for 3 days.', history: 'Fever up to 39.5 °C, poor feeding.', diagnosis: 'Suspected bacterial infection.', purpose: 'Antibiotic choice.',
    },
    masked: '司**明', sex: 'Female', ageWords: (/** @type {{ years: number, months: number }} */ a) => `${a.months} mo`,
    words: {
      required: /A consultation needs its patient/, future: /date of birth lies in the future/, age: /Age: \d+ mo/, noMatch: /No consultation for patient no\. /,
      explain: /legally binding/, wrong: /^Wrong password: the opinion was not signed\.$/, needed: /asks for your password again/,
      signature: /^Electronic signature: (.+) · (.+) · fingerprint ([0-9a-f ]+)$/, valid: /^Valid: every signed opinion \(1\) is unchanged/, verdict: 'Valid signature', number: /No\. HZ-\d{4}-\d{6}/,
    },
    opinion: 'Likely early-onset sepsis; start ampicillin and gentamicin after blood cultures.',
  },
];

await runTest('caserecord', async (s) => {
  const server = await s.step('start the server', () => startServer());
  const { origin } = server;
  const api = apiClient(origin);
  const tok = { coordinator: await api.login('coordinator'), doctor: await api.login('doctor-east') };
  const cardiologist = await api.user(tok.coordinator, 'cardiologist');
  const browser = await launchBrowser();
  const pages = [];

  for (const w of WALKS) {
    const L = w.lang === 'zh-CN' ? 'zh' : 'en';
    const checks = s.checks[L] = {};
    const doctor = await newPage(browser, { name: `caserecord-doctor-${L}`, lang: w.lang });
    const specialist = await newPage(browser, { name: `caserecord-specialist-${L}`, lang: w.lang });
    pages.push(doctor, specialist);
    let id;
    let number;

    await s.step(`${L}: the request form asks for the patient, refuses a birth date in the future at its field`, async () => {
      await signIn(doctor, origin, 'doctor-east');
      await goto(doctor, '#/new');
      const block = doctor.getByTestId('patient-form');
      await block.waitFor();
      if ((await block.getAttribute('data-required')) !== 'true' || !(await doctor.getByTestId('patient-body').isVisible())) throw new Error('a consultation does not ask for its patient');
      await textOf(doctor.getByTestId('patient-hint'), w.words.required, 'the hint that a consultation needs its patient');
      if (await doctor.getByTestId('patient-add').isVisible()) throw new Error('a consultation offers to leave the patient out');
      // A case discussion: folded behind "add patient", which opens it; back to a consultation.
      await doctor.getByTestId('request-kind').selectOption('case_discussion');
      if (await doctor.getByTestId('patient-body').isVisible()) throw new Error('a case discussion shows the patient block unasked');
      await doctor.getByTestId('patient-add').click();
      await doctor.getByTestId('patient-body').waitFor();
      await doctor.getByTestId('patient-remove').click();
      await doctor.getByTestId('patient-body').waitFor({ state: 'hidden' });
      await doctor.getByTestId('request-kind').selectOption('consultation');
      await doctor.getByTestId('patient-body').waitFor();

      const future = `${new Date().getUTCFullYear() + 1}-01-15`;
      await fillPatient(doctor, { ...w.patient, birth_date: future });
      await doctor.getByTestId('request-summary').fill('');
      await shot(doctor, `caserecord-request-form-${L}`);
      await doctor.getByTestId('request-submit').click();
      const holder = doctor.getByTestId('patient-field-birth_date');
      const err = holder.getByTestId('patient-birth_date-error');
      const text = await textOf(err, w.words.future, 'the birth date refused at its field');
      if ((await err.getAttribute('data-code')) !== 'birth_date_in_future') throw new Error(`refused as ${await err.getAttribute('data-code')}`);
      if ((await doctor.getByTestId('patient-birth_date').getAttribute('aria-invalid')) !== 'true') throw new Error('the date of birth is not marked invalid');
      if (await doctor.getByTestId('request-error').count()) throw new Error('the field\'s error is shown below the form too');
      const focused = await doctor.evaluate(() => /** @type {HTMLElement | null} */ (document.activeElement)?.dataset.testid);
      if (focused !== 'patient-birth_date') throw new Error(`the refused field is not focused (${focused})`);
      if (new URL(doctor.url()).hash !== '#/new') throw new Error('the form should stay');
      await shot(doctor, `caserecord-request-birth-error-${L}`);
      checks.birthRefused = text;

      await doctor.getByTestId('patient-birth_date').fill(w.patient.birth_date);
      await until('the error to go once the date is changed', async () => (await err.count()) === 0);
      const age = await textOf(doctor.getByTestId('patient-age'), w.words.age, 'the age beside the date of birth');
      const want = ageOf(w.patient.birth_date, beijingToday(Date.now()));
      if (!age.includes(w.ageWords(/** @type {any} */ (want)))) throw new Error(`the form's age reads "${age}", not ${w.ageWords(/** @type {any} */ (want))}`);
      checks.formAge = age;
      await doctor.getByTestId('request-submit').click();
      id = await until('the request to be created', async () => routeId(doctor), 15000, 100);
    });

    await s.step(`${L}: the detail page shows the number and the patient`, async () => {
      const c = await api.call(tok.doctor, 'GET', `/v1/consultations/${id}`);
      number = c.number;
      if (!/^HZ-\d{4}-\d{6}$/.test(number ?? '')) throw new Error(`no report number: ${number}`);
      for (const [k, v] of Object.entries(w.patient)) if (c.patient?.[k] !== v) throw new Error(`patient.${k} was stored as ${c.patient?.[k]}, not ${v}`);
      if (c.summary !== '') throw new Error('the summary should be empty');
      const detail = await openDetail(doctor, id);
      await textOf(detail.getByTestId('fact-number'), new RegExp(`^${number}$`), 'the number on the detail page');
      for (const k of ['name', 'number', 'chief_complaint', 'history', 'diagnosis', 'purpose']) {
        const shown = await detail.getByTestId(`patient-${k}`).innerText();
        if (shown !== w.patient[k]) throw new Error(`the detail page shows patient ${k} "${shown}"`);
      }
      const birth = await detail.getByTestId('patient-birth_date').innerText();
      if (!birth.startsWith(w.patient.birth_date)) throw new Error(`the date of birth reads "${birth}"`);
      await textOf(detail.getByTestId('patient-sex'), new RegExp(`^${w.sex}$`), 'the sex in words');
      if (await detail.getByTestId('summary').count()) throw new Error('an empty summary is shown');
      await shot(doctor, `caserecord-detail-${L}`);
      checks.number = number;
      checks.detailBirth = birth;
    });

    await s.step(`${L}: the list shows the number and the masked patient; the search by number finds it`, async () => {
      const listed = (await api.call(tok.doctor, 'GET', '/v1/consultations?limit=200')).items.find((x) => x.id === id);
      const a = listed?.patient_summary;
      if (!a || a.masked_name !== w.masked) throw new Error(`the list item's patient: ${JSON.stringify(a)}`);
      const want = `${w.masked} · ${w.sex} · ${w.ageWords({ years: a.age_years, months: a.age_months })}`;
      await goto(doctor, '#/');
      const row = doctor.locator(`[data-testid="consultation-item"][data-id="${id}"]`);
      await row.waitFor();
      const rowNumber = await row.getByTestId('row-number').innerText();
      const rowPatient = await row.getByTestId('row-patient').innerText();
      if (rowNumber !== number) throw new Error(`the row's number reads "${rowNumber}"`);
      if (rowPatient !== want) throw new Error(`the row's patient reads "${rowPatient}", not "${want}"`);
      if ((await row.innerText()).includes(w.patient.name)) throw new Error('the list shows the full name');
      await row.screenshot({ path: join(SCREENS, `caserecord-list-row-${L}.png`) });
      await shot(doctor, `caserecord-list-${L}`);
      checks.row = `${rowNumber} · ${rowPatient}`;

      // The number as typed in another letter case: the server ignores it.
      const typed = w.patient.number === w.patient.number.toLowerCase() ? w.patient.number.toUpperCase() : w.patient.number.toLowerCase();
      await doctor.getByTestId('patient-number-search').fill(typed);
      const [req] = await Promise.all([
        doctor.waitForRequest((r) => r.url().includes('patient_number=')),
        doctor.getByTestId('patient-number-submit').click(),
      ]);
      if (new URL(req.url()).searchParams.get('patient_number') !== typed) throw new Error(`searched for ${req.url()}`);
      await doctor.getByTestId('patient-number-active').waitFor();
      const found = await until('the search to list the one consultation', async () => {
        const ids = await doctor.getByTestId('consultation-item').evaluateAll((els) => els.map((e) => e.getAttribute('data-id')));
        return ids.length === 1 && ids[0] === id ? ids : null;
      });
      await shot(doctor, `caserecord-search-${L}`);
      await doctor.getByTestId('patient-number-search').fill('NO-SUCH-1');
      await doctor.getByTestId('patient-number-submit').click();
      const none = await textOf(doctor.getByTestId('consultation-list-empty'), w.words.noMatch, 'the empty search said');
      await doctor.getByTestId('patient-number-clear').click();
      await doctor.getByTestId('patient-number-active').waitFor({ state: 'hidden' });
      await doctor.locator(`[data-testid="consultation-item"][data-id="${id}"]`).waitFor();
      checks.search = { typed, found: found.length, none };
    });

    await s.step(`${L}: signing asks for the password; a wrong one is refused, the right one signs`, async () => {
      await api.call(tok.coordinator, 'POST', `/v1/consultations/${id}/accept`, {
        specialists: [cardiologist.id], start: new Date(Date.now() + 60e3).toISOString(), duration_minutes: 30,
      });
      await api.call(tok.coordinator, 'POST', `/v1/consultations/${id}/start`, {});
      await api.call(tok.coordinator, 'POST', `/v1/consultations/${id}/end`, {});
      await signIn(specialist, origin, 'cardiologist');
      await openDetail(specialist, id);
      await specialist.getByTestId('opinion-text').fill(w.opinion);
      await specialist.getByTestId('opinion-sign').click();
      const dialog = specialist.getByTestId('sign-dialog');
      await dialog.waitFor();
      const password = specialist.getByTestId('sign-password');
      if ((await password.getAttribute('type')) !== 'password' || (await password.getAttribute('autocomplete')) !== 'current-password') {
        throw new Error('the password field is not a current-password field');
      }
      const focused = await specialist.evaluate(() => /** @type {HTMLElement | null} */ (document.activeElement)?.dataset.testid);
      if (focused !== 'sign-password') throw new Error(`the dialog opens with ${focused} focused`);
      const explain = await textOf(dialog.getByTestId('sign-explain'), w.words.explain, 'the dialog saying signing is binding');
      await shot(specialist, `caserecord-sign-dialog-${L}`);
      /** Submits `pw` and returns the dialog's error: [code, text]. @param {string} pw */
      const refused = async (pw) => {
        await password.fill(pw);
        await specialist.getByTestId('sign-submit').click();
        const err = dialog.getByTestId('sign-error');
        await err.waitFor();
        return [await err.getAttribute('data-code'), await err.innerText()];
      };
      const [noneCode, noneText] = await refused('');
      if (noneCode !== 'password_required' || !w.words.needed.test(noneText)) throw new Error(`no password: ${noneCode} "${noneText}"`);
      const [wrongCode, wrongText] = await refused('not-my-password');
      if (wrongCode !== 'invalid_credentials' || !w.words.wrong.test(wrongText)) throw new Error(`a wrong password: ${wrongCode} "${wrongText}"`);
      if ((await password.inputValue()) !== '') throw new Error('the wrong password is left in the field');
      await shot(specialist, `caserecord-sign-wrong-${L}`);
      const still = await api.call(tok.coordinator, 'GET', `/v1/consultations/${id}`);
      if (still.opinions.some((o) => o.signed_at)) throw new Error('a wrong password signed the opinion');
      await signWithPassword(specialist);
      const mine = specialist.getByTestId('opinion').filter({ hasText: w.opinion.slice(0, 30) });
      await until('the opinion to show signed', async () => (await mine.getAttribute('data-signed')) === 'true');
      const c = await api.call(tok.coordinator, 'GET', `/v1/consultations/${id}`);
      const sig = c.opinions[0]?.signature;
      if (!sig?.fingerprint) throw new Error(`the opinion has no signature: ${JSON.stringify(c.opinions[0])}`);
      const line = mine.getByTestId('opinion-signature');
      const text = await line.innerText();
      const m = w.words.signature.exec(text);
      if (!m || m[1] !== sig.signer_name || m[3].replaceAll(' ', '') !== sig.fingerprint) throw new Error(`the signature reads "${text}" (${sig.signer_name}, ${sig.fingerprint})`);
      if ((await line.getAttribute('data-fingerprint')) !== sig.fingerprint) throw new Error('the signature line carries another fingerprint');
      if (await specialist.getByTestId('opinion-text').count()) throw new Error('a signed opinion can still be edited');
      await shot(specialist, `caserecord-signed-${L}`);
      checks.sign = { explain, noPassword: noneText, wrong: wrongText, signature: text };
    });

    await s.step(`${L}: the report shows number, patient and signature; the signatures verify`, async () => {
      const report = await openReport(doctor, id);
      const head = await report.locator.getByTestId('report-number').innerText();
      if (!w.words.number.test(head) || !head.includes(number)) throw new Error(`the report's number reads "${head}"`);
      for (const k of ['name', 'number', 'chief_complaint', 'history', 'diagnosis', 'purpose']) {
        const shown = await report.locator.getByTestId(`report-patient-${k}`).innerText();
        if (shown !== w.patient[k]) throw new Error(`the report shows patient ${k} "${shown}"`);
      }
      const c = await api.call(tok.doctor, 'GET', `/v1/consultations/${id}`);
      const sig = report.locator.getByTestId('report-signature');
      if ((await sig.getAttribute('data-fingerprint')) !== c.opinions[0].signature.fingerprint) throw new Error('the report shows another fingerprint');
      const sigText = await sig.innerText();
      if (!w.words.signature.test(sigText)) throw new Error(`the report's signature reads "${sigText}"`);
      await doctor.getByTestId('verify').click();
      const result = doctor.getByTestId('verify-result');
      const headline = await textOf(result.getByTestId('verify-headline'), w.words.valid, 'the signatures said valid');
      if ((await result.getAttribute('data-outcome')) !== 'valid') throw new Error(`verified as ${await result.getAttribute('data-outcome')}`);
      const verdicts = await result.getByTestId('verify-opinion').evaluateAll((els) => els.map((e) => e.getAttribute('data-verdict')));
      if (verdicts.join() !== 'valid') throw new Error(`the verdicts: ${verdicts}`);
      const onOpinion = await report.locator.getByTestId('report-opinion-verdict').innerText();
      if (onOpinion !== w.words.verdict) throw new Error(`the opinion's verdict reads "${onOpinion}"`);
      await shot(doctor, `caserecord-report-${L}`);
      checks.report = { number: head, signature: sigText, verified: headline, verdict: onOpinion };
    });
  }

  await s.step('a case discussion without a patient still goes; its row has a number and no patient', async () => {
    const doctor = pages[2];
    const id = await requestConsultation(doctor, { kind: 'case_discussion', specialty: 'neurology', summary: 'Teaching case: recurrent headaches.' });
    const c = await api.call(tok.doctor, 'GET', `/v1/consultations/${id}`);
    if (c.patient) throw new Error('a patient was sent unasked');
    await goto(doctor, '#/');
    const row = doctor.locator(`[data-testid="consultation-item"][data-id="${id}"]`);
    await row.waitFor();
    if ((await row.getByTestId('row-number').innerText()) !== c.number) throw new Error('the row lacks the number');
    if (await row.getByTestId('row-patient').count()) throw new Error('a row without a patient shows one');
  });

  await s.step('no uncaught errors on the pages', async () => {
    const errors = pages.flatMap((p) => pageErrors(p));
    if (errors.length) throw new Error(`uncaught page errors: ${errors.join(' | ')}`);
  });
  note('case record walk done');
});
