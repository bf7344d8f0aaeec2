// The case panel's rules (docs/protocol.md §13), as pure functions: where the shared view puts
// the image in a viewport of any size (zoom 1 fits the whole image, the view's centre is the
// image point at the middle), a point of the viewport as a point of the image and back, panning
// and zooming, stepping through a DICOM series, the window asked of the server, the pacing of
// what the panel sends (a drag must not flood the socket's 20 messages a second), and the
// geometry of the marks. No DOM, no i18n, no requests: casepanel.js draws what these return,
// and web-client/test/caseview.test.mjs checks them.

/**
 * What everyone sees (protocol.md §13 `view`).
 * @typedef {Object} CaseView
 * @property {string} attachment
 * @property {number} image a DICOM series' image in viewing order, or a PDF's page (0-based)
 * @property {number} frame
 * @property {WindowName} [window] absent: the file's own
 * @property {number} [center] with window `custom`
 * @property {number} [width] with window `custom`, > 0
 * @property {number} zoom 1–16
 * @property {number} center_x the image point at the middle of the view, 0–1 of its width
 * @property {number} center_y …of its height
 */

/** @typedef {'lung' | 'soft_tissue' | 'bone' | 'brain' | 'custom'} WindowName */
/** A window button: the file's own, or a server preset, or custom. @typedef {'own' | WindowName} WindowChoice */
/** @typedef {{ width: number, height: number }} Size */
/** @typedef {[number, number]} Point */
/** Where the image sits in the viewport: its top left corner and screen pixels per image pixel. @typedef {{ x: number, y: number, scale: number }} Placement */
/** One image of a DICOM attachment's index (GET …/images). @typedef {{ frames?: number, rows?: number, columns?: number }} IndexImage */

export const ZOOM_MIN = 1;
export const ZOOM_MAX = 16;
/** One click of zoom in or out: two clicks double (or halve) the magnification. */
export const ZOOM_STEP = Math.SQRT2;
/** The presenter's view changes go out at most this often while dragging (5 a second). */
export const VIEW_EVERY_MS = 200;
/** A pointer goes out at most this often (10 a second, protocol.md §13). */
export const POINTER_EVERY_MS = 100;
/** A pointer that has not moved for this long fades out. */
export const POINTER_FADE_MS = 3000;
/** A free line has at most this many points (protocol.md §13). */
export const MAX_LINE_POINTS = 256;
/** Wheel pixels to one image (a mouse's notch is about 100 in Chromium). */
export const WHEEL_PIXELS = 100;

/** The window buttons, in order: the file's own first (no window asked for). @type {readonly WindowChoice[]} */
export const WINDOWS = ['own', 'lung', 'soft_tissue', 'bone', 'brain', 'custom'];

/**
 * Everyone's colours: index 0–7 (the server gives each member one for the room's life). Strong
 * hues that stand out on a grey CT and on a white page, the darkest last.
 */
export const PALETTE = ['#ff3b30', '#34c759', '#0a84ff', '#ff9f0a', '#bf5af2', '#00c7be', '#ff2d92', '#ffd60a'];

/** A palette colour for a server colour index (anything out of range wraps). @param {number} index */
export function colorOf(index) {
  const i = Math.floor(Number(index) || 0);
  return PALETTE[((i % PALETTE.length) + PALETTE.length) % PALETTE.length];
}

const clamp = (/** @type {number} */ v, /** @type {number} */ lo, /** @type {number} */ hi) => Math.min(hi, Math.max(lo, v));
/** Rounded for the wire: a view or a point need no more than this (a 4000-pixel image to a tenth of a pixel). */
const round = (/** @type {number} */ v, digits = 5) => Number(v.toFixed(digits));

/** A fresh view of an attachment: the first image, the file's own window, the whole image. @param {string} attachment @returns {CaseView} */
export function firstView(attachment) {
  return { attachment, image: 0, frame: 0, zoom: 1, center_x: 0.5, center_y: 0.5 };
}

