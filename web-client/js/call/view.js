// What the call looks like: the stage (tiles in a grid or one large view with thumbnails,
// each asking the server for the layer its size needs; layout.js decides both), the
// participant list with the host's actions, the lobby, and the control bar. Functions of the
// CallRoom they draw.
import { t } from '../i18n.js';
import { h } from './dom.js';
import { Tile } from './tiles.js';
import { arrange, gridShape, layerFor } from './layout.js';
import { recordButton } from './recording.js';

/** @typedef {import('./room.js').CallRoom} CallRoom */
/** @typedef {import('./signaling.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('./room.js').RemoteTrack} RemoteTrack */

/** Sends set_layer where a tile's wish changed (layout.js decides the wish). */
export function applyLayers(/** @type {CallRoom} */ room) {
  if (!room.socket || !room.media) return;
  const cap = /** @type {import('./layout.js').Layer} */ (room.layerCap());
  const remoteVideos = [...room.tiles.values()].filter((x) => x.info?.stream && !x.info.local).length;
  for (const [key, tile] of room.tiles) {
    const trackId = tile.info?.trackId;
    if (!trackId || tile.info?.local) continue;
    const place = room.arrangement.places[key] ?? 'grid';
    const layer = layerFor(place, { remoteVideos, fullscreen: tile.fullscreen, cap });
    tile.el.dataset.layer = layer;
    if (room.layersSent.get(trackId) === layer) continue;
    room.layersSent.set(trackId, layer);
    room.socket.request({ type: 'set_layer', track: trackId, layer }).catch((e) => {
      // An older server without `off`: keep the lowest layer instead.
      if (layer === 'off') room.socket?.request({ type: 'set_layer', track: trackId, layer: 'low' }).catch(() => {});
      else console.warn('[call] set_layer', key, e);
    });
  }
}

/**
 * What the stage shows, one entry per tile: each person (camera or initials), then each
 * extra video (second camera, screen share) as a tile of its own.
 * @returns {import('./tiles.js').TileInfo[]}
 */
export function tileInfos(/** @type {CallRoom} */ room) {
  /** @type {import('./tiles.js').TileInfo[]} */
  const out = [];
  const myId = room.me?.id ?? '';
  const visible = [...room.participants.values()];
  if (room.me && !room.participants.has(myId)) visible.unshift(room.me);
  for (const p of visible) {
    const local = p.id === myId;
    const q = room.quality.get(p.id) ?? null;
    if (local) {
      const cam = room.localTracks.get('cam');
      // An audience member without camera or microphone does not need a tile of their own.
      if (!p.can_publish && room.localTracks.size === 0) continue;
      out.push({ key: p.id, participant: p.id, name: p.name, source: 'person', stream: cam ? room.localStream('cam', cam) : null, trackId: null, local: true, micMuted: room.micMuted || !room.localTracks.has('mic'), videoMuted: room.camMuted || !cam, hand: p.hand_raised, host: p.host, guest: p.guest, presence: p.presence, quality: q, speaking: room.speaker === p.id });
      for (const [name, tr] of room.localTracks) {
        if (name === 'cam' || name === 'mic') continue;
        out.push({ key: `${p.id}/${name}`, participant: p.id, name: p.name, source: name.startsWith('screen') ? 'screen' : 'camera2', stream: room.localStream(name, tr), trackId: null, local: true, micMuted: false, videoMuted: false, hand: false, host: p.host, presence: p.presence, quality: null, speaking: false });
      }
      continue;
    }
    const mine = [...room.tracks.values()].filter((r) => r.participant === p.id);
    const cam = mine.find((r) => r.kind === 'video' && r.source === 'camera');
    const mic = mine.find((r) => r.kind === 'audio');
    // Audience members with nothing to show stay in the list, not on the stage.
    if (!p.can_publish && !mine.length && !p.host) continue;
    // An encoder without audio (a laparoscopy tower sends picture only) has no microphone to
    // call muted.
    const micMuted = mic ? mic.muted : mine.length > 0 && !p.encoder;
    out.push({ key: p.id, participant: p.id, name: p.name, source: 'person', stream: cam ? room.remoteStream(cam) : null, trackId: cam?.id ?? null, local: false, micMuted, videoMuted: !cam || cam.muted || !room.receiving(cam), hand: p.hand_raised, host: p.host, guest: p.guest, encoder: p.encoder, presence: p.presence, quality: q, speaking: room.speaker === p.id });
    for (const r of mine) {
      if (r.kind !== 'video' || r === cam) continue;
      out.push({ key: r.id, participant: p.id, name: p.name, source: r.source === 'screen' ? 'screen' : 'camera2', stream: room.remoteStream(r), trackId: r.id, local: false, micMuted: false, videoMuted: r.muted || !room.receiving(r), hand: false, host: p.host, presence: p.presence, quality: null, speaking: false });
    }
  }
  return out;
}

