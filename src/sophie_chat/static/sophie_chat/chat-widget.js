// ChatWidget: the launcher in the corner, the unread badge, and the glue between the window,
// the conversation and the connection. Lives in a shadow root so host CSS cannot reach it.

import { ChatWindow } from "./chat-window.js";
import { Connection, socketUrl } from "./connection.js";
import { Conversation } from "./conversation.js";
import { h, icon, reducedMotion, uuid4 } from "./dom.js";
import { Store } from "./storage.js";

const ANIMATION_MS = 200;
// Errors after which the message will never be accepted as it is.
const REFUSED = new Set(["too_long", "invalid", "frame_too_large", "forbidden", "not_found"]);

/** The page's HTTP status as the browser saw it (Chromium and Firefox; 0 where unknown). */
function navigationStatus() {
  return performance.getEntriesByType?.("navigation")[0]?.responseStatus || 0;
}

export class ChatWidget {
  /** @param {HTMLElement} host  @param {object} config  @param {Function} t  translator */
  constructor(host, config, t) {
    this.config = config;
    this.t = t;
    this.store = new Store();
    this.isOpen = false;
    this.root = h("div", { class: "sc-root", lang: config.language });
    // Through the CSSOM, not a style attribute, so a strict CSP (no 'unsafe-inline') allows it.
    this.root.style.display = "none";
    this.applyTheme();
    const shadow = host.shadowRoot || host.attachShadow({ mode: "open" });
    const css = h("link", { rel: "stylesheet", href: config.css });
    // Shown once styled, so the page never flashes unstyled widget markup.
    css.addEventListener("load", () => this.root.style.removeProperty("display"));
    css.addEventListener("error", () => this.root.style.removeProperty("display"));
    shadow.replaceChildren(css, this.root);

    this.badge = h("span", { class: "sc-badge", hidden: true, "aria-hidden": "true" });
    this.launcher = h(
      "button",
      {
        type: "button",
        class: "sc-launcher",
        "aria-expanded": "false",
        "aria-controls": "sc-window",
        onclick: () => this.toggle(),
      },
      icon("chat", "sc-i-chat"),
      icon("down", "sc-i-down"),
      this.badge,
    );
    this.conn = new Connection(socketUrl(config.wsPath), {
      onFrame: (frame) => this.conversation.handle(frame),
      onState: (state, info) => this.connectionState(state, info),
      loadOutbox: () => this.store.get("outbox", []),
      saveOutbox: (outbox) => this.store.set("outbox", outbox),
    });
    this.win = new ChatWindow({
      t,
      name: config.name,
      maxLength: config.maxLength,
      onSend: (text) => this.send(text),
      onStop: () => this.conn.send({ type: "stop" }),
      onMinimize: () => this.close(),
      onEnd: () => this.end(),
      onRate: (score, comment) =>
        this.control({ type: "rating", score, ...(comment ? { comment } : {}) }),
      onRestart: () => this.restart(),
      onOlder: () => this.conversation.older(),
      onRetry: () => this.conn.retryNow(),
      onDraft: (text) => this.store.set("draft", text),
    });
    this.conversation = new Conversation({
      win: this.win,
      conn: this.conn,
      store: this.store,
      t,
      name: config.name,
      language: config.language,
      support: config.support,
      onLink: (seq, url) => this.conn.send({ type: "link", message_seq: seq, url }),
      onAssistant: (seq) => this.arrived(seq),
      onSession: (frame, moved) => this.sessionReady(frame, moved),
      onLimits: (limits) => this.limits(limits),
      onError: (frame, msg) => this.error(frame, msg),
      onCount: () => this.win.setEndable(this.conversation.bySeq.size > 0),
    });
    this.root.append(this.win.el, this.launcher);
    this.win.setEndable(false);
    // A returning visitor's messages are on their way: no greeting flash before them.
    this.win.greeting.hidden = Boolean(this.store.get("sessionId"));
    this.win.setDraft(this.store.get("draft", ""));
    for (const frame of this.conn.outbox) this.conversation.outgoing(frame, true);
    this.updateBadge();
    if (this.store.get("open")) this.open({ focus: false, animate: false });
    else if (this.store.get("sessionId") || this.conn.outbox.length) this.conn.connect();
  }

