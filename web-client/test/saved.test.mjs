// What a reload brings back of a call (js/call/saved.js) under plain node.
//   node --test web-client/test/*.test.mjs   (scripts/e2e.sh runs it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSaved, toSaved } from '../js/call/saved.js';

test('toSaved: the main camera as it is now, extra cameras with their devices, the mute state', () => {
  const saved = toSaved({
    tracks: [
      ['mic', { kind: 'audio', deviceId: 'mic-1' }],
      ['cam', { kind: 'video', deviceId: 'camera-b' }],
      ['cam10', { kind: 'video', deviceId: 'camera-d' }],
      ['cam2', { kind: 'video', deviceId: 'camera-a' }],
      ['screen1', { kind: 'video', deviceId: 'screen' }],
      ['cam3', { kind: 'video' }],
    ],
    micMuted: true,
    camMuted: false,
    speakerId: 'out-2',
  });
  assert.deepEqual(saved, {
    video: true, audio: true, micMuted: true, camMuted: false,
    // In number order; a screen share is not brought back; a device the browser did not name stays unnamed.
    extraCameras: [{ name: 'cam2', deviceId: 'camera-a' }, { name: 'cam3' }, { name: 'cam10', deviceId: 'camera-d' }],
    cameraId: 'camera-b', micId: 'mic-1', speakerId: 'out-2',
  });
});

test('toSaved: listening only saves nothing to open', () => {
  assert.deepEqual(toSaved({ tracks: [], micMuted: false, camMuted: false }), { video: false, audio: false, micMuted: false, camMuted: false, extraCameras: [] });
});

test('parseSaved reads what toSaved wrote', () => {
  const saved = toSaved({ tracks: [['mic', { kind: 'audio', deviceId: 'm' }], ['cam', { kind: 'video', deviceId: 'c' }], ['cam2', { kind: 'video', deviceId: 'c2' }]], micMuted: false, camMuted: true });
  assert.deepEqual(parseSaved(JSON.stringify(saved)), saved);
});

test('parseSaved: an older page\'s entry (no mute, no extra cameras) still restores its devices', () => {
  assert.deepEqual(parseSaved(JSON.stringify({ video: true, audio: true, cameraId: 'c', micId: 'm', speakerId: 's' })),
    { video: true, audio: true, micMuted: false, camMuted: false, extraCameras: [], cameraId: 'c', micId: 'm', speakerId: 's' });
});

test('parseSaved drops what it cannot trust, field by field', () => {
  for (const bad of [null, '', 'not json', '[]', '"x"', '42']) assert.equal(parseSaved(bad), null, String(bad));
  const odd = parseSaved(JSON.stringify({
    video: 'yes', audio: 1, micMuted: 'true', cameraId: 7, micId: '', speakerId: 'x'.repeat(600),
    extraCameras: [{ name: 'cam' }, { name: 'screen1' }, { name: 'cam2', deviceId: 5 }, { name: 'cam2', deviceId: 'dup' }, 'cam4', null, { name: 'cam01' }],
  }));
  assert.deepEqual(odd, { video: false, audio: false, micMuted: false, camMuted: false, extraCameras: [{ name: 'cam2' }] });
  // A flood of cameras is cut short.
  const many = parseSaved(JSON.stringify({ extraCameras: Array.from({ length: 30 }, (_, i) => ({ name: `cam${i + 2}` })) }));
  assert.equal(many?.extraCameras.length, 8);
  assert.equal(many?.extraCameras[0].name, 'cam2');
});
