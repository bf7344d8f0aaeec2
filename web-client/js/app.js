// The browser app's frame: the header, sign-in, the router, session expiry. The screens live
// in js/office/ (home pages, requests, scheduling, reports, administration), js/call/ (the
// call, mounted at #/c/<id>/call) and js/guest/ (a guest's page, #/guest/<link>: no sign-in,
// no office, only that consultation's call).
//
// Routes: #/ (the role's home) · #/all · #/new · #/c/<id> · #/c/<id>/report · #/c/<id>/call ·
// #/c/<id>/referral/<rid> (a printable referral form) · #/referrals/incoming|outgoing ·
// #/admin/users|sites|audit · #/guest/<link> and #/guest (a guest's page; the latter after the
// link was used). Anything else gets a "not found" page. A route may carry
// parameters after '?': #/c/<id>?form=opinion|plan opens the consultation at that form (the
// way on from the end of a call, call/after.js).
import { ApiError, login, logout, me, onSignedOut } from './api.js';
import { clearBanner, errorBox, form, field, h, setErrorParams, showBanner } from './dom.js';
import { LANGS, initI18n, label, lang, setLang, t } from './i18n.js';
import { adminView } from './office/admin.js';
import { stopWatching, watchEmergencies } from './office/alerts.js';
import { coordinatorHome } from './office/coordinator.js';
import { detailView } from './office/detail.js';
import { doctorHome, listView, specialistHome, viewerHome } from './office/home.js';
import { setRerender } from './office/nav.js';
import { forget, nameOf } from './office/people.js';
import { passwordView } from './office/password.js';
import { referralsView } from './office/referrallist.js';
import { referralSheetView } from './office/referralsheet.js';
import { reportView } from './office/report.js';
import { requestForm } from './office/request.js';
import { busy, followChanges, heldBack, stopFollowing } from './office/updates.js';

// index.html has both.
const view = /** @type {HTMLElement} */ (document.getElementById('view'));
const header = /** @type {HTMLElement} */ (document.getElementById('header'));
let seq = 0;
/** @type {ApiError | null} why the user is at the sign-in form (expired, revoked…), or null */
let loginNotice = null;
/** @type {string | null} where to go after signing in: the link the user opened when their session was gone */
let returnTo = null;
/** @type {{ unmount: () => void } | null} the mounted call screen (#/c/<id>/call), unmounted when the route changes */
let call = null;
/** @type {{ unmount: () => void } | null} the mounted guest's page (#/guest…), unmounted when the route changes */
let guest = null;

const ID = '([A-Za-z0-9_-]{1,64})';
/** @type {Array<[RegExp, (m: RegExpMatchArray, params: URLSearchParams) => any]>} */
const ROUTES = [
  [/^\/$/, () => home()],
  [/^\/all$/, () => listView()],
  [/^\/new$/, () => requestForm()],
  [new RegExp(`^/c/${ID}$`), (m, params) => detailView(m[1], { form: params.get('form') })],
  [new RegExp(`^/c/${ID}/report$`), (m) => reportView(m[1])],
  [new RegExp(`^/c/${ID}/referral/${ID}$`), (m) => referralSheetView(m[1], m[2])],
  [/^\/referrals(?:\/(incoming|outgoing))?$/, (m) => referralsView(m[1] || 'incoming')],
  [/^\/admin\/?(users|sites|audit)?$/, (m) => adminView(m[1] || 'users')],
  [/^\/password$/, () => passwordView({ forced: false, done: () => { if (location.hash === '#/') route(); else location.hash = '#/'; } })],
];

// The person an error names (a busy specialist, an invitee who was disabled meanwhile).
setErrorParams((err) => {
  const who = err?.details?.specialist ?? err?.details?.user;
  return who ? { name: nameOf(who) } : {};
});

function home() {
  // Routes are only taken while signed in (route()).
  switch (me()?.role) {
    case 'coordinator': return coordinatorHome();
    case 'doctor': return doctorHome();
    case 'specialist': return specialistHome();
    case 'admin': return adminView('users');
    default: return viewerHome();
  }
}

