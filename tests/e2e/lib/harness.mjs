// Shared pieces of the browser end-to-end tests: a real Huizhen server on a free port, one
// headless Chromium (Debian's, through playwright-core) with fake camera and microphone, pages
// that keep their console, an API client, polling, screenshots and a cleanup registry so a
// failing test never leaves a server or a browser behind.
//
// Environment: HUIZHEN_BIN (server binary; default target/debug/huizhen), CHROMIUM (default
// /usr/bin/chromium), E2E_SERVER_LOG (the server's log filter, default "info"; e.g.
// "info,huizhen_sfu=debug" logs each subscriber's downlink estimate once a second).
// Artifacts go to tests/e2e/artifacts/ (screens/ for screenshots).

import { execFile, spawn } from 'node:child_process';
import { constants as fsConstants, createWriteStream } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const E2E_DIR = resolve(here, '..');
export const ROOT = resolve(E2E_DIR, '../..');
export const BIN = resolve(process.env.HUIZHEN_BIN ?? join(ROOT, 'target/debug/huizhen'));
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const ARTIFACTS = join(E2E_DIR, 'artifacts');
export const SCREENS = join(ARTIFACTS, 'screens');
export const DEMO_PASSWORD = 'huizhen-demo';
/** The demo accounts `serve --demo` creates, all with DEMO_PASSWORD. */
export const DEMO_USERS = ['coordinator', 'cardiologist', 'neurologist', 'surgeon', 'doctor-east', 'doctor-west', 'doctor-south', 'trainee'];
/** The running script's name without `.test.mjs`: prefixes its log files. */
export const TEST_NAME = basename(process.argv[1] ?? 'e2e').replace(/\.test\.mjs$|\.mjs$/, '');

const execFileP = promisify(execFile);
// The server reads every HUIZHEN_* variable as a config key (HUIZHEN_BIN would be the unknown
// key `bin` and stop it), so its children get an environment without them.
export const CHILD_ENV = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HUIZHEN_'))),
  NO_COLOR: '1',
  // Any free media port, so a server still shutting down never blocks the next test's.
  HUIZHEN_MEDIA__UDP_PORT: '0',
};

// ---- cleanup registry ----------------------------------------------------------------------

const cleanups = [];
const children = new Set();

/** Registers `fn` to run at cleanup(), last registered first. Returns `fn`. */
export function onCleanup(fn) {
  cleanups.push(fn);
  return fn;
}

/** Runs every registered cleanup (servers stopped, browsers closed, logs saved). */
export async function cleanup() {
  while (cleanups.length) {
    const f = cleanups.pop();
    try {
      await f();
    } catch (e) {
      note('cleanup:', e.message);
    }
  }
}

// Last resort if the script dies without running cleanup(): never leave a server behind.
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    note(`got ${sig}; cleaning up`);
    await cleanup();
    process.exit(130);
  });
}

export function note(...a) {
  console.error(`[${TEST_NAME} ${new Date().toISOString().slice(11, 23)}]`, ...a);
}

/**
 * Polls `probe` until it returns a truthy value, which it returns; throws naming `what` at the
 * deadline. `deadlineMs` is a duration (below 1e12) or an absolute Date.now() time. A probe
 * that throws fails at once (a wrong state is not worth waiting out).
 */
