// The case panel's rules (js/call/caseview.js) under plain node: where a shared view puts the
// image in viewports of different sizes, image ↔ viewport points, pan and zoom, stepping a
// series, the window's address, the pacing of what goes out, and the marks' geometry.
//   node --test web-client/test/*.test.mjs   (scripts/e2e.sh runs it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_LINE_POINTS, PALETTE, Pacer, arrowHead, attachmentPath, clampCenter, cleanView, colorOf, customWindow, firstView, fitScale,
  imagePath, meantMark, panBy, place, positionOf, positions, samePicture, sameView, simplifyLine, stepView, toImage, toViewport,
  wheelSteps, windowOf, withWindow, withZoom, zoomBy,
} from '../js/call/caseview.js';

const near = (/** @type {number} */ a, /** @type {number} */ b, eps = 1e-9) => assert.ok(Math.abs(a - b) <= eps, `${a} ≈ ${b}`);
const img = { width: 512, height: 256 };

test('zoom 1 fits the whole image, centred, in any viewport', () => {
  const v = firstView('a1');
  // Wide viewport: the height limits.
  const wide = place(v, img, { width: 1000, height: 200 });
  near(wide.scale, 200 / 256);
  near(wide.x, (1000 - 512 * wide.scale) / 2);
  near(wide.y, 0);
  // Tall viewport: the width limits.
  const tall = place(v, img, { width: 256, height: 600 });
  near(tall.scale, 0.5);
  near(tall.x, 0);
  near(tall.y, (600 - 128) / 2);
  assert.equal(fitScale(img, { width: 0, height: 10 }), 0);
});

test('the view centre is at the middle of every viewport, at the view zoom', () => {
  const v = { ...firstView('a1'), zoom: 4, center_x: 0.3, center_y: 0.7 };
  for (const vp of [{ width: 800, height: 600 }, { width: 333, height: 900 }]) {
    const p = place(v, img, vp);
    near(p.scale, fitScale(img, vp) * 4);
    const mid = toImage(p, img, vp.width / 2, vp.height / 2);
    near(mid.x, 0.3);
    near(mid.y, 0.7);
    assert.equal(mid.inside, true);
  }
});

test('image ↔ viewport points round-trip; off the image is outside', () => {
  const vp = { width: 640, height: 480 };
  const p = place({ ...firstView('a'), zoom: 2.5, center_x: 0.4, center_y: 0.55 }, img, vp);
  for (const [fx, fy] of [[0, 0], [1, 1], [0.25, 0.8], [0.5, 0.5]]) {
    const at = toViewport(p, img, fx, fy);
    const back = toImage(p, img, at.x, at.y);
    near(back.x, fx);
    near(back.y, fy);
  }
  // Zoom 1 in a wide viewport: the letterbox at the sides is off the image.
  const fit = place(firstView('a'), img, { width: 1000, height: 200 });
  assert.equal(toImage(fit, img, 5, 100).inside, false);
  assert.equal(toImage(fit, img, 500, 100).inside, true);
  assert.equal(toImage({ x: 0, y: 0, scale: 0 }, img, 1, 1).inside, false);
});

test('the centre stays where the image covers the middle; zoom 1 is always the middle', () => {
  near(clampCenter(1, 0.1), 0.5);
  near(clampCenter(2, 0.1), 0.25);
  near(clampCenter(2, 0.9), 0.75);
  near(clampCenter(16, 0.0), 0.5 / 16);
  const v = withZoom({ ...firstView('a'), zoom: 4, center_x: 0.1, center_y: 0.95 }, 1);
  assert.deepEqual([v.zoom, v.center_x, v.center_y], [1, 0.5, 0.5]);
  assert.equal(withZoom(firstView('a'), 40).zoom, 16);
  assert.equal(withZoom(firstView('a'), 0.2).zoom, 1);
});

test('a drag moves the image with the hand; zoom about a point keeps that point under it', () => {
  const vp = { width: 800, height: 400 };
  const v = { ...firstView('a'), zoom: 4 };
  const s = fitScale(img, vp) * 4;
  // Dragging right by 100 px shows what was to the left: the centre moves left.
  const moved = panBy(v, 100, 0, img, vp);
  near(moved.center_x, 0.5 - 100 / (512 * s), 1e-5);
  near(moved.center_y, 0.5);
  // A very long drag stops at the edge.
  near(panBy(v, 1e6, -1e6, img, vp).center_x, 0.125);
  near(panBy(v, 1e6, -1e6, img, vp).center_y, 0.875);
  // Zoom 1: nothing to pan.
  assert.equal(panBy(firstView('a'), 50, 50, img, vp).center_x, 0.5);
  // Zoom about a point: the image point under it stays under it.
  const at = /** @type {[number, number]} */ ([600, 120]);
  const before = toImage(place(v, img, vp), img, ...at);
  const z = zoomBy(v, 2, img, vp, at);
  assert.equal(z.zoom, 8);
  const after = toImage(place(z, img, vp), img, ...at);
  near(after.x, before.x, 1e-4);
  near(after.y, before.y, 1e-4);
  assert.equal(zoomBy(v, 100, img, vp).zoom, 16);
});

