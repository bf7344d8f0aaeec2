// The case panel in the call's reducer (js/call/state.js, protocol.md §13) under plain node:
// case_state, case_pointer and case_mark into the state, and what the view is told to do.
//   node --test web-client/test/*.test.mjs   (scripts/e2e.sh runs it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emptyCase, initialState, reduce } from '../js/call/state.js';

/** @param {string} id @param {Record<string, any>} [more] */
const person = (id, more = {}) => ({ id, name: `name-${id}`, host: false, can_publish: true, presence: 'online', hand_raised: false, ...more });
const me = person('me', { host: true });
const bob = person('bob');

/** @param {any} [you] */
function joined(you = me) {
  return reduce(initialState(), { type: 'hello', id: 'h1', version: 1, room: 'r', you, state: 'joined', resumed: false, participants: [me, bob], lobby: [] }).state;
}

const view = (image = 0, more = {}) => ({ attachment: 'a1', image, frame: 0, zoom: 1, center_x: 0.5, center_y: 0.5, ...more });
/** @param {number} id @param {string} participant */
const mark = (id, participant, color = 1) => ({ id, participant, color, kind: 'circle', points: [[0.5, 0.5], [0.6, 0.5]] });

/** Freezes a state deeply (a Map's setters throw), so that a reducer that changes its input fails. */
function freeze(/** @type {any} */ v) {
  if (v === null || typeof v !== 'object' || Object.isFrozen(v)) return v;
  if (v instanceof Map) {
    for (const [k, x] of v) { freeze(k); freeze(x); }
    const refuse = () => { throw new Error('a Map of the input state was changed'); };
    Object.defineProperties(v, { set: { value: refuse }, delete: { value: refuse }, clear: { value: refuse } });
  } else {
    for (const x of Object.values(v)) freeze(x);
  }
  return Object.freeze(v);
}

/** @param {any[]} effects */
const kinds = (effects) => effects.map((e) => (e.kind === 'render' ? `render:${e.part}` : e.kind === 'notice' ? `notice:${e.text.key}` : e.kind));

test('a new call has nothing shown', () => {
  assert.deepEqual(initialState().case, emptyCase());
  assert.equal(joined().case.view, null);
});

test('case_state: shown by someone else says who; the panel renders; marks come with it', () => {
  const s = freeze(joined());
  const step = reduce(s, { type: 'case_state', view: view(3), presenter: 'bob', marks: [mark(1, 'bob')] });
  assert.deepEqual(step.state.case.view, view(3));
  assert.equal(step.state.case.presenter, 'bob');
  assert.equal(step.state.case.marks.length, 1);
  assert.equal(step.state.case.colors.get('bob'), 1);
  assert.deepEqual(step.effects, [
    { kind: 'notice', text: { key: 'call.case.notice.opened', params: { name: 'name-bob' } }, level: 'info' },
    { kind: 'render', part: 'case' },
  ]);
  assert.equal(s.case.view, null, 'the state before is untouched');
});

test('case_state: shown by me tells me nothing; a hand-over to me and to others is said', () => {
  let s = reduce(joined(), { type: 'case_state', view: view(), presenter: 'me', marks: [] });
  assert.deepEqual(kinds(s.effects), ['render:case']);
  s = reduce(freeze(s.state), { type: 'case_state', view: view(), presenter: 'bob', marks: [] });
  assert.deepEqual(kinds(s.effects), ['notice:call.case.notice.presenting', 'render:case']);
  s = reduce(s.state, { type: 'case_state', view: view(), presenter: 'me', marks: [] });
  assert.deepEqual(kinds(s.effects), ['notice:call.case.notice.you_present', 'render:case']);
  // The presenter leaves: the view stays, without one.
  s = reduce(reduce(s.state, { type: 'case_state', view: view(), presenter: 'bob', marks: [] }).state, { type: 'case_state', view: view(), presenter: null, marks: [] });
  assert.deepEqual(kinds(s.effects), ['notice:call.case.notice.presenter_left', 'render:case']);
  assert.equal(s.effects[0].level, 'warn');
  assert.deepEqual(s.state.case.view, view());
  assert.equal(s.state.case.presenter, null);
  // Closed for everyone.
  s = reduce(s.state, { type: 'case_state', view: null, presenter: null, marks: [] });
  assert.deepEqual(kinds(s.effects), ['notice:call.case.notice.closed', 'render:case']);
  assert.deepEqual([s.state.case.view, s.state.case.presenter, s.state.case.marks], [null, null, []]);
});

