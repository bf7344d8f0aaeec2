// On a consultation's page: its referrals (双向转诊, docs/api.md "Referrals"): each one's
// direction, sites, department, status, dates and texts, the link to its printable form
// (referralsheet.js), and the steps the signed-in user may take on it: the receiving site's
// coordinator accepts with a date or declines, records the admission and the discharge (whose
// instructions make the referral back down); the referring doctor may withdraw it; the
// requesting doctor refers the patient up and takes a down referral back. Every step renders
// the page again from the server's answer; a refusal is shown in the step's form, in the
// user's language. The rules are referralfacts.js.
import { api, me } from '../api.js';
import { field, form, h, options, showBanner } from '../dom.js';
import { fmtTime, label, t } from '../i18n.js';
import { URGENCIES } from './enums.js';
import { refresh } from './nav.js';
import { loadSites, siteById, userById } from './people.js';
import {
  MAX_DEPARTMENT_CHARS, MAX_REASON_CHARS, beijingDay, mayRefer, receivingSites, referralSteps, referralTimes,
} from './referralfacts.js';

/** @typedef {import('./people.js').Consultation} Consultation */
/** @typedef {import('./people.js').Site} Site */
/** @typedef {import('./referralfacts.js').Referral} Referral */
/** @typedef {import('./referralfacts.js').ReferralStep} ReferralStep */

/** A site's name, or its id when this page does not know it. @param {string} id */
export const siteName = (id) => siteById(id)?.name ?? id;

/**
 * A person's name when this page knows them, else null: the referral's coordinator at the
 * receiving site is not always among the consultation's people.
 * @param {string | null | undefined} id
 */
export function knownName(id) {
  if (!id) return null;
  const self = me();
  if (self?.id === id) return self.display_name;
  return userById(id)?.display_name ?? null;
}

/**
 * The label of a referral time ('referral.time.…'): the decision is an acceptance or a refusal.
 * @param {Referral} r @param {string} what
 */
export function timeKey(r, what) {
  // A referral down is made by the discharge: its "request" is the patient sent back.
  if (what === 'requested' && r.direction === 'down') return 'referral.time.sent_down';
  if (what !== 'decided') return `referral.time.${what}`;
  return r.status === 'declined' ? 'referral.time.declined' : 'referral.time.accepted';
}

/**
 * [catalogue key, text, test id] rows describing referral `r`, for the page and the form.
 * `withSites`: the sites too (the page has them in the referral's heading already).
 * @param {Referral} r @param {boolean} [withSites]
 * @returns {Array<[string, string, string]>}
 */
export function referralFacts(r, withSites = true) {
  /** @type {Array<[string, string, string] | null>} */
  const rows = [
    withSites ? ['referral.from', siteName(r.from_site), 'from'] : null,
    withSites ? ['referral.to', siteName(r.to_site), 'to'] : null,
    ['referral.department', r.department, 'department'],
    ['field.urgency', label('urgency', r.urgency), 'urgency'],
    r.planned_date ? ['referral.planned_date', r.planned_date, 'planned_date'] : null,
    ...referralTimes(r).map(([what, at]) => {
      const by = what === 'requested' ? knownName(r.requested_by) : what === 'decided' ? knownName(r.decided_by) : null;
      return /** @type {[string, string, string]} */ ([timeKey(r, what), by ? `${fmtTime(at)} · ${by}` : fmtTime(at), `time-${what}`]);
    }),
  ];
  return /** @type {Array<[string, string, string]>} */ (rows.filter(Boolean));
}

/**
 * The referrals card, or null when there is none and the user may not make one. Loads the
 * sites (their names, the choice of the receiving one).
 * @param {Consultation} c
 */
export async function referralsSection(c) {
  const u = me();
  const referrals = c.referrals ?? [];
  const refer = mayRefer(c, u);
  if (!referrals.length && !refer) return null;
  /** @type {Site[]} */
  const sites = await loadSites().catch((e) => { showBanner(e); return []; });
  return h('section', { class: 'card referrals', testid: 'referrals', dataset: { count: String(referrals.length) } },
    h('h2', {}, t('referral.title')),
    referrals.length
      ? h('ol', { class: 'referral-list' }, referrals.map((r) => referralItem(c, r)))
      : h('p', { class: 'muted', testid: 'referral-none' }, t('referral.none')),
    refer && referForm(c, sites));
}

