// How the emergency button reaches the consultation centre: while a coordinator is signed in,
// the page asks every few seconds for live emergencies that have no specialist yet and shows
// them in a banner on every screen (the call included) and in the window title, until a
// coordinator assigns someone. A chime sounds when one appears and every 30 s while it waits,
// until someone assigns a specialist or silences it: a desk is not always watched.
import { api, me } from '../api.js';
import { h } from '../dom.js';
import { fmtClock, label, t } from '../i18n.js';
import { refresh } from './nav.js';
import { loadDirectory, loadSites, nameOf, siteById, userById } from './people.js';

const EVERY_MS = 4000;
const CHIME_EVERY_MS = 30000;
let timer = null;
let current = [];
let baseTitle = '';
/** Emergencies the coordinator silenced on this page. */
const silenced = new Set();
/** Emergencies already chimed for, with when. */
const chimed = new Map();
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
    const t0 = audio.currentTime;
    [[880, 0], [660, 0.25]].forEach(([f, at]) => {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = f;
      gain.gain.setValueAtTime(0.0001, t0 + at);
      gain.gain.exponentialRampToValueAtTime(0.3, t0 + at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t0 + at + 0.24);
      osc.connect(gain).connect(audio.destination);
      osc.start(t0 + at);
      osc.stop(t0 + at + 0.25);
    });
    stats.played++;
  } catch {
    // No audio device or no Web Audio: the banner and the title still show it.
    stats.blocked++;
  }
}

/** Chimes for emergencies that are new, or still waiting since the last chime. */
function maybeChime(list) {
  const now = Date.now();
  for (const id of chimed.keys()) if (!list.some((c) => c.id === id)) chimed.delete(id);
  const due = list.filter((c) => !silenced.has(c.id) && (!chimed.has(c.id) || now - chimed.get(c.id) >= CHIME_EVERY_MS));
  if (!due.length) return;
  for (const c of due) chimed.set(c.id, now);
  chime();
}

/** Starts or stops watching, as fits the signed-in user; safe to call on every route. */
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
  const list = me()?.role === 'coordinator' ? current : [];
  document.title = list.length ? `${t('alert.title_prefix', { n: list.length })} ${baseTitle}` : baseTitle;
  box.hidden = list.length === 0;
  box.replaceChildren(...list.map((c) => {
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
  }));
}

/** Stops watching (sign-out). */
export function stopWatching() {
  if (timer) clearInterval(timer);
  timer = null;
  current = [];
  silenced.clear();
  chimed.clear();
  render();
}
