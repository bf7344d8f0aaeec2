// A consultation's attachments as the detail page and the request form offer them
// (js/office/attachfacts.js): who may attach, what each kind opens in, sizes and checksums for
// people, a DICOM series in words, the API's paths, and whether the page's CSP lets a fetched
// file be shown from a blob: URL.
//   node --test web-client/test/*.test.mjs   (scripts/e2e.sh runs it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  attachmentsPath, cspAllows, dicomWords, filePath, imagesPath, mayAttach, mergeAttachments, shortSha, sizeText, uploadPath, viewerOf,
} from '../js/office/attachfacts.js';

/** @param {Partial<import('../js/office/attachfacts.js').AttachTarget>} c @returns {import('../js/office/attachfacts.js').AttachTarget} */
const consultation = (c) => ({ status: 'requested', requester: 'doc', coordinator: null, specialists: ['spec'], participants: ['guest'], ...c });

test('the involved (not viewers) and every coordinator may attach, not once it is closed to it', () => {
  const c = consultation({});
  assert.equal(mayAttach(c, { id: 'doc', role: 'doctor' }), true);
  assert.equal(mayAttach(c, { id: 'spec', role: 'specialist' }), true);
  assert.equal(mayAttach(c, { id: 'guest', role: 'doctor' }), true);
  // Any coordinator, involved or not (the centre handles every request).
  assert.equal(mayAttach(c, { id: 'someone', role: 'coordinator' }), true);
  // An invited viewer watches; an uninvolved doctor or admin sees nothing to attach to.
  assert.equal(mayAttach(consultation({ participants: ['v'] }), { id: 'v', role: 'viewer' }), false);
  assert.equal(mayAttach(c, { id: 'other', role: 'doctor' }), false);
  assert.equal(mayAttach(c, { id: 'admin', role: 'admin' }), false);
  // An admin named in it is involved like anyone.
  assert.equal(mayAttach(consultation({ participants: ['admin'] }), { id: 'admin', role: 'admin' }), true);
  assert.equal(mayAttach(consultation({ coordinator: 'k' }), { id: 'k', role: 'coordinator' }), true);
  for (const status of ['scheduled', 'live', 'ended', 'reported']) assert.equal(mayAttach(consultation({ status }), { id: 'doc', role: 'doctor' }), true, status);
  for (const status of ['rejected', 'cancelled', 'no_show']) {
    assert.equal(mayAttach(consultation({ status }), { id: 'doc', role: 'doctor' }), false, status);
    assert.equal(mayAttach(consultation({ status }), { id: 'k', role: 'coordinator' }), false, status);
  }
  assert.equal(mayAttach(c, null), false);
  // A record without participants (older shape) still works.
  assert.equal(mayAttach({ status: 'live', requester: 'doc', specialists: [] }, { id: 'doc', role: 'doctor' }), true);
});

test('each kind opens in its viewer', () => {
  assert.deepEqual(['pdf', 'jpeg', 'png', 'dicom', 'dicom_zip', 'docx'].map(viewerOf), ['pdf', 'image', 'image', 'dicom', 'dicom', null]);
});

test('sizes in binary units, a decimal while it tells something', () => {
  assert.equal(sizeText(0), '0 B');
  assert.equal(sizeText(812), '812 B');
  assert.equal(sizeText(1024), '1.0 KB');
  assert.equal(sizeText(4.5 * 1024), '4.5 KB');
  assert.equal(sizeText(12.4 * 1024 * 1024), '12 MB');
  assert.equal(sizeText(500 * 1024 * 1024), '500 MB');
  assert.equal(sizeText(3 * 1024 ** 3), '3.0 GB');
  assert.equal(sizeText(Number.NaN), '—');
  assert.equal(sizeText(-1), '—');
});

test('a checksum is shortened to 12 hex digits', () => {
  const sha = 'a'.repeat(12) + 'b'.repeat(52);
  assert.equal(shortSha(sha), 'aaaaaaaaaaaa…');
  assert.equal(shortSha('abc'), 'abc');
});

test('a DICOM series in words: modalities, files, frames beyond the files', () => {
  assert.deepEqual(dicomWords({ files: 3, modalities: ['CT'], frames: 3 }), { key: 'many', modalities: 'CT', files: 3, frames: 3 });
  assert.deepEqual(dicomWords({ files: 1, modalities: ['MR'], frames: 1 }), { key: 'one', modalities: 'MR', files: 1, frames: 1 });
  assert.deepEqual(dicomWords({ files: 1, modalities: ['US'], frames: 40 }), { key: 'one_frames', modalities: 'US', files: 1, frames: 40 });
  assert.equal(dicomWords({ files: 2, modalities: ['XA'], frames: 60 }).key, 'many_frames');
  assert.equal(dicomWords({ files: 2, modalities: ['CT', 'PT'], frames: 2 }).modalities, 'CT/PT');
  // No modality tag in the files: still a summary.
  assert.equal(dicomWords({ files: 2, modalities: [], frames: 2 }).modalities, '?');
});

test('uploads not listed yet join the list once, after it', () => {
  /** @param {string} id @returns {import('../js/office/attachfacts.js').Attachment} */
  const a = (id) => ({ id, name: `${id}.pdf`, kind: 'pdf', size: 1, sha256: 'x', uploaded_by: 'u', uploaded_at: '2026-01-01T00:00:00Z' });
  assert.deepEqual(mergeAttachments([a('1'), a('2')], [a('2'), a('3'), a('3')]).map((x) => x.id), ['1', '2', '3']);
  assert.deepEqual(mergeAttachments([], []), []);
});

