// Two-way referral (双向转诊) in the real web client, in Chinese and in English. Each language
// walks one consultation with a patient, requested, accepted, held and ended through the API,
// with a signed opinion. The coordinator (city hospital) waits on the 转诊 page's 转入 tab;
// the county doctor refers the patient up from the consultation's page (receiving site,
// department, urgency, reason), and the coordinator's list shows the row without a reload
// (the pushed change): report number, masked patient, direction, sites, status. The
// coordinator opens it; an empty refusal is refused by the server in the page's language;
// they accept with a date, record the admission, and the discharge with instructions, which
// makes the referral back down. The doctor, waiting on their own 转入 tab, sees the down
// referral arrive, opens it and receives the patient back; their 转出 tab shows the up
// referral discharged, and its status filter narrows the list. The printable form (转诊单)
// shows number, patient, sites, department, reason, planned date and the signed opinion,
// prints through window.print() with the page's controls hidden; the down referral's form
// shows the instructions.
//
//   node tests/e2e/referral.test.mjs     (prints a JSON summary; exit code 1 on failure)
//
// Screenshots: tests/e2e/artifacts/screens/referral-*.png.

import {
  DEMO_PASSWORD, apiClient, launchBrowser, newPage, note, pageErrors, runTest, shot, signIn, startServer, until,
} from './lib/harness.mjs';
import { goto, openDetail } from './lib/office.mjs';
import { pdf } from './lib/files.mjs';

/** Waits for `locator`'s text to match `re`; returns the text. */
async function textOf(locator, re, what) {
  return until(what, async () => {
    const text = await locator.innerText().catch(() => '');
    return re.test(text) ? text : false;
  }, 15000, 100);
}

/** Throws with the text of a visible error (test id ending in -error) in `scope`, if any. */
async function failIfError(scope, what) {
  const err = scope.locator('[data-testid$="-error"]');
  if (await err.count() && await err.first().isVisible()) {
    throw new Error(`${what}: ${await err.first().getAttribute('data-code')}: ${await err.first().innerText()}`);
  }
}

/** Waits until the page's push channel is live (<html data-events="live">): changes after it reach the page. */
async function eventsLive(page) {
  await until('the page\'s events stream to be live', async () => (await page.evaluate(() => document.documentElement.dataset.events)) === 'live', 15000, 50);
}

/**
 * The referral `rid` on the consultation page, once it shows `status`; returns its locator.
 * Throws with the refusal shown in `form` (a step's form test id) meanwhile, or in any of the
 * referrals' forms without one.
 */
async function referralShows(page, rid, status, form = null) {
  const item = page.locator(`[data-testid="referral"][data-id="${rid}"]`);
  const scope = form ? item.getByTestId(form) : page.getByTestId('referrals');
  await until(`referral ${rid} to show ${status}`, async () => {
    if ((await item.getAttribute('data-status').catch(() => null)) === status) return true;
    await failIfError(scope, `waiting for ${status}`);
    return false;
  }, 15000, 100);
  return item;
}

/** A day `days` from now in Beijing, 'YYYY-MM-DD'. */
const beijingDay = (days) => new Date(Date.now() + 8 * 3600e3 + days * 86400e3).toISOString().slice(0, 10);

const CITY = '市第一人民医院 City No.1 Hospital';
const EAST = '东县人民医院 East County Hospital';

/** What each language walk enters and expects to read. */
const WALKS = [
  {
    lang: 'zh-CN',
    patient: {
      name: '黄志强', sex: 'male', birth_date: '1961-09-14', number: `ZY-R${Date.now().toString(36).toUpperCase()}`,
      chief_complaint: '反复胸痛 1 月。', history: '劳力性胸痛，含服硝酸甘油可缓解。', diagnosis: '冠心病，不稳定型心绞痛。', purpose: '评估是否需要冠脉介入治疗。',
    },
    sex: '男',
    opinion: '冠脉多支病变可能，建议转上级医院行冠脉造影及介入治疗。',
    department: '心血管内科',
    reason: '会诊意见建议冠脉造影，本院无导管室，请求上转。',
    instructions: '阿司匹林 100 mg 每日一次，阿托伐他汀 20 mg 每晚一次；出院 2 周后门诊复查。',
    words: {
      up: '上转', down: '下转', requested: '待接收', accepted: '已接收', admitted: '已入院', discharged: '已出院', received: '已接回',
      reasonEmpty: /^请填写原因。$/, title: /双向转诊单/, urgent: '加急',
    },
  },
  {
    lang: 'en',
    patient: {
      name: '慕容秋雨', sex: 'female', birth_date: '1975-03-02', number: `mz-r${Date.now().toString(36)}`,
      chief_complaint: 'Headache and right-sided weakness for 6 hours.', history: 'Hypertension for 12 years.', diagnosis: 'Suspected ischaemic stroke.', purpose: 'Decide on thrombectomy.',
    },
    sex: 'Female',
    opinion: 'Large-vessel occlusion likely: transfer for thrombectomy.',
    department: 'Neurology',
    reason: 'Needs thrombectomy, not available at the county hospital.',
    instructions: 'Clopidogrel 75 mg daily; physiotherapy three times a week; review in 4 weeks.',
    words: {
      up: 'Up', down: 'Down', requested: 'Requested', accepted: 'Accepted', admitted: 'Admitted', discharged: 'Discharged', received: 'Received',
      reasonEmpty: /^Reason must not be empty\.$/, title: /Two-way referral form/, urgent: 'Urgent',
    },
  },
];

