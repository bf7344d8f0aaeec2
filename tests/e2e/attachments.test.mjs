// A consultation's attachments in the real web client (issue 15), in Chinese and in English.
// Each language walks one consultation: a doctor requests it with a PDF picked on the form (the
// English walk also picks a "PNG" that is text, refused and named in a notice that says it can
// be added on the detail page); on the detail page the doctor adds a zipped CT series (made by
// the test: DICOM files written by tests/e2e/lib/dicom.mjs, zipped by lib/files.mjs) and a
// renamed program (an MZ header named ct.dcm), each with its own row (the series held on the
// wire while the rows are read: progress, and the program waiting its turn); the series is
// listed as "CT · 4 files", the program refused in the page's language; a PNG dropped on the
// section goes too. The PDF (three pages, each a rectangle of its own colour in its own place:
// lib/files.mjs pagedPdf) opens in the page's own viewer, drawn by pdf.js, no tab: page 1, then
// "next" to page 2, the last page typed, back with the arrow key; each page is checked by the
// colours at the rectangles' centres, and pages 1 and 2 differ in their pixels. It downloads
// under its name with the same SHA-256; the PNG opens in the page. The DICOM viewer shows the first slice; a
// key, the wheel and the buttons step through the slices and each step changes the picture
// (the pixels, read through a canvas); bone → brain window changes it; a custom window with no
// width is refused, one with both is taken; the thumbnails come; the patient tags show the
// name the DICOM files carry. The specialist, once the consultation is accepted, sees every
// attachment.
//
//   node tests/e2e/attachments.test.mjs     (prints a JSON summary; exit code 1 on failure)
//
// Screenshots: tests/e2e/artifacts/screens/attachments-*.png.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ROOT, SCREENS, apiClient, launchBrowser, newPage, note, pageErrors, pageLog, runTest, shot, signIn, startServer, until,
} from './lib/harness.mjs';
import { DEFAULT_PATIENT, fillPatient, goto, openDetail, routeId } from './lib/office.mjs';
import { ctSeries } from './lib/dicom.mjs';
import { PDF_PAGES, near, pagedPdf, png, program, sha256, zip } from './lib/files.mjs';
import { cspAllows, shortSha, sizeText } from '../../web-client/js/office/attachfacts.js';

/** @typedef {import('playwright-core').Page} Page */
/** @typedef {import('playwright-core').Locator} Locator */
/** @typedef {{ name: string, mimeType: string, buffer: Buffer }} FilePayload */

const SLICES = 4;
/** How the viewer shows the name the DICOM files carry (PN 'WANG^XIAOMING=王^小明'). */
const DICOM_PATIENT = 'WANG XIAOMING / 王小明';

/** The test's own files (the walks name them in their language): a PDF of three pages that look different. */
const PDF = pagedPdf();
const SERIES = zip(ctSeries({ slices: SLICES }));
const PROGRAM = program();
const PNG = png(32, 24, (x, y) => [x * 8, y * 10, 160]);
/** Text named like an image: the form's refused file in the English walk. */
const FAKE_PNG = Buffer.from('not an image at all\n');

/** The catalogues, to compare what the page says with what it should say. @type {Record<string, Record<string, string>>} */
const cat = {};
for (const l of ['zh-CN', 'en']) cat[l] = JSON.parse(await readFile(join(ROOT, 'web-client/i18n', `${l}.json`), 'utf8'));
/** A catalogue text with its {placeholders} filled, as i18n.js t() does. @param {string} lang @param {string} key @param {Record<string, string | number>} [p] */
function T(lang, key, p = {}) {
  const s = cat[lang][key];
  if (s === undefined) throw new Error(`no ${key} in ${lang}.json`);
  return s.replace(/\{(\w+)\}/g, (m, k) => String(p[k] ?? m));
}

