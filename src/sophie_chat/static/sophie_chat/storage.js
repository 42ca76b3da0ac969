// Widget state that follows the visitor from page to page within the tab: open or not, the
// draft, the session and the last seq seen, and the outbox of messages not yet acknowledged.

const KEY = "sophie-chat:v1";

export class Store {
  constructor(backend = safeSessionStorage()) {
    this.backend = backend;
    this.data = {};
    try {
      this.data = JSON.parse(backend?.getItem(KEY) || "{}") || {};
    } catch {
      this.data = {};
    }
  }

  get(key, fallback = null) {
    return key in this.data ? this.data[key] : fallback;
  }

  set(key, value) {
    this.data[key] = value;
    this.save();
  }

  update(values) {
    Object.assign(this.data, values);
    this.save();
  }

  save() {
    try {
      this.backend?.setItem(KEY, JSON.stringify(this.data));
    } catch {
      // Quota or privacy mode: the widget still works, it just forgets on the next page.
    }
  }
}

function safeSessionStorage() {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}
