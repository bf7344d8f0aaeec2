// A consultation's attachments (docs/api.md §Attachments) as the detail page and the request
// form offer them: who may attach, what each kind opens in, the words of a DICOM series, sizes,
// the short form of a checksum, the API's paths, and whether the page's own
// Content-Security-Policy lets a file fetched into the page be shown from a blob: URL. Pure data
// and logic: no DOM, no i18n, no requests (attachments.js shows it; web-client/test/attachfacts.test.mjs).

/**
 * What a DICOM attachment holds, nothing that identifies anyone.
 * @typedef {{ files: number, modalities: string[], frames: number }} DicomSummary
 * An attachment as the consultation lists it (`attachments`) and an upload answers.
 * @typedef {{ id: string, name: string, kind: string, size: number, sha256: string,
 *   uploaded_by: string, uploaded_at: string, dicom?: DicomSummary | null }} Attachment
 * The consultation fields the rules read.
 * @typedef {{ status: string, requester: string, coordinator?: string | null, specialists: string[],
 *   participants?: string[] }} AttachTarget
 * @typedef {'pdf' | 'image' | 'dicom'} Viewer
 */

/** The statuses in which nothing more can be attached. */
export const CLOSED_TO_ATTACH = ['rejected', 'cancelled', 'no_show'];

/**
 * Whether `user` may attach files to `c` now, as the server decides (lifecycle::may_attach):
 * someone involved who is not a viewer, or any coordinator; not once it was rejected,
 * cancelled or missed.
 * @param {AttachTarget} c @param {{ id: string, role: string } | null | undefined} user
 */
export function mayAttach(c, user) {
  if (!user || user.role === 'viewer' || CLOSED_TO_ATTACH.includes(c.status)) return false;
  return user.role === 'coordinator' || involves(c, user.id);
}

/** @param {AttachTarget} c @param {string} id */
function involves(c, id) {
  return c.requester === id || c.coordinator === id || c.specialists.includes(id) || (c.participants ?? []).includes(id);
}

/**
 * What an attachment opens in: a PDF's pages drawn in the page (pdf.js), an image in the page,
 * or the DICOM viewer (a single file or a zipped series alike); null for a kind this client does
 * not know.
 * @param {string} kind
 * @returns {Viewer | null}
 */
export function viewerOf(kind) {
  if (kind === 'pdf') return 'pdf';
  if (kind === 'jpeg' || kind === 'png') return 'image';
  if (kind === 'dicom' || kind === 'dicom_zip') return 'dicom';
  return null;
}

/**
 * A byte count for people, in binary units as the recordings give theirs: 812 B, 4.5 KB, 12 MB.
 * @param {number} n
 */
export function sizeText(n) {
  if (!Number.isFinite(n) || n < 0) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  // One decimal while it still tells something (4.5 MB), none after (120 MB).
  const shown = i === 0 ? String(v) : v < 10 ? v.toFixed(1) : String(Math.round(v));
  return `${shown} ${units[i]}`;
}

/** The first 12 hex digits of a SHA-256: enough to compare by eye; the whole value goes in a title. @param {string} sha */
export function shortSha(sha) {
  return sha.length > 12 ? `${sha.slice(0, 12)}…` : sha;
}

/**
 * A DICOM attachment's summary for a catalogue text: the modalities ("CT", "CT/PT"), the files,
 * and the frames when there are more frames than files (a cine loop, a multi-frame file).
 * @param {DicomSummary} d
 * @returns {{ key: 'one' | 'many' | 'one_frames' | 'many_frames', modalities: string, files: number, frames: number }}
 *   key: which text (attachments.dicom_<key>) says it: one file or more, and the frames or not
 */
export function dicomWords(d) {
  const modalities = (d.modalities ?? []).filter((m) => m).join('/') || '?';
  const files = Number(d.files) || 0;
  const frames = Number(d.frames) || 0;
  const key = /** @type {const} */ (`${files === 1 ? 'one' : 'many'}${frames > files ? '_frames' : ''}`);
  return { key, modalities, files, frames };
}

/**
 * The list to show: the consultation's attachments, then those uploaded here that it does not
 * list yet (the page was rendered before they arrived); by id, no repeats.
 * @param {Attachment[]} listed @param {Attachment[]} uploaded
 * @returns {Attachment[]}
 */
export function mergeAttachments(listed, uploaded) {
  const ids = new Set(listed.map((a) => a.id));
  return [...listed, ...uploaded.filter((a) => !ids.has(a.id) && ids.add(a.id))];
}

const enc = encodeURIComponent;

/** @param {string} cid */
export const attachmentsPath = (cid) => `/v1/consultations/${enc(cid)}/attachments`;

/** Where a file is sent: its name in the query, the bytes as the body. @param {string} cid @param {string} name */
export const uploadPath = (cid, name) => `${attachmentsPath(cid)}?name=${enc(name)}`;

/**
 * The file itself; `inline` asks for it to be shown rather than saved (the audit trail records
 * a download either way).
 * @param {string} cid @param {string} aid
 */
export const filePath = (cid, aid, inline = false) => `${attachmentsPath(cid)}/${enc(aid)}${inline ? '?inline=true' : ''}`;

/** The image index of a DICOM attachment; its images are under it (dicomnav.js). @param {string} cid @param {string} aid */
export const imagesPath = (cid, aid) => `${attachmentsPath(cid)}/${enc(aid)}/images`;

/**
 * Whether a Content-Security-Policy header lets `directive` (img-src, frame-src) load from
 * `source` (a scheme such as 'blob:'): every policy in the header must allow it (a header may
 * hold several, comma-separated); a directive left out falls back (frame-src to child-src, then
 * everything to default-src); no applicable directive allows it. '*' does not cover blob: or
 * data: (CSP 3).
 * @param {string | null | undefined} header
 * @param {'img-src' | 'frame-src'} directive
 * @param {string} source
 */
export function cspAllows(header, directive, source) {
  if (!header) return true;
  const chain = directive === 'frame-src' ? ['frame-src', 'child-src', 'default-src'] : [directive, 'default-src'];
  const want = source.toLowerCase();
  return header.split(',').every((policy) => {
    /** @type {Map<string, string[]>} */
    const dirs = new Map();
    for (const part of policy.split(';')) {
      const [name, ...values] = part.trim().split(/\s+/);
      // The first of a repeated directive counts (CSP 3).
      if (name && !dirs.has(name.toLowerCase())) dirs.set(name.toLowerCase(), values.map((v) => v.toLowerCase()));
    }
    const list = chain.map((d) => dirs.get(d)).find((v) => v !== undefined);
    return list === undefined || list.includes(want);
  });
}
