// The consultation centre's desk: live emergencies, the queue of requests, and a calendar of
// the specialists' time (rows = specialists, columns = slots, busy slots from
// GET /v1/specialists/{id}/bookings). A request is scheduled by dragging it onto a free slot;
// on a tablet or with the keyboard, pick the request, then the slot (both are buttons). The
// server has the last word on double booking (409 specialist_busy), so dropping on a slot
// that looks busy still asks it and shows its answer.
import { api } from '../api.js';
import { errorBox, h, showBanner } from '../dom.js';
import { errorText, fmtClock, fmtDay, fmtTime, instantToShanghai, label, shanghaiMidnight, t, toDate } from '../i18n.js';
import { refresh } from './nav.js';
import { patientLine } from './patient.js';
import { activeSpecialists, loadSites, nameOf, siteById, userById } from './people.js';

/** @typedef {import('./people.js').User} User */
/** @typedef {import('./people.js').Site} Site */
/** @typedef {import('./people.js').Consultation} Consultation */
/** @typedef {import('./people.js').ListedConsultation} ListedConsultation */
/** @typedef {import('./people.js').ConsultationPage} ConsultationPage */
/** A specialist's booked slot (GET /v1/specialists/{id}/bookings). @typedef {{ consultation: string, start: string, end: string }} Booking */

const SLOT_MIN = 30;
const SLOTS = 16; // eight hours: fits a tablet in landscape with a little scrolling
const DURATIONS = [30, 60, 90, 120];
/** @type {{ start: Date | null, duration: number, selected: string | null }} */
const cal = { start: null, duration: 30, selected: null };

const floorSlot = (/** @type {number} */ ms) => new Date(Math.floor(ms / (SLOT_MIN * 60e3)) * SLOT_MIN * 60e3);

/**
 * The report number and the patient as lists have them (masked name, sex, age), or null for
 * a request without either (one made before numbers, a discussion without a patient).
 * @param {ListedConsultation} c
 */
function caseLine(c) {
  if (!c.number && !c.patient_summary) return null;
  return h('div', { class: 'small row-case' },
    c.number && h('span', { class: 'number', testid: 'row-number' }, c.number),
    c.number && c.patient_summary && ' · ',
    patientLine(c));
}

/** @param {ListedConsultation} c */
function requesterLine(c) {
  const u = userById(c.requester);
  const site = u?.site_id ? siteById(u.site_id) : null;
  return [nameOf(c.requester), site?.name].filter(Boolean).join(' · ');
}

export async function coordinatorHome() {
  cal.start ??= floorSlot(Date.now());
  /** @type {[ConsultationPage, ConsultationPage, User[], Site[]]} */
  const [queue, live, specialists] = await Promise.all([
    api('GET', '/v1/consultations?status=requested&order=asc&limit=100'),
    api('GET', '/v1/consultations?status=live&order=desc&limit=100'),
    activeSpecialists(),
    loadSites().catch(() => []),
  ]);
  /** @type {Booking[][]} */
  const bookings = await Promise.all(specialists.map((s) => api('GET', `/v1/specialists/${s.id}/bookings`).then((r) => r.items)));
  if (cal.selected && !queue.items.some((c) => c.id === cal.selected)) cal.selected = null;
  const emergencies = live.items.filter((c) => c.urgency === 'emergency');
  const message = h('div', { class: 'calendar-message', 'aria-live': 'polite', testid: 'calendar-message' });
  return [
    emergencies.length > 0 && emergencySection(emergencies),
    h('div', { class: 'desk' },
      queueSection(queue.items),
      calendarSection(specialists, bookings, message, queue.items.find((c) => c.id === cal.selected)?.specialty)),
    h('p', {}, h('a', { href: '#/all', testid: 'all-link' }, t('list.see_all')), ' · ', h('span', { class: 'muted small' }, t('common.zone_note'))),
  ];
}

/** @param {ListedConsultation[]} items */
function emergencySection(items) {
  return h('section', { class: 'card alarm', testid: 'emergency-list' },
    h('h2', {}, t('coord.emergencies')),
    h('ul', { class: 'list' }, items.map((c) => h('li', { testid: 'emergency-item', 'data-id': c.id },
      h('a', { href: `#/c/${c.id}`, class: 'row' },
        h('span', { class: 'badge urgency-emergency' }, label('urgency', 'emergency')),
        h('span', { class: 'grow' }, h('strong', {}, label('specialty', c.specialty)), ' · ', requesterLine(c), caseLine(c)),
        h('span', {}, c.specialists.length ? c.specialists.map(nameOf).join('、') : h('strong', { class: 'danger-text' }, t('coord.needs_specialist'))),
        h('time', { datetime: c.start || c.created_at }, fmtClock(c.start || c.created_at)))))));
}

