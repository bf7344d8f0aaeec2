// Several server nodes on one Redis (issue 16), in the browser: a redis-server of the walk's
// own and three nodes on it (the same secret, each its public URL, the others' origins in
// node.cluster_origins). doctor-east's emergency (live at once; doctor-west invited by the
// coordinator) gets its home node from one /join through the API. doctor-east's page is
// loaded from one of the other two nodes, doctor-west's from the third: both pages' sockets go
// to the home (the page's security policy lets them), and each plays the other's video. Then
// the home node is killed (SIGKILL): both pages reconnect by themselves, no reload, no click,
// calling /join again until the room has a new home on a live node (the dead one missed its
// heartbeat and takes no connection, or its lease ran out), where they meet again and each plays the other's video once more. The time from
// the kill to both videos playing again is reported (checks.failover.killToVideoMs), with
// what each page did meanwhile: its /join answers and the sockets it opened.
//
//   node tests/e2e/nodes.test.mjs     (prints a JSON summary; exit code 1 on failure)
//
// Screenshots: tests/e2e/artifacts/screens/nodes-*.png; logs: artifacts/nodes-node<N>.log,
// nodes-redis.log and the pages' nodes-east.log, nodes-west.log.

import { randomBytes } from 'node:crypto';

import {
  apiClient, freePort, launchBrowser, newPage, note, pageErrors, pageLog, runTest, shot, signIn, startRedis, startServer, until,
} from './lib/harness.mjs';
import { callState, joinCall, openCall, precallReady, snapshot, videoPlaying } from './lib/call.mjs';

const T = 'nodes';
const NODES = 3;
/** From the kill, how long both pages may take to play each other's video again. */
const FAILOVER_BOUND_MS = 45000;

/**
 * Notes where a page's /join answers send it (`node.url`) and the signaling sockets it opens
 * (host only: the room token in the address stays out), with what became of each.
 * @param {import('playwright-core').Page} page
 */
function watchNodes(page) {
  /** @type {any[]} */
  const events = [];
  page.on('response', async (r) => {
    const url = new URL(r.url());
    if (r.request().method() !== 'POST' || !/^\/v1\/consultations\/[0-9a-f]{32}\/join$/.test(url.pathname)) return;
    const e = { at: Date.now(), what: 'join', via: url.host, status: r.status(), node: null };
    events.push(e);
    try { e.node = (await r.json())?.node?.url ?? null; } catch { /* no body (the page went on) */ }
  });
  page.on('websocket', (ws) => {
    const url = new URL(ws.url());
    if (url.pathname !== '/v1/rtc') return;
    const e = { at: Date.now(), what: 'socket', host: url.host, frames: 0, error: null, closed: null };
    events.push(e);
    ws.on('framereceived', () => { e.frames++; });
    ws.on('socketerror', (err) => { e.error = String(err); });
    ws.on('close', () => { e.closed = Date.now(); });
  });
  return events;
}

/** A page's events since `t0`, times in ms after it. @param {any[]} events @param {number} t0 */
const since = (events, t0) => events.filter((e) => e.at >= t0).map((e) => ({ ...e, at: e.at - t0, ...(e.closed ? { closed: e.closed - t0 } : {}) }));

/** The last socket a page opened that the server answered (its hello): the call's. @param {any[]} events */
const callSocket = (events) => events.filter((e) => e.what === 'socket' && e.frames > 1).at(-1) ?? null;

/**
 * What a page saw that is not in the call as it should be: its call's state, the nodes its
 * /join answers named, its sockets and what became of them, and what its security policy
 * blocked (room tokens left out).
 * @param {import('playwright-core').Page} page @param {any[]} events
 */
