// Signed opinions on the detail page and the report (docs/api.md, "Signatures, checked"; issue
// 15): who signed, when, and the signature's fingerprint, the words a printed report carries;
// and the report's "verify signatures", which asks the server (GET …/verify) whether each
// signature still holds over what is shown, and says so per opinion. The words are verdicts.js.
import { api } from '../api.js';
import { errorBox, h } from '../dom.js';
import { fmtTime, label, t } from '../i18n.js';
import { nameOf } from './people.js';
import { fingerprintText, overall, verdictOf } from './verdicts.js';

/** @typedef {import('./people.js').Consultation} Consultation */
/** @typedef {import('./people.js').Opinion} Opinion */
/** @typedef {import('./verdicts.js').Verification} Verification */

/**
 * "电子签名：张医生 · 2026-12-06 14:03 · 指纹 ab12 cd34 ef56 7890", or null for an opinion not
 * signed, or signed before signatures existed (its time is in the opinion's header already).
 * @param {Opinion} o @param {string} [testid]
 */
export function signatureLine(o, testid = 'opinion-signature') {
  const s = o.signature;
  if (!s || !o.signed_at) return null;
  return h('p', { class: 'signature small', testid, 'data-fingerprint': s.fingerprint, 'data-key': s.key_id },
    t('signature.line', { name: s.signer_name || nameOf(o.author), time: fmtTime(o.signed_at), fingerprint: fingerprintText(s.fingerprint) }));
}

/**
 * The report's check of its signatures: a button and the place its answer goes. The answer
 * also marks each shown opinion (data-testid report-opinion, data-author) with its verdict.
 * @param {Consultation} c @param {() => HTMLElement | null} scope where the shown opinions are
 */
export function verifyControls(c, scope) {
  const result = h('div', { class: 'verify-result', testid: 'verify-result', 'aria-live': 'polite', hidden: true });
  const button = h('button', { type: 'button', class: 'ghost', testid: 'verify' }, t('verify.button'));
  button.addEventListener('click', async () => {
    button.disabled = true;
    result.hidden = false;
    result.className = 'verify-result';
    delete result.dataset.outcome;
    result.replaceChildren(h('p', { class: 'muted' }, t('verify.checking')));
    try {
      /** @type {Verification} */
      const v = await api('GET', `/v1/consultations/${encodeURIComponent(c.id)}/verify`);
      show(result, v, c, scope());
    } catch (e) {
      result.replaceChildren(errorBox(e, 'verify-error'));
    } finally {
      button.disabled = false;
    }
  });
  return { button, result };
}

/**
 * Writes the verification into `result`: one line in a word, then each signed opinion's
 * verdict; and puts each verdict on the opinion it is about.
 * @param {HTMLElement} result @param {Verification} v @param {Consultation} c @param {HTMLElement | null} scope
 */
function show(result, v, c, scope) {
  const word = overall(v);
  result.dataset.outcome = word;
  result.dataset.valid = String(v.valid);
  result.className = `verify-result ${word === 'valid' ? 'ok' : word === 'none' ? 'muted' : 'error'}`;
  const headline = word === 'valid' ? t('verify.all_valid', { n: v.signed }) : t(word === 'none' ? 'verify.none' : 'verify.failed');
  const signed = v.opinions.filter((o) => o.signed_at);
  result.replaceChildren(
    h('p', { testid: 'verify-headline' }, h('strong', {}, headline)),
    // replaceChildren() would write `false` as text: '' writes nothing.
    signed.length > 0 ? h('ul', { class: 'verdicts' }, signed.map((o) => h('li', { testid: 'verify-opinion', 'data-author': o.author, 'data-verdict': o.verdict },
      t('verify.opinion_line', { name: nameOf(o.author), verdict: label('verify.verdict', o.verdict) }),
      o.fingerprint && h('span', { class: 'muted' }, ` · ${fingerprintText(o.fingerprint)}`)))) : '',
    h('p', { class: 'small muted' }, t('verify.checked_at', { time: fmtTime(new Date()) })));
  for (const el of scope?.querySelectorAll('[data-testid="report-opinion"]') ?? []) {
    const box = /** @type {HTMLElement} */ (el);
    const o = c.opinions.find((x) => x.author === box.dataset.author);
    const verdict = o ? verdictOf(v, o) : null;
    box.querySelector('.verdict')?.remove();
    if (!verdict) continue;
    box.dataset.verdict = verdict;
    box.append(h('p', { class: `verdict small verdict-${verdict}`, testid: 'report-opinion-verdict' }, label('verify.verdict', verdict)));
  }
}
