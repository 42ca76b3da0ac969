"""Fixtures of the fault suites. They need PostgreSQL on 127.0.0.1:5432 and ``redis-server`` on
the PATH, and fail (never skip) without them. Every process they start is stopped at teardown;
the database (``sophie_faults_<pid>``) is dropped."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.faults import harness
from tests.widget.conftest import free_port


@pytest.fixture(scope="session")
def faults_db() -> Iterator[tuple[str, str]]:
    """(name, url) of a throwaway, migrated PostgreSQL database of this run."""
    harness.drop_orphaned_databases()
    name = f"sophie_faults_{os.getpid()}"
    url = harness.create_database(name)
    try:
        env = harness.server_env(url, "redis://127.0.0.1:1/0", {})
        subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--noinput", "-v0"],
            cwd=harness.ROOT,
            env=env,
            check=True,
            timeout=180,
        )
        yield name, url
    finally:
        harness.drop_database(name)


@pytest.fixture(scope="session")
def private_redis() -> Iterator[harness.RedisServer]:
    server = harness.RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_openai(_openai_test_server: Any) -> Iterator[Any]:
    """The loopback OpenAI-compatible server (in this process; the chat server calls it)."""
    _openai_test_server.reset()
    yield _openai_test_server
    _openai_test_server.reset()


def base_config(openai_url: str, redis_url: str) -> dict[str, Any]:
    return {
        "AI_BACKEND": "sophie_chat.ai.openai.OpenAIBackend",
        "OPENAI_API_KEY": "sk-test-faults-0000",
        "OPENAI_BASE_URL": openai_url,
        "OPENAI_TIMEOUT": 3.0,
        "OPENAI_FIRST_TOKEN_TIMEOUT": 1.5,
        "OPENAI_MAX_RETRIES": 0,
        "RATE_LIMIT": "1000/m",
        "CACHE_TTL": 0,
        "REDIS_URL": redis_url,
        "ESCALATION_FALLBACK_THRESHOLD": 0,
    }


@pytest.fixture
def start_server(
    faults_db: tuple[str, str], private_redis: harness.RedisServer, fake_openai: Any
) -> Iterator[Callable[..., harness.FaultServer]]:
    """``start_server(database_url=..., redis_url=..., **chat_config)``: a running chat server."""
    started: list[harness.FaultServer] = []

    def start(
        database_url: str | None = None, redis_url: str | None = None, **config: Any
    ) -> harness.FaultServer:
        redis_url = redis_url or private_redis.url
        chat_config = {**base_config(fake_openai.base_url, redis_url), **config}
        env = harness.server_env(database_url or faults_db[1], redis_url, chat_config)
        env["PYTHON"] = sys.executable
        server = harness.FaultServer(free_port(), env)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def start_warm_servers(
    faults_db: tuple[str, str], private_redis: harness.RedisServer, fake_openai: Any
) -> Iterator[Callable[..., harness.WarmServers]]:
    """Like ``start_server``, with a warm spare process for fast restarts after a kill."""
    started: list[harness.WarmServers] = []

    def start(**config: Any) -> harness.WarmServers:
        chat_config = {**base_config(fake_openai.base_url, private_redis.url), **config}
        env = harness.server_env(faults_db[1], private_redis.url, chat_config)
        env["PYTHON"] = sys.executable
        servers = harness.WarmServers(free_port(), env)
        started.append(servers)
        servers.start()
        return servers

    yield start
    for servers in started:
        servers.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not harness.REPORT:
        return
    terminalreporter.section("fault suites")
    for entry in harness.REPORT:
        terminalreporter.write_line(entry.line())
    total = harness.SuiteFigures(
        "total",
        faults=sum(e.faults for e in harness.REPORT),
        messages=sum(e.messages for e in harness.REPORT),
        lost=sum(e.lost for e in harness.REPORT),
        duplicated=sum(e.duplicated for e in harness.REPORT),
    )
    terminalreporter.write_line(total.line())
