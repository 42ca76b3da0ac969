"""Abuse and cost: rate limits across sockets and worker processes, the daily token budget, and
the caps on every model call (max_tokens, MAX_PROMPT_CHARS).

The rate-limit test starts two uvicorn processes sharing a PostgreSQL database of its own and
Redis (the multiproc helpers of tests/multiproc/); it fails, not skips, without them.
"""

# ruff: noqa: F811 - fixtures imported from tests/multiproc are parameters here
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from channels.db import database_sync_to_async
from websockets.asyncio.client import connect

from sophie_chat.models import ChatMessage, ChatSession
from tests.multiproc.test_two_processes import REDIS, _env, _wait_for_port, database  # noqa: F401
from tests.security.conftest import CANARY, SUBPROTOCOL, assert_no_canary
from tests.widget.conftest import ROOT, free_port

SETUP = """
import random, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0, interactive=False)
from django.contrib.auth import get_user_model, SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
# A random id: the limiter's Redis keys are per user id, and Redis is shared by every run.
user = get_user_model().objects.create_user(
    "burst", password="pw", id=random.randrange(10**8, 10**9)
)
store = SessionStore()
store[SESSION_KEY] = str(user.pk)
store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
store[HASH_SESSION_KEY] = user.get_session_auth_hash()
store.create()
print(user.pk, store.session_key)
"""


@pytest.fixture
def workers(database: str, tmp_path: Path) -> Iterator[tuple[list[int], str, str, Path]]:
    """Two uvicorn workers on one PostgreSQL database and Redis; yields ports, user, cookie, log."""
    env = _env(database)
    env["DJANGO_SETTINGS_MODULE"] = "tests.security.pg_settings"
    env["SOPHIE_SECURITY_CHAT_CONFIG"] = json.dumps(
        {"RATE_LIMIT": "10/m", "REDIS_URL": REDIS, "OPENAI_API_KEY": CANARY}
    )
    run = {"cwd": ROOT, "env": env, "check": True, "capture_output": True, "timeout": 120}
    out = subprocess.run([sys.executable, "-c", SETUP], **run).stdout.decode()  # type: ignore[call-overload]
    user_id, cookie = out.split()
    redis.Redis.from_url(REDIS).delete(f"sophie:rl:u:{user_id}")
    log = tmp_path / "workers.log"
    ports = [free_port(), free_port()]
    with log.open("wb") as sink:
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "tests.asgi:application",
                    "--host=127.0.0.1",
                    f"--port={port}",
                    "--log-level=warning",
                    "--ws-per-message-deflate=false",
                    "--timeout-graceful-shutdown=2",
                ],
                cwd=ROOT,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
            for port in ports
        ]
        try:
            for port, proc in zip(ports, procs, strict=True):
                _wait_for_port(port, proc)
            yield ports, user_id, cookie, log
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            redis.Redis.from_url(REDIS).delete(f"sophie:rl:u:{user_id}")


async def _socket(port: int, cookie: str) -> Any:
    ws = await connect(
        f"ws://127.0.0.1:{port}/ws/sophie-chat/",
        origin=f"http://127.0.0.1:{port}",  # type: ignore[arg-type]
        subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
        additional_headers={"Cookie": f"sessionid={cookie}"},
        compression=None,
        proxy=None,
    )
    assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "session"
    return ws


async def test_rate_limit_holds_across_sockets_and_two_workers(
    workers: tuple[list[int], str, str, Path], database: str
) -> None:
    ports, user_id, cookie, log = workers
    sockets = [await _socket(port, cookie) for port in (ports[0], ports[1], ports[0])]
    sent: list[tuple[Any, str]] = []
    try:
        for _ in range(5):  # a burst of 15, round-robin over the three sockets
            for ws in sockets:
                msg_id = str(uuid.uuid4())
                await ws.send(json.dumps({"type": "message", "id": msg_id, "text": "rápido"}))
                sent.append((ws, msg_id))
        outcome: dict[str, str] = {}
        ids = {msg_id for _ws, msg_id in sent}
        for ws, msg_id in sent:
            while msg_id not in outcome:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 15))
                if frame.get("id") in ids and frame["type"] in ("ack", "error"):
                    outcome[frame["id"]] = (
                        frame["type"] if frame["type"] == "ack" else frame["code"]
                    )
    finally:
        for ws in sockets:
            await ws.close()
    counts = {kind: list(outcome.values()).count(kind) for kind in set(outcome.values())}
    with psycopg.connect(database) as conn:
        stored = conn.execute(
            "SELECT COUNT(*) FROM sophie_chat_chatmessage m JOIN sophie_chat_chatsession s"
            " ON m.session_id = s.id WHERE s.user_id = %s AND m.sender = 'user'",
            (int(user_id),),
        ).fetchone()
    text = log.read_text()
    print(f"\nrate limit: 15 sent over 3 sockets on 2 workers: {counts}, stored {stored[0]}")
    assert counts == {"ack": 10, "rate_limited": 5}
    assert stored is not None
    assert stored[0] == 10
    assert "Traceback" not in text, text[-3000:]
    assert_no_canary(text)