/** @param {ListedConsultation[]} items */
function queueSection(items) {
  const list = h('ul', { class: 'queue', testid: 'queue' });
  for (const c of items) {
    const selected = cal.selected === c.id;
    const pick = h('button', {
      type: 'button', class: selected ? 'pick selected' : 'pick', testid: 'queue-pick', 'aria-pressed': String(selected),
      onclick: () => { cal.selected = selected ? null : c.id; refresh(); },
    }, t(selected ? 'coord.picked' : 'coord.pick'));
    const item = h('li', {
      class: `queue-item${selected ? ' selected' : ''} urgency-border-${c.urgency}`, draggable: 'true',
      testid: 'queue-item', 'data-id': c.id, 'data-specialty': c.specialty,
    },
    h('div', { class: 'grow' },
      h('div', {}, h('strong', {}, label('specialty', c.specialty)), ' · ', label('kind', c.kind), ' ',
        c.urgency !== 'routine' && h('span', { class: `badge urgency-${c.urgency}` }, label('urgency', c.urgency))),
      caseLine(c),
      h('div', { class: 'small muted' }, requesterLine(c)),
      h('div', { class: 'small muted' }, c.wished ? t('coord.wished', { time: `${fmtTime(c.wished.from)}` }) : t('coord.requested_at', { time: fmtTime(c.created_at) }))),
    h('div', { class: 'queue-actions' }, pick, h('a', { href: `#/c/${c.id}`, class: 'small', testid: 'queue-open' }, t('coord.open'))));
    item.addEventListener('dragstart', (e) => {
      const data = /** @type {DataTransfer} */ (e.dataTransfer); // a drag event always carries one
      data.setData('text/plain', c.id);
      data.effectAllowed = 'move';
      document.body.classList.add('dragging');
      markSpecialty(c.specialty);
    });
    item.addEventListener('dragend', () => { document.body.classList.remove('dragging'); markSpecialty(null); });
    list.append(item);
  }
  return h('section', { class: 'card queue-card' },
    h('h2', {}, t('coord.queue'), ' ', h('span', { class: 'count', testid: 'queue-count' }, String(items.length))),
    items.length ? [h('p', { class: 'small muted' }, t('coord.queue_hint')), list] : h('p', { class: 'muted', testid: 'queue-empty' }, t('coord.queue_empty')));
}

/** Highlights the calendar rows of specialists of the request's specialty. @param {string | null} specialty */
function markSpecialty(specialty) {
  for (const tr of document.querySelectorAll('[data-testid="calendar-row"]')) {
    tr.classList.toggle('match', specialty != null && /** @type {HTMLElement} */ (tr).dataset.specialty === specialty);
  }
}

/**
 * Drawn after coordinatorHome set cal.start, hence the casts of it to Date.
 * @param {User[]} specialists @param {Booking[][]} bookings @param {HTMLElement} message
 * @param {string | undefined} pickedSpecialty
 */
function calendarSection(specialists, bookings, message, pickedSpecialty) {
  const slots = Array.from({ length: SLOTS }, (_, i) => new Date(/** @type {Date} */ (cal.start).getTime() + i * SLOT_MIN * 60e3));
  const shift = (/** @type {number} */ hours) => () => { cal.start = new Date(/** @type {Date} */ (cal.start).getTime() + hours * 3600e3); refresh(); };
  const day = h('input', {
    type: 'date', testid: 'calendar-day', 'aria-label': t('coord.day'), value: instantToShanghai(/** @type {Date} */ (cal.start)).slice(0, 10),
    onchange: (/** @type {Event & { target: HTMLInputElement }} */ e) => {
      if (!e.target.value) return;
      // A chosen day opens at 08:00 Beijing time, the start of a clinic day.
      cal.start = new Date(`${e.target.value}T08:00:00+08:00`);
      refresh();
    },
  });
  const duration = h('select', {
    testid: 'calendar-duration', 'aria-label': t('schedule.duration'),
    onchange: (/** @type {Event & { target: HTMLSelectElement }} */ e) => { cal.duration = Number(e.target.value); },
  }, DURATIONS.map((m) => h('option', { value: String(m), selected: m === cal.duration }, t('common.minutes', { n: m }))));
  const now = Date.now();
  const head = h('tr', {}, h('th', { class: 'who' }, t('field.specialists')),
    slots.map((s, i) => {
      const newDay = i === 0 || s.getTime() === shanghaiMidnight(s).getTime();
      return h('th', { class: `time${newDay ? ' day' : ''}`, scope: 'col' }, newDay && h('small', {}, fmtDay(s)), fmtClock(s));
    }));
  const rows = specialists.map((sp, r) => {
    const mine = bookings[r];
    return h('tr', { testid: 'calendar-row', class: pickedSpecialty && sp.specialty === pickedSpecialty ? 'match' : null, 'data-specialist': sp.username, 'data-specialty': sp.specialty || '' },
      h('th', { class: 'who', scope: 'row' }, h('strong', {}, sp.display_name), h('small', {}, label('specialty', sp.specialty))),
      slots.map((s) => {
        const end = s.getTime() + SLOT_MIN * 60e3;
        const booking = mine.find((b) => toDate(b.start).getTime() < end && toDate(b.end).getTime() > s.getTime());
        // The API refuses a start more than 5 minutes in the past.
        const past = s.getTime() < now - 5 * 60e3;
        return h('td', { class: booking ? 'busy' : past ? 'past' : 'free' }, slotButton(sp, s, booking, past, message));
      }));
  });
  return h('section', { class: 'card calendar-card', testid: 'calendar-card' },
    h('div', { class: 'toolbar' },
      h('h2', {}, t('coord.calendar')),
      h('span', { class: 'spacer' }),
      h('button', { type: 'button', class: 'ghost', testid: 'calendar-earlier', onclick: shift(-4) }, `◀ ${t('coord.earlier')}`),
      h('button', { type: 'button', class: 'ghost', testid: 'calendar-now', onclick: () => { cal.start = floorSlot(Date.now()); refresh(); } }, t('coord.now')),
      h('button', { type: 'button', class: 'ghost', testid: 'calendar-later', onclick: shift(4) }, `${t('coord.later')} ▶`),
      day,
      h('label', { class: 'inline' }, t('coord.length'), ' ', duration)),
    h('p', { class: 'small muted' }, cal.selected ? t('coord.calendar_hint_picked') : t('coord.calendar_hint')),
    message,
    specialists.length
      ? h('div', { class: 'calendar-scroll' }, h('table', { class: 'calendar', testid: 'calendar' }, h('thead', {}, head), h('tbody', {}, rows)))
      : h('p', { class: 'muted' }, t('schedule.no_specialists')),
    h('p', { class: 'legend small muted' },
      h('span', { class: 'key free' }), t('coord.key_free'), h('span', { class: 'key busy' }), t('coord.key_busy'), h('span', { class: 'key past' }), t('coord.key_past')));
}

