"""The offline backend: answers from the knowledge base alone, no model involved.

It is the default when no API key is set, and the fallback when the model fails. It writes a
short markdown answer in the user's language (a lead sentence, the best entry, a link to the page
it cites, "see also" for the next ones), or a predefined answer for common intents, or a generic
answer with suggestions. It never repeats the user's text or anything from the system prompt, so
prompt injection has nothing to extract.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from sophie_chat.ai import fallbacks
from sophie_chat.ai.base import ChatPrompt, Turn, Usage
from sophie_chat.ai.context import gather

MAX_ENTRY_CHARS = 1500  # characters of the best entry quoted in an answer
_PIECE_RE = re.compile(r"\s*\S+")


def split_words(text: str) -> list[str]:
    """Word-sized pieces (leading whitespace attached) that concatenate back to ``text``."""
    pieces = _PIECE_RE.findall(text)
    tail = text[sum(map(len, pieces)) :]
    if tail:
        pieces.append(tail)
    return pieces


def _link_text(title: str) -> str:
    return re.sub(r"([\[\]\\])", r"\\\1", title)


def _link(entry: dict[str, Any]) -> str:
    title = _link_text(str(entry.get("title") or ""))
    url = str(entry.get("url") or "").strip()
    # Angle brackets keep spaces or parentheses in a URL from breaking the markdown link.
    return f"[{title}](<{url}>)" if url else title


def _excerpt(content: str) -> str:
    content = content.strip()
    if len(content) <= MAX_ENTRY_CHARS:
        return content
    cut = content.rfind("\n\n", 0, MAX_ENTRY_CHARS)
    if cut < MAX_ENTRY_CHARS // 2:
        cut = content.rfind(" ", 0, MAX_ENTRY_CHARS)
    return content[: max(cut, 1)].rstrip() + " …"


def compose_answer(
    text: str,
    language: str,
    entries: list[dict[str, Any]],
    intent: str = "other",
    services: list[str] | None = None,
) -> str:
    """The offline answer to ``text`` (markdown) from the knowledge ``entries`` found for it."""
    lk = fallbacks.lang_key(language)
    key = fallbacks.predefined_key(text, intent)
    if intent == "greeting" or (key and not entries):
        return fallbacks.predefined_answer(key or "greeting", language)
    if not entries:
        answer = fallbacks.GENERIC[lk]
        contacts = fallbacks.contact_block(language)
        return answer + ("\n\n" + contacts if contacts else "")
    best = entries[0]
    body = _excerpt(best["content"])
    parts = [fallbacks.LEAD[lk].format(title=best.get("title", "")), body]
    if services:
        parts.append("\n".join(f"- {s}" for s in services))
    url = str(best.get("url") or "").strip()
    if url and f"]({url})" not in body and f"](<{url}>)" not in body:
        parts.append(fallbacks.MORE[lk].format(link=_link(best)))
    # "See also": the next entries, one per page, none pointing where the best one does.
    seen_urls = {url} if url else set()
    others = []
    for entry in entries[1:]:
        other_url = str(entry.get("url") or "").strip()
        if other_url and other_url in seen_urls:
            continue
        seen_urls.add(other_url)
        others.append(entry)
        if len(others) == 2:
            break
    if others:
        parts.append(fallbacks.SEE_ALSO[lk].format(links=", ".join(_link(e) for e in others)))
    if intent == "human_request":
        contacts = fallbacks.contact_block(language)
        if contacts:
            parts.append(contacts)
    return "\n\n".join(parts)


class OfflineBackend:
    """Streams :func:`compose_answer` in word-sized deltas (no artificial delay)."""

    name = "offline"

    def __init__(self) -> None:
        self.last_usage: Usage | None = None
        self.model = "offline"

    async def stream(self, prompt: ChatPrompt, turn: Turn) -> AsyncIterator[str]:
        ctx = await gather(turn)
        intent = turn.intent
        if intent == "other":
            from sophie_chat.conversation.intents import classify

            intent = classify(turn.text, turn.language)
        answer = compose_answer(turn.text, turn.language, ctx.entries, intent, ctx.services)
        self.last_usage = Usage(0, 0, estimated=False)
        for piece in split_words(answer):
            yield piece
