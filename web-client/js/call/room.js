// In the call: the signaling socket with reconnect, the media session, the stage (grid or
// speaker view), controls, participants with host actions, the lobby, chat, and the
// bandwidth fallback (lower layers, then audio only).
import { api } from '../api.js';
import { errorText, fmtTime, t } from '../i18n.js';
import { h } from './dom.js';
import { cameraConstraints, canPickSpeaker, errorName, stopStream } from './devices.js';
import { MediaSession } from './media.js';
import { RoomSocket, SignalError, socketUrl } from './signaling.js';
import { sourceOf } from './tiles.js';
import { addCamera, removeCameras, setCamera, setMic, stopScreen, switchCamera, toggleScreen } from './local.js';
import { applyLayers, confirmRemove, renderControls, renderPeople, renderStage } from './view.js';
import { emptyRec, onConsentAnswer, onRecording, onRecordingFailed, recSnapshot, renderRecording } from './recording.js';

/** @typedef {import('./signaling.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('./precall.js').JoinChoice} JoinChoice */
/** @typedef {{ id: string, participant: string, kind: string, source: string, muted: boolean, track: MediaStreamTrack | null }} RemoteTrack */

/** Reconnect backoff (ms): quick at first (a Wi-Fi blip), then every 10 s. */
const BACKOFF = [500, 1000, 2000, 4000, 8000, 10000];
/** The application-level keepalive: a ping this often, and how long its pong may take. */
const KEEPALIVE_MS = 15000;
const PONG_TIMEOUT_MS = 8000;
/** Terminal states: the call is over for this page. */
const FINAL = ['ended', 'left', 'removed', 'declined', 'replaced', 'refused', 'closed'];

export class CallRoom {
  /**
   * @param {any} consultation
   * @param {JoinChoice} choice
   * @param {{ onFinished: (state: string) => void }} hooks
   */
  constructor(consultation, choice, hooks) {
    this.c = consultation;
    this.choice = choice;
    this.hooks = hooks;
    this.teaching = consultation.kind === 'teaching';
    /** @type {MediaStream} local tracks; published under their names */
    this.local = choice.stream;
    /** @type {Map<string, MediaStreamTrack>} name → local track we send */
    this.localTracks = new Map();
    const a = this.local.getAudioTracks()[0];
    const v = this.local.getVideoTracks()[0];
    if (a) this.localTracks.set('mic', a);
    if (v) this.localTracks.set('cam', v);
    this.micMuted = false;
    this.camMuted = false;
    this.screenSeq = 0;
    /** @type {string} */
    this.phase = 'connecting';
    /** @type {ParticipantInfo | null} */
    this.me = null;
    /** @type {Map<string, ParticipantInfo>} */
    this.participants = new Map();
    /** @type {Map<string, ParticipantInfo>} */
    this.lobby = new Map();
    /** @type {Map<string, RemoteTrack>} room track id → what we know of it */
    this.tracks = new Map();
    /** @type {Map<string, MediaStreamTrack>} received tracks not yet matched to a track_published */
    this.unmatched = new Map();
    /** @type {Map<string, string>} participant → connection quality */
    this.quality = new Map();
    /** @type {string | null} */
    this.speaker = null;
    this.layout = this.teaching ? 'speaker' : 'grid';
    /** @type {string} auto | high | medium | low | off */
    this.layerPref = 'auto';
    /** The server stopped our video because our link loses too much (`audio_only`). */
    this.audioOnly = false;
    /** @type {Map<string, string>} track id → layer last asked for */
    this.layersSent = new Map();
    /** @type {Map<string, import('./tiles.js').Tile>} */
    this.tiles = new Map();
    /** @type {Map<string, HTMLAudioElement>} track id → element playing it */
    this.audios = new Map();
    /** @type {RoomSocket | null} */
    this.socket = null;
    /** @type {MediaSession | null} */
    this.media = null;
    this.attempt = 0;
    this.destroyed = false;
    /** @type {ReturnType<typeof setInterval>[]} */
    this.intervals = [];
    this.reconnects = 0;
    /** @type {Record<string, number>} server messages by type, for support */
    this.received = {};
    /** @type {WeakMap<MediaStreamTrack, MediaStream>} */
    this.streams = new WeakMap();
    /** @type {import('./recording.js').RecState} the room's recording (protocol.md §12) */
    this.rec = emptyRec();
    /** @type {HTMLElement | null} the consent prompt while it is shown */
    this.consentBox = null;
    this.buildView();
  }

