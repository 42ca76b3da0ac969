"""Suite 3: PostgreSQL unreachable for a few seconds.

The chat server reaches PostgreSQL through a TCP forwarder of this test (the shared server is
never stopped). While the forwarder is cut, a visitor's message must be refused with
``unavailable`` (not acknowledged), so the client keeps it in its outbox and resends it; once the
database is back the resent message is stored exactly once and answered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.faults import harness
from tests.faults.client import ChatClient
from tests.faults.proxy import TcpProxy

DOWN = 4.0  # seconds without PostgreSQL


@pytest.fixture
def pg_proxy() -> Iterator[TcpProxy]:
    proxy = TcpProxy(5432).start()
    yield proxy
    proxy.stop()


async def test_messages_sent_while_postgres_is_down_are_refused_then_stored_once(
    start_server: Any, fake_openai: Any, faults_db: tuple[str, str], pg_proxy: TcpProxy
) -> None:
    report = harness.figures("PostgreSQL down")
    fake_openai.configure(content="Resposta normal.")
    name, direct_url = faults_db
    server = start_server(database_url=f"postgresql://postgres@127.0.0.1:{pg_proxy.port}/{name}")
    client = ChatClient(server.port, await asyncio.to_thread(server.new_visitor))
    await client.start()
    try:
        await client.send("antes da queda")
        assert await client.wait_for(client.settled, 10)

        pg_proxy.cut()
        cut_at = time.monotonic()
        msg_id = await client.send("durante a queda")
        refused = lambda: any(e.get("id") == msg_id for e in client.errors)  # noqa: E731
        assert await client.wait_for(refused, 10), "no error while PostgreSQL is down"
        first_error = time.monotonic() - cut_at
        error = next(e for e in client.errors if e.get("id") == msg_id)
        assert error["code"] == "unavailable"
        assert msg_id in client.outbox  # not acknowledged: the client still holds it
        assert msg_id not in client.acks
        await asyncio.sleep(max(0.0, DOWN - (time.monotonic() - cut_at)))
        assert msg_id not in client.acks

        pg_proxy.restore()
        back_at = time.monotonic()
        assert await client.wait_for(lambda: msg_id in client.acks, 15), "not stored after"
        stored_after = time.monotonic() - back_at
        assert await client.wait_for(client.settled, 10)
        reply = client.transcript[client.acks[msg_id][0] + 1]
        assert reply["status"] == "complete"
        assert reply["text"] == "Resposta normal."

        lost, duplicated = harness.check_transcript(direct_url, client)
        rows = harness.messages(direct_url, str(client.session_id))
        assert [r["id"] for r in rows if r["sender"] == "user"].count(msg_id) == 1
        refusals = sum(1 for e in client.errors if e.get("id") == msg_id)
        report.faults += 1
        report.messages += len(client.sent)
        report.lost += lost
        report.duplicated += duplicated
        report.notes.append(
            f"first refusal {first_error:.1f} s after the cut, {refusals} refusals in "
            f"{DOWN:.0f} s, stored {stored_after:.1f} s after PostgreSQL came back"
        )
        assert (lost, duplicated) == (0, 0)
        assert server.proc is not None
        assert server.proc.poll() is None
    finally:
        await client.close()