/**
 * Brings the tiles up to date and places them (layout.js's arrangement): a grid sized to the
 * stage, or one large view with a strip of thumbnails.
 */
export function renderStage(/** @type {CallRoom} */ room) {
  if (room.destroyed) return;
  const infos = tileInfos(room);
  const keys = new Set(infos.map((i) => i.key));
  for (const [key, tile] of room.tiles) {
    if (!keys.has(key)) { tile.video.srcObject = null; tile.el.remove(); room.tiles.delete(key); }
  }
  for (const info of infos) {
    const tile = room.tiles.get(info.key);
    if (tile) tile.update(info); else room.tiles.set(info.key, new Tile(info, room.tileActions));
  }
  const a = arrange(infos.map((i) => ({ key: i.key, participant: i.participant, source: i.source, local: i.local, video: Boolean(i.stream), encoder: Boolean(i.encoder) })),
    { mode: room.layout, pinned: room.pinned, speaker: room.speaker });
  // A pin on a tile that went (its participant left) is forgotten, not revived by a return.
  if (room.pinned && !a.pinned) room.pinned = null;
  const layoutChanged = room.arrangement.layout !== a.layout;
  room.arrangement = a;
  room.stage.dataset.layout = a.layout;
  room.stage.dataset.pinned = a.pinned ?? '';
  room.stage.dataset.count = String(infos.length);
  const tileOf = (/** @type {string} */ key) => /** @type {Tile} */ (room.tiles.get(key));
  for (const [key, tile] of room.tiles) {
    tile.el.dataset.place = a.places[key] ?? 'grid';
    tile.setPinned(a.pinned === key);
  }
  // Moving the full-screen tile in the DOM would drop it out of full screen: the places wait
  // until the viewer leaves full screen (fullscreenchange renders again).
  if (!infos.some((i) => tileOf(i.key).fullscreen)) {
    if (a.main) {
      const others = infos.filter((i) => i.key !== a.main).map((i) => tileOf(i.key).el);
      keepChildren(room.main, [tileOf(a.main).el]);
      keepChildren(room.thumbs, others);
      room.thumbs.hidden = others.length === 0;
    } else {
      keepChildren(room.main, infos.map((i) => tileOf(i.key).el));
      keepChildren(room.thumbs, []);
      room.thumbs.hidden = true;
    }
  }
  room.main.dataset.tiles = String(room.main.childElementCount);
  fitGrid(room);
  if (layoutChanged) room.renderControls();
  room.applyLayers();
  room.renderPeople();
}

/**
 * Sizes the grid to the stage: the column and row count that make the tiles largest (the
 * tiles take their size from these in call.css). Runs on every render and whenever the stage
 * changes size (a ResizeObserver in CallRoom).
 */
export function fitGrid(/** @type {CallRoom} */ room) {
  const n = room.main.childElementCount;
  const { clientWidth: w, clientHeight: hgt } = room.main;
  if (!n || !w || !hgt) return;
  const gap = parseFloat(getComputedStyle(room.main).columnGap) || 0;
  const g = gridShape(n, w, hgt, { gap });
  room.main.style.setProperty('--cols', String(g.cols));
  room.main.style.setProperty('--rows', String(g.rows));
}

/**
 * Puts exactly `els` into `parent`, moving only what is out of place: a video element that
 * stays where it is keeps playing undisturbed.
 * @param {HTMLElement} parent @param {HTMLElement[]} els
 */
export function keepChildren(parent, els) {
  els.forEach((el, i) => {
    if (parent.children[i] !== el) parent.insertBefore(el, parent.children[i] ?? null);
  });
  while (parent.children.length > els.length) parent.lastElementChild?.remove();
  els.forEach((el) => { const v = el.querySelector('video'); if (v && v.srcObject && v.paused) v.play().catch(() => {}); });
}

