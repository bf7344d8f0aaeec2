// The starter client: sign in, my consultations, request, schedule, detail with the lifecycle
// steps and the join check. Routes: #/ (list), #/new (request), #/c/<id> (detail).
import { api, ApiError, login, logout, me, onSignedOut } from './api.js';
import {
  LANGS, errorText, fmtRange, fmtTime, initI18n, instantToShanghai, label, lang, setLang, shanghaiToInstant, t, toDate,
} from './i18n.js';

const STATUSES = ['requested', 'scheduled', 'live', 'ended', 'reported', 'rejected', 'cancelled', 'no_show'];
const KINDS = ['consultation', 'case_discussion', 'teaching'];
const URGENCIES = ['routine', 'urgent', 'emergency'];
const RECORDING = ['off', 'allowed', 'required'];
const SPECIALTIES = ['cardiology', 'neurology', 'general_surgery', 'internal_medicine', 'general_practice', 'pediatrics', 'obstetrics', 'radiology'];

const view = document.getElementById('view');
const header = document.getElementById('header');
const banner = document.getElementById('banner');
const list = { status: '', mine: false };
let specialists = null; // UserView[] for coordinators, loaded once
let people = new Map(); // user id → UserView, from the last report
let seq = 0;
let loginNotice = null;
/** The mounted call screen (#/c/<id>/call), unmounted when the route changes. */
let call = null;

/** Builds an element: h('button', { onclick, testid: 'x' }, 'text', child…). Text is never HTML. */
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'testid') el.dataset.testid = v;
    else if (['value', 'checked', 'disabled', 'required'].includes(k)) el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of kids.flat(Infinity)) {
    if (c != null && c !== false) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const options = (group, values, selected) =>
  values.map((v) => h('option', { value: v, selected: v === selected }, label(group, v)));

function field(key, control, hint) {
  return h('label', { class: 'field' }, h('span', {}, t(key)), control, hint && h('small', {}, hint));
}

function errorBox(err, testid = 'form-error', params = {}) {
  return h('p', { class: 'error', role: 'alert', testid }, errorText(err, params));
}

function nameOf(id) {
  return people.get(id)?.display_name ?? specialists?.find((s) => s.id === id)?.display_name ?? id;
}

function errParams(err) {
  return err?.details?.specialist ? { name: nameOf(err.details.specialist) } : {};
}

function showBanner(err, kind = 'error') {
  banner.replaceChildren(typeof err === 'string' ? err : errorText(err, errParams(err)));
  banner.className = kind;
  banner.hidden = false;
}

function clearBanner() { banner.hidden = true; banner.replaceChildren(); }

/** Runs a form's submit: disables its buttons, shows the error inside it (testid x-error for x-form). */
async function submitting(form, fn) {
  const testid = (form.dataset.testid || 'form').replace(/-form$/, '') + '-error';
  form.querySelector('.error')?.remove();
  const buttons = [...form.querySelectorAll('button')];
  buttons.forEach((b) => { b.disabled = true; });
  try {
    await fn();
  } catch (e) {
    form.append(errorBox(e, testid, errParams(e)));
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

// ---- frame ----

function renderHeader() {
  const u = me();
  header.replaceChildren(...[
    h('a', { href: '#/', class: 'brand' }, t('app.title')),
    h('span', { class: 'spacer' }),
    u && h('span', { class: 'who', testid: 'user-name' }, `${u.display_name} · ${label('role', u.role)}`),
    h('select', {
      testid: 'lang-switch', 'aria-label': t('app.language'),
      onchange: (e) => { setLang(e.target.value); document.title = t('app.title'); route(); },
    }, LANGS.map((l) => h('option', { value: l, selected: l === lang() }, t(`lang.${l}`)))),
    u && h('button', { class: 'ghost', testid: 'logout', onclick: signOut }, t('auth.logout')),
  ].filter(Boolean));
}

async function signOut() {
  await logout();
  specialists = null;
  location.hash = '#/';
  route();
}

async function route() {
  const mine = ++seq;
  const current = () => mine === seq;
  clearBanner();
  renderHeader();
  if (!me()) { renderLogin(); return; }
  const path = location.hash.slice(1) || '/';
  const detail = path.match(/^\/c\/([A-Za-z0-9_-]{1,64})$/);
  const callRoute = path.match(/^\/c\/([A-Za-z0-9_-]{1,64})\/call$/);
  if (call) { const c = call; call = null; c.unmount(); }
  if (callRoute) {
    try {
      const mod = await import('./call/index.js');
      const mounted = await mod.mount(view, { consultationId: callRoute[1] });
      if (current()) call = mounted; else mounted.unmount();
    } catch (e) {
      if (current()) view.replaceChildren(errorBox(e, 'view-error'), h('a', { href: '#/', testid: 'back' }, t('common.back')));
    }
    return;
  }
  view.replaceChildren(h('p', { class: 'muted' }, t('common.loading')));
  try {
    let nodes;
    if (path === '/new') nodes = requestForm();
    else if (detail) nodes = await detailView(detail[1]);
    else nodes = await homeView();
    if (current()) view.replaceChildren(...[nodes].flat());
  } catch (e) {
    if (!current()) return;
    if (!me()) { renderLogin(); return; }
    view.replaceChildren(errorBox(e, 'view-error'), h('a', { href: '#/', testid: 'back' }, t('common.back')));
  }
}

// ---- sign in ----

function renderLogin() {
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, testid: 'login-username' });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, testid: 'login-password' });
  const form = h('form', { class: 'card narrow', testid: 'login-form' },
    h('h1', {}, t('auth.title')),
    loginNotice && errorBox(loginNotice, 'login-notice'),
    field('auth.username', user),
    field('auth.password', pass),
    h('button', { type: 'submit', testid: 'login-submit' }, t('auth.submit')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    submitting(form, async () => {
      await login(user.value.trim(), pass.value);
      loginNotice = null;
      route();
    });
  });
  view.replaceChildren(form);
  user.focus();
}

