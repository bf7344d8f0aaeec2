// The invite rules and choices (js/office/invitees.js) under plain node: no browser, no server.
//   node --test web-client/test/*.test.mjs   (scripts/e2e.sh runs it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_PARTICIPANTS, atSite, choose, invitable, involvedIds, mayInvite, parseUsernames, placesLeft, resolveUsernames, search, withRole,
} from '../js/office/invitees.js';

/** @param {string} username @param {string} role @param {Partial<import('../js/office/invitees.js').Person>} [more] */
const person = (username, role, more = {}) => ({ id: `id-${username}`, username, display_name: `Name ${username}`, role, site_id: null, disabled: false, ...more });

const people = [
  person('coord', 'coordinator', { site_id: 'city' }),
  person('spec', 'specialist', { site_id: 'city' }),
  person('neuro', 'specialist', { site_id: 'city', display_name: '张神内' }),
  person('doc', 'doctor', { site_id: 'east' }),
  person('west', 'doctor', { site_id: 'west' }),
  person('west-2', 'doctor', { site_id: 'west' }),
  person('trainee', 'viewer', { site_id: 'west' }),
  person('trainee-2', 'viewer'),
  person('off', 'viewer', { disabled: true }),
];

/** A scheduled consultation: doc asked, coord scheduled, spec leads. @param {object} [more] */
const consultation = (more = {}) => ({
  status: 'scheduled', urgency: 'routine', requester: 'id-doc', coordinator: 'id-coord',
  specialists: ['id-spec'], participants: [], ...more,
});

test('its coordinator, the lead specialist and the requester may invite; others may not', () => {
  const c = consultation();
  assert.equal(mayInvite(c, { id: 'id-coord', role: 'coordinator' }), true);
  assert.equal(mayInvite(c, { id: 'id-spec', role: 'specialist' }), true);
  assert.equal(mayInvite(c, { id: 'id-doc', role: 'doctor' }), true);
  // Another centre's coordinator sees the consultation but may not invite (issue 13 item 7).
  assert.equal(mayInvite(c, { id: 'id-other-coord', role: 'coordinator' }), false);
  // A second specialist, an invited participant, an admin: no.
  assert.equal(mayInvite(consultation({ specialists: ['id-spec', 'id-neuro'] }), { id: 'id-neuro', role: 'specialist' }), false);
  assert.equal(mayInvite(consultation({ participants: ['id-trainee'] }), { id: 'id-trainee', role: 'viewer' }), false);
  assert.equal(mayInvite(c, { id: 'id-admin', role: 'admin' }), false);
  assert.equal(mayInvite(c, null), false);
});

test('any coordinator may invite while the request has no coordinator yet', () => {
  const waiting = consultation({ status: 'requested', coordinator: null, specialists: [] });
  assert.equal(mayInvite(waiting, { id: 'id-other-coord', role: 'coordinator' }), true);
  assert.equal(mayInvite(waiting, { id: 'id-doc', role: 'doctor' }), true);
});

test('invitations only while requested, scheduled or live', () => {
  const coord = { id: 'id-coord', role: 'coordinator' };
  for (const status of ['requested', 'scheduled', 'live']) assert.equal(mayInvite(consultation({ status }), coord), true, status);
  for (const status of ['ended', 'reported', 'rejected', 'cancelled', 'no_show']) assert.equal(mayInvite(consultation({ status }), coord), false, status);
});

test('people already on the consultation and disabled accounts cannot be invited', () => {
  const c = consultation({ participants: ['id-trainee'] });
  assert.deepEqual([...involvedIds(c)].sort(), ['id-coord', 'id-doc', 'id-spec', 'id-trainee']);
  const names = invitable(people, c).map((p) => p.username);
  for (const gone of ['coord', 'spec', 'doc', 'trainee', 'off']) assert.ok(!names.includes(gone), gone);
  assert.deepEqual(names.slice().sort(), ['neuro', 'trainee-2', 'west', 'west-2'].sort());
});

test('search by display name or username, case-insensitive; a blank query finds nobody', () => {
  assert.deepEqual(search(people, '张神').map((p) => p.username), ['neuro']);
  assert.deepEqual(search(people, 'WEST').map((p) => p.username), ['west', 'west-2']);
  assert.deepEqual(search(people, '   '), []);
});

test('a site gives its doctors and specialists; a role gives everyone with it', () => {
  assert.deepEqual(atSite(people, 'west').map((p) => p.username), ['west', 'west-2']);
  assert.deepEqual(atSite(people, 'city').map((p) => p.username), ['spec', 'neuro']);
  assert.deepEqual(withRole(people, 'viewer').map((p) => p.username), ['trainee', 'trainee-2', 'off']);
});

test('pasted usernames: lines, commas (also Chinese), spaces; lower case; each once', () => {
  assert.deepEqual(parseUsernames('West\ntrainee, trainee-2，neuro、doc;  west\n\n'), ['west', 'trainee', 'trainee-2', 'neuro', 'doc']);
  assert.deepEqual(parseUsernames(' \n , '), []);
});

test('every pasted name is accounted for: found, unknown, disabled or already on it', () => {
  const r = resolveUsernames(['west', 'nobody', 'off', 'doc', 'trainee-2'], people, consultation());
  assert.deepEqual(r.found.map((p) => p.username), ['west', 'trainee-2']);
  assert.deepEqual(r.unknown, ['nobody']);
  assert.deepEqual(r.disabled.map((p) => p.username), ['off']);
  assert.deepEqual(r.already.map((p) => p.username), ['doc']);
});

test('choosing adds each person once and counts the new ones', () => {
  const chosen = new Map();
  assert.equal(choose(chosen, withRole(people, 'doctor')), 3);
  assert.equal(choose(chosen, atSite(people, 'west')), 0);
  assert.equal(choose(chosen, [people[1]]), 1);
  assert.equal(chosen.size, 4);
});

test('at most 500 invited participants in all', () => {
  assert.equal(placesLeft(consultation()), MAX_PARTICIPANTS);
  const full = consultation({ participants: Array.from({ length: 498 }, (_, i) => `p${i}`) });
  assert.equal(placesLeft(full), 2);
  assert.equal(placesLeft(consultation({ participants: Array.from({ length: 501 }, (_, i) => `p${i}`) })), 0);
});
