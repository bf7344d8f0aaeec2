// A township clinic whose network passes only TCP (issue 17), in the browser: the server's
// built-in TURN relays doctor-west's media over TLS, then over TCP, to doctor-east's emergency.
//
// The network (lib/badnet.mjs). As root: a namespace `hzbad<pid>` joined to the root namespace
// by a veth pair, 10.77.x.1 on the root side, 10.77.x.2 inside. The server listens on 10.77.x.1
// (HTTPS with its self-signed certificate for that address), binds its media socket there, and
// runs TURN there too: UDP, TCP (`turn.listen_tcp`) and TLS (`turn.listen_tls`, the [tls]
// certificate), relays on a small port range of 10.77.x.1. With `media.turn_urls` empty, /join
// hands out turn:10.77.x.1:<udp>?transport=udp, turn:10.77.x.1:<tcp>?transport=tcp and
// turns:10.77.x.1:<tls>?transport=tcp with REST credentials. doctor-west's Chromium starts
// inside the namespace (`ip netns exec`); nftables there drops every UDP datagram in and out
// (loopback aside), so its host candidates and TURN over UDP fail and only TCP leaves: the
// clinic's firewall. doctor-east's Chromium is outside, on a clean link. Both browsers trust the
// server's certificate by the SPKI hash it prints (--ignore-certificate-errors-spki-list), which
// is also what Chromium checks the TURN server's certificate against on turns:.
//
// The walk:
//   1. the premise: doctor-west's page given no ICE servers (its /join answers' ice_servers
//      emptied by the test, nothing else changed) joins doctor-east's emergency; its media
//      connections never connect (host candidates over UDP only), the server gives up on them
//      after media.connect_timeout_secs and says `media_closed` (connect_timeout), no video
//      plays, and the firewall's counters show the UDP it dropped;
//   2. Chromium checks the TURN server's certificate: with the clinic's firewall also refusing
//      TCP to the TURN/TCP port (a network that passes only TLS), a connection of its own given
//      only the turns: URL (and /join's credentials) gathers a relay candidate over TLS in
//      doctor-west's browser, and none in a third Chromium in the clinic without the hash
//      (icecandidateerror 701; the server logs "TURN over TLS: no handshake");
//   3. TURN over TLS, the same firewall: doctor-west rejoins with the ice_servers /join gives;
//      each page plays the other's video and hears the other; doctor-west's selected pairs
//      (getStats, on each of its connections) have a local `relay` candidate whose
//      relayProtocol is `tls`, from the turns: URL; a TCP connection from the namespace to the
//      TURN/TLS port is established; /metrics counts TURN allocations;
//   4. TURN over TCP: the firewall refuses the TLS port instead: doctor-west leaves and rejoins,
//      and the same holds with relayProtocol `tcp` and the turn:…?transport=tcp URL.
// The pages' RTCPeerConnections are reached by an init script of the test that keeps each one
// the page makes (the app itself is not changed); doctor-west's stats are read from them.
//
//   node tests/e2e/clinic.test.mjs       (as root; prints a JSON summary; exit code 1 on failure)
//   bash scripts/e2e.sh clinic
//
// Artifacts: artifacts/clinic-server.log (E2E_SERVER_LOG="info,huizhen=debug" for more), the
// pages' clinic-east.log and clinic-west.log, screenshots artifacts/screens/clinic-*.png.

import { createServer } from 'node:net';

import {
  apiClient, httpRequest, launchBrowser, newPage, note, pageErrors, runTest, shot, signIn, startServer, until,
} from './lib/harness.mjs';
import { audioHeard, callState, joinCall, networkChecked, openCall, precallReady, remoteVideo, snapshot, videoPlaying } from './lib/call.mjs';
import { chromiumInNetns, ensureNft, freeUdpPorts, makeNetns, requireRoot, run } from './lib/badnet.mjs';

const T = 'clinic';
/** UDP ports taken from one free range: the media socket, TURN's UDP listener, then the relays. */
const RELAYS = 16;
/** How long the server may take to give up on a media connection that never comes up (media.connect_timeout_secs is 10). */
const FAIL_BOUND_MS = 30000;
/** From joining, how long the relayed media may take to play. */
const MEDIA_BOUND_MS = 45000;

