// HTTPS with the server's own self-signed certificate (issue 17), in the browser. Off
// localhost, browsers give camera and microphone only to HTTPS pages. The server listens on
// 127.0.0.2 and makes a certificate (`[tls] mode = "self-signed"`) for 127.0.0.2 and the name
// huizhen.test, and prints its SHA-256 fingerprint and the SPKI hash for Chromium. The browsers
// reach it as https://huizhen.test:<port> (--host-resolver-rules maps the name to 127.0.0.2):
// Chromium, like the Secure Contexts spec, counts all of 127.0.0.0/8 as potentially
// trustworthy, so a page on 127.0.0.2 is a secure context even over plain HTTP and would prove
// nothing; a page on a name is not, as for a hospital PC reaching the server on the LAN.
// The walk shows:
//   - the premise: a plain-HTTP page on huizhen.test is no secure context (no mediaDevices),
//     whereas one on http://127.0.0.2 is (recorded as checks.premise);
//   - the certificate the server presents is the one whose hashes it printed (Node), and the
//     trust is by that hash, not blanket: a browser without --ignore-certificate-errors-spki-list,
//     and one with another key's hash in it, both refuse the page (ERR_CERT_AUTHORITY_INVALID);
//   - with the printed hash: the page is a secure context, signing in works, getUserMedia gives
//     the (fake) camera and microphone, doctor-east hosts an emergency and doctor-west (invited
//     by the coordinator) joins it, both over wss:// to the same server, and each plays the
//     other's video and hears the other's audio;
//   - no Strict-Transport-Security on any answer the pages got (docs/operations.md §HTTPS: no
//     HSTS with a self-signed certificate, so a browser's warning stays skippable).
//
//   node tests/e2e/https.test.mjs     (prints a JSON summary; exit code 1 on failure)
//
// Screenshots: tests/e2e/artifacts/screens/https-*.png; logs: artifacts/https-server.log and
// the pages' https-*.log.

import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { createServer } from 'node:http';
import { connect as tlsConnect } from 'node:tls';

import {
  apiClient, httpRequest, launchBrowser, newPage, note, onCleanup, pageErrors, runTest, shot, signIn, startServer, until,
} from './lib/harness.mjs';
import { audioHeard, joinCall, openCall, precallReady, snapshot, videoPlaying } from './lib/call.mjs';

const T = 'https';
/** Where the server listens (loopback). */
const IP = '127.0.0.2';
/** The name the browsers use for it: not potentially trustworthy, unlike any 127.x address. */
const NAME = 'huizhen.test';
const HOSTS = { [NAME]: IP };

/** The base64 SHA-256 of a DER SubjectPublicKeyInfo: what --ignore-certificate-errors-spki-list takes. @param {Buffer} spkiDer */
const spkiHash = (spkiDer) => createHash('sha256').update(spkiDer).digest('base64');

/**
 * The certificate a TLS server presents, as Node sees it without trusting it.
 * @param {string} host @param {number} port
 * @returns {Promise<X509Certificate>}
 */
function presentedCertificate(host, port) {
  return new Promise((resolveCert, reject) => {
    // Only to read the certificate: nothing is sent over this connection.
    const sock = tlsConnect({ host, port, rejectUnauthorized: false }, () => {
      const raw = sock.getPeerCertificate().raw;
      sock.end();
      resolveCert(new X509Certificate(raw));
    });
    sock.setTimeout(10000, () => sock.destroy(new Error(`no TLS handshake with ${host}:${port} in 10 s`)));
    sock.on('error', reject);
  });
}

/**
 * How a TLS connection that trusts only the system's authorities ends: the error code.
 * @param {string} host @param {number} port
 * @returns {Promise<string>}
 */
