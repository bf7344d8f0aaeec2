// Minimal Huizhen media client for the browser end-to-end test: joins with a room token,
// publishes camera (simulcast q/h/f) and microphone on the publish connection, answers the
// server's subscribe offers on a second connection and shows every remote participant in a
// <video data-participant="NAME">. The test reads window.hz.state and await window.hz.stats().
// URL: index.html?ws=ws://HOST:PORT/v1/rtc&token=ROOM_TOKEN[&width=640&height=480] (camera size).

const params = new URLSearchParams(location.search);
const wsBase = params.get('ws');
const token = params.get('token');

const state = {
  phase: 'starting',
  identity: null,
  room: null,
  errors: [], // {at, code, message, id?} from the server, and page-side failures
  received: {}, // message type -> count
  subscribeOffers: 0,
  subscribeAnswersAcked: 0,
  publishAnswered: false,
  tracksPublished: [], // track_published payloads
  mediaClosed: null,
  pc: { publish: null, subscribe: null }, // connection states
  ice: { publish: null, subscribe: null },
  candidatesSent: { publish: 0, subscribe: 0 },
  candidatesReceived: { publish: 0, subscribe: 0 },
  helloSentAt: null,
  joinedAt: null,
  local: { frames: 0, firstFrameAt: null, width: 0, height: 0 },
  remotes: {}, // participant -> {frames, firstFrameAt, width, height, tracks: [kinds]}
};

const logEl = document.getElementById('log');
function log(...parts) {
  const line = `${(performance.now() / 1000).toFixed(2)}s ${parts.join(' ')}`;
  console.log(`[hz] ${line}`);
  logEl.textContent += line + '\n';
}
function setStatus(s) {
  state.phase = s;
  document.getElementById('status').textContent = `${state.identity ?? ''} ${s}`;
}
function fail(where, e) {
  const message = `${where}: ${e && e.message ? e.message : e}`;
  state.errors.push({ at: performance.now(), code: 'page', message });
  log('ERROR', message);
}

// ---- signaling -------------------------------------------------------------------------

let ws;
let nextId = 1;
const pending = new Map(); // id -> {resolve, reject}

function send(msg) {
  ws.send(JSON.stringify(msg));
}

/** Sends a request and resolves with its answer (ack / publish_answer); rejects on `error`. */
function request(msg) {
  const id = `${msg.type}-${nextId++}`;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    send({ ...msg, id });
  });
}

// Server messages are handled strictly in order (a trickle must not overtake the offer it
// belongs to).
let chain = Promise.resolve();
function onMessage(ev) {
  let msg;
  try {
    msg = JSON.parse(ev.data);
  } catch (e) {
    fail('parse', e);
    return;
  }
  state.received[msg.type] = (state.received[msg.type] ?? 0) + 1;
  chain = chain.then(() => handle(msg)).catch((e) => fail(`handling ${msg.type}`, e));
}

async function handle(msg) {
  if (msg.id && pending.has(msg.id) && msg.type !== 'hello') {
    const p = pending.get(msg.id);
    pending.delete(msg.id);
    if (msg.type === 'error') {
      state.errors.push({ at: performance.now(), id: msg.id, code: msg.code, message: msg.message });
      log('error answer', msg.id, msg.code, msg.message);
      p.reject(new Error(`${msg.code}: ${msg.message}`));
    } else {
      p.resolve(msg);
    }
    return;
  }
  switch (msg.type) {
    case 'hello':
      state.identity = msg.you.id;
      state.room = msg.room;
      log('hello', msg.state, 'as', msg.you.id, 'in', msg.room);
      if (msg.state === 'joined') {
        state.joinedAt = performance.now();
        startMedia().catch((e) => fail('startMedia', e));
      } else {
        setStatus('in lobby');
      }
      break;
    case 'admitted':
      state.joinedAt = performance.now();
      startMedia().catch((e) => fail('startMedia', e));
      break;
    case 'error':
      state.errors.push({ at: performance.now(), id: msg.id, code: msg.code, message: msg.message });
      log('error', msg.id ?? '', msg.code, msg.message);
      break;
    case 'subscribe_offer':
      await onSubscribeOffer(msg.sdp);
      break;
    case 'trickle':
      await onRemoteCandidate(msg.target, msg.candidate);
      break;
    case 'track_published':
      state.tracksPublished.push(msg.track);
      log('track_published', JSON.stringify(msg.track));
      break;
    case 'media_closed':
      state.mediaClosed = msg.reason;
      log('media_closed', msg.reason);
      break;
    default:
      break;
  }
}