test('the API paths: ids and the file name encoded', () => {
  const cid = '0195f2c4a1b27c3e9d4f5a6b7c8d9e0f';
  assert.equal(attachmentsPath(cid), `/v1/consultations/${cid}/attachments`);
  assert.equal(uploadPath(cid, 'CT 胸部 #1?.zip'), `/v1/consultations/${cid}/attachments?name=CT%20%E8%83%B8%E9%83%A8%20%231%3F.zip`);
  assert.equal(filePath(cid, 'a1'), `/v1/consultations/${cid}/attachments/a1`);
  assert.equal(filePath(cid, 'a1', true), `/v1/consultations/${cid}/attachments/a1?inline=true`);
  assert.equal(imagesPath(cid, 'a/1'), `/v1/consultations/${cid}/attachments/a%2F1/images`);
});

test('the page CSP: blob: images and frames only where a directive lists blob:', () => {
  // What the server sends today (signaling/src/web.rs): data: images only, frames from 'self'.
  const today = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";
  assert.equal(cspAllows(today, 'img-src', 'blob:'), false);
  assert.equal(cspAllows(today, 'img-src', 'data:'), true);
  assert.equal(cspAllows(today, 'frame-src', 'blob:'), false);
  const open = "default-src 'self'; img-src 'self' data: blob:; frame-src 'self' blob:; frame-ancestors 'none'";
  assert.equal(cspAllows(open, 'img-src', 'blob:'), true);
  assert.equal(cspAllows(open, 'frame-src', 'blob:'), true);
  // frame-src falls back to child-src, then default-src.
  assert.equal(cspAllows("default-src 'self'; child-src blob:", 'frame-src', 'blob:'), true);
  assert.equal(cspAllows("default-src 'self' blob:", 'frame-src', 'blob:'), true);
  assert.equal(cspAllows("default-src 'self' BLOB:", 'img-src', 'blob:'), true);
  // '*' does not cover blob:.
  assert.equal(cspAllows('img-src *', 'img-src', 'blob:'), false);
  // No policy, or none that applies: allowed.
  assert.equal(cspAllows(null, 'img-src', 'blob:'), true);
  assert.equal(cspAllows('', 'frame-src', 'blob:'), true);
  assert.equal(cspAllows("frame-ancestors 'none'", 'img-src', 'blob:'), true);
  // Two policies: both must allow it.
  assert.equal(cspAllows("img-src blob:, img-src 'self'", 'img-src', 'blob:'), false);
  assert.equal(cspAllows("img-src blob:, default-src blob:", 'img-src', 'blob:'), true);
  // A repeated directive: the first counts.
  assert.equal(cspAllows("img-src 'self'; img-src blob:", 'img-src', 'blob:'), false);
});

test('every text the attachment screens use is in both catalogues', async () => {
  const { readFile } = await import('node:fs/promises');
  const web = new URL('..', import.meta.url);
  /** @param {string} f @returns {Promise<Record<string, string>>} */
  const json = async (f) => JSON.parse(await readFile(new URL(f, web), 'utf8'));
  const zh = await json('i18n/zh-CN.json');
  const en = await json('i18n/en.json');
  /** @type {Set<string>} */
  const used = new Set();
  for (const f of ['attachments.js', 'dicomview.js', 'viewer.js', 'request.js']) {
    const src = await readFile(new URL(`js/office/${f}`, web), 'utf8');
    for (const [, k] of src.matchAll(/\bt\('([\w.]+)'/g)) used.add(k);
    for (const [, k] of src.matchAll(/'(attachments\.[\w.]+)'/g)) used.add(k);
  }
  // Keys built from a value: each value they may be built from.
  const { WINDOWS } = await import('../js/office/dicomnav.js');
  for (const w of WINDOWS) used.add(`dicom.window.${w}`);
  for (const k of ['one', 'many', 'one_frames', 'many_frames']) used.add(`attachments.dicom_${k}`);
  for (const k of ['pdf', 'jpeg', 'png', 'dicom', 'dicom_zip']) used.add(`attachment_kind.${k}`);
  for (const k of ['patient_name', 'patient_id', 'patient_birth_date', 'patient_sex', 'study_date', 'study_description', 'series_description', 'institution']) used.add(`dicom.tag.${k}`);
  // The server's refusals of an upload, said by code.
  for (const code of ['attachment_type_refused', 'attachment_dicom_invalid', 'attachment_zip_invalid', 'attachment_zip_not_dicom', 'attachment_zip_too_large',
    'attachment_zip_too_many_files', 'attachment_dicom_too_large', 'attachment_quota_exceeded', 'attachment_name_invalid', 'attachment_empty',
    'too_many_attachments', 'attachment_not_found', 'attachment_not_dicom', 'image_not_found', 'window_invalid']) used.add(`error.${code}`);
  assert.deepEqual([...used].filter((k) => !(k in zh)), [], 'missing in zh-CN.json');
  assert.deepEqual([...used].filter((k) => !(k in en)), [], 'missing in en.json');
  assert.ok(used.size > 60);
});