// ---- home ----

async function homeView() {
  const u = me();
  const coordinator = u.role === 'coordinator';
  const q = new URLSearchParams({ limit: '50' });
  if (list.status) q.set('status', list.status);
  if (coordinator && list.mine) q.set('mine', 'true');
  const page = await api('GET', `/v1/consultations?${q}`);
  const ul = h('ul', { class: 'list', testid: 'consultation-list' });
  let next = page.next_offset;
  const more = h('button', { class: 'ghost', testid: 'load-more', hidden: next == null }, t('list.more'));
  more.onclick = async () => {
    more.disabled = true;
    try {
      q.set('offset', String(next));
      const p = await api('GET', `/v1/consultations?${q}`);
      ul.append(...p.items.map(row));
      next = p.next_offset;
      more.hidden = next == null;
    } catch (e) { showBanner(e); } finally { more.disabled = false; }
  };
  ul.append(...page.items.map(row));
  const filters = h('div', { class: 'toolbar' },
    h('select', {
      testid: 'status-filter', 'aria-label': t('list.filter'),
      onchange: (e) => { list.status = e.target.value; route(); },
    }, h('option', { value: '' }, t('list.all')), options('status', STATUSES, list.status)),
    coordinator && h('label', { class: 'check' }, h('input', {
      type: 'checkbox', checked: list.mine, testid: 'mine-only',
      onchange: (e) => { list.mine = e.target.checked; route(); },
    }), t('list.mine_only')),
    h('span', { class: 'spacer' }),
    u.role === 'doctor' && h('a', { class: 'button', href: '#/new', testid: 'new-request' }, t('request.new')));
  return [
    h('h1', {}, t(coordinator && !list.mine ? 'list.queue' : 'list.mine')),
    filters,
    page.items.length ? ul : h('p', { class: 'muted', testid: 'consultation-list-empty' }, t('list.empty')),
    h('p', { class: 'muted small' }, t('list.total', { n: page.total }), ' · ', t('common.zone_note')),
    more,
  ];
}

// Lists never show the case summary: it is patient data, shown only in the detail view.
function row(c) {
  const when = c.start ? fmtTime(c.start) : t('list.not_scheduled');
  return h('li', { testid: 'consultation-item', 'data-id': c.id, 'data-status': c.status },
    h('a', { href: `#/c/${c.id}` },
      h('span', { class: `badge status-${c.status}` }, label('status', c.status)),
      h('span', { class: 'grow' },
        h('strong', {}, label('specialty', c.specialty)), ' · ', label('kind', c.kind)),
      h('span', { class: `badge urgency-${c.urgency}` }, label('urgency', c.urgency)),
      h('time', { datetime: c.start || '' }, when)));
}