const WALKS = [
  { lang: 'zh-CN', pdf: '心电图报告 2026-03.pdf', series: '胸部CT 平扫.zip', png: '伤口照片.png', summary: '胸闷 3 月，外院 CT 及心电图见附件。' },
  { lang: 'en', pdf: 'ECG report.pdf', series: 'chest CT.zip', png: 'wound photo.png', summary: 'Chest tightness for 3 months; outside CT and ECG attached.', refusedOnForm: 'scan.png' },
];

/** @param {string} name @param {Buffer} buffer @param {string} [mimeType] @returns {FilePayload} */
const file = (name, buffer, mimeType = 'application/octet-stream') => ({ name, mimeType, buffer });

/** Waits for `locator`'s text to satisfy `ok` (a RegExp or an exact string); returns it. @param {Locator} locator @param {RegExp | string} ok @param {string} what */
async function textOf(locator, ok, what) {
  return until(what, async () => {
    const text = (await locator.innerText().catch(() => '')).trim();
    return (typeof ok === 'string' ? text === ok : ok.test(text)) ? text : false;
  }, 15000, 100);
}

/** A short hash of the pixels an <img> shows (drawn on a canvas): tells two pictures apart. @param {Locator} img */
function pixels(img) {
  return img.evaluate((el) => {
    const image = /** @type {HTMLImageElement} */ (el);
    const canvas = document.createElement('canvas');
    canvas.width = image.naturalWidth;
    canvas.height = image.naturalHeight;
    const g = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
    g.drawImage(image, 0, 0);
    let h = 2166136261;
    for (const b of g.getImageData(0, 0, canvas.width, canvas.height).data) h = Math.imul(h ^ b, 16777619);
    return `${canvas.width}x${canvas.height}:${(h >>> 0).toString(16)}`;
  });
}

/**
 * Waits until the viewer shows image `image` at window `window`, loaded; returns its pixel hash.
 * @param {Locator} viewer @param {number} image @param {string} window
 */
async function shown(viewer, image, window) {
  const img = viewer.getByTestId('dicom-image');
  await until(`the viewer to show image ${image} at window ${window}`, async () => {
    const err = viewer.getByTestId('dicom-error');
    if (await err.count()) throw new Error(`the viewer failed: ${await err.getAttribute('data-code')}: ${await err.innerText()}`);
    const [ready, n, w] = await Promise.all(['data-ready', 'data-image', 'data-window'].map((a) => img.getAttribute(a)));
    return ready === 'true' && n === String(image) && w === window;
  }, 15000, 100);
  return pixels(img);
}

/**
 * Waits until the file viewer shows PDF page `n` (1-based) drawn, and checks it by its pixels:
 * the page's own rectangle in its colour at its centre, the other pages' rectangles not there
 * (white, unless a box of this page covers them). Returns a hash of the pixels and the colours seen.
 * @param {Locator} dialog @param {number} n
 */
async function pdfPage(dialog, n) {
  const sheet = dialog.getByTestId('file-viewer-pdf');
  await until(`the viewer to show PDF page ${n}`, async () => {
    const err = dialog.getByTestId('file-viewer-error');
    if (await err.count()) throw new Error(`the PDF viewer failed: ${await err.getAttribute('data-code')}: ${await err.innerText()}`);
    const [ready, page, input] = await Promise.all([sheet.getAttribute('data-ready'), sheet.getAttribute('data-page'), dialog.getByTestId('pdf-page').inputValue()]);
    return ready === 'true' && page === String(n) && input === String(n)
      && (await sheet.getByTestId('file-viewer-page').getAttribute('data-page')) === String(n);
  }, 15000, 100);
  const canvas = sheet.getByTestId('file-viewer-page');
  const got = await canvas.evaluate((el, boxes) => {
    const c = /** @type {HTMLCanvasElement} */ (el);
    const g = /** @type {CanvasRenderingContext2D} */ (c.getContext('2d'));
    const data = g.getImageData(0, 0, c.width, c.height).data;
    let h = 2166136261;
    for (let i = 0; i < data.length; i += 7) h = Math.imul(h ^ data[i], 16777619);
    const at = (/** @type {number} */ fx, /** @type {number} */ fy) => [...g.getImageData(Math.floor(fx * c.width), Math.floor(fy * c.height), 1, 1).data];
    return { width: c.width, height: c.height, hash: (h >>> 0).toString(16), centres: boxes.map((b) => at(b.x + b.width / 2, b.y + b.height / 2)) };
  }, PDF_PAGES.map((p) => p.box));
  const inside = (/** @type {{ x: number, y: number, width: number, height: number }} */ b, /** @type {number} */ fx, /** @type {number} */ fy) => fx >= b.x && fx <= b.x + b.width && fy >= b.y && fy <= b.y + b.height;
  PDF_PAGES.forEach((p, i) => {
    const px = got.centres[i];
    const cx = p.box.x + p.box.width / 2;
    const cy = p.box.y + p.box.height / 2;
    const want = i === n - 1 ? p.rgb : inside(PDF_PAGES[n - 1].box, cx, cy) ? PDF_PAGES[n - 1].rgb : [255, 255, 255];
    if (!near(px, want)) throw new Error(`page ${n}: at page ${i + 1}'s box the canvas shows rgb(${px.slice(0, 3)}), not rgb(${want})`);
  });
  return { ...got, seen: got.centres[n - 1].slice(0, 3).join(',') };
}

