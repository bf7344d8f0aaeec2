// The PDF view's pure rules (js/pdfview.js) under plain node, pdf.js not loaded: the page kept
// within the document, the scale that fits a page in a box, and the scale a page is rendered
// at (stepped, so that a zoom does not redraw it at every notch, and capped).
//   node --test web-client/test/*.test.mjs   (scripts/e2e.sh runs it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_PIXELS, MAX_SIDE, PdfError, clampPage, fitScale, pixelSize, renderScale } from '../js/pdfview.js';

const near = (/** @type {number} */ a, /** @type {number} */ b, eps = 1e-9) => assert.ok(Math.abs(a - b) <= eps, `${a} ≈ ${b}`);
/** An A4 page in points. */
const A4 = { width: 595, height: 842 };

test('a page index stays within the document, whatever a view names', () => {
  assert.equal(clampPage(0, 3), 0);
  assert.equal(clampPage(2, 3), 2);
  assert.equal(clampPage(3, 3), 2);
  assert.equal(clampPage(99, 3), 2);
  assert.equal(clampPage(-1, 3), 0);
  assert.equal(clampPage(1.7, 3), 1);
  assert.equal(clampPage(Number.NaN, 3), 0);
  assert.equal(clampPage(/** @type {any} */ ('2'), 3), 2);
  // No pages known yet: the first.
  assert.equal(clampPage(5, 0), 0);
  assert.equal(clampPage(5, Number.NaN), 0);
});

test('a page fits whole in a box, or across its width', () => {
  // A4 in a wide box: the height decides.
  near(fitScale(A4, { width: 1200, height: 421 }), 0.5);
  // In a tall one: the width.
  near(fitScale(A4, { width: 297.5, height: 2000 }), 0.5);
  // Across the width, however short the box.
  near(fitScale(A4, { width: 1190, height: 10 }, 'width'), 2);
  near(fitScale(A4, { width: 1190, height: 0 }, 'width'), 2);
  assert.equal(fitScale(A4, { width: 0, height: 500 }), 0);
  assert.equal(fitScale(A4, { width: 500, height: 0 }), 0);
  assert.equal(fitScale({ width: 0, height: 842 }, { width: 500, height: 500 }), 0);
});

test('the render scale is the needed one rounded up to a power of √2, times the screen\'s density', () => {
  // Exactly a step: kept.
  near(renderScale(A4, 1), 1);
  near(renderScale(A4, 2), 2);
  // Between steps: the next one up, never less than asked.
  near(renderScale(A4, 1.1), 1.4142);
  near(renderScale(A4, 1.5), 2);
  near(renderScale(A4, 0.6), 0.7071);
  for (const s of [0.3, 0.77, 1.01, 1.9, 2.3]) {
    const r = renderScale(A4, s);
    assert.ok(r >= s - 1e-4 && r <= s * Math.SQRT2 + 1e-4, `${s} → ${r}`);
  }
  // A dense screen draws twice the pixels.
  near(renderScale(A4, 1, 2), 2);
  near(renderScale(A4, 0.75, 2), 2);
  // Small changes (a drag of the window's edge, a zoom within a step) give the same scale: no redraw.
  assert.equal(renderScale(A4, 1.2), renderScale(A4, 1.4));
  // Nothing to fit into (a hidden panel): the page's own size.
  assert.equal(renderScale(A4, 0), 1);
  assert.equal(renderScale(A4, Number.NaN), 1);
  assert.equal(renderScale({ width: 0, height: 0 }, 2), 1);
});

test('the render scale is capped: pixels in all and on the longer side', () => {
  // A 16× zoom of an A4 page fitted to 1000 px would be tens of millions of pixels.
  const s = renderScale(A4, 16 * 1000 / 842);
  const px = pixelSize(A4, s);
  assert.ok(px.width * px.height <= MAX_PIXELS * 1.001, `${px.width}×${px.height}`);
  assert.ok(px.width * px.height > MAX_PIXELS * 0.99, 'the cap is used, not undershot');
  // A long strip: its longer side decides.
  const strip = { width: 100, height: 20000 };
  const t = renderScale(strip, 4);
  assert.ok(pixelSize(strip, t).height <= MAX_SIDE);
  near(t, MAX_SIDE / 20000, 1e-4);
  // Own caps.
  near(renderScale(A4, 8, 1, { maxPixels: 595 * 842 }), 1);
  near(renderScale(A4, 8, 1, { maxSide: 421 }), 0.5);
});

test('a rendered page has whole pixels, at least one', () => {
  assert.deepEqual(pixelSize(A4, 1), { width: 595, height: 842 });
  assert.deepEqual(pixelSize(A4, 1.4142), { width: 841, height: 1191 });
  assert.deepEqual(pixelSize({ width: 0.1, height: 0.1 }, 1), { width: 1, height: 1 });
});

test('a PDF that cannot be shown carries the code its text is found by', () => {
  const e = new PdfError('pdf_password', 'No password given');
  assert.equal(e.code, 'pdf_password');
  assert.equal(e.name, 'PdfError');
  assert.ok(e instanceof Error);
});
