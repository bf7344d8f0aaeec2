// Catalogues, the language switch and time formatting. zh-CN is the default language; every
// visible string comes from /i18n/<lang>.json (office screens) and /i18n/call.<lang>.json (the
// call screens), merged. Times are always shown in Asia/Shanghai.

export const LANGS = ['zh-CN', 'en'];
export const ZONE = 'Asia/Shanghai';
const KEY = 'huizhen.lang';
const FILES = ['', 'call.'];
/** Each language's merged catalogue, key → text. @type {Record<string, Record<string, string>>} */
const cats = {};
let current = 'zh-CN';
/** @type {Intl.DateTimeFormat | null} */
let formatter = null;

/**
 * What an error's text reads of it: an ApiError's code, message and details. Anything else
 * thrown (a TypeError, a string) simply lacks them and reads as 'unknown'.
 * @typedef {{ field?: string, min?: number, max?: number, opens_at?: string, status?: string,
 *   user?: string, specialist?: string }} ErrorDetails
 * @typedef {{ code?: string, message?: string, details?: ErrorDetails }} ErrorLike
 */
/** A catalogue text's `{name}` placeholders; a missing (null) one is left as written. @typedef {Record<string, string | number | null | undefined>} Params */

function stored() {
  try { return localStorage.getItem(KEY); } catch { return null; }
}

export async function initI18n() {
  await Promise.all(LANGS.map(async (l) => {
    const parts = await Promise.all(FILES.map(async (f) => {
      try {
        const r = await fetch(`/i18n/${f}${l}.json`);
        return r.ok ? await r.json() : {};
      } catch {
        return {};
      }
    }));
    cats[l] = Object.assign({}, ...parts);
  }));
  const saved = stored();
  setLang(saved && LANGS.includes(saved) ? saved : 'zh-CN', false);
}

export function lang() { return current; }

/** @param {string} l */
export function setLang(l, persist = true) {
  current = LANGS.includes(l) ? l : 'zh-CN';
  formatter = null;
  document.documentElement.lang = current;
  if (persist) { try { localStorage.setItem(KEY, current); } catch { /* private mode */ } }
}

/** @param {string} key */
export function has(key) {
  return LANGS.some((l) => cats[l] && key in cats[l]);
}

/**
 * The string for `key` with `{name}` placeholders filled; falls back to zh-CN, en, the key.
 * @param {string} key
 * @param {Params} [params]
 * @returns {string}
 */
export function t(key, params = {}) {
  const s = cats[current]?.[key] ?? cats['zh-CN']?.[key] ?? cats.en?.[key] ?? key;
  // String(): what replace() would make of a number anyway.
  return s.replace(/\{(\w+)\}/g, (m, k) => String(params[k] ?? m));
}

/**
 * An enum value's label, e.g. label('status', 'live'); unknown values are shown as they are.
 * @param {string} group
 * @param {unknown} value
 * @returns {string}
 */
export function label(group, value) {
  if (value == null || value === '') return '';
  return has(`${group}.${value}`) ? t(`${group}.${value}`) : String(value);
}

/**
 * An RFC 3339 instant from the API as a Date (the API may send nanoseconds).
 * @param {string | Date} ts
 * @returns {Date}
 */
export function toDate(ts) {
  return ts instanceof Date ? ts : new Date(String(ts).replace(/(\.\d{3})\d+/, '$1'));
}

/**
 * An RFC 3339 instant from the API, shown in Beijing time in the current language.
 * @param {string | Date | null | undefined} ts
 * @returns {string}
 */
export function fmtTime(ts) {
  if (!ts) return '';
  const d = toDate(ts);
  if (Number.isNaN(d.getTime())) return String(ts);
  formatter ??= new Intl.DateTimeFormat(current, {
    timeZone: ZONE, dateStyle: 'medium', timeStyle: 'short',
  });
  return formatter.format(d);
}

/**
 * A time span in Beijing time, the date written once when both ends fall on the same day.
 * @param {string | Date} from
 * @param {string | Date} to
 * @returns {string}
 */
export function fmtRange(from, to) {
  const a = toDate(from);
  const b = toDate(to);
  if (Number.isNaN(a.getTime()) || Number.isNaN(b.getTime())) return `${fmtTime(from)} – ${fmtTime(to)}`;
  fmtTime(from); // makes sure the formatter exists
  const f = /** @type {Intl.DateTimeFormat} */ (formatter);
  return f.formatRange ? f.formatRange(a, b) : `${fmtTime(from)} – ${fmtTime(to)}`;
}

/** The clock time (HH:mm) of an instant in Beijing time. @param {string | Date} ts */
export function fmtClock(ts) {
  return new Intl.DateTimeFormat(current, { timeZone: ZONE, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(toDate(ts));
}

/** The date of an instant in Beijing time, short, with the weekday. @param {string | Date} ts */
export function fmtDay(ts) {
  return new Intl.DateTimeFormat(current, { timeZone: ZONE, month: 'short', day: 'numeric', weekday: 'short' }).format(toDate(ts));
}

/** Midnight in Beijing of the day `date` falls on there, `days` days later. */
export function shanghaiMidnight(date = new Date(), days = 0) {
  const local = instantToShanghai(date).slice(0, 10);
  return new Date(new Date(`${local}T00:00:00+08:00`).getTime() + days * 86400e3);
}

/**
 * A datetime-local value ("2026-01-02T14:00") read as Beijing time, as an RFC 3339 instant.
 * @param {string} local
 */
export function shanghaiToInstant(local) {
  const v = local.length === 16 ? `${local}:00` : local;
  return `${v}+08:00`;
}

/** A Date as a datetime-local value in Beijing time (no daylight saving there). @param {Date} date */
export function instantToShanghai(date) {
  return new Date(date.getTime() + 8 * 3600e3).toISOString().slice(0, 16);
}

/**
 * The user's message for an API error: translated by code, else the server's message.
 * @param {unknown} error an ApiError, or whatever else was thrown
 * @param {Params} [params]
 * @returns {string}
 */
export function errorText(error, params = {}) {
  const err = /** @type {ErrorLike | null | undefined} */ (error);
  const code = err?.code || 'unknown';
  /** @type {ErrorDetails} */
  const d = err?.details || {};
  // A field rule's details: which field (named in the user's language) and its numbers.
  const field = d.field ? (has(`field.${d.field}`) ? t(`field.${d.field}`) : d.field) : '';
  const p = { message: err?.message || '', field, min: d.min ?? '', max: d.max ?? '', ...params };
  if (d.opens_at && has(`error.${code}.at`)) return t(`error.${code}.at`, { ...p, time: fmtTime(d.opens_at) });
  if (d.status && has(`error.${code}.status`)) return t(`error.${code}.status`, { ...p, status: label('status', d.status) });
  // A refused person (details.user), named when the caller knows the name (errParams).
  if (d.user && params.name && has(`error.${code}.user`)) return t(`error.${code}.user`, p);
  if (has(`error.${code}`)) return t(`error.${code}`, p);
  return err?.message || t('error.unknown');
}
