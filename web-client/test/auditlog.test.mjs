// The audit trail's sentences and export (js/office/auditlog.js) under plain node, with the
// real catalogues; and every action the server writes (read from signaling/src) has a label
// and a sentence in both languages.
//   node --test web-client/test/*.test.mjs   (scripts/e2e.sh runs it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { actorName, collect, csvRows, detailText, sentence, shortRef, stamp, targetName } from '../js/office/auditlog.js';
import { AUDIT_ACTIONS } from '../js/office/enums.js';

const WEB = fileURLToPath(new URL('..', import.meta.url));
const SERVER = fileURLToPath(new URL('../../signaling/src', import.meta.url));

/** @param {string} lang @returns {Promise<Record<string, string>>} */
const catalogue = async (lang) => JSON.parse(await readFile(join(WEB, 'i18n', `${lang}.json`), 'utf8'));

const WANG = '0195f2b0c3d47e1f8a9b0c1d2e3f4a5b';
const CHEN = '0195f2b1aa017c22b3c4d5e6f7a8b9c0';
const SITE = '0195f2b2aa017c22b3c4d5e6f7a8b9c1';
const CONSULTATION = '0195f2c4a1b27c3e9d4f5a6b7c8d9e0f';

/** The words of a language, as the page passes them (i18n.js's t and has). @param {Record<string, string>} cat @returns {import('../js/office/auditlog.js').Words} */
function words(cat) {
  return {
    t: (key, params = {}) => (cat[key] ?? key).replace(/\{(\w+)\}/g, (m, k) => params[k] ?? m),
    has: (key) => key in cat,
    user: (id) => ({ [WANG]: '会诊中心 王协调', [CHEN]: '陈医生 (东县)' })[id] ?? null,
    site: (id) => (id === SITE ? '东县人民医院' : null),
    status: (s) => cat[`status.${s}`] ?? s,
  };
}

/** @param {Partial<import('../js/office/auditlog.js').AuditRecord>} r @returns {import('../js/office/auditlog.js').AuditRecord} */
const rec = (r) => ({ seq: 1, at: '2026-12-06T06:03:09Z', actor: WANG, action: 'auth.login', ...r });

test('a scheduling reads as a sentence in Chinese and in English', async () => {
  const r = rec({ action: 'consultation.accept', consultation: CONSULTATION, detail: 'status=scheduled' });
  const zh = words(await catalogue('zh-CN'));
  const en = words(await catalogue('en'));
  assert.equal(sentence(r, zh), '会诊中心 王协调 安排了会诊 #7c8d9e0f');
  assert.equal(sentence(r, en), '会诊中心 王协调 scheduled consultation #7c8d9e0f');
  assert.equal(detailText(r.detail, zh), '状态变为：已排期');
  assert.equal(detailText(r.detail, en), 'Status now: Scheduled');
  assert.equal(detailText('something else', en), 'something else');
  assert.equal(detailText(undefined, en), '');
});

test('actors and subjects are named: users, sites, the system, the command line, unknown names', async () => {
  const en = words(await catalogue('en'));
  assert.equal(actorName(WANG, en), '会诊中心 王协调');
  assert.equal(actorName('system', en), 'System');
  assert.equal(actorName('system:cli', en), 'System (command line)');
  assert.equal(actorName('unknown', en), 'Unknown user');
  assert.equal(actorName('operator-7', en), 'operator-7', 'a CLI-minted token\'s identity, as it is');
  assert.equal(targetName(rec({ action: 'room.admit', target: CHEN }), en), '陈医生 (东县)');
  assert.equal(targetName(rec({ action: 'admin.site_updated', target: SITE }), en), '东县人民医院');
  assert.equal(targetName(rec({ action: 'room.recording_start', target: 'rec1' }), en), 'rec1');
  assert.equal(targetName(rec({ action: 'room.admit', target: 'someone-gone' }), en), 'someone-gone');
  assert.equal(sentence(rec({ action: 'room.admit', target: CHEN, consultation: CONSULTATION }), en), '会诊中心 王协调 let 陈医生 (东县) into consultation #7c8d9e0f');
  assert.equal(sentence(rec({ action: 'admin.user_updated', actor: 'system:cli', target: CHEN }), words(await catalogue('zh-CN'))), '系统（命令行） 修改了用户 陈医生 (东县)');
});

