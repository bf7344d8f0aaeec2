// What a tile without video shows of its participant: the surname for a Chinese name (陈 for
// 陈明, as colleagues address each other: 陈医生, 陈主任), the initials for a Latin one. Pure, so
// that it runs under plain node (web-client/test/initials.test.mjs).

/** Two-character surnames: 欧阳明 is 欧阳, not 欧. Only the common ones; others get one character. */
const COMPOUND_SURNAMES = new Set([
  '欧阳', '司马', '上官', '诸葛', '东方', '皇甫', '尉迟', '公孙', '慕容', '长孙', '宇文', '司徒',
  '夏侯', '令狐', '轩辕', '端木', '独孤', '南宫', '西门', '呼延', '闻人', '万俟', '申屠', '澹台',
]);

const HAN = /^\p{Script=Han}/u;

/**
 * The avatar text for a display name. A part in brackets (a site: 陈医生 (东县)) is not the
 * name. The first word that starts with a Chinese character gives the surname (张神内 主任医师
 * → 张); a name of only two characters keeps its first (欧阳 alone may be 欧 + 阳). Otherwise
 * the first letters of the first and last words (Jane Q. Doe → JD). `?` when nothing is left.
 * @param {string} name
 * @returns {string}
 */
export function initialsOf(name) {
  const words = String(name ?? '').replace(/\([^)]*\)|（[^）]*）|\[[^\]]*\]|【[^】]*】/g, ' ').trim().split(/\s+/).filter(Boolean);
  const han = words.find((w) => HAN.test(w));
  if (han) {
    const chars = [...han];
    const two = chars.slice(0, 2).join('');
    return chars.length >= 3 && COMPOUND_SURNAMES.has(two) ? two : chars[0];
  }
  const letters = words.map((w) => w.match(/\p{L}|\p{N}/u)?.[0] ?? '').filter(Boolean);
  if (!letters.length) return '?';
  const picked = letters.length === 1 ? letters : [letters[0], letters[letters.length - 1]];
  return picked.join('').toLocaleUpperCase();
}
