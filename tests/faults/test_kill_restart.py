"""Suite 1: the server process is killed (SIGKILL) mid-reply and restarted, 20 times.

Two visitors chat through clients that behave like the widget (outbox of client ids, reconnect,
``resume``, resend). The kills land at random points of a turn: before the message is stored,
between storing and acknowledging it, while the answer streams, after it is done. Afterwards every
message the clients sent is stored exactly once, every answer is complete or marked incomplete
(a placeholder left by a dead worker turns incomplete once it is older than 2 x
``OPENAI_TIMEOUT``), and each client's transcript, by seq, equals the database.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest

from tests.faults import harness
from tests.faults.client import ChatClient

KILLS = 20
ANSWER = " ".join(f"trecho{i}" for i in range(24))  # about 0.6 s at 40 pieces/s
OPENAI_TIMEOUT = 2.0  # placeholders of dead workers become incomplete after 4 s


PHASES = ("before store", "after ack", "mid-stream", "after done")


async def _reach(client: ChatClient, phase: str, rng: random.Random) -> None:
    """Wait until the client's last message reaches ``phase`` (give up after a while)."""
    msg_id = next(reversed(client.sent))
    acked = lambda: msg_id in client.acks  # noqa: E731

    def reply() -> dict[str, Any]:
        return client.transcript.get(client.acks[msg_id][0] + 1, {}) if acked() else {}

    if phase == "before store":
        await asyncio.sleep(rng.uniform(0.0, 0.03))
    elif phase == "after ack":
        await client.wait_for(acked, 10)
    elif phase == "mid-stream":
        await client.wait_for(lambda: bool(reply().get("text")), 10)
        await asyncio.sleep(rng.uniform(0.0, 0.3))
    else:
        await client.wait_for(lambda: reply().get("status", "streaming") != "streaming", 10)


@pytest.mark.slow  # about 30 to 60 s
@pytest.mark.timeout(240)
async def test_kill_mid_reply_twenty_times(
    start_warm_servers: Any, fake_openai: Any, faults_db: tuple[str, str]
) -> None:
    report = harness.figures("kill -9 and restart")
    rng = random.Random(20261125)
    fake_openai.configure(content=ANSWER, tokens_per_second=40, ttft=0.05)
    server = start_warm_servers(OPENAI_TIMEOUT=OPENAI_TIMEOUT, OPENAI_FIRST_TOKEN_TIMEOUT=1.0)
    clients = [ChatClient(server.port, server.new_visitor(), f"visitor{i}") for i in range(2)]
    for client in clients:
        await client.start()
    restarts: list[float] = []
    phases: dict[str, int] = {}
    try:
        for kill in range(KILLS):
            for client in clients:
                assert await client.wait_for(lambda c=client: c.connected, 20), client.name
                await client.send(f"mensagem {kill} de {client.name}")
            phase = rng.choice(PHASES)
            phases[phase] = phases.get(phase, 0) + 1
            await _reach(clients[0], phase, rng)
            server.kill()
            started = time.monotonic()
            await asyncio.to_thread(server.start)
            restarts.append(time.monotonic() - started)
            report.faults += 1
            for client in clients:
                assert await client.wait_for(lambda c=client: not c.outbox, 20), client.name
        # The last turns finish; dead workers' placeholders turn incomplete once stale, which a
        # client sees when it asks again (the widget asks every 15 s).
        deadline = time.monotonic() + 6 * OPENAI_TIMEOUT
        for client in clients:
            while not client.settled() and time.monotonic() < deadline:
                await client.catch_up()
                await client.wait_for(client.settled, 1.0)
            assert client.settled(), {s: m for s, m in client.transcript.items()}
        for client in clients:
            lost, duplicated = harness.check_transcript(faults_db[1], client)
            report.messages += len(client.sent)
            report.lost += lost
            report.duplicated += duplicated
        incomplete = sum(
            1
            for client in clients
            for m in client.transcript.values()
            if m["sender"] == "assistant" and m["status"] == "incomplete"
        )
        report.notes.append(
            f"answers cut by a kill {incomplete}, restart "
            f"{min(restarts):.1f}-{max(restarts):.1f} s, reconnects "
            f"{sum(c.connects for c in clients)}, kills by phase {phases}"
        )
        assert report.lost == 0
        assert report.duplicated == 0
        assert incomplete >= 1  # the kills did land mid-reply
    finally:
        for client in clients:
            await client.close()
