// The guest's page, #/guest/<link> (api.md §Guest links): someone without an account (an
// outside expert, the patient's family) comes through a one-time link. They read what this
// is, give their name and enter; the page keeps the answer (session.js) and shows the call's
// pre-call screen and the call as for anyone else, with the guest's own way in (call/entry.js:
// POST /v1/guest/join with the guest's token). When the call is over for them, a plain last
// page thanks them: nothing else of the app is reachable from here. A reload goes on where it
// was (#/guest, from the session); a link that opens nothing says why, in the page's language.
import { errorBox, form, field, h } from '../dom.js';
import { errorText, t } from '../i18n.js';
import { guestApi } from './api.js';
import { CLOSED_STATUSES, LINK_GONE, MAX_NAME_CHARS, continues, endingOf, loadSession, saveSession } from './session.js';

/** @typedef {import('./session.js').GuestSession} GuestSession */

/**
 * Mounts the guest's page into `container`.
 * @param {HTMLElement} container
 * @param {{ link: string | null }} opts the link in the address, or null (#/guest: a reload
 *   after the link was used)
 * @returns {Promise<{ unmount: () => void }>}
 */
export async function mountGuest(container, opts) {
  const page = new GuestPage(container);
  await page.start(opts.link);
  return { unmount: () => page.destroy() };
}

class GuestPage {
  /** @param {HTMLElement} container */
  constructor(container) {
    this.container = container;
    /** @type {{ unmount: () => void } | null} the call, while it is shown */
    this.call = null;
    this.gone = false;
    /** @type {() => Node | null} the page as it is now, built again on a language switch (null: the call, which relabels itself) */
    this.view = () => null;
    /** What the guest typed, kept across a language switch. */
    this.typed = '';
    this.onLang = () => this.render();
    window.addEventListener('huizhen:lang', this.onLang);
  }

  /** @param {() => Node | null} view */
  show(view) {
    if (this.gone) return;
    this.view = view;
    this.render();
  }

  render() {
    const node = this.view();
    if (node && !this.gone) this.container.replaceChildren(node);
  }

  /** @param {string | null} link */
  async start(link) {
    const kept = loadSession();
    if (continues(kept, link)) await this.resume(kept);
    else if (link) this.show(() => this.namePage(link));
    else this.show(() => this.problemPage('guest_no_link'));
  }

  // ---- coming through the link ----

  /** The explanation and the name. @param {string} link */
  namePage(link) {
    const name = /** @type {HTMLInputElement} */ (h('input', {
      testid: 'guest-name', maxlength: MAX_NAME_CHARS, required: true, autocomplete: 'name', value: this.typed,
      oninput: () => { this.typed = name.value; },
    }));
    const f = form({ class: 'card narrow guest-page', testid: 'guest-name-form', dataset: { state: 'name' } }, [
      h('h1', {}, t('guest.title')),
      h('p', { testid: 'guest-intro' }, t('guest.intro')),
      h('p', { class: 'muted small' }, t('guest.once')),
      field('guest.name', name, t('guest.name_hint', { max: MAX_NAME_CHARS })),
      h('div', { class: 'actions' }, h('button', { type: 'submit', testid: 'guest-enter' }, t('guest.enter'))),
    ], async () => {
      const given = name.value.trim();
      // Checked here too, so that spaces alone are named as such in the guest's language.
      if (!given) throw { code: 'guest_name_required' };
      await this.arrive(link, given);
    });
    queueMicrotask(() => { if (name.isConnected) name.focus(); });
    return f;
  }

  /**
   * Uses the link: from now on it opens for no one else, and this page goes on with the
   * guest's own token. A link that opens nothing is said on a page of its own; other
   * failures (the name, the network) stay in the form.
   * @param {string} link @param {string} name
   */
  async arrive(link, name) {
    let answer;
    try {
      answer = await guestApi('POST', '/v1/guest/session', { link, name });
    } catch (e) {
      const code = /** @type {any} */ (e)?.code;
      if (LINK_GONE.includes(code)) { this.show(() => this.problemPage(code)); return; }
      if (code === 'invalid_state') { this.show(() => this.problemPage('guest_over')); return; }
      throw e;
    }
    /** @type {GuestSession} */
    const s = { link, token: answer.token, expires_at: answer.expires_at, consultation: answer.consultation };
    saveSession(s);
    // The link is used up: out of the address bar and the history. A reload goes on from the
    // session (#/guest).
    history.replaceState(history.state, '', '#/guest');
    await this.enter(s);
  }

