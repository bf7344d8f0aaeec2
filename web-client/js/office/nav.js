// The router's hooks for screens: re-render the current route after a change, go to a route.
// (A separate module so screens need not import app.js, which starts the app.)

/** @type {(opts?: { quiet?: boolean, force?: boolean }) => any} */
let rerender = () => {};

/** Called once by app.js. @param {(opts?: { quiet?: boolean, force?: boolean }) => any} fn */
export function setRerender(fn) { rerender = fn; }

/** Renders the current route again (after a lifecycle step, a language switch…). */
export function refresh() { return rerender(); }

/**
 * Renders the current route again in place, for a change someone else made (a pushed change,
 * a poll): the page banner stays, no "loading" first, and a failure keeps what is shown. It
 * does not replace a page the user has begun typing in meanwhile, unless they asked for it
 * (`force`: "show the change").
 * @param {{ force?: boolean }} [opts]
 */
export function update({ force = false } = {}) { return rerender({ quiet: true, force }); }

/** Goes to `hash` (e.g. '#/c/<id>'), rendering it even if it is the current route. @param {string} hash */
export function go(hash) {
  if (location.hash === hash) return rerender();
  location.hash = hash;
  return undefined;
}