// ---- request ----

function requestForm() {
  if (me().role !== 'doctor') return h('p', { class: 'muted' }, t('request.doctors_only'));
  const kind = h('select', { testid: 'request-kind' }, options('kind', KINDS, 'consultation'));
  const specialty = h('select', { testid: 'request-specialty' }, options('specialty', SPECIALTIES, 'cardiology'));
  const urgency = h('select', { testid: 'request-urgency' }, options('urgency', URGENCIES, 'routine'));
  const recording = h('select', { testid: 'request-recording' }, options('recording', RECORDING, 'off'));
  const summary = h('textarea', { rows: 6, maxlength: 4000, required: true, testid: 'request-summary' });
  const warn = h('p', { class: 'warn', hidden: true, testid: 'emergency-warning' }, t('request.emergency_warning'));
  urgency.onchange = () => { warn.hidden = urgency.value !== 'emergency'; };
  const form = h('form', { class: 'card', testid: 'request-form' },
    h('h1', {}, t('request.new')),
    h('div', { class: 'grid' },
      field('field.kind', kind), field('field.specialty', specialty),
      field('field.urgency', urgency), field('field.recording', recording)),
    warn,
    field('field.summary', summary, t('request.summary_hint')),
    h('div', { class: 'actions' },
      h('a', { href: '#/', class: 'button ghost', testid: 'back' }, t('common.cancel')),
      h('button', { type: 'submit', testid: 'request-submit' }, t('request.submit'))));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    submitting(form, async () => {
      const c = await api('POST', '/v1/consultations', {
        kind: kind.value, specialty: specialty.value, urgency: urgency.value,
        recording: recording.value, summary: summary.value,
      });
      location.hash = `#/c/${c.id}`;
    });
  });
  return form;
}

// ---- detail ----

async function detailView(id) {
  const report = await api('GET', `/v1/consultations/${encodeURIComponent(id)}/report`);
  const c = report.consultation;
  people = new Map(report.people.map((p) => [p.id, p]));
  const u = me();
  if (u.role === 'coordinator' && !specialists && ['requested', 'scheduled', 'live'].includes(c.status)) {
    try {
      specialists = (await api('GET', '/v1/users?role=specialist')).items.filter((s) => !s.disabled);
    } catch (e) { showBanner(e); }
  }
  const names = (ids) => (ids.length ? ids.map(nameOf).join('、') : '—');
  const facts = [
    ['field.kind', label('kind', c.kind)],
    ['field.specialty', label('specialty', c.specialty)],
    ['field.urgency', label('urgency', c.urgency)],
    ['field.recording', label('recording', c.recording)],
    ['field.requester', `${nameOf(c.requester)}${report.requester_site ? ` · ${report.requester_site.name}` : ''}`],
    ['field.coordinator', c.coordinator ? nameOf(c.coordinator) : '—'],
    ['field.specialists', names(c.specialists)],
    c.participants.length && ['field.participants', names(c.participants)],
    c.wished && ['field.wished', fmtRange(c.wished.from, c.wished.to)],
    ['field.start', c.start && c.duration_minutes
      ? `${fmtRange(c.start, new Date(toDate(c.start).getTime() + c.duration_minutes * 60e3))} (${t('common.minutes', { n: c.duration_minutes })})`
      : t('list.not_scheduled')],
    c.started_at && ['field.started_at', fmtTime(c.started_at)],
    c.ended_at && ['field.ended_at', fmtTime(c.ended_at)],
    c.reason && ['field.reason', c.reason],
    ['field.created_at', fmtTime(c.created_at)],
  ].filter(Boolean);
  return h('div', { testid: 'detail', 'data-id': c.id, 'data-status': c.status },
    h('a', { href: '#/', class: 'back', testid: 'back' }, `← ${t('common.back')}`),
    h('h1', {}, label('specialty', c.specialty), ' ',
      h('span', { class: `badge status-${c.status}`, testid: 'detail-status' }, label('status', c.status))),
    h('section', { class: 'card' },
      h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', {}, t(k)), h('dd', { testid: `fact-${k.slice(6)}` }, v)])),
      h('h2', {}, t('field.summary')),
      h('p', { class: 'text', testid: 'summary' }, c.summary)),
    opinionsSection(c),
    joinSection(c),
    actionsSection(c));
}

