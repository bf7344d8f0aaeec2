// Emergency alerts on every screen (the call included): a banner in #alerts and the window
// title. Two kinds:
// - Coordinators: how the emergency button reaches the consultation centre. While a
//   coordinator is signed in, the page asks every few seconds (and at once when a change to an
//   emergency is pushed, updates.js) for live emergencies that have no specialist yet, until a
//   coordinator assigns someone. A chime sounds when one appears and every 30 s while it
//   waits, until someone assigns a specialist or silences it: a desk is not always watched.
// - Specialists (issue 14): an emergency that was just made theirs (pushed, or found live when
//   the push channel connects; updates.js). A chime, a desktop notification if allowed
//   (desktop.js), a banner with the way into the room, until they open it, join it or dismiss
//   it, or it ends. Once acknowledged it is not raised again in this tab.
import { api, me } from '../api.js';
import { h } from '../dom.js';
import { fmtClock, label, t } from '../i18n.js';
import { enableButton, notifyDesktop } from './desktop.js';
import { refresh } from './nav.js';
import { loadDirectory, loadSites, nameOf, remember, rememberSites, siteById, userById } from './people.js';

/** @typedef {import('./people.js').ListedConsultation} ListedConsultation */

const EVERY_MS = 4000;
const CHIME_EVERY_MS = 30000;
/** @type {ReturnType<typeof setInterval> | null} */
let timer = null;
/** @type {ListedConsultation[]} */
let current = [];
let baseTitle = '';
/** Emergencies the coordinator silenced on this page. */
const silenced = new Set();
/** Emergencies already chimed for, with when. */
const chimed = new Map();
/**
 * @typedef {{ id: string, c: import('./people.js').Consultation | null, site: import('./people.js').Site | null,
 *   source: string, shownAt: number }} Assigned
 */
/**
 * Emergencies made the signed-in specialist's, in the order they came: what the banner shows
 * (the consultation and its site once read), where the news came from ('push': the change
 * itself; 'catch-up': found live when the stream connected or polled) and when it was shown.
 * @type {Map<string, Assigned>}
 */
const assigned = new Map();
/** Emergencies the specialist acknowledged (opened, joined, dismissed) in this tab. */
const SEEN_KEY = 'huizhen.emergencies-seen';
const seen = new Set(loadSeen());
/** @type {AudioContext | null} */
let audio = null;
/** What the chime did, for the browser tests: `played` counts chimes that reached the speaker. */
const stats = { played: 0, blocked: 0 };
/** @type {any} */ (window).hzAlerts = stats;

/** Two falling tones, half a second: heard across a room, not mistaken for a call. */
async function chime() {
  try {
    audio ??= new AudioContext();
    if (audio.state === 'suspended') await audio.resume();
    if (audio.state !== 'running') {
      stats.blocked++;
      return;
    }
    const ctx = audio; // set: the callback below cannot see that of `audio`
    const t0 = audio.currentTime;
    [[880, 0], [660, 0.25]].forEach(([f, at]) => {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.frequency.value = f;
      gain.gain.setValueAtTime(0.0001, t0 + at);
      gain.gain.exponentialRampToValueAtTime(0.3, t0 + at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t0 + at + 0.24);
      osc.connect(gain).connect(ctx.destination);
      osc.start(t0 + at);
      osc.stop(t0 + at + 0.25);
    });
    stats.played++;
  } catch {
    // No audio device or no Web Audio: the banner and the title still show it.
    stats.blocked++;
  }
}

/** Chimes for emergencies that are new, or still waiting since the last chime. @param {ListedConsultation[]} list */
function maybeChime(list) {
  const now = Date.now();
  for (const id of chimed.keys()) if (!list.some((c) => c.id === id)) chimed.delete(id);
  const due = list.filter((c) => !silenced.has(c.id) && (!chimed.has(c.id) || now - chimed.get(c.id) >= CHIME_EVERY_MS));
  if (!due.length) return;
  for (const c of due) chimed.set(c.id, now);
  chime();
}

/** Starts or stops watching, as fits the signed-in user; safe to call on every route. @param {string} title */
export function watchEmergencies(title) {
  baseTitle = title;
  const coordinator = me()?.role === 'coordinator';
  if (coordinator && !timer) {
    timer = setInterval(poll, EVERY_MS);
    poll();
  } else if (!coordinator && timer) {
    clearInterval(timer);
    timer = null;
    current = [];
  }
  render();
}

async function poll() {
  if (me()?.role !== 'coordinator') return;
  try {
    /** @type {import('./people.js').ConsultationPage} */
    const r = await api('GET', '/v1/consultations?status=live&order=desc&limit=100');
    const found = r.items.filter((c) => c.urgency === 'emergency' && c.specialists.length === 0);
    if (found.some((c) => !userById(c.requester))) await Promise.all([loadDirectory(true), loadSites()]).catch(() => {});
    const changed = found.map((c) => c.id).join() !== current.map((c) => c.id).join();
    current = found;
    maybeChime(found);
    // The desk lists live emergencies too: show it afresh, unless the coordinator is busy
    // with it (dragging, or a request picked for a slot).
    if (changed && (location.hash || '#/') === '#/' && !document.body.classList.contains('dragging') && !document.querySelector('.queue-item.selected')) {
      refresh();
    }
  } catch {
    // A failed poll keeps the last answer; the screens show their own errors.
  }
  render();
}

