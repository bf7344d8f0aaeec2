// A consultation's recordings on its detail page (api.md §Recordings): state, times, who
// declined, the files with their size, downloads (a one-minute link from the server that the
// browser follows, so a large file streams to disk) and, for admins, deletion. Shown to involved users and admins; the server
// decides, and a 403 simply leaves the section out.
import { api, followDownload, me } from '../api.js';
import { errorBox, h, showBanner } from '../dom.js';
import { errorText, fmtTime, label, t } from '../i18n.js';
import { nameOf } from './people.js';

/** @typedef {import('./people.js').ListedConsultation} ListedConsultation */
/**
 * A recording as GET …/recordings lists it (api.md §Recordings), the fields shown here.
 * @typedef {{ name: string, kind: string, participants: string[], duration_ms: number, bytes: number }} RecordingFile
 * @typedef {{ files: RecordingFile[], problems: unknown[], recovered: boolean }} Manifest
 * @typedef {{ id: string, state: string, started_at: string, started_by: string, stopped_at: string | null,
 *   stopped_by: string | null, excluded: string[], encrypted: boolean, failure: string | null,
 *   manifest: Manifest | null }} Recording
 */

/** Re-reads the list this often while a stopped recording is being finalised. */
const POLL_MS = 3000;
const POLL_MAX = 60;

/** Whether the signed-in user may list the recordings (saves a refused, audited request). @param {ListedConsultation} c */
function mayList(c) {
  const u = me();
  if (!u) return false;
  return u.role === 'admin' || c.requester === u.id || c.coordinator === u.id
    || (c.specialists ?? []).includes(u.id) || (c.participants ?? []).includes(u.id);
}