export async function until(what, probe, deadlineMs = 15000, everyMs = 250) {
  const deadline = deadlineMs < 1e12 ? Date.now() + deadlineMs : deadlineMs;
  let last;
  for (;;) {
    last = await probe();
    if (last) return last;
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last === undefined || last === false || last === null ? '' : ` (last: ${JSON.stringify(last)})`}`);
}

// ---- server --------------------------------------------------------------------------------

/**
 * Starts `huizhen serve` on 127.0.0.1:0 with a fresh data directory.
 * `extraToml` is written after the top-level keys and before the [media] table, so start it
 * with a table header (`[auth]\nsession_ttl_secs = 60`); a `[media]` table in it replaces ours.
 * `listen` is the HTTP address (`--listen`; port 0: any free one). `udpPort` is the first media
 * worker's UDP port (0: any free port; it overrides `media.udp_port` in the file).
 * The log goes to artifacts/<logName>.log (default `<test>-server`).
 * `env` adds HUIZHEN_* variables for this server (and its `mint`), e.g. several nodes' shared
 * `HUIZHEN_STORE` and `HUIZHEN_JWT_SECRET`; lists (such as `node.cluster_origins`) can be set
 * only in the file (`extraToml`).
 * `selfSigned` (a list of host names and IP addresses, e.g. ['127.0.0.2']) serves HTTPS with a
 * certificate the server makes for them (`[tls] mode = "self-signed"`): then `origin` is
 * https://…, `spki` the hash it prints for Chromium (launchBrowser's `trustSpki`),
 * `fingerprint` the certificate's SHA-256 and `ca` its PEM (apiClient's `ca`, for Node).
 */
export async function startServer({ demo = true, extraToml = '', mediaIp = '127.0.0.1', listen = '127.0.0.1:0', udpPort = 0, logName = `${TEST_NAME}-server`, keepOneTimeAdmin = false, env: extraEnv = {}, selfSigned = null } = {}) {
  try {
    await access(BIN, fsConstants.X_OK);
  } catch {
    throw new Error(`no server binary at ${BIN}: build it (cargo build) or set HUIZHEN_BIN`);
  }
  await mkdir(ARTIFACTS, { recursive: true });
  const dataDir = await mkdtemp(join(tmpdir(), 'hz-e2e-'));
  const config = join(dataDir, 'huizhen.toml');
  const toml = [`log = "${process.env.E2E_SERVER_LOG ?? 'info'}"`, '', extraToml.trim(), ''];
  if (selfSigned) toml.push('[tls]', 'mode = "self-signed"', `names = [${selfSigned.map((n) => JSON.stringify(n)).join(', ')}]`, '');
  if (!/^\s*\[media\]/m.test(extraToml)) toml.push('[media]', `bind_ips = ["${mediaIp}"]`, '');
  await writeFile(config, toml.join('\n'));
  const log = createWriteStream(join(ARTIFACTS, `${logName}.log`));
  const args = ['serve', '--config', config, '--data-dir', dataDir, '--listen', listen];
  if (demo) args.splice(1, 0, '--demo');
  const env = { ...CHILD_ENV, HUIZHEN_MEDIA__UDP_PORT: String(udpPort), ...extraEnv };
  const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  children.add(child);
  child.stderr.pipe(log);
  let stopped = null;
  const stop = () => {
    stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const done = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await done;
        clearTimeout(timer);
      }
      children.delete(child);
      await rm(dataDir, { recursive: true, force: true });
    })();
    return stopped;
  };
  onCleanup(stop);
  let out = '';
  const { scheme, addr } = await new Promise((resolveAddr, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 30 s: ${out}`)), 30000);
    child.stdout.on('data', (d) => {
      // The admin password is printed here only: keep it out of the log file.
      const text = String(d);
      out += text;
      log.write(text.replace(/password: \S+/, 'password: <hidden>'));
      const m = out.match(/running at (https?):\/\/([^/\s]+)\//);
      // A self-signed certificate's fingerprints are printed on the lines after that one.
      if (m && (!selfSigned || /--ignore-certificate-errors-spki-list=\S+\s/.test(out))) {
        clearTimeout(timer);
        resolveAddr({ scheme: m[1], addr: m[2] });
      }
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${BIN}: ${e.message}`));
    });
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code ?? sig}) before it was ready; see artifacts/${logName}.log`));
    });
  });
  const origin = `${scheme}://${addr}`;
  if (selfSigned && scheme !== 'https') throw new Error(`a server with a self-signed certificate runs at ${origin}, not https`);
  // What the server printed of its certificate, and the certificate (its own trust anchor).
  let spki = null;
  let fingerprint = null;
  let ca = null;
  if (selfSigned) {
    spki = out.match(/--ignore-certificate-errors-spki-list=(\S+)/)?.[1] ?? null;
    fingerprint = out.match(/SHA-256 fingerprint:\s+([0-9A-F:]+)/)?.[1] ?? null;
    ca = await readFile(join(dataDir, 'tls', 'self-signed.pem'), 'utf8');
  }
  // The first start's admin password is a one-time one: it opens nothing until replaced. The
  // administrator sets their own through the API here (`adminPassword`), unless the test walks
  // that step itself (`keepOneTimeAdmin`: then `adminPassword` is still the one-time one).
  const oneTimeAdminPassword = out.match(/username: admin\s+password: (\S+)/)?.[1] ?? null;
  let adminPassword = oneTimeAdminPassword;
  if (oneTimeAdminPassword && !keepOneTimeAdmin) {
    const api = apiClient(origin, { ca });
    const tok = await api.login('admin', oneTimeAdminPassword);
    adminPassword = `${oneTimeAdminPassword}-own`;
    await api.call(tok, 'POST', '/v1/me/password', { old_password: oneTimeAdminPassword, new_password: adminPassword });
  }
  /** Mints a room token with the CLI (`huizhen token`), e.g. mint(['--room', r, '--identity', n, '--publish']). */
  const mint = async (tokenArgs) => {
    const { stdout } = await execFileP(BIN, ['token', '--config', config, '--data-dir', dataDir, ...tokenArgs], { env });
    return stdout.trim();
  };
  return { origin, addr, dataDir, config, adminPassword, oneTimeAdminPassword, pid: child.pid, child, stop, mint, spki, fingerprint, ca };
}