function opinionsSection(c) {
  if (!c.opinions.length && !c.plan) return null;
  return h('section', { class: 'card', testid: 'opinions' },
    h('h2', {}, t('detail.opinions')),
    c.opinions.map((o) => h('article', { class: 'opinion' },
      h('header', {}, h('strong', {}, nameOf(o.author)), ' · ',
        o.signed_at ? t('detail.signed_at', { time: fmtTime(o.signed_at) }) : t('detail.draft', { time: fmtTime(o.updated_at) })),
      h('p', { class: 'text' }, o.text))),
    c.plan && [h('h2', {}, t('detail.plan')),
      h('p', { class: 'muted small' }, `${nameOf(c.plan.author)} · ${fmtTime(c.plan.recorded_at)}`),
      h('p', { class: 'text', testid: 'plan' }, c.plan.text)]);
}

function joinSection(c) {
  if (!['requested', 'scheduled', 'live'].includes(c.status)) return null;
  const out = h('div', { 'aria-live': 'polite' });
  const button = h('button', { testid: 'join' }, t('join.button'));
  button.onclick = async () => {
    button.disabled = true;
    out.replaceChildren();
    try {
      const r = await api('POST', `/v1/consultations/${c.id}/join`, {});
      const g = r.grants || {};
      const grants = ['can_publish', 'can_subscribe', 'can_record', 'room_admin'].filter((k) => g[k]).map((k) => t(`join.grant.${k}`));
      out.replaceChildren(h('div', { class: 'ok', testid: 'join-result' },
        h('p', {}, h('strong', {}, t('join.ok'))),
        h('p', {}, t('join.expires', { time: fmtTime(r.expires_at) })),
        h('p', {}, t('join.grants', { list: grants.join('、') || '—' })),
        h('p', { class: 'muted small' }, t('join.room_later'))));
    } catch (e) {
      out.replaceChildren(errorBox(e, 'join-error'));
    } finally { button.disabled = false; }
  };
  return h('section', { class: 'card' }, h('h2', {}, t('join.title')), button, out);
}

/** A small form that posts one lifecycle step and reloads the detail view. */
function stepForm(c, action, titleKey, controls, body, opts = {}) {
  const submit = h('button', { type: 'submit', class: opts.danger ? 'danger' : null, testid: opts.testid || `${action}-submit` }, t(opts.button || `action.${action}`));
  const form = h('form', { class: 'step', testid: `${action}-form` },
    titleKey && h('h3', {}, t(titleKey)), controls, h('div', { class: 'actions' }, opts.extra, submit));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (opts.confirm && !window.confirm(t(opts.confirm))) return;
    const send = e.submitter?.dataset.sign === 'true' ? opts.signBody : body;
    submitting(form, async () => {
      await api('POST', `/v1/consultations/${c.id}/${action}`, send ? send() : {});
      route();
      showBanner(t('action.done'), 'notice');
    });
  });
  return form;
}

function specialistPicker(action, chosen, specialty) {
  const sorted = [...(specialists || [])].sort((a, b) => (b.specialty === specialty) - (a.specialty === specialty));
  const boxes = sorted.map((s) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', value: s.id, checked: chosen.includes(s.id), testid: `${action}-specialist` }),
    `${s.display_name} · ${label('specialty', s.specialty)}`));
  const el = h('fieldset', {}, h('legend', {}, t('field.specialists')),
    boxes.length ? boxes : h('p', { class: 'muted' }, t('schedule.no_specialists')),
    h('small', {}, t('schedule.lead_hint')));
  // The first specialist leads: keep them in the order they were ticked.
  const order = [...chosen];
  el.addEventListener('change', (e) => {
    const v = e.target.value;
    const i = order.indexOf(v);
    if (e.target.checked && i < 0) order.push(v);
    if (!e.target.checked && i >= 0) order.splice(i, 1);
  });
  return { el, value: () => [...order] };
}

