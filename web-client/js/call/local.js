// What this page sends: microphone and camera on/off, another camera, a second camera as its
// own track, screen sharing. Functions of the CallRoom they act on.
import { t } from '../i18n.js';
import { cameraConstraints, errorName, listDevices } from './devices.js';

/** @typedef {import('./room.js').CallRoom} CallRoom */

/** @param {boolean} muted */
export function setMic(/** @type {CallRoom} */ room, muted) {
  const track = room.localTracks.get('mic');
  room.micMuted = muted;
  if (track) track.enabled = !muted;
  if (track && room.media?.has('mic')) room.socket?.request({ type: 'mute', track: 'mic', muted }).catch(() => {});
  room.renderControls();
  room.render();
}

/** @param {boolean} off */
export function setCamera(/** @type {CallRoom} */ room, off) {
  const track = room.localTracks.get('cam');
  room.camMuted = off;
  if (track) track.enabled = !off;
  if (track && room.media?.has('cam')) room.socket?.request({ type: 'mute', track: 'cam', muted: off }).catch(() => {});
  room.renderControls();
  room.render();
}

/** Moves the main camera to the next camera device. */
export async function switchCamera(/** @type {CallRoom} */ room) {
  const { cameras } = await listDevices();
  const current = room.localTracks.get('cam');
  if (!current || cameras.length < 2) { room.say(() => t('call.notice.one_camera')); return; }
  const i = cameras.findIndex((d) => d.deviceId === current.getSettings().deviceId);
  const next = cameras[(i + 1) % cameras.length];
  const s = await navigator.mediaDevices.getUserMedia({ video: cameraConstraints(next.deviceId) });
  const track = s.getVideoTracks()[0];
  track.enabled = !room.camMuted;
  await room.media?.replaceTrack('cam', track);
  room.local.removeTrack(current);
  current.stop();
  room.local.addTrack(track);
  room.localTracks.set('cam', track);
  room.render();
}

/** Publishes one more camera as its own track (cam2, cam3…): a second view of the patient or the field. */
export async function addCamera(/** @type {CallRoom} */ room) {
  const { cameras } = await listDevices();
  const used = new Set([...room.localTracks.values()].filter((tr) => tr.kind === 'video').map((tr) => tr.getSettings().deviceId));
  const free = cameras.find((d) => !used.has(d.deviceId)) ?? cameras[0];
  const s = await navigator.mediaDevices.getUserMedia({ video: cameraConstraints(free?.deviceId) });
  let n = 2;
  while (room.localTracks.has(`cam${n}`)) n++;
  const name = `cam${n}`;
  const track = s.getVideoTracks()[0];
  room.localTracks.set(name, track);
  if (room.media && room.me?.can_publish) {
    room.media.addTrack(name, track, { simulcast: true });
    await room.media.negotiatePublish();
  }
  room.render();
}

/** Stops every extra camera. */
export async function removeCameras(/** @type {CallRoom} */ room) {
  for (const name of [...room.localTracks.keys()].filter((n) => /^cam\d+$/.test(n))) {
    await room.media?.removeTrack(name);
    room.localTracks.get(name)?.stop();
    room.localTracks.delete(name);
  }
  room.renderControls();
  room.render();
}

export async function toggleScreen(/** @type {CallRoom} */ room) {
  const current = [...room.localTracks.keys()].find((n) => n.startsWith('screen'));
  if (current) {
    await room.stopScreen(current);
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
  } catch (e) {
    if (errorName(e) !== 'NotAllowedError') room.say(() => t('call.error.screen', { name: errorName(e) }), 'error');
    return;
  }
  const track = stream.getVideoTracks()[0];
  // A new name for every share: the server forgets a track once it is unpublished.
  const name = `screen${++room.screenSeq}`;
  room.localTracks.set(name, track);
  track.addEventListener('ended', () => { room.stopScreen(name).catch(() => {}); });
  if (room.media && room.me?.can_publish) {
    room.media.addTrack(name, track, { simulcast: false, hint: 'detail' });
    await room.media.negotiatePublish();
  }
  room.layout = 'speaker';
  room.pinned = null;
  room.renderControls();
  room.render();
}

/** @param {string} name */
export async function stopScreen(/** @type {CallRoom} */ room, name) {
  const track = room.localTracks.get(name);
  if (!track) return;
  room.localTracks.delete(name);
  track.stop();
  await room.media?.removeTrack(name);
  room.renderControls();
  room.render();
}