// ---- media -----------------------------------------------------------------------------

const pcs = { publish: null, subscribe: null };
const earlyCandidates = { publish: [], subscribe: [] };
let localStream;

function watchPc(target, pc) {
  pc.onconnectionstatechange = () => {
    state.pc[target] = pc.connectionState;
    log(target, 'connection', pc.connectionState);
  };
  pc.oniceconnectionstatechange = () => {
    state.ice[target] = pc.iceConnectionState;
  };
  pc.onicecandidate = (e) => {
    if (!e.candidate) return;
    state.candidatesSent[target]++;
    request({ type: 'trickle', target, candidate: e.candidate.toJSON() }).catch(() => {});
  };
  state.pc[target] = pc.connectionState;
}

async function onRemoteCandidate(target, candidate) {
  state.candidatesReceived[target]++;
  const pc = pcs[target];
  if (!pc || !pc.remoteDescription) {
    earlyCandidates[target].push(candidate);
    return;
  }
  await pc.addIceCandidate(candidate);
}

async function flushCandidates(target) {
  for (const c of earlyCandidates[target].splice(0)) {
    await pcs[target].addIceCandidate(c);
  }
}

async function startMedia() {
  setStatus('publishing');
  localStream = await navigator.mediaDevices.getUserMedia({
    audio: true,
    video: { width: Number(params.get('width') ?? 640), height: Number(params.get('height') ?? 480) },
  });
  const preview = document.getElementById('local');
  preview.srcObject = localStream;
  countFrames(preview, state.local);

  const pc = new RTCPeerConnection();
  pcs.publish = pc;
  watchPc('publish', pc);
  for (const track of localStream.getAudioTracks()) {
    pc.addTransceiver(track, { direction: 'sendonly', streams: [localStream] });
  }
  for (const track of localStream.getVideoTracks()) {
    pc.addTransceiver(track, {
      direction: 'sendonly',
      streams: [localStream],
      sendEncodings: [
        { rid: 'q', scaleResolutionDownBy: 4 },
        { rid: 'h', scaleResolutionDownBy: 2 },
        { rid: 'f' },
      ],
    });
  }
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  const answer = await request({ type: 'publish', sdp: pc.localDescription.sdp });
  await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
  state.publishAnswered = true;
  await flushCandidates('publish');
  setStatus('published');
}

async function onSubscribeOffer(sdp) {
  state.subscribeOffers++;
  if (!pcs.subscribe) {
    const pc = new RTCPeerConnection();
    pcs.subscribe = pc;
    watchPc('subscribe', pc);
    pc.ontrack = onTrack;
  }
  const pc = pcs.subscribe;
  await pc.setRemoteDescription({ type: 'offer', sdp });
  await flushCandidates('subscribe');
  const answer = await pc.createAnswer();
  await pc.setLocalDescription(answer);
  // Not awaited: the answer's ack must not hold up the messages queued behind this offer.
  request({ type: 'subscribe_answer', sdp: pc.localDescription.sdp })
    .then(() => state.subscribeAnswersAcked++)
    .catch(() => {});
}

function remoteVideo(participant) {
  let v = document.querySelector(`video[data-participant="${CSS.escape(participant)}"]`);
  if (!v) {
    const fig = document.createElement('figure');
    v = document.createElement('video');
    v.dataset.participant = participant;
    v.autoplay = true;
    v.muted = true; // the audio is checked through an AnalyserNode, not played
    v.playsInline = true;
    const cap = document.createElement('figcaption');
    cap.textContent = participant;
    fig.append(v, cap);
    document.getElementById('videos').append(fig);
  }
  return v;
}