/** The participant list (with a host's actions), the lobby, and the chat's mode. */
export function renderPeople(/** @type {CallRoom} */ room) {
  const me = room.me;
  const host = Boolean(me?.host);
  // Hosts first, then raised hands (a moderator of a large class must see them), then by name.
  const people = [...room.participants.values()].sort((a, b) => Number(b.host) - Number(a.host)
    || Number(b.hand_raised) - Number(a.hand_raised) || a.name.localeCompare(b.name));
  room.peopleList.replaceChildren(...people.map((p) => {
    const q = room.quality.get(p.id);
    const actions = [];
    if (host && p.id !== me?.id) {
      const hasMic = [...room.tracks.values()].some((r) => r.participant === p.id && r.kind === 'audio' && !r.muted);
      if (hasMic) actions.push(h('button', { class: 'ghost small', testid: 'host-mute', onclick: () => room.hostAction('mute_participant', p.id) }, t('call.host.mute')));
      if (!p.host && (room.teaching || !p.can_publish)) {
        actions.push(p.can_publish
          ? h('button', { class: 'ghost small', testid: 'host-revoke', onclick: () => room.hostAction('set_can_publish', p.id, { allowed: false }) }, t('call.host.revoke'))
          : h('button', { class: 'small', testid: 'host-promote', onclick: () => room.hostAction('set_can_publish', p.id, { allowed: true }) }, t('call.host.promote')));
      }
      if (!p.host) actions.push(h('button', { class: 'ghost small danger-text', testid: 'host-remove', onclick: () => room.confirmRemove(p) }, t('call.host.remove')));
    }
    return h('li', { testid: 'participant', dataset: { participant: p.id, host: String(p.host), guest: String(Boolean(p.guest)), encoder: String(Boolean(p.encoder)), canPublish: String(p.can_publish), hand: String(p.hand_raised), presence: p.presence } },
      h('span', { class: 'grow' }, p.name, p.id === me?.id ? ` ${t('call.people.you')}` : ''),
      p.host && h('span', { class: 'badge host' }, t('call.tile.host')),
      p.guest && h('span', { class: 'badge guest', testid: 'participant-guest' }, t('call.tile.guest')),
      p.encoder && h('span', { class: 'badge encoder', testid: 'participant-encoder' }, t('call.tile.encoder')),
      p.hand_raised && h('span', { class: 'badge hand', testid: 'participant-hand' }, t('call.tile.hand')),
      p.presence === 'reconnecting' && h('span', { class: 'badge warn' }, t('call.tile.reconnecting')),
      q && h('span', { class: 'quality', role: 'img', title: t(`call.quality.${q}`), 'aria-label': t(`call.quality.${q}`), dataset: { level: q } }, h('i', {}), h('i', {}), h('i', {})),
      h('span', { class: 'row-actions' }, actions));
  }));
  room.lobbySection.hidden = !host || room.lobby.size === 0;
  room.lobbySection.dataset.count = String(room.lobby.size);
  room.lobbyAdmitAll.hidden = room.lobby.size < 2;
  room.lobbyList.replaceChildren(...[...room.lobby.values()].map((p) => h('li', { testid: 'lobby-entry', dataset: { participant: p.id, guest: String(Boolean(p.guest)) } },
    h('span', { class: 'grow' }, p.name),
    // A guest typed their name themselves: the host sees that before letting them in.
    p.guest && h('span', { class: 'badge guest', testid: 'lobby-guest' }, t('call.tile.guest')),
    h('button', { class: 'small', testid: 'lobby-admit', onclick: () => room.hostAction('admit', p.id) }, t('call.lobby.admit')),
    h('button', { class: 'ghost small', testid: 'lobby-decline', onclick: () => room.hostAction('decline', p.id) }, t('call.lobby.decline')))));
  const ask = room.asksModerator();
  room.chatTitle.textContent = t(ask ? 'call.chat.qa_title' : 'call.chat.title');
  room.chatInput.placeholder = t(ask ? 'call.chat.qa_placeholder' : 'call.chat.placeholder');
  room.chatInput.setAttribute('aria-label', room.chatInput.placeholder);
  room.chatForm.dataset.mode = ask ? 'qa' : 'room';
}

/** @param {ParticipantInfo} p */
export function confirmRemove(/** @type {CallRoom} */ room, p) {
  const li = room.peopleList.querySelector(`li[data-participant="${CSS.escape(p.id)}"] .row-actions`);
  li?.replaceChildren(
    h('span', { class: 'small' }, t('call.host.remove_confirm', { name: p.name })),
    h('button', { class: 'danger small', testid: 'host-remove-confirm', onclick: () => room.hostAction('remove', p.id) }, t('call.host.remove')),
    h('button', { class: 'ghost small', onclick: () => room.renderPeople() }, t('call.common.cancel')));
}

