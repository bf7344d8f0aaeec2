// The two PeerConnections of one signaling socket (docs/protocol.md §11): publish (we offer)
// and subscribe (the server offers, renegotiating as tracks come and go). Media belongs to
// the socket: a reconnect builds a new MediaSession.

/** Simulcast encodings, low to high, as the server expects them (rids q, h, f). */
const SIMULCAST = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', maxBitrate: 1_500_000 },
];

/**
 * @typedef {object} Sent
 * @property {string} name our track name in the room (mic, cam, cam2, screen1…)
 * @property {RTCRtpTransceiver} transceiver
 */

/**
 * The room track each m-line of a subscribe offer carries, by mid: the server names a
 * forwarded track `a=msid:<participant> <participant>.<track>` (protocol §11), the room
 * track id is `<participant>/<track>`. M-lines without an msid (inactive ones) are left out.
 * @param {string} sdp
 * @returns {Map<string, { participant: string, id: string }>}
 */
export function roomTracksByMid(sdp) {
  const out = new Map();
  for (const section of sdp.split(/\r\n(?=m=)/)) {
    const mid = /\r\na=mid:(\S+)/.exec(section)?.[1];
    const msid = /\r\na=msid:(\S+) (\S+)/.exec(section);
    if (mid == null || !msid) continue;
    out.set(mid, { participant: msid[1], id: roomTrackId(msid[1], msid[2]) });
  }
  return out;
}

/**
 * The room track id (`<participant>/<track>`) of a forwarded track the server names
 * `<participant>.<track>` in its msid (protocol §11).
 * @param {string} participant @param {string} trackId
 */
export function roomTrackId(participant, trackId) {
  const local = trackId.startsWith(`${participant}.`) ? trackId.slice(participant.length + 1) : trackId;
  return `${participant}/${local}`;
}

export class MediaSession {
  /**
   * @param {import('./signaling.js').RoomSocket} socket
   * @param {RTCIceServer[]} iceServers
   * @param {(track: MediaStreamTrack, participant: string, roomTrackId: string, exact?: boolean) => void} onRemoteTrack
   * @param {(target: string, state: string) => void} onState
   */
  constructor(socket, iceServers, onRemoteTrack, onState) {
    this.socket = socket;
    this.iceServers = iceServers;
    this.onRemoteTrack = onRemoteTrack;
    this.onState = onState;
    /** @type {RTCPeerConnection | null} */
    this.pub = null;
    /** @type {RTCPeerConnection | null} */
    this.sub = null;
    /** @type {Record<string, RTCIceCandidateInit[]>} */
    this.early = { publish: [], subscribe: [] };
    /** @type {Map<string, Sent>} name → what we send */
    this.sent = new Map();
    /** One publish negotiation at a time: a second one waits for the first answer. */
    this.publishing = Promise.resolve();
    this.closed = false;
  }