test('a guest (guest-<link id>) reads as a guest with the link\'s short reference, never as the raw id', async () => {
  const en = words(await catalogue('en'));
  const zh = words(await catalogue('zh-CN'));
  const LINK = 'aa0dbfee1a1c4c338283d8e1efd59f32';
  assert.equal(actorName(`guest-${LINK}`, en), 'Guest #efd59f32');
  assert.equal(actorName(`guest-${LINK}`, zh), '访客 #efd59f32');
  assert.equal(actorName('guest-7', en), 'Guest #7');
  assert.equal(actorName('guest-', en), 'guest-', 'not a guest identity: as it is');
  // The guest's arrival and room pass: the guest as actor, the link as target.
  assert.equal(sentence(rec({ action: 'consultation.guest_arrived', actor: `guest-${LINK}`, consultation: CONSULTATION, target: LINK }), en),
    'Guest #efd59f32 came to consultation #7c8d9e0f through guest link #efd59f32');
  assert.equal(sentence(rec({ action: 'consultation.guest_link_create', consultation: CONSULTATION, target: LINK }), zh),
    '会诊中心 王协调 为会诊 #7c8d9e0f 创建了访客链接 #efd59f32');
  assert.equal(targetName(rec({ action: 'consultation.guest_link_revoke', target: LINK }), en), '#efd59f32');
  // A host admitting a guest: the room's target is the guest's identity.
  assert.equal(sentence(rec({ action: 'room.admit', consultation: CONSULTATION, target: `guest-${LINK}` }), en),
    '会诊中心 王协调 let Guest #efd59f32 into consultation #7c8d9e0f');
});

test('an action this client does not know still reads, with or without a consultation', async () => {
  const en = words(await catalogue('en'));
  const zh = words(await catalogue('zh-CN'));
  assert.equal(sentence(rec({ action: 'room.new_thing' }), en), '会诊中心 王协调: room.new_thing');
  assert.equal(sentence(rec({ action: 'room.new_thing', consultation: CONSULTATION }), en), '会诊中心 王协调: room.new_thing (consultation #7c8d9e0f)');
  assert.equal(sentence(rec({ action: 'room.new_thing', consultation: CONSULTATION }), zh), '会诊中心 王协调：room.new_thing（会诊 #7c8d9e0f）');
});

test('every action has a label and a sentence in both catalogues, which use only the parameters given', async () => {
  const params = new Set(['actor', 'consultation', 'target', 'action']);
  for (const lang of ['zh-CN', 'en']) {
    const cat = await catalogue(lang);
    const problems = [];
    for (const a of AUDIT_ACTIONS) {
      if (!cat[`audit.${a}`]) problems.push(`audit.${a} missing`);
      const s = cat[`audit.sentence.${a}`];
      if (!s) { problems.push(`audit.sentence.${a} missing`); continue; }
      if (!s.includes('{actor}')) problems.push(`audit.sentence.${a} does not name who`);
      for (const [, p] of s.matchAll(/\{(\w+)\}/g)) if (!params.has(p)) problems.push(`audit.sentence.${a} uses {${p}}`);
      // A sentence about a consultation names it.
      if (/^(consultation|room|recording)\./.test(a) && !s.includes('{consultation}')) problems.push(`audit.sentence.${a} does not name the consultation`);
    }
    for (const k of ['audit.sentence.other', 'audit.sentence.other_in', 'audit.actor.cli', 'audit.detail.status', 'audit.csv.time', 'audit.csv.actor', 'audit.csv.action', 'audit.csv.sentence', 'audit.csv.consultation', 'audit.csv.target']) {
      if (!cat[k]) problems.push(`${k} missing`);
    }
    assert.deepEqual(problems, [], lang);
  }
});

/** Every .rs file under `dir`, without its test module. @param {string} dir @returns {Promise<{ file: string, text: string }[]>} */
async function rustSources(dir) {
  const out = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...await rustSources(p));
    // The store contract is test code (its records are made up).
    else if (e.name.endsWith('.rs') && e.name !== 'contract.rs') {
      const text = await readFile(p, 'utf8');
      const cut = text.indexOf('#[cfg(test)]');
      out.push({ file: p, text: cut < 0 ? text : text.slice(0, cut) });
    }
  }
  return out;
}

