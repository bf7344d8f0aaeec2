// The case panel in the call (docs/protocol.md §13): the consultation's attachments, and the
// one everyone looks at, each browser fetching it from the server at full resolution — the
// same slice, image or PDF page, zoom, pan and window, everyone's pointer and marks in their
// colour. The presenter steps through a series or a PDF's pages (buttons, wheel, arrow keys),
// sets the window and zoom, and drags to pan; a host shows something (and presents), takes the
// role back, hands it on, or closes the panel. A PDF's page is drawn by each browser (pdf.js)
// at the size its own panel needs for the view's zoom, and from then on is a picture like any
// other. The room's state is state.js's (`case`); the geometry and pacing are caseview.js's;
// the pictures are caseimages.js's. A guest has no access to attachments and gets no panel.
import { api } from '../api.js';
import { errorText, t } from '../i18n.js';
import { clampPage, renderScale } from '../pdfview.js';
import { h } from './dom.js';
import { CaseImages, CasePdfs, pdfPage } from './caseimages.js';
import {
  MAX_LINE_POINTS, POINTER_EVERY_MS, POINTER_FADE_MS, Pacer, VIEW_EVERY_MS, WINDOWS, ZOOM_MAX, ZOOM_MIN, ZOOM_STEP, arrowHead,
  attachmentPath, cleanView, colorOf, customWindow, firstView, fitScale, imagePath, meantMark, panBy, place, positionOf, positions,
  samePicture, sameView, simplifyLine, stepView, toImage, toViewport, wheelSteps, windowOf, withWindow, withZoom, zoomBy,
} from './caseview.js';

/** @typedef {import('./room.js').CallRoom} CallRoom */
/** @typedef {import('./caseview.js').CaseView} CaseView */
/** @typedef {import('./caseview.js').Point} Point */
/** @typedef {import('./caseview.js').Placement} Placement */
/** @typedef {import('./caseview.js').WindowChoice} WindowChoice */
/** @typedef {import('./state.js').CaseMark} CaseMark */
/**
 * An attachment as the consultation lists it (api.md §Attachments).
 * @typedef {{ id: string, name: string, kind: string, size?: number, dicom?: { files: number, frames: number, modalities: string[] } | null }} Attachment
 */
/** A DICOM attachment's image index (GET …/images). @typedef {{ images: import('./caseview.js').IndexImage[], presets?: { name: string, center: number, width: number }[] }} ImageIndex */
/** What a mark tool draws; `pointer` draws nothing (a drag pans, for the presenter). @typedef {'pointer' | 'arrow' | 'circle' | 'line'} Tool */
/** A picture to bring onto the canvas: its address (or name), and what makes it when it is not a file (a PDF's page). @typedef {{ path: string, make?: import('./caseimages.js').Maker }} Wanted */

const SVG = 'http://www.w3.org/2000/svg';
/** A mark's line on the screen, whatever the zoom (px). */
const STROKE_PX = 3;
/** An arrow head's strokes on the screen (px). */
const HEAD_PX = 16;

/** What an attachment's kind shows as in the panel. @param {string} kind @returns {'dicom' | 'image' | 'pdf' | null} */
export function viewKind(kind) {
  if (kind === 'dicom' || kind === 'dicom_zip') return 'dicom';
  if (kind === 'jpeg' || kind === 'png') return 'image';
  if (kind === 'pdf') return 'pdf';
  return null;
}

/** Every text key the panel builds from a value, written out so that the catalogue check finds them. */
const KIND_KEYS = /** @type {Record<string, string>} */ ({
  pdf: 'call.case.kind.pdf', jpeg: 'call.case.kind.jpeg', png: 'call.case.kind.png', dicom: 'call.case.kind.dicom', dicom_zip: 'call.case.kind.dicom_zip',
});
const WINDOW_KEYS = /** @type {Record<WindowChoice, string>} */ ({
  own: 'call.case.window.own', lung: 'call.case.window.lung', soft_tissue: 'call.case.window.soft_tissue',
  bone: 'call.case.window.bone', brain: 'call.case.window.brain', custom: 'call.case.window.custom',
});
const TOOL_KEYS = /** @type {Record<Tool, string>} */ ({
  pointer: 'call.case.tool.pointer', arrow: 'call.case.tool.arrow', circle: 'call.case.tool.circle', line: 'call.case.tool.line',
});

