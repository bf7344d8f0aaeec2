// The speaker test's sound (pure: no DOM, no Web Audio; web-client/test/tone.test.mjs): the
// samples of a short sine tone with soft ends. precall.js plays them through an <audio>
// element fed by Web Audio, because only a media element can be sent to the chosen output
// device (setSinkId), and the page's content security policy (media from 'self' only) rules out
// a blob: or data: URL for the element's source; a MediaStream is not a URL.

/**
 * @param {{ hz?: number, ms?: number, rate?: number, volume?: number }} [opts]
 *   frequency, length, sample rate (the AudioContext's), peak amplitude (0–1)
 * @returns {Float32Array<ArrayBuffer>} mono samples in −volume…volume
 */
export function toneSamples({ hz = 660, ms = 800, rate = 48000, volume = 0.4 } = {}) {
  const n = Math.max(1, Math.round((rate * ms) / 1000));
  const out = new Float32Array(n);
  // 20 ms fades at both ends: a tone cut off mid-wave clicks.
  const fade = Math.max(1, Math.round(rate * 0.02));
  for (let i = 0; i < n; i++) {
    const env = Math.max(0, Math.min(1, i / fade, (n - 1 - i) / fade));
    out[i] = Math.sin((2 * Math.PI * hz * i) / rate) * volume * env;
  }
  return out;
}
