// Where the call's last screen leads (pure: no DOM, no i18n; web-client/test/after.test.mjs):
// the step of the consultation that follows the call for this user. A specialist on the
// consultation writes their opinion (allowed while it is live and after it ended); the
// requesting doctor records the plan, which only a consultation has (a case discussion or a
// teaching session has no 诊疗方案 step for them) and only once it has ended. Everyone else,
// and every other way out of the call, goes back to the consultation's page.

/** @typedef {'opinion' | 'plan'} NextForm */

/**
 * @param {{ id: string, kind: string, requester: string, specialists: string[] }} c the consultation
 * @param {string | null} userId the signed-in user
 * @param {string} phase how the call ended for this page (state.js's final phases)
 * @returns {{ form: NextForm | null, href: string }}
 */
export function afterCall(c, userId, phase) {
  /** @type {NextForm | null} */
  let form = null;
  const over = phase === 'ended' || phase === 'left';
  if (over && userId) {
    if (c.specialists.includes(userId)) form = 'opinion';
    else if (phase === 'ended' && c.requester === userId && c.kind === 'consultation') form = 'plan';
  }
  return { form, href: detailHref(c.id, form) };
}

/**
 * The consultation page's route, with the form to scroll to and focus (app.js passes the
 * `form` parameter to the detail page).
 * @param {string} id @param {NextForm | null} [form]
 */
export function detailHref(id, form = null) {
  return form ? `#/c/${id}?form=${form}` : `#/c/${id}`;
}
