"""Suite 4: the OpenAI-compatible server fails in every way it can, end to end.

A real chat server process answers through the loopback OpenAI server, which returns 429, 500,
hangs before the first byte, hangs up before answering, drops the stream midway, sends a malformed
chunk or an error event, and ends a stream without a finish reason. Each turn must end, within the
configured deadline, in a fallback answer marked degraded, with the user message stored and the
failure counted in the session's analytics, as the same kind on both SDK transports. The server
prints no traceback or resource error meanwhile, nor when it stops as a deployment stops it
(SIGTERM, no ASGI lifespan; uvicorn then ends the process from inside its loop, so how workers
that do shut their loop down stay quiet is tested in tests/ai/test_transport.py).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import TRANSPORTS
from tests.faults import harness
from tests.faults.client import ChatClient
from tests.widget.conftest import ServerLog

LONG = " ".join(f"palavra{i}" for i in range(40))
FAULTS: list[tuple[str, dict[str, Any], str]] = [
    ("429", {"statuses": [429]}, "rate_limited"),
    ("500", {"statuses": [500]}, "server_error"),
    ("hang before the first byte", {"hang": 6.0}, "timeout"),
    ("hang up before answering", {"disconnect": True}, "connection"),
    (
        "drop mid-stream",
        {"content": LONG, "drop_after": 5, "tokens_per_second": 50},
        "stream_dropped",
    ),
    ("malformed chunk", {"content": LONG, "malformed_after": 3}, "malformed"),
    ("error event", {"content": LONG, "error_after": 3}, "other"),
    ("no finish reason", {"content": LONG, "finish": False}, "stream_dropped"),
]
# What the server must never print.
SHUTDOWN_NOISE = ("Traceback", "Unclosed", "was destroyed", "Exception ignored")
TIMEOUT = 3.0  # OPENAI_TIMEOUT of the server (FIRST_TOKEN_TIMEOUT 1.5)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_every_upstream_failure_ends_in_a_degraded_fallback(
    start_server: Any, fake_openai: Any, faults_db: tuple[str, str], transport: str
) -> None:
    report = harness.figures(f"openai faults ({transport})")
    server = start_server(OPENAI_HTTP_CLIENT=transport)
    log = ServerLog(server)
    log.mark()
    client = ChatClient(server.port, server.new_visitor())
    await client.start()
    try:
        # A healthy turn first: the server works and answers from the model.
        fake_openai.configure(content="Tudo certo por aqui.")
        await client.send("ola")
        assert await client.wait_for(client.settled, 10)
        last = client.transcript[max(client.transcript)]
        assert (last["source"], last["text"]) == ("ai", "Tudo certo por aqui.")
        took: dict[str, float] = {}
        for name, behaviour, error in FAULTS:
            fake_openai.reset()
            fake_openai.configure(**behaviour)
            started = time.monotonic()
            msg_id = await client.send(f"como faço para pagar? ({name})")
            assert await client.wait_for(client.settled, TIMEOUT * 2), name
            took[name] = time.monotonic() - started
            seq = client.acks[msg_id][0]
            reply = client.transcript[seq + 1]
            assert reply["status"] == "complete", name
            assert reply["source"] == "fallback", name
            assert reply["degraded"], name
            assert took[name] < TIMEOUT + 1.0, (name, took[name])
            stored = {r["seq"]: r for r in harness.messages(faults_db[1], client.session_id)}
            assert stored[seq]["id"] == msg_id
            assert stored[seq]["sender"] == "user"
            assert stored[seq + 1]["meta"]["source"] == "fallback"
            assert stored[seq + 1]["meta"]["error"] == error, name
            report.faults += 1
        counts = harness.analytics(faults_db[1], client.session_id)
        assert counts["user_messages"] == 1 + len(FAULTS)
        assert counts["ai_errors"] == len(FAULTS)
        assert counts["fallback_answers"] == len(FAULTS)
        assert counts["ai_answers"] == 1
        lost, duplicated = harness.check_transcript(faults_db[1], client)
        report.messages += len(client.sent)
        report.lost += lost
        report.duplicated += duplicated
        report.notes.append(
            "fallback after " + ", ".join(f"{k} {v:.1f} s" for k, v in took.items())
        )
        assert (lost, duplicated) == (0, 0)
        assert server.proc is not None
        assert server.proc.poll() is None
    finally:
        await client.close()
    server.stop()  # SIGTERM; nobody calls close_clients()
    printed = log.text()
    assert not [noise for noise in SHUTDOWN_NOISE if noise in printed], printed[-3000:]