function untrustedHandshake(host, port) {
  return new Promise((resolveCode) => {
    const sock = tlsConnect({ host, port }, () => {
      sock.end();
      resolveCode('accepted');
    });
    sock.setTimeout(10000, () => sock.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    sock.on('error', (/** @type {any} */ e) => resolveCode(e.code ?? e.message));
  });
}

/**
 * Opens `url` in a fresh page of `browser` and returns how the navigation failed (its error's
 * first line), or null if the page loaded. The page is screenshot as `screen`.
 * @param {import('playwright-core').Browser} browser @param {string} url @param {string} name @param {string} screen
 */
async function refused(browser, url, name, screen) {
  const page = await newPage(browser, { name, lang: 'en' });
  let error = null;
  try {
    await page.goto(url);
  } catch (e) {
    error = /** @type {Error} */ (e).message.split('\n')[0];
  }
  // The interstitial Chromium shows ("Your connection is not private").
  await shot(page, screen).catch((e) => note(`no screenshot ${screen}: ${e.message}`));
  return error;
}

/**
 * Notes the signaling sockets a page opens (scheme and host only: the room token in the
 * address stays out) and the answers it gets from `origin` that carry Strict-Transport-Security.
 * @param {import('playwright-core').Page} page @param {string} origin
 */
function watch(page, origin) {
  /** @type {{ sockets: any[], answers: number, hsts: string[] }} */
  const seen = { sockets: [], answers: 0, hsts: [] };
  page.on('response', async (r) => {
    if (!r.url().startsWith(`${origin}/`)) return;
    seen.answers++;
    const h = await r.allHeaders().catch(() => r.headers());
    if ('strict-transport-security' in h) seen.hsts.push(`${new URL(r.url()).pathname}: ${h['strict-transport-security']}`);
  });
  page.on('websocket', (ws) => {
    const url = new URL(ws.url());
    if (url.pathname !== '/v1/rtc') return;
    const e = { scheme: url.protocol, host: url.host, frames: 0, error: /** @type {string | null} */ (null), closed: false };
    seen.sockets.push(e);
    ws.on('framereceived', () => { e.frames++; });
    ws.on('socketerror', (err) => { e.error = String(err); });
    ws.on('close', () => { e.closed = true; });
  });
  return seen;
}

/**
 * Asks the page's getUserMedia for camera and microphone; returns the tracks it got (kind,
 * label, state) and the devices listed afterwards, and stops the tracks again.
 * @param {import('playwright-core').Page} page
 */
async function cameraAndMicrophone(page) {
  return page.evaluate(async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    const tracks = stream.getTracks().map((t) => ({ kind: t.kind, label: t.label, state: t.readyState }));
    const devices = (await navigator.mediaDevices.enumerateDevices()).map((d) => ({ kind: d.kind, label: d.label }));
    for (const t of stream.getTracks()) t.stop();
    return { tracks, devices };
  });
}

