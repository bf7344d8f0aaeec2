// Before the call: devices with a live preview and a microphone meter, a speaker test, a
// network check, the join window (with an automatic retry when it opens) and the join button.
// Every text follows a language switch (relabel()) without reopening a device.
import { errorText, fmtTime, t } from '../i18n.js';
import { h, videoEl } from './dom.js';
import { audioContext, canPickSpeaker, errorName, levelMeter, listDevices, openMedia, stopStream } from './devices.js';
import { NO_WAY_IN } from './entry.js';
import { socketUrl } from './signaling.js';
import { Labels } from './labels.js';
import { toneSamples } from './tone.js';

/**
 * @typedef {object} JoinChoice
 * @property {MediaStream} stream what the preview opened (handed over to the call)
 * @property {boolean} video send the camera
 * @property {boolean} audio send the microphone
 * @property {string} [cameraId]
 * @property {string} [micId]
 * @property {string} [speakerId]
 * @property {[string, MediaStreamTrack][]} [extraCameras] after a reload: cam2… reopened on their devices
 * @property {boolean} [micMuted] after a reload: the microphone was muted
 * @property {boolean} [camMuted] after a reload: the camera was off
 */

/** @typedef {'pending' | 'ok' | 'warn' | 'fail' | 'skip'} NetState */
/** A network check's row: its state, its text (a function: written again on a language switch), the round trip in ms. @typedef {{ state: NetState, text: () => string, ms?: string }} NetRow */

/** How often a closed join window is asked again while the page waits (besides at opens_at). */
const WINDOW_POLL_MS = 30_000;

