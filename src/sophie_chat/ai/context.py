"""What the AI layer looks up for a turn: knowledge base entries and service details.

All of it happens in one trip to a worker thread (:func:`gather`), so a turn costs a fixed,
small number of queries whichever backend answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async

from sophie_chat.ai.base import Turn
from sophie_chat.conf import get_config
from sophie_chat.logging import get_logger

logger = get_logger(__name__)

KB_LIMIT = 3  # entries: the best one answers, the next ones are "see also"


@dataclass
class TurnContext:
    # Entry dicts, best first: slug, title, content, url, category, score.
    entries: list[dict[str, Any]] = field(default_factory=list)
    # Service details from SERVICE_INFO_PROVIDER, as one text each.
    services: list[str] = field(default_factory=list)


def _audience(user_type: str) -> str | None:
    # Staff see everything; anonymous visitors are most often prospective clients.
    if user_type == "staff":
        return None
    return "provider" if user_type == "provider" else "client"


def _search_entries(text: str, language: str, user_type: str) -> list[dict[str, Any]]:
    try:
        from sophie_chat.knowledge.search import KnowledgeBase
    except ImportError:  # pragma: no cover - only before the knowledge layer landed
        return _orm_search(text, language, user_type)
    results = KnowledgeBase().search(
        text, language=language, audience=_audience(user_type), limit=KB_LIMIT
    )
    return [r.as_context() for r in results]


def _orm_search(text: str, language: str, user_type: str) -> list[dict[str, Any]]:
    """A plain icontains search; the stand-in until the knowledge search is available."""
    from django.db.models import Q

    from sophie_chat.models import KnowledgeBaseEntry

    words = [w for w in re.findall(r"\w{4,}", text.lower())][:8]
    if not words:
        return []
    query = Q()
    for w in words:
        query |= Q(title__icontains=w) | Q(keywords__icontains=w) | Q(content__icontains=w)
    rows = KnowledgeBaseEntry.objects.filter(
        query, is_active=True, language__istartswith=language[:2]
    )[:20]
    scored = []
    for e in rows:
        hay = (e.title + " " + e.keywords).lower()
        score = sum(2 if w in hay else 1 for w in words if w in hay or w in e.content.lower())
        scored.append((score, e))
    scored.sort(key=lambda pair: -pair[0])
    return [
        {
            "slug": e.slug,
            "title": e.title,
            "content": e.content,
            "url": e.url,
            "category": e.category,
            "score": float(s),
        }
        for s, e in scored[:KB_LIMIT]
    ]


def _services(text: str, language: str) -> list[str]:
    if not get_config()["SERVICE_INFO_PROVIDER"]:
        return []
    try:
        from sophie_chat.knowledge.services import get_service_info
    except ImportError:  # pragma: no cover
        return []
    return [info.as_text() for info in get_service_info(text, language=language, limit=2)]


def gather_sync(turn: Turn) -> TurnContext:
    """Look up the knowledge and service details relevant to ``turn`` (blocking)."""
    ctx = TurnContext()
    try:
        ctx.entries = _search_entries(turn.text, turn.language, turn.user_type)
        ctx.services = _services(turn.text, turn.language)
    except Exception as exc:
        # The database being down must not cost the user an answer: the model and the
        # predefined answers still work without the knowledge base.
        logger.warning("knowledge_lookup_failed", error=type(exc).__name__)
    return ctx


async def gather(turn: Turn) -> TurnContext:
    """Like :func:`gather_sync`, from async code; reuses what the caller already put in
    ``turn.extra["knowledge"]`` (entry dicts) instead of searching again."""
    given = turn.extra.get("knowledge")
    if isinstance(given, list):
        return TurnContext(entries=list(given), services=list(turn.extra.get("services") or []))
    return await database_sync_to_async(gather_sync)(turn)
