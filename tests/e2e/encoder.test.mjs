// Operating-room encoders publishing by WHIP (issue 18, RFC 9725) in the real web client. A
// teaching session: the surgeon hosts, a trainee is invited. On the consultation's page the
// surgeon (中文) makes an encoder credential labelled 手术室 3 腔镜 with the default validity (a
// day), reads the WHIP URL and the bearer token from the page and copies both through the copy
// buttons; the trainee's page has no such section and the API refuses them. An "encoder" — a
// plain page on the server's own origin running a browser WHIP client with nothing but
// RTCPeerConnection and fetch (getUserMedia on the fake camera and microphone, sendonly
// transceivers, an offer POSTed with the bearer token) — is told 409 consultation_not_live
// while no host is in. The surgeon joins the call, which makes it live; "show again" hands
// out the credential once more, and the encoder publishes with it: 201, the answer as
// application/sdp, a Location; its connection comes up. The trainee (English) joins the watch
// page and sees the encoder's picture playing, featured as the large view, its tile and its
// row in the participant list tagged Encoder; the surgeon's call shows it tagged 编码器. The
// coordinator reads the section in English. The surgeon withdraws the credential on the
// consultation's page after the page asks: the encoder leaves both calls, and the encoder's
// DELETE of its session (and a new POST) answer 403 encoder_revoked. The audit trail has the
// three encoder steps.
//
// WHEP (issue 18): a player — another plain page on the server's origin, nothing but
// RTCPeerConnection and fetch, one audio and one video transceiver, both recvonly — offers
// with the requesting doctor's room token (POST /v1/consultations/{id}/join through the API).
// Before a host is in it is told 409 consultation_not_live; once the surgeon is in (camera
// and microphone on) it is given the host's camera and microphone, and lets that session go
// (DELETE, 200). With the encoder publishing, and before the withdrawal, it is given the
// encoder's (201, application/sdp, Location /v1/whep/…; the answer's msid and the received
// streams name the encoder): the picture plays on the page's <video> (frames presented, not
// black, changing) and the sound arrives (the audio track live, inbound-rtp packets, not
// silence). Its DELETE answers 200, a second one 404 whep_session_not_found; the audit trail
// has consultation.whep_watch.
//
//   node tests/e2e/encoder.test.mjs     (prints a JSON summary; exit code 1 on failure)
//
// Screenshots: tests/e2e/artifacts/screens/encoder-*.png.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ROOT, apiClient, launchBrowser, newPage, note, pageErrors, runTest, shot, signIn, startServer, until,
} from './lib/harness.mjs';
import { MIN_BRIGHTNESS, MIN_FRAMES, callState, joinCall, openCall, precallReady, snapshot, videoPlaying } from './lib/call.mjs';
import { openDetail } from './lib/office.mjs';

const T = 'encoder';
const LABEL = '手术室 3 腔镜';

/** The web client's catalogues (office and call texts) of a language. @param {string} lang */
async function catalogue(lang) {
  const read = async (/** @type {string} */ f) => JSON.parse(await readFile(join(ROOT, 'web-client/i18n', f), 'utf8'));
  return { ...await read(`${lang}.json`), ...await read(`call.${lang}.json`) };
}

/** Waits for `locator`'s text to equal `want`; returns it. */
async function textIs(locator, want, what, ms = 15000) {
  return until(`${what} (${want})`, async () => {
    const text = (await locator.innerText().catch(() => '')).trim();
    return text === want ? text : false;
  }, ms, 100);
}

/** Waits until `locator`'s attribute `name` is `want`. */
async function attrIs(locator, name, want, what, ms = 15000) {
  return until(`${what} (${name}=${want})`, async () => (await locator.getAttribute(name).catch(() => null)) === want, ms, 100);
}

/** An API instant in ms (the API sends nanoseconds). @param {string} ts */
const ms = (ts) => Date.parse(ts.replace(/(\.\d{3})\d+/, '$1'));

/**
 * A WHIP client (RFC 9725 §4.2) on the encoder's page, as a browser-based encoder would be:
 * nothing but getUserMedia, RTCPeerConnection and fetch. Same origin as the server, so no
 * CORS is involved. `publish` answers what the server said; after a 201 the connection stays
 * on the page (window.hzWhip) for `state` and `stop`.
 * @param {import('playwright-core').Page} page
 */
