// Before the call: devices with a live preview and a microphone meter, a network check, the
// join window (with an automatic retry when it opens) and the join button.
import { api } from '../api.js';
import { errorText, fmtTime, t } from '../i18n.js';
import { h, videoEl } from './dom.js';
import { canPickSpeaker, errorName, levelMeter, listDevices, openMedia, stopStream } from './devices.js';

/**
 * @typedef {object} JoinChoice
 * @property {MediaStream} stream what the preview opened (handed over to the call)
 * @property {boolean} video send the camera
 * @property {boolean} audio send the microphone
 * @property {string} [cameraId]
 * @property {string} [micId]
 * @property {string} [speakerId]
 */

/** How often a closed join window is asked again while the page waits (besides at opens_at). */
const WINDOW_POLL_MS = 30_000;

export class PreCall {
  /**
   * @param {any} consultation
   * @param {(choice: JoinChoice) => void} onJoin
   */
  constructor(consultation, onJoin) {
    this.c = consultation;
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

    this.preview = videoEl('precall-preview');
    this.previewOff = h('div', { class: 'preview-off initials', testid: 'precall-preview-off', hidden: true }, t('call.precall.no_video'));
    this.cameraSel = /** @type {HTMLSelectElement} */ (h('select', { testid: 'precall-camera', onchange: () => this.reopen('video') }));
    this.micSel = /** @type {HTMLSelectElement} */ (h('select', { testid: 'precall-mic', onchange: () => this.reopen('audio') }));
    this.speakerSel = /** @type {HTMLSelectElement} */ (h('select', { testid: 'precall-speaker', onchange: () => this.applySpeaker() }));
    this.videoOn = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', checked: true, testid: 'precall-video-on', onchange: () => this.toggle('video') }));
    this.audioOn = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', checked: true, testid: 'precall-audio-on', onchange: () => this.toggle('audio') }));
    this.levelBar = h('span', { class: 'level-bar' });
    this.level = h('div', { class: 'level', testid: 'mic-level', role: 'meter', 'aria-label': t('call.precall.mic_level'), dataset: { level: '0' } }, this.levelBar);
    this.mediaMsg = h('div', { testid: 'precall-media-status', 'aria-live': 'polite' });
    this.windowMsg = h('div', { testid: 'join-window', 'aria-live': 'polite' });
    this.netList = h('ul', { class: 'netcheck', testid: 'network-check' });
    this.joinBtn = /** @type {HTMLButtonElement} */ (h('button', { testid: 'join-call', disabled: true, onclick: () => this.join(true, true) }, t('call.precall.join')));
    this.previewBox = h('div', { class: 'preview-box' }, this.preview, this.previewOff, h('p', { class: 'muted small' }, t('call.precall.preview_note')));
    this.roleNote = h('p', { class: 'muted small', testid: 'precall-role', hidden: true });
    this.speakerField = h('label', { class: 'field' }, h('span', {}, t('call.precall.speaker')), this.speakerSel);
    this.speakerField.hidden = !canPickSpeaker;
    this.deviceBox = h('div', { class: 'devices' },
      h('label', { class: 'field' }, h('span', {}, t('call.precall.camera')), this.cameraSel),
      h('label', { class: 'field' }, h('span', {}, t('call.precall.mic')), this.micSel),
      this.speakerField,
      h('div', { class: 'toggles' },
        h('label', { class: 'check' }, this.videoOn, t('call.precall.video_on')),
        h('label', { class: 'check' }, this.audioOn, t('call.precall.audio_on'))),
      h('div', { class: 'field' }, h('span', {}, t('call.precall.mic_level')), this.level));
    this.el = h('section', { class: 'precall', testid: 'precall' },
      h('h1', {}, t('call.precall.title')),
      h('div', { class: 'precall-grid' },
        this.previewBox,
        h('div', { class: 'card' }, this.roleNote, this.deviceBox, this.mediaMsg)),
      h('div', { class: 'card' },
        h('h2', {}, t('call.net.title')), this.netList),
      h('div', { class: 'card join-card' }, this.windowMsg,
        h('div', { class: 'actions' },
          h('a', { href: `#/c/${consultation.id}`, class: 'button ghost', testid: 'precall-back' }, t('call.common.back')),
          this.joinBtn)));
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
      const j = await api('POST', `/v1/consultations/${this.c.id}/join`, {});
      if (this.destroyed) return;
      this.grants = j.grants;
      this.join0 = j;
      this.audience = !j.grants.can_publish;
      this.windowOpen = true;
      this.roleNote.hidden = !this.audience;
      this.roleNote.textContent = t('call.precall.audience_note');
      this.windowMsg.replaceChildren(h('p', { class: 'ok', testid: 'join-window-open' }, t('call.precall.window_open')));
      this.windowMsg.dataset.state = 'open';
    } catch (e) {
      if (this.destroyed) return;
      this.windowOpen = false;
      const err = /** @type {any} */ (e);
      const opens = err?.details?.opens_at;
      if (err?.code === 'join_window_not_open') {
        this.windowMsg.dataset.state = 'not_open';
        this.windowMsg.replaceChildren(h('p', { class: 'warn', testid: 'join-window-wait' },
          opens ? t('call.precall.opens_at', { time: fmtTime(opens) }) : t('call.precall.not_scheduled'),
          ' ', t('call.precall.auto_retry')));
        const wait = opens ? Math.max(1000, Date.parse(opens) - Date.now() + 1000) : WINDOW_POLL_MS;
        this.timers.push(setTimeout(() => this.recheck(), Math.min(wait, WINDOW_POLL_MS)));
      } else {
        this.windowMsg.dataset.state = err?.code === 'join_window_closed' ? 'closed' : 'error';
        this.windowMsg.replaceChildren(h('p', { class: 'error', testid: 'join-window-error' }, errorText(err)));
        if (err?.code !== 'join_window_closed' && err?.code !== 'consultation_not_found' && err?.code !== 'not_participant') {
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

  // ---- devices ----

  /** An audience member sends nothing: no camera or microphone is opened, only the speaker chosen. */
  async watchOnly() {
    this.deviceBox.replaceChildren(this.speakerField);
    this.previewBox.hidden = true;
    this.el.classList.add('watch-only');
    await this.fillDevices().catch(() => {});
    this.mediaReady = true;
    this.updateJoin();
  }

  async openDevices() {
    this.mediaMsg.replaceChildren(h('p', { class: 'muted' }, t('call.precall.opening')));
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
    if (videoError) { this.videoOn.checked = false; this.videoOn.disabled = true; }
    if (audioError) { this.audioOn.checked = false; this.audioOn.disabled = true; }
  }

  async fillDevices() {
    const d = await listDevices();
    const fill = (/** @type {HTMLSelectElement} */ sel, /** @type {MediaDeviceInfo[]} */ list, /** @type {string | undefined} */ current, /** @type {string} */ key) => {
      sel.replaceChildren(...list.map((dev, i) => h('option', { value: dev.deviceId, selected: dev.deviceId === current },
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

  // ---- network check ----

  async networkCheck() {
    /** @param {string} key @param {string} state @param {string} text */
    const item = (key, state, text) => h('li', { testid: `net-${key}`, dataset: { state } },
      h('span', { class: 'dot', dataset: { state } }), h('strong', {}, t(`call.net.${key}`)), ' ', text);
    const rows = { rtt: item('rtt', 'pending', t('call.net.checking')), ws: item('ws', 'pending', t('call.net.checking')), ice: item('ice', 'pending', t('call.net.checking')) };
    this.netList.replaceChildren(rows.rtt, rows.ws, rows.ice);
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
    rows.rtt.replaceWith(rows.rtt = item('rtt', rtt == null ? 'fail' : rtt < 150 ? 'ok' : 'warn',
      rtt == null ? t('call.net.unreachable') : t('call.net.rtt_ms', { ms: rtt })));
    rows.rtt.dataset.ms = String(rtt ?? '');
    // WebSocket: a hello with an unsupported version is refused by the server before anyone
    // joins the room, so it proves the socket path works without entering the call.
    let wsState = 'skip';
    let wsText = t('call.net.ws_later');
    if (this.join0) {
      const ok = await probeSocket(this.join0);
      wsState = ok ? 'ok' : 'fail';
      wsText = ok ? t('call.net.ws_ok') : t('call.net.ws_fail');
    }
    rows.ws.replaceWith(rows.ws = item('ws', wsState, wsText));
    const servers = /** @type {RTCIceServer[]} */ (this.join0?.ice_servers ?? []);
    const urls = servers.flatMap((s) => [s.urls].flat());
    const turn = urls.filter((u) => /^turns?:/.test(u)).length;
    const stun = urls.filter((u) => /^stun:/.test(u)).length;
    let iceState = turn ? 'ok' : 'warn';
    let iceText = turn ? t('call.net.turn_configured', { n: turn }) : stun ? t('call.net.stun_only') : t('call.net.direct_only');
    if (turn) {
      const relay = await gatherRelay(servers);
      iceState = relay ? 'ok' : 'warn';
      iceText += ' · ' + t(relay ? 'call.net.turn_ok' : 'call.net.turn_fail');
    }
    rows.ice.replaceWith(item('ice', iceState, iceText));
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
    this.timers.forEach(clearTimeout);
    if (this.meterTimer) clearInterval(this.meterTimer);
    this.meter?.stop();
    stopStream(this.stream);
  }
}

/**
 * Opens the signaling socket with a version nobody speaks: the server answers
 * `unsupported_version` and closes before the room is touched.
 * @param {{ signaling_path: string, token: string }} join
 * @returns {Promise<boolean>}
 */
function probeSocket(join) {
  return new Promise((resolve) => {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let ws;
    try {
      ws = new WebSocket(`${scheme}//${location.host}${join.signaling_path}?token=${encodeURIComponent(join.token)}`);
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
