"""sophie_chat.aiodb: a turn's statements on the event loop, over psycopg's async driver.

Most of these need PostgreSQL (the pass of ``make test`` with ``DATABASE_URL``); the rules about
when the path is used run on every database.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import IntegrityError, OperationalError, ProgrammingError, connection
from django.test import override_settings

from sophie_chat import aiodb
from sophie_chat.models import ChatSession

POSTGRES = connection.vendor == "postgresql"
needs_postgres = pytest.mark.skipif(not POSTGRES, reason="the async path is PostgreSQL's")
pytestmark = pytest.mark.django_db(transaction=True)


def _config(**values: Any) -> Any:
    from django.conf import settings

    return override_settings(CHAT_CONFIG={**settings.CHAT_CONFIG, **values})


def test_used_only_on_postgresql_and_only_when_not_turned_off() -> None:
    assert aiodb.enabled() is POSTGRES
    with _config(ASYNC_DATABASE="off"):
        assert not aiodb.enabled()


@needs_postgres
def test_not_inside_a_transaction_of_the_callers_thread() -> None:
    # Rows written by another connection would not be seen by (or see) that transaction.
    from django.db import transaction

    with transaction.atomic():
        assert not aiodb.enabled()


@needs_postgres
def test_connection_params_are_djangos() -> None:
    settings_dict = connection.settings_dict
    with override_settings():
        settings_dict["OPTIONS"] = {
            **settings_dict["OPTIONS"],
            "sslmode": "disable",
            "assume_role": "someone",
            "server_side_binding": True,
        }
        try:
            params = aiodb.connection_params()
        finally:
            for key in ("sslmode", "assume_role", "server_side_binding"):
                settings_dict["OPTIONS"].pop(key)
    assert params["dbname"] == settings_dict["NAME"]
    assert params["sslmode"] == "disable"  # libpq options pass through
    assert params["autocommit"] is True
    assert params["prepare_threshold"] is None  # as Django: no server-side prepares by default
    for django_only in ("pool", "assume_role", "server_side_binding", "context"):
        assert django_only not in params


async def _prepared_here(threshold: Any) -> int:
    """Run one statement three times on one connection of a fresh pool; how many statements
    that connection has prepared on the server."""
    options = connection.settings_dict["OPTIONS"]
    if threshold is not None:
        options["prepare_threshold"] = threshold
    try:

        async def work(conn: Any) -> int:
            for n in (1, 2, 3):
                cursor = await conn.execute("SELECT %s::int * 2 AS sophie_probe", [n])
                assert await cursor.fetchone() == (n * 2,)
            cursor = await conn.execute(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
                ["%sophie_probe%"],
            )
            row = await cursor.fetchone()
            return int(row[0])

        return await aiodb.run(work)
    finally:
        options.pop("prepare_threshold", None)
        await aiodb.close()


@needs_postgres
async def test_statements_are_prepared_only_when_the_site_asks_for_it() -> None:
    # As Django: none by default (a pooler in transaction mode cannot keep them); with
    # OPTIONS["prepare_threshold"] the turn's statements are parsed and planned once per
    # connection (docs/deployment.rst measures what that saves).
    assert await _prepared_here(None) == 0
    assert await _prepared_here(0) == 1
    assert await _prepared_here(2) == 1  # prepared at its second run


@needs_postgres
async def test_statements_and_errors_come_out_as_djangos() -> None:
    row = await aiodb.fetchone("SELECT %s::int + 1", [41])
    assert row == (42,)
    with pytest.raises(ProgrammingError):
        await aiodb.fetchone("SELECT * FROM sophie_chat_no_such_table", [])
    key = f"aiodb-{uuid.uuid4().hex[:8]}"
    insert = (
        "INSERT INTO sophie_chat_chatsession (id, visitor_key, status, user_type, language, "
        "context, last_seq, created_at, last_activity_at, escalated, escalation_reason, "
        "rating_comment) VALUES (%s, %s, 'active', 'anonymous', 'pt-br', '{}', 0, now(), now(), "
        "false, '', '')"
    )
    sid = uuid.uuid4()
    await aiodb.execute(insert, [sid, key])
    with pytest.raises(IntegrityError):
        await aiodb.execute(insert, [sid, key])
    # The connection that raised is usable again (or replaced): the next statement works.
    assert await aiodb.fetchone("SELECT count(*) FROM sophie_chat_chatsession WHERE id = %s", [sid])
    await aiodb.close()


@needs_postgres
async def test_as_one_is_one_statement_all_or_nothing() -> None:
    one, two = uuid.uuid4(), uuid.uuid4()
    for sid in (one, two):
        await database_sync_to_async(ChatSession.objects.create)(
            id=sid, visitor_key=f"aiodb-{sid.hex[:8]}", language="pt-br"
        )
    table = "sophie_chat_chatsession"
    first = (f"UPDATE {table} SET escalation_reason = %s WHERE id = %s", ["a", one])
    broken = ("INSERT INTO sophie_chat_no_such_table (x) VALUES (%s)", [1])
    sql, params = aiodb.as_one([first, broken])
    assert sql.startswith("WITH s0 AS (UPDATE")
    assert params == ["a", one, 1]
    with pytest.raises(ProgrammingError):
        await aiodb.execute(sql, params)
    reason = f"SELECT escalation_reason, rating_comment FROM {table} WHERE id = %s"
    assert await aiodb.fetchone(reason, [one]) == ("", "")  # undone with the failing part
    second = (f"UPDATE {table} SET rating_comment = %s WHERE id = %s", ["b", two])
    await aiodb.execute(*aiodb.as_one([first, second]))
    assert await aiodb.fetchone(reason, [one]) == ("a", "")
    assert await aiodb.fetchone(reason, [two]) == ("", "b")
    await aiodb.close()


@needs_postgres
async def test_a_connection_killed_while_idle_is_replaced_when_the_work_may_repeat() -> None:
    (pid,) = await aiodb.fetchone("SELECT pg_backend_pid()", []) or (None,)
    await kill_pid(pid)
    # Idempotent work: the dead connection is dropped and the statement runs on a new one.
    told: list[int] = []
    row = await aiodb.fetchone(
        "SELECT pg_backend_pid()", [], retry=True, on_retry=lambda: told.append(1)
    )
    (other,) = row or (None,)
    assert other != pid
    assert told == [1]
    await kill_pid(other)
    # Work that must not run twice is not repeated: the caller hears of the failure.
    with pytest.raises(OperationalError):
        await aiodb.fetchone("SELECT 1", [])
    assert await aiodb.fetchone("SELECT 1", []) == (1,)  # and the next call reconnects
    await aiodb.close()


async def kill_pid(pid: int) -> None:
    def terminate() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])

    await database_sync_to_async(terminate)()


@needs_postgres
async def test_at_most_db_threads_connections_per_loop() -> None:
    seen: set[int] = set()
    with _config(DB_THREADS=2):
        await aiodb.close()

        async def one() -> None:
            row = await aiodb.fetchone("SELECT pg_backend_pid() FROM pg_sleep(0.05)", [])
            assert row is not None
            seen.add(row[0])

        await asyncio.gather(*(one() for _ in range(8)))
        await aiodb.close()
    assert 1 <= len(seen) <= 2


@needs_postgres
async def test_observers_hear_every_statement() -> None:
    heard: list[str] = []

    def observer(sql: str, seconds: float) -> None:
        assert seconds >= 0
        heard.append(sql)

    aiodb.observers.append(observer)
    try:
        await aiodb.fetchone("SELECT 1", [])
        await aiodb.execute("SELECT 2", [])
    finally:
        aiodb.observers.remove(observer)
        await aiodb.close()
    assert heard == ["SELECT 1", "SELECT 2"]


@needs_postgres
def test_connections_of_a_finished_loop_are_closed_synchronously() -> None:
    async def use() -> int:
        row = await aiodb.fetchone("SELECT pg_backend_pid()", [])
        assert row is not None
        return int(row[0])

    pid = asyncio.run(use())
    aiodb.close_all_sync(closed_loops_only=True)
    # The server lets the backend go a moment after the client hangs up.
    for _ in range(40):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
            left = cursor.fetchone()
        if left == (0,):
            break
        time.sleep(0.05)
    assert left == (0,)


@needs_postgres
async def test_a_refused_statement_keeps_its_connection_and_a_timeout_is_not_retried() -> None:
    (pid,) = await aiodb.fetchone("SELECT pg_backend_pid()", []) or (None,)
    with pytest.raises(ProgrammingError):
        await aiodb.fetchone("SELECT * FROM sophie_chat_no_such_table", [])
    assert await aiodb.fetchone("SELECT pg_backend_pid()", []) == (pid,)  # the same connection
    told: list[int] = []
    # A statement the server cancels (an SQLSTATE) is its answer, not a lost connection.
    with pytest.raises(OperationalError):
        await aiodb.fetchone(
            "SET LOCAL statement_timeout = 10; SELECT pg_sleep(1)",
            [],
            retry=True,
            on_retry=lambda: told.append(1),
        )
    assert told == []
    await aiodb.close()


@needs_postgres
async def test_connections_take_djangos_time_zone() -> None:
    (zone,) = await aiodb.fetchone("SHOW TimeZone", []) or (None,)
    assert zone == connection.timezone_name
    await aiodb.close()


def test_only_djangos_own_postgresql_backend() -> None:
    engine = connection.settings_dict["ENGINE"]
    connection.settings_dict["ENGINE"] = "some_tenants.postgresql_backend"
    try:
        assert not aiodb.enabled()
    finally:
        connection.settings_dict["ENGINE"] = engine
