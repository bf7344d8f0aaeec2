// The call's state and what each server message does to it (docs/protocol.md §5, §11, §12, §13).
// `reduce(state, message)` is pure: it returns a new state and the side effects the call must
// run (a notice, starting media, the end of the call…) as plain data, so that it runs under
// plain node (web-client/test/state.test.mjs) and CallRoom (room.js) is left with the DOM,
// the socket and the media. Nothing here may import the DOM, the network or i18n.

// ---- protocol: server → client (signaling/src/rtc/protocol.rs, `ServerMessage`) ----

/**
 * @typedef {Object} ParticipantInfo
 * @property {string} id
 * @property {string} name
 * @property {boolean} host the `room_admin` grant
 * @property {boolean} can_publish
 * @property {'online' | 'reconnecting'} presence
 * @property {boolean} hand_raised
 * @property {boolean} [guest] came through a guest link: no account behind the name (sent only when true)
 * @property {boolean} [encoder] an operating-room encoder publishing by WHIP (protocol.md §11):
 *   a device named by its credential's label, not a person; it publishes only (sent only when true)
 */

/**
 * @typedef {Object} TrackInfo a published track, as `track_published` describes it
 * @property {string} id `{participant}/{track}`
 * @property {string} participant
 * @property {'audio' | 'video'} kind
 * @property {string} codec e.g. `video/VP8`
 * @property {boolean} simulcast
 */

/** @typedef {'publish' | 'subscribe'} PcTarget */
/** @typedef {'excellent' | 'good' | 'poor'} Quality */

/**
 * An ICE candidate as the browser's RTCIceCandidateInit carries it (the server's `trickle`).
 * @typedef {{ candidate: string, sdpMid?: string | null, sdpMLineIndex?: number | null, usernameFragment?: string | null }} IceCandidate
 */

/**
 * @typedef {{ type: 'hello', id: string, version: number, room: string, you: ParticipantInfo, state: 'joined' | 'lobby', resumed: boolean, participants: ParticipantInfo[], lobby: ParticipantInfo[] }} HelloMessage
 * @typedef {{ type: 'ack', id: string }} AckMessage
 * @typedef {{ type: 'pong', id: string }} PongMessage
 * @typedef {{ type: 'error', id?: string, code: string, message: string }} ErrorMessage
 * @typedef {{ type: 'participant_joined', participant: ParticipantInfo }} ParticipantJoinedMessage
 * @typedef {{ type: 'participant_updated', participant: ParticipantInfo }} ParticipantUpdatedMessage
 * @typedef {{ type: 'participant_left', participant_id: string, reason: 'left' | 'removed' | 'timeout' | 'ended' | 'audience' }} ParticipantLeftMessage
 * @typedef {{ type: 'lobby_waiting', participant: ParticipantInfo }} LobbyWaitingMessage
 * @typedef {{ type: 'lobby_left', participant_id: string }} LobbyLeftMessage
 * @typedef {{ type: 'admitted', participants: ParticipantInfo[] }} AdmittedMessage
 * @typedef {{ type: 'declined' }} DeclinedMessage
 * @typedef {{ type: 'removed', by: string }} RemovedMessage
 * @typedef {{ type: 'mute_requested', by: string }} MuteRequestedMessage
 * @typedef {{ type: 'recording', active: boolean, recording?: string, by?: string, started_at?: string, excluded: string[] }} RecordingMessage
 * @typedef {{ type: 'recording_consent', participant: string, name: string, consent: boolean }} RecordingConsentMessage
 * @typedef {{ type: 'recording_failed', code: string, message: string }} RecordingFailedMessage
 * @typedef {{ type: 'chat', from: string, from_name: string, text: string, to?: string, to_hosts?: boolean, at: string }} ChatMessage
 * @typedef {{ type: 'chat_history', messages: ChatLine[] }} ChatHistoryMessage
 * @typedef {{ type: 'ended', by: string }} EndedMessage
 * @typedef {{ type: 'closing', reason: string }} ClosingMessage
 * @typedef {{ type: 'publish_answer', id: string, sdp: string }} PublishAnswerMessage
 * @typedef {{ type: 'subscribe_offer', sdp: string }} SubscribeOfferMessage
 * @typedef {{ type: 'trickle', target: PcTarget, candidate: IceCandidate }} TrickleMessage
 * @typedef {{ type: 'track_published', track: TrackInfo }} TrackPublishedMessage
 * @typedef {{ type: 'track_unpublished', track_id: string, participant: string }} TrackUnpublishedMessage
 * @typedef {{ type: 'track_muted', track_id: string, participant: string, muted: boolean }} TrackMutedMessage
 * @typedef {{ type: 'connection_quality', participant: string, quality: Quality }} ConnectionQualityMessage
 * @typedef {{ type: 'active_speaker', participant: string | null }} ActiveSpeakerMessage
 * @typedef {{ type: 'audio_only', active: boolean }} AudioOnlyMessage
 * @typedef {{ type: 'media_closed', reason: string }} MediaClosedMessage
 * @typedef {{ type: 'case_state', view: CaseView | null, presenter: string | null, marks: CaseMark[] }} CaseStateMessage
 * @typedef {{ type: 'case_pointer', participant: string, color: number, x: number | null, y: number | null }} CasePointerMessage
 * @typedef {{ type: 'case_mark', mark: CaseMark }} CaseMarkMessage
 */

