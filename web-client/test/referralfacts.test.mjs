// The referral rules the office screens offer steps by (js/office/referralfacts.js), under
// plain node: who may refer, who may take which step, the order of a referral's times, the
// receiving sites, the planned date's days.
//   node --test web-client/test/*.test.mjs   (scripts/e2e.sh runs it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  answeredReferral, beijingDay, mayRefer, receivingSites, referralSteps, referralTimes, referralUnderWay,
} from '../js/office/referralfacts.js';

/** @typedef {import('../js/office/referralfacts.js').Referral} Referral */
/** @typedef {import('../js/office/referralfacts.js').ReferralTarget} ReferralTarget */

const DOCTOR = { id: 'doc', role: 'doctor', site_id: 'county' };
const CITY_COORDINATOR = { id: 'coord', role: 'coordinator', site_id: 'city' };
const OTHER_COORDINATOR = { id: 'coord2', role: 'coordinator', site_id: 'west' };

/** @param {Partial<Referral>} [more] @returns {Referral} */
const up = (more = {}) => ({
  id: 'r1', direction: 'up', from_site: 'county', to_site: 'city', department: '心内科', reason: '需要介入治疗',
  urgency: 'routine', status: 'requested', requested_by: 'doc', requested_at: '2026-12-06T08:00:00Z', ...more,
});

/** @param {Partial<Referral>} [more] @returns {Referral} */
const down = (more = {}) => up({
  id: 'r2', direction: 'down', from_site: 'city', to_site: 'county', requested_by: 'coord', answers: 'r1', ...more,
});

/** @param {Referral[]} referrals @param {string} [status] @returns {ReferralTarget} */
const consultation = (referrals, status = 'ended') => ({ status, requester: 'doc', requester_site: 'county', referrals });

test('the requesting doctor refers once the consultation took place, one up referral at a time', () => {
  for (const status of ['live', 'ended', 'reported']) assert.equal(mayRefer(consultation([], status), DOCTOR), true, status);
  for (const status of ['requested', 'scheduled', 'cancelled', 'rejected', 'no_show']) assert.equal(mayRefer(consultation([], status), DOCTOR), false, status);
  assert.equal(mayRefer(consultation([]), { ...DOCTOR, id: 'someone-else' }), false, 'another doctor');
  assert.equal(mayRefer(consultation([]), CITY_COORDINATOR), false);
  assert.equal(mayRefer(consultation([]), null), false);
  assert.equal(mayRefer({ ...consultation([]), requester_site: null }, DOCTOR), false, 'a request from no site');
  for (const status of ['requested', 'accepted', 'admitted']) {
    assert.equal(referralUnderWay(consultation([up({ status })])), true, status);
    assert.equal(mayRefer(consultation([up({ status })]), DOCTOR), false, status);
  }
  for (const status of ['declined', 'cancelled', 'discharged']) assert.equal(mayRefer(consultation([up({ status })]), DOCTOR), true, status);
  // A down referral waiting to be received does not hold a new one up.
  assert.equal(mayRefer(consultation([up({ status: 'discharged' }), down()]), DOCTOR), true);
  assert.equal(mayRefer(consultation(Array.from({ length: 20 }, (_, i) => up({ id: `r${i}`, status: 'declined' }))), DOCTOR), false, 'the limit');
});

test('the receiving site\'s coordinator answers and records the stay; the referring doctor may withdraw', () => {
  const c = consultation([]);
  assert.deepEqual(referralSteps(c, up(), CITY_COORDINATOR), ['accept', 'decline']);
  assert.deepEqual(referralSteps(c, up({ status: 'accepted' }), CITY_COORDINATOR), ['admit']);
  assert.deepEqual(referralSteps(c, up({ status: 'admitted' }), CITY_COORDINATOR), ['discharge']);
  for (const status of ['declined', 'cancelled', 'discharged']) assert.deepEqual(referralSteps(c, up({ status }), CITY_COORDINATOR), [], status);
  assert.deepEqual(referralSteps(c, up(), OTHER_COORDINATOR), [], 'a coordinator of another site');
  assert.deepEqual(referralSteps(c, up(), { ...CITY_COORDINATOR, site_id: null }), [], 'a coordinator of no site');
  assert.deepEqual(referralSteps(c, up(), { ...DOCTOR, site_id: 'city' }), ['cancel'], 'a doctor never decides');
  assert.deepEqual(referralSteps(c, up(), DOCTOR), ['cancel']);
  assert.deepEqual(referralSteps(c, up({ status: 'accepted' }), DOCTOR), ['cancel']);
  assert.deepEqual(referralSteps(c, up({ status: 'admitted' }), DOCTOR), [], 'too late once admitted');
  assert.deepEqual(referralSteps(c, up(), null), []);
});

test('the requesting doctor takes a down referral back; nobody else, and once', () => {
  const c = consultation([up({ status: 'discharged' }), down()]);
  assert.deepEqual(referralSteps(c, down(), DOCTOR), ['receive']);
  assert.deepEqual(referralSteps(c, down({ status: 'received' }), DOCTOR), []);
  assert.deepEqual(referralSteps(c, down(), { ...DOCTOR, id: 'another' }), []);
  // The county has no coordinator step on it, even one of that site: the doctor receives.
  assert.deepEqual(referralSteps(c, down(), { ...CITY_COORDINATOR, site_id: 'county' }), []);
  assert.equal(answeredReferral(c, down())?.id, 'r1');
  assert.equal(answeredReferral(c, up()), null);
});

test('a referral\'s times in the order they happen, only those it has', () => {
  assert.deepEqual(referralTimes(up()), [['requested', '2026-12-06T08:00:00Z']]);
  const done = up({ status: 'discharged', decided_at: '2026-12-06T09:00:00Z', admitted_at: '2026-12-08T01:00:00Z', discharged_at: '2026-12-12T02:00:00Z' });
  assert.deepEqual(referralTimes(done).map(([k]) => k), ['requested', 'decided', 'admitted', 'discharged']);
  assert.deepEqual(referralTimes(down({ status: 'received', received_at: '2026-12-13T00:00:00Z' })).map(([k]) => k), ['requested', 'received']);
});

test('the receiving sites: every other one, the higher levels first', () => {
  const sites = [
    { id: 'south', name: '南镇卫生院', level: 'township' }, { id: 'county', name: '东县人民医院', level: 'county' },
    { id: 'west', name: '西县人民医院', level: 'county' }, { id: 'city', name: '市第一人民医院', level: 'city' },
  ];
  assert.deepEqual(receivingSites(sites, 'county').map((s) => s.id), ['city', 'west', 'south']);
  assert.deepEqual(receivingSites(sites, null).map((s) => s.id), ['city', 'county', 'west', 'south']);
});

test('days in Beijing: 23:30 UTC is the next day there', () => {
  const late = Date.parse('2026-12-06T23:30:00Z');
  assert.equal(beijingDay(late), '2026-12-07');
  assert.equal(beijingDay(late, 1), '2026-12-08');
  assert.equal(beijingDay(Date.parse('2026-12-06T08:00:00Z')), '2026-12-06');
});
