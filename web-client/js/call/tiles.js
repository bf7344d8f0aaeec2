// The stage: one tile per participant (camera or initials), one per extra video (a second
// camera, a screen share), laid out as a grid or as one large view with thumbnails. Tiles
// and their <video> elements live as long as what they show: a layout change moves them, it
// never recreates them (a recreated video would flash black and restart decoding).
import { t } from '../i18n.js';
import { h, videoEl } from './dom.js';

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
 * @property {string} presence
 * @property {string | null} quality
 * @property {boolean} speaking
 */

export class Tile {
  /** @param {TileInfo} info */
  constructor(info) {
    this.key = info.key;
    this.video = videoEl('tile-video');
    this.initials = h('div', { class: 'initials', 'aria-hidden': 'true' });
    this.label = h('span', { class: 'tile-name', testid: 'tile-name' });
    this.badges = h('span', { class: 'tile-badges' });
    this.quality = h('span', { class: 'quality', testid: 'tile-quality', role: 'img' },
      h('i', {}), h('i', {}), h('i', {}));
    this.el = h('figure', { class: 'tile', testid: 'tile' }, this.video, this.initials,
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
    this.initials.textContent = initialsOf(info.name);
    let name = info.name;
    if (info.local) name = t('call.tile.you', { name });
    if (info.source === 'screen') name = t('call.tile.screen_of', { name: info.name });
    if (info.source === 'camera2') name = t('call.tile.camera2_of', { name: info.name });
    this.label.textContent = name;
    const badges = [];
    if (info.source === 'person') {
      if (info.host) badges.push(h('span', { class: 'badge host' }, t('call.tile.host')));
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
}

/** Up to two letters of a name for a tile without video (CJK names: the last two characters). */
function initialsOf(/** @type {string} */ name) {
  const n = (name || '?').replace(/\(.*\)|（.*）/g, '').trim();
  if (/[\u3400-\u9fff]/.test(n)) return [...n.replace(/\s.*$/, '')].slice(0, 2).join('');
  return n.split(/\s+/).map((w) => w[0] ?? '').join('').slice(0, 2).toUpperCase();
}
