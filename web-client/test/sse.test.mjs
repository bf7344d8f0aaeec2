// The server-sent events parser (js/office/sse.js) under plain node: no browser, no server.
//   node --test web-client/test/*.test.mjs   (scripts/e2e.sh runs it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBlock, takeBlocks, takeEvents } from '../js/office/sse.js';

/** Feeds `chunks` one after the other as a reader would; returns every event dispatched. @param {string[]} chunks */
function feed(chunks) {
  const events = [];
  let rest = '';
  for (const c of chunks) {
    const got = takeEvents(rest + c);
    rest = got.rest;
    events.push(...got.events);
  }
  return { events, rest };
}

// What GET /v1/events sends (axum's Sse): event and data lines, a blank line after each.
const STREAM = 'event: ready\ndata: {}\n\n'
  + ':\n\n'
  + 'event: consultation\ndata: {"id":"c1","action":"assign","status":"live","urgency":"emergency","version":3,"specialists":["u1"]}\n\n'
  + 'event: resync\ndata: {"missed":4}\n\n';

test('the server\'s stream: ready, a change, a resync; the keep-alive comment dispatches nothing', () => {
  const { events, rest } = feed([STREAM]);
  assert.deepEqual(events.map((e) => e.event), ['ready', 'consultation', 'resync']);
  assert.equal(events[0].data, '{}');
  assert.equal(JSON.parse(events[1].data).id, 'c1');
  assert.deepEqual(JSON.parse(events[2].data), { missed: 4 });
  assert.equal(rest, '');
});

test('the same events whatever the chunks: one character at a time, or cut inside a line', () => {
  const whole = feed([STREAM]).events;
  assert.deepEqual(feed([...STREAM]).events, whole);
  for (const at of [1, 7, 13, 14, 15, 40, STREAM.length - 1]) {
    assert.deepEqual(feed([STREAM.slice(0, at), STREAM.slice(at)]).events, whole, `cut at ${at}`);
  }
});

test('an unfinished block waits for its blank line', () => {
  const { events, rest } = feed(['event: ready\ndata: {}\n']);
  assert.deepEqual(events, []);
  assert.equal(rest, 'event: ready\ndata: {}\n');
  assert.equal(feed(['event: ready\ndata: {}\n', '\n']).events.length, 1);
});

test('CRLF and CR line ends, also a CRLF cut between two reads', () => {
  const crlf = 'event: ready\r\ndata: {}\r\n\r\n';
  assert.equal(feed([crlf]).events[0].event, 'ready');
  // CR line ends dispatch at once, and an LF that follows the last CR adds nothing.
  assert.equal(feed(['event: ready\rdata: {}\r\r']).events[0].data, '{}');
  assert.equal(feed(['data: a\r\r', '\n', 'data: b\n\n']).events.map((e) => e.data).join(), 'a,b');
  // The CR of the first line end arrives alone: it must not end the block with the LF after it.
  const { events } = feed(['event: ready\r\ndata: {}\r', '\n', '\r\n']);
  assert.deepEqual(events.map((e) => [e.event, e.data]), [['ready', '{}']]);
  // Cut between the two halves of the blank line's CRLF, at every place.
  for (let at = 1; at < crlf.length; at++) {
    assert.deepEqual(feed([crlf.slice(0, at), crlf.slice(at)]).events.map((e) => e.event), ['ready'], `cut at ${at}`);
  }
});

test('several data lines are joined with a line feed; one space after the colon is dropped, not more', () => {
  assert.equal(parseBlock('data: a\ndata:b\ndata:  c')?.data, 'a\nb\n c');
  assert.equal(parseBlock('data')?.data, '', 'a field name alone is an empty value');
  assert.equal(parseBlock('data:')?.data, '');
  assert.equal(parseBlock('data: {"a":"x:y"}')?.data, '{"a":"x:y"}', 'a colon in the value stays');
});

test('a block with no event name is a message; unknown fields are ignored; id and retry are read', () => {
  assert.deepEqual(parseBlock('data: x'), { event: 'message', data: 'x', id: null, retry: null });
  assert.deepEqual(parseBlock('event: consultation\nfoo: bar\nid: 7\nretry: 3000\ndata: x'),
    { event: 'consultation', data: 'x', id: '7', retry: 3000 });
  assert.equal(parseBlock('retry: soon\ndata: x')?.retry, null, 'a retry that is not a number is ignored');
});

test('comments and blocks without data dispatch nothing', () => {
  assert.equal(parseBlock(':'), null);
  assert.equal(parseBlock(': keep-alive'), null);
  assert.equal(parseBlock('event: ready'), null, 'an event with no data line');
  assert.equal(parseBlock(''), null);
  assert.deepEqual(feed([':\n\n:\n\n\n\n']).events, []);
});

test('takeBlocks keeps only the unfinished rest', () => {
  assert.deepEqual(takeBlocks('a\n\nb\n\nc'), { blocks: ['a', 'b'], rest: 'c' });
  assert.deepEqual(takeBlocks(''), { blocks: [], rest: '' });
  assert.deepEqual(takeBlocks('a\r'), { blocks: [], rest: 'a\r' });
});
