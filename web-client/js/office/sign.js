// Signing an opinion (docs/api.md, "Signing"; issue 15): a signature is final and legally
// binding, so the specialist gives their password again, in a small dialog that says so, and
// the step goes as {text, sign: true, password}. A wrong password (invalid_credentials), none
// (password_required) or too many wrong ones (too_many_attempts, the sign-in throttle) is said
// in the dialog, in words about signing, and the opinion stays a draft.
import { api, me } from '../api.js';
import { errorBox, h, showBanner } from '../dom.js';
import { t } from '../i18n.js';
import { refresh } from './nav.js';

/** The password's errors as signing says them (the catalogue's error.* speak of signing in). @type {Record<string, string>} */
const SIGN_ERRORS = { invalid_credentials: 'sign.wrong_password', too_many_attempts: 'sign.too_many' };

/**
 * Opens the dialog that signs the opinion on `c` with the text `text()` gives at the moment of
 * signing. On success the page shows the consultation again, the opinion signed.
 * @param {{ id: string }} c @param {() => string} text @param {HTMLElement | null} opener focused again when it closes
 */
export function signDialog(c, text, opener) {
  const password = h('input', { type: 'password', autocomplete: 'current-password', id: 'sign-password', testid: 'sign-password' });
  // Whose password it is, for password managers (a password form without a username puzzles them).
  const username = h('input', { type: 'text', autocomplete: 'username', value: me()?.username ?? '', hidden: true, readonly: true, tabindex: '-1' });
  const message = h('div', { class: 'sign-message' });
  const submit = h('button', { type: 'submit', testid: 'sign-submit' }, t('sign.submit'));
  const cancel = h('button', { type: 'button', class: 'ghost', testid: 'sign-cancel' }, t('common.cancel'));
  const f = h('form', { testid: 'sign-form' },
    username,
    h('label', { class: 'field', for: 'sign-password' }, h('span', {}, t('sign.password')), password),
    message,
    h('div', { class: 'actions' }, cancel, submit));
  const dialog = h('dialog', { class: 'dialog sign-dialog', testid: 'sign-dialog', 'aria-labelledby': 'sign-title', 'aria-describedby': 'sign-explain' },
    h('h2', { id: 'sign-title' }, t('sign.title')),
    h('p', { id: 'sign-explain', testid: 'sign-explain' }, t('sign.explain')),
    f);
  cancel.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => { dialog.remove(); if (opener?.isConnected) opener.focus(); });
  f.addEventListener('submit', async (e) => {
    e.preventDefault();
    message.replaceChildren();
    submit.disabled = true;
    cancel.disabled = true;
    try {
      await api('POST', `/v1/consultations/${encodeURIComponent(c.id)}/opinion`, { text: text(), sign: true, password: password.value });
    } catch (err) {
      const box = errorBox(err, 'sign-error');
      const own = SIGN_ERRORS[/** @type {{ code?: string }} */ (err)?.code ?? ''];
      if (own) box.textContent = t(own);
      message.replaceChildren(box);
      password.setAttribute('aria-invalid', 'true');
      password.setAttribute('aria-describedby', 'sign-error');
      box.id = 'sign-error';
      // Typed again from scratch: a wrong password half-corrected is the usual next mistake.
      password.value = '';
      password.focus();
      return;
    } finally {
      submit.disabled = false;
      cancel.disabled = false;
    }
    dialog.close();
    await refresh();
    showBanner(t('action.opinion.signed'), 'notice');
  });
  // Inside the page's view: a route change removes it with the page, and a change pushed
  // meanwhile waits while it is open (updates.js).
  (opener?.closest('[data-testid="view"]') || document.body).append(dialog);
  dialog.showModal();
  password.focus();
  return dialog;
}
