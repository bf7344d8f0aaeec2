// The catalogues' wording and completeness under plain node (no browser): the terms the
// hospital staff asked for (排期, 诊疗方案, 指派专家, the call named by the consultation's kind),
// and every key the call screens use present in both call catalogues.
//   node --test web-client/test/*.test.mjs   (scripts/e2e.sh runs it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KINDS } from '../js/office/enums.js';
import { FINAL } from '../js/call/state.js';

const WEB = fileURLToPath(new URL('..', import.meta.url));
/** @param {string} name */
const catalogue = async (name) => /** @type {Record<string, string>} */ (JSON.parse(await readFile(join(WEB, 'i18n', name), 'utf8')));

test('zh-CN: one term for each thing, the old words gone', async () => {
  const office = await catalogue('zh-CN.json');
  const call = await catalogue('call.zh-CN.json');
  // 排班 is staff rostering; a consultation is 排期. The plan is 诊疗方案 everywhere. A teaching
  // session is 教学查房, not a broadcast. The preferred time is 期望时间.
  const OLD = ['排班', '治疗方案', '加入专家', '教学直播', '希望时间'];
  const found = [];
  for (const [file, cat] of [['zh-CN.json', office], ['call.zh-CN.json', call]]) {
    for (const [key, text] of Object.entries(cat)) for (const word of OLD) if (text.includes(word)) found.push(`${file} ${key}: ${word} in "${text}"`);
  }
  assert.deepEqual(found, []);
  assert.equal(office['nav.desk'], '排期台');
  assert.equal(office['action.assign'], '指派专家');
  assert.equal(office['field.plan'], '诊疗方案');
  assert.equal(office['status.scheduled'], '已排期');
});

test('the call is named by the consultation\'s kind, as the office names the kind', async () => {
  for (const lang of ['zh-CN', 'en']) {
    const office = await catalogue(`${lang}.json`);
    const call = await catalogue(`call.${lang}.json`);
    for (const kind of KINDS) assert.ok(call[`call.title.${kind}`], `call.${lang}.json lacks call.title.${kind}`);
    assert.equal(call['call.title.case_discussion'], office['kind.case_discussion'], lang);
  }
  assert.equal((await catalogue('call.zh-CN.json'))['call.title.teaching'], (await catalogue('zh-CN.json'))['kind.teaching']);
  assert.equal((await catalogue('call.zh-CN.json'))['call.title.teaching'], '教学查房');
});

test('the call catalogues have the same keys, and every key the call screens use', async () => {
  const zh = await catalogue('call.zh-CN.json');
  const en = await catalogue('call.en.json');
  const office = await catalogue('en.json');
  assert.deepEqual(Object.keys(zh).filter((k) => !(k in en)), [], 'in call.zh-CN.json only');
  assert.deepEqual(Object.keys(en).filter((k) => !(k in zh)), [], 'in call.en.json only');
  const dir = join(WEB, 'js/call');
  /** @type {Set<string>} */
  const used = new Set();
  for (const f of await readdir(dir)) {
    const src = await readFile(join(dir, f), 'utf8');
    for (const [, k] of src.matchAll(/'(call\.[\w.]+)'/g)) used.add(k);
  }
  // Keys built from a value: each value the code may build them from.
  for (const s of ['connecting', 'reconnecting', 'lobby', 'joined', ...FINAL]) used.add(`call.state.${s}`);
  for (const s of FINAL) used.add(`call.final.${s}`);
  for (const f of ['opinion', 'plan']) used.add(`call.final.to_${f}`);
  for (const w of ['joined', 'left', 'removed']) used.add(`call.toast.${w}`);
  for (const k of KINDS) used.add(`call.title.${k}`);
  // The call uses a few office strings too (errors by code, through errorText).
  const missing = [...used].filter((k) => !(k in en) && !(k in office));
  assert.deepEqual(missing, []);
});
