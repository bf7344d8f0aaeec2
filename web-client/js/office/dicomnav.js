// The DICOM viewer's rules (docs/api.md §Attachments, "Images"; the viewer is dicomview.js):
// where a step, a key or a turn of the wheel leads among the images and their frames, which
// window an image is rendered at and the address that asks for it, and a small store that keeps
// only the last few rendered images alive. Pure data and logic: no DOM, no i18n, no requests
// (web-client/test/dicomnav.test.mjs).

/**
 * One image of the index (GET …/images), in viewing order.
 * @typedef {{ file: number, frames: number, rows: number, columns: number, modality?: string | null,
 *   instance?: number | null, window?: { center: number, width: number } | null }} DicomImage
 * A window preset as the index lists it.
 * @typedef {{ name: string, center: number, width: number }} Preset
 * Where the viewer stands: image `image` (0-based, viewing order), its frame `frame`.
 * @typedef {{ image: number, frame: number }} Position
 * @typedef {'own' | 'lung' | 'soft_tissue' | 'bone' | 'brain' | 'custom'} WindowName
 * The window chosen: a preset by name, the file's own, or a custom centre and width.
 * @typedef {{ name: WindowName, center?: number, width?: number }} WindowChoice
 * A move: a number of steps (±), or to the first or last position.
 * @typedef {number | 'first' | 'last'} Move
 */

/** The window buttons, in their order: the file's own first (no window asked for). */
export const WINDOWS = /** @type {const} */ (['own', 'lung', 'soft_tissue', 'bone', 'brain', 'custom']);
/** How many positions PageUp / PageDown skip. */
export const PAGE_STEP = 10;
/** Wheel pixels to one step (a mouse's notch is about 100 in Chromium). */
export const WHEEL_PIXELS = 100;
/** How many thumbnails the strip holds at most (the first images; each loads when scrolled to). */
export const MAX_THUMBS = 48;

/** How many frames image `i` shows (at least one). @param {DicomImage[]} images @param {number} i */
const framesOf = (images, i) => Math.max(1, Math.floor(Number(images[i]?.frames) || 1));

/** Every frame of every image, in order: the slider's length. @param {DicomImage[]} images */
export function total(images) {
  let n = 0;
  for (let i = 0; i < images.length; i++) n += framesOf(images, i);
  return n;
}

/** The slider's index of `pos`. @param {DicomImage[]} images @param {Position} pos */
export function indexOf(images, pos) {
  let n = 0;
  for (let i = 0; i < pos.image && i < images.length; i++) n += framesOf(images, i);
  return n + pos.frame;
}

/**
 * The position at slider index `index`, clamped to the first and last (an empty series stays at
 * 0/0).
 * @param {DicomImage[]} images @param {number} index
 * @returns {Position}
 */
export function positionAt(images, index) {
  let rest = Math.max(0, Math.min(Math.floor(index) || 0, total(images) - 1));
  for (let i = 0; i < images.length; i++) {
    const f = framesOf(images, i);
    if (rest < f) return { image: i, frame: rest };
    rest -= f;
  }
  return { image: 0, frame: 0 };
}

/**
 * Where `move` leads from `pos`: through the frames of a multi-frame image, then on to the next
 * image; it stops at either end rather than wrapping (a radiologist scrolling past the last slice
 * expects to stay there).
 * @param {DicomImage[]} images @param {Position} pos @param {Move} move
 * @returns {Position}
 */
export function moveFrom(images, pos, move) {
  if (move === 'first') return positionAt(images, 0);
  if (move === 'last') return positionAt(images, total(images) - 1);
  return positionAt(images, indexOf(images, pos) + move);
}

/** Whether two positions are the same. @param {Position} a @param {Position} b */
export const samePosition = (a, b) => a.image === b.image && a.frame === b.frame;

/**
 * The move a key asks for, or null for a key the viewer leaves alone. Down and right go on
 * (deeper into the series), up and left back.
 * @param {string} key KeyboardEvent.key
 * @returns {Move | null}
 */
export function keyMove(key) {
  switch (key) {
    case 'ArrowDown': case 'ArrowRight': return 1;
    case 'ArrowUp': case 'ArrowLeft': return -1;
    case 'PageDown': return PAGE_STEP;
    case 'PageUp': return -PAGE_STEP;
    case 'Home': return 'first';
    case 'End': return 'last';
    default: return null;
  }
}

/**
 * Turns of the wheel as steps. `carry` is what the last turns left over (pixels, signed). A line
 * or page turn (deltaMode 1, 2) is one step. Pixels count one step per WHEEL_PIXELS, and a turn
 * from rest (or the other way) moves at once: a mouse's notch is one step, a trackpad's stream of
 * small turns one step per WHEEL_PIXELS.
 * @param {number} carry @param {number} deltaY @param {number} deltaMode
 * @returns {{ steps: number, carry: number }}
 */
export function wheelSteps(carry, deltaY, deltaMode) {
  if (!Number.isFinite(deltaY) || deltaY === 0) return { steps: 0, carry };
  const dir = Math.sign(deltaY);
  if (deltaMode !== 0) return { steps: dir, carry: 0 };
  const from = Math.sign(carry) === dir ? carry : dir * (WHEEL_PIXELS - 1);
  const acc = from + deltaY;
  const steps = Math.trunc(acc / WHEEL_PIXELS);
  return { steps, carry: acc - steps * WHEEL_PIXELS };
}