export class CasePanel {
  /** @param {CallRoom} room */
  constructor(room) {
    this.room = room;
    this.images = new CaseImages();
    this.pdfs = new CasePdfs();
    /** Shown on this page (the button, or something shown to everyone). */
    this.open = false;
    /** The user opened it themselves: it stays when the material is closed. */
    this.userOpened = false;
    /** The list of files beside the picture. */
    this.listOpen = true;
    /** @type {string | null} the attachment the panel last opened itself for */
    this.autoFor = null;
    /** @type {string | null} the presenter when the panel last drew (a hand-over to me folds the list) */
    this.lastPresenter = null;
    /** @type {Attachment[] | null} null until known */
    this.attachments = Array.isArray(room.c.attachments) ? room.c.attachments : null;
    /** @type {Promise<void> | null} */
    this.listing = null;
    /** @type {unknown} */
    this.listError = null;
    /** @type {Map<string, Promise<ImageIndex>>} */
    this.indexes = new Map();
    /** @type {Map<string, ImageIndex>} */
    this.indexReady = new Map();
    /** @type {Tool} */
    this.tool = 'pointer';
    /**
     * The presenter's own view while changes are on their way: drawn at once (a drag follows
     * the hand), dropped once the server has acknowledged the latest.
     * @type {{ view: CaseView, seq: number } | null}
     */
    this.local = null;
    this.seq = 0;
    this.inflight = 0;
    /** @type {Pacer<{ view: CaseView, seq: number }>} */
    this.viewPacer = new Pacer(VIEW_EVERY_MS);
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.viewTimer = undefined;
    /** @type {Pacer<Point | null>} */
    this.pointerPacer = new Pacer(POINTER_EVERY_MS);
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.pointerTimer = undefined;
    /** Whether the last pointer sent points somewhere (a leave sends one stop, not many). */
    this.pointing = false;
    /** Pointers sent, and when the last went (Date.now()), for tests and support. */
    this.pointerCount = 0;
    this.pointerSentAt = 0;
    this.wheelCarry = 0;
    /** @type {{ path: string | null, width: number, height: number, picture: CaseView | null }} what the canvas holds */
    this.shown = { path: null, width: 0, height: 0, picture: null };
    /** @type {string | null} the picture asked for last */
    this.wanted = null;
    /** @type {unknown} why the wanted picture could not be shown */
    this.loadError = null;
    /** @type {Placement} */
    this.placement = { x: 0, y: 0, scale: 0 };
    /**
     * A drag under way: panning (the presenter) or drawing a mark.
     * @type {{ kind: 'pan', id: number, from: Point, view: CaseView } | { kind: 'mark', id: number, tool: Tool, from: Point, start: Point, points: Point[] } | null}
     */
    this.drag = null;
    /** @type {string | null} what the file list and the hand-over menu were drawn from */
    this.listKey = null;
    /** @type {string | null} */
    this.handKey = null;
    /** @type {Map<string, ReturnType<typeof setTimeout>>} pointers fading out */
    this.fades = new Map();
    this.destroyed = false;

    // ---- the skeleton ----
    const L = room.labels;
    /** The call's button for the panel (in the call's head; a guest has none). */
    this.button = L.set(h('button', { type: 'button', class: 'small case-button', testid: 'ctl-case', hidden: true, 'aria-expanded': 'false', onclick: () => this.toggle() }), 'call.case.button');
    this.title = L.set(h('h2', { class: 'case-title' }), 'call.case.title');
    this.presenterText = h('span', { class: 'case-presenter small', testid: 'case-presenter' });
    this.listToggle = L.set(h('button', { type: 'button', class: 'ghost small', testid: 'case-list-toggle', onclick: () => { this.listOpen = !this.listOpen; this.render(); } }), 'call.case.files');
    this.takeBack = L.set(h('button', { type: 'button', class: 'small', testid: 'case-take-back', hidden: true, onclick: () => this.takeOver() }), 'call.case.take_back');
    this.handOver = /** @type {HTMLSelectElement} */ (h('select', { class: 'case-hand-over', testid: 'case-hand-over', hidden: true, onchange: () => this.handTo(this.handOver.value) }));
    this.closeAll = L.set(h('button', { type: 'button', class: 'ghost small danger-text', testid: 'case-close', hidden: true, onclick: () => this.closeForAll() }), 'call.case.close');
    this.hide = L.set(h('button', { type: 'button', class: 'ghost small', testid: 'case-hide', onclick: () => this.toggle(false) }), 'call.case.hide');
    this.listHint = L.set(h('p', { class: 'small muted case-hint', testid: 'case-list-hint', hidden: true }), 'call.case.read_only_hint');
    this.files = h('ul', { class: 'case-files', testid: 'case-files' });
    this.list = h('aside', { class: 'case-list', testid: 'case-list' }, this.files, this.listHint);

    /** Whether the steps are a PDF's pages (the buttons say so). */
    this.pagesShown = false;
    this.prev = L.set(h('button', { type: 'button', class: 'ghost small', testid: 'case-prev', onclick: () => this.step(-1) }),
      () => t(this.pagesShown ? 'call.case.prev_page' : 'call.case.prev'));
    this.next = L.set(h('button', { type: 'button', class: 'ghost small', testid: 'case-next', onclick: () => this.step(1) }),
      () => t(this.pagesShown ? 'call.case.next_page' : 'call.case.next'));
    this.position = h('span', { class: 'small case-position', testid: 'case-position', 'aria-live': 'polite' });
    this.windowButtons = WINDOWS.map((name) => h('button', {
      type: 'button', class: 'ghost small', testid: `case-window-${name}`, dataset: { window: name },
      onclick: () => this.pickWindow(name),
    }));
    this.centerInput = /** @type {HTMLInputElement} */ (h('input', { type: 'number', step: 'any', class: 'case-num', testid: 'case-window-center' }));
    this.widthInput = /** @type {HTMLInputElement} */ (h('input', { type: 'number', step: 'any', min: '1', class: 'case-num', testid: 'case-window-width' }));
    this.customForm = h('form', { class: 'case-custom', testid: 'case-custom', hidden: true },
      h('label', {}, L.set(h('span', { class: 'small' }), 'call.case.window_center'), this.centerInput),
      h('label', {}, L.set(h('span', { class: 'small' }), 'call.case.window_width'), this.widthInput),
      L.set(h('button', { type: 'submit', class: 'small', testid: 'case-window-apply' }), 'call.case.window_apply'));
    this.customForm.addEventListener('submit', (e) => { e.preventDefault(); this.applyCustom(); });
    this.zoomOut = L.set(h('button', { type: 'button', class: 'ghost small', testid: 'case-zoom-out', onclick: () => this.zoom(1 / ZOOM_STEP) }), 'call.case.zoom_out');
    this.zoomText = h('span', { class: 'small case-zoom', testid: 'case-zoom' });
    this.zoomIn = L.set(h('button', { type: 'button', class: 'ghost small', testid: 'case-zoom-in', onclick: () => this.zoom(ZOOM_STEP) }), 'call.case.zoom_in');
    this.zoomFit = L.set(h('button', { type: 'button', class: 'ghost small', testid: 'case-zoom-fit', onclick: () => this.fit() }), 'call.case.zoom_fit');
    this.series = h('span', { class: 'case-group', testid: 'case-series' }, this.prev, this.position, this.next);
    this.windows = h('span', { class: 'case-group', testid: 'case-windows', role: 'group' }, this.windowButtons, this.customForm);
    this.zooms = h('span', { class: 'case-group' }, this.zoomOut, this.zoomText, this.zoomIn, this.zoomFit);
    this.nav = h('div', { class: 'case-nav', testid: 'case-nav', role: 'toolbar' }, this.series, this.windows, this.zooms);

    this.canvas = h('canvas', { class: 'case-image', testid: 'case-image', width: '1', height: '1', dataset: { ready: 'false' } });
    this.marks = document.createElementNS(SVG, 'svg');
    this.marks.classList.add('case-marks');
    this.marks.dataset.testid = 'case-marks';
    this.layer = h('div', { class: 'case-layer', testid: 'case-layer' }, this.canvas, this.marks);
    this.dots = h('div', { class: 'case-pointers', testid: 'case-pointers', 'aria-hidden': 'true' });
    this.status = h('div', { class: 'case-status', testid: 'case-status', role: 'status', hidden: true });
    this.viewport = h('div', { class: 'case-viewport', testid: 'case-viewport', tabindex: '0' }, this.layer, this.dots, this.status);
    L.set(this.viewport, 'call.case.viewport', 'aria-label');

    this.toolButtons = /** @type {Tool[]} */ (['pointer', 'arrow', 'circle', 'line']).map((tool) => h('button', {
      type: 'button', class: 'ghost small', testid: `case-tool-${tool}`, dataset: { tool },
      onclick: () => { this.tool = tool; this.renderTools(); },
    }));
    this.myColor = h('span', { class: 'case-swatch', testid: 'case-my-color', hidden: true });
    this.clear = L.set(h('button', { type: 'button', class: 'ghost small', testid: 'case-clear', hidden: true, onclick: () => this.clearMarks() }), 'call.case.clear');
    this.tools = h('div', { class: 'case-tools', testid: 'case-tools', role: 'toolbar' }, this.toolButtons, this.myColor, h('span', { class: 'spacer' }), this.clear);
    L.set(this.tools, 'call.case.tools', 'aria-label');

    this.main = h('div', { class: 'case-main' }, this.nav, this.viewport, this.tools);
    this.el = h('section', { class: 'case-panel', testid: 'case-panel', hidden: true, 'aria-labelledby': 'case-title' },
      h('div', { class: 'case-head' }, this.title, this.presenterText, h('span', { class: 'spacer' }),
        this.listToggle, this.takeBack, this.handOver, this.closeAll, this.hide),
      h('div', { class: 'case-body' }, this.list, this.main));
    this.title.id = 'case-title';

    this.viewport.addEventListener('pointerdown', (e) => this.onDown(e));
    this.viewport.addEventListener('pointermove', (e) => this.onMove(e));
    this.viewport.addEventListener('pointerup', (e) => this.onUp(e));
    this.viewport.addEventListener('pointercancel', (e) => this.onUp(e, true));
    this.viewport.addEventListener('pointerleave', () => this.pointAt(null));
    this.viewport.addEventListener('wheel', (e) => this.onWheel(e), { passive: false });
    this.viewport.addEventListener('keydown', (e) => this.onKey(e));
    // A resized viewport (the window, the side panel, a tablet turned) keeps the same region
    // (and a PDF's page is drawn again once it would look blurred).
    this.resizer = new ResizeObserver(() => this.renderView());
    this.resizer.observe(this.viewport);
  }