test('a series steps through every frame of every image, held at both ends', () => {
  const images = [{ frames: 1 }, { frames: 3 }, {}];
  assert.equal(positions(images), 5);
  const v = firstView('a');
  assert.equal(positionOf(images, { image: 1, frame: 2 }), 3);
  const one = /** @type {any} */ (stepView(v, images, 1));
  assert.deepEqual([one.image, one.frame], [1, 0]);
  const three = /** @type {any} */ (stepView(v, images, 3));
  assert.deepEqual([three.image, three.frame], [1, 2]);
  const last = /** @type {any} */ (stepView(v, images, 99));
  assert.deepEqual([last.image, last.frame], [2, 0]);
  assert.equal(stepView(v, images, -1), null, 'at the first already');
  assert.equal(stepView(last, images, 1), null, 'at the last already');
  assert.equal(stepView(v, [], 1), null);
  // The rest of the view (zoom, window) goes along.
  const kept = /** @type {any} */ (stepView({ ...v, zoom: 3, window: 'bone' }, images, 1));
  assert.deepEqual([kept.zoom, kept.window], [3, 'bone']);
});

test('the wheel: pixels add up to a step, lines and pages step one', () => {
  assert.deepEqual(wheelSteps(0, 100, 0), { steps: 1, carry: 0 });
  assert.deepEqual(wheelSteps(0, -250, 0), { steps: -2, carry: -50 });
  assert.deepEqual(wheelSteps(60, 50, 0), { steps: 1, carry: 10 });
  assert.deepEqual(wheelSteps(0, 3, 1), { steps: 1, carry: 0 });
  assert.deepEqual(wheelSteps(40, -1, 2), { steps: -1, carry: 0 });
});

test('windows: presets by name, custom with centre and width, the file\'s own without', () => {
  const v = firstView('a');
  assert.equal(windowOf(v), 'own');
  const bone = withWindow(v, 'bone');
  assert.equal(bone.window, 'bone');
  const custom = withWindow(bone, 'custom', { center: -600, width: 1500 });
  assert.deepEqual([custom.window, custom.center, custom.width], ['custom', -600, 1500]);
  const own = withWindow(custom, 'own');
  assert.equal('window' in own || 'center' in own || 'width' in own, false);
  assert.equal(withWindow(v, 'custom'), v, 'custom without values changes nothing');
  assert.deepEqual(customWindow(' 40 ', '400'), { center: 40, width: 400 });
  assert.equal(customWindow('40', '0'), null);
  assert.equal(customWindow('', '400'), null);
  assert.equal(customWindow('x', '400'), null);
});

test('one image address per picture and window; the file\'s own address for a photo or PDF', () => {
  const base = '/v1/consultations/c1/attachments/a1';
  assert.equal(imagePath('c1', { ...firstView('a1'), image: 2 }), `${base}/images/2`);
  assert.equal(imagePath('c1', { ...firstView('a1'), image: 2, frame: 1, window: 'lung' }), `${base}/images/2?frame=1&window=lung`);
  assert.equal(imagePath('c1', { ...firstView('a1'), window: 'custom', center: -600, width: 1500 }), `${base}/images/0?window=custom&center=-600&width=1500`);
  // Zoom and pan do not change the picture: the same address.
  assert.equal(imagePath('c1', { ...firstView('a1'), zoom: 4, center_x: 0.2 }), `${base}/images/0`);
  assert.equal(attachmentPath('c1', 'a1', true), `${base}?inline=true`);
});

