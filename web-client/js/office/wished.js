// The request form's preferred time, checked before it is sent (pure: no DOM, no i18n;
// web-client/test/wished.test.mjs). The same rules as the server's (docs/api.md: `wished` has
// `to` after `from`; 422 `wished_in_past` for a time that has already ended), so that the doctor
// reads the reason at once, in their language, and nothing is sent that would be refused.
// Values are the datetime-local inputs' ("2026-03-05T14:00"), read as Beijing time.

/**
 * The error code for a preferred time, or null when it may be sent (both empty is fine).
 * @param {string} from the "from" input's value ('' when empty)
 * @param {string} to the "to" input's value
 * @param {number} now milliseconds since the epoch
 * @returns {'wished_incomplete' | 'wished_invalid' | 'wished_reversed' | 'wished_in_past' | null}
 */
export function wishedProblem(from, to, now) {
  if (!from && !to) return null;
  if (!from || !to) return 'wished_incomplete';
  const a = beijingMs(from);
  const b = beijingMs(to);
  if (Number.isNaN(a) || Number.isNaN(b)) return 'wished_invalid';
  if (b <= a) return 'wished_reversed';
  // Ended already: nobody can meet then. A span that has begun but not ended is still useful
  // ("from this morning until 17:00"), as the server agrees.
  if (b <= now) return 'wished_in_past';
  return null;
}

/** A datetime-local value read as Beijing time (UTC+8, no daylight saving), in ms; NaN if malformed. @param {string} local */
export function beijingMs(local) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(local);
  if (!m) return NaN;
  const [y, mo, d, h, mi, s] = m.slice(1).map((x) => Number(x ?? 0));
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59) return NaN;
  return Date.UTC(y, mo - 1, d, h - 8, mi, s);
}