  // ---- what the room knows ----

  /** The panel exists for signed-in members; a guest may not read attachments (api.md §Attachments). */
  available() {
    const me = this.room.me;
    return Boolean(me && !me.guest && this.attachments !== null);
  }

  get state() { return this.room.state.case; }

  /** What this page shows: the presenter's own view while it is on its way, else the room's. @returns {CaseView | null} */
  view() {
    // Mine only while it counts: I present, or a change of mine is on its way (a host showing).
    const mine = this.local && (this.presenting() || this.inflight > 0 || this.viewPacer.waiting) ? this.local.view : null;
    return mine ?? this.state.view;
  }

  presenting() {
    const id = this.room.me?.id;
    return Boolean(id && this.state.presenter === id);
  }

  /** Whether I may choose what everyone sees: the presenter, or a host (who then presents). */
  mayShow() {
    return this.presenting() || Boolean(this.room.me?.host);
  }

  /** Whether my token lets me point and draw (protocol.md §13: `can_publish_data`; /join tokens always do). */
  mayDraw() {
    return this.room.join?.grants?.can_publish_data !== false;
  }

  /** @param {string} id @returns {Attachment | null} */
  attachment(id) {
    return this.attachments?.find((a) => a.id === id) ?? null;
  }

  /** The consultation's attachments as they are now (one may have come since the call began). */
  refreshList() {
    this.listing ??= api('GET', `/v1/consultations/${encodeURIComponent(this.room.c.id)}`)
      .then((c) => {
        if (Array.isArray(c?.attachments)) this.attachments = c.attachments;
        this.listError = null;
      }, (e) => { this.listError = e; })
      .finally(() => {
        this.listing = null;
        if (!this.destroyed) this.render();
      });
    return this.listing;
  }

  /** A DICOM attachment's image index, asked once. @param {string} id @returns {Promise<ImageIndex>} */
  index(id) {
    let p = this.indexes.get(id);
    if (!p) {
      p = api('GET', `${attachmentPath(this.room.c.id, id)}/images`).then((idx) => {
        const index = { images: Array.isArray(idx?.images) ? idx.images : [], presets: idx?.presets };
        this.indexReady.set(id, index);
        return index;
      });
      p.catch(() => this.indexes.delete(id));
      this.indexes.set(id, p);
    }
    return p;
  }

  // ---- opening and closing on this page ----

  /** The call's button: opens the list (or closes the panel on this page). @param {boolean} [open] */
  toggle(open = !this.open) {
    this.open = open;
    this.userOpened = open;
    if (open) {
      this.refreshList();
      if (!this.state.view) this.listOpen = true;
    }
    this.render();
    this.renderButton();
    if (open) this.viewport.focus({ preventScroll: true });
  }

  /** Shows the call's button to those who may read the material, pressed while the panel is open. */
  renderButton() {
    // In the room only: someone waiting in the lobby is not shown anything yet.
    this.button.hidden = !this.available() || !['joined', 'reconnecting'].includes(this.room.phase);
    this.button.setAttribute('aria-expanded', String(this.open));
    this.button.dataset.open = String(this.open);
  }

  /** The room's panel changed (state.js `render: case`). */
  onState() {
    const view = this.state.view;
    // Something new shown to everyone opens the panel (a guest has none) with the list folded
    // away, as does the role handed to me: the picture wants the room (a click brings the list
    // back). A close takes the panel away again unless this user opened it to look at the list.
    if (view && view.attachment !== this.autoFor && this.available()) {
      this.autoFor = view.attachment;
      this.open = true;
      this.listOpen = false;
    } else if (!view && this.autoFor) {
      this.autoFor = null;
      if (this.open && !this.userOpened) this.open = false;
    }
    const me = this.room.me?.id ?? null;
    if (view && this.state.presenter === me && this.lastPresenter !== me) this.listOpen = false;
    this.lastPresenter = this.state.presenter;
    this.renderButton();
    // My own view gives way once the room's has caught up with it (its case_state may be
    // applied after the ack: events wait their turn behind media, answers do not), or once the
    // role went elsewhere (a host took it back).
    if (this.local && this.inflight === 0 && !this.viewPacer.waiting && (!this.presenting() || sameView(this.state.view, this.local.view))) this.local = null;
    this.render();
  }

  // ---- drawing ----