function scheduleForm(c, action) {
  const first = specialists?.find((s) => s.specialty === c.specialty);
  const pick = specialistPicker(action, c.specialists.length ? c.specialists : first ? [first.id] : [], c.specialty);
  const soon = new Date(Math.ceil((Date.now() + 3600e3) / 1800e3) * 1800e3);
  const start = h('input', { type: 'datetime-local', required: true, value: instantToShanghai(c.start ? toDate(c.start) : soon), testid: `${action}-start` });
  const duration = h('input', { type: 'number', min: 10, max: 480, step: 5, required: true, value: String(c.duration_minutes || 30), testid: `${action}-duration` });
  const recording = h('select', { testid: `${action}-recording` }, options('recording', RECORDING, c.recording));
  const controls = [pick.el, h('div', { class: 'grid' },
    field('schedule.start', start, t('schedule.start_hint')),
    field('schedule.duration', duration),
    action === 'accept' && field('field.recording', recording))];
  return stepForm(c, action, `action.${action}.title`, controls, () => {
    const b = { specialists: pick.value(), start: shanghaiToInstant(start.value), duration_minutes: Number(duration.value) };
    if (action === 'accept') b.recording = recording.value;
    return b;
  });
}

function reasonForm(c, action) {
  const reason = h('textarea', { rows: 2, maxlength: 1000, required: true, testid: `${action}-reason` });
  return stepForm(c, action, `action.${action}.title`, field('field.reason', reason), () => ({ reason: reason.value }), { danger: true });
}

function actionsSection(c) {
  const u = me();
  const coordinator = u.role === 'coordinator';
  const host = c.specialists[0] === u.id || c.coordinator === u.id || (c.urgency === 'emergency' && c.requester === u.id);
  const requester = u.role === 'doctor' && c.requester === u.id;
  const steps = [];
  if (coordinator && c.status === 'requested') steps.push(scheduleForm(c, 'accept'), reasonForm(c, 'reject'));
  if (coordinator && c.status === 'scheduled') steps.push(scheduleForm(c, 'reschedule'));
  if (coordinator && c.status === 'live') {
    const pick = specialistPicker('assign', [], c.specialty);
    steps.push(stepForm(c, 'assign', 'action.assign.title', pick.el, () => ({ specialists: pick.value() })));
  }
  if ((coordinator || host) && c.status === 'scheduled') steps.push(stepForm(c, 'start', null, null, null));
  if ((coordinator || host) && c.status === 'live') steps.push(stepForm(c, 'end', null, null, null, { confirm: 'action.end.confirm' }));
  if (coordinator && c.status === 'scheduled') steps.push(stepForm(c, 'no_show', null, null, null, { confirm: 'action.no_show.confirm' }));
  const own = c.opinions.find((o) => o.author === u.id);
  if (u.role === 'specialist' && c.specialists.includes(u.id) && ['live', 'ended'].includes(c.status) && !own?.signed_at) {
    const text = h('textarea', { rows: 6, maxlength: 20000, value: own?.text || '', testid: 'opinion-text' });
    const sign = h('button', { type: 'submit', 'data-sign': 'true', testid: 'opinion-sign' }, t('action.opinion.sign'));
    steps.push(stepForm(c, 'opinion', 'action.opinion.title', field('field.opinion', text, t('action.opinion.hint')),
      () => ({ text: text.value, sign: false }),
      { button: 'action.opinion.draft', testid: 'opinion-draft', extra: sign, signBody: () => ({ text: text.value, sign: true }) }));
    sign.addEventListener('click', (e) => { if (!window.confirm(t('action.opinion.confirm'))) e.preventDefault(); });
  }
  if (requester && c.status === 'ended') {
    const text = h('textarea', { rows: 5, maxlength: 20000, required: true, testid: 'plan-text' });
    const hint = c.opinions.some((o) => o.signed_at) ? null : t('action.plan.needs_opinion');
    steps.push(stepForm(c, 'plan', 'action.plan.title', field('field.plan', text, hint), () => ({ text: text.value })));
  }
  if ((coordinator || requester) && ['requested', 'scheduled'].includes(c.status)) steps.push(reasonForm(c, 'cancel'));
  if (!steps.length) return null;
  return h('section', { class: 'card', testid: 'actions' }, h('h2', {}, t('detail.actions')), steps);
}

// ---- start ----

onSignedOut((err) => {
  loginNotice = err.code === 'token_missing' ? null : err;
  specialists = null;
  route();
});
window.addEventListener('hashchange', route);
window.addEventListener('unhandledrejection', (e) => {
  showBanner(e.reason instanceof ApiError ? e.reason : t('error.unexpected'));
});
window.addEventListener('error', () => showBanner(t('error.unexpected')));

await initI18n();
document.title = t('app.title');
route();
