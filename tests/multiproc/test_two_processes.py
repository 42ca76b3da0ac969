"""Two tabs of one session on two separate server processes both see every delta.

Two uvicorn processes serve ``tests.multiproc.slow_asgi`` on loopback ports, sharing a
PostgreSQL database of this test's own (created, migrated and dropped here) and the Redis channel
layer. Each tab is a ``websockets`` client with the same Django session cookie. Needs PostgreSQL
and Redis on 127.0.0.1 (it fails, not skips, without them).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[2]
PG = os.environ.get("MULTIPROC_PG", "postgresql://postgres@127.0.0.1:5432")
REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

SETUP = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0, interactive=False)
from django.contrib.auth import get_user_model, SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
user = get_user_model().objects.create_user("tabs", password="pw")
store = SessionStore()
store[SESSION_KEY] = str(user.pk)
store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
store[HASH_SESSION_KEY] = user.get_session_auth_hash()
store.create()
print(store.session_key)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def database() -> Iterator[str]:
    name = f"sophie_multiproc_{os.getpid()}"
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
        # A throwaway database: no need to wait for fsync on every migration.
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    try:
        yield f"{PG}/{name}"
    finally:
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SQLITE_TEST_NAME",)}
    env.update(
        DATABASE_URL=database_url,
        TEST_CHANNEL_LAYER="redis",
        TEST_REDIS_URL=REDIS,
        DJANGO_SETTINGS_MODULE="tests.settings",
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "src"), str(ROOT / "example_project")]),
    )
    return env


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "exited"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"server on {port} did not start")


@pytest.fixture
def servers(database: str) -> Iterator[tuple[list[int], str]]:
    env = _env(database)
    run = {"cwd": ROOT, "env": env, "check": True, "capture_output": True, "timeout": 120}
    key = subprocess.run([sys.executable, "-c", SETUP], **run).stdout.decode().strip()  # type: ignore[call-overload]
    ports = [_free_port(), _free_port()]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "tests.multiproc.slow_asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--ws-per-message-deflate",
                "false",
                "--timeout-graceful-shutdown",
                "2",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for port in ports
    ]
    try:
        for port, proc in zip(ports, procs, strict=True):
            _wait_for_port(port, proc)
        yield ports, key
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


class Tab:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    async def until(self, kind: str, timeout: float = 15, **match: Any) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), max(0.01, remaining)))
            self.frames.append(frame)
            if frame["type"] == kind and all(frame.get(k) == v for k, v in match.items()):
                return frame

    def stream(self, seq: int) -> list[tuple[int, str]]:
        return [
            (f["index"], f["text"])
            for f in self.frames
            if f["type"] == "assistant.delta" and f["seq"] == seq
        ]


async def _open(port: int, key: str) -> Tab:
    ws = await connect(
        f"ws://127.0.0.1:{port}/ws/sophie-chat/",
        origin=f"http://127.0.0.1:{port}",  # type: ignore[arg-type]
        subprotocols=["sophie-chat.v1"],  # type: ignore[list-item]
        additional_headers={"Cookie": f"sessionid={key}"},
        compression=None,
        proxy=None,
    )
    tab = Tab(ws)
    await tab.until("session")
    return tab


@pytest.mark.slow  # 15 to 45 s on a shared 2-core machine: mostly migrations and server start
async def test_two_tabs_on_two_processes_see_every_delta(servers: tuple[list[int], str]) -> None:
    ports, key = servers
    import uuid

    tab1, tab2 = await _open(ports[0], key), await _open(ports[1], key)
    try:
        # No session before the first message; the one it creates is followed by the tab on
        # the other process (the owner's group, over Redis).
        assert tab1.frames[0]["session_id"] is tab2.frames[0]["session_id"] is None
        first = str(uuid.uuid4())
        await tab1.ws.send(json.dumps({"type": "message", "id": first, "text": "zero"}))
        created = await tab1.until("session")
        assert (await tab1.until("ack", id=first))["seq"] == 1
        joined = await tab2.until("session", session_id=created["session_id"])
        assert joined["messages"][0]["id"] == first
        done = await tab1.until("assistant.done", seq=2)
        answer = [m for m in joined["messages"] if m["seq"] == 2]
        if not (answer and answer[0]["status"] == "complete"):  # joined while it streamed
            assert (await tab2.until("assistant.done", seq=2)) == done
        await asyncio.sleep(0.3)  # the hello/here exchange crosses Redis
        for sender, watcher, text in (
            (tab1, tab2, "um"),
            (tab2, tab1, "dois"),
            (tab1, tab2, "tres"),
        ):
            msg_id = str(uuid.uuid4())
            await sender.ws.send(json.dumps({"type": "message", "id": msg_id, "text": text}))
            ack = await sender.until("ack", id=msg_id)
            seq = ack["seq"] + 1
            done = await sender.until("assistant.done", seq=seq)
            seen = await watcher.until("assistant.done", seq=seq)
            assert seen == done
            assert done["status"] == "complete"
            assert len(sender.stream(seq)) >= 3
            assert watcher.stream(seq) == sender.stream(seq)
            assert "".join(t for _, t in watcher.stream(seq)) == done["text"]
            assert any(
                f["type"] == "user.message" and f["message"]["id"] == msg_id for f in watcher.frames
            )
    finally:
        await tab1.ws.close()
        await tab2.ws.close()
