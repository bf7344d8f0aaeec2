// UI-driven steps of the office screens, as a user takes them: request, emergency, schedule,
// opinion, plan, report. Each waits for the screen to show the result and throws with the
// message the screen showed when it refuses. Pages must be signed in (harness.signIn).

import { DEMO_PASSWORD, until } from './harness.mjs';

const SLOT_MS = 30 * 60e3;

/** Goes to an app route (e.g. '#/c/<id>') and renders it afresh even if it is the current one. */
export async function goto(page, hash) {
  const url = new URL(page.url());
  if (url.hash === hash) await page.reload();
  else if (url.pathname === '/' && url.protocol.startsWith('http')) await page.evaluate((h) => { location.hash = h; }, hash);
  else await page.goto(`${url.origin}/${hash}`);
}

/** The id in the current route '#/c/<id>[/…]', or null. */
export function routeId(page) {
  return new URL(page.url()).hash.match(/^#\/c\/([0-9a-f]{32})/)?.[1] ?? null;
}

/** Throws with the text of a visible form error in `scope` (testid ending in -error), if any. */
async function failIfError(scope, what) {
  const err = scope.locator('[data-testid$="-error"]');
  if (await err.count() && await err.first().isVisible()) {
    throw new Error(`${what}: ${await err.first().getAttribute('data-code')}: ${await err.first().innerText()}`);
  }
}

/** A datetime-local value for `ms` in Beijing time (minute precision). */
function beijingLocal(ms) {
  return new Date(ms + 8 * 3600e3).toISOString().slice(0, 16);
}

/** The consultation detail page, loaded; returns its locator. */
export async function openDetail(page, id) {
  await goto(page, `#/c/${id}`);
  const detail = page.locator(`[data-testid="detail"][data-id="${id}"]`);
  await until(`the detail page of ${id}`, async () => {
    if (await detail.isVisible()) return true;
    await failIfError(page.getByTestId('view'), `opening ${id}`);
    return false;
  }, 15000, 100);
  return detail;
}

/** Waits until the detail page of `id` shows `status`. */
export async function waitForStatus(page, id, status, ms = 15000) {
  const detail = page.locator(`[data-testid="detail"][data-id="${id}"]`);
  await until(`consultation ${id} to show status ${status}`, async () => {
    if ((await detail.getAttribute('data-status').catch(() => null)) === status) return true;
    await failIfError(page.getByTestId('view'), `waiting for ${status}`);
    return false;
  }, ms, 100);
}

/** The patient a consultation (会诊) names when a test does not say: the form asks for one. */
export const DEFAULT_PATIENT = {
  name: '测试患者', sex: 'male', birth_date: '1964-05-20',
  chief_complaint: '胸闷 3 月。', history: '活动后胸闷，休息可缓解。', diagnosis: '冠心病？', purpose: '明确诊断，制定治疗方案。',
};

/**
 * Fills the request form's patient block (opening it first for a kind where it is optional).
 * Fields left out of `patient` stay as they are.
 */
export async function fillPatient(page, patient) {
  const add = page.getByTestId('patient-add');
  if (await add.isVisible()) await add.click();
  await page.getByTestId('patient-body').waitFor();
  for (const [k, v] of Object.entries(patient)) {
    const el = page.getByTestId(`patient-${k}`);
    if (k === 'sex') await el.selectOption(v);
    else await el.fill(v);
  }
}

/**
 * A doctor requests a consultation through the request form; returns its id. An emergency
 * goes straight to the room (#/c/<id>/call); anything else to its detail page. A consultation
 * names its patient (DEFAULT_PATIENT unless `patient` says otherwise); the other kinds only
 * when given one.
 */
export async function requestConsultation(page, { kind = 'consultation', specialty = 'cardiology', urgency = 'routine', summary = 'Patient summary for the e2e test.', recording = 'off', patient = kind === 'consultation' ? DEFAULT_PATIENT : null } = {}) {
  await goto(page, '#/new');
  const form = page.getByTestId('request-form');
  await form.waitFor();
  await page.getByTestId('request-kind').selectOption(kind);
  await page.getByTestId('request-specialty').selectOption(specialty);
  await page.getByTestId('request-urgency').selectOption(urgency);
  await page.getByTestId('request-recording').selectOption(recording);
  if (patient) await fillPatient(page, patient);
  await page.getByTestId('request-summary').fill(summary);
  await page.getByTestId('request-submit').click();
  return until('the request to be created', async () => {
    const id = routeId(page);
    if (id) return id;
    await failIfError(form, 'request');
    return null;
  }, 15000, 100);
}

/** A doctor presses the emergency button on their home page; returns the id (the page is then in the call). */
export async function emergency(page, { specialty = 'cardiology', summary = 'Emergency: chest pain, ST elevation.' } = {}) {
  await goto(page, '#/');
  await page.getByTestId('emergency-button').click();
  await page.getByTestId('emergency-specialty').selectOption(specialty);
  await page.getByTestId('emergency-summary').fill(summary);
  await page.getByTestId('emergency-submit').click();
  return until('the emergency to open its room', async () => {
    const m = new URL(page.url()).hash.match(/^#\/c\/([0-9a-f]{32})\/call$/);
    if (m) return m[1];
    await failIfError(page.getByTestId('emergency-form'), 'emergency');
    return null;
  }, 15000, 100);
}

/**
 * A coordinator accepts a requested consultation for one specialist (username or display
 * name), starting `startInMinutes` from now, for `duration` minutes.
 * via 'form' (default; any start time, minute precision) uses the accept form on the detail
 * page; via 'drag' drags the request from the queue onto the calendar slot holding that time
 * (slots are 30 minutes, so the start is rounded down to a slot).
 */
export async function scheduleRequest(page, id, { specialist, startInMinutes = 60, duration = 30, via = 'form' } = {}) {
  if (!specialist) throw new Error('scheduleRequest needs a specialist');
  const at = Date.now() + startInMinutes * 60e3;
  if (via === 'drag') {
    await dragToSlot(page, id, specialist, at, duration);
  } else {
    await openDetail(page, id);
    const form = page.getByTestId('accept-form');
    await form.waitFor();
    const boxes = form.getByTestId('accept-specialist');
    let found = false;
    for (let i = 0; i < await boxes.count(); i++) {
      const box = boxes.nth(i);
      const label = await box.locator('xpath=..').innerText();
      const match = (await box.getAttribute('data-username')) === specialist || label.includes(specialist);
      if (match) found = true;
      if ((await box.isChecked()) !== match) await box.setChecked(match);
    }
    if (!found) throw new Error(`no specialist ${specialist} on the accept form`);
    await page.getByTestId('accept-start').fill(beijingLocal(at));
    await page.getByTestId('accept-duration').fill(String(duration));
    await page.getByTestId('accept-submit').click();
    await until(`consultation ${id} to be scheduled`, async () => {
      const status = await page.locator(`[data-testid="detail"][data-id="${id}"]`).getAttribute('data-status').catch(() => null);
      if (status === 'scheduled') return true;
      await failIfError(page.getByTestId('view'), 'schedule');
      return false;
    }, 15000, 100);
  }
}

/** The calendar slot of `specialist` (username or display name) holding the instant `at`. */
export async function findSlot(page, specialist, at) {
  const start = new Date(Math.floor(at / SLOT_MS) * SLOT_MS).toISOString();
  let row = page.locator(`[data-testid="calendar-row"][data-specialist="${specialist}"]`);
  if (!await row.count()) row = page.getByTestId('calendar-row').filter({ hasText: specialist });
  return row.locator(`[data-testid="slot"][data-start="${start}"]`);
}

/** Shows the calendar (the coordinator's home) with the slot of `at` in view; returns that slot. */
export async function showSlot(page, specialist, at) {
  if (new URL(page.url()).hash !== '#/' && new URL(page.url()).hash !== '') await goto(page, '#/');
  await page.getByTestId('calendar').waitFor();
  for (let tries = 0; tries < 12; tries++) {
    const slot = await findSlot(page, specialist, at);
    if (await slot.count()) return slot;
    // Move the calendar's window towards `at` (it shows eight hours).
    const first = await page.getByTestId('slot').first().getAttribute('data-start');
    const before = Date.parse(first);
    await page.getByTestId(at < before ? 'calendar-earlier' : 'calendar-later').click();
    await until('the calendar to move', async () => (await page.getByTestId('slot').first().getAttribute('data-start')) !== first, 10000, 100);
  }
  throw new Error(`no calendar slot for ${specialist} at ${new Date(at).toISOString()}`);
}

/**
 * Drags the queued request `id` onto `specialist`'s slot at `at` and waits for the outcome:
 * resolves when the request has left the queue (scheduled), throws with the calendar's error
 * (its data-code first, e.g. "specialist_busy: …") otherwise.
 */
export async function dragToSlot(page, id, specialist, at, duration = 30) {
  const slot = await showSlot(page, specialist, at);
  await page.getByTestId('calendar-duration').selectOption(String(duration));
  const item = page.locator(`[data-testid="queue-item"][data-id="${id}"]`);
  await item.waitFor();
  await item.dragTo(slot);
  await until(`request ${id} to be scheduled by the drop`, async () => {
    const err = page.getByTestId('calendar-error');
    if (await err.count()) throw new Error(`${await err.getAttribute('data-code')}: ${await err.innerText()}`);
    const notice = page.getByTestId('error-banner');
    return (await item.count()) === 0 && (await notice.getAttribute('class')) === 'notice';
  }, 15000, 100);
}

/**
 * Signs the opinion being written: the sign button opens the password dialog, the password goes
 * in, and the dialog closes once signed. Throws with the dialog's error (its data-code first,
 * e.g. "invalid_credentials: …") when it refuses; the dialog then stays open.
 */
export async function signWithPassword(page, password = DEMO_PASSWORD) {
  const dialog = page.getByTestId('sign-dialog');
  if (!await dialog.isVisible()) await page.getByTestId('opinion-sign').click();
  await dialog.waitFor();
  await page.getByTestId('sign-password').fill(password);
  await page.getByTestId('sign-submit').click();
  await until('the signing to be answered', async () => {
    const err = dialog.getByTestId('sign-error');
    if (await err.count() && await err.isVisible()) throw new Error(`${await err.getAttribute('data-code')}: ${await err.innerText()}`);
    return (await dialog.count()) === 0;
  }, 15000, 100);
}

/**
 * A specialist writes (and with sign: true signs, through the password dialog) their opinion
 * on the detail page.
 */
export async function writeOpinion(page, id, text, { sign = false, password = DEMO_PASSWORD } = {}) {
  await openDetail(page, id);
  await page.getByTestId('opinion-text').fill(text);
  if (sign) {
    // Signing asks for the password again: a signed opinion is frozen and legally binding.
    await signWithPassword(page, password);
  } else {
    await page.getByTestId('opinion-draft').click();
  }
  const want = sign ? 'true' : 'false';
  await until(`the opinion to be ${sign ? 'signed' : 'saved'}`, async () => {
    const mine = page.getByTestId('opinion').filter({ hasText: text.slice(0, 40) });
    if (await mine.count() && (await mine.first().getAttribute('data-signed')) === want) return true;
    await failIfError(page.getByTestId('view'), 'opinion');
    return false;
  }, 15000, 100);
}

/** The requesting doctor records the treatment plan; the consultation becomes `reported`. */
export async function recordPlan(page, id, text) {
  await openDetail(page, id);
  await page.getByTestId('plan-text').fill(text);
  await page.getByTestId('plan-submit').click();
  await waitForStatus(page, id, 'reported');
}

/** Opens the printable report; returns { locator, text }. */
export async function openReport(page, id) {
  await goto(page, `#/c/${id}/report`);
  const report = page.locator(`[data-testid="report"][data-id="${id}"]`);
  await until(`the report of ${id}`, async () => {
    if (await report.isVisible()) return true;
    await failIfError(page.getByTestId('view'), 'report');
    return false;
  }, 15000, 100);
  return { locator: report, text: await report.innerText() };
}
