// Strings come translated from the server (the template tag); the browser only fills in
// placeholders it alone knows, written as Django's %(name)s.

export function translator(strings) {
  return (key, vars = {}) =>
    (strings[key] ?? key).replace(/%\((\w+)\)s/g, (all, name) => (name in vars ? vars[name] : all));
}

export function readStrings(host) {
  try {
    return JSON.parse(host.dataset.strings || "{}");
  } catch {
    return {};
  }
}
