"""Processes and probes of the fault suites: a private redis-server, the chat server as a real
uvicorn subprocess (``tests.faults.asgi``), direct reads of what PostgreSQL really stored, and
the figures every suite reports."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from tests.multiproc.test_two_processes import _env
from tests.widget.conftest import Process, free_port, wait_until_serving

ROOT = Path(__file__).resolve().parents[2]
PG = os.environ.get("FAULTS_PG", "postgresql://postgres@127.0.0.1:5432")
LOGS = ROOT / "artifacts"


def die_with_parent() -> None:
    """Popen ``preexec_fn`` (Linux): the child gets SIGKILL when the test process dies, so a
    run killed midway (a timeout, Ctrl-C twice) leaves no server behind."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class RedisServer:
    """A redis-server of our own on a free loopback port, so stopping it harms nobody else."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server")
        assert exe, "redis-server is not installed"
        args = [
            exe,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ]
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "redis-server exited"
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


class FaultServer(Process):
    """uvicorn serving ``tests.faults.asgi`` on PostgreSQL and the Redis channel layer."""

    def __init__(self, port: int, env: dict[str, str]) -> None:
        args = [
            env.get("PYTHON", "python"),
            "-m",
            "uvicorn",
            "tests.faults.asgi:application",
            "--host=127.0.0.1",
            f"--port={port}",
            "--ws-per-message-deflate=false",
            "--timeout-graceful-shutdown=1",
            "--log-level=warning",
            "--lifespan=off",
        ]
        LOGS.mkdir(exist_ok=True)
        super().__init__(args, port, env, "/_faults/state")

    def start(self) -> None:
        # As Process.start, with the child tied to the test process's life.
        self.proc = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        wait_until_serving(f"http://127.0.0.1:{self.port}{self.probe}", self.proc)

    def _call(self, path: str, method: str = "GET") -> dict[str, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=b"" if method == "POST" else None,
            method=method,
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(json.loads(response.read()))

    def state(self) -> dict[str, Any]:
        return self._call("/_faults/state")

    def new_visitor(self) -> str:
        return str(self._call("/_faults/visitor", "POST")["key"])


def server_env(database_url: str, redis_url: str, chat_config: dict[str, Any]) -> dict[str, str]:
    env = _env(database_url)
    env.update(
        TEST_REDIS_URL=redis_url,
        DJANGO_SETTINGS_MODULE="tests.faults.settings",
        SOPHIE_FAULTS_CHAT_CONFIG=json.dumps(chat_config),
    )
    for name in ("REDIS_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL", "SQLITE_TEST_NAME"):
        env.pop(name, None)
    return env


def create_database(name: str) -> str:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    return f"{PG}/{name}"


def drop_orphaned_databases() -> list[str]:
    """Drop ``sophie_faults_<pid>`` databases of runs whose process is gone (killed runs)."""
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE 'sophie\\_faults\\_%'"
            )
        ]
    orphans = [n for n in names if n.rsplit("_", 1)[-1].isdigit()]
    orphans = [n for n in orphans if not Path(f"/proc/{n.rsplit('_', 1)[-1]}").exists()]
    for name in orphans:
        drop_database(name)
    return orphans


def drop_database(name: str) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def messages(database_url: str, session_id: str) -> list[dict[str, Any]]:
    """What PostgreSQL really holds for a chat session, by seq."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT seq, sender, client_id, content, metadata FROM sophie_chat_chatmessage "
            "WHERE session_id = %s ORDER BY seq",
            (session_id,),
        ).fetchall()
    return [
        {
            "seq": seq,
            "sender": sender,
            "id": str(cid) if cid else None,
            "text": text,
            "status": (meta or {}).get("status", "complete"),
            "meta": meta or {},
        }
        for seq, sender, cid, text, meta in rows
    ]


def analytics(database_url: str, session_id: str) -> dict[str, Any]:
    with psycopg.connect(database_url) as conn:
        cur = conn.execute(
            "SELECT * FROM sophie_chat_chatanalytics WHERE session_id = %s", (session_id,)
        )
        row = cur.fetchone()
        names = [c.name for c in cur.description or []]
    return dict(zip(names, row, strict=True)) if row else {}


