"""Suite 5: visitors who leave mid-reply and never come back.

Fifty visitors each send a message and vanish (TCP abort); half of them while the answer
streams, the other half right after pressing stop. Every answer must still end in the database
(complete, or stopped with the upstream stream closed early: the loopback OpenAI server counts
those), and the server process must be left with no extra asyncio task, running reply or
PostgreSQL connection.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sophie_chat.conf import SophieChatAppConf
from tests.faults import harness
from tests.faults.client import ChatClient

VISITORS = 50
BATCH = 10
ANSWER = " ".join(f"parte{i}" for i in range(30))  # 30 pieces at 30/s: about a second


async def _settle(server: harness.FaultServer, baseline: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state = await asyncio.to_thread(server.state)
        if (state["replies"] == 0 and state["tasks"] <= baseline) or time.monotonic() > deadline:
            return state
        await asyncio.sleep(0.2)


async def _abandon(port: int, key: str, stop: bool) -> ChatClient:
    client = ChatClient(port, key)
    await client.connect()
    await client.send("quero saber sobre pagamentos")
    assert await client.wait_for(
        lambda: any(f["type"] == "assistant.delta" for f in client.frames), 5
    )
    if stop:
        await client.stop_reply()
        # A reset connection may discard what the server has not read yet: leave once the
        # stop has taken effect.
        assert await client.wait_for(
            lambda: any(f["type"] == "assistant.done" for f in client.frames), 5
        )
    await client.drop()
    return client


async def test_abandoned_replies_are_stored_and_leave_nothing_behind(
    start_server: Any, fake_openai: Any, faults_db: tuple[str, str]
) -> None:
    report = harness.figures("abandoned replies")
    fake_openai.configure(content=ANSWER, tokens_per_second=30, ttft=0.05)
    server = start_server()
    keys = [await asyncio.to_thread(server.new_visitor) for _ in range(VISITORS)]
    # Warm up (imports, pools), then take the baseline with no socket open.
    warm = ChatClient(server.port, await asyncio.to_thread(server.new_visitor))
    await warm.connect()
    await warm.send("oi")
    assert await warm.wait_for(warm.settled, 10)
    await warm.close()
    before = await _settle(server, 10**6, 5)
    pg_before = harness.pg_connections(faults_db[0])

    clients: list[ChatClient] = []
    for start in range(0, VISITORS, BATCH):
        clients += await asyncio.gather(
            *(_abandon(server.port, keys[i], stop=i % 2 == 1) for i in range(start, start + BATCH))
        )
    after = await _settle(server, before["tasks"], 15)
    pg_after = harness.pg_connections(faults_db[0])

    statuses: dict[str, int] = {}
    for client in clients:
        rows = harness.messages(faults_db[1], str(client.session_id))
        assert [r["sender"] for r in rows] == ["user", "assistant"]
        assert rows[0]["id"] == next(iter(client.sent))
        statuses[rows[1]["status"]] = statuses.get(rows[1]["status"], 0) + 1
        if rows[1]["status"] == "complete":
            assert rows[1]["text"] == ANSWER
    report.faults += VISITORS
    report.messages += VISITORS
    report.notes.append(
        f"stored {statuses}, upstream streams closed early {fake_openai.client_closed_streams}, "
        f"server tasks {before['tasks']} -> {after['tasks']}, "
        f"PostgreSQL connections {pg_before} -> {pg_after}"
    )
    assert statuses == {"complete": VISITORS // 2, "stopped": VISITORS // 2}
    assert fake_openai.client_closed_streams == VISITORS // 2
    assert after["replies"] == 0
    assert after["tasks"] <= before["tasks"]
    assert set(pg_after) <= {"idle"}
    # The pool may keep one idle connection per database thread that ran at once (DB_THREADS,
    # default 4), never one per abandoned visitor.
    db_threads = SophieChatAppConf.DEFAULTS["DB_THREADS"]
    assert sum(pg_after.values()) <= max(sum(pg_before.values()), 2) + db_threads
    assert server.proc is not None
    assert server.proc.poll() is None