/**
 * A view as the wire takes it (the server refuses unknown fields): only the view's own fields,
 * centre and width only with a custom window, numbers in range.
 * @param {CaseView} v
 * @returns {CaseView}
 */
export function cleanView(v) {
  /** @type {CaseView} */
  const out = {
    attachment: String(v.attachment),
    image: Math.max(0, Math.floor(Number(v.image) || 0)),
    frame: Math.max(0, Math.floor(Number(v.frame) || 0)),
    zoom: 1,
    center_x: 0.5,
    center_y: 0.5,
  };
  if (v.window && (WINDOWS).includes(v.window)) {
    if (v.window !== 'custom') out.window = v.window;
    else if (Number.isFinite(v.center) && Number(v.width) > 0) Object.assign(out, { window: 'custom', center: Number(v.center), width: Number(v.width) });
  }
  // In the server's order (the window before the zoom), so that a view read back compares equal.
  const { zoom: _z, center_x: _x, center_y: _y, ...head } = out;
  return {
    ...head,
    zoom: round(clamp(Number(v.zoom) || 1, ZOOM_MIN, ZOOM_MAX), 4),
    center_x: round(clamp(Number(v.center_x ?? 0.5), 0, 1)),
    center_y: round(clamp(Number(v.center_y ?? 0.5), 0, 1)),
  };
}

/** The same picture: marks belong to it (protocol.md §13); zoom, pan and window do not change it. @param {CaseView | null} a @param {CaseView | null} b */
export function samePicture(a, b) {
  return Boolean(a && b && a.attachment === b.attachment && a.image === b.image && a.frame === b.frame);
}

/** Two views that show exactly the same. @param {CaseView | null} a @param {CaseView | null} b */
export function sameView(a, b) {
  if (!a || !b) return a === b;
  const x = cleanView(a);
  const y = cleanView(b);
  return x.attachment === y.attachment && x.image === y.image && x.frame === y.frame && x.window === y.window
    && x.center === y.center && x.width === y.width && x.zoom === y.zoom && x.center_x === y.center_x && x.center_y === y.center_y;
}

// ---- geometry: image ↔ viewport ----

/** Screen pixels per image pixel at zoom 1: the whole image fits. @param {Size} img @param {Size} vp */
export function fitScale(img, vp) {
  if (!(img.width > 0 && img.height > 0 && vp.width > 0 && vp.height > 0)) return 0;
  return Math.min(vp.width / img.width, vp.height / img.height);
}

/**
 * Where the image goes in the viewport for a view: scaled to fit times the zoom, the view's
 * centre point at the viewport's middle. The same view puts the same image point at the middle
 * of every viewport, whatever its size.
 * @param {Pick<CaseView, 'zoom' | 'center_x' | 'center_y'>} view @param {Size} img @param {Size} vp
 * @returns {Placement}
 */
export function place(view, img, vp) {
  const scale = fitScale(img, vp) * clamp(Number(view.zoom) || 1, ZOOM_MIN, ZOOM_MAX);
  return {
    scale,
    x: vp.width / 2 - view.center_x * img.width * scale,
    y: vp.height / 2 - view.center_y * img.height * scale,
  };
}

/**
 * The image point (fractions of its width and height) under a viewport point; `inside` is
 * false off the image (the letterbox around it).
 * @param {Placement} p @param {Size} img @param {number} px @param {number} py
 * @returns {{ x: number, y: number, inside: boolean }}
 */
export function toImage(p, img, px, py) {
  if (!(p.scale > 0)) return { x: 0, y: 0, inside: false };
  const x = (px - p.x) / (img.width * p.scale);
  const y = (py - p.y) / (img.height * p.scale);
  return { x, y, inside: x >= 0 && x <= 1 && y >= 0 && y <= 1 };
}

/** The viewport point of an image point (fractions). @param {Placement} p @param {Size} img @param {number} fx @param {number} fy */
export function toViewport(p, img, fx, fy) {
  return { x: p.x + fx * img.width * p.scale, y: p.y + fy * img.height * p.scale };
}

