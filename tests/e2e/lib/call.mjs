// Helpers for the call screens (web-client/js/call): open the pre-call screen, join, and
// measure what a page really receives — frames presented by a tile's <video> (counted with
// requestVideoFrameCallback), their brightness on a canvas, and the level of a received
// audio track through an AnalyserNode. Nothing here reaches into the app's internals except
// window.hzCall.state(), the call's published snapshot (no media, no tokens).
import { until } from './harness.mjs';

/** Remote frames a page must have presented before video counts as playing. */
export const MIN_FRAMES = 30;
/** Mean luma (0–255) a frame must exceed; black video is ≈ 0–16. */
export const MIN_BRIGHTNESS = 40;
/** RMS (0–1) above which received audio is not silence (the fake microphone beeps at ≈ 0.1+). */
export const MIN_AUDIO = 0.01;

/**
 * @typedef {import('playwright-core').Page} Page
 */

/** Opens #/c/<id>/call and waits for the pre-call screen or (after a reload) the call. @param {Page} page @param {string} origin @param {string} id */
export async function openCall(page, origin, id) {
  await page.goto(`${origin}/#/c/${id}/call`);
  await page.locator('[data-testid="precall"], [data-testid="call"]').first().waitFor();
}

/** Waits until the pre-call screen lets the user join (window open, devices settled). @param {Page} page */
export async function precallReady(page, deadlineMs = 20000) {
  await until('the join button to be enabled', async () => page.getByTestId('join-call').isEnabled(), deadlineMs, 150);
}

/** Waits for the network check to finish (no row still pending). @param {Page} page */
export async function networkChecked(page, deadlineMs = 20000) {
  return until('the network check to finish', async () => {
    const states = await page.locator('[data-testid="network-check"] li').evaluateAll((els) => els.map((e) => /** @type {HTMLElement} */ (e).dataset.state));
    return states.length === 3 && !states.includes('pending') ? states : null;
  }, deadlineMs, 200);
}

/** Clicks join and waits until the call is in `state` (joined or lobby). @param {Page} page @param {string | string[]} [state] */
export async function joinCall(page, state = ['joined', 'lobby'], deadlineMs = 20000) {
  await page.getByTestId('join-call').click();
  return callState(page, state, deadlineMs);
}

/** Waits until the call's status is one of `states`; returns it. @param {Page} page @param {string | string[]} states */
export async function callState(page, states, deadlineMs = 20000) {
  const want = [states].flat();
  return until(`the call to be ${want.join(' or ')}`, async () => {
    const s = await page.getByTestId('call-status').getAttribute('data-state').catch(() => null);
    return s && want.includes(s) ? s : null;
  }, deadlineMs, 150);
}

/** The call's snapshot (window.hzCall.state()). @param {Page} page */
export async function snapshot(page) {
  return page.evaluate(() => /** @type {any} */ (window).hzCall?.state() ?? null);
}

/**
 * What a page shows of a remote participant's video (source: person | camera2 | screen):
 * presented frames so far, and the current frame's brightness and fingerprint.
 * @param {Page} page @param {string} participant @param {string} [source]
 */
export async function remoteVideo(page, participant, source = 'person') {
  return page.evaluate(({ participant, source }) => {
    const v = /** @type {any} */ (document.querySelector(`[data-testid="tile"][data-participant="${CSS.escape(participant)}"][data-source="${source}"][data-local="false"] video`));
    if (!v || !v.srcObject) return null;
    if (!v.__e2e) {
      v.__e2e = { frames: 0 };
      const onFrame = () => { v.__e2e.frames++; v.requestVideoFrameCallback(onFrame); };
      v.requestVideoFrameCallback(onFrame);
    }
    let brightness = null;
    let fingerprint = null;
    if (v.readyState >= 2 && v.videoWidth) {
      const c = document.createElement('canvas');
      c.width = 64;
      c.height = 36;
      const ctx = /** @type {CanvasRenderingContext2D} */ (c.getContext('2d', { willReadFrequently: true }));
      ctx.drawImage(v, 0, 0, c.width, c.height);
      const px = ctx.getImageData(0, 0, c.width, c.height).data;
      let sum = 0;
      let fp = 0;
      for (let i = 0; i < px.length; i += 4) {
        const y = 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
        sum += y;
        fp = (fp * 31 + (y >> 3)) >>> 0;
      }
      brightness = sum / (px.length / 4);
      fingerprint = fp;
    }
    return { frames: v.__e2e.frames, brightness, fingerprint, width: v.videoWidth, height: v.videoHeight, track: v.closest('[data-testid="tile"]').dataset.track };
  }, { participant, source });
}

