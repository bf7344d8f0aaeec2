// A browser that dies without a word (issue 14): the guest's whole Chromium is killed
// (SIGKILL). The host sees "X 已离开" within seconds, not a "重连中" ghost for the 30 s grace:
// either Chrome's network service still closes the socket as the browser dies (then the
// server says 'left' at once), or the socket just drops and the server says it after
// signaling.away_after_secs (5 s; the no-close-frame path is pinned by the signaling test
// a_socket_gone_quiet_is_shown_gone_before_the_grace_ends). The host's page is in Chinese;
// the time from the kill to the note, and whether 'reconnecting' showed first, are reported.
//
//   node tests/e2e/abrupt.test.mjs     (prints a JSON summary; exit code 1 on failure)

import { execFileSync } from 'node:child_process';

import { apiClient, launchBrowser, newPage, runTest, shot, signIn, startServer, until } from './lib/harness.mjs';
import { callState, joinCall, openCall, precallReady, snapshot, toastShown } from './lib/call.mjs';

const T = 'abrupt';

await runTest(T, async (summary) => {
  const srv = await summary.step('start server', () => startServer({ demo: true }));
  const api = apiClient(srv.origin);
  const tok = { host: await api.login('doctor-east'), coordinator: await api.login('coordinator') };
  const guestUser = await api.user(tok.coordinator, 'doctor-west');

  const id = await summary.step('an emergency (live, its requester hosts), a second doctor invited', async () => {
    const c = await api.call(tok.host, 'POST', '/v1/consultations', {
      kind: 'consultation', specialty: 'cardiology', urgency: 'emergency', summary: 'E2E: 急性胸痛。',
    });
    await api.call(tok.coordinator, 'POST', `/v1/consultations/${c.id}/invite`, { participants: [guestUser.id] });
    return c.id;
  });

  const browser = await launchBrowser({ capture: '320x180' });
  const host = await newPage(browser, { name: `${T}-host`, lang: 'zh-CN' });
  // The guest's own browser, marked so that exactly its processes can be killed.
  const TAG = `--huizhen-e2e-tag=${T}-guest-${process.pid}`;
  const guestBrowser = await launchBrowser({ capture: '320x180', args: [TAG] });
  const guest = await newPage(guestBrowser, { name: `${T}-guest`, lang: 'zh-CN' });

  await summary.step('both in the call', async () => {
    await Promise.all([signIn(host, srv.origin, 'doctor-east'), signIn(guest, srv.origin, 'doctor-west')]);
    await openCall(host, srv.origin, id);
    await precallReady(host);
    await joinCall(host);
    await openCall(guest, srv.origin, id);
    await precallReady(guest);
    if ((await joinCall(guest)) === 'lobby') {
      await host.locator(`[data-testid="lobby-entry"][data-participant="${guestUser.id}"]`).getByTestId('lobby-admit').click();
      await callState(guest, 'joined');
    }
    await until('the host to see the guest', async () => (await snapshot(host))?.participants?.some((p) => p.id === guestUser.id));
  });

  await summary.step('the guest\'s browser is killed: the host sees them gone within seconds', async () => {
    const killed = Date.now();
    // The browser dies: no pagehide, no leave, no close frame.
    execFileSync('pkill', ['-KILL', '-f', '--', TAG]);
    // Whether the host saw the guest as reconnecting on the way (Chrome's network service may
    // still close the socket properly as the browser dies, and then 'left' comes at once).
    let reconnecting = null;
    const watch = (async () => {
      while (reconnecting === null) {
        const p = (await snapshot(host).catch(() => null))?.participants?.find((x) => x.id === guestUser.id);
        if (!p) break;
        if (p.presence === 'reconnecting') reconnecting = Date.now() - killed;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const note = await toastShown(host, guestUser.id, 'left', 15000);
    const goneMs = Date.now() - killed;
    await watch;
    if (!note.endsWith('已离开')) throw new Error(`the note should say 已离开: "${note}"`);
    const still = (await snapshot(host))?.participants?.some((p) => p.id === guestUser.id);
    if (still) throw new Error('the guest is still listed after the note');
    await shot(host, `${T}-host-left`);
    // The goal is 5 s (away_after_secs) plus the room's one-second tick: reported. The wait
    // above (15 s) is half the grace, so the old 30 s ghost fails this step.
    summary.checks.killToReconnectingMs = reconnecting;
    summary.checks.killToLeftMs = goneMs;
  });

  await browser.close();
});
