"""The hot path's statements on PostgreSQL, run on the event loop with psycopg's async driver.

A chat turn makes two writes that are already single raw SQL statements: storing the user's
message (with the answer's placeholder and the model's history) and storing the answer (with the
turn's counters). Run as database units (:mod:`sophie_chat.dbunits`), each hops to a thread and
back and takes the GIL from the event loop several times; measured here with the event loop 60 %
busy, the message's statement took 3.4 ms (p50) and 7.1 ms (p95) as a unit against 0.9 and
1.7 ms on an async connection, and a quarter of the CPU. So on PostgreSQL with psycopg 3 those
statements run here, on a few connections per event loop, while everything else (the ORM, the
site's code, SQLite and other databases) keeps running in database units.

The connections are made from ``DATABASES["default"]`` as Django would make them (name, user,
password, host, port, ``OPTIONS`` such as ``sslmode``, ``assume_role`` and
``prepare_threshold``, Django's time zone), in autocommit mode, at most ``DB_THREADS`` per event
loop. They are not Django's: no ``connection_created`` signal, no ``ATOMIC_REQUESTS``, no query
logging; the statements run here need none of it. Only Django's own PostgreSQL backend is used
this way (a backend that subclasses it, for a schema per tenant say, keeps database units).
Errors come out as Django's (``IntegrityError``, ``DatabaseError``...), so callers handle both
paths alike.

``ASYNC_DATABASE`` (``"auto"``, the default) turns this on where it can work; ``"off"`` keeps
every statement in database units.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.db import utils as db_utils

from sophie_chat.conf import get_config
from sophie_chat.logging import get_logger

logger = get_logger(__name__)

T = TypeVar("T")

try:  # psycopg 3 is what Django's PostgreSQL backend uses when it is installed
    import psycopg
    from psycopg import sql as pg_sql
except ImportError:  # pragma: no cover - psycopg2 or no PostgreSQL driver at all
    psycopg = None  # type: ignore[assignment]
    pg_sql = None  # type: ignore[assignment]


STOCK_ENGINE = "django.db.backends.postgresql"


def enabled(alias: str = DEFAULT_DB_ALIAS) -> bool:
    """Whether the hot path's statements run on the event loop (see the module's docstring)."""
    if get_config()["ASYNC_DATABASE"] == "off" or psycopg is None:
        return False
    connection = connections[alias]
    driver = getattr(getattr(connection, "Database", None), "__name__", "")
    # Django's own backend only: a subclass may set its connections up in ways these cannot
    # follow (a schema per tenant, say).
    if connection.settings_dict.get("ENGINE") != STOCK_ENGINE or driver != "psycopg":
        return False
    # Inside a transaction of the caller's thread (a test case's, a management command's),
    # rows written by another connection would not be seen: units only.
    return not connection.in_atomic_block


def connection_params(alias: str = DEFAULT_DB_ALIAS) -> dict[str, Any]:
    """psycopg ``connect()`` keyword arguments for ``alias``: Django's own, less its sync cursor
    class and its adapters (the statements run here read plain values), in autocommit."""
    params: dict[str, Any] = connections[alias].get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params["autocommit"] = True
    return params


class _Pool:
    """A few autocommit connections of one event loop; no background tasks, no threads."""

    def __init__(self, alias: str, size: int) -> None:
        self.alias = alias
        self.idle: list[Any] = []
        self.slots = asyncio.Semaphore(max(1, size))
        self.all: weakref.WeakSet[Any] = weakref.WeakSet()

    async def _connect(self) -> Any:
        django_connection = connections[self.alias]
        conn = await psycopg.AsyncConnection.connect(**connection_params(self.alias))
        try:
            # As Django sets up its own connections: its time zone (naive datetimes with
            # USE_TZ = False are read in it) and the role to assume, if any.
            timezone_name = django_connection.timezone_name
            if timezone_name and conn.info.parameter_status("TimeZone") != timezone_name.encode():
                await conn.execute("SELECT set_config('TimeZone', %s, false)", [timezone_name])
            role = (django_connection.settings_dict.get("OPTIONS") or {}).get("assume_role")
            if role:
                await conn.execute(pg_sql.SQL("SET ROLE {}").format(pg_sql.Identifier(role)))
        except BaseException:
            await _discard(conn)
            raise
        self.all.add(conn)
        return conn

    @asynccontextmanager
    async def connection(self, fresh: bool = False) -> Any:
        async with self.slots:
            conn = None
            while self.idle and not fresh:
                candidate = self.idle.pop()
                if not (candidate.closed or candidate.broken):
                    conn = candidate
                    break
            if conn is None:
                conn = await self._connect()
            try:
                yield conn
            except BaseException as exc:
                # A cancelled statement may leave the connection mid-protocol; one the server
                # refused (a resend's unique violation, say) leaves it ready for the next.
                if not isinstance(exc, psycopg.Error) or not _reusable(conn):
                    await _discard(conn)
                    raise
                self.idle.append(conn)
                raise
            if _reusable(conn):
                self.idle.append(conn)
            else:
                await _discard(conn)

    async def drop_idle(self) -> None:
        idle, self.idle = self.idle, []
        for conn in idle:
            await _discard(conn)

    async def close(self) -> None:
        await self.drop_idle()
        for conn in list(self.all):
            await _discard(conn)


def _reusable(conn: Any) -> bool:
    if conn.closed or conn.broken:
        return False
    return bool(conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE)


def _connection_lost(exc: BaseException | None, conn: Any) -> bool:
    """Whether ``exc`` says the connection is gone (not that the server refused the statement:
    a statement or lock timeout, a deadlock and the like carry an SQLSTATE and leave it usable)."""
    return getattr(exc, "sqlstate", None) is None or conn is None or bool(conn.broken)


async def _discard(conn: Any) -> None:
    try:
        await conn.close()
    except Exception:  # already broken: nothing more to release
        return


#: Callables told of every statement run here, with its text and its seconds (query counting in
#: tests and benchmarks; Django's execute_wrappers do not see these connections).
observers: list[Callable[[str, float], None]] = []


def _observe(sql: str, started: float) -> None:
    elapsed = time.perf_counter() - started
    for observer in observers:
        observer(sql, elapsed)


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Pool]] = (
    weakref.WeakKeyDictionary()
)


def _pool(alias: str) -> _Pool:
    loop = asyncio.get_running_loop()
    per_loop = _pools.get(loop)
    if per_loop is None:
        per_loop = _pools[loop] = {}
    pool = per_loop.get(alias)
    if pool is None:
        pool = per_loop[alias] = _Pool(alias, int(get_config()["DB_THREADS"]))
    return pool


async def run(
    work: Callable[[Any], Awaitable[T]],
    *,
    alias: str = DEFAULT_DB_ALIAS,
    retry: bool = False,
    on_retry: Callable[[], None] | None = None,
) -> T:
    """``await work(connection)`` on one of this loop's connections; Django's exceptions out.

    ``retry``: the work may run twice, so when the connection turns out to be gone (the server
    restarted or dropped it since it was opened) it is run once more on a new connection, and
    ``on_retry`` is told. A connection lost after the server committed, before its answer came
    back, means the work ran twice: callers whose work is refused the second time (a message's
    client id) handle it.
    """
    pool = _pool(alias)
    # Django's own mapping of the driver's exceptions to its own (the original as __cause__).
    django_errors = connections[alias].wrap_database_errors
    for attempt in (1, 2):
        used: Any = None
        try:
            with django_errors:
                async with pool.connection(fresh=attempt == 2) as conn:
                    used = conn
                    return await work(conn)
        except db_utils.OperationalError as exc:
            if not _connection_lost(exc.__cause__, used):
                raise
            await pool.drop_idle()  # its neighbours are likely dead too
            if attempt == 1 and retry:
                logger.info("async_db_reconnect", error=type(exc.__cause__).__name__)
                if on_retry is not None:
                    on_retry()
                continue
            raise
    raise AssertionError("unreachable")  # pragma: no cover


async def fetchone(
    sql: str,
    params: Sequence[Any],
    *,
    alias: str = DEFAULT_DB_ALIAS,
    retry: bool = False,
    on_retry: Callable[[], None] | None = None,
) -> tuple[Any, ...] | None:
    """One statement's first row (``None`` when it returns none)."""

    async def work(conn: Any) -> tuple[Any, ...] | None:
        started = time.perf_counter()
        try:
            cursor = await conn.execute(sql, params)
            row: tuple[Any, ...] | None = await cursor.fetchone() if cursor.description else None
        finally:
            _observe(sql, started)
        return row

    return await run(work, alias=alias, retry=retry, on_retry=on_retry)