/**
 * Waits until a page plays a participant's video: > MIN_FRAMES frames, not black, and still
 * advancing with a changing picture (a frozen frame would pass the count once).
 * @param {Page} page @param {string} participant @param {{ source?: string, deadlineMs?: number, what?: string }} [opts]
 */
export async function videoPlaying(page, participant, { source = 'person', deadlineMs = 30000, what = '' } = {}) {
  const label = what || `video of ${participant} (${source})`;
  /** @type {any} */
  let last = null;
  // The last measurement goes into the failure message: frozen, black or never attached.
  const seen = () => JSON.stringify(last);
  try {
    const first = await until(`${label} to play (> ${MIN_FRAMES} frames, not black)`, async () => {
      const r = (last = await remoteVideo(page, participant, source));
      return r && r.frames > MIN_FRAMES && r.brightness != null && r.brightness > MIN_BRIGHTNESS ? r : null;
    }, deadlineMs, 300);
    return await until(`${label} to keep advancing`, async () => {
      const r = (last = await remoteVideo(page, participant, source));
      return r && r.frames >= first.frames + 10 && r.fingerprint !== first.fingerprint && r.brightness > MIN_BRIGHTNESS ? r : null;
    }, deadlineMs, 300);
  } catch (e) {
    // What the page's call knew of the participant: whether their tracks were announced,
    // received and muted, and how its connections stood (a flake is read from this alone).
    const call = await snapshot(page).catch(() => null);
    const known = call && {
      phase: call.phase,
      pc: call.pc,
      reconnects: call.reconnects,
      tracks: call.tracks.filter((/** @type {any} */ t) => t.participant === participant),
      participant: call.participants.find((/** @type {any} */ p) => p.id === participant) ?? null,
    };
    throw new Error(`${/** @type {Error} */ (e).message}; last seen: ${seen()}; the call knew: ${JSON.stringify(known)}`);
  }
}

/**
 * The loudest level (RMS 0–1) heard so far on the <audio> playing a participant's microphone,
 * measured with an AnalyserNode on the received track.
 * @param {Page} page @param {string} participant
 */
export async function remoteAudioPeak(page, participant) {
  return page.evaluate((participant) => {
    const a = /** @type {any} */ (document.querySelector(`audio[data-testid="remote-audio"][data-participant="${CSS.escape(participant)}"]`));
    if (!a || !a.srcObject) return null;
    if (!a.__e2e) {
      const w = /** @type {any} */ (window);
      w.__e2eAudio ??= new AudioContext();
      const ctx = w.__e2eAudio;
      const src = ctx.createMediaStreamSource(a.srcObject);
      const an = ctx.createAnalyser();
      an.fftSize = 2048;
      src.connect(an);
      const buf = new Float32Array(an.fftSize);
      a.__e2e = { peak: 0 };
      setInterval(() => {
        an.getFloatTimeDomainData(buf);
        let sum = 0;
        for (const x of buf) sum += x * x;
        a.__e2e.peak = Math.max(a.__e2e.peak, Math.sqrt(sum / buf.length));
      }, 40);
    }
    return a.__e2e.peak;
  }, participant);
}

/** Waits until a participant's audio is heard above silence. @param {Page} page @param {string} participant */
export async function audioHeard(page, participant, deadlineMs = 30000) {
  return until(`audio of ${participant} above silence`, async () => {
    const p = await remoteAudioPeak(page, participant);
    return p != null && p > MIN_AUDIO ? p : null;
  }, deadlineMs, 300);
}

/** Sends a chat line through the UI. @param {Page} page @param {string} text */
export async function sendChat(page, text) {
  await page.getByTestId('chat-input').fill(text);
  await page.getByTestId('chat-send').click();
}

/** Waits until a chat line with `text` is shown. @param {Page} page @param {string} text */
export async function chatShown(page, text, deadlineMs = 10000) {
  return until(`chat "${text}" to be shown`, async () => {
    const texts = await page.getByTestId('chat-text').allInnerTexts();
    return texts.includes(text);
  }, deadlineMs, 150);
}

