"""Suite 2: Redis stopped for 30 s under load, then started again.

The chat server uses a redis-server of this test's own (never the shared one) for its channel
layer, rate limits and response cache. Eight visitors keep chatting, and one visitor has two
tabs open (fan-out between tabs goes through the channel layer). While Redis is down, chats go
on in degraded mode: the local rate limiter (``RATE_LIMIT_FAIL_OPEN``), no cache, no fan-out;
every socket keeps working or gets a defined error or close code within 5 s. After Redis
returns, without restarting the server: rate limits, the cache and fan-out between tabs work
again within 10 s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.faults import harness
from tests.faults.client import ChatClient

OUTAGE = 30.0  # seconds
VISITORS = 8
DEFINED_CLOSE_CODES = {1000, 1001, 1011, 1012, 1013, 4408}


@pytest.fixture
def outage_redis() -> Iterator[harness.RedisServer]:
    server = harness.RedisServer()
    server.start()
    yield server
    server.stop()


class Load:
    """Visitors chatting in a loop: (sent at, answered at or None, outcome) per message."""

    def __init__(self, clients: list[ChatClient]) -> None:
        self.clients = clients
        self.turns: list[tuple[float, float | None, str]] = []
        self.running = True

    async def chat(self, client: ChatClient) -> None:
        n = 0
        while self.running:
            n += 1
            sent = time.monotonic()
            msg_id = await client.send(f"pergunta {n} sobre pagamento")

            def answered(msg_id: str = msg_id) -> bool:
                seqs = client.acks.get(msg_id)
                reply = client.transcript.get(seqs[0] + 1, {}) if seqs else {}
                return reply.get("status", "streaming") != "streaming"

            ok = await client.wait_for(answered, 20)
            reply = client.transcript[client.acks[msg_id][0] + 1] if ok else {}
            self.turns.append((sent, time.monotonic() if ok else None, reply.get("source", "")))
            await asyncio.sleep(0.3)


async def _fanout_works(a: ChatClient, b: ChatClient, timeout: float) -> bool:
    """Does a message sent in tab ``a`` reach tab ``b`` of the same session?"""
    msg_id = await a.send("sondagem entre abas")
    return await b.wait_for(lambda: msg_id in {m.get("id") for m in b.transcript.values()}, timeout)


async def _first_question(server: harness.FaultServer) -> None:
    """A new visitor's first question: a prompt without history, which the cache may keep."""
    client = ChatClient(server.port, await asyncio.to_thread(server.new_visitor), "probe")
    await client.start()
    try:
        await client.send("como funciona o pagamento?")
        await client.wait_for(client.settled, 3)
    finally:
        await client.close()


def _keys(url: str, pattern: str) -> int:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    try:
        return len(list(client.scan_iter(match=pattern, count=1000)))
    finally:
        client.close()


def _s(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:.1f} s"


@pytest.mark.slow  # about 45 s: a 30 s outage
@pytest.mark.timeout(150)
async def test_redis_outage_under_load(
    start_server: Any,
    fake_openai: Any,
    faults_db: tuple[str, str],
    outage_redis: harness.RedisServer,
) -> None:
    report = harness.figures("Redis down 30 s")
    fake_openai.configure(content="Resposta com cache.", tokens_per_second=100)
    server = start_server(redis_url=outage_redis.url, CACHE_TTL=600, RATE_LIMIT="1000/m")
    keys = [await asyncio.to_thread(server.new_visitor) for _ in range(VISITORS + 1)]
    clients = [ChatClient(server.port, key, f"v{i}") for i, key in enumerate(keys[:VISITORS])]
    tab_a = ChatClient(server.port, keys[-1], "tab-a")
    tab_b = ChatClient(server.port, keys[-1], "tab-b")
    for client in [*clients, tab_a, tab_b]:
        await client.start()
    load = Load(clients)
    tasks = [asyncio.ensure_future(load.chat(c)) for c in clients]
    try:
        await asyncio.sleep(0.5)  # the tabs' hello/here crosses Redis
        assert await _fanout_works(tab_a, tab_b, 5), "fan-out before the outage"
        assert _keys(outage_redis.url, "sophie:rl:*") > 0
        await asyncio.sleep(2)

        outage_redis.stop()
        down_at = time.monotonic()
        await asyncio.sleep(OUTAGE)
        during = [t for t in load.turns if down_at + 1 <= t[0] < down_at + OUTAGE - 5]
        outcomes = [
            (c.name, e["code"], round(e["at"] - down_at, 1))
            for c in [*clients, tab_a, tab_b]
            for e in c.errors
            if e["at"] >= down_at
        ]
        closes = [
            (c.name, code, round(at - down_at, 1))
            for c in [*clients, tab_a, tab_b]
            for at, code in c.closes
            if at >= down_at
        ]

        outage_redis.start()  # same port, empty: group memberships and limits are gone
        up_at = time.monotonic()
        fanout_back = cache_back = limits_back = None
        while time.monotonic() - up_at < 15 and None in (fanout_back, cache_back, limits_back):
            if limits_back is None and _keys(outage_redis.url, "sophie:rl:*"):
                limits_back = time.monotonic() - up_at
            if cache_back is None:
                await _first_question(server)  # only history-free prompts are cached
                if _keys(outage_redis.url, "sophie:ai:r:*"):
                    cache_back = time.monotonic() - up_at
            if fanout_back is None and await _fanout_works(tab_a, tab_b, 0.5):
                fanout_back = time.monotonic() - up_at
            await asyncio.sleep(0.1)
        load.running = False
        await asyncio.gather(*tasks)

        latencies = [done - sent for sent, done, _ in during if done is not None]
        slowest = max(latencies, default=float("inf"))
        unanswered = [t for t in during if t[1] is None]
        report.faults += 1
        report.notes.append(
            f"{len(during)} turns answered during the outage, slowest {slowest:.1f} s, "
            f"error frames {len(outcomes)}, closes {len(closes)}; back after Redis returned: "
            f"rate limits {_s(limits_back)}, cache {_s(cache_back)}, fan-out {_s(fanout_back)}"
        )
        for client in [*clients, tab_a, tab_b]:
            assert await client.wait_for(client.settled, 15), client.name
        for client in clients:
            lost, duplicated = harness.check_transcript(faults_db[1], client)
            report.messages += len(client.sent)
            report.lost += lost
            report.duplicated += duplicated
        assert len(during) >= VISITORS  # chats went on
        assert not unanswered
        assert slowest < 5.0
        assert all(code in DEFINED_CLOSE_CODES for _name, code, _at in closes), closes
        assert limits_back is not None
        assert limits_back < 10
        assert cache_back is not None
        assert cache_back < 10
        assert fanout_back is not None
        assert fanout_back < 10
        assert (report.lost, report.duplicated) == (0, 0)
        assert server.proc is not None
        assert server.proc.poll() is None
    finally:
        load.running = False
        for task in tasks:
            task.cancel()
        for client in [*clients, tab_a, tab_b]:
            await client.close()
