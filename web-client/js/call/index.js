// The call screens: before the call, in the call, the teaching broadcast. Mounted by app.js
// at #/c/<id>/call, and by a guest's page (js/guest/) with the guest's way in (entry.js);
// everything below this module belongs to the call.
import { api } from '../api.js';
import { h } from './dom.js';
import { openCameras, openMedia } from './devices.js';
import { memberEntry } from './entry.js';
import { PreCall } from './precall.js';
import { CallRoom } from './room.js';
import { guardLeaving } from './leaving.js';
import { parseSaved } from './saved.js';

/**
 * While a call is on, sessionStorage remembers it, with what the page sends (saved.js: the
 * cameras and their devices, the mute state, the speaker), so that a reload goes straight back
 * into the same call as it was; only leaving or the end forgets it.
 * @param {string} id
 */
const activeKey = (id) => `huizhen.call.${id}`;

/**
 * @param {HTMLElement} container
 * @param {{ consultationId: string } | { entry: import('./entry.js').Entry, onFinished?: (phase: string) => void }} opts
 *   a signed-in member's call by the consultation's id, or another way in (a guest's);
 *   onFinished: the call is over for this page (its phase: ended, left, removed…)
 * @returns {Promise<{ unmount: () => void }>}
 */
export async function mount(container, opts) {
  const entry = 'entry' in opts ? opts.entry
    : memberEntry(await api('GET', `/v1/consultations/${encodeURIComponent(opts.consultationId)}`));
  const id = entry.consultation.id;
  const finished = 'entry' in opts ? opts.onFinished : undefined;
  const root = h('div', { class: 'call-root', testid: 'call-root' });
  container.replaceChildren(root);
  /** @type {PreCall | null} */
  let pre = null;
  /** @type {CallRoom | null} */
  let room = null;
  let gone = false;

  /** @param {import('./precall.js').JoinChoice} choice */
  const startCall = (choice) => {
    if (gone) {
      choice.stream.getTracks().forEach((tr) => tr.stop());
      choice.extraCameras?.forEach(([, tr]) => tr.stop());
      return;
    }
    room = new CallRoom(entry, choice, {
      onFinished: (phase) => { forget(id); finished?.(phase); },
      onLocalChange: (s) => remember(id, s),
    });
    remember(id, room.localState());
    root.replaceChildren(room.el);
    exposeForTests(room);
    room.start().catch(() => {});
  };

  const saved = recall(id);
  if (saved) {
    // The devices as they were: the main camera (as last switched), each extra camera on its
    // own device, the microphone; a device gone since falls back as openMedia/openCameras say.
    const { stream } = await openMedia({ video: saved.video, audio: saved.audio, cameraId: saved.cameraId, micId: saved.micId });
    const extraCameras = await openCameras(saved.extraCameras);
    startCall({
      stream, extraCameras,
      video: stream.getVideoTracks().length > 0, audio: stream.getAudioTracks().length > 0,
      cameraId: saved.cameraId, micId: saved.micId, speakerId: saved.speakerId,
      micMuted: saved.micMuted, camMuted: saved.camMuted,
    });
  } else {
    pre = new PreCall(entry, (choice) => {
      pre?.destroy();
      pre = null;
      startCall(choice);
    });
    root.replaceChildren(pre.el);
    pre.start().catch(() => {});
  }
  // A click on the header's links during the call asks before it leaves.
  const unguard = guardLeaving(root, () => room);
  // A language switch (app.js) writes the screens again in place: the call goes on.
  const onLang = () => { pre?.relabel(); room?.relabel(); };
  window.addEventListener('huizhen:lang', onLang);
  // Closing or reloading the page: the others see us go at once (room.js).
  const onPageHide = () => room?.sayGoodbye();
  window.addEventListener('pagehide', onPageHide);
  return {
    unmount() {
      gone = true;
      unguard();
      window.removeEventListener('huizhen:lang', onLang);
      window.removeEventListener('pagehide', onPageHide);
      pre?.destroy();
      room?.destroy();
      const w = /** @type {any} */ (window);
      if (room && w.hzCall?.owner === room.snapshot) delete w.hzCall;
    },
  };
}

/** @param {string} id @param {import('./saved.js').SavedCall} saved */
function remember(id, saved) {
  try {
    sessionStorage.setItem(activeKey(id), JSON.stringify(saved));
  } catch { /* storage off: a reload shows the pre-call screen */ }
}

/** @param {string} id */
function forget(id) {
  try { sessionStorage.removeItem(activeKey(id)); } catch { /* storage off */ }
}

/** @param {string} id @returns {import('./saved.js').SavedCall | null} */
function recall(id) {
  try {
    return parseSaved(sessionStorage.getItem(activeKey(id)));
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
