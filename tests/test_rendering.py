"""Assistant markdown becomes HTML that is safe to insert with innerHTML."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from sophie_chat.rendering import ALLOWED_TAGS, render_markdown

XSS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](  javascript:alert(1))",
    "[click](<javascript:alert(1)>)",
    "[click](&#106;avascript:alert(1))",
    "[click](java\tscript:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click](vbscript:msgbox(1))",
    "[click](file:///etc/passwd)",
    '[click](https://ok.example "title" onmouseover="alert(1)")',
    "![x](javascript:alert(1))",
    "![x](data:image/png;base64,iVBORw0KGgo=)",
    "![tracker](https://evil.example/pixel.gif)",
    "![x](//evil.example/x.png)",
    "<svg onload=alert(1)><circle/></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<iframe src=https://evil.example></iframe>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<form action=https://evil.example><input name=p></form>",
    "<details open ontoggle=alert(1)>",
    "<!-- <script>alert(1)</script> -->",
    "```html\n<script>alert(1)</script>\n```",
    "`<img src=x onerror=alert(1)>`",
    "**bold <b onclick=alert(1)>x</b>**",
    "<a href='https://ok.example' onclick='alert(1)'>x</a>",
    "[x](https://ok.example)<script>alert(1)</script>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "<base href=https://evil.example/>",
    "<meta http-equiv=refresh content='0;url=https://evil.example'>",
    "<object data=https://evil.example/x.swf></object>",
    "<link rel=stylesheet href=https://evil.example/x.css>",
    '[x](https://ok.example/" onmouseover="alert(1))',
]


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    handle_startendtag = handle_starttag


def assert_safe(html: str) -> None:
    parser = _Collector()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert tag in ALLOWED_TAGS, f"tag {tag} in {html!r}"
        for name, value in attrs:
            assert not name.startswith("on"), html
            assert name in {"href", "title", "target", "rel", "start", "align"}, html
            if name == "href":
                parts = urlsplit(value or "")
                assert parts.scheme in ("", "http", "https", "mailto", "tel"), html
        if tag == "a":
            assert ("rel", "noopener noreferrer nofollow") in attrs, html
            assert ("target", "_blank") in attrs, html
    # Text like "javascript:alert(1)" may remain, escaped and inert; live markup may not.
    lowered = html.lower()
    for needle in ("<script", "<img", "<svg", "<math", "<iframe", "<style", "<form", "<!--"):
        assert needle not in lowered, f"{needle} in {html!r}"


@pytest.mark.parametrize("source", XSS)
def test_xss_corpus_renders_harmless(source):
    assert_safe(render_markdown(source))


def test_markdown_is_rendered():
    html = render_markdown("**Diarista** custa *a partir* de R$ 150.\n\n- um\n- dois")
    assert "<strong>Diarista</strong>" in html
    assert "<em>a partir</em>" in html
    assert "<ul>" in html
    assert "<li>um</li>" in html


def test_links_open_in_a_new_tab_without_referrer():
    html = render_markdown("[Diarista](/servicos/diarista/) e [site](https://example.com/x)")
    assert (
        '<a href="/servicos/diarista/" target="_blank" rel="noopener noreferrer nofollow">'
        "Diarista</a>" in html
    )
    assert 'href="https://example.com/x"' in html


def test_mailto_and_tel_links_are_kept():
    html = render_markdown("[e-mail](mailto:ajuda@example.com) [ligar](tel:+5511999990000)")
    assert 'href="mailto:ajuda@example.com"' in html
    assert 'href="tel:+5511999990000"' in html


def test_images_become_links_and_load_nothing():
    html = render_markdown("![Foto do serviço](https://cdn.example.com/foto.png)")
    assert "<img" not in html
    assert '<a href="https://cdn.example.com/foto.png"' in html
    assert "Foto do serviço</a>" in html


def test_raw_html_is_shown_as_text():
    assert render_markdown("<b>oi</b>") == "<p>&lt;b&gt;oi&lt;/b&gt;</p>"


def test_single_newlines_are_line_breaks():
    assert render_markdown("linha 1\nlinha 2") == "<p>linha 1<br>\nlinha 2</p>"


def test_tables_and_code():
    html = render_markdown("| a | b |\n|---|---|\n| 1 | 2 |\n\n`x < y`")
    assert "<table>" in html
    assert "<td>1</td>" in html
    assert "<code>x &lt; y</code>" in html


def test_empty():
    assert render_markdown("") == ""
