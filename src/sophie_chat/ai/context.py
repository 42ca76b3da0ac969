"""What the AI layer looks up for a turn: knowledge base entries and service details.

All of it happens in one trip to a worker thread (:func:`gather`), so a turn costs a fixed,
small number of queries whichever backend answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sophie_chat.ai.base import Turn
from sophie_chat.dbunits import db_unit
from sophie_chat.logging import get_logger

logger = get_logger(__name__)

KB_LIMIT = 3  # entries: the best one answers, the next ones are "see also"


@dataclass
class TurnContext:
    # Entry dicts, best first: slug, title, content, url, category, score.
    entries: list[dict[str, Any]] = field(default_factory=list)
    # Extra service texts (the knowledge context already holds SERVICE_INFO_PROVIDER's).
    services: list[str] = field(default_factory=list)


def _search_entries(turn: Turn) -> list[dict[str, Any]]:
    from sophie_chat.conversation.context import ContextManager

    # Search hits for the user's audience, the current page's guide and service details.
    return ContextManager.build_knowledge_base_context(
        turn.text,
        language=turn.language,
        user_type=turn.user_type,
        page=turn.page,
        intent=turn.intent,
        limit=KB_LIMIT,
    )


def gather_sync(turn: Turn) -> TurnContext:
    """Look up the knowledge and service details relevant to ``turn`` (blocking)."""
    ctx = TurnContext()
    try:
        ctx.entries = _search_entries(turn)
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
    return await _gather_unit(turn)


_gather_unit = db_unit(gather_sync)
