// A CSV file as Excel opens it (RFC 4180; pure, web-client/test/csv.test.mjs): UTF-8 with a
// byte-order mark (without it Excel reads UTF-8 as the local code page and Chinese turns to
// mojibake), CRLF line ends, fields quoted when they hold a quote, a comma or a line break.
// A field that starts like a formula (= + - @, a tab or a carriage return) gets a leading
// apostrophe, so that a name someone typed is never run as a formula by the spreadsheet (what
// OWASP calls CSV injection).

export const BOM = '\uFEFF';

/** One field, quoted and defused as needed. @param {unknown} value */
export function csvField(value) {
  let s = value == null ? '' : String(value);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The whole file's text: the BOM, then one CRLF-ended line per row. @param {unknown[][]} rows */
export function toCsv(rows) {
  return BOM + rows.map((r) => `${r.map(csvField).join(',')}\r\n`).join('');
}
