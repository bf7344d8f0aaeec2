// The speaker test's tone (js/call/tone.js) under plain node.
//   node --test web-client/test/*.test.mjs   (scripts/e2e.sh runs it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toneSamples } from '../js/call/tone.js';

test('as many samples as the length asks for, at the rate given', () => {
  assert.equal(toneSamples({ ms: 800, rate: 48000 }).length, 38400);
  assert.equal(toneSamples({ ms: 500, rate: 8000 }).length, 4000);
  assert.equal(toneSamples({ ms: 0, rate: 8000 }).length, 1);
});

test('the tone is audible, at its pitch, within its volume, and fades in and out (no click)', () => {
  const s = toneSamples({ hz: 500, ms: 400, rate: 8000, volume: 0.5 });
  let peak = 0;
  let crossings = 0;
  for (let i = 0; i < s.length; i++) {
    peak = Math.max(peak, Math.abs(s[i]));
    if (i && Math.sign(s[i]) !== Math.sign(s[i - 1]) && s[i] !== 0) crossings++;
  }
  assert.ok(peak > 0.45 && peak <= 0.5 + 1e-6, `peak ${peak}`);
  // 500 Hz for 0.4 s: about 400 zero crossings.
  assert.ok(crossings > 380 && crossings < 420, `crossings ${crossings}`);
  assert.equal(s[0], 0);
  assert.ok(Math.abs(s[s.length - 1]) < 1e-6);
  assert.ok(Math.abs(s[10]) < 0.5 * 0.1, 'the first samples are faded in');
});