test('case_pointer: others\' pointers kept per picture; a stop removes one; my own is ignored', () => {
  let s = reduce(joined(), { type: 'case_state', view: view(), presenter: 'me', marks: [] }).state;
  const step = reduce(freeze(s), { type: 'case_pointer', participant: 'bob', color: 2, x: 0.25, y: 0.75 });
  assert.deepEqual(step.state.case.pointers.get('bob'), { color: 2, x: 0.25, y: 0.75 });
  assert.deepEqual(step.effects, [{ kind: 'casePointer', participant: 'bob' }]);
  assert.equal(step.state.case.colors.get('bob'), 2);
  s = step.state;
  const stop = reduce(freeze(s), { type: 'case_pointer', participant: 'bob', color: 2, x: null, y: null });
  assert.equal(stop.state.case.pointers.has('bob'), false);
  assert.deepEqual(stop.effects, [{ kind: 'casePointer', participant: 'bob' }]);
  assert.deepEqual(reduce(s, { type: 'case_pointer', participant: 'me', color: 0, x: 0.1, y: 0.1 }).effects, []);
  // Out of range: treated as stopped, never drawn off the image.
  assert.equal(reduce(s, { type: 'case_pointer', participant: 'bob', color: 2, x: 1.5, y: 0.1 }).state.case.pointers.has('bob'), false);
  // The same picture at another zoom keeps the pointer; another picture drops it (and says so).
  const zoomed = reduce(s, { type: 'case_state', view: view(0, { zoom: 3 }), presenter: 'me', marks: [] });
  assert.equal(zoomed.state.case.pointers.has('bob'), true);
  const next = reduce(s, { type: 'case_state', view: view(1), presenter: 'me', marks: [] });
  assert.equal(next.state.case.pointers.size, 0);
  assert.deepEqual(kinds(next.effects), ['render:case', 'casePointer']);
  // Someone who leaves stops pointing.
  const left = reduce(s, { type: 'participant_left', participant_id: 'bob', reason: 'left' });
  assert.equal(left.state.case.pointers.has('bob'), false);
  assert.ok(left.effects.some((e) => e.kind === 'casePointer' && e.participant === 'bob'));
  // Nothing shown: nothing to point at.
  assert.equal(reduce(joined(), { type: 'case_pointer', participant: 'bob', color: 2, x: 0.2, y: 0.2 }).state.case.pointers.size, 0);
});

test('case_mark: added once to the picture shown, in its author\'s colour', () => {
  let s = reduce(joined(), { type: 'case_state', view: view(), presenter: 'me', marks: [] }).state;
  const step = reduce(freeze(s), { type: 'case_mark', mark: mark(1, 'bob', 3) });
  assert.deepEqual(step.state.case.marks, [mark(1, 'bob', 3)]);
  assert.deepEqual(step.effects, [{ kind: 'render', part: 'caseMarks' }]);
  assert.equal(step.state.case.colors.get('bob'), 3);
  s = step.state;
  assert.deepEqual(reduce(s, { type: 'case_mark', mark: mark(1, 'bob', 3) }).effects, [], 'the same mark twice');
  assert.deepEqual(reduce(s, { type: 'case_mark', mark: /** @type {any} */ ({ ...mark(2, 'bob'), points: [[0.1, 2]] }) }).effects, [], 'not a mark');
  assert.deepEqual(reduce(joined(), { type: 'case_mark', mark: mark(5, 'bob') }).effects, [], 'nothing shown');
  // My own mark tells me my colour.
  assert.equal(reduce(s, { type: 'case_mark', mark: mark(2, 'me', 4) }).state.case.colors.get('me'), 4);
  // A clear is a case_state without marks.
  assert.deepEqual(reduce(s, { type: 'case_state', view: view(), presenter: 'me', marks: [] }).state.case.marks, []);
});

test('a new socket forgets what was shown (the server says it again) without saying it twice', () => {
  const shown = reduce(joined(person('bob2')), { type: 'case_state', view: view(), presenter: 'me', marks: [mark(1, 'me')] }).state;
  const again = reduce(freeze(shown), { type: 'hello', id: 'h2', version: 1, room: 'r', you: person('bob2'), state: 'joined', resumed: true, participants: [me, bob], lobby: [] });
  assert.equal(again.state.case.view, null);
  assert.deepEqual(kinds(again.effects), ['resumed', 'enterRoom', 'render:case']);
  const back = reduce(again.state, { type: 'case_state', view: view(), presenter: 'me', marks: [] });
  assert.deepEqual(kinds(back.effects), ['render:case'], 'already told who opened it');
  // Closed, then opened again: said again.
  const closed = reduce(back.state, { type: 'case_state', view: null, presenter: null, marks: [] }).state;
  assert.deepEqual(kinds(reduce(closed, { type: 'case_state', view: view(), presenter: 'me', marks: [] }).effects), ['notice:call.case.notice.opened', 'render:case']);
  // A hello with nothing shown before adds nothing.
  assert.deepEqual(kinds(reduce(joined(), { type: 'hello', id: 'h3', version: 1, room: 'r', you: me, state: 'joined', resumed: true, participants: [me], lobby: [] }).effects), ['resumed', 'enterRoom']);
});
