// Entry point, loaded by {% sophie_chat_widget %} as <script type="module">. Reads the
// configuration from the host element's data-* attributes and exposes window.SophieChat.

import { ChatWidget } from "./chat-widget.js";
import { readStrings, translator } from "./i18n.js";

function readConfig(host) {
  const d = host.dataset;
  let support = {};
  try {
    support = JSON.parse(d.support || "{}");
  } catch {
    support = {};
  }
  return {
    wsPath: d.wsPath || "/ws/sophie-chat/",
    css: d.css,
    language: d.language || document.documentElement.lang || "pt-br",
    name: d.assistantName || "Sophie",
    position: d.position || "bottom-right",
    zIndex: d.zIndex || "999",
    offsetBottom: Number(d.offsetBottom ?? 88),
    offsetSide: Number(d.offsetSide ?? 24),
    primaryColor: d.primaryColor || "#5b2bd6",
    textColor: d.textColor || "#ffffff",
    maxLength: Number(d.maxLength) || 2000,
    status: Number(d.pageStatus) || null,
    support,
  };
}

function start() {
  const host = document.getElementById("sophie-chat");
  if (!host || window.SophieChat) return;
  // Host CSS such as `* { all: unset }` or `div { display: none }` must not hide the widget:
  // inline !important declarations win over any stylesheet rule.
  host.style.setProperty("display", "block", "important");
  host.style.setProperty("position", "static", "important");
  const widget = new ChatWidget(host, readConfig(host), translator(readStrings(host)));
  window.SophieChat = {
    open: () => widget.open(),
    close: () => widget.close(),
    toggle: () => widget.toggle(),
    send: (text) => widget.send(text),
    page: (info) => widget.page(info),
    get isOpen() {
      return widget.isOpen;
    },
  };
  host.dispatchEvent(new CustomEvent("sophie-chat:ready", { bubbles: true }));
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