  render() {
    if (this.destroyed) return;
    const available = this.available();
    const shown = available && this.open;
    this.el.hidden = !shown;
    this.room.body.dataset.case = shown ? 'open' : 'closed';
    if (!shown) return;
    const st = this.state;
    const view = this.view();
    const me = this.room.me;
    const presenting = this.presenting();
    const host = Boolean(me?.host);
    const a = view ? this.attachment(view.attachment) : null;
    const kind = a ? viewKind(a.kind) : null;
    this.el.dataset.state = view ? 'view' : 'list';
    this.el.dataset.presenter = presenting ? 'me' : st.presenter ? 'other' : 'none';
    this.el.dataset.kind = kind ?? '';
    this.presenterText.textContent = !st.view ? t('call.case.nothing')
      : presenting ? t('call.case.presenter_you')
        : st.presenter ? t('call.case.presenter', { name: this.room.nameOf(st.presenter) }) : t('call.case.presenter_none');
    const listShown = this.listOpen || !view;
    this.list.hidden = !listShown;
    this.listToggle.hidden = !view;
    this.listToggle.setAttribute('aria-expanded', String(listShown));
    this.takeBack.hidden = !(view && host && !presenting);
    this.closeAll.hidden = !(st.view && (presenting || host));
    this.renderHandOver(Boolean(st.view && (presenting || host)));
    this.renderList(view);

    this.main.hidden = !view;
    this.nav.hidden = !(view && presenting && kind);
    // A PDF's pages step like a series' images; only DICOM has windows.
    this.series.hidden = kind !== 'dicom' && kind !== 'pdf';
    this.windows.hidden = kind !== 'dicom';
    this.tools.hidden = !(view && kind && this.mayDraw());
    this.renderView();
    // A case_state brings the marks (a clear, another picture) as well as the view.
    this.renderMarks();
    this.renderPointers();
  }

  /**
   * The picture's part only: where in the series, the window and zoom, the picture itself. A
   * drag or a turn of the wheel redraws this much, not the lists.
   */
  renderView() {
    const view = this.view();
    if (!view || this.el.hidden) return;
    const a = this.attachment(view.attachment);
    const kind = a ? viewKind(a.kind) : null;
    const d = this.viewport.dataset;
    d.attachment = view.attachment;
    d.image = String(view.image);
    d.frame = String(view.frame);
    d.window = windowOf(view);
    d.zoom = String(view.zoom);
    d.centerX = String(view.center_x);
    d.centerY = String(view.center_y);
    this.viewport.classList.toggle('pannable', this.presenting());
    this.renderNav(view, kind);
    this.renderTools();
    if (kind) this.load(view, kind);
    else if (!a) {
      // Shown before this page knew of it (attached during the call): ask for the list.
      this.say(t('call.case.loading'));
      if (!this.listing) this.refreshList();
    }
    this.layout();
  }

  /** The consultation's files; the presenter or a host may show one, everyone sees which is shown. @param {CaseView | null} view */
  renderList(view) {
    const may = this.mayShow();
    this.listHint.hidden = may;
    // Drawn again only when something in it changed: a click on a row must not meet a new row.
    const key = JSON.stringify([may, view?.attachment ?? null, this.attachments?.map((a) => a.id) ?? null, Boolean(this.listing), Boolean(this.listError), document.documentElement.lang]);
    if (key === this.listKey) return;
    this.listKey = key;
    if (this.attachments === null || (this.listing && !this.attachments.length)) {
      this.files.replaceChildren(h('li', { class: 'muted small' }, t('call.case.loading')));
      return;
    }
    if (this.listError && !this.attachments.length) {
      this.files.replaceChildren(h('li', { class: 'error small', testid: 'case-list-error' }, errorText(this.listError)));
      return;
    }
    if (!this.attachments.length) {
      this.files.replaceChildren(h('li', { class: 'muted small', testid: 'case-files-empty' }, t('call.case.empty')));
      return;
    }
    this.files.replaceChildren(...this.attachments.map((a) => {
      const on = view?.attachment === a.id;
      const known = viewKind(a.kind) !== null;
      const what = [KIND_KEYS[a.kind] ? t(KIND_KEYS[a.kind]) : a.kind];
      if (a.dicom?.frames) what.push(t('call.case.images', { n: a.dicom.frames }));
      return h('li', { class: on ? 'on' : '' },
        h('button', {
          type: 'button', class: 'case-file', testid: 'case-file', dataset: { id: a.id, kind: a.kind, shown: String(on) },
          disabled: !may || !known, 'aria-current': on ? 'true' : null,
          onclick: () => this.show(a),
        }, h('span', { class: 'case-file-name' }, a.name), h('span', { class: 'small muted' }, what.join(' · '))));
    }));
  }

  /** The hand-over menu: joined members who may read the material (no guests). @param {boolean} on */
  renderHandOver(on) {
    this.handOver.hidden = !on;
    if (!on) return;
    const me = this.room.me?.id;
    // Nor encoders: a device that only publishes cannot present anything.
    const people = [...this.room.participants.values()].filter((p) => p.id !== me && !p.guest && !p.encoder && p.presence === 'online' && p.id !== this.state.presenter);
    this.handOver.hidden = people.length === 0;
    // An open menu is not rebuilt under the hand choosing from it.
    const key = JSON.stringify([people.map((p) => [p.id, p.name]), document.documentElement.lang]);
    if (key === this.handKey) return;
    this.handKey = key;
    this.handOver.setAttribute('aria-label', t('call.case.hand_over'));
    this.handOver.replaceChildren(h('option', { value: '' }, t('call.case.hand_over')),
      ...people.map((p) => h('option', { value: p.id }, p.name)));
    this.handOver.value = '';
  }

  /**
   * The presenter's tools: where in the series (or the PDF), the window, the zoom.
   * @param {CaseView} view @param {'dicom' | 'image' | 'pdf' | null} kind
   */
  renderNav(view, kind) {
    const idx = this.indexReady.get(view.attachment);
    const where = kind === 'pdf' ? 'call.case.page' : 'call.case.position';
    if (this.pagesShown !== (kind === 'pdf')) {
      this.pagesShown = kind === 'pdf';
      this.prev.textContent = t(this.pagesShown ? 'call.case.prev_page' : 'call.case.prev');
      this.next.textContent = t(this.pagesShown ? 'call.case.next_page' : 'call.case.next');
    }
    if (idx) {
      const total = positions(idx.images);
      const at = positionOf(idx.images, view);
      this.position.textContent = t(where, { n: at + 1, total });
      this.prev.disabled = at <= 0;
      this.next.disabled = at >= total - 1;
    } else {
      this.position.textContent = t(where, { n: view.image + 1, total: '…' });
    }
    const win = windowOf(view);
    this.windowButtons.forEach((b, i) => {
      const name = WINDOWS[i];
      b.textContent = t(WINDOW_KEYS[name]);
      b.setAttribute('aria-pressed', String(win === name));
    });
    if (win === 'custom' && document.activeElement !== this.centerInput && document.activeElement !== this.widthInput) {
      this.centerInput.value = String(view.center ?? '');
      this.widthInput.value = String(view.width ?? '');
    }
    if (win === 'custom') this.customForm.hidden = false;
    this.zoomText.textContent = t('call.case.zoom', { zoom: Number(view.zoom.toFixed(2)) });
    this.zoomOut.disabled = view.zoom <= 1;
    this.zoomIn.disabled = view.zoom >= 16;
  }

