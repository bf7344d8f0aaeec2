// Guest links and auto-admission (issue 14) in the real web client, in Chinese and in English.
// Each language walks one consultation: someone who may invite makes a one-time link on the
// consultation's page (the requesting doctor in Chinese, the host in English) and reads its
// address from the page (in Chinese also: the copy button fills the clipboard, a second link
// valid 2 hours is listed newest first, "copy again" hands out the first once more, and the
// second is withdrawn unused after the page asks); a browser with no sign-in opens it, sees
// no office, switches the language without losing the name typed, gives a name,
// reaches the pre-call screen and joins; though the host is in and the consultation live, the
// guest waits in the lobby, where the host sees them tagged 访客 / Guest and admits them; each
// then receives the other's video (frames decoded and advancing). The same link opened again
// in a fresh browser says it was used already. The link list shows the link used, by the name
// the guest gave. A reload of the guest's page goes straight back into the call (the link is
// not asked again). Withdrawing the link on the consultation's page takes the guest out at once:
// their page says the link was withdrawn, and a reload shows that again, not a way back in.
// A link that is not one is refused in English; a guest who comes two hours early is told when
// the room opens (its pre-call screen waits). Then the lobby's "admit all": two early arrivals of a scheduled consultation wait, the host
// comes in and lets both in with one click; a guest let in after them sees, when the host ends
// the consultation for all, a last page that says so and thanks them. And auto-admission: the coordinator turns it on on
// a teaching session's page, and an invited trainee who comes before the lecturer goes straight
// into the room.
//
//   node tests/e2e/guest.test.mjs     (prints a JSON summary; exit code 1 on failure)
//
// Screenshots: tests/e2e/artifacts/screens/guest-*.png.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ROOT, apiClient, launchBrowser, newPage, note, pageErrors, runTest, shot, signIn, startServer, until,
} from './lib/harness.mjs';
import { callState, joinCall, openCall, precallReady, snapshot, switchLanguage, videoPlaying } from './lib/call.mjs';
import { openDetail } from './lib/office.mjs';

const T = 'guest';
const PASSWORD = 'guest-walk-password-1';

/** The web client's catalogues (office and call texts) of a language. @param {string} lang */
async function catalogue(lang) {
  const read = async (/** @type {string} */ f) => JSON.parse(await readFile(join(ROOT, 'web-client/i18n', f), 'utf8'));
  return { ...await read(`${lang}.json`), ...await read(`call.${lang}.json`) };
}

/** Waits for `locator`'s text to equal `want` (a string) or match it (a RegExp); returns the text. */
async function textIs(locator, want, what, ms = 15000) {
  return until(`${what} (${want})`, async () => {
    const text = (await locator.innerText().catch(() => '')).trim();
    return (typeof want === 'string' ? text === want : want.test(text)) ? text : false;
  }, ms, 100);
}

/** Waits until `locator`'s attribute `name` is `want`. */
async function attrIs(locator, name, want, what, ms = 15000) {
  return until(`${what} (${name}=${want})`, async () => (await locator.getAttribute(name).catch(() => null)) === want, ms, 100);
}

/** The row of link `link` in the page's guest link list. */
const linkRow = (page, link) => page.locator(`[data-testid="guest-link"][data-link="${link}"]`);

/**
 * Makes a guest link on the consultation's page through its form (the default validity, a
 * label) and reads the address the page shows; returns { url, link }.
 */
