// Inviting people from the consultation page (issue 14): the coordinator of a teaching session
// (English) opens the invite dialog and chooses the doctors of a site, a person found by name,
// a pasted list of usernames (one unknown, one disabled and one already on the consultation,
// each reported back) and every trainee; removes one and adds them again; sends one `invite`;
// the page and the API show the participants. People already invited are no longer offered;
// a person disabled while the dialog is open is refused by the server and the dialog says so
// in English with the code. The lead specialist (host, English) and the requesting doctor
// (中文) may invite but cannot read the user directory: their dialog says that a coordinator
// must invite. An invited participant and a cancelled consultation have no invite button.
//
//   node tests/e2e/invite.test.mjs          (scripts/e2e.sh installs what it needs first)
//
// Screenshots: tests/e2e/artifacts/screens/invite-*.png. Prints a JSON summary on stdout.

import {
  apiClient, launchBrowser, newPage, pageErrors, runTest, shot, signIn, startServer, until,
} from './lib/harness.mjs';
import { openDetail } from './lib/office.mjs';

const PASSWORD = 'invite-password-1';

/** Waits for `locator`'s text to match `re`; returns the text. */
async function textOf(locator, re, what) {
  return until(what, async () => {
    const text = await locator.innerText().catch(() => '');
    return re.test(text) ? text : false;
  }, 15000, 100);
}

/** Waits until `locator`'s attribute `name` is `want`. */
async function attrIs(locator, name, want, what) {
  return until(`${what} (${name}=${want})`, async () => (await locator.getAttribute(name).catch(() => null)) === want, 15000, 100);
}

/** The usernames (data-username) of every element matching `locator`. */
const usernames = (locator) => locator.evaluateAll((els) => els.map((e) => e.getAttribute('data-username')));

/** Opens the invite dialog on the detail page of `id`; returns its locator. */
async function openInvite(page, id) {
  await openDetail(page, id);
  await page.getByTestId('invite-open').click();
  const dialog = page.getByTestId('invite-dialog');
  await dialog.waitFor();
  return dialog;
}