  renderTools() {
    for (const b of this.toolButtons) {
      const tool = /** @type {Tool} */ (b.dataset.tool);
      b.textContent = t(TOOL_KEYS[tool]);
      b.setAttribute('aria-pressed', String(this.tool === tool));
    }
    this.viewport.dataset.tool = this.tool;
    const mine = this.room.me ? this.state.colors.get(this.room.me.id) : undefined;
    this.myColor.hidden = mine === undefined;
    if (mine !== undefined) {
      this.myColor.style.background = colorOf(mine);
      this.myColor.title = t('call.case.my_color');
    }
    this.clear.hidden = !(this.mayShow() && this.state.view && this.state.marks.length);
  }

  /** A message over the picture (loading, a failure); '' hides it. @param {string} text @param {string} [kind] */
  say(text, kind = 'info') {
    this.status.hidden = !text;
    this.status.textContent = text;
    this.status.dataset.kind = kind;
  }

  /**
   * Brings the picture of `view` onto the canvas: at once if it is here, else fetched or drawn
   * (the old one stays until then, dimmed; a PDF's page drawn sharper for a zoom stays as it
   * is), with the next and previous of a series or a PDF made ahead.
   * @param {CaseView} view @param {'dicom' | 'image' | 'pdf'} kind
   */
  load(view, kind) {
    const cid = this.room.c.id;
    /** @type {Wanted} */
    let want = { path: kind === 'dicom' ? imagePath(cid, view) : attachmentPath(cid, view.attachment, true) };
    /** @type {Wanted[]} */
    let ahead = [];
    if (kind === 'pdf') {
      const pdf = this.pdfPictures(view);
      // The file, or the page's size, is on its way: load() runs again once it is here.
      if (!pdf) return;
      ({ want, ahead } = pdf);
    } else if (kind === 'dicom') {
      const idx = this.indexReady.get(view.attachment);
      if (idx) {
        ahead = [1, -1].map((d) => stepView(view, idx.images, d)).filter((v) => v !== null).map((v) => ({ path: imagePath(cid, /** @type {CaseView} */ (v)) }));
      } else {
        this.index(view.attachment).then(() => { if (!this.destroyed) this.render(); }, () => {});
      }
    }
    const path = want.path;
    if (path === this.wanted) return;
    this.wanted = path;
    this.loadError = null;
    this.images.only([path, ...ahead.map((w) => w.path)]);
    const fetchAhead = () => { for (const w of ahead) this.images.get(w.path, w.make).catch(() => {}); };
    const here = this.images.peek(path);
    if (here && this.draw(here, path, view)) {
      fetchAhead();
      return;
    }
    // The same page drawn again at another size: what is there is the right picture meanwhile.
    const sharper = kind === 'pdf' && this.canvas.dataset.ready === 'true' && samePicture(view, this.shown.picture);
    if (!sharper) {
      this.canvas.dataset.ready = 'false';
      this.viewport.dataset.loading = 'true';
      this.say(t('call.case.loading'));
    }
    this.images.get(path, want.make).then((bmp) => {
      if (this.destroyed || this.wanted !== path) return;
      if (!this.draw(bmp, path, view)) throw new Error('the picture could not be drawn');
      fetchAhead();
    }).catch((e) => {
      if (this.destroyed || this.wanted !== path || e?.name === 'AbortError') return;
      this.failed(e, kind);
    });
  }

  /** Says why the wanted picture could not be shown. @param {unknown} e @param {'dicom' | 'image' | 'pdf'} kind */
  failed(e, kind) {
    this.loadError = e;
    this.viewport.dataset.loading = 'false';
    this.say(t(kind === 'pdf' ? 'call.case.pdf_failed' : 'call.case.load_failed', { message: errorText(e) }), 'error');
  }

