// A consultation's encoder credentials as the detail page shows them (js/office/encoderlinks.js):
// each credential's state at a given moment, what may still be done with it, the order of the
// list, the WHIP URL, the validity choices and labels, and who may manage them.
//   node --test web-client/test/*.test.mjs   (scripts/e2e.sh runs it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_VALIDITY_HOURS, MAX_ENCODER_LINKS, MAX_LABEL_CHARS, VALIDITY_HOURS, canCreateMore, cleanLabel, encoderStatus,
  isActive, mayManageEncoders, sortEncoders, validityParts, whipUrl,
} from '../js/office/encoderlinks.js';

const NOW = Date.parse('2026-12-06T08:00:00Z');

/** @param {Partial<import('../js/office/encoderlinks.js').EncoderLink>} e @returns {import('../js/office/encoderlinks.js').EncoderLink} */
const cred = (e) => ({
  id: 'e1', label: '手术室 3 腔镜', created_by: 'u1', created_at: '2026-12-06T07:00:00.123456789Z', expires_at: '2026-12-07T07:00:00.123456789Z',
  revoked_at: null, ...e,
});

test('a credential is active, withdrawn or expired', () => {
  assert.equal(encoderStatus(cred({}), NOW), 'active');
  assert.equal(encoderStatus(cred({ revoked_at: '2026-12-06T07:40:00Z' }), NOW), 'revoked');
  assert.equal(encoderStatus(cred({ expires_at: '2026-12-06T07:59:59.999999999Z' }), NOW), 'expired');
  // Expiry is exclusive, as the server has it (`now < expires_at`): at the very instant it is over.
  assert.equal(encoderStatus(cred({ expires_at: '2026-12-06T08:00:00Z' }), NOW), 'expired');
  // Withdrawn wins over expired: it is what a host did.
  assert.equal(encoderStatus(cred({ revoked_at: '2026-12-06T07:40:00Z', expires_at: '2026-12-06T07:50:00Z' }), NOW), 'revoked');
  // An expiry that cannot be read counts as run out, not as open for ever.
  assert.equal(encoderStatus(cred({ expires_at: 'soon' }), NOW), 'expired');
});

test('only an active credential is shown again or withdrawn', () => {
  const list = [cred({}), cred({ revoked_at: '2026-12-06T07:40:00Z' }), cred({ expires_at: '2026-12-06T07:00:00Z' })];
  assert.deepEqual(list.map((e) => isActive(e, NOW)), [true, false, false]);
});

test('the list: active first, each group newest first, the record left alone', () => {
  const oldActive = cred({ id: 'a', created_at: '2026-12-01T06:00:00Z', expires_at: '2026-12-30T00:00:00Z' });
  const newActive = cred({ id: 'b', created_at: '2026-12-06T06:00:00.5Z' });
  const newRevoked = cred({ id: 'c', created_at: '2026-12-06T07:30:00Z', revoked_at: '2026-12-06T07:45:00Z' });
  const oldExpired = cred({ id: 'd', created_at: '2026-11-01T06:00:00Z', expires_at: '2026-11-02T06:00:00Z' });
  const list = [oldExpired, oldActive, newRevoked, newActive];
  assert.deepEqual(sortEncoders(list, NOW).map((e) => e.id), ['b', 'a', 'c', 'd']);
  assert.deepEqual(list.map((e) => e.id), ['d', 'a', 'c', 'b']);
  assert.deepEqual(sortEncoders(undefined, NOW), []);
  // The API's instants carry nanoseconds: read to the millisecond, they still order.
  const sameMs = [cred({ id: 'x', created_at: '2026-12-06T06:00:00.123000001Z' }), cred({ id: 'y', created_at: '2026-12-06T06:00:00.124Z' })];
  assert.deepEqual(sortEncoders(sameMs, NOW).map((e) => e.id), ['y', 'x']);
});

test('the WHIP URL is the server\'s path on this origin', () => {
  const path = '/v1/consultations/0195f2c4a1b27c3e9d4f5a6b7c8d9e0f/whip';
  assert.equal(whipUrl('https://huizhen.example-hospital.cn', path), `https://huizhen.example-hospital.cn${path}`);
  assert.equal(whipUrl('http://127.0.0.1:8080/', path), `http://127.0.0.1:8080${path}`);
  assert.equal(whipUrl('http://127.0.0.1:8080', 'v1/consultations/x/whip'), 'http://127.0.0.1:8080/v1/consultations/x/whip');
});

