// In the call: the signaling socket with reconnect, the media session, the stage (grid or
// speaker view), controls, participants with host actions, the lobby, chat, and the
// bandwidth fallback (lower layers, then audio only). What server messages do to the call's
// state is state.js (`reduce`); this class runs the effects it returns and keeps the DOM, the
// socket and the media.
import { errorText, fmtTime, t } from '../i18n.js';
import { confirmDialog, h, videoEl } from './dom.js';
import { NO_WAY_IN } from './entry.js';
import { Labels } from './labels.js';
import { relabelToasts, toast } from './toasts.js';
import { cameraConstraints, canPickSpeaker, errorName, stopStream } from './devices.js';
import { MediaSession } from './media.js';
import { RoomSocket, SignalError, socketUrl } from './signaling.js';
import { addCamera, removeCameras, setCamera, setMic, stopScreen, switchCamera, toggleScreen } from './local.js';
import { applyLayers, confirmRemove, fitGrid, renderControls, renderPeople, renderStage } from './view.js';
import { recSnapshot, renderRecording } from './recording.js';
import { emptyRec, initialState, isFinal, nameOf, reduce } from './state.js';
import { toSaved } from './saved.js';
import { CasePanel } from './casepanel.js';

/** @typedef {import('./signaling.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('./precall.js').JoinChoice} JoinChoice */
/** @typedef {import('./state.js').RemoteTrack} RemoteTrack */
/** @typedef {import('./state.js').CallState} CallState */

/**
 * Reconnect backoff (ms): quick at first (a Wi-Fi blip, or a server node that died: its room
 * has a new home some 5 s later), then every 10 s.
 */
const BACKOFF = [500, 1000, 2000, 3000, 5000, 10000];
/** The application-level keepalive: a ping this often, and how long its pong may take. */
const KEEPALIVE_MS = 15000;
const PONG_TIMEOUT_MS = 8000;

