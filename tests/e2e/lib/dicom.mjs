// A tiny DICOM writer for the tests' own data (nothing is downloaded): Part 10 files in
// explicit VR little endian (transfer syntax 1.2.840.10008.1.2.1): the 128-byte preamble,
// "DICM", the file meta group (0002) with its group length, then the data set, elements in
// ascending tag order, every value of even length (UIDs padded with NUL, text with a space).
// ctSeries() makes a small CT series whose slices differ, and whose pixels fall on both sides
// of the usual windows, so a step and a window change both change the picture.

/** VRs written with a 2-byte reserved field and a 4-byte length (PS3.5 7.1.2). */
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OW', 'SQ', 'UC', 'UR', 'UT', 'UN']);
/** VRs padded with NUL rather than a space. */
const NUL_PADDED = new Set(['UI', 'OB', 'UN']);

export const EXPLICIT_VR_LE = '1.2.840.10008.1.2.1';
export const CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2';

/**
 * One element: [group, element, VR, value]; the value a string (text, UIDs), a number (US,
 * UL), or bytes (OB, OW).
 * @typedef {[number, number, string, string | number | Uint8Array]} Element
 */

/** @param {Element} el @returns {Buffer} */
function encode([group, element, vr, value]) {
  let body;
  if (vr === 'US') {
    body = Buffer.alloc(2);
    body.writeUInt16LE(Number(value));
  } else if (vr === 'UL') {
    body = Buffer.alloc(4);
    body.writeUInt32LE(Number(value));
  } else if (value instanceof Uint8Array) {
    body = Buffer.from(value);
  } else {
    body = Buffer.from(String(value), 'utf8');
  }
  if (body.length % 2) body = Buffer.concat([body, Buffer.from([NUL_PADDED.has(vr) ? 0 : 0x20])]);
  const long = LONG_VRS.has(vr);
  const head = Buffer.alloc(long ? 12 : 8);
  head.writeUInt16LE(group, 0);
  head.writeUInt16LE(element, 2);
  head.write(vr, 4, 'latin1');
  if (long) head.writeUInt32LE(body.length, 8); // bytes 6–7: reserved, zero
  else head.writeUInt16LE(body.length, 6);
  return Buffer.concat([head, body]);
}

/** @param {Element[]} elements in any order: written in ascending tag order */
function dataSet(elements) {
  const sorted = [...elements].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return Buffer.concat(sorted.map(encode));
}

/**
 * A whole DICOM file (Part 10), explicit VR little endian.
 * @param {{ sopClass?: string, sopInstance: string, elements: Element[] }} file elements: the data
 *   set after the meta group, SOP class and instance UIDs (0008,0016/0018) added here
 * @returns {Buffer}
 */
export function dicomFile({ sopClass = CT_IMAGE_STORAGE, sopInstance, elements }) {
  const meta = dataSet([
    [0x0002, 0x0001, 'OB', Uint8Array.from([0, 1])],
    [0x0002, 0x0002, 'UI', sopClass],
    [0x0002, 0x0003, 'UI', sopInstance],
    [0x0002, 0x0010, 'UI', EXPLICIT_VR_LE],
    [0x0002, 0x0012, 'UI', '1.2.826.0.1.3680043.10.1466.1'],
  ]);
  const length = encode([0x0002, 0x0000, 'UL', meta.length]);
  const body = dataSet([[0x0008, 0x0016, 'UI', sopClass], [0x0008, 0x0018, 'UI', sopInstance], ...elements]);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM', 'latin1'), length, meta, body]);
}

/**
 * A CT series of `slices` images, `size`×`size`, 12 bits stored in 16, unsigned, MONOCHROME2.
 * Each slice: air (0) around a body (60: grey in the brain window, near black in the bone one), a
 * bright bone ring whose radius grows slice by slice, a ramp (0–1260) across the top, and a
 * marker square that moves with the slice. Pixel values are raw (no rescale), so a window's
 * centre and width apply to them directly.
 * @param {{ slices?: number, size?: number, patientName?: string, patientId?: string }} [opts]
 * @returns {{ name: string, bytes: Buffer }[]}
 */
export function ctSeries({ slices = 4, size = 64, patientName = 'WANG^XIAOMING=王^小明', patientId = 'ZY-20260042' } = {}) {
  const root = `1.2.826.0.1.3680043.10.1466.${Date.now()}`;
  const files = [];
  for (let k = 0; k < slices; k++) {
    const px = new Uint16Array(size * size);
    const c = (size - 1) / 2;
    const body = size * 0.42;
    const ring = size * (0.12 + 0.05 * k);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const r = Math.hypot(x - c, y - c);
        let v = 0;
        if (r <= body) v = 60;
        if (Math.abs(r - ring) < 1.6) v = 1200 + 60 * k;
        if (y >= 2 && y < 6) v = Math.round((x / (size - 1)) * 1260);
        const mx = 4 + k * 6;
        if (x >= mx && x < mx + 5 && y >= size - 10 && y < size - 5) v = 900;
        px[y * size + x] = v;
      }
    }
    const bytes = dicomFile({
      sopInstance: `${root}.${k + 1}`,
      elements: [
        // UTF-8 text (the ideographic part of the name).
        [0x0008, 0x0005, 'CS', 'ISO_IR 192'],
        [0x0008, 0x0020, 'DA', '20260301'],
        [0x0008, 0x0060, 'CS', 'CT'],
        [0x0008, 0x0080, 'LO', 'East County Hospital'],
        [0x0008, 0x1030, 'LO', 'CT CHEST'],
        [0x0008, 0x103e, 'LO', 'AXIAL 5MM'],
        [0x0010, 0x0010, 'PN', patientName],
        [0x0010, 0x0020, 'LO', patientId],
        [0x0010, 0x0030, 'DA', '19580402'],
        [0x0010, 0x0040, 'CS', 'M'],
        [0x0020, 0x000d, 'UI', `${root}.100`],
        [0x0020, 0x000e, 'UI', `${root}.200`],
        [0x0020, 0x0013, 'IS', String(k + 1)],
        [0x0028, 0x0002, 'US', 1],
        [0x0028, 0x0004, 'CS', 'MONOCHROME2'],
        [0x0028, 0x0010, 'US', size],
        [0x0028, 0x0011, 'US', size],
        [0x0028, 0x0100, 'US', 16],
        [0x0028, 0x0101, 'US', 12],
        [0x0028, 0x0102, 'US', 11],
        [0x0028, 0x0103, 'US', 0],
        [0x7fe0, 0x0010, 'OW', new Uint8Array(px.buffer)],
      ],
    });
    // Stored out of order on purpose: the viewer shows them by instance number.
    files.push({ name: `series/IM${String(slices - k).padStart(4, '0')}`, bytes });
  }
  return files;
}
