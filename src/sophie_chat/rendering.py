"""Assistant markdown to safe HTML: markdown-it-py with raw HTML off, then an nh3 allow-list.

The result is safe to insert with ``innerHTML``: no script, style, event handler or form; links
only to http(s), mailto, tel or relative URLs, opened in a new tab with
``rel="noopener noreferrer nofollow"``; no images at all (an image becomes a link to it, so no
outside host is contacted when a message is shown).
"""

from __future__ import annotations

from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "b", "i", "del", "s", "code", "pre", "blockquote", "hr",
    "ul", "ol", "li", "a", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = {"http", "https", "mailto", "tel"}
LINK_REL = "noopener noreferrer nofollow"


def _image_as_link(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    alt = "".join(child.content for child in token.children or []) or src
    return f'<a href="{escapeHtml(src)}">{escapeHtml(alt)}</a>'


# breaks: a single newline is a line break, as people expect in a chat.
_md = MarkdownIt(
    "commonmark", {"html": False, "linkify": False, "typographer": False, "breaks": True}
)
_md.enable(["table", "strikethrough"])
_md.add_render_rule("image", _image_as_link)

_cleaner = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    clean_content_tags={"script", "style"},
    attributes=ALLOWED_ATTRIBUTES,
    url_schemes=URL_SCHEMES,
    link_rel=LINK_REL,
    set_tag_attribute_values={"a": {"target": "_blank"}},
    strip_comments=True,
)


def render_markdown(text: str) -> str:
    """Return safe HTML for an assistant message written in markdown."""
    return str(_cleaner.clean(_md.render(text or ""))).strip()