await runTest('invite', async (s) => {
  const server = await s.step('start the server', () => startServer());
  const { origin } = server;
  const api = apiClient(origin);
  if (!server.adminPassword) throw new Error('the server printed no admin password');
  const tok = {
    admin: await api.login('admin', server.adminPassword),
    coordinator: await api.login('coordinator'),
    doctorEast: await api.login('doctor-east'),
  };
  const user = (name) => api.user(tok.coordinator, name);

  // Set-up through the API: a second doctor at the West County hospital, three students, a
  // disabled trainee; a teaching session requested by doctor-east, scheduled by the coordinator
  // with the cardiologist leading; a cancelled request.
  const { teaching, cancelled, west } = await s.step('accounts and consultations', async () => {
    const sites = (await api.call(tok.coordinator, 'GET', '/v1/sites')).items;
    const west = sites.find((x) => /West County/.test(x.name));
    const township = sites.find((x) => x.level === 'township');
    if (!west || !township) throw new Error(`demo sites missing: ${sites.map((x) => x.name)}`);
    const make = (username, display_name, role, site_id) => api.call(tok.admin, 'POST', '/v1/users', { username, display_name, role, password: PASSWORD, site_id });
    await make('doctor-west-2', '王医生 (西县)', 'doctor', west.id);
    for (const n of [1, 2, 3]) await make(`student-${n}`, `规培学员 ${n}`, 'viewer', township.id);
    const off = await make('trainee-off', '停用学员', 'viewer', township.id);
    await api.call(tok.admin, 'PATCH', `/v1/users/${off.id}`, { disabled: true });
    const cardiologist = await user('cardiologist');
    const teaching = await api.call(tok.doctorEast, 'POST', '/v1/consultations', { kind: 'teaching', specialty: 'cardiology', urgency: 'routine', summary: 'E2E: 心电图判读教学查房' });
    await api.call(tok.coordinator, 'POST', `/v1/consultations/${teaching.id}/accept`, {
      specialists: [cardiologist.id], start: new Date(Date.now() + 2 * 3600e3).toISOString(), duration_minutes: 60,
    });
    const cancelled = await api.call(tok.doctorEast, 'POST', '/v1/consultations', { kind: 'case_discussion', specialty: 'neurology', urgency: 'routine', summary: 'E2E: cancelled' });
    await api.call(tok.coordinator, 'POST', `/v1/consultations/${cancelled.id}/cancel`, { reason: 'E2E: not needed' });
    return { teaching: teaching.id, cancelled: cancelled.id, west };
  });

  const browser = await launchBrowser({ capture: null });
  const coordinator = await newPage(browser, { name: 'invite-coordinator', lang: 'en' });
  const expected = ['doctor-west', 'doctor-west-2', 'neurologist', 'student-1', 'student-2', 'student-3', 'trainee'];

  await s.step('the coordinator (en) opens the dialog', async () => {
    await signIn(coordinator, origin, 'coordinator');
    const dialog = await openInvite(coordinator, teaching);
    await textOf(dialog.getByTestId('invite-title'), /^Invite people$/, 'the dialog title in English');
    await dialog.getByTestId('invite-mode-person').waitFor();
    await attrIs(dialog.getByTestId('invite-count'), 'data-count', '0', 'nobody chosen yet');
    if (!(await dialog.getByTestId('invite-submit').isDisabled())) throw new Error('the send button is enabled with nobody chosen');
  });

  await s.step('by site: the doctors of the West County hospital', async () => {
    const dialog = coordinator.getByTestId('invite-dialog');
    await dialog.getByTestId('invite-mode-site').click();
    await dialog.getByTestId('invite-site').selectOption(west.id);
    const add = dialog.getByTestId('invite-site-add');
    await attrIs(add, 'data-count', '2', 'two doctors at West County');
    await textOf(dialog.getByTestId('invite-site-names'), /刘医生 \(西县\).*王医生 \(西县\)|王医生 \(西县\).*刘医生 \(西县\)/, 'the site\'s doctors named');
    await shot(coordinator, 'invite-by-site');
    await add.click();
    await attrIs(dialog.getByTestId('invite-feedback'), 'data-added', '2', 'two added by site');
    await attrIs(add, 'data-count', '0', 'nobody left to add from the site');
    const chosen = await usernames(dialog.getByTestId('invite-chosen-item'));
    if (chosen.sort().join() !== 'doctor-west,doctor-west-2') throw new Error(`the site added ${chosen}`);
  });

  await s.step('by person: search by name; the lead specialist is not offered', async () => {
    const dialog = coordinator.getByTestId('invite-dialog');
    await dialog.getByTestId('invite-mode-person').click();
    // The cardiologist leads this consultation already.
    await dialog.getByTestId('invite-search').fill('cardiologist');
    await dialog.getByTestId('invite-no-match').waitFor();
    await dialog.getByTestId('invite-search').fill('张神内');
    const match = dialog.locator('[data-testid="invite-match"][data-username="neurologist"]');
    await match.waitFor();
    if ((await dialog.getByTestId('invite-match').count()) !== 1) throw new Error('the search for 张神内 found more than one person');
    await match.getByTestId('invite-person-add').click();
    await attrIs(dialog.getByTestId('invite-count'), 'data-count', '3', 'three chosen');
    await textOf(match.getByTestId('invite-person-add'), /Selected/, 'the match marked as selected');
  });

  await s.step('a pasted list: unknown, disabled and already-invited names are reported', async () => {
    const dialog = coordinator.getByTestId('invite-dialog');
    await dialog.getByTestId('invite-mode-bulk').click();
    await dialog.getByTestId('invite-bulk').fill('student-1, student-2\nStudent-3\nnobody-here\ntrainee-off\ndoctor-east');
    await dialog.getByTestId('invite-bulk-add').click();
    await attrIs(dialog.getByTestId('invite-bulk-found'), 'data-count', '3', 'three students found');
    const unknown = await usernames(dialog.getByTestId('invite-unknown'));
    if (unknown.join() !== 'nobody-here') throw new Error(`unknown names reported: ${unknown}`);
    await textOf(dialog.getByTestId('invite-unknown-block'), /1 unknown username/, 'the unknown name explained');
    const disabled = await usernames(dialog.getByTestId('invite-disabled'));
    if (disabled.join() !== 'trainee-off') throw new Error(`disabled names reported: ${disabled}`);
    const already = await usernames(dialog.getByTestId('invite-already'));
    if (already.join() !== 'doctor-east') throw new Error(`names already on it reported: ${already}`);
    // The unknown name stays in the box, to be corrected.
    const left = await dialog.getByTestId('invite-bulk').inputValue();
    if (left !== 'nobody-here') throw new Error(`the box should keep only the unknown name, has ${JSON.stringify(left)}`);
    await attrIs(dialog.getByTestId('invite-count'), 'data-count', '6', 'six chosen');
    await shot(coordinator, 'invite-pasted-list');
  });

  await s.step('by role: every trainee not chosen yet', async () => {
    const dialog = coordinator.getByTestId('invite-dialog');
    await dialog.getByTestId('invite-mode-role').click();
    await dialog.getByTestId('invite-role').selectOption('viewer');
    // trainee only: the students are chosen already and trainee-off is disabled.
    const add = dialog.getByTestId('invite-role-add');
    await attrIs(add, 'data-count', '1', 'one trainee left to add');
    await add.click();
    await attrIs(dialog.getByTestId('invite-count'), 'data-count', '7', 'seven chosen');
  });

  await s.step('the choice: count and names, one removed and added again', async () => {
    const dialog = coordinator.getByTestId('invite-dialog');
    await dialog.locator('[data-testid="invite-chosen-item"][data-username="student-3"]').getByTestId('invite-remove').click();
    await attrIs(dialog.getByTestId('invite-count'), 'data-count', '6', 'six after removing one');
    await dialog.getByTestId('invite-mode-person').click();
    await dialog.getByTestId('invite-search').fill('student-3');
    await dialog.locator('[data-testid="invite-match"][data-username="student-3"]').getByTestId('invite-person-add').click();
    const count = dialog.getByTestId('invite-count');
    await attrIs(count, 'data-count', '7', 'seven again');
    await textOf(count, /^Selected: 7$/, 'the count in words');
    const chosen = (await usernames(dialog.getByTestId('invite-chosen-item'))).sort();
    if (chosen.join() !== expected.join()) throw new Error(`chosen: ${chosen}`);
    const names = await dialog.getByTestId('invite-chosen').innerText();
    for (const n of ['刘医生 (西县)', '王医生 (西县)', '张神内 主任医师', '规培学员 1', '规培学员 3', '吴学员']) {
      if (!names.includes(n)) throw new Error(`the choice does not name ${n}: ${names}`);
    }
    await textOf(dialog.getByTestId('invite-submit'), /^Invite 7$/, 'the send button counting seven');
    await shot(coordinator, 'invite-choice');
  });

  await s.step('one invite: the page and the API show the participants', async () => {
    await coordinator.getByTestId('invite-submit').click();
    const banner = coordinator.getByTestId('error-banner');
    await until('the dialog to close and the notice to show', async () => (await coordinator.getByTestId('invite-dialog').count()) === 0
      && (await banner.getAttribute('class')) === 'notice', 15000, 100);
    await textOf(banner, /^7 participant\(s\) invited\.$/, 'how many were invited');
    const fact = coordinator.getByTestId('fact-participants');
    const shown = await textOf(fact, /张神内/, 'the participants on the page');
    for (const n of ['刘医生 (西县)', '王医生 (西县)', '张神内 主任医师', '规培学员 1', '规培学员 2', '规培学员 3', '吴学员']) {
      if (!shown.includes(n)) throw new Error(`the page does not list ${n}: ${shown}`);
    }
    const c = await api.call(tok.coordinator, 'GET', `/v1/consultations/${teaching}`);
    const want = (await Promise.all(expected.map(user))).map((u) => u.id).sort();
    if ([...c.participants].sort().join() !== want.join()) throw new Error(`participants through the API: ${c.participants}`);
    await shot(coordinator, 'invite-done');
    s.checks.invited = c.participants.length;
  });

  await s.step('people already invited are not offered again', async () => {
    const dialog = await openInvite(coordinator, teaching);
    await dialog.getByTestId('invite-search').fill('张神内');
    await dialog.getByTestId('invite-no-match').waitFor();
    await dialog.getByTestId('invite-mode-bulk').click();
    await dialog.getByTestId('invite-bulk').fill('student-1');
    await dialog.getByTestId('invite-bulk-add').click();
    await attrIs(dialog.getByTestId('invite-bulk-found'), 'data-count', '0', 'nobody new in the list');
    const already = await usernames(dialog.getByTestId('invite-already'));
    if (already.join() !== 'student-1') throw new Error(`student-1 not reported as already invited: ${already}`);
    await dialog.getByTestId('invite-mode-site').click();
    await dialog.getByTestId('invite-site').selectOption(west.id);
    await attrIs(dialog.getByTestId('invite-site-add'), 'data-count', '0', 'West County has nobody left to invite');
    await dialog.getByTestId('invite-cancel').click();
    await until('the dialog to close', async () => (await coordinator.getByTestId('invite-dialog').count()) === 0, 15000, 100);
  });

  await s.step('a refusal is shown with its translated code', async () => {
    const dialog = await openInvite(coordinator, teaching);
    await dialog.getByTestId('invite-search').fill('doctor-south');
    await dialog.locator('[data-testid="invite-match"][data-username="doctor-south"]').getByTestId('invite-person-add').click();
    await attrIs(dialog.getByTestId('invite-count'), 'data-count', '1', 'doctor-south chosen');
    // Disabled by the administrator while the dialog is open: the server refuses the invite.
    const south = await user('doctor-south');
    await api.call(tok.admin, 'PATCH', `/v1/users/${south.id}`, { disabled: true });
    await dialog.getByTestId('invite-submit').click();
    const err = dialog.getByTestId('invite-error');
    await textOf(err, /^周医生 \(南镇\) does not exist or is disabled\.$/, 'the refusal in English, naming the person');
    await attrIs(err, 'data-code', 'user_not_available', 'the refusal\'s code');
    await shot(coordinator, 'invite-refused');
    const c = await api.call(tok.coordinator, 'GET', `/v1/consultations/${teaching}`);
    if (c.participants.length !== expected.length) throw new Error('a refused invite changed the participants');
    await dialog.getByTestId('invite-close').click();
    await until('the dialog to close', async () => (await coordinator.getByTestId('invite-dialog').count()) === 0, 15000, 100);
  });

  await s.step('no invite button on a cancelled consultation', async () => {
    await openDetail(coordinator, cancelled);
    await coordinator.getByTestId('open-report').waitFor();
    if (await coordinator.getByTestId('invite-open').count()) throw new Error('a cancelled consultation offers to invite');
  });

  await s.step('the lead specialist (host, en) is told a coordinator must invite', async () => {
    const host = await newPage(browser, { name: 'invite-host', lang: 'en' });
    await signIn(host, origin, 'cardiologist');
    const dialog = await openInvite(host, teaching);
    await textOf(dialog.getByTestId('invite-title'), /^Invite people$/, 'the dialog title in English');
    await textOf(dialog.getByTestId('invite-no-directory'), /Only the consultation centre's coordinators can look people up/, 'the message in English');
    await textOf(dialog.getByTestId('invite-coordinator'), /会诊中心 王协调/, 'the coordinator to ask, named');
    if (await dialog.getByTestId('invite-mode-person').count() || await dialog.getByTestId('invite-bulk').count()) throw new Error('the host is offered a directory it cannot read');
    await shot(host, 'invite-host-message');
    await dialog.getByTestId('invite-cancel').click();
    await until('the dialog to close', async () => (await host.getByTestId('invite-dialog').count()) === 0, 15000, 100);
    if (pageErrors(host).length) throw new Error(`uncaught errors on the host's page: ${pageErrors(host).join(' | ')}`);
    await host.close();
  });

  await s.step('the requesting doctor (中文) is told a coordinator must invite', async () => {
    const doctor = await newPage(browser, { name: 'invite-doctor', lang: 'zh-CN' });
    await signIn(doctor, origin, 'doctor-east');
    const dialog = await openInvite(doctor, teaching);
    await textOf(dialog.getByTestId('invite-title'), /^邀请参会人员$/, 'the dialog title in Chinese');
    await textOf(dialog.getByTestId('invite-no-directory'), /只有会诊中心的协调员可以查找人员并发出邀请/, 'the message in Chinese');
    if (await dialog.getByTestId('invite-mode-person').count()) throw new Error('the requester is offered a directory it cannot read');
    await shot(doctor, 'invite-requester-message');
    if (pageErrors(doctor).length) throw new Error(`uncaught errors on the doctor's page: ${pageErrors(doctor).join(' | ')}`);
    await doctor.close();
  });

  await s.step('an invited participant has no invite button', async () => {
    const page = await newPage(browser, { name: 'invite-neurologist', lang: 'zh-CN' });
    await signIn(page, origin, 'neurologist');
    await openDetail(page, teaching);
    await textOf(page.getByTestId('fact-participants'), /张神内/, 'the neurologist listed as a participant');
    if (await page.getByTestId('invite-open').count()) throw new Error('an invited participant is offered to invite');
    await page.close();
  });

  await s.step('no uncaught errors on the coordinator\'s page', async () => {
    const errors = pageErrors(coordinator);
    if (errors.length) throw new Error(`uncaught page errors: ${errors.join(' | ')}`);
  });
});