/** The header's links for each role. @param {string} role */
function navLinks(role) {
  /** @type {Record<string, [string, string][]>} */
  const byRole = {
    coordinator: [['#/', 'nav.desk'], ['#/all', 'nav.all'], ['#/referrals', 'nav.referrals']],
    doctor: [['#/', 'nav.requests'], ['#/new', 'nav.new'], ['#/referrals', 'nav.referrals']],
    specialist: [['#/', 'nav.day'], ['#/all', 'nav.all']],
    admin: [['#/admin/users', 'admin.users'], ['#/admin/sites', 'admin.sites'], ['#/admin/audit', 'admin.audit']],
    viewer: [['#/', 'nav.mine']],
  };
  const links = byRole[role] || [];
  const here = (location.hash || '#/').split('?')[0];
  // A page with tabs (#/referrals/outgoing) is still under its link.
  const at = (/** @type {string} */ href) => here === href || (href !== '#/' && here.startsWith(`${href}/`));
  return links.map(([href, key]) => h('a', { href, class: at(href) ? 'nav active' : 'nav', testid: `nav-${key.split('.')[1]}` }, t(key)));
}

/** The header of a guest's page: the name of the app and the language, no link anywhere. */
function renderGuestHeader() {
  header.replaceChildren(
    h('span', { class: 'brand', testid: 'brand' }, t('app.title')),
    h('span', { class: 'spacer' }),
    languageSwitch());
}

function languageSwitch() {
  return h('select', {
    testid: 'lang-switch', 'aria-label': t('app.language'),
    onchange: (/** @type {Event} */ e) => switchLanguage(/** @type {HTMLSelectElement} */ (e.target).value),
  }, LANGS.map((l) => h('option', { value: l, selected: l === lang() }, t(`lang.${l}`))));
}

function renderHeader() {
  if (guest) { renderGuestHeader(); return; }
  const u = me();
  header.replaceChildren(...[
    h('a', { href: '#/', class: 'brand', testid: 'brand' }, t('app.title')),
    u && h('nav', { class: 'links' }, navLinks(u.role)),
    h('span', { class: 'spacer' }),
    u && h('span', { class: 'who', testid: 'user-name', 'data-role': u.role }, `${u.display_name} · ${label('role', u.role)}`),
    languageSwitch(),
    u && !u.must_change_password && h('a', { href: '#/password', class: 'small', testid: 'change-password' }, t('password.link')),
    u && h('button', { class: 'ghost', testid: 'logout', onclick: signOut }, t('auth.logout')),
  ].filter((n) => n instanceof Node));
}

/** @param {string} l */
function switchLanguage(l) {
  setLang(l);
  // What stays on screen across routes follows at once, in place: a call in progress (not torn
  // down for a language switch), the notices (notices.js) and the alerts (alerts.js).
  window.dispatchEvent(new CustomEvent('huizhen:lang', { detail: { lang: lang() } }));
  // A guest's page writes itself again (js/guest/page.js); it has no office alerts.
  if (guest) {
    renderHeader();
    return;
  }
  if (call) {
    renderHeader();
    watchEmergencies(t('app.title'));
    return;
  }
  route();
}

async function signOut() {
  stopWatching();
  stopFollowing();
  await logout();
  forget();
  loginNotice = null;
  returnTo = null;
  location.hash = '#/';
  route();
}

/**
 * Shows the current route. `quiet` (nav.update(): a change someone else made) renders it again
 * in place: the banner stays, no "loading" first, a failure keeps what is shown, and the call
 * is never touched.
 * @param {{ quiet?: boolean, force?: boolean }} [opts]
 */