  /**
   * A PDF's page for `view`, drawn at the scale this viewport needs at the view's zoom (stepped
   * and capped: pdfview.js renderScale), and its neighbours at theirs; null while the file or
   * the page's size is on its way. The pages become the attachment's "series", stepped through
   * like a DICOM series' images.
   * @param {CaseView} view @returns {{ want: Wanted, ahead: Wanted[] } | null}
   */
  pdfPictures(view) {
    const file = attachmentPath(this.room.c.id, view.attachment, true);
    const opening = `${file}#open`;
    // One that could not be opened is asked for again when shown anew, not at every redraw.
    const entry = this.pdfs.open(file, this.wanted !== opening);
    const doc = entry.doc;
    if (!doc) {
      this.waitFor(opening, entry.promise, 'pdf');
      return null;
    }
    if (!this.indexReady.has(view.attachment)) {
      this.indexReady.set(view.attachment, { images: Array.from({ length: doc.pages }, () => ({ frames: 1 })) });
      // The position and the buttons now know the page count.
      this.renderNav(view, 'pdf');
    }
    const page = clampPage(view.image, doc.pages);
    const size = doc.sizeNow(page);
    if (!size) {
      this.waitFor(`${file}#size=${page}`, doc.pageSize(page), 'pdf');
      return null;
    }
    const vp = { width: this.viewport.clientWidth, height: this.viewport.clientHeight };
    const zoom = Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, Number(view.zoom) || 1));
    /** @param {number} n @param {import('../pdfview.js').Size} sz @returns {Wanted} */
    const at = (n, sz) => {
      const scale = renderScale(sz, fitScale(sz, vp) * zoom, window.devicePixelRatio || 1);
      return { path: `${file}#page=${n}&scale=${scale}`, make: pdfPage(doc, n, scale) };
    };
    /** @type {Wanted[]} */
    const ahead = [];
    for (const n of [page + 1, page - 1]) {
      if (n < 0 || n >= doc.pages) continue;
      // A neighbour's size is asked for now; meanwhile it is taken to be this page's (most are).
      const known = doc.sizeNow(n);
      if (!known) doc.pageSize(n).catch(() => {});
      ahead.push(at(n, known ?? size));
    }
    return { want: at(page, size), ahead };
  }

  /**
   * Waits for what a picture needs (a PDF opened, a page's size), dimmed and saying so; then
   * brings the picture. Asked again while it waits, nothing more happens.
   * @param {string} what @param {Promise<unknown>} promise @param {'pdf'} kind
   */
  waitFor(what, promise, kind) {
    if (this.wanted === what) return;
    this.wanted = what;
    this.loadError = null;
    this.canvas.dataset.ready = 'false';
    this.viewport.dataset.loading = 'true';
    this.say(t('call.case.loading'));
    promise.then(() => {
      if (this.destroyed || this.wanted !== what) return;
      this.wanted = null;
      this.renderView();
    }, (e) => {
      if (this.destroyed || this.wanted !== what || e?.name === 'AbortError') return;
      this.failed(e, kind);
    });
  }

  /** Puts a picture on the canvas; false if it could not (closed meanwhile). @param {ImageBitmap} bmp @param {string} path @param {CaseView} view */
  draw(bmp, path, view) {
    const ctx = this.canvas.getContext('2d');
    if (!ctx) return false;
    try {
      if (this.canvas.width !== bmp.width || this.canvas.height !== bmp.height) {
        this.canvas.width = bmp.width;
        this.canvas.height = bmp.height;
      } else {
        ctx.clearRect(0, 0, bmp.width, bmp.height);
      }
      ctx.drawImage(bmp, 0, 0);
    } catch {
      return false;
    }
    this.shown = { path, width: bmp.width, height: bmp.height, picture: view };
    this.canvas.dataset.src = path;
    this.canvas.dataset.ready = 'true';
    this.viewport.dataset.loading = 'false';
    this.layer.style.width = `${bmp.width}px`;
    this.layer.style.height = `${bmp.height}px`;
    this.marks.setAttribute('viewBox', `0 0 ${bmp.width} ${bmp.height}`);
    this.marks.setAttribute('width', String(bmp.width));
    this.marks.setAttribute('height', String(bmp.height));
    this.say('');
    this.layout();
    return true;
  }

  /** Places the picture for the view in this viewport, then the marks and pointers on it. */
  layout() {
    const view = this.view();
    if (!view || !this.shown.width || this.el.hidden) return;
    const vp = { width: this.viewport.clientWidth, height: this.viewport.clientHeight };
    const img = { width: this.shown.width, height: this.shown.height };
    const p = place(view, img, vp);
    const scaleChanged = Math.abs(p.scale - this.placement.scale) > 1e-9;
    this.placement = p;
    this.layer.style.transform = `translate(${p.x}px, ${p.y}px) scale(${p.scale})`;
    // Magnified, every pixel shows as a square (a radiologist wants to see pixels, not blur);
    // a PDF's page is text and lines, smoothed (it is drawn sharp up to its cap).
    const a = this.attachment(view.attachment);
    this.canvas.classList.toggle('pixels', p.scale >= 2 && !(a && viewKind(a.kind) === 'pdf'));
    if (scaleChanged || this.marks.dataset.for !== this.shown.path) this.renderMarks();
    this.renderPointers();
  }

  /**
   * The marks of the picture shown, in the image's own pixels (they follow zoom and pan with
   * it), each in its author's colour; lines keep their screen width at any zoom.
   */
  renderMarks() {
    const view = this.view();
    const s = this.placement.scale;
    this.marks.dataset.for = this.shown.path ?? '';
    const onPicture = samePicture(view, this.shown.picture);
    this.marks.style.display = onPicture ? '' : 'none';
    if (!onPicture || !(s > 0)) { this.marks.replaceChildren(); return; }
    const els = this.state.marks.map((m) => this.markEl(m.kind, m.points, colorOf(m.color), { testid: 'case-mark', id: String(m.id), participant: m.participant, color: String(m.color), kind: m.kind }));
    if (this.drag?.kind === 'mark') els.push(this.draftEl());
    this.marks.replaceChildren(...els);
    this.renderTools();
  }

  /** The mark being drawn, dashed, in my colour once I have one. */
  draftEl() {
    const d = /** @type {{ kind: 'mark', tool: Tool, start: Point, points: Point[] }} */ (this.drag);
    const mine = this.room.me ? this.state.colors.get(this.room.me.id) : undefined;
    const pts = d.tool === 'line' ? d.points : [d.start, d.points[d.points.length - 1] ?? d.start];
    const el = this.markEl(/** @type {'arrow' | 'circle' | 'line'} */ (d.tool), pts, mine === undefined ? '#ffffff' : colorOf(mine), { testid: 'case-mark-draft', kind: d.tool });
    el.setAttribute('stroke-dasharray', String(6 / this.placement.scale));
    return el;
  }

  /**
   * One mark as SVG in image pixels.
   * @param {'arrow' | 'circle' | 'line'} kind @param {Point[]} points fractions @param {string} color @param {Record<string, string>} data
   */
  markEl(kind, points, color, data) {
    const W = this.shown.width;
    const H = this.shown.height;
    const s = this.placement.scale;
    /** @type {Point[]} */
    const px = points.map(([x, y]) => [x * W, y * H]);
    const g = document.createElementNS(SVG, 'g');
    g.setAttribute('stroke', color);
    g.setAttribute('stroke-width', String(STROKE_PX / s));
    g.setAttribute('fill', 'none');
    g.setAttribute('stroke-linecap', 'round');
    g.setAttribute('stroke-linejoin', 'round');
    for (const [k, v] of Object.entries(data)) g.dataset[k] = v;
    /** @param {string} tag @param {Record<string, string | number>} attrs */
    const add = (tag, attrs) => {
      const el = document.createElementNS(SVG, tag);
      for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
      g.append(el);
    };
    const line = (/** @type {Point[]} */ pts) => add('polyline', { points: pts.map((p) => p.join(',')).join(' ') });
    if (kind === 'circle' && px.length >= 2) {
      add('circle', { cx: px[0][0], cy: px[0][1], r: Math.hypot(px[1][0] - px[0][0], px[1][1] - px[0][1]) });
    } else if (kind === 'arrow' && px.length >= 2) {
      line([px[0], px[1]]);
      const [l, r] = arrowHead(px[0], px[1], HEAD_PX / s);
      line([l, px[1], r]);
    } else {
      line(px);
    }
    return g;
  }

  /** Everyone else's pointer, a dot in their colour with their name, where the image is now. */
  renderPointers() {
    const pointers = this.state.pointers;
    for (const el of [...this.dots.children]) {
      const id = /** @type {HTMLElement} */ (el).dataset.participant ?? '';
      if (!pointers.has(id)) el.remove();
    }
    for (const id of pointers.keys()) this.placePointer(id);
  }

  /** One pointer moved (or stopped): drawn at once, faded after a while without a move. @param {string} id */
  onPointer(id) {
    const fade = this.fades.get(id);
    if (fade) clearTimeout(fade);
    this.fades.delete(id);
    const el = this.placePointer(id);
    if (!el) return;
    el.classList.remove('fading');
    this.fades.set(id, setTimeout(() => { el.classList.add('fading'); this.fades.delete(id); }, POINTER_FADE_MS));
  }

  /** @param {string} id @returns {HTMLElement | null} */
  placePointer(id) {
    const p = this.state.pointers.get(id);
    /** @type {HTMLElement | null} */
    let el = this.dots.querySelector(`[data-participant="${CSS.escape(id)}"]`);
    if (!p || !this.shown.width || !samePicture(this.view(), this.shown.picture)) {
      el?.remove();
      return null;
    }
    if (!el) {
      el = h('div', { class: 'case-dot', testid: 'case-pointer', dataset: { participant: id } }, h('i', {}), h('span', { class: 'case-dot-name' }));
      this.dots.append(el);
    }
    const at = toViewport(this.placement, { width: this.shown.width, height: this.shown.height }, p.x, p.y);
    el.style.left = `${at.x}px`;
    el.style.top = `${at.y}px`;
    el.style.setProperty('--dot', colorOf(p.color));
    el.dataset.x = String(p.x);
    el.dataset.y = String(p.y);
    el.dataset.color = String(p.color);
    const name = /** @type {HTMLElement} */ (el.lastElementChild);
    const text = this.room.nameOf(id);
    if (name.textContent !== text) name.textContent = text;
    return el;
  }

  // ---- the presenter's changes ----

  /**
   * Shows `view` to everyone: drawn here at once, sent at most 5 a second (the first at once,
   * the latest when its turn comes); `settle` sends what waits now (the end of a drag).
   * @param {CaseView} view @param {{ settle?: boolean }} [opts]
   */
  change(view, opts = {}) {
    if (!this.mayShow()) return;
    this.local = { view: cleanView(view), seq: ++this.seq };
    const r = this.viewPacer.offer(this.local, performance.now());
    if (r.send) this.sendView(r.send.value);
    else if (opts.settle) this.settle();
    else if (r.wakeAt !== null) this.wakeView(r.wakeAt);
    this.renderView();
  }

  /** Sends the view held back when its turn comes. @param {number} at performance.now() time */
  wakeView(at) {
    if (this.viewTimer !== undefined) return;
    this.viewTimer = setTimeout(() => {
      this.viewTimer = undefined;
      const w = this.viewPacer.wake(performance.now());
      if (w) this.sendView(w.value);
      else if (this.viewPacer.waiting) this.wakeView(this.viewPacer.last + this.viewPacer.every);
    }, Math.max(0, at - performance.now()));
  }

  /** Sends what waits at once (a drag ended). */
  settle() {
    clearTimeout(this.viewTimer);
    this.viewTimer = undefined;
    const f = this.viewPacer.flush(performance.now());
    if (f) this.sendView(f.value);
  }

  /** @param {{ view: CaseView, seq: number }} item */
  sendView({ view, seq }) {
    const socket = this.room.socket;
    if (!socket) return;
    this.inflight++;
    socket.request({ type: 'case_show', view }).then(() => {
      // The latest is taken. The room's view is this one once its case_state is applied (the
      // server sends it before the ack, but the page may apply it later: onState drops mine then).
      if (this.local?.seq === seq && !this.viewPacer.waiting && sameView(this.state.view, this.local.view)) this.local = null;
    }, (e) => {
      // Refused (no longer the presenter): the room's view stands.
      if (this.local?.seq === seq) this.local = null;
      this.room.say(() => this.room.signalText(e), 'error');
    }).finally(() => {
      this.inflight--;
      if (!this.destroyed) this.render();
    });
  }

  /** A file chosen in the list: everyone sees its first image, whole. @param {Attachment} a */
  show(a) {
    if (!this.mayShow() || !viewKind(a.kind)) return;
    this.listOpen = false;
    this.change(firstView(a.id), { settle: true });
    this.viewport.focus({ preventScroll: true });
  }

  /** A host takes the presenter's role back by showing what is shown. */
  takeOver() {
    const view = this.state.view;
    if (view && this.room.me?.host) this.change(view, { settle: true });
  }

  /** @param {string} participant */
  handTo(participant) {
    this.handOver.value = '';
    if (!participant) return;
    this.room.socket?.request({ type: 'case_presenter', participant }).catch((e) => this.room.say(() => this.room.signalText(e), 'error'));
  }

  closeForAll() {
    this.room.socket?.request({ type: 'case_close' }).catch((e) => this.room.say(() => this.room.signalText(e), 'error'));
  }

  clearMarks() {
    this.room.socket?.request({ type: 'case_clear' }).catch((e) => this.room.say(() => this.room.signalText(e), 'error'));
  }

  /** @param {number} delta */
  step(delta) {
    const view = this.view();
    if (!view || !this.presenting()) return;
    const idx = this.indexReady.get(view.attachment);
    if (!idx) return;
    const next = stepView(view, idx.images, delta);
    if (next) this.change(next);
  }

  /** @param {WindowChoice} name */
  pickWindow(name) {
    const view = this.view();
    if (!view || !this.presenting()) return;
    if (name === 'custom') {
      // The fields start from what is shown: the custom window, or the image's own.
      const own = this.indexReady.get(view.attachment)?.images[view.image];
      const w = /** @type {{ window?: { center: number, width: number } | null }} */ (own ?? {}).window;
      if (view.window !== 'custom') {
        this.centerInput.value = String(w?.center ?? 40);
        this.widthInput.value = String(w?.width ?? 400);
      }
      this.customForm.hidden = false;
      this.centerInput.focus();
      return;
    }
    this.customForm.hidden = true;
    this.change(withWindow(view, name), { settle: true });
  }

  applyCustom() {
    const view = this.view();
    const w = customWindow(this.centerInput.value, this.widthInput.value);
    if (!view || !w) {
      this.room.say(() => t('call.case.window_invalid'), 'error');
      return;
    }
    this.change(withWindow(view, 'custom', w), { settle: true });
  }

  /** @param {number} factor */
  zoom(factor) {
    const view = this.view();
    if (view && this.presenting()) this.change(withZoom(view, view.zoom * factor), { settle: true });
  }

  fit() {
    const view = this.view();
    if (view && this.presenting()) this.change({ ...view, zoom: 1, center_x: 0.5, center_y: 0.5 }, { settle: true });
  }

  // ---- the mouse and the keys over the picture ----

  /** A viewport point of an event. @param {PointerEvent | WheelEvent} e @returns {Point} */
  at(e) {
    const r = this.viewport.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  /** The image point (fractions) under a viewport point. @param {Point} p */
  onImage(p) {
    return toImage(this.placement, { width: this.shown.width, height: this.shown.height }, p[0], p[1]);
  }

  /** @param {PointerEvent} e */
  onDown(e) {
    if (e.button !== 0 || !this.shown.width) return;
    const view = this.view();
    if (!view) return;
    const p = this.at(e);
    const f = this.onImage(p);
    if (this.tool !== 'pointer' && this.mayDraw() && f.inside) {
      /** @type {Point} */
      const start = [f.x, f.y];
      this.drag = { kind: 'mark', id: e.pointerId, tool: this.tool, from: p, start, points: [start] };
    } else if (this.tool === 'pointer' && this.presenting()) {
      this.drag = { kind: 'pan', id: e.pointerId, from: p, view };
      this.viewport.classList.add('panning');
    } else {
      return;
    }
    e.preventDefault();
    this.viewport.focus({ preventScroll: true });
    this.viewport.setPointerCapture(e.pointerId);
  }

  /** @param {PointerEvent} e */
  onMove(e) {
    if (!this.shown.width) return;
    const p = this.at(e);
    const f = this.onImage(p);
    const d = this.drag;
    if (d && d.id === e.pointerId) {
      if (d.kind === 'pan') {
        const img = { width: this.shown.width, height: this.shown.height };
        const vp = { width: this.viewport.clientWidth, height: this.viewport.clientHeight };
        this.change(panBy(d.view, p[0] - d.from[0], p[1] - d.from[1], img, vp));
      } else {
        /** @type {Point} */
        const q = [Math.min(1, Math.max(0, f.x)), Math.min(1, Math.max(0, f.y))];
        if (d.tool === 'line') {
          // A long stroke is thinned as it goes: the wire takes at most 256 points.
          d.points.push(q);
          if (d.points.length > MAX_LINE_POINTS * 4) d.points = simplifyLine(d.points, MAX_LINE_POINTS * 2);
        } else {
          d.points = [d.start, q];
        }
        this.renderMarks();
      }
    }
    this.pointAt(f.inside ? [f.x, f.y] : null);
  }

  /** @param {PointerEvent} e @param {boolean} [cancelled] */
  onUp(e, cancelled = false) {
    const d = this.drag;
    if (!d || d.id !== e.pointerId) return;
    this.drag = null;
    if (this.viewport.hasPointerCapture(e.pointerId)) this.viewport.releasePointerCapture(e.pointerId);
    if (d.kind === 'pan') {
      this.viewport.classList.remove('panning');
      this.settle();
      return;
    }
    this.renderMarks();
    if (cancelled || !meantMark(d.from, this.at(e))) return;
    const points = d.tool === 'line' ? simplifyLine(d.points) : [d.start, d.points[d.points.length - 1]].map(([x, y]) => /** @type {Point} */ ([Number(x.toFixed(4)), Number(y.toFixed(4))]));
    if (points.length < 2) return;
    this.room.socket?.request({ type: 'case_mark', mark: { kind: d.tool, points } }).catch((err) => this.room.say(() => this.room.signalText(err), 'error'));
  }

  /**
   * Points at an image point (fractions), or stops (null): at most 10 a second, the latest
   * position last; a stop goes at once and only once.
   * @param {Point | null} at
   */
  pointAt(at) {
    if (!this.state.view || !this.mayDraw()) return;
    /** @type {Point | null} */
    const p = at ? [Number(at[0].toFixed(4)), Number(at[1].toFixed(4))] : null;
    // Moving about off the image says "stopped" once, not at every move.
    if (!p && !this.pointing && !this.pointerPacer.waiting) return;
    // A stop is paced like a move: a hand in and out of the picture must not flood the socket.
    const r = this.pointerPacer.offer(p, performance.now());
    if (r.send) this.sendPointer(r.send.value);
    else if (r.wakeAt !== null) this.wakePointer(r.wakeAt);
  }

  /** Sends the position held back when its turn comes. @param {number} at performance.now() time */
  wakePointer(at) {
    if (this.pointerTimer !== undefined) return;
    this.pointerTimer = setTimeout(() => {
      this.pointerTimer = undefined;
      const w = this.pointerPacer.wake(performance.now());
      if (w) this.sendPointer(w.value);
      else if (this.pointerPacer.waiting) this.wakePointer(this.pointerPacer.last + this.pointerPacer.every);
    }, Math.max(0, at - performance.now()));
  }

  /** @param {Point | null} p */
  sendPointer(p) {
    const socket = this.room.socket;
    if (!socket || (!p && !this.pointing)) return;
    if (socket.send({ type: 'case_pointer', x: p ? p[0] : null, y: p ? p[1] : null })) {
      this.pointing = p !== null;
      this.pointerCount++;
      this.pointerSentAt = Date.now();
    }
  }

  /** The wheel steps through a series (the presenter); with Ctrl (or a pinch) it zooms about the cursor. @param {WheelEvent} e */
  onWheel(e) {
    const view = this.view();
    if (!view || !this.presenting() || !this.shown.width) return;
    e.preventDefault();
    if (e.ctrlKey) {
      const img = { width: this.shown.width, height: this.shown.height };
      const vp = { width: this.viewport.clientWidth, height: this.viewport.clientHeight };
      this.change(zoomBy(view, Math.exp(-e.deltaY / 300), img, vp, this.at(e)));
      return;
    }
    const r = wheelSteps(this.wheelCarry, e.deltaY, e.deltaMode);
    this.wheelCarry = r.carry;
    if (r.steps) this.step(r.steps);
  }

  /** Arrow keys and Page Up/Down step, + and − zoom, 0 fits (the presenter, the picture focused). @param {KeyboardEvent} e */
  onKey(e) {
    if (!this.presenting() || e.altKey || e.metaKey || e.ctrlKey) return;
    /** @type {Record<string, () => void>} */
    const keys = {
      ArrowDown: () => this.step(1), ArrowRight: () => this.step(1), ArrowUp: () => this.step(-1), ArrowLeft: () => this.step(-1),
      PageDown: () => this.step(10), PageUp: () => this.step(-10), Home: () => this.step(-1e9), End: () => this.step(1e9),
      '+': () => this.zoom(ZOOM_STEP), '=': () => this.zoom(ZOOM_STEP), '-': () => this.zoom(1 / ZOOM_STEP), 0: () => this.fit(),
    };
    const fn = keys[e.key];
    if (!fn) return;
    e.preventDefault();
    fn();
  }

  /** What tests and support may read of the panel (no pixels, no tokens). */
  snapshot() {
    const view = this.view();
    return {
      available: this.available(),
      open: this.open && !this.el.hidden,
      view,
      room: this.state.view,
      presenter: this.state.presenter,
      presenting: this.presenting(),
      marks: this.state.marks.length,
      pointers: Object.fromEntries([...this.state.pointers].map(([id, p]) => [id, { ...p }])),
      picture: { path: this.shown.path, width: this.shown.width, height: this.shown.height, ready: this.canvas.dataset.ready === 'true' && this.shown.path === this.wanted },
      placement: { ...this.placement },
      pointerCount: this.pointerCount,
      pointerSentAt: this.pointerSentAt,
      pointerReady: this.pointerPacer.ready(performance.now()),
      error: this.loadError ? errorText(this.loadError) : null,
    };
  }

  /** Written again in the new language (the static texts follow room.labels). */
  relabel() {
    this.render();
    this.renderMarks();
  }

  destroy() {
    this.destroyed = true;
    clearTimeout(this.viewTimer);
    clearTimeout(this.pointerTimer);
    for (const f of this.fades.values()) clearTimeout(f);
    this.fades.clear();
    this.resizer.disconnect();
    this.images.close();
    this.pdfs.close();
  }
}
