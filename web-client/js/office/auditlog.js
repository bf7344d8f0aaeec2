// The audit trail as people read it (the admin's audit page, audit.js, and its CSV export):
// each record as one sentence in the user's language ("会诊中心 王协调 安排了会诊 #c3d4e5f6"),
// with its actor and its subject named. One template per action the server writes
// (catalogue keys audit.sentence.<action>; docs/api.md "Audit trail"), and a fallback for an
// action this client does not know yet. Records carry ids and action names only, never case
// text, and so do the sentences.
// Pure: no DOM and no i18n import (the page passes its words in); web-client/test/auditlog.test.mjs.

/**
 * @typedef {{ seq: number, at: string, actor: string, action: string, consultation?: string, target?: string, detail?: string }} AuditRecord
 * @typedef {{ items: AuditRecord[], next_before: number | null, total?: number }} AuditPage
 */

/**
 * What the sentences need from the page.
 * @typedef {Object} Words
 * @property {(key: string, params?: Record<string, string>) => string} t a catalogue text
 * @property {(key: string) => boolean} has whether the catalogue has a key
 * @property {(id: string) => string | null} user a user's display name, null if unknown
 * @property {(id: string) => string | null} site a site's name, null if unknown
 * @property {(status: string) => string} status a consultation status's label
 */

/** Whose id a record's target is, by action (the rest name a recording, or nothing). */
const USER_TARGET = new Set([
  'admin.bootstrap', 'admin.password_reset', 'admin.user_created', 'admin.user_updated',
  ...['admit', 'decline', 'remove', 'floor_given', 'floor_taken', 'floor_declined', 'mute_request', 'rights_revoked', 'rights_narrowed'].map((a) => `room.${a}`),
]);
const SITE_TARGET = new Set(['admin.site_created', 'admin.site_updated']);
/** Actions whose target is a guest link's id (api.md §Guest links). */
const GUEST_LINK_TARGET = new Set(['consultation.guest_link_create', 'consultation.guest_link_revoke', 'consultation.guest_arrived', 'consultation.guest_join_token']);

/** A consultation's short reference: its last 8 hex digits (the random part of a UUIDv7). @param {string | undefined} id */
export function shortRef(id) {
  return id ? `#${id.slice(-8)}` : '';
}

/**
 * A guest's room identity (`guest-<link id>`, api.md §Guest links) as "Guest #1a2b3c4d" (the
 * link's short reference: the name they typed is never in the trail), or null for any other id.
 * @param {string} id @param {Words} w
 */
export function guestName(id, w) {
  const link = /^guest-([0-9a-z]+)$/.exec(id)?.[1];
  return link ? w.t('audit.actor.guest', { ref: shortRef(link) }) : null;
}

/** Who did it: a user's name, the system, a guest, or the id as it is (a CLI-minted room token's identity). @param {string} actor @param {Words} w */
export function actorName(actor, w) {
  if (actor === 'system') return w.t('admin.system');
  if (actor === 'system:cli') return w.t('audit.actor.cli');
  if (actor === 'unknown') return w.t('admin.unknown_actor');
  return w.user(actor) ?? guestName(actor, w) ?? actor;
}

/** What the action was done to, named: a user (or a guest), a site, a guest link by its short reference, or the id as it is (a recording). @param {AuditRecord} r @param {Words} w */
export function targetName(r, w) {
  if (!r.target) return '';
  if (USER_TARGET.has(r.action)) return w.user(r.target) ?? guestName(r.target, w) ?? r.target;
  if (SITE_TARGET.has(r.action)) return w.site(r.target) ?? r.target;
  if (GUEST_LINK_TARGET.has(r.action)) return shortRef(r.target);
  return r.target;
}

/** The record as a sentence in the user's language. @param {AuditRecord} r @param {Words} w */
export function sentence(r, w) {
  const own = `audit.sentence.${r.action}`;
  const key = w.has(own) ? own : r.consultation ? 'audit.sentence.other_in' : 'audit.sentence.other';
  return w.t(key, {
    actor: actorName(r.actor, w),
    consultation: shortRef(r.consultation) || '—',
    target: targetName(r, w) || '—',
    action: r.action,
  });
}

/** The record's detail in words ("status=scheduled": the status it led to). @param {string | undefined} detail @param {Words} w */
export function detailText(detail, w) {
  const status = /^status=([a-z_]+)$/.exec(detail ?? '')?.[1];
  return status ? w.t('audit.detail.status', { status: w.status(status) }) : (detail ?? '');
}

/**
 * An RFC 3339 instant as "2026-12-06 14:03" (with seconds: "…14:03:05") on the wall clock of a
 * zone `offsetMinutes` ahead of UTC (Beijing: 480): one form in both languages, which sorts as
 * text and which a spreadsheet reads as a time.
 * @param {string} at @param {number} offsetMinutes @param {boolean} [seconds]
 */
export function stamp(at, offsetMinutes, seconds = false) {
  // The API may send nanoseconds; Date reads milliseconds.
  const ms = Date.parse(String(at).replace(/(\.\d{3})\d+/, '$1'));
  if (Number.isNaN(ms)) return String(at);
  const iso = new Date(ms + offsetMinutes * 60e3).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, seconds ? 19 : 16)}`;
}

/**
 * The CSV export's rows: a header in the user's language, then one row per record (time,
 * actor, action code, sentence, consultation, target; ids in full).
 * @param {AuditRecord[]} records @param {Words} w @param {number} offsetMinutes the zone times are written in
 * @returns {string[][]}
 */
export function csvRows(records, w, offsetMinutes) {
  const header = ['audit.csv.time', 'audit.csv.actor', 'audit.csv.action', 'audit.csv.sentence', 'audit.csv.consultation', 'audit.csv.target'].map((k) => w.t(k));
  return [header, ...records.map((r) => [
    stamp(r.at, offsetMinutes, true), actorName(r.actor, w), r.action, sentence(r, w), r.consultation ?? '', r.target ?? '',
  ])];
}

/**
 * Every record a filter matches, newest first, page after page (following next_before) up to
 * `cap` records: what the export writes. `fetchPage(before)` asks for the page below `before`
 * (null: the newest).
 * @param {(before: number | null) => Promise<AuditPage>} fetchPage
 * @param {number} cap
 * @returns {Promise<{ records: AuditRecord[], capped: boolean }>}
 */
export async function collect(fetchPage, cap) {
  /** @type {AuditRecord[]} */
  const records = [];
  /** @type {number | null} */
  let before = null;
  for (;;) {
    const page = await fetchPage(before);
    records.push(...page.items);
    if (records.length >= cap) return { records: records.slice(0, cap), capped: records.length > cap || page.next_before != null };
    // A page that makes no progress would loop for ever: stop there.
    if (page.next_before == null || (before !== null && page.next_before >= before)) return { records, capped: false };
    before = page.next_before;
  }
}
