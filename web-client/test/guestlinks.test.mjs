// A consultation's guest links as the detail page shows them (js/office/guestlinks.js): each
// link's state at a given moment, what may still be done with it, its address, and who may
// change how the room admits people.
//   node --test web-client/test/*.test.mjs   (scripts/e2e.sh runs it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_VALIDITY_HOURS, VALIDITY_HOURS, canCopyAgain, guestUrl, instantMs, isOpen, linkStatus, mayChangeSettings, sortLinks,
} from '../js/office/guestlinks.js';

const NOW = Date.parse('2026-12-06T08:00:00Z');

/** @param {Partial<import('../js/office/guestlinks.js').GuestLink>} l @returns {import('../js/office/guestlinks.js').GuestLink} */
const link = (l) => ({
  id: 'l1', label: '外院专家', created_by: 'u1', created_at: '2026-12-06T07:00:00.123456789Z', expires_at: '2026-12-07T07:00:00.123456789Z',
  revoked_at: null, used_at: null, guest_name: null, ...l,
});

test('a link is unused, used, withdrawn or expired', () => {
  assert.equal(linkStatus(link({}), NOW), 'unused');
  assert.equal(linkStatus(link({ used_at: '2026-12-06T07:30:00Z', guest_name: '王教授' }), NOW), 'used');
  assert.equal(linkStatus(link({ revoked_at: '2026-12-06T07:40:00Z' }), NOW), 'revoked');
  assert.equal(linkStatus(link({ expires_at: '2026-12-06T07:59:59.999999999Z' }), NOW), 'expired');
  // Expiry is exclusive: at the very instant the link is over.
  assert.equal(linkStatus(link({ expires_at: '2026-12-06T08:00:00Z' }), NOW), 'expired');
  // Withdrawn wins over used and over expired: it is what someone did.
  assert.equal(linkStatus(link({ used_at: '2026-12-06T07:30:00Z', revoked_at: '2026-12-06T07:40:00Z' }), NOW), 'revoked');
  assert.equal(linkStatus(link({ revoked_at: '2026-12-06T07:40:00Z', expires_at: '2026-12-06T07:50:00Z' }), NOW), 'revoked');
  // Used and run out: the guest's token ran out with it.
  assert.equal(linkStatus(link({ used_at: '2026-12-06T07:30:00Z', expires_at: '2026-12-06T07:50:00Z' }), NOW), 'expired');
  // An expiry that cannot be read counts as run out, not as open for ever.
  assert.equal(linkStatus(link({ expires_at: 'soon' }), NOW), 'expired');
});

test('only an open link can be withdrawn, only an unused open one copied again', () => {
  const unused = link({});
  const used = link({ used_at: '2026-12-06T07:30:00Z', guest_name: '王教授' });
  const revoked = link({ revoked_at: '2026-12-06T07:40:00Z' });
  const expired = link({ expires_at: '2026-12-06T07:00:00Z' });
  assert.deepEqual([unused, used, revoked, expired].map((l) => isOpen(l, NOW)), [true, true, false, false]);
  assert.deepEqual([unused, used, revoked, expired].map((l) => canCopyAgain(l, NOW)), [true, false, false, false]);
});

test('the list is newest first and leaves the record alone', () => {
  const older = link({ id: 'a', created_at: '2026-12-06T06:00:00Z' });
  const newer = link({ id: 'b', created_at: '2026-12-06T06:00:00.5Z' });
  const list = [older, newer];
  assert.deepEqual(sortLinks(list).map((l) => l.id), ['b', 'a']);
  assert.deepEqual(list.map((l) => l.id), ['a', 'b']);
  assert.deepEqual(sortLinks(undefined), []);
});

test('the address is the server\'s path on this origin', () => {
  assert.equal(guestUrl('https://hz.example.cn', '/#/guest/abc.def'), 'https://hz.example.cn/#/guest/abc.def');
  assert.equal(guestUrl('http://127.0.0.1:8080/', '/#/guest/x'), 'http://127.0.0.1:8080/#/guest/x');
  assert.equal(instantMs('2026-12-06T08:00:00.123456789Z'), NOW + 123);
});

test('validity choices: 2 hours to a week, a day by default, all within the server\'s 1 to 168', () => {
  assert.deepEqual(VALIDITY_HOURS, [2, 8, 24, 72, 168]);
  assert.ok(VALIDITY_HOURS.includes(DEFAULT_VALIDITY_HOURS) && DEFAULT_VALIDITY_HOURS === 24);
  assert.ok(VALIDITY_HOURS.every((h) => h >= 1 && h <= 168));
});

test('the room\'s admission: its coordinator (any while it has none) and the hosts, while not closed', () => {
  const c = { status: 'scheduled', urgency: 'routine', requester: 'doc', coordinator: 'co1', specialists: ['lead', 'second'] };
  const coordinator = (id) => ({ id, role: 'coordinator' });
  assert.equal(mayChangeSettings(c, coordinator('co1')), true);
  assert.equal(mayChangeSettings(c, coordinator('co2')), false, 'another coordinator, once it has one');
  assert.equal(mayChangeSettings({ ...c, coordinator: null }, coordinator('co2')), true, 'any coordinator while it has none');
  assert.equal(mayChangeSettings(c, { id: 'lead', role: 'specialist' }), true, 'the lead specialist hosts');
  assert.equal(mayChangeSettings(c, { id: 'second', role: 'specialist' }), false, 'a second specialist does not host');
  assert.equal(mayChangeSettings(c, { id: 'doc', role: 'doctor' }), false, 'the requester of a routine consultation does not host');
  assert.equal(mayChangeSettings({ ...c, urgency: 'emergency' }, { id: 'doc', role: 'doctor' }), true, 'the requester of an emergency hosts');
  assert.equal(mayChangeSettings(c, null), false);
  for (const status of ['requested', 'live']) assert.equal(mayChangeSettings({ ...c, status }, coordinator('co1')), true, status);
  for (const status of ['ended', 'reported', 'rejected', 'cancelled', 'no_show']) assert.equal(mayChangeSettings({ ...c, status }, coordinator('co1')), false, status);
});