/**
 * The centre kept where the image still covers the middle of the view: at zoom z the view
 * spans 1/z of the image (in its fitting direction), so the centre stays within half of that
 * from each edge; at zoom 1 it is the middle. The rule uses no viewport size, so every
 * participant's panel agrees with the presenter's.
 * @param {number} zoom @param {number} c
 */
export function clampCenter(zoom, c) {
  const half = 0.5 / clamp(Number(zoom) || 1, ZOOM_MIN, ZOOM_MAX);
  return clamp(c, half, 1 - half);
}

/** The view at another zoom (clamped to 1–16), its centre kept in bounds. @param {CaseView} view @param {number} zoom @returns {CaseView} */
export function withZoom(view, zoom) {
  const z = round(clamp(zoom, ZOOM_MIN, ZOOM_MAX), 4);
  return { ...view, zoom: z, center_x: round(clampCenter(z, view.center_x)), center_y: round(clampCenter(z, view.center_y)) };
}

/**
 * The view zoomed by `factor` about a viewport point: the image point under it stays under
 * it (a wheel or pinch about the cursor). Without a point, about the middle.
 * @param {CaseView} view @param {number} factor @param {Size} img @param {Size} vp @param {Point} [at]
 * @returns {CaseView}
 */
export function zoomBy(view, factor, img, vp, at) {
  const z = round(clamp(view.zoom * factor, ZOOM_MIN, ZOOM_MAX), 4);
  if (!at) return withZoom(view, z);
  const before = place(view, img, vp);
  const f = toImage(before, img, at[0], at[1]);
  const s = fitScale(img, vp) * z;
  if (!(s > 0)) return withZoom(view, z);
  // The point f must stay at `at`: at = vp/2 + (f − c)·size·s, so c = f − (at − vp/2)/(size·s).
  const cx = f.x - (at[0] - vp.width / 2) / (img.width * s);
  const cy = f.y - (at[1] - vp.height / 2) / (img.height * s);
  return withZoom({ ...view, center_x: cx, center_y: cy }, z);
}

/** The view dragged by (dx, dy) screen pixels: the image follows the hand. @param {CaseView} view @param {number} dx @param {number} dy @param {Size} img @param {Size} vp @returns {CaseView} */
export function panBy(view, dx, dy, img, vp) {
  const s = fitScale(img, vp) * view.zoom;
  if (!(s > 0)) return view;
  return {
    ...view,
    center_x: round(clampCenter(view.zoom, view.center_x - dx / (img.width * s))),
    center_y: round(clampCenter(view.zoom, view.center_y - dy / (img.height * s))),
  };
}

// ---- a DICOM series: positions and windows ----

/** How many frames image `i` has (at least one). @param {IndexImage[]} images @param {number} i */
const framesOf = (images, i) => Math.max(1, Math.floor(Number(images[i]?.frames) || 1));

/** Every frame of every image: the positions the presenter steps through. @param {IndexImage[]} images */
export function positions(images) {
  let n = 0;
  for (let i = 0; i < images.length; i++) n += framesOf(images, i);
  return n;
}

/** The 0-based position of (image, frame). @param {IndexImage[]} images @param {{ image: number, frame: number }} at */
export function positionOf(images, at) {
  let n = 0;
  for (let i = 0; i < at.image && i < images.length; i++) n += framesOf(images, i);
  return n + Math.min(at.frame, framesOf(images, at.image) - 1);
}

/**
 * The view `delta` positions on (frames of a multi-frame image first, then the next image),
 * held at the first and last; null when that is where it is already.
 * @param {CaseView} view @param {IndexImage[]} images @param {number} delta
 * @returns {CaseView | null}
 */
export function stepView(view, images, delta) {
  if (!images.length) return null;
  const total = positions(images);
  const from = positionOf(images, view);
  let rest = clamp(from + Math.trunc(delta), 0, total - 1);
  if (rest === from) return null;
  for (let i = 0; i < images.length; i++) {
    const f = framesOf(images, i);
    if (rest < f) return { ...view, image: i, frame: rest };
    rest -= f;
  }
  return null;
}

