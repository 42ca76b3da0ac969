// Protocol v1, client side: turns server frames into Messages, merging by seq so that resumes,
// resends and other tabs never show a message twice (dedupe by seq and by client id).

import { Message } from "./message.js";

const CATCH_UP_RECHECK = 15000; // ms

export class Conversation {
  /** @param {object} ctx  {win, conn, store, t, language, name, support, onLink, onAssistant, onLimits} */
  constructor(ctx) {
    this.ctx = ctx;
    this.win = ctx.win;
    this.bySeq = new Map();
    this.byId = new Map();
    this.hasMore = false;
    this.loadingOlder = false;
    this.streaming = null;
    // The session whose transcript is shown (null: none yet). Kept after `closed`, which
    // forgets the stored id: the closed chat stays on screen until another one replaces it.
    this.current = ctx.store.get("sessionId");
  }

  get seenSeq() {
    return this.ctx.store.get("seenSeq", 0);
  }

  seen(seq) {
    if (seq > this.seenSeq) this.ctx.store.set("seenSeq", seq);
  }

  message(data) {
    const msg = new Message(data, this.ctx);
    if (msg.catchingUp) this.watch();
    return msg;
  }

  /** While a reply we joined midway has not finished, ask again now and then: its worker may
   *  have died, and the stored message then turns "incomplete" instead of ever sending done. */
  watch() {
    clearTimeout(this.watchTimer);
    this.watchTimer = setTimeout(() => {
      const waiting = [...this.bySeq.values()].filter((m) => m.catchingUp).map((m) => m.seq);
      if (!waiting.length) return;
      this.ctx.conn.send({ type: "resume", after_seq: Math.min(...waiting) - 1 });
      this.watch();
    }, CATCH_UP_RECHECK);
  }

  /** Insert in seq order; messages without a seq yet (pending) stay at the end. */
  place(msg) {
    const items = this.win.items;
    let before = null;
    if (msg.seq != null) {
      for (const el of items.children) {
        const seq = el.dataset.seq ? Number(el.dataset.seq) : Infinity;
        if (seq > msg.seq) {
          before = el;
          break;
        }
      }
    }
    items.insertBefore(msg.el, before);
    this.win.greeting.hidden = true;
    this.ctx.onCount?.();
  }

  /** Add or update one stored message (from session, history, resume or user.message). */
  merge(data) {
    if (data.id && this.byId.has(data.id)) {
      const mine = this.byId.get(data.id);
      if (mine.seq == null) this.acked(data.id, data.seq);
      return mine;
    }
    const known = this.bySeq.get(data.seq);
    if (known) {
      if (!known.done && data.status !== "streaming") known.finish(data);
      if (known.done) this.seen(data.seq);
      return known;
    }
    const msg = this.message(data);
    this.bySeq.set(msg.seq, msg);
    if (msg.id) this.byId.set(msg.id, msg);
    this.win.keepScroll(() => this.place(msg));
    if (msg.done) this.seen(msg.seq);
    return msg;
  }

  /** A message the visitor just typed: shown at once, sent through the outbox. */
  outgoing(frame, queued) {
    const msg = this.message({
      id: frame.id,
      sender: "user",
      text: frame.text,
      status: "complete",
    });
    msg.seq = null;
    msg.el.dataset.seq = "";
    msg.setPending(queued ? "queued" : "sending");
    this.byId.set(frame.id, msg);
    this.win.keepScroll(() => this.place(msg), true);
    return msg;
  }

  acked(id, seq) {
    this.ctx.conn.settle(id);
    const msg = this.byId.get(id);
    if (!msg) return;
    const twin = this.bySeq.get(seq);
    if (twin && twin !== msg) twin.el.remove();
    msg.acknowledge(seq);
    msg.el.remove();
    this.bySeq.set(seq, msg);
    this.place(msg);
    this.seen(seq);
  }

  /** Deltas sent while we were away are lost: unfinished replies now wait for done instead. */
  connectionLost() {
    for (const msg of this.bySeq.values()) if (!msg.done) msg.catchingUp = true;
    this.watch();
  }

  handle(frame) {
    const handler = this[`on_${frame.type.replace(".", "_")}`];
    if (handler) handler.call(this, frame);
  }

