// The router's hooks for screens: re-render the current route after a change, go to a route.
// (A separate module so screens need not import app.js, which starts the app.)

let rerender = () => {};

/** Called once by app.js. */
export function setRerender(fn) { rerender = fn; }

/** Renders the current route again (after a lifecycle step, a language switch…). */
export function refresh() { return rerender(); }

/** Goes to `hash` (e.g. '#/c/<id>'), rendering it even if it is the current route. */
export function go(hash) {
  if (location.hash === hash) return rerender();
  location.hash = hash;
  return undefined;
}
