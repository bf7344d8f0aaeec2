// On a consultation's page: its encoder credentials (api.md §Encoders: publishing by WHIP,
// RFC 9725), for its hosts and coordinator while it is not over. An operating room's encoder
// (a laparoscopy tower's hardware encoder, OBS beside the table) publishes into the call with
// a WHIP URL and a bearer token that its operator enters once. A credential is made with a
// label (the encoder's name in the call) and a validity; the URL and the token are then shown
// in read-only fields, each with a copy button, with a line on where OBS takes them. The list
// says of each credential whether it is active, withdrawn or expired and until when it holds,
// and offers to show an active one again (newly signed) and to withdraw it (asked first: it
// takes a publishing encoder out of the call). Every step renders the page again from the
// server's answer. The rules are encoderlinks.js; the guest links' section (guests.js) is the
// model, and its clipboard helper is shared.
import { ApiError, api, me } from '../api.js';
import { form, field, h, showBanner } from '../dom.js';
import { fmtTime, t } from '../i18n.js';
import {
  DEFAULT_VALIDITY_HOURS, MAX_ENCODER_LINKS, MAX_LABEL_CHARS, VALIDITY_HOURS, canCreateMore, cleanLabel, encoderStatus,
  isActive, mayManageEncoders, sortEncoders, validityParts, whipUrl,
} from './encoderlinks.js';
import { toClipboard } from './guests.js';
import { refresh } from './nav.js';
import { nameOf } from './people.js';

/** @typedef {import('./encoderlinks.js').EncoderLink} EncoderLink */

/**
 * The credential the page shows (just made, or asked for again): the URL, the token, what the
 * last copy did (which field, and whether the clipboard took it), and whether the page was
 * rendered for it just now (then it is brought into view and focused). Kept here, not in the
 * page, because every step (and every change pushed by the server) renders the page afresh.
 * The token is a secret: it lives only in this page's memory, and "hide" forgets it.
 * @typedef {{ consultation: string, encoder: string, url: string, token: string,
 *   copied: { what: 'url' | 'token', ok: boolean } | null, fresh: boolean }} Shown
 */
/** @type {Shown | null} */
let shown = null;

/** @param {string} id @param {string} [encoder] */
const encodersPath = (id, encoder) => `/v1/consultations/${encodeURIComponent(id)}/encoders${encoder ? `/${encodeURIComponent(encoder)}` : ''}`;

/** A validity choice's words (encoderlinks.js says hours or days). @param {number} hours */
function validityText(hours) {
  const { unit, n } = validityParts(hours);
  return t(unit === 'days' ? 'guests.days' : 'guests.hours', { n });
}

/**
 * The encoders card, or null when the signed-in user may not manage encoders of `c` now.
 * @param {any} c the consultation
 */
export function encodersSection(c) {
  if (!mayManageEncoders(c, me())) return null;
  const now = Date.now();
  /** @type {EncoderLink[]} */
  const list = sortEncoders(c.encoders, now);
  if (shown && shown.consultation !== c.id) shown = null;
  // Withdrawn (here or elsewhere) or run out while shown: its token opens nothing any more.
  const shownLink = shown ? list.find((e) => e.id === shown?.encoder) : undefined;
  if (shown && (!shownLink || !isActive(shownLink, now))) shown = null;
  return h('section', { class: 'card encoders', testid: 'encoder-links' },
    h('h2', {}, t('encoders.title')),
    h('p', { class: 'muted small' }, t('encoders.intro')),
    canCreateMore(c.encoders)
      ? createForm(c)
      : h('p', { class: 'muted small', testid: 'encoder-limit' }, t('error.too_many_encoder_links', { max: MAX_ENCODER_LINKS })),
    shown && shownLink && secretBox(shown, shownLink),
    list.length
      ? h('ul', { class: 'encoder-list', testid: 'encoder-link-list', dataset: { count: String(list.length) } }, list.map((e) => encoderRow(c, e, now)))
      : h('p', { class: 'muted', testid: 'encoder-link-none' }, t('encoders.none')));
}

/** Label (required: it names the encoder in the call) and validity, and the button that makes the credential. @param {any} c */
function createForm(c) {
  const label = /** @type {HTMLInputElement} */ (h('input', {
    maxlength: MAX_LABEL_CHARS, required: true, testid: 'encoder-label', placeholder: t('encoders.label_placeholder'), autocomplete: 'off',
  }));
  const validity = /** @type {HTMLSelectElement} */ (h('select', { testid: 'encoder-validity' },
    VALIDITY_HOURS.map((n) => h('option', { value: String(n), selected: n === DEFAULT_VALIDITY_HOURS }, validityText(n)))));
  return form({ class: 'step encoder-create', testid: 'encoder-create-form' }, [
    h('div', { class: 'grid' },
      field('encoders.label', label, t('encoders.label_hint', { max: MAX_LABEL_CHARS })),
      field('encoders.validity', validity)),
    h('div', { class: 'actions' }, h('button', { type: 'submit', testid: 'encoder-create' }, t('encoders.create'))),
  ], async () => {
    const text = cleanLabel(label.value);
    // Said before anything is sent, as the server would say it: `required` lets spaces
    // through, which trim to nothing (maxlength, in UTF-16 units, already keeps it short).
    if (text === null) {
      const code = label.value.trim() ? 'text_too_long' : 'text_required';
      throw new ApiError(0, code, 'the label is not valid', { field: 'encoder_label', max: MAX_LABEL_CHARS });
    }
    const made = await api('POST', encodersPath(c.id), { label: text, valid_hours: Number(validity.value) });
    shown = { consultation: c.id, encoder: made.encoder.id, url: whipUrl(location.origin, made.path), token: made.token, copied: null, fresh: true };
    await refresh();
  });
}