/** The control bar; only what this participant may do is offered (a trainee gets no microphone). */
export function renderControls(/** @type {CallRoom} */ room) {
  const me = room.me;
  const publish = Boolean(me?.can_publish);
  const mic = room.localTracks.get('mic');
  const cam = room.localTracks.get('cam');
  const sharing = [...room.localTracks.keys()].some((n) => n.startsWith('screen'));
  const extraCams = [...room.localTracks.keys()].filter((n) => /^cam\d+$/.test(n)).length;
  const shown = room.arrangement.layout;
  /** @param {string} testid @param {string} text @param {() => any} fn @param {Record<string, any>} [attrs] */
  const btn = (testid, text, fn, attrs = {}) => h('button', {
    class: 'ctl', testid, ...attrs,
    onclick: () => { Promise.resolve().then(fn).catch((e) => room.say(() => t('call.error.media', { message: String(e?.message ?? e) }), 'error')); },
  }, text);
  const layer = /** @type {HTMLSelectElement} */ (h('select', { testid: 'layer-select', 'aria-label': t('call.layer.label'), onchange: () => { room.layerPref = layer.value; room.layersSent.clear(); room.applyLayers(); } },
    ['auto', 'high', 'medium', 'low', 'off'].map((v) => h('option', { value: v, selected: v === room.layerPref }, t(`call.layer.${v}`)))));
  const end = h('span', { class: 'end-box' });
  const showEnd = () => end.replaceChildren(
    h('span', { class: 'small' }, t('call.ctl.end_confirm')),
    btn('ctl-end-confirm', t('call.ctl.end'), () => room.endForAll(), { class: 'ctl danger' }),
    btn('ctl-end-cancel', t('call.common.cancel'), () => room.renderControls(), { class: 'ctl ghost' }));
  end.append(btn('ctl-end', t('call.ctl.end'), showEnd, { class: 'ctl danger' }));
  // The case material's button sits in the call's head, where it does not widen this bar.
  room.casePanel.renderButton();
  // filter(Boolean) leaves only the elements (TypeScript cannot tell).
  room.controls.replaceChildren(.../** @type {HTMLElement[]} */ ([
    publish && mic && btn('ctl-mic', t(room.micMuted ? 'call.ctl.unmute' : 'call.ctl.mute'), () => room.setMic(!room.micMuted), { 'aria-pressed': String(room.micMuted), dataset: { muted: String(room.micMuted) } }),
    publish && cam && btn('ctl-camera', t(room.camMuted ? 'call.ctl.camera_on' : 'call.ctl.camera_off'), () => room.setCamera(!room.camMuted), { 'aria-pressed': String(room.camMuted), dataset: { off: String(room.camMuted) } }),
    publish && cam && btn('ctl-switch-camera', t('call.ctl.switch_camera'), () => room.switchCamera()),
    publish && btn('ctl-add-camera', t(extraCams ? 'call.ctl.remove_cameras' : 'call.ctl.add_camera'), () => (extraCams ? room.removeCameras() : room.addCamera().then(() => room.renderControls()))),
    publish && navigator.mediaDevices && 'getDisplayMedia' in navigator.mediaDevices && btn('ctl-screen', t(sharing ? 'call.ctl.stop_share' : 'call.ctl.share'), () => room.toggleScreen(), { dataset: { sharing: String(sharing) } }),
    btn('ctl-hand', t(me?.hand_raised ? 'call.ctl.lower_hand' : 'call.ctl.raise_hand'), () => room.toggleHand(), { dataset: { raised: String(Boolean(me?.hand_raised)) } }),
    // The button offers the other layout than the one shown; choosing either drops a pin.
    btn('ctl-layout', t(shown === 'grid' ? 'call.ctl.speaker_view' : 'call.ctl.grid_view'), () => { room.setLayout(shown === 'grid' ? 'speaker' : 'grid'); }, { dataset: { layout: shown } }),
    h('label', { class: 'layer-pick' }, h('span', { class: 'small' }, t('call.layer.label')), layer),
    // Leaving and ending stay together at the end of the bar, on one line of their own if the
    // bar wraps, so that they are always on screen.
    h('span', { class: 'ctl-exit' },
      recordButton(room, btn),
      btn('ctl-leave', t('call.ctl.leave'), () => room.leave(), { class: 'ctl ghost' }),
      me?.host && end),
  ].filter(Boolean)));
}
