// A range of whole days, as a date filter's two date inputs give it ("2026-12-06"), turned into
// the instants an API range takes (`from <= at < to`, docs/api.md "Audit trail"): from the
// first day's midnight to the midnight after the last day, in the time zone the page shows
// times in (i18n.js ZONE). Pure: no DOM, no i18n (web-client/test/dayrange.test.mjs).

/**
 * @typedef {{ from: string | null, to: string | null, problem: 'invalid_date' | 'range_reversed' | null }} DayRange
 *   from, to: RFC 3339 instants (UTC), null for an open end; problem: why it cannot be sent
 */

/**
 * The instants for the days `first` to `last`, both included; either may be '' (open end).
 * @param {string} first a date input's value, or ''
 * @param {string} last a date input's value, or ''
 * @param {string} timeZone IANA, e.g. Asia/Shanghai
 * @returns {DayRange}
 */
export function dayRange(first, last, timeZone) {
  const a = first ? parseDay(first) : null;
  const b = last ? parseDay(last) : null;
  if ((first && !a) || (last && !b)) return { from: null, to: null, problem: 'invalid_date' };
  const from = a ? midnight(a, timeZone) : null;
  // The day after the last one: its midnight is where the range stops.
  const to = b ? midnight({ y: b.y, m: b.m, d: b.d + 1 }, timeZone) : null;
  if (from !== null && to !== null && to <= from) return { from: null, to: null, problem: 'range_reversed' };
  return { from: from === null ? null : new Date(from).toISOString(), to: to === null ? null : new Date(to).toISOString(), problem: null };
}

/** @param {string} value @returns {{ y: number, m: number, d: number } | null} */
function parseDay(value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!m) return null;
  const [y, mo, d] = m.slice(1).map(Number);
  // Date.UTC rolls 2026-02-30 over into March: a day that does not exist is refused instead.
  const t = new Date(Date.UTC(y, mo - 1, d));
  if (t.getUTCFullYear() !== y || t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== d) return null;
  return { y, m: mo, d };
}

/**
 * The instant (ms) the day starts in `timeZone` (`d` may run past the month's end: Date.UTC
 * rolls it over). The zone's offset is read at a guess and the guess corrected, twice, so a
 * day on which the offset changes (daylight saving) starts at its real midnight.
 * @param {{ y: number, m: number, d: number }} day @param {string} timeZone
 */
function midnight({ y, m, d }, timeZone) {
  const wall = Date.UTC(y, m - 1, d);
  let at = wall;
  for (let i = 0; i < 2; i++) at = wall - offsetMs(at, timeZone);
  return at;
}

/** How far `timeZone`'s wall clock is ahead of UTC at instant `at` (ms). @param {number} at @param {string} timeZone */
export function offsetMs(at, timeZone) {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
  }).formatToParts(new Date(at));
  /** @param {string} type */
  const n = (type) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const wall = Date.UTC(n('year'), n('month') - 1, n('day'), n('hour'), n('minute'), n('second'));
  return wall - Math.floor(at / 1000) * 1000;
}
