// Browser end-to-end test of the office screens (issue 6), walked as people use them, in both
// languages: a county doctor (中文) requests a consultation; the coordinator (English, on a
// tablet) finds it in the queue and drags it onto a specialist's free slot in the calendar,
// after a drop on a busy slot is refused; the doctor presses the emergency button and the
// coordinator's screen raises the alarm until a specialist is assigned; the specialist sees
// the day; a consultation ended through the API gets a signed opinion, a plan and a printable
// report; the administrator manages sites (a time zone from the list) and users (name, site,
// a password reset signed in with) and reads the audit log as sentences in both languages,
// filtered by days, exported as CSV; wrong passwords,
// expired and revoked sessions, unknown pages and consultations show a clear message.
// A preferred time already over is refused by the request form before anything is sent, in
// Chinese and in English; the Chinese pages use the agreed terms (排期台, 待排期, 诊疗方案,
// 指派专家; none of 排班, 治疗方案, 加入专家).
//
//   node tests/e2e/office.test.mjs          (scripts/e2e.sh installs what it needs first)
//
// Screenshots: tests/e2e/artifacts/screens/office-*.png. Prints a JSON summary on stdout.

import { createHmac } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ROOT, apiClient, launchBrowser, newPage, note, pageErrors, runTest, shot, signIn, startServer, until,
} from './lib/harness.mjs';
import {
  dragToSlot, emergency, goto, openDetail, openReport, recordPlan, requestConsultation, scheduleRequest, showSlot, waitForStatus, writeOpinion,
} from './lib/office.mjs';
import { switchLanguage } from './lib/call.mjs';

/** Words the Chinese pages no longer use (the catalogue test checks the catalogue; this, what is shown). */
const OLD_WORDS = ['排班', '治疗方案', '加入专家', '教学直播'];

/** Throws if the page shows any of OLD_WORDS. @param {import('playwright-core').Page} page @param {string} where */
async function noOldWords(page, where) {
  const text = await page.locator('body').innerText();
  const found = OLD_WORDS.filter((w) => text.includes(w));
  if (found.length) throw new Error(`${where} shows ${found.join(', ')}`);
}

// Known, so the test can sign the expired session of the "expired link" case itself.
const JWT_SECRET = 'e2e-office-test-secret-0123456789abcdef';
const SLOT_MS = 30 * 60e3;
const TABLET = { width: 1024, height: 768 };
const TABLET_PORTRAIT = { width: 768, height: 1024 };

