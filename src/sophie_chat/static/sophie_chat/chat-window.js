// The chat dialog: header (name, connection status, minimize, end), the message list with the
// typing indicator, notices, the composer, the end-confirmation and the rating panel.

import { h, icon, srOnly } from "./dom.js";
import { RatingPanel } from "./rating.js";

const NEAR_BOTTOM = 80; // px: closer than this to the end, new content keeps the list scrolled down

export class ChatWindow {
  /** @param {object} ctx  {t, name, maxLength, onSend, onStop, onMinimize, onEnd, onRate,
   *  onRestart, onOlder, onRetry, onDraft} */
  constructor(ctx) {
    this.ctx = ctx;
    const { t } = ctx;
    this.statusText = h("span", {}, t("connecting"));
    this.status = h(
      "p",
      { class: "sc-status", "data-state": "connecting" },
      h("span", { class: "sc-dot" }),
      this.statusText,
    );
    this.endButton = h(
      "button",
      {
        type: "button",
        class: "sc-hbtn",
        "aria-label": t("end"),
        title: t("end"),
        onclick: () => this.confirmEnd(),
      },
      icon("close"),
    );
    const header = h(
      "div",
      { class: "sc-header" },
      h("div", { class: "sc-avatar", "aria-hidden": "true" }, (ctx.name[0] || "S").toUpperCase()),
      h("div", { class: "sc-title" }, h("h2", { class: "sc-name" }, ctx.name), this.status),
      h(
        "button",
        {
          type: "button",
          class: "sc-hbtn",
          "aria-label": t("minimize"),
          title: t("minimize"),
          onclick: () => ctx.onMinimize(),
        },
        icon("down"),
      ),
      this.endButton,
    );
    this.bannerText = h("span", {});
    this.banner = h(
      "div",
      { class: "sc-banner", hidden: true },
      this.bannerText,
      h("button", { type: "button", class: "sc-link", onclick: () => ctx.onRetry() }, t("tryNow")),
    );
    this.older = h("div", { class: "sc-older", hidden: true }, t("loadingOlder"));
    this.greeting = h(
      "div",
      { class: "sc-msg sc-assistant sc-greeting" },
      h("div", { class: "sc-bubble" }, t("greeting")),
    );
    this.typing = h(
      "div",
      { class: "sc-msg sc-assistant sc-typing", hidden: true },
      h(
        "div",
        { class: "sc-bubble" },
        h("span", { class: "sc-dots", "aria-hidden": "true" }, h("i"), h("i"), h("i")),
        srOnly(t("typing")),
      ),
    );
    this.items = h("div", { class: "sc-items" });
    this.list = h(
      "div",
      { class: "sc-list", tabindex: 0, role: "region", "aria-label": t("messages") },
      this.older,
      this.greeting,
      this.items,
      this.typing,
    );
    this.list.addEventListener("scroll", () => this.list.scrollTop < 48 && ctx.onOlder());
    this.live = h("div", { class: "sc-sr", "aria-live": "polite", "aria-atomic": "true" });
    this.notice = h("div", { class: "sc-notice", role: "status", hidden: true });
    this.confirm = h(
      "div",
      { class: "sc-confirm", hidden: true, role: "group", "aria-label": t("endConfirm") },
      h("p", {}, t("endConfirm")),
      h(
        "div",
        { class: "sc-actions" },
        h(
          "button",
          { type: "button", class: "sc-ghost", onclick: () => this.cancelEnd() },
          t("cancel"),
        ),
        h(
          "button",
          { type: "button", class: "sc-danger", onclick: () => this.ended() },
          t("endYes"),
        ),
      ),
    );
    this.rating = new RatingPanel({ t, onRate: ctx.onRate, onDone: () => ctx.onRestart() });
    this.composer = this.buildComposer();
    this.el = h(
      "div",
      {
        class: "sc-window",
        id: "sc-window",
        role: "dialog",
        "aria-label": t("dialog"),
        hidden: true,
      },
      header,
      this.banner,
      this.list,
      this.live,
      this.notice,
      this.confirm,
      this.rating.el,
      this.composer,
    );
    this.el.addEventListener("keydown", (event) => this.keydown(event));
  }

