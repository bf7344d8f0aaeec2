// Case discussion (issue 6): five sites on video in the real web client — the requesting
// county doctor, two city specialists and two invited doctors from other sites. Everyone sees
// everyone (frames advancing, not black); one specialist shares a screen (imaging), sent as
// its own track, and every other page receives and plays it, shown large. Grid and speaker
// view screenshots. The call as hospital screens need it, in Chinese and in English: it fills
// the viewport at 1280×800, 1024×768 and 768×1024 (no page scroll, the whole toolbar with leave
// and end on screen, the tiles using the stage); a camera turned off shows the surname; a
// pinned participant is the large view and the server sends it the high layer and the
// thumbnails the low one (set_layer on the wire, the received sizes), unpinning restores the
// grid; a tile and the shared screen go full screen and Esc comes back; a header link asks
// before leaving the call (staying keeps it, leaving says goodbye to the room).
//
//   node tests/e2e/discussion.test.mjs     (prints a JSON summary; exit code 1 on failure)
//
// Headless Chromium returns a synthetic surface from getDisplayMedia with
// --use-fake-ui-for-media-stream plus --auto-select-desktop-capture-source.

import {
  apiClient, launchBrowser, newPage, note, pageErrors, runTest, shot, signIn, startServer, until,
} from './lib/harness.mjs';
import {
  callFits, callState, openCall, precallReady, remoteVideo, snapshot, videoPlaying, watchLayers, MIN_FRAMES,
} from './lib/call.mjs';

const T = 'discussion';

/**
 * Puts a tile in full screen with its own button and checks it: the tile is the page's
 * full-screen element, covers the viewport, shows its whole picture (object-fit: contain).
 * @param {import('playwright-core').Page} p @param {string} selector @param {string} participant
 */
