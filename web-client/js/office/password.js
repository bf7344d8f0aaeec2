// Changing one's password (#/password), and the page a one-time password leads to at sign-in:
// the first start's administrator password, or one reset from the command line, opens nothing
// else until its user sets their own (the server answers password_change_required).
import { changePassword } from '../api.js';
import { errorBox, field, form, h } from '../dom.js';
import { t } from '../i18n.js';

/**
 * @param {{ forced: boolean, done: () => void }} opts `forced`: the one-time password case
 * (no way around it but signing out); `done` runs once the new password is set.
 */
export function passwordView({ forced, done }) {
  const input = (/** @type {string} */ testid, /** @type {string} */ autocomplete) =>
    h('input', { type: 'password', required: true, autocomplete, testid });
  const current = input('password-current', 'current-password');
  const next = input('password-new', 'new-password');
  const again = input('password-again', 'new-password');
  const problem = h('div', {});
  const f = form({ class: 'card narrow', testid: 'password-form', 'data-forced': String(forced) }, [
    h('h1', {}, t(forced ? 'password.forced_title' : 'password.title')),
    forced && h('p', { class: 'warn', role: 'alert', testid: 'password-forced' }, t('password.forced_text')),
    field('password.current', current),
    field('password.new', next, t('password.rule')),
    field('password.again', again),
    problem,
    h('button', { type: 'submit', testid: 'password-submit' }, t('password.submit')),
  ], async () => {
    problem.replaceChildren();
    // The one check the server cannot make: the two entries agree.
    if (next.value !== again.value) {
      problem.replaceChildren(errorBox(t('password.mismatch'), 'password-error'));
      return;
    }
    try {
      await changePassword(current.value, next.value);
    } catch (e) {
      problem.replaceChildren(errorBox(e, 'password-error'));
      return;
    }
    done();
  });
  queueMicrotask(() => current.focus());
  return f;
}
