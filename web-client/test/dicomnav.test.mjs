// The DICOM viewer's rules (js/office/dicomnav.js): positions over images and frames, steps,
// keys and the wheel, the window choice and the address of each rendered image, and the store
// that keeps only the last few images.
//   node --test web-client/test/*.test.mjs   (scripts/e2e.sh runs it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PAGE_STEP, Recent, WHEEL_PIXELS, WINDOWS, customWindow, imageUrl, indexOf, keyMove, moveFrom, neighbours, positionAt, samePosition,
  tagsUrl, total, wheelSteps, windowParams, windowValues,
} from '../js/office/dicomnav.js';

/** @param {number[]} frames @returns {import('../js/office/dicomnav.js').DicomImage[]} */
const series = (frames) => frames.map((f, i) => ({ file: i, frames: f, rows: 64, columns: 64 }));

test('positions run through every frame of every image', () => {
  const s = series([1, 3, 1]);
  assert.equal(total(s), 5);
  assert.deepEqual([0, 1, 2, 3, 4].map((i) => positionAt(s, i)), [
    { image: 0, frame: 0 }, { image: 1, frame: 0 }, { image: 1, frame: 1 }, { image: 1, frame: 2 }, { image: 2, frame: 0 },
  ]);
  for (let i = 0; i < 5; i++) assert.equal(indexOf(s, positionAt(s, i)), i);
  // Clamped at both ends; a nonsense index is the first.
  assert.deepEqual(positionAt(s, 99), { image: 2, frame: 0 });
  assert.deepEqual(positionAt(s, -3), { image: 0, frame: 0 });
  assert.deepEqual(positionAt(s, Number.NaN), { image: 0, frame: 0 });
  // An image that claims no frames still shows one; an empty series stays at the start.
  assert.equal(total(series([0, 2])), 3);
  assert.deepEqual(positionAt([], 4), { image: 0, frame: 0 });
});

test('a step goes through the frames, then on to the next image, and stops at the ends', () => {
  const s = series([1, 3, 1]);
  assert.deepEqual(moveFrom(s, { image: 0, frame: 0 }, 1), { image: 1, frame: 0 });
  assert.deepEqual(moveFrom(s, { image: 1, frame: 2 }, 1), { image: 2, frame: 0 });
  assert.deepEqual(moveFrom(s, { image: 2, frame: 0 }, -1), { image: 1, frame: 2 });
  assert.deepEqual(moveFrom(s, { image: 2, frame: 0 }, 1), { image: 2, frame: 0 });
  assert.deepEqual(moveFrom(s, { image: 0, frame: 0 }, -1), { image: 0, frame: 0 });
  assert.deepEqual(moveFrom(s, { image: 1, frame: 1 }, 'first'), { image: 0, frame: 0 });
  assert.deepEqual(moveFrom(s, { image: 0, frame: 0 }, 'last'), { image: 2, frame: 0 });
  assert.deepEqual(moveFrom(series(Array(30).fill(1)), { image: 3, frame: 0 }, PAGE_STEP), { image: 13, frame: 0 });
  assert.equal(samePosition({ image: 1, frame: 2 }, { image: 1, frame: 2 }), true);
  assert.equal(samePosition({ image: 1, frame: 2 }, { image: 1, frame: 1 }), false);
});

test('keys: down and right go on, up and left back, pages, the ends', () => {
  assert.deepEqual(['ArrowDown', 'ArrowRight', 'ArrowUp', 'ArrowLeft', 'PageDown', 'PageUp', 'Home', 'End', 'a', 'Enter'].map(keyMove),
    [1, 1, -1, -1, PAGE_STEP, -PAGE_STEP, 'first', 'last', null, null]);
});

test('the wheel: a notch is a step, a trackpad stream one step per WHEEL_PIXELS', () => {
  // Mouse notches (about 100 px each in Chromium): one step each, either way.
  let r = wheelSteps(0, 100, 0);
  assert.equal(r.steps, 1);
  r = wheelSteps(r.carry, 100, 0);
  assert.equal(r.steps, 1);
  r = wheelSteps(r.carry, -100, 0);
  assert.equal(r.steps, -1);
  // A trackpad's small turns: the first moves at once, then one step per WHEEL_PIXELS.
  let carry = 0;
  let steps = 0;
  for (let i = 0; i < 60; i++) ({ steps: r.steps, carry } = wheelSteps(carry, 5, 0), steps += r.steps);
  assert.equal(steps, 1 + Math.floor((60 * 5 - 1) / WHEEL_PIXELS));
  // A big flick moves several.
  assert.equal(wheelSteps(0, 450, 0).steps, 5);
  // Lines and pages: one step per turn.
  assert.deepEqual(wheelSteps(37, 3, 1), { steps: 1, carry: 0 });
  assert.deepEqual(wheelSteps(0, -1, 2), { steps: -1, carry: 0 });
  assert.deepEqual(wheelSteps(12, 0, 0), { steps: 0, carry: 12 });
});

