// The site time zone list (js/office/zones.js) under plain node.
//   node --test web-client/test/*.test.mjs   (scripts/e2e.sh runs it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_ZONE, zoneGroups, zoneLabel } from '../js/office/zones.js';

test('zones grouped by region, sorted; names without a region last', () => {
  const groups = zoneGroups(['Europe/Paris', 'Asia/Urumqi', 'UTC', 'Asia/Shanghai', 'America/New_York', 'Asia/Hong_Kong']);
  assert.deepEqual(groups, [
    ['America', ['America/New_York']],
    ['Asia', ['Asia/Hong_Kong', 'Asia/Shanghai', 'Asia/Urumqi']],
    ['Europe', ['Europe/Paris']],
    ['Other', ['UTC']],
  ]);
});

test('the default and the site\'s own zone are offered even when the browser lists neither', () => {
  assert.equal(DEFAULT_ZONE, 'Asia/Shanghai');
  assert.deepEqual(zoneGroups([]), [['Asia', ['Asia/Shanghai']]]);
  assert.deepEqual(zoneGroups(['Asia/Shanghai'], 'Asia/Chongqing'), [['Asia', ['Asia/Chongqing', 'Asia/Shanghai']]]);
  // No zone twice.
  assert.deepEqual(zoneGroups(['Asia/Shanghai', 'Asia/Shanghai'], 'Asia/Shanghai'), [['Asia', ['Asia/Shanghai']]]);
});

test('each zone is shown with its offset on the day', () => {
  const summer = Date.parse('2026-07-01T12:00:00Z');
  const winter = Date.parse('2026-01-15T12:00:00Z');
  assert.equal(zoneLabel('Asia/Shanghai', summer), 'Asia/Shanghai (UTC+08:00)');
  assert.equal(zoneLabel('Asia/Kolkata', winter), 'Asia/Kolkata (UTC+05:30)');
  assert.equal(zoneLabel('America/New_York', summer), 'America/New_York (UTC-04:00)');
  assert.equal(zoneLabel('America/New_York', winter), 'America/New_York (UTC-05:00)');
  assert.equal(zoneLabel('Not/AZone', summer), 'Not/AZone');
});