async function whatItSaw(page, events) {
  const blocked = pageLog(page).filter((l) => l.includes('Content Security Policy')).map((l) => l.replace(/token=[^'"\s]+/g, 'token=…'));
  return {
    page: page.url().replace(/#.*/, ''),
    state: await page.getByTestId('call-status').getAttribute('data-state').catch(() => null),
    joins: events.filter((e) => e.what === 'join').map((e) => `${e.status} ${e.node}`),
    sockets: events.filter((e) => e.what === 'socket').map((e) => `${e.host}: ${e.error ?? `${e.frames} frames`}`),
    blockedByPolicy: blocked.length,
    firstBlocked: blocked[0] ?? null,
  };
}

await runTest(T, async (s) => {
  const redis = await s.step('start redis', () => startRedis());

  // Each node's address is its public URL, so it is chosen before the node starts.
  const ports = [];
  while (ports.length < NODES) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  const origins = ports.map((p) => `http://127.0.0.1:${p}`);
  const secret = randomBytes(24).toString('hex');
  const nodes = await s.step('start three nodes on one Redis', async () => {
    const list = [];
    for (let i = 0; i < NODES; i++) {
      const others = origins.filter((_, j) => j !== i);
      const srv = await startServer({
        // The first seeds the demo accounts into the shared store; the others find them there.
        demo: i === 0,
        listen: `127.0.0.1:${ports[i]}`,
        logName: `${T}-node${i + 1}`,
        env: { HUIZHEN_STORE: redis.url, HUIZHEN_JWT_SECRET: secret, HUIZHEN_NODE__PUBLIC_URL: origins[i] },
        // A list: the environment cannot carry one (deploy/huizhen.sample.toml), the file can.
        extraToml: `[node]\ncluster_origins = [${others.map((o) => JSON.stringify(o)).join(', ')}]`,
      });
      if (srv.origin !== origins[i]) throw new Error(`node ${i + 1} runs at ${srv.origin}, not ${origins[i]}`);
      list.push(srv);
    }
    return list;
  });
  s.checks.nodes = origins;

  await s.step('each node\'s page policy (connect-src) names the other nodes', async () => {
    /** @type {Record<string, string>} */
    const csp = {};
    for (const [i, o] of origins.entries()) {
      const policy = (await fetch(`${o}/`)).headers.get('content-security-policy') ?? '';
      const connect = policy.split(';').map((d) => d.trim()).find((d) => d.startsWith('connect-src ')) ?? '';
      const missing = origins.filter((x, j) => j !== i && !connect.split(/\s+/).includes(x));
      if (missing.length) throw new Error(`the pages of ${o} may not connect to ${missing.join(', ')}: ${connect}`);
      csp[o] = connect;
    }
    s.checks.connectSrc = csp;
  });

  const api = apiClient(origins[0]);
  const tok = { doctor: await api.login('doctor-east'), coordinator: await api.login('coordinator') };
  const east = await api.user(tok.coordinator, 'doctor-east');
  const west = await api.user(tok.coordinator, 'doctor-west');

  const id = await s.step('an emergency (live, its requester hosts), doctor-west invited', async () => {
    const c = await api.call(tok.doctor, 'POST', '/v1/consultations', {
      kind: 'consultation', specialty: 'cardiology', urgency: 'emergency', summary: 'E2E: 急性胸痛，多节点。',
    });
    if (c.status !== 'live') throw new Error(`an emergency should be live at once, is ${c.status}`);
    await api.call(tok.coordinator, 'POST', `/v1/consultations/${c.id}/invite`, { participants: [west.id] });
    return c.id;
  });
  s.consultation = id;

  const browser = await launchBrowser({ capture: '320x180' });
  const pageA = await newPage(browser, { name: `${T}-east`, lang: 'zh-CN' });
  const pageB = await newPage(browser, { name: `${T}-west`, lang: 'en' });
  const seenA = watchNodes(pageA);
  const seenB = watchNodes(pageB);
  const pages = /** @type {const} */ ([[pageA, 'doctor-east', seenA, 'east'], [pageB, 'doctor-west', seenB, 'west']]);
  /** Runs `fn`; a failure says what each page saw. @template R @param {() => Promise<R>} fn @returns {Promise<R>} */
  const explained = async (fn) => {
    try {
      return await fn();
    } catch (e) {
      const saw = Object.fromEntries(await Promise.all(pages.map(async ([page, , seen, tag]) => [tag, await whatItSaw(page, seen)])));
      throw new Error(`${/** @type {Error} */ (e).message}; the pages saw: ${JSON.stringify(saw)}`);
    }
  };

  // A room placed by /join keeps its home for one lease (10 s) unless a socket arrives there:
  // both pages are signed in on every node beforehand, so that once the home is known they go
  // straight to the call.
  await s.step('both pages signed in on every node (one store, one secret)', async () => {
    await Promise.all(pages.map(async ([page, user]) => {
      for (const o of origins) {
        await page.goto(`${o}/#/`);
        await signIn(page, o, user);
      }
    }));
  });

  const { h, x, y } = await s.step('the home from one /join; the pages from the two other nodes', async () => {
    const j = await api.call(tok.doctor, 'POST', `/v1/consultations/${id}/join`, {});
    const home = origins.indexOf(j.node?.url);
    if (home < 0) throw new Error(`/join names no node of ours: ${JSON.stringify({ node: j.node, signaling_url: j.signaling_url })}`);
    const ws = `${origins[home].replace('http://', 'ws://')}/v1/rtc`;
    if (j.signaling_url !== ws) throw new Error(`/join's signaling_url is ${j.signaling_url}, not ${ws}`);
    const [a, b] = [...origins.keys()].filter((i) => i !== home);
    note(`home: node${home + 1} ${origins[home]}; doctor-east's page from node${a + 1}, doctor-west's from node${b + 1}`);
    return { h: home, x: a, y: b };
  });
  const hostOf = (/** @type {number} */ i) => new URL(origins[i]).host;

  await s.step('both pages, on the two other nodes, meet in one call on the home', async () => {
    await Promise.all([openCall(pageA, origins[x], id), openCall(pageB, origins[y], id)]);
    await Promise.all([precallReady(pageA), precallReady(pageB)]);
    const [sa, sb] = await explained(() => Promise.all([joinCall(pageA), joinCall(pageB)]));
    if (sa !== 'joined') throw new Error(`the host of an emergency should join at once, got ${sa}`);
    if (sb !== 'joined') throw new Error(`an invited doctor should come straight into a live emergency, got ${sb}`);
    await until('each page to list the other', async () => {
      const [a, b] = await Promise.all([snapshot(pageA), snapshot(pageB)]);
      return a?.participants?.some((p) => p.id === west.id) && b?.participants?.some((p) => p.id === east.id);
    }, 15000, 100);
    // The page that joins second can list the other from its hello alone, its one frame so
    // far, and a socket with one frame is how a precall probe looks: wait for the call's next
    // frames (tracks, offers) before telling the call socket apart. A wait that runs out is
    // reported just below with everything the page saw.
    await until('each page to hold a call socket answered beyond its hello', async () => pages.every(([, , seen]) => callSocket(seen)), 15000, 100).catch(() => {});
    for (const [page, user, seen] of pages) {
      const sock = callSocket(seen);
      if (!sock || sock.host !== hostOf(h)) throw new Error(`${user}'s page (from ${page.url().split('/#')[0]}) holds its call socket on ${sock?.host}, not on the home ${hostOf(h)}: ${JSON.stringify(seen)}`);
    }
    // Still the same home (the room is held there now).
    const again = await api.call(tok.doctor, 'POST', `/v1/consultations/${id}/join`, {});
    if (again.node?.url !== origins[h]) throw new Error(`the home moved from ${origins[h]} to ${again.node?.url} before the kill`);
    s.checks.before = { home: origins[h], eastPage: origins[x], westPage: origins[y] };
  });

  await s.step('each plays the other\'s video', async () => {
    const [aSees, bSees] = await Promise.all([
      videoPlaying(pageA, west.id, { what: 'doctor-west on doctor-east\'s page' }),
      videoPlaying(pageB, east.id, { what: 'doctor-east on doctor-west\'s page' }),
    ]);
    s.checks.media = { eastSees: { frames: aSees.frames, brightness: Math.round(aSees.brightness) }, westSees: { frames: bSees.frames, brightness: Math.round(bSees.brightness) } };
    await shot(pageA, `${T}-east-call`);
    await shot(pageB, `${T}-west-call`);
    // A mark the pages keep unless they are reloaded.
    await Promise.all([pageA, pageB].map((p) => p.evaluate(() => { /** @type {any} */ (window).__e2eSamePage = true; })));
  });

  await s.step('the home node killed: both pages meet again on a new home by themselves', async () => {
    const dead = nodes[h].child;
    const exited = new Promise((r) => dead.once('exit', r));
    const killedAt = Date.now();
    dead.kill('SIGKILL');
    await exited;
    note(`killed node${h + 1} (${origins[h]}, pid ${dead.pid})`);
    const deadline = killedAt + FAILOVER_BOUND_MS;
    /** @param {import('playwright-core').Page} page @param {string} other @param {string} tag @param {string} what */
    const follow = async (page, other, tag, what) => {
      await callState(page, 'reconnecting', deadline);
      const reconnectingMs = Date.now() - killedAt;
      await shot(page, `${T}-${tag}-reconnecting`);
      await callState(page, 'joined', deadline);
      const joinedMs = Date.now() - killedAt;
      const v = await videoPlaying(page, other, { deadlineMs: deadline, what });
      const videoMs = Date.now() - killedAt;
      note(`${tag}: reconnecting after ${reconnectingMs} ms, joined after ${joinedMs} ms, video after ${videoMs} ms`);
      return { reconnectingMs, joinedMs, videoMs, frames: v.frames };
    };
    const [a, b] = await explained(() => Promise.all([
      follow(pageA, west.id, 'east', 'doctor-west on doctor-east\'s page after the failover'),
      follow(pageB, east.id, 'west', 'doctor-east on doctor-west\'s page after the failover'),
    ]));
    const killToVideoMs = Math.max(a.videoMs, b.videoMs);
    note(`kill → both videos playing again: ${killToVideoMs} ms`);

    // Where they met: a live node, the same for both, named by /join on a surviving node.
    const now = await apiClient(origins[x]).call(tok.doctor, 'POST', `/v1/consultations/${id}/join`, {});
    const home2 = origins.indexOf(now.node?.url);
    if (home2 < 0 || home2 === h) throw new Error(`after the kill /join names ${now.node?.url}, not a live node`);
    for (const [page, user, seen] of pages) {
      const sock = callSocket(seen);
      if (!sock || sock.at < killedAt || sock.host !== hostOf(home2)) throw new Error(`${user}'s call socket is on ${sock?.host}, not on the new home ${hostOf(home2)}`);
      if (!(await page.evaluate(() => /** @type {any} */ (window).__e2eSamePage === true))) throw new Error(`${user}'s page was reloaded`);
      const snap = await snapshot(page);
      if (!(snap.reconnects >= 1)) throw new Error(`${user}'s page counted no reconnect: ${snap.reconnects}`);
    }
    const after = (/** @type {any[]} */ seen) => {
      const list = since(seen, killedAt);
      return {
        joins: list.filter((e) => e.what === 'join').length,
        sockets: list.filter((e) => e.what === 'socket').length,
        refused: list.filter((e) => e.what === 'socket' && e.error).length,
        timeline: list,
      };
    };
    s.checks.failover = {
      killed: origins[h],
      newHome: origins[home2],
      killToVideoMs,
      boundMs: FAILOVER_BOUND_MS,
      east: { ...a, reconnects: (await snapshot(pageA)).reconnects, ...after(seenA) },
      west: { ...b, reconnects: (await snapshot(pageB)).reconnects, ...after(seenB) },
    };
    await shot(pageA, `${T}-east-after`);
    await shot(pageB, `${T}-west-after`);
  });

  for (const [page, user] of pages) {
    const errors = pageErrors(page);
    if (errors.length) throw new Error(`uncaught errors on ${user}'s page: ${errors.join(' | ')}`);
  }
});
