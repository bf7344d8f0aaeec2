// A bad network for one browser (tests/e2e/badnet.test.mjs): a network namespace joined to the
// root namespace by a veth pair, random UDP loss inside it with nftables (this kernel has no
// netem), a UDP relay of our own that adds jitter, a Chromium started inside the namespace, and
// probes that read what that Chromium receives. Everything made here is undone by the harness's
// cleanup registry (onCleanup), also when the test fails. Needs root (ip netns, nft).

import { execFile, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { CHROMIUM, note, onCleanup } from './harness.mjs';

const execFileP = promisify(execFile);

/**
 * Runs a command; rejects with its stderr. `input` goes to its stdin.
 * @param {string} cmd @param {string[]} args @param {{ input?: string, env?: NodeJS.ProcessEnv }} [opts]
 * @returns {Promise<string>} stdout
 */
export function run(cmd, args, { input, env } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env: env ?? process.env });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.once('error', (e) => reject(new Error(`${cmd}: ${e.message}`)));
    child.once('exit', (code, sig) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} → ${code ?? sig}: ${err.trim() || out.trim()}`));
    });
    if (child.stdin) {
      child.stdin.on('error', () => {}); // it may exit before reading: its exit code tells
      child.stdin.end(input);
    }
  });
}

/** @param {string} name @returns {Promise<boolean>} whether `name` is a command on PATH */
async function have(name) {
  try {
    await execFileP('sh', ['-c', `command -v ${name}`]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Installs nftables when `nft` is missing (Debian's package; apt-get as root). Returns whether
 * it installed it.
 */
export async function ensureNft() {
  if (await have('nft')) return false;
  note('nft is missing: apt-get install nftables');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await run('apt-get', ['update', '-qq'], { env });
  await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'nftables'], { env });
  if (!(await have('nft'))) throw new Error('nftables installed but nft is still not on PATH');
  return true;
}

/** Throws unless this process may make namespaces and firewall rules. */
export async function requireRoot() {
  if (process.getuid?.() !== 0) throw new Error('the bad-network test needs root (ip netns, nft): run it as root');
  if (!(await have('ip'))) throw new Error('no `ip` command: apt-get install iproute2');
}

/**
 * @typedef {object} Netns
 * @property {string} ns the namespace's name
 * @property {string} hostIp the root side's address (the server listens here)
 * @property {string} relayIp a second root-side address (the jitter relay listens here)
 * @property {string} nsIp the address inside the namespace (the degraded browser's)
 * @property {(percent: number) => Promise<number>} setLoss drops this share of UDP datagrams
 *   both ways inside the namespace (0: none); resolves with Date.now() once the rules are in
 * @property {() => Promise<{ in: { seen: number, dropped: number }, out: { seen: number, dropped: number } }>} counters
 *   UDP datagrams seen and dropped so far in each direction (reset by setLoss)
 * @property {() => Promise<void>} destroy
 */

/**
 * A namespace `hzbad<pid>` with a veth pair on 10.77.<x>.0/24 (x: the first subnet no
 * interface uses): <x>.1 and <x>.3 on the root side, <x>.2 inside; lo and both ends up; an
 * nftables table `hzbad` inside with an input and an output chain, empty until setLoss().
 * @returns {Promise<Netns>}
 */
export async function makeNetns() {
  await sweepStale();
  const ns = `hzbad${process.pid}`;
  const hostIf = `hzb${process.pid}h`;
  const nsIf = `hzb${process.pid}n`;
  const used = await run('ip', ['-o', '-4', 'addr', 'show']);
  const start = process.pid % 250;
  let x = -1;
  for (let i = 0; i < 250; i++) {
    const c = ((start + i) % 250) + 1;
    if (!used.includes(` 10.77.${c}.`)) { x = c; break; }
  }
  if (x < 0) throw new Error('no free 10.77.x.0/24 subnet');
  const [hostIp, nsIp, relayIp] = [`10.77.${x}.1`, `10.77.${x}.2`, `10.77.${x}.3`];

  let destroyed = null;
  const destroy = () => {
    destroyed ??= (async () => {
      // Whatever still runs in the namespace was started by this test (its Chromium): end it
      // by process id before the namespace goes.
      const pids = (await run('ip', ['netns', 'pids', ns]).catch(() => '')).split(/\s+/).filter(Boolean).map(Number);
      for (const pid of pids) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      }
      await run('ip', ['link', 'del', hostIf]).catch(() => {});
      await run('ip', ['netns', 'del', ns]).catch((e) => note(`netns del: ${e.message}`));
    })();
    return destroyed;
  };
  onCleanup(destroy);

  await run('ip', ['netns', 'add', ns]);
  await run('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf, 'netns', ns]);
  await run('ip', ['addr', 'add', `${hostIp}/24`, 'dev', hostIf]);
  await run('ip', ['addr', 'add', `${relayIp}/24`, 'dev', hostIf]);
  await run('ip', ['link', 'set', hostIf, 'up']);
  await run('ip', ['-n', ns, 'addr', 'add', `${nsIp}/24`, 'dev', nsIf]);
  await run('ip', ['-n', ns, 'link', 'set', nsIf, 'up']);
  await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  // Input is what reaches the browser (downstream), output what it sends (upstream). The first
  // rule of each chain counts UDP, the second (from setLoss) drops a random share of it. TCP
  // (HTTP, the signaling WebSocket) is never touched.
  const nft = (/** @type {string} */ script) => run('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: script });
  await nft([
    'add table inet hzbad',
    "add chain inet hzbad in { type filter hook input priority 0; policy accept; }",
    "add chain inet hzbad out { type filter hook output priority 0; policy accept; }",
    '',
  ].join('\n'));
  let current = -1;
  /** @param {number} percent */
  const setLoss = async (percent) => {
    const p = Math.round(percent * 10); // per mille
    const lines = [];
    for (const chain of ['in', 'out']) {
      lines.push(`flush chain inet hzbad ${chain}`, `add rule inet hzbad ${chain} meta l4proto udp counter`);
      if (p > 0) lines.push(`add rule inet hzbad ${chain} meta l4proto udp numgen random mod 1000 < ${p} counter drop`);
    }
    await nft(lines.join('\n') + '\n');
    current = percent;
    return Date.now();
  };
  await setLoss(0);
  const counters = async () => {
    const out = JSON.parse(await run('ip', ['netns', 'exec', ns, 'nft', '-j', 'list', 'table', 'inet', 'hzbad']));
    const r = { in: { seen: 0, dropped: 0 }, out: { seen: 0, dropped: 0 } };
    for (const item of out.nftables ?? []) {
      const rule = item.rule;
      if (!rule) continue;
      const c = rule.expr.find((/** @type {any} */ e) => e.counter)?.counter;
      if (!c) continue;
      const dir = /** @type {'in' | 'out'} */ (rule.chain);
      if (rule.expr.some((/** @type {any} */ e) => 'drop' in e)) r[dir].dropped = c.packets;
      else r[dir].seen = c.packets;
    }
    return r;
  };
  note(`namespace ${ns}: ${hostIp} and ${relayIp} (root side, ${hostIf}) <-> ${nsIp} (${nsIf}); loss ${current} %`);
  return { ns, hostIp, relayIp, nsIp, setLoss, counters, destroy };
}

/**
 * Removes the namespaces (and veth pairs) of earlier runs whose process is gone (killed before
 * its cleanup ran), so they do not pile up. Processes still inside them are left alone.
 */
async function sweepStale() {
  const list = await run('ip', ['netns', 'list']).catch(() => '');
  for (const m of list.matchAll(/^hzbad(\d+)\b/gm)) {
    const pid = Number(m[1]);
    if (pid === process.pid) continue;
    try {
      process.kill(pid, 0);
      continue; // its run is still going
    } catch { /* gone */ }
    note(`removing the namespace of an earlier run: hzbad${pid}`);
    await run('ip', ['link', 'del', `hzb${pid}h`]).catch(() => {});
    await run('ip', ['netns', 'del', `hzbad${pid}`]).catch(() => {});
  }
}

/**
 * A free UDP port `p` such that p … p+count-1 can be bound on every one of `ips`.
 * @param {string[]} ips @param {number} count
 */
export async function freeUdpPorts(ips, count) {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    /** @type {dgram.Socket[]} */
    const held = [];
    let ok = true;
    for (const ip of ips) {
      for (let i = 0; i < count && ok; i++) {
        const s = dgram.createSocket('udp4');
        held.push(s);
        ok = await new Promise((r) => {
          s.once('error', () => r(false));
          s.bind(base + i, ip, () => r(true));
        });
      }
    }
    for (const s of held) {
      try { s.close(); } catch { /* not bound */ }
    }
    if (ok) return base;
  }
  throw new Error('no free UDP port range');
}

/**
 * @typedef {object} JitterRelay
 * @property {(ms: number) => void} setJitter delay each datagram of the delayed client by a
 *   random 0…ms (0: forward at once)
 * @property {() => Promise<Record<string, number>>} stats datagrams relayed, delayed (and their
 *   delay), and sent on after a later one (reordered); loopP99Ms and loopMaxMs: how late the
 *   relay's own event loop ran (what it may add to every datagram) since the last call
 * @property {() => Promise<void>} stop
 */

/**
 * A UDP relay (lib/udp-relay.mjs, in a worker thread of its own): listens on listenIp at each of
 * `ports` and forwards to targetIp at the same port, one upstream socket per client address.
 * Datagrams to and from clients at `delayedIp` (the degraded browser) get a random delay of
 * 0…jitter ms each way, so they may overtake each other, as on a jittery link; every other
 * client's go through at once.
 * @param {{ listenIp: string, targetIp: string, ports: number[], delayedIp: string }} o
 * @returns {Promise<JitterRelay>}
 */
export async function startJitterRelay(o) {
  const worker = new Worker(new URL('./udp-relay.mjs', import.meta.url), { workerData: o });
  const stop = async () => { await worker.terminate(); };
  onCleanup(stop);
  /** @type {((s: Record<string, number>) => void)[]} */
  const waiting = [];
  await new Promise((resolve, reject) => {
    worker.on('message', (m) => {
      if (m.type === 'ready') resolve(null);
      else if (m.type === 'error') reject(new Error(m.message));
      else if (m.type === 'stats') waiting.shift()?.(m.stats);
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the relay stopped (${code})`)));
  });
  return {
    setJitter: (ms) => worker.postMessage({ type: 'jitter', ms }),
    stats: () => new Promise((resolve) => {
      waiting.push(resolve);
      worker.postMessage({ type: 'stats' });
    }),
    stop,
  };
}

