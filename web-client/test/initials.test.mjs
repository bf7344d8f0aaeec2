// The avatar text of a tile without video (js/call/initials.js) under plain node.
//   node --test web-client/test/*.test.mjs   (scripts/e2e.sh runs it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialsOf } from '../js/call/initials.js';

test('a Chinese name shows the surname, one character', () => {
  assert.equal(initialsOf('陈明'), '陈');
  assert.equal(initialsOf('王小二'), '王');
  assert.equal(initialsOf('陈医生 (东县)'), '陈');
  assert.equal(initialsOf('张神内 主任医师'), '张');
  assert.equal(initialsOf('刘医生（西县）'), '刘');
});

test('a compound surname keeps both characters when a given name follows', () => {
  assert.equal(initialsOf('欧阳娜娜'), '欧阳');
  assert.equal(initialsOf('诸葛亮'), '诸葛');
  // Two characters only: 欧 is the surname and 阳 the given name.
  assert.equal(initialsOf('欧阳'), '欧');
});

test('a Latin name shows the initials of the first and last words', () => {
  assert.equal(initialsOf('Jane Doe'), 'JD');
  assert.equal(initialsOf('jane q. doe'), 'JD');
  assert.equal(initialsOf('admin'), 'A');
  assert.equal(initialsOf('Émile Zola (Paris)'), 'ÉZ');
});

test('a name with a Latin part and a Chinese part: the Chinese surname', () => {
  assert.equal(initialsOf('Dr 李心内'), '李');
});

test('nothing to show is a question mark', () => {
  assert.equal(initialsOf(''), '?');
  assert.equal(initialsOf('  (东县) '), '?');
  assert.equal(initialsOf(/** @type {any} */ (null)), '?');
});
