// What the open office page does with pushed consultation changes (issue 14, "Nothing updates
// live"; the channel is events.js, the rules changes.js):
// - the page that shows the changed consultation (its page, or a list that may hold it) is
//   rendered again in place, unless the user is in the middle of something there (typing in a
//   form, a dialog open, dragging on the desk): then it waits until they are done, and a notice
//   says the page has changes;
// - an emergency made the signed-in specialist's raises their alert (alerts.js) within moments;
// - a requesting doctor is told their request was accepted or rescheduled (notices.js);
// - when the stream (re)connects after a gap, the server says changes were dropped, or the
//   stream is down and it is time to poll, the page is shown afresh and a specialist's live
//   emergencies are looked for.
import { api, me } from '../api.js';
import { h } from '../dom.js';
import { fmtTime, label, t } from '../i18n.js';
import { alertAssigned, checkEmergencies, dropAssigned } from './alerts.js';
import { alreadyShown, emergencyForMe, emergencyOver, followsChanges, newsFor, routeShows } from './changes.js';
import { connectEvents, disconnectEvents } from './events.js';
import { update } from './nav.js';
import { dropNotice, dropNotices, showNotice } from './notices.js';

/** @typedef {import('./changes.js').Change} Change */

/** Changes that come together (a step and its echo, a burst on the desk) render once. */
const SETTLE_MS = 150;
/** How often a held-back update checks whether the user is done. */
const RETRY_MS = 2000;

/** @type {ReturnType<typeof setTimeout> | null} */
let settle = null;
/** @type {ReturnType<typeof setTimeout> | null} */
let retry = null;
let installed = false;
/**
 * What the held update waits for: the changes that asked for it (a consultation's page that
 * already shows their version, e.g. after the user's own step, needs no new render), or null
 * when something asked for a plain reload (a reconnect, a resync, a poll).
 * @type {Change[] | null}
 */
let wanted = [];

const path = () => location.hash.slice(1) || '/';

/** Starts following changes while someone who can hear of them is signed in; safe to call on every route. */
export function followChanges() {
  install();
  const u = me();
  // Administrators are never involved in a consultation: there is nothing to hear.
  if (u && u.role !== 'admin') connectEvents({ change, ready, resync: reload, poll: reload });
  else stopFollowing();
}

/** Stops following (sign-out). */
export function stopFollowing() {
  disconnectEvents();
  cancelUpdate();
  dropNotices();
}

/** Once: marks forms the user has typed in, and forgets a held-back update when the route changes. */
function install() {
  if (installed) return;
  installed = true;
  document.getElementById('view')?.addEventListener('input', (e) => {
    /** @type {HTMLElement} */ (e.target).closest?.('form')?.setAttribute('data-edited', '');
  });
  // A new route renders afresh anyway.
  window.addEventListener('hashchange', cancelUpdate);
}

/** @param {Change} c */
function change(c) {
  const u = me();
  if (!u) return;
  if (emergencyForMe(c, u.id)) alertAssigned(c.id, 'push');
  else if (emergencyOver(c) || (c.urgency === 'emergency' && !c.specialists.includes(u.id))) dropAssigned(c.id);
  if (u.role === 'coordinator' && c.urgency === 'emergency') checkEmergencies();
  const news = newsFor(c, u.role);
  if (news) tellRequester(c, news);
  if (routeShows(path(), c)) scheduleUpdate(c);
}

/** @param {boolean} afterGap */
function ready(afterGap) {
  if (afterGap) scheduleUpdate();
  catchUp();
}

function reload() {
  scheduleUpdate();
  catchUp();
}

/** The version the page shows of consultation `id` (its detail page), or null. @param {string} id */
function shownVersion(id) {
  const el = /** @type {HTMLElement | null} */ (document.querySelector(`[data-testid="detail"][data-id="${CSS.escape(id)}"]`));
  const v = Number(el?.dataset.version);
  return el && Number.isInteger(v) ? v : null;
}