/**
 * A custom window from what was typed: a centre (any number) and a width above zero, as the
 * server takes them; null when either does not do.
 * @param {string} center @param {string} width
 * @returns {WindowChoice | null}
 */
export function customWindow(center, width) {
  if (center.trim() === '' || width.trim() === '') return null;
  const c = Number(center);
  const w = Number(width);
  if (!Number.isFinite(c) || !Number.isFinite(w) || w <= 0) return null;
  return { name: 'custom', center: c, width: w };
}

/**
 * The query parameters of a rendered image at `choice`: none for the file's own window.
 * @param {WindowChoice} choice
 * @returns {Array<[string, string]>}
 */
export function windowParams(choice) {
  if (choice.name === 'own') return [];
  if (choice.name === 'custom') return [['window', 'custom'], ['center', String(choice.center)], ['width', String(choice.width)]];
  return [['window', choice.name]];
}

/**
 * The address of one rendered image: `base` is the attachment's images path
 * (attachfacts.imagesPath). Frame 0 and the file's own window are left out (the server's
 * defaults), so one picture has one address: the store's key.
 * @param {string} base @param {Position} pos @param {WindowChoice} choice
 * @param {boolean} [thumb] at most 128 pixels
 */
export function imageUrl(base, pos, choice, thumb = false) {
  /** @type {Array<[string, string]>} */
  const q = [];
  if (pos.frame > 0) q.push(['frame', String(pos.frame)]);
  q.push(...windowParams(choice));
  if (thumb) q.push(['thumb', 'true']);
  const query = q.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
  return `${base}/${pos.image}${query ? `?${query}` : ''}`;
}

/** The address of image `n`'s patient tags. @param {string} base @param {number} n */
export const tagsUrl = (base, n) => `${base}/${n}/tags`;

/** The centre and width a choice stands for (the file's own: the image's, when it has one); null when unknown. @param {WindowChoice} choice @param {Preset[]} presets @param {DicomImage | undefined} image */
export function windowValues(choice, presets, image) {
  if (choice.name === 'custom') return choice.center !== undefined && choice.width !== undefined ? { center: choice.center, width: choice.width } : null;
  if (choice.name === 'own') return image?.window ?? null;
  const p = presets.find((x) => x.name === choice.name);
  return p ? { center: p.center, width: p.width } : null;
}

/**
 * The positions worth fetching before they are asked for: the next, then the previous (stepping
 * on is the usual next move).
 * @param {DicomImage[]} images @param {Position} pos
 * @returns {Position[]}
 */
export function neighbours(images, pos) {
  const here = indexOf(images, pos);
  const last = total(images) - 1;
  return [here + 1, here - 1].filter((i) => i >= 0 && i <= last).map((i) => positionAt(images, i));
}

/**
 * A small store of rendered images by address, the least recently used dropped first: `drop` is
 * told of each one dropped (to revoke its object URL), never of the one `keep` names.
 * @template V
 */
export class Recent {
  /** @param {number} size @param {(value: V, key: string) => void} drop @param {() => string | null} [keep] */
  constructor(size, drop, keep = () => null) {
    this.size = size;
    this.drop = drop;
    this.keep = keep;
    /** @type {Map<string, V>} */
    this.map = new Map();
  }

  /** The value of `key`, now the most recently used; undefined when not held. @param {string} key */
  get(key) {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  /** @param {string} key */
  has(key) { return this.map.has(key); }

  /** Holds `value` under `key` and drops the oldest beyond the size. @param {string} key @param {V} value */
  set(key, value) {
    const old = this.map.get(key);
    this.map.delete(key);
    this.map.set(key, value);
    if (old !== undefined && old !== value) this.drop(old, key);
    const keep = this.keep();
    for (const [k, v] of this.map) {
      if (this.map.size <= this.size) break;
      if (k === keep || k === key) continue;
      this.map.delete(k);
      this.drop(v, k);
    }
  }

  /** Drops everything (the viewer closes). */
  clear() {
    const all = [...this.map];
    this.map.clear();
    for (const [k, v] of all) this.drop(v, k);
  }
}

/**
 * A DICOM person name (PN) for people: its components ('^') as words, its groups
 * (alphabetic=ideographic=phonetic) side by side: 'WANG^XIAOMING=王^小明' reads 'WANG XIAOMING / 王小明'
 * (an ideographic name is written without spaces).
 * @param {string | null | undefined} pn
 */
export function personName(pn) {
  if (!pn) return '';
  return pn.split('=')
    .map((group, i) => group.split('^').map((p) => p.trim()).filter((p) => p).join(i === 0 ? ' ' : ''))
    .filter((g) => g)
    .join(' / ');
}

/** A DICOM date (DA, 'YYYYMMDD') as 'YYYY-MM-DD'; anything else as it came. @param {string | null | undefined} da */
export function dicomDate(da) {
  if (!da) return '';
  const m = /^(\d{4})\.?(\d{2})\.?(\d{2})$/.exec(da.trim());
  return m ? `${m[1]}-${m[2]}-${m[3]}` : da;
}

/** A DICOM sex (CS: M, F, O) as the catalogue's sex words; null when absent. @param {string | null | undefined} cs */
export function sexOf(cs) {
  const v = (cs ?? '').trim().toUpperCase();
  if (!v) return null;
  return v === 'M' ? 'male' : v === 'F' ? 'female' : 'unknown';
}