/** @typedef {import('./caseview.js').CaseView} CaseView */
/**
 * A mark on the picture shown, as the server sends it (protocol.md §13).
 * @typedef {{ id: number, participant: string, color: number, kind: 'arrow' | 'circle' | 'line', points: [number, number][] }} CaseMark
 */

/**
 * Every message the server sends on its own, plus the answers (`hello` also starts the room
 * state; a stray `ack`, `pong` or `publish_answer` changes nothing).
 * @typedef {HelloMessage | AckMessage | PongMessage | ErrorMessage | ParticipantJoinedMessage
 *   | ParticipantUpdatedMessage | ParticipantLeftMessage | LobbyWaitingMessage | LobbyLeftMessage
 *   | AdmittedMessage | DeclinedMessage | RemovedMessage | MuteRequestedMessage | RecordingMessage
 *   | RecordingConsentMessage | RecordingFailedMessage | ChatMessage | ChatHistoryMessage | EndedMessage | ClosingMessage
 *   | PublishAnswerMessage | SubscribeOfferMessage | TrickleMessage | TrackPublishedMessage
 *   | TrackUnpublishedMessage | TrackMutedMessage | ConnectionQualityMessage | ActiveSpeakerMessage
 *   | AudioOnlyMessage | MediaClosedMessage | CaseStateMessage | CasePointerMessage | CaseMarkMessage} ServerMessage
 */

/**
 * One chat message as the room keeps it: a `chat` event without its type (`chat_history`
 * sends them so). `to`: privately to that participant; `to_hosts`: a question to the hosts.
 * @typedef {{ from: string, from_name: string, text: string, to?: string, to_hosts?: boolean, at: string }} ChatLine
 */

// ---- the call's state ----

/** The room keeps its last 500 messages (protocol.md §4 `chat`): the log keeps no more either. */
export const CHAT_KEPT = 500;

/**
 * One line of the chat log: the message, whether I sent it, and the name of whom a private
 * message went to (null: unknown, shown as "someone").
 * @typedef {{ line: ChatLine, mine: boolean, toName: string | null }} ChatItem
 */

/** @typedef {'ended' | 'left' | 'removed' | 'declined' | 'replaced' | 'refused' | 'closed'} FinalPhase */
/** @typedef {'connecting' | 'reconnecting' | 'lobby' | 'joined' | FinalPhase} Phase */

/** Terminal phases: the call is over for this page. @type {readonly FinalPhase[]} */
export const FINAL = ['ended', 'left', 'removed', 'declined', 'replaced', 'refused', 'closed'];