/** Asks for the current page to be shown again, for `c` or (no argument) whatever changed. @param {Change} [c] */
function scheduleUpdate(c) {
  if (!c) wanted = null;
  else if (wanted) wanted.push(c);
  if (settle) return;
  settle = setTimeout(() => {
    settle = null;
    apply(false);
  }, SETTLE_MS);
}

function cancelUpdate() {
  if (settle) clearTimeout(settle);
  if (retry) clearTimeout(retry);
  settle = null;
  retry = null;
  wanted = [];
  dropNotice('pending');
}

/** Whether the page already shows every change that asked for the update. */
function upToDate() {
  return wanted !== null && wanted.every((c) => alreadyShown(shownVersion(c.id), c));
}

/**
 * Renders the current page again in place, unless it is up to date already; holds it back
 * while the user is busy there, and says so if they still are after a moment.
 * @param {boolean} held whether this is a retry of an update held back
 */
function apply(held) {
  if (retry) clearTimeout(retry);
  retry = null;
  if (!followsChanges(path()) || upToDate()) {
    cancelUpdate();
    return;
  }
  if (busy()) {
    // The user's own step is usually what is going on (it renders the page itself): tell
    // them only if they are still busy on the retry.
    if (held) {
      showNotice('pending', () => [t('updates.pending'), ' ', h('button', {
        type: 'button', class: 'ghost small', testid: 'update-pending-show',
        onclick: () => { cancelUpdate(); update({ force: true }); },
      }, t('updates.show'))], { testid: 'update-pending', sticky: true });
    }
    retry = setTimeout(() => apply(true), RETRY_MS);
    return;
  }
  cancelUpdate();
  update();
}

/**
 * A quiet render whose data came back after the user began typing or opened a dialog: it is
 * dropped rather than put over their work, and the update asked for again, to be held back as
 * any other while they are busy.
 */
export function heldBack() {
  scheduleUpdate();
}

/**
 * Whether re-rendering now would take something from the user: text typed in a form, focus
 * in a form, an open dialog, a drag on the desk or a request picked there.
 */
export function busy() {
  const view = document.getElementById('view');
  if (!view) return false;
  const active = document.activeElement;
  if (active && view.contains(active) && active.closest('form')) return true;
  return Boolean(view.querySelector('form[data-edited], dialog[open]'))
    || document.body.classList.contains('dragging')
    || Boolean(document.querySelector('.queue-item.selected'));
}

/**
 * Tells a doctor their request has a time now: the notice names the specialty and the start.
 * Only for their own requests (an invited doctor hears of the change too).
 * @param {Change} c
 * @param {'accepted' | 'rescheduled'} news
 */
async function tellRequester(c, news) {
  let consultation;
  try {
    consultation = await api('GET', `/v1/consultations/${encodeURIComponent(c.id)}`);
  } catch {
    return; // gone, or no longer visible: nothing to tell
  }
  if (consultation.requester !== me()?.id) return;
  // Written in the current language each time (a switch writes it again): specialty and time too.
  const text = () => t(`updates.${news}`, { specialty: label('specialty', consultation.specialty), time: fmtTime(consultation.start) });
  showNotice(`news-${c.id}`, () => [text(), ' ', h('a', { href: `#/c/${c.id}`, testid: 'change-notice-open' }, t('updates.open'))], {
    testid: 'change-notice', attrs: { 'data-id': c.id, 'data-action': c.action },
  });
}

/** A specialist's live emergencies, raised if not yet (changes may have been missed meanwhile). */
async function catchUp() {
  const u = me();
  if (u?.role !== 'specialist') return;
  try {
    const live = await api('GET', '/v1/consultations?status=live&order=desc&limit=100');
    for (const c of live.items) {
      if (c.urgency === 'emergency' && c.specialists.includes(u.id)) alertAssigned(c.id, 'catch-up');
    }
  } catch {
    // The next reconnect or poll tries again.
  }
}
