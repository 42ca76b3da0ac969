"""Fixtures of the conversation-core tests: real ASGI app, real sessions, a scripted AI stand-in.

``chat`` connects a :class:`Chat` (a WebsocketCommunicator over ``tests.asgi.application``, with
Origin, Host and a Django session cookie, so the origin check and AuthMiddlewareStack run as in
production). ``fake_ai`` replaces ``sophie_chat.ai.pipeline.reply`` (our own seam, not the
OpenAI SDK) with a scripted stream whose pace each test sets.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from importlib import import_module
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sophie_chat import aiodb, dbunits, ratelimit
from sophie_chat.ai.base import Delta, Reply, Turn
from sophie_chat.dbunits import db_unit

WS_PATH = "/ws/sophie-chat/"
ORIGIN = "http://testserver"


class FakeAI:
    """A scripted ``pipeline.reply``: ``words`` pieces, ``delay`` seconds apart."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.words: list[str] | None = None
        self.source = "ai"
        self.turns: list[Turn] = []
        self.cancelled = 0
        self.fail = False
        self.degraded = False  # answers as a degraded fallback (the model failed)

    def pieces(self, turn: Turn) -> list[str]:
        words = self.words or ["Resposta", "para", *turn.text.split()]
        return [w if i == 0 else " " + w for i, w in enumerate(words)]

    async def reply(self, turn: Turn) -> AsyncIterator[Delta | Reply]:
        self.turns.append(turn)
        pieces = self.pieces(turn)
        try:
            for piece in pieces:
                if self.delay:
                    await asyncio.sleep(self.delay)
                if self.fail:
                    raise RuntimeError("pipeline bug")
                yield Delta(piece)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        yield Reply(
            text="".join(pieces),
            source="fallback" if self.degraded else self.source,  # type: ignore[arg-type]
            model="fake",
            error="server_error" if self.degraded else "",
            degraded=self.degraded,
            notice="Modo reduzido" if self.degraded else "",
            metadata={"notice": "Modo reduzido"} if self.degraded else {},
        )


@pytest.fixture
def fake_ai(monkeypatch: pytest.MonkeyPatch) -> FakeAI:
    from sophie_chat.ai import pipeline

    fake = FakeAI()
    monkeypatch.setattr(pipeline, "reply", fake.reply)
    return fake


@pytest.fixture(autouse=True)
def _fresh_limits() -> None:
    ratelimit.reset_local()


@pytest.fixture
def chat_config(settings: Any) -> Callable[..., None]:
    """``chat_config(RATE_LIMIT="100/m")``: override CHAT_CONFIG keys for this test."""

    def update(**keys: Any) -> None:
        settings.CHAT_CONFIG = {**(getattr(settings, "CHAT_CONFIG", None) or {}), **keys}

    return update


def _store() -> Any:
    return import_module(django_settings.SESSION_ENGINE).SessionStore()


def login_session_sync(user: Any) -> str:
    """A Django session in which ``user`` is logged in, as the login view would leave it."""
    store = _store()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    return str(store.session_key)


def anonymous_session_sync() -> str:
    store = _store()
    store["sophie"] = True
    store.create()
    return str(store.session_key)


login_session = database_sync_to_async(login_session_sync)
anonymous_session = database_sync_to_async(anonymous_session_sync)