/**
 * A TCP relay in front of the server for one page's HTTP and signaling traffic, so a test can
 * cut the page's network the way a dropped link does (both directions gone, sockets reset),
 * which Chromium's offline emulation does not do to an open WebSocket. Media (UDP) goes to the
 * server directly and dies with the signaling socket, as the protocol says.
 * @param {string} target host:port of the server
 * @returns {Promise<{ origin: string, cut: (refuseMs?: number) => void, stop: () => Promise<void> }>}
 */
export async function startRelay(target) {
  const net = await import('node:net');
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  /** @type {Set<import('node:net').Socket>} */
  const live = new Set();
  let refuseUntil = 0;
  const server = net.createServer((client) => {
    if (Date.now() < refuseUntil) { client.resetAndDestroy(); return; }
    const upstream = net.connect(port, host);
    live.add(client);
    live.add(upstream);
    const drop = () => { client.destroy(); upstream.destroy(); live.delete(client); live.delete(upstream); };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', () => r(null)));
  const addr = /** @type {import('node:net').AddressInfo} */ (server.address());
  return {
    origin: `http://127.0.0.1:${addr.port}`,
    cut(refuseMs = 0) {
      refuseUntil = Date.now() + refuseMs;
      for (const s of live) s.resetAndDestroy();
      live.clear();
    },
    stop: () => new Promise((r) => { for (const s of live) s.destroy(); server.close(() => r()); }),
  };
}

/**
 * Where the call sits in the viewport: the page's scroll size, the call's blocks, the toolbar's
 * buttons and the tiles, as the browser lays them out (getBoundingClientRect).
 * @param {Page} page
 */
export async function callLayout(page) {
  return page.evaluate(async () => {
    // Measure a settled frame: the grid's shape follows a resize through a ResizeObserver,
    // whose change is laid out in the frame after the resize.
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    const vw = innerWidth;
    const vh = innerHeight;
    /** @param {DOMRect} r */
    const inView = (r) => r.width > 0 && r.height > 0 && r.left >= -0.5 && r.top >= -0.5 && r.right <= vw + 0.5 && r.bottom <= vh + 0.5;
    /** @param {string} id */
    const byId = (id) => /** @type {HTMLElement | null} */ (document.querySelector(`[data-testid="${id}"]`));
    /** @param {HTMLElement | null} el */
    const shown = (el) => Boolean(el && el.offsetParent !== null && inView(el.getBoundingClientRect()));
    /** @param {DOMRect} r */
    const box = (r) => ({ x: Math.round(r.left), y: Math.round(r.top), w: Math.round(r.width), h: Math.round(r.height) });
    const blocks = Object.fromEntries(['call', 'stage', 'controls', 'participants', 'chat-input', 'call-status']
      .map((id) => [id, byId(id) ? inView(/** @type {HTMLElement} */ (byId(id)).getBoundingClientRect()) : null]));
    const toolbar = [...document.querySelectorAll('[data-testid="controls"] button, [data-testid="controls"] select')]
      .filter((el) => /** @type {HTMLElement} */ (el).offsetParent !== null);
    const offscreen = toolbar.filter((el) => !inView(el.getBoundingClientRect())).map((el) => /** @type {HTMLElement} */ (el).dataset.testid || el.tagName);
    const stageEl = /** @type {HTMLElement} */ (byId('stage'));
    const stage = stageEl.getBoundingClientRect();
    const tiles = [...document.querySelectorAll('[data-testid="tile"]')].map((el) => {
      const t = /** @type {HTMLElement} */ (el);
      const r = t.getBoundingClientRect();
      const inside = r.left >= stage.left - 0.5 && r.top >= stage.top - 0.5 && r.right <= stage.right + 0.5 && r.bottom <= stage.bottom + 0.5;
      return { participant: t.dataset.participant, source: t.dataset.source, local: t.dataset.local === 'true', place: t.dataset.place, area: r.width * r.height, inside, ...box(r) };
    });
    const tileArea = tiles.reduce((s, t) => s + t.area, 0);
    // What the tiles may use: the stage inside its padding.
    const pad = getComputedStyle(stageEl);
    const inner = (stage.width - parseFloat(pad.paddingLeft) - parseFloat(pad.paddingRight)) * (stage.height - parseFloat(pad.paddingTop) - parseFloat(pad.paddingBottom));
    return {
      viewport: `${vw}x${vh}`,
      scroll: { width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight },
      blocks,
      offscreen,
      // Items of one row share their middle (align-items: center); 10 px apart is another row.
      toolbarRows: new Set(toolbar.map((el) => { const r = el.getBoundingClientRect(); return Math.round((r.top + r.bottom) / 20); })).size,
      leave: shown(byId('ctl-leave')),
      end: byId('ctl-end') ? shown(byId('ctl-end')) : null,
      layout: stageEl.dataset.layout,
      stage: box(stage),
      /** Of the viewport, the share the stage has; of the stage (inside its padding), the share its tiles cover. */
      stageShare: Number(((stage.width * stage.height) / (vw * vh)).toFixed(3)),
      coverage: Number((tileArea / inner).toFixed(3)),
      tiles,
    };
  });
}

/**
 * Waits until the call fits the viewport as hospital screens need it: no page scroll either
 * way, the call's blocks and every toolbar button inside the viewport, leave (and end, for a
 * host) on screen, the stage a good part of the screen and its tiles a good part of the stage,
 * no tile outside the stage. Returns the layout; on failure the error names what was wrong.
 * The coverage floor is geometry's: n 16:9 tiles in the best grid cover at least about half of
 * any landscape or portrait stage (two tiles in a 16:9 stage: side by side or stacked, 50%,
 * less the gap); a grid of fixed-size tiles in a corner of the stage falls well below it.
 * @param {Page} page
 * @param {{ host: boolean, minStageShare?: number, minCoverage?: number, deadlineMs?: number }} opts
 */
export async function callFits(page, { host, minStageShare = 0.35, minCoverage = 0.45, deadlineMs = 5000 }) {
  /** @type {any} */
  let last = null;
  /** @type {string[]} */
  let problems = [];
  try {
    return await until('the call to fit the viewport', async () => {
      const l = (last = await callLayout(page));
      const [vw, vh] = l.viewport.split('x').map(Number);
      problems = [];
      if (l.scroll.height > vh) problems.push(`the page scrolls down (${l.scroll.height} > ${vh})`);
      if (l.scroll.width > vw) problems.push(`the page scrolls sideways (${l.scroll.width} > ${vw})`);
      for (const [id, ok] of Object.entries(l.blocks)) if (ok === false) problems.push(`${id} is not inside the viewport`);
      if (l.offscreen.length) problems.push(`toolbar items off screen: ${l.offscreen.join(', ')}`);
      if (!l.leave) problems.push('leave is not on screen');
      if (host && !l.end) problems.push('end for all is not on screen');
      if (l.stageShare < minStageShare) problems.push(`the stage has only ${l.stageShare} of the viewport`);
      if (l.coverage < minCoverage) problems.push(`the tiles cover only ${l.coverage} of the stage`);
      const out = l.tiles.filter((t) => !t.inside);
      if (out.length) problems.push(`tiles outside the stage: ${out.map((t) => `${t.participant}/${t.source}`).join(', ')}`);
      return problems.length ? null : l;
    }, deadlineMs, 100);
  } catch (e) {
    throw new Error(`${/** @type {Error} */ (e).message}: ${problems.join('; ')}; layout: ${JSON.stringify(last)}`);
  }
}

/**
 * Records the set_layer requests a page sends on its signaling socket and the server's acks,
 * from the WebSocket frames themselves (what went over the wire, not what the page says it
 * sent). Call before the page joins.
 * @param {Page} page
 */
export function watchLayers(page) {
  /** @type {{ id: string, track: string, layer: string, at: number }[]} */
  const sent = [];
  /** @type {Set<string>} */
  const acked = new Set();
  /** @param {string | Buffer} payload */
  const parse = (payload) => { try { return JSON.parse(String(payload)); } catch { return null; } };
  page.on('websocket', (ws) => {
    ws.on('framesent', ({ payload }) => {
      const m = parse(payload);
      if (m?.type === 'set_layer') sent.push({ id: m.id, track: m.track, layer: m.layer, at: Date.now() });
    });
    ws.on('framereceived', ({ payload }) => {
      const m = parse(payload);
      if (m?.type === 'ack' && m.id) acked.add(m.id);
    });
  });
  return {
    sent,
    /**
     * Waits until, since `since` (Date.now()), the page asked for `layer` on `track` and the
     * server acknowledged it; returns that request.
     * @param {string} track @param {string} layer @param {number} since
     */
    async asked(track, layer, since, deadlineMs = 10000) {
      return until(`set_layer ${layer} for ${track}, acknowledged`, async () => {
        const last = sent.filter((m) => m.at >= since && m.track === track).at(-1);
        return last && last.layer === layer && acked.has(last.id) ? last : null;
      }, deadlineMs, 100);
    },
    /** The layer last asked for `track` (acknowledged), or null. @param {string} track */
    current(track) {
      const last = sent.filter((m) => m.track === track && acked.has(m.id)).at(-1);
      return last ? last.layer : null;
    },
  };
}

/**
 * Waits until the <video> matching `selector` (a local preview: the pre-call screen's, the
 * lobby's) presents frames: more than `frames` counted with requestVideoFrameCallback since
 * the first look, with a picture. Returns { frames, width, height }.
 * @param {Page} page @param {string} selector @param {{ what?: string, frames?: number, deadlineMs?: number }} [opts]
 */
export async function previewPlaying(page, selector, { what = selector, frames = 15, deadlineMs = 15000 } = {}) {
  return until(`${what} to play`, async () => page.evaluate(({ selector, frames }) => {
    const v = /** @type {any} */ (document.querySelector(selector));
    if (!v || !v.srcObject || v.offsetParent === null) return null;
    if (!v.__e2e) {
      v.__e2e = { frames: 0 };
      const onFrame = () => { v.__e2e.frames++; v.requestVideoFrameCallback(onFrame); };
      v.requestVideoFrameCallback(onFrame);
    }
    return v.__e2e.frames > frames && v.videoWidth > 0 ? { frames: v.__e2e.frames, width: v.videoWidth, height: v.videoHeight } : null;
  }, { selector, frames }), deadlineMs, 200);
}

/**
 * Switches the page's language with the header's switch (as a user does) and waits until the
 * app has taken it (the document's lang).
 * @param {Page} page @param {'zh-CN' | 'en'} lang
 */
export async function switchLanguage(page, lang) {
  await page.getByTestId('lang-switch').selectOption(lang);
  await until(`the page to switch to ${lang}`, async () => (await page.evaluate(() => document.documentElement.lang)) === lang, 5000, 50);
}

/**
 * Makes the page note every `leave` it hands to an open WebSocket, in sessionStorage, which
 * outlives a reload of the tab: a frame sent while the page unloads (pagehide) is not reported
 * by the browser's devtools protocol, so the page's own WebSocket.send is watched instead (as
 * the harness wraps getUserMedia). Call before the page loads; read with leavesSent().
 * @param {Page} page
 */
export async function recordLeaves(page) {
  await page.addInitScript(() => {
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (data) {
      try {
        if (typeof data === 'string' && JSON.parse(data)?.type === 'leave') {
          const list = JSON.parse(sessionStorage.getItem('e2e.leaves') ?? '[]');
          list.push({ at: Date.now(), open: this.readyState === WebSocket.OPEN });
          sessionStorage.setItem('e2e.leaves', JSON.stringify(list));
        }
      } catch { /* not JSON, or no storage: not a leave we can note */ }
      return send.call(this, data);
    };
  });
}

/** The leaves the page sent so far (recordLeaves()). @param {Page} page @returns {Promise<{ at: number, open: boolean }[]>} */
export async function leavesSent(page) {
  return page.evaluate(() => JSON.parse(sessionStorage.getItem('e2e.leaves') ?? '[]'));
}

/**
 * Waits until a passing note (toast) about `participant` saying `what` (joined, left, removed)
 * is shown on the page; returns its text.
 * @param {Page} page @param {string} participant @param {string} what
 */
export async function toastShown(page, participant, what, deadlineMs = 10000) {
  const note = page.locator(`[data-testid="call-toast"][data-participant="${participant}"][data-what="${what}"]`);
  return until(`a note that ${participant} ${what}`, async () => ((await note.count()) ? note.first().innerText() : null), deadlineMs, 50);
}