  // ---- view skeleton ----

  buildView() {
    this.status = h('span', { class: 'call-status', testid: 'call-status', dataset: { state: 'connecting' } });
    this.myQuality = h('span', { class: 'quality mine', testid: 'my-quality', role: 'img' }, h('i', {}), h('i', {}), h('i', {}));
    this.recording = h('span', { class: 'rec-slot', testid: 'recording-indicator', 'aria-live': 'polite' });
    this.notice = h('div', { class: 'call-notice', testid: 'call-notice', role: 'status', 'aria-live': 'polite', hidden: true });
    this.audioOnlyBanner = h('div', { class: 'call-notice warn', testid: 'audio-only', role: 'status', hidden: true }, t('call.notice.audio_only'));
    this.recNote = h('div', { class: 'call-notice warn', testid: 'recording-excluded-note', role: 'status', hidden: true });
    this.recFailed = h('div', { class: 'call-notice error rec-failed', testid: 'recording-failed', role: 'alert', hidden: true });
    this.recAnswerList = h('ul', { class: 'people', testid: 'recording-answers-list' });
    this.recAnswers = h('section', { class: 'panel', testid: 'recording-answers', hidden: true }, h('h2', {}, t('call.rec.answers_title')), this.recAnswerList);
    this.main = h('div', { class: 'stage-main', testid: 'stage-main' });
    this.thumbs = h('div', { class: 'stage-thumbs', testid: 'stage-thumbs' });
    this.stage = h('div', { class: 'stage', testid: 'stage' }, this.main, this.thumbs);
    this.peopleList = h('ul', { class: 'people', testid: 'participants' });
    this.lobbyList = h('ul', { class: 'people', testid: 'lobby' });
    this.lobbySection = h('section', { class: 'panel', testid: 'lobby-panel', hidden: true }, h('h2', {}, t('call.lobby.title')), this.lobbyList);
    this.chatLog = h('ol', { class: 'chat-log', testid: 'chat-log', 'aria-live': 'polite' });
    this.chatInput = /** @type {HTMLInputElement} */ (h('input', { testid: 'chat-input', maxlength: 2000, autocomplete: 'off', 'aria-label': t('call.chat.placeholder'), placeholder: t('call.chat.placeholder') }));
    this.chatForm = h('form', { class: 'chat-form', testid: 'chat-form' }, this.chatInput, h('button', { type: 'submit', testid: 'chat-send' }, t('call.chat.send')));
    this.chatForm.addEventListener('submit', (e) => { e.preventDefault(); this.sendChat(); });
    this.chatTitle = h('h2', {}, t('call.chat.title'));
    this.controls = h('div', { class: 'controls', testid: 'controls', role: 'toolbar' });
    this.side = h('aside', { class: 'side' },
      this.lobbySection,
      this.recAnswers,
      h('section', { class: 'panel' }, h('h2', {}, t('call.people.title')), this.peopleList),
      h('section', { class: 'panel chat' }, this.chatTitle, this.chatLog, this.chatForm));
    this.waiting = h('div', { class: 'card waiting', testid: 'lobby-wait', hidden: true },
      h('h2', {}, t('call.lobby.waiting_title')), h('p', {}, t('call.lobby.waiting_text')),
      h('button', { class: 'ghost', testid: 'lobby-leave', onclick: () => this.leave() }, t('call.ctl.leave')));
    this.finalBox = h('div', { class: 'card final', testid: 'call-final', hidden: true });
    this.body = h('div', { class: 'call-body' }, h('div', { class: 'stage-col' }, this.stage, this.controls), this.side);
    this.el = h('section', { class: 'call', testid: 'call', dataset: { kind: this.c.kind } },
      h('header', { class: 'call-head' },
        h('strong', { class: 'call-title' }, t(this.teaching ? 'call.title.teaching' : 'call.title.call')),
        this.status, this.recording, h('span', { class: 'spacer' }),
        h('span', { class: 'small' }, t('call.my_link')), this.myQuality),
      this.notice, this.audioOnlyBanner, this.recFailed, this.recNote, this.waiting, this.finalBox, this.body);
    this.renderControls();
    this.setStatus('connecting');
  }

