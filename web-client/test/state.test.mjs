// The call's reducer (js/call/state.js) under plain node: no browser, no server.
//   node --test web-client/test/*.test.mjs   (scripts/e2e.sh runs it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHAT_KEPT, asksConsent, emptyRec, initialState, isFinal, reduce } from '../js/call/state.js';

/** @param {string} id @param {Partial<import('../js/call/state.js').ParticipantInfo>} [more] */
const person = (id, more = {}) => ({ id, name: `name-${id}`, host: false, can_publish: true, presence: 'online', hand_raised: false, ...more });

const me = person('me', { host: true });
const bob = person('bob');
const carol = person('carol', { can_publish: false });

/** A joined host's state with bob in the room. */
function joined() {
  return reduce(initialState(), { type: 'hello', id: 'h1', version: 1, room: 'r', you: me, state: 'joined', resumed: false, participants: [me, bob], lobby: [carol] }).state;
}

/** Freezes a state and everything in it; a Map is frozen by making its setters throw. */
function deepFreeze(/** @type {any} */ v) {
  if (v === null || typeof v !== 'object' || Object.isFrozen(v)) return v;
  if (v instanceof Map) {
    for (const [k, x] of v) { deepFreeze(k); deepFreeze(x); }
    const refuse = () => { throw new Error('a Map of the input state was changed'); };
    Object.defineProperties(v, { set: { value: refuse }, delete: { value: refuse }, clear: { value: refuse } });
  } else {
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return Object.freeze(v);
}

/** @param {any[]} effects */
const kinds = (effects) => effects.map((e) => (e.kind === 'render' ? `render:${e.part}` : e.kind));

test('hello (joined) builds me, the participants and the lobby, and enters the room', () => {
  const { state, effects } = reduce(initialState(), { type: 'hello', id: 'h1', version: 1, room: 'r', you: me, state: 'joined', resumed: false, participants: [me, bob], lobby: [carol] });
  assert.equal(state.phase, 'joined');
  assert.deepEqual(state.me, me);
  assert.deepEqual([...state.participants.keys()], ['me', 'bob']);
  assert.deepEqual([...state.lobby.keys()], ['carol']);
  assert.deepEqual(kinds(effects), ['enterRoom']);
});

test('hello resumed says so before entering; a recorder failure survives the new socket', () => {
  const failed = { code: 'disk_full', message: 'full' };
  const before = { ...initialState(), rec: { ...emptyRec(), active: true, id: 'rec1', failed } };
  const { state, effects } = reduce(before, { type: 'hello', id: 'h2', version: 1, room: 'r', you: me, state: 'joined', resumed: true, participants: [me], lobby: [] });
  assert.deepEqual(kinds(effects), ['resumed', 'enterRoom']);
  assert.equal(state.rec.active, false);
  assert.equal(state.rec.id, null);
  assert.deepEqual(state.rec.failed, failed);
});

test('hello in the lobby waits, then admitted builds the room', () => {
  const lobby = reduce(initialState(), { type: 'hello', id: 'h1', version: 1, room: 'r', you: bob, state: 'lobby', resumed: false, participants: [], lobby: [] });
  assert.equal(lobby.state.phase, 'lobby');
  assert.deepEqual(kinds(lobby.effects), ['lobby']);
  assert.equal(lobby.state.participants.size, 0);
  const admitted = reduce(lobby.state, { type: 'admitted', participants: [me, bob] });
  assert.equal(admitted.state.phase, 'joined');
  assert.deepEqual([...admitted.state.participants.keys()], ['me', 'bob']);
  assert.deepEqual(kinds(admitted.effects), ['enterRoom']);
});

test('participant_joined, _updated and _left', () => {
  let s = joined();
  const dave = person('dave');
  const came = reduce(s, { type: 'participant_joined', participant: dave });
  s = came.state;
  assert.deepEqual(s.participants.get('dave'), dave);
  assert.deepEqual(came.effects, [
    { kind: 'render', part: 'stage' },
    { kind: 'toast', text: { key: 'call.toast.joined', params: { name: 'name-dave' } }, what: 'joined', participant: 'dave' },
  ]);
  const step = reduce(s, { type: 'participant_updated', participant: { ...dave, hand_raised: true } });
  assert.equal(step.state.participants.get('dave')?.hand_raised, true);
  assert.deepEqual(kinds(step.effects), ['render:stage']);
  s = reduce(step.state, { type: 'track_published', track: { id: 'dave/mic', participant: 'dave', kind: 'audio', codec: 'audio/opus', simulcast: false } }).state;
  s = reduce(s, { type: 'track_published', track: { id: 'bob/cam', participant: 'bob', kind: 'video', codec: 'video/VP8', simulcast: true } }).state;
  const left = reduce(s, { type: 'participant_left', participant_id: 'dave', reason: 'left' });
  assert.equal(left.state.participants.has('dave'), false);
  // Their tracks go with them; everyone else's stay.
  assert.deepEqual([...left.state.tracks.keys()], ['bob/cam']);
  assert.deepEqual(left.effects, [
    { kind: 'render', part: 'stage' },
    { kind: 'toast', text: { key: 'call.toast.left', params: { name: 'name-dave' } }, what: 'left', participant: 'dave' },
  ]);
});

test('who came and went: a note for the others, by reason; none for watchers, unknowns or the end', () => {
  const s = joined();
  const timeout = reduce(s, { type: 'participant_left', participant_id: 'bob', reason: 'timeout' });
  assert.deepEqual(timeout.effects.at(-1), { kind: 'toast', text: { key: 'call.toast.left', params: { name: 'name-bob' } }, what: 'left', participant: 'bob' });
  const removed = reduce(s, { type: 'participant_left', participant_id: 'bob', reason: 'removed' });
  assert.deepEqual(removed.effects.at(-1), { kind: 'toast', text: { key: 'call.toast.removed', params: { name: 'name-bob' } }, what: 'removed', participant: 'bob' });
  // The consultation ended: `ended` itself tells this page.
  assert.deepEqual(kinds(reduce(s, { type: 'participant_left', participant_id: 'bob', reason: 'ended' }).effects), ['render:stage']);
  // Nobody we knew.
  assert.deepEqual(kinds(reduce(s, { type: 'participant_left', participant_id: 'ghost', reason: 'left' }).effects), ['render:stage']);
  // A trainee whose floor ended went back to the audience: gone from the list, not from the room.
  const back = reduce(s, { type: 'participant_left', participant_id: 'bob', reason: 'audience' });
  assert.equal(back.state.participants.has('bob'), false);
  assert.deepEqual(kinds(back.effects), ['render:stage']);
  // A trainee who only watches comes and goes in the list alone.
  const trainee = person('tina', { can_publish: false });
  const inClass = reduce(s, { type: 'participant_joined', participant: trainee });
  assert.deepEqual(kinds(inClass.effects), ['render:stage']);
  assert.deepEqual(kinds(reduce(inClass.state, { type: 'participant_left', participant_id: 'tina', reason: 'left' }).effects), ['render:stage']);
  // A host who watches is still told about.
  const hostWatching = person('hank', { can_publish: false, host: true });
  assert.deepEqual(kinds(reduce(s, { type: 'participant_joined', participant: hostWatching }).effects), ['render:stage', 'toast']);
  // Someone already shown who joins again (a reload) is not announced twice.
  assert.deepEqual(kinds(reduce(s, { type: 'participant_joined', participant: bob }).effects), ['render:stage']);
});

test('participant_updated about me: the floor given and taken back', () => {
  let s = reduce(initialState(), { type: 'hello', id: 'h1', version: 1, room: 'r', you: carol, state: 'joined', resumed: false, participants: [me, carol], lobby: [] }).state;
  const promoted = reduce(s, { type: 'participant_updated', participant: { ...carol, can_publish: true } });
  assert.equal(promoted.state.me?.can_publish, true);
  // The recording part too: whether I am asked to consent depends on whether I publish.
  assert.deepEqual(kinds(promoted.effects), ['promoted', 'render:controls', 'render:recording', 'render:stage']);
  s = promoted.state;
  const demoted = reduce(s, { type: 'participant_updated', participant: { ...carol, can_publish: false } });
  assert.equal(demoted.state.me?.can_publish, false);
  assert.deepEqual(kinds(demoted.effects), ['demoted', 'render:controls', 'render:recording', 'render:stage']);
  const hand = reduce(s, { type: 'participant_updated', participant: { ...carol, can_publish: true, hand_raised: true } });
  assert.deepEqual(kinds(hand.effects), ['render:controls', 'render:stage']);
});

test('lobby_waiting and lobby_left (hosts)', () => {
  const dave = person('dave');
  const waiting = reduce(joined(), { type: 'lobby_waiting', participant: dave });
  assert.deepEqual([...waiting.state.lobby.keys()], ['carol', 'dave']);
  assert.deepEqual(waiting.effects, [
    { kind: 'notice', text: { key: 'call.notice.lobby_waiting', params: { name: 'name-dave' } }, level: 'info' },
    { kind: 'render', part: 'people' },
  ]);
  const left = reduce(waiting.state, { type: 'lobby_left', participant_id: 'carol' });
  assert.deepEqual([...left.state.lobby.keys()], ['dave']);
  assert.deepEqual(kinds(left.effects), ['render:people']);
});

test('track_published, track_muted and track_unpublished', () => {
  const pub = reduce(joined(), { type: 'track_published', track: { id: 'bob/mic', participant: 'bob', kind: 'audio', codec: 'audio/opus', simulcast: false } });
  assert.deepEqual(pub.state.tracks.get('bob/mic'), { id: 'bob/mic', participant: 'bob', kind: 'audio', source: 'mic', muted: false });
  assert.deepEqual(pub.effects, [{ kind: 'trackPublished', id: 'bob/mic' }, { kind: 'render', part: 'stage' }]);

  const muted = reduce(pub.state, { type: 'track_muted', track_id: 'bob/mic', participant: 'bob', muted: true });
  assert.equal(muted.state.tracks.get('bob/mic')?.muted, true);
  assert.equal(pub.state.tracks.get('bob/mic')?.muted, false);
  assert.deepEqual(kinds(muted.effects), ['render:stage']);
  const unknown = reduce(pub.state, { type: 'track_muted', track_id: 'bob/cam', participant: 'bob', muted: true });
  assert.equal(unknown.state, pub.state);
  assert.deepEqual(unknown.effects, []);

  const gone = reduce(muted.state, { type: 'track_unpublished', track_id: 'bob/mic', participant: 'bob' });
  assert.equal(gone.state.tracks.size, 0);
  assert.deepEqual(gone.effects, [{ kind: 'trackUnpublished', id: 'bob/mic' }, { kind: 'render', part: 'stage' }]);
});

test('track_published: a screen share asks for the large view; our own tracks are ignored', () => {
  const screen = reduce(joined(), { type: 'track_published', track: { id: 'bob/screen1', participant: 'bob', kind: 'video', codec: 'video/VP8', simulcast: false } });
  assert.equal(screen.state.tracks.get('bob/screen1')?.source, 'screen');
  assert.deepEqual(kinds(screen.effects), ['trackPublished', 'showScreen', 'render:stage']);
  const cam2 = reduce(joined(), { type: 'track_published', track: { id: 'bob/cam2', participant: 'bob', kind: 'video', codec: 'video/VP8', simulcast: true } });
  assert.equal(cam2.state.tracks.get('bob/cam2')?.source, 'camera2');
  const s = joined();
  const mine = reduce(s, { type: 'track_published', track: { id: 'me/cam', participant: 'me', kind: 'video', codec: 'video/VP8', simulcast: true } });
  assert.equal(mine.state, s);
  assert.deepEqual(mine.effects, []);
});

test('an encoder (WHIP): a member marked as one, its browser-named tracks a camera and a mic, gone with its credential', () => {
  const tower = person('encoder-e1', { name: '手术室 3 腔镜', encoder: true });
  const came = reduce(joined(), { type: 'participant_joined', participant: tower });
  assert.equal(came.state.participants.get('encoder-e1')?.encoder, true);
  // It publishes: the others are told it came, as of anyone who sends media.
  assert.ok(came.effects.some((e) => e.kind === 'toast' && e.what === 'joined' && e.participant === 'encoder-e1'));
  // A WHIP client names its tracks itself (a browser's msid is a UUID): still its camera and mic.
  let st = came.state;
  for (const [id, kind] of /** @type {const} */ ([['encoder-e1/3f0c9d2a-77b1-4e0a-9a51-0c2d9e7b1f00', 'video'], ['encoder-e1/a9d0c6e4-1b2f-4c3d-8e5f-6a7b8c9d0e1f', 'audio']])) {
    st = reduce(st, { type: 'track_published', track: { id, participant: 'encoder-e1', kind, codec: kind === 'video' ? 'video/H264' : 'audio/opus', simulcast: false } }).state;
  }
  assert.deepEqual([...st.tracks.values()].map((t) => t.source), ['camera', 'mic']);
  // Withdrawn: the room puts it out (`removed`); its tracks go with it.
  const gone = reduce(st, { type: 'participant_left', participant_id: 'encoder-e1', reason: 'removed' });
  assert.equal(gone.state.participants.has('encoder-e1'), false);
  assert.equal([...gone.state.tracks.values()].some((t) => t.participant === 'encoder-e1'), false);
  assert.ok(gone.effects.some((e) => e.kind === 'toast' && e.what === 'removed'));
});

test('active_speaker, connection_quality', () => {
  const spk = reduce(joined(), { type: 'active_speaker', participant: 'bob' });
  assert.equal(spk.state.speaker, 'bob');
  assert.equal(reduce(spk.state, { type: 'active_speaker', participant: null }).state.speaker, null);
  const theirs = reduce(joined(), { type: 'connection_quality', participant: 'bob', quality: 'poor' });
  assert.equal(theirs.state.quality.get('bob'), 'poor');
  assert.deepEqual(kinds(theirs.effects), ['render:stage']);
  const mine = reduce(joined(), { type: 'connection_quality', participant: 'me', quality: 'good' });
  assert.deepEqual(kinds(mine.effects), ['render:myQuality', 'render:stage']);
});

test('audio_only on, then off with a notice', () => {
  const on = reduce(joined(), { type: 'audio_only', active: true });
  assert.equal(on.state.audioOnly, true);
  assert.deepEqual(kinds(on.effects), ['render:audioOnly']);
  const off = reduce(on.state, { type: 'audio_only', active: false });
  assert.equal(off.state.audioOnly, false);
  assert.deepEqual(off.effects, [{ kind: 'render', part: 'audioOnly' }, { kind: 'notice', text: { key: 'call.notice.video_back' }, level: 'info' }]);
});

test('ended, removed, declined and the fatal errors reach a final phase', () => {
  const ended = reduce(joined(), { type: 'ended', by: 'bob' });
  assert.equal(ended.state.phase, 'ended');
  assert.deepEqual(ended.effects, [{ kind: 'finish', phase: 'ended', text: { key: 'call.final.ended_by', params: { name: 'name-bob' } } }]);
  // Someone we do not know: the room shows "someone".
  assert.deepEqual(reduce(joined(), { type: 'ended', by: 'admin' }).effects[0], { kind: 'finish', phase: 'ended', text: { key: 'call.final.ended_by', params: { name: null } } });
  assert.equal(reduce(joined(), { type: 'removed', by: 'me' }).state.phase, 'removed');
  assert.equal(reduce(joined(), { type: 'declined' }).state.phase, 'declined');
  assert.equal(reduce(joined(), { type: 'error', code: 'replaced', message: '' }).state.phase, 'replaced');
  assert.equal(reduce(joined(), { type: 'error', code: 'removed', message: '' }).state.phase, 'removed');
  const full = reduce(initialState(), { type: 'error', code: 'room_full', message: '' });
  assert.deepEqual(full, { state: { ...initialState(), phase: 'refused' }, effects: [{ kind: 'finish', phase: 'refused', text: { key: 'call.final.room_full' } }] });
  for (const step of [ended, full]) assert.ok(isFinal(step.state.phase));
  // Other errors leave the call to the reconnect.
  const retry = reduce(joined(), { type: 'error', code: 'try_again', message: '' });
  assert.equal(retry.state.phase, 'joined');
  assert.deepEqual(retry.effects, []);
});

test('once final, messages change nothing', () => {
  const s = reduce(joined(), { type: 'removed', by: 'me' }).state;
  const after = reduce(s, { type: 'ended', by: 'bob' });
  assert.equal(after.state, s);
  assert.deepEqual(after.effects, []);
});

test('recording: started by someone else, consent answers, stopped', () => {
  const started = reduce(joined(), { type: 'recording', active: true, recording: 'rec1', by: 'bob', started_at: '2026-03-05T02:03:10.201Z', excluded: [] });
  assert.equal(started.state.rec.active, true);
  assert.equal(started.state.rec.id, 'rec1');
  assert.equal(started.state.rec.startedAt, '2026-03-05T02:03:10.201Z');
  assert.deepEqual(started.effects, [
    { kind: 'notice', text: { key: 'call.rec.started_notice', params: { name: 'name-bob' } }, level: 'warn' },
    { kind: 'render', part: 'recording' },
  ]);
  const answer = reduce(started.state, { type: 'recording_consent', participant: 'bob', name: 'name-bob', consent: false });
  assert.deepEqual(answer.state.rec.answers.get('bob'), { participant: 'bob', name: 'name-bob', consent: false });
  assert.equal(started.state.rec.answers.size, 0);
  assert.deepEqual(kinds(answer.effects), ['notice', 'render:recording']);
  const excluded = reduce(answer.state, { type: 'recording', active: true, recording: 'rec1', by: 'bob', started_at: '2026-03-05T02:03:10.201Z', excluded: ['bob'] });
  assert.deepEqual(excluded.state.rec.excluded, ['bob']);
  assert.equal(excluded.state.rec.answers.size, 1, 'the same recording keeps its answers');
  assert.deepEqual(kinds(excluded.effects), ['render:recording']);
  const stopped = reduce(excluded.state, { type: 'recording', active: false, excluded: [] });
  assert.deepEqual({ active: stopped.state.rec.active, id: stopped.state.rec.id, by: stopped.state.rec.by, answers: stopped.state.rec.answers.size }, { active: false, id: null, by: null, answers: 0 });
  assert.deepEqual(stopped.effects[0], { kind: 'notice', text: { key: 'call.rec.stopped_notice' }, level: 'info' });
});

test('recording: someone who only watches is told, not asked', () => {
  const watching = reduce(initialState(), { type: 'hello', id: 'h1', version: 1, room: 'r', you: carol, state: 'joined', resumed: false, participants: [me, carol], lobby: [] }).state;
  const started = reduce(watching, { type: 'recording', active: true, recording: 'rec1', by: 'me', started_at: 'x', excluded: [] });
  assert.deepEqual(started.effects[0], { kind: 'notice', text: { key: 'call.rec.started_notice_watching', params: { name: 'name-me' } }, level: 'warn' });
  assert.equal(asksConsent(started.state, null), false);
  // Given the floor while recording: now their media is captured, so they are asked.
  const promoted = reduce(started.state, { type: 'participant_updated', participant: { ...carol, can_publish: true } });
  assert.equal(asksConsent(promoted.state, null), true);
});

test('asksConsent: while recording, joined, publishing, not yet answered', () => {
  const rec = reduce(joined(), { type: 'recording', active: true, recording: 'rec1', by: 'bob', started_at: 'x', excluded: [] }).state;
  assert.equal(asksConsent(rec, null), true);
  assert.equal(asksConsent(rec, true), false);
  assert.equal(asksConsent(rec, false), false);
  assert.equal(asksConsent(joined(), null), false, 'not recording');
  assert.equal(asksConsent({ ...rec, phase: 'lobby' }, null), false, 'in the lobby');
  assert.equal(asksConsent({ ...rec, phase: 'reconnecting' }, null), false, 'between sockets');
  assert.equal(asksConsent({ ...rec, me: null }, null), false, 'before hello');
});

test('recording: no notice to whoever started it; a failure is kept until a new start', () => {
  const mine = reduce(joined(), { type: 'recording', active: true, recording: 'rec1', by: 'me', started_at: 'x', excluded: [] });
  assert.deepEqual(kinds(mine.effects), ['render:recording']);
  const failed = reduce(mine.state, { type: 'recording_failed', code: 'disk_full', message: 'full' });
  assert.deepEqual(failed.state.rec.failed, { code: 'disk_full', message: 'full' });
  const again = reduce(failed.state, { type: 'recording', active: true, recording: 'rec2', by: 'me', started_at: 'y', excluded: [] });
  assert.equal(again.state.rec.failed, null);
});

test('mute_requested, closing, media and media_closed are effects only', () => {
  const s = joined();
  assert.deepEqual(kinds(reduce(s, { type: 'mute_requested', by: 'bob' }).effects), ['muteMic', 'notice']);
  assert.deepEqual(reduce(s, { type: 'closing', reason: 'bye' }).effects, [{ kind: 'notice', text: { key: 'call.notice.server_closing' }, level: 'warn' }]);
  assert.deepEqual(reduce(s, { type: 'subscribe_offer', sdp: 'v=0' }).effects, [{ kind: 'subscribeOffer', sdp: 'v=0' }]);
  assert.deepEqual(reduce(s, { type: 'trickle', target: 'subscribe', candidate: { candidate: 'c' } }).effects, [{ kind: 'trickle', target: 'subscribe', candidate: { candidate: 'c' } }]);
  assert.deepEqual(kinds(reduce(s, { type: 'media_closed', reason: 'connect_timeout' }).effects), ['notice', 'reconnect']);
  for (const m of [{ type: 'ack', id: 'a' }, { type: 'pong', id: 'p' }, { type: 'unknown_future_type' }]) {
    const step = reduce(s, /** @type {any} */ (m));
    assert.equal(step.state, s);
    assert.deepEqual(step.effects, []);
  }
});

test('chat: each message is appended to the log and handed to the view', () => {
  const s = joined();
  const chat = reduce(s, { type: 'chat', from: 'bob', from_name: 'name-bob', text: 'hi', to: 'me', at: '2026-03-05T02:14:07.512Z' });
  const item = { line: { from: 'bob', from_name: 'name-bob', text: 'hi', to: 'me', at: '2026-03-05T02:14:07.512Z' }, mine: false, toName: 'name-me' };
  assert.deepEqual(chat.state.chat, [item]);
  assert.deepEqual(chat.effects, [{ kind: 'chat', item }]);
  const own = reduce(chat.state, { type: 'chat', from: 'me', from_name: 'name-me', text: 'hello all', at: 'x' });
  assert.deepEqual(own.effects, [{ kind: 'chat', item: { line: { from: 'me', from_name: 'name-me', text: 'hello all', at: 'x' }, mine: true, toName: null } }]);
  assert.deepEqual(own.state.chat.map((c) => c.line.text), ['hi', 'hello all']);
  assert.deepEqual(s.chat, [], 'the state before is untouched');
});

test('chat: a question to the hosts is kept as one, for the asker and the host', () => {
  const trainee = person('tr', { can_publish: false });
  const asker = reduce(initialState(), { type: 'hello', id: 'h', version: 1, room: 'r', you: trainee, state: 'joined', resumed: false, participants: [trainee], lobby: [] }).state;
  const q = { type: /** @type {const} */ ('chat'), from: 'tr', from_name: 'name-tr', text: 'why?', to_hosts: true, at: 'x' };
  const mine = reduce(asker, q);
  assert.deepEqual(mine.effects, [{ kind: 'chat', item: { line: { from: 'tr', from_name: 'name-tr', text: 'why?', to_hosts: true, at: 'x' }, mine: true, toName: null } }]);
  const host = reduce(joined(), q);
  assert.equal(host.state.chat[0].mine, false);
  assert.equal(host.state.chat[0].line.to_hosts, true);
  // `to_hosts: false` and whatever else a newer server may add are not kept.
  const plain = reduce(joined(), /** @type {any} */ ({ type: 'chat', from: 'bob', from_name: 'b', text: 't', to_hosts: false, at: 'y', extra: 1 }));
  assert.deepEqual(plain.state.chat[0].line, { from: 'bob', from_name: 'b', text: 't', at: 'y' });
});

test('chat_history replaces the log (no line twice after a reload or a new socket) and asks for a redraw', () => {
  let s = joined();
  s = reduce(s, { type: 'chat', from: 'bob', from_name: 'name-bob', text: 'first', at: 'a' }).state;
  s = reduce(s, { type: 'chat', from: 'me', from_name: 'name-me', text: 'second', at: 'b' }).state;
  // The socket comes back: hello, then the history, which holds both lines and one more.
  s = reduce(s, { type: 'hello', id: 'h2', version: 1, room: 'r', you: me, state: 'joined', resumed: true, participants: [me, bob], lobby: [] }).state;
  assert.equal(s.chat.length, 2, 'hello alone keeps the log');
  const history = reduce(s, { type: 'chat_history', messages: [
    { from: 'bob', from_name: 'name-bob', text: 'first', at: 'a' },
    { from: 'me', from_name: 'name-me', text: 'second', at: 'b' },
    { from: 'tr', from_name: 'name-tr', text: 'a question', to_hosts: true, at: 'c' },
  ] });
  assert.deepEqual(history.state.chat.map((c) => [c.line.text, c.mine]), [['first', false], ['second', true], ['a question', false]]);
  assert.deepEqual(kinds(history.effects), ['render:chat']);
  // Received twice (a resumed socket): still each line once.
  const again = reduce(history.state, { type: 'chat_history', messages: history.state.chat.map((c) => c.line) });
  assert.deepEqual(again.state.chat, history.state.chat);
});

test('chat_history: a private message names its addressee, even one who has left', () => {
  const s = joined(); // me and bob in the room; dave has left
  const { state } = reduce(s, { type: 'chat_history', messages: [
    { from: 'dave', from_name: 'Dave', text: 'bye', at: 'a' },
    { from: 'me', from_name: 'name-me', text: 'to dave', to: 'dave', at: 'b' },
    { from: 'me', from_name: 'name-me', text: 'to bob', to: 'bob', at: 'c' },
    { from: 'bob', from_name: 'name-bob', text: 'to me', to: 'me', at: 'd' },
    { from: 'me', from_name: 'name-me', text: 'to a stranger', to: 'zed', at: 'e' },
  ] });
  assert.deepEqual(state.chat.map((c) => c.toName), [null, 'Dave', 'name-bob', 'name-me', null]);
});

test('chat: the log keeps the last CHAT_KEPT lines, as the room does', () => {
  const many = Array.from({ length: CHAT_KEPT + 3 }, (_, i) => ({ from: 'bob', from_name: 'b', text: `m${i}`, at: String(i) }));
  const { state } = reduce(joined(), { type: 'chat_history', messages: many });
  assert.equal(state.chat.length, CHAT_KEPT);
  assert.equal(state.chat[0].line.text, 'm3');
  const more = reduce(state, { type: 'chat', from: 'bob', from_name: 'b', text: 'last', at: 'z' }).state;
  assert.equal(more.chat.length, CHAT_KEPT);
  assert.deepEqual([more.chat[0].line.text, more.chat[CHAT_KEPT - 1].line.text], ['m4', 'last']);
  // A history that is not a list reads as an empty one.
  assert.deepEqual(reduce(state, /** @type {any} */ ({ type: 'chat_history' })).state.chat, []);
});

test('reduce never changes its input', () => {
  const base = reduce(joined(), { type: 'track_published', track: { id: 'bob/mic', participant: 'bob', kind: 'audio', codec: 'audio/opus', simulcast: false } }).state;
  const withChat = reduce(base, { type: 'chat', from: 'bob', from_name: 'name-bob', text: 'hi', at: 'x' }).state;
  const withRec = reduce(withChat, { type: 'recording', active: true, recording: 'rec1', by: 'bob', started_at: 'x', excluded: [] }).state;
  /** @type {any[]} */
  const messages = [
    { type: 'hello', id: 'h', version: 1, room: 'r', you: me, state: 'lobby', resumed: false, participants: [], lobby: [] },
    { type: 'hello', id: 'h', version: 1, room: 'r', you: me, state: 'joined', resumed: true, participants: [me], lobby: [] },
    { type: 'admitted', participants: [me] },
    { type: 'participant_joined', participant: person('dave') },
    { type: 'participant_updated', participant: { ...me, can_publish: false } },
    { type: 'participant_left', participant_id: 'bob', reason: 'timeout' },
    { type: 'lobby_waiting', participant: person('dave') },
    { type: 'lobby_left', participant_id: 'carol' },
    { type: 'track_published', track: { id: 'bob/screen1', participant: 'bob', kind: 'video', codec: 'video/VP8', simulcast: false } },
    { type: 'track_unpublished', track_id: 'bob/mic', participant: 'bob' },
    { type: 'track_muted', track_id: 'bob/mic', participant: 'bob', muted: true },
    { type: 'active_speaker', participant: 'bob' },
    { type: 'connection_quality', participant: 'me', quality: 'poor' },
    { type: 'audio_only', active: true },
    { type: 'recording', active: true, recording: 'rec1', by: 'bob', started_at: 'x', excluded: ['me'] },
    { type: 'recording', active: false, excluded: [] },
    { type: 'recording_consent', participant: 'bob', name: 'name-bob', consent: true },
    { type: 'recording_failed', code: 'disk_full', message: 'full' },
    { type: 'chat', from: 'bob', from_name: 'name-bob', text: 'more', to: 'me', at: 'y' },
    { type: 'chat_history', messages: [{ from: 'bob', from_name: 'name-bob', text: 'hi', at: 'x' }, { from: 'me', from_name: 'name-me', text: 'q', to_hosts: true, at: 'y' }] },
    { type: 'ended', by: 'bob' },
    { type: 'error', code: 'room_full', message: '' },
  ];
  for (const m of messages) {
    const input = deepFreeze(structuredClone(withRec));
    const copy = structuredClone(withRec);
    const { state } = reduce(input, m);
    assert.deepEqual(input, copy, `${m.type} changed its input`);
    assert.notEqual(state, input, `${m.type} returned its input instead of a new state`);
  }
});