/** @param {string} phase @returns {phase is FinalPhase} */
export function isFinal(phase) {
  return /** @type {readonly string[]} */ (FINAL).includes(phase);
}

/**
 * A remote track as the call knows it from track_published / _unpublished / _muted. The
 * received MediaStreamTrack is not state: CallRoom keeps it by this id.
 * @typedef {Object} RemoteTrack
 * @property {string} id room track id
 * @property {string} participant
 * @property {'audio' | 'video'} kind
 * @property {TrackSource} source
 * @property {boolean} muted
 */

/** @typedef {'mic' | 'camera' | 'camera2' | 'screen'} TrackSource */

/**
 * @typedef {Object} RecState the room's recording (protocol.md §12)
 * @property {boolean} active the room is being recorded
 * @property {string | null} id the recording's id while active
 * @property {string | null} by who started it
 * @property {string | null} startedAt when it started (RFC 3339)
 * @property {string[]} excluded participants who declined
 * @property {Map<string, { participant: string, name: string, consent: boolean }>} answers consent answers (hosts), this recording
 * @property {{ code: string, message: string } | null} failed the last recording_failed (hosts)
 */

/**
 * @typedef {Object} CallState
 * @property {Phase} phase
 * @property {ParticipantInfo | null} me null until the first hello
 * @property {Map<string, ParticipantInfo>} participants
 * @property {Map<string, ParticipantInfo>} lobby who waits (hosts only)
 * @property {Map<string, RemoteTrack>} tracks room track id → what we know of it
 * @property {Map<string, Quality>} quality participant → connection quality
 * @property {string | null} speaker the active speaker
 * @property {boolean} audioOnly the server stopped our video because our link loses too much
 * @property {RecState} rec
 * @property {ChatItem[]} chat the chat log, oldest first (at most CHAT_KEPT)
 * @property {CaseState} case the case panel (protocol.md §13)
 */

/**
 * The case panel as the room shows it: the view, who presents, the marks on the picture, and
 * where the others point (never my own pointer: the server does not send it back).
 * @typedef {Object} CaseState
 * @property {CaseView | null} view null: nothing is shown
 * @property {string | null} presenter
 * @property {CaseMark[]} marks
 * @property {Map<string, { color: number, x: number, y: number }>} pointers participant → where they point
 * @property {Map<string, number>} colors participant → their colour index, as far as seen (their marks and pointers)
 * @property {string | null} seen the attachment last shown on this page, kept over a new socket
 *   (whose `case_state` then tells nothing new) and forgotten when the panel is closed
 */

/** @typedef {'info' | 'warn' | 'error'} NoticeLevel */
/** A text to show: an i18n key and its parameters; a `name` of null means "someone". */
/** @typedef {{ key: string, params?: Record<string, string | null> }} Text */
/**
 * What the view must draw again; `case` the case panel's view and roles, `caseMarks` its marks.
 * @typedef {'stage' | 'people' | 'controls' | 'recording' | 'audioOnly' | 'myQuality' | 'chat' | 'case' | 'caseMarks'} ViewPart
 */

/** Who came or went, for a passing note in the call (not the notice bar). @typedef {'joined' | 'left' | 'removed'} Coming */

/**
 * A side effect for CallRoom to run, in list order.
 * @typedef {{ kind: 'render', part: ViewPart }
 *   | { kind: 'notice', text: Text, level: NoticeLevel }
 *   | { kind: 'toast', text: Text, what: Coming, participant: string }
 *   | { kind: 'lobby' }
 *   | { kind: 'enterRoom' }
 *   | { kind: 'resumed' }
 *   | { kind: 'finish', phase: FinalPhase, text?: Text }
 *   | { kind: 'chat', item: ChatItem }
 *   | { kind: 'muteMic' }
 *   | { kind: 'promoted' }
 *   | { kind: 'demoted' }
 *   | { kind: 'trackPublished', id: string }
 *   | { kind: 'trackUnpublished', id: string }
 *   | { kind: 'showScreen' }
 *   | { kind: 'subscribeOffer', sdp: string }
 *   | { kind: 'trickle', target: PcTarget, candidate: IceCandidate }
 *   | { kind: 'casePointer', participant: string }
 *   | { kind: 'reconnect' }} Effect
 */

