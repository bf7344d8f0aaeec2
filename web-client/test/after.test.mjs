// Where the end of a call leads (js/call/after.js) under plain node.
//   node --test web-client/test/*.test.mjs   (scripts/e2e.sh runs it)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { afterCall, detailHref } from '../js/call/after.js';

const c = { id: 'c1', kind: 'consultation', requester: 'doc', specialists: ['lead', 'second'] };

test('a specialist on the consultation goes to their opinion, when it ended and when they left', () => {
  assert.deepEqual(afterCall(c, 'lead', 'ended'), { form: 'opinion', href: '#/c/c1?form=opinion' });
  assert.deepEqual(afterCall(c, 'second', 'left'), { form: 'opinion', href: '#/c/c1?form=opinion' });
  // A case discussion's and a teaching session's specialists write opinions too.
  assert.equal(afterCall({ ...c, kind: 'case_discussion' }, 'lead', 'ended').form, 'opinion');
  assert.equal(afterCall({ ...c, kind: 'teaching' }, 'lead', 'ended').form, 'opinion');
});

test('the requesting doctor goes to the plan once a consultation has ended', () => {
  assert.deepEqual(afterCall(c, 'doc', 'ended'), { form: 'plan', href: '#/c/c1?form=plan' });
  // Left while it goes on: no plan yet (the server takes it only once ended).
  assert.deepEqual(afterCall(c, 'doc', 'left'), { form: null, href: '#/c/c1' });
  // A case discussion or a teaching session has no plan step: the consultation's page.
  assert.deepEqual(afterCall({ ...c, kind: 'case_discussion' }, 'doc', 'ended'), { form: null, href: '#/c/c1' });
  assert.deepEqual(afterCall({ ...c, kind: 'teaching' }, 'doc', 'ended'), { form: null, href: '#/c/c1' });
});

test('anyone else, and any other end, goes to the consultation\'s page', () => {
  assert.deepEqual(afterCall(c, 'guest', 'ended'), { form: null, href: '#/c/c1' });
  assert.deepEqual(afterCall(c, null, 'ended'), { form: null, href: '#/c/c1' });
  for (const phase of ['removed', 'declined', 'replaced', 'refused', 'closed']) {
    assert.deepEqual(afterCall(c, 'lead', phase), { form: null, href: '#/c/c1' }, phase);
    assert.deepEqual(afterCall(c, 'doc', phase), { form: null, href: '#/c/c1' }, phase);
  }
});

test('detailHref', () => {
  assert.equal(detailHref('c9'), '#/c/c9');
  assert.equal(detailHref('c9', 'plan'), '#/c/c9?form=plan');
});