/**
 * The credential shown: the WHIP URL and the bearer token, read-only, each with a copy button,
 * and how OBS takes them. A field selects itself when focused: where the clipboard is not
 * allowed, Ctrl+C (or the menu) copies it.
 * @param {Shown} s @param {EncoderLink} e
 */
function secretBox(s, e) {
  const copyState = () => (s.copied === null ? '' : s.copied.ok ? 'copied' : 'selected');
  const copyText = () => (s.copied === null ? ''
    : s.copied.ok ? t(s.copied.what === 'url' ? 'encoders.copied_url' : 'encoders.copied_token') : t('encoders.select_to_copy'));
  const status = h('span', {
    class: 'small muted', testid: 'encoder-copy-status', 'aria-live': 'polite',
    dataset: { state: copyState(), what: s.copied?.what ?? '' },
  }, copyText());
  /** @param {'url' | 'token'} what @param {string} value @param {boolean} focus */
  const row = (what, value, focus) => {
    const input = /** @type {HTMLInputElement} */ (h('input', {
      readonly: true, value, testid: `encoder-${what}`, 'aria-label': t(`encoders.${what}`), class: 'grow', spellcheck: 'false',
      onfocus: () => input.select(),
      // The page was rendered for this credential just now: bring it into view, focused (app.js).
      'data-autofocus': focus || null,
    }));
    const copy = h('button', {
      type: 'button', class: 'ghost', testid: `encoder-${what}-copy`,
      onclick: async () => {
        const ok = await toClipboard(input.value);
        if (!ok) { input.focus(); input.select(); }
        s.copied = { what, ok };
        status.textContent = copyText();
        status.dataset.state = copyState();
        status.dataset.what = what;
      },
    }, t('guests.copy'));
    // A div, not a <label>: a label around the field and its button would hand the button's
    // clicks to the field.
    return h('div', { class: 'field' }, h('span', {}, t(`encoders.${what}`)), h('div', { class: 'row' }, input, copy));
  };
  const fresh = s.fresh;
  s.fresh = false;
  return h('div', { class: 'encoder-secret', testid: 'encoder-secret-box', dataset: { encoder: s.encoder } },
    h('div', { class: 'row' },
      h('strong', { class: 'grow' }, t('encoders.secret_for', { label: e.label })),
      h('button', { type: 'button', class: 'ghost small', testid: 'encoder-secret-hide', onclick: () => { shown = null; refresh(); } }, t('encoders.hide'))),
    row('url', s.url, fresh),
    row('token', s.token, false),
    status,
    h('p', { class: 'small', testid: 'encoder-obs-hint' }, t('encoders.obs_hint')),
    h('p', { class: 'muted small' }, t('encoders.secret_hint', { time: fmtTime(e.expires_at) })));
}

/** One credential: label, state, validity, and what can still be done with it. @param {any} c @param {EncoderLink} e @param {number} now */
function encoderRow(c, e, now) {
  const status = encoderStatus(e, now);
  const actions = h('span', { class: 'row-actions' });
  const showActions = () => actions.replaceChildren(...(isActive(e, now) ? [
    h('button', { type: 'button', class: 'ghost small', testid: 'encoder-link-show', onclick: () => showAgain(c, e).catch((err) => showBanner(err)) }, t('encoders.show_again')),
    h('button', { type: 'button', class: 'ghost small danger-text', testid: 'encoder-link-revoke', onclick: askRevoke }, t('encoders.revoke')),
  ] : []));
  // Withdrawing takes an encoder publishing with the credential out of the call at once (the
  // operating field goes dark for everyone): asked first.
  function askRevoke() {
    actions.replaceChildren(
      h('span', { class: 'small', testid: 'encoder-link-revoke-question' }, t('encoders.revoke_confirm')),
      h('button', { type: 'button', class: 'danger small', testid: 'encoder-link-revoke-confirm', onclick: () => revoke(c, e).catch((err) => { showBanner(err); showActions(); }) }, t('encoders.revoke')),
      h('button', { type: 'button', class: 'ghost small', testid: 'encoder-link-revoke-cancel', onclick: showActions }, t('common.cancel')));
  }
  showActions();
  return h('li', { testid: 'encoder-link', dataset: { encoder: e.id, status } },
    h('div', { class: 'grow' },
      h('strong', { testid: 'encoder-link-label' }, e.label), ' ',
      h('span', { class: `badge encoder-${status}`, testid: 'encoder-link-status' }, t(`encoders.status.${status}`)),
      h('div', { class: 'muted small' },
        t('encoders.expires', { time: fmtTime(e.expires_at) }),
        e.revoked_at ? ` · ${t('encoders.revoked_at', { time: fmtTime(e.revoked_at) })}` : '',
        ` · ${t('encoders.created_by', { name: nameOf(e.created_by), time: fmtTime(e.created_at) })}`)),
    actions);
}

/** Asks the server for the credential again (a newly signed token) and shows it. @param {any} c @param {EncoderLink} e */
async function showAgain(c, e) {
  const again = await api('GET', encodersPath(c.id, e.id));
  shown = { consultation: c.id, encoder: e.id, url: whipUrl(location.origin, again.path), token: again.token, copied: null, fresh: true };
  await refresh();
}

/** @param {any} c @param {EncoderLink} e */
async function revoke(c, e) {
  await api('POST', `${encodersPath(c.id, e.id)}/revoke`, {});
  if (shown?.encoder === e.id) shown = null;
  await refresh();
  showBanner(t('encoders.revoked_done'), 'notice');
}
