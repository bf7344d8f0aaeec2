// The jitter relay of lib/badnet.mjs, run as a worker thread so that the test's own event loop
// (Playwright, sampling, garbage collection) never holds a datagram up. Messages from the
// parent: { type: 'jitter', ms } and { type: 'stats' } (answered with { type: 'stats', stats });
// it posts { type: 'ready' } once every port is bound, or { type: 'error', message }.
//
// It listens on listenIp at each of `ports` and forwards to targetIp at the same port, with one
// upstream socket per client address, so the server tells the clients apart. Datagrams to and
// from clients at `delayedIp` get a random delay of 0…jitter ms each way (so they may overtake
// each other, as on a jittery link); every other client's go through at once.

import dgram from 'node:dgram';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';

/** @type {{ listenIp: string, targetIp: string, ports: number[], delayedIp: string }} */
const { listenIp, targetIp, ports, delayedIp } = workerData;
const port0 = /** @type {import('node:worker_threads').MessagePort} */ (parentPort);
let jitter = 0;
// How late this thread's loop runs: what the relay itself may add to a datagram.
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
const st = { upstream: 0, downstream: 0, delayed: 0, reordered: 0, delaySumMs: 0, maxDelayMs: 0, flows: 0 };

/** One direction of one flow: datagrams numbered as they come, the highest number sent on. */
const lane = () => ({ seq: 0, maxOut: -1 });
/**
 * Sends at once, or after a random delay for the delayed client; counts datagrams sent on after
 * a later one of the same lane (reordered).
 * @param {{ seq: number, maxOut: number }} l @param {() => void} send @param {boolean} delayed
 */
function later(l, send, delayed) {
  const n = l.seq++;
  const go = () => {
    if (n < l.maxOut) st.reordered++;
    else l.maxOut = n;
    send();
  };
  if (!delayed || jitter <= 0) { go(); return; }
  const ms = Math.random() * jitter;
  st.delayed++;
  st.delaySumMs += ms;
  st.maxDelayMs = Math.max(st.maxDelayMs, ms);
  setTimeout(go, ms);
}

/** @param {number} port */
async function listen(port) {
  const front = dgram.createSocket('udp4');
  /** @type {Map<string, { socket: dgram.Socket, up: { seq: number, maxOut: number }, down: { seq: number, maxOut: number } }>} client address → its flow */
  const flows = new Map();
  front.on('message', (msg, rinfo) => {
    const key = `${rinfo.address}:${rinfo.port}`;
    const delayed = rinfo.address === delayedIp;
    let flow = flows.get(key);
    if (!flow) {
      const u = dgram.createSocket('udp4');
      const f = { socket: u, up: lane(), down: lane() };
      flow = f;
      flows.set(key, f);
      st.flows++;
      u.on('message', (back) => {
        st.downstream++;
        later(f.down, () => front.send(back, rinfo.port, rinfo.address, () => {}), delayed);
      });
      u.on('error', () => {});
    }
    st.upstream++;
    const u = flow.socket;
    later(flow.up, () => u.send(msg, port, targetIp, () => {}), delayed);
  });
  await new Promise((resolve, reject) => {
    front.once('error', reject);
    front.bind(port, listenIp, () => resolve(null));
  });
  front.on('error', () => {});
}

port0.on('message', (m) => {
  if (m.type === 'jitter') jitter = m.ms;
  if (m.type === 'stats') {
    // The histogram holds whole timer intervals: what is over the 10 ms resolution is lag.
    const over = (/** @type {number} */ ns) => Math.max(0, Number((ns / 1e6 - 10).toFixed(1)));
    const lag = { loopP99Ms: over(loop.percentile(99)), loopMaxMs: over(loop.max) };
    loop.reset();
    port0.postMessage({
      type: 'stats',
      stats: { ...st, ...lag, meanDelayMs: st.delayed ? Number((st.delaySumMs / st.delayed).toFixed(1)) : 0, maxDelayMs: Number(st.maxDelayMs.toFixed(1)), delaySumMs: Math.round(st.delaySumMs) },
    });
  }
});

try {
  for (const p of ports) await listen(p);
  port0.postMessage({ type: 'ready' });
} catch (e) {
  port0.postMessage({ type: 'error', message: `relay ${listenIp}: ${/** @type {Error} */ (e).message}` });
}