async function route({ quiet = false, force = false } = {}) {
  if (quiet && (call || guest)) return;
  const mine = ++seq;
  const current = () => mine === seq;
  if (!quiet) clearBanner();
  if (call) { const c = call; call = null; c.unmount(); }
  if (guest) { const g = guest; guest = null; g.unmount(); }
  const [path, query = ''] = (location.hash.slice(1) || '/').split('?');
  const params = new URLSearchParams(query);
  // A guest's page stands apart from the office: whoever may be signed in in this tab, no
  // office header, alerts or pushed changes, and no sign-in asked for.
  const guestRoute = path.match(/^\/guest(?:\/([^/]+))?$/);
  if (guestRoute) {
    stopWatching();
    stopFollowing();
    renderGuestHeader();
    view.dataset.route = '/guest';
    try {
      const mod = await import('./guest/page.js');
      const mounted = await mod.mountGuest(view, { link: guestRoute[1] ?? null });
      if (current()) { guest = mounted; renderHeader(); } else mounted.unmount();
    } catch (e) {
      if (current()) view.replaceChildren(h('section', { class: 'card narrow' }, h('h1', {}, t('error.title')), errorBox(e, 'view-error')));
    }
    return;
  }
  renderHeader();
  // A one-time password: nothing else until its user has set their own.
  if (me()?.must_change_password) {
    view.dataset.route = '/password';
    view.replaceChildren(passwordView({ forced: true, done: () => route() }));
    return;
  }
  watchEmergencies(t('app.title'));
  followChanges();
  if (!me()) {
    if (path !== '/') returnTo = location.hash;
    renderLogin();
    return;
  }
  const callRoute = path.match(new RegExp(`^/c/${ID}/call$`));
  if (callRoute) {
    try {
      const mod = await import('./call/index.js');
      const mounted = await mod.mount(view, { consultationId: callRoute[1] });
      if (current()) call = mounted; else mounted.unmount();
    } catch (e) {
      if (current()) view.replaceChildren(errorBox(e, 'view-error'), h('a', { href: '#/', testid: 'back' }, t('common.home')));
    }
    return;
  }
  const found = ROUTES.map(([re, fn]) => /** @type {const} */ ([path.match(re), fn])).find(([m]) => m);
  // found[0] is never null (find() took the first match): said again for the type check.
  if (!found || !found[0]) {
    view.replaceChildren(notFound());
    return;
  }
  if (!view.firstChild || view.dataset.route !== path) view.replaceChildren(h('p', { class: 'muted', testid: 'loading' }, t('common.loading')));
  view.dataset.route = path;
  try {
    const nodes = await found[1](found[0], params);
    if (!current()) return;
    // A change pushed by someone else began rendering before the user started typing here:
    // what they typed is not replaced (the update comes again, held back while they are busy).
    if (quiet && !force && busy()) { heldBack(); return; }
    view.replaceChildren(...[nodes].flat(Infinity).filter((n) => n != null && n !== false));
    // The field a route asked for (data-autofocus) is brought into view and focused, only when
    // the user came here: a change pushed by someone else must not move their page.
    const focus = quiet ? null : /** @type {HTMLElement | null} */ (view.querySelector('[data-autofocus]'));
    if (focus) {
      focus.scrollIntoView({ block: 'center' });
      focus.focus({ preventScroll: true });
    }
  } catch (e) {
    if (!current()) return;
    if (!me()) { renderLogin(); return; }
    if (quiet) return;
    view.replaceChildren(h('section', { class: 'card narrow' },
      h('h1', {}, t('error.title')), errorBox(e, 'view-error'), h('a', { href: '#/', class: 'button', testid: 'back' }, t('common.home'))));
  }
}

function notFound() {
  return h('section', { class: 'card narrow', testid: 'not-found' },
    h('h1', {}, t('error.page_not_found')),
    h('p', {}, t('error.page_not_found_hint')),
    h('a', { href: '#/', class: 'button', testid: 'back' }, t('common.home')));
}

// ---- sign in ----

function renderLogin() {
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, testid: 'login-username' });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, testid: 'login-password' });
  const f = form({ class: 'card narrow', testid: 'login-form' }, [
    h('h1', {}, t('auth.title')),
    loginNotice && h('p', { class: 'warn', role: 'alert', testid: 'login-notice', 'data-code': loginNotice.code }, t(noticeKey(loginNotice))),
    field('auth.username', user),
    field('auth.password', pass),
    h('button', { type: 'submit', testid: 'login-submit' }, t('auth.submit')),
    h('p', { class: 'muted small' }, t('auth.hint')),
  ], async () => {
    await login(user.value.trim(), pass.value);
    loginNotice = null;
    const back = returnTo;
    returnTo = null;
    if (back && back !== location.hash) location.hash = back; else route();
  });
  view.dataset.route = '';
  view.replaceChildren(f);
  user.focus();
}

/** Why the session ended, as the sign-in form says it. @param {ApiError} err */
function noticeKey(err) {
  switch (err.code) {
    case 'token_expired': case 'session_expired': return 'auth.expired';
    case 'session_revoked': return 'auth.revoked';
    default: return 'auth.invalid';
  }
}

// ---- start ----

onSignedOut((err) => {
  // A guest's page has nothing of the session (js/guest/api.js): it goes on.
  if (guest) return;
  loginNotice = err.code === 'token_missing' ? null : err;
  stopWatching();
  stopFollowing();
  forget();
  if (call) { const c = call; call = null; c.unmount(); }
  // Come back here after signing in again, unless this was the home page anyway.
  if (location.hash && location.hash !== '#/') returnTo = location.hash;
  renderHeader();
  renderLogin();
});
setRerender(route);
window.addEventListener('hashchange', () => route());
window.addEventListener('unhandledrejection', (e) => {
  showBanner(e.reason instanceof ApiError ? e.reason : t('error.unexpected'));
});
window.addEventListener('error', () => showBanner(t('error.unexpected')));

await initI18n();
document.title = t('app.title');
route();