/** A TCP port free on `ip` right now. @param {string} ip @returns {Promise<number>} */
function freeTcpPort(ip) {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, ip, () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (s.address());
      s.close(() => resolvePort(port));
    });
  });
}

/**
 * Init script: keeps every RTCPeerConnection the page makes in window.__clinic (the app's
 * publish and subscribe connections, and the pre-call screen's TURN probe).
 */
function pcTap() {
  /** @type {any} */
  const w = window;
  if (w.__clinic) return;
  const tap = { pcs: /** @type {RTCPeerConnection[]} */ ([]) };
  w.__clinic = tap;
  const Orig = w.RTCPeerConnection;
  w.RTCPeerConnection = class extends Orig {
    /** @param {any[]} a */
    constructor(...a) {
      super(...a);
      tap.pcs.push(this);
    }
  };
}

/**
 * The page's open RTCPeerConnections (not closed): for each, its state, the ICE servers it was
 * given (URLs only), its selected candidate pair (local and remote candidate) from getStats,
 * and how many candidate pairs of each local type it has, by state.
 * @param {import('playwright-core').Page} page
 */
async function connections(page) {
  return page.evaluate(async () => {
    /** @type {any} */
    const tap = /** @type {any} */ (window).__clinic;
    const out = [];
    for (const pc of tap.pcs) {
      if (pc.connectionState === 'closed') continue;
      const stats = await pc.getStats();
      /** @type {Map<string, any>} */
      const byId = new Map();
      stats.forEach((/** @type {any} */ s) => byId.set(s.id, s));
      const cand = (/** @type {any} */ c) => c && {
        type: c.candidateType, protocol: c.protocol, relayProtocol: c.relayProtocol ?? null, address: c.address ?? c.ip, port: c.port, url: c.url ?? null,
      };
      let selected = null;
      for (const s of byId.values()) {
        if (s.type !== 'transport' || !s.selectedCandidatePairId) continue;
        const p = byId.get(s.selectedCandidatePairId);
        if (p) selected = { state: p.state, nominated: p.nominated, bytesSent: p.bytesSent, bytesReceived: p.bytesReceived, local: cand(byId.get(p.localCandidateId)), remote: cand(byId.get(p.remoteCandidateId)) };
      }
      /** @type {Record<string, Record<string, number>>} */
      const pairs = {};
      for (const s of byId.values()) {
        if (s.type !== 'candidate-pair') continue;
        const l = byId.get(s.localCandidateId);
        const key = l ? `${l.candidateType}${l.relayProtocol ? `/${l.relayProtocol}` : ''}` : '?';
        pairs[key] ??= {};
        pairs[key][s.state] = (pairs[key][s.state] ?? 0) + 1;
      }
      const inbound = [];
      for (const s of byId.values()) if (s.type === 'inbound-rtp') inbound.push({ kind: s.kind, packets: s.packetsReceived ?? 0 });
      out.push({
        connectionState: pc.connectionState,
        iceConnectionState: pc.iceConnectionState,
        iceServers: pc.getConfiguration().iceServers?.flatMap((/** @type {RTCIceServer} */ x) => [x.urls].flat()) ?? [],
        selected,
        pairs,
        inbound,
      });
    }
    return out;
  });
}

/**
 * Gathers candidates in `page` on a connection of its own with only these ICE servers, relays
 * only (iceTransportPolicy 'relay'): the candidates and the ICE servers' errors, once
 * gathering completes (or after 20 s: `complete` false).
 * @param {import('playwright-core').Page} page @param {RTCIceServer[]} iceServers
 */