  /** @param {string} state */
  setStatus(state) {
    this.phase = state;
    this.status.dataset.state = state;
    this.status.textContent = t(`call.state.${state}`);
    this.el.dataset.state = state;
    const inRoom = state === 'joined' || state === 'reconnecting';
    this.body.hidden = !inRoom && state !== 'connecting';
    this.waiting.hidden = state !== 'lobby';
  }

  /** A short message in the user's language; errors stay until the next one. @param {string} text @param {string} [kind] */
  say(text, kind = 'info') {
    this.notice.hidden = false;
    this.notice.className = `call-notice ${kind}`;
    this.notice.dataset.kind = kind;
    this.notice.textContent = text;
    clearTimeout(this.noticeTimer);
    if (kind !== 'error') this.noticeTimer = setTimeout(() => { this.notice.hidden = true; }, 6000);
  }

  // ---- connection ----

  async start() {
    this.intervals.push(setInterval(() => this.keepalive(), KEEPALIVE_MS));
    await this.connect();
  }

  /** One connection attempt; on failure schedules the next. */
  async connect() {
    if (this.destroyed) return;
    let join;
    try {
      join = await api('POST', `/v1/consultations/${this.c.id}/join`, {});
    } catch (e) {
      const err = /** @type {any} */ (e);
      if (['join_window_closed', 'consultation_not_found', 'not_participant'].includes(err?.code)) {
        this.finish(err?.details?.status ? 'ended' : 'closed', errorText(err));
        return;
      }
      this.say(errorText(err), 'error');
      this.retry();
      return;
    }
    if (this.destroyed) return;
    this.join = join;
    const socket = new RoomSocket(socketUrl(join), (m) => this.onEvent(m), (code, reason) => this.onClosed(socket, code, reason));
    this.socket = socket;
    try {
      await socket.hello();
      this.attempt = 0;
    } catch (e) {
      if (this.socket === socket && !socket.closed) socket.close();
      if (this.socket === socket) this.retry();
    }
  }

