// The invite rules and choices (js/office/invitees.js) under plain node: no browser, no server.
//   node --test web-client/test/*.test.mjs   (scripts/e2e.sh runs it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  LIST_LIMIT, MAX_PARTICIPANTS, SEARCH_LIMIT, choose, invitablePath, latestOnly, listProblem, lookupPath, mayInvite, merge,
  notChosen, parseUsernames, placesLeft, roleFilters, searchFilters, siteFilters,
} from '../js/office/invitees.js';

/** @typedef {import('../js/office/invitees.js').Person} Person */

/** @param {string} username @param {string} role @param {Partial<Person>} [more] @returns {Person} */
const person = (username, role, more = {}) => ({ id: `id-${username}`, username, display_name: `Name ${username}`, role, site_id: null, ...more });

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

test('the invitable search path: only the filters given, encoded; the lookup path', () => {
  const id = '0195f2c4a1b27c3e9d4f5a6b7c8d9e0f';
  assert.equal(invitablePath(id, {}), `/v1/consultations/${id}/invitable`);
  assert.equal(invitablePath(id, { q: ' 张神 ', limit: 30 }), `/v1/consultations/${id}/invitable?q=${encodeURIComponent('张神')}&limit=30`);
  assert.equal(invitablePath(id, { site_id: 'abc', role: 'doctor', limit: 200 }), `/v1/consultations/${id}/invitable?site_id=abc&role=doctor&limit=200`);
  assert.equal(invitablePath(id, { q: 'a&b=c' }), `/v1/consultations/${id}/invitable?q=a%26b%3Dc`);
  assert.equal(invitablePath(id, { q: '   ', role: '' }), `/v1/consultations/${id}/invitable`);
  assert.equal(invitablePath('a/b', {}), '/v1/consultations/a%2Fb/invitable');
  assert.equal(lookupPath(id), `/v1/consultations/${id}/invitable/lookup`);
});

test('searches: a name (none when blank), a site\'s doctors and specialists, a role; at most a page each', () => {
  assert.deepEqual(searchFilters('  West '), { q: 'West', limit: SEARCH_LIMIT });
  assert.equal(searchFilters(' \n '), null);
  assert.deepEqual(siteFilters('west'), [
    { site_id: 'west', role: 'doctor', limit: LIST_LIMIT },
    { site_id: 'west', role: 'specialist', limit: LIST_LIMIT },
  ]);
  assert.deepEqual(roleFilters('viewer'), [{ role: 'viewer', limit: LIST_LIMIT }]);
  assert.equal(LIST_LIMIT, 200, 'the server takes at most 200 at once');
});

test('answers merged: each person once, in the server\'s order, and how many were not sent', () => {
  const doctors = { items: [person('west', 'doctor', { display_name: '刘医生' }), person('west-2', 'doctor', { display_name: '王医生' })], total: 5 };
  const specialists = { items: [person('neuro', 'specialist', { display_name: '张神内' }), person('heart', 'specialist', { display_name: '李心内' })], total: 2 };
  const both = merge([doctors, specialists]);
  // Code point order, as the server sorts: 刘 U+5218 < 张 U+5F20 < 李 U+674E < 王 U+738B.
  assert.deepEqual(both.people.map((p) => p.username), ['west', 'neuro', 'heart', 'west-2']);
  assert.equal(both.hidden, 3, '3 doctors matched but were not sent');
  // One answer keeps its order as sent; the same person twice is listed once.
  const one = merge([{ items: [person('b', 'viewer'), person('a', 'viewer')], total: 2 }]);
  assert.deepEqual(one.people.map((p) => p.username), ['b', 'a']);
  assert.equal(one.hidden, 0);
  const twice = merge([{ items: [person('a', 'doctor')], total: 1 }, { items: [person('a', 'doctor')], total: 1 }]);
  assert.deepEqual(twice.people.map((p) => p.username), ['a']);
  assert.deepEqual(merge([]), { people: [], hidden: 0 });
  // Same name: by username.
  const same = merge([{ items: [person('z', 'doctor', { display_name: 'X' })], total: 1 }, { items: [person('y', 'specialist', { display_name: 'X' })], total: 1 }]);
  assert.deepEqual(same.people.map((p) => p.username), ['y', 'z']);
});

test('pasted usernames: lines, commas (also Chinese), spaces; lower case; each once', () => {
  assert.deepEqual(parseUsernames('West\ntrainee, trainee-2，neuro、doc;  west\n\n'), ['west', 'trainee', 'trainee-2', 'neuro', 'doc']);
  assert.deepEqual(parseUsernames(' \n , '), []);
});

test('a pasted list needs at least one name and at most 500', () => {
  assert.equal(listProblem([]), 'empty');
  assert.equal(listProblem(['a']), null);
  assert.equal(listProblem(Array.from({ length: MAX_PARTICIPANTS }, (_, i) => `u${i}`)), null);
  assert.equal(listProblem(Array.from({ length: MAX_PARTICIPANTS + 1 }, (_, i) => `u${i}`)), 'too_many');
});

test('choosing adds each person once and counts the new ones; the rest are offered', () => {
  const doctors = [person('doc', 'doctor'), person('west', 'doctor'), person('west-2', 'doctor')];
  /** @type {Map<string, Person>} */
  const chosen = new Map();
  assert.equal(choose(chosen, doctors), 3);
  assert.equal(choose(chosen, doctors.slice(1)), 0);
  assert.equal(choose(chosen, [person('neuro', 'specialist')]), 1);
  assert.equal(chosen.size, 4);
  chosen.delete('id-west');
  assert.deepEqual(notChosen(chosen, [...doctors, person('trainee', 'viewer')]).map((p) => p.username), ['west', 'trainee']);
});

test('only the latest request\'s answer counts', () => {
  const start = latestOnly();
  const first = start();
  assert.equal(first(), true);
  const second = start();
  assert.equal(first(), false, 'a later request makes the first answer stale');
  assert.equal(second(), true);
  // Another list (another panel) counts on its own.
  const other = latestOnly()();
  assert.equal(other(), true);
  assert.equal(second(), true);
});

test('at most 500 invited participants in all', () => {
  assert.equal(placesLeft(consultation()), MAX_PARTICIPANTS);
  const full = consultation({ participants: Array.from({ length: 498 }, (_, i) => `p${i}`) });
  assert.equal(placesLeft(full), 2);
  assert.equal(placesLeft(consultation({ participants: Array.from({ length: 501 }, (_, i) => `p${i}`) })), 0);
});