async function fullScreen(p, selector, participant) {
  await p.locator(selector).getByTestId('tile-fullscreen').click();
  await until('the tile to be full screen', async () => (await p.evaluate(() => /** @type {HTMLElement | null} */ (document.fullscreenElement)?.dataset.participant ?? null)) === participant, 5000, 100);
  const fs = await p.evaluate(() => {
    const el = /** @type {HTMLElement} */ (document.fullscreenElement);
    const r = el.getBoundingClientRect();
    const v = /** @type {HTMLVideoElement} */ (el.querySelector('video'));
    return { source: el.dataset.source, size: `${Math.round(r.width)}x${Math.round(r.height)}`, viewport: `${innerWidth}x${innerHeight}`, objectFit: getComputedStyle(v).objectFit, videoShown: !v.hidden && v.getBoundingClientRect().width >= r.width - 4 };
  });
  if (fs.size !== fs.viewport) throw new Error(`the full-screen tile should cover the screen: ${JSON.stringify(fs)}`);
  if (fs.objectFit !== 'contain' || !fs.videoShown) throw new Error(`the full-screen video should show the whole picture across the screen: ${JSON.stringify(fs)}`);
  return fs;
}
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
  /** @type {Record<string, ReturnType<typeof watchLayers>>} the set_layer requests each page sends */
  const layers = {};
  for (const u of SITES) layers[u] = watchLayers(pages[u]);
  /** A person's tile on a page (source: person | screen). @param {string} u @param {string} [source] */
  const tileOf = (u, source = 'person') => `[data-testid="tile"][data-participant="${users[u].id}"][data-source="${source}"]`;
  /**
   * Waits until the video of `u` that page `p` receives has a width `ok` accepts (the server
   * switched layers); on failure says what was received and what `u`'s page was sending.
   * @param {import('playwright-core').Page} p @param {string} u @param {string} what @param {(width: number) => boolean} ok
   */
  const received = async (p, u, what, ok) => {
    /** @type {any} */
    let last = null;
    try {
      return await until(what, async () => {
        const r = (last = await remoteVideo(p, users[u].id));
        return r && r.width > 0 && ok(r.width) ? r : null;
      }, 15000, 200);
    } catch (e) {
      const sending = (await pages[u].evaluate(() => /** @type {any} */ (window).hzCall.rtp())).filter((x) => x.type === 'outbound-rtp' && x.kind === 'video');
      throw new Error(`${/** @type {Error} */ (e).message}; received: ${JSON.stringify(last)}; ${u} sends: ${JSON.stringify(sending)}`);
    }
  };
  /** The width of the low simulcast layer (rid q) that `u`'s page sends of its camera. @param {string} u */
  const qWidth = async (u) => {
    const q = await until(`${u}'s page to send the low layer`, async () =>
      (await pages[u].evaluate(() => /** @type {any} */ (window).hzCall.rtp())).find((x) => x.type === 'outbound-rtp' && x.kind === 'video' && x.rid === 'q' && x.size) ?? null, 10000, 200);
    return Number(q.size.split('x')[0]);
  };
  // Two viewers for the layout checks: a county doctor in Chinese, the host in English.
  const viewers = /** @type {const} */ ([['doctor-east', 'zh', false], ['neurologist', 'en', true]]);

  await summary.step('five sites join', async () => {
    await Promise.all(SITES.map(async (u) => {
      const p = pages[u];
      await signIn(p, srv.origin, u);
      await openCall(p, srv.origin, id);
      await precallReady(p, 30000);
      await p.getByTestId('join-call').click();
      await callState(p, 'joined', 30000);
      // The call is named by the consultation's kind, in the page's language.
      const title = await p.getByTestId('call-title').innerText();
      const want = SITES.indexOf(u) % 2 ? 'Case discussion' : '病例讨论';
      if (title !== want) throw new Error(`${u}'s call title reads "${title}", not "${want}"`);
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

  // The call fills the viewport: grid of five at a laptop's, a tablet's landscape and portrait
  // sizes, for a participant and for the host (who also has end for all).
  await summary.step('the call fills the viewport at 1280×800, 1024×768 and 768×1024', async () => {
    /** @type {Record<string, any>} */
    const fit = {};
    for (const [u, lang, host] of viewers) {
      const p = pages[u];
      for (const [width, height] of [[1280, 800], [1024, 768], [768, 1024]]) {
        await p.setViewportSize({ width, height });
        const l = await callFits(p, { host });
        if (l.layout !== 'grid') throw new Error(`${u}: a call of five without a share should be a grid, is ${l.layout}`);
        fit[`${u}@${width}x${height}`] = { stageShare: l.stageShare, coverage: l.coverage, toolbarRows: l.toolbarRows };
        await shot(p, `${T}-fit-${lang}-${width}x${height}`);
      }
      await p.setViewportSize({ width: 1280, height: 800 });
    }
    summary.checks.fit = fit;
  });

  // A tile without video shows the participant's surname (刘 for 刘医生), in either language.
  await summary.step('a camera turned off shows the surname', async () => {
    const west = pages['doctor-west'];
    await west.getByTestId('ctl-camera').click();
    /** @type {Record<string, string>} */
    const seen = {};
    for (const [u, lang] of viewers) {
      const tile = pages[u].locator(`${tileOf('doctor-west')}[data-video-muted="true"]`);
      await tile.waitFor();
      const avatar = tile.getByTestId('tile-avatar');
      await avatar.waitFor({ state: 'visible' });
      seen[u] = await avatar.innerText();
      if (seen[u] !== '刘') throw new Error(`the avatar of 刘医生 (西县) on ${u}'s page should be 刘, is "${seen[u]}"`);
      await shot(pages[u], `${T}-avatar-${lang}`);
    }
    summary.checks.avatar = seen;
    await west.getByTestId('ctl-camera').click();
    await videoPlaying(pages['doctor-east'], users['doctor-west'].id, { what: 'doctor-west\'s camera back on' });
  });

  // Pin, unpin, full screen: on the Chinese page at 1280×800, on the English one at 1024×768.
  /** @type {Record<string, any>} */
  const pinChecks = {};
  summary.checks.pin = pinChecks;
  for (const [[viewer, lang, host], target, [width, height]] of /** @type {const} */ ([
    [viewers[0], 'neurologist', [1280, 800]],
    [viewers[1], 'cardiologist', [1024, 768]],
  ])) {
    await summary.step(`pin, unpin and full screen (${lang}, ${width}×${height})`, async () => {
      const p = pages[viewer];
      await p.setViewportSize({ width, height });
      const remotes = SITES.filter((u) => u !== viewer);
      const thumbs = remotes.filter((u) => u !== target);
      /** @type {Record<string, string>} */
      const track = {};
      for (const u of remotes) track[u] = /** @type {string} */ (await p.locator(tileOf(u)).getAttribute('data-track'));
      // In the grid of four remote videos each asks for the medium layer: what unpinning must
      // bring back, and what the pin must raise (high) and lower (low).
      /** @type {Record<string, string | null>} */
      const gridLayer = Object.fromEntries(remotes.map((u) => [u, layers[viewer].current(track[u])]));
      if (remotes.some((u) => gridLayer[u] !== 'medium')) throw new Error(`grid tiles should ask for the medium layer: ${JSON.stringify(gridLayer)}`);
      /** @type {Record<string, number>} */
      const gridWidth = {};
      for (const u of remotes) gridWidth[u] = (await videoPlaying(p, users[u].id, { what: `${u} in ${viewer}'s grid` })).width;
      // The width of each thumbnail-to-be's low layer (rid q), as its publisher encodes it.
      /** @type {Record<string, number>} */
      const lowWidth = {};
      for (const u of thumbs) lowWidth[u] = await qWidth(u);

      // Pin: the target is the large view, the others a strip; the wire and the video agree.
      const t0 = Date.now();
      await p.locator(tileOf(target)).getByTestId('tile-pin').click();
      await until('the pinned layout', async () => (await p.getByTestId('stage').getAttribute('data-pinned')) === users[target].id
        && (await p.getByTestId('stage').getAttribute('data-layout')) === 'speaker', 5000, 100);
      const pinned = await callFits(p, { host, minCoverage: 0.8 });
      const big = pinned.tiles.find((x) => x.participant === users[target].id && x.source === 'person');
      if (!big || big.place !== 'main') throw new Error(`the pinned tile should be the main one: ${JSON.stringify(big)}`);
      const rival = pinned.tiles.find((x) => x !== big && x.area >= big.area / 4);
      if (rival) throw new Error(`the pinned tile should be by far the largest: ${JSON.stringify(big)} vs ${JSON.stringify(rival)}`);
      await layers[viewer].asked(track[target], 'high', t0);
      for (const u of thumbs) await layers[viewer].asked(track[u], 'low', t0);
      /** @type {Record<string, number>} */
      const thumbWidth = {};
      for (const u of thumbs) {
        const v = await received(p, u, `${u}'s thumbnail on ${viewer}'s page to get the low layer (${lowWidth[u]} wide)`, (w) => w <= lowWidth[u]);
        thumbWidth[u] = v.width;
      }
      const main = await videoPlaying(p, users[target].id, { what: `the pinned ${target}` });
      // The pin is this viewer's alone.
      const elsewhere = viewer === 'doctor-east' ? pages['doctor-west'] : pages['doctor-south'];
      if ((await elsewhere.getByTestId('stage').getAttribute('data-layout')) !== 'grid') throw new Error('a pin changed another page\'s layout');
      await shot(p, `${T}-pinned-${lang}`);

      // Unpin: the grid again, every tile back on its grid layer and the thumbnails' size.
      const t1 = Date.now();
      await p.locator(tileOf(target)).getByTestId('tile-pin').click();
      await until('the grid again', async () => (await p.getByTestId('stage').getAttribute('data-layout')) === 'grid'
        && (await p.getByTestId('stage').getAttribute('data-pinned')) === '', 5000, 100);
      const grid = await callFits(p, { host });
      if (grid.tiles.some((x) => x.place !== 'grid')) throw new Error(`after unpinning every tile should be in the grid: ${JSON.stringify(grid.tiles)}`);
      for (const u of remotes) await layers[viewer].asked(track[u], /** @type {string} */ (gridLayer[u]), t1);
      // What arrives next is reported, not required: on a loaded machine the server's own
      // congestion cap may hold a layer down for a while (protocol.md §11), whatever we ask.
      /** @type {Record<string, number | null>} */
      const unpinnedWidth = {};
      for (const u of thumbs) unpinnedWidth[u] = (await remoteVideo(p, users[u].id))?.width ?? null;
      await shot(p, `${T}-unpinned-${lang}`);

      // Full screen of one tile: the tile is the full-screen element, fills the screen, shows
      // the whole picture, asks for the high layer; Esc brings the grid back.
      const fsUser = thumbs[0];
      const t2 = Date.now();
      const fs = await fullScreen(p, tileOf(fsUser), users[fsUser].id);
      await layers[viewer].asked(track[fsUser], 'high', t2);
      await shot(p, `${T}-fullscreen-${lang}`);
      const t3 = Date.now();
      await p.keyboard.press('Escape');
      await until('full screen to end on Esc', async () => (await p.evaluate(() => document.fullscreenElement === null)), 5000, 100);
      await layers[viewer].asked(track[fsUser], /** @type {string} */ (gridLayer[fsUser]), t3);
      await callFits(p, { host });
      pinChecks[lang] = { viewer, target, gridWidth, lowWidth, thumbWidth, pinnedWidth: main.width, unpinnedWidth, fullscreen: fs };
      await p.setViewportSize({ width: 1280, height: 800 });
    });
  }

  // A header link during the call asks first; staying keeps the call as it was.
  await summary.step('a header link asks before leaving; staying keeps the call', async () => {
    const zh = pages['doctor-east'];
    await zh.getByTestId('brand').click();
    const dialog = zh.getByTestId('leave-confirm');
    await dialog.waitFor();
    const zhText = await dialog.innerText();
    if (!zhText.includes('离开')) throw new Error(`the leave question should be in Chinese: "${zhText}"`);
    await shot(zh, `${T}-leave-confirm-zh`);
    await zh.getByTestId('leave-confirm-no').click();
    await dialog.waitFor({ state: 'detached' });
    const en = pages.neurologist;
    await en.getByTestId('nav-day').click();
    const enDialog = en.getByTestId('leave-confirm');
    await enDialog.waitFor();
    const enText = await enDialog.innerText();
    // The host is told that leaving does not end the consultation.
    if (!/Leave the call/.test(enText) || !/End for all/.test(enText)) throw new Error(`the host's leave question in English should name end for all: "${enText}"`);
    await shot(en, `${T}-leave-confirm-en`);
    await en.keyboard.press('Escape');
    await enDialog.waitFor({ state: 'detached' });
    for (const [u] of viewers) {
      if (!pages[u].url().endsWith(`/c/${id}/call`)) throw new Error(`${u} left the call page: ${pages[u].url()}`);
      if ((await callState(pages[u], 'joined')) !== 'joined') throw new Error(`${u} is no longer in the call`);
    }
    await videoPlaying(zh, users.neurologist.id, { what: 'the neurologist after staying in the call' });
    await videoPlaying(en, users['doctor-east'].id, { what: 'doctor-east after the host stayed in the call' });
    summary.checks.leaveConfirm = { zh: zhText.split('\n')[0], en: enText.split('\n')[0] };
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
    // Imaging full screen: the shared screen alone, whole (object-fit: contain), Esc returns.
    const p = pages['doctor-east'];
    summary.checks.screenFullscreen = await fullScreen(p, tileOf(sharer, 'screen'), users[sharer].id);
    await shot(p, `${T}-screen-fullscreen`);
    await p.keyboard.press('Escape');
    await until('full screen to end on Esc', async () => (await p.evaluate(() => document.fullscreenElement === null)), 5000, 100);
    const after = await callFits(p, { host: false, minCoverage: 0.8 });
    if (after.tiles.find((x) => x.source === 'screen')?.place !== 'main') throw new Error('the shared screen should be the large view again after full screen');
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

  // Leaving through the header for real: the room is told at once (the others see the tile
  // go, no waiting for a timeout) and the page goes where the link points.
  await summary.step('leaving through a header link, confirmed', async () => {
    const p = pages['doctor-east'];
    await p.getByTestId('brand').click();
    await p.getByTestId('leave-confirm-yes').click();
    await until('the home page', async () => new URL(p.url()).hash === '#/' && (await p.getByTestId('call').count()) === 0, 10000, 100);
    await until('doctor-east to leave the others\' pages', async () =>
      (await pages.neurologist.locator(tileOf('doctor-east')).count()) === 0, 10000, 100);
    await shot(p, `${T}-left-home`);
  });

  for (const u of SITES) {
    const errs = pageErrors(pages[u]);
    if (errs.length) throw new Error(`uncaught errors on ${u}'s page: ${errs.join('; ')}`);
  }
  note('discussion checks passed');
});