/** @param {User} sp @param {Date} start @param {Booking | undefined} booking @param {boolean} past @param {HTMLElement} message */
function slotButton(sp, start, booking, past, message) {
  const time = fmtClock(start);
  const text = booking ? t('coord.busy') : '';
  const b = h('button', {
    type: 'button', class: 'slot', testid: 'slot', disabled: past,
    'data-specialist': sp.username, 'data-start': start.toISOString(), 'data-busy': booking ? 'true' : 'false',
    'data-consultation': booking?.consultation || null,
    title: booking ? t('coord.busy_title', { name: sp.display_name, time: `${fmtClock(booking.start)}–${fmtClock(booking.end)}` }) : `${sp.display_name} ${time}`,
    'aria-label': `${sp.display_name} ${fmtDay(start)} ${time} ${booking ? t('coord.key_busy') : t('coord.key_free')}`,
  }, text);
  const accepts = (/** @type {DragEvent} */ e) => !past && e.dataTransfer?.types.includes('text/plain');
  b.addEventListener('dragover', (e) => { if (accepts(e)) { e.preventDefault(); /** @type {DataTransfer} */ (e.dataTransfer).dropEffect = 'move'; } });
  b.addEventListener('dragenter', (e) => { if (accepts(e)) b.classList.add('over'); });
  b.addEventListener('dragleave', () => b.classList.remove('over'));
  b.addEventListener('drop', (e) => {
    e.preventDefault();
    b.classList.remove('over');
    const id = /** @type {DataTransfer} */ (e.dataTransfer).getData('text/plain'); // a drop always carries one
    if (id) schedule(id, sp, start, message);
  });
  b.addEventListener('click', () => {
    if (cal.selected) schedule(cal.selected, sp, start, message);
    else if (booking) location.hash = `#/c/${booking.consultation}`;
    else message.replaceChildren(h('p', { class: 'warn', testid: 'calendar-hint' }, t('coord.pick_first')));
  });
  return b;
}

/** @param {string} id @param {User} sp @param {Date} start @param {HTMLElement} message */
async function schedule(id, sp, start, message) {
  message.replaceChildren(h('p', { class: 'muted' }, t('common.saving')));
  try {
    /** @type {Consultation} */
    const c = await api('POST', `/v1/consultations/${id}/accept`, {
      specialists: [sp.id], start: start.toISOString(), duration_minutes: cal.duration,
    });
    cal.selected = null;
    await refresh();
    showBanner(t('coord.scheduled', { specialty: label('specialty', c.specialty), name: sp.display_name, time: fmtTime(c.start) }), 'notice');
  } catch (e) {
    const err = /** @type {import('../i18n.js').ErrorLike | null | undefined} */ (e);
    const params = { name: err?.details?.specialist ? nameOf(err.details.specialist) : sp.display_name };
    message.replaceChildren(errorBox(e, 'calendar-error', params));
    message.scrollIntoView({ block: 'nearest' });
    if (err?.code === 'invalid_state') showBanner(errorText(e));
  }
}

