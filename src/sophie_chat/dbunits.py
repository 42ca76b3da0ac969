"""Database units of work on a small pool of threads of their own.

Channels' ``database_sync_to_async`` is thread-sensitive by default: every unit of every socket
of a worker queues for ONE shared thread, which was 91-98 % busy at 100 chatting sessions and
added seconds to the first token. The chat's units are independent of each other (each opens,
uses and releases its own connection), so they run on ``DB_THREADS`` threads instead.

Django connections belong to a thread: :class:`channels.db.DatabaseSyncToAsync` calls
``close_old_connections()`` before and after each unit, so a pool thread never keeps a broken
connection or one past ``CONN_MAX_AGE``. A pool of N threads holds at most N connections per
worker; size the database (or its pool) for that.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from channels.db import DatabaseSyncToAsync

from sophie_chat.conf import get_config

_P = ParamSpec("_P")
_R = TypeVar("_R")

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def executor() -> ThreadPoolExecutor:
    """The worker's pool, created on first use with ``DB_THREADS`` threads."""
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                size = max(1, int(get_config()["DB_THREADS"]))
                _pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="sophie-db")
    return _pool


def db_unit(func: Callable[_P, _R]) -> Callable[..., Awaitable[_R]]:
    """Like ``database_sync_to_async(func)``, on the chat's own pool of threads.

    Typed like ``database_sync_to_async`` in practice (arguments unchecked): the callers pass
    values narrowed at run time (a session id set once the session is open)."""

    # Built once per pool, not per call: its constructor (functools.update_wrapper and the
    # coroutine checks) was a tenth of a connect's CPU. A new pool after shutdown() gets its own.
    built: list[tuple[ThreadPoolExecutor, DatabaseSyncToAsync]] = []

    @functools.wraps(func)
    async def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        pool = executor()
        if not built or built[0][0] is not pool:
            built[:] = [(pool, DatabaseSyncToAsync(func, thread_sensitive=False, executor=pool))]
        return await built[0][1](*args, **kwargs)

    return run


def shutdown() -> None:
    """Close the pool threads' database connections and stop the pool (it restarts on use).

    For a worker's shutdown and for test runners, which cannot drop a test database while the
    pool's threads still hold connections to it.
    """
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is None:
        return
    size = pool._max_workers
    # Every thread takes one of these tasks: none returns before all `size` run at once.
    barrier = threading.Barrier(size, timeout=10)

    def close_here() -> None:
        from django.db import connections

        connections.close_all()
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()

    for future in [pool.submit(close_here) for _ in range(size)]:
        future.result()
    pool.shutdown(wait=True)
