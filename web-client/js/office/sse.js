// Server-sent events as text (the HTML standard's "event stream interpretation"), for the
// office's push channel (events.js): GET /v1/events needs the session token in a header, so it
// is read with fetch, not EventSource, and this module does the parsing EventSource would do.
// Pure functions over strings, no DOM and no I/O: node unit tests pin them
// (web-client/test/sse.test.mjs).

/**
 * One dispatched event. `event` is 'message' when the block named none; `data` is its data
 * lines joined with "\n"; `id` and `retry` are null when the block did not set them.
 * @typedef {{ event: string, data: string, id: string | null, retry: number | null }} SseEvent
 */

/**
 * Splits buffered stream text into complete blocks (each ended by a blank line) and the
 * unfinished rest, to be kept and prefixed to the next chunk. Lines may end in CRLF, LF or CR.
 * @param {string} buffer
 * @returns {{ blocks: string[], rest: string }}
 */
export function takeBlocks(buffer) {
  // A CR at the very end may be the first half of a CRLF split across two reads. After text,
  // read as a line end now, the LF after it would be a blank line that ends the block early:
  // keep it for the next read (no block can end there anyway). After a line end it makes a
  // blank line either way, and an LF after it only adds an empty block.
  const held = /[^\r\n]\r$/.test(buffer) ? '\r' : '';
  const text = (held ? buffer.slice(0, -1) : buffer).replace(/\r\n?/g, '\n');
  const parts = text.split('\n\n');
  const rest = (parts.pop() ?? '') + held;
  return { blocks: parts, rest };
}

/**
 * The event of one block (its lines, without the blank line that ended it), or null when it
 * dispatches none: only comments (the server's keep-alive lines start with ':'), or no data.
 * Unknown fields are ignored; one space after the colon is not part of the value.
 * @param {string} block
 * @returns {SseEvent | null}
 */
export function parseBlock(block) {
  let event = '';
  let data = '';
  /** @type {string | null} */
  let id = null;
  /** @type {number | null} */
  let retry = null;
  for (const line of block.split(/\r\n|\r|\n/)) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data += `${value}\n`;
    else if (field === 'id' && !value.includes('\0')) id = value;
    else if (field === 'retry' && /^\d+$/.test(value)) retry = Number(value);
  }
  // The standard: an empty data buffer dispatches nothing; the last line feed is dropped.
  if (data === '') return null;
  return { event: event || 'message', data: data.slice(0, -1), id, retry };
}

/**
 * The complete events in `buffer`, and the rest to keep for the next chunk.
 * @param {string} buffer
 * @returns {{ events: SseEvent[], rest: string }}
 */
export function takeEvents(buffer) {
  const { blocks, rest } = takeBlocks(buffer);
  /** @type {SseEvent[]} */
  const events = [];
  for (const b of blocks) {
    const e = parseBlock(b);
    if (e) events.push(e);
  }
  return { events, rest };
}
