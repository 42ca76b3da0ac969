"""Browser test fixtures: the chat server and the loopback OpenAI server as real subprocesses
(easy to kill and restart mid-reply), and one Chromium per test module."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(url: str, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
            if response.status < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


class Process:
    """A subprocess on a fixed loopback port that tests may kill and start again."""

    def __init__(self, args: list[str], port: int, env: dict[str, str], probe: str) -> None:
        self.args, self.port, self.env, self.probe = args, port, env, probe
        self.proc: subprocess.Popen[bytes] | None = None
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.log = (SCREENSHOTS.parent / f"server-{port}.log").open("ab")

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.args, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        wait_until_serving(f"http://127.0.0.1:{self.port}{self.probe}", self.proc)

    def kill(self) -> None:
        """Die like a crashed worker: no graceful shutdown, sockets just drop."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


class ServerLog:
    """What a server subprocess wrote (stdout and stderr) since :meth:`mark`."""

    def __init__(self, server: Any) -> None:
        # Any server with a ``log`` file: Process here, FaultServer in tests/faults/harness.py.
        self.path = Path(server.log.name)
        self.offset = 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size

    def text(self) -> str:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            return f.read().decode("utf-8", "replace")


class OpenAIProcess(Process):
    def configure(self, **behaviour: Any) -> None:
        self._post("/_reset", {})
        self._post("/_control", behaviour)

    def _post(self, path: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=json.dumps(body).encode(), method="POST"
        )
        urllib.request.urlopen(request, timeout=5).close()


class ChatServer(Process):
    """uvicorn serving the test project (plus static files) on a private SQLite file."""

    def __init__(
        self, port: int, env: dict[str, str], db: Path, probe: str = "/widget-test/"
    ) -> None:
        args = [
            sys.executable,
            "-m",
            "uvicorn",
            "tests.widget.asgi:application",
            "--host=127.0.0.1",
            f"--port={port}",
            "--ws-per-message-deflate=false",
            "--timeout-graceful-shutdown=1",
            "--log-level=warning",
        ]
        super().__init__(args, port, env, probe)
        self.db = db

    def url(self, path: str = "/widget-test/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read (or age) the server's database directly: what was really stored."""
        with contextlib.closing(sqlite3.connect(self.db, timeout=10)) as db:
            rows = db.execute(sql, params).fetchall()
            db.commit()
            return rows


@pytest.fixture(scope="session")
def openai_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenAIProcess]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [sys.executable, "-m", "tests.openai_server", f"--port={port}", "--content=@echo"]
    server = OpenAIProcess(args, port, dict(os.environ), "/_requests")
    server.start()
    yield server
    server.stop()


def server_env(
    db: Path, settings: str, chat_config: dict[str, Any] | None = None
) -> dict[str, str]:
    env = {
        **os.environ,
        # As pytest's pythonpath: the test settings also install the example marketplace app.
        "PYTHONPATH": os.pathsep.join(
            str(p) for p in (ROOT, ROOT / "src", ROOT / "example_project")
        ),
        "DJANGO_SETTINGS_MODULE": settings,
        "SOPHIE_WIDGET_DB": str(db),
        "SOPHIE_WIDGET_CHAT_CONFIG": json.dumps(chat_config or {}),
    }
    for name in ("DATABASE_URL", "REDIS_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        env.pop(name, None)
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "-m", "django", *args], cwd=ROOT, env=env, check=True)


@pytest.fixture(scope="session")
def chat_server(
    tmp_path_factory: pytest.TempPathFactory,
    openai_process: OpenAIProcess,
    example_database: tuple[Path, dict[str, str], subprocess.Popen[bytes]],
) -> Iterator[ChatServer]:
    """The test project, answering through the loopback OpenAI server (slow, visible streams).

    It asks for the example's database only to start building it early, alongside these tests.
    """
    db = tmp_path_factory.mktemp("widget") / "server.sqlite3"
    config = {
        "AI_BACKEND": "sophie_chat.ai.openai.OpenAIBackend",
        "OPENAI_API_KEY": "sk-test-not-a-key",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{openai_process.port}/v1",
        "OPENAI_TIMEOUT": 8.0,
        "RATE_LIMIT": "1000/m",
        "CACHE_TTL": 0,
        "SUPPORT_CONTACT": {
            "email": "suporte@example.com",
            "phone": "+55 11 4000-1234",
            "whatsapp": "+55 11 99876-5432",
            "hours": "Seg a sex, 8h às 18h",
        },
    }
    env = server_env(db, "tests.widget.server_settings", config)
    manage(env, "migrate", "--noinput", "-v0")
    server = ChatServer(free_port(), env, db)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def example_database(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, dict[str, str], subprocess.Popen[bytes]]]:
    """Migrate and load the marketplace's demo data in the background (about 20 s)."""
    db = tmp_path_factory.mktemp("example") / "server.sqlite3"
    env = server_env(db, "tests.widget.example_settings")
    django = f"{shlex.quote(sys.executable)} -m django"
    prep = subprocess.Popen(
        f"{django} migrate --noinput -v0 && {django} load_demo",
        shell=True,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    yield db, env, prep
    if prep.poll() is None:
        prep.kill()


@pytest.fixture(scope="session")
def example_server(
    example_database: tuple[Path, dict[str, str], subprocess.Popen[bytes]],
) -> Iterator[ChatServer]:
    """The example marketplace with its demo data, answering offline from its knowledge base."""
    db, env, prep = example_database
    assert prep.wait(120) == 0, "migrate or load_demo failed"
    server = ChatServer(free_port(), env, db, probe="/")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, chat_server: ChatServer, openai_process: OpenAIProcess) -> Iterator[Any]:
    """A fresh visitor (new cookies and storage) on a desktop viewport, speaking pt-BR."""
    openai_process.configure(content="@echo", tokens_per_second=40, ttft=0.3)
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, locale="pt-BR", timezone_id="America/Sao_Paulo"
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, errors


def shot(page: Any, name: str) -> Path:
    """Save a screenshot under artifacts/screenshots/ (gitignored; docs copy two of them)."""
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
