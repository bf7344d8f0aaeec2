// The date filter's day range (js/office/dayrange.js) under plain node.
//   node --test web-client/test/*.test.mjs   (scripts/e2e.sh runs it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dayRange, offsetMs } from '../js/office/dayrange.js';

test('whole days in Beijing: from the first midnight to the midnight after the last day', () => {
  assert.deepEqual(dayRange('2026-12-06', '2026-12-06', 'Asia/Shanghai'), { from: '2026-12-05T16:00:00.000Z', to: '2026-12-06T16:00:00.000Z', problem: null });
  assert.deepEqual(dayRange('2026-12-01', '2026-12-31', 'Asia/Shanghai'), { from: '2026-11-30T16:00:00.000Z', to: '2026-12-31T16:00:00.000Z', problem: null });
  // The month's and the year's end roll over.
  assert.equal(dayRange('', '2026-02-28', 'Asia/Shanghai').to, '2026-02-28T16:00:00.000Z');
  assert.equal(dayRange('', '2026-12-31', 'Asia/Shanghai').to, '2026-12-31T16:00:00.000Z');
});

test('either end may be open', () => {
  assert.deepEqual(dayRange('', '', 'Asia/Shanghai'), { from: null, to: null, problem: null });
  assert.deepEqual(dayRange('2026-12-06', '', 'Asia/Shanghai'), { from: '2026-12-05T16:00:00.000Z', to: null, problem: null });
  assert.deepEqual(dayRange('', '2026-12-06', 'Asia/Shanghai'), { from: null, to: '2026-12-06T16:00:00.000Z', problem: null });
});

test('a reversed range and a day that does not exist are refused', () => {
  assert.deepEqual(dayRange('2026-12-07', '2026-12-06', 'Asia/Shanghai'), { from: null, to: null, problem: 'range_reversed' });
  for (const bad of ['2026-02-30', '2026-13-01', '06/12/2026', '2026-12-6']) {
    assert.equal(dayRange(bad, '', 'Asia/Shanghai').problem, 'invalid_date', bad);
    assert.equal(dayRange('', bad, 'Asia/Shanghai').problem, 'invalid_date', bad);
  }
});

test('a zone with daylight saving: each day starts at its own midnight', () => {
  // New York: UTC-4 in summer, UTC-5 in winter; 2026-03-08 is 23 hours long.
  assert.deepEqual(dayRange('2026-03-08', '2026-03-08', 'America/New_York'), { from: '2026-03-08T05:00:00.000Z', to: '2026-03-09T04:00:00.000Z', problem: null });
  assert.equal(dayRange('2026-07-01', '', 'America/New_York').from, '2026-07-01T04:00:00.000Z');
  assert.equal(offsetMs(Date.parse('2026-07-01T12:00:00Z'), 'Asia/Shanghai'), 8 * 3600e3);
  assert.equal(offsetMs(Date.parse('2026-01-01T12:00:00Z'), 'America/New_York'), -5 * 3600e3);
});
