"""Shared fixtures. Subpackages keep their own fixtures in their own conftest.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.db import connections


def recipient(name: str, address: str) -> Any:
    """An ADMINS/MANAGERS entry: Django 6 takes addresses (pairs are deprecated), 5.2 pairs."""
    import django

    return address if django.VERSION >= (6, 0) else (name, address)


@pytest.fixture(scope="session", autouse=True)
def _close_chat_db_threads(django_db_setup: None, django_db_blocker: Any) -> Any:
    """Before the test database is dropped, the chat's database threads let go of it."""
    yield
    from sophie_chat import aiodb, dbunits

    with django_db_blocker.unblock():
        dbunits.shutdown()
        # And the connection of the one thread Channels' database_sync_to_async shares.
        asyncio.run(database_sync_to_async(connections.close_all)())
    aiodb.close_all_sync()


@pytest.fixture(autouse=True)
def _close_async_db_connections() -> Any:
    """Each test's event loop dies with it: its async database connections are closed at once
    rather than whenever the garbage collector gets to them (PostgreSQL has a connection cap)."""
    yield
    from sophie_chat import aiodb

    aiodb.close_all_sync(closed_loops_only=True)


@pytest.fixture(autouse=True)
def _fresh_knowledge_snapshot() -> None:
    """Each test starts without the knowledge data this process keeps in memory.

    The test database's rollbacks remove entries without the signals that tell the in-memory
    search index and page guides to reload, so a snapshot must not outlive its test.
    """
    from sophie_chat.knowledge import index

    index.forget()


@pytest.fixture
def user_factory(db: None) -> Callable[..., Any]:
    """Make users: ``user_factory(username="ana", is_staff=True)``."""
    counter = {"n": 0}

    def make(**fields: Any) -> Any:
        counter["n"] += 1
        fields.setdefault("username", f"user{counter['n']}")
        password = fields.pop("password", "pw")
        user = get_user_model().objects.create_user(password=password, **fields)
        return user

    return make


@pytest.fixture
def chat_session_factory(db: None) -> Callable[..., Any]:
    """Make chat sessions: ``chat_session_factory(user=u, status="closed")``."""
    from sophie_chat.models import ChatSession

    def make(**fields: Any) -> ChatSession:
        return ChatSession.objects.create(**fields)

    return make


@pytest.fixture(scope="session")
def _openai_test_server() -> Any:
    from tests.openai_server import OpenAITestServer

    server = OpenAITestServer().start()
    yield server
    server.stop()


#: The SDK transports the chat can send through (``OPENAI_HTTP_CLIENT``); both must behave alike.
TRANSPORTS = ("httpx", "aiohttp")


@pytest.fixture(params=TRANSPORTS)
def sdk_transport(request: pytest.FixtureRequest, settings: Any) -> str:
    """Run the test once per SDK transport: ``CHAT_CONFIG["OPENAI_HTTP_CLIENT"]`` is set to it.

    Order with ``openai_server`` does not matter: both merge into ``CHAT_CONFIG``.
    """
    from sophie_chat.ai.transport import http_transport

    transport: str = request.param
    settings.CHAT_CONFIG = {
        **(getattr(settings, "CHAT_CONFIG", None) or {}),
        "OPENAI_HTTP_CLIENT": transport,
    }
    # openai[aiohttp] is a dependency: a missing aiohttp fails here rather than silently testing
    # httpx twice.
    assert http_transport() == transport
    return transport


@pytest.fixture
async def _close_openai_clients() -> Any:
    """Close the SDK clients of this test's event loop while it still runs.

    Its shutdown would close them too (``sophie_chat.ai.transport``); doing it here keeps
    every test's connections, and aiohttp's sessions, inside that test.
    """
    yield
    from sophie_chat.ai.transport import close_clients

    await close_clients()


@pytest.fixture
def openai_server(_openai_test_server: Any, settings: Any, _close_openai_clients: None) -> Any:
    """The loopback OpenAI-compatible server (tests/openai_server.py), reset for this test.

    ``CHAT_CONFIG`` points the OpenAI backend at it with a test key and short timeouts; the AI
    response cache and token counters start empty. Use ``.configure(ttft=..., statuses=[429],
    drop_after=3, ...)``, ``.requests`` (recorded request bodies), ``.base_url``, ``.reset()``.
    """
    from sophie_chat.ai import _store

    server = _openai_test_server
    server.reset()
    _store.clear_all()
    settings.CHAT_CONFIG = {
        **(getattr(settings, "CHAT_CONFIG", None) or {}),
        "AI_BACKEND": "sophie_chat.ai.openai.OpenAIBackend",
        "OPENAI_API_KEY": "sk-test-0000000000000000",
        "OPENAI_BASE_URL": server.base_url,
        "OPENAI_TIMEOUT": 3.0,
        "OPENAI_FIRST_TOKEN_TIMEOUT": 2.0,
    }
    yield server
    server.reset()
