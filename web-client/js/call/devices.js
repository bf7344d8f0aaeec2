// Cameras, microphones and speakers: listing, opening with fallbacks, and a level meter.

/** @typedef {{ cameraId?: string, micId?: string, speakerId?: string, video: boolean, audio: boolean }} DeviceChoice */

/** Whether <audio>.setSinkId exists (Chromium; not Safari/Firefox on every platform). */
export const canPickSpeaker = typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype;

/**
 * The devices by kind. Labels are empty until the user has granted access once.
 * @returns {Promise<{ cameras: MediaDeviceInfo[], mics: MediaDeviceInfo[], speakers: MediaDeviceInfo[] }>}
 */
export async function listDevices() {
  const all = navigator.mediaDevices ? await navigator.mediaDevices.enumerateDevices() : [];
  return {
    cameras: all.filter((d) => d.kind === 'videoinput'),
    mics: all.filter((d) => d.kind === 'audioinput'),
    speakers: all.filter((d) => d.kind === 'audiooutput'),
  };
}

/** Camera constraints: 640x360 keeps three simulcast layers cheap on small machines and links. */
export function cameraConstraints(/** @type {string | undefined} */ deviceId) {
  /** @type {MediaTrackConstraints} */
  const c = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 24 } };
  if (deviceId) c.deviceId = { exact: deviceId };
  return c;
}

/**
 * Opens what was asked for; when the whole request fails, tries the parts on their own so that
 * a denied or missing camera still leaves the microphone (and the other way round).
 * @param {DeviceChoice} want
 * @returns {Promise<{ stream: MediaStream, videoError: string | null, audioError: string | null }>}
 */
export async function openMedia(want) {
  const stream = new MediaStream();
  let videoError = null;
  let audioError = null;
  if (!navigator.mediaDevices?.getUserMedia) {
    return { stream, videoError: want.video ? 'NotSupportedError' : null, audioError: want.audio ? 'NotSupportedError' : null };
  }
  const audio = want.audio ? (want.micId ? { deviceId: { exact: want.micId } } : true) : false;
  const video = want.video ? cameraConstraints(want.cameraId) : false;
  if (audio && video) {
    try {
      const s = await navigator.mediaDevices.getUserMedia({ audio, video });
      s.getTracks().forEach((t) => stream.addTrack(t));
      return { stream, videoError, audioError };
    } catch {
      // Fall through: find out which of the two is refused.
    }
  }
  if (audio) {
    try {
      (await navigator.mediaDevices.getUserMedia({ audio })).getTracks().forEach((t) => stream.addTrack(t));
    } catch (e) {
      audioError = errorName(e);
    }
  }
  if (video) {
    try {
      (await navigator.mediaDevices.getUserMedia({ video })).getTracks().forEach((t) => stream.addTrack(t));
    } catch (e) {
      videoError = errorName(e);
    }
  }
  return { stream, videoError, audioError };
}

/**
 * Opens the extra cameras a reload brings back (saved.js), each on its own device. One that
 * cannot be opened (unplugged since, taken by another program) is left out rather than
 * replaced by another camera, which would only show the main camera's picture twice.
 * @param {{ name: string, deviceId?: string }[]} cameras
 * @returns {Promise<[string, MediaStreamTrack][]>} name → track, in the order given
 */
export async function openCameras(cameras) {
  /** @type {[string, MediaStreamTrack][]} */
  const out = [];
  if (!navigator.mediaDevices?.getUserMedia) return out;
  for (const cam of cameras) {
    try {
      const s = await navigator.mediaDevices.getUserMedia({ video: cameraConstraints(cam.deviceId) });
      const track = s.getVideoTracks()[0];
      if (track) out.push([cam.name, track]);
    } catch { /* left out, see above */ }
  }
  return out;
}

/** @param {unknown} e */
export function errorName(e) {
  return e && typeof e === 'object' && 'name' in e ? String(e.name) : 'Error';
}

/** @param {MediaStream | null | undefined} stream */
export function stopStream(stream) {
  stream?.getTracks().forEach((t) => t.stop());
}

/** @type {AudioContext | null} */
let sharedContext = null;
/** One AudioContext for the page: browsers limit how many may exist. */
export function audioContext() {
  sharedContext ??= new AudioContext();
  if (sharedContext.state === 'suspended') sharedContext.resume().catch(() => {});
  return sharedContext;
}

/**
 * Measures the level (RMS, 0–1) of an audio track with an AnalyserNode.
 * @param {MediaStreamTrack} track
 * @returns {{ level: () => number, stop: () => void }}
 */
export function levelMeter(track) {
  const ctx = audioContext();
  const src = ctx.createMediaStreamSource(new MediaStream([track]));
  const an = ctx.createAnalyser();
  an.fftSize = 1024;
  src.connect(an);
  const buf = new Float32Array(an.fftSize);
  return {
    level() {
      an.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const x of buf) sum += x * x;
      return Math.sqrt(sum / buf.length);
    },
    stop() {
      try { src.disconnect(); } catch { /* already disconnected */ }
    },
  };
}