  /** The session frame: on connect (``session_id`` null until the first message creates the
   *  session), in answer to the first message (before its ack), and when another tab started
   *  a new session that this one follows. */
  on_session(frame) {
    const id = frame.session_id ?? null;
    const fresh = frame.notice === "expired" || frame.notice === "closed";
    // Another session than the one shown, or none at all any more: its seqs start again at 1.
    const switched = Boolean(this.current) && this.current !== id;
    if (fresh || switched) this.reset();
    if (frame.notice === "expired") this.win.showNotice(this.ctx.t("expired"));
    this.current = id;
    this.ctx.store.set("sessionId", id);
    if (frame.limits) this.ctx.onLimits(frame.limits);
    for (const data of frame.messages || []) this.merge(data);
    this.hasMore = Boolean(frame.has_more);
    // Messages we missed while away, beyond the last page the session frame carries.
    if (!fresh && !switched && this.seenSeq && this.seenSeq < (frame.last_seq || 0)) {
      this.ctx.conn.send({ type: "resume", after_seq: this.seenSeq });
    }
    this.win.greeting.hidden = this.win.items.children.length > 0;
    this.ctx.onSession(frame, fresh || switched);
  }

  /** Forget the transcript but keep messages still waiting for their acknowledgement. */
  reset() {
    for (const [seq, msg] of this.bySeq) {
      msg.el.remove();
      this.bySeq.delete(seq);
      if (msg.id) this.byId.delete(msg.id);
    }
    this.ctx.store.update({ seenSeq: 0, readSeq: 0 });
    this.current = null;
    this.streaming = null;
    this.win.setTyping(false);
    this.win.setStreaming(false);
    this.win.greeting.hidden = this.win.items.children.length > 0;
  }

  on_ack(frame) {
    const first = this.byId.get(frame.id)?.seq == null;
    this.acked(frame.id, frame.seq);
    // A repeated ack (a resend after a reconnect) may be for a message answered long ago.
    const answered = [...this.bySeq.values()].some(
      (m) => m.sender === "assistant" && m.seq > frame.seq,
    );
    if (first && !answered) {
      this.win.setTyping(true);
      this.win.setStreaming(true);
    }
  }

  on_user_message(frame) {
    this.merge(frame.message);
  }

  on_assistant_start(frame) {
    this.streaming = frame.seq;
    this.win.setTyping(true);
    this.win.setStreaming(true);
  }

  on_assistant_delta(frame) {
    let msg = this.bySeq.get(frame.seq);
    if (!msg) {
      // Joined mid-reply without its start: from index 0 we can follow, later we catch up.
      msg = this.message({ seq: frame.seq, sender: "assistant", text: "", status: "streaming" });
      msg.catchingUp = frame.index !== 0;
      this.bySeq.set(frame.seq, msg);
      this.win.keepScroll(() => this.place(msg));
    }
    this.win.setTyping(false);
    this.win.follow(msg.el, () => msg.appendDelta(frame.index, frame.text));
  }

  on_assistant_done(frame) {
    const existing = this.bySeq.get(frame.seq);
    const data = { ...frame, sender: "assistant", created_at: frame.created_at };
    if (existing) this.win.follow(existing.el, () => existing.finish(data));
    else this.merge({ ...data, status: frame.status || "complete" });
    this.seen(frame.seq);
    this.streaming = null;
    this.win.setTyping(false);
    this.win.setStreaming(false);
    const msg = this.bySeq.get(frame.seq);
    // Announced once, complete, when done: never per delta.
    this.win.announce(`${this.ctx.t("announce")} ${msg.plainText()}`);
    this.ctx.onAssistant(frame.seq);
  }

  on_history(frame) {
    if (frame.mode === "page") {
      const list = this.win.list;
      const from = list.scrollHeight - list.scrollTop;
      for (const data of frame.messages || []) this.merge(data);
      list.scrollTop = list.scrollHeight - from;
      this.hasMore = Boolean(frame.has_more);
      this.loadingOlder = false;
      this.win.older.hidden = true;
    } else {
      for (const data of frame.messages || []) this.merge(data);
    }
  }

  /** Ask for the page before the oldest message shown (scrolled to the top). */
  older() {
    if (!this.hasMore || this.loadingOlder) return;
    const seqs = [...this.bySeq.keys()];
    if (!seqs.length) return;
    if (this.ctx.conn.send({ type: "history", before_seq: Math.min(...seqs) })) {
      this.loadingOlder = true;
      this.win.older.hidden = false;
    }
  }

  on_error(frame) {
    this.ctx.onError(frame, frame.id ? this.byId.get(frame.id) : null);
  }

  on_rated() {
    this.win.rating.thank(true);
  }

  on_closed() {
    this.ctx.store.update({ sessionId: null, seenSeq: 0, readSeq: 0 });
    this.win.setTyping(false);
    this.win.setStreaming(false);
    this.win.showRating();
    this.ctx.onCount?.();
  }

  lastSeq() {
    return Math.max(0, ...this.bySeq.keys());
  }

  assistantAfter(seq) {
    let count = 0;
    for (const msg of this.bySeq.values())
      if (msg.sender === "assistant" && msg.done && msg.seq > seq) count += 1;
    return count;
  }
}
