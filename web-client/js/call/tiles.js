// The stage: one tile per participant (camera or surname), one per extra video (a second
// camera, a screen share), laid out as a grid or as one large view with thumbnails. Tiles
// and their <video> elements live as long as what they show: a layout change moves them, it
// never recreates them (a recreated video would flash black and restart decoding). Each tile
// has its own buttons: pin (this viewer's large view) and full screen.
import { t } from '../i18n.js';
import { h, icon, videoEl } from './dom.js';
import { initialsOf } from './initials.js';

/**
 * @typedef {object} TileInfo
 * @property {string} key participant id for a person's tile, track id for an extra video
 * @property {string} participant
 * @property {string} name
 * @property {'person' | 'camera2' | 'screen'} source
 * @property {MediaStream | null} stream what the video plays (null: initials)
 * @property {string | null} trackId the room track shown (for set_layer)
 * @property {boolean} local
 * @property {boolean} micMuted
 * @property {boolean} videoMuted
 * @property {boolean} hand
 * @property {boolean} host
 * @property {boolean} [guest] came through a guest link (a person's tile says so)
 * @property {boolean} [encoder] an operating-room encoder publishing by WHIP (its tile says so)
 * @property {string} presence
 * @property {string | null} quality
 * @property {boolean} speaking
 */

/**
 * What a tile's buttons do (CallRoom's).
 * @typedef {object} TileActions
 * @property {(key: string) => void} togglePin
 * @property {(tile: Tile) => void} toggleFullscreen
 */

export class Tile {
  /** @param {TileInfo} info @param {TileActions} actions */
  constructor(info, actions) {
    this.key = info.key;
    this.video = videoEl('tile-video');
    this.avatar = h('span', { class: 'avatar', testid: 'tile-avatar' });
    this.initials = h('div', { class: 'initials', 'aria-hidden': 'true' }, this.avatar);
    this.pinButton = h('button', { type: 'button', class: 'tile-btn', testid: 'tile-pin', onclick: () => actions.togglePin(this.key) }, icon('pin'));
    this.fullButton = h('button', { type: 'button', class: 'tile-btn', testid: 'tile-fullscreen', onclick: () => actions.toggleFullscreen(this) }, icon('expand'), icon('shrink'));
    this.pinned = false;
    this.label = h('span', { class: 'tile-name', testid: 'tile-name' });
    this.badges = h('span', { class: 'tile-badges' });
    this.quality = h('span', { class: 'quality', testid: 'tile-quality', role: 'img' },
      h('i', {}), h('i', {}), h('i', {}));
    this.el = h('figure', { class: 'tile', testid: 'tile' }, this.video, this.initials,
      h('div', { class: 'tile-actions' }, this.pinButton, this.fullButton),
      h('figcaption', {}, this.label, this.badges, this.quality));
    /** @type {MediaStream | null} */
    this.stream = null;
    this.update(info);
  }

  /** @param {TileInfo} info */
  update(info) {
    this.info = info;
    const d = this.el.dataset;
    d.participant = info.participant;
    d.source = info.source;
    d.local = String(info.local);
    d.track = info.trackId ?? '';
    d.presence = info.presence;
    d.guest = String(Boolean(info.guest));
    d.encoder = String(Boolean(info.encoder));
    d.speaking = String(info.speaking);
    d.quality = info.quality ?? '';
    d.videoMuted = String(info.videoMuted);
    d.micMuted = String(info.micMuted);
    this.el.classList.toggle('speaking', info.speaking);
    this.el.classList.toggle('screen', info.source === 'screen');
    const showVideo = Boolean(info.stream) && !info.videoMuted;
    if (this.stream !== info.stream) {
      this.stream = info.stream;
      this.video.srcObject = info.stream;
      if (info.stream) this.video.play().catch(() => {});
    }
    this.video.hidden = !showVideo;
    this.video.classList.toggle('mirror', info.local && info.source === 'person');
    this.initials.hidden = showVideo;
    this.avatar.textContent = initialsOf(info.name);
    let name = info.name;
    if (info.local) name = t('call.tile.you', { name });
    if (info.source === 'screen') name = t('call.tile.screen_of', { name: info.name });
    if (info.source === 'camera2') name = t('call.tile.camera2_of', { name: info.name });
    this.label.textContent = name;
    this.shownName = name;
    this.setButtons();
    const badges = [];
    if (info.source === 'person') {
      if (info.host) badges.push(h('span', { class: 'badge host' }, t('call.tile.host')));
      // No account stands behind a guest's name (they typed it): everyone sees that it is one.
      if (info.guest) badges.push(h('span', { class: 'badge guest', testid: 'tile-guest' }, t('call.tile.guest')));
      // A device's picture (the operating field), named by a label a host typed: not a person.
      if (info.encoder) badges.push(h('span', { class: 'badge encoder', testid: 'tile-encoder' }, t('call.tile.encoder')));
      if (info.micMuted) badges.push(h('span', { class: 'badge muted', testid: 'tile-mic-muted', title: t('call.tile.mic_muted') }, t('call.tile.mic_muted')));
      if (info.hand) badges.push(h('span', { class: 'badge hand', testid: 'tile-hand' }, t('call.tile.hand')));
      if (info.presence === 'reconnecting') badges.push(h('span', { class: 'badge warn', testid: 'tile-reconnecting' }, t('call.tile.reconnecting')));
    }
    this.badges.replaceChildren(...badges);
    this.quality.hidden = !info.quality || info.source !== 'person';
    this.quality.dataset.level = info.quality ?? '';
    this.quality.setAttribute('aria-label', info.quality ? t(`call.quality.${info.quality}`) : '');
    this.quality.title = info.quality ? t(`call.quality.${info.quality}`) : '';
  }

  /** Marks this tile as the viewer's pinned one (or not). @param {boolean} pinned */
  setPinned(pinned) {
    if (this.pinned === pinned) return;
    this.pinned = pinned;
    this.setButtons();
  }

  /** Whether this tile is the page's full-screen element. */
  get fullscreen() {
    return document.fullscreenElement === this.el;
  }

  /** The buttons' state and names (the name says whose tile, for screen readers). */
  setButtons() {
    const name = this.shownName ?? '';
    this.el.dataset.pinned = String(this.pinned);
    this.pinButton.setAttribute('aria-pressed', String(this.pinned));
    const pinText = t(this.pinned ? 'call.tile.unpin' : 'call.tile.pin', { name });
    this.pinButton.setAttribute('aria-label', pinText);
    this.pinButton.title = pinText;
    const full = this.fullscreen;
    this.el.dataset.fullscreen = String(full);
    this.fullButton.setAttribute('aria-pressed', String(full));
    const fullText = full ? t('call.tile.exit_fullscreen') : t('call.tile.fullscreen', { name });
    this.fullButton.setAttribute('aria-label', fullText);
    this.fullButton.title = fullText;
  }
}
