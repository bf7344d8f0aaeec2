// The stage's layout rules (js/call/layout.js) under plain node: no browser, no server.
//   node --test web-client/test/*.test.mjs   (scripts/e2e.sh runs it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { arrange, gridShape, layerFor, pickMain } from '../js/call/layout.js';

/** @typedef {import('../js/call/layout.js').LayoutTile} LayoutTile */

/** @param {string} key @param {Partial<LayoutTile>} [more] @returns {LayoutTile} */
const tile = (key, more = {}) => ({ key, participant: key.split('/')[0], source: 'person', local: false, video: true, ...more });

const me = tile('me', { local: true });
const bob = tile('bob');
const carol = tile('carol');
const dave = tile('dave', { video: false });
const bobScreen = tile('bob/screen1', { source: 'screen' });
const myScreen = tile('me/screen1', { source: 'screen', local: true });

test('auto without a screen share is a grid of everyone', () => {
  const a = arrange([me, bob, carol], { mode: 'auto', pinned: null, speaker: 'carol' });
  assert.equal(a.layout, 'grid');
  assert.equal(a.main, null);
  assert.deepEqual(a.places, { me: 'grid', bob: 'grid', carol: 'grid' });
});

test('auto with someone else\'s screen share shows it large, the rest as thumbnails', () => {
  const a = arrange([me, bob, carol, bobScreen], { mode: 'auto', pinned: null, speaker: 'carol' });
  assert.equal(a.layout, 'speaker');
  assert.equal(a.main, 'bob/screen1');
  assert.deepEqual(a.places, { me: 'thumb', bob: 'thumb', carol: 'thumb', 'bob/screen1': 'main' });
});

test('auto with only my own share stays a grid: my screen is no news to me', () => {
  assert.equal(arrange([me, bob, myScreen], { mode: 'auto', pinned: null, speaker: null }).layout, 'grid');
});

test('grid stays a grid even with a screen share', () => {
  const a = arrange([me, bob, bobScreen], { mode: 'grid', pinned: null, speaker: null });
  assert.equal(a.layout, 'grid');
  assert.equal(Object.values(a.places).every((p) => p === 'grid'), true);
});

test('a pinned tile is the large one in any mode; the others are thumbnails', () => {
  for (const mode of /** @type {const} */ (['auto', 'grid', 'speaker'])) {
    const a = arrange([me, bob, carol, bobScreen], { mode, pinned: 'carol', speaker: 'bob' });
    assert.equal(a.layout, 'speaker', mode);
    assert.equal(a.main, 'carol', mode);
    assert.equal(a.pinned, 'carol', mode);
    assert.deepEqual(a.places, { me: 'thumb', bob: 'thumb', carol: 'main', 'bob/screen1': 'thumb' }, mode);
  }
});

test('a pin on a tile that is gone falls back to the mode', () => {
  const a = arrange([me, bob], { mode: 'auto', pinned: 'carol', speaker: null });
  assert.equal(a.layout, 'grid');
  assert.equal(a.pinned, null);
});

test('speaker view: a share, then the active speaker, then a remote video, then anyone', () => {
  assert.equal(pickMain([me, bob, carol, myScreen, bobScreen], 'carol'), 'bob/screen1');
  assert.equal(pickMain([me, bob, carol, myScreen], 'carol'), 'me/screen1');
  assert.equal(pickMain([me, bob, carol], 'carol'), 'carol');
  assert.equal(pickMain([me, dave, bob], 'me'), 'bob');
  assert.equal(pickMain([me, dave], null), 'dave');
  assert.equal(pickMain([me], null), 'me');
  assert.equal(pickMain([], null), null);
  assert.equal(arrange([me, bob, carol], { mode: 'speaker', pinned: null, speaker: 'carol' }).main, 'carol');
});

