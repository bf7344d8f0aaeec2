// Signed opinions' words (js/office/verdicts.js) under plain node: the fingerprint as a
// report prints it, the verification in a word, each opinion's verdict; and the catalogues'
// words for them, and for the audit record of a wrong signing password.
//   node --test web-client/test/*.test.mjs   (scripts/e2e.sh runs it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sentence } from '../js/office/auditlog.js';
import { VERDICTS, fingerprintText, overall, verdictOf } from '../js/office/verdicts.js';

const WEB = fileURLToPath(new URL('..', import.meta.url));
/** @param {string} lang @returns {Promise<Record<string, string>>} */
const catalogue = async (lang) => JSON.parse(await readFile(join(WEB, 'i18n', `${lang}.json`), 'utf8'));

const A = '0195f2b0c3d47e1f8a9b0c1d2e3f4a5b';
const B = '0195f2b1aa017c22b3c4d5e6f7a8b9c0';

test('a fingerprint reads in groups of four', () => {
  assert.equal(fingerprintText('ab12cd34ef567890'), 'ab12 cd34 ef56 7890');
  assert.equal(fingerprintText('AB12CD34EF567890'), 'ab12 cd34 ef56 7890');
  assert.equal(fingerprintText('abc'), 'abc');
  assert.equal(fingerprintText('not hex!'), 'not hex!', 'anything else as it came');
  assert.equal(fingerprintText(null), '');
});

test('the verification in a word', () => {
  const v = (/** @type {number} */ signed, /** @type {boolean} */ valid) => ({ consultation: 'c', signed, valid, opinions: [] });
  assert.equal(overall(v(2, true)), 'valid');
  assert.equal(overall(v(2, false)), 'failed');
  assert.equal(overall(v(0, false)), 'none', 'nothing signed is not a failure');
});

test('each shown opinion gets the verdict of its author and signing time', () => {
  const v = {
    consultation: 'c', signed: 2, valid: false,
    opinions: [
      { author: A, signed_at: '2026-12-06T06:03:09Z', verdict: 'valid' },
      { author: B, signed_at: '2026-12-06T07:00:00Z', verdict: 'invalid' },
    ],
  };
  assert.equal(verdictOf(v, { author: A, signed_at: '2026-12-06T06:03:09Z' }), 'valid');
  assert.equal(verdictOf(v, { author: B, signed_at: '2026-12-06T07:00:00Z' }), 'invalid');
  assert.equal(verdictOf(v, { author: B, signed_at: '2026-12-06T08:00:00Z' }), null, 'a report older than the check');
  assert.equal(verdictOf(v, { author: 'someone else', signed_at: null }), null);
});

test('every verdict and the signing words are in both catalogues', async () => {
  for (const lang of ['zh-CN', 'en']) {
    const cat = await catalogue(lang);
    const keys = [...VERDICTS.map((x) => `verify.verdict.${x}`), 'verify.button', 'verify.all_valid', 'verify.none', 'verify.failed',
      'signature.line', 'sign.title', 'sign.explain', 'sign.password', 'sign.wrong_password', 'sign.too_many', 'error.password_required'];
    assert.deepEqual(keys.filter((k) => !cat[k]), [], lang);
    for (const p of ['{name}', '{time}', '{fingerprint}']) assert.ok(cat['signature.line'].includes(p), `${lang} signature.line lacks ${p}`);
  }
});

test('a wrong signing password reads in the audit trail, in both languages', async () => {
  const rec = { seq: 1, at: '2026-12-06T06:03:09Z', actor: A, action: 'auth.sign_password_failed' };
  /** @param {Record<string, string>} cat @returns {import('../js/office/auditlog.js').Words} */
  const words = (cat) => ({
    t: (key, params = {}) => (cat[key] ?? key).replace(/\{(\w+)\}/g, (m, k) => params[k] ?? m),
    has: (key) => key in cat,
    user: (id) => (id === A ? '赵外科' : null),
    site: () => null,
    status: (s) => s,
  });
  assert.equal(sentence(rec, words(await catalogue('zh-CN'))), '赵外科 签署意见时输入的密码错误');
  assert.equal(sentence(rec, words(await catalogue('en'))), '赵外科 gave a wrong password when signing an opinion');
});