/**
 * An executable that starts Debian's Chromium inside namespace `ns` (for launchBrowser's
 * executablePath). Playwright drives it over pipes, which the namespace does not touch.
 * @param {string} ns
 */
export async function chromiumInNetns(ns) {
  const dir = await mkdtemp(join(tmpdir(), 'hz-badnet-'));
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'chromium-in-netns');
  await writeFile(path, `#!/bin/sh\nexec ip netns exec ${ns} ${CHROMIUM} "$@"\n`);
  await chmod(path, 0o755);
  return path;
}

// ---- what the degraded page receives -------------------------------------------------------

/**
 * Init script for the degraded page's context: keeps every RTCPeerConnection the app makes and
 * every `audio_only` / `connection_quality` message on its signaling socket, with the time
 * (window.__badnet). The app itself is not changed.
 */
export function pageTap() {
  /** @type {any} */
  const w = window;
  if (w.__badnet) return;
  const tap = { pcs: /** @type {any[]} RTCPeerConnection */ ([]), messages: /** @type {any[]} */ ([]), samples: /** @type {any[]} */ ([]), timer: 0 };
  w.__badnet = tap;
  const OrigPc = w.RTCPeerConnection;
  w.RTCPeerConnection = class extends OrigPc {
    /** @param {any[]} a */
    constructor(...a) {
      super(...a);
      tap.pcs.push(this);
    }
  };
  const OrigWs = w.WebSocket;
  w.WebSocket = class extends OrigWs {
    /** @param {any[]} a */
    constructor(...a) {
      super(...a);
      this.addEventListener('message', (/** @type {MessageEvent} */ e) => {
        if (typeof e.data !== 'string' || !/"type":"(audio_only|connection_quality)"/.test(e.data)) return;
        try { tap.messages.push({ t: Date.now(), ...JSON.parse(e.data) }); } catch { /* not JSON */ }
      });
    }
  };
}

