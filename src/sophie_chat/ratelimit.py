"""Sliding-window-log rate limiting of user messages, exact over any window.

Each accepted message is logged with its time under every key it counts against (the user, or
an anonymous visitor and their IP address). A message is accepted only if *every* key has fewer
than the limit in the last window, and then it is logged under all of them at once, so a refused
message never uses up quota. With ``REDIS_URL`` the log lives in Redis (one Lua script, atomic,
shared by every worker, timed by the Redis clock); without it, in process memory.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from sophie_chat.conf import get_config
from sophie_chat.logging import get_logger

logger = get_logger(__name__)

KEY_PREFIX = "sophie:rl:"
# An IP address may be shared by a whole office or a mobile carrier's NAT: it gets this many times
# the per-visitor limit, enough to stop one client that clears its cookies to get a new quota.
ANONYMOUS_IP_FACTOR = 3
# After Redis fails, the next attempt waits this long, so a dead Redis costs one timeout, not one
# per message.
REDIS_RETRY_AFTER = 2.0  # seconds
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")


class LimiterUnavailable(Exception):
    """Redis is down and ``RATE_LIMIT_FAIL_OPEN`` is off: the message must be refused."""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int = 0  # seconds, rounded up; 0 when allowed


def parse_rate(rate: str) -> tuple[int, int]:
    """``"10/m"`` -> ``(10, 60)``: (messages, window in seconds). ``"30/5m"`` is also accepted."""
    match = _RATE_RE.match(str(rate))
    if not match:
        raise ValueError(f"invalid rate {rate!r}: use N/s, N/m, N/h or N/d")
    count, multiplier, unit = match.groups()
    return int(count), int(multiplier or 1) * _UNITS[unit]


@dataclass(frozen=True)
class Limit:
    key: str
    count: int


class LocalLimiter:
    """The same algorithm in process memory: exact for one process, used without Redis."""

    def __init__(self) -> None:
        self._logs: dict[str, deque[float]] = {}

    def hit(self, limits: list[Limit], window: float, now: float | None = None) -> Decision:
        now = time.monotonic() if now is None else now
        retry = 0.0
        for limit in limits:
            log = self._logs.setdefault(limit.key, deque())
            while log and log[0] <= now - window:
                log.popleft()
            if len(log) >= limit.count:
                # The slot frees when the entry that keeps the count at the limit leaves the window.
                retry = max(retry, log[len(log) - limit.count] + window - now)
        if retry > 0:
            return Decision(False, max(1, math.ceil(retry)))
        for limit in limits:
            self._logs[limit.key].append(now)
        if len(self._logs) > 10000:
            self._forget_idle(now, window)
        return Decision(True)

    def _forget_idle(self, now: float, window: float) -> None:
        for key in [k for k, log in self._logs.items() if not log or log[-1] <= now - window]:
            del self._logs[key]


_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local retry = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[i + 2])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local n = redis.call('ZCARD', key)
  if n >= limit then
    local entry = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
    local wait = tonumber(entry[2]) + window - now
    if wait > retry then retry = wait end
  end
end
if retry > 0 then return {0, retry} end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('PEXPIRE', key, window)
end
return {1, 0}
"""


class RedisLimiter:
    """Sliding-window log in Redis sorted sets. One client per process, URL and event loop."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, int], tuple[asyncio.AbstractEventLoop, Any, Any]] = {}
        self._down_until: dict[str, float] = {}

    def _client(self, url: str) -> tuple[Any, Any]:
        import redis.asyncio as aioredis

        loop = asyncio.get_running_loop()
        # A redis.asyncio client is bound to the loop it first ran on (each pytest-asyncio test
        # and each daphne/uvicorn worker has its own): key the cache by loop, drop closed loops.
        for cache_key, (old_loop, _, _) in list(self._clients.items()):
            if old_loop.is_closed():
                del self._clients[cache_key]
        entry = self._clients.get((url, id(loop)))
        if entry is None or entry[0] is not loop:
            client = aioredis.Redis.from_url(
                url, socket_connect_timeout=0.5, socket_timeout=1.0, health_check_interval=30
            )
            entry = (loop, client, client.register_script(_SCRIPT))
            self._clients[(url, id(loop))] = entry
        return entry[1], entry[2]

    def _forget(self, url: str) -> None:
        # Never keep a client whose connection failed: the next attempt starts from scratch.
        loop = asyncio.get_running_loop()
        entry = self._clients.pop((url, id(loop)), None)
        if entry is not None:
            task = loop.create_task(entry[1].aclose())
            task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    def available(self, url: str) -> bool:
        return time.monotonic() >= self._down_until.get(url, 0.0)

    async def hit(self, url: str, limits: list[Limit], window: float) -> Decision:
        _, script = self._client(url)
        keys = [KEY_PREFIX + limit.key for limit in limits]
        args = [int(window * 1000), f"{time.time_ns()}-{uuid.uuid4().hex[:8]}"]
        args += [limit.count for limit in limits]
        try:
            allowed, retry_ms = await script(keys=keys, args=args)
        except Exception:
            self._down_until[url] = time.monotonic() + REDIS_RETRY_AFTER
            self._forget(url)
            raise
        self._down_until.pop(url, None)
        if allowed:
            return Decision(True)
        return Decision(False, max(1, math.ceil(int(retry_ms) / 1000)))


_local = LocalLimiter()
_redis = RedisLimiter()


def limits_for(*, user_id: Any, visitor_key: str, ip: str | None, count: int) -> list[Limit]:
    """The keys a message counts against: the user; or the anonymous visitor and their IP."""
    if user_id is not None:
        return [Limit(f"u:{user_id}", count)]
    limits = [Limit(f"v:{visitor_key}", count)]
    if ip:
        limits.append(Limit(f"ip:{ip}", count * ANONYMOUS_IP_FACTOR))
    return limits


async def check(*, user_id: Any, visitor_key: str = "", ip: str | None = None) -> Decision:
    """Count one user message against the limits; raise :class:`LimiterUnavailable` if needed."""
    config = get_config()
    count, window = parse_rate(config["RATE_LIMIT"])
    limits = limits_for(user_id=user_id, visitor_key=visitor_key, ip=ip, count=count)
    url = config["REDIS_URL"]
    if url:
        if _redis.available(url):
            try:
                return await _redis.hit(url, limits, window)
            except Exception as exc:
                logger.warning("rate_limit_redis_down", error=type(exc).__name__)
        if not config["RATE_LIMIT_FAIL_OPEN"]:
            raise LimiterUnavailable
    return _local.hit(limits, window)


def reset_local() -> None:
    """Forget the in-process log (tests)."""
    _local._logs.clear()
    _redis._down_until.clear()