/** One referral with the steps the user may take on it. @param {Consultation} c @param {Referral} r */
function referralItem(c, r) {
  const text = r.reason ?? '';
  return h('li', { class: `referral referral-${r.direction}`, testid: 'referral', dataset: { id: r.id, direction: r.direction, status: r.status } },
    h('div', { class: 'referral-head' },
      h('span', { class: `badge direction-${r.direction}`, testid: 'referral-direction' }, label('referral.direction', r.direction)),
      h('strong', { class: 'grow', testid: 'referral-route' }, `${siteName(r.from_site)} → ${siteName(r.to_site)}`),
      h('span', { class: `badge referral-status-${r.status}`, testid: 'referral-status' }, label('referral.status', r.status)),
      h('a', { href: `#/c/${c.id}/referral/${r.id}`, class: 'button ghost small', testid: 'referral-sheet-open' }, t('referral.sheet'))),
    h('dl', { class: 'facts' }, referralFacts(r, false).map(([k, v, id]) => [h('dt', {}, t(k)), h('dd', { testid: `referral-${id}` }, v)])),
    text && h('div', { class: 'referral-text' },
      h('h3', {}, t(r.direction === 'down' ? 'referral.instructions' : 'referral.reason')),
      h('p', { class: 'text', testid: 'referral-reason' }, text)),
    r.refusal && h('div', { class: 'referral-text' },
      h('h3', {}, t(r.status === 'declined' ? 'referral.refusal.declined' : 'referral.refusal.cancelled')),
      h('p', { class: 'text', testid: 'referral-refusal' }, r.refusal)),
    referralSteps(c, r, me()).map((step) => stepForm(c, r, step)));
}

/**
 * The form of one step: what it asks for (a date, a reason, the instructions, or nothing), its
 * button, and the refusal under it.
 * @param {Consultation} c @param {Referral} r @param {ReferralStep} step
 */
function stepForm(c, r, step) {
  /** @type {Node | null} */
  let controls = null;
  /** @type {() => Record<string, string>} */
  let body = () => ({});
  if (step === 'accept') {
    // Today or later, in Beijing: the server refuses a day that has passed.
    const date = h('input', { type: 'date', required: true, min: beijingDay(Date.now()), value: beijingDay(Date.now(), 1), testid: 'referral-accept-date' });
    controls = field('referral.planned_date', date);
    body = () => ({ planned_date: date.value });
  } else if (step === 'decline' || step === 'cancel') {
    const reason = h('textarea', { rows: 2, maxlength: MAX_REASON_CHARS, required: true, testid: `referral-${step}-reason` });
    controls = field(step === 'decline' ? 'referral.refusal.declined' : 'referral.refusal.cancelled', reason);
    body = () => ({ reason: reason.value });
  } else if (step === 'discharge') {
    const instructions = h('textarea', { rows: 4, maxlength: MAX_REASON_CHARS, required: true, testid: 'referral-discharge-instructions' });
    controls = field('referral.instructions', instructions, t('referral.instructions_hint'));
    body = () => ({ instructions: instructions.value });
  } else {
    controls = h('p', { class: 'muted small' }, t(`referral.hint.${step}`));
  }
  const danger = step === 'decline' || step === 'cancel';
  return form({ class: 'step referral-step', testid: `referral-${step}-form`, dataset: { step } }, [
    controls,
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: danger ? 'danger' : null, testid: `referral-${step}-submit` }, t(`referral.action.${step}`))),
  ], async () => {
    await api('POST', `/v1/consultations/${encodeURIComponent(c.id)}/referrals/${encodeURIComponent(r.id)}/${step}`, body());
    await refresh();
    showBanner(t('action.done'), 'notice');
  });
}

/**
 * The requesting doctor's referral up: folded behind its button until wanted (most
 * consultations need none).
 * @param {Consultation} c @param {Site[]} sites
 */
function referForm(c, sites) {
  const choices = receivingSites(sites, c.requester_site);
  const site = h('select', { required: true, testid: 'referral-to-site' },
    h('option', { value: '' }, t('referral.choose_site')),
    choices.map((s) => h('option', { value: s.id }, s.name)));
  const department = h('input', {
    type: 'text', maxlength: MAX_DEPARTMENT_CHARS, required: true, autocomplete: 'off',
    placeholder: t('referral.department_placeholder'), testid: 'referral-department',
  });
  const urgency = h('select', { testid: 'referral-urgency' }, options('urgency', URGENCIES, 'routine'));
  const reason = h('textarea', { rows: 4, maxlength: MAX_REASON_CHARS, required: true, testid: 'referral-reason-input' });
  const open = h('button', { type: 'button', testid: 'referral-open', 'aria-expanded': 'false' }, t('referral.refer'));
  const close = h('button', { type: 'button', class: 'ghost', testid: 'referral-close' }, t('common.cancel'));
  const f = form({ class: 'step referral-new', testid: 'referral-form', hidden: true }, [
    h('h3', {}, t('referral.new_title')),
    h('div', { class: 'grid' },
      field('referral.to_site', site), field('referral.department', department), field('field.urgency', urgency)),
    field('referral.reason', reason, t('referral.reason_hint')),
    h('div', { class: 'actions' }, close, h('button', { type: 'submit', testid: 'referral-submit' }, t('referral.submit'))),
  ], async () => {
    await api('POST', `/v1/consultations/${encodeURIComponent(c.id)}/referrals`, {
      to_site: site.value, department: department.value, reason: reason.value, urgency: urgency.value,
    });
    await refresh();
    showBanner(t('referral.sent'), 'notice');
  });
  /** @param {boolean} shown */
  const show = (shown) => {
    f.hidden = !shown;
    open.hidden = shown;
    open.setAttribute('aria-expanded', String(shown));
    if (shown) site.focus(); else open.focus();
  };
  open.addEventListener('click', () => show(true));
  close.addEventListener('click', () => show(false));
  return h('div', { class: 'referral-refer' }, open, f);
}
