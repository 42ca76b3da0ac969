"""Count the SQL the benchmark server runs, by kind, for the ``/__bench__/stats`` endpoint.

A wrapper is appended to every database connection's ``execute_wrappers`` when Django opens it,
so the ORM, raw cursors and session loads are all counted, whatever thread runs them; the
statements run on the event loop (:mod:`sophie_chat.aiodb`) are counted through its observers.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from typing import Any

_lock = threading.Lock()
_counts: Counter[str] = Counter()
_seconds: Counter[str] = Counter()
_SHAPE = re.compile(r"\s+")


# Statements are parametrised, so a few hundred texts cover a run: classify each once (the
# counting runs in the measured server, and would otherwise add its own cost to every query).
@lru_cache(maxsize=1024)
def _kind(sql: str) -> str:
    # "SELECT ... FROM "sophie_chat_chatsession"" -> "SELECT sophie_chat_chatsession": enough to
    # tell which statements a turn runs without keeping whole statements.
    words = _SHAPE.sub(" ", sql.strip()).split(" ")
    verb = words[0].upper() if words else "?"
    table = ""
    for keyword in ("FROM", "INTO", "UPDATE"):
        for i, word in enumerate(words[:-1]):
            if word.upper() == keyword:
                table = words[i + 1].strip('"`')
                break
        if table:
            break
    if verb == "UPDATE" and len(words) > 1:
        table = words[1].strip('"`')
    return f"{verb} {table}".strip()


def _wrapper(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        _count(sql, time.perf_counter() - started)


def _count(sql: str, elapsed: float) -> None:
    kind = _kind(sql)
    with _lock:
        _counts[kind] += 1
        _seconds[kind] += elapsed


def _on_connection_created(sender: Any, connection: Any, **kwargs: Any) -> None:
    if _wrapper not in connection.execute_wrappers:
        connection.execute_wrappers.append(_wrapper)


def install() -> None:
    """Count from now on: hook every connection Django opens in this process (called from the
    settings; :func:`count_async` adds the chat's async statements once Django is set up)."""
    from django.db.backends.signals import connection_created

    connection_created.connect(_on_connection_created, dispatch_uid="sophie_bench_querycount")


def count_async() -> None:
    """Also count the statements the chat runs on its own async connections (sophie_chat.aiodb)."""
    from sophie_chat import aiodb

    if _count not in aiodb.observers:
        aiodb.observers.append(_count)


def snapshot() -> dict[str, int]:
    """Queries run so far, by kind; ``"total"`` is the sum."""
    with _lock:
        counts = dict(_counts)
    counts["total"] = sum(counts.values())
    return counts


def seconds() -> dict[str, float]:
    """Seconds spent executing queries so far (round trips included), by kind, and in total."""
    with _lock:
        spent = dict(_seconds)
    spent["total"] = sum(spent.values())
    return spent


_unit_seconds = [0.0, 0]  # seconds inside database_sync_to_async units, and their number


def time_db_units() -> None:
    """Also measure every ``database_sync_to_async`` unit (all of them share one thread)."""
    from channels.db import DatabaseSyncToAsync

    original = DatabaseSyncToAsync.thread_handler
    if getattr(original, "_sophie_bench", False):
        return

    def thread_handler(self: Any, loop: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(self, loop, *args, **kwargs)
        finally:
            with _lock:
                _unit_seconds[0] += time.perf_counter() - started
                _unit_seconds[1] += 1

    thread_handler._sophie_bench = True  # type: ignore[attr-defined]
    DatabaseSyncToAsync.thread_handler = thread_handler  # type: ignore[method-assign]


def units() -> dict[str, float]:
    with _lock:
        return {"seconds": _unit_seconds[0], "count": _unit_seconds[1]}
