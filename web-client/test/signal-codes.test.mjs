// Every error code the signaling protocol names (docs/protocol.md: the table of §8, the media
// errors of §11 and the recorder's codes of §12) has a text in both call catalogues, so the
// call never shows a server's English message to a Chinese user (issue 14). The protocol
// document is the list: a code added to the server without it fails the protocol's own review,
// and a code added to it without a text fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const protocol = readFileSync(`${root}docs/protocol.md`, 'utf8');
const catalogue = (/** @type {string} */ lang) => JSON.parse(readFileSync(`${root}web-client/i18n/call.${lang}.json`, 'utf8'));

/** The codes of a section, from `start` to the next `## ` heading. */
function section(/** @type {string} */ start) {
  const from = protocol.indexOf(start);
  assert.ok(from >= 0, `protocol.md has "${start}"`);
  const next = protocol.indexOf('\n## ', from + start.length);
  return protocol.slice(from, next < 0 ? undefined : next);
}

function documentedCodes() {
  const codes = new Set();
  // §8: the first column of the table.
  for (const m of section('## 8. Error codes').matchAll(/^\| `([a-z_]+)` \|/gm)) codes.add(m[1]);
  // §11: "Error codes: `a`, `b`, …" up to the end of that paragraph.
  const media = section('## 11. Media');
  const list = media.slice(media.indexOf('Error codes:')).split(/\n(?!\s)/)[0];
  for (const m of list.matchAll(/`([a-z_]+)`/g)) codes.add(m[1]);
  // §12: the recorder's codes an answer can carry.
  const rec = section('## 12. Recording');
  const recList = rec.slice(rec.indexOf("the answer is `error` with the recorder's code")).split('\n\n')[0];
  for (const m of recList.matchAll(/`([a-z_]+)`/g)) codes.add(m[1]);
  codes.delete('error');
  return [...codes].sort();
}

test('the protocol names the codes this test reads', () => {
  const codes = documentedCodes();
  for (const c of ['hello_timeout', 'room_full', 'media_not_ready', 'invalid_sdp', 'disk_full', 'recording_error']) {
    assert.ok(codes.includes(c), `${c} in ${codes.join(' ')}`);
  }
});

for (const lang of ['zh-CN', 'en']) {
  test(`every signaling error code has a ${lang} text`, () => {
    const cat = catalogue(lang);
    const missing = documentedCodes().filter((c) => typeof cat[`call.signal.${c}`] !== 'string' || !cat[`call.signal.${c}`].trim());
    assert.deepEqual(missing, []);
  });
}
