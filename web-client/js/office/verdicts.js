// Signed opinions as the report shows them (docs/api.md, "Signatures, checked"; issue 15): the
// signature's fingerprint as a person reads it aloud, and what GET /v1/consultations/{id}/verify
// answered, in a word. Pure: no DOM, no i18n; web-client/test/verdicts.test.mjs.

/** Every verdict the server gives an opinion. */
export const VERDICTS = /** @type {const} */ (['valid', 'invalid', 'unknown_key', 'unsigned']);

/**
 * @typedef {{ key_id: string, algorithm: string, value: string, signer_name: string, fingerprint: string }} Signature
 * @typedef {{ author: string, signed_at: string | null, key_id?: string | null, fingerprint?: string | null, verdict: string }} OpinionVerdict
 * @typedef {{ consultation: string, number?: string | null, signed: number, valid: boolean, opinions: OpinionVerdict[] }} Verification
 */

/**
 * A fingerprint (16 hex digits) in groups of four, "ab12 cd34 ef56 7890": what a printed report
 * shows and someone on the phone compares. Anything else is shown as it came.
 * @param {string | null | undefined} fp
 */
export function fingerprintText(fp) {
  if (!fp) return '';
  return /^[0-9a-f]+$/i.test(fp) ? (fp.toLowerCase().match(/.{1,4}/g) ?? []).join(' ') : fp;
}

/**
 * The verification in a word: 'valid' (something signed, every signature good), 'none'
 * (nothing signed to check) or 'failed' (a signature that does not hold, or a key unknown).
 * @param {Verification} v
 * @returns {'valid' | 'none' | 'failed'}
 */
export function overall(v) {
  if (!v.signed) return 'none';
  return v.valid ? 'valid' : 'failed';
}

/**
 * The verdict of one shown opinion: the verification's entry of the same author and signing
 * time (an author has one opinion; the time guards against a report older than the check).
 * @param {Verification} v @param {{ author: string, signed_at: string | null }} o
 * @returns {string | null}
 */
export function verdictOf(v, o) {
  const same = v.opinions.find((x) => x.author === o.author && (x.signed_at ?? null) === (o.signed_at ?? null));
  return same?.verdict ?? null;
}