/** A TCP port free on 127.0.0.1 right now (for a server whose address must be known before it starts). */
export async function freePort() {
  const net = await import('node:net');
  return new Promise((resolvePort, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (s.address());
      s.close(() => resolvePort(port));
    });
  });
}

/**
 * Starts a redis-server of the test's own on a free port of 127.0.0.1, in memory only (no
 * snapshot, no append-only file), for servers that share a Redis store. Stopped at cleanup.
 * The log goes to artifacts/<logName>.log (default `<test>-redis`). Returns { url, port, stop }.
 */
export async function startRedis({ logName = `${TEST_NAME}-redis` } = {}) {
  await mkdir(ARTIFACTS, { recursive: true });
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'hz-e2e-redis-'));
  const log = createWriteStream(join(ARTIFACTS, `${logName}.log`));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'], env: CHILD_ENV });
  children.add(child);
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  let stopped = null;
  const stop = () => {
    stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const done = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await done;
        clearTimeout(timer);
      }
      children.delete(child);
      await rm(dir, { recursive: true, force: true });
    })();
    return stopped;
  };
  onCleanup(stop);
  await new Promise((ready, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`redis-server did not start in 10 s: ${out}`)), 10000);
    child.stdout.on('data', (d) => {
      out += String(d);
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        ready(null);
      }
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start redis-server (apt-get install redis-server): ${e.message}`));
    });
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited (${code ?? sig}) before it was ready; see artifacts/${logName}.log`));
    });
  });
  return { url: `redis://127.0.0.1:${port}/`, port, child, stop };
}

// ---- API client ----------------------------------------------------------------------------

export class HttpError extends Error {
  constructor(method, path, status, data) {
    super(`${method} ${path} → ${status} ${data?.code ?? ''} ${data?.message ?? ''}`.trim());
    this.status = status;
    this.code = data?.code;
    this.details = data?.details;
  }
}

/**
 * One HTTP(S) request from Node: `{ status, headers, text }` (headers lower-case). `ca` (PEM)
 * is the one certificate an https:// server is trusted by, e.g. a self-signed server's own
 * (startServer's `ca`); without it, fetch and the system's authorities (and no timeout:
 * `timeoutMs` bounds only the https request with a `ca`).
 * @param {string} url @param {{ method?: string, headers?: Record<string, string>, body?: string, ca?: string | null, timeoutMs?: number }} [opts]
 * @returns {Promise<{ status: number, headers: Record<string, string>, text: string }>}
 */
