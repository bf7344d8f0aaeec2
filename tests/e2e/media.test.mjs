// Browser end-to-end media test (issue 5): two headless Chromium pages publish camera
// (simulcast q/h/f) and microphone through a real Huizhen server, and each must show the
// other's video playing: frames advancing and not black.
//
//   node tests/e2e/media.test.mjs          (scripts/e2e.sh installs what it needs first)
//
// Environment: HUIZHEN_BIN (server binary; default target/debug/huizhen), CHROMIUM
// (default /usr/bin/chromium), E2E_DEADLINE_MS (default 60000), E2E_MEDIA_IP (bind the
// server's media to this address instead of 127.0.0.1), E2E_CAPTURE (fake camera size,
// default 1280x720; 640x480 is lighter on a busy machine).
// Prints a JSON summary on stdout; exits non-zero on failure. Artifacts (screenshots, server
// log, page logs, SDPs) go to tests/e2e/artifacts/.

import { createServer } from 'node:http';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import {
  ARTIFACTS, BIN, E2E_DIR, cleanup, launchBrowser, newPage, note, onCleanup, startServer, until,
} from './lib/harness.mjs';

const DEADLINE_MS = Number(process.env.E2E_DEADLINE_MS ?? 60000);
const MEDIA_IP = process.env.E2E_MEDIA_IP ?? '127.0.0.1';
// Fake camera size. Chromium sends all three simulcast layers (320x180, 640x360, 1280x720) at
// 1280x720; at 640x480 it sends only q and h (it caps the layer count by resolution).
const [CAM_W, CAM_H] = (process.env.E2E_CAPTURE ?? '1280x720').split('x').map(Number);
const PAGE_DIR = join(E2E_DIR, 'media-page');
const ROOM = `e2e-media-${Date.now()}`;
const NAMES = ['alice', 'bob'];
/** Remote frames each page must have presented. */
const MIN_FRAMES = 30;
/** Mean luma (0–255) a remote frame must exceed; black video is ≈ 0–16. */
const MIN_BRIGHTNESS = 40;

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };

/** Serves media-page/ on 127.0.0.1 (a secure context, so getUserMedia exists). */
async function startPageServer() {
  const http = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)).replace(/^\/+/, '');
    if (path === 'favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    const file = join(PAGE_DIR, path || 'index.html');
    if (!file.startsWith(PAGE_DIR)) {
      res.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => http.listen(0, '127.0.0.1', r));
  onCleanup(() => new Promise((r) => http.close(r)));
  return `http://127.0.0.1:${http.address().port}`;
}

function remoteOk(s, other) {
  const r = s?.remotes?.[other];
  return Boolean(r && r.frames > MIN_FRAMES && r.frame && r.frame.brightness > MIN_BRIGHTNESS);
}

/** The publisher's video encodings as Chromium reports them: which simulcast layers it sends. */
function layersSent(s) {
  const reports = new Map(
    (s?.outbound ?? []).filter((o) => o.type === 'remote-inbound-rtp').map((o) => [o.ssrc, o]),
  );
  return (s?.outbound ?? [])
    .filter((o) => o.type === 'outbound-rtp' && o.kind === 'video')
    .map((o) => ({
      rid: o.rid ?? null,
      active: o.active,
      size: o.frameWidth ? `${o.frameWidth}x${o.frameHeight}` : null,
      fps: o.framesPerSecond ?? null,
      framesEncoded: o.framesEncoded ?? 0,
      packetsSent: o.packetsSent ?? 0,
      bytesSent: o.bytesSent ?? 0,
      qualityLimitationReason: o.qualityLimitationReason,
      // From the server's receiver reports (RTCP RR) on this layer, if it sent any.
      lostAtServer: reports.get(o.ssrc)?.packetsLost ?? null,
      rttMs: reports.has(o.ssrc) ? Math.round(1000 * (reports.get(o.ssrc).roundTripTime ?? NaN)) : null,
    }))
    .sort((a, b) => String(a.rid).localeCompare(String(b.rid)));
}

/** CPU time a process has used so far (Linux; null elsewhere). */
async function cpuSeconds(pid) {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(((Number(f[11]) + Number(f[12])) / 100).toFixed(2)); // utime + stime, USER_HZ = 100
  } catch {
    return null;
  }
}

