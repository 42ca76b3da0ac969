"""The HTML of the chat widget: a host element configured by ``data-*`` attributes (the
translated interface strings among them, as JSON) and one ES module script.

The template tag is a thin edge over :func:`widget_html`, which tests call directly.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import get_language

from sophie_chat.conf import get_config
from sophie_chat.widget_strings import interface_strings

#: Path of the chat WebSocket; the browser resolves it against the page's host.
WS_PATH = "/ws/sophie-chat/"

_HEX = re.compile(r"^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


def widget_html(
    request: HttpRequest | None,
    *,
    status: int | str | None = None,
    nonce: str | None = None,
) -> str:
    """Return the widget's HTML for ``request``, or ``""`` when it must not be shown.

    Anonymous visitors see nothing when ``ALLOW_ANONYMOUS`` is off; otherwise they are given a
    Django session so that the WebSocket can recognise them on every page.
    """
    config = get_config()
    if request is not None and not _is_authenticated(request):
        if not config["ALLOW_ANONYMOUS"]:
            return ""
        _ensure_session(request)
    if nonce is None and request is not None:
        nonce = getattr(request, "csp_nonce", None)
    widget: dict[str, Any] = config["WIDGET"]
    name = str(config["ASSISTANT_NAME"])
    contacts = {k: str(v) for k, v in (config["SUPPORT_CONTACT"] or {}).items() if v}
    data: list[tuple[str, Any]] = [
        ("ws-path", WS_PATH),
        ("css", static("sophie_chat/widget.css")),
        ("language", get_language() or config["DEFAULT_LANGUAGE"]),
        ("assistant-name", name),
        ("position", widget["position"]),
        ("z-index", widget["z_index"]),
        ("offset-bottom", widget["offset_bottom"]),
        ("offset-side", widget["offset_side"]),
        ("primary-color", widget["primary_color"]),
        ("text-color", widget["text_color"]),
        ("max-length", config["MAX_MESSAGE_LENGTH"]),
        ("support", _json(contacts)),
        # An attribute, not a <script> block: host CSS like `* { all: unset }` would show a
        # script's text on the page.
        ("strings", _json(interface_strings(name))),
    ]
    if status not in (None, ""):
        data.append(("page-status", status))
    attrs = format_html_join("", ' data-{}="{}"', data)
    if nonce:
        script = format_html(
            '<script type="module" src="{}" nonce="{}"></script>',
            static("sophie_chat/sophie-chat.js"),
            nonce,
        )
    else:
        script = format_html(
            '<script type="module" src="{}"></script>', static("sophie_chat/sophie-chat.js")
        )
    context = {"attrs": attrs, "script": script}
    return SafeString(render_to_string("sophie_chat/widget.html", context).strip())


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _is_authenticated(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)


def _ensure_session(request: HttpRequest) -> None:
    session = getattr(request, "session", None)
    if session is None or session.session_key:
        return
    session.save()
    # An empty saved session is not "modified": without this the middleware sends no cookie.
    session.modified = True


def contrast_ratio(foreground: str, background: str) -> float | None:
    """WCAG contrast ratio of two ``#rgb``/``#rrggbb`` colours, or None for other CSS colours.

    AA asks for 4.5 for normal text; the widget's text colour sits on its primary colour.
    """
    lums = []
    for colour in (foreground, background):
        match = _HEX.match(colour.strip())
        if not match:
            return None
        digits = match.group(1)
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        lums.append(0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2])
    high, low = max(lums), min(lums)
    return round((high + 0.05) / (low + 0.05), 2)