/**
 * Images to step for a turn of the wheel: pixels add up to WHEEL_PIXELS a step (a trackpad's
 * small deltas too), lines and pages step one each.
 * @param {number} carry pixels left over from the turns before @param {number} deltaY @param {number} deltaMode 0 pixels, 1 lines, 2 pages
 * @returns {{ steps: number, carry: number }}
 */
export function wheelSteps(carry, deltaY, deltaMode) {
  if (deltaMode !== 0) return { steps: Math.sign(deltaY), carry: 0 };
  const sum = carry + deltaY;
  const steps = Math.trunc(sum / WHEEL_PIXELS);
  return { steps, carry: sum - steps * WHEEL_PIXELS };
}

/** The window button a view shows as chosen. @param {CaseView} view @returns {WindowChoice} */
export function windowOf(view) {
  return view.window ?? 'own';
}

/**
 * The view at another window: a preset, the file's own, or custom with its centre and width.
 * @param {CaseView} view @param {WindowChoice} name @param {{ center: number, width: number }} [custom]
 * @returns {CaseView}
 */
export function withWindow(view, name, custom) {
  const { window: _w, center: _c, width: _wd, ...rest } = view;
  if (name === 'own') return rest;
  if (name === 'custom') return custom ? { ...rest, window: 'custom', center: custom.center, width: custom.width } : view;
  return { ...rest, window: name };
}

/** A custom window from the two fields, or null when they are not numbers or the width is not above zero. @param {string} center @param {string} width */
export function customWindow(center, width) {
  if (String(center).trim() === '' || String(width).trim() === '') return null;
  const c = Number(center);
  const w = Number(width);
  return Number.isFinite(c) && Number.isFinite(w) && w > 0 ? { center: c, width: w } : null;
}

/**
 * The address of the PNG the server renders for a view of a DICOM attachment (api.md
 * §Attachments, Images): one address per picture and window, so equal views ask for equal
 * images (and the test compares them).
 * @param {string} consultation @param {CaseView} view
 */
export function imagePath(consultation, view) {
  const q = new URLSearchParams();
  if (view.frame > 0) q.set('frame', String(view.frame));
  if (view.window) q.set('window', view.window);
  if (view.window === 'custom') {
    q.set('center', String(view.center));
    q.set('width', String(view.width));
  }
  const qs = q.toString();
  return `${attachmentPath(consultation, view.attachment)}/images/${view.image}${qs ? `?${qs}` : ''}`;
}

/** An attachment's own address; `inline`: for showing in the page. @param {string} consultation @param {string} attachment */
export function attachmentPath(consultation, attachment, inline = false) {
  return `/v1/consultations/${encodeURIComponent(consultation)}/attachments/${encodeURIComponent(attachment)}${inline ? '?inline=true' : ''}`;
}

// ---- pacing what goes out ----

/**
 * Holds what goes out to at most one every `every` ms: the first change after a quiet spell
 * goes at once (a click feels immediate), later ones wait, and only the latest of them goes
 * (a drag sends where it is, not where it was). The caller owns the clock and the timer:
 * offer() says what to send now and when to call wake() for what waits; flush() sends what
 * waits at once (the end of a drag); drop() forgets it (the pointer left).
 * @template T
 */
export class Pacer {
  /** @param {number} every */
  constructor(every) {
    this.every = every;
    this.last = -Infinity;
    /** @type {{ value: T } | null} */
    this.waiting = null;
  }

  /**
   * A new value at `now`: the value to send now (or null), and when to wake for the one held.
   * @param {T} value @param {number} now
   * @returns {{ send: { value: T } | null, wakeAt: number | null }}
   */
  offer(value, now) {
    if (now - this.last >= this.every) {
      this.waiting = null;
      this.last = now;
      return { send: { value }, wakeAt: null };
    }
    this.waiting = { value };
    return { send: null, wakeAt: this.last + this.every };
  }