async function createLink(page, origin, id, label) {
  await openDetail(page, id);
  const section = page.getByTestId('guest-links');
  await section.waitFor();
  const validity = await page.getByTestId('guest-validity').inputValue();
  if (validity !== '24') throw new Error(`a new link should be valid for 24 hours by default, the form offers ${validity}`);
  await page.getByTestId('guest-label').fill(label);
  await page.getByTestId('guest-create').click();
  const box = page.getByTestId('guest-url-box');
  await until('the new link\'s address on the page', async () => {
    const err = page.getByTestId('guest-create-error');
    if (await err.count()) throw new Error(`making the link failed: ${await err.getAttribute('data-code')}: ${await err.innerText()}`);
    return box.isVisible();
  }, 15000, 100);
  const url = await page.getByTestId('guest-url').inputValue();
  const link = await box.getAttribute('data-link');
  if (!url.startsWith(`${origin}/#/guest/`) || !link) throw new Error(`the page shows no guest address: ${url} (${link})`);
  if ((await page.getByTestId('guest-url').getAttribute('readonly')) === null) throw new Error('the address field is not read-only');
  await attrIs(linkRow(page, link), 'data-status', 'unused', 'the new link listed as unused');
  await textIs(linkRow(page, link).getByTestId('guest-link-label'), label, 'the new link listed with its label');
  return { url, link };
}

/** Opens a guest address in `page` and waits for the name form; checks the page shows nothing of the office. */
async function openGuestLink(page, url) {
  await page.goto(url);
  await page.getByTestId('guest-name-form').waitFor();
  const links = await page.locator('#header a, [data-testid="view"] a').count();
  if (links) throw new Error(`a guest's page offers ${links} link(s): the office must be out of reach`);
  if (await page.getByTestId('user-name').count() || await page.getByTestId('logout').count()) throw new Error('a guest\'s page shows a signed-in user');
}

/** Gives a name on the guest's page and enters; the page then shows `expect` (a testid). */
async function enterAs(page, name, expect) {
  await page.getByTestId('guest-name').fill(name);
  await page.getByTestId('guest-enter').click();
  await until(`the guest's page to show ${expect}`, async () => {
    if (await page.getByTestId(expect).isVisible().catch(() => false)) return true;
    const err = page.getByTestId('guest-name-error');
    if (expect !== 'guest-problem' && await err.count()) throw new Error(`entering failed: ${await err.getAttribute('data-code')}: ${await err.innerText()}`);
    const problem = page.getByTestId('guest-problem');
    if (expect !== 'guest-problem' && await problem.count()) throw new Error(`entering failed: ${await problem.getAttribute('data-code')}`);
    return false;
  }, 20000, 100);
}

