// Small DOM helpers shared by the widget's modules. No framework: the widget builds its own DOM.

const SVG = "http://www.w3.org/2000/svg";

// 24x24 stroke icons, drawn for this widget.
const ICONS = {
  chat: [
    "M21 12a8 8 0 0 1-11.6 7.1L4 20.5l1.4-4.9A8 8 0 1 1 21 12z",
    "M8.6 12h.01M12.6 12h.01M16.6 12h.01",
  ],
  down: "M6 9l6 6 6-6",
  close: "M6 6l12 12M18 6 6 18",
  send: "M5 12h13M13 6l6 6-6 6",
  stop: "M8 8h8v8H8z",
  star: "M12 3.5l2.6 5.4 5.9.8-4.3 4.1 1 5.8L12 16.8l-5.2 2.8 1-5.8-4.3-4.1 5.9-.8z",
  mail: "M4 6h16v12H4zM4 7l8 6 8-6",
  phone:
    "M6.6 3.5 9 3l1.6 4-2 1.3a11 11 0 0 0 5.1 5.1l1.3-2 4 1.6-.5 2.4a2 2 0 0 1-2.2 1.6A16 16 0 0 1 5 5.7a2 2 0 0 1 1.6-2.2z",
  whatsapp: "M4 20l1.3-4A8 8 0 1 1 8.4 19zM9 9c0 3 3 6 6 6",
  clock: "M12 7v5l3 2M12 21a9 9 0 1 1 0-18 9 9 0 0 1 0 18z",
  link: "M10 14a4 4 0 0 0 6 0l3-3a4 4 0 0 0-6-6l-1 1M14 10a4 4 0 0 0-6 0l-3 3a4 4 0 0 0 6 6l1-1",
};

/** Create an element: h("button", {class: "x", onclick: fn, "aria-label": "..."}, child, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) if (child != null && child !== false) el.append(child);
  return el;
}

/** An inline SVG icon, hidden from assistive technology (its button carries the label). */
export function icon(name, cls = "") {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", `sc-icon ${cls}`.trim());
  for (const d of [ICONS[name]].flat()) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

/** Text only screen readers hear. */
export const srOnly = (text) => h("span", { class: "sc-sr" }, text);

/** A random UUID v4, also on plain-http pages where crypto.randomUUID does not exist. */
export function uuid4() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, "0")).join("");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export const reducedMotion = () => matchMedia("(prefers-reduced-motion: reduce)").matches;
