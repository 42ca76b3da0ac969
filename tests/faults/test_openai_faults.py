"""Suite 4: the OpenAI-compatible server fails in every way it can, end to end.

A real chat server process answers through the loopback OpenAI server, which returns 429, 500,
hangs before the first byte, drops the stream midway and sends a malformed chunk. Each turn must
end, within the configured deadline, in a fallback answer marked degraded, with the user message
stored and the failure counted in the session's analytics.
"""

from __future__ import annotations

import time
from typing import Any

from tests.faults import harness
from tests.faults.client import ChatClient

LONG = " ".join(f"palavra{i}" for i in range(40))
FAULTS: list[tuple[str, dict[str, Any], str]] = [
    ("429", {"statuses": [429]}, "rate_limited"),
    ("500", {"statuses": [500]}, "server_error"),
    ("hang before the first byte", {"hang": 6.0}, "timeout"),
    ("drop mid-stream", {"content": LONG, "drop_after": 5, "tokens_per_second": 50}, ""),
    ("malformed chunk", {"content": LONG, "malformed_after": 3}, ""),
]
TIMEOUT = 3.0  # OPENAI_TIMEOUT of the server (FIRST_TOKEN_TIMEOUT 1.5)


async def test_every_upstream_failure_ends_in_a_degraded_fallback(
    start_server: Any, fake_openai: Any, faults_db: tuple[str, str]
) -> None:
    report = harness.figures("openai faults")
    server = start_server()
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
            if error:
                assert stored[seq + 1]["meta"]["error"] == error, name
            else:
                assert stored[seq + 1]["meta"]["error"], name
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