await runTest(T, async (s) => {
  const server = await s.step('start the server', () => startServer());
  const { origin } = server;
  const api = apiClient(origin);
  const tok = {
    admin: await api.login('admin', server.adminPassword),
    coordinator: await api.login('coordinator'),
  };
  const user = (name) => api.user(tok.coordinator, name);
  const cat = { 'zh-CN': await catalogue('zh-CN'), en: await catalogue('en') };

  /** A request by `doctor`, scheduled by the coordinator with `lead` leading, starting in 5 minutes (the room is open). */
  const scheduled = async (doctor, lead, body) => {
    const dtok = await api.login(doctor);
    const c = await api.call(dtok, 'POST', '/v1/consultations', { urgency: 'routine', summary: 'E2E: guest links', ...body });
    await api.call(tok.coordinator, 'POST', `/v1/consultations/${c.id}/accept`, {
      specialists: [(await user(lead)).id], start: new Date(Date.now() + 5 * 60e3).toISOString(), duration_minutes: 30,
    });
    return c.id;
  };

  const { zh, en, admitAll, teaching, later } = await s.step('accounts and consultations', async () => {
    const sites = (await api.call(tok.admin, 'GET', '/v1/sites')).items;
    const city = sites.find((x) => x.level === 'city') ?? sites[0];
    // A lecturer of their own: the three demo specialists have slots already.
    await api.call(tok.admin, 'POST', '/v1/users', { username: 'pediatrician', display_name: '钱儿科 主任医师', role: 'specialist', password: PASSWORD, site_id: city.id, specialty: 'pediatrics' });
    const zh = await scheduled('doctor-east', 'cardiologist', { kind: 'consultation', specialty: 'cardiology' });
    const en = await scheduled('doctor-west', 'neurologist', { kind: 'case_discussion', specialty: 'neurology' });
    const admitAll = await scheduled('doctor-south', 'surgeon', { kind: 'consultation', specialty: 'general_surgery' });
    await api.call(tok.coordinator, 'POST', `/v1/consultations/${admitAll}/invite`, { participants: [(await user('trainee')).id] });
    const teaching = await scheduled('doctor-east', 'pediatrician', { kind: 'teaching', specialty: 'pediatrics' });
    await api.call(tok.coordinator, 'POST', `/v1/consultations/${teaching}/invite`, { participants: [(await user('trainee')).id] });
    // Two hours ahead: its room is not open yet.
    const dtok = await api.login('doctor-east');
    const c = await api.call(dtok, 'POST', '/v1/consultations', { kind: 'consultation', specialty: 'cardiology', urgency: 'routine', summary: 'E2E: later' });
    await api.call(tok.coordinator, 'POST', `/v1/consultations/${c.id}/accept`, {
      specialists: [(await user('cardiologist')).id], start: new Date(Date.now() + 2 * 3600e3).toISOString(), duration_minutes: 30,
    });
    return { zh, en, admitAll, teaching, later: c.id };
  });

  const browser = await launchBrowser();

  /**
   * One language's walk. `creator` makes the link (a page signed in already, or the host's);
   * `revoker` reads the list and withdraws the link; `host` is in the call.
   * @param {{ lang: 'zh-CN' | 'en', id: string, creator: any, host: any, hostName: string, revoker: any, guestName: string, label: string }} w
   */
  const walk = async (w) => {
    const L = cat[w.lang];
    const tag = w.lang === 'en' ? 'en' : 'zh';
    const hostUser = await user(w.hostName);
    const { url, link } = await s.step(`${tag}: a link made on the consultation's page`, () => createLink(w.creator, origin, w.id, w.label));
    const guestId = `guest-${link}`;
    if (w.lang === 'zh-CN') await s.step('zh: copy, copy again, and a second link (2 hours) withdrawn unused', () => copyAndSecond(w.creator, w.id, { url, link }));

    await s.step(`${tag}: the host is in, the consultation live`, async () => {
      await openCall(w.host, origin, w.id);
      await precallReady(w.host);
      const state = await joinCall(w.host);
      if (state !== 'joined') throw new Error(`the host should join at once, got ${state}`);
      await until('the consultation to be live', async () => (await api.call(tok.coordinator, 'GET', `/v1/consultations/${w.id}`)).status === 'live', 10000, 200);
    });

    const guest = await newPage(browser, { name: `${T}-${tag}-guest`, lang: w.lang });
    await s.step(`${tag}: the guest opens the link, gives a name and joins: the lobby`, async () => {
      await openGuestLink(guest, url);
      await textIs(guest.locator('[data-testid="guest-name-form"] h1'), L['guest.title'], 'the guest page\'s title');
      await guest.getByTestId('guest-intro').waitFor();
      await shot(guest, `${T}-${tag}-name`);
      if (w.lang === 'zh-CN') {
        // The language switch writes the page again in place; what was typed stays.
        await guest.getByTestId('guest-name').fill(w.guestName);
        await switchLanguage(guest, 'en');
        await textIs(guest.locator('[data-testid="guest-name-form"] h1'), cat.en['guest.title'], 'the title in English');
        if ((await guest.getByTestId('guest-name').inputValue()) !== w.guestName) throw new Error('the name typed was lost on the language switch');
        await switchLanguage(guest, 'zh-CN');
        await textIs(guest.locator('[data-testid="guest-name-form"] h1'), L['guest.title'], 'the title in Chinese again');
      }
      await enterAs(guest, w.guestName, 'precall');
      // The link is used up: out of the address bar; the pre-call screen has no way back.
      if (new URL(guest.url()).hash !== '#/guest') throw new Error(`the guest's address still holds the link: ${guest.url()}`);
      if (await guest.getByTestId('precall-back').count()) throw new Error('the guest\'s pre-call screen offers a way back into the office');
      await precallReady(guest);
      const state = await joinCall(guest);
      if (state !== 'lobby') throw new Error(`a guest should wait in the lobby although the consultation is live and the host in, got ${state}`);
      await guest.getByTestId('lobby-wait').waitFor();
    });

    await s.step(`${tag}: the host sees the guest tagged in the lobby and admits them`, async () => {
      const entry = w.host.locator(`[data-testid="lobby-entry"][data-participant="${guestId}"]`);
      await entry.waitFor();
      await attrIs(entry, 'data-guest', 'true', 'the lobby entry marked as a guest');
      await textIs(entry.getByTestId('lobby-guest'), L['call.tile.guest'], 'the guest tag in the lobby');
      if (!(await entry.innerText()).includes(w.guestName)) throw new Error(`the lobby entry does not show the name given: ${await entry.innerText()}`);
      await shot(w.host, `${T}-${tag}-lobby`);
      await entry.getByTestId('lobby-admit').click();
      await callState(guest, 'joined');
    });

    await s.step(`${tag}: each receives the other's video`, async () => {
      const [hostSees, guestSees] = await Promise.all([
        videoPlaying(w.host, guestId, { what: 'the guest on the host\'s page' }),
        videoPlaying(guest, hostUser.id, { what: 'the host on the guest\'s page' }),
      ]);
      const tile = w.host.locator(`[data-testid="tile"][data-participant="${guestId}"][data-source="person"]`);
      await textIs(tile.getByTestId('tile-guest'), L['call.tile.guest'], 'the guest tag on the guest\'s tile');
      await textIs(w.host.locator(`[data-testid="participant"][data-participant="${guestId}"]`).getByTestId('participant-guest'), L['call.tile.guest'], 'the guest tag in the participant list');
      const me = (await snapshot(guest)).me;
      if (me.id !== guestId || !me.guest || me.host || me.name !== w.guestName) throw new Error(`the guest's own entry: ${JSON.stringify(me)}`);
      s.checks[`${tag}Media`] = { hostSees: { frames: hostSees.frames, brightness: Math.round(hostSees.brightness) }, guestSees: { frames: guestSees.frames, brightness: Math.round(guestSees.brightness) } };
      await shot(w.host, `${T}-${tag}-host-call`);
      await shot(guest, `${T}-${tag}-guest-call`);
    });

    await s.step(`${tag}: the link opened again elsewhere: used already`, async () => {
      const other = await newPage(browser, { name: `${T}-${tag}-second`, lang: w.lang });
      await openGuestLink(other, url);
      await enterAs(other, 'Someone else', 'guest-problem');
      const err = other.getByTestId('guest-error');
      await attrIs(err, 'data-code', 'guest_link_used', 'the refusal\'s code');
      await textIs(err, L['error.guest_link_used'], 'the refusal in the page\'s language');
      await shot(other, `${T}-${tag}-used`);
      await other.close();
    });

    // Read on the withdrawer's page: in English the creator is the host, in the call.
    await s.step(`${tag}: the link list shows it used, by the name given`, async () => {
      await openDetail(w.revoker, w.id);
      const row = linkRow(w.revoker, link);
      await attrIs(row, 'data-status', 'used', 'the link listed as used');
      await textIs(row.getByTestId('guest-link-status'), L['guests.status.used_by'].replace('{name}', w.guestName), 'the status naming the guest');
      if (await row.getByTestId('guest-link-copy').count()) throw new Error('a used link is offered to copy again');
      await row.getByTestId('guest-link-revoke').waitFor();
      await shot(w.revoker, `${T}-${tag}-links`);
    });

    await s.step(`${tag}: a reload of the guest's page goes straight back in`, async () => {
      const precalls = [];
      await guest.reload();
      await callState(guest, 'joined', 30000);
      if (await guest.getByTestId('precall').count()) precalls.push('precall');
      if (await guest.getByTestId('guest-name-form').count()) precalls.push('name form');
      if (precalls.length) throw new Error(`after a reload the guest saw ${precalls.join(', ')}`);
      const back = await videoPlaying(w.host, guestId, { what: 'the guest on the host\'s page after the guest\'s reload' });
      s.checks[`${tag}AfterReload`] = { frames: back.frames };
    });

    await s.step(`${tag}: the link withdrawn on the consultation's page takes the guest out`, async () => {
      await openDetail(w.revoker, w.id);
      const row = linkRow(w.revoker, link);
      await row.getByTestId('guest-link-revoke').click();
      await row.getByTestId('guest-link-revoke-confirm').click();
      await attrIs(linkRow(w.revoker, link), 'data-status', 'revoked', 'the link listed as withdrawn');
      await textIs(linkRow(w.revoker, link).getByTestId('guest-link-status'), L['guests.status.revoked'], 'the withdrawn status in words');
      const done = guest.getByTestId('guest-done');
      await done.waitFor();
      await attrIs(done, 'data-phase', 'removed', 'the guest\'s call ended by removal');
      await attrIs(done, 'data-problem', 'guest_link_revoked', 'the reason: the link withdrawn');
      await textIs(guest.getByTestId('guest-done-text'), L['error.guest_link_revoked'], 'the guest told the link was withdrawn');
      await textIs(guest.getByTestId('guest-thanks'), L['guest.thanks'], 'the guest thanked');
      if (await guest.locator('a, [data-testid="call"]').count()) throw new Error('the guest\'s last page offers a link or still shows the call');
      await until('the guest to leave the host\'s list', async () => (await w.host.locator(`[data-testid="participant"][data-participant="${guestId}"]`).count()) === 0, 10000, 100);
      await shot(guest, `${T}-${tag}-removed`);
      await shot(w.revoker, `${T}-${tag}-links-revoked`);
      // A reload shows the same page, not a way back in.
      await guest.reload();
      await guest.getByTestId('guest-done').waitFor();
      if (await guest.getByTestId('precall').count()) throw new Error('after the withdrawal a reload offers the call again');
    });

    for (const p of [guest, w.host, w.creator, w.revoker]) {
      const errors = pageErrors(p);
      if (errors.length) throw new Error(`uncaught errors on a page: ${errors.join(' | ')}`);
    }
    await guest.close();
  };

  /**
   * The copy button puts the address on the clipboard; a second link valid for 2 hours is
   * listed with its expiry; "copy again" on the first (still unused) shows and copies its
   * address; the second, never used, is withdrawn after the page asks.
   */
  const copyAndSecond = async (page, id, first) => {
    const L = cat['zh-CN'];
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
    await page.getByTestId('guest-copy').click();
    await attrIs(page.getByTestId('guest-copy-status'), 'data-state', 'copied', 'the copy reported');
    await textIs(page.getByTestId('guest-copy-status'), L['guests.copied'], 'the copy said in Chinese');
    const clip = await page.evaluate(() => navigator.clipboard.readText());
    if (clip !== first.url) throw new Error(`the clipboard holds ${clip}, not the address shown`);
    await page.getByTestId('guest-label').fill('患者家属');
    await page.getByTestId('guest-validity').selectOption('2');
    await page.getByTestId('guest-create').click();
    const box = page.getByTestId('guest-url-box');
    await until('the second link\'s address', async () => {
      const l = await box.getAttribute('data-link').catch(() => null);
      return l && l !== first.link ? l : null;
    }, 15000, 100);
    const second = await box.getAttribute('data-link');
    const rec = (await api.call(tok.coordinator, 'GET', `/v1/consultations/${id}`)).guests.find((g) => g.id === second);
    const hours = (Date.parse(rec.expires_at.replace(/(\.\d{3})\d+/, '$1')) - Date.parse(rec.created_at.replace(/(\.\d{3})\d+/, '$1'))) / 3600e3;
    if (Math.abs(hours - 2) > 0.01 || rec.label !== '患者家属') throw new Error(`the second link: ${JSON.stringify(rec)}`);
    await attrIs(page.getByTestId('guest-link-list'), 'data-count', '2', 'two links listed');
    // Newest first.
    if ((await page.getByTestId('guest-link').first().getAttribute('data-link')) !== second) throw new Error('the newest link is not listed first');
    await linkRow(page, first.link).getByTestId('guest-link-copy').click();
    await attrIs(box, 'data-link', first.link, 'the first link\'s address shown again');
    await attrIs(page.getByTestId('guest-copy-status'), 'data-state', 'copied', 'the first link copied again');
    const again = await page.getByTestId('guest-url').inputValue();
    if (!again.startsWith(`${origin}/#/guest/`) || (await page.evaluate(() => navigator.clipboard.readText())) !== again) throw new Error(`copy again: ${again}`);
    const row = linkRow(page, second);
    await row.getByTestId('guest-link-revoke').click();
    await textIs(row.getByTestId('guest-link-revoke-question'), L['guests.revoke_confirm'], 'the question before withdrawing');
    await row.getByTestId('guest-link-revoke-confirm').click();
    await attrIs(linkRow(page, second), 'data-status', 'revoked', 'the unused second link withdrawn');
    if (await linkRow(page, second).getByTestId('guest-link-copy').count()) throw new Error('a withdrawn link is offered to copy');
    s.checks.secondLink = { hours, label: rec.label };
  };

  // Chinese: the requesting doctor makes and withdraws the link; the lead specialist hosts.
  const doctorEast = await newPage(browser, { name: `${T}-zh-doctor`, lang: 'zh-CN' });
  await signIn(doctorEast, origin, 'doctor-east');
  const cardiologist = await newPage(browser, { name: `${T}-zh-host`, lang: 'zh-CN' });
  await signIn(cardiologist, origin, 'cardiologist');
  await s.step('zh: the requester has guest links but no admission setting', async () => {
    await openDetail(doctorEast, zh);
    await doctorEast.getByTestId('guest-links').waitFor();
    if (await doctorEast.getByTestId('room-settings').count()) throw new Error('the requester of a routine consultation is offered the admission setting');
  });
  await walk({ lang: 'zh-CN', id: zh, creator: doctorEast, host: cardiologist, hostName: 'cardiologist', revoker: doctorEast, guestName: '王教授（省人民医院）', label: '外院专家' });
  await cardiologist.close();

  // English: the host makes the link before joining; the requesting doctor withdraws it.
  const neurologist = await newPage(browser, { name: `${T}-en-host`, lang: 'en' });
  await signIn(neurologist, origin, 'neurologist');
  const doctorWest = await newPage(browser, { name: `${T}-en-doctor`, lang: 'en' });
  await signIn(doctorWest, origin, 'doctor-west');
  await walk({ lang: 'en', id: en, creator: neurologist, host: neurologist, hostName: 'neurologist', revoker: doctorWest, guestName: 'Dr. Mary Smith', label: 'Visiting radiologist' });
  await neurologist.close();
  await doctorWest.close();

  await s.step('a link that is not one, and a guest before the room opens: said, in English', async () => {
    const page = await newPage(browser, { name: `${T}-early-guest`, lang: 'en' });
    await openGuestLink(page, `${origin}/#/guest/not-a-link`);
    await enterAs(page, 'Someone', 'guest-problem');
    await attrIs(page.getByTestId('guest-error'), 'data-code', 'guest_link_invalid', 'an invalid link refused');
    await textIs(page.getByTestId('guest-error'), cat.en['error.guest_link_invalid'], 'the refusal in English');
    // Made through the API: the UI made the others.
    const made = await api.call(tok.coordinator, 'POST', `/v1/consultations/${later}/guest_links`, { label: 'early', valid_hours: 8 });
    await openGuestLink(page, `${origin}${made.path}`);
    await enterAs(page, 'Early Bird', 'precall');
    const msg = page.getByTestId('join-window');
    await attrIs(msg, 'data-state', 'not_open', 'the room not open yet');
    await textIs(page.getByTestId('join-window-wait'), /^The room opens at .+ \(Beijing time\)\. This page joins automatically when it opens\.$/, 'when it opens, in English');
    if (await page.getByTestId('join-call').isEnabled()) throw new Error('the guest may join before the room opens');
    await shot(page, `${T}-early`);
    if (pageErrors(page).length) throw new Error(`uncaught errors: ${pageErrors(page).join(' | ')}`);
    await page.close();
  });

  await s.step('admit all: two early arrivals wait, one click lets both in; a guest sees the end', async () => {
    const south = await newPage(browser, { name: `${T}-admit-doctor`, lang: 'zh-CN' });
    const trainee = await newPage(browser, { name: `${T}-admit-trainee`, lang: 'en' });
    const surgeon = await newPage(browser, { name: `${T}-admit-host`, lang: 'zh-CN' });
    const early = [[south, 'doctor-south'], [trainee, 'trainee']];
    await Promise.all(early.map(async ([p, name]) => {
      await signIn(p, origin, name);
      await openCall(p, origin, admitAll);
      await precallReady(p);
      const state = await joinCall(p);
      if (state !== 'lobby') throw new Error(`${name} came before the host of a scheduled consultation and should wait, got ${state}`);
    }));
    await signIn(surgeon, origin, 'surgeon');
    await openCall(surgeon, origin, admitAll);
    await precallReady(surgeon);
    if ((await joinCall(surgeon)) !== 'joined') throw new Error('the host should join at once');
    const lobby = surgeon.getByTestId('lobby-panel');
    await attrIs(lobby, 'data-count', '2', 'both early arrivals in the host\'s lobby');
    // A host's arrival does not admit them: they still wait.
    for (const [p, name] of early) if ((await callState(p, ['lobby', 'joined'])) !== 'lobby') throw new Error(`${name} was let in without an admission`);
    const button = surgeon.getByTestId('lobby-admit-all');
    await textIs(button, cat['zh-CN']['call.lobby.admit_all'], 'the admit-all button');
    await shot(surgeon, `${T}-admit-all`);
    await button.click();
    await Promise.all(early.map(([p]) => callState(p, 'joined')));
    await until('the host\'s lobby to empty', async () => await lobby.isHidden(), 10000, 100);
    const ids = (await snapshot(surgeon)).participants.map((p) => p.id);
    for (const name of ['doctor-south', 'trainee']) if (!ids.includes((await user(name)).id)) throw new Error(`${name} is not in the room after admit all: ${ids}`);
    s.checks.admitAll = ids.length;
    // A guest let in on their own; the host ends the consultation for all: the guest's last
    // page says it has ended and thanks them.
    const made = await api.call(tok.coordinator, 'POST', `/v1/consultations/${admitAll}/guest_links`, {});
    const guest = await newPage(browser, { name: `${T}-admit-guest`, lang: 'en' });
    await openGuestLink(guest, `${origin}${made.path}`);
    await enterAs(guest, 'Family member', 'precall');
    await precallReady(guest);
    if ((await joinCall(guest)) !== 'lobby') throw new Error('the guest should wait in the lobby');
    const entry = surgeon.locator(`[data-testid="lobby-entry"][data-participant="guest-${made.link.id}"]`);
    await textIs(entry.getByTestId('lobby-guest'), cat['zh-CN']['call.tile.guest'], 'the guest tagged 访客');
    await entry.getByTestId('lobby-admit').click();
    await callState(guest, 'joined');
    await surgeon.getByTestId('ctl-end').click();
    await surgeon.getByTestId('ctl-end-confirm').click();
    const done = guest.getByTestId('guest-done');
    await done.waitFor();
    await attrIs(done, 'data-phase', 'ended', 'the guest\'s call ended for all');
    await textIs(guest.getByTestId('guest-done-title'), cat.en['guest.end.ended'], 'the end said in English');
    await textIs(guest.getByTestId('guest-thanks'), cat.en['guest.thanks'], 'the guest thanked');
    await shot(guest, `${T}-ended`);
    await guest.reload();
    await attrIs(guest.getByTestId('guest-done'), 'data-phase', 'ended', 'the same last page after a reload');
    for (const p of [south, trainee, surgeon, guest]) {
      if (pageErrors(p).length) throw new Error(`uncaught errors: ${pageErrors(p).join(' | ')}`);
      await p.close();
    }
  });

  await s.step('auto-admission: turned on on the page, an invited trainee goes straight in before the lecturer', async () => {
    const coordinator = await newPage(browser, { name: `${T}-auto-coordinator`, lang: 'en' });
    await signIn(coordinator, origin, 'coordinator');
    await openDetail(coordinator, teaching);
    const settings = coordinator.getByTestId('room-settings');
    await settings.waitFor();
    await textIs(settings.locator('label.check'), cat.en['settings.auto_admit'], 'the setting in English');
    const box = coordinator.getByTestId('auto-admit');
    if (await box.isChecked()) throw new Error('auto-admission should start off');
    await box.check();
    await attrIs(coordinator.getByTestId('room-settings'), 'data-auto-admit', 'true', 'the page showing auto-admission on');
    await textIs(coordinator.getByTestId('error-banner'), cat.en['settings.auto_admit_on'], 'the notice that it is on');
    if (!(await api.call(tok.coordinator, 'GET', `/v1/consultations/${teaching}`)).auto_admit) throw new Error('the consultation does not have auto_admit on');
    await shot(coordinator, `${T}-auto-admit`);
    const trainee = await newPage(browser, { name: `${T}-auto-trainee`, lang: 'zh-CN' });
    await signIn(trainee, origin, 'trainee');
    await openCall(trainee, origin, teaching);
    await precallReady(trainee);
    const state = await joinCall(trainee);
    if (state !== 'joined') throw new Error(`with auto-admission an invited trainee should go straight in, got ${state}`);
    const snap = await snapshot(trainee);
    if (snap.participants.some((p) => p.host)) throw new Error('a host is in the room: the trainee was not early');
    if ((await api.call(tok.coordinator, 'GET', `/v1/consultations/${teaching}`)).status !== 'scheduled') throw new Error('the consultation should still be scheduled: no host came');
    await shot(trainee, `${T}-auto-trainee`);
    s.checks.autoAdmit = { state, participants: snap.participants.length };
    for (const p of [coordinator, trainee]) {
      if (pageErrors(p).length) throw new Error(`uncaught errors: ${pageErrors(p).join(' | ')}`);
    }
  });

  await s.step('the audit trail has the guest steps', async () => {
    const { items } = await api.call(tok.admin, 'GET', `/v1/audit?consultation=${zh}&limit=1000`);
    const actions = new Set(items.map((r) => r.action));
    for (const a of ['consultation.guest_link_create', 'consultation.guest_arrived', 'consultation.guest_join_token', 'consultation.guest_link_revoke']) {
      if (!actions.has(a)) throw new Error(`no ${a} in the trail of ${zh}: ${[...actions]}`);
    }
    const settings = await api.call(tok.admin, 'GET', `/v1/audit?consultation=${teaching}&action=consultation.settings`);
    if (!settings.items.length) throw new Error('no consultation.settings in the trail');
    note('audit trail checked');
  });
});