class Chat:
    """One connected test socket, with helpers that speak protocol v1."""

    def __init__(self, comm: WebsocketCommunicator, connected: bool, subprotocol: Any) -> None:
        self.comm = comm
        self.connected = connected
        self.subprotocol = subprotocol
        self.session: dict[str, Any] = {}
        self.session_key = ""
        self.frames: list[dict[str, Any]] = []

    async def send(self, **frame: Any) -> None:
        await self.comm.send_to(text_data=json.dumps(frame))

    async def send_raw(self, text: str | None = None, data: bytes | None = None) -> None:
        await self.comm.send_to(text_data=text, bytes_data=data)

    async def recv(self, timeout: float = 5) -> dict[str, Any]:
        frame = json.loads(await self.comm.receive_from(timeout))
        self.frames.append(frame)
        if frame["type"] == "session":
            # The latest one: a first message creates the session, and its frame says which.
            self.session = frame
        return frame

    async def until(self, kind: str, timeout: float = 5, **match: Any) -> dict[str, Any]:
        """Read frames until one of type ``kind`` (with ``match`` fields) arrives; return it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.recv(max(0.01, deadline - loop.time()))
            if frame["type"] == kind and all(frame.get(k) == v for k, v in match.items()):
                return frame

    async def message(self, text: str, id: str | None = None, **extra: Any) -> str:
        id = id or str(uuid.uuid4())
        await self.send(type="message", id=id, text=text, **extra)
        return id

    async def turn(self, text: str, timeout: float = 5) -> tuple[dict[str, Any], dict[str, Any]]:
        """Send a message; return its ack and the answer's ``assistant.done``."""
        id = await self.message(text)
        ack = await self.until("ack", timeout, id=id)
        done = await self.until("assistant.done", timeout, seq=ack["seq"] + 1)
        return ack, done

    async def closed_with(self, timeout: float = 3) -> int | None:
        """The close code the server sent next (skipping data frames), or None."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            output = await self.comm.receive_output(max(0.01, deadline - loop.time()))
            if output["type"] == "websocket.close":
                return output.get("code")

    async def nothing(self, timeout: float = 0.2) -> bool:
        return await self.comm.receive_nothing(timeout)


@pytest.fixture
async def chat() -> AsyncIterator[Callable[..., Any]]:
    """``await chat(user=u)`` / ``await chat()`` (anonymous) -> a connected :class:`Chat`.

    Options: ``session_key`` (reuse a browser's cookie), ``origin`` (None omits the header),
    ``host``, ``subprotocols``, ``client`` (address, port), ``read_session`` (default True).
    """
    from channels.layers import channel_layers

    from tests.asgi import application

    # Each test runs in a new event loop; a channels-redis layer kept from an earlier test holds
    # asyncio locks bound to that loop's (closed) predecessor. Start from a fresh layer.
    channel_layers.backends.clear()
    opened: list[WebsocketCommunicator] = []

    async def connect(
        *,
        user: Any = None,
        session_key: str | None = None,
        origin: str | None = ORIGIN,
        host: str = "testserver",
        subprotocols: tuple[str, ...] = ("sophie-chat.v1",),
        client: tuple[str, int] = ("127.0.0.1", 50000),
        headers: tuple[tuple[bytes, bytes], ...] = (),
        cookie: bool = True,
        read_session: bool = True,
    ) -> Chat:
        if session_key is None and cookie:
            session_key = await (login_session(user) if user else anonymous_session())
        hdrs = [(b"host", host.encode())]
        if origin is not None:
            hdrs.append((b"origin", origin.encode()))
        if session_key:
            hdrs.append(
                (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={session_key}".encode())
            )
        hdrs += list(headers)
        comm = WebsocketCommunicator(
            application, WS_PATH, headers=hdrs, subprotocols=list(subprotocols)
        )
        comm.scope["client"] = list(client)
        opened.append(comm)
        connected, subprotocol = await comm.connect(timeout=5)
        result = Chat(comm, connected, subprotocol)
        result.session_key = session_key or ""
        if connected and read_session:
            result.session = await result.until("session")
        return result

    yield connect
    for comm in opened:
        with suppress(Exception):
            await comm.disconnect()
    # Answers outlive their sockets; let them finish before the test database goes away.
    await settle()


async def settle(timeout: float = 10) -> None:
    """Wait until every answer task (they outlive sockets) has finished."""
    from sophie_chat.conversation.service import _RUNNING

    if _RUNNING:
        await asyncio.wait(set(_RUNNING), timeout=timeout)


TRANSACTION_STATEMENTS = ("BEGIN", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK", "COMMIT")


def statements(queries: CaptureQueriesContext) -> list[str]:
    """The captured statements, less the transaction's own (BEGIN, SAVEPOINT, COMMIT...)."""
    return [
        q["sql"]
        for q in queries.captured_queries
        if not q["sql"].startswith(TRANSACTION_STATEMENTS)
    ]


@pytest.fixture
async def make_user(user_factory: Any) -> Any:
    return database_sync_to_async(user_factory)


@pytest.fixture
def one_db_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every database unit on one thread, where :class:`ThreadQueries` captures them."""
    monkeypatch.setattr(dbunits, "_pool", ThreadPoolExecutor(max_workers=1))


class ThreadQueries:
    """CaptureQueriesContext on the connection of the chat's database thread (the test makes the
    pool one thread, so every unit of the turn runs there), plus the statements run on the event
    loop's own connections (``async_statements``; PostgreSQL only)."""

    def __init__(self) -> None:
        self.context = CaptureQueriesContext(connection)
        self.async_statements: list[str] = []

    def _seen(self, sql: str, seconds: float) -> None:
        self.async_statements.append(sql)

    async def __aenter__(self) -> ThreadQueries:
        await db_unit(self.context.__enter__)()
        aiodb.observers.append(self._seen)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        aiodb.observers.remove(self._seen)
        await db_unit(self.context.__exit__)(None, None, None)

    def thread_statements(self) -> list[str]:
        return statements(self.context)

    def statements(self) -> list[str]:
        return [*self.thread_statements(), *self.async_statements]

    def savepoints(self) -> list[str]:
        return [q["sql"] for q in self.context.captured_queries if "SAVEPOINT" in q["sql"]]
