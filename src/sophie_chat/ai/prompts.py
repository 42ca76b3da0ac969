"""Build what the model receives: a system prompt from a template, fenced data, history, question.

The persona and rules come from a Django template (``PROMPT_TEMPLATE``, default
``sophie_chat/prompts/system.txt``), so a site overrides them like any template. Knowledge,
service details, page context and profile facts follow as ``<data kind="...">`` blocks; anything
inside them that looks like a fence is neutralised, and the template tells the model that data is
not instructions. :data:`PROMPT_VERSION` is part of the response cache key: bump it whenever the
shape of the prompt changes.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.template.loader import render_to_string
from django.utils.translation import get_language

from sophie_chat.ai.base import ChatPrompt, Turn
from sophie_chat.ai.fallbacks import lang_key
from sophie_chat.conf import get_config

PROMPT_VERSION = "2026-11-25.1"

LANGUAGE_NAMES = {"pt": "Brazilian Portuguese (pt-BR)", "en": "English"}
USER_TYPES = ("client", "provider", "anonymous", "staff")
_FENCE_RE = re.compile(r"<(\s*/?\s*data)", re.IGNORECASE)
_FENCE_SAFE = "\u2039\\1"  # single left-pointing angle quotation mark
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_PAGE_STATUS = {404: "page not found", 403: "access denied", 500: "server error"}


def neutralise(text: Any) -> str:
    """Make user-controlled text safe to put inside a data block: no fence can be closed or
    opened from inside (the ``<`` of ``<data``/``</data`` becomes a look-alike angle quote), and
    no control characters."""
    return _FENCE_RE.sub(_FENCE_SAFE, _CONTROL_RE.sub("", str(text)))


def data_block(kind: str, body: str) -> str:
    return f'<data kind="{kind}">\n{neutralise(body).strip()}\n</data>'


def _knowledge_blocks(kb_context: Any) -> list[str]:
    if not kb_context:
        return []
    if isinstance(kb_context, str):
        return [data_block("knowledge", kb_context)]
    blocks = []
    for entry in kb_context:
        lines = [f"Title: {entry.get('title', '')}"]
        if entry.get("url"):
            lines.append(f"Link: {entry['url']}")
        lines.append("")
        lines.append(str(entry.get("content", "")))
        kind = "service" if entry.get("category") == "service_info" else "knowledge"
        blocks.append(data_block(kind, "\n".join(lines)))
    return blocks


def _service_blocks(service_info: Any) -> list[str]:
    if not service_info:
        return []
    if isinstance(service_info, str):
        service_info = [service_info]
    return [data_block("service", str(s)) for s in service_info]


def page_block(page: dict[str, Any] | None) -> str:
    """The page the user is on, as a data block ("" when nothing is known of it)."""
    if not page:
        return ""
    from sophie_chat.conversation.context import get_navigation_context

    # Paths only (query strings may carry tokens or e-mails); another site's referrer as host.
    nav = get_navigation_context(page)
    lines = []
    if nav["url"]:
        lines.append(f"URL: {nav['url']}")
    if nav["title"]:
        lines.append(f"Title: {nav['title']}")
    if nav["referrer"]:
        lines.append(f"Came from: {nav['referrer']}")
    status = nav["status"]
    if isinstance(status, int) and status >= 400:
        lines.append(f"HTTP status: {status} ({_PAGE_STATUS.get(status, 'error page')})")
    return data_block("page", "\n".join(lines)) if lines else ""


def _profile_block(user_context: dict[str, Any]) -> list[str]:
    if not user_context:
        return []
    lines = [f"{neutralise(k)[:60]}: {str(v)[:300]}" for k, v in user_context.items()]
    return [data_block("user_profile", "\n".join(lines))]


def _support_contact(cfg: dict[str, Any]) -> str:
    contacts = cfg["SUPPORT_CONTACT"] or {}
    return ", ".join(f"{k} {v}" for k, v in contacts.items() if v)


def render_system(turn: Turn) -> str:
    """The persona and rules part of the system prompt (the template, rendered).

    Rendered once per process for each set of inputs (user type, language, settings), since it
    is the same for every turn of them; with ``DEBUG`` on it is rendered every time, so edits to
    the template show at once.
    """
    cfg = get_config()
    user_type = turn.user_type if turn.user_type in USER_TYPES else "anonymous"
    context = {
        "assistant_name": cfg["ASSISTANT_NAME"],
        "user_type": user_type,
        "language": turn.language,
        "language_name": LANGUAGE_NAMES[lang_key(turn.language)],
        "support_contact": _support_contact(cfg),
        "prompt_version": PROMPT_VERSION,
    }
    # The active translation too: a site's template may use {% translate %}.
    key = (str(cfg["PROMPT_TEMPLATE"]), get_language() or "", *map(str, context.values()))
    text = None if settings.DEBUG else _rendered.get(key)
    if text is None:
        text = render_to_string(cfg["PROMPT_TEMPLATE"], context).strip()
        if len(_rendered) >= 64:  # a handful of user types x languages in practice
            _rendered.clear()
        _rendered[key] = text
    return text


def _forget_rendered(**kwargs: Any) -> None:
    _rendered.clear()


_rendered: dict[tuple[str, ...], str] = {}
# New settings (tests, or a site reconfiguring at run time) may name another template.
setting_changed.connect(_forget_rendered, dispatch_uid="sophie_prompt_rendered")


def _size(messages: list[dict[str, str]]) -> int:
    return sum(len(m["content"]) for m in messages)


def build_prompt(turn: Turn, kb_context: Any = None, service_info: Any = None) -> ChatPrompt:
    """Build the model's input for ``turn``.

    ``kb_context`` is a list of entry dicts (best first) or a ready-made text; ``service_info`` a
    list of texts. The whole prompt is kept under ``MAX_PROMPT_CHARS``: knowledge entries go
    first (the least relevant first), then the oldest history.
    """
    cfg = get_config()
    persona = render_system(turn)
    page = page_block(turn.page)
    fixed = _service_blocks(service_info) + ([page] if page else [])
    fixed += _profile_block(turn.user_context)
    knowledge = _knowledge_blocks(kb_context)
    n_history = max(0, int(cfg["HISTORY_MESSAGES_FOR_MODEL"]))
    history = [
        {"role": h.role, "content": h.content[: cfg["MAX_MESSAGE_LENGTH"] * 4]}
        for h in (turn.history[-n_history:] if n_history else [])
    ]
    question = {"role": "user", "content": turn.text[: cfg["MAX_MESSAGE_LENGTH"]]}
    limit = int(cfg["MAX_PROMPT_CHARS"])

    def assemble() -> list[dict[str, str]]:
        system = "\n\n".join([persona, *knowledge, *fixed])
        return [{"role": "system", "content": system}, *history, question]

    messages = assemble()
    while _size(messages) > limit and knowledge:
        knowledge.pop()
        messages = assemble()
    while _size(messages) > limit and history:
        history.pop(0)
        messages = assemble()
    while _size(messages) > limit and fixed:
        fixed.pop()
        messages = assemble()
    overflow = _size(messages) - limit
    if overflow > 0:
        # Only a huge custom template gets here: cut it rather than exceed the cap.
        messages[0]["content"] = messages[0]["content"][: max(0, len(persona) - overflow)]
        if _size(messages) > limit:
            question["content"] = question["content"][: max(0, limit - len(messages[0]["content"]))]
    return ChatPrompt(
        messages=messages,
        max_tokens=int(cfg["MAX_TOKENS"]),
        temperature=float(cfg["TEMPERATURE"]),
    )