await runTest('referral', async (s) => {
  const server = await s.step('start the server', () => startServer());
  const { origin } = server;
  const api = apiClient(origin);
  const tok = { coordinator: await api.login('coordinator'), doctor: await api.login('doctor-east'), cardiologist: await api.login('cardiologist') };
  const cardiologist = await api.user(tok.coordinator, 'cardiologist');
  const sites = (await api.call(tok.doctor, 'GET', '/v1/sites')).items;
  const city = sites.find((x) => x.name === CITY);
  if (!city) throw new Error(`no demo site ${CITY}`);
  const browser = await launchBrowser();
  const pages = [];

  for (const w of WALKS) {
    const L = w.lang === 'zh-CN' ? 'zh' : 'en';
    const checks = s.checks[L] = {};
    const doctor = await newPage(browser, { name: `referral-doctor-${L}`, lang: w.lang });
    const coordinator = await newPage(browser, { name: `referral-coordinator-${L}`, lang: w.lang });
    pages.push(doctor, coordinator);
    let id;
    let number;
    let up;
    let masked;

    await s.step(`${L}: a consultation with a patient is requested, held, ended and gets a signed opinion`, async () => {
      const c = await api.call(tok.doctor, 'POST', '/v1/consultations', {
        kind: 'consultation', specialty: 'cardiology', urgency: 'routine', summary: '', patient: w.patient,
      });
      id = c.id;
      number = c.number;
      await api.call(tok.coordinator, 'POST', `/v1/consultations/${id}/accept`, {
        specialists: [cardiologist.id], start: new Date(Date.now() + 60e3).toISOString(), duration_minutes: 30,
      });
      await api.call(tok.coordinator, 'POST', `/v1/consultations/${id}/start`, {});
      await api.call(tok.coordinator, 'POST', `/v1/consultations/${id}/end`, {});
      await api.call(tok.cardiologist, 'POST', `/v1/consultations/${id}/opinion`, { text: w.opinion, sign: true, password: DEMO_PASSWORD });
      // The material that goes with the patient: an ECG report, listed on the referral form.
      const up = await fetch(`${origin}/v1/consultations/${id}/attachments?name=ecg.pdf`, {
        method: 'POST', headers: { authorization: `Bearer ${tok.doctor}` }, body: pdf(['ECG 12-lead']),
      });
      if (up.status !== 201) throw new Error(`the ECG upload answered ${up.status}`);
      const listed = (await api.call(tok.doctor, 'GET', '/v1/consultations?limit=200')).items.find((x) => x.id === id);
      masked = listed?.patient_summary?.masked_name;
      if (!masked || masked === w.patient.name) throw new Error(`the list's patient: ${JSON.stringify(listed?.patient_summary)}`);
      checks.number = number;
    });

    await s.step(`${L}: the coordinator waits on the 转入 (incoming) tab`, async () => {
      await signIn(coordinator, origin, 'coordinator');
      await coordinator.getByTestId('nav-referrals').click();
      await until('the incoming list', async () => (await coordinator.locator('[data-box="incoming"]').count()) > 0, 15000, 100);
      if ((await coordinator.getByTestId('referrals-tab-incoming').getAttribute('aria-current')) !== 'page') throw new Error('the incoming tab is not the current one');
      await eventsLive(coordinator);
      // Set on this document only: still there after the row arrives means no reload came between.
      await coordinator.evaluate(() => { /** @type {any} */ (window).e2eSameDocument = true; });
    });

    await s.step(`${L}: the doctor refers the patient up from the consultation page`, async () => {
      await signIn(doctor, origin, 'doctor-east');
      const detail = await openDetail(doctor, id);
      const section = detail.getByTestId('referrals');
      await section.waitFor();
      if (await doctor.getByTestId('referral-form').isVisible()) throw new Error('the referral form is open before it is asked for');
      await doctor.getByTestId('referral-open').click();
      const f = doctor.getByTestId('referral-form');
      await f.waitFor();
      const choices = await doctor.getByTestId('referral-to-site').locator('option').evaluateAll((os) => os.map((o) => /** @type {HTMLOptionElement} */ (o).text));
      if (choices.includes(EAST)) throw new Error('the doctor\'s own site is offered as the receiving one');
      if (choices[1] !== CITY) throw new Error(`the city hospital is not offered first: ${choices.join(' | ')}`);
      await doctor.getByTestId('referral-to-site').selectOption(city.id);
      await doctor.getByTestId('referral-department').fill(w.department);
      await doctor.getByTestId('referral-urgency').selectOption('urgent');
      await doctor.getByTestId('referral-reason-input').fill(w.reason);
      await shot(doctor, `referral-form-${L}`);
      await doctor.getByTestId('referral-submit').click();
      up = await until('the referral to be made', async () => {
        const c = await api.call(tok.doctor, 'GET', `/v1/consultations/${id}`);
        if (c.referrals?.length) return c.referrals[0];
        await failIfError(f, 'refer');
        return null;
      }, 15000, 100);
      if (up.to_site !== city.id || up.department !== w.department || up.reason !== w.reason || up.urgency !== 'urgent' || up.direction !== 'up') {
        throw new Error(`the referral stored: ${JSON.stringify(up)}`);
      }
      const item = await referralShows(doctor, up.id, 'requested');
      const route = await item.getByTestId('referral-route').innerText();
      if (route !== `${EAST} → ${CITY}`) throw new Error(`the referral's sites read "${route}"`);
      await textOf(item.getByTestId('referral-direction'), new RegExp(`^${w.words.up}$`), 'the direction in words');
      await textOf(item.getByTestId('referral-status'), new RegExp(`^${w.words.requested}$`), 'the status in words');
      await textOf(item.getByTestId('referral-reason'), new RegExp(`^${w.reason.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`), 'the reason');
      if (await doctor.getByTestId('referral-open').count()) throw new Error('a second referral is offered while one is under way');
      if (!(await item.getByTestId('referral-cancel-form').count())) throw new Error('the referring doctor is not offered to withdraw it');
      if (await item.getByTestId('referral-accept-form').count()) throw new Error('the doctor is offered the receiving site\'s step');
      await shot(doctor, `referral-requested-${L}`);
      checks.route = route;
    });

    await s.step(`${L}: the coordinator's incoming list shows the row without a reload`, async () => {
      const row = coordinator.locator(`[data-testid="referral-row"][data-id="${up.id}"]`);
      await row.waitFor({ timeout: 15000 });
      const same = await coordinator.evaluate(() => /** @type {any} */ (window).e2eSameDocument === true);
      if (!same) throw new Error('the page was reloaded');
      if ((await row.getAttribute('data-consultation')) !== id) throw new Error('the row names another consultation');
      const got = {
        number: await row.getByTestId('referral-row-open').innerText(),
        patient: await row.getByTestId('row-patient').innerText(),
        direction: await row.getByTestId('referral-row-direction').innerText(),
        route: await row.getByTestId('referral-row-route').innerText(),
        department: await row.getByTestId('referral-row-department').innerText(),
        status: await row.getByTestId('referral-row-status').innerText(),
      };
      if (got.number !== number) throw new Error(`the row's number reads "${got.number}"`);
      if (!got.patient.startsWith(`${masked} · ${w.sex} · `)) throw new Error(`the row's patient reads "${got.patient}"`);
      if ((await row.innerText()).includes(w.patient.name)) throw new Error('the list shows the full name');
      if ((await row.innerText()).includes(w.reason)) throw new Error('the list shows the reason');
      if (got.direction !== w.words.up || got.status !== w.words.requested || got.department !== w.department) throw new Error(`the row reads ${JSON.stringify(got)}`);
      if (got.route !== `${EAST} → ${CITY}`) throw new Error(`the row's sites read "${got.route}"`);
      await shot(coordinator, `referral-incoming-${L}`);
      checks.row = got;
    });

    await s.step(`${L}: the coordinator accepts with a date (an empty refusal is refused first)`, async () => {
      await coordinator.locator(`[data-testid="referral-row"][data-id="${up.id}"]`).getByTestId('referral-row-open').click();
      await coordinator.locator(`[data-testid="detail"][data-id="${id}"]`).waitFor();
      const item = await referralShows(coordinator, up.id, 'requested');
      if (await item.getByTestId('referral-cancel-form').count()) throw new Error('the coordinator is offered the doctor\'s withdrawal');
      // Only spaces: the field is not empty for the browser, the server refuses it.
      await item.getByTestId('referral-decline-reason').fill('   ');
      await item.getByTestId('referral-decline-submit').click();
      const err = item.getByTestId('referral-decline-error');
      const refused = await textOf(err, w.words.reasonEmpty, 'the empty refusal refused in the page\'s language');
      if ((await err.getAttribute('data-code')) !== 'text_required') throw new Error(`refused as ${await err.getAttribute('data-code')}`);
      await shot(coordinator, `referral-decline-refused-${L}`);
      const planned = beijingDay(3);
      await item.getByTestId('referral-accept-date').fill(planned);
      await item.getByTestId('referral-accept-submit').click();
      const accepted = await referralShows(coordinator, up.id, 'accepted', 'referral-accept-form');
      await textOf(accepted.getByTestId('referral-planned_date'), new RegExp(`^${planned}$`), 'the planned date');
      await textOf(accepted.getByTestId('referral-status'), new RegExp(`^${w.words.accepted}$`), 'accepted in words');
      checks.accept = { refused, planned };
    });

    await s.step(`${L}: the coordinator records the admission and the discharge; the doctor's incoming tab gets the down referral`, async () => {
      // The doctor waits on their own incoming tab meanwhile: the referral back down arrives there.
      await goto(doctor, '#/referrals/incoming');
      await until('the doctor\'s incoming list', async () => (await doctor.locator('[data-box="incoming"]').count()) > 0, 15000, 100);
      await eventsLive(doctor);
      await coordinator.locator(`[data-testid="referral"][data-id="${up.id}"]`).getByTestId('referral-admit-submit').click();
      const admitted = await referralShows(coordinator, up.id, 'admitted');
      await textOf(admitted.getByTestId('referral-status'), new RegExp(`^${w.words.admitted}$`), 'admitted in words');
      await admitted.getByTestId('referral-discharge-instructions').fill(w.instructions);
      await admitted.getByTestId('referral-discharge-submit').click();
      await referralShows(coordinator, up.id, 'discharged');
      const c = await api.call(tok.coordinator, 'GET', `/v1/consultations/${id}`);
      const down = c.referrals.find((r) => r.direction === 'down');
      if (!down || down.answers !== up.id || down.reason !== w.instructions) throw new Error(`the referral back down: ${JSON.stringify(down)}`);
      const downItem = await referralShows(coordinator, down.id, 'requested');
      if (await downItem.locator('form').count()) throw new Error('the coordinator is offered a step on the referral back down');
      await shot(coordinator, `referral-discharged-${L}`);

      const row = doctor.locator(`[data-testid="referral-row"][data-id="${down.id}"]`);
      await row.waitFor({ timeout: 15000 });
      if ((await row.getAttribute('data-direction')) !== 'down') throw new Error('the row is not the referral down');
      await textOf(row.getByTestId('referral-row-direction'), new RegExp(`^${w.words.down}$`), 'the down direction in words');
      await textOf(row.getByTestId('referral-row-route'), new RegExp(`^${CITY} → ${EAST}$`), 'the way back');
      await shot(doctor, `referral-doctor-incoming-${L}`);
      up = c.referrals.find((r) => r.id === up.id);
      checks.down = down.id;
    });

    await s.step(`${L}: the doctor receives the patient back; the outgoing tab and its filter`, async () => {
      const downId = checks.down;
      await doctor.locator(`[data-testid="referral-row"][data-id="${downId}"]`).getByTestId('referral-row-open').click();
      await doctor.locator(`[data-testid="detail"][data-id="${id}"]`).waitFor();
      const item = await referralShows(doctor, downId, 'requested');
      await textOf(item.getByTestId('referral-reason'), /./, 'the instructions on the page');
      if ((await item.getByTestId('referral-reason').innerText()) !== w.instructions) throw new Error('the instructions read otherwise');
      await item.getByTestId('referral-receive-submit').click();
      const received = await referralShows(doctor, downId, 'received');
      await textOf(received.getByTestId('referral-status'), new RegExp(`^${w.words.received}$`), 'received in words');
      await shot(doctor, `referral-received-${L}`);

      await goto(doctor, '#/referrals');
      await doctor.getByTestId('referrals-tab-outgoing').click();
      const row = doctor.locator(`[data-testid="referral-row"][data-id="${up.id}"]`);
      await row.waitFor();
      if ((await row.getAttribute('data-status')) !== 'discharged') throw new Error(`the outgoing row is ${await row.getAttribute('data-status')}`);
      await textOf(row.getByTestId('referral-row-status'), new RegExp(`^${w.words.discharged}$`), 'discharged in words');
      await doctor.getByTestId('referral-status-filter').selectOption('requested');
      await until('the filter to leave the discharged row out', async () => (await row.count()) === 0, 15000, 100);
      await doctor.getByTestId('referral-status-filter').selectOption('discharged');
      await row.waitFor();
      await shot(doctor, `referral-outgoing-${L}`);
      await doctor.getByTestId('referral-status-filter').selectOption('');
      await row.waitFor();
    });

    await s.step(`${L}: the printable referral form`, async () => {
      await openDetail(doctor, id);
      await doctor.locator(`[data-testid="referral"][data-id="${up.id}"]`).getByTestId('referral-sheet-open').click();
      const sheet = doctor.locator(`[data-testid="referral-sheet"][data-id="${up.id}"]`);
      await sheet.waitFor();
      await textOf(sheet.locator('h1'), w.words.title, 'the form\'s title');
      const head = await sheet.getByTestId('sheet-number').innerText();
      if (!head.includes(number)) throw new Error(`the form's number reads "${head}"`);
      const got = {
        name: await sheet.getByTestId('sheet-patient-name').innerText(),
        patientNumber: await sheet.getByTestId('sheet-patient-number').innerText(),
        from: await sheet.getByTestId('sheet-from').innerText(),
        to: await sheet.getByTestId('sheet-to').innerText(),
        department: await sheet.getByTestId('sheet-department').innerText(),
        urgency: await sheet.getByTestId('sheet-urgency').innerText(),
        reason: await sheet.getByTestId('sheet-reason').innerText(),
        planned: await sheet.getByTestId('sheet-planned_date').innerText(),
        opinion: await sheet.getByTestId('sheet-opinion').innerText(),
      };
      const want = { name: w.patient.name, patientNumber: w.patient.number, from: EAST, to: CITY, department: w.department, urgency: w.words.urgent, reason: w.reason, planned: up.planned_date };
      for (const [k, v] of Object.entries(want)) if (got[k] !== v) throw new Error(`the form's ${k} reads "${got[k]}", not "${v}"`);
      if (!got.opinion.includes(w.opinion)) throw new Error(`the form's opinion reads "${got.opinion}"`);
      const material = await sheet.getByTestId('report-attachment').allInnerTexts();
      if (material.length !== 1 || !material[0].includes('ecg.pdf')) throw new Error(`the form lists the material as ${JSON.stringify(material)}`);
      await shot(doctor, `referral-sheet-${L}`);
      // The button prints (the dialog itself is the browser's): window.print is counted instead.
      await doctor.evaluate(() => { const wnd = /** @type {any} */ (window); wnd.e2ePrints = 0; wnd.print = () => { wnd.e2ePrints++; }; });
      await doctor.getByTestId('referral-print').click();
      if ((await doctor.evaluate(() => /** @type {any} */ (window).e2ePrints)) !== 1) throw new Error('the print button did not print');
      await doctor.emulateMedia({ media: 'print' });
      try {
        if (await doctor.getByTestId('referral-print').isVisible()) throw new Error('the print button is on the printed page');
        if (await doctor.getByTestId('user-name').isVisible()) throw new Error('the header is on the printed page');
        if (!(await sheet.getByTestId('sheet-patient-name').isVisible())) throw new Error('the patient is not on the printed page');
        await shot(doctor, `referral-sheet-print-${L}`);
      } finally {
        await doctor.emulateMedia({ media: 'screen' });
      }
      checks.sheet = got;

      await goto(doctor, `#/c/${id}/referral/${checks.down}`);
      const downSheet = doctor.locator(`[data-testid="referral-sheet"][data-id="${checks.down}"]`);
      await downSheet.waitFor();
      const instructions = await downSheet.getByTestId('sheet-reason').innerText();
      if (instructions !== w.instructions) throw new Error(`the down form's instructions read "${instructions}"`);
      await downSheet.getByTestId('sheet-stay-discharged').waitFor();
      await shot(doctor, `referral-sheet-down-${L}`);
    });
  }

  await s.step('no uncaught errors on the pages', async () => {
    const errors = pages.flatMap((p) => pageErrors(p));
    if (errors.length) throw new Error(`uncaught page errors: ${errors.join(' | ')}`);
  });
  note('referral walk done');
});
