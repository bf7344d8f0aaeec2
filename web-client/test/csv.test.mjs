// The CSV writer (js/office/csv.js) under plain node.
//   node --test web-client/test/*.test.mjs   (scripts/e2e.sh runs it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BOM, csvField, toCsv } from '../js/office/csv.js';

test('a file Excel opens as UTF-8: the BOM first, CRLF after every row', () => {
  const text = toCsv([['时间', '操作人'], ['2026-12-06 14:03:09', '会诊中心 王协调']]);
  assert.equal(text, `${BOM}时间,操作人\r\n2026-12-06 14:03:09,会诊中心 王协调\r\n`);
  assert.deepEqual([...new TextEncoder().encode(text).slice(0, 3)], [0xef, 0xbb, 0xbf]);
  assert.equal(toCsv([]), BOM);
});

test('fields with a quote, a comma or a line break are quoted, quotes doubled', () => {
  assert.equal(csvField('plain'), 'plain');
  assert.equal(csvField('a, b'), '"a, b"');
  assert.equal(csvField('say "hi"'), '"say ""hi"""');
  assert.equal(csvField('two\nlines'), '"two\nlines"');
  assert.equal(csvField('，全角逗号不用引号'), '，全角逗号不用引号');
  assert.equal(csvField(null), '');
  assert.equal(csvField(undefined), '');
  assert.equal(csvField(42), '42');
});

test('a field that starts like a formula is not run by the spreadsheet', () => {
  assert.equal(csvField('=HYPERLINK("http://x")'), '"\'=HYPERLINK(""http://x"")"');
  assert.equal(csvField('+1'), "'+1");
  assert.equal(csvField('-1'), "'-1");
  assert.equal(csvField('@SUM(A1)'), "'@SUM(A1)");
  assert.equal(csvField('\tx'), "'\tx");
  assert.equal(csvField('2026-12-06'), '2026-12-06', 'a date starts with a digit');
});