test('speaker view: an encoder\'s picture (the operating field) comes after a share and before the active speaker', () => {
  const tower = tile('encoder-e1', { encoder: true });
  const connecting = tile('encoder-e2', { encoder: true, video: false });
  // The lecturer speaks over the operating field: the field stays large.
  assert.equal(pickMain([me, bob, tower], 'bob'), 'encoder-e1');
  assert.equal(pickMain([me, bob, tower, bobScreen], 'bob'), 'bob/screen1');
  // An encoder without a picture yet is not featured: the usual rules.
  assert.equal(pickMain([me, connecting, bob], 'bob'), 'bob');
  // A teaching session's watch page (speaker layout): the field large, the lecturer a thumbnail.
  const a = arrange([bob, tower], { mode: 'speaker', pinned: null, speaker: 'bob' });
  assert.deepEqual(a.places, { bob: 'thumb', 'encoder-e1': 'main' });
  // A consultation's grid stays a grid; a pin still wins.
  assert.equal(arrange([me, bob, tower], { mode: 'auto', pinned: null, speaker: 'bob' }).layout, 'grid');
  assert.equal(arrange([me, bob, tower], { mode: 'speaker', pinned: 'bob', speaker: null }).main, 'bob');
});

test('layers: the large view and full screen get high, thumbnails low, the grid by head count', () => {
  const ctx = { remoteVideos: 4, fullscreen: false, cap: /** @type {const} */ ('high') };
  assert.equal(layerFor('main', ctx), 'high');
  assert.equal(layerFor('thumb', ctx), 'low');
  assert.equal(layerFor('thumb', { ...ctx, fullscreen: true }), 'high');
  assert.equal(layerFor('grid', { ...ctx, fullscreen: true }), 'high');
  assert.equal(layerFor('grid', { ...ctx, remoteVideos: 1 }), 'high');
  assert.equal(layerFor('grid', { ...ctx, remoteVideos: 2 }), 'high');
  assert.equal(layerFor('grid', { ...ctx, remoteVideos: 4 }), 'medium');
  assert.equal(layerFor('grid', { ...ctx, remoteVideos: 6 }), 'medium');
  assert.equal(layerFor('grid', { ...ctx, remoteVideos: 7 }), 'low');
});

test('layers never go above the viewer\'s cap; audio only is off everywhere', () => {
  assert.equal(layerFor('main', { remoteVideos: 1, fullscreen: true, cap: 'medium' }), 'medium');
  assert.equal(layerFor('thumb', { remoteVideos: 1, fullscreen: false, cap: 'medium' }), 'low');
  for (const place of /** @type {const} */ (['main', 'thumb', 'grid'])) {
    assert.equal(layerFor(place, { remoteVideos: 3, fullscreen: true, cap: 'off' }), 'off', place);
  }
});

test('grid shape: one tile fills, two side by side when wide, stacked when tall', () => {
  assert.deepEqual(pick(gridShape(1, 900, 500)), { cols: 1, rows: 1 });
  assert.deepEqual(pick(gridShape(2, 900, 500)), { cols: 2, rows: 1 });
  assert.deepEqual(pick(gridShape(2, 700, 900)), { cols: 1, rows: 2 });
  assert.deepEqual(pick(gridShape(4, 900, 500)), { cols: 2, rows: 2 });
  assert.deepEqual(pick(gridShape(6, 1600, 600)), { cols: 3, rows: 2 });
  assert.deepEqual(pick(gridShape(0, 900, 500)), { cols: 1, rows: 1 });
});

test('grid shape: each tile as large as the stage allows, inside the stage', () => {
  for (const [w, h] of [[900, 580], [650, 520], [730, 430], [1200, 700], [400, 900]]) {
    for (let n = 1; n <= 12; n++) {
      const g = gridShape(n, w, h);
      assert.ok(g.cols * g.rows >= n, `${n} in ${w}x${h}: ${g.cols}x${g.rows} has room`);
      assert.ok(g.cols * g.tileWidth + (g.cols - 1) * 8 <= w + 0.01, `${n} in ${w}x${h}: fits across`);
      assert.ok(g.rows * g.tileHeight + (g.rows - 1) * 8 <= h + 0.01, `${n} in ${w}x${h}: fits down`);
      // No other column count gives larger tiles.
      for (let cols = 1; cols <= n; cols++) {
        const rows = Math.ceil(n / cols);
        const other = Math.min((w - (cols - 1) * 8) / cols, ((h - (rows - 1) * 8) / rows) * 16 / 9);
        assert.ok(other <= g.tileWidth + 0.5, `${n} in ${w}x${h}: ${cols} columns would give ${other} > ${g.tileWidth}`);
      }
    }
  }
});

/** @param {{ cols: number, rows: number }} g */
function pick(g) {
  return { cols: g.cols, rows: g.rows };
}