# --- cost: budget and caps, in process against the loopback OpenAI server --------------------


@pytest.mark.django_db(transaction=True)
async def test_daily_token_budget_stops_model_calls(
    chat: Any, openai_server: Any, settings: Any, user_factory: Any
) -> None:
    settings.CHAT_CONFIG = {
        **settings.CHAT_CONFIG,
        "OPENAI_API_KEY": CANARY,
        "DAILY_TOKEN_BUDGET": 400,
        "CACHE_TTL": 0,
        "RATE_LIMIT": "1000/m",
    }
    openai_server.configure(content="Resposta do modelo com algumas palavras. " * 4)
    user = await database_sync_to_async(user_factory)()
    socket = await chat(user=user)
    sources, calls = [], []
    for i in range(8):
        _ack, done = await socket.turn(f"Pergunta número {i} sobre pagamento", timeout=10)
        sources.append(done["source"])
        calls.append(openai_server.completion_requests)
    # Once spent, no more model calls: answers come from the knowledge base instead.
    first_blocked = sources.index("fallback")
    assert first_blocked >= 1, sources
    assert all(s == "ai" for s in sources[:first_blocked]), sources
    assert all(s != "ai" for s in sources[first_blocked:]), sources
    assert calls[first_blocked:] == [calls[first_blocked - 1]] * (8 - first_blocked), calls
    # Another user still has a budget of their own.
    other = await chat(user=await database_sync_to_async(user_factory)())
    _ack, done = await other.turn("Outra pessoa pergunta", timeout=10)
    assert done["source"] == "ai"
    print(
        f"\nbudget: model calls per turn {calls}, sources {sources};"
        f" calls stop after turn {first_blocked}"
    )


@pytest.mark.django_db(transaction=True)
async def test_every_model_call_is_capped(
    chat: Any, openai_server: Any, settings: Any, user_factory: Any
) -> None:
    cap_chars, cap_tokens = 6000, 123
    settings.CHAT_CONFIG = {
        **settings.CHAT_CONFIG,
        "OPENAI_API_KEY": CANARY,
        "MAX_PROMPT_CHARS": cap_chars,
        "MAX_TOKENS": cap_tokens,
        "HISTORY_MESSAGES_FOR_MODEL": 50,
        "CACHE_TTL": 0,
        "RATE_LIMIT": "1000/m",
        "OPENAI_MAX_RETRIES": 1,
    }
    user = await database_sync_to_async(user_factory)()

    def huge_history() -> None:
        session = ChatSession.objects.create(user=user, user_type="client")
        ChatMessage.objects.bulk_create(
            ChatMessage(
                session=session,
                seq=seq,
                sender="user" if seq % 2 else "assistant",
                content=f"{seq} " + "histórico longo " * 120,
            )
            for seq in range(1, 121)
        )
        session.last_seq = 120
        session.save(update_fields=["last_seq"])

    await database_sync_to_async(huge_history)()
    socket = await chat(user=user)
    openai_server.configure(statuses=[500])  # the first call fails and is retried: both capped
    longest = "x" * 1999 + "?"
    for text in (longest, "curta", longest):
        await socket.turn(text, timeout=10)
    requests = openai_server.requests
    assert len(requests) >= 4
    sizes = [sum(len(m["content"]) for m in body["messages"]) for body in requests]
    for body, size in zip(requests, sizes, strict=True):
        assert body.get("max_tokens", body.get("max_completion_tokens")) == cap_tokens
        assert size <= cap_chars
        assert CANARY not in json.dumps(body)
    # The cap bit: with the whole history the prompt would have been far larger.
    assert max(sizes) > cap_chars // 2
    print(
        f"\ncaps: {len(requests)} model calls, max_tokens {cap_tokens} on each,"
        f" prompt chars {sizes} <= {cap_chars}"
    )