export class CallRoom {
  /**
   * @param {import('./entry.js').Entry} entry how this page comes in (entry.js): the
   *   consultation, the room tokens, the way on at the end
   * @param {JoinChoice} choice
   * @param {{ onFinished: (state: string) => void, onLocalChange?: (saved: import('./saved.js').SavedCall) => void }} hooks
   *   onLocalChange: what this page sends changed (a camera added or switched, a mute), for a reload to restore
   */
  constructor(entry, choice, hooks) {
    this.entry = entry;
    const consultation = entry.consultation;
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
    // After a reload: the extra cameras reopened on their devices (index.js), and the mute
    // state as it was; publishLocal() sends both.
    for (const [name, track] of choice.extraCameras ?? []) this.localTracks.set(name, track);
    this.micMuted = Boolean(choice.micMuted);
    this.camMuted = Boolean(choice.camMuted);
    if (a) a.enabled = !this.micMuted;
    if (v) v.enabled = !this.camMuted;
    /** Every catalogue text of the call's fixed parts, written again on a language switch. */
    this.labels = new Labels();
    /** @type {string | (() => string)} what the notice bar shows (a function: written again on a language switch) */
    this.noticeText = '';
    /** @type {{ state: import('./state.js').FinalPhase, text?: string | (() => string) } | null} the end, once finished */
    this.final = null;
    this.screenSeq = 0;
    /** @type {CallState} phase, people, tracks, speaker, recording: replaced, never changed in place */
    this.state = initialState();
    /** @type {Map<string, MediaStreamTrack>} room track id → the track we receive for it */
    this.incoming = new Map();
    /** @type {Map<string, MediaStreamTrack>} received tracks not yet matched to a track_published */
    this.unmatched = new Map();
    /** Set by finish(): the final screen is up (the state's phase may turn final just before). */
    this.finished = false;
    /**
     * The viewer's layout choice (layout.js): a teaching broadcast shows the lecturer large;
     * a consultation is a grid that shows a shared screen large by itself.
     * @type {import('./layout.js').ViewMode}
     */
    this.layout = this.teaching ? 'speaker' : 'auto';
    /** @type {string | null} the tile this viewer pinned as the large view (no one else sees it) */
    this.pinned = null;
    /** @type {import('./layout.js').Arrangement} what the stage shows now (view.js) */
    this.arrangement = { layout: this.teaching ? 'speaker' : 'grid', main: null, pinned: null, places: {} };
    /** @type {import('./tiles.js').TileActions} */
    this.tileActions = { togglePin: (key) => this.togglePin(key), toggleFullscreen: (tile) => this.toggleFullscreen(tile) };
    // Leaving full screen (Esc, the button, the browser) puts the tiles back in their places
    // and the tile's layer back to what its place needs.
    this.onFullscreen = () => { if (!this.destroyed) this.render(); };
    document.addEventListener('fullscreenchange', this.onFullscreen);
    // Esc leaves full screen. Desktop browsers do that themselves (the page never sees the
    // key); a browser without that chrome (a kiosk, an embedded view, headless) passes it on.
    /** @param {KeyboardEvent} e */
    this.onKey = (e) => { if (e.key === 'Escape' && !e.defaultPrevented) this.leaveFullscreen(); };
    document.addEventListener('keydown', this.onKey);
    /** @type {string} auto | high | medium | low | off */
    this.layerPref = 'auto';
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
    /** A start or stop recording request is on its way (the button is disabled meanwhile). */
    this.recBusy = false;
    /** @type {HTMLElement | null} the consent prompt while it is shown */
    this.consentBox = null;
    // ---- view skeleton ----
    // Built here rather than in a method the constructor calls: the type check then knows
    // every part below is always set.
    this.status = h('span', { class: 'call-status', testid: 'call-status', dataset: { state: 'connecting' } });
    this.myQuality = h('span', { class: 'quality mine', testid: 'my-quality', role: 'img' }, h('i', {}), h('i', {}), h('i', {}));
    this.recording = h('span', { class: 'rec-slot', testid: 'recording-indicator', 'aria-live': 'polite' });
    this.notice = h('div', { class: 'call-notice', testid: 'call-notice', role: 'status', 'aria-live': 'polite', hidden: true });
    const L = this.labels;
    this.audioOnlyBanner = L.set(h('div', { class: 'call-notice warn', testid: 'audio-only', role: 'status', hidden: true }), 'call.notice.audio_only');
    this.recNote = h('div', { class: 'call-notice warn', testid: 'recording-excluded-note', role: 'status', hidden: true });
    this.recFailed = h('div', { class: 'call-notice error rec-failed', testid: 'recording-failed', role: 'alert', hidden: true });
    this.recAnswerList = h('ul', { class: 'people', testid: 'recording-answers-list' });
    this.recAnswers = h('section', { class: 'panel', testid: 'recording-answers', hidden: true }, L.set(h('h2', {}), 'call.rec.answers_title'), this.recAnswerList);
    this.main = h('div', { class: 'stage-main', testid: 'stage-main' });
    this.thumbs = h('div', { class: 'stage-thumbs', testid: 'stage-thumbs' });
    /** Who joined or left: passing notes over the stage's corner (toasts.js). */
    this.toasts = h('div', { class: 'call-toasts', testid: 'call-toasts', 'aria-live': 'polite' });
    this.stage = h('div', { class: 'stage', testid: 'stage' }, this.main, this.thumbs, this.toasts);
    this.peopleList = h('ul', { class: 'people', testid: 'participants' });
    this.lobbyList = h('ul', { class: 'people', testid: 'lobby' });
    // A class of trainees who came before the start is let in with one click (`admit_all`).
    this.lobbyAdmitAll = L.set(h('button', { type: 'button', class: 'small', testid: 'lobby-admit-all', hidden: true,
      onclick: () => this.socket?.request({ type: 'admit_all' }).catch((e) => this.say(() => signalText(e), 'error')) }), 'call.lobby.admit_all');
    this.lobbySection = h('section', { class: 'panel', testid: 'lobby-panel', hidden: true }, L.set(h('h2', {}), 'call.lobby.title'), this.lobbyAdmitAll, this.lobbyList);
    this.chatLog = h('ol', { class: 'chat-log', testid: 'chat-log', 'aria-live': 'polite' });
    this.chatInput = /** @type {HTMLInputElement} */ (h('input', { testid: 'chat-input', maxlength: 2000, autocomplete: 'off' }));
    this.chatForm = h('form', { class: 'chat-form', testid: 'chat-form' }, this.chatInput, L.set(h('button', { type: 'submit', testid: 'chat-send' }), 'call.chat.send'));
    this.chatForm.addEventListener('submit', (e) => { e.preventDefault(); this.sendChat(); });
    // The chat's title and placeholder depend on the mode too (renderPeople writes them).
    this.chatTitle = h('h2', { testid: 'chat-title' }, t('call.chat.title'));
    this.controls = h('div', { class: 'controls', testid: 'controls', role: 'toolbar' });
    this.side = h('aside', { class: 'side' },
      this.lobbySection,
      this.recAnswers,
      h('section', { class: 'panel people-panel' }, L.set(h('h2', { testid: 'people-title' }), 'call.people.title'), this.peopleList),
      h('section', { class: 'panel chat' }, this.chatTitle, this.chatLog, this.chatForm));
    // While waiting to be admitted: my own camera, muted and mirrored, to fix the picture
    // before the host lets me in (the pre-call preview's stream, now the call's).
    this.lobbyPreview = videoEl('lobby-preview');
    this.lobbyPreview.classList.add('mirror');
    this.waiting = h('div', { class: 'card waiting', testid: 'lobby-wait', hidden: true },
      L.set(h('h2', {}), 'call.lobby.waiting_title'), L.set(h('p', {}), 'call.lobby.waiting_text'),
      h('div', { class: 'lobby-preview', hidden: !this.localTracks.get('cam') },
        this.lobbyPreview, L.set(h('p', { class: 'muted small' }), 'call.lobby.preview_note')),
      L.set(h('button', { class: 'ghost', testid: 'lobby-leave', onclick: () => this.leave() }), 'call.ctl.leave'));
    this.finalBox = h('div', { class: 'card final', testid: 'call-final', hidden: true });
    this.body = h('div', { class: 'call-body', dataset: { case: 'closed' } }, this.stage, this.side, this.controls);
    /** The shared case material (protocol.md §13): above the stage while it is open. */
    this.casePanel = new CasePanel(this);
    this.body.prepend(this.casePanel.el);
    // The grid's shape follows the stage's size (a window resized, a tablet turned).
    this.resizer = new ResizeObserver(() => fitGrid(this));
    this.resizer.observe(this.main);
    this.el = h('section', { class: 'call', testid: 'call', dataset: { kind: this.c.kind } },
      h('header', { class: 'call-head' },
        // Named by the consultation's kind: a teaching session is 教学查房, not a broadcast.
        L.set(h('strong', { class: 'call-title', testid: 'call-title' }), titleKey(this.c.kind)),
        this.status, this.recording, this.casePanel.button, h('span', { class: 'spacer' }),
        L.set(h('span', { class: 'small' }), 'call.my_link'), this.myQuality),
      this.notice, this.audioOnlyBanner, this.recFailed, this.recNote, this.waiting, this.finalBox, this.body);
    this.renderControls();
    this.setStatus('connecting');
  }

