// The DICOM viewer (docs/api.md §Attachments, "Images"): a series (a file, or a zipped series)
// rendered by the server, one image at a time. A slider, the wheel over the image and the arrow
// keys step through the images (and the frames of a multi-frame one); window buttons render it
// at the file's own window, a preset (lung, soft tissue, bone, brain) or a custom centre and
// width; a strip of thumbnails for the first images, each fetched when scrolled into view; and,
// on demand only, the patient tags the file carries. The rules are dicomnav.js.
//
// Images are fetched with the session's token and shown from memory (transfer.js); only the last
// few are kept (the one shown and its neighbours, fetched ahead), and everything is released when
// the viewer closes.
import { api } from '../api.js';
import { errorBox, h } from '../dom.js';
import { label, t } from '../i18n.js';
import { imagesPath } from './attachfacts.js';
import {
  MAX_THUMBS, Recent, WINDOWS, customWindow, dicomDate, imageUrl, indexOf, keyMove, moveFrom, neighbours, personName, positionAt,
  samePosition, sexOf, tagsUrl, total, wheelSteps, windowValues,
} from './dicomnav.js';
import { fetchBlob, showable } from './transfer.js';
import { closeButton, openViewer } from './viewer.js';

/** @typedef {import('./attachfacts.js').Attachment} Attachment */
/** @typedef {import('./dicomnav.js').DicomImage} DicomImage */
/** @typedef {import('./dicomnav.js').Preset} Preset */
/** @typedef {import('./dicomnav.js').Position} Position */
/** @typedef {import('./dicomnav.js').WindowChoice} WindowChoice */
/** @typedef {import('./dicomnav.js').Move} Move */
/** @typedef {import('./transfer.js').Shown} Shown */
/**
 * The patient-identifying tags of one file (GET …/images/{n}/tags).
 * @typedef {Record<'patient_name' | 'patient_id' | 'patient_birth_date' | 'patient_sex' | 'study_date'
 *   | 'study_description' | 'series_description' | 'institution', string | null>} Tags
 */

/** Rendered images kept: the one shown, the next and previous fetched ahead, a few just left. */
const KEEP = 6;
/** The tags, in the order shown. */
const TAG_ORDER = /** @type {const} */ (['patient_name', 'patient_id', 'patient_birth_date', 'patient_sex', 'study_date', 'study_description', 'series_description', 'institution']);

/**
 * Opens the viewer for a DICOM attachment of consultation `c`.
 * @param {{ id: string }} c @param {Attachment} a @param {HTMLElement | null} opener
 */