test('the client knows every action the server writes (signaling/src)', async () => {
  const found = new Set();
  for (const { text } of await rustSources(SERVER)) {
    // AuditEntry::new(actor, "auth.login", …)
    for (const [, a] of text.matchAll(/AuditEntry::new\(\s*[^,()]*(?:\([^)]*\))?[^,()]*,\s*"([a-z_]+\.[a-z_]+)"/g)) found.add(a);
    // The room's Output::Audit { action: "admit" | if … { "floor_given" } else { "floor_taken" } }, written as room.<action>.
    // The action may span lines (rustfmt breaks an if/else chain): every string before the
    // `target` field.
    for (const m of text.matchAll(/Output::Audit\s*\{([^]*?)\btarget\b/g)) {
      const from = m[1].search(/\baction\s*:/);
      if (from < 0) continue;
      const rest = m[1].slice(from + 'action'.length);
      const end = rest.search(/\bactor\s*:/);
      const action = end < 0 ? rest : rest.slice(0, end);
      for (const [, a] of action.matchAll(/"([a-z_]+)"/g)) found.add(`room.${a}`);
    }
    // Lifecycle steps: Action::name() and audit_for(&actor, "request", …), written as consultation.<name>.
    const names = /pub fn name\(&self\)[^]*?\n {4}\}\n/.exec(text)?.[0] ?? '';
    for (const [, a] of names.matchAll(/=>\s*"([a-z_]+)"/g)) found.add(`consultation.${a}`);
    for (const [, a] of text.matchAll(/audit_for\(\s*&?\w+,\s*"([a-z_]+)"/g)) found.add(`consultation.${a}`);
  }
  // The scan itself works: it finds each family.
  for (const family of ['auth.', 'admin.', 'consultation.', 'room.', 'recording.']) {
    assert.ok([...found].some((a) => a.startsWith(family)), `no ${family} action found in the server's source: the scan is broken`);
  }
  assert.ok(found.size >= 50, `only ${found.size} actions found in the server's source: the scan is broken`);
  assert.deepEqual([...found].filter((a) => !AUDIT_ACTIONS.includes(a)).sort(), [], 'actions the server writes that enums.js AUDIT_ACTIONS (and the catalogues) lack');
});

test('times are written in Beijing, the same in both languages', () => {
  assert.equal(stamp('2026-12-06T06:03:09Z', 480), '2026-12-06 14:03');
  assert.equal(stamp('2026-12-06T06:03:09.123456789Z', 480, true), '2026-12-06 14:03:09');
  assert.equal(stamp('2026-12-06T20:00:00Z', 480), '2026-12-07 04:00', 'past midnight in Beijing');
  assert.equal(stamp('not a time', 480), 'not a time');
  assert.equal(shortRef(CONSULTATION), '#7c8d9e0f');
  assert.equal(shortRef(undefined), '');
});

test('CSV rows: a header in the user\'s language, then time, actor, code, sentence, consultation, target', async () => {
  const zh = words(await catalogue('zh-CN'));
  const rows = csvRows([
    rec({ action: 'consultation.accept', consultation: CONSULTATION }),
    rec({ seq: 2, actor: 'unknown', action: 'auth.login_failed' }),
    rec({ seq: 3, action: 'room.admit', consultation: CONSULTATION, target: CHEN }),
  ], zh, 480);
  assert.deepEqual(rows[0], ['时间（北京时间）', '操作人', '操作代码', '记录', '会诊编号', '对象']);
  assert.deepEqual(rows[1], ['2026-12-06 14:03:09', '会诊中心 王协调', 'consultation.accept', '会诊中心 王协调 安排了会诊 #7c8d9e0f', CONSULTATION, '']);
  assert.deepEqual(rows[2], ['2026-12-06 14:03:09', '未知用户', 'auth.login_failed', '未知用户 登录失败', '', '']);
  assert.equal(rows[3][5], CHEN, 'the subject by its id');
});

test('collect follows next_before to the end, and stops at the cap', async () => {
  /** 2500 records, seq 2500 down to 1, pages of 1000. @param {number | null} before */
  const fetchPage = async (before) => {
    const top = before ?? 2501;
    const items = [];
    for (let s = top - 1; s >= 1 && items.length < 1000; s--) items.push(rec({ seq: s }));
    return { items, next_before: items.length === 1000 ? items[items.length - 1].seq : null };
  };
  const all = await collect(fetchPage, 10000);
  assert.equal(all.records.length, 2500);
  assert.equal(all.capped, false);
  assert.deepEqual([all.records[0].seq, all.records[2499].seq], [2500, 1]);
  const capped = await collect(fetchPage, 1500);
  assert.equal(capped.records.length, 1500);
  assert.equal(capped.capped, true);
  // Exactly the cap, nothing more to read: not capped.
  const exact = await collect(fetchPage, 2500);
  assert.deepEqual([exact.records.length, exact.capped], [2500, false]);
  // A server that answers with the same page again must not loop.
  let calls = 0;
  const stuck = await collect(async () => { calls++; return { items: [rec({ seq: 5 })], next_before: 5 }; }, 10000);
  assert.ok(calls <= 2 && stuck.records.length <= 2, `a page without progress looped (${calls} calls)`);
});