def pg_connections(dbname: str) -> dict[str, int]:
    """Connections to ``dbname`` by state (pg_stat_activity), this probe's own excluded."""
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        rows = conn.execute(
            "SELECT coalesce(state, ''), count(*) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid() GROUP BY 1",
            (dbname,),
        ).fetchall()
    return {state: count for state, count in rows}


def check_transcript(database_url: str, client: Any) -> tuple[int, int]:
    """Compare a client's transcript with the database; return (lost, duplicated) user messages.

    Every id the client sent must be stored exactly once; every user message must be followed
    by exactly one assistant message in a final state; the client's view by seq must equal the
    database's.
    """
    rows = messages(database_url, str(client.session_id))
    stored_ids = [r["id"] for r in rows if r["sender"] == "user"]
    lost = sum(1 for msg_id in client.sent if msg_id not in stored_ids)
    duplicated = len(stored_ids) - len(set(stored_ids))
    duplicated += sum(1 for seqs in client.acks.values() if len(set(seqs)) > 1)
    by_seq = {r["seq"]: r for r in rows}
    for row in rows:
        if row["sender"] == "user":
            reply = by_seq.get(row["seq"] + 1)
            assert reply is not None, row["seq"]
            assert reply["sender"] == "assistant", row["seq"]
    for row in rows:
        if row["sender"] == "assistant":
            assert row["status"] in ("complete", "incomplete", "stopped"), row
    db_view = {
        r["seq"]: (r["sender"], r["id"] if r["sender"] == "user" else None, r["text"], r["status"])
        for r in rows
    }
    assert client.view() == db_view
    return lost, duplicated


@dataclass
class SuiteFigures:
    name: str
    faults: int = 0
    messages: int = 0
    lost: int = 0
    duplicated: int = 0
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        extra = "; ".join(self.notes)
        return (
            f"{self.name}: faults {self.faults}, messages {self.messages}, lost {self.lost}, "
            f"duplicated {self.duplicated}" + (f" ({extra})" if extra else "")
        )


REPORT: list[SuiteFigures] = []


def figures(name: str) -> SuiteFigures:
    entry = SuiteFigures(name)
    REPORT.append(entry)
    return entry


class WarmServers:
    """The chat server on one port, forked from a preloaded parent (``tests.faults.standby``).

    ``kill()`` SIGKILLs the serving process; ``start()`` forks a new one and waits until it
    listens.
    """

    def __init__(self, port: int, env: dict[str, str]) -> None:
        self.port, self.env = port, env
        self.pid: int | None = None
        LOGS.mkdir(exist_ok=True)
        self.log = (LOGS / f"faults-server-{port}.log").open("ab")
        self.parent = subprocess.Popen(
            [env["PYTHON"], "-m", "tests.faults.standby", f"--port={port}"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
        )
        assert self.parent.stdout is not None
        line = self.parent.stdout.readline()
        assert line.strip() == b"ready", f"server parent did not start: {line!r}"

    def alive(self) -> bool:
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def start(self) -> None:
        assert self.parent.stdin is not None
        assert self.parent.stdout is not None
        self.parent.stdin.write(b"fork\n")
        self.parent.stdin.flush()
        self.pid = int(self.parent.stdout.readline())
        deadline = time.monotonic() + 20
        while True:
            assert self.alive(), "server exited"
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            assert time.monotonic() < deadline, "server did not listen"
            time.sleep(0.01)

    def kill(self) -> None:
        """SIGKILL the serving process and wait until it is gone."""
        if self.pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        self.pid = None

    def stop(self) -> None:
        self.kill()
        if self.parent.poll() is None:
            self.parent.terminate()
            try:
                self.parent.wait(10)
            except subprocess.TimeoutExpired:
                self.parent.kill()
                self.parent.wait(5)
        self.log.close()

    def new_visitor(self) -> str:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/_faults/visitor", data=b"", method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(json.loads(response.read())["key"])
