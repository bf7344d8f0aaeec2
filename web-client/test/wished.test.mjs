// The request form's preferred-time rules (js/office/wished.js) under plain node.
//   node --test web-client/test/*.test.mjs   (scripts/e2e.sh runs it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { beijingMs, wishedProblem } from '../js/office/wished.js';

// 2026-03-05 10:00 in Beijing.
const NOW = Date.parse('2026-03-05T02:00:00Z');

test('datetime-local values are read as Beijing time', () => {
  assert.equal(beijingMs('2026-03-05T10:00'), NOW);
  assert.equal(beijingMs('2026-03-05T10:00:30'), NOW + 30e3);
  assert.equal(beijingMs('2026-03-06T00:15'), Date.parse('2026-03-05T16:15:00Z'));
  for (const bad of ['', '2026-03-05', '2026-13-01T10:00', '2026-03-05T24:00', '05/03/2026 10:00']) assert.ok(Number.isNaN(beijingMs(bad)), bad);
});

test('no preferred time, or a future one, may be sent', () => {
  assert.equal(wishedProblem('', '', NOW), null);
  assert.equal(wishedProblem('2026-03-05T14:00', '2026-03-05T17:00', NOW), null);
  // Begun but not over: still a time to meet (the server takes it too).
  assert.equal(wishedProblem('2026-03-05T08:00', '2026-03-05T17:00', NOW), null);
});

test('a time already over is refused', () => {
  assert.equal(wishedProblem('2026-03-04T14:00', '2026-03-04T17:00', NOW), 'wished_in_past');
  // Ending right now counts as over.
  assert.equal(wishedProblem('2026-03-05T09:00', '2026-03-05T10:00', NOW), 'wished_in_past');
});

test('half a time, a reversed one, a malformed one', () => {
  assert.equal(wishedProblem('2026-03-05T14:00', '', NOW), 'wished_incomplete');
  assert.equal(wishedProblem('', '2026-03-05T14:00', NOW), 'wished_incomplete');
  assert.equal(wishedProblem('2026-03-05T17:00', '2026-03-05T14:00', NOW), 'wished_reversed');
  assert.equal(wishedProblem('2026-03-05T14:00', '2026-03-05T14:00', NOW), 'wished_reversed');
  // Reversed and over: reversed is the mistake to fix first.
  assert.equal(wishedProblem('2026-03-04T17:00', '2026-03-04T14:00', NOW), 'wished_reversed');
  assert.equal(wishedProblem('tomorrow', '2026-03-05T14:00', NOW), 'wished_invalid');
});