  applyTheme() {
    const c = this.config;
    const s = this.root.style;
    s.setProperty("--sc-primary", c.primaryColor);
    s.setProperty("--sc-on-primary", c.textColor);
    s.setProperty("--sc-z", c.zIndex);
    s.setProperty("--sc-bottom", `${c.offsetBottom}px`);
    s.setProperty("--sc-side", `${c.offsetSide}px`);
    this.root.classList.toggle("sc-left", c.position === "bottom-left");
  }

  open({ focus = true, animate = true } = {}) {
    this.conn.connect();
    if (this.isOpen) return focus && this.win.focusInput();
    this.isOpen = true;
    this.store.set("open", true);
    const el = this.win.el;
    clearTimeout(this.hideTimer);
    el.hidden = false;
    this.root.classList.add("sc-is-open");
    if (animate && !reducedMotion()) {
      void el.offsetWidth; // start the transition from the closed state
    }
    el.classList.add("sc-open");
    this.win.autosize();
    this.launcher.setAttribute("aria-expanded", "true");
    this.markRead();
    this.win.list.scrollTop = this.win.list.scrollHeight;
    if (focus) this.win.focusInput();
  }

  /** Hide the window (minimize); the conversation goes on. */
  close() {
    if (!this.isOpen) return;
    this.isOpen = false;
    this.store.set("open", false);
    const el = this.win.el;
    el.classList.remove("sc-open");
    this.root.classList.remove("sc-is-open");
    this.launcher.setAttribute("aria-expanded", "false");
    this.hideTimer = setTimeout(() => (el.hidden = true), reducedMotion() ? 0 : ANIMATION_MS);
    this.updateBadge();
    this.launcher.focus();
  }

  toggle() {
    this.isOpen ? this.close() : this.open();
  }

  send(text) {
    const value = String(text ?? "").trim();
    if (!value) return false;
    if (value.length > this.config.maxLength) {
      this.win.showNotice(this.t("err_too_long"));
      return false;
    }
    if (this.ended) this.restart();
    this.open({ focus: false });
    const frame = { type: "message", id: uuid4(), text: value, page: this.pageInfo() };
    this.conversation.outgoing(frame, !this.conn.ready);
    this.conn.enqueue(frame);
    this.win.showNotice("");
    return true;
  }

  /** Tell the server where the visitor is (page load, SPA navigation). */
  page(info = {}) {
    this.pageOverride = { ...this.pageInfo(), ...info };
    this.conn.send({ type: "page", ...this.pageOverride });
  }

  pageInfo() {
    if (this.pageOverride) return this.pageOverride;
    const status =
      this.config.status ||
      Number(document.documentElement.dataset.status) ||
      navigationStatus() ||
      200;
    const url = location.href.split("#")[0];
    return { url, title: document.title, referrer: document.referrer, status };
  }

  end() {
    this.control({ type: "close" });
    this.ended = true;
  }

  /** Send a close or rating frame now, or as soon as the connection is back. */
  control(frame) {
    if (this.conn.send(frame)) return;
    this.later = [...(this.later || []).filter((f) => f.type !== frame.type), frame];
    this.win.showNotice(this.t("retrying"));
    this.conn.retryNow();
  }

  restart() {
    this.ended = false;
    this.conversation.reset();
    this.win.restart();
    this.win.setEndable(false);
  }

