// The call screens: before the call, in the call, the teaching broadcast. Mounted by app.js
// at #/c/<id>/call; everything below this module belongs to the call.
import { api } from '../api.js';
import { h } from './dom.js';
import { openMedia } from './devices.js';
import { PreCall } from './precall.js';
import { CallRoom } from './room.js';
import { guardLeaving } from './leaving.js';

/**
 * While a call is on, sessionStorage remembers it (and the devices chosen) so that a reload
 * goes straight back into the same call; only leaving or the end forgets it.
 * @param {string} id
 */
const activeKey = (id) => `huizhen.call.${id}`;

/**
 * @param {HTMLElement} container
 * @param {{ consultationId: string }} opts
 * @returns {Promise<{ unmount: () => void }>}
 */
export async function mount(container, opts) {
  const id = opts.consultationId;
  const consultation = await api('GET', `/v1/consultations/${encodeURIComponent(id)}`);
  const root = h('div', { class: 'call-root', testid: 'call-root' });
  container.replaceChildren(root);
  /** @type {PreCall | null} */
  let pre = null;
  /** @type {CallRoom | null} */
  let room = null;
  let gone = false;

  /** @param {import('./precall.js').JoinChoice} choice */
  const startCall = (choice) => {
    if (gone) return;
    remember(id, choice);
    room = new CallRoom(consultation, choice, {
      onFinished: () => forget(id),
    });
    root.replaceChildren(room.el);
    exposeForTests(room);
    room.start().catch(() => {});
  };

  const saved = recall(id);
  if (saved) {
    const { stream } = await openMedia({ video: saved.video, audio: saved.audio, cameraId: saved.cameraId, micId: saved.micId });
    startCall({ ...saved, stream, video: stream.getVideoTracks().length > 0, audio: stream.getAudioTracks().length > 0 });
  } else {
    pre = new PreCall(consultation, (choice) => {
      pre?.destroy();
      pre = null;
      startCall(choice);
    });
    root.replaceChildren(pre.el);
    pre.start().catch(() => {});
  }
  // A click on the header's links during the call asks before it leaves.
  const unguard = guardLeaving(root, () => room);
  return {
    unmount() {
      gone = true;
      unguard();
      pre?.destroy();
      room?.destroy();
      const w = /** @type {any} */ (window);
      if (room && w.hzCall?.owner === room.snapshot) delete w.hzCall;
    },
  };
}

/** @param {string} id @param {import('./precall.js').JoinChoice} c */
function remember(id, c) {
  try {
    sessionStorage.setItem(activeKey(id), JSON.stringify({ video: c.video, audio: c.audio, cameraId: c.cameraId, micId: c.micId, speakerId: c.speakerId }));
  } catch { /* storage off: a reload shows the pre-call screen */ }
}

/** @param {string} id */
function forget(id) {
  try { sessionStorage.removeItem(activeKey(id)); } catch { /* storage off */ }
}

/** @param {string} id @returns {{ video: boolean, audio: boolean, cameraId?: string, micId?: string, speakerId?: string } | null} */
function recall(id) {
  try {
    return JSON.parse(sessionStorage.getItem(activeKey(id)) || 'null');
  } catch {
    return null;
  }
}

/** The call's state (no media, no tokens) for end-to-end tests and support. @param {CallRoom} room */
function exposeForTests(room) {
  /** @type {any} */ (window).hzCall = {
    owner: room.snapshot,
    state: () => room.snapshot(),
    rtp: () => room.media?.rtpSummary() ?? Promise.resolve([]),
  };
}
