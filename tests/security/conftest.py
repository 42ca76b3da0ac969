"""Fixtures of the security suites (docs/security.rst).

The servers are the browser tests' (tests/widget/conftest.py): uvicorn serving the test project on
a private SQLite file, and the loopback OpenAI server, both as real subprocesses on 127.0.0.1.
The in-process WebSocket fixtures are the conversation core's (tests/conversation/conftest.py).
Every OpenAI key of the run is :data:`CANARY`, a fresh fake key that must never show up in a log,
a frame, a page or an exported file.
"""

# ruff: noqa: F401, F811 - fixtures imported from other conftest modules are re-exported here
from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest

from tests.conversation.conftest import _fresh_limits, chat, chat_config, fake_ai
from tests.widget.conftest import (
    ROOT,
    ChatServer,
    OpenAIProcess,
    ServerLog,
    browser,
    free_port,
    manage,
    openai_process,
    server_env,
)

CANARY = f"sk-test-CANARY-{uuid.uuid4()}"
WS_PATH = "/ws/sophie-chat/"
SUBPROTOCOL = "sophie-chat.v1"


def assert_no_canary(*texts: str | bytes) -> None:
    """The run's API key is in none of ``texts`` (log lines, frames, pages, exports)."""
    for text in texts:
        raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        assert CANARY not in raw, "the OpenAI API key leaked"
        assert CANARY[len("sk-test-") :] not in raw, "part of the OpenAI API key leaked"


@pytest.fixture(autouse=True)
def _canary_key(settings: Any) -> None:
    """In-process tests run with the canary key too (tests that set their own config re-add it)."""
    settings.CHAT_CONFIG = {**(settings.CHAT_CONFIG or {}), "OPENAI_API_KEY": CANARY}


class Site:
    """A running chat server plus helpers a test client needs (cookies, origin, frames)."""

    def __init__(self, server: ChatServer, openai: OpenAIProcess | None) -> None:
        self.server, self.openai = server, openai
        self.log = ServerLog(server)
        self.origin = f"http://127.0.0.1:{server.port}"
        self.ws_url = f"ws://127.0.0.1:{server.port}{WS_PATH}"

    def visitor_cookie(self) -> str:
        """A fresh anonymous visitor: the widget page sets the Django session cookie."""
        with urllib.request.urlopen(self.server.url(), timeout=10) as response:
            page = response.read().decode()
            cookie = SimpleCookie()
            for header in response.headers.get_all("Set-Cookie") or []:
                cookie.load(header)
        assert_no_canary(page)
        return cookie["sessionid"].value

    def count(self, sql: str, *params: Any) -> int:
        return int(self.server.query(sql, *params)[0][0])


def start_site(
    tmp_path: Path,
    openai: OpenAIProcess | None,
    settings: str = "tests.widget.server_settings",
    **config: Any,
) -> tuple[ChatServer, dict[str, str]]:
    base: dict[str, Any] = {"RATE_LIMIT": "1000/m", "CACHE_TTL": 0, "OPENAI_API_KEY": CANARY}
    if openai is not None:
        base.update(
            AI_BACKEND="sophie_chat.ai.openai.OpenAIBackend",
            OPENAI_BASE_URL=f"http://127.0.0.1:{openai.port}/v1",
            OPENAI_TIMEOUT=8.0,
            OPENAI_MAX_RETRIES=0,
            # The default transport, named so the key-leak tests surely cover it.
            OPENAI_HTTP_CLIENT="aiohttp",
        )
    db = tmp_path / "server.sqlite3"
    env = server_env(db, settings, {**base, **config})
    manage(env, "migrate", "--noinput", "-v0")
    return ChatServer(free_port(), env, db), env


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory, openai_process: OpenAIProcess) -> Iterator[Site]:
    """The test project answering through the loopback OpenAI server, with the canary key."""
    server, _env = start_site(tmp_path_factory.mktemp("security"), openai_process)
    server.start()
    yield Site(server, openai_process)
    server.stop()
    assert_no_canary(Path(server.log.name).read_bytes())


def frames_text(frames: list[Any]) -> str:
    return "\n".join(f if isinstance(f, str) else json.dumps(f) for f in frames)