function onTrack(e) {
  const stream = e.streams[0];
  const participant = stream ? stream.id : `unknown-${e.track.id}`;
  log('ontrack', e.track.kind, 'from', participant);
  const rec = (state.remotes[participant] ??= {
    frames: 0,
    firstFrameAt: null,
    width: 0,
    height: 0,
    tracks: [],
    audioLevel: null,
  });
  rec.tracks.push(e.track.kind);
  const v = remoteVideo(participant);
  if (v.srcObject !== stream) {
    v.srcObject = stream;
  }
  if (e.track.kind === 'video' && !rec.counting) {
    rec.counting = true;
    countFrames(v, rec);
    v.play().catch(() => {});
  }
  if (e.track.kind === 'audio') {
    watchAudio(e.track, rec);
  }
}

/** Counts decoded frames actually presented by a <video>. */
function countFrames(video, rec) {
  const onFrame = (_now, meta) => {
    rec.frames++;
    if (rec.firstFrameAt === null) rec.firstFrameAt = performance.now();
    rec.width = meta.width;
    rec.height = meta.height;
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}

let audioCtx;
function watchAudio(track, rec) {
  try {
    audioCtx ??= new AudioContext();
    const src = audioCtx.createMediaStreamSource(new MediaStream([track]));
    const an = audioCtx.createAnalyser();
    an.fftSize = 2048;
    src.connect(an);
    const buf = new Float32Array(an.fftSize);
    // The fake microphone beeps now and then: keep the loudest level heard, not the current one.
    rec.audioPeak = 0;
    setInterval(() => {
      an.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const x of buf) sum += x * x;
      rec.audioPeak = Math.max(rec.audioPeak, Math.sqrt(sum / buf.length));
    }, 40);
  } catch (e) {
    fail('audio', e);
  }
}

// ---- what the test reads -----------------------------------------------------------------

const canvas = document.createElement('canvas');
canvas.width = 64;
canvas.height = 48;
const ctx2d = canvas.getContext('2d', { willReadFrequently: true });

/** Mean luma (0–255) of the frame the video shows now, and a coarse fingerprint of it. */
function sample(video) {
  if (!video || video.readyState < 2 || !video.videoWidth) return null;
  ctx2d.drawImage(video, 0, 0, canvas.width, canvas.height);
  const px = ctx2d.getImageData(0, 0, canvas.width, canvas.height).data;
  let sum = 0;
  let fp = 0;
  for (let i = 0; i < px.length; i += 4) {
    const y = 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
    sum += y;
    fp = (fp * 31 + (y >> 3)) >>> 0;
  }
  return { brightness: sum / (px.length / 4), fingerprint: fp };
}

async function rtpStats(pc) {
  if (!pc) return [];
  const out = [];
  const report = await pc.getStats();
  report.forEach((s) => {
    if (s.type === 'outbound-rtp' || s.type === 'inbound-rtp') {
      out.push({
        type: s.type,
        kind: s.kind,
        rid: s.rid,
        ssrc: s.ssrc,
        active: s.active,
        frameWidth: s.frameWidth,
        frameHeight: s.frameHeight,
        framesPerSecond: s.framesPerSecond,
        framesEncoded: s.framesEncoded,
        framesDecoded: s.framesDecoded,
        framesSent: s.framesSent,
        packetsSent: s.packetsSent,
        packetsReceived: s.packetsReceived,
        packetsLost: s.packetsLost,
        bytesSent: s.bytesSent,
        bytesReceived: s.bytesReceived,
        keyFramesEncoded: s.keyFramesEncoded,
        keyFramesDecoded: s.keyFramesDecoded,
        qualityLimitationReason: s.qualityLimitationReason,
        encoderImplementation: s.encoderImplementation,
        scalabilityMode: s.scalabilityMode,
        nackCount: s.nackCount,
        pliCount: s.pliCount,
      });
    } else if (s.type === 'remote-inbound-rtp') {
      // The server's receiver reports about what this page sends.
      out.push({
        type: s.type,
        kind: s.kind,
        ssrc: s.ssrc,
        packetsLost: s.packetsLost,
        fractionLost: s.fractionLost,
        roundTripTime: s.roundTripTime,
      });
    }
  });
  return out;
}