/**
 * Starts sampling, inside the page, every `everyMs`: the inbound video (one remote camera) and
 * audio figures of the app's connections, whether the audio-only banner shows, and the app's
 * own layer cap. Samples wait in the page until takeSamples().
 * @param {import('playwright-core').Page} page @param {number} everyMs
 */
export async function startSampling(page, everyMs) {
  await page.evaluate((everyMs) => {
    /** @type {any} */
    const w = window;
    const tap = w.__badnet;
    if (tap.timer) return;
    let busy = false;
    tap.timer = setInterval(async () => {
      if (busy) return; // a slow getStats: skip a tick rather than pile up
      busy = true;
      try {
        const t = Date.now();
        /** @type {any} */
        let v = null;
        /** @type {any} */
        let a = null;
        let pcIndex = -1;
        for (const [i, pc] of tap.pcs.entries()) {
          if (pc.connectionState === 'closed') continue;
          (await pc.getStats()).forEach((/** @type {any} */ s) => {
            if (s.type !== 'inbound-rtp') return;
            if (s.kind === 'video' && (!v || (s.framesDecoded ?? 0) >= (v.framesDecoded ?? 0))) { v = s; pcIndex = i; }
            if (s.kind === 'audio' && (!a || (s.packetsReceived ?? 0) >= (a.packetsReceived ?? 0))) a = s;
          });
        }
        const banner = document.querySelector('[data-testid="audio-only"]');
        const call = w.hzCall?.state?.();
        tap.samples.push({
          t,
          pc: pcIndex,
          v: v && {
            w: v.frameWidth ?? 0, h: v.frameHeight ?? 0, dec: v.framesDecoded ?? 0, fps: v.framesPerSecond ?? null,
            rcv: v.packetsReceived ?? 0, lost: v.packetsLost ?? 0, jit: v.jitter ?? null, nack: v.nackCount ?? 0, pli: v.pliCount ?? 0,
            kf: v.keyFramesDecoded ?? 0, freezes: v.freezeCount ?? 0, freezeS: v.totalFreezesDuration ?? 0, bytes: v.bytesReceived ?? 0,
            frx: v.framesReceived ?? 0, fdrop: v.framesDropped ?? 0,
          },
          a: a && {
            rcv: a.packetsReceived ?? 0, lost: a.packetsLost ?? 0, samples: a.totalSamplesReceived ?? 0, concealed: a.concealedSamples ?? 0,
            level: a.audioLevel ?? null, jit: a.jitter ?? null,
          },
          banner: Boolean(banner && /** @type {HTMLElement} */ (banner).checkVisibility()),
          cap: call?.layerCap ?? null,
          phase: call?.phase ?? null,
        });
      } catch (e) {
        tap.samples.push({ t: Date.now(), error: String(e) });
      } finally {
        busy = false;
      }
    }, everyMs);
  }, everyMs);
}

/**
 * The samples and tapped messages gathered since the last call.
 * @param {import('playwright-core').Page} page
 * @returns {Promise<{ samples: any[], messages: any[] }>}
 */
export async function takeSamples(page) {
  return page.evaluate(() => {
    /** @type {any} */
    const tap = /** @type {any} */ (window).__badnet;
    return { samples: tap.samples.splice(0), messages: tap.messages.splice(0) };
  });
}