async function gatherRelay(page, iceServers) {
  return page.evaluate(async (iceServers) => {
    const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: 'relay' });
    pc.createDataChannel('probe');
    /** @type {any[]} */
    const candidates = [];
    /** @type {any[]} */
    const errors = [];
    pc.onicecandidate = (e) => {
      const c = /** @type {any} */ (e.candidate);
      if (c) candidates.push({ type: c.type, protocol: c.protocol, relayProtocol: c.relayProtocol ?? null, address: c.address, url: c.url ?? null });
    };
    pc.onicecandidateerror = (e) => {
      const x = /** @type {RTCPeerConnectionIceErrorEvent} */ (e);
      errors.push({ url: x.url, code: x.errorCode, text: x.errorText });
    };
    const t0 = performance.now();
    const complete = new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), 20000);
      pc.onicegatheringstatechange = () => {
        if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(true); }
      };
    });
    await pc.setLocalDescription(await pc.createOffer());
    const done = await complete;
    pc.close();
    return { complete: done, ms: Math.round(performance.now() - t0), candidates, errors };
  }, iceServers);
}

await runTest(T, async (s) => {
  await requireRoot();
  s.nftInstalled = await ensureNft();
  const net = await s.step('network namespace', () => makeNetns());
  const ip = net.hostIp;

  // ---- the clinic's firewall, in the namespace ----
  /** @param {string} script */
  const nft = (script) => run('ip', ['netns', 'exec', net.ns, 'nft', '-f', '-'], { input: script });
  /** The TURN server's TCP and TLS ports (chosen below, before the server starts). */
  let turnTcpPort = 0;
  let turnTlsPort = 0;
  /**
   * Replaces the namespace's rules: every UDP datagram in and out is dropped (loopback aside),
   * TCP to `refuse` ports is reset, and TCP to the TURN ports is counted.
   * @param {{ refuse?: number[], label: string }} o
   */
  const firewall = async ({ refuse = [], label }) => {
    const lines = ['flush chain inet hzbad in', 'flush chain inet hzbad out',
      'add rule inet hzbad in iifname "lo" accept', 'add rule inet hzbad out oifname "lo" accept',
      'add rule inet hzbad in meta l4proto udp counter drop comment "udp-in"',
      'add rule inet hzbad out meta l4proto udp counter drop comment "udp-out"'];
    for (const p of refuse) lines.push(`add rule inet hzbad out tcp dport ${p} counter reject with tcp reset comment "refused-tcp-${p}"`);
    lines.push(`add rule inet hzbad out tcp dport ${turnTcpPort} counter comment "turn-tcp-out"`);
    lines.push(`add rule inet hzbad out tcp dport ${turnTlsPort} counter comment "turn-tls-out"`);
    await nft(lines.join('\n') + '\n');
    note(`firewall (${label}): UDP dropped both ways${refuse.length ? `, TCP to ${refuse.join(', ')} refused` : ''}`);
  };
  /** The firewall's counters since its last change: packets per rule comment. */
  const counters = async () => {
    const out = JSON.parse(await run('ip', ['netns', 'exec', net.ns, 'nft', '-j', 'list', 'table', 'inet', 'hzbad']));
    /** @type {Record<string, number>} */
    const r = {};
    for (const item of out.nftables ?? []) {
      const rule = item.rule;
      const c = rule?.expr?.find((/** @type {any} */ e) => e.counter)?.counter;
      if (rule?.comment && c) r[rule.comment] = c.packets;
    }
    return r;
  };
  /** TCP connections established from the namespace to `port` (ss, inside it). @param {number} port */
  const established = async (port) => (await run('ip', ['netns', 'exec', net.ns, 'ss', '-Htn', 'state', 'established', `( dport = :${port} )`]))
    .split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/).slice(-2).join(' -> '));

  // ---- the server ----
  const base = await freeUdpPorts([ip], 2 + RELAYS);
  const ports = { media: base, turnUdp: base + 1, relayMin: base + 2, relayMax: base + 1 + RELAYS };
  turnTcpPort = await freeTcpPort(ip);
  do turnTlsPort = await freeTcpPort(ip); while (turnTlsPort === turnTcpPort);
  await firewall({ label: 'all UDP dropped' });
  const srv = await s.step('start a server with TURN over UDP, TCP and TLS', () => startServer({
    demo: true,
    listen: `${ip}:0`,
    udpPort: ports.media,
    selfSigned: [ip],
    extraToml: [
      '[media]', `bind_ips = ["${ip}"]`, 'workers = 1', '',
      '[turn]', 'enabled = true', `listen = "${ip}:${ports.turnUdp}"`, `listen_tcp = "${ip}:${turnTcpPort}"`, `listen_tls = "${ip}:${turnTlsPort}"`,
      `relay_port_min = ${ports.relayMin}`, `relay_port_max = ${ports.relayMax}`, '',
    ].join('\n'),
  }));
  s.network = { ns: net.ns, server: srv.origin, clinic: net.nsIp, media: `${ip}:${ports.media}`, turn: { udp: ports.turnUdp, tcp: turnTcpPort, tls: turnTlsPort, relays: `${ports.relayMin}-${ports.relayMax}` }, spki: srv.spki };
  note(`server ${srv.origin}; TURN udp ${ports.turnUdp}, tcp ${turnTcpPort}, tls ${turnTlsPort}; clinic in ${net.ns} at ${net.nsIp}`);

  const api = apiClient(srv.origin, { ca: srv.ca });
  const tok = { host: await api.login('doctor-east'), coordinator: await api.login('coordinator'), west: await api.login('doctor-west') };
  const east = await api.user(tok.coordinator, 'doctor-east');
  const west = await api.user(tok.coordinator, 'doctor-west');
  const cid = await s.step('an emergency (live, its requester hosts), doctor-west invited', async () => {
    const c = await api.call(tok.host, 'POST', '/v1/consultations', {
      kind: 'consultation', specialty: 'cardiology', urgency: 'emergency', summary: 'E2E 乡镇卫生院：防火墙只放行 TCP，经 TURN 会诊。',
    });
    if (c.status !== 'live') throw new Error(`an emergency should be live at once, is ${c.status}`);
    await api.call(tok.coordinator, 'POST', `/v1/consultations/${c.id}/invite`, { participants: [west.id] });
    return c.id;
  });

  const urls = await s.step('/join names the built-in TURN over UDP, TCP and TLS', async () => {
    const j = await api.call(tok.west, 'POST', `/v1/consultations/${cid}/join`, {});
    const list = (j.ice_servers ?? []).flatMap((/** @type {any} */ x) => [x.urls].flat());
    const want = {
      udp: `turn:${ip}:${ports.turnUdp}?transport=udp`,
      tcp: `turn:${ip}:${turnTcpPort}?transport=tcp`,
      tls: `turns:${ip}:${turnTlsPort}?transport=tcp`,
    };
    for (const u of Object.values(want)) if (!list.includes(u)) throw new Error(`/join should hand out ${u}: ${JSON.stringify(j.ice_servers)}`);
    const withCreds = (j.ice_servers ?? []).filter((/** @type {any} */ x) => x.username && x.credential);
    if (!withCreds.length) throw new Error(`/join's TURN servers come without credentials: ${JSON.stringify(j.ice_servers)}`);
    s.checks.join = { iceServers: list, username: withCreds[0].username.replace(/:.*/, ':…') };
    /** The entry of /join's list (with its credentials) for one URL only. @param {string} u */
    const only = (u) => {
      const e = j.ice_servers.find((/** @type {any} */ x) => [x.urls].flat().includes(u));
      return { ...e, urls: [u] };
    };
    return { ...want, only };
  });

  const trust = [/** @type {string} */ (srv.spki)];
  const eastBrowser = await launchBrowser({ capture: '320x180', trustSpki: trust });
  const westBrowser = await launchBrowser({ capture: '320x180', trustSpki: trust, executablePath: await chromiumInNetns(net.ns) });
  s.browser = eastBrowser.version();
  const pe = await newPage(eastBrowser, { name: `${T}-east`, lang: 'zh-CN' });
  const pw = await newPage(westBrowser, { name: `${T}-west`, lang: 'en' });
  await pe.context().addInitScript(pcTap);
  await pw.context().addInitScript(pcTap);
  /** What the server said on doctor-west's signaling sockets (media_closed only), with the time. */
  /** @type {{ at: number, type: string, reason?: string }[]} */
  const westSays = [];
  pw.on('websocket', (ws) => {
    ws.on('framereceived', ({ payload }) => {
      if (!String(payload).includes('"media_closed"')) return;
      try { westSays.push({ at: Date.now(), ...JSON.parse(String(payload)) }); } catch { /* not JSON */ }
    });
  });

  await s.step('doctor-east hosts on a clean link; doctor-west signs in from the clinic', async () => {
    await signIn(pe, srv.origin, 'doctor-east');
    await openCall(pe, srv.origin, cid);
    await precallReady(pe);
    if ((await joinCall(pe)) !== 'joined') throw new Error('the host of a live emergency should join at once');
    await signIn(pw, srv.origin, 'doctor-west');
  });

  /**
   * doctor-west opens the call, joins, and (unless `expectFail`) both play each other: returns
   * doctor-west's connections once each has a selected pair.
   */
  const westJoins = async () => {
    await openCall(pw, srv.origin, cid);
    await precallReady(pw);
    const checked = await networkChecked(pw, 30000).catch((e) => `not finished: ${e.message}`);
    const st = await joinCall(pw, 'joined', 30000);
    if (st !== 'joined') throw new Error(`an invited doctor should come straight into a live emergency, got ${st}`);
    return checked;
  };
  const westLeaves = async () => {
    await pw.getByTestId('ctl-leave').click();
    await callState(pw, 'left');
    // Off the call's page, so that opening it again shows the pre-call screen.
    await pw.goto(`${srv.origin}/#/`);
    await pw.getByTestId('call').waitFor({ state: 'detached' });
    await until('doctor-east to see doctor-west gone', async () => !(await snapshot(pe))?.participants?.some((/** @type {any} */ p) => p.id === west.id), 15000, 200);
  };

  // ---- 1. the premise: no TURN, no media ----
  await s.step('premise: with no TURN server, doctor-west\'s media cannot connect through the clinic\'s firewall', async () => {
    const joinPath = new RegExp(`/v1/consultations/${cid}/join$`);
    let emptied = 0;
    // The request goes to the server from Node (which trusts its certificate by `ca`), the
    // answer back to the page with no ICE servers.
    // A handler that throws would end the test's process without its cleanup: none does.
    const strip = async (/** @type {import('playwright-core').Route} */ route) => {
      try {
        const req = route.request();
        const h = await req.allHeaders();
        const headers = Object.fromEntries(['authorization', 'content-type', 'accept'].filter((k) => h[k]).map((k) => [k, h[k]]));
        const res = await httpRequest(req.url(), { method: req.method(), headers, body: req.postData() ?? undefined, ca: srv.ca });
        const body = JSON.parse(res.text);
        if (res.status === 200) {
          body.ice_servers = [];
          emptied++;
        }
        await route.fulfill({ status: res.status, contentType: 'application/json', body: JSON.stringify(body) });
      } catch (e) {
        note(`premise: /join not passed on: ${/** @type {Error} */ (e).message}`);
        await route.abort().catch(() => {});
      }
    };
    await pw.route(joinPath, strip);
    const before = await counters();
    const tJoin = Date.now();
    const checked = await westJoins();
    // The server's verdict: it gives a participant's connections connect_timeout_secs (10 s)
    // to come up, then drops them and says `media_closed` (the page starts over, and fails
    // the same way again). Until then no connection of doctor-west's page may connect.
    /** @type {string[]} */
    const seen = [];
    /** @type {any} */
    let pcs = null;
    const closed = await until('the server to give up on doctor-west\'s media (media_closed)', async () => {
      pcs = (await snapshot(pw))?.pc ?? {};
      for (const v of Object.values(pcs)) if (v && !seen.includes(v)) seen.push(v);
      if (seen.includes('connected')) throw new Error(`doctor-west's media connected without TURN through a firewall that drops UDP: ${JSON.stringify(pcs)}`);
      return westSays.find((m) => m.type === 'media_closed' && m.at >= tJoin) ?? null;
    }, FAIL_BOUND_MS, 250).catch(async (e) => {
      throw new Error(`${e.message}; connection states seen ${JSON.stringify(seen)}; connections ${JSON.stringify(await connections(pw).catch(() => null))}`);
    });
    const conns = await connections(pw);
    const video = await remoteVideo(pw, east.id);
    const after = await counters();
    if (!emptied) throw new Error('the test did not see doctor-west\'s /join');
    if (!/timeout/.test(String(closed.reason))) throw new Error(`the server closed doctor-west's media for another reason: ${JSON.stringify(closed)}`);
    if (conns.some((c) => c.iceServers.length)) throw new Error(`doctor-west's connections were given ICE servers: ${JSON.stringify(conns.map((c) => c.iceServers))}`);
    if (video && video.frames > 0) throw new Error(`doctor-west played doctor-east's video without a media connection: ${JSON.stringify(video)}`);
    const dropped = { in: after['udp-in'] - (before['udp-in'] ?? 0), out: after['udp-out'] - (before['udp-out'] ?? 0) };
    if (!(dropped.out > 0)) throw new Error(`the firewall dropped no UDP from doctor-west: ${JSON.stringify(after)}`);
    s.checks.premise = {
      joinAnswersEmptied: emptied, networkCheck: checked, mediaClosed: { reason: closed.reason, afterJoinMs: closed.at - tJoin },
      statesSeen: seen, connections: conns, remoteVideo: video, udpDropped: dropped,
    };
    await shot(pw, `${T}-west-no-turn`);
    // Leave (after the page is back in the room from its start-over), then let /join through.
    await callState(pw, 'joined', 30000);
    await westLeaves();
    await pw.unroute(joinPath, strip);
  });

  // ---- 2. Chromium checks the TURN server's certificate ----
  await s.step('turns: gives a relay only to a browser that trusts the server\'s certificate', async () => {
    await firewall({ refuse: [turnTcpPort], label: `UDP dropped, TCP to ${turnTcpPort} refused` });
    const server = urls.only(urls.tls);
    // A third Chromium in the clinic, without the certificate's hash; and a page of doctor-west's.
    const untrusted = await launchBrowser({ capture: null, executablePath: await chromiumInNetns(net.ns) });
    const plain = await gatherRelay(await newPage(untrusted, { name: `${T}-untrusted-probe`, lang: 'en' }), [server]);
    await untrusted.close();
    const trusted = await gatherRelay(await newPage(westBrowser, { name: `${T}-trusted-probe`, lang: 'en' }), [server]);
    s.checks.turnsCertificate = { trusted, untrusted: plain };
    if (!trusted.complete || !trusted.candidates.some((c) => c.type === 'relay' && c.relayProtocol === 'tls')) throw new Error(`a browser trusting the certificate got no relay over TLS from ${urls.tls}: ${JSON.stringify(trusted)}`);
    if (!plain.complete || plain.candidates.some((c) => c.type === 'relay')) throw new Error(`a browser that does not trust the certificate should get no relay from ${urls.tls}: ${JSON.stringify(plain)}`);
  });

  /**
   * One relayed phase: the firewall as `label` says, doctor-west joins with /join's ICE
   * servers, each plays and hears the other, and each of doctor-west's connections has a
   * selected pair whose local candidate is a relay over `proto` from `url`.
   * @param {'tls' | 'tcp'} proto @param {string} url @param {number} port the TURN port used @param {number} refused the other TURN port, refused
   */
  const relayed = async (proto, url, port, refused) => {
    await firewall({ refuse: [refused], label: `UDP dropped, TCP to ${refused} refused` });
    const t0 = Date.now();
    const checked = await westJoins();
    const [eastSees, westSees] = await Promise.all([
      videoPlaying(pe, west.id, { what: 'doctor-west (the clinic) on doctor-east\'s page', deadlineMs: MEDIA_BOUND_MS }),
      videoPlaying(pw, east.id, { what: 'doctor-east on doctor-west\'s page (the clinic)', deadlineMs: MEDIA_BOUND_MS }),
    ]);
    const [eastHears, westHears] = await Promise.all([audioHeard(pe, west.id), audioHeard(pw, east.id)]);
    const mediaMs = Date.now() - t0;
    /** @type {any[]} */
    let conns = [];
    await until(`each of doctor-west's connections to have a selected pair over TURN/${proto}`, async () => {
      conns = await connections(pw);
      const app = conns.filter((c) => c.connectionState === 'connected');
      return app.length >= 2 && app.every((c) => c.selected?.local?.type === 'relay' && c.selected.local.relayProtocol === proto);
    }, 15000, 500).catch((e) => {
      throw new Error(`${e.message}: ${JSON.stringify(conns)}`);
    });
    const app = conns.filter((c) => c.connectionState === 'connected');
    for (const c of app) {
      if (c.selected.local.url !== url) throw new Error(`doctor-west's relay should come from ${url}, came from ${c.selected.local.url}`);
      if (c.selected.remote.address !== ip || c.selected.remote.port !== ports.media) throw new Error(`doctor-west's relay should reach the server's media ${ip}:${ports.media}: ${JSON.stringify(c.selected.remote)}`);
      if (!(c.selected.bytesSent > 0 && c.selected.bytesReceived > 0)) throw new Error(`no bytes both ways on doctor-west's selected pair: ${JSON.stringify(c.selected)}`);
      // Nothing but a relay got through: host (and any srflx) pairs never succeeded.
      for (const [type, byState] of Object.entries(c.pairs)) {
        if (!type.startsWith('relay') && byState.succeeded) throw new Error(`a ${type} pair of doctor-west succeeded through a firewall that drops UDP: ${JSON.stringify(c.pairs)}`);
      }
    }
    const eastConns = await connections(pe);
    const streams = await established(port);
    if (!streams.length) throw new Error(`no TCP connection from the clinic to the TURN port ${port}`);
    const fw = await counters();
    if (!(fw['udp-out'] > 0)) throw new Error(`the firewall dropped no UDP from doctor-west in this phase: ${JSON.stringify(fw)}`);
    if (!(fw[`refused-tcp-${refused}`] > 0)) note(`doctor-west's Chromium did not try the refused port ${refused} (counters ${JSON.stringify(fw)})`);
    const metrics = (await httpRequest(`${srv.origin}/metrics`, { ca: srv.ca })).text;
    const allocations = Number(metrics.match(/^huizhen_turn_allocations (\d+)$/m)?.[1] ?? NaN);
    if (!(allocations >= app.length)) throw new Error(`/metrics counts ${allocations} TURN allocations, doctor-west alone uses ${app.length}`);
    const refusedPeers = Number(metrics.match(/^huizhen_turn_refused_peer_packets_total (\d+)$/m)?.[1] ?? NaN);
    await shot(pe, `${T}-east-${proto}`);
    await shot(pw, `${T}-west-${proto}`);
    return {
      networkCheck: checked,
      mediaMs,
      eastSees: { frames: eastSees.frames, brightness: Math.round(eastSees.brightness), size: `${eastSees.width}x${eastSees.height}`, hears: Number(eastHears.toFixed(3)) },
      westSees: { frames: westSees.frames, brightness: Math.round(westSees.brightness), size: `${westSees.width}x${westSees.height}`, hears: Number(westHears.toFixed(3)) },
      west: app.map((c) => ({ selected: c.selected, pairs: c.pairs })),
      east: eastConns.filter((c) => c.connectionState === 'connected').map((c) => ({ local: c.selected?.local, remote: c.selected?.remote })),
      tcpToTurn: streams,
      firewall: fw,
      metrics: { allocations, refusedPeers },
    };
  };

  // ---- 3. TURN over TLS ----
  await s.step('TURN over TLS (the firewall passes TLS only): each plays and hears the other, doctor-west through a relay over tls', async () => {
    s.checks.tls = await relayed('tls', urls.tls, turnTlsPort, turnTcpPort);
  });

  // ---- 4. TURN over TCP ----
  await s.step('TURN over TCP (the TLS port refused): the same through a relay over tcp', async () => {
    await westLeaves();
    s.checks.tcp = await relayed('tcp', urls.tcp, turnTcpPort, turnTlsPort);
  });

  for (const [page, user] of /** @type {const} */ ([[pe, 'doctor-east'], [pw, 'doctor-west']])) {
    const errors = pageErrors(page);
    if (errors.length) throw new Error(`uncaught errors on ${user}'s page: ${errors.join(' | ')}`);
  }
  await callState(pw, 'joined', 5000);
});