test('a view for the wire: only its own fields, in range; equal views compare equal', () => {
  const dirty = /** @type {any} */ ({ attachment: 'a1', image: 2.7, frame: -1, zoom: 40, center_x: 1.5, center_y: -0.2, window: 'lung', center: 3, width: 9, extra: 1 });
  assert.deepEqual(cleanView(dirty), { attachment: 'a1', image: 2, frame: 0, zoom: 16, center_x: 1, center_y: 0, window: 'lung' });
  assert.deepEqual(cleanView(/** @type {any} */ ({ ...firstView('a'), window: 'custom', center: 40 })), firstView('a'), 'custom without a width is dropped');
  assert.deepEqual(cleanView(/** @type {any} */ ({ ...firstView('a'), window: 'weird' })), firstView('a'));
  assert.ok(sameView({ ...firstView('a'), zoom: 2.00001 }, { ...firstView('a'), zoom: 2 }));
  assert.ok(!sameView({ ...firstView('a'), window: 'bone' }, firstView('a')));
  assert.ok(sameView(null, null));
  assert.ok(samePicture({ ...firstView('a'), zoom: 3, window: 'bone' }, firstView('a')));
  assert.ok(!samePicture({ ...firstView('a'), image: 1 }, firstView('a')));
  assert.ok(!samePicture(null, firstView('a')));
});

test('the pacer: the first at once, then at most one per interval, the latest value last', () => {
  /** @type {Pacer<number>} */
  const p = new Pacer(200);
  assert.deepEqual(p.offer(1, 1000), { send: { value: 1 }, wakeAt: null });
  assert.deepEqual(p.offer(2, 1050), { send: null, wakeAt: 1200 });
  assert.deepEqual(p.offer(3, 1100), { send: null, wakeAt: 1200 });
  assert.equal(p.ready(1150), false);
  assert.equal(p.wake(1150), null, 'too early: nothing');
  assert.deepEqual(p.wake(1200), { value: 3 }, 'only the latest goes');
  assert.equal(p.wake(1500), null, 'nothing left');
  // A drag of 60 moves a second for 2 s sends at most 11 (5 a second, the first at once).
  /** @type {Pacer<number>} */
  const drag = new Pacer(200);
  let sent = 0;
  let wakeAt = null;
  for (let t = 0; t <= 2000; t += 1000 / 60) {
    if (wakeAt !== null && t >= wakeAt) { if (drag.wake(t)) sent++; wakeAt = null; }
    const r = drag.offer(t, t);
    if (r.send) sent++;
    else wakeAt ??= r.wakeAt;
  }
  assert.ok(sent <= 11 && sent >= 9, `sent ${sent}`);
  // The end of a drag sends what waits at once; then the pace starts from there.
  assert.ok(drag.waiting);
  assert.ok(drag.flush(2001));
  assert.equal(drag.flush(2002), null);
  assert.equal(drag.offer(9, 2100).send, null);
  drag.drop();
  assert.equal(drag.wake(3000), null, 'dropped');
});

test('a free line is rounded, without repeats, and at most 256 points keeping its shape', () => {
  assert.deepEqual(simplifyLine([[0.1, 0.1], [0.1, 0.1], [0.2, 0.3]]), [[0.1, 0.1], [0.2, 0.3]]);
  assert.deepEqual(simplifyLine([[-1, 2], [0.123456, 0.5]]), [[0, 1], [0.1235, 0.5]]);
  // A long wavy stroke: thinned to the limit, its ends kept, its peaks still there.
  /** @type {[number, number][]} */
  const wave = [];
  for (let i = 0; i <= 3000; i++) wave.push([i / 3000, 0.5 + 0.3 * Math.sin(i / 100)]);
  const s = simplifyLine(wave);
  assert.ok(s.length <= MAX_LINE_POINTS && s.length > 10, `${s.length}`);
  assert.deepEqual(s[0], [0, 0.5]);
  assert.deepEqual(s.at(-1), [1, Number((0.5 + 0.3 * Math.sin(30)).toFixed(4))]);
  const peak = Math.max(...s.map((p) => p[1]));
  assert.ok(peak > 0.79, `the peak survives: ${peak}`);
  // A straight line collapses to its ends.
  /** @type {[number, number][]} */
  const straight = [];
  for (let i = 0; i <= 1000; i++) straight.push([i / 1000, i / 1000]);
  assert.equal(simplifyLine(straight).length <= MAX_LINE_POINTS, true);
});

test('marks: an arrow head at the tip, a click is not a mark, colours wrap into the palette', () => {
  const [l, r] = arrowHead([0, 0], [100, 0], 10);
  for (const p of [l, r]) {
    near(Math.hypot(p[0] - 100, p[1]), 10, 1e-9);
    assert.ok(p[0] < 100);
  }
  near(l[1], -r[1]);
  assert.equal(meantMark([10, 10], [11, 12]), false);
  assert.equal(meantMark([10, 10], [20, 10]), true);
  assert.equal(PALETTE.length, 8);
  assert.equal(colorOf(1), PALETTE[1]);
  assert.equal(colorOf(9), PALETTE[1]);
  assert.equal(colorOf(-1), PALETTE[7]);
  assert.equal(new Set(PALETTE).size, 8);
});