/** A copy of a real token from the server, re-signed with `iat`/`exp` in the past. */
function expired(token) {
  const [, payload] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
  const now = Math.floor(Date.now() / 1000);
  claims.iat = now - 7200;
  claims.exp = now - 3600;
  const head = Buffer.from(JSON.stringify({ typ: 'JWT', alg: 'HS256' })).toString('base64url');
  const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const sig = createHmac('sha256', JWT_SECRET).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

/** Waits for `locator`'s text to match `re`; returns the text. */
async function textOf(locator, re, what) {
  return until(what, async () => {
    const text = await locator.innerText().catch(() => '');
    return re.test(text) ? text : false;
  }, 15000, 100);
}

/**
 * Every t('key') of the office screens is in both catalogues, and both have the same keys: a
 * missing key would show up as the raw key in one language only.
 */
async function checkCatalogues() {
  const web = join(ROOT, 'web-client');
  const cat = {};
  for (const l of ['zh-CN', 'en']) cat[l] = JSON.parse(await readFile(join(web, 'i18n', `${l}.json`), 'utf8'));
  const problems = [];
  for (const [a, b] of [['zh-CN', 'en'], ['en', 'zh-CN']]) {
    for (const k of Object.keys(cat[a])) if (!(k in cat[b])) problems.push(`${k} is in ${a}.json only`);
  }
  const files = ['js/app.js', 'js/dom.js', ...(await readdir(join(web, 'js/office'))).map((f) => `js/office/${f}`)];
  for (const f of files) {
    const src = await readFile(join(web, f), 'utf8');
    for (const [, k] of src.matchAll(/\bt\('([\w.-]+)'/g)) if (!(k in cat.en)) problems.push(`${f}: t('${k}') is in no catalogue`);
  }
  if (problems.length) throw new Error(`catalogue problems: ${problems.join('; ')}`);
  return Object.keys(cat.en).length;
}

await runTest('office', async (s) => {
  s.checks.catalogueKeys = await s.step('the catalogues match the screens', checkCatalogues);
  // Every audit record of this run is made after this instant (the audit days' check).
  const testStart = Date.now();
  const server = await s.step('start the server', () => startServer({ extraToml: `jwt_secret = "${JWT_SECRET}"`, keepOneTimeAdmin: true }));
  const { origin } = server;
  const api = apiClient(origin);
  const tok = {
    coordinator: await api.login('coordinator'),
    doctorWest: await api.login('doctor-west'),
    doctorEast: await api.login('doctor-east'),
  };
  const user = async (name) => api.user(tok.coordinator, name);
  const cardiologist = await user('cardiologist');
  const surgeon = await user('surgeon');
  const browser = await launchBrowser();
  const doctor = await newPage(browser, { name: 'office-doctor', lang: 'zh-CN' });
  const coordinator = await newPage(browser, { name: 'office-coordinator', lang: 'en', viewport: TABLET });

  // A booking made by someone else: the cardiologist is busy two hours from now.
  const busyAt = Math.floor(Date.now() / SLOT_MS) * SLOT_MS + 4 * SLOT_MS;
  const freeAt = busyAt + 2 * SLOT_MS;
  const other = await api.call(tok.doctorWest, 'POST', '/v1/consultations', { kind: 'consultation', specialty: 'cardiology', urgency: 'urgent', summary: 'Booked beforehand.' });
  await api.call(tok.coordinator, 'POST', `/v1/consultations/${other.id}/accept`, {
    specialists: [cardiologist.id], start: new Date(busyAt).toISOString(), duration_minutes: 30,
  });

  let requestId;
  await s.step('a wrong password is refused in Chinese', async () => {
    await doctor.goto(`${origin}/#/`);
    await shot(doctor, 'office-login');
    await doctor.getByTestId('login-username').fill('doctor-east');
    await doctor.getByTestId('login-password').fill('not-the-password');
    await doctor.getByTestId('login-submit').click();
    const err = doctor.getByTestId('login-error');
    await textOf(err, /用户名或密码错误/, 'the wrong-password message in Chinese');
    if ((await err.getAttribute('data-code')) !== 'invalid_credentials') throw new Error('the login error is not invalid_credentials');
    await shot(doctor, 'office-login-error');
  });

  await s.step('the doctor (zh-CN) requests a consultation', async () => {
    await signIn(doctor, origin, 'doctor-east');
    await doctor.getByTestId('emergency-button').waitFor();
    await textOf(doctor.getByTestId('view'), /我的会诊申请/, 'the doctor\'s home in Chinese');
    await shot(doctor, 'office-doctor-home');
    await goto(doctor, '#/new');
    await doctor.getByTestId('request-form').waitFor();
    await shot(doctor, 'office-request-form');
    // A preferred time that is already over: refused on the form, before anything is sent.
    const mineBefore = (await api.call(tok.doctorEast, 'GET', '/v1/consultations')).items.length;
    const yesterday = (/** @type {number} */ h) => new Date(Date.now() - 86400e3 + 8 * 3600e3).toISOString().slice(0, 11) + `${String(h).padStart(2, '0')}:00`;
    /** @param {RegExp} re */
    const refusedPast = async (re) => {
      await doctor.getByTestId('request-summary').fill('期望时间已过的申请');
      await doctor.getByTestId('request-wished-from').fill(yesterday(9));
      await doctor.getByTestId('request-wished-to').fill(yesterday(11));
      await doctor.getByTestId('request-submit').click();
      const err = doctor.getByTestId('request-error');
      const text = await textOf(err, re, `the past preferred time refused (${re})`);
      if ((await err.getAttribute('data-code')) !== 'wished_in_past') throw new Error(`refused as ${await err.getAttribute('data-code')}, not wished_in_past`);
      if ((await doctor.getByTestId('request-wished-to').getAttribute('aria-invalid')) !== 'true') throw new Error('the preferred time is not marked invalid');
      if (new URL(doctor.url()).hash !== '#/new') throw new Error(`the form should stay: ${doctor.url()}`);
      return text;
    };
    const pastZh = await refusedPast(/期望时间已过/);
    await shot(doctor, 'office-request-past-time-zh');
    await switchLanguage(doctor, 'en');
    await doctor.getByTestId('request-form').waitFor();
    const pastEn = await refusedPast(/preferred time has passed/);
    await shot(doctor, 'office-request-past-time-en');
    await switchLanguage(doctor, 'zh-CN');
    const mineAfter = (await api.call(tok.doctorEast, 'GET', '/v1/consultations')).items.length;
    if (mineAfter !== mineBefore) throw new Error(`a refused request reached the server (${mineBefore} → ${mineAfter})`);
    s.checks.pastPreferredTime = { zh: pastZh, en: pastEn };
    requestId = await requestConsultation(doctor, { specialty: 'cardiology', urgency: 'urgent', summary: '患者男，62 岁，反复胸闷 3 月，请心内科会诊。' });
    await waitForStatus(doctor, requestId, 'requested');
    await textOf(doctor.getByTestId('detail-status'), /待受理/, 'the status in Chinese');
    const c = await api.call(tok.doctorEast, 'GET', `/v1/consultations/${requestId}`);
    if (c.requester !== (await user('doctor-east')).id || c.urgency !== 'urgent') throw new Error('the request was not stored as entered');
    await shot(doctor, 'office-detail-requested');
  });

  await s.step('the coordinator (en, tablet) drags the request onto the calendar', async () => {
    await signIn(coordinator, origin, 'coordinator');
    await coordinator.locator(`[data-testid="queue-item"][data-id="${requestId}"]`).waitFor();
    const busy = await showSlot(coordinator, 'cardiologist', busyAt);
    if ((await busy.getAttribute('data-busy')) !== 'true') throw new Error('the booked slot is not shown busy');
    await shot(coordinator, 'office-coordinator-desk-tablet');
    // A drop on the busy slot: the server refuses, the calendar says why, in English.
    let refused = null;
    try {
      await dragToSlot(coordinator, requestId, 'cardiologist', busyAt);
    } catch (e) {
      refused = e.message;
    }
    if (!refused?.startsWith('specialist_busy: ') || !/already has a consultation/.test(refused)) {
      throw new Error(`a drop on a busy slot was not refused as specialist_busy: ${refused}`);
    }
    await shot(coordinator, 'office-calendar-busy-error');
    await dragToSlot(coordinator, requestId, 'cardiologist', freeAt);
    const c = await api.call(tok.coordinator, 'GET', `/v1/consultations/${requestId}`);
    if (c.status !== 'scheduled' || c.specialists[0] !== cardiologist.id || Date.parse(c.start) !== freeAt) {
      throw new Error(`the drop scheduled the wrong thing: ${c.status} ${c.specialists} ${c.start}`);
    }
    const slot = await showSlot(coordinator, 'cardiologist', freeAt);
    await until('the new booking to show in the calendar', async () => (await slot.getAttribute('data-busy')) === 'true');
    await shot(coordinator, 'office-calendar-scheduled');
    s.checks.dragDrop = { busyRefused: true, scheduledAt: c.start };
  });

  await s.step('tablet portrait: pick a request, then tap a slot', async () => {
    const second = await api.call(tok.doctorWest, 'POST', '/v1/consultations', { kind: 'case_discussion', specialty: 'neurology', urgency: 'routine', summary: 'Headache.' });
    await coordinator.setViewportSize(TABLET_PORTRAIT);
    await goto(coordinator, '#/');
    const item = coordinator.locator(`[data-testid="queue-item"][data-id="${second.id}"]`);
    await item.getByTestId('queue-pick').click();
    await until('the request to be picked', async () => (await coordinator.locator(`[data-testid="queue-item"][data-id="${second.id}"] [data-testid="queue-pick"]`).getAttribute('aria-pressed')) === 'true');
    const slot = await showSlot(coordinator, 'neurologist', freeAt);
    await shot(coordinator, 'office-coordinator-desk-portrait');
    await slot.click();
    await until('the picked request to be scheduled', async () => (await api.call(tok.coordinator, 'GET', `/v1/consultations/${second.id}`)).status === 'scheduled');
    await coordinator.setViewportSize(TABLET);
  });

  await s.step('the coordinator rejects a request with a reason the doctor reads', async () => {
    const r = await api.call(tok.doctorEast, 'POST', '/v1/consultations', { kind: 'teaching', specialty: 'radiology', urgency: 'routine', summary: 'Teaching request.' });
    await openDetail(coordinator, r.id);
    await coordinator.getByTestId('reject-reason').fill('No radiologist in the consortium this month.');
    await coordinator.getByTestId('reject-submit').click();
    await waitForStatus(coordinator, r.id, 'rejected');
    await openDetail(doctor, r.id);
    await textOf(doctor.getByTestId('fact-reason'), /No radiologist/, 'the reason on the doctor\'s page');
    await textOf(doctor.getByTestId('detail-status'), /已拒绝/, 'the rejected status in Chinese');
  });

  let emergencyId;
  await s.step('the emergency button alerts the coordinator', async () => {
    await goto(coordinator, '#/');
    await coordinator.getByTestId('calendar').waitFor();
    if (await coordinator.getByTestId('emergency-alert').count()) throw new Error('an emergency alert before any emergency');
    emergencyId = await emergency(doctor, { specialty: 'cardiology', summary: '急性胸痛 1 小时，ST 段抬高。' });
    const alert = coordinator.locator(`[data-testid="emergency-alert"][data-id="${emergencyId}"]`);
    await until('the coordinator\'s page to show the emergency', () => alert.isVisible(), 15000, 200);
    const title = await coordinator.title();
    if (!/Emergency/.test(title)) throw new Error(`the window title does not say emergency: ${title}`);
    // A chime reached the speaker (Web Audio running), once for the new emergency.
    const played = await until('the alert chime', async () => (await coordinator.evaluate(() => window.hzAlerts?.played)) || null, 10000, 100);
    if (played !== 1) throw new Error(`one chime for one new emergency, got ${played}`);
    await shot(coordinator, 'office-emergency-alert');
    // Silencing it keeps the banner and stops the reminders.
    await alert.getByTestId('emergency-alert-silence').click();
    if (await alert.getByTestId('emergency-alert-silence').count()) throw new Error('the silence button should go once used');
    if (!(await alert.isVisible())) throw new Error('silencing must not hide the emergency');
    // The doctor's page leaves the room screen: this test is about the office.
    await goto(doctor, '#/');
    await doctor.getByTestId('consultation-list').waitFor();
    // Assigning a specialist answers the alarm.
    await alert.getByTestId('emergency-alert-open').click();
    await openDetail(coordinator, emergencyId);
    await coordinator.locator(`[data-testid="assign-specialist"][data-username="cardiologist"]`).check();
    await coordinator.getByTestId('assign-submit').click();
    await until('the alert to go once a specialist is assigned', async () => (await alert.count()) === 0, 15000, 200);
    const c = await api.call(tok.coordinator, 'GET', `/v1/consultations/${emergencyId}`);
    if (c.status !== 'live' || c.specialists[0] !== cardiologist.id) throw new Error('the emergency was not assigned');
    s.checks.emergencyAlert = { chimes: await coordinator.evaluate(() => window.hzAlerts?.played) };
  });

  await s.step('the Chinese pages use the agreed terms', async () => {
    const page = await newPage(browser, { name: 'office-coordinator-zh', lang: 'zh-CN' });
    await signIn(page, origin, 'coordinator');
    await page.getByTestId('calendar').waitFor();
    const desk = await page.getByTestId('nav-desk').innerText();
    if (desk !== '排期台') throw new Error(`the desk is called "${desk}"`);
    await textOf(page.getByTestId('view'), /待排期申请/, 'the queue as 待排期申请');
    await noOldWords(page, 'the coordinator\'s desk');
    await shot(page, 'office-coordinator-desk-zh');
    // The live emergency's assign step.
    await openDetail(page, emergencyId);
    const assign = await page.getByTestId('assign-submit').innerText();
    if (assign !== '指派专家') throw new Error(`the assign button reads "${assign}"`);
    await noOldWords(page, 'the emergency\'s page');
    s.checks.wording = { desk, assign };
    await page.close();
  });

  await s.step('the specialist sees the day', async () => {
    const page = await newPage(browser, { name: 'office-specialist', lang: 'zh-CN' });
    await signIn(page, origin, 'cardiologist');
    await textOf(page.getByTestId('view'), /我的日程/, 'the day in Chinese');
    // English by the switch in the header, kept across a reload.
    await page.getByTestId('lang-switch').selectOption('en');
    await textOf(page.getByTestId('view'), /My day/, 'the day in English after the switch');
    await page.reload();
    const today = page.getByTestId('day-today');
    await today.waitFor();
    // The live emergency comes first, with a way into the room.
    const first = today.getByTestId('consultation-item').first();
    if ((await first.getAttribute('data-id')) !== emergencyId) throw new Error('the live emergency is not first on the day');
    await first.getByTestId('row-join').waitFor();
    const all = page.locator(`[data-testid="day-today"], [data-testid="day-upcoming"]`).getByTestId('consultation-item');
    const ids = await all.evaluateAll((els) => els.map((e) => e.getAttribute('data-id')));
    if (!ids.includes(requestId) || !ids.includes(other.id)) throw new Error(`the day misses scheduled consultations: ${ids}`);
    await shot(page, 'office-specialist-day');
    await first.getByTestId('row-join').click();
    await until('the join button to lead to the call', async () => new URL(page.url()).hash === `#/c/${emergencyId}/call`);
    await page.close();
  });

  await s.step('opinion, plan and the printable report', async () => {
    // A consultation held and ended through the API (the call itself is another test's).
    const c = await api.call(tok.doctorEast, 'POST', '/v1/consultations', { kind: 'consultation', specialty: 'general_surgery', urgency: 'routine', summary: '右下腹痛 2 天，疑似阑尾炎。' });
    // Scheduled through the accept form (the keyboard way), for the surgeon in a minute.
    await scheduleRequest(coordinator, c.id, { specialist: '赵外科', startInMinutes: 1, duration: 45 });
    const scheduled = await api.call(tok.coordinator, 'GET', `/v1/consultations/${c.id}`);
    if (scheduled.specialists.join() !== surgeon.id || scheduled.duration_minutes !== 45) throw new Error('the accept form scheduled the wrong thing');
    await api.call(tok.coordinator, 'POST', `/v1/consultations/${c.id}/start`, {});
    await api.call(tok.coordinator, 'POST', `/v1/consultations/${c.id}/end`, {});
    const page = await newPage(browser, { name: 'office-surgeon', lang: 'zh-CN' });
    await signIn(page, origin, 'surgeon');
    await writeOpinion(page, c.id, '考虑急性阑尾炎，建议急诊手术。');
    await shot(page, 'office-opinion-draft');
    await writeOpinion(page, c.id, '考虑急性阑尾炎，建议急诊腹腔镜阑尾切除术。', { sign: true });
    if (await page.getByTestId('opinion-text').count()) throw new Error('a signed opinion can still be edited');
    await page.close();
    // The doctor's home asks for the plan by its one name.
    await goto(doctor, '#/');
    const needed = await textOf(doctor.getByTestId('plan-needed'), /诊疗方案/, 'the plan asked for as 诊疗方案');
    await noOldWords(doctor, 'the doctor\'s home');
    s.checks.planNeeded = needed;
    await recordPlan(doctor, c.id, '转上级医院手术治疗。');
    await shot(doctor, 'office-detail-reported');
    const report = await openReport(doctor, c.id);
    for (const want of ['远程会诊报告', '赵外科', '腹腔镜阑尾切除术', '转上级医院手术治疗', '陈医生', '右下腹痛']) {
      if (!report.text.includes(want)) throw new Error(`the report lacks "${want}"`);
    }
    await shot(doctor, 'office-report');
    await doctor.emulateMedia({ media: 'print' });
    if (await doctor.getByTestId('print').isVisible() || await doctor.locator('#header').isVisible()) throw new Error('the print view shows the app\'s controls');
    await shot(doctor, 'office-report-print');
    await doctor.emulateMedia({ media: 'screen' });
  });

  await s.step('the administrator manages users and sites and reads the audit log', async () => {
    if (!server.oneTimeAdminPassword) throw new Error('the server printed no admin password');
    const oneTime = server.oneTimeAdminPassword;
    // The first start's password opens nothing but the page that replaces it (issue 14).
    const early = await api.login('admin', oneTime);
    const lockedOut = await api.request(early, 'GET', '/v1/users');
    if (lockedOut.status !== 403 || lockedOut.data?.code !== 'password_change_required') throw new Error(`a one-time password should open nothing: ${JSON.stringify(lockedOut)}`);
    const page = await newPage(browser, { name: 'office-admin', lang: 'en' });
    await signIn(page, origin, 'admin', oneTime);
    await page.locator('[data-testid="password-form"][data-forced="true"]').waitFor();
    await shot(page, 'office-admin-password-forced');
    // The entries differ: said in the form, nothing sent.
    await page.getByTestId('password-current').fill(oneTime);
    await page.getByTestId('password-new').fill('admin-own-password-1');
    await page.getByTestId('password-again').fill('admin-own-password-2');
    await page.getByTestId('password-submit').click();
    await textOf(page.getByTestId('password-error'), /differ/, 'the mismatch');
    // The same password again: the server's code, in English.
    await page.getByTestId('password-new').fill(oneTime);
    await page.getByTestId('password-again').fill(oneTime);
    await page.getByTestId('password-submit').click();
    await until('password_unchanged to be shown', async () => (await page.getByTestId('password-error').getAttribute('data-code')) === 'password_unchanged', 10000, 100);
    const own = 'admin-own-password-1';
    await page.getByTestId('password-new').fill(own);
    await page.getByTestId('password-again').fill(own);
    await page.getByTestId('password-submit').click();
    await page.getByTestId('user-table').waitFor();
    if ((await api.request(early, 'GET', '/v1/me')).status !== 401) throw new Error('the one-time session should be signed out by the change');
    const adminTok = await api.login('admin', own);
    s.checks.oneTimePassword = { refused: lockedOut.data.code, changedInUi: true };
    await page.getByTestId('user-username').fill('doctor-north');
    await page.getByTestId('user-display-name').fill('Dr North');
    await page.getByTestId('user-role').selectOption('doctor');
    await page.getByTestId('user-password').fill('north-password-1');
    await page.getByTestId('user-site').selectOption({ index: 1 });
    await page.getByTestId('user-submit').click();
    const row = page.locator('[data-testid="user-row"][data-username="doctor-north"]');
    await row.waitFor();
    await api.login('doctor-north', 'north-password-1');

    // Edit the name and the site, and reset the password; a password too short is refused by
    // the server and the form says so in English, by its code, with nothing saved.
    const township = (await api.call(adminTok, 'GET', '/v1/sites')).items.find((x) => x.name.startsWith('南镇'));
    const north = () => api.call(adminTok, 'GET', '/v1/users?role=doctor').then((r) => r.items.find((u) => u.username === 'doctor-north'));
    await row.getByTestId('user-row-edit').click();
    const edit = page.locator('[data-testid="user-edit-row"][data-username="doctor-north"]');
    await edit.getByTestId('user-edit-name').fill('Dr North (South Township)');
    await edit.getByTestId('user-edit-site').selectOption(township.id);
    await edit.getByTestId('user-edit-password').fill('short');
    await edit.getByTestId('user-edit-save').click();
    const editError = edit.getByTestId('user-edit-error');
    const refusedText = await textOf(editError, /password must have 10 to 256 characters/, 'the short password refused in English');
    if ((await editError.getAttribute('data-code')) !== 'password_length') throw new Error(`refused as ${await editError.getAttribute('data-code')}, not password_length`);
    if ((await north()).display_name !== 'Dr North') throw new Error('a refused edit changed the user');
    await shot(page, 'office-admin-user-edit-refused');
    await edit.getByTestId('user-edit-password').fill('north-password-2');
    await edit.getByTestId('user-edit-save').click();
    await until('the row to show the new name and site', async () => (await row.getByTestId('user-row-name').innerText()) === 'Dr North (South Township)'
      && (await row.getByTestId('user-row-site').innerText()) === township.name);
    const edited = await north();
    if (edited.display_name !== 'Dr North (South Township)' || edited.site_id !== township.id) throw new Error(`the edit was not saved: ${JSON.stringify(edited)}`);
    const banner = await page.locator('#banner').innerText();
    if (!/password of Dr North \(South Township\) was reset/.test(banner)) throw new Error(`the banner should say the password was reset: "${banner}"`);
    const oldRefused = await api.request(null, 'POST', '/v1/auth/login', { username: 'doctor-north', password: 'north-password-1' });
    if (oldRefused.status !== 401) throw new Error(`the old password still signs in: ${oldRefused.status}`);
    // The new password signs in, in the browser, under the new name.
    const northPage = await newPage(browser, { name: 'office-north', lang: 'zh-CN' });
    await signIn(northPage, origin, 'doctor-north', 'north-password-2');
    const who = await northPage.getByTestId('user-name').innerText();
    if (!who.startsWith('Dr North (South Township)')) throw new Error(`signed in with the new password, the header reads "${who}"`);
    await northPage.close();
    await shot(page, 'office-admin-user-edited');
    s.checks.userEdit = { refused: refusedText, signedInAs: who };

    page.once('dialog', (d) => d.accept());
    await row.getByTestId('user-row-toggle').click();
    await until('the user to show disabled', async () => (await page.locator('[data-testid="user-row"][data-username="doctor-north"]').getAttribute('data-disabled')) === 'true');
    const refused = await api.request(null, 'POST', '/v1/auth/login', { username: 'doctor-north', password: 'north-password-2' });
    if (refused.status !== 401) throw new Error(`a disabled user signed in: ${refused.status}`);
    // A role change from the table.
    page.once('dialog', (d) => d.accept());
    await page.locator('[data-testid="user-row"][data-username="doctor-south"]').getByTestId('user-row-role').selectOption('viewer');
    await until('the role change to be saved', async () => (await api.call(tok.coordinator, 'GET', '/v1/users?role=viewer')).items.some((u) => u.username === 'doctor-south'));
    await shot(page, 'office-admin-users');

    // A site with a time zone chosen from the list (Asia/Shanghai unless changed), then moved to
    // another zone in the table.
    await page.getByTestId('admin-tab-sites').click();
    await page.getByTestId('site-table').waitFor();
    const zoneSelect = page.getByTestId('site-zone');
    if ((await zoneSelect.inputValue()) !== 'Asia/Shanghai') throw new Error(`a new site's zone should default to Asia/Shanghai, is ${await zoneSelect.inputValue()}`);
    const zones = await zoneSelect.locator('option').count();
    if (zones < 100) throw new Error(`the time zone list offers ${zones} zones: not the browser's list`);
    await page.getByTestId('site-name').fill('北乡卫生院 North Township Clinic');
    await page.getByTestId('site-level').selectOption('township');
    await zoneSelect.selectOption('Asia/Urumqi');
    await page.getByTestId('site-submit').click();
    // Site names are editable in the table: read the inputs.
    await until('the new site in the table', async () => (await page.getByTestId('site-row-name').evaluateAll((els) => els.map((e) => /** @type {HTMLInputElement} */ (e).value)))
      .includes('北乡卫生院 North Township Clinic'));
    const created = (await api.call(adminTok, 'GET', '/v1/sites')).items.find((x) => x.name === '北乡卫生院 North Township Clinic');
    if (created?.time_zone !== 'Asia/Urumqi') throw new Error(`the site was created in ${created?.time_zone}, not the zone chosen`);
    const siteRow = page.locator(`[data-testid="site-row"][data-id="${created.id}"]`);
    if ((await siteRow.getByTestId('site-row-zone').inputValue()) !== 'Asia/Urumqi') throw new Error('the table does not show the site\'s zone');
    await siteRow.getByTestId('site-row-zone').selectOption('Asia/Shanghai');
    await siteRow.getByTestId('site-save').click();
    await until('the site\'s new zone to be saved', async () => (await api.call(adminTok, 'GET', `/v1/sites/${created.id}`)).time_zone === 'Asia/Shanghai');
    await until('the table to show the new zone', async () => (await page.locator(`[data-testid="site-row"][data-id="${created.id}"]`).getAttribute('data-zone')) === 'Asia/Shanghai');
    await shot(page, 'office-admin-sites');
    s.checks.siteZone = { created: created.time_zone, changedTo: 'Asia/Shanghai', offered: zones };

    // The audit log reads as sentences, in English and in Chinese.
    await page.getByTestId('admin-tab-audit').click();
    await page.getByTestId('audit-list').waitFor();
    await page.getByTestId('audit-action').selectOption('consultation.accept');
    await page.getByTestId('audit-apply').click();
    const accepts = await until('the audit log filtered to accepts', async () => {
      const actions = await page.getByTestId('audit-row').evaluateAll((els) => els.map((e) => e.getAttribute('data-action')));
      return actions.length >= 3 && actions.every((a) => a === 'consultation.accept') ? actions.length : null;
    });
    const first = page.getByTestId('audit-row').first();
    const ref = `#${(await first.getAttribute('data-consultation'))?.slice(-8)}`;
    const en = await first.getByTestId('audit-sentence').innerText();
    if (en !== `会诊中心 王协调 scheduled consultation ${ref}`) throw new Error(`the English sentence reads "${en}"`);
    const time = await first.getByTestId('audit-time').innerText();
    if (!/^\(\d{4}-\d{2}-\d{2} \d{2}:\d{2}\)$/.test(time)) throw new Error(`the time reads "${time}"`);
    await shot(page, 'office-admin-audit-en');
    await switchLanguage(page, 'zh-CN');
    const zh = await textOf(page.getByTestId('audit-sentence').first(), /安排了会诊/, 'the Chinese sentence');
    if (zh !== `会诊中心 王协调 安排了会诊 ${ref}`) throw new Error(`the Chinese sentence reads "${zh}"`);
    await shot(page, 'office-admin-audit');
    s.checks.auditSentences = { en, zh, time };

    // The CSV export of what the filter matches: BOM, header, a row per record.
    const want = (await api.call(adminTok, 'GET', '/v1/audit?action=consultation.accept&limit=1000')).items;
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('audit-export').click()]);
    const file = await readFile(/** @type {string} */ (await download.path()));
    if (file[0] !== 0xef || file[1] !== 0xbb || file[2] !== 0xbf) throw new Error('the CSV has no UTF-8 byte-order mark');
    const lines = file.toString('utf8').slice(1).split('\r\n');
    if (lines.pop() !== '') throw new Error('the CSV does not end with a line break');
    if (lines[0] !== '时间（北京时间）,操作人,操作代码,记录,会诊编号,对象') throw new Error(`the CSV header reads "${lines[0]}"`);
    const rows = lines.slice(1);
    if (rows.length < want.length || want.length < 3) throw new Error(`the CSV has ${rows.length} rows, the filter matches ${want.length}`);
    for (const r of want) {
      const line = rows.find((l) => l.includes(`,consultation.accept,会诊中心 王协调 安排了会诊 #${r.consultation.slice(-8)},${r.consultation},`));
      if (!line || !line.startsWith('20') || !line.includes(',会诊中心 王协调,')) throw new Error(`the CSV lacks the record of ${r.consultation}: ${rows.join(' | ')}`);
    }
    if (!download.suggestedFilename().endsWith('.csv')) throw new Error(`the file is named ${download.suggestedFilename()}`);
    s.checks.csv = { rows: rows.length, matches: want.length, name: download.suggestedFilename() };

    // A user's change reads with the user's name.
    await page.getByTestId('audit-action').selectOption('admin.user_updated');
    await page.getByTestId('audit-apply').click();
    await page.locator('[data-testid="audit-sentence"]', { hasText: '修改了用户 Dr North (South Township)' }).first().waitFor();

    // Days: whole days in Beijing. The days of this test hold its records; the day before it
    // began holds none; days to come hold none and say so; a reversed range is refused.
    const day = (/** @type {number} */ ms) => new Date(ms + 8 * 3600e3).toISOString().slice(0, 10);
    /** @param {string} from @param {string} to */
    const filterDays = async (from, to) => {
      await page.getByTestId('audit-from').fill(from);
      await page.getByTestId('audit-to').fill(to);
      const [req] = await Promise.all([page.waitForRequest((r) => r.url().includes('/v1/audit?')), page.getByTestId('audit-apply').click()]);
      return new URL(req.url()).searchParams;
    };
    await page.getByTestId('audit-action').selectOption('consultation.accept');
    const sent = await filterDays(day(testStart), day(Date.now()));
    const wantFrom = new Date(`${day(testStart)}T00:00:00+08:00`).toISOString();
    const wantTo = new Date(new Date(`${day(Date.now())}T00:00:00+08:00`).getTime() + 86400e3).toISOString();
    if (sent.get('from') !== wantFrom || sent.get('to') !== wantTo) throw new Error(`the days were sent as ${sent.get('from')} – ${sent.get('to')}, not ${wantFrom} – ${wantTo}`);
    await until('the accepts of these days', async () => (await page.getByTestId('audit-row').count()) === accepts);
    const before = day(testStart - 86400e3);
    await filterDays(before, before);
    await page.getByTestId('audit-empty').waitFor();
    if (await page.getByTestId('audit-row').count()) throw new Error('the day before the test began shows records');
    const later = [day(Date.now() + 2 * 86400e3), day(Date.now() + 3 * 86400e3)];
    await filterDays(later[0], later[1]);
    const empty = await textOf(page.getByTestId('audit-empty'), new RegExp(`${later[0]} 至 ${later[1]} 期间没有符合条件的审计记录`), 'the empty message naming the days');
    if (await page.getByTestId('audit-row').count()) throw new Error('days to come show records');
    if (!(await page.getByTestId('audit-export').isDisabled())) throw new Error('an empty list offers an export');
    await shot(page, 'office-admin-audit-future');
    await page.getByTestId('audit-from').fill(later[1]);
    await page.getByTestId('audit-to').fill(later[0]);
    await page.getByTestId('audit-apply').click();
    const reversed = await textOf(page.getByTestId('audit-filter-error'), /结束时间须晚于开始时间/, 'the reversed days refused');
    s.checks.auditDays = { sent: [sent.get('from'), sent.get('to')], empty, reversed };
    await page.close();
  });

  await s.step('revoked and expired sessions, unknown pages and consultations', async () => {
    // Revoked: the trainee signs out on another device, which ends every session.
    const trainee = await newPage(browser, { name: 'office-trainee', lang: 'zh-CN' });
    await signIn(trainee, origin, 'trainee');
    await api.call(await api.login('trainee'), 'POST', '/v1/auth/logout');
    await goto(trainee, '#/all');
    const notice = trainee.getByTestId('login-notice');
    await textOf(notice, /已被登出/, 'the revoked-session message in Chinese');
    if ((await notice.getAttribute('data-code')) !== 'session_revoked') throw new Error('not reported as revoked');
    await shot(trainee, 'office-session-revoked');
    await trainee.close();

    // Expired: a link opened with a session (and refresh token) that ran out hours ago. After
    // signing in again, the link opens.
    const away = await newPage(browser, { name: 'office-expired', lang: 'en' });
    const real = await api.signIn('doctor-east');
    await away.goto(`${origin}/#/`);
    await away.evaluate((s) => sessionStorage.setItem('huizhen.session', JSON.stringify(s)), {
      ...real, access_token: expired(real.access_token), refresh_token: expired(real.refresh_token),
    });
    await away.goto(`${origin}/#/c/${requestId}`);
    await away.reload();
    const expiredNotice = away.getByTestId('login-notice');
    await textOf(expiredNotice, /session has expired/, 'the expired-session message');
    if ((await expiredNotice.getAttribute('data-code')) !== 'session_expired') throw new Error('not reported as expired');
    await shot(away, 'office-session-expired');
    await signIn(away, origin, 'doctor-east');
    await away.locator(`[data-testid="detail"][data-id="${requestId}"]`).waitFor();

    // A token that was never valid.
    await away.evaluate(() => {
      const s = JSON.parse(sessionStorage.getItem('huizhen.session'));
      sessionStorage.setItem('huizhen.session', JSON.stringify({ ...s, access_token: 'not-a-token' }));
    });
    await away.reload();
    await textOf(away.getByTestId('login-notice'), /no longer valid/, 'the invalid-session message');
    await signIn(away, origin, 'doctor-east');

    await goto(away, '#/no/such/page');
    await away.getByTestId('not-found').waitFor();
    await shot(away, 'office-not-found');
    await goto(away, `#/c/${'0'.repeat(32)}`);
    const err = away.getByTestId('view-error');
    await textOf(err, /No such consultation/, 'the unknown-consultation message');
    if ((await err.getAttribute('data-code')) !== 'consultation_not_found') throw new Error('not reported as consultation_not_found');
    await shot(away, 'office-consultation-not-found');
    await away.close();
  });

  await s.step('no uncaught errors on the pages', async () => {
    const errors = [...pageErrors(doctor), ...pageErrors(coordinator)];
    if (errors.length) throw new Error(`uncaught page errors: ${errors.join(' | ')}`);
  });
  note('office walk done');
});