/** @typedef {{ state: CallState, effects: Effect[] }} Step */

/** @returns {RecState} */
export function emptyRec() {
  return { active: false, id: null, by: null, startedAt: null, excluded: [], answers: new Map(), failed: null };
}

/** @returns {CaseState} */
export function emptyCase() {
  return { view: null, presenter: null, marks: [], pointers: new Map(), colors: new Map(), seen: null };
}

/** @returns {CallState} */
export function initialState() {
  return {
    phase: 'connecting',
    me: null,
    participants: new Map(),
    lobby: new Map(),
    tracks: new Map(),
    quality: new Map(),
    speaker: null,
    audioOnly: false,
    rec: emptyRec(),
    chat: [],
    case: emptyCase(),
  };
}

/** What a room track shows, from its name (`<participant>/<name>`; see MediaSession.named). */
export function sourceOf(/** @type {string} */ trackId, /** @type {string} */ kind) {
  const name = trackId.slice(trackId.indexOf('/') + 1);
  /** @type {TrackSource} */
  let source = 'camera';
  if (kind === 'audio') source = 'mic';
  else if (/^screen/.test(name)) source = 'screen';
  else if (/^cam\d+$/.test(name)) source = 'camera2';
  return source;
}

/** A participant's name, joined or waiting; null when we do not know them. @param {CallState} s @param {string} id */
export function nameOf(s, id) {
  return s.participants.get(id)?.name ?? s.lobby.get(id)?.name ?? null;
}

/**
 * What one server message does to the call. Never changes `s`: every Map or object it
 * changes is a copy. Once the call is over (a final phase) messages change nothing: the
 * socket is closing and a late `ended` must not overwrite why the call ended.
 * @param {CallState} s
 * @param {ServerMessage} m
 * @returns {Step}
 */