  /** @param {'publish' | 'subscribe'} target */
  newPc(target) {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: 'max-bundle' });
    pc.onicecandidate = (e) => {
      if (!e.candidate || this.closed) return;
      this.socket.request({ type: 'trickle', target, candidate: e.candidate.toJSON() }).catch(() => {});
    };
    pc.onconnectionstatechange = () => this.onState(target, pc.connectionState);
    return pc;
  }

  /**
   * Adds a track to send under `name`; call negotiatePublish() after the last one.
   * @param {string} name
   * @param {MediaStreamTrack} track
   * @param {{ simulcast?: boolean, hint?: string }} [opts]
   */
  addTrack(name, track, opts = {}) {
    this.pub ??= this.newPc('publish');
    if (opts.hint && 'contentHint' in track) track.contentHint = opts.hint;
    /** @type {RTCRtpTransceiverInit} */
    const init = { direction: 'sendonly', streams: [new MediaStream([track])] };
    if (track.kind === 'video' && opts.simulcast) init.sendEncodings = SIMULCAST.map((e) => ({ ...e }));
    const transceiver = this.pub.addTransceiver(track, init);
    this.sent.set(name, { name, transceiver });
  }

  /**
   * Swaps the track sent under `name` (another camera) without renegotiation.
   * @param {string} name
   * @param {MediaStreamTrack | null} track
   */
  async replaceTrack(name, track) {
    const s = this.sent.get(name);
    if (s) await s.transceiver.sender.replaceTrack(track);
  }

  /** Stops sending `name`: tells the server, then drops the transceiver. @param {string} name */
  async removeTrack(name) {
    const s = this.sent.get(name);
    if (!s) return;
    this.sent.delete(name);
    await this.socket.request({ type: 'unpublish', track: name }).catch(() => {});
    try {
      await s.transceiver.sender.replaceTrack(null);
      s.transceiver.stop();
    } catch { /* the connection is already gone */ }
  }

  /** Whether something is sent under `name`. @param {string} name */
  has(name) {
    return this.sent.has(name);
  }

  negotiatePublish() {
    const run = async () => {
      const pc = this.pub;
      if (!pc || this.closed) return;
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      const answer = await this.socket.request({ type: 'publish', sdp: this.named(pc.localDescription?.sdp ?? '') });
      if (this.closed) return;
      await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
      await this.flush('publish');
    };
    this.publishing = this.publishing.catch(() => {}).then(run);
    return this.publishing;
  }

  /**
   * The offer as the server sees it: each sent track's id (in a=msid and a=ssrc msid lines)
   * replaced by our name for it, so that the room track id is `<me>/cam`, `<me>/screen1`… and
   * every receiver can tell a screen share from a camera. Only the copy sent to the server is
   * changed: the browser keeps its own description.
   * @param {string} sdp
   */
  named(sdp) {
    /** @type {Map<string, string>} mid → name */
    const byMid = new Map();
    for (const s of this.sent.values()) if (s.transceiver.mid != null) byMid.set(s.transceiver.mid, s.name);
    const sections = sdp.split(/\r\n(?=m=)/);
    return sections
      .map((section) => {
        const mid = /\r\na=mid:(\S+)/.exec(section)?.[1];
        const name = mid != null ? byMid.get(mid) : undefined;
        if (!name) return section;
        return section
          .replace(/(\r\na=msid:\S+ )\S+/g, `$1${name}`)
          .replace(/(\r\na=ssrc:\d+ msid:\S+ )\S+/g, `$1${name}`);
      })
      .join('\r\n');
  }

  /** Answers a subscribe offer (the first creates the subscribe connection). @param {string} sdp */
  async onSubscribeOffer(sdp) {
    if (!this.sub) {
      this.sub = this.newPc('subscribe');
      this.sub.ontrack = (e) => {
        const participant = e.streams[0]?.id ?? '';
        this.onRemoteTrack(e.track, participant, roomTrackId(participant, e.track.id));
      };
    }
    const pc = this.sub;
    await pc.setRemoteDescription({ type: 'offer', sdp });
    await this.flush('subscribe');
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    // Not awaited: the ack must not hold up the messages queued behind this offer.
    this.socket.request({ type: 'subscribe_answer', sdp: pc.localDescription?.sdp }).catch(() => {});
    this.handOverReceivers(pc, sdp);
  }

  /**
   * Hands every receiving transceiver's track over again under the room track its m-line now
   * carries. A browser fires `track` only when a transceiver starts receiving: when the
   * server ends a track and another one (or the same one published again, as after the
   * publisher reloads) takes its transceiver in the same negotiation, the transceiver never
   * stopped receiving and no event comes, so the room would never be given that track (the
   * broadcast walk's trainee saw a reloaded surgeon's camera announced and never played).
   * The room ignores a hand-over it already has.
   * @param {RTCPeerConnection} pc @param {string} sdp the offer just applied
   */
  handOverReceivers(pc, sdp) {
    const byMid = roomTracksByMid(sdp);
    for (const t of pc.getTransceivers()) {
      const receiving = t.currentDirection === 'recvonly' || t.currentDirection === 'sendrecv';
      const named = t.mid != null ? byMid.get(t.mid) : undefined;
      if (!receiving || !named || t.receiver.track.readyState !== 'live') continue;
      this.onRemoteTrack(t.receiver.track, named.participant, named.id, true);
    }
  }

  /** @param {'publish' | 'subscribe'} target @param {RTCIceCandidateInit} candidate */
  async onCandidate(target, candidate) {
    const pc = target === 'publish' ? this.pub : this.sub;
    if (!pc || !pc.remoteDescription) {
      this.early[target].push(candidate);
      return;
    }
    await pc.addIceCandidate(candidate).catch(() => {});
  }

  /** @param {'publish' | 'subscribe'} target */
  async flush(target) {
    const pc = target === 'publish' ? this.pub : this.sub;
    for (const c of this.early[target].splice(0)) await pc?.addIceCandidate(c).catch(() => {});
  }

  /** Per-encoding send and per-track receive figures, for support and tests. */
  async rtpSummary() {
    /** @type {any[]} */
    const out = [];
    for (const [target, pc] of /** @type {[string, RTCPeerConnection | null][]} */ ([['publish', this.pub], ['subscribe', this.sub]])) {
      if (!pc) continue;
      (await pc.getStats()).forEach((s) => {
        if (s.type !== 'outbound-rtp' && s.type !== 'inbound-rtp') return;
        out.push({
          target, type: s.type, kind: s.kind, rid: s.rid, mid: s.mid, trackId: s.trackIdentifier,
          size: s.frameWidth ? `${s.frameWidth}x${s.frameHeight}` : null, fps: s.framesPerSecond,
          frames: s.framesEncoded ?? s.framesDecoded, packets: s.packetsSent ?? s.packetsReceived, lost: s.packetsLost,
          limit: s.qualityLimitationReason, keyFrames: s.keyFramesEncoded ?? s.keyFramesDecoded, pli: s.pliCount,
        });
      });
    }
    return out;
  }

  /** Inbound loss and bitrate, for the automatic layer choice. */
  async inboundStats() {
    let lost = 0;
    let received = 0;
    let bytes = 0;
    if (this.sub) {
      (await this.sub.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp') {
          lost += s.packetsLost ?? 0;
          received += s.packetsReceived ?? 0;
          bytes += s.bytesReceived ?? 0;
        }
      });
    }
    return { lost, received, bytes };
  }

  /** The server closed our publish connection (the floor was taken back): a new one comes with the next grant. */
  closePublish() {
    try { this.pub?.close(); } catch { /* closed */ }
    this.pub = null;
    this.sent.clear();
    this.early.publish = [];
  }

  close() {
    this.closed = true;
    for (const pc of [this.pub, this.sub]) {
      try { pc?.close(); } catch { /* closed */ }
    }
    this.pub = null;
    this.sub = null;
    this.sent.clear();
  }
}