test('a custom window needs a centre and a width above zero', () => {
  assert.deepEqual(customWindow('40', '400'), { name: 'custom', center: 40, width: 400 });
  assert.deepEqual(customWindow(' -600 ', '1500'), { name: 'custom', center: -600, width: 1500 });
  assert.equal(customWindow('', '400'), null);
  assert.equal(customWindow('40', '0'), null);
  assert.equal(customWindow('40', '-5'), null);
  assert.equal(customWindow('abc', '400'), null);
  assert.equal(customWindow('40', 'Infinity'), null);
});

test('window parameters and image addresses: one address per picture', () => {
  const base = '/v1/consultations/c1/attachments/a1/images';
  assert.deepEqual(WINDOWS, ['own', 'lung', 'soft_tissue', 'bone', 'brain', 'custom']);
  assert.deepEqual(windowParams({ name: 'own' }), []);
  assert.deepEqual(windowParams({ name: 'bone' }), [['window', 'bone']]);
  assert.deepEqual(windowParams({ name: 'custom', center: -600, width: 1500 }), [['window', 'custom'], ['center', '-600'], ['width', '1500']]);
  assert.equal(imageUrl(base, { image: 0, frame: 0 }, { name: 'own' }), `${base}/0`);
  assert.equal(imageUrl(base, { image: 2, frame: 0 }, { name: 'lung' }), `${base}/2?window=lung`);
  assert.equal(imageUrl(base, { image: 2, frame: 3 }, { name: 'soft_tissue' }), `${base}/2?frame=3&window=soft_tissue`);
  assert.equal(imageUrl(base, { image: 1, frame: 0 }, { name: 'custom', center: 40.5, width: 80 }), `${base}/1?window=custom&center=40.5&width=80`);
  assert.equal(imageUrl(base, { image: 5, frame: 0 }, { name: 'own' }, true), `${base}/5?thumb=true`);
  assert.equal(tagsUrl(base, 4), `${base}/4/tags`);
});

test('the centre and width a choice stands for', () => {
  const presets = [{ name: 'bone', center: 400, width: 1800 }, { name: 'brain', center: 40, width: 80 }];
  const image = { file: 0, frames: 1, rows: 2, columns: 2, window: { center: 50, width: 350 } };
  assert.deepEqual(windowValues({ name: 'bone' }, presets, image), { center: 400, width: 1800 });
  assert.deepEqual(windowValues({ name: 'own' }, presets, image), { center: 50, width: 350 });
  assert.equal(windowValues({ name: 'own' }, presets, { ...image, window: null }), null);
  assert.equal(windowValues({ name: 'lung' }, presets, image), null);
  assert.deepEqual(windowValues({ name: 'custom', center: 1, width: 2 }, presets, image), { center: 1, width: 2 });
});

test('the neighbours worth fetching first: the next, then the previous', () => {
  const s = series([1, 2, 1]);
  assert.deepEqual(neighbours(s, { image: 1, frame: 0 }), [{ image: 1, frame: 1 }, { image: 0, frame: 0 }]);
  assert.deepEqual(neighbours(s, { image: 0, frame: 0 }), [{ image: 1, frame: 0 }]);
  assert.deepEqual(neighbours(s, { image: 2, frame: 0 }), [{ image: 1, frame: 1 }]);
  assert.deepEqual(neighbours(series([1]), { image: 0, frame: 0 }), []);
});

test('the store keeps the last few, drops the oldest, never the one shown', () => {
  /** @type {string[]} */
  const dropped = [];
  let shown = /** @type {string | null} */ (null);
  const r = new Recent(2, (v) => dropped.push(v), () => shown);
  r.set('a', 'A');
  r.set('b', 'B');
  assert.equal(r.get('a'), 'A'); // a is now the most recent
  r.set('c', 'C');
  assert.deepEqual(dropped, ['B']);
  assert.equal(r.has('b'), false);
  // The shown one stays even when it is the oldest; the next oldest goes.
  shown = 'a';
  r.get('c');
  r.set('d', 'D');
  assert.deepEqual(dropped, ['B', 'C']);
  assert.equal(r.has('a'), true);
  // Replacing a value drops the old one.
  r.set('d', 'D2');
  assert.deepEqual(dropped, ['B', 'C', 'D']);
  r.clear();
  assert.deepEqual(dropped.sort(), ['A', 'B', 'C', 'D', 'D2']);
  assert.equal(r.get('a'), undefined);
});

test('the patient tags in words: names, dates, sex', async () => {
  const { dicomDate, personName, sexOf } = await import('../js/office/dicomnav.js');
  assert.equal(personName('WANG^XIAOMING'), 'WANG XIAOMING');
  assert.equal(personName('WANG^XIAOMING^^^'), 'WANG XIAOMING');
  assert.equal(personName('WANG^XIAOMING=王^小明'), 'WANG XIAOMING / 王小明');
  assert.equal(personName('=欧阳^小明'), '欧阳小明');
  assert.equal(personName(null), '');
  assert.equal(dicomDate('19580402'), '1958-04-02');
  assert.equal(dicomDate('1958.04.02'), '1958-04-02');
  assert.equal(dicomDate('1958'), '1958');
  assert.equal(dicomDate(undefined), '');
  assert.deepEqual(['M', 'f', 'O', ' ', null].map(sexOf), ['male', 'female', 'unknown', null, null]);
});