export function reduce(s, m) {
  if (isFinal(s.phase)) return { state: s, effects: [] };
  switch (m.type) {
    case 'hello': {
      const state = {
        ...s,
        me: m.you,
        participants: byId(m.participants),
        lobby: byId(m.lobby ?? []),
        // A new socket: the server sends `recording` right after hello only while recording;
        // a recorder failure stays shown until dismissed.
        rec: { ...emptyRec(), failed: s.rec.failed },
        // Likewise `case_state` only while something is shown: what this page showed before
        // may have been closed meanwhile.
        case: { ...emptyCase(), colors: s.case.colors, seen: s.case.seen },
      };
      /** @type {Effect[]} */
      const caseGone = s.case.view ? [render('case')] : [];
      if (m.state === 'lobby') return { state: { ...state, phase: 'lobby' }, effects: [{ kind: 'lobby' }, ...caseGone] };
      /** @type {Effect[]} */
      const effects = m.resumed ? [{ kind: 'resumed' }] : [];
      effects.push({ kind: 'enterRoom' }, ...caseGone);
      return { state: { ...state, phase: 'joined' }, effects };
    }
    case 'admitted':
      return { state: { ...s, phase: 'joined', participants: byId(m.participants) }, effects: [{ kind: 'enterRoom' }] };
    case 'participant_joined': {
      const step = onParticipant(s, m.participant);
      // A reload joins again: someone already shown is not announced twice.
      if (!s.participants.has(m.participant.id) && tellsComings(s, m.participant)) step.effects.push(coming('joined', m.participant));
      return step;
    }
    case 'participant_updated':
      return onParticipant(s, m.participant);
    case 'participant_left': {
      const who = s.participants.get(m.participant_id);
      const tracks = new Map([...s.tracks].filter(([, tr]) => tr.participant !== m.participant_id));
      /** @type {Effect[]} */
      const effects = [render('stage')];
      // `ended`: the consultation ended, which this page is told by `ended` itself; `audience`:
      // a trainee whose floor ended is still in the room, only no longer shown here.
      if (who && m.reason !== 'ended' && m.reason !== 'audience' && tellsComings(s, who)) effects.push(coming(m.reason === 'removed' ? 'removed' : 'left', who));
      // Someone gone points at nothing.
      let kase = s.case;
      if (kase.pointers.has(m.participant_id)) {
        kase = { ...kase, pointers: without(kase.pointers, m.participant_id) };
        effects.push({ kind: 'casePointer', participant: m.participant_id });
      }
      return { state: { ...s, participants: without(s.participants, m.participant_id), tracks, case: kase }, effects };
    }
    case 'lobby_waiting':
      return {
        state: { ...s, lobby: withEntry(s.lobby, m.participant.id, m.participant) },
        effects: [notice('call.notice.lobby_waiting', { name: m.participant.name }), render('people')],
      };
    case 'lobby_left':
      return { state: { ...s, lobby: without(s.lobby, m.participant_id) }, effects: [render('people')] };
    case 'chat': {
      // One more line: appended to the log as it is (the view adds it, nothing is redrawn).
      const item = chatItem(s, toLine(m), s.chat.map((c) => c.line));
      return { state: { ...s, chat: [...s.chat, item].slice(-CHAT_KEPT) }, effects: [{ kind: 'chat', item }] };
    }
    case 'chat_history': {
      // What the room kept that I may read. It replaces the log: a reload or a new socket gets
      // it again, and what this page showed before is in it (no line twice).
      const lines = (Array.isArray(m.messages) ? m.messages : []).map(toLine).slice(-CHAT_KEPT);
      return { state: { ...s, chat: lines.map((l) => chatItem(s, l, lines)) }, effects: [render('chat')] };
    }
    case 'recording':
      return onRecording(s, m);
    case 'recording_consent': {
      const answers = withEntry(s.rec.answers, m.participant, { participant: m.participant, name: m.name, consent: Boolean(m.consent) });
      /** @type {Effect[]} */
      const effects = [];
      if (m.participant !== s.me?.id) {
        effects.push(notice(m.consent ? 'call.rec.answer_agreed' : 'call.rec.answer_declined', { name: m.name }, m.consent ? 'info' : 'warn'));
      }
      effects.push(render('recording'));
      return { state: { ...s, rec: { ...s.rec, answers } }, effects };
    }
    case 'recording_failed': {
      const failed = { code: String(m.code ?? 'recording_error'), message: String(m.message ?? '') };
      return { state: { ...s, rec: { ...s.rec, failed } }, effects: [render('recording')] };
    }
    case 'ended':
      return finish(s, 'ended', { key: 'call.final.ended_by', params: { name: nameOf(s, m.by) } });
    case 'removed':
      return finish(s, 'removed');
    case 'declined':
      return finish(s, 'declined');
    case 'closing':
      return { state: s, effects: [notice('call.notice.server_closing', undefined, 'warn')] };
    case 'mute_requested':
      return { state: s, effects: [{ kind: 'muteMic' }, notice('call.notice.muted_by', { name: nameOf(s, m.by) }, 'warn')] };
    case 'error':
      // Only the errors that end the call; try_again and the like: the socket closes next and
      // the room reconnects.
      if (m.code === 'replaced') return finish(s, 'replaced');
      if (m.code === 'removed') return finish(s, 'removed');
      if (m.code === 'room_full') return finish(s, 'refused', { key: 'call.final.room_full' });
      return { state: s, effects: [] };
    case 'subscribe_offer':
      return { state: s, effects: [{ kind: 'subscribeOffer', sdp: m.sdp }] };
    case 'trickle':
      // The server is ICE-lite and trickles nothing today (§11); handled all the same.
      return { state: s, effects: [{ kind: 'trickle', target: m.target, candidate: m.candidate }] };
    case 'track_published':
      return onTrackPublished(s, m.track);
    case 'track_unpublished':
      return {
        state: { ...s, tracks: without(s.tracks, m.track_id) },
        effects: [{ kind: 'trackUnpublished', id: m.track_id }, render('stage')],
      };
    case 'track_muted': {
      const tr = s.tracks.get(m.track_id);
      if (!tr) return { state: s, effects: [] };
      return { state: { ...s, tracks: withEntry(s.tracks, tr.id, { ...tr, muted: m.muted }) }, effects: [render('stage')] };
    }
    case 'active_speaker':
      return { state: { ...s, speaker: m.participant ?? null }, effects: [render('stage')] };
    case 'audio_only': {
      // The server decides from the loss our receiver reports; we only say so.
      const audioOnly = Boolean(m.active);
      /** @type {Effect[]} */
      const effects = [render('audioOnly')];
      if (!audioOnly) effects.push(notice('call.notice.video_back'));
      return { state: { ...s, audioOnly }, effects };
    }
    case 'connection_quality': {
      /** @type {Effect[]} */
      const effects = m.participant === s.me?.id ? [render('myQuality')] : [];
      effects.push(render('stage'));
      return { state: { ...s, quality: withEntry(s.quality, m.participant, m.quality) }, effects };
    }
    case 'media_closed':
      // The server gave up on our connections: start over on a new socket.
      return { state: s, effects: [notice('call.notice.media_closed', undefined, 'warn'), { kind: 'reconnect' }] };
    case 'case_state':
      return onCaseState(s, m);
    case 'case_pointer': {
      const who = String(m.participant ?? '');
      if (!who || who === s.me?.id) return { state: s, effects: [] };
      const color = colorIndex(m.color);
      const colors = s.case.colors.get(who) === color ? s.case.colors : withEntry(s.case.colors, who, color);
      // Pointing belongs to a picture: with nothing shown there is nothing to point at.
      const at = s.case.view && unit(m.x) && unit(m.y) ? { color, x: Number(m.x), y: Number(m.y) } : null;
      const pointers = at ? withEntry(s.case.pointers, who, at) : without(s.case.pointers, who);
      return { state: { ...s, case: { ...s.case, pointers, colors } }, effects: [{ kind: 'casePointer', participant: who }] };
    }
    case 'case_mark': {
      const mark = toMark(m.mark);
      // A mark belongs to the picture shown; one for no picture, or one already drawn (the
      // same id), changes nothing.
      if (!mark || !s.case.view || s.case.marks.some((x) => x.id === mark.id)) return { state: s, effects: [] };
      const colors = withEntry(s.case.colors, mark.participant, mark.color);
      return { state: { ...s, case: { ...s.case, marks: [...s.case.marks, mark], colors } }, effects: [render('caseMarks')] };
    }
    default:
      return { state: s, effects: [] };
  }
}

