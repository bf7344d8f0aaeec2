// The subscribe offer's m-lines read as room tracks (media.js roomTracksByMid): what lets the
// call hand a reused transceiver's track to the track announced again under the same id.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { roomTracksByMid } from '../js/call/media.js';

const offer = [
  'v=0', 'o=- 1 2 IN IP4 0.0.0.0', 's=-', 't=0 0', 'a=group:BUNDLE 0 1 2',
  'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=mid:0', 'a=sendonly', 'a=msid:surgeon surgeon.cam',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'a=mid:1', 'a=sendonly', 'a=msid:surgeon surgeon.mic',
  'm=video 0 UDP/TLS/RTP/SAVPF 96', 'a=mid:2', 'a=inactive',
  'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=mid:3', 'a=sendonly', 'a=msid:encoder-7f encoder-7f.cam2',
  '',
].join('\r\n');

test('each m-line with an msid names its participant and room track', () => {
  const byMid = roomTracksByMid(offer);
  assert.deepEqual(byMid.get('0'), { participant: 'surgeon', id: 'surgeon/cam' });
  assert.deepEqual(byMid.get('1'), { participant: 'surgeon', id: 'surgeon/mic' });
  assert.deepEqual(byMid.get('3'), { participant: 'encoder-7f', id: 'encoder-7f/cam2' });
});

test('an inactive m-line without an msid carries no track', () => {
  assert.equal(roomTracksByMid(offer).has('2'), false);
  assert.equal(roomTracksByMid('').size, 0);
});