  // ---- the state (state.js), read by view.js, local.js and recording.js ----

  get phase() { return this.state.phase; }
  get me() { return this.state.me; }
  get participants() { return this.state.participants; }
  get lobby() { return this.state.lobby; }
  get tracks() { return this.state.tracks; }
  get quality() { return this.state.quality; }
  get speaker() { return this.state.speaker; }
  /** The server stopped our video because our link loses too much (`audio_only`). */
  get audioOnly() { return this.state.audioOnly; }
  /** The room's recording (protocol.md §12). */
  get rec() { return this.state.rec; }

  /** @param {CallState} next */
  setState(next) {
    this.state = next;
    // A received track goes with the room track it belongs to.
    for (const id of this.incoming.keys()) if (!next.tracks.has(id)) this.incoming.delete(id);
  }

  // ---- the view skeleton's status and notices ----

  /** @param {import('./state.js').Phase} state */
  setStatus(state) {
    this.setState({ ...this.state, phase: state });
    this.status.dataset.state = state;
    this.status.textContent = t(`call.state.${state}`);
    this.el.dataset.state = state;
    const inRoom = state === 'joined' || state === 'reconnecting';
    this.body.hidden = !inRoom && state !== 'connecting';
    this.waiting.hidden = state !== 'lobby';
    this.showLobbyPreview(state === 'lobby');
  }