async function installWhipClient(page) {
  await page.evaluate(() => {
    /** @type {any} */
    const w = window;
    w.hzWhip = {
      /** @type {RTCPeerConnection | null} */
      pc: null,
      /** @type {MediaStream | null} */
      stream: null,
      /** @type {string | null} */
      session: null,
      /** @param {string} url @param {string} token */
      async publish(url, token) {
        const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
        const pc = new RTCPeerConnection();
        // Send only: an encoder watches nobody (the server never offers it anything).
        for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
        await pc.setLocalDescription(await pc.createOffer());
        // The server is ICE-lite and learns our address from our checks: waiting for the
        // gathering to complete is optional (the offer may go without candidates).
        const gathered = await new Promise((resolve) => {
          if (pc.iceGatheringState === 'complete') { resolve(true); return; }
          const timer = setTimeout(() => resolve(false), 2000);
          pc.addEventListener('icegatheringstatechange', () => {
            if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(true); }
          });
        });
        const res = await fetch(url, {
          method: 'POST',
          headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/sdp' },
          body: pc.localDescription?.sdp,
        });
        const text = await res.text();
        const out = {
          status: res.status, type: res.headers.get('content-type'), location: res.headers.get('location'),
          gathered, candidates: (pc.localDescription?.sdp.match(/^a=candidate:/gm) ?? []).length,
          code: /** @type {string | null} */ (null), details: /** @type {any} */ (null), answer: /** @type {string | null} */ (null),
        };
        if (res.status === 201) {
          await pc.setRemoteDescription({ type: 'answer', sdp: text });
          this.pc = pc;
          this.stream = stream;
          this.session = out.location;
          out.answer = text.slice(0, 200);
        } else {
          try { const j = JSON.parse(text); out.code = j.code; out.details = j.details ?? null; } catch { out.code = `not JSON: ${text.slice(0, 80)}`; }
          pc.close();
          stream.getTracks().forEach((t) => t.stop());
        }
        return out;
      },
      state() {
        return this.pc ? { connection: this.pc.connectionState, ice: this.pc.iceConnectionState } : null;
      },
      /** Ends the session (DELETE of its Location, RFC 9725 §4.2); answers the status and code. @param {string} token */
      async stop(token) {
        const res = await fetch(/** @type {string} */ (this.session), { method: 'DELETE', headers: { Authorization: `Bearer ${token}` } });
        const text = await res.text();
        let code = null;
        try { code = JSON.parse(text).code; } catch { /* a 200 has no JSON body */ }
        return { status: res.status, code };
      },
    };
  });
}

/**
 * A WHEP player (draft-ietf-wish-whep) on a plain page of the server's origin, as a lecture
 * hall's screen would run one: nothing but RTCPeerConnection and fetch — one audio and one
 * video transceiver, both receive-only, an offer POSTed with a room token. `watch` answers
 * what the server said; after a 201 the connection stays on the page (window.hzWhep), its
 * video in a <video> that `measure` reads (frames presented, brightness, a fingerprint of the
 * picture, as tests/e2e/lib/call.mjs remoteVideo does) with the audio's inbound-rtp counters.
 * @param {import('playwright-core').Page} page
 */
