// Recording in the call (protocol.md §12): the indicator everyone sees while the room is
// recorded, the consent prompt (declining leaves my camera and microphone out), the host's
// start/stop button, the answers hosts receive, and the banner when the recorder fails.
// Functions of the CallRoom; the state lives in room.rec and changes by state.js's reducer
// (the `recording`, `recording_consent` and `recording_failed` messages).
import { fmtClock, t } from '../i18n.js';
import { h } from './dom.js';
import { asksConsent } from './state.js';

/** @typedef {import('./room.js').CallRoom} CallRoom */

/** My answer for a recording, kept for the tab's life so that a reload does not ask again. @param {string} rid */
const answerKey = (rid) => `huizhen.rec-consent.${rid}`;

/** @param {string} rid @returns {boolean | null} */
export function myAnswer(rid) {
  try {
    const v = sessionStorage.getItem(answerKey(rid));
    return v === 'true' ? true : v === 'false' ? false : null;
  } catch {
    return null;
  }
}

/** @param {string} rid @param {boolean} consent */
function rememberAnswer(rid, consent) {
  try { sessionStorage.setItem(answerKey(rid), String(consent)); } catch { /* storage off: asked again after a reload */ }
}

/** Whether this participant has declined the current recording. @param {CallRoom} room */
export function iAmExcluded(room) {
  return Boolean(room.me && room.rec.excluded.includes(room.me.id));
}

/** My consent to the current recording: true, false, or null (not answered). @param {CallRoom} room */
export function myConsent(room) {
  if (!room.rec.active || !room.rec.id) return null;
  if (iAmExcluded(room)) return false;
  if (room.rec.by && room.rec.by === room.me?.id) return true;
  return myAnswer(room.rec.id);
}

/** The host may start and stop recordings (the join token's grant). @param {CallRoom} room */
export function canRecord(room) {
  return Boolean(room.join?.grants?.can_record);
}

/** Sends start_recording or stop_recording; a refusal is shown in the user's language. @param {CallRoom} room */
export async function toggleRecording(room) {
  if (!room.socket || room.recBusy) return;
  const type = room.rec.active ? 'stop_recording' : 'start_recording';
  room.recBusy = true;
  room.renderControls();
  try {
    await room.socket.request({ type });
  } catch (e) {
    room.say(() => room.signalText(e), 'error');
  } finally {
    room.recBusy = false;
    room.renderControls();
  }
}

/** Sends my answer for the current recording. @param {CallRoom} room @param {boolean} consent */
async function answer(room, consent) {
  const rid = room.rec.id;
  if (!rid || !room.socket) return;
  rememberAnswer(rid, consent);
  renderRecording(room);
  try {
    await room.socket.request({ type: 'recording_consent', consent });
  } catch (e) {
    // not_recording: it stopped meanwhile. Anything else: ask again.
    const code = /** @type {any} */ (e)?.code;
    if (code !== 'not_recording') {
      try { sessionStorage.removeItem(answerKey(rid)); } catch { /* storage off */ }
      room.say(() => room.signalText(e), 'error');
    }
  }
  renderRecording(room);
}

