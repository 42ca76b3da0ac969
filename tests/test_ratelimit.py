"""Sliding-window-log rate limits: exact windows, Redis shared by workers, Redis down and back."""
# ruff: noqa: F811 - fixtures imported from tests/conversation/conftest.py are parameters here

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from channels.db import database_sync_to_async

from sophie_chat import ratelimit
from sophie_chat.models import ChatMessage
from sophie_chat.ratelimit import Limit, LimiterUnavailable, LocalLimiter, parse_rate
from tests.conversation.conftest import (  # noqa: F401 - fixtures
    _fresh_limits,
    chat,
    chat_config,
    fake_ai,
)

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def redis_prefix(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A key prefix of this test's own, removed afterwards."""
    prefix = f"sophie-test:{uuid.uuid4().hex[:8]}:rl:"
    monkeypatch.setattr(ratelimit, "KEY_PREFIX", prefix)
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


def test_parse_rate() -> None:
    assert parse_rate("10/m") == (10, 60)
    assert parse_rate(" 5 / s ") == (5, 1)
    assert parse_rate("100/h") == (100, 3600)
    assert parse_rate("30/5m") == (30, 300)
    for bad in ("10", "x/m", "10/w", "", "-1/m"):
        with pytest.raises(ValueError, match="invalid rate"):
            parse_rate(bad)


def test_local_window_is_exact_over_any_60_seconds() -> None:
    limiter = LocalLimiter()
    key = [Limit("u:1", 10)]
    assert all(limiter.hit(key, 60, now=0.0).allowed for _ in range(5))
    assert all(limiter.hit(key, 60, now=30.0).allowed for _ in range(5))
    refused = limiter.hit(key, 60, now=59.9)
    assert not refused.allowed
    assert refused.retry_after == 1  # the first five leave the window at t=60
    assert all(limiter.hit(key, 60, now=60.0).allowed for _ in range(5))
    assert not limiter.hit(key, 60, now=60.0).allowed
    later = limiter.hit(key, 60, now=61.0)
    assert not later.allowed
    assert later.retry_after == 29  # the t=30 entries leave at t=90


def test_a_refused_message_uses_no_quota_on_any_key() -> None:
    limiter = LocalLimiter()
    visitor, ip = Limit("v:a", 2), Limit("ip:1", 3)
    assert limiter.hit([visitor, ip], 60, now=0).allowed
    assert limiter.hit([visitor, ip], 60, now=0).allowed
    assert not limiter.hit([visitor, ip], 60, now=1).allowed  # visitor full: IP untouched
    other = Limit("v:b", 2)
    assert limiter.hit([other, ip], 60, now=2).allowed  # IP had 2 of 3
    assert not limiter.hit([other, ip], 60, now=2).allowed  # IP now full


def test_anonymous_visitors_are_limited_per_visitor_and_per_ip() -> None:
    limits = ratelimit.limits_for(user_id=None, visitor_key="abc", ip="10.0.0.1", count=10)
    assert limits == [Limit("v:abc", 10), Limit("ip:10.0.0.1", 10 * ratelimit.ANONYMOUS_IP_FACTOR)]
    assert ratelimit.limits_for(user_id=7, visitor_key="", ip="10.0.0.1", count=10) == [
        Limit("u:7", 10)
    ]


async def test_redis_limiter_is_exact_and_shared(redis_prefix: str, settings: Any) -> None:
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "REDIS_URL": REDIS_URL, "RATE_LIMIT": "10/m"}
    results = await asyncio.gather(*(ratelimit.check(user_id=1) for _ in range(15)))
    assert sum(r.allowed for r in results) == 10
    assert {r.retry_after for r in results if not r.allowed} <= set(range(55, 61))
    # The log is in Redis, not in this process: a fresh local limiter changes nothing.
    ratelimit.reset_local()
    assert not (await ratelimit.check(user_id=1)).allowed
    client = redis.Redis.from_url(REDIS_URL)
    assert client.zcard(f"{redis_prefix}u:1") == 10
    assert 0 < client.pttl(f"{redis_prefix}u:1") <= 60000
    client.close()


async def test_redis_down_fails_open_to_the_local_limiter(settings: Any) -> None:
    settings.CHAT_CONFIG = {
        **settings.CHAT_CONFIG,
        "REDIS_URL": "redis://127.0.0.1:1/0",  # nothing listens there
        "RATE_LIMIT": "3/m",
        "RATE_LIMIT_FAIL_OPEN": True,
    }
    results = [await ratelimit.check(user_id=5) for _ in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]


async def test_redis_down_fails_closed_when_configured(settings: Any) -> None:
    settings.CHAT_CONFIG = {
        **settings.CHAT_CONFIG,
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "RATE_LIMIT_FAIL_OPEN": False,
    }
    with pytest.raises(LimiterUnavailable):
        await ratelimit.check(user_id=5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_redis(port: int) -> subprocess.Popen[bytes]:
    server = shutil.which("redis-server")
    assert server, "redis-server is needed for this test"
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            redis.Redis(port=port).ping()
            return proc
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("redis-server did not start")


async def test_reconnects_when_redis_comes_back(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ratelimit, "REDIS_RETRY_AFTER", 0.1)
    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0"
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "REDIS_URL": url, "RATE_LIMIT_FAIL_OPEN": False}
    proc = _start_redis(port)
    try:
        assert (await ratelimit.check(user_id=9)).allowed
        proc.terminate()
        proc.wait(5)
        with pytest.raises(LimiterUnavailable):
            await ratelimit.check(user_id=9)
        proc = _start_redis(port)
        await asyncio.sleep(0.15)
        assert (await ratelimit.check(user_id=9)).allowed
        assert redis.Redis(port=port).zcard(f"{ratelimit.KEY_PREFIX}u:9") == 1
    finally:
        proc.kill()
        proc.wait(5)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("backend", ["local", "redis"])
async def test_burst_of_15_from_three_sockets_accepts_exactly_10(
    backend: str,
    chat: Any,
    chat_config: Any,
    fake_ai: Any,
    user_factory: Any,
    redis_prefix: str,
) -> None:
    chat_config(RATE_LIMIT="10/m", REDIS_URL=REDIS_URL if backend == "redis" else "")
    user = await database_sync_to_async(user_factory)()
    sockets = [await chat(user=user) for _ in range(3)]
    sent: dict[Any, list[str]] = {s: [] for s in sockets}
    for _ in range(5):
        for s in sockets:
            sent[s].append(await s.message("rápido"))
    acked, limited = 0, 0
    for s in sockets:
        for id in sent[s]:
            while True:
                frame = await s.recv()
                if frame.get("id") == id and frame["type"] in ("ack", "error"):
                    break
            if frame["type"] == "ack":
                acked += 1
                last_acked = id
            else:
                assert frame["code"] == "rate_limited"
                assert 1 <= frame["retry_after"] <= 60
                limited += 1
    assert (acked, limited) == (10, 5)
    stored = await database_sync_to_async(
        lambda: ChatMessage.objects.filter(sender="user").count()
    )()
    assert stored == 10  # refused messages are not stored
    # A resend of a stored message while limited (a reconnecting widget's outbox) is acked.
    fresh = await chat(user=user)
    await fresh.message("rápido", id=last_acked)
    assert (await fresh.until("ack", id=last_acked))["type"] == "ack"