/**
 * The ICE candidate pair a connection uses ("local -> remote" addresses) and the sender's
 * bandwidth estimate on it (Chromium's GCC, bits/s), from one stats report.
 */
async function selectedPair(pc) {
  if (!pc) return { text: null, outgoingBps: null };
  const report = await pc.getStats();
  let pair = null;
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
  });
  if (!pair) return { text: null, outgoingBps: null };
  const l = report.get(pair.localCandidateId);
  const r = report.get(pair.remoteCandidateId);
  const fmt = (c) => (c ? `${c.candidateType} ${c.protocol} ${c.address}:${c.port}` : '?');
  return { text: `${fmt(l)} -> ${fmt(r)}`, outgoingBps: pair.availableOutgoingBitrate ?? null };
}

async function stats() {
  const publishPair = await selectedPair(pcs.publish);
  const remotes = {};
  for (const [name, rec] of Object.entries(state.remotes)) {
    const v = document.querySelector(`video[data-participant="${CSS.escape(name)}"]`);
    remotes[name] = {
      frames: rec.frames,
      firstFrameMs: rec.firstFrameAt === null ? null : Math.round(rec.firstFrameAt),
      width: rec.width,
      height: rec.height,
      tracks: rec.tracks,
      frame: sample(v),
      audioPeak: rec.audioPeak ?? null, // loudest RMS (0–1) of the received audio so far
    };
  }
  return {
    identity: state.identity,
    phase: state.phase,
    now: Math.round(performance.now()),
    joinedMs: state.joinedAt === null ? null : Math.round(state.joinedAt),
    pc: { ...state.pc },
    ice: { ...state.ice },
    pairs: { publish: publishPair.text, subscribe: (await selectedPair(pcs.subscribe)).text },
    publishEstimateBps: publishPair.outgoingBps,
    candidatesSent: { ...state.candidatesSent },
    candidatesReceived: { ...state.candidatesReceived },
    publishAnswered: state.publishAnswered,
    subscribeOffers: state.subscribeOffers,
    subscribeAnswersAcked: state.subscribeAnswersAcked,
    tracksPublished: state.tracksPublished,
    received: { ...state.received },
    mediaClosed: state.mediaClosed,
    errors: state.errors,
    local: { ...state.local, frame: sample(document.getElementById('local')) },
    remotes,
    outbound: await rtpStats(pcs.publish),
    inbound: await rtpStats(pcs.subscribe),
  };
}

window.hz = {
  state,
  stats,
  /** Caps the layer this page receives of a remote track (`low` | `medium` | `high`). */
  setLayer: (track, layer) => request({ type: 'set_layer', track, layer }),
  sdp: () => ({
    publishLocal: pcs.publish?.localDescription?.sdp ?? null,
    publishRemote: pcs.publish?.remoteDescription?.sdp ?? null,
    subscribeRemote: pcs.subscribe?.remoteDescription?.sdp ?? null,
    subscribeLocal: pcs.subscribe?.localDescription?.sdp ?? null,
  }),
};

// ---- start -----------------------------------------------------------------------------

if (!wsBase || !token) {
  fail('start', 'the page needs ?ws=…&token=…');
} else {
  const url = `${wsBase}${wsBase.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
  ws = new WebSocket(url);
  setStatus('connecting');
  ws.onopen = () => {
    state.helloSentAt = performance.now();
    send({ type: 'hello', id: 'h', version: 1 });
  };
  ws.onmessage = onMessage;
  ws.onclose = (e) => {
    log('socket closed', e.code, e.reason);
    if (state.phase !== 'closed') setStatus(`socket closed (${e.code})`);
  };
  ws.onerror = () => fail('socket', 'WebSocket error');
}
