"""Response cache: complete AI answers, keyed by exactly what the model received.

The key is a SHA-256 of the model, :data:`~sophie_chat.ai.prompts.PROMPT_VERSION`, ``max_tokens``,
``temperature`` and the full message list (:func:`make_key`). Every stored answer also carries the
knowledge-base version it was built under (bumped whenever an entry is saved or deleted, or
:func:`sophie_chat.knowledge.search.invalidate` is called), read in the same round trip as the
answer (one ``MGET``); an answer of an older version is a miss. When any part of the prompt came
from one user's own record (profile facts, conversation history, a logged-in user's page title),
the key also carries that user (or, for anonymous visitors, their chat session), so nobody ever
receives an answer built from someone else's data. Only complete, non-degraded AI answers are
stored. Redis (``REDIS_URL``) is used when configured, an in-process TTL LRU otherwise; a Redis
failure bypasses the cache.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sophie_chat.ai import _store
from sophie_chat.ai.base import ChatPrompt, Turn
from sophie_chat.ai.prompts import PROMPT_VERSION
from sophie_chat.conf import get_config
from sophie_chat.logging import get_logger

logger = get_logger(__name__)

KB_VERSION_KEY = _store.KEY_PREFIX + "kbv"


def scope_for(turn: Turn) -> str:
    """``""`` when the prompt holds nothing personal, else the owner the answer belongs to."""
    personal = bool(turn.user_context or turn.history)
    if turn.user_id is not None and (turn.page or {}).get("title"):
        personal = True  # a logged-in page's title often carries the user's name
    if not personal:
        return ""
    return f"u:{turn.user_id}" if turn.user_id is not None else f"s:{turn.session_id}"


def _digest(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, sort_keys=True, ensure_ascii=False)
    return _store.KEY_PREFIX + "r:" + hashlib.sha256(raw.encode()).hexdigest()


def make_key(prompt: ChatPrompt, model: str, scope: str) -> str:
    """The key of exactly what the model receives (every message, knowledge and service details
    included), so an answer is only shared while everything it was built from is unchanged."""
    return _digest(
        {
            "model": model,
            "prompt_version": PROMPT_VERSION,
            "max_tokens": prompt.max_tokens,
            "temperature": prompt.temperature,
            "messages": prompt.messages,
            "scope": scope,
        }
    )


def enabled() -> bool:
    return int(get_config()["CACHE_TTL"] or 0) > 0


@dataclass
class Lookup:
    """A cache read: the answer ``{"text", "model"}`` or None, and the knowledge base version
    seen in the same read (a later :func:`put` stamps the answer with it)."""

    hit: dict[str, Any] | None
    kb_version: str


async def kb_version() -> str:
    """The knowledge base version stamp (bumped whenever an entry is saved or deleted)."""
    return (await lookup("")).kb_version


async def lookup(key: str) -> Lookup:
    """Read ``key`` and the knowledge base version in one round trip.

    An answer stored under an older version is a miss: the version is in the value rather than
    in the key, so a hit costs one MGET and no separate read of the stamp.
    """
    url = _store.redis_url()
    if url:
        client = _store.redis_client(url)
        if client is None:
            return Lookup(None, "")
        try:
            raw, version = await client.mget([key or KB_VERSION_KEY, KB_VERSION_KEY])
        except Exception as exc:
            _store.redis_failed(url, exc, "ai_cache_redis_failed")
            return Lookup(None, "")
        version = version.decode() if isinstance(version, bytes) else str(version or "0")
    else:
        raw = _store.local.get(key) if key else None
        version = str(_store.local.get(KB_VERSION_KEY) or 0)
    return Lookup(_decode(raw, version) if key else None, version)


def _decode(raw: Any, version: str) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(value, dict) or not value.get("text") or str(value.get("kb")) != version:
        return None
    return value


async def put(key: str, text: str, model: str, kb: str) -> None:
    """Store a complete answer under ``key``, stamped with the version its lookup saw."""
    ttl = int(get_config()["CACHE_TTL"] or 0)
    if ttl <= 0 or not text or not key:
        return
    raw = json.dumps({"text": text, "model": model, "kb": kb}, ensure_ascii=False)
    url = _store.redis_url()
    if not url:
        _store.local.set(key, raw, ttl)
        return
    client = _store.redis_client(url)
    if client is None:
        return
    try:
        await client.set(key, raw, ex=ttl)
    except Exception as exc:
        _store.redis_failed(url, exc, "ai_cache_redis_failed")


def bump_kb_version() -> None:
    """Retire every cached answer (the knowledge base changed). Sync; called by
    :func:`sophie_chat.knowledge.search.invalidate` on every save or delete of an entry."""
    _store.local.incr(KB_VERSION_KEY, 1, 0)
    url = _store.redis_url()
    if not url:
        return
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1.0)
    try:
        client.incr(KB_VERSION_KEY)
    except Exception as exc:
        # Answers then live until their TTL; the knowledge they quote is in their key anyway.
        logger.warning("ai_cache_kb_bump_failed", error=type(exc).__name__)
    finally:
        client.close()