async function installWhepPlayer(page) {
  await page.evaluate(() => {
    /** @type {any} */
    const w = window;
    w.hzWhep = {
      /** @type {RTCPeerConnection | null} */
      pc: null,
      /** @type {string | null} */
      session: null,
      /** @type {HTMLVideoElement | null} */
      video: null,
      frames: 0,
      /** @param {string} url @param {string} token */
      async watch(url, token) {
        const pc = new RTCPeerConnection();
        pc.addTransceiver('audio', { direction: 'recvonly' });
        pc.addTransceiver('video', { direction: 'recvonly' });
        /** @type {RTCTrackEvent[]} */
        const got = [];
        pc.addEventListener('track', (e) => { got.push(e); });
        await pc.setLocalDescription(await pc.createOffer());
        const gathered = await new Promise((resolve) => {
          if (pc.iceGatheringState === 'complete') { resolve(true); return; }
          const timer = setTimeout(() => resolve(false), 2000);
          pc.addEventListener('icegatheringstatechange', () => {
            if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(true); }
          });
        });
        const res = await fetch(url, {
          method: 'POST',
          headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/sdp' },
          body: pc.localDescription?.sdp,
        });
        const text = await res.text();
        const out = {
          status: res.status, type: res.headers.get('content-type'), location: res.headers.get('location'), gathered,
          code: /** @type {string | null} */ (null), details: /** @type {any} */ (null),
          answer: /** @type {string | null} */ (null), sections: /** @type {string[]} */ ([]),
          tracks: /** @type {string[]} */ ([]), streams: /** @type {string[]} */ ([]),
        };
        if (res.status !== 201) {
          try { const j = JSON.parse(text); out.code = j.code; out.details = j.details ?? null; } catch { out.code = `not JSON: ${text.slice(0, 80)}`; }
          pc.close();
          return out;
        }
        await pc.setRemoteDescription({ type: 'answer', sdp: text });
        out.answer = text.slice(0, 200);
        // What the answer gives each section: "audio sendonly", "video sendonly".
        out.sections = text.split(/\r?\n(?=m=)/).slice(1).map((m) => `${m.split(' ')[0].slice(2)} ${(m.match(/^a=(sendrecv|sendonly|recvonly|inactive)$/m) ?? [])[1] ?? '?'}`);
        // Whose tracks: the answer's msid names them <participant> <participant>.<track>, and
        // the received tracks come in streams named by the participant.
        out.tracks = text.split(/\r?\n/).flatMap((l) => l.match(/^a=msid:\S+ (\S+)$/)?.[1] ?? []).sort();
        out.streams = [...new Set(got.flatMap((e) => e.streams.map((st) => st.id)))];
        this.pc = pc;
        this.session = out.location;
        // The picture on the page, as a player shows it.
        const v = document.createElement('video');
        v.muted = false;
        v.autoplay = true;
        v.playsInline = true;
        v.width = 640;
        v.height = 360;
        v.style.cssText = 'display:block;background:#000;margin:8px 0';
        v.dataset.testid = 'whep-video';
        // The sound with it, played (Chromium measures a received track's audio energy only
        // as it plays it out; the test browser's autoplay policy lets it play unmuted).
        v.srcObject = new MediaStream(pc.getReceivers().map((r) => r.track));
        document.body.append(v);
        this.video = v;
        this.frames = 0;
        const onFrame = () => { if (this.video === v) this.frames++; v.requestVideoFrameCallback(onFrame); };
        v.requestVideoFrameCallback(onFrame);
        v.play().catch(() => { /* autoplay is allowed in the test browser; measure() tells */ });
        return out;
      },
      state() {
        return this.pc ? { connection: this.pc.connectionState, ice: this.pc.iceConnectionState } : null;
      },
      /** The picture as presented now, and the received audio. */
      async measure() {
        const v = this.video;
        if (!v || !this.pc) return null;
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
        const at = this.pc.getReceivers().find((/** @type {RTCRtpReceiver} */ r) => r.track.kind === 'audio')?.track;
        /** @type {any} */
        let audio = null;
        (await this.pc.getStats()).forEach((/** @type {any} */ r) => {
          if (r.type === 'inbound-rtp' && r.kind === 'audio') {
            audio = { packetsReceived: r.packetsReceived, bytesReceived: r.bytesReceived, totalAudioEnergy: r.totalAudioEnergy ?? null };
          }
        });
        return {
          frames: this.frames, brightness, fingerprint, width: v.videoWidth, height: v.videoHeight,
          audioTrack: at ? { readyState: at.readyState, muted: at.muted } : null, audio,
        };
      },
      /** Ends the session (DELETE of its Location); answers the status and code. @param {string} token */
      async stop(token) {
        const res = await fetch(/** @type {string} */ (this.session), { method: 'DELETE', headers: { Authorization: `Bearer ${token}` } });
        const text = await res.text();
        let code = null;
        try { code = JSON.parse(text).code; } catch { /* a 200 has no JSON body */ }
        return { status: res.status, code };
      },
    };
  });
}