export function openDicomViewer(c, a, opener) {
  const base = imagesPath(c.id, a.id);
  const stop = new AbortController();
  /** @type {DicomImage[]} */
  let images = [];
  /** @type {Preset[]} */
  let presets = [];
  /** @type {Position} */
  let pos = { image: 0, frame: 0 };
  /** @type {WindowChoice} */
  let choice = { name: 'own' };
  let wheelCarry = 0;
  /** @type {string | null} the address of the picture in the <img> */
  let shownKey = null;
  /** @type {Recent<Shown>} */
  const store = new Recent(KEEP, (s) => s.release(), () => shownKey);
  /** @type {Map<string, Promise<Shown>>} pictures on their way, by address */
  const coming = new Map();
  /** @type {AbortController | null} the fetch of the picture asked for last (stopped when the user moves on) */
  let current = null;
  /** @type {Shown[]} the thumbnails, released with the viewer */
  const thumbsShown = [];
  /** @type {Map<number, Promise<Tags>>} */
  const tagsOf = new Map();
  /** @type {IntersectionObserver | null} */
  let watcher = null;

  const img = h('img', { class: 'dicom-image', testid: 'dicom-image', alt: a.name, 'data-ready': 'false' });
  const loading = h('p', { class: 'dicom-loading', testid: 'dicom-loading' }, t('common.loading'));
  const stage = h('div', { class: 'dicom-stage', testid: 'dicom-stage', tabindex: '0', 'aria-label': t('dicom.stage') }, img, loading);
  const problem = h('div', { class: 'dicom-problem' });
  const where = h('span', { class: 'grow', testid: 'dicom-position', 'aria-live': 'polite' });
  const values = h('span', { class: 'small muted', testid: 'dicom-window-values' });
  const slider = h('input', { type: 'range', min: '0', max: '0', step: '1', value: '0', class: 'dicom-slider', testid: 'dicom-slider', 'aria-label': t('dicom.slider') });
  const prev = h('button', { type: 'button', class: 'ghost small', testid: 'dicom-prev', onclick: () => go(-1) }, t('dicom.prev'));
  const next = h('button', { type: 'button', class: 'ghost small', testid: 'dicom-next', onclick: () => go(1) }, t('dicom.next'));
  const windowButtons = WINDOWS.filter((n) => n !== 'custom').map((name) => h('button', {
    type: 'button', class: 'ghost small', testid: `dicom-window-${name}`, 'data-window': name, 'aria-pressed': String(name === 'own'),
    onclick: () => choose({ name }),
  }, t(`dicom.window.${name}`)));
  const center = h('input', { type: 'number', step: 'any', testid: 'dicom-custom-center', 'aria-label': t('dicom.center') });
  const width = h('input', { type: 'number', step: 'any', min: '0', testid: 'dicom-custom-width', 'aria-label': t('dicom.width') });
  const customMessage = h('span', { class: 'small' });
  const customApply = h('button', { type: 'submit', class: 'ghost small', testid: 'dicom-window-custom', 'data-window': 'custom', 'aria-pressed': 'false' }, t('dicom.window.custom'));
  const custom = h('form', { class: 'dicom-custom', testid: 'dicom-custom-form' },
    h('label', {}, t('dicom.center'), ' ', center), h('label', {}, t('dicom.width'), ' ', width), customApply, customMessage);
  const thumbs = h('ol', { class: 'dicom-thumbs', testid: 'dicom-thumbs', 'aria-label': t('dicom.thumbs') });
  const tagsPanel = h('div', { class: 'dicom-tags', testid: 'dicom-tags', hidden: true });
  const tagsToggle = h('button', {
    type: 'button', class: 'ghost small', testid: 'dicom-tags-toggle', 'aria-expanded': 'false',
    onclick: () => {
      tagsPanel.hidden = !tagsPanel.hidden;
      tagsToggle.setAttribute('aria-expanded', String(!tagsPanel.hidden));
      if (!tagsPanel.hidden) {
        showTags();
        // Under the image on a narrow screen: brought into view, or the click would seem to do nothing.
        tagsPanel.scrollIntoView({ block: 'nearest' });
      }
    },
  }, t('dicom.tags'));

  const dialog = h('dialog', { class: 'dialog dicom-dialog', testid: 'dicom-viewer', 'data-id': a.id, 'aria-labelledby': 'dicom-title' });
  const close = openViewer(dialog, opener, () => {
    stop.abort();
    current?.abort();
    watcher?.disconnect();
    shownKey = null;
    store.clear();
    for (const s of thumbsShown.splice(0)) s.release();
  });
  dialog.append(
    h('div', { class: 'toolbar' }, h('h2', { class: 'grow', id: 'dicom-title' }, a.name), tagsToggle, closeButton('dicom-close', close)),
    h('div', { class: 'dicom-windows', role: 'group', 'aria-label': t('dicom.windows') }, windowButtons, custom),
    values,
    problem,
    // The tags beside the image, not under it: the image stays in view while they are read.
    h('div', { class: 'dicom-main' }, stage, tagsPanel),
    h('div', { class: 'dicom-nav' }, prev, slider, next),
    h('div', { class: 'toolbar dicom-where' }, where, h('span', { class: 'small muted' }, t('dicom.keys_hint'))),
    thumbs);

  /** The picture at `key`, from the store, on its way, or fetched now. @param {string} key @param {AbortSignal} signal @returns {Promise<Shown>} */
  const picture = (key, signal) => {
    const held = store.get(key);
    if (held) return Promise.resolve(held);
    let p = coming.get(key);
    if (!p) {
      p = fetchBlob(key, signal).then(showable).then((s) => {
        coming.delete(key);
        if (stop.signal.aborted) { s.release(); throw new DOMException('closed', 'AbortError'); }
        store.set(key, s);
        return s;
      }, (e) => { coming.delete(key); throw e; });
      coming.set(key, p);
    }
    return p;
  };

  /** Writes where the viewer stands: the slider, the words, the buttons, the thumbnail. */
  const describe = () => {
    const image = images[pos.image];
    const frames = Math.max(1, image?.frames ?? 1);
    slider.value = String(indexOf(images, pos));
    where.textContent = [
      t('dicom.position', { n: pos.image + 1, total: images.length }),
      frames > 1 && t('dicom.frame', { n: pos.frame + 1, total: frames }),
      image?.instance != null && t('dicom.instance', { n: image.instance }),
      image?.modality,
    ].filter(Boolean).join(' · ');
    prev.disabled = indexOf(images, pos) === 0;
    next.disabled = indexOf(images, pos) >= total(images) - 1;
    for (const b of windowButtons) b.setAttribute('aria-pressed', String(b.dataset.window === choice.name));
    customApply.setAttribute('aria-pressed', String(choice.name === 'custom'));
    const v = windowValues(choice, presets, image);
    values.textContent = v ? t('dicom.window_values', { center: v.center, width: v.width }) : t('dicom.window_own_range');
    for (const li of thumbs.children) {
      const b = /** @type {HTMLElement | null} */ (li.firstElementChild);
      if (b) b.setAttribute('aria-current', String(Number(b.dataset.n) === pos.image));
    }
  };

  /** Shows the picture of the current position at the current window; fetches the neighbours ahead. */
  const show = async () => {
    describe();
    const key = imageUrl(base, pos, choice);
    img.dataset.ready = 'false';
    problem.replaceChildren();
    current?.abort();
    const mine = new AbortController();
    current = mine;
    loading.hidden = store.has(key);
    try {
      const s = await picture(key, mine.signal);
      // The user moved on meanwhile: a later call shows theirs.
      if (current !== mine) return;
      shownKey = key;
      img.dataset.key = key;
      img.dataset.image = String(pos.image);
      img.dataset.frame = String(pos.frame);
      img.dataset.window = choice.name;
      img.src = s.url;
    } catch (e) {
      if (current !== mine || stop.signal.aborted) return;
      loading.hidden = true;
      problem.replaceChildren(errorBox(e, 'dicom-error'));
      return;
    }
    for (const p of neighbours(images, pos)) {
      picture(imageUrl(base, p, choice), stop.signal).catch(() => { /* fetched again when asked for */ });
    }
    if (!tagsPanel.hidden) showTags();
  };
  img.addEventListener('load', () => {
    if (img.dataset.key !== shownKey) return;
    loading.hidden = true;
    img.dataset.ready = 'true';
  });

  /** @param {Move} move */
  const go = (move) => {
    const to = moveFrom(images, pos, move);
    if (samePosition(to, pos)) return;
    pos = to;
    show();
  };

  /** @param {WindowChoice} w */
  const choose = (w) => {
    choice = w;
    customMessage.replaceChildren();
    center.removeAttribute('aria-invalid');
    width.removeAttribute('aria-invalid');
    // The custom inputs start from the window last shown.
    const v = windowValues(w, presets, images[pos.image]);
    if (v) { center.value = String(v.center); width.value = String(v.width); }
    show();
  };

  custom.addEventListener('submit', (e) => {
    e.preventDefault();
    const w = customWindow(center.value, width.value);
    if (!w) {
      const bad = Number(width.value) > 0 ? center : width;
      bad.setAttribute('aria-invalid', 'true');
      customMessage.replaceChildren(h('span', { class: 'error', testid: 'dicom-custom-error', 'data-code': 'window_invalid' }, t('dicom.custom_invalid')));
      bad.focus();
      return;
    }
    choose(w);
  });
  slider.addEventListener('input', () => {
    const to = positionAt(images, Number(slider.value));
    if (!samePosition(to, pos)) { pos = to; show(); }
  });
  stage.addEventListener('wheel', (e) => {
    e.preventDefault();
    const r = wheelSteps(wheelCarry, e.deltaY, e.deltaMode);
    wheelCarry = r.carry;
    if (r.steps) go(r.steps);
  }, { passive: false });
  dialog.addEventListener('keydown', (e) => {
    // A field takes its own keys (the slider steps by itself; the numbers are typed).
    if (/** @type {HTMLElement} */ (e.target).closest('input, textarea, select')) return;
    const move = keyMove(e.key);
    if (move === null) return;
    e.preventDefault();
    go(move);
  });

  /** The tags of the image shown, fetched once per image. */
  const showTags = async () => {
    const n = pos.image;
    let p = tagsOf.get(n);
    if (!p) {
      p = /** @type {Promise<Tags>} */ (api('GET', tagsUrl(base, n)));
      tagsOf.set(n, p);
      p.catch(() => tagsOf.delete(n));
    }
    tagsPanel.replaceChildren(h('p', { class: 'muted small' }, t('common.loading')));
    try {
      const tags = await p;
      if (n !== pos.image) return;
      tagsPanel.replaceChildren(
        h('p', { class: 'small muted' }, t('dicom.tags_note')),
        h('dl', { class: 'facts', testid: 'dicom-tags-list', 'data-image': String(n) }, TAG_ORDER.map((k) => [
          h('dt', {}, t(`dicom.tag.${k}`)),
          h('dd', { testid: `dicom-tag-${k}` }, tagText(k, tags[k]) || '—'),
        ])));
    } catch (e) {
      if (n === pos.image) tagsPanel.replaceChildren(errorBox(e, 'dicom-tags-error'));
    }
  };

  /** The thumbnails of the first images, each fetched when it scrolls into view. */
  const buildThumbs = () => {
    const count = Math.min(images.length, MAX_THUMBS);
    if (count < 2) { thumbs.hidden = true; return; }
    watcher = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        const thumb = /** @type {HTMLImageElement} */ (entry.target);
        watcher?.unobserve(thumb);
        const n = Number(thumb.dataset.n);
        fetchBlob(imageUrl(base, { image: n, frame: 0 }, { name: 'own' }, true), stop.signal).then(showable).then((s) => {
          if (stop.signal.aborted) { s.release(); return; }
          thumbsShown.push(s);
          thumb.src = s.url;
          thumb.dataset.ready = 'true';
        }, () => { thumb.dataset.ready = 'failed'; });
      }
    }, { root: thumbs, rootMargin: '0px 200px' });
    for (let n = 0; n < count; n++) {
      const thumb = h('img', { class: 'dicom-thumb', testid: 'dicom-thumb', 'data-n': String(n), 'data-ready': 'false', alt: t('dicom.thumb', { n: n + 1 }) });
      thumbs.append(h('li', {}, h('button', {
        type: 'button', class: 'thumb-button', 'data-n': String(n), 'aria-current': String(n === pos.image), title: t('dicom.thumb', { n: n + 1 }),
        onclick: () => { pos = { image: n, frame: 0 }; show(); },
      }, thumb, h('span', { class: 'small' }, String(n + 1)))));
      watcher.observe(thumb);
    }
  };

  api('GET', base).then((/** @type {{ images: DicomImage[], presets: Preset[] }} */ index) => {
    if (stop.signal.aborted) return;
    images = index.images ?? [];
    presets = index.presets ?? [];
    dialog.dataset.images = String(images.length);
    if (!images.length) {
      loading.hidden = true;
      problem.replaceChildren(h('p', { class: 'muted', testid: 'dicom-empty' }, t('dicom.no_images')));
      return;
    }
    slider.max = String(total(images) - 1);
    slider.disabled = total(images) < 2;
    buildThumbs();
    show();
    stage.focus();
  }, (e) => {
    if (stop.signal.aborted) return;
    loading.hidden = true;
    problem.replaceChildren(errorBox(e, 'dicom-error'));
  });
  return close;
}

/** A tag's value for people. @param {typeof TAG_ORDER[number]} key @param {string | null | undefined} value */
function tagText(key, value) {
  if (!value) return '';
  if (key === 'patient_name') return personName(value);
  if (key === 'patient_birth_date' || key === 'study_date') return dicomDate(value);
  if (key === 'patient_sex') return label('sex', sexOf(value));
  return value;
}