  /** Plays my camera in the lobby while I wait, and stops drawing it once I am in. @param {boolean} on */
  showLobbyPreview(on) {
    const cam = this.localTracks.get('cam');
    const stream = on && cam ? this.localStream('cam', cam) : null;
    /** @type {HTMLElement} */ (this.lobbyPreview.parentElement).hidden = !stream;
    if (this.lobbyPreview.srcObject === stream) return;
    this.lobbyPreview.srcObject = stream;
    if (stream) this.lobbyPreview.play().catch(() => {});
  }

  /**
   * A short message in the user's language; errors stay until the next one. A function for
   * `text` is called again on a language switch while the message is shown.
   * @param {string | (() => string)} text @param {string} [kind]
   */
  say(text, kind = 'info') {
    this.notice.hidden = false;
    this.notice.className = `call-notice ${kind}`;
    this.notice.dataset.kind = kind;
    this.noticeText = text;
    this.notice.textContent = typeof text === 'function' ? text() : text;
    clearTimeout(this.noticeTimer);
    if (kind !== 'error') this.noticeTimer = setTimeout(() => { this.notice.hidden = true; }, 6000);
  }

  /**
   * The language changed (app.js's `huizhen:lang`): every text of the call is written again in
   * place. Nothing is rebuilt that plays media or holds input: tiles update their captions, the
   * chat log is drawn again from its messages, the socket and the media are not touched.
   */
  relabel() {
    if (this.destroyed) return;
    this.labels.apply();
    this.status.textContent = t(`call.state.${this.phase}`);
    if (!this.notice.hidden && this.noticeText) this.notice.textContent = typeof this.noticeText === 'function' ? this.noticeText() : this.noticeText;
    this.renderFinal();
    if (this.myQuality.dataset.level) this.onMyQuality(this.myQuality.dataset.level);
    this.renderChat();
    relabelToasts(this.toasts);
    // The consent prompt is built once per recording: build it again in the new language.
    if (this.consentBox) { this.consentBox.remove(); this.consentBox = null; }
    renderRecording(this);
    this.casePanel.relabel();
    this.render();
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
      join = await this.entry.join();
    } catch (e) {
      const err = /** @type {any} */ (e);
      if (NO_WAY_IN.includes(err?.code)) {
        this.finish(err?.details?.status ? 'ended' : 'closed', () => errorText(err));
        return;
      }
      this.say(() => errorText(err), 'error');
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
    if (this.destroyed || isFinal(this.phase)) return;
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
    if (isFinal(this.phase)) return;
    // 4000: the server refused our protocol; trying again would loop.
    if (code === 4000) {
      this.finish('refused', () => t('call.final.protocol'));
      return;
    }
    if (this.phase === 'lobby') {
      // Leaving the lobby drops the waiting entry; coming back puts us there again.
      this.setStatus('connecting');
    }
    this.say(() => t('call.notice.reconnecting'), 'warn');
    this.reconnects++;
    this.retry();
  }

  /** Closes the media of the old socket and forgets the remote tracks it carried. */
  dropMedia() {
    this.media?.close();
    this.media = null;
    // A new media session starts with video; the server says again if the link cannot carry it.
    this.setState({ ...this.state, tracks: new Map(), audioOnly: false });
    this.unmatched.clear();
    this.layersSent.clear();
    this.audioOnlyBanner.hidden = true;
    for (const a of this.audios.values()) { a.srcObject = null; a.remove(); }
    this.audios.clear();
    this.render();
  }

  /** @param {import('./state.js').FinalPhase} state @param {string | (() => string)} [text] a function: written again on a language switch */
  finish(state, text) {
    if (this.finished) return;
    this.finished = true;
    this.setStatus(state);
    this.body.hidden = true;
    this.waiting.hidden = true;
    this.notice.hidden = true;
    this.socket?.close();
    this.dropMedia();
    stopStream(this.local);
    this.localTracks.forEach((tr) => tr.stop());
    this.setState({ ...this.state, rec: emptyRec() });
    renderRecording(this);
    this.leaveFullscreen();
    this.final = text ? { state, text } : { state };
    this.finalBox.hidden = false;
    this.finalBox.dataset.state = state;
    this.renderFinal();
    this.hooks.onFinished(state);
    // The way on is the step that follows the call for this user (after.js): it has the focus,
    // so Enter takes them there.
    /** @type {HTMLElement | null} */ (this.finalBox.querySelector('[data-testid="call-final-back"]'))?.focus();
  }