  buildComposer() {
    const { t, maxLength } = this.ctx;
    this.input = h("textarea", {
      id: "sc-input",
      rows: 1,
      maxlength: maxLength,
      placeholder: t("placeholder"),
      "aria-describedby": "sc-counter",
    });
    this.counter = h("span", { class: "sc-counter", id: "sc-counter", hidden: true });
    this.stopButton = h(
      "button",
      { type: "button", class: "sc-stop", hidden: true, onclick: () => this.ctx.onStop() },
      icon("stop"),
      this.ctx.t("stop"),
    );
    this.sendButton = h(
      "button",
      { type: "submit", class: "sc-send", "aria-label": t("send"), title: t("send") },
      icon("send"),
    );
    this.input.addEventListener("input", () => this.inputChanged());
    this.input.addEventListener("keydown", (event) => {
      // Enter sends, Shift+Enter is a new line; never while an IME is composing.
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submit();
      }
    });
    return h(
      "form",
      { class: "sc-composer", onsubmit: (event) => (event.preventDefault(), this.submit()) },
      this.stopButton,
      h("label", { class: "sc-sr", for: "sc-input" }, t("message")),
      h("div", { class: "sc-field" }, this.input, this.counter, this.sendButton),
    );
  }

  submit() {
    const text = this.input.value.trim();
    if (!text) return;
    if (this.ctx.onSend(text) === false) return;
    this.input.value = "";
    this.inputChanged();
  }

  inputChanged() {
    const { maxLength, t } = this.ctx;
    const length = this.input.value.length;
    this.autosize();
    // The counter appears near the limit only, so it does not distract.
    const near = length >= maxLength * 0.8;
    this.counter.hidden = !near;
    this.counter.textContent = `${length}/${maxLength}`;
    this.counter.setAttribute("aria-label", t("counter", { count: length, max: maxLength }));
    this.counter.classList.toggle("sc-over", length >= maxLength);
    this.ctx.onDraft(this.input.value);
  }

  /** Grow with the text up to a few lines (a hidden textarea has no height to measure). */
  autosize() {
    this.input.style.height = "auto";
    const height = this.input.scrollHeight;
    if (height) this.input.style.height = `${Math.min(height, 132)}px`;
  }

  setDraft(text) {
    this.input.value = text || "";
    this.inputChanged();
  }

  keydown(event) {
    if (event.key !== "Escape") return;
    event.stopPropagation();
    if (!this.confirm.hidden) this.cancelEnd();
    else this.ctx.onMinimize();
  }

  setStatus(state, text) {
    this.status.dataset.state = state;
    this.statusText.textContent = text;
  }

  showBanner(text) {
    this.bannerText.textContent = text;
    this.banner.hidden = !text;
  }

  showNotice(text) {
    this.notice.textContent = text || "";
    this.notice.hidden = !text;
  }

  nearBottom() {
    const l = this.list;
    return l.scrollHeight - l.scrollTop - l.clientHeight < NEAR_BOTTOM;
  }

  /** Run a DOM change and keep the list pinned to the bottom if it was there. */
  keepScroll(change, force = false) {
    const stick = force || this.nearBottom();
    change();
    if (stick) this.list.scrollTop = this.list.scrollHeight;
  }

  /** Like keepScroll for a growing answer, but never past its first line: a long answer is
   *  read from the top. */
  follow(el, change) {
    const stick = this.nearBottom();
    change();
    if (!stick) return;
    const bottom = this.list.scrollHeight - this.list.clientHeight;
    this.list.scrollTop = Math.min(bottom, Math.max(0, el.offsetTop - 8));
  }

  setTyping(on) {
    this.keepScroll(() => (this.typing.hidden = !on));
  }

  setStreaming(on) {
    this.stopButton.hidden = !on;
  }

  announce(text) {
    // Cleared first so that the same text twice is still announced twice.
    this.live.textContent = "";
    setTimeout(() => (this.live.textContent = text), 50);
  }

  confirmEnd() {
    this.confirm.hidden = false;
    this.composer.hidden = true;
    this.confirm.querySelector("button").focus();
  }

  cancelEnd() {
    this.confirm.hidden = true;
    this.composer.hidden = false;
    this.input.focus();
  }

  ended() {
    this.confirm.hidden = true;
    this.list.focus(); // until the rating form appears, focus stays in the dialog
    this.ctx.onEnd();
  }

  showRating() {
    this.composer.hidden = true;
    this.confirm.hidden = true;
    this.rating.show();
  }

  /** The composer back in place of the rating form (the chat goes on in a new session). */
  reopen() {
    this.rating.hide();
    this.confirm.hidden = true;
    this.composer.hidden = false;
  }

  /** Back to an empty conversation, ready for a new one. */
  restart() {
    this.reopen();
    this.items.replaceChildren();
    this.greeting.hidden = false;
    this.showNotice("");
    this.input.focus();
  }

  focusInput() {
    if (!this.composer.hidden) this.input.focus();
    else
      (
        this.el.querySelector(".sc-panel:not([hidden]) input, .sc-panel:not([hidden]) button") ||
        this.list
      ).focus();
  }

  setEndable(on) {
    this.endButton.hidden = !on;
  }
}
