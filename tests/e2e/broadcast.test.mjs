// Teaching broadcast (issue 6): one surgeon (the host, who publishes two cameras) and ten
// trainees (teaching audience: joins without can_publish) in the real web client. Trainees
// receive video (frames advancing, not black) at the low layer they choose, have no way to
// publish (no controls; a publish on a trainee's own token is refused by the server), send
// questions to the moderators (`to_hosts`: other trainees never see them), raise a hand, and the
// moderator lets one speak: that trainee's page then publishes and the surgeon sees and hears them.
// A question waits for the moderator: the first trainee joins before the surgeon and asks; the
// surgeon sees the question on joining, and again (once) after a reload.
// A reload brings the surgeon's cameras back as they were (the issue "the web client as
// hospital staff meet it"): the browser runs with four fake cameras; the surgeon picks the
// third before joining, moves the main camera with "switch camera" to the fourth, adds a camera
// (which takes the first, free), mutes the microphone, reloads, and is back publishing mic, cam
// and cam2 on the fourth and first devices, muted; the trainees then receive both cameras.
// (Chromium's second fake camera is a depth camera whose 16-bit frames WebRTC does not encode,
// and the third sends MJPEG: the cameras published are the first and the fourth, plain I420.)
// The call reads 教学查房 / Teaching rounds, not a broadcast.
//
//   node tests/e2e/broadcast.test.mjs     (prints a JSON summary; exit code 1 on failure)

import {
  apiClient, launchBrowser, newPage, note, pageErrors, runTest, shot, signIn, startServer, until,
} from './lib/harness.mjs';
import { audioHeard, callState, chatShown, openCall, precallReady, sendChat, snapshot, videoPlaying } from './lib/call.mjs';

const T = 'broadcast';
const TRAINEES = Number(process.env.E2E_TRAINEES ?? 10);
const PASSWORD = 'trainee-password-1';