  /** The end of the call: why, and the way on (the opinion, the plan, or the consultation). */
  renderFinal() {
    if (!this.final) return;
    const { state, text } = this.final;
    // The way on (after.js), if this page has one: a guest's has none.
    const next = this.entry.after(state);
    this.finalBox.dataset.next = next ? next.form ?? 'detail' : '';
    // replaceChildren() writes a missing part as text ("undefined", "null"): '' writes nothing.
    this.finalBox.replaceChildren(
      h('h2', {}, t(`call.final.${state}`)),
      text ? h('p', { testid: 'call-final-text' }, typeof text === 'function' ? text() : text) : '',
      next ? h('a', { class: 'button', href: next.href, testid: 'call-final-back', dataset: { next: next.form ?? 'detail' } },
        t(next.form ? `call.final.to_${next.form}` : 'call.final.back')) : '');
  }

  // ---- server messages ----

  /**
   * Every server message that is not an answer, in order: the reducer says what changes and
   * what to do, and this runs it (awaited: a trickle must not overtake its offer).
   * @param {any} m
   */
  async onEvent(m) {
    this.received[m.type] = (this.received[m.type] ?? 0) + 1;
    const { state, effects } = reduce(this.state, /** @type {import('./state.js').ServerMessage} */ (m));
    this.setState(state);
    for (const effect of effects) await this.run(effect);
  }

  /** @param {import('./state.js').Effect} effect */
  async run(effect) {
    switch (effect.kind) {
      case 'render':
        this.renderPart(effect.part);
        break;
      case 'notice': {
        const text = effect.text;
        this.say(() => this.text(text), effect.level);
        break;
      }
      case 'toast': {
        const text = effect.text;
        toast(this.toasts, () => this.text(text), { what: effect.what, participant: effect.participant });
        break;
      }
      case 'lobby':
        this.setStatus('lobby');
        break;
      case 'enterRoom':
        this.enterRoom();
        break;
      case 'resumed':
        // Only worth saying when this page had lost its socket (a reload resumes silently).
        if (this.reconnects) this.say(() => t('call.notice.reconnected'));
        break;
      case 'finish': {
        const text = effect.text;
        this.finish(effect.phase, text && (() => this.text(text)));
        break;
      }
      case 'chat':
        this.onChat(effect.item);
        break;
      case 'muteMic':
        this.setMic(true);
        break;
      case 'promoted':
        this.onPromoted().catch((e) => this.say(() => t('call.error.media', { message: String(e?.message ?? e) }), 'error'));
        break;
      case 'demoted':
        this.onDemoted();
        break;
      case 'trackPublished':
        this.onTrackPublished(effect.id);
        break;
      case 'trackUnpublished':
        this.layersSent.delete(effect.id);
        this.audios.get(effect.id)?.remove();
        this.audios.delete(effect.id);
        break;
      case 'showScreen':
        // Shared imaging is what everyone needs to read: a new share takes the large view, over
        // a pin too (the grid, or a pin, stays a click away). The render effect follows.
        if (this.layout === 'grid') this.layout = 'auto';
        this.pinned = null;
        break;
      case 'subscribeOffer':
        await this.media?.onSubscribeOffer(effect.sdp);
        break;
      case 'trickle':
        await this.media?.onCandidate(effect.target, effect.candidate);
        break;
      case 'casePointer':
        this.casePanel.onPointer(effect.participant);
        break;
      case 'reconnect':
        this.socket?.close();
        if (this.socket) this.onClosed(this.socket, 1006, 'media_closed');
        break;
      default:
        break;
    }
  }

  /** @param {import('./state.js').ViewPart} part */
  renderPart(part) {
    switch (part) {
      case 'stage': this.render(); break;
      case 'people': this.renderPeople(); break;
      case 'controls': this.renderControls(); break;
      case 'recording': renderRecording(this); break;
      case 'audioOnly': this.audioOnlyBanner.hidden = !this.audioOnly; break;
      case 'chat': this.renderChat(); break;
      case 'case': this.casePanel.onState(); break;
      case 'caseMarks': this.casePanel.renderMarks(); break;
      case 'myQuality': {
        const q = this.me && this.quality.get(this.me.id);
        if (q) this.onMyQuality(q);
        break;
      }
      default: break;
    }
  }

