// Desktop notifications for what cannot wait (an emergency now the signed-in specialist's),
// seen even when the browser is behind another window. Shown only once the user allowed them;
// permission is asked only when they press "enable desktop alerts" (browsers ignore, and some
// penalise, a request made on page load), never otherwise.
import { h } from '../dom.js';
import { t } from '../i18n.js';

/** Desktop notifications shown, for the browser tests. */
const stats = { shown: 0 };
/** @type {any} */ (window).hzDesktop = stats;

const supported = () => typeof Notification !== 'undefined';

/** Whether the user allowed desktop notifications. */
export function desktopAllowed() {
  return supported() && Notification.permission === 'granted';
}

/**
 * The "enable desktop alerts" button, or null when there is nothing to ask (not supported,
 * already allowed, or refused: only the browser's settings can undo that). `after` runs once
 * the user answered (e.g. to redraw without the button).
 * @param {() => void} [after]
 */
export function enableButton(after) {
  if (!supported() || Notification.permission !== 'default') return null;
  return h('button', {
    type: 'button', class: 'ghost small', testid: 'desktop-alerts-enable',
    onclick: async () => {
      try { await Notification.requestPermission(); } catch { /* an old browser: callback form only */ }
      after?.();
    },
  }, t('desktop.enable'));
}

/**
 * Shows a desktop notification if allowed; clicking it brings the page forward at `hash`.
 * Returns whether it was shown.
 * @param {{ title: string, body: string, tag: string, hash: string }} n
 */
export function notifyDesktop({ title, body, tag, hash }) {
  if (!desktopAllowed()) return false;
  try {
    const n = new Notification(title, { body, tag, requireInteraction: true });
    n.onclick = () => {
      window.focus();
      location.hash = hash;
      n.close();
    };
    stats.shown++;
    return true;
  } catch {
    // Some browsers allow notifications from a service worker only: the banner is there.
    return false;
  }
}
