// Leaving a call by accident: while this page is in a call, a click on a link of the page's
// frame (the header's navigation, an alert's button) or on sign-out asks first, in the app's
// own dialog. Staying keeps the call as it was; leaving says goodbye to the room (the others
// see us go at once, not after a timeout) and then goes where the click meant to go.
import { t } from '../i18n.js';
import { confirmDialog } from './dom.js';

/** @typedef {import('./room.js').CallRoom} CallRoom */

/** What leaves the page besides links: the header's sign-out button. */
const LEAVING = 'a[href], [data-testid="logout"]';

/**
 * Starts watching clicks outside the call's root; returns the function that stops it.
 * @param {HTMLElement} root the call screens (clicks inside are the call's own)
 * @param {() => CallRoom | null} current the room, once joined
 * @returns {() => void}
 */
export function guardLeaving(root, current) {
  /** Set while the confirmed click is replayed, so that it goes through. */
  let passing = false;
  let asking = false;
  /** @param {MouseEvent} e */
  const onClick = (e) => {
    if (passing || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const room = current();
    if (!room || room.finished || room.destroyed) return;
    const el = e.target instanceof Element ? /** @type {HTMLElement | null} */ (e.target.closest(LEAVING)) : null;
    if (!el || root.contains(el)) return;
    // A link that opens elsewhere or goes nowhere new does not leave the call.
    if (el instanceof HTMLAnchorElement && ((el.target && el.target !== '_self') || el.hasAttribute('download') || el.href === location.href)) return;
    e.preventDefault();
    e.stopPropagation();
    if (asking) return;
    asking = true;
    confirmDialog({
      testid: 'leave-confirm',
      title: t('call.leave_confirm.title'),
      text: room.me?.host ? `${t('call.leave_confirm.text')} ${t('call.leave_confirm.host_text')}` : t('call.leave_confirm.text'),
      yes: t('call.leave_confirm.leave'),
      no: t('call.leave_confirm.stay'),
      danger: true,
    }).then((leave) => {
      asking = false;
      if (!leave || room.finished) return;
      room.leave();
      passing = true;
      try { el.click(); } finally { passing = false; }
    });
  };
  document.addEventListener('click', onClick, true);
  return () => document.removeEventListener('click', onClick, true);
}
