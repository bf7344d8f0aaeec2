// A guest's page (js/guest/session.js): what it keeps after the link is used, when a kept
// session goes on, and what its last page says for each way the call ends.
//   node --test web-client/test/*.test.mjs   (scripts/e2e.sh runs it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FINAL } from '../js/call/state.js';
import { LINK_GONE, continues, endingOf, parseSession } from '../js/guest/session.js';

const WEB = fileURLToPath(new URL('..', import.meta.url));
/** @param {string} name @returns {Promise<Record<string, string>>} */
const catalogue = async (name) => JSON.parse(await readFile(join(WEB, 'i18n', name), 'utf8'));

const VIEW = { id: 'c1', kind: 'consultation', status: 'live', start: '2026-12-06T08:00:00Z', duration_minutes: 30, name: '王教授', expires_at: '2026-12-07T08:00:00Z' };
const KEPT = { link: 'link.token', token: 'guest.token', expires_at: '2026-12-07T08:00:00Z', consultation: VIEW };

test('a kept session is read back, and anything else is none', () => {
  assert.deepEqual(parseSession(JSON.stringify(KEPT)), KEPT);
  assert.deepEqual(parseSession(JSON.stringify({ ...KEPT, done: 'left' })), { ...KEPT, done: 'left' });
  assert.equal(parseSession(JSON.stringify({ ...KEPT, done: 5 }))?.done, undefined, 'a done that is not a phase is dropped');
  for (const bad of [null, '', 'not json', 'null', '[]', '{}', JSON.stringify({ ...KEPT, token: '' }), JSON.stringify({ ...KEPT, consultation: null }),
    JSON.stringify({ ...KEPT, consultation: { ...VIEW, id: 7 } }), JSON.stringify({ ...KEPT, link: undefined })]) {
    assert.equal(parseSession(bad), null, String(bad));
  }
});

test('a kept session goes on for a reload (no link) and for its own link, not for another link', () => {
  const s = parseSession(JSON.stringify(KEPT));
  assert.equal(continues(s, null), true);
  assert.equal(continues(s, 'link.token'), true);
  assert.equal(continues(s, 'another.link'), false);
  assert.equal(continues(null, null), false);
  assert.equal(continues(null, 'link.token'), false);
});

test('the last page: ended and left thank the guest; a withdrawn link is named as the reason', () => {
  assert.deepEqual(endingOf('ended', null), { title: 'guest.end.ended', text: null });
  assert.deepEqual(endingOf('left', null), { title: 'guest.end.left', text: null });
  assert.deepEqual(endingOf('left', 'guest_link_revoked'), { title: 'guest.end.left', text: null }, 'they left first: a later withdrawal is no reason');
  assert.deepEqual(endingOf('removed', 'guest_link_revoked'), { title: 'guest.end.other', text: 'error.guest_link_revoked' });
  assert.deepEqual(endingOf('removed', null), { title: 'guest.end.other', text: 'call.final.removed' }, 'a host took them out');
  assert.deepEqual(endingOf('closed', 'guest_link_expired'), { title: 'guest.end.other', text: 'error.guest_link_expired' });
  assert.deepEqual(endingOf('declined', null), { title: 'guest.end.other', text: 'call.final.declined' });
});

test('every text the last page and the link refusals may show is in both languages', async () => {
  for (const lang of ['zh-CN', 'en']) {
    const cat = { ...await catalogue(`${lang}.json`), ...await catalogue(`call.${lang}.json`) };
    const keys = new Set(['guest.thanks', 'error.guest_no_link', 'error.guest_over', 'error.guest_name_required', ...LINK_GONE.map((c) => `error.${c}`)]);
    for (const phase of FINAL) {
      for (const problem of [null, ...LINK_GONE]) {
        const e = endingOf(phase, problem);
        keys.add(e.title);
        if (e.text) keys.add(e.text);
      }
    }
    assert.deepEqual([...keys].filter((k) => !cat[k]), [], lang);
  }
});