  retry() {
    if (this.destroyed || FINAL.includes(this.phase)) return;
    this.setStatus(this.me ? 'reconnecting' : 'connecting');
    // A failed attempt can report twice (the hello fails and the socket closes): one timer.
    if (this.retryTimer) return;
    const wait = BACKOFF[Math.min(this.attempt, BACKOFF.length - 1)];
    this.attempt++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect().catch(() => this.retry());
    }, wait);
  }

  /**
   * A link that dies without a FIN or RST (Wi-Fi hand-over, a NAT dropping its mapping) leaves
   * the browser's socket looking open for minutes: a ping that gets no pong in time closes it,
   * and the normal reconnect takes over.
   */
  keepalive() {
    const socket = this.socket;
    if (!socket || socket.closed || !['joined', 'lobby'].includes(this.phase)) return;
    let answered = false;
    socket.request({ type: 'ping' }).then(() => { answered = true; }, () => { answered = true; });
    setTimeout(() => {
      if (answered || socket !== this.socket || socket.closed) return;
      socket.close();
      this.onClosed(socket, 1006, 'keepalive');
    }, PONG_TIMEOUT_MS);
  }

  /** @param {RoomSocket} socket @param {number} code @param {string} _reason */
  onClosed(socket, code, _reason) {
    if (socket !== this.socket || this.destroyed) return;
    this.dropMedia();
    if (FINAL.includes(this.phase)) return;
    // 4000: the server refused our protocol; trying again would loop.
    if (code === 4000) {
      this.finish('refused', t('call.final.protocol'));
      return;
    }
    if (this.phase === 'lobby') {
      // Leaving the lobby drops the waiting entry; coming back puts us there again.
      this.setStatus('connecting');
    }
    this.say(t('call.notice.reconnecting'), 'warn');
    this.reconnects++;
    this.retry();
  }

  /** Closes the media of the old socket and forgets the remote tracks it carried. */
  dropMedia() {
    this.media?.close();
    this.media = null;
    this.tracks.clear();
    this.unmatched.clear();
    this.layersSent.clear();
    // A new media session starts with video; the server says again if the link cannot carry it.
    this.audioOnly = false;
    this.audioOnlyBanner.hidden = true;
    for (const a of this.audios.values()) { a.srcObject = null; a.remove(); }
    this.audios.clear();
    this.render();
  }

  /** @param {string} state @param {string} [text] */
  finish(state, text) {
    if (FINAL.includes(this.phase)) return;
    this.setStatus(state);
    this.body.hidden = true;
    this.waiting.hidden = true;
    this.notice.hidden = true;
    this.socket?.close();
    this.dropMedia();
    stopStream(this.local);
    this.localTracks.forEach((tr) => tr.stop());
    this.rec = emptyRec();
    renderRecording(this);
    this.finalBox.hidden = false;
    this.finalBox.dataset.state = state;
    this.finalBox.replaceChildren(
      h('h2', {}, t(`call.final.${state}`)),
      text && h('p', { testid: 'call-final-text' }, text),
      h('a', { class: 'button', href: `#/c/${this.c.id}`, testid: 'call-final-back' }, t('call.final.back')));
    this.hooks.onFinished(state);
  }

  // ---- server messages ----

  /** @param {any} m */
  async onEvent(m) {
    this.received[m.type] = (this.received[m.type] ?? 0) + 1;
    switch (m.type) {
      case 'hello':
        this.me = m.you;
        this.participants = new Map(m.participants.map((/** @type {ParticipantInfo} */ p) => [p.id, p]));
        this.lobby = new Map((m.lobby ?? []).map((/** @type {ParticipantInfo} */ p) => [p.id, p]));
        // A new socket: the server sends `recording` right after hello only while recording.
        this.rec = { ...emptyRec(), failed: this.rec.failed };
        if (m.state === 'lobby') {
          this.setStatus('lobby');
        } else {
          if (m.resumed && this.reconnects) this.say(t('call.notice.reconnected'));
          this.enterRoom();
        }
        break;
      case 'admitted':
        this.participants = new Map(m.participants.map((/** @type {ParticipantInfo} */ p) => [p.id, p]));
        this.enterRoom();
        break;
      case 'participant_joined':
      case 'participant_updated':
        this.onParticipant(m.participant);
        break;
      case 'participant_left':
        this.participants.delete(m.participant_id);
        for (const [id, tr] of this.tracks) if (tr.participant === m.participant_id) this.tracks.delete(id);
        this.render();
        break;
      case 'lobby_waiting':
        this.lobby.set(m.participant.id, m.participant);
        this.say(t('call.notice.lobby_waiting', { name: m.participant.name }));
        this.renderPeople();
        break;
      case 'lobby_left':
        this.lobby.delete(m.participant_id);
        this.renderPeople();
        break;
      case 'chat':
        this.onChat(m);
        break;
      case 'recording':
        onRecording(this, m);
        break;
      case 'recording_consent':
        onConsentAnswer(this, m);
        break;
      case 'recording_failed':
        onRecordingFailed(this, m);
        break;
      case 'ended':
        this.finish('ended', t('call.final.ended_by', { name: this.nameOf(m.by) }));
        break;
      case 'removed':
        this.finish('removed');
        break;
      case 'declined':
        this.finish('declined');
        break;
      case 'closing':
        this.say(t('call.notice.server_closing'), 'warn');
        break;
      case 'mute_requested':
        this.setMic(true);
        this.say(t('call.notice.muted_by', { name: this.nameOf(m.by) }), 'warn');
        break;
      case 'error':
        this.onServerError(m);
        break;
      case 'subscribe_offer':
        await this.media?.onSubscribeOffer(m.sdp);
        break;
      case 'trickle':
        await this.media?.onCandidate(m.target, m.candidate);
        break;
      case 'track_published':
        this.onTrackPublished(m.track);
        break;
      case 'track_unpublished':
        this.tracks.delete(m.track_id);
        this.layersSent.delete(m.track_id);
        this.audios.get(m.track_id)?.remove();
        this.audios.delete(m.track_id);
        this.render();
        break;
      case 'track_muted': {
        const tr = this.tracks.get(m.track_id);
        if (tr) { tr.muted = m.muted; this.render(); }
        break;
      }
      case 'active_speaker':
        this.speaker = m.participant ?? null;
        this.render();
        break;
      case 'audio_only':
        // The server decides from the loss our receiver reports; we only say so.
        this.audioOnly = Boolean(m.active);
        this.audioOnlyBanner.hidden = !this.audioOnly;
        if (!this.audioOnly) this.say(t('call.notice.video_back'), 'info');
        break;
      case 'connection_quality':
        this.quality.set(m.participant, m.quality);
        if (m.participant === this.me?.id) this.onMyQuality(m.quality);
        this.render();
        break;
      case 'media_closed':
        // The server gave up on our connections: start over on a new socket.
        this.say(t('call.notice.media_closed'), 'warn');
        this.socket?.close();
        if (this.socket) this.onClosed(this.socket, 1006, 'media_closed');
        break;
      default:
        break;
    }
  }

  /** @param {any} m */
  onServerError(m) {
    switch (m.code) {
      case 'replaced':
        this.finish('replaced');
        break;
      case 'removed':
        this.finish('removed');
        break;
      case 'room_full':
        this.finish('refused', t('call.final.room_full'));
        break;
      default:
        // try_again and the like: the socket closes next and onClosed reconnects.
        break;
    }
  }

  enterRoom() {
    this.setStatus('joined');
    renderRecording(this);
    this.startMedia().catch((e) => this.say(t('call.error.media', { message: String(e?.message ?? e) }), 'error'));
    this.render();
  }

  async startMedia() {
    if (!this.socket || !this.join) return;
    this.dropMedia();
    this.media = new MediaSession(this.socket, this.join.ice_servers ?? [],
      (track, participant, id) => this.onRemoteTrack(track, participant, id),
      (target, state) => { this.el.dataset[`pc${target === 'publish' ? 'Pub' : 'Sub'}`] = state; });
    if (this.me?.can_publish) await this.publishLocal();
  }

  /** Publishes every local track (after joining, a reconnect, or a promotion). */
  async publishLocal() {
    const media = this.media;
    if (!media || this.localTracks.size === 0) return;
    for (const [name, track] of this.localTracks) {
      if (media.has(name)) continue;
      const screen = name.startsWith('screen');
      media.addTrack(name, track, { simulcast: track.kind === 'video' && !screen, hint: screen ? 'detail' : undefined });
    }
    await media.negotiatePublish();
    // Mute state belongs to the track on the server: tell it again for the new tracks.
    if (this.micMuted && this.localTracks.has('mic')) this.socket?.request({ type: 'mute', track: 'mic', muted: true }).catch(() => {});
    if (this.camMuted && this.localTracks.has('cam')) this.socket?.request({ type: 'mute', track: 'cam', muted: true }).catch(() => {});
  }

  /** @param {ParticipantInfo} p */
  onParticipant(p) {
    this.participants.set(p.id, p);
    if (p.id === this.me?.id) {
      const before = this.me;
      this.me = p;
      if (!before.can_publish && p.can_publish) this.onPromoted().catch((e) => this.say(t('call.error.media', { message: String(e?.message ?? e) }), 'error'));
      if (before.can_publish && !p.can_publish) this.onDemoted();
      this.renderControls();
    }
    this.render();
  }

  /** A host let us speak: open the microphone (and camera) and publish. */
  async onPromoted() {
    this.say(t('call.notice.promoted'));
    if (this.localTracks.size === 0) {
      let stream = null;
      try {
        stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: cameraConstraints(undefined) });
      } catch {
        try { stream = await navigator.mediaDevices.getUserMedia({ audio: true }); } catch (e) {
          this.say(t('call.error.no_mic', { name: errorName(e) }), 'error');
          return;
        }
      }
      stream.getTracks().forEach((tr) => {
        this.local.addTrack(tr);
        this.localTracks.set(tr.kind === 'audio' ? 'mic' : 'cam', tr);
      });
    }
    await this.publishLocal();
    this.renderControls();
    this.render();
  }

  onDemoted() {
    this.say(t('call.notice.demoted'));
    // The server has already unpublished our tracks and closed the publish connection.
    this.media?.closePublish();
    for (const tr of this.localTracks.values()) tr.stop();
    this.localTracks.clear();
    this.local.getTracks().forEach((tr) => this.local.removeTrack(tr));
    this.render();
  }

  /** @param {{ id: string, participant: string, kind: string }} info */
  onTrackPublished(info) {
    if (info.participant === this.me?.id) return;
    const track = this.unmatched.get(info.id) ?? null;
    this.unmatched.delete(info.id);
    const source = sourceOf(info.id, info.kind);
    this.tracks.set(info.id, { id: info.id, participant: info.participant, kind: info.kind, source, muted: false, track });
    if (track) this.attachAudio(this.tracks.get(info.id));
    // Shared imaging is what everyone needs to read: show it large (the grid stays a click away).
    if (source === 'screen' && this.layout !== 'speaker') {
      this.layout = 'speaker';
      this.renderControls();
    }
    this.render();
  }

  /** @param {MediaStreamTrack} track @param {string} participant @param {string} id */
  onRemoteTrack(track, participant, id) {
    let rec = this.tracks.get(id);
    if (!rec) {
      // A browser that does not keep the sender's track id: take the first unmatched track of
      // that participant and kind.
      rec = [...this.tracks.values()].find((r) => r.participant === participant && r.kind === track.kind && !r.track);
    }
    if (!rec) {
      this.unmatched.set(id, track);
      return;
    }
    rec.track = track;
    this.attachAudio(rec);
    this.render();
  }

  /** Plays a received audio track through its own <audio> (the speaker choice applies). @param {RemoteTrack | undefined} rec */
  attachAudio(rec) {
    if (!rec || rec.kind !== 'audio' || !rec.track || this.audios.has(rec.id)) return;
    const a = /** @type {HTMLAudioElement} */ (h('audio', { testid: 'remote-audio', autoplay: true, dataset: { participant: rec.participant, track: rec.id } }));
    a.srcObject = new MediaStream([rec.track]);
    if (canPickSpeaker && this.choice.speakerId) /** @type {any} */ (a).setSinkId(this.choice.speakerId).catch(() => {});
    a.play().catch(() => {});
    this.audios.set(rec.id, a);
    this.el.append(a);
  }

  // ---- chat ----

  sendChat() {
    const text = this.chatInput.value.trim();
    if (!text || !this.socket) return;
    /** @type {Record<string, any>} */
    const msg = { type: 'chat', text };
    if (this.asksModerator()) {
      const host = this.moderator();
      if (!host) { this.say(t('call.chat.no_moderator'), 'error'); return; }
      msg.to = host.id;
    }
    this.socket.request(msg).then(() => { this.chatInput.value = ''; },
      (e) => this.say(signalText(e), 'error'));
  }

  /** A trainee's chat is Q&A: it goes privately to the moderator. */
  asksModerator() {
    return this.teaching && !this.me?.host && !this.me?.can_publish;
  }

  moderator() {
    const hosts = [...this.participants.values()].filter((p) => p.host && p.id !== this.me?.id);
    return hosts.find((p) => p.presence === 'online') ?? hosts[0] ?? null;
  }

  /** @param {any} m */
  onChat(m) {
    const mine = m.from === this.me?.id;
    const priv = Boolean(m.to);
    const who = mine ? t('call.chat.me') : m.from_name;
    this.chatLog.append(h('li', { class: `chat-msg${mine ? ' mine' : ''}${priv ? ' private' : ''}`, testid: 'chat-message', dataset: { from: m.from, private: String(priv) } },
      h('span', { class: 'chat-meta' }, who, priv ? ` · ${t(mine ? 'call.chat.private_to' : 'call.chat.private', { name: this.nameOf(m.to) })}` : '', ' · ', fmtTime(m.at)),
      h('span', { class: 'chat-text', testid: 'chat-text' }, m.text)));
    this.chatLog.scrollTop = this.chatLog.scrollHeight;
  }

  /** @param {string} id */
  nameOf(id) {
    return this.participants.get(id)?.name ?? this.lobby.get(id)?.name ?? t('call.common.someone');
  }

  // ---- local controls ----

  /** @param {boolean} muted */
  setMic(muted) { return setMic(this, muted); }

  /** @param {boolean} off */
  setCamera(off) { return setCamera(this, off); }

  /** Moves the main camera to the next camera device. */
  switchCamera() { return switchCamera(this); }

  /** Publishes one more camera as its own track (cam2, cam3…): a second view of the patient or the field. */
  addCamera() { return addCamera(this); }

  /** Stops every extra camera. */
  removeCameras() { return removeCameras(this); }

  toggleScreen() { return toggleScreen(this); }

  /** @param {string} name */
  stopScreen(name) { return stopScreen(this, name); }

  toggleHand() {
    const raised = !this.me?.hand_raised;
    this.socket?.request({ type: 'raise_hand', raised }).catch((e) => this.say(signalText(e), 'error'));
  }

  leave() {
    // The leave frame is on the wire before finish() closes the socket.
    this.socket?.request({ type: 'leave' }).catch(() => {});
    this.finish('left');
  }

  async endForAll() {
    try {
      await this.socket?.request({ type: 'end_consultation' });
    } catch (e) {
      this.say(signalText(e), 'error');
    }
  }

  // ---- host actions ----

  /** @param {string} type @param {string} participant @param {Record<string, any>} [extra] */
  hostAction(type, participant, extra = {}) {
    this.socket?.request({ type, participant, ...extra }).catch((e) => this.say(signalText(e), 'error'));
  }

  // ---- bandwidth ----

  /** @param {string} q */
  onMyQuality(q) {
    this.myQuality.dataset.level = q;
    this.myQuality.title = t(`call.quality.${q}`);
    this.myQuality.setAttribute('aria-label', t(`call.quality.${q}`));
  }

  /** The cap for all received video now. */
  layerCap() {
    // 'auto': each tile asks for what its size needs; the server lowers it when the link is
    // weak (and stops video altogether: `audio_only`).
    return this.layerPref === 'auto' ? 'high' : this.layerPref;
  }

  /** Sends set_layer where a tile's wish changed. */
  applyLayers() { return applyLayers(this); }

  // ---- rendering ----

  /**
   * One MediaStream per track, kept so that a video element is not reloaded on every render.
   * @param {string} _name @param {MediaStreamTrack} track
   */
  localStream(_name, track) {
    let s = this.streams.get(track);
    if (!s) { s = new MediaStream([track]); this.streams.set(track, s); }
    return s;
  }
  /** @param {RemoteTrack} r */
  remoteStream(r) {
    return r.track ? this.localStream(r.id, r.track) : null;
  }

  /** Draws the stage and the lists again from the state. */
  render() { return renderStage(this); }

  renderPeople() { return renderPeople(this); }

  /** @param {ParticipantInfo} p */
  confirmRemove(p) { return confirmRemove(this, p); }

  renderControls() { return renderControls(this); }

  /** A signaling error in the user's language. @param {unknown} e */
  signalText(e) { return signalText(e); }

  /** What tests and support staff may read: the state of the call, never media. */
  snapshot() {
    return {
      phase: this.phase,
      me: this.me,
      participants: [...this.participants.values()],
      lobby: [...this.lobby.values()],
      tracks: [...this.tracks.values()].map((r) => ({ id: r.id, participant: r.participant, kind: r.kind, source: r.source, muted: r.muted, received: Boolean(r.track) })),
      published: this.media ? [...this.media.sent.keys()] : [],
      layers: Object.fromEntries(this.layersSent),
      layerCap: this.layerCap(),
      audioOnly: this.audioOnly,
      reconnects: this.reconnects,
      received: { ...this.received },
      pc: { publish: this.media?.pub?.connectionState ?? null, subscribe: this.media?.sub?.connectionState ?? null },
      recording: recSnapshot(this),
    };
  }

  destroy() {
    this.destroyed = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.noticeTimer);
    this.intervals.forEach(clearInterval);
    this.socket?.close();
    this.media?.close();
    stopStream(this.local);
    this.localTracks.forEach((tr) => tr.stop());
    for (const a of this.audios.values()) a.srcObject = null;
    for (const tile of this.tiles.values()) tile.video.srcObject = null;
  }
}

/** A signaling error in the user's language. @param {unknown} e */
function signalText(e) {
  const err = e instanceof SignalError ? e : null;
  const code = err?.code ?? 'unknown';
  const key = `call.signal.${code}`;
  const text = t(key);
  return text === key ? errorText({ code, message: err?.message ?? String(e) }) : text;
}