  // ---- going on ----

  /**
   * A kept session: the last page again if the call is over for this page; else the
   * consultation as it is now (a withdrawn link or an ended consultation says so before any
   * camera opens), then the call.
   * @param {GuestSession} s
   */
  async resume(s) {
    if (s.done) { await this.end(s, s.done); return; }
    this.show(() => h('p', { class: 'muted', testid: 'loading' }, t('common.loading')));
    try {
      s.consultation = await guestApi('GET', '/v1/guest/consultation', undefined, s.token);
    } catch (e) {
      const code = /** @type {any} */ (e)?.code;
      if (LINK_GONE.includes(code)) { this.show(() => this.problemPage(code)); return; }
      this.show(() => this.retryPage(e, () => this.resume(s)));
      return;
    }
    saveSession(s);
    await this.enter(s);
  }

  /** The call, with the guest's way in. @param {GuestSession} s */
  async enter(s) {
    if (this.gone) return;
    if (CLOSED_STATUSES.includes(s.consultation.status)) { await this.end(s, 'ended'); return; }
    this.view = () => null;
    const { mount } = await import('../call/index.js');
    if (this.gone) return;
    /** @type {import('../call/entry.js').Entry} */
    const entry = {
      consultation: s.consultation,
      join: () => guestApi('POST', '/v1/guest/join', {}, s.token),
      back: null,
      after: () => null,
    };
    // Called from inside the call's own finish: the page changes once that has run.
    const call = await mount(this.container, { entry, onFinished: (phase) => { setTimeout(() => { this.end(s, phase); }, 0); } });
    if (this.gone) { call.unmount(); return; }
    this.call = call;
  }

  /**
   * The call is over for this page: remembered (a reload shows this page again, not the way
   * in), and said with the reason the server gives for the link now.
   * @param {GuestSession} s @param {string} phase
   */
  async end(s, phase) {
    if (this.gone) return;
    this.call?.unmount();
    this.call = null;
    s.done = phase;
    saveSession(s);
    let problem = null;
    if (phase !== 'ended' && phase !== 'left') {
      try {
        await guestApi('GET', '/v1/guest/consultation', undefined, s.token);
      } catch (e) {
        const code = /** @type {any} */ (e)?.code;
        if (LINK_GONE.includes(code)) problem = code;
      }
    }
    const ending = endingOf(phase, problem);
    this.show(() => h('section', { class: 'card narrow guest-page', testid: 'guest-done', dataset: { state: 'done', phase, problem: problem ?? '' } },
      h('h1', { testid: 'guest-done-title' }, t(ending.title)),
      ending.text && h('p', { testid: 'guest-done-text' }, t(ending.text)),
      h('p', { class: 'muted', testid: 'guest-thanks' }, t('guest.thanks'))));
  }

  // ---- pages that say why not ----

  /** A link (or a kept token) that opens nothing: why, and nothing to press. @param {string} code */
  problemPage(code) {
    return h('section', { class: 'card narrow guest-page', testid: 'guest-problem', dataset: { state: 'problem', code } },
      h('h1', {}, t('guest.title')),
      h('p', { class: 'error', role: 'alert', testid: 'guest-error', dataset: { code } }, errorText({ code })));
  }

  /** A failure worth another try (the network, the server busy). @param {unknown} e @param {() => Promise<void>} again */
  retryPage(e, again) {
    return h('section', { class: 'card narrow guest-page', testid: 'guest-retry', dataset: { state: 'retry' } },
      h('h1', {}, t('guest.title')),
      errorBox(e, 'guest-error'),
      h('div', { class: 'actions' }, h('button', { type: 'button', testid: 'guest-retry-button', onclick: () => { again(); } }, t('guest.retry'))));
  }

  destroy() {
    this.gone = true;
    window.removeEventListener('huizhen:lang', this.onLang);
    this.call?.unmount();
    this.call = null;
  }
}
