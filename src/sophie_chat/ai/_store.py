"""Small key-value plumbing shared by the response cache and the token budget.

With ``REDIS_URL`` it uses ``redis.asyncio`` (one client per event loop and URL); without it, an
in-process TTL LRU. When Redis fails, callers get ``None`` and carry on without it: a short
circuit breaker stops every turn from paying a connect timeout while Redis is down.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections import OrderedDict
from typing import Any

from sophie_chat.conf import get_config
from sophie_chat.logging import get_logger

logger = get_logger(__name__)

KEY_PREFIX = "sophie:ai:"
BREAKER_SECONDS = 5.0  # how long Redis is left alone after a failure
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]] = (
    weakref.WeakKeyDictionary()
)
_down_until: dict[str, float] = {}


def redis_url() -> str | None:
    return get_config()["REDIS_URL"] or None


def redis_client(url: str) -> Any | None:
    """The ``redis.asyncio`` client of this loop for ``url``, or None while the breaker is open."""
    if _down_until.get(url, 0.0) > time.monotonic():
        return None
    import redis.asyncio as aioredis

    loop = asyncio.get_running_loop()
    per_loop = _clients.get(loop)
    if per_loop is None:
        per_loop = _clients[loop] = {}
    client = per_loop.get(url)
    if client is None:
        client = aioredis.Redis.from_url(
            url, socket_connect_timeout=0.5, socket_timeout=1.0, decode_responses=True
        )
        per_loop[url] = client
    return client


def redis_failed(url: str, exc: BaseException, event: str) -> None:
    _down_until[url] = time.monotonic() + BREAKER_SECONDS
    logger.warning(event, error=type(exc).__name__)


class LocalStore:
    """A thread-safe in-process TTL LRU of string values and integer counters."""

    def __init__(self, max_items: int = 2048) -> None:
        self.max_items = max_items
        self._data: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            expires, value = item
            if expires and expires < time.monotonic():
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return value

    def set(self, key: str, value: Any, ttl: float) -> None:
        with self._lock:
            self._data[key] = (time.monotonic() + ttl if ttl else 0.0, value)
            self._data.move_to_end(key)
            while len(self._data) > self.max_items:
                self._data.popitem(last=False)

    def incr(self, key: str, amount: int, ttl: float) -> int:
        with self._lock:
            item = self._data.get(key)
            now = time.monotonic()
            if item is None or (item[0] and item[0] < now):
                item = (now + ttl if ttl else 0.0, 0)
            value = int(item[1]) + amount
            self._data[key] = (item[0], value)
            return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


local = LocalStore()


def clear_all() -> None:
    """Forget every cached answer, counter and breaker state of this process (tests)."""
    local.clear()
    _down_until.clear()
    url = redis_url()
    if url:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
        try:
            keys = list(client.scan_iter(match=KEY_PREFIX + "*", count=500))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
