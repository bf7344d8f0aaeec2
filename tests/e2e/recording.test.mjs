// Recording in the browser (issue 7): an emergency consultation with recording allowed, its
// requesting doctor hosts and a second doctor is invited. The host starts recording from the
// call's control bar; both pages show the indicator; the guest is asked for consent and
// declines; the host sees the decline; the guest's page says they are not recorded; the host
// stops; the indicators go away; the consultation page lists the recording with its files
// (the guest's left out), a file downloads through a one-minute link (the browser's own
// download, checked against the manifest's size and sha256), and an admin deletes it.
// Last, a consultation whose recording is `required` starts recording by itself and refuses
// the host's stop with the reason; a recorder that fails (a size limit) shows hosts a banner.
// The host's page is in Chinese, the guest's in English. A viewer (the demo trainee, who
// only watches and sends nothing) sees the indicator and is told why they are not asked, but
// gets no consent prompt.
//
//   node tests/e2e/recording.test.mjs     (prints a JSON summary; exit code 1 on failure)

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';

import {
  apiClient, launchBrowser, newPage, note, pageErrors, runTest, shot, signIn, startServer, until,
} from './lib/harness.mjs';
import { callState, joinCall, openCall, precallReady, snapshot, videoPlaying } from './lib/call.mjs';
import { openDetail } from './lib/office.mjs';

const T = 'recording';

