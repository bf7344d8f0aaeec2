// What a reload must bring back of this page's call: which devices it sent (the main camera as
// it is now, after any "switch camera"; the extra cameras, cam2…, each with its device), the
// microphone and camera mute state, and the speaker. Kept in sessionStorage by index.js as
// JSON; pure functions here (no DOM, no storage) so that the shape and its checks run under
// plain node (web-client/test/saved.test.mjs).

/** @typedef {{ name: string, deviceId?: string }} SavedCamera an extra camera (cam2, cam3…) */

/**
 * @typedef {Object} SavedCall
 * @property {boolean} video the main camera is sent
 * @property {boolean} audio the microphone is sent
 * @property {string} [cameraId] the main camera's device
 * @property {string} [micId]
 * @property {string} [speakerId]
 * @property {boolean} micMuted
 * @property {boolean} camMuted
 * @property {SavedCamera[]} extraCameras in name order
 */

/** An extra camera's track name: cam2, cam3… (`cam` is the main camera). */
export const EXTRA_CAMERA = /^cam([2-9]|[1-9]\d+)$/;

/** How many extra cameras a reload reopens at most (a bad entry must not open dozens). */
const MAX_EXTRA = 8;

/**
 * The saved form of what the page sends now.
 * @param {{ tracks: Iterable<[string, { kind: string, deviceId?: string }]>, micMuted: boolean, camMuted: boolean, speakerId?: string }} now
 *   `tracks`: every local track by name (mic, cam, cam2…, screen1…) with its device
 * @returns {SavedCall}
 */
export function toSaved(now) {
  const list = [...now.tracks];
  const mic = list.find(([name]) => name === 'mic')?.[1];
  const cam = list.find(([name]) => name === 'cam')?.[1];
  /** @type {SavedCall} */
  const saved = {
    video: Boolean(cam),
    audio: Boolean(mic),
    micMuted: Boolean(now.micMuted),
    camMuted: Boolean(now.camMuted),
    // A screen share is not brought back: the browser asks the user again for every share.
    extraCameras: list.filter(([name, tr]) => EXTRA_CAMERA.test(name) && tr.kind === 'video')
      .map(([name, tr]) => (tr.deviceId ? { name, deviceId: tr.deviceId } : { name }))
      .sort((a, b) => cameraNumber(a.name) - cameraNumber(b.name)),
  };
  if (cam?.deviceId) saved.cameraId = cam.deviceId;
  if (mic?.deviceId) saved.micId = mic.deviceId;
  if (now.speakerId) saved.speakerId = now.speakerId;
  return saved;
}

/**
 * Reads what was saved; anything malformed (an older page's entry, a hand edit) is dropped
 * field by field rather than trusted. null when there is no usable entry.
 * @param {string | null} text
 * @returns {SavedCall | null}
 */
export function parseSaved(text) {
  /** @type {unknown} */
  let raw;
  try { raw = JSON.parse(text ?? 'null'); } catch { return null; }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return null;
  const o = /** @type {Record<string, unknown>} */ (raw);
  /** @param {unknown} v */
  const str = (v) => (typeof v === 'string' && v.length > 0 && v.length <= 512 ? v : undefined);
  /** @type {SavedCamera[]} */
  const extraCameras = [];
  const seen = new Set();
  for (const c of Array.isArray(o.extraCameras) ? o.extraCameras : []) {
    if (!c || typeof c !== 'object') continue;
    const name = /** @type {Record<string, unknown>} */ (c).name;
    if (typeof name !== 'string' || !EXTRA_CAMERA.test(name) || seen.has(name)) continue;
    seen.add(name);
    const deviceId = str(/** @type {Record<string, unknown>} */ (c).deviceId);
    extraCameras.push(deviceId ? { name, deviceId } : { name });
  }
  extraCameras.sort((a, b) => cameraNumber(a.name) - cameraNumber(b.name));
  /** @type {SavedCall} */
  const saved = {
    video: o.video === true,
    audio: o.audio === true,
    micMuted: o.micMuted === true,
    camMuted: o.camMuted === true,
    extraCameras: extraCameras.slice(0, MAX_EXTRA),
  };
  for (const k of /** @type {const} */ (['cameraId', 'micId', 'speakerId'])) {
    const v = str(o[k]);
    if (v) saved[k] = v;
  }
  return saved;
}

/** cam2 → 2. @param {string} name */
function cameraNumber(name) {
  return Number(name.slice(3));
}
