// One chat bubble. Streamed text is only ever appended as text; the single place that sets
// innerHTML is finish(), and only with the HTML the server sanitised (markdown-it + nh3).

import { h, icon, srOnly } from "./dom.js";

export class Message {
  /**
   * @param {object} data  a protocol message object (seq, id, sender, text, html, created_at, status)
   * @param {object} ctx   {t, language, onLink(seq, url)}
   */
  constructor(data, ctx) {
    this.ctx = ctx;
    this.seq = data.seq ?? null;
    this.id = data.id ?? null;
    this.sender = data.sender || "assistant";
    this.nextIndex = 0;
    this.catchingUp = false;
    this.done = false;
    this.body = h("div", { class: "sc-body" });
    this.time = h("time", { class: "sc-time" });
    this.state = h("span", { class: "sc-state" });
    const label = { user: ctx.t("you"), assistant: ctx.name }[this.sender];
    this.el = h(
      "div",
      { class: `sc-msg sc-${this.sender}` },
      h("div", { class: "sc-bubble" }, label && srOnly(`${label}: `), this.body),
      h("div", { class: "sc-meta" }, this.time, this.state),
    );
    this.el.dataset.seq = this.seq ?? "";
    this.body.addEventListener("click", (event) => this.clicked(event));
    this.setTime(data.created_at);
    if (data.status === "streaming" && this.sender === "assistant") {
      // Seeded from history mid-reply: we cannot tell which deltas the text already holds,
      // so ignore deltas and wait for the done frame (or the stored message) to replace it.
      this.body.textContent = data.text || "";
      this.catchingUp = true;
      this.el.classList.add("sc-streaming");
    } else {
      this.finish(data);
    }
  }

  setTime(iso) {
    const date = iso ? new Date(iso) : new Date();
    if (Number.isNaN(date.getTime())) return;
    this.time.dateTime = date.toISOString();
    this.time.textContent = new Intl.DateTimeFormat(this.ctx.language, {
      hour: "2-digit",
      minute: "2-digit",
    }).format(date);
  }

  /** Append one streamed piece; duplicates (index already seen) are ignored. */
  appendDelta(index, text) {
    if (this.done || this.catchingUp) return;
    if (index < this.nextIndex) return;
    this.nextIndex = index + 1;
    this.el.classList.add("sc-streaming");
    this.body.append(document.createTextNode(text));
  }

  /** Final state: sanitised server HTML for the assistant, plain text for everyone else. */
  finish(data) {
    this.done = true;
    this.catchingUp = false;
    if (data.seq != null) this.seq = data.seq;
    this.el.classList.remove("sc-streaming");
    this.el.dataset.seq = this.seq ?? "";
    const rich = this.sender === "assistant" && typeof data.html === "string" && data.html !== "";
    this.body.classList.toggle("sc-rich", rich);
    if (rich) {
      this.body.innerHTML = data.html;
      for (const a of this.body.querySelectorAll("a[href]")) {
        a.target = "_blank";
        a.relList.add("noopener", "noreferrer");
        a.append(srOnly(` (${this.ctx.t("newTab")})`));
      }
    } else {
      this.body.textContent = data.text ?? "";
    }
    if (data.created_at) this.setTime(data.created_at);
    const note = data.stopped || data.status === "stopped" ? "stopped" : null;
    const cut = data.status === "incomplete" ? "interrupted" : null;
    this.setState(note || cut ? this.ctx.t(note || cut) : "");
    // Reduced mode (model down, budget spent): the server's translated note, as text.
    this.el.querySelector(":scope > .sc-notice")?.remove();
    if (typeof data.notice === "string" && data.notice) {
      this.el.append(h("p", { class: "sc-notice", role: "note" }, data.notice));
    }
    if (data.escalation) this.el.append(escalationCard(data.escalation, this.ctx));
  }

  /** The user message was stored under `seq`. */
  acknowledge(seq) {
    this.seq = seq;
    this.el.dataset.seq = seq;
    this.el.classList.remove("sc-pending", "sc-failed");
    this.setState("");
  }

  setPending(kind) {
    this.el.classList.toggle("sc-pending", kind !== "failed");
    this.el.classList.toggle("sc-failed", kind === "failed");
    this.setState(this.ctx.t(kind === "failed" ? "notSent" : kind));
  }

  setState(text) {
    this.state.textContent = text;
  }

  plainText() {
    return this.body.textContent.trim();
  }

  clicked(event) {
    const link = event.target.closest?.("a[href]");
    if (link && this.seq != null) this.ctx.onLink(this.seq, link.href);
  }
}

/** Human support contacts, shown when the assistant escalates. */
export function escalationCard(escalation, ctx) {
  const c = { ...ctx.support };
  for (const [key, value] of Object.entries(escalation.contacts || {})) if (value) c[key] = value;
  const rows = [];
  const row = (name, label, value, href) =>
    rows.push(
      h(
        "li",
        {},
        icon(name),
        label && h("span", { class: "sc-clabel" }, `${label}: `),
        href ? h("a", { href, target: "_blank", rel: "noopener noreferrer" }, value) : value,
      ),
    );
  const web = (value) => /^https?:\/\//.test(value);
  if (c.email) row("mail", ctx.t("email"), c.email, `mailto:${c.email}`);
  if (c.phone) row("phone", ctx.t("phone"), c.phone, `tel:${c.phone.replace(/[^\d+]/g, "")}`);
  if (c.whatsapp) {
    // A number ("+55 11 99999-0000") or a ready link ("https://wa.me/5511999990000").
    const digits = c.whatsapp.replace(/^https?:\/\/[^/]+\//, "").replace(/\D/g, "");
    const shown = web(c.whatsapp) ? `+${digits}` : c.whatsapp;
    row(
      "whatsapp",
      ctx.t("whatsapp"),
      shown,
      web(c.whatsapp) ? c.whatsapp : `https://wa.me/${digits}`,
    );
  }
  if (c.hours) row("clock", ctx.t("hours"), c.hours);
  if (c.url && (web(c.url) || /^\/(?!\/)/.test(c.url))) row("link", "", ctx.t("helpCenter"), c.url);
  return h(
    "div",
    { class: "sc-card", role: "group", "aria-label": ctx.t("escalationTitle") },
    h("p", { class: "sc-card-title" }, ctx.t("escalationTitle")),
    h("ul", {}, rows),
  );
}