function render() {
  const box = document.getElementById('alerts');
  if (!box) return;
  const waiting = me()?.role === 'coordinator' ? current : [];
  const mine = me() ? [...assigned.values()] : [];
  const n = waiting.length + mine.length;
  document.title = n ? `${t('alert.title_prefix', { n })} ${baseTitle}` : baseTitle;
  box.hidden = n === 0;
  box.replaceChildren(...mine.map(assignedAlert), ...waiting.map(waitingAlert));
}

/** A live emergency with no specialist yet (coordinators). @param {ListedConsultation} c */
function waitingAlert(c) {
  const u = userById(c.requester);
  const site = u?.site_id ? siteById(u.site_id)?.name : null;
  return h('div', { class: 'alert', role: 'alert', testid: 'emergency-alert', 'data-id': c.id },
    h('strong', {}, t('alert.emergency')), ' ',
    t('alert.text', { specialty: label('specialty', c.specialty), who: [nameOf(c.requester), site].filter(Boolean).join(' · '), time: fmtClock(c.start || c.created_at) }),
    h('span', { class: 'spacer' }),
    silenced.has(c.id) ? null : h('button', {
      type: 'button', class: 'small', testid: 'emergency-alert-silence',
      onclick: () => { silenced.add(c.id); render(); },
    }, t('alert.silence')),
    ' ',
    h('a', { class: 'button danger', href: `#/c/${c.id}`, testid: 'emergency-alert-open' }, t('alert.open')));
}

/** An emergency now the signed-in specialist's: what it is, and the ways in. @param {Assigned} a */
function assignedAlert(a) {
  const c = a.c;
  const who = c ? [nameOf(c.requester), a.site?.name].filter((x) => x && x !== c.requester).join(' · ') : '';
  return h('div', {
    class: 'alert', role: 'alert', testid: 'assigned-alert',
    'data-id': a.id, 'data-source': a.source, 'data-shown-at': String(a.shownAt),
  },
  h('strong', {}, t('alert.mine')), ' ',
  c ? t(who ? 'alert.mine_text' : 'alert.mine_text_anonymous', { specialty: label('specialty', c.specialty), who, time: fmtClock(c.start || c.created_at) })
    : t('alert.mine_hint'),
  h('span', { class: 'spacer' }),
  enableButton(render),
  h('button', { type: 'button', class: 'small', testid: 'assigned-alert-dismiss', onclick: () => acknowledge(a.id) }, t('alert.dismiss')),
  ' ',
  h('a', { class: 'button', href: `#/c/${a.id}`, testid: 'assigned-alert-open', onclick: () => acknowledge(a.id) }, t('alert.view')),
  ' ',
  h('a', { class: 'button danger', href: `#/c/${a.id}/call`, testid: 'assigned-alert-join', onclick: () => acknowledge(a.id) }, t('alert.join_now')));
}

/**
 * Raises the alert for an emergency now the signed-in specialist's (updates.js): a chime, a
 * desktop notification if allowed, the banner at once (what it is follows once read).
 * Nothing if it is raised or was acknowledged already, or the page is in its room.
 * @param {string} id
 * @param {'push' | 'catch-up'} source
 */
export function alertAssigned(id, source) {
  if (assigned.has(id) || seen.has(id)) return;
  if (location.hash === `#/c/${id}/call`) {
    acknowledge(id);
    return;
  }
  assigned.set(id, { id, c: null, site: null, source, shownAt: Date.now() });
  render();
  chime();
  notifyDesktop({ title: t('alert.mine'), body: t('alert.mine_hint'), tag: `emergency-${id}`, hash: `#/c/${id}` });
  describe(id);
}

/** Reads what the banner says of the emergency (specialty, who asked, when). @param {string} id */
async function describe(id) {
  try {
    /** @type {import('./people.js').Report} */
    const report = await api('GET', `/v1/consultations/${encodeURIComponent(id)}/report`);
    remember(report.people);
    if (report.requester_site) rememberSites([report.requester_site]);
    const a = assigned.get(id);
    if (!a) return;
    a.c = report.consultation;
    a.site = report.requester_site ?? null;
    render();
  } catch {
    // The banner stands without the details; the consultation's page has them.
  }
}

/** Takes an emergency's banner down: it ended, or is no longer the specialist's. @param {string} id */
export function dropAssigned(id) {
  if (assigned.delete(id)) render();
}

/** The specialist saw it: down, and not raised again in this tab. @param {string} id */
function acknowledge(id) {
  seen.add(id);
  try { sessionStorage.setItem(SEEN_KEY, JSON.stringify([...seen])); } catch { /* storage disabled */ }
  dropAssigned(id);
}

// Gone to the emergency's page or into its room, whichever way: the specialist has seen it.
window.addEventListener('hashchange', () => {
  const here = location.hash.match(/^#\/c\/([^/]+)/)?.[1];
  if (here && assigned.has(here)) acknowledge(here);
});

function loadSeen() {
  try {
    const v = JSON.parse(sessionStorage.getItem(SEEN_KEY) || '[]');
    return Array.isArray(v) ? v.filter((x) => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

// A language switch (app.js) writes the banners and the window title again at once, the call
// screen included (which the switch does not re-route).
window.addEventListener('huizhen:lang', () => render());

/** Asks at once for the emergencies that wait for a specialist (a change was pushed). */
export function checkEmergencies() {
  if (timer) poll();
}

/** Stops watching (sign-out). */
export function stopWatching() {
  if (timer) clearInterval(timer);
  timer = null;
  current = [];
  silenced.clear();
  chimed.clear();
  assigned.clear();
  seen.clear();
  try { sessionStorage.removeItem(SEEN_KEY); } catch { /* storage disabled */ }
  render();
}
