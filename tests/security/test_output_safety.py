"""Output safety: XSS and exfiltration payloads as assistant answers, rendered by the widget.

The payloads (tests/data/xss_payloads.py) reach Chromium two ways: streamed by the loopback
OpenAI server as model answers, and quoted by the offline backend from knowledge-base entries.
The page counts script executions (``window.__xss``), dialogs and every request to an origin
other than the site's; all must stay at zero. ``render_markdown`` is also checked alone against
an allow-list of tags, attributes and URL schemes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from sophie_chat.rendering import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, URL_SCHEMES, render_markdown
from tests.data.xss_payloads import payloads
from tests.security.conftest import Site, assert_no_canary, manage, start_site

BATCH = 25  # payloads per answer
HISTORY_ANSWERS = 10  # answers in the default history page (HISTORY_PAGE_SIZE 20)
KB_CHARS = 1400  # an entry's content is quoted up to 1,500 characters (offline backend)

INSTRUMENT = """
window.__xss = {count: 0, hit() { this.count += 1; }};
for (const name of ["alert", "confirm", "prompt", "print"]) {
  const original = window[name];
  window[name] = function (...args) { window.__xss.count += 1; return original.apply(this, args); };
}
"""

# Every element and attribute of the rendered messages, as the browser sees them.
DOM_AUDIT = """
() => {
  const root = document.querySelector("sophie-chat").shadowRoot;
  const found = {tags: {}, attrs: {}, hrefs: []};
  for (const el of root.querySelectorAll(".sc-assistant .sc-body *")) {
    const tag = el.tagName.toLowerCase();
    found.tags[tag] = (found.tags[tag] || 0) + 1;
    for (const a of el.attributes) found.attrs[`${tag}[${a.name}]`] = 1;
    if (el.href !== undefined && el.getAttribute("href") !== null) found.hrefs.push(el.href);
  }
  return found;
}
"""

# Chromium fires these without a real pointer; handlers an attacker hoped for would run now.
POKE = """
() => {
  const root = document.querySelector("sophie-chat").shadowRoot;
  for (const el of root.querySelectorAll(".sc-assistant .sc-body *")) {
    for (const type of ["mouseover", "pointerenter", "focus", "animationstart", "toggle"]) {
      el.dispatchEvent(new Event(type));
    }
  }
}
"""

CONTROL = """
() => {
  const div = document.createElement("div");
  div.innerHTML = '<img src="x" onerror="__xss.hit()"><img src="http://evil.example/control.gif">';
  document.body.append(div);
}
"""


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    handle_startendtag = handle_starttag


def _batches(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _kb_batches(items: list[str]) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for item in items:
        if out[-1] and len("\n\n".join([*out[-1], item])) > KB_CHARS - 40:
            out.append([])
        out[-1].append(item)
    return out


def test_render_markdown_keeps_only_the_allow_list() -> None:
    allowed_attrs = {tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()}
    allowed_attrs.setdefault("a", set()).update({"target", "rel"})
    corpus = payloads()
    for payload in corpus:
        html = render_markdown(payload)
        collector = _Collector()
        collector.feed(html)
        collector.close()
        for tag, attrs in collector.tags:
            assert tag in ALLOWED_TAGS, (payload, html)
            for name, value in attrs:
                assert name in allowed_attrs.get(tag, set()), (payload, html)
                if name == "href":
                    scheme = urlsplit(value or "").scheme.lower()
                    assert scheme in URL_SCHEMES or scheme == "", (payload, html)
                    # A scheme a browser would still find after removing tabs and newlines.
                    squeezed = "".join((value or "").split()).lower()
                    assert not squeezed.startswith(("javascript:", "vbscript:", "data:"))
    print(f"\nrender_markdown: {len(corpus)} payloads, 0 tags, attributes or URLs off the list")
    assert len(corpus) >= 200


@pytest.fixture(scope="module")
def kb_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, list[list[str]]]]:
    """The test project answering offline, from knowledge entries made of payloads."""
    tmp = tmp_path_factory.mktemp("security-kb")
    batches = _kb_batches(payloads())
    entries = [
        {
            "slug": f"xss-{i:02d}",
            "language": "pt-br",
            "category": "faq",
            "title": f"Caso xsskb{i:02d}",
            "keywords": [f"xsskb{i:02d}"],
            "content": f"Marcador xsskb{i:02d}.\n\n" + "\n\n".join(batch),
        }
        for i, batch in enumerate(batches)
    ]
    kb = tmp / "xss.yaml"
    kb.write_text(yaml.safe_dump(entries, allow_unicode=False))
    server, env = start_site(tmp, None, AI_BACKEND="sophie_chat.ai.offline.OfflineBackend")
    manage(env, "sophie_chat_load_kb", str(kb))
    server.start()
    yield Site(server, None), batches
    server.stop()


class Watch:
    """Counters a page must keep at zero: dialogs and requests to other origins."""

    def __init__(self, context: Any, origin: str) -> None:
        self.origin = origin
        self.dialogs: list[str] = []
        self.foreign: list[str] = []
        self.requests = 0
        self.frames: list[str] = []
        context.on("request", self.request)
        context.on("page", self.page)

    def page(self, page: Any) -> None:
        page.on("dialog", self.dialog)
        page.on("websocket", self.socket)

    def dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def request(self, request: Any) -> None:
        self.requests += 1
        parts = urlsplit(request.url)
        if f"{parts.scheme}://{parts.netloc}" != self.origin:
            self.foreign.append(request.url)

    def socket(self, ws: Any) -> None:
        if not ws.url.startswith(self.origin.replace("http", "ws", 1) + "/"):
            self.foreign.append(ws.url)
        ws.on("framereceived", lambda payload: self.frames.append(str(payload)))


def _chat(
    browser: Any, site: Site, questions: list[str], marker: Any
) -> tuple[Watch, dict[str, Any], int]:
    from playwright.sync_api import expect

    context = browser.new_context(locale="pt-BR", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    context.add_init_script(INSTRUMENT)
    watch = Watch(context, site.origin)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(site.server.url())
    page.locator(".sc-launcher").click()
    expect(page.locator(".sc-status")).to_have_attribute("data-state", "online")
    answers = page.locator(".sc-items .sc-assistant:not(.sc-streaming) .sc-body")
    for n, question in enumerate(questions, 1):
        page.locator("#sc-input").fill(question)
        page.locator("#sc-input").press("Enter")
        expect(answers).to_have_count(n)
        marker(n - 1, answers.nth(n - 1))
    page.evaluate(POKE)
    page.reload()  # the same answers again, from the session frame's history
    page.locator(".sc-launcher").click()
    # The session frame carries the last page (20 messages: 10 answers).
    expect(answers).to_have_count(min(len(questions), HISTORY_ANSWERS))
    page.evaluate(POKE)
    page.wait_for_timeout(300)  # let any late request, timer or dialog show up
    audit = page.evaluate(DOM_AUDIT)
    executions = int(page.evaluate("window.__xss.count"))
    foreign = list(watch.foreign)
    # Control: the same markup inserted raw does run and does reach out, so the zeros count.
    page.evaluate(CONTROL)
    page.wait_for_function(f"window.__xss.count > {executions}")
    page.wait_for_timeout(300)
    assert any("evil.example/control" in url for url in watch.foreign[len(foreign) :])
    watch.foreign = foreign
    assert_no_canary(page.content(), *watch.frames)
    context.close()
    assert not errors, errors
    return watch, audit, executions


def _check(watch: Watch, audit: dict[str, Any], executions: int, origin: str) -> None:
    assert executions == 0
    assert watch.dialogs == []
    assert watch.foreign == []
    assert set(audit["tags"]) <= ALLOWED_TAGS | {"span"}, audit["tags"]  # span: "(new tab)"
    attrs = {name.split("[")[1].rstrip("]") for name in audit["attrs"]}
    assert attrs <= {"href", "title", "start", "align", "target", "rel", "class"}, attrs
    for href in audit["hrefs"]:
        assert urlsplit(href).scheme in {"http", "https", "mailto", "tel"}, href


@pytest.mark.browser
def test_payloads_render_inert_in_the_widget(
    browser: Any, site: Site, kb_site: tuple[Site, list[list[str]]]
) -> None:
    started = time.monotonic()
    corpus = payloads()
    # 1. Streamed as model answers: one answer per batch of payloads.
    assert site.openai is not None
    ai_batches = _batches(corpus, BATCH)
    script = {f"xsslote{i:02d}": "\n\n".join(batch) for i, batch in enumerate(ai_batches)}
    site.openai.configure(content="Sem lote.", script=script)

    def ai_marker(i: int, body: Any) -> None:
        assert body.inner_text().strip(), "an answer rendered empty"

    ai = _chat(browser, site, list(script), ai_marker)
    _check(*ai, site.origin)
    # 2. Quoted by the offline backend from knowledge entries.
    kb, kb_batches = kb_site

    def kb_marker(i: int, body: Any) -> None:
        assert f"Marcador xsskb{i:02d}." in body.inner_text()  # the intended entry answered

    offline = _chat(browser, kb, [f"xsskb{i:02d}" for i in range(len(kb_batches))], kb_marker)
    _check(*offline, kb.origin)
    rendered = len(corpus) + sum(map(len, kb_batches))
    took = time.monotonic() - started
    executions = ai[2] + offline[2]
    dialogs = len(ai[0].dialogs) + len(offline[0].dialogs)
    foreign = len(ai[0].foreign) + len(offline[0].foreign)
    requests = ai[0].requests + offline[0].requests
    print(
        f"\noutput safety: payloads rendered {rendered} ({len(corpus)} as model answers in"
        f" {len(ai_batches)} replies, {sum(map(len, kb_batches))} from {len(kb_batches)}"
        f" knowledge entries; each shown live and again from history), executions {executions},"
        f" dialogs {dialogs}, foreign requests {foreign} of {requests} requests, {took:.0f} s"
    )
    assert rendered >= 400


@pytest.fixture(scope="module")
def csp_site(tmp_path_factory: pytest.TempPathFactory, openai_process: Any) -> Iterator[Site]:
    """The test project behind a strict Content-Security-Policy (tests/security/csp.py)."""
    server, _env = start_site(
        tmp_path_factory.mktemp("security-csp"), openai_process, "tests.security.csp_settings"
    )
    server.start()
    yield Site(server, openai_process)
    server.stop()


@pytest.mark.browser
def test_widget_works_under_a_strict_content_security_policy(browser: Any, csp_site: Site) -> None:
    """The site's own CSP is the second line of defence: the widget must work under a strict one
    (the template tag's nonce for its script, no inline script or style, no other host)."""
    from playwright.sync_api import expect

    site = csp_site
    assert site.openai is not None
    site.openai.configure(content="Sem lote.", script={"xsscsp": "\n\n".join(payloads()[:BATCH])})
    context = browser.new_context(locale="pt-BR")
    context.set_default_timeout(15_000)
    context.add_init_script(INSTRUMENT)
    page = context.new_page()
    violations: list[str] = []
    errors: list[str] = []
    page.on(
        "console", lambda m: violations.append(m.text) if "Content Security" in m.text else None
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    # The hostile page: its own styles come from a stylesheet, so the policy needs no inline style.
    response = page.goto(site.server.url("/widget-test/hostile/"))
    assert response is not None
    assert "script-src 'nonce-" in response.headers["content-security-policy"]
    page.locator(".sc-launcher").click()
    expect(page.locator(".sc-status")).to_have_attribute("data-state", "online")
    page.locator("#sc-input").fill("xsscsp")
    page.locator("#sc-input").press("Enter")
    answer = page.locator(".sc-items .sc-assistant:not(.sc-streaming) .sc-body")
    expect(answer).to_have_count(1)
    page.evaluate(POKE)
    page.wait_for_timeout(300)
    executions = page.evaluate("window.__xss.count")
    context.close()
    print(f"\nstrict CSP: {len(violations)} violations, {executions} executions, {errors} errors")
    assert violations == []
    assert errors == []
    assert executions == 0