  /** @param {object} frame  the session frame  @param {boolean} moved  another chat now */
  sessionReady(frame, moved) {
    if (moved) {
      // A new chat replaced the one shown (another tab started it, or it expired): the
      // rating form of the old chat would rate the new one.
      this.ended = false;
      this.win.reopen();
    }
    // A session created by this tab's first message already has the page: the message
    // carried it.
    if (!(frame.new && frame.session_id)) this.conn.send({ type: "page", ...this.pageInfo() });
    for (const frame of this.later || []) this.conn.send(frame);
    if (this.later?.length) this.win.showNotice("");
    this.later = [];
    this.conn.flush();
    for (const frame of this.conn.outbox)
      this.conversation.byId.get(frame.id)?.setPending("sending");
    if (this.isOpen) this.markRead();
    else this.updateBadge();
  }

  limits(limits) {
    if (limits.max_message_length) {
      this.config.maxLength = limits.max_message_length;
      this.win.input.maxLength = limits.max_message_length;
    }
  }

  arrived() {
    if (this.busy) {
      this.busy = false;
      this.conn.release();
    }
    if (this.isOpen) this.markRead();
    else this.updateBadge();
  }

  markRead() {
    this.store.set("readSeq", Math.max(this.store.get("readSeq", 0), this.conversation.lastSeq()));
    this.updateBadge();
  }

  updateBadge() {
    const count = this.conversation.assistantAfter(this.store.get("readSeq", 0));
    this.badge.hidden = !count;
    this.badge.textContent = count > 9 ? "9+" : String(count);
    const label = this.isOpen ? this.t("minimizeChat") : this.t("open");
    const unread = count === 1 ? this.t("unreadOne") : this.t("unread", { count });
    this.launcher.setAttribute("aria-label", count ? `${label} (${unread})` : label);
  }

  connectionState(state, info) {
    clearInterval(this.countdown);
    const t = this.t;
    if (state === "open") {
      this.win.setStatus("online", t("online"));
      this.win.showBanner("");
    } else if (state === "connecting") {
      this.win.setStatus("connecting", t(this.everOpen ? "reconnecting" : "connecting"));
    } else if (state === "waiting") {
      this.win.setStatus("offline", t("reconnecting"));
      const tick = () => {
        const seconds = Math.max(0, Math.ceil((info.retryAt - Date.now()) / 1000));
        this.win.showBanner(seconds ? t("lost", { seconds }) : t("retrying"));
      };
      tick();
      this.countdown = setInterval(tick, 1000);
      for (const frame of this.conn.outbox)
        this.conversation.byId.get(frame.id)?.setPending("queued");
      this.win.setTyping(false);
      this.win.setStreaming(false);
      this.conversation.connectionLost();
    } else if (state === "failed") {
      this.win.setStatus("offline", t("offline"));
      this.win.showBanner("");
      this.win.showNotice(t(info.reason === "login" ? "loginRequired" : "err_forbidden"));
    }
    if (state === "open") this.everOpen = true;
  }

  error(frame, msg) {
    const t = this.t;
    const code = frame.code;
    if (code === "rate_limited") {
      const until = Date.now() + (frame.retry_after || 10) * 1000;
      this.conn.hold(frame.retry_after || 10);
      msg?.setPending("held");
      clearInterval(this.rateTimer);
      const tick = () => {
        const seconds = Math.ceil((until - Date.now()) / 1000);
        if (seconds <= 0) return (clearInterval(this.rateTimer), this.win.showNotice(""));
        this.win.showNotice(t("err_rate_limited", { seconds }));
      };
      tick();
      this.rateTimer = setInterval(tick, 1000);
      return;
    }
    if (msg && REFUSED.has(code)) {
      this.conn.settle(msg.id);
      msg.setPending("failed");
    } else if (msg && (code === "unavailable" || code === "busy")) {
      msg.setPending("held");
      this.busy = code === "busy";
      this.conn.hold(frame.retry_after || 3);
    }
    if (code === "session_expired" || code === "session_closed") this.store.set("sessionId", null);
    this.win.setTyping(false);
    const local = t(`err_${code}`);
    this.win.showNotice(frame.message || (local === `err_${code}` ? t("err_generic") : local));
  }
}
