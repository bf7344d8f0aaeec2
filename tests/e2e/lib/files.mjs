// Files the tests make themselves (nothing is downloaded): a zip of stored entries (no
// compression) with their CRC-32, a one-page PDF of text, a PDF of pages that look different
// (a viewer's page told by its pixels), a PNG, and a program's first bytes under any name.
// Small and exact: what the server checks is their content.

import { createHash } from 'node:crypto';
import { deflateSync } from 'node:zlib';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3), as zip and PNG use it. @param {Uint8Array} bytes */
export function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The SHA-256 of bytes, in hex (what the server reports of an upload). @param {Uint8Array} bytes */
export const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/**
 * A zip of `entries`, each stored as is (method 0), names in UTF-8 (flag bit 11).
 * @param {{ name: string, bytes: Uint8Array }[]} entries
 * @returns {Buffer}
 */
export function zip(entries) {
  const locals = [];
  const centrals = [];
  let offset = 0;
  // 2026-03-01 12:00:00, MS-DOS format.
  const time = (12 << 11) | (0 << 5) | 0;
  const date = ((2026 - 1980) << 9) | (3 << 5) | 1;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const data = Buffer.from(e.bytes);
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed: 2.0
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(0, 8); // stored
    local.writeUInt16LE(time, 10);
    local.writeUInt16LE(date, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4); // made by: 2.0
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(0, 10);
    central.writeUInt16LE(time, 12);
    central.writeUInt16LE(date, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(name.length, 28);
    // extra, comment, disk, internal attributes: 0; external attributes 0; then the offset.
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, data);
    centrals.push(central, name);
    offset += local.length + name.length + data.length;
  }
  const dir = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(dir.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, dir, end]);
}

/**
 * A one-page PDF that says `lines` (ASCII, Helvetica), with a correct cross-reference table.
 * @param {string[]} lines
 * @returns {Buffer}
 */
export function pdf(lines) {
  const esc = (/** @type {string} */ s) => s.replace(/[\\()]/g, (m) => `\\${m}`);
  const text = lines.map((l, i) => `BT /F1 ${i ? 14 : 22} Tf 72 ${770 - i * 28} Td (${esc(l)}) Tj ET`).join('\n');
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>',
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
    `<< /Length ${Buffer.byteLength(text, 'latin1')} >>\nstream\n${text}\nendstream`,
  ];
  let out = '%PDF-1.4\n';
  const offsets = [];
  objects.forEach((o, i) => {
    offsets.push(Buffer.byteLength(out, 'latin1'));
    out += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = Buffer.byteLength(out, 'latin1');
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const o of offsets) out += `${String(o).padStart(10, '0')} 00000 n \n`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}

/**
 * A page of pagedPdf(): a filled rectangle (fractions of the page from its top left, as a
 * viewer's canvas is read) in an RGB colour (0–255), and a line of text above it.
 * @typedef {{ box: { x: number, y: number, width: number, height: number }, rgb: [number, number, number], text: string }} PdfPage
 */

/** The A4 pages of pagedPdf(), in points. */
export const PDF_PAGE = { width: 595, height: 842 };

/**
 * Three pages that look different: a big rectangle of its own colour in its own part of each
 * page (top left red, the middle right green, the bottom blue), so that a viewer's page is told
 * by the colour at a known place.
 * @type {PdfPage[]}
 */
export const PDF_PAGES = [
  { box: { x: 0.1, y: 0.1, width: 0.5, height: 0.3 }, rgb: [220, 30, 30], text: 'Page 1: ECG report' },
  { box: { x: 0.4, y: 0.4, width: 0.5, height: 0.3 }, rgb: [20, 160, 60], text: 'Page 2: rhythm strip' },
  { box: { x: 0.1, y: 0.65, width: 0.8, height: 0.25 }, rgb: [30, 60, 220], text: 'Page 3: conclusion' },
];

/**
 * A PDF of several A4 pages, each a filled rectangle and a line of text (Helvetica), with a
 * correct cross-reference table.
 * @param {PdfPage[]} [pages]
 * @returns {Buffer}
 */
export function pagedPdf(pages = PDF_PAGES) {
  const esc = (/** @type {string} */ s) => s.replace(/[\\()]/g, (m) => `\\${m}`);
  const { width: W, height: H } = PDF_PAGE;
  const n = pages.length;
  // 1 catalog, 2 pages, 3 font; then each page and its contents: 4 + 2i and 5 + 2i.
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    `<< /Type /Pages /Kids [${pages.map((_, i) => `${4 + 2 * i} 0 R`).join(' ')}] /Count ${n} >>`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ];
  pages.forEach((p, i) => {
    const { x, y, width, height } = p.box;
    // PDF's y goes up from the bottom; the box's from the top.
    const rect = [x * W, (1 - y - height) * H, width * W, height * H].map((v) => v.toFixed(2)).join(' ');
    const [r, g, b] = p.rgb.map((c) => (c / 255).toFixed(4));
    const text = `${r} ${g} ${b} rg ${rect} re f\n0 g BT /F1 24 Tf 40 ${H - 48} Td (${esc(p.text)}) Tj ET`;
    objects.push(
      `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 ${W} ${H}] /Resources << /Font << /F1 3 0 R >> >> /Contents ${5 + 2 * i} 0 R >>`,
      `<< /Length ${Buffer.byteLength(text, 'latin1')} >>\nstream\n${text}\nendstream`,
    );
  });
  let out = '%PDF-1.4\n';
  const offsets = [];
  objects.forEach((o, i) => {
    offsets.push(Buffer.byteLength(out, 'latin1'));
    out += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = Buffer.byteLength(out, 'latin1');
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const o of offsets) out += `${String(o).padStart(10, '0')} 00000 n \n`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}

/**
 * Whether an RGB(A) pixel is near a colour (a rendered fill is exact but for its edges).
 * @param {ArrayLike<number>} px @param {ArrayLike<number>} rgb @param {number} [tolerance]
 */
export function near(px, rgb, tolerance = 24) {
  return [0, 1, 2].every((i) => Math.abs(px[i] - rgb[i]) <= tolerance);
}

/**
 * An RGB PNG, `width`×`height`, each pixel from `rgb(x, y)` → [r, g, b].
 * @param {number} width @param {number} height @param {(x: number, y: number) => number[]} rgb
 * @returns {Buffer}
 */
export function png(width, height, rgb) {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 3 + 1)] = 0; // filter: none
    for (let x = 0; x < width; x++) {
      const [r, g, b] = rgb(x, y);
      const at = y * (width * 3 + 1) + 1 + x * 3;
      raw[at] = r;
      raw[at + 1] = g;
      raw[at + 2] = b;
    }
  }
  const chunk = (/** @type {string} */ type, /** @type {Buffer} */ data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** The first bytes of a Windows program (an "MZ" header and its DOS stub's message), whatever it is named. */
export function program() {
  const b = Buffer.alloc(512);
  b.write('MZ', 0, 'latin1');
  b.writeUInt32LE(0x80, 0x3c); // where the PE header would be
  b.write('This program cannot be run in DOS mode.', 0x4e, 'latin1');
  b.write('PE\0\0', 0x80, 'latin1');
  return b;
}
