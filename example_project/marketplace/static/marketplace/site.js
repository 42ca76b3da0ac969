// The site's accessibility button: larger text and high contrast, remembered per browser.
const KEY = "contrataja-a11y";
const button = document.getElementById("a11y-button");

function apply(on) {
  document.documentElement.classList.toggle("a11y-on", on);
  if (button) button.setAttribute("aria-pressed", String(on));
}

let stored = false;
try {
  stored = localStorage.getItem(KEY) === "1";
} catch {
  // Storage may be blocked (private mode); the toggle still works for this page.
}
apply(stored);

button?.addEventListener("click", () => {
  const on = !document.documentElement.classList.contains("a11y-on");
  apply(on);
  try {
    localStorage.setItem(KEY, on ? "1" : "0");
  } catch {
    // See above.
  }
});
