// On a consultation's page: its guest links (api.md §Guest links) for whoever may invite (the
// same rule as the invite button), and how the room admits people (`settings`, auto_admit)
// for its hosts and coordinator. A link is made with an optional label and a validity; its
// full address is then shown in a read-only field with a copy button. The list says of each
// link whether it is unused, used (and by whom, as the guest named themselves), withdrawn or
// expired, until when it holds, and offers to copy an unused one again and to withdraw an open
// one. Every step renders the page again from the server's answer. The rules are guestlinks.js.
import { api, me } from '../api.js';
import { form, field, h, showBanner } from '../dom.js';
import { fmtTime, t } from '../i18n.js';
import {
  DEFAULT_VALIDITY_HOURS, MAX_LABEL_CHARS, VALIDITY_HOURS, canCopyAgain, guestUrl, isOpen, linkStatus, mayChangeSettings, sortLinks,
} from './guestlinks.js';
import { mayInvite } from './invitees.js';
import { refresh } from './nav.js';
import { nameOf } from './people.js';

/** @typedef {import('./guestlinks.js').GuestLink} GuestLink */

/**
 * The address the page shows (of the link just made, or of one asked for again), whether it
 * went to the clipboard (null: not tried yet), and whether the page was rendered for it just
 * now (then it is brought into view and focused). Kept here, not in the page, because every
 * step renders the page afresh.
 * @typedef {{ consultation: string, link: string, url: string, copied: boolean | null, fresh: boolean }} Shown
 */
/** @type {Shown | null} */
let shown = null;

/** @param {string} id @param {string} [link] */
const linksPath = (id, link) => `/v1/consultations/${encodeURIComponent(id)}/guest_links${link ? `/${encodeURIComponent(link)}` : ''}`;

/**
 * Puts `text` on the clipboard; false when this page may not (no secure context, refused):
 * the caller then selects the text for the user to copy. (The encoders' section uses it too.)
 * @param {string} text
 */
