// The chat socket: connects on demand, reconnects with capped exponential backoff and jitter,
// and keeps unacknowledged messages in an outbox persisted across pages. Resending them after a
// reconnect is safe: the server dedups on the client id and acknowledges again.

const PROTOCOL = "sophie-chat.v1";
const BASE_DELAY = 500; // ms
const MAX_DELAY = 15000; // ms
const PING_EVERY = 25000; // ms
const PONG_WITHIN = 10000; // ms
// Close codes after which retrying cannot help (see the protocol's close codes).
const FATAL = { 4401: "login", 4403: "forbidden" };

export function socketUrl(path, loc = window.location) {
  return `${loc.protocol === "https:" ? "wss:" : "ws:"}//${loc.host}${path}`;
}

export class Connection {
  /**
   * @param {string} url  ws(s) URL of the chat endpoint.
   * @param {object} hooks  onFrame(frame), onState(state, info), outbox storage (load/save).
   */
  constructor(url, hooks) {
    this.url = url;
    this.hooks = hooks;
    this.ws = null;
    this.state = "idle"; // idle | connecting | open | waiting | failed
    this.attempt = 0;
    this.retryAt = 0;
    this.timers = {};
    this.outbox = hooks.loadOutbox?.() || [];
    this.inflight = new Set();
    this.holdUntil = 0;
    // Back online, or back to the tab on a phone: no need to sit out the backoff.
    const wake = () => this.state === "waiting" && !document.hidden && this.retryNow();
    addEventListener("online", wake);
    document.addEventListener("visibilitychange", wake);
  }

  connect() {
    if (this.ws || this.state === "failed") return;
    this.clear("retry");
    this.setState("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url, PROTOCOL);
    } catch {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.inflight.clear();
      this.setState("open");
      this.heartbeat();
    };
    ws.onmessage = (event) => {
      this.clear("pong");
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame && typeof frame.type === "string") this.hooks.onFrame(frame);
    };
    ws.onclose = (event) => this.closed(ws, event.code);
  }

  closed(ws, code) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.clear("ping");
    this.clear("pong");
    if (FATAL[code]) {
      this.setState("failed", { reason: FATAL[code] });
      return;
    }
    this.scheduleRetry();
  }

  scheduleRetry() {
    const ceiling = Math.min(MAX_DELAY, BASE_DELAY * 2 ** this.attempt);
    // "Equal jitter": at least half the ceiling, so a flapping server is not hammered.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.attempt += 1;
    this.retryAt = Date.now() + delay;
    this.setState("waiting", { retryAt: this.retryAt });
    this.timers.retry = setTimeout(() => this.connect(), delay);
  }

  /** Skip the remaining backoff ("Try now"). */
  retryNow() {
    if (this.ws) return;
    this.attempt = 0;
    this.connect();
  }

  /** Send a frame now if the socket is open; returns whether it went out. */
  send(frame) {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Queue a user message until the server acknowledges its id. */
  enqueue(frame) {
    this.outbox.push(frame);
    this.persist();
    if (this.ready) this.flush();
  }

  /** Drop a message from the outbox (acknowledged, or refused for good) and send the next. */
  settle(id) {
    const before = this.outbox.length;
    this.outbox = this.outbox.filter((frame) => frame.id !== id);
    this.inflight.delete(id);
    if (this.outbox.length !== before) this.persist();
    if (this.ready) this.flush();
  }

  /** Send the next queued message, once the session frame has arrived. One message is in
   *  flight at a time, so the server stores them in the order typed even when it refuses one
   *  for a while (busy, rate limited) and it is sent again later. */
  flush() {
    if (this.state !== "open") return;
    this.ready = true;
    const wait = this.holdUntil - Date.now();
    if (wait > 0) {
      this.clear("hold");
      this.timers.hold = setTimeout(() => this.flush(), wait);
      return;
    }
    if (this.inflight.size || !this.outbox.length) return;
    const next = this.outbox[0];
    if (this.send(next)) this.inflight.add(next.id);
  }

  /** Release a hold early (the reply that kept the server busy is done). */
  release() {
    this.holdUntil = 0;
    this.flush();
  }

  /** Resend the outbox after `seconds` (rate limited, storage briefly down). */
  hold(seconds) {
    this.holdUntil = Date.now() + seconds * 1000;
    this.inflight.clear();
    this.flush();
  }

  pending(id) {
    return this.outbox.some((frame) => frame.id === id);
  }

  persist() {
    this.hooks.saveOutbox?.(this.outbox);
  }

  heartbeat() {
    this.clear("ping");
    this.timers.ping = setInterval(() => {
      if (!this.send({ type: "ping" })) return;
      this.clear("pong");
      // No frame at all within the window: the socket is dead even if the browser thinks not.
      // Give up on it now; a close handshake with a dead peer could take minutes.
      this.timers.pong = setTimeout(() => {
        const dead = this.ws;
        if (!dead) return;
        this.closed(dead, 4000);
        dead.close();
      }, PONG_WITHIN);
    }, PING_EVERY);
  }

  setState(state, info = {}) {
    this.state = state;
    if (state !== "open") this.ready = false;
    this.hooks.onState(state, info);
  }

  clear(name) {
    clearTimeout(this.timers[name]);
    clearInterval(this.timers[name]);
    delete this.timers[name];
  }
}