  /** A text from the reducer in the user's language; a name it does not know is "someone". @param {import('./state.js').Text} text */
  text(text) {
    /** @type {Record<string, string>} */
    const params = {};
    for (const [k, v] of Object.entries(text.params ?? {})) params[k] = v ?? t('call.common.someone');
    return t(text.key, params);
  }

  enterRoom() {
    this.setStatus('joined');
    renderRecording(this);
    this.startMedia().catch((e) => this.say(() => t('call.error.media', { message: String(e?.message ?? e) }), 'error'));
    this.render();
  }

  async startMedia() {
    if (!this.socket || !this.join) return;
    this.dropMedia();
    this.media = new MediaSession(this.socket, this.join.ice_servers ?? [],
      (track, participant, id, exact) => this.onRemoteTrack(track, participant, id, exact),
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

  /** A host let us speak: open the microphone (and camera) and publish. */
  async onPromoted() {
    // Asked first: the camera and microphone open only if the trainee agrees. Declining gives
    // the floor back (the host sees it), and a host may ask again.
    const accept = await confirmDialog({
      testid: 'floor-ask', title: t('call.floor.ask_title'), text: t('call.floor.ask_text'),
      yes: t('call.floor.accept'), no: t('call.floor.decline'),
    });
    if (this.destroyed || this.finished) return;
    if (!accept) {
      const id = this.me?.id;
      if (id) this.socket?.request({ type: 'set_can_publish', participant: id, allowed: false }).catch((e) => this.say(() => signalText(e), 'error'));
      return;
    }
    this.say(() => t('call.notice.promoted'));
    if (this.localTracks.size === 0) {
      let stream = null;
      try {
        stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: cameraConstraints(undefined) });
      } catch {
        try { stream = await navigator.mediaDevices.getUserMedia({ audio: true }); } catch (e) {
          this.say(() => t('call.error.no_mic', { name: errorName(e) }), 'error');
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
    this.say(() => t('call.notice.demoted'));
    // The server has already unpublished our tracks and closed the publish connection.
    this.media?.closePublish();
    for (const tr of this.localTracks.values()) tr.stop();
    this.localTracks.clear();
    this.local.getTracks().forEach((tr) => this.local.removeTrack(tr));
    this.render();
  }

  /** A track_published (not ours) is in the state: its track may have arrived already. @param {string} id */
  onTrackPublished(id) {
    const track = this.unmatched.get(id);
    this.unmatched.delete(id);
    // Published again under the same id: what we received before belongs to the old one.
    if (track) this.incoming.set(id, track); else this.incoming.delete(id);
    this.attachAudio(this.tracks.get(id));
  }

  /**
   * A received track, for room track `id`. `exact`: the id is known for sure (read from the
   * applied offer), so no guess by participant and kind is made.
   * @param {MediaStreamTrack} track @param {string} participant @param {string} id @param {boolean} [exact]
   */
  onRemoteTrack(track, participant, id, exact = false) {
    let rec = this.tracks.get(id);
    if (rec && this.incoming.get(id) === track) return;
    if (!rec && !exact) {
      // A browser that does not keep the sender's track id: take the first unmatched track of
      // that participant and kind.
      rec = [...this.tracks.values()].find((r) => r.participant === participant && r.kind === track.kind && !this.incoming.has(r.id));
    }
    if (!rec) {
      this.unmatched.set(id, track);
      return;
    }
    this.incoming.set(rec.id, track);
    this.attachAudio(rec);
    this.render();
  }

  /** Plays a received audio track through its own <audio> (the speaker choice applies). @param {RemoteTrack | undefined} rec */
  attachAudio(rec) {
    const track = rec && this.incoming.get(rec.id);
    if (!rec || rec.kind !== 'audio' || !track || this.audios.has(rec.id)) return;
    const a = /** @type {HTMLAudioElement} */ (h('audio', { testid: 'remote-audio', autoplay: true, dataset: { participant: rec.participant, track: rec.id } }));
    a.srcObject = new MediaStream([track]);
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
    // A question goes to the hosts as such, whether or not one is in the room yet: the server
    // keeps it for a host who comes later (protocol.md §4 `chat`).
    if (this.asksModerator()) msg.to_hosts = true;
    this.socket.request(msg).then(() => { this.chatInput.value = ''; },
      (e) => this.say(() => signalText(e), 'error'));
  }

  /** A trainee's chat is Q&A: questions to the moderators, which only they (and the asker) read. */
  asksModerator() {
    return this.teaching && !this.me?.host && !this.me?.can_publish;
  }

  /** Appends one new chat line (the state has it already). @param {import('./state.js').ChatItem} item */
  onChat(item) {
    this.chatLog.append(this.chatEntry(item));
    this.chatLog.scrollTop = this.chatLog.scrollHeight;
  }

  /** Draws the whole chat log from the state (the history came, or the language changed). */
  renderChat() {
    this.chatLog.replaceChildren(...this.state.chat.map((c) => this.chatEntry(c)));
    this.chatLog.scrollTop = this.chatLog.scrollHeight;
  }

  /** One chat line as the log shows it. @param {import('./state.js').ChatItem} item */
  chatEntry({ line: m, mine, toName }) {
    const priv = Boolean(m.to);
    const question = !priv && Boolean(m.to_hosts);
    const who = mine ? t('call.chat.me') : m.from_name;
    let to = '';
    if (priv) to = ` · ${t(mine ? 'call.chat.private_to' : 'call.chat.private', { name: toName ?? t('call.common.someone') })}`;
    else if (question) to = ` · ${t(mine ? 'call.chat.question_mine' : 'call.chat.question')}`;
    const kind = `${mine ? ' mine' : ''}${priv ? ' private' : ''}${question ? ' question' : ''}`;
    return h('li', { class: `chat-msg${kind}`, testid: 'chat-message', dataset: { from: m.from, private: String(priv), question: String(question) } },
      h('span', { class: 'chat-meta', testid: 'chat-meta' }, who, to, ' · ', fmtTime(m.at)),
      h('span', { class: 'chat-text', testid: 'chat-text' }, m.text));
  }

  /** @param {string} id */
  nameOf(id) {
    return nameOf(this.state, id) ?? t('call.common.someone');
  }

  /** The host closed the recorder-failure banner. */
  dismissRecFailure() {
    this.setState({ ...this.state, rec: { ...this.rec, failed: null } });
    renderRecording(this);
  }

  // ---- local controls ----

  /** @param {boolean} muted */
  setMic(muted) { setMic(this, muted); this.localChanged(); }

  /** @param {boolean} off */
  setCamera(off) { setCamera(this, off); this.localChanged(); }

  /** Moves the main camera to the next camera device. */
  async switchCamera() { await switchCamera(this); this.localChanged(); }

  /** Publishes one more camera as its own track (cam2, cam3…): a second view of the patient or the field. */
  async addCamera() { await addCamera(this); this.localChanged(); }

  /** Stops every extra camera. */
  async removeCameras() { await removeCameras(this); this.localChanged(); }

  /** What this page sends, as a reload must bring it back (saved.js). */
  localState() {
    return toSaved({
      tracks: [...this.localTracks].map(([name, tr]) => [name, { kind: tr.kind, deviceId: tr.getSettings().deviceId }]),
      micMuted: this.micMuted,
      camMuted: this.camMuted,
      speakerId: this.choice.speakerId,
    });
  }

  /** Tells index.js that what this page sends changed (it saves it for a reload). */
  localChanged() {
    if (!this.finished && !this.destroyed) this.hooks.onLocalChange?.(this.localState());
  }

  toggleScreen() { return toggleScreen(this); }

  /** @param {string} name */
  stopScreen(name) { return stopScreen(this, name); }

  // ---- the stage: layout, pin, full screen ----

  /** The viewer picks grid or speaker view; a pin goes (the choice is what they want to see). @param {import('./layout.js').ViewMode} mode */
  setLayout(mode) {
    this.layout = mode;
    this.pinned = null;
    this.render();
  }

  /** Pins a tile as this viewer's large view, or unpins it. @param {string} key */
  togglePin(key) {
    this.pinned = this.pinned === key ? null : key;
    this.render();
  }

  /** Shows a tile alone on the screen (imaging needs every pixel), or leaves full screen. @param {import('./tiles.js').Tile} tile */
  toggleFullscreen(tile) {
    if (tile.fullscreen) {
      this.leaveFullscreen();
      return;
    }
    tile.el.requestFullscreen().catch((e) => this.say(() => t('call.error.fullscreen', { name: errorName(e) }), 'error'));
  }

  leaveFullscreen() {
    if (document.fullscreenElement && this.el.contains(document.fullscreenElement)) document.exitFullscreen().catch(() => {});
  }

  toggleHand() {
    const raised = !this.me?.hand_raised;
    this.socket?.request({ type: 'raise_hand', raised }).catch((e) => this.say(() => signalText(e), 'error'));
  }

  leave() {
    // The leave frame is on the wire before finish() closes the socket.
    this.socket?.request({ type: 'leave' }).catch(() => {});
    this.finish('left');
  }

  /**
   * The page is going away (closed, reloaded, navigated off): say goodbye to the room so that
   * the others see us go at once (protocol.md §4 `leave`; the browser's close frame 1001 counts
   * as a leave too, but is not sent by every browser on every way out). The call stays
   * remembered: a reload joins again as it did before (index.js). The page may also be kept
   * in the back-forward cache: the server closes this socket after the leave, and the
   * normal reconnect brings the call back if the page is shown again.
   */
  sayGoodbye() {
    if (this.finished || this.destroyed || !this.socket || this.socket.closed) return;
    this.socket.request({ type: 'leave' }).catch(() => {});
  }

  async endForAll() {
    try {
      await this.socket?.request({ type: 'end_consultation' });
    } catch (e) {
      this.say(() => signalText(e), 'error');
    }
  }

  // ---- host actions ----

  /** @param {string} type @param {string} participant @param {Record<string, any>} [extra] */
  hostAction(type, participant, extra = {}) {
    this.socket?.request({ type, participant, ...extra }).catch((e) => this.say(() => signalText(e), 'error'));
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
  /** The stream of a remote track, or null while nothing is received for it. @param {RemoteTrack} r */
  remoteStream(r) {
    const track = this.incoming.get(r.id);
    return track ? this.localStream(r.id, track) : null;
  }

  /** Whether a remote track's media has arrived. @param {RemoteTrack} r */
  receiving(r) {
    return this.incoming.has(r.id);
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
      tracks: [...this.tracks.values()].map((r) => ({ id: r.id, participant: r.participant, kind: r.kind, source: r.source, muted: r.muted, received: this.incoming.has(r.id) })),
      published: this.media ? [...this.media.sent.keys()] : [],
      layers: Object.fromEntries(this.layersSent),
      view: { layout: this.arrangement.layout, mode: this.layout, main: this.arrangement.main, pinned: this.pinned },
      layerCap: this.layerCap(),
      audioOnly: this.audioOnly,
      reconnects: this.reconnects,
      received: { ...this.received },
      pc: { publish: this.media?.pub?.connectionState ?? null, subscribe: this.media?.sub?.connectionState ?? null },
      recording: recSnapshot(this),
      // What this page sends and from which device (device ids, never media).
      local: Object.fromEntries([...this.localTracks].map(([name, tr]) => [name, { kind: tr.kind, deviceId: tr.getSettings().deviceId ?? null, enabled: tr.enabled }])),
      micMuted: this.micMuted,
      camMuted: this.camMuted,
      case: this.casePanel.snapshot(),
    };
  }

  destroy() {
    this.destroyed = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.noticeTimer);
    this.intervals.forEach(clearInterval);
    this.leaveFullscreen();
    document.removeEventListener('fullscreenchange', this.onFullscreen);
    document.removeEventListener('keydown', this.onKey);
    this.resizer.disconnect();
    this.casePanel.destroy();
    this.socket?.close();
    this.media?.close();
    stopStream(this.local);
    this.localTracks.forEach((tr) => tr.stop());
    for (const a of this.audios.values()) a.srcObject = null;
    for (const tile of this.tiles.values()) tile.video.srcObject = null;
    this.lobbyPreview.srcObject = null;
  }
}

/** The call's title for a consultation kind (docs/api.md: consultation, case_discussion, teaching). @param {string} kind */
function titleKey(kind) {
  return ['consultation', 'case_discussion', 'teaching'].includes(kind) ? `call.title.${kind}` : 'call.title.consultation';
}

/** A signaling error in the user's language. @param {unknown} e */
function signalText(e) {
  const err = e instanceof SignalError ? e : null;
  const code = err?.code ?? 'unknown';
  const key = `call.signal.${code}`;
  const text = t(key);
  return text === key ? errorText({ code, message: err?.message ?? String(e) }) : text;
}