export class PreCall {
  /**
   * @param {import('./entry.js').Entry} entry how this page comes in (entry.js)
   * @param {(choice: JoinChoice) => void} onJoin
   */
  constructor(entry, onJoin) {
    this.entry = entry;
    this.c = entry.consultation;
    this.onJoin = onJoin;
    /** @type {MediaStream} */
    this.stream = new MediaStream();
    /** @type {ReturnType<typeof setTimeout>[]} */
    this.timers = [];
    /** @type {ReturnType<typeof setInterval> | null} */
    this.meterTimer = null;
    /** @type {{ level: () => number, stop: () => void } | null} */
    this.meter = null;
    this.destroyed = false;
    this.audience = false;
    this.windowOpen = false;
    this.mediaReady = false;
    /** @type {any} */
    this.grants = null;
    /** @type {any} the first /join answer: grants, ICE servers, a token for the socket check */
    this.join0 = null;
    /** @type {{ videoError: string | null, audioError: string | null }} */
    this.mediaErrors = { videoError: null, audioError: null };
    /** @type {'idle' | 'opening' | 'shown'} what the media message shows (renderMedia) */
    this.mediaView = 'idle';
    /** @type {() => Node[]} the join window's message, built again on a language switch */
    this.windowView = () => [];
    /** @type {Record<'rtt' | 'ws' | 'ice', NetRow> | null} the network check's rows */
    this.net = null;
    /** @type {{ audio: HTMLAudioElement, source: AudioBufferSourceNode | null } | null} the speaker test's tone while it plays */
    this.testing = null;
    /** @type {'idle' | 'playing' | 'played' | 'failed'} */
    this.testState = 'idle';
    this.testError = '';
    const L = (this.labels = new Labels());

    this.preview = videoEl('precall-preview');
    this.previewOff = L.set(h('div', { class: 'preview-off initials', testid: 'precall-preview-off', hidden: true }), 'call.precall.no_video');
    this.cameraSel = /** @type {HTMLSelectElement} */ (h('select', { testid: 'precall-camera', onchange: () => this.reopen('video') }));
    this.micSel = /** @type {HTMLSelectElement} */ (h('select', { testid: 'precall-mic', onchange: () => this.reopen('audio') }));
    this.speakerSel = /** @type {HTMLSelectElement} */ (h('select', { testid: 'precall-speaker', onchange: () => this.applySpeaker() }));
    this.videoOn = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', checked: true, testid: 'precall-video-on', onchange: () => this.toggle('video') }));
    this.audioOn = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', checked: true, testid: 'precall-audio-on', onchange: () => this.toggle('audio') }));
    this.levelBar = h('span', { class: 'level-bar' });
    this.level = L.set(h('div', { class: 'level', testid: 'mic-level', role: 'meter', dataset: { level: '0' } }, this.levelBar), 'call.precall.mic_level', 'aria-label');
    this.mediaMsg = h('div', { testid: 'precall-media-status', 'aria-live': 'polite' });
    this.windowMsg = h('div', { testid: 'join-window', 'aria-live': 'polite' });
    this.netList = h('ul', { class: 'netcheck', testid: 'network-check' });
    this.joinBtn = L.set(/** @type {HTMLButtonElement} */ (h('button', { testid: 'join-call', disabled: true, onclick: () => this.join(true, true) })), 'call.precall.join');
    this.previewBox = h('div', { class: 'preview-box' }, this.preview, this.previewOff, L.set(h('p', { class: 'muted small' }), 'call.precall.preview_note'));
    this.roleNote = L.set(h('p', { class: 'muted small', testid: 'precall-role', hidden: true }), 'call.precall.audience_note');
    this.speakerField = h('label', { class: 'field' }, L.set(h('span', {}), 'call.precall.speaker'), this.speakerSel);
    this.speakerField.hidden = !canPickSpeaker;
    // The speaker test: a short tone through the speaker chosen above (where the browser lets a
    // page choose; elsewhere through the default one).
    this.testBtn = L.set(/** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'ghost', testid: 'precall-speaker-test', dataset: { state: 'idle' }, onclick: () => { this.testSpeaker(); } })), 'call.precall.speaker_test');
    this.testMsg = h('span', { class: 'small muted', testid: 'precall-speaker-test-status', 'aria-live': 'polite' });
    this.speakerTest = h('div', { class: 'field speaker-test' }, h('span', { class: 'row' }, this.testBtn, this.testMsg));
    this.deviceBox = h('div', { class: 'devices' },
      h('label', { class: 'field' }, L.set(h('span', {}), 'call.precall.camera'), this.cameraSel),
      h('label', { class: 'field' }, L.set(h('span', {}), 'call.precall.mic'), this.micSel),
      this.speakerField,
      this.speakerTest,
      h('div', { class: 'toggles' },
        h('label', { class: 'check' }, this.videoOn, L.set(h('span', {}), 'call.precall.video_on')),
        h('label', { class: 'check' }, this.audioOn, L.set(h('span', {}), 'call.precall.audio_on'))),
      h('div', { class: 'field' }, L.set(h('span', {}), 'call.precall.mic_level'), this.level));
    this.el = h('section', { class: 'precall', testid: 'precall' },
      L.set(h('h1', { testid: 'precall-title' }), 'call.precall.title'),
      h('div', { class: 'precall-grid' },
        this.previewBox,
        h('div', { class: 'card' }, this.roleNote, this.deviceBox, this.mediaMsg)),
      h('div', { class: 'card' },
        L.set(h('h2', {}), 'call.net.title'), this.netList),
      h('div', { class: 'card join-card' }, this.windowMsg,
        h('div', { class: 'actions' },
          entry.back && L.set(h('a', { href: entry.back, class: 'button ghost', testid: 'precall-back' }), 'call.common.back'),
          this.joinBtn)));
  }

  /** The language changed (app.js): every text again, in place; devices and checks go on. */
  relabel() {
    if (this.destroyed) return;
    this.labels.apply();
    this.renderWindow();
    this.renderMedia();
    this.renderNet();
    this.renderSpeakerTest();
    for (const sel of [this.cameraSel, this.micSel, this.speakerSel]) {
      for (const o of sel.options) if (o.dataset.labelKey) o.textContent = t(o.dataset.labelKey, { n: o.dataset.n ?? '' });
    }
  }

  async start() {
    await this.checkWindow();
    if (this.destroyed) return;
    if (!this.audience) await this.openDevices();
    else await this.watchOnly();
    this.networkCheck().catch(() => {});
  }

  // ---- join window ----

  async checkWindow() {
    try {
      const j = await this.entry.join();
      if (this.destroyed) return;
      this.grants = j.grants;
      this.join0 = j;
      this.audience = !j.grants.can_publish;
      this.windowOpen = true;
      this.roleNote.hidden = !this.audience;
      this.showWindow(() => [h('p', { class: 'ok', testid: 'join-window-open' }, t('call.precall.window_open'))]);
      this.windowMsg.dataset.state = 'open';
    } catch (e) {
      if (this.destroyed) return;
      this.windowOpen = false;
      const err = /** @type {any} */ (e);
      const opens = err?.details?.opens_at;
      if (err?.code === 'join_window_not_open') {
        this.windowMsg.dataset.state = 'not_open';
        this.showWindow(() => [h('p', { class: 'warn', testid: 'join-window-wait' },
          opens ? t('call.precall.opens_at', { time: fmtTime(opens) }) : t('call.precall.not_scheduled'),
          ' ', t('call.precall.auto_retry'))]);
        const wait = opens ? Math.max(1000, Date.parse(opens) - Date.now() + 1000) : WINDOW_POLL_MS;
        this.timers.push(setTimeout(() => this.recheck(), Math.min(wait, WINDOW_POLL_MS)));
      } else {
        this.windowMsg.dataset.state = err?.code === 'join_window_closed' ? 'closed' : 'error';
        this.showWindow(() => [h('p', { class: 'error', testid: 'join-window-error' }, errorText(err))]);
        if (!NO_WAY_IN.includes(err?.code)) {
          this.timers.push(setTimeout(() => this.recheck(), WINDOW_POLL_MS));
        }
      }
    }
    this.updateJoin();
  }

  async recheck() {
    if (this.destroyed) return;
    const wasAudience = this.audience;
    const wasOpen = this.windowOpen;
    await this.checkWindow();
    // The role (watch only or not) is known only once the window opens.
    if (this.windowOpen && this.audience !== wasAudience && this.audience) {
      stopStream(this.stream);
      this.stream = new MediaStream();
      await this.watchOnly();
    }
    if (this.windowOpen) this.networkCheck().catch(() => {});
    // Someone who kept this page open for the room to open came to join: go in with the
    // devices as they are set now (a non-host then waits in the lobby).
    if (this.windowOpen && !wasOpen && this.mediaReady && !this.destroyed) this.join(true, true);
  }

  updateJoin() {
    this.joinBtn.disabled = !(this.windowOpen && this.mediaReady);
  }

  /** @param {() => Node[]} view the join window's message, in the current language */
  showWindow(view) {
    this.windowView = view;
    this.renderWindow();
  }

  renderWindow() {
    this.windowMsg.replaceChildren(...this.windowView());
  }

  // ---- devices ----

  /** An audience member sends nothing: no camera or microphone is opened, only the speaker chosen. */
  async watchOnly() {
    this.deviceBox.replaceChildren(this.speakerField, this.speakerTest);
    this.previewBox.hidden = true;
    this.el.classList.add('watch-only');
    await this.fillDevices().catch(() => {});
    this.mediaReady = true;
    this.updateJoin();
  }

  async openDevices() {
    this.mediaView = 'opening';
    this.renderMedia();
    const { stream, videoError, audioError } = await openMedia({ video: true, audio: true });
    if (this.destroyed) { stopStream(stream); return; }
    this.stream = stream;
    this.preview.srcObject = stream;
    this.preview.play().catch(() => {});
    await this.fillDevices();
    this.startMeter();
    this.showMediaState(videoError, audioError);
    this.mediaReady = true;
    this.updateJoin();
  }

  /** Shows the preview, or a plain panel when no camera is on. */
  showPreview() {
    const on = this.stream.getVideoTracks().length > 0;
    this.preview.hidden = !on;
    this.previewOff.hidden = on;
  }

  /** @param {string | null} videoError @param {string | null} audioError */
  showMediaState(videoError, audioError) {
    this.showPreview();
    this.mediaErrors = { videoError, audioError };
    this.mediaView = 'shown';
    this.renderMedia();
    if (videoError) { this.videoOn.checked = false; this.videoOn.disabled = true; }
    if (audioError) { this.audioOn.checked = false; this.audioOn.disabled = true; }
  }

  /** The devices' message: opening, or what was refused and how to join anyway. */
  renderMedia() {
    if (this.mediaView === 'idle') return;
    if (this.mediaView === 'opening') {
      this.mediaMsg.replaceChildren(h('p', { class: 'muted' }, t('call.precall.opening')));
      return;
    }
    const { videoError, audioError } = this.mediaErrors;
    if (!videoError && !audioError) {
      this.mediaMsg.replaceChildren();
      this.mediaMsg.dataset.state = 'ok';
      return;
    }
    const what = videoError && audioError ? 'both' : videoError ? 'camera' : 'mic';
    const denied = [videoError, audioError].some((e) => e === 'NotAllowedError' || e === 'SecurityError');
    this.mediaMsg.dataset.state = denied ? 'denied' : 'unavailable';
    this.mediaMsg.replaceChildren(
      h('p', { class: 'error', role: 'alert', testid: 'precall-media-error' },
        t(`call.precall.${denied ? 'denied' : 'unavailable'}.${what}`), ' ', t('call.precall.denied_help')),
      h('div', { class: 'actions' },
        !audioError && h('button', { class: 'ghost', testid: 'join-no-camera', onclick: () => this.join(false, true) }, t('call.precall.join_no_camera')),
        h('button', { class: 'ghost', testid: 'join-listen-only', onclick: () => this.join(false, false) }, t('call.precall.join_listen_only'))));
  }

  async fillDevices() {
    const d = await listDevices();
    const fill = (/** @type {HTMLSelectElement} */ sel, /** @type {MediaDeviceInfo[]} */ list, /** @type {string | undefined} */ current, /** @type {string} */ key) => {
      // A device without a label (no permission yet) is named from the catalogue: marked so
      // that a language switch names it again.
      sel.replaceChildren(...list.map((dev, i) => h('option', { value: dev.deviceId, selected: dev.deviceId === current, dataset: dev.label ? {} : { labelKey: key, n: String(i + 1) } },
        dev.label || t(key, { n: i + 1 }))));
      sel.disabled = list.length === 0;
    };
    fill(this.cameraSel, d.cameras, this.stream.getVideoTracks()[0]?.getSettings().deviceId, 'call.precall.camera_n');
    fill(this.micSel, d.mics, this.stream.getAudioTracks()[0]?.getSettings().deviceId, 'call.precall.mic_n');
    fill(this.speakerSel, d.speakers, undefined, 'call.precall.speaker_n');
  }

  /** Reopens the camera or the microphone on the device now chosen. @param {'video' | 'audio'} kind */
  async reopen(kind) {
    const old = kind === 'video' ? this.stream.getVideoTracks() : this.stream.getAudioTracks();
    old.forEach((tr) => { tr.stop(); this.stream.removeTrack(tr); });
    this.showPreview();
    if (kind === 'video' && !this.videoOn.checked) return;
    if (kind === 'audio' && !this.audioOn.checked) return;
    const r = await openMedia(kind === 'video'
      ? { video: true, audio: false, cameraId: this.cameraSel.value }
      : { video: false, audio: true, micId: this.micSel.value });
    r.stream.getTracks().forEach((tr) => this.stream.addTrack(tr));
    this.preview.srcObject = this.stream;
    this.showPreview();
    if (kind === 'audio') this.startMeter();
    const e = kind === 'video' ? r.videoError : r.audioError;
    if (e) this.showMediaState(kind === 'video' ? e : null, kind === 'audio' ? e : null);
  }

  /** @param {'video' | 'audio'} kind */
  toggle(kind) {
    this.reopen(kind).catch((e) => this.showMediaState(kind === 'video' ? errorName(e) : null, kind === 'audio' ? errorName(e) : null));
  }

  startMeter() {
    this.meter?.stop();
    this.meter = null;
    const track = this.stream.getAudioTracks()[0];
    if (!track) return;
    this.meter = levelMeter(track);
    if (this.meterTimer) clearInterval(this.meterTimer);
    // The fake and real microphones come in bursts: show a level that decays slowly.
    let shown = 0;
    this.meterTimer = setInterval(() => {
      const v = Math.min(1, (this.meter?.level() ?? 0) * 4);
      shown = Math.max(v, shown * 0.85);
      this.levelBar.style.width = `${Math.round(shown * 100)}%`;
      this.level.dataset.level = shown.toFixed(3);
    }, 100);
  }

  applySpeaker() {
    const v = /** @type {any} */ (this.preview);
    if (canPickSpeaker && this.speakerSel.value) v.setSinkId(this.speakerSel.value).catch(() => {});
  }

  // ---- speaker test ----

  /**
   * Plays a short tone through the chosen speaker: Web Audio makes it (tone.js), a media
   * element plays it, because only a media element takes setSinkId.
   */
  async testSpeaker() {
    this.stopTest();
    const audio = /** @type {HTMLAudioElement & { setSinkId?: (id: string) => Promise<void>, sinkId?: string }} */ (new Audio());
    /** @type {{ audio: HTMLAudioElement, source: AudioBufferSourceNode | null }} */
    const mine = { audio, source: null };
    this.testing = mine;
    /** @param {'played' | 'failed'} state @param {string} [error] */
    const done = (state, error) => {
      if (this.testing !== mine) return; // stopped, or a newer test runs
      this.stopTest();
      this.setTest(state, error);
    };
    this.setTest('playing');
    try {
      const ctx = audioContext();
      const samples = toneSamples({ rate: ctx.sampleRate });
      const buffer = ctx.createBuffer(1, samples.length, ctx.sampleRate);
      buffer.copyToChannel(samples, 0);
      const source = ctx.createBufferSource();
      source.buffer = buffer;
      mine.source = source;
      const out = ctx.createMediaStreamDestination();
      source.connect(out);
      audio.srcObject = out.stream;
      if (canPickSpeaker && this.speakerSel.value && audio.setSinkId) await audio.setSinkId(this.speakerSel.value);
      this.testBtn.dataset.sink = audio.sinkId ?? '';
      await audio.play();
      source.addEventListener('ended', () => done('played'));
      source.start();
    } catch (e) {
      done('failed', errorName(e));
    }
  }

  /** @param {'idle' | 'playing' | 'played' | 'failed'} state @param {string} [error] */
  setTest(state, error = '') {
    this.testState = state;
    this.testError = error;
    this.renderSpeakerTest();
  }

  stopTest() {
    const tst = this.testing;
    if (!tst) return;
    this.testing = null;
    try { tst.source?.stop(); } catch { /* not started */ }
    tst.source?.disconnect();
    tst.audio.pause();
    tst.audio.srcObject = null;
  }

  renderSpeakerTest() {
    this.testBtn.dataset.state = this.testState;
    this.testBtn.disabled = this.testState === 'playing';
    const key = { idle: '', playing: 'call.precall.speaker_test_playing', played: 'call.precall.speaker_test_played', failed: 'call.precall.speaker_test_failed' }[this.testState];
    this.testMsg.textContent = key ? t(key, { name: this.testError }) : '';
    this.testMsg.className = `small ${this.testState === 'failed' ? 'error' : 'muted'}`;
  }

  // ---- network check ----

  /** The network check's rows as they stand, in the current language. */
  renderNet() {
    const net = this.net;
    if (!net) return;
    this.netList.replaceChildren(...(/** @type {const} */ (['rtt', 'ws', 'ice'])).map((key) => {
      const { state, text, ms } = net[key];
      return h('li', { testid: `net-${key}`, dataset: ms === undefined ? { state } : { state, ms } },
        h('span', { class: 'dot', dataset: { state } }), h('strong', {}, t(`call.net.${key}`)), ' ', text());
    }));
  }

  async networkCheck() {
    const checking = () => t('call.net.checking');
    /** @type {Record<'rtt' | 'ws' | 'ice', NetRow>} */
    const net = { rtt: { state: 'pending', text: checking }, ws: { state: 'pending', text: checking }, ice: { state: 'pending', text: checking } };
    this.net = net;
    /** @param {'rtt' | 'ws' | 'ice'} key @param {NetState} state @param {() => string} text @param {string} [ms] */
    const set = (key, state, text, ms) => {
      if (this.net !== net) return; // a newer check runs
      net[key] = ms === undefined ? { state, text } : { state, text, ms };
      this.renderNet();
    };
    this.renderNet();
    // Round trip: several small requests; the median ignores one slow outlier.
    const times = [];
    for (let i = 0; i < 5 && !this.destroyed; i++) {
      const t0 = performance.now();
      try {
        const r = await fetch('/healthz', { cache: 'no-store' });
        if (r.ok) times.push(performance.now() - t0);
      } catch { /* counted as missing */ }
    }
    times.sort((a, b) => a - b);
    const rtt = times.length ? Math.round(times[Math.floor(times.length / 2)]) : null;
    set('rtt', rtt == null ? 'fail' : rtt < 150 ? 'ok' : 'warn',
      () => (rtt == null ? t('call.net.unreachable') : t('call.net.rtt_ms', { ms: rtt })), String(rtt ?? ''));
    // WebSocket: a hello with an unsupported version is refused by the server before anyone
    // joins the room, so it proves the socket path works without entering the call.
    /** @type {NetState} */
    let wsState = 'skip';
    let wsKey = 'call.net.ws_later';
    if (this.join0) {
      const ok = await probeSocket(this.join0);
      wsState = ok ? 'ok' : 'fail';
      wsKey = ok ? 'call.net.ws_ok' : 'call.net.ws_fail';
    }
    set('ws', wsState, () => t(wsKey));
    const servers = /** @type {RTCIceServer[]} */ (this.join0?.ice_servers ?? []);
    const urls = servers.flatMap((s) => [s.urls].flat());
    const turn = urls.filter((u) => /^turns?:/.test(u)).length;
    const stun = urls.filter((u) => /^stun:/.test(u)).length;
    /** @type {NetState} */
    let iceState = turn ? 'ok' : 'warn';
    const base = () => (turn ? t('call.net.turn_configured', { n: turn }) : stun ? t('call.net.stun_only') : t('call.net.direct_only'));
    let iceText = base;
    if (turn) {
      const relay = await gatherRelay(servers);
      iceState = relay ? 'ok' : 'warn';
      iceText = () => `${base()} · ${t(relay ? 'call.net.turn_ok' : 'call.net.turn_fail')}`;
    }
    set('ice', iceState, iceText);
  }

  // ---- join ----

  /** @param {boolean} withVideo @param {boolean} withAudio */
  join(withVideo, withAudio) {
    const video = withVideo && this.videoOn.checked && this.stream.getVideoTracks().length > 0;
    const audio = withAudio && this.audioOn.checked && this.stream.getAudioTracks().length > 0;
    if (!video) this.stream.getVideoTracks().forEach((tr) => { tr.stop(); this.stream.removeTrack(tr); });
    if (!audio) this.stream.getAudioTracks().forEach((tr) => { tr.stop(); this.stream.removeTrack(tr); });
    const stream = this.stream;
    this.stream = new MediaStream(); // handed over: destroy() must not stop it
    this.onJoin({
      stream, video, audio,
      cameraId: this.cameraSel.value || undefined,
      micId: this.micSel.value || undefined,
      speakerId: this.speakerSel.value || undefined,
    });
  }

  destroy() {
    this.destroyed = true;
    this.stopTest();
    this.timers.forEach(clearTimeout);
    if (this.meterTimer) clearInterval(this.meterTimer);
    this.meter?.stop();
    stopStream(this.stream);
  }
}

/**
 * Opens the signaling socket with a version nobody speaks: the server answers
 * `unsupported_version` and closes before the room is touched.
 * @param {{ signaling_path: string, signaling_url?: string, token: string }} join
 * @returns {Promise<boolean>}
 */
function probeSocket(join) {
  return new Promise((resolve) => {
    let ws;
    try {
      ws = new WebSocket(socketUrl(join));
    } catch {
      resolve(false);
      return;
    }
    const timer = setTimeout(() => { ws.close(); resolve(false); }, 5000);
    ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', id: 'probe', version: 0 }));
    ws.onmessage = (ev) => {
      clearTimeout(timer);
      let ok = false;
      try { ok = JSON.parse(ev.data).code === 'unsupported_version'; } catch { /* not JSON */ }
      ws.close();
      resolve(ok);
    };
    ws.onerror = () => { clearTimeout(timer); resolve(false); };
  });
}

/** Whether the TURN servers hand out a relay candidate within a few seconds. @param {RTCIceServer[]} servers */
async function gatherRelay(servers) {
  const pc = new RTCPeerConnection({ iceServers: servers, iceTransportPolicy: 'relay' });
  pc.createDataChannel('probe');
  let found = false;
  const done = new Promise((resolve) => {
    const timer = setTimeout(resolve, 4000);
    pc.onicecandidate = (e) => {
      if (e.candidate?.type === 'relay') { found = true; clearTimeout(timer); resolve(null); }
      if (!e.candidate) { clearTimeout(timer); resolve(null); }
    };
  });
  await pc.setLocalDescription(await pc.createOffer());
  await done;
  pc.close();
  return found;
}