/** Someone joined or changed (presence, hand, the floor); when it is us, maybe the floor. @param {CallState} s @param {ParticipantInfo} p @returns {Step} */
function onParticipant(s, p) {
  const state = { ...s, participants: withEntry(s.participants, p.id, p) };
  /** @type {Effect[]} */
  const effects = [];
  const before = s.me;
  if (before && p.id === before.id) {
    state.me = p;
    if (!before.can_publish && p.can_publish) effects.push({ kind: 'promoted' });
    if (before.can_publish && !p.can_publish) effects.push({ kind: 'demoted' });
    effects.push(render('controls'));
    // Whether I am asked to consent to a running recording depends on whether I send media.
    if (before.can_publish !== p.can_publish) effects.push(render('recording'));
  }
  effects.push(render('stage'));
  return { state, effects };
}

/** @param {CallState} s @param {TrackInfo} info @returns {Step} */
function onTrackPublished(s, info) {
  // Our own tracks come back too; we show them from the local stream.
  if (info.participant === s.me?.id) return { state: s, effects: [] };
  const source = sourceOf(info.id, info.kind);
  const track = { id: info.id, participant: info.participant, kind: info.kind, source, muted: false };
  /** @type {Effect[]} */
  const effects = [{ kind: 'trackPublished', id: info.id }];
  // Shared imaging is what everyone needs to read: the room shows it large.
  if (source === 'screen') effects.push({ kind: 'showScreen' });
  effects.push(render('stage'));
  return { state: { ...s, tracks: withEntry(s.tracks, info.id, track) }, effects };
}