await runTest(T, async (summary) => {
  const srv = await summary.step('start server', () => startServer({ demo: true }));
  const api = apiClient(srv.origin);
  const admin = await api.login('admin', srv.adminPassword);
  const coord = await api.login('coordinator');
  const surgeonUser = await api.user(coord, 'surgeon');

  // 1. Set-up through the API: trainee accounts, a teaching session, invitations, start.
  const { id, trainees } = await summary.step('trainees, teaching consultation, invitations', async () => {
    const sites = (await api.call(admin, 'GET', '/v1/sites')).items;
    const county = sites.find((s) => s.level === 'county') ?? sites[0];
    const trainees = [];
    for (let i = 1; i <= TRAINEES; i++) {
      const n = String(i).padStart(2, '0');
      trainees.push(await api.call(admin, 'POST', '/v1/users', {
        username: `trainee-${n}`, display_name: `规培医生 ${n}`, role: 'doctor', password: PASSWORD, site_id: county.id,
      }));
    }
    const doctor = await api.login('doctor-east');
    const c = await api.call(doctor, 'POST', '/v1/consultations', { kind: 'teaching', specialty: 'general_surgery', urgency: 'routine', summary: 'E2E: 腹腔镜胆囊切除术教学查房' });
    await api.call(coord, 'POST', `/v1/consultations/${c.id}/accept`, { specialists: [surgeonUser.id], start: new Date(Date.now() + 5 * 60e3).toISOString(), duration_minutes: 60 });
    await api.call(coord, 'POST', `/v1/consultations/${c.id}/invite`, { participants: trainees.map((t) => t.id) });
    // Live at once: trainees go straight in instead of waiting to be admitted one by one.
    await api.call(coord, 'POST', `/v1/consultations/${c.id}/start`);
    return { id: c.id, trainees };
  });
  summary.consultation = id;

  // Four fake cameras (Chromium's fake capture takes a device count; the last
  // --use-fake-device-for-media-stream on the command line wins).
  const browser = await launchBrowser({ capture: '640x360', args: ['--use-fake-device-for-media-stream=device-count=4'] });
  const surgeon = await newPage(browser, { name: `${T}-surgeon`, lang: 'zh-CN' });
  const pages = [];
  for (let i = 0; i < trainees.length; i++) {
    pages.push(await newPage(browser, { name: `${T}-trainee-${i + 1}`, lang: i % 2 ? 'zh-CN' : 'en', viewport: { width: 1024, height: 768 } }));
  }

  const early = 'Will the recording of this session be available afterwards?';
  /** The chat lines on a page with `text`, once the page has read the room's chat history. @param {import('playwright-core').Page} page @param {string} text */
  const linesWith = async (page, text) => {
    await until('the chat history to arrive', async () => ((await snapshot(page))?.received.chat_history ?? 0) >= 1, 15000, 100);
    return page.locator('[data-testid="chat-message"]', { hasText: text });
  };

  // 1b. A trainee comes in before the moderator and asks: the question is accepted with no host
  // in the room, and shown to the asker as a question to the moderators.
  await summary.step('a trainee asks before the moderator is there', async () => {
    const p = pages[0];
    await signIn(p, srv.origin, trainees[0].username, PASSWORD);
    await openCall(p, srv.origin, id);
    await precallReady(p, 30000);
    await p.getByTestId('join-call').click();
    await callState(p, 'joined', 30000);
    const s = await snapshot(p);
    if (s.participants.some((/** @type {any} */ x) => x.host)) throw new Error('a host is in the room already: the question would not wait');
    if ((await p.getByTestId('chat-form').getAttribute('data-mode')) !== 'qa') throw new Error('the trainee chat is not in Q&A mode');
    await sendChat(p, early);
    await chatShown(p, early);
    const mine = p.locator('[data-testid="chat-message"]', { hasText: early });
    const meta = await mine.getByTestId('chat-meta').innerText();
    if ((await mine.getAttribute('data-question')) !== 'true' || !meta.includes('question to the moderators')) {
      throw new Error(`the asker's log should show a question to the moderators: "${meta}"`);
    }
    if (await p.getByTestId('call-notice').isVisible() && (await p.getByTestId('call-notice').getAttribute('data-kind')) === 'error') {
      throw new Error(`the question was refused: ${await p.getByTestId('call-notice').innerText()}`);
    }
    if ((await p.getByTestId('chat-input').inputValue()) !== '') throw new Error('the question stayed in the input: not acknowledged');
    summary.checks.earlyQuestion = { meta };
  });

  /** Waits until the surgeon publishes mic, cam and cam2 over a connected publish connection. */
  const publishingAll = () => until('the surgeon to publish mic, cam and cam2', async () => {
    const s = await snapshot(surgeon);
    return ['mic', 'cam', 'cam2'].every((n) => s?.published.includes(n)) && s.pc.publish === 'connected' ? s : null;
  }, 20000);

  // 2. The surgeon joins and publishes two cameras (the operating field and the room): the
  // main camera chosen on the pre-call screen, then switched in the call to the fourth device,
  // the extra camera on the first.
  const devices = await summary.step('surgeon joins with two cameras', async () => {
    await signIn(surgeon, srv.origin, 'surgeon');
    await openCall(surgeon, srv.origin, id);
    await precallReady(surgeon);
    const cameras = await surgeon.getByTestId('precall-camera').locator('option').evaluateAll((os) => os.map((o) => /** @type {HTMLOptionElement} */ (o).value));
    if (cameras.length !== 4) throw new Error(`the browser should offer four fake cameras, offers ${cameras.length}`);
    await surgeon.getByTestId('precall-camera').selectOption(cameras[2]);
    await until('the preview to show the camera chosen', async () => (await surgeon.getByTestId('precall-preview').evaluate((v) => /** @type {any} */ (v).srcObject?.getVideoTracks()[0]?.getSettings().deviceId)) === cameras[2], 10000, 100);
    await surgeon.getByTestId('join-call').click();
    await callState(surgeon, 'joined');
    const title = await surgeon.getByTestId('call-title').innerText();
    if (title !== '教学查房') throw new Error(`a teaching session's call should read 教学查房, reads "${title}"`);
    const first = (await snapshot(surgeon)).local.cam.deviceId;
    if (first !== cameras[2]) throw new Error('the call should send the camera chosen before joining');
    await surgeon.getByTestId('ctl-switch-camera').click();
    await until('the main camera to move to the next device', async () => (await snapshot(surgeon)).local.cam?.deviceId === cameras[3], 10000, 100);
    await surgeon.getByTestId('ctl-add-camera').click();
    await surgeon.getByTestId('ctl-mic').click();
    const s = await publishingAll();
    const local = { cam: s.local.cam.deviceId, cam2: s.local.cam2.deviceId };
    if (local.cam !== cameras[3] || local.cam2 !== cameras[0]) throw new Error(`the main camera should be the fourth device and the extra one the first: ${JSON.stringify({ local, cameras })}`);
    if (!s.micMuted || s.local.mic.enabled) throw new Error('the microphone should be muted');
    // The question asked before the surgeon came, from the trainee, marked as a question.
    await chatShown(surgeon, early);
    const q = await linesWith(surgeon, early);
    const meta = await q.getByTestId('chat-meta').innerText();
    if ((await q.count()) !== 1 || (await q.getAttribute('data-question')) !== 'true' || (await q.getAttribute('data-from')) !== trainees[0].id || !meta.includes('学员提问')) {
      throw new Error(`the early question should reach the moderator once, as a trainee's question: ${await q.count()} shown, "${meta}"`);
    }
    summary.checks.earlyQuestionSeen = meta;
    await shot(surgeon, `${T}-surgeon-early-question`);
    return local;
  });
  summary.checks.cameras = devices;

  // 2b. A reload: straight back into the call with both cameras on their devices, muted as before.
  await summary.step('surgeon reloads: cameras and mute come back as they were', async () => {
    await surgeon.reload();
    await callState(surgeon, 'joined', 30000);
    const s = await publishingAll();
    const back = { cam: s.local.cam.deviceId, cam2: s.local.cam2.deviceId };
    if (back.cam !== devices.cam || back.cam2 !== devices.cam2) throw new Error(`the cameras came back on other devices: before ${JSON.stringify(devices)}, after ${JSON.stringify(back)}`);
    if (!s.micMuted || s.local.mic.enabled || (await surgeon.getByTestId('ctl-mic').getAttribute('data-muted')) !== 'true') throw new Error('the microphone should still be muted after the reload');
    const offer = await surgeon.getByTestId('ctl-add-camera').innerText();
    if (offer !== '移除额外摄像头') throw new Error(`with the extra camera back, the bar should offer to remove it, offers "${offer}"`);
    // The question is still there after the reload, once.
    const q = await linesWith(surgeon, early);
    if ((await q.count()) !== 1) throw new Error(`after the reload the early question should show once, shows ${await q.count()} times`);
    summary.checks.afterReload = { ...back, micMuted: s.micMuted };
    await shot(surgeon, `${T}-surgeon-after-reload`);
    // Speaking again for the rest of the class.
    await surgeon.getByTestId('ctl-mic').click();
    await until('the microphone to be on', async () => !(await snapshot(surgeon)).micMuted, 5000, 100);
  });

  // 3. Trainees: a watch page without publishing controls; the low layer chosen. (The first
  // is in the room already: 1b.)
  await summary.step('trainees join the watch page', async () => {
    await Promise.all(pages.map(async (p, i) => {
      if (i > 0) {
        await signIn(p, srv.origin, trainees[i].username, PASSWORD);
        await openCall(p, srv.origin, id);
        await precallReady(p, 30000);
        await p.getByTestId('precall-role').waitFor();
        if (i === 1) await shot(p, `${T}-trainee-precall`);
        await p.getByTestId('join-call').click();
        await callState(p, 'joined', 30000);
      }
      await p.getByTestId('layer-select').selectOption('low');
      const title = await p.getByTestId('call-title').innerText();
      if (title !== (i % 2 ? '教学查房' : 'Teaching rounds')) throw new Error(`trainee ${i + 1}'s call title reads "${title}"`);
    }));
    for (const p of pages) {
      for (const id of ['ctl-mic', 'ctl-camera', 'ctl-screen', 'ctl-add-camera', 'ctl-end']) {
        if (await p.getByTestId(id).count()) throw new Error(`a trainee page offers ${id}`);
      }
      const s = await snapshot(p);
      if (s.me.can_publish || s.published.length) throw new Error(`trainee ${s.me.name} may publish or publishes: ${JSON.stringify(s.published)}`);
    }
    // A class is not a roster: each trainee is shown the surgeon and itself, the surgeon
    // every trainee (protocol.md §Audience).
    const ids = (/** @type {any} */ s) => s.participants.map((/** @type {any} */ x) => x.id).sort();
    for (const [i, p] of pages.entries()) {
      const shown = ids(await snapshot(p));
      const want = [surgeonUser.id, trainees[i].id].sort();
      if (JSON.stringify(shown) !== JSON.stringify(want)) throw new Error(`trainee ${i + 1} should be shown the surgeon and itself, is shown ${JSON.stringify(shown)}`);
    }
    const all = await until('the surgeon to be shown every trainee', async () => {
      const shown = ids(await snapshot(surgeon));
      return trainees.every((t) => shown.includes(t.id)) ? shown : null;
    }, 10000, 100);
    summary.checks.audience = { traineeShown: 2, surgeonShown: all.length };
  });

  await summary.step('every trainee receives the surgeon', async () => {
    const seen = await Promise.all(pages.map((p, i) => videoPlaying(p, surgeonUser.id, { deadlineMs: 60000, what: `the surgeon on trainee ${i + 1}'s page` })));
    summary.checks.traineesReceive = seen.map((r) => ({ frames: r.frames, brightness: Math.round(r.brightness), size: `${r.width}x${r.height}` }));
    // The low layer of a 640x360 camera is at most 320 wide: the chooser reached the server.
    const big = seen.filter((r) => r.width > 320);
    if (big.length) throw new Error(`trainees chose the low layer but ${big.length} receive ${big[0].width}px wide video`);
    const second = await videoPlaying(pages[0], surgeonUser.id, { source: 'camera2', deadlineMs: 30000, what: 'the surgeon\'s second camera on trainee 1\'s page' });
    summary.checks.secondCamera = { frames: second.frames, size: `${second.width}x${second.height}` };
    await shot(pages[0], `${T}-trainee-watch`);
    await shot(surgeon, `${T}-surgeon`);
  });

  // 4. The server refuses a publish on a trainee's token (not just the UI hiding it). The
  // demo account `trainee`, invited too but not on a page, speaks the protocol directly.
  await summary.step('a trainee\'s publish is refused', async () => {
    const spare = await api.login('trainee');
    const spareUser = await api.user(coord, 'trainee');
    await api.call(coord, 'POST', `/v1/consultations/${id}/invite`, { participants: [spareUser.id] });
    const join = await api.call(spare, 'POST', `/v1/consultations/${id}/join`, {});
    if (join.grants.can_publish) throw new Error('a trainee\'s join grants can_publish');
    const seen = await pages[pages.length - 1].evaluate(async ({ path, token }) => {
      const pc = new RTCPeerConnection();
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      pc.addTransceiver(stream.getAudioTracks()[0], { direction: 'sendonly' });
      await pc.setLocalDescription(await pc.createOffer());
      // Opened only now: no await between here and setting onopen.
      const ws = new WebSocket(`ws://${location.host}${path}?token=${encodeURIComponent(token)}`);
      /** @type {string[]} */
      const log = [];
      return new Promise((resolve) => {
        const done = (/** @type {string} */ r) => { resolve({ result: r, log }); ws.close(); pc.close(); stream.getTracks().forEach((t) => t.stop()); };
        ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', id: 'h', version: 1 }));
        ws.onmessage = (ev) => {
          const m = JSON.parse(ev.data);
          log.push(`${m.type}${m.code ? ` ${m.code}` : ''}${m.id ? ` #${m.id}` : ''}`);
          if (m.type === 'hello') ws.send(JSON.stringify({ type: 'publish', id: 'p', sdp: pc.localDescription?.sdp }));
          if (m.id === 'p') done(m.type === 'error' ? m.code : m.type);
        };
        ws.onclose = (ev) => done(`closed ${ev.code}`);
        setTimeout(() => done('timeout'), 10000);
      });
    }, { path: join.signaling_path, token: join.token });
    if (seen.result !== 'publish_not_allowed') throw new Error(`a trainee's publish should be refused with publish_not_allowed, got ${seen.result} (${seen.log.join(', ')})`);
    summary.checks.publishRefused = seen.result;
  });

  // 5. Q&A: a question goes to the moderators only; a hand goes up.
  await summary.step('Q&A to the moderator, raised hand', async () => {
    const q = 'Why clip the cystic artery before the duct?';
    if ((await pages[0].getByTestId('chat-form').getAttribute('data-mode')) !== 'qa') throw new Error('the trainee chat is not in Q&A mode');
    await sendChat(pages[0], q);
    await chatShown(surgeon, q);
    const msg = surgeon.locator('[data-testid="chat-message"]', { hasText: q });
    if ((await msg.getAttribute('data-question')) !== 'true' || (await msg.getAttribute('data-from')) !== trainees[0].id) {
      throw new Error('the question did not arrive as a question from the trainee');
    }
    // Another trainee must not see it, nor the one asked before (the round trip of a later
    // room message proves delivery; the history that trainee got on joining came before).
    await sendChat(surgeon, '请大家注意胆囊三角的解剖。');
    await chatShown(pages[1], '请大家注意胆囊三角的解剖。');
    const seen = await pages[1].getByTestId('chat-text').allInnerTexts();
    if (seen.includes(q) || seen.includes(early)) throw new Error('another trainee saw a question to the moderators');
    await pages[0].getByTestId('ctl-hand').click();
    await surgeon.locator(`[data-testid="participant"][data-participant="${trainees[0].id}"][data-hand="true"]`).waitFor();
    await shot(surgeon, `${T}-surgeon-question`);
  });

  // 6. The moderator lets the trainee speak. The trainee is asked first: declining gives the
  // floor back (the moderator's list shows it), accepting opens the camera and microphone and
  // the surgeon gets them.
  await summary.step('the moderator promotes a trainee', async () => {
    const row = surgeon.locator(`[data-testid="participant"][data-participant="${trainees[0].id}"]`);
    await row.getByTestId('host-promote').click();
    const ask = pages[0].getByTestId('floor-ask');
    await ask.waitFor();
    await shot(pages[0], `${T}-trainee-asked`);
    await pages[0].getByTestId('floor-ask-no').click();
    await until('the floor to be given back', async () => {
      const s = await snapshot(pages[0]);
      if (s?.published.length) throw new Error(`a trainee who declined published ${s.published}`);
      return s && !s.me.can_publish;
    }, 10000);
    await row.getByTestId('host-promote').waitFor();
    await row.getByTestId('host-promote').click();
    await pages[0].getByTestId('floor-ask-yes').click();
    await until('the promoted trainee to publish', async () => {
      const s = await snapshot(pages[0]);
      return s?.me.can_publish && s.published.includes('mic') && s.published.includes('cam') ? s.published : null;
    }, 20000);
    const v = await videoPlaying(surgeon, trainees[0].id, { what: 'the promoted trainee on the surgeon\'s page' });
    const a = await audioHeard(surgeon, trainees[0].id);
    // Another trainee is shown the one who has the floor now, and hears the question too.
    await until('trainee 2 to be shown the trainee who has the floor', async () => (await snapshot(pages[1])).participants.some((/** @type {any} */ x) => x.id === trainees[0].id), 10000, 100);
    const a2 = await audioHeard(pages[1], trainees[0].id);
    summary.checks.promoted = { surgeonSees: { frames: v.frames, brightness: Math.round(v.brightness) }, surgeonHears: a, otherTraineeHears: a2 };
    if (!(await pages[0].getByTestId('ctl-mic').count())) throw new Error('the promoted trainee has no microphone control');
    await shot(surgeon, `${T}-surgeon-promoted`);
    await shot(pages[0], `${T}-trainee-promoted`);
  });

  for (const p of [surgeon, ...pages]) {
    const errs = pageErrors(p);
    if (errs.length) throw new Error(`uncaught errors on a page: ${errs.join('; ')}`);
  }
  note('broadcast checks passed');
});
