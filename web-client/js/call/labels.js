// Text that must follow a language switch during the call (app.js sends `huizhen:lang`): the
// call screens register each element whose text (or attribute) comes from the catalogue, and
// apply() sets them all again in the new language. Elements stay the same elements, so a
// <video> keeps playing and a half-typed chat line stays typed.
import { t } from '../i18n.js';

export class Labels {
  constructor() {
    /** @type {{ el: Element, key: string | (() => string), attr: string | null }[]} */
    this.items = [];
  }

  /**
   * Sets `el`'s text (or attribute `attr`) from `key` now and after every switch; `key` may be
   * a function for a text with parameters.
   * @template {Element} E
   * @param {E} el @param {string | (() => string)} key @param {string | null} [attr]
   * @returns {E}
   */
  set(el, key, attr = null) {
    const item = { el, key, attr };
    this.items.push(item);
    write(item);
    return el;
  }

  /** Writes every registered text again in the current language. */
  apply() {
    for (const item of this.items) write(item);
  }
}

/** @param {{ el: Element, key: string | (() => string), attr: string | null }} item */
function write({ el, key, attr }) {
  const text = typeof key === 'function' ? key() : t(key);
  if (attr) el.setAttribute(attr, text);
  else el.textContent = text;
}
