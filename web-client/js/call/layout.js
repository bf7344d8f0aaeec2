// How the stage is laid out, as pure functions (no DOM, no i18n, no network) so that they run
// under plain node (web-client/test/layout.test.mjs): which tile is the large one, how many
// columns a grid of tiles needs to use the stage, and which simulcast layer each tile asks the
// server for (protocol.md §11, `set_layer`). view.js applies what they return.

/** @typedef {'off' | 'low' | 'medium' | 'high'} Layer */
/** @typedef {'main' | 'thumb' | 'grid'} Place */

/**
 * What the viewer chose: `auto` is a grid that turns into one large view while someone else
 * shares a screen (imaging is what everyone must read); `grid` and `speaker` stay as chosen.
 * @typedef {'auto' | 'grid' | 'speaker'} ViewMode
 */

/**
 * What the layout needs to know of a tile.
 * @typedef {Object} LayoutTile
 * @property {string} key
 * @property {string} participant
 * @property {'person' | 'camera2' | 'screen'} source
 * @property {boolean} local
 * @property {boolean} video whether it has a stream to show (not initials)
 * @property {boolean} [encoder] an operating-room encoder's picture (WHIP, protocol.md §11)
 */

/**
 * @typedef {Object} Arrangement
 * @property {'grid' | 'speaker'} layout what the stage shows
 * @property {string | null} main the large tile's key (speaker layout)
 * @property {string | null} pinned the viewer's pin, if that tile is still there
 * @property {Record<string, Place>} places every tile's place
 */

/** Lowest to highest: a cap is the lower of two. */
export const LAYERS = /** @type {const} */ (['off', 'low', 'medium', 'high']);

/**
 * Where each tile goes. A pinned tile is the large one whatever the mode (the pin is this
 * viewer's alone); otherwise the speaker layout picks the large one: a screen share first
 * (someone else's before our own), then an encoder's picture, then the active speaker, then
 * the first remote person with video, then anyone.
 * @param {LayoutTile[]} tiles in stage order
 * @param {{ mode: ViewMode, pinned: string | null, speaker: string | null }} view
 * @returns {Arrangement}
 */
export function arrange(tiles, { mode, pinned, speaker }) {
  const pin = pinned && tiles.some((x) => x.key === pinned) ? pinned : null;
  let main = pin;
  if (!main) {
    const remoteScreen = tiles.some((x) => x.source === 'screen' && !x.local);
    if (mode === 'speaker' || (mode === 'auto' && remoteScreen)) main = pickMain(tiles, speaker);
  }
  /** @type {Record<string, Place>} */
  const places = {};
  for (const x of tiles) places[x.key] = main === null ? 'grid' : x.key === main ? 'main' : 'thumb';
  return { layout: main === null ? 'grid' : 'speaker', main, pinned: pin, places };
}

/**
 * The tile the speaker layout shows large, or null without tiles. An encoder's picture (the
 * operating field from a laparoscopy tower or a ceiling camera) is what a teaching session's
 * audience came to see, like shared imaging: it stays large while people talk over it, rather
 * than giving way to every active speaker (the lecturer's camera is a thumbnail then, a pin
 * away). It needs video: an encoder still connecting is no picture.
 * @param {LayoutTile[]} tiles @param {string | null} speaker
 */
export function pickMain(tiles, speaker) {
  const remote = tiles.filter((x) => !x.local);
  const found = remote.find((x) => x.source === 'screen') ?? tiles.find((x) => x.source === 'screen')
    ?? remote.find((x) => x.encoder && x.video && x.source === 'person')
    ?? remote.find((x) => x.participant === speaker && x.source === 'person')
    ?? remote.find((x) => x.video) ?? remote[0] ?? tiles[0];
  return found?.key ?? null;
}

/**
 * The layer a remote video tile asks for: the large view and a full-screen tile need every
 * pixel; a thumbnail the lowest; a grid tile less the more tiles share the stage. Never above
 * the viewer's cap (the quality chooser; `off` is audio only).
 * @param {Place} place
 * @param {{ remoteVideos: number, fullscreen: boolean, cap: Layer }} ctx
 * @returns {Layer}
 */
export function layerFor(place, { remoteVideos, fullscreen, cap }) {
  /** @type {Layer} */
  let want;
  if (fullscreen || place === 'main') want = 'high';
  else if (place === 'thumb') want = 'low';
  else want = remoteVideos <= 2 ? 'high' : remoteVideos <= 6 ? 'medium' : 'low';
  return LAYERS[Math.min(LAYERS.indexOf(want), LAYERS.indexOf(cap))];
}

/**
 * The grid for `n` tiles of one aspect ratio in a `width` × `height` stage with `gap` between
 * them: the columns and rows that make each tile largest. On a tie (the height limits either
 * way) fewer empty cells win, then fewer rows (the eye reads across).
 * @param {number} n
 * @param {number} width
 * @param {number} height
 * @param {{ aspect?: number, gap?: number }} [opts]
 * @returns {{ cols: number, rows: number, tileWidth: number, tileHeight: number }}
 */
export function gridShape(n, width, height, { aspect = 16 / 9, gap = 8 } = {}) {
  const count = Math.max(1, Math.floor(n));
  let best = { cols: 1, rows: count, tileWidth: -1, tileHeight: 0 };
  for (let cols = 1; cols <= count; cols++) {
    const rows = Math.ceil(count / cols);
    const cellW = (width - (cols - 1) * gap) / cols;
    const cellH = (height - (rows - 1) * gap) / rows;
    const tileWidth = Math.max(0, Math.min(cellW, cellH * aspect));
    const better = tileWidth > best.tileWidth + 0.5
      || (Math.abs(tileWidth - best.tileWidth) <= 0.5 && (cols * rows - count < best.cols * best.rows - count
        || (cols * rows - count === best.cols * best.rows - count && rows < best.rows)));
    if (better) best = { cols, rows, tileWidth, tileHeight: tileWidth / aspect };
  }
  return best;
}