export async function toClipboard(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

/** A validity choice's words: up to a day in hours, longer in whole days. @param {number} hours */
function validityText(hours) {
  return hours > 24 && hours % 24 === 0 ? t('guests.days', { n: hours / 24 }) : t('guests.hours', { n: hours });
}

/**
 * The guest links card, or null when the signed-in user may not invite to `c` now.
 * @param {any} c the consultation
 */
export function guestLinksSection(c) {
  if (!mayInvite(c, me())) return null;
  const now = Date.now();
  const links = sortLinks(c.guests);
  if (shown && shown.consultation !== c.id) shown = null;
  return h('section', { class: 'card guests', testid: 'guest-links' },
    h('h2', {}, t('guests.title')),
    h('p', { class: 'muted small' }, t('guests.intro')),
    createForm(c),
    shown && urlBox(shown, links.find((l) => l.id === shown?.link)),
    links.length
      ? h('ul', { class: 'guest-list', testid: 'guest-link-list', dataset: { count: String(links.length) } }, links.map((l) => linkRow(c, l, now)))
      : h('p', { class: 'muted', testid: 'guest-link-none' }, t('guests.none')));
}

/** Label and validity, and the button that makes the link. @param {any} c */
function createForm(c) {
  const label = /** @type {HTMLInputElement} */ (h('input', { maxlength: MAX_LABEL_CHARS, testid: 'guest-label', placeholder: t('guests.label_placeholder'), autocomplete: 'off' }));
  const validity = /** @type {HTMLSelectElement} */ (h('select', { testid: 'guest-validity' },
    VALIDITY_HOURS.map((n) => h('option', { value: String(n), selected: n === DEFAULT_VALIDITY_HOURS }, validityText(n)))));
  return form({ class: 'step guest-create', testid: 'guest-create-form' }, [
    h('div', { class: 'grid' },
      field('guests.label', label, t('guests.label_hint', { max: MAX_LABEL_CHARS })),
      field('guests.validity', validity)),
    h('div', { class: 'actions' }, h('button', { type: 'submit', testid: 'guest-create' }, t('guests.create'))),
  ], async () => {
    const made = await api('POST', linksPath(c.id), { label: label.value.trim(), valid_hours: Number(validity.value) });
    shown = { consultation: c.id, link: made.link.id, url: guestUrl(location.origin, made.path), copied: null, fresh: true };
    await refresh();
  });
}

/**
 * The address of the link shown, read-only, with a copy button. It selects itself when
 * focused: where the clipboard is not allowed, Ctrl+C (or the menu) copies it.
 * @param {Shown} s
 * @param {GuestLink | undefined} link
 */
function urlBox(s, link) {
  const copyState = (/** @type {boolean | null} */ ok) => (ok === null ? '' : ok ? 'copied' : 'selected');
  const copyText = (/** @type {boolean | null} */ ok) => (ok === null ? '' : t(ok ? 'guests.copied' : 'guests.select_to_copy'));
  const status = h('span', { class: 'small muted', testid: 'guest-copy-status', 'aria-live': 'polite', dataset: { state: copyState(s.copied) } }, copyText(s.copied));
  const input = /** @type {HTMLInputElement} */ (h('input', {
    readonly: true, value: s.url, testid: 'guest-url', 'aria-label': t('guests.url'), class: 'grow',
    onfocus: () => input.select(),
    // The page was rendered for this link just now: bring it into view, focused (app.js).
    'data-autofocus': s.fresh || null,
  }));
  s.fresh = false;
  const copy = h('button', {
    type: 'button', class: 'ghost', testid: 'guest-copy',
    onclick: async () => {
      const ok = await toClipboard(input.value);
      if (!ok) { input.focus(); input.select(); }
      s.copied = ok;
      status.textContent = copyText(ok);
      status.dataset.state = copyState(ok);
    },
  }, t('guests.copy'));
  return h('div', { class: 'guest-url', testid: 'guest-url-box', dataset: { link: s.link } },
    h('p', { class: 'small' }, link?.label ? t('guests.url_for', { label: link.label }) : t('guests.url')),
    h('div', { class: 'row' }, input, copy),
    status,
    h('p', { class: 'muted small' }, t('guests.url_hint')));
}

/** One link: label, state, validity, and what can still be done with it. @param {any} c @param {GuestLink} l @param {number} now */
function linkRow(c, l, now) {
  const status = linkStatus(l, now);
  const actions = h('span', { class: 'row-actions' });
  const showActions = () => actions.replaceChildren(...[
    canCopyAgain(l, now) && h('button', { type: 'button', class: 'ghost small', testid: 'guest-link-copy', onclick: () => copyAgain(c, l).catch((e) => showBanner(e)) }, t('guests.copy_again')),
    isOpen(l, now) && h('button', { type: 'button', class: 'ghost small danger-text', testid: 'guest-link-revoke', onclick: askRevoke }, t('guests.revoke')),
  ].filter((x) => x instanceof Node));
  // Withdrawing takes a guest who came through the link out of the room at once: asked first.
  function askRevoke() {
    actions.replaceChildren(
      h('span', { class: 'small', testid: 'guest-link-revoke-question' }, t(l.used_at ? 'guests.revoke_confirm_used' : 'guests.revoke_confirm')),
      h('button', { type: 'button', class: 'danger small', testid: 'guest-link-revoke-confirm', onclick: () => revoke(c, l).catch((e) => { showBanner(e); showActions(); }) }, t('guests.revoke')),
      h('button', { type: 'button', class: 'ghost small', testid: 'guest-link-revoke-cancel', onclick: showActions }, t('common.cancel')));
  }
  showActions();
  return h('li', { testid: 'guest-link', dataset: { link: l.id, status } },
    h('div', { class: 'grow' },
      h('strong', { testid: 'guest-link-label' }, l.label || t('guests.no_label')), ' ',
      h('span', { class: `badge guest-${status}`, testid: 'guest-link-status' },
        status === 'used' ? t('guests.status.used_by', { name: l.guest_name ?? '' }) : t(`guests.status.${status}`)),
      h('div', { class: 'muted small' },
        t('guests.expires', { time: fmtTime(l.expires_at) }),
        l.revoked_at ? ` · ${t('guests.revoked_at', { time: fmtTime(l.revoked_at) })}` : '',
        // A withdrawn or expired link still says who came through it.
        status !== 'used' && l.guest_name ? ` · ${t('guests.came', { name: l.guest_name })}` : '',
        ` · ${t('guests.created_by', { name: nameOf(l.created_by), time: fmtTime(l.created_at) })}`)),
    actions);
}

/** Asks the server for the link again and shows (and copies) its address. @param {any} c @param {GuestLink} l */
async function copyAgain(c, l) {
  const again = await api('GET', linksPath(c.id, l.id));
  const url = guestUrl(location.origin, again.path);
  shown = { consultation: c.id, link: l.id, url, copied: await toClipboard(url), fresh: true };
  await refresh();
}

/** @param {any} c @param {GuestLink} l */
async function revoke(c, l) {
  await api('POST', `${linksPath(c.id, l.id)}/revoke`, {});
  if (shown?.link === l.id) shown = null;
  await refresh();
  showBanner(t('guests.revoked_done'), 'notice');
}

/**
 * How the room admits people (`settings`): a checkbox for the hosts and the coordinator, or
 * null for anyone else and once the consultation is closed.
 * @param {any} c the consultation
 */
export function roomSettingsSection(c) {
  if (!mayChangeSettings(c, me())) return null;
  const box = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', checked: Boolean(c.auto_admit), testid: 'auto-admit' }));
  box.addEventListener('change', async () => {
    const on = box.checked;
    box.disabled = true;
    try {
      await api('POST', `/v1/consultations/${encodeURIComponent(c.id)}/settings`, { auto_admit: on });
      await refresh();
      showBanner(t(on ? 'settings.auto_admit_on' : 'settings.auto_admit_off'), 'notice');
    } catch (e) {
      box.checked = !on;
      showBanner(e);
    } finally {
      box.disabled = false;
    }
  });
  return h('section', { class: 'card', testid: 'room-settings', dataset: { autoAdmit: String(Boolean(c.auto_admit)) } },
    h('h2', {}, t('settings.title')),
    h('label', { class: 'check' }, box, t('settings.auto_admit')),
    h('p', { class: 'muted small' }, t(c.kind === 'teaching' ? 'settings.auto_admit_hint_teaching' : 'settings.auto_admit_hint')),
    h('p', { class: 'muted small' }, t('settings.guests_wait')));
}