def as_one(statements: Sequence[tuple[str, Sequence[Any]]]) -> tuple[str, list[Any]]:
    """Several data-modifying statements (without ``RETURNING``) as one: each but the last
    becomes a ``WITH`` part of the last. One round trip and one transaction: all or nothing.

    (psycopg's pipeline mode also sends several statements in one round trip, but measured
    under load it cost more CPU than the statements themselves.)
    """
    *first, (last_sql, last_params) = statements
    if not first:
        return last_sql, list(last_params)
    parts = [f"s{i} AS ({sql} RETURNING 1)" for i, (sql, _params) in enumerate(first)]
    params = [p for _sql, statement_params in first for p in statement_params]
    return f"WITH {', '.join(parts)} {last_sql}", [*params, *last_params]


async def execute(
    sql: str, params: Sequence[Any], *, alias: str = DEFAULT_DB_ALIAS, retry: bool = False
) -> None:
    """Run one statement (``retry``: as :func:`run`)."""
    await fetchone(sql, params, alias=alias, retry=retry)


async def close() -> None:
    """Close this event loop's connections (a worker's or a test's end)."""
    per_loop = _pools.pop(asyncio.get_running_loop(), {})
    for pool in per_loop.values():
        await pool.close()


def close_all_sync(*, closed_loops_only: bool = False) -> None:
    """Close loops' connections from synchronous code (a test's or the test session's end), so
    that PostgreSQL can drop a test database: a loop that is gone cannot be awaited on."""
    for loop, per_loop in list(_pools.items()):
        if closed_loops_only and not loop.is_closed():
            continue
        for pool in per_loop.values():
            for conn in list(pool.all):
                try:
                    conn.pgconn.finish()
                except Exception:  # noqa: S112 - best effort at teardown
                    continue
        del _pools[loop]


__all__ = ["as_one", "close", "close_all_sync", "enabled", "execute", "fetchone", "run"]