export async function httpRequest(url, { method = 'GET', headers = {}, body, ca = null, timeoutMs = 60000 } = {}) {
  if (!ca) {
    const res = await fetch(url, { method, headers, body });
    return { status: res.status, headers: Object.fromEntries(res.headers), text: await res.text() };
  }
  return new Promise((resolveRes, reject) => {
    const req = httpsRequest(url, { method, headers, ca, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolveRes({
        status: res.statusCode ?? 0,
        headers: Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, [v].flat().join(', ')])),
        text: Buffer.concat(chunks).toString('utf8'),
      }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * A plain HTTP client for set-up and checks that do not go through the UI. `ca`: the PEM an
 * https:// server is trusted by (startServer's `ca` for a self-signed one).
 */
export function apiClient(origin, { ca = null } = {}) {
  /** Any call; never throws for an HTTP status: `{ status, data }`. */
  async function request(token, method, path, body) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = `Bearer ${token}`;
    const { status, text } = await httpRequest(origin + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), ca });
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = { raw: text }; }
    return { status, data };
  }
  /** A call that must succeed (2xx): its JSON body; otherwise throws an HttpError with `code`. */
  async function call(token, method, path, body) {
    const { status, data } = await request(token, method, path, body);
    if (status < 200 || status > 299) throw new HttpError(method, path, status, data);
    return data;
  }
  const users = new Map();
  return {
    request,
    call,
    /** The session (access) token for a user. */
    async login(username, password = DEMO_PASSWORD) {
      const r = await call(null, 'POST', '/v1/auth/login', { username, password });
      users.set(r.user.username, r.user);
      return r.access_token;
    },
    /** The full sign-in response (tokens and user). */
    async signIn(username, password = DEMO_PASSWORD) {
      const r = await call(null, 'POST', '/v1/auth/login', { username, password });
      users.set(r.user.username, r.user);
      return r;
    },
    /** The user record of a username (looked up as `token`'s holder, who must be admin or coordinator). */
    async user(token, username) {
      if (users.has(username)) return users.get(username);
      const r = await call(token, 'GET', '/v1/users');
      for (const u of r.items) users.set(u.username, u);
      const u = users.get(username);
      if (!u) throw new Error(`no user ${username}`);
      return u;
    },
  };
}

// ---- browser -------------------------------------------------------------------------------

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // The server's media sockets are on loopback; Chromium ignores loopback candidates without this.
  '--allow-loopback-in-peer-connection',
  // Plain host candidates, not mDNS names (the server does not resolve .local).
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--autoplay-policy=no-user-gesture-required',
  // Several pages in one browser: keep those not in front rendering at full rate.
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

const captureOf = new WeakMap();

/**
 * One headless Chromium for the whole test; make a context per user with newPage().
 * `capture` ('WxH' or null) caps the fake camera: pages from newPage() ask getUserMedia for
 * at most this size whatever the app requests, because every extra pixel costs CPU on the
 * 2-core test machines. null leaves the app's constraints alone. `executablePath` replaces
 * CHROMIUM (e.g. a wrapper that starts it in another network namespace). `trustSpki` lists the
 * SPKI hashes (base64 SHA-256, startServer's `spki`) of the certificates this browser accepts
 * although no authority signed them (--ignore-certificate-errors-spki-list): those only, any
 * other certificate error still stops a page. `hosts` maps host names to IP addresses for this
 * browser only (--host-resolver-rules), e.g. { 'huizhen.test': '127.0.0.2' }: a page on a name
 * is not "potentially trustworthy" to Chromium the way localhost and all of 127.0.0.0/8 are, so
 * it needs HTTPS for a secure context, as on a hospital's LAN.
 */
export async function launchBrowser({ capture = '640x360', args = [], executablePath = CHROMIUM, trustSpki = [], hosts = {} } = {}) {
  const trust = trustSpki.length ? [`--ignore-certificate-errors-spki-list=${trustSpki.join(',')}`] : [];
  const rules = Object.entries(hosts).map(([name, ip]) => `MAP ${name} ${ip}`);
  const resolving = rules.length ? [`--host-resolver-rules=${rules.join(', ')}`] : [];
  const browser = await chromium.launch({ executablePath, headless: true, args: [...CHROMIUM_ARGS, ...trust, ...resolving, ...args] });
  onCleanup(() => browser.close());
  if (capture) {
    const [width, height] = capture.split('x').map(Number);
    captureOf.set(browser, { width, height });
  }
  return browser;
}

/** The page's console lines and errors, saved to artifacts/<name>.log at cleanup. */
const pageLogs = new WeakMap();

/**
 * A page in its own browser context (own storage: one signed-in user per page).
 * `lang` is put in localStorage ('huizhen.lang') before the app's first load only, so a later
 * switch in the UI sticks across reloads.
 */