  /** The timer fired at `now`: the value held, if its turn has come. @param {number} now @returns {{ value: T } | null} */
  wake(now) {
    if (!this.waiting || now - this.last < this.every) return null;
    const out = this.waiting;
    this.waiting = null;
    this.last = now;
    return out;
  }

  /** What is held, to send now whatever the pace. @param {number} now @returns {{ value: T } | null} */
  flush(now) {
    const out = this.waiting;
    this.waiting = null;
    if (out) this.last = now;
    return out;
  }

  /** Forgets what is held. */
  drop() {
    this.waiting = null;
  }

  /** Whether a value offered at `now` would go at once. @param {number} now */
  ready(now) {
    return now - this.last >= this.every;
  }
}

// ---- marks ----

/**
 * A free line's points as the wire takes them: rounded, without points on top of each other,
 * at most `max` (Ramer–Douglas–Peucker with a growing tolerance keeps the shape's corners).
 * @param {Point[]} points fractions of the image @param {number} [max]
 * @returns {Point[]}
 */
export function simplifyLine(points, max = MAX_LINE_POINTS) {
  /** @type {Point[]} */
  const pts = [];
  for (const [x, y] of points) {
    /** @type {Point} */
    const p = [round(clamp(x, 0, 1), 4), round(clamp(y, 0, 1), 4)];
    const last = pts[pts.length - 1];
    if (!last || last[0] !== p[0] || last[1] !== p[1]) pts.push(p);
  }
  if (pts.length <= max) return pts;
  let tolerance = 0.0005;
  let out = pts;
  while (out.length > max) {
    out = rdp(pts, tolerance);
    tolerance *= 1.6;
  }
  return out;
}

/** Ramer–Douglas–Peucker, iterative (a long line must not overflow the stack). @param {Point[]} pts @param {number} tolerance @returns {Point[]} */
function rdp(pts, tolerance) {
  const keep = new Uint8Array(pts.length);
  keep[0] = 1;
  keep[pts.length - 1] = 1;
  /** @type {[number, number][]} */
  const todo = [[0, pts.length - 1]];
  while (todo.length) {
    const [a, b] = /** @type {[number, number]} */ (todo.pop());
    let worst = -1;
    let far = 0;
    for (let i = a + 1; i < b; i++) {
      const d = distanceToSegment(pts[i], pts[a], pts[b]);
      if (d > far) { far = d; worst = i; }
    }
    if (worst >= 0 && far > tolerance) {
      keep[worst] = 1;
      todo.push([a, worst], [worst, b]);
    }
  }
  return pts.filter((_, i) => keep[i]);
}

/** @param {Point} p @param {Point} a @param {Point} b */
function distanceToSegment(p, a, b) {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const len2 = dx * dx + dy * dy;
  const t = len2 === 0 ? 0 : clamp(((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2, 0, 1);
  return Math.hypot(p[0] - (a[0] + t * dx), p[1] - (a[1] + t * dy));
}

/**
 * The two short strokes of an arrow's head at `to`, in the same units as the points (image
 * pixels), `length` long and 28° off the shaft.
 * @param {Point} from @param {Point} to @param {number} length
 * @returns {[Point, Point]}
 */
export function arrowHead(from, to, length) {
  const angle = Math.atan2(to[1] - from[1], to[0] - from[0]);
  const spread = (28 * Math.PI) / 180;
  /** @param {number} a @returns {Point} */
  const end = (a) => [to[0] - length * Math.cos(a), to[1] - length * Math.sin(a)];
  return [end(angle - spread), end(angle + spread)];
}

/**
 * Whether a mark drawn from `a` to `b` (viewport pixels) is big enough to be meant: a click
 * with a tool in hand must not leave a dot.
 * @param {Point} a @param {Point} b
 */
export function meantMark(a, b) {
  return Math.hypot(b[0] - a[0], b[1] - a[1]) >= 4;
}