/** A `recording` message: the state changed, or we came in while recording. @param {CallState} s @param {RecordingMessage} m @returns {Step} */
function onRecording(s, m) {
  const before = s.rec.id;
  const active = Boolean(m.active);
  /** @type {RecState} */
  const rec = {
    ...s.rec,
    active,
    id: active ? (m.recording ?? null) : null,
    by: active ? (m.by ?? null) : null,
    startedAt: active ? (m.started_at ?? null) : null,
    excluded: Array.isArray(m.excluded) ? [...m.excluded] : [],
  };
  if (rec.id !== before) rec.answers = new Map();
  /** @type {Effect[]} */
  const effects = [];
  // Told once per recording, and not to whoever started it; someone who only watches sends
  // nothing to record and is told so instead of being asked.
  if (rec.active && rec.id !== before && before === null && rec.by !== s.me?.id) {
    const key = s.me && !s.me.can_publish ? 'call.rec.started_notice_watching' : 'call.rec.started_notice';
    effects.push(notice(key, { name: nameOf(s, rec.by ?? '') }, 'warn'));
  }
  if (!rec.active && before) effects.push(notice('call.rec.stopped_notice'));
  if (rec.active) rec.failed = null;
  effects.push(render('recording'));
  return { state: { ...s, rec }, effects };
}

/**
 * Whether the consent prompt is due: a recording runs, I am in the room, I send media (someone
 * who only watches has nothing of theirs recorded: protocol.md §12 asks the members whose
 * media is captured), and I have not answered (`answer`: true, false or null).
 * @param {CallState} s @param {boolean | null} answer
 */
export function asksConsent(s, answer) {
  return s.rec.active && s.rec.id !== null && s.phase === 'joined' && Boolean(s.me?.can_publish) && answer === null;
}

/**
 * Whether the room says that someone came or went: not about me, and not about members who
 * only watch (a class of trainees coming and going would bury the call in notes; the
 * participant list shows them).
 * @param {CallState} s @param {ParticipantInfo} p
 */
function tellsComings(s, p) {
  return p.id !== s.me?.id && (p.can_publish || p.host);
}

/** @param {Coming} what @param {ParticipantInfo} p @returns {Effect} */
function coming(what, p) {
  return { kind: 'toast', text: { key: `call.toast.${what}`, params: { name: p.name } }, what, participant: p.id };
}

/** A chat message's own fields, without its type or anything else the server may add. @param {ChatLine} m @returns {ChatLine} */
function toLine(m) {
  /** @type {ChatLine} */
  const line = { from: String(m.from), from_name: String(m.from_name ?? ''), text: String(m.text ?? ''), at: String(m.at ?? '') };
  if (m.to) line.to = String(m.to);
  if (m.to_hosts) line.to_hosts = true;
  return line;
}

/**
 * A chat line for the log. A private message names its addressee from the room, else from
 * the chat itself (someone who left still has their name on what they wrote).
 * @param {CallState} s @param {ChatLine} line @param {ChatLine[]} others the lines it is shown with
 * @returns {ChatItem}
 */
function chatItem(s, line, others) {
  const to = line.to;
  const toName = to ? (nameOf(s, to) ?? (to === s.me?.id ? s.me.name : null) ?? others.findLast((l) => l.from === to)?.from_name ?? null) : null;
  return { line, mine: line.from === s.me?.id, toName };
}

/**
 * A `case_state`: the whole panel as the room has it now (a show, a close, a hand-over, a
 * clear, the presenter gone, or the state as we come in). Notes say what changed for people:
 * who opened the material, who presents now (and that it is me), that it closed.
 * @param {CallState} s @param {CaseStateMessage} m @returns {Step}
 */