await runTest(T, async (s) => {
  const srv = await s.step('start the server', () => startServer({ demo: true }));
  const { origin } = srv;
  const api = apiClient(origin);
  const admin = await api.login('admin', srv.adminPassword);
  const coord = await api.login('coordinator');
  const surgeonUser = await api.user(coord, 'surgeon');
  const traineeUser = await api.user(coord, 'trainee');
  const zh = await catalogue('zh-CN');
  const en = await catalogue('en');

  // 1. A teaching session: the surgeon leads it (its host), the trainee is invited. Not started
  // through the API: the surgeon's joining makes it live.
  const id = await s.step('a teaching session with the surgeon as host and a trainee invited', async () => {
    const doctor = await api.login('doctor-east');
    const c = await api.call(doctor, 'POST', '/v1/consultations', { kind: 'teaching', specialty: 'general_surgery', urgency: 'routine', summary: 'E2E: 腹腔镜胆囊切除术教学（手术室直播）' });
    await api.call(coord, 'POST', `/v1/consultations/${c.id}/accept`, { specialists: [surgeonUser.id], start: new Date(Date.now() + 5 * 60e3).toISOString(), duration_minutes: 60 });
    await api.call(coord, 'POST', `/v1/consultations/${c.id}/invite`, { participants: [traineeUser.id] });
    return c.id;
  });
  s.consultation = id;
  const whipPath = `/v1/consultations/${id}/whip`;

  const browser = await launchBrowser({ capture: '640x360' });
  // The surgeon's consultation page (one tab) and call (another), the trainee's watch page in
  // English, the encoder, and the coordinator's page in English.
  const desk = await newPage(browser, { name: `${T}-surgeon-desk`, lang: 'zh-CN' });
  const surgeon = await newPage(browser, { name: `${T}-surgeon-call`, lang: 'zh-CN' });
  const trainee = await newPage(browser, { name: `${T}-trainee`, lang: 'en', viewport: { width: 1280, height: 800 } });
  const encoder = await newPage(browser, { name: `${T}-device`, lang: 'en' });
  // A WHEP player (a lecture hall's screen) watching with the requesting doctor's room token.
  const player = await newPage(browser, { name: `${T}-whep-player`, lang: 'en' });
  const whepUrl = `${origin}/v1/consultations/${id}/whep`;
  const row = (/** @type {string} */ enc) => desk.locator(`[data-testid="encoder-link"][data-encoder="${enc}"]`);

  // 2. The credential, made on the consultation's page.
  const made = await s.step('zh: the surgeon makes a credential and reads the URL and the token', async () => {
    await signIn(desk, origin, 'surgeon');
    await openDetail(desk, id);
    const section = desk.getByTestId('encoder-links');
    await section.waitFor();
    await textIs(section.locator('h2'), zh['encoders.title'], 'the section\'s title in Chinese');
    await desk.getByTestId('encoder-link-none').waitFor();
    const validity = desk.getByTestId('encoder-validity');
    if ((await validity.inputValue()) !== '24') throw new Error(`a credential should be valid for 24 hours by default, the form offers ${await validity.inputValue()}`);
    const choices = await validity.locator('option').evaluateAll((os) => os.map((o) => [/** @type {HTMLOptionElement} */ (o).value, o.textContent]));
    if (choices.map((c) => c[0]).join() !== '2,8,24,72,168,744' || choices[5][1] !== zh['guests.days'].replace('{n}', '31')) {
      throw new Error(`the validity choices: ${JSON.stringify(choices)}`);
    }
    // The label names the encoder in the call: required (the browser stops an empty form).
    await desk.getByTestId('encoder-create').click();
    if (!(await desk.getByTestId('encoder-label').evaluate((el) => /** @type {HTMLInputElement} */ (el).validity.valueMissing))) throw new Error('an empty label is not refused');
    if (await desk.getByTestId('encoder-secret-box').count()) throw new Error('a credential was made without a label');
    await desk.getByTestId('encoder-label').fill(LABEL);
    await desk.getByTestId('encoder-create').click();
    const box = desk.getByTestId('encoder-secret-box');
    await until('the new credential on the page', async () => {
      const err = desk.getByTestId('encoder-create-error');
      if (await err.count()) throw new Error(`making the credential failed: ${await err.getAttribute('data-code')}: ${await err.innerText()}`);
      return box.isVisible();
    }, 15000, 100);
    const encoderId = /** @type {string} */ (await box.getAttribute('data-encoder'));
    const url = await desk.getByTestId('encoder-url').inputValue();
    const token = await desk.getByTestId('encoder-token').inputValue();
    if (url !== `${origin}${whipPath}`) throw new Error(`the page shows the WHIP URL ${url}, not ${origin}${whipPath}`);
    if (token.split('.').length !== 3) throw new Error(`the page shows no token: "${token}"`);
    for (const f of ['encoder-url', 'encoder-token']) {
      if ((await desk.getByTestId(f).getAttribute('readonly')) === null) throw new Error(`${f} is not read-only`);
    }
    await textIs(desk.getByTestId('encoder-obs-hint'), zh['encoders.obs_hint'], 'how OBS takes them');
    await attrIs(row(encoderId), 'data-status', 'active', 'the credential listed as active');
    await textIs(row(encoderId).getByTestId('encoder-link-label'), LABEL, 'the credential listed with its label');
    await textIs(row(encoderId).getByTestId('encoder-link-status'), zh['encoders.status.active'], 'its state in words');
    // Both copy buttons fill the clipboard, and the page says which went.
    await desk.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
    for (const [what, value] of /** @type {const} */ ([['url', url], ['token', token]])) {
      await desk.getByTestId(`encoder-${what}-copy`).click();
      await attrIs(desk.getByTestId('encoder-copy-status'), 'data-what', what, `the ${what} copy reported`);
      await attrIs(desk.getByTestId('encoder-copy-status'), 'data-state', 'copied', `the ${what} copied`);
      await textIs(desk.getByTestId('encoder-copy-status'), zh[`encoders.copied_${what}`], `the ${what} copy said in Chinese`);
      const clip = await desk.evaluate(() => navigator.clipboard.readText());
      if (clip !== value) throw new Error(`after copying the ${what} the clipboard holds "${clip}"`);
    }
    const rec = (await api.call(coord, 'GET', `/v1/consultations/${id}`)).encoders.find((/** @type {any} */ e) => e.id === encoderId);
    const hours = (ms(rec.expires_at) - ms(rec.created_at)) / 3600e3;
    if (rec.label !== LABEL || rec.created_by !== surgeonUser.id || Math.abs(hours - 24) > 0.01) throw new Error(`the credential on record: ${JSON.stringify(rec)}`);
    s.checks.credential = { id: encoderId, hours, url };
    await shot(desk, `${T}-desk-credential`);
    return { encoderId, url, token };
  });
  const encId = `encoder-${made.encoderId}`;

  await s.step('the trainee and the requesting doctor may not bring in an encoder', async () => {
    await signIn(trainee, origin, 'trainee');
    await openDetail(trainee, id);
    if (await trainee.getByTestId('encoder-links').count()) throw new Error('the trainee\'s page offers encoder credentials');
    for (const who of ['trainee', 'doctor-east']) {
      const r = await api.request(await api.login(who), 'POST', `/v1/consultations/${id}/encoders`, { label: 'x' });
      if (r.status !== 403 || r.data?.code !== 'forbidden_role') throw new Error(`${who} making a credential: ${r.status} ${JSON.stringify(r.data)}`);
    }
  });

  // 3. The encoder, before a host is in.
  await s.step('before a host is in, the encoder is told the consultation is not under way', async () => {
    // A plain page on the server's origin (a secure context for getUserMedia; no app on it).
    await encoder.goto(`${origin}/healthz`);
    await installWhipClient(encoder);
    const r = await encoder.evaluate(({ url, token }) => /** @type {any} */ (window).hzWhip.publish(url, token), { url: made.url, token: made.token });
    if (r.status !== 409 || r.code !== 'consultation_not_live' || r.details?.status !== 'scheduled') throw new Error(`a publish before any host: ${JSON.stringify(r)}`);
    s.checks.notLive = { status: r.status, code: r.code };
  });

  // The requesting doctor's room token: what a player in their lecture hall watches with.
  const viewerToken = await s.step('before a host is in, a WHEP player is told the consultation is not under way', async () => {
    const r = await api.call(await api.login('doctor-east'), 'POST', `/v1/consultations/${id}/join`, {});
    if (typeof r.token !== 'string' || r.token.split('.').length !== 3) throw new Error(`no room token from /join: ${JSON.stringify(r)}`);
    await player.goto(`${origin}/healthz`);
    await installWhepPlayer(player);
    const early = await player.evaluate(({ url, token }) => /** @type {any} */ (window).hzWhep.watch(url, token), { url: whepUrl, token: r.token });
    if (early.status !== 409 || early.code !== 'consultation_not_live' || early.details?.status !== 'scheduled') throw new Error(`a WHEP offer before any host: ${JSON.stringify(early)}`);
    s.checks.whepNotLive = { status: early.status, code: early.code };
    return /** @type {string} */ (r.token);
  });

  // 4. The surgeon joins: the consultation is live.
  await s.step('zh: the surgeon joins the call, the consultation goes live', async () => {
    await signIn(surgeon, origin, 'surgeon');
    await openCall(surgeon, origin, id);
    await precallReady(surgeon);
    const state = await joinCall(surgeon);
    if (state !== 'joined') throw new Error(`the host should join at once, got ${state}`);
    await until('the consultation to be live', async () => (await api.call(coord, 'GET', `/v1/consultations/${id}`)).status === 'live', 10000, 200);
    // Live is the host's join; their tracks exist on the server once their first packets
    // arrive (the microphone's usually before the camera's first frame). The only room on
    // this server, so the gauge counts the host's.
    await until('the server to have the host\'s camera and microphone', async () => {
      const text = await (await fetch(`${origin}/metrics`)).text();
      return Number(text.match(/^huizhen_media_published_tracks (\d+)$/m)?.[1]) === 2;
    }, 20000, 100);
  });

  // The host is in with their camera and microphone: a player is given those while no
  // encoder publishes (docs/api.md, "Players: watching by WHEP"), not 409 nothing_to_watch,
  // which a room gives only while neither an encoder nor a host publishes (never in this
  // walk, where the surgeon joins with the camera on; tests/tests/whip.rs has it).
  await s.step('before the encoder publishes, a WHEP player is given the host\'s camera and microphone', async () => {
    const r = await player.evaluate(({ url, token }) => /** @type {any} */ (window).hzWhep.watch(url, token), { url: whepUrl, token: viewerToken });
    s.checks.whepBeforeEncoder = { status: r.status, code: r.code, sections: r.sections, tracks: r.tracks, streams: r.streams };
    if (r.status !== 201) throw new Error(`a WHEP offer with only the host publishing: ${JSON.stringify(r)}`);
    if (r.tracks.join() !== `${surgeonUser.id}.cam,${surgeonUser.id}.mic` || r.streams.join() !== surgeonUser.id) throw new Error(`the player was given ${r.tracks.join()} (streams ${r.streams.join()}), not the host's camera and microphone`);
    await until('the player\'s connection to come up', async () => {
      const x = await player.evaluate(() => /** @type {any} */ (window).hzWhep.state());
      if (x?.connection === 'failed') throw new Error(`the player's connection failed: ${JSON.stringify(x)}`);
      return x?.connection === 'connected';
    }, 20000, 200);
    const del = await player.evaluate((token) => /** @type {any} */ (window).hzWhep.stop(token), viewerToken);
    if (del.status !== 200) throw new Error(`DELETE ${r.location}: ${JSON.stringify(del)}`);
    // The player lets it go (a new session is a new connection).
    await player.evaluate(() => { const w = /** @type {any} */ (window).hzWhep; w.pc.close(); w.video.remove(); w.pc = w.video = w.session = null; });
  });

  // 5. Show again, and publish with what was shown.
  const token = await s.step('zh: "show again" hands out the credential once more', async () => {
    await openDetail(desk, id);
    await row(made.encoderId).getByTestId('encoder-link-show').click();
    await attrIs(desk.getByTestId('encoder-secret-box'), 'data-encoder', made.encoderId, 'the credential shown again');
    const url = await desk.getByTestId('encoder-url').inputValue();
    const again = await desk.getByTestId('encoder-token').inputValue();
    if (url !== made.url || again.split('.').length !== 3) throw new Error(`shown again: ${url} / "${again}"`);
    return again;
  });

  const published = await s.step('the encoder publishes by WHIP: 201, an SDP answer, a Location; media connects', async () => {
    const r = await encoder.evaluate(({ url, token }) => /** @type {any} */ (window).hzWhip.publish(url, token), { url: made.url, token });
    if (r.status !== 201) throw new Error(`the publish answered ${r.status} ${r.code}: ${JSON.stringify(r.details)}`);
    if (!/^application\/sdp\b/.test(r.type ?? '')) throw new Error(`the answer's content type is ${r.type}`);
    if (!/^\/v1\/whip\/[0-9a-f]{16,}$/.test(r.location ?? '')) throw new Error(`the Location is ${r.location}`);
    if (!r.answer.startsWith('v=0')) throw new Error(`the answer is no SDP: ${r.answer}`);
    const st = await until('the encoder\'s connection to come up', async () => {
      const x = await encoder.evaluate(() => /** @type {any} */ (window).hzWhip.state());
      if (x?.connection === 'failed') throw new Error(`the encoder's connection failed: ${JSON.stringify(x)}`);
      return x?.connection === 'connected' ? x : null;
    }, 20000, 200);
    s.checks.publish = { status: r.status, type: r.type, location: r.location, iceGatheringComplete: r.gathered, offerCandidates: r.candidates, connection: st.connection };
    return r;
  });

  // 6. The trainee's watch page: the operating field large, tagged as an encoder.
  await s.step('en: the trainee watches and sees the encoder\'s picture, featured and tagged Encoder', async () => {
    await openCall(trainee, origin, id);
    await precallReady(trainee, 30000);
    const state = await joinCall(trainee, ['joined', 'lobby'], 30000);
    if (state === 'lobby') {
      await surgeon.locator(`[data-testid="lobby-entry"][data-participant="${traineeUser.id}"]`).getByTestId('lobby-admit').click();
      await callState(trainee, 'joined');
    }
    const seen = await videoPlaying(trainee, encId, { deadlineMs: 60000, what: 'the encoder on the trainee\'s page' });
    const tile = trainee.locator(`[data-testid="tile"][data-participant="${encId}"][data-source="person"]`);
    await attrIs(tile, 'data-encoder', 'true', 'the encoder\'s tile marked as one');
    await textIs(tile.getByTestId('tile-encoder'), en['call.tile.encoder'], 'the Encoder tag on its tile');
    await textIs(tile.getByTestId('tile-name'), LABEL, 'the tile named by the label');
    if (await tile.getByTestId('tile-guest').count()) throw new Error('the encoder is tagged as a guest');
    // An encoder is not a host; on a teaching session's watch page its picture is the large view.
    await attrIs(trainee.getByTestId('stage'), 'data-layout', 'speaker', 'the watch page in speaker layout');
    await attrIs(tile, 'data-place', 'main', 'the encoder\'s picture featured');
    const item = trainee.locator(`[data-testid="participant"][data-participant="${encId}"]`);
    await attrIs(item, 'data-encoder', 'true', 'the encoder\'s row in the participant list');
    await textIs(item.getByTestId('participant-encoder'), en['call.tile.encoder'], 'the Encoder tag in the participant list');
    const info = (await snapshot(trainee)).participants.find((/** @type {any} */ p) => p.id === encId);
    if (!info || !info.encoder || info.host || info.name !== LABEL) throw new Error(`the encoder as the room describes it: ${JSON.stringify(info)}`);
    // The lecturer is still there, a thumbnail.
    await attrIs(trainee.locator(`[data-testid="tile"][data-participant="${surgeonUser.id}"][data-source="person"]`), 'data-place', 'thumb', 'the lecturer a thumbnail');
    s.checks.traineeSees = { frames: seen.frames, brightness: Math.round(seen.brightness), size: `${seen.width}x${seen.height}` };
    await shot(trainee, `${T}-trainee-watch`);
  });

  await s.step('zh: the surgeon\'s call shows the encoder tagged 编码器', async () => {
    const seen = await videoPlaying(surgeon, encId, { deadlineMs: 30000, what: 'the encoder on the surgeon\'s page' });
    const tile = surgeon.locator(`[data-testid="tile"][data-participant="${encId}"][data-source="person"]`);
    await textIs(tile.getByTestId('tile-encoder'), zh['call.tile.encoder'], 'the 编码器 tag on its tile');
    await textIs(surgeon.locator(`[data-testid="participant"][data-participant="${encId}"]`).getByTestId('participant-encoder'), zh['call.tile.encoder'], 'the 编码器 tag in the participant list');
    s.checks.surgeonSees = { frames: seen.frames, brightness: Math.round(seen.brightness), size: `${seen.width}x${seen.height}` };
    await shot(surgeon, `${T}-surgeon-call`);
  });

  await s.step('en: the coordinator reads the section in English', async () => {
    const coordinator = await newPage(browser, { name: `${T}-coordinator`, lang: 'en' });
    await signIn(coordinator, origin, 'coordinator');
    await openDetail(coordinator, id);
    const section = coordinator.getByTestId('encoder-links');
    await textIs(section.locator('h2'), en['encoders.title'], 'the section\'s title in English');
    await textIs(coordinator.getByTestId('encoder-create'), en['encoders.create'], 'the create button in English');
    const r = coordinator.locator(`[data-testid="encoder-link"][data-encoder="${made.encoderId}"]`);
    await textIs(r.getByTestId('encoder-link-status'), en['encoders.status.active'], 'the state in English');
    await textIs(r.getByTestId('encoder-link-show'), en['encoders.show_again'], 'show again in English');
    await textIs(r.getByTestId('encoder-link-revoke'), en['encoders.revoke'], 'withdraw in English');
    await shot(coordinator, `${T}-coordinator-en`);
    if (pageErrors(coordinator).length) throw new Error(`uncaught errors: ${pageErrors(coordinator).join(' | ')}`);
    await coordinator.close();
  });

  // The operating field on a WHEP player: a plain page, no app code.
  await s.step('a WHEP player (RTCPeerConnection + fetch) receives the encoder\'s picture and sound; DELETE ends it', async () => {
    const r = await player.evaluate(({ url, token }) => /** @type {any} */ (window).hzWhep.watch(url, token), { url: whepUrl, token: viewerToken });
    if (r.status !== 201) throw new Error(`the WHEP offer answered ${r.status} ${r.code}: ${JSON.stringify(r.details)}`);
    if (!/^application\/sdp\b/.test(r.type ?? '')) throw new Error(`the answer's content type is ${r.type}`);
    if (!/^\/v1\/whep\/[0-9a-f]{16,}$/.test(r.location ?? '')) throw new Error(`the Location is ${r.location}`);
    if (!r.answer.startsWith('v=0')) throw new Error(`the answer is no SDP: ${r.answer}`);
    if (r.sections.join() !== 'audio sendonly,video sendonly') throw new Error(`the answer's sections: ${r.sections.join()}`);
    // The encoder's, not the host's (who publishes too): a browser encoder's tracks are named
    // by its offer's msid, i.e. its MediaStreamTrack ids.
    const sent = await encoder.evaluate(() => /** @type {any} */ (window).hzWhip.stream.getTracks().map((/** @type {MediaStreamTrack} */ t) => t.id));
    const want = sent.map((/** @type {string} */ t) => `${encId}.${t}`).sort();
    if (r.tracks.join() !== want.join() || r.streams.join() !== encId) throw new Error(`the player was given ${r.tracks.join()} (streams ${r.streams.join()}), not the encoder's ${want.join()}`);
    const st = await until('the player\'s connection to come up', async () => {
      const x = await player.evaluate(() => /** @type {any} */ (window).hzWhep.state());
      if (x?.connection === 'failed') throw new Error(`the player's connection failed: ${JSON.stringify(x)}`);
      return x?.connection === 'connected' ? x : null;
    }, 20000, 200);
    /** @type {any} */
    let last = null;
    const measure = async () => (last = await player.evaluate(() => /** @type {any} */ (window).hzWhep.measure()));
    try {
      const first = await until(`the player's picture to play (> ${MIN_FRAMES} frames, not black) and its sound to arrive (packets, not silence)`, async () => {
        const m = await measure();
        return m && m.frames > MIN_FRAMES && m.brightness != null && m.brightness > MIN_BRIGHTNESS
          && m.audioTrack?.readyState === 'live' && m.audio?.packetsReceived > 0 && m.audio.totalAudioEnergy > 0 ? m : null;
      }, 30000, 300);
      await until('the player\'s picture to keep advancing', async () => {
        const m = await measure();
        return m && m.frames >= first.frames + 10 && m.fingerprint !== first.fingerprint && m.brightness > MIN_BRIGHTNESS ? m : null;
      }, 30000, 300);
    } catch (e) {
      throw new Error(`${/** @type {Error} */ (e).message}; last seen: ${JSON.stringify(last)}; connection: ${JSON.stringify(await player.evaluate(() => /** @type {any} */ (window).hzWhep.state()))}`);
    }
    await shot(player, `${T}-whep-player`);
    const del = await player.evaluate((token) => /** @type {any} */ (window).hzWhep.stop(token), viewerToken);
    if (del.status !== 200) throw new Error(`DELETE ${r.location}: ${JSON.stringify(del)}`);
    const again = await player.evaluate((token) => /** @type {any} */ (window).hzWhep.stop(token), viewerToken);
    if (again.status !== 404 || again.code !== 'whep_session_not_found') throw new Error(`a second DELETE ${r.location}: ${JSON.stringify(again)}`);
    s.checks.whep = {
      status: r.status, type: r.type, location: r.location, sections: r.sections, tracks: r.tracks, streams: r.streams, iceGatheringComplete: r.gathered, connection: st.connection,
      frames: last.frames, brightness: Math.round(last.brightness), size: `${last.width}x${last.height}`,
      audio: { track: last.audioTrack?.readyState, packetsReceived: last.audio?.packetsReceived, totalAudioEnergy: last.audio?.totalAudioEnergy },
      delete: del.status, deleteAgain: again,
    };
  });

  // 7. Withdrawn on the consultation's page: out of the call at once, the token opens nothing.
  await s.step('zh: the surgeon withdraws the credential, after the page asks; the encoder leaves the calls', async () => {
    // The page as it stands (kept up to date by the server's pushes), with the token shown.
    await desk.getByTestId('encoder-secret-box').waitFor();
    const r = row(made.encoderId);
    await r.getByTestId('encoder-link-revoke').click();
    await textIs(r.getByTestId('encoder-link-revoke-question'), zh['encoders.revoke_confirm'], 'the question before withdrawing');
    await shot(desk, `${T}-desk-confirm`);
    await r.getByTestId('encoder-link-revoke-confirm').click();
    await attrIs(row(made.encoderId), 'data-status', 'revoked', 'the credential listed as withdrawn');
    await textIs(row(made.encoderId).getByTestId('encoder-link-status'), zh['encoders.status.revoked'], 'the withdrawn state in words');
    await textIs(desk.getByTestId('error-banner'), zh['encoders.revoked_done'], 'the notice that it is withdrawn');
    if (await desk.getByTestId('encoder-secret-box').count()) throw new Error('the withdrawn credential\'s token is still shown');
    if (await row(made.encoderId).locator('button').count()) throw new Error('a withdrawn credential still offers actions');
    for (const [page, who] of [[trainee, 'trainee'], [surgeon, 'surgeon']]) {
      await until(`the encoder to leave the ${who}'s call`, async () => (await page.locator(`[data-testid="tile"][data-participant="${encId}"], [data-testid="participant"][data-participant="${encId}"]`).count()) === 0, 15000, 100);
    }
    await shot(desk, `${T}-desk-withdrawn`);
    await shot(trainee, `${T}-trainee-after`);
  });

  await s.step('the encoder\'s DELETE of its session, and a new publish, answer 403 encoder_revoked', async () => {
    const del = await encoder.evaluate((token) => /** @type {any} */ (window).hzWhip.stop(token), token);
    if (del.status !== 403 || del.code !== 'encoder_revoked') throw new Error(`DELETE ${published.location} after the withdrawal: ${JSON.stringify(del)}`);
    const again = await encoder.evaluate(({ url, token }) => /** @type {any} */ (window).hzWhip.publish(url, token), { url: made.url, token: made.token });
    if (again.status !== 403 || again.code !== 'encoder_revoked') throw new Error(`a publish after the withdrawal: ${JSON.stringify(again)}`);
    s.checks.afterWithdrawal = { delete: del, publish: { status: again.status, code: again.code } };
  });

  await s.step('the audit trail has the encoder\'s steps and the player\'s', async () => {
    const { items } = await api.call(admin, 'GET', `/v1/audit?consultation=${id}&limit=1000`);
    const actions = new Set(items.map((/** @type {any} */ r) => r.action));
    for (const a of ['consultation.encoder_create', 'consultation.encoder_publish', 'consultation.encoder_revoke', 'consultation.whep_watch']) {
      if (!actions.has(a)) throw new Error(`no ${a} in the trail: ${[...actions]}`);
    }
  });

  for (const p of [desk, surgeon, trainee, encoder, player]) {
    const errors = pageErrors(p);
    if (errors.length) throw new Error(`uncaught errors on a page: ${errors.join(' | ')}`);
  }
  note('encoder checks passed');
});