/**
 * An element's screenshot; taken again when a pushed change renders the page anew under it
 * (the element is then replaced by its twin).
 * @param {Locator} locator @param {string} name
 */
async function snap(locator, name) {
  await until(`a screenshot of ${name}`, () => locator.screenshot({ path: join(SCREENS, `${name}.png`) }).then(() => true, (e) => {
    if (/not attached|detached/i.test(e.message)) return false;
    throw e;
  }), 15000, 100);
}

/**
 * Waits until the detail page shows consultation `id` as the server has it now: the change an
 * upload pushed has been rendered (a later render would replace what the test reads or clicks).
 * @param {Page} page @param {(token: string, method: string, path: string) => Promise<any>} call @param {string} token @param {string} id
 */
async function settled(page, call, token, id) {
  const { version } = await call(token, 'GET', `/v1/consultations/${id}`);
  await until(`the page to show version ${version} of ${id}`, async () => (await page.getByTestId('detail').getAttribute('data-version').catch(() => null)) === String(version));
  return version;
}

/** The row of the attachment named `name` in the detail page's list. @param {Page} page @param {string} name */
const rowOf = (page, name) => page.getByTestId('attachment').filter({ has: page.getByTestId('attachment-name').getByText(name, { exact: true }) });

await runTest('attachments', async (s) => {
  const server = await s.step('start the server', () => startServer());
  const { origin } = server;
  const api = apiClient(origin);
  const doctorSession = await api.signIn('doctor-east');
  const tok = { coordinator: await api.login('coordinator'), doctor: doctorSession.access_token };
  const cardiologist = await api.user(tok.coordinator, 'cardiologist');
  const browser = await launchBrowser();
  /** @type {Page[]} */
  const pages = [];

  for (const w of WALKS) {
    const L = w.lang === 'zh-CN' ? 'zh' : 'en';
    const checks = s.checks[L] = {};
    const doctor = await newPage(browser, { name: `attachments-doctor-${L}`, lang: w.lang });
    const specialist = await newPage(browser, { name: `attachments-specialist-${L}`, lang: w.lang });
    pages.push(doctor, specialist);
    /** @type {string} */
    let id = '';
    /** The upload requests the page sent: their `name` query parameter. @type {string[]} */
    const sentNames = [];
    doctor.on('request', (r) => {
      const u = new URL(r.url());
      if (r.method() === 'POST' && u.pathname.endsWith('/attachments')) sentNames.push(u.searchParams.get('name') ?? '');
    });

    await s.step(`${L}: the doctor requests with a PDF picked on the form`, async () => {
      await signIn(doctor, origin, 'doctor-east');
      await goto(doctor, '#/new');
      await doctor.getByTestId('request-form').waitFor();
      await doctor.getByTestId('request-kind').selectOption('consultation');
      await doctor.getByTestId('request-specialty').selectOption('cardiology');
      await fillPatient(doctor, DEFAULT_PATIENT);
      await doctor.getByTestId('request-summary').fill(w.summary);
      const picked = [file(w.pdf, PDF, 'application/pdf')];
      if (w.refusedOnForm) picked.push(file(w.refusedOnForm, FAKE_PNG, 'image/png'));
      await doctor.getByTestId('request-file-input').setInputFiles(picked);
      const chosen = doctor.getByTestId('request-file');
      await until('the chosen files to be listed on the form', async () => (await chosen.count()) === picked.length);
      const names = await chosen.evaluateAll((els) => els.map((e) => e.getAttribute('data-name')));
      if (names.join('|') !== picked.map((p) => p.name).join('|')) throw new Error(`the form lists ${names}`);
      await shot(doctor, `attachments-request-form-${L}`);
      await doctor.getByTestId('request-submit').click();
      id = await until('the request to be created and the page to go on', async () => {
        const err = doctor.getByTestId('request-error');
        if (await err.count()) throw new Error(`request: ${await err.getAttribute('data-code')}: ${await err.innerText()}`);
        return routeId(doctor);
      }, 30000, 100);
      const c = await api.call(tok.doctor, 'GET', `/v1/consultations/${id}`);
      if (c.attachments.length !== 1) throw new Error(`the consultation has ${c.attachments.length} attachments`);
      const a = c.attachments[0];
      if (a.name !== w.pdf || a.kind !== 'pdf' || a.sha256 !== sha256(PDF) || a.size !== PDF.length) throw new Error(`the PDF was stored as ${JSON.stringify(a)}`);
      if (!sentNames.includes(w.pdf)) throw new Error(`the upload named the file ${JSON.stringify(sentNames)}`);
      checks.request = { sent: sentNames.slice() };

      if (w.refusedOnForm) {
        // Said where the doctor lands: which file, why, and where it can be added.
        const notice = doctor.getByTestId('request-attach-failed');
        await notice.waitFor();
        const text = await notice.innerText();
        if (!text.includes(T(w.lang, 'attachments.request_failed'))) throw new Error(`the notice reads "${text}"`);
        const item = notice.getByTestId('request-attach-failed-file');
        if ((await item.getAttribute('data-code')) !== 'attachment_type_refused') throw new Error(`refused as ${await item.getAttribute('data-code')}`);
        const want = T(w.lang, 'attachments.failed_item', { name: w.refusedOnForm, reason: T(w.lang, 'error.attachment_type_refused') });
        await textOf(item, want, 'the refused file named with its reason');
        await shot(doctor, `attachments-request-refused-${L}`);
        checks.requestRefused = await item.innerText();
      }
    });

    await s.step(`${L}: the detail page lists the PDF: name, kind, size, uploader, time, checksum`, async () => {
      // Where the request led (not reloaded: what the page knows of the form's uploads stays).
      if (routeId(doctor) !== id) throw new Error(`the request led to ${doctor.url()}`);
      const detail = doctor.locator(`[data-testid="detail"][data-id="${id}"]`);
      await detail.waitFor();
      await settled(doctor, api.call, tok.doctor, id);
      const section = detail.getByTestId('attachments');
      await section.waitFor();
      if ((await section.getAttribute('data-may-attach')) !== 'true') throw new Error('the requester is not offered to attach');
      const row = rowOf(doctor, w.pdf);
      await row.waitFor();
      await textOf(row.getByTestId('attachment-kind'), T(w.lang, 'attachment_kind.pdf'), 'the kind in words');
      await textOf(row.getByTestId('attachment-size'), sizeText(PDF.length), 'the size');
      await textOf(row.getByTestId('attachment-uploader'), doctorSession.user.display_name, 'the uploader');
      const sha = row.getByTestId('attachment-sha256');
      if ((await sha.innerText()) !== shortSha(sha256(PDF)) || (await sha.getAttribute('title')) !== sha256(PDF)) throw new Error(`the checksum reads "${await sha.innerText()}" (${await sha.getAttribute('title')})`);
      if (w.refusedOnForm) {
        // The file refused on the form is still said on the page it can be added on; dismissed.
        const failed = section.getByTestId('attachment-upload').filter({ has: doctor.locator(`[data-code="attachment_type_refused"]`) });
        if ((await failed.getAttribute('data-name')) !== w.refusedOnForm) throw new Error('the file refused on the form is not shown on the detail page');
        await failed.getByTestId('attachment-upload-dismiss').click();
        await failed.waitFor({ state: 'detached' });
      }
      checks.pdfRow = await row.innerText();
    });

    await s.step(`${L}: a zipped CT series goes, a renamed program is refused; each file has its row`, async () => {
      const section = doctor.getByTestId('attachments');
      // The series is held on the wire until its row and the program's have been read.
      /** @type {() => void} */
      let release = () => {};
      const held = new Promise((r) => { release = () => r(undefined); });
      /** @type {() => void} */
      let arrived = () => {};
      const reached = new Promise((r) => { arrived = () => r(undefined); });
      const matcher = (/** @type {URL} */ u) => u.pathname.endsWith('/attachments') && u.searchParams.get('name') === w.series;
      // Once: the route goes by itself after this request (unrouting would settle it under the handler).
      await doctor.route(matcher, async (route) => { arrived(); await held; await route.continue(); }, { times: 1 });
      await doctor.getByTestId('attachment-input').setInputFiles([file(w.series, SERIES, 'application/zip'), file('ct.dcm', PROGRAM)]);
      await reached;
      const uploads = section.getByTestId('attachment-upload');
      const seriesRow = uploads.and(doctor.locator(`[data-name="${w.series}"]`));
      const programRow = uploads.and(doctor.locator('[data-name="ct.dcm"]'));
      await until('the series on its way and the program waiting', async () => {
        const st = await seriesRow.getAttribute('data-state').catch(() => null);
        return (st === 'sending' || st === 'checking') && (await programRow.getAttribute('data-state').catch(() => null)) === 'waiting';
      });
      if (!(await seriesRow.getByTestId('attachment-upload-progress').isVisible())) throw new Error('the series has no progress bar');
      await textOf(programRow.getByTestId('attachment-upload-state'), T(w.lang, 'attachments.waiting'), 'the program waiting its turn');
      await snap(section, `attachments-uploading-${L}`);
      release();

      const zipRow = rowOf(doctor, w.series);
      await zipRow.waitFor({ timeout: 30000 });
      if ((await zipRow.getAttribute('data-kind')) !== 'dicom_zip') throw new Error(`the series is listed as ${await zipRow.getAttribute('data-kind')}`);
      await textOf(zipRow.getByTestId('attachment-dicom'), T(w.lang, 'attachments.dicom_many', { modalities: 'CT', files: SLICES }), 'the series in words');
      const refused = section.getByTestId('attachment-upload').and(doctor.locator('[data-name="ct.dcm"][data-state="failed"]'));
      await refused.waitFor();
      const err = refused.getByTestId('attachment-upload-error');
      if ((await err.getAttribute('data-code')) !== 'attachment_type_refused') throw new Error(`the program was refused as ${await err.getAttribute('data-code')}`);
      const said = await textOf(err, T(w.lang, 'error.attachment_type_refused'), 'the refusal in the page\'s language');
      if (await rowOf(doctor, 'ct.dcm').count()) throw new Error('the refused program is listed');
      const c = await api.call(tok.doctor, 'GET', `/v1/consultations/${id}`);
      const kinds = c.attachments.map((/** @type {any} */ a) => a.kind).join(',');
      if (kinds !== 'pdf,dicom_zip') throw new Error(`stored: ${kinds}`);
      if (c.attachments[1].sha256 !== sha256(SERIES) || c.attachments[1].dicom?.files !== SLICES) throw new Error(`the series was stored as ${JSON.stringify(c.attachments[1])}`);
      await settled(doctor, api.call, tok.doctor, id);
      await snap(section, `attachments-section-${L}`);
      await snap(refused, `attachments-refused-${L}`);
      await shot(doctor, `attachments-detail-${L}`);
      checks.refused = said;
      checks.series = await zipRow.getByTestId('attachment-dicom').innerText();
    });

    await s.step(`${L}: a PNG dropped on the section goes too`, async () => {
      const section = doctor.getByTestId('attachments');
      // What the browser hands a drop of a file from the desktop: a DataTransfer holding it.
      await section.evaluate((el, { name, bytes }) => {
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(bytes)], name, { type: 'image/png' }));
        for (const type of ['dragenter', 'dragover', 'drop']) el.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
      }, { name: w.png, bytes: [...PNG] });
      const row = rowOf(doctor, w.png);
      await row.waitFor();
      if ((await row.getAttribute('data-kind')) !== 'png') throw new Error(`the dropped file is listed as ${await row.getAttribute('data-kind')}`);
      if (await doctor.getByTestId('attachments').evaluate((el) => el.classList.contains('dropping'))) throw new Error('the section stays highlighted after the drop');
      await settled(doctor, api.call, tok.doctor, id);
    });

    await s.step(`${L}: the PDF opens in the page, page 1 then page 2 (each its own picture), and downloads under its name; the PNG opens in the page`, async () => {
      const csp = await doctor.evaluate(async () => (await fetch('/', { method: 'HEAD' })).headers.get('content-security-policy'));
      const row = rowOf(doctor, w.pdf);
      // Drawn by pdf.js in the page's own viewer, whatever the policy says of frames: no tab opens.
      /** @type {Page[]} */
      const tabs = [];
      const onTab = (/** @type {Page} */ p) => tabs.push(p);
      doctor.context().on('page', onTab);
      await row.getByTestId('attachment-view').click();
      const viewer = doctor.getByTestId('file-viewer');
      await viewer.waitFor();
      if (await viewer.locator('iframe').count()) throw new Error('the PDF is framed, not drawn');
      const pages = await textOf(viewer.getByTestId('pdf-pages'), T(w.lang, 'pdf.of', { total: PDF_PAGES.length }), 'the page count');
      const first = await pdfPage(viewer, 1);
      if (!(await viewer.getByTestId('pdf-prev').isDisabled())) throw new Error('"previous" is offered on the first page');
      await shot(doctor, `attachments-pdf-${L}`);
      await viewer.getByTestId('pdf-next').click();
      const second = await pdfPage(viewer, 2);
      if (first.hash === second.hash) throw new Error('pages 1 and 2 show the same pixels');
      await shot(doctor, `attachments-pdf-page2-${L}`);
      // The page number typed: the last page; "next" is then not offered.
      await viewer.getByTestId('pdf-page').fill(String(PDF_PAGES.length));
      await viewer.getByTestId('pdf-page').press('Enter');
      const last = await pdfPage(viewer, PDF_PAGES.length);
      if (!(await viewer.getByTestId('pdf-next').isDisabled())) throw new Error('"next" is offered on the last page');
      // And back with the arrow key, over the page.
      await viewer.getByTestId('file-viewer-pdf-view').focus();
      await doctor.keyboard.press('ArrowLeft');
      await pdfPage(viewer, PDF_PAGES.length - 1);
      await viewer.getByTestId('file-viewer-close').click();
      await viewer.waitFor({ state: 'detached' });
      doctor.context().off('page', onTab);
      if (tabs.length) throw new Error(`the PDF opened ${tabs.length} tab(s)`);
      // Closing frees the document (pdf.js's own call): the page says so if it could not.
      const complaints = pageLog(doctor).filter((l) => / error: huizhen: /.test(l));
      if (complaints.length) throw new Error(`the page complained: ${complaints.join(' | ')}`);
      checks.pdf = { pages, page1: first.seen, page2: second.seen, last: last.seen, canvas: `${first.width}x${first.height}` };
      const [download] = await Promise.all([doctor.waitForEvent('download'), row.getByTestId('attachment-download').click()]);
      if (download.suggestedFilename() !== w.pdf) throw new Error(`saved as ${download.suggestedFilename()}`);
      const saved = await readFile(/** @type {string} */ (await download.path()));
      if (sha256(saved) !== sha256(PDF)) throw new Error('the download is not the file uploaded');

      await rowOf(doctor, w.png).getByTestId('attachment-view').click();
      const dialog = doctor.getByTestId('file-viewer');
      const img = dialog.getByTestId('file-viewer-image');
      await img.waitFor();
      await until('the image to load', async () => img.evaluate((el) => /** @type {HTMLImageElement} */ (el).naturalWidth === 32));
      const src = await img.getAttribute('src') ?? '';
      const blobImages = cspAllows(csp, 'img-src', 'blob:');
      if (!src.startsWith(blobImages ? 'blob:' : 'data:image/png')) throw new Error(`the image is shown from ${src.slice(0, 20)}`);
      await doctor.keyboard.press('Escape');
      await dialog.waitFor({ state: 'detached' });
      checks.download = download.suggestedFilename();
    });

    await s.step(`${L}: the DICOM viewer steps through the slices, changes windows, shows thumbnails and the patient tags`, async () => {
      await rowOf(doctor, w.series).getByTestId('attachment-view').click();
      const viewer = doctor.getByTestId('dicom-viewer');
      await viewer.waitFor();
      const first = await shown(viewer, 0, 'own');
      await textOf(viewer.getByTestId('dicom-position'), new RegExp(`^${T(w.lang, 'dicom.position', { n: 1, total: SLICES }).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), 'the position');
      // A key: the next slice, another picture.
      await doctor.keyboard.press('ArrowDown');
      const second = await shown(viewer, 1, 'own');
      if (second === first) throw new Error('the next slice shows the same picture');
      if ((await viewer.getByTestId('dicom-slider').inputValue()) !== '1') throw new Error('the slider did not follow');
      // The wheel over the image: the next one.
      await viewer.getByTestId('dicom-stage').hover();
      await doctor.mouse.wheel(0, 100);
      const third = await shown(viewer, 2, 'own');
      if (third === second) throw new Error('the wheel\'s slice shows the same picture');
      await doctor.keyboard.press('End');
      await shown(viewer, SLICES - 1, 'own');
      await viewer.getByTestId('dicom-prev').click();
      await shown(viewer, SLICES - 2, 'own');
      await doctor.keyboard.press('Home');
      if ((await shown(viewer, 0, 'own')) !== first) throw new Error('the first slice looks different when shown again');
      checks.slices = [first, second, third];

      // Windows: bone, then brain; the picture changes, the values are said.
      await viewer.getByTestId('dicom-window-bone').click();
      const bone = await shown(viewer, 0, 'bone');
      if ((await viewer.getByTestId('dicom-window-bone').getAttribute('aria-pressed')) !== 'true') throw new Error('the bone window is not marked chosen');
      await textOf(viewer.getByTestId('dicom-window-values'), T(w.lang, 'dicom.window_values', { center: 400, width: 1800 }), 'the bone window\'s values');
      await viewer.getByTestId('dicom-window-brain').click();
      const brain = await shown(viewer, 0, 'brain');
      if (brain === bone) throw new Error('the brain window shows the same picture as the bone window');
      if (brain === first) throw new Error('the brain window shows the file\'s own picture');
      // A custom window: no width is refused in the viewer, a centre and width are taken.
      await viewer.getByTestId('dicom-custom-width').fill('0');
      await viewer.getByTestId('dicom-window-custom').click();
      await textOf(viewer.getByTestId('dicom-custom-error'), T(w.lang, 'dicom.custom_invalid'), 'the custom window refused');
      await viewer.getByTestId('dicom-custom-center').fill('600');
      await viewer.getByTestId('dicom-custom-width').fill('1400');
      await viewer.getByTestId('dicom-window-custom').click();
      const custom = await shown(viewer, 0, 'custom');
      if (custom === brain) throw new Error('the custom window shows the brain window\'s picture');
      if (await viewer.getByTestId('dicom-custom-error').count()) throw new Error('the refusal stays after a good custom window');
      checks.windows = { bone, brain, custom };

      // Thumbnails of every slice (four: all in view), each its own picture.
      const thumbs = viewer.getByTestId('dicom-thumb');
      await until('the thumbnails', async () => {
        const ready = await thumbs.evaluateAll((els) => els.map((e) => e.getAttribute('data-ready') === 'true' && /** @type {HTMLImageElement} */ (e).naturalWidth > 0));
        return ready.length === SLICES && ready.every(Boolean);
      });
      const thumbPixels = new Set(await Promise.all([...Array(SLICES).keys()].map((i) => pixels(thumbs.nth(i)))));
      if (thumbPixels.size < 2) throw new Error('the thumbnails all look the same');
      // A thumbnail shows its slice.
      await thumbs.nth(2).click();
      await shown(viewer, 2, 'custom');

      // The patient tags: hidden until asked for.
      if (await viewer.getByTestId('dicom-tags').isVisible()) throw new Error('the patient tags show unasked');
      await viewer.getByTestId('dicom-tags-toggle').click();
      await textOf(viewer.getByTestId('dicom-tag-patient_name'), DICOM_PATIENT, 'the patient name the DICOM file carries');
      await textOf(viewer.getByTestId('dicom-tag-patient_birth_date'), '1958-04-02', 'the date of birth');
      await textOf(viewer.getByTestId('dicom-tag-patient_sex'), T(w.lang, 'sex.male'), 'the sex in words');
      const src = await viewer.getByTestId('dicom-image').getAttribute('src') ?? '';
      checks.imageUrl = src.slice(0, 5);
      // The viewer as the user sees it (the page under it is longer than the window).
      await doctor.screenshot({ path: join(SCREENS, `attachments-viewer-${L}.png`) });
      await viewer.getByTestId('dicom-close').click();
      await viewer.waitFor({ state: 'detached' });
    });

    await s.step(`${L}: the specialist, once it is accepted, sees the attachments`, async () => {
      await api.call(tok.coordinator, 'POST', `/v1/consultations/${id}/accept`, {
        // Each walk its own hour: one specialist, no overlap.
        specialists: [cardiologist.id], start: new Date(Date.now() + (1 + 2 * WALKS.indexOf(w)) * 3600e3).toISOString(), duration_minutes: 30,
      });
      await signIn(specialist, origin, 'cardiologist');
      const detail = await openDetail(specialist, id);
      const section = detail.getByTestId('attachments');
      await section.waitFor();
      const names = await section.getByTestId('attachment-name').evaluateAll((els) => els.map((e) => e.textContent));
      if (names.join('|') !== [w.pdf, w.series, w.png].join('|')) throw new Error(`the specialist sees ${names}`);
      await textOf(rowOf(specialist, w.series).getByTestId('attachment-dicom'), T(w.lang, 'attachments.dicom_many', { modalities: 'CT', files: SLICES }), 'the series in words');
      await shot(specialist, `attachments-specialist-${L}`);
      checks.specialist = names;
      // The printable report lists the material with each file's whole SHA-256.
      await specialist.goto(`${origin}/#/c/${id}/report`);
      const rows = specialist.getByTestId('report-attachment');
      await until('the report to list the three files', async () => (await rows.count()) === 3);
      const printed = await rows.first().locator('.print-only').textContent();
      if (!/^[0-9a-f]{64}$/.test(printed ?? '')) throw new Error(`the report prints the checksum as ${printed}`);
    });
  }

  await s.step('no uncaught errors on the pages', async () => {
    const errors = pages.flatMap((p) => pageErrors(p));
    if (errors.length) throw new Error(`uncaught page errors: ${errors.join(' | ')}`);
  });
  note('attachments walk done');
});