function onCaseState(s, m) {
  const before = s.case;
  const view = m.view && typeof m.view === 'object' && m.view.attachment ? { ...m.view } : null;
  const presenter = view && m.presenter ? String(m.presenter) : null;
  const marks = view && Array.isArray(m.marks) ? m.marks.map(toMark).filter((x) => x !== null) : [];
  const colors = new Map(before.colors);
  for (const mark of marks) colors.set(mark.participant, mark.color);
  // Pointers point at a picture: another picture (or none) leaves them pointing at nothing.
  const samePicture = Boolean(view && before.view && view.attachment === before.view.attachment
    && view.image === before.view.image && view.frame === before.view.frame);
  const pointers = samePicture ? before.pointers : new Map();
  /** @type {Effect[]} */
  const effects = [];
  const meId = s.me?.id ?? null;
  if (!before.view && view) {
    // Shown by someone: who did it (shown by me, I know; shown before this socket, I was told).
    if (presenter !== meId && view.attachment !== before.seen) effects.push(notice('call.case.notice.opened', { name: presenter ? nameOf(s, presenter) : null }));
  } else if (before.view && !view) {
    effects.push(notice('call.case.notice.closed'));
  } else if (view && presenter !== before.presenter) {
    if (presenter === meId) effects.push(notice('call.case.notice.you_present'));
    else if (presenter) effects.push(notice('call.case.notice.presenting', { name: nameOf(s, presenter) }));
    else effects.push(notice('call.case.notice.presenter_left', { name: before.presenter ? nameOf(s, before.presenter) : null }, 'warn'));
  }
  effects.push(render('case'));
  for (const p of before.pointers.keys()) if (!pointers.has(p)) effects.push({ kind: 'casePointer', participant: p });
  const seen = view ? view.attachment : before.view ? null : before.seen;
  return { state: { ...s, case: { view, presenter, marks, pointers, colors, seen } }, effects };
}

/** A colour index from the server (0–7; anything else reads as 0). @param {unknown} c */
function colorIndex(c) {
  const n = Number(c);
  return Number.isInteger(n) && n >= 0 && n < 8 ? n : 0;
}

/** @param {unknown} v */
function unit(v) {
  return typeof v === 'number' && v >= 0 && v <= 1;
}

/** A mark as the server sent it, checked; null when it is not one. @param {any} m @returns {CaseMark | null} */
function toMark(m) {
  if (!m || typeof m !== 'object' || !['arrow', 'circle', 'line'].includes(m.kind) || !Array.isArray(m.points)) return null;
  /** @type {[number, number][]} */
  const points = [];
  for (const p of m.points) {
    if (!Array.isArray(p) || !unit(p[0]) || !unit(p[1])) return null;
    points.push([p[0], p[1]]);
  }
  if (points.length < 2) return null;
  return { id: Number(m.id), participant: String(m.participant ?? ''), color: colorIndex(m.color), kind: m.kind, points };
}

/** @param {CallState} s @param {FinalPhase} phase @param {Text} [text] @returns {Step} */
function finish(s, phase, text) {
  /** @type {Effect} */
  const effect = text ? { kind: 'finish', phase, text } : { kind: 'finish', phase };
  return { state: { ...s, phase }, effects: [effect] };
}

/** @param {ViewPart} part @returns {Effect} */
function render(part) {
  return { kind: 'render', part };
}

/** @param {string} key @param {Record<string, string | null>} [params] @param {NoticeLevel} [level] @returns {Effect} */
function notice(key, params, level = 'info') {
  return { kind: 'notice', text: params ? { key, params } : { key }, level };
}

/** @param {ParticipantInfo[]} list */
function byId(list) {
  return new Map(list.map((p) => [p.id, p]));
}

/** A copy of `map` with `key` set. @template K, V @param {Map<K, V>} map @param {K} key @param {V} value */
function withEntry(map, key, value) {
  const next = new Map(map);
  next.set(key, value);
  return next;
}

/** A copy of `map` without `key` (the same map when it has no such key). @template K, V @param {Map<K, V>} map @param {K} key */
function without(map, key) {
  if (!map.has(key)) return map;
  const next = new Map(map);
  next.delete(key);
  return next;
}