test('validity choices: 2 hours to a month, a day by default, all within the server\'s 1 to 744', () => {
  assert.deepEqual(VALIDITY_HOURS, [2, 8, 24, 72, 168, 744]);
  assert.ok(VALIDITY_HOURS.includes(DEFAULT_VALIDITY_HOURS) && DEFAULT_VALIDITY_HOURS === 24);
  assert.ok(VALIDITY_HOURS.every((h) => Number.isInteger(h) && h >= 1 && h <= 744));
  assert.deepEqual(VALIDITY_HOURS.map(validityParts), [
    { unit: 'hours', n: 2 }, { unit: 'hours', n: 8 }, { unit: 'hours', n: 24 },
    { unit: 'days', n: 3 }, { unit: 'days', n: 7 }, { unit: 'days', n: 31 },
  ]);
  // Not a whole number of days: said in hours.
  assert.deepEqual(validityParts(36), { unit: 'hours', n: 36 });
});

test('a label is required, trimmed, and at most 40 characters as the server counts them', () => {
  assert.equal(MAX_LABEL_CHARS, 40);
  assert.equal(cleanLabel('  手术室 3 腔镜 '), '手术室 3 腔镜');
  assert.equal(cleanLabel(''), null);
  assert.equal(cleanLabel('   '), null);
  assert.equal(cleanLabel('腔'.repeat(40)), '腔'.repeat(40));
  assert.equal(cleanLabel('腔'.repeat(41)), null);
  // Characters, not UTF-16 units: 40 characters outside the BMP are 80 units and still fit.
  assert.equal(cleanLabel('𠀀'.repeat(40)), '𠀀'.repeat(40));
});

test('at most 20 credentials per consultation, withdrawn and expired ones included', () => {
  assert.equal(MAX_ENCODER_LINKS, 20);
  assert.equal(canCreateMore(undefined), true);
  assert.equal(canCreateMore(Array.from({ length: 19 }, (_, i) => cred({ id: `e${i}` }))), true);
  assert.equal(canCreateMore(Array.from({ length: 20 }, (_, i) => cred({ id: `e${i}`, revoked_at: '2026-12-06T07:00:00Z' }))), false);
});

test('who manages encoders: the hosts and the consultation\'s coordinator (any while it has none), while not over', () => {
  const c = { status: 'scheduled', urgency: 'routine', requester: 'doc', coordinator: 'co1', specialists: ['lead', 'second'] };
  /** @param {string} id */
  const coordinator = (id) => ({ id, role: 'coordinator' });
  assert.equal(mayManageEncoders(c, { id: 'lead', role: 'specialist' }), true, 'the lead specialist hosts');
  assert.equal(mayManageEncoders(c, coordinator('co1')), true, 'its coordinator');
  assert.equal(mayManageEncoders(c, coordinator('co2')), false, 'another coordinator, once it has one');
  assert.equal(mayManageEncoders({ ...c, coordinator: null }, coordinator('co2')), true, 'any coordinator while it has none');
  assert.equal(mayManageEncoders(c, { id: 'second', role: 'specialist' }), false, 'a second specialist does not host');
  // Unlike guest links, the requester of a routine consultation may not bring in an encoder.
  assert.equal(mayManageEncoders(c, { id: 'doc', role: 'doctor' }), false, 'the requester of a routine consultation');
  assert.equal(mayManageEncoders({ ...c, urgency: 'emergency' }, { id: 'doc', role: 'doctor' }), true, 'the requester of an emergency hosts');
  assert.equal(mayManageEncoders(c, { id: 'trainee', role: 'viewer' }), false, 'an invited trainee');
  assert.equal(mayManageEncoders(c, null), false);
  for (const status of ['requested', 'scheduled', 'live']) assert.equal(mayManageEncoders({ ...c, status }, { id: 'lead', role: 'specialist' }), true, status);
  for (const status of ['ended', 'reported', 'rejected', 'cancelled', 'no_show']) assert.equal(mayManageEncoders({ ...c, status }, { id: 'lead', role: 'specialist' }), false, status);
});
