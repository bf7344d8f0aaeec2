// The signaling socket (docs/protocol.md): hello, requests answered by id, events in order.

/** @typedef {{ id: string, name: string, host: boolean, can_publish: boolean, presence: string, hand_raised: boolean, guest?: boolean, encoder?: boolean }} ParticipantInfo */

/** An `error` answer from the server, with its code. */
export class SignalError extends Error {
  /** @param {string} code @param {string} message */
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/**
 * One WebSocket to the room. `onEvent(msg)` gets every server message that is not the answer
 * to a request, strictly in arrival order, each awaited before the next: a trickle must not
 * overtake the offer it belongs to. `onClose(code, reason)` runs once when the socket closes.
 */
export class RoomSocket {
  /**
   * @param {string} url ws(s)://…/v1/rtc?token=…
   * @param {(msg: any) => Promise<void> | void} onEvent
   * @param {(code: number, reason: string) => void} onClose
   */
  constructor(url, onEvent, onClose) {
    this.ws = new WebSocket(url);
    this.onEvent = onEvent;
    this.onClose = onClose;
    this.nextId = 1;
    /** @type {Map<string, { resolve: (m: any) => void, reject: (e: Error) => void }>} */
    this.pending = new Map();
    this.chain = Promise.resolve();
    this.closed = false;
    this.ws.onmessage = (ev) => this.receive(ev);
    this.ws.onclose = (ev) => this.finish(ev.code, ev.reason);
  }

  /** Opens and says hello; resolves with the server's hello. */
  hello() {
    return new Promise((resolve, reject) => {
      this.ws.onopen = () => {
        this.request({ type: 'hello', version: 1 }).then(resolve, reject);
      };
      this.ws.onerror = () => reject(new SignalError('network', 'the signaling socket could not be opened'));
    });
  }

  /**
   * Sends a request and resolves with its answer (ack, pong, publish_answer, hello).
   * @param {Record<string, any>} msg
   * @returns {Promise<any>}
   */
  request(msg) {
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new SignalError('not_connected', 'not connected'));
    }
    const id = `${msg.type}-${this.nextId++}`;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ ...msg, id }));
    });
  }

  /**
   * Sends a message the server answers only when it refuses it (a `case_pointer`, several a
   * second: protocol.md §3): nothing waits for an answer that never comes. Its refusal, if
   * any, arrives as an event. False when the socket is not open.
   * @param {Record<string, any>} msg
   */
  send(msg) {
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify({ ...msg, id: `${msg.type}-${this.nextId++}` }));
    return true;
  }

  /** @param {MessageEvent} ev */
  receive(ev) {
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    const waiting = msg.id != null ? this.pending.get(msg.id) : undefined;
    if (waiting) {
      this.pending.delete(msg.id);
      if (msg.type === 'error') waiting.reject(new SignalError(msg.code, msg.message));
      else waiting.resolve(msg);
      // The hello answer also starts the room state; publish answers are needed by their
      // requester only.
      if (msg.type !== 'hello') return;
    }
    this.chain = this.chain.then(() => this.onEvent(msg)).catch((e) => console.error('[call] event', msg.type, e));
  }

  /** @param {number} code @param {string} reason */
  finish(code, reason) {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) p.reject(new SignalError('not_connected', 'the socket closed'));
    this.pending.clear();
    this.onClose(code, reason);
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) p.reject(new SignalError('not_connected', 'closed'));
    this.pending.clear();
    try { this.ws.close(1000); } catch { /* already closing */ }
  }
}

/**
 * The WebSocket URL for a `/join` answer: the room's home node when the server runs on several
 * (`signaling_url`), else this page's own server.
 */
export function socketUrl(/** @type {{ signaling_path: string, signaling_url?: string, token: string }} */ join) {
  const token = `?token=${encodeURIComponent(join.token)}`;
  if (join.signaling_url) return `${join.signaling_url}${token}`;
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${join.signaling_path}${token}`;
}
