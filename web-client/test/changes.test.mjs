// The rules for pushed consultation changes (js/office/changes.js) under plain node.
//   node --test web-client/test/*.test.mjs   (scripts/e2e.sh runs it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FIRST_DELAY_MS, MAX_DELAY_MS, alreadyShown, emergencyForMe, emergencyOver, followsChanges, newsFor, nextDelay,
  parseChange, routeConsultation, routeShows,
} from '../js/office/changes.js';

/** @typedef {import('../js/office/changes.js').Change} Change */

/** @param {Partial<Change>} [more] @returns {Change} */
const change = (more = {}) => ({
  id: 'c1', action: 'assign', status: 'live', urgency: 'emergency', version: 3, specialists: ['neuro'], ...more,
});

test('a change is read from the event data as the server sends it', () => {
  const data = '{"id":"c1","action":"assign","status":"live","urgency":"emergency","version":3,"specialists":["neuro"]}';
  assert.deepEqual(parseChange(data), change());
});

test('data that is not a change is refused, not half-read', () => {
  for (const bad of ['', 'not json', 'null', '[]', '{}', '"c1"',
    '{"id":"c1","action":"assign","status":"live","urgency":"emergency","version":"3","specialists":[]}',
    '{"id":"c1","action":"assign","status":"live","urgency":"emergency","version":3,"specialists":"neuro"}',
    '{"id":"c1","action":"assign","status":"live","urgency":"emergency","version":3,"specialists":[7]}',
    '{"id":"","action":"assign","status":"live","urgency":"emergency","version":3,"specialists":[]}',
    '{"action":"assign","status":"live","urgency":"emergency","version":3,"specialists":[]}']) {
    assert.equal(parseChange(bad), null, bad);
  }
});

test('the lists follow every change; a consultation\'s pages only their own; other pages none', () => {
  assert.equal(routeShows('/', change()), true);
  assert.equal(routeShows('/all', change()), true);
  assert.equal(routeShows('/c/c1', change()), true);
  assert.equal(routeShows('/c/c1/report', change()), true);
  assert.equal(routeShows('/c/c2', change()), false);
  assert.equal(routeShows('/c/c1/call', change()), false, 'never the call: re-rendering would leave the room');
  assert.equal(routeShows('/new', change()), false);
  assert.equal(routeShows('/admin/users', change()), false);
  assert.equal(followsChanges('/c/c1/call'), false);
  assert.equal(followsChanges('/new'), false);
  assert.equal(followsChanges('/c/c9'), true);
  assert.equal(routeConsultation('/c/c1/report'), 'c1');
  assert.equal(routeConsultation('/c/c1/call'), null);
});

test('the referrals page follows every change; a referral form its consultation\'s', () => {
  for (const path of ['/referrals', '/referrals/incoming', '/referrals/outgoing']) {
    assert.equal(followsChanges(path), true, path);
    assert.equal(routeShows(path, change()), true, path);
  }
  assert.equal(followsChanges('/referrals/elsewhere'), false);
  assert.equal(routeConsultation('/c/c1/referral/r1'), 'c1');
  assert.equal(routeShows('/c/c1/referral/r1', change()), true);
  assert.equal(routeShows('/c/c2/referral/r1', change()), false);
  assert.equal(routeConsultation('/c/c1/referral/'), null);
});

test('a page that already shows the change\'s version (the user\'s own step) is left alone', () => {
  assert.equal(alreadyShown(3, change({ version: 3 })), true);
  assert.equal(alreadyShown(4, change({ version: 3 })), true);
  assert.equal(alreadyShown(2, change({ version: 3 })), false);
  assert.equal(alreadyShown(null, change()), false);
});

test('an emergency is mine when a step of it lists me among its specialists', () => {
  for (const action of ['assign', 'emergency_opened', 'accept']) assert.equal(emergencyForMe(change({ action }), 'neuro'), true, action);
  assert.equal(emergencyForMe(change(), 'cardio'), false, 'someone else was assigned');
  assert.equal(emergencyForMe(change({ urgency: 'urgent' }), 'neuro'), false, 'urgent is not an emergency');
  assert.equal(emergencyForMe(change({ action: 'opinion' }), 'neuro'), false, 'not a step that makes it mine');
  assert.equal(emergencyForMe(change({ action: 'end', status: 'ended' }), 'neuro'), false);
  assert.equal(emergencyForMe(change(), null), false);
  assert.equal(emergencyOver(change({ status: 'ended' })), true);
  assert.equal(emergencyOver(change()), false);
});

test('a doctor is told of an acceptance and a new time, nobody else of anything', () => {
  assert.equal(newsFor(change({ action: 'accept', status: 'scheduled', urgency: 'routine' }), 'doctor'), 'accepted');
  assert.equal(newsFor(change({ action: 'reschedule', status: 'scheduled', urgency: 'routine' }), 'doctor'), 'rescheduled');
  assert.equal(newsFor(change({ action: 'start' }), 'doctor'), null);
  assert.equal(newsFor(change({ action: 'accept' }), 'specialist'), null);
  assert.equal(newsFor(change({ action: 'accept' }), 'coordinator'), null);
});

test('reconnecting waits 1 s, doubling to 30 s', () => {
  const waits = [FIRST_DELAY_MS];
  while (waits.length < 8) waits.push(nextDelay(waits[waits.length - 1]));
  assert.deepEqual(waits, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  assert.equal(nextDelay(0), 2000);
  assert.equal(MAX_DELAY_MS, 30000);
});
