// The call screens: before the call, in the call, the teaching broadcast. Mounted by app.js
// at #/c/<id>/call; everything below this module belongs to the call.

/**
 * @param {HTMLElement} container
 * @param {{ consultationId: string }} opts
 * @returns {Promise<{ unmount: () => void }>}
 */
export async function mount(container, opts) {
  container.replaceChildren(document.createTextNode(opts.consultationId));
  return { unmount() {} };
}