/** A byte count for people: 1.2 MB. @param {number} n */
export function fmtBytes(n) {
  if (!Number.isFinite(n)) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** A duration in ms as m:ss or h:mm:ss. @param {number} ms */
function fmtDuration(ms) {
  if (!Number.isFinite(ms)) return '—';
  const s = Math.round(ms / 1000);
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

/**
 * The section, filled in when the list arrives; null when this user cannot see recordings or
 * the consultation is never recorded.
 * @param {ListedConsultation} c
 */
export function recordingsSection(c) {
  if (c.recording === 'off' || !mayList(c)) return null;
  const body = h('div', { class: 'recordings-body' }, h('p', { class: 'muted' }, t('common.loading')));
  const refreshBtn = h('button', { type: 'button', class: 'ghost small', testid: 'recordings-refresh' }, t('recordings.refresh'));
  const section = h('section', { class: 'card', testid: 'recordings', hidden: true },
    h('div', { class: 'toolbar' }, h('h2', { class: 'grow' }, t('recordings.title')), refreshBtn), body);
  let polls = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const load = async () => {
    clearTimeout(timer);
    /** @type {Recording[]} */
    let items;
    /** @type {string[]} */
    let unreachable;
    try {
      const listed = await api('GET', `/v1/consultations/${encodeURIComponent(c.id)}/recordings`);
      items = listed.items ?? [];
      // With several servers, one that holds recordings may be down: said, not hidden.
      unreachable = listed.unreachable ?? [];
    } catch (e) {
      if (/** @type {{ status?: number } | null | undefined} */ (e)?.status === 403) { section.remove(); return; }
      section.hidden = false;
      body.replaceChildren(errorBox(e, 'recordings-error'));
      return;
    }
    section.hidden = false;
    section.dataset.count = String(items.length);
    body.replaceChildren(
      ...(unreachable.length ? [h('p', { class: 'warn', testid: 'recordings-unreachable' }, t('recordings.unreachable'))] : []),
      items.length
        ? h('ol', { class: 'recordings' }, items.map((r) => recordingItem(c, r, load)))
        : h('p', { class: 'muted', testid: 'recordings-empty' }, t('recordings.none')));
    // A recording that stopped is finalised in the background: look again until it is done.
    const pending = items.some((r) => r.state === 'finalising' || (r.state === 'capturing' && r.stopped_at));
    if (pending && polls++ < POLL_MAX) {
      timer = setTimeout(() => { if (section.isConnected) load(); }, POLL_MS);
    }
  };
  refreshBtn.addEventListener('click', () => { polls = 0; load(); });
  load();
  return section;
}

/** @param {ListedConsultation} c @param {Recording} r @param {() => void} reload */
function recordingItem(c, r, reload) {
  const admin = me()?.role === 'admin';
  const files = r.manifest?.files ?? [];
  const times = r.stopped_at
    ? t('recordings.span', { from: fmtTime(r.started_at), to: fmtTime(r.stopped_at) })
    : t('recordings.since', { from: fmtTime(r.started_at) });
  const stoppedBy = r.stopped_by === 'system' ? t('recordings.by_system') : r.stopped_by ? nameOf(r.stopped_by) : null;
  const del = admin && r.state === 'complete' && h('button', {
    type: 'button', class: 'danger small', testid: 'recording-delete',
    onclick: async (/** @type {Event} */ e) => {
      if (!window.confirm(t('recordings.delete_confirm'))) return;
      const b = /** @type {HTMLButtonElement} */ (e.currentTarget);
      b.disabled = true;
      try {
        await api('DELETE', `/v1/consultations/${encodeURIComponent(c.id)}/recordings/${encodeURIComponent(r.id)}`);
        showBanner(t('recordings.deleted'), 'notice');
        reload();
      } catch (err) {
        b.disabled = false;
        showBanner(err);
      }
    },
  }, t('recordings.delete'));
  return h('li', { class: 'recording', testid: 'recording', 'data-id': r.id, 'data-state': r.state },
    h('div', { class: 'recording-head' },
      h('span', { class: `badge rec-${r.state}`, testid: 'recording-state' }, label('recstate', r.state)),
      r.encrypted && h('span', { class: 'badge' }, t('recordings.encrypted')),
      h('span', { class: 'grow', testid: 'recording-times' }, times),
      del),
    h('p', { class: 'small muted' },
      t('recordings.started_by', { name: nameOf(r.started_by) }),
      stoppedBy && ` · ${t('recordings.stopped_by', { name: stoppedBy })}`),
    r.excluded?.length && h('p', { class: 'small', testid: 'recording-excluded' }, t('recordings.excluded', { names: r.excluded.map(nameOf).join('、') })),
    r.failure && h('p', { class: 'warn small', testid: 'recording-failure' }, t('recordings.failure', { reason: String(r.failure) })),
    r.manifest?.recovered && h('p', { class: 'warn small' }, t('recordings.recovered')),
    // Problems counted: the manifest is there (TypeScript cannot tell).
    (r.manifest?.problems ?? []).length > 0 && h('ul', { class: 'small muted' }, /** @type {Manifest} */ (r.manifest).problems.map((p) => h('li', {}, typeof p === 'string' ? p : JSON.stringify(p)))),
    !r.manifest
      ? h('p', { class: 'muted small', testid: 'recording-pending' }, t(r.state === 'complete' ? 'recordings.no_files' : 'recordings.not_ready'))
      : files.length
        ? h('table', { class: 'files', testid: 'recording-files' },
          h('thead', {}, h('tr', {}, h('th', {}, t('recordings.file')), h('th', {}, t('recordings.duration')), h('th', {}, t('recordings.size')), h('th', {}))),
          h('tbody', {}, files.map((f) => fileRow(c, r, f))))
        : h('p', { class: 'muted small' }, t('recordings.no_files')));
}

/** @param {ListedConsultation} c @param {Recording} r @param {RecordingFile} f */
function fileRow(c, r, f) {
  const who = f.kind === 'composite' ? t('recordings.composite') : (f.participants ?? []).map(nameOf).join('、') || f.name;
  const status = h('span', { class: 'small muted', testid: 'recording-download-status' });
  const btn = h('button', {
    type: 'button', class: 'small', testid: 'recording-download', 'data-name': f.name,
    onclick: async () => {
      btn.disabled = true;
      status.textContent = t('recordings.downloading');
      try {
        /** @type {{ url: string, expires_at: string }} */
        const link = await api('POST', `/v1/consultations/${encodeURIComponent(c.id)}/recordings/${encodeURIComponent(r.id)}/files/${encodeURIComponent(f.name)}/link`);
        followDownload(link.url, `${r.id}-${f.name}`);
        status.textContent = '';
      } catch (e) {
        status.textContent = errorText(e);
      } finally {
        btn.disabled = false;
      }
    },
  }, t('recordings.download'));
  return h('tr', { testid: 'recording-file', 'data-name': f.name, 'data-kind': f.kind, 'data-bytes': String(f.bytes) },
    h('td', {}, who, h('div', { class: 'small muted' }, f.name)),
    h('td', {}, fmtDuration(f.duration_ms)),
    h('td', { testid: 'recording-file-size' }, fmtBytes(f.bytes)),
    h('td', {}, btn, ' ', status));
}