async function main() {
  const started = Date.now();
  await mkdir(ARTIFACTS, { recursive: true });
  const summary = { ok: false, room: ROOM, binary: BIN, mediaIp: MEDIA_IP, camera: `${CAM_W}x${CAM_H}`, checks: {}, pages: {} };

  const server = await startServer({ demo: false, mediaIp: MEDIA_IP, logName: 'media-server' });
  const { addr } = server;
  note(`server at ${addr}`);
  const tokens = {};
  for (const n of NAMES) tokens[n] = await server.mint(['--room', ROOM, '--identity', n, '--publish', '--subscribe', '--data']);
  const origin = await startPageServer();

  // The page asks for the camera size itself (URL parameters): no cap from the harness.
  const browser = await launchBrowser({ capture: null });
  summary.browser = browser.version();

  const pages = {};
  for (const n of NAMES) pages[n] = await newPage(browser, { name: `media-${n}`, viewport: { width: 720, height: 560 } });
  const ws = `ws://${addr}/v1/rtc`;
  // Both pages start together, as two people joining a consultation.
  await Promise.all(
    NAMES.map((n) =>
      pages[n].goto(
        `${origin}/index.html?ws=${encodeURIComponent(ws)}&token=${encodeURIComponent(tokens[n])}&width=${CAM_W}&height=${CAM_H}`,
      ),
    ),
  );

  const t0 = Date.now();
  /** Bob's send side over time (his bandwidth estimate and the layers he is encoding). */
  const timeline = [];
  const framesBefore = new Map();
  const stats = async (n) => {
    const s = await pages[n].evaluate(() => window.hz.stats());
    if (n === 'bob') {
      const active = layersSent(s)
        .filter((l) => l.size && l.framesEncoded > (framesBefore.get(l.rid) ?? 0))
        .map((l) => `${l.rid} ${l.size}`);
      for (const l of layersSent(s)) framesBefore.set(l.rid, l.framesEncoded);
      timeline.push({ t: Date.now() - t0, estimateKbps: s.publishEstimateBps == null ? null : Math.round(s.publishEstimateBps / 1000), encoding: active });
    }
    return s;
  };
  const last = {};
  let failure = null;
  try {
    const deadline = Date.now() + DEADLINE_MS;
    // 1. Each page plays the other's video: frames advancing, not black.
    await until(
      'each page to play the other participant\'s video (> 30 frames, not black)',
      async () => {
        for (const n of NAMES) last[n] = await stats(n);
        const fatal = NAMES.flatMap((n) => last[n].errors.map((e) => `${n}: ${e.code} ${e.message}`));
        if (fatal.length) throw new Error(`errors on the pages: ${fatal.join('; ')}`);
        for (const n of NAMES) {
          if (last[n].mediaClosed) throw new Error(`${n}: media_closed ${last[n].mediaClosed}`);
        }
        return NAMES.every((n) => remoteOk(last[n], NAMES.find((o) => o !== n)));
      },
      deadline,
    );
    // Frames keep advancing and the picture changes (a frozen frame would pass the count once).
    const before = {};
    for (const n of NAMES) before[n] = last[n].remotes[NAMES.find((o) => o !== n)];
    await until(
      'remote frames to keep advancing with a changing picture',
      async () => {
        for (const n of NAMES) last[n] = await stats(n);
        return NAMES.every((n) => {
          const r = last[n].remotes[NAMES.find((o) => o !== n)];
          const b = before[n];
          return r.frames >= b.frames + 15 && r.frame && r.frame.fingerprint !== b.frame.fingerprint;
        });
      },
      deadline,
    );
    summary.checks.playing = true;

    // 2. Simulcast: Chromium sends more than one layer of the camera.
    await until(
      'Chromium to send at least two simulcast layers',
      async () => {
        for (const n of NAMES) last[n] = await stats(n);
        return NAMES.every((n) => layersSent(last[n]).filter((l) => l.packetsSent > 0).length >= 2);
      },
      deadline,
    );
    summary.checks.simulcastSent = Object.fromEntries(
      NAMES.map((n) => [n, layersSent(last[n]).filter((l) => l.packetsSent > 0).map((l) => `${l.rid} ${l.size}`)]),
    );

    // 3. The server forwards a lower layer on request: alice caps bob's camera at `low`.
    const bobVideo = last.alice.tracksPublished.find((t) => t.participant === 'bob' && t.kind === 'video');
    if (!bobVideo) throw new Error('alice was never told about bob\'s video track');
    const widthBefore = last.alice.remotes.bob.width;
    // The width of bob's lowest layer (rid q) as bob's encoder reports it.
    const lowWidth = Number(layersSent(last.bob).find((l) => l.rid === 'q' && l.size)?.size.split('x')[0]);
    if (!(lowWidth > 0)) throw new Error('bob does not send the q layer');
    await pages.alice.evaluate((id) => window.hz.setLayer(id, 'low'), bobVideo.id);
    await until(
      'alice to receive bob\'s low layer after set_layer low',
      async () => {
        last.alice = await stats('alice');
        last.bob = await stats('bob');
        const r = last.alice.remotes.bob;
        return r.width > 0 && r.width <= lowWidth && r.frame && r.frame.brightness > MIN_BRIGHTNESS;
      },
      deadline,
    );
    summary.checks.setLayerLow = { widthBefore, widthAfter: last.alice.remotes.bob.width };
    await pages.alice.evaluate((id) => window.hz.setLayer(id, 'high'), bobVideo.id);
    await until(
      'alice to get a larger layer of bob again after set_layer high',
      async () => {
        last.alice = await stats('alice');
        last.bob = await stats('bob');
        const r = last.alice.remotes.bob;
        return r.width > lowWidth && r.frame && r.frame.brightness > MIN_BRIGHTNESS;
      },
      deadline,
    );
    summary.checks.setLayerHigh = { widthAfter: last.alice.remotes.bob.width };
    summary.ok = true;
  } catch (e) {
    failure = e;
    summary.failure = e.message;
    for (const n of NAMES) {
      try {
        last[n] = await stats(n);
      } catch {}
    }
  }

  for (const n of NAMES) {
    const other = NAMES.find((o) => o !== n);
    const s = last[n];
    try {
      await pages[n].screenshot({ path: join(ARTIFACTS, `media-${n}.png`) });
      await writeFile(join(ARTIFACTS, `media-${n}-sdp.json`), JSON.stringify(await pages[n].evaluate(() => window.hz.sdp()), null, 2));
      await writeFile(join(ARTIFACTS, `media-${n}-stats.json`), JSON.stringify(s, null, 2));
    } catch (e) {
      note(`artifacts of ${n}: ${e.message}`);
    }
    const r = s?.remotes?.[other];
    summary.pages[n] = {
      joinedMs: s?.joinedMs ?? null,
      // From the page's navigation start to the first presented frame of the other's video.
      joinToFirstFrameMs: r?.firstFrameMs ?? null,
      // From the server's `hello` (joined) to that frame: the media set-up alone.
      helloToFirstFrameMs: r?.firstFrameMs != null && s?.joinedMs != null ? r.firstFrameMs - s.joinedMs : null,
      remoteFrames: r?.frames ?? 0,
      remoteSize: r ? `${r.width}x${r.height}` : null,
      remoteBrightness: r?.frame ? Math.round(r.frame.brightness) : null,
      localBrightness: s?.local?.frame ? Math.round(s.local.frame.brightness) : null,
      remoteAudioPeak: r?.audioPeak == null ? null : Number(r.audioPeak.toFixed(4)),
      connections: s?.pc ?? null,
      candidatePairs: s?.pairs ?? null,
      subscribeOffers: s?.subscribeOffers ?? 0,
      layersSent: layersSent(s),
      inboundVideo: (s?.inbound ?? []).filter((i) => i.type === 'inbound-rtp' && i.kind === 'video').map((i) => ({
        size: i.frameWidth ? `${i.frameWidth}x${i.frameHeight}` : null,
        framesDecoded: i.framesDecoded,
        packetsLost: i.packetsLost,
        nackCount: i.nackCount,
        pliCount: i.pliCount,
      })),
      errors: s?.errors ?? [],
    };
  }
  // Not failures (yet), but worth a look: on loopback nothing should be lost.
  summary.warnings = [];
  for (const [n, p] of Object.entries(summary.pages)) {
    for (const i of p.inboundVideo) {
      if (i.packetsLost > 0) {
        summary.warnings.push(`${n}: ${i.packetsLost} video packets counted lost on loopback (${i.nackCount} NACKs sent)`);
      }
    }
  }
  summary.bobSendTimeline = timeline;
  summary.serverCpuSeconds = await cpuSeconds(server.pid);
  summary.wallSeconds = Number(((Date.now() - started) / 1000).toFixed(1));
  console.log(JSON.stringify(summary, null, 2));
  await cleanup();
  if (failure) {
    note(`FAIL: ${failure.message}`);
    process.exitCode = 1;
  } else {
    note('PASS');
  }
}

main().catch(async (e) => {
  note(`FAIL: ${e.stack ?? e}`);
  await cleanup();
  process.exitCode = 1;
});