export async function newPage(browser, { name, lang = 'zh-CN', viewport = { width: 1280, height: 800 } } = {}) {
  if (!name) throw new Error('newPage needs a name (used for its log file)');
  const context = await browser.newContext({ viewport, locale: lang, timezoneId: 'Asia/Shanghai' });
  context.setDefaultTimeout(15000);
  await context.addInitScript(({ l }) => {
    try {
      if (location.protocol.startsWith('http') && !sessionStorage.getItem('e2e.lang-set')) {
        localStorage.setItem('huizhen.lang', l);
        sessionStorage.setItem('e2e.lang-set', '1');
      }
    } catch { /* opaque origin (about:blank): nothing to set */ }
  }, { l: lang });
  const cap = captureOf.get(browser);
  if (cap) {
    await context.addInitScript(({ w, h }) => {
      const md = navigator.mediaDevices;
      if (!md?.getUserMedia) return;
      const orig = md.getUserMedia.bind(md);
      md.getUserMedia = (c = {}) => {
        if (c.video) {
          const v = typeof c.video === 'object' ? { ...c.video } : {};
          v.width = { ideal: w, max: w };
          v.height = { ideal: h, max: h };
          c = { ...c, video: v };
        }
        return orig(c);
      };
    }, { w: cap.width, h: cap.height });
  }
  const page = await context.newPage();
  const logs = [];
  pageLogs.set(page, logs);
  page.on('console', (m) => logs.push(`${new Date().toISOString().slice(11, 23)} ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`${new Date().toISOString().slice(11, 23)} pageerror: ${e.message}`));
  page.on('crash', () => logs.push('page crashed'));
  onCleanup(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    await writeFile(join(ARTIFACTS, `${name}.log`), logs.join('\n') + '\n');
    await context.close().catch(() => {});
  });
  return page;
}

/** The page's collected console lines ('type: text') and page errors ('pageerror: …'). */
export function pageLog(page) {
  return pageLogs.get(page) ?? [];
}

/** Uncaught errors on the page so far (a test may demand there are none). */
export function pageErrors(page) {
  return pageLog(page).filter((l) => l.includes(' pageerror: '));
}

/** Saves a screenshot as artifacts/screens/<name>.png. */
export async function shot(page, name) {
  await mkdir(SCREENS, { recursive: true });
  await page.screenshot({ path: join(SCREENS, `${name}.png`), fullPage: true });
}

/** Signs in through the login form and waits until the app shows the signed-in user. */
export async function signIn(page, origin, username, password = DEMO_PASSWORD) {
  if (!page.url().startsWith(origin)) await page.goto(`${origin}/#/`);
  const form = page.getByTestId('login-form');
  await form.waitFor();
  await page.getByTestId('login-username').fill(username);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
  await until(`${username} to be signed in`, async () => {
    if (await page.getByTestId('user-name').isVisible()) return true;
    const err = page.getByTestId('login-error');
    if (await err.isVisible()) throw new Error(`sign-in of ${username} failed: ${await err.innerText()}`);
    return false;
  }, 15000, 100);
}

// ---- running a test ------------------------------------------------------------------------

/**
 * Runs a test body: `body(summary)` may add to `summary` (e.g. summary.checks.x = …).
 * Prints the summary as one JSON document on stdout, cleans up, and sets the exit code.
 * `summary.step(name, fn)` runs one named step and records its duration.
 */
export async function runTest(name, body) {
  const started = Date.now();
  const steps = [];
  const summary = {
    name, ok: false, checks: {}, steps,
    async step(title, fn) {
      const t0 = Date.now();
      note(`step: ${title}`);
      try {
        const r = await fn();
        steps.push({ title, ok: true, seconds: (Date.now() - t0) / 1000 });
        return r;
      } catch (e) {
        steps.push({ title, ok: false, seconds: (Date.now() - t0) / 1000, error: e.message });
        throw e;
      }
    },
  };
  let failure = null;
  try {
    await body(summary);
    summary.ok = true;
  } catch (e) {
    failure = e;
    summary.failure = e.message;
    note(`FAIL: ${e.stack ?? e}`);
  }
  await cleanup();
  summary.seconds = Number(((Date.now() - started) / 1000).toFixed(1));
  const { step, ...plain } = summary;
  console.log(JSON.stringify(plain, null, 2));
  if (failure) process.exitCode = 1;
  else note(`PASS in ${summary.seconds} s`);
  return summary;
}
