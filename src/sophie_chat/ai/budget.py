"""Daily token budget per user (``DAILY_TOKEN_BUDGET``; 0 = unlimited).

Tokens (prompt + completion, as reported or estimated) are counted per user and UTC day in Redis
when configured, else in process. When a user's budget is spent, the pipeline answers from the
knowledge base instead of the model.
"""

from __future__ import annotations

import datetime as dt

from sophie_chat.ai import _store
from sophie_chat.ai.base import Turn
from sophie_chat.conf import get_config

DAY_SECONDS = 2 * 24 * 60 * 60  # counters live a little longer than their day


def owner(turn: Turn) -> str:
    return f"u:{turn.user_id}" if turn.user_id is not None else f"s:{turn.session_id}"


def _key(turn: Turn) -> str:
    day = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d")
    return f"{_store.KEY_PREFIX}budget:{day}:{owner(turn)}"


def limit() -> int:
    return int(get_config()["DAILY_TOKEN_BUDGET"] or 0)


async def spent(turn: Turn) -> int:
    """Tokens ``turn``'s user spent today (0 when unlimited or unknown)."""
    if limit() <= 0:
        return 0
    url = _store.redis_url()
    if url:
        client = _store.redis_client(url)
        if client is not None:
            try:
                return int(await client.get(_key(turn)) or 0)
            except Exception as exc:
                _store.redis_failed(url, exc, "ai_budget_redis_failed")
    return int(_store.local.get(_key(turn)) or 0)


async def exhausted(turn: Turn) -> bool:
    budget = limit()
    return budget > 0 and await spent(turn) >= budget


async def add(turn: Turn, tokens: int) -> None:
    if limit() <= 0 or tokens <= 0:
        return
    key = _key(turn)
    url = _store.redis_url()
    if url:
        client = _store.redis_client(url)
        if client is not None:
            try:
                pipe = client.pipeline(transaction=False)
                pipe.incrby(key, tokens)
                pipe.expire(key, DAY_SECONDS)
                await pipe.execute()
                return
            except Exception as exc:
                _store.redis_failed(url, exc, "ai_budget_redis_failed")
    _store.local.incr(key, tokens, DAY_SECONDS)