await runTest(T, async (s) => {
  const srv = await s.step(`start a server on ${IP} with a self-signed certificate for ${NAME} and ${IP}`, async () => {
    // Port 0: the server says which port it got (a certificate names hosts, not ports).
    const server = await startServer({ demo: true, listen: `${IP}:0`, selfSigned: [NAME, IP] });
    const url = new URL(server.origin);
    if (url.protocol !== 'https:' || url.hostname !== IP) throw new Error(`the server runs at ${server.origin}, not https://${IP}:<port>`);
    if (!server.spki || !/^[A-Za-z0-9+/]{43}=$/.test(server.spki)) throw new Error(`the server printed no SPKI hash for Chromium: ${server.spki}`);
    if (!server.fingerprint || !/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/.test(server.fingerprint)) throw new Error(`the server printed no SHA-256 fingerprint: ${server.fingerprint}`);
    return server;
  });
  const port = Number(new URL(srv.origin).port);
  /** The origin the browsers use. */
  const origin = `https://${NAME}:${port}`;
  s.checks.server = { origin: srv.origin, pages: origin, spki: srv.spki, fingerprint: srv.fingerprint };

  // Two proofs that the browser below trusts this certificate by its key and nothing else:
  // Node reads the certificate the server really presents and finds the hashes that were
  // printed (so the flag names exactly that key), and two browsers that do not name it (no
  // flag; another key's hash) refuse the page. A browser's trust is per process (the flag is a
  // command-line switch), so each is a browser of its own, closed before the call starts.
  await s.step('the certificate presented has the fingerprints printed', async () => {
    const cert = await presentedCertificate(IP, port);
    const spki = spkiHash(/** @type {Buffer} */ (cert.publicKey.export({ type: 'spki', format: 'der' })));
    if (spki !== srv.spki) throw new Error(`the presented certificate's SPKI hash is ${spki}, the server printed ${srv.spki}`);
    if (cert.fingerprint256 !== srv.fingerprint) throw new Error(`the presented certificate's SHA-256 is ${cert.fingerprint256}, the server printed ${srv.fingerprint}`);
    const kept = new X509Certificate(/** @type {string} */ (srv.ca));
    if (kept.fingerprint256 !== cert.fingerprint256) throw new Error(`data_dir/tls/self-signed.pem (${kept.fingerprint256}) is not the certificate presented (${cert.fingerprint256})`);
    const san = (cert.subjectAltName ?? '').split(', ');
    if (!san.includes(`DNS:${NAME}`) || !san.includes(`IP Address:${IP}`)) throw new Error(`the certificate is not for ${NAME} and ${IP}: ${cert.subjectAltName}`);
    if (!cert.checkIssued(cert)) throw new Error(`the certificate is not self-signed: issuer ${cert.issuer}`);
    // Node, trusting only the usual authorities, refuses it too.
    const untrusted = await untrustedHandshake(IP, port);
    if (untrusted !== 'DEPTH_ZERO_SELF_SIGNED_CERT') throw new Error(`a TLS client without the certificate should refuse it as self-signed, got ${untrusted}`);
    s.checks.certificate = { subjectAltName: cert.subjectAltName, validFrom: cert.validFrom, validTo: cert.validTo, keyType: cert.publicKey.asymmetricKeyType, untrustedNode: untrusted };
  });

  await s.step(`premise: a plain-HTTP page on ${NAME} is not a secure context`, async () => {
    // A page of Node's own on the same address (the server speaks only HTTPS on its port).
    const plain = createServer((_, res) => res.end('<!doctype html><title>plain http</title><p>plain http</p>'));
    await new Promise((r) => plain.listen(0, IP, () => r(null)));
    onCleanup(() => new Promise((r) => plain.close(() => r(null))));
    const addr = /** @type {import('node:net').AddressInfo} */ (plain.address());
    const browser = await launchBrowser({ hosts: HOSTS, trustSpki: [/** @type {string} */ (srv.spki)] });
    const page = await newPage(browser, { name: `${T}-plain`, lang: 'en' });
    /** @type {Record<string, any>} */
    const premise = {};
    for (const host of [NAME, IP]) {
      await page.goto(`http://${host}:${addr.port}/`);
      premise[`http://${host}`] = await page.evaluate(() => ({ secure: window.isSecureContext, mediaDevices: typeof navigator.mediaDevices }));
    }
    await browser.close();
    s.checks.premise = premise;
    const byName = premise[`http://${NAME}`];
    if (byName.secure !== false || byName.mediaDevices !== 'undefined') throw new Error(`a plain-HTTP page on ${NAME} should be no secure context, without mediaDevices: ${JSON.stringify(byName)}`);
  });

  await s.step('a browser that does not name the key refuses the page', async () => {
    const plain = await launchBrowser({ hosts: HOSTS });
    const noFlag = await refused(plain, `${origin}/`, `${T}-untrusted`, `${T}-untrusted`);
    await plain.close();
    // Another key's hash in the flag: the flag is a list of keys, not a switch that lets all in.
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
    const otherHash = spkiHash(/** @type {Buffer} */ (other));
    const wrong = await launchBrowser({ hosts: HOSTS, trustSpki: [otherHash] });
    const wrongFlag = await refused(wrong, `${origin}/`, `${T}-other-key`, `${T}-other-key`);
    await wrong.close();
    for (const [what, err] of [['without the flag', noFlag], ['trusting another key', wrongFlag]]) {
      if (!err?.includes('net::ERR_CERT_AUTHORITY_INVALID')) throw new Error(`a browser ${what} should refuse ${origin}/ (ERR_CERT_AUTHORITY_INVALID), got: ${err ?? 'the page loaded'}`);
    }
    s.checks.refused = { noFlag, otherKey: { spki: otherHash, error: wrongFlag } };
  });

  const api = apiClient(srv.origin, { ca: srv.ca });
  const tok = { doctor: await api.login('doctor-east'), coordinator: await api.login('coordinator') };
  const east = await api.user(tok.coordinator, 'doctor-east');
  const west = await api.user(tok.coordinator, 'doctor-west');

  const browser = await launchBrowser({ capture: '320x180', hosts: HOSTS, trustSpki: [/** @type {string} */ (srv.spki)] });
  const pageA = await newPage(browser, { name: `${T}-east`, lang: 'zh-CN' });
  const pageB = await newPage(browser, { name: `${T}-west`, lang: 'en' });
  const seenA = watch(pageA, origin);
  const seenB = watch(pageB, origin);
  const pages = /** @type {const} */ ([[pageA, 'doctor-east', seenA, 'east'], [pageB, 'doctor-west', seenB, 'west']]);

  await s.step('with the printed hash: the page loads over HTTPS, a secure context, no HSTS', async () => {
    const res = await pageA.goto(`${origin}/#/`);
    if (!res || res.status() !== 200) throw new Error(`${origin}/ answered ${res?.status()}`);
    const headers = await res.allHeaders();
    // docs/operations.md §HTTPS: "No HSTS" with a self-signed certificate.
    if ('strict-transport-security' in headers) throw new Error(`a self-signed server sent Strict-Transport-Security: ${headers['strict-transport-security']}`);
    const tls = await res.securityDetails();
    const ctx = await pageA.evaluate(() => ({ secure: window.isSecureContext, protocol: location.protocol, host: location.host, mediaDevices: typeof navigator.mediaDevices?.getUserMedia }));
    if (ctx.secure !== true || ctx.protocol !== 'https:' || ctx.host !== `${NAME}:${port}` || ctx.mediaDevices !== 'function') throw new Error(`the HTTPS page should be a secure context with getUserMedia: ${JSON.stringify(ctx)}`);
    // Node's view of the same answer (with the certificate as its one trust anchor).
    const fromNode = await httpRequest(`${srv.origin}/`, { ca: srv.ca });
    if (fromNode.status !== 200 || 'strict-transport-security' in fromNode.headers) throw new Error(`GET / from Node: ${fromNode.status}, HSTS ${fromNode.headers['strict-transport-security'] ?? 'none'}`);
    s.checks.page = { ...ctx, tls, headers: { hsts: headers['strict-transport-security'] ?? null, csp: headers['content-security-policy'] ?? null } };
    await shot(pageA, `${T}-login`);
  });

  await s.step('both sign in over HTTPS', async () => {
    await Promise.all([signIn(pageA, origin, 'doctor-east'), signIn(pageB, origin, 'doctor-west')]);
    await shot(pageA, `${T}-east-signed-in`);
  });

  await s.step('getUserMedia gives camera and microphone', async () => {
    /** @type {Record<string, any>} */
    const got = {};
    for (const [page, user, , tag] of pages) {
      const r = await cameraAndMicrophone(page);
      const live = (/** @type {string} */ kind) => r.tracks.some((t) => t.kind === kind && t.state === 'live');
      if (!live('video') || !live('audio')) throw new Error(`${user}'s page got no live camera and microphone: ${JSON.stringify(r.tracks)}`);
      // Granted: the devices are listed with their names.
      if (!r.devices.some((d) => d.kind === 'videoinput' && d.label) || !r.devices.some((d) => d.kind === 'audioinput' && d.label)) throw new Error(`${user}'s page lists no named camera and microphone: ${JSON.stringify(r.devices)}`);
      got[tag] = r.tracks;
    }
    s.checks.getUserMedia = got;
  });

  const id = await s.step('an emergency (live, its requester hosts), doctor-west invited', async () => {
    const c = await api.call(tok.doctor, 'POST', '/v1/consultations', {
      kind: 'consultation', specialty: 'cardiology', urgency: 'emergency', summary: 'E2E: 急性胸痛，HTTPS。',
    });
    if (c.status !== 'live') throw new Error(`an emergency should be live at once, is ${c.status}`);
    await api.call(tok.coordinator, 'POST', `/v1/consultations/${c.id}/invite`, { participants: [west.id] });
    return c.id;
  });
  s.consultation = id;

  await s.step('both meet in one call over wss://', async () => {
    await Promise.all([openCall(pageA, origin, id), openCall(pageB, origin, id)]);
    await Promise.all([precallReady(pageA), precallReady(pageB)]);
    await shot(pageB, `${T}-west-precall`);
    const [sa, sb] = await Promise.all([joinCall(pageA), joinCall(pageB)]);
    if (sa !== 'joined') throw new Error(`the host of an emergency should join at once, got ${sa}`);
    if (sb !== 'joined') throw new Error(`an invited doctor should come straight into a live emergency, got ${sb}`);
    await until('each page to list the other', async () => {
      const [a, b] = await Promise.all([snapshot(pageA), snapshot(pageB)]);
      return a?.participants?.some((/** @type {any} */ p) => p.id === west.id) && b?.participants?.some((/** @type {any} */ p) => p.id === east.id);
    }, 15000, 100);
    /** @type {Record<string, any>} */
    const sockets = {};
    const want = new URL(origin).host;
    for (const [, user, seen, tag] of pages) {
      // Every signaling socket the page opened (the pre-call screen's check, then the call's)
      // went to this server over TLS; the call's, the last, is open and the server speaks on
      // it (Playwright reports the frames a moment after the page has them).
      if (!seen.sockets.length || seen.sockets.some((e) => e.scheme !== 'wss:' || e.host !== want)) {
        throw new Error(`${user}'s page should open its sockets on wss://${want}: ${JSON.stringify(seen.sockets)}`);
      }
      await until(`${user}'s call socket to be open on wss://${want} with the server speaking`, () => {
        const sock = seen.sockets.at(-1);
        if (sock?.error || sock?.closed) throw new Error(`${user}'s call socket failed: ${JSON.stringify(seen.sockets)}`);
        return sock && sock.frames >= 1;
      }, 5000, 100);
      sockets[tag] = seen.sockets.map((e) => `${e.scheme}//${e.host} ${e.error ?? `${e.frames} frames`}${e.closed ? ' closed' : ''}`);
    }
    s.checks.sockets = sockets;
  });

  await s.step('each plays the other\'s video and hears the other', async () => {
    const [aSees, bSees] = await Promise.all([
      videoPlaying(pageA, west.id, { what: 'doctor-west on doctor-east\'s page' }),
      videoPlaying(pageB, east.id, { what: 'doctor-east on doctor-west\'s page' }),
    ]);
    const [aHears, bHears] = await Promise.all([audioHeard(pageA, west.id), audioHeard(pageB, east.id)]);
    s.checks.media = {
      eastSees: { frames: aSees.frames, brightness: Math.round(aSees.brightness), size: `${aSees.width}x${aSees.height}`, hears: Number(aHears.toFixed(3)) },
      westSees: { frames: bSees.frames, brightness: Math.round(bSees.brightness), size: `${bSees.width}x${bSees.height}`, hears: Number(bHears.toFixed(3)) },
    };
    await shot(pageA, `${T}-east-call`);
    await shot(pageB, `${T}-west-call`);
  });

  await s.step('no answer carried Strict-Transport-Security', async () => {
    /** @type {Record<string, number>} */
    const answers = {};
    for (const [, user, seen, tag] of pages) {
      if (seen.hsts.length) throw new Error(`${user}'s page got Strict-Transport-Security from a self-signed server: ${seen.hsts.join(' | ')}`);
      if (seen.answers < 5) throw new Error(`${user}'s page got only ${seen.answers} answers from ${origin}: the check saw too little`);
      answers[tag] = seen.answers;
    }
    s.checks.hsts = { sent: false, answersChecked: answers };
  });

  for (const [page, user] of pages) {
    const errors = pageErrors(page);
    if (errors.length) throw new Error(`uncaught errors on ${user}'s page: ${errors.join(' | ')}`);
  }
});
