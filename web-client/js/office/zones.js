// The time zones a site may be given, for the admin's site forms (a list to choose from instead
// of a name typed by hand, which the server refuses if it does not exist: 422
// unknown_time_zone). Pure (web-client/test/zones.test.mjs): the browser's list comes in as an
// argument (Intl.supportedValuesOf('timeZone') in admin.js).

/** The zone a new site gets (docs/api.md: the server's default too). */
export const DEFAULT_ZONE = 'Asia/Shanghai';

/**
 * The zones to offer, grouped by region (the part before the first '/'; 'Other' for names
 * without one, such as UTC), regions and zones sorted by name. The default zone and the
 * site's current one are always there, even when this browser does not list them (an old
 * browser, a zone the server knows by another name).
 * @param {readonly string[]} supported the browser's zones ([] when it cannot list them)
 * @param {string | null} [current] the site's zone
 * @returns {[string, string[]][]} [region, zones] in order
 */
export function zoneGroups(supported, current = null) {
  const all = new Set(supported.filter((z) => typeof z === 'string' && z));
  all.add(DEFAULT_ZONE);
  if (current) all.add(current);
  /** @type {Map<string, string[]>} */
  const groups = new Map();
  for (const zone of [...all].sort()) {
    const slash = zone.indexOf('/');
    const region = slash > 0 ? zone.slice(0, slash) : 'Other';
    groups.set(region, [...(groups.get(region) ?? []), zone]);
  }
  return [...groups].sort(([a], [b]) => (a === 'Other' ? 1 : b === 'Other' ? -1 : a.localeCompare(b)));
}

/**
 * A zone as the list shows it: its name and its offset from UTC at `at`, e.g.
 * "Asia/Shanghai (UTC+08:00)". The offset is computed, so it is right for zones with daylight
 * saving on the day the form is shown.
 * @param {string} zone @param {number} at ms since the epoch
 */
export function zoneLabel(zone, at) {
  let minutes;
  try {
    const parts = new Intl.DateTimeFormat('en-US', {
      timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric',
    }).formatToParts(new Date(at));
    /** @param {string} type */
    const n = (type) => Number(parts.find((p) => p.type === type)?.value ?? 0);
    minutes = Math.round((Date.UTC(n('year'), n('month') - 1, n('day'), n('hour'), n('minute')) - Math.floor(at / 60000) * 60000) / 60000);
  } catch {
    return zone; // a zone this browser does not know: its name alone
  }
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${zone} (UTC${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')})`;
}