await runTest(T, async (summary) => {
  const srv = await summary.step('start server', () => startServer({ demo: true }));
  const api = apiClient(srv.origin);
  const tok = {
    host: await api.login('doctor-east'),
    guest: await api.login('doctor-west'),
    coordinator: await api.login('coordinator'),
  };
  const hostUser = await api.user(tok.coordinator, 'doctor-east');
  const guestUser = await api.user(tok.coordinator, 'doctor-west');
  const viewerUser = await api.user(tok.coordinator, 'trainee');

  // 1. An emergency (live at once, its requester hosts) with recording allowed; the second
  // doctor is invited by the coordinator.
  const id = await summary.step('emergency with recording allowed, guest invited', async () => {
    const c = await api.call(tok.host, 'POST', '/v1/consultations', {
      kind: 'consultation', specialty: 'cardiology', urgency: 'emergency', recording: 'allowed',
      summary: 'E2E 录制：急性胸痛，需远程会诊。',
    });
    if (c.status !== 'live') throw new Error(`an emergency should be live at once, is ${c.status}`);
    await api.call(tok.coordinator, 'POST', `/v1/consultations/${c.id}/invite`, { participants: [guestUser.id, viewerUser.id] });
    return c.id;
  });
  summary.consultation = id;

  const browser = await launchBrowser({ capture: '320x180' });
  const host = await newPage(browser, { name: `${T}-host`, lang: 'zh-CN' });
  const guest = await newPage(browser, { name: `${T}-guest`, lang: 'en' });
  const viewer = await newPage(browser, { name: `${T}-viewer`, lang: 'zh-CN', viewport: { width: 1024, height: 768 } });
  const indicator = (page) => page.getByTestId('recording-indicator');
  const recState = async (page) => (await snapshot(page))?.recording ?? null;

  // 2. Both in the call; media flows (the recording has something to capture).
  await summary.step('both join the call', async () => {
    await Promise.all([signIn(host, srv.origin, 'doctor-east'), signIn(guest, srv.origin, 'doctor-west')]);
    await openCall(host, srv.origin, id);
    await precallReady(host);
    if ((await joinCall(host)) !== 'joined') throw new Error('the host of a live emergency should join at once');
    await openCall(guest, srv.origin, id);
    await precallReady(guest);
    if ((await joinCall(guest)) === 'lobby') {
      await host.locator(`[data-testid="lobby-entry"][data-participant="${guestUser.id}"]`).getByTestId('lobby-admit').click();
      await callState(guest, 'joined');
    }
    await videoPlaying(guest, hostUser.id, { what: 'the host on the guest\'s page', deadlineMs: 30000 });
    // The viewer watches: no camera, no microphone (the pre-call screen says so).
    await signIn(viewer, srv.origin, 'trainee');
    await openCall(viewer, srv.origin, id);
    await precallReady(viewer);
    await viewer.getByTestId('precall-role').waitFor();
    if ((await joinCall(viewer)) === 'lobby') {
      await host.locator(`[data-testid="lobby-entry"][data-participant="${viewerUser.id}"]`).getByTestId('lobby-admit').click();
      await callState(viewer, 'joined');
    }
    const vs = await snapshot(viewer);
    if (vs.me.can_publish || vs.published.length) throw new Error(`the viewer should only watch: ${JSON.stringify({ canPublish: vs.me.can_publish, published: vs.published })}`);
    // The record button is for hosts with the grant only.
    await host.getByTestId('ctl-record').waitFor();
    if (await guest.getByTestId('ctl-record').count()) throw new Error('the guest (no can_record) must not get a record button');
    const [hs, gs] = [await recState(host), await recState(guest)];
    if (!hs?.canRecord || gs?.canRecord || hs.active || gs.active) throw new Error(`unexpected recording state before start: host ${JSON.stringify(hs)}, guest ${JSON.stringify(gs)}`);
    if ((await indicator(host).getAttribute('data-active')) === 'true') throw new Error('indicator shown before recording');
  });

  // 3. The host starts recording from the UI: both pages show the indicator; the guest is asked.
  const rid = await summary.step('host starts recording; indicators and the consent prompt', async () => {
    const label = await host.getByTestId('ctl-record').innerText();
    await host.getByTestId('ctl-record').click();
    const [hs, gs] = await Promise.all([host, guest].map((p) => until('the recording indicator', async () => {
      const s = await recState(p);
      return s?.active && (await indicator(p).getAttribute('data-active')) === 'true' && (await p.getByTestId('recording-label').isVisible()) ? s : null;
    }, 15000, 150)));
    if (!hs.id || hs.id !== gs.id || hs.by !== hostUser.id) throw new Error(`the pages disagree on the recording: ${JSON.stringify({ hs, gs })}`);
    const hostLabel = await host.getByTestId('recording-label').innerText();
    const guestLabel = await guest.getByTestId('recording-label').innerText();
    const guestMeta = await guest.getByTestId('recording-meta').innerText();
    if (hostLabel !== '录制中' || guestLabel !== 'Recording') throw new Error(`indicator text: host "${hostLabel}", guest "${guestLabel}"`);
    if (!guestMeta.includes('started by')) throw new Error(`the guest's indicator should say who started it: "${guestMeta}"`);
    for (const p of [host, guest]) {
      const all = await indicator(p).innerText();
      if (/\b(false|true|null|undefined)\b/.test(all)) throw new Error(`the indicator shows a raw value: "${all}"`);
    }
    // The one who started it is not asked; the guest is.
    const prompt = guest.getByTestId('recording-consent');
    await prompt.waitFor();
    const text = await prompt.innerText();
    if (!/left out of the recording/.test(text)) throw new Error(`the prompt should explain declining: "${text}"`);
    if (await host.getByTestId('recording-consent').count()) throw new Error('the host who started the recording should not be asked');
    // The viewer: the indicator and a note saying why they are not asked; no prompt. The note
    // and the prompt are drawn together (recording.js), so once the note shows, a prompt would too.
    const why = viewer.locator('[data-testid="recording-excluded-note"][data-why="watching"]');
    await until('the viewer\'s indicator and note', async () => (await indicator(viewer).getAttribute('data-active')) === 'true' && await why.isVisible(), 15000, 150);
    const viewerNote = await why.innerText();
    if (!viewerNote.includes('无需同意')) throw new Error(`the viewer should be told why they are not asked: "${viewerNote}"`);
    if (await viewer.getByTestId('recording-consent').count()) throw new Error('a viewer who sends nothing must not be asked to consent');
    const vrec = await recState(viewer);
    if (!vrec?.active || vrec.id !== hs.id || vrec.consent !== null) throw new Error(`the viewer's recording state: ${JSON.stringify(vrec)}`);
    summary.checks.viewer = { note: viewerNote, indicator: await indicator(viewer).innerText() };
    await shot(viewer, `${T}-viewer-recording-no-prompt`);
    if ((await host.getByTestId('ctl-record').innerText()) === label) throw new Error('the record button should now offer to stop');
    summary.checks.started = { recording: hs.id, hostButtonBefore: label, guestIndicator: `${guestLabel} ${guestMeta}`, prompt: text };
    await shot(guest, `${T}-guest-consent-prompt`);
    await shot(host, `${T}-host-recording`);
    return hs.id;
  });

  // 4. The guest declines: the host is told, the guest's page says they are not recorded.
  await summary.step('guest declines', async () => {
    await guest.getByTestId('recording-consent-decline').click();
    await until('the consent prompt to close', async () => (await guest.getByTestId('recording-consent').count()) === 0, 10000, 100);
    await host.locator(`[data-testid="recording-answer"][data-participant="${guestUser.id}"][data-consent="false"]`).waitFor();
    const gs = await until('the guest to be excluded', async () => {
      const s = await recState(guest);
      return s?.excluded.includes(guestUser.id) && s.consent === false ? s : null;
    }, 10000, 100);
    await guest.getByTestId('recording-excluded').waitFor();
    const note2 = guest.getByTestId('recording-excluded-note');
    await note2.waitFor();
    const badge = await guest.getByTestId('recording-excluded').innerText();
    if (badge !== 'You are not being recorded') throw new Error(`the guest's badge: "${badge}"`);
    const hs = await until('the host to see the guest excluded', async () => {
      const s = await recState(host);
      return s?.excluded.includes(guestUser.id) && s.answers.some((a) => a.participant === guestUser.id && a.consent === false) ? s : null;
    }, 10000, 100);
    const answerText = await host.getByTestId('recording-answers').innerText();
    if (!answerText.includes('已拒绝')) throw new Error(`the host's list should say the guest declined: "${answerText}"`);
    summary.checks.declined = { guestBadge: badge, guestNote: await note2.innerText(), hostAnswers: answerText, excluded: hs.excluded, guestConsent: gs.consent };
    await shot(host, `${T}-host-sees-decline`);
    await shot(guest, `${T}-guest-not-recorded`);
  });

  // 5. The host stops: the indicators go away.
  await summary.step('host stops recording', async () => {
    await host.getByTestId('ctl-record').click();
    await Promise.all([host, guest].map((p) => until('the indicator to go away', async () => {
      const s = await recState(p);
      return s && !s.active && (await indicator(p).getAttribute('data-active')) === 'false' && (await indicator(p).innerText()).trim() === '';
    }, 15000, 150)));
    if (await guest.getByTestId('recording-excluded-note').isVisible()) throw new Error('the "not recorded" note should go with the recording');
    await until('the viewer\'s indicator and note to go', async () => (await indicator(viewer).getAttribute('data-active')) === 'false' && !(await viewer.getByTestId('recording-excluded-note').isVisible()), 10000, 150);
    if (await viewer.getByTestId('recording-consent').count()) throw new Error('the viewer was asked after all');
    await shot(guest, `${T}-guest-after-stop`);
    await viewer.getByTestId('ctl-leave').click();
    await callState(viewer, 'left');
  });

  // 6. The consultation page lists the recording with its files once they are finalised.
  await summary.step('recording listed on the consultation page', async () => {
    await openDetail(host, id);
    const item = host.locator(`[data-testid="recording"][data-id="${rid}"]`);
    let probes = 0;
    await until('the recording to be listed as complete with its files', async () => {
      if ((await item.getAttribute('data-state').catch(() => null)) === 'complete' && await item.getByTestId('recording-file').count()) return true;
      // The page looks again by itself while finalising; press refresh now and then as well.
      if (++probes % 12 === 0 && await host.getByTestId('recordings-refresh').isVisible()) await host.getByTestId('recordings-refresh').click();
      return false;
    }, 60000, 250);
    const list = await api.call(tok.host, 'GET', `/v1/consultations/${id}/recordings`);
    const rec = list.items.find((r) => r.id === rid);
    const files = rec?.manifest?.files ?? [];
    if (!rec || rec.state !== 'complete' || !files.length) throw new Error(`the API should list the complete recording: ${JSON.stringify(rec)}`);
    if (!rec.excluded.includes(guestUser.id)) throw new Error(`the guest should be excluded: ${rec.excluded}`);
    if (files.some((f) => f.participants.includes(guestUser.id))) throw new Error('the guest declined: no file may hold their media');
    const shown = await item.getByTestId('recording-file').evaluateAll((els) => els.map((e) => ({ name: e.getAttribute('data-name'), bytes: Number(e.getAttribute('data-bytes')), size: e.querySelector('[data-testid="recording-file-size"]')?.textContent })));
    if (shown.length !== files.length) throw new Error(`the page shows ${shown.length} files, the manifest has ${files.length}`);
    const excludedText = await item.getByTestId('recording-excluded').innerText();
    if (!excludedText.includes(guestUser.display_name)) throw new Error(`the page should name who declined: "${excludedText}"`);
    // A download is the browser's own, through a one-minute link: the file streams to disk.
    const first = files[0];
    const download = host.waitForEvent('download', { timeout: 20000 });
    await item.locator(`[data-testid="recording-download"][data-name="${first.name}"]`).click();
    const dl = await download;
    const failure = await dl.failure();
    if (failure) throw new Error(`the download failed: ${failure}`);
    const bytes = await readFile(await dl.path());
    if (bytes.length !== first.bytes) throw new Error(`downloaded ${bytes.length} bytes, the manifest says ${first.bytes}`);
    const sha = createHash('sha256').update(bytes).digest('hex');
    if (sha !== first.sha256) throw new Error(`downloaded sha256 ${sha}, the manifest says ${first.sha256}`);
    summary.checks.listed = { state: rec.state, files: shown, excluded: excludedText, download: { name: dl.suggestedFilename(), bytes: bytes.length } };
    await item.scrollIntoViewIfNeeded();
    await shot(host, `${T}-host-recordings-list`);
  });

  // 6b. An admin (named in the consultation) deletes the recording from the same page.
  await summary.step('admin deletes the recording', async () => {
    const adminTok = await api.login('admin', srv.adminPassword);
    const adminUser = await api.user(adminTok, 'admin');
    await api.call(tok.coordinator, 'POST', `/v1/consultations/${id}/invite`, { participants: [adminUser.id] });
    const admin = await newPage(browser, { name: `${T}-admin`, lang: 'en' });
    await signIn(admin, srv.origin, 'admin', srv.adminPassword);
    await openDetail(admin, id);
    const item = admin.locator(`[data-testid="recording"][data-id="${rid}"]`);
    await item.waitFor();
    if (await host.getByTestId('recording-delete').count()) throw new Error('only admins may delete: the host should get no delete button');
    admin.once('dialog', (d) => d.accept());
    await item.getByTestId('recording-delete').click();
    await admin.getByTestId('recordings-empty').waitFor();
    const list = await api.call(adminTok, 'GET', `/v1/consultations/${id}/recordings`);
    if (list.items.length) throw new Error(`the recording should be gone: ${JSON.stringify(list.items)}`);
    summary.checks.deleted = true;
    const errs = pageErrors(admin);
    if (errs.length) throw new Error(`uncaught errors on the admin's page: ${errs.join('; ')}`);
    await admin.context().close();
  });

  // 7. A consultation that must be recorded: the recording starts by itself when the host
  // arrives, and stopping it is refused with the reason in the user's language.
  await summary.step('required recording cannot be stopped', async () => {
    const c = await api.call(tok.host, 'POST', '/v1/consultations', {
      kind: 'consultation', specialty: 'neurology', urgency: 'emergency', recording: 'required', summary: 'E2E 必须录制',
    });
    await openCall(host, srv.origin, c.id);
    await precallReady(host);
    await joinCall(host, 'joined');
    await until('the required recording to start by itself', async () => (await recState(host))?.active && (await indicator(host).getAttribute('data-active')) === 'true', 15000, 150);
    // The automatic start may name no starter: then the host is asked like everyone else.
    if (await host.getByTestId('recording-consent').count()) await host.getByTestId('recording-consent-agree').click();
    await host.getByTestId('ctl-record').click();
    const notice = host.locator('[data-testid="call-notice"][data-kind="error"]');
    await notice.waitFor();
    const text = await notice.innerText();
    if (text !== '本会诊必须全程录制，无法停止录制。') throw new Error(`the refusal should be explained: "${text}"`);
    if (!(await recState(host))?.active) throw new Error('the required recording should still run');
    summary.checks.required = { refusal: text };
    await shot(host, `${T}-host-required-refused`);
  });

  // 8. The recorder fails (here: a size limit of 1 byte, which counts as disk_full): the
  // indicator goes and the host gets a banner saying why.
  await summary.step('recording_failed banner (size limit)', async () => {
    const small = await startServer({ demo: true, extraToml: '[recording]\nmax_bytes = 1', logName: `${T}-server-small` });
    const api2 = apiClient(small.origin);
    const c = await api2.call(await api2.login('doctor-east'), 'POST', '/v1/consultations', {
      kind: 'consultation', specialty: 'cardiology', urgency: 'emergency', recording: 'allowed', summary: 'E2E disk full',
    });
    const p = await newPage(browser, { name: `${T}-host-small`, lang: 'en' });
    await signIn(p, small.origin, 'doctor-east');
    await openCall(p, small.origin, c.id);
    await precallReady(p);
    await joinCall(p, 'joined');
    await p.getByTestId('ctl-record').click();
    const banner = p.locator('[data-testid="recording-failed"][data-code="disk_full"]');
    await banner.waitFor({ timeout: 30000 });
    const text = await banner.innerText();
    if (!/disk is full/.test(text)) throw new Error(`the banner should say the disk is full: "${text}"`);
    await until('the indicator to go after the failure', async () => !(await recState(p))?.active && (await indicator(p).getAttribute('data-active')) === 'false', 10000, 150);
    summary.checks.failed = { banner: text };
    await shot(p, `${T}-host-recording-failed`);
    const errs = pageErrors(p);
    if (errs.length) throw new Error(`uncaught errors on the page: ${errs.join('; ')}`);
  });

  for (const [n, p] of [['host', host], ['guest', guest], ['viewer', viewer]]) {
    const errs = pageErrors(p);
    if (errs.length) throw new Error(`uncaught errors on the ${n}'s page: ${errs.join('; ')}`);
  }
  note('recording checks passed');
});
