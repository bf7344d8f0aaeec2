// Case discussion (issue 6): five sites on video in the real web client — the requesting
// county doctor, two city specialists and two invited doctors from other sites. Everyone sees
// everyone (frames advancing, not black); one specialist shares a screen (imaging), sent as
// its own track, and every other page receives and plays it, shown large. Grid and speaker
// view screenshots.
//
//   node tests/e2e/discussion.test.mjs     (prints a JSON summary; exit code 1 on failure)
//
// Headless Chromium returns a synthetic surface from getDisplayMedia with
// --use-fake-ui-for-media-stream plus --auto-select-desktop-capture-source.

import {
  apiClient, launchBrowser, newPage, note, pageErrors, runTest, shot, signIn, startServer, until,
} from './lib/harness.mjs';
import { callState, openCall, precallReady, remoteVideo, snapshot, videoPlaying, MIN_FRAMES } from './lib/call.mjs';

const T = 'discussion';
const SITES = ['doctor-east', 'neurologist', 'cardiologist', 'doctor-west', 'doctor-south'];

await runTest(T, async (summary) => {
  const srv = await summary.step('start server', () => startServer({ demo: true }));
  const api = apiClient(srv.origin);
  const coord = await api.login('coordinator');
  /** @type {Record<string, any>} */
  const users = {};
  for (const u of SITES) users[u] = await api.user(coord, u);

  const id = await summary.step('case discussion scheduled and started', async () => {
    const doctor = await api.login('doctor-east');
    const c = await api.call(doctor, 'POST', '/v1/consultations', {
      kind: 'case_discussion', specialty: 'neurology', urgency: 'urgent',
      summary: 'E2E: 多中心病例讨论——急性缺血性卒中取栓指征', participants: [users['doctor-west'].id, users['doctor-south'].id],
    });
    await api.call(coord, 'POST', `/v1/consultations/${c.id}/accept`, {
      specialists: [users.neurologist.id, users.cardiologist.id], start: new Date(Date.now() + 5 * 60e3).toISOString(), duration_minutes: 45,
    });
    await api.call(coord, 'POST', `/v1/consultations/${c.id}/start`);
    return c.id;
  });
  summary.consultation = id;

  const browser = await launchBrowser({ capture: '640x360', args: ['--auto-select-desktop-capture-source=Entire screen'] });
  /** @type {Record<string, import('playwright-core').Page>} */
  const pages = {};
  for (const [i, u] of SITES.entries()) pages[u] = await newPage(browser, { name: `${T}-${u}`, lang: i % 2 ? 'en' : 'zh-CN', viewport: { width: 1280, height: 800 } });

  await summary.step('five sites join', async () => {
    await Promise.all(SITES.map(async (u) => {
      const p = pages[u];
      await signIn(p, srv.origin, u);
      await openCall(p, srv.origin, id);
      await precallReady(p, 30000);
      await p.getByTestId('join-call').click();
      await callState(p, 'joined', 30000);
    }));
  });

  await summary.step('everyone sees everyone', async () => {
    const checks = [];
    for (const u of SITES) {
      for (const other of SITES) {
        if (other !== u) checks.push(videoPlaying(pages[u], users[other].id, { deadlineMs: 60000, what: `${other} on ${u}'s page` }).then((r) => [`${u}<-${other}`, r.frames]));
      }
    }
    summary.checks.videoMatrix = Object.fromEntries(await Promise.all(checks));
    await shot(pages['doctor-east'], `${T}-grid`);
  });

  // The cardiologist shares imaging: a screen track of its own, shown large everywhere.
  const sharer = 'cardiologist';
  await summary.step('screen share reaches every site', async () => {
    await pages[sharer].getByTestId('ctl-screen').click();
    const s = await until('the screen share to be published', async () => {
      const st = await snapshot(pages[sharer]);
      const errors = await pages[sharer].getByTestId('call-notice').filter({ hasText: /.+/ }).allInnerTexts();
      if (errors.some((e) => /screen|屏幕/i.test(e))) throw new Error(`screen share failed on the sharer's page: ${errors.join(' ')}`);
      return st?.published.find((n) => n.startsWith('screen')) ?? null;
    }, 20000);
    summary.checks.screenTrack = s;
    const got = {};
    for (const u of SITES.filter((x) => x !== sharer)) {
      // A synthetic capture surface may be dark: require frames that advance on a screen
      // tile placed in the main view; brightness is reported, not required.
      const r = await until(`the screen share to play on ${u}'s page`, async () => {
        const v = await remoteVideo(pages[u], users[sharer].id, 'screen');
        return v && v.frames > MIN_FRAMES && v.width > 0 ? v : null;
      }, 60000, 300);
      const place = await pages[u].locator(`[data-testid="tile"][data-source="screen"][data-participant="${users[sharer].id}"]`).getAttribute('data-place');
      if (place !== 'main') throw new Error(`the screen share should be the large view on ${u}'s page, is ${place}`);
      got[u] = { frames: r.frames, size: `${r.width}x${r.height}`, brightness: r.brightness == null ? null : Math.round(r.brightness) };
    }
    summary.checks.screenReceived = got;
    await shot(pages['doctor-east'], `${T}-speaker-screen`);
    await shot(pages[sharer], `${T}-sharer`);
  });

  await summary.step('grid view with the screen share', async () => {
    const p = pages['doctor-west'];
    await p.getByTestId('ctl-layout').click();
    await until('the grid layout', async () => (await p.getByTestId('stage').getAttribute('data-layout')) === 'grid', 5000, 100);
    await videoPlaying(p, users.neurologist.id, { what: 'the neurologist in the grid' });
    await videoPlaying(p, users[sharer].id, { source: 'screen', what: 'the screen share in the grid' }).catch(() => null);
    await shot(p, `${T}-grid-with-screen`);
  });

  // A host (the lead specialist) removes a site: that page is told and leaves the call, the
  // others see the tile go.
  await summary.step('a host removes a participant', async () => {
    const host = pages.neurologist;
    const row = host.locator(`[data-testid="participant"][data-participant="${users['doctor-south'].id}"]`);
    await row.getByTestId('host-remove').click();
    await row.getByTestId('host-remove-confirm').click();
    await callState(pages['doctor-south'], 'removed');
    await until('the removed site to leave the other pages', async () =>
      (await pages['doctor-east'].locator(`[data-testid="tile"][data-participant="${users['doctor-south'].id}"]`).count()) === 0, 10000, 100);
    await shot(pages['doctor-south'], `${T}-removed`);
  });

  // The sharer's camera must keep playing while the screen is shared: adding the screen track
  // renegotiates the sharer's publish connection, which must not disturb the camera already
  // being forwarded.
  await summary.step('the sharer\'s camera keeps playing during the share', async () => {
    try {
      await Promise.all(SITES.filter((u) => u !== sharer && u !== 'doctor-south').map((u) => videoPlaying(pages[u], users[sharer].id, { what: `the sharer's camera on ${u}'s page` })));
    } catch (e) {
      summary.diagnostics = {
        sharerSends: await pages[sharer].evaluate(() => /** @type {any} */ (window).hzCall.rtp()),
        receiver: await pages['doctor-west'].evaluate(() => /** @type {any} */ (window).hzCall.rtp()),
        receiverMessages: (await snapshot(pages['doctor-west'])).received,
      };
      throw e;
    }
  });

  for (const u of SITES) {
    const errs = pageErrors(pages[u]);
    if (errs.length) throw new Error(`uncaught errors on ${u}'s page: ${errs.join('; ')}`);
  }
  note('discussion checks passed');
});
