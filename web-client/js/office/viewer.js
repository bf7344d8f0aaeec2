// The dialog a viewer opens in (an attachment's file, attachments.js; a DICOM series,
// dicomview.js). It sits inside the page's view, like the other dialogs: a change pushed
// meanwhile waits while it is open (updates.js), and a route change or a language switch
// takes it away with the page. However it goes (its close button, Escape, the page rendered
// anew), what it holds is released once: object URLs revoked, requests under way stopped.
import { h } from '../dom.js';
import { t } from '../i18n.js';

/**
 * Opens `dialog` modally; `release` runs once when it goes. Returns a function that closes it.
 * @param {HTMLDialogElement} dialog
 * @param {HTMLElement | null} opener focused again when it closes (if still on the page)
 * @param {() => void} release
 * @returns {() => void}
 */
export function openViewer(dialog, opener, release) {
  let gone = false;
  // Taken away with the page (a route, a language switch): no event says so but its leaving.
  const left = new MutationObserver(() => { if (!dialog.isConnected) close(); });
  const close = () => {
    if (gone) return;
    gone = true;
    left.disconnect();
    try { release(); } catch (e) { console.error('huizhen: a viewer could not release what it held', e); }
    if (dialog.open) dialog.close();
    dialog.remove();
    if (opener?.isConnected) opener.focus();
  };
  dialog.addEventListener('close', close);
  (opener?.closest('[data-testid="view"]') || document.getElementById('view') || document.body).append(dialog);
  left.observe(document.body, { childList: true, subtree: true });
  dialog.showModal();
  return close;
}

/** The close button of a viewer's toolbar. @param {string} testid @param {() => void} close */
export function closeButton(testid, close) {
  return h('button', { type: 'button', class: 'ghost', testid, 'aria-label': t('viewer.close'), onclick: close }, t('viewer.close'));
}