/** Draws the indicator, the consent prompt, the hosts' answer list and the failure banner. @param {CallRoom} room */
export function renderRecording(room) {
  const rec = room.rec;
  const excluded = iAmExcluded(room);
  // The indicator in the call header.
  const ind = room.recording;
  ind.dataset.active = String(rec.active);
  ind.dataset.excluded = String(rec.active && excluded);
  if (rec.active) {
    const since = rec.startedAt ? fmtClock(rec.startedAt) : '';
    const who = rec.by ? room.nameOf(rec.by) : '';
    ind.className = 'rec-slot rec-on';
    // filter(Boolean) leaves only the elements (TypeScript cannot tell).
    ind.replaceChildren(.../** @type {HTMLElement[]} */ ([
      h('span', { class: 'rec-dot', 'aria-hidden': 'true' }),
      h('strong', { testid: 'recording-label' }, t('call.rec.on')),
      h('span', { class: 'small rec-meta', testid: 'recording-meta' }, who && since ? t('call.rec.by_since', { name: who, time: since }) : since ? t('call.rec.since', { time: since }) : ''),
      excluded && h('span', { class: 'badge rec-excluded', testid: 'recording-excluded' }, t('call.rec.not_recorded_you')),
    ].filter(Boolean)));
    ind.title = t('call.rec.on');
  } else {
    ind.className = 'rec-slot';
    ind.replaceChildren();
    ind.removeAttribute('title');
  }

  // The consent prompt: once per recording, for everyone who sends media and has not answered
  // (someone who only watches is told, not asked: state.js's asksConsent).
  const ask = asksConsent(room.state, myConsent(room));
  if (ask && !room.consentBox) {
    const agree = h('button', { testid: 'recording-consent-agree', onclick: () => answer(room, true) }, t('call.rec.consent_agree'));
    room.consentBox = h('div', { class: 'modal-back', testid: 'recording-consent' },
      h('div', { class: 'card modal', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'rec-consent-title' },
        h('h2', { id: 'rec-consent-title' }, h('span', { class: 'rec-dot', 'aria-hidden': 'true' }), ' ', t('call.rec.consent_title')),
        h('p', { testid: 'recording-consent-text' }, t('call.rec.consent_text', { name: room.nameOf(rec.by ?? '') })),
        h('p', { class: 'small muted' }, t('call.rec.consent_decline_means')),
        h('div', { class: 'actions' },
          agree,
          h('button', { class: 'ghost', testid: 'recording-consent-decline', onclick: () => answer(room, false) }, t('call.rec.consent_decline')))));
    room.el.append(room.consentBox);
    agree.focus();
  } else if (!ask && room.consentBox) {
    room.consentBox.remove();
    room.consentBox = null;
  }

  // What I am told after declining (also in the header badge), or, watching only, why I am
  // not asked.
  const watching = rec.active && room.phase === 'joined' && !excluded && room.me !== null && !room.me.can_publish;
  room.recNote.hidden = !(rec.active && (excluded || watching));
  room.recNote.dataset.why = excluded ? 'excluded' : watching ? 'watching' : '';
  room.recNote.textContent = rec.active && excluded ? t('call.rec.excluded_text') : watching ? t('call.rec.watching_text') : '';

  // Hosts: who answered what.
  const answers = [...rec.answers.values()];
  room.recAnswers.hidden = !rec.active || !room.me?.host;
  room.recAnswerList.replaceChildren(...(answers.length ? answers.map((a) => h('li', { testid: 'recording-answer', dataset: { participant: a.participant, consent: String(a.consent) } },
    h('span', { class: 'grow' }, a.name),
    h('span', { class: `badge ${a.consent ? 'host' : 'muted'}` }, t(a.consent ? 'call.rec.agreed' : 'call.rec.declined'))))
    : [h('li', { class: 'small muted' }, t('call.rec.no_answers'))]));

  // Hosts: the recorder stopped by itself.
  if (rec.failed) {
    const key = `call.rec.failed.${rec.failed.code}`;
    const text = t(key);
    room.recFailed.hidden = false;
    room.recFailed.dataset.code = rec.failed.code;
    room.recFailed.replaceChildren(
      h('strong', {}, t('call.rec.failed_title')), ' ',
      h('span', { class: 'grow' }, text === key ? t('call.rec.failed.other', { message: rec.failed.message }) : text),
      h('button', { class: 'ghost small', testid: 'recording-failed-dismiss', onclick: () => room.dismissRecFailure() }, t('call.rec.dismiss')));
  } else {
    room.recFailed.hidden = true;
    room.recFailed.replaceChildren();
  }
  room.renderControls();
}

/** The start/stop button for the control bar, or null without the grant. @param {CallRoom} room @param {(testid: string, text: string, fn: () => any, attrs?: Record<string, any>) => HTMLElement} btn */
export function recordButton(room, btn) {
  if (!canRecord(room) || room.phase !== 'joined') return null;
  const on = room.rec.active;
  return btn('ctl-record', t(on ? 'call.rec.stop' : 'call.rec.start'), () => toggleRecording(room),
    { class: on ? 'ctl rec-stop' : 'ctl', disabled: room.recBusy, dataset: { recording: String(on) } });
}

/** For window.hzCall.state(). @param {CallRoom} room */
export function recSnapshot(room) {
  const rec = room.rec;
  return {
    active: rec.active, id: rec.id, by: rec.by, startedAt: rec.startedAt, excluded: [...rec.excluded],
    consent: myConsent(room), canRecord: canRecord(room),
    answers: [...rec.answers.values()], failed: rec.failed,
  };
}
