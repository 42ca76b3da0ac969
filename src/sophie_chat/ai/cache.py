"""Response cache: complete AI answers, keyed by exactly what the model received.

The key is a SHA-256 of the model, :data:`~sophie_chat.ai.prompts.PROMPT_VERSION`, ``max_tokens``,
``temperature`` and the full message list, plus a knowledge-base version stamp (bumped whenever an
entry is saved or deleted). When any part of the prompt came from one user's own record (profile
facts, conversation history, a logged-in user's page title), the key also carries that user (or,
for anonymous visitors, their chat session), so nobody ever receives an answer built from someone
else's data. Only complete, non-degraded AI answers are stored. Redis (``REDIS_URL``) is used
when configured, an in-process TTL LRU otherwise; a Redis failure bypasses the cache.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db.models.signals import post_delete, post_save

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


def make_key(prompt: ChatPrompt, model: str, scope: str, kb_version: str) -> str:
    payload = json.dumps(
        {
            "model": model,
            "prompt_version": PROMPT_VERSION,
            "max_tokens": prompt.max_tokens,
            "temperature": prompt.temperature,
            "messages": prompt.messages,
            "kb": kb_version,
            "scope": scope,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return _store.KEY_PREFIX + "r:" + hashlib.sha256(payload.encode()).hexdigest()


def enabled() -> bool:
    return int(get_config()["CACHE_TTL"] or 0) > 0


async def kb_version() -> str:
    url = _store.redis_url()
    if url:
        client = _store.redis_client(url)
        if client is not None:
            try:
                return str(await client.get(KB_VERSION_KEY) or "0")
            except Exception as exc:
                _store.redis_failed(url, exc, "ai_cache_redis_failed")
    return str(_store.local.get(KB_VERSION_KEY) or 0)


async def get(key: str) -> dict[str, Any] | None:
    """The cached answer ``{"text", "model"}`` for ``key``, or None."""
    if not enabled():
        return None
    url = _store.redis_url()
    raw: Any = None
    if url:
        client = _store.redis_client(url)
        if client is None:
            return None
        try:
            raw = await client.get(key)
        except Exception as exc:
            _store.redis_failed(url, exc, "ai_cache_redis_failed")
            return None
    else:
        raw = _store.local.get(key)
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) and value.get("text") else None


async def put(key: str, text: str, model: str) -> None:
    ttl = int(get_config()["CACHE_TTL"] or 0)
    if ttl <= 0 or not text:
        return
    raw = json.dumps({"text": text, "model": model}, ensure_ascii=False)
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


def bump_kb_version(sender: Any = None, **kwargs: Any) -> None:
    """Invalidate every cached answer (a knowledge base entry changed). Sync: signal handler."""
    _store.local.incr(KB_VERSION_KEY, 1, 0)
    url = _store.redis_url()
    if not url:
        return
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1.0)
    try:
        client.incr(KB_VERSION_KEY)
    except Exception as exc:
        # Answers then live until their TTL; the knowledge they quote is in the key anyway.
        logger.warning("ai_cache_kb_bump_failed", error=type(exc).__name__)
    finally:
        client.close()


def connect_signals() -> None:
    # A lazy sender reference: importing this module never needs the app registry.
    entry = "sophie_chat.KnowledgeBaseEntry"
    post_save.connect(bump_kb_version, sender=entry, dispatch_uid="sophie_ai_kbv_s")
    post_delete.connect(bump_kb_version, sender=entry, dispatch_uid="sophie_ai_kbv_d")


connect_signals()
